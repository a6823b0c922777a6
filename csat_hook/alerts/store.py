"""Every statement the alerts flow runs: alerts, the rules' remembered state, the reply context
of a survey, the Alerts tab's rows and its "handled" column.

Each function takes a :class:`sqlalchemy.Connection` first and runs inside the caller's
transaction (the sync's, for raising alerts: they are stored with the answers that raised
them, or not at all). Alert deliveries are queued through :mod:`csat_hook.outbox.store`.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import NamedTuple

import sqlalchemy as sa

from csat_hook.alerts.records import AGENT
from csat_hook.alerts.records import ANSWER
from csat_hook.alerts.records import DIGEST_KIND
from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import ALERT
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import REPLY
from csat_hook.db.schema import SENDING
from csat_hook.db.schema import alert_state
from csat_hook.db.schema import alerts
from csat_hook.db.schema import answers
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.db.text import clipped
from csat_hook.db.text import in_chunks
from csat_hook.db.text import is_storable
from csat_hook.db.text import storable
from csat_hook.outbox import store as outbox_store

_IN_CHUNK = 500
MAX_HANDLED = 100


def insert_alert(conn: sa.Connection, row: Mapping[str, Any]) -> int | None:
    """Store an alert; its id, or None when one with the same ``key`` exists (raised before)."""
    stmt = (
        dialect_insert(conn.dialect.name, alerts)
        .values(**row)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(alerts.c.id)
    )
    return conn.execute(stmt).scalar()


def capped_deliveries(conn: sa.Connection, destination: str, since: datetime) -> int:
    """The deliveries to ``destination`` since ``since`` that ``alerts.cap_per_hour`` counts:
    alerts about answers and agents, held ones not counted. Digests and cap notices are not
    counted (documented): a digest sent this hour must not hold the bad rating after it; nor
    is a follow-up (the same alert again to e-mail recipients that refused it for now)."""
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(outbox.join(alerts, outbox.c.alert_id == alerts.c.id))
            .where(
                outbox.c.destination == destination,
                outbox.c.created_at >= since,
                outbox.c.kind == ALERT,
                outbox.c.status != CANCELLED,
                alerts.c.kind.in_([ANSWER, AGENT]),
                sa.not_(outbox_store.is_follow_up()),
            )
        ).scalar_one()
    )


def existing_keys(conn: sa.Connection, keys: Sequence[str], *, standing: bool = False) -> set[str]:
    """Which of ``keys`` are alerts already (``standing``: and not withdrawn, their
    ``cancelled_at`` unset)."""
    found: set[str] = set()
    for chunk in in_chunks(keys, _IN_CHUNK):
        query = sa.select(alerts.c.key).where(alerts.c.key.in_(chunk))
        if standing:
            query = query.where(alerts.c.cancelled_at.is_(None))
        found.update(conn.execute(query).scalars())
    return found


def withdraw(conn: sa.Connection, keys: Sequence[str], reason: str, now: datetime) -> list[int]:
    """Mark the answer alerts ``keys`` withdrawn for ``reason`` (those not withdrawn already);
    their ids. Their deliveries are the caller's to cancel
    (:func:`csat_hook.outbox.store.cancel_withdrawn`)."""
    return _withdraw(conn, alerts.c.key, keys, reason, now, alerts.c.kind == ANSWER)


def withdraw_ids(
    conn: sa.Connection, alert_ids: Sequence[int], reason: str, now: datetime
) -> list[int]:
    """Mark the alerts ``alert_ids`` withdrawn for ``reason`` (those not withdrawn already);
    their ids. Their deliveries are the caller's to cancel, as for :func:`withdraw`."""
    return _withdraw(conn, alerts.c.id, alert_ids, reason, now)


def _withdraw(
    conn: sa.Connection,
    column: sa.Column[Any],
    values: Sequence[Any],
    reason: str,
    now: datetime,
    *where: sa.ColumnElement[bool],
) -> list[int]:
    """Withdraw the standing alerts whose ``column`` is one of ``values`` and that meet every
    ``where``; their ids."""
    ids: list[int] = []
    for chunk in in_chunks(values, _IN_CHUNK):
        ids += conn.execute(
            sa.update(alerts)
            .where(column.in_(chunk), *where, alerts.c.cancelled_at.is_(None))
            .values(cancelled_at=now, cancel_reason=reason)
            .returning(alerts.c.id)
        ).scalars()
    return ids


class Unfinished(NamedTuple):
    """A standing alert with a delivery not finished, and those deliveries' destinations."""

    id: int
    kind: str
    rule: str
    survey_key: str | None
    helpdesk: str | None
    dialog_id: str | None
    payload: Any
    destinations: frozenset[str]


def unfinished(
    conn: sa.Connection, kinds: Sequence[str], raised_before: datetime | None = None
) -> list[Unfinished]:
    """The standing alerts (``cancelled_at`` unset) of ``kinds`` with a delivery ``pending``
    or ``sending``: those the configuration can still stop, few (the outbox sends an alert in
    seconds, unless its destination refuses it for now); only those raised at or before
    ``raised_before`` when it is given."""
    raised = [] if raised_before is None else [alerts.c.created_at <= raised_before]
    rows = conn.execute(
        sa.select(
            alerts.c.id,
            alerts.c.kind,
            alerts.c.rule,
            alerts.c.survey_key,
            alerts.c.helpdesk,
            alerts.c.dialog_id,
            alerts.c.payload,
            outbox.c.destination,
        )
        .join(outbox, outbox.c.alert_id == alerts.c.id)
        .where(
            outbox.c.kind == ALERT,
            outbox.c.status.in_([PENDING, SENDING]),
            alerts.c.kind.in_(list(kinds)),
            alerts.c.cancelled_at.is_(None),
            *raised,
        )
        .order_by(alerts.c.id)
    )
    found: dict[int, Unfinished] = {}
    for row in rows:
        kept = found.get(row.id)
        destinations = frozenset({row.destination or ""})
        if kept is not None:
            destinations |= kept.destinations
        found[row.id] = Unfinished(
            row.id,
            row.kind,
            row.rule,
            row.survey_key,
            row.helpdesk,
            row.dialog_id,
            row.payload,
            destinations,
        )
    return list(found.values())


def current_answers(conn: sa.Connection, survey_keys: Sequence[str]) -> dict[str, Any]:
    """The current answer (a row: ``rating``, ``nps``, ``comment``) of each of
    ``survey_keys`` that has one."""
    found: dict[str, Any] = {}
    for chunk in in_chunks(survey_keys, _IN_CHUNK):
        rows = conn.execute(
            sa.select(
                answers.c.survey_key, answers.c.rating, answers.c.nps, answers.c.comment
            ).where(answers.c.survey_key.in_(chunk))
        )
        found.update((row.survey_key, row) for row in rows)
    return found


def restore(conn: sa.Connection, keys: Sequence[str]) -> list[int]:
    """The withdrawn alerts among ``keys`` standing again (their answer came back to the
    alerted score); their ids. Their cancelled deliveries are the caller's to queue again
    (:func:`csat_hook.outbox.store.requeue_withdrawn`)."""
    ids: list[int] = []
    for chunk in in_chunks(keys, _IN_CHUNK):
        ids += conn.execute(
            sa.update(alerts)
            .where(alerts.c.key.in_(chunk), alerts.c.cancelled_at.is_not(None))
            .values(cancelled_at=None, cancel_reason=None)
            .returning(alerts.c.id)
        ).scalars()
    return ids


class State(NamedTuple):
    state: str
    episode: int
    since: datetime


def states(conn: sa.Connection, names: Sequence[str]) -> dict[str, State]:
    """The remembered states of ``names`` (rules first seen, agents under a rule)."""
    found: dict[str, State] = {}
    for start in range(0, len(names), _IN_CHUNK):
        chunk = list(names[start : start + _IN_CHUNK])
        rows = conn.execute(
            sa.select(
                alert_state.c.name, alert_state.c.state, alert_state.c.episode, alert_state.c.since
            ).where(alert_state.c.name.in_(chunk))
        )
        found.update({name: State(state, episode, since) for name, state, episode, since in rows})
    return found


def save_state(
    conn: sa.Connection, name: str, state: str, episode: int, since: datetime, now: datetime
) -> None:
    stmt = dialect_insert(conn.dialect.name, alert_state).values(
        name=name, state=state, episode=episode, since=since, updated_at=now
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "state": stmt.excluded.state,
                "episode": stmt.excluded.episode,
                "since": stmt.excluded.since,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )


def first_seen(conn: sa.Connection, names: Sequence[str], now: datetime) -> dict[str, datetime]:
    """When each of ``names`` (``rule:<name>``, ``digest:<name>``) was first seen; those seen
    for the first time now are recorded as seen ``now``."""
    known = states(conn, names)
    for name in names:
        if name not in known:
            save_state(conn, name, "seen", 0, now, now)
            known[name] = State("seen", 0, now)
    return {name: known[name].since for name in names}


def digests_reported(conn: sa.Connection, names: Sequence[str]) -> dict[str, date]:
    """For each digest of ``names`` raised before and not withdrawn: the day after the last
    day its latest digest reported (local dates, read from its ``period``:
    ``2026-11-20`` or ``2026-11-09 – 2026-11-15``)."""
    found: dict[str, date] = {}
    for name in names:  # a few digests; one row each (a year of a daily one is 365)
        payload = conn.execute(
            sa.select(alerts.c.payload)
            .where(
                alerts.c.kind == DIGEST_KIND,
                alerts.c.rule == name,
                alerts.c.cancelled_at.is_(None),
            )
            .order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
            .limit(1)
        ).scalar()
        period = str((payload or {}).get("period") or "")
        try:
            found[name] = date.fromisoformat(period[-10:]) + timedelta(days=1)
        except ValueError:
            continue
    return found


def reply_contexts(conn: sa.Connection, tokens: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The reply context (a Chatwoot account, an Intercom admin...) each survey's reply was
    queued with, by the survey's token: a note goes to the same conversation the same way."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(tokens), _IN_CHUNK):
        chunk = list(tokens[start : start + _IN_CHUNK])
        rows = conn.execute(
            sa.select(surveys.c.token, outbox.c.context)
            .join(outbox, outbox.c.survey_id == surveys.c.id)
            .where(surveys.c.token.in_(chunk), outbox.c.kind == REPLY)
        )
        found.update({token: dict(context or {}) for token, context in rows})
    return found


# --- the Alerts tab ---------------------------------------------------------------------------


def listed_alerts(conn: sa.Connection, kinds: Sequence[str], limit: int) -> list[sa.Row[Any]]:
    """The latest alerts of ``kinds``, newest first."""
    return list(
        conn.execute(
            sa.select(alerts)
            .where(alerts.c.kind.in_(list(kinds)))
            .order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
            .limit(limit)
        ).all()
    )


def deliveries_of(conn: sa.Connection, alert_ids: Sequence[int]) -> dict[int, list[Any]]:
    """The outbox rows of these alerts, by alert id, oldest first: one per destination, and
    after it its follow-ups (``delivery_key`` says which, see
    :func:`csat_hook.outbox.store.follow_up_generation`)."""
    found: dict[int, list[Any]] = {}
    for start in range(0, len(alert_ids), _IN_CHUNK):
        chunk = list(alert_ids[start : start + _IN_CHUNK])
        rows = conn.execute(
            sa.select(
                outbox.c.id,
                outbox.c.alert_id,
                outbox.c.destination,
                outbox.c.delivery_key,
                outbox.c.status,
                outbox.c.attempts,
                outbox.c.last_error,
                outbox.c.sent_at,
                outbox.c.uncertain_since,
            )
            .where(outbox.c.kind == ALERT, outbox.c.alert_id.in_(chunk))
            .order_by(outbox.c.id)
        )
        for row in rows:
            found.setdefault(row.alert_id, []).append(row)
    return found


def clean_handled(value: Any) -> str | None:
    """A "handled" cell as stored: text made one line and :func:`clipped` to 100 characters
    (never half of an emoji or a letter without its accent), without what the database
    refuses (NUL, lone surrogates: a team's cell must not stop every sync); None when
    blank."""
    if value is None or value is False:
        return None
    text = "yes" if value is True else " ".join(storable(str(value)).split())
    return clipped(text, MAX_HANDLED) or None


def set_handled(conn: sa.Connection, ids: Sequence[int], value: str | None, now: datetime) -> int:
    """Mark alerts handled (``value``: who or how) or not (None); how many exist."""
    handled = clean_handled(value)
    result = conn.execute(
        sa.update(alerts)
        .where(alerts.c.id.in_(list(ids)))
        .values(handled=handled, handled_at=now if handled else None)
    )
    return int(result.rowcount)


# The alerts.id column's range: BIGINT on PostgreSQL, SQLite's INTEGER (64-bit signed). A
# number beyond it compared with the column fails the statement (NumericValueOutOfRange on
# PostgreSQL, OverflowError from sqlite3).
MAX_ALERT_ID = 2**63 - 1
ALERT_ID_DIGITS = len(str(MAX_ALERT_ID))


def as_alert_id(value: Any) -> int | None:
    """``value`` when it is an int an alert's id can be (1 to :data:`MAX_ALERT_ID`), else
    None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ALERT_ID:
        return value
    return None


def merge_sheet_handled(conn: sa.Connection, cells: Mapping[int, str | None], now: datetime) -> int:
    """Take the team's edits of the Alerts tab's "Handled" column: a cell that differs from
    what the sync last wrote there was changed in the sheet, and wins; a cell equal to it
    leaves the database as it is (``csat-hook alerts handle`` may have changed it since).
    Returns how many alerts changed. A number no alert can have is left out: compared with
    the id column, it would fail the statement."""
    ids = [alert_id for alert_id in cells if as_alert_id(alert_id) is not None]
    changed = 0
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        rows = conn.execute(
            sa.select(alerts.c.id, alerts.c.handled, alerts.c.handled_sheet).where(
                alerts.c.id.in_(chunk)
            )
        )
        for alert_id, handled, written in rows:
            cell = clean_handled(cells[alert_id])
            if cell != written and cell != handled:
                conn.execute(
                    sa.update(alerts)
                    .where(alerts.c.id == alert_id)
                    .values(handled=cell, handled_at=now if cell else None)
                )
                changed += 1
    return changed


def mark_written(conn: sa.Connection, written: Mapping[int, str | None]) -> None:
    """Remember what the Alerts tab's "Handled" cells now hold (after a successful write).
    Only cells that changed are updated: an update is a write to the alerts, which the report's
    data version counts (sync/report_key.py)."""
    rows = [{"alert_id": k, "value": v} for k, v in written.items()]
    if rows:
        conn.execute(
            sa.update(alerts)
            .where(alerts.c.id == sa.bindparam("alert_id"))
            .where(alerts.c.handled_sheet.is_distinct_from(sa.bindparam("value")))
            .values(handled_sheet=sa.bindparam("value")),
            rows,
        )


def alert_by_ref_or_id(conn: sa.Connection, ident: str) -> sa.Row[Any] | None:
    """An alert by its id (digits) or its reference; None for text no reference can be (one
    the database cannot even compare: a lone surrogate from argv that is not UTF-8)."""
    if not is_storable(ident):
        return None
    digits = ident.isascii() and ident.isdecimal() and len(ident) <= ALERT_ID_DIGITS
    number = as_alert_id(int(ident)) if digits else None
    where = alerts.c.id == number if number is not None else alerts.c.ref == ident
    return conn.execute(sa.select(alerts).where(where)).first()
