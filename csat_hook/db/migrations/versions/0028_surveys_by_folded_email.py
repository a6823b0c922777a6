"""An index on ``surveys (helpdesk, lower(customer_email), created_at)``: the customer
cool-down's look-up by e-mail.

``policy.customer_cooldown_days`` asks, for every close, whether the customer was surveyed
lately: ``helpdesk = ? AND (customer_id = ? OR lower(customer_email) = lower(?)) AND status IN
(…) AND created_at >= ?`` (intake/store.py, ``customer_surveyed_since``). The id has had an
index since migration 0001; the e-mail, compared as the database lowers it, had none, so
neither database could use the id's for the OR: SQLite searched every survey of the helpdesk
and PostgreSQL read the whole table, inside the close's write transaction, for every close.
With this index each side of the OR is one index search (SQLite: MULTI-INDEX OR; PostgreSQL:
BitmapOr), whatever the table holds. An erasure's look-up by e-mail (erasure/store.py) uses it
too.

PostgreSQL builds it with a plain CREATE INDEX: writes to ``surveys`` wait while it is built
(about a second per million surveys), as they wait for any migration.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

NAME = "ix_surveys_helpdesk_customer_email_folded"


def upgrade() -> None:
    op.create_index(NAME, "surveys", ["helpdesk", sa.text("lower(customer_email)"), "created_at"])


def downgrade() -> None:
    op.drop_index(NAME, table_name="surveys")
