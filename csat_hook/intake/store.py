"""Every statement intake runs: storing surveys, and the send policy's look-backs.

Each function takes a :class:`sqlalchemy.Connection` first and runs inside the caller's
transaction: the caller owns the unit of work. Idempotency comes from unique constraints and
conditional updates, never from read-then-write.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import NamedTuple

import sqlalchemy as sa

from csat_hook.db.engine import dialect_insert
from csat_hook.db.frozen import driver_rows
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import QUEUED
from csat_hook.db.schema import REPLY
from csat_hook.db.schema import SENDING
from csat_hook.db.schema import SENT
from csat_hook.db.schema import SKIPPED
from csat_hook.db.schema import UTCDateTime
from csat_hook.db.schema import early_reopens
from csat_hook.db.schema import naive_utc
from csat_hook.db.schema import naive_utc_iso
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.db.text import folded
from csat_hook.db.text import in_chunks
from csat_hook.outbox import wake
from csat_hook.outbox.store.enqueue import REOPENED


# The webhook's hot path runs this on every close. Built once per dialect and executed with
# parameters: compiled once, and sent as one multi-row INSERT for a whole batch
# ("insertmanyvalues"); building it with .values() per call costs more than the database work.
@functools.cache
def _insert_surveys_stmt(dialect_name: str) -> Any:
    return (
        dialect_insert(dialect_name, surveys)
        .on_conflict_do_nothing(index_elements=["helpdesk", "dialog_id", "occurrence"])
        .returning(surveys.c.id, surveys.c.helpdesk, surveys.c.dialog_id, surveys.c.occurrence)
    )


SURVEY_COLUMNS = tuple(c.name for c in surveys.c if c.name != "id")


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


# The skip reason of a close the helpdesk says happened no later than a remembered reopen of
# its dialog (:func:`remember_reopen`): the dialog was reopened after it. Like a survey a
# reopen cancelled, a later close of the dialog re-arms it (:func:`revive_survey`).
REOPENED_AFTER_CLOSE = "reopened_after_close"
# How long a reopen with a believable time is remembered (by its receive time): a close
# delivered later than that after its reopen is surveyed as before.
REOPEN_MEMORY = timedelta(days=7)
# The most remembered reopens one prune deletes (it runs in a transaction of its own).
REOPEN_PRUNE_BATCH = 2_000


def remember_reopen(
    conn: sa.Connection,
    helpdesk: str,
    dialog_id: str,
    reopened_at: datetime,
    received_at: datetime,
) -> None:
    """Remember a reopen (it may have been delivered before its own close, whether or not it
    cancelled an earlier close's survey), at ``reopened_at``, the helpdesk's believable time
    for it. One row per dialog: the latest reopen time is kept (a reopen delivered twice, or
    an older one delivered late, changes nothing)."""
    stmt = dialect_insert(conn.dialect.name, early_reopens).values(
        helpdesk=helpdesk, dialog_id=dialog_id, reopened_at=reopened_at, received_at=received_at
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["helpdesk", "dialog_id"],
            set_={
                "reopened_at": stmt.excluded.reopened_at,
                "received_at": stmt.excluded.received_at,
            },
            where=early_reopens.c.reopened_at < stmt.excluded.reopened_at,
        )
    )


# Built once: a close on SQLite runs it for every batch (with cancel_on_reopen, the default),
# and building it per call (the tuple IN's coercions, a new cache key) cost a quarter of the
# close's CPU there.
_REMEMBERED_REOPENS = sa.select(
    early_reopens.c.helpdesk, early_reopens.c.dialog_id, early_reopens.c.reopened_at
).where(
    sa.tuple_(early_reopens.c.helpdesk, early_reopens.c.dialog_id).in_(
        sa.bindparam("dialogs", expanding=True)
    )
)


def remembered_reopens(
    conn: sa.Connection, dialogs: Collection[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """(helpdesk, dialog id) → the remembered reopen time, for those of ``dialogs`` that have
    one: one statement (by the primary key) for a batch of closes."""
    found: dict[tuple[str, str], datetime] = {}
    for chunk in in_chunks(sorted(set(dialogs)), FOLD_CHUNK):
        rows = conn.execute(_REMEMBERED_REOPENS, {"dialogs": chunk})
        found.update(((r.helpdesk, r.dialog_id), r.reopened_at) for r in rows)
    return found


def reopened_after(
    closed_at: datetime | None, received: datetime, reopened_at: datetime | None
) -> bool:
    """Whether a close stored with ``closed_at`` (``storable.trusted_close_time``), received at
    ``received``, is stale: its dialog has a remembered reopen at ``reopened_at`` no earlier
    than it. A close time that is the receive time was not believed (as for
    ``kept_on_reopen``): such a close, like one with no time, is never stale. A reopen at the
    very time of the close counts as after it, as ``cancel_waiting`` cancels for it."""
    return (
        reopened_at is not None
        and closed_at is not None
        and closed_at != received
        and closed_at <= reopened_at
    )


def prune_reopens(conn: sa.Connection, before: datetime, *, limit: int = REOPEN_PRUNE_BATCH) -> int:
    """Forget the remembered reopens received before ``before``, at most ``limit`` of the
    oldest; how many."""
    oldest = (
        sa.select(early_reopens.c.helpdesk, early_reopens.c.dialog_id)
        .where(early_reopens.c.received_at < before)
        .order_by(early_reopens.c.received_at)
        .limit(limit)
    )
    result = conn.execute(
        sa.delete(early_reopens).where(
            sa.tuple_(early_reopens.c.helpdesk, early_reopens.c.dialog_id).in_(oldest)
        )
    )
    return int(result.rowcount or 0)


def revive_survey(conn: sa.Connection, row: Mapping[str, Any]) -> int | None:
    """Re-arm a survey that was cancelled (the dialog reopened before it went out), or skipped
    because its dialog was reopened after its close (:data:`REOPENED_AFTER_CLOSE`), for a new
    close of the same dialog; None when the existing survey was neither (a duplicate).

    Only for a close whose key may repeat on a new close (the recorder's ``may_revive``): for
    any other, the same key again is a retry or replay of the close that was cancelled. And
    only for a genuinely new close, one that is none of these:

    * a close the helpdesk dates no later than the cancelled one (:data:`LATER_CLOSE`): that
      close's own retry or replay, whose survey would go into a conversation open again (when
      either close time is unknown, this does not decide);
    * the same delivery again (:data:`SAME_DELIVERY`): a close whose body is the cancelled
      close's (``close_digest``) received within :data:`RETRY_WINDOW` of it. Where the
      helpdesk names no close time (Freshdesk) this is all that tells a retry from a new
      close; a re-close whose body is the same as the first's, within the window, is taken
      for a retry (no survey), one after it for a new close;
    * for a survey whose reply a GDPR erasure cancelled (:data:`ERASED`), any close the
      helpdesk does not date later than the erased one, both times known and believed (not
      the receive time): an erasure is never undone by a retry, however late.
    """
    values = {name: row.get(name) for name in SURVEY_COLUMNS}
    later = (
        sa.or_(surveys.c.closed_at.is_(None), surveys.c.closed_at < values["closed_at"])
        if values["closed_at"] is not None
        else sa.true()
    )
    new_delivery: sa.ColumnElement[bool] = sa.true()
    if values["close_digest"] is not None:
        new_delivery = sa.or_(
            surveys.c.close_digest.is_(None),
            surveys.c.close_digest != values["close_digest"],
            surveys.c.created_at <= row["created_at"] - RETRY_WINDOW,
        )
    dated_later: sa.ColumnElement[bool] = sa.false()
    if values["closed_at"] is not None and values["closed_at"] != values["created_at"]:
        dated_later = sa.and_(
            surveys.c.closed_at < values["closed_at"],
            surveys.c.closed_at != surveys.c.created_at,
        )
    erased = sa.exists().where(outbox.c.survey_id == surveys.c.id, outbox.c.erased_at.is_not(None))
    revived = conn.execute(
        sa.update(surveys)
        .where(
            surveys.c.helpdesk == values["helpdesk"],
            surveys.c.dialog_id == values["dialog_id"],
            surveys.c.occurrence == values["occurrence"],
            sa.or_(
                surveys.c.status == CANCELLED,
                sa.and_(surveys.c.status == SKIPPED, surveys.c.skip_reason == REOPENED_AFTER_CLOSE),
            ),
            later,
            new_delivery,
            sa.or_(~erased, dated_later),
        )
        .values(**{k: v for k, v in values.items() if k not in ("helpdesk", "dialog_id")})
        .returning(surveys.c.id)
    ).scalar()
    return int(revived) if revived is not None else None


def redecide_surveys(conn: sa.Connection, decisions: Mapping[int, str | None]) -> None:
    """Set the surveys ``decisions`` names (id → skip reason, None: queued), stored earlier
    in the caller's transaction with another decision, to this one: ``skipped`` with the
    reason, or ``queued``. Nothing is run for none (nearly every batch)."""
    for survey_id, reason in decisions.items():
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.id == survey_id)
            .values(status=SKIPPED if reason else QUEUED, skip_reason=reason)
        )


# Look-backs ask about surveys that went out or are about to: queued or sent.
_LIVE = (QUEUED, SENT)


def _latest_by(column: sa.ColumnElement[Any], time: sa.ColumnElement[Any]) -> Any:
    """The latest live survey per value of ``column`` among the ``keys`` given, in one
    helpdesk, by ``time``, at or after ``since``. Built once (a close under a look-back
    policy runs these for its batch)."""
    return (
        sa.select(column, sa.func.max(time))
        .where(
            surveys.c.helpdesk == sa.bindparam("helpdesk"),
            column.in_(sa.bindparam("keys", expanding=True)),
            surveys.c.status.in_(_LIVE),
            time >= sa.bindparam("since", type_=UTCDateTime()),
        )
        .group_by(column)
    )


# The time of a dialog's survey the re-close grace is counted from: when its reply went out,
# else (still queued) its close. Counted from the close alone, a send delay at or past the
# grace made the vendor's own re-close after our reply (Intercom and Zendesk close the dialog
# again: keep_closed) a close past the grace: a new survey in the same dialog after every
# reply, for ever.
_REPLIED_AT = sa.func.coalesce(surveys.c.sent_at, surveys.c.created_at)
# By look-back kind (policy.LookBackKey): what the key's last part is compared with, and the
# survey's time. An e-mail key holds the database's lower() of the address (fold_emails),
# compared with the stored address lowered the same way: the expression of the index of
# migration 0028. A customer's cool-down counts from their surveys' closes (the indexes'
# time).
_LATEST = {
    "dialog": _latest_by(surveys.c.dialog_id, _REPLIED_AT),
    "customer": _latest_by(surveys.c.customer_id, surveys.c.created_at),
    "email": _latest_by(folded(surveys.c.customer_email), surveys.c.created_at),
}


def latest_surveys(
    conn: sa.Connection,
    keys: Collection[tuple[str, str, str]],
    since: Mapping[str, datetime],
) -> dict[tuple[str, str, str], datetime]:
    """For look-back keys (``(kind, helpdesk, value)``: "dialog" and a dialog id,
    "customer" and a customer id, "email" and an address as the database lowers it), the
    time of the latest queued or sent survey each has, if at or after ``since[kind]``; keys
    without one are left out. A customer's survey's time is its creation (its close); a
    dialog's, when its reply went out (its close while still queued).

    A dialog or customer was surveyed after any time no earlier than ``since[kind]`` exactly
    when the time returned is at or after it: one statement per kind and helpdesk answers a
    whole batch of closes (each asking after its own time), where a statement per close cost
    each close two round trips. Every look-up is an index search (helpdesk and dialog id;
    helpdesk, customer id and time; helpdesk, lowered e-mail and time)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for kind, helpdesk, value in keys:
        groups.setdefault((kind, helpdesk), []).append(value)
    found: dict[tuple[str, str, str], datetime] = {}
    for (kind, helpdesk), values in sorted(groups.items()):
        for chunk in in_chunks(sorted(set(values))):
            rows = conn.execute(
                _LATEST[kind], {"helpdesk": helpdesk, "keys": chunk, "since": since[kind]}
            )
            found.update(((kind, helpdesk, value), latest) for value, latest in rows)
    return found


# How many e-mails one fold_emails statement lowers: one column each, and PostgreSQL allows at
# most 1,664 in a select list (a batch of closes holds at most 128).
FOLD_CHUNK = 500


@functools.lru_cache(maxsize=32)
def _fold_stmt(count: int) -> Any:
    """``SELECT lower(:e0), lower(:e1), …`` for ``count`` e-mails, built once per count."""
    return sa.select(*(folded(sa.bindparam(f"e{i}", type_=sa.String())) for i in range(count)))


def fold_emails(conn: sa.Connection, emails: Collection[str]) -> dict[str, str]:
    """Each e-mail → the database's lower() of it (:func:`~csat_hook.db.text.folded`): the
    fold :func:`latest_surveys` compares with, so that keys built from it (a batch's
    look-back keys and locks) call two addresses one customer exactly when the look-back
    does. One statement per :data:`FOLD_CHUNK` e-mails; none without e-mails."""
    found: dict[str, str] = {}
    for chunk in in_chunks(dict.fromkeys(emails), FOLD_CHUNK):
        row = conn.execute(
            _fold_stmt(len(chunk)), {f"e{i}": email for i, email in enumerate(chunk)}
        ).one()
        found.update(zip(chunk, row, strict=True))
    return found


def lock_look_backs(conn: sa.Connection, keys: Iterable[Sequence[str]]) -> None:
    """PostgreSQL: hold a transaction lock on each key (see ``policy.look_back_keys``) until
    the caller's transaction ends, so closes that share one are decided one after the other.

    Under READ COMMITTED two processes recording two closes of one dialog (or two dialogs of
    one customer) at once each looked back, found nothing the other had committed, and both
    sent a survey. Advisory locks, taken in the order of their ids so that two batches never
    wait for each other in a cycle; the ids are 64 bits of a SHA-256, so an unrelated pair
    sharing one only waits. SQLite needs none: a writer holds it from BEGIN IMMEDIATE."""
    if conn.dialect.name != "postgresql":
        return
    ids = {
        int.from_bytes(
            hashlib.sha256(json.dumps(list(key)).encode()).digest()[:8], "big", signed=True
        )
        for key in keys
    }
    if ids:
        conn.execute(_LOCKS, {"ids": sorted(ids)})


# Every lock of a batch in one statement, taken in ascending order: PostgreSQL evaluates a
# volatile function of the select list after the ORDER BY sort (since 9.6), row by row.
_LOCKS = sa.text(
    "SELECT pg_advisory_xact_lock(id) FROM unnest(CAST(:ids AS BIGINT[])) AS id ORDER BY id"
)


# PostgreSQL, no send-policy look-back: a whole batch of closes in ONE statement, run in
# autocommit (no BEGIN, no COMMIT round trip): the surveys INSERT, the revival of cancelled
# surveys, the outbox INSERT for the queued ones and the NOTIFY, all data-modifying CTEs of
# one statement, so they commit together or not at all. The rows travel as ONE JSON
# parameter (json_to_recordset), so the statement text is the same for every batch size and
# psycopg prepares it once per connection; one array per column (unnest) cost psycopg
# 0.33 ms of CPU per batch to dump 21 lists, one JSON text 0.01 ms.
_REVIVED_COLUMNS = tuple(
    c for c in SURVEY_COLUMNS if c not in ("helpdesk", "dialog_id", "occurrence")
)
_ENQUEUE_RESET = (
    "status = excluded.status, attempts = 0, next_attempt_at = excluded.next_attempt_at,"
    " context = excluded.context, lease_until = NULL, claimed_by = NULL, last_error = NULL,"
    " last_http_status = NULL, updated_at = excluded.updated_at, erased_at = NULL"
)


def _pg_field_type(column: sa.Column[Any]) -> str:
    return "timestamp" if isinstance(column.type, UTCDateTime) else "text"


_TIME_FIELDS = tuple(n for n in SURVEY_COLUMNS if _pg_field_type(surveys.c[n]) == "timestamp")
_TEXT_FIELDS = tuple(n for n in SURVEY_COLUMNS if n not in _TIME_FIELDS)


# A close re-arms a cancelled survey only when the helpdesk's close time says it is a later
# close than the one the survey was for (or either time is unknown): under ``per_dialog:
# once`` the key has no occurrence, and a vendor's late retry, or a replay of a signed body
# that carries no time of its own (Help Scout, Intercom), is otherwise a new close.
LATER_CLOSE = "(s.closed_at IS NULL OR v.closed_at IS NULL OR s.closed_at < v.closed_at)"
# How long after a close was received a close with the same body is taken for its retry
# rather than a new close (SAME_DELIVERY). Freshdesk retries a failed webhook 5, 30 and 60
# minutes after the attempt before: its last retry comes about 95 minutes after the first.
RETRY_WINDOW = timedelta(hours=2)
# A close whose body is the one the survey's close had (its digest, surveys.close_digest),
# received within RETRY_WINDOW of it, is that close delivered again: a retry whose answer we
# sent was lost, however it names its time. Without it, a close naming no time (Freshdesk)
# re-armed the survey a reopen (or an erasure) had cancelled: a survey in a reopened dialog.
SAME_DELIVERY = (
    "COALESCE(s.close_digest = v.close_digest"
    f" AND v.created_at < s.created_at + interval '{int(RETRY_WINDOW.total_seconds())} seconds',"
    " false)"
)
# A survey whose reply a GDPR erasure cancelled (``outbox.erased_at``: erasure/store.py) is
# re-armed only by a close the helpdesk dates later than the erased one, both times known and
# believed (a time that is the receive time was not: storable.trusted_close_time).
ERASED = "EXISTS (SELECT 1 FROM outbox AS o WHERE o.survey_id = s.id AND o.erased_at IS NOT NULL)"
DATED_LATER = (
    "(s.closed_at IS NOT NULL AND v.closed_at IS NOT NULL AND s.closed_at <> s.created_at"
    " AND v.closed_at <> v.created_at AND s.closed_at < v.closed_at)"
)
# A survey a later close re-arms: cancelled by a reopen, or skipped because a reopen came
# after its close (REOPENED_AFTER_CLOSE).
REVIVABLE = (
    f"(s.status = '{CANCELLED}' OR (s.status = '{SKIPPED}'"
    f" AND s.skip_reason = '{REOPENED_AFTER_CLOSE}'))"
)


@functools.cache
def _record_closes_sql(reopens: bool) -> str:
    fields = [(name, _pg_field_type(surveys.c[name])) for name in SURVEY_COLUMNS]
    fields += [("context", "text"), ("send_at", "timestamp"), ("revive", "boolean")]
    record = ", ".join(f"{name} {kind}" for name, kind in fields)
    columns = ", ".join(SURVEY_COLUMNS)
    # A queued close the helpdesk says happened no later than a remembered reopen of its
    # dialog is stale (see reopened_after): skipped, decided in the statement itself by one
    # primary-key probe per close (a join on the whole key: at most one row). Every other
    # column as sent.
    stale, remembered = "false", ""
    if reopens:
        stale = (
            f"(r.status = '{QUEUED}' AND r.closed_at <> r.created_at"
            " AND r.closed_at <= e.reopened_at)"
        )
        remembered = (
            " LEFT JOIN early_reopens AS e ON e.helpdesk = r.helpdesk AND e.dialog_id = r.dialog_id"
        )
    decided = {
        "status": f"CASE WHEN {stale} THEN '{SKIPPED}' ELSE r.status END AS status",
        "skip_reason": (
            f"CASE WHEN {stale} THEN '{REOPENED_AFTER_CLOSE}' ELSE r.skip_reason END AS skip_reason"
        ),
    }
    select = ", ".join(decided.get(name, f"r.{name}") for name, _ in fields)
    revive = ", ".join(f"{name} = v.{name}" for name in _REVIVED_COLUMNS)
    same_key = (
        "s.helpdesk = v.helpdesk AND s.dialog_id = v.dialog_id AND s.occurrence = v.occurrence"
    )
    # Only the schema's column names and this module's constants go into the text; every
    # value is a bound parameter.
    return (
        f"WITH r AS (SELECT * FROM json_to_recordset(%(rows)s::json) AS r({record})),"  # noqa: S608
        f" v AS (SELECT {select} FROM r{remembered}),"
        f" new AS (INSERT INTO surveys ({columns}) SELECT {columns} FROM v"
        " ON CONFLICT (helpdesk, dialog_id, occurrence) DO NOTHING"
        " RETURNING id, helpdesk, dialog_id, occurrence, status, skip_reason),"
        # A close of a dialog whose survey was cancelled (reopened before it went out) re-arms
        # it when its key may repeat on a new close (v.revive; see revive_survey); the INSERT
        # above left that row alone (a conflict), so no row is touched twice.
        f" revived AS (UPDATE surveys AS s SET {revive} FROM v"
        f" WHERE {same_key} AND v.revive AND {REVIVABLE} AND {LATER_CLOSE}"
        f" AND NOT {SAME_DELIVERY} AND (NOT {ERASED} OR {DATED_LATER})"
        " RETURNING s.id, s.helpdesk, s.dialog_id, s.occurrence, s.status, s.skip_reason),"
        " stored AS (SELECT * FROM new UNION ALL SELECT * FROM revived),"
        " queued AS (INSERT INTO outbox (survey_id, helpdesk, dialog_id, context, status,"
        " attempts, next_attempt_at, created_at, updated_at)"
        f" SELECT s.id, v.helpdesk, v.dialog_id, v.context::json, '{PENDING}', 0, v.send_at,"
        " v.created_at, v.created_at FROM stored AS s JOIN v ON"
        f" {same_key} WHERE s.status = '{QUEUED}'"
        f" ON CONFLICT (survey_id) DO UPDATE SET {_ENQUEUE_RESET} RETURNING survey_id),"
        f" woken AS (SELECT {wake.notify_one_sql('alive_since')}"
        f" FROM (SELECT 1 FROM queued LIMIT 1) AS any_queued){_unmark_sql(reopens)}"
        " SELECT id, helpdesk, dialog_id, occurrence, status, skip_reason,"
        " (SELECT count(*) FROM woken) AS woken FROM stored"
    )


def _unmark_sql(reopens: bool) -> str:
    """The CTE that takes a reopen's mark off the replies of a dialog closed again after it
    (``outbox.store.unmark_reopened``, for the closes found recorded: a key that may close
    again, not stored by this statement), or nothing without ``reopens``. A mark is only
    ever our own ISO time; anything else is left, never cast (a cast error would refuse the
    whole batch)."""
    if not reopens:
        return ""
    mark = f"o.context ->> '{REOPENED}'"
    return (  # constants only: no value goes into the text
        f", unmarked AS (UPDATE outbox AS o SET context = (o.context::jsonb - '{REOPENED}')::json"  # noqa: S608
        # The dialog's replies through its surveys (their key's index, then the outbox's
        # unique survey_id): a batch reads only the rows of its dialogs.
        " FROM v JOIN surveys AS d ON d.helpdesk = v.helpdesk AND d.dialog_id = v.dialog_id"
        f" WHERE v.revive AND o.survey_id = d.id AND o.kind = '{REPLY}'"
        f" AND o.status IN ('{PENDING}', '{SENDING}')"
        " AND o.survey_id NOT IN (SELECT id FROM stored)"
        " AND NOT EXISTS (SELECT 1 FROM stored AS s WHERE s.helpdesk = v.helpdesk"
        " AND s.dialog_id = v.dialog_id AND s.occurrence = v.occurrence)"
        f" AND {mark} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T[0-9:.]+[+-][0-9]{{2}}:[0-9]{{2}}$'"
        # The close's own retry (SAME_DELIVERY, of the marked reply's survey) is no later
        # close; one naming no time is dated by its receive time, as on the other path.
        " AND NOT COALESCE(d.close_digest = v.close_digest AND v.created_at < d.created_at"
        f" + interval '{int(RETRY_WINDOW.total_seconds())} seconds', false)"
        f" AND COALESCE(v.closed_at, v.created_at) > (({mark})::timestamptz AT TIME ZONE 'UTC')"
        " RETURNING o.id)"
    )


class Stored(NamedTuple):
    """A survey :func:`record_closes_pg` stored: its id, status and skip reason."""

    id: int
    status: str
    skip_reason: str | None


def record_closes_pg(
    conn: sa.Connection,
    rows: Sequence[Mapping[str, Any]],
    replies: Mapping[tuple[str, str, str], tuple[dict[str, Any], datetime]],
    alive_since: datetime,
    revivable: Collection[tuple[str, str, str]],
    *,
    reopens: bool = True,
) -> dict[tuple[str, str, str], Stored]:
    """PostgreSQL: store surveys (each row: every column but ``id``; keys distinct), revive
    the cancelled ones among them whose key is in ``revivable`` (see :func:`revive_survey`),
    queue a reply for each stored ``queued`` survey (its
    context and send time from ``replies``, by key) and wake one live worker (beat since
    ``alive_since``) when a reply was queued: one statement, atomic on its own (run it in
    autocommit to save BEGIN and COMMIT).

    A ``queued`` row whose close the helpdesk says happened no later than a remembered reopen
    of its dialog (:func:`reopened_after`) is stored skipped (:data:`REOPENED_AFTER_CLOSE`)
    and queues no reply (``reopens`` False: no reopen is looked up, as without
    ``policy.cancel_on_reopen``).

    Returns key → the survey stored (inserted or revived): its id, status and skip reason; a
    key missing is a duplicate.
    """
    if not rows:
        return {}
    records = []
    for row in rows:
        record = {name: row.get(name) for name in _TEXT_FIELDS}
        for name in _TIME_FIELDS:
            record[name] = naive_utc_iso(row.get(name))
        key = (row["helpdesk"], row["dialog_id"], row["occurrence"])
        record["revive"] = key in revivable
        reply = replies.get(key)
        if reply:
            record["context"] = json.dumps(reply[0])
            record["send_at"] = naive_utc_iso(reply[1])
        records.append(record)
    params = {
        # ASCII only: any character the storable-values step let through travels as an
        # escape, and a value PostgreSQL would still refuse is its DataError (a 400), never
        # an encoding error in the driver.
        "rows": json.dumps(records, ensure_ascii=True, separators=(",", ":")),
        "alive_since": naive_utc(alive_since),
    }
    # On psycopg's cursor: SQLAlchemy's result set-up cost more CPU than the statement's
    # own client side (csat_hook/db/frozen.py); errors are SQLAlchemy's all the same.
    result = driver_rows(conn, _record_closes_sql(reopens), params)
    return {(r[1], r[2], r[3]): Stored(int(r[0]), r[4], r[5]) for r in result}
