"""Recording an attempt's outcome: sent (with its survey), back to pending for a retry,
failed, or (an alert withdrawn before it went out) cancelled, not sent. A worker only
finishes its own claim (``claimed_by``), so a late answer after a takeover can never
overwrite the new owner's state. The one exception writes no owner's
state: a reply that went out is recorded sent while the row, taken over, waits unclaimed to
be settled (:func:`mark_sent_after_takeover`), so it is neither looked up nor sent again.

Every text here may come from a vendor's answer (a message id, an agent the look-up found,
an error's reason): each is made storable and fitted to its column first (``db/text.py``).
A value PostgreSQL refuses would leave a reply that went out unrecorded, to be sent again.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from csat_hook.db.frozen import driver_rows
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import FAILED
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import QUEUED
from csat_hook.db.schema import SENDING
from csat_hook.db.schema import SENT
from csat_hook.db.schema import UTCDateTime
from csat_hook.db.schema import alerts
from csat_hook.db.schema import naive_utc_iso
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.db.text import fitted
from csat_hook.db.text import storable
from csat_hook.outbox.store.enqueue import UNROUTED
from csat_hook.outbox.store.enqueue import enqueue_alerts
from csat_hook.outbox.store.enqueue import unrouted_reason

# Why a reply an erasure marked while it was being sent (``outbox.erased_at``) ended
# cancelled: its attempt did not end sent, and a retry would send it to the customer whose
# data is erased (erasure/store.py cancels one waiting to be sent the same way).
ERASED_NOTE = "customer data erased while it was being sent: not sent again"


# How long an alert delivery the worker could not decide on waits to be claimed again
# (mark_cancelled): the alert stood again, or a sync was changing it.
UNDECIDED_WAIT = timedelta(seconds=1)


def _owned(outbox_id: int, worker_id: str) -> Any:
    # A worker only finishes its own claim: if its lease expired and another worker took the
    # row over, the late answer must not overwrite the new owner's state.
    return sa.and_(
        outbox.c.id == outbox_id, outbox.c.status == SENDING, outbox.c.claimed_by == worker_id
    )


def _survey_sent_values(with_link: bool) -> dict[str, Any]:
    values: dict[str, Any] = {"status": SENT, "sent_at": sa.bindparam("sent_now")}
    if with_link:
        values |= {
            # An id the look-up found for a close that named no agent; never one the close gave.
            "agent_id": sa.func.coalesce(
                surveys.c.agent_id, sa.bindparam("agent_id", type_=surveys.c.agent_id.type)
            ),
            "agent_name": sa.bindparam("agent_name"),
            "agent_email": sa.bindparam("agent_email"),
            "link": sa.bindparam("link"),
        }
    return values


@functools.cache
def _mark_sent_stmts(settling: bool = False) -> tuple[Any, Any, Any]:
    # Built once: every delivered reply runs them. ``settling``: the row is no longer this
    # worker's claim but waits, taken over, to be settled (mark_sent_after_takeover), or was
    # failed while its outcome was unknown (the settle claim that could not tell).
    outbox_id = outbox.c.id == sa.bindparam("outbox_id")
    if settling:
        which = sa.and_(
            outbox_id,
            outbox.c.status.in_((PENDING, FAILED)),
            outbox.c.uncertain_since.is_not(None),
        )
    else:
        which = sa.and_(
            outbox_id,
            outbox.c.status == SENDING,
            outbox.c.claimed_by == sa.bindparam("worker_id"),
        )
    values: dict[str, Any] = {
        "status": SENT,
        "sent_at": sa.bindparam("sent_now"),
        "updated_at": sa.bindparam("updated_now"),
        "lease_until": None,
        "external_id": sa.bindparam("external_id"),
        # The text as sent holds the customer's name: never kept once erased.
        "body": unless_erased(sa.bindparam("body"), None),
        "last_error": sa.bindparam("note"),
        # The status of an earlier attempt's refusal is not this one's (a 2xx).
        "last_http_status": None,
    }
    if settling:
        values["claimed_by"] = sa.bindparam("worker_id")  # who sent it
    done = (
        sa.update(outbox).where(which).values(**values).returning(outbox.c.id, outbox.c.survey_id)
    )
    survey = surveys.c.id == sa.bindparam("survey_id")
    plain = sa.update(surveys).where(survey).values(_survey_sent_values(False))
    with_agent = sa.update(surveys).where(survey).values(_survey_sent_values(True))
    return done, plain, with_agent


@dataclass(frozen=True)
class SentMark:
    """One delivered reply or alert, as :func:`mark_sent` records it (see there)."""

    outbox_id: int
    now: datetime
    external_id: str | None
    body: str | None
    agent_id: str | None = None
    agent_name: str | None = None
    agent_email: str | None = None
    link: str | None = None
    note: str | None = None

    def fitted(self) -> SentMark:
        """This mark with each text storable and fitted to its column (``db/text.py``)."""
        return SentMark(
            self.outbox_id,
            self.now,
            external_id=fitted(outbox.c.external_id, self.external_id),
            body=storable(self.body) if self.body is not None else None,
            agent_id=fitted(surveys.c.agent_id, self.agent_id),
            agent_name=fitted(surveys.c.agent_name, self.agent_name),
            agent_email=fitted(surveys.c.agent_email, self.agent_email),
            link=storable(self.link) if self.link is not None else None,
            note=fitted(outbox.c.last_error, self.note),
        )


def mark_sent(
    conn: sa.Connection,
    outbox_id: int,
    worker_id: str,
    now: datetime,
    *,
    external_id: str | None,
    body: str | None,
    agent_id: str | None = None,
    agent_name: str | None = None,
    agent_email: str | None = None,
    link: str | None = None,
    note: str | None = None,
) -> bool:
    """Record a delivered reply (and the agent and link it went out with) or alert; False when
    this worker's claim was taken over meanwhile. ``agent_id`` is stored only where the survey
    had none (an id the agent look-up found). ``note`` is kept in ``last_error`` for operators
    (found by a look-up, sent again without one, not sent again)."""
    mark = SentMark(
        outbox_id, now, external_id, body, agent_id, agent_name, agent_email, link, note
    )
    return mark_sent_many(conn, worker_id, [mark])[0]


def mark_sent_many(conn: sa.Connection, worker_id: str, marks: Sequence[SentMark]) -> list[bool]:
    """:func:`mark_sent` for each of ``marks`` (this worker's claims), in order; on PostgreSQL
    in ONE statement, atomic on its own (run it in autocommit to save BEGIN and COMMIT)."""
    fitted_marks = [mark.fitted() for mark in marks]
    if conn.dialect.name != "postgresql":
        return [_mark_sent_one(conn, worker_id, mark) for mark in fitted_marks]
    if not fitted_marks:
        return []
    records = [
        {
            "outbox_id": m.outbox_id,
            "sent_at": naive_utc_iso(m.now),
            "external_id": m.external_id,
            "body": m.body,
            "note": m.note,
            "with_link": m.link is not None,
            "agent_id": m.agent_id,
            "agent_name": m.agent_name,
            "agent_email": m.agent_email,
            "link": m.link,
        }
        for m in fitted_marks
    ]
    params = {
        # ASCII only, as the closes' rows (intake/store.py): every character travels as an
        # escape PostgreSQL reads back unchanged.
        "rows": json.dumps(records, ensure_ascii=True, separators=(",", ":")),
        "worker_id": worker_id,
    }
    done = {row[0] for row in driver_rows(conn, _mark_sent_many_sql(), params)}
    return [m.outbox_id in done for m in marks]


def mark_sent_and_follow_up(
    conn: sa.Connection, worker_id: str, mark: SentMark, follow_up: Mapping[str, Any]
) -> bool:
    """:func:`mark_sent` for one alert and, when it was still this worker's claim, queue
    ``follow_up`` (an outbox row, :data:`~csat_hook.outbox.store.enqueue.ALERT_COLUMNS`: the
    alert again to the receivers that refused it for now) in the same transaction: the row
    is sent with its follow-up, or neither is recorded (and the alert is sent again)."""
    done = mark_sent_many(conn, worker_id, [mark])[0]
    if done:
        _queue_follow_up(conn, mark.outbox_id, follow_up)
    return done


def mark_sent_after_takeover(
    conn: sa.Connection,
    worker_id: str,
    mark: SentMark,
    follow_up: Mapping[str, Any] | None = None,
) -> bool:
    """Record a reply or alert that ``worker_id`` sent while its claim was taken over (its
    heartbeat could not reach the database): as :func:`mark_sent`, but only while the row
    waits, ``pending`` with its outcome unknown, to be settled, so nobody is sending or
    looking it up now, or once it was ``failed`` with its outcome unknown (the new owner's
    settle claim could not tell, and gave up: left failed, it was listed as not sent, and
    ``outbox retry`` sent it again); ``claimed_by`` names the worker that sent it. An alert's
    ``follow_up`` is queued with it, as :func:`mark_sent_and_follow_up` does. False when
    another worker holds the row, or it ended otherwise (sent, cancelled, failed with its
    outcome known)."""
    done = _mark_sent_one(conn, worker_id, mark.fitted(), settling=True)
    if done and follow_up is not None:
        _queue_follow_up(conn, mark.outbox_id, follow_up)
    return done


def _queue_follow_up(conn: sa.Connection, outbox_id: int, follow_up: Mapping[str, Any]) -> None:
    """Queue ``follow_up``, the alert again from the delivery ``outbox_id`` just marked sent.
    A delivery taken off its alert's rule while this attempt was on its way
    (:func:`~.enqueue.mark_unrouted`, read now: the worker's copy of the row predates it)
    passes its mark on: the follow-up's claim cancels it instead of sending it there."""
    context = conn.execute(sa.select(outbox.c.context).where(outbox.c.id == outbox_id)).scalar()
    reason = unrouted_reason(context)
    if reason is not None:
        follow_up = {**follow_up, "context": {**(follow_up.get("context") or {}), UNROUTED: reason}}
    enqueue_alerts(conn, [follow_up])


def _mark_sent_one(
    conn: sa.Connection, worker_id: str, mark: SentMark, *, settling: bool = False
) -> bool:
    # SQLite (and a row settled after a takeover): the outbox row, then its survey (a
    # reply's; an alert has none).
    done, plain, with_agent = _mark_sent_stmts(settling)
    params = {
        "outbox_id": mark.outbox_id,
        "worker_id": worker_id,
        "sent_now": mark.now,
        "updated_now": mark.now,
        "external_id": mark.external_id,
        "body": mark.body,
        "note": mark.note,
    }
    row = conn.execute(done, params).first()
    if row is None:
        return False
    if row.survey_id is None:  # an alert: no survey to update
        return True
    survey = {"survey_id": row.survey_id, "sent_now": mark.now}
    if mark.link is None:
        conn.execute(plain, survey)
    else:
        agent = {
            "agent_id": mark.agent_id,
            "agent_name": mark.agent_name,
            "agent_email": mark.agent_email,
            "link": mark.link,
        }
        conn.execute(with_agent, {**survey, **agent})
    return True


@functools.cache
def _mark_sent_many_sql() -> str:
    # PostgreSQL: the outbox rows and their surveys in ONE statement (the surveys' UPDATE in a
    # data-modifying CTE; the outbox ids returned where the claim was still this worker's),
    # the rows as ONE JSON parameter (json_to_recordset): the statement text is the same
    # whatever the batch's size, prepared once per connection, and a batch of four costs
    # half the client CPU per reply of four statements in a transaction. Only the schema's
    # constants go into the text; every value is a bound parameter.
    with_link = "CASE WHEN d.with_link THEN {} ELSE s.{} END"
    agent = ", ".join(
        f"{name} = " + with_link.format(value, name)
        for name, value in (
            ("agent_id", "coalesce(s.agent_id, d.agent_id)"),  # never replaces the close's
            ("agent_name", "d.agent_name"),
            ("agent_email", "d.agent_email"),
            ("link", "d.link"),
        )
    )
    return (
        "WITH v AS (SELECT * FROM json_to_recordset(%(rows)s::json) AS v(outbox_id bigint,"  # noqa: S608
        " sent_at timestamp, external_id text, body text, note text, with_link boolean,"
        " agent_id text, agent_name text, agent_email text, link text)),"
        f" done AS (UPDATE outbox AS o SET status = '{SENT}', sent_at = v.sent_at,"
        " updated_at = v.sent_at, lease_until = NULL, external_id = v.external_id,"
        " body = CASE WHEN o.erased_at IS NULL THEN v.body END, last_error = v.note,"
        " last_http_status = NULL"
        " FROM v WHERE o.id = v.outbox_id"
        f" AND o.status = '{SENDING}' AND o.claimed_by = %(worker_id)s"
        " RETURNING o.id, o.survey_id, v.sent_at, v.with_link, v.agent_id, v.agent_name,"
        " v.agent_email, v.link),"
        # A data-modifying CTE runs to completion whether or not the query reads it.
        f" touched AS (UPDATE surveys AS s SET status = '{SENT}', sent_at = d.sent_at, {agent}"
        " FROM done AS d WHERE s.id = d.survey_id RETURNING s.id)"
        " SELECT id FROM done"
    )


def reschedule(
    conn: sa.Connection,
    outbox_id: int,
    worker_id: str,
    now: datetime,
    *,
    next_attempt_at: datetime,
    error: str,
    http_status: int | None,
    uncertain_since: datetime | None = None,
    destination_kind: str | None = None,
) -> bool:
    """Put a claimed reply back to pending for another attempt at ``next_attempt_at``.

    ``uncertain_since`` (the start of this attempt) marks an attempt whose outcome is unknown;
    the earliest such time is kept, so the look-up covers every attempt that may have landed.
    ``destination_kind``: an alert delivery attempted as a destination of another kind than
    the row's (the kind changed under its name): the row takes it, and ``uncertain_since``
    is this attempt's alone (None: known), an earlier attempt's being the old kind's, which
    the new one can neither look up nor settle.
    """
    values: dict[str, Any] = {
        # Erased while it was being sent: cancelled, never sent again (see ERASED_NOTE).
        "status": unless_erased(PENDING, CANCELLED),
        "next_attempt_at": next_attempt_at,
        "lease_until": None,
        "claimed_by": None,
        "last_error": unless_erased(fitted(outbox.c.last_error, error), ERASED_NOTE),
        "last_http_status": http_status,
        "updated_at": now,
    }
    if destination_kind is not None:
        values["destination_kind"] = destination_kind
        values["uncertain_since"] = uncertain_since
    elif uncertain_since is not None:
        values["uncertain_since"] = sa.func.coalesce(
            outbox.c.uncertain_since,
            sa.bindparam("attempt_started", uncertain_since, type_=UTCDateTime()),
        )
    row = conn.execute(
        sa.update(outbox)
        .where(_owned(outbox_id, worker_id))
        .values(**values)
        .returning(outbox.c.status, outbox.c.survey_id)
    ).first()
    if row is None:
        return False
    if row.status == CANCELLED:
        cancel_surveys(conn, [row.survey_id])
    return True


def unless_erased(value: Any, erased: Any) -> Any:
    """``value``, or ``erased`` for a row an erasure marked while it was being sent: what
    each way a claim ends (sent, rescheduled, failed, taken over: workers.py) records."""
    return sa.case((outbox.c.erased_at.is_(None), value), else_=erased)


def cancel_surveys(conn: sa.Connection, ids: Sequence[int | None]) -> None:
    """The surveys ``ids`` still queued, cancelled: their reply was, erased while it was being
    sent (a failed one stays failed, as the erasure leaves a failed reply's survey)."""
    wanted = [ident for ident in ids if ident is not None]
    if wanted:
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.id.in_(wanted), surveys.c.status == QUEUED)
            .values(status=CANCELLED)
        )


def mark_reply_cancelled(
    conn: sa.Connection,
    outbox_id: int,
    worker_id: str,
    now: datetime,
    *,
    note: str,
    settled: bool,
) -> bool:
    """Cancel a claimed reply, not posted, because its dialog reopened while it could not be
    cancelled (:func:`~.enqueue.cancel_waiting`'s mark), and its survey with it; False when
    the claim is no longer this worker's.

    ``settled``: a look-up found no earlier attempt in the dialog, so ``uncertain_since`` is
    cleared (a later close that re-arms the survey posts it without looking for this one).
    Otherwise it is kept: the earlier attempt may have arrived."""
    values: dict[str, Any] = {
        "status": CANCELLED,
        "lease_until": None,
        "last_error": unless_erased(fitted(outbox.c.last_error, note), ERASED_NOTE),
        "last_http_status": None,
        "updated_at": now,
    }
    if settled:
        values["uncertain_since"] = None
    row = conn.execute(
        sa.update(outbox)
        .where(_owned(outbox_id, worker_id))
        .values(**values)
        .returning(outbox.c.survey_id)
    ).first()
    if row is None:
        return False
    cancel_surveys(conn, [row.survey_id])
    return True


def mark_cancelled(
    conn: sa.Connection,
    outbox_id: int,
    alert_id: int,
    worker_id: str,
    now: datetime,
    *,
    note: str,
    unrouted: bool = False,
) -> bool | None:
    """Cancel a claimed alert delivery, not sent, because its alert is withdrawn
    (``alerts.cancel_reason``; ``note`` says why, :func:`~.enqueue.withdrawn_note`), or
    (``unrouted``) because the delivery itself is marked taken off the alert's rule
    (:func:`~.enqueue.mark_unrouted`): a mark nothing takes back, so the alert is not read.

    The alert is read again first, under a share lock taken without waiting (PostgreSQL): an
    alert a sync is changing right now (the answer coming back to the alerted score, whose
    sync then queues the alert's cancelled deliveries again) is not decided on from what was
    read at the claim. Still withdrawn: the row is cancelled (True). Not withdrawn any more,
    or locked: the row goes back to ``pending``, due after :data:`UNDECIDED_WAIT` (not at
    once: a sync holding the alert would have it claimed again and again until it commits),
    its claim not counted as an attempt (nothing was sent), and its next claim reads the
    alert again (None). False when the claim is no longer this worker's. Run it in a
    transaction (the lock lasts until its end)."""
    withdrawn = unrouted
    if not withdrawn:
        still = conn.execute(
            sa.select(alerts.c.cancel_reason)
            .where(alerts.c.id == alert_id)
            .with_for_update(read=True, skip_locked=True)
        ).first()
        withdrawn = still is not None and still.cancel_reason is not None
    values: dict[str, Any] = {"lease_until": None, "updated_at": now}
    if withdrawn:
        values |= {"status": CANCELLED, "last_error": fitted(outbox.c.last_error, note)}
    else:
        values |= {
            "status": PENDING,
            "claimed_by": None,
            "next_attempt_at": now + UNDECIDED_WAIT,
            "attempts": outbox.c.attempts - 1,
        }
    row = conn.execute(
        sa.update(outbox)
        .where(_owned(outbox_id, worker_id))
        .values(**values)
        .returning(outbox.c.id)
    ).first()
    if row is None:
        return False
    return True if withdrawn else None


def mark_failed(
    conn: sa.Connection,
    outbox_id: int,
    worker_id: str | None,
    now: datetime,
    *,
    error: str,
    http_status: int | None,
) -> bool:
    where = _owned(outbox_id, worker_id) if worker_id else outbox.c.id == outbox_id
    row = conn.execute(
        sa.update(outbox)
        .where(where)
        .values(
            # Erased while it was being sent: cancelled, so `outbox retry` never sends it.
            status=unless_erased(FAILED, CANCELLED),
            lease_until=None,
            last_error=unless_erased(fitted(outbox.c.last_error, error), ERASED_NOTE),
            last_http_status=http_status,
            updated_at=now,
        )
        .returning(outbox.c.id, outbox.c.survey_id)
    ).first()
    if row is None:
        return False
    if row.survey_id is not None:
        conn.execute(sa.update(surveys).where(surveys.c.id == row.survey_id).values(status=FAILED))
    return True
