"""An answer alert whose answer was edited so that its rule no longer matches it (a 1 raised to
a 5) before it went out is cancelled: ``alerts.cancelled_at`` and ``alerts.cancel_reason``
(``answer_improved``, ``comment_removed``) say so, its deliveries not yet started are
cancelled, and a worker that claims one later (back from a retry) cancels it instead of
sending it. An edit back to the alerted rating clears both and sends what was cancelled.

Nullable, not filled in: no alert was cancelled before this revision.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("cancelled_at", sa.DateTime()))
    op.add_column("alerts", sa.Column("cancel_reason", sa.String(32)))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of the table would drop the
    # data-version triggers of migration 0009 with it.
    op.execute(sa.text("ALTER TABLE alerts DROP COLUMN cancel_reason"))
    op.execute(sa.text("ALTER TABLE alerts DROP COLUMN cancelled_at"))
