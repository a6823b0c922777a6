"""Kit for Freshdesk (an automation-rule close authenticated by a shared-secret header)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import json_headers
from tests.helpers import body_of
from tests.helpers import fixture


def _freshdesk_check(requests: list[dict[str, Any]], tmp: Path) -> None:
    [request] = requests
    assert request["method"] == "POST" and request["path"] == "/api/v2/tickets/1042/reply"
    expected = base64.b64encode(b"kit-fd-key:X").decode()
    assert request["headers"]["Authorization"] == f"Basic {expected}"
    body = request["body"]["body"]
    assert body.startswith("<p>") and body.endswith("</p>")
    assert '<a href="https://docs.google.com/forms/' in body and "entry.444=" in body


KIT = Kit(
    kind="freshdesk",
    options=lambda url, tmp: {
        "base_url": url,
        "api_key": "kit-fd-key",
        "webhook_token": "kit-fd-token",
    },
    closed=lambda now: (
        body_of(fixture("freshdesk", "automation_resolved.json")),
        json_headers({"X-Csat-Hook-Token": "kit-fd-token"}),
        {},
    ),
    other=lambda now: (
        body_of(fixture("freshdesk", "automation_note_added.json")),
        json_headers({"X-Csat-Hook-Token": "kit-fd-token"}),
        {},
    ),
    dialog_id="1042",
    agent_name="Anna Petrova",
    id_paths=("ticket.id", "ticket.agent.id", "ticket.requester.id"),
    check_reply=_freshdesk_check,
    sign=lambda body, now: (body, json_headers({"X-Csat-Hook-Token": "kit-fd-token"}), {}),
    tamper=lambda r: (r[0], {**r[1], "X-Csat-Hook-Token": "kit-fd-tokeN"}, r[2]),
    previous_key="previous_webhook_tokens",
    sign_with=lambda body, now, token: (body, json_headers({"X-Csat-Hook-Token": token}), {}),
)
