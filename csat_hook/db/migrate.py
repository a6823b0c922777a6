"""Schema migrations with Alembic: ``csat-hook db upgrade``, the Procfile ``release:`` step,
and every start (so the embedded default needs no setup step).

Upgrades run under a PostgreSQL advisory lock (SQLite serialises them by itself), so processes
starting together don't race. A database created before migrations existed (tables, no
``alembic_version``) is first stamped with the revision its tables match, then upgraded:
nothing it holds is lost.

Alembic is imported only when a schema has to change or be inspected: a process whose database
is already at :data:`HEAD_REVISION` (every start after the first) never loads it, ≈ 11 MB of
RSS that a web worker, a delivery worker and a sync would otherwise carry for nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import sqlalchemy as sa

from csat_hook.db.engine import LOCK_WAIT
from csat_hook.db.engine import once_more_if_dead
from csat_hook.db.engine import snapshot
from csat_hook.errors import SchemaError

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

SCRIPT_LOCATION = "csat_hook.db:migrations"
# The newest migration's revision, checked against Alembic's scripts by a test: with the
# database already there, a start needs no Alembic at all (see create_schema).
HEAD_REVISION = "0030"
# pg_advisory_xact_lock key serialising schema changes between processes starting together.
SCHEMA_LOCK_KEY = 0x637361745F686B  # "csat_hk"
# How long a schema change waits for SQLite's writer lock (another process's upgrade, or any
# write), instead of the busy timeout: a day, the longest a URL's ?timeout= may ask. An
# upgrade (an index over every survey, a backfill) may rightly hold it longer than 30 s, and
# the processes that start with it waited that long, then failed with "database is busy";
# PostgreSQL's wait for the schema lock has no bound at all (_schema_lock).
SQLITE_SCHEMA_WAIT_SECONDS = 86_400


def _config(connection: sa.Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision among Alembic's scripts (:data:`HEAD_REVISION` when they agree)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def known_revisions() -> list[str]:
    """Every revision among Alembic's scripts, oldest first."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_config()).walk_revisions()  # newest first
    return [script.revision for script in scripts][::-1]


def _check_revisions(before: str | None, revision: str) -> None:
    """Refuse, before Alembic touches anything, a database or a target this release cannot
    upgrade: Alembic's own refusal is a traceback that says neither what happened nor what to
    do (a rollback of the app after an upgrade is the usual cause)."""
    known = known_revisions()
    newest = known[-1]
    if before is not None and before not in known:
        raise SchemaError(
            f"the database schema is at revision {before[:64]!r}, which this release does not "
            f"know (its newest is {newest}): a newer release upgraded it. Run that release "
            "(or one at least as new); nothing was changed"
        )
    if revision == "head":
        return
    if revision not in known:
        raise SchemaError(
            f"no schema revision {revision[:64]!r}: this release knows {known[0]}…{newest}"
        )
    if before is not None and known.index(revision) < known.index(before):
        raise SchemaError(
            f"the database schema is at revision {before}, past {revision}: "
            "`db upgrade` does not go back; nothing was changed"
        )


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


# What the first release's create_all made (tables, and the columns of its surveys table
# that tell it from another application's): a database with them is stamped, not rebuilt.
_FIRST_TABLES = frozenset({"surveys", "outbox"})
_FIRST_SURVEY_COLUMNS = frozenset({"helpdesk", "dialog_id", "occurrence", "token", "status"})


def _pre_migrations_revision(conn: sa.Connection) -> str | None:
    """The revision a database made before migrations existed matches, judged by its tables;
    None for a database without csat-hook's tables (one another application uses too).

    A table of csat-hook's name that csat-hook did not make (another application's
    ``surveys`` or ``outbox`` in a shared database) is refused (SchemaError, nothing changed):
    the database was stamped as csat-hook's own and the next migration ended in a traceback
    on a table it did not know."""
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    if tables >= _FIRST_TABLES:
        columns = {column["name"] for column in inspector.get_columns("surveys")}
        if columns >= _FIRST_SURVEY_COLUMNS:
            return "0002" if "answers" in tables else "0001"
    from csat_hook.db.schema import metadata

    clash = sorted(tables & set(metadata.tables))
    if clash:
        raise SchemaError(
            f"the database holds a table named {clash[0][:64]!r} that csat-hook did not make "
            "(it has no alembic_version): give csat-hook a database, or a PostgreSQL schema, "
            "of its own; nothing was changed"
        )
    return None


# The database refused to change its schema for want of rights, not for anything in the data:
# PostgreSQL's insufficient_privilege, invalid_schema_name (no schema on the search_path the user
# may create in), read_only_sql_transaction; SQLite's SQLITE_PERM and SQLITE_READONLY.
_REFUSALS = {"42501", "3F000", "25006", 3, 8}


def _refused(exc: sa.exc.DBAPIError) -> SchemaError | None:
    """What to say when ``exc`` is the database refusing a schema change to this user; None for
    any other error. Only the driver's first line is said: it names the schema or the table,
    never a value (PostgreSQL's DETAIL lines and the statement's parameters are left out)."""
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code is None and isinstance(getattr(orig, "sqlite_errorcode", None), int):
        code = orig.sqlite_errorcode & 0xFF  # type: ignore[union-attr]  # the primary result code
    if code not in _REFUSALS:
        return None
    lines = str(orig).strip().splitlines()
    return SchemaError(
        f"the database refused the schema change ({lines[0] if lines else code}): run "
        "`csat-hook db upgrade` as a user that may create and alter tables in its schema "
        "(the owner); nothing was changed"
    )


def upgrade(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the schema to ``revision``; return (revision before, revision after).

    Raises :class:`~csat_hook.errors.SchemaError` (nothing changed: one transaction) when the
    database is newer than this release, the target is unknown or behind it, or the database
    user may not change the schema."""
    try:
        return _upgrade(engine, revision)
    except sa.exc.DBAPIError as exc:
        problem = _refused(exc)
        if problem is None:
            raise
        raise problem from None


def _upgrade(engine: sa.Engine, revision: str) -> tuple[str | None, str | None]:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with _for_schema_changes(engine).begin() as conn:
        _schema_lock(conn)
        config = _config(conn)
        before = MigrationContext.configure(conn).get_current_revision()
        _check_revisions(before, revision)  # before anything is stamped
        if before is None:
            baseline = _pre_migrations_revision(conn)
            if baseline is not None:
                _check_revisions(baseline, revision)
                logger.info("db.stamp-existing", extra={"key": baseline})
                command.stamp(config, baseline)
                before = baseline
        if before != head_revision() or revision != "head":
            command.upgrade(config, revision)
        after = MigrationContext.configure(conn).get_current_revision()
    if after != before:
        logger.info("db.upgraded", extra={"status": f"{before or 'empty'} -> {after}"})
    return before, after


def downgrade(engine: sa.Engine, revision: str) -> str | None:
    """Go back to ``revision`` (its tables' data is dropped); return the revision after."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with _for_schema_changes(engine).begin() as conn:
        _schema_lock(conn)
        command.downgrade(_config(conn), revision)
        return MigrationContext.configure(conn).get_current_revision()


def _for_schema_changes(engine: sa.Engine) -> sa.Engine:
    """``engine`` for a schema change's transaction: on SQLite, waiting
    :data:`SQLITE_SCHEMA_WAIT_SECONDS` for the writer lock (PostgreSQL's: :func:`_schema_lock`)."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{LOCK_WAIT: SQLITE_SCHEMA_WAIT_SECONDS})


def _schema_lock(conn: sa.Connection) -> None:
    """On PostgreSQL, take the schema lock for the transaction, without the connection's
    statement timeout (``db/engine.py``): waiting for another process's upgrade, and an
    upgrade's own statements (an index on a large table), may rightly take longer."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})


def create_schema(engine: sa.Engine) -> None:
    """Create or upgrade the schema to the latest migration (idempotent, concurrency-safe).

    A database already at :data:`HEAD_REVISION` is left as it is without loading Alembic.
    Anything else (empty, older, made before migrations, or newer than this code: then a
    :class:`~csat_hook.errors.SchemaError` naming both revisions, nothing changed) goes
    through :func:`upgrade`.

    Tried once more on a fresh connection when the first was dropped by the server
    (:func:`~csat_hook.db.engine.once_more_if_dead`: a failover or a restart terminating
    connections as this process starts): every process's start runs it, and a ``worker``,
    a web process's boot (which stops gunicorn's master with it) or ``serve`` ended there
    with a traceback, while a second try would have found the database answering."""

    def at_head_or_upgraded() -> None:
        if not _at_head(engine):
            upgrade(engine)

    once_more_if_dead(at_head_or_upgraded)


def _at_head(engine: sa.Engine) -> bool:
    """Whether the database's one ``alembic_version`` row is :data:`HEAD_REVISION`. A read
    in a :func:`~csat_hook.db.engine.snapshot`: on SQLite a plain transaction took the
    writer lock, and every process's start waited behind another's write (a sync's), then
    failed with "database is busy"."""
    with snapshot(engine) as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return False
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    return [row[0] for row in versions] == [HEAD_REVISION]
