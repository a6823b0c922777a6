"""From a verified webhook to a stored survey and a queued reply, in one transaction.

Nothing here calls out: the helpdesk gets its answer as soon as the row is committed, and the
delivery worker (woken right after the commit) posts the reply.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from csat_hook.clock import Clock
from csat_hook.db.engine import UNAVAILABLE
from csat_hook.db.engine import run_transaction
from csat_hook.errors import BadPayloadError
from csat_hook.errors import InvalidSignatureError
from csat_hook.errors import UnknownHelpdeskError
from csat_hook.errors import WebhookError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.payload import document_digest
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.records import shown_name
from csat_hook.intake import store as intake_store
from csat_hook.intake.config import PolicyConfig
from csat_hook.intake.recorder import CloseRecorder
from csat_hook.intake.recorder import database_error
from csat_hook.intake.storable import storable_event
from csat_hook.intake.storable import survey_token
from csat_hook.intake.storable import trusted_reopen_time
from csat_hook.outbox import store as outbox_store

logger = logging.getLogger(__name__)

# How often the delivery worker's heartbeat prunes remembered reopens.
PRUNE_EVERY = timedelta(minutes=10)


def unknown_helpdesk(name: str) -> UnknownHelpdeskError:
    """The 404 for a helpdesk name no adapter has. The name is the sender's text (up to 8 KB
    of a path): named only when it looks like a name (:func:`shown_name`), else described."""
    shown = shown_name(name)
    if shown == name:
        return UnknownHelpdeskError(f"no helpdesk named {name!r} is configured")
    return UnknownHelpdeskError(f"no helpdesk is configured by the name in the path {shown}")


def repeated_proof_header(adapter: Helpdesk, request: WebhookRequest) -> str | None:
    """The name of a header ``adapter`` reads its sender's proof from (its
    :meth:`~Helpdesk.proof_headers`: signature, token, ``Authorization``, a signed
    timestamp's) that arrived holding several values, else None. A header sent twice
    reaches a WSGI app as one value, the two joined by a comma (RFC 9110 5.3; gunicorn
    writes "a,b", Werkzeug "a, b"), which no signature, ``Authorization`` credentials
    (token68: no comma) or timestamp (Unix seconds or milliseconds, ISO 8601) ever are. Asked
    only of a request that failed verification: a token that holds a comma still matches."""
    for name in adapter.proof_headers():
        if "," in (request.header(name) or ""):
            return name
    return None


def close_digest(request: WebhookRequest) -> str:
    """A digest of a close's body: of its document (the same whatever its key order, spacing
    or escapes, which vendors change between retries), else of its bytes. Vendor-neutral:
    every adapter reads its close from that document.

    The document is written canonically by orjson (keys sorted), 4 µs for a Chatwoot close
    where ``payload.document_digest``'s ``json.dumps`` took 26 µs of every close; a
    document orjson refuses (a lone surrogate, an integer beyond 64 bits) by
    ``document_digest``. Either way the same document gets the same digest, which is all a
    retry is told by (it is compared with the digest of a close of the same dialog)."""
    try:
        document = request.json()
    except BadPayloadError:
        return hashlib.sha256(request.body).hexdigest()[:32]
    try:
        canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError is one
        return document_digest(document)
    return hashlib.sha256(canonical).hexdigest()[:32]


@dataclass(frozen=True)
class Outcome:
    """What the webhook endpoint answers. Always 200 on success: Eadesk wants exactly 200."""

    body: dict[str, Any]
    status: int = 200


class Intake:
    """Receives webhooks for the configured helpdesks: verify, parse, record.

    ``token_secret`` signs the survey references; the ``recorder`` commits closes (group
    commit) and queues their replies.
    """

    def __init__(
        self,
        *,
        helpdesks: Mapping[str, Helpdesk],
        engine: sa.Engine,
        policy: PolicyConfig,
        token_secret: str,
        recorder: CloseRecorder,
        clock: Clock,
    ) -> None:
        self.helpdesks = helpdesks
        self.engine = engine
        self.policy = policy
        self.token_secret = token_secret
        self.recorder = recorder
        self.clock = clock
        self._pruned: datetime | None = None
        self._prune_lock = threading.Lock()

    def prune_reopens_due(self) -> int:
        """Forget remembered reopens received more than ``store.REOPEN_MEMORY`` ago, if a
        prune is due (every :data:`PRUNE_EVERY`, again at once while a full batch went); how
        many. A chore of the delivery worker's heartbeat: no query when none is due."""
        now = self.clock()
        with self._prune_lock:
            if self._pruned is not None and now - self._pruned < PRUNE_EVERY:
                return 0
            self._pruned = now
        deleted = run_transaction(
            self.engine,
            lambda conn: intake_store.prune_reopens(conn, now - intake_store.REOPEN_MEMORY),
        )
        if deleted == intake_store.REOPEN_PRUNE_BATCH:
            with self._prune_lock:
                self._pruned = None  # more may be left
        return deleted

    def receive(self, helpdesk_name: str, request: WebhookRequest) -> Outcome:
        """Verify, parse and record one webhook; raise a WebhookError subclass to refuse it."""
        adapter = self.helpdesks.get(helpdesk_name)
        if adapter is None:
            raise unknown_helpdesk(helpdesk_name)
        try:
            previous = adapter.verify(request)
        except InvalidSignatureError as exc:
            repeated = repeated_proof_header(adapter, request)
            if repeated is not None:
                raise WebhookError(
                    f"the {repeated} header is given more than once (or as a list of values): "
                    "send it once",
                    code="duplicate_header",
                ) from exc
            # The one place a webhook's 401 gets its challenge: raised deep in an adapter
            # (or shared signing code), it is known here which helpdesk refused.
            exc.www_authenticate = adapter.challenge()
            raise
        if previous is not None:
            # Taken as any other (a close is stored and answered as ever); said so that a
            # rotation's end can be seen: no such line for a while, the previous secret goes.
            logger.info(
                "webhook.previous-secret",
                extra={"helpdesk": helpdesk_name, "key": previous.key, "index": previous.index},
            )
        event = adapter.parse(request)
        if isinstance(event, Ignored):
            if event.misconfigured:
                # Answered 200 all the same (a 4xx makes vendors retry, then disable the
                # webhook), but no survey goes out for this rule's closes until it is fixed.
                logger.warning(
                    "webhook.ignored-misconfigured",
                    extra={"helpdesk": helpdesk_name, "reason": event.reason},
                )
            else:
                logger.debug(
                    "webhook.ignored", extra={"helpdesk": helpdesk_name, "reason": event.reason}
                )
            return Outcome({"status": "ignored", "reason": event.reason})
        event = storable_event(event)
        if isinstance(event, DialogClosed):
            return self.record_close(event, digest=close_digest(request))
        try:
            return self._reopened(event)
        except UNAVAILABLE as exc:  # a driver's error, or no pooled connection in time
            raise database_error(exc, helpdesk=helpdesk_name) from exc

    def _reopened(self, event: DialogReopened) -> Outcome:
        """Cancel the dialog's waiting surveys, but not one queued for a close later than the
        reopen: vendors deliver (and retry) webhooks out of order, and a reopen that happened
        before the close says nothing about it. A reopen of unknown time cancels them all."""
        cancelled = kept = 0
        if self.policy.cancel_on_reopen:
            now = self.clock()
            reopened_at = trusted_reopen_time(event.reopen_times, now)

            if reopened_at is not None:
                # Committed on its own BEFORE the cancel below looks (see remember_reopen).
                run_transaction(
                    self.engine, lambda conn: self.remember_reopen(conn, event, now, reopened_at)
                )
            # A new transaction, so a new snapshot: one taken after the reopen was remembered.
            cancelled, kept = run_transaction(
                self.engine, lambda conn: self.cancel_on_reopen(conn, event, now, reopened_at)
            )
        if cancelled:
            logger.info(
                "survey.cancelled-on-reopen",
                extra={"helpdesk": event.helpdesk, "dialog_id": event.dialog_id},
            )
        body: dict[str, Any] = {"status": "reopened", "cancelled": cancelled}
        if kept:
            # Said, not only "cancelled: 0": the reopen happened before those closes (a
            # reopen delivered late, or retried). Counts only in the log line.
            logger.info(
                "survey.kept-on-reopen",
                extra={
                    "helpdesk": event.helpdesk,
                    "count": kept,
                    "reason": "reopen_older_than_close",
                },
            )
            surveys = "survey" if kept == 1 else "surveys"
            body["kept_older_than_close"] = kept
            body["reason"] = f"the reopen is older than the close of {kept} waiting {surveys}: kept"
        return Outcome(body)

    def remember_reopen(
        self, conn: sa.Connection, event: DialogReopened, now: datetime, reopened_at: datetime
    ) -> None:
        """In the caller's transaction, which must COMMIT before :meth:`cancel_on_reopen`
        starts its own: remember the dialog's reopen at ``reopened_at`` (its helpdesk's
        believable time), received ``now``.

        Why remembered: the reopen may have been delivered before its own close, and a close
        no later than it is skipped when it comes; also when the reopen cancels an earlier
        close's survey (closed, reopened, closed again, reopened, the second close delivered
        last: remembered only when nothing was cancelled, that second close re-armed the
        survey into a dialog open again). A failed cancel after it leaves it remembered (an
        upsert: the vendor's retry of the reopen changes nothing).

        Why committed first: it is what makes a close recorded at the same moment by another
        process (PostgreSQL, READ COMMITTED, no lock) never reach the reopened dialog. Call C
        the close's commit. If C's snapshot holds this reopen, the close is skipped
        (``reopened_after_close``). Else, if C commits before the cancel's snapshot, the cancel
        cancels its reply. Else C commits after this commit, and so does any claim of its
        reply, which reads this reopen and cancels the reply instead of posting it
        (``outbox.store.claims``: ``reopened``; ``outbox/reply_delivery.py``). A reopen of
        unknown time is not remembered: only its cancel applies (the limit the README
        states)."""
        intake_store.remember_reopen(conn, event.helpdesk, event.dialog_id, reopened_at, now)

    def cancel_on_reopen(
        self,
        conn: sa.Connection,
        event: DialogReopened,
        now: datetime,
        reopened_at: datetime | None,
    ) -> tuple[int, int]:
        """In the caller's transaction, begun after :meth:`remember_reopen` committed: cancel
        the dialog's waiting surveys for a reopen at ``reopened_at`` (None: unknown), and mark
        those it cannot cancel (in flight); how many were cancelled, and kept (their close is
        later). No lock: a close being recorded at this moment that this does not see is
        cancelled at its reply's claim (see :meth:`remember_reopen`)."""
        done = outbox_store.cancel_waiting(
            conn, event.helpdesk, event.dialog_id, now, reopened_at=reopened_at
        )
        left = outbox_store.kept_on_reopen(conn, event.helpdesk, event.dialog_id, reopened_at)
        return done, left

    def record_close(self, event: DialogClosed, *, digest: str | None = None) -> Outcome:
        """Store the survey for a close and queue its reply, unless it is a duplicate or
        skipped. ``digest`` (:func:`close_digest`) tells a retry of the close that a reopen
        or an erasure cancelled the survey of from a new close (``store.SAME_DELIVERY``).

        Returns once the close is committed (concurrent closes share one transaction: see
        :mod:`csat_hook.intake.recorder`).
        """
        now = self.clock()
        occurrence = (event.occurrence or "") if self.policy.per_dialog == "every_close" else ""
        token = survey_token(self.token_secret, event, now)
        body = self.recorder.record(
            event, token=token, now=now, occurrence=occurrence, digest=digest
        )
        if body.get("reason") == intake_store.REOPENED_AFTER_CLOSE:
            # The helpdesk says the dialog was reopened after this close (the reopen was
            # delivered first). Named as the kept-on-reopen line: no dialog, no sender's text.
            logger.info(
                "survey.skipped-reopened-after-close",
                extra={
                    "helpdesk": event.helpdesk,
                    "survey_id": body.get("survey_id"),
                    "reason": intake_store.REOPENED_AFTER_CLOSE,
                },
            )
        logger.info(
            "webhook.close",
            extra={
                "helpdesk": event.helpdesk,
                "dialog_id": event.dialog_id,
                "status": body["status"],
            },
        )
        return Outcome(body)
