"""A report as an .xlsx workbook: openpyxl (write-only mode) writes the workbook and each
sheet's settings, rules and charts; the sheets' cells are written as text
(:mod:`.xlsx_cells`) and put in their sheets as the file is copied to its place.

Column widths, row heights and frozen panes come from the grid; number formats, fonts and
fills go on each cell by the grid's areas (a later area wins). Formulas in conditional formats
are stored in Excel's en-US syntax whatever the reader's locale. Every text cell is stored with
the string type, so nothing that looks like a formula runs, without the characters XML cannot
hold, cut to the 32,767 characters an Excel cell holds (:mod:`.cells`), and with text that
reads as an OOXML escape (``_x0041_``) escaped so it shows as typed, in a sheet's name too.
Charts: :mod:`.xlsx_charts`.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from typing import Any

from openpyxl import Workbook
from openpyxl.chart.reference import DummyWorksheet
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Alignment
from openpyxl.styles import Font
from openpyxl.styles import PatternFill
from openpyxl.utils import get_column_letter

from csat_hook.sync.layout import BARS
from csat_hook.sync.layout import MARK_DOWN
from csat_hook.sync.layout import MARK_UP
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Look
from csat_hook.sync.layout import Rule
from csat_hook.sync.layout import RuleKind
from csat_hook.sync.layout import shown_from
from csat_hook.sync.outputs.kept_text import KeptText
from csat_hook.sync.outputs.kept_text import close_unused
from csat_hook.sync.outputs.xlsx_cells import OOXML_ESCAPE
from csat_hook.sync.outputs.xlsx_cells import Style
from csat_hook.sync.outputs.xlsx_cells import StyleIds
from csat_hook.sync.outputs.xlsx_cells import skeleton
from csat_hook.sync.outputs.xlsx_cells import with_rows
from csat_hook.sync.outputs.xlsx_cells import write_rows
from csat_hook.sync.outputs.xlsx_charts import xlsx_chart
from csat_hook.sync.report.answers import ROWS_KEPT
from csat_hook.sync.texts import Texts

FONT = "Calibri"  # named: LibreOffice falls back to a serif face for a font without a name
RED, GREEN, GREY = "F4CCCC", "D9EAD3", "EFEFEF"
DARK_RED, DARK_GREEN, MUTED = "990000", "274E13", "777777"
LOOKS: dict[Look, dict[str, Any]] = {
    Look.TITLE: {"font": Font(name=FONT, bold=True, size=14)},
    Look.HEADER: {
        "font": Font(name=FONT, bold=True),
        "fill": PatternFill("solid", fgColor=GREY),
        "alignment": Alignment(wrap_text=True, vertical="center"),
    },
    Look.BOLD: {"font": Font(name=FONT, bold=True)},
    Look.MUTED: {"font": Font(name=FONT, italic=True, color=MUTED)},
    Look.NOTE: {"font": Font(name=FONT, size=9, color="555555")},
    Look.CENTER: {"alignment": Alignment(horizontal="center")},
}


def number_formats(texts: Texts) -> dict[Fmt, str]:
    """Format patterns (en-US syntax; the reader's locale renders them)."""
    return {
        Fmt.PERCENT: "0.0%",
        Fmt.WHOLE_PERCENT: "0%",
        Fmt.POINTS: texts["pp_format"],
        Fmt.SCORE: "+0;-0;0",
        Fmt.COUNT: "0",
        Fmt.TIED: '0"="',
        Fmt.MEAN: "0.00",
        Fmt.DATETIME: texts["datetime_format"],
        Fmt.DATE: texts["date_format"],
    }


def write_workbook(
    target: Path,
    titles: Sequence[str],
    grids: Sequence[Grid],
    texts: Texts,
    kept: dict[str, KeptText] | None = None,
) -> None:
    """Write ``grids`` as the sheets ``titles`` of a new workbook at ``target``.

    openpyxl (write-only mode) writes the workbook with every sheet's settings, rules and
    charts and no rows; the sheets' rows are written apart (:mod:`.xlsx_cells`, to an
    anonymous temporary file beside ``target``) and put in their
    sheet's ``<sheetData>`` as the package is copied to ``target``. ``kept``: the last
    workbook's rows of its sheets of :data:`ROWS_KEPT` and where their text is, by sheet
    title (:mod:`.kept_text`), copied where held again, and replaced by this one's once it
    is written (the last one's file closed)."""
    workbook = Workbook(write_only=True)
    formats = number_formats(texts)
    rows: dict[Any, tuple[IO[bytes], int, int]] = {}  # sheet → where its rows are
    now_kept: dict[str, KeptText] = {}
    with contextlib.ExitStack() as stack:
        # Every sheet's rows, one after another; and when ``kept``, the kept sheets' rows as
        # formats (numbered where copied: kept_text), in a file the runner holds open for
        # its next write. Both beside ``target`` (anonymous): on the disk the report is
        # written to, where its space is, not TMPDIR (a tmpfs is memory).
        data = stack.enter_context(tempfile.TemporaryFile(dir=target.parent))
        formats_file = (
            tempfile.TemporaryFile(dir=target.parent)  # noqa: SIM115
            if kept is not None
            else None
        )
        try:
            sheets = []
            for title, grid in zip(titles, grids, strict=True):
                helpers = _error_amounts(grid)
                sheets.append((_sheet(workbook, title, grid, texts, helpers), title, grid, helpers))
            style_ids = StyleIds(sheets[0][0]) if sheets else None
            for sheet, title, grid, helpers in sheets:
                assert style_ids is not None
                keep = kept is not None and grid.kind in ROWS_KEPT
                start = data.tell()
                written = write_rows(
                    data,
                    list(_with_helpers(grid, helpers)),
                    _row_styles(grid, formats),
                    style_ids,
                    dict.fromkeys(grid.tall_rows, 40.0),  # points: three lines of a wrapped header
                    before=kept.get(title) if kept is not None and keep else None,
                    keep=formats_file if keep else None,
                )
                if written is not None:
                    now_kept[title] = written
                rows[sheet] = (data, start, data.tell())
            package = skeleton(workbook)  # names each sheet's part: sheet.path after it
            with_rows(package, {sheet.path.lstrip("/"): at for sheet, at in rows.items()}, target)
        except BaseException:
            if formats_file is not None:
                formats_file.close()
            raise
    if formats_file is not None and not now_kept:
        formats_file.close()
    if kept is not None:
        close_unused(kept.values(), now_kept.values())
        kept.clear()
        kept.update(now_kept)


def _sheet(
    workbook: Any, title: str, grid: Grid, texts: Texts, helpers: dict[int, dict[int, Any]]
) -> Any:
    """A write-only sheet ``title`` with ``grid``'s settings, rules and charts, no rows;
    ``helpers``: its charts' hidden helper columns (:func:`_error_amounts`).

    The sheet's name is an ST_Xstring as a cell's text is (``sheet@name``, ECMA-376 Part 1,
    18.2.19): stored with the underscore of what reads as an escape escaped, so Excel shows
    ``title`` (an agent "my_x0041_var" had a sheet shown as "myAvar"). Only the name is:
    the charts' ranges are plain strings, which name the sheet as Excel shows it."""
    with warnings.catch_warnings():
        # openpyxl warns of a name over 31 characters as stored; Excel counts them as shown
        # (``title`` is within them: titles.XLSX_MAX).
        warnings.filterwarnings("ignore", "Title is more than 31 characters")
        sheet = workbook.create_sheet(_escaped(title))
    if grid.frozen_rows or grid.frozen_cols:
        sheet.freeze_panes = f"{get_column_letter(grid.frozen_cols + 1)}{grid.frozen_rows + 1}"
    for i, width in enumerate(grid.widths):
        sheet.column_dimensions[get_column_letter(i + 1)].width = width + 1
    if grid.kind == "summary":
        sheet.page_setup.orientation = "landscape"
        sheet.sheet_properties.pageSetUpPr.fitToPage = True
        sheet.page_setup.fitToWidth = 1
        sheet.page_setup.fitToHeight = 0
    for column in {c for by_row in helpers.values() for c in by_row}:
        sheet.column_dimensions[get_column_letter(column + 1)].hidden = True
    for rule in grid.rules:
        _add_rule(sheet, rule)
    for slot, chart in enumerate(grid.charts):
        chart_object = xlsx_chart(chart, DummyWorksheet(title), grid.width + 2 * slot, texts)
        sheet.add_chart(chart_object, _a1(*chart.anchor))
    return sheet


def _with_helpers(grid: Grid, helpers: dict[int, dict[int, Any]]) -> Iterator[Sequence[Any]]:
    """``grid``'s rows, each with the values of its hidden helper columns (charts' error
    amounts: :func:`_error_amounts`) where it has any."""
    if not helpers:
        yield from grid.rows
        return
    for r, row in enumerate(grid.rows):
        extra = helpers.get(r)
        if not extra:
            yield row
            continue
        cells = list(row) + [None] * max(0, max(extra) + 1 - len(row))
        for column, value in extra.items():
            cells[column] = value
        yield cells


def _error_amounts(grid: Grid) -> dict[int, dict[int, Any]]:
    """row → hidden helper column → value: for each bar chart, the amounts below and above
    each bar (CSAT − low, high − CSAT), two columns right of the grid per chart."""
    found: dict[int, dict[int, Any]] = defaultdict(dict)
    for slot, chart in enumerate(grid.charts):
        if chart.kind != BARS:
            continue
        below, above = grid.width + 2 * slot, grid.width + 2 * slot + 1
        found[chart.header].update({below: "−", above: "+"})
        for r in range(chart.header + 1, chart.end):
            row = grid.rows[r]
            value, low, high = (
                row[i] if i < len(row) else None for i in (chart.value, chart.low, chart.high)
            )
            if (
                isinstance(value, float | int)
                and isinstance(low, float | int)
                and isinstance(high, float | int)
            ):
                found[r].update({below: round(value - low, 6), above: round(high - value, 6)})
    return found


def _a1(row: int, col: int) -> str:
    return f"{get_column_letter(col + 1)}{row + 1}"


def _row_styles(grid: Grid, formats: dict[Fmt, str]) -> list[tuple[int, list[Style | None]]]:
    """Runs of rows the same areas cover, in order: each as its end and its style per column
    (later areas win), one list for each run (a list per row would be 100,000 lists for an
    agent's answers)."""
    rows = len(grid.rows)
    areas = [area for area, _ in grid.looks] + [area for area, _ in grid.formats]
    cuts = sorted({0, rows} | {min(max(edge, 0), rows) for a in areas for edge in (a.row0, a.row1)})
    runs: list[tuple[int, list[Style | None]]] = []
    for start, end in itertools.pairwise(cuts):
        if start >= end:
            continue
        styles: dict[int, dict[str, Any]] = {}
        for area, look in grid.looks:
            if area.row0 <= start < area.row1:
                for c in range(area.col0, area.col1):
                    styles.setdefault(c, {}).update(LOOKS[look])
        for area, fmt in grid.formats:
            if area.row0 <= start < area.row1:
                for c in range(area.col0, area.col1):
                    styles.setdefault(c, {})["number_format"] = formats[fmt]
        runs.append((end, [styles.get(c) for c in range(max(styles, default=-1) + 1)]))
    return runs


def _escaped(text: str) -> str:
    """``text`` as an ST_Xstring that reads as ``text`` (:data:`OOXML_ESCAPE`); a cell's
    text is escaped the same way (:func:`.xlsx_cells.storable_text`)."""
    return OOXML_ESCAPE.sub("_x005F_", text) if "_x" in text else text


def _add_rule(sheet: Any, rule: Rule) -> None:
    area = rule.area
    if area.empty:
        return
    where = f"{_a1(area.row0, area.col0)}:{_a1(area.row1 - 1, area.col1 - 1)}"
    top = _a1(area.row0, area.col0)
    add = sheet.conditional_formatting.add
    if rule.kind == RuleKind.TARGET:
        target = repr(shown_from(rule.value))
        add(where, _formula_rule(f"AND(ISNUMBER({top}),{top}<{target})", fill=_fill(RED)))
        add(where, _formula_rule(f"AND(ISNUMBER({top}),{top}>={target})", fill=_fill(GREEN)))
    elif rule.kind == RuleKind.LOW_RATING:
        cell = f"${get_column_letter(rule.column + 1)}{area.row0 + 1}"
        limit = int(rule.value)
        add(where, _formula_rule(f"AND(ISNUMBER({cell}),{cell}<={limit})", fill=_fill(RED)))
    elif rule.kind == RuleKind.MARKS:
        cell = f"${get_column_letter(rule.column + 1)}{area.row0 + 1}"
        for mark, color in ((MARK_UP, DARK_GREEN), (MARK_DOWN, DARK_RED)):
            font = Font(name=FONT, bold=True, color=color)
            add(where, _formula_rule(f'{cell}="{mark}"', font=font))
    elif rule.kind == RuleKind.SMALL_N:
        rows, cols = rule.offset
        other = _a1(area.row0 + rows, area.col0 + cols)
        font = Font(name=FONT, italic=True, color="999999")
        formula = f"AND(ISNUMBER({other}),{other}<{int(rule.value)})"
        add(where, _formula_rule(formula, font=font, stopIfTrue=True))


def _formula_rule(formula: str, **looks: Any) -> Any:
    return FormulaRule(formula=[formula], **looks)  # type: ignore[no-untyped-call]


def _fill(color: str) -> PatternFill:
    return PatternFill(start_color=color, end_color=color, fill_type="solid")
