"""Unverified rows (a malformed, forged or missing reference) that were fixed, edited or
removed in the source since: a read of every row of the sheet or export, or of every response
of a form, no longer lists them, as a first read of the source as it is would not. A read that
does not meet every row (rows appended, a last row cut, a form's filtered read) keeps them."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from csat_hook.db.schema import unverified_answers
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID
from tests.sync.test_double_click import T0
from tests.sync.test_double_click import Export
from tests.sync.test_double_click import Sheet
from tests.sync.test_double_click import forget_every_read
from tests.sync.test_double_click import fresh_outcome
from tests.sync.test_forms_recredit import FORM
from tests.sync.test_forms_recredit import filtered
from tests.sync.test_forms_recredit import forms_config
from tests.sync.test_forms_recredit import submit


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


@pytest.mark.parametrize("empty", [b"", b"\xef\xbb\xbf", b"\r\n"], ids=["0-bytes", "bom", "crlf"])
def test_an_empty_export_drops_nothing(kit: Any, tmp_path: Path, empty: bytes) -> None:
    """An export with no header row is a copy that has only begun (or a failed download): a
    Forms download always has its titles. It was read as a read of every row, so the forged
    row (and every skipped one) was forgotten, and stored again as new by the next run."""
    source = Export(kit, tmp_path)
    run_steps(kit, source, [["b", "f"]], rows(kit))
    whole = source.path.read_bytes()
    source.path.write_bytes(empty)
    summary = kit.run(source.config)
    assert summary.status == "ok", summary.error
    assert any("is empty" in warning for warning in summary.warnings)
    assert listed(kit) == [("forged", "row 3", 1, "awful")]
    source.path.write_bytes(whole)
    again = kit.run(source.config)
    assert (again.new, sum(again.unverified.values())) == (0, 0)
    assert listed(kit) == [("forged", "row 3", 1, "awful")]


def test_the_first_read_of_another_tab_keeps_the_first_tabs_unverified_rows(kit: Any) -> None:
    """Unverified rows belong to the sheet and tab they were read from: a read of every row of
    another tab (or spreadsheet) of the same kind forgets none of them, and a later read of
    every row of their own tab still forgets those it no longer finds."""
    named = rows(kit)
    first = Sheet(kit, Path())
    run_steps(kit, first, [["b", "f"]], named)
    assert listed(kit) == [("forged", "row 3", 1, "awful")]
    kit.fake.add_spreadsheet("other-spreadsheet-id")
    kit.fake.add_tab("other-spreadsheet-id", "Form Responses 1", [EN_HEADER, named["c"]])
    other = kit.config(results={"gsheets": {"spreadsheet_id": "other-spreadsheet-id"}})
    summary = kit.run(other)
    assert summary.status in ("ok", "data_error"), summary.error
    assert summary.read == "read"
    assert listed(kit) == [("forged", "row 3", 1, "awful"), ("missing", "row 2", 3, "later")]
    # A second tab of the first spreadsheet, read whole: the first tab's rows stay too.
    kit.fake.add_tab(SHEET_ID, "Form Responses 2", [EN_HEADER, named["b"]], sheet_id=1)
    second_tab = kit.config(results={"gsheets": {"sheet_gid": 1}})
    assert kit.run(second_tab).status in ("ok", "data_error")
    assert listed(kit) == [("forged", "row 3", 1, "awful"), ("missing", "row 2", 3, "later")]
    # Back to the first tab, its forged row removed: that one goes, the other sheet's stays.
    run_steps(kit, first, [["b"]], named)
    assert listed(kit) == [("missing", "row 2", 3, "later")]


def test_the_first_read_of_another_export_keeps_the_first_exports_unverified_rows(
    kit: Any, tmp_path: Path
) -> None:
    """The same for CSV exports: another file, even of the same name in another folder, is
    another export."""
    named = rows(kit)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, other = Export(kit, tmp_path / "a"), Export(kit, tmp_path / "b")
    run_steps(kit, first, [["b", "f"]], named)
    summary = run_steps(kit, other, [["c"]], named)
    assert summary.read == "read"
    assert listed(kit) == [("forged", "row 3", 1, "awful"), ("missing", "row 2", 3, "later")]
    run_steps(kit, first, [["b"]], named)
    assert listed(kit) == [("missing", "row 2", 3, "later")]


MOVED = {
    "a row above deleted": (
        [["b", "f", "c"], ["f", "c"]],
        [("row 2", "forged"), ("row 3", "missing")],
    ),
    "a row above deleted and one added below": (
        [["b", "f", "c"], ["f", "c", "a-malformed"]],
        [("row 2", "forged"), ("row 3", "missing"), ("row 4", "malformed")],
    ),
    "rows swapped": ([["f", "c"], ["c", "f"]], [("row 2", "missing"), ("row 3", "forged")]),
}


@pytest.mark.parametrize(("steps", "expected"), MOVED.values(), ids=MOVED.keys())
def test_a_read_of_every_row_moves_unverified_rows_to_where_they_are_now(
    kit: Any, source: Any, steps: list[list[str]], expected: list[tuple[str, str]]
) -> None:
    """An unverified row found again at another row (rows above it deleted, rows swapped) is
    listed at the row it is at now, as a first read of the source as it is lists it."""
    run_steps(kit, source, steps, rows(kit))
    assert sorted((ref, reason) for reason, ref, *_ in listed(kit)) == expected
    assert sorted((ref, reason) for reason, ref, *_ in fresh_listed(kit, source)) == expected


def test_rows_stored_before_sources_were_told_apart_are_kept_until_a_read_finds_them(
    kit: Any, source: Any
) -> None:
    """An unverified row stored before migration 0018 names no source: a read of every row
    that does not find it keeps it (it may be another sheet's); one that finds it makes it
    its own, and forgets it once it is gone."""
    named = rows(kit)
    run_steps(kit, source, [["b", "f", "c"]], named)
    with kit.engine.begin() as conn:
        conn.execute(unverified_answers.update().values(source_key=None))
    run_steps(kit, source, [["f", "b"]], named)  # c removed, f found at another row
    assert listed(kit) == [("forged", "row 2", 1, "awful"), ("missing", "row 4", 3, "later")]
    run_steps(kit, source, [["b"]], named)  # f, now this source's, removed
    assert listed(kit) == [("missing", "row 4", 3, "later")]


@pytest.mark.parametrize("full_read", ["--full", "full_read_hours"])
def test_a_read_of_every_response_of_a_form_forgets_the_deleted_unverified_ones(
    kit: Any, full_read: str
) -> None:
    """A form's responses deleted by its owner: the filtered reads cannot tell, the next read
    of every response (``sync --full``, or the one ``full_read_hours`` makes due) lists the
    unverified ones left as a first read of the form as it is would, as a sheet's does."""
    boris = kit.survey("T-2", "8", "Boris Ivanov")
    forged = kit.token("T-9", "7", secret="a-forger-secret-99")
    kit.fake.add_form(FORM, [])
    config = forms_config(kit, full_read_hours=6 if full_read == "full_read_hours" else 0)
    at = kit.now - timedelta(hours=3)
    submit(kit, 1, at, 5, boris)
    gone = submit(kit, 2, at + timedelta(minutes=1), 1, forged)
    submit(kit, 3, at + timedelta(minutes=2), 3, boris + "x")  # malformed: stays
    first = kit.run(config)
    assert first.status in ("ok", "data_error"), first.error
    assert listed(kit) == [
        ("forged", f"response {gone}", 1, ""),
        ("malformed", "response ACYDBNj000003", 3, ""),
    ]

    assert kit.fake.delete_response(FORM, gone)
    kit.now += timedelta(minutes=10)
    kit.fake.reset_requests()
    assert kit.run(config).status == "ok"
    assert filtered(kit) == [True], "a filtered read cannot tell a response is gone"
    assert len(listed(kit)) == 2

    kit.now += timedelta(hours=6)
    kit.fake.reset_requests()
    summary = kit.run(config, full=full_read == "--full")
    assert summary.status == "ok", summary.error
    assert filtered(kit) == [False]
    expected = [("malformed", "response ACYDBNj000003", 3, "")]
    assert listed(kit) == expected
    assert summary.totals["unverified"] == {"malformed": 1}
    assert fresh_listed_form(kit, config) == expected


def fresh_listed_form(kit: Any, config: Any) -> list[tuple[Any, ...]]:
    """What a first run over the form as it is lists."""
    forget_every_read(kit)
    kit.run(config)
    return listed(kit)
