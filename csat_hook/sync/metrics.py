"""Per-agent, per-team and overall CSAT for day-aligned periods. Pure functions, one pass.

Definitions (docs/sync.md repeats them for managers):

* A period is a range of whole days in ``metrics.timezone``: "last N days" is today and the
  N-1 days before it; a calendar month; or all time.
* Every figure of a period is about the same **cohort**: the surveys sent in that period
  (by the survey's creation time, which is also the issue time in its token). *Surveys sent*
  counts surveys with status ``sent``; *answers* counts credited answers to surveys of the
  cohort; *response rate* = answers to surveys with status ``sent`` in the cohort ÷ surveys
  sent in the cohort. Both sides get the same agent/team filter (a team is the one recorded
  with the survey). Answers whose survey is not in the database count in CSAT with their
  token's issue time as cohort, and not in the response rate.
* *CSAT %* = share of answers rated at or above ``metrics.top_box``; *mean*; the distribution
  per score; a 95% Wilson score interval for CSAT; agents with fewer than ``metrics.min_n``
  answers are shown but not ranked. Ranking is by the Wilson lower bound (so 10 of 12 beats
  2 of 2), then CSAT, then volume.

The hot path maps each cohort instant to a *segment* of the timeline (between two period
edges; ``bisect``, C speed), counts ``(agent, team, segment, rating, matched)`` tuples with
``collections.Counter`` (C speed), and only then walks periods over the few distinct cells.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import time
from zoneinfo import ZoneInfo

from csat_hook.sync.config import PeriodsConfig

Z_95 = 1.959963984540054
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class Settings:
    scale_min: int = 1
    scale_max: int = 5
    top_box: int = 4
    min_n: int = 10

    @property
    def points(self) -> int:
        return self.scale_max - self.scale_min + 1


@dataclass(frozen=True)
class Period:
    """Whole local days ``[first_day, end_day)`` (days since 1970-01-01); None = unbounded."""

    key: str
    label: str
    first_day: int | None
    end_day: int | None

    def contains(self, day: int) -> bool:
        return (self.first_day is None or day >= self.first_day) and (
            self.end_day is None or day < self.end_day
        )

    def first_date(self) -> date | None:
        return None if self.first_day is None else date.fromordinal(self.first_day + EPOCH_ORDINAL)

    def last_date(self) -> date | None:
        return None if self.end_day is None else date.fromordinal(self.end_day - 1 + EPOCH_ORDINAL)


def local_day(moment: datetime, tz: ZoneInfo) -> int:
    """The local date of ``moment`` in ``tz`` as days since 1970-01-01."""
    return moment.astimezone(tz).date().toordinal() - EPOCH_ORDINAL


class Timeline:
    """Period edges as UTC instants, and which periods cover each segment between them.

    Every period edge is a local midnight, so membership is the same everywhere inside a
    segment; finding an instant's segment is one ``bisect``.
    """

    def __init__(self, periods: Sequence[Period], tz: ZoneInfo) -> None:
        def midnight(day: int) -> float:
            when = date.fromordinal(day + EPOCH_ORDINAL)
            return datetime.combine(when, time(0), tzinfo=tz).timestamp()

        edges: dict[int, float] = {}
        for period in periods:
            for day in (period.first_day, period.end_day):
                if day is not None:
                    edges[day] = midnight(day)
        self.bounds = sorted(edges.values())
        starts = [-math.inf, *self.bounds]
        spans = [
            (
                None if p.first_day is None else edges[p.first_day],
                None if p.end_day is None else edges[p.end_day],
            )
            for p in periods
        ]
        self.members = [
            tuple(
                i
                for i, (lo, hi) in enumerate(spans)
                if (lo is None or start >= lo) and (hi is None or start < hi)
            )
            for start in starts
        ]

    def segment(self, stamp: float) -> int:
        return bisect.bisect_right(self.bounds, stamp)


def build_periods(now: datetime, tz: ZoneInfo, config: PeriodsConfig) -> list[Period]:
    """The configured periods, ending today in ``tz``."""
    today = local_day(now, tz)
    periods = [
        Period(f"last_{n}_days", f"Last {n} days", today - n + 1, today + 1)
        for n in config.rolling_days
    ]
    local = now.astimezone(tz)
    year, month = local.year, local.month
    for i in range(config.calendar_months):
        start = date(year, month, 1)
        end = date(year + month // 12, month % 12 + 1, 1)
        label = f"{year:04d}-{month:02d}" + (" (to date)" if i == 0 else "")
        periods.append(
            Period(
                f"month_{year:04d}_{month:02d}",
                label,
                start.toordinal() - EPOCH_ORDINAL,
                end.toordinal() - EPOCH_ORDINAL,
            )
        )
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    if config.all_time:
        periods.append(Period("all_time", "All time", None, None))
    return periods


def wilson(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval for a proportion (None when n is 0)."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Stats:
    """Figures for one group in one period. Ratios are None when undefined (never NaN)."""

    distribution: list[int]
    answered_sent: int = 0
    sent: int = 0
    settings: Settings = field(default_factory=Settings)
    rank: int | None = None

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
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.satisfied, self.answers)

    @property
    def below_min_n(self) -> bool:
        return self.answers < self.settings.min_n

    def add(self, other: Stats) -> None:
        for i, count in enumerate(other.distribution):
            self.distribution[i] += count
        self.answered_sent += other.answered_sent
        self.sent += other.sent


@dataclass
class PeriodResult:
    period: Period
    overall: Stats
    teams: dict[int, Stats]
    agents: dict[int, Stats]


def compute(
    answers: Iterable[tuple[int, int, float, int, bool]],
    sent: Iterable[tuple[int, int, float]],
    periods: Sequence[Period],
    settings: Settings,
    tz: ZoneInfo,
) -> list[PeriodResult]:
    """Aggregate answers ``(agent, team, cohort instant, rating, answered_sent)`` and sent
    surveys ``(agent, team, cohort instant)`` (instants in Unix seconds) into every period.
    Ratings off the scale are ignored.
    """
    timeline = Timeline(periods, tz)
    bounds, place = timeline.bounds, bisect.bisect_right
    answer_cells = Counter((a, t, place(bounds, when), r, m) for a, t, when, r, m in answers)
    sent_cells = Counter((a, t, place(bounds, when)) for a, t, when in sent)
    blank = [0] * settings.points
    groups: dict[tuple[int, int, int], Stats] = {}

    def group(p: int, agent: int, team: int) -> Stats:
        stats = groups.get((p, agent, team))
        if stats is None:
            stats = groups[(p, agent, team)] = Stats(list(blank), settings=settings)
        return stats

    for (agent, team, segment, rating, matched), count in answer_cells.items():
        index = rating - settings.scale_min
        if not 0 <= index < settings.points:
            continue
        for p in timeline.members[segment]:
            stats = group(p, agent, team)
            stats.distribution[index] += count
            if matched:
                stats.answered_sent += count
    for (agent, team, segment), count in sent_cells.items():
        for p in timeline.members[segment]:
            group(p, agent, team).sent += count
    return _roll_up(groups, periods, settings)


def _roll_up(
    groups: dict[tuple[int, int, int], Stats], periods: Sequence[Period], settings: Settings
) -> list[PeriodResult]:
    results = [
        PeriodResult(p, Stats([0] * settings.points, settings=settings), {}, {}) for p in periods
    ]
    for (p, agent, team), stats in groups.items():
        result = results[p]
        result.overall.add(stats)
        for bucket, key in ((result.teams, team), (result.agents, agent)):
            if key not in bucket:
                bucket[key] = Stats([0] * settings.points, settings=settings)
            bucket[key].add(stats)
    for result in results:
        rank(result.agents)
    return results


def rank(agents: dict[int, Stats]) -> None:
    """Rank agents with at least min_n answers by Wilson lower bound, CSAT, then volume."""
    eligible = [(key, s) for key, s in agents.items() if not s.below_min_n]

    def order(item: tuple[int, Stats]) -> tuple[float, float, int]:
        stats = item[1]
        interval = stats.interval
        return (-(interval[0] if interval else 0.0), -(stats.csat or 0.0), -stats.answers)

    for position, (_, stats) in enumerate(sorted(eligible, key=order), start=1):
        stats.rank = position
