"""Kit for Intercom: a 1.x close (the item names the assignee), signed like Intercom signs."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import SignedRequest
from tests.helpers import body_of
from tests.helpers import fixture


def intercom_headers(body: bytes, secret: str) -> dict[str, str]:
    """What Intercom sends: X-Hub-Signature: sha1=hex(HMAC-SHA1(client_secret, body))."""
    digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return {"Content-Type": "application/json", "X-Hub-Signature": "sha1=" + digest}


def _intercom_check(requests: list[dict[str, Any]], tmp: Path) -> None:
    reply, close = requests
    assert reply["method"] == "POST"
    assert reply["path"] == "/conversations/137324500000000/reply"
    assert reply["headers"]["Authorization"] == "Bearer kit-ic-token"
    assert reply["headers"]["Intercom-Version"] == "2.14"
    body = reply["body"]
    assert (body["message_type"], body["type"], body["admin_id"]) == ("comment", "admin", "3330619")
    assert body["body"].startswith("<p>") and "entry.444=" in body["body"]
    # The fake's answer does not say "closed", so the reopened conversation is closed again.
    assert close["path"] == "/conversations/137324500000000/parts"
    assert close["body"] == {"message_type": "close", "type": "admin", "admin_id": "3330619"}


KIT = Kit(
    kind="intercom",
    options=lambda url, tmp: {
        "base_url": url,
        "access_token": "kit-ic-token",
        "client_secret": "kit-ic-secret",
    },
    closed=lambda now: _intercom_signed("conversation.admin.closed.v1.json"),
    other=lambda now: _intercom_signed("conversation.admin.replied.json"),
    dialog_id="137324500000000",
    agent_name="Andrea Ruiz",
    id_paths=(
        "id",
        "data.item.id",
        "data.item.user.id",
        "data.item.assignee.id",
        "data.item.conversation_parts.conversation_parts.0.author.id",
    ),
    check_reply=_intercom_check,
    sign=lambda body, now: (body, intercom_headers(body, "kit-ic-secret"), {}),
    previous_key="previous_client_secrets",
    sign_with=lambda body, now, secret: (body, intercom_headers(body, secret), {}),
)


def _intercom_signed(name: str) -> SignedRequest:
    body = body_of(fixture("intercom", name))
    return body, intercom_headers(body, "kit-ic-secret"), {}
