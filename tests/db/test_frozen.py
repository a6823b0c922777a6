"""A frozen statement returns what SQLAlchemy's execution returns, and fails as it fails."""

from __future__ import annotations

import time
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db.engine import HeldConnection
from csat_hook.db.engine import make_engine
from csat_hook.db.frozen import FrozenStatement
from csat_hook.db.frozen import driver_rows
from csat_hook.db.schema import UTCDateTime

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

OLD = datetime(2020, 1, 1, tzinfo=UTC)  # a time no row has
metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("at", UTCDateTime()),
    sa.Column("data", sa.JSON()),
    sa.Column("seen", sa.Integer, nullable=False, server_default="0"),
)


@pytest.fixture
def engine(database_url: str) -> Any:
    engine = make_engine(database_url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            things.insert(),
            [
                {
                    "id": 1,
                    "name": "ä\U0001f600",
                    "status": "new",
                    "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                    "data": {"a": [1, None, "x"]},
                },
                {"id": 2, "name": None, "status": "new", "at": None, "data": None},
                {
                    "id": 3,
                    "name": "c",
                    "status": "old",
                    "at": datetime(2025, 12, 31, 23, 59, tzinfo=UTC),
                    "data": [1.5],
                },
            ],
        )
    yield engine
    engine.dispose()


def _touch() -> Any:
    # Literals of every kind (a string, an integer, a NULL), required parameters of several
    # types, a CTE and RETURNING: the shapes the delivery worker's statements have.
    touched = (
        sa.update(things)
        .where(things.c.status == "new", things.c.at.is_distinct_from(sa.bindparam("not_at")))
        .values(seen=things.c.seen + 1, name=sa.func.coalesce(things.c.name, sa.bindparam("name")))
        .returning(things.c.id, things.c.name, things.c.at, things.c.data, things.c.seen)
        .cte("touched")
    )
    return sa.select(
        touched.c.id,
        touched.c.name,
        touched.c.at,
        touched.c.data,
        touched.c.seen,
        sa.literal(None, sa.String).label("nothing"),
        (touched.c.at < sa.bindparam("before", type_=UTCDateTime)).label("earlier"),
    ).order_by(touched.c.id)


def test_rows_equal_sqlalchemys_own_execution(engine: Any) -> None:
    params = {
        "not_at": datetime(2020, 1, 1, tzinfo=UTC),
        "name": "filled",
        "before": datetime(2026, 6, 1, tzinfo=UTC),
    }
    frozen = FrozenStatement(_touch(), engine.dialect)
    with engine.connect() as conn:
        expected = conn.execute(_touch(), params).all()
        conn.rollback()
        got = frozen.rows(conn, params)
        conn.rollback()
    assert [tuple(row) for row in got] == [tuple(row) for row in expected]
    assert got[0]._fields == tuple(expected[0]._fields)
    first = got[0]
    assert first.at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC) and first.at.tzinfo is not None
    assert first.data == {"a": [1, None, "x"]} and first.name == "ä\U0001f600"
    assert got[1].name == "filled" and got[1].at is None and got[1].earlier is None
    assert first[-2:] == (None, True)


def test_it_runs_in_the_callers_transaction(engine: Any) -> None:
    frozen = FrozenStatement(_touch(), engine.dialect)
    params = {"not_at": OLD, "name": None, "before": None}
    with engine.connect() as conn:
        assert [row.seen for row in frozen.rows(conn, params)] == [1, 1]
        conn.rollback()  # undone: the update ran inside the autobegun transaction
        assert [row.seen for row in frozen.rows(conn, params)] == [1, 1]
        conn.commit()
    with engine.connect() as conn:
        assert conn.execute(sa.select(things.c.seen).order_by(things.c.id)).scalars().all() == [
            1,
            1,
            0,
        ]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        assert [row.seen for row in frozen.rows(conn, params)] == [2, 2]
        conn.commit()


def test_a_refused_value_raises_sqlalchemys_error_without_the_value(engine: Any) -> None:
    frozen = FrozenStatement(_touch(), engine.dialect)
    secret = "customer\x00text"
    with engine.connect() as conn:
        with pytest.raises(sa.exc.DataError) as raised:
            frozen.rows(conn, {"not_at": OLD, "name": secret, "before": None})
        assert not raised.value.connection_invalidated
        conn.rollback()
        assert [
            row.id for row in frozen.rows(conn, {"not_at": OLD, "name": "x", "before": None})
        ] == [1, 2]
    assert "customer" not in str(raised.value)


def test_a_lost_connection_is_invalidated_as_sqlalchemy_does(
    engine: Any, database_url: str
) -> None:
    frozen = FrozenStatement(_touch(), engine.dialect)
    admin = make_engine(database_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.begin() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(sa.exc.OperationalError) as raised:
            frozen.rows(conn, {"not_at": OLD, "name": None, "before": None})
        assert raised.value.connection_invalidated and conn.invalidated
    admin.dispose()


def test_a_missing_parameter_is_a_key_error(engine: Any) -> None:
    with engine.connect() as conn, pytest.raises(KeyError):
        FrozenStatement(_touch(), engine.dialect).rows(conn, {"not_at": OLD, "name": None})


def test_only_plain_statements_on_psycopg_are_frozen(engine: Any) -> None:
    with pytest.raises(ValueError, match="not a plain value"):
        FrozenStatement(
            sa.select(things.c.id).where(things.c.id.in_(sa.bindparam("ids", expanding=True))),
            engine.dialect,
        )
    with pytest.raises(ValueError, match="distinct keys"):
        FrozenStatement(sa.select(things.c.id, things.c.id.label("id")), engine.dialect)
    with pytest.raises(ValueError, match="PostgreSQL"):
        FrozenStatement(sa.select(things.c.id), sa.create_engine("sqlite://").dialect)


def test_driver_rows_are_exec_driver_sqls_rows_and_errors(engine: Any) -> None:
    sql = (
        "INSERT INTO things (id, status, name) SELECT * FROM unnest(%(ids)s::int[],"
        " %(statuses)s::text[], %(names)s::text[]) RETURNING id, name, at"
    )
    params = {"ids": [7, 8], "statuses": ["new", "new"], "names": ["g", None]}
    with engine.connect() as conn:
        expected = [tuple(row) for row in conn.exec_driver_sql(sql, params).all()]
        conn.rollback()
        assert driver_rows(conn, sql, params) == expected == [(7, "g", None), (8, None, None)]
        with pytest.raises(sa.exc.IntegrityError) as raised:  # 7 and 8 exist now
            driver_rows(conn, sql, {**params, "names": ["private\u00e9", None]})
        assert not raised.value.connection_invalidated and "private" not in str(raised.value)
        conn.rollback()


def test_a_restart_invalidates_the_pool_so_the_one_retry_gets_a_live_connection(
    engine: Any, database_url: str
) -> None:
    # A database restart kills every pooled connection. SQLAlchemy's handler invalidates the
    # pool's older connections on the first disconnect; without that, the retry would take
    # another dead one from the pool.
    frozen = FrozenStatement(_touch(), engine.dialect)
    params = {"not_at": OLD, "name": None, "before": None}
    pooled = [engine.connect() for _ in range(3)]
    pids = [conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() for conn in pooled]
    for conn in pooled:
        conn.close()
    admin = make_engine(database_url)
    with admin.begin() as other:
        for pid in pids:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    time.sleep(0.2)

    held = HeldConnection()
    try:
        assert [row.id for row in held.run(engine, lambda conn: frozen.rows(conn, params))] == [
            1,
            2,
        ]
    finally:
        held.release()


def test_without_retry_a_dead_held_connection_is_the_callers_error(
    engine: Any, database_url: str
) -> None:
    held = HeldConnection()
    frozen = FrozenStatement(_touch(), engine.dialect)
    params = {"not_at": OLD, "name": None, "before": None}
    pid = held.run(engine, lambda conn: conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
    admin = make_engine(database_url)
    with admin.begin() as other:
        other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    time.sleep(0.2)
    try:
        with pytest.raises(sa.exc.OperationalError):
            held.run(engine, lambda conn: frozen.rows(conn, params), retry=False)
        assert len(held.run(engine, lambda conn: frozen.rows(conn, params), retry=False)) == 2
    finally:
        held.release()


def test_none_goes_through_the_type_processors_as_with_sqlalchemy(engine: Any) -> None:
    # sa.JSON binds Python None as JSON null, not SQL NULL.
    stmt = sa.select(
        sa.func.json_typeof(sa.bindparam("j", type_=sa.JSON)).label("given"),
        sa.func.json_typeof(sa.literal(None, sa.JSON)).label("literal"),
    )
    with engine.connect() as conn:
        expected = tuple(conn.execute(stmt, {"j": None}).one())
        got = tuple(FrozenStatement(stmt, engine.dialect).rows(conn, {"j": None})[0])
    assert got == expected == ("null", "null")


def test_a_literal_rendered_into_the_sql_is_refused(engine: Any) -> None:
    stmt = sa.select(things.c.id).where(things.c.id == sa.bindparam("x", 1, literal_execute=True))
    with pytest.raises(ValueError, match="not a plain value"):
        FrozenStatement(stmt, engine.dialect)
