"""The Google client against a hostile network or a flaky Google: odd Retry-After values,
403s that mean different things, answers that are not Google's shape, slow and huge answers.

Requests are answered by ``responses`` at Google's canonical origins (the session rewrites
nothing: no bases configured), so every answer is exactly the one scripted here.
"""

from __future__ import annotations

from typing import Any

import pytest
import responses

from csat_hook import retry
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.google.session import GoogleSession

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
