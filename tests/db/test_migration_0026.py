"""Migration 0026 (no index on answers by agent): up drops ``ix_answers_helpdesk_agent_key``
and keeps every answer; down puts it back; and the one statement SQLite routed through it (an
erasure's look-up of a dialog's answers) finds the same rows either way."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import sqlalchemy as sa

from csat_hook.db import migrate

AT = datetime(2026, 12, 5, 9, 30, tzinfo=UTC).replace(tzinfo=None)
ANSWER = sa.text(
    "INSERT INTO answers (survey_key, token, helpdesk, dialog_id, agent_key, issued_at, rating,"
    " submitted_at, source, updated_at) VALUES (:key, :key, 'chatwoot', :dialog, 'ann', :at, 5,"
    " :at, 'csv', :at)"
)
A_DIALOG = sa.text(
    "SELECT survey_key FROM answers WHERE helpdesk = 'chatwoot' AND dialog_id = :dialog"
)


def indexes(engine: sa.Engine) -> set[str]:
    return {str(ix["name"]) for ix in sa.inspect(engine).get_indexes("answers")}


def answers_of(engine: sa.Engine, dialog: str) -> list[str]:
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(A_DIALOG, {"dialog": dialog})]


def test_up_drops_the_index_and_keeps_the_answers_and_down_puts_it_back(engine):
    migrate.upgrade(engine, "0025")
    with engine.begin() as conn:
        conn.execute(ANSWER, [{"key": f"k{n}", "dialog": f"D-{n % 3}", "at": AT} for n in range(9)])
    assert "ix_answers_helpdesk_agent_key" in indexes(engine)
    before = answers_of(engine, "D-1")
    assert migrate.upgrade(engine) == ("0025", migrate.head_revision())
    assert "ix_answers_helpdesk_agent_key" not in indexes(engine)
    assert sorted(answers_of(engine, "D-1")) == sorted(before) == ["k1", "k4", "k7"]
    assert migrate.downgrade(engine, "0025") == "0025"
    assert "ix_answers_helpdesk_agent_key" in indexes(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM answers")).scalar() == 9
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
