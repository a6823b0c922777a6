"""Intercom: reading a notification's conversation item (the close part, admins, customers, and
whether a customer's reply reopened it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csat_hook.helpdesks.intercom.options import CUSTOMER_TYPES
from csat_hook.helpdesks.payload import as_id
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import dig
from csat_hook.helpdesks.records import Person


def close_part_of(item: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """The last close part of the conversation and its path in the payload ({} if none)."""
    parts = dig(item, "conversation_parts.conversation_parts")
    if isinstance(parts, list):
        for index in range(len(parts) - 1, -1, -1):
            part = parts[index]
            if isinstance(part, Mapping) and part.get("part_type") == "close":
                return part, f"data.item.conversation_parts.conversation_parts.{index}"
    return {}, ""


def open_part_of(item: Mapping[str, Any]) -> Mapping[str, Any]:
    """The last part of the conversation that reopened it ({} if none): a contact's reply
    (``open``) or an admin's reopen (``open``, ``assign_and_reopen``...)."""
    parts = dig(item, "conversation_parts.conversation_parts")
    if isinstance(parts, list):
        for part in reversed(parts):
            if isinstance(part, Mapping) and is_open_part(part.get("part_type")):
                return part
    return {}


def is_open_part(part_type: Any) -> bool:
    """Whether a part of this type reopened the conversation."""
    return isinstance(part_type, str) and (part_type == "open" or part_type.endswith("reopen"))


def reopened_by_reply(item: Mapping[str, Any]) -> bool:
    """Whether a customer's reply (``conversation.user.replied``) reopened the conversation.

    Intercom reopens a closed conversation a customer replies to; the reply is then a part of
    type ``open`` (the "User reply" example of the reply endpoint). A notification without its
    parts is read from the conversation's state: open after the reply means it was not closed
    any more, and a survey still waiting for it (queued at the close) must not go out.
    """
    parts = dig(item, "conversation_parts.conversation_parts")
    if isinstance(parts, list) and parts:
        return any(isinstance(p, Mapping) and p.get("part_type") == "open" for p in parts)
    state = as_text(item.get("state"))
    return state.lower() == "open" if state else item.get("open") is True


def admin_of(value: Any, field: str) -> Person | None:
    """An admin reference (at ``field``) as a Person; None for bots, teams, contacts and
    "nobody_admin"."""
    if not isinstance(value, Mapping) or value.get("type") not in ("admin", None):
        return None
    admin_id = nonzero_id(value.get("id"), f"{field}.id")
    if not admin_id:
        return None
    return Person(id=admin_id, name=as_text(value.get("name")), email=as_text(value.get("email")))


def bot_of(value: Any, field: str) -> str | None:
    """The id of a bot author reference (at ``field``); None for anyone else."""
    if not isinstance(value, Mapping) or value.get("type") != "bot":
        return None
    return nonzero_id(value.get("id"), f"{field}.id")


def customer_of(item: Mapping[str, Any]) -> Person:
    user = item.get("user")  # 1.x
    if isinstance(user, Mapping):
        return Person(
            id=as_id(user.get("id"), "data.item.user.id"),
            name=as_text(user.get("name")),
            email=as_text(user.get("email")),
        )
    contact_id = as_id(dig(item, "contacts.contacts.0.id"), "data.item.contacts.contacts.0.id")
    author = dig(item, "source.author")
    # The type as text (as_text): a list or an object there is no type, and a set lookup
    # of one raised TypeError (unhashable), a 500.
    if isinstance(author, Mapping) and as_text(author.get("type")) in CUSTOMER_TYPES:
        return Person(
            id=contact_id or as_id(author.get("id"), "data.item.source.author.id"),
            name=as_text(author.get("name")),
            email=as_text(author.get("email")),
        )
    return Person(id=contact_id)


def nonzero_id(value: Any, field: str) -> str | None:
    """An id (at ``field``, named when it is refused); "0" means none."""
    text = as_id(value, field)
    return text if text and text != "0" else None
