"""A PostgreSQL statement that never ends (waiting on a lock an idle-in-transaction session
holds, say) is cancelled after a bounded time, never holding a delivery thread for good; a
schema upgrade, which may rightly wait or run long, is not."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from csat_hook.db import engine as db_engine
from csat_hook.db.migrate import SCHEMA_LOCK_KEY
from csat_hook.db.migrate import create_schema
from csat_hook.db.migrate import current_revision
from csat_hook.db.migrate import head_revision

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def test_a_statement_waiting_on_a_held_row_is_cancelled(database_url, monkeypatch):
    monkeypatch.setattr(db_engine, "STATEMENT_TIMEOUT_SECONDS", 1)
    engine = db_engine.make_engine(database_url)
    holder = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE held (id int PRIMARY KEY, n int)"))
            conn.execute(sa.text("INSERT INTO held VALUES (1, 0)"))
        locked = threading.Event()

        def hold_the_row() -> None:  # an open psql: BEGIN; SELECT ... FOR UPDATE; (away)
            with holder.begin() as idle:
                idle.execute(sa.text("SELECT * FROM held FOR UPDATE"))
                locked.set()
                time.sleep(6)  # (for ever, in life: without the timeout, the update waited)

        other = threading.Thread(target=hold_the_row)
        other.start()
        try:
            assert locked.wait(10)
            started = time.monotonic()
            with (
                pytest.raises(sa.exc.OperationalError, match="statement timeout"),
                engine.begin() as conn,
            ):
                conn.execute(sa.text("UPDATE held SET n = n + 1 WHERE id = 1"))
            assert time.monotonic() - started < 4
        finally:
            other.join()
        with engine.connect() as conn:  # the URL's own options (its search path) still hold
            assert conn.execute(sa.text("SELECT n FROM held")).scalar_one() == 0
    finally:
        engine.dispose()
        holder.dispose()


def test_the_url_own_statement_timeout_is_kept(database_url, monkeypatch):
    monkeypatch.setattr(db_engine, "STATEMENT_TIMEOUT_SECONDS", 1)
    url = sa.make_url(database_url)
    options = f"{url.query['options']} -c statement_timeout=0"
    engine = db_engine.make_engine(
        url.update_query_dict({"options": options}).render_as_string(hide_password=False)
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_sleep(1.5)"))
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "0"
    finally:
        engine.dispose()


def test_a_schema_upgrade_waits_for_another_one_past_the_timeout(database_url, monkeypatch):
    # Two processes starting together: one upgrades, the other waits on the schema lock. A
    # statement timeout on that wait failed the second start.
    monkeypatch.setattr(db_engine, "STATEMENT_TIMEOUT_SECONDS", 1)
    engine = db_engine.make_engine(database_url)
    holder = sa.create_engine(database_url)
    locked = threading.Event()

    def hold_the_schema_lock() -> None:
        with holder.begin() as conn:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
            locked.set()
            time.sleep(2)

    other = threading.Thread(target=hold_the_schema_lock)
    other.start()
    try:
        assert locked.wait(10)
        create_schema(engine)
        assert current_revision(engine) == head_revision()
    finally:
        other.join()
        engine.dispose()
        holder.dispose()


def test_a_timeout_the_server_side_already_set_is_kept(database_url, monkeypatch):
    # A DBA's ALTER ROLE ... SET statement_timeout stands.
    monkeypatch.setattr(db_engine, "STATEMENT_TIMEOUT_SECONDS", 1)
    role = f"csat_timeout_{time.monotonic_ns()}"
    admin = sa.create_engine(database_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(sa.text(f"ALTER ROLE {role} SET statement_timeout = 4321"))
    engine = db_engine.make_engine(
        sa.make_url(database_url).set(username=role).render_as_string(hide_password=False)
    )
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW statement_timeout")).scalar_one() == "4321ms"
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP ROLE {role}"))
        admin.dispose()
