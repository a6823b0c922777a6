"""Fixtures for the destinations: the fake receivers, a sample alert, a destination built
from options the way the service builds it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import TypeAdapter

from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.notify import build_destinations
from csat_hook.notify.base import Destination
from csat_hook.notify.options import AnyDestination
from csat_hook.notify.records import AlertMessage
from tests.conftest import FakeClock

NASTY_COMMENT = (
    'Ждал ответа 3 дня <!channel> <@U024BE7LH> & <script>alert("x")</script> *bold* '
    "https://evil.example/|label > quoted"
)


def flood_wait(seconds: int) -> dict[str, Any]:
    """Telegram's answer to a flood: ``ok`` false, error 429, the wait in
    ``parameters.retry_after`` (the Bot API sends no Retry-After header)."""
    return {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {seconds}",
        "parameters": {"retry_after": seconds},
    }


@pytest.fixture
def fake_notify() -> Iterator[FakeNotify]:
    fake = FakeNotify().start()
    yield fake
    fake.stop()


def sample(**changes: Any) -> AlertMessage:
    """A low rating with a comment that tries every kind of markup injection."""
    values: dict[str, Any] = {
        "ref": "csat-alert-0123456789abcdef01234567",
        "event": "low_rating",
        "rule": "low_rating",
        "created_at": "2026-11-20T12:00:00+00:00",
        "helpdesk": "chatwoot",
        "dialog_id": "4512",
        "ticket_url": "https://acme.example/app/conversations/4512?a=1&b=x|y>z",
        "agent_key": "14",
        "agent_name": "Anna <admin> & Co",
        "team": "Support L1",
        "rating": 2,
        "comment": NASTY_COMMENT,
        "submitted_at": "2026-11-20T11:58:00+00:00",
    }
    values.update(changes)
    return AlertMessage(**values)


def build(name: str, options: dict[str, Any], *, clock: Any = None, **http: Any) -> Destination:
    validated = TypeAdapter(AnyDestination).validate_python(options)
    client = HttpClient(
        connect_timeout=http.get("connect_timeout", 1),
        read_timeout=http.get("read_timeout", 2),
        sleep=lambda _s: None,
    )
    built = build_destinations(
        {name: validated},
        http=client,
        helpdesks=http.get("helpdesks", {}),
        clock=clock or FakeClock(),
    )
    return built[name]
