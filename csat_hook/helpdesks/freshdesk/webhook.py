"""Freshdesk: reading the automation rule's rendered body (people, the triggered event)."""

from __future__ import annotations

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


def compact(event: str) -> str:
    return re.sub(r"\s+", "", event)
