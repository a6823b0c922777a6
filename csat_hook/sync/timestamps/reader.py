"""Reading one text timestamp as an instant (see the package docstring for the rules)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import tzinfo
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

from csat_hook.sync.cell_text import strip_format
from csat_hook.sync.timestamps.words import ABBREVIATION
from csat_hook.sync.timestamps.words import AMBIGUOUS_ABBREVIATIONS
from csat_hook.sync.timestamps.words import BARE_OFFSET
from csat_hook.sync.timestamps.words import CORE
from csat_hook.sync.timestamps.words import FAST
from csat_hook.sync.timestamps.words import FIXED_ABBREVIATIONS
from csat_hook.sync.timestamps.words import FRACTION
from csat_hook.sync.timestamps.words import ISO_BAD_OFFSET
from csat_hook.sync.timestamps.words import ISO_HEAD
from csat_hook.sync.timestamps.words import ISO_ZONE
from csat_hook.sync.timestamps.words import JS
from csat_hook.sync.timestamps.words import MARKER_RE
from csat_hook.sync.timestamps.words import MARKERS
from csat_hook.sync.timestamps.words import MONTHS
from csat_hook.sync.timestamps.words import OFFSET
from csat_hook.sync.timestamps.words import RFC1123
from csat_hook.sync.timestamps.words import RHINO
from csat_hook.sync.timestamps.words import WORDED_DAY_FIRST
from csat_hook.sync.timestamps.words import WORDED_MONTH_FIRST
from csat_hook.sync.timestamps.words import DateOrder
from csat_hook.sync.timestamps.words import TimestampError
from csat_hook.sync.timestamps.words import fixed
from csat_hook.sync.timestamps.words import month_named
from csat_hook.sync.timestamps.words import normalize_text
from csat_hook.sync.timestamps.words import offset_minutes

# A spreadsheet's serial date-time as text (days since 1899-12-30, a fraction the time).
_SERIAL = re.compile(r"\d{1,7}(?:[.,]\d+)?", re.ASCII)
# A word that may be the zone name a layout's ``%Z`` stands for (``UTC``, ``MSK``, ``Z``).
_ZONE_WORD = re.compile(r"(?<![^\W\d_])[^\W\d_]{1,5}(?![^\W\d_])")
# What stands for that word while the rest of the text is read by the layout (strptime
# matches a character that is no directive as itself).
_ZONE_MARK = "\x00"
_UTC_NAMES = frozenset({"UTC", "GMT", "UT", "Z"})


class TimestampReader:
    """Reads one timestamp at a time (see the module docstring for the rules).

    ``zone`` is where un-zoned text is wall-clock time (the form's or the sheet's zone);
    ``date_order`` decides ``03/04/2025`` (None: refuse it unless the value itself settles
    it); ``abbreviations`` adds or overrides zone names; ``extra_formats`` are strptime
    layouts tried when no built-in layout matches. ``order_fix`` ends the reason a date whose
    day/month order is not settled is refused: what the operator changes (the CSV source's
    setting by default; a sheet's read says what to change in the sheet).
    """

    order_fix = "set results.csv.date_order to DMY or MDY"
    # The zone text without one is read in, as a reason names it, and what the operator
    # changes when a zone is not settled (a sheet's read says what to change in the sheet:
    # results.csv is never read for it).
    zone_named = "results.csv.timezone"
    zone_fix = "check results.csv.timezone"
    unknown_name_fix = "add it to results.csv.timezone_abbreviations"
    ambiguous_name_fix = (
        "set results.csv.timezone to the form's zone or add {name} to "
        "results.csv.timezone_abbreviations"
    )
    ambiguous_name_warning = "set results.csv.timezone or results.csv.timezone_abbreviations"
    serial_fix = "format the timestamp column as Date time before saving the file as CSV"

    def __init__(
        self,
        zone: ZoneInfo,
        *,
        date_order: DateOrder | None = None,
        abbreviations: Mapping[str, tzinfo] | None = None,
        extra_formats: Sequence[str] = (),
    ) -> None:
        self.zone = zone
        self.date_order: DateOrder | None = date_order
        self.order_problem: TimestampError | None = None  # a mixed column refuses ambiguity
        self.abbreviations = {k.upper(): v for k, v in (abbreviations or {}).items()}
        self.extra_formats = tuple(extra_formats)
        # Configured "UTC": the operator named no zone, so a mismatch says nothing.
        self._zone_is_utc = str(zone) in ("UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Zulu")
        self.warnings: Counter[str] = Counter()
        # Whether a value without a zone was read (in ``zone``): a source whose zone was not
        # configured says so once (csv_export), not per value (a warning per value would make
        # every row read again on every run).
        self.unzoned = False
        self._routes: list[Callable[[str], datetime | None]] = [
            self._fast,
            self._iso,
            self._javascript,
            self._general,
        ]

    # --- one value ---------------------------------------------------------------------------

    def parse(self, value: Any) -> datetime:
        """The instant as aware UTC, or TimestampError. Warnings are counted in ``warnings``.

        Never another exception: a cell is the respondent's or the sheet's, and a run must
        skip it, not fail on it (sync/skips.py).
        """
        try:
            return self._read(value)
        except OverflowError:
            # A wall time near year 1 or 9999 whose UTC instant falls outside datetime's
            # range (``9999-12-31T23:59:59-05:00``; ``0001-01-01 00:00`` in Moscow).
            raise TimestampError(
                "bad_timestamp", "a date-time outside the years 1-9999 once placed in UTC"
            ) from None

    def _read(self, value: Any) -> datetime:
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=self.zone)).astimezone(UTC)
        text = strip_format(str(value)) if value is not None else ""
        if not text:
            raise TimestampError("missing_timestamp", "the timestamp cell is empty")
        if len(text) > 120:
            raise TimestampError("bad_timestamp", "far too long for a date-time")
        routes = self._routes
        for index, route in enumerate(routes):
            instant = route(text)
            if instant is not None:
                if index:  # the layout of this column: try it first next time
                    routes.insert(0, routes.pop(index))
                return instant
        return self._extra(text)

    def _fast(self, text: str) -> datetime | None:
        match = FAST.fullmatch(text)
        if match is None:
            return None
        f1, sep, f2, f3, hh, mi, ss, marker, sign, oh, om, abbreviation = match.groups()
        if (
            abbreviation is not None
            and abbreviation not in FIXED_ABBREVIATIONS
            and abbreviation not in AMBIGUOUS_ABBREVIATIONS
            and abbreviation not in self.abbreviations
        ):
            return None  # a word the general route may know (a marker, a local name)
        pm = None if marker is None else marker in "Pp"
        wall = self._wall(f1, sep, f2, f3, hh, mi, ss, None, pm)
        if oh is not None or (abbreviation is None and text.endswith(("GMT", "UTC"))):
            return wall.replace(tzinfo=fixed(offset_minutes(sign, oh, om))).astimezone(UTC)
        if abbreviation is not None:
            return self._by_abbreviation(wall, abbreviation)
        return self._localize(wall)

    def _iso(self, text: str) -> datetime | None:
        if not ISO_HEAD.match(text):
            return None
        candidate = FRACTION.sub(r"\1", ISO_ZONE.sub("+00:00", text))
        if ISO_BAD_OFFSET.search(candidate):
            raise TimestampError("bad_timestamp", "the UTC offset's minutes are not 00-59")
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return self._localize(parsed)
        return parsed.astimezone(UTC)

    def _javascript(self, text: str) -> datetime | None:
        """Apps Script ``Date.toString()`` (V8 and Rhino) and ``toUTCString()``."""
        if not text[:3].isalpha():
            return None
        text = normalize_text(text)
        match = JS.fullmatch(text)
        if match:
            mon, day, year, hh, mi, ss, sign, oh, om = match.groups()
        else:
            match = RHINO.fullmatch(text)
            if match is None:
                if RFC1123.fullmatch(text):
                    try:
                        parsed = parsedate_to_datetime(text)
                    except (TypeError, ValueError):
                        raise TimestampError("bad_timestamp", "not a valid date") from None
                    if parsed.tzinfo is None:  # "-0000": UTC, origin unknown (RFC 5322)
                        parsed = parsed.replace(tzinfo=UTC)
                    return parsed.astimezone(UTC)
                return None
            mon, day, hh, mi, ss, sign, oh, om, year = match.groups()
        month = MONTHS.get(mon.lower())
        if month is None:
            return None
        try:
            wall = datetime(int(year), month, int(day), int(hh), int(mi), int(ss))
        except ValueError:
            raise TimestampError("bad_timestamp", "not a valid date") from None
        return wall.replace(tzinfo=fixed(offset_minutes(sign, oh, om))).astimezone(UTC)

    def _general(self, raw: str) -> datetime | None:
        """Localized markers on either side, zones anywhere, odd spacing, fractions."""
        text = normalize_text(raw)
        if text != raw:  # NBSP / U+202F inside "p. m.", full-width digits, U+2212...
            instant = self._fast(text)
            if instant is not None:
                return instant
        minutes: int | None = None
        abbreviation: str | None = None
        found = None
        for candidate in OFFSET.finditer(text):  # the last offset-looking token
            found = candidate
        if found is not None and found.start() > 0:
            s1, h1, m1, s2, h2, m2 = found.groups()
            minutes = offset_minutes(s1, h1, m1) if s2 is None else offset_minutes(s2, h2, m2)
            text = " ".join(f"{text[: found.start()]} {text[found.end() :]}".split())
        elif (bare := BARE_OFFSET.search(text)) is not None:
            # A configured layout (its %z) read these before the built-in did: it still does,
            # its day/month order with it (the built-in's may be unsettled: ambiguous_date_order).
            if self.extra_formats and (configured := self._configured(raw)) is not None:
                return configured
            minutes = offset_minutes(*bare.groups())
            text = text[: bare.start()]
        pm: bool | None = None
        marker = MARKER_RE.search(text)
        if marker is not None:
            pm = MARKERS[marker.group(1).casefold()]
            text = " ".join(f"{text[: marker.start()]} {text[marker.end() :]}".split())
        if minutes is None:
            word = ABBREVIATION.search(text)
            if word is not None:
                abbreviation = word.group(1).upper()
                text = text[: word.start()]
        core = CORE.fullmatch(text)
        if core is not None:
            f1, f2, f3, hh, mi, ss, fraction = core.groups()
            head = text[: core.end(3)]
            separator = "." if "." in head and "/" not in head else "/"
            wall = self._wall(f1, separator, f2, f3, hh, mi, ss, fraction, pm)
        else:
            worded = self._worded(text, pm)
            if worded is None:
                return None
            wall = worded
        if minutes is not None:
            return wall.replace(tzinfo=fixed(minutes)).astimezone(UTC)
        if abbreviation is not None:
            return self._by_abbreviation(wall, abbreviation)
        return self._localize(wall)

    def _worded(self, text: str, pm: bool | None) -> datetime | None:
        """The wall-clock time of a date whose month is a word (``7 декабря 2026 г.
        19:05:12``, ``Dec 7, 2026 7:05 PM``), ``text`` without its zone and marker; None when
        it is not one. No day/month order is needed: the word is the month."""
        match = WORDED_DAY_FIRST.fullmatch(text)
        if match is not None:
            day, word, year, hh, mi, ss = match.groups()
        else:
            match = WORDED_MONTH_FIRST.fullmatch(text)
            if match is None:
                return None
            word, day, year, hh, mi, ss = match.groups()
        month = month_named(word)
        if month is None:
            return None
        return self._wall(year, "-", str(month), day, hh, mi, ss, None, pm)

    def _extra(self, text: str) -> datetime:
        """The configured strptime layouts (``results.csv.timestamp_formats``). A layout's
        ``%Z`` is the zone name read as the built-in layouts read one (the configured zone's
        own names, ``results.csv.timezone_abbreviations``, then the table): strptime keeps
        no zone for it (it gives a naive time, and matches only UTC, GMT and the server's
        own names), so ``… 19:05 UTC`` was read as wall-clock time in the configured zone."""
        for layout in self.extra_formats:
            if "%Z" in layout.replace("%%", ""):
                instant = self._extra_named(text, layout)
                if instant is not None:
                    return instant
                continue
            try:
                parsed = datetime.strptime(text, layout)
            except ValueError:
                continue
            if parsed.tzinfo is None:
                return self._localize(parsed)
            return parsed.astimezone(UTC)
        if _SERIAL.fullmatch(text):
            # An .xlsx saved as CSV with the column formatted as a number: no layout reads it.
            raise TimestampError(
                "bad_timestamp",
                f"a number, not a date-time (a spreadsheet's serial date?): {self.serial_fix}",
            )
        raise TimestampError(
            "bad_timestamp",
            "not a date-time layout Forms, Sheets or Apps Script write"
            + (" nor one of results.csv.timestamp_formats" if self.extra_formats else ""),
        )

    def _configured(self, text: str) -> datetime | None:
        """``text`` read by a configured layout (:meth:`_extra`), None when none reads it."""
        try:
            return self._extra(text)
        except TimestampError:
            return None

    def _extra_named(self, text: str, layout: str) -> datetime | None:
        """``text`` read by ``layout``, whose ``%Z`` is a word of ``text``, the last that
        leaves the rest of it matching the layout; None when no word does."""
        marked = layout.replace("%Z", _ZONE_MARK)
        for word in reversed(list(_ZONE_WORD.finditer(text))):
            try:
                parsed = datetime.strptime(
                    f"{text[: word.start()]}{_ZONE_MARK}{text[word.end() :]}", marked
                )
            except ValueError:
                continue
            if parsed.tzinfo is not None:  # a %z beside it: the offset is the offset
                return parsed.astimezone(UTC)
            if word.group().upper() in _UTC_NAMES:  # no zone's local name: nothing to warn
                return parsed.replace(tzinfo=UTC)
            return self._by_abbreviation(parsed, word.group())
        return None

    # --- pieces ------------------------------------------------------------------------------

    def _wall(
        self,
        f1: str,
        separator: str,
        f2: str,
        f3: str,
        hh: str,
        mi: str,
        ss: str | None,
        fraction: str | None,
        pm: bool | None,
    ) -> datetime:
        if len(f1) == 4:
            if len(f3) > 2:
                raise TimestampError("bad_timestamp", "not a date layout")
            year, month, day = int(f1), int(f2), int(f3)
        else:
            if len(f1) > 2 or len(f3) not in (2, 4):
                raise TimestampError("bad_timestamp", "not a date layout")
            first, second = int(f1), int(f2)
            order = self._order(first, second, separator)
            day, month = (first, second) if order == "DMY" else (second, first)
            year = int(f3) + (2000 if len(f3) == 2 else 0)
        hour = int(hh)
        if pm is not None:
            # 0-11 as well as 1-12: Japanese writes the hour after midnight and after noon as
            # 0 (CLDR ja "aK:mm:ss": 午前0:05, 午後0:30), and 0 and 12 mean the same with a
            # marker; an hour refused, every answer of those two hours was bad_timestamp.
            if not 0 <= hour <= 12:
                raise TimestampError("bad_timestamp", "an hour outside 0-12 with AM/PM")
            hour = hour % 12 + (12 if pm else 0)
        micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
        try:
            return datetime(year, month, day, hour, int(mi), int(ss or 0), micro)
        except ValueError:
            raise TimestampError("bad_timestamp", "not a valid date or time of day") from None

    def _order(self, first: int, second: int, separator: str) -> DateOrder:
        if separator == ".":
            return "DMY"  # no locale writes month.day.year
        if self.order_problem is not None:
            raise self.order_problem
        if self.date_order is not None:
            return self.date_order
        if first > 12:
            return "DMY"
        if second > 12:
            return "MDY"
        raise TimestampError(
            "ambiguous_date_order",
            f"day and month are both 12 or less and nothing tells their order: {self.order_fix}",
        )

    def _localize(self, wall: datetime) -> datetime:
        """Wall-clock time in the configured zone: gaps refused, overlaps read as the first."""
        self.unzoned = True
        zone = self.zone
        offset = zone.utcoffset(wall)
        if offset is not None and offset == zone.utcoffset(wall.replace(fold=1)):  # usual case
            return (wall - offset).replace(tzinfo=UTC)
        instant = wall.replace(tzinfo=zone).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) != wall:
            raise TimestampError(
                "nonexistent_local_time",
                f"that wall-clock time does not exist in {zone} (the clocks went "
                f"forward): {self.zone_fix}",
            )
        self.warnings[
            f"a wall-clock time repeated when the clocks went back in {zone}: "
            "read as the first occurrence"
        ] += 1
        return instant

    def _by_abbreviation(self, wall: datetime, abbreviation: str) -> datetime:
        name = abbreviation.upper()
        zone = self.zone
        for fold in (0, 1):  # the configured zone's own name settles ambiguity and overlaps
            local = wall.replace(tzinfo=zone, fold=fold)
            if (local.tzname() or "").upper() == name:
                return local.astimezone(UTC)
        configured = self.abbreviations.get(name)
        if configured is not None:
            if isinstance(configured, ZoneInfo):
                return self._localize_in(wall, configured, name)
            return wall.replace(tzinfo=configured).astimezone(UTC)
        minutes = FIXED_ABBREVIATIONS.get(name)
        if minutes is None:
            if name not in AMBIGUOUS_ABBREVIATIONS:
                raise TimestampError(
                    "unknown_tz_abbreviation",
                    f"unknown time zone abbreviation {name}: {self.unknown_name_fix}",
                )
            minutes = AMBIGUOUS_ABBREVIATIONS[name]
            if minutes is None:
                raise TimestampError(
                    "ambiguous_tz_abbreviation",
                    f"{name} names several time zones and {self.zone_named} does not use "
                    f"it: {self.ambiguous_name_fix.format(name=name)}",
                )
            self.warnings[
                f"{name} has several meanings; read as UTC{minutes / 60:+g} "
                f"({self.ambiguous_name_warning} if wrong)"
            ] += 1
        instant = wall.replace(tzinfo=fixed(minutes)).astimezone(UTC)
        if not self._zone_is_utc:
            own = instant.astimezone(zone).tzname() or ""
            if own.upper() != name and not own.startswith(("+", "-")):
                self.warnings[
                    f"{name} is not what {zone} is called on those dates ({own}); read as "
                    f"UTC{minutes / 60:+g}"
                ] += 1
        return instant

    def _localize_in(self, wall: datetime, zone: ZoneInfo, name: str) -> datetime:
        for fold in (0, 1):
            local = wall.replace(tzinfo=zone, fold=fold)
            if (local.tzname() or "").upper() == name:
                return local.astimezone(UTC)
        return wall.replace(tzinfo=zone).astimezone(UTC)
