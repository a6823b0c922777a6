"""What a written spreadsheet must still look like for a later run to skip writing it
(outputs/sheets_expect.py): every change the write's plan would repair fails the check."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from csat_hook.sync.layout import BARS
from csat_hook.sync.layout import Chart
from csat_hook.sync.layout import Grid
from csat_hook.sync.outputs.sheets_expect import expectation
from csat_hook.sync.outputs.sheets_expect import still_holds
from csat_hook.sync.outputs.sheets_tabs import MARK_KEY
from csat_hook.sync.outputs.sheets_tabs import mark_value

KEY = "csat-hook.report-format"
GRID = Grid("Summary", "summary", [["Agent", "CSAT"], ["Anna", 1.0], ["Boris", 0.5]])
EXPECTED = expectation([("Summary", 11, GRID)], [2], "sha256:looks", ["Form Responses 1"])


def metadata() -> dict[str, Any]:
    """The spreadsheet as the write left it (the form's tab is protected, id 0)."""
    return {
        "developerMetadata": [{"metadataKey": KEY, "metadataValue": "sha256:looks"}],
        "sheets": [
            {"properties": {"sheetId": 0, "title": "Form Responses 1"}},
            {
                "properties": {
                    "sheetId": 11,
                    "title": "Summary",
                    "gridProperties": {"rowCount": 100, "columnCount": 2},
                },
                "conditionalFormats": [{}, {}],
                "developerMetadata": [
                    {
                        "metadataId": 5,
                        "metadataKey": MARK_KEY,
                        "metadataValue": mark_value("summary", 11, "Summary"),
                    }
                ],
            },
        ],
    }


def test_the_spreadsheet_as_written_holds():
    assert still_holds(metadata(), EXPECTED, {0}, KEY)


def _tab(m: dict[str, Any]) -> dict[str, Any]:
    return m["sheets"][1]


CHANGES = {
    "tab deleted": lambda m: m["sheets"].pop(1),
    "tab renamed": lambda m: _tab(m)["properties"].update(title="Old summary"),
    "tab recreated": lambda m: _tab(m)["properties"].update(sheetId=12),
    "grid shrunk": lambda m: _tab(m)["properties"]["gridProperties"].update(rowCount=2),
    "column deleted": lambda m: _tab(m)["properties"]["gridProperties"].update(columnCount=1),
    "rule deleted": lambda m: _tab(m)["conditionalFormats"].pop(),
    "stray rule": lambda m: _tab(m)["conditionalFormats"].append({}),
    "looks changed": lambda m: m["developerMetadata"][0].update(metadataValue="sha256:x"),
    "looks digest deleted": lambda m: m["developerMetadata"].clear(),
    "form tab renamed": lambda m: m["sheets"][0]["properties"].update(title="Summary (2)"),
    "kind record deleted": lambda m: _tab(m)["developerMetadata"].clear(),
    "kind record of another title": lambda m: _tab(m)["developerMetadata"][0].update(
        metadataValue=mark_value("summary", 11, "Old summary")
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_the_plan_would_repair_fails_the_check(change):
    changed = copy.deepcopy(metadata())
    CHANGES[change](changed)
    assert not still_holds(changed, EXPECTED, {0}, KEY)


def test_a_write_by_a_version_before_kind_records_fails_the_check():
    """Its expectation says nothing of records: the plan would add them."""
    written = {k: v for k, v in EXPECTED.items() if k != "marks"}
    assert not still_holds(metadata(), written, {0}, KEY)


def test_a_deleted_chart_fails_the_check():
    grid = copy.deepcopy(GRID)
    grid.charts.append(Chart(BARS, "CSAT", (5, 0), 0, 2, 0, 1, 1, 1))
    expected = expectation([("Summary", 11, grid)], [2], "sha256:looks", ["Form Responses 1"])
    written = metadata()
    [number] = expected["tabs"][0][5]
    _tab(written)["charts"] = [{"chartId": number}]
    assert still_holds(written, expected, {0}, KEY)
    _tab(written)["charts"] = []
    assert not still_holds(written, expected, {0}, KEY)


def test_a_grids_width_follows_its_rows_as_they_are_added_or_replaced():
    grid = Grid("Agent", "agent")
    assert grid.width == 0
    grid.rows.append(["a", "b"])
    assert grid.width == 2
    grid.rows.extend([("a",), ("a", "b", "c")])
    assert grid.width == 3
    grid.rows.append([])
    assert grid.width == 3
    grid.rows = [["only"]]  # another list, shorter
    assert grid.width == 1
    grid.rows = [["x"], ["x", "y", "z", "w"], ["x"], ["x"], ["x"]]  # another list, longer
    assert grid.width == 4
