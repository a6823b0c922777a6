"""Migration 0025 (SQLite counts writes of surveys and answers once): their counter triggers
are dropped, the row-change list's sequence counts them instead, and the data version still
moves with every write of every tracked table, on either side of the migration; going back
puts the counter's triggers back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from csat_hook.db import migrate
from csat_hook.db.engine import make_engine
from csat_hook.sync import report_key
from tests.db.test_data_version import survey
from tests.db.test_data_version import triggered_tables
from tests.db.test_data_version import version

COUNTER = {"counter:insert", "counter:update", "counter:delete"}


@pytest.fixture
def engine(database_url):
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        engine.dispose()
        pytest.skip("PostgreSQL has neither trigger: the migration does nothing there")
    yield engine
    engine.dispose()


def writes_move_the_version(engine: sa.Engine) -> list[str]:
    """The version before and after an insert, an update and a delete of a survey."""
    from csat_hook.db.schema import surveys

    seen = [version(engine)]
    with engine.begin() as conn:
        conn.execute(sa.insert(surveys), [survey(7)])
    seen.append(version(engine))
    with engine.begin() as conn:
        conn.execute(sa.update(surveys).where(surveys.c.dialog_id == "D-7").values(team="T"))
    seen.append(version(engine))
    with engine.begin() as conn:
        conn.execute(sa.delete(surveys).where(surveys.c.dialog_id == "D-7"))
    seen.append(version(engine))
    return seen


def test_up_drops_the_counter_triggers_of_the_listed_tables_only(engine):
    migrate.upgrade(engine, "0024")
    with engine.connect() as conn:
        before = triggered_tables(conn)
    assert all(before[table] >= COUNTER for table in report_key.ROW_CHANGES)
    assert migrate.upgrade(engine) == ("0024", migrate.head_revision())
    with engine.connect() as conn:
        after = triggered_tables(conn)
    for table in report_key.TRACKED:
        expected = before[table] - COUNTER if table in report_key.ROW_CHANGES else before[table]
        assert after[table] == expected, table
    seen = writes_move_the_version(engine)
    assert len(set(seen)) == len(seen)


def test_down_puts_the_counter_triggers_back_and_writes_move_the_version(engine):
    migrate.upgrade(engine, "0024")
    with engine.connect() as conn:
        before = triggered_tables(conn)
    migrate.upgrade(engine)
    assert migrate.downgrade(engine, "0024") == "0024"
    with engine.connect() as conn:
        assert triggered_tables(conn) == before
    seen = writes_move_the_version(engine)
    assert len(set(seen)) == len(seen)
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
