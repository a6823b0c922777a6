"""A PostgreSQL server that goes away without a word while a statement waits for its answer
(a host powered off, a failover that moved the address, a NAT that forgot the flow) fails the
statement within about a minute (TCP keepalives), instead of holding the thread for the
kernel's two hours or for ever: statement_timeout cannot end it, the server that enforces it
is gone."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest
import sqlalchemy as sa

from csat_hook.db import engine as db_engine
from tests.tcp_proxy import VanishingProxy
from tests.tcp_proxy import can_vanish

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def _tcp_options(conn: sa.Connection) -> dict[str, int]:
    """The keepalive options on the connection's own socket, as the kernel holds them."""
    fd = conn.connection.driver_connection.pgconn.socket  # type: ignore[union-attr]
    sock = socket.socket(fileno=os.dup(fd))
    try:
        return {
            "keepalive": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "user_timeout": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }
    finally:
        sock.close()  # the duplicate only: the connection's own descriptor stays open


def test_connections_probe_a_silent_server(database_url):
    engine = db_engine.make_engine(database_url)
    try:
        with engine.connect() as conn:
            options = _tcp_options(conn)
    finally:
        engine.dispose()
    assert options["keepalive"] == 1
    assert options["idle"] == db_engine.KEEPALIVE_IDLE_SECONDS
    assert options["interval"] == db_engine.KEEPALIVE_INTERVAL_SECONDS
    assert options["count"] == db_engine.KEEPALIVE_COUNT
    assert options["user_timeout"] == db_engine.TCP_USER_TIMEOUT_SECONDS * 1000
    # Given up within about a minute of silence, not two hours.
    worst = (
        db_engine.KEEPALIVE_IDLE_SECONDS
        + db_engine.KEEPALIVE_INTERVAL_SECONDS * db_engine.KEEPALIVE_COUNT
    )
    assert worst <= 90


def test_the_url_own_keepalive_settings_are_kept(database_url):
    url = sa.make_url(database_url)
    url = url.update_query_dict(
        {"keepalives_idle": "7", "keepalives_count": "5", "tcp_user_timeout": "9000"}
    )
    engine = db_engine.make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            options = _tcp_options(conn)
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
    assert (options["idle"], options["count"], options["user_timeout"]) == (7, 5, 9000)
    assert options["interval"] == db_engine.KEEPALIVE_INTERVAL_SECONDS


@pytest.mark.skipif(not can_vanish(), reason="TCP_REPAIR needs CAP_NET_ADMIN (Linux)")
def test_a_statement_to_a_server_gone_silent_fails_instead_of_hanging(database_url, monkeypatch):
    monkeypatch.setattr(db_engine, "KEEPALIVE_IDLE_SECONDS", 1)
    monkeypatch.setattr(db_engine, "KEEPALIVE_INTERVAL_SECONDS", 1)
    monkeypatch.setattr(db_engine, "KEEPALIVE_COUNT", 1)
    monkeypatch.setattr(db_engine, "TCP_USER_TIMEOUT_SECONDS", 2)
    url = sa.make_url(database_url)
    proxy = VanishingProxy((url.host or "127.0.0.1", url.port or 5432))
    engine = db_engine.make_engine(
        url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
        pool_size=1,
    )
    outcome: list[BaseException | None] = []

    def statement() -> None:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
                proxy.vanish()
                conn.execute(sa.text("SELECT 2"))  # sent, acknowledged, never answered
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=statement, daemon=True)
    thread.start()
    thread.join(15)  # without keepalives: for ever
    took = time.monotonic() - started
    try:
        assert proxy.vanished.is_set()
        assert outcome, f"the statement still waits after {took:.0f} s"
        assert isinstance(outcome[0], sa.exc.OperationalError), outcome
        assert took < 10, took
    finally:
        engine.dispose()
        proxy.close()
