"""Text timestamps as Google Forms, Google Sheets and Apps Script write them. Pure functions.

Three producers, each with its own habits (research notes: docs/sync.md "Timestamps"):

* **Forms "Download responses (.csv)"**: ``2025/09/08 3:47:14 AM EST``: year first, 12-hour
  clock, and the day-period marker and the zone in the *downloading user's* language:
  ``p.m.``, ``a. m.`` (with U+202F), ``午後``, ``오전`` (before or after the time);
  ``GMT+3``, ``GMT+5:30``, ``UTC−5`` (U+2212), ``-3 GMT``, or an abbreviation (``EST``,
  ``OEZ``, ``CEST``, ``IST``).
* **A responses sheet saved as CSV**: the cell's display text in the *spreadsheet's* locale,
  wall-clock time in its zone, no offset: ``9/8/2025 13:58:23`` (en_US),
  ``08.09.2025 21:58:23`` (ru_RU), ``12/02/2026 19.07.17`` (it_IT); Excel re-saves drop the
  seconds and shorten the year (``3/18/20 18:42``).
* **Apps Script**: ``Mon Sep 08 2025 13:58:23 GMT-0500 (Central Daylight Time)`` (V8; the
  name in parentheses is decoration and may be localized), ``Thu Dec 15 16:45:14 GMT+01:00
  2016`` (the old Rhino runtime), ISO 8601 (``toISOString``, the Forms API's ``createTime``
  with up to nine fraction digits), RFC 1123 (``toUTCString``).

How a value becomes an instant, in order:

1. An explicit offset (``GMT+3``, ``-05:00``, ``Z``) is the offset. ``GMT+3`` means UTC+3 as
   Google, ICU and JavaScript write it (not the POSIX reading, which python-dateutil uses).
2. An abbreviation: the configured zone's own name for that wall time first (zoneinfo:
   ``IST`` is +5:30 for Asia/Kolkata, +1 for Europe/Dublin; ``CDT``/``CST`` also settle a DST
   overlap), then ``abbreviations`` from the configuration, then a table of names with one
   meaning (``EST`` is always −5). ``AST``, ``CST`` and ``BST`` have a usual meaning in
   Google's English output (−4, −6, +1), used with a warning; ``IST``, ``GST`` and ``SST`` are
   refused (``ambiguous_tz_abbreviation``) unless the configured zone uses them.
3. No zone at all: wall-clock time in the configured zone. A time in the spring-forward gap
   does not exist and is refused (``nonexistent_local_time``); a time in the repeated hour is
   read as its *first* occurrence (``fold=0``, as Sheets serials are) and counted in a
   warning.

Day/month order of ``03/04/2025``-style dates is a property of the column, never guessed per
value: :meth:`TimestampColumn.scan` looks at every value first; a first field above 12
anywhere makes the column day-first, a second field above 12 month-first, both is refused
(``mixed_date_order``); otherwise the configured order, else the spreadsheet's locale, else
the value is refused (``ambiguous_date_order``). ``.``-separated dates are always day-first.

Reason codes (for skipped rows): ``missing_timestamp``, ``bad_timestamp``,
``ambiguous_date_order``, ``mixed_date_order``, ``unknown_tz_abbreviation``,
``ambiguous_tz_abbreviation``, ``nonexistent_local_time``.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from datetime import tzinfo
from email.utils import parsedate_to_datetime
from typing import Any
from typing import Literal
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

DateOrder = Literal["DMY", "MDY"]

TIMESTAMP_REASONS = (
    "missing_timestamp",
    "bad_timestamp",
    "ambiguous_date_order",
    "mixed_date_order",
    "unknown_tz_abbreviation",
    "ambiguous_tz_abbreviation",
    "nonexistent_local_time",
)

_H = 60  # minutes
# Abbreviations with one meaning in what Google, ICU (CLDR short names) and tzdata print.
FIXED_ABBREVIATIONS: dict[str, int] = {
    "UTC": 0,
    "GMT": 0,
    "UT": 0,
    "Z": 0,
    "WET": 0,
    "WEST": _H,
    "WEZ": 0,
    "WESZ": _H,
    "CET": _H,
    "CEST": 2 * _H,
    "MEZ": _H,
    "MESZ": 2 * _H,
    "SEČ": _H,
    "SELČ": 2 * _H,
    "EET": 2 * _H,
    "EEST": 3 * _H,
    "OEZ": 2 * _H,
    "OESZ": 3 * _H,
    "MSK": 3 * _H,
    "SAST": 2 * _H,
    "WAT": _H,
    "CAT": 2 * _H,
    "EAT": 3 * _H,
    "EST": -5 * _H,
    "EDT": -4 * _H,
    "CDT": -5 * _H,
    "MST": -7 * _H,
    "MDT": -6 * _H,
    "PST": -8 * _H,
    "PDT": -7 * _H,
    "AKST": -9 * _H,
    "AKDT": -8 * _H,
    "HST": -10 * _H,
    "HDT": -9 * _H,
    "ADT": -3 * _H,
    "NST": -(3 * _H + 30),
    "NDT": -(2 * _H + 30),
    "PKT": 5 * _H,
    "NPT": 5 * _H + 45,
    "WIB": 7 * _H,
    "WITA": 8 * _H,
    "WIT": 9 * _H,
    "HKT": 8 * _H,
    "SGT": 8 * _H,
    "PHT": 8 * _H,
    "PHST": 8 * _H,
    "JST": 9 * _H,
    "KST": 9 * _H,
    "AWST": 8 * _H,
    "ACST": 9 * _H + 30,
    "ACDT": 10 * _H + 30,
    "AEST": 10 * _H,
    "AEDT": 11 * _H,
    "NZST": 12 * _H,
    "NZDT": 13 * _H,
}
# Several meanings. When the configured zone does not use the name, the usual meaning in
# Google's English exports is taken with a warning, or (None) the value is refused.
AMBIGUOUS_ABBREVIATIONS: dict[str, int | None] = {
    "AST": -4 * _H,  # Atlantic; CLDR English never prints AST for Arabia (Google: GMT+3)
    "CST": -6 * _H,  # US Central; China/Taiwan (+8) and Cuba come from the configured zone
    "BST": _H,  # British Summer Time; Bangladesh (+6) from the configured zone
    "IST": None,  # India +5:30, Ireland +1, Israel +2
    "GST": None,  # Gulf +4, South Georgia −2
    "SST": None,  # Samoa −11, Singapore (old) +8
}

# CLDR abbreviated day periods of the languages Forms and Sheets write (REPORT §1.2), compared
# case-insensitively after normalization (NBSP and U+202F are spaces by then).
_AM = ("am", "a.m.", "a. m.", "午前", "上午", "오전", "vorm.", "dop.", "fm", "ap.", "π.μ.")
_AM_MORE = ("öö", "дп", "sa", "ص")
_PM = ("pm", "p.m.", "p. m.", "午後", "下午", "오후", "nachm.", "odp.", "em", "ip.", "μ.μ.")
_PM_MORE = ("ös", "пп", "ch", "م")
_MARKERS: dict[str, bool] = {m: False for m in (*_AM, *_AM_MORE)} | {
    m: True for m in (*_PM, *_PM_MORE)
}
# A marker is a whole token: not preceded or followed by a letter.
_MARKER_RE = re.compile(
    r"(?<![^\W\d_])("
    + "|".join(re.escape(m) for m in sorted(_MARKERS, key=len, reverse=True))
    + r")(?![^\W\d_])",
    re.IGNORECASE,
)

_TRANSLATE: dict[int, str | None] = dict.fromkeys(
    map(ord, "\u00a0\u202f\u2009\u2007\u2002\u2003\u3000"), " "
)
_TRANSLATE |= dict.fromkeys(map(ord, "\u2212\u2012\u2013\ufe63\uff0d"), "-")
_TRANSLATE |= dict.fromkeys(map(ord, "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e"), None)

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# The common ASCII layouts in one match: Forms' own, Sheets en_US/ru_RU/it_IT, Excel re-saves.
_FAST = re.compile(
    r"(\d{1,4})([/.-])(\d{1,2})\2(\d{1,4}),? (\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?"
    r"(?: ?([AaPp])\.? ?[Mm]\.?)?"
    r"(?: (?:(?:GMT|UTC)(?:([+-])(\d{1,2})(?::?(\d{2}))?)?|([A-Z]{2,5})))?"
)
_CORE = re.compile(
    r"(\d{1,4}) ?[./-] ?(\d{1,2}) ?[./-] ?(\d{1,4})\.?,? (\d{1,2})[:.](\d{2})"
    r"(?:[:.](\d{2})(?:[.,](\d{1,9}))?)?"
)
_JS = re.compile(
    r"[A-Za-z]{3} ([A-Za-z]{3}) (\d{1,2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) "
    r"(?:GMT|UTC)([+-])(\d{2}):?(\d{2})(?: \(.*\))?"
)
_RHINO = re.compile(
    r"[A-Za-z]{3} ([A-Za-z]{3}) (\d{1,2}) (\d{2}):(\d{2}):(\d{2}) "
    r"(?:GMT|UTC)([+-])(\d{2}):?(\d{2}) (\d{4})"
)
_RFC1123 = re.compile(r"[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}(?::\d{2})? \S+")
_ISO_HEAD = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_ISO_ZONE = re.compile(r" ?(?:Z|UTC|GMT)$")
_FRACTION = re.compile(r"(\.\d{6})\d+")
# "GMT+3", "UTC-5", "GMT+5:30", "UTC+5.30" (fi), "GMT -2.30" (sl), "-3 GMT" (pt in some CLDR
# versions), bare "GMT"; optionally in parentheses (eu). zh-CN puts it before the time.
_OFFSET = re.compile(
    r"(?:^| )\(?(?:(?:GMT|UTC|UT)(?: ?([+-])(\d{1,2})(?:[:.]?(\d{2}))?)?"
    r"|([+-])(\d{1,2})(?::?(\d{2}))? ?(?:GMT|UTC))\)?(?= |$)"
)
_ABBREVIATION = re.compile(r" ([^\W\d_]{2,5})$")


class TimestampError(ValueError):
    """Not a usable timestamp. ``reason`` is one of :data:`TIMESTAMP_REASONS`; ``detail``
    explains in words and names the setting that can fix it."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def normalize_text(text: str) -> str:
    """NFKC (full-width digits), every space kind as one space, minus signs as ``-``, no
    bidi marks."""
    if text.isascii():
        return " ".join(text.split())
    text = unicodedata.normalize("NFKC", text.translate(_TRANSLATE)).translate(_TRANSLATE)
    return " ".join(text.split())


def abbreviation_zone(value: str) -> tzinfo:
    """``results.csv.timezone_abbreviations`` values: ``+05:30`` / ``-4`` or an IANA name.

    ValueError (saying what is allowed) otherwise.
    """
    match = re.fullmatch(r"([+-])(\d{1,2})(?::?(\d{2}))?", value.strip())
    if match:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if offset >= timedelta(hours=15):
            raise ValueError(f"{value!r}: an offset must lie within ±14:59")
        return timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"{value!r} is neither an offset such as +05:30 nor an IANA zone name"
        ) from exc


# Locales whose numeric dates are month-first; every other locale Sheets offers that writes
# day and month before the year is day-first (CLDR short date patterns). Year-first locales
# (ja, zh, ko, hu, lt, sv, en_CA...) never need this. Locales we are unsure of give None.
_MONTH_FIRST_LOCALES = frozenset({"en_US", "en", "fil_PH", "fil"})
_UNSURE_LOCALES = frozenset({"en_PH", "es_US", "en_PR"})
_DAY_FIRST_LANGUAGES = frozenset(
    re.findall(
        r"\w+",
        "ar bg ca cs da de el es et fi fr ga he hi hr id is it ka kk lv mk ms nb nl nn no pl "
        "pt ro ru sk sl sq sr th tr uk ur uz vi cy eu gl be az ky tk bs fa bn ta te ml mr gu "
        "kn pa",
    )
)
_DAY_FIRST_ENGLISH = frozenset(
    {"en_GB", "en_AU", "en_IN", "en_IE", "en_NZ", "en_SG", "en_MY", "en_PK", "en_NG", "en_KE"}
)


def locale_date_order(locale: str | None) -> DateOrder | None:
    """The day/month order of numeric dates in a Sheets locale (``en_US`` → MDY, ``ru_RU`` →
    DMY); None when unknown (then the column must settle it, or the configuration)."""
    if not locale:
        return None
    name = locale.replace("-", "_")
    if name in _UNSURE_LOCALES:
        return None
    if name in _MONTH_FIRST_LOCALES:
        return "MDY"
    if name in _DAY_FIRST_ENGLISH or name.split("_")[0] in _DAY_FIRST_LANGUAGES:
        return "DMY"
    return None


def _fixed(minutes: int, cache: dict[int, timezone] = {}) -> timezone:  # noqa: B006 (memo)
    zone = cache.get(minutes)
    if zone is None:
        zone = cache[minutes] = timezone(timedelta(minutes=minutes))
    return zone


def _offset_minutes(sign: str | None, hours: str | None, minutes: str | None) -> int:
    total = int(hours or 0) * 60 + int(minutes or 0)
    if total >= 15 * 60:
        raise TimestampError("bad_timestamp", "the UTC offset is out of range")
    return -total if sign == "-" else total


class TimestampReader:
    """Reads one timestamp at a time (see the module docstring for the rules).

    ``zone`` is where un-zoned text is wall-clock time (the form's or the sheet's zone);
    ``date_order`` decides ``03/04/2025`` (None: refuse it unless the value itself settles
    it); ``abbreviations`` adds or overrides zone names; ``extra_formats`` are strptime
    layouts tried when no built-in layout matches.
    """

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
        self._routes: list[Callable[[str], datetime | None]] = [
            self._fast,
            self._iso,
            self._javascript,
            self._general,
        ]

    # --- one value ---------------------------------------------------------------------------

    def parse(self, value: Any) -> datetime:
        """The instant as aware UTC, or TimestampError. Warnings are counted in ``warnings``."""
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=self.zone)).astimezone(UTC)
        text = str(value).strip() if value is not None else ""
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
        match = _FAST.fullmatch(text)
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
            return wall.replace(tzinfo=_fixed(_offset_minutes(sign, oh, om))).astimezone(UTC)
        if abbreviation is not None:
            return self._by_abbreviation(wall, abbreviation)
        return self._localize(wall)

    def _iso(self, text: str) -> datetime | None:
        if not _ISO_HEAD.match(text):
            return None
        candidate = _FRACTION.sub(r"\1", _ISO_ZONE.sub("+00:00", text))
        if candidate.endswith("z"):
            return None
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
        match = _JS.fullmatch(text)
        if match:
            mon, day, year, hh, mi, ss, sign, oh, om = match.groups()
        else:
            match = _RHINO.fullmatch(text)
            if match is None:
                if _RFC1123.fullmatch(text):
                    try:
                        parsed = parsedate_to_datetime(text)
                    except (TypeError, ValueError):
                        raise TimestampError("bad_timestamp", "not a valid date") from None
                    if parsed.tzinfo is None:  # "-0000": UTC, origin unknown (RFC 5322)
                        parsed = parsed.replace(tzinfo=UTC)
                    return parsed.astimezone(UTC)
                return None
            mon, day, hh, mi, ss, sign, oh, om, year = match.groups()
        month = _MONTHS.get(mon.lower())
        if month is None:
            return None
        try:
            wall = datetime(int(year), month, int(day), int(hh), int(mi), int(ss))
        except ValueError:
            raise TimestampError("bad_timestamp", "not a valid date") from None
        return wall.replace(tzinfo=_fixed(_offset_minutes(sign, oh, om))).astimezone(UTC)

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
        for candidate in _OFFSET.finditer(text):  # the last offset-looking token
            found = candidate
        if found is not None and found.start() > 0:
            s1, h1, m1, s2, h2, m2 = found.groups()
            minutes = _offset_minutes(s1, h1, m1) if s2 is None else _offset_minutes(s2, h2, m2)
            text = " ".join(f"{text[: found.start()]} {text[found.end() :]}".split())
        pm: bool | None = None
        marker = _MARKER_RE.search(text)
        if marker is not None:
            pm = _MARKERS[marker.group(1).casefold()]
            text = " ".join(f"{text[: marker.start()]} {text[marker.end() :]}".split())
        if minutes is None:
            word = _ABBREVIATION.search(text)
            if word is not None:
                abbreviation = word.group(1).upper()
                text = text[: word.start()]
        core = _CORE.fullmatch(text)
        if core is None:
            return None
        f1, f2, f3, hh, mi, ss, fraction = core.groups()
        separator = "." if "." in text[: core.end(3)] and "/" not in text[: core.end(3)] else "/"
        wall = self._wall(f1, separator, f2, f3, hh, mi, ss, fraction, pm)
        if minutes is not None:
            return wall.replace(tzinfo=_fixed(minutes)).astimezone(UTC)
        if abbreviation is not None:
            return self._by_abbreviation(wall, abbreviation)
        return self._localize(wall)

    def _extra(self, text: str) -> datetime:
        """The configured strptime layouts (``results.csv.timestamp_formats``)."""
        for layout in self.extra_formats:
            try:
                parsed = datetime.strptime(text, layout)
            except ValueError:
                continue
            if parsed.tzinfo is None:
                return self._localize(parsed)
            return parsed.astimezone(UTC)
        raise TimestampError(
            "bad_timestamp",
            "not a date-time layout Forms, Sheets or Apps Script write"
            + (" nor one of results.csv.timestamp_formats" if self.extra_formats else ""),
        )

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
            if not 1 <= hour <= 12:
                raise TimestampError("bad_timestamp", "an hour outside 1-12 with AM/PM")
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
            "day and month are both 12 or less and nothing tells their order: set "
            "results.csv.date_order to DMY or MDY",
        )

    def _localize(self, wall: datetime) -> datetime:
        """Wall-clock time in the configured zone: gaps refused, overlaps read as the first."""
        zone = self.zone
        offset = zone.utcoffset(wall)
        if offset is not None and offset == zone.utcoffset(wall.replace(fold=1)):  # usual case
            return (wall - offset).replace(tzinfo=UTC)
        instant = wall.replace(tzinfo=zone).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) != wall:
            raise TimestampError(
                "nonexistent_local_time",
                f"that wall-clock time does not exist in {zone} (the clocks went "
                "forward): check results.csv.timezone",
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
                    f"unknown time zone abbreviation {name}: add it to "
                    "results.csv.timezone_abbreviations",
                )
            minutes = AMBIGUOUS_ABBREVIATIONS[name]
            if minutes is None:
                raise TimestampError(
                    "ambiguous_tz_abbreviation",
                    f"{name} names several time zones and results.csv.timezone does not use "
                    "it: set results.csv.timezone to the form's zone or add "
                    f"{name} to results.csv.timezone_abbreviations",
                )
            self.warnings[
                f"{name} has several meanings; read as UTC{minutes / 60:+g} (set "
                "results.csv.timezone or results.csv.timezone_abbreviations if wrong)"
            ] += 1
        instant = wall.replace(tzinfo=_fixed(minutes)).astimezone(UTC)
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


def _date_fields(value: Any) -> tuple[int, int] | None:
    """The first two fields of a date that does not start with the year, else None (also
    for ``.``-separated dates, which are always day-first)."""
    if value is None or isinstance(value, datetime | int | float):
        return None
    text = str(value).strip()
    if text[:4].isdigit() or text[:1].isalpha():
        return None  # year first (Forms, ISO, ja/zh/ko) or Apps Script's weekday first
    match = _FAST.fullmatch(text)
    if match is not None:
        first, separator, second = match.group(1, 2, 3)
    else:
        text = _MARKER_RE.sub("", normalize_text(text)).strip()
        match = _CORE.match(text)
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
    ``locale`` the spreadsheet's, when known."""

    def __init__(
        self,
        zone: ZoneInfo,
        *,
        configured: DateOrder | None = None,
        locale: str | None = None,
        abbreviations: Mapping[str, tzinfo] | None = None,
        extra_formats: Sequence[str] = (),
    ) -> None:
        super().__init__(
            zone, date_order=configured, abbreviations=abbreviations, extra_formats=extra_formats
        )
        self.configured = configured
        self.locale_order = locale_date_order(locale)

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
                "the column has both day-first and month-first dates: set "
                "results.csv.date_order to DMY or MDY",
            )
        else:
            self.date_order = seen or self.locale_order
