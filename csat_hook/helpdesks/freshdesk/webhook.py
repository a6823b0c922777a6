"""Freshdesk: reading the automation rule's rendered body (people, the triggered event)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from csat_hook.helpdesks.placeholders import rendered
from csat_hook.helpdesks.placeholders import rendered_id
from csat_hook.helpdesks.records import Person


def person_of(value: Any, field: str) -> Person:
    """A person from the rendered body (at ``field``; a refused id names it)."""
    if not isinstance(value, Mapping):
        return Person()
    return Person(
        id=rendered_id(value.get("id"), f"{field}.id"),
        name=rendered(value.get("name")),
        email=rendered(value.get("email")),
    )


# JSON's quotes, and the backslashes that escape them once more when a tool between Freshdesk
# and us quoted the text again.
_JSON_QUOTING = re.compile(r'[\\"]')


def triggered_event(value: Any, *, limit: int) -> str | None:
    """``{{triggered_event}}`` as Freshdesk renders it, ``{status:{from:2,to:4}}``, at most
    ``limit`` characters; None when empty or unrendered. The same change written as JSON (the
    placeholder pasted without quotes arrives as an object; rendered JSON-quoted, as text with
    quotes, perhaps escaped again) reads the same: its quotes and backslashes are dropped, so
    the status change is seen and its occurrence is the one the unquoted rendering has."""
    if isinstance(value, Mapping):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = rendered(value)
    if text is None:
        return None
    return _JSON_QUOTING.sub("", text)[:limit] or None


def compact(event: str) -> str:
    return re.sub(r"\s+", "", event)
