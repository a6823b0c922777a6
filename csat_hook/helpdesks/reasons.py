"""A vendor's reason for refusing a request, kept without customer text.

The HTTP client never copies a response body into an error (it may echo what we sent, and what
we send carries the customer's name and the reply). Each adapter knows its vendor's error shape
and picks out :class:`ErrorItem` values (codes, field names, short messages); this module turns
them into one short reason under one rule.

**No customer text** means: nothing the vendor quotes back from the request or the dialog,
in whatever escaping it quotes it. What we send is escaped (Markdown for Chatwoot, HTML for
Intercom, Help Scout, Freshdesk and Zendesk notes, all of it inside a JSON request), and a
vendor quotes it as it got it, as its framework re-escapes it or inside a request it echoes:
``Zo\\u00eb O\\'Brien``, ``O&#x27;Brien``, ``<p>Hi``. So

* codes and field names are kept only when they look like identifiers
  (``RecordInvalid``, ``comment.body``, ``parameter_invalid``): the vendor's own vocabulary;
* a message is read as text first (:func:`readable`): JSON escapes, Markdown's backslash
  escapes and HTML character references decoded (escapes of escapes too, up to
  :data:`DECODE_ROUNDS` deep), HTML tags turned into spaces, then NFC. A message still
  escaped after that is dropped whole: no echo of ours is nested deeper;
* every stretch that shares :data:`SHARED_RUN` characters in a row with a long value of the
  request (the reply or note text, the link, the survey marker), read the same way, is cut
  out as ``…``, with the rest of each word it starts or ends in: an echo of our message,
  found by its content, not by quotes (it holds quotes itself, so they cannot be paired
  around it);
* every quoted or bracketed span left (``'…'``, ``"…"``, ``[…]``, ``«…»``, ``(…)`` with an
  ``@``), e-mail address, URL and number of 7+ digits (a phone, an order number) is replaced
  by ``…``: that is where vendors put the value they refuse (Intercom:
  ``No such email[pi@example.org]``);
* a message is dropped whole when what is left still contains one of the request's own values
  (the agent's and the customer's name and e-mail, see :func:`private_values`) or a word of
  three letters or more of a name (:func:`private_names`: ``Brien`` left over from
  ``'Zoë O'Brien'``, whose quotes did not pair);
* texts are compared NFKC-normalized and case-folded; control characters are removed,
  whitespace collapsed, each message cut to 120 characters and the whole reason to
  :data:`MAX_REASON` characters.

When every message is dropped, the codes, field names and the HTTP status still say why.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
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
# Escapes, decoded by readable(): a JSON \uXXXX (a surrogate pair joined), a backslash before
# ASCII punctuation (Markdown; JSON's \" \\ \/), JSON's \n \t \r \b \f.
_BACKSLASH = re.compile(
    r"\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
    r"|u([0-9a-fA-F]{4})|([!-/:-@\[-`{-~])|[bfnrt])"
)
_REFERENCE = re.compile(r"&(?:#[0-9]{1,8};?|#[xX][0-9A-Fa-f]{1,8};?|[A-Za-z][A-Za-z0-9]{1,31};)")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]{0,31}(?:\s[^<>]*)?/?>")
# How deep escapes are decoded: Markdown in JSON, HTML in JSON, and a vendor's own escaping
# of either in its error document.
DECODE_ROUNDS = 3
MAX_MESSAGE_READ = 2000
# Private texts longer than this are compared by their start only (no vendor takes a message
# this long: Chatwoot's limit is 150,000 characters, Zendesk's 64 KB).
MAX_PRIVATE_TEXT = 256 * 1024
_WORD = re.compile(r"\w{3,}")
_WORD_END = re.compile(r"[\w'\"’”»)\]}>]*")


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


def private_names(reply: Reply | Note | None) -> tuple[str, ...]:
    """The people's names in a request: no word of them may reach an error message."""
    if not isinstance(reply, Reply):
        return ()
    return tuple(name for name in (reply.agent.name, reply.customer.name) if name)


def compose_reason(
    items: Iterable[ErrorItem], private: Sequence[str] = (), names: Sequence[str] = ()
) -> str | None:
    """The items as one short reason (``code field: message; …``) under the module's rule:
    ``private`` are the request's values (:func:`private_values`), ``names`` the names of
    its people (:func:`private_names`)."""
    guard = _Guard(private, names)
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
    names = private_names(reply)

    def explain(response: requests.Response) -> str | None:
        body = error_body(response)
        if body is None:
            return None
        return compose_reason(extract(body), private, names)

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

    def __init__(self, private: Sequence[str], names: Sequence[str] = ()) -> None:
        values = [_fold(readable(value[:MAX_PRIVATE_TEXT])) for value in private]
        self._words = [
            re.compile(r"(?<!\w)" + re.escape(value) + r"(?!\w)")
            for value in values
            if len(value) >= 3 and len(value) <= 320
        ]
        # A name's words: what is left of a quoted name whose quotes did not pair.
        self._name_words = {
            word
            for name in names
            if len(name) <= 320
            for word in _WORD.findall(_fold(readable(name)))
        }
        self._texts = [value for value in values if len(value) >= SHARED_RUN]

    def clean(self, value: Any) -> str | None:
        if not isinstance(value, str | int) or isinstance(value, bool):
            return None
        text = readable(str(value)[:MAX_MESSAGE_READ])
        if _BACKSLASH.search(text) or _REFERENCE.search(text):
            return None  # escaped deeper than any echo of ours: not the vendor's prose
        text = _QUOTED.sub("…", self._cut_echoes(text))
        text = _URL.sub("…", text)
        text = _EMAIL.sub("…", text)
        text = _LONG_NUMBER.sub("…", text)
        # What is left between two cuts with no word in it (a bracket, a quote) goes too,
        # and so do marks standing alone beside one ("… <").
        text = re.sub(r"…(?:[^\w…]*…)+", "…", text)
        text = re.sub(r"(?:(?<=\s)[^\w\s…]+\s+)+…|…(?:\s+[^\w\s…]+(?=\s|$))+", "…", text)
        text = re.sub(r"\s+", " ", text).strip(" :;,.")
        if not text or not any(c.isalpha() for c in text):
            return None
        folded = _fold(text)
        if any(word.search(folded) for word in self._words):
            return None
        if self._name_words.intersection(_WORD.findall(folded)):
            return None
        if len(text) > MAX_MESSAGE:
            text = text[: MAX_MESSAGE - 1].rstrip() + "…"
        return text

    def _cut_echoes(self, text: str) -> str:
        """``text`` with every word holding a character of a :data:`SHARED_RUN`-long run
        found in a private text replaced, each stretch by one ``…``. The message's runs (at most
        :data:`MAX_MESSAGE_READ`) are indexed and each private text's runs looked up: time
        linear in their lengths, and each run of the message marked once."""
        folded, origin = _folded_chars(text)
        runs: dict[str, list[int]] = {}
        for i in range(len(folded) - SHARED_RUN + 1):
            runs.setdefault(folded[i : i + SHARED_RUN], []).append(i)
        cut: set[int] = set()
        for private in self._texts:
            for j in range(len(private) - SHARED_RUN + 1):
                if not runs:
                    break
                for i in runs.pop(private[j : j + SHARED_RUN], ()):
                    cut.update(origin[i : i + SHARED_RUN])
        if not cut:
            return text
        pieces: list[str] = []
        end = 0
        for word in re.finditer(r"\S+", text):
            last = max(cut.intersection(range(word.start(), word.end())), default=None)
            if last is not None:
                # The whole word, but for the marks that end it after the run's letters and
                # closing quotes: those are the vendor's ("…', sender").
                stop = _WORD_END.match(text, last + 1, word.end())
                after = stop.end() if stop else last + 1
                pieces += [text[end : word.start()], "…"]
                end = word.end() if re.search(r"\w", text[after : word.end()]) else after
        return re.sub(r"…(?:\s*…)+", "…", "".join([*pieces, text[end:]]))


def readable(text: str) -> str:
    """``text`` as a person reads it (see the module docstring): escapes decoded up to
    :data:`DECODE_ROUNDS` deep, HTML tags as spaces, control characters removed, NFC.
    Never longer than ``text``: a decoded escape is shorter than the escape."""
    for _ in range(DECODE_ROUNDS):
        decoded = html.unescape(_BACKSLASH.sub(_unescape, text))
        if decoded == text:
            break
        text = decoded
    text = _CONTROL.sub(" ", _TAG.sub(" ", text))
    return unicodedata.normalize("NFC", text)


def _unescape(match: re.Match[str]) -> str:
    high, low, code, punctuation = match.groups()
    if high:
        return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00))
    if code:
        char = chr(int(code, 16))
        return "\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char  # a lone surrogate
    return punctuation or " "  # \n \t \r \b \f: whitespace, or a control removed later


def _folded_chars(text: str) -> tuple[str, list[int]]:
    """:func:`_fold` of ``text``, character by character, and for each folded character the
    index of the one of ``text`` it comes from."""
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for part in unicodedata.normalize("NFKC", char).casefold():
            if part.isspace():
                if not folded or folded[-1] == " ":
                    continue
                part = " "
            folded.append(part)
            origin.append(index)
    return "".join(folded), origin


def _fold(text: str) -> str:
    """``text`` as compared: NFKC (a vendor may compose or decompose ``ë``, or widen
    letters), case-folded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).casefold()).strip()
