"""An index on ``surveys (helpdesk, lower(customer_email), created_at)``: the customer
cool-down's look-up by e-mail.

``policy.customer_cooldown_days`` asks, for every close, whether the customer was surveyed
lately: by id, or by e-mail as the database lowers it (``lower(customer_email) = lower(?)``,
with ``helpdesk = ?``, ``status IN (…)`` and ``created_at >= ?``; since this migration a batch
asks once for all its closes: intake/store.py, ``latest_surveys``). The id has had an index
since migration 0001; the e-mail had none, so SQLite searched every survey of the helpdesk and
PostgreSQL read the whole table, inside the close's write transaction, for every close. With
this index each is one index search, whatever the table holds. (An erasure's look-up by
e-mail, erasure/store.py, compares without the helpdesk and is not served by it: it runs once
per ``csat-hook erase``, not per close.)

PostgreSQL builds it with a plain CREATE INDEX: writes to ``surveys`` wait while it is built
(a pass over the table), as they wait for any migration.

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
