"""Erased dialogs: one row per dialog ``csat-hook erase --dialog`` erased, recorded even when
nothing of it was stored then. An erasure record per survey (0012) needs a survey or an
answer to find the survey by; a dialog with neither (its answers still to come, or only an
unverified row typed with its ticket number) was erased and left no record, and that row,
edited in the source, was stored again with its text. The sync stores a later submission
credited to the dialog, naming it by its reference, or typed with its number, without its
text (sync/ingest.py).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "erased_dialogs",
        sa.Column("id", ID, nullable=False),
        sa.Column("helpdesk", sa.String(64), nullable=False),
        sa.Column("dialog_id", sa.String(255), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_erased_dialogs"),
        sa.UniqueConstraint("dialog_id", "helpdesk", name="uq_erased_dialogs_dialog_id_helpdesk"),
    )


def downgrade() -> None:
    op.drop_table("erased_dialogs")
