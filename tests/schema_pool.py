"""A pool of migrated PostgreSQL schemas, reused across one test process's tests.

Filling a schema from the template's DDL and dropping it again cost ≈ 240 ms a test (most
of it the catalog work of seventeen tables with their indexes and constraints, on a server
whose catalogs grow with every schema made). A schema a test has finished with is instead
reset to the state a fresh fill gives, and lent to the next test under that test's name:

* rows: every table that differs from the fresh state loses its rows (``DELETE``, children
  before parents: ``TRUNCATE`` makes new files and costs ≈ 20 ms a table), and the rows the
  migrations insert (``alembic_version``, ``data_version``) are inserted again, by the
  template's own ``INSERT`` statements;
* sequences: set back to their fresh values;
* the schema itself: a fingerprint of its catalog rows (each row's ``ctid`` and ``xmin``,
  which change with any DDL, over the relations, columns, defaults, constraints, indexes,
  triggers, sequences, statistics, functions and types it holds, and everything that
  depends on it) is taken when the schema is filled; a schema whose fingerprint differs
  after a test, or whose reset does not bring back the fresh state, is dropped, and the
  next test gets a freshly filled one.

Every schema this process makes is named ``t_p<key>_…``, where ``<key>`` is a PostgreSQL
advisory lock the process holds for its lifetime: a session that finds such a schema whose
lock it can take knows its maker has ended (a crashed worker) and drops it, and never
touches a schema whose maker is still alive. The pool is dropped at session end.
"""

from __future__ import annotations

import atexit
import random
import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import psycopg
import sqlalchemy as sa

LOCK_CLASS = 0x63736174  # "csat": the advisory-lock class of test processes' schema keys
PREFIX_PATTERN = re.compile(r"^t_p([0-9a-f]{8})_")

# Everything in the schema, through pg_depend (indexed, unlike the catalogs' namespace
# columns on a server whose catalogs have grown), and the catalog rows that define it.
FINGERPRINT = """
WITH RECURSIVE ns AS (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s),
owned(classid, objid) AS (
  SELECT classid, objid FROM pg_depend
  WHERE refclassid = 'pg_namespace'::regclass AND refobjid = (SELECT oid FROM ns)
  UNION
  SELECT d.classid, d.objid FROM pg_depend d JOIN owned o
  ON d.refclassid = o.classid AND d.refobjid = o.objid
),
rel AS (SELECT objid AS oid FROM owned WHERE classid = 'pg_class'::regclass)
SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
  SELECT concat_ws(':', 'n', nspowner, nspacl) x FROM pg_namespace WHERE oid = (SELECT oid FROM ns)
  UNION ALL SELECT concat_ws(':', 'D', classid, objid, objsubid, deptype, refclassid, refobjid)
    FROM owned JOIN pg_depend USING (classid, objid)
  UNION ALL SELECT concat_ws(':', 'c', ctid, xmin) FROM pg_class WHERE oid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws(':', 'a', ctid, xmin) FROM pg_attribute
    WHERE attrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws(':', 'd', ctid, xmin) FROM pg_attrdef
    WHERE adrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws(':', 'k', ctid, xmin) FROM pg_constraint
    WHERE conrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws(':', 'i', ctid, xmin) FROM pg_index
    WHERE indrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws(':', 't', ctid, xmin) FROM pg_trigger
    WHERE tgrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws(':', 'r', ctid, xmin) FROM pg_rewrite
    WHERE ev_class IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws(':', 'p', ctid, xmin) FROM pg_policy
    WHERE polrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws(':', 's', ctid, xmin) FROM pg_sequence
    WHERE seqrelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws(':', 'z', ctid, xmin) FROM pg_statistic
    WHERE starelid IN (SELECT oid FROM rel)
  UNION ALL SELECT concat_ws(':', 'f', ctid, xmin) FROM pg_proc
    WHERE oid IN (SELECT objid FROM owned WHERE classid = 'pg_proc'::regclass)
  UNION ALL SELECT concat_ws(':', 'y', ctid, xmin) FROM pg_type
    WHERE oid IN (SELECT objid FROM owned WHERE classid = 'pg_type'::regclass)
) f
"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class _Layout:
    """What a fresh fill holds, the same in every schema filled from one template."""

    tables: list[str]  # children before parents (foreign keys)
    sequences: dict[str, tuple[int, bool]]  # name → (last_value, is_called) when fresh
    seeds: dict[str, list[str]]  # table → the template's INSERTs of its fresh rows
    template: str
    fresh_rows: dict[str, str] = field(default_factory=dict)  # table → state() of its rows


class SchemaPool:
    """This process's schemas on one server (``base``): the empty ones it makes, and the
    migrated ones it lends, made from the template's DDL."""

    def __init__(self, base: str) -> None:
        libpq = sa.make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
        self.conn: Any = psycopg.connect(libpq)
        self.key = random.getrandbits(31)
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, self.key))
        self.conn.commit()
        self.prefix = f"t_p{self.key:08x}_"
        self.template = ""
        self.ddl = ""
        self.free: list[str] = []
        self.fingerprints: dict[str, str] = {}  # pooled schema → its catalog when fresh
        self.layout: _Layout | None = None
        self.sweep()
        atexit.register(self.close)

    def name(self) -> str:
        """A new schema name of this process (swept after it ends, if left behind)."""
        return f"{self.prefix}{random.getrandbits(48):012x}"

    def sweep(self) -> None:
        """Drop the schemas left by test processes that have ended (their lock is free)."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_p%%'")
            names = [row[0] for row in cur.fetchall()]
        self.conn.commit()
        for schema in names:
            match = PREFIX_PATTERN.match(schema)
            if not match or int(match[1], 16) == self.key:
                continue
            key = int(match[1], 16)
            with self.conn.cursor() as cur:
                cur.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_CLASS, key))
                if not cur.fetchone()[0]:
                    self.conn.commit()
                    continue  # its maker is alive
                try:
                    cur.execute(f"DROP SCHEMA IF EXISTS {_ident(schema)} CASCADE")
                    self.conn.commit()
                finally:
                    self.conn.rollback()
                    cur.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, key))
                    self.conn.commit()

    def create(self) -> str:
        """A new empty schema of this process."""
        schema = self.name()
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE SCHEMA {_ident(schema)}")
        self.conn.commit()
        return schema

    def lend(self, schema: str, template: str, ddl: str) -> None:
        """Replace the empty ``schema`` (from ``create``) by a migrated one under its name:
        one from the pool, or filled from ``ddl``, the template's (``template``: its name,
        which appears nowhere else in it)."""
        if not self.ddl:
            self.template, self.ddl = template, ddl
        pooled = self.free.pop() if self.free else self._fill()
        with self.conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {_ident(schema)}")
            cur.execute(f"ALTER SCHEMA {_ident(pooled)} RENAME TO {_ident(schema)}")
        self.conn.commit()
        self.fingerprints[schema] = self.fingerprints.pop(pooled)

    def release(self, schema: str) -> None:
        """Take ``schema`` back after its test: reset to the fresh state for the next test,
        or dropped if it was not lent, or its catalog changed, or the reset fell short."""
        fresh = self.fingerprints.pop(schema, None)
        if fresh is not None and self._fingerprint(schema) == fresh:
            try:
                # The reset changes rows only: the catalog is as the fingerprint found it.
                if self._reset(schema):
                    self.fingerprints[schema] = fresh
                    self.free.append(schema)
                    return
            except psycopg.Error:
                self.conn.rollback()
        self.drop(schema)

    def drop(self, schema: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA IF EXISTS {_ident(schema)} CASCADE")
        self.conn.commit()

    def close(self) -> None:
        """Drop every schema of this process still there (the free ones, and any a test
        still held) and end the connection (its lock goes with it)."""
        if self.conn.closed:
            return
        try:
            with self.conn.cursor() as cur:
                cur.execute(
                    "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)",
                    (self.prefix,),
                )
                names = [row[0] for row in cur.fetchall()]
            self.conn.commit()
            for schema in names:
                self.drop(schema)
            self.free.clear()
        finally:
            self.conn.close()

    def _fill(self) -> str:
        schema = self.name()
        with self.conn.cursor() as cur:
            # One script of many statements: without parameters psycopg sends it as one
            # simple query.
            cur.execute(self.ddl.replace(self.template, schema).encode())
        self.conn.commit()
        if self.layout is None:
            self.layout = self._read_layout(schema)
        self.fingerprints[schema] = self._fingerprint(schema)
        return schema

    def _fingerprint(self, schema: str) -> str:
        with self.conn.cursor() as cur:
            # Prepared: planning it on a server whose catalogs have grown takes longer
            # than running it.
            cur.execute(FINGERPRINT, {"schema": schema}, prepare=True)
            (value,) = cur.fetchone()
        self.conn.commit()
        return str(value)

    def _read_layout(self, schema: str) -> _Layout:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT c.relname, c.relkind FROM pg_class c"
                " WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'S')",
                (schema,),
            )
            kinds = dict(cur.fetchall())
            cur.execute(
                "SELECT c.relname, p.relname FROM pg_constraint k"
                " JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid"
                " WHERE k.contype = 'f' AND k.connamespace = %s::regnamespace",
                (schema,),
            )
            parents: dict[str, set[str]] = {}
            for child, parent in cur.fetchall():
                if child != parent:
                    parents.setdefault(child, set()).add(parent)
            sequences = {}
            for name in sorted(n for n, kind in kinds.items() if kind == "S"):
                sequence = f"{_ident(schema)}.{_ident(name)}"
                cur.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
                sequences[name] = cur.fetchone()
        self.conn.commit()
        # Parents first, then reversed: children before parents.
        ordered: list[str] = []
        pending = sorted(n for n, kind in kinds.items() if kind == "r")
        while pending:
            ready = [t for t in pending if parents.get(t, set()) <= set(ordered)]
            if not ready:
                raise RuntimeError("a cycle of foreign keys: the pool cannot order deletes")
            ordered += ready
            pending = [t for t in pending if t not in ready]
        seeds: dict[str, list[str]] = {}
        for line in self.ddl.splitlines():
            for table in ordered:
                if line.startswith(f"INSERT INTO {self.template}.{table} "):
                    seeds.setdefault(table, []).append(line)
        layout = _Layout(ordered[::-1], sequences, seeds, self.template)
        layout.fresh_rows = self._row_states(schema, layout)
        return layout

    def _row_states(self, schema: str, layout: _Layout) -> dict[str, str]:
        """Each table's rows, as a digest ('' when it has none)."""
        s = _ident(schema)
        parts = [
            f"SELECT {i}, CASE WHEN EXISTS (SELECT FROM {s}.{_ident(t)}) THEN"  # noqa: S608
            f" (SELECT md5(string_agg(r::text, ',' ORDER BY r::text)) FROM {s}.{_ident(t)} r)"
            " ELSE '' END"
            for i, t in enumerate(layout.tables)
        ]
        parts += [
            f"SELECT {len(layout.tables) + i}, concat_ws(':', last_value, is_called)"  # noqa: S608
            f" FROM {s}.{_ident(q)}"
            for i, q in enumerate(layout.sequences)
        ]
        with self.conn.cursor() as cur:
            cur.execute(" UNION ALL ".join(parts))
            rows = dict(cur.fetchall())
        self.conn.commit()
        names = [*layout.tables, *layout.sequences]
        return {names[i]: str(v) for i, v in rows.items()}

    def _reset(self, schema: str) -> bool:
        """Bring ``schema``'s rows and sequences back to the fresh state; True when it is."""
        layout = self.layout
        assert layout is not None
        states = self._row_states(schema, layout)
        changed = [n for n, state in states.items() if state != layout.fresh_rows[n]]
        if not changed:
            return True
        s = _ident(schema)
        # Names from the catalog, quoted: no outside text reaches these statements.
        statements = [
            f"DELETE FROM {s}.{_ident(t)}"  # noqa: S608
            for t in layout.tables
            if t in changed
        ]
        for table in reversed(layout.tables):
            if table in changed:
                statements += [
                    line.replace(f"INSERT INTO {layout.template}.", f"INSERT INTO {s}.")
                    for line in layout.seeds.get(table, [])
                ]
        for name, (value, called) in layout.sequences.items():
            if name in changed:
                statements.append(
                    f"SELECT setval('{s}.{_ident(name)}', {int(value)}, {str(called).lower()})"
                )
        with self.conn.cursor() as cur:
            cur.execute(";".join(statements).encode())
        self.conn.commit()
        return self._row_states(schema, layout) == layout.fresh_rows
