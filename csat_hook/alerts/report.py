"""The Alerts tab: the latest alerts, what they were about, where they went, and the team's
"Handled" column.

Rows are keyed by the alert's number in column A. The team writes in "Handled" (a name, "yes",
what was done); the sync reads that column back before it rewrites the tab
(:func:`handled_cells`, :func:`csat_hook.alerts.store.merge_sheet_handled`), so an edit is
kept across syncs, and ``csat-hook alerts handle`` sets the same value from the command line
(the .xlsx gets it from the database). Cells are str, int, float, None or, for the times, a
naive local ``datetime`` (to the minute, in ``metrics.timezone``, which the two time columns'
headers name), as in the report: the outputs make it a date-time a spreadsheet can sort.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from csat_hook.alerts import store
from csat_hook.alerts.records import AGENT
from csat_hook.alerts.records import ANSWER
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import SENT
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.render import pct
from csat_hook.outbox import store as outbox_store

Cell = str | int | float | datetime | None
KEY_COLUMN = "Alert"
HANDLED_COLUMN = "Handled"
RAISED_COLUMN = "Raised"
SUBMITTED_COLUMN = "Submitted"
TIME_COLUMNS = (RAISED_COLUMN, SUBMITTED_COLUMN)  # their headers name the zone: "Raised (UTC)"
HEADER: list[str] = [
    KEY_COLUMN,
    RAISED_COLUMN,
    "Rule",
    "Rating",
    "Was",
    "Comment",
    "Agent",
    "Team",
    "Ticket",
    "Ticket link",
    SUBMITTED_COLUMN,
    "Alerted after (min)",
    "Deliveries",
    HANDLED_COLUMN,
]
MAX_CELL = 5000  # a comment is clipped in the tab (Sheets allows 50,000 characters a cell)


def local(moment: datetime | None, tz: ZoneInfo) -> datetime | None:
    """``moment`` in ``tz``, naive and to the minute; in UTC when ``tz`` cannot show it (a
    local time outside the years 1-9999), as the report's other tabs show it."""
    if moment is None:
        return None
    with contextlib.suppress(OverflowError):
        moment = moment.astimezone(tz)
    return moment.replace(tzinfo=None, second=0, microsecond=0)


def header(tz: ZoneInfo) -> list[Cell]:
    """The tab's header, the time columns naming ``tz``: "Raised (Europe/Moscow)"."""
    return [f"{h} ({tz.key})" if h in TIME_COLUMNS else h for h in HEADER]


def delivery_text(row: Any) -> str:
    """``slack: sent``, ``note: pending (attempt 2: HTTP 503)``, ``mail: held (cap)``,
    ``slack: cancelled (answer improved)``, ``(rule changed)``, ``(destination removed)``
    (withdrawn before it went out)...; a
    follow-up to recipients that refused for now: ``mail (again, 1): pending``."""
    status = row.status
    if (
        status == SENT
        and row.uncertain_since is not None
        and (row.last_error or "").startswith("outcome unknown")
    ):
        status = "sent, unconfirmed"
    elif status == CANCELLED:
        # Cancelled because the alert was withdrawn (its answer no longer matches the rule,
        # the rule changed) or its destination taken off the rule; else held by
        # alerts.cap_per_hour.
        withdrawn = outbox_store.withdrawn_reason(row.last_error)
        if withdrawn is None:
            status = "held (cap)"
        else:
            status = f"cancelled ({withdrawn.replace('_', ' ')}"
            may = outbox_store.MAY_HAVE_ARRIVED in (row.last_error or "")
            status += ", may have arrived)" if may else ")"
    elif status != SENT and row.attempts:
        reason = (row.last_error or "")[:80]
        status += f" (attempt {row.attempts}{': ' + reason if reason else ''})"
    generation = outbox_store.follow_up_generation(row.delivery_key)
    again = f" (again, {generation})" if generation else ""
    return f"{row.destination}{again}: {status}"


def alerts_table(conn: sa.Connection, *, limit: int, tz: ZoneInfo) -> list[list[Cell]]:
    """The tab's rows: the header, then the latest ``limit`` alerts about answers and agents,
    newest first (digests and cap notices are messages, not things to follow up)."""
    alerts = store.listed_alerts(conn, [ANSWER, AGENT], limit)
    deliveries = store.deliveries_of(conn, [a.id for a in alerts])
    rows: list[list[Cell]] = [header(tz)]
    for alert in alerts:
        message = AlertMessage.from_payload(alert.payload)
        sent = [d.sent_at for d in deliveries.get(alert.id, []) if d.sent_at is not None]
        after = None
        if sent and alert.submitted_at is not None:
            after = round((min(sent) - alert.submitted_at).total_seconds() / 60, 1)
        if alert.kind == AGENT and message.figures is not None:
            figures = message.figures
            about: Cell = (
                f"CSAT {pct(figures.csat)} ({figures.satisfied} of {figures.answers}) over "
                f"{message.window_days} days, target {pct(message.target)}, "
                f"p = {figures.p_value:.2g}"
                if figures.p_value is not None
                else None
            )
        else:
            about = (message.comment or "")[:MAX_CELL] or None
        rows.append(
            [
                alert.id,
                local(alert.created_at, tz),
                alert.rule,
                message.rating,
                message.previous_rating,
                about,
                message.agent_name or message.agent_key,
                message.team,
                message.dialog_id,
                message.ticket_url,
                local(alert.submitted_at, tz),
                after,
                "; ".join(delivery_text(d) for d in deliveries.get(alert.id, [])) or None,
                alert.handled,
            ]
        )
    return rows


def written_handled(rows: Sequence[Sequence[Any]]) -> dict[int, str | None]:
    """What the tab's "Handled" cells hold once ``rows`` are written, by alert number, as
    :func:`handled_cells` reads them back: a checkbox's TRUE as "yes", FALSE as None."""
    key, handled = HEADER.index(KEY_COLUMN), HEADER.index(HANDLED_COLUMN)
    found: dict[int, str | None] = {}
    for row in rows[1:]:
        number, cell = row[key], row[handled]
        if isinstance(number, int):
            if isinstance(cell, bool):
                found[number] = store.clean_handled(cell)
            else:
                found[number] = str(cell) if cell is not None else None
    return found


@dataclass(frozen=True)
class Checkboxes:
    """The tab's "Handled" cells that are checkboxes, as read back (:func:`checkboxes`).

    A manager may put checkboxes in the column (data validation BOOLEAN with no values:
    the cell holds TRUE, ticked, or FALSE; read unformatted, a JSON boolean). The tab is
    rewritten every run, so the cell must be written back a boolean: the text "yes" (a
    ticked box as stored) or an empty cell would take the checkbox's value away. ``boxed``:
    the alerts whose cell read as a boolean; ``seen``: every alert the tab listed. An alert
    new to the tab gets a box when the column holds any (the validation is on the column's
    cells, not on an alert's row); one whose cell held words keeps its words."""

    boxed: frozenset[int] = frozenset()
    seen: frozenset[int] = frozenset()

    def holds(self, alert_id: int) -> bool:
        return alert_id in self.boxed or (bool(self.boxed) and alert_id not in self.seen)

    def __or__(self, other: Checkboxes) -> Checkboxes:
        return Checkboxes(self.boxed | other.boxed, self.seen | other.seen)


def checkboxes(values: Sequence[Sequence[Any]]) -> Checkboxes:
    """The checkboxes of the "Handled" column of a tab as read (unformatted)."""
    columns = _columns(values)
    if columns is None:
        return Checkboxes()
    key, handled = columns
    boxed, seen = set(), set()
    for row in values[1:]:
        number = _number(row[key] if key < len(row) else None)
        if number is None:
            continue
        seen.add(number)
        if handled < len(row) and isinstance(row[handled], bool):
            boxed.add(number)
    return Checkboxes(frozenset(boxed), frozenset(seen))


def boxed_rows(rows: Sequence[Sequence[Cell]], boxes: Checkboxes) -> list[list[Cell]] | None:
    """``rows`` (:func:`alerts_table`'s) as the Google Sheets tab gets them: the "Handled"
    cell of each alert whose cell is a checkbox (:meth:`Checkboxes.holds`) TRUE when the
    alert is handled, else FALSE; None when the column holds no checkbox."""
    if not boxes.boxed:
        return None
    key, handled = HEADER.index(KEY_COLUMN), HEADER.index(HANDLED_COLUMN)
    out = [list(rows[0])]
    for row in rows[1:]:
        line = list(row)
        number = line[key]
        if isinstance(number, int) and boxes.holds(number):
            line[handled] = line[handled] is not None
        out.append(line)
    return out


def typed_number(values: Sequence[Sequence[Any]]) -> bool:
    """Whether a "Handled" cell of the tab as read (unformatted) is a number: what a person
    typed there that Sheets took for one ("50%", "007", "1,5" in a German sheet) reads as its
    value (0.5, 7, 1.5), not as the team's words; :func:`handled_cells` then wants the tab as
    shown too. Only in an alert's row: a team's total under the table asks for nothing."""
    columns = _columns(values)
    if columns is None:
        return False
    key, handled = columns
    return any(
        _is_number(row[handled]) and _number(row[key] if key < len(row) else None) is not None
        for row in values[1:]
        if handled < len(row)
    )


def handled_cells(
    values: Sequence[Sequence[Any]], shown: Sequence[Sequence[Any]] | None = None
) -> dict[int, str | None]:
    """The "Handled" column read back from the tab (as Sheets returns it: rows of cells, the
    header first), by alert number. Columns are found by their header, so a team that moved
    them is read right; rows without a number are ignored.

    ``shown``: the tab read again as the sheet shows it (:func:`typed_number`); a number in
    "Handled" is taken as shown there, from the row of the same alert number (a row the team
    moved between the two reads gives no other alert's cell), else as the number."""
    columns = _columns(values)
    if columns is None:
        return {}
    key, handled = columns
    as_shown = handled_cells(shown) if shown is not None else {}
    found: dict[int, str | None] = {}
    for row in values[1:]:
        number = _number(row[key] if key < len(row) else None)
        if number is None:
            continue
        cell = row[handled] if handled < len(row) else None
        if _is_number(cell) and number in as_shown:
            found[number] = as_shown[number]
        else:
            found[number] = store.clean_handled(cell if cell != "" else None)
    return found


def _is_number(cell: Any) -> bool:
    """Whether a cell read unformatted is a number (Sheets' true/false are not)."""
    return isinstance(cell, int | float) and not isinstance(cell, bool)


def _columns(values: Sequence[Sequence[Any]]) -> tuple[int, int] | None:
    """The "Alert" and "Handled" columns of a tab as read (found by their header), or None."""
    if not values:
        return None
    header = [str(cell).strip() for cell in values[0]]
    if KEY_COLUMN not in header or HANDLED_COLUMN not in header:
        return None
    return header.index(KEY_COLUMN), header.index(HANDLED_COLUMN)


def _number(value: Any) -> int | None:
    """An "Alert" cell as an alert number; None for anything else. The column is the team's
    to write in: a cell that is not a number an alert can have (``²``, 5000 digits, one past
    the id column's range) is just not an alert number, never a failed sync."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = int(value) if value.is_integer() else None  # not NaN nor infinite
    elif isinstance(value, str):
        text = value.strip()
        # ASCII digits only (``"²".isdigit()`` is True and ``int("²")`` fails), and few
        # enough of them that int() does not refuse the string.
        ok = text.isascii() and text.isdecimal() and len(text) <= store.ALERT_ID_DIGITS
        value = int(text) if ok else None
    return store.as_alert_id(value)
