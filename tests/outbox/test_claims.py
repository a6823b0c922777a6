"""The one-statement claim on PostgreSQL: the same rows, surveys and next due time as the
claim, survey look-up and next-due query it replaces."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from csat_hook.db.engine import statements
from csat_hook.db.schema import surveys
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import Person
from csat_hook.outbox import store


def test_one_statement_claim_returns_rows_surveys_and_the_next_due(
    make_config, make_services, clock
):
    services = make_services(make_config())
    engine = services.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("the one-statement claim is PostgreSQL's")
    t0 = clock.now
    for i, delay in enumerate((0, 0, 60)):
        clock.now = t0 + timedelta(seconds=delay)
        services.intake.record_close(
            DialogClosed(helpdesk="eadesk", dialog_id=f"D-{i}", agent=Person(id="a"))
        )
    clock.now = t0
    lease = t0 + timedelta(seconds=30)
    with statements(engine) as conn:
        rows, found, due = store.claim_with_surveys(conn, "w-1", t0, lease, limit=5)
        tokens = dict(conn.execute(sa.select(surveys.c.id, surveys.c.token)).all())
    assert sorted(row.dialog_id for row in rows) == ["D-0", "D-1"]
    assert all(row.status == "sending" and row.claimed_by == "w-1" for row in rows)
    assert all(row.attempts == 1 and row.updated_at == t0 for row in rows)
    assert {row.survey_id for row in rows} == set(found)
    assert {sid: s.token for sid, s in found.items()} == {
        r.survey_id: tokens[r.survey_id] for r in rows
    }
    assert found[rows[0].survey_id].dialog_id == rows[0].dialog_id
    assert due == t0 + timedelta(seconds=60)  # the rows just claimed are not "due"

    with statements(engine) as conn:  # nothing due: no row, and still the next due time
        assert store.claim_with_surveys(conn, "w-1", t0, lease, limit=5) == ([], {}, due)
        # A full claim does not look for the next one (the caller claims again at once).
        later = t0 + timedelta(seconds=61)
        rows, found, next_due = store.claim_with_surveys(conn, "w-2", later, lease, limit=1)
    assert [row.dialog_id for row in rows] == ["D-2"] and next_due is None
    with statements(engine) as conn:  # an empty queue
        assert store.claim_with_surveys(conn, "w-1", later, lease, limit=5) == ([], {}, None)
