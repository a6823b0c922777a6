"""Reading webhook bodies that a helpdesk admin builds from placeholders.

Zendesk triggers and Freshdesk automation rules post a JSON body that the admin pastes into the
helpdesk, with ``{{ticket.id}}``-style placeholders the helpdesk fills in when it sends. A
placeholder the helpdesk does not know renders empty, and a body sent by hand from the editor
(a test, a misconfigured rule) arrives with the placeholders still in it: both must read as
"unknown", never as a ticket id or an agent name.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from csat_hook.errors import BadPayloadError
from csat_hook.helpdesks.payload import as_id
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.records import WebhookRequest

logger = logging.getLogger(__name__)

PLACEHOLDER_MARK = "{{"

# One line of a template as the documented ones are written: a key, then one string value
# (the placeholder, in quotes), then perhaps a comma: ``    "name": "{{ticket.requester.name}}",``
# The end is spaces, then perhaps a comma and spaces: one way to match a run of spaces (two
# optional runs around an optional comma were tried in every split of a long run).
_TEMPLATE_LINE = re.compile(r'^(\s*"[^"\\]*"\s*:\s*")(.*)("\s*(?:,\s*)?)$')


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


# What an unescaped value does to a body: it is no longer JSON, or (a name holding
# ``", "id": "9``) a key of its object comes twice.
REQUOTED_ERRORS = frozenset({"invalid_json", "duplicate_key"})


def rendered_json(request: WebhookRequest, helpdesk: str) -> Any:
    """The body of a rule's webhook as JSON (``request.json()``), read again when it is not
    JSON but a template whose placeholders were filled in without JSON's escapes.

    Neither Zendesk nor Freshdesk documents that a placeholder's value is escaped in a JSON
    body; a customer's name with a quote or a backslash (``Ivan "Vanya" Petrov``) in an
    unescaped one made the whole body invalid, the close a 400 and its survey lost. Each line
    written as the documented templates write theirs (a key and one quoted value, one per
    line) whose value is not a JSON string's content is taken as the raw text between its
    first and its last quote, escaped, and the body read again; WARNING
    ``webhook.template-unescaped`` says how many lines. A value cannot become keys that way:
    a line is one key and one value (a name holding ``", "id": "9`` made its object's id
    twice, refused as such). A body that is still not JSON (a value with a line break, a
    template on one line) is refused as it was (400)."""
    try:
        return request.json()
    except BadPayloadError as exc:
        if exc.code not in REQUOTED_ERRORS:
            raise
        requoted = _requoted(request.body)
        if requoted is None:
            raise
        body, lines = requoted
        again = WebhookRequest(
            body=body,
            headers=request.headers,
            query=request.query,
            received_at=request.received_at,
            content_type=request.content_type,
            method=request.method,
            path=request.path,
        )
        try:
            payload = again.json()
        except BadPayloadError:
            raise exc from None
        logger.warning("webhook.template-unescaped", extra={"helpdesk": helpdesk, "lines": lines})
        return payload


def _requoted(body: bytes) -> tuple[bytes, int] | None:
    """``body`` with each template line's unescaped value escaped, and how many lines were;
    None when no line needed it (or the body is not UTF-8)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    changed = 0
    for number, line in enumerate(lines):
        match = _TEMPLATE_LINE.match(line)
        if match is None or _string_content(match.group(2)):
            continue
        escaped = json.dumps(match.group(2), ensure_ascii=False)[1:-1]
        lines[number] = match.group(1) + escaped + match.group(3)
        changed += 1
    return ("\n".join(lines).encode("utf-8"), changed) if changed else None


def _string_content(text: str) -> bool:
    """Whether ``text`` is, as it stands, what a JSON string holds between its quotes."""
    try:
        return isinstance(json.loads(f'"{text}"'), str)
    except ValueError:
        return False
