"""Schema migrations with Alembic: ``csat-hook db upgrade``, the Procfile ``release:`` step,
and every start (so the embedded default needs no setup step).

Upgrades run under a PostgreSQL advisory lock (SQLite serialises them by itself), so processes
starting together don't race. A database created before migrations existed (tables, no
``alembic_version``) is first stamped with the revision its tables match, then upgraded:
nothing it holds is lost.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

logger = logging.getLogger(__name__)

SCRIPT_LOCATION = "csat_hook.db:migrations"
# pg_advisory_xact_lock key serialising schema changes between processes starting together.
SCHEMA_LOCK_KEY = 0x637361745F686B  # "csat_hk"


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _pre_migrations_revision(conn: sa.Connection) -> str | None:
    """The revision a database made before migrations existed matches, judged by its tables."""
    tables = set(sa.inspect(conn).get_table_names())
    if "answers" in tables:
        return "0002"
    if "surveys" in tables:
        return "0001"
    return None


def upgrade(engine: sa.Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring the schema to ``revision``; return (revision before, revision after)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        config = _config(conn)
        before = MigrationContext.configure(conn).get_current_revision()
        if before is None:
            baseline = _pre_migrations_revision(conn)
            if baseline is not None:
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
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        command.downgrade(_config(conn), revision)
        return MigrationContext.configure(conn).get_current_revision()


def create_schema(engine: sa.Engine) -> None:
    """Create or upgrade the schema to the latest migration (idempotent, concurrency-safe)."""
    upgrade(engine)
