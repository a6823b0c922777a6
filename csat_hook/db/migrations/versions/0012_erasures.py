"""Erasure records: one per survey whose customer data ``csat-hook erase`` removed. The sync
stores a later submission to such a survey (the answer is still in the source) with its
rating and without its comment, and an unverified one naming the survey (by its reference,
or its dialog in the ticket field) without its comment and cells (sync/ingest.py).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("id", ID, nullable=False),
        sa.Column("survey_key", sa.String(1024), nullable=False),
        sa.Column("dialog_id", sa.String(191), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_erasures"),
        sa.UniqueConstraint("survey_key", name="uq_erasures_survey_key"),
    )
    op.create_index("ix_erasures_dialog_id", "erasures", ["dialog_id"])


def downgrade() -> None:
    op.drop_index("ix_erasures_dialog_id", "erasures")
    op.drop_table("erasures")
