"""Alembic environment: runs on the connection csat-hook hands it (see csat_hook.db.migrate)."""

from __future__ import annotations

from alembic import context

from csat_hook.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `csat-hook db upgrade`, which configures them")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTERs need batch mode
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
