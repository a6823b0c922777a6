"""The funnel per agent (issue 14): surveys sent → opened (a person clicked a short link) →
answered, on the response rate's cohort, in Google Sheets, the .xlsx and summary.csv, in
English and Russian.

Clicks go through the real endpoint (the app, with its scanner rules and the group commit):
people, mail gateways opening every link as the message arrives, scanners' User-Agents, HEAD
probes and bursts of every score within a second. The written Opened / Answered / Open rate
of every agent must equal a count made here from what the test itself generated.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from datetime import datetime
from datetime import timedelta
from typing import Any

import openpyxl
import pytest

from csat_hook.app import create_app
from csat_hook.services import build_services
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import leaderboard

BROWSER = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile"
AGENTS = {str(i): f"Agent {chr(64 + i)}" for i in range(1, 7)}
# What happens to one survey's links, and whether a person opened it.
PATTERNS: dict[str, bool] = {
    "none": False,
    "human": True,
    "human_scores_later": True,  # two scores minutes apart: a person changing their mind
    "gateway_on_arrival": False,  # opened 2 s after sending
    "scanner_agent": False,
    "head_probe": False,
    "burst": False,  # every score within the same second
    "burst_then_human": True,
}
HEADERS = {
    "en": ("Surveys sent", "Opened", "Open rate", "Answered", "Response rate"),
    "ru": ("Отправлено опросов", "Открыли", "Доля открывших", "Ответили", "Доля ответивших"),
}


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _click(client: Any, clock: Clock, token: str, when: datetime, **how: Any) -> None:
    clock.now = when
    score = how.get("score")
    path = f"/s/{token}" + (f"/{score}" if score is not None else "")
    headers = {"User-Agent": how.get("agent", BROWSER)}
    response = client.open(path, method=how.get("method", "GET"), headers=headers)
    assert response.status_code == 302, response.status_code


def _play(client: Any, clock: Clock, token: str, sent: datetime, pattern: str) -> None:
    minute = timedelta(minutes=1)
    if pattern == "human":
        _click(client, clock, token, sent + 90 * minute, score=4)
    elif pattern == "human_scores_later":
        _click(client, clock, token, sent + 10 * minute, score=2)
        _click(client, clock, token, sent + 14 * minute, score=3)
    elif pattern == "gateway_on_arrival":
        _click(client, clock, token, sent + timedelta(seconds=2))
    elif pattern == "scanner_agent":
        agent = "Mozilla/5.0 (compatible; Barracuda Sentinel link protection)"
        _click(client, clock, token, sent + 5 * minute, agent=agent)
    elif pattern == "head_probe":
        _click(client, clock, token, sent + 5 * minute, method="HEAD", score=5)
    elif pattern in ("burst", "burst_then_human"):
        for score in range(1, 6):
            _click(client, clock, token, sent + 3 * minute, score=score)
        if pattern == "burst_then_human":
            _click(client, clock, token, sent + 3 * 60 * minute, score=5)


@pytest.mark.parametrize("language", ["en", "ru"])
def test_funnel_per_agent_equals_an_independent_count(kit, language):
    rng = random.Random(f"funnel-{language}")
    report_dir = kit.tmp_path / "report"
    config = kit.config(
        # One test client stands for every customer: no per-client limit here.
        survey={
            "links": {"public_base_url": "https://csat.example.test", "rate_per_client": 100000}
        },
        output={"language": language, "local": {"enabled": True, "dir": str(report_dir)}},
    )
    clock = Clock(kit.now)
    services = build_services(config, clock=clock, engine=kit.engine, create_tables=False)
    client = create_app(services=services).test_client()

    rows: list[list[Any]] = [EN_HEADER]
    sent = defaultdict(int)
    opened = defaultdict(int)
    answered = defaultdict(int)
    first_day = (kit.now - timedelta(days=29)).date()  # the headline cohort (UTC)
    for n in range(240):
        agent = rng.choice(list(AGENTS))
        created = (kit.now - timedelta(days=rng.uniform(0.5, 50))).replace(microsecond=0)
        went_out = rng.random() > 0.1
        token = kit.survey(
            f"F-{n}", agent, AGENTS[agent], created=created, status="sent" if went_out else "failed"
        )
        pattern = rng.choice(list(PATTERNS)) if went_out else "none"
        _play(client, clock, token, created, pattern)
        answers = went_out and rng.random() < (0.6 if PATTERNS[pattern] else 0.15)
        if answers:
            when = created + timedelta(hours=5)
            rows.append([when, rng.randint(1, 5), "", AGENTS[agent], f"F-{n}", token])
        if went_out and created.date() >= first_day:
            sent[agent] += 1
            opened[agent] += PATTERNS[pattern]
            answered[agent] += answers
    services.close()  # the click writer's thread ends here, not with the process
    kit.responses(rows)
    clock.now = kit.now

    summary = kit.run(config)
    assert summary.status == "ok", summary

    header_sent, header_opened, header_rate, header_answered, header_response = HEADERS[language]
    sheets = leaderboard(kit.sheet("Summary" if language == "en" else "Сводка"))
    workbook = openpyxl.load_workbook(report_dir / "csat-report.xlsx")
    xlsx = leaderboard([list(r) for r in workbook.worksheets[0].iter_rows(values_only=True)])
    with (report_dir / "summary.csv").open(encoding="utf-8") as handle:
        csv_rows = {row[list(row)[1]]: row for row in csv.DictReader(handle)}
    assert sum(opened.values()) > 10 and sum(sent.values()) > sum(opened.values())
    for agent, name in AGENTS.items():
        if not sent[agent]:
            continue
        rate = opened[agent] / sent[agent]
        for written in (sheets[name], xlsx[name]):
            assert written[header_sent] == sent[agent]
            assert written[header_opened] == opened[agent], (name, language)
            assert written[header_answered] == answered[agent]
            assert written[header_rate] == pytest.approx(rate, abs=1e-6)
            assert written[header_response] == pytest.approx(
                answered[agent] / sent[agent], abs=1e-6
            )
        line = csv_rows[name]
        assert int(line[header_opened]) == opened[agent]
        assert int(line[header_answered]) == answered[agent]
        assert float(line[f"{header_rate} (%)"]) == pytest.approx(100 * rate, abs=0.05)
