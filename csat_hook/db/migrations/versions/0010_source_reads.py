"""Source reads: ``sync_source_reads``, the digest of each whole-reading source's last read (a
responses sheet's bytes, a CSV file's) with what that read found, so the same bytes read
again are not parsed row by row (sync/read_memo.py). A cache: emptying it only costs time.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_source_reads",
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("known_count", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_sync_source_reads"),
    )


def downgrade() -> None:
    op.drop_table("sync_source_reads")
