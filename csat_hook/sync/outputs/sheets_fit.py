"""The longest texts of a Sheets report cut so that its values fit the write's requests.

Each tab's values go in one ``values.batchUpdate`` of at most ``output.gsheets.max_request_bytes``
(two requests in all), and what a tab takes is mostly its rows' count, which the row limits
bound. A customer's comment is the exception: a cell holds 50,000 characters, which JSON
carries in up to 300 KB (a control character is six bytes), so a few dozen long comments from
one customer with many closed dialogs took an agent's tab and the Responses tab over the limit
and every run failed. When the values do not fit, the texts longer than a common length are
cut to it (an ellipsis marking the cut), that length the longest that fits: shorter texts, the
rows and the figures stay as they are, and the files (.xlsx, CSV) keep each text as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import replace

from csat_hook.sync.layout import Cell
from csat_hook.sync.layout import Grid
from csat_hook.sync.outputs.cells import SHEETS_CELL_MAX
from csat_hook.sync.outputs.cells import fitted_cell

# No text is cut shorter than this many characters: under it, what does not fit is the rows'
# count, which the write then lists fewer of (SheetsOutput._listed_fewer). A text is cut
# only as far as needed, so this is reached only when a customer's long comments are in
# hundreds of rows of a tab (each in the Responses tab, their agent's and the Alerts tab).
MIN_CUT = 200


def long_texts(grid: Grid) -> list[str]:
    """The texts of ``grid`` longer than :data:`MIN_CUT` characters."""
    return [
        cell for row in grid.rows for cell in row if isinstance(cell, str) and len(cell) > MIN_CUT
    ]


def cut_grid(grid: Grid, limit: int) -> Grid:
    """``grid`` with every text longer than ``limit`` characters cut to ``limit`` (the rows
    are never changed in place: a row with no such text is the same object)."""

    def cut(row: Sequence[Cell]) -> Sequence[Cell]:
        if not any(isinstance(cell, str) and len(cell) > limit for cell in row):
            return row
        return tuple(
            fitted_cell(cell, limit) if isinstance(cell, str) and len(cell) > limit else cell
            for cell in row
        )

    return replace(grid, rows=[cut(row) for row in grid.rows])


def _size(text: str, limit: int) -> int:
    """What ``text`` takes in the request once cut to ``limit`` (and to a cell's limit)."""
    shown = fitted_cell(text, min(limit, SHEETS_CELL_MAX))
    return len(json.dumps(shown, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def cut_limit(
    sizes: Sequence[int], texts: Sequence[Sequence[str]], fits: Callable[[list[int]], bool]
) -> int | None:
    """The longest length to cut texts to that makes ``fits`` hold for the tabs' sizes, or
    None when even :data:`MIN_CUT` does not. ``sizes``: each tab's bytes as encoded whole;
    ``texts``: each tab's :func:`long_texts`. A tab's size at a length is estimated from
    its texts alone (what each would take cut, against what it takes whole); the caller
    encodes again at the length found and checks it."""
    whole = [[_size(text, SHEETS_CELL_MAX) for text in tab] for tab in texts]

    def sized(limit: int) -> list[int]:
        return [
            size - sum(w - _size(text, limit) for text, w in zip(tab, ws, strict=True))
            for size, tab, ws in zip(sizes, texts, whole, strict=True)
        ]

    longest = max((len(text) for tab in texts for text in tab), default=0)
    low, high, found = MIN_CUT, min(longest, SHEETS_CELL_MAX), None
    while low <= high:
        middle = (low + high) // 2
        if fits(sized(middle)):
            found, low = middle, middle + 1
        else:
            high = middle - 1
    return found
