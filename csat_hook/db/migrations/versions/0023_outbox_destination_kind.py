"""An alert delivery remembers its destination's kind (``outbox.destination_kind``: as queued,
then as its last attempt went out), so that a destination whose kind changed under the same
name (a webhook made a Slack channel) is sent the alert rendered for the new kind without
applying the old kind's state to it: an attempt of unknown outcome is not settled as the new
kind would settle its own, a follow-up to an e-mail's recipients is cancelled.

Nullable, not filled in: the kind the rows already queued were meant for is nowhere in the
database (only the configuration of the process that queued them knew it). They are sent as
their destination is configured, as before this revision.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("destination_kind", sa.String(32)))


def downgrade() -> None:
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of the table would drop the
    # data-version triggers of migration 0009 with it.
    op.execute(sa.text("ALTER TABLE outbox DROP COLUMN destination_kind"))
