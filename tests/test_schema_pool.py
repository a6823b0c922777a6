"""The pool of migrated PostgreSQL schemas (``tests/schema_pool.py``) lends a schema that
is exactly what a fresh fill gives, whatever the test before did with it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests import schema_template
from tests.schema_pool import SchemaPool

PG_ENV = "CSAT_TEST_DATABASE_URL"

# Changes of definition a test could make; none may reach the next test.
DDL = [
    "ALTER TABLE {s}.surveys ADD COLUMN extra integer",
    "CREATE TABLE {s}.extra (id integer)",
    "CREATE INDEX extra_ix ON {s}.outbox (status)",
    "ALTER TABLE {s}.outbox ALTER COLUMN status SET DEFAULT 'x'",
    "ALTER SEQUENCE {s}.outbox_id_seq INCREMENT BY 5",
    "CREATE FUNCTION {s}.extra() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
    "ALTER TABLE {s}.link_clicks DROP CONSTRAINT fk_link_clicks_survey_id_surveys",
    "ALTER TABLE {s}.outbox RENAME COLUMN status TO state",
]


@pytest.fixture
def base() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"the schema pool is PostgreSQL's: set {PG_ENV}")
    return url


@pytest.fixture
def pool(base: str) -> Iterator[SchemaPool]:
    made = SchemaPool(base)
    yield made
    made.close()


def rows(pool: SchemaPool, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with pool.conn.cursor() as cur:
        cur.execute(sql, params)
        found = cur.fetchall()
    pool.conn.commit()
    return [tuple(row) for row in found]


def snapshot(pool: SchemaPool, schema: str) -> dict[str, Any]:
    """The schema's definition (its name left out), each table's rows, and each sequence's
    next value."""
    columns = rows(
        pool,
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
        " pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE c.relnamespace = %s::regnamespace AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY 1, 2",
        schema,
    )
    relations = rows(
        pool,
        "SELECT relname, relkind FROM pg_class WHERE relnamespace = %s::regnamespace ORDER BY 1",
        schema,
    )
    constraints = rows(
        pool,
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE connamespace = %s::regnamespace ORDER BY 1",
        schema,
    )
    indexes = rows(
        pool, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1", schema
    )
    functions = rows(
        pool, "SELECT proname FROM pg_proc WHERE pronamespace = %s::regnamespace", schema
    )
    statistics = rows(
        pool,
        "SELECT count(*) FROM pg_statistic s JOIN pg_class c ON c.oid = s.starelid"
        " WHERE c.relnamespace = %s::regnamespace",
        schema,
    )
    sequences = rows(
        pool,
        "SELECT sequencename, increment_by FROM pg_sequences WHERE schemaname = %s ORDER BY 1",
        schema,
    )
    content: dict[str, Any] = {}
    for name, kind in relations:
        relation = f'"{schema}"."{name}"'
        if kind == "r":
            content[name] = sorted(rows(pool, f"SELECT r::text FROM {relation} r"))  # noqa: S608
        elif kind == "S":
            # The value the next nextval gives, without taking it.
            content[name] = rows(pool, f"SELECT last_value, is_called FROM {relation}")  # noqa: S608
    definition = [columns, relations, constraints, indexes, functions, statistics, sequences]
    return {"definition": repr(definition).replace(schema, "<schema>"), "content": content}


def write_everywhere(pool: SchemaPool, schema: str) -> None:
    """A row in every table (replacing the rows the migrations put there) and a value taken
    from every sequence, as a test that used every table would leave them."""
    layout = pool.layout
    assert layout is not None
    values = {"integer": "1", "bigint": "1", "smallint": "1", "boolean": "true", "json": "'{}'"}
    for table in reversed(layout.tables):  # parents first: the rows reference id 1
        columns = rows(
            pool,
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s",
            schema,
            table,
        )
        names = ", ".join(f'"{name}"' for name, _ in columns)
        given = ", ".join(
            "now()" if kind.startswith("timestamp") else values.get(kind, "'written'")
            for _, kind in columns
        )
        with pool.conn.cursor() as cur:
            cur.execute(f'DELETE FROM "{schema}"."{table}"')  # noqa: S608
            cur.execute(f'INSERT INTO "{schema}"."{table}" ({names}) VALUES ({given})')  # noqa: S608
        pool.conn.commit()
    for sequence in layout.sequences:
        rows(pool, f'SELECT nextval(\'"{schema}"."{sequence}"\')')


def lent(pool: SchemaPool, base: str) -> str:
    dumped = schema_template.pg_dumped(base)
    if dumped is None:
        pytest.skip("pg_dump cannot dump this server: there is no pool")
    schema = pool.create()
    pool.lend(schema, *dumped)
    return schema


def oid(pool: SchemaPool, schema: str) -> int | None:
    found = rows(pool, "SELECT oid FROM pg_namespace WHERE nspname = %s", schema)
    return int(found[0][0]) if found else None


def test_a_reused_schema_is_a_fresh_one_after_a_test_wrote_to_every_table(
    pool: SchemaPool, base: str
) -> None:
    fresh = lent(pool, base)
    used = lent(pool, base)
    expected = snapshot(pool, fresh)
    assert snapshot(pool, used) == expected
    write_everywhere(pool, used)
    written = snapshot(pool, used)
    assert written["definition"] == expected["definition"]
    unchanged = [n for n, v in written["content"].items() if v == expected["content"][n]]
    assert unchanged == []  # else this test proves nothing for those tables
    first = oid(pool, used)
    pool.release(used)
    again = lent(pool, base)
    assert oid(pool, again) == first  # the same schema, reused under the new name
    assert snapshot(pool, again) == expected


@pytest.mark.parametrize("statement", DDL)
def test_a_schema_whose_definition_a_test_changed_is_not_lent_again(
    pool: SchemaPool, base: str, statement: str
) -> None:
    fresh = lent(pool, base)
    used = lent(pool, base)
    expected = snapshot(pool, fresh)
    with pool.conn.cursor() as cur:
        cur.execute(statement.format(s=f'"{used}"'))
    pool.conn.commit()
    assert snapshot(pool, used)["definition"] != expected["definition"]  # a change it sees
    first = oid(pool, used)
    pool.release(used)
    assert oid(pool, used) is None  # dropped
    again = lent(pool, base)
    assert oid(pool, again) != first
    assert snapshot(pool, again) == expected


def test_a_dead_process_schemas_are_swept_and_a_live_ones_are_not(
    pool: SchemaPool, base: str
) -> None:
    crashed = SchemaPool(base)
    left = crashed.create()
    crashed.conn.close()  # as a killed worker's connection: its lock goes, its schema stays
    live = pool.create()
    SchemaPool(base).close()  # a new session sweeps
    assert oid(pool, left) is None
    assert oid(pool, live) is not None
    pool.release(live)
