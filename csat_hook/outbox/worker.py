"""The delivery worker: a queue loop that claims due replies and alert deliveries and runs
:func:`deliver_one`.

A dispatcher thread claims due replies (a lease in the database), as many as there are idle
delivery threads; each delivery thread runs :func:`~csat_hook.outbox.delivery.deliver_one`
and records its outcome. Retryable failures come back after the retry policy's delay (or the
vendor's ``Retry-After``); permanent ones, or running out of ``delivery.max_attempts``, mark
the reply failed with its reason. The dispatcher sleeps until woken by a newly queued reply,
enough free threads, the next due time, or ``delivery.poll_seconds`` at most.

A heartbeat thread proves the process alive: every ``delivery.heartbeat_seconds`` it updates
the worker's row in ``workers``, extends the leases of the replies it is sending (so a lease
never expires under a running request), and takes over the replies of workers that stopped
beating for ``delivery.worker_dead_after_seconds`` (or whose lease expired): back to pending,
due once whatever the old owner may have sent has settled, and looked up before being sent
again. Its fence: a reply whose claim this worker has not confirmed (claimed or renewed) for
``fence_seconds`` may already be taken over, and is not sent (:meth:`HttpClient.guarded`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from csat_hook.clock import Clock
from csat_hook.db.engine import statements
from csat_hook.db.group_commit import GroupCommit
from csat_hook.db.group_commit import run_each
from csat_hook.db.schema import ALERT
from csat_hook.outbox import store
from csat_hook.outbox.config import DeliveryConfig
from csat_hook.outbox.delivery import Delivery
from csat_hook.outbox.delivery import Failed
from csat_hook.outbox.delivery import Outcome
from csat_hook.outbox.delivery import Retry
from csat_hook.outbox.delivery import Sent
from csat_hook.outbox.delivery import deliver_one
from csat_hook.outbox.wake import Waker
from csat_hook.outbox.wake import pass_wake_on
from csat_hook.retry import Backoff

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Riding out a database outage: the dispatcher's claims, and writing an outcome (a reply that
# is out must be recorded, or it would be sent again after its lease).
DATABASE_BACKOFF = Backoff(base=0.5, cap=30.0)
OUTCOME_WRITE_ATTEMPTS = 6

Claimed = tuple[sa.Row[Any], sa.Row[Any] | None]


def new_worker_id() -> str:
    """``host:pid:random``: unique per process start, readable in ``claimed_by``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class DeliveryWorker:
    """Claims and delivers replies. ``run_once`` for tests and cron; ``start`` for threads."""

    def __init__(
        self,
        engine: sa.Engine,
        delivery: Delivery,
        config: DeliveryConfig,
        *,
        waker: Waker,
        clock: Clock,
        worker_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.delivery = delivery
        self.config = config
        self.waker = waker
        self.clock = clock
        self.worker_id = worker_id or new_worker_id()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool: ThreadPoolExecutor | None = None
        self._free = 0
        self._wake_at = 1
        self._free_lock = threading.Lock()
        self._beat_stop = threading.Event()
        self._beat_thread: threading.Thread | None = None
        # Replies in flight → when this worker last knew the claim was its own (claimed, or
        # its lease renewed by a heartbeat): what the fence judges.
        self._owned: dict[int, datetime] = {}
        self._owned_lock = threading.Lock()
        # Outcomes of concurrent deliveries are committed together (group commit).
        self._outcomes: GroupCommit[Callable[[sa.Connection], Any], Any] = GroupCommit(
            lambda: self.engine, run_each, name="delivery-outcomes"
        )

    # --- running ---------------------------------------------------------------------------

    def run_once(self, limit: int = 100) -> int:
        """Deliver what is due now, one claim at a time; return how many were processed.

        Takes over gone workers' replies first, as a heartbeat would (this mode has none: its
        claims are protected by their leases alone).
        """
        self.release_stale()
        done = 0
        while done < limit:
            claimed, _ = self._claim(1)
            if not claimed:
                break
            self._handle(*claimed[0])
            done += 1
        return done

    def start(self, threads: int | None = None) -> None:
        """Start the dispatcher and ``threads`` delivery threads (``delivery.concurrency``)."""
        count = threads or self.config.concurrency
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="delivery")
        self._free = count
        self._wake_at = max(1, count // 4)
        self._safe_beat()  # registered before the first claim
        self._beat_thread = threading.Thread(
            target=self._heartbeat_loop, name="delivery-heartbeat", daemon=True
        )
        self._beat_thread.start()
        thread = threading.Thread(target=self._dispatch, name="delivery-dispatch", daemon=True)
        thread.start()
        self._threads.append(thread)
        logger.info("worker.started", extra={"worker": self.worker_id, "count": count})

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; wait up to ``timeout`` for the dispatcher and for the replies in
        flight to finish (the heartbeat keeps their leases meanwhile), then unregister."""
        self._stop.set()
        self.waker.notify()
        for thread in self._threads:
            thread.join(timeout)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._beat_thread is not None:
            self._beat_stop.set()
            self._beat_thread.join(timeout)
            try:
                with self.engine.begin() as conn:
                    store.unregister(conn, self.worker_id)
            except DBAPIError as exc:
                # The row stays and looks dead soon: harmless, nothing of ours is in flight.
                logger.warning(
                    "worker.database-unavailable", extra={"error": type(exc.orig).__name__}
                )

    # --- heartbeat -------------------------------------------------------------------------

    def beat(self) -> None:
        """One heartbeat: this worker is alive, and its replies in flight stay leased."""
        now = self.clock()
        with self._owned_lock:
            in_flight = list(self._owned)
        lease = now + timedelta(seconds=self.config.lease_seconds)
        with self.engine.begin() as conn:
            renewed = store.heartbeat(
                conn, self.worker_id, now, lease_until=lease, in_flight=in_flight
            )
        with self._owned_lock:
            # A reply not renewed was taken over meanwhile: its time stays, its fence closes.
            for outbox_id in renewed & self._owned.keys():
                self._owned[outbox_id] = now

    def release_stale(self) -> int:
        """Take over the replies of workers that stopped beating or whose lease expired:
        pending again, due after ``delivery.takeover_wait_seconds``, outcome unknown."""
        now = self.clock()
        config = self.config
        dead_after = timedelta(seconds=config.worker_dead_after_seconds)
        with self.engine.begin() as conn:
            released = store.release_stale(
                conn,
                now,
                dead_before=now - dead_after,
                quiet_before=now + timedelta(seconds=config.lease_seconds) - dead_after,
                check_at=now + timedelta(seconds=config.takeover_wait_seconds),
            )
        if released:
            logger.warning(
                "worker.takeover",
                extra={"worker": self.worker_id, "count": len(released)},
            )
            self.waker.notify()  # the dispatcher's next due time may be sooner now
        return len(released)

    def _safe_beat(self) -> None:
        try:
            self.beat()
            self.release_stale()
        except DBAPIError as exc:
            # Until a beat succeeds again the fence closes on this worker's replies in
            # flight; others take them over if it stays silent.
            logger.warning("worker.heartbeat-failed", extra={"error": type(exc.orig).__name__})
        except Exception:
            logger.exception("worker.heartbeat-failed")

    def _heartbeat_loop(self) -> None:
        while not self._beat_stop.wait(self.config.heartbeat_seconds):
            self._safe_beat()

    def _fence(self, item: sa.Row[Any]) -> Callable[[], bool]:
        """Whether this worker may still send ``item`` (checked before each write request).

        With a heartbeat: while the claim was confirmed (claimed, or renewed by a beat that
        found it still ours) less than ``fence_seconds`` ago; others take it over only once
        it has not been for ``worker_dead_after_seconds``. Without one (``run_once``, whose
        claims only expire): while the claim's lease outlasts one more request.
        """
        if self._beat_thread is not None:
            fence = timedelta(seconds=self.config.fence_seconds)

            def confirmed() -> bool:
                with self._owned_lock:
                    since = self._owned.get(item.id)
                return since is not None and self.clock() - since <= fence

            return confirmed
        margin = timedelta(seconds=self.config.request_seconds)
        lease_until: datetime = item.lease_until

        def leased() -> bool:
            return self.clock() + margin < lease_until

        return leased

    def _dispatch(self) -> None:
        # One thread claims for the whole process, as many replies as there are idle delivery
        # threads, in one statement. Waking every delivery thread on each NOTIFY instead would
        # cost one claim query per thread per queued reply.
        poll = self.config.poll_seconds
        failures = 0
        while not self._stop.is_set():
            seen = self.waker.generation
            try:
                with self._free_lock:
                    free = self._free
                timeout = poll  # no free thread: threads that free up wake us
                if free:
                    claimed, due = self._claim(free)
                    failures = 0
                    self._submit(claimed)
                    if len(claimed) == free:
                        # More may be due and this worker is full: a producer woke only us,
                        # so pass the wake-up on to one other worker.
                        self._pass_wake_on()
                        continue
                    if due is not None:
                        seconds = (due - self.clock()).total_seconds()
                        timeout = max(0.01, min(poll, seconds))
            except DBAPIError as exc:
                failures += 1
                timeout = DATABASE_BACKOFF.ceiling(failures)
                logger.warning(
                    "worker.database-unavailable",
                    extra={"error": type(exc.orig).__name__, "delay": timeout},
                )
            self.waker.wait(seen, timeout)

    def _pass_wake_on(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return  # one process: its dispatcher is the only one
        with statements(self.engine) as conn:
            pass_wake_on(
                conn,
                self.worker_id,
                self.clock(),
                live_seconds=self.config.worker_dead_after_seconds,
            )

    def _claim(self, limit: int) -> tuple[list[Claimed], datetime | None]:
        """Claim up to ``limit`` due replies with their surveys (one claim statement).

        When fewer than ``limit`` were due, also return when the next one will be (None:
        nothing else waiting), so the caller knows how long it may sleep.
        """
        now = self.clock()
        lease = now + timedelta(seconds=self.config.lease_seconds)
        due = None
        # Each statement is atomic on its own (the claim is one UPDATE): no transaction
        # around them, so no BEGIN/COMMIT round trips on PostgreSQL.
        with statements(self.engine) as conn:
            rows = store.claim_due(conn, self.worker_id, now, lease, limit=limit)
            if len(rows) < limit:
                due = store.next_due_at(conn)
            surveys = store.surveys_by_id(
                conn, [row.survey_id for row in rows if row.survey_id is not None]
            )
            alerts = store.alerts_by_id(
                conn, [row.alert_id for row in rows if row.alert_id is not None]
            )
        with self._owned_lock:
            # Ours since the claim's time (taken before its transaction): the fence's start.
            self._owned.update((row.id, now) for row in rows)
        return [(row, _record_of(row, surveys, alerts)) for row in rows], due

    def _submit(self, claimed: list[Claimed]) -> None:
        assert self._pool is not None
        for row, survey in claimed:
            with self._free_lock:
                self._free -= 1
            self._pool.submit(self._handle_then_free, row, survey)

    def _handle_then_free(self, row: sa.Row[Any], survey: sa.Row[Any] | None) -> None:
        try:
            self._handle(row, survey)
        except DBAPIError as exc:
            # Recording the outcome failed; the lease expires and the reply is retried.
            logger.warning("worker.database-unavailable", extra={"error": type(exc.orig).__name__})
        except Exception:
            logger.exception("worker.unexpected-error", extra={"outbox_id": row.id})
        finally:
            with self._free_lock:
                self._free += 1
                wake = self._free == self._wake_at
            if wake:
                # The dispatcher stops claiming when no thread is free; it goes on once a few
                # are, so a backlog is claimed several replies per statement. While threads are
                # free it is waiting for work, not for a thread: no need to wake it.
                self.waker.notify()

    # --- one reply -------------------------------------------------------------------------

    def _handle(self, item: sa.Row[Any], survey: sa.Row[Any] | None) -> None:
        """Deliver one claimed reply and record its outcome."""
        try:
            outcome = deliver_one(self.delivery, item, survey, may_write=self._fence(item))
            self._record(item, outcome)
        finally:
            with self._owned_lock:
                self._owned.pop(item.id, None)

    def _record(self, item: sa.Row[Any], outcome: Outcome) -> None:
        extra = _log_fields(item)
        if isinstance(outcome, Sent):
            agent = outcome.agent

            def sent(conn: sa.Connection) -> bool:
                return store.mark_sent(
                    conn,
                    item.id,
                    self.worker_id,
                    self.clock(),
                    external_id=outcome.external_id,
                    body=outcome.body,
                    agent_id=agent.id if agent else None,
                    agent_name=agent.name if agent else None,
                    agent_email=agent.email if agent else None,
                    link=outcome.link,
                    note=outcome.note,
                )

            if not self._write_outcome(sent):
                logger.warning("delivery.lease-lost", extra=extra)
            logger.info("delivery.sent", extra=extra)
        elif isinstance(outcome, Retry):
            self._reschedule(item, outcome)
        else:
            self._fail(item, outcome)

    def _write_outcome(self, write: Callable[[sa.Connection], T]) -> T:
        # Ride out a short database outage (a restart, a failover) before giving up.
        for attempt in range(1, OUTCOME_WRITE_ATTEMPTS + 1):
            try:
                result: T = self._outcomes.submit(write)
                return result
            except DBAPIError as exc:
                if attempt == OUTCOME_WRITE_ATTEMPTS:
                    raise
                logger.warning(
                    "worker.record-retry",
                    extra={"error": type(exc.orig).__name__, "attempt": attempt},
                )
                self._stop.wait(DATABASE_BACKOFF.ceiling(attempt))
        raise AssertionError("unreachable")

    def _reschedule(self, item: sa.Row[Any], retry: Retry) -> None:
        delay = self.config.backoff.delay(item.attempts, retry.error.retry_after)
        unknown = retry.error.outcome_unknown
        if unknown:
            # Look no sooner than a vendor may still be saving the request we gave up on.
            delay = max(delay, self.config.settle_seconds)
        now = self.clock()
        self._write_outcome(
            lambda conn: store.reschedule(
                conn,
                item.id,
                self.worker_id,
                now,
                next_attempt_at=now + timedelta(seconds=delay),
                error=retry.message,
                http_status=retry.error.http_status,
                # This attempt started at its claim (the row's updated_at).
                uncertain_since=item.updated_at if unknown else None,
            )
        )
        # The dispatcher sleeps until the next due reply it knew of; this one may be sooner.
        self.waker.notify()
        logger.warning(
            "delivery.outcome-unknown" if unknown else "delivery.retry",
            extra={**_log_fields(item), "error": retry.message, "delay": round(delay, 3)},
        )

    def _fail(self, item: sa.Row[Any], failed: Failed) -> None:
        self._write_outcome(
            lambda conn: store.mark_failed(
                conn,
                item.id,
                self.worker_id,
                self.clock(),
                error=failed.reason,
                http_status=failed.http_status,
            )
        )
        logger.error(
            "delivery.failed",
            extra={**_log_fields(item), "error": failed.reason, "http_status": failed.http_status},
        )


def _log_fields(item: sa.Row[Any]) -> dict[str, Any]:
    """What a delivery's log lines name: the row, its helpdesk or destination, the attempt."""
    fields: dict[str, Any] = {"outbox_id": item.id, "attempt": item.attempts}
    if item.kind == ALERT:
        fields["destination"] = item.destination
    else:
        fields["helpdesk"] = item.helpdesk
    return fields


def _record_of(
    row: sa.Row[Any], surveys: dict[int, sa.Row[Any]], alerts: dict[int, sa.Row[Any]]
) -> sa.Row[Any] | None:
    """A claimed row's survey (a reply) or alert (an alert delivery), None when gone."""
    if row.kind == ALERT:
        return alerts.get(row.alert_id) if row.alert_id is not None else None
    return surveys.get(row.survey_id) if row.survey_id is not None else None
