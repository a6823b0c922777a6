"""How the report looks in Google Sheets, on the emulator: number formats, frozen panes,
widths, conditional rules and charts, all within the request budget; a second run sends no
format request and changes nothing; rules are replaced, never stacked; charts are updated in
place, never duplicated; a Russian spreadsheet reads in Russian."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from csat_hook.devtools import sheets_model
from csat_hook.devtools.sheets_model import SheetsApiError
from csat_hook.sync.outputs.sheets import FORMAT_KEY
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import RU_HEADER
from tests.sync.conftest import SHEET_ID

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
STRUCTURE = ":batchUpdate"


def seed(kit, agents: int = 4, per_agent: int = 12, header=EN_HEADER, locale="en_US") -> None:
    """Agent a gives ratings 5 in the share 1 − a/(2·agents): no two agents tie."""
    rows = [header]
    for a in range(agents):
        for i in range(per_agent):
            token = kit.survey(
                f"T-{a}-{i}", str(100 + a), f"Agent {a:02d}", created=T0 - timedelta(days=i)
            )
            rating = 5 if i * agents * 2 >= a * per_agent else 1 + i % 3
            rows.append([T0 + timedelta(hours=i), rating, f"c {a}/{i}", "", "", token])
    kit.responses(rows, locale=locale)


def writes(kit) -> list[str]:
    return [r["path"].rsplit("/", 1)[-1] for r in kit.fake.api_requests("sheets_write")]


def test_formats_rules_and_charts_in_one_structure_write(kit):
    seed(kit)
    summary = kit.run()

    assert summary.status == "ok", summary.error
    assert (kit.fake.count("sheets_read"), kit.fake.count("sheets_write")) == (2, 2)
    assert writes(kit) == [f"{SHEET_ID}{STRUCTURE}", "values:batchUpdate"]
    tab = kit.fake.tab(SHEET_ID, "Summary")
    assert (tab.frozen_rows, tab.frozen_cols) == (4, 2)
    assert tab.format_at(3, 0)["textFormat"]["bold"]  # the leaderboard's header
    assert tab.format_at(4, 3)["numberFormat"] == {"type": "PERCENT", "pattern": "0.0%"}
    assert tab.format_at(4, 8)["numberFormat"]["pattern"] == '+0.0" pp";-0.0" pp";0.0" pp"'
    assert tab.widths[1] > tab.widths[0]  # the agent column is wider than the rank column
    formulas = [r["booleanRule"]["condition"]["values"][0]["userEnteredValue"] for r in tab.rules]
    # Locale-proof: no decimal point, no argument separator.
    assert formulas[:2] == ["=ISNUMBER(D5)*(D5<1699/2000)", "=ISNUMBER(D5)*(D5>=1699/2000)"]
    assert '=$J5="▼"' in formulas
    [chart] = tab.charts.values()
    basic = chart["spec"]["basicChart"]
    assert basic["chartType"] == "COMBO"
    assert [s["type"] for s in basic["series"]] == ["COLUMN", "LINE", "LINE"]
    assert chart["spec"]["title"] == "CSAT by agent, last 30 days (95% interval)"
    agents_range = basic["domains"][0]["domain"]["sourceRange"]["sources"][0]
    assert (agents_range["startRowIndex"], agents_range["endRowIndex"]) == (3, 3 + 1 + 4)
    trends = kit.fake.tab(SHEET_ID, "Trends")
    assert len(trends.charts) == 1
    responses = kit.fake.tab(SHEET_ID, "Responses")
    assert responses.format_at(40, 0)["numberFormat"] == {
        "type": "DATE_TIME",
        "pattern": "yyyy-mm-dd hh:mm",
    }
    [low] = kit.fake.tab(SHEET_ID, "Agent 00 (100)").rules
    assert low["booleanRule"]["condition"]["values"][0]["userEnteredValue"] == (
        "=ISNUMBER($C2)*($C2<=2)"
    )
    assert "endRowIndex" not in low["ranges"][0]  # grows with the tab: no new format write
    [stamp] = kit.fake.spreadsheets[SHEET_ID].developer_metadata
    assert stamp["metadataKey"] == FORMAT_KEY and stamp["metadataValue"].startswith("sha256:")


def test_a_second_run_sends_no_format_and_changes_nothing(kit):
    seed(kit)
    assert kit.run().status == "ok"
    before = kit.fake.state(SHEET_ID)
    kit.fake.reset_requests()
    assert kit.run().status == "ok"

    assert writes(kit) == []  # the sheet holds this very report: nothing to write
    assert kit.fake.state(SHEET_ID) == before


def test_new_answers_in_growing_tabs_need_no_format_write(kit):
    seed(kit)
    assert kit.run().status == "ok"
    # A late answer: the leaderboard and the trends get new figures, the Responses and agent
    # tabs a new row; no layout changes.
    token = kit.survey("T-new", "100", "Agent 00", created=T0 - timedelta(days=3))
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[T0, 5, "late", "", "", token]])
    kit.fake.reset_requests()
    assert kit.run().status == "ok"
    assert writes(kit) == ["values:batchUpdate"]
    assert len(kit.sheet("Responses")) == 1 + 4 * 12 + 1


def test_a_new_agent_replaces_rules_and_updates_the_chart_in_place(kit):
    seed(kit)
    assert kit.run().status == "ok"
    summary_tab = kit.fake.tab(SHEET_ID, "Summary")
    rules_before, [chart_id] = len(summary_tab.rules), list(summary_tab.charts)
    token = kit.survey("T-9", "999", "New Agent", created=T0)
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[T0, 5, "hello", "", "", token]])
    kit.fake.reset_requests()
    assert kit.run().status == "ok"

    assert kit.fake.count("sheets_write") <= 3
    tab = kit.fake.tab(SHEET_ID, "Summary")
    assert len(tab.rules) == rules_before  # deleted and added again, not stacked
    assert list(tab.charts) == [chart_id]  # the same chart, its range one row longer
    source = tab.charts[chart_id]["spec"]["basicChart"]["domains"][0]["domain"]
    assert source["sourceRange"]["sources"][0]["endRowIndex"] == 3 + 1 + 5
    state = kit.fake.state(SHEET_ID)
    kit.fake.reset_requests()
    assert kit.run().status == "ok"
    assert kit.fake.state(SHEET_ID) == state and writes(kit) == []


def test_a_deleted_chart_and_a_stray_rule_are_repaired(kit):
    seed(kit)
    assert kit.run().status == "ok"
    spreadsheet = kit.fake.spreadsheets[SHEET_ID]
    tab = kit.fake.tab(SHEET_ID, "Summary")
    [chart_id] = list(tab.charts)
    wanted = kit.fake.state(SHEET_ID)
    sheets_model.batch_update(
        spreadsheet,
        [
            {"deleteEmbeddedObject": {"objectId": chart_id}},
            {
                "addConditionalFormatRule": {
                    "index": 0,
                    "rule": {
                        "ranges": [{"sheetId": tab.sheet_id, "startRowIndex": 0, "endRowIndex": 1}],
                        "booleanRule": {
                            "condition": {"type": "NOT_BLANK"},
                            "format": {"textFormat": {"italic": True}},
                        },
                    },
                }
            },
        ],
    )
    assert kit.run().status == "ok"
    assert kit.fake.state(SHEET_ID) == wanted


@pytest.mark.parametrize("language", ["auto", "en"])
def test_a_russian_spreadsheet_reads_in_russian(kit, language):
    seed(kit, header=RU_HEADER, locale="ru_RU")
    config = kit.config(output={"language": language})
    assert kit.run(config).status == "ok"

    titles = kit.fake.titles(SHEET_ID)
    if language == "en":
        assert titles[:3] == ["Summary", "Trends", "Responses"]
        return
    assert titles[:3] == ["Сводка", "Динамика", "Ответы"] and "Непроверенные" in titles
    cells = kit.sheet("Сводка")
    assert cells[0][0].startswith("Отчёт CSAT — Последние 30 дней")
    assert cells[3][:4] == ["Место", "Сотрудник", "Оценок", "CSAT"]
    tab = kit.fake.tab(SHEET_ID, "Сводка")
    assert tab.format_at(4, 8)["numberFormat"]["pattern"] == '+0.0" п.п.";-0.0" п.п.";0.0" п.п."'
    [chart] = tab.charts.values()
    assert chart["spec"]["title"] == "CSAT по сотрудникам, последние 30 дней (95% интервал)"
    responses = kit.fake.tab(SHEET_ID, "Ответы")
    assert responses.format_at(1, 0)["numberFormat"]["pattern"] == "dd.mm.yyyy hh:mm"
    assert kit.sheet("Ответы")[0][0] == "Дата и время ответа (UTC)"


def test_the_emulator_refuses_what_googles_schema_refuses():
    """The negative control: bodies the discovery document rejects never reach the model."""
    sheet = sheets_model.Spreadsheet("x")
    sheets_model.batch_update(sheet, [{"addSheet": {"properties": {"title": "T", "sheetId": 7}}}])
    bad = [
        {"repeatCell": {"range": {"sheetId": 7}, "cell": {"userEnteredFormat": {
            "numberFormat": {"type": "PERCENTAGE"}}}, "fields": "userEnteredFormat"}},
        {"repeatCell": {"range": {"sheetId": 7}, "cell": {},
                        "fields": "userEnteredFormat.numberFormats"}},
        {"addChart": {"chart": {"spec": {"basicChart": {"series": [{"errorBars": {}}]}}}}},
        {"updateSheetProperties": {"properties": {"sheetId": "7"}, "fields": "title"}},
        {"repeatCell": {"range": {"sheetId": 7}, "cell": {}}},
        {"repeatCell": {}, "updateSheetProperties": {}},
    ]  # fmt: skip
    for request in bad:
        with pytest.raises(SheetsApiError) as caught:
            sheets_model.batch_update(sheet, [request])
        assert caught.value.status == 400
    assert sheet.tabs[0].formats == []
    with pytest.raises(SheetsApiError, match="Invalid field selection"):
        sheet.metadata("sheets(properties(sheetId,nonsense))")
    masked = sheet.metadata("sheets(properties(title))")
    assert masked == {"sheets": [{"properties": {"title": "T"}}]}


def test_a_chart_anchored_right_of_a_narrow_tab_gets_its_columns(kit):
    """One week and one month: the Trends tab is five columns wide, its chart is anchored in
    the seventh (Google refuses an anchor outside the grid)."""
    seed(kit, agents=2, per_agent=3)
    summary = kit.run(kit.config(metrics={"trend_weeks": 1, "trend_months": 1}))
    assert summary.status == "ok", summary.error
    trends = kit.fake.tab(SHEET_ID, "Trends")
    [chart] = trends.charts.values()
    assert chart["position"]["overlayPosition"]["anchorCell"]["columnIndex"] == 6 < trends.cols


@pytest.mark.parametrize(("target", "pattern"), [(0.85, "0%"), (0.855, "0.0%"), (0.8555, "0.0%")])
def test_the_summary_shows_the_target_the_rules_compare_with(kit, target, pattern):
    """``metrics.target_csat: 0.855`` was shown "86%" (a whole percent) while the rules
    colour 85.6% green: a target that is no whole percent is shown to a tenth, as every CSAT
    beside it is. (0.8555 shows 85.6% either way: the CSATs are shown to a tenth too.)"""
    seed(kit)
    summary = kit.run(kit.config(metrics={"target_csat": target}))

    assert summary.status == "ok", summary.error
    tab = kit.fake.tab(SHEET_ID, "Summary")
    assert kit.sheet("Summary")[1][2] == target
    assert tab.format_at(1, 2)["numberFormat"] == {"type": "PERCENT", "pattern": pattern}


@pytest.mark.parametrize(
    "target", [0.85, 0.8, 0.999999, 0.8333333, 0.66666667, 0.9999999, 0.8500001]
)
def test_target_in_a_rule_is_the_configured_target(target):
    """The rule's fraction is the target itself as Sheets divides it: 0.8333333 was written
    5/6, which coloured 10 answers of 12 (83.3333333%) red where the .xlsx colours it green,
    and 0.9999999 was written 1."""
    from csat_hook.sync.outputs.sheets_format import _ratio

    numerator, _, denominator = _ratio(target).partition("/")
    assert "." not in numerator + denominator
    assert float(numerator) / float(denominator or 1) == target
