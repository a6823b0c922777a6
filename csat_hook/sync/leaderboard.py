"""The leaderboard: who is doing well in the headline period, honestly about small samples.

* Every agent with answers or surveys sent in the period is listed.
* **Adjusted CSAT**: the empirical-Bayes posterior mean (:mod:`.shrinkage`), the prior
  fitted to every agent with at least one answer in the period, as the Summary's note
  writes it (:func:`noted_prior`).
* **Rank**: agents with at least ``metrics.min_n`` answers, by adjusted CSAT as the sheet
  shows it (0.1 percentage point, rounded half up); equal values share a place (competition
  ranking 1, 2, 2, 4, the shared ones marked); within a place, more answers first, then the
  name. Agents below ``min_n`` are listed after them, not ranked. When no prior can be
  fitted (fewer than two agents with answers, or nobody with two), raw CSAT ranks.
* **No agent recorded** (``unranked``: the surveys whose close named no agent, pooled per
  helpdesk): listed after every agent, never ranked, left out of the fit and without an
  adjusted CSAT; their answers count in the team and overall rows as everyone's do.
* **Change** against the previous period of the same length (CSAT now − CSAT then) with
  Newcombe's interval (:func:`.intervals.newcombe`); marked ▲/▼ only when the interval
  excludes 0 and both periods have at least ``min_n`` answers.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set
from dataclasses import dataclass
from decimal import ROUND_HALF_UP
from decimal import Decimal

from csat_hook.sync.intervals import Difference
from csat_hook.sync.intervals import newcombe
from csat_hook.sync.metrics import PeriodResult
from csat_hook.sync.metrics import Stats
from csat_hook.sync.shrinkage import Prior
from csat_hook.sync.shrinkage import fit_prior

STORED_DIGITS = 9  # figures are written rounded to this (a re-run gives the same cells; as
# report.common.DIGITS: fewer digits, rounded again for display, could show one step off)
RANK_STEP = Decimal("0.001")  # 0.1 percentage point: what the sheet shows


@dataclass(frozen=True)
class Row:
    """One line: an agent's, a team's or everyone's figures now and in the previous period."""

    stats: Stats
    previous: Stats | None
    change: Difference | None  # CSAT now − CSAT in the previous period
    mark: int  # +1 / −1: a significant rise / fall; 0: none (or not judged)
    adjusted: float | None = None
    rank: int | None = None
    tied: bool = False


@dataclass(frozen=True)
class Leaderboard:
    agents: list[tuple[int, Row]]  # (agent index, row) in display order
    teams: list[tuple[int, Row]]  # (team index, row), by team name
    overall: Row
    prior: Prior | None  # None: not estimable, raw CSAT ranks
    min_n: int


def judge_change(now: Stats, before: Stats | None, min_n: int) -> tuple[Difference | None, int]:
    """The change of CSAT and its mark (0 unless significant with min_n answers each side)."""
    if before is None:
        return None, 0
    change = newcombe(now.satisfied, now.answers, before.satisfied, before.answers)
    if change is None or now.answers < min_n or before.answers < min_n:
        return change, 0
    return change, change.direction


def rank_value(value: float) -> Decimal:
    """A figure as the ranking compares it: rounded half up to 0.1 percentage point."""
    return Decimal(repr(value)).quantize(RANK_STEP, rounding=ROUND_HALF_UP)


def noted_prior(prior: Prior) -> Prior:
    """``prior`` as the Summary's note writes it: μ to 0.1 percentage point, M to three
    significant digits (halves up). The adjusted CSAT is computed from it, so that
    "(satisfied + M × μ) / (answers + M)" redone with the note's numbers gives the figure
    shown: rounded only in the note, M = 0.505 read "0.5" and 6 of 6 redone gave 97.4%
    beside the 97.3% shown. (The fit's optimum is flat there: the ranks barely move.)"""
    mean = float(Decimal(repr(prior.mean)).quantize(RANK_STEP, rounding=ROUND_HALF_UP))
    if prior.pooled:
        return Prior(mean, prior.weight, prior.agents)
    exact = Decimal(repr(prior.weight))
    step = Decimal(1).scaleb(exact.adjusted() - 2)
    return Prior(mean, float(exact.quantize(step, rounding=ROUND_HALF_UP)), prior.agents)


def build_leaderboard(
    current: PeriodResult,
    previous: PeriodResult,
    *,
    name: Callable[[int], str],
    team_name: Callable[[int], str],
    min_n: int,
    unranked: Set[int] = frozenset(),
) -> Leaderboard:
    """The leaderboard of ``current``; ``name`` gives an agent index's display name;
    ``unranked`` are the agent indexes that stand for no agent (listed last, not ranked,
    not fitted)."""
    listed = {a: s for a, s in current.agents.items() if s.answers or s.sent}
    fitted = fit_prior([(s.satisfied, s.answers) for a, s in listed.items() if a not in unranked])
    prior = noted_prior(fitted) if fitted is not None else None

    def row(stats: Stats, before: Stats | None, adjusted: float | None = None) -> Row:
        change, mark = judge_change(stats, before, min_n)
        return Row(stats, before, change, mark, adjusted)

    rows = {}
    for agent, stats in listed.items():
        adjusted = None
        if prior is not None and stats.answers and agent not in unranked:
            adjusted = round(prior.shrink(stats.satisfied, stats.answers), STORED_DIGITS)
        rows[agent] = row(stats, previous.agents.get(agent), adjusted)
    agents = _ranked({a: r for a, r in rows.items() if a not in unranked}, name, min_n)
    agents += sorted(
        ((a, r) for a, r in rows.items() if a in unranked), key=lambda item: name(item[0])
    )
    teams = [
        (team, row(stats, previous.teams.get(team)))
        for team, stats in sorted(current.teams.items(), key=lambda kv: team_name(kv[0]))
        if stats.answers or stats.sent
    ]
    return Leaderboard(agents, teams, row(current.overall, previous.overall), prior, min_n)


def _ranked(rows: dict[int, Row], name: Callable[[int], str], min_n: int) -> list[tuple[int, Row]]:
    def score(row: Row) -> Decimal:
        value = row.adjusted if row.adjusted is not None else row.stats.csat
        return rank_value(value or 0.0)

    def order(item: tuple[int, Row]) -> tuple[Decimal, int, str]:
        agent, row = item
        return (-score(row), -row.stats.answers, name(agent).casefold())

    eligible = sorted(((a, r) for a, r in rows.items() if r.stats.answers >= min_n), key=order)
    others = sorted(
        ((a, r) for a, r in rows.items() if r.stats.answers < min_n),
        key=lambda item: (-item[1].stats.answers, name(item[0]).casefold()),
    )
    shared: dict[Decimal, int] = {}
    for _, r in eligible:
        shared[score(r)] = shared.get(score(r), 0) + 1
    ranked: list[tuple[int, Row]] = []
    place = 0
    for position, (agent, r) in enumerate(eligible, start=1):
        if position == 1 or score(r) != score(eligible[position - 2][1]):
            place = position
        ranked.append((agent, _with_rank(r, place, shared[score(r)] > 1)))
    return ranked + others


def _with_rank(row: Row, rank: int, tied: bool) -> Row:
    return Row(row.stats, row.previous, row.change, row.mark, row.adjusted, rank, tied)
