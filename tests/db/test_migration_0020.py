"""Migration 0020 (early reopens): the table is created empty, keyed by dialog, with no
data-version trigger on SQLite (the report reads none of it: migration 0009 tracks only the
tables it reads); going back drops it and leaves the other tables and their triggers."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from csat_hook.db import migrate
from tests.db.test_data_version import triggered_tables

NOW = datetime(2026, 12, 4, 9, 30, tzinfo=UTC).replace(tzinfo=None)
REOPEN = sa.text(
    "INSERT INTO early_reopens (helpdesk, dialog_id, reopened_at, received_at) "
    "VALUES ('zendesk', :dialog, :at, :at)"
)


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_up_creates_the_table_keyed_by_dialog(engine):
    migrate.upgrade(engine, "0019")
    assert "early_reopens" not in tables(engine)
    assert migrate.upgrade(engine) == ("0019", migrate.head_revision())
    assert "early_reopens" in tables(engine)
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("early_reopens")["constrained_columns"] == [
        "helpdesk",
        "dialog_id",
    ]
    assert [i["column_names"] for i in inspector.get_indexes("early_reopens")] == [["received_at"]]
    with engine.begin() as conn:
        conn.execute(REOPEN, {"dialog": "5158", "at": NOW})
        assert "early_reopens" not in triggered_tables(conn)
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(REOPEN, {"dialog": "5158", "at": NOW})


def test_down_drops_the_table_and_keeps_the_triggers(engine):
    migrate.upgrade(engine, "0020")
    with engine.begin() as conn:
        conn.execute(REOPEN, {"dialog": "5158", "at": NOW})
        before = triggered_tables(conn)
    assert migrate.downgrade(engine, "0019") == "0019"
    assert "early_reopens" not in tables(engine)
    with engine.connect() as conn:
        assert triggered_tables(conn) == before
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM early_reopens")).scalar() == 0
