"""Kit for Chatwoot."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import SignedRequest
from tests.helpers import body_of
from tests.helpers import chatwoot_headers
from tests.helpers import fixture


def _chatwoot_check(requests: list[dict[str, Any]], tmp: Path) -> None:
    [request] = requests
    assert request["method"] == "POST"
    assert request["path"] == "/api/v1/accounts/1/conversations/10/messages"
    assert request["headers"]["api_access_token"] == "kit-cw-token"
    body = request["body"]
    assert body["message_type"] == "outgoing" and body["private"] is False
    assert body["content_type"] == "text" and "entry.444=" in body["content"]


KIT = Kit(
    kind="chatwoot",
    options=lambda url, tmp: {
        "base_url": url,
        "api_access_token": "kit-cw-token",
        "webhook_secret": "kit-cw-secret",
    },
    closed=lambda now: _chatwoot_signed("conversation_status_changed_resolved.json", now),
    other=lambda now: _chatwoot_signed("conversation_updated.json", now),
    dialog_id="10",
    agent_name="John",
    id_paths=("id", "meta.assignee.id", "meta.sender.id", "messages.0.account_id"),
    check_reply=_chatwoot_check,
    sign=lambda body, now: (body, chatwoot_headers(body, "kit-cw-secret", now), {}),
    previous_key="previous_webhook_secrets",
    sign_with=lambda body, now, secret: (body, chatwoot_headers(body, secret, now), {}),
)


def _chatwoot_signed(name: str, now: datetime) -> SignedRequest:
    body = body_of(fixture("chatwoot", name))
    return body, chatwoot_headers(body, "kit-cw-secret", now), {}
