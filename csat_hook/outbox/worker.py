"""The delivery worker: a queue loop that claims due replies and alert deliveries and runs
:func:`deliver_one`.

A dispatcher thread claims due replies (a lease in the database), as many as there are idle
delivery threads; each delivery thread runs :func:`~csat_hook.outbox.delivery.deliver_one`
and records its outcome (:mod:`csat_hook.outbox.recorder`). Retryable failures come back after
the retry policy's delay (or the vendor's ``Retry-After``); permanent ones, or running out of
``delivery.max_attempts``, mark the reply failed with its reason. The dispatcher sleeps until
woken by a newly queued reply, enough free threads, the next due time, or
``delivery.poll_seconds`` at most; once woken, it lets ``delivery.claim_linger_seconds`` pass
so that replies queued together are claimed together.

A heartbeat thread (:mod:`csat_hook.outbox.heartbeat`) proves the process alive, keeps the
leases of the replies in flight, takes over the replies of gone workers, closes the fence
on a reply whose claim this worker can no longer be sure of, and runs the process's chores
(pruning old clicks).

Before its first claim a worker runs its ``before_claims`` once (the composition root's: the
alerts not sent yet checked against the configuration this process started with), so that
nothing queued under an earlier configuration goes out under it; the dispatcher retries them
through a database outage as it retries its claims.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError

from csat_hook.clock import Clock
from csat_hook.db.engine import HOLD_IDLE_SECONDS
from csat_hook.db.engine import HeldConnection
from csat_hook.db.engine import statements
from csat_hook.db.schema import ALERT
from csat_hook.outbox import store
from csat_hook.outbox.config import DeliveryConfig
from csat_hook.outbox.delivery import deliver_one
from csat_hook.outbox.heartbeat import Heartbeat
from csat_hook.outbox.recorder import DATABASE_BACKOFF
from csat_hook.outbox.recorder import OutcomeRecorder
from csat_hook.outbox.results import Delivery
from csat_hook.outbox.wake import Waker

logger = logging.getLogger(__name__)

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
        chores: Sequence[Callable[[], object]] = (),
        before_claims: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.engine = engine
        self.before_claims = tuple(before_claims)
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
        self.heartbeat = Heartbeat(
            engine,
            config,
            waker=waker,
            clock=clock,
            worker_id=self.worker_id,
            chores=chores,
            exchanges={
                name: destination.exchange_seconds
                for name, destination in delivery.destinations.items()
                if destination.exchange_seconds is not None
            },
        )
        self.recorder = OutcomeRecorder(
            engine, config, waker=waker, clock=clock, worker_id=self.worker_id
        )

    @property
    def _owned(self) -> dict[int, datetime]:
        """Replies in flight → when this worker last knew the claim was its own."""
        return self.heartbeat.owned

    # --- running ---------------------------------------------------------------------------

    def run_once(
        self, limit: int = 100, threads: int = 1, stop: threading.Event | None = None
    ) -> int:
        """Deliver what is due now, up to ``limit`` replies, each of ``threads`` delivery
        threads claiming one at a time; return how many were processed. Once ``stop`` is set
        (``worker --once`` sets it on SIGINT/SIGTERM), no thread claims another reply: those
        being sent are finished and recorded, the rest stay due for the next run.

        Runs ``before_claims`` first, then takes over gone workers' replies and runs the chores,
        as a heartbeat would (this mode has none: its claims are protected by their leases
        alone). A failure of ``before_claims`` is raised: nothing is claimed. A failure while
        delivering (the database gone) is raised once every thread has stopped.
        """
        for step in self.before_claims:
            step()
        self.release_stale()
        self.heartbeat.run_chores()
        slots = _Slots(limit)

        def deliver() -> int:
            done = 0
            while not (stop is not None and stop.is_set()) and slots.take():
                claimed, _ = self._claim(1)
                if not claimed:
                    slots.give_back()
                    break
                self._handle(*claimed[0])
                done += 1
            return done

        if threads <= 1:
            return deliver()
        with ThreadPoolExecutor(threads, thread_name_prefix="delivery") as pool:
            running = [pool.submit(deliver) for _ in range(min(threads, limit))]
            return sum(future.result() for future in running)

    def start(
        self, threads: int | None = None, *, hearing: Callable[[], bool] | None = None
    ) -> None:
        """Start the dispatcher and ``threads`` delivery threads (``delivery.concurrency``).

        ``hearing``: whether the NOTIFY listener that wakes this worker hears now (see
        :class:`~csat_hook.outbox.heartbeat.Heartbeat`); without one, it is never the worker
        a producer in another process picks to wake (its waker and its poll still reach it)."""
        count = threads or self.config.concurrency
        self.heartbeat.hearing = hearing
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="delivery")
        self._free = count
        self._wake_at = max(1, count // 4)
        self.heartbeat.start()  # registered before the first claim
        thread = threading.Thread(target=self._dispatch, name="delivery-dispatch", daemon=True)
        thread.start()
        self._threads.append(thread)
        logger.info("worker.started", extra={"worker": self.worker_id, "count": count})

    def hears_notifies(self) -> bool:
        """Whether this worker was started with a NOTIFY listener (:meth:`start`), is not
        stopped, and the listener hears now: then a producer's NOTIFY may choose it, and a
        wake-up of its own for the same reply is a second one."""
        hearing = self.heartbeat.hearing
        return not self._stop.is_set() and hearing is not None and hearing()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; wait for the dispatcher (``timeout``, then, with a warning, for as
        long as a claim it has sent takes), then for the replies in flight to finish, those
        it claimed but no thread had started yet included (the heartbeat keeps their leases
        meanwhile), then unregister."""
        self._stop.set()
        self.waker.notify()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                # Its claim waits on the database (a schema upgrade's lock, an outage). Left
                # behind, a claim granted after this worker unregistered took replies that
                # nobody sent until their lease ran out: waited for, bounded by the
                # statement timeout and the keepalives. Killed meanwhile (a platform's grace
                # period), the worker is still registered: its claims are taken over.
                logger.warning("worker.stop-waits-for-claim", extra={"worker": self.worker_id})
                thread.join()
        if self._pool is not None:
            # Every reply handed to the pool is claimed: it is delivered too. Cancelled in
            # the queue (one claimed as the stop came, no thread free to take it yet), it
            # stayed ``sending`` under this worker, unregistered below, until its lease ran
            # out and another worker took it over to look it up.
            self._pool.shutdown(wait=True)
        try:
            self.heartbeat.stop(timeout)
        finally:
            # The outcomes of the replies just sent are written whatever the heartbeat met:
            # one not written leaves its reply to be taken over and looked up, or sent again.
            self.recorder.close()

    # --- heartbeat -------------------------------------------------------------------------

    def beat(self) -> None:
        """One heartbeat: this worker is alive, and its replies in flight stay leased."""
        self.heartbeat.beat()

    def release_stale(self) -> int:
        """Take over the replies of workers that stopped beating or whose lease expired:
        pending again, due after ``delivery.takeover_wait_seconds``, outcome unknown."""
        return self.heartbeat.release_stale()

    def _fence(self, item: sa.Row[Any]) -> Callable[[], bool]:
        """Whether this worker may still send ``item`` (see :meth:`Heartbeat.fence`)."""
        return self.heartbeat.fence(item)

    # --- claiming --------------------------------------------------------------------------

    def _dispatch(self) -> None:
        # One thread claims for the whole process, as many replies as there are idle delivery
        # threads, in one statement. Waking every delivery thread on each NOTIFY instead would
        # cost one claim query per thread per queued reply.
        held = HeldConnection()  # this thread's claim connection (PostgreSQL)
        try:
            self._dispatch_until_stopped(held)
        finally:
            held.release()

    def _dispatch_until_stopped(self, held: HeldConnection) -> None:
        poll = self.config.poll_seconds
        linger = self.config.claim_linger_seconds
        failures = 0
        ready = False  # before_claims have run
        while not self._stop.is_set():
            seen = self.waker.generation
            try:
                if not ready:
                    self._before_claims()
                    ready = True
                with self._free_lock:
                    free = self._free
                timeout = poll  # no free thread: threads that free up wake us
                if free:
                    claimed, due = self._claim(free, held)
                    failures = 0
                    self._submit(claimed)
                    if len(claimed) == free:
                        # Full, and more may be due: claim again as threads free up. (On
                        # PostgreSQL the claim itself woke one other worker if more were.)
                        continue
                    if due is not None:
                        seconds = (due - self.clock()).total_seconds()
                        timeout = max(0.01, min(poll, seconds))
            except (DBAPIError, sa.exc.TimeoutError) as exc:
                # Unreachable, or every pooled connection busy past the pool's timeout.
                failures += 1
                timeout = DATABASE_BACKOFF.ceiling(failures)
                cause = exc.orig if isinstance(exc, DBAPIError) else exc
                logger.warning(
                    "worker.database-unavailable",
                    extra={"error": type(cause).__name__, "delay": timeout},
                )
            except Exception:
                # A bug, or what no one foresaw: logged and claimed again after the backoff.
                # It ended this thread while the heartbeat went on saying the worker was
                # alive: nothing was claimed here, nor taken over elsewhere, until a restart.
                failures += 1
                timeout = DATABASE_BACKOFF.ceiling(failures)
                logger.exception("worker.claim-failed", extra={"delay": timeout})
            if self._wait(seen, timeout, held) and linger:
                # Woken (a reply queued, threads freed): let the replies queued right after
                # it arrive too, and claim them all in one statement.
                self._stop.wait(linger)

    def _before_claims(self) -> None:
        """Run ``before_claims``. The database unavailable (a connection lost or refused, a
        statement cancelled, no pooled connection free within the pool's timeout) is the
        caller's: it backs off and runs them again before any claim. Any other error, the
        database's refusal of what was asked included (a data or programming error), is
        logged and claims go on: run again, it would fail again, and a bug there must not
        stop every reply."""
        for step in self.before_claims:
            try:
                step()
            except (OperationalError, InterfaceError, sa.exc.TimeoutError):
                raise
            except Exception:
                logger.exception("worker.before-claims-failed")

    def _wait(self, seen: int, timeout: float, held: HeldConnection) -> bool:
        # Keep the claim's connection through short waits (the next wake-up is usually
        # milliseconds away under load); give it back after an idle spell.
        if timeout <= HOLD_IDLE_SECONDS:
            return self.waker.wait(seen, timeout)
        if self.waker.wait(seen, HOLD_IDLE_SECONDS):
            return True
        held.release()
        return self.waker.wait(seen, timeout - HOLD_IDLE_SECONDS)

    def _claim(
        self, limit: int, held: HeldConnection | None = None
    ) -> tuple[list[Claimed], datetime | None]:
        """Claim up to ``limit`` due replies with their surveys (one claim statement), on
        PostgreSQL on the caller's ``held`` connection when given (the dispatcher's).

        When fewer than ``limit`` were due, also return when the next one will be (None:
        nothing else waiting), so the caller knows how long it may sleep.
        """
        postgres = self.engine.dialect.name == "postgresql"

        def claim(conn: sa.Connection) -> tuple[Any, ...]:
            # Timed once the connection has the database (SQLite: BEGIN IMMEDIATE waits while
            # another process holds it): the claim's time is its lease's start and its fence's,
            # and one taken before that wait would close the fence on a fresh claim.
            now = self.clock()
            lease = now + timedelta(seconds=self.config.lease_seconds)
            if postgres:  # claim, surveys and next due: one statement
                rows, surveys, due = store.claim_with_surveys(
                    conn,
                    self.worker_id,
                    now,
                    lease,
                    limit=limit,
                    live_seconds=self.config.worker_dead_after_seconds,
                )
            else:
                rows = store.claim_due(conn, self.worker_id, now, lease, limit=limit)
                due = store.next_due_at(conn) if len(rows) < limit else None
                surveys = store.surveys_by_id(
                    conn, [row.survey_id for row in rows if row.survey_id is not None]
                )
            alerts = store.alerts_by_id(
                conn, [row.alert_id for row in rows if row.alert_id is not None]
            )
            return now, rows, surveys, due, alerts

        # Each statement is atomic on its own (the claim is one UPDATE): no transaction
        # around them, so no BEGIN/COMMIT round trips on PostgreSQL, on the dispatcher's held
        # connection (a checkout per claim cost as much CPU as the claim).
        if postgres and held is not None:
            # Not retried here: the claim commits as it runs, so a retry after a later
            # statement failed would claim a second batch. The dispatcher backs off and claims
            # again; the pool was invalidated meanwhile, so on a fresh connection.
            now, rows, surveys, due, alerts = held.run(self.engine, claim, retry=False)
        else:
            with statements(self.engine) as conn:
                now, rows, surveys, due, alerts = claim(conn)
        # Ours since the claim's time (taken before its statement): the fence's start.
        self.heartbeat.hold((row.id for row in rows), now)
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
            self.recorder.record(item, outcome)
        finally:
            self.heartbeat.let_go(item.id)


class _Slots:
    """How many more replies a ``run_once`` may claim, shared by its threads."""

    def __init__(self, limit: int) -> None:
        self._left = limit
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._left += 1


def _record_of(
    row: sa.Row[Any], surveys: dict[int, Any], alerts: dict[int, sa.Row[Any]]
) -> sa.Row[Any] | None:
    """A claimed row's survey (a reply) or alert (an alert delivery), None when gone."""
    if row.kind == ALERT:
        return alerts.get(row.alert_id) if row.alert_id is not None else None
    return surveys.get(row.survey_id) if row.survey_id is not None else None
