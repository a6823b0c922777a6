"""A responses sheet's comments as the customer typed them.

The tab is read unformatted (ratings as numbers, timestamps as serials), and so is every
cell: Sheets reads a typed "5%", "1,5" (in a comma-decimal locale) or "3/4" into a number or
a date, and the unformatted read gave 0.05, 1.5 or a date serial for a customer's comment.
A comment that Sheets kept as text comes back as text, so only the comment cells that came
back as something else (a number, a boolean) are read again, as the sheet shows them
(FORMATTED_VALUE): one more ``values.batchGet`` of the comment columns over the rows that
hold such a cell, made only when one does. A sheet whose comments are all text is read in
the two requests it was (Sheets allows 60 reads a minute per user).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.layout import column_letters
from csat_hook.sync.values import is_blank
from csat_hook.sync.values import normalize


def comment_columns(header: Sequence[Any], columns: ColumnsConfig) -> list[int]:
    """The indexes of the columns titled as ``results.columns.comment`` (compared as
    :func:`~csat_hook.sync.sources.table.map_columns` compares them)."""
    wanted = {normalize(t) for t in columns.comment if t.strip()}
    return [i for i, cell in enumerate(header) if not is_blank(cell) and normalize(cell) in wanted]


def comments_as_typed(
    api: SheetsApi,
    spreadsheet_id: str,
    title: str,
    header: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    columns: ColumnsConfig,
    *,
    first_row: int,
) -> Sequence[Sequence[Any]]:
    """``rows`` (the first one row ``first_row`` of the tab ``title``) with each comment
    cell that is no text replaced by the text the sheet shows for it. ``rows`` itself when
    every comment is text (no request made); else a new list, the rows changed copied.
    A cell the sheet shows as nothing (the tab changed between the two reads) keeps its
    unformatted value."""
    indexes = comment_columns(header, columns)
    if not indexes:
        return rows
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
        return rows
    low, high = typed[0], typed[-1]
    ranges = [
        f"{column_letters(i)}{first_row + low}:{column_letters(i)}{first_row + high}"
        for i in indexes
    ]
    shown = api.read_shown(spreadsheet_id, title, ranges)
    changed = list(rows)
    for number in typed:
        row = list(rows[number])
        for index, column in zip(indexes, shown, strict=True):
            if index >= len(row) or row[index].__class__ is str or row[index] is None:
                continue
            line = column[number - low] if number - low < len(column) else []
            text = line[0] if line else None
            if isinstance(text, str) and text:
                row[index] = text
        changed[number] = row
    return changed
