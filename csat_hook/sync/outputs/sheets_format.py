"""A report grid's looks as ``spreadsheets.batchUpdate`` requests (Sheets API v4); its charts
are :mod:`.sheets_charts`.

Per tab, in this order: every cell's format reset (our tabs are ours; a layout that moved
leaves nothing behind), frozen rows and columns, column widths and tall header rows, looks
(``repeatCell`` with a field mask naming only what is set), number formats, the conditional
rules. Every request is idempotent given the grid, except adding rules: the output deletes the
tab's existing rules first, in the same atomic batch (their count comes from the metadata;
each delete shifts the next to index 0).

Locale: number-format patterns are en_US syntax (Sheets renders them in the spreadsheet's
locale); a conditional rule's formula is parsed as if typed in the spreadsheet, so it holds no
decimal point and no argument separator (``=ISNUMBER(D5)*(D5<17/20)``, not ``0.85`` nor
``AND(a, b)``), which reads the same in every locale.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction
from typing import Any

from csat_hook.sync.layout import MARK_DOWN
from csat_hook.sync.layout import MARK_UP
from csat_hook.sync.layout import Area
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Look
from csat_hook.sync.layout import Rule
from csat_hook.sync.layout import RuleKind
from csat_hook.sync.layout import column_letters
from csat_hook.sync.layout import shown_from
from csat_hook.sync.texts import Texts

RED = {"red": 0.957, "green": 0.8, "blue": 0.8}
GREEN = {"red": 0.851, "green": 0.918, "blue": 0.827}
GREY = {"red": 0.937, "green": 0.937, "blue": 0.937}
DARK_RED = {"red": 0.6, "green": 0.0, "blue": 0.0}
DARK_GREEN = {"red": 0.153, "green": 0.306, "blue": 0.075}
MUTED = {"red": 0.467, "green": 0.467, "blue": 0.467}
NOTE = {"red": 0.333, "green": 0.333, "blue": 0.333}
BLUE = {"red": 0.435, "green": 0.659, "blue": 0.863}
TALL_ROW_PIXELS = 54  # three lines of a wrapped header

# Each look: (the CellFormat it sets, the field mask naming exactly that).
LOOKS: dict[Look, tuple[dict[str, Any], str]] = {
    Look.TITLE: ({"textFormat": {"bold": True, "fontSize": 14}}, "textFormat(bold,fontSize)"),
    Look.HEADER: (
        {
            "textFormat": {"bold": True},
            "backgroundColorStyle": {"rgbColor": GREY},
            "wrapStrategy": "WRAP",
            "verticalAlignment": "MIDDLE",
        },
        "textFormat.bold,backgroundColorStyle,wrapStrategy,verticalAlignment",
    ),
    Look.BOLD: ({"textFormat": {"bold": True}}, "textFormat.bold"),
    Look.MUTED: (
        {"textFormat": {"italic": True, "foregroundColorStyle": {"rgbColor": MUTED}}},
        "textFormat(italic,foregroundColorStyle)",
    ),
    Look.NOTE: (
        {"textFormat": {"fontSize": 9, "foregroundColorStyle": {"rgbColor": NOTE}}},
        "textFormat(fontSize,foregroundColorStyle)",
    ),
    Look.CENTER: ({"horizontalAlignment": "CENTER"}, "horizontalAlignment"),
}


def number_formats(texts: Texts) -> dict[Fmt, dict[str, str]]:
    return {
        Fmt.PERCENT: {"type": "PERCENT", "pattern": "0.0%"},
        Fmt.WHOLE_PERCENT: {"type": "PERCENT", "pattern": "0%"},
        Fmt.POINTS: {"type": "NUMBER", "pattern": texts["pp_format"]},
        Fmt.SCORE: {"type": "NUMBER", "pattern": "+0;-0;0"},
        Fmt.COUNT: {"type": "NUMBER", "pattern": "0"},
        Fmt.TIED: {"type": "NUMBER", "pattern": '0"="'},
        Fmt.MEAN: {"type": "NUMBER", "pattern": "0.00"},
        Fmt.DATETIME: {"type": "DATE_TIME", "pattern": texts["datetime_format"]},
        Fmt.DATE: {"type": "DATE", "pattern": texts["date_format"]},
    }


def object_id(*parts: object) -> int:
    """A stable positive int32 id (for a new tab, or one of a tab's charts)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return 1 + int.from_bytes(digest[:4], "big") % 2_000_000_000


class Formatter:
    """Requests that make one tab look as its grid says."""

    def __init__(self, texts: Texts) -> None:
        self.formats = number_formats(texts)

    def tab_requests(self, sheet_id: int, grid: Grid, *, open_end: bool) -> list[dict[str, Any]]:
        """Everything but the rule deletes and the chart adds/updates (see :meth:`charts`):
        the same list for the same grid, whatever the tab holds now. ``open_end``: formats
        and rules that reach the last row reach the end of the tab (a table that grows needs
        no new formats)."""
        rows = len(grid.rows)

        def rng(area: Area) -> dict[str, Any]:
            found: dict[str, Any] = {
                "sheetId": sheet_id,
                "startRowIndex": area.row0,
                "startColumnIndex": area.col0,
                "endColumnIndex": area.col1,
            }
            if not (open_end and area.row1 >= rows):
                found["endRowIndex"] = area.row1
            return found

        requests: list[dict[str, Any]] = [
            {
                "repeatCell": {
                    "range": {"sheetId": sheet_id},
                    "cell": {"userEnteredFormat": {}},
                    "fields": "userEnteredFormat",
                }
            },
            {
                "updateSheetProperties": {
                    "properties": {
                        "sheetId": sheet_id,
                        "gridProperties": {
                            "frozenRowCount": grid.frozen_rows,
                            "frozenColumnCount": grid.frozen_cols,
                        },
                    },
                    "fields": "gridProperties(frozenRowCount,frozenColumnCount)",
                }
            },
        ]
        requests += _widths(sheet_id, grid)
        for area, look in grid.looks:
            cell_format, fields = LOOKS[look]
            requests.append(_repeat(rng(area), cell_format, fields))
        for area, fmt in grid.formats:
            number = {"numberFormat": self.formats[fmt]}
            requests.append(_repeat(rng(area), number, "numberFormat"))
        index = 0
        for rule in grid.rules:
            for condition, rule_format in _conditions(rule):
                requests.append(
                    {
                        "addConditionalFormatRule": {
                            "index": index,
                            "rule": {
                                "ranges": [rng(rule.area)],
                                "booleanRule": {
                                    "condition": {
                                        "type": "CUSTOM_FORMULA",
                                        "values": [{"userEnteredValue": condition}],
                                    },
                                    "format": rule_format,
                                },
                            },
                        }
                    }
                )
                index += 1
        return requests


def _repeat(target: dict[str, Any], cell: dict[str, Any], fields: str) -> dict[str, Any]:
    mask = ",".join(f"userEnteredFormat.{part}" for part in _top_level(fields))
    return {"repeatCell": {"range": target, "cell": {"userEnteredFormat": cell}, "fields": mask}}


def _top_level(fields: str) -> list[str]:
    """Split ``a(b,c),d.e`` at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(fields):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(fields[start:i])
            start = i + 1
    parts.append(fields[start:])
    return parts


def _widths(sheet_id: int, grid: Grid) -> list[dict[str, Any]]:
    """Column widths (runs of equal widths in one request) and tall rows."""
    requests = []
    start = 0
    widths = grid.widths
    for i in range(1, len(widths) + 1):
        if i == len(widths) or widths[i] != widths[start]:
            requests.append(_dimension(sheet_id, "COLUMNS", start, i, 7 * widths[start] + 14))
            start = i
    requests += [_dimension(sheet_id, "ROWS", r, r + 1, TALL_ROW_PIXELS) for r in grid.tall_rows]
    return requests


def _dimension(sheet_id: int, dimension: str, start: int, end: int, pixels: int) -> dict[str, Any]:
    return {
        "updateDimensionProperties": {
            "range": {
                "sheetId": sheet_id,
                "dimension": dimension,
                "startIndex": start,
                "endIndex": end,
            },
            "properties": {"pixelSize": pixels},
            "fields": "pixelSize",
        }
    }


def _a1(row: int, col: int, *, fixed_column: bool = False) -> str:
    return f"{'$' if fixed_column else ''}{column_letters(col)}{row + 1}"


def _ratio(value: float) -> str:
    """A number as a formula without a decimal point: 0.85 → 17/20, a quotient Sheets
    computes as ``value`` itself (the .xlsx compares with ``repr(value)``). The smallest
    denominator up to a million when one gives it, else up to 10⁷, 10⁸…: 0.8333333 as
    5/6 coloured 10 answers of 12 (0.833333333) red, and 0.9999999 became 1."""
    decimal = Fraction(repr(value))
    for digits in range(6, 17):
        exact = decimal.limit_denominator(10**digits)
        # As Sheets divides: each number read as a float first (int / int here is exact).
        if float(exact.numerator) / float(exact.denominator) == value:
            break
    return (
        str(exact.numerator) if exact.denominator == 1 else f"{exact.numerator}/{exact.denominator}"
    )


def _text_look(color: dict[str, float], *, bold: bool = False, italic: bool = False) -> Any:
    look: dict[str, Any] = {"foregroundColorStyle": {"rgbColor": color}}
    if bold:
        look["bold"] = True
    if italic:
        look["italic"] = True
    return {"textFormat": look}


def _conditions(rule: Rule) -> list[tuple[str, dict[str, Any]]]:
    """(custom formula, format) pairs; a formula is relative to the range's top-left cell."""
    area = rule.area
    top = _a1(area.row0, area.col0)
    if rule.kind == RuleKind.TARGET:
        target = _ratio(shown_from(rule.value))
        return [
            (f"=ISNUMBER({top})*({top}<{target})", {"backgroundColorStyle": {"rgbColor": RED}}),
            (f"=ISNUMBER({top})*({top}>={target})", {"backgroundColorStyle": {"rgbColor": GREEN}}),
        ]
    if rule.kind == RuleKind.LOW_RATING:
        cell = _a1(area.row0, rule.column, fixed_column=True)
        limit = int(rule.value)
        return [
            (f"=ISNUMBER({cell})*({cell}<={limit})", {"backgroundColorStyle": {"rgbColor": RED}})
        ]
    if rule.kind == RuleKind.MARKS:
        cell = _a1(area.row0, rule.column, fixed_column=True)
        return [
            (f'={cell}="{MARK_UP}"', _text_look(DARK_GREEN, bold=True)),
            (f'={cell}="{MARK_DOWN}"', _text_look(DARK_RED, bold=True)),
        ]
    rows, cols = rule.offset
    other = _a1(area.row0 + rows, area.col0 + cols)
    return [(f"=ISNUMBER({other})*({other}<{int(rule.value)})", _text_look(MUTED, italic=True))]
