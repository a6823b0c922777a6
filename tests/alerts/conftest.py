"""Fixtures for the alerts flow: fake receivers, an alerts section pointing at them, answers
as a sync hands them to the rules, and raising alerts in a transaction as the sync does."""

from __future__ import annotations

import base64
from collections.abc import Callable
from collections.abc import Iterator
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from csat_hook.alerts.engine import AlertsOutcome
from csat_hook.alerts.engine import Changed
from csat_hook.alerts.engine import Inputs
from csat_hook.alerts.engine import Scale
from csat_hook.alerts.engine import raise_alerts
from csat_hook.config import Config
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.services import Services
from tests.conftest import FakeClock

TOKEN = "123456789:AAH0fakeBotTokenForTests_abcdefghijkl"
CHAT = "-1001234567890"
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


@pytest.fixture
def fake_notify(clock: FakeClock) -> Iterator[FakeNotify]:
    fake = FakeNotify(now=lambda: clock().timestamp()).start()
    yield fake
    fake.stop()


def alerts_section(fake: FakeNotify, **extra: Any) -> dict[str, Any]:
    """Slack, Telegram and a webhook at the fake; a note in the dialog's helpdesk; one rule
    for ratings of 2 or less sending to all four."""
    section: dict[str, Any] = {
        "destinations": {
            "slack": {"kind": "slack", "webhook_url": fake.slack_hook()},
            "telegram": {
                "kind": "telegram",
                "bot_token": TOKEN,
                "chat_id": CHAT,
                "base_url": fake.telegram_bot(TOKEN, CHAT),
            },
            "crm": {"kind": "webhook", "url": fake.webhook("crm", SECRET), "secret": SECRET},
            "note": {"kind": "helpdesk_note"},
        },
        "rules": [
            {
                "name": "low",
                "kind": "low_rating",
                "max_rating": 2,
                "destinations": ["slack", "telegram", "crm", "note"],
            }
        ],
    }
    section.update(extra)
    return section


def generic_notes(fake_url: str) -> dict[str, Any]:
    """The test generic helpdesk (replies and notes at the fake helpdesk, both looked up)."""
    messages = fake_url + "/api/dialogs/{dialog_id}/messages"
    return {
        "kind": "generic",
        "auth": {"mode": "token", "token": "generic-token-123"},
        "reply": {"url": messages, "headers": {"Authorization": "Bearer generic-api-key"}},
        "note": {"url": messages, "body": {"text": "{text}", "private": True}},
        "note_lookup": {
            "url": messages,
            "messages": "messages",
            "text": "text",
            "created_at": "created_at",
        },
    }


def changed(**values: Any) -> Changed:
    defaults: dict[str, Any] = {
        "survey_key": "survey-1",
        "token": "",
        "helpdesk": "generic",
        "dialog_id": "D-1001",
        "agent_key": "7",
        "rating": 1,
        "comment": "Nobody answered for three days",
        "submitted_at": datetime(2026, 11, 20, 11, 58, tzinfo=ZoneInfo("UTC")),
        "agent_name": "Anna Petrova",
    }
    defaults.update(values)
    return Changed(**defaults)


def raise_now(
    services: Services,
    answers: list[Changed],
    *,
    data: Any = None,
    config: Config | None = None,
) -> AlertsOutcome:
    """Run the rules over ``answers`` in one transaction, as the sync does after its ingest."""
    config = config or services.config
    metrics = config.metrics
    inputs = Inputs(
        changed=answers,
        data=data,
        scale=Scale(metrics.scale_min, metrics.scale_max, metrics.top_box),
        tz=ZoneInfo(metrics.timezone),
        helpdesks=config.helpdesks,
        now=services.clock(),
    )
    with services.engine.begin() as conn:
        return raise_alerts(conn, config.alerts, inputs)


@pytest.fixture
def alerting(
    make_config: Callable[..., Config],
    make_services: Callable[[Config], Services],
    fake_notify: FakeNotify,
    fake_helpdesk: Any,
    clock: FakeClock,
) -> Services:
    """Services with the alerts section above, the clock two minutes after the answer."""
    clock.now = datetime(2026, 11, 20, 12, 0, tzinfo=ZoneInfo("UTC"))
    config = make_config(
        alerts=alerts_section(fake_notify),
        helpdesks={"generic": generic_notes(fake_helpdesk.url)},
    )
    return make_services(config)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
