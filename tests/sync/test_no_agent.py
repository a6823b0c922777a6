"""Surveys sent for a close that named no agent (agent key "", ``skip_without_agent: false``):
counted in the team and overall figures, shown on per-agent views under an explicit label,
never ranked, left out of the empirical-Bayes fit, their tab titled with that label."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from csat_hook.sync.dataset import Agent
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.leaderboard import build_leaderboard
from csat_hook.sync.leaderboard import noted_prior
from csat_hook.sync.metrics import Settings
from csat_hook.sync.metrics import compute
from csat_hook.sync.report.common import display_names
from csat_hook.sync.shrinkage import fit_prior
from csat_hook.sync.texts import Texts
from csat_hook.sync.titles import agent_title
from tests.sync.conftest import leaderboard
from tests.sync.test_leaderboard import NOW_STAMP
from tests.sync.test_leaderboard import TODAY
from tests.sync.test_leaderboard import TZ
from tests.sync.test_read_memo import CSV_HEADER

LABEL = {"en": "No agent recorded", "ru": "Сотрудник не указан"}
HEADERS = {
    "en": ("Rank", "Agent", "Answers", "Adjusted CSAT", "Name", "Level", "All agents"),
    "ru": ("Место", "Сотрудник", "Оценок", "Скорректированный CSAT", "Название", "Уровень",
           "Вся команда"),
}  # fmt: skip

# (agent id, name, team, ratings): three named agents and no-agent surveys in three teams.
NAMED = [
    ("1", "Anna", "A", [5, 5, 5, 4, 2]),
    ("2", "Boris", "B", [5, 3, 2, 1, 4, 5]),
    ("3", "Vera", "A", [5, 5, 4, 5]),
]
UNNAMED = [("A", 5), ("B", 5), ("C", 5), ("C", 1)]


@pytest.mark.parametrize("language", ["en", "ru"])
def test_no_agent_answers_are_labelled_unranked_and_left_out_of_the_fit(
    kit: Any, tmp_path: Path, language: str
) -> None:
    lines, n = [CSV_HEADER], 0
    when = kit.now - timedelta(days=1)
    stamp = f"{when:%Y/%m/%d} 3:47:14 PM GMT+3"
    for agent_id, name, team, ratings in NAMED:
        for rating in ratings:
            n += 1
            token = kit.survey(f"D-{n}", agent_id, name, team=team)
            lines.append(f"{stamp},{rating},,{name},D-{n},{token}")
    for team, rating in UNNAMED:
        n += 1
        token = kit.survey(f"D-{n}", None, team=team)  # the close named no agent
        lines.append(f"{stamp},{rating},,,D-{n},{token}")
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", "utf-8")
    report_dir = tmp_path / "report"
    config = kit.config(
        results={"source": "csv", "csv": {"path": str(export)}},
        output={
            "gsheets": {"enabled": False},
            "language": language,
            "local": {"enabled": True, "dir": str(report_dir)},
        },
    )
    summary = kit.run(config)
    assert summary.status == "ok", summary.error
    rank_h, agent_h, answers_h, adjusted_h, name_h, level_h, everyone = HEADERS[language]
    label = LABEL[language]

    # The xlsx leaderboard: the label, no rank, no adjusted CSAT, listed last among agents.
    workbook = openpyxl.load_workbook(report_dir / "csat-report.xlsx")
    cells = [list(r) for r in workbook.worksheets[0].iter_rows(values_only=True)]
    board = leaderboard(cells)
    assert "" not in board and "None" not in board
    assert board[label][rank_h] is None
    assert board[label][adjusted_h] is None
    assert board[label][answers_h] == len(UNNAMED)
    names = list(board)
    assert names.index(label) == len(NAMED)  # right after the three ranked agents
    assert sorted(board[name][rank_h] for _, name, _, _ in NAMED) == [1, 2, 3]
    # Everyone's figures still count the no-agent answers.
    assert board[everyone][answers_h] == sum(len(r) for *_, r in NAMED) + len(UNNAMED)
    # The others' adjusted CSAT: the fit of the three named agents alone.
    figures = [(sum(r >= 4 for r in ratings), len(ratings)) for *_, ratings in NAMED]
    fitted = fit_prior(figures)
    assert fitted is not None and fitted.agents == len(NAMED)
    prior = noted_prior(fitted)
    for (_, name, _, _), (s, n_) in zip(NAMED, figures, strict=True):
        assert board[name][adjusted_h] == pytest.approx(round(prior.shrink(s, n_), 9), abs=1e-12)

    # summary.csv: the same row, no empty agent name, no rank.
    with (report_dir / "summary.csv").open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    agent_rows = [r for r in rows if r[rank_h] not in ("Team", "Команда") and r[agent_h]]
    assert all(r[agent_h] for r in rows)
    unlabelled = [r for r in agent_rows if r[agent_h] == label]
    assert len(unlabelled) == 1 and unlabelled[0][rank_h] == ""
    assert unlabelled[0][f"{adjusted_h} (%)"] == ""

    # periods.csv: the agent rows of no agent carry the label, never an empty name.
    with (report_dir / "periods.csv").open(encoding="utf-8-sig") as handle:
        periods = list(csv.DictReader(handle))
    assert all(r[name_h] for r in periods)
    assert any(r[name_h] == label for r in periods if r[level_h] == HEADERS[language][1])

    # The xlsx tab of those answers is titled with the label (it was "-").
    titles = workbook.sheetnames
    assert "-" not in titles
    assert label in titles


@pytest.mark.parametrize("language", ["en", "ru"])
def test_display_names_label_the_no_agent_key(language: str) -> None:
    texts = Texts(language)
    data = Dataset(agents=[Agent("desk", "7", "Anna", ""), Agent("desk", "", "", "")])
    assert display_names(data, texts) == ["Anna", LABEL[language]]


def test_two_helpdesks_without_an_agent_get_two_labels() -> None:
    data = Dataset(agents=[Agent("desk", "", "", ""), Agent("other", "", "", "")])
    assert display_names(data) == ["No agent recorded (desk)", "No agent recorded (other)"]


def test_an_agent_called_like_the_label_keeps_the_label_apart() -> None:
    data = Dataset(agents=[Agent("desk", "", "", ""), Agent("desk", "9", "No agent recorded", "")])
    names = display_names(data)
    assert names[0] == "No agent recorded" and names[1] == "No agent recorded (9)"


def test_the_no_agent_tab_is_titled_with_the_label_alone() -> None:
    assert agent_title("No agent recorded", "", 31) == "No agent recorded"
    assert agent_title("No agent recorded", "", 31, "desk") == "No agent recorded (desk)"


def test_leaderboard_lists_no_agent_last_unranked_and_out_of_the_fit() -> None:
    # Agent 9 stands for no agent: many answers, all satisfied; it would rank first and pull
    # the fitted prior toward it.
    figures = {0: (8, 10), 1: (6, 10), 2: (9, 12), 9: (40, 40)}
    answers = []
    for agent, (s, n) in figures.items():
        answers += [(agent, 0, NOW_STAMP, 5, True, None)] * s
        answers += [(agent, 0, NOW_STAMP, 1, True, None)] * (n - s)
    from csat_hook.sync.periods import previous
    from csat_hook.sync.periods import rolling

    current, earlier = compute(
        answers, [], [rolling(TODAY, 30), previous(TODAY, 30)], Settings(min_n=3), TZ
    )
    board = build_leaderboard(
        current, earlier, name=str, team_name=str, min_n=3, unranked=frozenset({9})
    )
    assert [a for a, _ in board.agents][-1] == 9
    row = dict(board.agents)[9]
    assert row.rank is None and row.adjusted is None
    assert sorted(r.rank for a, r in board.agents if a != 9) == [1, 2, 3]  # type: ignore[type-var]
    fitted = fit_prior([figures[a] for a in (0, 1, 2)])
    assert fitted is not None
    prior = noted_prior(fitted)
    assert board.prior == prior
    for agent in (0, 1, 2):
        assert dict(board.agents)[agent].adjusted == round(prior.shrink(*figures[agent]), 9)
    assert board.overall.stats.answers == sum(n for _, n in figures.values())
