"""Unverified rows (a malformed, forged or missing reference) that were fixed, edited or
removed in the source since: a read of every row of the sheet or export no longer lists them,
as a first read of the source as it is would not. A read that does not meet every row (rows
appended, a last row cut) keeps them."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from csat_hook.db.schema import unverified_answers
from tests.sync.test_double_click import T0
from tests.sync.test_double_click import Export
from tests.sync.test_double_click import Sheet
from tests.sync.test_double_click import fresh_outcome


@pytest.fixture(params=[Sheet, Export], ids=["gsheets", "csv"])
def source(request: pytest.FixtureRequest, kit: Any, tmp_path: Path) -> Any:
    return request.param(kit, tmp_path)


def listed(kit: Any) -> list[tuple[Any, ...]]:
    """The unverified answers as the report lists them: reason, row, rating, comment."""
    return sorted(
        (r.reason, r.source_ref, r.rating, r.comment) for r in kit.rows(unverified_answers)
    )


def rows(kit: Any) -> dict[str, list[Any]]:
    anna = kit.survey("T-1", "7", "Anna Petrova")
    boris = kit.survey("T-2", "8", "Boris Ivanov")
    forged = kit.token("T-9", "7", secret="a-forger-secret-99")  # signed by no one we know
    return {
        "a": [T0, 4, "fine", "", "", anna],
        "a-malformed": [T0, 4, "fine", "", "", anna + "x"],
        "b": [T0.replace(minute=5), 5, "great", "", "", boris],
        "f": [T0.replace(minute=7), 1, "awful", "", "", forged],
        "f-edited": [T0.replace(minute=7), 1, "awful really", "", "", forged],
        "c": [T0.replace(hour=10), 3, "later", "", "", ""],  # no reference at all
    }


def run_steps(kit: Any, source: Any, steps: list[list[str]], named: dict[str, list[Any]]) -> Any:
    summary = None
    for step in steps:
        source.write([list(named[name]) for name in step])
        summary = kit.run(source.config)
        assert summary.status in ("ok", "data_error"), summary.error
    return summary


STEPS = {
    "a malformed reference fixed": (
        [["b", "a-malformed"], ["b", "a"]],
        [],
    ),
    "a forged row's comment edited": (
        [["b", "f"], ["b", "f-edited"]],
        [("forged", "row 3", 1, "awful really")],
    ),
    "a forged row removed": ([["b", "f", "a"], ["b", "a"]], []),
    "a row without a reference removed, another kept": (
        [["b", "f", "c"], ["b", "f"]],
        [("forged", "row 3", 1, "awful")],
    ),
}


@pytest.mark.parametrize(("steps", "expected"), STEPS.values(), ids=STEPS.keys())
def test_unverified_rows_no_longer_in_the_source_are_not_listed(
    kit: Any, source: Any, steps: list[list[str]], expected: list[tuple[Any, ...]]
) -> None:
    summary = run_steps(kit, source, steps, rows(kit))
    assert listed(kit) == expected
    reasons: dict[str, int] = {}
    for reason, *_ in expected:
        reasons[reason] = reasons.get(reason, 0) + 1
    assert summary.totals["unverified"] == reasons
    # As a first read of the source as it is lists them.
    assert fresh_listed(kit, source) == expected


def fresh_listed(kit: Any, source: Any) -> list[tuple[Any, ...]]:
    """What a first run over the source as it is lists (:func:`fresh_outcome`)."""
    # A forged row makes the fresh run a data_error: a first run all the same.
    with contextlib.suppress(AssertionError):
        fresh_outcome(kit, source.config)
    return listed(kit)


def test_a_fixed_reference_is_credited_and_no_longer_listed(kit: Any, source: Any) -> None:
    named = rows(kit)
    first = run_steps(kit, source, [["b", "a-malformed"]], named)
    assert first.totals["unverified"] == {"malformed": 1}
    fixed = run_steps(kit, source, [["b", "a"]], named)
    assert fixed.new == 1
    assert listed(kit) == [] and fixed.totals["unverified"] == {}


def test_rows_appended_drop_nothing(kit: Any, tmp_path: Path) -> None:
    source = Export(kit, tmp_path)
    named = rows(kit)
    run_steps(kit, source, [["b", "f"]], named)
    summary = run_steps(kit, source, [["b", "f", "a"]], named)
    assert summary.read == "appended"
    assert listed(kit) == [("forged", "row 3", 1, "awful")]


def test_a_cut_last_row_drops_nothing(kit: Any, tmp_path: Path) -> None:
    source = Export(kit, tmp_path)
    run_steps(kit, source, [["b", "f"]], rows(kit))
    # The export read while being written again: the forged row's line cut mid-reference.
    text = source.path.read_text(encoding="utf-8").rstrip("\n")
    source.path.write_text(text[:-20], encoding="utf-8")
    summary = kit.run(source.config)
    assert summary.read == "read", summary.read
    assert listed(kit) == [("forged", "row 3", 1, "awful")]
