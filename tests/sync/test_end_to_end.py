"""Tried as a new user would: ``csat-hook sync`` pointed at a Sheets emulator.

The responses sheet is one the sync has never seen, in en_US or ru_RU, with blank rows,
edited pre-filled fields, duplicate submissions, bad ratings and forged references. The
per-agent figures written to the Summary tab must equal a computation done here from the
generated data, independently of the sync's code.
"""

from __future__ import annotations

import json
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

from csat_hook.cli import main
from csat_hook.devtools.sheets_model import Formula
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import RU_HEADER
from tests.sync.conftest import SHEET_ID

LOCALES = {
    "en_US": {
        "tab": "Form Responses 1",
        "header": EN_HEADER,
        "tz": "America/New_York",
        "labels": {5: "Very satisfied", 4: "Satisfied", 2: "Dissatisfied"},
    },
    "ru_RU": {
        "tab": "Ответы на форму (1)",
        "header": RU_HEADER,
        "tz": "Europe/Moscow",
        "labels": {5: "Отлично", 4: "Хорошо", 2: "Плохо"},
    },
}
AGENTS = {str(i): f"Agent {chr(64 + i)}" for i in range(1, 13)}


@dataclass
class Survey:
    token: str
    agent: str
    team: str
    created: datetime
    sent: bool


def generate(kit, locale: str, now: datetime):
    """Surveys in the database, a responses sheet, and what an honest count gives."""
    rng = random.Random(f"csat-{locale}")
    spec = LOCALES[locale]
    surveys: list[Survey] = []
    for n in range(240):
        agent = rng.choice(list(AGENTS))
        created = now - timedelta(days=rng.uniform(0, 45))
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
    latest: dict[str, tuple[datetime, int]] = {}
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
        rows.append(
            [
                when,
                cell,
                comment,
                agent_field or AGENTS[survey.agent],
                ticket or survey.token[:6],
                survey.token,
            ]
        )
        if valid and (survey.token not in latest or when >= latest[survey.token][0]):
            latest[survey.token] = (when, rating)

    for i, survey in enumerate(surveys):
        if not survey.sent or rng.random() < 0.35:
            continue
        when = survey.created + timedelta(minutes=rng.randint(5, 3000))
        when = min(when, now - timedelta(minutes=1)).replace(microsecond=0)
        rating = rng.choices([5, 4, 3, 2, 1], [45, 25, 12, 10, 8])[0]
        comment = "=SUM(A1:A9)" if i % 17 == 0 else f"comment {i}"
        edited = rng.choice(list(AGENTS.values())) if rng.random() < 0.1 else None
        submit(survey, when, rating, comment, True, agent_field=edited)
        if rng.random() < 0.12:  # the customer submits again later: that one wins
            submit(survey, when + timedelta(minutes=30), rng.randint(1, 5), "again", True)
        if rng.random() < 0.04:  # a later submission with a rating that is not a rating
            rows.append(
                [when + timedelta(hours=2), "??", "oops", AGENTS[survey.agent], "", survey.token]
            )
        if rng.random() < 0.05:
            rows.append([""] * 6)
    for k in range(6):  # forged references, claiming a real agent
        victim = rng.choice(surveys)
        forged = kit.token(f"F-{k}", victim.agent, victim.created, secret="a-forger-secret-99")
        forged_comments.append(f"FORGED {k}")
        rows.append(
            [now - timedelta(hours=k + 1), 1, f"FORGED {k}", AGENTS[victim.agent], "", forged]
        )
    header, body = rows[0], rows[1:]  # rows out of order in the sheet still read right
    rng.shuffle(body)
    kit.responses(
        [header, *body], title=spec["tab"], locale=locale, time_zone=spec["tz"], gid=1877059582
    )
    return surveys, latest, forged_comments


def expected_figures(surveys, latest, first_day):
    """Per agent: sent, answers, response rate %, CSAT %, mean, distribution; by cohort."""
    by_token = {s.token: s for s in surveys}
    sent = defaultdict(int)
    ratings = defaultdict(list)
    answered_sent = defaultdict(int)
    for s in surveys:
        if s.created.date() >= first_day and s.sent:
            sent[s.agent] += 1
    for token, (_, rating) in latest.items():
        s = by_token[token]
        if s.created.date() >= first_day:
            ratings[s.agent].append(rating)
            answered_sent[s.agent] += s.sent
    figures = {}
    for agent in set(sent) | set(ratings):
        r = ratings[agent]
        figures[agent] = {
            "Surveys sent": sent[agent],
            "Answers": len(r),
            "Response rate %": round(100 * answered_sent[agent] / sent[agent], 1)
            if sent[agent]
            else None,
            "CSAT %": round(100 * sum(1 for x in r if x >= 4) / len(r), 1) if r else None,
            "Mean": round(sum(r) / len(r), 2) if r else None,
            "dist": [r.count(score) for score in range(1, 6)],
        }
    return figures


def summary_rows(kit, period_label: str) -> dict[str, dict]:
    cells = kit.sheet("Summary")
    header = cells[2]
    rows = {}
    for row in cells[3:]:
        record = dict(zip(header, row + [None] * (len(header) - len(row)), strict=True))
        if record["Period"] == period_label and record["Level"] == "Agent":
            rows[str(record["Agent key"])] = record
    return rows


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
                    "columns": {"agent": ["Agent", "Оператор"], "ticket": ["Ticket", "Обращение"]},
                },
                "metrics": {"min_n": 5},
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


@pytest.mark.parametrize("locale", ["en_US", "ru_RU"])
def test_sync_against_an_unseen_sheet_matches_an_independent_count(kit, locale):
    now = datetime.now(UTC)
    surveys, latest, _ = generate(kit, locale, now)
    first = sync(kit)

    # Within the request budget, and nothing forged was credited.
    assert first["requests"]["sheets_read"] <= 3 and first["requests"]["sheets_write"] <= 3
    assert (kit.fake.count("sheets_read"), kit.fake.count("sheets_write")) == (2, 2)
    assert first["unverified"] == {"forged": 6}
    assert first["skipped"].get("bad_rating", 0) >= 1 and first["blank_rows"] >= 1
    assert first["new"] == len(latest)

    for label, first_day in (
        ("All time", datetime(2000, 1, 1).date()),
        ("Last 7 days", (now - timedelta(days=6)).date()),
    ):
        expected = expected_figures(surveys, latest, first_day)
        written = summary_rows(kit, label)
        assert set(written) == set(expected), label
        for agent, figures in expected.items():
            row = written[agent]
            for column in ("Surveys sent", "Answers", "Response rate %", "CSAT %", "Mean"):
                assert row[column] == figures[column], (label, agent, column)
            assert [row[str(s)] for s in range(1, 6)] == figures["dist"]
            assert row["Name"] == AGENTS[agent]

    agent_tabs = [t for t in kit.fake.titles(SHEET_ID) if t.startswith("Agent ")]
    assert len(agent_tabs) == len({s.agent for s in surveys if s.token in latest})
    all_cells = [c for t in agent_tabs for row in kit.sheet(t) for c in row]
    assert not any(isinstance(c, str) and c.startswith("FORGED") for c in all_cells)
    formulas = [c for c in all_cells if isinstance(c, str) and c.startswith("=")]
    assert formulas and not any(isinstance(c, Formula) for c in all_cells)

    # A second run changes nothing, and costs two reads and one write.
    before = {t: kit.sheet(t) for t in kit.fake.titles(SHEET_ID)}
    kit.fake.reset_requests()
    second = sync(kit)
    assert (second["new"], second["updated"], second["unverified_total"]) == (0, 0, 0)
    assert {t: kit.sheet(t) for t in kit.fake.titles(SHEET_ID)} == before
    assert (kit.fake.count("sheets_read"), kit.fake.count("sheets_write")) == (2, 1)

    # Serials were read in the sheet's own time zone: the tabs show the true instants (UTC).
    ticket_of = {s.token: f"D-{n}" for n, s in enumerate(surveys)}
    shown = {row[1]: row[0] for t in agent_tabs for row in kit.sheet(t)[1:]}
    for token, (when, _) in latest.items():
        assert shown[ticket_of[token]] == when.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert ZoneInfo(LOCALES[locale]["tz"]).utcoffset(now) != timedelta(0)
