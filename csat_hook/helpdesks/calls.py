"""What adapters share for vendor API calls: ids in URL paths, reading a JSON answer, 404 as
"no such record", and the look-up of a message whose outcome is unknown (its marker, the time
floor, matching, and a refusal worded for the operator)."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult

logger = logging.getLogger(__name__)


def quote_id(value: str) -> str:
    """An id as one URL path segment (``/`` and every other reserved character escaped)."""
    return urllib.parse.quote(value, safe="")


def json_or_none(content: bytes) -> Any:
    """A body as JSON; None when it is empty, not JSON, or nested too deeply to parse (the
    parser's RecursionError, as :func:`~csat_hook.helpdesks.reasons.error_body` reads it).
    Never raises for what a vendor sent: a 2xx answer we cannot read must not look like a
    failed request, so callers treat None as "no details"."""
    try:
        return json.loads(content) if content else None
    except (ValueError, RecursionError):
        return None


def response_json(response: Any) -> Any:
    """:func:`json_or_none` of the response's body (JSON is UTF-8, -16 or -32, detected from
    the bytes, whatever charset the headers name)."""
    return json_or_none(response.content)


def created_message(response: Any, message_id: str | None) -> SendResult:
    """The result of a request that creates a message, answered 2xx: the new message's id.

    For a vendor whose API always answers a created message with its id (in the body or, for
    Help Scout, a header), a 2xx without one is not the API's answer: a proxy's or a captive
    portal's page, an empty answer from something in between. It proves nothing was created,
    nor that nothing was: a retryable DeliveryError with the outcome unknown (the next
    attempt looks for the message before posting it again), never "sent" and never a plain
    failure (posted again blindly)."""
    if message_id is None:
        parts = urllib.parse.urlsplit(str(getattr(response, "url", "") or ""))
        method = getattr(getattr(response, "request", None), "method", None) or "POST"
        host = parts.netloc.rsplit("@", 1)[-1] or "?"
        raise DeliveryError(
            f"{method} {host}: HTTP {response.status_code} without the created message's id "
            "(not the API's answer: a proxy's or a portal's page?) (outcome unknown)",
            retryable=True,
            outcome_unknown=True,
        )
    return SendResult(external_id=message_id)


def unless_not_found(call: Callable[[], Any]) -> Any:
    """``call()``'s response, or None when the vendor answered 404 (no such record)."""
    try:
        return call()
    except DeliveryError as exc:
        if exc.http_status == 404:
            return None
        raise


def read_before_write(call: Callable[[], Any]) -> Any:
    """``call()``: a read an adapter makes right before its write (the dialog's status before
    a reply), its failure an outcome known. A read changes nothing, so a timeout or a dropped
    connection to it (an outcome unknown by the transport's rule) left nothing posted: a plain
    retry, never a write to look for before sending again."""
    try:
        return call()
    except DeliveryError as exc:
        if not exc.outcome_unknown:
            raise
        raise DeliveryError(
            exc.message.replace("(outcome unknown)", "(a read: nothing was posted)"),
            retryable=True,
            http_status=exc.http_status,
            retry_after=exc.retry_after,
            vendor_reason=exc.vendor_reason,
        ) from exc


def status_before_write(helpdesk: str, call: Callable[[], Any]) -> Any:
    """``call()`` (:func:`read_before_write`: the dialog's status read right before a reply,
    so that the reply never re-solves or re-closes a dialog reopened since its close); None
    when the read was refused for good (a 4xx: a token without read access, a proxy or an API
    that serves the write alone, a record gone). Not knowing is no sign of a reopen: the
    caller then writes as it did before such reads existed, and the operator is told
    (``reply.status-unread``, the helpdesk and the HTTP status). A retryable failure stays
    one: the reply waits for an answer that can tell."""
    try:
        return read_before_write(call)
    except DeliveryError as exc:
        if exc.retryable:
            raise
        status_unread(helpdesk, exc.http_status)
        return None


def status_unread(helpdesk: str, http_status: int | None = None) -> None:
    """Say that a reply goes without knowing the dialog's status (see
    :func:`status_before_write`); an answer that names none is said so too."""
    logger.warning("reply.status-unread", extra={"helpdesk": helpdesk, "status": http_status})


# --- helpers for find_reply() ----------------------------------------------------------------

# Vendor clocks and ours disagree by a little; a message stamped this much before ``since``
# still counts, and paging stops only past it.
LOOKUP_CLOCK_SKEW = timedelta(minutes=5)
# A marker shorter than this could occur by chance in a customer's text.
MIN_MARKER_LENGTH = 16


def lookup_marker(reply: Reply | Note) -> str:
    """``reply.marker``, checked: a permanent DeliveryError when it cannot identify a reply
    (the survey's signed reference) or a note (the alert's reference)."""
    marker = reply.marker.strip()
    if len(marker) < MIN_MARKER_LENGTH or any(c.isspace() or c in "<>&\"'" for c in marker):
        what = "note" if isinstance(reply, Note) else "reply"
        raise DeliveryError(
            f"the {what} has no usable marker to look for (its signed or alert reference)",
            retryable=False,
        )
    return marker


def lookup_floor(since: datetime) -> datetime:
    """The oldest creation time a looked-for message may have: ``since`` less the skew."""
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return since - LOOKUP_CLOCK_SKEW


def carries_marker(marker: str, *texts: Any) -> bool:
    """True when any of ``texts`` (a vendor's text fields: plain, HTML...) holds ``marker``.

    The marker's alphabet (base64url and ``.``) survives HTML escaping, and a link around it
    changes only its ``&`` separators, so the bare marker is searched as it is.
    """
    return any(isinstance(text, str) and marker in text for text in texts)


def lookup_answer(response: Any, vendor: str) -> Any:
    """A look-up's 2xx answer as JSON; a retryable DeliveryError when it is not JSON (a
    proxy's page, a half-deployed API): an unreadable listing is not an empty one, and taking
    it for "not found" would post the reply a second time."""
    answer = response_json(response)
    if answer is None:
        raise DeliveryError(f"{vendor}: the look-up answer is not JSON", retryable=True)
    return answer


def unreadable_listing(vendor: str, what: str) -> DeliveryError:
    """The retryable error for a look-up answer without the list the vendor always sends."""
    return DeliveryError(f"{vendor}: the look-up answer has no {what} list", retryable=True)


def lookup_refused(
    exc: DeliveryError, vendor: str, *, credentials: str, what: str = "conversation"
) -> DeliveryError:
    """A look-up failure as the caller must act on it.

    401/403: permanent, naming the ``credentials`` option that lacks the right to list;
    404: permanent (the dialog is gone); anything else unchanged (429/5xx/timeouts retryable).
    """
    if exc.http_status in (401, 403):
        return exc.reworded(
            f"{vendor} refused to list the {what}'s messages (HTTP {exc.http_status}): "
            f"{credentials}",
            retryable=False,
        )
    if exc.http_status == 404:
        return exc.reworded(
            f"{vendor} has no such {what} (HTTP 404): deleted, merged or a wrong id",
            retryable=False,
        )
    return exc
