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

The hot path is columnar (numpy, no per-answer Python object, no sort): each cohort instant
is mapped to a *segment* of the timeline (between two period edges; ``searchsorted``), the
occurring (agent, team) pairs and (pair, segment) rows are numbered through a table of
presence, and one ``bincount`` per figure counts the answers and surveys of each row. A period
covers consecutive segments, so its counts per pair are differences of running sums over the
rows; agents, teams and overall add up their pairs. Python then only builds the few thousand
:class:`Stats` (periods × (agents + teams + 1)).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from zoneinfo import ZoneInfo

from csat_hook.sync.intervals import DETRACTOR
from csat_hook.sync.intervals import PROMOTER
from csat_hook.sync.intervals import nps
from csat_hook.sync.intervals import nps_interval
from csat_hook.sync.intervals import wilson
from csat_hook.sync.periods import Period
from csat_hook.sync.periods import Timeline

# numpy (≈ 12 MB of RSS) is imported where it is used: a sync that builds no report, and the
# read and ingest before one, run without it.
if TYPE_CHECKING:
    import numpy as np


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
        import numpy as np

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
        import numpy as np

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
    NPS answer); nps is None (-1 in columns) when the answer has none. Agent and team
    indexes are non-negative.

    A period's ``agents`` and ``teams`` hold the groups with an answer or a survey sent in
    it, in this order: those with answers by ascending (agent, team), then those with sent
    surveys only, likewise.
    """
    import numpy as np

    timeline = Timeline(periods, tz)
    bounds = np.asarray(timeline.bounds, dtype=np.float64)
    segments = len(bounds) + 1
    a = answers if isinstance(answers, AnswerColumns) else AnswerColumns.of(answers)
    s = sent if isinstance(sent, SentColumns) else SentColumns.of(sent)
    points = settings.points
    index = a.rating - settings.scale_min
    on_scale = (index >= 0) & (index < points)
    if not on_scale.all():
        a = AnswerColumns(
            a.agent[on_scale],
            a.team[on_scale],
            a.when[on_scale],
            a.rating[on_scale],
            a.matched[on_scale],
            a.nps[on_scale],
        )
        index = index[on_scale]
    if not len(a.agent) and not len(s.agent):
        return [PeriodResult(p, blank(settings), {}, {}) for p in periods]

    # (agent, team) pairs that occur, numbered in ascending order; then the occupied
    # (pair, segment) rows, numbered in ascending order (pair-major).
    teams = int(max(a.team.max(initial=0), s.team.max(initial=0))) + 1
    pair_keys = (a.agent * teams + a.team, s.agent * teams + s.team)
    pair_ids, pairs = _dense_ids(pair_keys)
    row_keys = (
        pair_ids[0] * segments + np.searchsorted(bounds, a.when, side="right"),
        pair_ids[1] * segments + np.searchsorted(bounds, s.when, side="right"),
    )
    (answer_rows, sent_rows), occupied = _dense_ids(row_keys)
    rows = len(occupied)

    # Counts per row: the distribution, answered_sent, the three NPS classes, sent, opened.
    width = points + 6
    counts = np.empty((rows, width), dtype=np.int64)
    counts[:, :points] = np.bincount(answer_rows * points + index, minlength=rows * points).reshape(
        rows, points
    )
    counts[:, points] = np.bincount(answer_rows[a.matched], minlength=rows)
    # NPS class 0 detractor, 1 passive, 2 promoter (intervals.nps_class), 3 none.
    klass = np.where(
        a.nps < 0, 3, np.where(a.nps >= PROMOTER, 2, np.where(a.nps <= DETRACTOR, 0, 1))
    )
    counts[:, points + 1 : points + 4] = np.bincount(
        answer_rows * 4 + klass, minlength=rows * 4
    ).reshape(rows, 4)[:, :3]
    counts[:, points + 4] = np.bincount(sent_rows, minlength=rows)
    opened = s.opened if s.opened is not None else np.zeros(len(s.agent), dtype=np.bool_)
    counts[:, points + 5] = np.bincount(sent_rows[opened], minlength=rows)

    # A period covers a run of consecutive segments [first, end): its sums per pair are
    # differences of running sums over the rows (sorted by pair, then segment).
    spans = _segment_spans(timeline.members, len(periods))
    running = np.zeros((rows + 1, width), dtype=np.int64)
    np.cumsum(counts, axis=0, out=running[1:])
    base = np.arange(len(pairs), dtype=np.int64)[:, None] * segments
    starts = np.searchsorted(occupied, base + spans[:, 0], side="left")
    ends = np.searchsorted(occupied, base + spans[:, 1], side="left")
    per_pair = running[ends] - running[starts]  # pairs × periods × width
    return _results(per_pair, pairs // teams, pairs % teams, periods, settings)


def _dense_ids(
    keys: tuple[np.ndarray[Any, np.dtype[np.int64]], ...],
) -> tuple[list[np.ndarray[Any, np.dtype[np.int64]]], np.ndarray[Any, np.dtype[np.int64]]]:
    """Number the distinct values of non-negative ``keys`` (several arrays, one numbering)
    0, 1, … in ascending order: each array's numbers, and the distinct values. A table of
    presence when the values are few enough (no sort), else ``numpy.unique``."""
    import numpy as np

    size = max(int(k.max()) + 1 for k in keys if len(k)) if any(len(k) for k in keys) else 0
    if size <= _DENSE_LIMIT:
        present = np.zeros(size, dtype=np.bool_)
        for k in keys:
            present[k] = True
        distinct = np.flatnonzero(present)
        number = np.cumsum(present, dtype=np.int64) - 1
        return [number[k] for k in keys], distinct
    distinct, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    return list(
        np.split(inverse.astype(np.int64), np.cumsum([len(k) for k in keys])[:-1])
    ), distinct


_DENSE_LIMIT = 1 << 22  # a table of presence up to 4 MB (its running count 32 MB)


def _segment_spans(members: Sequence[tuple[int, ...]], count: int) -> np.ndarray[Any, Any]:
    """``[first, end)`` of the segments each period covers (``[0, 0)`` when none); the
    segments of a period are consecutive (its edges are two of the bounds)."""
    import numpy as np

    covered: list[list[int]] = [[] for _ in range(count)]
    for segment, periods in enumerate(members):
        for p in periods:
            covered[p].append(segment)
    spans = np.zeros((count, 2), dtype=np.int64)
    for p, found in enumerate(covered):
        if found:
            assert found[-1] - found[0] + 1 == len(found), "a period covers a gap"
            spans[p] = found[0], found[-1] + 1
    return spans


def _results(
    per_pair: np.ndarray[Any, np.dtype[np.int64]],
    agents: np.ndarray[Any, np.dtype[np.int64]],
    teams: np.ndarray[Any, np.dtype[np.int64]],
    periods: Sequence[Period],
    settings: Settings,
) -> list[PeriodResult]:
    """Stats per period for the pairs (ascending by agent, then team), their agents and
    teams, and overall, from ``per_pair`` (pairs × periods × counts)."""
    import numpy as np

    points = settings.points
    answered = per_pair[:, :, :points].sum(axis=2) > 0
    active = answered | (per_pair[:, :, points + 4] > 0)
    agent_list, team_list = agents.tolist(), teams.tolist()
    agent_ids, agent_of = np.unique(agents, return_inverse=True)
    team_ids, team_of = np.unique(teams, return_inverse=True)
    by_agent = _sum_groups(per_pair, agent_of, len(agent_ids)).tolist()
    by_team = _sum_groups(per_pair, team_of, len(team_ids)).tolist()
    overall = per_pair.sum(axis=0).tolist()
    agent_slot = dict(zip(agent_ids.tolist(), range(len(agent_ids)), strict=True))
    team_slot = dict(zip(team_ids.tolist(), range(len(team_ids)), strict=True))
    results = []
    for p, period in enumerate(periods):
        order = [*np.flatnonzero(answered[:, p]), *np.flatnonzero(active[:, p] & ~answered[:, p])]
        result = PeriodResult(period, _stats(overall[p], settings), {}, {})
        for pair in order:
            agent, team = agent_list[pair], team_list[pair]
            if agent not in result.agents:
                result.agents[agent] = _stats(by_agent[agent_slot[agent]][p], settings)
            if team not in result.teams:
                result.teams[team] = _stats(by_team[team_slot[team]][p], settings)
        results.append(result)
    return results


def _sum_groups(
    per_pair: np.ndarray[Any, np.dtype[np.int64]],
    group_of: np.ndarray[Any, np.dtype[np.int64]],
    groups: int,
) -> np.ndarray[Any, np.dtype[np.int64]]:
    import numpy as np

    totals = np.zeros((groups, *per_pair.shape[1:]), dtype=np.int64)
    np.add.at(totals, group_of, per_pair)
    return totals


def _stats(counts: list[int], settings: Settings) -> Stats:
    """Stats from one row of counts: the distribution, answered_sent, the three NPS classes,
    sent, opened."""
    points = settings.points
    return Stats(
        counts[:points],
        answered_sent=counts[points],
        sent=counts[points + 4],
        opened=counts[points + 5],
        settings=settings,
        nps_counts=counts[points + 1 : points + 4],
    )
