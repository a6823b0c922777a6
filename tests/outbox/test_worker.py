"""The delivery worker: replies reach the helpdesk exactly once, through failures."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import responses
import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.app import create_app
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.outbox import listing
from csat_hook.outbox import store
from csat_hook.outbox.wake import Waker
from csat_hook.outbox.worker import DeliveryWorker
from tests.helpdesks.markdown import links_and_text
from tests.helpers import body_of
from tests.helpers import chatwoot_headers
from tests.helpers import fixture
from tests.helpers import generic_close
from tests.helpers import link_fields
from tests.stuck_resolver import StuckResolver

GENERIC_AUTH = {"X-Webhook-Token": "generic-token-123"}


def queue_generic(services: Any, dialog_id: str = "D-1001", **extra: Any) -> None:
    client = create_app(services=services).test_client()
    response = client.post(
        "/webhooks/generic", json=generic_close(dialog_id, **extra), headers=GENERIC_AUTH
    )
    assert response.json["status"] == "queued"


def outbox_rows(services: Any) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)).all())


def drain(worker: DeliveryWorker, clock: Any, rounds: int = 20) -> None:
    """Run the worker, moving the clock past each backoff, until nothing is due."""
    for _ in range(rounds):
        worker.run_once()
        with worker.engine.connect() as conn:
            due = store.next_due_at(conn)
        if due is None:
            return
        clock.now = max(clock.now, due) + timedelta(milliseconds=1)


def test_generic_reply_reaches_the_helpdesk_with_a_decodable_link(services, fake_helpdesk):
    queue_generic(services)

    assert services.delivery_worker().run_once() == 1

    [request] = fake_helpdesk.api_requests()
    assert request["path"] == "/api/dialogs/D-1001/messages"
    assert request["headers"]["Authorization"] == "Bearer generic-api-key"
    text = request["body"]["text"]
    assert text.startswith("Thanks for contacting us! How did Anna Petrova do?")
    link = text.split()[-1]
    fields = link_fields(link)
    assert link.startswith("https://docs.google.com/forms/d/e/1FAIpQLSfTEST/viewform?usp=pp_url&")
    assert fields["entry.111"] == "Anna Petrova"
    assert fields["entry.222"] == "7"
    assert fields["entry.333"] == "D-1001"
    ref = tokens.verify(fields["entry.444"], services.config.token.all_secrets())
    assert (ref.helpdesk, ref.dialog_id, ref.agent) == ("generic", "D-1001", "7")
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.external_id == "1" and item.body == text


def test_chatwoot_reply_is_posted_to_the_messages_api(services, fake_helpdesk, clock):
    payload = fixture("chatwoot", "conversation_status_changed_resolved.json")
    body = body_of(payload)
    client = create_app(services=services).test_client()
    client.post(
        "/webhooks/chatwoot",
        data=body,
        headers=chatwoot_headers(body, "cw-webhook-secret", clock()),
    )

    services.delivery_worker().run_once()

    posts = [r for r in fake_helpdesk.api_requests() if r["method"] == "POST"]
    [request] = posts
    assert request["path"] == "/api/v1/accounts/1/conversations/10/messages"
    assert request["headers"]["api_access_token"] == "cw-api-token"
    assert request["body"]["message_type"] == "outgoing"
    assert request["body"]["private"] is False
    # The customer's browser language is ru: the Russian template goes out, as Markdown (a
    # web-widget conversation) whose only link is the survey's.
    [link], text = links_and_text(request["body"]["content"])
    assert text.startswith("Спасибо за обращение!") and text.endswith(link)
    fields = link_fields(link)
    assert (fields["entry.111"], fields["entry.333"]) == ("John", "10")


def test_three_503s_then_success_sends_once_after_backoff(services, fake_helpdesk, clock):
    queue_generic(services)
    fake_helpdesk.fail_next(3, 503)
    worker = services.delivery_worker()

    drain(worker, clock)

    answered = [r["answered"] for r in fake_helpdesk.api_requests()]
    assert answered == [503, 503, 503, 200]
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.attempts == 4


def test_retries_wait_for_the_backoff(services, fake_helpdesk, clock):
    queue_generic(services)
    fake_helpdesk.fail_next(1, 503)
    worker = services.delivery_worker()

    worker.run_once()
    worker.run_once()  # nothing due yet: the clock has not moved

    assert len(fake_helpdesk.api_requests()) == 1
    [item] = outbox_rows(services)
    assert item.status == "pending" and item.next_attempt_at > clock()
    assert item.last_error.endswith("HTTP 503 Service Unavailable")
    assert item.last_http_status == 503


def test_a_400_marks_the_reply_failed_without_retrying(services, fake_helpdesk, clock):
    queue_generic(services)
    fake_helpdesk.fail_next(1, 400)

    drain(services.delivery_worker(), clock)

    assert len(fake_helpdesk.api_requests()) == 1
    [item] = outbox_rows(services)
    assert item.status == "failed" and item.last_http_status == 400
    assert "HTTP 400" in item.last_error
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(surveys.c.status)).scalar_one() == "failed"


def test_a_reply_sent_after_a_refusal_keeps_no_status_of_it(services, fake_helpdesk, clock):
    # `outbox --json` listed a sent reply with the 503 of the attempt before it, its
    # last_error cleared: as if the vendor's last answer had been a refusal.
    queue_generic(services)
    fake_helpdesk.fail_next(1, 503)
    drain(services.delivery_worker(), clock)

    [item] = outbox_rows(services)
    assert (item.status, item.last_error, item.last_http_status) == ("sent", None, None)


def test_retry_after_is_honoured(services, fake_helpdesk, clock):
    queue_generic(services)
    fake_helpdesk.fail_next(1, 429, retry_after=120)
    start = clock()

    services.delivery_worker().run_once()

    [item] = outbox_rows(services)
    waited = (item.next_attempt_at - start).total_seconds()
    assert 120 <= waited <= 132


@pytest.mark.parametrize("retry_after", [-5, float("nan"), float("-inf")])
def test_a_retry_after_that_is_no_delay_leaves_the_backoff_in_charge(
    services, fake_helpdesk, clock, retry_after
):
    # Retry-After is delta-seconds (digits) or an HTTP date. "-5" or "nan" read as "now"
    # retried a rate-limited reply at once, every attempt in a second: failed for good.
    queue_generic(services)
    fake_helpdesk.fail_next(1, 429, retry_after=retry_after)
    start = clock()

    services.delivery_worker().run_once()

    [item] = outbox_rows(services)
    waited = (item.next_attempt_at - start).total_seconds()
    assert item.status == "pending" and item.last_http_status == 429
    assert waited >= services.config.delivery.backoff.ceiling(1) / 2


def test_a_retry_after_of_zero_every_time_spreads_the_attempts_by_the_backoff(
    make_config, make_services, fake_helpdesk, clock
):
    """A vendor answering 429 with "Retry-After: 0" each time had the reply's every attempt
    made at once (failed for good within a second): each wait is at least the backoff's."""
    services = make_services(make_config(delivery={"max_attempts": 4}))
    backoff = services.config.delivery.backoff
    queue_generic(services)
    fake_helpdesk.fail_next(10, 429, retry_after=0)
    worker = services.delivery_worker()
    for failures in range(1, 4):
        start = clock()
        assert worker.run_once() == 1
        [item] = outbox_rows(services)
        assert item.status == "pending" and item.last_http_status == 429
        assert (item.next_attempt_at - start).total_seconds() >= backoff.ceiling(failures) / 2
        clock.now = item.next_attempt_at + timedelta(milliseconds=1)
    assert worker.run_once() == 1
    [item] = outbox_rows(services)
    assert item.status == "failed" and item.attempts == 4


def test_attempts_are_bounded(make_config, make_services, fake_helpdesk, clock):
    services = make_services(
        make_config(
            delivery={"max_attempts": 3, "backoff_base_seconds": 0.01, "backoff_cap_seconds": 0.02}
        )
    )
    queue_generic(services)
    fake_helpdesk.fail_next(10, 503)  # not processed: plain retries (a 502 is looked up)

    drain(services.delivery_worker(), clock)

    assert len(fake_helpdesk.api_requests()) == 3
    [item] = outbox_rows(services)
    assert item.status == "failed" and item.attempts == 3


def test_connection_refused_is_retried(make_config, make_services, clock, fake_helpdesk):
    services = make_services(
        make_config(
            helpdesks={
                "generic": {
                    "kind": "generic",
                    "auth": {"mode": "token", "token": "generic-token-123"},
                    "reply": {"url": "http://127.0.0.1:9/unreachable/{dialog_id}"},
                }
            }
        )
    )
    queue_generic(services)

    services.delivery_worker().run_once()

    [item] = outbox_rows(services)
    assert item.status == "pending" and "connection failed" in item.last_error


def test_a_resolver_that_never_answers_ends_the_attempt_and_it_is_retried(
    make_config, make_services, clock, fake_helpdesk, monkeypatch
):
    # The connect timeout did not bound getaddrinfo: the delivery thread waited as long as
    # the resolver did. Now the attempt ends within it, not sent, and is tried again.
    port = fake_helpdesk.url.rsplit(":", 1)[1]
    stuck = StuckResolver({"helpdesk.test"})
    monkeypatch.setattr(socket, "getaddrinfo", stuck.getaddrinfo)
    services = make_services(
        make_config(
            helpdesks={
                "generic": {
                    "kind": "generic",
                    "auth": {"mode": "token", "token": "generic-token-123"},
                    "reply": {"url": f"http://helpdesk.test:{port}/api/dialogs/{{dialog_id}}"},
                }
            }
        )
    )
    services.http.timeout = (0.5, 10)
    queue_generic(services)
    try:
        started = time.monotonic()
        services.delivery_worker().run_once()
        assert time.monotonic() - started < 3
        [item] = outbox_rows(services)
        assert item.status == "pending" and item.uncertain_since is None
        assert item.last_error.endswith("connect timed out (not sent)")
        assert fake_helpdesk.api_requests() == []
    finally:
        stuck.release()

    drain(services.delivery_worker(), clock)

    [item] = outbox_rows(services)
    assert item.status == "sent" and item.attempts == 2
    assert len(fake_helpdesk.api_requests()) == 1


@responses.activate
def test_a_read_timeout_is_an_unknown_outcome_checked_after_the_settle_delay(services, clock):
    import requests

    services.config.helpdesks["generic"].reply.url = "https://desk.example.com/{dialog_id}"
    responses.post("https://desk.example.com/D-1001", body=requests.ReadTimeout("slow"))
    queue_generic(services)
    claimed_at = clock()

    services.delivery_worker().run_once()

    [item] = outbox_rows(services)
    assert item.status == "pending"
    assert item.last_error.endswith("timed out waiting for the answer (outcome unknown)")
    # The attempt may have landed: it is looked for first, no sooner than the settle delay.
    assert item.uncertain_since == claimed_at
    settle = services.config.delivery.settle_seconds
    assert item.next_attempt_at >= claimed_at + timedelta(seconds=settle)


def test_expired_lease_is_taken_over_and_delivered_once(services, fake_helpdesk, clock):
    queue_generic(services)
    # A worker without a heartbeat claims the reply and dies before posting it.
    with services.engine.begin() as conn:
        [_claimed] = store.claim_due(
            conn, "dead-worker", clock(), clock() + timedelta(seconds=30), limit=1
        )
    survivor = services.delivery_worker(worker_id="survivor")
    assert survivor.run_once() == 0  # still leased

    clock.advance(31)
    assert survivor.run_once() == 0  # taken over, but the dead worker's post may be settling
    [item] = outbox_rows(services)
    assert item.status == "pending" and item.uncertain_since is not None
    assert "taken over from worker dead-worker" in item.last_error

    clock.advance(services.config.delivery.takeover_wait_seconds)
    assert survivor.run_once() == 1

    assert len(fake_helpdesk.api_requests()) == 1
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.claimed_by == "survivor" and item.attempts == 2
    # This helpdesk has no look-up: sent again unchecked, and operators can see it.
    assert item.last_error.startswith("sent again without a check")


def test_a_late_worker_does_not_overwrite_the_new_owner(services, clock):
    queue_generic(services)
    with services.engine.begin() as conn:
        [row] = store.claim_due(conn, "old", clock(), clock() + timedelta(seconds=1), limit=1)
    clock.advance(2)
    with services.engine.begin() as conn:
        now = clock()
        released = store.release_stale(conn, now, dead_before=now, quiet_before=now, check_at=now)
        assert released == [row.id]
        store.claim_due(conn, "new", clock(), clock() + timedelta(seconds=30), limit=1)
        assert not store.mark_sent(conn, row.id, "old", clock(), external_id="x", body="b")
        assert store.mark_sent(conn, row.id, "new", clock(), external_id="y", body="b")


def test_concurrent_workers_never_send_a_reply_twice(services, fake_helpdesk):
    for i in range(30):
        queue_generic(services, dialog_id=f"C-{i}")
    workers = [services.delivery_worker(worker_id=f"w{i}") for i in range(4)]
    threads = [threading.Thread(target=w.run_once) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    paths = [r["path"] for r in fake_helpdesk.api_requests()]
    assert len(paths) == 30 and len(set(paths)) == 30
    assert {r.status for r in outbox_rows(services)} == {"sent"}


def test_idempotency_key_is_stable_per_reply(services, fake_helpdesk, clock):
    queue_generic(services)
    fake_helpdesk.fail_next(1, 503)

    drain(services.delivery_worker(), clock)

    keys = {r["headers"]["Idempotency-Key"] for r in fake_helpdesk.api_requests()}
    assert len(keys) == 1


def test_delayed_send_waits_for_its_time(make_config, make_services, fake_helpdesk, clock):
    services = make_services(make_config(policy={"send_delay_seconds": 600}))
    queue_generic(services)
    worker = services.delivery_worker()

    assert worker.run_once() == 0
    clock.advance(601)
    assert worker.run_once() == 1
    assert len(fake_helpdesk.api_requests()) == 1


def test_threads_wake_when_a_reply_is_queued(make_config, make_services, fake_helpdesk):
    # poll_seconds is long: only the wake-up can make this fast.
    services = make_services(make_config(delivery={"poll_seconds": 30}))
    services.clock = __import__("csat_hook.clock", fromlist=["utcnow"]).utcnow
    worker = services.delivery_worker()
    worker.start(threads=2)
    try:
        time.sleep(0.2)  # threads are now waiting
        started = time.monotonic()
        queue_generic(services)
        while not fake_helpdesk.api_requests() and time.monotonic() - started < 5:
            time.sleep(0.01)
        elapsed = time.monotonic() - started
    finally:
        worker.stop()
    assert fake_helpdesk.api_requests(), "the queued reply was not delivered"
    assert elapsed < 5


def test_a_backlog_larger_than_the_threads_is_drained_without_waiting_for_the_poll(
    make_config, make_services, fake_helpdesk
):
    # poll_seconds is long: only threads that free up can make the dispatcher claim again.
    services = make_services(make_config(delivery={"poll_seconds": 60}))
    services.clock = __import__("csat_hook.clock", fromlist=["utcnow"]).utcnow
    for n in range(30):
        queue_generic(services, f"D-{n}")
    worker = services.delivery_worker()
    worker.start(threads=4)
    try:
        deadline = time.monotonic() + 20
        while len(fake_helpdesk.api_requests()) < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    sent_to = [r["path"] for r in fake_helpdesk.api_requests()]
    assert len(sent_to) == 30 and len(set(sent_to)) == 30
    assert {row.status for row in outbox_rows(services)} == {"sent"}


class HeldAfterAReply(Waker):
    """A waker whose first wake-up from a delivery thread (the thread freed, the dispatcher
    woken to claim again) holds that thread until the worker is asked to stop, and half a
    second more: the reply the dispatcher claims meanwhile waits in the pool's queue, as one
    claimed while a SIGTERM arrives does until a thread takes it."""

    def __init__(self) -> None:
        super().__init__()
        self.stopping = threading.Event()
        self.held = False

    def notify(self) -> None:
        super().notify()
        if not self.held and threading.current_thread().name.startswith("delivery_"):
            self.held = True
            self.stopping.wait(20)
            time.sleep(0.5)


def test_a_reply_claimed_as_the_worker_stops_is_delivered_not_left_claimed(
    make_config, make_services, fake_helpdesk
):
    """A graceful stop (SIGTERM, serve's web process exiting) while the dispatcher has just
    claimed a reply that no thread has started: it was cancelled in the pool's queue and left
    ``sending``, claimed by the worker that then unregistered, until its lease ran out
    (``lease_seconds``, 120 s) and another worker took it over to look it up first. It is
    sent, as the replies in flight are."""
    services = make_services(make_config(delivery={"poll_seconds": 60}))
    services.clock = __import__("csat_hook.clock", fromlist=["utcnow"]).utcnow
    services.waker = waker = HeldAfterAReply()
    queue_generic(services, "D-1")
    queue_generic(services, "D-2")
    worker = services.delivery_worker()
    worker.start(threads=1)
    try:
        deadline = time.monotonic() + 20
        while [row.status for row in outbox_rows(services)] != ["sent", "sending"]:
            assert time.monotonic() < deadline, outbox_rows(services)
            time.sleep(0.02)
    finally:
        waker.stopping.set()
        worker.stop()
    assert [row.status for row in outbox_rows(services)] == ["sent", "sent"]
    assert sorted(r["path"] for r in fake_helpdesk.api_requests()) == [
        "/api/dialogs/D-1/messages",
        "/api/dialogs/D-2/messages",
    ]


def test_a_retry_is_sent_at_its_backoff_time_not_at_the_next_poll(
    make_config, make_services, fake_helpdesk
):
    services = make_services(
        make_config(delivery={"poll_seconds": 60, "backoff_base_seconds": 0.2})
    )
    services.clock = __import__("csat_hook.clock", fromlist=["utcnow"]).utcnow
    fake_helpdesk.fail_next(2, status=503)
    worker = services.delivery_worker()
    worker.start(threads=4)
    try:
        queue_generic(services)
        deadline = time.monotonic() + 20
        while len(fake_helpdesk.api_requests()) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    assert [r["answered"] for r in fake_helpdesk.api_requests()] == [503, 503, 200]


def test_outbox_requeue_gives_failed_replies_a_fresh_budget(services, fake_helpdesk, clock):
    queue_generic(services)
    fake_helpdesk.fail_next(1, 400)
    worker = services.delivery_worker()
    worker.run_once()
    with services.engine.begin() as conn:
        assert len(listing.requeue(conn, clock())) == 1

    worker.run_once()

    [item] = outbox_rows(services)
    assert item.status == "sent" and item.attempts == 1


@pytest.mark.parametrize(("attempts", "low", "high"), [(1, 2.5, 5), (2, 5, 10), (12, 1800, 3600)])
def test_backoff_grows_exponentially_with_jitter_and_a_cap(config, attempts, low, high):
    delivery = config.delivery.model_copy(
        update={"backoff_base_seconds": 5, "backoff_cap_seconds": 3600}
    )
    delays = [delivery.backoff.delay(attempts) for _ in range(200)]
    assert all(low <= d <= high for d in delays)
    assert len({round(d, 6) for d in delays}) > 100  # jittered


def test_dry_run_helpdesk_stores_the_reply(services, tmp_path):
    client = create_app(services=services).test_client()
    client.post(
        "/webhooks/dryrun",
        json=generic_close("DRY-1"),
        headers={"X-Webhook-Token": "dry-token-123"},
    )

    services.delivery_worker().run_once()

    [line] = (tmp_path / "dry.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert record["dialog_id"] == "DRY-1"
    assert link_fields(record["link"])["entry.333"] == "DRY-1"


def test_a_claim_takes_at_most_its_limit(services, clock):
    for i in range(5):
        queue_generic(services, dialog_id=f"L-{i}")
    with services.engine.begin() as conn:
        first = store.claim_due(conn, "w1", clock(), clock() + timedelta(seconds=30), limit=2)
    with services.engine.begin() as conn:
        second = store.claim_due(conn, "w2", clock(), clock() + timedelta(seconds=30), limit=2)
    assert len(first) == 2 and len(second) == 2
    assert not {r.id for r in first} & {r.id for r in second}
    assert [r.status for r in outbox_rows(services)].count("pending") == 1


def test_marking_sent_records_a_found_agent_id_but_never_replaces_the_closes(services, clock):
    queue_generic(services, dialog_id="with-id")  # the close names agent 7
    queue_generic(services, dialog_id="without", agent={"name": None})
    with services.engine.begin() as conn:
        rows = store.claim_due(conn, "w", clock(), clock() + timedelta(seconds=30), limit=2)
        for row in rows:
            assert store.mark_sent(
                conn,
                row.id,
                "w",
                clock(),
                external_id="m",
                body="b",
                agent_id="found-9",
                agent_name="Kim",
                link="https://f/",
            )
    with services.engine.connect() as conn:
        found = dict(conn.execute(sa.select(surveys.c.dialog_id, surveys.c.agent_id)).all())
    assert found == {"with-id": "7", "without": "found-9"}


# What a vendor may answer that no database column takes as it is: over-long, NUL, a lone
# surrogate (JSON may escape one). PostgreSQL refuses the first two, neither driver encodes
# the third.
UNSTORABLE = {"long": "7" * 400, "nul": "m-\x001", "surrogate": "m-\ud800-1"}
FITTED = {"long": "7" * 191, "nul": "m-1", "surrogate": "m-\ufffd-1"}


@pytest.mark.parametrize("kind", sorted(UNSTORABLE))
@responses.activate
def test_a_message_id_the_database_would_refuse_is_fitted_and_the_reply_recorded_sent(
    services, kind
):
    # Unrecorded, a reply that went out would stay "sending" until its lease ran out and then
    # go out again: the vendor's answer must never make the outcome unstorable.
    services.config.helpdesks["generic"].reply.url = "https://desk.example.com/{dialog_id}"
    responses.post("https://desk.example.com/D-1001", json={"id": UNSTORABLE[kind]})
    queue_generic(services)

    assert services.delivery_worker().run_once() == 1

    assert len(responses.calls) == 1
    [item] = outbox_rows(services)
    assert (item.status, item.external_id) == ("sent", FITTED[kind])


@pytest.mark.parametrize("kind", sorted(UNSTORABLE))
def test_outcomes_store_what_a_vendor_sent_fitted_to_their_columns(services, clock, kind):
    bad = UNSTORABLE[kind]
    for i in range(3):
        queue_generic(services, dialog_id=f"F-{i}", agent={"name": None})
    with services.engine.begin() as conn:
        sent, retried, failed = store.claim_due(
            conn, "w", clock(), clock() + timedelta(seconds=30), limit=3
        )
        assert store.mark_sent(
            conn,
            sent.id,
            "w",
            clock(),
            external_id=bad,
            body=f"text {bad}",
            agent_id=bad,
            agent_name=bad * 2,
            agent_email=bad,
            link=f"https://f/{bad}",
            note=bad * 2,
        )
        later = clock() + timedelta(seconds=5)
        assert store.reschedule(
            conn, retried.id, "w", clock(), next_attempt_at=later, error=bad * 2, http_status=502
        )
        assert store.mark_failed(conn, failed.id, "w", clock(), error=bad * 2, http_status=400)
    rows = {r.id: r for r in outbox_rows(services)}
    assert rows[sent.id].external_id == FITTED[kind]
    for row in rows.values():
        for text in (row.last_error, row.body, row.external_id):
            assert text is None or ("\x00" not in text and "\ud800" not in text)
        assert row.last_error is None or len(row.last_error) <= 500
    with services.engine.connect() as conn:
        survey = conn.execute(sa.select(surveys).where(surveys.c.dialog_id == "F-0")).one()
    assert survey.status == "sent" and survey.agent_id == FITTED[kind]
    assert len(survey.agent_name) <= 255 and "\x00" not in survey.agent_name


@pytest.mark.parametrize(("linger", "claims"), [(0.5, [3]), (0, [1, 1, 1])])
def test_replies_queued_together_are_claimed_together(
    make_config, make_services, fake_helpdesk, monkeypatch, linger, claims
):
    services = make_services(
        make_config(delivery={"poll_seconds": 60, "claim_linger_seconds": linger})
    )
    services.clock = __import__("csat_hook.clock", fromlist=["utcnow"]).utcnow
    sizes: list[int] = []  # replies per claim statement that claimed any
    claim_due, claim_with_surveys = store.claim_due, store.claim_with_surveys

    def counting_due(*args: Any, **kwargs: Any) -> Any:  # SQLite
        rows = claim_due(*args, **kwargs)
        sizes.extend([len(rows)] if rows else [])
        return rows

    def counting_with_surveys(*args: Any, **kwargs: Any) -> Any:  # PostgreSQL
        rows, found, due = claim_with_surveys(*args, **kwargs)
        sizes.extend([len(rows)] if rows else [])
        return rows, found, due

    monkeypatch.setattr(store, "claim_due", counting_due)
    monkeypatch.setattr(store, "claim_with_surveys", counting_with_surveys)
    worker = services.delivery_worker()
    worker.start(threads=4)
    try:
        time.sleep(0.2)  # the dispatcher is waiting
        for n in range(3):
            queue_generic(services, f"D-{n}")
            if not linger:
                # Without a linger each wake-up claims at once: let it, before the next.
                deadline = time.monotonic() + 5
                while sum(sizes) <= n and time.monotonic() < deadline:
                    time.sleep(0.01)
        deadline = time.monotonic() + 10
        while len(fake_helpdesk.api_requests()) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    assert len(fake_helpdesk.api_requests()) == 3
    assert sizes == claims


def test_the_dispatcher_keeps_its_claim_connection_while_busy_and_gives_it_back_when_idle(
    make_config, make_services, fake_helpdesk, monkeypatch
):
    from csat_hook import clock as clocks
    from csat_hook.outbox import worker as worker_module

    # Two seconds of hold: claims moments apart stay well inside it even on a loaded machine.
    monkeypatch.setattr(worker_module, "HOLD_IDLE_SECONDS", 2.0)
    services = make_services(make_config(delivery={"poll_seconds": 30, "claim_linger_seconds": 0}))
    engine = services.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite claims in a transaction of their own")
    services.clock = clocks.utcnow
    events: list[str] = []  # the dispatcher thread's pool events

    def on(name: str) -> Any:
        def record(*_args: Any) -> None:
            if threading.current_thread().name == "delivery-dispatch":
                events.append(name)

        return record

    for name in ("checkout", "invalidate"):
        sa.event.listen(engine.pool, name, on(name))

    def deliver(dialogs: list[str]) -> None:
        for dialog in dialogs:
            before = len(fake_helpdesk.api_requests())
            queue_generic(services, dialog)
            deadline = time.monotonic() + 10
            while len(fake_helpdesk.api_requests()) == before and time.monotonic() < deadline:
                time.sleep(0.01)

    worker = services.delivery_worker()
    worker.start(threads=2)
    try:
        time.sleep(2.6)  # the start's first claim, then idle for longer than the hold
        started = len(events)
        deliver(["H-1", "H-2", "H-3"])  # one claim each, moments apart
        busy = events[started:]
        time.sleep(2.6)
        idle = events[started:]
        deliver(["H-4"])
        again = events[started:]
    finally:
        worker.stop()
    assert len(fake_helpdesk.api_requests()) == 4
    # The start's check of the queued alerts (a transaction of its own, its connection back
    # in the pool), then the first claim's, given back (closed) when idle.
    assert events[:started] == ["checkout", "checkout", "invalidate"]
    assert busy == ["checkout"]  # the first claim's checkout served the next claims too
    assert idle == ["checkout", "invalidate"]
    assert again == ["checkout", "invalidate", "checkout"]  # taken again when needed


def run_until_a_reply_goes(worker: Any, fake_helpdesk: Any) -> None:
    """Run ``worker`` on one thread until the fake helpdesk has a request (10 s at most)."""
    worker.start(threads=1)
    try:
        deadline = time.monotonic() + 10
        while not fake_helpdesk.api_requests() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()


@pytest.mark.parametrize(
    "outage",
    [
        sa.exc.OperationalError("SELECT 1", {}, ConnectionError("server closed")),
        # Every pooled connection held past the pool's timeout: SQLAlchemy's own error, no
        # driver's. It was logged as a check refused for good, and the claims went on: the
        # alerts queued under the earlier configuration went out unchecked.
        sa.exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached"),
    ],
    ids=["connection-lost", "pool-timeout"],
)
def test_nothing_is_claimed_before_the_start_checks_have_run_through_a_database_outage(
    services, fake_helpdesk, outage
):
    """The checks a worker runs before its first claim (the queued alerts against this
    configuration) that meet a database outage are run again after the backoff; meanwhile
    nothing is claimed."""
    queue_generic(services)
    worker = services.delivery_worker()
    ran: list[int] = []

    def flaky() -> None:
        ran.append(len(fake_helpdesk.api_requests()))  # what went out before this run
        if len(ran) == 1:
            raise outage

    worker.before_claims = (flaky, *worker.before_claims)
    run_until_a_reply_goes(worker, fake_helpdesk)
    assert ran == [0, 0]  # failed, then run again; the reply was claimed after both
    assert len(fake_helpdesk.api_requests()) == 1


def test_a_start_check_refused_by_the_database_for_good_does_not_stop_the_replies(
    services, fake_helpdesk, caplog
):
    """A start check the database refuses by its content, not its availability (a data or
    programming error: a bug, a value it will never take) is logged and the replies go on:
    retried after a backoff forever, it would stop every reply of the process."""
    queue_generic(services)
    worker = services.delivery_worker()
    ran: list[int] = []

    def refused() -> None:
        ran.append(1)
        raise sa.exc.DataError("UPDATE alerts", {}, ValueError("invalid input"))

    worker.before_claims = (refused, *worker.before_claims)
    run_until_a_reply_goes(worker, fake_helpdesk)
    assert ran == [1]
    assert len(fake_helpdesk.api_requests()) == 1
    assert "worker.before-claims-failed" in caplog.text


@pytest.mark.parametrize("threads", [1, 3])
def test_run_once_delivers_on_as_many_threads_as_asked(services, fake_helpdesk, threads):
    # `worker --once --threads N` ran one reply at a time whatever N said: a cron backlog
    # behind a slow vendor took N times as long as asked for.
    for number in range(3):
        queue_generic(services, f"D-{number}")
    fake_helpdesk.delay_next(3, 0.6)

    assert services.delivery_worker().run_once(threads=threads) == 3

    arrivals = sorted(r["at"] for r in fake_helpdesk.api_requests())
    spread = arrivals[-1] - arrivals[0]
    # All three in flight at once on three threads; one after the other on one.
    assert spread < 0.4 if threads == 3 else spread >= 1.2
    assert [row.status for row in outbox_rows(services)] == ["sent"] * 3
    assert len(fake_helpdesk.api_requests()) == 3


def test_a_short_retry_after_every_time_does_not_spend_the_attempts_at_once(
    make_config, make_services, fake_helpdesk, clock
):
    # A rate-limited vendor answering 429 "Retry-After: 1" to each attempt: the server's word
    # won over the backoff, all eight attempts went within ten seconds and the survey failed
    # for a limit that lasted a minute. A Retry-After is "not before": the backoff still
    # spreads the attempts.
    services = make_services(
        make_config(
            delivery={"backoff_base_seconds": 5, "backoff_cap_seconds": 3600, "max_attempts": 8}
        )
    )
    queue_generic(services)
    fake_helpdesk.fail_next(8, 429, retry_after=1)
    worker = services.delivery_worker()
    started = clock()

    drain(worker, clock)

    [item] = outbox_rows(services)
    backoff = services.config.delivery.backoff
    assert item.status == "failed" and item.attempts == 8
    assert clock() - started >= timedelta(seconds=backoff.least_total(7))


@pytest.mark.parametrize(
    "error",
    [
        # Every pooled connection busy for pool_timeout: no DBAPIError, and not a bug either.
        sa.exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached"),
        RuntimeError("a bug in claiming"),
    ],
)
def test_a_claim_that_fails_unexpectedly_does_not_stop_the_dispatcher(
    services, fake_helpdesk, monkeypatch, caplog, error
):
    # Only DBAPIError was caught: anything else ended the dispatcher thread while the
    # heartbeat went on saying the worker was alive, so no reply was claimed by it, nor
    # taken over by another worker, until the process restarted.
    queue_generic(services)
    failed: list[int] = []

    def failing_once(real: Any) -> Any:
        def claim(*args: Any, **kwargs: Any) -> Any:
            if not failed:
                failed.append(1)
                raise error
            return real(*args, **kwargs)

        return claim

    monkeypatch.setattr(store, "claim_due", failing_once(store.claim_due))
    monkeypatch.setattr(store, "claim_with_surveys", failing_once(store.claim_with_surveys))
    run_until_a_reply_goes(services.delivery_worker(), fake_helpdesk)

    assert failed == [1]
    assert len(fake_helpdesk.api_requests()) == 1
    assert "worker.claim-failed" in caplog.text or "worker.database-unavailable" in caplog.text


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_claim_still_waiting_when_the_worker_stops_is_delivered_not_left_claimed(
    make_config, make_services, fake_helpdesk
):
    """The dispatcher's claim waiting on a lock (a schema upgrade's, here one on ``surveys``,
    which the claim reads) when the worker is stopped: the stop gave up on it after its
    timeout, unregistered the worker and returned, and the claim, granted later, took the
    reply for a worker that no longer existed. Nothing delivered it: it stayed ``sending``
    until its lease ran out."""
    services = make_services(make_config(delivery={"poll_seconds": 60}))
    services.clock = __import__("csat_hook.clock", fromlist=["utcnow"]).utcnow
    queue_generic(services, "D-1")
    worker = services.delivery_worker()
    locker = services.engine.connect()
    stopping = threading.Thread(target=worker.stop, args=(0.5,))
    try:
        locker.execute(sa.text("LOCK TABLE surveys IN ACCESS EXCLUSIVE MODE"))
        worker.start(threads=2)  # its first claim waits on the lock
        time.sleep(0.5)
        stopping.start()
        time.sleep(1.5)  # past the stop's timeout for the dispatcher
    finally:
        locker.rollback()
        locker.close()
    stopping.join(20)
    assert not stopping.is_alive()
    deadline = time.monotonic() + 5
    while [row.status for row in outbox_rows(services)] != ["sent"]:
        assert time.monotonic() < deadline, outbox_rows(services)
        time.sleep(0.05)
    assert [r["path"] for r in fake_helpdesk.api_requests()] == ["/api/dialogs/D-1/messages"]
