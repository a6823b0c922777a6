"""Migration 0023 (a destination's kind changed under its name): ``outbox.destination_kind``
is added nullable and empty (the kind the queued rows were meant for is nowhere in the
database: they are sent as their destination is configured, as before); going back drops it
and keeps every row and the data-version triggers."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import sqlalchemy as sa

from csat_hook.db import migrate
from tests.db.test_data_version import triggered_tables

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC).replace(tzinfo=None)
ALERT = sa.text(
    "INSERT INTO alerts (id, key, ref, kind, rule, rating, payload, created_at)"
    " VALUES (1, 'k1', 'csat-alert-k1', 'answer', 'low', 1, '{}', :at)"
)
DELIVERY = sa.text(
    "INSERT INTO outbox (id, helpdesk, dialog_id, context, status, attempts, next_attempt_at,"
    " created_at, updated_at, kind, alert_id, destination, delivery_key)"
    " VALUES (1, 'generic', 'D-1', '{}', 'pending', 0, :at, :at, :at, 'alert', 1, 'crm',"
    " '1:crm')"
)


def columns(engine: sa.Engine) -> dict[str, bool]:
    return {c["name"]: c["nullable"] for c in sa.inspect(engine).get_columns("outbox")}


def test_up_adds_the_kind_empty_and_nullable(engine):
    migrate.upgrade(engine, "0022")
    with engine.begin() as conn:
        conn.execute(ALERT, {"at": NOW})
        conn.execute(DELIVERY, {"at": NOW})
    assert "destination_kind" not in columns(engine)
    assert migrate.upgrade(engine) == ("0022", migrate.head_revision())
    assert columns(engine)["destination_kind"] is True
    with engine.connect() as conn:
        assert conn.execute(
            sa.text("SELECT destination_kind, destination, status FROM outbox")
        ).one() == (None, "crm", "pending")


def test_down_drops_the_kind_and_keeps_the_rows_and_triggers(engine):
    migrate.upgrade(engine, "0023")
    with engine.begin() as conn:
        conn.execute(ALERT, {"at": NOW})
        conn.execute(DELIVERY, {"at": NOW})
        before = triggered_tables(conn)
    assert migrate.downgrade(engine, "0022") == "0022"
    assert "destination_kind" not in columns(engine)
    with engine.connect() as conn:
        assert triggered_tables(conn) == before
        assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar() == 1
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
