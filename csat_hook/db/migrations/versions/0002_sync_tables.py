"""Answers, their history, unverified answers, skipped rows, sync state and locks (the sync).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "answers",
        sa.Column("id", ID, primary_key=True),
        sa.Column("token", sa.String(1024), nullable=False),
        sa.Column("helpdesk", sa.String(64), nullable=False),
        sa.Column("dialog_id", sa.String(191), nullable=False),
        sa.Column("agent_key", sa.String(255), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text()),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("field_agent", sa.String(255)),
        sa.Column("field_ticket", sa.String(255)),
        sa.Column("fields_edited", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_ref", sa.String(191)),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("fingerprint", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_answers"),
        sa.UniqueConstraint("token", name="uq_answers_token"),
    )
    op.create_index("ix_answers_helpdesk_agent_key", "answers", ["helpdesk", "agent_key"])
    op.create_table(
        "answer_history",
        sa.Column("id", ID, primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("token", sa.String(1024), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text()),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("field_agent", sa.String(255)),
        sa.Column("field_ticket", sa.String(255)),
        sa.Column("fields_edited", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_ref", sa.String(191)),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_answer_history"),
        sa.UniqueConstraint("fingerprint", name="uq_answer_history_fingerprint"),
    )
    op.create_index("ix_answer_history_token", "answer_history", ["token"])
    op.create_table(
        "unverified_answers",
        sa.Column("id", ID, primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_ref", sa.String(191)),
        sa.Column("submitted_at", sa.DateTime()),
        sa.Column("rating", sa.Integer()),
        sa.Column("comment", sa.Text()),
        sa.Column("field_agent", sa.String(255)),
        sa.Column("field_ticket", sa.String(255)),
        sa.Column("source_row", sa.JSON(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_unverified_answers"),
        sa.UniqueConstraint("fingerprint", name="uq_unverified_answers_fingerprint"),
    )
    op.create_table(
        "sync_skipped_rows",
        sa.Column("id", ID, primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("source_ref", sa.String(191)),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(255)),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sync_skipped_rows"),
        sa.UniqueConstraint("fingerprint", name="uq_sync_skipped_rows_fingerprint"),
    )
    op.create_table(
        "sync_state",
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("watermark", sa.DateTime()),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_sync_state"),
    )
    op.create_table(
        "sync_locks",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(191)),
        sa.Column("lease_until", sa.DateTime()),
        sa.Column("acquired_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("name", name="pk_sync_locks"),
    )


def downgrade() -> None:
    for table in (
        "sync_locks",
        "sync_state",
        "sync_skipped_rows",
        "unverified_answers",
        "answer_history",
        "answers",
    ):
        op.drop_table(table)
