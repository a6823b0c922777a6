"""Migration 0022 (a withdrawn answer alert): ``alerts.cancelled_at`` and
``alerts.cancel_reason`` are added nullable and empty (no alert was cancelled before it);
going back drops them and keeps every row and the data-version triggers."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import sqlalchemy as sa

from csat_hook.db import migrate
from tests.db.test_data_version import triggered_tables

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC).replace(tzinfo=None)
ALERT = sa.text(
    "INSERT INTO alerts (id, key, ref, kind, rule, rating, payload, created_at)"
    " VALUES (1, 'k1', 'csat-alert-k1', 'answer', 'low', 1, '{}', :at)"
)
ADDED = {"cancelled_at", "cancel_reason"}


def columns(engine: sa.Engine) -> dict[str, bool]:
    return {c["name"]: c["nullable"] for c in sa.inspect(engine).get_columns("alerts")}


def test_up_adds_the_mark_empty_and_nullable(engine):
    migrate.upgrade(engine, "0021")
    with engine.begin() as conn:
        conn.execute(ALERT, {"at": NOW})
    assert not ADDED & columns(engine).keys()
    assert migrate.upgrade(engine) == ("0021", migrate.head_revision())
    assert {name: columns(engine)[name] for name in ADDED} == dict.fromkeys(ADDED, True)
    with engine.connect() as conn:
        assert conn.execute(
            sa.text("SELECT cancelled_at, cancel_reason, rating FROM alerts")
        ).one() == (None, None, 1)


def test_down_drops_the_mark_and_keeps_the_rows_and_triggers(engine):
    migrate.upgrade(engine, "0022")
    with engine.begin() as conn:
        conn.execute(ALERT, {"at": NOW})
        before = triggered_tables(conn)
    assert migrate.downgrade(engine, "0021") == "0021"
    assert not ADDED & columns(engine).keys()
    with engine.connect() as conn:
        assert triggered_tables(conn) == before
        assert conn.execute(sa.text("SELECT count(*) FROM alerts")).scalar() == 1
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
