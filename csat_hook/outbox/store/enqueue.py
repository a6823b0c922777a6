"""Queueing: replies for surveys and alert deliveries, cancelling replies not yet sent and the
deliveries of withdrawn alerts (queueing them again when the alert stands again).

Called by intake (a close queues a reply, a reopen cancels it) and by the alert engine.
Each function runs inside the caller's transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import ALERT
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import REPLY
from csat_hook.db.schema import SENDING
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.db.text import in_chunks
from csat_hook.db.text import length_of


@functools.cache
def _enqueue_stmt(dialect_name: str) -> Any:
    stmt = dialect_insert(dialect_name, outbox)
    return stmt.on_conflict_do_update(
        index_elements=["survey_id"],
        set_={
            "status": stmt.excluded.status,
            "attempts": 0,
            "next_attempt_at": stmt.excluded.next_attempt_at,
            "context": stmt.excluded.context,
            "lease_until": None,
            "claimed_by": None,
            "last_error": None,
            "last_http_status": None,
            "updated_at": stmt.excluded.updated_at,
            # An erasure's mark is about the attempt it found in flight, not a re-armed reply.
            "erased_at": None,
        },
    )


OUTBOX_COLUMNS = (
    "survey_id",
    "helpdesk",
    "dialog_id",
    "context",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)


def enqueue_replies(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue replies for surveys (or re-arm the queue rows of revived surveys)."""
    if rows:
        conn.execute(
            _enqueue_stmt(conn.dialect.name),
            [{name: row[name] for name in OUTBOX_COLUMNS} for row in rows],
        )


ALERT_COLUMNS = (
    "kind",
    "alert_id",
    "destination",
    "destination_kind",
    "delivery_key",
    "helpdesk",
    "dialog_id",
    "context",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "updated_at",
)


@functools.cache
def _enqueue_alert_stmt(dialect_name: str) -> Any:
    stmt = dialect_insert(dialect_name, outbox)
    return stmt.on_conflict_do_nothing(index_elements=["kind", "delivery_key"])


def enqueue_alerts(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue alert deliveries (``kind`` alert); one with a ``delivery_key`` already queued is
    left as it is, so enqueueing the same alert twice sends it once. A row may be queued
    ``cancelled`` (held by a destination's cap), with the reason in ``last_error``."""
    if rows:
        conn.execute(
            _enqueue_alert_stmt(conn.dialect.name),
            [{name: row.get(name) for name in ALERT_COLUMNS} | {"kind": ALERT} for row in rows],
        )


# A follow-up delivery sends an alert again to the receivers that refused it for now (an
# e-mail's recipients answered 4xx) while others took it: its key is its first delivery's key
# (``<alert id>:<destination>``), this mark and its generation (1, 2, ...). Destination names
# are lower-case letters, digits, - and _ (alerts/config.py), so the mark is never in one.
FOLLOW_UP_MARK = ":rcpt:"


def follow_up_key(delivery_key: str, generation: int) -> str:
    """The key of the ``generation``-th follow-up of the delivery keyed ``delivery_key`` (a
    first delivery's or a follow-up's), within the column's 191 characters."""
    base = delivery_key.partition(FOLLOW_UP_MARK)[0]
    suffix = f"{FOLLOW_UP_MARK}{generation}"
    limit = length_of(outbox.c.delivery_key) or 191
    return base[: limit - len(suffix)] + suffix


def follow_up_generation(delivery_key: str | None) -> int:
    """Which follow-up the delivery keyed ``delivery_key`` is; 0 for a first delivery (and a
    reply, which has no key)."""
    if not delivery_key:
        return 0
    _, mark, generation = delivery_key.rpartition(FOLLOW_UP_MARK)
    return int(generation) if mark and generation.isdecimal() else 0


def is_follow_up() -> Any:
    """SQL: the row is a follow-up delivery (for counts of one delivery per alert and
    destination, such as ``alerts.cap_per_hour``)."""
    return outbox.c.delivery_key.contains(FOLLOW_UP_MARK, autoescape=True)


# An alert delivery cancelled because its alert was withdrawn before it went out (the answer
# it was about edited so that its rule no longer matches it, or the configuration changed:
# ``alerts.cancel_reason``), or because its destination was taken off the alert's rule: its
# ``last_error`` is this prefix and the reason, which the Alerts tab shows and an edit back to
# the alerted score reads to queue it again (:func:`requeue_withdrawn`: a withdrawal's
# reasons only, never the delivery's own, such as those below).
WITHDRAWN_PREFIX = "cancelled: "
# Why a claim cancelled a delivery for what its destination is as configured then, not
# because its alert was withdrawn (outbox/alert_delivery.py), in the same ``cancelled: <it>;
# <why>`` form: a follow-up whose destination's kind changed (its receivers are the old
# kind's), and a destination that can never carry the alert (a note and an alert about no
# answer, or about a helpdesk it does not post in). The alert standing again does not queue
# them again (:func:`requeue_withdrawn`).
KIND_CHANGED = "kind_changed"
NOT_FOR_DESTINATION = "not_for_this_destination"
MAY_HAVE_ARRIVED = "an earlier attempt's outcome is unknown: it may have arrived"


def withdrawn_note(reason: str, *, may_have_arrived: bool = False) -> str:
    """The ``last_error`` of a delivery cancelled because its alert was withdrawn for
    ``reason``; ``may_have_arrived``: an earlier attempt's outcome is unknown (not looked up,
    or the destination cannot be asked), so the team may have it all the same."""
    note = WITHDRAWN_PREFIX + reason
    return f"{note}; {MAY_HAVE_ARRIVED}" if may_have_arrived else note


def withdrawn_reason(last_error: str | None) -> str | None:
    """The reason in a :func:`withdrawn_note`; None for any other ``last_error``."""
    if not last_error or not last_error.startswith(WITHDRAWN_PREFIX):
        return None
    return last_error.removeprefix(WITHDRAWN_PREFIX).partition(";")[0]


def cancel_withdrawn(
    conn: sa.Connection, alert_ids: Sequence[int], reason: str, now: datetime
) -> int:
    """Cancel the deliveries of the withdrawn alerts ``alert_ids`` that have not started to
    go out; return how many.

    ONE conditional UPDATE per chunk, on ``pending`` rows only: a row a worker has claimed
    (``sending``, under its lease) is never changed under it, whatever its claim's outcome
    will be; if that outcome is a retry, the worker's next claim sees the alert withdrawn and
    cancels it (``outbox/alert_delivery.py``). On PostgreSQL a claim racing this statement
    either took the row first (this statement then finds it ``sending`` and leaves it) or
    skips it while it is locked here. A pending row whose earlier attempt's outcome is
    unknown (``uncertain_since``) is left too: it may have arrived, and it is settled as its
    destination says (looked up, or recorded as sent, unconfirmed) before anything else."""
    return _update_deliveries(
        conn,
        alert_ids,
        [outbox.c.status == PENDING, outbox.c.uncertain_since.is_(None)],
        {"status": CANCELLED, "last_error": withdrawn_note(reason), "updated_at": now},
    )


def cancel_unrouted(
    conn: sa.Connection, alert_id: int, destinations: Sequence[str], reason: str, now: datetime
) -> int:
    """Cancel the deliveries of the alert ``alert_id`` to ``destinations`` (taken off its
    rule: ``reason``) that have not started to go out, under the guards of
    :func:`cancel_withdrawn`; return how many. The alert stands: its other deliveries go."""
    return _update_deliveries(
        conn,
        [alert_id],
        [
            outbox.c.destination.in_(list(destinations)),
            outbox.c.status == PENDING,
            outbox.c.uncertain_since.is_(None),
        ],
        {"status": CANCELLED, "last_error": withdrawn_note(reason), "updated_at": now},
    )


# The ``context`` key of an alert delivery whose destination was taken off the alert's rule
# while it could not be cancelled (:func:`mark_unrouted`): the reason, read at its next claim.
UNROUTED = "unrouted"


def mark_unrouted(
    conn: sa.Connection, alert_id: int, destinations: Sequence[str], reason: str
) -> int:
    """Mark the deliveries of the alert ``alert_id`` to ``destinations`` (taken off its rule:
    ``reason``) that :func:`cancel_unrouted` leaves, a worker's (``sending``) and those of
    unknown outcome, so that their next claim cancels them instead of sending: after the
    earlier attempt is settled as usual (found: sent); return how many were marked.

    Only their ``context`` changes (nothing else writes an alert delivery's after it is
    queued), never their status, lease or times: a worker's attempt ends as it ends (a
    follow-up it queues takes the mark over: outcomes.py). Marked for good: a destination
    put back on the rule does not send it, as a rule put back does not send what was
    cancelled."""
    rows = conn.execute(
        sa.select(outbox.c.id, outbox.c.context).where(
            outbox.c.kind == ALERT,
            outbox.c.alert_id == alert_id,
            outbox.c.destination.in_(list(destinations)),
            outbox.c.status.in_([PENDING, SENDING]),
        )
    ).all()
    marked = 0
    for row in rows:
        context = row.context if isinstance(row.context, dict) else {}
        if context.get(UNROUTED) == reason:
            continue  # marked already (an earlier run, another process)
        result = conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == row.id, outbox.c.status.in_([PENDING, SENDING]))
            .values(context={**context, UNROUTED: reason})
        )
        marked += int(result.rowcount or 0)
    return marked


def unrouted_reason(context: Any) -> str | None:
    """Why a delivery was taken off its alert's rule (:func:`mark_unrouted`); None if not."""
    reason = context.get(UNROUTED) if isinstance(context, dict) else None
    return reason if isinstance(reason, str) else None


def requeue_withdrawn(
    conn: sa.Connection, alert_ids: Sequence[int], reasons: Collection[str], now: datetime
) -> int:
    """Queue again, due now, the deliveries of ``alert_ids`` that were cancelled because the
    alert was withdrawn (the answer came back to the alerted score); return how many. The
    caller judges them against the rules as they are now, in the same transaction
    (alerts/engine.py: its recheck).

    An allow-list: ``reasons`` are the withdrawals of a whole alert (every
    ``alerts.cancel_reason``: ``alerts.records.WITHDRAWALS``), and a delivery is queued again
    only if its ``last_error`` is the :func:`withdrawn_note` of one of them, with or without
    ``may_have_arrived`` (its ``uncertain_since`` is kept, so that earlier attempt is settled
    before the alert is sent again), and it carries no :func:`mark_unrouted` mark. Every
    other cancelled delivery stays cancelled with its reason, whatever the configuration is
    now: held ones (``alerts.cap_per_hour``); one taken off the alert's rule
    (``destination_removed``: by the recheck, or by its claim through the mark); one marked
    taken off the rule whose claim cancelled it as withdrawn, the alert withdrawn by then
    too (the mark is for good); one a claim cancelled for what its destination was
    (:data:`NOT_FOR_DESTINATION`, :data:`KIND_CHANGED`). A rule or a destination put back
    does not send again what was cancelled; only the alert standing again undoes a
    withdrawal. A reason not listed (a new one, until it is) stays cancelled: an allow-list
    errs on the side of not sending."""
    if not reasons:
        return 0
    withdrawn = [
        condition
        for reason in sorted(reasons)
        for condition in (
            outbox.c.last_error == withdrawn_note(reason),
            # A note that goes on (``; <what may have arrived>``).
            outbox.c.last_error.startswith(withdrawn_note(reason) + ";", autoescape=True),
        )
    ]
    return _update_deliveries(
        conn,
        alert_ids,
        [
            outbox.c.status == CANCELLED,
            sa.or_(*withdrawn),
            # Not marked taken off the rule: the mark outlives the claim that read it.
            outbox.c.context[UNROUTED].as_string().is_(None),
        ],
        {"status": PENDING, "next_attempt_at": now, "last_error": None, "updated_at": now},
    )


def _update_deliveries(
    conn: sa.Connection,
    alert_ids: Sequence[int],
    where: Sequence[Any],
    values: dict[str, Any],
) -> int:
    """Set ``values`` on the deliveries of ``alert_ids`` that meet every ``where`` condition,
    one conditional UPDATE per chunk of ids; return how many rows changed."""
    changed = 0
    for chunk in in_chunks(alert_ids):
        result = conn.execute(
            sa.update(outbox)
            .where(outbox.c.kind == ALERT, outbox.c.alert_id.in_(chunk), *where)
            .values(**values)
        )
        changed += int(result.rowcount or 0)
    return changed


def cancel_waiting(
    conn: sa.Connection,
    helpdesk: str,
    dialog_id: str,
    now: datetime,
    *,
    reopened_at: datetime | None = None,
) -> int:
    """Cancel replies for a dialog that have not started to go out; return how many (alerts
    about the dialog are not replies and stay queued).

    ``reopened_at`` (the reopen's time, when known): only the replies of surveys whose close
    time (``surveys.closed_at``) is unknown or not later than it are cancelled. A survey of a
    close after the reopen (a reopen delivered late, or retried) stays queued. A close time
    equal to the survey's ``created_at`` counts as unknown: it is the receive time intake
    records when none of the close's times could be believed
    (``intake.storable.trusted_close_time``), the latest the close can have happened, not
    when it did, so it cannot tell that the close followed the reopen.
    """
    conditions = _waiting(helpdesk, dialog_id)
    if reopened_at is not None:
        later = _closed_after(helpdesk, dialog_id, reopened_at)
        conditions.append(outbox.c.survey_id.not_in(later))
    cancelled = (
        conn.execute(
            sa.update(outbox)
            .where(*conditions)
            .values(status=CANCELLED, updated_at=now, last_error=REOPENED_NOTE)
            .returning(outbox.c.survey_id)
        )
        .scalars()
        .all()
    )
    if cancelled:
        conn.execute(sa.update(surveys).where(surveys.c.id.in_(cancelled)).values(status=CANCELLED))
    _mark_reopened(conn, helpdesk, dialog_id, reopened_at or now)
    return len(cancelled)


# The ``context`` key of a reply whose dialog reopened while it could not be cancelled
# (:func:`cancel_waiting` leaves a reply being sent, and one whose earlier attempt's outcome
# is unknown): its next claim settles the earlier attempt by a look-up and posts nothing new
# (outbox/reply_delivery.py). A ``:`` keeps it apart from the vendors' context keys and the
# generic adapter's ``mapping.context`` names. Its value is the reopen's time.
REOPENED = "csat-hook:reopened"
REOPENED_NOTE = "dialog reopened before sending"


def _mark_reopened(
    conn: sa.Connection, helpdesk: str, dialog_id: str, reopened_at: datetime
) -> int:
    """Mark the dialog's replies that :func:`cancel_waiting` cannot cancel, a worker's
    (``sending``) and those of unknown outcome, so that their next claim does not post them
    into the reopened dialog (under the same reopen time rule: a reply of a close known to be
    later is left alone); return how many were marked. The mark is the reopen's time (its
    receive time when the helpdesk gave none): a later close takes it back
    (:func:`unmark_reopened`).

    Only their ``context`` changes, never their status, lease or times: an attempt in flight
    ends as it ends (sent is sent). Without the mark, a reply of unknown outcome that the
    look-up did not find was posted into the reopened dialog as a late survey."""
    query = sa.select(outbox.c.id, outbox.c.context).where(
        outbox.c.kind == REPLY,
        outbox.c.helpdesk == helpdesk,
        outbox.c.dialog_id == dialog_id,
        sa.or_(
            outbox.c.status == SENDING,
            sa.and_(outbox.c.status == PENDING, outbox.c.uncertain_since.is_not(None)),
        ),
    )
    query = query.where(outbox.c.survey_id.not_in(_closed_after(helpdesk, dialog_id, reopened_at)))
    mark = reopened_at.isoformat()
    marked = 0
    for row in conn.execute(query).all():
        context = row.context if isinstance(row.context, dict) else {}
        marked_at = _mark_time(context.get(REOPENED))
        if marked_at is not None and marked_at >= reopened_at:
            # The same reopen, or an older one delivered late: the later reopen's time is
            # kept (set back, a close between the two took the mark off).
            continue
        # Not on a reply an erasure emptied since the read (erased_at): the context read
        # would be written back, the erased values with it. Such a reply is never sent again.
        result = conn.execute(
            sa.update(outbox)
            .where(
                outbox.c.id == row.id,
                outbox.c.status.in_([PENDING, SENDING]),
                outbox.c.erased_at.is_(None),
            )
            .values(context={**context, REOPENED: mark})
        )
        marked += int(result.rowcount or 0)
    return marked


def unmark_reopened(
    conn: sa.Connection,
    helpdesk: str,
    dialog_id: str,
    closed_at: datetime,
    *,
    retry_of: tuple[str, datetime] | None = None,
) -> int:
    """Take the reopen's mark off the dialog's replies for a close at ``closed_at`` that
    found its survey already recorded (a ``duplicate``): the dialog closed again after the
    reopen, so the reply may go out as it would have; return how many. A close no later than
    the reopen (the first close's retry, delivered late) leaves the mark. A re-close in the
    window before the reply's next claim was otherwise left without its survey: the survey
    was neither cancelled (nothing to re-arm) nor sent.

    ``retry_of``: the close's body digest and the earliest time a survey of that digest is
    still within the retry window (intake's ``SAME_DELIVERY``): the reply of a survey whose
    close had that body, received since, keeps its mark; that close delivered again (dated
    by its receive time when the helpdesk names none) is no later close."""
    # Through the dialog's surveys (their key's index), not a scan of the outbox.
    dialog = sa.select(surveys.c.id).where(
        surveys.c.helpdesk == helpdesk, surveys.c.dialog_id == dialog_id
    )
    query = sa.select(outbox.c.id, outbox.c.context).where(
        outbox.c.survey_id.in_(dialog),
        outbox.c.kind == REPLY,
        outbox.c.status.in_([PENDING, SENDING]),
    )
    if retry_of is not None:
        digest, since = retry_of
        retried = sa.select(surveys.c.id).where(
            surveys.c.helpdesk == helpdesk,
            surveys.c.dialog_id == dialog_id,
            surveys.c.close_digest == digest,
            surveys.c.created_at > since,
        )
        query = query.where(outbox.c.survey_id.not_in(retried))
    rows = conn.execute(query).all()
    unmarked = 0
    for row in rows:
        context = row.context if isinstance(row.context, dict) else {}
        reopened = _mark_time(context.get(REOPENED))
        if reopened is None or closed_at <= reopened:
            continue
        left = {key: value for key, value in context.items() if key != REOPENED}
        result = conn.execute(  # never an erased context written back (_mark_reopened)
            sa.update(outbox)
            .where(outbox.c.id == row.id, outbox.c.erased_at.is_(None))
            .values(context=left)
        )
        unmarked += int(result.rowcount or 0)
    return unmarked


def _mark_time(value: Any) -> datetime | None:
    """The reopen time a mark holds (None: no mark; an unreadable one counts as now)."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)  # kept: a later close cannot be told
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def reopened_mark(context: Any) -> bool:
    """Whether a reply's dialog reopened while it could not be cancelled
    (:func:`_mark_reopened`), and closed no later since (:func:`unmark_reopened`)."""
    return isinstance(context, dict) and bool(context.get(REOPENED))


def kept_on_reopen(
    conn: sa.Connection, helpdesk: str, dialog_id: str, reopened_at: datetime | None
) -> int:
    """How many of the dialog's replies that have not started to go out :func:`cancel_waiting`
    leaves for a reopen at ``reopened_at``: their close is known to be later (none when the
    reopen's time is unknown)."""
    if reopened_at is None:
        return 0
    query = sa.select(sa.func.count()).where(
        *_waiting(helpdesk, dialog_id),
        outbox.c.survey_id.in_(_closed_after(helpdesk, dialog_id, reopened_at)),
    )
    return int(conn.execute(query).scalar_one())


def _waiting(helpdesk: str, dialog_id: str) -> list[sa.ColumnElement[bool]]:
    """The dialog's replies that have not started to go out. A pending reply whose earlier
    attempt's outcome is unknown (``uncertain_since``) has: it may be in the dialog, and it
    is settled by a look-up first (as :func:`cancel_withdrawn` leaves an alert's). Cancelled
    by a reopen, it was recorded as never sent, and the close after the reopen armed its
    survey again under a new reference, which the look-up then did not find: the survey
    was posted twice into the dialog."""
    return [
        outbox.c.kind == REPLY,
        outbox.c.helpdesk == helpdesk,
        outbox.c.dialog_id == dialog_id,
        outbox.c.status == PENDING,
        outbox.c.uncertain_since.is_(None),
    ]


def _closed_after(helpdesk: str, dialog_id: str, reopened_at: datetime) -> sa.Select[Any]:
    """The dialog's surveys whose close is known to be later than ``reopened_at`` (a close
    time equal to the survey's ``created_at`` is not known: see :func:`cancel_waiting`)."""
    return sa.select(surveys.c.id).where(
        surveys.c.helpdesk == helpdesk,
        surveys.c.dialog_id == dialog_id,
        surveys.c.closed_at > reopened_at,
        surveys.c.closed_at != surveys.c.created_at,
    )
