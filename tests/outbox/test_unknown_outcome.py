"""Exactly one reply when an attempt's outcome is unknown: a timeout or a dropped connection
after the request was sent, or a worker that died mid-delivery. The reply is looked up in the
dialog before it is sent again; workers beat, renew their leases, and take over the replies of
workers that stopped beating."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.app import create_app
from csat_hook.db.schema import outbox as outbox_table
from csat_hook.db.schema import workers
from csat_hook.errors import ConfigError
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.outbox import listing
from csat_hook.outbox import store
from csat_hook.outbox.config import DeliveryConfig
from csat_hook.services import build_services
from tests.helpers import generic_close
from tests.outbox.test_worker import drain
from tests.outbox.test_worker import outbox_rows
from tests.outbox.test_worker import queue_generic
from tests.scripted import Answer as ScriptedAnswer
from tests.scripted import script_answers

MESSAGES = "/api/dialogs/{dialog}/messages"
GENERIC_AUTH = {"X-Webhook-Token": "generic-token-123"}


def generic_with_lookup(fake_url: str, **lookup: Any) -> dict[str, Any]:
    """The test generic helpdesk, with a look-up reading the fake helpdesk's listing."""
    return {
        "generic": {
            "kind": "generic",
            "auth": {"mode": "token", "token": "generic-token-123"},
            "reply": {
                "url": fake_url + "/api/dialogs/{dialog_id}/messages",
                "headers": {"Authorization": "Bearer generic-api-key"},
            },
            "lookup": {
                "url": fake_url + "/api/dialogs/{dialog_id}/messages",
                "headers": {"Authorization": "Bearer generic-api-key"},
                "messages": "messages",
                "text": "text",
                "id": "id",
                "ours": "direction == 'outgoing' && !private",
                "created_at": "created_at",
                **lookup,
            },
        }
    }


@pytest.fixture
def looked_up(make_config, make_services, fake_helpdesk):
    return make_services(make_config(helpdesks=generic_with_lookup(fake_helpdesk.url)))


def posts(fake: Any) -> list[dict[str, Any]]:
    return [r for r in fake.api_requests() if r["method"] == "POST"]


def gets(fake: Any) -> list[dict[str, Any]]:
    return [r for r in fake.api_requests() if r["method"] == "GET"]


def stored(fake: Any, dialog: str = "D-1001") -> list[dict[str, Any]]:
    return fake.messages_at(MESSAGES.format(dialog=dialog))


def settle(services: Any, clock: Any) -> None:
    clock.advance(services.config.delivery.settle_seconds + 0.001)


def left_uncertain(services: Any, worker: Any) -> None:
    """The first attempt's outcome is unknown: the reply waits, and is not tried again
    before the settle delay."""
    worker.run_once()
    [item] = outbox_rows(services)
    assert item.status == "pending" and item.uncertain_since is not None
    assert worker.run_once() == 0  # not before the settle delay


# --- look-up before sending again -------------------------------------------------------------


def test_a_dropped_reply_that_landed_is_found_and_not_posted_again(looked_up, fake_helpdesk, clock):
    queue_generic(looked_up)
    fake_helpdesk.drop_next(1)  # stored, then the connection closes without an answer
    worker = looked_up.delivery_worker()

    left_uncertain(looked_up, worker)

    settle(looked_up, clock)
    assert worker.run_once() == 1

    assert len(posts(fake_helpdesk)) == 1 and len(gets(fake_helpdesk)) == 1
    [message] = stored(fake_helpdesk)
    [item] = outbox_rows(looked_up)
    assert item.status == "sent" and item.attempts == 2
    assert item.external_id == str(message["id"])
    assert item.last_error.startswith("found in the dialog after an unknown outcome")


def test_a_reopen_leaves_a_reply_of_unknown_outcome_and_the_close_after_it_posts_nothing(
    make_config, make_services, fake_helpdesk, clock
):
    # The first attempt landed and its answer was lost; a reopen then cancelled the reply as
    # never sent, the close after it armed the survey again under a new reference, and the
    # look-up, searching for that one, posted the survey a second time into the dialog.
    helpdesks = generic_with_lookup(fake_helpdesk.url)
    helpdesks["generic"]["mapping"] = {"close_time": "closed_at", "reopen_time": "reopened_at"}
    services = make_services(make_config(helpdesks=helpdesks))
    client = create_app(services=services).test_client()
    auth = {"X-Webhook-Token": "generic-token-123"}
    start = int(clock.now.timestamp())
    close = generic_close("D-1", closed_at=start - 5)
    assert client.post("/webhooks/generic", json=close, headers=auth).json["status"] == "queued"
    fake_helpdesk.drop_next(1)  # stored by the vendor, its answer lost
    worker = services.delivery_worker()
    left_uncertain(services, worker)

    clock.advance(5)
    reopen = {"event": "dialog.reopened", "dialog": {"id": "D-1"}, "reopened_at": start + 3}
    reopened = client.post("/webhooks/generic", json=reopen, headers=auth).json
    assert reopened["status"] == "reopened" and reopened["cancelled"] == 0, reopened
    clock.advance(60)
    client.post("/webhooks/generic", json=generic_close("D-1", closed_at=start + 60), headers=auth)
    settle(services, clock)
    worker.run_once()

    assert len(stored(fake_helpdesk, "D-1")) == 1 and len(posts(fake_helpdesk)) == 1
    [item] = outbox_rows(services)
    assert item.status == "sent"
    assert item.last_error.startswith("found in the dialog after an unknown outcome")


def reopen_after_an_unknown_outcome(
    make_config: Any, make_services: Any, fake_helpdesk: Any, clock: Any, *, lookup: bool = True
) -> Any:
    """A reply whose first attempt's outcome is unknown (the vendor kept nothing), its dialog
    then reopened (a reopen with no time: it cancels whatever it can)."""
    helpdesks = generic_with_lookup(fake_helpdesk.url)
    if not lookup:
        del helpdesks["generic"]["lookup"]
    services = make_services(make_config(helpdesks=helpdesks))
    client = create_app(services=services).test_client()
    auth = GENERIC_AUTH
    assert (
        client.post("/webhooks/generic", json=generic_close("D-1"), headers=auth).json["status"]
        == "queued"
    )
    fake_helpdesk.drop_next(1, store=False)  # the vendor kept nothing, the answer lost
    worker = services.delivery_worker()
    left_uncertain(services, worker)
    reopen = {"event": "dialog.reopened", "dialog": {"id": "D-1"}}
    reopened = client.post("/webhooks/generic", json=reopen, headers=auth).json
    assert reopened["status"] == "reopened" and reopened["cancelled"] == 0, reopened
    settle(services, clock)
    return services, worker


def test_a_reply_of_unknown_outcome_not_found_after_a_reopen_is_cancelled_not_posted_late(
    make_config, make_services, fake_helpdesk, clock
):
    # Looked up, not found: it was posted into the dialog open again, a late survey.
    services, worker = reopen_after_an_unknown_outcome(
        make_config, make_services, fake_helpdesk, clock
    )

    worker.run_once()

    assert len(posts(fake_helpdesk)) == 1 and len(gets(fake_helpdesk)) == 1
    assert stored(fake_helpdesk, "D-1") == []
    [item] = outbox_rows(services)
    assert item.status == "cancelled" and item.uncertain_since is None
    assert item.last_error.startswith("dialog reopened before sending; looked up")
    with services.engine.connect() as conn:
        assert conn.execute(sa.text("select status from surveys")).scalar_one() == "cancelled"


def test_a_reply_of_unknown_outcome_found_after_a_reopen_is_recorded_sent(
    make_config, make_services, fake_helpdesk, clock
):
    services, worker = reopen_after_an_unknown_outcome(
        make_config, make_services, fake_helpdesk, clock
    )
    fake_helpdesk.store(MESSAGES.format(dialog="D-1"), posts(fake_helpdesk)[0]["body"])

    worker.run_once()

    assert len(posts(fake_helpdesk)) == 1
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.last_error.startswith("found in the dialog")


def test_a_reply_of_unknown_outcome_that_cannot_be_looked_up_is_not_posted_after_a_reopen(
    make_config, make_services, fake_helpdesk, clock
):
    services, worker = reopen_after_an_unknown_outcome(
        make_config, make_services, fake_helpdesk, clock, lookup=False
    )

    worker.run_once()

    assert len(posts(fake_helpdesk)) == 1
    [item] = outbox_rows(services)
    assert item.status == "cancelled" and item.uncertain_since is not None
    assert "it may be in the dialog, not posted again" in item.last_error


@pytest.mark.parametrize(("closed", "posted"), [(60, True), (-5, False)])
def test_a_close_after_the_reopen_takes_the_mark_back_a_late_retry_does_not(
    make_config, make_services, fake_helpdesk, clock, closed, posted
):
    # The dialog closed again after the reopen (per_dialog: once, so that close found the
    # survey recorded: a duplicate) before the reply's next claim: it was cancelled, the
    # dialog closed for good without a survey. The first close's own retry, delivered after
    # the reopen, is no new close: the reply stays cancelled.
    helpdesks = generic_with_lookup(fake_helpdesk.url)
    helpdesks["generic"]["mapping"] = {"close_time": "closed_at", "reopen_time": "reopened_at"}
    services = make_services(make_config(helpdesks=helpdesks))
    client = create_app(services=services).test_client()
    start = int(clock.now.timestamp())
    close = generic_close("D-1", closed_at=start - 5)
    assert client.post("/webhooks/generic", json=close, headers=GENERIC_AUTH).json["status"] == (
        "queued"
    )
    fake_helpdesk.drop_next(1, store=False)
    worker = services.delivery_worker()
    left_uncertain(services, worker)
    clock.advance(5)
    reopen = {"event": "dialog.reopened", "dialog": {"id": "D-1"}, "reopened_at": start + 3}
    assert (
        client.post("/webhooks/generic", json=reopen, headers=GENERIC_AUTH).json["cancelled"] == 0
    )
    clock.advance(60)
    again = generic_close("D-1", closed_at=start + closed)
    assert client.post("/webhooks/generic", json=again, headers=GENERIC_AUTH).json["status"] == (
        "duplicate"
    )
    settle(services, clock)

    worker.run_once()

    [item] = outbox_rows(services)
    assert len(stored(fake_helpdesk, "D-1")) == int(posted)
    assert item.status == ("sent" if posted else "cancelled")


def test_a_reply_being_sent_when_its_dialog_reopens_is_not_retried_into_it(
    services, client, fake_helpdesk, clock, monkeypatch
):
    # The reopen came while the first attempt was in flight, so it could not cancel the
    # reply; that attempt was refused (503, not posted), and the retry posted a late survey.
    queue_generic(services)
    adapter = services.helpdesks["generic"]
    original = adapter.send_reply
    reopen = {"event": "dialog.reopened", "dialog": {"id": "D-1001"}}

    def send_reply(reply: Any) -> Any:
        answer = client.post("/webhooks/generic", json=reopen, headers=GENERIC_AUTH).json
        assert answer["cancelled"] == 0, answer
        return original(reply)

    monkeypatch.setattr(adapter, "send_reply", send_reply)
    fake_helpdesk.fail_next(1, 503)
    worker = services.delivery_worker()
    worker.run_once()
    monkeypatch.setattr(adapter, "send_reply", original)

    drain(worker, clock)

    assert [r["answered"] for r in posts(fake_helpdesk)] == [503]
    [item] = outbox_rows(services)
    assert item.status == "cancelled" and item.last_error == "dialog reopened before sending"


def test_a_timed_out_reply_that_landed_is_found_and_not_posted_again(
    make_config, fake_helpdesk, clock
):
    config = make_config(helpdesks=generic_with_lookup(fake_helpdesk.url))
    # A short read timeout: the vendor saves the reply but answers after the client gave up.
    services = build_services(
        config, clock=clock, http=HttpClient(connect_timeout=1, read_timeout=0.3)
    )
    try:
        queue_generic(services)
        fake_helpdesk.delay_next(1, seconds=1.0)
        worker = services.delivery_worker()

        worker.run_once()
        [item] = outbox_rows(services)
        assert "timed out waiting for the answer (outcome unknown)" in item.last_error
        settle(services, clock)
        time.sleep(1.0)  # the slow answer finishes (it changes nothing)
        worker.run_once()

        assert len(posts(fake_helpdesk)) == 1
        assert len(stored(fake_helpdesk)) == 1
        [item] = outbox_rows(services)
        assert item.status == "sent" and item.external_id == str(stored(fake_helpdesk)[0]["id"])
    finally:
        services.close()


def test_a_vendor_that_saves_late_is_found_after_the_settle_delay(looked_up, fake_helpdesk, clock):
    # The vendor keeps working after the client stopped waiting: the message appears only
    # later. The look-up waits the settle delay, by which time it is there.
    queue_generic(looked_up)
    fake_helpdesk.drop_next(1, store=False)
    worker = looked_up.delivery_worker()
    worker.run_once()
    fake_helpdesk.store(MESSAGES.format(dialog="D-1001"), posts(fake_helpdesk)[0]["body"])

    settle(looked_up, clock)
    worker.run_once()

    assert len(posts(fake_helpdesk)) == 1
    assert [r.status for r in outbox_rows(looked_up)] == ["sent"]


def test_a_look_up_that_finds_nothing_sends_once(looked_up, fake_helpdesk, clock):
    queue_generic(looked_up)
    fake_helpdesk.drop_next(1, store=False)  # dropped before the vendor kept anything
    worker = looked_up.delivery_worker()

    worker.run_once()
    settle(looked_up, clock)
    worker.run_once()

    assert [r["answered"] for r in posts(fake_helpdesk)] == ["dropped", 200]
    assert len(stored(fake_helpdesk)) == 1
    [item] = outbox_rows(looked_up)
    assert item.status == "sent" and item.last_error is None


def test_a_look_up_failing_retryably_sends_nothing_and_looks_again(looked_up, fake_helpdesk, clock):
    queue_generic(looked_up)
    fake_helpdesk.drop_next(1)
    worker = looked_up.delivery_worker()
    worker.run_once()
    settle(looked_up, clock)
    fake_helpdesk.fail_next(1, 503)  # the listing is unavailable

    worker.run_once()

    assert len(posts(fake_helpdesk)) == 1  # nothing sent while we cannot tell
    [item] = outbox_rows(looked_up)
    assert item.status == "pending" and item.uncertain_since is not None
    assert item.last_error.startswith("look-up before sending again: GET")
    assert item.last_http_status == 503

    drain(worker, clock)

    assert len(posts(fake_helpdesk)) == 1 and len(stored(fake_helpdesk)) == 1
    assert [r.status for r in outbox_rows(looked_up)] == ["sent"]


def test_our_survey_quoted_by_the_customer_is_not_taken_for_our_reply(
    looked_up, fake_helpdesk, clock
):
    queue_generic(looked_up)
    fake_helpdesk.drop_next(1, store=False)
    worker = looked_up.delivery_worker()
    worker.run_once()
    posted = posts(fake_helpdesk)[0]["body"]["text"]
    path = MESSAGES.format(dialog="D-1001")
    # The customer's email reply quotes our survey (the reference with it), and an old
    # outgoing message carries it too but predates the attempt by far.
    quote = fake_helpdesk.store(path, {"text": "> " + posted + "\nThanks!"})
    quote["direction"] = "incoming"
    old = fake_helpdesk.store(path, {"text": posted})
    old["created_at"] = "2020-01-01T00:00:00Z"

    settle(looked_up, clock)
    worker.run_once()

    assert len(posts(fake_helpdesk)) == 2  # neither counted: sent once more
    [item] = outbox_rows(looked_up)
    assert item.status == "sent" and item.external_id not in {str(quote["id"]), str(old["id"])}


def test_without_a_look_up_an_unknown_outcome_is_sent_again_visibly(
    services, fake_helpdesk, clock, caplog
):
    queue_generic(services)  # the plain generic helpdesk: no `lookup` configured
    fake_helpdesk.drop_next(1)
    worker = services.delivery_worker()
    worker.run_once()
    settle(services, clock)

    with caplog.at_level(logging.WARNING):
        worker.run_once()

    assert len(stored(fake_helpdesk)) == 2  # today's behaviour, as documented
    assert "delivery.resend-unchecked" in caplog.messages
    [item] = outbox_rows(services)
    assert item.status == "sent"
    assert item.last_error.startswith("sent again without a check (helpdesk 'generic' has no")


def test_a_look_up_the_vendor_refuses_for_good_falls_back_to_sending(
    looked_up, fake_helpdesk, clock
):
    queue_generic(looked_up)
    fake_helpdesk.drop_next(1, store=False)
    worker = looked_up.delivery_worker()
    worker.run_once()
    settle(looked_up, clock)
    fake_helpdesk.fail_next(1, 403)  # no permission to list messages

    worker.run_once()

    [item] = outbox_rows(looked_up)
    assert item.status == "sent" and "look-up refused: GET" in item.last_error
    assert len(stored(fake_helpdesk)) == 1


def test_an_unknown_outcome_on_the_last_attempt_is_still_checked(
    make_config, make_services, fake_helpdesk, clock
):
    services = make_services(
        make_config(helpdesks=generic_with_lookup(fake_helpdesk.url), delivery={"max_attempts": 1})
    )
    queue_generic(services, "LAST-1")
    queue_generic(services, "LAST-2")
    fake_helpdesk.drop_next(1)  # LAST-1 landed
    fake_helpdesk.drop_next(1, store=False)  # LAST-2 did not
    worker = services.delivery_worker()
    worker.run_once()
    assert [r.status for r in outbox_rows(services)] == ["pending", "pending"]

    settle(services, clock)
    worker.run_once()

    first, second = outbox_rows(services)
    assert first.status == "sent" and first.attempts == 2
    assert second.status == "failed"
    assert second.last_error == "gave up after 1 attempts; looked up: the last one did not land"
    assert len(posts(fake_helpdesk)) == 2  # a look-up only, no send beyond the budget


# --- heartbeats, leases and takeovers ---------------------------------------------------------


def claim_as(services: Any, worker_id: str, clock: Any) -> Any:
    lease = clock() + timedelta(seconds=services.config.delivery.lease_seconds)
    with services.engine.begin() as conn:
        [row] = store.claim_due(conn, worker_id, clock(), lease, limit=1)
    return row


def test_a_worker_that_stopped_beating_is_taken_over_within_dead_after(
    looked_up, fake_helpdesk, clock
):
    delivery = looked_up.config.delivery
    queue_generic(looked_up)
    gone = looked_up.delivery_worker(worker_id="gone")
    gone.beat()
    claimed = claim_as(looked_up, "gone", clock)  # and then it is SIGKILLed
    survivor = looked_up.delivery_worker(worker_id="survivor")

    clock.advance(delivery.worker_dead_after_seconds - 1)
    assert survivor.release_stale() == 0  # still beating as far as anyone knows
    clock.advance(2)
    # Taken over long before its lease (lease_seconds) would have expired.
    assert delivery.worker_dead_after_seconds + 1 < delivery.lease_seconds
    assert survivor.release_stale() == 1

    [item] = outbox_rows(looked_up)
    assert item.status == "pending" and item.claimed_by is None
    assert item.uncertain_since == claimed.updated_at  # the gone worker's attempt began here
    assert item.next_attempt_at == clock() + timedelta(seconds=delivery.takeover_wait_seconds)
    with looked_up.engine.connect() as conn:
        assert conn.execute(sa.select(workers.c.id)).scalars().all() == []

    assert survivor.run_once() == 0  # whatever the gone worker sent is still settling
    clock.advance(delivery.takeover_wait_seconds)
    assert survivor.run_once() == 1

    assert len(gets(fake_helpdesk)) == 1 and len(posts(fake_helpdesk)) == 1
    [item] = outbox_rows(looked_up)
    assert item.status == "sent" and item.claimed_by == "survivor"


def test_a_reply_claimed_after_the_last_beat_is_taken_over_without_waiting_for_its_lease(
    looked_up, clock
):
    delivery = looked_up.config.delivery
    queue_generic(looked_up)
    gone = looked_up.delivery_worker(worker_id="gone")
    gone.beat()
    clock.advance(1)
    claim_as(looked_up, "gone", clock)  # claimed between two beats, then SIGKILLed
    survivor = looked_up.delivery_worker(worker_id="survivor")

    clock.advance(delivery.worker_dead_after_seconds - 0.5)
    # The worker looks gone, but this claim is younger than dead_after: not yet, and the
    # gone worker's row must stay so that the claim can be recognised as its own later.
    assert survivor.release_stale() == 0
    clock.advance(1)
    assert survivor.release_stale() == 1  # well before lease_seconds
    with looked_up.engine.connect() as conn:
        assert conn.execute(sa.select(workers.c.id)).scalars().all() == []


def test_a_gone_workers_reply_that_landed_is_found_not_doubled(looked_up, fake_helpdesk, clock):
    queue_generic(looked_up)
    gone = looked_up.delivery_worker(worker_id="gone")
    gone.beat()
    claim_as(looked_up, "gone", clock)
    # It posted the reply, then died before recording it.
    fake_helpdesk.store(
        MESSAGES.format(dialog="D-1001"), {"text": "survey " + survey_token(looked_up)}
    )
    survivor = looked_up.delivery_worker(worker_id="survivor")

    clock.advance(looked_up.config.delivery.worker_dead_after_seconds + 1)
    survivor.release_stale()
    clock.advance(looked_up.config.delivery.takeover_wait_seconds)
    survivor.run_once()

    assert posts(fake_helpdesk) == [] and len(stored(fake_helpdesk)) == 1
    [item] = outbox_rows(looked_up)
    assert item.status == "sent" and item.last_error.startswith("found in the dialog")


def survey_token(services: Any) -> str:
    with services.engine.connect() as conn:
        return str(conn.execute(sa.text("SELECT token FROM surveys")).scalar_one())


class Blocking:
    """Makes the adapter's first send_reply wait for :meth:`release` (a request that runs
    long); later calls go straight through."""

    def __init__(self, services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()
        adapter = services.helpdesks["generic"]
        original = adapter.send_reply

        def send_reply(reply: Any) -> Any:
            if not self.entered.is_set():
                self.entered.set()
                assert self.go.wait(20)
            return original(reply)

        monkeypatch.setattr(adapter, "send_reply", send_reply)

    def release(self) -> None:
        self.go.set()


def test_the_heartbeat_renews_the_lease_of_a_request_running_past_it(
    services, fake_helpdesk, clock, monkeypatch
):
    delivery = services.config.delivery
    queue_generic(services)
    blocking = Blocking(services, monkeypatch)
    owner = services.delivery_worker(worker_id="owner")
    owner.start(threads=1)
    try:
        assert blocking.entered.wait(10)
        # The request is still running well past the lease it was claimed with.
        clock.advance(delivery.lease_seconds + 5)
        owner.beat()  # what the heartbeat thread does every heartbeat_seconds
        other = services.delivery_worker(worker_id="other")
        assert other.release_stale() == 0  # alive, lease renewed: not taken over

        [item] = outbox_rows(services)
        assert item.status == "sending" and item.claimed_by == "owner"
        assert item.lease_until == clock() + timedelta(seconds=delivery.lease_seconds)

        blocking.release()
        deadline = time.monotonic() + 10
        while outbox_rows(services)[0].status == "sending" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        blocking.release()
        owner.stop()

    assert len(posts(fake_helpdesk)) == 1
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.claimed_by == "owner"
    with services.engine.connect() as conn:  # a graceful stop unregisters
        assert conn.execute(sa.select(workers.c.id)).scalars().all() == []


def test_only_replies_in_flight_are_renewed(services, clock):
    # A reply whose outcome could not be recorded (the database was down) is no longer in
    # flight: its lease must expire so that it is taken over, not be renewed while the worker
    # lives.
    delivery = services.config.delivery
    for dialog in ("R-1", "R-2"):
        queue_generic(services, dialog)
    owner = services.delivery_worker(worker_id="owner")
    owner.beat()
    claimed, _ = owner._claim(2)
    stranded, running = (row for row, _survey in claimed)
    owner._owned.pop(stranded.id)  # its delivery finished; recording it failed
    clock.advance(delivery.lease_seconds - 1)

    owner.beat()
    clock.advance(2)

    other = services.delivery_worker(worker_id="other")
    assert other.release_stale() == 1  # the stranded one, by its expired lease
    rows = {row.id: row for row in outbox_rows(services)}
    assert rows[stranded.id].status == "pending" and rows[stranded.id].uncertain_since
    assert rows[running.id].status == "sending" and rows[running.id].claimed_by == "owner"


def test_a_worker_taken_for_dead_does_not_send_what_it_no_longer_owns(
    services, fake_helpdesk, clock, monkeypatch
):
    delivery = services.config.delivery
    queue_generic(services)
    blocking = Blocking(services, monkeypatch)
    stalled = services.delivery_worker(worker_id="stalled")
    stalled.start(threads=1)
    try:
        assert blocking.entered.wait(10)
        # Its heartbeat cannot reach the database (a partition, a long pause): others take
        # the reply over and, after the takeover wait, send it themselves.
        clock.advance(delivery.worker_dead_after_seconds + 1)
        survivor = services.delivery_worker(worker_id="survivor")
        assert survivor.release_stale() == 1
        clock.advance(delivery.takeover_wait_seconds)
        assert survivor.run_once() == 1
        # Its heartbeat gets through again: it is alive, but the reply is not its own any
        # more (the renewal does not find it), so its fence stays closed for that reply.
        stalled.beat()
        blocking.release()  # the stalled worker wakes up and tries to post its copy
        deadline = time.monotonic() + 10
        while len(fake_helpdesk.api_requests()) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
    finally:
        blocking.release()
        stalled.stop()

    assert len(posts(fake_helpdesk)) == 1  # the fence kept the stalled worker's copy back
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.claimed_by == "survivor"


def test_a_row_renewed_after_its_workers_last_beat_is_not_taken_over(services, clock):
    # PostgreSQL re-checks a row a concurrent renewal just updated against the statement's
    # older view of `workers`: the row's own lease must keep it with its owner.
    delivery = services.config.delivery
    queue_generic(services)
    owner = services.delivery_worker(worker_id="owner")
    owner.beat()
    claim_as(services, "owner", clock)
    clock.advance(delivery.worker_dead_after_seconds + 1)
    with services.engine.begin() as conn:  # renewed, but the beat looks old
        conn.execute(
            sa.update(outbox_table).values(
                lease_until=clock() + timedelta(seconds=delivery.lease_seconds)
            )
        )

    assert services.delivery_worker(worker_id="other").release_stale() == 0
    assert outbox_rows(services)[0].claimed_by == "owner"


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivery", "message"),
    [
        (
            {"lease_seconds": 60},
            "delivery: lease_seconds (60) must exceed 4 × (connect_timeout_seconds + "
            "read_timeout_seconds) = 80",
        ),
        (
            {"heartbeat_seconds": 5, "worker_dead_after_seconds": 10},
            "delivery: worker_dead_after_seconds (10) must be at least 3 × heartbeat_seconds (15)",
        ),
        (
            {"read_timeout_seconds": 20, "settle_seconds": 10, "lease_seconds": 200},
            "delivery: settle_seconds (10) must be at least read_timeout_seconds (20)",
        ),
        (
            {"worker_dead_after_seconds": 150, "heartbeat_seconds": 10},
            "delivery: lease_seconds (120) must exceed worker_dead_after_seconds (150)",
        ),
    ],
)
def test_timings_that_do_not_fit_are_refused_naming_the_keys(tmp_path, delivery, message):
    from csat_hook.config import load_config

    with pytest.raises(ConfigError) as caught:
        load_config(None, env={}, overrides={"delivery": delivery})
    assert message in str(caught.value)


def test_the_default_timings_fit_and_take_over_well_before_a_lease():
    defaults = DeliveryConfig()
    assert defaults.lease_seconds > 4 * defaults.request_seconds
    # Kill → taken over (dead_after) → first look-up (takeover wait): under the 120 s lease.
    assert defaults.worker_dead_after_seconds + defaults.takeover_wait_seconds < 60


@pytest.mark.parametrize("status", [504, 520, 524])
def test_a_gateway_timeout_is_looked_up_not_posted_again(looked_up, fake_helpdesk, clock, status):
    """A proxy in front of the API (a load balancer's 504, Cloudflare's 524) gave up waiting
    while the API saved the reply: the same as our own read timeout, never a blind resend."""
    queue_generic(looked_up)
    fake_helpdesk.fail_next(1, status=status)
    worker = looked_up.delivery_worker()
    worker.run_once()
    fake_helpdesk.store(MESSAGES.format(dialog="D-1001"), posts(fake_helpdesk)[0]["body"])

    settle(looked_up, clock)
    worker.run_once()

    assert len(posts(fake_helpdesk)) == 1 and len(stored(fake_helpdesk)) == 1
    [item] = outbox_rows(looked_up)
    assert item.status == "sent" and item.last_error.startswith("found in the dialog")


@pytest.mark.parametrize("status", [500, 502])
def test_a_reply_stored_before_a_500_or_502_is_found_not_posted_again(
    looked_up, fake_helpdesk, clock, status
):
    """The vendor stored the reply and then failed (its own 500, or a proxy's 502 after
    forwarding the request): one reply in the dialog, never a second post."""
    queue_generic(looked_up)
    fake_helpdesk.fail_next(1, status=status, store=True)
    worker = looked_up.delivery_worker()
    left_uncertain(looked_up, worker)

    settle(looked_up, clock)
    worker.run_once()

    assert len(posts(fake_helpdesk)) == 1 and len(stored(fake_helpdesk)) == 1
    [item] = outbox_rows(looked_up)
    assert item.status == "sent" and item.external_id == str(stored(fake_helpdesk)[0]["id"])
    assert item.last_error.startswith("found in the dialog")


def test_a_reply_answered_500_without_being_stored_is_sent_once_after_the_look_up(
    looked_up, fake_helpdesk, clock
):
    queue_generic(looked_up)
    fake_helpdesk.fail_next(1, status=500)  # failed before the vendor kept anything
    worker = looked_up.delivery_worker()
    worker.run_once()
    settle(looked_up, clock)
    worker.run_once()

    assert [r["answered"] for r in posts(fake_helpdesk)] == [500, 200]
    assert len(gets(fake_helpdesk)) == 1  # looked up once, found nothing, then posted
    assert len(stored(fake_helpdesk)) == 1
    [item] = outbox_rows(looked_up)
    assert item.status == "sent" and item.last_error is None


@pytest.mark.parametrize("status", [500, 502])
def test_a_look_up_answered_500_or_502_is_retried_plainly(looked_up, fake_helpdesk, clock, status):
    """A read changes nothing: its 500 is a plain retry of the look-up, nothing posted."""
    queue_generic(looked_up)
    fake_helpdesk.drop_next(1)  # stored, answer lost
    worker = looked_up.delivery_worker()
    worker.run_once()
    settle(looked_up, clock)
    fake_helpdesk.fail_next(1, status=status)  # the listing fails once

    worker.run_once()
    [item] = outbox_rows(looked_up)
    assert item.status == "pending" and item.last_http_status == status
    assert item.last_error.startswith("look-up before sending again: GET")
    assert "outcome unknown" not in item.last_error

    drain(worker, clock)
    assert len(posts(fake_helpdesk)) == 1 and len(stored(fake_helpdesk)) == 1
    assert [r.status for r in outbox_rows(looked_up)] == ["sent"]


def test_a_503_to_a_reply_is_retried_without_a_look_up(looked_up, fake_helpdesk, clock):
    """503 says the request was not processed: retried plainly, no settle delay, no look-up."""
    queue_generic(looked_up)
    fake_helpdesk.fail_next(1, status=503)
    worker = looked_up.delivery_worker()
    worker.run_once()
    [item] = outbox_rows(looked_up)
    assert item.status == "pending" and item.uncertain_since is None

    drain(worker, clock)
    assert gets(fake_helpdesk) == [] and len(stored(fake_helpdesk)) == 1
    assert [r["answered"] for r in posts(fake_helpdesk)] == [503, 200]


def test_an_agent_look_up_that_timed_out_leaves_the_reply_certain(
    make_config, fake_helpdesk, clock
):
    """Nothing of the reply was sent when the agent look-up (a read) timed out: the next
    attempt posts it plainly, without waiting the settle delay or noting a resend."""
    helpdesks = {
        "generic": {
            "kind": "generic",
            "auth": {"mode": "token", "token": "generic-token-123"},
            "reply": {"url": fake_helpdesk.url + "/api/dialogs/{dialog_id}/messages"},
            "agent_lookup": {"by_id": {"url": fake_helpdesk.url + "/api/agents/{agent_id}"}},
        }
    }
    services = build_services(
        make_config(helpdesks=helpdesks),
        clock=clock,
        http=HttpClient(connect_timeout=1, read_timeout=0.3),
    )
    try:
        queue_generic(services, agent={"id": "7"})
        fake_helpdesk.delay_next(3, seconds=1.0)  # the look-up and its two retries in place
        drain(services.delivery_worker(), clock)
        assert len(posts(fake_helpdesk)) == 1
        [item] = outbox_rows(services)
        assert item.status == "sent" and item.uncertain_since is None
        assert item.last_error is None
    finally:
        services.close()


# --- a 2xx that is not the API's answer -------------------------------------------------------

PORTAL = b"<html><body>Sign in to the network to continue</body></html>"


def generic_requiring_the_id(fake_url: str, *, require: bool) -> dict[str, Any]:
    helpdesks = generic_with_lookup(fake_url)
    helpdesks["generic"]["reply"]["require_message_id"] = require
    return helpdesks


@pytest.mark.parametrize(("status", "body"), [(200, PORTAL), (200, b""), (201, b"{}")])
def test_a_2xx_without_the_id_the_api_always_gives_is_looked_up_not_taken_for_sent(
    make_config, make_services, fake_helpdesk, clock, monkeypatch, status, body
):
    services = make_services(
        make_config(helpdesks=generic_requiring_the_id(fake_helpdesk.url, require=True))
    )
    queue_generic(services)
    # A captive portal answers in the API's place: nothing reached the helpdesk.
    script_answers(
        fake_helpdesk,
        monkeypatch,
        ScriptedAnswer("POST", r"/api/dialogs/.*", status, body, times=1),
    )
    worker = services.delivery_worker()

    left_uncertain(services, worker)
    with fake_helpdesk.lock:  # (the fake stored it before the scripted answer replaced its own)
        fake_helpdesk.messages.clear()
    [item] = outbox_rows(services)
    assert "without the created message's id" in item.last_error
    assert item.last_error.endswith("(outcome unknown)")

    settle(services, clock)
    worker.run_once()  # looked up: not there, so posted (now to the API itself)

    assert len(posts(fake_helpdesk)) == 2 and len(gets(fake_helpdesk)) == 1
    [message] = stored(fake_helpdesk)
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.external_id == str(message["id"])


def test_by_default_a_generic_2xx_without_an_id_is_sent(
    make_config, make_services, fake_helpdesk, monkeypatch
):
    # A generic endpoint may rightly answer 204 No Content.
    services = make_services(
        make_config(helpdesks=generic_requiring_the_id(fake_helpdesk.url, require=False))
    )
    queue_generic(services)
    script_answers(
        fake_helpdesk, monkeypatch, ScriptedAnswer("POST", r"/api/dialogs/.*", 204, b"", times=1)
    )

    services.delivery_worker().run_once()

    [item] = outbox_rows(services)
    assert item.status == "sent" and item.external_id is None and item.attempts == 1
    assert len(posts(fake_helpdesk)) == 1


def test_requiring_the_id_needs_the_path_to_it(make_config, fake_helpdesk):
    helpdesks = generic_requiring_the_id(fake_helpdesk.url, require=True)
    helpdesks["generic"]["reply"]["message_id"] = None
    with pytest.raises(ConfigError, match="require_message_id: set message_id too"):
        make_config(helpdesks=helpdesks)


# --- an operator's retry -----------------------------------------------------------------------


def test_an_operators_retry_keeps_the_idempotency_key_so_a_landed_reply_is_not_doubled(
    make_config, make_services, fake_helpdesk, clock
):
    # `outbox retry` gives the same reply a fresh attempt budget: it is the same delivery, so
    # the same Idempotency-Key. A failed reply may hold an attempt that landed (its outcome
    # unknown, and no look-up to tell): a receiver that honours the key drops the resend as
    # that attempt's replay. A refused attempt stored nothing, and keys only what it stored.
    fake_helpdesk.idempotent = True
    services = make_services(make_config(delivery={"max_attempts": 1}))  # generic, no look-up
    queue_generic(services)
    fake_helpdesk.drop_next(1)  # stored, then the connection closes without an answer
    worker = services.delivery_worker()
    worker.run_once()
    settle(services, clock)
    worker.run_once()  # no look-up and no attempt left: failed
    [item] = outbox_rows(services)
    assert item.status == "failed" and "outcome is unknown" in item.last_error

    with services.engine.begin() as conn:
        assert listing.requeue(conn, clock(), ids=[item.id]) == [item.id]
    drain(worker, clock)

    [first, again] = posts(fake_helpdesk)
    key = first["headers"]["Idempotency-Key"]
    assert again["headers"]["Idempotency-Key"] == key == f"csat-hook-{item.id}"
    assert again.get("replayed") is True
    assert len(stored(fake_helpdesk)) == 1  # the dialog shows the survey once
    [item] = outbox_rows(services)
    assert item.status == "sent"


def test_a_vendor_that_keeps_every_post_and_never_answers_gets_two_copies_not_eight(
    services, fake_helpdesk, clock
):
    # No look-up (the plain generic helpdesk), and every post stored with its answer lost
    # (a slow vendor behind a proxy that gives up): each unknown outcome was sent again
    # without a check, once per attempt, delivery.max_attempts (8) copies in the dialog.
    queue_generic(services)
    fake_helpdesk.drop_next(services.config.delivery.max_attempts)
    worker = services.delivery_worker()

    drain(worker, clock)

    assert len(stored(fake_helpdesk)) == 2  # the first, and the one resend without a check
    [item] = outbox_rows(services)
    assert item.status == "failed"
    assert "not sent again" in item.last_error and "twice" in item.last_error


@pytest.mark.parametrize(("team", "posted"), [("Support L2", True), ("Support L1", False)])
def test_an_undated_close_after_the_reopen_takes_the_mark_back_its_retry_does_not(
    make_config, make_services, fake_helpdesk, clock, team, posted
):
    # A helpdesk naming no close time (Freshdesk): a new close after the reopen (another
    # body) takes the mark back, the first close's retry (the same body, within the retry
    # window) is no new close and leaves it, as it re-arms no cancelled survey.
    helpdesks = generic_with_lookup(fake_helpdesk.url)
    helpdesks["generic"]["mapping"] = {"reopen_time": "reopened_at"}
    services = make_services(make_config(helpdesks=helpdesks))
    client = create_app(services=services).test_client()
    start = int(clock.now.timestamp())
    close = generic_close("D-1")
    assert client.post("/webhooks/generic", json=close, headers=GENERIC_AUTH).json["status"] == (
        "queued"
    )
    fake_helpdesk.drop_next(1, store=False)
    worker = services.delivery_worker()
    left_uncertain(services, worker)
    clock.advance(5)
    reopen = {"event": "dialog.reopened", "dialog": {"id": "D-1"}, "reopened_at": start + 3}
    assert (
        client.post("/webhooks/generic", json=reopen, headers=GENERIC_AUTH).json["cancelled"] == 0
    )
    clock.advance(60)
    again = generic_close("D-1", team=team)
    assert client.post("/webhooks/generic", json=again, headers=GENERIC_AUTH).json["status"] == (
        "duplicate"
    )
    settle(services, clock)

    worker.run_once()

    [item] = outbox_rows(services)
    assert len(stored(fake_helpdesk, "D-1")) == int(posted)
    assert item.status == ("sent" if posted else "cancelled")


def test_an_older_reopen_delivered_late_does_not_move_the_mark_back(
    make_config, make_services, fake_helpdesk, clock
):
    # Reopened at +3 and again at +30, the +30 delivered first: the +3 one, delivered late,
    # set the mark back to +3, and the late close at +10 (before the last reopen) took it
    # off: the reply was posted into the dialog reopened at +30.
    helpdesks = generic_with_lookup(fake_helpdesk.url)
    helpdesks["generic"]["mapping"] = {"close_time": "closed_at", "reopen_time": "reopened_at"}
    services = make_services(make_config(helpdesks=helpdesks))
    client = create_app(services=services).test_client()
    start = int(clock.now.timestamp())
    close = generic_close("D-1", closed_at=start - 5)
    assert client.post("/webhooks/generic", json=close, headers=GENERIC_AUTH).json["status"] == (
        "queued"
    )
    fake_helpdesk.drop_next(1, store=False)
    worker = services.delivery_worker()
    left_uncertain(services, worker)
    clock.advance(60)
    for at in (30, 3):
        reopen = {"event": "dialog.reopened", "dialog": {"id": "D-1"}, "reopened_at": start + at}
        assert (
            client.post("/webhooks/generic", json=reopen, headers=GENERIC_AUTH).status_code == 200
        )
    again = generic_close("D-1", closed_at=start + 10)
    assert client.post("/webhooks/generic", json=again, headers=GENERIC_AUTH).json["status"] == (
        "duplicate"
    )
    settle(services, clock)

    worker.run_once()

    [item] = outbox_rows(services)
    assert stored(fake_helpdesk, "D-1") == []
    assert item.status == "cancelled"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("step", ["reopen", "close"])
def test_an_erasure_committed_while_a_reopen_marks_the_reply_is_not_undone(services, clock, step):
    # The reopen read a reply being sent (its context holding the vendor's values), an
    # erasure of that dialog committed (context emptied, erased_at), and the reopen then
    # wrote the context it had read back with its mark: the erased values were stored
    # again; as did a later close taking the mark off. PostgreSQL only: on SQLite a writer
    # holds the database from BEGIN IMMEDIATE.
    from csat_hook.erasure.records import Selector
    from csat_hook.erasure.store import erase

    queue_generic(services)
    with services.engine.begin() as conn:
        conn.execute(sa.update(outbox_table).values(context={"customer": "ivan@example.org"}))
    [_claimed], _ = services.delivery_worker(worker_id="w")._claim(1)
    erased = []

    def erase_first(conn, cursor, statement, parameters, context, executemany):
        if not erased and statement.lstrip().upper().startswith("UPDATE OUTBOX SET CONTEXT"):
            erased.append(True)
            with services.engine.begin() as other:
                erase(other, Selector(helpdesk="generic", dialog_id="D-1001"), clock(), apply=True)

    if step == "close":
        with services.engine.begin() as conn:
            store.cancel_waiting(conn, "generic", "D-1001", clock())
    with services.engine.begin() as conn:
        sa.event.listen(conn, "before_cursor_execute", erase_first)
        if step == "reopen":
            store.cancel_waiting(conn, "generic", "D-1001", clock())
        else:
            store.unmark_reopened(conn, "generic", "D-1001", clock() + timedelta(minutes=1))

    [item] = outbox_rows(services)
    assert erased and item.erased_at is not None
    assert "customer" not in (item.context or {}), item.context
