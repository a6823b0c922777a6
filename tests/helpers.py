"""Signing and payload helpers shared by the tests (each mirrors the vendor's own scheme)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import urllib.parse
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

HELPDESKS = Path(__file__).parent / "helpdesks"


def fixture_path(vendor: str, name: str) -> Path:
    """A saved vendor payload: ``tests/helpdesks/<vendor>/fixtures/<name>``."""
    return HELPDESKS / vendor / "fixtures" / name


def fixture(vendor: str, name: str) -> dict[str, Any]:
    """A fresh copy of a saved vendor payload."""
    data = json.loads(fixture_path(vendor, name).read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def body_of(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def chatwoot_headers(
    body: bytes, secret: str, when: datetime, delivery: str = "5d8c2e9a-8a0e-4a47-b9d1-2a3c4d5e6f70"
) -> dict[str, str]:
    """Headers Chatwoot 4.11.2+ sends: sha256=hex(HMAC(secret, f"{ts}.{body}"))."""
    timestamp = str(int(when.timestamp()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return {
        "Content-Type": "application/json",
        "X-Chatwoot-Signature": "sha256=" + digest.hexdigest(),
        "X-Chatwoot-Timestamp": timestamp,
        "X-Chatwoot-Delivery": delivery,
    }


def generic_close(
    dialog_id: str = "D-1001", agent_id: str = "7", agent_name: str = "Anna Petrova", **extra: Any
) -> dict[str, Any]:
    """A close event in the generic adapter's default format."""
    payload: dict[str, Any] = {
        "event": "dialog.closed",
        "dialog": {"id": dialog_id},
        "agent": {"id": agent_id, "name": agent_name, "email": "anna@example.com"},
        "customer": {"id": "cust-1", "name": "Ivan", "email": "ivan@example.org"},
        "team": "Support L1",
        "channel": "chat",
        "language": "en",
    }
    payload.update(extra)
    return payload


def link_fields(link: str) -> dict[str, str]:
    """entry.N → value of a Google Forms pre-filled link."""
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))


class HostAhead(datetime):
    """``datetime`` on a host whose clock runs 40 minutes ahead: more than the sync lease's
    15-minute default. ``monkeypatch.setattr(csat_hook.clock, "datetime", HostAhead)`` puts
    this process on such a host (``csat_hook.clock.utcnow`` reads it)."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return datetime.now(tz) + timedelta(minutes=40)
