"""Tried as a new user would: ``csat-hook sync`` pointed at a Sheets emulator.

The responses sheet is one the sync has never seen, in en_US or ru_RU, with blank rows,
edited pre-filled fields, duplicate submissions, bad ratings, forged references and an
optional 0–10 NPS question. Every figure of the Summary's leaderboard (CSAT, its interval,
the adjusted CSAT, the rank, the change against the previous period and its mark, the
response rate, NPS and its interval) must equal a computation done here from the generated
data, independently of the sync's code (scipy for the statistics); a ru_RU spreadsheet reads
in Russian; a second run changes nothing.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner
from scipy import stats

from csat_hook.cli import main
from csat_hook.devtools.sheets_model import Formula
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import unsigned_zero
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import RU_HEADER
from tests.sync.conftest import SHEET_ID
from tests.sync.conftest import local
from tests.sync.test_leaderboard import independent_ranks
from tests.sync.test_shrinkage import noted
from tests.sync.test_shrinkage import scipy_fit

NPS_QUESTION = {
    "en_US": "How likely are you to recommend us?",
    "ru_RU": "Насколько вероятно, что вы порекомендуете нас?",
}
LOCALES = {
    "en_US": {
        "tab": "Form Responses 1",
        "header": [*EN_HEADER, NPS_QUESTION["en_US"]],
        "tz": "America/New_York",
        "labels": {5: "Very satisfied", 4: "Satisfied", 2: "Dissatisfied"},
        "tabs": ["Summary", "Trends", "Responses", "Unverified"],
        "words": ("Rank", "Agent", "All agents", "not enough answers", "Team"),
    },
    "ru_RU": {
        "tab": "Ответы на форму (1)",
        "header": [*RU_HEADER, NPS_QUESTION["ru_RU"]],
        "tz": "Europe/Moscow",
        "labels": {5: "Отлично", 4: "Хорошо", 2: "Плохо"},
        "tabs": ["Сводка", "Динамика", "Ответы", "Непроверенные"],
        "words": ("Место", "Сотрудник", "Вся команда", "мало оценок", "Команда"),
    },
}
# The leaderboard's columns, in order (the headers are in the report's language).
COLUMNS = [
    "rank", "agent", "answers", "csat", "low", "high", "adjusted", "previous", "change", "mark",
    "response_rate", "sent", "nps", "nps_answers", "nps_low", "nps_high",
]  # fmt: skip
MIN_N = 5
AGENTS = {str(i): f"Agent {chr(64 + i)}" for i in range(1, 13)}


@dataclass
class Survey:
    token: str
    agent: str
    team: str
    created: datetime
    sent: bool


def unambiguous(when: datetime, tz: ZoneInfo) -> datetime:
    """Out of the repeated autumn hour: a sheet's serial there names two instants, and the
    sync reads the first (docs/sync.md, "Timestamps")."""
    local = when.astimezone(tz).replace(tzinfo=None)
    if local.replace(tzinfo=tz, fold=0).utcoffset() != local.replace(tzinfo=tz, fold=1).utcoffset():
        when -= timedelta(hours=2)
    return when.replace(microsecond=0)


def generate(kit, locale: str, now: datetime):
    """Surveys in the database, a responses sheet, and what an honest count gives."""
    rng = random.Random(f"csat-{locale}")
    spec = LOCALES[locale]
    surveys: list[Survey] = []
    for n in range(400):
        agent = rng.choice(list(AGENTS))
        created = now - timedelta(days=rng.uniform(0, 58))
        sent = rng.random() > 0.08  # a few failed to go out
        token = kit.survey(
            f"D-{n}",
            agent,
            AGENTS[agent],
            team=f"Team {int(agent) % 3}",
            created=created,
            status="sent" if sent else "failed",
        )
        surveys.append(Survey(token, agent, f"Team {int(agent) % 3}", created, sent))
    rows: list[list] = [spec["header"]]
    latest: dict[str, tuple[datetime, int, int | None]] = {}
    forged_comments = []

    def submit(
        survey: Survey,
        when: datetime,
        rating,
        comment: str,
        valid: bool,
        agent_field: str | None = None,
        ticket: str | None = None,
    ) -> None:
        cell = spec["labels"].get(rating, rating) if rng.random() < 0.3 else rating
        nps = rng.choice([None, *range(11), 9, 10, 10]) if rng.random() < 0.8 else None
        rows.append(
            [
                when,
                cell,
                comment,
                agent_field or AGENTS[survey.agent],
                ticket or survey.token[:6],
                survey.token,
                "" if nps is None else nps,
            ]
        )
        if valid and (survey.token not in latest or when >= latest[survey.token][0]):
            latest[survey.token] = (when, rating, nps)

    for i, survey in enumerate(surveys):
        if not survey.sent or rng.random() < 0.35:
            continue
        when = survey.created + timedelta(minutes=rng.randint(5, 3000))
        when = unambiguous(min(when, now - timedelta(minutes=1)), ZoneInfo(spec["tz"]))
        rating = rng.choices([5, 4, 3, 2, 1], [45, 25, 12, 10, 8])[0]
        comment = "=SUM(A1:A9)" if i % 17 == 0 else f"comment {i}"
        edited = rng.choice(list(AGENTS.values())) if rng.random() < 0.1 else None
        submit(survey, when, rating, comment, True, agent_field=edited)
        if rng.random() < 0.12:  # the customer submits again later: that one wins
            again = unambiguous(when + timedelta(minutes=30), ZoneInfo(spec["tz"]))
            submit(survey, again, rng.randint(1, 5), "again", True)
        if rng.random() < 0.04:  # a later submission with a rating that is not a rating
            rows.append(
                [
                    when + timedelta(hours=2),
                    "??",
                    "oops",
                    AGENTS[survey.agent],
                    "",
                    survey.token,
                    "",
                ]
            )
        if rng.random() < 0.05:
            rows.append([""] * 7)
    for k in range(6):  # forged references, claiming a real agent
        victim = rng.choice(surveys)
        forged = kit.token(f"F-{k}", victim.agent, victim.created, secret="a-forger-secret-99")
        forged_comments.append(f"FORGED {k}")
        rows.append(
            [now - timedelta(hours=k + 1), 1, f"FORGED {k}", AGENTS[victim.agent], "", forged, 0]
        )
    header, body = rows[0], rows[1:]  # rows out of order in the sheet still read right
    rng.shuffle(body)
    kit.responses(
        [header, *body], title=spec["tab"], locale=locale, time_zone=spec["tz"], gid=1877059582
    )
    return surveys, latest, forged_comments


def cohort(surveys, latest, first, last):
    """Per agent, the cohort of surveys created on days first..last (UTC, metrics.timezone):
    sent, answered-and-sent, ratings and NPS answers of the credited (latest) submissions."""
    by_token = {s.token: s for s in surveys}
    sent = defaultdict(int)
    answered_sent = defaultdict(int)
    ratings = defaultdict(list)
    scores = defaultdict(list)
    for s in surveys:
        if first <= s.created.date() <= last and s.sent:
            sent[s.agent] += 1
    for token, (_, rating, nps) in latest.items():
        s = by_token[token]
        if first <= s.created.date() <= last:
            ratings[s.agent].append(rating)
            answered_sent[s.agent] += s.sent
            if nps is not None:
                scores[s.agent].append(nps)
    return sent, answered_sent, ratings, scores


def wilson(k: int, n: int) -> tuple[float, float]:
    found = stats.binomtest(k, n).proportion_ci(method="wilson")
    return found.low, found.high


def nps_figures(scores: list[int]) -> tuple[float, float, float]:
    """NPS ×100 and its adjusted Wald interval ×100, from the +1/0/−1 scores."""
    promoters = sum(1 for x in scores if x >= 9)
    detractors = sum(1 for x in scores if x <= 6)
    passives = len(scores) - promoters - detractors
    weights = [promoters + 0.75, passives + 1.5, detractors + 0.75]
    total = sum(weights)
    mean = (weights[0] - weights[2]) / total
    variance = (weights[0] + weights[2]) / total - mean * mean
    half = stats.norm.ppf(0.975) * math.sqrt(variance / total)
    return (
        100 * (promoters - detractors) / len(scores),
        100 * max(-1.0, mean - half),
        100 * min(1.0, mean + half),
    )


def expected_leaderboard(surveys, latest, now):
    """Every leaderboard figure per agent name, computed here."""
    today = now.date()
    sent, answered, ratings, scores = cohort(surveys, latest, today - timedelta(days=29), today)
    _, _, before, _ = cohort(
        surveys, latest, today - timedelta(days=59), today - timedelta(days=30)
    )
    listed = sorted(set(sent) | set(ratings))
    satisfied = {a: sum(1 for r in ratings[a] if r >= 4) for a in listed}
    counts = {a: (satisfied[a], len(ratings[a])) for a in listed}
    mu, weight = noted(*scipy_fit([c for c in counts.values() if c[1]]))  # as the note has it
    ranks = independent_ranks({a: c for a, c in counts.items() if c[1]}, MIN_N)
    figures = {}
    for agent in listed:
        s, n = counts[agent]
        row: dict = {"answers": n, "sent": sent[agent]}
        row["response_rate"] = answered[agent] / sent[agent] if sent[agent] else None
        row["csat"] = s / n if n else None
        row["low"], row["high"] = wilson(s, n) if n else (None, None)
        row["adjusted"] = (s + mu * weight) / (n + weight) if n else None
        row["rank"] = ranks[agent][0] if agent in ranks else "not ranked"
        previous = before[agent]
        s2, n2 = sum(1 for r in previous if r >= 4), len(previous)
        row["previous"] = s2 / n2 if n2 else None
        row["change"], row["mark"] = None, None
        if n and n2:
            p1, p2 = s / n, s2 / n2
            (l1, u1), (l2, u2) = wilson(s, n), wilson(s2, n2)
            row["change"] = 100 * (p1 - p2)
            low = p1 - p2 - math.hypot(p1 - l1, u2 - p2)
            high = p1 - p2 + math.hypot(u1 - p1, p2 - l2)
            if n >= MIN_N and n2 >= MIN_N and (low > 0 or high < 0):
                row["mark"] = "▲" if low > 0 else "▼"
        if scores[agent]:
            row["nps"], row["nps_low"], row["nps_high"] = nps_figures(scores[agent])
        else:
            row["nps"] = row["nps_low"] = row["nps_high"] = None
        row["nps_answers"] = len(scores[agent])
        figures[AGENTS[agent]] = row
    return figures


def written_leaderboard(kit, title: str) -> tuple[list, dict[str, dict]]:
    cells = kit.sheet(title)
    rows = {}
    for row in cells[4:]:
        if not row:
            break
        padded = list(row) + [None] * (len(COLUMNS) - len(row))
        rows[str(padded[1])] = dict(zip(COLUMNS, padded, strict=True))
    return cells[3], rows


def sync(kit, *args: str):
    config = kit.tmp_path / "config.yaml"
    sa_file = kit.tmp_path / "service-account.json"
    sa_file.write_text(json.dumps(kit.service_account), encoding="utf-8")
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": kit.database_url},
                "token": {"secret": "test-token-secret-0123456789"},
                "google": {
                    "service_account_file": str(sa_file),
                    "sheets_base_url": kit.fake.url,
                    "forms_base_url": kit.fake.url,
                },
                "results": {
                    "source": "gsheets",
                    "gsheets": {"spreadsheet_id": SHEET_ID, "sheet_gid": 1877059582},
                    "columns": {
                        "agent": ["Agent", "Оператор"],
                        "ticket": ["Ticket", "Обращение"],
                        "nps": list(NPS_QUESTION.values()),
                    },
                },
                "metrics": {"min_n": MIN_N},
                "output": {"gsheets": {"enabled": True}, "local": {"enabled": False}},
                "helpdesks": {
                    "dryrun": {"kind": "dryrun", "output": str(kit.tmp_path / "d.jsonl")}
                },
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["-c", str(config), "sync", "--json", *args], env={})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# The leaderboard's columns of figures that may be below zero, and their formats.
SIGNED_COLUMNS = {
    "change": Fmt.POINTS, "nps": Fmt.SCORE, "nps_low": Fmt.SCORE, "nps_high": Fmt.SCORE
}  # fmt: skip


@pytest.mark.parametrize("locale", ["en_US", "ru_RU"])
def test_sync_against_an_unseen_sheet_matches_an_independent_count(kit, locale):
    now = datetime.now(UTC)
    surveys, latest, _ = generate(kit, locale, now)
    first = sync(kit)
    spec = LOCALES[locale]
    summary_tab, _, responses_tab, unverified_tab = spec["tabs"]

    # Within the request budget, and nothing forged was credited.
    assert first["requests"]["sheets_read"] <= 3 and first["requests"]["sheets_write"] <= 3
    assert (kit.fake.count("sheets_read"), kit.fake.count("sheets_write")) == (2, 2)
    assert first["unverified"] == {"forged": 6}
    assert first["skipped"].get("bad_rating", 0) >= 1 and first["blank_rows"] >= 1
    assert first["new"] == len(latest)

    # The Summary opens on the leaderboard, in the spreadsheet's language.
    titles = kit.fake.titles(SHEET_ID)
    assert titles[:3] == spec["tabs"][:3] and spec["tabs"][3] in titles
    header, written = written_leaderboard(kit, summary_tab)
    rank_word, agent_word, everyone, not_enough, team_word = spec["words"]
    assert header[:2] == [rank_word, agent_word]
    expected = expected_leaderboard(surveys, latest, now)
    teams = {name: row for name, row in written.items() if row["rank"] == team_word}
    assert set(written) - {everyone} - set(teams) == set(expected)
    in_team = defaultdict(int)
    for agent, name in AGENTS.items():
        if name in expected:
            in_team[f"Team {int(agent) % 3}"] += expected[name]["answers"]
    assert {name: row["answers"] for name, row in teams.items()} == in_team
    for name, figures in expected.items():
        row = written[name]
        for column, value in figures.items():
            got = row[column]
            if column == "rank":
                assert got == (not_enough if value == "not ranked" else value), (name, column)
            elif isinstance(value, float) and column in SIGNED_COLUMNS:
                # A figure that shows zero is written 0 (never "-0" nor "+0": layout.SIGNED).
                shown = unsigned_zero(value, SIGNED_COLUMNS[column])
                assert got == pytest.approx(shown, abs=1e-5), (name, column)
            elif isinstance(value, float):
                assert got == pytest.approx(value, abs=1e-5), (name, column)
            else:
                assert got == value, (name, column)
    assert any(r["mark"] for r in written.values()) or all(
        f["mark"] is None for f in expected.values()
    )
    overall = written[everyone]
    answered_now = sum(f["answers"] for f in expected.values())
    assert overall["answers"] == answered_now
    assert overall["csat"] == pytest.approx(
        sum(f["csat"] * f["answers"] for f in expected.values() if f["answers"]) / answered_now
    )

    # Responses: one row per credited answer, its time a real date-time (metrics.timezone UTC).
    responses = kit.sheet(responses_tab)
    assert len(responses) == 1 + len(latest)
    ticket_of = {s.token: f"D-{n}" for n, s in enumerate(surveys)}
    shown = {row[5]: local(row[0]) for row in responses[1:]}
    for token, (when, _, _) in latest.items():
        assert shown[ticket_of[token]] == when.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert ZoneInfo(LOCALES[locale]["tz"]).utcoffset(now) != timedelta(0)

    agent_tabs = [t for t in titles if t.startswith("Agent ")]
    assert len(agent_tabs) == len({s.agent for s in surveys if s.token in latest})
    all_cells = [c for t in [*agent_tabs, responses_tab] for row in kit.sheet(t) for c in row]
    assert not any(isinstance(c, str) and c.startswith("FORGED") for c in all_cells)
    formulas = [c for c in all_cells if isinstance(c, str) and c.startswith("=")]
    assert formulas and not any(isinstance(c, Formula) for c in all_cells)
    assert kit.sheet(unverified_tab)[2:]  # the forged answers are there, credited to no one

    # A second run changes nothing, and costs two reads and no write (the sheet holds this
    # very report).
    before = kit.fake.state(SHEET_ID)
    kit.fake.reset_requests()
    second = sync(kit)
    assert (second["new"], second["updated"], second["unverified_total"]) == (0, 0, 0)
    assert kit.fake.state(SHEET_ID) == before
    assert (kit.fake.count("sheets_read"), kit.fake.count("sheets_write")) == (2, 0)
