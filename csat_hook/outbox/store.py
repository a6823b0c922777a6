"""Every statement the outbox runs: queueing replies, claiming them with a lease, recording
outcomes, and what operators list and requeue.

Each function takes a :class:`sqlalchemy.Connection` first and runs inside the caller's
transaction. A worker only finishes its own claim (``claimed_by``), so a late answer after a
takeover can never overwrite the new owner's state.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import FAILED
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import SENDING
from csat_hook.db.schema import SENT
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys

NOTIFY_CHANNEL = "csat_hook_outbox"


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


def notify_workers(conn: sa.Connection) -> None:
    """Wake delivery workers in other processes (PostgreSQL LISTEN/NOTIFY, sent on commit)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, "")))


def cancel_waiting(conn: sa.Connection, helpdesk: str, dialog_id: str, now: datetime) -> int:
    """Cancel replies for a dialog that have not started to go out; return how many."""
    cancelled = (
        conn.execute(
            sa.update(outbox)
            .where(
                outbox.c.helpdesk == helpdesk,
                outbox.c.dialog_id == dialog_id,
                outbox.c.status == PENDING,
            )
            .values(status=CANCELLED, updated_at=now, last_error="dialog reopened before sending")
            .returning(outbox.c.survey_id)
        )
        .scalars()
        .all()
    )
    if cancelled:
        conn.execute(sa.update(surveys).where(surveys.c.id.in_(cancelled)).values(status=CANCELLED))
    return len(cancelled)


@functools.cache
def _claim_stmt() -> Any:
    # Built once: the worker claims on every wake-up, and building this statement costs more
    # than running it.
    now: Any = sa.bindparam("now")
    lease_until: Any = sa.bindparam("lease_until")

    def due(table: Any) -> Any:
        return sa.or_(
            sa.and_(table.c.status == PENDING, table.c.next_attempt_at <= now),
            sa.and_(table.c.status == SENDING, table.c.lease_until < now),
        )

    # A CTE is evaluated once; PostgreSQL may re-run an `IN (... LIMIT ... FOR UPDATE SKIP
    # LOCKED)` subquery for every row, which claims far more than `limit` rows.
    candidate = outbox.alias("candidate")
    picked = (
        sa.select(candidate.c.id)
        .where(due(candidate))
        .order_by(candidate.c.next_attempt_at)
        .limit(sa.bindparam("limit"))
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    return (
        sa.update(outbox)
        .where(outbox.c.id == picked.c.id, due(outbox))
        .values(
            status=SENDING,
            claimed_by=sa.bindparam("worker_id"),
            lease_until=lease_until,
            attempts=outbox.c.attempts + 1,
            updated_at=now,
        )
        .returning(*outbox.c)
    )


def claim_due(
    conn: sa.Connection, worker_id: str, now: datetime, lease_until: datetime, limit: int
) -> list[sa.Row[Any]]:
    """Claim up to ``limit`` due replies for this worker and count the attempt.

    Due means pending with ``next_attempt_at <= now``, or being sent by a worker whose lease
    has expired (it crashed or hung). On PostgreSQL, rows locked by a concurrent claim are
    skipped, so claims never overlap; SQLite serialises writers, which gives the same result.
    """
    return list(
        conn.execute(
            _claim_stmt(),
            {"now": now, "lease_until": lease_until, "limit": limit, "worker_id": worker_id},
        ).all()
    )


def surveys_by_id(conn: sa.Connection, ids: Sequence[int]) -> dict[int, sa.Row[Any]]:
    """The survey rows of claimed replies, in one query."""
    if not ids:
        return {}
    rows = conn.execute(sa.select(surveys).where(surveys.c.id.in_(list(ids))))
    return {row.id: row for row in rows}


def next_due_at(conn: sa.Connection) -> datetime | None:
    """When the next reply becomes due (pending, or a lease that will expire), if any."""
    # One round trip; each minimum is read from its own index.
    pending = (
        sa.select(sa.func.min(outbox.c.next_attempt_at))
        .where(outbox.c.status == PENDING)
        .scalar_subquery()
    )
    leased = (
        sa.select(sa.func.min(outbox.c.lease_until))
        .where(outbox.c.status == SENDING)
        .scalar_subquery()
    )
    row = conn.execute(sa.select(pending.label("pending"), leased.label("leased"))).one()
    present = [t for t in (row.pending, row.leased) if t is not None]
    return min(present) if present else None


def _owned(outbox_id: int, worker_id: str) -> Any:
    # A worker only finishes its own claim: if its lease expired and another worker took the
    # row over, the late answer must not overwrite the new owner's state.
    return sa.and_(
        outbox.c.id == outbox_id, outbox.c.status == SENDING, outbox.c.claimed_by == worker_id
    )


@functools.cache
def _mark_sent_stmts() -> tuple[Any, Any, Any]:
    # Built once: every delivered reply runs them.
    owned = sa.and_(
        outbox.c.id == sa.bindparam("outbox_id"),
        outbox.c.status == SENDING,
        outbox.c.claimed_by == sa.bindparam("worker_id"),
    )
    done = (
        sa.update(outbox)
        .where(owned)
        .values(
            status=SENT,
            sent_at=sa.bindparam("sent_now"),
            updated_at=sa.bindparam("updated_now"),
            lease_until=None,
            external_id=sa.bindparam("external_id"),
            body=sa.bindparam("body"),
            last_error=None,
        )
        .returning(outbox.c.survey_id)
    )
    survey = surveys.c.id == sa.bindparam("survey_id")
    plain = sa.update(surveys).where(survey).values(status=SENT, sent_at=sa.bindparam("sent_now"))
    with_agent = (
        sa.update(surveys)
        .where(survey)
        .values(
            status=SENT,
            sent_at=sa.bindparam("sent_now"),
            agent_name=sa.bindparam("agent_name"),
            agent_email=sa.bindparam("agent_email"),
            link=sa.bindparam("link"),
        )
    )
    return done, plain, with_agent


def mark_sent(
    conn: sa.Connection,
    outbox_id: int,
    worker_id: str,
    now: datetime,
    *,
    external_id: str | None,
    body: str,
    agent_name: str | None = None,
    agent_email: str | None = None,
    link: str | None = None,
) -> bool:
    """Record a delivered reply (and the agent and link it went out with); False when this
    worker's claim was taken over meanwhile."""
    done, plain, with_agent = _mark_sent_stmts()
    survey_id = conn.execute(
        done,
        {
            "outbox_id": outbox_id,
            "worker_id": worker_id,
            "sent_now": now,
            "updated_now": now,
            "external_id": external_id,
            "body": body,
        },
    ).scalar()
    if survey_id is None:
        return False
    if link is None:
        conn.execute(plain, {"survey_id": survey_id, "sent_now": now})
    else:
        conn.execute(
            with_agent,
            {
                "survey_id": survey_id,
                "sent_now": now,
                "agent_name": agent_name,
                "agent_email": agent_email,
                "link": link,
            },
        )
    return True


def reschedule(
    conn: sa.Connection,
    outbox_id: int,
    worker_id: str,
    now: datetime,
    *,
    next_attempt_at: datetime,
    error: str,
    http_status: int | None,
) -> bool:
    result = conn.execute(
        sa.update(outbox)
        .where(_owned(outbox_id, worker_id))
        .values(
            status=PENDING,
            next_attempt_at=next_attempt_at,
            lease_until=None,
            claimed_by=None,
            last_error=error[:500],
            last_http_status=http_status,
            updated_at=now,
        )
    )
    return result.rowcount == 1


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
    survey_id = conn.execute(
        sa.update(outbox)
        .where(where)
        .values(
            status=FAILED,
            lease_until=None,
            last_error=error[:500],
            last_http_status=http_status,
            updated_at=now,
        )
        .returning(outbox.c.survey_id)
    ).scalar()
    if survey_id is None:
        return False
    conn.execute(sa.update(surveys).where(surveys.c.id == survey_id).values(status=FAILED))
    return True
