"""A worker is the one woken for a queued reply only while its NOTIFY listener is known to
hear: ``workers.listening_at``, the time of its beat when it was (NULL when it was not). A
worker whose LISTEN connection went deaf (dropped without a word) went on beating from its
other connections, was still chosen, and the reply waited for the poll.

Nullable, not filled in: every worker's next beat writes it. A worker of an earlier release
never does, so it is never the one chosen (a close with no other worker known wakes every
worker, on the shared channel): during a rolling upgrade its replies go out as before.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workers", sa.Column("listening_at", sa.DateTime()))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as migrations 0022 and 0023 do.
    op.execute(sa.text("ALTER TABLE workers DROP COLUMN listening_at"))
