"""Alerts: the ``alerts`` and ``alert_state`` tables, and alert deliveries in the outbox
(``outbox.kind``, ``alert_id``, ``destination``, ``delivery_key``; ``survey_id`` nullable).

Every existing outbox row is a reply (``kind`` defaults to ``reply``); replies stay unique per
survey.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", ID, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(48), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("survey_key", sa.String(1024)),
        sa.Column("helpdesk", sa.String(64)),
        sa.Column("dialog_id", sa.String(191)),
        sa.Column("agent_key", sa.String(255)),
        sa.Column("rating", sa.Integer()),
        sa.Column("previous_rating", sa.Integer()),
        sa.Column("submitted_at", sa.DateTime()),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("handled", sa.String(100)),
        sa.Column("handled_at", sa.DateTime()),
        sa.Column("handled_sheet", sa.String(100)),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("key", name="uq_alerts_key"),
        sa.UniqueConstraint("ref", name="uq_alerts_ref"),
    )
    op.create_index("ix_alerts_kind_created_at", "alerts", ["kind", "created_at"])
    op.create_table(
        "alert_state",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_alert_state"),
    )
    with op.batch_alter_table("outbox") as batch:
        batch.alter_column("survey_id", existing_type=ID, nullable=True)
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="reply"))
        batch.add_column(sa.Column("alert_id", ID))
        batch.add_column(sa.Column("destination", sa.String(64)))
        batch.add_column(sa.Column("delivery_key", sa.String(191)))
        batch.create_foreign_key(
            "fk_outbox_alert_id_alerts", "alerts", ["alert_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_unique_constraint("uq_outbox_kind_delivery_key", ["kind", "delivery_key"])
        batch.create_index("ix_outbox_destination_created_at", ["destination", "created_at"])


def downgrade() -> None:
    # Alert deliveries have no survey: they go with the alerts.
    op.execute("DELETE FROM outbox WHERE kind <> 'reply'")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_destination_created_at")
        batch.drop_constraint("uq_outbox_kind_delivery_key", type_="unique")
        batch.drop_constraint("fk_outbox_alert_id_alerts", type_="foreignkey")
        batch.drop_column("delivery_key")
        batch.drop_column("destination")
        batch.drop_column("alert_id")
        batch.drop_column("kind")
        batch.alter_column("survey_id", existing_type=ID, nullable=False)
    op.drop_table("alert_state")
    op.drop_index("ix_alerts_kind_created_at", table_name="alerts")
    op.drop_table("alerts")
