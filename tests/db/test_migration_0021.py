"""Migration 0021 (an erasure's mark on a reply being sent): ``outbox.erased_at`` is added
nullable and empty (no row was marked before it); going back drops it and keeps every row
and the data-version triggers."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import sqlalchemy as sa

from csat_hook.db import migrate
from tests.db.test_data_version import triggered_tables

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC).replace(tzinfo=None)
SURVEY = sa.text(
    "INSERT INTO surveys (id, helpdesk, dialog_id, occurrence, status, created_at)"
    " VALUES (1, 'zendesk', '5158', '', 'queued', :at)"
)
REPLY = sa.text(
    "INSERT INTO outbox (survey_id, helpdesk, dialog_id, context, status, attempts,"
    " next_attempt_at, created_at, updated_at, kind)"
    " VALUES (1, 'zendesk', '5158', '{}', 'sending', 1, :at, :at, :at, 'reply')"
)


def columns(engine: sa.Engine) -> dict[str, bool]:
    return {c["name"]: c["nullable"] for c in sa.inspect(engine).get_columns("outbox")}


def test_up_adds_the_mark_empty_and_nullable(engine):
    migrate.upgrade(engine, "0020")
    with engine.begin() as conn:
        conn.execute(SURVEY, {"at": NOW})
        conn.execute(REPLY, {"at": NOW})
    assert "erased_at" not in columns(engine)
    assert migrate.upgrade(engine) == ("0020", migrate.head_revision())
    assert columns(engine)["erased_at"] is True
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT erased_at, status FROM outbox")).one() == (
            None,
            "sending",
        )


def test_down_drops_the_mark_and_keeps_the_rows_and_triggers(engine):
    migrate.upgrade(engine, "0021")
    with engine.begin() as conn:
        conn.execute(SURVEY, {"at": NOW})
        conn.execute(REPLY, {"at": NOW})
        before = triggered_tables(conn)
    assert migrate.downgrade(engine, "0020") == "0020"
    assert "erased_at" not in columns(engine)
    with engine.connect() as conn:
        assert triggered_tables(conn) == before
        assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar() == 1
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
