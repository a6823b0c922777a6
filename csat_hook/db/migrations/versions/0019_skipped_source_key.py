"""Skipped rows keep which source they were read from (``source_key``: the sheet and tab, the
CSV file or the form, ``ResultsSource.identity``), besides its kind (``source``). A read of
every row of a source forgets the skipped rows of that source it no longer finds
(sync/skips.py: ``record_rereads``); by kind, the first read of another sheet, tab, file or
form of the same kind forgot every skipped row of the one read before (a Forms API form's
never came back: it reads from its watermark), and switching back judged them as new rows.

Nullable, not filled in: which source a row recorded before this revision came from is not
known. Such a row takes the source of the first read that finds it; a read of every row of
its kind that does not find it forgets it, as every such read did before this revision (kept,
it would be counted as skipped for ever).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sync_skipped_rows", sa.Column("source_key", sa.String(255)))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of the table would drop the
    # data-version triggers of migration 0009 with it.
    op.execute(sa.text("ALTER TABLE sync_skipped_rows DROP COLUMN source_key"))
