"""Migration 0029 (a retry of a close told from a new close): ``surveys.close_digest`` is
added nullable and empty; the replies an erasure cancelled before it are marked erased
(``outbox.erased_at``), those a reopen cancelled are not; going back drops the column and
keeps every row and the data-version triggers."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import sqlalchemy as sa

from csat_hook.db import migrate
from csat_hook.erasure.store import CANCEL_NOTE
from tests.db.test_data_version import triggered_tables

NOW = datetime(2026, 12, 7, 9, 30, tzinfo=UTC).replace(tzinfo=None)
SURVEY = sa.text(
    "INSERT INTO surveys (id, helpdesk, dialog_id, occurrence, status, created_at)"
    " VALUES (:id, 'freshdesk', :dialog, '', 'cancelled', :at)"
)
REPLY = sa.text(
    "INSERT INTO outbox (survey_id, helpdesk, dialog_id, context, status, attempts,"
    " next_attempt_at, created_at, updated_at, kind, last_error)"
    " VALUES (:id, 'freshdesk', :dialog, '{}', 'cancelled', 0, :at, :at, :at, 'reply', :note)"
)


def _fill(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for ident, dialog, note in ((1, "1042", CANCEL_NOTE), (2, "1043", "dialog reopened")):
            conn.execute(SURVEY, {"id": ident, "dialog": dialog, "at": NOW})
            conn.execute(REPLY, {"id": ident, "dialog": dialog, "at": NOW, "note": note})


def test_up_adds_the_digest_and_marks_the_replies_an_erasure_cancelled(engine):
    migrate.upgrade(engine, "0028")
    _fill(engine)
    assert migrate.upgrade(engine) == ("0028", migrate.head_revision())
    survey_columns = {c["name"]: c["nullable"] for c in sa.inspect(engine).get_columns("surveys")}
    assert survey_columns["close_digest"] is True
    with engine.connect() as conn:
        marked = dict(conn.execute(sa.text("SELECT dialog_id, erased_at FROM outbox")).all())
        digests = conn.execute(sa.text("SELECT close_digest FROM surveys")).scalars().all()
    assert marked["1043"] is None
    assert marked["1042"] is not None
    assert digests == [None, None]


def test_down_drops_the_digest_and_keeps_the_rows_and_triggers(engine):
    migrate.upgrade(engine, "0029")
    _fill(engine)
    with engine.begin() as conn:
        before = triggered_tables(conn)
    assert migrate.downgrade(engine, "0028") == "0028"
    assert "close_digest" not in {c["name"] for c in sa.inspect(engine).get_columns("surveys")}
    with engine.connect() as conn:
        assert triggered_tables(conn) == before
        assert conn.execute(sa.text("SELECT count(*) FROM surveys")).scalar() == 2
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
