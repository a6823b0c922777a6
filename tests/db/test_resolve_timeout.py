"""A PostgreSQL host name whose resolution never answers (a DNS server that drops queries, a
stuck NSS module): making a connection fails within about the connect timeout, as a failure
to connect (retried like any other), instead of holding the thread. psycopg resolved the
name itself (``socket.getaddrinfo``, as libpq would) before ``connect_timeout`` applied:
the thread waited for as long as the resolver did. The name is resolved again for every
connection, so a moved database (a failover that changed the DNS answer) is followed."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db import engine as db_engine
from tests.conftest import PG_ENV
from tests.stuck_resolver import StuckResolver

CONNECT = 2  # libpq's least connect_timeout
SLACK = 1.5  # scheduling on a busy machine


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch) -> Iterator[StuckResolver]:
    monkeypatch.setattr(db_engine, "CONNECT_TIMEOUT_SECONDS", CONNECT)
    fake = StuckResolver({"db.stuck.test"})
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    yield fake
    fake.release()  # the helper thread ends


def _connect_in_thread(engine: sa.Engine, wait: float) -> tuple[bool, BaseException | None]:
    """(whether connecting ended within ``wait`` seconds, its error)."""
    outcome: dict[str, BaseException] = {}

    def connect() -> None:
        try:
            engine.connect().close()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(wait)
    return not thread.is_alive(), outcome.get("error")


def test_a_resolver_that_never_answers_fails_the_connection_within_the_connect_timeout(stuck):
    # Port 1: should the name resolve after all (the fake answers loopback once released),
    # nothing is there.
    engine = db_engine.make_engine("postgresql+psycopg://csat:pw@db.stuck.test:1/csat")
    try:
        started = time.monotonic()
        ended, error = _connect_in_thread(engine, CONNECT + SLACK)
        took = time.monotonic() - started
    finally:
        stuck.release()
        engine.dispose()
    assert ended, "making a connection waited for the resolver"
    assert took < CONNECT + SLACK, took
    # A failure to connect, as a refused connection is: the retry policy's "unavailable".
    assert isinstance(error, sa.exc.OperationalError), repr(error)
    assert isinstance(error, db_engine.UNAVAILABLE) and not db_engine.is_data_error(error)
    said = db_engine.connect_failure(error)
    assert said is not None and "db.stuck.test" in said, said
    assert "pw" not in said


def _pg_url(host: str) -> str:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    url = sa.make_url(base).set(drivername="postgresql+psycopg")
    if url.host not in ("127.0.0.1", "localhost"):
        pytest.skip(f"{PG_ENV} is not on this machine's loopback")
    return url.set(host=host).render_as_string(hide_password=False)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_host_name_still_connects(database_url):
    # "localhost" may resolve to ::1 first, where the test server may not listen: every
    # address the name resolves to is tried, as libpq and psycopg do.
    engine = db_engine.make_engine(_pg_url("localhost"))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_name_is_resolved_again_for_each_connection(database_url, monkeypatch):
    # The database moved (a failover changed the DNS answer): the next connection follows.
    real = socket.getaddrinfo
    answers = iter(["127.0.0.3", "127.0.0.1"])  # nothing listens on 127.0.0.3
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "db.moving.test":
            asked.append(host)
            host = next(answers)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    engine = db_engine.make_engine(_pg_url("db.moving.test"))
    try:
        with pytest.raises(sa.exc.OperationalError):
            engine.connect().close()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
    assert len(asked) == 2


def _connect_args(monkeypatch: pytest.MonkeyPatch, url: str) -> dict[str, Any]:
    """What ``make_engine(url)`` hands psycopg's connect for a new connection."""
    seen: dict[str, Any] = {}

    def fake_connect(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise _ConnectStoppedError

    engine = db_engine.make_engine(url)
    monkeypatch.setattr(engine.dialect, "connect", fake_connect)
    try:
        with pytest.raises(_ConnectStoppedError):
            engine.connect()
    finally:
        engine.dispose()
    return seen


class _ConnectStoppedError(Exception):
    pass


def test_a_host_name_is_resolved_into_hostaddr_keeping_the_name(monkeypatch):
    # The name stays libpq's host: TLS checks the certificate against it (and sends it as
    # SNI), a .pgpass line matches it. Every address is an attempt, in the resolver's order.
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        assert host == "db.test"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 0)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::1", 0, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    seen = _connect_args(monkeypatch, "postgresql+psycopg://u@db.test:6432/d?sslmode=verify-full")
    assert seen["host"] == "db.test,db.test"
    assert seen["hostaddr"] == "10.0.0.1,fd00::1"
    assert str(seen["port"]) == "6432"


@pytest.mark.parametrize(
    ("url", "hostaddr"),
    [
        ("postgresql+psycopg://u@127.0.0.1:5432/d", None),  # an address: nothing to resolve
        ("postgresql+psycopg://u@[::1]:5432/d", None),
        ("postgresql+psycopg://u@/d?host=/run/postgresql", None),  # a Unix socket
        ("postgresql+psycopg://u@db.test:5432/d?hostaddr=10.0.0.9", "10.0.0.9"),  # given
        ("postgresql+psycopg://u@/d?host=a.test:5432&host=b.test:5433", None),  # several
        ("postgresql+psycopg://u@/d", None),  # libpq's default (a socket, or PGHOST)
    ],
)
def test_what_is_not_one_host_name_is_left_to_libpq(monkeypatch, url, hostaddr):
    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"resolved {host!r}")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert _connect_args(monkeypatch, url).get("hostaddr") == hostaddr
