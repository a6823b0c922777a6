"""Text timestamps in every layout Google Forms, Google Sheets and Apps Script write.

``fixtures/timestamp_samples.csv`` holds 98 observed or CLDR-inferred strings, each with the
exact UTC instant it must give (rechecked by hand with zoneinfo when collected);
``fixtures/timestamp_samples_invalid.csv`` holds values that must be refused, with the reason.
The context column names the zone (the first ``Area/City``) and, for a sheet saved as CSV,
the spreadsheet locale, which gives the day/month order.
"""

from __future__ import annotations

import csv
import re
from datetime import UTC
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from csat_hook.sync.timestamps import TimestampColumn
from csat_hook.sync.timestamps import TimestampError
from csat_hook.sync.timestamps import TimestampReader
from csat_hook.sync.timestamps import abbreviation_zone
from csat_hook.sync.timestamps import locale_date_order

FIXTURES = Path(__file__).parent / "fixtures"


def _rows(name: str) -> list[dict[str, str]]:
    with (FIXTURES / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


SAMPLES = _rows("timestamp_samples.csv")
INVALID = _rows("timestamp_samples_invalid.csv")
LOCALE = re.compile(r"\b([a-z]{2}_[A-Z]{2})\b")


def context(text: str) -> tuple[ZoneInfo, str | None]:
    zone = re.search(r"\b([A-Z][A-Za-z_]+/[A-Za-z_]+)\b", text)
    locale = LOCALE.search(text)
    return ZoneInfo(zone.group(1) if zone else "UTC"), locale.group(1) if locale else None


def iso(instant: datetime) -> str:
    text = instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{instant.microsecond:06d}" if instant.microsecond else "") + "Z"


def test_the_fixtures_are_complete():
    assert len(SAMPLES) == 98 and len(INVALID) == 10


@pytest.mark.parametrize("row", SAMPLES, ids=[r["text"] for r in SAMPLES])
def test_every_sample_gives_its_exact_instant(row):
    zone, locale = context(row["zone_context"])
    column = TimestampColumn(zone, locale=locale)
    column.scan([row["text"]])
    assert iso(column.parse(row["text"])) == row["expected_utc_iso"]


@pytest.mark.parametrize("row", INVALID, ids=[r["text"] or "blank" for r in INVALID])
def test_invalid_samples_are_refused_with_their_reason(row):
    reader = TimestampReader(ZoneInfo(row["zone_context"]), date_order=row["date_order"] or None)
    with pytest.raises(TimestampError) as caught:
        reader.parse(row["text"])
    # The fixture calls a blank cell "empty"; rows call it missing_timestamp.
    expected = {"empty": "missing_timestamp"}.get(row["expected_reason"], row["expected_reason"])
    assert caught.value.reason == expected


def test_a_whole_forms_export_in_each_layout_gives_the_same_instants():
    """One set of instants written as each producer writes it: all read back identically."""
    instants = [
        datetime(2025, 1, 1, 0, 30, tzinfo=UTC),
        datetime(2025, 7, 13, 22, 5, 9, tzinfo=UTC),
    ]
    instants += [datetime(2025, 3, d, 12, 0, 1, tzinfo=UTC) for d in range(1, 13)]
    chicago = ZoneInfo("America/Chicago")

    def forms_abbreviation(i: datetime) -> str:
        t = i.astimezone(chicago)
        marker = "AM" if t.hour < 12 else "PM"
        return f"{t:%Y/%m/%d} {t.hour % 12 or 12}:{t:%M:%S} {marker} {t.tzname()}"

    def forms_gmt_es(i: datetime) -> str:
        t = i.astimezone(chicago)
        marker = "a.\u202fm." if t.hour < 12 else "p.\u202fm."
        offset = int(t.utcoffset().total_seconds() // 3600)
        return f"{t:%Y/%m/%d} {t.hour % 12 or 12}:{t:%M:%S} {marker} GMT{offset:+d}"

    def sheets_en_us(i: datetime) -> str:
        t = i.astimezone(chicago)
        return f"{t.month}/{t.day}/{t.year} {t.hour}:{t:%M:%S}"

    def apps_script(i: datetime) -> str:
        t = i.astimezone(chicago)
        offset = t.strftime("%z")
        return f"{t:%a %b %d %Y %H:%M:%S} GMT{offset} (Central Time)"

    def iso_z(i: datetime) -> str:
        return i.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    for layout in (forms_abbreviation, forms_gmt_es, sheets_en_us, apps_script, iso_z):
        values = [layout(i) for i in instants]
        column = TimestampColumn(chicago)
        column.scan(values)
        assert [column.parse(v) for v in values] == instants, layout.__name__


def test_the_day_month_order_is_settled_by_the_column_never_guessed():
    london = ZoneInfo("Europe/London")
    values = ["03/04/2025 10:00:00", "25/04/2025 10:00:00"]
    column = TimestampColumn(london)
    column.scan(values)
    assert column.parse(values[0]) == datetime(2025, 4, 3, 9, 0, tzinfo=UTC)  # 3 April

    alone = TimestampColumn(london)
    alone.scan(values[:1])
    with pytest.raises(TimestampError) as caught:
        alone.parse(values[0])
    assert caught.value.reason == "ambiguous_date_order"
    assert "results.csv.date_order" in caught.value.detail

    configured = TimestampColumn(london, configured="MDY")
    configured.scan(values[:1])
    assert configured.parse(values[0]) == datetime(2025, 3, 4, 10, 0, tzinfo=UTC)

    by_locale = TimestampColumn(london, locale="en_GB")
    by_locale.scan(values[:1])
    assert by_locale.parse(values[0]) == datetime(2025, 4, 3, 9, 0, tzinfo=UTC)

    mixed = TimestampColumn(london)
    mixed.scan(["25/04/2025 10:00:00", "04/25/2025 10:00:00", "2025/04/25 10:00:00"])
    for value in ("25/04/2025 10:00:00", "03/04/2025 10:00:00"):
        with pytest.raises(TimestampError) as caught:
            mixed.parse(value)
        assert caught.value.reason == "mixed_date_order"
    assert mixed.parse("2025/04/25 10:00:00") == datetime(2025, 4, 25, 9, 0, tzinfo=UTC)

    dots = TimestampColumn(london)
    dots.scan(["03.04.2025 10:00"])
    assert dots.parse("03.04.2025 10:00") == datetime(2025, 4, 3, 9, 0, tzinfo=UTC)


def test_a_configured_order_wins_over_contradicting_dates_and_says_so():
    column = TimestampColumn(ZoneInfo("UTC"), configured="MDY")
    column.scan(["25/04/2025 10:00:00", "04/05/2025 10:00:00"])
    assert column.parse("04/05/2025 10:00:00") == datetime(2025, 4, 5, 10, 0, tzinfo=UTC)
    with pytest.raises(TimestampError) as caught:
        column.parse("25/04/2025 10:00:00")
    assert caught.value.reason == "bad_timestamp"
    assert any("date_order is MDY" in w for w in column.warnings)


def test_dst_gap_refused_overlap_first_occurrence_counted():
    chicago = TimestampReader(ZoneInfo("America/Chicago"), date_order="MDY")
    assert chicago.parse("11/2/2025 1:30:00") == datetime(2025, 11, 2, 6, 30, tzinfo=UTC)
    assert chicago.parse("11/2/2025 1:45:00") == datetime(2025, 11, 2, 6, 45, tzinfo=UTC)
    assert sum(n for w, n in chicago.warnings.items() if "first occurrence" in w) == 2
    with pytest.raises(TimestampError) as caught:
        chicago.parse("3/9/2025 2:15:00")
    assert caught.value.reason == "nonexistent_local_time"
    # An abbreviation or an offset settles the repeated hour exactly.
    assert chicago.parse("2025/11/02 1:30:00 AM CST") == datetime(2025, 11, 2, 7, 30, tzinfo=UTC)


def test_abbreviations_configured_zone_first_then_configuration_then_table():
    chicago = ZoneInfo("America/Chicago")
    kolkata = TimestampReader(ZoneInfo("Asia/Kolkata"))
    assert kolkata.parse("2025/09/09 12:28:23 AM IST") == datetime(
        2025, 9, 8, 18, 58, 23, tzinfo=UTC
    )
    configured = TimestampReader(
        chicago,
        abbreviations={"IST": abbreviation_zone("+05:30"), "XYZT": abbreviation_zone("Asia/Dubai")},
    )
    assert configured.parse("2025/07/15 4:00:00 PM IST") == datetime(
        2025, 7, 15, 10, 30, tzinfo=UTC
    )
    assert configured.parse("2025/07/15 4:00:00 PM XYZT") == datetime(
        2025, 7, 15, 12, 0, tzinfo=UTC
    )
    # EST is always −5, also where the configured zone says EDT on that date: a warning.
    new_york = TimestampReader(ZoneInfo("America/New_York"))
    assert new_york.parse("2025/09/08 3:47:14 AM EST") == datetime(
        2025, 9, 8, 8, 47, 14, tzinfo=UTC
    )
    assert any("EST is not what America/New_York is called" in w for w in new_york.warnings)
    cancun = TimestampReader(ZoneInfo("America/Cancun"))
    cancun.parse("2025/09/08 3:47:14 AM EST")
    assert not cancun.warnings
    # AST has several meanings: Atlantic (−4) is Google's English usage, with a warning.
    utc = TimestampReader(ZoneInfo("UTC"))
    assert utc.parse("2025/09/08 3:47:14 AM AST") == datetime(2025, 9, 8, 7, 47, 14, tzinfo=UTC)
    assert any("AST has several meanings" in w for w in utc.warnings)
    with pytest.raises(ValueError, match="neither an offset"):
        abbreviation_zone("Mars/Olympus")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025/09/08 13:58", datetime(2025, 9, 8, 13, 58, tzinfo=UTC)),
        ("2025/09/08 1:58 PM", datetime(2025, 9, 8, 13, 58, tzinfo=UTC)),
        ("2025/09/08 12:00:00 AM", datetime(2025, 9, 8, 0, 0, tzinfo=UTC)),
        ("2025/09/08 12:00:00 PM", datetime(2025, 9, 8, 12, 0, tzinfo=UTC)),
        ("２０２５/０９/０８ １３:５８", datetime(2025, 9, 8, 13, 58, tzinfo=UTC)),
        ("2025/09/08 1:58:00 PM GMT\u200e+3", datetime(2025, 9, 8, 10, 58, tzinfo=UTC)),
        ("2025/09/08 1:58:00 PM UTC+5.30", datetime(2025, 9, 8, 8, 28, tzinfo=UTC)),
        ("2025/09/08 1:58:00 PM -3 GMT", datetime(2025, 9, 8, 16, 58, tzinfo=UTC)),
        ("2025/9/8 GMT+8 13:58:00", datetime(2025, 9, 8, 5, 58, tzinfo=UTC)),
        ("2025/09/08 1:58:00 PM SEČ", datetime(2025, 9, 8, 12, 58, tzinfo=UTC)),
        ("2025/09/08 1:58:00 μ.μ. GMT+3", datetime(2025, 9, 8, 10, 58, tzinfo=UTC)),
    ],
)
def test_more_variants(text, expected):
    assert TimestampReader(ZoneInfo("UTC")).parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025/09/09 午前0:05:12 JST", datetime(2025, 9, 8, 15, 5, 12, tzinfo=UTC)),
        ("2025/09/09 午後0:30:00 JST", datetime(2025, 9, 9, 3, 30, tzinfo=UTC)),
        ("2025/09/09 0:30:00 PM", datetime(2025, 9, 9, 3, 30, tzinfo=UTC)),
        ("2025/09/09 午後11:59:59", datetime(2025, 9, 9, 14, 59, 59, tzinfo=UTC)),
    ],
)
def test_a_twelve_hour_clock_from_zero(text, expected):
    """Japanese counts a 12-hour clock's hours 0-11 (CLDR ja "aK:mm:ss"): the half hour after
    noon is 午後0:30, not 午後12:30. The hour 0 was refused with a marker, so every answer
    of the hour after midnight and of the lunch hour was a bad_timestamp row."""
    assert TimestampReader(ZoneInfo("Asia/Tokyo")).parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7 декабря 2026 г. 19:05:12", datetime(2026, 12, 7, 16, 5, 12, tzinfo=UTC)),
        ("07 дек. 2026 19:05", datetime(2026, 12, 7, 16, 5, tzinfo=UTC)),
        ("3 мая 2026 г., 9:05:12", datetime(2026, 5, 3, 6, 5, 12, tzinfo=UTC)),
        ("7 сент. 2026 19:05:12 UTC", datetime(2026, 9, 7, 19, 5, 12, tzinfo=UTC)),
        ("Dec 7, 2026 7:05:12 PM", datetime(2026, 12, 7, 16, 5, 12, tzinfo=UTC)),
        ("7 December 2026 19:05 GMT+5", datetime(2026, 12, 7, 14, 5, tzinfo=UTC)),
    ],
)
def test_a_month_written_as_a_word(text, expected):
    """A custom date format saved as CSV spells the month (Russian or English): the word
    settles day and month, and such a column was every row bad_timestamp."""
    assert TimestampReader(ZoneInfo("Europe/Moscow")).parse(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("07.12.2026 19:05:12 +03:00", datetime(2026, 12, 7, 16, 5, 12, tzinfo=UTC)),
        ("07.12.2026 19:05:12 -0500", datetime(2026, 12, 8, 0, 5, 12, tzinfo=UTC)),
        ("12/7/2026 7:05:12 PM +0000", datetime(2026, 12, 7, 19, 5, 12, tzinfo=UTC)),
    ],
)
def test_a_bare_utc_offset_after_any_date_layout(text, expected):
    """An offset without GMT/UTC after a dotted or slashed date (PHP's "d.m.Y H:i:s P",
    strftime's %z) is the offset, as after an ISO date; it was bad_timestamp."""
    assert TimestampReader(ZoneInfo("Asia/Tokyo"), date_order="MDY").parse(text) == expected


def test_a_bare_utc_offset_keeps_the_configured_layout_that_read_it():
    """A results.csv.timestamp_formats layout with %z read these values before the built-in
    layouts read a bare offset: its day/month order still decides them, in a column whose
    days are all 12 or less (they were refused as ambiguous_date_order)."""
    values = ["09/08/2025 13:58:23 +0300", "01/12/2025 09:00:00 +0300"]
    column = TimestampColumn(ZoneInfo("Europe/Moscow"), extra_formats=["%d/%m/%Y %H:%M:%S %z"])
    column.scan(values)
    assert [column.parse(v) for v in values] == [
        datetime(2025, 8, 9, 10, 58, 23, tzinfo=UTC),
        datetime(2025, 12, 1, 6, 0, tzinfo=UTC),
    ]


@pytest.mark.parametrize("text", ["07.12.2026 19:05:12 +03:60", "07.12.2026 19:05:12 +15:00"])
def test_a_bare_utc_offset_out_of_range_is_bad_timestamp(text):
    with pytest.raises(TimestampError) as caught:
        TimestampReader(ZoneInfo("Asia/Tokyo")).parse(text)
    assert caught.value.reason == "bad_timestamp"


@pytest.mark.parametrize(
    "text", ["7 Mai 2026 19:05", "7 Augenblick 2026 19:05", "31 февраля 2026 19:05"]
)
def test_a_word_that_is_no_month_is_bad_timestamp(text):
    with pytest.raises(TimestampError) as caught:
        TimestampReader(ZoneInfo("Europe/Moscow")).parse(text)
    assert caught.value.reason == "bad_timestamp"


@pytest.mark.parametrize(
    "text",
    [
        "13:47",
        "2025/09/08",
        "2025/09/08 25:00:00",
        "2025/09/08 13:30:00 PM",
        "1/2/345 10:00",
        "2025/09/08 1:58:00 PM GMT+15",
        "Mon Foo 08 2025 13:58:23 GMT-0500",
        "x" * 200,
    ],
)
def test_garbage_is_bad_timestamp(text):
    with pytest.raises(TimestampError) as caught:
        TimestampReader(ZoneInfo("UTC"), date_order="DMY").parse(text)
    assert caught.value.reason == "bad_timestamp"


def test_extra_formats_are_tried_last():
    reader = TimestampReader(ZoneInfo("Europe/Moscow"), extra_formats=["%d %b %Y, %H.%M"])
    assert reader.parse("08 Sep 2025, 21.58") == datetime(2025, 9, 8, 18, 58, tzinfo=UTC)
    with pytest.raises(TimestampError) as caught:
        reader.parse("someday")
    assert "results.csv.timestamp_formats" in caught.value.detail


def test_extra_format_zone_name_is_the_zone():
    """A layout's %Z is the zone the text names: strptime drops it (a naive time), so
    "19:05:12 UTC" was read as 19:05 in Moscow, three hours early, without a word."""
    # A layout no built-in reads (a month word is read by the built-in layouts since
    # READING_VERSION 20: "Dec 07 2026 19:05:12 UTC" tested them, not the layout).
    reader = TimestampReader(
        ZoneInfo("Europe/Moscow"), extra_formats=["%Y%m%d %H%M%S %Z", "%Y%m%d %H%M%S"]
    )
    assert reader.parse("20261207 190512 UTC") == datetime(2026, 12, 7, 19, 5, 12, tzinfo=UTC)
    assert reader.parse("20261207 190512 EST") == datetime(2026, 12, 8, 0, 5, 12, tzinfo=UTC)
    assert reader.parse("20261207 190512 MSK") == datetime(2026, 12, 7, 16, 5, 12, tzinfo=UTC)
    assert reader.parse("20261207 190512") == datetime(2026, 12, 7, 16, 5, 12, tzinfo=UTC)
    with pytest.raises(TimestampError) as caught:
        reader.parse("20261207 190512 XYZ")
    assert caught.value.reason == "unknown_tz_abbreviation"
    # As a built-in layout's EST: not Moscow's name, said; UTC, no zone's name, is not.
    assert [w.split()[0] for w in reader.warnings] == ["EST"]


def test_locale_date_orders():
    assert locale_date_order("en_US") == "MDY"
    assert locale_date_order("en_GB") == "DMY"
    assert locale_date_order("ru_RU") == "DMY"
    assert locale_date_order("pt_BR") == "DMY"
    assert locale_date_order("ja_JP") is None
    assert locale_date_order(None) is None


@pytest.mark.parametrize(
    "text",
    [
        "2026/12/05 3:47:14 PM GMT+3:60",
        "2026/12/05 3:47:14 PM GMT-2:75",
        "2026-12-05T15:47:14+03:60",
        "Sat Dec 05 2026 15:47:14 GMT+0399 (Moscow Standard Time)",
    ],
)
def test_an_offset_whose_minutes_are_not_00_to_59_is_refused(text):
    # "GMT+3:60" was read as UTC+4: which offset was meant is unclear.
    with pytest.raises(TimestampError) as caught:
        TimestampReader(ZoneInfo("UTC")).parse(text)
    assert caught.value.reason == "bad_timestamp"


def test_a_configured_offset_whose_minutes_are_not_00_to_59_is_refused():
    with pytest.raises(ValueError, match="minutes must lie within 00-59"):
        abbreviation_zone("+03:75")
    assert abbreviation_zone("+05:45").utcoffset(None).total_seconds() == 5 * 3600 + 45 * 60


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-07t19:05:12z",
        "2026-12-07T19:05:12z",
        "2026-12-07t19:05:12Z",
        "2026-12-07t19:05:12.250z",
        "2026-12-07t22:05:12+03:00",
    ],
)
def test_rfc3339_lowercase_t_and_z_read_as_the_forms_api_reads_them(text):
    """RFC 3339 allows "t" and "z" (section 5.6, note): the Forms API's reader read them, a
    CSV's or a sheet's cell of the same text was refused as bad_timestamp."""
    from csat_hook.sync.sources.forms_api import parse_rfc3339

    expected = datetime(2026, 12, 7, 19, 5, 12, 250_000 if ".250" in text else 0, tzinfo=UTC)
    assert parse_rfc3339(text) == expected
    column = TimestampColumn(ZoneInfo("Europe/Moscow"))
    column.scan([text])
    assert column.parse(text) == expected
    assert TimestampReader(ZoneInfo("America/New_York")).parse(text) == expected
