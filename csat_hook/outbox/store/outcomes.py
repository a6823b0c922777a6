"""Recording an attempt's outcome: sent (with its survey), back to pending for a retry, or
failed. A worker only finishes its own claim (``claimed_by``), so a late answer after a
takeover can never overwrite the new owner's state.

Every text here may come from a vendor's answer (a message id, an agent the look-up found,
an error's reason): each is made storable and fitted to its column first (``db/text.py``).
A value PostgreSQL refuses would leave a reply that went out unrecorded, to be sent again.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from csat_hook.db.frozen import FrozenStatement
from csat_hook.db.schema import FAILED
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import SENDING
from csat_hook.db.schema import SENT
from csat_hook.db.schema import UTCDateTime
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.db.text import fitted
from csat_hook.db.text import storable


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


@functools.cache
def _mark_sent_frozen(dialect: Dialect, with_link: bool) -> FrozenStatement:
    # On psycopg's cursor: SQLAlchemy's execution cost more CPU than the round trip.
    return FrozenStatement(_mark_sent_pg_stmt(with_link), dialect)


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
        "external_id": fitted(outbox.c.external_id, external_id),
        "body": storable(body) if body is not None else None,
        "note": fitted(outbox.c.last_error, note),
    }
    agent = {
        "agent_id": fitted(surveys.c.agent_id, agent_id),
        "agent_name": fitted(surveys.c.agent_name, agent_name),
        "agent_email": fitted(surveys.c.agent_email, agent_email),
        "link": storable(link) if link is not None else None,
    }
    if conn.dialect.name == "postgresql":
        if link is not None:
            params |= agent
        return bool(_mark_sent_frozen(conn.dialect, link is not None).rows(conn, params))
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
        "last_error": fitted(outbox.c.last_error, error),
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
            last_error=fitted(outbox.c.last_error, error),
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
