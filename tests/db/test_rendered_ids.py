"""``db.text.RenderedIds``: which typed tickets are a spreadsheet program's rendering of one of
many numeric ids (erased dialogs), the same answer as comparing each ticket with every id by
``spreadsheet_rendering``, found by bisection rather than by that comparison."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from csat_hook.db import text
from csat_hook.db.text import RenderedIds
from csat_hook.db.text import may_be_rendering
from csat_hook.db.text import spreadsheet_rendering
from csat_hook.db.text import ticket_form

LONG = "1234567890123456789"


def brute(ids: list[str], field: str) -> bool:
    """The answer by comparing ``field`` with every id (what the index must agree with)."""
    form = ticket_form(field)
    return any(spreadsheet_rendering(form, dialog) is not None for dialog in ids)


def renderings(dialog: str, rng: random.Random) -> list[str]:
    """What a spreadsheet program may make of ``dialog`` (a numeric id), and near misses."""
    number = int(dialog)
    shown = [dialog.lstrip("0") or "0", "0" + dialog, f"#{dialog}", f" {dialog} "]
    for places in (0, 2, 5, 9, 14):
        scientific = f"{float(number):.{places}E}"
        shown += [scientific, scientific.replace(".", ","), scientific.lower()]
    size = len(str(number))
    if size > 15:
        kept = 10 ** (size - 15)
        shown += [
            str(number // kept * kept),
            str(round(number, 15 - size)),
            str(int(float(number))),
        ]
    near = [str(number + delta) for delta in (-1, 1, rng.randint(2, 10**6))]
    near += [str(int(s) + 10 ** (size - 15)) for s in shown[-1:] if size > 15]
    return shown + near + [f"{float(number) * 1.001:.5E}", dialog + "0", dialog[:-1] or "0"]


def id_pool(rng: random.Random, count: int) -> list[str]:
    """Numeric ids of every length, some zero-padded, some in dense runs, and a few that are
    not numeric at all (left out by the index)."""
    ids: list[str] = []
    while len(ids) < count:
        kind = rng.random()
        if kind < 0.1:  # a run of consecutive ids
            base = rng.randint(10**17, 10**19)
            ids += [str(base + i) for i in range(rng.randint(2, 50))]
        elif kind < 0.2:
            ids.append("0" * rng.randint(1, 4) + str(rng.randint(0, 10**8)))
        elif kind < 0.25:
            ids.append(f"D-{rng.randint(1, 999)}")
        else:
            ids.append(str(rng.randint(1, 10 ** rng.randint(1, 25))))
    return ids


def test_it_agrees_with_comparing_each_ticket_with_every_id():
    rng = random.Random(20261205)
    ids = id_pool(rng, 1000)
    fields = [
        f for dialog in rng.sample(ids, 40) if dialog.isdigit() for f in renderings(dialog, rng)
    ]
    fields += [
        f for dialog in rng.sample(ids, 20) for f in renderings(str(rng.randint(1, 10**20)), rng)
    ]
    fields += [
        "",
        "#",
        "D-12",
        "1.2.3",
        "1E+1000",
        "0",
        "00",
        "１２３",
        "9" * 5000,
        "0" * 5000 + "7",
    ]
    index = RenderedIds(ids)
    answers = {field: index.rendered_by(field) for field in fields}
    assert answers == {field: brute(ids, field) for field in fields}
    assert sum(answers.values()) > 100 and not all(answers.values())  # both kinds tried


def test_many_ids_cost_a_few_comparisons_per_ticket(monkeypatch: pytest.MonkeyPatch):
    """100,000 ids, among them dense runs of 19-digit ones: each ticket is compared with at
    most a few of them, however many there are."""
    rng = random.Random(7)
    ids = [str(rng.randint(10**17, 10**19)) for _ in range(60_000)]
    ids += [str(10**18 + i) for i in range(20_000)]  # consecutive: "1E+18" renders them all
    ids += [str(1234567890123400000 + i * 37) for i in range(20_000)]
    ids += ["000987", LONG]
    index = RenderedIds(ids)
    calls: list[str] = []
    real = text.spreadsheet_rendering

    def counted(field: str, dialog_id: str) -> str | None:
        calls.append(dialog_id)
        return real(field, dialog_id)

    monkeypatch.setattr(text, "spreadsheet_rendering", counted)
    expected = {
        "1.23457E+18": True,
        "1234567890123450000": True,
        "1234567890123456768": True,  # LONG as a sheet's double
        "987": True,
        "#0987": True,
        "1E+18": True,
        "1.00002E+18": True,  # 10**18 + 19,999 is the last of the run, and rounds up to it
        "1.00003E+18": False,
        "1.2345E+17": False,
        "9870": False,
        "98": False,
        "1234567890123400037": True,  # one of the run, as a double reads it
    }
    got = {}
    for field in expected:
        calls.clear()
        got[field] = index.rendered_by(field)
        assert len(calls) <= 4, (field, len(calls))
    monkeypatch.undo()
    assert got == {field: brute(ids, field) for field in expected}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 10**21).map(str),
            st.integers(10**11, 10**13).map(str),
            st.integers(1234567890123400000, 1234567890123500000).map(str),
            st.tuples(st.integers(1, 3), st.integers(0, 10**6)).map(
                lambda p: "0" * p[0] + str(p[1])
            ),
        ),
        max_size=30,
    ),
    st.integers(0, 10**21),
    st.sampled_from(["zeros", "sci0", "sci5", "sci14", "kept", "float", "near", "comma"]),
)
def test_it_agrees_with_every_comparison_for_any_ids(ids: list[str], number: int, shape: str):
    field = {
        "zeros": "00" + str(number),
        "sci0": f"{float(number):.0E}",
        "sci5": f"{float(number):.5E}",
        "sci14": f"{float(number):.14E}",
        "kept": str(number)[:15].ljust(len(str(number)), "0"),
        "float": str(int(float(number))),
        "near": str(number + 1),
        "comma": f"{float(number):.5E}".replace(".", ","),
    }[shape]
    # The field near one of the ids, too: most random numbers render none of them.
    fields = [field]
    if ids:
        near = int(ids[len(ids) // 2])
        fields += [f"{float(near):.5E}", str(near)[:15].ljust(len(str(near)), "0"), str(near + 1)]
    index = RenderedIds(ids)
    for typed in fields:
        assert index.rendered_by(typed) == brute(ids, typed), typed


def test_a_rendering_shape_is_digits_or_scientific():
    assert may_be_rendering("1.23457E+18") and may_be_rendering("00987")
    assert may_be_rendering(" 1,2e18 ")
    assert not may_be_rendering("D-12") and not may_be_rendering("١٢٣")  # Arabic-Indic digits
    assert not may_be_rendering("") and not may_be_rendering("1.2.3")
    assert not RenderedIds(["D-1", "", " "])
    assert len(RenderedIds(["0987", "987", "000987", "12"])) == 2  # values, not spellings
