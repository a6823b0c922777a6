"""A report never shows a signed zero: an NPS between −0.5 and +0.5 under ``+0;-0;0``, a
difference under 0.05 pp under ``+0.0" pp";-0.0" pp";0.0" pp"``, a figure rounded to 0 in a
CSV file or an alert's text. Sheets and Excel pick a format's section by the cell's value, not
by how it rounds, so the grid the spreadsheets show holds 0 there; the CSV keeps its one
decimal."""

from __future__ import annotations

import csv
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from csat_hook.alerts.report import minutes_after
from csat_hook.notify.render import pct
from csat_hook.sync.layout import SIGNED
from csat_hook.sync.layout import Canvas
from csat_hook.sync.layout import Column
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Table
from csat_hook.sync.outputs import sheets_format
from csat_hook.sync.outputs import xlsx
from csat_hook.sync.outputs.local import shown
from csat_hook.sync.outputs.local import write_csv
from csat_hook.sync.outputs.local import write_xlsx
from csat_hook.sync.report.common import fraction
from csat_hook.sync.report.common import points
from csat_hook.sync.report.common import score
from csat_hook.sync.texts import Texts

PLACES = {Fmt.SCORE: 0, Fmt.POINTS: 1}


def spreadsheet_shows(value: float, pattern: str) -> str:
    """What Sheets and Excel show for ``value`` under a ``positive;negative;zero`` pattern
    whose sections are digits with a sign and a quoted suffix: the section by the value's
    sign (not by how it rounds), the digits rounded as the cell shows them."""
    positive, negative, zero = pattern.split(";")
    section = positive if value > 0 else negative if value < 0 else zero
    digits, _, suffix = section.partition('"')
    places = len(digits.partition(".")[2])
    number = f"{shown(abs(value), places):.{places}f}"
    sign = digits[0] if digits[0] in "+-" else ""
    return sign + number + suffix.rstrip('"')


def summary_like_table() -> Table:
    nps = [-0.3, -0.0001, 0.3, 0.4999, -0.5, 0.5, -12.0, 0.0]
    change = [-0.04, -0.0001, 0.04, 0.0499, -0.05, 0.05, -1.26, 0.0]
    return Table(
        [Column("Agent"), Column("NPS", Fmt.SCORE), Column("Change", Fmt.POINTS, csv_header="pp")],
        [[f"a{i}", n, c] for i, (n, c) in enumerate(zip(nps, change, strict=True))],
    )


@pytest.mark.parametrize("col0", [0, 2])
def test_a_signed_figure_that_shows_zero_is_written_zero_in_the_spreadsheets(tmp_path, col0):
    texts = Texts("en")
    table = summary_like_table()
    grid = Grid("Summary", "summary")
    placed = Canvas(grid).table(table, col0)
    patterns = {
        Fmt.SCORE: xlsx.number_formats(texts)[Fmt.SCORE],
        Fmt.POINTS: xlsx.number_formats(texts)[Fmt.POINTS],
    }
    assert sheets_format.number_formats(texts)[Fmt.SCORE]["pattern"] == patterns[Fmt.SCORE]
    assert sheets_format.number_formats(texts)[Fmt.POINTS]["pattern"] == patterns[Fmt.POINTS]

    write_xlsx(tmp_path / "r.xlsx", [grid], texts)
    sheet = load_workbook(tmp_path / "r.xlsx")["Summary"]
    for r in range(placed.first, placed.end):
        for c, fmt in ((col0 + 1, Fmt.SCORE), (col0 + 2, Fmt.POINTS)):
            held = grid.rows[r][c]
            written = sheet.cell(r + 1, c + 1).value
            assert written == held and sheet.cell(r + 1, c + 1).number_format == patterns[fmt]
            text = spreadsheet_shows(written, patterns[fmt])
            assert not re.match(r"[+-]0(\.0+)?( |$)", text), text  # no signed zero
            # A figure that does not show zero is the exact value.
            source = table.rows[r - placed.first][c - col0]
            if abs(source) >= SIGNED[fmt]:
                assert written == source
    shows = [spreadsheet_shows(grid.rows[r][col0 + 1], patterns[Fmt.SCORE]) for r in range(1, 9)]
    assert shows == ["0", "0", "0", "0", "-1", "+1", "-12", "0"]
    pp = [spreadsheet_shows(grid.rows[r][col0 + 2], patterns[Fmt.POINTS]) for r in range(1, 9)]
    assert pp == ["0.0 pp", "0.0 pp", "0.0 pp", "0.0 pp", "-0.1 pp", "+0.1 pp", "-1.3 pp", "0.0 pp"]
    # The table the CSV file is written from keeps every value.
    assert [row[1] for row in table.rows] == [-0.3, -0.0001, 0.3, 0.4999, -0.5, 0.5, -12.0, 0.0]


def test_a_csv_file_never_writes_minus_zero_and_keeps_its_one_decimal(tmp_path: Path):
    table = summary_like_table()
    table.columns.append(Column("Mean", Fmt.MEAN))
    table.columns.append(Column("CSAT", Fmt.PERCENT, csv_header="CSAT (%)"))
    table.columns.append(Column("After (min)"))
    table.rows = [
        [*row, -0.001, -0.0001, minutes_after(T0, T0 - timedelta(seconds=2))] for row in table.rows
    ]
    write_csv(tmp_path / "s.csv", table)
    rows = list(csv.reader((tmp_path / "s.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert [row[1:3] for row in rows[1:]] == [
        ["-0.3", "0.0"],
        ["0.0", "0.0"],
        ["0.3", "0.0"],
        ["0.5", "0.0"],
        ["-0.5", "-0.1"],
        ["0.5", "0.1"],
        ["-12.0", "-1.3"],
        ["0.0", "0.0"],
    ]
    assert {tuple(row[3:]) for row in rows[1:]} == {("0.0", "0.0", "0.0")}


T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_figures_rounded_to_zero_from_below_are_unsigned():
    for value in (fraction(-1e-12), points(-1e-13), score(-1e-13), shown(-0.04, 1)):
        assert value == 0 and str(value) == "0.0"
    assert (
        minutes_after(T0, T0 - timedelta(seconds=2)) == 0
        and str(minutes_after(T0, T0 - timedelta(seconds=2))) == "0.0"
    )
    assert minutes_after(T0, T0 + timedelta(seconds=90)) == 1.5


def test_alert_and_note_texts_show_no_minus_zero():
    assert pct(-1e-12) == "0.0%" and pct(0.853) == "85.3%"
    assert Texts("en").percent(-1e-12) == "0.0%" and Texts("ru").percent(-1e-12) == "0,0%"
