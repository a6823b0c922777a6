"""Overlapping syncs are serialised by a lease row (compare-and-set), never run together."""

from __future__ import annotations

import threading
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

import csat_hook.clock
from csat_hook.db.schema import answers
from csat_hook.errors import SyncLockedError
from csat_hook.sync import lock as sync_lock
from csat_hook.sync.runner import SyncRunner
from tests.helpers import HostAhead
from tests.sync.conftest import EN_HEADER

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def seed(kit) -> None:
    kit.responses(
        [EN_HEADER]
        + [
            [T0 + timedelta(hours=i), 5, "", "", "", kit.survey(f"T-{i}", "7", "Anna")]
            for i in range(5)
        ]
    )


def run_in_thread(kit, config):
    result = {}

    def target() -> None:
        result["summary"] = kit.runner(config).run()

    thread = threading.Thread(target=target)
    thread.start()
    return thread, result


def wait_until_reading(kit) -> None:
    deadline = time.monotonic() + 10
    while not kit.fake.api_requests("sheets_read") and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_second_run_during_the_first_reports_locked(kit):
    seed(kit)
    kit.fake.latency = 0.5  # the first run is slow at Google
    thread, first = run_in_thread(kit, kit.config())
    wait_until_reading(kit)
    second = kit.runner().run()
    thread.join()

    assert second.status == "locked" and "another sync is running" in second.error
    assert second.requests == {
        "sheets_read": 0,
        "sheets_write": 0,
        "forms_read": 0,
        "token": 0,
        "retries": 0,
    }
    assert first["summary"].status == "ok" and first["summary"].new == 5
    assert len(kit.rows(answers)) == 5


def test_a_second_run_that_may_wait_runs_after_the_first(kit):
    seed(kit)
    kit.fake.latency = 0.3
    thread, first = run_in_thread(kit, kit.config())
    wait_until_reading(kit)
    waiting = kit.config(sync={"lock_wait_seconds": 30})
    second = kit.runner(waiting)
    second.sleep = time.sleep  # really wait for the first run to let go
    summary = second.run()
    thread.join()

    assert first["summary"].status == "ok" and first["summary"].new == 5
    assert summary.status == "ok" and (summary.new, summary.unchanged) == (0, 5)


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(kit):
    now = datetime.now(UTC)
    with kit.engine.begin() as conn:
        assert sync_lock.acquire_lock(conn, "sync", "a", now, now + timedelta(seconds=60))
        assert not sync_lock.acquire_lock(conn, "sync", "b", now, now + timedelta(seconds=60))
        assert sync_lock.acquire_lock(
            conn, "sync", "a", now, now + timedelta(seconds=90)
        )  # re-entrant
        later = now + timedelta(seconds=120)
        assert sync_lock.acquire_lock(conn, "sync", "b", later, later + timedelta(seconds=60))
        assert not sync_lock.renew_lock(conn, "sync", "a", later + timedelta(seconds=60))
        sync_lock.release_lock(conn, "sync", "b")
        assert sync_lock.acquire_lock(conn, "sync", "c", later, later + timedelta(seconds=60))


def test_racing_acquirers_get_exactly_one_lease(kit):
    barrier = threading.Barrier(6)
    wins = []
    now = datetime.now(UTC)

    def contender(name: str) -> None:
        barrier.wait()
        with kit.engine.begin() as conn:
            if sync_lock.acquire_lock(conn, "sync", name, now, now + timedelta(seconds=60)):
                wins.append(name)

    threads = [threading.Thread(target=contender, args=(f"h{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_a_run_whose_lease_was_taken_over_during_the_ingest_commits_nothing(kit):
    """The lease expired under a long ingest and another run took over: the first run must
    notice before its transaction commits, not after (two runs' batches both stored)."""
    seed(kit)
    runner = kit.runner()
    renew = runner.lock.renew
    renewals: list[str | None] = []

    def renew_then_lose(holder: str | None) -> None:
        renew(holder)
        renewals.append(holder)
        if len(renewals) == 1:  # just after the read: the ingest outlasts the lease
            later = kit.now + timedelta(seconds=10_000)
            with kit.engine.begin() as conn:
                assert sync_lock.acquire_lock(
                    conn, "sync", "other", later, later + timedelta(seconds=900)
                )

    runner.lock.renew = renew_then_lose  # type: ignore[method-assign]
    summary = runner.run()

    assert summary.status == "failed" and "lost the sync lock" in summary.error
    assert kit.rows(answers) == []
    with kit.engine.connect() as conn:
        state = sync_lock.lock_state(conn, "sync")
    assert state is not None and state.holder == "other"


def test_a_live_run_keeps_its_lease_while_its_write_outlasts_it(kit):
    """The lease was renewed only between phases: a write to the outputs that outlasted
    ``sync.lock_lease_seconds`` (Google slow, its retries) let a second run in, and both
    wrote the report at once. A live run renews it in the background."""
    seed(kit)
    runner = kit.runner()
    runner.lock.heartbeat_seconds = 0.02
    write = runner._write_outputs
    second = {}

    def slow_write(*args, **kwargs):
        kit.now += timedelta(seconds=10_000)  # far past the lease taken at the start
        time.sleep(0.3)  # the write goes on; the run is alive
        second["summary"] = kit.runner().run()
        return write(*args, **kwargs)

    runner._write_outputs = slow_write  # type: ignore[method-assign]
    first = runner.run()

    assert first.status == "ok" and first.new == 5
    assert second["summary"].status == "locked"


def test_a_renewal_that_fails_leaves_the_heartbeat_beating(kit, caplog):
    """A renewal that raised anything but the lease's own errors (no pooled connection in
    time: SQLAlchemy's TimeoutError, not a driver's) ended the heartbeat's thread, and the
    lease expired under the live run after all."""
    import sqlalchemy as sa

    seed(kit)
    runner = kit.runner()
    lock = runner.lock
    lock.heartbeat_seconds = 0.02
    renew = lock.renew
    calls: list[str] = []

    def flaky(holder: str) -> None:
        calls.append(holder)
        if len(calls) == 1:
            raise sa.exc.TimeoutError("QueuePool limit reached")
        renew(holder)

    lock.renew = flaky  # type: ignore[method-assign]
    holder = "h-1"
    lock.acquire(holder)
    with lock.kept(holder):
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    lock.release(holder)
    assert len(calls) >= 3
    assert "sync.lease-renewal-failed" in caplog.text


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_sync_host_ahead_does_not_take_over_a_live_runs_lease(kit, monkeypatch):
    # A sync on a host whose clock ran ahead by more than the lease read a live run's lease,
    # written by that run's host clock, as expired: it took the lock and ran alongside (two
    # runs writing the report, an erasure's lease taken from under it). On PostgreSQL a sync's
    # lease is the database's time, as the outbox's.
    config = kit.config()
    SyncRunner(config, kit.engine).lock.acquire("host-a")  # a run on a host with the right time

    monkeypatch.setattr(csat_hook.clock, "datetime", HostAhead)
    other = SyncRunner(config, kit.engine)  # the same run started on the host ahead

    with pytest.raises(SyncLockedError):
        other.lock.acquire("host-b")
