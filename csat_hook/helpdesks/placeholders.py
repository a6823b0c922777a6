"""Reading webhook bodies that a helpdesk admin builds from placeholders.

Zendesk triggers and Freshdesk automation rules post a JSON body that the admin pastes into the
helpdesk, with ``{{ticket.id}}``-style placeholders the helpdesk fills in when it sends. A
placeholder the helpdesk does not know renders empty, and a body sent by hand from the editor
(a test, a misconfigured rule) arrives with the placeholders still in it: both must read as
"unknown", never as a ticket id or an agent name.
"""

from __future__ import annotations

from typing import Any

from csat_hook.helpdesks.payload import as_id
from csat_hook.helpdesks.payload import as_text

PLACEHOLDER_MARK = "{{"


def rendered(value: Any, *, limit: int | None = None) -> str | None:
    """``value`` as text when the helpdesk filled it in; None when empty or unrendered."""
    text = as_text(value)
    if text is None or PLACEHOLDER_MARK in text:
        return None
    return text[:limit] if limit is not None else text


def rendered_id(value: Any, field: str) -> str | None:
    """An id (see :func:`~csat_hook.helpdesks.payload.as_id`) the helpdesk filled in; None when
    empty or unrendered."""
    if unrendered(value):
        return None
    return as_id(value, field)


def unrendered(value: Any) -> bool:
    """True when ``value`` still holds a ``{{placeholder}}`` (the body was not rendered)."""
    return isinstance(value, str) and PLACEHOLDER_MARK in value
