"""Tabs csat-hook owns and the report no longer writes are not left looking current.

The report's own tabs (Summary, Trends, Responses, Unverified, Alerts) are titled in the
report's language: switching ``output.language`` added a second set beside the first, the old
one frozen at the day of the switch ("Сводка" beside "Summary"). Such a tab is the report's
own tab of a kind (known by the sheetId csat-hook made from one of that kind's titles): it
is renamed to the title the report now gives that kind, and one more of the same kind, or
one of a kind the report no longer has (Unverified turned off), is deleted in the same
structure batch. The Alerts tab of alerts turned off (the team's edits), a tab of an agent no
longer in the report, a manager's tab (whatever its title) and a tab whose kind nothing says
are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.errors import SyncError
from csat_hook.sync import owned_tabs
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.layout import Grid
from csat_hook.sync.outputs.sheets import SheetsOutput
from csat_hook.sync.outputs.sheets_format import object_id
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
FORM = "Form Responses 1"
STRUCTURE = r"^/v4/spreadsheets/[^/]+:batchUpdate$"
EN = ["Summary", "Trends", "Responses", "Unverified"]
RU = ["Сводка", "Динамика", "Ответы", "Непроверенные"]


@pytest.fixture
def receivers(kit: Any) -> Iterator[FakeNotify]:
    fake = FakeNotify(now=lambda: kit.now.timestamp()).start()
    yield fake
    fake.stop()


def ids(kit: Any, titles: list[str]) -> list[int]:
    return [kit.fake.tab(SHEET_ID, t).sheet_id for t in titles]


def answer(kit: Any, n: int, agent: str = "7", name: str = "Anna") -> None:
    """One more answer in the form's tab (the data changes: the report is built again)."""
    token = kit.survey(f"T-{n}", agent, name, created=kit.now)
    kit.fake.append_rows(SHEET_ID, FORM, [[T0 + timedelta(hours=n), 5, "ok", "", "", token]])
    kit.now += timedelta(hours=1)


def test_a_language_switch_renames_the_reports_own_tabs_and_leaves_no_second_set(kit):
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    kit.fake.add_tab(SHEET_ID, "Notes", [["a manager's"]])
    assert kit.run().status == "ok"
    english = ids(kit, EN)

    kit.now += timedelta(minutes=10)
    summary = kit.run(kit.config(output={"language": "ru"}))

    assert summary.status == "ok", summary.error
    titles = kit.fake.titles(SHEET_ID)
    assert not set(EN) & set(titles)
    assert sorted(titles) == sorted([FORM, *RU, "Anna (7)", "Notes"])
    assert ids(kit, RU) == english  # the same tabs: a manager's link to one still works
    assert kit.sheet("Сводка")[0][0].startswith("Отчёт CSAT")
    assert kit.sheet("Notes") == [["a manager's"]]
    # One structure batch and one value write; the run after it writes nothing.
    assert kit.fake.count("sheets_write") == 4
    kit.fake.reset_requests()
    kit.now += timedelta(minutes=10)
    assert kit.run(kit.config(output={"language": "ru"})).status == "ok"
    assert kit.fake.count("sheets_write") == 0

    # And back.
    kit.now += timedelta(minutes=10)
    assert kit.run().status == "ok"
    assert sorted(kit.fake.titles(SHEET_ID)) == sorted([FORM, *EN, "Anna (7)", "Notes"])
    assert ids(kit, EN) == english


def test_a_second_set_left_by_an_earlier_version_is_deleted(kit):
    """The spreadsheet as an earlier version left it after a switch from Russian: both sets,
    the Russian one frozen. The next report deletes it in its one structure batch."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run().status == "ok"
    english = ids(kit, EN)
    for title in RU:
        sheet_id = object_id("csat-hook tab", title.casefold(), 0)
        kit.fake.add_tab(SHEET_ID, title, [["frozen"]], sheet_id=sheet_id)
    kit.fake.add_tab(SHEET_ID, "Notes", [["a manager's"]])
    answer(kit, 2)
    kit.fake.reset_requests()

    summary = kit.run()

    assert summary.status == "ok", summary.error
    titles = kit.fake.titles(SHEET_ID)
    assert sorted(titles) == sorted([FORM, *EN, "Anna (7)", "Notes"])
    assert ids(kit, EN) == english
    assert [row[1] for row in kit.sheet("Anna (7)")[1:]] == ["T-2", "T-1"]
    assert kit.fake.count("sheets_write") == 2  # the deletes went with the structure batch
    assert summary.outputs[0]["tabs_deleted"] == 4


def test_a_managers_tabs_titled_in_the_other_language_are_never_touched(kit):
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    kit.fake.add_tab(SHEET_ID, "Сводка", [["a manager's summary"]])
    kit.fake.add_tab(SHEET_ID, "Ответы", [["a manager's answers"]])
    assert kit.run().status == "ok"
    english = ids(kit, EN)
    assert kit.sheet("Сводка") == [["a manager's summary"]]

    kit.now += timedelta(minutes=10)
    assert kit.run(kit.config(output={"language": "ru"})).status == "ok"

    titles = kit.fake.titles(SHEET_ID)
    assert kit.sheet("Сводка") == [["a manager's summary"]]
    assert kit.sheet("Ответы") == [["a manager's answers"]]
    assert ids(kit, ["Сводка 2", "Динамика", "Ответы 2", "Непроверенные"]) == english
    assert not set(EN) & set(titles)


def test_the_unverified_tab_turned_off_is_deleted(kit):
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run().status == "ok"
    assert "Unverified" in kit.fake.titles(SHEET_ID)
    config = kit.config(output={"gsheets": {"unverified": False}})

    kit.now += timedelta(minutes=10)
    assert kit.run(config).status == "ok"

    assert sorted(kit.fake.titles(SHEET_ID)) == sorted([FORM, *EN[:3], "Anna (7)"])
    kit.fake.reset_requests()
    kit.now += timedelta(minutes=10)
    assert kit.run(config).status == "ok"
    assert kit.fake.count("sheets_write") == 0


def test_the_alerts_tab_of_alerts_turned_off_is_kept_with_the_teams_edits(kit, receivers):
    slack = {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}}
    rule = {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run(kit.config(alerts={"destinations": slack, "rules": [rule]})).status == "ok"
    assert "Alerts" in kit.fake.titles(SHEET_ID)

    kit.now += timedelta(minutes=10)
    header = kit.sheet("Alerts")[0]
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, header.index("Handled"), "called back")
    assert kit.run(kit.config(alerts={"destinations": slack, "rules": []})).status == "ok"

    assert sorted(kit.fake.titles(SHEET_ID)) == sorted([FORM, *EN, "Anna (7)", "Alerts"])
    assert kit.sheet("Alerts")[1][header.index("Handled")] == "called back"


def test_a_tab_of_an_agent_no_longer_in_the_report_is_kept(kit):
    """An agent's tab lists every answer credited to them: they leave the report only when
    none is any more. Their tab holds what a manager read there: kept, not deleted."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    boris = object_id("csat-hook agent tab", "8", 0)
    kit.fake.add_tab(SHEET_ID, "Boris (8)", [["Boris's answers"]], sheet_id=boris)
    with kit.engine.begin() as conn:
        owned_tabs.record(conn, f"gsheets:{SHEET_ID}", [boris], kit.now)

    assert kit.run(kit.config(output={"language": "ru"})).status == "ok"

    assert kit.sheet("Boris (8)") == [["Boris's answers"]]


def test_a_recorded_tab_whose_kind_nothing_says_is_kept(kit):
    """A tab the earliest versions let Google number, recorded as written: its title says
    nothing sure (a name-only agent's tab is their bare name), so it is not deleted."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    old = kit.fake.add_tab(SHEET_ID, "Сводка", [["old"]]).sheet_id
    with kit.engine.begin() as conn:
        owned_tabs.record(conn, f"gsheets:{SHEET_ID}", [old], kit.now)

    assert kit.run().status == "ok"

    assert kit.sheet("Сводка") == [["old"]]


def test_a_delete_whose_answer_was_lost_is_planned_again(kit):
    """The batch deleting a stale tab is applied but its answer lost: the output plans again
    from what is there (the tab gone) instead of sending the deleteSheet again."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run().status == "ok"
    stale = object_id("csat-hook tab", "сводка", 0)
    kit.fake.add_tab(SHEET_ID, "Сводка", [["frozen"]], sheet_id=stale)
    answer(kit, 2)
    kit.fake.reset_requests()
    kit.fake.lose(1, "sheets_write", path=STRUCTURE)

    summary = kit.run()

    assert summary.status == "ok", summary.error
    assert "Сводка" not in kit.fake.titles(SHEET_ID)
    assert [row[1] for row in kit.sheet("Anna (7)")[1:]] == ["T-2", "T-1"]
    assert [w["status"] for w in kit.fake.api_requests("sheets_write")] == ["dropped", 200]


def test_a_dry_run_counts_the_deletes_and_makes_none(kit):
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run().status == "ok"
    stale = object_id("csat-hook tab", "сводка", 0)
    kit.fake.add_tab(SHEET_ID, "Сводка", [["frozen"]], sheet_id=stale)
    answer(kit, 2)

    summary = kit.run(dry_run=True)

    assert summary.status == "ok", summary.error
    assert summary.outputs[0]["tabs_deleted"] == 1
    assert kit.sheet("Сводка") == [["frozen"]]


def test_a_tab_of_ours_a_manager_renamed_is_theirs_to_keep(kit):
    """Renamed "Summary November" to keep a snapshot: its title is none the report gives, so
    it is neither taken back under the new language's title nor deleted."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run().status == "ok"
    kit.fake.tab(SHEET_ID, "Summary").title = "Summary November"
    snapshot = kit.sheet("Summary November")

    kit.now += timedelta(minutes=10)
    assert kit.run(kit.config(output={"language": "ru"})).status == "ok"

    titles = kit.fake.titles(SHEET_ID)
    assert sorted(titles) == sorted([FORM, "Summary November", *RU, "Anna (7)"])
    assert kit.sheet("Summary November") == snapshot


def test_the_stale_tabs_cells_do_not_count_against_the_spreadsheets_limit(kit):
    """A spreadsheet holds 10,000,000 cells: the tabs the batch deletes free theirs in it."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run().status == "ok"
    stale = object_id("csat-hook tab", "сводка", 0)
    kit.fake.add_tab(SHEET_ID, "Сводка", [["frozen"]], sheet_id=stale, row_count=399_000)
    kit.fake.tab(SHEET_ID, "Сводка").cols = 25  # 9,975,000 cells
    answer(kit, 2, agent="8", name="Boris")  # a new tab: the report grows

    summary = kit.run()

    assert summary.status == "ok", summary.error
    assert "Сводка" not in kit.fake.titles(SHEET_ID)
    assert kit.sheet("Boris (8)")[1][1] == "T-2"


def test_the_alerts_tab_retitled_keeps_the_teams_edits_and_its_tab(kit, receivers):
    """``alerts.tab: Alerts`` → ``Инциденты``: the team's "Handled" edits since the last run
    are read from the tab under its old title, which is renamed, not left beside."""
    slack = {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}}
    rule = {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
    answered = (kit.now - timedelta(minutes=2)).strftime("%m/%d/%Y %H:%M:%S")
    token = kit.survey("T-1", "7", "Anna")
    kit.responses([EN_HEADER, [answered, 1, "rude", "", "", token]], time_zone="UTC")
    assert kit.run(kit.config(alerts={"destinations": slack, "rules": [rule]})).status == "ok"
    tab = kit.fake.tab(SHEET_ID, "Alerts").sheet_id
    header = kit.sheet("Alerts")[0]
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, header.index("Handled"), "called back")
    config = kit.config(alerts={"destinations": slack, "rules": [rule], "tab": "Инциденты"})

    kit.now += timedelta(minutes=5)
    assert kit.run(config).status == "ok"

    titles = kit.fake.titles(SHEET_ID)
    assert "Alerts" not in titles
    assert kit.fake.tab(SHEET_ID, "Инциденты").sheet_id == tab
    assert kit.sheet("Инциденты")[1][header.index("Handled")] == "called back"


def test_a_spreadsheet_holding_only_stale_tabs_keeps_a_sheet(fake_google, google_session):
    """Google refuses to delete the last sheet: the tabs the batch adds come before its
    deletes, so the spreadsheet is never left without one, even for a moment."""
    fake_google.add_spreadsheet("report")
    stale = object_id("csat-hook tab", "непроверенные", 0)
    fake_google.add_tab("report", "Непроверенные", [["frozen"]], sheet_id=stale)
    grids = [Grid("Summary", "summary", [["Agent", "CSAT"], ["Anna", 1.0]])]

    done = SheetsOutput(SheetsApi(google_session), "report").write(grids, "en")

    assert fake_google.titles("report") == ["Summary"]
    assert fake_google.cells("report", "Summary")[:2] == [["Agent", "CSAT"], ["Anna", 1.0]]
    assert (done["tabs_created"], done["tabs_deleted"]) == (1, 1)


def test_a_spreadsheet_of_stale_tabs_at_the_cell_limit_fails_before_writing(
    fake_google, google_session
):
    """Every tab stale, the last deleted after the tabs added (Google keeps a sheet), and
    Google checks its cell limit after each request: a stale tab of 9,999,000 cells makes
    the Summary's addSheet go over, though the batch ends under. Said before anything is
    written, with what to do, instead of Google's 400 on every run."""
    fake_google.add_spreadsheet("report")
    stale = object_id("csat-hook tab", "непроверенные", 0)
    fake_google.add_tab("report", "Непроверенные", [["frozen"]], sheet_id=stale)
    fake_google.tab("report", "Непроверенные").rows = 399_960
    fake_google.tab("report", "Непроверенные").cols = 25  # 9,999,000 cells
    rows = [["Agent", "CSAT"]] + [[f"Agent {i}", 1.0] for i in range(2_000)]
    grids = [Grid("Summary", "summary", rows)]

    with pytest.raises(SyncError) as refused:
        SheetsOutput(SheetsApi(google_session), "report").write(grids, "en")

    assert "before the tabs it deletes are gone" in refused.value.message
    assert "output.gsheets.spreadsheet_id" in refused.value.message
    assert fake_google.count("sheets_write") == 0


def test_a_departed_name_only_agents_tab_gives_way_to_the_reports_own_title(kit):
    """A name-only agent "Summary" (a shared account, or an agent so named) no longer in the
    report keeps their tab "Summary", found by its id. Switched to English, the report's
    Summary ("Сводка") was pushed to "Summary 2" beside it: a manager's link to the report's
    Summary by its title, and the report's own look, went to the agent's frozen tab. The
    report's own tab keeps its title now; the agent's tab, kept with what it held, is the
    one renamed, and stays so run after run."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    departed = object_id("csat-hook agent tab", "Summary", 0)
    kept = [["Summary's answers"]]
    kit.fake.add_tab(SHEET_ID, "Summary", kept, sheet_id=departed)
    with kit.engine.begin() as conn:
        owned_tabs.record(conn, f"gsheets:{SHEET_ID}", [departed], kit.now)
    assert kit.run(kit.config(output={"language": "ru"})).status == "ok"
    [summary] = ids(kit, ["Сводка"])
    answer(kit, 2)

    assert kit.run(kit.config(output={"language": "en"})).status == "ok"

    assert ids(kit, ["Summary", "Summary 2"]) == [summary, departed]
    assert kit.sheet("Summary")[0][0].startswith("CSAT report")
    assert kit.sheet("Summary 2") == kept
    answer(kit, 3)
    assert kit.run(kit.config(output={"language": "en"})).status == "ok"
    assert ids(kit, ["Summary", "Summary 2"]) == [summary, departed]
    assert kit.sheet("Summary 2") == kept
    # A report started afresh beside such a tab gives it way as well.
    with kit.fake.lock:
        sheet = kit.fake.spreadsheets[SHEET_ID]
        sheet.tabs.remove(sheet.tab_by_title("Summary"))
        sheet.tab_by_title("Summary 2").title = "Summary"
    answer(kit, 4)
    assert kit.run(kit.config(output={"language": "en"})).status == "ok"
    assert ids(kit, ["Summary 2"]) == [departed]
    assert kit.sheet("Summary")[0][0].startswith("CSAT report")
