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
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
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
Typed = str | int | float | bool
HANDLED_AT = HEADER.index(HANDLED_COLUMN)  # the column the tab is written with "Handled" in
KEY_AT = HEADER.index(KEY_COLUMN)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
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
    (withdrawn before it went out), ``note: cancelled (not for this destination)``...; a
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


def minutes_after(submitted: datetime, sent: datetime) -> float:
    """Minutes from an answer to its first alert sent, to 0.1: 0.0 (never -0.0, which the
    CSV wrote "-0.0") for a delivery a few seconds before the form's clock dated the answer."""
    return round((sent - submitted).total_seconds() / 60, 1) + 0.0


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
            after = minutes_after(alert.submitted_at, min(sent))
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


def written_handled(
    rows: Sequence[Sequence[Any]], boxes: Checkboxes | None = None
) -> dict[int, str | None]:
    """What the tab's "Handled" cells hold once ``rows`` are written, by alert number, as
    :func:`handled_cells` reads them back: a checkbox (the row's, in ``boxes``) ticked as
    "yes", unticked as None; a TRUE written elsewhere as "yes", FALSE as None."""
    key, handled = KEY_AT, HANDLED_AT
    at = boxes.rows if boxes is not None else {}
    found: dict[int, str | None] = {}
    for row_number, row in enumerate(rows[1:], start=1):
        number, cell = row[key], row[handled]
        if isinstance(number, int):
            box = at.get(row_number)
            if box is not None:
                found[number] = store.clean_handled(box.ticked(cell))
            elif isinstance(cell, bool):
                found[number] = store.clean_handled(cell)
            else:
                found[number] = str(cell) if cell is not None else None
    return found


@dataclass(frozen=True)
class Checkbox:
    """A "Handled" cell that is a checkbox: a data validation rule of type BOOLEAN on it.

    ``values``: the rule's condition values, as typed in the rule. None given: the cell holds TRUE
    (ticked) or FALSE; one ("Done"): ticked when it holds that value, unticked when blank;
    two ("Yes", "No"; "1", "0"): ticked when it holds the first, unticked the second. A value
    is compared as Sheets reads it typed (a number, TRUE/FALSE, else text)."""

    values: tuple[str, ...] = ()

    @property
    def checked(self) -> Typed:
        return _typed(self.values[0]) if self.values else True

    @property
    def unchecked(self) -> Typed | None:
        """What an unticked box holds: FALSE, blank (None) or the second value."""
        if not self.values:
            return False
        return _typed(self.values[1]) if len(self.values) > 1 else None

    def ticked(self, cell: Any) -> bool:
        """Whether the cell (read unformatted) holds the checked value."""
        return _same(cell, self.checked)

    def cell(self, handled: bool) -> Typed | None:
        """What the cell is written with: the checked value when handled, else the
        unchecked one."""
        return self.checked if handled else self.unchecked


def _typed(text: str) -> Typed:
    """A condition value as a cell holds it once typed: TRUE/FALSE, a number, else text."""
    stripped = text.strip()
    if stripped.upper() in ("TRUE", "FALSE"):
        return stripped.upper() == "TRUE"
    if _NUMBER.fullmatch(stripped):
        number = float(stripped)
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return text


def _same(cell: Any, value: Typed) -> bool:
    """Whether a cell read unformatted holds ``value`` (text compared as a reader does)."""
    if isinstance(cell, str) and not isinstance(value, str):
        cell = _typed(cell)
    if isinstance(value, bool) or isinstance(cell, bool):
        return cell is value
    if isinstance(value, int | float):
        return _is_number(cell) and cell == value
    return isinstance(cell, str) and cell.strip().casefold() == value.strip().casefold()


@dataclass(frozen=True)
class Checkboxes:
    """The checkboxes of the "Handled" column the tab is rewritten in, by row of the tab
    (the header is row 0), as this run read it back (:func:`checkboxes`).

    A manager may make some of the column's cells checkboxes, each with its own values
    (:class:`Checkbox`). The rule is the grid cell's, which a value write leaves in place:
    the tab is rewritten every run, so each cell must be written in its own form, the row's
    alert handled or not as the box's checked or unchecked value (text there would take the
    checkbox's value away, "TRUE" in a cell without one shows the word). Rows move as alerts
    are raised: the form is the row's, the value the alert's."""

    rows: Mapping[int, Checkbox] = field(default_factory=dict)


def handled_column(values: Sequence[Sequence[Any]]) -> int | None:
    """The column "Handled" is in, in a tab as read (found by its header), or None."""
    columns = _columns(values)
    return columns[1] if columns is not None else None


def checkboxes(values: Sequence[Sequence[Any]], rules: Mapping[int, Checkbox]) -> Checkboxes:
    """The checkboxes of the tab's "Handled" column as it is rewritten: ``rules``, the cells
    of the written column with a rule of type BOOLEAN (by row); and, as before rules were
    read, a TRUE or FALSE read in an alert's row of that column (a box the rules' read did
    not say, a TRUE typed)."""
    found = dict(rules)
    columns = _columns(values)
    if columns is not None and columns[1] == HANDLED_AT:
        key, handled = columns
        for row_number, row in enumerate(values[1:], start=1):
            number = _number(row[key] if key < len(row) else None)
            if number is not None and handled < len(row) and isinstance(row[handled], bool):
                found.setdefault(row_number, Checkbox())
    return Checkboxes(found)


def boxed_rows(rows: Sequence[Sequence[Cell]], boxes: Checkboxes) -> list[list[Cell]] | None:
    """``rows`` (:func:`alerts_table`'s) as the Google Sheets tab gets them: the "Handled"
    cell of each row that is a checkbox (:class:`Checkboxes`) its checked value when the
    row's alert is handled, else its unchecked one; None when the column holds no
    checkbox."""
    if not boxes.rows:
        return None
    key = HEADER.index(KEY_COLUMN)
    out = [list(rows[0])]
    for row_number, row in enumerate(rows[1:], start=1):
        line = list(row)
        box = boxes.rows.get(row_number)
        if box is not None and isinstance(line[key], int):
            line[HANDLED_AT] = box.cell(line[HANDLED_AT] is not None)
        out.append(line)
    return out


def handled_cells(
    values: Sequence[Sequence[Any]],
    shown: Sequence[Sequence[Any]] | None = None,
    boxes: Mapping[int, Checkbox] | None = None,
) -> dict[int, str | None]:
    """The "Handled" column read back from the tab (as Sheets returns it: rows of cells, the
    header first), by alert number. Columns are found by their header, so a team that moved
    them is read right; rows without a number are ignored.

    ``boxes``: the column's checkboxes, by row (the header row 0): such a cell is handled
    ("yes") when it holds its box's checked value, else not (None), whatever it holds ("No"
    is an unticked box's value, not the team's words).

    ``shown``: the tab as the sheet shows it (a number typed "50%" reads 0.5, a date its
    serial number: the team's words are what they see); a number in "Handled" is taken as
    shown there, from the row of the same alert number (a row the team moved between two
    reads gives no other alert's cell), else as the number."""
    columns = _columns(values)
    if columns is None:
        return {}
    key, handled = columns
    as_shown = handled_cells(shown) if shown is not None else {}
    boxed = boxes or {}
    found: dict[int, str | None] = {}
    for row_number, row in enumerate(values[1:], start=1):
        number = _number(row[key] if key < len(row) else None)
        if number is None:
            continue
        cell = row[handled] if handled < len(row) else None
        box = boxed.get(row_number)
        if box is not None:
            found[number] = store.clean_handled(box.ticked(cell))
        elif _is_number(cell) and number in as_shown:
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
