"""Surveys and the reply outbox (the survey-on-close service).

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("id", ID, primary_key=True),
        sa.Column("helpdesk", sa.String(64), nullable=False),
        sa.Column("dialog_id", sa.String(191), nullable=False),
        sa.Column("occurrence", sa.String(191), nullable=False, server_default=""),
        sa.Column("agent_id", sa.String(191)),
        sa.Column("agent_name", sa.String(255)),
        sa.Column("agent_email", sa.String(255)),
        sa.Column("customer_id", sa.String(191)),
        sa.Column("customer_email", sa.String(255)),
        sa.Column("customer_name", sa.String(255)),
        sa.Column("team", sa.String(255)),
        sa.Column("channel", sa.String(191)),
        sa.Column("language", sa.String(16)),
        sa.Column("token", sa.String(1024)),
        sa.Column("link", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("skip_reason", sa.String(64)),
        sa.Column("closed_at", sa.DateTime()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_surveys"),
        sa.UniqueConstraint(
            "helpdesk", "dialog_id", "occurrence", name="uq_surveys_helpdesk_dialog_id_occurrence"
        ),
        sa.UniqueConstraint("token", name="uq_surveys_token"),
    )
    op.create_index(
        "ix_surveys_helpdesk_customer_id_created_at",
        "surveys",
        ["helpdesk", "customer_id", "created_at"],
    )
    op.create_index("ix_surveys_status_sent_at", "surveys", ["status", "sent_at"])
    op.create_table(
        "outbox",
        sa.Column("id", ID, primary_key=True),
        sa.Column("survey_id", ID, nullable=False),
        sa.Column("helpdesk", sa.String(64), nullable=False),
        sa.Column("dialog_id", sa.String(191), nullable=False),
        sa.Column("context", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime()),
        sa.Column("claimed_by", sa.String(128)),
        sa.Column("last_error", sa.String(500)),
        sa.Column("last_http_status", sa.Integer()),
        sa.Column("external_id", sa.String(191)),
        sa.Column("body", sa.Text()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["survey_id"], ["surveys.id"], ondelete="CASCADE", name="fk_outbox_survey_id_surveys"
        ),
        sa.UniqueConstraint("survey_id", name="uq_outbox_survey_id"),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("surveys")
