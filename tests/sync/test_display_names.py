"""Agents' labels in the report: two agents are never shown under one label. A shared name
gets the agent key; two helpdesks' agents with the same key (and name) get their helpdesk too.
"""

from __future__ import annotations

from csat_hook.sync.dataset import Agent
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.report.common import display_names


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
