"""Migration 0030 (erasures made before 0029): a reply a reopen had cancelled, of a survey an
earlier release's ``csat-hook erase`` erased, is marked erased (``outbox.erased_at``) as the
erasure marks it now, so that no late retry of its close re-arms the survey with the erased
customer's data; the reopen-cancelled replies of surveys nobody erased stay unmarked; going
back leaves the marks (nothing to undo) and keeps every row and the data-version triggers."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.db import migrate
from csat_hook.db.schema import outbox
from tests.db.test_data_version import triggered_tables

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC).replace(tzinfo=None)
ERASED_AT = datetime(2026, 12, 6, 14, 0, tzinfo=UTC).replace(tzinfo=None)
SECRET = "migration-0030-test-secret"
SURVEY = sa.text(
    "INSERT INTO surveys (id, helpdesk, dialog_id, occurrence, status, created_at, token)"
    " VALUES (:id, 'freshdesk', :dialog, '', 'cancelled', :at, :token)"
)
# As the erasure of an earlier release left it: the reopen's note, the text and context
# erased, no mark.
REPLY = sa.text(
    "INSERT INTO outbox (survey_id, helpdesk, dialog_id, context, status, attempts,"
    " next_attempt_at, created_at, updated_at, kind, last_error)"
    " VALUES (:id, 'freshdesk', :dialog, '{}', :status, 0, :at, :at, :at, 'reply',"
    " 'dialog reopened before sending')"
)
ERASURE = sa.text(
    "INSERT INTO erasures (survey_key, dialog_id, erased_at) VALUES (:key, :dialog, :at)"
)


TOKENS = {
    dialog: tokens.sign(
        SECRET, tokens.SurveyRef(helpdesk="freshdesk", dialog_id=dialog, agent="7", issued_at=NOW)
    )
    for dialog in ("1042", "1043", "1044")
}


def _fill(engine: sa.Engine) -> None:
    """Surveys 1 (erased) and 2 (not) of dialogs 1042 and 1043, each reply cancelled by a
    reopen; survey 3, of an erased dialog 1044 too, whose reply went out (never marked: a
    sent reply is no cancelled survey a retry could re-arm)."""
    with engine.begin() as conn:
        for ident, dialog, status in ((1, "1042", "cancelled"), (2, "1043", "cancelled")):
            token = TOKENS[dialog]
            conn.execute(SURVEY, {"id": ident, "dialog": dialog, "at": NOW, "token": token})
            conn.execute(REPLY, {"id": ident, "dialog": dialog, "at": NOW, "status": status})
        token = TOKENS["1044"]
        conn.execute(SURVEY, {"id": 3, "dialog": "1044", "at": NOW, "token": token})
        conn.execute(REPLY, {"id": 3, "dialog": "1044", "at": NOW, "status": "sent"})
        for dialog in ("1042", "1044"):
            key = tokens.survey_key(TOKENS[dialog])
            conn.execute(ERASURE, {"key": key, "dialog": dialog, "at": ERASED_AT})


def _marks(engine: sa.Engine) -> dict[str, datetime | None]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.dialog_id, outbox.c.erased_at)).all()
    return {dialog: erased_at for dialog, erased_at in rows}


def test_up_marks_the_reopen_cancelled_replies_of_erased_surveys_only(engine):
    migrate.upgrade(engine, "0029")
    _fill(engine)
    assert migrate.upgrade(engine) == ("0029", migrate.head_revision())
    assert _marks(engine) == {"1042": ERASED_AT.replace(tzinfo=UTC), "1043": None, "1044": None}
    # Run again (a database marked already): nothing changes.
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0029'"))
    migrate.upgrade(engine)
    assert _marks(engine) == {"1042": ERASED_AT.replace(tzinfo=UTC), "1043": None, "1044": None}


def test_down_keeps_the_rows_and_triggers(engine):
    migrate.upgrade(engine, "0029")
    _fill(engine)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        before = triggered_tables(conn)
    assert migrate.downgrade(engine, "0029") == "0029"
    with engine.connect() as conn:
        assert triggered_tables(conn) == before
        assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar() == 3
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
