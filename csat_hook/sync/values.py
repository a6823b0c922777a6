"""Reading cell values: header titles, ratings, serial date-times. Pure functions.

Text timestamps are read by :mod:`csat_hook.sync.timestamps`.

Why this is not ``get_all_records()``: gspread's numericise turns "1,5" into 15 and rejects
duplicate headers; form sheets have both.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from csat_hook.sync.cell_text import strip_format
from csat_hook.sync.config import NPS_MAX
from csat_hook.sync.config import NPS_MIN
from csat_hook.sync.config import MetricsConfig
from csat_hook.sync.config import ResultsConfig
from csat_hook.sync.config import comparable_text
from csat_hook.sync.timestamps import TimestampError
from csat_hook.sync.timestamps.words import MONTHS

# The version of how the code reads cells into answers (this module, sync/timestamps, the
# row parser of sync/sources/base.py). Bump it whenever a change to the code reads some cell
# differently. Stored rows are recognised by their cells and the reading settings
# (sources/table.py ``raw_key``), never read again while those are the same: without a bump an
# answer stored under the old reading stays as read until its cells change. After a bump the
# first sync reads every row of a sheet or CSV export once more: an answer read differently
# is credited as an edit in place (the old one to answer_history), one read the same way
# stores nothing new; a row now refused is reported as skipped, and its stored answer stays
# credited (the sync never deletes an answer, as for a row edited into something unreadable).
# The Forms API source parses every response it lists, but after a first read lists only those
# since its watermark: its last full read is remembered with the version it was made under
# (sync/store.py ``full_read_key``), so the first sync after a bump lists every response once.
# 1: digests before reading versions. 2: a score out of another number than the scale's top
# ("3 of 10", "3 sur 10") and a chain of fractions ("5/5/5", a date) refused, no longer read
# as a score; a fraction Excel saved as a date ("5-Jan" for "1/5") read as that fraction.
# 3: a cell naming two scores ("4/5 - 5/5", "5 - 3", "5 (3)") or a fraction with a further
# "/" ("4/5/") refused, no longer read by its first; a label after a fraction or a number
# separated by a comma or semicolon ("5/5, great") read; star strings ("★★★★☆", "⭐⭐⭐⭐")
# read as their filled stars. 4: two scores joined by a word or a sign, a choice or a range
# ("4 or 5", "4 или 5", "4 to 5", "4 and 5", "4 & 5", "4/5 or 5") refused, no longer read by
# the first. 5: a second score in words, as a sign or a decimal part, after a joiner or right
# after the first score's separators ("4 or five", "four or 5", "4 или пять", "4 and a half",
# "4 ½", "4 .5", "4 - five") refused, no longer read by the first; the score restated in
# words ("5 - Five stars") read; a score out of a number in words read as one out of digits
# ("4 out of ten" refused, "4 of five of five" too), and a fraction with the fraction,
# division or full-width slash ("4⁄5" read, "4 ⁄ 10" refused). 6: invisible format characters
# (Unicode category Cf: a zero-width space, joiner, word joiner, byte order mark, bidi mark)
# around a rating, an NPS answer, a reference or a ticket read as surrounding spaces are
# ("4\u200b" was refused as bad_rating); one within still is ("4\u200b5" is no 45). A time
# before 2000 or more than a day after the read's (a serial of 0, 9999-12-31), credited
# before, is a skipped row, implausible_timestamp (sources/base.py EARLIEST_SUBMISSION).
# 7: the same format characters around a text timestamp read as surrounding spaces (a time
# ending in a zero-width space was bad_timestamp); one within still is (sync/cell_text.py).
# 8: a NUL in a reference is malformed (read as U+FFFD); it was dropped, so a reference
# edited by one was credited as the one it was edited from.
# 9: a label that names another top than the scale's ("4 stars out of 10", "4 (out of 10)",
# "4 балла из 10", "3 stars / 10" on a 1-5 scale) refused, no longer read by its number; a
# UTC offset whose minutes are 60 or more ("GMT+3:60", read as UTC+4) is bad_timestamp.
# 10: keycap digits ("5️⃣", "4⃣") and the keycap ten ("🔟") read as the digits they show
# ("5️⃣ - Excellent" as a 5); they were bad_rating ("neither a number nor a label").
# 11: a number in a label that a word other than a score's unit follows is no top the score
# is out of ("5 - atención de 10 minutos", "4 - wait of 2 hours" read as a 5 and a 4; they
# were refused as a score out of 10 or 2); "4 stars out of 10" and "4 out of 10 stars" still
# are.
# 12: a second score after signs ("5 -> 1", "5 | 1", "5 [1]"), a number of a score's unit
# further in a label ("5 stars; 1 star") and a number within the scale that ends a label
# ("5 (was 1)", "5 then 1") are bad_rating (two scores); each was read as its first score.
# 13: a Forms API answer of several texts (a checkbox question's ticks) for a rating, NPS,
# reference, agent or ticket question is a skipped row; "5 - Excellent, 1 - Awful" was a 5.
# 14: the same ticks in a responses sheet or its CSV, joined with ", " ("4 - Good, 5 -
# Excellent", "5 - Great, Awful" with Awful a configured label) are bad_rating; each was read
# as its first option's score.
# 15: a responses sheet's comment that Sheets read as a number, a date or a boolean ("5%",
# "1,5", "3/4", "TRUE") is read as the sheet shows it; it was the unformatted value (0.05,
# 1.5, a date serial).
# 16: a Forms question deleted and added again (a new questionId) under a title
# results.columns names for its role is read by its new questionId too; its answers were
# read as none while older responses still answered the configured one.
# 17: a sheet's or export's cell showing a formula's error (#N/A, #REF!...) in the timestamp,
# rating or NPS column is skipped as formula_error; it was bad_timestamp or bad_rating.
# 18: a results.csv.timestamp_formats layout's %Z is the zone the value names ("... 19:05
# UTC" is 19:05 UTC); it was read as wall-clock time in results.csv.timezone.
# 19: a 12-hour time whose hour is 0 (Japanese "午後0:30", CLDR ja "aK:mm:ss") is read (0 AM
# is 00, 0 PM is 12); it was bad_timestamp.
# 20: a date whose month is a word, English or Russian ("7 декабря 2026 г. 19:05:12", "Dec 7,
# 2026 7:05 PM"), is read; it was bad_timestamp.
# 21: a bare UTC offset after a date that is not ISO ("07.12.2026 19:05:12 +03:00", "... PM
# -0500") is the offset; it was bad_timestamp.
# 22: an ISO 8601 / RFC 3339 date-time with a lowercase "t" or "z" ("2026-12-07t19:05:12z",
# as RFC 3339 allows) is read, as the Forms API's reader reads it; it was bad_timestamp.
# 23: a value with a bare UTC offset that a results.csv.timestamp_formats layout reads is read
# by it, its day/month order too, as before 21; it was ambiguous_date_order or the other order.
# 24: a checkbox question's ticks as Forms' CSV download joins them, with ";" ("4 - Good;5 -
# Excellent", "5 - Great;Awful" with Awful a configured label) are bad_rating, as 14 made
# those joined with ", "; each was read as its first option's score.
# 25: a score whose label is a configured label of another score ("1 - Very satisfied",
# "5 (Плохо)"; the built-in labels on the five-point scale only) is bad_rating; it was read by
# its number.
READING_VERSION = 25

SERIAL_EPOCH = datetime(1899, 12, 30)
# The scale the built-in rating labels (results.rating_labels' default) are the words of.
FIVE_POINT = (1, 5)
# "5 - Very satisfied", "5 (Excellent)", "4: good", "5, great", "5 stars"; not "4.5": a
# number, then a separator (a space, one of - – — : ; , ( ) or a period before a space) and
# a label (_SEPARATORS, RatingScale._labelled).
_LEADING_NUMBER = re.compile(r"^\s*(\d{1,3})(?=\s|[-–—:;,()]|\.\s)")
_PLAIN_NUMBER = re.compile(r"^\s*([+-]?\d{1,3})(?:[.,]0+)?\s*$")
# What parts a score from its label: every space and separator, at once (possessive: no part
# of the run is given back to make a label start with a digit, as "5 - 3" read as a 5 did).
_SEPARATORS = re.compile(r"(?:\s|[-–—:;,()]|\.(?=\s))*+")
# Scores in words, 0 to 10 (a 1-5 or 1-10 scale's and NPS's), in the languages the joiners
# are (Russian and Polish ones also in the forms "из пяти", "от четырёх до пяти", "z pięciu"
# give them).
# Not the words for one that also mean "a" (un, une, ein, eine, een, uno, una, um, uma):
# "5 y un servicio rápido" is a label.
_NUMBER_WORDS: dict[str, int] = {
    word: number
    for number, words in enumerate(
        (
            "zero ноль нуль zéro null cero nul",
            "one один одна одно одного одной одним eins één jeden jedna jedno jednego",
            "two два две двух двумя deux zwei dos dois duas due twee dwa dwie dwóch",
            "three три трёх трех тремя trois drei tres três tre drie trzy trzech",
            "four четыре четырёх четырех четырьмя quatre vier cuatro quatro quattro cztery "
            "czterech",
            "five пять пяти пятью cinq fünf cinco cinque vijf pięć pięciu",
            "six шесть шести шестью sechs seis sei zes sześć sześciu",
            "seven семь семи семью sept sieben siete sete sette zeven siedem siedmiu",
            "eight восемь восьми восемью huit acht ocho oito otto osiem ośmiu",
            "nine девять девяти девятью neuf neun nueve nove negen dziewięć dziewięciu",
            "ten десять десяти десятью dix zehn diez dez dieci tien dziesięć dziesięciu",
        )
    )
    for word in words.split()
}
# A whole word (longest first, so that "четырёх" is not cut to a shorter word and refused).
_NUMBER_WORD = (
    "(?:" + "|".join(map(re.escape, sorted(_NUMBER_WORDS, key=len, reverse=True))) + r")(?!\w)"
)
# "4/5", "4 / 5", "5/5 stars", "4 out of 5", "4 of 5", "4 из 5" (and "sur", "von", "de",
# "su", "van", "na": fr, de, es/pt, it, nl, pl), "4 out of five", "4 из пяти": a score out of
# the second number, which must be the scale's top ("4 / 10", "3 sur 10" or "4 out of ten"
# was read by its leading number as a 4 or a 3 on a 1-5 scale). The bar is a slash, or the
# fraction slash, division slash or full-width slash ("4 ⁄ 10" was read as a 4 too). Group 3
# is a further "/ n" or "of n" ("5/5/5", "4 / 5 / 5", a date "3/5/2024", "4 of five of
# five"), or a further "/" with no number ("4/5/", cut short): such a cell is refused, it was
# read by its first fraction. A label may follow, as after a number.
_SLASHES = "/⁄∕／"
_OF_WORDS = r"(?:out\s+of|of|из|sur|von|de|su|van|na)"
_FRACTION_BAR = rf"(?:[{_SLASHES}]|\s{_OF_WORDS}\s)"
_FRACTION = re.compile(
    rf"^\s*(\d{{1,3}})\s*{_FRACTION_BAR}\s*(\d{{1,3}}(?!\d)|{_NUMBER_WORD})"
    rf"(\s*{_FRACTION_BAR}\s*(?:\d|{_NUMBER_WORD})|\s*[{_SLASHES}])?",
    re.IGNORECASE,
)
# A second score in a label: "5 - great, 4/5 speed".
_ANOTHER_FRACTION = re.compile(rf"\d\s*{_FRACTION_BAR}\s*\d", re.IGNORECASE)
# The score's top named in its label: "4 stars out of 10", "4 (out of 10)", "4 балла из 10",
# "3 stars / 10", "4 pts/10" (a word between the score and the bar). It must be the scale's
# top, as in a fraction ("4 stars out of 5" is a 4): those were read by their leading number,
# a 4 of 10 as a satisfied answer on a 1-5 scale. Matches case-folded text. A number a word
# follows counts that word, unless it is a score's unit ("4 stars out of 10 stars"): "5 -
# atención de 10 minutos", "4 - wait of 2 hours" are a 5 and a 4 with a label (they were
# refused as a score out of 10 or 2).
_SCORE_UNITS = (
    r"stars?|points?|pts?|балл\w*|звезд\w*|звёзд\w*|étoiles?|sterne?|punkte?|estrellas?"
    r"|puntos?|estrelas?|pontos?|stelle|punti|sterren|punten|gwiazd\w*|punkt\w*"
)
_OUT_OF = re.compile(
    rf"(?:[{_SLASHES}]|(?<![^\s(]){_OF_WORDS}\s)\s*"
    rf"(\d{{1,3}}(?!\d|\s*%)|{_NUMBER_WORD})"
    rf"(?!\s*+(?!(?:{_SCORE_UNITS})(?!\w))[^\W\d_])"
)
# Stars: filled (★, and the ⭐ emoji, with or without its variation selector) and empty (☆),
# spaces between them or not: "★★★★☆", "⭐⭐⭐⭐", "★ ★ ★ ☆ ☆".
_FILLED_STARS = "★⭐"
# Keycap digits: a digit, an optional emoji variation selector and COMBINING ENCLOSING KEYCAP
# ("5️⃣", as emoji keyboards and emoji-styled form choices write a score); and the keycap ten.
_KEYCAP = re.compile("([0-9])\ufe0f?\u20e3")
_KEYCAP_TEN = "\U0001f51f"
_STARS = re.compile(r"(?:[★☆⭐]\ufe0f?\s*)+")
_LEADING_STARS = re.compile(rf"^\s*({_STARS.pattern})")
_TWO_SCORES = (
    "another score after the score (a second number, fraction or star string, or a decimal): "
    "which one is meant is unclear (a form's own option label: name it in "
    "results.rating_labels)"
)
_DISAGREEING_STARS = "a star string and another score that disagree: which one is meant is unclear"
# What joins two scores into a choice or a range: "4 or 5", "4 to 5", "4 and 5", "4 & 5",
# "4 + 5", "4~5", "4..5", "4 or maybe 5", "4 с половиной", in the languages "out of" is read in
# (_FRACTION_BAR). Not "of": "4 of 5" is a score out of 5 as English forms write it (Dutch
# "4 of 5", "4 or 5", reads so too: a scale knows no language). A word joins only with a space
# after it and a second score right after that (_SECOND_SCORE): "5 and great", "5 or so",
# "5 a great service" read as labels; "5 and 2 minutes" is refused with the rest (skipped and
# reported, as "5 - 2 minutes" is: a cell the reader cannot tell from two scores is never
# counted as either).
_JOINING_WORDS = (
    "or|to|and|vs\\.|vs|versus|maybe|perhaps|even|till|through|thru"  # en
    "|или|либо|до|и|а|с|может|возможно|даже"  # ru
    "|ou|à|et|voire"  # fr, pt
    "|oder|bis|und"  # de
    "|hasta|até|oppure|fino|o|u|y|e|a"  # es, pt, it
    "|tot|en"  # nl
    "|lub|albo|do|i|czy"  # pl
)
# The signs first: a run of them is not tried against every word.
_JOINER = rf"(?:[&+~…]\s*+|\.\.++\s*+|(?:{_JOINING_WORDS})\s++)"
# Half a point, in words: after a joiner only ("4 and a half", "4 y medio", "4 с половиной");
# right after the separators "3 - media" or "3 - medio" is "average", "5 - half an hour" a
# label. German writes "4 einhalb" without one.
_HALF = (
    r"(?:(?:an?|une?|eine?|een|un[oa]|uma?)\s++)?"
    r"(?:half|halve|halb|halbe|einhalb|demi|demie|medio|media|mezzo|mezza|meio|meia"
    r"|pół|połowa|połowę|половина|половину|половиной)(?!\w)"
)
# Characters that name a number and are no digit: vulgar fractions ("4 ½"), superscripts and
# subscripts ("4¹⁄₂"), circled and Roman numerals, from the blocks that hold them.
_NUMBER_SIGNS = re.escape(
    "".join(
        sign
        for sign in map(
            chr,
            (
                *range(0xA0, 0x100),
                *range(0x2070, 0x20A0),
                *range(0x2150, 0x2190),
                *range(0x2460, 0x2500),
                *range(0x2776, 0x2794),
            ),
        )
        if unicodedata.numeric(sign, None) is not None and not sign.isdecimal()
    )
)
# What is a second score right after a score's separators: a number ("5 - 3", "4 1/2"), a
# decimal part ("4 .5"), a sign ("4 ½"), a number word ("4 - five": _restated reads one that
# is the score itself) or "einhalb".
_SECOND_SCORE = rf"(?:\.?\d|[{_NUMBER_SIGNS}]|{_NUMBER_WORD}|einhalb(?!\w))"
# _ANOTHER_SCORE, _LEADING_NUMBER_WORD, _JOINED_LABEL and _JOINED_ANYWHERE match case-folded
# text (str.casefold; the words are lower case), not with re.IGNORECASE: an alternation of
# words tried that way costs some four times more, and a hostile cell repeats a joiner
# 75,000 times.
_ANOTHER_SCORE = re.compile(_SECOND_SCORE)
# A second score after signs that join it to the first: "5 -> 1", "5 → 1", "5 = 1", "5 | 1",
# "5 * 1", "5 [1]" (each was read as a 5).
_SIGNED_SCORE = re.compile(rf"[^\w\s]++\s*+{_SECOND_SCORE}")
# A number with a score's unit after it, anywhere in a label ("5 stars; 1 star").
_UNIT_SCORE = re.compile(rf"(?<![\w.,])\d{{1,3}}\s*+(?:{_SCORE_UNITS})(?!\w)")
# A number that ends a label, only signs or spaces after it ("5 (was 1)", "5 then 1").
_LAST_NUMBER = re.compile(r"(?<![\w.,])(\d{1,3})[^\w]*+$")
_LEADING_NUMBER_WORD = re.compile(_NUMBER_WORD)
# A label that starts with a joiner and a second score, or a half: the score's alternative,
# upper bound or half point ("4 or 5", "4 or five", "4 and a half").
_JOINED_SCORE = rf"(?:{_JOINER})++(?:{_SECOND_SCORE}|{_HALF})"
_JOINED_LABEL = re.compile(_JOINED_SCORE)
# Two scores joined anywhere: "between 4 and 5", "от 4 до 5", "4~5", "four or 5" (no score
# read first). Looked for in the first _JOINED_WITHIN characters only: it says why a cell
# refused anyway is, and tried at every position its words cost some 25 ms over a
# 150,000-character cell.
_JOINED_ANYWHERE = re.compile(rf"(?:\d|[{_NUMBER_SIGNS}]|(?<!\w){_NUMBER_WORD})\s*+{_JOINED_SCORE}")
_JOINED_WITHIN = 1000
# A responses sheet (and a sheet saved as CSV) joins a checkbox question's ticks with ", ",
# Forms' "Download responses (.csv)" with ";": a further option that starts with a score as a
# rating option does ("4 - Good, 5 - Excellent", "4 - Good;5 - Excellent"; "4, 5." aside:
# _LAST_NUMBER reads that one).
_TICK_JOINERS = ",;"
_TICK_JOINER = re.compile(f"[{_TICK_JOINERS}]")
_TICKED_OPTION = re.compile(rf"[{_TICK_JOINERS}]\s*+(\d{{1,3}})\s*+(?:[-–—:()]|\.\s)")
_TICKED = (
    "two options of a checkbox question (a responses sheet joins its ticks with ', ', a Forms "
    "download with ';'): which one is meant is unclear; make the rating question multiple "
    "choice (one answer)"
)
_NAMED_OTHER = (
    "a score whose label is a configured label of another score (results.rating_labels): "
    "which one is meant is unclear (a form numbering its options the other way round? name "
    "each option whole in results.rating_labels with its score)"
)
# What may close a label after its words ("5 (Плохо)", "1 - Very satisfied.").
_LABEL_END = " )]}.!"
_JOINED = (
    "two scores joined by a word or a sign such as 'or', 'to', 'and', '&' (a choice or a "
    "range): which one is meant is unclear (a form's own option label: name it in "
    "results.rating_labels)"
)
# "5-Jan": a fraction such as "1/5" that Excel took for a date when it opened the export,
# saved back as its d-mmm text (the month in English whatever the locale's names). It was
# read by its leading number: every "n/5" choice of an en-US re-save as a 5.
_EXCEL_DATE = re.compile(rf"^\s*(\d{{1,2}})-({'|'.join(MONTHS)})\s*$", re.IGNORECASE)


def normalize(text: Any) -> str:
    """Comparable form of a header or a label: NFKC, case-folded, single spaces."""
    return comparable_text(text)


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# The errors a spreadsheet formula shows in its cell (Google Sheets' and Excel's): an
# unformatted read and a sheet saved as CSV give them as the cell's text.
_FORMULA_ERRORS = frozenset(
    [
        "#N/A",
        "#REF!",
        "#VALUE!",
        "#DIV/0!",
        "#NAME?",
        "#NUM!",
        "#NULL!",
        "#ERROR!",
        "#SPILL!",
        "#CALC!",
        "#FIELD!",
        "#BLOCKED!",
        "#CONNECT!",
        "#BUSY!",
        "#UNKNOWN!",
        "#GETTING_DATA",
    ]
)


def formula_error(value: Any) -> str | None:
    """Why a cell showing a formula's error (``#N/A``, ``#REF!``…) is no answer, naming the
    error (one of a fixed set, never a respondent's text); None for any other cell. Said
    as "not a date-time layout" or "not a configured label", it sent the operator to add a
    layout or a rating label."""
    if type(value) is not str or value.strip().upper() not in _FORMULA_ERRORS:
        return None
    return (
        f"the cell shows a formula's error ({value.strip().upper()}), not an answer: a formula "
        "in the column failed"
    )


def as_text(value: Any) -> str:
    """A cell as text: whole floats without ".0", everything stripped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class RatingError(ValueError):
    """Not a rating; ``reason`` is ``missing_rating`` or ``bad_rating``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class RatingScale:
    """Turns a rating cell (number or label) into a score on ``low..high``."""

    def __init__(
        self,
        low: int,
        high: int,
        labels: Mapping[str, int],
        unused_labels: Mapping[str, int] | None = None,
    ) -> None:
        self.low = low
        self.high = high
        self.labels = {normalize(label): score for label, score in labels.items()}
        # Labels known but not read on this scale (the built-in five-point words on another
        # scale): a cell holding one is skipped with a reason that says what to configure.
        self._unused = frozenset(normalize(label) for label in unused_labels or {})
        # Text cell → score or (reason, detail): a form has a handful of distinct rating
        # texts and a first sync reads a million of them. Bounded: free text is not kept.
        self._texts: dict[str, int | tuple[str, str]] = {}

    @classmethod
    def from_config(cls, results: ResultsConfig, metrics: MetricsConfig) -> RatingScale:
        """``metrics.scale_min..scale_max`` with ``results.rating_labels``.

        The built-in labels (``rating_labels`` unset, or set to them) are the 1–5 scale's
        words and are read on that scale only: on 0–10 "Very satisfied" is no 5, on 1–3
        "Neutral" no 3. On any other scale a cell holding one is skipped (``bad_rating``)
        until the configuration gives the scale's own labels."""
        low, high = metrics.scale_min, metrics.scale_max
        if results.labels_given() or (low, high) == FIVE_POINT:
            return cls(low, high, results.rating_labels)
        return cls(low, high, {}, unused_labels=results.rating_labels)

    def parse(self, value: Any) -> int:
        """The score, or RatingError (never quoting the value: it may be free text)."""
        if type(value) is str:
            known = self._texts.get(value)
            if known is None:
                try:
                    known = self._parse(value)
                except RatingError as exc:
                    known = (exc.reason, exc.detail)
                if len(self._texts) < 1024:
                    self._texts[value] = known
            if isinstance(known, int):
                return known
            raise RatingError(*known)
        return self._parse(value)

    def _parse(self, value: Any) -> int:
        if isinstance(value, str):
            value = strip_format(value)
        if is_blank(value):
            raise RatingError("missing_rating", "the rating cell is empty")
        if isinstance(value, bool):
            raise RatingError("bad_rating", "a TRUE/FALSE cell is not a rating")
        if isinstance(value, int | float):
            if isinstance(value, float) and not value.is_integer():
                raise RatingError("bad_rating", "a fractional number is not a rating")
            return self._in_scale(int(value))
        text = str(value)
        score = self.labels.get(normalize(text))
        if score is not None:
            return self._in_scale(score)  # a built-in label may be off a configured scale
        if "\u20e3" in text or _KEYCAP_TEN in text:
            # Read as the digits they show, by the rules digits are read by ("4️⃣5️⃣" is
            # no 45 on a 1-5 scale, "4️⃣ or 5️⃣" two scores).
            text = _KEYCAP.sub(r"\1", text).replace(_KEYCAP_TEN, "10")
        stars = _LEADING_STARS.match(text)
        if stars:
            return self._in_scale(self._starred(stars.group(1), text[stars.end() :]))
        return self._written(text)

    def _written(self, text: str) -> int:
        """The score of a cell that starts with a number (a label may follow)."""
        fraction = _FRACTION.match(text)
        if fraction:
            if fraction.group(3):
                raise RatingError(
                    "bad_rating",
                    "more than one '/' or 'of' between numbers (a date, or a repeated score)"
                    if fraction.group(3)[-1] not in _SLASHES
                    else "more than one '/' after a number, the last with no number after it "
                    "(a date or a repeated score cut short)",
                )
            self._check_out_of(fraction.group(2))
            rest = text[fraction.end() :]
            if rest.startswith(".") and not rest[1:2].isspace():
                raise RatingError(
                    "bad_rating",
                    "a '.' right after the score, not followed by a space (a decimal number is "
                    "not a rating)",
                )
            return self._in_scale(self._labelled(int(fraction.group(1)), rest))
        date = _EXCEL_DATE.match(text)
        if date:
            return self._in_scale(self._from_date(int(date.group(1)), date.group(2)))
        match = _PLAIN_NUMBER.match(text)
        if match:
            return self._in_scale(int(match.group(1)))
        match = _LEADING_NUMBER.match(text)
        if match:
            return self._in_scale(self._labelled(int(match.group(1)), text[match.end() :]))
        if _JOINED_ANYWHERE.search(text[:_JOINED_WITHIN].casefold()):
            raise RatingError("bad_rating", _JOINED)
        if self._unused and normalize(text) in self._unused:
            raise RatingError(
                "bad_rating",
                f"a built-in label of the 1–5 scale on the {self.low}–{self.high} scale "
                "(metrics.scale_*): give this scale's labels and scores in "
                "results.rating_labels",
            )
        raise RatingError(
            "bad_rating",
            "text that is neither a number nor a configured label (results.rating_labels)",
        )

    @staticmethod
    def _label(rest: str) -> str:
        """What follows a score's separators (empty when nothing does)."""
        separators = _SEPARATORS.match(rest)
        return rest[separators.end() :] if separators else rest

    def _labelled(self, score: int, rest: str) -> int:
        """``score``, unless the text after it (``rest``) names another: a number, a decimal
        part, a sign such as "½" or a number word right after the separators ("5 - 3",
        "4/5 - 5/5", the decimal "4,5", "4 ½", "4 - five": _SECOND_SCORE; the score itself in
        words, "5 - five stars", restates it) or after a word or sign that joins two scores
        ("4 or 5", "4 or five", "4 and a half", "4/5 and 5": _JOINING_WORDS), a fraction
        anywhere in the label, or a star string that does not show the same score."""
        label = self._restated(score, self._label(rest.casefold()), _TWO_SCORES)
        if _JOINED_LABEL.match(label):
            raise RatingError("bad_rating", _JOINED)
        if self._ticked(score, label):
            raise RatingError("bad_rating", _TICKED)
        if (
            _ANOTHER_SCORE.match(label)
            or _ANOTHER_FRACTION.search(label)
            or _SIGNED_SCORE.match(label)
            or self._another_later(label)
        ):
            raise RatingError("bad_rating", _TWO_SCORES)
        runs = _STARS.findall(label)
        if len(runs) > 1:
            raise RatingError("bad_rating", _TWO_SCORES)
        if runs and self._stars(runs[0]) != score:
            raise RatingError("bad_rating", _DISAGREEING_STARS)
        self._check_top(label)
        self._check_named(score, label)
        return score

    def _check_named(self, score: int, label: str) -> None:
        """RatingError when ``label`` (case-folded, past the separators), or its first option
        before a ", " or ";", is a configured label of another score than ``score``: "1 -
        Very satisfied", "5 (Плохо)". A form numbering its options the other way round (1
        the best) was read by the number, each satisfied answer credited as the worst. The
        option named whole in results.rating_labels is read by that label instead."""
        # The labels read on this scale: the built-in ones are not on a scale other than
        # theirs (from_config), so "10 - Very satisfied" is a 1-10 form's own option there.
        if not self.labels:
            return
        first = _TICK_JOINER.split(label[:_JOINED_WITHIN], 1)[0]
        named = self.labels.get(normalize(first.rstrip(_LABEL_END)))
        if named is not None and named != score:
            raise RatingError("bad_rating", _NAMED_OTHER)

    def _ticked(self, score: int, label: str) -> bool:
        """Whether ``label`` (case-folded, past the separators) goes on, after a ", " or a ";"
        (:data:`_TICK_JOINERS`), with another option of a checkbox question: one that starts
        with a score (:data:`_TICKED_OPTION`), or a configured label of another score than
        ``score`` ("5 - Great, Awful", "5 - Great;Awful"; "5 - Great, Excellent" restates
        it)."""
        head = label[:_JOINED_WITHIN]
        if _TICK_JOINER.search(head) is None:
            return False
        # A number past the scale is the label's ("3 - Okay, 50-50"), as in _another_later.
        if any(int(n) <= max(self.high, 10) for n in _TICKED_OPTION.findall(head)):
            return True
        for option in _TICK_JOINER.split(head)[1:]:
            named = self.labels.get(normalize(option))
            if named is not None and named != score:
                return True
        return False

    def _another_later(self, label: str) -> bool:
        """Whether ``label`` (case-folded, past the separators) names a second score further
        in: a number of a score's unit ("5 stars; 1 star", "5 (was 1 point)"; not the
        scale's top after "out of", which :meth:`_check_top` reads), or a number within the
        scale that ends the label, only signs after it ("5 (was 1)", "5 then 1"). A number a
        word follows is the label's ("5 - answered in 2 minutes"), as one past the scale is
        ("5 - best of 2024")."""
        head = _OUT_OF.sub(" ", label[:_JOINED_WITHIN])  # "out of 5" is no second score
        if _UNIT_SCORE.search(head):
            return True
        last = _LAST_NUMBER.search(head) if len(label) <= _JOINED_WITHIN else None
        return last is not None and int(last.group(1)) <= max(self.high, 10)

    def _check_top(self, label: str) -> None:
        """RatingError when ``label`` (case-folded) says the score is out of another number
        than the scale's top ("4 stars out of 10" on a 1-5 scale: _OUT_OF)."""
        top = _OUT_OF.search(label[:_JOINED_WITHIN])
        if top is not None:
            self._check_out_of(top.group(1))

    def _check_out_of(self, top: str) -> None:
        """RatingError unless ``top`` (digits or a number word: what a score is out of, in a
        fraction or its label) is the scale's top."""
        if (int(top) if top[0].isdigit() else _NUMBER_WORDS.get(top.casefold())) != self.high:
            raise RatingError(
                "bad_rating", f"a score out of another number than the scale's {self.high}"
            )

    def _starred(self, stars: str, rest: str) -> int:
        """The score of a cell that starts with the star string ``stars``: a number right
        after it, or a number word, must show the same score ("★★★☆☆ (3)", "★★★★☆ four"), and
        none may follow a word that joins two scores ("★★★★☆ or 5"); a label may follow."""
        score = self._stars(stars)
        label = self._restated(score, self._label(rest.casefold()), _DISAGREEING_STARS)
        if _JOINED_LABEL.match(label):
            raise RatingError("bad_rating", _JOINED)
        if label[:1].isdigit():
            if self._written(label) != score:
                raise RatingError("bad_rating", _DISAGREEING_STARS)
        elif _ANOTHER_SCORE.match(label) or _ANOTHER_FRACTION.search(label) or _STARS.search(label):
            raise RatingError("bad_rating", _TWO_SCORES)
        else:
            self._check_top(label)
            self._check_named(score, label)
        return score

    @staticmethod
    def _restated(score: int, label: str, disagreeing: str) -> str:
        """``label`` (case-folded) past the score written in words at its start ("5 - five
        stars", "★★★★☆ four"), which restates the score as a star string that shows it does;
        RatingError with ``disagreeing`` when the word names another ("4 - five"). A label
        that starts with no number word is returned as it is."""
        word = _LEADING_NUMBER_WORD.match(label)
        if word is None:
            return label
        if _NUMBER_WORDS[word.group()] != score:
            raise RatingError("bad_rating", disagreeing)
        return RatingScale._label(label[word.end() :])

    def _stars(self, stars: str) -> int:
        """The filled stars of a star string: all of its stars when the scale's top is their
        number, filled ones first ("★★★★☆" is 4 of 5); or only filled ones, within the scale.
        """
        marks = [c for c in stars if c in "★☆⭐"]
        filled = sum(c in _FILLED_STARS for c in marks)
        if filled == len(marks):
            if filled > self.high:
                raise RatingError("bad_rating", f"more stars than the scale's {self.high}")
            return filled
        if any(c in _FILLED_STARS for c in marks[filled:]):
            raise RatingError(
                "bad_rating",
                "filled and empty stars out of order (an empty star before a filled one): "
                "which score is meant is unclear",
            )
        if len(marks) != self.high:
            raise RatingError(
                "bad_rating",
                f"filled and empty stars that add up to another number than the scale's "
                f"{self.high}",
            )
        return filled

    def _from_date(self, day: int, month_name: str) -> int:
        """The score of a fraction "score/top" a spreadsheet turned into the date ``day`` of
        ``month_name``: read month first (en-US), "4/5" is the 5th of April; day first
        (en-GB), the 4th of May. The fraction's second number is the scale's top, which
        tells the two apart (both are the top when day and month are)."""
        month = MONTHS[month_name.casefold()]
        if month == self.high:
            return day
        if day == self.high:
            return month
        raise RatingError(
            "bad_rating",
            "a date, not a score out of the scale's top (a spreadsheet program turns a "
            "choice such as 4/5 into a date when it opens the export: download it again "
            "and do not save it from a spreadsheet program)",
        )

    def _in_scale(self, score: int) -> int:
        if not self.low <= score <= self.high:
            raise RatingError("bad_rating", f"outside the scale {self.low}..{self.high}")
        return score


_NPS_SCALE = RatingScale(NPS_MIN, NPS_MAX, {})


def parse_nps(value: Any) -> int | None:
    """A 0–10 "would you recommend us" answer (a number, or a label starting with one such as
    ``10 - Extremely likely``); None when blank (the question is optional). RatingError with
    reason ``bad_nps`` otherwise."""
    if is_blank(value) or (isinstance(value, str) and not strip_format(value)):
        return None
    try:
        return _NPS_SCALE.parse(value)
    except RatingError as exc:
        raise RatingError("bad_nps", exc.detail.replace("results.rating_labels", "0–10")) from exc


def from_serial(serial: float, tz: ZoneInfo) -> datetime:
    """A Sheets date-time serial (wall-clock time in the sheet's zone) as aware UTC;
    TimestampError (``bad_timestamp``) for a serial outside the years 1-9999, in the sheet's
    zone or in UTC (a cell can hold any number, ``1e10`` or ``3000000``), or not finite."""
    # Hot: once per row of a sheet. The wall-clock time to the second, then its UTC instant as
    # ``local.replace(tzinfo=tz).astimezone(UTC)`` gives it (the offset of fold 0: the one
    # before a change of the clocks, in a gap and in a repeated hour alike), in half the
    # objects: that spelling made four datetimes and two timedeltas a row.
    try:
        span = timedelta(days=serial)
        # Serials carry float noise; Forms stamps whole seconds. To the nearest second, half
        # a second down: round(microsecond / 1e6), as it was written before.
        micro = span.microseconds
        if micro:
            span = timedelta(span.days, span.seconds + (micro > 500_000))
        local = SERIAL_EPOCH + span
        offset = tz.utcoffset(local)
        assert offset is not None  # a ZoneInfo always has one
        return (local - offset).replace(tzinfo=UTC)
    except (OverflowError, ValueError):  # ValueError: NaN (JSON may carry it)
        raise TimestampError(
            "bad_timestamp", "a date-time serial outside the years 1-9999"
        ) from None
