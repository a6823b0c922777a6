"""The Google client's bounds: how much of an answer is read, which quota answers are waited
out within the run and which stop it, and what a 200 that is not JSON says.

Answers come from ``responses`` at Google's canonical origins, or from a loopback server
(``tests.helpdesks.test_transport.loopback``) when the bytes on the wire matter.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
import responses

from csat_hook import retry
from csat_hook.errors import GoogleApiError
from csat_hook.sync.config import GoogleConfig
from csat_hook.sync.google import session as google_session_module
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.google.api import TabExistsError
from csat_hook.sync.google.api import tab_rows
from csat_hook.sync.google.session import SHEETS_SCOPE
from csat_hook.sync.google.session import GoogleSession
from csat_hook.sync.google.session import build_session
from tests.helpdesks.test_transport import loopback
from tests.helpdesks.test_transport import read_request
from tests.sync.test_google_edges import SHEET
from tests.sync.test_google_edges import error_info
from tests.sync.test_google_edges import forbidden
from tests.sync.test_google_edges import session


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


# --- item: an answer's size is bounded, per kind of request ----------------------------------


def answering(body: bytes, status: bytes = b"200 OK") -> Any:
    """A server answering every request with ``body`` (its Content-Length given), one request
    a connection (it says so: no connection is left open in a session's pool)."""

    def serve(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
        head += b"Content-Length: %d\r\n\r\n"
        conn.sendall(head % (status, len(body)) + body)

    return serve


def on(url: str) -> GoogleSession:
    return GoogleSession(
        credentials=None,
        bases={"https://sheets.googleapis.com": url, "https://forms.googleapis.com": url},
        timeout=(1, 2),
        max_retries=2,
        backoff_base=0,
        backoff_cap=0,
        sleep=lambda _s: None,
    )


# A values.batchGet answer of 600 KB: one range, 200,000 one-digit cells.
BIG_TAB = b'{"valueRanges": [{"values": [[' + b"1," * 199_999 + b"1]]}]}"


def test_an_answer_larger_than_its_kinds_limit_is_not_read_and_the_error_names_the_call(
    monkeypatch,
):
    """A Google answer was read whole, however large (bounded by the request's time only):
    an endpoint or a proxy streaming hundreds of MB filled the sync's memory."""
    monkeypatch.setitem(google_session_module.ANSWER_LIMITS, "values.batchGet", 64 * 1024)
    with loopback(answering(BIG_TAB)) as (url, seen), pytest.raises(GoogleApiError) as caught:
        SheetsApi(on(url)).read_tab("S", "Form Responses 1")
    assert caught.value.message == (
        f"values.batchGet: HTTP 200, the answer is larger than {64 * 1024} bytes (more than "
        "any answer Google gives it: a proxy or a fake in between?)"
    ), caught.value.message
    assert caught.value.http_status == 200 and not caught.value.retryable
    assert len(seen) == 1  # the same answer again would be as large: not asked again


def test_each_kind_of_request_has_its_own_limit(monkeypatch):
    """The tab read's limit is the large one: a metadata answer of the same size is refused,
    the tab read of it is not."""
    monkeypatch.setitem(google_session_module.ANSWER_LIMITS, "values.batchGet", 1024 * 1024)
    monkeypatch.setattr(google_session_module, "DEFAULT_ANSWER_LIMIT", 64 * 1024)
    with loopback(answering(BIG_TAB)) as (url, _):
        rows = SheetsApi(on(url)).read_tab("S", "Form Responses 1")
    assert len(rows[0]) == 200_000
    metadata = b'{"spreadsheetId": "S", "x": "' + b"a" * 600_000 + b'"}'
    with loopback(answering(metadata)) as (url, _), pytest.raises(GoogleApiError) as caught:
        SheetsApi(on(url)).metadata("S")
    assert caught.value.message.startswith(
        f"spreadsheets.get: HTTP 200, the answer is larger than {64 * 1024} bytes"
    ), caught.value.message


def test_a_forms_page_larger_than_its_limit_names_the_call(monkeypatch):
    monkeypatch.setitem(google_session_module.ANSWER_LIMITS, "forms.responses.list", 64 * 1024)
    page = b'{"responses": [' + b'{"responseId": "a"},' * 40_000 + b'{"responseId": "b"}]}'
    with loopback(answering(page)) as (url, _), pytest.raises(GoogleApiError) as caught:
        list(FormsApi(on(url)).list_responses("F", since=None, page_size=5000))
    assert caught.value.message.startswith(
        f"forms.responses.list: HTTP 200, the answer is larger than {64 * 1024} bytes"
    ), caught.value.message


def test_the_limits_hold_a_whole_spreadsheet_of_cells_and_a_full_forms_page():
    """A tab read may hold every cell of a spreadsheet (10 million at most); a Forms page up
    to 5000 responses: their limits leave room for long text in many of them."""
    limits = google_session_module.ANSWER_LIMITS
    assert limits["values.batchGet"] >= 10_000_000 * 64
    assert limits["forms.responses.list"] >= 5000 * 20_000
    assert google_session_module.DEFAULT_ANSWER_LIMIT >= 32 * 1024 * 1024


def test_a_refusal_larger_than_the_limit_keeps_its_status(monkeypatch):
    """A refusal is read only as far as its reason needs: its status stays the answer."""
    monkeypatch.setattr(google_session_module, "DEFAULT_ANSWER_LIMIT", 64 * 1024)
    body = b'{"error": {"code": 404, "status": "NOT_FOUND", "message": "'
    body += b"x" * 600_000 + b'"}}'
    refusing = answering(body, b"404 Not Found")
    with loopback(refusing) as (url, seen), pytest.raises(GoogleApiError) as caught:
        SheetsApi(on(url)).metadata("S")
    assert caught.value.http_status == 404 and len(seen) == 1


def test_a_token_answer_larger_than_its_limit_fails_the_refresh(fake_google, rsa_key, monkeypatch):
    """The token endpoint (the service account's token_uri) is read within a limit too."""
    monkeypatch.setattr(google_session_module, "TOKEN_ANSWER_LIMIT", 64 * 1024)
    token = json.dumps(
        {"access_token": "ya29.x", "expires_in": 3599, "token_type": "Bearer", "x": "a" * 600_000}
    ).encode()

    def serve(conn: socket.socket, seen: list[bytes]) -> None:
        request = read_request(conn)
        seen.append(request)
        body = token if request.startswith(b"POST /token") else b'{"spreadsheetId": "S"}'
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        head += b"Content-Length: %d\r\n\r\n"
        conn.sendall(head % len(body) + body)

    with loopback(serve) as (url, seen):
        info = {**fake_google.service_account_info(key=rsa_key), "token_uri": url + "/token"}
        google = GoogleConfig(service_account_json=json.dumps(info), sheets_base_url=url)
        with pytest.raises(GoogleApiError) as caught:
            SheetsApi(build_session(google, [SHEETS_SCOPE])).metadata("S")
    assert caught.value.message == (
        f"could not get an access token from {url}/token (the token_uri in "
        f"google.service_account_json): HTTP 200: more than {64 * 1024} bytes"
    ), caught.value.message
    assert len(seen) == 1  # the token request; no API request without a token


# --- item: quota answers: per-minute ones waited out, daily ones stop the run ----------------

READ = SHEET + "/values:batchGet"
PER_DAY = {
    "quota_metric": "sheets.googleapis.com/read_requests",
    "quota_limit": "ReadRequestsPerDayPerProject",
    "quota_unit": "1/d/{project}",
    "service": "sheets.googleapis.com",
}
PER_DAY_MESSAGE = (
    "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per day' of "
    "service 'sheets.googleapis.com' for consumer 'project_number:603366585132'."
)


def exhausted(status: int, message: str, metadata: dict[str, str]) -> dict[str, Any]:
    """Google's RESOURCE_EXHAUSTED answer with its ErrorInfo (the shape recorded from real
    Google: a per-day quota's is the per-minute one's, with a per-day limit and unit)."""
    return {
        "error": {
            "code": status,
            "message": message,
            "status": "RESOURCE_EXHAUSTED",
            "details": [error_info("RATE_LIMIT_EXCEEDED", **metadata)],
        }
    }


@pytest.mark.parametrize("status", [429, 403])
def test_a_daily_quota_spent_stops_the_run_at_once_naming_the_quota(mocked, status):
    """A per-day quota (ErrorInfo RATE_LIMIT_EXCEEDED with a per-day limit) was retried as a
    per-minute one: 8 requests and over a minute of waiting for a quota back tomorrow, and
    the error named no quota."""
    mocked.get(READ, status=status, json=exhausted(status, PER_DAY_MESSAGE, PER_DAY))
    mocked.get(READ, json={"valueRanges": [{"values": [["Timestamp"]]}]})
    google = session(max_retries=7)
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google).read_tab("S", "Form Responses 1")  # Google's message left out
    message = caught.value.message
    assert google.slept == [] and len(mocked.calls) == 1
    assert message.startswith(
        f"values.batchGet: HTTP {status} RESOURCE_EXHAUSTED; Google's quota "
        "ReadRequestsPerDayPerProject is spent for the day: the first run after it is "
        "renewed goes on where this one stopped"
    ), message
    assert caught.value.http_status == status and caught.value.retryable  # the next run


def test_a_daily_quota_said_only_in_the_message_stops_the_run_too(mocked):
    body = exhausted(429, PER_DAY_MESSAGE, {})
    body["error"].pop("details")
    mocked.get(READ, status=429, json=body)
    google = session(max_retries=7)
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google).read_tab("S", "Form Responses 1")
    assert google.slept == [] and len(mocked.calls) == 1
    assert "quota 'Read requests per day' is spent for the day" in caught.value.message


@pytest.mark.parametrize("reason", ["dailyLimitExceeded", "quotaExceeded"])
def test_a_daily_quota_reason_is_named(mocked, reason):
    body = forbidden(
        "Daily Limit Exceeded",
        errors=[{"domain": "usageLimits", "reason": reason, "message": "x"}],
    )
    mocked.get(SHEET, status=403, json=body)
    google = session()
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google).metadata("S")
    message = caught.value.message
    assert google.slept == [] and f"quota {reason} is spent for the day" in message, message


def test_a_per_minute_quota_is_waited_out_and_named_when_it_lasts(mocked, monkeypatch):
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    per_minute = {
        "quota_metric": "sheets.googleapis.com/read_requests",
        "quota_limit": "ReadRequestsPerMinutePerUser",
        "quota_unit": "1/min/{project}/{user}",
    }
    message = "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per "
    message += "minute per user' of service 'sheets.googleapis.com'"
    for _ in range(3):
        mocked.get(READ, status=429, json=exhausted(429, message, per_minute))
    google = session(max_retries=2)
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google).read_tab("S", "Form Responses 1")
    assert google.slept == [1, 2] and len(mocked.calls) == 3
    assert caught.value.message.startswith(
        "values.batchGet: HTTP 429 RESOURCE_EXHAUSTED after 3 attempts; a rate limit at "
        "Google (ReadRequestsPerMinutePerUser): the next run goes on where this one stopped"
    ), caught.value.message
    assert caught.value.retryable


# --- item: a 200 that is not JSON keeps its status --------------------------------------------


def test_a_200_that_is_not_json_says_so_and_keeps_its_status(mocked):
    """A batchUpdate answered 200 with an HTML page (a proxy's) failed as
    "spreadsheets.batchUpdate: JSONDecodeError": no status, no word of what was wrong."""
    page = b"<html><body>Welcome</body></html>"
    mocked.get(SHEET, body=page)
    mocked.post(SHEET + ":batchUpdate", body=page)
    mocked.post(SHEET + "/values:batchUpdate", body=page)
    api = SheetsApi(session())
    calls = [
        ("spreadsheets.get", lambda: api.metadata("S")),
        ("spreadsheets.batchUpdate", lambda: api.update_structure("S", [{"addSheet": {}}])),
        ("values.batchUpdate", lambda: api.write_values("S", [b"{}"])),
    ]
    for what, call in calls:
        with pytest.raises(GoogleApiError) as caught:
            call()
        assert caught.value.message == f"{what}: HTTP 200, the answer is not JSON"
        assert caught.value.http_status == 200


def test_a_forms_page_that_is_not_json_keeps_its_status(mocked):
    mocked.get("https://forms.googleapis.com/v1/forms/F/responses", body=b"<html>Welcome")
    with pytest.raises(GoogleApiError) as caught:
        list(FormsApi(session()).list_responses("F", since=None, page_size=10))
    assert caught.value.message == "forms.responses.list: HTTP 200, the answer is not JSON"
    assert caught.value.http_status == 200


@pytest.mark.parametrize(
    ("said", "kind"),
    [
        (
            'Invalid requests[2].addSheet: A sheet with the name "Zoë Lindqvist (7)" already '
            "exists. Please enter another name.",
            TabExistsError,
        ),
        ("Invalid requests[2].addSheet: 'Zoë Lindqvist (7)' is not a valid name.", GoogleApiError),
    ],
)
def test_a_structure_changes_message_keeps_no_tab_title_it_quotes(mocked, said, kind):
    # Agent tabs are titled with the agents' names; the message is logged, printed and kept
    # with the run's status. The quoted title goes, the rest of Google's words stay.
    body = {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": said}}
    mocked.post(f"{SHEET}:batchUpdate", status=400, json=body)
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(session()).update_structure("S", [{"addSheet": {}}])

    assert type(caught.value) is kind
    assert "Lindqvist" not in caught.value.message
    assert "Invalid requests[2].addSheet" in caught.value.message


def test_a_values_answer_that_is_too_deep_is_not_json_and_no_crash():
    """``json`` raises RecursionError on a document nested past the interpreter's limit; the
    read said nothing of it and crashed the run with it."""
    deep = b'{"valueRanges": [{"values": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]}"
    with pytest.raises(GoogleApiError, match=r"values\.batchGet: the answer is not JSON"):
        tab_rows(deep)
