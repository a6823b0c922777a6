"""The report's sheets as grids: cells, and how they look, for any spreadsheet output.

A :class:`Grid` is what Google Sheets and the .xlsx both render: typed cells (numbers stay
numbers, fractions are fractions, date-times are naive local ``datetime``), number formats
by area (:class:`Fmt`), looks (title, header, bold, muted, note), column widths in
characters, frozen rows and columns, conditional rules (:class:`Rule`) and charts
(:class:`Chart`). Each output turns these into its own terms (``outputs/sheets_format.py``,
``outputs/xlsx.py``); nothing here knows either. :class:`Canvas` builds a grid top to bottom.

A :class:`Table` is a plain header-and-rows table with a format per column: placed on a
canvas, or written as a CSV file.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from decimal import ROUND_HALF_UP
from decimal import Decimal
from enum import StrEnum

Cell = str | int | float | datetime | date | None


class Fmt(StrEnum):
    PERCENT = "percent"  # a fraction shown as 85.3%
    WHOLE_PERCENT = "whole_percent"  # 85%
    POINTS = "points"  # percentage points: +5.2 pp
    SCORE = "score"  # an NPS on −100..100: +45
    COUNT = "count"  # a whole number
    TIED = "tied"  # a shared place: 2=
    MEAN = "mean"  # 4.25
    DATETIME = "datetime"
    DATE = "date"


class Look(StrEnum):
    TITLE = "title"  # larger, bold
    HEADER = "header"  # bold on grey, wrapped
    BOLD = "bold"
    MUTED = "muted"  # grey italic: a figure to read with care
    NOTE = "note"  # small grey text
    CENTER = "center"


class RuleKind(StrEnum):
    # Numbers that show below ``value`` red, at or above green (blanks left alone), each as
    # its PERCENT cell shows it: the outputs compare with :func:`shown_from` (0.7996 shows
    # 80.0%: green against an 80% target, where the number itself is below it).
    TARGET = "target"
    LOW_RATING = "low_rating"  # whole rows red where the ``column`` cell is ≤ ``value``
    MARKS = "marks"  # bold green where the ``column`` cell is ▲, bold red where ▼
    SMALL_N = "small_n"  # grey italic where the cell ``offset`` (rows, columns) away is < value


MARK_UP, MARK_DOWN = "▲", "▼"

# The formats of figures that may be below zero, each with the least size its cell shows
# other than zero (an NPS whole, a difference to 0.1 pp). Sheets and Excel pick a number
# format's section by the value, not by how it rounds: −0.3 under ``+0;-0;0`` shows "-0",
# and no pattern without conditions shows it "0". Such a value is written 0 in the grid the
# spreadsheets show (:meth:`Canvas.table`); the table (its CSV file) keeps it. The other
# formats hold what is never below zero (fractions, means, counts, dates).
SIGNED: dict[Fmt, float] = {Fmt.SCORE: 0.5, Fmt.POINTS: 0.05}


def unsigned_zero(value: Cell, fmt: Fmt) -> Cell:
    """``value`` as the grid holds it under ``fmt`` (one of :data:`SIGNED`): 0 where its cell
    shows zero (−0.3 as an NPS, −0.04 as points), else itself. (A float below the half
    compares so exactly as its shortest decimal does: outputs/local.py's ``shown`` rounds
    that decimal.)"""
    if isinstance(value, float) and -SIGNED[fmt] < value < SIGNED[fmt]:  # numpy floats too
        return 0.0
    return value


def shown_from(target: float) -> float:
    """The least number a ``Fmt.PERCENT`` cell (0.1 %) shows at or above ``target`` as the
    Summary shows the target: the half-way point below the target rounded to 0.1 % (0.8 →
    0.7995; 0.8554, shown 85.5%, → 0.8545). A spreadsheet shows the decimal number a cell
    holds rounded half away from zero (outputs/local.py, ``shown``), so a number at or
    above this one shows the target or more, and one below shows less."""
    shown = Decimal(repr(float(target))).quantize(_TENTH_PERCENT, rounding=ROUND_HALF_UP)
    return float(shown - _TENTH_PERCENT / 2)


_TENTH_PERCENT = Decimal("0.001")


@dataclass(frozen=True)
class Area:
    """Rows ``row0 ≤ r < row1`` and columns ``col0 ≤ c < col1`` (0-based)."""

    row0: int
    col0: int
    row1: int
    col1: int

    @property
    def empty(self) -> bool:
        return self.row1 <= self.row0 or self.col1 <= self.col0


@dataclass(frozen=True)
class Rule:
    kind: RuleKind
    area: Area
    value: float = 0.0
    column: int = 0  # LOW_RATING and MARKS: the column (0-based) whose cell decides
    offset: tuple[int, int] = (0, 0)  # SMALL_N: (rows, columns) from a cell to its count


@dataclass(frozen=True)
class Chart:
    """``BARS``: one bar per category with its interval; ``TREND``: a line over time with its
    interval (and the answer counts as columns on a second axis when ``counts`` is set).
    Columns are 0-based; ``header`` is the row of series names, data rows follow to ``end``.
    """

    kind: str
    title: str
    anchor: tuple[int, int]  # (row, column) of the top-left corner
    header: int
    end: int
    category: int
    value: int
    low: int
    high: int
    counts: int | None = None
    axis_title: str = ""


BARS, TREND = "bars", "trend"


@dataclass(frozen=True)
class Column:
    """``csv_header`` replaces ``header`` in a CSV file, which has no number formats (its
    percentages are written ×100, so the header says "(%)")."""

    header: str
    fmt: Fmt | None = None
    width: int = 10  # characters
    csv_header: str | None = None


@dataclass
class Table:
    """A header and rows; ``csv_name`` names its CSV file when it has one."""

    columns: list[Column]
    rows: Sequence[Sequence[Cell]]
    csv_name: str | None = None


@dataclass
class Grid:
    """One sheet. ``name`` is the wanted title before an output cleans it (for an agent's
    tab, their name; ``key`` is the agent key); ``kind`` says what the tab holds.

    ``helpdesk``: an agent's helpdesk where another helpdesk has an agent of the same key
    (agent "7" of each), whom the key alone does not name: the outputs then title and
    number the tab with it too (titles.py, outputs/sheets_tabs.py). None for every other
    tab, whose title and id stay what the key alone makes them."""

    name: str
    kind: str
    # Lists, or tuples shared with a table (Canvas.table(share=True)): never changed in place.
    rows: list[Sequence[Cell]] = field(default_factory=list)
    key: str | None = None
    helpdesk: str | None = None
    frozen_rows: int = 1
    frozen_cols: int = 0
    widths: list[int] = field(default_factory=list)
    formats: list[tuple[Area, Fmt]] = field(default_factory=list)
    looks: list[tuple[Area, Look]] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tall_rows: list[int] = field(default_factory=list)  # wrapped headers (three lines high)
    # The widest of the first ``_measured`` rows of the list ``_of`` (its id): rows are
    # appended, never changed in place, and a report asks a grid of 100,000 rows for its
    # width several times (each a pass over every row: ≈ 0.1 s of a later sync).
    _of: int = field(default=0, init=False, repr=False, compare=False)
    _measured: int = field(default=0, init=False, repr=False, compare=False)
    _widest: int = field(default=0, init=False, repr=False, compare=False)

    @property
    def width(self) -> int:
        """The longest row's length (0 without rows)."""
        rows = self.rows
        if id(rows) != self._of or len(rows) < self._measured:  # another list
            self._of, self._measured, self._widest = id(rows), 0, 0
        if len(rows) > self._measured:
            tail = rows if not self._measured else itertools.islice(rows, self._measured, None)
            self._widest = max(self._widest, max(map(len, tail), default=0))
            self._measured = len(rows)
        return self._widest


@dataclass(frozen=True)
class Placed:
    """Where a table landed: its header row and its data rows ``first ≤ r < end``."""

    header: int
    first: int
    end: int


class Canvas:
    """Builds a :class:`Grid` row by row."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    @property
    def row(self) -> int:
        """The index the next line gets."""
        return len(self.grid.rows)

    def line(self, cells: list[Cell], look: Look | None = None, *, span: int = 1) -> int:
        index = self.row
        self.grid.rows.append(list(cells))
        if look is not None:
            self.look(Area(index, 0, index + 1, max(len(cells), span)), look)
        return index

    def blank(self) -> None:
        self.grid.rows.append([])

    def look(self, area: Area, look: Look) -> None:
        if not area.empty:
            self.grid.looks.append((area, look))

    def fmt(self, area: Area, fmt: Fmt) -> None:
        if not area.empty:
            self.grid.formats.append((area, fmt))

    def table(
        self,
        table: Table,
        col0: int = 0,
        *,
        header_look: Look = Look.HEADER,
        share: bool = False,
    ) -> Placed:
        """The header, then the rows; each column's format over its data rows. The grid holds
        copies of the rows, or with ``share`` the table's own rows (tuples, which nobody
        changes: the answers' tabs, whose rows a runner keeps for its next report)."""
        cells: list[Cell] = [None] * col0
        header = self.line([*cells, *(c.header for c in table.columns)])
        self.look(Area(header, col0, header + 1, col0 + len(table.columns)), header_look)
        if header_look == Look.HEADER:
            self.grid.tall_rows.append(header)
        first = self.row
        signed = [
            (i, c.fmt) for i, c in enumerate(table.columns) if c.fmt is not None and c.fmt in SIGNED
        ]
        if signed:  # the summary's tables (a row per agent or team): copied with zeros unsigned
            self.grid.rows.extend([None] * col0 + _unsigned(row, signed) for row in table.rows)
        elif col0:
            self.grid.rows.extend([None] * col0 + list(row) for row in table.rows)
        elif share:
            self.grid.rows.extend(table.rows)
        else:  # the usual case, and 100,000 rows for the Responses tab: copied in C
            self.grid.rows.extend(map(list, table.rows))
        end = self.row
        widths = self.grid.widths
        for i, column in enumerate(table.columns):
            c = col0 + i
            while len(widths) <= c:
                widths.append(8)
            # A wrapped header never breaks inside a word.
            longest = max((len(word) for word in column.header.split()), default=0)
            widths[c] = max(widths[c], column.width, longest + 2)
            if column.fmt is not None:
                self.fmt(Area(first, c, end, c + 1), column.fmt)
        return Placed(header, first, end)


def _unsigned(row: Sequence[Cell], signed: Sequence[tuple[int, Fmt]]) -> list[Cell]:
    cells = list(row)
    for i, fmt in signed:
        if i < len(cells):
            cells[i] = unsigned_zero(cells[i], fmt)
    return cells


def column_letters(index: int) -> str:
    """A column as a spreadsheet names it: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters
