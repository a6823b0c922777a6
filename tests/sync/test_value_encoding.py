"""A tab's values are encoded a block of rows at a time (no whole-tab copies held at once);
the bytes are those ``json.dumps`` of the whole ValueRange gives, so a report's digest, the
request split and what Google receives are unchanged."""

from __future__ import annotations

import json
from datetime import date
from datetime import datetime
from unittest import mock

import pytest
from gspread.utils import absolute_range_name
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from csat_hook.sync.layout import Grid
from csat_hook.sync.outputs import sheets
from csat_hook.sync.outputs.sheets import SheetsOutput
from csat_hook.sync.outputs.sheets import TabPlan
from csat_hook.sync.outputs.sheets import column_letters
from csat_hook.sync.outputs.sheets import sheet_value


def whole(plan: TabPlan) -> bytes:
    """The encoding as one ``json.dumps`` of the whole ValueRange (how it was made before)."""
    cols = plan.cols
    values = [[sheet_value(v) for v in row] + [""] * (cols - len(row)) for row in plan.grid.rows]
    values.extend([""] * cols for _ in range(plan.rows - len(values)))
    item = {
        "range": f"{absolute_range_name(plan.title)}!A1:{column_letters(cols - 1)}{plan.rows}",
        "majorDimension": "ROWS",
        "values": values,
    }
    try:
        return json.dumps(item, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(item, allow_nan=False).encode("ascii")


cells = st.one_of(
    st.none(),
    st.text(max_size=12),
    # A lone surrogate (st.text never draws one): the whole tab is then escaped to ASCII.
    st.text(st.characters(exclude_categories=()), max_size=4).map(lambda t: t + "\udc80"),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(),  # naive local time, as the report places them
    st.dates(),
)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.lists(cells, max_size=6), max_size=12),
    extra=st.integers(min_value=0, max_value=9),
    title=st.text(min_size=1, max_size=10),
    block=st.integers(min_value=1, max_value=5),
)
def test_blocks_give_the_bytes_of_one_dump(rows, extra, title, block):
    cols = max([len(r) for r in rows] + [1])
    plan = TabPlan(title, Grid(title, "agent", rows=rows), len(rows) + extra, cols, True, 1)
    with mock.patch.object(sheets, "ROWS_PER_BLOCK", block):
        assert SheetsOutput._value_range(plan) == whole(plan)


def test_nan_is_refused_as_before():
    plan = TabPlan("t", Grid("t", "agent", rows=[[1.0], [float("nan")]]), 2, 1, True, 1)
    with pytest.raises(ValueError, match="Out of range float"):
        SheetsOutput._value_range(plan)


def test_a_tab_of_many_blocks_is_valid_json_with_every_row():
    rows = [[f"row {i}", i, datetime(2026, 11, 1, 9, 30), date(2026, 11, 2)] for i in range(4_321)]
    plan = TabPlan("Responses", Grid("Responses", "responses", rows=rows), 5_000, 4, True, 1)
    decoded = json.loads(SheetsOutput._value_range(plan))
    assert len(decoded["values"]) == 5_000
    assert decoded["values"][4_320][:2] == ["row 4320", 4_320]
    assert decoded["values"][4_321:] == [["", "", "", ""]] * 679
    assert decoded["range"] == "'Responses'!A1:D5000"


def test_a_lone_surrogate_in_a_later_block_escapes_the_whole_tab():
    rows = [["ok", "Комментарий"]] * 5 + [["bad \ud800 cell", 1]]
    plan = TabPlan("T", Grid("T", "agent", rows=rows), 8, 2, True, 1)
    with mock.patch.object(sheets, "ROWS_PER_BLOCK", 2):
        encoded = SheetsOutput._value_range(plan)
    assert encoded == whole(plan)
    assert encoded.isascii() and b"\\u041a" in encoded and b"\\ud800" in encoded
