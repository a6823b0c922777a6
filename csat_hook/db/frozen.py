"""Hot statements run on the connection's own psycopg cursor, compiled once.

Executing a statement through SQLAlchemy costs about 0.1 ms of CPU before and after the
round trip, plus about 10 µs per result column: psycopg builds a ``Column`` object per
column each time ``cursor.description`` is read, and SQLAlchemy reads it on every execution
to set up the result. The delivery worker's claim returns 30 columns, so its Python overhead
was five times the round trip's (``benchmarks/delivery_budget.py``, ``docs/performance.md``).

:class:`FrozenStatement` keeps the Core statement as the one definition of the SQL and does
once what SQLAlchemy does per execution: it compiles the statement for PostgreSQL, keeps its
constant parameters, and looks up each parameter's and each result column's type processors
(a :class:`~csat_hook.db.schema.UTCDateTime` turns aware datetimes into naive UTC and back,
JSON is wrapped for psycopg). Per execution it only processes the caller's values, runs the
SQL on the psycopg cursor and builds each row as a named tuple. A database error goes
through SQLAlchemy's own handler (a :class:`sqlalchemy.exc.DBAPIError` subclass; on a
disconnect, the connection and the pool's older connections invalidated), so callers keep one
way of handling errors. :func:`driver_rows` is the same for hand-written SQL (the webhook's
one-statement batch of closes).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import cast

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any]


class FrozenStatement:
    """A Core statement compiled once for a PostgreSQL (psycopg) dialect.

    Contract: for a statement that returns rows, :meth:`rows` returns, for the same
    parameters, the rows ``conn.execute(statement, params).all()`` returns, as named tuples
    with the statement's column keys (attribute and index access; slices are tuples), their
    values processed by the same types. Parameters are the statement's required bind
    parameters by key; a missing one is a ``KeyError``. Only for statements whose bind
    parameters are plain (no expanding ``IN`` lists, no callables) and whose result columns
    have distinct keys: checked when built.
    """

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        if dialect.name != "postgresql" or dialect.driver != "psycopg":
            raise ValueError("a frozen statement is for PostgreSQL through psycopg")
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        constants: dict[str, Any] = {}
        self._required: list[tuple[str, str, Processor | None]] = []
        for bind, name in compiled.bind_names.items():
            if bind.expanding or bind.literal_execute or bind.callable is not None:
                raise ValueError(f"bind parameter {bind.key!r} is not a plain value")
            if compiled.escaped_bind_names.get(name, name) != name:
                raise ValueError(f"bind parameter {bind.key!r} has a name SQL must escape")
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required:
                self._required.append((bind.key, name, processor))
            else:  # a literal of the statement: the same value every time
                value = bind.effective_value
                constants[name] = processor(value) if processor else value
        self._constants = constants
        columns = list(statement.selected_columns)
        keys = [column.key for column in columns]
        if len(set(keys)) != len(keys):
            raise ValueError("result columns must have distinct keys")
        self.row_type: Any = namedtuple("FrozenRow", keys)  # type: ignore[misc]
        self._processors = [
            (index, processor)
            for index, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
        ]

    def rows(self, conn: sa.Connection, params: Mapping[str, Any]) -> list[Any]:
        """Run the statement on ``conn``'s psycopg connection (in whatever transaction state
        ``conn`` is in) and return every row."""
        values = dict(self._constants)
        for key, name, processor in self._required:
            value = params[key]
            # As SQLAlchemy does, None goes through the processor too (JSON's None is null).
            values[name] = processor(value) if processor else value
        fetched = driver_rows(conn, self.sql, values)
        make = self.row_type._make
        if not self._processors:
            return [make(row) for row in fetched]
        made = []
        for row in fetched:
            values_of = list(row)
            for index, processor in self._processors:
                values_of[index] = processor(values_of[index])
            made.append(make(values_of))
        return made


def driver_rows(conn: sa.Connection, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Run ``sql`` (psycopg's ``%(name)s`` placeholders, values already in the driver's
    types) on ``conn``'s psycopg cursor and return its rows as plain tuples: what
    ``conn.exec_driver_sql(sql, params).all()`` returns, without SQLAlchemy's result set-up.
    It runs in ``conn``'s transaction (begun here if none is, as ``execute`` autobegins, so
    the caller's commit or rollback ends it); a database error is raised as SQLAlchemy raises
    it (see the module docstring). The statement must return rows."""
    if not conn.in_transaction():
        conn.begin()
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None  # a live Connection always has one
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql, params)
        rows = cast(list[tuple[Any, ...]], cursor.fetchall())  # psycopg's default: tuples
    except Exception as exc:
        if not isinstance(exc, conn.dialect.loaded_dbapi.Error):
            raise
        # SQLAlchemy's own handler, as its execution calls it: the matching DBAPIError
        # subclass (parameters hidden: the engine's hide_parameters), handle_error events, and
        # on a disconnect this connection invalidated and the pool's older connections with
        # it (a database restart kills them all; the callers' one retry needs a fresh one).
        conn._handle_dbapi_exception(exc, sql, None, cursor, None)
    finally:
        cursor.close()
    return rows
