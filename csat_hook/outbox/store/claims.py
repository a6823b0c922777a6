"""Claiming: due rows taken with a lease for one worker, their survey and alert rows, and
when the next one is due.

A claim only takes ``pending`` rows (one index range); the rows of gone workers come back as
``pending`` through :func:`csat_hook.outbox.store.workers.release_stale`.
"""

from __future__ import annotations

import functools
from collections import namedtuple
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

from csat_hook.db.frozen import FrozenStatement
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import SENDING
from csat_hook.db.schema import alerts
from csat_hook.db.schema import early_reopens
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.outbox.wake import LIVE_SECONDS
from csat_hook.outbox.wake import live_channel

# What a claim returns: the columns the worker, its delivery, fence and outcome writer read
# (plus status and claimed_by, which show the claim). SQLAlchemy and psycopg set up every
# returned column on every claim, so the unread ones (timestamps of the row's history, the
# reply text and vendor id of earlier attempts) are left out; a column read here and not
# listed raises AttributeError, it is never silently absent.
CLAIMED = (
    "id",
    "kind",
    "helpdesk",
    "dialog_id",
    "context",
    "survey_id",
    "alert_id",
    "destination",
    "destination_kind",
    "delivery_key",
    "status",
    "claimed_by",
    "attempts",
    "lease_until",
    "updated_at",
    "uncertain_since",
)
# The survey columns a reply is built from (agent, customer, link values, language, token).
SURVEY = (
    "id",
    "helpdesk",
    "dialog_id",
    "agent_id",
    "agent_name",
    "agent_email",
    "customer_id",
    "customer_email",
    "customer_name",
    "team",
    "channel",
    "language",
    "token",
)


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
        .returning(*(outbox.c[name] for name in CLAIMED))
    )


def claim_due(
    conn: sa.Connection, worker_id: str, now: datetime, lease_until: datetime, limit: int
) -> list[sa.Row[Any]]:
    """Claim up to ``limit`` due pending replies for this worker and count the attempt.

    The returned rows carry the :data:`CLAIMED` columns; their ``updated_at`` is the claim
    time (the start of this attempt). On PostgreSQL, rows locked by a concurrent claim are
    skipped, so claims never overlap; SQLite serialises writers, which gives the same result.
    """
    return list(
        conn.execute(
            _claim_stmt(),
            {"now": now, "lease_until": lease_until, "limit": limit, "worker_id": worker_id},
        ).all()
    )


@functools.cache
def _by_ids_stmt(table: sa.Table, dialect_name: str, columns: tuple[str, ...] = ()) -> Any:
    # Built once per table: run on every claim. On PostgreSQL one array parameter
    # (``= ANY``), so the compiled statement is reused as is; an expanding IN would be
    # re-rendered for every list length. ``columns``: only these (default: all).
    selected = sa.select(*(table.c[name] for name in columns)) if columns else sa.select(table)
    if dialect_name == "postgresql":
        ids: Any = sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger))
        return selected.where(table.c.id == sa.any_(ids))
    return selected.where(table.c.id.in_(sa.bindparam("ids", expanding=True)))


# A claimed reply's survey also says whether its dialog has a remembered reopen
# (``early_reopens``, written by intake before it cancels) no earlier than the survey's close:
# ``reopened``, under the rule that skips such a close (``intake.store.reopened_after``: the
# close time known and believed, not the receive time that stands in for it). A close
# recorded at the moment of its reopen by another process, which neither saw, is caught here:
# its reply's claim comes after the reopen was remembered (``intake.receive``:
# ``Intake.remember_reopen``). One primary-key probe per claimed survey; outer, so a dialog
# never reopened keeps its row.
REOPENED_SINCE = "reopened"


def _reopened_since() -> Any:
    return sa.and_(
        early_reopens.c.reopened_at.is_not(None),
        surveys.c.closed_at.is_not(None),
        surveys.c.closed_at != surveys.c.created_at,
        surveys.c.closed_at <= early_reopens.c.reopened_at,
    )


def _with_reopens(joined: Any) -> Any:
    return joined.outerjoin(
        early_reopens,
        sa.and_(
            early_reopens.c.helpdesk == surveys.c.helpdesk,
            early_reopens.c.dialog_id == surveys.c.dialog_id,
        ),
    )


@functools.cache
def _surveys_stmt(dialect_name: str) -> Any:
    # Built once: run on every claim (not on PostgreSQL: claim_with_surveys).
    columns = [surveys.c[name] for name in SURVEY]
    stmt = sa.select(*columns, _reopened_since().label(REOPENED_SINCE)).select_from(
        _with_reopens(surveys)
    )
    if dialect_name == "postgresql":
        ids: Any = sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger))
        return stmt.where(surveys.c.id == sa.any_(ids))
    return stmt.where(surveys.c.id.in_(sa.bindparam("ids", expanding=True)))


def surveys_by_id(conn: sa.Connection, ids: Sequence[int]) -> dict[int, sa.Row[Any]]:
    """The survey rows (their :data:`SURVEY` columns, and :data:`REOPENED_SINCE`: the
    dialog has a remembered reopen no earlier than the survey's believed close) of claimed
    replies, in one query. Read in the claim's transaction or after it: a reopen remembered
    before the claim is seen."""
    if not ids:
        return {}
    rows = conn.execute(_surveys_stmt(conn.dialect.name), {"ids": list(ids)})
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
    through :func:`~csat_hook.outbox.store.workers.release_stale` (run by every worker's
    heartbeat).
    """
    due: datetime | None = conn.execute(_next_due_stmt()).scalar()
    return due


# The survey columns of a claimed reply, in the one-statement claim's result.
_SURVEY_PREFIX = "survey__"
SurveyRow = namedtuple("SurveyRow", (*SURVEY, REOPENED_SINCE))  # type: ignore[misc]


@functools.cache
def _claim_with_surveys_stmt() -> Any:
    # PostgreSQL: the claim, its surveys and the next due time in ONE statement (the claim's
    # UPDATE in a data-modifying CTE) instead of three round trips. The next due time is read
    # in the statement's snapshot, where the rows being claimed are still pending: they are
    # left out by id. A one-row subquery on the left keeps that time in the result when
    # nothing was claimed.
    claimed = _claim_stmt().cte("claimed")
    next_due = (
        sa.select(sa.func.min(outbox.c.next_attempt_at).label("next_due"))
        .where(outbox.c.status == PENDING, outbox.c.id.not_in(sa.select(claimed.c.id)))
        .cte("next_due")
    )
    # A claim that filled the free threads while another reply is already due wakes one
    # other live worker (a producer woke only this one), sent when the claim commits: no
    # round trip of its own, and none when nothing more is due. A CTE (MATERIALIZED, and
    # PostgreSQL never inlines a volatile one) runs once whatever the join order, so at most
    # one NOTIFY; its column is selected so the planner keeps the join.
    other = live_channel(exclude=True).subquery("other")
    full = sa.select(sa.func.count()).select_from(claimed).scalar_subquery() >= sa.bindparam(
        "limit"
    )
    due_now = sa.select(next_due.c.next_due).scalar_subquery() <= sa.bindparam("now")
    passed = (
        sa.select(sa.func.pg_notify(other.c[0], "").label("passed_on"))
        .where(full, due_now)
        .cte("passed")
        .prefix_with("MATERIALIZED")
    )
    survey_columns = [surveys.c[name].label(_SURVEY_PREFIX + name) for name in SURVEY]
    survey_columns.append(_reopened_since().label(_SURVEY_PREFIX + REOPENED_SINCE))
    return sa.select(
        next_due.c.next_due, passed.c.passed_on, *claimed.c, *survey_columns
    ).select_from(
        _with_reopens(
            next_due.outerjoin(passed, sa.true())
            .outerjoin(claimed, sa.true())
            .outerjoin(surveys, surveys.c.id == claimed.c.survey_id)
        )
    )


@functools.cache
def _claim_with_surveys_frozen(dialect: Dialect) -> FrozenStatement:
    # Run on psycopg's cursor: through SQLAlchemy, setting up a result of 30 columns cost
    # four times the claim's round trip (csat_hook/db/frozen.py).
    return FrozenStatement(_claim_with_surveys_stmt(), dialect)


def claim_with_surveys(
    conn: sa.Connection,
    worker_id: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    *,
    live_seconds: float = LIVE_SECONDS,
) -> tuple[list[Any], dict[int, Any], datetime | None]:
    """PostgreSQL: :func:`claim_due`, :func:`surveys_by_id` of the claimed replies and, when
    fewer than ``limit`` were claimed, :func:`next_due_at` (else None), in one statement.

    When it claims ``limit`` replies and another is due already, the statement also wakes
    one other worker that beat in the last ``live_seconds`` (a NOTIFY on its channel, sent
    at commit: call it in autocommit).

    The claimed rows (named tuples, as :class:`~csat_hook.db.frozen.FrozenStatement` makes
    them) carry the :data:`CLAIMED` columns (and extra ones for the survey: read them from the
    returned surveys, a :class:`SurveyRow` per survey id, with the
    :data:`SURVEY` columns of a survey row and :data:`REOPENED_SINCE`, as
    :func:`surveys_by_id`). The remembered reopen is read in the claim's own snapshot.
    """
    params = {
        "now": now,
        "lease_until": lease_until,
        "limit": limit,
        "worker_id": worker_id,
        "alive_since": now - timedelta(seconds=live_seconds),
    }
    result = _claim_with_surveys_frozen(conn.dialect).rows(conn, params)
    rows = [row for row in result if row.id is not None]
    found: dict[int, Any] = {}
    width = len(SurveyRow._fields)
    for row in rows:
        survey = row[-width:]
        if survey[0] is not None:
            found[survey[0]] = SurveyRow(*survey)
    due = result[0].next_due if result and len(rows) < limit else None
    return rows, found, due
