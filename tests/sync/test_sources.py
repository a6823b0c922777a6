"""Results sources: the responses sheet (en_US and ru_RU), a CSV export, the Forms API."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest

from csat_hook.errors import ConfigError
from csat_hook.errors import GoogleApiError
from csat_hook.errors import SourceConfigError
from csat_hook.errors import SourceError
from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.records import FROM_FIELDS
from csat_hook.sync.records import Submission
from csat_hook.sync.skips import remedy
from csat_hook.sync.sources.csv_export import CsvResults
from csat_hook.sync.sources.forms_api import FormsApiResults
from csat_hook.sync.sources.gsheets import GSheetsResults
from csat_hook.sync.values import RatingScale
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import RU_HEADER
from tests.sync.conftest import SHEET_ID

LABELS = {"Very satisfied": 5, "Satisfied": 4, "Отлично": 5, "Хорошо": 4, "Плохо": 2}
SCALE = RatingScale(1, 5, LABELS)
COLUMNS = ColumnsConfig()


def msk(*args: int) -> datetime:
    """A Moscow wall-clock time, as aware UTC (Moscow is UTC+3 all year)."""
    return datetime(*args, tzinfo=UTC).replace(hour=args[3] - 3)


def gsheets(session, gid=0, name=None, columns=COLUMNS) -> GSheetsResults:
    return GSheetsResults(
        SheetsApi(session), SHEET_ID, sheet_gid=gid, sheet_name=name, columns=columns, ratings=SCALE
    )


def test_en_us_sheet_with_blank_rows_labels_and_a_bad_rating(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID, locale="en_US", time_zone="Europe/Moscow")
    fake_google.add_tab(
        SHEET_ID,
        "Form Responses 1",
        [
            EN_HEADER,
            [msk(2026, 11, 2, 15, 4, 5), 5, "Great", "Anna", "T-1", "tok-1"],
            [],
            [msk(2026, 11, 3, 9, 0, 0), "Satisfied", "", "Anna", "T-2", "tok-2"],
            [msk(2026, 11, 4, 9, 0, 0), "ten out of ten", "=SUM(1)", "Boris", "T-3", "tok-3"],
            ["", "", "", "", "", ""],
            [msk(2026, 11, 5, 9, 0, 0), 7, "", "Boris", "T-4", "tok-4"],
            ["", 4, "typed by hand, no timestamp"],
        ],
        sheet_id=0,
    )
    batch = gsheets(google_session).fetch(set(), None)

    assert batch.rows_read == 7 and batch.blank_rows == 2
    first, second = batch.submissions
    assert first.submitted_at == datetime(2026, 11, 2, 12, 4, 5, tzinfo=UTC)
    assert (first.rating, first.comment, first.token, first.field_agent, first.field_ticket) == (
        5,
        "Great",
        "tok-1",
        "Anna",
        "T-1",
    )
    assert (second.ref, second.rating) == ("row 4", 4)
    assert [(s.ref, s.reason) for s in batch.skipped] == [
        ("row 5", "bad_rating"),
        ("row 7", "bad_rating"),
        ("row 8", "missing_timestamp"),
    ]
    # One metadata read, one batchGet with unformatted values and serial date-times.
    reads = fake_google.api_requests("sheets_read")
    assert [r["path"] for r in reads] == [
        f"/v4/spreadsheets/{SHEET_ID}",
        f"/v4/spreadsheets/{SHEET_ID}/values:batchGet",
    ]
    assert reads[1]["query"]["valueRenderOption"] == ["UNFORMATTED_VALUE"]
    assert reads[1]["query"]["dateTimeRenderOption"] == ["SERIAL_NUMBER"]
    assert reads[1]["query"]["ranges"] == ["'Form Responses 1'"]


def test_ru_ru_sheet_found_by_gid_with_localized_headers(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID, locale="ru_RU", time_zone="Asia/Yekaterinburg")
    fake_google.add_tab(SHEET_ID, "Лист1", [["x"]], sheet_id=0)
    fake_google.add_tab(
        SHEET_ID,
        "Ответы на форму (1)",
        [
            RU_HEADER,
            [datetime(2026, 11, 2, 10, 0, tzinfo=UTC), "Отлично", "Спасибо!", "Анна", "T-1", "t1"],
            [datetime(2026, 11, 2, 11, 0, tzinfo=UTC), "хорошо", "", "Анна", "T-2", "t2"],
            [datetime(2026, 11, 2, 12, 0, tzinfo=UTC), "Плохо", "", "Борис", "T-3", "t3"],
        ],
        sheet_id=1234567,
    )
    batch = gsheets(google_session, gid=1234567).fetch(set(), None)

    assert [(s.rating, s.token) for s in batch.submissions] == [(5, "t1"), (4, "t2"), (2, "t3")]
    # The serial is Yekaterinburg wall-clock time; read back, it is the same instant.
    assert batch.submissions[0].submitted_at == datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    assert batch.submissions[0].comment == "Спасибо!"


def test_tab_by_name_and_a_missing_tab_names_the_key(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Form Responses 2", [EN_HEADER], sheet_id=55)
    batch = gsheets(google_session, gid=None, name="form responses 2").fetch(set(), None)
    assert batch.rows_read == 0

    with pytest.raises(SourceConfigError) as by_gid:
        gsheets(google_session, gid=99).fetch(set(), None)
    assert "results.gsheets.sheet_gid" in by_gid.value.message
    assert "'Form Responses 2' (gid 55)" in by_gid.value.message
    with pytest.raises(SourceConfigError) as by_name:
        gsheets(google_session, gid=None, name="Ответы").fetch(set(), None)
    assert "results.gsheets.sheet_name" in by_name.value.message


def test_duplicate_renamed_extra_and_missing_headers(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID, time_zone="UTC")
    stamp = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    fake_google.add_tab(
        SHEET_ID,
        "Form Responses 1",
        [
            # A deleted-and-re-added rating question gives two "Rating" columns; the comment
            # question was renamed; a manager added "Follow-up"; there is no ticket column.
            ["Timestamp", "Rating", "Reference", "Rating", "Your comment", "Follow-up"],
            [stamp, 2, "old-row", "", "before", "called back"],
            [stamp, "", "new-row", 5, "after", ""],
            [stamp, 1, "both", 4, "", ""],
        ],
        sheet_id=0,
    )
    columns = ColumnsConfig(comment=["Comment", "Your comment"])
    batch = gsheets(google_session, columns=columns).fetch(set(), None)

    assert [(s.token, s.rating, s.comment) for s in batch.submissions] == [
        ("old-row", 2, "before"),
        ("new-row", 5, "after"),
    ]
    # Rated in both: which is the form's answer is unclear (the rightmost was read, a guess).
    assert [(s.ref, s.reason) for s in batch.skipped] == [("row 4", "ambiguous_columns")]
    assert "columns B and D, titled 'Rating'" in batch.skipped[0].detail
    assert all(s.field_ticket == "" for s in batch.submissions)
    assert any("results.columns.rating" in w for w in batch.warnings)

    fake_google.spreadsheets.clear()
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Form Responses 1", [["Timestamp", "Score", "Reference"]])
    # The titles are configuration: a missing one is a configuration error (exit 2).
    with pytest.raises(ConfigError) as missing:
        gsheets(google_session).fetch(set(), None)
    assert missing.value.message.startswith("results.columns.rating: ")
    assert "'Timestamp', 'Score', 'Reference'" in missing.value.message


def test_known_rows_are_not_returned_again_and_notes_do_not_make_rows_new(
    fake_google, google_session
):
    fake_google.add_spreadsheet(SHEET_ID, time_zone="UTC")
    stamp = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    fake_google.add_tab(
        SHEET_ID,
        "Form Responses 1",
        [
            [*EN_HEADER, "Notes"],
            [stamp, 5, "a", "", "", "t1"],
            [stamp, 4, "b", "", "", "t2"],
        ],
        sheet_id=0,
    )
    source = gsheets(google_session)
    first = source.fetch(set(), None)
    known = {s.fingerprint for s in first.submissions}
    fake_google.set_cell(SHEET_ID, "Form Responses 1", 1, 6, "manager note")
    fake_google.append_rows(SHEET_ID, "Form Responses 1", [[stamp, 3, "c", "", "", "t3"]])
    second = source.fetch(known, None)
    assert second.unchanged == 2
    assert [s.token for s in second.submissions] == ["t3"]


def test_csv_export_with_offsets_quotes_and_newlines(tmp_path: Path):
    path = tmp_path / "responses.csv"
    path.write_text(
        "\ufeffTimestamp,Rating,Comment,Reference\n"
        '2026/09/27 3:00:00 PM GMT+3,5,"Line one\nline two, with comma",t1\n'
        "2026/09/27 11:59:59 PM GMT-5,Very satisfied,,t2\n"
        ",,,\n"
        "27.09.2026 10:00:00,4,=cmd|' /C calc'!A0,t3\n",
        encoding="utf-8",
    )
    source = CsvResults(
        path,
        timezone="Europe/Moscow",
        encoding="utf-8-sig",
        delimiter=",",
        timestamp_formats=["%Y/%m/%d %I:%M:%S %p", "%d.%m.%Y %H:%M:%S"],
        columns=COLUMNS,
        ratings=SCALE,
    )
    batch = source.fetch(set(), None)
    one, two, three = batch.submissions
    assert one.submitted_at == datetime(2026, 9, 27, 12, 0, tzinfo=UTC)
    assert one.comment == "Line one\nline two, with comma"
    assert (two.submitted_at, two.rating) == (datetime(2026, 9, 28, 4, 59, 59, tzinfo=UTC), 5)
    assert three.submitted_at == datetime(2026, 9, 27, 7, 0, tzinfo=UTC)  # Moscow wall clock
    assert (batch.blank_rows, three.ref) == (1, "row 5")


def test_missing_csv_is_a_config_error_naming_the_key(tmp_path: Path):
    source = CsvResults(
        tmp_path / "nope.csv",
        timezone="UTC",
        encoding="utf-8",
        delimiter=",",
        timestamp_formats=[],
        columns=COLUMNS,
        ratings=SCALE,
    )
    with pytest.raises(ConfigError) as caught:
        source.fetch(set(), None)
    assert caught.value.message.startswith("results.csv.path:")


def text_answer(question: str, value: str) -> dict:
    return {"questionId": question, "textAnswers": {"answers": [{"value": value}]}}


def response(n: int, when: str, rating: str = "5", token: str | None = None) -> dict:
    """A FormResponse as forms.responses.list returns it (answers keyed by questionId)."""
    return {
        "responseId": f"ACYDBN{n}",
        "createTime": when,
        "lastSubmittedTime": when,
        "answers": {
            "aa11": text_answer("aa11", rating),
            "bb22": text_answer("bb22", token or f"tok-{n}"),
        },
    }


def test_forms_api_pages_watermark_and_edits(fake_google, google_session):
    fake_google.add_form(
        "form-1", [response(i, f"2026-11-0{i + 1}T10:00:00.123456789Z") for i in range(5)]
    )
    source = FormsApiResults(
        FormsApi(google_session),
        "form-1",
        question_ids={"rating": "aa11", "token": "bb22"},
        page_size=2,
        overlap_seconds=3600,
        ratings=SCALE,
    )
    first = source.fetch(set(), None)
    assert sorted(s.token for s in first.submissions) == [f"tok-{i}" for i in range(5)]
    # The row as read, kept for an answer that cannot be credited, made from the fields
    # when asked for (no copy of each response's texts is held with it): the submission
    # time in RFC 3339 to the microsecond (Google writes nanoseconds) and each answer by its
    # role; the responseId is the submission's ref.
    third = next(s for s in first.submissions if s.token == "tok-2")
    assert third.ref == "response ACYDBN2"
    assert third.cells is FROM_FIELDS
    assert third.source_row() == {
        "lastSubmittedTime": "2026-11-03T10:00:00.123456Z",
        "rating": "5",
        "token": "tok-2",
    }
    assert first.watermark == datetime(2026, 11, 5, 10, 0, 0, 123456, tzinfo=UTC)
    assert fake_google.count("forms_read") == 3  # 5 responses, pages of 2
    assert "filter" not in fake_google.api_requests("forms_read")[0]["query"]

    # Response 4 is edited (same id, later submission); a new one arrives.
    fake_google.add_form(
        "form-1",
        [response(i, f"2026-11-0{i + 1}T10:00:00Z") for i in range(4)]
        + [response(4, "2026-11-06T08:00:00Z", rating="2"), response(5, "2026-11-06T09:00:00Z")],
    )
    fake_google.reset_requests()
    known = {s.fingerprint for s in first.submissions}
    second = source.fetch(known, first.watermark)
    query = fake_google.api_requests("forms_read")[0]["query"]
    assert query["filter"] == ["timestamp >= 2026-11-05T09:00:00Z"]  # watermark − overlap
    assert sorted((s.token, s.rating) for s in second.submissions) == [("tok-4", 2), ("tok-5", 5)]
    assert second.watermark == datetime(2026, 11, 6, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "hours"),
    [
        ("GMT-07:00", -7),
        ("GMT+03:00", 3),
        ("GMT+14:00", 14),
        ("GMT", 0),
        # Minutes too (a Java time zone id, as Apps Script's setSpreadsheetTimeZone takes):
        # "GMT+05:30" was refused as unknown, and every run of the spreadsheet with it.
        ("GMT+05:30", 5.5),
        ("GMT-03:30", -3.5),
        ("GMT+05:45", 5.75),
        ("GMT+5:30", 5.5),
    ],
)
def test_a_spreadsheet_custom_gmt_time_zone_is_its_offset(fake_google, google_session, zone, hours):
    # Sheets gives "a custom time zone such as GMT-07:00" when it does not recognise the
    # spreadsheet's (SpreadsheetProperties.timeZone): every run of such a sheet failed.
    fake_google.add_spreadsheet(SHEET_ID, time_zone=zone)
    serial = (datetime(2026, 11, 2, 10, 0) - datetime(1899, 12, 30)).total_seconds() / 86400
    rows = [EN_HEADER, [serial, 5, "", "", "", "t1"], ["11/2/2026 11:00:00", 4, "", "", "", "t2"]]
    fake_google.add_tab(SHEET_ID, "Form Responses 1", rows, sheet_id=0)
    batch = gsheets(google_session).fetch(set(), None)
    offset = timedelta(hours=hours)
    assert [s.submitted_at for s in batch.submissions] == [
        datetime(2026, 11, 2, 10, 0, tzinfo=UTC) - offset,
        datetime(2026, 11, 2, 11, 0, tzinfo=UTC) - offset,
    ]


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "Europe", "x" * 300, "GMT+15:00", "GMT+05:60", "GMT-14:30"]
)
def test_a_spreadsheet_time_zone_unknown_here_is_a_source_error(fake_google, google_session, zone):
    # "Europe" is a folder of the zone database and a 300-character name is longer than a
    # file name may be: ZoneInfo raised IsADirectoryError / OSError, not the SourceError.
    fake_google.add_spreadsheet(SHEET_ID, time_zone=zone)
    rows = [EN_HEADER, ["11/2/2026 10:00:00", 5]]  # text: the fake makes no serial of it
    fake_google.add_tab(SHEET_ID, "Form Responses 1", rows, sheet_id=0)
    with pytest.raises(SourceError, match=r"time zone .* is unknown here"):
        gsheets(google_session).fetch(set(), None)


def test_a_sheet_whose_header_row_was_deleted_is_refused_without_its_cells(
    fake_google, google_session
):
    # Row 1 is an answer (a serial submission time): its comment and reference were listed
    # as the "headers found".
    fake_google.add_spreadsheet(SHEET_ID, time_zone="Europe/Moscow")
    rows = [
        [msk(2026, 11, 2, 15, 4, 5), 5, "call me at +7 900", "Anna", "T-1", "tok-secret-1"],
        [msk(2026, 11, 3, 9, 0, 0), 4, "", "Anna", "T-2", "tok-2"],
    ]
    fake_google.add_tab(SHEET_ID, "Form Responses 1", rows, sheet_id=0)
    with pytest.raises(ConfigError) as caught:
        gsheets(google_session).fetch(set(), None)
    assert "the header row is missing" in caught.value.message
    assert "tok-secret-1" not in caught.value.message
    assert "+7 900" not in caught.value.message


def test_a_forms_row_as_read_is_made_from_the_submission_fields():
    headers = ("lastSubmittedTime", "rating", "comment", "token", "agent", "ticket", "nps")
    submission = Submission(
        fingerprint="r2-x",
        ref="response ACYDBN9",
        submitted_at=datetime(2026, 11, 3, 13, 0, 0, 5, tzinfo=timezone(timedelta(hours=3))),
        rating=4,
        comment="Долго ждал",
        token="not.a-token",
        field_agent="Anna",
        field_ticket="",
        headers=headers,
        cells=FROM_FIELDS,
        nps=9,
    )
    assert submission.source_row() == {
        "lastSubmittedTime": "2026-11-03T10:00:00.000005Z",
        "rating": "4",
        "comment": "Долго ждал",
        "token": "not.a-token",
        "agent": "Anna",
        "nps": "9",
    }
    # Only the roles the form asks (the headers), in their order.
    asked = submission._replace(headers=("lastSubmittedTime", "token", "rating"))
    assert list(asked.source_row()) == ["lastSubmittedTime", "token", "rating"]
    # An erased submission (sync/ingest.py) keeps no row, as before.
    assert submission._replace(headers=(), cells=()).source_row() == {}


def test_a_forms_row_as_read_holds_only_text_a_database_stores(fake_google, google_session):
    # The fields are made storable when read (NUL dropped, a lone surrogate replaced): the
    # row made from them is too, as the row of a sheet is (test_unstorable_cells.py).
    hostile = response(0, "2026-11-01T10:00:00Z", token="tok\x00-\ud800.x")
    hostile["answers"]["cc33"] = text_answer("cc33", "bad\x00 \udfff service")
    fake_google.add_form("form-2", [hostile])
    source = FormsApiResults(
        FormsApi(google_session),
        "form-2",
        question_ids={"rating": "aa11", "token": "bb22", "comment": "cc33"},
        page_size=5,
        overlap_seconds=3600,
        ratings=SCALE,
    )
    [submission] = source.fetch(set(), None).submissions
    row = submission.source_row()
    assert set(row) == {"lastSubmittedTime", "rating", "token", "comment"}
    text = repr(row)
    assert "\\x00" not in text and "\\ud800" not in text and "\\udfff" not in text
    for value in row.values():
        value.encode("utf-8")  # no lone surrogate left


class _Tab:
    """A SheetsApi whose responses tab holds ``rows`` as given (shapes Google never sends)."""

    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def metadata(self, spreadsheet_id: str) -> dict[str, Any]:
        tab = {"properties": {"sheetId": 0, "title": "Form Responses 1"}}
        return {"properties": {"timeZone": "UTC", "locale": "en_US"}, "sheets": [tab]}

    def read_tab_bytes(self, spreadsheet_id: str, title: str) -> bytes:
        ranges = [{"range": title, "majorDimension": "ROWS", "values": self.rows}]
        return json.dumps({"spreadsheetId": spreadsheet_id, "valueRanges": ranges}).encode()


def tab_source(rows: list[Any], ratings: RatingScale = SCALE) -> GSheetsResults:
    """A sheet source over a responses tab that holds ``rows`` as given (:class:`_Tab`)."""
    return GSheetsResults(
        _Tab(rows),  # type: ignore[arg-type]
        SHEET_ID,
        sheet_gid=0,
        sheet_name=None,
        columns=COLUMNS,
        ratings=ratings,
    )


@pytest.mark.parametrize("row", [{"a": 1}, 5, None])
def test_a_row_of_the_tab_that_is_not_a_list_fails_the_read_naming_it(row):
    """Sheets never sends one (a proxy's or a fake's): it was an internal error."""
    header = ["Timestamp", "Rating", "Reference"]
    source = tab_source([header, [46337.5, 5, "tok"], row])
    with pytest.raises(GoogleApiError) as refused:
        source.fetch(set(), None)
    assert "values.batchGet: row 3 of the tab is not a list" in str(refused.value)


def test_format_characters_around_the_rating_reference_and_ticket_are_not_read(tmp_path: Path):
    path = tmp_path / "responses.csv"
    path.write_text(
        "Timestamp,Rating,Ticket,Reference\n"
        "2026/09/27 15:00:00,4\u200b,\u2060T-7\u200b,\ufefft1\u200d\n"
        "2026/09/27 16:00:00,4\u200b5,T-8,t2\n",
        encoding="utf-8",
    )
    source = CsvResults(
        path,
        timezone="UTC",
        encoding="utf-8",
        delimiter=",",
        timestamp_formats=["%Y/%m/%d %H:%M:%S"],
        columns=COLUMNS,
        ratings=SCALE,
    )
    batch = source.fetch(set(), None)
    (one,) = batch.submissions
    assert (one.rating, one.field_ticket, one.token) == (4, "T-7", "t1")
    assert [(s.ref, s.reason) for s in batch.skipped] == [("row 3", "bad_rating")]


def test_a_forms_response_dated_before_2000_or_beyond_tomorrow_is_an_implausible_skip(
    fake_google, google_session
):
    fake_google.add_form(
        "form-1",
        [
            response(1, "2026-11-02T10:00:00Z"),
            response(2, "1970-01-01T00:00:00Z"),
            response(3, "9999-12-31T10:00:00Z"),
            response(4, "2026-11-06T10:00:00Z"),  # two days after the read's time
        ],
    )
    source = FormsApiResults(
        FormsApi(google_session),
        "form-1",
        question_ids={"rating": "aa11", "token": "bb22"},
        page_size=10,
        overlap_seconds=3600,
        ratings=SCALE,
    )
    source.read_at(datetime(2026, 11, 4, 10, 0, tzinfo=UTC))
    batch = source.fetch(set(), None)
    assert [s.token for s in batch.submissions] == ["tok-1"]
    skipped = sorted((s.ref, s.reason, s.role) for s in batch.skipped)
    assert skipped == [
        (f"response ACYDBN{n}", "implausible_timestamp", "timestamp") for n in (2, 3, 4)
    ]
    # Read at a later time, the response two days ahead is the answer it is.
    source.read_at(datetime(2026, 11, 6, 9, 0, tzinfo=UTC))
    assert sorted(s.token for s in source.fetch(set(), None).submissions) == ["tok-1", "tok-4"]


def test_a_formula_error_in_a_cell_is_skipped_as_one_naming_it(tmp_path: Path):
    """A formula's error (#N/A, #REF!, #VALUE!) in the timestamp, rating or NPS column was
    "not a date-time layout" or "not a configured label", and a run failing on them said to
    add a layout or a label. A reference that is one is still an unverified answer."""
    header = ["Timestamp", "Rating", "Reference", "NPS"]
    columns = ColumnsConfig(nps=["NPS"])
    rows = [
        header,
        ["#REF!", 5, "tok-1"],
        [46337.5, "#N/A", "tok-2"],
        [46337.5, " #value! ", "tok-3"],
        [46337.5, 5, "tok-4", "#DIV/0!"],
        [46337.5, "#N/A - 5", "tok-5"],  # text beginning so: no formula's error
    ]
    source = tab_source(rows)
    source.columns = columns
    batch = source.fetch(set(), None)
    assert [(s.ref, s.reason, s.role) for s in batch.skipped] == [
        ("row 2", "formula_error", "timestamp"),
        ("row 3", "formula_error", "rating"),
        ("row 4", "formula_error", "rating"),
        ("row 5", "formula_error", "nps"),
        ("row 6", "bad_rating", "rating"),
    ]
    assert batch.skipped[0].detail.startswith("the cell shows a formula's error (#REF!)")
    assert batch.skipped[2].detail.startswith("the cell shows a formula's error (#VALUE!)")
    fix = remedy("formula_error", "gsheets")
    assert fix.startswith("the cells show a formula's error") and "rating_labels" not in fix
    assert remedy("formula_error", "csv") == fix

    # The same text as a Forms answer is a respondent's, no formula's.
    form = FormsApiResults(
        FormsApi(None),  # type: ignore[arg-type]
        "f",
        question_ids={"rating": "r", "token": "t"},
        page_size=10,
        overlap_seconds=0,
        ratings=SCALE,
    )
    answers = {"r": text_answer("r", "#N/A"), "t": text_answer("t", "tok")}
    form.api.list_responses = lambda *a, **k: iter(  # type: ignore[method-assign]
        [{"responseId": "x", "lastSubmittedTime": "2026-11-05T10:00:00Z", "answers": answers}]
    )
    [skipped] = form.fetch(set(), None).skipped
    assert skipped.reason == "bad_rating"
