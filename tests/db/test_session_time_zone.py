"""Times are stored as naive UTC whatever the PostgreSQL server's own time zone."""

from __future__ import annotations

import os
from datetime import UTC
from datetime import datetime

import pytest
import sqlalchemy as sa

from csat_hook.db.engine import make_engine

PG_ENV = "CSAT_TEST_DATABASE_URL"


def test_every_postgresql_session_is_in_utc_whatever_the_servers_zone():
    """A server set to Europe/Moscow (here: its connection's default, as the server's own
    setting would make it) cast an aware value sent without the column's type 3 h off."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    url = sa.make_url(base).update_query_dict({"options": "-ctimezone=Europe/Moscow"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        for _ in range(2):  # a fresh connection, then one back from the pool
            with engine.begin() as conn:
                assert conn.exec_driver_sql("SHOW TIME ZONE").scalar() == "UTC"
                stored = conn.execute(
                    sa.text("SELECT CAST(:at AS timestamp)"),
                    {"at": datetime(2026, 11, 20, 12, 0, tzinfo=UTC)},
                ).scalar()
                assert stored == datetime(2026, 11, 20, 12, 0)
    finally:
        engine.dispose()
