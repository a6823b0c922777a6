"""Reading cells: ratings (numbers and labels), serial date-times, text timestamps, headers."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from csat_hook.sync.timestamps import TimestampColumn
from csat_hook.sync.timestamps import TimestampError
from csat_hook.sync.values import SERIAL_EPOCH
from csat_hook.sync.values import RatingError
from csat_hook.sync.values import RatingScale
from csat_hook.sync.values import from_serial
from csat_hook.sync.values import normalize
from csat_hook.sync.values import parse_nps

SCALE = RatingScale(1, 5, {"Very satisfied": 5, "Отлично": 5, "Плохо": 2})


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        (5, 5),
        (1, 1),
        (4.0, 4),
        ("3", 3),
        (" 4 ", 4),
        ("5.0", 5),
        ("4,0", 4),
        ("Very satisfied", 5),
        ("  very   SATISFIED ", 5),
        ("Отлично", 5),
        ("отлично", 5),
        ("Плохо", 2),
        ("5 - Very satisfied", 5),
        ("4 — хорошо", 4),
        ("5 (Excellent)", 5),
        ("2: not great", 2),
        ("4/5", 4),  # out of the scale's top: the first number
        (" 4 / 5 ", 4),
        ("5/5 stars", 5),
        ("５/５", 5),
        ("4 out of 5", 4),
        ("3 of 5 - ok", 3),
        ("4 из 5", 4),
        ("5 Out Of 5", 5),
        ("4 sur 5", 4),
        ("3 von 5", 3),
        ("4 de 5", 4),
        ("2 su 5", 2),
        ("5 van 5", 5),
        ("4 na 5", 4),
    ],
)
def test_ratings_read_as_scores(cell, score):
    assert SCALE.parse(cell) == score


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        (None, "missing_rating"),
        ("", "missing_rating"),
        ("  ", "missing_rating"),
        (6, "bad_rating"),
        (0, "bad_rating"),
        (4.5, "bad_rating"),
        ("4.5", "bad_rating"),
        ("excellent!!", "bad_rating"),
        ("10 - best", "bad_rating"),
        (True, "bad_rating"),
        ("-3", "bad_rating"),
        # Out of another scale: "4 / 10" was read as 4 on a 1-5 scale (its leading number).
        ("4 / 10", "bad_rating"),
        ("4/10", "bad_rating"),
        ("3/4", "bad_rating"),
        ("2 / 10 - poor", "bad_rating"),
        ("4/5.5", "bad_rating"),
        ("3 of 10", "bad_rating"),
        ("4 out of 10", "bad_rating"),
        ("8 из 10", "bad_rating"),
        # Dates and repeated fractions: "5/5/5" was read by its first fraction as a 5.
        ("12/5/2024", "bad_rating"),
        ("2024-05-03", "bad_rating"),
        ("03.05.2024", "bad_rating"),
        # French, German, Spanish/Portuguese, Italian, Dutch, Polish forms say "out of" so.
        ("4 sur 10", "bad_rating"),
        ("4 von 10", "bad_rating"),
        ("4 de 10", "bad_rating"),
        ("4 su 10", "bad_rating"),
        ("4 van 10", "bad_rating"),
        ("4 na 10", "bad_rating"),
    ],
)
def test_non_ratings_are_refused_with_a_reason(cell, reason):
    with pytest.raises(RatingError) as caught:
        SCALE.parse(cell)
    assert caught.value.reason == reason
    # The message never quotes the cell: it may be free customer text.
    if isinstance(cell, str) and cell.strip():
        assert cell not in caught.value.detail


@pytest.mark.parametrize(
    "cell",
    [
        "5/5/5",
        "4/5/5",
        "4 / 5 / 5",
        "4 / 5 /5",
        "4 of 5 of 5",
        "4 из 5 из 5",
        "3/5/2024",  # a date: its first two numbers look like a score out of 5
        "05/05/2025",
        "5/5/24",
        "1/5/2026 10:00",
    ],
)
def test_a_chain_of_fractions_is_refused_not_read_by_its_first(cell):
    with pytest.raises(RatingError) as caught:
        SCALE.parse(cell)
    assert caught.value.reason == "bad_rating"
    assert "more than one" in caught.value.detail
    assert cell not in caught.value.detail


def test_serial_is_wall_clock_time_in_the_sheet_zone():
    # 2026-11-22 20:17:11 in Moscow (UTC+3), as Sheets stores a Forms timestamp.
    moment = from_serial(46348.8452662037, ZoneInfo("Europe/Moscow"))
    assert moment == datetime(2026, 11, 22, 17, 17, 11, tzinfo=UTC)
    assert from_serial(46348.8452662037, ZoneInfo("UTC")) == datetime(
        2026, 11, 22, 20, 17, 11, tzinfo=UTC
    )
    # 1900-01-01 12:00 is 2.5 (the documented example).
    assert from_serial(2.5, ZoneInfo("UTC")) == datetime(1900, 1, 1, 12, 0, tzinfo=UTC)


def _serial_as_written_before(serial: float, tz: ZoneInfo) -> datetime | str:
    """from_serial as it was written until the thirty-eighth round: the reference its faster
    spelling must equal (a value, or the same refusal)."""
    try:
        local = SERIAL_EPOCH + timedelta(days=serial)
        local = local.replace(microsecond=0) + timedelta(seconds=round(local.microsecond / 1e6))
        return local.replace(tzinfo=tz).astimezone(UTC)
    except (OverflowError, ValueError):
        return "refused"


def _serial_now(serial: float, tz: ZoneInfo) -> datetime | str:
    try:
        return from_serial(serial, tz)
    except TimestampError:
        return "refused"


# Zones with a clock change at 02:00 (a gap and a repeated hour), Lord Howe's half-hour
# change, one whose offsets were not whole minutes (Amsterdam before 1937), a date-line
# jump (Apia skipped 2011-12-30), fixed offsets on both sides of UTC, and UTC.
_ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Europe/Amsterdam",
    "Pacific/Apia",
    "Asia/Kolkata",
    "Etc/GMT+7",
    "Etc/GMT-14",
    "UTC",
]


@settings(max_examples=3000, deadline=None)
@given(
    serial=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=-700_000, max_value=3_000_000),  # years 1-9999 and past them
        # Around a second's half and the clock changes: the days and the times Sheets stores.
        st.builds(
            lambda day, second, micro: day + (second + micro / 1e6) / 86400,
            st.integers(min_value=-693_593, max_value=2_958_465),
            st.integers(min_value=0, max_value=86_399),
            st.sampled_from([0, 1, 499_999, 500_000, 500_001, 999_999]),
        ),
        st.integers(min_value=-(10**12), max_value=10**12),
    ),
    zone=st.sampled_from(_ZONES),
)
@example(serial=45382.0833333333, zone="Europe/Berlin")  # 2024-03-31 02:00: in the gap
@example(serial=45592.0833333333, zone="Europe/Berlin")  # 2024-10-27 02:00: repeated hour
@example(serial=40907.5, zone="Pacific/Apia")  # 2011-12-30, a day Samoa skipped
@example(serial=-693593.0, zone="Asia/Kolkata")  # 0001-01-01 00:00 local: before year 1 in UTC
@example(serial=2958465.99999999, zone="Etc/GMT+7")  # 9999-12-31 24:00 after rounding
@example(serial=2958465.9999, zone="Etc/GMT-14")
@example(serial=10**400, zone="UTC")  # a JSON integer no float holds
@example(serial=-(10**400), zone="Europe/Berlin")
def test_a_serial_reads_as_it_did_before_its_faster_spelling(serial, zone):
    tz = ZoneInfo(zone)
    assert _serial_now(serial, tz) == _serial_as_written_before(serial, tz)
    read = _serial_now(serial, tz)
    if isinstance(read, datetime):
        assert read.tzinfo is UTC and read.microsecond == 0


def test_serial_across_a_dst_change_uses_that_day_offset():
    berlin = ZoneInfo("Europe/Berlin")
    summer = from_serial(46204.5, berlin)  # 2026-07-01 12:00 CEST
    winter = from_serial(46023.5, berlin)  # 2026-01-01 12:00 CET
    assert summer == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert winter == datetime(2026, 1, 1, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026/09/27 3:00:00 PM GMT+3", datetime(2026, 9, 27, 12, 0, tzinfo=UTC)),
        ("2026/09/27 12:05:00 AM GMT-5", datetime(2026, 9, 27, 5, 5, tzinfo=UTC)),
        ("2026/09/27 3:00:00 PM GMT+5:30", datetime(2026, 9, 27, 9, 30, tzinfo=UTC)),
        ("2026/09/27 3:00:00 PM GMT", datetime(2026, 9, 27, 15, 0, tzinfo=UTC)),
        ("11/22/2026 20:17:11", datetime(2026, 11, 22, 17, 17, 11, tzinfo=UTC)),
        ("22.11.2026 20:17:11", datetime(2026, 11, 22, 17, 17, 11, tzinfo=UTC)),
        ("2026-11-22T17:17:11.123456789Z", datetime(2026, 11, 22, 17, 17, 11, 123456, tzinfo=UTC)),
    ],
)
def test_text_timestamps(text, expected):
    column = TimestampColumn(ZoneInfo("Europe/Moscow"))
    column.scan([text])
    assert column.parse(text) == expected


def test_unreadable_text_timestamp_is_refused_with_a_reason():
    reader = TimestampColumn(ZoneInfo("UTC"))
    for text, reason in (("yesterday", "bad_timestamp"), ("", "missing_timestamp")):
        with pytest.raises(TimestampError) as caught:
            reader.parse(text)
        assert caught.value.reason == reason


def test_header_normalization():
    assert normalize("  Отметка   времени ") == normalize("отметка времени")
    assert normalize("Ｒａｔｉｎｇ") == "rating"  # full-width letters (NFKC)


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        # Excel turns a choice such as "1/5" into a date when it opens the export, and saves
        # it back as d-mmm text: month-first locales (en-US) write "1/5" as "5-Jan", day-first
        # ones (en-GB) as "01-May". "5-Jan" was read by its leading number as a 5.
        ("5-Jan", 1),
        ("5-Apr", 4),
        ("5-Mar", 3),
        ("01-May", 1),
        ("04-May", 4),
        ("5-May", 5),
        (" 5-feb ", 2),
    ],
)
def test_fractions_a_spreadsheet_turned_into_dates_read_as_the_fraction(cell, score):
    assert SCALE.parse(cell) == score


@pytest.mark.parametrize("cell", ["3-Apr", "12-Dec", "5-Jun", "07-Oct"])
def test_dates_that_are_no_fraction_of_the_scale_are_refused(cell):
    with pytest.raises(RatingError) as caught:
        SCALE.parse(cell)
    assert caught.value.reason == "bad_rating"
    assert cell.strip() not in caught.value.detail


def test_a_ten_point_fraction_turned_into_a_date_reads_on_a_ten_point_scale():
    ten = RatingScale(1, 10, {})
    assert ten.parse("10-Apr") == 4  # "4/10", month first
    assert ten.parse("04-Oct") == 4  # "4/10", day first
    assert ten.parse("10-Oct") == 10


def refused(cell, scale=SCALE):  # type: ignore[no-untyped-def]
    """The RatingError ``scale`` refuses ``cell`` with; its detail never quotes the cell."""
    with pytest.raises(RatingError) as caught:
        scale.parse(cell)
    assert caught.value.reason == "bad_rating"
    assert cell.strip() not in caught.value.detail
    return caught.value


@pytest.mark.parametrize(
    "cell",
    [
        # Two scores in one cell were read by the first: "4/5 - 5/5" as a 4, "5 - 3" as a 5.
        "4/5 - 5/5",
        "4/5 5/5",
        "5/5, 4/5",
        "4/5; 3",
        "4/5 - 3 of 5",
        "5/5 - 5/5",
        "4 out of 5 - 5",
        "5 - 3",
        "5 (3)",
        "4 ,5",
        "4, 5",
        "5 - 4/5",
        "3 - 4 out of 5",
        "5 - great, 4/5 speed",
    ],
)
def test_a_cell_naming_two_scores_is_refused_not_read_by_its_first(cell):
    assert "another score" in refused(cell).detail


@pytest.mark.parametrize(
    "cell",
    [
        # A second score after signs, after a word, or with a score's unit further in: each
        # was read as its first score (a 5), counted as satisfied where the second was a 1.
        "5 -> 1",
        "5 -> 1 slow reply",
        "5 → 1",
        "5 = 1",
        "5 | 1",
        "5 * 1",
        "5 [1]",
        "5 {1}",
        "5 (was 1)",
        "5 then 1",
        "5, previously 1.",
        "5 stars; 1 star",
        "5 (was 1 point)",
        "4 - 2 звезды",
        "5/5 -> 1",
        "5/5 (was 1)",
    ],
)
def test_a_second_score_after_signs_a_word_or_with_its_unit_is_refused(cell):
    assert "another score" in refused(cell).detail


@pytest.mark.parametrize(
    "cell",
    [
        # A checkbox question's ticks as a responses sheet (and its CSV) joins them: each was
        # read as its first option's score.
        "4 - Good, 5 - Excellent",
        "5 - Excellent, 1 - Awful",
        "1 – Плохо, 5 – Отлично",
        "4: good, 5: excellent",
        "4 (good), 5 (great)",
        "5 - Great, Плохо",
        "5 - Great, very satisfied, Плохо",
    ],
)
def test_a_checkbox_questions_ticks_are_refused_not_read_by_the_first(cell):
    assert "checkbox" in refused(cell).detail


@pytest.mark.parametrize(
    "cell",
    [
        # Forms' "Download responses (.csv)" joins a checkbox question's ticks with ";" (the
        # responses sheet with ", "): each was read as its first option's score.
        "4 - Good;5 - Excellent",
        "5 - Excellent;1 - Awful",
        "5 - Excellent; 1 - Awful",
        "1 – Плохо;5 – Отлично",
        "5 - Great;Плохо",
    ],
)
def test_a_checkbox_questions_ticks_joined_by_a_semicolon_are_refused(cell):
    assert "checkbox" in refused(cell).detail


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        # A comma in a label that names no other option stays the label's; one naming the
        # same score restates it.
        ("5, very good", 5),
        ("5 - Great, Very satisfied", 5),
        ("5 - fast, 2 minutes", 5),
        ("3 - Okay, 50-50", 3),
        ("2 - Плохо, долго", 2),
        ("5/5, great", 5),
        ("5 - fast; 2 minutes", 5),
        ("5 - Great; friendly", 5),
        ("5 - Great; Very satisfied", 5),
    ],
)
def test_a_comma_in_a_label_naming_no_other_option_stays_the_labels(cell, score):
    assert SCALE.parse(cell) == score


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        # A number a word follows, one past the scale and the scale's top after "out of"
        # stay a label's.
        ("5 - answered in 2 minutes", 5),
        ("5 - top 3 agent", 5),
        ("5 - best of 2024", 5),
        ("4 stars out of 5", 4),
        ("4 (out of 5)", 4),
        ("4 stars out of 5 stars", 4),
        ("4 балла из 5", 4),
        ("5 :)", 5),
        ("5 - great!!!", 5),
    ],
)
def test_a_number_a_word_follows_or_past_the_scale_stays_a_label(cell, score):
    assert SCALE.parse(cell) == score


@pytest.mark.parametrize("cell", ["4/5/", "4/5 /", "5/5/ great", "4 / 5 /", "4 of 5/"])
def test_a_fraction_with_a_further_bar_and_no_number_is_refused_as_a_chain_is(cell):
    # "4/5/" (a date or a repeated score cut short) was read by its fraction as a 4.
    assert "more than one" in refused(cell).detail


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        # A label after a fraction, after the separators a label after a number takes ("5/5,
        # great" was refused: the comma right after the fraction).
        ("5/5, great", 5),
        ("5/5,great", 5),
        ("4/5; good", 4),
        ("4/5 - good", 4),
        ("4/5 – хорошо", 4),
        ("4/5: good", 4),
        ("3/5. Average", 3),
        ("5/5 (excellent)", 5),
        ("4 out of 5, good", 4),
        ("4 из 5, хорошо", 4),
        ("5/5 great", 5),
        ("5/5!", 5),
        # A number takes the same separators.
        ("5, great", 5),
        ("4; good", 4),
        ("5 - great", 5),
        ("5 -", 5),
        ("4. good", 4),
        # A label may hold a number that is not a score.
        ("5 - answered in 2 minutes", 5),
        ("5/5, answered in 2 minutes", 5),
    ],
)
def test_a_label_after_a_fraction_reads_as_one_after_a_number(cell, score):
    assert SCALE.parse(cell) == score


@pytest.mark.parametrize("cell", ["4/5.", "4/5.5", "4/5,5", "5/5.great", "4.5", "4,5"])
def test_a_decimal_after_a_score_is_still_refused(cell):
    refused(cell)


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        # Star strings were refused as "neither a number nor a configured label".
        ("★★★★☆", 4),
        ("★★★☆☆", 3),
        ("★☆☆☆☆", 1),
        ("★★★★★", 5),
        ("★ ★ ★ ★ ☆", 4),
        (" ★★☆☆☆ ", 2),
        ("⭐⭐⭐⭐", 4),
        ("⭐", 1),
        ("⭐️⭐️⭐️", 3),  # with the emoji variation selector
        ("⭐ ⭐ ⭐ ⭐ ⭐", 5),
        ("⭐⭐⭐☆☆", 3),
        ("★★★☆☆ (3)", 3),
        ("★★★★☆ 4/5", 4),
        ("★★★★☆ - good", 4),
        ("★★★★★ Excellent", 5),
        ("4 ★★★★☆", 4),
        ("4/5 ★★★★", 4),
        ("5 - ★★★★★", 5),
    ],
)
def test_star_strings_read_as_their_filled_stars(cell, score):
    assert SCALE.parse(cell) == score


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("★★☆★", "out of order"),
        ("☆★★★★", "out of order"),
        ("★★★☆", "add up to"),  # 4 stars on a 1-5 scale: 3 of 4 or 3 of 5?
        ("★★★☆☆☆", "add up to"),
        ("★★★★★★", "more stars"),
        ("⭐⭐⭐⭐⭐⭐⭐", "more stars"),
        ("☆☆☆☆☆", "outside the scale"),
        ("★★★☆☆ (4)", "another score"),
        ("★★★☆☆ 4/5", "another score"),
        ("★★★☆☆ - 4", "another score"),
        ("5 ★★★☆☆", "another score"),
        ("4/5 ★★★★★", "another score"),
        ("3 - ★★☆★☆", "out of order"),
        ("★★★☆☆ ★★★★★", "out of order"),
    ],
)
def test_ambiguous_star_strings_are_refused_with_a_reason(cell, words):
    assert words in refused(cell).detail


def test_star_strings_on_a_ten_point_scale():
    ten = RatingScale(1, 10, {})
    assert ten.parse("★★★★★★★☆☆☆") == 7
    assert ten.parse("⭐" * 8) == 8
    assert "add up to" in refused("★★★★☆", ten).detail  # 4 of 5 is no score out of 10


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        ("5\ufe0f\u20e3", 5),  # 5️⃣ as emoji keyboards write it
        ("4\u20e3", 4),  # without the variation selector
        (" 3\ufe0f\u20e3 ", 3),
        ("5\ufe0f\u20e3 - Excellent", 5),
        ("4\ufe0f\u20e3/5\ufe0f\u20e3", 4),
        ("5\ufe0f\u20e3 ★★★★★", 5),
    ],
)
def test_keycap_digits_read_as_the_digits_they_show(cell, score):
    # A form whose choices are the keycap emoji ("1️⃣" .. "5️⃣") had every answer skipped as
    # bad_rating ("neither a number nor a configured label"), and the run ended data_error.
    assert SCALE.parse(cell) == score


@pytest.mark.parametrize(
    "cell",
    [
        "4\ufe0f\u20e3 or 5\ufe0f\u20e3",
        "4\ufe0f\u20e35\ufe0f\u20e3",
        "#\ufe0f\u20e3",
        "5\u20e3\u20e3",
    ],
)
def test_keycap_digits_follow_the_rules_of_the_digits(cell):
    assert refused(cell).reason == "bad_rating"


def test_a_keycap_ten_is_an_nps_answer_and_a_configured_keycap_label_wins():
    assert parse_nps("\U0001f51f") == 10  # 🔟
    assert parse_nps("9\ufe0f\u20e3") == 9
    assert RatingScale(1, 5, {"5\ufe0f\u20e3": 1}).parse("5\ufe0f\u20e3") == 1


def test_a_configured_label_of_stars_reads_as_configured():
    assert RatingScale(1, 5, {"★★★★☆": 5}).parse("★★★★☆") == 5


@pytest.mark.parametrize(
    "cell",
    [
        # Two scores joined by a word or a sign, a choice or a range: each was read by its
        # first number ("4 or 5" as a 4), counted as a score the respondent did not settle on.
        "4 or 5",
        "4 или 5",
        "4 либо 5",
        "4 to 5",
        "4 and 5",
        "4 и 5",
        "4 до 5",
        "4 & 5",
        "4 + 5",
        "4 vs 5",
        "4 ou 5",
        "4 oder 5",
        "4 bis 5",
        "4 o 5",
        "4 a 5",
        "4 lub 5",
        "4 OR 5",
        "4 or 5 stars",
        "4, or 5",
        "4 (or 5)",
        "4 - or 5",
        "4 or maybe 5",
        "4 или даже 5",
        "5 and 5",  # the same score twice is still two ("5/5 - 5/5" is refused)
        "4/5 or 5",
        "4/5 or 5/5",
        "4 out of 5 or 5",
        "4 из 5 или 5",
        "★★★★☆ or 5",
        "★★★★☆ и 4",
        # A number right after such a word is taken for a second score even when the label
        # meant something else: the row is skipped and reported, never counted as a 5.
        "5 and 2 minutes",
    ],
)
def test_two_scores_joined_by_a_word_are_refused_not_read_by_the_first(cell):
    assert "two scores joined" in refused(cell).detail


@pytest.mark.parametrize(
    "cell",
    [
        # A range or a choice that does not start with a score, or whose parts touch: refused
        # as "neither a number nor a label" before; the reason now says what it is.
        "between 4 and 5",
        "from 4 to 5",
        "either 4 or 5",
        "от 4 до 5",
        "entre 4 et 5",
        "4~5",
        "4..5",
        "4+5",
        "4&5",
        "4…5",
    ],
)
def test_a_range_or_choice_anywhere_is_refused_as_two_joined_scores(cell):
    assert "two scores joined" in refused(cell).detail


@pytest.mark.parametrize("cell", ["4-5", "4–5", "4 — 5", "4 -5", "4- 5", "4 - 5 stars", "4 5"])
def test_a_range_written_with_a_dash_or_a_space_is_refused_as_two_scores(cell):
    # Already refused (a second number right after the separators); pinned with the rest.
    assert "another score" in refused(cell).detail


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        # A joining word that no number follows is a label's.
        ("5 and great", 5),
        ("5 or so", 5),
        ("4 or better", 4),
        ("5 to the team", 5),
        ("5 - fast and friendly", 5),
        ("5 a great service", 5),
        ("5/5 and fast", 5),
        ("4 из 5 и быстро", 4),
        # A number further in the label is not a second score, as before.
        ("5 - answered in 2 minutes", 5),
        ("5, took 2 days and 3 calls", 5),
        # "of", "из", "de", "na" between two numbers is "out of", as decided: a score out
        # of the scale's top (Dutch "4 of 5" means "4 or 5", but English forms write it).
        ("4 of 5", 4),
        ("4 из 5", 4),
        ("4 de 5", 4),
        ("4 na 5", 4),
    ],
)
def test_a_joining_word_without_a_second_score_still_reads(cell, score):
    assert SCALE.parse(cell) == score


def test_an_nps_answer_naming_two_scores_is_refused():
    from csat_hook.sync.values import parse_nps

    with pytest.raises(RatingError) as caught:
        parse_nps("9 or 10")
    assert caught.value.reason == "bad_nps" and "two scores joined" in caught.value.detail


@pytest.mark.parametrize(
    "cell",
    [
        # A second score in words joined to a digit, or the other way round: "4 or five" was
        # read as a 4 ("four or 5" was refused as no number, and said nothing of a choice).
        "4 or five",
        "4 OR FIVE",
        "four or 5",
        "four or five",
        "4 или пять",
        "четыре или 5",
        "4 или даже пять",
        "4 or maybe five",
        "4 ou cinq",
        "4 oder fünf",
        "4 o cinco",
        "4 o cinque",
        "4 lub pięć",
        "4 tot vijf",
        "4/5 or five",
        "4 из 5 или пять",
        "★★★★☆ or five",
        "between four and five",
        "от четырёх до пяти",
        "5 and two minutes",  # as "5 and 2 minutes": a second score the reader cannot rule out
        # Half a point more: a fraction or a half in words after a joiner.
        "4 and a half",
        "4 and 1/2",
        "4 or ½",
        "4 и половина",
        "4 с половиной",
        "4 et demi",
        "4 und halb",
        "4 y medio",
        "4 e mezzo",
        "4 en een half",
        "4 i pół",
        # A decimal or a digit sign after a joiner.
        "4 or .5",
        "4 or ⁵",
    ],
)
def test_a_second_score_in_words_or_a_fraction_after_a_joiner_is_refused(cell):
    assert "two scores joined" in refused(cell).detail


@pytest.mark.parametrize(
    "cell",
    [
        # A vulgar fraction, a decimal or a number word right after the score's separators is
        # a second score as a digit there is ("4 1/2", "5 - 3"): "4 ½" and "4 .5" were read
        # as a 4, "4 - five" and "4 (five)" too.
        "4 ½",
        "4 ½ stars",
        "4 ¼",
        "4 einhalb",
        "4/5 ½",
        "4 - ½",
        "4 .5",
        "4 - .5",
        "4 - five",
        "4 (five)",
        "4, five",
        "4 five",
        "4 пять",
        "4 cinq",
        "4/5 - five",
        "4 out of 5 (five)",
        "5 - five four",  # the score in words, then another
        "5 - one of the best",  # "one" is a score: the row is skipped, never counted as 1 or 5
    ],
)
def test_a_fraction_or_a_number_word_right_after_a_score_is_refused(cell):
    assert "another score" in refused(cell).detail


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        # The score restated in words reads, as a star string that shows it does.
        ("5 - Five stars", 5),
        ("1 - one star", 1),
        ("4 (four)", 4),
        ("4/5 - four", 4),
        ("★★★★☆ four", 4),
        ("★★★★☆ (four stars)", 4),
        # A score out of the scale's top in words.
        ("4 out of five", 4),
        ("4 of five", 4),
        ("4 из пяти", 4),
        ("4 sur cinq", 4),
        ("4 OUT OF FIVE, good", 4),
        # Number words inside other words, a number word further in the label, and the
        # words that are both "one" and "a" (un, une, ein, een, um, uma, una, uno) are labels.
        ("5 - someone helped fast", 5),
        ("5 - tenfold better", 5),
        ("5 - often fast", 5),
        ("5 and done", 5),
        ("5 - fast, one call", 5),
        ("5 y un servicio rápido", 5),
        ("5 et une équipe au top", 5),
        ("5 und ein tolles Team", 5),
        ("5 en een goede service", 5),
        ("5 e uma equipe ótima", 5),
        ("5 e uno staff fantastico", 5),
        # A half in words only after a joiner: "media", "medio" are "average" right after it.
        ("3 - media", 3),
        ("3 - Medio", 3),
        ("5 - half an hour", 5),
    ],
)
def test_a_number_word_that_names_no_second_score_still_reads(cell, score):
    assert SCALE.parse(cell) == score


@pytest.mark.parametrize(("cell", "words"), [("★★★★☆ five", "disagree"), ("★★★★☆ ½", "another")])
def test_a_number_word_or_fraction_beside_stars_must_agree(cell, words):
    assert words in refused(cell).detail


def test_an_nps_answer_naming_two_scores_in_words_is_refused():
    from csat_hook.sync.values import parse_nps

    with pytest.raises(RatingError) as caught:
        parse_nps("9 or ten")
    assert caught.value.reason == "bad_nps" and "two scores joined" in caught.value.detail
    assert parse_nps("10 - ten out of ten") == 10


@pytest.mark.parametrize("cell", ["4 out of ten", "4 of ten", "4 из десяти", "3 de diez"])
def test_a_score_out_of_another_number_in_words_is_refused(cell):
    # "4 out of ten" was read by its leading number as a 4 on a 1-5 scale ("4 out of 10" not).
    assert "another number than the scale's" in refused(cell).detail


@pytest.mark.parametrize("cell", ["4 of five of five", "4/five/5", "4 из пяти из пяти"])
def test_a_chain_of_fractions_in_words_is_refused(cell):
    assert "more than one '/' or 'of' between numbers" in refused(cell).detail


def test_a_seven_point_scale_reads_its_top_in_words():
    seven = RatingScale(1, 7, {})
    assert seven.parse("6 out of seven") == 6
    assert "another number" in refused("6 out of five", seven).detail


@pytest.mark.parametrize(
    ("cell", "score"), [("4⁄5", 4), ("4 ∕ 5", 4), ("４／５", 4), ("5⁄5, great", 5)]
)
def test_a_fraction_with_another_slash_reads(cell, score):
    # The fraction slash, the division slash, the full-width slash: "4⁄5" was refused as no
    # number.
    assert SCALE.parse(cell) == score


@pytest.mark.parametrize("cell", ["4 ⁄ 10", "4 ∕ 10", "4 ／ 10", "4 ／ 5 ／ 5"])
def test_a_fraction_with_another_slash_is_refused_as_one_with_a_slash(cell):
    # "4 ⁄ 10" was read by its leading number as a 4 on a 1-5 scale.
    refused(cell)


@pytest.mark.parametrize("label", ["5 - two thumbs up", "5 - one of the best", "4 or five"])
def test_an_option_label_refused_as_two_scores_reads_once_configured(label):
    # A form's option whose words name a number is refused, never read by its first number,
    # and the reason says how to accept it: the label named in results.rating_labels.
    with pytest.raises(RatingError) as refused:
        SCALE.parse(label)
    assert "results.rating_labels" in refused.value.detail
    assert RatingScale(1, 5, {label: 5}).parse(label) == 5


# Invisible format characters (Unicode category Cf) a copy from a chat or a web page leaves
# around a choice: a zero-width space, (non-)joiner, word joiner, byte order mark, bidi marks.
_FORMAT_EDGES = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u202c"]


@pytest.mark.parametrize("mark", _FORMAT_EDGES)
def test_format_characters_around_a_rating_are_read_as_spaces_are(mark):
    assert SCALE.parse(f"4{mark}") == 4
    assert SCALE.parse(f"{mark} 4 {mark}") == 4
    assert SCALE.parse(f"{mark}Very satisfied{mark}") == 5
    assert SCALE.parse(f"5 - Very satisfied{mark}") == 5
    assert parse_nps(f"{mark}9{mark}") == 9


@pytest.mark.parametrize("mark", _FORMAT_EDGES)
def test_a_format_character_within_a_rating_never_makes_another_number(mark):
    for cell in (f"4{mark}5", f"1{mark}0", f"4{mark}/5"):
        with pytest.raises(RatingError) as caught:
            SCALE.parse(cell)
        assert caught.value.reason == "bad_rating"
    with pytest.raises(RatingError) as caught:
        parse_nps(f"1{mark}0")
    assert caught.value.reason == "bad_nps"


def test_a_cell_of_format_characters_only_is_an_empty_one():
    with pytest.raises(RatingError) as caught:
        SCALE.parse("\u200b\ufeff ")
    assert caught.value.reason == "missing_rating"
    assert parse_nps("\u200b") is None  # the optional question left unanswered


@pytest.mark.parametrize(
    "cell",
    [
        "4 stars out of 10",
        "4 (out of 10)",
        "4 - out of 10",
        "4 points of 10",
        "4 балла из 10",
        "3 баллов из десяти",
        "3 stars / 10",
        "4 pts/10",
        "3 on a scale of 10",
        "2 étoiles sur 10",
        "★★★★ out of 10",
        "4 stars out of 10 stars",
        "4 балла из 10 баллов",
        "4 stars out of 10 - good",
    ],
)
def test_a_label_naming_another_top_than_the_scales_is_refused(cell):
    # A word between the score and "out of 10" hid the top: "4 stars out of 10" read as a
    # 4 of 5 (satisfied) on a 1-5 scale, where "4 out of 10" is refused.
    with pytest.raises(RatingError) as caught:
        SCALE.parse(cell)
    assert caught.value.reason == "bad_rating"
    assert "another number than the scale's 5" in caught.value.detail


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        ("4 stars out of 5", 4),
        ("4 (out of 5)", 4),
        ("4 балла из пяти", 4),
        ("★★★★☆ out of 5", 4),
        ("5 - best of 2024", 5),
        ("5 - great, na 100%", 5),
        ("5 - solved in one go", 5),
    ],
)
def test_a_label_naming_the_scales_top_or_no_top_still_reads(cell, score):
    assert SCALE.parse(cell) == score


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        ("5 - atención de 10 minutos", 5),
        ("5 - atención de diez minutos", 5),
        ("4 - espera de 2 horas", 4),
        ("5 - service of 10 minutes", 5),
        ("5 - excellent, out of 10 agents the best", 5),
        ("3: ответ из 2 строк", 3),
    ],
)
def test_a_number_a_word_follows_in_a_label_is_no_top(cell, score):
    # "de 10 minutos" counts minutes: it was read as the top the score is out of, and a
    # form's option "5 - atención de 10 minutos" refused as a score out of 10.
    assert SCALE.parse(cell) == score


@pytest.mark.parametrize(
    "cell", ["10 - atención de 10 minutos", "6 - service of 10 minutes", "0 - espera de 2 horas"]
)
def test_a_leading_number_outside_the_scale_is_still_refused_whatever_its_label(cell):
    with pytest.raises(RatingError) as caught:
        SCALE.parse(cell)
    assert caught.value.reason == "bad_rating"
    assert "outside the scale 1..5" in caught.value.detail


@pytest.mark.parametrize(
    "cell",
    [
        # A score whose label is a configured label of another score: a form numbering its
        # options the other way round ("1 - Very satisfied" ... "5 - Плохо") was read by the
        # number, each satisfied answer credited as the scale's worst.
        "1 - Very satisfied",
        "1 – very  SATISFIED",
        "2 (Отлично)",
        "5 - Плохо",
        "5: плохо.",
        "1/5 - Very satisfied",
        "1 - Very satisfied, fast",
        "1 - Very satisfied; fast",
        "★☆☆☆☆ Very satisfied",
    ],
)
def test_a_score_whose_label_is_a_configured_label_of_another_score_is_refused(cell):
    assert "configured label of another score" in refused(cell).detail


@pytest.mark.parametrize(
    ("cell", "score"),
    [
        ("5 - Very satisfied", 5),
        ("2 (плохо)", 2),
        ("5/5 - Отлично", 5),
        ("★★★★★ Very satisfied", 5),
        ("1 - Very satisfied with nothing", 1),  # a label of its own, not the configured one
    ],
)
def test_a_score_whose_label_agrees_or_is_no_configured_label_is_read(cell, score):
    assert SCALE.parse(cell) == score


def test_a_disagreeing_option_named_whole_in_the_labels_is_read_by_its_label():
    # The way out the refusal names: the option itself as a label.
    reversed_form = RatingScale(1, 5, {"Very satisfied": 5, "1 - Very satisfied": 5})
    assert reversed_form.parse("1 - Very satisfied") == 5


def test_the_built_in_labels_do_not_judge_a_label_on_another_scale():
    # The built-in labels are the five-point scale's: on a 1-10 scale "10 - Very satisfied"
    # is the form's own option, read as 10; labels set for that scale do judge.
    from csat_hook.sync.config import MetricsConfig
    from csat_hook.sync.config import ResultsConfig

    ten = MetricsConfig(scale_min=1, scale_max=10, top_box=9, low_rating=2)
    built_in = RatingScale.from_config(ResultsConfig(), ten)
    assert built_in.parse("10 - Very satisfied") == 10
    # Alone it is no score on this scale (a 5 of 10 was a detractor's): skipped, saying so.
    assert "built-in label of the 1–5 scale" in refused("Very satisfied", built_in).detail
    five = RatingScale.from_config(ResultsConfig(), MetricsConfig())
    assert "configured label" in refused("1 - Very satisfied", five).detail
    own = RatingScale.from_config(ResultsConfig(rating_labels={"Very satisfied": 10}), ten)
    assert "configured label" in refused("1 - Very satisfied", own).detail
    assert own.parse("10 - Very satisfied") == 10
