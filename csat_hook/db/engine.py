"""Engines and transactions. SQLite by default, PostgreSQL (psycopg 3) through ``DATABASE_URL``."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.engine import make_url

from csat_hook import resolver
from csat_hook.db.sqlite_lock import SUFFIX as WRITER_SUFFIX
from csat_hook.db.sqlite_lock import ProcessWriterLock
from csat_hook.errors import ConfigError
from csat_hook.files import private_dir
from csat_hook.files import touch_private

T = TypeVar("T")

# How long a PostgreSQL connection may take to be made: libpq waits for ever by default, and a
# server that takes the connection and never answers (packets dropped by a firewall, a host
# mid-failover) held `db upgrade`, `serve`'s start and each webhook's request without end. A
# URL's own ?connect_timeout= is kept.
CONNECT_TIMEOUT_SECONDS = 10
# The environment variable that wins over database.url (config/loading.py reads it).
ENV_DATABASE_URL = "DATABASE_URL"
# How long one PostgreSQL statement may run (lock waits included) before the server cancels it
# (an OperationalError: the delivery worker backs off and tries again, a webhook answers 503).
# There was no bound: a statement waiting on a row an idle-in-transaction session held (an
# operator's open psql, a process stopped mid-transaction) held a delivery thread, the
# outcome writer or the heartbeat for as long as that session lived. Generous: no statement
# of the service takes near it; schema upgrades lift it (migrate.py). Set once a connection
# is made, only where nothing set one: a URL's own ``options=-c statement_timeout=...`` and a
# role's or database's (ALTER ROLE ... SET) are kept. Not a startup option: PgBouncer refuses
# a connection whose startup packet carries one it does not track.
STATEMENT_TIMEOUT_SECONDS = 300
# How soon a connection whose server went away without a word (a host powered off, a network
# that drops every packet, a failover that moved the address) is given up. Once a statement
# was sent the client only waits to read: with no TCP keepalive nothing is sent, so nothing
# can fail, and the wait lasted until the kernel's own keepalive (two hours on Linux, when
# it is on at all) or for ever; statement_timeout cannot help, as the server that would
# enforce it is gone. libpq's keepalives probe a connection idle this many seconds, then
# every KEEPALIVE_INTERVAL_SECONDS, and drop it after KEEPALIVE_COUNT unanswered probes
# (about a minute); tcp_user_timeout does the same for a statement the server never
# acknowledged (sent into the void: retransmitted for ~15 minutes otherwise). A live server
# answers probes however long a statement runs. Client-side libpq parameters, never sent in
# the startup packet (PgBouncer and Neon's proxy take them); ignored on a Unix socket. A
# URL's own values are kept.
KEEPALIVE_IDLE_SECONDS = 30
KEEPALIVE_INTERVAL_SECONDS = 10
KEEPALIVE_COUNT = 3
TCP_USER_TIMEOUT_SECONDS = 60
_STATEMENT_TIMEOUT_UNLESS_SET = (
    "SELECT set_config('statement_timeout', %s, false) "
    "WHERE current_setting('statement_timeout') = '0'"
)


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Create the engine; for SQLite, create the file's folder and set durable pragmas
    (ConfigError when the file cannot be created)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    options = parsed.query.get("options") or ""
    limit_statements = "statement_timeout" not in " ".join(
        [options] if isinstance(options, str) else options
    )
    engine = sa.create_engine(
        parsed,
        connect_args=pg_connect_args(parsed),
        pool_size=pool_size,
        max_overflow=pool_size,
        # No ping before each use: it costs a round trip per transaction (a third of the
        # webhook's). A connection that died with a database restart fails once; the pool is
        # then invalidated and run_transaction() retries on a fresh connection.
        pool_pre_ping=False,
        pool_recycle=1800,
        hide_parameters=True,  # error messages must not carry customer text
    )

    @sa.event.listens_for(engine, "do_connect")
    def _resolved(dialect: Any, _record: Any, _cargs: Any, params: dict[str, Any]) -> None:
        # Each new connection: a moved database (a failover's new DNS answer) is followed.
        try:
            resolve_host(params)
        except OSError as exc:  # nothing was sent: a failure to connect, retried as one
            host = params.get("host")
            raise dialect.loaded_dbapi.OperationalError(
                f"failed to resolve host {host!r}: {exc}"
            ) from None

    @sa.event.listens_for(engine, "connect")
    def _utc(dbapi_conn: Any, _record: Any) -> None:
        # Times are stored as naive UTC (UTCDateTime). A value that reaches the database as
        # an aware timestamp (a parameter without the column's type, inside an expression) is
        # cast with the session's time zone, the server's by default (Europe/Moscow, say):
        # the session's is UTC, whatever the server's. Committed: a transaction's SET would
        # be undone by the pool's rollback.
        with dbapi_conn.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
            if limit_statements:
                milliseconds = str(int(STATEMENT_TIMEOUT_SECONDS * 1000))
                cursor.execute(_STATEMENT_TIMEOUT_UNLESS_SET, (milliseconds,))
        dbapi_conn.commit()

    return engine


def pg_connect_args(url: sa.URL) -> dict[str, Any]:
    """The libpq parameters the service adds to a PostgreSQL URL's: the connect timeout and
    TCP keepalives (see :data:`CONNECT_TIMEOUT_SECONDS`, :data:`KEEPALIVE_IDLE_SECONDS`),
    each only where the URL gives none of its own."""
    ours: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "keepalives": 1,
        "keepalives_idle": KEEPALIVE_IDLE_SECONDS,
        "keepalives_interval": KEEPALIVE_INTERVAL_SECONDS,
        "keepalives_count": KEEPALIVE_COUNT,
        "tcp_user_timeout": int(TCP_USER_TIMEOUT_SECONDS * 1000),  # milliseconds
    }
    return {name: value for name, value in ours.items() if name not in url.query}


def resolve_host(params: dict[str, Any]) -> None:
    """Resolve the one host name of a connection's libpq parameters within its connect
    timeout (:mod:`csat_hook.resolver`), into ``hostaddr``: libpq and psycopg resolve it
    before ``connect_timeout`` applies, so a resolver that never answers held the thread for
    as long as it liked. ``host`` keeps the name (TLS checks the certificate against it and
    sends it as SNI; ``.pgpass`` lines match it), repeated once per address: each address is
    an attempt, in the resolver's order, as psycopg makes them.

    Left to libpq: no host (its default, a Unix socket, ``PGHOST``), an address, a socket
    path, several hosts, a ``hostaddr`` already given.
    A connect timeout of 0 (or less) resolves without a bound, as it connects. Raises
    OSError: :class:`~csat_hook.resolver.ResolveTimeoutError` past the timeout,
    ``socket.gaierror`` for a name that does not resolve."""
    host = params.get("host")
    if not isinstance(host, str) or not _one_host_name(host) or params.get("hostaddr"):
        return
    timeout = _connect_timeout(params.get("connect_timeout", CONNECT_TIMEOUT_SECONDS))
    # No port: the addresses are all that is kept (libpq connects to the URL's port).
    found = resolver.resolve(host, None, timeout)
    addresses = list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in found))
    if not addresses:
        raise OSError(f"{host} resolves to no address")
    params["host"] = ",".join([host] * len(addresses))
    params["hostaddr"] = ",".join(addresses)


def _one_host_name(host: str) -> bool:
    """Whether libpq's ``host`` is one name to resolve: not empty, not several, not a Unix
    socket's directory (``/...``, an abstract ``@...``, a Windows ``C:...``), not an IP
    address."""
    if not host or "," in host or resolver.is_address(host):
        return False
    return not (host.startswith(("/", "@")) or host[1:2] == ":")


def _connect_timeout(value: Any) -> float | None:
    """libpq's ``connect_timeout`` in seconds, as libpq reads it: None for none (0 or less),
    at least 2. Ours when it is not an integer (libpq then refuses to connect, but the
    name must not hang first)."""
    try:
        seconds = int(str(value).strip())
    except ValueError:
        seconds = CONNECT_TIMEOUT_SECONDS
    return None if seconds <= 0 else float(max(2, seconds))


def sqlite_file(url: str | sa.URL) -> str | None:
    """The file a SQLite ``url`` names (not in memory, not a ``file:`` URI); None for any
    other URL."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database:
        return None
    return None if database == ":memory:" or database.startswith("file:") else database


def _url_source(path: str) -> tuple[str, str]:
    """Where the SQLite file's URL came from, for an error about it: ``$DATABASE_URL`` (which
    wins over the file's ``database.url``; the loader says so of its own errors) when that
    variable names this file, else ``database.url``. An operator with the variable set read
    "database.url: cannot create …" and looked at a file whose database.url was fine."""
    given = os.environ.get(ENV_DATABASE_URL, "").strip()
    try:
        from_env = bool(given) and sqlite_file(given) == path
    except sa.exc.ArgumentError:
        from_env = False
    if from_env:
        return (
            f"${ENV_DATABASE_URL}",
            f" (the URL given by ${ENV_DATABASE_URL}, which wins over the file)",
        )
    return "database.url", ""


def _sqlite_engine(url: sa.URL) -> Engine:
    # The URL's own ?timeout= (checked by db/config.py), else ours: how long a write waits
    # for the writer lock, this process's and then another's.
    given = url.query.get("timeout")
    busy = float(given) if isinstance(given, str) else BUSY_SECONDS
    # A file path (not in memory, not a file: URI): its own permissions, and a lock file.
    path = sqlite_file(url)
    if path:
        # A file of something else is refused before anything is changed: it was made
        # owner-only first and the open then failed, its owner's file changed for nothing.
        if (problem := _not_sqlite(path)) is not None:
            key, given_by = _url_source(path)
            raise ConfigError(
                f"database.url: {path} is not a SQLite database ({problem}){given_by}; "
                f"nothing was changed: point {key} at the service's database, or at a new "
                "file"
            )
        # The file holds customer data: owner-only, and so are the -wal and -shm files,
        # which SQLite creates with the database file's permissions (and the writers' lock
        # file, which holds nothing but is made owner-only all the same).
        try:
            private_dir(Path(path).parent)
            touch_private(path)
            for companion in (f"{path}-wal", f"{path}-shm", path + WRITER_SUFFIX):
                if os.path.exists(companion):
                    touch_private(companion)
        except OSError as exc:  # a folder that is a file, no permission, a read-only disk
            raise ConfigError(
                f"database.url: cannot create the SQLite file {path} ({exc.strerror})"
                + _url_source(path)[1]
            ) from None
    engine = sa.create_engine(
        url,
        connect_args={"timeout": busy, "check_same_thread": False},
        pool_size=10,
        hide_parameters=True,  # error messages must not carry customer text
    )
    # One writer at a time inside this process. SQLite allows one writer anyway; without this
    # lock, waiting threads sit in SQLite's busy handler, which sleeps in steps of up to 100 ms.
    # Taken at BEGIN, released when the connection goes back to the pool (after COMMIT).
    writer = threading.Lock()
    # And one across processes (the web's, the worker's), waited for on a file lock: another
    # process's writers would otherwise wait in the busy handler's sleeps (db/sqlite_lock.py).
    across = ProcessWriterLock(path) if path else None

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level; transactions are begun explicitly below so that a
        # writer takes the lock up front (BEGIN IMMEDIATE) instead of failing when it
        # upgrades a read lock.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # Other processes (a separate worker).
        cursor.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
        _use_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")  # a 200 to a helpdesk means it is on disk
        cursor.execute("PRAGMA foreign_keys=ON")
        # 8 MiB per connection. It was 64 MiB for bulk imports, but the pages a first sync
        # writes come back from the OS's cache as fast: sync_bench (100,000 answers) and
        # forms_bench (1,000,000) took the same CPU with 8 MiB, and peaked 60-80 MB lower.
        cursor.execute("PRAGMA cache_size=-8192")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        options = conn.get_execution_options()
        if options.get(_SNAPSHOT):
            # Read only (snapshot()): WAL gives it one state from its first read, and
            # writers go on committing meanwhile.
            _driver_sql(conn, "BEGIN")
            return
        wait = options.get(LOCK_WAIT)
        deadline = time.monotonic() + (wait if wait is not None else busy)
        info = conn.connection.info
        if not info.get("csat_writer"):
            if not writer.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise sa.exc.OperationalError("BEGIN", None, TimeoutError("database is busy"))
            info["csat_writer"] = True
        if across is not None and not info.get("csat_across"):
            if not across.acquire(deadline):
                raise sa.exc.OperationalError("BEGIN", None, TimeoutError("database is busy"))
            info["csat_across"] = True
        if wait is None:
            _driver_sql(conn, "BEGIN IMMEDIATE")
            return
        # Another process's write: SQLite's busy handler waits what is left, not 30 s.
        left = max(1, int((deadline - time.monotonic()) * 1000))
        _driver_sql(conn, f"PRAGMA busy_timeout={left}")
        try:
            _driver_sql(conn, "BEGIN IMMEDIATE")
        finally:
            _driver_sql(conn, f"PRAGMA busy_timeout={int(busy * 1000)}")

    @sa.event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        try:
            if record.info.pop("csat_across", False) and across is not None:
                across.release()
        finally:  # whatever the file did, this process's writers are not locked out
            if record.info.pop("csat_writer", False):
                writer.release()

    return engine


def _driver_sql(conn: sa.Connection, sql: str) -> None:
    """``sql`` (a transaction's BEGIN, a PRAGMA: no parameters, no rows wanted) on the SQLite
    connection itself: ``exec_driver_sql`` set up a result and its events for each, about as
    much CPU as a short write's own statement. An error goes through SQLAlchemy's own
    handler, as ``exec_driver_sql``'s and ``db/frozen.py``'s do (an ``OperationalError``
    for "database is locked", handle_error events)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None  # a live Connection always has one
    try:
        raw.execute(sql)
    except sqlite3.Error as exc:
        conn._handle_dbapi_exception(exc, sql, None, None, None)  # raises


# The first 16 bytes of every SQLite 3 database file ("The Database Header", sqlite.org).
SQLITE_MAGIC = b"SQLite format 3\x00"


def _not_sqlite(path: str) -> str | None:
    """Why the existing ``path`` cannot be a SQLite database (a FIFO, a device, a file of
    other bytes); None when it may be one, is empty (SQLite makes a database of it) or is
    missing. A file that cannot be read is left to the open, which says why."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISDIR(mode):
        return None  # "cannot create the SQLite file (Is a directory)", said by the open
    if not stat.S_ISREG(mode):
        return "not a regular file"  # a FIFO would block the open, a device is no database
    try:
        with open(path, "rb") as file:
            head = file.read(len(SQLITE_MAGIC))
    except OSError:
        return None
    if head and head != SQLITE_MAGIC:
        return "it holds other data"
    return None


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (it stays so). The switch ignores busy_timeout: when processes
    open a new file together, the others get "database is locked" and must retry."""
    for attempt in range(100):
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if attempt == 99:
                raise
            time.sleep(0.05)


def once_more_if_dead(attempt: Callable[[], T], *, retry: bool = True) -> T:
    """``attempt()``, and once more if it failed on a dead connection (the database restarted
    since the connection was pooled: SQLAlchemy invalidated it, and the pool's older ones with
    it). Other errors propagate, and so does the second failure: the one retry policy for a
    unit of database work, whichever way it holds its connection."""
    try:
        return attempt()
    except sa.exc.DBAPIError as exc:
        if not retry or not exc.connection_invalidated:
            raise
    return attempt()


def run_transaction(
    engine: Engine, work: Callable[[sa.Connection], T], *, read_only: bool = False
) -> T:
    """``work(conn)`` in a transaction, once more on a fresh connection if the first one was
    dead (:func:`once_more_if_dead`). Other errors propagate.

    ``read_only`` work runs in a :func:`snapshot`: on SQLite it took the writer lock (a
    connection's first statement begins with BEGIN IMMEDIATE), so a short link's look-up or
    ``/healthz`` waited for whatever was writing, up to the 30 s busy timeout."""

    def attempt() -> T:
        if read_only:
            with snapshot(engine) as conn:
                return work(conn)
        with engine.begin() as conn:
            return work(conn)

    return once_more_if_dead(attempt)


_SNAPSHOT = "csat_snapshot"
# How long a write waits for SQLite's writer lock (this process's writers, then another
# process's: its busy timeout).
BUSY_SECONDS = 30
# An execution option: the seconds a unit of work on SQLite waits for the writer lock instead
# of BUSY_SECONDS, then fails (OperationalError), as a customer's click must not wait for a
# long write. PostgreSQL ignores it (an insert waits for no other writer).
LOCK_WAIT = "csat_lock_wait"


@contextlib.contextmanager
def snapshot(engine: Engine) -> Iterator[sa.Connection]:
    """A read-only transaction that sees one state of the database from its first statement
    to its last and holds no writer back: on SQLite a plain BEGIN without the writer lock
    (in WAL mode its reads share one snapshot while writers commit), on PostgreSQL
    REPEATABLE READ (one snapshot for every statement). Nothing may be written in it."""
    if engine.dialect.name == "postgresql":
        options: dict[str, Any] = {"isolation_level": "REPEATABLE READ"}
    else:
        options = {_SNAPSHOT: True}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        yield conn


def run_statement(engine: Engine, work: Callable[[sa.Connection], T]) -> T:
    """``work(conn)`` where ``work`` runs one statement that is atomic on its own: on
    PostgreSQL in autocommit (the statement commits as it returns, without the BEGIN and
    COMMIT round trips; durable as a COMMIT is), elsewhere in a transaction. Retried once on
    a fresh connection (:func:`once_more_if_dead`)."""

    def attempt() -> T:
        with statements(engine) as conn:
            return work(conn)

    return once_more_if_dead(attempt)


# A thread's held autocommit connection goes back after this long without a statement
# (PostgreSQL): checking a connection out and setting its isolation level cost more CPU than
# a short statement, so a busy thread keeps one.
HOLD_IDLE_SECONDS = 1.0


class HeldConnection:
    """An autocommit connection on PostgreSQL, kept from one statement to the next.

    :meth:`run` runs ``work(conn)``, one statement atomic on its own (or several that need
    no shared transaction), on the held connection, checking one out the first time; if the
    held one turned out dead (a database restart while it was idle) it is replaced and the
    work retried once, as :func:`run_statement` does. :meth:`release` closes it; the owner
    calls it after an idle spell (:data:`HOLD_IDLE_SECONDS`). Not thread-safe: one user at
    a time (a group commit's writing thread)."""

    def __init__(self) -> None:
        self._conn: sa.Connection | None = None

    def run(self, engine: Engine, work: Callable[[sa.Connection], T], *, retry: bool = True) -> T:
        """``work(conn)`` on the held connection; with ``retry`` False, a dead connection's
        error is raised, not retried (for work whose first statement may have committed
        before a later one failed)."""
        return once_more_if_dead(lambda: self._run_once(engine, work), retry=retry)

    def _run_once(self, engine: Engine, work: Callable[[sa.Connection], T]) -> T:
        conn = self._conn
        if conn is None or conn.engine is not engine:
            self.release()
            conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._conn = conn
        try:
            result = work(conn)
            conn.commit()  # ends SQLAlchemy's own autobegun unit; nothing to send
            return result
        except BaseException:
            self.release()  # a failed statement's connection is not kept, dead or not
            raise

    @property
    def holding(self) -> bool:
        """Whether a connection is held (open until :meth:`release`)."""
        return self._conn is not None

    def release(self) -> None:
        """Close the held connection, if any. Closed, not given back: the engine may have
        been disposed while it was held (its pool would keep it open); reconnecting after an
        idle second costs little."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()


@contextlib.contextmanager
def statements(engine: Engine) -> Iterator[sa.Connection]:
    """A connection for statements that are each atomic on their own (no shared transaction
    needed): on PostgreSQL in autocommit, which saves the BEGIN and COMMIT round trips; on
    SQLite a transaction as :meth:`Engine.begin` (its writer lock is taken at BEGIN)."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


# The database did not answer: refused, dropped, or no pooled connection free within the
# pool's timeout (every one held by a database that stopped answering).
UNAVAILABLE = (sa.exc.DBAPIError, sa.exc.TimeoutError)


def unavailable_cause(exc: BaseException) -> str:
    """The type name to log for an :data:`UNAVAILABLE` error: the driver's own error when
    there is one (never its text, which may quote data)."""
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    return type(cause).__name__


def connect_failure(exc: BaseException) -> str | None:
    """What to say when ``exc`` is a failure to connect to the database (None for any other
    error): ``cannot connect to the database: <the driver's first line>``. Only a
    connection's failure is said: it carries no statement, so nothing of the data, and the
    driver's first line names the host, port and user, never the password."""
    if not isinstance(exc, sa.exc.DBAPIError) or exc.statement is not None:
        return None
    lines = str(exc.orig).strip().splitlines()
    return f"cannot connect to the database: {lines[0] if lines else type(exc.orig).__name__}"


def is_data_error(exc: sa.exc.DBAPIError) -> bool:
    """True when the database refused the values themselves (a string too long, a NUL byte,
    a broken constraint): the same statement will fail again, whenever it is retried. False
    for what may pass later (connection lost, database locked, timeouts)."""
    return isinstance(exc, sa.exc.DataError | sa.exc.IntegrityError)


def ping(conn: sa.Connection) -> None:
    """A round trip to the database (the health check)."""
    conn.execute(sa.text("SELECT 1"))


def dialect_insert(dialect_name: str, table: sa.Table) -> Any:
    """An INSERT with ``ON CONFLICT`` support for the dialect (PostgreSQL or SQLite)."""
    return _dialect(dialect_name).insert(table)


@functools.cache
def _dialect(name: str) -> Any:
    return postgresql if name == "postgresql" else sqlite
