"""The figures a sync writes against a count done here, on inputs hypothesis makes up.

Each example is a small world: a few agents (one named by nobody but the helpdesk's static
map, surveys whose close named no agent, agents in two teams or in none), surveys sent,
failed and never sent, created anywhere in the last ten weeks and on the local midnights of
``metrics.timezone`` (zones with clock changes, a half-hour one, Lord Howe's half-hour
change, Santiago's and Havana's that skip midnight), answers late, early, given up to three
times (the latest counts; in one second, the row further down), with the form's agent and
ticket fields edited, answers to surveys another instance sent, and forged references; a
rating scale of 1–5, 0–10, 1–10, 0–5 or 1–3; an English or Russian responses sheet or a
Forms CSV export in a configured zone. The "now" of the sync is any instant of 2026–2028
(month ends, a leap day, week starts). After the first sync a customer is erased and the
sync run again: the figures stay.

The expected figures are counted here from the generated surveys and rows with exact
fractions (``fractions.Fraction``) following docs/sync.md, "The figures"; never with
csat_hook's code. They are compared, to the digit, with the local ``periods.csv`` (every
listed period, everyone, each team, each agent, the distribution), ``summary.csv`` (the
leaderboard, with its order and shared places), ``trends.csv``, the .xlsx Summary and the
Sheets Summary (the same cells), and each agent's tab. Percentages in a CSV are shown to
0.1, halves up; means to 0.01, halves up.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from csat_hook.db.schema import metadata
from csat_hook.erasure.records import Selector
from csat_hook.erasure.store import erase
from tests.sync.conftest import HELPDESK
from tests.sync.conftest import SHEET_ID
from tests.sync.conftest import SyncKit

Z = 1.959963984540054
HEADER = ["Timestamp", "Rating", "Comment", "Agent", "Ticket", "Reference"]
RU_HEADER = ["Отметка времени", "Оценка", "Комментарий", "Оператор", "Обращение", "Reference"]
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "America/Santiago",  # its clocks go forward at midnight: the day starts at 01:00
    "America/Havana",
]
MIN_N = 2
NAMES = {"7": "Anna", "8": "Boris", "9": "Вера", "55": "Eve"}  # 42: the static map's
TEAMS = ["Support", "Billing", "Поддержка"]
WORDS = {
    "en_US": {
        "all": "All agents",
        "no_team": "No team",
        "not_enough": "not enough answers",
        "no_agent": "No agent recorded",
    },
    "ru_RU": {
        "all": "Вся команда",
        "no_team": "Без команды",
        "not_enough": "мало оценок",
        "no_agent": "Сотрудник не указан",
    },
}


@dataclass(frozen=True)
class Survey:
    dialog: str
    agent: str
    team: str | None
    created: datetime
    sent: bool
    token: str


@dataclass(frozen=True)
class Row:
    when: datetime  # UTC, whole seconds
    rating: int
    survey: Survey | None  # None: forged
    token: str
    agent_field: str
    ticket_field: str


@dataclass(frozen=True)
class Figures:
    sent: int
    answers: int
    response_rate: Fraction | None
    csat: Fraction | None
    low: float | None
    high: float | None
    mean: Fraction | None
    distribution: tuple[int, ...]


def wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    d = 1 + Z * Z / n
    centre = (p + Z * Z / (2 * n)) / d
    half = Z / d * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def count(
    cohort: list[Survey], answered: list[tuple[Survey, int]], top: int, scale: tuple[int, int]
) -> Figures:
    sent = sum(1 for s in cohort if s.sent)
    ratings = [r for _, r in answered]
    n = len(ratings)
    good = sum(1 for r in ratings if r >= top)
    low, high = wilson(good, n) if n else (None, None)
    return Figures(
        sent,
        n,
        Fraction(sum(1 for s, _ in answered if s.sent), sent) if sent else None,
        Fraction(good, n) if n else None,
        low,
        high,
        Fraction(sum(ratings), n) if n else None,
        tuple(ratings.count(v) for v in range(scale[0], scale[1] + 1)),
    )


def half_up(value: Fraction | float, places: int) -> Decimal:
    """The decimal a cell shows: ``value`` to ``places`` decimals, halves up."""
    exact = Fraction(value) if isinstance(value, float) else value
    step = Fraction(1, 10**places)
    units = math.floor(exact / step + Fraction(1, 2))
    return (Decimal(units) / Decimal(10**places)).quantize(Decimal(1).scaleb(-places))


def as_csv(got: str, want: Fraction | float | None, places: int, scale: int = 100) -> None:
    if want is None:
        assert got == "", (got, want)
        return
    assert Decimal(got) == half_up(Fraction(want) * scale, places), (got, float(want))


@dataclass(frozen=True)
class Span:
    first: date | None
    last: date | None

    def holds(self, moment: datetime, tz: ZoneInfo) -> bool:
        day = moment.astimezone(tz).date()
        return (self.first is None or day >= self.first) and (self.last is None or day <= self.last)


def listed_spans(today: date) -> list[Span]:
    found = [Span(today, today), Span(today - timedelta(days=6), today)]
    first, last = today.replace(day=1), today
    for _ in range(2):
        found.append(Span(first, last))
        last = first - timedelta(days=1)
        first = last.replace(day=1)
    found.append(Span(None, None))
    return found


def midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``tz`` (the wall-clock midnight, or the first
    existing time after it)."""
    wall = datetime.combine(day, time(0))
    for minutes in range(0, 180, 30):
        candidate = (wall + timedelta(minutes=minutes)).replace(tzinfo=tz)
        back = candidate.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
        if back == candidate.replace(tzinfo=None):
            return candidate.astimezone(UTC)
    raise AssertionError(day)


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    tz_name = draw(st.sampled_from(ZONES))
    low, high = draw(st.sampled_from([(1, 5), (1, 5), (0, 10), (1, 10), (0, 5), (1, 3)]))
    ratings = st.integers(low, high)
    tz = ZoneInfo(tz_name)
    now = draw(
        st.one_of(
            st.datetimes(datetime(2026, 1, 1), datetime(2028, 12, 31)),
            # around a local midnight (a month's, a week's, a leap day's first)
            st.builds(
                lambda d, m: midnight(d, tz).replace(tzinfo=None) + timedelta(minutes=m),
                st.sampled_from(
                    [date(2028, 2, 29), date(2028, 3, 1), date(2026, 11, 2), date(2026, 3, 30)]
                ),
                st.integers(-90, 90),
            ),
        )
    ).replace(microsecond=0, tzinfo=UTC)
    agents = draw(
        st.lists(st.sampled_from(["7", "8", "9", "42", "55", ""]), min_size=1, unique=True)
    )
    team_of = {a: draw(st.sampled_from([None, *TEAMS])) for a in agents}
    today = now.astimezone(tz).date()
    edge_days = [today, today - timedelta(days=6), today.replace(day=1), today + timedelta(days=1)]
    edge_days.append(today - timedelta(days=today.weekday()))
    surveys: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 14))):
        agent = draw(st.sampled_from(agents))
        if draw(st.booleans()):
            day = draw(st.sampled_from(edge_days))
            created = midnight(day, tz) + timedelta(seconds=draw(st.sampled_from([-1, 0, 1])))
        else:
            created = now - timedelta(seconds=draw(st.integers(1, 70 * 86400)))
        created = min(created, now - timedelta(seconds=1))
        team = team_of[agent] if draw(st.integers(0, 4)) else draw(st.sampled_from(TEAMS))
        # (A survey never sent counts its answers in CSAT, not in the response rate.)
        status = draw(st.sampled_from(["sent", "sent", "sent", "failed", "queued", "skipped"]))
        # Answered up to three times, some in one second (the row further down counts).
        delays = st.one_of(st.integers(0, 3 * 86400), st.sampled_from([0, 60, 3600]))
        answers = [(draw(delays), draw(ratings)) for _ in range(draw(st.integers(0, 3)))]
        surveys.append(
            {"agent": agent, "team": team, "created": created, "status": status, "answers": answers}
        )
    foreign = [
        (draw(st.sampled_from([*agents, "77"])), draw(st.integers(1, 60 * 86400)), r)
        for r in draw(st.lists(ratings, max_size=2))
    ]
    forged = draw(st.lists(ratings, max_size=2))
    return {
        "tz": tz_name,
        "now": now,
        "surveys": surveys,
        "foreign": foreign,
        "forged": forged,
        "source": draw(st.sampled_from(["gsheets", "csv"])),
        "locale": draw(st.sampled_from(["en_US", "ru_RU"])),
        "sheet_tz": draw(st.sampled_from(["Europe/Moscow", "America/New_York", "UTC"])),
        "scale": (low, high),
        "top": draw(st.sampled_from([high - 1, high, low + 1])),
        "shuffle": draw(st.randoms(use_true_random=False)),
    }


def export_time(when: datetime, tz: ZoneInfo) -> str:
    local = when.astimezone(tz)
    minutes = int((local.utcoffset() or timedelta(0)).total_seconds() // 60)
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    offset = f"GMT{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")
    hour = local.hour % 12 or 12
    return f"{local:%Y/%m/%d} {hour}:{local:%M:%S} {'AM' if local.hour < 12 else 'PM'} {offset}"


def read_instant(when: datetime, source: str, sheet_tz: ZoneInfo) -> datetime:
    if source != "gsheets":
        return when
    wall = when.astimezone(sheet_tz).replace(tzinfo=None)
    return wall.replace(tzinfo=sheet_tz, fold=0).astimezone(UTC)


def wipe(kit: SyncKit) -> None:
    with kit.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name not in ("alembic_version", "data_version"):  # (seeded rows)
                conn.execute(sa.delete(table))
    kit.fake.spreadsheets.clear()


def csv_rows(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return [row for row in csv.reader(f)][1:]


def sheet_rows(cells: list[list[Any]]) -> dict[str, list[Any]]:
    """The leaderboard's rows by name (row 4 holds its header)."""
    rows = {}
    for row in cells[4:]:
        if not any(v not in (None, "") for v in row):
            break
        rows[str(row[1])] = list(row[:12]) + [None] * (12 - len(row[:12]))
    return rows


@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a sync per example: no shrinking
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_written_figures_equal_an_exact_count(kit: SyncKit, world: dict[str, Any]) -> None:
    wipe(kit)
    sheet_tz = ZoneInfo(world["sheet_tz"])
    now: datetime = world["now"]
    kit.now = now
    source, locale = world["source"], world["locale"]
    names = NAMES
    surveys: list[Survey] = []
    rows: list[Row] = []
    for k, spec in enumerate(world["surveys"]):
        agent = spec["agent"]
        token = kit.survey(
            f"T-{k}",
            agent or None,  # "": the close named no agent
            names.get(agent),
            team=spec["team"],
            created=spec["created"],
            status=spec["status"],
        )
        survey = Survey(
            f"T-{k}", agent, spec["team"], spec["created"], spec["status"] == "sent", token
        )
        surveys.append(survey)
        for delay, rating in spec["answers"]:
            when = min(spec["created"] + timedelta(seconds=delay), now - timedelta(seconds=1))
            edited = "Boris" if delay % 3 == 0 else names.get(agent, "")
            ticket = "T-999" if delay % 5 == 0 else survey.dialog
            rows.append(Row(when, rating, survey, token, edited, ticket))
    for j, (agent, age, rating) in enumerate(world["foreign"]):
        issued = now - timedelta(seconds=age)
        foreign = Survey(f"X-{j}", agent, None, issued, False, "")
        token = kit.token(foreign.dialog, agent, issued)
        when = min(issued + timedelta(hours=1), now - timedelta(seconds=1))
        rows.append(Row(when, rating, foreign, token, names.get(agent, ""), foreign.dialog))
    for j, rating in enumerate(world["forged"]):
        victim = surveys[j % len(surveys)]
        token = kit.token(victim.dialog, victim.agent, victim.created, secret="not-our-secret-0")
        rows.append(Row(now - timedelta(minutes=j + 1), rating, None, token, "Anna", "T-1"))
    world["shuffle"].shuffle(rows)

    # Which answer counts: the latest as read; in one second, the row further down.
    best: dict[str, tuple[tuple[datetime, int], Survey, int]] = {}
    for index, row in enumerate(rows):
        if row.survey is None:
            continue
        key = (read_instant(row.when, source, sheet_tz), index)
        if row.survey.dialog not in best or key > best[row.survey.dialog][0]:
            best[row.survey.dialog] = (key, row.survey, row.rating)
    answers = [(s, r) for _, s, r in best.values()]

    header = HEADER if locale == "en_US" else RU_HEADER
    if source == "csv":
        kit.fake.add_spreadsheet(SHEET_ID, locale=locale)
        with open(kit.tmp_path / "responses.csv", "w", encoding="utf-8", newline="") as f:
            out = csv.writer(f)
            out.writerow(header)
            for r in rows:
                stamp = export_time(r.when, sheet_tz)
                out.writerow([stamp, r.rating, "", r.agent_field, r.ticket_field, r.token])
    else:
        cells = [[r.when, r.rating, "", r.agent_field, r.ticket_field, r.token] for r in rows]
        kit.responses([header, *cells], locale=locale, time_zone=world["sheet_tz"])
    report = kit.tmp_path / f"report-{id(world)}"
    config = kit.config(
        results={
            "source": source,
            "csv": {"path": str(kit.tmp_path / "responses.csv"), "timezone": world["sheet_tz"]},
            "columns": {
                "timestamp": [HEADER[0], RU_HEADER[0]],
                "rating": [HEADER[1], RU_HEADER[1]],
                "comment": [HEADER[2], RU_HEADER[2]],
                "token": ["Reference"],
            },
        },
        metrics={
            "min_n": MIN_N,
            "timezone": world["tz"],
            "top_box": world["top"],
            "scale_min": world["scale"][0],
            "scale_max": world["scale"][1],
            "periods": {"rolling_days": [1, 7], "calendar_months": 2, "all_time": True},
            "headline_days": 7,
            "trend_weeks": 3,
            "trend_months": 2,
        },
        output={"local": {"enabled": True, "csv": True, "xlsx": True, "dir": str(report)}},
    )
    summary = kit.run(config)
    assert summary.status == "ok", summary
    check(kit, report, world, surveys, answers)
    # An erasure keeps every rating: the next sync writes the same figures.
    with kit.engine.begin() as conn:
        erase(conn, Selector(helpdesk=HELPDESK, dialog_id="T-0"), now, apply=True)
    kit.now = now + timedelta(seconds=1)
    summary = kit.run(config)
    assert summary.status == "ok", summary
    check(kit, report, world, surveys, answers)


def check(
    kit: SyncKit,
    report: Path,
    world: dict[str, Any],
    surveys: list[Survey],
    answers: list[tuple[Survey, int]],
) -> None:
    tz = ZoneInfo(world["tz"])
    now: datetime = world["now"]
    locale, top, scale = world["locale"], world["top"], world["scale"]
    words = WORDS[locale]
    names = NAMES
    today = now.astimezone(tz).date()
    team_name = {None: words["no_team"], **{t: t for t in TEAMS}}

    def figures_of(span: Span) -> tuple[Figures, dict[str, Figures], dict[str, Figures]]:
        cohort = [s for s in surveys if span.holds(s.created, tz)]
        answered = [(s, r) for s, r in answers if span.holds(s.created, tz)]
        everyone = count(cohort, answered, top, scale)
        groups: dict[str, dict[str, Figures]] = {}
        for level, of in (("team", lambda s: team_name[s.team]), ("agent", lambda s: s.agent)):
            keys = {of(s) for s in cohort if s.sent} | {of(s) for s, _ in answered}
            groups[level] = {
                key: count(
                    [s for s in cohort if of(s) == key],
                    [(s, r) for s, r in answered if of(s) == key],
                    top,
                    scale,
                )
                for key in keys
            }
        return everyone, groups["team"], groups["agent"]

    # periods.csv: every listed period for everyone, each team and each agent.
    got: dict[tuple[str, str, str], list[str]] = {}
    for row in csv_rows(report / "periods.csv"):
        if not row:
            continue
        # (an agent's row names its helpdesk; the surveys of no agent have the key "")
        who = ("agent:" + row[5]) if row[6] else ("all" if row[4] == words["all"] else row[4])
        got.setdefault((row[1], row[2], who), row)
    want: dict[tuple[str, str, str], Figures] = {}
    for span in listed_spans(today):
        everyone, teams, agents = figures_of(span)
        if not (everyone.sent or everyone.answers):
            continue
        key = (str(span.first or ""), str(span.last or ""))
        want[(*key, "all")] = everyone
        want.update({(*key, team): f for team, f in teams.items()})
        want.update({(*key, "agent:" + agent): f for agent, f in agents.items()})
    assert set(got) == set(want), sorted(set(got) ^ set(want))
    for key, f in want.items():
        row = got[key]
        assert (int(row[7]), int(row[8])) == (f.sent, f.answers), (key, row, f)
        as_csv(row[9], f.response_rate, 1)
        as_csv(row[10], f.csat, 1)
        as_csv(row[11], f.low, 1)
        as_csv(row[12], f.high, 1)
        as_csv(row[13], f.mean, 2, scale=1)
        assert tuple(int(v) for v in row[14:]) == f.distribution, (key, row)

    # The leaderboard (summary.csv; the Sheets and .xlsx Summary hold the same cells).
    headline = Span(today - timedelta(days=6), today)
    previous = Span(today - timedelta(days=13), today - timedelta(days=7))
    everyone, teams, agents = figures_of(headline)
    before_all, before_teams, before_agents = figures_of(previous)
    # Names as recorded with a survey, else the static map's (42), else the key: the form's
    # agent field and a foreign survey's token name nobody.
    recorded = {s.agent for s in surveys}
    shown_name = {
        a: names[a] if a in names and a in recorded else "Static Sam" if a == "42" else a
        for a in [*names, "42", "77"]
    }
    shown_name[""] = words["no_agent"]
    board = {row[1]: row for row in csv_rows(report / "summary.csv") if row}
    expected: dict[str, tuple[Figures, Figures | None]] = {
        shown_name[a]: (f, before_agents.get(a)) for a, f in agents.items()
    }
    agent_names = set(expected)
    if len(teams) > 1:
        expected.update({t: (f, before_teams.get(t)) for t, f in teams.items()})
    expected[words["all"]] = (everyone, before_all)
    assert set(board) == set(expected), (sorted(board), sorted(expected))
    sheets = sheet_rows(kit.sheet("Сводка" if locale == "ru_RU" else "Summary"))
    book = openpyxl.load_workbook(report / "csat-report.xlsx", read_only=True)
    try:
        title = "Сводка" if locale == "ru_RU" else "Summary"
        xlsx = sheet_rows([list(r) for r in book[title].iter_rows(values_only=True)])
    finally:
        book.close()
    assert set(sheets) == set(expected) == set(xlsx)
    for name, (f, before) in expected.items():
        row = board[name]
        assert (int(row[2]), int(row[11])) == (f.answers, f.sent), (name, row, f)
        as_csv(row[3], f.csat, 1)
        as_csv(row[4], f.low, 1)
        as_csv(row[5], f.high, 1)
        as_csv(row[10], f.response_rate, 1)
        prev = before.csat if before is not None else None
        as_csv(row[7], prev, 1)
        change = None if prev is None or f.csat is None else f.csat - prev
        as_csv(row[8], change, 1)
        for cells in (sheets[name], xlsx[name]):
            assert cells[2] == f.answers and (cells[11] or 0) == f.sent, (name, cells)
            for value, exact in ((cells[3], f.csat), (cells[10], f.response_rate)):
                if exact is None:
                    assert value in (None, ""), (name, cells)
                else:
                    assert abs(float(value) - float(exact)) < 1e-9, (name, cells, float(exact))
            for value, bound in ((cells[4], f.low), (cells[5], f.high)):
                assert (value in (None, "")) == (bound is None), (name, cells)
                if bound is not None:
                    assert abs(float(value) - bound) < 1e-9, (name, cells, bound)

    # The agents' order and places: by the adjusted CSAT as shown (else CSAT), more answers,
    # then the name; a shared place is written "2=" and the next is skipped; agents under
    # min_n follow, by answers and name, with "not enough answers"; then, never ranked, the
    # surveys whose close named no agent.
    listed = [row for row in csv_rows(report / "summary.csv") if row and row[1] in agent_names]
    if words["no_agent"] in agent_names:
        assert listed[-1][1] == words["no_agent"] and listed[-1][0] == "", listed
        listed = listed[:-1]
    ranked = [row for row in listed if int(row[2]) >= MIN_N]
    value = {row[1]: Decimal(row[6] or row[3]) for row in ranked}
    order = sorted(ranked, key=lambda row: (-value[row[1]], -int(row[2]), row[1].casefold()))
    others = [row for row in listed if int(row[2]) < MIN_N]
    rest = sorted(others, key=lambda row: (-int(row[2]), row[1].casefold()))
    assert [row[1] for row in listed] == [row[1] for row in order + rest]
    for row in ranked:
        place = 1 + sum(1 for other in ranked if value[other[1]] > value[row[1]])
        shared = sum(1 for other in ranked if value[other[1]] == value[row[1]]) > 1
        assert row[0] == (f"{place}=" if shared else str(place)), (row, place, shared)
    assert all(row[0] == words["not_enough"] for row in others), others

    # trends.csv: everyone per week (Monday to Sunday) and month; agents with answers.
    monday = today - timedelta(days=today.weekday())
    spans = [("week", Span(monday - timedelta(weeks=k), None)) for k in range(3)]
    first = today.replace(day=1)
    for _ in range(2):
        spans.append(("month", Span(first, None)))
        first = (first - timedelta(days=1)).replace(day=1)
    trends: dict[tuple[str, str, str], list[str]] = {}
    table = csv_rows(report / "trends.csv")
    for row in table:
        if row:
            kind = "week" if row[0] == table[0][0] else "month"
            trends[(kind, row[1], row[4])] = row[5:9]
    want_trends: dict[tuple[str, str, str], Figures] = {}
    for kind, start in spans:
        assert start.first is not None
        if kind == "week":
            last = min(today, start.first + timedelta(days=6))
        else:
            nxt = (start.first + timedelta(days=32)).replace(day=1)
            last = min(today, nxt - timedelta(days=1))
        everyone, _, agents = figures_of(Span(start.first, last))
        want_trends[(kind, str(start.first), words["all"])] = everyone
        for agent, f in agents.items():
            if f.answers:
                want_trends[(kind, str(start.first), shown_name[agent])] = f
    assert set(trends) == set(want_trends), sorted(set(trends) ^ set(want_trends))
    for key, f in want_trends.items():
        n, csat_cell, low, high = trends[key]
        assert int(n) == f.answers, (key, n, f)
        as_csv(csat_cell, f.csat, 1)
        as_csv(low, f.low, 1)
        as_csv(high, f.high, 1)

    # Each agent's tab lists every answer credited to them.
    mine: dict[str, int] = defaultdict(int)
    for s, _ in answers:
        mine[s.agent] += 1
    titles = kit.fake.titles(SHEET_ID)
    for agent, n in mine.items():
        name = shown_name[agent]
        tab = next(t for t in titles if t in (f"{name} ({agent})", agent, name))
        assert len([r for r in kit.sheet(tab)[1:] if r and r[0]]) == n, tab


@pytest.mark.parametrize(
    ("locale", "top", "said"),
    [
        ("en_US", 4, "Scale 1–5; CSAT = share of 4–5."),
        ("en_US", 5, "Scale 1–5; CSAT = share of 5."),
        ("ru_RU", 5, "Шкала 1–5; CSAT — доля оценок 5."),
    ],
)
def test_the_note_names_the_ratings_csat_counts(
    kit: SyncKit, locale: str, top: int, said: str
) -> None:
    # With metrics.top_box at the scale's top the note read "CSAT = share of 5–5".
    token = kit.survey("T-1", "7", "Anna", created=kit.now - timedelta(days=1))
    header = HEADER if locale == "en_US" else RU_HEADER
    kit.responses([header, [kit.now - timedelta(hours=1), 5, "", "", "", token]], locale=locale)
    config = kit.config(
        results={"columns": {"token": ["Reference"]}},
        metrics={"top_box": top},
        output={"local": {"enabled": True, "csv": False, "xlsx": True}},
    )
    assert kit.run(config).status == "ok"
    title = "Сводка" if locale == "ru_RU" else "Summary"
    book = openpyxl.load_workbook(kit.tmp_path / "report" / "csat-report.xlsx", read_only=True)
    try:
        in_book = [r[0] for r in book[title].iter_rows(values_only=True) if r and r[0]]
    finally:
        book.close()
    for notes in (in_book, [r[0] for r in kit.sheet(title) if r and r[0]]):
        assert any(str(note).endswith(said) for note in notes), notes
