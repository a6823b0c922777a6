"""Owned tabs: ``sync_outputs.tabs``, the sheetIds of the tabs csat-hook wrote the report to in
a spreadsheet (sync/owned_tabs.py). The report writes only into tabs csat-hook owns: an agent
whose name was a manager's tab's title (or the title of the tab Google Forms links responses
to) took that tab and overwrote it. A tab's id says it is csat-hook's when csat-hook made the
id; the earliest versions let Google number their tabs, and a renamed tab keeps the id of its
first title, so those are known only from this record.

The upgrade records the tabs of the last report written before it, as its key's detail lists
them (``report_detail``: what a later run needs to skip the same report). With no such detail
(a version before report keys, a last write that failed, no data version) nothing is recorded
and only the tabs whose ids csat-hook made are known.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OUTPUTS = sa.table(
    "sync_outputs",
    sa.column("output", sa.String()),
    sa.column("report_detail", sa.JSON()),
    sa.column("tabs", sa.JSON()),
)


def written_ids(detail: Any) -> list[int]:
    """The sheetIds of the tabs a report key's detail lists (``expected.tabs``: each
    ``[title, sheetId, rows, cols, rules, charts]``); none for any other shape."""
    expected = detail.get("expected") if isinstance(detail, dict) else None
    tabs = expected.get("tabs") if isinstance(expected, dict) else None
    if not isinstance(tabs, list):
        return []
    return sorted(
        {
            tab[1]
            for tab in tabs
            if isinstance(tab, list)
            and len(tab) > 1
            and isinstance(tab[1], int)
            and not isinstance(tab[1], bool)
        }
    )


def upgrade() -> None:
    op.add_column("sync_outputs", sa.Column("tabs", sa.JSON()))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(OUTPUTS.c.output, OUTPUTS.c.report_detail).where(
            OUTPUTS.c.output.like("gsheets:%")
        )
    ).all()
    for output, detail in rows:
        ids = written_ids(detail)
        if ids:
            bind.execute(sa.update(OUTPUTS).where(OUTPUTS.c.output == output).values(tabs=ids))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN, as in 0011 (SQLite has had it since 3.35).
    op.execute(sa.text("ALTER TABLE sync_outputs DROP COLUMN tabs"))
