"""The ``workers`` rows: heartbeats (which renew the leases of the replies in flight),
unregistering, and taking over the replies of workers that are gone.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import SENDING
from csat_hook.db.schema import UTCDateTime
from csat_hook.db.schema import outbox
from csat_hook.db.schema import workers
from csat_hook.outbox.store.outcomes import ERASED_NOTE
from csat_hook.outbox.store.outcomes import cancel_surveys
from csat_hook.outbox.store.outcomes import unless_erased


@functools.cache
def _beat_stmt(dialect_name: str) -> Any:
    stmt = dialect_insert(dialect_name, workers).values(
        id=sa.bindparam("worker_id"),
        started_at=sa.bindparam("now"),
        beat_at=sa.bindparam("now"),
        listening_at=sa.bindparam("listening_at"),
    )
    return stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={"beat_at": stmt.excluded.beat_at, "listening_at": stmt.excluded.listening_at},
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
    hearing: bool = False,
) -> set[int]:
    """Record that ``worker_id`` is alive (registering it on its first beat) and extend to
    ``lease_until`` the leases of the replies it is sending (``in_flight``). Returns the ids
    whose leases were extended: a reply missing from them is no longer this worker's (it was
    taken over). Only replies in flight are renewed: one whose outcome could not be recorded
    (the database was down) keeps its lease, which expires, and is taken over.

    ``hearing``: its NOTIFY listener is known to hear now, so it may be the one worker woken
    for a queued reply (:func:`csat_hook.outbox.wake.live_channel`) until it beats without;
    a beat without it is alive all the same (nothing of its replies is taken over)."""
    params = {"worker_id": worker_id, "now": now, "listening_at": now if hearing else None}
    conn.execute(_beat_stmt(conn.dialect.name), params)
    if lease_until is None or not in_flight:
        return set()
    params = {"worker_id": worker_id, "lease_until": lease_until, "ids": list(in_flight)}
    return set(conn.execute(_renew_stmt(), params).scalars())


def unregister(conn: sa.Connection, worker_id: str) -> None:
    """Forget a worker that stopped gracefully, unless a reply is still ``sending`` under it
    (its outcome's write failed): then its row stays, its beats stop, and the reply is
    taken over once the worker has been silent ``worker_dead_after_seconds``, as a killed
    worker's are (:func:`release_stale`, which forgets the row after). Deleted, the reply
    waited for its lease to run out."""
    holds = sa.exists().where(outbox.c.status == SENDING, outbox.c.claimed_by == worker_id)
    conn.execute(sa.delete(workers).where(workers.c.id == worker_id, ~holds))


def _dead_workers() -> Any:
    # Workers that have not beaten since dead_before, but never the one asking: it is alive
    # whatever its last written beat says (a beat that waited on a lock is written late).
    return sa.select(workers.c.id).where(
        workers.c.beat_at < sa.bindparam("dead_before"),
        workers.c.id != sa.bindparam("releaser"),
    )


@functools.cache
def _release_stmt() -> Any:
    now: Any = sa.bindparam("now")
    dead = _dead_workers()

    def stale(table: Any) -> Any:
        # A gone worker's row: its worker stopped beating AND the row's lease was neither
        # claimed nor renewed since (lease_until < quiet_before). The second test is on the
        # row itself, so a renewal committed while this statement runs (re-checked by
        # PostgreSQL on the new row version) keeps the row with its owner.
        gone = sa.and_(
            table.c.lease_until < sa.bindparam("quiet_before"), table.c.claimed_by.in_(dead)
        )
        # A row the releaser is sending is its own to finish, whatever its lease says.
        held = sa.and_(
            table.c.claimed_by == sa.bindparam("releaser"),
            table.c.id.in_(sa.bindparam("in_flight", expanding=True)),
        )
        return sa.and_(
            table.c.status == SENDING, sa.or_(table.c.lease_until < now, gone), sa.not_(held)
        )

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
            # One an erasure marked while it was being sent is cancelled: never sent again
            # to the customer whose data is erased (outbox/store/outcomes.py: ERASED_NOTE).
            status=unless_erased(PENDING, CANCELLED),
            # The old owner's attempt started at its claim (updated_at) and may have landed.
            uncertain_since=sa.func.coalesce(outbox.c.uncertain_since, outbox.c.updated_at),
            next_attempt_at=sa.case(
                (
                    outbox.c.destination.in_(sa.bindparam("slow", expanding=True)),
                    sa.bindparam("slow_check_at", type_=UTCDateTime()),
                ),
                else_=sa.bindparam("check_at", type_=UTCDateTime()),
            ),
            lease_until=None,
            claimed_by=None,
            last_error=unless_erased(
                sa.func.substr(
                    sa.literal("taken over from worker ")
                    + sa.func.coalesce(outbox.c.claimed_by, "?")
                    + sa.literal(" (stopped beating or lease expired): outcome unknown, checking"),
                    1,
                    500,
                ),
                ERASED_NOTE,
            ),
            updated_at=now,
        )
        .returning(outbox.c.id, outbox.c.status, outbox.c.survey_id)
    )


def release_stale(
    conn: sa.Connection,
    now: datetime,
    *,
    dead_before: datetime,
    quiet_before: datetime,
    check_at: datetime,
    slow_destinations: Sequence[str] = (),
    slow_check_at: datetime | None = None,
    releaser: str | None = None,
    in_flight: Collection[int] = (),
) -> list[int]:
    """Take over replies whose worker is gone: ``sending`` rows whose worker has not beaten
    since ``dead_before`` and whose lease was last set before ``quiet_before`` (claimed or
    renewed as long ago: ``now + lease_seconds - worker_dead_after_seconds``), or whose lease
    expired (a worker without a heartbeat row, one that could not renew). They go back to
    ``pending``, due at ``check_at`` (alerts to ``slow_destinations``, whose one send may
    outlast a request, at ``slow_check_at``), with their outcome unknown; the gone workers'
    rows are deleted. Returns the ids released.

    ``releaser`` (the worker asking) is never taken for gone, and the rows it names
    ``in_flight`` (its deliveries running) are never released: only another worker takes a
    live worker's reply over, and only once its fence has closed."""
    params = {
        "now": now,
        "dead_before": dead_before,
        "quiet_before": quiet_before,
        "check_at": check_at,
        "slow": list(slow_destinations),
        "slow_check_at": slow_check_at or check_at,
        "releaser": releaser or "",
        "in_flight": list(in_flight),
    }
    rows = conn.execute(_release_stmt(), params).all()
    cancel_surveys(conn, [row.survey_id for row in rows if row.status == CANCELLED])
    released = [row.id for row in rows]
    conn.execute(_forget_gone_stmt(), {"dead_before": dead_before, "releaser": releaser or ""})
    return released


@functools.cache
def _forget_gone_stmt() -> Any:
    # Only once none of its replies is left: a reply it claimed after its last beat is not
    # quiet yet, and without the worker's row it would wait for its lease to expire.
    holds = sa.exists().where(outbox.c.status == SENDING, outbox.c.claimed_by == workers.c.id)
    gone = (
        sa.select(workers.c.id)
        .where(
            workers.c.beat_at < sa.bindparam("dead_before"),
            workers.c.id != sa.bindparam("releaser"),
            ~holds,
        )
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return sa.delete(workers).where(workers.c.id.in_(gone))
