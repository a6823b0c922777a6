"""Sync digests: ``sync_row_digests`` (a processed row's cells → its identity, so an unchanged
row is recognised without parsing it) and ``sync_outputs`` (what each output last wrote, so an
unchanged report is not written again). Both are caches: emptying them only costs time.

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_row_digests",
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_sync_row_digests"),
    )
    op.create_table(
        "sync_outputs",
        sa.Column("output", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("written_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("output", name="pk_sync_outputs"),
    )


def downgrade() -> None:
    op.drop_table("sync_outputs")
    op.drop_table("sync_row_digests")
