"""Unverified answers keep what crediting them later needs: the reference as read (``token``,
for the forged ones), the NPS answer, and the set of secrets they were last checked under
(``checked_with``, :func:`csat_hook.tokens.key_set_id`). When ``token.previous_secrets``
gains the secret a forged reference was signed with, the next sync credits the answer
(sync/reverify.py). Nullable: rows stored before this revision are checked once, their
reference found among the cells they kept.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("unverified_answers", sa.Column("token", sa.String(1024)))
    op.add_column("unverified_answers", sa.Column("nps", sa.SmallInteger()))
    op.add_column("unverified_answers", sa.Column("checked_with", sa.String(32)))
    op.create_index(
        "ix_unverified_answers_reason_checked_with",
        "unverified_answers",
        ["reason", "checked_with"],
    )


def downgrade() -> None:
    op.drop_index("ix_unverified_answers_reason_checked_with", "unverified_answers")
    # ALTER TABLE ... DROP COLUMN, which SQLite has had since 3.35: a batch copy of the table
    # would drop the data-version triggers of migration 0009 with it.
    for column in ("checked_with", "nps", "token"):
        op.execute(sa.text(f"ALTER TABLE unverified_answers DROP COLUMN {column}"))
