"""Help Scout: people as payloads and the API describe them, and ids as Help Scout sends them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csat_hook.helpdesks.base import as_text
from csat_hook.helpdesks.records import Person


def user_of(value: Any) -> Person:
    """A Help Scout user or customer: ``first``/``last`` in payloads, ``firstName`` in the API."""
    if not isinstance(value, Mapping):
        return Person()
    first = as_text(value.get("first")) or as_text(value.get("firstName")) or ""
    last = as_text(value.get("last")) or as_text(value.get("lastName")) or ""
    return Person(
        id=nonzero_id(value.get("id")),
        name=f"{first} {last}".strip() or None,
        email=as_text(value.get("email")),
    )


def nonzero_id(value: Any) -> str | None:
    text = as_text(value)
    return text if text and text != "0" else None


def as_number(value: str) -> int | str:
    # Help Scout ids are numbers in its JSON; anything else is sent as given and refused there.
    return int(value) if value.isdigit() else value
