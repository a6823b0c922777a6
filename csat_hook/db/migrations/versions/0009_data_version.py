"""Data version: ``data_version``, one row whose ``version`` every write to a table the report
reads bumps, in the writing transaction (triggers), and ``sync_outputs.report_key``: the key
of the report each output last wrote (data version, settings, today), so a sync whose key is
unchanged skips the report (sync/report_key.py).

Triggers, not application code: surveys, outbox, clicks and alerts are written by the intake,
the outbox worker, the short links and ``csat-hook alerts``, and a writer that forgot to bump
would make a skipped report stale.

* SQLite: row triggers (it has no others). Writers are serialised by the database lock
  anyway (BEGIN IMMEDIATE), so the counter adds no waiting.
* PostgreSQL: a deferred constraint trigger per table, so the bump happens **at commit**,
  once per transaction (a transaction-local flag: the rows after the first cost a setting
  read), on one of 16 rows chosen by the transaction id (the version is their sum), so
  concurrent commits rarely queue on one row lock. Not an immediate statement trigger: the
  bump locks its row until the transaction ends, and the sync's ingest (seconds, a minute
  for a million answers) would then hold every webhook's insert behind it, and two writers
  could deadlock (one holding a row the other needs while waiting for the counter). At
  commit a transaction takes no other lock after the counter's, and holds it only for the
  commit. TRUNCATE (a statement trigger) bumps too.

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
EVENTS = ("insert", "update", "delete")
SHARDS = 16  # rows of data_version (csat_data_changed() below says 16 too)

PG_FUNCTION = """
CREATE FUNCTION csat_data_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Once per transaction: the flag is SET LOCAL, gone when the transaction ends. The row
    -- is the transaction's shard, so concurrent commits rarely wait for each other.
    IF current_setting('csat.data_bumped', true) IS DISTINCT FROM 'y' THEN
        PERFORM set_config('csat.data_bumped', 'y', true);
        UPDATE data_version SET version = version + 1, xact = txid_current()
        WHERE id = 1 + txid_current() % 16;
    END IF;
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
    # The version is the sum of the rows: SQLite bumps row 1 (its writers are serialised);
    # PostgreSQL bumps row 1 + txid % 16 (SHARDS), so commits do not queue on one row lock.
    rows = ", ".join(f"({n}, 0)" for n in range(1, SHARDS + 1))
    op.execute(f"INSERT INTO data_version (id, version) VALUES {rows}")  # noqa: S608 (numbers)
    op.add_column("sync_outputs", sa.Column("report_key", sa.String(64)))
    op.add_column("sync_outputs", sa.Column("report_detail", sa.JSON()))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in TRACKED:
            op.execute(
                f"CREATE CONSTRAINT TRIGGER csat_{table}_change "
                f"AFTER INSERT OR UPDATE OR DELETE ON {table} DEFERRABLE INITIALLY DEFERRED "
                "FOR EACH ROW EXECUTE FUNCTION csat_data_changed()"
            )
            op.execute(
                f"CREATE TRIGGER csat_{table}_truncate AFTER TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION csat_data_changed()"
            )
    else:
        for table in TRACKED:
            for event in EVENTS:
                # Names from TRACKED and EVENTS above, never from input.
                op.execute(
                    f"CREATE TRIGGER csat_{table}_{event} AFTER {event.upper()} ON {table} "  # noqa: S608
                    "BEGIN UPDATE data_version SET version = version + 1 WHERE id = 1; END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TRACKED:
            op.execute(f"DROP TRIGGER csat_{table}_change ON {table}")
            op.execute(f"DROP TRIGGER csat_{table}_truncate ON {table}")
        op.execute("DROP FUNCTION csat_data_changed()")
    else:
        for table in TRACKED:
            for event in EVENTS:
                op.execute(f"DROP TRIGGER csat_{table}_{event}")
    with op.batch_alter_table("sync_outputs") as batch:
        batch.drop_column("report_detail")
        batch.drop_column("report_key")
    op.drop_table("data_version")
