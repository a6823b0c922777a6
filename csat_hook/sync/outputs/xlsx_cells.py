"""A report grid's cells as a worksheet's ``<sheetData>``, written as text.

openpyxl writes everything else in the workbook (:mod:`.xlsx`: styles, panes, widths, rules,
charts); its cells cost 15-20 µs each in write-only mode (a cell object per value, its value
bound and checked, its style looked up, an XML element made and serialised), 16-19 s of a
sync for the 850,000 cells of a report of 100,000 answers, every run
(docs/performance.md, the forty-fifth round). A cell is a few dozen bytes of SpreadsheetML
(ECMA-376 Part 1, 18.3.1.4 ``c``, 18.3.1.73 ``row``), written here as openpyxl writes it:
the same element for every value, read back alike by openpyxl, Excel and LibreOffice
(``tests/sync/test_xlsx_cells.py`` checks every kind of cell against openpyxl's own writer).

* a text: an inline string (``t="inlineStr"``), ``xml:space="preserve"`` when it starts or
  ends with white space, ``&``, ``<`` and ``>`` escaped; the caller has made
  it storable (:func:`storable_text`);
* a number (``t="n"``) written as openpyxl writes it (``%.16g``; not a number and infinity
  as an empty value); ``True``/``False`` as ``t="b"``;
* a date or date-time: its Excel serial (openpyxl's ``to_excel``), with the style openpyxl
  gives that value (a date format of its own when the cell's style has none);
* ``None``: nothing, or an empty cell where the cell has a style.

Style ids come from openpyxl: a cell of each style (and each kind of value that changes a
style) is made once on the sheet and asked its ``style_id``, which puts the style in the
workbook's list that openpyxl writes to ``styles.xml``.

The package: openpyxl's parts saved stored (:func:`skeleton`), copied to the file with each
sheet's rows in its ``<sheetData>`` (:func:`with_rows`), the sheets deflated by ISA-L and the
small parts by zlib, a part given ZIP64 fields only when its size needs them
(:func:`needs_zip64`).
"""

from __future__ import annotations

import io
import itertools
import re
import zipfile
import zlib
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import date
from datetime import datetime
from decimal import Decimal
from functools import partial
from math import isfinite
from pathlib import Path
from typing import IO
from typing import Any
from typing import NamedTuple
from typing import cast

from isal import isal_zlib
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel as _to_excel
from openpyxl.writer.excel import ExcelWriter

from csat_hook.sync.outputs.cells import XLSX_CELL_MAX
from csat_hook.sync.outputs.cells import fitted_cell
from csat_hook.sync.outputs.kept_text import KeptText
from csat_hook.sync.outputs.kept_text import RowTexts

# A cell's style: its attributes as openpyxl's cell takes them (font, fill, alignment,
# number_format), in the order they are set.
Style = Mapping[str, Any]
# What a value's kind does to the style openpyxl gives it: a date and a date-time get a date
# format of their own when the style has none (openpyxl's Cell._bind_value).
_PLAIN, _DATETIME, _DATE = 0, 1, 2
_SAMPLE: dict[int, Any] = {_PLAIN: None, _DATETIME: datetime(2000, 1, 1), _DATE: date(2000, 1, 1)}
# A carriage return is written as it is, as openpyxl writes it: XML reads it back as a line
# feed (a cell's line break).
# A row's text is kept as a format (_template): its "%" doubled with the escapes.
_XML_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "%": "%%"})
_NEEDS_ESCAPE = frozenset("&<>%")
# openpyxl's own conversion to an Excel serial (its 1900 leap-year rule included).
to_excel = cast(Callable[[date], float], _to_excel)
# Characters XML 1.0 cannot hold (https://www.w3.org/TR/xml/#charsets: no C0 control but tab,
# LF and CR, no surrogate, neither U+FFFE nor U+FFFF). openpyxl's ILLEGAL_CHARACTERS_RE
# misses the last two kinds and writes them: the sheet is then not well-formed XML, which
# Excel reports as a damaged file and openpyxl itself cannot read back.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# OOXML strings (ST_Xstring, ECMA-376 Part 1 22.9.2.19) read "_xHHHH_" as the character U+HHHH,
# and Excel and LibreOffice show it so; openpyxl writes the text as it is. Its underscore is
# written "_x005F_" (as XlsxWriter does), so such text shows as typed: "my_x0041_var" showed
# as "myAvar", "_x000D_" as a line break.
OOXML_ESCAPE = re.compile("_(?=x[0-9A-Fa-f]{4}_)")


class StyleIds:
    """Each style's id in one workbook, asked of openpyxl once per style and kind of value."""

    def __init__(self, sheet: Any) -> None:
        self._sheet = sheet
        self._ids: dict[tuple[Any, int], int] = {}

    def __call__(self, style: Style | None, kind: int) -> int:
        key = (_style_key(style), kind)
        found = self._ids.get(key)
        if found is None:
            cell = WriteOnlyCell(self._sheet, value=_SAMPLE[kind])
            for name, attribute in (style or {}).items():
                setattr(cell, name, attribute)
            found = self._ids[key] = cell.style_id if cell.has_style else 0
        return found


def _style_key(style: Style | None) -> Any:
    if not style:
        return None
    # The attributes are the module's own style objects (xlsx.LOOKS) and format strings.
    return tuple(
        (name, value if isinstance(value, str) else id(value)) for name, value in style.items()
    )


def write_rows(
    out: IO[bytes],
    rows: Sequence[Sequence[Any]],
    styles: Sequence[tuple[int, Sequence[Style | None]]],
    style_ids: StyleIds,
    heights: Mapping[int, float],
    *,
    before: KeptText | None = None,
    keep: IO[bytes] | None = None,
) -> KeptText | None:
    """Write ``rows`` (0-based; row ``r`` is the sheet's row ``r + 1``) to ``out`` (a file:
    it is told where the rows begin) as the content of ``<sheetData>``, UTF-8. ``styles``:
    runs of rows that share their styles, each as the end of the run (the last of which is
    ``len(rows)``, or more) and its style per column (shorter than a row: the rest have
    none); ``heights`` the rows that are taller.

    ``before``: the rows an earlier write kept (:mod:`.kept_text`); a row held there again,
    under the same columns' attributes (the style ids a workbook gives may differ from one
    workbook to the next), is copied with its number changed instead of written anew.
    ``keep``: a file of the caller's own to keep this write's rows' text in, for the next
    one; returned with where each row's is (else None: :class:`~.kept_text.RowTexts`)."""
    texts = RowTexts(before, out, keep=keep, numbered=True)
    start = 0
    for end, row_styles in styles:
        end = min(end, len(rows))
        # A run's cells' attributes, as wide as its widest row; a taller row is written alone.
        tall = [r for r in heights if start <= r < end]
        cuts = sorted({start, end, *tall, *(r + 1 for r in tall)})
        width = max(map(len, rows[start:end]), default=0)
        columns = tuple(_column(c, s, style_ids) for c, s in enumerate(row_styles)) + tuple(
            _column(c, None, style_ids) for c in range(len(row_styles), width)
        )
        for low, high in itertools.pairwise(cuts):
            height = heights.get(low)
            texts.write(
                rows[low:high],
                low + 1,
                columns,
                partial(_template, columns=columns, height=height),
                copy=height is None,
            )
        start = end
    if start < len(rows):
        raise ValueError(f"the styles' runs end at row {start} of {len(rows)}")
    return texts.kept()


class _Column(NamedTuple):
    """A column's cells, for one run of rows' styles, by kind of value: each cell's text up to
    its value, its reference's number as ``%d`` (written as it is into each row's format)."""

    text: str  # <c r="A%d" s="…" t="inlineStr"><is><t>
    spaced: str  # the same, its <t> xml:space="preserve"
    blank: str  # an empty text's cell
    number: str  # <c r="A%d" s="…" t="n"><v>
    datetime: str
    date: str
    boolean: str
    empty: str | None  # a styled cell without a value; None: no cell


def _column(c: int, style: Style | None, style_ids: StyleIds) -> _Column:
    letter = get_column_letter(c + 1)

    def cell(kind: int, t: str) -> str:
        s = style_ids(style, kind)
        return f'<c r="{letter}%d" s="{s}" t="{t}">' if s else f'<c r="{letter}%d" t="{t}">'

    text = cell(_PLAIN, "inlineStr")
    plain = style_ids(style, _PLAIN)
    return _Column(
        text + "<is><t>",
        text + '<is><t xml:space="preserve">',
        text + "</c>",
        cell(_PLAIN, "n") + "<v>",
        cell(_DATETIME, "n") + "<v>",
        cell(_DATE, "n") + "<v>",
        cell(_PLAIN, "b") + "<v>",
        f'<c r="{letter}%d" s="{plain}" t="n"></c>' if plain else None,
    )


def _template(row: Sequence[Any], *, columns: Sequence[_Column], height: float | None) -> bytes:
    # The row's element as a format: "%d" wherever its number goes (the row's reference and
    # each cell's), every "%" of its text doubled (:class:`~.kept_text.RowTexts` numbers it).
    return _row(row, columns, height).encode("utf-8")


def _row(row: Sequence[Any], columns: Sequence[_Column], height: float | None) -> str:
    # Every row and cell with its reference, as Excel writes them: both are optional in the
    # format, but readers people script with (xlsx2csv, older ClosedXML, fastexcel and
    # calamine, creek) read a workbook without them as empty or fail on it. ``columns`` are
    # as many as the row's values, or more.
    parts = ['<row r="%d">' if height is None else f'<row r="%d" ht="{height:g}" customHeight="1">']
    append = parts.append
    for column, value in zip(columns, row, strict=False):
        kind = type(value)
        if kind is not str and kind not in _KINDS:
            kind = _kind_of(value)
            if kind in _AS_BASE:  # the value itself, not what a subclass's __str__ makes of it
                value = _AS_BASE[kind](value)
        if kind is str:
            # The usual text is storable as it is: no character XML cannot hold (none is
            # printable), short enough for any cell, nothing read as an OOXML escape.
            if value.isprintable() and len(value) <= _SHORT and "_x" not in value:
                text = value
            else:
                text = storable_text(value)
            if not text:
                append(column.blank)
                continue
            if not _NEEDS_ESCAPE.isdisjoint(text):
                text = text.translate(_XML_TEXT)
            # The text's own white space kept where it starts or ends (str.strip strips what
            # str.isspace calls white space).
            if text.strip() == text:
                append(f"{column.text}{text}</t></is></c>")
            else:
                append(f"{column.spaced}{text}</t></is></c>")
        elif value is None:
            if column.empty is not None:
                append(column.empty)
        elif kind is int or kind is float:
            if isfinite(value):
                append(f"{column.number}{value:.16g}</v></c>")
            else:
                append(f"{column.number}</v></c>")
        elif kind is datetime:
            append(f"{column.datetime}{to_excel(value):.16g}</v></c>")
        elif kind is date:
            append(f"{column.date}{to_excel(value):.16g}</v></c>")
        elif kind is bool:
            append(f"{column.boolean}{1 if value else 0}</v></c>")
    append("</row>")
    return "".join(parts)


# A text this long holds at most 32,766 UTF-16 units: within any cell (cells.fitted_cell).
_SHORT = XLSX_CELL_MAX // 2


_KINDS = frozenset((str, int, float, bool, datetime, date, type(None)))
# A subclass's value as its base type holds it, as openpyxl writes it.
_AS_BASE: dict[type, Callable[[Any], Any]] = {
    str: str.__str__,
    int: int.__int__,
    float: lambda v: float.__float__(v) if isinstance(v, float) else float(v),  # a Decimal
}


def _kind_of(value: Any) -> type:
    """The kind a value of another type is written as, as openpyxl writes it (an enum's text
    or number, a date-time subclass, a Decimal as a float), its value made that kind by the
    caller; a TypeError for anything a cell cannot hold."""
    for kind in (bool, str, int, float, datetime, date):  # bool before int
        if isinstance(value, kind):
            return kind
    if isinstance(value, Decimal):  # openpyxl's "%.16g" makes it a float first
        return float
    raise TypeError(f"a report cell holds {type(value).__name__}, which a workbook does not")


def storable_text(value: str) -> str:
    """``value`` as a cell's text can hold it: without what XML cannot hold, within the
    characters Excel's cell holds, and a text that reads as an OOXML escape escaped."""
    text = fitted_cell(NOT_XML.sub("", value), XLSX_CELL_MAX)
    if "_x" in text:  # rare: the look-up is a quarter of the substitution's cost
        text = OOXML_ESCAPE.sub("_x005F_", text)
    return text


# The deflate level of the workbook's small parts (zlib). The whole package is compressed
# again every run, and zlib's default (6) took ≈ 0.5 s of a later sync's 2.4 s for a
# 100,000-answer report's 40 MB of SpreadsheetML; level 2 takes under a third of that for a
# file about a fifth larger (docs/performance.md, the forty-sixth round).
ZIP_LEVEL = 2
# The sheets' rows, nearly all of the package, are deflated by ISA-L (python-isal) at its
# default level: 0.04 s for those 40 MB where zlib at level 2 took 0.13 s, for a file 6 %
# larger (docs/performance.md, the forty-ninth round).
SHEET_LEVEL = isal_zlib.ISAL_DEFAULT_COMPRESSION
# The empty <sheetData> openpyxl writes for a sheet without rows (with lxml or without).
_NO_ROWS = re.compile(rb"<sheetData\s*/>|<sheetData>\s*</sheetData>")
_ZLIB_COMPRESS = type(zlib.compressobj())


def skeleton(workbook: Any) -> io.BytesIO:
    """openpyxl's package of ``workbook`` (as ``Workbook.save`` writes it: the same parts,
    its modified time now), its parts stored, not deflated: :func:`with_rows` reads each
    part once to deflate it as it copies it."""
    package = io.BytesIO()
    if not workbook.worksheets:  # as Workbook.save: a workbook shows at least one sheet
        workbook.create_sheet()
    workbook.properties.modified = datetime.now(tz=UTC).replace(tzinfo=None)
    with zipfile.ZipFile(package, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        ExcelWriter(workbook, archive).save()
    return package


def with_rows(
    package: io.BytesIO, rows: dict[str, tuple[IO[bytes], int, int]], target: Path
) -> None:
    """Copy the zip ``package`` (openpyxl's workbook, its sheets without rows) to ``target``,
    each sheet named in ``rows`` (its path in the package) with those rows in its
    ``<sheetData>``: bytes ``start:end`` of a file, as ``(file, start, end)``. Every part is
    deflated: a sheet with rows by ISA-L (:data:`SHEET_LEVEL`), the rest by zlib
    (:data:`ZIP_LEVEL`). A name in ``rows`` the package lacks is a ValueError (its sheet
    would be written without its rows), and ``target`` is then left incomplete."""
    missing = set(rows)
    with (
        zipfile.ZipFile(package) as source,
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as out,
    ):
        for info in source.infolist():
            content = source.read(info)
            data = rows.get(info.filename)
            if data is None:
                out.writestr(
                    info, content, compress_type=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL
                )
                continue
            missing.discard(info.filename)
            head, tail = _NO_ROWS.split(content)  # one <sheetData> a sheet: ValueError else
            file, start, end = data
            file.seek(start)
            # Opened by name, the entry takes the archive's compression (deflate), and
            # zipfile's default date (1980-01-01), which no reader of a workbook shows.
            whole = len(head) + len(b"<sheetData></sheetData>") + end - start + len(tail)
            with out.open(info.filename, "w", force_zip64=needs_zip64(whole)) as member:
                _isal_deflated(member)
                member.write(head + b"<sheetData>")
                size = end - start
                while size:
                    chunk = file.read(min(size, 1 << 20))
                    if not chunk:
                        raise OSError(f"a sheet's rows ended {size} bytes early")
                    member.write(chunk)
                    size -= len(chunk)
                member.write(b"</sheetData>" + tail)
        if missing:
            raise ValueError(f"no part {sorted(missing)!r} in the workbook")


def needs_zip64(size: int) -> bool:
    """Whether a part of ``size`` bytes (uncompressed) needs zip's ZIP64 extension: as
    zipfile decides for a part whose size it knows (its compressed size may be a little
    larger). Only such a part has it: Microsoft Office refuses or repairs a package whose
    small parts carry ZIP64 fields (minizip-ng #894, kuba--/zip #384), and zipfile, told
    to use them for a part, writes them in its local header only, not in the central
    directory (CPython #152486); until the forty-ninth round every sheet was written so."""
    return size * 1.05 > zipfile.ZIP64_LIMIT


def _isal_deflated(member: IO[bytes]) -> None:
    """``member`` (a zip entry opened for writing, nothing written yet) deflated by ISA-L.

    zipfile takes no compressor of the caller's, so its writer's own (``_compressor``, a
    zlib compressor, so named since Python 3.6 and in 3.14 still) is replaced by ISA-L's,
    which takes the same calls (``compress``, ``flush``) and writes the same raw deflate
    format; zipfile still counts the sizes and the CRC-32 of what is written. Where a
    Python names it otherwise, the entry stays deflated by zlib
    (tests/sync/test_xlsx_cells.py fails on that)."""
    if isinstance(getattr(member, "_compressor", None), _ZLIB_COMPRESS):
        member._compressor = isal_zlib.compressobj(  # type: ignore[attr-defined]
            SHEET_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS
        )
