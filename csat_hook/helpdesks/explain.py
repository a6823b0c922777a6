"""``csat-hook inspect-payload``: what a received payload contains and what we take from it.

Built for helpdesks whose webhook format is not documented (Eadesk/Yeahdesk): save one real
payload (``capture_dir`` on a generic helpdesk does it), then read it here while writing the
mapping.
"""

from __future__ import annotations

import json
from typing import Any

from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.records import WebhookRequest

MAX_VALUE = 60
MASK = "***"


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every leaf of a JSON document with its JMESPath (``a.b[0].c``)."""
    if isinstance(value, dict):
        if not value:
            return [(prefix or "@", {})]
        items: list[tuple[str, Any]] = []
        for key, item in value.items():
            name = key if _plain(key) else json.dumps(key, ensure_ascii=False)
            items.extend(flatten(item, f"{prefix}.{name}" if prefix else name))
        return items
    if isinstance(value, list):
        if not value:
            return [(prefix or "@", [])]
        return [pair for i, item in enumerate(value) for pair in flatten(item, f"{prefix}[{i}]")]
    return [(prefix or "@", value)]


def _plain(key: str) -> bool:
    return key.replace("_", "a").isalnum() and key.isascii() and not key[:1].isdigit()


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"


def masked(value: Any, secrets: list[str]) -> Any:
    """``value`` with every occurrence of ``secrets`` in its strings replaced by ``***``."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {masked(k, secrets): masked(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, secrets) for v in value]
    return value


def describe_payload(adapter: Helpdesk, request: WebhookRequest, *, verify: bool) -> str:
    """A report: every path in the payload, then the adapter's reading of it. A secret the
    payload carries (a token in a body field) is shown as ``***``."""
    lines = [f"helpdesk: {adapter.name} (kind {adapter.kind})"]
    if verify:
        previous = adapter.verify(request)
        if previous is None:
            lines.append("sender: verified")
        else:  # a rotation's previous secret: its place, never the secret
            lines.append(f"sender: verified by {previous.key}.{previous.index} (a previous secret)")
    else:
        # A token or signature given (-q, -H, --url) without --verify was never checked, and
        # nothing said so: a wrong token read as a DialogClosed that looked accepted.
        lines.append("sender: not checked (add --verify to check it as the web app does)")
    secrets = adapter.payload_secrets()
    payload = masked(request.json(), secrets)
    lines.append("")
    lines.append("paths in the payload:")
    for path, value in flatten(payload):
        lines.append(f"  {path} = {_short(value)}")
    explained = masked(adapter.explain(request), secrets)
    lines.append("")
    if "expressions" in explained:
        lines.append("mapping (JMESPath → value):")
        for key, expr in explained["expressions"].items():
            found = explained["extracted"].get(key)
            mark = "" if found not in (None, "", [], {}) else "   <-- nothing here"
            lines.append(f"  {key}: {expr} → {_short(found)}{mark}")
        lines.append("")
    result = {k: v for k, v in explained.items() if k not in ("expressions", "extracted")}
    lines.append(f"result: {result.pop('result')}")
    for key, value in result.items():
        # A plain string as it is; one with a line break or an ESC quoted (JSON escapes).
        plain = isinstance(value, str) and value.isprintable()
        lines.append(f"  {key}: {value if plain else _short(value)}")
    return "\n".join(lines)
