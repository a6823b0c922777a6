"""Early reopens: a reopen that found no waiting survey to cancel, and names a believable
helpdesk time, is remembered by dialog (``early_reopens``: the latest such time, and when it
was received). A reopen delivered *before* its own close (no vendor promises against it) had
nothing to cancel yet and the close's survey went out; now a close the helpdesk says happened
no later than the remembered reopen is recorded as a skipped survey
(``reopened_after_close``). Rows are deleted a while after they were received.

No data-version trigger on SQLite (migration 0009 tracks only the tables the report reads):
the report reads none of it; the skipped survey such a close records is a ``surveys`` write,
tracked as any.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "early_reopens",
        sa.Column("helpdesk", sa.String(64), nullable=False),
        sa.Column("dialog_id", sa.String(191), nullable=False),
        sa.Column("reopened_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("helpdesk", "dialog_id", name="pk_early_reopens"),
    )
    op.create_index("ix_early_reopens_received_at", "early_reopens", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_early_reopens_received_at", table_name="early_reopens")
    op.drop_table("early_reopens")
