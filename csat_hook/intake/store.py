"""Every statement intake runs: storing surveys, and the send policy's look-backs.

Each function takes a :class:`sqlalchemy.Connection` first and runs inside the caller's
transaction: the caller owns the unit of work. Idempotency comes from unique constraints and
conditional updates, never from read-then-write.
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
from csat_hook.db.schema import QUEUED
from csat_hook.db.schema import SENT
from csat_hook.db.schema import surveys


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


def dialog_surveyed_since(
    conn: sa.Connection, helpdesk: str, dialog_id: str, since: datetime
) -> bool:
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
