"""Recording what a delivery said happened: sent, back to pending after the retry policy's
delay (or the vendor's ``Retry-After``), failed with its reason, or cancelled (an alert
withdrawn before it went out).

Outcomes of concurrent deliveries are committed together (group commit); a write is retried
through a short database outage, since a reply that is out must be recorded or it would be
sent again after its lease.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Generic
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from csat_hook.clock import Clock
from csat_hook.db.group_commit import GroupCommit
from csat_hook.db.schema import ALERT
from csat_hook.db.schema import PENDING
from csat_hook.outbox import store
from csat_hook.outbox.config import DeliveryConfig
from csat_hook.outbox.results import Cancelled
from csat_hook.outbox.results import Failed
from csat_hook.outbox.results import FollowUp
from csat_hook.outbox.results import Outcome
from csat_hook.outbox.results import Retry
from csat_hook.outbox.results import Sent
from csat_hook.outbox.wake import Waker
from csat_hook.retry import Backoff

# Log lines keep the logger name they had before the module was split out of worker.
logger = logging.getLogger("csat_hook.outbox.worker")

T = TypeVar("T")

# Riding out a database outage: the dispatcher's claims, and writing an outcome (a reply that
# is out must be recorded, or it would be sent again after its lease).
DATABASE_BACKOFF = Backoff(base=0.5, cap=30.0)
OUTCOME_WRITE_ATTEMPTS = 6
SENT_AFTER_TAKEOVER_NOTE = (
    "recorded by the worker that sent it, after its claim was taken over: not sent again"
)


@dataclass(frozen=True)
class _OneStatement(Generic[T]):
    """A write that is one statement on PostgreSQL (atomic on its own): alone in its batch,
    it runs in autocommit, without the BEGIN and COMMIT round trips."""

    work: Callable[[sa.Connection], T]

    def __call__(self, conn: sa.Connection) -> T:
        return self.work(conn)


# A write the outcome group commit takes: a sent mark (data: sent marks committed together
# are ONE statement on PostgreSQL, store.mark_sent_many), or any other outcome's work.
_Write = store.SentMark | Callable[[sa.Connection], Any]


def _one_statement(batch: list[_Write]) -> bool:
    if all(isinstance(write, store.SentMark) for write in batch):
        return True
    return len(batch) == 1 and isinstance(batch[0], _OneStatement)


class OutcomeRecorder:
    """Writes the outcomes of one worker's deliveries (only to rows it still owns)."""

    def __init__(
        self,
        engine: sa.Engine,
        config: DeliveryConfig,
        *,
        waker: Waker,
        clock: Clock,
        worker_id: str,
    ) -> None:
        self.engine = engine
        self.config = config
        self.waker = waker
        self.clock = clock
        self.worker_id = worker_id
        self._outcomes: GroupCommit[_Write, Any] = GroupCommit(
            lambda: self.engine, self._write_batch, name="delivery-outcomes", single=_one_statement
        )

    def close(self) -> None:
        """Wait for the outcomes already handed over, then close the held connection."""
        self._outcomes.close()

    def record(self, item: sa.Row[Any], outcome: Outcome) -> None:
        """Record ``outcome`` for the claimed row ``item``."""
        extra = log_fields(item)
        if isinstance(outcome, Sent):
            agent = outcome.agent

            mark = store.SentMark(
                item.id,
                self.clock(),
                external_id=outcome.external_id,
                body=outcome.body,
                agent_id=agent.id if agent else None,
                agent_name=agent.name if agent else None,
                agent_email=agent.email if agent else None,
                link=outcome.link,
                note=outcome.note,
            )
            write: _Write = mark
            row = None
            if outcome.follow_up is not None:
                row = self._follow_up_row(item, outcome.follow_up, mark.now)
                # Not one statement: the group commit runs it in a transaction (both or neither).
                write = functools.partial(
                    store.mark_sent_and_follow_up,
                    worker_id=self.worker_id,
                    mark=mark,
                    follow_up=row,
                )
            if self._write(write):
                logger.info("delivery.sent", extra=extra)
            elif self._write(self._sent_after_takeover(mark, row)):
                logger.warning("delivery.sent-after-takeover", extra=extra)
            else:
                logger.warning("delivery.lease-lost", extra=extra)
        elif isinstance(outcome, Retry):
            self._reschedule(item, outcome)
        elif isinstance(outcome, Cancelled):
            self._cancel(item, outcome)
        else:
            self._fail(item, outcome)

    def _sent_after_takeover(self, mark: store.SentMark, follow_up: Any) -> _Write:
        """The write recording a row this worker sent after another took its claim over
        (this worker's heartbeat could not reach the database while the request ran): the
        outcome is known here, so it is recorded while the row still waits to be settled,
        before the new owner looks it up or, where nothing can be looked up, sends it again,
        or once the new owner failed it unable to tell (see
        :func:`~csat_hook.outbox.store.mark_sent_after_takeover`)."""
        note = (
            SENT_AFTER_TAKEOVER_NOTE
            if mark.note is None
            else f"{mark.note}; {SENT_AFTER_TAKEOVER_NOTE}"
        )
        return functools.partial(
            store.mark_sent_after_takeover,
            worker_id=self.worker_id,
            mark=dataclasses.replace(mark, note=note),
            follow_up=follow_up,
        )

    def _follow_up_row(self, item: sa.Row[Any], follow_up: FollowUp, now: datetime) -> Any:
        # The alert again to the receivers that refused it for now, after the retry policy's
        # delay for as many failures as attempts they had (not one per earlier delivery: a
        # delivery retried before some took it counts each of its attempts).
        delay = self.config.backoff.delay(follow_up.tried)
        return {
            "alert_id": item.alert_id,
            "destination": item.destination,
            "destination_kind": follow_up.kind,
            "delivery_key": follow_up.delivery_key,
            "helpdesk": item.helpdesk,
            "dialog_id": item.dialog_id,
            "context": {
                "recipients": list(follow_up.receivers),
                "generation": follow_up.generation,
                "tried": follow_up.tried,
            },
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now + timedelta(seconds=delay),
            "created_at": now,
            "updated_at": now,
        }

    def _write_batch(self, conn: sa.Connection, batch: list[_Write]) -> list[Any]:
        marks = [write for write in batch if isinstance(write, store.SentMark)]
        if len(marks) == len(batch):
            return store.mark_sent_many(conn, self.worker_id, marks)
        return [
            store.mark_sent_many(conn, self.worker_id, [write])[0]
            if isinstance(write, store.SentMark)
            else write(conn)
            for write in batch
        ]

    def _write(self, write: _Write) -> Any:
        # Ride out a short database outage (a restart, a failover), or every pooled
        # connection busy past the pool's timeout (no DBAPIError: it was not retried, and a
        # sent reply stayed "sending" until its lease ran out), before giving up. A stopping
        # worker too: it gave up at once, and a reply that was out was taken over as an
        # unknown outcome, sent again where nothing can be looked up.
        for attempt in range(1, OUTCOME_WRITE_ATTEMPTS + 1):
            try:
                return self._outcomes.submit(write)
            except (DBAPIError, sa.exc.TimeoutError) as exc:
                if attempt == OUTCOME_WRITE_ATTEMPTS:
                    raise
                cause = exc.orig if isinstance(exc, DBAPIError) else exc
                logger.warning(
                    "worker.record-retry",
                    extra={"error": type(cause).__name__, "attempt": attempt},
                )
                time.sleep(DATABASE_BACKOFF.ceiling(attempt))
        raise AssertionError("unreachable")

    def _reschedule(self, item: sa.Row[Any], retry: Retry) -> None:
        failures = item.attempts if retry.failures is None else retry.failures
        delay = self.config.backoff.delay(failures, retry.error.retry_after)
        unknown = retry.error.outcome_unknown
        if unknown:
            # Look no sooner than a vendor may still be saving the request we gave up on.
            delay = max(delay, self.config.settle_seconds)
        now = self.clock()
        self._write(
            _OneStatement(
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
                    destination_kind=retry.kind,
                )
            )
        )
        # The dispatcher sleeps until the next due reply it knew of; this one may be sooner.
        self.waker.notify()
        logger.warning(
            "delivery.outcome-unknown" if unknown else "delivery.retry",
            extra={**log_fields(item), "error": retry.message, "delay": round(delay, 3)},
        )

    def _cancel(self, item: sa.Row[Any], cancelled: Cancelled) -> None:
        if item.kind != ALERT:
            self._cancel_reply(item, cancelled)
            return
        done = self._write(
            lambda conn: store.mark_cancelled(
                conn,
                item.id,
                item.alert_id,
                self.worker_id,
                self.clock(),
                note=cancelled.reason,
                unrouted=cancelled.unrouted,
            )
        )
        if done is None:
            # The alert stands again (or a sync is changing it): due soon, decided anew.
            self.waker.notify()
        event = {True: "delivery.cancelled", None: "delivery.undecided"}.get(
            done, "delivery.lease-lost"
        )
        logger.info(event, extra={**log_fields(item), "error": cancelled.reason})

    def _cancel_reply(self, item: sa.Row[Any], cancelled: Cancelled) -> None:
        # Its dialog reopened while it could not be cancelled (outbox/reply_delivery.py).
        done = self._write(
            lambda conn: store.mark_reply_cancelled(
                conn,
                item.id,
                self.worker_id,
                self.clock(),
                note=cancelled.reason,
                settled=cancelled.settled,
            )
        )
        event = "delivery.cancelled" if done else "delivery.lease-lost"
        logger.info(event, extra={**log_fields(item), "error": cancelled.reason})

    def _fail(self, item: sa.Row[Any], failed: Failed) -> None:
        self._write(
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
            extra={**log_fields(item), "error": failed.reason, "http_status": failed.http_status},
        )


def log_fields(item: sa.Row[Any]) -> dict[str, Any]:
    """What a delivery's log lines name: the row, its helpdesk or destination, the attempt."""
    fields: dict[str, Any] = {"outbox_id": item.id, "attempt": item.attempts}
    if item.kind == ALERT:
        fields["destination"] = item.destination
    else:
        fields["helpdesk"] = item.helpdesk
    return fields
