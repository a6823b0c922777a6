"""Differential checks on hostile data: the report against a count done here from the docs.

tests/sync/test_differential.py compares the report with an independent count on random
worlds. These are small, hand-made worlds aimed at the edges of the definitions in
docs/sync.md ("The figures"), each figure counted here in plain Python, never by csat_hook:

* every figure of a period is about the cohort of surveys *created* in it (whole local days
  in ``metrics.timezone``); an answer counts in its survey's period, whenever it came;
* one rating per survey: the latest submission (an edit made in December of an answer given
  in November replaces it, in November);
* an answer to a survey never sent (skipped, cancelled, failed) counts in Answers and CSAT,
  not in the response rate; a dialog surveyed twice (a re-close) has two surveys, each with
  its own answer and its own agent;
* credit goes to the agent the reference names (fixed at send time), never to the form's
  editable agent field; a team is the one recorded with the survey, so an agent who moved
  teams counts in each team for the surveys recorded with it; overall is the union;
* answers to surveys of another instance count in CSAT with the token's issue time, not in
  the response rate; forged references count nowhere;
* Wilson's interval at n = 1, all 5s (upper bound 1) and all 1s (lower bound 0), and an
  agent with 10,000 answers.

* a survey row revived for the agent a dialog was reassigned to (a new reference);
* DST at period and week edges (America/New_York, Europe/Berlin), a period with zero answers
  (listed, CSAT blank) and one with nothing (not listed);
* the leaderboard's previous period, change and ▲/▼ against Newcombe's interval done here.

The same world is written in English and Russian (the sheet's headers and the report's
language) and read from the responses sheet, its CSV export and the Forms API: the numbers
must be the same. Successive syncs run on one runner, so the dataset kept from the last
report is patched with the December edits, as a new runner's build would be.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import surveys
from csat_hook.intake import store
from tests.sync.conftest import HELPDESK
from tests.sync.conftest import SHEET_ID
from tests.sync.conftest import SyncKit
from tests.sync.test_differential import BOARD
from tests.sync.test_differential import FORMS
from tests.sync.test_differential import Figures
from tests.sync.test_differential import by_period_rows
from tests.sync.test_differential import check_figures
from tests.sync.test_differential import csv_rows
from tests.sync.test_differential import day_of
from tests.sync.test_differential import export_time
from tests.sync.test_differential import leaderboard_rows
from tests.sync.test_differential import same
from tests.sync.test_differential import wilson

GID = 1877059582
MIN_N = 3


def newcombe_mark(now: Figures, before: Figures | None, min_n: int) -> str | None:
    """▲/▼ when Newcombe's hybrid score interval (1998, method 10) for CSAT now − CSAT
    before excludes 0 and both periods have at least ``min_n`` answers."""
    if before is None or now.answers < min_n or before.answers < min_n:
        return None
    assert now.csat is not None and before.csat is not None
    assert now.low is not None and now.high is not None
    assert before.low is not None and before.high is not None
    d = now.csat - before.csat
    low = d - math.sqrt((now.csat - now.low) ** 2 + (before.high - before.csat) ** 2)
    high = d + math.sqrt((now.high - now.csat) ** 2 + (before.csat - before.low) ** 2)
    return "▲" if low > 0 else "▼" if high < 0 else None


@dataclass
class Survey:
    key: str  # the survey's name in this test
    agent: str  # the agent key the reference names
    team: str | None
    created: datetime
    status: str
    token: str = ""
    in_database: bool = True


@dataclass
class Row:
    survey: Survey | None  # None: a forged reference
    when: datetime
    rating: int
    agent_field: str = ""
    token: str = ""
    response: int = 0  # the Forms API's responseId (an edit keeps it)
    first: datetime | None = None  # the Forms API's createTime of an edited response


@dataclass
class World:
    tz: ZoneInfo
    now: datetime
    names: dict[str, str]
    surveys: list[Survey] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


def add_surveys(
    kit: SyncKit, world: World, specs: list[tuple[str, str, str | None, datetime]]
) -> list[Survey]:
    """Many sent surveys ``(key, agent, team, created)`` in one statement."""
    made = [Survey(key, agent, team, created, "sent") for key, agent, team, created in specs]
    for survey in made:
        survey.token = kit.token(f"D-{survey.key}", survey.agent, survey.created)
    with kit.engine.begin() as conn:
        store.insert_surveys(
            conn,
            [
                {
                    "helpdesk": HELPDESK,
                    "dialog_id": f"D-{s.key}",
                    "occurrence": "",
                    "agent_id": s.agent,
                    "agent_name": world.names[s.agent],
                    "agent_email": None,
                    "team": s.team,
                    "token": s.token,
                    "status": "sent",
                    "created_at": s.created,
                    "sent_at": s.created,
                }
                for s in made
            ],
        )
    world.surveys.extend(made)
    return made


def add_survey(
    kit: SyncKit,
    world: World,
    key: str,
    agent: str,
    team: str | None,
    created: datetime,
    *,
    status: str = "sent",
    dialog: str | None = None,
    occurrence: str = "",
) -> Survey:
    """A survey recorded as intake records it (a re-close of a dialog: another occurrence)."""
    dialog = dialog or f"D-{key}"
    token = kit.token(dialog, agent, created)
    with kit.engine.begin() as conn:
        store.insert_surveys(
            conn,
            [
                {
                    "helpdesk": HELPDESK,
                    "dialog_id": dialog,
                    "occurrence": occurrence,
                    "agent_id": agent,
                    "agent_name": world.names[agent],
                    "agent_email": None,
                    "team": team,
                    "token": token,
                    "status": status,
                    "created_at": created,
                    "sent_at": created if status == "sent" else None,
                }
            ],
        )
    survey = Survey(key, agent, team, created, status, token)
    world.surveys.append(survey)
    return survey


def answer(world: World, survey: Survey | None, when: datetime, rating: int, **kw: Any) -> Row:
    row = Row(survey, when, rating, kw.get("agent_field", ""), kw.get("token", ""))
    row.response = len(world.rows) + 1
    if survey is not None and not row.token:
        row.token = survey.token
    world.rows.append(row)
    return row


# --- the independent count -------------------------------------------------------------------


def figures(cohort: list[Survey], ratings: list[tuple[Survey, int]]) -> Figures:
    sent = [s for s in cohort if s.status == "sent"]
    n = len(ratings)
    satisfied = sum(1 for _, r in ratings if r >= 4)
    answered_sent = sum(1 for s, _ in ratings if s.status == "sent" and s.in_database)
    low, high = wilson(satisfied, n) if n else (None, None)
    return Figures(
        sent=len(sent),
        answers=n,
        response_rate=answered_sent / len(sent) if sent else None,
        csat=satisfied / n if n else None,
        low=low,
        high=high,
        mean=sum(r for _, r in ratings) / n if n else None,
        distribution=tuple(sum(1 for _, r in ratings if r == v) for v in range(1, 6)),
    )


def credited(world: World) -> dict[str, tuple[Survey, int]]:
    """Survey → (survey, rating): its latest submission; in one second, the lower row."""
    best: dict[str, tuple[tuple[datetime, int], Survey, int]] = {}
    for index, row in enumerate(world.rows):
        if row.survey is None:
            continue
        order = (row.when.replace(microsecond=0), index)
        if row.survey.key not in best or order > best[row.survey.key][0]:
            best[row.survey.key] = (order, row.survey, row.rating)
    return {key: (s, r) for key, (_, s, r) in best.items()}


Span = tuple[date | None, date | None]


@functools.cache
def local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def expected(
    world: World, span: Span, credit: dict[str, tuple[Survey, int]] | None = None
) -> dict[str, dict[str, Figures]]:
    """ "all" → {"": figures}, "team" → team (None: "") → figures, "agent" → key → figures; a
    group is listed when it has an answer or a sent survey in the period. ``credit``:
    ``credited(world)``, for a caller that counts several periods of one world."""

    def inside(moment: datetime) -> bool:
        day = local_day(moment, world.tz)
        return (span[0] is None or day >= span[0]) and (span[1] is None or day <= span[1])

    cohort = [s for s in world.surveys if s.in_database and inside(s.created)]
    credit = credited(world) if credit is None else credit
    answered = [(s, r) for s, r in credit.values() if inside(s.created)]
    out: dict[str, dict[str, Figures]] = {"all": {"": figures(cohort, answered)}}
    for level, of in (("team", lambda s: s.team or ""), ("agent", lambda s: s.agent)):
        # Each group's surveys and answers in one pass, in the order a scan per group took.
        surveys_of: dict[str, list[Survey]] = {}
        for s in cohort:
            surveys_of.setdefault(of(s), []).append(s)
        answers_of: dict[str, list[tuple[Survey, int]]] = {}
        for a in answered:
            answers_of.setdefault(of(a[0]), []).append(a)
        groups = {of(s) for s in cohort if s.status == "sent"} | set(answers_of)
        out[level] = {g: figures(surveys_of.get(g, []), answers_of.get(g, [])) for g in groups}
    return out


# --- the report as written -------------------------------------------------------------------


def periods_csv(kit: SyncKit) -> dict[tuple[str, str, str], dict[str, Any]]:
    """periods.csv: (first day, last day, "all:"/"team:<name>"/"agent:<key>") → cells."""
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    all_words = {FORMS[locale]["words"]["all"] for locale in FORMS}
    for row in csv_rows(kit.tmp_path / "report" / "periods.csv")[1:]:
        if not row:
            continue
        level = (
            "agent:" + row[5] if row[5] else ("all:" if row[4] in all_words else "team:" + row[4])
        )
        cells: dict[str, Any] = dict(
            zip(
                ["sent", "answers", "response_rate", "csat", "low", "high", "mean"],
                row[7:14],
                strict=True,
            )
        )
        cells["distribution"] = tuple(int(v) for v in row[14:19])
        found.setdefault((row[1], row[2], level), cells)
    return found


def spans(today: date, months: int) -> list[Span]:
    listed: list[Span] = [(today - timedelta(days=6), today), (today - timedelta(days=29), today)]
    first, last = today.replace(day=1), today
    for _ in range(months):
        listed.append((first, last))
        last = first - timedelta(days=1)
        first = last.replace(day=1)
    listed.append((None, None))
    return listed


def sheet_rows(world: World, locale: str) -> list[list[Any]]:
    header = FORMS[locale]["header"]
    rows: list[list[Any]] = [header]
    for row in world.rows:
        ticket = row.survey.key if row.survey else "T-0"
        rows.append([row.when, row.rating, "", row.agent_field, ticket, row.token])
    return rows


def settings(kit: SyncKit, world: World, months: int, source: str = "gsheets") -> Any:
    both = [FORMS["en_US"]["header"], FORMS["ru_RU"]["header"]]
    return kit.config(
        results={
            "source": source,
            "gsheets": {"sheet_gid": GID},
            "csv": {"path": str(kit.tmp_path / "responses.csv"), "timezone": str(SHEET_TZ)},
            "forms_api": {"form_id": "1FormId", "question_ids": QUESTIONS},
            "columns": {
                role: [header[i] for header in both]
                for role, i in (("timestamp", 0), ("rating", 1), ("comment", 2), ("token", 5))
            },
        },
        metrics={
            "min_n": MIN_N,
            "timezone": str(world.tz),
            "periods": {"rolling_days": [7, 30], "calendar_months": months, "all_time": True},
            "headline_days": 30,
        },
        output={"local": {"enabled": True, "csv": True}},
    )


def check_report(kit: SyncKit, world: World, locale: str, months: int) -> None:
    """Every figure the report writes for every listed period, level and group."""
    words = FORMS[locale]["words"]
    today = world.now.astimezone(world.tz).date()
    listed = spans(today, months)
    credit = credited(world)  # the same for every period

    # periods.csv: each listed period with anything in it, for everyone, each team and agent.
    got = periods_csv(kit)
    want: dict[tuple[str, str, str], Figures] = {}
    for span in listed:
        exp = expected(world, span, credit)
        if not (exp["all"][""].sent or exp["all"][""].answers):
            continue  # a period with nothing in it is not listed
        key = (str(span[0] or ""), str(span[1] or ""))
        want[(*key, "all:")] = exp["all"][""]
        for team, team_figures in exp["team"].items():
            want[(*key, "team:" + (team or words["no_team"]))] = team_figures
        for agent, agent_figures in exp["agent"].items():
            want[(*key, "agent:" + agent)] = agent_figures
    assert set(got) == set(want), sorted(set(got) ^ set(want))
    for key, figures_ in want.items():
        check_figures(got[key], figures_, 100, 1, ("periods.csv", key))
        assert got[key]["distribution"] == figures_.distribution, ("periods.csv", key)

    # The Summary's "By period" table (fractions to 6 places): everyone and each team.
    summary = kit.sheet(words["summary"])
    written = {
        (day_of(r["from"]), day_of(r["to"]), r["name"]): r
        for r in by_period_rows(summary, words["by_period"])
    }
    wanted: dict[tuple[date | None, date | None, str], Figures] = {}
    for span in listed:
        exp = expected(world, span, credit)
        if not (exp["all"][""].sent or exp["all"][""].answers):
            continue
        wanted[(span[0], span[1], words["all"])] = exp["all"][""]
        if len(exp["team"]) > 1:
            for team, team_figures in exp["team"].items():
                wanted[(span[0], span[1], team or words["no_team"])] = team_figures
    assert set(written) == set(wanted), (sorted(map(str, written)), sorted(map(str, wanted)))
    for key, figures_ in wanted.items():
        check_figures(written[key], figures_, 1, 6, ("by period", key))

    # The leaderboard (the last 30 days, against the 30 before), in Sheets and summary.csv.
    headline = expected(world, (today - timedelta(days=29), today), credit)
    before = expected(world, (today - timedelta(days=59), today - timedelta(days=30)), credit)
    board = leaderboard_rows(summary)
    as_csv = {
        row[1]: dict(zip(BOARD, row, strict=False))
        for row in csv_rows(kit.tmp_path / "report" / "summary.csv")[1:]
        if row
    }
    want_board = {
        world.names[a]: (f, before["agent"].get(a), True) for a, f in headline["agent"].items()
    }
    if len(headline["team"]) > 1:
        want_board.update(
            {
                t or words["no_team"]: (f, before["team"].get(t), False)
                for t, f in headline["team"].items()
            }
        )
    want_board[words["all"]] = (headline["all"][""], before["all"].get(""), False)
    assert set(board) == set(want_board), (sorted(board), sorted(want_board))
    assert set(as_csv) == set(want_board)
    for name, (figures_, previous, is_agent) in want_board.items():
        for got_row, scale, places in ((board[name], 1, 6), (as_csv[name], 100, 1)):
            what = ("leaderboard", name, scale)
            check_figures(got_row, figures_, scale, places, what)
            then = previous.csat if previous is not None else None
            same(got_row["previous"], None if then is None else then * scale, places, what)
            change = None if then is None or figures_.csat is None else figures_.csat - then
            same(
                got_row["change"],
                None if change is None else 100 * change,
                6 if scale == 1 else 1,
                what,
            )
            assert (got_row["mark"] or None) == newcombe_mark(figures_, previous, MIN_N), what
            if is_agent:
                ranked = got_row["rank"] != words["not_enough"]
                assert ranked == (figures_.answers >= MIN_N), (what, got_row["rank"])

    # trends.csv: everyone each week (Monday to Sunday) and month, and agents with answers.
    monday = today - timedelta(days=today.weekday())
    trend: list[tuple[str, Span]] = [
        ("week", (monday - timedelta(weeks=k), min(today, monday - timedelta(weeks=k, days=-6))))
        for k in range(12)
    ]
    first, last = today.replace(day=1), today
    for _ in range(12):
        trend.append(("month", (first, last)))
        last = first - timedelta(days=1)
        first = last.replace(day=1)
    table = csv_rows(kit.tmp_path / "report" / "trends.csv")
    week_word = table[1][0]
    got_trends = {
        ("week" if row[0] == week_word else "month", row[1], row[4]): row[5:9]
        for row in table[1:]
        if row
    }
    want_trends: dict[tuple[str, str, str], Figures] = {}
    for kind, span in trend:
        exp = expected(world, span, credit)
        want_trends[(kind, str(span[0]), words["all"])] = exp["all"][""]
        for agent, agent_figures in exp["agent"].items():
            if agent_figures.answers:
                want_trends[(kind, str(span[0]), world.names[agent])] = agent_figures
    assert set(got_trends) == set(want_trends), sorted(set(got_trends) ^ set(want_trends))
    for key, figures_ in want_trends.items():
        answers, *percent = got_trends[key]
        assert int(answers) == figures_.answers, ("trends.csv", key)
        for got_value, name in zip(percent, ("csat", "low", "high"), strict=True):
            value = getattr(figures_, name)
            same(got_value, None if value is None else 100 * value, 1, ("trends.csv", key, name))


# --- the worlds -------------------------------------------------------------------------------

NAMES = {
    "1": "Anna",
    "2": "Boris",
    "3": "Chloe",
    "4": "Dmitri",
    "5": "Eve",
    "6": "Farid",
    "7": "Grace",
}


def new_york_world(kit: SyncKit) -> tuple[World, list[Row], Row]:
    """America/New_York, "now" on 2 December 2026 (its clocks went back on 1 November).
    Returns the world, the rows a second sync sees added in December (an edit of the first
    answer, a new answer) and the row the edit replaces (left out of the world)."""
    tz = ZoneInfo("America/New_York")
    now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    kit.now = now
    world = World(tz, now, dict(NAMES))

    def local(*args: int) -> datetime:
        return datetime(*args, tzinfo=tz).astimezone(UTC)  # type: ignore[misc]

    # Late on 30 November in New York (1 December in UTC): a November survey, answered 1,
    # then the response edited on 1 December to 5 (Forms rewrites the row: new time, new
    # rating). Its second answer is the one credited, in November.
    late = add_survey(kit, world, "late", "1", "Alpha", local(2026, 11, 30, 23, 30))
    edited = answer(world, late, local(2026, 11, 30, 23, 50), 1)
    edited.response = 0
    # The same, answered again on a new row in December: the latest counts, in November.
    again = add_survey(kit, world, "again", "1", "Alpha", local(2026, 11, 30, 22, 0))
    answer(world, again, local(2026, 11, 30, 22, 10), 2)
    # Surveys never sent, answered anyway: Answers and CSAT, not the response rate.
    cancelled = add_survey(
        kit, world, "cancelled", "1", "Alpha", local(2026, 11, 15, 9), status="cancelled"
    )
    answer(world, cancelled, local(2026, 11, 15, 10), 4)
    skipped = add_survey(
        kit, world, "skipped", "2", "Alpha", local(2026, 11, 16, 9), status="skipped"
    )
    answer(world, skipped, local(2026, 11, 16, 9, 30), 2)
    failed = add_survey(kit, world, "failed", "2", "Alpha", local(2026, 11, 17, 9), status="failed")
    answer(world, failed, local(2026, 11, 17, 9, 30), 5)
    # A survey still queued and one never sent, not answered: in no figure.
    add_survey(kit, world, "queued", "2", "Alpha", local(2026, 12, 2, 9, 50), status="queued")
    # One dialog surveyed twice (re-closed after it was reassigned from Boris to Chloe): two
    # surveys, each answer credited to the agent its reference names, whatever the customer
    # typed in the form's agent field.
    first = add_survey(
        kit, world, "reclose-1", "2", "Alpha", local(2026, 11, 10, 12), dialog="D-re"
    )
    second = add_survey(
        kit, world, "reclose-2", "3", "Beta", local(2026, 11, 12, 12), dialog="D-re", occurrence="2"
    )
    answer(world, first, local(2026, 11, 10, 13), 5, agent_field="Chloe")
    answer(world, second, local(2026, 11, 12, 13), 3, agent_field="Boris")
    # Answered two minutes before the survey was recorded as sent (the helpdesk's clock
    # ahead of ours): credited, in its survey's period.
    skew = add_survey(kit, world, "skew", "3", "Beta", local(2026, 11, 20, 12))
    answer(world, skew, local(2026, 11, 20, 11, 58), 4)
    # ... and across a month's edge: answered in October, the survey recorded in November.
    skew = add_survey(kit, world, "skew-edge", "3", "Beta", local(2026, 11, 1, 0, 0, 30))
    answer(world, skew, local(2026, 10, 31, 23, 59, 50), 2)
    # Around New York's clock change on 1 November: the first second of November (00:00
    # EDT), the last one of October, and the repeated hour (01:30 EST).
    for key, moment, rating in (
        ("nov-first", local(2026, 11, 1, 0, 0), 5),
        ("oct-last", local(2026, 10, 31, 23, 59, 59), 4),
    ):
        survey = add_survey(kit, world, key, "3", "Beta", moment)
        answer(world, survey, moment + timedelta(hours=2), rating)
    repeated = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST, the second 01:30
    survey = add_survey(kit, world, "repeated-hour", "3", "Beta", repeated)
    answer(world, survey, repeated + timedelta(minutes=5), 3)
    # An agent with one answer (5), one with surveys sent and no answer, one with only 1s.
    one = add_survey(kit, world, "one", "4", "Beta", local(2026, 11, 25, 10))
    answer(world, one, local(2026, 11, 25, 11), 5)
    for k in range(3):
        add_survey(kit, world, f"silent-{k}", "5", "Beta", local(2026, 11, 26, 10 + k))
    for k in range(4):
        survey = add_survey(kit, world, f"ones-{k}", "6", None, local(2026, 11, 27, 10 + k))
        answer(world, survey, local(2026, 11, 27, 11 + k), 1)
    # An agent who moved from Alpha to Beta on 1 November: each team counts the surveys
    # recorded with it, the agent both.
    for k, (team, moment, rating) in enumerate(
        [
            ("Alpha", local(2026, 10, 20, 10), 5),
            ("Alpha", local(2026, 10, 28, 10), 4),
            ("Beta", local(2026, 11, 3, 10), 2),
            ("Beta", local(2026, 11, 29, 10), 5),
        ]
    ):
        survey = add_survey(kit, world, f"mover-{k}", "7", team, moment)
        answer(world, survey, moment + timedelta(hours=1), rating)
    # September: surveys sent, none answered (a period with zero answers); August: nothing.
    for k in range(2):
        add_survey(kit, world, f"sept-{k}", "2", "Alpha", local(2026, 9, 10 + k, 10))
    # A survey of another instance (not in this database): CSAT by the token's issue time
    # (the last second of October in New York), not the response rate.
    issued = local(2026, 10, 31, 23, 59, 59)
    foreign = Survey("foreign", "1", None, issued, "sent", in_database=False)
    foreign.token = kit.token("X-1", "1", issued)
    answer(world, foreign, issued + timedelta(hours=3), 5)
    # A forged reference (Boris's survey signed with another secret): counts nowhere.
    forged = kit.token("D-reclose-1", "2", local(2026, 11, 10, 12), secret="not-our-secret-00")
    answer(world, None, local(2026, 11, 10, 14), 1, token=forged)
    # A double-click: the same row twice is one submission.
    double = add_survey(kit, world, "double", "4", "Beta", local(2026, 11, 28, 10))
    answer(world, double, local(2026, 11, 28, 10, 5), 4)
    answer(world, double, local(2026, 11, 28, 10, 5), 4)
    # The December edits, made before the second sync.
    later = [
        # replaces `edited` (the same response, edited)
        Row(late, local(2026, 12, 1, 10, 0), 5, token=late.token, response=0, first=edited.when),
        Row(again, local(2026, 12, 1, 11, 0), 5, token=again.token, response=999),  # a new row
    ]
    world.rows.remove(edited)
    return world, later, edited


@pytest.mark.parametrize(
    ("locale", "source"),
    [("en_US", "gsheets"), ("ru_RU", "gsheets"), ("ru_RU", "csv"), ("en_US", "forms_api")],
)
def test_hostile_cohorts_match_an_independent_count(kit: SyncKit, locale: str, source: str) -> None:
    world, later, edited = new_york_world(kit)
    months = 5  # December to date, November, October, September (no answer), August (empty)
    config = settings(kit, world, months, source)
    runner = kit.runner(config)  # one runner: the second sync patches the kept dataset

    # The first sync: November's answer to the late survey is still 1.
    world.rows.insert(0, edited)
    put(kit, world, locale, source)
    first = runner.run()
    assert first.status == "ok", first
    check_report(kit, world, locale, months)

    # In December: the late answer edited (Forms rewrites its row: new time, new rating),
    # another survey answered again, and the queued survey sent and answered.
    world.rows[world.rows.index(edited)] = later[0]
    world.rows.append(later[1])
    queued = next(s for s in world.surveys if s.key == "queued")
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.token == queued.token)
            .values(status="sent", sent_at=queued.created + timedelta(minutes=1))
        )
    queued.status = "sent"
    answer(world, queued, queued.created + timedelta(minutes=20), 2)
    kit.now += timedelta(hours=1)
    put(kit, world, locale, source)
    second = runner.run()
    assert second.status == "ok", second
    check_report(kit, world, locale, months)
    # A new runner builds the dataset anew: the same report.
    assert kit.run(config, full=True).status == "ok"
    check_report(kit, world, locale, months)


QUESTIONS = {"rating": "1a2b3c4d", "comment": "0f3196bb", "agent": "6e5d4c3b"}
QUESTIONS.update(ticket="7a8b9c0d", token="725f1a62")
SHEET_TZ = ZoneInfo("Europe/Moscow")  # the responses sheet's, and the CSV export's, zone


def put(kit: SyncKit, world: World, locale: str, source: str) -> None:
    """The rows as the source shows them: the responses sheet (date-time serials in Moscow
    time), its CSV export (text with the zone), or the Forms API (an edited response keeps
    its responseId and gets a new lastSubmittedTime)."""
    rows = sheet_rows(world, locale)
    if source == "gsheets":
        kit.responses(
            rows, title=FORMS[locale]["tab"], locale=locale, time_zone=str(SHEET_TZ), gid=GID
        )
        return
    if SHEET_ID not in kit.fake.spreadsheets:  # the report's spreadsheet
        kit.fake.add_spreadsheet(SHEET_ID, locale=locale)
    if source == "csv":
        with open(kit.tmp_path / "responses.csv", "w", encoding="utf-8", newline="") as f:
            out = csv.writer(f)
            out.writerow(rows[0])
            for cells in rows[1:]:
                out.writerow([export_time(cells[0], SHEET_TZ), *cells[1:]])
        return
    responses = []
    for index, row in enumerate(world.rows):
        when = f"{row.when.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.{index:09d}Z"
        first = row.first or row.when
        values = {"rating": str(row.rating), "agent": row.agent_field, "token": row.token}
        responses.append(
            {
                "responseId": f"ACYDBNj{row.response:06d}",
                "createTime": f"{first.astimezone(UTC):%Y-%m-%dT%H:%M:%S}.000000000Z",
                "lastSubmittedTime": when,
                "answers": {
                    QUESTIONS[role]: {
                        "questionId": QUESTIONS[role],
                        "textAnswers": {"answers": [{"value": value}]},
                    }
                    for role, value in values.items()
                    if value
                },
            }
        )
    kit.fake.add_form("1FormId", responses)


def berlin_world(kit: SyncKit) -> World:
    """Europe/Berlin, "now" on 2 April 2026 (its clocks went forward on 29 March): an agent
    with 10,000 answers whose CSAT fell from 92% to 88% (a significant ▼), one with only 5s
    (Wilson's upper bound 1), one with only 1s (lower bound 0), one with a single answer, one
    with surveys and no answer, and surveys on every period edge around the clock change."""
    tz = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 4, 2, 10, 0, tzinfo=UTC)
    kit.now = now
    world = World(tz, now, {**NAMES, "8": "Hugo", "9": "Иван Петров"})

    def local(*args: int) -> datetime:
        return datetime(*args, tzinfo=tz).astimezone(UTC)  # type: ignore[misc]

    specs: list[tuple[str, str, str | None, datetime]] = []
    ratings: list[int] = []
    # 5,000 answers in the previous 30 days (2 February – 3 March), 5,000 in the last 30.
    for half, (start, rate) in enumerate(((local(2026, 2, 3), 23), (local(2026, 3, 5), 22))):
        for i in range(5_000):
            specs.append((f"big-{half}-{i}", "9", "Alpha", start + timedelta(seconds=480 * i)))
            ratings.append((5 if half == 0 else 4) if i % 25 < rate else (2 if half == 0 else 1))
    for k in range(7):
        specs.append((f"fives-{k}", "8", "Beta", local(2026, 3, 20, 9 + k)))
        ratings.append(5)
    for k in range(5):
        specs.append((f"ones-{k}", "6", None, local(2026, 3, 21, 9 + k)))
        ratings.append(1)
    specs.append(("single", "4", "Beta", local(2026, 3, 22, 12)))
    ratings.append(4)
    # Period and week edges: the first second of a local day and the last one before it.
    for k, day in enumerate(
        [
            date(2026, 3, 4),  # the headline period's first day (the previous one's end)
            date(2026, 3, 29),  # the day of the change (23 hours)
            date(2026, 3, 30),  # a Monday: the week's edge, the first in summer time
            date(2026, 4, 1),  # April's first day
            date(2026, 3, 1),  # March's first day, in winter time
        ]
    ):
        midnight = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        for j, moment in enumerate((midnight - timedelta(seconds=1), midnight)):
            specs.append((f"edge-{k}-{j}", "3", "Beta", moment))
            ratings.append(5 if j else 2)
    # The last second of winter time (01:59:59 CET) and the first of summer time (03:00 CEST).
    for j, moment in enumerate(
        (local(2026, 3, 29, 1, 59, 59), datetime(2026, 3, 29, 1, tzinfo=UTC))
    ):
        specs.append((f"change-{j}", "7", "Alpha", moment))
        ratings.append(4 - j)
    made = add_surveys(kit, world, specs)
    for survey, rating in zip(made, ratings, strict=True):
        answer(world, survey, survey.created + timedelta(minutes=10), rating)
    add_surveys(
        kit, world, [(f"silent-{k}", "5", "Beta", local(2026, 3, 25, 10 + k)) for k in range(2)]
    )
    return world


@pytest.mark.parametrize(("locale", "source"), [("en_US", "gsheets"), ("ru_RU", "csv")])
def test_ten_thousand_answers_and_intervals_at_their_edges(
    kit: SyncKit, locale: str, source: str
) -> None:
    world = berlin_world(kit)
    months = 3
    put(kit, world, locale, source)
    summary = kit.run(settings(kit, world, months, source))
    assert summary.status == "ok", summary
    check_report(kit, world, locale, months)

    # Each interval's edges as written: 1 for all 5s, 0 for all 1s, n = 1, and 10,000.
    words = FORMS[locale]["words"]
    board = leaderboard_rows(kit.sheet(words["summary"]))
    big = board[world.names["9"]]
    assert int(big["answers"]) == 5_000 and big["mark"] == "▼", big
    assert float(board[world.names["8"]]["high"]) == 1.0
    assert float(board[world.names["6"]]["low"]) == 0.0
    assert float(board[world.names["6"]]["csat"]) == 0.0
    single = board[world.names["4"]]
    assert (float(single["low"]), float(single["high"])) == pytest.approx(
        (0.2065493143772375, 1.0), abs=1e-9
    )
    silent = board[world.names["5"]]
    assert (int(silent["sent"]), silent["csat"], silent["low"], silent["high"]) == (
        2,
        None,
        None,
        None,
    )
    assert float(silent["response_rate"]) == 0.0


def test_a_survey_revived_for_the_agent_it_was_reassigned_to(kit: SyncKit) -> None:
    # A close by Anna queued a survey; a reopen cancelled it; the dialog, reassigned to
    # Chloe, closed again, and intake revived the survey row for her (a new reference, her
    # team, the new close's time). Her answer is hers, in the new close's period, whatever
    # the form's agent field says; Anna has nothing. The runner that kept the dataset read
    # before the revival reports what a new one does.
    tz = ZoneInfo("America/New_York")
    kit.now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    world = World(tz, kit.now, dict(NAMES))
    base = add_survey(kit, world, "base", "2", "Alpha", datetime(2026, 11, 5, 12, tzinfo=UTC))
    answer(world, base, base.created + timedelta(hours=1), 4)
    old = add_survey(
        kit, world, "r", "1", "Alpha", datetime(2026, 10, 31, 12, tzinfo=UTC), status="cancelled"
    )
    config = settings(kit, world, 3)
    runner = kit.runner(config)
    put(kit, world, "en_US", "gsheets")
    assert runner.run().status == "ok"
    check_report(kit, world, "en_US", 3)

    created = datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 1 November in New York
    revived = Survey("r", "3", "Beta", created, "sent", kit.token("D-r", "3", created))
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.token == old.token)
            .values(
                token=revived.token,
                agent_id="3",
                agent_name="Chloe",
                team="Beta",
                status="sent",
                created_at=created,
                sent_at=created,
            )
        )
    world.surveys[world.surveys.index(old)] = revived
    answer(world, revived, created + timedelta(hours=2), 5, agent_field="Anna")
    put(kit, world, "en_US", "gsheets")
    assert runner.run().status == "ok"
    check_report(kit, world, "en_US", 3)
    assert "Anna" not in leaderboard_rows(kit.sheet("Summary"))
