"""Migration 0028 (surveys by the lowered e-mail): up adds the index, down drops it; and every
statement a look-back policy's batch runs against ``surveys`` is an index search on both
databases, whatever the table holds (the cool-down by e-mail read every survey of the
helpdesk on SQLite and the whole table on PostgreSQL, for every close)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from csat_hook.db import migrate
from csat_hook.db.schema import surveys
from csat_hook.intake import store

NAME = "ix_surveys_helpdesk_customer_email_folded"
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def _indexes(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":  # SQLAlchemy does not reflect expression indexes
            query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'surveys'"
        else:
            query = (
                "SELECT indexname FROM pg_indexes"
                " WHERE tablename = 'surveys' AND schemaname = current_schema()"
            )
        return {str(row[0]) for row in conn.execute(sa.text(query))}


def test_up_adds_the_index_and_down_drops_it(engine):
    migrate.upgrade(engine, "0027")
    assert NAME not in _indexes(engine)
    assert migrate.upgrade(engine, "0028") == ("0027", "0028")
    assert NAME in _indexes(engine)
    assert migrate.downgrade(engine, "0027") == "0027"
    assert NAME not in _indexes(engine)
    migrate.upgrade(engine)
    assert NAME in _indexes(engine)


def _plans(engine: sa.Engine, run: Any) -> list[str]:
    """The plan of each SELECT on surveys that ``run(conn)`` sends, as the database explains
    it with the same parameters (PostgreSQL told to avoid sequential scans: on a small table
    it would rather read it all, and the question is whether an index serves the query)."""
    sent: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM surveys" in statement:
            sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    assert sent
    plans = []
    with engine.begin() as conn:
        sqlite = engine.dialect.name == "sqlite"
        if not sqlite:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        for statement, parameters in sent:
            explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            rows = conn.exec_driver_sql(explain + statement, parameters).all()
            plans.append("\n".join(str(row[-1] if sqlite else row[0]) for row in rows))
    return plans


def test_every_look_back_is_an_index_search(engine):
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            surveys.insert(),
            [
                {
                    "helpdesk": "cw",
                    "dialog_id": f"D-{n}",
                    "customer_id": f"c-{n}",
                    "customer_email": f"Customer{n}@Example.COM",
                    "status": "sent",
                    "created_at": NOW,
                }
                for n in range(2000)
            ],
        )
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE surveys"))  # as autovacuum would have, by now
    keys = {
        ("dialog", "cw", "D-1"),
        ("customer", "cw", "c-1"),
        ("email", "cw", "customer1@example.com"),
        ("email", "cw", "customer2@example.com"),
    }
    since = dict.fromkeys(("dialog", "customer", "email"), NOW - timedelta(days=7))
    found: dict[Any, datetime] = {}
    plans = _plans(engine, lambda conn: found.update(store.latest_surveys(conn, keys, since)))

    assert len(plans) == 3  # one statement per kind of key
    # Each searched by its key, not every survey of the helpdesk read by an index on it.
    if engine.dialect.name == "sqlite":
        searched = {"dialog_id=?", "customer_id=?", "<expr>=?"}
        for plan in plans:
            assert "SCAN surveys" not in plan, plan
        for key in searched:
            assert any("SEARCH surveys USING" in p and key in p for p in plans), (key, plans)
    else:
        searched = {
            "(dialog_id)::text =",
            "(customer_id)::text =",
            "lower((customer_email)::text) =",
        }
        conditions = ["\n".join(x for x in p.splitlines() if "Index Cond" in x) for p in plans]
        for plan in plans:
            assert "Seq Scan" not in plan, plan
        for key in searched:
            assert any(key in c for c in conditions), (key, plans)
    assert any(NAME in plan for plan in plans), plans
    assert set(found) == keys
    assert all(at == NOW for at in found.values())
