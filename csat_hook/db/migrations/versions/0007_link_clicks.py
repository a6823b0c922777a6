"""Short links: the ``link_clicks`` table (one row per request to ``/s/<reference>``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "link_clicks",
        sa.Column("id", ID, nullable=False),
        sa.Column("survey_id", ID, nullable=False),
        sa.Column("score", sa.SmallInteger()),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("clicked_at", sa.DateTime(), nullable=False),
        sa.Column("automated", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("reason", sa.String(32)),
        sa.Column("detail", sa.String(64)),
        sa.ForeignKeyConstraint(
            ["survey_id"],
            ["surveys.id"],
            name="fk_link_clicks_survey_id_surveys",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_link_clicks"),
    )
    op.create_index(
        "ix_link_clicks_survey_id_clicked_at", "link_clicks", ["survey_id", "clicked_at"]
    )
    op.create_index("ix_link_clicks_clicked_at", "link_clicks", ["clicked_at"])


def downgrade() -> None:
    op.drop_index("ix_link_clicks_clicked_at", table_name="link_clicks")
    op.drop_index("ix_link_clicks_survey_id_clicked_at", table_name="link_clicks")
    op.drop_table("link_clicks")
