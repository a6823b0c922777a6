"""A runner's Sheets output copies the encoding of the rows it wrote before (the same row
objects: KeptEncoding) instead of encoding them again: what it sends must be byte for byte
what encoding every row gives, whatever rows are added, dropped or moved in between, and
whatever the rows hold (long text cut, lone surrogates and NaN, which only json.dumps
encodes as Google takes them)."""

from __future__ import annotations

import random
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest

from csat_hook.sync.layout import Grid
from csat_hook.sync.outputs.sheets import KeptEncoding
from csat_hook.sync.outputs.sheets import SheetsOutput
from csat_hook.sync.outputs.sheets import TabPlan
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SyncKit

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def _cell(rng: random.Random) -> Any:
    kind = rng.randrange(9)
    if kind == 0:
        return None
    if kind == 1:
        return datetime(2026, 11, rng.randrange(1, 29), rng.randrange(24), rng.randrange(60))
    if kind == 2:
        return rng.randrange(1, 6)
    if kind == 3:
        return rng.choice(["", "ok", "Отлично 👍", 'say "hi"\n', "null", ",null,"])
    if kind == 4:
        return "x" * rng.choice([10, 30_000, 60_000])  # past _SHORT: cut to a cell's limit
    if kind == 5:
        return rng.random()
    return f"T-{rng.randrange(1000)}"


def _row(rng: random.Random, width: int) -> tuple[Any, ...]:
    return tuple(_cell(rng) for _ in range(rng.randrange(1, width + 1)))


def _plan(rows: list[Any], cols: int) -> TabPlan:
    grid = Grid("Anna", "agent", key="7")
    grid.rows = [["Submitted", "Ticket", "Rating"], *rows]
    return TabPlan("Anna (7)", grid, len(grid.rows) + 20, cols, True, 1)


def _output(kept: KeptEncoding | None) -> SheetsOutput:
    return SheetsOutput(None, "sheet", kept=kept)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(40))
def test_rows_encoded_before_are_copied_as_encoding_them_again_gives(seed: int) -> None:
    rng = random.Random(seed)
    cols = 5
    kept = KeptEncoding()
    rows = [_row(rng, cols) for _ in range(rng.randrange(0, 60))]
    for _ in range(4):
        plan = _plan(rows, cols)
        assert _output(kept)._encoded([plan]) == _output(None)._encoded([plan])
        # Some rows dropped, some new ones anywhere, some moved; now and then another width.
        rows = [row for row in rows if rng.random() < 0.85]
        for _ in range(rng.randrange(0, 6)):
            rows.insert(rng.randrange(len(rows) + 1), _row(rng, cols))
        if rows and rng.random() < 0.3:
            rows.append(rows.pop(rng.randrange(len(rows))))
        if rng.random() < 0.2:
            cols += 1


def test_a_row_only_json_dumps_encodes_sends_the_tab_as_it_does() -> None:
    kept = KeptEncoding()
    rows: list[Any] = [("a", 1), ("b", 2)]
    plan = _plan(rows, 3)
    _output(kept)._encoded([plan])
    assert "Anna (7)" in kept.tabs  # encoded by orjson: kept
    rows = [*rows, ("\ud800 lone surrogate", 3)]
    plan = _plan(rows, 3)
    assert _output(kept)._encoded([plan]) == _output(None)._encoded([plan])
    assert "Anna (7)" not in kept.tabs  # json.dumps's bytes: not kept
    rows = [*rows, ("nan", float("nan"))]
    with pytest.raises(ValueError, match="not JSON compliant"):
        _output(kept)._encoded([_plan(rows, 3)])


def test_a_dataset_built_anew_is_built_without_the_last_write_s_rows_held(kit: SyncKit) -> None:
    # A dataset built anew holds none of the kept answers: the runner lets go of the rows
    # kept for them (KeptRows) before building it, and so of the encodings, which hold the
    # same rows (and the last write's bytes) and could copy none of them again.
    token = kit.survey("T-1", "1", "Anna")
    kit.responses([EN_HEADER, [T0, 5, "fine", "typed", "T-1", token]])
    runner = kit.runner()
    runner.run()
    assert runner._encodings is not None and runner._encodings[1].tabs  # kept by the write
    held: list[bool] = []
    build = runner._dataset

    def building(answers: Any, surveys: Any) -> Any:
        kept = runner._encodings
        held.append(kept is not None and bool(kept[1].tabs))
        return build(answers, surveys)

    runner._dataset = building  # type: ignore[method-assign]
    runner.run(full=True)
    assert held == [False]


def test_a_dataset_built_anew_lets_go_of_the_local_files_kept_rows(kit: SyncKit) -> None:
    # The same for the local output: its kept rows (and the files their text is in) hold
    # the last report's answers, none of which a dataset built anew holds again.
    token = kit.survey("T-1", "1", "Anna")
    kit.responses([EN_HEADER, [T0, 5, "fine", "typed", "T-1", token]])
    runner = kit.runner(kit.config(output={"local": {"enabled": True}}))
    runner.run()
    assert runner._files is not None
    first = runner._files[1]
    files = [text.file for text in [*first.csv.values(), *first.sheets.values()]]
    assert files and not any(f.closed for f in files)
    held: list[bool] = []
    build = runner._dataset

    def building(answers: Any, surveys: Any) -> Any:
        held.append(runner._files is not None or not all(f.closed for f in files))
        return build(answers, surveys)

    runner._dataset = building  # type: ignore[method-assign]
    assert runner.run(full=True).status == "ok"
    assert held == [False]
    assert runner._files is not None and runner._files[1].sheets  # this write's kept


def test_only_the_tabs_whose_rows_are_kept_keep_their_encoding() -> None:
    kept = KeptEncoding()
    summary = Grid("Summary", "summary")
    summary.rows = [["Agent", "CSAT"], ["Anna", 0.9]]
    plans = [_plan([("a", 1)], 3), TabPlan("Summary", summary, 22, 3, True, 2)]
    _output(kept)._encoded(plans)
    assert set(kept.tabs) == {"Anna (7)"}  # a summary's rows are made anew every report
