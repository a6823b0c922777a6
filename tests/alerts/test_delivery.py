"""Alerts through the outbox: one delivery per destination, delivered once through 5xx,
rate limits, timeouts and a dead worker; replies are not affected."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import outbox
from csat_hook.devtools.fake_notify import Script
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.notify.records import AlertMessage
from csat_hook.outbox import listing
from csat_hook.outbox import store
from csat_hook.services import build_services
from tests.alerts.conftest import alerts_section
from tests.alerts.conftest import changed
from tests.alerts.conftest import generic_notes
from tests.alerts.conftest import raise_now
from tests.notify.conftest import flood_wait
from tests.outbox.test_worker import drain
from tests.outbox.test_worker import queue_generic


def rows(services: Any, kind: str = "alert") -> list[Any]:
    with services.engine.connect() as conn:
        return list(
            conn.execute(sa.select(outbox).where(outbox.c.kind == kind).order_by(outbox.c.id))
        )


def by_destination(services: Any) -> dict[str, Any]:
    return {row.destination: row for row in rows(services)}


def notes(fake_helpdesk: Any, dialog: str = "D-1001") -> list[dict[str, Any]]:
    return [
        m
        for m in fake_helpdesk.messages_at(f"/api/dialogs/{dialog}/messages")
        if "Alert ref:" in m["text"]
    ]


def test_one_alert_reaches_every_destination_once(alerting, fake_notify, fake_helpdesk, clock):
    outcome = raise_now(alerting, [changed()])
    assert outcome.raised == {"low": 1} and outcome.queued == 4

    drain(alerting.delivery_worker(), clock)

    assert {d: r.status for d, r in by_destination(alerting).items()} == dict.fromkeys(
        ("slack", "telegram", "crm", "note"), "sent"
    )
    assert len(fake_notify.delivered("slack")) == 1
    assert len(fake_notify.delivered("telegram")) == 1
    assert len(fake_notify.delivered("webhook")) == 1
    [note] = notes(fake_helpdesk)
    assert "Low rating 1/5 for Anna Petrova on ticket D-1001" in note["text"]
    assert "Nobody answered for three days" in note["text"]


def test_the_same_answer_again_queues_nothing(alerting, fake_notify, clock):
    raise_now(alerting, [changed()])
    again = raise_now(alerting, [changed(comment="edited comment, same rating")])
    assert again.raised == {} and again.queued == 0
    drain(alerting.delivery_worker(), clock)
    assert len(fake_notify.delivered("slack")) == 1


def test_a_5xx_storm_delivers_later_once(alerting, fake_notify, clock):
    fake_notify.script("slack", *[Script(status=503, body=b"") for _ in range(3)])
    fake_notify.script(
        "telegram",
        Script(status=429, body=flood_wait(5)),
    )
    raise_now(alerting, [changed()])
    worker = alerting.delivery_worker()

    worker.run_once(limit=10)
    telegram = by_destination(alerting)["telegram"]
    assert telegram.status == "pending" and telegram.last_http_status == 429
    # Telegram asked for 5 s in its body: honoured (up to 10% jitter).
    assert timedelta(seconds=5) <= telegram.next_attempt_at - clock() <= timedelta(seconds=5.6)

    drain(worker, clock)
    assert {r.status for r in rows(alerting)} == {"sent"}
    assert len(fake_notify.delivered("slack")) == 1 and len(fake_notify.requests("slack")) == 4
    assert by_destination(alerting)["slack"].attempts == 4
    assert len(fake_notify.delivered("telegram")) == 1


def test_a_rate_limit_saying_wait_zero_still_waits_the_backoff(alerting, fake_notify, clock):
    """Slack's "Retry-After: 0" and Telegram's "retry_after": 0, repeated, had each alert's
    every attempt made at once: the wait is at least the backoff's step."""
    fake_notify.script("slack", Script(status=429, body=b"", headers={"Retry-After": "0"}))
    fake_notify.script(
        "telegram",
        Script(status=429, body=flood_wait(0)),
    )
    raise_now(alerting, [changed()])
    alerting.delivery_worker().run_once(limit=10)
    least = timedelta(seconds=alerting.config.delivery.backoff.ceiling(1) / 2)
    for name in ("slack", "telegram"):
        row = by_destination(alerting)[name]
        assert row.status == "pending" and row.last_http_status == 429
        assert row.next_attempt_at - clock() >= least


def test_a_telegram_flood_wait_inside_a_200_is_honoured_and_delivered_later(
    alerting, fake_notify, clock
):
    fake_notify.script(
        "telegram",
        Script(status=200, body=flood_wait(700)),
    )
    raise_now(alerting, [changed()])
    worker = alerting.delivery_worker()
    worker.run_once(limit=10)
    telegram = by_destination(alerting)["telegram"]
    assert telegram.status == "pending" and fake_notify.delivered("telegram") == []
    assert timedelta(seconds=700) <= telegram.next_attempt_at - clock() <= timedelta(seconds=770)
    drain(worker, clock)
    assert by_destination(alerting)["telegram"].status == "sent"
    assert len(fake_notify.delivered("telegram")) == 1


def test_a_permanent_refusal_fails_only_that_destination(alerting, fake_notify, clock):
    fake_notify.script("slack", Script(status=404, body=b"channel_not_found"))
    raise_now(alerting, [changed()])
    drain(alerting.delivery_worker(), clock)
    slack = by_destination(alerting)["slack"]
    assert slack.status == "failed" and "channel_not_found" in slack.last_error
    assert slack.attempts == 1
    assert {r.status for d, r in by_destination(alerting).items() if d != "slack"} == {"sent"}

    with alerting.engine.connect() as conn:
        failed = listing.list_outbox(conn, statuses=["failed"], kinds=["alert"])
    assert [(r.kind, r.destination) for r in failed] == [("alert", "slack")]
    with alerting.engine.begin() as conn:
        assert listing.requeue(conn, clock(), ids=[slack.id]) == [slack.id]
    drain(alerting.delivery_worker(), clock)
    assert by_destination(alerting)["slack"].status == "sent"


def test_a_slack_timeout_is_not_sent_again(make_config, fake_notify, fake_helpdesk, clock):
    """Slack may have posted it: recorded as sent, unconfirmed, never posted twice."""
    config = make_config(
        alerts=alerts_section(
            fake_notify,
            rules=[
                {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
            ],
        ),
        helpdesks={"generic": generic_notes(fake_helpdesk.url)},
    )
    services = build_services(
        config, clock=clock, http=HttpClient(connect_timeout=1, read_timeout=0.3)
    )
    try:
        fake_notify.script("slack", Script(delay=1.0))  # takes the message, answers late
        raise_now(services, [changed(submitted_at=clock() - timedelta(minutes=2))])
        worker = services.delivery_worker()
        worker.run_once()
        [row] = rows(services)
        assert row.status == "pending" and row.uncertain_since is not None
        time.sleep(1.0)
        drain(worker, clock)
        [row] = rows(services)
        assert row.status == "sent" and row.last_error.startswith("outcome unknown, not sent again")
        assert len(fake_notify.requests("slack")) == 1
    finally:
        services.close()


def test_a_note_whose_answer_was_lost_is_found_not_posted_twice(alerting, fake_helpdesk, clock):
    fake_helpdesk.drop_next(1)  # the note is stored, the connection closes without an answer
    raise_now(alerting, [changed()])
    worker = alerting.delivery_worker()
    worker.run_once(limit=10)
    note = by_destination(alerting)["note"]
    assert note.status == "pending" and note.uncertain_since is not None

    clock.advance(alerting.config.delivery.settle_seconds + 1)
    drain(worker, clock)
    note = by_destination(alerting)["note"]
    assert note.status == "sent" and note.last_error.startswith("found in the dialog")
    assert len(notes(fake_helpdesk)) == 1


def test_a_webhook_whose_answer_was_lost_is_resent_and_dropped_by_the_receiver(
    alerting, fake_notify, clock
):
    fake_notify.script("webhook", Script(drop=True))
    raise_now(alerting, [changed()])
    worker = alerting.delivery_worker()
    worker.run_once(limit=10)
    clock.advance(alerting.config.delivery.settle_seconds + 1)
    drain(worker, clock)
    crm = by_destination(alerting)["crm"]
    assert crm.status == "sent" and "same id" in crm.last_error
    first, second = fake_notify.requests("webhook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert len(fake_notify.delivered("webhook")) == 1


def test_a_telegram_2xx_without_ok_is_not_sent_again(alerting, fake_notify, clock):
    """The message may be in the chat (a cut-off answer): recorded unconfirmed, posted once."""
    fake_notify.script("telegram", Script(status=200, body=b'{"ok": tr'))
    raise_now(alerting, [changed()])

    drain(alerting.delivery_worker(), clock)

    telegram = by_destination(alerting)["telegram"]
    assert telegram.status == "sent" and telegram.last_error.startswith("outcome unknown")
    assert len(fake_notify.requests("telegram")) == 1


@pytest.mark.parametrize(
    ("answer", "unknown"),
    [(b"rollup_error", False), (b"<html><body>500 Internal Server Error</body></html>", True)],
    ids=["slacks-own-code", "a-proxy-page"],
)
def test_a_slack_500_in_slacks_words_is_retried_any_other_settled_as_unknown(
    alerting, fake_notify, clock, answer, unknown
):
    """Slack's own ``500 rollup_error`` says it failed: retried, so the alert is not lost. A
    500 without Slack's code may come after the message was posted: settled as
    on_unknown_outcome (skip) says, never a blind second post. Telegram's own ok=false 500
    is a plain retry."""
    fake_notify.script("slack", Script(status=500, body=answer))
    fake_notify.script(
        "telegram",
        Script(status=500, body={"ok": False, "error_code": 500, "description": "Internal"}),
    )
    raise_now(alerting, [changed()])

    drain(alerting.delivery_worker(), clock)

    slack, telegram = by_destination(alerting)["slack"], by_destination(alerting)["telegram"]
    if unknown:
        assert slack.status == "sent" and slack.last_error.startswith("outcome unknown")
        assert len(fake_notify.requests("slack")) == 1
    else:
        assert slack.status == "sent" and slack.last_error is None
        assert len(fake_notify.requests("slack")) == 2
        assert len(fake_notify.delivered("slack")) == 1
    assert telegram.status == "sent" and telegram.last_error is None
    assert len(fake_notify.requests("telegram")) == 2
    assert len(fake_notify.delivered("telegram")) == 1


def test_a_dead_workers_slack_alert_is_not_sent_twice(alerting, fake_notify, clock):
    """A worker died after claiming (it may have posted): taken over, not posted again."""
    raise_now(alerting, [changed()])
    config = alerting.config.delivery
    with alerting.engine.begin() as conn:
        claimed = store.claim_due(
            conn, "gone:1:abc", clock(), clock() + timedelta(seconds=config.lease_seconds), limit=10
        )
    assert len(claimed) == 4
    clock.advance(config.lease_seconds + 1)
    worker = alerting.delivery_worker()
    assert worker.release_stale() == 4
    clock.advance(config.takeover_wait_seconds + 1)
    drain(worker, clock)
    slack = by_destination(alerting)["slack"]
    assert slack.status == "sent" and slack.last_error.startswith("outcome unknown")
    assert fake_notify.requests("slack") == [] and fake_notify.requests("telegram") == []
    # The note was looked up (not there: the dead worker never sent it) and posted.
    assert by_destination(alerting)["note"].status == "sent"


def test_a_reopened_dialog_cancels_its_reply_not_its_alerts(alerting, clock):
    queue_generic(alerting)
    raise_now(alerting, [changed()])
    with alerting.engine.begin() as conn:
        assert store.cancel_waiting(conn, "generic", "D-1001", clock()) == 1
    assert [r.status for r in rows(alerting, "reply")] == ["cancelled"]
    assert {r.status for r in rows(alerting)} == {"pending"}


def test_a_slack_alert_that_breaks_before_posting_fails_and_is_not_recorded_as_sent(
    alerting, fake_notify, clock, monkeypatch
):
    """A bug in rendering (before any request) is not an unknown outcome: Slack settles those
    as "sent, unconfirmed", which would hide an alert that never left."""
    slack = alerting.destinations["slack"]

    def broken(message: AlertMessage) -> dict[str, Any]:
        raise RuntimeError("Ivan's private words")

    monkeypatch.setattr(slack, "payload", broken)
    raise_now(alerting, [changed()])

    drain(alerting.delivery_worker(), clock)

    row = by_destination(alerting)["slack"]
    assert row.status == "failed" and row.attempts == 1 and row.uncertain_since is None
    assert row.last_error == "internal error before anything was sent (RuntimeError): not sent"
    assert fake_notify.requests("slack") == []
    assert {r.status for d, r in by_destination(alerting).items() if d != "slack"} == {"sent"}


def test_a_slack_alert_that_breaks_after_posting_is_not_posted_again(
    alerting, fake_notify, clock, monkeypatch
):
    slack = alerting.destinations["slack"]
    send: Callable[[AlertMessage], SendResult] = slack.send

    def posted_then_broke(message: AlertMessage) -> SendResult:
        send(message)
        raise RuntimeError("answer: Ivan's private words")

    monkeypatch.setattr(slack, "send", posted_then_broke)
    raise_now(alerting, [changed()])

    drain(alerting.delivery_worker(), clock)

    row = by_destination(alerting)["slack"]
    assert row.status == "sent" and row.last_error.startswith("outcome unknown, not sent again")
    assert len(fake_notify.requests("slack")) == 1
