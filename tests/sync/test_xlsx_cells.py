"""A workbook's cells, written as text (outputs/xlsx_cells.py), against openpyxl's own writer:
every kind of value, style and row the report holds reads back the same from both files."""

from __future__ import annotations

import enum
import math
import re
import struct
import zipfile
import zlib
from datetime import date
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import canonicalize

import pytest
from isal import isal_zlib
from openpyxl import Workbook
from openpyxl import load_workbook
from openpyxl.cell import WriteOnlyCell

from csat_hook.sync.layout import BARS
from csat_hook.sync.layout import Area
from csat_hook.sync.layout import Chart
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Look
from csat_hook.sync.outputs import xlsx
from csat_hook.sync.outputs.local import write_xlsx
from csat_hook.sync.outputs.xlsx_cells import SHEET_LEVEL
from csat_hook.sync.outputs.xlsx_cells import ZIP_LEVEL
from csat_hook.sync.outputs.xlsx_cells import needs_zip64
from csat_hook.sync.outputs.xlsx_cells import skeleton
from csat_hook.sync.outputs.xlsx_cells import storable_text
from csat_hook.sync.outputs.xlsx_cells import with_rows
from csat_hook.sync.texts import Texts

TEXTS = [
    "plain",
    "",
    " leading and trailing ",
    "trailing only ",
    "\nleading line feed",
    "tab\tand\nnewline, 100% %d %% %(x)s %",
    "carriage\rreturn",
    "&amp; <b>bold</b> > ]]>",
    '=HYPERLINK("https://evil.example","x")',
    "=1+1",
    "#N/A",
    "my_x0041_var _x000D_",
    "bell\x07, nul\x00, lone surrogate \ud800, \ufffe\uffff end",
    "Ünïcödé, кириллица, 表情 😀",
    "x" * 40_000,
    "😀" * 20_000,
    "\u00a0non-breaking\u2028",
]
NUMBERS = [0, 1, -7, 10**20, 2**53 + 1, 0.1 + 0.2, 1e-300, -2.5, math.nan, math.inf, -math.inf]


class Kind(enum.StrEnum):
    GOOD = "good"


class Count(enum.IntEnum):
    FIVE = 5


class Text(str):
    def __str__(self) -> str:  # what the cell shows is the value, not this
        return "not the value"


class Legacy(str, enum.Enum):  # noqa: UP042  (str() gives "Legacy.OLD"; the cell holds "old=1")
    OLD = "old=1"


class Score(int):
    def __int__(self) -> int:
        return 99


class Moment(datetime):
    pass


# Values of a subclass (an enum's, a date-time's) and a Decimal: written as openpyxl writes them.
SUBCLASSED = [
    Kind.GOOD,
    Count.FIVE,
    Text("sub=text"),
    Legacy.OLD,
    Score(7),
    Moment(2026, 5, 6, 7, 8),
    Decimal("2.50"),
]
WHEN = [
    datetime(2026, 11, 18, 9, 5, 7, 123456),
    datetime(1900, 2, 28, 12),
    datetime(1900, 3, 1),
    datetime(1899, 12, 31, 23, 59),
    date(2026, 1, 2),
    date(1900, 1, 1),
]


def _grid() -> Grid:
    values: list[Any] = [*TEXTS, *NUMBERS, *WHEN, True, False, None, *SUBCLASSED]
    rows: list[list[Any]] = [["Title"], [], ["Agent", "CSAT", "low", "high", "When", "Any"]]
    for i, value in enumerate(values):
        rows.append([f"a{i}", 0.5 + i / 1000, 0.4, 0.6, WHEN[i % len(WHEN)], value])
        rows.append([None, None, None, None, None, value, value])  # styled and unstyled Nones
    grid = Grid("Summary", "summary", rows, frozen_rows=3, frozen_cols=1, widths=[12, 8, 8, 8])
    grid.tall_rows = [2]
    grid.looks += [
        (Area(0, 0, 1, 1), Look.TITLE),
        (Area(2, 0, 3, 6), Look.HEADER),
        (Area(3, 0, len(rows), 1), Look.BOLD),
        (Area(10, 0, 20, 7), Look.MUTED),  # over other areas: later ones win
        (Area(5, 5, 9, 6), Look.CENTER),
        (Area(59, 6, 65, 7), Look.CENTER),  # dates with a style but no format
    ]
    grid.formats += [
        (Area(3, 1, len(rows), 4), Fmt.PERCENT),
        (Area(3, 4, len(rows), 5), Fmt.DATETIME),
        # Value i is in rows 3 + 2i and 4 + 2i: texts, then numbers (from row 37), then dates
        # (from row 59).
        (Area(3, 5, 37, 6), Fmt.MEAN),
        (Area(37, 5, 49, 7), Fmt.COUNT),
        (Area(59, 5, 71, 6), Fmt.DATE),  # column 6's dates have no format: openpyxl's own
    ]
    grid.charts.append(Chart(BARS, "CSAT", (0, 9), 2, len(rows), 0, 1, 2, 3, axis_title="CSAT"))
    return grid


def _reference(path: Path, grid: Grid, texts: Texts) -> None:
    """The grid as openpyxl writes it cell by cell (the way the report was written before
    the forty-fifth round): the same sheet settings, each value a cell with its style."""
    workbook = Workbook(write_only=True)
    helpers = xlsx._error_amounts(grid)
    sheet = xlsx._sheet(workbook, grid.name, grid, texts, helpers)
    styles = _styles_by_cell(grid, xlsx.number_formats(texts))
    for r, row in enumerate(xlsx._with_helpers(grid, helpers)):
        cells = []
        for c, value in enumerate(row):
            style = styles.get((r, c))
            if isinstance(value, str):
                cell = WriteOnlyCell(sheet, value=storable_text(value))
                cell.data_type = "s"
            elif style or isinstance(value, datetime | date):
                cell = WriteOnlyCell(sheet, value=value)
            else:
                cells.append(value)
                continue
            for name, attribute in (style or {}).items():
                setattr(cell, name, attribute)
            cells.append(cell)
        if r in grid.tall_rows:
            sheet.row_dimensions[r + 1].height = 40
        sheet.append(cells)
    workbook.save(path)


def _styles_by_cell(grid: Grid, formats: dict[Fmt, str]) -> dict[tuple[int, int], dict[str, Any]]:
    """(row, column) → the cell's style: each area's look, then each area's format, in
    order (a later area wins), cell by cell."""
    styles: dict[tuple[int, int], dict[str, Any]] = {}
    for area, look in grid.looks:
        for r in range(area.row0, min(area.row1, len(grid.rows))):
            for c in range(area.col0, area.col1):
                styles.setdefault((r, c), {}).update(xlsx.LOOKS[look])
    for area, fmt in grid.formats:
        for r in range(area.row0, min(area.row1, len(grid.rows))):
            for c in range(area.col0, area.col1):
                styles.setdefault((r, c), {})["number_format"] = formats[fmt]
    return styles


def _cells(path: Path) -> dict[str, tuple[Any, ...]]:
    sheet = load_workbook(path)["Summary"]
    seen: dict[str, tuple[Any, ...]] = {}
    for row in sheet.iter_rows():
        for cell in row:
            if cell.value is None and not cell.has_style:
                continue
            value = cell.value
            if isinstance(value, float) and math.isnan(value):
                value = "nan"
            seen[cell.coordinate] = (
                value,
                cell.data_type,
                cell.number_format,
                repr(cell.font),
                repr(cell.fill),
                repr(cell.alignment),
            )
    heights = {r: d.height for r, d in sheet.row_dimensions.items() if d.height}
    seen["heights"] = (heights,)
    return seen


@pytest.mark.parametrize("language", ["en", "ru"])
def test_every_kind_of_cell_reads_back_as_openpyxls_own_writer_wrote_it(
    tmp_path: Path, language: str
):
    grid = _grid()
    ours, theirs = tmp_path / "ours.xlsx", tmp_path / "theirs.xlsx"
    write_xlsx(ours, [grid], Texts(language))
    _reference(theirs, grid, Texts(language))

    assert _cells(ours) == _cells(theirs)
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(theirs) as b:
        assert a.namelist() == b.namelist()
        ours_sheet = a.read("xl/worksheets/sheet1.xml").decode()
        theirs_sheet = b.read("xl/worksheets/sheet1.xml").decode()
    # The same elements, attribute for attribute (as canonical XML: ``<c/>`` is ``<c></c>``),
    # references and all, but for the styles' numbering (openpyxl numbers styles in the order
    # cells ask for them).
    no_ids = re.compile(r' s="\d+"')
    assert canonicalize(no_ids.sub("", ours_sheet)) == canonicalize(no_ids.sub("", theirs_sheet))


def test_a_sheet_of_many_rows_has_every_row_in_order(tmp_path: Path):
    rows: list[list[Any]] = [["Answer", "When", "Rating"]]
    rows += [[f"#{i}", datetime(2026, 1, 1, i % 24), i % 5 + 1] for i in range(5_000)]
    grid = Grid("Responses", "responses", rows)
    grid.formats.append((Area(1, 1, len(rows), 2), Fmt.DATETIME))
    path = tmp_path / "r.xlsx"
    write_xlsx(path, [grid], Texts("en"))

    workbook = load_workbook(path, read_only=True)  # as streamed
    try:
        assert [list(r) for r in workbook["Responses"].iter_rows(values_only=True)] == rows
    finally:
        workbook.close()
    assert [list(r) for r in load_workbook(path)["Responses"].iter_rows(values_only=True)] == rows


def test_every_part_of_the_workbook_is_deflated_at_its_level(tmp_path: Path):
    rows: list[list[Any]] = [
        [f"answer {i}", i % 5 + 1, f"comment {i * 7919 % 1000}"] for i in range(3_000)
    ]
    path = tmp_path / "r.xlsx"
    write_xlsx(path, [Grid("Responses", "responses", rows)], Texts("en"))

    def deflated(content: bytes, compressor: Any) -> int:
        return len(compressor.compress(content) + compressor.flush())

    def by_zlib(content: bytes, level: int) -> int:
        return deflated(content, zlib.compressobj(level, zlib.DEFLATED, -15))  # as zipfile

    def by_isal(content: bytes) -> int:
        return deflated(content, isal_zlib.compressobj(SHEET_LEVEL, zlib.DEFLATED, -15))

    with zipfile.ZipFile(path) as package:
        assert package.testzip() is None  # every part's CRC-32 is its content's
        parts = [(info, package.read(info)) for info in package.infolist()]
    sheet = next(c for i, c in parts if i.filename.startswith("xl/worksheets/"))
    assert len({by_isal(sheet), by_zlib(sheet, ZIP_LEVEL), by_zlib(sheet, 6)}) == 3
    assert by_isal(sheet) < len(sheet) // 4
    for info, content in parts:  # the sheet with its rows by ISA-L; every other part by zlib
        assert info.compress_type == zipfile.ZIP_DEFLATED
        if info.filename.startswith("xl/worksheets/"):
            assert info.compress_size == by_isal(content), info.filename
        else:
            assert info.compress_size == by_zlib(content, ZIP_LEVEL), info.filename


def test_a_value_no_workbook_holds_is_refused(tmp_path: Path):
    grid = Grid("Summary", "summary", [["x", object()]])
    with pytest.raises(TypeError, match="object"):
        write_xlsx(tmp_path / "r.xlsx", [grid], Texts("en"))
    assert not (tmp_path / "r.xlsx").exists()


def test_rows_for_a_part_the_workbook_lacks_are_refused_not_dropped(tmp_path: Path):
    workbook = Workbook(write_only=True)
    workbook.create_sheet("Responses")
    rows_file = tmp_path / "rows"
    text = b'<row r="1"><c r="A1" t="inlineStr"><is><t>x</t></is></c></row>'
    rows_file.write_bytes(text)
    with rows_file.open("rb") as rows:
        package = skeleton(workbook)
        with pytest.raises(ValueError, match="sheet9"):
            with_rows(package, {"xl/worksheets/sheet9.xml": (rows, 0, 10)}, tmp_path / "r.xlsx")
        with_rows(package, {"xl/worksheets/sheet1.xml": (rows, 0, len(text))}, tmp_path / "r.xlsx")
    assert [c.value for c in next(load_workbook(tmp_path / "r.xlsx")["Responses"].iter_rows())] == [
        "x"
    ]


def test_no_part_of_the_workbook_carries_zip64_fields_it_does_not_need(tmp_path: Path):
    # Microsoft Office refuses or repairs a package whose small parts carry ZIP64 fields;
    # every sheet's local header had them (force_zip64) until the forty-ninth round.
    rows: list[list[Any]] = [[f"answer {i}", i % 5 + 1] for i in range(2_000)]
    path = tmp_path / "r.xlsx"
    write_xlsx(
        path, [Grid("Responses", "responses", rows), Grid("Ann", "agent", rows)], Texts("en")
    )
    data = path.read_bytes()
    with zipfile.ZipFile(path) as package:
        infos = package.infolist()
    assert sum(i.filename.startswith("xl/worksheets/sheet") for i in infos) == 2
    for info in infos:
        (sig, version, _, flags, method, _, _, crc, packed, size, name_len, extra_len) = (
            struct.unpack_from("<4s2B4HL2L2H", data, info.header_offset)
        )
        assert sig == b"PK\x03\x04"
        extra = data[info.header_offset + 30 + name_len :][:extra_len]
        assert extra == b"", info.filename  # no extra field: no ZIP64 one
        assert version <= 20, info.filename  # a ZIP64 part needs 4.5
        assert not flags & 0x08  # sizes in the header, no data descriptor
        assert (method, crc, packed, size) == (
            zipfile.ZIP_DEFLATED,
            info.CRC,
            info.compress_size,
            info.file_size,
        ), info.filename
        assert info.extra == b"", info.filename  # nor in the central directory


def test_a_part_is_given_zip64_fields_only_when_its_size_may_need_them():
    assert not needs_zip64(0)
    assert not needs_zip64(1 << 30)  # 1 GiB of SpreadsheetML: a 32-bit size holds it
    assert needs_zip64(zipfile.ZIP64_LIMIT)
    assert needs_zip64(int(zipfile.ZIP64_LIMIT / 1.05) + 1)  # deflate may make it larger


def test_a_workbook_of_no_grids_is_written_with_one_empty_sheet(tmp_path: Path):
    write_xlsx(tmp_path / "r.xlsx", [], Texts("en"))
    workbook = load_workbook(tmp_path / "r.xlsx")
    assert len(workbook.worksheets) == 1
    assert workbook.worksheets[0].max_row == 1 and workbook.worksheets[0]["A1"].value is None


def test_a_sheet_too_large_for_32_bit_sizes_is_written_with_zip64_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # zipfile reads its limit at each use: at 64 KiB the sheet is over it, the small parts
    # are not (a real one is 2 GiB: a sheet of hundreds of thousands of long comments).
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1 << 16)
    rows: list[list[Any]] = [[f"answer {i}", i % 5 + 1] for i in range(3_000)]
    path = tmp_path / "r.xlsx"
    write_xlsx(path, [Grid("Responses", "responses", rows)], Texts("en"))
    data = path.read_bytes()
    with zipfile.ZipFile(path) as package:
        assert package.testzip() is None
        zip64 = {
            info.filename
            for info in package.infolist()
            if data[info.header_offset + 28 : info.header_offset + 30] != b"\x00\x00"
        }
    assert zip64 == {"xl/worksheets/sheet1.xml"}  # its local header's extra field: ZIP64's
    monkeypatch.undo()
    assert [list(r) for r in load_workbook(path)["Responses"].iter_rows(values_only=True)] == rows
