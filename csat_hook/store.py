"""Every SQL statement the service runs against surveys and the outbox.

Each function takes a :class:`sqlalchemy.Connection` first and runs inside the caller's
transaction (``with engine.begin() as conn``): the caller owns the unit of work. Idempotency
comes from unique constraints and conditional updates, never from read-then-write.
"""

from __future__ import annotations

import collections
import functools
import operator
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite

from csat_hook.db import UTCDateTime
from csat_hook.db import answer_history
from csat_hook.db import answers
from csat_hook.db import outbox
from csat_hook.db import surveys
from csat_hook.db import sync_locks
from csat_hook.db import sync_skipped_rows
from csat_hook.db import sync_state
from csat_hook.db import unverified_answers

NOTIFY_CHANNEL = "csat_hook_outbox"

# Survey statuses.
QUEUED, SENT, FAILED, SKIPPED, CANCELLED = "queued", "sent", "failed", "skipped", "cancelled"
# Outbox statuses.
PENDING, SENDING = "pending", "sending"
OUTBOX_STATUSES = (PENDING, SENDING, SENT, FAILED, CANCELLED)


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


# The webhook's hot path runs these two statements on every close. They are built once per
# dialect and executed with parameters, so SQLAlchemy compiles them once (building a statement
# with .values() per call costs more than the database work itself).
@functools.cache
def _insert_surveys_stmt(dialect_name: str) -> Any:
    # Built once per dialect and executed with parameters: compiled once, and sent as one
    # multi-row INSERT for a whole batch ("insertmanyvalues").
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return (
        dialect.insert(surveys)
        .on_conflict_do_nothing(index_elements=["helpdesk", "dialog_id", "occurrence"])
        .returning(surveys.c.id, surveys.c.helpdesk, surveys.c.dialog_id, surveys.c.occurrence)
    )


@functools.cache
def _enqueue_stmt(dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(outbox)
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


SURVEY_COLUMNS = tuple(c.name for c in surveys.c if c.name != "id")
OUTBOX_COLUMNS = ("survey_id", "helpdesk", "dialog_id", "context", "status", "attempts",
                  "next_attempt_at", "created_at", "updated_at")


def insert_surveys(
    conn: sa.Connection, rows: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str, str], int]:
    """Insert surveys (each row: every column but ``id``); skip closes already recorded.

    Returns (helpdesk, dialog_id, occurrence) → id for the rows actually inserted. Keys must
    be distinct within ``rows``.
    """
    if not rows:
        return {}
    params = [{name: row.get(name) for name in SURVEY_COLUMNS} for row in rows]
    result = conn.execute(_insert_surveys_stmt(conn.dialect.name), params)
    return {(r.helpdesk, r.dialog_id, r.occurrence): int(r.id) for r in result}


def revive_survey(conn: sa.Connection, row: Mapping[str, Any]) -> int | None:
    """Re-arm a survey that was cancelled (the dialog reopened before it went out) for a new
    close of the same dialog; None when the existing survey was not cancelled (a duplicate).
    """
    values = {name: row.get(name) for name in SURVEY_COLUMNS}
    revived = conn.execute(
        sa.update(surveys)
        .where(
            surveys.c.helpdesk == values["helpdesk"],
            surveys.c.dialog_id == values["dialog_id"],
            surveys.c.occurrence == values["occurrence"],
            surveys.c.status == CANCELLED,
        )
        .values(**{k: v for k, v in values.items() if k not in ("helpdesk", "dialog_id")})
        .returning(surveys.c.id)
    ).scalar()
    return int(revived) if revived is not None else None


def enqueue_replies(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue replies for surveys (or re-arm the queue rows of revived surveys)."""
    if rows:
        conn.execute(_enqueue_stmt(conn.dialect.name),
                     [{name: row[name] for name in OUTBOX_COLUMNS} for row in rows])


def notify_workers(conn: sa.Connection) -> None:
    """Wake delivery workers in other processes (PostgreSQL LISTEN/NOTIFY, sent on commit)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, "")))


def cancel_waiting(conn: sa.Connection, helpdesk: str, dialog_id: str, now: datetime) -> int:
    """Cancel replies for a dialog that have not started to go out; return how many."""
    cancelled = conn.execute(
        sa.update(outbox)
        .where(
            outbox.c.helpdesk == helpdesk,
            outbox.c.dialog_id == dialog_id,
            outbox.c.status == PENDING,
        )
        .values(status=CANCELLED, updated_at=now, last_error="dialog reopened before sending")
        .returning(outbox.c.survey_id)
    ).scalars().all()
    if cancelled:
        conn.execute(
            sa.update(surveys).where(surveys.c.id.in_(cancelled)).values(status=CANCELLED)
        )
    return len(cancelled)


def customer_surveyed_since(
    conn: sa.Connection,
    helpdesk: str,
    customer_id: str | None,
    customer_email: str | None,
    since: datetime,
) -> bool:
    """True when this customer got (or is about to get) a survey after ``since``."""
    who = []
    if customer_id:
        who.append(surveys.c.customer_id == customer_id)
    if customer_email:
        who.append(sa.func.lower(surveys.c.customer_email) == customer_email.lower())
    if not who:
        return False
    found = conn.execute(
        sa.select(surveys.c.id)
        .where(
            surveys.c.helpdesk == helpdesk,
            sa.or_(*who),
            surveys.c.status.in_((QUEUED, SENT)),
            surveys.c.created_at >= since,
        )
        .limit(1)
    ).first()
    return found is not None


def dialog_surveyed_since(conn: sa.Connection, helpdesk: str, dialog_id: str,
                          since: datetime) -> bool:
    """True when this dialog got (or is about to get) a survey after ``since``."""
    found = conn.execute(
        sa.select(surveys.c.id)
        .where(
            surveys.c.helpdesk == helpdesk,
            surveys.c.dialog_id == dialog_id,
            surveys.c.status.in_((QUEUED, SENT)),
            surveys.c.created_at >= since,
        )
        .limit(1)
    ).first()
    return found is not None


@functools.cache
def _claim_stmt() -> Any:
    # Built once: the worker claims on every wake-up, and building this statement costs more
    # than running it.
    now, lease_until = sa.bindparam("now"), sa.bindparam("lease_until")

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
    return list(conn.execute(_claim_stmt(), {"now": now, "lease_until": lease_until,
                                            "limit": limit, "worker_id": worker_id}).all())


def surveys_by_id(conn: sa.Connection, ids: Sequence[int]) -> dict[int, sa.Row[Any]]:
    """The survey rows of claimed replies, in one query."""
    if not ids:
        return {}
    rows = conn.execute(sa.select(surveys).where(surveys.c.id.in_(list(ids))))
    return {row.id: row for row in rows}


def next_due_at(conn: sa.Connection) -> datetime | None:
    """When the next reply becomes due (pending, or a lease that will expire), if any."""
    # One round trip; each minimum is read from its own index.
    pending = (sa.select(sa.func.min(outbox.c.next_attempt_at))
               .where(outbox.c.status == PENDING).scalar_subquery())
    leased = (sa.select(sa.func.min(outbox.c.lease_until))
              .where(outbox.c.status == SENDING).scalar_subquery())
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
    owned = sa.and_(outbox.c.id == sa.bindparam("outbox_id"), outbox.c.status == SENDING,
                    outbox.c.claimed_by == sa.bindparam("worker_id"))
    done = (
        sa.update(outbox)
        .where(owned)
        .values(status=SENT, sent_at=sa.bindparam("sent_now"),
                updated_at=sa.bindparam("updated_now"), lease_until=None,
                external_id=sa.bindparam("external_id"), body=sa.bindparam("body"),
                last_error=None)
        .returning(outbox.c.survey_id)
    )
    survey = surveys.c.id == sa.bindparam("survey_id")
    plain = sa.update(surveys).where(survey).values(status=SENT,
                                                     sent_at=sa.bindparam("sent_now"))
    with_agent = sa.update(surveys).where(survey).values(
        status=SENT, sent_at=sa.bindparam("sent_now"), agent_name=sa.bindparam("agent_name"),
        agent_email=sa.bindparam("agent_email"), link=sa.bindparam("link"))
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
    survey_id = conn.execute(done, {"outbox_id": outbox_id, "worker_id": worker_id,
                                    "sent_now": now, "updated_now": now,
                                    "external_id": external_id, "body": body}).scalar()
    if survey_id is None:
        return False
    if link is None:
        conn.execute(plain, {"survey_id": survey_id, "sent_now": now})
    else:
        conn.execute(with_agent, {"survey_id": survey_id, "sent_now": now,
                                  "agent_name": agent_name, "agent_email": agent_email,
                                  "link": link})
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


def list_outbox(
    conn: sa.Connection, *, statuses: Sequence[str] | None = None, limit: int = 50
) -> list[sa.Row[Any]]:
    """Newest first, joined with the survey's agent and customer snapshot."""
    stmt = (
        sa.select(
            outbox.c.id,
            outbox.c.helpdesk,
            outbox.c.dialog_id,
            outbox.c.status,
            outbox.c.attempts,
            outbox.c.next_attempt_at,
            outbox.c.last_error,
            outbox.c.last_http_status,
            outbox.c.created_at,
            outbox.c.sent_at,
            surveys.c.agent_id,
            surveys.c.agent_name,
        )
        .join(surveys, surveys.c.id == outbox.c.survey_id)
        .order_by(outbox.c.id.desc())
        .limit(limit)
    )
    if statuses:
        stmt = stmt.where(outbox.c.status.in_(statuses))
    return list(conn.execute(stmt).all())


def requeue(
    conn: sa.Connection, now: datetime, *, ids: Sequence[int] | None = None
) -> int:
    """Put failed replies back in the queue with a fresh attempt budget."""
    where = [outbox.c.status == FAILED]
    if ids:
        where.append(outbox.c.id.in_(ids))
    survey_ids = conn.execute(
        sa.update(outbox)
        .where(*where)
        .values(status=PENDING, attempts=0, next_attempt_at=now, updated_at=now)
        .returning(outbox.c.survey_id)
    ).scalars().all()
    if survey_ids:
        conn.execute(
            sa.update(surveys).where(surveys.c.id.in_(survey_ids)).values(status=QUEUED)
        )
    return len(survey_ids)


def outbox_counts(conn: sa.Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
    ).all()
    counts = dict.fromkeys(OUTBOX_STATUSES, 0)
    counts.update({status: int(n) for status, n in rows})
    return counts


def ping(conn: sa.Connection) -> None:
    conn.execute(sa.text("SELECT 1"))


# --- the sync ---------------------------------------------------------------------------------
# Bulk statements take lists of plain dicts and run as one executemany each. Re-reading a
# source row is a no-op because every ledger table is unique on the row's fingerprint.

_IN_CHUNK = 500


def known_fingerprints(conn: sa.Connection) -> set[str]:
    """Fingerprints of every source row already processed: credited, unverified or skipped."""
    union = sa.union_all(
        sa.select(answers.c.fingerprint).where(answers.c.fingerprint.is_not(None)),
        sa.select(answer_history.c.fingerprint),
        sa.select(unverified_answers.c.fingerprint),
        sa.select(sync_skipped_rows.c.fingerprint),
    )
    return set(conn.execute(union).scalars())


def archive_answers(conn: sa.Connection, tokens: Sequence[str]) -> None:
    """Copy the current answers of ``tokens`` into the history (before they are replaced)."""
    columns = ["fingerprint", "token", "rating", "comment", "submitted_at", "field_agent",
               "field_ticket", "fields_edited", "source", "source_ref"]
    for start in range(0, len(tokens), _IN_CHUNK):
        chunk = list(tokens[start:start + _IN_CHUNK])
        select = sa.select(*[answers.c[name] for name in columns], answers.c.updated_at).where(
            answers.c.token.in_(chunk), answers.c.fingerprint.is_not(None))
        stmt = _insert(conn, answer_history).from_select([*columns, "recorded_at"], select)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["fingerprint"]))


def upsert_answers(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert answers; an existing one is replaced only by a strictly later submission.

    The condition lives in the statement, so a replayed or out-of-order batch can never put
    an older rating back.
    """
    if not rows:
        return
    stmt = _insert(conn, answers)
    updatable = [c.name for c in answers.c if c.name not in ("id", "token")]
    stmt = stmt.on_conflict_do_update(
        index_elements=["token"],
        set_={name: stmt.excluded[name] for name in updatable},
        where=answers.c.submitted_at < stmt.excluded.submitted_at,
    )
    _bulk_execute(conn, stmt, answers, rows)


def _insert_new(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        stmt = _insert(conn, table).on_conflict_do_nothing(index_elements=["fingerprint"])
        _bulk_execute(conn, stmt, table, rows)


def _bulk_execute(conn: sa.Connection, stmt: Any, table: sa.Table,
                  rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute ``stmt`` for many rows with one conversion pass per column.

    The same as ``conn.execute(stmt, rows)``, without SQLAlchemy's per-value type processing,
    which dominates a bulk import (a first sync writes 200,000 rows). Datetimes are stored as
    :class:`~csat_hook.db.UTCDateTime` stores them; other types go through their own bind
    processor when they have one (JSON), and pass through when they don't.
    """
    keys = list(rows[0])
    compiled = stmt.compile(dialect=conn.dialect, column_keys=keys, for_executemany=True)
    to_db = {}
    for key in keys:
        column_type = table.c[key].type
        if isinstance(column_type, UTCDateTime):
            to_db[key] = _datetime_to_db(conn.dialect.name)
        elif (processor := column_type.dialect_impl(conn.dialect).bind_processor(
                conn.dialect)) is not None:
            to_db[key] = processor  # e.g. JSON serialisation
    order = list(compiled.positiontup or keys)
    pick = operator.itemgetter(*order)
    convert = [(i, to_db[k]) for i, k in enumerate(order) if k in to_db]
    params: list[Any] = []
    for row in rows:
        values = list(pick(row)) if len(order) > 1 else [pick(row)]
        for i, fn in convert:
            if values[i] is not None:
                values[i] = fn(values[i])
        params.append(tuple(values))
    if compiled.positiontup is None:  # named parameters (psycopg)
        params = [dict(zip(order, values, strict=True)) for values in params]
    conn.exec_driver_sql(compiled.string, params)


def _datetime_to_db(dialect_name: str) -> Any:
    sqlite_format = dialect_name == "sqlite"
    last: list[Any] = [None, None]  # the previous value and its conversion

    def convert(value: datetime | None) -> Any:
        if value is None:
            return None
        if value is last[0]:  # "recorded_at" is the same object for a whole batch
            return last[1]
        last[0], last[1] = value, _convert(value)
        return last[1]

    def _convert(value: datetime) -> Any:
        if value.tzinfo is not UTC:  # aware UTC is what the code produces: the fast path
            if value.tzinfo is None:
                raise ValueError("naive datetime given to the database; use aware UTC datetimes")
            value = value.astimezone(UTC)
        if sqlite_format:
            # SQLAlchemy's SQLite DATETIME text (microseconds always present), without the
            # "+00:00" that isoformat() appends to an aware value.
            return value.isoformat(" ", "microseconds")[:26]
        return value.replace(tzinfo=None)

    return convert


def insert_answer_history(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record credited submissions that are not the current answer (each fingerprint once)."""
    _insert_new(conn, answer_history, rows)


def insert_unverified(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record answers that cannot be credited (each fingerprint once)."""
    _insert_new(conn, unverified_answers, rows)


def insert_skipped_rows(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record unreadable source rows (each fingerprint once)."""
    _insert_new(conn, sync_skipped_rows, rows)


def get_watermark(conn: sa.Connection, source: str) -> datetime | None:
    return conn.execute(
        sa.select(sync_state.c.watermark).where(sync_state.c.source == source)
    ).scalar()


def set_watermark(conn: sa.Connection, source: str, watermark: datetime, now: datetime) -> None:
    """Move a source's watermark forward (never back)."""
    stmt = _insert(conn, sync_state).values(source=source, watermark=watermark, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["source"],
        set_={"watermark": stmt.excluded.watermark, "updated_at": stmt.excluded.updated_at},
        where=sa.or_(sync_state.c.watermark.is_(None),
                     sync_state.c.watermark < stmt.excluded.watermark),
    )
    conn.execute(stmt)


def acquire_lock(
    conn: sa.Connection, name: str, holder: str, now: datetime, lease_until: datetime
) -> bool:
    """Take the named lease if it is free, expired or already ours (compare-and-set).

    On PostgreSQL a concurrent UPDATE of the same row waits for the other transaction and
    then re-checks the condition, so exactly one of two racing callers wins.
    """
    conn.execute(
        _insert(conn, sync_locks).values(name=name).on_conflict_do_nothing(
            index_elements=["name"])
    )
    result = conn.execute(
        sa.update(sync_locks)
        .where(
            sync_locks.c.name == name,
            sa.or_(sync_locks.c.holder.is_(None), sync_locks.c.lease_until < now,
                   sync_locks.c.holder == holder),
        )
        .values(holder=holder, lease_until=lease_until, acquired_at=now)
    )
    return result.rowcount == 1


def renew_lock(conn: sa.Connection, name: str, holder: str, lease_until: datetime) -> bool:
    """Extend our lease; False when it was lost (expired and taken by another run)."""
    result = conn.execute(
        sa.update(sync_locks)
        .where(sync_locks.c.name == name, sync_locks.c.holder == holder)
        .values(lease_until=lease_until)
    )
    return result.rowcount == 1


def release_lock(conn: sa.Connection, name: str, holder: str) -> None:
    conn.execute(
        sa.update(sync_locks)
        .where(sync_locks.c.name == name, sync_locks.c.holder == holder)
        .values(holder=None, lease_until=None)
    )


def lock_state(conn: sa.Connection, name: str) -> sa.Row[Any] | None:
    return conn.execute(sa.select(sync_locks).where(sync_locks.c.name == name)).first()


class AnswerRow(NamedTuple):
    """A credited answer as the report reads it (the column order of :func:`all_answers`)."""

    token: str
    helpdesk: str
    dialog_id: str
    agent_key: str
    issued_at: datetime
    rating: int
    comment: str | None
    submitted_at: datetime


def all_answers(conn: sa.Connection) -> list[AnswerRow]:
    """Every credited answer (the current submission of each survey)."""
    return _bulk_select(conn, sa.select(*[answers.c[name] for name in AnswerRow._fields]),
                        row_type=AnswerRow)


def survey_facts(conn: sa.Connection) -> list[Any]:
    """What the metrics need of every survey with a token: agent, team, status, cohort time."""
    return _bulk_select(conn, sa.select(
        surveys.c.token, surveys.c.helpdesk, surveys.c.dialog_id, surveys.c.agent_id,
        surveys.c.agent_name, surveys.c.agent_email, surveys.c.team, surveys.c.status,
        surveys.c.created_at).where(surveys.c.token.is_not(None)))


@functools.cache
def _row_type(names: tuple[str, ...]) -> Any:
    return collections.namedtuple("Row", names)


def _bulk_select(conn: sa.Connection, stmt: sa.Select[Any], row_type: Any = None) -> list[Any]:
    """Rows of ``stmt`` as named tuples, read without SQLAlchemy's per-value processing.

    The counterpart of :func:`_bulk_execute` for the sync's large reads (every survey, every
    answer): datetimes come back aware UTC as :class:`~csat_hook.db.UTCDateTime` returns them,
    other columns as the driver returns them (only plain types are allowed here).
    """
    compiled = stmt.compile(dialect=conn.dialect)
    names = tuple(column.key for column in stmt.selected_columns)
    converters = []
    for column in stmt.selected_columns:
        if isinstance(column.type, UTCDateTime):
            converters.append(_datetime_from_db(conn.dialect.name))
        elif column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None):
            raise TypeError(f"{column.key}: needs type processing; use conn.execute")
        else:
            converters.append(None)
    params = compiled.construct_params()
    if compiled.positiontup is not None:
        params = tuple(params[name] for name in compiled.positiontup)
    result = conn.exec_driver_sql(compiled.string, params)
    row_type = row_type or _row_type(names)
    if not any(converters):
        return [row_type._make(row) for row in result]
    return [row_type._make([value if convert is None or value is None else convert(value)
                            for convert, value in zip(converters, row, strict=True)])
            for row in result]


def _datetime_from_db(dialect_name: str) -> Any:
    if dialect_name == "sqlite":
        parse = datetime.fromisoformat

        def from_text(value: str) -> datetime:
            # Stored naive UTC. Parsing with the offset appended is several times faster than
            # parsing and then replacing tzinfo (a sync converts ~350,000 of these).
            try:
                return parse(value + "+00:00")
            except ValueError:  # written with an offset by something else
                return parse(value).astimezone(UTC)
        return from_text

    def from_naive(value: datetime) -> datetime:
        # The constructor is about four times faster than value.replace(tzinfo=UTC).
        return datetime(value.year, value.month, value.day, value.hour, value.minute,
                        value.second, value.microsecond, UTC)
    return from_naive


def list_unverified(conn: sa.Connection, limit: int) -> list[sa.Row[Any]]:
    """Unverified answers, newest first."""
    return list(conn.execute(
        sa.select(unverified_answers)
        .order_by(unverified_answers.c.submitted_at.desc().nulls_last(),
                  unverified_answers.c.id.desc())
        .limit(limit)
    ).all())


def count_by(conn: sa.Connection, table_name: str) -> dict[str, int]:
    """Rows per reason in ``unverified_answers`` or ``sync_skipped_rows``."""
    table = {"unverified_answers": unverified_answers,
             "sync_skipped_rows": sync_skipped_rows}[table_name]
    rows = conn.execute(sa.select(table.c.reason, sa.func.count()).group_by(table.c.reason))
    return {reason: int(n) for reason, n in rows}


def count_answers(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(answers)).scalar_one())
