"""The one-statement claim on PostgreSQL: the same rows, surveys and next due time as the
claim, survey look-up and next-due query it replaces. On both databases a claim returns the
columns a delivery reads, with the stored values, and no others."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from csat_hook.db.engine import statements
from csat_hook.db.schema import outbox
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


def test_a_claim_returns_what_delivery_reads_as_stored(services, clock):
    services.intake.record_close(
        DialogClosed(
            helpdesk="eadesk",
            dialog_id="D-9",
            agent=Person(id="a-7", name="Anna", email="anna@example.com"),
            customer=Person(id="c-1", name="Carl", email="carl@example.com"),
            team="L1",
            channel="web",
            language="de",
            reply_context={"inbox": 3},
        )
    )
    worker = services.delivery_worker(worker_id="w-9")
    [(row, survey)], _ = worker._claim(5)
    with services.engine.connect() as conn:
        stored_survey = conn.execute(sa.select(surveys)).one()._mapping
        stored_row = conn.execute(sa.select(outbox)).one()._mapping

    assert {name: getattr(survey, name) for name in store.SURVEY} == {
        name: stored_survey[name] for name in store.SURVEY
    }
    assert {name: getattr(row, name) for name in store.CLAIMED} == {
        name: stored_row[name] for name in store.CLAIMED
    }
    assert (survey.channel, survey.team, survey.customer_email) == ("web", "L1", "carl@example.com")
    assert row.context == {"inbox": 3} and row.claimed_by == "w-9" and row.attempts == 1
    # A column not claimed is absent, never silently empty.
    with pytest.raises(AttributeError):
        _ = row.next_attempt_at
    with pytest.raises(AttributeError):
        _ = survey.closed_at


def test_a_claim_says_whether_the_dialog_has_a_remembered_reopen_since_the_close(services, clock):
    """A reopen remembered after its close was recorded (a close and its reopen recorded at
    once by two processes, neither seeing the other) is read by the claim, on both paths
    (PostgreSQL's one statement; the claim and its survey look-up elsewhere), under the rule
    that skips a stale close: a believed close time no later than the reopen."""
    from csat_hook.db.engine import run_transaction
    from csat_hook.intake import store as intake_store

    now = clock.now
    reopened_at = now - timedelta(seconds=60)
    close_times = {
        "before": (now - timedelta(seconds=120),),
        "at": (reopened_at,),
        "after": (now - timedelta(seconds=30),),
        "unknown": (),
        "never-reopened": (now - timedelta(seconds=120),),
    }
    for dialog, times in close_times.items():
        services.intake.record_close(
            DialogClosed(
                helpdesk="eadesk", dialog_id=dialog, agent=Person(id="a"), close_times=times
            )
        )

    def remember(conn: sa.Connection) -> None:
        for dialog in close_times:
            if dialog != "never-reopened":
                intake_store.remember_reopen(conn, "eadesk", dialog, reopened_at, now)

    run_transaction(services.engine, remember)
    clock.advance(services.config.policy.send_delay_seconds + 1)
    claimed, _ = services.delivery_worker(worker_id="w-1")._claim(10)

    reopened = {row.dialog_id: getattr(survey, store.REOPENED_SINCE) for row, survey in claimed}
    assert reopened == {
        "before": True,
        "at": True,  # a reopen at the very time of the close counts as after it
        "after": False,
        "unknown": False,  # the receive time stands in: not believed (only the cancel)
        "never-reopened": False,
    }
