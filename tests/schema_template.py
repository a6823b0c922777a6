"""A test database at the current schema without running every migration per test.

Running the migrations took 0.3–0.5 s on SQLite and 0.8–0.9 s on PostgreSQL, for each of
the two thousand tests that build services: a third of the suite's time. Each test process
migrates one template per database kind, once, then gives every test a copy:

* SQLite: the template's file, copied (a few milliseconds);
* PostgreSQL: the template schema's DDL and its ``alembic_version`` row as ``pg_dump``
  wrote them, replayed into a schema with the schema's name replaced (the template's name
  is random and appears nowhere else); that schema is reset and lent again to the next
  test, unless the test changed its definition (``tests/schema_pool.py``). Without
  ``pg_dump`` (or when it cannot dump this server), each test migrates its schema as
  before.

The migrations themselves are still run per test where they are the subject
(``tests/db/``): those tests ask for the empty ``database_url``.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import sqlalchemy as sa

from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from tests.schema_pool import SchemaPool

_sqlite_template: Path | None = None
_pg_ddl: dict[str, tuple[str, str] | None] = {}  # base URL → (template name, DDL), or None
_pg_pools: dict[str, SchemaPool] = {}  # base URL → this process's schemas there


def sqlite_copy(folder: Path, url: str) -> None:
    """Put a database at the current schema at ``url``'s file (which does not exist yet)."""
    global _sqlite_template
    if _sqlite_template is None:
        template = folder / "template.sqlite3"
        engine = make_engine(f"sqlite:///{template}")
        try:
            create_schema(engine)
        finally:
            engine.dispose()  # the last connection closed: the WAL is checkpointed into the file
        _sqlite_template = template
    shutil.copyfile(_sqlite_template, sa.make_url(url).database or "")


def schema_url(base: str, schema: str) -> str:
    """``base`` with ``schema`` as the connection's search path."""
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def pg_create(base: str) -> str:
    """A new empty schema, named so that a later session sweeps it if this process dies
    without dropping it."""
    return _pool(base).create()


def pg_release(base: str, schema: str) -> None:
    """``schema``, from ``pg_create``, after its test: dropped, or kept for the next test
    when it was filled by ``pg_fill`` and can be reset to the fresh state."""
    _pool(base).release(schema)


def pg_close() -> None:
    """Drop this process's pooled schemas (at the end of its session)."""
    for pool in _pg_pools.values():
        pool.close()
    _pg_pools.clear()


def _pool(base: str) -> SchemaPool:
    if base not in _pg_pools:
        _pg_pools[base] = SchemaPool(base)
    return _pg_pools[base]


def pg_dumped(base: str) -> tuple[str, str] | None:
    """The template's name and DDL (``pg_dump``'s), made once a process; None without
    ``pg_dump``."""
    if base not in _pg_ddl:
        _pg_ddl[base] = _pg_template(base)
    return _pg_ddl[base]


def pg_fill(base: str, schema: str) -> None:
    """Bring the empty ``schema`` (from ``pg_create``) to the current schema: a pooled
    schema built from the template's DDL when ``pg_dump`` gave it, else by the
    migrations."""
    dumped = pg_dumped(base)
    if dumped is None:
        engine = make_engine(schema_url(base, schema))
        try:
            create_schema(engine)
        finally:
            engine.dispose()
        return
    template, ddl = dumped
    _pool(base).lend(schema, template, ddl)


def _pg_template(base: str) -> tuple[str, str] | None:
    template = f"csat_tpl_{uuid.uuid4().hex}"
    admin = make_engine(base)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{template}"')
        engine = make_engine(schema_url(base, template))
        try:
            create_schema(engine)
        finally:
            engine.dispose()
        libpq = sa.make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
        command = ["pg_dump", "--dbname", libpq, "--schema", template]
        try:
            dumped = subprocess.run(
                [*command, "--no-owner", "--no-privileges", "--inserts"],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        # psql meta-commands (\restrict, pg_dump 15.14 and later) are not SQL; the session
        # settings it makes (search_path '' among them) end with the fill's connection.
        lines = [line for line in dumped.splitlines() if not line.startswith("\\")]
        if f"CREATE SCHEMA {template};" not in lines:
            return None
        return template, "\n".join(lines)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{template}" CASCADE')
        admin.dispose()
