"""The tabs csat-hook owns in each spreadsheet it writes the report to (``sync_outputs.tabs``,
their sheetIds): the report writes only into tabs it owns (outputs/sheets_tabs.py ``Owned``).

A tab whose id csat-hook made (from an agent key or the tab's own title) is known as its own
without this record; the record is what knows the others: the tabs the earliest versions let
Google number, and a tab renamed after its agent's new name (its id was made from its first
title). It is kept before the report's requests are sent (a renamed tab is recorded before
it is renamed) and never forgotten with the report key, so a failed write loses none of it.
Losing it (a new database) costs a " 2" tab beside each such tab, never a manager's tab.
A tab the report deletes (a tab of its own set it no longer writes: outputs/sheets.py) is
recorded no more.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import sync_outputs


def recorded(conn: sa.Connection, output: str) -> list[int] | None:
    """The sheetIds recorded as csat-hook's in ``output`` (None: nothing recorded)."""
    found = conn.execute(
        sa.select(sync_outputs.c.tabs).where(sync_outputs.c.output == output[:255])
    ).scalar_one_or_none()
    if not isinstance(found, list):
        return None
    return [t for t in found if isinstance(t, int) and not isinstance(t, bool)]


def record(conn: sa.Connection, output: str, tabs: list[int], now: datetime) -> None:
    """Record ``tabs`` as the sheetIds csat-hook owns in ``output``."""
    stmt = dialect_insert(conn.dialect.name, sync_outputs).values(
        output=output[:255], digest="", written_at=now, tabs=tabs
    )
    conn.execute(stmt.on_conflict_do_update(index_elements=["output"], set_={"tabs": tabs}))
