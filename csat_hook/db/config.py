"""The ``database`` section of the configuration."""

from __future__ import annotations

import re

from pydantic import Field
from pydantic import field_validator
from sqlalchemy.engine import URL
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from csat_hook.files import written_out
from csat_hook.settings import StrictModel

# What SQLAlchemy's pysqlite dialect takes from a URL's query without uri=true.
SQLITE_URL_ARGUMENTS = frozenset(
    {"timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements", "uri"}
)


# The one driver of each backend installed with csat-hook (psycopg 3: ``db/frozen.py`` uses
# its cursor).
# ``postgres://`` (Heroku's spelling) is read as postgresql://, without a driver only.
SHIPPED_DRIVERS = {"sqlite": "pysqlite", "postgresql": "psycopg"}

# The longest ``?timeout=`` a SQLite URL may ask a write to wait for another writer: SQLite's
# busy timeout is a count of milliseconds in a C int (about 24 days).
MAX_SQLITE_TIMEOUT_SECONDS = 86_400


# The range of a C int, what libpq's parse_int_param() reads a number into (more digits, or
# a long that does not fit, is "invalid integer value").
C_INT_MIN, C_INT_MAX = -(2**31), 2**31 - 1

# The libpq parameters of a PostgreSQL URL that go to the socket (or libpq's own timer) when
# it connects, with the values taken: (lowest, highest, what it is). Out of range, libpq
# failed every connection, e.g. "setsockopt(TCP_KEEPCNT) failed: Invalid argument".
# ``keepalives`` is any number libpq reads (useKeepalives(): 0 is off, any other on).
# Linux's limits (include/net/tcp.h: MAX_TCP_KEEPIDLE and MAX_TCP_KEEPINTVL 32767,
# MAX_TCP_KEEPCNT 127; net/ipv4/tcp.c refuses below 1, and a TCP_USER_TIMEOUT below 0);
# libpq turns a negative keepalives_* into 0, which the kernel refuses too (checked with
# setsockopt on Linux 6). A negative tcp_user_timeout or connect_timeout libpq reads as 0 (the
# kernel's default; no connect limit): refused here as the typo it most likely is.
PG_SOCKET_OPTIONS: dict[str, tuple[int, int, str]] = {
    "keepalives": (C_INT_MIN, C_INT_MAX, "a whole number: 0 (off) or any other (on)"),
    "keepalives_idle": (1, 32_767, "seconds idle before the first probe, 1 to 32767"),
    "keepalives_interval": (1, 32_767, "seconds between probes, 1 to 32767"),
    "keepalives_count": (1, 127, "probes before the connection is dropped, 1 to 127"),
    "tcp_user_timeout": (0, 2_147_483_647, "milliseconds (0: the kernel's), 0 to 2147483647"),
    "connect_timeout": (0, 2_147_483_647, "whole seconds (0: no limit)"),
}


# What libpq sets on a TCP socket only, and only with keepalives on: after SO_KEEPALIVE, in
# one chain of calls that ``keepalives=0`` skips whole (fe-connect.c), tcp_user_timeout last.
# With keepalives off, or on a Unix socket, libpq reads none of them: a value it would refuse
# connects all the same (checked with psycopg's libpq 18: keepalives=0&keepalives_idle=-5).
PG_TCP_KEEPALIVE_OPTIONS = frozenset(
    {"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"}
)


# What C's isspace() is true of (the "C" locale's, and a UTF-8 locale's for the one byte it
# is given): what strtol() skips before a number and libpq after it. Not Python's
# str.isspace(), which also takes the file, group, record and unit separators (\x1c-\x1f),
# \x85 and Unicode's spaces: libpq refuses those.
_C_SPACE = " \t\n\v\f\r"
_LIBPQ_INT = re.compile(f"[{_C_SPACE}]*([+-]?)0*([0-9]+)[{_C_SPACE}]*")


def libpq_int(given: str) -> int | None:
    """``given`` as libpq's ``parse_int_param()`` (fe-connect.c) reads an integer
    parameter; None where it refuses it ("invalid integer value", every connection failing):
    strtol() in base 10 (C whitespace, then an optional sign right before the decimal
    digits: ``+1``, ``-0``, ``007``; no ``0x``, no ``1.0``, no ``1e3``, no ``_``), then
    nothing but C whitespace, and a value that fits a C int."""
    found = _LIBPQ_INT.fullmatch(given)
    # Leading zeros dropped first: as many as strtol() likes, without asking int() for a
    # number of more digits than it converts (4300).
    if found is None or len(found.group(2)) > len(str(C_INT_MAX)):
        return None
    number = int(found.group(1) + found.group(2))
    return number if C_INT_MIN <= number <= C_INT_MAX else None


def _unix_sockets_only(url: URL) -> bool:
    """Whether every host of ``url`` is a Unix-domain socket (a path, or libpq's ``@``
    abstract namespace) and no ``hostaddr`` says otherwise. No host given is not one: libpq's
    default may be ``PGHOST``, a TCP host."""
    hosts = url.query.get("host") or url.host
    if not isinstance(hosts, str) or not hosts or "hostaddr" in url.query:
        return False
    return all(host[:1] in ("/", "@") for host in hosts.split(","))


def _check_pg_hosts(url: URL) -> None:
    """ValueError (quoting nothing of the URL) when the driver's arguments cannot be made of
    the PostgreSQL ``url``'s hosts and ports (``?port=abc``, more ports than hosts): every
    command ended in SQLAlchemy's ArgumentError traceback where the engine is made."""
    try:
        url.set(drivername="postgresql+psycopg").get_dialect()().create_connect_args(url)
    except (ArgumentError, ValueError):
        raise ValueError(
            "the URL's hosts and ports do not pair up: each port a number, one per host "
            "(?host=h1,h2&port=5432,5433), or none"
        ) from None


def _check_pg_socket_options(url: URL) -> None:
    """ValueError naming the first libpq socket option of ``url`` (a PostgreSQL URL) that
    every connection would fail on, or that libpq would drop without a word; its value is
    not quoted (the URL holds the password). Options libpq does not read are not checked:
    the keepalive options with ``keepalives=0`` or on Unix sockets alone, and there
    ``tcp_user_timeout`` too (but a non-zero one with ``keepalives=0`` on TCP is refused:
    libpq drops it with them, the limit asked for would never apply)."""
    unix = _unix_sockets_only(url)
    keepalives_off = _keepalives_off(url)
    for option, (lowest, highest, meaning) in PG_SOCKET_OPTIONS.items():
        given = url.query.get(option)
        if not isinstance(given, str):  # absent (given twice is refused before)
            continue
        if unix and (option in PG_TCP_KEEPALIVE_OPTIONS or option == "tcp_user_timeout"):
            continue  # a Unix socket: libpq sets none of them
        if keepalives_off and option in PG_TCP_KEEPALIVE_OPTIONS:
            continue  # not read by libpq, whatever they say
        number = libpq_int(given)
        if keepalives_off and option == "tcp_user_timeout" and number != 0:
            raise ValueError(
                f"the URL option {option!r} is not applied with keepalives=0 (libpq sets it "
                "with the keepalive options only): leave it out, or turn keepalives on"
            )
        if number is None or not lowest <= number <= highest:
            raise ValueError(f"the URL option {option!r} must be {meaning}")


def keepalives_off_over_tcp(url: str) -> bool:
    """Whether the PostgreSQL ``url`` turns keepalives off (``keepalives=0``, as libpq reads
    it: :func:`_keepalives_off`) for a
    connection that may go over TCP (not every host a Unix socket): libpq then sends no
    probe and sets no ``tcp_user_timeout`` either, the URL's or the service's own default
    (:func:`csat_hook.db.engine.pg_connect_args`), so a server that goes silent
    mid-statement is never detected. False for any other URL, one that does not parse too."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return False
    if parsed.get_backend_name() != "postgresql" or _unix_sockets_only(parsed):
        return False
    return _keepalives_off(parsed)


def _keepalives_off(url: URL) -> bool:
    """Whether ``url`` says ``keepalives=0`` as libpq reads it (``0``, `` 0``, ``-0``,
    ``000``...): useKeepalives() turns them off for 0 alone, on for any other number
    (``2``, ``-1``); a value it cannot read fails the connection, which is no "off"."""
    keepalives = url.query.get("keepalives")
    return isinstance(keepalives, str) and libpq_int(keepalives) == 0


def _in_memory(url: URL) -> bool:
    """Whether the SQLite ``url`` opens a database in memory: no path, ``:memory:``, or a URI
    (``uri=true``) naming ``:memory:`` or ``mode=memory``."""
    database = url.database or ""
    if database in ("", ":memory:"):
        return True
    if url.query.get("uri") != "true":
        return False
    return database.startswith("file::memory:") or url.query.get("mode") == "memory"


def _check_sqlite_url(url: URL, port: int | None) -> None:
    """ValueError (quoting nothing of the URL) for a SQLite URL that every command would fail
    on, or that would silently lose data."""
    if url.host or url.username or port:
        # sqlite://var/x.db: SQLAlchemy refuses it when it connects (a traceback).
        raise ValueError(
            "a SQLite URL is sqlite:/// and a path, no host: "
            "sqlite:///var/csat-hook.sqlite3 (relative), sqlite:////srv/csat.sqlite3 "
            "(absolute)"
        )
    written_out(url.database or "", example="sqlite:////home/app/csat.sqlite3")
    if url.query.get("uri") != "true":
        # pysqlite's own arguments; any other (mode=ro...) needs uri=true, else
        # SQLAlchemy warns and drops it: a read-only open became a read-write one.
        ignored = sorted(set(url.query) - SQLITE_URL_ARGUMENTS)
        if ignored:
            raise ValueError(
                f"SQLite ignores {', '.join(ignored)} without uri=true: write "
                "sqlite:///file:path?mode=ro&uri=true, or leave them out"
            )
    try:  # what SQLAlchemy reads from the query when it connects
        _, options = url.get_dialect()().create_connect_args(url)
    except ValueError:
        # ?timeout=abc, ?check_same_thread=maybe: a ValueError traceback at the first
        # connection, from every command.
        raise ValueError(
            "a SQLite URL option has a value the driver cannot read (timeout: a "
            "number of seconds; check_same_thread: true or false; detect_types, "
            "cached_statements: whole numbers)"
        ) from None
    timeout = options.get("timeout")
    if timeout is not None and not 1 <= timeout <= MAX_SQLITE_TIMEOUT_SECONDS:
        # nan, inf, -1: the busy timeout set from it failed every connection, or waited
        # for ever; under 1 s, two processes starting together (a web process and a
        # worker migrating the schema) failed on each other's lock at once.
        raise ValueError(
            "a SQLite URL's timeout is the seconds a write waits for another writer: "
            f"1 to {MAX_SQLITE_TIMEOUT_SECONDS}"
        )
    if _in_memory(url):
        # `serve` answered its health check and every webhook 503 (each pooled
        # connection its own empty database), and what was stored went at exit.
        raise ValueError(
            "a SQLite database in memory keeps nothing and is not shared between "
            "connections: give a file, sqlite:///var/csat-hook.sqlite3"
        )


# Where SQLAlchemy's URL parser ends the user info (``make_url``): a user name up to a ":" or
# "/" (an "@" in it is taken: Azure's ``user@server``), then a password up to its first "@".
_USER_INFO = re.compile(r"[^:/]*(?::[^@]*)?@")


def _at_past_user_info(url: str) -> bool:
    """Whether the PostgreSQL ``url`` has an "@" that no URL of libpq's form has unencoded:
    after the user info as SQLAlchemy reads it, in the host, port or database, or in an
    option's name (an option's value may hold one: ``application_name=csat@web``). Such an
    "@" is a password's, whose rest was read as those parts."""
    rest = url.partition("://")[2]
    user_info = _USER_INFO.match(rest)
    if user_info is None:
        return False
    location, _, query = rest[user_info.end() :].partition("?")
    return "@" in location or any("@" in part.partition("=")[0] for part in query.split("&"))


class DatabaseConfig(StrictModel):
    url: str = "sqlite:///var/csat-hook.sqlite3"
    pool_size: int = Field(default=5, ge=1, le=100)

    @field_validator("url", mode="before")
    @classmethod
    def _trimmed(cls, value: object) -> object:
        # Read as a secret is (it holds the password): a Kubernetes secret or a secret file
        # ends with a newline, and SQLite made a file named "csat.sqlite3\n", PostgreSQL
        # looked for a database "csat\n".
        return value.strip() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        # Messages quote nothing of the URL: it holds the password.
        scheme = re.match(r"^(sqlite|postgres(?:ql)?)(?:\+(\w+))?://", value)
        if not scheme:
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        backend, driver = scheme.group(1), scheme.group(2)
        if driver is not None and driver != SHIPPED_DRIVERS.get(backend):
            # Taken, then every command ended in a traceback: psycopg2 or asyncpg not
            # installed, an unknown driver not found by SQLAlchemy.
            if backend == "postgres":
                raise ValueError(
                    "postgres:// takes no driver (postgres+... is no URL SQLAlchemy reads): "
                    "write postgresql:// (or postgresql+psycopg://)"
                )
            raise ValueError(
                f"the driver {driver[:32]!r} is not the one csat-hook ships: write "
                f"{backend}:// (or {backend}+{SHIPPED_DRIVERS[backend]}://)"
            )
        try:
            url = make_url(value)
            port = url.port
        except (ValueError, ArgumentError):
            raise ValueError("is not a valid URL (is the port a number?)") from None
        twice = sorted(key for key, given in url.query.items() if not isinstance(given, str))
        if twice:
            # The driver got both values as one tuple: a TypeError traceback from every
            # command (SQLite), a connection refused for "('1', '2')" (PostgreSQL). The
            # option is named, never its values (a password may be one).
            raise ValueError(f"the URL option {twice[0][:32]!r} is given twice: keep one")
        if url.get_backend_name() == "sqlite":
            _check_sqlite_url(url, port)
        else:
            _check_pg_hosts(url)
            _check_pg_socket_options(url)
        if port is not None and not 1 <= port <= 65535:
            raise ValueError("the port must be 1 to 65535")
        if "@" in (url.host or "") or (
            url.get_backend_name() != "sqlite" and _at_past_user_info(value)
        ):
            # The password ended at its first "@" and its rest became the host, which the
            # driver's connection errors quote, or (after a "/", a ":" or a "?") the host
            # and a database, a port or an option's name: check-config's masked URL showed
            # them, the driver's errors quoted the host.
            raise ValueError("an @ in the user name or password must be written %40")
        return value


def normalize_database_url(url: str) -> str:
    """Map Heroku-style ``postgres://`` URLs onto SQLAlchemy's psycopg 3 dialect."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
