"""Migration 0024 (a worker woken only while its listener hears): ``workers.listening_at`` is
added nullable and empty (a worker's next beat writes it; one of an earlier release never
does, and is never the one chosen); going back drops it and keeps every row."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import sqlalchemy as sa

from csat_hook.db import migrate
from tests.db.test_data_version import triggered_tables

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC).replace(tzinfo=None)
WORKER = sa.text("INSERT INTO workers (id, started_at, beat_at) VALUES ('w1', :at, :at)")


def columns(engine: sa.Engine) -> dict[str, bool]:
    return {c["name"]: c["nullable"] for c in sa.inspect(engine).get_columns("workers")}


def test_up_adds_the_column_empty_and_nullable(engine):
    migrate.upgrade(engine, "0023")
    with engine.begin() as conn:
        conn.execute(WORKER, {"at": NOW})
    assert "listening_at" not in columns(engine)
    assert migrate.upgrade(engine) == ("0023", migrate.head_revision())
    assert columns(engine)["listening_at"] is True
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT id, listening_at FROM workers")).one() == ("w1", None)


def test_down_drops_the_column_and_keeps_the_rows_and_triggers(engine):
    migrate.upgrade(engine, "0024")
    with engine.begin() as conn:
        conn.execute(WORKER, {"at": NOW})
        before = triggered_tables(conn)
    assert migrate.downgrade(engine, "0023") == "0023"
    assert "listening_at" not in columns(engine)
    with engine.connect() as conn:
        assert triggered_tables(conn) == before
        assert conn.execute(sa.text("SELECT count(*) FROM workers")).scalar() == 1
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
