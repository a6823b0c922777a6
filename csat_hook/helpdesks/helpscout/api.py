"""Help Scout: what the API answers, read (a conversation's threads, errors)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.calls import carries_marker
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import dig
from csat_hook.helpdesks.payload import parse_timestamp
from csat_hook.helpdesks.reasons import ErrorItem
from csat_hook.helpdesks.reasons import as_items
from csat_hook.helpdesks.records import SendResult

# Pages of threads (50 each) a look-up reads at most. The docs' "a single conversation can
# contain up to 100 threads" would make it two, but a next link is the API's own word that
# there is more: the search goes on (a listing longer than this is no proof of absence).
LOOKUP_PAGES = 10
# Threads that are never our reply, whoever wrote them; the agent-reply type itself is
# "reply" in the v2 SDK and "message" in older docs, so it is not required.
NOT_REPLIES = frozenset({"note", "lineitem", "customer", "forwardparent", "forwardchild"})


def moved_to(location: str | None, url: str) -> str | None:
    """The id of the conversation a merge moved the one at ``url`` (Get Conversation) to, from
    the 301's ``Location``: another ``/v2/conversations/{digits}`` on the same scheme and host
    under the same base path (absolute or relative); None for anything else, which is not
    followed (the request's token would go along)."""
    if not location:
        return None
    try:
        target = urllib.parse.urlsplit(urllib.parse.urljoin(url, location.strip()))
        source = urllib.parse.urlsplit(url)
    except ValueError:
        return None
    base, _, current = source.path.rpartition("/")
    match = re.fullmatch(re.escape(base) + r"/([0-9]{1,20})", target.path)
    if (
        match is None
        or match.group(1) == current
        or (target.scheme.lower(), target.netloc.lower())
        != (source.scheme.lower(), source.netloc.lower())
        or target.query
    ):
        return None
    return match.group(1)


def may_be_a_reply(kind: Any) -> bool:
    """Whether a thread's ``type`` allows our reply: absent, or a value naming none of
    :data:`NOT_REPLIES`. A list or an object names no kind we know, so the thread is not taken
    for ours (a set look-up of it raised TypeError, failing the whole look-up)."""
    if isinstance(kind, Mapping | list):
        return False
    return as_text(kind) not in NOT_REPLIES


@dataclass(frozen=True)
class ThreadPage:
    """One page of List Threads (newest first), as the look-up needs it."""

    threads: list[Mapping[str, Any]]
    has_next: bool

    @classmethod
    def read(cls, body: Any) -> ThreadPage:
        if not isinstance(body, Mapping):
            raise DeliveryError("Help Scout: the look-up answer is not an object", retryable=True)
        threads = dig(body, "_embedded.threads")  # absent when there are none
        return cls(
            threads=[t for t in threads if isinstance(t, Mapping)]
            if isinstance(threads, list)
            else [],
            has_next=isinstance(dig(body, "_links.next"), Mapping),
        )

    def find(self, marker: str, floor: datetime) -> SendResult | None:
        """Our thread: a user's published reply (not a customer's e-mail quoting the survey,
        not a note carrying the marker), created since ``floor``, carrying the marker."""
        for thread in self.threads:
            created = parse_timestamp(thread.get("createdAt"))
            if (
                may_be_a_reply(thread.get("type"))
                and dig(thread, "createdBy.type") == "user"
                and thread.get("state") in ("published", None)
                and (created is None or created >= floor)
                and carries_marker(marker, thread.get("body"))
            ):
                return SendResult(external_id=as_text(thread.get("id")))
        return None

    def find_note(self, marker: str, floor: datetime) -> SendResult | None:
        """Our note (an alert): a user's ``note`` thread created since ``floor``, carrying
        the alert's reference."""
        for thread in self.threads:
            created = parse_timestamp(thread.get("createdAt"))
            if (
                thread.get("type") == "note"
                and dig(thread, "createdBy.type") == "user"
                and (created is None or created >= floor)
                and carries_marker(marker, thread.get("body"))
            ):
                return SendResult(external_id=as_text(thread.get("id")))
        return None

    def reaches_before(self, floor: datetime) -> bool:
        times = [parse_timestamp(t.get("createdAt")) for t in self.threads]
        known = [t for t in times if t is not None]
        return not known or min(known) < floor


def error_items(body: Any) -> list[ErrorItem]:
    """Help Scout's error document as items (``rejectedValue`` is left out: it is our data)."""
    if not isinstance(body, Mapping):
        return []
    items = as_items(body.get("message"), lambda v: ErrorItem(message=v))
    items += as_items(
        dig(body, "_embedded.errors"),
        lambda e: (
            ErrorItem(field=e.get("path"), message=e.get("message"))
            if isinstance(e, Mapping)
            else None
        ),
    )
    return items
