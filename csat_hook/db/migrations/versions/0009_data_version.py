"""Data version: ``data_version``, one row whose ``version`` every write to a table the report
reads bumps, in the writing transaction (triggers), and ``sync_outputs.report_key``: the key
of the report each output last wrote (data version, settings, today), so a sync whose key is
unchanged skips the report (sync/report_key.py).

Triggers, not application code: surveys, outbox, clicks and alerts are written by the intake,
the outbox worker, the short links and ``csat-hook alerts``, and a writer that forgot to bump
would make a skipped report stale. SQLite has row triggers only; PostgreSQL gets statement
triggers (one bump per statement, not per row, on the webhook path), and a statement that
changed no row (its transition table is empty) bumps nothing. A transaction bumps at most once
(``xact``), so the sync can tell whether someone else wrote while it read (report_key.py).
A long transaction (the sync's ingest) sets ``csat_hook.bump_at_end`` and bumps once just
before it commits: the bump holds the counter's row lock until commit, and every webhook's
statement would otherwise wait for it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# Every table a report, its dataset, its Alerts tab or its totals read.
TRACKED = (
    "surveys",
    "outbox",
    "answers",
    "answer_history",
    "unverified_answers",
    "sync_skipped_rows",
    "alerts",
    "alert_state",
    "link_clicks",
)
EVENTS = (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD"))

PG_FUNCTIONS = """
CREATE FUNCTION csat_data_bump() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    -- A long transaction (the sync's ingest) bumps at its end instead (sync/report_key.py):
    -- the bump holds the counter's row lock until commit, and every webhook's statement
    -- would wait for it. It only notes that it changed something.
    IF current_setting('csat_hook.bump_at_end', true) = 'on' THEN
        PERFORM set_config('csat_hook.changed', 'on', true);
        RETURN;
    END IF;
    -- Once per transaction: after the first bump this transaction holds the row's lock,
    -- so nobody else can bump it before it commits.
    UPDATE data_version SET version = version + 1, xact = txid_current()
    WHERE id = 1 AND xact IS DISTINCT FROM txid_current();
END $$;
CREATE FUNCTION csat_data_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A statement that matched no row changed nothing (e.g. an UPDATE ... WHERE false).
    IF EXISTS (SELECT 1 FROM csat_changed_rows) THEN
        PERFORM csat_data_bump();
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION csat_data_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM csat_data_bump();
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_table(
        "data_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("xact", sa.BigInteger()),
        sa.PrimaryKeyConstraint("id", name="pk_data_version"),
    )
    op.execute("INSERT INTO data_version (id, version) VALUES (1, 0)")
    op.add_column("sync_outputs", sa.Column("report_key", sa.String(64)))
    op.add_column("sync_outputs", sa.Column("report_detail", sa.JSON()))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTIONS)
        for table in TRACKED:
            for event, side in EVENTS:
                op.execute(
                    f"CREATE TRIGGER csat_{table}_{event} AFTER {event.upper()} ON {table} "
                    f"REFERENCING {side} TABLE AS csat_changed_rows "
                    "FOR EACH STATEMENT EXECUTE FUNCTION csat_data_changed()"
                )
            op.execute(
                f"CREATE TRIGGER csat_{table}_truncate AFTER TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION csat_data_truncated()"
            )
    else:
        for table in TRACKED:
            for event, _side in EVENTS:
                # Names from TRACKED and EVENTS above, never from input.
                op.execute(
                    f"CREATE TRIGGER csat_{table}_{event} AFTER {event.upper()} ON {table} "  # noqa: S608
                    "BEGIN UPDATE data_version SET version = version + 1 WHERE id = 1; END"
                )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in TRACKED:
        for event in [e for e, _s in EVENTS] + (["truncate"] if postgres else []):
            name = f"csat_{table}_{event}"
            op.execute(f"DROP TRIGGER {name} ON {table}" if postgres else f"DROP TRIGGER {name}")
    if postgres:
        op.execute("DROP FUNCTION csat_data_changed()")
        op.execute("DROP FUNCTION csat_data_truncated()")
        op.execute("DROP FUNCTION csat_data_bump()")
    with op.batch_alter_table("sync_outputs") as batch:
        batch.drop_column("report_detail")
        batch.drop_column("report_key")
    op.drop_table("data_version")
