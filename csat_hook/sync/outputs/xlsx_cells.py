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
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import date
from datetime import datetime
from math import isfinite
from typing import IO
from typing import Any
from typing import cast

from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel as _to_excel

from csat_hook.sync.outputs.cells import XLSX_CELL_MAX
from csat_hook.sync.outputs.cells import fitted_cell

# A cell's style: its attributes as openpyxl's cell takes them (font, fill, alignment,
# number_format), in the order they are set.
Style = Mapping[str, Any]
# What a value's kind does to the style openpyxl gives it: a date and a date-time get a date
# format of their own when the style has none (openpyxl's Cell._bind_value).
_PLAIN, _DATETIME, _DATE = 0, 1, 2
_SAMPLE: dict[int, Any] = {_PLAIN: None, _DATETIME: datetime(2000, 1, 1), _DATE: date(2000, 1, 1)}
# A carriage return is written as it is, as openpyxl writes it: XML reads it back as a line
# feed (a cell's line break).
_XML_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_NEEDS_ESCAPE = frozenset("&<>")
_ROWS_PER_WRITE = 512
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
    rows: Iterable[Sequence[Any]],
    styles: Callable[[int], Sequence[Style | None]],
    style_ids: StyleIds,
    heights: Mapping[int, float],
) -> None:
    """Write ``rows`` (0-based; row ``r`` is the sheet's row ``r + 1``) to ``out`` as the
    content of ``<sheetData>``, UTF-8. ``styles(r)`` gives row ``r``'s style per column
    (shorter than the row: the rest have none; the same sequence object for rows that share
    their styles, which is what makes it cheap); ``heights`` the rows that are taller."""
    letters: list[str] = []
    batch: list[str] = []
    last_styles: Sequence[Style | None] | None = None
    ids: list[tuple[int, int, int]] = []
    unstyled = (style_ids(None, _PLAIN), style_ids(None, _DATETIME), style_ids(None, _DATE))
    for r, row in enumerate(rows):
        row_styles = styles(r)
        if row_styles is not last_styles:
            last_styles = row_styles
            ids = [
                (style_ids(s, _PLAIN), style_ids(s, _DATETIME), style_ids(s, _DATE))
                for s in row_styles
            ]
        while len(letters) < len(row):
            letters.append(get_column_letter(len(letters) + 1))
        while len(ids) < len(row):
            ids.append(unstyled)
        batch.append(_row(str(r + 1), row, ids, letters, heights.get(r)))
        if len(batch) >= _ROWS_PER_WRITE:
            out.write("".join(batch).encode("utf-8"))
            batch.clear()
    if batch:
        out.write("".join(batch).encode("utf-8"))


def _row(
    n: str,
    row: Sequence[Any],
    ids: Sequence[tuple[int, int, int]],
    letters: Sequence[str],
    height: float | None,
) -> str:
    parts = [
        f'<row r="{n}">' if height is None else f'<row r="{n}" ht="{height:g}" customHeight="1">'
    ]
    append = parts.append
    for c, value in enumerate(row):
        kind = type(value)
        if kind is str:
            append(_text_cell(letters[c] + n, ids[c][_PLAIN], storable_text(value)))
        elif value is None:
            if ids[c][_PLAIN]:
                append(f'<c r="{letters[c]}{n}" s="{ids[c][_PLAIN]}" t="n"></c>')
        elif kind is int or kind is float:
            append(_number_cell(letters[c] + n, ids[c][_PLAIN], value))
        elif kind is datetime:
            append(_number_cell(letters[c] + n, ids[c][_DATETIME], to_excel(value)))
        elif kind is date:
            append(_number_cell(letters[c] + n, ids[c][_DATE], to_excel(value)))
        elif kind is bool:
            s = ids[c][_PLAIN]
            s_attr = f' s="{s}"' if s else ""
            append(f'<c r="{letters[c]}{n}"{s_attr} t="b"><v>{int(value)}</v></c>')
        else:
            raise TypeError(f"a report cell holds {kind.__name__}, which a workbook does not")
    append("</row>")
    return "".join(parts)


def storable_text(value: str) -> str:
    """``value`` as a cell's text can hold it: without what XML cannot hold, within the
    characters Excel's cell holds, and a text that reads as an OOXML escape escaped."""
    text = fitted_cell(NOT_XML.sub("", value), XLSX_CELL_MAX)
    if "_x" in text:  # rare: the look-up is a quarter of the substitution's cost
        text = OOXML_ESCAPE.sub("_x005F_", text)
    return text


def _text_cell(ref: str, s: int, text: str) -> str:
    s_attr = f' s="{s}"' if s else ""
    if not text:
        return f'<c r="{ref}"{s_attr} t="inlineStr"></c>'
    space = ' xml:space="preserve"' if text != text.strip() else ""
    if not _NEEDS_ESCAPE.isdisjoint(text):
        text = text.translate(_XML_TEXT)
    return f'<c r="{ref}"{s_attr} t="inlineStr"><is><t{space}>{text}</t></is></c>'


def _number_cell(ref: str, s: int, value: float) -> str:
    s_attr = f' s="{s}"' if s else ""
    shown = f"{value:.16g}" if isfinite(value) else ""
    return f'<c r="{ref}"{s_attr} t="n"><v>{shown}</v></c>'
