"""A column of timestamps: its day/month order decided from every value first, then each
value read (see the package docstring)."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from csat_hook.sync.cell_text import strip_format
from csat_hook.sync.timestamps.reader import TimestampReader
from csat_hook.sync.timestamps.words import CORE
from csat_hook.sync.timestamps.words import FAST
from csat_hook.sync.timestamps.words import MARKER_RE
from csat_hook.sync.timestamps.words import DateOrder
from csat_hook.sync.timestamps.words import TimestampError
from csat_hook.sync.timestamps.words import locale_date_order
from csat_hook.sync.timestamps.words import normalize_text


def _date_fields(value: Any) -> tuple[int, int] | None:
    """The first two fields of a date that does not start with the year, else None (also
    for ``.``-separated dates, which are always day-first)."""
    if value is None or isinstance(value, datetime | int | float):
        return None
    text = strip_format(str(value))
    if text[:4].isdigit() or text[:1].isalpha():
        return None  # year first (Forms, ISO, ja/zh/ko) or Apps Script's weekday first
    match = FAST.fullmatch(text)
    if match is not None:
        first, separator, second = match.group(1, 2, 3)
    else:
        text = MARKER_RE.sub("", normalize_text(text)).strip()
        match = CORE.match(text)
        if match is None:
            return None
        first, second = match.group(1, 2)
        separator = text[match.end(1) :].lstrip()[:1]
    if len(first) > 2 or separator == ".":
        return None
    return int(first), int(second)


class TimestampColumn(TimestampReader):
    """A reader for one column: :meth:`scan` the column's values first to settle the
    day/month order; ``configured`` is ``results.csv.date_order`` (None for auto) and
    ``locale`` the spreadsheet's, when known; ``order_fix``: see :class:`TimestampReader`."""

    def __init__(
        self,
        zone: ZoneInfo,
        *,
        configured: DateOrder | None = None,
        locale: str | None = None,
        abbreviations: Mapping[str, tzinfo] | None = None,
        extra_formats: Sequence[str] = (),
        order_fix: str | None = None,
    ) -> None:
        if order_fix is not None:
            self.order_fix = order_fix
        super().__init__(
            zone, date_order=configured, abbreviations=abbreviations, extra_formats=extra_formats
        )
        self.configured = configured
        self.locale_order = locale_date_order(locale)
        # Whether a scanned value had a day and a month whose order the column settles: a
        # column without any reads every value alike, whatever rows are added to it.
        self.dated = False

    def describe(self) -> str:
        """The settings a text timestamp is read with, as text (for a row's raw digest)."""
        problem = self.order_problem.reason if self.order_problem is not None else ""
        abbreviations = sorted((k, repr(v)) for k, v in self.abbreviations.items())
        return (
            f"{self.zone.key} {self.date_order} {problem} {abbreviations!r} {self.extra_formats!r}"
        )

    def warning_count(self) -> int:
        """Warnings given so far (a row whose reading warns is read again next time)."""
        return sum(self.warnings.values())

    def scan(self, values: Iterable[Any]) -> None:
        """Decide the column's day/month order from all its values (once, before parsing)."""
        day_first = month_first = False
        for value in values:
            fields = _date_fields(value)
            if fields is None:
                continue
            self.dated = True
            day_first = day_first or fields[0] > 12
            month_first = month_first or fields[1] > 12
            if day_first and month_first:
                break
        seen: DateOrder | None = "DMY" if day_first else "MDY" if month_first else None
        if self.configured is not None:
            self.date_order = self.configured
            if seen is not None and seen != self.configured:
                self.warnings[
                    f"results.csv.date_order is {self.configured} but the column has "
                    f"{'day' if seen == 'DMY' else 'month'}-first dates"
                ] += 1
        elif day_first and month_first:
            self.order_problem = TimestampError(
                "mixed_date_order",
                f"the column has both day-first and month-first dates: {self.order_fix}",
            )
        else:
            self.date_order = seen or self.locale_order
