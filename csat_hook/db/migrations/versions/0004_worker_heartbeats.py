"""Worker heartbeats and unknown delivery outcomes: the ``workers`` table and
``outbox.uncertain_since``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("beat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_workers"),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("uncertain_since", sa.DateTime()))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("uncertain_since")
    op.drop_table("workers")
