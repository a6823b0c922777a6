"""The fake Google API behaves like the real one where it matters (shapes and errors as
recorded from Google), driven by gspread's own high-level calls."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime

import gspread
import pytest
import requests

from csat_hook.devtools.fake_google import FakeGoogle
from csat_hook.errors import GoogleApiError
from csat_hook.sync.google.api import SheetCell
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.google.api import sheet_cells
from tests.sync.conftest import SHEET_ID


@pytest.fixture
def gc(fake_google, google_session) -> gspread.Client:
    return gspread.Client(auth=None, session=google_session)


def test_gspread_reads_what_the_fake_serves(fake_google, gc):
    fake_google.add_spreadsheet(SHEET_ID, locale="ru_RU", time_zone="Europe/Moscow")
    fake_google.add_tab(
        SHEET_ID,
        "Ответы на форму (1)",
        [
            ["Отметка времени", "Оценка", "Сумма"],
            [datetime(2026, 11, 22, 17, 17, 11, tzinfo=UTC), 5, 4.5],
            [],
            ["", "Отлично"],
        ],
        sheet_id=7,
    )
    sheet = gc.open_by_key(SHEET_ID)
    assert (sheet.timezone, sheet.locale) == ("Europe/Moscow", "ru_RU")
    ws = sheet.get_worksheet_by_id(7)
    # FORMATTED_VALUE (gspread's default): locale formatting, trailing blanks trimmed.
    assert ws.get_all_values() == [
        ["Отметка времени", "Оценка", "Сумма"],
        ["22.11.2026 20:17:11", "5", "4,5"],
        ["", "", ""],
        ["", "Отлично", ""],
    ]
    raw = sheet.values_get(
        "'Ответы на форму (1)'",
        params={"valueRenderOption": "UNFORMATTED_VALUE", "dateTimeRenderOption": "SERIAL_NUMBER"},
    )
    assert raw["range"] == "'Ответы на форму (1)'!A1:Z1000"  # the full grid is echoed
    assert raw["values"][1] == [46348.8452662037, 5, 4.5] and raw["values"][2] == []


def test_an_empty_range_has_no_values_key(fake_google, gc):
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Sheet1", [["a"]], sheet_id=0)
    answer = gc.open_by_key(SHEET_ID).values_get("Sheet1!C3:D4")
    assert answer == {"range": "Sheet1!C3:D4", "majorDimension": "ROWS"}


def test_writes_raw_versus_user_entered_and_clears(fake_google, gc):
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Sheet1", [], sheet_id=0)
    ws = gc.open_by_key(SHEET_ID).sheet1
    ws.update([["=1+1", "0123", "TRUE"]], "A1")
    ws.update([["=1+1", "0123", "TRUE"]], "A2", value_input_option="USER_ENTERED")
    cells = fake_google.cells(SHEET_ID, "Sheet1")
    assert cells[0] == ["=1+1", "0123", "TRUE"]  # RAW: text stays text
    assert type(cells[1][0]).__name__ == "Formula" and cells[1][1:] == [123, True]
    ws.batch_clear(["B1:C2"])
    assert fake_google.cells(SHEET_ID, "Sheet1") == [["=1+1"], [cells[1][0]]]
    ws.clear()
    assert fake_google.cells(SHEET_ID, "Sheet1") == []


def test_grid_limits_and_structure_errors_have_googles_bodies(fake_google, gc):
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Sheet1", [], sheet_id=0, row_count=1000, col_count=26)
    sheet = gc.open_by_key(SHEET_ID)
    with pytest.raises(gspread.exceptions.APIError) as too_far:
        sheet.sheet1.update([[1]], "A1001")
    assert too_far.value.error == {
        "code": 400,
        "status": "INVALID_ARGUMENT",
        "message": ("Range (Sheet1!A1001) exceeds grid limits. Max rows: 1000, max columns: 26"),
    }
    with pytest.raises(gspread.exceptions.APIError) as narrow:
        sheet.values_update(
            "Sheet1!A1:B2", params={"valueInputOption": "RAW"}, body={"values": [[1], [2], [3]]}
        )
    assert "tried writing to row [3]" in narrow.value.error["message"]
    sheet.add_worksheet("Summary", rows=5, cols=3)
    with pytest.raises(gspread.exceptions.APIError) as duplicate:
        sheet.add_worksheet("summary", rows=5, cols=3)
    assert duplicate.value.error["message"] == (
        'Invalid requests[0].addSheet: A sheet with the name "summary" already exists. '
        "Please enter another name."
    )
    summary = sheet.worksheet("Summary")
    summary.resize(rows=2)
    summary.update_title("Итоги")
    assert [w.title for w in sheet.worksheets()] == ["Sheet1", "Итоги"]
    assert sheet.worksheet("Итоги").row_count == 2
    sheet.del_worksheet(summary)
    with pytest.raises(gspread.exceptions.APIError) as gone:
        sheet.batch_update({"requests": [{"deleteSheet": {"sheetId": summary.id}}]})
    assert "No sheet with id" in gone.value.error["message"]


def test_a_spreadsheet_holds_ten_million_cells_across_its_tabs(fake_google, gc):
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Big", [], sheet_id=0, row_count=399_000, col_count=25)
    sheet = gc.open_by_key(SHEET_ID)
    sheet.add_worksheet("Fits", rows=1000, cols=25)  # 9,975,000 + 25,000: exactly the limit
    with pytest.raises(gspread.exceptions.APIError) as over:
        sheet.add_worksheet("Over", rows=1, cols=1)
    assert over.value.error["message"] == (
        "Invalid requests[0].addSheet: This action would increase the number of cells in the "
        "workbook above the limit of 10000000 cells."
    )
    # Checked after each request, as Google does: a shrink later in the batch makes no room
    # for an earlier request; first in the batch, it does.
    add = {"addSheet": {"properties": {"title": "Over", "gridProperties": {"rowCount": 1}}}}
    fits = sheet.worksheet("Fits")
    shrink = {
        "updateSheetProperties": {
            "properties": {"sheetId": fits.id, "gridProperties": {"rowCount": 10}},
            "fields": "gridProperties.rowCount",
        }
    }
    with pytest.raises(gspread.exceptions.APIError) as late:
        sheet.batch_update({"requests": [add, shrink]})
    assert late.value.error["message"].startswith("Invalid requests[0].addSheet: This action")
    assert fake_google.titles(SHEET_ID) == ["Big", "Fits"]  # the batch is atomic
    sheet.batch_update({"requests": [shrink, add]})
    assert fake_google.titles(SHEET_ID) == ["Big", "Fits", "Over"]


def test_structure_requests_are_atomic(fake_google, gc):
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Sheet1", [], sheet_id=0)
    sheet = gc.open_by_key(SHEET_ID)
    with pytest.raises(gspread.exceptions.APIError):
        sheet.batch_update(
            {
                "requests": [
                    {"addSheet": {"properties": {"title": "New"}}},
                    {"deleteSheet": {"sheetId": 999}},
                ]
            }
        )
    assert fake_google.titles(SHEET_ID) == ["Sheet1"]


def _mark(location: dict, value: str = "v") -> dict:
    metadata = {"metadataKey": "k", "metadataValue": value, "location": location}
    return {
        "createDeveloperMetadata": {"developerMetadata": {**metadata, "visibility": "DOCUMENT"}}
    }


def test_developer_metadata_on_a_sheet_is_listed_with_it_and_deleted_with_it(fake_google, gc):
    """Sheet-located metadata (spreadsheets.developerMetadata): read under the sheet, not
    the spreadsheet; looked up by id; "if the associated object is deleted then its metadata
    is deleted too"."""
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Sheet1", [], sheet_id=0)
    sheet = gc.open_by_key(SHEET_ID)
    tab = sheet.add_worksheet("Summary", rows=5, cols=3)
    [made] = sheet.batch_update({"requests": [_mark({"sheetId": tab.id})]})["replies"]
    metadata = made["createDeveloperMetadata"]["developerMetadata"]
    assert metadata["location"] == {"locationType": "SHEET", "sheetId": tab.id}
    number = metadata["metadataId"]
    assert number > 0
    fields = (
        "developerMetadata,sheets(properties(title),developerMetadata(metadataId,metadataValue))"
    )

    def listed() -> dict:
        return sheet.fetch_sheet_metadata({"fields": fields})

    assert listed() == {
        "sheets": [
            {"properties": {"title": "Sheet1"}},
            {
                "properties": {"title": "Summary"},
                "developerMetadata": [{"metadataId": number, "metadataValue": "v"}],
            },
        ]
    }
    lookup = {"developerMetadataLookup": {"metadataId": number}}
    update = {"dataFilters": [lookup], "developerMetadata": {"metadataValue": "w"}}
    sheet.batch_update(
        {"requests": [{"updateDeveloperMetadata": {**update, "fields": "metadataValue"}}]}
    )
    assert listed()["sheets"][1]["developerMetadata"][0]["metadataValue"] == "w"
    with pytest.raises(gspread.exceptions.APIError) as missing:
        sheet.batch_update({"requests": [_mark({"sheetId": 999})]})
    assert "No grid with id: 999" in missing.value.error["message"]
    created = _mark({"sheetId": tab.id})
    created["createDeveloperMetadata"]["developerMetadata"]["metadataId"] = number
    with pytest.raises(gspread.exceptions.APIError) as taken:  # ids are spreadsheet-scoped
        sheet.batch_update({"requests": [created]})
    assert taken.value.error["code"] == 400
    with pytest.raises(gspread.exceptions.APIError) as shape:  # the discovery document's types
        sheet.batch_update({"requests": [_mark({"sheetId": "Summary"})]})
    assert "sheetId: expected an integer" in shape.value.error["message"]

    [gone] = sheet.batch_update(
        {
            "requests": [
                _mark({"sheetId": tab.id}, "x"),
                {"deleteDeveloperMetadata": {"dataFilter": lookup}},
            ]
        }
    )["replies"][1:]
    assert [
        m["metadataValue"] for m in gone["deleteDeveloperMetadata"]["deletedDeveloperMetadata"]
    ] == ["w"]
    assert [m["metadataValue"] for m in listed()["sheets"][1]["developerMetadata"]] == ["x"]
    sheet.del_worksheet(tab)
    assert listed() == {"sheets": [{"properties": {"title": "Sheet1"}}]}
    sheet.batch_update({"requests": [_mark({"spreadsheet": True})]})
    assert [m["metadataValue"] for m in listed()["developerMetadata"]] == ["v"]


def test_unauthenticated_and_unknown_requests(fake_google):
    fake_google.add_spreadsheet(SHEET_ID)
    anonymous = requests.get(f"{fake_google.url}/v4/spreadsheets/{SHEET_ID}", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["status"] == "UNAUTHENTICATED"
    token = requests.post(
        f"{fake_google.url}/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": "e30.e30.c2ln",
        },
        timeout=5,
    )
    assert token.status_code == 400 and token.json()["error"] == "invalid_grant"
    open_fake = FakeGoogle(require_auth=False).start()
    try:
        missing = requests.get(f"{open_fake.url}/v4/spreadsheets/nope", timeout=5)
        assert missing.status_code == 404
        assert missing.json() == {
            "error": {
                "code": 404,
                "message": "Requested entity was not found.",
                "status": "NOT_FOUND",
            }
        }
    finally:
        open_fake.stop()


def test_scripted_faults_and_the_request_log(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID)
    google_session.max_retries = 0
    fake_google.fail(1, 429, "sheets_read")
    response = google_session.get(f"https://sheets.googleapis.com/v4/spreadsheets/{SHEET_ID}")
    assert response.status_code == 429 and "Retry-After" not in response.headers
    body = response.json()["error"]
    assert body["status"] == "RESOURCE_EXHAUSTED"
    assert body["details"][0]["metadata"]["quota_limit"] == "ReadRequestsPerMinutePerUser"
    fake_google.fail(1, 503)
    assert (
        google_session.get(f"https://sheets.googleapis.com/v4/spreadsheets/{SHEET_ID}").status_code
        == 503
    )
    log = json.loads(requests.get(f"{fake_google.url}/_fake/requests", timeout=5).text)
    assert [(r["kind"], r["status"]) for r in log] == [
        ("token", 200),
        ("sheets_read", 429),
        ("sheets_read", 503),
    ]


def test_forms_filter_must_be_rfc3339_utc(fake_google, google_session):
    fake_google.add_form("f", [])
    url = "https://forms.googleapis.com/v1/forms/f/responses"
    bad = google_session.get(url, params={"filter": "timestamp >= 2026-11-01T00:00:00+03:00"})
    assert bad.status_code == 400
    good = google_session.get(url, params={"filter": "timestamp > 2026-11-01T00:00:00Z"})
    assert good.status_code == 200 and good.json() == {}


def test_a_body_over_googles_payload_limit_is_refused_as_google_refuses_it(fake_google, gc):
    # Google's front end refuses a body over 10 MiB, whatever the method (recorded answers:
    # SCRT-HQ/PSGSuite#62, jlolling/talendcomp_tGoogleSheet#1); the fake applied it.
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Sheet1", [], sheet_id=0, row_count=1000, col_count=26)
    sheet = gc.open_by_key(SHEET_ID)
    text = "x" * 40_000
    rows = [[text] * 10 for _ in range(27)]  # ~10.8 MB of JSON
    with pytest.raises(gspread.exceptions.APIError) as refused:
        sheet.values_batch_update(
            {"valueInputOption": "RAW", "data": [{"range": "Sheet1!A1", "values": rows}]}
        )
    message = "Request payload size exceeds the limit: 10485760 bytes."
    assert refused.value.response.status_code == 400
    assert refused.value.error == {
        "code": 400,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": "badRequest"}],
        "status": "INVALID_ARGUMENT",
    }
    assert fake_google.cells(SHEET_ID, "Sheet1") == []  # nothing applied
    fitting = [[text] * 10 for _ in range(20)]  # ~8 MB: taken
    sheet.values_batch_update(
        {"valueInputOption": "RAW", "data": [{"range": "Sheet1!A1", "values": fitting}]}
    )
    assert len(fake_google.cells(SHEET_ID, "Sheet1")) == 20


@pytest.mark.parametrize(
    ("status", "word"),
    [
        (400, "INVALID_ARGUMENT"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
    ],
)
def test_a_scripted_fault_answers_with_googles_status_word_for_its_code(
    fake_google, google_session, status, word
):
    # google.rpc.Code's HTTP mapping: a scripted 403 or 400 came back as "UNAVAILABLE: The
    # service is currently unavailable.", a body Google never sends with those codes.
    fake_google.add_spreadsheet(SHEET_ID)
    google_session.max_retries = 0
    url = f"https://sheets.googleapis.com/v4/spreadsheets/{SHEET_ID}"
    fake_google.fail(1, status, "sheets_read")
    failed = google_session.get(url)
    assert failed.status_code == status
    assert failed.json()["error"]["code"] == status
    assert failed.json()["error"]["status"] == word
    fake_google.lose(1, "sheets_read", status=status)
    lost = google_session.get(url)
    assert (lost.status_code, lost.json()["error"]["status"]) == (status, word)


@pytest.mark.parametrize("text", ["'Sheet1'A1", "'Sheet1'A1:B2", "'Sheet1'x"])
def test_a_quoted_title_must_be_followed_by_a_bang_or_nothing(fake_google, google_session, text):
    # "'Sheet1'A1" is no A1 notation (Google: 400 "Unable to parse range"); the fake read it
    # as 'Sheet1'!A1.
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Sheet1", [["a"]], sheet_id=0)
    url = f"https://sheets.googleapis.com/v4/spreadsheets/{SHEET_ID}/values:batchGet"
    answer = google_session.get(url, params={"ranges": text})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == f"Unable to parse range: {text}"
    assert google_session.get(url, params={"ranges": "'Sheet1'"}).status_code == 200
    assert google_session.get(url, params={"ranges": "'Sheet1'!A1"}).status_code == 200


def test_a_502_is_the_front_ends_html_page_and_the_sync_says_so(fake_google, google_session):
    # Google's front end answers 502 with its own HTML page, not the API's JSON (google.rpc
    # has no 502); the fake sent JSON, so nothing tested a retryable answer we cannot parse.
    fake_google.add_spreadsheet(SHEET_ID)
    google_session.max_retries = 0
    fake_google.fail(1, 502, "sheets_read")
    url = f"https://sheets.googleapis.com/v4/spreadsheets/{SHEET_ID}"
    answer = google_session.get(url)
    assert answer.status_code == 502
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "<b>502.</b>" in answer.text
    fake_google.fail(1, 502, "sheets_read")
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google_session).metadata(SHEET_ID)
    assert caught.value.message == "spreadsheets.get: HTTP 502"
    assert caught.value.http_status == 502 and caught.value.retryable


def test_cells_data_validation_is_served_as_google_shapes_it(fake_google, google_session):
    """``spreadsheets.get`` with ``ranges`` and a mask naming grid data: the sheets the ranges
    are on, each range's GridData (startRow/startColumn, rowData up to the last cell with a
    value or a rule, ``{}`` for a bare cell), a cell's rule as ``DataValidationRule``; and
    :meth:`SheetsApi.read_cells` reads a column's values and checkboxes from it."""
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Other", [["x"]], sheet_id=0)
    fake_google.add_tab(SHEET_ID, "Alerts", [["Alert", "Handled"], [1, "No"], [2, True], [3]])
    yes_no = {
        "condition": {
            "type": "BOOLEAN",
            "values": [{"userEnteredValue": "Yes"}, {"userEnteredValue": "No"}],
        }
    }
    fake_google.set_validation(SHEET_ID, "Alerts", 1, 1, yes_no)
    fake_google.set_validation(SHEET_ID, "Alerts", 2, 1, {"condition": {"type": "BOOLEAN"}})
    fake_google.set_validation(SHEET_ID, "Alerts", 4, 1, {"condition": {"type": "ONE_OF_LIST"}})
    with pytest.raises(AssertionError):  # not a DataValidationRule
        fake_google.set_validation(SHEET_ID, "Alerts", 5, 1, {"type": "BOOLEAN"})

    answer = google_session.request(
        "get",
        f"{fake_google.url}/v4/spreadsheets/{SHEET_ID}",
        params={
            "ranges": ["Alerts!B:B"],
            "fields": "sheets(properties(title),data(startRow,startColumn,"
            "rowData(values(effectiveValue,formattedValue,dataValidation))))",
        },
    ).json()
    assert answer == {
        "sheets": [
            {
                "properties": {"title": "Alerts"},
                "data": [
                    {
                        "startRow": 0,
                        "startColumn": 1,
                        "rowData": [
                            {
                                "values": [
                                    {
                                        "effectiveValue": {"stringValue": "Handled"},
                                        "formattedValue": "Handled",
                                    }
                                ]
                            },
                            {
                                "values": [
                                    {
                                        "effectiveValue": {"stringValue": "No"},
                                        "formattedValue": "No",
                                        "dataValidation": yes_no,
                                    }
                                ]
                            },
                            {
                                "values": [
                                    {
                                        "effectiveValue": {"boolValue": True},
                                        "formattedValue": "TRUE",
                                        "dataValidation": {"condition": {"type": "BOOLEAN"}},
                                    }
                                ]
                            },
                            {},
                            {
                                "values": [
                                    {"dataValidation": {"condition": {"type": "ONE_OF_LIST"}}}
                                ]
                            },
                        ],
                    }
                ],
            }
        ]
    }
    bad = google_session.request(
        "get",
        f"{fake_google.url}/v4/spreadsheets/{SHEET_ID}",
        params={"ranges": ["Alerts!B:B"], "fields": "sheets(data(rowData(values(checkbox))))"},
    )
    assert bad.status_code == 400
    past = google_session.request(
        "get",
        f"{fake_google.url}/v4/spreadsheets/{SHEET_ID}",
        params={"ranges": ["Alerts!AA:AA"], "fields": "sheets(data(startColumn))"},
    )
    assert past.status_code == 400 and "exceeds grid limits" in past.text  # 26 columns

    api = SheetsApi(google_session)
    assert api.read_cells(SHEET_ID, "Alerts", ["B:B"]) == {
        (0, 1): SheetCell("Handled", "Handled"),
        (1, 1): SheetCell("No", "No", ("Yes", "No")),
        (2, 1): SheetCell(True, "TRUE", ()),
    }  # B5's rule is of another kind: nothing to tell


@pytest.mark.parametrize(
    "answer",
    [
        {},  # no sheets at all: not the tab asked for
        {"sheets": {}},
        {"sheets": [{"properties": {"title": "Other"}, "data": []}]},
        {"sheets": [{"properties": {"title": "Alerts"}, "data": {}}]},
        {"sheets": [{"properties": {"title": "Alerts"}, "data": [{"rowData": {}}]}]},
        {"sheets": [{"properties": {"title": "Alerts"}, "data": [{"rowData": [{"values": 1}]}]}]},
    ],
)
def test_cells_read_from_an_answer_not_of_googles_shape_are_an_error(answer):
    """Read loosely, an answer that is not the tab asked for (a proxy's, a fake's) read as an
    empty tab: no edit kept, and the rewrite put the database's over the team's."""
    with pytest.raises(GoogleApiError, match=r"spreadsheets\.get"):
        sheet_cells(answer, "Alerts")
    empty = {"sheets": [{"properties": {"title": "Alerts"}, "data": [{"startColumn": 13}]}]}
    assert sheet_cells(empty, "Alerts") == {}
