"""Kit for the dry-run helpdesk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import json_headers
from tests.helpers import body_of
from tests.helpers import generic_close


def _dryrun_check(requests: list[dict[str, Any]], tmp: Path) -> None:
    assert requests == []  # nothing leaves the machine
    [line] = (tmp / "dry.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert record["dialog_id"] == "D-1" and "docs.google.com/forms" in record["link"]


KIT = Kit(
    kind="dryrun",
    options=lambda url, tmp: {
        "output": str(tmp / "dry.jsonl"),
        "auth": {"mode": "token", "token": "kit-dry-token"},
    },
    closed=lambda now: (
        body_of(generic_close("D-1")),
        json_headers({"X-Webhook-Token": "kit-dry-token"}),
        {},
    ),
    other=lambda now: (
        body_of({"event": "dialog.assigned", "dialog": {"id": "D-1"}}),
        json_headers({"X-Webhook-Token": "kit-dry-token"}),
        {},
    ),
    dialog_id="D-1",
    agent_name="Anna Petrova",
    id_paths=("dialog.id", "agent.id", "customer.id"),
    check_reply=_dryrun_check,
    sign=lambda body, now: (body, json_headers({"X-Webhook-Token": "kit-dry-token"}), {}),
    tamper=lambda r: (r[0], {**r[1], "X-Webhook-Token": "kit-dry-tokeN"}, r[2]),
    previous_key="auth.previous_tokens",
    sign_with=lambda body, now, token: (body, json_headers({"X-Webhook-Token": token}), {}),
)
