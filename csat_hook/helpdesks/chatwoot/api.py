"""Reading Chatwoot's answers: messages of a conversation (is one ours?), error shapes, and the
previous status of a status change (did it leave ``resolved``?)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csat_hook.helpdesks.calls import carries_marker
from csat_hook.helpdesks.chatwoot.options import OUTGOING
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import dig
from csat_hook.helpdesks.payload import parse_timestamp
from csat_hook.helpdesks.reasons import ErrorItem
from csat_hook.helpdesks.reasons import as_items


def is_message(value: Any) -> bool:
    return isinstance(value, Mapping) and message_id(value) > 0


def message_id(message: Mapping[str, Any]) -> int:
    value = message.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def created(message: Mapping[str, Any]) -> float:
    when = parse_timestamp(message.get("created_at"))
    return when.timestamp() if when else 0.0


def is_ours(message: Mapping[str, Any], marker: str, floor: float, *, private: bool) -> bool:
    """Outgoing, public for a reply and private for a note (a reply and a note may carry each
    other's marker), from an agent or a bot (a contact's email reply quotes our survey), posted
    since ``floor``, carrying the marker."""
    sender_type = dig(message, "sender.type")
    return (
        message.get("message_type") in OUTGOING
        and message.get("private") is private
        and sender_type in (None, "user", "agent_bot")
        and created(message) >= floor
        and carries_marker(marker, message.get("content"))
    )


def error_items(body: Any) -> list[ErrorItem]:
    """Chatwoot's error shapes (see the module docstring) as items."""
    if not isinstance(body, Mapping):
        return []
    items = as_items(body.get("error"), lambda v: ErrorItem(message=v))
    items += as_items(body.get("message"), lambda v: ErrorItem(message=v))
    items += as_items(body.get("attributes"), lambda v: ErrorItem(field=v))
    errors = body.get("errors")
    if isinstance(errors, Mapping):
        for field, messages in list(errors.items())[:5]:
            values = messages if isinstance(messages, list) else [messages]
            items += [ErrorItem(field=field, message=v) for v in values[:5]]
    else:
        items += as_items(errors, lambda v: ErrorItem(message=v))
    return items


def previous_status(payload: Mapping[str, Any]) -> str | None:
    changes = payload.get("changed_attributes")
    if isinstance(changes, list):
        for change in changes:
            if isinstance(change, Mapping) and isinstance(change.get("status"), Mapping):
                return as_text(change["status"].get("previous_value"))
    return None


def left_resolved(payload: Mapping[str, Any]) -> bool:
    """Whether a ``conversation_status_changed`` takes the conversation out of ``resolved``.

    Its status is not ``resolved`` and the previous one was, whatever the new one is: a customer
    writing into a resolved conversation makes it ``open``, or ``pending`` in an inbox with an
    active bot. When the payload does not name the previous status (Chatwoot before it passed
    ``changed_attributes``: ``null``), any change to another status counts: the event fires
    only on a real change, so a survey still waiting for this conversation (queued when it was
    resolved) means it was resolved until now; without one, nothing is cancelled.
    """
    status = (as_text(payload.get("status")) or "").lower()
    if status == "resolved":
        return False
    previous = previous_status(payload)
    return previous is None or previous.lower() == "resolved"
