"""The report's periods: ranges of whole local days, and which of them cover an instant.

* The listed periods (``metrics.periods``): "last N days" (today and the N−1 days before it),
  calendar months (the current one to date), all time.
* The headline period of the leaderboard (the last ``metrics.headline_days`` days) and the
  previous period of the same length, just before it.
* The Trends tab's weeks (Monday to Sunday) and calendar months, the current ones to date.

Day edges are local midnights in ``metrics.timezone``. A period's name is the report's
business (:mod:`csat_hook.sync.texts`, in its language): a period carries what the name is
made of (``kind``, ``days``, ``to_date``, its dates).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

from csat_hook.sync.config import PeriodsConfig

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
LAST_DAYS = "last_days"
PREVIOUS_DAYS = "previous_days"
MONTH = "month"
WEEK = "week"
ALL_TIME = "all_time"


@dataclass(frozen=True)
class Period:
    """Whole local days ``[first_day, end_day)`` (days since 1970-01-01); None = unbounded.

    ``key`` is unique per range and kind (periods listed twice are computed once); ``days``
    is the length of a rolling period; ``to_date`` marks a week or month still going on
    (it ends today).
    """

    key: str
    kind: str
    first_day: int | None
    end_day: int | None
    days: int = 0
    to_date: bool = False

    def contains(self, day: int) -> bool:
        return (self.first_day is None or day >= self.first_day) and (
            self.end_day is None or day < self.end_day
        )

    def first_date(self) -> date | None:
        return None if self.first_day is None else _date(self.first_day)

    def last_date(self) -> date | None:
        return None if self.end_day is None else _date(self.end_day - 1)


def _date(day: int) -> date:
    return date.fromordinal(day + EPOCH_ORDINAL)


def _day(when: date) -> int:
    return when.toordinal() - EPOCH_ORDINAL


def local_day(moment: datetime, tz: ZoneInfo) -> int:
    """The local date of ``moment`` in ``tz`` as days since 1970-01-01."""
    return _day(moment.astimezone(tz).date())


def rolling(today: int, days: int) -> Period:
    """The last ``days`` days, today included."""
    return Period(f"last_{days}_days", LAST_DAYS, today - days + 1, today + 1, days)


def previous(today: int, days: int) -> Period:
    """The ``days`` days just before :func:`rolling` ones."""
    return Period(
        f"previous_{days}_days", PREVIOUS_DAYS, today - 2 * days + 1, today - days + 1, days
    )


def months(today: int, count: int) -> list[Period]:
    """The current calendar month (to date: it ends today) and the ``count − 1`` before it,
    newest first."""
    current = _date(today)
    year, month = current.year, current.month
    found = []
    for i in range(count):
        start = date(year, month, 1)
        end = date(year + month // 12, month % 12 + 1, 1)
        key = f"month_{year:04d}_{month:02d}"
        end_day = today + 1 if i == 0 else _day(end)
        found.append(Period(key, MONTH, _day(start), end_day, to_date=i == 0))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return found


def weeks(today: int, count: int) -> list[Period]:
    """The current week (Monday to Sunday; to date: it ends today) and the ``count − 1``
    before it, newest first."""
    monday = _day(_date(today) - timedelta(days=_date(today).weekday()))
    return [
        Period(
            f"week_{_date(start).isoformat()}",
            WEEK,
            start,
            today + 1 if k == 0 else start + 7,
            to_date=k == 0,
        )
        for k, start in enumerate(monday - 7 * k for k in range(count))
    ]


def build_periods(now: datetime, tz: ZoneInfo, config: PeriodsConfig) -> list[Period]:
    """The listed periods (``metrics.periods``), ending today in ``tz``."""
    today = local_day(now, tz)
    periods = [rolling(today, n) for n in config.rolling_days]
    periods.extend(months(today, config.calendar_months))
    if config.all_time:
        periods.append(Period("all_time", ALL_TIME, None, None))
    return periods


class Timeline:
    """Period edges as UTC instants, and which periods cover each segment between them.

    Every period edge is a local midnight, so membership is the same everywhere inside a
    segment; finding an instant's segment is one ``bisect``.
    """

    def __init__(self, periods: Sequence[Period], tz: ZoneInfo) -> None:
        def midnight(day: int) -> float:
            return datetime.combine(_date(day), time(0), tzinfo=tz).timestamp()

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
