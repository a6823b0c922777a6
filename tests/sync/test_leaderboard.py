"""The leaderboard against an independent computation: ranks, ties, min_n, change marks."""

from __future__ import annotations

import math
import random
from datetime import UTC
from datetime import datetime
from decimal import ROUND_HALF_UP
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from scipy import stats

from csat_hook.sync.leaderboard import build_leaderboard
from csat_hook.sync.leaderboard import noted_prior
from csat_hook.sync.metrics import Settings
from csat_hook.sync.metrics import compute
from csat_hook.sync.periods import local_day
from csat_hook.sync.periods import previous
from csat_hook.sync.periods import rolling
from csat_hook.sync.shrinkage import Prior
from tests.sync.test_shrinkage import noted
from tests.sync.test_shrinkage import scipy_fit

TZ = ZoneInfo("UTC")
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
TODAY = local_day(NOW, TZ)
NOW_STAMP = datetime(2026, 11, 10, 12, tzinfo=UTC).timestamp()  # in the last 30 days
BEFORE_STAMP = datetime(2026, 10, 10, 12, tzinfo=UTC).timestamp()  # in the 30 before


def board_for(now: dict[int, tuple[int, int]], before: dict[int, tuple[int, int]], min_n: int):
    """A leaderboard from (satisfied, answers) per agent now and in the previous period."""
    answers = []
    for stamp, figures in ((NOW_STAMP, now), (BEFORE_STAMP, before)):
        for agent, (s, n) in figures.items():
            answers += [(agent, agent % 2, stamp, 5, True, None)] * s
            answers += [(agent, agent % 2, stamp, 1, True, None)] * (n - s)
    periods = [rolling(TODAY, 30), previous(TODAY, 30)]
    current, earlier = compute(answers, [], periods, Settings(min_n=min_n), TZ)
    board = build_leaderboard(
        current, earlier, name=lambda a: f"agent {a:02d}", team_name=str, min_n=min_n
    )
    return board


def independent_ranks(now: dict[int, tuple[int, int]], min_n: int) -> dict[int, tuple[int, bool]]:
    """Competition ranking of scipy's posterior means (the prior as the note writes it)
    rounded half up to 0.1 pp."""
    mu, weight = noted(*scipy_fit(list(now.values())))
    score = {
        a: Decimal(repr((s + mu * weight) / (n + weight))).quantize(
            Decimal("0.001"), rounding=ROUND_HALF_UP
        )
        for a, (s, n) in now.items()
        if n >= min_n
    }
    ranks = {}
    for agent, value in score.items():
        better = sum(1 for other in score.values() if other > value)
        tied = sum(1 for other in score.values() if other == value) > 1
        ranks[agent] = (better + 1, tied)
    return ranks


def test_ranks_ties_and_small_agents_match_an_independent_computation():
    rng = random.Random(12)
    now = {}
    for agent in range(14):
        n = rng.choice([2, 3, 7, 15, 30, 60, 120])
        now[agent] = (sum(rng.random() < rng.uniform(0.6, 0.97) for _ in range(n)), n)
    now[20], now[21] = (40, 50), (40, 50)  # the same record: the same place, marked
    board = board_for(now, {}, min_n=10)
    expected = independent_ranks(now, 10)
    shown = {agent: (row.rank, row.tied) for agent, row in board.agents if row.rank is not None}
    assert shown == expected
    assert board.agents[-1][1].rank is None  # small agents listed after the ranked ones
    ranked = [a for a, r in board.agents if r.rank is not None]
    assert ranked == sorted(ranked, key=lambda a: (expected[a][0], -now[a][1], f"agent {a:02d}"))
    assert {a for a, r in board.agents if r.rank is None} == {
        a for a, (_, n) in now.items() if n < 10
    }
    assert shown[20] == shown[21] and shown[20][1] is True
    # From the prior as the note writes it (μ to 0.1 pp, M to three digits): scipy's, so
    # rounded.
    mu, weight = noted(*scipy_fit(list(now.values())))
    for agent, row in board.agents:
        s, n = now[agent]
        assert row.adjusted == pytest.approx((s + mu * weight) / (n + weight), abs=1e-6)


def test_three_of_three_is_shown_below_the_ranked_agents_not_above_them():
    """The highest CSAT (3 of 3) is listed, without a place, after every ranked agent."""
    board = board_for({0: (3, 3), 1: (58, 60), 2: (10, 12), 3: (40, 60)}, {}, min_n=10)
    order = [(agent, row.rank) for agent, row in board.agents]
    assert order == [(1, 1), (2, 2), (3, 3), (0, None)]


def test_no_prior_without_enough_data_ranks_by_raw_csat():
    board = board_for({0: (9, 10), 1: (1, 1)}, {}, min_n=1)  # agent 1 has one answer only
    assert board.prior is not None  # two agents, eleven answers: estimable
    alone = board_for({0: (9, 10)}, {}, min_n=1)
    assert alone.prior is None
    [(agent, row)] = alone.agents
    assert (agent, row.rank, row.adjusted) == (0, 1, None)


@pytest.mark.parametrize(
    ("now", "before", "mark"),
    [
        ((18, 20), (12, 20), 1),  # Newcombe: +0.0294 … +0.5253, significant
        ((45, 50), (38, 50), 0),  # −0.0094 … +0.2856: not significant
        ((12, 20), (18, 20), -1),
        ((9, 9), (2, 9), 0),  # significant, but fewer than min_n answers on both sides
    ],
)
def test_a_change_is_marked_only_when_significant_with_enough_answers(now, before, mark):
    board = board_for({0: now, 1: (30, 40)}, {0: before, 1: (30, 40)}, min_n=10)
    row = dict(board.agents)[0]
    assert row.mark == mark
    a = stats.binomtest(now[0], now[1]).proportion_ci(method="wilson")
    b = stats.binomtest(before[0], before[1]).proportion_ci(method="wilson")
    p1, p2 = now[0] / now[1], before[0] / before[1]
    assert row.change.value == pytest.approx(p1 - p2)
    assert row.change.low == pytest.approx(p1 - p2 - math.hypot(p1 - a.low, b.high - p2))
    assert row.change.high == pytest.approx(p1 - p2 + math.hypot(a.high - p1, p2 - b.low))


def test_team_and_overall_rows():
    board = board_for({0: (8, 10), 1: (5, 10), 2: (9, 10)}, {0: (5, 10)}, min_n=5)
    assert [team for team, _ in board.teams] == [0, 1]  # agent % 2
    overall = board.overall
    assert (overall.stats.answers, overall.stats.satisfied) == (30, 22)
    assert overall.previous is not None and overall.previous.answers == 10
    team0 = dict(board.teams)[0].stats
    assert (team0.answers, team0.satisfied) == (20, 17)


@pytest.mark.parametrize(
    ("fitted", "written"),
    [
        (Prior(0.65827, 0.50473, 7), Prior(0.658, 0.505, 7)),
        (Prior(0.8345, 9.4449, 12), Prior(0.835, 9.44, 12)),  # halves up
        (Prior(0.91, 123456.0, 4), Prior(0.91, 123000.0, 4)),
        (Prior(0.7999, 999.6, 5), Prior(0.8, 1000.0, 5)),
        (Prior(0.77777, math.inf, 3), Prior(0.778, math.inf, 3)),
    ],
)
def test_the_prior_as_noted_is_rounded_as_the_note_writes_it(fitted, written):
    assert noted_prior(fitted) == written
    if not fitted.pooled:  # the tests' own rounding agrees
        assert noted(fitted.mean, fitted.weight) == (written.mean, written.weight)
