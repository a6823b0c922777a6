"""The Google client against a hostile network or a flaky Google: odd Retry-After values,
403s that mean different things, answers that are not Google's shape, slow and huge answers.

Requests are answered by ``responses`` at Google's canonical origins (the session rewrites
nothing: no bases configured), so every answer is exactly the one scripted here.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
import requests
import responses

from csat_hook import retry
from csat_hook.devtools.forms_model import RawJson
from csat_hook.devtools.sheets_model import SheetsApiError
from csat_hook.errors import GoogleApiError
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.google.session import GoogleSession
from tests.helpdesks.test_transport import loopback
from tests.helpdesks.test_transport import read_request
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID

SHEET = "https://sheets.googleapis.com/v4/spreadsheets/S"


def session(max_retries: int = 2) -> GoogleSession:
    """A session without credentials (no token call) whose sleeps are recorded."""
    slept: list[float] = []
    made = GoogleSession(
        credentials=None,
        bases={},
        timeout=(1, 1),
        max_retries=max_retries,
        backoff_base=2,
        backoff_cap=32,
        sleep=slept.append,
    )
    made.slept = slept  # type: ignore[attr-defined]
    return made


def quota(status: int = 429) -> dict[str, Any]:
    return {"error": {"code": status, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.mark.parametrize("value", ["-5", "nan", "1e12", "inf", "1_0", "٣"])
@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_after_that_is_not_delta_seconds_leaves_the_backoff_in_charge(
    mocked, monkeypatch, status, value
):
    """A proxy's Retry-After of "-5" or "nan" was read as 0 s: every retry spent at once,
    the run failed within a second of a quota minute; "1e12" or "inf" as the cap."""
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    for _ in range(2):
        mocked.get(SHEET, status=status, json=quota(status), headers={"Retry-After": value})
    mocked.get(SHEET, json={"spreadsheetId": "S"})
    google = session()
    assert SheetsApi(google).metadata("S") == {"spreadsheetId": "S"}
    assert google.slept == [1, 2]  # the backoff's own waits: half of 2·2ⁿ⁻¹


def test_a_retry_after_in_seconds_or_as_a_date_is_honoured(mocked, monkeypatch):
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    mocked.get(SHEET, status=429, json=quota(), headers={"Retry-After": "7"})
    mocked.get(
        SHEET, status=503, json=quota(503), headers={"Retry-After": "Thu, 01 Jan 2099 00:00:00 GMT"}
    )
    mocked.get(SHEET, json={"spreadsheetId": "S"})
    google = session()
    SheetsApi(google).metadata("S")
    assert google.slept == [7, 32]  # a date decades away: capped at the backoff's cap


def retry_info(delay: Any, status: int = 429) -> dict[str, Any]:
    """Google's error with a ``google.rpc.RetryInfo`` detail (``retryDelay``: a Duration's
    JSON, seconds with an "s")."""
    body = quota(status)
    body["error"]["details"] = [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED"},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
    ]
    return body


@pytest.mark.parametrize(("delay", "waited"), [("30s", 30), ("1.5s", 1.5), ("0s", 1)])
@pytest.mark.parametrize("status", [429, 503])
def test_a_retry_delay_in_the_error_body_is_honoured(mocked, monkeypatch, delay, waited, status):
    """Google's RetryInfo says how long to wait at least: it was not read, and a quota's
    retries were spent on the backoff's own (shorter) schedule, the run failing meanwhile."""
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    mocked.get(SHEET, status=status, json=retry_info(delay, status))
    mocked.get(SHEET, json={"spreadsheetId": "S"})
    google = session()
    assert SheetsApi(google).metadata("S") == {"spreadsheetId": "S"}
    assert google.slept == [waited]  # "0s": not before now, the backoff's own step


def test_the_longer_of_retry_after_and_retry_delay_wins_within_the_cap(mocked, monkeypatch):
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    mocked.get(SHEET, status=429, json=retry_info("30s"), headers={"Retry-After": "7"})
    mocked.get(SHEET, status=429, json=retry_info("3s"), headers={"Retry-After": "9"})
    mocked.get(SHEET, status=429, json=retry_info("86400s"))
    mocked.get(SHEET, json={"spreadsheetId": "S"})
    google = session(max_retries=3)
    SheetsApi(google).metadata("S")
    assert google.slept == [30, 9, 32]  # a day: capped at the backoff's cap, as Retry-After


def test_a_structure_write_refused_by_a_rate_limit_is_sent_again_after_its_wait(
    mocked, monkeypatch
):
    """A batchUpdate (sent with repeat=False: never repeated after a lost answer) answered
    429 was not applied: the session sends it again as it is, after the wait the answer asked
    for (the longer of Retry-After and RetryInfo), as for any other request."""
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    url = f"{SHEET}:batchUpdate"
    mocked.post(url, status=429, json=retry_info("30s"), headers={"Retry-After": "7"})
    mocked.post(url, status=429, json=quota(), headers={"Retry-After": "9"})
    mocked.post(url, json={"spreadsheetId": "S", "replies": [{}]})
    google = session()

    assert SheetsApi(google).update_structure("S", [{"addSheet": {}}]) == [{}]
    assert google.slept == [30, 9]
    assert len(mocked.calls) == 3


@pytest.mark.parametrize("delay", ["-5s", "nans", "30", 30, "1e3s", "inf", None, "٣s"])
def test_a_retry_delay_that_is_not_a_duration_leaves_the_backoff_in_charge(
    mocked, monkeypatch, delay
):
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    for _ in range(2):
        mocked.get(SHEET, status=429, json=retry_info(delay))
    mocked.get(SHEET, json={"spreadsheetId": "S"})
    google = session()
    SheetsApi(google).metadata("S")
    assert google.slept == [1, 2]


@pytest.mark.parametrize("value", ["0", "Tue, 14 Nov 2023 22:13:00 GMT"])
def test_a_retry_after_of_zero_every_time_is_spread_by_the_backoff(mocked, monkeypatch, value):
    """Google (or a proxy) repeating "Retry-After: 0", or a date already past, had every
    retry spent at once: the server's wait is a lower bound, the backoff's step still applies."""
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    for _ in range(2):
        mocked.get(SHEET, status=429, json=quota(), headers={"Retry-After": value})
    mocked.get(SHEET, json={"spreadsheetId": "S"})
    google = session()
    assert SheetsApi(google).metadata("S") == {"spreadsheetId": "S"}
    assert google.slept == [1, 2]


# --- a 200 whose body is not the answer asked for: an error naming the call, never a crash,
# never an empty sheet -----------------------------------------------------------------------

NOT_OBJECTS = [b"[]", b"[1]", b'"ok"', b"null", b"5"]


@pytest.mark.parametrize("body", NOT_OBJECTS)
def test_metadata_structure_and_value_writes_answered_with_a_non_object_are_google_errors(
    mocked, body
):
    """These crashed the run with TypeError, ValueError or AttributeError (a traceback),
    and ``[]`` read as a spreadsheet with no tabs ("no such tab; tabs: none")."""
    mocked.get(SHEET, body=body)
    mocked.post(SHEET + ":batchUpdate", body=body)
    mocked.post(SHEET + "/values:batchUpdate", body=body)
    api = SheetsApi(session())
    calls = [
        ("spreadsheets.get", lambda: api.metadata("S")),
        ("spreadsheets.batchUpdate", lambda: api.update_structure("S", [{"addSheet": {}}])),
        ("values.batchUpdate", lambda: api.write_values("S", [b"{}"])),
    ]
    for what, call in calls:
        with pytest.raises(GoogleApiError) as caught:
            call()
        assert caught.value.message == f"{what}: the answer is not a JSON object"


@pytest.mark.parametrize(
    "body",
    [
        *NOT_OBJECTS,
        b"{}",
        b'{"valueRanges": 5}',
        b'{"valueRanges": []}',
        b'{"valueRanges": [5]}',
        b'{"valueRanges": [{"values": [["Timestamp"], "b"]}]}',
        b'{"valueRanges": [{"values": [["Timestamp"], null]}]}',
        b'{"valueRanges": [{"majorDimension": "COLUMNS", "values": [["Timestamp", 1]]}]}',
    ],
)
def test_a_tab_read_answered_with_something_else_than_one_range_of_rows_is_a_google_error(
    mocked, body
):
    """``[]``, ``null``, ``{}`` or no range at all read as an empty tab, a row that is not a
    list as a row of characters, and columns as rows; ``{"valueRanges": 5}`` crashed."""
    mocked.get(SHEET + "/values:batchGet", body=body)
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(session()).read_tab("S", "Form Responses 1")
    assert caught.value.message.startswith(
        ("values.batchGet: the answer ", "values.batchGet: row 2 of the tab is not a list")
    ), caught.value.message


def test_an_empty_tab_and_ragged_rows_are_read_as_google_sends_them(mocked):
    """Google leaves ``values`` out for an empty tab and trims each row's empty cells."""
    mocked.get(SHEET + "/values:batchGet", json={"valueRanges": [{"range": "'T'!A1:Z1000"}]})
    mocked.get(
        SHEET + "/values:batchGet",
        json={"valueRanges": [{"majorDimension": "ROWS", "values": [["a", "b"], [], ["c"]]}]},
    )
    api = SheetsApi(session())
    assert api.read_tab("S", "T") == []
    assert api.read_tab("S", "T") == [["a", "b"], [], ["c"]]


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"valueRanges": []}',
        b'{"valueRanges": [{"values": [["Timestamp", "Rating"], "45000,5"]}]}',
        b'{"valueRanges": [{"majorDimension": "COLUMNS", "values": [["Timestamp", 45000]]}]}',
    ],
    ids=["list", "no-range", "text-row", "columns"],
)
def test_a_sync_whose_responses_read_is_not_rows_fails_and_says_so(kit, monkeypatch, body):
    """The run was "ok" over an empty tab (``[]``), or read a row of text as one character
    per column; now it fails naming the call, and no answer is counted."""
    kit.responses([EN_HEADER])
    original = kit.fake._route

    def answer(method, path, query, raw):  # type: ignore[no-untyped-def]
        if path.endswith("values:batchGet") and "Form Responses 1" in str(query):
            return RawJson(body)
        return original(method, path, query, raw)

    monkeypatch.setattr(kit.fake, "_route", answer)
    summary = kit.run()
    assert summary.status == "failed"
    assert summary.error.startswith(
        ("values.batchGet: the answer ", "values.batchGet: row 2 of the tab is not a list")
    ), summary.error


# --- 403: no access, the API not enabled, or a rate limit -------------------------------------

EMAIL = "csat-sync@fake-project.iam.gserviceaccount.com"  # the fake's service account


def error_info(reason: str, **metadata: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": metadata,
    }


def forbidden(message: str, *details: dict[str, Any], **extra: Any) -> dict[str, Any]:
    error = {"code": 403, "message": message, "status": "PERMISSION_DENIED", **extra}
    if details:
        error["details"] = list(details)
    return {"error": error}


DISABLED = forbidden(
    "Google Sheets API has not been used in project 603366585132 before or it is disabled. "
    "Enable it by visiting https://console.developers.google.com/apis/api/"
    "sheets.googleapis.com/overview?project=603366585132 then retry.",
    error_info(
        "SERVICE_DISABLED",
        service="sheets.googleapis.com",
        consumer="projects/603366585132",
        serviceTitle="Google Sheets API",
    ),
)
RATE_LIMITED = {
    "info": forbidden("Quota exceeded", error_info("RATE_LIMIT_EXCEEDED")),
    "user": forbidden(
        "User Rate Limit Exceeded",
        errors=[{"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "x"}],
    ),
    "rate": forbidden(
        "Rate Limit Exceeded",
        errors=[{"domain": "usageLimits", "reason": "rateLimitExceeded", "message": "x"}],
    ),
}


def refuse_with(fake: Any, monkeypatch: pytest.MonkeyPatch, body: Any, times: int = 99) -> None:
    """The fake answers its next ``times`` API requests with a 403 carrying ``body``."""
    original = fake._route
    left = [times]

    def refuse(*args: Any) -> Any:
        if left[0] <= 0:
            return original(*args)
        left[0] -= 1
        error = SheetsApiError(403, "")
        error.body = body
        raise error

    monkeypatch.setattr(fake, "_route", refuse)


@pytest.mark.parametrize("body", list(RATE_LIMITED.values()), ids=list(RATE_LIMITED))
def test_a_403_rate_limit_is_retried_like_a_429(fake_google, google_session, monkeypatch, body):
    """Drive-style and ErrorInfo rate limits come as 403; they failed the run at once, with
    "share the spreadsheet with ..." as the advice."""
    fake_google.add_spreadsheet(SHEET_ID)
    refuse_with(fake_google, monkeypatch, body, times=2)
    assert SheetsApi(google_session).metadata(SHEET_ID)["spreadsheetId"] == SHEET_ID
    assert len(google_session.slept) == 2


def test_a_403_rate_limit_that_lasts_says_quota_not_sharing(
    fake_google, google_session, monkeypatch
):
    fake_google.add_spreadsheet(SHEET_ID)
    refuse_with(fake_google, monkeypatch, RATE_LIMITED["user"])
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google_session).metadata(SHEET_ID)
    assert caught.value.retryable and "after 4 attempts" in caught.value.message
    assert "rate limit" in caught.value.message and "share" not in caught.value.message


@pytest.mark.parametrize("reason", ["dailyLimitExceeded", "quotaExceeded"])
def test_a_403_daily_quota_says_quota_not_sharing_and_is_not_retried_within_the_run(
    fake_google, google_session, monkeypatch, reason
):
    """A quota of the day spent (Drive-style ``errors[].reason``): waiting a minute does not
    help, so the run is not held; the advice was "share the spreadsheet with ..."."""
    fake_google.add_spreadsheet(SHEET_ID)
    body = forbidden(
        "Daily Limit Exceeded",
        errors=[{"domain": "usageLimits", "reason": reason, "message": "x"}],
    )
    refuse_with(fake_google, monkeypatch, body)
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google_session).metadata(SHEET_ID)
    message = caught.value.message
    assert "share" not in message and "quota" in message, message
    assert caught.value.retryable  # the next run, once the quota is back
    assert google_session.slept == []  # not held within this run


def test_a_403_service_disabled_says_to_enable_the_api_not_to_share(
    fake_google, google_session, monkeypatch
):
    fake_google.add_spreadsheet(SHEET_ID)
    refuse_with(fake_google, monkeypatch, DISABLED)
    api = SheetsApi(google_session)
    with pytest.raises(GoogleApiError) as caught:
        api.read_tab(SHEET_ID, "Form Responses 1")  # a values call: Google's message left out
    message = caught.value.message
    assert "share" not in message and not caught.value.retryable
    assert message.endswith(
        "; enable the Google Sheets API (sheets.googleapis.com) in Google Cloud project "
        "603366585132, the service account's (APIs & Services → Library)"
    ), message
    assert len(fake_google.api_requests("sheets_read")) == 1  # not retried


def test_a_403_without_access_says_to_share_the_spreadsheet_or_the_form(
    fake_google, google_session, monkeypatch
):
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_form("f", [])
    refuse_with(fake_google, monkeypatch, forbidden("The caller does not have permission"))
    with pytest.raises(GoogleApiError) as sheet:
        SheetsApi(google_session).metadata(SHEET_ID)
    assert f"share the spreadsheet {SHEET_ID} with {EMAIL}" in sheet.value.message
    with pytest.raises(GoogleApiError) as form:
        list(FormsApi(google_session).list_responses("f", since=None, page_size=10))
    assert form.value.message == (
        "forms.responses.list: HTTP 403 PERMISSION_DENIED; share the form f with "
        f"{EMAIL} (as an editor) and check its id"
    ), form.value.message


def test_a_write_refused_names_the_spreadsheet_it_was_refused_on(
    fake_google, google_session, monkeypatch
):
    """The responses read from one spreadsheet, the report written to another shared with
    the service account as a Viewer: the write's 403 names the spreadsheet to share (the
    two ids are two keys, results.gsheets and output.gsheets; "the spreadsheet" was either)."""
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_spreadsheet("report-sheet")
    api = SheetsApi(google_session)
    api.metadata(SHEET_ID)
    api.metadata("report-sheet")
    refuse_with(fake_google, monkeypatch, forbidden("The caller does not have permission"))
    with pytest.raises(GoogleApiError) as caught:
        api.write_values("report-sheet", [b'{"range":"A1","values":[["x"]]}'])
    assert caught.value.message == (
        "values.batchUpdate: HTTP 403 PERMISSION_DENIED; share the spreadsheet report-sheet "
        f"with {EMAIL} (Editor to write, Viewer to read) and check its id"
    ), caught.value.message


# --- a server that drips its answer: each byte within the read timeout, the whole far beyond --

CONNECT, READ = 0.2, 0.3
BOUND = CONNECT + READ + 0.5  # the request's time plus room for a loaded machine
BODY = b'{"spreadsheetId": "S", "properties": {"title": "dripped, byte by byte"}}'


def dripping(head_too: bool) -> Any:
    """Answers 200 with ``BODY`` one byte every 0.05 s (the headers too when ``head_too``):
    about 4 s in all, each wait far within the read timeout."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    head += b"Content-Length: %d\r\n\r\n" % len(BODY)

    def serve(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        if not head_too:
            conn.sendall(head)
        for byte in (head if head_too else b"") + BODY:
            conn.sendall(bytes([byte]))
            time.sleep(0.05)

    return serve


@pytest.mark.parametrize("head_too", [False, True], ids=["body", "headers"])
def test_an_answer_dripped_past_the_request_time_times_out(head_too):
    """The read timeout bounds each wait, not the answer: a server (or a proxy) that drips
    its answer held the run for as long as it liked."""
    with loopback(dripping(head_too)) as (url, seen):
        google = GoogleSession(
            credentials=None,
            bases={"https://sheets.googleapis.com": url},
            timeout=(CONNECT, READ),
            max_retries=1,
            backoff_base=0,
            backoff_cap=0,
            sleep=lambda _s: None,
        )
        started = time.monotonic()
        with pytest.raises(GoogleApiError) as caught:
            SheetsApi(google).metadata("S")
        took = time.monotonic() - started
    assert "timed out after 2 attempts" in caught.value.message, caught.value.message
    assert caught.value.retryable and len(seen) == 2
    assert took < 2 * BOUND


def test_an_answer_cut_off_is_retried_then_reported():
    """A body that breaks off before its Content-Length (a proxy restarted) was a
    ChunkedEncodingError, never retried: the run failed on the first flake."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"

    def cut(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(head + BODY[:20])  # and the connection closes

    with loopback(cut) as (url, seen):
        google = GoogleSession(
            credentials=None,
            bases={"https://sheets.googleapis.com": url},
            timeout=(1, 1),
            max_retries=2,
            backoff_base=0,
            backoff_cap=0,
            sleep=lambda _s: None,
        )
        with pytest.raises(GoogleApiError) as caught:
            SheetsApi(google).metadata("S")
    assert "answer cut off after 3 attempts" in caught.value.message, caught.value.message
    assert caught.value.retryable and len(seen) == 3


# --- forms.responses.list pages ---------------------------------------------------------------

FORM = "https://forms.googleapis.com/v1/forms/F/responses"


@pytest.mark.parametrize(
    "body",
    [
        b'{"responses": 5}',
        b'{"responses": "ab"}',
        b'{"responses": {"a": 1}}',
        b'{"responses": [], "nextPageToken": [1]}',
        b'{"responses": [], "nextPageToken": 5}',
    ],
)
def test_a_forms_page_of_another_shape_is_a_google_error(mocked, body):
    """These crashed the run (TypeError) or handed on characters and keys as responses. (A
    listed response that is not an object is the source's to skip, naming it: see
    tests/sync/test_edge_forms_api.py.)"""
    mocked.get(FORM, body=body)
    mocked.get(FORM, json={})
    with pytest.raises(GoogleApiError) as caught:
        list(FormsApi(session()).list_responses("F", since=None, page_size=10))
    assert caught.value.message.startswith("forms.responses.list: page 1's "), caught.value


def test_an_empty_next_page_token_ends_the_listing(mocked):
    mocked.get(FORM, json={"responses": [{"responseId": "a"}], "nextPageToken": ""})
    assert list(FormsApi(session()).list_responses("F", since=None, page_size=10)) == [
        {"responseId": "a"}
    ]
    assert len(mocked.calls) == 1


# --- a structure write that never left: sent again, not "maybe applied" ----------------------


def test_a_structure_write_that_never_connected_is_sent_again_not_planned_again(mocked):
    """A write sent with repeat=False whose connection never opened (refused, a connect
    timeout) cannot have been applied: it is retried as any request, and when it never gets
    out the error says so; it was an unknown outcome ("no answer that says whether ...
    applied"), planned again for nothing."""
    url = SHEET + ":batchUpdate"
    mocked.post(url, body=requests.ConnectTimeout("connect timed out"))
    mocked.post(url, json={"spreadsheetId": "S", "replies": []})
    made = session()
    response = made.request("post", url, json={"requests": []}, repeat=False)
    assert response.status_code == 200 and len(made.slept) == 1

    never = session(max_retries=1)
    mocked.replace(responses.POST, url, body=requests.ConnectTimeout("connect timed out"))
    with pytest.raises(GoogleApiError) as caught:
        never.request("post", url, json={"requests": []}, repeat=False)
    assert type(caught.value) is GoogleApiError, type(caught.value)
    assert "after 2 attempts" in caught.value.message and caught.value.retryable


def test_an_excel_file_in_drive_says_to_save_it_as_a_google_sheet(fake_google, google_session):
    # Sheets answers a Drive id of an .xlsx (it opens in the Sheets editor, looks alike) with
    # 400 FAILED_PRECONDITION "This operation is not supported for this document"
    # (burnash/gspread#732, tidyverse/googlesheets4#275): the run said only that.
    fake_google.add_spreadsheet(SHEET_ID, office_file=True)
    fake_google.add_tab(SHEET_ID, "Form Responses 1", [EN_HEADER], sheet_id=0)
    api = SheetsApi(google_session)
    with pytest.raises(GoogleApiError) as metadata:
        api.metadata(SHEET_ID)
    with pytest.raises(GoogleApiError) as values:
        api.read_tab(SHEET_ID, "Form Responses 1")
    for caught in (metadata, values):
        assert caught.value.http_status == 400 and not caught.value.retryable
        assert caught.value.message.endswith(
            "; the id is of a file that is not a Google Sheets spreadsheet (an Excel file in "
            "Drive?): open it, File → Save as Google Sheets, and give the new spreadsheet's id"
        ), caught.value.message
    assert len(fake_google.api_requests("sheets_read")) == 2  # not retried


def test_a_tab_renamed_between_two_requests_is_named_as_the_cause(fake_google, google_session):
    # Google answers a range naming a tab that is gone with 400 INVALID_ARGUMENT "Unable to
    # parse range: ..." (its message is left out of a values call's error, as it may quote a
    # customer's text elsewhere): the run said only "HTTP 400 INVALID_ARGUMENT".
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Form Responses 1", [EN_HEADER], sheet_id=0)
    api = SheetsApi(google_session)
    assert api.metadata(SHEET_ID)["sheets"][0]["properties"]["title"] == "Form Responses 1"
    fake_google.tab(SHEET_ID, "Form Responses 1").title = "Ответы на форму (1)"  # a manager
    with pytest.raises(GoogleApiError) as caught:
        api.read_tab(SHEET_ID, "Form Responses 1")
    assert caught.value.message == (
        "values.batchGet: HTTP 400 INVALID_ARGUMENT; a tab it names is no longer there "
        "(renamed or deleted during the run): the next run reads the tabs again"
    ), caught.value.message
    assert "Form Responses 1" not in caught.value.message


def test_a_value_write_past_a_tab_shrunk_during_the_run_is_named_as_the_cause(
    fake_google, google_session
):
    # 400 "Range ('Anna (7)'!A1001) exceeds grid limits. Max rows: 1000, ..." when a
    # manager deleted rows between the run's resize and its value write: the run said only
    # "HTTP 400 INVALID_ARGUMENT" (the message, which names the tab, is left out).
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Anna (7)", [], sheet_id=0, row_count=2, col_count=2)
    data = json.dumps({"range": "'Anna (7)'!A1:B3", "values": [["a"], ["b"], ["c"]]})
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google_session).write_values(SHEET_ID, [data.encode()])
    assert caught.value.message == (
        "values.batchUpdate: HTTP 400 INVALID_ARGUMENT; a tab is smaller than the run made "
        "it (rows or columns deleted during the run): the next run grows it again"
    ), caught.value.message


PROTECTED = (
    "You are trying to edit a protected cell or object. Please contact the spreadsheet owner "
    "to remove protection if you need to edit."
)


def test_a_write_to_a_protected_range_is_named_as_the_cause(
    fake_google, google_session, monkeypatch
):
    # The team protected the report's tab (Data → Protected sheets and ranges) without the
    # service account among its editors: Google answers 400 INVALID_ARGUMENT with PROTECTED,
    # and the run said only "values.batchUpdate: HTTP 400 INVALID_ARGUMENT", every run.
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Summary", [], sheet_id=7, row_count=3, col_count=2)
    original = fake_google._route

    def protect(method, path, query, body):
        if method == "POST":
            raise SheetsApiError(400, PROTECTED)
        return original(method, path, query, body)

    monkeypatch.setattr(fake_google, "_route", protect)
    api = SheetsApi(google_session)
    data = json.dumps({"range": "'Summary'!A1:B1", "values": [["a", "b"]]})
    with pytest.raises(GoogleApiError) as caught:
        api.write_values(SHEET_ID, [data.encode()])
    assert caught.value.message == (
        "values.batchUpdate: HTTP 400 INVALID_ARGUMENT; a protected range or tab is in the way "
        f"(Data → Protected sheets and ranges): add {EMAIL} to its editors, or remove the "
        "protection"
    ), caught.value.message
    assert not caught.value.retryable
    assert len(fake_google.api_requests("sheets_write")) == 1  # the same answer again: not retried
