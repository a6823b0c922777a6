"""Zendesk: reading webhook values (statuses, ids, people) as the adapter's parse needs them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csat_hook.helpdesks.payload import as_id
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.placeholders import rendered
from csat_hook.helpdesks.placeholders import rendered_id
from csat_hook.helpdesks.records import Person


def status_of(value: Any) -> str | None:
    """A status from an event (``"SOLVED"``, or ``{"status": "Solved"}``), lower-case."""
    if isinstance(value, Mapping):
        value = value.get("status")
    text = as_text(value)
    return text.lower() if text else None


def zendesk_id(value: Any, field: str) -> str | None:
    """An id from an event (``field`` is its path, named when it is refused); Zendesk writes
    "0" (or null) where there is none."""
    text = as_id(value, field)
    return None if text in (None, "0") else text


def person_of(value: Any, field: str) -> Person:
    if not isinstance(value, Mapping):
        return Person()
    return Person(
        id=zendesk_id(rendered_id(value.get("id"), f"{field}.id"), f"{field}.id"),
        name=rendered(value.get("name")),
        email=rendered(value.get("email")),
    )
