"""The replies a reopen had cancelled, of surveys an erasure erased before migration 0029's
release, marked erased (``outbox.erased_at``), as ``csat-hook erase`` marks them now.

A survey whose reply ``csat-hook erase`` marked is re-armed only by a close the helpdesk dates
later than the erased one (intake/store.py, ``ERASED``), never by a retry of its close. Since
this release the erasure marks a reply a reopen had cancelled too (erasure/store.py,
``cancelled_before``); an earlier release cleared its text and context only, and migration
0029 marks the replies the erasure cancelled itself (by their note), not those: after the
upgrade a late retry of such a close re-armed the survey and sent it, with the retry's
customer data, to the customer whose data was erased. Each erased survey has its erasure
record (``erasures``: the survey key, its reference's payload, and its dialog), so its
cancelled reply is marked with the erasure's time. A survey nobody erased keeps its reply
unmarked (a retry re-arms it as before).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

# The survey key is its reference's payload, the text before the first "." (tokens.py,
# survey_key; a payload is base64url, which holds no "."). Compared by its prefix, written
# with substr and length, which SQLite and PostgreSQL read alike; the erasure found by its
# dialog (ix_erasures_dialog_id), from the few cancelled replies not marked yet.
ERASURE = (
    "FROM erasures AS e, surveys AS s WHERE s.id = outbox.survey_id"
    " AND e.dialog_id = s.dialog_id"
    " AND substr(s.token, 1, length(e.survey_key) + 1) = e.survey_key || '.'"
)


def upgrade() -> None:
    op.execute(
        sa.text(
            f"UPDATE outbox SET erased_at = (SELECT min(e.erased_at) {ERASURE})"  # noqa: S608
            " WHERE status = 'cancelled' AND erased_at IS NULL AND kind = 'reply'"
            f" AND EXISTS (SELECT 1 {ERASURE})"
        )
    )


def downgrade() -> None:
    # The marks stay: 0029's schema has the column, and an erased reply is erased still.
    pass
