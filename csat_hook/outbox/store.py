"""Every statement the outbox runs: queueing replies and alert deliveries, claiming them with
a lease, worker heartbeats and takeovers, recording outcomes.

A row is a reply (``kind`` reply, one per survey) or the delivery of an alert to one
destination (``kind`` alert, one per ``delivery_key``); both go through the same claim, lease,
heartbeat, retry and failed view. Only replies touch the ``surveys`` rows.

Each function takes a :class:`sqlalchemy.Connection` first and runs inside the caller's
transaction. A worker only finishes its own claim (``claimed_by``), so a late answer after a
takeover can never overwrite the new owner's state.

The life of a reply: ``pending`` (due at ``next_attempt_at``) → claimed: ``sending`` with a
lease, renewed by the owner's heartbeat → ``sent`` / ``failed`` / back to ``pending`` for a
retry. An attempt whose outcome is unknown (a timeout, a dropped connection, or a worker that
died mid-delivery) sets ``uncertain_since``; the next attempt first looks whether the reply
landed. A claim only takes ``pending`` rows (one index range); ``sending`` rows of a worker
that stopped beating, or whose lease expired, are put back to ``pending`` by
:func:`release_stale`, due once whatever the old owner sent has settled.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import ALERT
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import FAILED
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import REPLY
from csat_hook.db.schema import SENDING
from csat_hook.db.schema import SENT
from csat_hook.db.schema import UTCDateTime
from csat_hook.db.schema import alerts
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.db.schema import workers


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


ALERT_COLUMNS = (
    "kind",
    "alert_id",
    "destination",
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


def count_alert_deliveries(conn: sa.Connection, destination: str, since: datetime) -> int:
    """Alert deliveries queued for ``destination`` since ``since``, held ones not counted."""
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox)
            .where(
                outbox.c.destination == destination,
                outbox.c.created_at >= since,
                outbox.c.kind == ALERT,
                outbox.c.status != CANCELLED,
            )
        ).scalar_one()
    )


def cancel_waiting(conn: sa.Connection, helpdesk: str, dialog_id: str, now: datetime) -> int:
    """Cancel replies for a dialog that have not started to go out; return how many (alerts
    about the dialog are not replies and stay queued)."""
    cancelled = (
        conn.execute(
            sa.update(outbox)
            .where(
                outbox.c.kind == REPLY,
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
        # One range of the (status, next_attempt_at) index. Replies of gone workers come back
        # through release_stale, as pending rows.
        return sa.and_(table.c.status == PENDING, table.c.next_attempt_at <= now)

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
    """Claim up to ``limit`` due pending replies for this worker and count the attempt.

    The returned rows' ``updated_at`` is the claim time (the start of this attempt). On
    PostgreSQL, rows locked by a concurrent claim are skipped, so claims never overlap; SQLite
    serialises writers, which gives the same result.
    """
    return list(
        conn.execute(
            _claim_stmt(),
            {"now": now, "lease_until": lease_until, "limit": limit, "worker_id": worker_id},
        ).all()
    )


# --- heartbeats and takeovers ----------------------------------------------------------------


@functools.cache
def _beat_stmt(dialect_name: str) -> Any:
    stmt = dialect_insert(dialect_name, workers).values(
        id=sa.bindparam("worker_id"), started_at=sa.bindparam("now"), beat_at=sa.bindparam("now")
    )
    return stmt.on_conflict_do_update(
        index_elements=["id"], set_={"beat_at": stmt.excluded.beat_at}
    )


@functools.cache
def _renew_stmt() -> Any:
    def own(table: Any) -> Any:
        return sa.and_(
            table.c.id.in_(sa.bindparam("ids", expanding=True)),
            table.c.status == SENDING,
            table.c.claimed_by == sa.bindparam("worker_id"),
        )

    # A row locked right now is being finished by this worker's outcome writer (or looked at
    # by a releaser): skipped, not waited for, so the two never deadlock. A skipped row is not
    # in the returned ids; its fence simply is not extended.
    candidate = outbox.alias("mine")
    picked = (
        sa.select(candidate.c.id).where(own(candidate)).with_for_update(skip_locked=True)
    ).cte("mine_locked")
    return (
        sa.update(outbox)
        .where(outbox.c.id == picked.c.id, own(outbox))
        .values(lease_until=sa.bindparam("lease_until"))
        .returning(outbox.c.id)
    )


def heartbeat(
    conn: sa.Connection,
    worker_id: str,
    now: datetime,
    *,
    lease_until: datetime | None = None,
    in_flight: Collection[int] = (),
) -> set[int]:
    """Record that ``worker_id`` is alive (registering it on its first beat) and extend to
    ``lease_until`` the leases of the replies it is sending (``in_flight``). Returns the ids
    whose leases were extended: a reply missing from them is no longer this worker's (it was
    taken over). Only replies in flight are renewed: one whose outcome could not be recorded
    (the database was down) keeps its lease, which expires, and is taken over."""
    conn.execute(_beat_stmt(conn.dialect.name), {"worker_id": worker_id, "now": now})
    if lease_until is None or not in_flight:
        return set()
    params = {"worker_id": worker_id, "lease_until": lease_until, "ids": list(in_flight)}
    return set(conn.execute(_renew_stmt(), params).scalars())


def unregister(conn: sa.Connection, worker_id: str) -> None:
    """Forget a worker that stopped gracefully (its replies in flight are finished)."""
    conn.execute(sa.delete(workers).where(workers.c.id == worker_id))


@functools.cache
def _release_stmt() -> Any:
    now: Any = sa.bindparam("now")
    dead = sa.select(workers.c.id).where(workers.c.beat_at < sa.bindparam("dead_before"))

    def stale(table: Any) -> Any:
        # A gone worker's row: its worker stopped beating AND the row's lease was neither
        # claimed nor renewed since (lease_until < quiet_before). The second test is on the
        # row itself, so a renewal committed while this statement runs (re-checked by
        # PostgreSQL on the new row version) keeps the row with its owner.
        gone = sa.and_(
            table.c.lease_until < sa.bindparam("quiet_before"), table.c.claimed_by.in_(dead)
        )
        return sa.and_(table.c.status == SENDING, sa.or_(table.c.lease_until < now, gone))

    # Rows another worker is releasing (or its owner renewing) right now are skipped, not
    # waited for: two heartbeats releasing the same rows in different orders cannot deadlock.
    candidate = outbox.alias("candidate")
    picked = (
        sa.select(candidate.c.id).where(stale(candidate)).with_for_update(skip_locked=True)
    ).cte("stale")
    return (
        sa.update(outbox)
        .where(outbox.c.id == picked.c.id, stale(outbox))
        .values(
            status=PENDING,
            # The old owner's attempt started at its claim (updated_at) and may have landed.
            uncertain_since=sa.func.coalesce(outbox.c.uncertain_since, outbox.c.updated_at),
            next_attempt_at=sa.bindparam("check_at"),
            lease_until=None,
            claimed_by=None,
            last_error=sa.func.substr(
                sa.literal("taken over from worker ")
                + sa.func.coalesce(outbox.c.claimed_by, "?")
                + sa.literal(" (stopped beating or lease expired): outcome unknown, checking"),
                1,
                500,
            ),
            updated_at=now,
        )
        .returning(outbox.c.id)
    )


def release_stale(
    conn: sa.Connection,
    now: datetime,
    *,
    dead_before: datetime,
    quiet_before: datetime,
    check_at: datetime,
) -> list[int]:
    """Take over replies whose worker is gone: ``sending`` rows whose worker has not beaten
    since ``dead_before`` and whose lease was last set before ``quiet_before`` (claimed or
    renewed as long ago: ``now + lease_seconds - worker_dead_after_seconds``), or whose lease
    expired (a worker without a heartbeat row, one that could not renew). They go back to
    ``pending``, due at ``check_at``, with their outcome unknown; the gone workers' rows are
    deleted. Returns the ids released."""
    params = {
        "now": now,
        "dead_before": dead_before,
        "quiet_before": quiet_before,
        "check_at": check_at,
    }
    released = list(conn.execute(_release_stmt(), params).scalars())
    conn.execute(_forget_gone_stmt(), {"dead_before": dead_before})
    return released


@functools.cache
def _forget_gone_stmt() -> Any:
    # Only once none of its replies is left: a reply it claimed after its last beat is not
    # quiet yet, and without the worker's row it would wait for its lease to expire.
    holds = sa.exists().where(outbox.c.status == SENDING, outbox.c.claimed_by == workers.c.id)
    gone = (
        sa.select(workers.c.id)
        .where(workers.c.beat_at < sa.bindparam("dead_before"), ~holds)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return sa.delete(workers).where(workers.c.id.in_(gone))


@functools.cache
def _by_ids_stmt(table: sa.Table, dialect_name: str) -> Any:
    # Built once per table: run on every claim. On PostgreSQL one array parameter
    # (``= ANY``), so the compiled statement is reused as is; an expanding IN would be
    # re-rendered for every list length.
    if dialect_name == "postgresql":
        ids: Any = sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger))
        return sa.select(table).where(table.c.id == sa.any_(ids))
    return sa.select(table).where(table.c.id.in_(sa.bindparam("ids", expanding=True)))


def surveys_by_id(conn: sa.Connection, ids: Sequence[int]) -> dict[int, sa.Row[Any]]:
    """The survey rows of claimed replies, in one query."""
    if not ids:
        return {}
    rows = conn.execute(_by_ids_stmt(surveys, conn.dialect.name), {"ids": list(ids)})
    return {row.id: row for row in rows}


def alerts_by_id(conn: sa.Connection, ids: Sequence[int]) -> dict[int, sa.Row[Any]]:
    """The alert rows of claimed alert deliveries, in one query."""
    if not ids:
        return {}
    rows = conn.execute(_by_ids_stmt(alerts, conn.dialect.name), {"ids": list(ids)})
    return {row.id: row for row in rows}


@functools.cache
def _next_due_stmt() -> Any:
    return sa.select(sa.func.min(outbox.c.next_attempt_at)).where(outbox.c.status == PENDING)


def next_due_at(conn: sa.Connection) -> datetime | None:
    """When the next pending reply becomes due, if any (read from the index).

    Replies being sent are not counted: a gone worker's replies come back as pending rows
    through :func:`release_stale` (run by every worker's heartbeat).
    """
    due: datetime | None = conn.execute(_next_due_stmt()).scalar()
    return due


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
            last_error=sa.bindparam("note"),
        )
        .returning(outbox.c.id, outbox.c.survey_id)
    )
    survey = surveys.c.id == sa.bindparam("survey_id")
    plain = sa.update(surveys).where(survey).values(_survey_sent_values(False))
    with_agent = sa.update(surveys).where(survey).values(_survey_sent_values(True))
    return done, plain, with_agent


@functools.cache
def _mark_sent_pg_stmt(with_link: bool) -> Any:
    # PostgreSQL: the outbox row and its survey in one statement (one round trip instead of
    # two); the survey's UPDATE runs in a data-modifying CTE, and the statement returns the
    # outbox id when the claim was still this worker's.
    done = _mark_sent_stmts()[0].cte("done")
    touched = (
        sa.update(surveys)
        .where(surveys.c.id == done.c.survey_id)
        .values(_survey_sent_values(with_link))
        .returning(surveys.c.id)
        .cte("touched")
    )
    return sa.select(done.c.id).add_cte(touched)


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
    params = {
        "outbox_id": outbox_id,
        "worker_id": worker_id,
        "sent_now": now,
        "updated_now": now,
        "external_id": external_id,
        "body": body,
        "note": note[:500] if note else None,
    }
    agent = {
        "agent_id": agent_id,
        "agent_name": agent_name,
        "agent_email": agent_email,
        "link": link,
    }
    if conn.dialect.name == "postgresql":
        if link is not None:
            params |= agent
        return conn.execute(_mark_sent_pg_stmt(link is not None), params).first() is not None
    done, plain, with_agent = _mark_sent_stmts()
    row = conn.execute(done, params).first()
    if row is None:
        return False
    survey_id = row.survey_id
    if survey_id is None:  # an alert: no survey to update
        return True
    if link is None:
        conn.execute(plain, {"survey_id": survey_id, "sent_now": now})
    else:
        conn.execute(with_agent, {"survey_id": survey_id, "sent_now": now, **agent})
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
    uncertain_since: datetime | None = None,
) -> bool:
    """Put a claimed reply back to pending for another attempt at ``next_attempt_at``.

    ``uncertain_since`` (the start of this attempt) marks an attempt whose outcome is unknown;
    the earliest such time is kept, so the look-up covers every attempt that may have landed.
    """
    values: dict[str, Any] = {
        "status": PENDING,
        "next_attempt_at": next_attempt_at,
        "lease_until": None,
        "claimed_by": None,
        "last_error": error[:500],
        "last_http_status": http_status,
        "updated_at": now,
    }
    if uncertain_since is not None:
        values["uncertain_since"] = sa.func.coalesce(
            outbox.c.uncertain_since,
            sa.bindparam("attempt_started", uncertain_since, type_=UTCDateTime()),
        )
    result = conn.execute(sa.update(outbox).where(_owned(outbox_id, worker_id)).values(**values))
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
    row = conn.execute(
        sa.update(outbox)
        .where(where)
        .values(
            status=FAILED,
            lease_until=None,
            last_error=error[:500],
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
