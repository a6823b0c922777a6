"""``strip_format``: the spaces and Unicode format characters (category Cf) at a cell's ends
go, those within stay, a cell of nothing else is blank. Pinned against the character-by-
character reading it replaced (``reference``), for every character this Python's Unicode
database knows, so that reading a cell in C reads it the same."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from csat_hook.sync import cell_text
from csat_hook.sync.cell_text import strip_format


def is_edge(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) == "Cf"


def reference(text: str) -> str:
    """The reading ``strip_format`` had: each end walked one character at a time."""
    start, end = 0, len(text)
    while start < end and is_edge(text[start]):
        start += 1
    while end > start and is_edge(text[end - 1]):
        end -= 1
    return text[start:end]


EVERY = [chr(code) for code in range(sys.maxunicode + 1)]
EDGES = "".join(char for char in EVERY if is_edge(char))

CELLS = {
    "ascii spaces": " \t 4 \r\n",
    "ascii inside": "a b",
    "zero-width space at the edges": "\u200b4\u200b",
    "byte order mark first": "\ufeff12/05/2026 15:00",
    "bidi marks around": "\u200e\u202a5\u202c\u200f",
    "inside kept": "4\u200b5",
    "time with a mark inside": "\u200b15:\u200b00\u200b",
    "alone": "\u200b",
    "only invisible and spaces": "\u00a0\u200b \u2060\ufeff\u3000",
    "mixed with spaces": " \u00a0\u200b 4\u2009\u200d 5 \u200c\t",
    "no edge, not ascii": "отлично",
    "tags and language marks": "\U000e0001\U000e0041ok\U000e007f",
    "soft hyphen and arabic marks": "\u00ad\u0600\u061cok\u06dd",
    "surrogate left alone": "\ud800\u200b",
    "empty": "",
    "a cell of nothing but edges": EDGES,
    "every edge around a word": EDGES + "слово" + EDGES[::-1],
    "long invisible run": "\u200b\ufeff\u200e" * 20_000,
    "long invisible runs around": "\u200b" * 30_000 + "x\u200by" + "\u2060" * 30_000,
}


@pytest.mark.parametrize("cell", CELLS.values(), ids=CELLS.keys())
def test_a_cell_reads_as_before(cell: str) -> None:
    assert strip_format(cell) == reference(cell)


def test_every_edge_character_goes_at_either_end_and_stays_inside() -> None:
    for char in EDGES:
        assert strip_format(char) == "", hex(ord(char))
        assert strip_format(f"{char}4{char}5{char}") == f"4{char}5", hex(ord(char))


def test_every_other_character_stays() -> None:
    kept = [char for char in EVERY if not is_edge(char)]
    assert [strip_format(f"\u200b {char}\ufeff") for char in kept] == kept


def test_an_edge_character_missing_from_the_list_is_read_as_one_all_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A format character of a later Unicode than the list's (as a list of the space alone
    makes every other one): read as the character-by-character reading did, and listed."""
    monkeypatch.setattr(cell_text, "_edges", [" "])
    for cell in CELLS.values():
        assert strip_format(cell) == reference(cell)
    assert set(cell_text._edges[0]) <= set(EDGES)
    assert {"\u200b", "\ufeff", "\U000e007f"} <= set(cell_text._edges[0])
