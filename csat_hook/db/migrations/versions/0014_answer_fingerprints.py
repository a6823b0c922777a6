"""An index on ``answers.fingerprint``: a sync that reads only the responses since its watermark
(the Forms API) asks which of the rows it read were processed already
(``sync/store.py`` ``processed_among``, the answers, their history and the unverified ones by
fingerprint). The history and the unverified answers have a unique index on it; the answers
had none, so each chunk of the question scanned every answer: a sync with nothing new over
1,000,000 answers spent 12 s there.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_answers_fingerprint", "answers", ["fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_answers_fingerprint", "answers")
