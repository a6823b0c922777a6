"""What timestamps are written with: day-period markers, month names, zone offsets and
abbreviations in the languages Google writes them in, the patterns of each producer's layout,
which locales write the day first, and the reasons a value is refused."""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta
from datetime import timezone
from datetime import tzinfo
from typing import Literal
from zoneinfo import ZoneInfoNotFoundError

from csat_hook.settings import zone_named

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

MINUTES_PER_HOUR = 60  # minutes
# Abbreviations with one meaning in what Google, ICU (CLDR short names) and tzdata print.
FIXED_ABBREVIATIONS: dict[str, int] = {
    "UTC": 0,
    "GMT": 0,
    "UT": 0,
    "Z": 0,
    "WET": 0,
    "WEST": MINUTES_PER_HOUR,
    "WEZ": 0,
    "WESZ": MINUTES_PER_HOUR,
    "CET": MINUTES_PER_HOUR,
    "CEST": 2 * MINUTES_PER_HOUR,
    "MEZ": MINUTES_PER_HOUR,
    "MESZ": 2 * MINUTES_PER_HOUR,
    "SEČ": MINUTES_PER_HOUR,
    "SELČ": 2 * MINUTES_PER_HOUR,
    "EET": 2 * MINUTES_PER_HOUR,
    "EEST": 3 * MINUTES_PER_HOUR,
    "OEZ": 2 * MINUTES_PER_HOUR,
    "OESZ": 3 * MINUTES_PER_HOUR,
    "MSK": 3 * MINUTES_PER_HOUR,
    "SAST": 2 * MINUTES_PER_HOUR,
    "WAT": MINUTES_PER_HOUR,
    "CAT": 2 * MINUTES_PER_HOUR,
    "EAT": 3 * MINUTES_PER_HOUR,
    "EST": -5 * MINUTES_PER_HOUR,
    "EDT": -4 * MINUTES_PER_HOUR,
    "CDT": -5 * MINUTES_PER_HOUR,
    "MST": -7 * MINUTES_PER_HOUR,
    "MDT": -6 * MINUTES_PER_HOUR,
    "PST": -8 * MINUTES_PER_HOUR,
    "PDT": -7 * MINUTES_PER_HOUR,
    "AKST": -9 * MINUTES_PER_HOUR,
    "AKDT": -8 * MINUTES_PER_HOUR,
    "HST": -10 * MINUTES_PER_HOUR,
    "HDT": -9 * MINUTES_PER_HOUR,
    "ADT": -3 * MINUTES_PER_HOUR,
    "NST": -(3 * MINUTES_PER_HOUR + 30),
    "NDT": -(2 * MINUTES_PER_HOUR + 30),
    "PKT": 5 * MINUTES_PER_HOUR,
    "NPT": 5 * MINUTES_PER_HOUR + 45,
    "WIB": 7 * MINUTES_PER_HOUR,
    "WITA": 8 * MINUTES_PER_HOUR,
    "WIT": 9 * MINUTES_PER_HOUR,
    "HKT": 8 * MINUTES_PER_HOUR,
    "SGT": 8 * MINUTES_PER_HOUR,
    "PHT": 8 * MINUTES_PER_HOUR,
    "PHST": 8 * MINUTES_PER_HOUR,
    "JST": 9 * MINUTES_PER_HOUR,
    "KST": 9 * MINUTES_PER_HOUR,
    "AWST": 8 * MINUTES_PER_HOUR,
    "ACST": 9 * MINUTES_PER_HOUR + 30,
    "ACDT": 10 * MINUTES_PER_HOUR + 30,
    "AEST": 10 * MINUTES_PER_HOUR,
    "AEDT": 11 * MINUTES_PER_HOUR,
    "NZST": 12 * MINUTES_PER_HOUR,
    "NZDT": 13 * MINUTES_PER_HOUR,
}
# Several meanings. When the configured zone does not use the name, the usual meaning in
# Google's English exports is taken with a warning, or (None) the value is refused.
AMBIGUOUS_ABBREVIATIONS: dict[str, int | None] = {
    "AST": -4
    * MINUTES_PER_HOUR,  # Atlantic; CLDR English never prints AST for Arabia (Google: GMT+3)
    "CST": -6
    * MINUTES_PER_HOUR,  # US Central; China/Taiwan (+8) and Cuba come from the configured zone
    "BST": MINUTES_PER_HOUR,  # British Summer Time; Bangladesh (+6) from the configured zone
    "IST": None,  # India +5:30, Ireland +1, Israel +2
    "GST": None,  # Gulf +4, South Georgia −2
    "SST": None,  # Samoa −11, Singapore (old) +8
}

# CLDR abbreviated day periods of the languages Forms and Sheets write (REPORT §1.2), compared
# case-insensitively after normalization (NBSP and U+202F are spaces by then).
AM_MARKERS = ("am", "a.m.", "a. m.", "午前", "上午", "오전", "vorm.", "dop.", "fm", "ap.", "π.μ.")
AM_MORE = ("öö", "дп", "sa", "ص")
PM_MARKERS = ("pm", "p.m.", "p. m.", "午後", "下午", "오후", "nachm.", "odp.", "em", "ip.", "μ.μ.")
PM_MORE = ("ös", "пп", "ch", "م")
MARKERS: dict[str, bool] = {m: False for m in (*AM_MARKERS, *AM_MORE)} | {
    m: True for m in (*PM_MARKERS, *PM_MORE)
}
# A marker is a whole token: not preceded or followed by a letter.
MARKER_RE = re.compile(
    r"(?<![^\W\d_])("
    + "|".join(re.escape(m) for m in sorted(MARKERS, key=len, reverse=True))
    + r")(?![^\W\d_])",
    re.IGNORECASE,
)

TRANSLATE: dict[int, str | None] = dict.fromkeys(
    map(ord, "\u00a0\u202f\u2009\u2007\u2002\u2003\u3000"), " "
)
TRANSLATE |= dict.fromkeys(map(ord, "\u2212\u2012\u2013\ufe63\uff0d"), "-")
TRANSLATE |= dict.fromkeys(map(ord, "\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e"), None)

MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# The common ASCII layouts in one match: Forms' own, Sheets en_US/ru_RU/it_IT, Excel re-saves.
FAST = re.compile(
    r"(\d{1,4})([/.-])(\d{1,2})\2(\d{1,4}),? (\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?"
    r"(?: ?([AaPp])\.? ?[Mm]\.?)?"
    r"(?: (?:(?:GMT|UTC)(?:([+-])(\d{1,2})(?::?(\d{2}))?)?|([A-Z]{2,5})))?"
)
CORE = re.compile(
    r"(\d{1,4}) ?[./-] ?(\d{1,2}) ?[./-] ?(\d{1,4})\.?,? (\d{1,2})[:.](\d{2})"
    r"(?:[:.](\d{2})(?:[.,](\d{1,9}))?)?"
)
JS = re.compile(
    r"[A-Za-z]{3} ([A-Za-z]{3}) (\d{1,2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) "
    r"(?:GMT|UTC)([+-])(\d{2}):?(\d{2})(?: \(.*\))?"
)
RHINO = re.compile(
    r"[A-Za-z]{3} ([A-Za-z]{3}) (\d{1,2}) (\d{2}):(\d{2}):(\d{2}) "
    r"(?:GMT|UTC)([+-])(\d{2}):?(\d{2}) (\d{4})"
)
RFC1123 = re.compile(r"[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} \d{4} \d{2}:\d{2}(?::\d{2})? \S+")
# "t" and "z" as RFC 3339 allows them (its section 5.6), as the Forms API's reader does.
ISO_HEAD = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
ISO_ZONE = re.compile(r" ?(?:[Zz]|UTC|GMT)$")
FRACTION = re.compile(r"(\.\d{6})\d+")
# An ISO offset whose minutes are 60 or more: Python's parser reads "+03:60" as +04:00.
ISO_BAD_OFFSET = re.compile(r"[+-]\d{2}:?[6-9]\d$")
# "GMT+3", "UTC-5", "GMT+5:30", "UTC+5.30" (fi), "GMT -2.30" (sl), "-3 GMT" (pt in some CLDR
# versions), bare "GMT"; optionally in parentheses (eu). zh-CN puts it before the time.
OFFSET = re.compile(
    r"(?:^| )\(?(?:(?:GMT|UTC|UT)(?: ?([+-])(\d{1,2})(?:[:.]?(\d{2}))?)?"
    r"|([+-])(\d{1,2})(?::?(\d{2}))? ?(?:GMT|UTC))\)?(?= |$)"
)
ABBREVIATION = re.compile(r" ([^\W\d_]{2,5})$")
# A UTC offset alone after the time, as ISO writes one but after any date layout
# ("07.12.2026 19:05:12 +03:00", "12/7/2026 7:05 PM -0500": PHP's "P"/"O", strftime's %z).
BARE_OFFSET = re.compile(r" ([+-])(\d{2}):?(\d{2})$")
# A date whose month is a word (a custom Sheets or Excel format saved as CSV: "7 декабря
# 2026 г. 19:05:12", "07 дек. 2026 19:05", "Dec 7, 2026 7:05:12 PM", "7 December 2026 19:05"):
# the word settles day and month, whatever the order. Day first, then month first.
WORDED_DAY_FIRST = re.compile(
    r"(\d{1,2})\.? ([^\W\d_]{3,9})\.?,? (\d{4})(?: ?г\.?| года)?,? (\d{1,2})[:.](\d{2})"
    r"(?:[:.](\d{2}))?"
)
WORDED_MONTH_FIRST = re.compile(
    r"([^\W\d_]{3,9})\.? (\d{1,2}),? (\d{4}),? (\d{1,2})[:.](\d{2})(?:[:.](\d{2}))?"
)
# Month names a date may spell out, English and Russian (genitive, as dates write it, and
# nominative); any of them cut to three letters or more names the month (Dec, дек., сент.).
MONTH_NAMES = (
    ("january", "января", "январь"),
    ("february", "февраля", "февраль"),
    ("march", "марта", "март"),
    ("april", "апреля", "апрель"),
    ("may", "мая", "май"),
    ("june", "июня", "июнь"),
    ("july", "июля", "июль"),
    ("august", "августа", "август"),
    ("september", "сентября", "сентябрь"),
    ("october", "октября", "октябрь"),
    ("november", "ноября", "ноябрь"),
    ("december", "декабря", "декабрь"),
)


def month_named(word: str) -> int | None:
    """The month (1-12) ``word`` names (:data:`MONTH_NAMES`), None when it names none."""
    word = word.casefold()
    if len(word) < 3:
        return None
    for number, names in enumerate(MONTH_NAMES, 1):
        if any(name.startswith(word) for name in names):
            return number
    return None


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
    text = unicodedata.normalize("NFKC", text.translate(TRANSLATE)).translate(TRANSLATE)
    return " ".join(text.split())


def abbreviation_zone(value: str) -> tzinfo:
    """``results.csv.timezone_abbreviations`` values: ``+05:30`` / ``-4`` or an IANA name.

    ValueError (saying what is allowed) otherwise.
    """
    match = re.fullmatch(r"([+-])(\d{1,2})(?::?(\d{2}))?", value.strip())
    if match:
        sign, hours, minutes = match.groups()
        if int(minutes or 0) >= MINUTES_PER_HOUR:
            raise ValueError(f"{value!r}: an offset's minutes must lie within 00-59")
        offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if offset >= timedelta(hours=15):
            raise ValueError(f"{value!r}: an offset must lie within ±14:59")
        return timezone(-offset if sign == "-" else offset)
    try:
        return zone_named(value.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"{value!r} is neither an offset such as +05:30 nor an IANA zone name"
        ) from exc


# Locales whose numeric dates are month-first; every other locale Sheets offers that writes
# day and month before the year is day-first (CLDR short date patterns). Year-first locales
# (ja, zh, ko, hu, lt, sv, en_CA...) never need this. Locales we are unsure of give None.
MONTH_FIRST_LOCALES = frozenset({"en_US", "en", "fil_PH", "fil"})
UNSURE_LOCALES = frozenset({"en_PH", "es_US", "en_PR"})
DAY_FIRST_LANGUAGES = frozenset(
    re.findall(
        r"\w+",
        "ar bg ca cs da de el es et fi fr ga he hi hr id is it ka kk lv mk ms nb nl nn no pl "
        "pt ro ru sk sl sq sr th tr uk ur uz vi cy eu gl be az ky tk bs fa bn ta te ml mr gu "
        "kn pa",
    )
)
DAY_FIRST_ENGLISH = frozenset(
    {"en_GB", "en_AU", "en_IN", "en_IE", "en_NZ", "en_SG", "en_MY", "en_PK", "en_NG", "en_KE"}
)


def locale_date_order(locale: str | None) -> DateOrder | None:
    """The day/month order of numeric dates in a Sheets locale (``en_US`` → MDY, ``ru_RU`` →
    DMY); None when unknown (then the column must settle it, or the configuration)."""
    if not locale:
        return None
    name = locale.replace("-", "_")
    if name in UNSURE_LOCALES:
        return None
    if name in MONTH_FIRST_LOCALES:
        return "MDY"
    if name in DAY_FIRST_ENGLISH or name.split("_")[0] in DAY_FIRST_LANGUAGES:
        return "DMY"
    return None


def fixed(minutes: int, cache: dict[int, timezone] = {}) -> timezone:  # noqa: B006 (memo)
    zone = cache.get(minutes)
    if zone is None:
        zone = cache[minutes] = timezone(timedelta(minutes=minutes))
    return zone


def offset_minutes(sign: str | None, hours: str | None, minutes: str | None) -> int:
    if int(minutes or 0) >= MINUTES_PER_HOUR:
        # "GMT+3:60" was read as UTC+4: no producer writes it, and which offset was meant
        # (a typo of +3:06 or of +3:00?) is unclear.
        raise TimestampError("bad_timestamp", "the UTC offset's minutes are not 00-59")
    total = int(hours or 0) * 60 + int(minutes or 0)
    if total >= 15 * 60:
        raise TimestampError("bad_timestamp", "the UTC offset is out of range")
    return -total if sign == "-" else total
