"""Per-agent, per-team and overall CSAT (and NPS) for day-aligned periods. One pass.

Definitions (docs/sync.md repeats them for managers):

* Every figure of a period is about the same **cohort**: the surveys sent in that period
  (by the survey's creation time, which is also the issue time in its token). *Surveys sent*
  counts surveys with status ``sent``; *answers* counts credited answers to surveys of the
  cohort; *response rate* = answers to surveys with status ``sent`` in the cohort ÷ surveys
  sent in the cohort. Both sides get the same agent/team filter (a team is the one recorded
  with the survey). Answers whose survey is not in the database count in CSAT with their
  token's issue time as cohort, and not in the response rate.
* *CSAT* = share of answers rated at or above ``metrics.top_box``; *mean*; the distribution
  per score; a 95% Wilson score interval (:mod:`.intervals`).
* The **funnel** on the same cohort: *surveys sent* → *opened* (sent surveys a person opened
  through a short link: a human click, never a scanner's, :mod:`csat_hook.clicks.funnel`) →
  *answered* (``answered_sent``). *Open rate* = opened ÷ sent.
* *NPS* (when the form asks the 0–10 question) = share of promoters (9–10) − share of
  detractors (0–6) among the answers that have it, with its adjusted Wald interval.

Ranking is the leaderboard's business (:mod:`.leaderboard`), for its period only.

The hot path maps each cohort instant to a *segment* of the timeline (between two period
edges; ``bisect``, C speed), counts ``(agent, team, segment, rating, matched, nps)`` tuples
with ``collections.Counter`` (C speed), and only then walks periods over the few distinct
cells.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from zoneinfo import ZoneInfo

from csat_hook.sync.intervals import nps
from csat_hook.sync.intervals import nps_class
from csat_hook.sync.intervals import nps_interval
from csat_hook.sync.intervals import wilson
from csat_hook.sync.periods import Period
from csat_hook.sync.periods import Timeline


@dataclass(frozen=True)
class Settings:
    scale_min: int = 1
    scale_max: int = 5
    top_box: int = 4
    min_n: int = 10

    @property
    def points(self) -> int:
        return self.scale_max - self.scale_min + 1


@dataclass
class Stats:
    """Figures for one group in one period. Ratios are None when undefined (never NaN).

    ``nps_counts`` are the detractors, passives and promoters among the answers that have an
    NPS answer.
    """

    distribution: list[int]
    answered_sent: int = 0
    sent: int = 0
    opened: int = 0  # sent surveys a person opened (the funnel's middle step)
    settings: Settings = field(default_factory=Settings)
    nps_counts: list[int] = field(default_factory=lambda: [0, 0, 0])

    @property
    def answers(self) -> int:
        return sum(self.distribution)

    @property
    def satisfied(self) -> int:
        return sum(self.distribution[self.settings.top_box - self.settings.scale_min :])

    @property
    def csat(self) -> float | None:
        n = self.answers
        return self.satisfied / n if n else None

    @property
    def mean(self) -> float | None:
        n = self.answers
        low = self.settings.scale_min
        return sum((low + i) * c for i, c in enumerate(self.distribution)) / n if n else None

    @property
    def response_rate(self) -> float | None:
        return self.answered_sent / self.sent if self.sent else None

    @property
    def open_rate(self) -> float | None:
        return self.opened / self.sent if self.sent else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.satisfied, self.answers)

    @property
    def below_min_n(self) -> bool:
        return self.answers < self.settings.min_n

    @property
    def nps_answers(self) -> int:
        return sum(self.nps_counts)

    @property
    def nps(self) -> float | None:
        detractors, passives, promoters = self.nps_counts
        return nps(promoters, passives, detractors)

    @property
    def nps_interval(self) -> tuple[float, float] | None:
        detractors, passives, promoters = self.nps_counts
        return nps_interval(promoters, passives, detractors)

    def add(self, other: Stats) -> None:
        for i, count in enumerate(other.distribution):
            self.distribution[i] += count
        for i, count in enumerate(other.nps_counts):
            self.nps_counts[i] += count
        self.answered_sent += other.answered_sent
        self.sent += other.sent
        self.opened += other.opened


def blank(settings: Settings) -> Stats:
    return Stats([0] * settings.points, settings=settings)


@dataclass
class PeriodResult:
    period: Period
    overall: Stats
    teams: dict[int, Stats]
    agents: dict[int, Stats]


def compute(
    answers: Iterable[tuple[int, int, float, int, bool, int | None]],
    sent: Iterable[tuple[int, int, float] | tuple[int, int, float, bool]],
    periods: Sequence[Period],
    settings: Settings,
    tz: ZoneInfo,
) -> list[PeriodResult]:
    """Aggregate answers ``(agent, team, cohort instant, rating, answered_sent, nps)`` and
    sent surveys ``(agent, team, cohort instant[, opened])`` (instants in Unix seconds) into every
    period. Ratings off the scale are ignored (with their NPS answer); nps is None when the
    answer has none.
    """
    timeline = Timeline(periods, tz)
    bounds, place = timeline.bounds, bisect.bisect_right
    answer_cells = Counter((a, t, place(bounds, when), r, m, s) for a, t, when, r, m, s in answers)
    sent_cells = Counter((s[0], s[1], place(bounds, s[2]), len(s) > 3 and bool(s[3])) for s in sent)
    groups: dict[tuple[int, int, int], Stats] = {}

    def group(p: int, agent: int, team: int) -> Stats:
        stats = groups.get((p, agent, team))
        if stats is None:
            stats = groups[(p, agent, team)] = blank(settings)
        return stats

    for (agent, team, segment, rating, matched, score), count in answer_cells.items():
        index = rating - settings.scale_min
        if not 0 <= index < settings.points:
            continue
        klass = None if score is None else nps_class(score)
        for p in timeline.members[segment]:
            stats = group(p, agent, team)
            stats.distribution[index] += count
            if matched:
                stats.answered_sent += count
            if klass is not None:
                stats.nps_counts[klass] += count
    for (agent, team, segment, opened), count in sent_cells.items():
        for p in timeline.members[segment]:
            stats = group(p, agent, team)
            stats.sent += count
            if opened:
                stats.opened += count
    return _roll_up(groups, periods, settings)


def _roll_up(
    groups: dict[tuple[int, int, int], Stats], periods: Sequence[Period], settings: Settings
) -> list[PeriodResult]:
    results = [PeriodResult(p, blank(settings), {}, {}) for p in periods]
    for (p, agent, team), stats in groups.items():
        result = results[p]
        result.overall.add(stats)
        for bucket, key in ((result.teams, team), (result.agents, agent)):
            if key not in bucket:
                bucket[key] = blank(settings)
            bucket[key].add(stats)
    return results
