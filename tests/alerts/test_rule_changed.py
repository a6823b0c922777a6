"""The operator changes the ``alerts`` section and restarts while an alert waits to go out: a
rule removed or renamed, its limit changed so that the alerted answer is no longer one it
alerts on, a destination taken off it. The next sync cancels what the rule would not send
now and says why; a change the alert still fits cancels nothing. The guards of a withdrawn
alert hold: a delivery a worker holds is left to it, one of unknown outcome is settled."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook import server
from csat_hook.alerts.report import delivery_text
from csat_hook.app import create_app
from csat_hook.db.schema import alerts
from csat_hook.devtools.fake_notify import Script
from csat_hook.outbox import store
from tests.alerts.conftest import alerts_section
from tests.alerts.conftest import changed
from tests.alerts.conftest import generic_notes
from tests.alerts.conftest import raise_now
from tests.alerts.test_agent_drop import AGENT_RULE
from tests.alerts.test_agent_drop import Data
from tests.alerts.test_delivery import by_destination
from tests.alerts.test_delivery import notes
from tests.alerts.test_delivery import rows
from tests.alerts.test_improved import EVERY
from tests.alerts.test_improved import claim_all
from tests.alerts.test_improved import delivered
from tests.alerts.test_improved import statuses
from tests.alerts.test_improved import the_alert
from tests.outbox.test_worker import drain

LOW = {
    "name": "low",
    "kind": "low_rating",
    "max_rating": 2,
    "destinations": ["slack", "telegram", "crm", "note"],
}
NOTHING = dict.fromkeys(("slack", "telegram", "webhook", "note"), 0)


def held_then_taken_off(
    alerting: Any,
    make_config: Any,
    make_services: Any,
    fake_notify: Any,
    fake_helpdesk: Any,
    clock: Any,
) -> Any:
    """An alert on a 1 raised and every delivery claimed by a worker that then died; the
    service built again with the note taken off the rule (its delivery marked, left held)."""
    raise_now(alerting, [changed(rating=1)])
    claim_all(alerting, clock, worker_id="gone:1:abc")
    return restarted(
        make_config,
        make_services,
        fake_notify,
        fake_helpdesk,
        rules=[LOW | {"destinations": ["slack", "telegram", "crm"]}],
    )


def restarted(make_config, make_services, fake_notify, fake_helpdesk, **section: Any) -> Any:
    """The service built again from the changed ``alerts`` section."""
    config = make_config(
        alerts=alerts_section(fake_notify, **section),
        helpdesks={"generic": generic_notes(fake_helpdesk.url)},
    )
    return make_services(config)


def test_a_queued_alert_the_lowered_limit_no_longer_covers_is_cancelled(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """``max_rating: 2`` → ``1`` with an alert about a 2 queued: it does not go out."""
    assert raise_now(alerting, [changed(rating=2)]).queued == 4
    service = restarted(
        make_config, make_services, fake_notify, fake_helpdesk, rules=[LOW | {"max_rating": 1}]
    )

    outcome = raise_now(service, [])  # the next sync: no answer changed
    assert outcome.raised == {} and outcome.cancelled == 4
    drain(service.delivery_worker(), clock)

    assert delivered(fake_notify, fake_helpdesk) == NOTHING
    alert = the_alert(service)
    assert alert.cancel_reason == "rule_changed" and alert.cancelled_at == clock()
    assert {delivery_text(r) for r in rows(service)} == {
        f"{name}: cancelled (rule changed)" for name in EVERY
    }


def test_an_alert_raised_after_a_configuration_was_loaded_is_not_judged_by_it(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """``serve`` still on the file as it was while a ``csat-hook sync`` run by hand with the
    edited file raised an alert under a rule the older file lacks: the older configuration
    withdraws nothing raised after it was loaded (its periodic sync, a respawned web
    process); a process started on the file without the rule afterwards does."""
    older = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[])
    older.config.alerts.mark_loaded(clock() - timedelta(minutes=5))
    assert raise_now(alerting, [changed(rating=1)]).queued == 4

    assert raise_now(older, []).cancelled == 0
    assert older.recheck_alerts() == 0
    assert statuses(older) == dict.fromkeys(EVERY, "pending")
    assert the_alert(older).cancelled_at is None

    later = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[])
    later.config.alerts.mark_loaded(clock() + timedelta(minutes=5))
    assert later.recheck_alerts() == 4
    assert the_alert(later).cancel_reason == "rule_removed"


def test_a_queued_alert_of_a_renamed_rule_is_cancelled(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """A rule's name is part of its alerts' identity: renamed, it is another rule, and the
    old one is gone."""
    raise_now(alerting, [changed(rating=1)])
    service = restarted(
        make_config, make_services, fake_notify, fake_helpdesk, rules=[LOW | {"name": "bad"}]
    )

    assert raise_now(service, []).cancelled == 4
    drain(service.delivery_worker(), clock)

    assert delivered(fake_notify, fake_helpdesk) == NOTHING
    assert the_alert(service).cancel_reason == "rule_removed"
    assert {delivery_text(r) for r in rows(service)} == {
        f"{name}: cancelled (rule removed)" for name in EVERY
    }


def test_every_rule_removed_the_destinations_kept_cancels_what_is_queued(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    raise_now(alerting, [changed(rating=1)])
    service = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[])
    assert not service.config.alerts.active

    assert raise_now(service, []).cancelled == 4
    drain(service.delivery_worker(), clock)

    assert delivered(fake_notify, fake_helpdesk) == NOTHING
    assert the_alert(service).cancel_reason == "rule_removed"


def test_a_rule_now_of_another_kind_under_the_same_name_cancels_the_queued_alert(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    raise_now(alerting, [changed(rating=1)])
    service = restarted(
        make_config,
        make_services,
        fake_notify,
        fake_helpdesk,
        rules=[{"name": "low", "kind": "nps_detractor", "destinations": ["slack"]}],
    )
    assert raise_now(service, []).cancelled == 4
    assert the_alert(service).cancel_reason == "rule_changed"


def test_a_change_the_alert_still_fits_cancels_nothing(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """A higher limit, the destinations listed in another order, another rule added: the
    alert is one the rules raise now; it goes out."""
    raise_now(alerting, [changed(rating=2)])
    service = restarted(
        make_config,
        make_services,
        fake_notify,
        fake_helpdesk,
        rules=[
            LOW | {"max_rating": 3, "destinations": ["note", "crm", "telegram", "slack"]},
            {"name": "comments", "kind": "comment", "destinations": ["slack"]},
        ],
    )

    assert raise_now(service, []).cancelled == 0
    drain(service.delivery_worker(), clock)

    assert delivered(fake_notify, fake_helpdesk) == dict.fromkeys(NOTHING, 1)
    assert statuses(service) == dict.fromkeys(EVERY, "sent")
    assert the_alert(service).cancel_reason is None


def test_a_destination_taken_off_the_rule_is_cancelled_there_alone(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    raise_now(alerting, [changed(rating=1)])
    service = restarted(
        make_config,
        make_services,
        fake_notify,
        fake_helpdesk,
        rules=[LOW | {"destinations": ["slack", "note"]}],
    )

    assert raise_now(service, []).cancelled == 2
    drain(service.delivery_worker(), clock)

    assert delivered(fake_notify, fake_helpdesk) == {
        "slack": 1,
        "telegram": 0,
        "webhook": 0,
        "note": 1,
    }
    assert the_alert(service).cancel_reason is None  # it stands: it went to Slack
    assert {delivery_text(r) for r in rows(service)} == {
        "slack: sent",
        "note: sent",
        "telegram: cancelled (destination removed)",
        "crm: cancelled (destination removed)",
    }
    assert raise_now(service, []).cancelled == 0  # nothing left to cancel


def test_a_delivery_a_worker_holds_is_left_to_it_and_not_sent_again_after_a_retry(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """The worker that claimed the deliveries before the restart's sync: its webhook went
    out and stays sent; the others came back for a retry, and their next claim cancels
    them instead of sending."""
    raise_now(alerting, [changed(rating=1)])
    claimed = claim_all(alerting, clock)
    service = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[])

    assert raise_now(service, []).cancelled == 0
    assert statuses(service) == dict.fromkeys(EVERY, "sending")

    with service.engine.begin() as conn:
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
    drain(service.delivery_worker(), clock)

    assert statuses(service) == {"crm": "sent"} | dict.fromkeys(
        ("slack", "telegram", "note"), "cancelled"
    )
    assert fake_notify.requests("slack") == [] and fake_notify.requests("telegram") == []
    assert the_alert(service).cancel_reason == "rule_removed"


def test_an_attempt_of_unknown_outcome_is_settled_not_cancelled(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    fake_notify.script("webhook", Script(drop=True))
    fake_notify.script("slack", Script(status=503, body=b""))
    raise_now(alerting, [changed(rating=1)])
    alerting.delivery_worker().run_once(limit=10)
    assert by_destination(alerting)["crm"].uncertain_since is not None
    assert by_destination(alerting)["slack"].status == "pending"
    service = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[])

    assert raise_now(service, []).cancelled == 1  # Slack's retry; the webhook is settled
    clock.advance(service.config.delivery.settle_seconds + 1)
    drain(service.delivery_worker(), clock)

    settled = by_destination(service)
    assert settled["crm"].status == "cancelled" and "may have arrived" in settled["crm"].last_error
    assert delivery_text(settled["crm"]) == "crm: cancelled (rule removed, may have arrived)"
    assert len(fake_notify.requests("webhook")) == 1
    assert settled["slack"].status == "cancelled" and len(fake_notify.requests("slack")) == 1


def test_a_queued_agent_alert_of_a_removed_rule_is_cancelled(
    make_config, make_services, fake_notify, fake_helpdesk, alerting, clock
):
    agents = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[AGENT_RULE])
    data = Data()
    data.add(satisfied=15, unsatisfied=15, at=clock() - timedelta(days=3))
    assert raise_now(agents, [changed(submitted_at=clock(), rating=5)], data=data).raised == {
        "agents": 1
    }
    service = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[LOW])

    assert raise_now(service, []).cancelled == 1
    drain(service.delivery_worker(), clock)

    assert fake_notify.requests("slack") == []
    assert the_alert(service).cancel_reason == "rule_removed"


def test_an_alert_standing_again_is_not_sent_where_its_rule_no_longer_sends(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """Telegram taken off the rule (its delivery cancelled there), the answer improved (the
    alert withdrawn) and edited back to the 1: the alert stands again and goes out, once,
    to the rule's destinations only. Telegram's delivery was not cancelled by the withdrawal:
    it is not queued again (nor cancelled a second time), and keeps its reason."""
    raise_now(alerting, [changed(rating=1)])
    service = restarted(
        make_config,
        make_services,
        fake_notify,
        fake_helpdesk,
        rules=[LOW | {"destinations": ["slack", "crm", "note"]}],
    )
    assert raise_now(service, []).cancelled == 1
    assert raise_now(service, [changed(rating=5, previous_rating=1)]).cancelled == 3

    again = raise_now(service, [changed(rating=1, previous_rating=5)])
    assert (again.raised, again.queued, again.cancelled) == ({}, 3, 0)
    assert statuses(service)["telegram"] == "cancelled"
    drain(service.delivery_worker(), clock)

    assert delivered(fake_notify, fake_helpdesk) == {
        "slack": 1,
        "telegram": 0,
        "webhook": 1,
        "note": 1,
    }
    assert delivery_text(by_destination(service)["telegram"]) == (
        "telegram: cancelled (destination removed)"
    )


def test_an_alert_withdrawn_as_its_rule_was_removed_goes_out_when_it_stands_again(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """The rule removed (the alert withdrawn, ``rule_removed``), put back, and the answer
    improved and edited back to the 1: the alert stands again, and what its withdrawal
    cancelled goes out, once, as after an answer's withdrawal."""
    raise_now(alerting, [changed(rating=1)])
    removed = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[])
    assert raise_now(removed, []).cancelled == 4
    back = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[LOW])
    raise_now(back, [changed(rating=5, previous_rating=1)])

    again = raise_now(back, [changed(rating=1, previous_rating=5)])
    assert (again.raised, again.queued, again.cancelled) == ({}, 4, 0)
    drain(back.delivery_worker(), clock)

    assert delivered(fake_notify, fake_helpdesk) == dict.fromkeys(NOTHING, 1)
    assert statuses(back) == dict.fromkeys(EVERY, "sent")


TWO = LOW | {"destinations": ["slack", "telegram"]}


def test_a_destination_put_back_is_not_sent_what_was_cancelled_there_when_the_alert_stands(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """Raised to Slack and Telegram; Telegram taken off the rule (its delivery cancelled
    there), the answer improved (the alert withdrawn), Telegram put back on the rule, the
    answer edited back to the 1: the alert stands again and goes to Slack, once. Telegram
    gets nothing: a destination put back does not send what was cancelled, and its delivery
    stays as it was, with its reason."""
    two = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[TWO])
    assert raise_now(two, [changed(rating=1)]).queued == 2
    one = restarted(
        make_config,
        make_services,
        fake_notify,
        fake_helpdesk,
        rules=[LOW | {"destinations": ["slack"]}],
    )
    assert raise_now(one, []).cancelled == 1
    removed = by_destination(one)["telegram"]
    assert delivery_text(removed) == "telegram: cancelled (destination removed)"
    assert raise_now(one, [changed(rating=5, previous_rating=1)]).cancelled == 1

    put_back = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[TWO])
    clock.advance(60)
    again = raise_now(put_back, [changed(rating=1, previous_rating=5)])
    assert (again.raised, again.queued, again.cancelled) == ({}, 1, 0)
    drain(put_back.delivery_worker(), clock)

    assert len(fake_notify.delivered("slack")) == 1
    assert fake_notify.requests("telegram") == []
    after = by_destination(put_back)
    assert delivery_text(after["slack"]) == "slack: sent"
    telegram = after["telegram"]
    assert (telegram.status, telegram.last_error, telegram.attempts, telegram.updated_at) == (
        "cancelled",
        removed.last_error,
        removed.attempts,
        removed.updated_at,
    )
    assert the_alert(put_back).cancel_reason is None


@pytest.mark.parametrize("claimed", ["standing", "withdrawn"])
def test_a_delivery_its_claim_cancelled_as_taken_off_is_not_queued_again_when_put_back(
    claimed, alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """The note's delivery was in flight when its worker died and the note was taken off
    the rule (marked: its next claim cancels it). Its claim cancels it, the alert standing
    or withdrawn meanwhile (the answer improved); the note put back and the answer edited
    back to the 1, the delivery is not queued again: it stays as its claim left it, never
    claimed again, and no note is posted."""
    off = held_then_taken_off(
        alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
    )
    assert raise_now(off, []).cancelled == 0  # held: marked, left to its worker
    if claimed == "withdrawn":
        raise_now(off, [changed(rating=5, previous_rating=1)])
    clock.advance(off.config.delivery.lease_seconds + 1)  # the lease runs out
    drain(off.delivery_worker(), clock)
    if claimed == "standing":
        raise_now(off, [changed(rating=5, previous_rating=1)])
    cancelled = by_destination(off)["note"]
    assert cancelled.status == "cancelled"
    assert delivery_text(cancelled) == (
        "note: cancelled (destination removed)"
        if claimed == "standing"
        else "note: cancelled (answer improved)"
    )

    put_back = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[LOW])
    clock.advance(60)
    raise_now(put_back, [changed(rating=1, previous_rating=5)])
    clock.advance(put_back.config.delivery.settle_seconds + 1)
    drain(put_back.delivery_worker(), clock)

    note = by_destination(put_back)["note"]
    assert (note.status, note.last_error, note.attempts, note.updated_at) == (
        "cancelled",
        cancelled.last_error,
        cancelled.attempts,
        cancelled.updated_at,
    )
    assert notes(fake_helpdesk) == []


# --- at a process's start: before its workers claim anything ------------------------------------


def serve_delivery(services: Any) -> Any:
    """What ``csat-hook serve`` does in each web process once gunicorn booted it: the app
    built on ``services`` and its delivery started (``post_worker_init``); a gunicorn worker
    as the hook sees it."""
    booted = SimpleNamespace(wsgi=create_app(services=services))
    server._start_delivery(booted)
    return booted


def finished(services: Any) -> bool:
    return all(row.status not in ("pending", "sending") for row in rows(services))


@pytest.mark.parametrize("start", ["serve", "worker --once"])
def test_an_alert_of_a_removed_rule_is_not_sent_by_a_service_started_before_any_sync(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock, start
):
    """Restarted with the rule removed, the first sync still reading the results source:
    the process's workers must not send the alert under the rule it no longer has."""
    raise_now(alerting, [changed(rating=1)])
    service = restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[])

    if start == "serve":
        booted = serve_delivery(service)
        try:
            deadline = time.monotonic() + 10
            while not finished(service) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            server._stop_delivery(None, booted)
    else:
        service.delivery_worker().run_once()

    assert delivered(fake_notify, fake_helpdesk) == NOTHING
    assert the_alert(service).cancel_reason == "rule_removed"
    assert {delivery_text(r) for r in rows(service)} == {
        f"{name}: cancelled (rule removed)" for name in EVERY
    }


def test_processes_starting_together_cancel_each_delivery_once(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """Every web process runs the check at its start: two at once (or one after another)
    withdraw the alert once and cancel each delivery once, and send nothing."""
    raise_now(alerting, [changed(rating=1)])
    first, second = (
        restarted(make_config, make_services, fake_notify, fake_helpdesk, rules=[])
        for _ in range(2)
    )
    booted = [serve_delivery(first), serve_delivery(second)]
    try:
        deadline = time.monotonic() + 10
        while not finished(first) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for one in booted:
            server._stop_delivery(None, one)

    assert delivered(fake_notify, fake_helpdesk) == NOTHING
    alert = the_alert(first)
    assert alert.cancel_reason == "rule_removed" and alert.cancelled_at == clock()
    assert statuses(first) == dict.fromkeys(EVERY, "cancelled")


# --- a destination taken off while an attempt's outcome is unknown ------------------------------


def test_an_unknown_outcome_to_a_destination_taken_off_is_settled_then_cancelled(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """The note's request went out and its answer was lost (the note was not stored), the
    webhook's too; the operator then took both off the rule. The note is looked up: not
    there, it is not posted now but cancelled; the webhook cannot be asked: cancelled too,
    saying it may have arrived. The alert stands: it went to Slack and Telegram."""
    fake_helpdesk.drop_next(1, store=False)
    fake_notify.script("webhook", Script(drop=True))
    raise_now(alerting, [changed(rating=1)])
    alerting.delivery_worker().run_once(limit=10)
    uncertain = by_destination(alerting)
    assert uncertain["note"].uncertain_since is not None
    assert uncertain["crm"].uncertain_since is not None
    service = restarted(
        make_config,
        make_services,
        fake_notify,
        fake_helpdesk,
        rules=[LOW | {"destinations": ["slack", "telegram"]}],
    )

    assert raise_now(service, []).cancelled == 0  # of unknown outcome: settled first
    clock.advance(service.config.delivery.settle_seconds + 1)
    drain(service.delivery_worker(), clock)

    assert notes(fake_helpdesk) == []
    assert len(fake_notify.requests("webhook")) == 1
    settled = by_destination(service)
    assert delivery_text(settled["note"]) == "note: cancelled (destination removed)"
    assert delivery_text(settled["crm"]) == (
        "crm: cancelled (destination removed, may have arrived)"
    )
    assert the_alert(service).cancel_reason is None
    assert (statuses(service)["slack"], statuses(service)["telegram"]) == ("sent", "sent")


def test_an_unknown_outcome_to_a_destination_taken_off_found_delivered_is_sent(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    fake_helpdesk.drop_next(1)  # the note is stored, its answer lost
    raise_now(alerting, [changed(rating=1)])
    alerting.delivery_worker().run_once(limit=10)
    assert by_destination(alerting)["note"].uncertain_since is not None
    service = restarted(
        make_config,
        make_services,
        fake_notify,
        fake_helpdesk,
        rules=[LOW | {"destinations": ["slack", "telegram", "crm"]}],
    )

    raise_now(service, [])
    clock.advance(service.config.delivery.settle_seconds + 1)
    drain(service.delivery_worker(), clock)

    note = by_destination(service)["note"]
    assert note.status == "sent" and note.last_error.startswith("found in the dialog")
    assert len(notes(fake_helpdesk)) == 1


def test_a_delivery_in_flight_when_its_worker_died_is_settled_then_cancelled_there(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """The old process was killed while it held the deliveries (the note not posted yet);
    restarted with the note taken off the rule. Taken over, the note's delivery is of
    unknown outcome: looked up, not there, cancelled instead of posted."""
    service = held_then_taken_off(
        alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
    )

    assert raise_now(service, []).cancelled == 0  # held: left to its worker
    clock.advance(service.config.delivery.lease_seconds + 1)  # the lease runs out
    drain(service.delivery_worker(), clock)

    assert notes(fake_helpdesk) == []
    assert delivery_text(by_destination(service)["note"]) == (
        "note: cancelled (destination removed)"
    )
    assert statuses(service) == dict.fromkeys(("slack", "telegram", "crm"), "sent") | {
        "note": "cancelled"
    }


def test_the_lowered_limit_cancels_the_2_and_still_sends_the_1(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """``max_rating: 2`` → ``1`` with alerts about a 2 and a 1 queued: the 2's alert is
    cancelled (``rule_changed``), the 1's, which the rule still raises, goes everywhere."""
    two = changed(rating=2, survey_key="survey-2", dialog_id="D-1002")
    one = changed(rating=1, survey_key="survey-1", dialog_id="D-1001")
    assert raise_now(alerting, [two, one]).queued == 8
    service = restarted(
        make_config, make_services, fake_notify, fake_helpdesk, rules=[LOW | {"max_rating": 1}]
    )

    assert service.recheck_alerts() == 4  # the worker's check before its first claim
    drain(service.delivery_worker(), clock)

    assert delivered(fake_notify, fake_helpdesk) == dict.fromkeys(NOTHING, 1)
    with service.engine.connect() as conn:
        found = {
            row.rating: row.cancel_reason
            for row in conn.execute(sa.select(alerts.c.rating, alerts.c.cancel_reason))
        }
    assert found == {2: "rule_changed", 1: None}
    assert {(r.dialog_id, delivery_text(r)) for r in rows(service)} == {
        ("D-1002", f"{name}: cancelled (rule changed)") for name in EVERY
    } | {("D-1001", f"{name}: sent") for name in EVERY}
    assert notes(fake_helpdesk, "D-1002") == []


@pytest.mark.parametrize("change", ["helpdesks listed", "helpdesk removed"])
def test_a_note_its_destination_no_longer_posts_in_that_helpdesk_is_cancelled_there(
    change, alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """The note destination now lists other ``helpdesks``, or the dialog's helpdesk is gone:
    the rules would not queue the note now, so the queued one is cancelled
    (``destination_removed``) and the alert goes to the others."""
    raise_now(alerting, [changed(rating=1)])
    other = {"other": generic_notes(fake_helpdesk.url)}
    section = alerts_section(fake_notify)
    if change == "helpdesks listed":
        section["destinations"]["note"] = {"kind": "helpdesk_note", "helpdesks": ["other"]}
        helpdesks = {"generic": generic_notes(fake_helpdesk.url)} | other
    else:
        helpdesks = other
    service = make_services(make_config(alerts=section, helpdesks=helpdesks))

    assert service.recheck_alerts() == 1
    drain(service.delivery_worker(), clock)

    assert delivered(fake_notify, fake_helpdesk) == dict.fromkeys(NOTHING, 1) | {"note": 0}
    assert the_alert(service).cancel_reason is None
    assert {delivery_text(r) for r in rows(service)} == {
        "slack: sent",
        "telegram: sent",
        "crm: sent",
        "note: cancelled (destination removed)",
    }


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([LOW | {"destinations": ["slack", "telegram"]}], "destination removed"),
        ([], "rule removed"),
    ],
    ids=["destination-removed", "rule-and-destination-removed"],
)
def test_a_destination_removed_from_the_configuration_is_cancelled_not_failed(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock, rules, expected
):
    """The webhook's request went out and its answer was lost; the operator then removed
    ``crm`` from ``alerts.destinations`` (and so from the rule), or the rule with it. The
    delivery cannot be settled through a destination that is gone, and it is not to be sent:
    cancelled as a destination taken off the rule (or a withdrawn alert) is, saying it may
    have arrived, not failed (``outbox retry`` would only fail it again)."""
    fake_notify.script("webhook", Script(drop=True))
    raise_now(alerting, [changed(rating=1)])
    alerting.delivery_worker().run_once(limit=10)
    assert by_destination(alerting)["crm"].uncertain_since is not None
    section = alerts_section(fake_notify, rules=rules)
    del section["destinations"]["crm"]
    service = make_services(
        make_config(alerts=section, helpdesks={"generic": generic_notes(fake_helpdesk.url)})
    )

    raise_now(service, [])
    clock.advance(service.config.delivery.settle_seconds + 1)
    drain(service.delivery_worker(), clock)

    assert len(fake_notify.requests("webhook")) == 1
    assert delivery_text(by_destination(service)["crm"]) == (
        f"crm: cancelled ({expected}, may have arrived)"
    )
