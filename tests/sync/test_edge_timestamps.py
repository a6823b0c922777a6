"""A timestamp at the edge of what a date-time can hold (a serial of 1e10, year 9999 behind
UTC, year 1 ahead of it) is one skipped row, ``bad_timestamp``: the run goes on and the
other rows are credited, on this run and on every later one."""

from __future__ import annotations

import csv
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from csat_hook.cli.sync import print_sync
from csat_hook.db.schema import alerts
from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.sync.sources.base import RowParser
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID
from tests.sync.test_attribution import at

# Sheets cells: serials and text; the sheet's zone is Europe/Moscow (UTC+3).
SHEET_STAMPS: list[Any] = [
    1e10,
    3_000_000,
    2958465.9999999,  # 9999-12-31 23:59:59.99 rounds up to year 10000
    -693594,  # before year 1
    "9999-12-31T23:59:59-05:00",
    "0001-01-01 00:00:00",  # wall time in Moscow: before year 1 in UTC
    "1/1/0001 00:00:00",
    "Fri, 31 Dec 9999 23:59:59 -0500",
    "Fri Dec 31 9999 23:59:59 GMT-0500 (Eastern Standard Time)",
    "Mon Jan 01 00:00:00 GMT+05:00 0001",
    "0001/01/01 12:00:00 AM MSK",
]
# CSV cells, read in results.csv.timezone (Asia/Tokyo: UTC+9).
CSV_STAMPS = [
    "9999-12-31T23:59:59-05:00",
    "0001-01-01 00:00:00",
    "0001/01/01 1:47:14 AM GMT+3",
    "9999/12/31 11:59:59 PM EST",
    "Fri, 31 Dec 9999 23:59:59 -0500",
    "01.01.0001 00:00:00",
]


def _skipped(kit) -> list[tuple[str, str]]:
    with kit.engine.connect() as conn:
        rows = conn.execute(
            sa.select(sync_skipped_rows.c.source_ref, sync_skipped_rows.c.reason)
        ).all()
    return sorted((ref, reason) for ref, reason in rows)


def test_sheet_cells_beyond_the_date_range_are_skipped_rows(kit):
    token = kit.survey("T-1", "7", "Anna Petrova")
    rows = [[at(1), 5, "ok", "Anna", "T-1", token]]
    rows += [[stamp, 2, "x", "Anna", "T-1", token] for stamp in SHEET_STAMPS]
    kit.responses([EN_HEADER, *rows])
    config = kit.config(results={"min_skipped_rows": 100})  # judged below, not a data_error
    for _ in range(2):
        summary = kit.run(config)
        assert summary.status == "ok", summary.error
        assert summary.skipped == {"bad_timestamp": len(SHEET_STAMPS)}
        assert len(kit.rows(answers)) == 1
        assert _skipped(kit) == sorted(
            (f"row {n}", "bad_timestamp") for n in range(3, 3 + len(SHEET_STAMPS))
        )


def test_csv_cells_beyond_the_date_range_are_skipped_rows(kit, tmp_path: Path):
    token = kit.survey("T-1", "7", "Anna Petrova")
    lines = ["Timestamp,Rating,Comment,Agent,Ticket,Reference"]
    lines.append(f"2026/11/19 3:47:14 PM GMT+3,5,ok,Anna,T-1,{token}")
    lines += [f'"{stamp}",2,x,Anna,T-1,{token}' for stamp in CSV_STAMPS]
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = kit.config(
        results={
            "source": "csv",
            "csv": {"path": str(export), "timezone": "Asia/Tokyo", "date_order": "DMY"},
            "min_skipped_rows": 100,
        },
        output={"gsheets": {"enabled": False}},
    )
    for _ in range(2):
        summary = kit.run(config)
        assert summary.status == "ok", summary.error
        assert summary.skipped == {"bad_timestamp": len(CSV_STAMPS)}
        assert len(kit.rows(answers)) == 1


@pytest.mark.parametrize("stamp", ["1e10", "nan"])
def test_a_serial_json_number_of_any_size_is_a_skipped_row(kit, stamp):
    """Sheets sends numbers as JSON; Python's parser also reads ``NaN``."""
    token = kit.survey("T-1", "7", "Anna Petrova")
    good, bad = [at(1), 5, "ok", "Anna", "T-1", token], [at(2), 2, "x", "Anna", "T-1", token]
    kit.responses([EN_HEADER, good, bad])
    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 2, 0, float(stamp))
    summary = kit.run(kit.config(results={"min_skipped_rows": 100}))
    assert summary.status == "ok", summary.error
    assert summary.skipped == {"bad_timestamp": 1}


@pytest.mark.parametrize(
    ("zone", "stamp"),
    [("America/New_York", "0001-01-01 03:00:00 UTC"), ("Asia/Tokyo", "9999-12-31 20:00:00 UTC")],
)
def test_an_answer_the_reports_time_zone_cannot_show_does_not_fail_the_report(
    kit, tmp_path, zone, stamp, monkeypatch
):
    """An instant within UTC's range but not within ``metrics.timezone``'s (year 1 seen from
    New York, 9999 from Tokyo) is credited, and every report failed converting it to local
    time ("internal error (OverflowError at sync/report/common.py)", and at
    alerts/report.py for the Alerts tab of the 9999 one's low-rating alert), run after run.
    It is shown as its UTC time. Such a row is skipped now (``implausible_timestamp``), but
    an answer credited before that stays credited: the rows are read here as they were."""
    monkeypatch.setattr(RowParser, "_implausible", lambda _self, _at: "")
    receivers = FakeNotify().start()
    try:
        _cannot_show(kit, tmp_path, zone, stamp, receivers)
    finally:
        receivers.stop()


def _cannot_show(kit, tmp_path: Path, zone: str, stamp: str, receivers: FakeNotify) -> None:
    token, other = kit.survey("T-1", "7", "Anna Petrova"), kit.survey("T-2", "7", "Anna Petrova")
    lines = ["Timestamp,Rating,Comment,Agent,Ticket,Reference"]
    lines.append(f"2026/11/19 3:47:14 PM GMT+3,5,ok,Anna,T-1,{token}")
    lines.append(f"{stamp},2,x,Anna,T-2,{other}")
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = kit.config(
        results={"source": "csv", "csv": {"path": str(export)}},
        metrics={"timezone": zone},
        output={"gsheets": {"enabled": False}, "local": {"enabled": True}},
        alerts={
            "destinations": {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}},
            "rules": [
                {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
            ],
        },
    )
    for _ in range(2):
        summary = kit.run(config)
        assert summary.status == "ok", summary.error
    assert sorted(r.dialog_id for r in kit.rows(answers)) == ["T-1", "T-2"]
    with (tmp_path / "report" / "answers.csv").open(encoding="utf-8-sig") as handle:
        shown = {row["Ticket"]: row for row in csv.DictReader(handle)}
    assert shown["T-2"][f"Submitted ({zone})"] == stamp.removesuffix(":00 UTC")
    if stamp.startswith("9999"):  # recent enough to alert (year 1 is too old)
        assert len(kit.rows(alerts)) == 1
        sheet = load_workbook(tmp_path / "report" / "csat-report.xlsx")["Alerts"]
        header = [c.value for c in sheet[1]]
        row = [c.value for c in sheet[2]]
        shown_at = datetime.fromisoformat(stamp.removesuffix(" UTC"))  # a date-time cell
        assert row[header.index(f"Submitted ({zone})")] == shown_at


def test_a_submission_dated_after_now_is_credited_with_a_warning(kit):
    """A row dated after now (a year typed wrong by hand, a clock or a zone setting that is
    off) is credited as read, and so outranks every later submission of its survey until that
    time: the run that reads it says so, naming the row (the run said ``ok`` and nothing else,
    and the Summary's "Latest answer" showed 2099). Google's own clock may run a little ahead
    of ours: within the watermark's skew nothing is said. More than a day ahead (a year typed
    wrong: 2099) the row is skipped (test_sheet_times_before_2000_or_beyond_tomorrow_...)."""
    token, other = kit.survey("T-1", "7", "Anna Petrova"), kit.survey("T-2", "8", "Boris Ivanov")
    kit.responses(
        [
            EN_HEADER,
            [at(1), 5, "ok", "Anna", "T-1", token],
            [kit.now + timedelta(hours=3), 1, "typo", "Anna", "T-1", token],
            [kit.now + timedelta(minutes=4), 4, "skew", "Boris", "T-2", other],
        ]
    )
    summary = kit.run()
    assert summary.status == "ok", summary.error
    assert summary.new == 2 and summary.history_only == 1
    future = [w for w in summary.warnings if "after now" in w]
    assert len(future) == 1 and future[0].startswith("row 3: submitted after now"), future
    assert "typo" not in future[0]  # the time is shown, never a comment
    # A row added below (a read of the added rows alone) is judged the same way.
    third = kit.survey("T-3", "9", "Chen Wei")
    kit.fake.append_rows(
        SHEET_ID, "Form Responses 1", [[kit.now + timedelta(hours=5), 2, "", "", "", third]]
    )
    again = kit.run()
    assert (again.status, again.read, again.new) == ("ok", "appended", 1), again.error
    assert [w[:26] for w in again.warnings if "after now" in w] == ["row 5: submitted after now"]


def test_many_submissions_dated_after_now_are_one_warning_and_the_read_is_remembered(kit):
    """A zone setting that is off dates every recent row after now: one warning names the
    first row and counts the rest, so the run's outcome stays small enough to remember and
    the next run with nothing new replays it instead of reading every row again."""
    rows = [EN_HEADER]
    for n in range(300):
        token = kit.survey(f"T-{n}", "7", "Anna Petrova")
        rows.append([kit.now + timedelta(hours=2, minutes=n), 5, "", "", "", token])
    kit.responses(rows)
    summary = kit.run()
    future = [w for w in summary.warnings if "after now" in w]
    assert len(future) == 1 and future[0].startswith("row 2 and 299 more rows:"), future
    assert kit.run().read == "replayed"


def test_a_replayed_read_does_not_say_again_that_rows_were_submitted_after_now(kit):
    """The warning is the crediting run's: a replay of that read said again, every run, that
    the rows were "submitted after now" and "credited", days after that time and with nothing
    credited; a read of every row meets them unchanged and says nothing."""
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses([EN_HEADER, [kit.now + timedelta(hours=3), 5, "", "", "", token]])
    first = kit.run()
    assert first.new == 1 and [w for w in first.warnings if "after now" in w], first.warnings
    kit.now += timedelta(days=2)
    again = kit.run()
    assert again.read == "replayed", again.read
    assert not [w for w in again.warnings if "after now" in w], again.warnings
    assert not [w for w in kit.run(full=True).warnings if "after now" in w]


@pytest.mark.parametrize(
    ("locale", "typed", "reason"),
    [
        ("en_US", ["11/22/2026 20:17:11", "22/11/2026 20:17:11"], "mixed_date_order"),
        ("xx_XX", ["11/03/2026 20:17:11", "11/04/2026 20:17:11"], "ambiguous_date_order"),
    ],
)
def test_a_sheets_text_date_order_problem_names_no_csv_setting(kit, locale, typed, reason):
    """Dates typed as text into a responses sheet in both orders (or in a locale that says
    no order): each row's reason said "set results.csv.date_order", which a sheet's read
    never consults; the sheet itself is what to change."""
    tokens = [kit.survey(f"T-{n}", "7", "Anna Petrova") for n in range(3)]
    rows = [[at(1), 5, "ok", "Anna", "T-0", tokens[0]]]
    rows += [[when, 4, "", "Anna", f"T-{n}", tokens[n]] for n, when in enumerate(typed, 1)]
    kit.responses([EN_HEADER, *rows], locale=locale)
    summary = kit.run(kit.config(results={"min_skipped_rows": 100}))
    assert (summary.status, summary.new, summary.skipped) == ("ok", 1, {reason: 2})
    details = [row["detail"] for row in summary.skipped_rows]
    assert len(details) == 2
    for detail in details:
        assert "results.csv" not in detail
        assert "Format" in detail  # the sheet's Format → Number


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("2026/11/02 3:00:00 PM IST", "ambiguous_tz_abbreviation"),
        ("2026/11/02 3:00:00 PM XYZT", "unknown_tz_abbreviation"),
        ("3/29/2026 2:30:00", "nonexistent_local_time"),  # Berlin's clocks went forward
        ("46348.5", "bad_timestamp"),  # a serial typed as text
    ],
)
def test_a_sheets_text_time_zone_problem_names_no_csv_setting(kit, typed, reason):
    """A time typed as text into a responses sheet whose zone is not settled: the reason said
    to set results.csv.timezone or results.csv.timezone_abbreviations (or to format the column
    before saving the file as CSV), which a sheet's read never consults, so the row stayed
    skipped whatever the operator set; the sheet itself is what to change."""
    tokens = [kit.survey(f"T-{n}", "7", "Anna Petrova") for n in range(2)]
    rows = [[at(1), 5, "ok", "Anna", "T-0", tokens[0]], [typed, 4, "", "Anna", "T-1", tokens[1]]]
    kit.responses([EN_HEADER, *rows], time_zone="Europe/Berlin")
    summary = kit.run(kit.config(results={"min_skipped_rows": 100}))
    assert (summary.status, summary.new, summary.skipped) == ("ok", 1, {reason: 1})
    detail = summary.skipped_rows[0]["detail"]
    assert "results.csv" not in detail and "as CSV" not in detail, detail
    assert "spreadsheet's time zone" in detail or "Format → Number" in detail, detail


def _summary_rows(summary) -> list[tuple[str, str]]:
    return sorted((row["row"], row["reason"]) for row in summary.skipped_rows)


def test_sheet_times_before_2000_or_beyond_tomorrow_are_implausible_skipped_rows(kit):
    """A number in the timestamp column (0, a small serial: 1899/1900), a date before 2000 or
    one more than a day after the run's time (9999-12-31, a year typed wrong) was credited,
    and the 9999 one alerted as current and outranked every later submission of its survey.
    Each is a skipped row, ``implausible_timestamp``, with the run's own clock; a row a few
    hours ahead (a zone or clock a little off) is still credited, with the warning."""
    tokens = [kit.survey(f"T-{n}", "7", "Anna Petrova") for n in range(8)]
    rows = [
        [at(1), 5, "ok", "Anna", "T-0", tokens[0]],
        [0, 1, "", "Anna", "T-1", tokens[1]],
        [5, 1, "", "Anna", "T-2", tokens[2]],
        ["1999-12-31 23:00:00", 1, "", "Anna", "T-3", tokens[3]],
        [2958465, 1, "", "Anna", "T-4", tokens[4]],  # 9999-12-31 in the sheet's zone
        [kit.now + timedelta(days=2), 1, "", "Anna", "T-5", tokens[5]],
        [kit.now + timedelta(hours=12), 4, "", "Anna", "T-6", tokens[6]],
        ["2000-01-02 00:00:00", 3, "", "Anna", "T-7", tokens[7]],
    ]
    kit.responses([EN_HEADER, *rows])
    config = kit.config(results={"min_skipped_rows": 100})
    for _ in range(2):
        summary = kit.run(config)
        assert summary.status == "ok", summary.error
        assert summary.skipped == {"implausible_timestamp": 5}
        assert sorted(r.dialog_id for r in kit.rows(answers)) == ["T-0", "T-6", "T-7"]
        assert kit.rows(alerts) == []
    assert _summary_rows(summary) == [(f"row {n}", "implausible_timestamp") for n in range(3, 8)]
    details = {row["row"]: row["detail"] for row in summary.skipped_rows}
    assert "before 2000-01-01" in details["row 3"]
    assert "1899-12-29" in details["row 3"]  # Moscow's mean time then: UTC+2:30
    assert "more than a day after" in details["row 6"]
    assert _skipped(kit) == [(f"row {n}", "implausible_timestamp") for n in range(3, 8)]
    # Judged as the other skips are: a large share is the run's data_error, with the fix.
    failed = kit.run(kit.config(results={"min_skipped_rows": 1, "max_skipped_share": 0.1}))
    assert failed.status == "data_error"
    assert "implausible_timestamp" in (failed.error or "")


def test_the_window_follows_the_runs_clock(kit):
    """A row dated two days ahead is skipped; once the run's clock gets there it is read."""
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses([EN_HEADER, [kit.now + timedelta(days=2), 4, "", "Anna", "T-1", token]])
    config = kit.config(results={"min_skipped_rows": 100})
    assert kit.run(config).skipped == {"implausible_timestamp": 1}
    kit.now += timedelta(days=2)
    later = kit.run(config)
    assert (later.status, later.new, later.skipped) == ("ok", 1, {}), later.error
    assert _skipped(kit) == []


def test_csv_times_before_2000_or_beyond_tomorrow_are_implausible_skipped_rows(kit, tmp_path: Path):
    token = kit.survey("T-1", "7", "Anna Petrova")
    lines = ["Timestamp,Rating,Comment,Agent,Ticket,Reference"]
    lines.append(f"2026/11/19 3:47:14 PM GMT+3,5,ok,Anna,T-1,{token}")
    lines.append(f"1970-01-01 00:00:00,2,x,Anna,T-1,{token}")
    lines.append(f"9999-12-30 00:00:00,2,x,Anna,T-1,{token}")
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = kit.config(
        results={
            "source": "csv",
            "csv": {"path": str(export), "timezone": "Asia/Tokyo"},
            "min_skipped_rows": 100,
        },
        output={"gsheets": {"enabled": False}},
    )
    summary = kit.run(config)
    assert summary.status == "ok", summary.error
    assert summary.skipped == {"implausible_timestamp": 2}
    assert [r.rating for r in kit.rows(answers)] == [5]


def test_a_csv_read_in_the_default_zone_says_so(kit, tmp_path: Path):
    """A responses sheet saved as CSV writes wall-clock time without a zone; with
    results.csv.timezone left out it is read as UTC, and a sheet kept in New York had every
    answer five hours early while the run said "ok" and nothing else. The run says which
    setting to give (the time is the default's reading, as documented); given, even as UTC,
    or with times that carry their zone, nothing is said."""
    token = kit.survey("T-1", "7", "Anna Petrova")
    export = tmp_path / "export.csv"
    header = "Timestamp,Rating,Comment,Agent,Ticket,Reference"

    def run(stamp: str, csv_options: dict[str, str]) -> list[str]:
        export.write_text(f'{header}\n"{stamp}",5,ok,Anna,T-1,{token}\n', encoding="utf-8")
        config = kit.config(
            results={"source": "csv", "csv": {"path": str(export), **csv_options}},
            output={"gsheets": {"enabled": False}},
        )
        summary = kit.run(config, full=True)
        assert summary.status == "ok", summary.error
        return [w for w in summary.warnings if "results.csv.timezone" in w]

    said = run("11/19/2026 13:58:23", {"date_order": "MDY"})
    assert len(said) == 1 and said[0].startswith("export.csv: timestamps without a time zone")
    assert "ok" not in said[0].split(":")[0] and "13:58" not in said[0]
    assert not run("11/19/2026 13:59:23", {"date_order": "MDY", "timezone": "UTC"})
    assert not run("2026/11/19 1:59:24 PM GMT-5", {})


def test_answers_dated_before_their_survey_was_sent_are_counted(kit, tmp_path: Path, capsys):
    """A sheet kept in New York saved as CSV, read under results.csv.timezone Moscow: every
    answer is dated eight hours early, before its survey was sent; credited in its survey's
    period (the cohort is the send time), but the run said "ok" and nothing else while the
    alerts, the digests and the tabs showed every time eight hours off. The run counts them
    and names the first row; an answer a few minutes early (Google's clock) is not counted."""
    sent = kit.now - timedelta(hours=2)
    early = kit.survey("T-1", "7", "Anna Petrova", created=sent)
    skew = kit.survey("T-2", "7", "Anna Petrova", created=sent)
    export = tmp_path / "export.csv"
    answered = sent.astimezone(ZoneInfo("America/New_York")) + timedelta(hours=1)
    skewed = sent.astimezone(ZoneInfo("Europe/Moscow")) - timedelta(minutes=3)
    export.write_text(
        "Timestamp,Rating,Comment,Agent,Ticket,Reference\n"
        f"{answered:%m/%d/%Y %H:%M:%S},5,ok,Anna,T-1,{early}\n"
        f"{skewed:%m/%d/%Y %H:%M:%S},4,,Anna,T-2,{skew}\n",
        encoding="utf-8",
    )
    config = kit.config(
        results={
            "source": "csv",
            "csv": {"path": str(export), "timezone": "Europe/Moscow", "date_order": "MDY"},
        },
        output={"gsheets": {"enabled": False}},
    )
    summary = kit.run(config)
    assert summary.status == "ok", summary.error
    assert summary.new == 2
    assert summary.before_sent == 1
    assert summary.before_sent_first == {"row": "row 2", "minutes": 7 * 60}
    print_sync(summary, False)
    said = capsys.readouterr().out
    assert "1 answers dated before their survey was sent (the first: row 2, 7 h before)" in said
    again = kit.run(config)  # said by the run that reads them, not by every run after
    assert again.before_sent == 0 and again.before_sent_first is None


def test_answers_dated_before_their_survey_was_sent_are_counted_once(kit, tmp_path: Path):
    """before_sent counts what is new in a run, as new and updated do: an edit of an answer
    counted so (a comment fixed in the sheet) and a read of every row that credits it again
    counted it again every time, telling the operator of the same answers run after run. An
    edit that makes an answer so dated (it was not) is counted."""
    sent = kit.now - timedelta(hours=2)
    early = kit.survey("T-1", "7", "Anna Petrova", created=sent)
    later = kit.survey("T-2", "7", "Anna Petrova", created=sent)
    export = tmp_path / "export.csv"
    zone = ZoneInfo("Europe/Moscow")
    before = (sent - timedelta(hours=7)).astimezone(zone)
    after = (sent + timedelta(hours=1)).astimezone(zone)

    def write(comment: str, second: datetime) -> None:
        export.write_text(
            "Timestamp,Rating,Comment,Agent,Ticket,Reference\n"
            f"{before:%m/%d/%Y %H:%M:%S},5,{comment},Anna,T-1,{early}\n"
            f"{second:%m/%d/%Y %H:%M:%S},4,,Anna,T-2,{later}\n",
            encoding="utf-8",
        )

    write("ok", after)
    config = kit.config(
        results={
            "source": "csv",
            "csv": {"path": str(export), "timezone": "Europe/Moscow", "date_order": "MDY"},
        },
        output={"gsheets": {"enabled": False}},
    )
    first = kit.run(config)
    assert (first.new, first.before_sent) == (2, 1)
    write("fixed", after)  # the early answer's comment edited in place
    edited = kit.run(config)
    assert (edited.updated, edited.edited_in_place) == (1, 1)
    assert (edited.before_sent, edited.before_sent_first) == (0, None)
    assert kit.run(config, full=True).before_sent == 0
    write("fixed", before)  # the other answer's time edited to before it was sent
    moved = kit.run(config)
    assert moved.updated == 1 and moved.before_sent == 1
    assert moved.before_sent_first == {"row": "row 3", "minutes": 7 * 60}
