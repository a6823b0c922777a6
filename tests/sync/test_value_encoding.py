"""A tab's values are encoded a block of rows at a time (no whole-tab copies held at once);
the bytes are those ``orjson.dumps`` of the whole ValueRange gives (compact), or, for a tab
orjson would write differently (NaN as null) or refuses (a lone surrogate, an int beyond 64
bits, a subclass of float), those ``json.dumps`` gives, as before: either way the same JSON
value, so what Google receives is unchanged."""

from __future__ import annotations

import json
from datetime import date
from datetime import datetime
from typing import Any
from unittest import mock

import numpy as np
import orjson
import pytest
from gspread.utils import absolute_range_name
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import column_letters
from csat_hook.sync.outputs import sheets
from csat_hook.sync.outputs.cells import SHEETS_CELL_MAX
from csat_hook.sync.outputs.sheets import SheetsOutput
from csat_hook.sync.outputs.sheets import TabPlan
from csat_hook.sync.outputs.sheets import sheet_value


def value_range(plan: TabPlan) -> dict[str, Any]:
    """The whole ValueRange as one object (how it was made before it was made by blocks)."""
    cols = plan.cols
    values = [[sheet_value(v) for v in row] + [""] * (cols - len(row)) for row in plan.grid.rows]
    values.extend([""] * cols for _ in range(plan.rows - len(values)))
    return {
        "range": f"{absolute_range_name(plan.title)}!A1:{column_letters(cols - 1)}{plan.rows}",
        "majorDimension": "ROWS",
        "values": values,
    }


def whole(plan: TabPlan) -> bytes:
    """The encoding as one ``json.dumps`` of the whole ValueRange (the reference)."""
    item = value_range(plan)
    try:
        return json.dumps(item, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(item, allow_nan=False).encode("ascii")


def fast(plan: TabPlan) -> bytes | None:
    """The encoding as one ``orjson.dumps`` of the whole ValueRange (None: refused)."""
    try:
        return orjson.dumps(value_range(plan))
    except orjson.JSONEncodeError:
        return None


def same_value(encoded: bytes, reference: bytes) -> bool:
    """The same JSON value (1 and 1.0 and true told apart)."""
    return json.dumps(json.loads(encoded)) == json.dumps(json.loads(reference))


def tab(rows: list[list[Any]], *, extra: int = 0, title: str = "T") -> TabPlan:
    cols = max([len(r) for r in rows] + [1])
    return TabPlan(title, Grid(title, "agent", rows=rows), len(rows) + extra, cols, True, 1)


cells = st.one_of(
    st.none(),
    st.text(max_size=12),
    # A lone surrogate (st.text never draws one): the whole tab is then escaped to ASCII.
    st.text(st.characters(exclude_categories=()), max_size=4).map(lambda t: t + "\udc80"),
    st.sampled_from(["null", ",null,", "[null]", "a,null"]),  # text that looks like a null
    st.integers(min_value=-(10**12), max_value=10**12),
    st.integers(min_value=2**62, max_value=2**66) | st.integers(max_value=-(2**62)),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), np.float64(0.1)]),
    st.booleans(),
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
    plan = tab(rows, extra=extra, title=title)
    # Cells over 10 UTF-16 units are cut, texts over 5 characters checked: long texts are
    # drawn often.
    with (
        mock.patch.object(sheets, "ROWS_PER_BLOCK", block),
        mock.patch.object(sheets, "SHEETS_CELL_MAX", 10),
        mock.patch.object(sheets, "_SHORT", 5),
    ):
        try:
            reference = whole(plan)
        except ValueError:  # NaN or an infinity: refused, as before
            reference = None
        if reference is None:
            with pytest.raises(ValueError, match="Out of range float"):
                SheetsOutput._value_range(plan)
            return
        encoded = SheetsOutput._value_range(plan)
        assert encoded in (fast(plan), reference)
    assert same_value(encoded, reference)


def test_plain_cells_are_written_by_orjson():
    rows = [["Ок", 1, 2.5, True, None, datetime(2026, 11, 1, 9, 30), date(2026, 11, 2)], ["x"]]
    plan = tab(rows, extra=3)
    with mock.patch.object(sheets, "ROWS_PER_BLOCK", 1):
        encoded = SheetsOutput._value_range(plan)
    assert encoded == fast(plan)
    assert b", " not in encoded and "Ок".encode() in encoded
    assert same_value(encoded, whole(plan))


@pytest.mark.parametrize(
    "cell",
    [
        "bad \ud800 cell",  # orjson refuses a lone surrogate; json.dumps escapes it
        2**64,  # orjson refuses an int beyond 64 bits; json.dumps writes it
        -(2**63) - 1,
        np.float64(0.1),  # orjson refuses a subclass of float; json.dumps writes it
        ",null,",  # text that looks like a null (a NaN's trace) in orjson's bytes
    ],
)
def test_cells_orjson_would_not_write_alike_go_the_json_dumps_way(cell):
    rows = [["ok", "Комментарий", 1.5]] * 5 + [[cell, 1, datetime(2026, 11, 1)]]
    plan = tab(rows, extra=2)
    with mock.patch.object(sheets, "ROWS_PER_BLOCK", 2):
        encoded = SheetsOutput._value_range(plan)
    assert encoded == whole(plan)
    assert json.loads(encoded)["values"][5][0] == json.loads(whole(plan))["values"][5][0]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), np.float64("nan")])
def test_nan_and_infinities_are_refused_in_any_block(bad):
    # orjson would write null (Google would leave the cell as it was): refused, as before.
    plan = tab([["a", 1.0]] * 3 + [["b", bad]])
    with (
        mock.patch.object(sheets, "ROWS_PER_BLOCK", 2),
        pytest.raises(ValueError, match="Out of range float"),
    ):
        SheetsOutput._value_range(plan)


def test_a_long_text_is_cut_as_before_and_the_rest_stays_orjson():
    long = "я" * (SHEETS_CELL_MAX + 10)
    rows = [["short", 1], [long, 2], ["x" * 30_000, 3], ["after", 4]]
    plan = tab(rows)
    encoded = SheetsOutput._value_range(plan)
    assert encoded == fast(plan)
    values = json.loads(encoded)["values"]
    assert values[1][0] == sheet_value(long) and len(values[1][0]) == SHEETS_CELL_MAX
    assert values[2][0] == "x" * 30_000 and values[3] == ["after", 4]


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
