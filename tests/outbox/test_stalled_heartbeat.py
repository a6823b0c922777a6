"""A worker whose heartbeat could not reach the database for a while (the database locked by
another process, a statement waiting on a lock) keeps its own replies: it never takes them
over as if from a dead worker, and a reply it posted is never sent again unchecked.

The tester's sequence (SQLite, the only worker, the dry-run helpdesk, the database held locked
for 15 s): the heartbeat and the dispatcher took their times before waiting for the lock and
wrote them once they got it, so the worker's own beat and its fresh claim looked 15 s old;
the same heartbeat then took its own reply over as a dead worker's, the dry run (not guarded
by the fence) wrote it, recording it found the claim gone, and after the takeover wait the
reply was written again without a check.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.app import create_app
from csat_hook.db.schema import surveys
from csat_hook.db.schema import workers
from csat_hook.outbox import listing
from csat_hook.outbox import store
from csat_hook.outbox.delivery import Retry
from csat_hook.outbox.delivery import Sent
from csat_hook.outbox.delivery import deliver_one
from tests.helpers import generic_close
from tests.outbox.test_worker import outbox_rows
from tests.outbox.test_worker import queue_generic

DRY_AUTH = {"X-Webhook-Token": "dry-token-123"}


def queue_dry_run(services: Any, dialog_id: str = "DRY-1") -> None:
    client = create_app(services=services).test_client()
    response = client.post("/webhooks/dryrun", json=generic_close(dialog_id), headers=DRY_AUTH)
    assert response.json["status"] == "queued"


def written(tmp_path: Path) -> list[dict[str, Any]]:
    """The replies the dry run wrote (its output file, one JSON line each)."""
    path = tmp_path / "dry.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def stalled_send(services: Any, clock: Any) -> tuple[Any, Any, Any, Any]:
    """A reply to a helpdesk without a look-up, sent by a worker whose heartbeat could not
    reach the database while its request ran, and the worker that will take it over once
    the first is taken for dead: ``(stalled, survivor, row, outcome)``."""
    queue_generic(services)
    stalled = services.delivery_worker(worker_id="stalled")
    stalled.beat()
    [(row, survey)], _ = stalled._claim(1)
    outcome = deliver_one(stalled.delivery, row, survey, may_write=stalled._fence(row))
    clock.advance(services.config.delivery.worker_dead_after_seconds + 1)
    return stalled, services.delivery_worker(worker_id="survivor"), row, outcome


def test_a_beat_written_late_never_makes_a_worker_take_over_its_own_reply(
    services, clock, tmp_path, monkeypatch
):
    # The beat's statement waited (on PostgreSQL a lock on the row, on SQLite the database)
    # for longer than worker_dead_after_seconds: it writes a beat and leases that look as old
    # as the wait was long. The same heartbeat then runs release_stale.
    delivery = services.config.delivery
    queue_dry_run(services)
    only = services.delivery_worker(worker_id="only")
    only.beat()
    [(row, survey)], _ = only._claim(1)
    beat = store.heartbeat

    def waited(*args: Any, **kwargs: Any) -> Any:
        clock.advance(delivery.worker_dead_after_seconds + 5)
        return beat(*args, **kwargs)

    monkeypatch.setattr(store, "heartbeat", waited)
    only.beat()
    monkeypatch.setattr(store, "heartbeat", beat)

    assert only.release_stale() == 0  # it is alive: it is the one asking
    [item] = outbox_rows(services)
    assert (item.status, item.claimed_by) == ("sending", "only")

    only._handle(row, survey)
    clock.advance(delivery.takeover_wait_seconds + 1)
    only.run_once()

    assert len(written(tmp_path)) == 1
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.last_error is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_database_locked_past_dead_after_sends_the_only_workers_reply_once(
    services, clock, tmp_path
):
    # The tester's reproduction: another process holds the SQLite database (BEGIN EXCLUSIVE)
    # while the dispatcher claims and the heartbeat beats; the clock moves on meanwhile.
    delivery = services.config.delivery
    queue_dry_run(services)
    only = services.delivery_worker(worker_id="only")
    only.beat()
    path = sa.make_url(services.config.database.url).database
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    claimed: list[Any] = []
    claim = threading.Thread(target=lambda: claimed.extend(only._claim(1)[0]))
    heartbeat = threading.Thread(target=only.heartbeat._safe_beat)  # a beat, then takeovers
    try:
        claim.start()
        heartbeat.start()
        time.sleep(0.3)  # both are waiting for the database
        clock.advance(delivery.worker_dead_after_seconds + 5)
    finally:
        holder.execute("COMMIT")
        holder.close()
    claim.join(10)
    heartbeat.join(10)
    only.heartbeat.release_stale()  # the next beat's takeovers, had the beat run first

    # The beat and the claim are timed when they got the database, not before their wait.
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(workers.c.beat_at)).scalar_one() == clock()
    [item] = outbox_rows(services)
    assert (item.status, item.claimed_by) == ("sending", "only")
    assert item.lease_until == clock() + timedelta(seconds=delivery.lease_seconds)
    [(row, survey)] = claimed
    only._handle(row, survey)
    clock.advance(delivery.takeover_wait_seconds + 1)
    only.run_once()

    assert len(written(tmp_path)) == 1
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.attempts == 1


def test_a_reply_its_former_owner_posted_is_recorded_sent_not_sent_again(
    services, fake_helpdesk, clock, caplog
):
    # Its heartbeat could not reach the database while its request ran: another worker took
    # the reply over (rightly: its fence had closed). The request had gone out before; the
    # answer comes back, and the former owner knows the reply is out.
    delivery = services.config.delivery
    stalled, survivor, row, outcome = stalled_send(services, clock)
    assert isinstance(outcome, Sent)
    assert survivor.release_stale() == 1

    with caplog.at_level(logging.INFO):
        stalled.recorder.record(row, outcome)
    clock.advance(delivery.takeover_wait_seconds + 1)
    assert survivor.run_once() == 0

    assert len(fake_helpdesk.api_requests()) == 1
    [item] = outbox_rows(services)
    assert (item.status, item.claimed_by, item.external_id) == ("sent", "stalled", "1")
    assert "after its claim was taken over" in item.last_error
    assert "delivery.sent-after-takeover" in caplog.messages
    assert "delivery.lease-lost" not in caplog.messages


def test_a_late_outcome_leaves_a_reply_another_worker_holds_alone(services, fake_helpdesk, clock):
    delivery = services.config.delivery
    stalled, survivor, row, outcome = stalled_send(services, clock)
    survivor.beat()
    assert survivor.release_stale() == 1
    clock.advance(delivery.takeover_wait_seconds + 1)
    assert len(survivor._claim(1)[0]) == 1  # the new owner is settling it right now

    stalled.recorder.record(row, outcome)

    [item] = outbox_rows(services)
    assert (item.status, item.claimed_by) == ("sending", "survivor")


def test_a_dry_run_reply_is_not_written_once_its_fence_closed(services, tmp_path):
    queue_dry_run(services)
    worker = services.delivery_worker()
    [(row, survey)], _ = worker._claim(1)

    outcome = deliver_one(worker.delivery, row, survey, may_write=lambda: False)

    assert isinstance(outcome, Retry) and not outcome.error.outcome_unknown
    assert "not sent" in outcome.message
    assert written(tmp_path) == []


def test_a_dry_run_reply_written_by_a_worker_that_died_is_found_not_written_again(
    services, clock, tmp_path, caplog
):
    delivery = services.config.delivery
    queue_dry_run(services)
    gone = services.delivery_worker(worker_id="gone")
    gone.beat()
    [(row, survey)], _ = gone._claim(1)
    # It wrote the reply, then died before recording it.
    assert isinstance(deliver_one(gone.delivery, row, survey), Sent)
    survivor = services.delivery_worker(worker_id="survivor")
    clock.advance(delivery.worker_dead_after_seconds + 1)
    assert survivor.release_stale() == 1
    clock.advance(delivery.takeover_wait_seconds)

    with caplog.at_level(logging.INFO):
        assert survivor.run_once() == 1

    assert len(written(tmp_path)) == 1
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.last_error.startswith("found in the dialog")
    assert item.external_id == f"dryrun-csat-hook-{item.id}"
    assert "delivery.resend-unchecked" not in caplog.messages


def test_a_reply_its_former_owner_posted_is_recorded_sent_after_the_takeover_failed_it(
    make_config, make_services, fake_helpdesk, clock, caplog
):
    # Its last attempt: the survivor's settle claim has no look-up to ask and fails the
    # reply ("outcome unknown") before the former owner's answer is written. The answer says
    # it went out: listed failed, `outbox retry` posted it a second time.
    services = make_services(make_config(delivery={"max_attempts": 1}))
    delivery = services.config.delivery
    stalled, survivor, row, outcome = stalled_send(services, clock)
    assert isinstance(outcome, Sent)
    assert survivor.release_stale() == 1
    clock.advance(delivery.takeover_wait_seconds + 1)
    assert survivor.run_once() == 1
    [item] = outbox_rows(services)
    assert item.status == "failed" and "outcome is unknown" in item.last_error

    with caplog.at_level(logging.INFO):
        stalled.recorder.record(row, outcome)

    [item] = outbox_rows(services)
    assert (item.status, item.claimed_by, item.external_id) == ("sent", "stalled", "1")
    assert "after its claim was taken over" in item.last_error
    assert "delivery.sent-after-takeover" in caplog.messages
    with services.engine.begin() as conn:
        assert listing.requeue(conn, clock(), ids=[item.id]) == []
        assert conn.execute(sa.select(surveys.c.status)).scalar_one() == "sent"
    assert len(fake_helpdesk.api_requests()) == 1
