"""Intercom: what the API answers, read (state, part ids, errors, the conversation's parts),
and the rate-limit hook."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests

from csat_hook.helpdesks.calls import carries_marker
from csat_hook.helpdesks.intercom.options import CUSTOMER_TYPES
from csat_hook.helpdesks.intercom.options import RESET_DELAY_HEADER
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import dig
from csat_hook.helpdesks.payload import parse_timestamp
from csat_hook.helpdesks.reasons import ErrorItem
from csat_hook.helpdesks.reasons import as_items
from csat_hook.helpdesks.records import SendResult


def reset_as_delay(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """On a 429, expose ``X-RateLimit-Reset`` (Unix seconds) as seconds to wait; a reset
    that is no time ("nan", "-inf", not a number) is left out: the backoff decides."""
    reset = response.headers.get("X-RateLimit-Reset")
    if response.status_code == 429 and reset:
        try:
            at = float(reset)
        except ValueError:
            return response
        if not math.isfinite(at):
            return response  # "nan" - now once read as a wait of 0: every attempt at once
        delay = max(0.0, at - time.time())
        response.headers[RESET_DELAY_HEADER] = f"{delay:.3f}"
    return response


def state_of(conversation: Any) -> str | None:
    if not isinstance(conversation, Mapping):
        return None
    state = as_text(conversation.get("state"))
    if state:
        return state.lower()
    if isinstance(conversation.get("open"), bool):
        return "open" if conversation["open"] else "closed"
    return None


def last_part_id(conversation: Any) -> str | None:
    parts = dig(conversation, "conversation_parts.conversation_parts")
    if isinstance(parts, list) and parts and isinstance(parts[-1], Mapping):
        return as_text(parts[-1].get("id"))
    return None


# Who may author our reply: the admin it is sent as (bots send on behalf of admins or teams).
AGENT_AUTHORS = frozenset({"admin", "bot"})
# The part types our reply may be recorded as: a ``comment``, or, when it reopened the closed
# conversation, the ``open`` part carrying its body (as a customer's reply that reopens it is;
# an admin's reopening message seen so: intercom's webhook samples in hull-connectors).
REPLY_PARTS = frozenset({"comment", "open"})
NOTE_PARTS = frozenset({"note"})


def find_part(
    conversation: Any, marker: str, floor: datetime, part_types: frozenset[str] = REPLY_PARTS
) -> SendResult | None:
    """Our survey among a conversation's parts: an admin's or bot's part of one of
    :data:`REPLY_PARTS` (not a note, not a customer's part, not ``source``) posted since
    ``floor``, carrying the marker; with ``part_types=NOTE_PARTS``, our note (an alert)."""
    parts = dig(conversation, "conversation_parts.conversation_parts")
    if not isinstance(parts, list):
        return None
    for part in reversed(parts):  # newest last in Intercom's answers
        if not isinstance(part, Mapping) or as_text(part.get("part_type")) not in part_types:
            continue
        created = parse_timestamp(part.get("created_at"))
        if (
            as_text(dig(part, "author.type")) in AGENT_AUTHORS  # a list would be unhashable
            and (created is None or created >= floor)
            and carries_marker(marker, part.get("body"))
        ):
            return SendResult(external_id=as_text(part.get("id")))
    return None


# Parts after our reply that show someone acted on the conversation since: a comment or a note
# (an agent handling it, a customer's answer), or a close (whatever reopened it after that was
# someone's choice). Other parts (an assignment a rule made, the reopen our reply caused) do
# not, unless a customer authored them.
ACTED_ON_PARTS = frozenset({"comment", "note", "close"})


def _around(conversation: Any, part_id: str | None) -> tuple[list[Any], list[Any]] | None:
    """The conversation's parts before and after our part ``part_id``, oldest first; None
    when the answer lists no parts or ours is not among them."""
    parts = dig(conversation, "conversation_parts.conversation_parts")
    if not isinstance(parts, list) or part_id is None:
        return None
    ids = [as_text(p.get("id")) if isinstance(p, Mapping) else None for p in parts]
    if part_id not in ids:
        return None
    at = ids.index(part_id)
    return parts[:at], parts[at + 1 :]


def acted_on_after(conversation: Any, part_id: str | None) -> bool:
    """Whether a part newer than ``part_id`` shows that someone (a customer, an agent) acted
    on the conversation after it; True when ``part_id`` is not among the parts (no proof it
    was left as our reply left it)."""
    split = _around(conversation, part_id)
    if split is None:
        return True
    for part in split[1]:
        if not isinstance(part, Mapping):
            return True
        if (
            part.get("part_type") in ACTED_ON_PARTS
            or as_text(dig(part, "author.type")) in CUSTOMER_TYPES
        ):
            return True
    return False


def reopened_before(conversation: Any, part_id: str | None) -> bool:
    """Whether a customer wrote between the conversation's last close and our part
    ``part_id`` (their reply reopens a closed conversation: a part of type ``open``): it was
    open for them before our reply went out, not reopened by it, and closing it again would
    hide their message. False when our part is not among the parts, or nothing a customer
    authored comes after the last close before it (an answer holding our part alone)."""
    split = _around(conversation, part_id)
    if split is None:
        return False
    for part in reversed(split[0]):
        if not isinstance(part, Mapping):
            continue
        if part.get("part_type") == "close":
            return False
        if as_text(dig(part, "author.type")) in CUSTOMER_TYPES:
            return True
    return False


def error_items(body: Any) -> list[ErrorItem]:
    """Intercom's error list as items."""
    if not isinstance(body, Mapping):
        return []
    return as_items(
        body.get("errors"),
        lambda e: (
            ErrorItem(code=e.get("code"), field=e.get("field"), message=e.get("message"))
            if isinstance(e, Mapping)
            else None
        ),
    )
