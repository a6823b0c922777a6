"""Help Scout: people as payloads and the API describe them, and ids as Help Scout sends them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csat_hook.errors import BadPayloadError
from csat_hook.helpdesks.payload import as_id
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import WebhookRequest


def user_of(value: Any, field: str) -> Person:
    """A Help Scout user or customer (at ``field`` in the payload): ``first``/``last`` in
    payloads, ``firstName`` in the API."""
    if not isinstance(value, Mapping):
        return Person()
    first = as_text(value.get("first")) or as_text(value.get("firstName")) or ""
    last = as_text(value.get("last")) or as_text(value.get("lastName")) or ""
    return Person(
        id=nonzero_id(value.get("id"), f"{field}.id"),
        name=f"{first} {last}".strip() or None,
        email=as_text(value.get("email")),
    )


def nonzero_id(value: Any, field: str) -> str | None:
    """An id (at ``field``, named when it is refused); "0" means none."""
    text = as_id(value, field)
    return text if text and text != "0" else None


def as_number(value: str) -> int | str:
    # Help Scout ids are numbers in its JSON; anything else is sent as given and refused there.
    # ASCII digits only: str.isdigit() is also true of "²" (int() refuses it) and "٣" (int()
    # reads it as 3, another customer's id).
    return int(value) if value.isascii() and value.isdigit() else value


def resource_uri_only(request: WebhookRequest) -> bool:
    """Whether a ``convo.status`` body is what a notification webhook sends ("just a resource
    URI", undocumented beyond that) rather than the Conversation object: a JSON object
    without the conversation's ``status`` (which every Conversation object has), or a URI
    alone, as a JSON string or as the body's text. Any other body is for the caller to read
    (and refuse)."""
    try:
        payload = request.json()
    except BadPayloadError:
        payload = request.body.decode("utf-8", "replace").strip()
    if isinstance(payload, str):
        return payload.lower().startswith(("https://", "http://"))
    return isinstance(payload, Mapping) and "status" not in payload
