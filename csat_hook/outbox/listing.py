"""What operators see and do with the queue: list replies and alert deliveries with their last
error, count them by status, requeue failed ones (``csat-hook outbox``, ``GET /api/outbox``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from csat_hook.db.schema import FAILED
from csat_hook.db.schema import OUTBOX_STATUSES
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import QUEUED
from csat_hook.db.schema import REPLY
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.db.text import in_chunks


def list_outbox(
    conn: sa.Connection,
    *,
    statuses: Sequence[str] | None = None,
    limit: int = 50,
    kinds: Sequence[str] | None = None,
) -> list[Any]:
    """Newest first, a reply joined with its survey's agent snapshot; an alert delivery names
    its destination, alert and key (a follow-up's says which one it is:
    :func:`~csat_hook.outbox.store.follow_up_generation`)."""
    stmt = (
        sa.select(
            outbox.c.id,
            outbox.c.kind,
            outbox.c.destination,
            outbox.c.alert_id,
            outbox.c.delivery_key,
            outbox.c.helpdesk,
            outbox.c.dialog_id,
            outbox.c.status,
            outbox.c.attempts,
            outbox.c.next_attempt_at,
            outbox.c.last_error,
            outbox.c.last_http_status,
            outbox.c.created_at,
            outbox.c.sent_at,
            outbox.c.uncertain_since,
            surveys.c.agent_id,
            surveys.c.agent_name,
        )
        .outerjoin(surveys, surveys.c.id == outbox.c.survey_id)
        .order_by(outbox.c.id.desc())
        .limit(limit)
    )
    if statuses:
        stmt = stmt.where(outbox.c.status.in_(statuses))
    if kinds:
        stmt = stmt.where(outbox.c.kind.in_(kinds))
    return list(conn.execute(stmt).all())


def requeue(conn: sa.Connection, now: datetime, *, ids: Sequence[int] | None = None) -> list[int]:
    """Put failed replies and alert deliveries back in the queue with a fresh attempt budget;
    the ids requeued."""
    update = (
        sa.update(outbox)
        .where(outbox.c.status == FAILED)
        .values(status=PENDING, attempts=0, next_attempt_at=now, updated_at=now)
        .returning(outbox.c.id, outbox.c.kind, outbox.c.survey_id)
    )
    # Every IN list at most IN_CHUNK long: after a long outage every reply may have failed,
    # and one list of them all passed the 65,535 parameters PostgreSQL takes in a statement
    # (SQLite takes 250,000): nothing was requeued there, everything on SQLite.
    if ids:
        rows = [
            row
            for chunk in in_chunks(ids)
            for row in conn.execute(update.where(outbox.c.id.in_(chunk)))
        ]
    else:
        rows = list(conn.execute(update).all())
    survey_ids = [row.survey_id for row in rows if row.kind == REPLY and row.survey_id is not None]
    for chunk in in_chunks(survey_ids):
        conn.execute(sa.update(surveys).where(surveys.c.id.in_(chunk)).values(status=QUEUED))
    return [row.id for row in rows]


def requeue_named(
    conn: sa.Connection, now: datetime, ids: Sequence[int]
) -> tuple[list[int], dict[int, str]]:
    """Requeue those of ``ids`` that failed (:func:`requeue`): the ids requeued, and the status
    of each other one in the outbox (an id in neither is not there).

    Both come from one read of the rows, which stay locked (``FOR UPDATE`` on PostgreSQL; on
    SQLite the transaction holds the write lock) until the caller's transaction ends, and only
    the rows that read found failed are updated: a row changing status meanwhile can neither
    be requeued unreported nor be reported with a status contradicting its fate.
    """
    read = sa.select(outbox.c.id, outbox.c.status).order_by(outbox.c.id).with_for_update()
    # One lock order for concurrent callers: the ids ascending, a chunk at a time.
    rows = [
        row
        for chunk in in_chunks(sorted(set(ids)))
        for row in conn.execute(read.where(outbox.c.id.in_(chunk)))
    ]
    failed = [row.id for row in rows if row.status == FAILED]
    requeued = requeue(conn, now, ids=failed) if failed else []
    return requeued, {row.id: row.status for row in rows if row.id not in requeued}


def alerts_among(conn: sa.Connection, ids: Sequence[int]) -> int:
    """How many of ``ids`` are alert deliveries (the others are survey replies)."""
    count = sa.select(sa.func.count()).where(outbox.c.kind != REPLY)
    return sum(  # IN lists of IN_CHUNK, as requeue's: ids may outnumber a statement's parameters
        int(conn.execute(count.where(outbox.c.id.in_(chunk))).scalar_one())
        for chunk in in_chunks(ids)
    )


def outbox_counts(conn: sa.Connection, *, kinds: Sequence[str] | None = None) -> dict[str, int]:
    """Rows per status, of these ``kinds`` only (None: every kind), as a listing of the same
    kinds shows them."""
    stmt = sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
    if kinds:
        stmt = stmt.where(outbox.c.kind.in_(kinds))
    rows = conn.execute(stmt).all()
    counts = dict.fromkeys(OUTBOX_STATUSES, 0)
    counts.update({status: int(n) for status, n in rows})
    return counts
