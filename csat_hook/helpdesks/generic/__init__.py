"""Any helpdesk, configured by JSON paths: the ``generic`` adapter.

Where a helpdesk has no adapter of its own, an operator maps its webhook with JMESPath
expressions (https://jmespath.org: ``dialog.id``, ``data.item.assignee.name``,
``contacts[0].email``), chooses how the sender is authenticated (a shared token in a header,
the query or a body field, or an HMAC signature over a template of the request), and
describes the reply request as a template. ``csat-hook inspect-payload`` shows what a saved
payload contains and what the mapping takes from it. An optional ``lookup`` request lists a
dialog's messages, so a reply whose outcome was unknown (a timeout, a dropped connection, a
500 or a proxy's 502 or 504) is looked for before it is sent again; without one, it is sent
again, with a warning and a note in ``last_error``. An optional
``agent_lookup`` asks the helpdesk who handled a dialog and what the agent is called, for
closes that do not say (``examples/crisp.yaml``, ``examples/livechat.yaml``).
Optional ``note`` and ``note_lookup`` requests post internal notes (alerts about a
customer's rating, for the team) and find them again.

One module per part, each with its options: ``auth`` (token or HMAC), ``mapping`` (reading
the webhook into an event), ``reply`` (the reply and note requests), ``lookup`` (finding a
reply or note after an unknown outcome), ``agents`` (the agent look-up); ``templates``
(placeholders, shared by the requests) and ``options`` (the whole configuration). This
module is the adapter that ties them together, and captures payloads for
``inspect-payload``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping
from dataclasses import asdict
from dataclasses import replace
from datetime import datetime
from typing import Any

from csat_hook.db.text import storable
from csat_hook.errors import BadPayloadError
from csat_hook.errors import DeliveryError
from csat_hook.files import private_dir
from csat_hook.files import prune
from csat_hook.files import write_private
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.calls import lookup_marker
from csat_hook.helpdesks.generic import auth
from csat_hook.helpdesks.generic.agents import AgentLookupOptions
from csat_hook.helpdesks.generic.agents import AgentRequestOptions
from csat_hook.helpdesks.generic.agents import ask_agent
from csat_hook.helpdesks.generic.auth import AuthOptions
from csat_hook.helpdesks.generic.auth import read_timestamp
from csat_hook.helpdesks.generic.auth import signed_message
from csat_hook.helpdesks.generic.lookup import LookupRequestOptions
from csat_hook.helpdesks.generic.lookup import look
from csat_hook.helpdesks.generic.mapping import MappingOptions
from csat_hook.helpdesks.generic.mapping import body_digest
from csat_hook.helpdesks.generic.mapping import event_of
from csat_hook.helpdesks.generic.mapping import extract
from csat_hook.helpdesks.generic.options import GenericOptions
from csat_hook.helpdesks.generic.reply import ReplyRequestOptions
from csat_hook.helpdesks.generic.reply import send
from csat_hook.helpdesks.generic.templates import NOTE_FIELDS
from csat_hook.helpdesks.generic.templates import REPLY_FIELDS
from csat_hook.helpdesks.generic.templates import note_values
from csat_hook.helpdesks.generic.templates import render
from csat_hook.helpdesks.generic.templates import reply_values
from csat_hook.helpdesks.generic.templates import text_values
from csat_hook.helpdesks.generic.templates import unsendable_header_values
from csat_hook.helpdesks.generic.templates import unsendable_path_values
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import Event
from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.signing import PreviousSecret

__all__ = [
    "NOTE_FIELDS",
    "REPLY_FIELDS",
    "AgentLookupOptions",
    "AgentRequestOptions",
    "AuthOptions",
    "GenericHelpdesk",
    "GenericOptions",
    "LookupRequestOptions",
    "MappingOptions",
    "ReplyRequestOptions",
    "note_values",
    "read_timestamp",
    "render",
    "reply_values",
    "signed_message",
]

logger = logging.getLogger(__name__)


_SHORT_ESCAPES = {"/": b"/", '"': b'"', "\\": b"\\", "\b": b"b", "\f": b"f", "\n": b"n"}
_SHORT_ESCAPES |= {"\r": b"r", "\t": b"t"}


def _unit_escape(unit: int) -> bytes:
    """``\\uXXXX`` for one UTF-16 code unit, its hex digits in either case."""
    return b"\\\\u" + b"".join(
        b"[" + digit.lower().encode() + digit.upper().encode() + b"]"
        if digit.isalpha()
        else digit.encode()
        for digit in f"{unit:04x}"
    )


def json_spelling(text: str) -> re.Pattern[bytes]:
    """Every spelling of ``text`` inside a JSON string, as UTF-8: each character as itself,
    as its ``\\u`` escape (a surrogate pair beyond the BMP) or as its short escape (``\\/``,
    ``\\"``, ``\\\\``, ``\\n``...): whichever a sender's JSON library writes."""
    parts = []
    for char in text:
        code = ord(char)
        if code > 0xFFFF:
            code -= 0x10000
            units = [0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)]
        else:
            units = [code]
        spellings = [re.escape(char.encode("utf-8")), b"".join(map(_unit_escape, units))]
        if char in _SHORT_ESCAPES:
            spellings.append(re.escape(b"\\" + _SHORT_ESCAPES[char]))
        parts.append(b"(?:" + b"|".join(spellings) + b")")
    return re.compile(b"".join(parts))


def form_spelling(text: str) -> re.Pattern[bytes]:
    """Every spelling of ``text`` as a form field's value: each UTF-8 byte as itself or as
    its ``%XX`` escape (hex digits in either case), a space also as ``+`` (and a ``+`` never
    as itself, which reads as a space): whichever a sender's form encoder writes."""
    parts = []
    for byte in text.encode("utf-8"):
        spellings = [b"%" + b"".join(_hex_digit(d) for d in f"{byte:02x}")]
        if byte != ord("+"):
            spellings.append(re.escape(bytes([byte])))
        if byte == ord(" "):
            spellings.append(rb"\+")
        parts.append(b"(?:" + b"|".join(spellings) + b")")
    return re.compile(b"".join(parts))


def _hex_digit(digit: str) -> bytes:
    if digit.isalpha():
        return b"[" + digit.lower().encode() + digit.upper().encode() + b"]"
    return digit.encode()


class GenericHelpdesk(Helpdesk):
    """A helpdesk described entirely by configuration."""

    kind = "generic"
    Options = GenericOptions
    options: GenericOptions

    @property
    def supports_lookup(self) -> bool:  # type: ignore[override]
        """True when a ``lookup`` request is configured."""
        return self.options.lookup is not None

    @property
    def supports_notes(self) -> bool:  # type: ignore[override]
        """True when a ``note`` request is configured."""
        return self.options.note is not None

    @property
    def supports_note_lookup(self) -> bool:  # type: ignore[override]
        """True when a ``note_lookup`` request is configured."""
        return self.options.note_lookup is not None

    @classmethod
    def takes_notes(cls, options: HelpdeskOptions) -> bool:
        return getattr(options, "note", None) is not None

    # --- webhooks ---------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> PreviousSecret | None:
        return auth.verify(self.options.auth, request, self.clock)

    def credentials(self) -> list[tuple[str, str | None]]:
        return auth.credentials(self.options.auth)

    def proof_headers(self) -> list[str]:
        return auth.proof_headers(self.options.auth)

    def payload_secrets(self) -> list[str]:
        """The token when the sender puts it in the body (masked by ``inspect-payload`` and
        in captures), and the previous ones a rotation still accepts there."""
        options = self.options.auth
        if options.mode == "token" and options.token_field and options.token is not None:
            return [t.get_secret_value() for t in (options.token, *options.previous_tokens)]
        return []

    def extract(self, payload: Any) -> dict[str, Any]:
        """Evaluate every configured expression against ``payload`` (raw values)."""
        return extract(self.options.mapping, payload)

    def parse(self, request: WebhookRequest) -> Event:
        payload = request.json()
        if self.options.capture_dir:
            self._capture(request)
        event = event_of(self.name, self.options.mapping, payload)
        if isinstance(event, DialogClosed) and event.reply_context:
            self._check_paths(event.reply_context)
        if isinstance(event, DialogClosed):
            self._check_headers(event)
            return self._with_customer_paths(event)
        return event

    def _check_headers(self, event: DialogClosed) -> None:
        """BadPayloadError (400) when a configured request puts in a header a value of the
        close (its dialog id, customer, context) holding a control character no header may
        carry (a line break, ESC): the request is never sent (:func:`.templates.rendered_parts`),
        so the reply could never be delivered. Judged as stored; names the value and the
        header, never the value's text."""
        customer = event.customer.storable("customer")
        values = {
            "dialog_id": event.dialog_id,
            "customer_id": customer.id or "",
            "customer_email": customer.email or "",
        }
        # Context names never clash with these (MappingOptions refuses the reserved ones).
        context = {k: storable(v) for k, v in text_values(event.reply_context).items()}
        values.update(context)
        for key, spec in self._requests():
            for name, header in unsendable_header_values(spec, values):
                shown = f"context.{name}" if name in context else name
                raise BadPayloadError(
                    f"{shown} holds a control character (a line break, NUL, ESC...), which "
                    f"helpdesks.{self.name}.{key}.headers.{header} puts in a header, where "
                    "none may be sent",
                    code="bad_context" if name in context else "bad_field",
                )

    def _with_customer_paths(self, event: DialogClosed) -> DialogClosed:
        """``event``, recorded skipped (``no_customer``) when the reply's or its look-up's
        URL takes a customer value as a whole path segment and the close names none: like a
        Help Scout close without a customer, it could only fail (``/customers//messages``);
        BadPayloadError (400) when that value is ``.`` or ``..`` (another path). Judged as
        stored (:meth:`Person.storable`: NUL characters removed, and a value of invisible
        characters alone is none, ``/customers//messages`` at send). Context values:
        :meth:`_check_paths`."""
        customer = event.customer.storable("customer")
        values = {
            "customer_id": customer.id or "",
            "customer_email": customer.email or "",
        }
        for key, url, _ in self._request_urls():
            if key not in ("reply", "lookup"):
                continue
            for name, why in unsendable_path_values(url, values, values.keys(), empty=True):
                if why == "dot":
                    raise BadPayloadError(
                        f"{name} is {values[name]!r}, which no URL path can carry as a segment "
                        f"(helpdesks.{self.name}.{key}.url puts it in its path)",
                        code="bad_field",
                    )
                return replace(event, unsurveyable="no_customer")
        return event

    def _requests(self) -> list[tuple[str, Any]]:
        """Each configured request's key (``reply``, ``agent_lookup.by_id``...) and options."""
        options = self.options
        lookups = options.agent_lookup
        specs: list[tuple[str, Any]] = [
            ("reply", options.reply),
            ("lookup", options.lookup),
            ("note", options.note),
            ("note_lookup", options.note_lookup),
            ("agent_lookup.by_dialog", getattr(lookups, "by_dialog", None)),
            ("agent_lookup.by_id", getattr(lookups, "by_id", None)),
        ]
        return [(key, spec) for key, spec in specs if spec is not None]

    def _request_urls(self) -> list[tuple[str, str, bool]]:
        """Each configured request's key (``reply``, ``agent_lookup.by_id``...), URL template,
        and whether a path segment left empty keeps it from being sent (the reply and its
        look-up: :func:`.templates.rendered_parts` refuses ``//``)."""
        return [
            (key, url, key in ("reply", "lookup"))
            for key, spec in self._requests()
            if isinstance(url := getattr(spec, "url", None), str)
        ]

    def _check_paths(self, context: Mapping[str, str | None]) -> None:
        """BadPayloadError (400) for a context value that a request URL's path cannot carry
        as a segment: ``.`` or ``..`` in any configured request (the request would go to
        another path: it is never sent), or nothing in the reply's or its look-up's (``//``:
        never sent either). Accepted, such a close's reply could never be delivered; the
        sender is told now, by the context name (never the value's text but a dot segment)."""
        # As intake stores them (NUL characters removed): ".\\u0000" is "." by then.
        values = {name: storable(value) for name, value in text_values(context).items()}
        options = self.options
        for key, url, empty in self._request_urls():
            for name, why in unsendable_path_values(url, values, values.keys(), empty=empty):
                where = f"helpdesks.{self.name}.{key}.url"
                if why == "dot":
                    raise BadPayloadError(
                        f"context.{name} is {values[name]!r}, which no URL path can carry as "
                        f"a segment ({where} puts it in its path)",
                        code="bad_context",
                    )
                raise BadPayloadError(
                    f"context.{name} is empty, and {where} needs it as a path segment "
                    f"(mapping.context.{name} = {options.mapping.context.get(name)})",
                    code="missing_field",
                )

    def explain(self, request: WebhookRequest) -> dict[str, Any]:
        payload = request.json()
        # Not self.parse: reading a captured payload must not capture it again.
        event = event_of(self.name, self.options.mapping, payload)
        return {
            "expressions": self.options.mapping.expressions(),
            "extracted": self.extract(payload),
            "result": type(event).__name__,
            **asdict(event),
        }

    def _capture(self, request: WebhookRequest) -> None:
        """Save the payload (owner-only) and prune this helpdesk's old captures. A capture is a
        setup aid: a folder that cannot be written (a full disk, no permission) is logged, and
        the close is still taken."""
        try:
            self._save_capture(request)
        except OSError as exc:
            logger.warning(
                "generic.capture-failed",
                extra={"helpdesk": self.name, "error": exc.strerror or type(exc).__name__},
            )

    def _without_secrets(self, body: bytes) -> bytes:
        """``body`` with the token a sender puts in it (``token_field``) replaced, in every
        spelling JSON has for it (:func:`json_spelling`: ``\\/`` as PHP writes a ``/``, any
        character as a ``\\u`` escape) and a form has (:func:`form_spelling`: a form's field
        beside the JSON, ``%2F`` for a ``/``): each one verified the request, and a capture is
        kept for days to design a mapping from, where the shared secret has no place."""
        for secret in self.payload_secrets():
            if secret:
                body = json_spelling(secret).sub(b"(token removed)", body)
                body = form_spelling(secret).sub(b"(token removed)", body)
        return body

    def _save_capture(self, request: WebhookRequest) -> None:
        options = self.options
        folder = private_dir(options.capture_dir or ".")
        stamp = request.received_at.strftime("%Y%m%dT%H%M%S%f")
        name = f"{self.name}-{stamp}-{body_digest(request.body)[:8]}.json"
        with contextlib.suppress(FileExistsError):  # the same body in the same microsecond
            write_private(folder / name, self._without_secrets(request.body))
        prune(
            folder,
            f"{self.name}-",
            max_age_seconds=options.capture_retention_days * 86400,
            max_files=options.capture_max_files,
            max_bytes=options.capture_max_bytes,
        )

    # --- the API ----------------------------------------------------------------------------

    def send_reply(self, reply: Reply) -> SendResult:
        spec = self.options.reply
        if spec is None:  # only dryrun, which overrides send_reply, has no reply request
            raise DeliveryError(f"helpdesks.{self.name}.reply is not configured", retryable=False)
        return send(self.http, self.name, spec, reply_values(reply), reply.idempotency_key, reply)

    def post_note(self, note: Note) -> SendResult:
        spec = self.options.note
        if spec is None:
            raise DeliveryError(
                f"helpdesks.{self.name}.note is not configured: this helpdesk cannot take "
                "internal notes",
                retryable=False,
            )
        return send(self.http, self.name, spec, note_values(note), note.idempotency_key, note)

    def find_reply(self, reply: Reply, *, since: datetime) -> SendResult | None:
        spec = self.options.lookup
        if spec is None:
            raise DeliveryError(f"helpdesks.{self.name}.lookup is not configured", retryable=False)
        if not reply.marker:
            raise DeliveryError("nothing to look for: the reply has no marker", retryable=False)
        return look(self.http, self.name, spec, reply_values(reply), reply.marker, since)

    def find_note(self, note: Note, *, since: datetime) -> SendResult | None:
        spec = self.options.note_lookup
        if spec is None:
            raise DeliveryError(
                f"helpdesks.{self.name}.note_lookup is not configured", retryable=False
            )
        return look(self.http, self.name, spec, note_values(note), lookup_marker(note), since)

    def find_agent(self, dialog_id: str, context: Mapping[str, Any]) -> Person | None:
        """``agent_lookup.by_dialog``: who handled the dialog (None when not configured)."""
        spec = self.options.agent_lookup.by_dialog if self.options.agent_lookup else None
        if spec is None:
            return None
        return ask_agent(
            self.http, self.name, spec, {"dialog_id": dialog_id, **text_values(context)}
        )

    def fetch_agent(self, agent: Person, context: Mapping[str, Any]) -> Person | None:
        """``agent_lookup.by_id``: the agent's profile (None when not configured)."""
        spec = self.options.agent_lookup.by_id if self.options.agent_lookup else None
        if spec is None or not agent.id:
            return None
        found = ask_agent(
            self.http, self.name, spec, {**text_values(context), "agent_id": agent.id}
        )
        # The profile names the agent asked for, whatever id (or none) it shows.
        return Person(agent.id, found.name, found.email) if found else None
