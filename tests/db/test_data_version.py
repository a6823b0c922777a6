"""The data version (migration 0009, sync/report_key.py): every table the report reads has
its triggers, every kind of write to one is counted in the writing transaction, and the sync
can tell when someone else wrote while it read."""

from __future__ import annotations

import importlib
from datetime import UTC
from datetime import datetime

import pytest
import sqlalchemy as sa

from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.db.schema import data_version
from csat_hook.db.schema import surveys
from csat_hook.sync import report_key

MIGRATION = importlib.import_module("csat_hook.db.migrations.versions.0009_data_version")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return report_key.read_version(conn)


def survey(n: int) -> dict[str, object]:
    return {
        "helpdesk": "generic",
        "dialog_id": f"D-{n}",
        "occurrence": "",
        "token": f"token-{n}",
        "status": "sent",
        "created_at": NOW,
    }


def triggered_tables(conn: sa.Connection) -> dict[str, set[str]]:
    if conn.dialect.name == "postgresql":
        rows = conn.execute(
            sa.text(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
            )
        )
    else:
        rows = conn.execute(
            sa.text("SELECT tbl_name, name FROM sqlite_master WHERE type='trigger'")
        )
    found: dict[str, set[str]] = {}
    for table, name in rows:
        found.setdefault(table, set()).add(name.rsplit("_", 1)[1])
    return found


def test_every_table_the_report_reads_counts_every_kind_of_write(engine):
    with engine.connect() as conn:
        found = triggered_tables(conn)
    events = {"insert", "update", "delete"}
    if engine.dialect.name == "postgresql":
        events.add("truncate")
    assert found == {table: events for table in MIGRATION.TRACKED}
    # The sync's caches and bookkeeping are not counted: writing them changes no report.
    assert not {"sync_state", "sync_row_digests", "sync_outputs", "sync_locks"} & set(found)


def test_insert_update_delete_each_bump_and_a_statement_that_changes_nothing_does_not(engine):
    start = version(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(surveys), [survey(1), survey(2)])
    after_insert = version(engine)
    assert after_insert > start
    with engine.begin() as conn:
        conn.execute(sa.update(surveys).where(surveys.c.id < 0).values(team="T"))
        conn.execute(sa.delete(surveys).where(surveys.c.id < 0))
    assert version(engine) == after_insert
    with engine.begin() as conn:
        conn.execute(sa.update(surveys).values(team="T"))
    after_update = version(engine)
    assert after_update > after_insert
    with engine.begin() as conn:
        conn.execute(sa.delete(surveys).where(surveys.c.dialog_id == "D-1"))
    assert version(engine) > after_update


def test_a_rolled_back_write_is_not_counted(engine):
    start = version(engine)
    with engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(sa.insert(surveys), [survey(1)])
        transaction.rollback()
    assert version(engine) == start


def test_settled_is_the_version_after_the_transactions_own_writes(engine):
    with engine.connect() as conn, conn.begin():
        first = report_key.read_version(conn)
        assert report_key.settled(conn, first) == first  # read only
        conn.execute(sa.insert(surveys), [survey(1)])
        conn.execute(sa.insert(surveys), [survey(2)])
        settled = report_key.settled(conn, first)
    assert settled == version(engine) > first


def test_postgresql_bumps_once_per_transaction_and_settled_notices_another_writer(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers from BEGIN: nobody writes while the sync reads")
    start = version(engine)
    with engine.begin() as conn:
        for n in range(3):
            conn.execute(sa.insert(surveys), [survey(n)])
    assert version(engine) == start + 1

    with engine.connect() as reader, reader.begin():
        first = report_key.read_version(reader)
        with engine.begin() as writer:  # commits while the reader reads
            writer.execute(sa.update(surveys).values(team="T"))
        assert report_key.settled(reader, first) is None
    with engine.connect() as reader, reader.begin():
        first = report_key.read_version(reader)
        with engine.begin() as writer:
            writer.execute(sa.update(surveys).values(team="U"))
        reader.execute(sa.update(surveys).values(channel="email"))  # the reader writes too
        assert report_key.settled(reader, first) is None
    with engine.connect() as conn:
        assert conn.execute(sa.select(data_version.c.xact)).scalar_one() is not None


def _insert_blocks(engine: sa.Engine, n: int) -> bool:
    """Whether an autocommit insert of a survey (a webhook's statement) waits for a lock."""
    with engine.connect() as other:
        try:
            with other.begin():
                other.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
                other.execute(sa.insert(surveys), [survey(n)])
        except sa.exc.OperationalError:
            return True
    return False


def test_a_long_transaction_under_bump_at_end_does_not_hold_up_other_writers(engine):
    """The sync's ingest writes answers for seconds; a webhook's statement must not wait for
    it on the counter's row, and its writes are still counted, once, when it settles."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers from BEGIN whatever the counter does")
    # Without bump_at_end the counter's row lock is held to the end: the check can fail.
    with engine.connect() as long, long.begin():
        report_key.read_version(long)
        long.execute(sa.insert(surveys), [survey(1)])
        assert _insert_blocks(engine, 2)
    start = version(engine)
    with engine.connect() as long:
        transaction = long.begin()
        first = report_key.read_version(long)
        report_key.bump_at_end(long)
        long.execute(sa.insert(surveys), [survey(3)])
        long.execute(sa.update(surveys).where(surveys.c.dialog_id == "D-3").values(team="T"))
        assert not _insert_blocks(engine, 4)  # committed meanwhile: one bump
        assert version(engine) == start + 1
        # Someone else committed while it read: no version describes what it read.
        assert report_key.settled(long, first) is None
        transaction.commit()
    assert version(engine) == start + 2  # its own writes, counted once at the end
    with engine.connect() as long, long.begin():
        first = report_key.read_version(long)
        report_key.bump_at_end(long)
        long.execute(sa.insert(surveys), [survey(5)])
        settled = report_key.settled(long, first)
        assert settled == first + 1
    assert version(engine) == start + 3
    with engine.connect() as long, long.begin():  # read only: nothing to count
        first = report_key.read_version(long)
        report_key.bump_at_end(long)
        assert report_key.settled(long, first) == first
    assert version(engine) == start + 3
