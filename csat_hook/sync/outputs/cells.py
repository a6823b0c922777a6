"""Text cells as a spreadsheet can hold them: within its limit of characters a cell.

* Google Sheets refuses a whole ``values.batchUpdate`` when one cell is longer than 50,000
  characters (400 "Your input contains more than the maximum of 50000 characters in a single
  cell."): one long comment would keep every tab from being written, run after run.
* Excel holds 32,767 characters a cell ("Excel specifications and limits"; KB 211878) and
  reports a workbook with a longer one as damaged; openpyxl writes it all the same.

Both are counted here in UTF-16 code units (an emoji is two), the stricter reading of
"characters" (Excel's strings are UTF-16). A longer text is cut, an ellipsis marking the cut;
the CSV files keep it whole.
"""

from __future__ import annotations

SHEETS_CELL_MAX = 50_000
XLSX_CELL_MAX = 32_767


def fitted_cell(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-16 code units: as it is, or cut with "…" at the end."""
    if len(text) <= limit // 2:  # even two units a character fits: the usual case, no count
        return text
    units = text.encode("utf-16-le", "surrogatepass")
    if len(units) <= 2 * limit:
        return text
    # A pair cut in half leaves half a surrogate at the end: "ignore" drops it.
    return units[: 2 * (limit - 1)].decode("utf-16-le", "ignore") + "…"
