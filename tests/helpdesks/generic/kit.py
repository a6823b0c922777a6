"""Kit for the generic adapter (HMAC mode)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import SignedRequest
from tests.helpdesks.kits import json_headers
from tests.helpers import body_of
from tests.helpers import generic_close

KIT_SECRET = "kit-generic-secret"


def _generic_check(requests: list[dict[str, Any]], tmp: Path) -> None:
    [request] = requests
    assert request["method"] == "POST" and request["path"] == "/api/dialogs/D-2/messages"
    assert request["headers"]["Authorization"] == "Bearer kit-api"
    assert request["headers"]["Idempotency-Key"].startswith("csat-hook-")
    assert request["body"]["dialog_id"] == "D-2" and "entry.444=" in request["body"]["text"]


KIT = Kit(
    kind="generic",
    options=lambda url, tmp: {
        "auth": {
            "mode": "hmac",
            "secret": "kit-generic-secret",
            "signature_header": "X-Sig",
            "signature_prefix": "sha256=",
        },
        "reply": {
            "url": url + "/api/dialogs/{dialog_id}/messages",
            "headers": {"Authorization": "Bearer kit-api"},
        },
    },
    closed=lambda now: _generic_signed(generic_close("D-2")),
    other=lambda now: _generic_signed({"event": "dialog.note_added", "dialog": {"id": "D-2"}}),
    dialog_id="D-2",
    agent_name="Anna Petrova",
    id_paths=("dialog.id", "agent.id", "customer.id"),
    check_reply=_generic_check,
    sign=lambda body, now: _generic_signed_body(body),
    previous_key="auth.previous_secrets",
    sign_with=lambda body, now, secret: _generic_signed_body(body, secret),
)


def _generic_signed(payload: dict[str, Any]) -> SignedRequest:
    return _generic_signed_body(body_of(payload))


def _generic_signed_body(body: bytes, secret: str = KIT_SECRET) -> SignedRequest:
    import hashlib
    import hmac

    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, json_headers({"X-Sig": "sha256=" + digest}), {}
