"""SQLite: a bulk write of answers is listed in ``row_changes`` once, not once per row.

Migration 0017's triggers list every insert, update and delete of an answer in
``row_changes``, so a sync that kept its last report's dataset can patch it. A first sync of
100,000 answers wrote 100,000 rows there in its own transaction, and 1,000,000 wrote a million
(8.7 s of 18.9 s of the upserts' CPU, growing with the list), all of them useless: more changes
than ``sync/changes.py``'s ``MAX_CHANGED`` are never applied, a dataset marked before them is
built anew.

``row_changes_paused`` holds a row while a writer says the rows it writes are listed another
way: the answers' triggers fire only when it is empty. The one writer that fills it
(``sync/changes.py``'s ``unlisted``) does so inside its transaction and empties it before
committing, with one row in ``row_changes`` instead (``tbl`` "bulk": a dataset marked before
it is built anew, and the list's sequence, part of the data version, still moves). No other
connection ever sees the table hold a row.

A process of an earlier release still running on the same SQLite file after this migration
fails its next sync that meets a "bulk" row (a run with an error, nothing written): restart
every process on an upgrade, as migration 0025 asks.

PostgreSQL gets the table (one schema on both) and no trigger: nothing lists its writes.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# The answers' triggers of migration 0017 and the row each records (a delete's old row).
EVENTS = {"insert": "NEW", "update": "NEW", "delete": "OLD"}


def _create(event: str, row: str, when: str) -> None:
    # Names and rows from EVENTS above, never from input.
    op.execute(
        f"CREATE TRIGGER csat_answers_{event}_rows AFTER {event.upper()} ON answers {when}"  # noqa: S608
        f"BEGIN INSERT INTO row_changes (tbl, row_id) VALUES ('answers', {row}.id); END"
    )


def upgrade() -> None:
    op.create_table(
        "row_changes_paused",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_row_changes_paused"),
    )
    if op.get_bind().dialect.name == "postgresql":
        return
    for event, row in EVENTS.items():
        op.execute(f"DROP TRIGGER csat_answers_{event}_rows")
        _create(event, row, "WHEN NOT EXISTS (SELECT 1 FROM row_changes_paused) ")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for event, row in EVENTS.items():
            op.execute(f"DROP TRIGGER csat_answers_{event}_rows")
            _create(event, row, "")
    op.drop_table("row_changes_paused")
