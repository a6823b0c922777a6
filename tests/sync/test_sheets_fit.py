"""The longest texts cut to fit the Sheets write (sync/outputs/sheets_fit.py)."""

from __future__ import annotations

from csat_hook.sync.layout import Grid
from csat_hook.sync.outputs.sheets_fit import MIN_CUT
from csat_hook.sync.outputs.sheets_fit import cut_grid
from csat_hook.sync.outputs.sheets_fit import cut_limit
from csat_hook.sync.outputs.sheets_fit import long_texts


def test_the_longest_length_that_fits_is_found_and_short_texts_are_not_counted():
    texts = [["a" * 20_000, "b" * 3_000], ["c" * 8_000]]
    sizes = [30_000, 12_000]  # the tabs' bytes, their texts among them

    def under(budget: int):
        return lambda tabs: sum(tabs) <= budget

    def cut_to(limit: int) -> int:  # the tabs' bytes with texts over limit cut to it
        # Cut: limit - 1 characters and the ellipsis (three bytes in UTF-8).
        return sum(sizes) - sum(
            len(t) - (limit + 2) for tab in texts for t in tab if len(t) > limit
        )

    # The longest that fits: 14,004 + 2 × limit bytes once both longer texts are cut.
    assert cut_limit(sizes, texts, under(30_000)) == 7_998
    assert cut_limit(sizes, texts, under(22_000)) == 3_998
    assert cut_to(3_998) <= 22_000 < cut_to(3_999)
    assert cut_limit(sizes, texts, under(5_000)) is None  # not even MIN_CUT fits


def test_a_cut_grid_keeps_rows_without_long_texts_and_the_grid_untouched():
    short = ("x", 1, None)
    long = ("y" * 5_000, 2, "ok")
    grid = Grid("Anna", "agent", rows=[short, long])
    cut = cut_grid(grid, 2_000)
    assert cut.rows[0] is short and grid.rows[1] is long
    assert cut.rows[1][0] == "y" * 1_999 + "…" and cut.rows[1][1:] == (2, "ok")
    assert long_texts(grid) == ["y" * 5_000] and long_texts(cut) == ["y" * 1_999 + "…"]
    assert long_texts(Grid("B", "agent", rows=[("z" * MIN_CUT,)])) == []
