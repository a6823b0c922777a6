"""One team under several spellings: a helpdesk (or two, or the generic adapter) names the
same team "Billing Team", "billing team", "BILLING TEAM " or "Billing\\u00a0Team", and "Café"
composed or as "Cafe" + U+0301. The report counts them as one team (compared as
``db.text.name_key``: NFKC, case-folded, invisible characters dropped, spaces collapsed),
shown under its most frequent spelling (ties: the first in code-point order), the same
whatever order the surveys come in and whether the dataset was built or patched. What the
database holds is not changed."""

from __future__ import annotations

import csv
import random
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl

from csat_hook import tokens
from csat_hook.db.text import name_key
from csat_hook.sync.dataset import build_dataset
from csat_hook.sync.titles import tag
from tests.sync.test_read_memo import CSV_HEADER

SECRETS = ["s" * 32]
START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

# (team as the helpdesk named it, ratings): 8 answers for "Billing Team" in four spellings
# (the plain one the most frequent), 3 for "Café" (composed twice, decomposed once), 2 for
# "Support".
TEAMS = [
    ("Billing Team", [5, 5, 4]),
    ("billing team", [5, 2]),
    ("BILLING TEAM ", [1]),
    ("Billing\u00a0Team", [5, 5]),
    ("Caf\u00e9", [5, 4]),
    ("Cafe\u0301", [1]),
    ("Support", [5, 1]),
]


def test_one_team_under_several_spellings_is_one_row_with_all_its_answers(
    kit: Any, tmp_path: Path
) -> None:
    lines, n = [CSV_HEADER], 0
    stamp = f"{kit.now - timedelta(days=1):%Y/%m/%d} 3:47:14 PM GMT+3"
    for team, ratings in TEAMS:
        for rating in ratings:
            n += 1
            agent = str(n % 3 + 1)
            token = kit.survey(f"D-{n}", agent, f"Agent {agent}", team=team)
            lines.append(f"{stamp},{rating},,Agent {agent},D-{n},{token}")
    config, report_dir = _csv_to_local(kit, tmp_path, lines)
    summary = kit.run(config)
    assert summary.status == "ok", summary.error

    with (report_dir / "summary.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    teams = {r["Agent"]: r for r in rows if r["Rank"] == "Team"}
    assert sorted(teams) == ["Billing Team", "Café", "Support"]
    assert teams["Billing Team"]["Answers"] == "8"
    assert teams["Café"]["Answers"] == "3"
    assert teams["Café"]["Surveys sent"] == "3"
    assert teams["Support"]["Answers"] == "2"
    assert teams["Billing Team"]["Surveys sent"] == "8"

    # The Responses table names each answer's team as the leaderboard does.
    workbook = openpyxl.load_workbook(report_dir / "csat-report.xlsx")
    responses = workbook.worksheets[[ws.title for ws in workbook.worksheets].index("Responses")]
    cells = [list(r) for r in responses.iter_rows(values_only=True)]
    column = cells[0].index("Team")
    assert sorted({row[column] for row in cells[1:]}) == ["Billing Team", "Café", "Support"]

    # Nothing stored was rewritten: the surveys keep the spelling the helpdesk sent.
    from csat_hook.db.schema import surveys

    stored = {row.team for row in kit.rows(surveys)}
    assert stored == {team for team, _ in TEAMS}


def _csv_to_local(kit: Any, tmp_path: Path, lines: list[str]) -> tuple[Any, Path]:
    """A configuration reading ``lines`` as a Forms CSV export and writing the local report;
    the report's folder."""
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", "utf-8")
    report_dir = tmp_path / "report"
    config = kit.config(
        results={"source": "csv", "csv": {"path": str(export)}},
        output={"gsheets": {"enabled": False}, "local": {"enabled": True, "dir": str(report_dir)}},
    )
    return config, report_dir


def _survey_rows(spellings: list[str]) -> list[tuple[Any, ...]]:
    rows = []
    for n, team in enumerate(spellings):
        token = tokens.sign(SECRETS[0], tokens.SurveyRef("h", f"d{n}", "7", START))
        created = int((START + timedelta(minutes=n)).timestamp() * 1_000_000)
        rows.append((token, "h", f"d{n}", "7", "Anna", None, team, "sent", created, None))
    return rows


def test_the_shown_spelling_is_the_most_frequent_whatever_the_order() -> None:
    spellings = ["billing", "Billing", "BILLING ", "Billing", "billing\u00a0", "Support"]
    # "billing" and "billing\u00a0" are one spelling as shown (spaces collapsed): 2 against
    # "Billing"'s 2, a tie the code-point order settles ("B" before "b").
    for seed in range(6):
        shuffled = spellings[:]
        random.Random(seed).shuffle(shuffled)
        data = build_dataset([], _survey_rows(shuffled), secrets=SECRETS, helpdesks={})
        assert sorted(t for t in data.teams if t) == ["Billing", "Support"]
    data = build_dataset(
        [], _survey_rows(["billing", "billing ", "Billing"]), secrets=SECRETS, helpdesks={}
    )
    assert [t for t in data.teams if t] == ["billing"]


def test_a_team_that_shows_nothing_is_no_team() -> None:
    data = build_dataset(
        [], _survey_rows(["  ", "\u200b", "", "\u00a0"]), secrets=SECRETS, helpdesks={}
    )
    assert data.teams == [""]
    assert set(data.sent.team) == {0}


def test_name_key() -> None:
    assert len({name_key(t) for t, _ in TEAMS if "ill" in t.casefold()}) == 1
    assert name_key("Caf\u00e9") == name_key("CAFE\u0301") == "café"
    assert name_key(" Support\tL1\u200b ") == "support l1"
    assert name_key("Support L1") != name_key("Support L2")


def test_a_team_called_no_team_is_told_apart_from_the_answers_of_no_team(
    kit: Any, tmp_path: Path
) -> None:
    """The surveys that named no team are listed as "No team"; a team that is really called
    so ("no team ", a helpdesk's placeholder) was listed under the same label, two rows a
    reader could not tell apart. The team keeps its name with its tag (as an agent whose name
    is "No agent recorded" gets their key); the answers of no team keep the label."""
    lines, n = [CSV_HEADER], 0
    stamp = f"{kit.now - timedelta(days=1):%Y/%m/%d} 3:47:14 PM GMT+3"
    for team, ratings in (("no team ", [5, 5, 1]), (None, [1]), ("Support", [5])):
        for rating in ratings:
            n += 1
            token = kit.survey(f"D-{n}", "1", "Agent 1", team=team)
            lines.append(f"{stamp},{rating},,Agent 1,D-{n},{token}")
    config, report_dir = _csv_to_local(kit, tmp_path, lines)
    assert kit.run(config).status == "ok"

    with (report_dir / "summary.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    teams = {r["Agent"]: r["Answers"] for r in rows if r["Rank"] == "Team"}
    assert teams == {"No team": "1", f"no team #{tag(name_key('no team'))}": "3", "Support": "1"}
