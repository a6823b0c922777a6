"""Agents' labels in the report: two agents are never shown under one label. A shared name
gets the agent key; two helpdesks' agents with the same key (and name) get their helpdesk too.
"""

from __future__ import annotations

from csat_hook.sync.dataset import Agent
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.report.common import display_names
from csat_hook.sync.titles import tag


def _names(*agents: tuple[str, str, str]) -> list[str]:
    return display_names(Dataset(agents=[Agent(h, k, n, "") for h, k, n in agents]))


def test_two_helpdesks_agents_with_one_key_and_name_get_two_labels() -> None:
    names = _names(
        ("desk", "7", "Anna Petrova"),
        ("other", "7", "Anna Petrova"),
        ("desk", "8", "Anna Petrova"),
        ("desk", "9", "Boris"),
    )
    assert len(set(names)) == 4
    assert names[2] == "Anna Petrova (8)"
    assert names[3] == "Boris"
    assert "other" in names[1] and "7" in names[1]
    assert "desk" in names[0] and "7" in names[0]


def test_two_helpdesks_unnamed_agents_with_one_key_get_two_labels() -> None:
    names = _names(("desk", "7", "7"), ("other", "7", "7"), ("desk", "8", "8"))
    assert len(set(names)) == 3
    assert names[2] == "8"


def test_one_name_on_two_keys_keeps_the_key_only() -> None:
    assert _names(("desk", "7", "Anna"), ("other", "8", "Anna")) == ["Anna (7)", "Anna (8)"]


def test_names_that_look_the_same_are_told_apart_and_no_control_moves_a_key() -> None:
    """A name is a reader's label: a RIGHT-TO-LEFT OVERRIDE (U+202E) before "annA" shows as
    "Anna", a zero-width space or a control character (a BEL pasted from a terminal) shows
    as nothing. Compared as stored, "Anna", "\\u202eannA" and "An\\u200bna" were three names,
    none given its key: three rows "Anna" on the leaderboard, no telling whose. And an
    override before ")7( annA" reversed the key added after it: agent 9 read "(9) Anna (7)".
    The labels hold no bidirectional or control character, and names are compared as
    shown, without invisible characters; a name that shows nothing is the key."""
    names = _names(
        ("desk", "1", "Anna"),
        ("desk", "2", "\u202eannA"),
        ("desk", "3", "An\u200bna"),
        ("desk", "4", "Ann\x07a"),
        ("desk", "9", "\u202e)7( annA"),
        ("desk", "5", "\u200f \u200b"),
        ("desk", "6", "שרה כהן"),
    )
    assert names[:4] == ["Anna (1)", "annA (2)", "An\u200bna (3)", "Anna (4)"]
    assert names[4] == ")7( annA"
    assert names[5] == "5"
    assert names[6] == "שרה כהן"  # right-to-left text still reads right to left
    assert _names(("desk", "8", "Tab\tName\nLine\r")) == ["Tab Name Line "]


ZWSP = "\u200b"


def test_agents_whose_labels_still_look_alike_get_their_tag_whatever_the_order() -> None:
    """Two agents with no name and a key that shows nothing were both labelled "-" (with
    their invisible keys: "- (\u200b)"), and keys that differ by what shows nothing
    ("7" and "7\u200b") gave "Anna (7)" twice. Each gets the stable tag its tab gets
    (:func:`~csat_hook.sync.titles.tag`), whatever the order of the agents."""
    agents = [
        ("desk", ZWSP, ""),
        ("desk", ZWSP * 2, " "),
        ("desk", "7", "Anna"),
        ("desk", "7" + ZWSP, "Anna"),
        ("desk", "9", "Boris"),
    ]
    names = _names(*agents)
    assert names == _names(*agents[::-1])[::-1]
    assert names[0] == f"- #{tag(ZWSP)}"
    assert names[1] == f"- #{tag(ZWSP * 2)}"
    assert names[2] == f"Anna (7) #{tag('7')}"
    assert names[4] == "Boris"
