"""The data version (migration 0009, sync/report_key.py): every kind of write to every table
the report reads changes it (SQLite: triggers and a counter; PostgreSQL: a fingerprint of the
row versions, no trigger on the webhook path), and the sync can tell when someone else wrote
while it read."""

from __future__ import annotations

import importlib
import itertools
from datetime import UTC
from datetime import datetime

import pytest
import sqlalchemy as sa

from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.db.schema import metadata
from csat_hook.db.schema import surveys
from csat_hook.sync import report_key

MIGRATION = importlib.import_module("csat_hook.db.migrations.versions.0009_data_version")
ROW_CHANGES = importlib.import_module("csat_hook.db.migrations.versions.0017_row_changes")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    create_schema(engine)
    yield engine
    engine.dispose()


def version(engine: sa.Engine) -> str:
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
        # The counter's triggers are csat_<table>_<event>, the row-change list's (migration
        # 0017) csat_<table>_<event>_rows: each table's events, by whose trigger.
        kind, event = (
            ("rows", name.rsplit("_", 2)[1])
            if name.endswith("_rows")
            else (
                "counter",
                name.rsplit("_", 1)[1],
            )
        )
        found.setdefault(table, set()).add(f"{kind}:{event}")
    return found


def test_sqlite_counts_every_table_the_report_reads_and_postgresql_has_no_trigger(engine):
    assert report_key.TRACKED == MIGRATION.TRACKED
    assert report_key.ROW_CHANGES == ROW_CHANGES.TABLES
    with engine.connect() as conn:
        found = triggered_tables(conn)
    if engine.dialect.name == "postgresql":
        # Nothing on the webhook path: a counter row bumped by every writer serialises commits.
        assert found == {}
        return
    events = {"insert", "update", "delete"}
    # One trigger per written row: surveys and answers are counted by the row-change list's
    # sequence (migration 0025 dropped their counter triggers), every other table by the counter.
    assert found == {
        table: {f"rows:{e}" for e in events | {"id"}}
        if table in report_key.ROW_CHANGES
        else {f"counter:{e}" for e in events}
        for table in MIGRATION.TRACKED
    }
    # The sync's caches and bookkeeping are not counted: writing them changes no report.
    assert not {"sync_state", "sync_row_digests", "sync_outputs", "sync_locks"} & set(found)


def row_for(table: sa.Table, survey_id: int) -> dict[str, object]:
    """The smallest row ``table`` accepts: every required column without a default."""
    row: dict[str, object] = {}
    for column in table.c:
        if column.nullable or column.default is not None or column.server_default is not None:
            continue
        if column.primary_key and isinstance(column.type, sa.BigInteger | sa.Integer):
            continue  # the database numbers it
        kind = getattr(column.type, "impl", column.type)  # a TypeDecorator's storage type
        if isinstance(kind, sa.DateTime):
            row[column.name] = NOW
        elif isinstance(kind, sa.JSON):
            row[column.name] = {}
        elif isinstance(kind, sa.Integer):  # BigInteger too
            row[column.name] = survey_id
        else:
            row[column.name] = f"{table.name[:6]}-1"
    return row


@pytest.mark.parametrize("name", report_key.TRACKED)
def test_an_insert_update_and_delete_of_every_tracked_table_each_change_the_version(engine, name):
    with engine.begin() as conn:
        survey_id = conn.execute(sa.insert(surveys).returning(surveys.c.id), [survey(1)]).scalar()
    table = metadata.tables[name]
    seen = [version(engine)]
    with engine.begin() as conn:
        conn.execute(sa.insert(table), [row_for(table, survey_id or 1)])
    seen.append(version(engine))
    first = next(c for c in table.c if not c.primary_key and not c.foreign_keys)
    with engine.begin() as conn:
        conn.execute(sa.update(table).values({first.name: first}))  # same value, new version
    seen.append(version(engine))
    with engine.begin() as conn:
        conn.execute(sa.delete(table))
    seen.append(version(engine))
    # Each write moves it (on PostgreSQL the last may give back the first: the same data).
    assert all(a != b for a, b in itertools.pairwise(seen)), name
    assert len(set(seen[:3])) == 3, name


def test_insert_update_delete_each_bump_and_a_statement_that_changes_nothing_does_not(engine):
    start = version(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(surveys), [survey(1), survey(2)])
    after_insert = version(engine)
    assert after_insert != start
    with engine.begin() as conn:
        conn.execute(sa.update(surveys).where(surveys.c.id < 0).values(team="T"))
        conn.execute(sa.delete(surveys).where(surveys.c.id < 0))
    assert version(engine) == after_insert
    with engine.begin() as conn:
        conn.execute(sa.update(surveys).values(team="T"))
    after_update = version(engine)
    assert after_update != after_insert
    with engine.begin() as conn:
        conn.execute(sa.delete(surveys).where(surveys.c.dialog_id == "D-1"))
    assert version(engine) not in (after_update, after_insert, start)


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
    assert settled == version(engine) or (engine.dialect.name == "postgresql" and settled is None)
    assert version(engine) != first


def test_postgresql_settled_notices_another_writer_and_never_waits_for_one(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers from BEGIN: nobody writes while the sync reads")
    with engine.begin() as conn:
        conn.execute(sa.insert(surveys), [survey(n) for n in range(3)])
    with engine.connect() as reader, reader.begin():
        first = report_key.read_version(reader)
        with engine.begin() as writer:  # commits while the reader reads
            writer.execute(sa.update(surveys).values(team="T"))
        assert report_key.settled(reader, first) is None
    with engine.connect() as reader, reader.begin():
        first = report_key.read_version(reader)
        reader.execute(sa.update(surveys).values(channel="email"))  # the reader writes
        # An uncommitted writer elsewhere neither blocks the reader nor counts yet.
        with engine.connect() as writer, writer.begin():
            writer.execute(sa.text("SET LOCAL lock_timeout = '1s'"))
            writer.execute(sa.insert(surveys), [survey(9)])
            assert report_key.settled(reader, first) is None  # its own write changed it
    with engine.connect() as reader, reader.begin():
        first = report_key.read_version(reader)
        reader.execute(sa.select(surveys)).all()
        assert report_key.settled(reader, first) == first


def test_a_snapshot_holds_no_writer_back_and_reads_one_state_with_its_version(engine):
    from csat_hook.db.engine import snapshot

    with engine.begin() as conn:
        conn.execute(sa.insert(surveys), [survey(1)])
    with snapshot(engine) as conn:
        before = report_key.read_version(conn)
        counted = conn.execute(sa.select(sa.func.count()).select_from(surveys)).scalar_one()
        # A writer on another connection begins, writes and commits while the snapshot is
        # open (on SQLite a writing transaction would have held it until the end).
        with engine.begin() as writer:
            writer.execute(sa.insert(surveys), [survey(2)])
        assert conn.execute(sa.select(sa.func.count()).select_from(surveys)).scalar_one() == 1
        assert report_key.settled(conn, before) == before
    assert counted == 1
    assert version(engine) != before
    with snapshot(engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(surveys)).scalar_one() == 2
