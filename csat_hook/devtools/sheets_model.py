"""In-memory spreadsheets that behave like the Sheets API v4 where the sync relies on it.

The state behind :mod:`csat_hook.devtools.fake_google`: A1 ranges, typed cells, render options
(UNFORMATTED_VALUE / FORMATTED_VALUE / FORMULA, SERIAL_NUMBER / FORMATTED_STRING; a number a
person formatted, :class:`ShownNumber`), RAW versus
USER_ENTERED input, grid limits, 50,000 characters a cell, 10,000,000 cells a spreadsheet (every
tab's grid counted), and ``spreadsheets.batchUpdate`` requests, with the real error texts (see
docs/sync.md and the shapes recorded in gspread's cassettes). Not a product path.

Every ``batchUpdate`` body is first checked against Google's discovery document
(:mod:`.discovery`), then applied atomically: tabs (add, delete, properties with frozen rows
and columns), cell formats (``repeatCell``: kept as the list of format operations in order,
a whole-tab reset clears it; :meth:`Tab.format_at` resolves one cell), column widths and row
heights, conditional format rules (add at an index, delete by index), charts (add with an id,
update the spec, move, delete) and developer metadata (create on the spreadsheet or on a sheet,
update and delete by key or id). The metadata honours a ``fields`` mask (checked against the
``Spreadsheet`` schema) as Google does; with ``ranges`` it holds the sheets they are on and
each range's ``GridData`` (:meth:`Tab.grid_data`: values and data validation rules, which a
person puts on cells, :meth:`csat_hook.devtools.fake_google.FakeGoogle.set_validation`, and
which stay on their cell whatever values are written).

Developer metadata as the reference describes it (spreadsheets.developerMetadata): ids are
spreadsheet-scoped and positive, given or assigned; a sheet's metadata is listed under its
``sheets[].developerMetadata`` (the spreadsheet's own under ``developerMetadata``) with
``location`` ``{"locationType": "SHEET", "sheetId": ...}``, and "if the associated object is
deleted then its metadata is deleted too". A lookup selects the metadata matching all the
fields it names (``metadataId``, ``metadataKey``; the emulator refuses the others).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from csat_hook.devtools import discovery

SERIAL_EPOCH = datetime(1899, 12, 30)
CELL_MAX = 50_000  # characters a cell holds
CELLS_MAX = 10_000_000  # cells a spreadsheet holds, every tab's grid counted
_CELL = re.compile(r"^([A-Za-z]*)(\d*)$")


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class SheetsApiError(Exception):
    """An error answer: HTTP status plus Google's ``{"error": {...}}`` body."""

    def __init__(self, status: int, message: str, reason: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"code": status, "message": message, "status": reason}}


@dataclass(frozen=True)
class Formula:
    """A cell entered as ``=...`` with USER_ENTERED (never evaluated here)."""

    text: str


@dataclass(frozen=True)
class DateTimeCell:
    """A date-time cell: a serial number (days since 1899-12-30) in the sheet's time zone."""

    serial: float


@dataclass(frozen=True)
class ShownNumber:
    """A number under a number format a person gave it: typed "50%" (0.5 shown "50%"),
    "1,5" in a German sheet, "007" under a "000" format. UNFORMATTED_VALUE reads the number,
    FORMATTED_VALUE the text; the fake does not compute number formats, so it is given."""

    value: int | float
    shown: str


@dataclass(frozen=True)
class FormatOp:
    """One ``repeatCell``: the cells (ends exclusive, None open), the format, the mask paths."""

    row0: int
    row1: int | None
    col0: int
    col1: int | None
    cell_format: dict[str, Any]
    paths: tuple[str, ...]

    def covers(self, row: int, col: int) -> bool:
        return (
            self.row0 <= row
            and (self.row1 is None or row < self.row1)
            and self.col0 <= col
            and (self.col1 is None or col < self.col1)
        )


@dataclass
class Tab:
    sheet_id: int
    title: str
    index: int
    rows: int = 1000
    cols: int = 26
    frozen_rows: int = 0
    frozen_cols: int = 0
    cells: list[list[Any]] = field(default_factory=list)
    formats: list[FormatOp] = field(default_factory=list)
    widths: dict[int, int] = field(default_factory=dict)  # column → pixels
    heights: dict[int, int] = field(default_factory=dict)  # row → pixels
    rules: list[dict[str, Any]] = field(default_factory=list)  # conditional, in priority order
    charts: dict[int, dict[str, Any]] = field(default_factory=dict)  # chartId → chart
    developer_metadata: list[dict[str, Any]] = field(default_factory=list)  # on the sheet
    # Data validation rules (``DataValidationRule``) by (row, column): a property of the grid
    # cell, as in Sheets, which a value write leaves where it is.
    validations: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)

    def properties(self) -> dict[str, Any]:
        grid: dict[str, Any] = {"rowCount": self.rows, "columnCount": self.cols}
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        if self.frozen_cols:
            grid["frozenColumnCount"] = self.frozen_cols
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": self.index,
            "sheetType": "GRID",
            "gridProperties": grid,
        }

    def sheet(self) -> dict[str, Any]:
        """The tab as ``spreadsheets.get`` returns it (without grid data)."""
        found: dict[str, Any] = {"properties": self.properties()}
        if self.charts:
            found["charts"] = [copy.deepcopy(c) for c in self.charts.values()]
        if self.rules:
            found["conditionalFormats"] = copy.deepcopy(self.rules)
        if self.developer_metadata:
            found["developerMetadata"] = copy.deepcopy(self.developer_metadata)
        return found

    def get(self, row: int, col: int) -> Any:
        if row < len(self.cells) and col < len(self.cells[row]):
            return self.cells[row][col]
        return None

    def put(self, row: int, col: int, value: Any) -> None:
        while len(self.cells) <= row:
            self.cells.append([])
        line = self.cells[row]
        if len(line) <= col:
            line.extend([None] * (col + 1 - len(line)))
        line[col] = value

    def format_at(self, row: int, col: int) -> dict[str, Any]:
        """The cell's ``userEnteredFormat`` after every format operation (later ones win)."""
        result: dict[str, Any] = {}
        for op in self.formats:
            if op.covers(row, col):
                for path in op.paths:
                    _copy_path(op.cell_format, result, path.split("."))
        return result

    def grid_data(self, sheet: Spreadsheet, box: Box) -> dict[str, Any]:
        """The ``GridData`` of ``box`` as ``spreadsheets.get`` returns it with grid data: rows
        up to the last one holding a value or a rule, each row's cells up to its last such
        one, a cell without either ``{}``."""
        rows, cols = box.bounded()
        held = [
            (r, c) for r, line in enumerate(self.cells) for c, v in enumerate(line) if v is not None
        ]
        held += list(self.validations)
        inside = [(r, c) for r, c in held if box.row0 <= r < rows and box.col0 <= c < cols]
        last_row = max((r for r, _ in inside), default=box.row0 - 1)
        row_data: list[dict[str, Any]] = []
        for r in range(box.row0, last_row + 1):
            last_col = max((c for rr, c in inside if rr == r), default=box.col0 - 1)
            values = [self.cell_data(sheet, r, c) for c in range(box.col0, last_col + 1)]
            row_data.append({"values": values} if values else {})
        return {"startRow": box.row0, "startColumn": box.col0, "rowData": row_data}

    def cell_data(self, sheet: Spreadsheet, row: int, col: int) -> dict[str, Any]:
        """One cell's ``CellData``: its values (user-entered, effective, formatted) and its
        data validation rule."""
        found: dict[str, Any] = {}
        value = self.get(row, col)
        if value is not None:
            shown = render(sheet, value, "FORMATTED_VALUE", "FORMATTED_STRING")
            if isinstance(value, Formula):
                found["userEnteredValue"] = {"formulaValue": value.text}
                found["effectiveValue"] = {"stringValue": shown}
            else:
                plain = render(sheet, value, "UNFORMATTED_VALUE", "SERIAL_NUMBER")
                if isinstance(plain, bool):
                    extended: dict[str, Any] = {"boolValue": plain}
                elif isinstance(plain, int | float):
                    extended = {"numberValue": plain}
                else:
                    extended = {"stringValue": str(plain)}
                found["userEnteredValue"] = extended
                found["effectiveValue"] = dict(extended)
            found["formattedValue"] = shown
        rule = self.validations.get((row, col))
        if rule is not None:
            found["dataValidation"] = copy.deepcopy(rule)
        return found

    def state(self) -> dict[str, Any]:
        """Everything the tab holds, comparable between runs."""
        validations = (
            {"validations": {f"{r},{c}": v for (r, c), v in sorted(self.validations.items())}}
            if self.validations
            else {}
        )
        return {
            **self.sheet(),
            **validations,
            "cells": copy.deepcopy(self.cells),
            "formats": [
                (op.row0, op.row1, op.col0, op.col1, json.dumps(op.cell_format), op.paths)
                for op in self.formats
            ],
            "widths": dict(self.widths),
            "heights": dict(self.heights),
        }


def _copy_path(source: dict[str, Any], target: dict[str, Any], path: list[str]) -> None:
    """Set ``path`` in ``target`` as it is in ``source`` (absent there: cleared)."""
    name = path[0]
    if len(path) == 1:
        if name in source:
            target[name] = copy.deepcopy(source[name])
        else:
            target.pop(name, None)
        return
    inner = source.get(name)
    holder = target.setdefault(name, {})
    _copy_path(inner if isinstance(inner, dict) else {}, holder, path[1:])


@dataclass
class Spreadsheet:
    spreadsheet_id: str
    title: str = "Untitled spreadsheet"
    locale: str = "en_US"
    time_zone: str = "Etc/GMT"
    tabs: list[Tab] = field(default_factory=list)
    next_sheet_id: int = 1_000_000
    developer_metadata: list[dict[str, Any]] = field(default_factory=list)
    next_metadata_id: int = 1
    office_file: bool = False  # an Excel file in Drive: every Sheets call is refused

    def metadata(
        self,
        fields: str | None = None,
        ranges: list[str] | None = None,
        grid_data: bool = False,
    ) -> dict[str, Any]:
        """``spreadsheets.get``; ``fields`` reduces it as a partial response (a mask naming a
        field the schema does not have is refused, as Google does). With ``ranges``, the
        sheets those ranges are on, each with the ``GridData`` of its ranges (``data``) when
        ``grid_data`` is asked for or the mask names it (Google ignores ``includeGridData``
        when a mask is given)."""
        sheets = [tab.sheet() for tab in sorted(self.tabs, key=lambda t: t.index)]
        if ranges:
            boxes = [parse_range(self, r) for r in ranges]
            for text, box in zip(ranges, boxes, strict=True):
                if box.row0 >= box.tab.rows or box.col0 >= box.tab.cols:
                    cells = text.rpartition("!")[2]
                    raise SheetsApiError(
                        400,
                        f"Range ({quote_title(box.tab.title)}!{cells}) exceeds grid limits. "
                        f"Max rows: {box.tab.rows}, max columns: {box.tab.cols}",
                    )
            sheets = []
            for tab in sorted(
                {b.tab.sheet_id: b.tab for b in boxes}.values(), key=lambda t: t.index
            ):
                found_sheet = tab.sheet()
                if grid_data or fields is not None:
                    found_sheet["data"] = [tab.grid_data(self, b) for b in boxes if b.tab is tab]
                sheets.append(found_sheet)
        found: dict[str, Any] = {
            "spreadsheetId": self.spreadsheet_id,
            "properties": {
                "title": self.title,
                "locale": self.locale,
                "autoRecalc": "ON_CHANGE",
                "timeZone": self.time_zone,
            },
            "sheets": sheets,
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit",
        }
        if self.developer_metadata:
            found["developerMetadata"] = copy.deepcopy(self.developer_metadata)
        if fields is None:
            return found
        problems = discovery.check_mask(fields, "Spreadsheet", "fields")
        if problems:
            raise SheetsApiError(400, "Invalid field selection: " + problems[0])
        return dict(discovery.select(found, fields))

    def state(self) -> dict[str, Any]:
        """Everything the spreadsheet holds (tabs, cells, looks, metadata), comparable."""
        return {
            "tabs": [tab.state() for tab in sorted(self.tabs, key=lambda t: t.index)],
            "developerMetadata": copy.deepcopy(self.developer_metadata),
        }

    def tab_by_title(self, title: str) -> Tab | None:
        return next((t for t in self.tabs if t.title.casefold() == title.casefold()), None)

    def tab_by_id(self, sheet_id: int) -> Tab | None:
        return next((t for t in self.tabs if t.sheet_id == sheet_id), None)

    def all_metadata(self) -> list[list[dict[str, Any]]]:
        """Every list of developer metadata: the spreadsheet's, then each sheet's."""
        return [self.developer_metadata, *(t.developer_metadata for t in self.tabs)]

    # --- date-times ---------------------------------------------------------------------

    def serial(self, when: datetime) -> float:
        """The serial a Forms timestamp gets in this spreadsheet's time zone."""
        local = when.astimezone(ZoneInfo(self.time_zone)).replace(tzinfo=None)
        return (local - SERIAL_EPOCH) / timedelta(days=1)

    def cell_value(self, value: Any) -> Any:
        """A Python value as a stored cell (datetimes become date-time serials)."""
        if isinstance(value, datetime):
            return DateTimeCell(self.serial(value))
        return None if value == "" else value


# --- A1 notation -------------------------------------------------------------------------------


def column_index(letters: str) -> int:
    number = 0
    for char in letters.upper():
        number = number * 26 + (ord(char) - 64)
    return number - 1


def column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def quote_title(title: str) -> str:
    """How the API echoes a tab title in a range: quoted unless a plain identifier."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", title) and not re.fullmatch(
        r"[A-Za-z]{1,3}\d+", title
    )
    return title if plain else "'" + title.replace("'", "''") + "'"


@dataclass(frozen=True)
class Box:
    """A resolved range on one tab; ends are exclusive, None means open-ended."""

    tab: Tab
    row0: int
    col0: int
    row1: int | None
    col1: int | None
    single: bool = False

    def bounded(self) -> tuple[int, int]:
        return (
            self.tab.rows if self.row1 is None else min(self.row1, self.tab.rows),
            self.tab.cols if self.col1 is None else min(self.col1, self.tab.cols),
        )

    def a1(self) -> str:
        rows, cols = self.bounded()
        start = f"{column_letters(self.col0)}{self.row0 + 1}"
        end = f"{column_letters(max(cols - 1, self.col0))}{max(rows, self.row0 + 1)}"
        return f"{quote_title(self.tab.title)}!{start}" + ("" if self.single else f":{end}")


def _split_title(text: str) -> tuple[str | None, str]:
    if text.startswith("'"):
        i, title = 1, ""
        while i < len(text):
            if text[i] == "'" and text[i + 1 : i + 2] == "'":
                title, i = title + "'", i + 2
            elif text[i] == "'":
                rest = text[i + 1 :]
                if rest and not rest.startswith("!"):  # 'Sheet1'A1: no "!" after the title
                    raise SheetsApiError(400, f"Unable to parse range: {text}")
                return title, rest[1:]
            else:
                title, i = title + text[i], i + 1
        raise SheetsApiError(400, f"Unable to parse range: {text}")
    if "!" in text:
        title, _, rest = text.rpartition("!")
        return title, rest
    return None, text


def parse_range(sheet: Spreadsheet, text: str) -> Box:
    """Resolve ``'Title'!A1:C``, ``Title``, ``A1:B2`` (first tab) and friends."""
    title, cells = _split_title(text.strip())
    if title is None and sheet.tab_by_title(cells):
        title, cells = cells, ""
    tab = (
        sheet.tab_by_title(title)
        if title is not None
        else (min(sheet.tabs, key=lambda t: t.index) if sheet.tabs else None)
    )
    if tab is None:
        raise SheetsApiError(400, f"Unable to parse range: {text}")
    if not cells:
        return Box(tab, 0, 0, None, None)
    start, _, end = cells.partition(":")
    c0, r0 = _corner(start, text)
    if not end:
        if c0 is None or r0 is None:
            raise SheetsApiError(400, f"Unable to parse range: {text}")
        return Box(tab, r0, c0, r0 + 1, c0 + 1, single=True)
    c1, r1 = _corner(end, text)
    return Box(
        tab, r0 or 0, c0 or 0, None if r1 is None else r1 + 1, None if c1 is None else c1 + 1
    )


def _corner(text: str, whole: str) -> tuple[int | None, int | None]:
    match = _CELL.match(text)
    if not match or not (match.group(1) or match.group(2)):
        raise SheetsApiError(400, f"Unable to parse range: {whole}")
    letters, digits = match.groups()
    return (column_index(letters) if letters else None, int(digits) - 1 if digits else None)


# --- reading -----------------------------------------------------------------------------------


def render(sheet: Spreadsheet, value: Any, value_option: str, date_option: str) -> Any:
    """One cell as the API returns it for these render options."""
    if value is None:
        return ""
    if isinstance(value, Formula):
        return value.text if value_option == "FORMULA" else "#NAME?"
    if isinstance(value, DateTimeCell):
        if value_option == "FORMATTED_VALUE" or date_option == "FORMATTED_STRING":
            return _format_datetime(sheet, value.serial)
        return value.serial
    if isinstance(value, ShownNumber):
        return value.shown if value_option == "FORMATTED_VALUE" else value.value
    if value_option != "FORMATTED_VALUE":
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        text = f"{value:g}" if isinstance(value, float) else str(value)
        return text.replace(".", ",") if sheet.locale.startswith("ru") else text
    return str(value)


def _format_datetime(sheet: Spreadsheet, serial: float) -> str:
    moment = SERIAL_EPOCH + timedelta(days=serial)
    moment = moment.replace(microsecond=0) + timedelta(seconds=round(moment.microsecond / 1e6))
    if sheet.locale.startswith("ru"):
        return moment.strftime("%d.%m.%Y %H:%M:%S")
    return f"{moment.month}/{moment.day}/{moment.year} {moment.hour}:{moment:%M:%S}"


def read(
    sheet: Spreadsheet,
    range_text: str,
    value_option: str = "FORMATTED_VALUE",
    date_option: str = "SERIAL_NUMBER",
) -> dict[str, Any]:
    """A ValueRange: full-grid ``range`` echo, trailing blanks trimmed, no ``values`` if empty."""
    box = parse_range(sheet, range_text)
    rows, cols = box.bounded()
    values: list[list[Any]] = []
    for r in range(box.row0, min(rows, len(box.tab.cells))):
        line = [
            render(sheet, box.tab.get(r, c), value_option, date_option)
            for c in range(box.col0, min(cols, len(box.tab.cells[r])))
        ]
        while line and line[-1] == "":
            line.pop()
        values.append(line)
    while values and not values[-1]:
        values.pop()
    result: dict[str, Any] = {"range": box.a1(), "majorDimension": "ROWS"}
    if values:
        result["values"] = values
    return result


# --- writing -----------------------------------------------------------------------------------


def parse_user_entered(value: Any) -> Any:
    """What typing ``value`` into a cell gives (USER_ENTERED): formulas, numbers, booleans."""
    if not isinstance(value, str):
        return value
    if value.startswith("'"):
        return value[1:]
    if value.startswith("=") and len(value) > 1:
        return Formula(value)
    if value.upper() in ("TRUE", "FALSE"):
        return value.upper() == "TRUE"
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value else number


def write(
    sheet: Spreadsheet, range_text: str, values: list[list[Any]], input_option: str
) -> dict[str, Any]:
    """Write rows at a range; validates everything before changing anything."""
    if input_option not in ("RAW", "USER_ENTERED"):
        raise SheetsApiError(400, "Invalid valueInputOption: " + repr(input_option))
    box = parse_range(sheet, range_text)
    height = len(values)
    width = max((len(row) for row in values), default=0)
    if not box.single and box.row1 is not None and box.row0 + height > box.row1:
        raise SheetsApiError(
            400,
            f"Requested writing within range [{range_text}], but tried "
            f"writing to row [{box.row0 + height}]",
        )
    if not box.single and box.col1 is not None and box.col0 + width > box.col1:
        raise SheetsApiError(
            400,
            f"Requested writing within range [{range_text}], but tried "
            f"writing to column [{column_letters(box.col0 + width - 1)}]",
        )
    if box.row0 + height > box.tab.rows or box.col0 + width > box.tab.cols:
        bad = f"{column_letters(box.col0 + width - 1)}{box.row0 + height}"
        raise SheetsApiError(
            400,
            f"Range ({quote_title(box.tab.title)}!{bad}) exceeds grid "
            f"limits. Max rows: {box.tab.rows}, max columns: {box.tab.cols}",
        )
    for value in (v for row in values for v in row):
        if isinstance(value, dict | list) or (isinstance(value, float) and value != value):
            raise SheetsApiError(400, "Invalid values: cells must be strings, numbers or bools")
        # Google's limit, in its own words; counted in UTF-16 code units, the stricter
        # reading of "characters" (its backend's strings are UTF-16).
        if isinstance(value, str) and len(value) > CELL_MAX // 2 and utf16_units(value) > CELL_MAX:
            raise SheetsApiError(
                400,
                f"Your input contains more than the maximum of {CELL_MAX} characters in a "
                "single cell.",
            )
    return {"box": box, "values": values, "input": input_option, "height": height, "width": width}


def apply_write(sheet: Spreadsheet, plan: dict[str, Any]) -> dict[str, Any]:
    box: Box = plan["box"]
    raw = plan["input"] == "RAW"
    cells = 0
    grid = box.tab.cells
    for r, row in enumerate(plan["values"]):
        target = box.row0 + r
        while len(grid) <= target:
            grid.append([])
        line = grid[target]
        end = box.col0 + len(row)
        if len(line) < end:
            line.extend([None] * (end - len(line)))
        for c, value in enumerate(row):
            if value is None:  # null leaves the cell as it is
                continue
            stored = value if raw else parse_user_entered(value)
            line[box.col0 + c] = None if stored == "" else stored
            cells += 1
    last_col = column_letters(box.col0 + max(plan["width"], 1) - 1)
    end_a1 = f"{last_col}{box.row0 + max(plan['height'], 1)}"
    return {
        "spreadsheetId": sheet.spreadsheet_id,
        "updatedRange": f"{quote_title(box.tab.title)}!{column_letters(box.col0)}"
        f"{box.row0 + 1}:{end_a1}",
        "updatedRows": plan["height"],
        "updatedColumns": plan["width"],
        "updatedCells": cells,
    }


def clear(sheet: Spreadsheet, range_text: str) -> str:
    box = parse_range(sheet, range_text)
    rows, cols = box.bounded()
    for r in range(box.row0, min(rows, len(box.tab.cells))):
        line = box.tab.cells[r]
        for c in range(box.col0, min(cols, len(line))):
            line[c] = None
    return box.a1()


# --- spreadsheets.batchUpdate ------------------------------------------------------------------


def batch_update(sheet: Spreadsheet, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check the body against the discovery document, then apply the requests atomically:
    on any error nothing changes.

    The requests run on shallow copies of the tabs (cells shared, never mutated in place:
    a shrink builds new lists; formats, rules, charts and sizes copied), so a large responses
    tab is not copied for nothing.
    """
    problems = discovery.validate({"requests": requests}, "BatchUpdateSpreadsheetRequest")
    if problems:
        raise SheetsApiError(400, "Invalid JSON payload received. " + "; ".join(problems[:5]))
    work = copy.copy(sheet)
    work.tabs = []
    for tab in sheet.tabs:
        twin = copy.copy(tab)
        twin.formats, twin.rules = list(tab.formats), list(tab.rules)
        twin.charts, twin.widths, twin.heights = (
            dict(tab.charts),
            dict(tab.widths),
            dict(tab.heights),
        )
        twin.developer_metadata = copy.deepcopy(tab.developer_metadata)
        work.tabs.append(twin)
    work.developer_metadata = copy.deepcopy(sheet.developer_metadata)
    replies = []
    cells = sum(t.rows * t.cols for t in work.tabs)
    for i, request in enumerate(requests):
        kind, spec = next(iter(request.items()))
        handler = _HANDLERS.get(kind)
        if handler is None:
            raise SheetsApiError(400, f"Invalid requests[{i}]: unsupported kind {kind}")
        replies.append(handler(work, spec, f"requests[{i}].{kind}"))
        if kind in _SIZING:
            # Google checks its cell limit after each request that changes a grid (its error
            # names the request), not once for the batch: cells a later request frees in
            # the same batch do not make room for an earlier one.
            before, cells = cells, sum(t.rows * t.cols for t in work.tabs)
            if cells > CELLS_MAX and cells > before:
                raise SheetsApiError(
                    400,
                    f"Invalid requests[{i}].{kind}: This action would increase the number of "
                    f"cells in the workbook above the limit of {CELLS_MAX} cells.",
                )
    sheet.tabs, sheet.next_sheet_id = work.tabs, work.next_sheet_id
    sheet.developer_metadata, sheet.next_metadata_id = (
        work.developer_metadata,
        work.next_metadata_id,
    )
    return replies


def _add_sheet(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    props = spec.get("properties", {})
    title = props.get("title") or f"Sheet{len(sheet.tabs) + 1}"
    _check_title(sheet, title, where, None)
    sheet_id = props.get("sheetId")
    if sheet_id is None:
        sheet_id = sheet.next_sheet_id
        sheet.next_sheet_id += 7919
    elif sheet.tab_by_id(sheet_id):
        raise SheetsApiError(
            400, f"Invalid {where}: A sheet with the id {sheet_id} already exists."
        )
    grid = props.get("gridProperties", {})
    index = props.get("index", len(sheet.tabs))
    for tab in sheet.tabs:
        if tab.index >= index:
            tab.index += 1
    tab = Tab(
        sheet_id=sheet_id,
        title=title,
        index=index,
        rows=grid.get("rowCount", 1000),
        cols=grid.get("columnCount", 26),
        frozen_rows=grid.get("frozenRowCount", 0),
        frozen_cols=grid.get("frozenColumnCount", 0),
    )
    sheet.tabs.append(tab)
    return {"addSheet": {"properties": tab.properties()}}


def _delete_sheet(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    tab = sheet.tab_by_id(spec.get("sheetId", -1))
    if tab is None:
        raise SheetsApiError(400, f"Invalid {where}: No sheet with id: {spec.get('sheetId')}")
    if len(sheet.tabs) == 1:
        raise SheetsApiError(
            400, f"Invalid {where}: You can't remove all the sheets in a document."
        )
    sheet.tabs.remove(tab)
    for other in sheet.tabs:
        if other.index > tab.index:
            other.index -= 1
    return {}


def _update_properties(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    props = spec.get("properties", {})
    tab = sheet.tab_by_id(props.get("sheetId", -1))
    if tab is None:
        raise SheetsApiError(400, f"Invalid {where}: No grid with id: {props.get('sheetId')}")
    fields = _field_paths(spec.get("fields", ""))
    if not fields:
        raise SheetsApiError(400, f"Invalid {where}: fields is required")
    grid = props.get("gridProperties", {})
    for path in fields:
        if path == "title":
            _check_title(sheet, props.get("title", ""), where, tab)
            tab.title = props["title"]
        elif path == "gridProperties.rowCount":
            tab.rows = int(grid["rowCount"])
            if len(tab.cells) > tab.rows:
                tab.cells = tab.cells[: tab.rows]
        elif path == "gridProperties.columnCount":
            tab.cols = int(grid["columnCount"])
            if any(len(line) > tab.cols for line in tab.cells):
                tab.cells = [line[: tab.cols] for line in tab.cells]
        elif path == "gridProperties.frozenRowCount":
            tab.frozen_rows = int(grid.get("frozenRowCount", 0))
        elif path == "gridProperties.frozenColumnCount":
            tab.frozen_cols = int(grid.get("frozenColumnCount", 0))
        elif path != "index":
            raise SheetsApiError(400, f"Invalid {where}: unsupported field {path}")
    if tab.frozen_rows >= tab.rows:
        raise SheetsApiError(
            400, f"Invalid {where}: You can't freeze all visible rows on the sheet."
        )
    if tab.frozen_cols >= tab.cols:
        raise SheetsApiError(
            400, f"Invalid {where}: You can't freeze all visible columns on the sheet."
        )
    return {}


def _field_paths(mask: str) -> list[str]:
    """``title,gridProperties(rowCount,columnCount)``, ``gridProperties/rowCount`` → dotted
    paths (sub-selections nest)."""
    paths: list[str] = []
    for item in discovery.split_top(mask):
        head, sub = discovery.parse_item(item)
        prefix = ".".join(head)
        if sub:
            paths.extend(f"{prefix}.{inner}" for inner in _field_paths(sub))
        else:
            paths.append(prefix)
    return paths


def _check_title(sheet: Spreadsheet, title: str, where: str, own: Tab | None) -> None:
    if not title or len(title) > 100:
        raise SheetsApiError(400, f"Invalid {where}: invalid sheet name")
    clash = sheet.tab_by_title(title)
    if clash is not None and clash is not own:
        raise SheetsApiError(
            400,
            f'Invalid {where}: A sheet with the name "{title}" already '
            "exists. Please enter another name.",
        )


def _grid_range(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> tuple[Tab, FormatOp]:
    """A GridRange as a tab and its (open-ended where unset) bounds, checked against the
    grid (an empty op: only the bounds are used)."""
    tab = sheet.tab_by_id(spec.get("sheetId", 0))
    if tab is None:
        raise SheetsApiError(400, f"Invalid {where}: No grid with id: {spec.get('sheetId', 0)}")
    row0, col0 = spec.get("startRowIndex", 0), spec.get("startColumnIndex", 0)
    row1, col1 = spec.get("endRowIndex"), spec.get("endColumnIndex")
    if (row1 is not None and (row1 > tab.rows or row1 < row0)) or (
        col1 is not None and (col1 > tab.cols or col1 < col0)
    ):
        raise SheetsApiError(
            400,
            f"Invalid {where}: Range ({quote_title(tab.title)}!R{row0 + 1}C{col0 + 1}:"
            f"R{row1}C{col1}) exceeds grid limits. Max rows: {tab.rows}, max columns: {tab.cols}",
        )
    return tab, FormatOp(row0, row1, col0, col1, {}, ())


def _repeat_cell(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    tab, bounds = _grid_range(sheet, spec.get("range", {}), where)
    paths = _field_paths(spec["fields"])
    if any(p != "userEnteredFormat" and not p.startswith("userEnteredFormat.") for p in paths):
        raise SheetsApiError(400, f"Invalid {where}: the emulator only repeats formats")
    cell_format = spec.get("cell", {}).get("userEnteredFormat", {})
    whole = bounds.row0 == bounds.col0 == 0 and bounds.row1 is None and bounds.col1 is None
    if whole and paths == ["userEnteredFormat"] and not cell_format:
        tab.formats = []  # a reset of the whole tab: nothing before it shows any more
        return {}
    inner = tuple(p.removeprefix("userEnteredFormat").lstrip(".") for p in paths)
    if "" in inner:  # the whole format: every field it has, the others cleared
        inner = tuple(sorted({*cell_format, *_FORMAT_FIELDS}))
    op = FormatOp(bounds.row0, bounds.row1, bounds.col0, bounds.col1, cell_format, inner)
    tab.formats = [*tab.formats, op]
    return {}


_FORMAT_FIELDS = (
    "numberFormat",
    "backgroundColor",
    "backgroundColorStyle",
    "borders",
    "padding",
    "horizontalAlignment",
    "verticalAlignment",
    "wrapStrategy",
    "textDirection",
    "textFormat",
    "hyperlinkDisplayType",
    "textRotation",
)


def _update_dimension(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    target = spec.get("range", {})
    tab = sheet.tab_by_id(target.get("sheetId", 0))
    if tab is None:
        raise SheetsApiError(400, f"Invalid {where}: No grid with id: {target.get('sheetId', 0)}")
    columns = target.get("dimension") == "COLUMNS"
    limit = tab.cols if columns else tab.rows
    start, end = target.get("startIndex", 0), target.get("endIndex", limit)
    if not 0 <= start < end <= limit:
        raise SheetsApiError(400, f"Invalid {where}: the range is outside the grid")
    if _field_paths(spec["fields"]) != ["pixelSize"]:
        raise SheetsApiError(400, f"Invalid {where}: the emulator only sets pixelSize")
    sizes = tab.widths if columns else tab.heights
    for index in range(start, end):
        sizes[index] = int(spec.get("properties", {}).get("pixelSize", 0))
    return {}


def _add_rule(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    rule = spec.get("rule", {})
    ranges = rule.get("ranges", [])
    if not ranges or ("booleanRule" in rule) == ("gradientRule" in rule):
        raise SheetsApiError(400, f"Invalid {where}: a rule needs ranges and one kind of rule")
    tabs = {_grid_range(sheet, r, where)[0].sheet_id for r in ranges}
    if len(tabs) != 1:
        raise SheetsApiError(400, f"Invalid {where}: all ranges must be on the same sheet")
    tab = sheet.tab_by_id(tabs.pop())
    assert tab is not None
    index = spec.get("index", 0)
    if not 0 <= index <= len(tab.rules):
        raise SheetsApiError(400, f"Invalid {where}: index {index} is out of range")
    tab.rules = [*tab.rules[:index], copy.deepcopy(rule), *tab.rules[index:]]
    return {}


def _delete_rule(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    tab = sheet.tab_by_id(spec.get("sheetId", 0))
    index = spec.get("index", 0)
    if tab is None or not 0 <= index < len(tab.rules):
        raise SheetsApiError(
            400,
            f"Invalid {where}: No conditional format on sheet: {spec.get('sheetId', 0)} at "
            f"index: {index}",
        )
    rule = tab.rules[index]
    tab.rules = tab.rules[:index] + tab.rules[index + 1 :]
    return {"deleteConditionalFormatRule": {"rule": rule}}


def _chart_owner(sheet: Spreadsheet, chart_id: int) -> Tab | None:
    return next((t for t in sheet.tabs if chart_id in t.charts), None)


def _check_chart(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> None:
    """Every source range on an existing tab, one column or one row wide."""
    basic = spec.get("basicChart", {})
    sources = [d.get("domain", {}) for d in basic.get("domains", [])]
    sources += [s.get("series", {}) for s in basic.get("series", [])]
    for source in sources:
        for grid_range in source.get("sourceRange", {}).get("sources", []):
            _grid_range(sheet, grid_range, where)
            rows = grid_range.get("endRowIndex", 0) - grid_range.get("startRowIndex", 0)
            cols = grid_range.get("endColumnIndex", 0) - grid_range.get("startColumnIndex", 0)
            if 1 not in (rows, cols) or "endRowIndex" not in grid_range:
                raise SheetsApiError(
                    400,
                    f"Invalid {where}: a chart source range must be bounded, with exactly one "
                    "dimension of length 1",
                )


def _add_chart(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    chart = copy.deepcopy(spec.get("chart", {}))
    anchor = chart.get("position", {}).get("overlayPosition", {}).get("anchorCell", {})
    tab = sheet.tab_by_id(anchor.get("sheetId", -1))
    if tab is None:
        raise SheetsApiError(
            400, f"Invalid {where}: the chart needs an overlay position on a sheet"
        )
    if not (
        0 <= anchor.get("rowIndex", 0) < tab.rows and 0 <= anchor.get("columnIndex", 0) < tab.cols
    ):
        raise SheetsApiError(400, f"Invalid {where}: the anchor cell is outside the grid")
    _check_chart(sheet, chart.get("spec", {}), where)
    chart_id = chart.get("chartId")
    if chart_id is None:
        chart_id = chart["chartId"] = sheet.next_sheet_id
        sheet.next_sheet_id += 7919
    if _chart_owner(sheet, chart_id) is not None or sheet.tab_by_id(chart_id) is not None:
        raise SheetsApiError(400, f"Invalid {where}: An object with id {chart_id} already exists.")
    tab.charts = {**tab.charts, chart_id: chart}
    return {"addChart": {"chart": copy.deepcopy(chart)}}


def _update_chart(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    chart_id = spec.get("chartId", -1)
    tab = _chart_owner(sheet, chart_id)
    if tab is None:
        raise SheetsApiError(400, f"Invalid {where}: No chart with id: {chart_id}")
    _check_chart(sheet, spec.get("spec", {}), where)
    tab.charts = {
        **tab.charts,
        chart_id: {**tab.charts[chart_id], "spec": copy.deepcopy(spec["spec"])},
    }
    return {}


def _move_object(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    chart_id = spec.get("objectId", -1)
    tab = _chart_owner(sheet, chart_id)
    if tab is None:
        raise SheetsApiError(400, f"Invalid {where}: No object with id: {chart_id}")
    if _field_paths(spec["fields"]) != ["overlayPosition"]:
        raise SheetsApiError(400, f"Invalid {where}: the emulator only moves overlays")
    position = copy.deepcopy(spec.get("newPosition", {}))
    anchor = position.get("overlayPosition", {}).get("anchorCell", {})
    if anchor.get("sheetId") != tab.sheet_id:
        raise SheetsApiError(
            400, f"Invalid {where}: the emulator does not move charts between sheets"
        )
    tab.charts = {**tab.charts, chart_id: {**tab.charts[chart_id], "position": position}}
    return {"updateEmbeddedObjectPosition": {"position": position}}


def _delete_object(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    chart_id = spec.get("objectId", -1)
    tab = _chart_owner(sheet, chart_id)
    if tab is None:
        raise SheetsApiError(400, f"Invalid {where}: No object with id: {chart_id}")
    tab.charts = {k: v for k, v in tab.charts.items() if k != chart_id}
    return {}


def _create_metadata(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    metadata = copy.deepcopy(spec.get("developerMetadata", {}))
    location = metadata.get("location", {})
    if not metadata.get("metadataKey") or "visibility" not in metadata:
        raise SheetsApiError(400, f"Invalid {where}: metadataKey and visibility are required")
    if "dimensionRange" in location or bool(location.get("spreadsheet")) == ("sheetId" in location):
        raise SheetsApiError(
            400, f"Invalid {where}: the emulator keeps spreadsheet and sheet metadata only"
        )
    holder = sheet.developer_metadata
    if "sheetId" in location:
        tab = sheet.tab_by_id(location["sheetId"])
        if tab is None:
            raise SheetsApiError(400, f"Invalid {where}: No grid with id: {location['sheetId']}")
        holder = tab.developer_metadata
        metadata["location"] = {"locationType": "SHEET", "sheetId": tab.sheet_id}
    else:
        metadata["location"] = {"locationType": "SPREADSHEET", "spreadsheet": True}
    taken = {m.get("metadataId") for found in sheet.all_metadata() for m in found}
    if "metadataId" in metadata:
        if metadata["metadataId"] <= 0 or metadata["metadataId"] in taken:
            raise SheetsApiError(
                400,
                f"Invalid {where}: metadataId {metadata['metadataId']} is taken or not positive",
            )
    else:
        while sheet.next_metadata_id in taken:
            sheet.next_metadata_id += 1
        metadata["metadataId"] = sheet.next_metadata_id
    sheet.next_metadata_id = max(sheet.next_metadata_id, metadata["metadataId"]) + 1
    holder.append(metadata)
    return {"createDeveloperMetadata": {"developerMetadata": copy.deepcopy(metadata)}}


def _matching(sheet: Spreadsheet, filters: list[dict[str, Any]], where: str) -> list[Any]:
    """The metadata any of ``filters`` selects, each as (its list, itself); a filter selects
    what matches every field its lookup names (only ``metadataId`` and ``metadataKey`` here)."""
    found: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
    for data_filter in filters:
        lookup = data_filter.get("developerMetadataLookup")
        if not lookup or set(data_filter) != {"developerMetadataLookup"}:
            raise SheetsApiError(400, f"Invalid {where}: the emulator filters by metadata only")
        named = {k: v for k, v in lookup.items() if k in ("metadataId", "metadataKey")}
        if not named or len(named) != len(lookup):
            raise SheetsApiError(
                400, f"Invalid {where}: the emulator looks metadata up by id and key only"
            )
        for holder in sheet.all_metadata():
            for metadata in holder:
                chosen = all(metadata.get(k) == v for k, v in named.items())
                if chosen and not any(m is metadata for _, m in found):
                    found.append((holder, metadata))
    return found


def _update_metadata(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    matched = [m for _, m in _matching(sheet, spec.get("dataFilters", []), where)]
    if not matched:
        raise SheetsApiError(400, f"Invalid {where}: No developer metadata matches the filters")
    changes = spec.get("developerMetadata", {})
    for path in _field_paths(spec["fields"]):
        if path not in ("metadataValue", "metadataKey", "visibility"):
            raise SheetsApiError(400, f"Invalid {where}: the emulator does not update {path}")
        for metadata in matched:
            metadata[path] = changes.get(path)
    return {"updateDeveloperMetadata": {"developerMetadata": copy.deepcopy(matched)}}


def _delete_metadata(sheet: Spreadsheet, spec: dict[str, Any], where: str) -> dict[str, Any]:
    matched = _matching(sheet, [spec.get("dataFilter", {})], where)
    for holder, metadata in matched:
        holder.remove(metadata)
    deleted = [copy.deepcopy(m) for _, m in matched]
    return {"deleteDeveloperMetadata": {"deletedDeveloperMetadata": deleted}}


# The requests that change a grid's size, after which Google checks its cell limit.
_SIZING = frozenset({"addSheet", "deleteSheet", "updateSheetProperties"})

_HANDLERS = {
    "addSheet": _add_sheet,
    "deleteSheet": _delete_sheet,
    "updateSheetProperties": _update_properties,
    "repeatCell": _repeat_cell,
    "updateDimensionProperties": _update_dimension,
    "addConditionalFormatRule": _add_rule,
    "deleteConditionalFormatRule": _delete_rule,
    "addChart": _add_chart,
    "updateChartSpec": _update_chart,
    "updateEmbeddedObjectPosition": _move_object,
    "deleteEmbeddedObject": _delete_object,
    "createDeveloperMetadata": _create_metadata,
    "updateDeveloperMetadata": _update_metadata,
    "deleteDeveloperMetadata": _delete_metadata,
}
