"""The Alerts tab as a grid, from the rows the alerts flow lists (``alerts.report``).

The rows come with their header first and the alert's number in column A; the team's
"Handled" column is read back from the sheet before each rewrite, so the tab is one plain
table: its header frozen, no formats that a hand edit could fight with.
"""

from __future__ import annotations

from collections.abc import Sequence

from csat_hook.sync.layout import Canvas
from csat_hook.sync.layout import Cell
from csat_hook.sync.layout import Column
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Table

ALERTS_CSV = "alerts.csv"
ALERTS_KIND = "alerts"  # the tab's Grid.kind
# Characters per column: the comment and the deliveries get room, the rest their header's.
_WIDE = {"Comment": 40, "Deliveries": 30, "Ticket link": 24, "Handled": 16}


def alerts_grid(name: str, rows: Sequence[Sequence[Cell]]) -> tuple[Grid, Table]:
    """The tab and ``alerts.csv`` for ``rows`` (header first)."""
    header, body = list(rows[0]), [list(r) for r in rows[1:]]
    columns = [Column(str(h), None, _WIDE.get(str(h), max(8, len(str(h)) + 2))) for h in header]
    table = Table(columns, body, csv_name=ALERTS_CSV)
    grid = Grid(name, ALERTS_KIND)
    Canvas(grid).table(table)
    return grid, table
