"""Finding a ``generic`` reply or note whose outcome was unknown (a timeout, a dropped
connection) before it is sent again: the ``lookup`` and ``note_lookup`` requests.

The request lists a dialog's newest messages (one page is read, up to
:data:`LOOKUP_MAX_MESSAGES` at each end: a longer one is a permanent error, never "not
found"); the first message of ours
whose text carries the marker (the survey's signed reference, the alert's reference), created
since the first attempt (less :data:`LOOKUP_CLOCK_SKEW`), is the one that landed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import Field
from pydantic import SecretStr

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.calls import response_json
from csat_hook.helpdesks.generic.templates import JMESPATH_OPTIONS
from csat_hook.helpdesks.generic.templates import RequestOptions
from csat_hook.helpdesks.generic.templates import render
from csat_hook.helpdesks.generic.templates import rendered_parts
from csat_hook.helpdesks.generic.templates import search_or_none
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import parse_timestamp
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.transport import HttpClient

# Messages read at each end of one look-up answer, at most: a listing is in time order,
# newest first or last, and our reply is among the newest, at one end or the other.
LOOKUP_MAX_MESSAGES = 1000
# Vendor clocks differ from ours: messages this much older than `since` still count.
LOOKUP_CLOCK_SKEW = timedelta(minutes=5)


class LookupRequestOptions(RequestOptions):
    """The HTTP request that lists a dialog's messages, to find out whether a reply whose
    outcome was unknown (a timeout, a dropped connection) landed before sending it again.

    ``url``, ``headers``, ``query`` and ``body`` take the reply request's placeholders
    (``{dialog_id}``, context values...); ``headers`` and ``query`` values are secrets.
    ``messages`` is a JMESPath to the list of messages in the answer; ``text``, ``id``,
    ``ours`` and ``created_at`` are JMESPaths evaluated on each message: its text (where the
    survey's reference is looked for), its id, whether we posted it (e.g.
    ``direction == 'outgoing' && !private``: customers quote our survey in their replies), and
    when it was created (unix seconds or ISO 8601; older messages are skipped). The request
    should return the newest messages (one page is read).
    """

    jmespath_fields = ("messages", "text", "id", "ours", "created_at")

    method: Literal["GET", "POST"] = "GET"
    url: str
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    query: dict[str, SecretStr] = Field(default_factory=dict)
    body: Any = None
    messages: str = "messages"
    text: str = "text"
    id: str = "id"
    ours: str | None = None
    created_at: str | None = None


def look(
    http: HttpClient,
    name: str,
    spec: LookupRequestOptions,
    values: Mapping[str, str],
    marker: str,
    since: datetime,
) -> SendResult | None:
    """The message carrying ``marker`` posted since ``since``; None when the dialog has none.
    DeliveryError (retryable) for an answer that is not JSON, permanent for a ``messages``
    path that finds no list."""
    url, headers, params = rendered_parts(spec, values)
    kwargs: dict[str, Any] = {}
    if spec.body is not None:
        kwargs["json"] = render(spec.body, values)
    response = http.request(spec.method, url, headers=headers, params=params, **kwargs)
    answer = response_json(response)
    if answer is None:
        # A proxy's page, a half-deployed API: worth asking again later.
        raise DeliveryError(f"{name}: the look-up answer is not JSON", retryable=True)
    return _find_marked(spec, answer, marker, since - LOOKUP_CLOCK_SKEW, name)


def _find_marked(
    spec: LookupRequestOptions, answer: Any, marker: str, not_before: datetime, name: str
) -> SendResult | None:
    """The first message of ours in ``answer`` whose text carries ``marker``."""
    messages = search_or_none(spec.messages, answer)
    if not isinstance(messages, list):
        # A wrong path, not a transient fault: asking again will not help.
        raise DeliveryError(
            f"helpdesks.{name}.lookup.messages ({spec.messages}) is not a list in the answer",
            retryable=False,
        )
    # Both ends: only the first ones were read, and a listing oldest first that is longer
    # had our reply (the newest) past them: "not found", and it was posted a second time.
    cap = LOOKUP_MAX_MESSAGES
    ends = messages[:cap] + messages[max(cap, len(messages) - cap) :]
    for message in ends:
        try:
            found = _marked(spec, message, marker, not_before)
        except JMESPathError:
            # An expression this message's fields do not fit (another kind of message, a
            # function given another type): it cannot be told to be ours, so it is not.
            continue
        if found is not None:
            return found
    if len(ends) < len(messages):
        raise DeliveryError(
            f"{name}: the look-up answer lists {len(messages)} messages, more than the "
            f"{cap} read at each end; not searched further",
            retryable=False,
        )
    return None


def _marked(
    spec: LookupRequestOptions, message: Any, marker: str, not_before: datetime
) -> SendResult | None:
    # With the mapping's functions (to_string of a missing value is None, never "null": no
    # message id "null"); a function refusing this message's types raises, as before.
    text = jmespath.search(spec.text, message, options=JMESPATH_OPTIONS)
    if not isinstance(text, str) or marker not in text:
        return None
    if spec.ours is not None and not jmespath.search(spec.ours, message, options=JMESPATH_OPTIONS):
        return None  # a customer quoting our survey, an internal note
    if spec.created_at is not None:
        created = parse_timestamp(
            jmespath.search(spec.created_at, message, options=JMESPATH_OPTIONS)
        )
        # An unreadable date does not hide a match: the marker is unique to this survey.
        if created is not None and created < not_before:
            return None
    return SendResult(
        external_id=as_text(jmespath.search(spec.id, message, options=JMESPATH_OPTIONS))
    )
