"""The NPS answer (0–10 "how likely are you to recommend us") with each answer and its history.

Nullable: a form without the question, and every answer stored before it, has none.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("answers", sa.Column("nps", sa.SmallInteger()))
    op.add_column("answer_history", sa.Column("nps", sa.SmallInteger()))


def downgrade() -> None:
    with op.batch_alter_table("answer_history") as batch:
        batch.drop_column("nps")
    with op.batch_alter_table("answers") as batch:
        batch.drop_column("nps")
