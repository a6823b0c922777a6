"""Plain values that cross module boundaries.

Vendor shapes stop at the adapters: everything downstream of a helpdesk adapter sees these
records, never a vendor's JSON or headers.
"""

from __future__ import annotations

import json
import math
import re
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from csat_hook.db.schema import surveys
from csat_hook.db.text import fitted
from csat_hook.db.text import shows_something
from csat_hook.errors import BadPayloadError
from csat_hook.links.body import Body

_UNPARSED = object()


@dataclass
class WebhookRequest:
    """An inbound webhook, detached from Flask.

    ``headers`` keys are lower-case. ``body`` is the raw bytes the sender signed. ``method``
    and ``path`` (the URL path this service received, without the query string) exist for
    senders that sign them.
    """

    body: bytes
    headers: Mapping[str, str]
    query: Mapping[str, str]
    received_at: datetime
    content_type: str = ""
    method: str = "POST"
    path: str = ""
    _parsed: Any = field(default=_UNPARSED, repr=False)

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name, or None."""
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON (or as a form, when it was posted as one and is not a JSON
        object or array: a JSON body mislabelled as a form is read as JSON).

        Raises :class:`BadPayloadError` when the body is neither. The result is cached.
        """
        if self._parsed is _UNPARSED:
            self._parsed = _parse_body(self.body, self.content_type)
        return self._parsed


# How deeply a webhook body may nest. Vendor payloads use fewer than 10 levels; the bound
# keeps every later walk over the document shallow and cheap.
MAX_DEPTH = 64
UTF8_BOM = b"\xef\xbb\xbf"


def _parse_body(body: bytes, content_type: str) -> Any:
    # A UTF-8 byte order mark first is ignored, as RFC 8259 (8.1) allows: some senders write
    # one, and read as text it made a JSON body "not valid JSON" and a form-labelled one a
    # single field named after the whole document (the close ignored). Verification has
    # already checked the raw bytes, mark included.
    body = body.removeprefix(UTF8_BOM)
    if not body.strip():
        raise BadPayloadError("the request body is empty", code="empty_body")
    wide = _wide_encoding(body)
    if wide:
        raise BadPayloadError(
            f"the request body is {wide}, not UTF-8: send JSON as UTF-8", code="bad_encoding"
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPayloadError("the request body is not valid UTF-8", code="bad_encoding") from exc
    # Some helpdesk automation tools label a JSON body as a form: a body that starts with "{"
    # or "[" is no form (read as one, it was a single field named after the whole document,
    # and the close went unseen), so it is read as JSON.
    if content_type.startswith("application/x-www-form-urlencoded") and not text.lstrip(
        " \t\r\n"
    ).startswith(("{", "[")):
        form = _form(text)
        wrapped = _wrapped_json(form)
        if wrapped is None:
            return form
        key, text = wrapped
        if len(form) > 1:
            return _merged(form, key, _parse_json(text))
    return _parse_json(text)


def _wide_encoding(body: bytes) -> str | None:
    """``"UTF-16"`` or ``"UTF-32"`` when ``body`` starts as one of them does (a byte order
    mark, or JSON's first two ASCII characters with the NUL bytes RFC 4627 (3) tells them
    apart by), else None. Read as UTF-8 such a body was "not valid JSON" (without a mark),
    which named no reason an operator could act on."""
    head = body[:4]
    if head in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        return "UTF-32"
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "UTF-16"
    if len(head) < 4:
        return None
    if head[1:] == b"\x00\x00\x00" or head[:3] == b"\x00\x00\x00":
        return "UTF-32"
    if (head[1], head[3]) == (0, 0) or (head[0], head[2]) == (0, 0):
        return "UTF-16"
    return None


# The form fields that conventionally carry a JSON document (Slack's interactive
# ``payload``, automation tools' ``data``/``json``).
WRAPPER_FIELDS = ("payload", "data", "json")


def _wrapped_json(form: Mapping[str, str]) -> tuple[str, str] | None:
    """The field of ``form`` that carries the JSON document, and its text; None when the form
    is the document itself.

    Alone, a wrapper field is the document whatever it holds (not JSON: a 400). Beside other
    fields (a token or a label an automation tool adds: Zapier's and Make's webhook steps post
    the fields the user lists), it is the document when its value looks like JSON (a ``{`` or
    ``[`` first): read as the form it was, the close inside was ignored. Two such fields are
    refused: which one is the close cannot be told.
    """
    if len(form) == 1:
        [(key, value)] = form.items()
        return (key, value) if key in WRAPPER_FIELDS else None
    found = [
        (key, form[key])
        for key in WRAPPER_FIELDS
        if key in form and form[key].lstrip(" \t\r\n").startswith(("{", "["))
    ]
    if len(found) > 1:
        raise BadPayloadError(
            f"the form carries JSON in more than one field ({', '.join(k for k, _ in found)}): "
            "post one JSON document",
            code="mixed_form",
        )
    return found[0] if found else None


def _merged(form: Mapping[str, str], key: str, document: Any) -> dict[str, Any]:
    """The JSON ``document`` of the form field ``key`` with the form's other fields beside its
    own (a token field, a label), refused when one has the name of a key of the document (the
    body would say two things) or the document is no object (nothing to put them beside)."""
    if not isinstance(document, dict):
        raise BadPayloadError(
            f"the form field {key!r} holds a JSON {type(document).__name__} beside other "
            "fields: post the JSON document alone, or an object",
            code="mixed_form",
        )
    others = {name: value for name, value in form.items() if name != key}
    clash = sorted(set(others) & set(document))
    if clash:
        raise BadPayloadError(
            f"the form field {shown_name(clash[0])} is also a key of the JSON in {key!r}",
            code="duplicate_key",
        )
    return {**document, **others}


def _parse_json(text: str) -> Any:
    try:
        # The C parser recurses once per level and raises RecursionError near the
        # interpreter's limit (~1000): never a crash, but deeper than we accept anyway.
        parsed = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_float_sized_int,
            object_pairs_hook=_unique_keys,
        )
    except _DuplicateKeyError as exc:
        raise BadPayloadError(
            "an object in the body has the same key twice", code="duplicate_key"
        ) from exc
    except _OutOfRangeError as exc:
        raise BadPayloadError(
            "a number in the body is out of range", code="number_out_of_range"
        ) from exc
    except RecursionError as exc:
        raise _too_deep() from exc
    except ValueError as exc:
        raise BadPayloadError("the request body is not valid JSON", code="invalid_json") from exc
    # JSON may escape a lone surrogate ("\ud800"); such a string cannot be encoded as UTF-8
    # (nor stored): each is replaced by its stand-in (SURROGATE_STAND_INS). Only walk the
    # document when there may be something to do: an escape that could be one, or more
    # containers than MAX_DEPTH (so it may be too deep).
    fix = "\\ud" in text or "\\uD" in text
    if fix or text.count("[") + text.count("{") > MAX_DEPTH:
        parsed = _bounded(parsed, fix_surrogates=fix)
    return parsed


def _form(text: str) -> dict[str, str]:
    """A form body's fields, read as strictly as a JSON body: percent-escapes must be UTF-8
    (not replaced: ``%FF`` and ``%FE`` would both read as U+FFFD) and no field may be given
    twice (Python's ``dict`` keeps the last, other readers the first)."""
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadPayloadError(
            "a percent-escape in the form body is not UTF-8", code="bad_encoding"
        ) from exc
    try:
        return _unique_keys(pairs)
    except _DuplicateKeyError as exc:
        raise BadPayloadError(
            "a field of the form body is given twice", code="duplicate_key"
        ) from exc


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# A lone surrogate's stand-in: the code point 0x10F800 above it, one of the last 2,048 of
# plane 16's private use area (U+10F800-U+10FFFF), one per surrogate. Unlike U+FFFD it keeps
# two ids apart ("S\ud800" and "S\udbff" would both read "S\ufffd", as would an id written
# so), and unlike the surrogate it encodes as UTF-8, so an adapter can digest or sign any
# value. It is no value either: db/text.py treats the stand-ins as lone surrogates, so intake
# refuses a dialog id holding one (400 bad_id) and stores other text with U+FFFD for it.
SURROGATE_STAND_INS = 0x10F800 - 0xD800


def _stand_in(match: re.Match[str]) -> str:
    return chr(ord(match.group()) + SURROGATE_STAND_INS)


def _too_deep() -> BadPayloadError:
    return BadPayloadError(f"the body nests deeper than {MAX_DEPTH} levels", code="too_deep")


def _bounded(document: Any, *, fix_surrogates: bool) -> Any:
    """``document`` checked to nest at most MAX_DEPTH levels, lone surrogates replaced by
    their stand-ins (:data:`SURROGATE_STAND_INS`) when ``fix_surrogates`` (in place; keys
    too). Iterative: no recursion, whatever the depth."""
    holder = [document]
    stack: list[tuple[list[Any] | dict[Any, Any], int]] = [(holder, 0)]
    while stack:
        container, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(container, dict):
            if fix_surrogates and any(_LONE_SURROGATE.search(key) for key in container):
                items = [(_LONE_SURROGATE.sub(_stand_in, k), v) for k, v in container.items()]
                container.clear()
                container.update(items)
            entries: Any = container.items()
        else:
            entries = enumerate(container)
        for key, value in list(entries):
            if isinstance(value, str):
                if fix_surrogates and _LONE_SURROGATE.search(value):
                    container[key] = _LONE_SURROGATE.sub(_stand_in, value)
            elif isinstance(value, dict | list):
                stack.append((value, depth + 1))
    return holder[0]


class _OutOfRangeError(ValueError):
    pass


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # {"id": 1, "id": 2}: Python keeps the last, other parsers the first or refuse it, so
    # the bytes the sender signed would not say one thing. Not the canonical JSON we accept.
    document = dict(pairs)
    if len(document) != len(pairs):
        raise _DuplicateKeyError
    return document


def _finite_float(text: str) -> float:
    # 1e999 parses as infinity: not a number any field can mean.
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRangeError(text)
    return value


# Digits of the largest integer a float holds (1.79e308): one more is out of range unread.
_FLOAT_DIGITS = len(str(int(sys.float_info.max)))


def _float_sized_int(text: str) -> int:
    # As _finite_float: an integer no float holds is out of range, as the same number written
    # 1e400 is. Decided on its length first, so a digit string never costs more than this
    # (json.loads's own int() refused more than 4300 digits as "not valid JSON").
    if len(text.removeprefix("-")) > _FLOAT_DIGITS:
        raise _OutOfRangeError(text[:20])
    value = int(text)
    try:
        float(value)
    except OverflowError as exc:
        raise _OutOfRangeError(text[:20]) from exc
    return value


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser accepts them unless told otherwise.
    raise ValueError(f"{name} is not valid JSON")


@dataclass(frozen=True)
class Person:
    """An agent or a customer as a helpdesk describes them. Any field may be unknown."""

    id: str | None = None
    name: str | None = None
    email: str | None = None

    @property
    def known(self) -> bool:
        return bool(self.id or self.name or self.email)

    @property
    def key(self) -> str | None:
        """The most stable identifier we have: id, else email, else name."""
        return self.id or (self.email.lower() if self.email else None) or self.name

    @property
    def display(self) -> str:
        """What to show a customer or a manager: name, else email, else id."""
        return self.name or self.email or self.id or ""

    def merged(self, other: Person) -> Person:
        """Fill the fields this one lacks from ``other``."""
        return Person(
            id=self.id or other.id,
            name=self.name or other.name,
            email=self.email or other.email,
        )

    def storable(self, role: str = "agent") -> Person:
        """This person as the ``surveys`` columns of ``role`` (``agent`` or ``customer``) can
        hold it: each field without NUL characters and lone surrogates, clipped to its column
        (:func:`csat_hook.db.text.fitted`); a field left empty becomes None.

        A field of invisible characters alone (zero-width, format or space characters:
        ``db.text.shows_something``) is None too: an agent id that shows nothing was that agent's
        key in the reports, and a name or e-mail so is none to show.

        For every person a vendor describes (a webhook's, an agent look-up's answer): it is
        stored, and it goes into the survey's link and text, which must encode as UTF-8.
        """
        columns = surveys.c

        def field(name: str, value: str | None) -> str | None:
            text = fitted(columns[f"{role}_{name}"], value)
            return text if text is not None and shows_something(text) else None

        return Person(
            id=field("id", self.id),
            name=field("name", self.name),
            email=field("email", self.email),
        )


@dataclass(frozen=True)
class DialogClosed:
    """A dialog was closed: the event that leads to a survey.

    ``occurrence`` identifies this particular close (a vendor event id, a close time), so a
    vendor retry of the same close is recognised even when re-surveying on every close is on.
    ``occurrence_repeats`` says that a later, genuinely new close of the dialog may carry the
    same occurrence (Freshdesk's is derived from the status change, which names no time):
    intake then lets this close re-arm a survey of the same occurrence that a reopen cancelled.
    False (the default): the occurrence names one close, so seen again it is that close's
    retry or replay, a duplicate whatever became of its survey.
    ``reply_context`` holds the vendor values the adapter needs later to post the reply
    (an account id, a customer id...); it must be JSON-serialisable.
    ``closes_once``: the helpdesk never closes a dialog again once closed (LiveChat: a
    thread, once deactivated, is never active again; a customer who comes back starts a new
    one). A close of a dialog whose survey a reopen cancelled is then that close's retry or
    replay, and re-arms nothing, whatever the close times say.
    ``unsurveyable``: why no reply can be posted for this close (a skip reason such as
    ``no_customer``: Help Scout's reply, or a generic one whose URL has the customer as a path
    segment, must name the customer, and the close named none), or
    None. Intake records the close as skipped with that reason rather than queue a reply that
    can only fail.
    ``close_times`` is every time the payload gives for the close, in the vendor's order of
    preference (the close's own time first, then a notification's or an update's), each
    field that reads as a time (``payload.parse_timestamps``): intake keeps the first it can
    believe (``intake.storable.trusted_close_time``), so one field with a wrong clock does not
    hide a true time in the next. Empty when the payload names none.
    """

    helpdesk: str
    dialog_id: str
    agent: Person = field(default_factory=Person)
    customer: Person = field(default_factory=Person)
    team: str | None = None
    channel: str | None = None
    language: str | None = None
    close_times: tuple[datetime, ...] = ()
    occurrence: str | None = None
    occurrence_repeats: bool = False
    closes_once: bool = False
    reply_context: Mapping[str, Any] = field(default_factory=dict)
    unsurveyable: str | None = None


@dataclass(frozen=True)
class DialogReopened:
    """A dialog was reopened; a survey still waiting to be sent may be cancelled.

    ``reopen_times`` is every time the payload gives for the reopen (the event's own time, the
    dialog's last update...), each field that reads as a time (``payload.parse_timestamps``),
    as ``DialogClosed.close_times`` is for a close, but only fields that, alone or with the
    others, cannot all be earlier than the reopen (its own time, the dialog's update that it
    was, the notification's creation; never a last activity, which may precede it). Intake
    keeps the latest of them (``intake.storable.trusted_reopen_time``: one in the
    future makes the time unknown) and cancels only the waiting surveys of closes not later
    than it: a reopen that happened before the close and was delivered (or retried) after it
    leaves that close's survey queued. Empty when the payload names none: every waiting
    survey of the dialog is cancelled, as before reopens had times.
    """

    helpdesk: str
    dialog_id: str
    reopen_times: tuple[datetime, ...] = ()


# What a value from a payload or a request must look like to be named in a reason (an event,
# a topic, a status, a helpdesk name): one short token of letters (any script: a translated
# status is a vendor's word), digits and ``._:/-{},``. No spaces, so no sentence: the field
# may hold anything (a mapping pointing at the wrong field, a vendor's oddity), and a reason
# is answered to the sender and logged.
NAME_LIMIT = 64
_NAME = re.compile(r"(?:[^\W_]|[_.:/{},-])+")


def shown_name(value: str | None, *, missing: str = "(none)") -> str:
    """``value`` as an ignored reason (or a refusal) may show it: itself when it looks like a
    name (:data:`NAME_LIMIT` characters at most, see ``_NAME``), else a description that
    quotes none of it (``(not a name: 57 characters)``); ``missing`` when empty or None."""
    if not value:
        return missing
    if len(value) <= NAME_LIMIT and _NAME.fullmatch(value):
        return value
    return f"(not a name: {len(value)} characters)"


def header_text(value: str) -> str:
    """A header's value as the sender wrote it: a WSGI server hands each header over as its
    bytes read as Latin-1 (UTF-8 ``é`` arrives as ``Ã©``), so this reads them as UTF-8 (a
    byte that is not UTF-8 becomes U+FFFD). A value already beyond Latin-1 is kept."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    return raw.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Ignored:
    """An event we deliberately do nothing with, and why (answered 200 so vendors stop).

    ``reason`` is answered to the sender and logged: it names a payload's value only through
    :func:`shown_name` (never customer text). It is cut to REASON_LIMIT characters.
    ``misconfigured``: see below.
    """

    reason: str
    # The body is not what the helpdesk's rule was set up to send (a template left
    # unrendered, another body format chosen): every close from that rule will be ignored
    # until an operator fixes it, so intake says so at WARNING, not among routine ignores.
    misconfigured: bool = False

    def __post_init__(self) -> None:
        if len(self.reason) > REASON_LIMIT:
            object.__setattr__(self, "reason", self.reason[: REASON_LIMIT - 1] + "…")


REASON_LIMIT = 200


Event = DialogClosed | DialogReopened | Ignored


@dataclass(frozen=True)
class Reply:
    """A reply to post into a dialog, as the delivery worker hands it to an adapter.

    ``marker`` is a string unique to this survey that ``text`` carries (the survey's signed
    reference, in the link): :meth:`~csat_hook.helpdesks.base.Helpdesk.find_reply` looks for
    it among the dialog's messages. Empty when unknown (then no look-up is possible).
    """

    helpdesk: str
    dialog_id: str
    text: str
    link: str
    agent: Person
    customer: Person
    context: Mapping[str, Any]
    idempotency_key: str
    marker: str = ""  # a string unique to this survey that the reply text carries (the survey's
    # signed reference); find_reply looks for it.
    # The reply as pieces (text, the link, the scale of score links), for adapters that write
    # it in their markup (helpdesks/markup.py); ``text`` is its plain-text rendering.
    body: Body = ()
    channel: str = ""  # as the close said (Chatwoot: Channel::WebWidget...); "" when unknown
    # What an adapter that reads the dialog's status right before the reply does with a dialog
    # open again since the close (policy.cancel_on_reopen): True, posts nothing and raises
    # DialogReopenedError; False, posts the reply without changing the status.
    cancel_on_reopen: bool = True


@dataclass(frozen=True)
class Note:
    """An internal note to post into a dialog (an alert about the customer's answer): for the
    team, never shown to the customer, and never changing the dialog's status.

    ``text`` is plain text (adapters whose bodies are HTML escape it); ``marker`` is the alert's
    reference, which ``text`` carries: :meth:`~csat_hook.helpdesks.base.Helpdesk.find_note`
    looks for it among the dialog's notes. ``context`` is the survey's reply context (an
    account id, an admin id...), as the reply to the same dialog had it.
    """

    helpdesk: str
    dialog_id: str
    text: str
    marker: str
    context: Mapping[str, Any]
    idempotency_key: str


@dataclass(frozen=True)
class SendResult:
    """What the vendor answered to a posted reply. ``external_id`` is its message id.
    ``note``: what operators should know of an alert that went out (an e-mail's refused
    recipients), kept with its outbox row. ``retry_to``: the receivers of an alert that went
    out to others but refused it for now (an e-mail's recipients answered 4xx): the outbox
    sends it again later to these alone (``Destination.send_to``)."""

    external_id: str | None = None
    note: str | None = None
    retry_to: tuple[str, ...] = ()
