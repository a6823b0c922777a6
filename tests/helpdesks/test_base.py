"""What adapters share: ids read strictly, timestamps read leniently but never crashing, and
an agent cache that a sender cannot grow without bound."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest

from csat_hook.errors import BadPayloadError
from csat_hook.helpdesks import base
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.payload import as_id
from csat_hook.helpdesks.payload import parse_timestamp
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.transport import HttpClient
from tests.conftest import FakeClock


@pytest.mark.parametrize(
    ("value", "expected"), [("  42 ", "42"), (42, "42"), (-7, "-7"), ("", None), (None, None)]
)
def test_ids_are_strings_or_integers(value, expected):
    assert as_id(value, "ticket.id") == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [(True, "a boolean"), (5.0, "a fraction"), ({"id": 5}, "an object"), ([5], "a list")],
)
def test_ids_of_another_type_are_refused_naming_the_field(value, kind):
    with pytest.raises(BadPayloadError) as refused:
        as_id(value, "ticket.agent.id")
    assert refused.value.message == f"ticket.agent.id must be a string or an integer, not {kind}"


@pytest.mark.parametrize("value", [".", "..", " .. "])
def test_an_id_that_is_a_dot_segment_is_refused_naming_the_field(value):
    with pytest.raises(BadPayloadError) as refused:
        as_id(value, "ticket.id")
    assert refused.value.code == "bad_id"
    assert refused.value.message.startswith("ticket.id is ")
    assert as_id("...", "ticket.id") == "..." and as_id(".5", "ticket.id") == ".5"


@pytest.mark.parametrize(
    "value", [10**400, -(10**400), float("inf"), float("nan"), "1e999", "nan", 2**1023, "-1e400"]
)
def test_timestamps_no_float_can_hold_are_unreadable_not_an_error(value):
    assert parse_timestamp(value) is None


def test_timestamps_in_seconds_milliseconds_and_iso_are_read():
    when = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert parse_timestamp(when.timestamp()) == when
    assert parse_timestamp(int(when.timestamp() * 1000)) == when
    assert parse_timestamp("2026-11-20T12:00:00Z") == when


class Stub(Helpdesk):
    """A helpdesk whose webhooks and replies no test here reaches: only its look-ups."""

    kind = "stub"

    def __init__(self) -> None:
        super().__init__("desk", HelpdeskOptions(kind="stub"), http=HttpClient(), clock=FakeClock())

    def verify(self, request: Any) -> None:
        raise NotImplementedError

    def parse(self, request: Any) -> Any:
        raise NotImplementedError

    def send_reply(self, reply: Any) -> Any:
        raise NotImplementedError


class Counting(Stub):
    def __init__(self) -> None:
        super().__init__()
        self.looked_up: list[str] = []

    def fetch_agent(self, agent: Person, context: Mapping[str, Any]) -> Person | None:
        self.looked_up.append(agent.id or "")
        return Person(id=agent.id, name=f"Agent {agent.id}")


def test_the_agent_cache_keeps_the_newest_agents_only(monkeypatch):
    monkeypatch.setattr(base, "AGENT_CACHE_LIMIT", 3)
    desk = Counting()
    for agent_id in ("1", "2", "3", "4", "5"):  # ids a sender made up
        desk.resolve_agent(Person(id=agent_id), {})
    desk.resolve_agent(Person(id="5"), {})  # cached
    desk.resolve_agent(Person(id="1"), {})  # evicted: looked up again

    assert desk.looked_up == ["1", "2", "3", "4", "5", "1"]
    assert len(desk._agent_cache) == 3


class Describing(Stub):
    """Its vendor describes agents as told: by dialog (find_agent) and by id (fetch_agent)."""

    def __init__(self, by_dialog: Person | None, by_id: Person | None) -> None:
        super().__init__()
        self.by_dialog = by_dialog
        self.by_id = by_id

    def find_agent(self, dialog_id: str, context: Mapping[str, Any]) -> Person | None:
        return self.by_dialog

    def fetch_agent(self, agent: Person, context: Mapping[str, Any]) -> Person | None:
        return self.by_id


def test_a_looked_up_agent_is_fitted_to_the_survey_columns_before_it_is_used_or_cached():
    # What a vendor's JSON can decode to: a lone surrogate ("\ud800"), NUL ("\u0000"), and
    # values longer than the columns (agent_id 191, agent_name and agent_email 255).
    desk = Describing(
        by_dialog=Person(id="7\x00" + "9" * 300),
        by_id=Person(id="ignored", name="Ann\ud800a\x00" + "n" * 300, email="a\x00@x"),
    )

    first = desk.resolve_agent(Person(), {}, dialog_id="D-1")
    second = desk.resolve_agent(Person(id=first.id), {}, dialog_id="D-1")  # from the cache

    expected = Person(id="7" + "9" * 190, name=("Ann\ufffda" + "n" * 300)[:255], email="a@x")
    assert first == second == expected
    [(_when, cached)] = desk._agent_cache.values()
    assert cached.name == expected.name and cached.email == "a@x"
    # What the link is built from encodes as UTF-8 (a lone surrogate cannot).
    assert all(value.encode("utf-8") for value in (first.id, first.name, first.email) if value)
