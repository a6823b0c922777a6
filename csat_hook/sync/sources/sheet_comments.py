"""A responses sheet's comments as the customer typed them.

The tab is read unformatted (ratings as numbers, timestamps as serials), and so is every
cell: Sheets reads a typed "5%", "1,5" (in a comma-decimal locale) or "3/4" into a number or
a date, and the unformatted read gave 0.05, 1.5 or a date serial for a customer's comment.
A comment that Sheets kept as text comes back as text, so only the comment cells that came
back as something else (a number, a boolean) are read again, as the sheet shows them
(FORMATTED_VALUE): one more ``values.batchGet`` of the comment columns over the rows that
hold such a cell, made only when one does. A sheet whose comments are all text is read in
the two requests it was (Sheets allows 60 reads a minute per user).

The second read is by row numbers, and the sheet may change between the two: a manager
sorts it, inserts or deletes a row, and the cell read again at a row's number is another
row's comment. So the same ``values.batchGet`` reads the reference column(s) over those rows
too (a reference's text is the same formatted or not), and a row's comment as shown is taken
only when its reference is the one the first read gave it. A row that cannot be shown to be
the same row is held (:attr:`TypedComments.held`): not read at all this run, rather than read
with the number (an edit of its stored answer, undone by the next run) or with a guess; the
caller makes the read no read of every row, and the next run reads it. No read again: the
sheet is being changed, and a third read could meet the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.layout import column_letters
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.values import is_blank
from csat_hook.sync.values import normalize


def titled(header: Sequence[Any], titles: Sequence[str]) -> list[int]:
    """The indexes of the columns titled as one of ``titles`` (compared as
    :func:`~csat_hook.sync.sources.table.map_columns` compares them)."""
    wanted = {normalize(t) for t in titles if t.strip()}
    return [i for i, cell in enumerate(header) if not is_blank(cell) and normalize(cell) in wanted]


def comment_columns(header: Sequence[Any], columns: ColumnsConfig) -> list[int]:
    """The indexes of the columns titled as ``results.columns.comment``."""
    return titled(header, columns.comment)


@dataclass(frozen=True)
class TypedComments:
    """What :func:`comments_as_typed` gives: the rows to parse, and the numbers (as the
    sheet shows them) of the rows held because the sheet changed between the two reads:
    each is ``[]`` in ``rows`` (a blank row, so the rows below keep their numbers)."""

    rows: Sequence[Sequence[Any]]
    held: tuple[int, ...] = ()


def comments_as_typed(
    api: SheetsApi,
    spreadsheet_id: str,
    title: str,
    header: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    columns: ColumnsConfig,
    *,
    first_row: int,
) -> TypedComments:
    """``rows`` (the first one row ``first_row`` of the tab ``title``) with each comment
    cell that is no text replaced by the text the sheet shows for it. ``rows`` itself when
    every comment is text, or no column is titled as a reference (the read refuses such a
    header): no request made. Else a new list, the rows changed copied.

    A row is changed only when its reference cells, read in the same request, are what
    ``rows`` holds: the same text, or both blank. A row whose reference is blank proves
    nothing by itself (another blank one may have moved to its place), so it is changed only
    when every row between the first and the last row read again is where it was. Any other
    such row is held (:class:`TypedComments`). Not told apart: two rows of one reference (a
    survey answered twice) that swapped places, whose comments are then each other's (the
    same survey's, so the same agent's). A comment cell the sheet shows as nothing (a format
    that hides it) keeps its unformatted value."""
    indexes = comment_columns(header, columns)
    marks = [i for i in titled(header, columns.token) if i not in indexes]
    if not indexes or not marks:
        return TypedComments(rows)
    typed: list[int] = []
    for number, row in enumerate(rows):  # hot: a cell or two per row, a class compared
        size = len(row)
        for index in indexes:
            if index < size:
                cell = row[index]
                if cell.__class__ is not str and cell is not None:
                    typed.append(number)
                    break
    if not typed:
        return TypedComments(rows)
    low, high = typed[0], typed[-1]
    ranges = [
        f"{column_letters(i)}{first_row + low}:{column_letters(i)}{first_row + high}"
        for i in (*indexes, *marks)
    ]
    shown = api.read_shown(spreadsheet_id, title, ranges)
    comments, references = shown[: len(indexes)], shown[len(indexes) :]
    same = _Same(rows, (low, high), marks, references)
    changed = list(rows)
    held: list[int] = []
    for number in typed:
        if not same.row(number):
            changed[number] = []
            held.append(first_row + number)
            continue
        row = list(rows[number])
        for index, column in zip(indexes, comments, strict=True):
            if index >= len(row) or row[index].__class__ is str or row[index] is None:
                continue
            text = _cell(column, number - low)
            if text:
                row[index] = text
        changed[number] = row
    return TypedComments(changed, tuple(held))


def _cell(column: Sequence[Sequence[Any]], offset: int) -> str:
    """The text a column read as shown holds at ``offset`` ("" for a cell left out: Sheets
    leaves out a range's trailing blank rows and a row's trailing blank cells)."""
    line = column[offset] if offset < len(column) else []
    text = line[0] if line else ""
    return text if isinstance(text, str) else ""


class _Same:
    """Whether a row read again is the row ``rows`` holds at its number, by its reference
    cells (``marks``, read as shown over the rows ``low`` to ``high``: ``references``)."""

    def __init__(
        self,
        rows: Sequence[Sequence[Any]],
        span: tuple[int, int],
        marks: Sequence[int],
        references: Sequence[Sequence[Sequence[Any]]],
    ) -> None:
        self.rows, self.marks, self.references = rows, marks, references
        self.low, self.high = span
        self._all: bool | None = None  # every row of the range in place: asked once, if ever

    def _matches(self, number: int) -> tuple[bool, bool]:
        """(the reference cells agree, one of them holds text)."""
        row = self.rows[number]
        size = len(row)
        text = False
        for index, column in zip(self.marks, self.references, strict=True):
            cell = row[index] if index < size else None
            shown = _cell(column, number - self.low)
            if is_blank(cell):
                if not is_blank(shown):
                    return False, text  # a reference where there was none: a row moved in
                continue
            if cell.__class__ is not str:
                continue  # a number as a reference: its text depends on its format
            if shown != cell:
                return False, text
            text = True
        return True, text

    def row(self, number: int) -> bool:
        agree, text = self._matches(number)
        if not agree:
            return False
        if text:
            return True
        if self._all is None:
            self._all = all(self._matches(n)[0] for n in range(self.low, self.high + 1))
        return self._all


def hold_moved(batch: SourceBatch, held: Sequence[int]) -> None:
    """Say that the rows ``held`` (:attr:`TypedComments.held`, read as blank rows) were not
    read: they moved between the run's two reads. They are taken out of the counts, and
    the read is no read of every row (``batch.complete``), so nothing stored from them is
    taken as gone, no read is remembered to replay, and the next run reads every row."""
    batch.rows_read -= len(held)
    batch.blank_rows -= len(held)
    batch.complete = False
    shown = ", ".join(str(n) for n in held[:_HELD_SHOWN])
    more = f" and {len(held) - _HELD_SHOWN:,} more" if len(held) > _HELD_SHOWN else ""
    batch.warnings.append(
        f"{len(held):,} row{'' if len(held) == 1 else 's'} not read (row "
        f"{shown}{more}): the sheet changed between this run's two reads of it (rows "
        "sorted, inserted or deleted), so the comment read again as the sheet shows it may "
        "be another row's (a reference read with it differs); read next run"
    )


_HELD_SHOWN = 10  # how many held rows a warning names
