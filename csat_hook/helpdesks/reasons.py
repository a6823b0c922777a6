"""A vendor's reason for refusing a request, kept without customer text.

The HTTP client never copies a response body into an error (it may echo what we sent, and what
we send carries the customer's name and the reply). Each adapter knows its vendor's error shape
and picks out :class:`ErrorItem` values (codes, field names, short messages); this module turns
them into one short reason under one rule.

**No customer text** means: nothing the vendor quotes back from the request or the dialog. So

* codes and field names are kept only when they look like identifiers
  (``RecordInvalid``, ``comment.body``, ``parameter_invalid``): the vendor's own vocabulary;
* in messages, every quoted or bracketed span (``'…'``, ``"…"``, ``[…]``, ``«…»``, ``(…)``
  with an ``@``), e-mail address, URL and number of 7+ digits (a phone, an order number) is
  replaced by ``…``: that is where vendors put the value they refuse (Intercom:
  ``No such email[pi@example.org]``);
* a message is dropped whole when what is left still contains one of the request's own values
  (the reply text and link, the survey marker, the agent's and the customer's name and e-mail,
  see :func:`private_values`) or shares 16 characters in a row with the reply text;
* control characters are removed, whitespace collapsed, each message cut to 120 characters and
  the whole reason to :data:`MAX_REASON` characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import Reply

MAX_REASON = 200
MAX_MESSAGE = 120
# Error bodies are small; a larger one is not read at all (it is no error document).
MAX_ERROR_BODY = 64 * 1024
MAX_ITEMS = 5
# A run this long shared with the reply text means the message quotes it.
SHARED_RUN = 16

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_.:/\[\]-]{0,63}")
_QUOTED = re.compile(
    r"'[^']*'|\"[^\"]*\"|“[^”]*”|‘[^’]*’|«[^»]*»|\[[^\]]*\]|\{[^}]*\}|\([^)]*@[^)]*\)"
)
_EMAIL = re.compile(r"[^\s@<>()\[\]]+@[^\s@<>()\[\]]+")
_URL = re.compile(r"\b(?:https?|ftp|mailto):\S*", re.IGNORECASE)
_LONG_NUMBER = re.compile(r"\+?\d[\d -]{5,}\d")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e]")


@dataclass(frozen=True)
class ErrorItem:
    """One error as a vendor states it: a code, the field it concerns, a human message."""

    code: Any = None
    field: Any = None
    message: Any = None


def private_values(reply: Reply | Note | None) -> tuple[str, ...]:
    """The values of a request that must never reach an error message."""
    if reply is None:
        return ()
    if isinstance(reply, Note):  # an alert: the customer's rating, comment and agent
        return tuple(value for value in (reply.text, reply.marker) if value)
    people = (reply.agent, reply.customer)
    return tuple(
        value
        for value in (
            reply.text,
            reply.link,
            reply.marker,
            *(p.name for p in people),
            *(p.email for p in people),
        )
        if value
    )


def compose_reason(items: Iterable[ErrorItem], private: Sequence[str] = ()) -> str | None:
    """The items as one short reason (``code field: message; …``) under the module's rule."""
    guard = _Guard(private)
    rendered: list[str] = []
    for item in list(items)[:MAX_ITEMS]:
        head = " ".join(text for text in (_identifier(item.code), _identifier(item.field)) if text)
        message = guard.clean(item.message)
        text = f"{head}: {message}" if head and message else head or message
        if text and text not in rendered:
            rendered.append(text)
    reason = "; ".join(rendered)
    if len(reason) > MAX_REASON:
        reason = reason[: MAX_REASON - 1].rstrip() + "…"
    return reason or None


def explainer(
    extract: Callable[[Any], Iterable[ErrorItem]], reply: Reply | Note | None = None
) -> Callable[[requests.Response], str | None]:
    """A callback for :meth:`HttpClient.request`'s ``explain``: the response's JSON body read
    by ``extract`` (the adapter's knowledge of its vendor's error shape), then composed."""
    private = private_values(reply)

    def explain(response: requests.Response) -> str | None:
        body = error_body(response)
        if body is None:
            return None
        return compose_reason(extract(body), private)

    return explain


def error_body(response: requests.Response) -> Any:
    """The JSON document of an error response; None when it is absent, too big or not JSON."""
    content = response.content or b""
    if not content or len(content) > MAX_ERROR_BODY:
        return None
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        return None


def as_items(value: Any, make: Callable[[Any], ErrorItem | None]) -> list[ErrorItem]:
    """``make`` applied to each element of a list (or to a lone value), Nones left out."""
    values = value if isinstance(value, list) else [value]
    return [item for item in (make(v) for v in values[:MAX_ITEMS]) if item is not None]


def _identifier(value: Any) -> str | None:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value.strip()):
        return None
    return value.strip()


class _Guard:
    """Cleans vendor messages against one request's private values."""

    def __init__(self, private: Sequence[str]) -> None:
        self._words = [
            re.compile(r"(?<!\w)" + re.escape(_fold(value)) + r"(?!\w)")
            for value in private
            if len(value.strip()) >= 3 and len(value) <= 320
        ]
        self._texts = [_fold(value) for value in private if len(value) >= SHARED_RUN]

    def clean(self, value: Any) -> str | None:
        if not isinstance(value, str | int) or isinstance(value, bool):
            return None
        text = _CONTROL.sub(" ", str(value))[:2000]
        text = _QUOTED.sub("…", text)
        text = _URL.sub("…", text)
        text = _EMAIL.sub("…", text)
        text = _LONG_NUMBER.sub("…", text)
        text = re.sub(r"\s+", " ", text).strip(" :;,.")
        if not text or not any(c.isalpha() for c in text):
            return None
        folded = _fold(text)
        if any(word.search(folded) for word in self._words) or self._shares_run(folded):
            return None
        if len(text) > MAX_MESSAGE:
            text = text[: MAX_MESSAGE - 1].rstrip() + "…"
        return text

    def _shares_run(self, folded: str) -> bool:
        return any(
            folded[i : i + SHARED_RUN] in text
            for text in self._texts
            for i in range(len(folded) - SHARED_RUN + 1)
        )


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).casefold().strip()
