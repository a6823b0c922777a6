"""A private PostgreSQL schema for one benchmark run, so runs never see each other's rows."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from csat_hook.db.config import normalize_database_url
from csat_hook.db.engine import make_engine


def private_schema(url: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """Create a schema ``<prefix>_<random>`` on the PostgreSQL database at ``url``; return a
    URL whose connections use it (``search_path``) and a function that drops it."""
    base = sa.make_url(normalize_database_url(url))
    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base.render_as_string(hide_password=False))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = base.update_query_dict({"options": f"-csearch_path={schema}"})

    def drop() -> None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return scoped.render_as_string(hide_password=False), drop


def bench_database(
    url: str | None, folder: Path, prefix: str, cleanup: contextlib.ExitStack
) -> str:
    """The database a benchmark run uses: a SQLite file in ``folder`` without ``url``; for a
    PostgreSQL ``url``, a private schema dropped when ``cleanup`` closes (a run never sees
    another's rows, and never touches the database's own tables)."""
    if not url:
        return f"sqlite:///{folder / 'bench.sqlite3'}"
    if sa.make_url(normalize_database_url(url)).get_backend_name() != "postgresql":
        return url
    scoped, drop = private_schema(url, prefix)
    cleanup.callback(drop)
    return scoped
