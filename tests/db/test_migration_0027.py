"""Migration 0027 (SQLite lists a bulk write of answers once): up adds ``row_changes_paused``
and makes the answers' row-change triggers fire only while it is empty; every write of an
answer is listed as before until a writer fills it. Down puts migration 0017's triggers back,
which list every write again, and drops the table."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import sqlalchemy as sa

from csat_hook.db import migrate

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _answer(conn: sa.Connection, n: int) -> None:
    """An answer inserted, updated and deleted, as the service's writers would."""
    values = {
        "survey_key": f"k{n}",
        "token": f"k{n}.tag",
        "helpdesk": "generic",
        "dialog_id": f"D-{n}",
        "agent_key": "7",
        "issued_at": NOW.isoformat(" "),
        "rating": 5,
        "submitted_at": NOW.isoformat(" "),
        "source": "csv",
        "updated_at": NOW.isoformat(" "),
    }
    columns = ", ".join(values)
    marks = ", ".join(f":{name}" for name in values)
    conn.execute(sa.text(f"INSERT INTO answers ({columns}) VALUES ({marks})"), values)  # noqa: S608
    conn.execute(sa.text("UPDATE answers SET rating = 4 WHERE survey_key = :k"), {"k": f"k{n}"})
    conn.execute(sa.text("DELETE FROM answers WHERE survey_key = :k"), {"k": f"k{n}"})


def _listed(conn: sa.Connection) -> list[str]:
    return list(conn.execute(sa.text("SELECT tbl FROM row_changes ORDER BY seq")).scalars())


def _triggers(conn: sa.Connection) -> dict[str, str]:
    rows = conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    return dict(rows.all())


def test_up_lists_every_write_until_paused_and_down_lists_every_write_again(engine):
    if engine.dialect.name == "postgresql":
        # The table only: nothing lists writes there.
        migrate.upgrade(engine)
        assert sa.inspect(engine).has_table("row_changes_paused")
        assert migrate.downgrade(engine, "0026") == "0026"
        assert not sa.inspect(engine).has_table("row_changes_paused")
        return
    migrate.upgrade(engine, "0026")
    with engine.connect() as conn:
        before = _triggers(conn)
    assert migrate.upgrade(engine, "0027") == ("0026", "0027")
    with engine.begin() as conn:
        after = _triggers(conn)
        assert after.keys() == before.keys()
        changed = {name for name in after if after[name] != before[name]}
        assert changed == {f"csat_answers_{e}_rows" for e in ("insert", "update", "delete")}
        _answer(conn, 1)
        assert _listed(conn) == ["answers"] * 3
        conn.execute(sa.text("INSERT INTO row_changes_paused (id) VALUES (1)"))
        _answer(conn, 2)
        conn.execute(
            sa.text(
                "INSERT INTO surveys (helpdesk, dialog_id, occurrence, status, "
                "created_at) VALUES ('generic', 'D-9', '', 'sent', '2026-12-06')"
            )
        )
        assert _listed(conn) == ["answers"] * 3 + ["surveys"]  # surveys are always listed
        conn.execute(sa.text("DELETE FROM row_changes_paused"))
        _answer(conn, 3)
        assert _listed(conn) == ["answers"] * 3 + ["surveys"] + ["answers"] * 3
    assert migrate.downgrade(engine, "0026") == "0026"
    with engine.begin() as conn:
        assert _triggers(conn) == before
        assert not sa.inspect(conn).has_table("row_changes_paused")
        conn.execute(sa.text("DELETE FROM row_changes"))
        _answer(conn, 4)
        assert _listed(conn) == ["answers"] * 3
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
