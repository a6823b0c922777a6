"""Bulk reads and writes for the sync, without SQLAlchemy's per-value type processing.

A first sync writes about 200,000 rows and reads every survey and answer; converting each value
through SQLAlchemy's type system dominates that time. These run the compiled statement through
the driver with one conversion pass per column instead, producing exactly what the normal path
would store and return.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import operator
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from csat_hook.db.schema import UTCDateTime
from csat_hook.db.text import IN_CHUNK
from csat_hook.db.text import in_chunks


def bulk_execute(
    conn: sa.Connection, stmt: Any, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """Execute ``stmt`` for many rows with one conversion pass per column.

    The same as ``conn.execute(stmt, rows)``, without SQLAlchemy's per-value type processing,
    which dominates a bulk import (a first sync writes 200,000 rows). Datetimes are stored as
    :class:`~csat_hook.db.schema.UTCDateTime` stores them; other types go through their own bind
    processor when they have one (JSON), and pass through when they don't.
    """
    keys = list(rows[0])
    compiled = stmt.compile(dialect=conn.dialect, column_keys=keys, for_executemany=True)
    to_db = {}
    for key in keys:
        column_type = table.c[key].type
        if isinstance(column_type, UTCDateTime):
            to_db[key] = _datetimes_to_db(conn.dialect.name)
        elif (
            processor := column_type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        ) is not None:
            to_db[key] = _each(processor)  # e.g. JSON serialisation
    order = list(compiled.positiontup or keys)
    pick = operator.itemgetter(*order)
    convert = [(i, to_db[k]) for i, k in enumerate(order) if k in to_db]
    # Column by column: the rows' values picked as tuples, each converted column made in one
    # comprehension, and the rows put back together by zip (no list and loop per row).
    if len(order) == 1:
        picked: list[Any] = [(pick(row),) for row in rows]
    else:
        picked = list(map(pick, rows))
    if convert:
        columns: list[Any] = list(zip(*picked, strict=True))
        del picked
        for i, fn in convert:
            columns[i] = fn(columns[i])
        picked = list(zip(*columns, strict=True))
        del columns
    params: list[Any] = picked
    if compiled.positiontup is None:  # named parameters (psycopg)
        params = [dict(zip(order, values, strict=True)) for values in params]
    conn.exec_driver_sql(compiled.string, params)


def _each(processor: Any) -> Any:
    """A bind processor applied to a column's values (None stays None)."""

    def convert(values: Sequence[Any]) -> list[Any]:
        return [None if v is None else processor(v) for v in values]

    return convert


def _datetimes_to_db(dialect_name: str) -> Any:
    """A column of datetimes (or None) as :class:`~csat_hook.db.schema.UTCDateTime` stores
    them: one loop per column, no call per value on the usual path (aware UTC)."""
    sqlite_format = dialect_name == "sqlite"

    def one(value: datetime) -> Any:
        if value.tzinfo is not UTC:
            if value.tzinfo is None:
                raise ValueError("naive datetime given to the database; use aware UTC datetimes")
            value = value.astimezone(UTC)
        if sqlite_format:
            # SQLAlchemy's SQLite DATETIME text (microseconds always present), without the
            # "+00:00" that isoformat() appends to an aware value.
            return value.isoformat(" ", "microseconds")[:26]
        return value.replace(tzinfo=None)

    def convert(values: Sequence[datetime | None]) -> list[Any]:
        out: list[Any] = []
        append = out.append
        last: Any = None  # the previous value and its conversion ("recorded_at" is one
        done: Any = None  # object for a whole batch)
        for value in values:
            if value is None:
                append(None)
            elif value is last:
                append(done)
            else:
                last = value
                if value.tzinfo is UTC and sqlite_format:  # the usual path, inlined
                    done = value.isoformat(" ", "microseconds")[:26]
                else:
                    done = one(value)
                append(done)
        return out

    return convert


@functools.cache
def _row_type(names: tuple[str, ...]) -> Any:
    return collections.namedtuple("Row", names)


def bulk_select(conn: sa.Connection, stmt: sa.Select[Any], row_type: Any = None) -> list[Any]:
    """Rows of ``stmt`` as named tuples (``row_type``, else one named after the columns; given
    ``tuple``, the plain tuples the driver gives, for a reader that unpacks them by
    position), read without SQLAlchemy's per-value processing.

    The counterpart of :func:`bulk_execute` for the sync's large reads (every survey, every
    answer): datetimes come back aware UTC as :class:`~csat_hook.db.schema.UTCDateTime`
    returns them, other columns as the driver returns them (only plain types are allowed).
    """
    sql, params, converters, make = _compiled(conn, stmt, row_type)
    return _converted(_fetched(conn.exec_driver_sql(sql, params)), converters, make)


def driver_rows(conn: sa.Connection, stmt: sa.Select[Any], row_type: Any) -> list[Any]:
    """:func:`bulk_select`'s rows for a statement executed through SQLAlchemy, so that its
    compiled form is cached and an ``IN`` list is expanded (as :func:`among` makes them),
    which :func:`bulk_select`'s own compiling does not do."""
    converters = _converters(conn, stmt)
    return _converted(_fetched(conn.execute(stmt)), converters, row_type._make)


def _fetched(result: sa.CursorResult[Any]) -> Sequence[Any]:
    """Every row of ``result`` from the driver's own fetchall, and the result closed:
    iterating the SQLAlchemy result costs a Python-level fetch per row (most of the time of a
    150,000-row read)."""
    try:
        return result.cursor.fetchall() if result.cursor is not None else []
    finally:
        result.close()


ARRAY_CHUNK = 10_000  # values per ``= ANY(array)`` parameter (PostgreSQL)


@contextlib.contextmanager
def unprepared(conn: sa.Connection) -> Iterator[None]:
    """Statements run inside are planned for their own parameters every time (PostgreSQL:
    not prepared). psycopg prepares a statement run five times, and PostgreSQL may then keep
    one generic plan, made while a table was small: the answers, while a first sync stores
    them a part at a time, were scanned whole for every part's look-up (0.6 s a part at
    100,000). ``SET LOCAL plan_cache_mode`` would do it for the whole transaction, every
    insert re-planned too (2 s more for a first sync of 100,000)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    raw: Any = conn.connection.dbapi_connection
    before = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        yield
    finally:
        raw.prepare_threshold = before


def among(
    conn: sa.Connection, column: sa.ColumnElement[Any], values: Iterable[str]
) -> Iterator[sa.ColumnElement[bool]]:
    """Conditions that ``column`` is one of ``values``, a statement's worth each (never
    prepared on PostgreSQL): see :func:`matching`."""
    for match in matching(conn, values):
        yield match(column)


def matching(
    conn: sa.Connection, values: Iterable[str]
) -> Iterator[Callable[[sa.ColumnElement[Any]], sa.ColumnElement[bool]]]:
    """``values`` a statement's worth at a time, each as a function giving the condition
    that a column is one of them (one statement may test several columns against the same
    values). On PostgreSQL one array parameter per :data:`ARRAY_CHUNK` values (``= ANY``):
    10,000 tokens looked up in 0.08–0.12 s where lists of 500 took 0.62 s (each list a
    statement of 500 parameters to bind and plan); elsewhere ``IN`` lists of
    :data:`IN_CHUNK`.

    On PostgreSQL the statements the caller runs while iterating are :func:`unprepared`:
    with one array parameter every chunk is the same statement text, which psycopg would
    prepare from its fifth run on (and a generic plan may scan a table that grew since)."""
    if conn.dialect.name == "postgresql":
        with unprepared(conn):  # until the iteration ends or is abandoned
            for chunk in in_chunks(values, ARRAY_CHUNK):
                # Elements of unbounded length: a cast to the column's VARCHAR(n)[] would
                # cut a longer value to n characters, and compare what was cut.
                array = sa.bindparam(None, chunk, type_=postgresql.ARRAY(sa.String()))
                yield functools.partial(_any_of, array)
        return
    for chunk in in_chunks(values, IN_CHUNK):  # read here: a test sets it smaller
        yield functools.partial(_in_list, chunk)


def _any_of(array: sa.BindParameter[Any], column: sa.ColumnElement[Any]) -> Any:
    return column == sa.any_(array)


def _in_list(chunk: list[str], column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    return column.in_(chunk)


_CURSORS = itertools.count()


def bulk_iter(
    conn: sa.Connection, stmt: sa.Select[Any], row_type: Any = None, *, partition: int = 5_000
) -> Iterator[Any]:
    """:func:`bulk_select`'s rows one at a time, fetched ``partition`` rows at a time: a
    reader that keeps only what it needs of each row never holds them all. On PostgreSQL a
    server-side cursor of the connection's transaction (the driver's own: SQLAlchemy's
    streaming result buffers rows ahead of its cursor); on SQLite the statement is stepped
    as rows are fetched. Exhaust it (or close it) before the connection's next statement."""
    sql, params, converters, make = _compiled(conn, stmt, row_type)
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.dbapi_connection  # psycopg's: named = server-side
        server = raw.cursor(name=f"csat_bulk_{next(_CURSORS)}")
        try:
            server.execute(sql, params)
            while rows := server.fetchmany(partition):
                yield from _converted(rows, converters, make)
        finally:
            server.close()
        return
    result = conn.exec_driver_sql(sql, params)
    try:
        cursor = result.cursor
        while cursor is not None and (rows := cursor.fetchmany(partition)):
            yield from _converted(rows, converters, make)
    finally:
        result.close()


def _compiled(
    conn: sa.Connection, stmt: sa.Select[Any], row_type: Any
) -> tuple[str, Any, list[Any], Callable[[Any], Any]]:
    """The statement's SQL and parameters for the driver, each column's converter (None: as
    the driver gives it) and the row type's constructor."""
    compiled = stmt.compile(dialect=conn.dialect)
    names = tuple(column.key for column in stmt.selected_columns)
    converters = _converters(conn, stmt)
    named = compiled.construct_params()
    params: Any = named
    if compiled.positiontup is not None:
        params = tuple(named[name] for name in compiled.positiontup)
    make = tuple if row_type is tuple else (row_type or _row_type(names))._make
    return compiled.string, params, converters, make


def _converters(conn: sa.Connection, stmt: sa.Select[Any]) -> list[Any]:
    """Each selected column's converter of the driver's value (None: as the driver gives
    it): a datetime as :class:`~csat_hook.db.schema.UTCDateTime` returns it; a column that
    needs any other type processing is refused."""
    converters = []
    for column in stmt.selected_columns:
        if isinstance(column.type, UTCDateTime):
            converters.append(_datetime_from_db(conn.dialect.name))
        elif column.type.dialect_impl(conn.dialect).result_processor(conn.dialect, None):
            raise TypeError(f"{column.key}: needs type processing; use conn.execute")
        else:
            converters.append(None)
    return converters


def _converted(rows: Sequence[Any], converters: list[Any], make: Callable[[Any], Any]) -> list[Any]:
    if not any(converters) or not rows:
        # The drivers' rows are tuples: plain rows are the driver's own (tuple() of a tuple
        # hands it back), in a list of their own.
        return list(rows) if make is tuple else list(map(make, rows))
    # Converted column by column: one comprehension per datetime column instead of a zip and a
    # conditional per value of every row.
    columns: list[Any] = list(zip(*rows, strict=True))
    del rows
    for index, convert in enumerate(converters):
        if convert is not None:
            columns[index] = [None if v is None else convert(v) for v in columns[index]]
    rebuilt = zip(*columns, strict=True)  # tuples: plain rows as they are
    return list(rebuilt) if make is tuple else list(map(make, rebuilt))


def _datetime_from_db(dialect_name: str) -> Any:
    if dialect_name == "sqlite":
        parse = datetime.fromisoformat

        def from_text(value: str) -> datetime:
            # Stored naive UTC. Parsing with the offset appended is several times faster than
            # parsing and then replacing tzinfo (a sync converts ~350,000 of these).
            try:
                return parse(value + "+00:00")
            except ValueError:  # written with an offset by something else
                return parse(value).astimezone(UTC)

        return from_text

    def from_naive(value: datetime) -> datetime:
        # The constructor is about four times faster than value.replace(tzinfo=UTC).
        return datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            UTC,
        )

    return from_naive


class epoch_microseconds(FunctionElement[int]):  # noqa: N801 (SQL function style)
    """A :class:`~csat_hook.db.schema.UTCDateTime` column as whole microseconds since
    1970-01-01 UTC, computed by the database (an integer: exact, no datetime per row in
    Python). Equal to ``(value - epoch) // timedelta(microseconds=1)`` of the datetime the
    column reads back as.
    """

    type = sa.BigInteger()
    inherit_cache = True
    name = "epoch_microseconds"


@compiles(epoch_microseconds)
def _epoch_microseconds(element: epoch_microseconds, compiler: SQLCompiler, **kw: Any) -> str:
    # PostgreSQL: the column is a timestamp without time zone holding UTC, whose epoch is
    # the nominal seconds since 1970-01-01 00:00 (numeric, so exact to the microsecond).
    (column,) = element.clauses
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(column, **kw)}) * 1000000 AS BIGINT)"


@compiles(epoch_microseconds, "sqlite")
def _epoch_microseconds_sqlite(
    element: epoch_microseconds, compiler: SQLCompiler, **kw: Any
) -> str:
    # Stored as SQLAlchemy's naive UTC text "YYYY-MM-DD HH:MM:SS.ffffff". SQLite's date
    # functions keep milliseconds only, and strftime('%s') rounds 23:59:59.9996 up to the
    # next day (across a period edge), so the whole seconds are taken from the text without
    # its fraction and the six digits of the fraction added as an integer. Text in another
    # form (an offset or a "T" written by something else) is first normalised to UTC by
    # SQLite's own parser, to the millisecond.
    (column,) = element.clauses
    x = compiler.process(column, **kw)
    utc = f"strftime('%Y-%m-%d %H:%M:%f', {x})"
    return (
        f"CASE WHEN length({x}) IN (19, 26) AND substr({x}, 11, 1) = ' ' "
        f"THEN CAST(strftime('%s', substr({x}, 1, 19)) AS INTEGER) * 1000000"
        f" + CAST(substr({x}, 21) AS INTEGER) "
        f"ELSE CAST(strftime('%s', substr({utc}, 1, 19)) AS INTEGER) * 1000000"
        f" + CAST(substr({utc}, 21) AS INTEGER) * 1000 END"
    )
