"""The Alerts tab as a grid, from the rows the alerts flow lists (``alerts.report``).

The rows come with their header first and the alert's number in column A; the team's
"Handled" column is read back from the sheet before each rewrite, so the tab is one plain
table: its header frozen, no formats that a hand edit could fight with but the date-time
format of the two time columns (local date-times, which a CSV shows as ``YYYY-MM-DD HH:MM``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from csat_hook.alerts.report import TIME_COLUMNS
from csat_hook.sync.layout import Canvas
from csat_hook.sync.layout import Cell
from csat_hook.sync.layout import Column
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Table
from csat_hook.sync.texts import LANGUAGES
from csat_hook.sync.texts import Texts
from csat_hook.sync.titles import SHEETS_MAX
from csat_hook.sync.titles import clean

if TYPE_CHECKING:
    from csat_hook.sync.config import OutputConfig

ALERTS_CSV = "alerts.csv"
ALERTS_KIND = "alerts"  # the tab's Grid.kind
# Characters per column: the comment and the deliveries get room, the rest their header's.
_WIDE = {"Comment": 40, "Deliveries": 30, "Ticket link": 24, "Handled": 16}


def alerts_grid(name: str, rows: Sequence[Sequence[Cell]]) -> tuple[Grid, Table]:
    """The tab and ``alerts.csv`` for ``rows`` (header first)."""
    header, body = list(rows[0]), [list(r) for r in rows[1:]]
    times = {i for i, h in enumerate(header) if str(h).startswith(TIME_COLUMNS)}
    columns = [
        Column(str(h), Fmt.DATETIME if i in times else None, _width(str(h), i in times))
        for i, h in enumerate(header)
    ]
    table = Table(columns, body, csv_name=ALERTS_CSV)
    grid = Grid(name, ALERTS_KIND)
    Canvas(grid).table(table)
    return grid, table


def _width(header: str, time: bool) -> int:
    if time:
        return 17  # "2026-11-20 19:30", as the Responses tab's
    return _WIDE.get(header, max(8, len(header) + 2))


def alerts_tab_clash(tab: str, output: OutputConfig) -> str | None:
    """The title of the report's own tab (in either language) that the Alerts tab ``tab``
    would share as the outputs write titles, or None."""
    sheets = output.gsheets
    others = [sheets.summary_tab, sheets.unverified_tab]
    for language in LANGUAGES:
        texts = Texts(language)
        others += [texts["trends"], texts["responses"]]
        others += [texts["summary"]] if sheets.summary_tab is None else []
        others += [texts["unverified"]] if sheets.unverified_tab is None else []
    title = clean(tab, SHEETS_MAX).casefold()
    return next((o for o in others if o and clean(o, SHEETS_MAX).casefold() == title), None)
