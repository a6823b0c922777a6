"""The Google boundary: configurable URLs, token handling, timeouts, bounded retries."""

from __future__ import annotations

import io
import json
import socket
import threading
import time

import pytest
import requests
from pydantic import ValidationError

from csat_hook import retry
from csat_hook.devtools.forms_model import RawJson
from csat_hook.devtools.sheets_model import SheetsApiError
from csat_hook.errors import ConfigError
from csat_hook.errors import GoogleApiError
from csat_hook.sync.config import GoogleConfig
from csat_hook.sync.google.api import JoinedBody
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.google.session import SHEETS_SCOPE
from csat_hook.sync.google.session import GoogleSession
from csat_hook.sync.google.session import RequestLog
from csat_hook.sync.google.session import build_session
from csat_hook.sync.google.session import load_credentials
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID


def test_every_call_goes_to_the_configured_bases_and_the_json_token_uri(
    fake_google, google_session
):
    fake_google.add_spreadsheet(SHEET_ID)
    calls: list[str] = []
    original = requests.Session.request

    def record(self, method, url, *args, **kwargs):
        calls.append(url)
        return original(self, method, url, *args, **kwargs)

    requests.Session.request = record
    try:
        SheetsApi(google_session).metadata(SHEET_ID)
    finally:
        requests.Session.request = original
    assert all(url.startswith(fake_google.url) for url in calls), calls
    assert [r["kind"] for r in fake_google.api_requests()] == ["token", "sheets_read"]
    # google-auth's Regional Access Boundary look-up runs in a thread after before_request();
    # the session never calls before_request, so no such thread and no such request exist.
    assert not any("allowedLocations" in url or "iamcredentials" in url for url in calls)
    assert not [t for t in threading.enumerate() if "regional" in t.name.lower()]


def test_a_base_url_with_a_path_prefix(fake_google):
    session = GoogleSession(
        credentials=None,
        bases={"https://sheets.googleapis.com": "http://proxy.internal/google/sheets/"},
        timeout=(1, 1),
        max_retries=0,
        backoff_base=0,
        backoff_cap=0,
    )
    assert session.rewrite("https://sheets.googleapis.com/v4/spreadsheets/x") == (
        "http://proxy.internal/google/sheets/v4/spreadsheets/x"
    )
    assert session.rewrite("https://sheets.googleapis.com.evil.example/x") == (
        "https://sheets.googleapis.com.evil.example/x"
    )


def test_the_token_is_fetched_once_and_refreshed_after_a_401(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID)
    api = SheetsApi(google_session)
    api.metadata(SHEET_ID)
    api.forget_metadata(SHEET_ID)
    api.metadata(SHEET_ID)
    assert fake_google.count("token") == 1
    fake_google._tokens.clear()  # Google revoked the token
    api.forget_metadata(SHEET_ID)
    api.metadata(SHEET_ID)
    assert fake_google.count("token") == 2
    assert [r["status"] for r in fake_google.api_requests("sheets_read")] == [200, 200, 401, 200]


def test_connection_failures_are_retried_then_reported(google_session):
    google_session.bases = {"https://sheets.googleapis.com": "http://127.0.0.1:9"}
    google_session.credentials = None
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google_session).metadata(SHEET_ID)
    assert "connection failed after 4 attempts" in caught.value.message
    assert caught.value.http_status is None and caught.value.retryable
    assert len(google_session.slept) == 3


def test_a_slow_answer_times_out(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.latency = 0.5
    google_session.default_timeout = (1, 0.1)
    google_session.max_retries = 1
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google_session).metadata(SHEET_ID)
    assert "timed out after 2 attempts" in caught.value.message


def test_retry_counts_and_kinds_are_logged(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.fail(1, 429, "sheets_read")
    SheetsApi(google_session).metadata(SHEET_ID)
    log: RequestLog = google_session.log
    assert log.as_dict() == {
        "sheets_read": 2,
        "sheets_write": 0,
        "forms_read": 0,
        "token": 1,
        "retries": 1,
    }


def test_bad_service_account_settings_name_the_key_and_never_echo_the_key(fake_google, rsa_key):
    with pytest.raises(ConfigError) as none:
        load_credentials(GoogleConfig(), [SHEETS_SCOPE])
    assert "google.service_account_file or google.service_account_json" in none.value.message
    # The variable works only through the file: said so, not as if it were read anyway.
    assert "service_account_json: ${GOOGLE_SERVICE_ACCOUNT_JSON}" in none.value.message
    broken = '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----SECRET'
    with pytest.raises(ConfigError) as bad_json:
        load_credentials(GoogleConfig(service_account_json=broken), [SHEETS_SCOPE])
    assert bad_json.value.message.startswith("google.service_account_json: not valid JSON")
    assert "SECRET" not in bad_json.value.message
    info = fake_google.service_account_info(key=rsa_key)
    del info["token_uri"]
    with pytest.raises(ConfigError) as missing:
        load_credentials(GoogleConfig(service_account_json=json.dumps(info)), [SHEETS_SCOPE])
    assert "lacks token_uri" in missing.value.message
    with pytest.raises(ConfigError) as no_file:
        build_session(GoogleConfig(service_account_file="/nonexistent/sa.json"), [SHEETS_SCOPE])
    assert no_file.value.message.startswith("google.service_account_file: cannot read")


def test_a_refused_token_is_a_clean_error(fake_google, rsa_key):
    info = fake_google.service_account_info(key=rsa_key)
    info["private_key_id"] = "unknown-key"
    session = build_session(
        GoogleConfig(service_account_json=json.dumps(info), sheets_base_url=fake_google.url),
        [SHEETS_SCOPE],
    )
    fake_google.add_spreadsheet(SHEET_ID)
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(session).metadata(SHEET_ID)
    assert "could not get an access token" in caught.value.message
    assert "invalid_grant" in caught.value.message


def test_the_default_retries_outlast_googles_quota_minute(fake_google, rsa_key, monkeypatch):
    """Sheets quotas refill per minute: with the defaults, 429s for a whole minute are
    ridden out even when every jittered wait comes out at its shortest (no real sleeping)."""
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)  # the worst case
    google = GoogleConfig(
        service_account_json=json.dumps(fake_google.service_account_info(key=rsa_key)),
        sheets_base_url=fake_google.url,
    )
    slept: list[float] = []
    session = build_session(google, [SHEETS_SCOPE], sleep=slept.append)
    fake_google.add_spreadsheet(SHEET_ID)
    api = SheetsApi(session)

    fake_google.fail(google.max_retries, 429, "sheets_read")
    api.metadata(SHEET_ID)
    assert len(slept) == google.max_retries == 7
    assert sum(slept) > 60
    assert slept == [1, 2, 4, 8, 16, 16, 16]  # half of 2·2ⁿ⁻¹ capped at 32: 63 s in all

    slept.clear()
    api.forget_metadata(SHEET_ID)
    fake_google.fail(google.max_retries + 1, 429, "sheets_read")
    with pytest.raises(GoogleApiError) as caught:
        api.metadata(SHEET_ID)
    assert "HTTP 429 RESOURCE_EXHAUSTED" in caught.value.message
    assert "after 8 attempts" in caught.value.message
    assert sum(slept) > 60


def test_a_retry_budget_shorter_than_the_quota_minute_is_refused():
    with pytest.raises(ValidationError) as caught:
        GoogleConfig(max_retries=5)  # the old default: 31 s at worst
    assert "may give up after 31 s of waiting" in str(caught.value)
    assert "quota window is 60 s" in str(caught.value)
    GoogleConfig(max_retries=0)  # fail at once, on purpose
    GoogleConfig(max_retries=3, backoff_base_seconds=24, backoff_cap_seconds=96)
    assert GoogleConfig().backoff.least_total(7) == 63


def test_backoff_least_total_is_the_sum_of_the_shortest_waits():
    backoff = retry.Backoff(2, 32)
    assert backoff.least_total(0) == 0
    assert backoff.least_total(5) == 1 + 2 + 4 + 8 + 16
    for _ in range(200):
        assert sum(backoff.delay(n) for n in range(1, 8)) >= backoff.least_total(7)


@pytest.mark.parametrize("parts", [[], [b"{}"], [b'{"a":1}', b"", b'{"b":"\xc3\xa9"}'] * 3])
def test_a_joined_body_reads_as_the_joined_bytes(parts):
    body = JoinedBody(b"[", parts, b"]")
    expected = b"[" + b",".join(parts) + b"]"
    assert len(body) == len(expected)
    for block in (1, 3, 8192):  # urllib3 reads in blocks; the pieces' seams fall anywhere
        body.seek(0)
        read = b"".join(iter(lambda size=block: body.read(size), b""))  # type: ignore[misc]
        assert read == expected and body.tell() == len(expected)
    assert body.seek(0, io.SEEK_END) == len(expected) and body.read(5) == b""
    body.seek(0)
    assert body.read() == expected
    with pytest.raises(io.UnsupportedOperation):
        body.seek(3)


def test_a_value_write_answered_503_is_sent_again_whole(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Summary", [], sheet_id=7, row_count=3000, col_count=3)
    api = SheetsApi(google_session)
    rows = [[f"row {n}", n, "é" * (n % 5)] for n in range(3000)]  # larger than one block
    item = json.dumps({"range": "'Summary'!A1:C3000", "majorDimension": "ROWS", "values": rows})
    fake_google.fail(1, 503, "sheets_write")
    api.write_values(SHEET_ID, [item.encode()])
    writes = fake_google.api_requests("sheets_write")
    assert [w["status"] for w in writes] == [503, 200]
    assert fake_google.cells(SHEET_ID, "Summary")[2999] == ["row 2999", 2999, "éééé"]


# --- answers google-auth or our reading cannot use: a Google API error, never a crash -------


@pytest.mark.parametrize(
    "answer",
    [
        {"access_token": "ya29.x", "expires_in": 10**30, "token_type": "Bearer"},
        {"access_token": "ya29.x", "expires_in": "soon", "token_type": "Bearer"},
        {"access_token": "ya29.x", "expires_in": [1], "token_type": "Bearer"},
        RawJson(b"<html>signed in</html>"),
        RawJson(b"[]"),
        RawJson(b'"ok"'),
    ],
    ids=["expires-1e30", "expires-text", "expires-list", "html", "list", "string"],
)
def test_a_token_answer_that_cannot_be_used_fails_the_run_as_a_google_error(
    kit, monkeypatch, answer
):
    kit.responses([EN_HEADER])
    monkeypatch.setattr(kit.fake, "issue_token", lambda form: (200, answer))
    summary = kit.run()
    assert summary.status == "failed"
    assert summary.error.startswith("could not get an access token"), summary.error


@pytest.mark.parametrize(
    "body",
    [[{"error": "x"}], "Service Unavailable", {"error": "quota"}, {"error": {"status": [1]}}],
    ids=["list", "string", "error-text", "status-list"],
)
def test_an_error_answer_of_any_shape_fails_the_run_as_a_google_error(kit, monkeypatch, body):
    kit.responses([EN_HEADER])

    def refuse(*_args: object) -> None:
        error = SheetsApiError(400, "")
        error.body = body  # type: ignore[assignment]
        raise error

    monkeypatch.setattr(kit.fake, "_route", refuse)
    summary = kit.run()
    assert summary.status == "failed"
    assert "HTTP 400" in summary.error, summary.error


def test_a_key_is_parsed_once_and_each_session_gets_its_own_credentials(
    fake_google, rsa_key, monkeypatch
):
    from google.oauth2 import service_account

    from csat_hook.sync.google import session as google_session_module

    parsed = []
    original = service_account.Credentials.from_service_account_info

    def counting(info, **kwargs):
        parsed.append(info["client_email"])
        return original(info, **kwargs)

    monkeypatch.setattr(service_account.Credentials, "from_service_account_info", counting)
    monkeypatch.setattr(google_session_module, "_PARSED_KEYS", {})  # none kept from other tests
    info = fake_google.service_account_info(key=rsa_key)
    config = GoogleConfig(service_account_json=json.dumps(info), sheets_base_url=fake_google.url)
    first = load_credentials(config, [SHEETS_SCOPE])
    second = load_credentials(config, [SHEETS_SCOPE])
    assert len(parsed) == 1
    assert first is not second  # no token carried from one run to the next
    assert first.token is None and second.token is None
    assert second.service_account_email == info["client_email"]
    # A session made from the kept key still gets a token and is authorised.
    fake_google.add_spreadsheet(SHEET_ID)
    session = build_session(config, [SHEETS_SCOPE])
    assert SheetsApi(session).metadata(SHEET_ID)["spreadsheetId"] == SHEET_ID
    # Another key (the operator rotated it): parsed, and its own e-mail.
    other = dict(info, client_email="rotated@example.iam.gserviceaccount.com")
    third = load_credentials(GoogleConfig(service_account_json=json.dumps(other)), [SHEETS_SCOPE])
    assert parsed == [info["client_email"], other["client_email"]]
    assert third.service_account_email == other["client_email"]
    # Other scopes: parsed again, not the first scopes' credentials.
    load_credentials(config, ["https://www.googleapis.com/auth/forms.responses.readonly"])
    assert len(parsed) == 3


def test_a_structure_write_whose_answer_is_lost_is_sent_once(fake_google, google_session):
    """spreadsheets.batchUpdate is not safe to send twice (rules deleted by index, a chart
    added under its id, metadata created): a lost answer is OutcomeUnknownError at once,
    whether no answer came or a 5xx; a value write is still sent again."""
    from csat_hook.sync.google.api import OutcomeUnknownError

    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(SHEET_ID, "Sheet1", [["a"]], sheet_id=0)
    api = SheetsApi(google_session)
    add = {"addSheet": {"properties": {"title": "Summary"}}}
    fake_google.lose(1, "sheets_write")
    with pytest.raises(OutcomeUnknownError) as lost:
        api.update_structure(SHEET_ID, [add])
    assert lost.value.http_status is None and "batchUpdate: connection failed" in str(lost.value)
    fake_google.lose(1, "sheets_write", status=500)
    with pytest.raises(OutcomeUnknownError) as failed:
        api.update_structure(SHEET_ID, [{"addSheet": {"properties": {"title": "Trends"}}}])
    assert failed.value.http_status == 500
    assert fake_google.titles(SHEET_ID) == ["Sheet1", "Summary", "Trends"]  # applied, once each
    assert [w["status"] for w in fake_google.api_requests("sheets_write")] == ["dropped", 500]
    assert google_session.slept == []
    fake_google.fail(1, 429, "sheets_write")  # a quota: nothing applied, retried as before
    api.update_structure(SHEET_ID, [{"addSheet": {"properties": {"title": "Responses"}}}])
    assert fake_google.titles(SHEET_ID)[-1] == "Responses"


# --- the token request: the session's timeout and retry policy, as every Google call -------


def test_a_token_request_left_unanswered_is_tried_again(fake_google, google_session, monkeypatch):
    """The token endpoint is an outbound call as any other: a token request that times out
    (or whose connection drops) is asked again within the session's retry budget, not the
    end of the run (google-auth retries only the 5xx answers it reads, never a timeout)."""
    fake_google.add_spreadsheet(SHEET_ID)
    google_session._token_request._timeout = (1, 0.2)
    original = fake_google.issue_token
    asked: list[int] = []

    def slow_first(form):
        asked.append(1)
        if len(asked) == 1:
            time.sleep(0.6)  # past the read timeout: no answer
        return original(form)

    monkeypatch.setattr(fake_google, "issue_token", slow_first)
    assert SheetsApi(google_session).metadata(SHEET_ID)["spreadsheetId"] == SHEET_ID
    assert len(asked) == 2
    assert len(google_session.slept) == 1 and google_session.log.as_dict()["retries"] == 1


def test_a_token_request_never_answered_fails_after_the_bounded_retries(
    fake_google, google_session, monkeypatch
):
    fake_google.add_spreadsheet(SHEET_ID)
    google_session._token_request._timeout = (1, 0.1)
    original = fake_google.issue_token

    def slow(form):
        time.sleep(0.3)
        return original(form)

    monkeypatch.setattr(fake_google, "issue_token", slow)
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google_session).metadata(SHEET_ID)
    assert caught.value.message.startswith("could not get an access token")
    assert "after 4 attempts" in caught.value.message
    assert len(google_session.slept) == 3
    assert fake_google.count("sheets_read") == 0


def test_a_refused_token_is_not_asked_again(fake_google, rsa_key, google_session):
    """invalid_grant is the same answer every time: no retries, no waiting."""
    info = fake_google.service_account_info(key=rsa_key)
    info["private_key_id"] = "unknown-key"
    google_session.credentials = load_credentials(
        GoogleConfig(service_account_json=json.dumps(info)), [SHEETS_SCOPE]
    )
    fake_google.add_spreadsheet(SHEET_ID)
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(google_session).metadata(SHEET_ID)
    assert "invalid_grant" in caught.value.message
    assert google_session.slept == [] and fake_google.count("token") == 1


def test_a_token_endpoint_unavailable_longer_than_google_auth_retries_is_waited_for(
    fake_google, google_session, monkeypatch
):
    from google.auth import _exponential_backoff

    monkeypatch.setattr(_exponential_backoff.time, "sleep", lambda _seconds: None)
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.fail(3, 503, "token")  # google-auth's own three tries, all 503
    assert SheetsApi(google_session).metadata(SHEET_ID)["spreadsheetId"] == SHEET_ID
    assert fake_google.count("token") == 4 and len(google_session.slept) == 1


@pytest.mark.parametrize("kind", ["installed", "web"])
def test_an_oauth_client_file_given_as_the_key_is_named_as_such(tmp_path, kind):
    """Google Cloud's "Create credentials" offers an OAuth client ID first: its JSON
    ({"installed": {...}} or {"web": {...}}) was refused as a service-account JSON lacking
    client_email, private_key and token_uri, which sent the operator looking for fields."""
    secret = "GOCSPX-not-to-be-shown"
    client = {kind: {"client_id": "1.apps.googleusercontent.com", "client_secret": secret}}
    path = tmp_path / "client_secret.json"
    path.write_text(json.dumps(client), encoding="utf-8")
    for google in (
        GoogleConfig(service_account_file=str(path)),
        GoogleConfig(service_account_json=json.dumps(client)),
    ):
        with pytest.raises(ConfigError) as caught:
            load_credentials(google, [SHEETS_SCOPE])
        message = caught.value.message
        assert "an OAuth client ID's JSON, not a service-account key" in message, message
        assert "Service accounts" in message and secret not in message
        assert "lacks" not in message


def test_an_unreachable_token_endpoint_is_named_with_its_key_within_seconds(fake_google, rsa_key):
    """A token_uri nothing answers at (a typo, a firewall) took ~88 s of the defaults'
    retries (7, up to 32 s apart: the quota minute's budget) and then said only "the
    token_uri of the service-account JSON": neither the URL nor where it is set."""
    with socket.socket() as probe:  # a port nothing listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    info = {
        **fake_google.service_account_info(key=rsa_key),
        "token_uri": f"http://127.0.0.1:{port}/token",
    }
    slept: list[float] = []
    google = GoogleConfig(service_account_json=json.dumps(info), sheets_base_url=fake_google.url)
    with pytest.raises(GoogleApiError) as caught:
        SheetsApi(build_session(google, [SHEETS_SCOPE], sleep=slept.append)).metadata(SHEET_ID)
    assert caught.value.message == (
        f"could not get an access token from http://127.0.0.1:{port}/token (the token_uri "
        "in google.service_account_json): connection failed after 4 attempts"
    ), caught.value.message
    assert caught.value.retryable
    assert len(slept) == 3 and sum(slept) <= 7, slept
