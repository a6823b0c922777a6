"""Kit for Help Scout: a convo.status close, signed like Help Scout signs."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import SignedRequest
from tests.helpers import body_of
from tests.helpers import fixture


def helpscout_headers(body: bytes, secret: str, event: str = "convo.status") -> dict[str, str]:
    """What Help Scout sends: X-HelpScout-Signature: base64(HMAC-SHA1(secret, body))."""
    digest = hmac.new(secret.encode(), body, hashlib.sha1).digest()
    return {
        "Content-Type": "application/json",
        "X-HelpScout-Event": event,
        "X-HelpScout-Signature": base64.b64encode(digest).decode("ascii"),
    }


def _helpscout_check(requests: list[dict[str, Any]], tmp: Path) -> None:
    token, reply = requests
    assert token["method"] == "POST" and token["path"] == "/v2/oauth2/token"
    assert token["body"] == {
        "grant_type": "client_credentials",
        "client_id": "kit-hs-app",
        "client_secret": "kit-hs-app-secret",
    }
    assert reply["method"] == "POST" and reply["path"] == "/v2/conversations/2391938111/reply"
    assert reply["headers"]["Authorization"] == f"Bearer fake-token-{token['n']}"
    body = reply["body"]
    assert body["customer"] == {"id": 238604} and body["status"] == "closed"
    assert "user" not in body and "entry.444=" in body["text"]


KIT = Kit(
    kind="helpscout",
    options=lambda url, tmp: {
        "base_url": url,
        "client_id": "kit-hs-app",
        "client_secret": "kit-hs-app-secret",
        "webhook_secret": "kit-hs-webhook-secret",
    },
    closed=lambda now: _helpscout_signed("convo.status.closed.json", "convo.status"),
    other=lambda now: _helpscout_signed("convo.assigned.json", "convo.assigned"),
    dialog_id="2391938111",
    agent_name="Mira Novak",
    id_paths=(
        "id",
        "assignee.id",
        "primaryCustomer.id",
        "createdBy.id",
        "closedByUser.id",
        "mailboxId",
    ),
    check_reply=_helpscout_check,
    sign=lambda body, now: (body, helpscout_headers(body, "kit-hs-webhook-secret"), {}),
    previous_key="previous_webhook_secrets",
    sign_with=lambda body, now, secret: (body, helpscout_headers(body, secret), {}),
)


def _helpscout_signed(name: str, event: str) -> SignedRequest:
    body = body_of(fixture("helpscout", name))
    return body, helpscout_headers(body, "kit-hs-webhook-secret", event), {}
