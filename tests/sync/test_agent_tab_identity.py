"""An agent's tab is the agent's: (helpdesk, agent key), not the key alone.

Two helpdesks' agents may share a key (agent "7" of each, two Chatwoot accounts numbering
their agents from 1, one person's e-mail in both). Their tabs' ids came from the key, and
their titles from the name and the key: with one name the two tabs were "Anna (7)" and
"Anna (7) 2", given in the order of their newest answers, so the other agent's answer coming
last swapped the rows of the two tabs; and an agent renamed could take the other's tab by its
id. A tab whose key another helpdesk's agent also has is now titled and numbered with its
helpdesk; every other tab keeps the title and the id it had (a deployment of one helpdesk
sees no change at all).
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from openpyxl import load_workbook

from csat_hook.intake import store
from csat_hook.sync.outputs.sheets_format import object_id
from csat_hook.sync.outputs.sheets_tabs import Renamed
from csat_hook.sync.outputs.sheets_tabs import agent_ids
from csat_hook.sync.titles import SHEETS_MAX
from csat_hook.sync.titles import XLSX_MAX
from csat_hook.sync.titles import agent_title
from csat_hook.sync.titles import table_titles
from csat_hook.sync.titles import tag
from csat_hook.sync.titles import units
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import HELPDESK
from tests.sync.conftest import SHEET_ID

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
FORM = "Form Responses 1"
OTHER = "zendesk"
OWN_TABS = {FORM, "Summary", "Trends", "Responses", "Unverified"}
AGENT_TAB = "csat-hook agent tab"  # what every earlier version numbered agents' tabs from


def config(kit: Any, **sections: Any) -> Any:
    """Two helpdesks: the kit's and :data:`OTHER`."""
    other = {"kind": "dryrun", "output": str(kit.tmp_path / "other.jsonl")}
    return kit.config(helpdesks={OTHER: other}, **sections)


def answer(kit: Any, helpdesk: str, n: int, key: str, name: str) -> list[Any]:
    """A form row answering ticket ``T-n`` (submitted ``n`` hours after T0) of a survey sent
    for agent ``key`` of ``helpdesk`` under ``name``, recorded as intake does."""
    created = T0 + timedelta(hours=n) - timedelta(minutes=30)
    token = kit.token(f"T-{n}", key, created, helpdesk=helpdesk)
    with kit.engine.begin() as conn:
        store.insert_surveys(
            conn,
            [
                {
                    "helpdesk": helpdesk,
                    "dialog_id": f"T-{n}",
                    "occurrence": "",
                    "agent_id": key,
                    "agent_name": name,
                    "agent_email": None,
                    "team": None,
                    "token": token,
                    "status": "sent",
                    "created_at": created,
                    "sent_at": created,
                }
            ],
        )
    return [T0 + timedelta(hours=n), 5, "", "", "", token]


def more(kit: Any, *rows: list[Any]) -> None:
    kit.fake.append_rows(SHEET_ID, FORM, list(rows))
    kit.now += timedelta(hours=1)


def agent_tabs(kit: Any) -> dict[int, tuple[str, list[str]]]:
    """The agents' tabs by sheetId: their title and the tickets they list."""
    tabs = {}
    for title in kit.fake.titles(SHEET_ID):
        if title not in OWN_TABS:
            tickets = [row[1] for row in kit.sheet(title)[1:]]
            tabs[kit.fake.tab(SHEET_ID, title).sheet_id] = (title, tickets)
    return tabs


def by_first_ticket(tabs: dict[int, tuple[str, list[str]]]) -> dict[str, int]:
    return {tickets[-1]: sheet_id for sheet_id, (_, tickets) in tabs.items()}


def test_one_key_in_two_helpdesks_is_two_tabs_whichever_answer_came_last(kit):
    """Agent "7" of each helpdesk, both "Anna": two tabs, each naming its helpdesk, each
    keeping its agent's rows (and id) when the other agent's answer becomes the newest."""
    kit.responses([EN_HEADER, answer(kit, HELPDESK, 1, "7", "Anna")])
    more(kit, answer(kit, OTHER, 2, "7", "Anna"))
    assert kit.run(config(kit)).status == "ok"
    tabs = agent_tabs(kit)
    assert sorted(tickets for _, tickets in tabs.values()) == [["T-1"], ["T-2"]]
    first = by_first_ticket(tabs)

    more(kit, answer(kit, HELPDESK, 3, "7", "Anna"))
    summary = kit.run(config(kit))

    assert summary.status == "ok", summary.error
    after = agent_tabs(kit)
    assert after == {
        first["T-1"]: (tabs[first["T-1"]][0], ["T-3", "T-1"]),
        first["T-2"]: tabs[first["T-2"]],
    }
    # A reader tells them apart too.
    assert tabs[first["T-1"]][0] == f"Anna ({HELPDESK} 7)"
    assert tabs[first["T-2"]][0] == f"Anna ({OTHER} 7)"


def test_renaming_one_helpdesks_agent_leaves_the_other_helpdesks_tab_alone(kit):
    kit.responses([EN_HEADER, answer(kit, HELPDESK, 1, "7", "Anna")])
    more(kit, answer(kit, OTHER, 2, "7", "Anna"))
    assert kit.run(config(kit)).status == "ok"
    before = agent_tabs(kit)
    first = by_first_ticket(before)

    more(kit, answer(kit, OTHER, 3, "7", "Anne"))  # renamed in the other helpdesk
    summary = kit.run(config(kit))

    assert summary.status == "ok", summary.error
    after = agent_tabs(kit)
    assert after[first["T-1"]] == before[first["T-1"]]  # title, id and rows
    title, tickets = after[first["T-2"]]
    assert tickets == ["T-3", "T-2"]
    assert title.startswith("Anne (") and OTHER in title
    assert len(after) == 2
    assert summary.outputs[0]["tabs_created"] == 0


def test_two_helpdesks_agents_of_one_key_renamed_at_once_keep_their_own_tabs(kit):
    """Their new names sort the other way round: each tab still goes with its agent."""
    kit.responses([EN_HEADER, answer(kit, HELPDESK, 1, "7", "Anna")])
    more(kit, answer(kit, OTHER, 2, "7", "Boris"))
    assert kit.run(config(kit)).status == "ok"
    first = by_first_ticket(agent_tabs(kit))
    assert len(first) == 2

    more(kit, answer(kit, HELPDESK, 3, "7", "Zoe"), answer(kit, OTHER, 4, "7", "Alice"))
    summary = kit.run(config(kit))

    assert summary.status == "ok", summary.error
    after = agent_tabs(kit)
    assert after[first["T-1"]][1] == ["T-3", "T-1"]
    assert after[first["T-1"]][0].startswith("Zoe (")
    assert after[first["T-2"]][1] == ["T-4", "T-2"]
    assert after[first["T-2"]][0].startswith("Alice (")
    assert len(after) == 2


def test_a_helpdesk_added_beside_the_first_renames_no_tab_of_a_key_it_does_not_share(kit):
    """The upgrade and a second helpdesk change nothing for a key the other helpdesk does not
    have: the same title, the same id (the one every version made from the key)."""
    kit.responses([EN_HEADER, answer(kit, HELPDESK, 1, "7", "Anna")])
    more(kit, answer(kit, HELPDESK, 2, "8", "Boris"))
    assert kit.run().status == "ok"
    before = agent_tabs(kit)
    assert before == {
        object_id(AGENT_TAB, "7", 0): ("Anna (7)", ["T-1"]),
        object_id(AGENT_TAB, "8", 0): ("Boris (8)", ["T-2"]),
    }

    more(kit, answer(kit, OTHER, 3, "9", "Vera"))
    kit.fake.reset_requests()
    summary = kit.run(config(kit))

    assert summary.status == "ok", summary.error
    after = agent_tabs(kit)
    assert {i: after[i] for i in before} == before
    assert after[object_id(AGENT_TAB, "9", 0)] == ("Vera (9)", ["T-3"])
    assert summary.outputs[0]["tabs_created"] == 1
    assert summary.outputs[0]["tabs_deleted"] == 0


def test_a_key_another_helpdesk_comes_to_share_keeps_its_tab(kit):
    """Agent "7" had a tab before the other helpdesk had an agent "7": the tab (its id, its
    rows) stays the first agent's, titled with its helpdesk from then on; the other agent
    gets a tab of its own."""
    kit.responses([EN_HEADER, answer(kit, HELPDESK, 1, "7", "Anna")])
    assert kit.run(config(kit)).status == "ok"
    legacy = object_id(AGENT_TAB, "7", 0)
    assert agent_tabs(kit) == {legacy: ("Anna (7)", ["T-1"])}

    more(kit, answer(kit, OTHER, 2, "7", "Boris"))
    summary = kit.run(config(kit))

    assert summary.status == "ok", summary.error
    after = agent_tabs(kit)
    assert len(after) == 2
    title, tickets = after[legacy]
    assert tickets == ["T-1"] and title.startswith("Anna (") and HELPDESK in title
    [(other_title, other_tickets)] = [tab for i, tab in after.items() if i != legacy]
    assert other_tickets == ["T-2"] and other_title.startswith("Boris (") and OTHER in other_title
    assert summary.outputs[0]["tabs_deleted"] == 0

    # And from then on, run after run, the same two tabs.
    more(kit, answer(kit, OTHER, 3, "7", "Boris"), answer(kit, HELPDESK, 4, "7", "Anna"))
    assert kit.run(config(kit)).status == "ok"
    again = agent_tabs(kit)
    assert set(again) == set(after)
    assert again[legacy] == (title, ["T-4", "T-1"])

    # Renamed, the agent keeps the tab: its title names the helpdesk and the key.
    more(kit, answer(kit, HELPDESK, 5, "7", "Anne"))
    assert kit.run(config(kit)).status == "ok"
    renamed = agent_tabs(kit)
    assert renamed[legacy] == (f"Anne ({HELPDESK} 7)", ["T-5", "T-4", "T-1"])
    assert set(renamed) == set(after)


def test_the_workbook_keeps_each_helpdesks_agent_on_its_own_sheet(kit):
    """The .xlsx titles its sheets as the spreadsheet does: which sheet holds which agent
    does not follow whose answer came last."""
    local = {"local": {"enabled": True, "xlsx": True, "csv": False}}
    kit.responses([EN_HEADER, answer(kit, HELPDESK, 1, "7", "Anna")])
    more(kit, answer(kit, OTHER, 2, "7", "Anna"))

    def sheets() -> dict[str, list[str]]:
        assert kit.run(config(kit, output=local)).status == "ok"
        book = load_workbook(kit.tmp_path / "report" / "csat-report.xlsx", read_only=True)
        found = {}
        for sheet in book.worksheets:
            if sheet.title not in OWN_TABS:
                rows = sheet.iter_rows(min_row=2, values_only=True)
                found[sheet.title] = [row[1] for row in rows]
        book.close()
        return found

    first = sheets()
    assert sorted(first.values()) == [["T-1"], ["T-2"]]
    [mine] = [title for title, tickets in first.items() if tickets == ["T-1"]]
    [theirs] = [title for title, tickets in first.items() if tickets == ["T-2"]]

    more(kit, answer(kit, HELPDESK, 3, "7", "Anna"))
    assert sheets() == {mine: ["T-3", "T-1"], theirs: ["T-2"]}
    assert (mine, theirs) == (f"Anna ({HELPDESK} 7)", f"Anna ({OTHER} 7)")


def test_the_two_tabs_an_earlier_version_made_for_one_key_stay_their_agents(kit):
    """As an earlier version left them: both numbered from the key alone, "Boris (7)" made
    first. Each is renamed to name its agent's helpdesk, none is added or taken by the other
    agent."""
    kit.responses([EN_HEADER, answer(kit, HELPDESK, 1, "7", "Anna")])
    more(kit, answer(kit, OTHER, 2, "7", "Boris"))
    boris, anna = object_id(AGENT_TAB, "7", 0), object_id(AGENT_TAB, "7", 1)
    kit.fake.add_tab(SHEET_ID, "Boris (7)", [["old"]], sheet_id=boris)
    kit.fake.add_tab(SHEET_ID, "Anna (7)", [["old"]], sheet_id=anna)

    summary = kit.run(config(kit))

    assert summary.status == "ok", summary.error
    assert agent_tabs(kit) == {
        anna: (f"Anna ({HELPDESK} 7)", ["T-1"]),
        boris: (f"Boris ({OTHER} 7)", ["T-2"]),
    }


def test_two_tabs_an_earlier_version_made_for_one_name_and_key_are_left_as_they_are(kit):
    """ "Anna (7)" and "Anna (7) 2", given in the order of the agents' newest answers: which
    was whose nothing says. Neither is taken; each agent gets a tab of its own."""
    kit.responses([EN_HEADER, answer(kit, HELPDESK, 1, "7", "Anna")])
    more(kit, answer(kit, OTHER, 2, "7", "Anna"))
    old = {
        object_id(AGENT_TAB, "7", 0): ("Anna (7)", ["T-8"]),
        object_id(AGENT_TAB, "7", 1): ("Anna (7) 2", ["T-9"]),
    }
    for sheet_id, (title, tickets) in old.items():
        kit.fake.add_tab(
            SHEET_ID, title, [["Submitted", "Ticket"], ["", *tickets]], sheet_id=sheet_id
        )

    summary = kit.run(config(kit))

    assert summary.status == "ok", summary.error
    after = agent_tabs(kit)
    assert {i: after[i] for i in old} == old
    assert sorted(tab for i, tab in after.items() if i not in old) == [
        (f"Anna ({HELPDESK} 7)", ["T-1"]),
        (f"Anna ({OTHER} 7)", ["T-2"]),
    ]


def test_a_key_that_reads_as_a_helpdesk_and_a_key_never_takes_that_agents_tab():
    """A name-only agent's key is their name, typed by helpdesk users: "zendesk 7" ends the
    tab of agent "7" of zendesk as its own key would end its tab, and that tab is free while
    its agent's name changes."""
    theirs = agent_ids("7", OTHER)[0]
    existing = {"anna (zendesk 7)": {"sheetId": theirs, "title": "Anna (zendesk 7)"}}

    renamed = Renamed(existing, set(), set(), recorded=[theirs], helpdesk_ids=[theirs])

    assert renamed.tab("zendesk 7") is None
    assert renamed.tab("7", OTHER) == existing["anna (zendesk 7)"]


def test_helpdesk_and_key_are_numbered_apart_wherever_a_separator_falls():
    ids = [
        agent_ids("b:c", "a")[0],
        agent_ids("c", "a:b")[0],
        agent_ids("a:b:c", None)[0],
        agent_ids("b", "a")[0],
        agent_ids("b", None)[0],
    ]
    assert len(set(ids)) == len(ids)
    assert agent_ids("7", None)[0] == object_id(AGENT_TAB, "7", 0)


def test_a_shared_keys_title_names_the_helpdesk_and_keeps_within_the_limit():
    assert agent_title("Anna", "7", 100, "zendesk") == "Anna (zendesk 7)"
    assert agent_title("7", "7", 100, "zendesk") == "7 (zendesk)"
    assert agent_title("Anna", "7", 100) == "Anna (7)"
    long = agent_title("Anna Petrova Ivanovna", "12345", XLSX_MAX, "zendesk")
    assert long == "Anna Petrova Iv (zendesk 12345)" and len(long) == XLSX_MAX


# Agents whose titles clean to one: keys whose forbidden characters differ ("a/b", "a:b",
# "a?b"), and blank names and keys that show nothing (every such tab was "-").
CLASHING = [
    ("Anna", "a/b", None),
    ("Anna", "a:b", None),
    ("Anna", "a?b", None),
    ("", " ", None),
    ("", "  ", None),
    ("Boris", "b", None),
]


@pytest.mark.parametrize("max_len", [SHEETS_MAX, XLSX_MAX])
def test_titles_that_clean_to_one_are_told_apart_by_a_tag_whatever_the_order(max_len):
    """They were told apart by " 2", " 3" in the report's order (the order of the agents'
    newest answers): whose tab was "Anna (a b) 2" changed from one run to the next. Each
    gets the stable tag made from its helpdesk and key instead, as a cut key does."""
    forward = table_titles(CLASHING, max_len)
    backward = table_titles(CLASHING[::-1], max_len)[::-1]
    assert forward == backward
    assert len({title.casefold() for title in forward}) == len(CLASHING)
    assert forward[0] == f"Anna (a b) #{tag('a/b')}"
    assert forward[3] == f"- #{tag(' ')}"
    assert forward[5] == "Boris (b)"  # no clash: no tag
    assert all(units(title) <= max_len for title in forward)


def test_a_clash_of_long_titles_keeps_the_tag_within_the_limit():
    keys = ["support/team.alice.long@example.com", "support:team.alice.long@example.com"]
    named = [("Alice", key, None) for key in keys]
    titles = table_titles(named, XLSX_MAX)
    assert titles == table_titles(named[::-1], XLSX_MAX)[::-1]
    assert [title[-5:] for title in titles] == [f"#{tag(key)}" for key in keys]
    assert all(units(title) <= XLSX_MAX for title in titles)


@pytest.mark.parametrize("name", ["\u200b", " ", "\u200b \u2060", "\t"])
def test_a_name_that_shows_nothing_titles_the_tab_by_its_key(name):
    # The Summary labelled such an agent by their key ("124"), and their tab was titled
    # "\u200b (124)" or "- (123)": a tab no label led to.
    assert agent_title(name, "124", XLSX_MAX) == "124"
    assert agent_title(name, "124", SHEETS_MAX, "desk") == "124 (desk)"
    titles = table_titles([("Summary", None), (name, "124"), ("Anna", "7")], XLSX_MAX)
    assert titles == ["Summary", "124", "Anna (7)"]
