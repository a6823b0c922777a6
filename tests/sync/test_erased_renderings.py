"""The sync's look-up of erased dialogs (``store.erased_among``) finds a typed ticket that is
a spreadsheet program's rendering of an erased numeric dialog id (``1.23457E+18``, ``987``
for ``000987``), whether the dialog was erased with its survey (``erasures``) or as a dialog
(``erased_dialogs``), however many erasures there are: read a page at a time, every page."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import erased_dialogs
from csat_hook.db.schema import erasures
from csat_hook.sync import store


def test_renderings_of_erased_numeric_dialogs_are_found_on_every_page(
    kit: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(store, "ERASED_PAGE", 100)
    now = kit.now
    numeric = [str(5_000_000_000_000_000_000 + 1_000_000 * i) for i in range(1_000)]
    with kit.engine.begin() as conn:
        conn.execute(
            sa.insert(erasures),
            [
                {"survey_key": f"k{i}", "dialog_id": dialog, "erased_at": now}
                for i, dialog in enumerate([*numeric, "D-5", "12x", "", "1234567890123456789"])
            ],
        )
        conn.execute(
            sa.insert(erased_dialogs),
            [
                {"helpdesk": "desk", "dialog_id": dialog, "erased_at": now}
                for dialog in ("000987", "X-1", "7e+18")
            ],
        )
    tickets = [
        "1.23457E+18",  # the last erasure, past every page before it
        "5,00000E+21",  # none of them: 22 digits
        "5.00000E+18",  # the first erased dialogs of the run
        "5000000000999000000",  # one of the run, kept to 15 digits: itself
        "5000000000999500000",  # between two of them, neither rounding to it
        "#987",  # the dialog erased as such, its zeros dropped
        "0000987",
        "9870",
        "7E+18",  # "7e+18" is no number: erased as typed (the other look-up), no rendering
        "d-5",  # not numeric: the other look-up
        "12",
    ]
    with kit.engine.connect() as conn:
        found = store.erased_among(conn, [], tickets, tickets)
    assert found.tickets == {
        "1.23457e+18",
        "5.00000e+18",
        "5000000000999000000",
        "987",
        "0000987",
        "7e+18",
        "d-5",
    }


def test_no_erased_id_is_read_without_a_ticket_shaped_as_a_rendering(
    kit: Any, monkeypatch: pytest.MonkeyPatch
):
    with kit.engine.begin() as conn:
        conn.execute(
            sa.insert(erasures).values(survey_key="k", dialog_id="00123", erased_at=kit.now)
        )
    read: list[int] = []
    original = store._numeric_erased_ids

    def counted(conn: sa.Connection) -> Any:
        read.append(1)
        return original(conn)

    monkeypatch.setattr(store, "_numeric_erased_ids", counted)
    with kit.engine.connect() as conn:
        assert store.erased_among(conn, [], ["D-1", "T-9"], ["D-1", "T-9"]).tickets == set()
        assert not read
        # The look-up by what is asked reads them; the erased rows read whole already hold them.
        assert store.erased_among(conn, [], ["123"], ["123"], whole=False).tickets == {"123"}
        assert read == [1]
        assert store.erased_among(conn, [], ["123"], ["123"], whole=True).tickets == {"123"}
        assert read == [1]
