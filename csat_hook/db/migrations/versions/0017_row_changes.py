"""Row changes: ``row_changes``, one row per insert, update or delete of a survey or an answer,
written by SQLite triggers in the writing transaction, whoever writes (intake, the outbox
worker, ``csat-hook erase``, the sync). A sync that kept its last report's dataset applies
the rows listed since (sync/changes.py): the report of a run with a few new answers no longer
reads every survey and answer again.

PostgreSQL gets the table (one schema on both) but no trigger: there the rows changed since a
snapshot are found by their ``xmin``, and the webhook path writes nothing more.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Each table and the row a trigger records of it (a delete's old row, else the new one).
TABLES = ("surveys", "answers")
EVENTS = {"insert": "NEW", "update": "NEW", "delete": "OLD"}


def upgrade() -> None:
    op.create_table(
        "row_changes",
        sa.Column("seq", ID, nullable=False),
        sa.Column("tbl", sa.String(16), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_row_changes"),
        # A seq is never used again once the rows before it were pruned (sync/changes.py).
        sqlite_autoincrement=True,
    )
    if op.get_bind().dialect.name == "postgresql":
        return  # no triggers: see the module's docstring
    for table in TABLES:
        for event, row in EVENTS.items():
            # Names from TABLES and EVENTS above, never from input.
            op.execute(
                f"CREATE TRIGGER csat_{table}_{event}_rows AFTER {event.upper()} ON {table} "  # noqa: S608
                f"BEGIN INSERT INTO row_changes (tbl, row_id) VALUES ('{table}', {row}.id); END"
            )
        # An update that changes a row's id (none does) lists the old id too: it is gone.
        op.execute(
            f"CREATE TRIGGER csat_{table}_id_rows AFTER UPDATE OF id ON {table} "  # noqa: S608
            f"WHEN OLD.id <> NEW.id "
            f"BEGIN INSERT INTO row_changes (tbl, row_id) VALUES ('{table}', OLD.id); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        for table in TABLES:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER csat_{table}_{event}_rows")
            op.execute(f"DROP TRIGGER csat_{table}_id_rows")
    op.drop_table("row_changes")
