"""Migration 0019 (skipped rows name their source): rows recorded before it keep their data
and name no source; going back drops only the column, and SQLite's data-version triggers
(migration 0009) stay on the table."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import sqlalchemy as sa

from csat_hook.db import migrate
from csat_hook.sync import report_key
from tests.db.test_data_version import triggered_tables

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
SKIPPED = sa.text(
    "INSERT INTO sync_skipped_rows (fingerprint, source, source_ref, reason, detail, "
    "recorded_at) VALUES (:fp, 'csv', 'row 9', 'bad_rating', 'x', :at)"
)


def columns(engine: sa.Engine) -> list[str]:
    return [c["name"] for c in sa.inspect(engine).get_columns("sync_skipped_rows")]


def test_rows_recorded_before_name_no_source(engine):
    migrate.upgrade(engine, "0018")
    with engine.begin() as conn:
        conn.execute(SKIPPED, {"fp": "r2-old", "at": NOW})
    assert migrate.upgrade(engine) == ("0018", migrate.head_revision())
    assert "source_key" in columns(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT fingerprint, source, reason, source_key FROM sync_skipped_rows")
        ).all()
    assert [tuple(r) for r in rows] == [("r2-old", "csv", "bad_rating", None)]


def test_down_drops_the_column_keeps_the_rows_and_the_triggers(engine):
    migrate.upgrade(engine, "0019")
    with engine.begin() as conn:
        conn.execute(SKIPPED, {"fp": "r2-kept", "at": NOW})
        conn.execute(sa.text("UPDATE sync_skipped_rows SET source_key = 'csv:/a/r.csv'"))
        triggers = triggered_tables(conn).get("sync_skipped_rows")
    sqlite = engine.dialect.name == "sqlite"
    assert triggers == ({"counter:insert", "counter:update", "counter:delete"} if sqlite else None)
    assert migrate.downgrade(engine, "0018") == "0018"
    assert "source_key" not in columns(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT fingerprint FROM sync_skipped_rows")).all() == [
            ("r2-kept",)
        ]
        assert triggered_tables(conn).get("sync_skipped_rows") == triggers
        before = report_key.read_version(conn)
    with engine.begin() as conn:
        conn.execute(SKIPPED, {"fp": "r2-new", "at": NOW})
    with engine.connect() as conn:
        assert report_key.read_version(conn) != before  # a write still moves the version
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
    with engine.connect() as conn:
        keys = conn.execute(sa.text("SELECT source_key FROM sync_skipped_rows")).scalars().all()
    assert keys == [None, None]
