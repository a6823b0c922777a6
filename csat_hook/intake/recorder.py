"""Group commit for closes: one transaction for every close waiting at that moment.

Request threads hand their close to :meth:`CloseRecorder.record` and wait. The first one to
arrive while nothing is being written stores everything queued at that moment in one
transaction (multi-row inserts, one commit, one NOTIFY) itself and answers the others; those
that queued meanwhile are written the same way by one of them next. Under load this turns N
transactions into one (the database does the same with its own group commit); at low load a
batch is one close, written on its own request thread with no hand-off.

A close is answered only after its batch committed, so a 2xx still means "stored". If a batch
fails, its closes are retried one by one so one bad row cannot fail its neighbours (both are
:class:`~csat_hook.db.group_commit.GroupCommit`'s work; this module says what a batch writes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from csat_hook.db.engine import UNAVAILABLE
from csat_hook.db.engine import is_data_error
from csat_hook.db.engine import unavailable_cause
from csat_hook.db.group_commit import GroupCommit
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import QUEUED
from csat_hook.db.schema import SKIPPED
from csat_hook.errors import BadPayloadError
from csat_hook.errors import CsatHookError
from csat_hook.errors import ServiceUnavailableError
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.intake import store
from csat_hook.intake.config import PolicyConfig
from csat_hook.intake.policy import FoldedEmails
from csat_hook.intake.policy import LatestSurveys
from csat_hook.intake.policy import LookBackKey
from csat_hook.intake.policy import look_back_emails
from csat_hook.intake.policy import look_back_keys
from csat_hook.intake.policy import look_back_since
from csat_hook.intake.policy import looks_back
from csat_hook.intake.policy import skip_reason
from csat_hook.intake.storable import trusted_close_time
from csat_hook.outbox import store as outbox_store
from csat_hook.outbox import wake

logger = logging.getLogger(__name__)

WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class _Close:
    event: DialogClosed
    token: str
    now: datetime
    occurrence: str
    # A digest of the close's body (surveys.close_digest): a retry of it is no new close.
    digest: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.event.helpdesk, self.event.dialog_id, self.occurrence)

    @property
    def may_revive(self) -> bool:
        """Whether this close may re-arm a survey of its key that a reopen cancelled: only
        when the key cannot tell a new close from the one that survey was for (no occurrence,
        as under ``per_dialog: once``, or one the adapter says repeats), and the helpdesk may
        close a dialog again (not ``closes_once``). An occurrence naming one close seen again
        is that close's retry or replay (Intercom and Help Scout sign no timestamp): reviving
        it sent a survey into a conversation open again. The store also asks that the close
        be later than the cancelled one (``store.LATER_CLOSE``)."""
        if self.event.closes_once:
            return False
        return self.occurrence == "" or self.event.occurrence_repeats


class CloseRecorder:
    """Stores closes for request threads, batching concurrent ones into one transaction.

    ``engine()`` gives the engine to use; ``policy`` decides which closes get a survey;
    ``replies_queued`` runs after a batch that queued replies committed (it wakes the
    delivery threads of this process); ``live_seconds`` is how recent a worker's heartbeat
    must be for it to be woken (``delivery.worker_dead_after_seconds``).
    """

    def __init__(
        self,
        engine: Callable[[], sa.Engine],
        *,
        policy: PolicyConfig,
        replies_queued: Callable[[], None],
        live_seconds: float = wake.LIVE_SECONDS,
    ) -> None:
        self.policy = policy
        self.live_seconds = live_seconds
        self.send_delay = timedelta(seconds=policy.send_delay_seconds)
        self._replies_queued = replies_queued
        # Without a look-back the policy decides from the close alone, and a batch is one
        # statement on PostgreSQL (see _write_one_statement).
        self._one_statement = not looks_back(policy)
        # No lock against a reopen of the same dialog recorded at this moment by another
        # process: it commits its remembered time before it cancels, and a reply this batch
        # queues unseen by both is cancelled at its claim (Intake.remember_reopen). A lock
        # made this statement a transaction: 2-3 times its database CPU.
        self._writer: GroupCommit[_Close, dict[str, Any]] = GroupCommit(
            engine,
            self._write_and_unmark,
            name="close-recorder",
            after_commit=self._after_commit,
            single=lambda _batch: self._one_statement,
        )

    def record(
        self,
        event: DialogClosed,
        *,
        token: str,
        now: datetime,
        occurrence: str,
        digest: str | None = None,
    ) -> dict[str, Any]:
        """Store one close; block until its batch committed; return the outcome body.
        ``digest`` is the close's body's (``payload.document_digest``), None when unknown."""
        close = _Close(event, token, now, occurrence, digest)
        try:
            return self._writer.submit(close, timeout=WAIT_SECONDS)
        except TimeoutError:
            raise ServiceUnavailableError(
                "the database did not answer in time; retry later"
            ) from None
        except Exception as exc:
            error = _as_http_error(exc)
            if error is exc:
                raise
            raise error from exc

    def close(self) -> None:
        """Wait for the closes already handed over, then close the held connection."""
        self._writer.close()

    def _after_commit(self, results: Sequence[dict[str, Any]]) -> None:
        if any(result["status"] == "queued" for result in results):
            self._replies_queued()

    def _single(self, dialect_name: str) -> bool:
        return self._one_statement and dialect_name == "postgresql"

    def _write_and_unmark(self, conn: sa.Connection, batch: list[_Close]) -> list[dict[str, Any]]:
        """:meth:`_write_in`, then, for each close of a dialog that may close again found
        recorded already, the reopen's mark taken off its dialog's replies when the close is
        later than the reopen (``outbox_store.unmark_reopened``): the re-close of a dialog
        whose reply's outcome was unknown at the reopen gets that reply."""
        results = self._write_in(conn, batch)
        # The one statement of the PostgreSQL path does it itself (store._unmark_sql).
        if self.policy.cancel_on_reopen and not self._single(conn.dialect.name):
            for item, result in zip(batch, results, strict=True):
                if result["status"] == "duplicate" and item.may_revive:
                    closed_at = trusted_close_time(item.event.close_times, item.now) or item.now
                    # The close's own retry (store.SAME_DELIVERY) is no later close.
                    retry_of = (
                        (item.digest, item.now - store.RETRY_WINDOW)
                        if item.digest is not None
                        else None
                    )
                    outbox_store.unmark_reopened(
                        conn,
                        item.event.helpdesk,
                        item.event.dialog_id,
                        closed_at,
                        retry_of=retry_of,
                    )
        return results

    def _write_in(self, conn: sa.Connection, batch: list[_Close]) -> list[dict[str, Any]]:
        """One transaction for the batch: one outcome body per close, in order."""
        if self._single(conn.dialect.name):
            return self._write_one_statement(conn, batch)
        emails = store.fold_emails(
            conn, look_back_emails(self.policy, (item.event for item in batch))
        )
        keys = {key for item in batch for key in look_back_keys(self.policy, item.event, emails)}
        store.lock_look_backs(conn, keys)
        # Every close's look-back, for the whole batch and after its locks: one statement per
        # kind of key (the closes of the batch are stored after it).
        latest = store.latest_surveys(
            conn, keys, look_back_since(self.policy, min(item.now for item in batch))
        )
        results: dict[int, dict[str, Any]] = {}
        first_of_key: dict[tuple[str, str, str], _Close] = {}
        # One statement for the batch: the remembered reopens of its dialogs.
        reopens = (
            store.remembered_reopens(
                conn, {(item.event.helpdesk, item.event.dialog_id) for item in batch}
            )
            if self.policy.cancel_on_reopen
            else {}
        )
        for item in batch:
            if item.key in first_of_key:  # the same close twice in one batch
                results[id(item)] = {"status": "duplicate"}
                continue
            first_of_key[item.key] = item
        closes = list(first_of_key.values())
        skipped = self._decide(closes, latest, emails, reopens, lambda _item: True)
        inserted = store.insert_surveys(
            conn, [_survey_row(item, skipped[id(item)]) for item in closes]
        )
        stored: dict[int, int | None] = {}
        for item in closes:
            survey_id = inserted.get(item.key)
            if survey_id is None and item.may_revive:  # already recorded, or cancelled
                survey_id = store.revive_survey(conn, _survey_row(item, skipped[id(item)]))
            stored[id(item)] = survey_id
        if any(survey_id is None for survey_id in stored.values()) and looks_back(self.policy):
            # A duplicate (a vendor's late retry) surveys no one: decided as if it counted
            # for its customer and dialog, it put a new close of either, later in the batch,
            # on cool-down. Decided again with only the stored closes counting (whether a
            # close is stored does not depend on its decision), the changed ones rewritten.
            decided = self._decide(
                closes, latest, emails, reopens, lambda item: stored[id(item)] is not None
            )
            store.redecide_surveys(
                conn,
                {
                    survey_id: decided[id(item)]
                    for item in closes
                    if (survey_id := stored[id(item)]) is not None
                    and decided[id(item)] != skipped[id(item)]
                },
            )
            skipped = decided
        replies = []
        for item in closes:
            survey_id = stored[id(item)]
            if survey_id is None:
                results[id(item)] = {"status": "duplicate"}
            elif skipped[id(item)]:
                results[id(item)] = {
                    "status": "skipped",
                    "reason": skipped[id(item)],
                    "survey_id": survey_id,
                }
            else:
                send_at = item.now + self.send_delay
                replies.append(_outbox_row(item, survey_id, send_at))
                results[id(item)] = {
                    "status": "queued",
                    "survey_id": survey_id,
                    "send_at": send_at.isoformat(),
                }
        if replies:
            outbox_store.enqueue_replies(conn, replies)
            # One worker woken for the batch (it passes the wake-up on when it is full).
            wake.notify_workers(
                conn, max(item.now for item in batch), live_seconds=self.live_seconds
            )
        return [results[id(item)] for item in batch]

    def _decide(
        self,
        closes: list[_Close],
        latest: LatestSurveys,
        emails: FoldedEmails,
        reopens: Mapping[tuple[str, str], datetime],
        counts: Callable[[_Close], bool],
    ) -> dict[int, str | None]:
        """Each close's skip reason (None: surveyed), by ``id``, in the batch's order: the
        policy's (:func:`skip_reason`), else :data:`store.REOPENED_AFTER_CLOSE` for a close
        the helpdesk says happened no later than a remembered reopen of its dialog. The
        customers and dialogs a surveyed close would survey count for the closes after it
        only when ``counts`` says that close is stored (a duplicate surveys no one) and it
        is not stale."""
        decided: dict[int, str | None] = {}
        seen: set[LookBackKey] = set()
        for item in closes:
            # The dialogs and customers this close would survey: counted for the closes after
            # it only if it is not stale after all.
            surveyed = set(seen)
            reason = skip_reason(self.policy, latest, item.event, item.now, surveyed, emails)
            if reason is None and store.reopened_after(
                trusted_close_time(item.event.close_times, item.now),
                item.now,
                reopens.get((item.event.helpdesk, item.event.dialog_id)),
            ):
                reason = store.REOPENED_AFTER_CLOSE
            elif counts(item):
                seen |= surveyed
            decided[id(item)] = reason
        return decided

    def _write_one_statement(
        self, conn: sa.Connection, batch: list[_Close]
    ) -> list[dict[str, Any]]:
        """The batch in one statement (PostgreSQL, no look-back: the skip reason needs no
        query); the same outcomes as the transaction of :meth:`_write_in`."""
        first_of_key: dict[tuple[str, str, str], _Close] = {}
        for item in batch:
            first_of_key.setdefault(item.key, item)
        rows, replies, send_at = [], {}, {}
        for key, item in first_of_key.items():
            # No look-back on this path: no e-mail is folded or compared.
            reason = skip_reason(self.policy, None, item.event, item.now, set(), {})
            rows.append(_survey_row(item, reason))
            if not reason:
                send_at[key] = item.now + self.send_delay
                replies[key] = (dict(item.event.reply_context), send_at[key])
        alive_since = max(item.now for item in batch) - timedelta(seconds=self.live_seconds)
        revivable = {key for key, item in first_of_key.items() if item.may_revive}
        stored = store.record_closes_pg(
            conn,
            rows,
            replies,
            alive_since,
            revivable,
            reopens=self.policy.cancel_on_reopen,
        )
        results: list[dict[str, Any]] = []
        for item in batch:
            survey = stored.get(item.key)
            if survey is None or first_of_key[item.key] is not item:
                results.append({"status": "duplicate"})
            elif survey.status == SKIPPED:
                # The policy's reason, or the statement's: reopened after the close.
                results.append(
                    {"status": "skipped", "reason": survey.skip_reason, "survey_id": survey.id}
                )
            else:
                results.append(
                    {
                        "status": "queued",
                        "survey_id": survey.id,
                        "send_at": send_at[item.key].isoformat(),
                    }
                )
        return results


def _as_http_error(exc: Exception) -> Exception:
    if isinstance(exc, UNAVAILABLE):
        return database_error(exc)
    logger.error("webhook.record-failed", extra={"error": type(exc).__name__})
    return exc


def database_error(exc: DBAPIError | sa.exc.TimeoutError, **log: Any) -> CsatHookError:
    """What the sender hears when the database raised ``exc`` (one of
    :data:`~csat_hook.db.engine.UNAVAILABLE`).

    Values the database refused (too long, a NUL, a broken constraint: ``DataError``,
    ``IntegrityError``) will be refused again on every retry: a 400 naming the error class,
    so the vendor stops. Everything else (connection lost, locked, timeout, no pooled
    connection free within the pool's timeout) is 503, retry.
    """
    error = unavailable_cause(exc)
    if isinstance(exc, DBAPIError) and is_data_error(exc):
        logger.error("webhook.unstorable", extra={"error": error, **log})
        # The generic class (DataError, IntegrityError): the same answer on both databases.
        return BadPayloadError(
            f"the database refused a value of this webhook ({type(exc).__name__})",
            code="unstorable",
        )
    logger.error("webhook.database-unavailable", extra={"error": error, **log})
    return ServiceUnavailableError("the database is unavailable; retry later")


def _survey_row(item: _Close, skip: str | None) -> dict[str, Any]:
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
        "status": SKIPPED if skip else QUEUED,
        "skip_reason": skip,
        "closed_at": trusted_close_time(event.close_times, item.now),
        "created_at": item.now,
        "sent_at": None,
        "close_digest": item.digest,
    }


def _outbox_row(item: _Close, survey_id: int, send_at: datetime) -> dict[str, Any]:
    return {
        "survey_id": survey_id,
        "helpdesk": item.event.helpdesk,
        "dialog_id": item.event.dialog_id,
        "context": dict(item.event.reply_context),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": send_at,
        "created_at": item.now,
        "updated_at": item.now,
    }
