"""What a written spreadsheet must still look like for a later run to skip writing it again.

A run that skips the report (sync/report_key.py) does not plan the write, so it cannot ask the
plan whether the tabs need repair. Instead the write remembers what the plan checks (the
structure and looks it just made): each tab's title and sheet id, the grid it needs at least,
its number of conditional format rules and its charts, the digest of the looks (developer
metadata), each own tab's record of its kind (developer metadata on the tab:
outputs/sheets_tabs.py ``Mark``), and the protected tabs' titles (which the tab titles avoid).
An expectation without records (written by a version before them) never holds: the plan
would add them. When the spreadsheet's
metadata (read anyway, once a run) still satisfies all of it, planning the same report would
ask for no structure or format request; a deleted tab, a deleted chart, a stray rule or a
shrunk grid fail the check and the report is built and written again.

Cell values are assumed unedited, as by the contents digest (outputs/sheets.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from csat_hook.sync.layout import Grid
from csat_hook.sync.outputs.sheets_charts import chart_id
from csat_hook.sync.outputs.sheets_tabs import marks


def needed(grid: Grid) -> tuple[int, int]:
    """The rows and columns a grid needs (a chart is anchored in a cell of the grid)."""
    rows = max(len(grid.rows), *(c.anchor[0] + 1 for c in grid.charts), 1)
    cols = max(grid.width, *(c.anchor[1] + 1 for c in grid.charts), 1)
    return rows, cols


def expectation(
    tabs: Sequence[tuple[str, int, Grid]], rules: Sequence[int], looks: str, taken: Sequence[str]
) -> dict[str, Any]:
    """What the plan of (title, sheet id, grid) per tab checks, as it stands once written."""
    return {
        "looks": looks,
        "taken": sorted(taken),
        "tabs": [
            [
                title,
                sheet_id,
                *needed(grid),
                count,
                [chart_id(sheet_id, s) for s in range(len(grid.charts))],
            ]
            for (title, sheet_id, grid), count in zip(tabs, rules, strict=True)
        ],
        "marks": [
            [sheet_id, grid.kind, title] for title, sheet_id, grid in tabs if grid.key is None
        ],
    }


def still_holds(
    metadata: dict[str, Any], expected: dict[str, Any], protected: set[int], format_key: str
) -> bool:
    """Whether the spreadsheet (its ``metadata``) still looks as ``expected`` says."""
    sheets = metadata.get("sheets", [])
    props = [s.get("properties", {}) for s in sheets]
    taken = sorted(str(p.get("title")) for p in props if p.get("sheetId") in protected)
    if taken != expected.get("taken"):
        return False
    stored = [
        m for m in metadata.get("developerMetadata", []) if m.get("metadataKey") == format_key
    ]
    if not stored or stored[0].get("metadataValue") != expected.get("looks"):
        return False
    recorded = expected.get("marks")
    if not isinstance(recorded, list):
        return False
    found = marks(sheets)
    for sheet_id, kind, title in recorded:
        mark = found.get(sheet_id)
        if mark is None or mark.record != (kind, title):
            return False
    by_title = {str(p.get("title", "")).casefold(): s for p, s in zip(props, sheets, strict=True)}
    for title, sheet_id, rows, cols, rules, charts in expected.get("tabs", []):
        sheet = by_title.get(str(title).casefold())
        if sheet is None:
            return False
        prop = sheet.get("properties", {})
        grid = prop.get("gridProperties", {})
        present = {c.get("chartId") for c in sheet.get("charts", [])}
        if (
            prop.get("sheetId") != sheet_id
            or int(grid.get("rowCount", 0)) < rows
            or int(grid.get("columnCount", 0)) < cols
            or len(sheet.get("conditionalFormats", [])) != rules
            or not set(charts) <= present
        ):
            return False
    return True
