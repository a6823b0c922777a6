"""Group commit for closes: one transaction for every close waiting at that moment.

Request threads hand their close to :meth:`CloseRecorder.record` and wait. One writer thread
per process takes everything queued, stores it in one transaction (multi-row inserts, one
commit, one NOTIFY) and wakes the waiters. Under load this turns N transactions into one
(the database does the same with its own group commit); at low load a batch is one close and
nothing waits longer than its own transaction.

A close is answered only after its batch committed, so a 2xx still means "stored". If a batch
fails, its closes are retried one by one so one bad row cannot fail its neighbours.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from csat_hook import store
from csat_hook.batching import BatchThread
from csat_hook.db import run_transaction
from csat_hook.errors import ServiceUnavailableError
from csat_hook.records import DialogClosed

logger = logging.getLogger(__name__)

WAIT_SECONDS = 30.0


@dataclass
class _Pending:
    event: DialogClosed
    token: str
    now: datetime
    occurrence: str
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, Any] | None = None
    error: BaseException | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.event.helpdesk, self.event.dialog_id, self.occurrence)


class CloseRecorder:
    """Stores closes for request threads, batching concurrent ones into one transaction.

    ``engine()`` gives the engine to use. ``skip_reason(conn, event, now, seen)`` is the send
    policy; ``seen`` holds the customers
    already surveyed earlier in the same batch. ``after_commit`` runs when a batch queued
    replies (it wakes the delivery threads).
    """

    def __init__(self, engine: Callable[[], sa.Engine], *, send_delay: float,
                 skip_reason: Callable[[sa.Connection, DialogClosed, datetime, set[str]],
                                       str | None],
                 after_commit: Callable[[], None]) -> None:
        self.engine = engine
        self.send_delay = timedelta(seconds=send_delay)
        self.skip_reason = skip_reason
        self.after_commit = after_commit
        self._writer: BatchThread[_Pending] = BatchThread(self._write_batch,
                                                          name="close-recorder")

    def record(self, event: DialogClosed, *, token: str, now: datetime,
               occurrence: str) -> dict[str, Any]:
        """Store one close; block until its batch committed; return the outcome body."""
        pending = _Pending(event, token, now, occurrence)
        self._writer.put(pending)
        if not pending.done.wait(WAIT_SECONDS):
            raise ServiceUnavailableError("the database did not answer in time; retry later")
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _write_batch(self, batch: list[_Pending]) -> None:
        try:
            queued = self._write(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = _as_http_error(exc)
                batch[0].done.set()
                return
            queued = False
            for item in batch:  # isolate the failing close; the others still get stored
                try:
                    queued |= self._write([item])
                except Exception as single:
                    item.error = _as_http_error(single)
        if queued:
            self.after_commit()
        for item in batch:
            item.done.set()

    def _write(self, batch: list[_Pending]) -> bool:
        """One transaction for the batch; fills each item's result. True if replies queued."""
        return run_transaction(self.engine(), lambda conn: self._write_in(conn, batch))

    def _write_in(self, conn: sa.Connection, batch: list[_Pending]) -> bool:
        results: dict[int, dict[str, Any]] = {}
        seen: set[str] = set()
        first_of_key: dict[tuple[str, str, str], _Pending] = {}
        rows, skipped = [], {}
        for item in batch:
            if item.key in first_of_key:  # the same close twice in one batch
                results[id(item)] = {"status": "duplicate"}
                continue
            first_of_key[item.key] = item
            reason = self.skip_reason(conn, item.event, item.now, seen)
            skipped[id(item)] = reason
            rows.append(_survey_row(item, reason))
        inserted = store.insert_surveys(conn, rows)
        replies = []
        for item in first_of_key.values():
            survey_id = inserted.get(item.key)
            if survey_id is None:  # already recorded, or cancelled and now revived
                survey_id = store.revive_survey(conn, _survey_row(item, skipped[id(item)]))
            if survey_id is None:
                results[id(item)] = {"status": "duplicate"}
            elif skipped[id(item)]:
                results[id(item)] = {"status": "skipped", "reason": skipped[id(item)],
                                     "survey_id": survey_id}
            else:
                send_at = item.now + self.send_delay
                replies.append(_outbox_row(item, survey_id, send_at))
                results[id(item)] = {"status": "queued", "survey_id": survey_id,
                                     "send_at": send_at.isoformat()}
        if replies:
            store.enqueue_replies(conn, replies)
            store.notify_workers(conn)
        for item in batch:
            item.result = results[id(item)]
        return bool(replies)


def _as_http_error(exc: BaseException) -> BaseException:
    if isinstance(exc, DBAPIError):
        logger.error("webhook.database-unavailable", extra={"error": type(exc.orig).__name__})
        error = ServiceUnavailableError("the database is unavailable; retry later")
        error.__cause__ = exc
        return error
    logger.error("webhook.record-failed", extra={"error": type(exc).__name__})
    return exc


def _survey_row(item: _Pending, skip: str | None) -> dict[str, Any]:
    event = item.event
    return {
        "helpdesk": event.helpdesk,
        "dialog_id": event.dialog_id,
        "occurrence": item.occurrence,
        "agent_id": event.agent.id,
        "agent_name": event.agent.name,
        "agent_email": event.agent.email,
        "customer_id": event.customer.id,
        "customer_email": event.customer.email,
        "customer_name": event.customer.name,
        "team": event.team,
        "channel": event.channel,
        "language": event.language,
        "token": item.token,
        "link": None,
        "status": store.SKIPPED if skip else store.QUEUED,
        "skip_reason": skip,
        "closed_at": event.closed_at,
        "created_at": item.now,
        "sent_at": None,
    }


def _outbox_row(item: _Pending, survey_id: int, send_at: datetime) -> dict[str, Any]:
    return {
        "survey_id": survey_id,
        "helpdesk": item.event.helpdesk,
        "dialog_id": item.event.dialog_id,
        "context": dict(item.event.reply_context),
        "status": store.PENDING,
        "attempts": 0,
        "next_attempt_at": send_at,
        "created_at": item.now,
        "updated_at": item.now,
    }
