"""Zendesk: what the API answers, read (the reply's comment id, errors, the comment list)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.calls import carries_marker
from csat_hook.helpdesks.calls import unreadable_listing
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import dig
from csat_hook.helpdesks.payload import parse_timestamp
from csat_hook.helpdesks.reasons import ErrorItem
from csat_hook.helpdesks.reasons import as_items

# Newest first, the largest page Zendesk serves, with the authors' roles sideloaded.
LOOKUP_PARAMS = {"sort": "-created_at", "page[size]": "100", "include": "users"}
# 500 comments posted since a reply was sent is far beyond any ticket.
LOOKUP_PAGES = 5
AGENT_ROLES = frozenset({"agent", "admin"})
# Fields of a comment that carry its text. Our replies and notes are posted as html_body
# (returned sanitised, wrapped, & as &amp;; the marker's alphabet survives) and Zendesk
# derives body and plain_body from it; comments posted as body (replies sent before html_body
# was used throughout) have html/plain derived the other way. Each is searched.
TEXT_FIELDS = ("body", "html_body", "plain_body")


@dataclass(frozen=True)
class CommentPage:
    """One page of List Comments (newest first), as the look-up needs it."""

    comments: list[Mapping[str, Any]]
    roles: dict[str, str] = field(default_factory=dict)  # user id → role, from include=users
    has_more: bool = False
    after_cursor: str | None = None

    @classmethod
    def read(cls, body: Any) -> CommentPage:
        comments = dig(body, "comments")
        if not isinstance(comments, list):
            # Zendesk always sends the list (empty when there are none): an answer without it
            # is no proof our comment is absent.
            raise unreadable_listing("Zendesk", "comments")
        users = dig(body, "users")
        return cls(
            comments=[c for c in comments if isinstance(c, Mapping)],
            roles={
                as_text(u.get("id")) or "": as_text(u.get("role")) or ""
                for u in users
                if isinstance(u, Mapping)
            }
            if isinstance(users, list)
            else {},
            has_more=dig(body, "meta.has_more") is True,
            after_cursor=as_text(dig(body, "meta.after_cursor"), limit=2048),
        )

    def find(self, marker: str, floor: datetime, *, public: bool = True) -> str | None:
        """The id of our public comment (a reply; ``public=False``: our private comment, a
        note) carrying the marker, posted since ``floor``."""
        for comment in self.comments:
            created = parse_timestamp(comment.get("created_at"))
            if (
                comment.get("public") is public
                and self._by_agent(comment)
                and (created is None or created >= floor)
                and carries_marker(marker, *(comment.get(f) for f in TEXT_FIELDS))
            ):
                return as_text(comment.get("id"))
        return None

    def reaches_before(self, floor: datetime) -> bool:
        """True when the page's oldest comment is older than ``floor``: no need to go on."""
        times = [parse_timestamp(c.get("created_at")) for c in self.comments]
        known = [t for t in times if t is not None]
        return not known or min(known) < floor

    def _by_agent(self, comment: Mapping[str, Any]) -> bool:
        # An end-user's e-mail answer quotes our survey: only agents' (and admins', whose
        # token posts it) comments count. Without the sideload, only what came through the API.
        if self.roles:
            return self.roles.get(as_text(comment.get("author_id")) or "") in AGENT_ROLES
        return bool(dig(comment, "via.channel") == "api")


def error_items(body: Any) -> list[ErrorItem]:
    """Zendesk's error shapes (see the package docstring) as items."""
    if not isinstance(body, Mapping):
        return []
    error = body.get("error")
    items: list[ErrorItem] = []
    if isinstance(error, Mapping):
        items.append(ErrorItem(code=error.get("title"), message=error.get("message")))
    elif isinstance(error, str) and " " not in error.strip():
        items.append(ErrorItem(code=error, message=body.get("description")))
    else:
        items.append(ErrorItem(message=error))
        items += as_items(body.get("description"), lambda v: ErrorItem(message=v))
    details = body.get("details")
    if isinstance(details, Mapping):
        for name, entries in list(details.items())[:5]:
            for entry in entries[:3] if isinstance(entries, list) else [entries]:
                if isinstance(entry, Mapping):
                    items.append(
                        ErrorItem(
                            code=entry.get("error"), field=name, message=entry.get("description")
                        )
                    )
    return items


def explained(exc: DeliveryError) -> DeliveryError:
    """The HTTP client's error, with what a Zendesk 4xx means for this reply."""
    reasons = {
        422: "Zendesk refused the update (HTTP 422): the ticket is most likely closed, and "
        "closed tickets cannot be updated",
        404: "Zendesk has no such ticket (HTTP 404): deleted, merged or a wrong id",
        403: "Zendesk refused the credentials' access to this ticket (HTTP 403)",
        401: "Zendesk rejected the API credentials (HTTP 401): check email/api_token or "
        "oauth_token",
    }
    if exc.http_status in reasons:
        return exc.reworded(reasons[exc.http_status], retryable=False)
    return exc


def comment_id(body: Any) -> str | None:
    """The new comment's id from an update's audit, else the audit id."""
    events = dig(body, "audit.events")
    if isinstance(events, list):
        for event in events:
            if isinstance(event, Mapping) and event.get("type") == "Comment":
                return as_text(event.get("id"))
    return as_text(dig(body, "audit.id"))


def ticket_state(body: Any) -> tuple[str | None, str | None]:
    """A Show Ticket answer's ``ticket.status`` (lower case: new, open, pending, hold,
    solved, closed) and ``ticket.updated_at`` as written (a safe update's ``updated_stamp``);
    None for either that is missing or not text."""
    status = as_text(dig(body, "ticket.status"))
    return (status.lower() if status else None), as_text(dig(body, "ticket.updated_at"))
