"""What a database URL's own options and path mean: a SQLite URL's ``?timeout=`` is how long
a write waits for another process's writer (it was taken by the configuration check and then
overridden by csat-hook's 30 s), an option given twice and a path only a shell would expand are
refused naming the key."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from csat_hook.cli import main
from csat_hook.config import load_config
from csat_hook.db import engine as db_engine
from csat_hook.db.config import libpq_int
from csat_hook.errors import ConfigError
from tests.conftest import PG_ENV


def _blocked_write_takes(url: str, path: str) -> float:
    """Seconds a write through ``url`` waits while another connection (another process, as
    far as SQLite can tell) holds the writer lock, before it fails."""
    engine = db_engine.make_engine(url)
    try:
        with engine.begin() as conn:  # the file made and switched to WAL first
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError), engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            return time.monotonic() - started
        finally:
            other.close()
    finally:
        engine.dispose()


def test_a_sqlite_url_timeout_is_how_long_a_write_waits_for_another_writer(tmp_path):
    path = str(tmp_path / "t.sqlite3")
    took = _blocked_write_takes(f"sqlite:///{path}?timeout=1", path)
    assert 0.8 <= took < 5, took


def test_without_a_timeout_a_write_waits_the_default(tmp_path, monkeypatch):
    monkeypatch.setattr(db_engine, "BUSY_SECONDS", 2)
    path = str(tmp_path / "t.sqlite3")
    took = _blocked_write_takes(f"sqlite:///{path}", path)
    assert 1.8 <= took < 6, took


@pytest.mark.parametrize("timeout", ["-1", "nan", "inf", "1e9", "0", "0.5"])
def test_a_sqlite_timeout_that_is_no_wait_is_refused_naming_the_key(tmp_path, timeout):
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}?timeout={timeout}"
    with pytest.raises(ConfigError, match=r"database\.url: .*timeout"):
        load_config(None, env={"DATABASE_URL": url})


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{tmp}/c.sqlite3?timeout=1&timeout=2",  # a TypeError traceback
        "postgresql://u:S3CRET@127.0.0.1/x?connect_timeout=1&connect_timeout=2",
    ],
)
def test_a_database_url_option_given_twice_is_refused_naming_it(tmp_path, url):
    # The driver got both values as one tuple: a traceback from every command (SQLite), or a
    # connection refused for "('1', '2')" at the first statement (PostgreSQL).
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={"DATABASE_URL": url.format(tmp=tmp_path)})
    said = raised.value.message
    assert "database.url: the URL option" in said and "given twice" in said, said
    assert "S3CRET" not in said


@pytest.mark.parametrize(
    "query",
    [
        "port=S3CRET",  # SQLAlchemy: "Received non-integer port arguments"
        "host=h1,h2&port=5432,5433,5434",  # "number of hosts and ports don't match"
    ],
)
def test_hosts_and_ports_the_driver_cannot_pair_are_refused_naming_the_key(query):
    # Taken by the configuration check, then every command (and `serve`'s start) ended in an
    # ArgumentError traceback where the engine is made.
    url = f"postgresql://u:S3CRET@/x?{query}"
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={"DATABASE_URL": url})
    said = raised.value.message
    assert "database.url: " in said and "host" in said and "port" in said, said
    assert "S3CRET" not in said and "5434" not in said


@pytest.mark.parametrize("path", ["~/csat.sqlite3", "~csat/x.sqlite3", "$HOME/csat.sqlite3"])
def test_a_sqlite_path_a_shell_would_expand_is_refused_naming_the_key(path):
    # Nothing expands ~ or $HOME in a URL: a folder named "~" (or "$HOME") was made in the
    # folder the process started in, and the service kept its data there without a word.
    with pytest.raises(ConfigError, match=r"database\.url: .*not expanded"):
        load_config(None, env={"DATABASE_URL": f"sqlite:///{path}"})


@pytest.mark.parametrize(
    ("given", "read"),
    [
        ("0", 0),
        ("1", 1),
        ("2", 2),
        ("-1", -1),
        ("-0", 0),
        ("+7", 7),
        ("007", 7),
        ("0" * 5000 + "1", 1),  # strtol() takes any number of zeros (int() would not)
        ("-" + "0" * 30, 0),
        (" \t\n\v\f\r12 \t\n\v\f\r", 12),  # C's isspace(), around it
        ("2147483647", 2_147_483_647),
        ("-2147483648", -2_147_483_648),
        ("2147483648", None),  # past a C int
        ("-2147483649", None),
        ("99999999999", None),
        ("", None),
        ("   ", None),
        ("+", None),
        ("-", None),
        ("on", None),
        ("yes", None),
        ("1x", None),
        ("x1", None),
        ("0x1", None),  # base 10: "0", then "x1" left
        ("1.0", None),
        ("1e3", None),
        ("1_000", None),  # int() takes it, strtol() does not
        ("1 2", None),
        ("+ 1", None),  # the sign right before the digits
        ("--1", None),
        ("+-1", None),
        ("\x1c1", None),  # Python's str.strip() skips these, C's isspace() does not
        ("1\x1f", None),
        ("\x851", None),
        ("\xa01", None),
        ("\u20031", None),
        ("\u0661", None),  # an Arabic-Indic one: int() reads it, strtol() does not
        ("\uff11", None),  # a full-width one
        ("1\x00", None),
    ],
)
def test_libpq_int_reads_a_number_exactly_as_libpq_parse_int_param(given, read):
    """What libpq's parse_int_param() (fe-connect.c) takes: strtol() in base 10 over the
    whole value but C whitespace, within a C int; the check reads every libpq socket option
    with it, and keepalives=0 ("off") too."""
    assert libpq_int(given) == read


# libpq hands these to setsockopt() (or its own timer) when it connects: a value the kernel
# refuses failed every connection ("setsockopt(TCP_KEEPCNT) failed: Invalid argument"), from
# every command, long after the configuration was taken.
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("keepalives", "yes"),
        ("keepalives", "on"),
        ("keepalives", "1x"),
        ("keepalives", "0x1"),
        ("keepalives", "1.0"),
        ("keepalives", "2147483648"),  # past a C int: libpq refuses it
        ("keepalives", "%2B%201"),  # "+ 1": no space after the sign
        ("keepalives", "%C2%A01"),  # a no-break space: not one C's isspace() skips
        ("keepalives", "%1C0"),  # nor a file separator (Python's str.strip() skips it)
        ("keepalives_idle", "0"),
        ("keepalives_idle", "32768"),
        ("keepalives_idle", "-1"),
        ("keepalives_interval", "0"),
        ("keepalives_interval", "32768"),
        ("keepalives_interval", "10s"),
        ("keepalives_count", "0"),
        ("keepalives_count", "128"),
        ("keepalives_count", "1.5"),
        ("tcp_user_timeout", "-1"),
        ("tcp_user_timeout", "2147483648"),
        ("tcp_user_timeout", "30s"),
        ("connect_timeout", "-1"),
        ("connect_timeout", "ten"),
        ("connect_timeout", "2.5"),
        ("connect_timeout", "%20"),  # blank: libpq reads no number
    ],
)
def test_a_libpq_socket_option_the_kernel_would_refuse_is_refused_naming_it(option, value):
    url = f"postgresql://csat:S3CRET@db.example.com/csat?{option}={value}"
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={"DATABASE_URL": url})
    said = raised.value.message
    assert f"database.url: the URL option '{option}'" in said, said
    assert "S3CRET" not in said


@pytest.mark.parametrize(
    "query",
    [
        "keepalives=0",
        "keepalives=1&keepalives_idle=1&keepalives_interval=1&keepalives_count=1",
        "keepalives_idle=32767&keepalives_interval=32767&keepalives_count=127",
        "tcp_user_timeout=0",
        "tcp_user_timeout=2147483647",
        "connect_timeout=0",  # libpq: no timeout
        "connect_timeout=10",
    ],
)
def test_libpq_socket_options_in_range_are_taken(query):
    url = f"postgresql://csat:pw@db.example.com/csat?{query}"
    assert load_config(None, env={"DATABASE_URL": url}).database.url.endswith(query)


@pytest.mark.parametrize(
    "query",
    [
        "keepalives=2",
        "keepalives=-1",
        "keepalives=2147483647",
        "keepalives=-2147483648",
        "keepalives=%2B1",
        "keepalives=%091%0A",  # tab and newline around it
        "keepalives=%0B2%0C%0D",  # vertical tab, form feed, carriage return
        "keepalives=00000000000000000001",
        "keepalives=2&keepalives_idle=7&keepalives_count=5&tcp_user_timeout=9000",
    ],
)
def test_keepalives_is_on_for_any_whole_number_but_0_as_libpq_reads_it(query):
    """libpq's useKeepalives(): any integer its parse_int_param() reads (strtol(), C
    whitespace around it, within a C int) other than 0 turns keepalives on. keepalives=2 was
    refused as not "0 (off) or 1 (on)"."""
    url = f"postgresql://csat:pw@db.example.com/csat?{query}"
    config = load_config(None, env={"DATABASE_URL": url})
    assert config.database.url.endswith(query)
    from csat_hook.config import config_warnings

    assert not [w for w in config_warnings(config) if "keepalives" in w]


@pytest.mark.parametrize(
    "query",
    [
        "keepalives=2&keepalives_count=128",
        "keepalives=-1&keepalives_idle=0",
        "keepalives=%2B1&keepalives_interval=abc",
    ],
)
def test_keepalive_options_with_any_keepalives_on_are_checked(query):
    url = f"postgresql://csat:S3CRET@db.example.com/csat?{query}"
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={"DATABASE_URL": url})
    assert "database.url: the URL option 'keepalives_" in raised.value.message


def test_a_libpq_socket_option_out_of_range_ends_the_command_with_exit_2():
    url = "postgresql://csat:S3CRET@db.example.com/csat?keepalives_count=200"
    result = CliRunner().invoke(main, ["check-config"], env={"DATABASE_URL": url})
    assert result.exit_code == 2, result.output
    assert "database.url: the URL option 'keepalives_count'" in result.output
    assert "1 to 127" in result.output
    assert "S3CRET" not in result.output


# libpq sets the keepalive options (and tcp_user_timeout, last in the same chain) only on a TCP
# connection with keepalives on: with keepalives=0, or on a Unix socket, it reads none of them,
# a value it would refuse included (fe-connect.c; checked with psycopg's libpq 18).
@pytest.mark.parametrize(
    "query",
    [
        "keepalives=0&keepalives_idle=-5",
        "keepalives=0&keepalives_interval=99999&keepalives_count=abc",
        "keepalives=%200&keepalives_idle=0",  # " 0": libpq reads 0 around spaces
        "keepalives=-0&keepalives_count=128",
        "keepalives=%0D0%0B&keepalives_idle=0",  # C whitespace around it
        "keepalives=000000000000&keepalives_count=0",  # any number of zeros
        "keepalives=0&tcp_user_timeout=0",
    ],
)
def test_keepalive_options_libpq_does_not_read_with_keepalives_off_are_taken(query):
    url = f"postgresql://csat:pw@db.example.com/csat?{query}"
    assert load_config(None, env={"DATABASE_URL": url}).database.url.endswith(query)


@pytest.mark.parametrize(
    "query",
    [
        "keepalives=1&keepalives_idle=-5",
        "keepalives=1&keepalives_count=abc",
        "keepalives=%201&keepalives_interval=0",
        "keepalives_count=128",  # keepalives on by default
    ],
)
def test_keepalive_options_with_keepalives_on_are_still_checked(query):
    url = f"postgresql://csat:S3CRET@db.example.com/csat?{query}"
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={"DATABASE_URL": url})
    assert "database.url: the URL option 'keepalives_" in raised.value.message


def test_a_keepalive_option_on_unix_sockets_only_is_taken():
    url = "postgresql://csat:pw@/csat?host=/var/run/postgresql&keepalives_idle=-5"
    assert load_config(None, env={"DATABASE_URL": url}).database.url.endswith("idle=-5")


@pytest.mark.parametrize("value", ["30000", "abc"])
def test_a_tcp_user_timeout_libpq_would_drop_for_keepalives_off_is_refused(value):
    """libpq sets tcp_user_timeout after the keepalive options, in the same chain: with
    keepalives=0 it is dropped without a word (see the next test), so the limit asked for
    never applies."""
    url = f"postgresql://csat:S3CRET@db.example.com/csat?keepalives=0&tcp_user_timeout={value}"
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={"DATABASE_URL": url})
    said = raised.value.message
    assert "database.url: the URL option 'tcp_user_timeout'" in said, said
    assert "keepalives=0" in said and "S3CRET" not in said


def _pg_base() -> str:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"needs {PG_ENV}")
    return base.split("?")[0]


def _libpq_connects(url: str) -> bool:
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError:
        return False
    return True


def _taken(url: str) -> bool:
    try:
        load_config(None, env={"DATABASE_URL": url})
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize(
    "query",
    [
        "keepalives=0&keepalives_idle=-5",
        "keepalives=0&keepalives_idle=abc&keepalives_interval=0&keepalives_count=999",
        "keepalives=%200&keepalives_count=0",
        "keepalives=1&keepalives_idle=-5",
        "keepalives=1&keepalives_count=abc",
        "keepalives_idle=-5",
        "keepalives=1&keepalives_count=128",
        "keepalives=1&keepalives_idle=32767&keepalives_count=127",
        "keepalives=2",
        "keepalives=-1&keepalives_idle=7",
        "keepalives=2147483647",
        "keepalives=2147483648",
        "keepalives=%2B1",
        "keepalives=%091%0A",
        "keepalives=on",
        "keepalives=1x",
        "keepalives=0x1",
        "keepalives=%2B%201",
        "keepalives=%C2%A01",
        "keepalives=2&keepalives_count=128",
        "keepalives=000000000000&keepalives_idle=-5",
        "keepalives=%1C0&keepalives_idle=-5",
        "keepalives=%0D0%0B&keepalives_idle=-5",
        "keepalives_idle=%2030%09",
        "keepalives_idle=000000000000030",
        "keepalives_idle=%C2%A030",
        "tcp_user_timeout=%2B9000",
        "tcp_user_timeout=%1C9000",
    ],
)
def test_the_check_takes_a_tcp_url_exactly_when_libpq_connects_with_it(query):
    url = f"{_pg_base()}?{query}"
    assert _taken(url) == _libpq_connects(url)


def test_the_check_takes_a_unix_socket_url_libpq_connects_with():
    base = _pg_base()
    sockets = Path("/var/run/postgresql")
    port = sa.make_url(base).port or 5432
    if not (sockets / f".s.PGSQL.{port}").exists():
        pytest.skip("no PostgreSQL socket in /var/run/postgresql")
    given = sa.make_url(base)
    login = given.username + (f":{given.password}" if given.password else "")
    url = f"postgresql://{login}@/{given.database}?host={sockets}&port={port}"
    url += "&keepalives_idle=-5&tcp_user_timeout=abc"
    assert _libpq_connects(url) and _taken(url)


def test_libpq_drops_tcp_user_timeout_with_keepalives_off():
    """What the refusal above stands on, on the installed libpq."""
    import psycopg

    base = _pg_base()
    with psycopg.connect(f"{base}?keepalives=0&tcp_user_timeout=12345") as conn:
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        try:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 0
        finally:
            sock.close()


@pytest.mark.parametrize("keepalives", ["2", "-1", "%2B1", "%092%0A", "2147483647"])
def test_libpq_turns_keepalives_on_for_any_number_but_0(keepalives):
    """What taking them stands on, on the installed libpq: the probes are set, with the URL's
    own keepalive options, through the service's engine."""
    base = _pg_base()
    engine = db_engine.make_engine(f"{base}?keepalives={keepalives}&keepalives_idle=7")
    try:
        with engine.connect() as conn:
            fd = conn.connection.driver_connection.pgconn.socket  # type: ignore[union-attr]
            sock = socket.socket(fileno=os.dup(fd))
            try:
                on = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
                idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
            finally:
                sock.close()
    finally:
        engine.dispose()
    assert (on, idle) == (1, 7)


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("postgresql://csat:S3CRET@db.example.com/csat?keepalives=0", True),
        ("postgresql://csat:S3CRET@db.example.com/csat?keepalives=%200", True),
        ("postgresql://csat:S3CRET@db.example.com/csat?keepalives=0&tcp_user_timeout=0", True),
        ("postgresql://csat:S3CRET@/csat?host=db.example.com&keepalives=0", True),
        ("postgresql://csat:S3CRET@10.0.0.5:5432/csat?keepalives=0&hostaddr=10.0.0.5", True),
        ("postgresql://csat:S3CRET@db.example.com/csat", False),
        ("postgresql://csat:S3CRET@db.example.com/csat?keepalives=1", False),
        ("postgresql://csat:S3CRET@db.example.com/csat?keepalives=2", False),
        ("postgresql://csat:S3CRET@db.example.com/csat?keepalives=-1", False),
        ("postgresql://csat:S3CRET@db.example.com/csat?keepalives=%0D0%0B", True),
        ("postgresql://csat:S3CRET@db.example.com/csat?keepalives=000000000000", True),
        # A Unix socket: libpq sets no keepalives there, whatever the URL says.
        ("postgresql://csat:S3CRET@/csat?host=/var/run/postgresql&keepalives=0", False),
        ("sqlite:///var/csat.sqlite3", False),
    ],
)
def test_keepalives_off_over_tcp_is_warned_about_naming_the_option(url, warned):
    """With keepalives=0 libpq also drops tcp_user_timeout (the service's own 60 s default
    too): a server that goes silent mid-statement is never detected. Taken, as turning
    keepalives off is the operator's choice, but said by check-config (and at start-up)."""
    from csat_hook.config import config_warnings

    said = [
        w
        for w in config_warnings(load_config(None, env={"DATABASE_URL": url}))
        if "keepalives" in w
    ]
    assert len(said) == (1 if warned else 0), said
    if warned:
        assert said[0].startswith("database.url: keepalives=0"), said
        assert "tcp_user_timeout" in said[0] and "never detected" in said[0], said
        assert "S3CRET" not in said[0]


def test_check_config_shows_the_keepalives_off_warning():
    url = "postgresql://csat:S3CRET@db.example.com/csat?keepalives=0"
    result = CliRunner().invoke(main, ["check-config"], env={"DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert "warning: database.url: keepalives=0" in result.stderr
    assert "S3CRET" not in result.output
