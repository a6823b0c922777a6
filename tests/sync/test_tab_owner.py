"""The report writes only into tabs csat-hook owns.

An agent's title comes from the name the helpdesk sends (typed by helpdesk users): a title
equal to a tab csat-hook did not make ("Ответы на форму (1)" is the tab Google Forms links
its responses to in Russian) took that tab and overwrote it. A tab is csat-hook's when its
sheetId is one csat-hook makes (from an agent key or the tab's own title) or one it recorded
writing (``sync_outputs.tabs``; migration 0013 records the tabs of the last report written
before it); any other tab's title is avoided, as the form's responses tab's always was.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db import migrate
from csat_hook.db.schema import alerts
from csat_hook.db.schema import sync_outputs
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.sync import owned_tabs
from csat_hook.sync.outputs.sheets_format import object_id
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
LINKED = "1LinkedSheet"
RATING, TOKEN = "aa11", "bb22"
FORM_TAB = "Ответы на форму (1)"
FORM_ROWS = [["Отметка времени", "Оценка"], ["18.11.2026 12:00:00", 5]]


@pytest.fixture
def receivers(kit: Any) -> Iterator[FakeNotify]:
    fake = FakeNotify(now=lambda: kit.now.timestamp()).start()
    yield fake
    fake.stop()


def form_response(n: int, rating: str, token: str) -> dict[str, Any]:
    when = (T0 + timedelta(hours=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
    answers = {RATING: rating, TOKEN: token}
    return {
        "responseId": f"ACYDBNj{n:06d}",
        "createTime": when,
        "lastSubmittedTime": when,
        "answers": {
            qid: {"questionId": qid, "textAnswers": {"answers": [{"value": value}]}}
            for qid, value in answers.items()
        },
    }


def forms_config(kit: Any) -> Any:
    """The forms_api source, the report in the form's linked spreadsheet: nothing protected."""
    return kit.config(
        results={
            "source": "forms_api",
            "forms_api": {"form_id": "f", "question_ids": {"rating": RATING, "token": TOKEN}},
        },
        output={"gsheets": {"spreadsheet_id": LINKED}},
    )


def test_an_agents_title_equal_to_the_forms_responses_tab_does_not_take_it(kit):
    kit.fake.add_spreadsheet(LINKED, locale="ru_RU")
    kit.fake.add_tab(LINKED, FORM_TAB, FORM_ROWS)  # made by Google Forms: Google's own id
    kit.fake.add_form("f", [form_response(0, "2", kit.survey("T-1", "1", "Ответы на форму"))])

    summary = kit.run(forms_config(kit))

    assert summary.status == "ok", summary.error
    assert kit.fake.cells(LINKED, FORM_TAB) == FORM_ROWS
    assert f"{FORM_TAB} 2" in kit.fake.titles(LINKED)
    assert kit.fake.cells(LINKED, f"{FORM_TAB} 2")[1][1] == "T-1"
    # And again on the next run, with a new answer: the same tab of ours, nothing else.
    kit.fake.submit_response("f", form_response(1, "4", kit.survey("T-2", "1", "Ответы на форму")))
    kit.now += timedelta(hours=1)
    assert kit.run(forms_config(kit)).status == "ok"
    assert kit.fake.cells(LINKED, FORM_TAB) == FORM_ROWS
    assert [row[1] for row in kit.fake.cells(LINKED, f"{FORM_TAB} 2")[1:]] == ["T-2", "T-1"]


def test_a_name_only_agent_does_not_take_a_managers_tab(kit):
    """No id, no e-mail: the key is the name, and the title is just the name."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", None, "Budget")]])
    kit.fake.add_tab(SHEET_ID, "Budget", [["the team's budget", 1200]])

    summary = kit.run()

    assert summary.status == "ok", summary.error
    assert kit.sheet("Budget") == [["the team's budget", 1200]]
    assert kit.sheet("Budget 2")[1][1] == "T-1"


def test_the_reports_own_tabs_do_not_take_a_managers_tab_either(kit):
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    kit.fake.add_tab(SHEET_ID, "Summary", [["a manager's summary"]])

    summary = kit.run()

    assert summary.status == "ok", summary.error
    assert kit.sheet("Summary") == [["a manager's summary"]]
    assert kit.sheet("Summary 2")[0][0] != "a manager's summary"
    assert "Summary 3" not in kit.fake.titles(SHEET_ID)


def test_a_request_budget_of_a_run_with_a_foreign_tab_is_unchanged(kit):
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    kit.fake.add_tab(SHEET_ID, "Anna (7)", [["mine"]])
    assert kit.run().status == "ok"
    assert (kit.fake.count("sheets_read"), kit.fake.count("sheets_write")) == (2, 2)
    kit.fake.reset_requests()
    kit.now += timedelta(minutes=10)
    assert kit.run().status == "ok"  # nothing changed: nothing written
    assert kit.fake.count("sheets_write") == 0
    assert kit.sheet("Anna (7)") == [["mine"]]


def test_a_tab_renamed_under_an_earlier_version_is_still_written(kit):
    """A tab made before ids came from keys has an id made from its first title: once
    renamed (the agent's new name), only the record says it is csat-hook's."""
    token = kit.survey("T-1", "7", "Anna Smirnova")
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", token]])
    legacy = object_id("csat-hook tab", "anna petrova (7)", 0)
    kit.fake.add_tab(SHEET_ID, "Anna Petrova (7)", [["old"]], sheet_id=legacy)
    assert kit.run().status == "ok"
    assert kit.fake.tab(SHEET_ID, "Anna Smirnova (7)").sheet_id == legacy

    later = kit.survey("T-2", "7", "Anna Smirnova", created=kit.now)
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[T0, 4, "b", "", "", later]])
    kit.now += timedelta(hours=1)
    assert kit.run().status == "ok"

    assert "Anna Smirnova (7) 2" not in kit.fake.titles(SHEET_ID)
    assert [row[1] for row in kit.sheet("Anna Smirnova (7)")[1:]] == ["T-2", "T-1"]


def test_tabs_an_earlier_version_wrote_are_still_written_after_the_upgrade(kit):
    """The earliest versions let Google number their tabs, and every version adopted a tab
    by its title: the tabs of the last report written before the upgrade (its key's detail)
    are recorded as csat-hook's by migration 0013 and written on."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    ours = {
        title: kit.fake.add_tab(SHEET_ID, title, [["old"]]).sheet_id
        for title in ("Summary", "Trends", "Responses", "Anna (7)", "Boris (8)")
    }
    kit.fake.add_tab(SHEET_ID, "Notes", [["a manager's"]])
    expected = {"tabs": [[title, sheet_id, 1, 1, 0, []] for title, sheet_id in ours.items()]}
    migrate.downgrade(kit.engine, "0011")
    with kit.engine.begin() as conn:  # as the last write before the upgrade left it
        conn.execute(
            sa.insert(sync_outputs).values(
                output=f"gsheets:{SHEET_ID}",
                digest="0" * 64,
                written_at=kit.now,
                report_key="0" * 64,
                report_detail={"expected": expected, "agents": 2},
            )
        )
    migrate.upgrade(kit.engine)
    with kit.engine.connect() as conn:
        recorded = conn.execute(sa.select(sync_outputs.c.tabs)).scalar_one()
    assert sorted(recorded) == sorted(ours.values())

    summary = kit.run()

    assert summary.status == "ok", summary.error
    titles = kit.fake.titles(SHEET_ID)
    assert not [t for t in titles if t.endswith(" 2")]
    for title in ("Summary", "Trends", "Responses", "Anna (7)"):
        assert kit.fake.tab(SHEET_ID, title).sheet_id == ours[title]
        assert kit.sheet(title)[0] != ["old"]
    assert kit.sheet("Anna (7)")[1][1] == "T-1"
    assert kit.sheet("Notes") == [["a manager's"]]


def test_a_rename_applied_before_a_failed_value_write_is_remembered(kit):
    """The tab is recorded before the rename is sent: the write failing after it (the report
    key forgotten) leaves the record, and the next run writes the renamed tab."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna Smirnova")]])
    legacy = object_id("csat-hook tab", "anna petrova (7)", 0)
    kit.fake.add_tab(SHEET_ID, "Anna Petrova (7)", [["old"]], sheet_id=legacy)
    original = kit.fake.handle

    def refuse_values(method, path, query, body, authorization):
        if path.endswith("values:batchUpdate"):
            kit.fake.fail(1, 400, "sheets_write")
        return original(method, path, query, body, authorization)

    kit.fake.handle = refuse_values
    assert kit.run().status == "failed"
    assert kit.fake.tab(SHEET_ID, "Anna Smirnova (7)").sheet_id == legacy  # renamed
    kit.fake.handle = original
    kit.now += timedelta(minutes=10)

    assert kit.run().status == "ok"
    assert "Anna Smirnova (7) 2" not in kit.fake.titles(SHEET_ID)
    assert kit.sheet("Anna Smirnova (7)")[1][1] == "T-1"


def test_a_recorded_tab_google_numbered_is_renamed_with_its_agent(kit):
    """A tab of the earliest versions, recorded, follows its agent's new name as one whose
    id came from its title does (its title ends with the agent's key)."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna Smirnova")]])
    old = kit.fake.add_tab(SHEET_ID, "Anna Petrova (7)", [["old"]]).sheet_id
    with kit.engine.begin() as conn:
        owned_tabs.record(conn, f"gsheets:{SHEET_ID}", [old], kit.now)
    kit.fake.add_tab(SHEET_ID, "Notes (7)", [["a manager's"]])

    assert kit.run().status == "ok"

    assert kit.fake.tab(SHEET_ID, "Anna Smirnova (7)").sheet_id == old
    assert "Anna Petrova (7)" not in kit.fake.titles(SHEET_ID)
    assert kit.sheet("Notes (7)") == [["a manager's"]]


def test_a_dry_run_records_nothing(kit):
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna")]])
    assert kit.run(dry_run=True).status == "ok"
    with kit.engine.connect() as conn:
        assert owned_tabs.recorded(conn, f"gsheets:{SHEET_ID}") is None
    assert kit.run().status == "ok"
    with kit.engine.connect() as conn:
        recorded = owned_tabs.recorded(conn, f"gsheets:{SHEET_ID}")
    ids = {kit.fake.tab(SHEET_ID, t).sheet_id for t in ("Summary", "Anna (7)")}
    assert recorded is not None and ids <= set(recorded) and 0 not in recorded


def test_the_handled_column_is_read_from_the_alerts_tab_of_ours_only(kit, receivers):
    """A manager's tab titled "Alerts": the team's Alerts tab is "Alerts 2", its "Handled"
    column is read from there, and the manager's tab is neither read nor written."""
    config = kit.config(
        alerts={
            "destinations": {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}},
            "rules": [
                {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
            ],
        }
    )
    answered = (kit.now - timedelta(minutes=2)).strftime("%m/%d/%Y %H:%M:%S")
    token = kit.survey("T-1", "7", "Anna")
    kit.responses([EN_HEADER, [answered, 1, "rude", "", "", token]], time_zone="UTC")
    manager = [["Alert", "Handled"], [1, "not a csat-hook alert"]]
    kit.fake.add_tab(SHEET_ID, "Alerts", manager)

    assert kit.run(config).alerts["raised"] == {"low": 1}
    assert kit.sheet("Alerts") == manager
    header = kit.sheet("Alerts 2")[0]
    kit.fake.set_cell(SHEET_ID, "Alerts 2", 1, header.index("Handled"), "called back")
    kit.now += timedelta(minutes=5)
    assert kit.run(config).status == "ok"

    assert kit.sheet("Alerts") == manager
    assert [a.handled for a in kit.rows(alerts)] == ["called back"]
    assert kit.sheet("Alerts 2")[1][header.index("Handled")] == "called back"


def test_a_rename_whose_answer_was_lost_is_still_ours_when_planned_again(kit):
    """The structure batch renaming a tab known only by the record (its id made from its first
    title) and adding others is applied but its answer lost: the retried addSheet is refused
    and the report is planned again. The renamed tab is still ours then (recorded before the
    rename was sent), not a foreign tab with a " 2" beside it, and stays recorded."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna Smirnova")]])
    legacy = object_id("csat-hook tab", "anna petrova (7)", 0)
    kit.fake.add_tab(SHEET_ID, "Anna Petrova (7)", [["old"]], sheet_id=legacy)
    kit.fake.lose(1, "sheets_write", path=r":batchUpdate$")

    summary = kit.run()

    assert summary.status == "ok", summary.error
    assert kit.fake.tab(SHEET_ID, "Anna Smirnova (7)").sheet_id == legacy
    assert "Anna Smirnova (7) 2" not in kit.fake.titles(SHEET_ID)
    assert kit.sheet("Anna Smirnova (7)")[1][1] == "T-1"
    with kit.engine.connect() as conn:
        assert legacy in (owned_tabs.recorded(conn, f"gsheets:{SHEET_ID}") or [])


def test_the_alerts_tab_beside_a_deleted_managers_tab_keeps_the_teams_edits(kit, receivers):
    """The team's Alerts tab is "Alerts 2" beside a manager's "Alerts"; the manager deletes
    theirs. The next run reads "Handled" from "Alerts 2" (the team's edits since the last run
    are kept) and renames it "Alerts": no second Alerts tab, none left behind."""
    config = kit.config(
        alerts={
            "destinations": {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}},
            "rules": [
                {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
            ],
        }
    )
    answered = (kit.now - timedelta(minutes=2)).strftime("%m/%d/%Y %H:%M:%S")
    kit.responses(
        [EN_HEADER, [answered, 1, "rude", "", "", kit.survey("T-1", "7", "Anna")]],
        time_zone="UTC",
    )
    kit.fake.add_tab(SHEET_ID, "Alerts", [["Alert", "Handled"], [1, "a manager's"]])
    kit.fake.add_tab(SHEET_ID, "Summary", [["a manager's summary"]])
    assert kit.run(config).alerts["raised"] == {"low": 1}
    alerts_id = kit.fake.tab(SHEET_ID, "Alerts 2").sheet_id
    summary_id = kit.fake.tab(SHEET_ID, "Summary 2").sheet_id
    header = kit.sheet("Alerts 2")[0]
    kit.fake.set_cell(SHEET_ID, "Alerts 2", 1, header.index("Handled"), "called back")
    with kit.fake.lock:  # the manager deletes their tabs
        sheet = kit.fake.spreadsheets[SHEET_ID]
        for title in ("Alerts", "Summary"):
            sheet.tabs.remove(sheet.tab_by_title(title))
    kit.now += timedelta(minutes=5)

    assert kit.run(config).status == "ok"

    assert [a.handled for a in kit.rows(alerts)] == ["called back"]
    titles = kit.fake.titles(SHEET_ID)
    assert "Alerts 2" not in titles and "Summary 2" not in titles
    assert kit.fake.tab(SHEET_ID, "Alerts").sheet_id == alerts_id
    assert kit.fake.tab(SHEET_ID, "Summary").sheet_id == summary_id
    assert kit.sheet("Alerts")[1][header.index("Handled")] == "called back"
    # And the run after that changes nothing.
    kit.fake.reset_requests()
    kit.now += timedelta(minutes=5)
    assert kit.run(config).status == "ok"
    assert kit.fake.count("sheets_write") == 0
    assert kit.fake.titles(SHEET_ID) == titles
