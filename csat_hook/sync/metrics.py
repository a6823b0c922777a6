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

The hot path is columnar (numpy, no per-answer Python object): each cohort instant is mapped
to a *segment* of the timeline (between two period edges; ``searchsorted``), the columns
``(agent, team, segment, rating, matched, nps class)`` are packed into one integer per answer
and counted with ``numpy.unique``, and only then are periods walked over the few distinct
cells (at most agents × teams × segments × points × 2 × 4, usually a few ten thousand).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from csat_hook.sync.intervals import DETRACTOR
from csat_hook.sync.intervals import PROMOTER
from csat_hook.sync.intervals import nps
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


@dataclass(frozen=True)
class AnswerColumns:
    """Answers as columns (one entry per answer): agent and team indexes, cohort instant in
    Unix seconds, rating, whether the survey was sent (``answered_sent``), and the NPS answer
    (-1 when none)."""

    agent: np.ndarray[Any, np.dtype[np.int64]]
    team: np.ndarray[Any, np.dtype[np.int64]]
    when: np.ndarray[Any, np.dtype[np.float64]]
    rating: np.ndarray[Any, np.dtype[np.int64]]
    matched: np.ndarray[Any, np.dtype[np.bool_]]
    nps: np.ndarray[Any, np.dtype[np.int64]]

    @classmethod
    def of(cls, rows: Iterable[tuple[int, int, float, int, bool, int | None]]) -> AnswerColumns:
        """From ``(agent, team, cohort instant, rating, answered_sent, nps)`` tuples."""
        listed = list(rows)
        return cls(
            np.fromiter((r[0] for r in listed), np.int64, len(listed)),
            np.fromiter((r[1] for r in listed), np.int64, len(listed)),
            np.fromiter((r[2] for r in listed), np.float64, len(listed)),
            np.fromiter((r[3] for r in listed), np.int64, len(listed)),
            np.fromiter((r[4] for r in listed), np.bool_, len(listed)),
            np.fromiter((-1 if r[5] is None else r[5] for r in listed), np.int64, len(listed)),
        )


@dataclass(frozen=True)
class SentColumns:
    """Surveys sent as columns: agent and team indexes, cohort instant in Unix seconds, and
    whether a person opened it through a short link (None: nobody did)."""

    agent: np.ndarray[Any, np.dtype[np.int64]]
    team: np.ndarray[Any, np.dtype[np.int64]]
    when: np.ndarray[Any, np.dtype[np.float64]]
    opened: np.ndarray[Any, np.dtype[np.bool_]] | None = None

    @classmethod
    def of(
        cls, rows: Iterable[tuple[int, int, float] | tuple[int, int, float, bool]]
    ) -> SentColumns:
        """From ``(agent, team, cohort instant[, opened])`` tuples."""
        listed = list(rows)
        return cls(
            np.fromiter((r[0] for r in listed), np.int64, len(listed)),
            np.fromiter((r[1] for r in listed), np.int64, len(listed)),
            np.fromiter((r[2] for r in listed), np.float64, len(listed)),
            np.fromiter((len(r) > 3 and bool(r[3]) for r in listed), np.bool_, len(listed)),
        )


def compute(
    answers: AnswerColumns | Iterable[tuple[int, int, float, int, bool, int | None]],
    sent: SentColumns | Iterable[tuple[int, int, float] | tuple[int, int, float, bool]],
    periods: Sequence[Period],
    settings: Settings,
    tz: ZoneInfo,
) -> list[PeriodResult]:
    """Aggregate answers ``(agent, team, cohort instant, rating, answered_sent, nps)`` and
    sent surveys ``(agent, team, cohort instant[, opened])`` (instants in Unix seconds; as
    columns or as tuples) into every period. Ratings off the scale are ignored (with their
    NPS answer); nps is None (-1 in columns) when the answer has none.
    """
    timeline = Timeline(periods, tz)
    bounds = np.asarray(timeline.bounds, dtype=np.float64)
    a = answers if isinstance(answers, AnswerColumns) else AnswerColumns.of(answers)
    s = sent if isinstance(sent, SentColumns) else SentColumns.of(sent)
    groups: dict[tuple[int, int, int], Stats] = {}

    def group(p: int, agent: int, team: int) -> Stats:
        stats = groups.get((p, agent, team))
        if stats is None:
            stats = groups[(p, agent, team)] = blank(settings)
        return stats

    index = a.rating - settings.scale_min
    on_scale = (index >= 0) & (index < settings.points)
    # NPS class 0 detractor, 1 passive, 2 promoter (intervals.nps_class), 3 none.
    klass = np.where(
        a.nps < 0, 3, np.where(a.nps >= PROMOTER, 2, np.where(a.nps <= DETRACTOR, 0, 1))
    )
    cells = _count(
        (a.agent[on_scale], a.team[on_scale]),
        (
            np.searchsorted(bounds, a.when[on_scale], side="right"),
            index[on_scale],
            a.matched[on_scale].astype(np.int64),
            klass[on_scale],
        ),
        (len(bounds) + 1, settings.points, 2, 4),
    )
    for (agent, team, segment, point, matched, score), count in cells:
        for p in timeline.members[segment]:
            stats = group(p, agent, team)
            stats.distribution[point] += count
            if matched:
                stats.answered_sent += count
            if score != 3:
                stats.nps_counts[score] += count
    opened = s.opened if s.opened is not None else np.zeros(len(s.agent), dtype=np.bool_)
    sent_cells = _count(
        (s.agent, s.team),
        (np.searchsorted(bounds, s.when, side="right"), opened.astype(np.int64)),
        (len(bounds) + 1, 2),
    )
    for (agent, team, segment, was_opened), count in sent_cells:
        for p in timeline.members[segment]:
            stats = group(p, agent, team)
            stats.sent += count
            if was_opened:
                stats.opened += count
    return _roll_up(groups, periods, settings)


def _count(
    ids: tuple[np.ndarray[Any, Any], ...],
    small: tuple[np.ndarray[Any, Any], ...],
    sizes: tuple[int, ...],
) -> list[tuple[tuple[int, ...], int]]:
    """Distinct rows of the columns ``ids`` (non-negative indexes of any size) and ``small``
    (each below its ``sizes`` entry), with how often each occurs: one packed integer per
    row, counted by ``numpy.unique``."""
    if not len(ids[0]):
        return []
    key = np.zeros(len(ids[0]), dtype=np.int64)
    radixes = [int(column.max()) + 1 for column in ids] + list(sizes)
    for column, radix in zip((*ids, *small), radixes, strict=True):
        key = key * radix + column
    distinct, counts = np.unique(key, return_counts=True)
    columns = []
    for radix in reversed(radixes):
        distinct, rest = np.divmod(distinct, radix)
        columns.append(rest.tolist())
    return list(zip(zip(*reversed(columns), strict=True), counts.tolist(), strict=True))


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
