"""No index on ``answers (helpdesk, agent_key)``: no statement reads answers by agent (the
dataset reads every answer; alerts and names join them by token), so the index only cost each
stored answer a write (≈ 2–4 µs; a first sync of 100,000 answers, 0.2–0.3 s). The one
statement that used it, an erasure's look-up of a dialog's answers (``helpdesk = ? AND
dialog_id = ?``), searched it by helpdesk alone, every answer of the helpdesk, which is no
better than reading the table.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_answers_helpdesk_agent_key", table_name="answers")


def downgrade() -> None:
    op.create_index("ix_answers_helpdesk_agent_key", "answers", ["helpdesk", "agent_key"])
