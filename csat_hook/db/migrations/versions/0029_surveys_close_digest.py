"""``surveys.close_digest``: a digest of the close's body, so that a vendor's retry of a close
that names no time of its own is told from a new close of the dialog; and erasures' cancelled
replies marked as such (``outbox.erased_at``).

A survey a reopen cancelled is re-armed by a new close of its dialog. A close that carries no
time (Freshdesk's webhook) could not be told from a retry of the cancelled close, so the retry
re-armed it: a survey went into a conversation the customer had reopened, and a survey the
GDPR erasure had cancelled was sent to the erased customer after all (intake/store.py,
``SAME_DELIVERY`` and ``ERASED``). Nullable: the surveys stored before this revision have no
digest, and their closes' retries re-arm them as before.

The replies an erasure cancelled before this revision are marked as it marks them now: their
``last_error`` is the erasure's note (erasure/store.py ``CANCEL_NOTE``; outcomes.py
``ERASED_NOTE`` for one erased while it was being sent, marked already).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

CANCEL_NOTE = "customer data erased before sending"


def upgrade() -> None:
    op.add_column("surveys", sa.Column("close_digest", sa.String(64)))
    op.execute(
        sa.text(
            "UPDATE outbox SET erased_at = updated_at"
            " WHERE status = 'cancelled' AND last_error = :note AND erased_at IS NULL"
        ).bindparams(note=CANCEL_NOTE)
    )


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as migration 0021's downgrade.
    op.execute(sa.text("ALTER TABLE surveys DROP COLUMN close_digest"))
