"""Freshdesk: the reply's HTML, what the API answers (errors, a ticket's conversations)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.calls import carries_marker
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import parse_timestamp
from csat_hook.helpdesks.reasons import ErrorItem
from csat_hook.helpdesks.reasons import as_items
from csat_hook.helpdesks.records import SendResult

# The largest page Freshdesk serves.
PAGE_SIZE = 100
# Pages walked from the oldest: 1000 conversations on one ticket is far beyond any dialog.
LOOKUP_PAGES = 10
REPLY_SOURCE = 0  # source 0 is a reply (2 a note, 5 a tweet, 7 Facebook...)
NOTE_SOURCE = 2


def reply_html(text: str, link: str) -> str:
    """``text`` as one HTML paragraph: escaped, line breaks kept, ``link`` made clickable."""
    anchor = f'<a href="{html.escape(link, quote=True)}">{html.escape(link)}</a>'
    pieces = text.split(link) if link else [text]
    escaped = anchor.join(html.escape(piece, quote=False) for piece in pieces)
    return "<p>" + escaped.replace("\r\n", "\n").replace("\n", "<br>") + "</p>"


def explained(exc: DeliveryError) -> DeliveryError:
    """The HTTP client's error, with what a Freshdesk 4xx means for this reply."""
    reasons = {
        404: "Freshdesk has no such ticket (HTTP 404): deleted or a wrong id",
        401: "Freshdesk rejected the API key (HTTP 401)",
        403: "Freshdesk refused the API key's access to this ticket (HTTP 403)",
    }
    if exc.http_status in reasons:
        return exc.reworded(reasons[exc.http_status], retryable=False)
    return exc


def find_conversation(
    conversations: list[Any], marker: str, floor: datetime, *, note: bool = False
) -> SendResult | None:
    """Our reply in one page: outgoing (a customer's e-mail answer quotes the survey), public
    (a note may carry the marker), a reply, posted since ``floor``, carrying the marker. With
    ``note``: our private note (an alert) instead."""
    source = NOTE_SOURCE if note else REPLY_SOURCE
    for item in reversed(conversations):  # oldest first: the newest end is the likelier
        if not isinstance(item, Mapping):
            continue
        created = parse_timestamp(item.get("created_at"))
        if (
            item.get("incoming") is False
            and item.get("private") is note
            and item.get("source") in (source, None)
            and (created is None or created >= floor)
            and carries_marker(marker, item.get("body"), item.get("body_text"))
        ):
            return SendResult(external_id=as_text(item.get("id")))
    return None


def error_items(body: Any) -> list[ErrorItem]:
    """Freshdesk's error shapes (see the package docstring) as items."""
    if not isinstance(body, Mapping):
        return []
    items = [ErrorItem(code=body.get("code"), message=body.get("message"))]
    items += as_items(body.get("description"), lambda v: ErrorItem(message=v))
    items += as_items(
        body.get("errors"),
        lambda e: (
            ErrorItem(code=e.get("code"), field=e.get("field"), message=e.get("message"))
            if isinstance(e, Mapping)
            else None
        ),
    )
    return items
