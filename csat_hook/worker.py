"""The delivery worker: drains the outbox into the helpdesks' reply APIs.

A dispatcher thread claims due replies (a lease in the database), as many as there are idle
delivery threads; each delivery thread renders a reply's link and text, posts it and records
the outcome. Retryable failures come back after capped exponential backoff
with jitter (or the vendor's ``Retry-After``); permanent ones, or running out of
``delivery.max_attempts``, mark the reply failed with its reason. The dispatcher sleeps until
woken by a newly queued reply, a free thread, the next due time, or ``delivery.poll_seconds``
at most.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from csat_hook import store
from csat_hook.batching import TransactionBatcher
from csat_hook.config import DeliveryConfig
from csat_hook.errors import DeliveryError
from csat_hook.links import LinkValues
from csat_hook.links import build_link
from csat_hook.links import reply_text
from csat_hook.records import Person
from csat_hook.records import Reply
from csat_hook.services import Services

logger = logging.getLogger(__name__)


def backoff_delay(attempts: int, delivery: DeliveryConfig,
                  retry_after: float | None = None) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones.

    Exponential from ``backoff_base_seconds``, capped at ``backoff_cap_seconds``, with equal
    jitter (half fixed, half random) so retries from many replies spread out. A vendor's
    ``Retry-After`` wins when given (up to ``max_retry_after_seconds``).
    """
    ceiling = min(delivery.backoff_cap_seconds,
                  delivery.backoff_base_seconds * 2 ** max(0, attempts - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = min(retry_after, delivery.max_retry_after_seconds) * random.uniform(1.0, 1.1)
    return delay


def survey_link(services: Services, survey: Any, agent: Person) -> str:
    """The link for a stored survey, with the agent as resolved at send time."""
    values = LinkValues(
        agent_name=agent.display,
        agent_id=agent.id or "",
        agent_email=agent.email or "",
        ticket=survey.dialog_id,
        helpdesk=survey.helpdesk,
        team=survey.team or "",
        token=survey.token or "",
    )
    return build_link(services.config.survey.form, values)


class DeliveryWorker:
    """Claims and delivers replies. ``run_once`` for tests and cron; ``start`` for threads."""

    def __init__(self, services: Services, *, worker_id: str | None = None) -> None:
        self.services = services
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Outcomes of concurrent deliveries are committed together (group commit).
        self._outcomes = TransactionBatcher(lambda: services.engine, name="delivery-outcomes")

    # --- running ---------------------------------------------------------------------------

    def run_once(self, limit: int = 100) -> int:
        """Deliver what is due now, one claim at a time; return how many were processed."""
        done = 0
        while done < limit and self._claim_and_deliver():
            done += 1
        return done

    def start(self, threads: int | None = None) -> None:
        """Start the dispatcher and ``threads`` delivery threads (``delivery.concurrency``)."""
        count = threads or self.services.config.delivery.concurrency
        self._pool = ThreadPoolExecutor(count, thread_name_prefix="delivery")
        self._slots = count
        self._free = count
        self._wake_at = max(1, count // 4)
        self._free_lock = threading.Lock()
        thread = threading.Thread(target=self._dispatch, name="delivery-dispatch", daemon=True)
        thread.start()
        self._threads.append(thread)
        logger.info("worker.started", extra={"worker": self.worker_id, "count": count})

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming; wait up to ``timeout`` for replies in flight."""
        self._stop.set()
        self.services.waker.notify()
        for thread in self._threads:
            thread.join(timeout)
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _dispatch(self) -> None:
        # One thread claims for the whole process, as many replies as there are idle delivery
        # threads, in one statement. Waking every delivery thread on each NOTIFY instead would
        # cost one claim query per thread per queued reply.
        waker = self.services.waker
        poll = self.services.config.delivery.poll_seconds
        failures = 0
        while not self._stop.is_set():
            seen = waker.generation
            try:
                with self._free_lock:
                    free = self._free
                timeout = poll  # no free thread: threads that free up wake us
                if free:
                    claimed, due = self._claim_batch(free)
                    failures = 0
                    if claimed == free:
                        continue  # more may be due
                    if due is not None:
                        seconds = (due - self.services.clock()).total_seconds()
                        timeout = max(0.01, min(poll, seconds))
            except DBAPIError as exc:
                failures += 1
                timeout = min(30.0, 0.5 * 2**failures)
                logger.warning("worker.database-unavailable",
                               extra={"error": type(exc.orig).__name__, "delay": timeout})
            waker.wait(seen, timeout)

    def _claim(self, limit: int) -> tuple[list[tuple[sa.Row[Any], sa.Row[Any] | None]],
                                          datetime | None]:
        """Claim up to ``limit`` due replies with their surveys, in one transaction.

        When fewer than ``limit`` were due, also return when the next one will be (None:
        nothing else waiting), so the caller knows how long it may sleep.
        """
        now = self.services.clock()
        lease = now + timedelta(seconds=self.services.config.delivery.lease_seconds)
        due = None
        with self.services.engine.begin() as conn:
            rows = store.claim_due(conn, self.worker_id, now, lease, limit=limit)
            if len(rows) < limit:
                due = store.next_due_at(conn)
            found = store.surveys_by_id(conn, [row.survey_id for row in rows]) if rows else {}
        return [(row, found.get(row.survey_id)) for row in rows], due

    def _claim_batch(self, limit: int) -> tuple[int, datetime | None]:
        claimed, due = self._claim(limit)
        for row, survey in claimed:
            with self._free_lock:
                self._free -= 1
            self._pool.submit(self._deliver_then_free, row, survey)
        return len(claimed), due

    def _deliver_then_free(self, row: sa.Row[Any], survey: sa.Row[Any] | None) -> None:
        try:
            self._deliver(row, survey)
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
                self.services.waker.notify()

    # --- one reply -------------------------------------------------------------------------

    def _claim_and_deliver(self) -> bool:
        claimed, _ = self._claim(1)
        if not claimed:
            return False
        self._deliver(*claimed[0])
        return True

    def _deliver(self, item: sa.Row[Any], survey: sa.Row[Any] | None) -> None:
        """Post one claimed reply and record the outcome. Never raises for vendor failures."""
        services = self.services
        delivery = services.config.delivery
        extra = {"outbox_id": item.id, "helpdesk": item.helpdesk, "attempt": item.attempts}
        adapter = services.helpdesks.get(item.helpdesk)
        if adapter is None:
            self._fail(item, f"helpdesk {item.helpdesk!r} is not configured any more", None)
            return
        if item.attempts > delivery.max_attempts:
            # Claimed more often than allowed: earlier claims died with their worker.
            self._fail(item, f"gave up after {item.attempts - 1} attempts", None)
            return
        if survey is None:  # deleted by an operator while queued
            self._fail(item, "survey row is missing", None)
            return
        agent = Person(survey.agent_id, survey.agent_name, survey.agent_email)
        try:
            agent = adapter.resolve_agent(agent, item.context)
        except DeliveryError as exc:
            if exc.retryable and item.attempts < delivery.max_attempts:
                self._retry(item, exc, prefix="agent lookup: ")
                return
            # Out of retries for the lookup: the survey still goes out, with what we know.
            logger.warning("delivery.agent-lookup-failed", extra={**extra, "error": exc.message})
        link = survey_link(services, survey, agent)
        text = reply_text(
            services.config.survey.reply, survey.language, link=link,
            agent_name=agent.display, customer_name=survey.customer_name or "",
            ticket=survey.dialog_id, helpdesk=survey.helpdesk, team=survey.team or "",
        )
        reply = Reply(
            helpdesk=item.helpdesk, dialog_id=item.dialog_id, text=text, link=link, agent=agent,
            customer=Person(survey.customer_id, survey.customer_name, survey.customer_email),
            context=item.context, idempotency_key=f"csat-hook-{item.id}",
        )
        try:
            result = adapter.send_reply(reply)
        except DeliveryError as exc:
            if exc.retryable and item.attempts < delivery.max_attempts:
                self._retry(item, exc)
            else:
                self._fail(item, exc.message, exc.http_status)
            return
        except Exception as exc:
            # A bug, not a vendor answer: keep the reply, retry later, surface the type only.
            logger.exception("delivery.unexpected-error", extra=extra)
            self._retry(item, DeliveryError(f"internal error: {type(exc).__name__}",
                                            retryable=True))
            return
        def record(conn: sa.Connection) -> bool:
            return store.mark_sent(conn, item.id, self.worker_id, services.clock(),
                                   external_id=result.external_id, body=text,
                                   agent_name=agent.name, agent_email=agent.email, link=link)

        owned = self._write_outcome(record)
        if not owned:
            logger.warning("delivery.lease-lost", extra=extra)
        logger.info("delivery.sent", extra=extra)

    def _write_outcome(self, write: Any) -> Any:
        # The reply is out: losing the record of it would send it again after the lease, so
        # ride out a short database outage (a restart, a failover) before giving up.
        for attempt in range(6):
            try:
                return self._outcomes.run(write)
            except DBAPIError as exc:
                if attempt == 5:
                    raise
                logger.warning("worker.record-retry", extra={"error": type(exc.orig).__name__,
                                                             "attempt": attempt + 1})
                self._stop.wait(0.5 * 2**attempt)
        return None

    def _retry(self, item: sa.Row[Any], exc: DeliveryError, prefix: str = "") -> None:
        delivery = self.services.config.delivery
        delay = backoff_delay(item.attempts, delivery, exc.retry_after)
        now = self.services.clock()
        self._write_outcome(lambda conn: store.reschedule(
            conn, item.id, self.worker_id, now, next_attempt_at=now + timedelta(seconds=delay),
            error=prefix + exc.message, http_status=exc.http_status))
        # The dispatcher sleeps until the next due reply it knew of; this one may be sooner.
        self.services.waker.notify()
        logger.warning("delivery.retry", extra={"outbox_id": item.id, "helpdesk": item.helpdesk,
                                                "attempt": item.attempts, "error": exc.message,
                                                "delay": round(delay, 3)})

    def _fail(self, item: sa.Row[Any], reason: str, http_status: int | None) -> None:
        self._write_outcome(lambda conn: store.mark_failed(
            conn, item.id, self.worker_id, self.services.clock(), error=reason,
            http_status=http_status))
        logger.error("delivery.failed", extra={"outbox_id": item.id, "helpdesk": item.helpdesk,
                                               "attempt": item.attempts, "error": reason,
                                               "http_status": http_status})
