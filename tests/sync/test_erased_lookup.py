"""The sync's look-up of erased surveys and dialogs (``store.erased_among``): when the erased
rows are few beside what a sync asks about (a first sync asks about every answer's dialog),
they are read whole and matched in Python, in a handful of statements however much is
asked, with the same answer as the look-up of what is asked in the database (kept for an
erased set too large to read), to the character: the database's case folding of the
erased ids, ``ticket_form``, the spellings, and exact equality of keys and dialogs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from csat_hook.db.engine import make_engine
from csat_hook.db.schema import erased_dialogs
from csat_hook.db.schema import erasures
from csat_hook.sync import store

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def engine(migrated_url: str) -> Iterator[sa.Engine]:
    built = make_engine(migrated_url)
    yield built
    built.dispose()


def record(
    conn: sa.Connection, keyed: list[tuple[str, str]], as_dialogs: list[tuple[str, str]]
) -> None:
    """Erasures of surveys (``(survey_key, dialog_id)``) and of dialogs (``(helpdesk,
    dialog_id)``), as ``csat-hook erase`` records them."""
    if keyed:
        conn.execute(
            sa.insert(erasures),
            [{"survey_key": k, "dialog_id": d, "erased_at": NOW} for k, d in keyed],
        )
    if as_dialogs:
        conn.execute(
            sa.insert(erased_dialogs),
            [{"helpdesk": h, "dialog_id": d, "erased_at": NOW} for h, d in as_dialogs],
        )


def statements(engine: sa.Engine) -> list[str]:
    """The statements ``engine`` runs from now on (until the engine is disposed)."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", count)
    return seen


def test_a_few_erasures_cost_a_few_statements_however_much_is_asked(engine: sa.Engine):
    with engine.begin() as conn:
        record(conn, [("key-7", "D-7"), ("key-x", "X-1")], [("desk", "d-9"), ("other", "#Q-2")])
    keys = [f"key-{i}" for i in range(10_000)]
    dialogs = [f"D-{i}" for i in range(10_000)]
    tickets = ["#d-7", " q-2 ", "D-123"]
    seen = statements(engine)
    with engine.connect() as conn:
        found = store.erased_among(conn, keys, dialogs, tickets)
    assert len(seen) <= 4, seen
    assert found == store.Erased(
        keys={"key-7"},
        dialogs={"D-7"},
        pairs=set(),
        tickets={"d-7", "q-2"},
        pair_forms={("desk", "d-9"), ("other", "q-2")},
    )


def test_many_erasures_beside_little_asked_are_looked_up_in_the_database(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
):
    """Reading a thousand erased rows to answer for one dialog costs more than asking."""
    with engine.begin() as conn:
        record(conn, [(f"k{i}", f"D-{i}") for i in range(1_000)], [])
    read: list[int] = []
    original = store._erased_rows

    def counted(*args: Any) -> Any:
        rows = original(*args)
        read.extend([len(rows.keyed)] if rows is not None else [])
        return rows

    monkeypatch.setattr(store, "_erased_rows", counted)
    with engine.connect() as conn:
        assert store.erased_among(conn, ["k5"], ["d-5"], ["d-5"]).tickets == {"d-5"}
        assert not read
        assert store.erased_among(conn, ["k5"], [f"D-{i}" for i in range(500)]).keys == {"k5"}
        assert read == [1_000]


def test_a_database_folding_ascii_its_own_way_is_asked_every_spelling(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
):
    """A database whose lower() differs from Python's on ASCII (a Turkish locale's "I") is
    not second-guessed: every spelling is folded by it, the answer the same."""
    monkeypatch.setattr(store, "FOLD_PROBE", "\u0130")  # no database lowers it as Python does
    with engine.begin() as conn:
        record(conn, [("k", "D-7")], [("desk", "Q-2")])
    with engine.connect() as conn:
        found = store.erased_among(conn, [], ["d-7", "Q-2"], ["d-7", "#q-2"], whole=True)
        assert found == store.erased_among(conn, [], ["d-7", "Q-2"], ["d-7", "#q-2"], whole=False)
    assert found.tickets == {"d-7", "q-2"}


# Characters whose case the databases fold differently from Python, or not at all
# (SQLite's lower() is ASCII-only; PostgreSQL's maps "İ" and the Kelvin sign "K" to ASCII),
# or that NFKC and a ticket's form change ("Ｄ" is "D", "ﬁ" is "fi").
PIECES = ["a", "D", "d", "k", "K", "i", "I", "ı", "İ", "ß", "ẞ", "ä", "Ä", "Ｄ", "ﬁ", "\u212a"]
PIECES += ["0", "1", "7", "9", "-", "#", " ", "E+", ".", ","]
ids = st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join)
numeric = st.integers(min_value=0, max_value=10**20).map(str) | st.sampled_from(
    ["000987", "1234567890123456789", "5000000000001000000"]
)


def variants(dialog: str) -> list[str]:
    """How a dialog id may be asked about: as stored, in another case, as a ticket is typed,
    or as a spreadsheet program showed a numeric one."""
    shown = [dialog, dialog.upper(), dialog.lower(), dialog.swapcase(), f"#{dialog}"]
    shown += [f" {dialog} ", f"# {dialog.upper()}", dialog.casefold()]
    if dialog.isascii() and dialog.isdigit():
        shown += [dialog.lstrip("0") or "0", f"{float(int(dialog)):.5E}"]
    return shown


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    erased = draw(st.lists(ids | numeric, min_size=1, max_size=8))
    keyed = {f"key-{i}": dialog for i, dialog in enumerate(erased) if draw(st.booleans())}
    as_dialogs = {
        (draw(st.sampled_from(["desk", "Desk", "other"])), dialog)
        for dialog in erased
        if draw(st.booleans())
    }
    near = [v for dialog in erased for v in variants(dialog)]
    asked = st.sampled_from(near) | ids | numeric
    keys = draw(st.lists(st.sampled_from([*keyed, "KEY-0", "key-99"]), max_size=6))
    return {
        "keyed": sorted(keyed.items()),
        "as_dialogs": sorted(as_dialogs),
        "keys": keys,
        "dialogs": draw(st.lists(asked, max_size=12)),
        "tickets": draw(st.lists(asked, max_size=12)),
    }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
# The Kelvin sign: lowered to "k" by PostgreSQL and Python, kept by SQLite; its form is "k".
@example(
    case={
        "keyed": [("key-0", "\u212a7")],
        "as_dialogs": [],
        "keys": [],
        "dialogs": [],
        "tickets": ["k7"],
    }
)
# "İ": lowered to "i" by PostgreSQL, kept by SQLite, "i" and a dot by Python; its form is
# "i" and a dot, which the ticket typed so names.
@example(
    case={
        "keyed": [],
        "as_dialogs": [("desk", "\u0130-1")],
        "keys": [],
        "dialogs": ["I-1"],
        "tickets": ["i-1", "i\u0307-1"],
    }
)
def test_read_whole_or_looked_up_the_erased_are_the_same(engine: sa.Engine, case: dict[str, Any]):
    with engine.connect() as conn, conn.begin() as transaction:
        record(conn, case["keyed"], case["as_dialogs"])
        asked = (case["keys"], case["dialogs"], case["tickets"])
        whole = store.erased_among(conn, *asked, whole=True)
        looked_up = store.erased_among(conn, *asked, whole=False)
        transaction.rollback()
    assert whole == looked_up
