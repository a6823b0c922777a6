"""The report's own tabs keep their kind whatever title they were given.

``output.gsheets.summary_tab``, ``unverified_tab`` and ``alerts.tab`` name the report's own
tabs. Changed from one custom title to another, the old tab was left behind, frozen and
looking current, beside a new one: nothing said which kind of tab it was (its sheetId was
made from the old title, which no setting names any more). Each own tab now carries its kind
in developer metadata on the sheet (``csat-hook.tab``: the kind, the sheetId and the title
the report gave it), so a later run renames it into the new title. A person's tab never
carries it, nor does a tab a person renamed (its title is not the one recorded), nor a copy
of one of ours (its sheetId is not the one recorded): those are left as they are. Agents'
tabs are known by their key and carry nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from csat_hook.db.schema import alerts as alerts_table
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.sync.outputs.sheets import _renames
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID

FORM = "Form Responses 1"
MARK = "csat-hook.tab"
STRUCTURE = r"^/v4/spreadsheets/[^/]+:batchUpdate$"


@pytest.fixture
def receivers(kit: Any) -> Iterator[FakeNotify]:
    fake = FakeNotify(now=lambda: kit.now.timestamp()).start()
    yield fake
    fake.stop()


def summary_tab(kit: Any, title: str) -> Any:
    return kit.config(output={"gsheets": {"summary_tab": title}})


def sheet_id(kit: Any, title: str) -> int:
    return kit.fake.tab(SHEET_ID, title).sheet_id


def marks(kit: Any) -> dict[str, list[dict[str, Any]]]:
    """Each tab's developer metadata under our key, by title, as spreadsheets.get gives it."""
    state = kit.fake.state(SHEET_ID)
    return {
        tab["properties"]["title"]: [
            json.loads(m["metadataValue"])
            for m in tab.get("developerMetadata", [])
            if m.get("metadataKey") == MARK
        ]
        for tab in state["tabs"]
    }


def later(kit: Any) -> None:
    kit.now += timedelta(minutes=10)
    kit.fake.reset_requests()


def test_a_custom_summary_title_changed_to_another_renames_the_tab(kit):
    kit.responses([EN_HEADER, [kit.now, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run(summary_tab(kit, "Report")).status == "ok"
    tab, anna = sheet_id(kit, "Report"), sheet_id(kit, "Anna (7)")
    later(kit)

    summary = kit.run(summary_tab(kit, "Overview"))

    assert summary.status == "ok", summary.error
    titles = kit.fake.titles(SHEET_ID)
    assert "Report" not in titles
    assert sheet_id(kit, "Overview") == tab  # the same tab: a manager's link still works
    assert kit.sheet("Overview")[0][0].startswith("CSAT report")
    assert sorted(titles) == sorted(
        [FORM, "Overview", "Trends", "Responses", "Unverified", "Anna (7)"]
    )
    # Within the run's budget: the metadata read, the responses read, one structure batch
    # (the rename and its record in it), one value write.
    assert (kit.fake.count("sheets_read"), kit.fake.count("sheets_write")) == (2, 2)
    assert sheet_id(kit, "Anna (7)") == anna

    # Again: the tab's id now says neither title; its record does.
    later(kit)
    assert kit.run(summary_tab(kit, "Dashboard")).status == "ok"
    titles = kit.fake.titles(SHEET_ID)
    assert not {"Report", "Overview"} & set(titles)
    assert sheet_id(kit, "Dashboard") == tab
    later(kit)
    assert kit.run(summary_tab(kit, "Dashboard")).status == "ok"
    assert kit.fake.count("sheets_write") == 0


def test_a_custom_unverified_title_changed_to_another_renames_the_tab(kit):
    kit.responses([EN_HEADER, [kit.now, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    first = kit.config(output={"gsheets": {"unverified_tab": "Unchecked"}})
    assert kit.run(first).status == "ok"
    tab = sheet_id(kit, "Unchecked")
    later(kit)

    second = kit.config(output={"gsheets": {"unverified_tab": "To check"}})
    summary = kit.run(second)

    assert summary.status == "ok", summary.error
    titles = kit.fake.titles(SHEET_ID)
    assert "Unchecked" not in titles
    assert sheet_id(kit, "To check") == tab
    assert sorted(titles) == sorted(
        [FORM, "Summary", "Trends", "Responses", "To check", "Anna (7)"]
    )


def test_a_custom_alerts_title_changed_to_another_keeps_the_teams_edits(kit, receivers):
    slack = {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}}
    rule = {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
    answered = (kit.now - timedelta(minutes=2)).strftime("%m/%d/%Y %H:%M:%S")
    token = kit.survey("T-1", "7", "Anna")
    kit.responses([EN_HEADER, [answered, 1, "rude", "", "", token]], time_zone="UTC")
    alerts = {"destinations": slack, "rules": [rule], "tab": "Incidents"}
    assert kit.run(kit.config(alerts=alerts)).status == "ok"
    tab = sheet_id(kit, "Incidents")
    header = kit.sheet("Incidents")[0]
    kit.fake.set_cell(SHEET_ID, "Incidents", 1, header.index("Handled"), "called back")
    later(kit)

    summary = kit.run(kit.config(alerts={**alerts, "tab": "Problems"}))

    assert summary.status == "ok", summary.error
    titles = kit.fake.titles(SHEET_ID)
    assert "Incidents" not in titles
    assert sheet_id(kit, "Problems") == tab
    assert kit.sheet("Problems")[1][header.index("Handled")] == "called back"


def test_a_persons_tab_holding_the_old_title_is_never_touched(kit):
    """A person's "Report" was there first (ours was "Report 2" beside it), and another
    "Report" added after ours moved on: neither is renamed, written or deleted."""
    kit.responses([EN_HEADER, [kit.now, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    kit.fake.add_tab(SHEET_ID, "Report", [["a manager's report"]])
    assert kit.run(summary_tab(kit, "Report")).status == "ok"
    tab = sheet_id(kit, "Report 2")
    later(kit)

    assert kit.run(summary_tab(kit, "Overview")).status == "ok"

    titles = kit.fake.titles(SHEET_ID)
    assert "Report 2" not in titles
    assert sheet_id(kit, "Overview") == tab
    assert kit.sheet("Report") == [["a manager's report"]]

    kit.fake.tab(SHEET_ID, "Report").title = "Old report"
    kit.fake.add_tab(SHEET_ID, "Overview notes", [["a manager's notes"]])
    later(kit)
    assert kit.run(summary_tab(kit, "Dashboard")).status == "ok"
    assert sheet_id(kit, "Dashboard") == tab
    assert kit.sheet("Old report") == [["a manager's report"]]
    assert kit.sheet("Overview notes") == [["a manager's notes"]]


def test_a_copy_of_our_tab_under_the_old_title_is_the_persons(kit):
    """A person keeps ours as "Report (old)" and a copy of it as "Report": the copy may carry
    our record (its sheetId is not the one recorded), ours is titled as no record says. Both
    are theirs: kept as they are, and the report gets a new tab."""
    kit.responses([EN_HEADER, [kit.now, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run(summary_tab(kit, "Report")).status == "ok"
    ours = kit.fake.tab(SHEET_ID, "Report")
    ours.title = "Report (old)"
    kept = kit.sheet("Report (old)")
    copy = kit.fake.add_tab(SHEET_ID, "Report", [["a copy"]])
    kit.fake.copy_sheet_metadata(SHEET_ID, ours.sheet_id, copy.sheet_id)
    later(kit)

    assert kit.run(summary_tab(kit, "Overview")).status == "ok"

    assert kit.sheet("Report") == [["a copy"]]
    assert kit.sheet("Report (old)") == kept
    assert sheet_id(kit, "Overview") not in (ours.sheet_id, copy.sheet_id)


def test_a_tab_a_person_renamed_is_theirs_to_keep(kit):
    kit.responses([EN_HEADER, [kit.now, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run(summary_tab(kit, "Report")).status == "ok"
    kit.fake.tab(SHEET_ID, "Report").title = "Report November"
    snapshot = kit.sheet("Report November")
    later(kit)

    assert kit.run(summary_tab(kit, "Overview")).status == "ok"

    assert kit.sheet("Report November") == snapshot
    assert "Overview" in kit.fake.titles(SHEET_ID)


def test_only_the_reports_own_tabs_carry_a_kind_and_agents_tabs_are_unaffected(kit):
    kit.responses(
        [
            EN_HEADER,
            [kit.now, 5, "a", "", "", kit.survey("T-1", "7", "Anna")],
            [kit.now, 4, "b", "", "", kit.survey("T-2", "8", "Boris")],
        ]
    )
    assert kit.run(summary_tab(kit, "Report")).status == "ok"
    agents = {t: sheet_id(kit, t) for t in ("Anna (7)", "Boris (8)")}
    recorded = marks(kit)
    assert recorded["Anna (7)"] == recorded["Boris (8)"] == recorded[FORM] == []
    assert recorded["Report"] == [
        {"kind": "summary", "sheetId": sheet_id(kit, "Report"), "title": "Report"}
    ]
    assert [m["kind"] for m in recorded["Unverified"]] == ["unverified"]
    later(kit)

    assert kit.run(summary_tab(kit, "Overview")).status == "ok"

    assert {t: sheet_id(kit, t) for t in agents} == agents
    assert marks(kit)["Overview"][0]["title"] == "Overview"
    assert kit.sheet("Boris (8)")[1][1] == "T-2"


def test_tabs_an_earlier_version_made_are_recorded_once_then_known(kit):
    """A spreadsheet written before tabs carried their kind: the next run records it, in one
    structure batch, and a later change of title renames the tab."""
    kit.responses([EN_HEADER, [kit.now, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    config = summary_tab(kit, "Report")
    assert kit.run(config).status == "ok"
    tab = sheet_id(kit, "Report")
    kit.fake.strip_sheet_metadata(SHEET_ID)
    kit.fake.append_rows(
        SHEET_ID, FORM, [[kit.now, 4, "b", "", "", kit.survey("T-2", "7", "Anna")]]
    )
    later(kit)

    assert kit.run(config).status == "ok"

    assert kit.fake.count("sheets_write") == 2
    assert [m["kind"] for m in marks(kit)["Report"]] == ["summary"]
    later(kit)
    assert kit.run(summary_tab(kit, "Overview")).status == "ok"
    assert "Report" not in kit.fake.titles(SHEET_ID)
    assert sheet_id(kit, "Overview") == tab


def test_a_record_written_twice_after_a_lost_answer_is_still_one_record(kit):
    """The batch recording the tabs is applied and its answer lost: it is not sent again as
    it is (planned again from what is there), so each tab carries one entry. Versions before
    sent it again and left two equal entries: they are read as one record, and rewritten
    together when the title changes."""
    kit.responses([EN_HEADER, [kit.now, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    config = summary_tab(kit, "Report")
    assert kit.run(config).status == "ok"
    tab = sheet_id(kit, "Report")
    kit.fake.strip_sheet_metadata(SHEET_ID)
    kit.fake.append_rows(
        SHEET_ID, FORM, [[kit.now, 4, "b", "", "", kit.survey("T-2", "7", "Anna")]]
    )
    later(kit)
    kit.fake.lose(1, "sheets_write", path=STRUCTURE)

    assert kit.run(config).status == "ok"

    assert [m["title"] for m in marks(kit)["Report"]] == ["Report"]
    # The second entry an earlier version's resend left.
    spreadsheet = kit.fake.spreadsheets[SHEET_ID]
    [entry] = kit.fake.tab(SHEET_ID, "Report").developer_metadata
    kit.fake.tab(SHEET_ID, "Report").developer_metadata.append(
        {**entry, "metadataId": spreadsheet.next_metadata_id}
    )
    spreadsheet.next_metadata_id += 1
    assert [m["title"] for m in marks(kit)["Report"]] == ["Report", "Report"]
    later(kit)
    assert kit.run(config).status == "ok"
    assert kit.fake.count("sheets_write") == 0
    later(kit)
    assert kit.run(summary_tab(kit, "Overview")).status == "ok"
    assert sheet_id(kit, "Overview") == tab
    assert [m["title"] for m in marks(kit)["Overview"]] == ["Overview", "Overview"]


def test_a_tab_that_becomes_an_agents_loses_its_record(kit):
    """An agent whose title is the one the Summary had ("Report", a name-only agent) gets a
    tab of its own under it once the Summary's tab is renamed "Overview" (found by its
    record, not its title): the agent's tab carries no record of the Summary, so it is never
    taken for one (and deleted as a stale Summary once the agent leaves the report)."""
    kit.responses([EN_HEADER, [kit.now, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run(summary_tab(kit, "Report")).status == "ok"
    report = sheet_id(kit, "Report")
    kit.fake.append_rows(
        SHEET_ID, FORM, [[kit.now, 4, "b", "", "", kit.survey("T-2", "Report", "Report")]]
    )
    later(kit)

    assert kit.run(summary_tab(kit, "Overview")).status == "ok"

    recorded = marks(kit)
    assert recorded["Report"] == []
    assert kit.sheet("Report")[1][1] == "T-2"
    assert [m["kind"] for m in recorded["Overview"]] == ["summary"]
    assert sheet_id(kit, "Overview") == report


def by_id(kit: Any) -> dict[int, str]:
    """Each tab's title by sheetId, as the manager's links (``#gid=``) find them."""
    state = kit.fake.state(SHEET_ID)
    return {t["properties"]["sheetId"]: t["properties"]["title"] for t in state["tabs"]}


def tickets(kit: Any, title: str) -> list[str]:
    """The tickets an agent's tab lists."""
    return [row[1] for row in kit.sheet(title)[1:] if len(row) > 1 and row[1]]


def test_a_language_switch_never_writes_the_report_into_an_agents_tab(kit):
    """Name-only agents "Summary", "Trends" and "Сводка": in Russian their tabs are "Summary",
    "Trends" and "Сводка 2" (the report's Summary is "Сводка"). Switched to English, the
    report's Summary was written into the agent "Summary"'s tab (a link to it opened the
    report), the agent "Сводка" into the report's old "Сводка", and each agent got a second
    tab while the first stayed frozen. Each tab is now found by what it is: the report's
    Summary renamed "Summary", the agents' tabs renamed around it with " 2"."""
    rows = [EN_HEADER]
    for n, name in enumerate(["Summary", "Trends", "Сводка"]):
        rows.append([kit.now, 5, "c", "", "", kit.survey(f"T-{n}", None, name)])
    rows.append([kit.now, 4, "", "", "", kit.survey("T-9", "7", "Anna")])
    kit.responses(rows)
    assert kit.run(kit.config(output={"language": "ru"})).status == "ok"
    before = {title: sheet_id(kit, title) for title in kit.fake.titles(SHEET_ID)}
    assert tickets(kit, "Summary") == ["T-0"] and tickets(kit, "Сводка 2") == ["T-2"]
    later(kit)

    summary = kit.run(kit.config(output={"language": "en"}))

    assert summary.status == "ok", summary.error
    titles = by_id(kit)
    assert len(titles) == len(before)  # no tab added: no agent has two
    assert titles[before["Сводка"]] == "Summary"
    assert kit.sheet("Summary")[0][0].startswith("CSAT report")
    assert titles[before["Динамика"]] == "Trends"
    agents = {"Summary": "T-0", "Trends": "T-1", "Сводка 2": "T-2", "Anna (7)": "T-9"}
    for title, ticket in agents.items():
        assert tickets(kit, titles[before[title]]) == [ticket]
    assert sorted(titles[before[t]] for t in agents) == [
        "Anna (7)",
        "Summary 2",
        "Trends 2",
        "Сводка",
    ]
    later(kit)

    assert kit.run(kit.config(output={"language": "ru"})).status == "ok"

    assert by_id(kit) == {sheet: title for title, sheet in before.items()}
    assert kit.sheet("Сводка")[0][0] != kit.sheet("Summary")[0][0]
    assert tickets(kit, "Summary") == ["T-0"] and tickets(kit, "Сводка 2") == ["T-2"]


def test_an_agent_named_alerts_never_takes_the_teams_kept_alerts_tab(kit, receivers):
    """The Alerts tab turned off is kept, frozen, with the team's "Handled" column; a
    name-only agent "Alerts" arriving later gets "Alerts 2", not the team's tab."""
    slack = {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}}
    rule = {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
    answered = (kit.now - timedelta(minutes=2)).strftime("%m/%d/%Y %H:%M:%S")
    token = kit.survey("T-1", "7", "Anna")
    kit.responses([EN_HEADER, [answered, 1, "rude", "", "", token]], time_zone="UTC")
    alerts = {"destinations": slack, "rules": [rule]}
    assert kit.run(kit.config(alerts=alerts)).status == "ok"
    tab = sheet_id(kit, "Alerts")
    header = kit.sheet("Alerts")[0]
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, header.index("Handled"), "called back")
    kept = kit.sheet("Alerts")
    kit.fake.append_rows(
        SHEET_ID, FORM, [[answered, 5, "ok", "", "", kit.survey("T-2", None, "Alerts")]]
    )
    later(kit)

    summary = kit.run(kit.config(alerts={**alerts, "tab": ""}))

    assert summary.status == "ok", summary.error
    assert by_id(kit)[tab] == "Alerts"
    assert kit.sheet("Alerts") == kept
    assert tickets(kit, "Alerts 2") == ["T-2"]


def test_tabs_exchanging_titles_go_through_a_temporary_one():
    """Google applies a batch's requests in order and refuses a title two tabs would hold
    after any one of them: two tabs swapping titles cannot be renamed one after the other."""
    tabs = [
        {"sheetId": 1, "title": "A"},
        {"sheetId": 2, "title": "b"},
        {"sheetId": 3, "title": "C"},
    ]
    moves = [(1, "A", "B"), (2, "b", "a"), (3, "C", "D")]

    requests = _renames(moves, tabs)

    titles = {t["sheetId"]: t["title"] for t in tabs}
    for request in requests:
        props = request["updateSheetProperties"]["properties"]
        titles[props["sheetId"]] = props["title"]
        folded = [t.casefold() for t in titles.values()]
        assert len(folded) == len(set(folded)), titles
    assert titles == {1: "B", 2: "a", 3: "D"}
    assert len(requests) == 4


def test_the_alerts_tab_retitled_to_a_name_only_agents_title_keeps_the_teams_edits(kit, receivers):
    """``alerts.tab`` set from "Incidents" to "Alerts" while a name-only agent "Alerts" has
    the tab "Alerts": the team's tab is renamed "Alerts" with its "Handled" column, read back
    from it (not from the agent's tab, which held the title), and the agent's moves to
    "Alerts 2" with its answers."""
    slack = {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}}
    rule = {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
    answered = (kit.now - timedelta(minutes=2)).strftime("%m/%d/%Y %H:%M:%S")
    rows = [
        [answered, 1, "rude", "", "", kit.survey("T-1", "7", "Anna")],
        [answered, 5, "ok", "", "", kit.survey("T-2", None, "Alerts")],
    ]
    kit.responses([EN_HEADER, *rows], time_zone="UTC")
    alerts = {"destinations": slack, "rules": [rule], "tab": "Incidents"}
    assert kit.run(kit.config(alerts=alerts)).status == "ok"
    team, agent = sheet_id(kit, "Incidents"), sheet_id(kit, "Alerts")
    header = kit.sheet("Incidents")[0]
    kit.fake.set_cell(SHEET_ID, "Incidents", 1, header.index("Handled"), "called back")
    later(kit)

    summary = kit.run(kit.config(alerts={**alerts, "tab": "Alerts"}))

    assert summary.status == "ok", summary.error
    assert by_id(kit)[team] == "Alerts" and by_id(kit)[agent] == "Alerts 2"
    assert kit.sheet("Alerts")[1][header.index("Handled")] == "called back"
    assert tickets(kit, "Alerts 2") == ["T-2"]


def test_a_name_only_agents_tab_titled_alerts_is_never_read_as_the_teams_alerts_tab(kit, receivers):
    """A name-only agent "Alerts" has the tab "Alerts" before alert rules are turned on.
    The first run with rules looked for the team's Alerts tab by its title when no tab of
    that kind existed yet, read the agent's tab as if it were the team's, and took an
    "Alert"/"Handled" pair found there for the new alert's: alert 1 showed as handled by
    text no one wrote for it. The Alerts tab is now found by what it is only."""
    answered = (kit.now - timedelta(minutes=2)).strftime("%m/%d/%Y %H:%M:%S")
    kit.responses(
        [EN_HEADER, [answered, 5, "fine", "", "", kit.survey("T-1", None, "Alerts")]],
        time_zone="UTC",
    )
    assert kit.run().status == "ok"
    agent = sheet_id(kit, "Alerts")
    # Someone types in the agent's tab (the report rewrites it on its next run).
    for col, value in enumerate(["Alert", "Handled"]):
        kit.fake.set_cell(SHEET_ID, "Alerts", 0, col, value)
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, 0, 1)
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, 1, "not about any alert")
    kit.fake.append_rows(
        SHEET_ID, FORM, [[answered, 1, "rude", "", "", kit.survey("T-2", "7", "Anna")]]
    )
    later(kit)
    slack = {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}}
    rule = {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}

    summary = kit.run(kit.config(alerts={"destinations": slack, "rules": [rule]}))

    assert summary.status == "ok", summary.error
    assert summary.alerts["raised"] == {"low": 1}
    assert [a.handled for a in kit.rows(alerts_table)] == [None]
    read = [r["query"].get("ranges") for r in kit.fake.api_requests("sheets_read")]
    assert ["'Alerts'"] not in read, read  # nor read at all: no tab of the kind yet
    assert by_id(kit)[agent] == "Alerts 2" and tickets(kit, "Alerts 2") == ["T-1"]
    header, row = kit.sheet("Alerts")[:2]  # the team's tab: alert 1, not handled
    handled = header.index("Handled")
    assert row[header.index("Alert")] == 1 and (row[handled] if handled < len(row) else "") == ""
