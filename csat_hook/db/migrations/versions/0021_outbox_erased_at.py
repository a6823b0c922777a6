"""An erasure that finds a survey reply being sent (``sending``, held by a worker) marks its
outbox row (``erased_at``) instead of leaving the row and its survey whole for a second run.
The worker's own outcome then keeps the customer out: a reply recorded sent keeps no text as
sent; one that would go back to ``pending`` (a retry, a takeover) or end ``failed`` is
cancelled instead, never sent again to the customer whose data is erased.

Nullable, not filled in: no row was marked before this revision.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("erased_at", sa.DateTime()))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of the table would drop the
    # data-version triggers of migration 0009 with it.
    op.execute(sa.text("ALTER TABLE outbox DROP COLUMN erased_at"))
