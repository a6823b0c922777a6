"""Kit for Zendesk (an event-subscription close, the agent named by the static directory),
and the signing helper the Zendesk tests share.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import SignedRequest
from tests.helpers import body_of
from tests.helpers import fixture

KIT_SECRET = "kit-zd-secret"


def zendesk_headers(body: bytes, secret: str, when: datetime) -> dict[str, str]:
    """Headers Zendesk sends: base64(HMAC-SHA256(secret, timestamp + body)), ISO timestamp."""
    timestamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "Zendesk Webhook",
        "X-Zendesk-Account-Id": "22129848",
        "X-Zendesk-Webhook-Id": "01GK8E6BKWMJZD2T8Y5AXJQMG5",
        "X-Zendesk-Webhook-Invocation-Id": "8350205582",
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
    }


def zendesk_signed(payload: Any, when: datetime, secret: str = KIT_SECRET) -> SignedRequest:
    body = body_of(payload)
    return body, zendesk_headers(body, secret, when), {}


def _zendesk_check(requests: list[dict[str, Any]], tmp: Path) -> None:
    [request] = requests
    assert request["method"] == "PUT" and request["path"] == "/api/v2/tickets/5158.json"
    expected = base64.b64encode(b"kit@example.com/token:kit-zd-token").decode()
    assert request["headers"]["Authorization"] == f"Basic {expected}"
    ticket = request["body"]["ticket"]
    assert ticket["status"] == "solved" and ticket["comment"]["public"] is True
    assert set(ticket["comment"]) == {"html_body", "public"}
    assert "entry.444=" in ticket["comment"]["html_body"]


KIT = Kit(
    kind="zendesk",
    options=lambda url, tmp: {
        "base_url": url,
        "email": "kit@example.com",
        "api_token": "kit-zd-token",
        "webhook_secret": KIT_SECRET,
        "agents": {"8447388090494": {"name": "Anna Petrova"}},
    },
    closed=lambda now: zendesk_signed(fixture("zendesk", "ticket_status_changed_solved.json"), now),
    other=lambda now: zendesk_signed(fixture("zendesk", "ticket_priority_changed.json"), now),
    dialog_id="5158",
    agent_name="Anna Petrova",
    id_paths=("id", "detail.id", "detail.assignee_id", "detail.requester_id", "detail.group_id"),
    check_reply=_zendesk_check,
    sign=lambda body, now: (body, zendesk_headers(body, KIT_SECRET, now), {}),
    previous_key="previous_webhook_secrets",
    sign_with=lambda body, now, secret: (body, zendesk_headers(body, secret, now), {}),
)
