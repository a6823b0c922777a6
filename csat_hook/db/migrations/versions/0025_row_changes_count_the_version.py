"""SQLite: the data version of ``surveys`` and ``answers`` is the row-change list's sequence,
not a second trigger per row. Migration 0009 bumped ``data_version`` on every insert, update
and delete of a tracked table; migration 0017 later listed every insert, update and delete of
``surveys`` and ``answers`` in ``row_changes``, whose AUTOINCREMENT sequence
(``sqlite_sequence``) grows with each of them in the same transaction and is never reused, even
once the listed rows are pruned. Two triggers per written row said the same thing twice: the
counter's is dropped on these two tables (a first sync of 100,000 answers ran 100,000 UPDATEs
of the counter row, ≈ 0.25 s), and the data version is read as the counter and that sequence
together (sync/report_key.py). The other tracked tables keep the counter's triggers.

A process of an earlier release still running on the same SQLite file after this migration
reads the counter alone, which writes of surveys and answers no longer move: its syncs would
keep an unchanged report until it restarts. Restart every process on an upgrade (SQLite runs
as one ``serve`` on one machine; the Procfile's platforms restart every process after the
release step).

PostgreSQL has neither trigger: nothing to do.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

# The tables whose writes row_changes lists (migration 0017's TABLES).
TABLES = ("surveys", "answers")
EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    for table in TABLES:
        for event in EVENTS:
            op.execute(f"DROP TRIGGER csat_{table}_{event}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    for table in TABLES:
        for event in EVENTS:
            # Names from TABLES and EVENTS above, never from input (as migration 0009 made them).
            op.execute(
                f"CREATE TRIGGER csat_{table}_{event} AFTER {event.upper()} ON {table} "  # noqa: S608
                "BEGIN UPDATE data_version SET version = version + 1 WHERE id = 1; END"
            )
