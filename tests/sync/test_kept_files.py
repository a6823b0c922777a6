"""A runner's later local write copies the rows it held before (outputs/kept_text.py): the
files are byte for byte what a fresh write makes of the same report, whatever changed; the
text stays in the last write's own temporary file, closed once the next write is done."""

from __future__ import annotations

import random
import tracemalloc
import zipfile
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from csat_hook.sync.layout import Area
from csat_hook.sync.layout import Column
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Look
from csat_hook.sync.layout import Table
from csat_hook.sync.outputs import kept_text
from csat_hook.sync.outputs import xlsx_cells
from csat_hook.sync.outputs.local import KeptFiles
from csat_hook.sync.outputs.local import write_csv
from csat_hook.sync.outputs.local import write_xlsx
from csat_hook.sync.texts import Texts

START = datetime(2026, 11, 1, 9, 0)


# An answer's CSV columns (_answer's, and a share), one of them a percentage.
ANSWER_COLUMNS = (
    Column("When", fmt=Fmt.DATETIME),
    Column("Ticket"),
    Column("Rating"),
    Column("Comment"),
    Column("Share", fmt=Fmt.PERCENT),
)


def _answer(i: int, comment: str = "") -> tuple[Any, ...]:
    return (START + timedelta(minutes=i), f"#{i}", i % 5 + 1, comment or f"comment <{i}> & more")


def _grid(rows: list[tuple[Any, ...]], *, muted: bool = False) -> Grid:
    header = ("When", "Ticket", "Rating", "Comment")
    grid = Grid("Anna", "agent", [header, *rows], key="7")
    grid.looks.append((Area(0, 0, 1, 4), Look.HEADER))
    grid.formats.append((Area(1, 0, len(rows) + 1, 1), Fmt.DATETIME))
    if muted:  # another style over the newest rows: their ids and elements change
        grid.looks.append((Area(1, 3, 6, 4), Look.MUTED))
    return grid


def _summary(styled: bool) -> Grid:
    grid = Grid("Summary", "summary", [["Summary"], ["CSAT", 0.9]])
    if styled:  # a style asked before the agent's: every style id after it moves
        grid.looks.append((Area(1, 0, 2, 1), Look.NOTE))
    return grid


def _sheets(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as package:
        return {n: package.read(n) for n in package.namelist() if n.startswith("xl/")}


def _written_anew(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    row = xlsx_cells._row

    def counted(*args: Any) -> str:
        calls[0] += 1
        return row(*args)

    monkeypatch.setattr(xlsx_cells, "_row", counted)
    return calls


def test_a_later_workbook_is_what_a_fresh_write_makes_and_copies_the_rows_held_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    answers = [_answer(i) for i in range(300, 0, -1)]  # newest first
    kept = KeptFiles()
    texts = Texts("en")
    write_xlsx(tmp_path / "first.xlsx", [_summary(False), _grid(answers)], texts, kept)
    first_file = kept.sheets["Anna (7)"].file

    # Three new answers on top, one answer edited (a new row object), one gone.
    later = [_answer(303), _answer(302), _answer(301), *answers]
    later[50] = _answer(300 - 47, "edited")
    del later[120]
    anew = _written_anew(monkeypatch)
    write_xlsx(tmp_path / "later.xlsx", [_summary(False), _grid(later)], texts, kept)
    written_anew = anew[0]
    monkeypatch.undo()
    write_xlsx(tmp_path / "fresh.xlsx", [_summary(False), _grid(later)], texts)

    assert _sheets(tmp_path / "later.xlsx") == _sheets(tmp_path / "fresh.xlsx")
    assert written_anew <= 2 + 4 + 1  # the two summary rows, the header and the new and edited
    assert first_file.closed and not kept.sheets["Anna (7)"].file.closed

    # Every style id moved, and the newest rows restyled: no row's element is copied where
    # its attributes differ.
    write_xlsx(tmp_path / "moved.xlsx", [_summary(True), _grid(later, muted=True)], texts, kept)
    write_xlsx(tmp_path / "moved-fresh.xlsx", [_summary(True), _grid(later, muted=True)], texts)
    assert _sheets(tmp_path / "moved.xlsx") == _sheets(tmp_path / "moved-fresh.xlsx")


def test_a_later_csv_file_is_what_a_fresh_write_makes(tmp_path: Path):
    columns = list(ANSWER_COLUMNS)
    answers = [(*_answer(i, "=1+1" if i % 7 == 0 else ""), i / 1000) for i in range(200, 0, -1)]
    kept = KeptFiles()
    write_csv(tmp_path / "answers.csv", Table(columns, answers), kept)
    later = [(*_answer(202), 0.5), (*_answer(201), 0.25), *answers[:90], *answers[91:]]
    write_csv(tmp_path / "answers.csv", Table(columns, later), kept)
    write_csv(tmp_path / "fresh.csv", Table(columns, later))
    assert (tmp_path / "answers.csv").read_bytes() == (tmp_path / "fresh.csv").read_bytes()

    # The same rows under other columns' formats (a share as a number, not a percentage):
    # written anew, not copied.
    other = [*columns[:4], Column("Share")]
    write_csv(tmp_path / "answers.csv", Table(other, later), kept)
    write_csv(tmp_path / "fresh.csv", Table(other, later))
    assert (tmp_path / "answers.csv").read_bytes() == (tmp_path / "fresh.csv").read_bytes()


def test_round_after_round_of_changes_each_write_is_what_a_fresh_write_makes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Rows copied in runs: rows inserted, edited and removed anywhere, a taller row (neither
    # copied nor kept), the newest rows restyled, round after round; each run read in pieces
    # of a few rows (cut where a row ends) and a row longer than a piece alone.
    monkeypatch.setattr(kept_text, "_CHUNK", 300)
    rng = random.Random(7)
    comments = ["100%", "%d", "%%", "50%s off", "%(x)d", "", "plain", "a\nb"]
    serial = iter(range(10_000))

    def answer() -> tuple[Any, ...]:
        i = next(serial)
        return (*_answer(i, rng.choice(comments) + f" {i}"), i / 7)

    answers = [answer() for _ in range(150)]
    columns = list(ANSWER_COLUMNS)
    kept = KeptFiles()
    texts = Texts("en")
    for round_ in range(6):
        grid = _grid(answers, muted=round_ % 3 == 2)
        grid.tall_rows = [rng.randrange(1, len(answers))] if round_ % 2 else []
        write_xlsx(tmp_path / "kept.xlsx", [_summary(False), grid], texts, kept)
        write_xlsx(tmp_path / "fresh.xlsx", [_summary(False), grid], texts)
        assert _sheets(tmp_path / "kept.xlsx") == _sheets(tmp_path / "fresh.xlsx"), round_
        # What is kept is this write's rows, in order, not a row it left out (an erased
        # answer's text is not held on for the next run); a taller row is never copied.
        held = [row for part in kept.sheets["Anna (7)"].segments for row in part.rows]
        written = [row for r, row in enumerate(grid.rows) if r not in grid.tall_rows]
        assert list(map(id, held)) == list(map(id, written))
        write_csv(tmp_path / "kept.csv", Table(columns, answers), kept)
        write_csv(tmp_path / "fresh.csv", Table(columns, answers))
        assert (tmp_path / "kept.csv").read_bytes() == (tmp_path / "fresh.csv").read_bytes()
        held = [row for part in kept.csv["kept.csv"].segments for row in part.rows]
        assert list(map(id, held)) == list(map(id, answers))
        for _ in range(rng.randrange(1, 12)):
            answers.insert(rng.randrange(len(answers) + 1), answer())
        for _ in range(rng.randrange(0, 4)):
            answers[rng.randrange(len(answers))] = answer()
        for _ in range(rng.randrange(0, 4)):
            del answers[rng.randrange(len(answers))]


def test_the_kept_text_is_in_files_not_in_memory_and_each_write_closes_the_last_ones(
    tmp_path: Path,
):
    serial = iter(range(100_000))
    long = "a comment of some length, as customers write them " * 6
    answers = [_answer(next(serial), long) for _ in range(2_000)]
    columns = list(ANSWER_COLUMNS)
    kept = KeptFiles()
    texts = Texts("en")
    held: list[Any] = []
    tracemalloc.start()
    try:
        for _ in range(5):  # a few answers arrive between runs, newest first
            answers[:0] = [_answer(next(serial), long) for _ in range(3)]
            rows = [(*a, 0.5) for a in answers]
            before = tracemalloc.get_traced_memory()[0]
            write_csv(tmp_path / "answers.csv", Table(columns, rows), kept)
            write_xlsx(tmp_path / "report.xlsx", [_summary(False), _grid(answers)], texts, kept)
            after = tracemalloc.get_traced_memory()[0]
            held += [kept.csv["answers.csv"].file, kept.sheets["Anna (7)"].file]
            del rows
    finally:
        tracemalloc.stop()
    text = (tmp_path / "answers.csv").stat().st_size
    with zipfile.ZipFile(tmp_path / "report.xlsx") as package:
        text += package.getinfo("xl/worksheets/sheet2.xml").file_size
    # What a write leaves held beyond the last one's: the rows' offsets, not their ≈ 1.7 MB
    # of text (kept in memory, the text alone was more than that).
    assert after - before < text / 10, (after - before, text)
    # Two files open (the CSV file's rows and the workbook's), every earlier one closed.
    assert [f.closed for f in held] == [True] * (len(held) - 2) + [False, False]
    write_csv(tmp_path / "fresh.csv", Table(columns, [(*a, 0.5) for a in answers]))
    assert (tmp_path / "answers.csv").read_bytes() == (tmp_path / "fresh.csv").read_bytes()


def test_a_kept_text_that_cannot_be_read_fails_that_write_and_the_next_makes_every_row(
    tmp_path: Path,
):
    from csat_hook.sync.outputs.local import write_local

    answers = Table(
        list(ANSWER_COLUMNS), [(*_answer(i), 0.1) for i in range(50)], csv_name="answers.csv"
    )

    class Report:  # what write_local reads of a report with CSV files only
        def __init__(self, *tables: Table) -> None:
            self.csv = list(tables)

    kept = KeptFiles()
    write_local(Report(answers), tmp_path, xlsx=False, csv_files=True, kept=kept)  # type: ignore[arg-type]
    good = (tmp_path / "answers.csv").read_bytes()
    kept.csv["answers.csv"].file.truncate(100)  # what no write of ours does: cut short
    with pytest.raises(OSError, match=r"ended \d+ bytes early"):
        write_local(Report(answers), tmp_path, xlsx=False, csv_files=True, kept=kept)  # type: ignore[arg-type]
    assert kept.csv == {} and kept.sheets == {}
    assert (tmp_path / "answers.csv").read_bytes() == good  # the last good file stays
    write_local(Report(answers), tmp_path, xlsx=False, csv_files=True, kept=kept)  # type: ignore[arg-type]
    assert (tmp_path / "answers.csv").read_bytes() == good
    assert set(kept.csv) == {"answers.csv"}


def test_nothing_is_kept_of_a_file_the_report_no_longer_writes(tmp_path: Path):
    from csat_hook.sync.outputs.local import write_local

    columns = [Column("Comment")]
    answers = Table(columns, [("a secret comment",)], csv_name="answers.csv")
    unverified = Table(columns, [("an erased comment",)], csv_name="unverified.csv")

    class Report:  # what write_local reads of a report with CSV files only
        def __init__(self, *tables: Table) -> None:
            self.csv = list(tables)

    kept = KeptFiles()
    write_local(Report(answers, unverified), tmp_path, xlsx=False, csv_files=True, kept=kept)  # type: ignore[arg-type]
    assert set(kept.csv) == {"answers.csv", "unverified.csv"}
    write_local(Report(answers), tmp_path, xlsx=False, csv_files=True, kept=kept)  # type: ignore[arg-type]
    assert set(kept.csv) == {"answers.csv"}
    write_local(Report(answers), tmp_path, xlsx=False, csv_files=False, kept=kept)  # type: ignore[arg-type]
    assert kept.csv == {}
