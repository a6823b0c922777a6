"""An answer edited so that a rule no longer matches it (a 1 raised to a 5) before its alert went
out: the deliveries not yet started are cancelled, the alert says why, and nothing is sent.
What went out stays sent; a delivery a worker holds is left to it (the worker cancels it at
its next claim instead of sending); an attempt whose outcome is unknown is settled as usual.
Back to the bad rating, the cancelled deliveries go out once; an edit from good to bad still
alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.alerts import store as alerts_store
from csat_hook.alerts.report import delivery_text
from csat_hook.db.schema import alerts
from csat_hook.devtools.fake_notify import Script
from csat_hook.outbox import store
from tests.alerts.conftest import changed
from tests.alerts.conftest import raise_now
from tests.alerts.test_delivery import by_destination
from tests.alerts.test_delivery import notes
from tests.alerts.test_delivery import rows
from tests.outbox.test_worker import drain

EVERY = {"slack", "telegram", "crm", "note"}


def the_alert(services: Any) -> Any:
    with services.engine.connect() as conn:
        [alert] = conn.execute(sa.select(alerts)).all()
    return alert


def statuses(services: Any) -> dict[str, str]:
    return {name: row.status for name, row in by_destination(services).items()}


def delivered(fake_notify: Any, fake_helpdesk: Any) -> dict[str, int]:
    counts = {name: len(fake_notify.delivered(name)) for name in ("slack", "telegram", "webhook")}
    return counts | {"note": len(notes(fake_helpdesk))}


def test_a_queued_alert_whose_answer_improves_is_cancelled_not_sent(
    alerting, fake_notify, fake_helpdesk, clock
):
    assert raise_now(alerting, [changed(rating=1)]).queued == 4
    improved = raise_now(alerting, [changed(rating=5, previous_rating=1)])
    assert improved.raised == {} and improved.cancelled == 4

    drain(alerting.delivery_worker(), clock)

    assert delivered(fake_notify, fake_helpdesk) == dict.fromkeys(
        ("slack", "telegram", "webhook", "note"), 0
    )
    assert statuses(alerting) == dict.fromkeys(EVERY, "cancelled")
    alert = the_alert(alerting)
    assert alert.cancel_reason == "answer_improved" and alert.cancelled_at == clock()
    assert {delivery_text(r) for r in rows(alerting)} == {
        f"{name}: cancelled (answer improved)" for name in EVERY
    }


def test_an_alert_waiting_for_a_retry_is_cancelled_and_what_went_out_stays_sent(
    alerting, fake_notify, fake_helpdesk, clock
):
    fake_notify.script("slack", Script(status=503, body=b""))
    raise_now(alerting, [changed(rating=1)])
    worker = alerting.delivery_worker()
    worker.run_once(limit=10)
    assert statuses(alerting) == {"slack": "pending", "telegram": "sent", "crm": "sent"} | {
        "note": "sent"
    }

    assert raise_now(alerting, [changed(rating=5, previous_rating=1)]).cancelled == 1
    drain(worker, clock)

    assert len(fake_notify.requests("slack")) == 1  # the 503 only
    assert delivered(fake_notify, fake_helpdesk) == {
        "slack": 0,
        "telegram": 1,
        "webhook": 1,
        "note": 1,
    }
    assert statuses(alerting)["slack"] == "cancelled"
    assert {n: r.status for n, r in by_destination(alerting).items() if n != "slack"} == (
        dict.fromkeys(EVERY - {"slack"}, "sent")
    )


def test_a_delivery_in_flight_is_left_to_its_worker_which_then_does_not_send_it(
    alerting, fake_notify, fake_helpdesk, clock
):
    """The sync never cancels a row a worker holds. Its attempt ends as it ends: one that went
    out stays sent, one that comes back for a retry is cancelled at its next claim."""
    raise_now(alerting, [changed(rating=1)])
    lease = clock() + timedelta(seconds=alerting.config.delivery.lease_seconds)
    with alerting.engine.begin() as conn:
        claimed = {r.destination: r for r in store.claim_due(conn, "w:1:abc", clock(), lease, 10)}
    assert set(claimed) == EVERY

    assert raise_now(alerting, [changed(rating=5, previous_rating=1)]).cancelled == 0
    assert statuses(alerting) == dict.fromkeys(EVERY, "sending")
    assert {r.claimed_by for r in rows(alerting)} == {"w:1:abc"}

    # The holder's outcomes: the webhook went out; Slack answered 503 (a retry).
    with alerting.engine.begin() as conn:
        assert store.mark_sent(
            conn, claimed["crm"].id, "w:1:abc", clock(), external_id=None, body=None
        )
        for name in ("slack", "telegram", "note"):
            assert store.reschedule(
                conn,
                claimed[name].id,
                "w:1:abc",
                clock(),
                next_attempt_at=clock(),
                error="HTTP 503",
                http_status=503,
            )
    drain(alerting.delivery_worker(), clock)

    assert statuses(alerting) == {"crm": "sent"} | dict.fromkeys(
        ("slack", "telegram", "note"), "cancelled"
    )
    assert fake_notify.requests("slack") == [] and fake_notify.requests("telegram") == []
    assert notes(fake_helpdesk) == []


def test_an_attempt_of_unknown_outcome_is_settled_not_cancelled(
    alerting, fake_notify, fake_helpdesk, clock
):
    """It may have arrived: a note is looked up (found: sent), a webhook that would be sent
    again is not (cancelled, saying it may have arrived)."""
    fake_helpdesk.drop_next(1)
    fake_notify.script("webhook", Script(drop=True))
    raise_now(alerting, [changed(rating=1)])
    worker = alerting.delivery_worker()
    worker.run_once(limit=10)
    uncertain = by_destination(alerting)
    assert uncertain["note"].uncertain_since is not None
    assert uncertain["crm"].uncertain_since is not None

    assert raise_now(alerting, [changed(rating=5, previous_rating=1)]).cancelled == 0
    clock.advance(alerting.config.delivery.settle_seconds + 1)
    drain(worker, clock)

    settled = by_destination(alerting)
    assert settled["note"].status == "sent" and settled["note"].last_error.startswith("found")
    assert len(notes(fake_helpdesk)) == 1
    assert settled["crm"].status == "cancelled" and "may have arrived" in settled["crm"].last_error
    assert len(fake_notify.requests("webhook")) == 1


def test_back_to_the_bad_rating_a_withdrawal_that_may_have_arrived_is_queued_to_be_settled(
    alerting, fake_notify, fake_helpdesk, clock
):
    """The webhook's delivery cancelled as above (``answer_improved``, may have arrived) was
    cancelled by the withdrawal: the answer back to the 1 queues it again, its unknown
    outcome kept, so it is settled as a webhook's is: sent again as the same message (the
    same ``webhook-id``), which the receiver knows for a copy."""
    fake_notify.script("webhook", Script(drop=True))
    raise_now(alerting, [changed(rating=1)])
    worker = alerting.delivery_worker()
    worker.run_once(limit=10)
    uncertain = by_destination(alerting)["crm"].uncertain_since
    assert uncertain is not None
    raise_now(alerting, [changed(rating=5, previous_rating=1)])
    clock.advance(alerting.config.delivery.settle_seconds + 1)
    drain(worker, clock)
    assert "may have arrived" in by_destination(alerting)["crm"].last_error

    again = raise_now(alerting, [changed(rating=1, previous_rating=5)])
    assert (again.queued, again.cancelled) == (1, 0)
    crm = by_destination(alerting)["crm"]
    assert (crm.status, crm.last_error, crm.uncertain_since) == ("pending", None, uncertain)
    drain(worker, clock)

    first, second = fake_notify.requests("webhook")
    assert second.headers["webhook-id"] == first.headers["webhook-id"] and second.duplicate
    assert by_destination(alerting)["crm"].status == "sent"


def test_back_to_the_bad_rating_the_cancelled_alert_goes_out_once(
    alerting, fake_notify, fake_helpdesk, clock
):
    raise_now(alerting, [changed(rating=1)])
    raise_now(alerting, [changed(rating=5, previous_rating=1)])
    again = raise_now(alerting, [changed(rating=1, previous_rating=5)])
    assert again.raised == {} and again.queued == 4 and again.cancelled == 0

    drain(alerting.delivery_worker(), clock)

    assert delivered(fake_notify, fake_helpdesk) == dict.fromkeys(
        ("slack", "telegram", "webhook", "note"), 1
    )
    alert = the_alert(alerting)
    assert alert.cancel_reason is None and alert.cancelled_at is None
    assert statuses(alerting) == dict.fromkeys(EVERY, "sent")


def test_an_edit_from_good_to_bad_still_alerts(alerting, fake_notify, fake_helpdesk, clock):
    assert raise_now(alerting, [changed(rating=5)]).raised == {}
    assert raise_now(alerting, [changed(rating=1, previous_rating=5)]).raised == {"low": 1}
    drain(alerting.delivery_worker(), clock)
    assert delivered(fake_notify, fake_helpdesk) == dict.fromkeys(
        ("slack", "telegram", "webhook", "note"), 1
    )
    assert "(was 5/5)" in fake_notify.delivered("slack")[0].json()["text"]


def test_an_edit_the_rule_still_matches_cancels_nothing(
    alerting, fake_notify, fake_helpdesk, clock
):
    """1 → 2 under ``max_rating: 2``: still a low rating, the alert about the 1 goes out."""
    raise_now(alerting, [changed(rating=1)])
    assert raise_now(alerting, [changed(rating=2, previous_rating=1)]).cancelled == 0
    drain(alerting.delivery_worker(), clock)
    assert statuses(alerting) == dict.fromkeys(EVERY, "sent")
    assert the_alert(alerting).cancel_reason is None


def claim_all(services: Any, clock: Any, worker_id: str = "w:1:abc") -> dict[str, Any]:
    lease = clock() + timedelta(seconds=services.config.delivery.lease_seconds)
    with services.engine.begin() as conn:
        return {r.destination: r for r in store.claim_due(conn, worker_id, clock(), lease, 10)}


def test_a_worker_cancels_only_while_the_alert_is_withdrawn(alerting, fake_notify, clock):
    """The worker read the alert withdrawn at its claim; a sync made it stand again before
    the outcome was written (the answer back to the 1): the row is not cancelled but due
    again, its claim not counted as an attempt, and it goes out once."""
    raise_now(alerting, [changed(rating=1)])
    claimed = claim_all(alerting, clock)
    note = store.withdrawn_note("answer_improved")
    slack, telegram = claimed["slack"], claimed["telegram"]
    with alerting.engine.begin() as conn:
        assert (
            store.mark_cancelled(conn, slack.id, slack.alert_id, "w:1:abc", clock(), note=note)
            is None
        )
        # No longer this worker's claim: nothing changes.
        assert (
            store.mark_cancelled(conn, slack.id, slack.alert_id, "w:1:abc", clock(), note=note)
            is False
        )
    row = by_destination(alerting)["slack"]
    assert (row.status, row.attempts, row.claimed_by) == ("pending", 0, None)

    key = the_alert(alerting).key
    with alerting.engine.begin() as conn:
        alerts_store.withdraw(conn, [key], "answer_improved", clock())
        assert (
            store.mark_cancelled(
                conn, telegram.id, telegram.alert_id, "w:1:abc", clock(), note=note
            )
            is True
        )
    row = by_destination(alerting)["telegram"]
    assert (row.status, row.last_error) == ("cancelled", "cancelled: answer_improved")


def test_a_worker_does_not_wait_for_a_sync_changing_the_alert(alerting, clock):
    """PostgreSQL: while a sync's transaction holds the alert row (restoring it, say), the
    worker does not decide on what it read at the claim, nor wait in its outcome writer: the
    row is due again, decided at its next claim."""
    if alerting.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: the sync's transaction holds every writer")
    raise_now(alerting, [changed(rating=1)])
    key = the_alert(alerting).key
    with alerting.engine.begin() as conn:
        alerts_store.withdraw(conn, [key], "answer_improved", clock())
    slack = claim_all(alerting, clock)["slack"]
    note = store.withdrawn_note("answer_improved")
    with alerting.engine.connect() as sync, sync.begin():
        assert alerts_store.restore(sync, [key])
        with alerting.engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            done = store.mark_cancelled(
                conn, slack.id, slack.alert_id, "w:1:abc", clock(), note=note
            )
        assert done is None
    assert by_destination(alerting)["slack"].status == "pending"


def test_a_claim_racing_the_sync_never_takes_a_row_being_cancelled(alerting, clock):
    """PostgreSQL: the sync's cancelling UPDATE holds the rows until it commits; a claim
    meanwhile skips them (it does not wait, nor take a row the sync is cancelling), and after
    the commit they are cancelled, never claimed."""
    if alerting.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers: a claim waits for the sync's transaction")
    raise_now(alerting, [changed(rating=1)])
    key = the_alert(alerting).key
    with alerting.engine.connect() as sync, sync.begin():
        [alert_id] = alerts_store.withdraw(sync, [key], "answer_improved", clock())
        assert store.cancel_withdrawn(sync, [alert_id], "answer_improved", clock()) == 4
        with alerting.engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            lease = clock() + timedelta(seconds=60)
            assert store.claim_due(conn, "w:1:abc", clock(), lease, 10) == []
    assert statuses(alerting) == dict.fromkeys(EVERY, "cancelled")
