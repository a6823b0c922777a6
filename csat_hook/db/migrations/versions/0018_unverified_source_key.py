"""Unverified answers keep which source they were read from (``source_key``: the sheet and
tab, the CSV file or the form, ``ResultsSource.identity``), besides its kind (``source``).
A read of every row of a sheet or export forgets the unverified answers of that source it no
longer finds (sync/ingest.py: ``forget_gone_unverified``); by kind, the first read of another
sheet, tab or file of the same kind forgot every unverified answer of the one read before.

Nullable, not filled in: which source a row stored before this revision came from is not
known. Such a row takes the source of the first read of every row of its kind that finds it;
one no such read finds is never forgotten (it is no read's own).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("unverified_answers", sa.Column("source_key", sa.String(255)))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of the table would drop the
    # data-version triggers of migration 0009 with it.
    op.execute(sa.text("ALTER TABLE unverified_answers DROP COLUMN source_key"))
