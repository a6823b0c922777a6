"""Any helpdesk, configured by JSON paths: the ``generic`` adapter.

Where a helpdesk has no adapter of its own, an operator maps its webhook with JMESPath
expressions (https://jmespath.org: ``dialog.id``, ``data.item.assignee.name``,
``contacts[0].email``), chooses how the sender is authenticated (a shared token in a header,
the query or a body field, or an HMAC signature over a template of the request), and
describes the reply request as a template. ``csat-hook inspect-payload`` shows what a saved
payload contains and what the mapping takes from it. An optional ``lookup`` request lists a
dialog's messages, so a reply whose outcome was unknown (a timeout, a dropped connection) is
looked for before it is sent again; without one, it is sent again. An optional
``agent_lookup`` asks the helpdesk who handled a dialog and what the agent is called, for
closes that do not say (``examples/crisp.yaml``, ``examples/livechat.yaml``).
Optional ``note`` and ``note_lookup`` requests post internal notes (alerts about a
customer's rating, for the team) and find them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import re
import string
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import jmespath
from pydantic import SecretStr

from csat_hook.errors import BadPayloadError
from csat_hook.errors import DeliveryError
from csat_hook.errors import InvalidSignatureError
from csat_hook.files import private_dir
from csat_hook.files import prune
from csat_hook.files import write_private
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.base import as_id
from csat_hook.helpdesks.base import as_text
from csat_hook.helpdesks.base import hmac_digest
from csat_hook.helpdesks.base import lookup_marker
from csat_hook.helpdesks.base import parse_timestamp
from csat_hook.helpdesks.base import require_fresh
from csat_hook.helpdesks.base import shared_token_matches
from csat_hook.helpdesks.base import signature_matches
from csat_hook.helpdesks.generic.options import NOTE_FIELDS
from csat_hook.helpdesks.generic.options import REPLY_FIELDS
from csat_hook.helpdesks.generic.options import AgentLookupOptions
from csat_hook.helpdesks.generic.options import AgentRequestOptions
from csat_hook.helpdesks.generic.options import AuthOptions
from csat_hook.helpdesks.generic.options import GenericOptions
from csat_hook.helpdesks.generic.options import LookupRequestOptions
from csat_hook.helpdesks.generic.options import MappingOptions
from csat_hook.helpdesks.generic.options import ReplyRequestOptions
from csat_hook.helpdesks.generic.options import render
from csat_hook.helpdesks.markup import reply_html
from csat_hook.helpdesks.markup import reply_markdown
from csat_hook.helpdesks.markup import text_to_html
from csat_hook.helpdesks.reasons import ErrorItem
from csat_hook.helpdesks.reasons import as_items
from csat_hook.helpdesks.reasons import explainer
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Event
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.records import WebhookRequest

logger = logging.getLogger(__name__)

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


# Messages read from one look-up answer, at most (the newest page is what is asked for).
LOOKUP_MAX_MESSAGES = 1000
# Vendor clocks differ from ours: messages this much older than `since` still count.
LOOKUP_CLOCK_SKEW = timedelta(minutes=5)


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

    def verify(self, request: WebhookRequest) -> None:
        auth = self.options.auth
        if auth.mode == "none":
            return
        if auth.mode == "token":
            assert auth.token is not None
            if shared_token_matches(
                request, auth.token, header=auth.token_header, query=auth.token_query
            ) or (auth.token_field and _field_token_matches(request, auth.token, auth.token_field)):
                return
            raise InvalidSignatureError("missing or wrong webhook token")
        assert auth.secret is not None
        timestamp = request.header(auth.timestamp_header) if auth.timestamp_header else None
        if auth.timestamp_header:
            require_fresh(
                read_timestamp(timestamp, auth.timestamp_format),
                self.clock(),
                auth.tolerance_seconds,
            )
        message = signed_message(auth.signed_payload, request, timestamp=timestamp or "")
        expected = hmac_digest(auth.secret, message, auth.algorithm)
        if not signature_matches(
            expected,
            request.header(auth.signature_header),
            encoding=auth.encoding,
            prefix=auth.signature_prefix,
        ):
            raise InvalidSignatureError("missing or invalid webhook signature")

    def payload_secrets(self) -> list[str]:
        """The token when the sender puts it in the body (masked by ``inspect-payload``)."""
        auth = self.options.auth
        if auth.mode == "token" and auth.token_field and auth.token is not None:
            return [auth.token.get_secret_value()]
        return []

    def extract(self, payload: Any) -> dict[str, Any]:
        """Evaluate every configured expression against ``payload`` (raw values)."""
        return {
            key: jmespath.search(expr, payload)
            for key, expr in self.options.mapping.expressions().items()
        }

    def parse(self, request: WebhookRequest) -> Event:
        payload = request.json()
        if self.options.capture_dir:
            self._capture(request)
        return self._event(request, payload)

    def _event(self, request: WebhookRequest, payload: Any) -> Event:
        values = self.extract(payload)
        mapping = self.options.mapping
        verdict = self._classify(values, mapping)
        if isinstance(verdict, Ignored):
            return verdict
        dialog_id = as_id(values.get("dialog_id"), _field(mapping, "dialog_id"))
        if dialog_id is None and verdict == "reopened":
            # A reopen names no dialog we could have surveyed (LiveChat's first thread of a
            # chat has no previous one): nothing to cancel.
            return Ignored(f"reopen without a dialog id (mapping.dialog_id = {mapping.dialog_id})")
        if dialog_id is None:
            raise BadPayloadError(
                f"dialog id is missing (mapping.dialog_id = {mapping.dialog_id})",
                code="missing_field",
            )
        if verdict == "reopened":
            return DialogReopened(self.name, dialog_id)
        context = {
            k.removeprefix("context."): as_text(v, limit=1000)
            for k, v in values.items()
            if k.startswith("context.")
        }
        return DialogClosed(
            helpdesk=self.name,
            dialog_id=dialog_id,
            agent=Person(
                as_id(values.get("agent_id"), _field(mapping, "agent_id")),
                as_text(values.get("agent_name")),
                as_text(values.get("agent_email")),
            ),
            customer=Person(
                as_id(values.get("customer_id"), _field(mapping, "customer_id")),
                as_text(values.get("customer_name")),
                as_text(values.get("customer_email")),
            ),
            team=as_text(values.get("team")),
            channel=as_text(values.get("channel")),
            language=as_text(values.get("language")),
            occurrence=as_text(values.get("occurrence")) or _body_digest(request.body),
            reply_context=context,
        )

    @staticmethod
    def _classify(values: Mapping[str, Any], mapping: MappingOptions) -> str | Ignored:
        event = (as_text(values.get("event")) or "").lower()
        status = (as_text(values.get("status")) or "").lower()
        if mapping.event is not None:
            if event in _lower(mapping.reopen_events) and mapping.status is None:
                return "reopened"
            if event not in _lower(mapping.close_events) | _lower(mapping.reopen_events):
                return Ignored(f"event {event or '(none)'!r} is not a close event")
        if mapping.status is not None:
            if status in _lower(mapping.closed_values):
                return "closed"
            if status in _lower(mapping.reopened_values):
                return "reopened"
            return Ignored(f"status {status or '(none)'!r} does not mean closed")
        return "reopened" if event in _lower(mapping.reopen_events) else "closed"

    def send_reply(self, reply: Reply) -> SendResult:
        spec = self.options.reply
        if spec is None:  # only dryrun, which overrides send_reply, has no reply request
            raise DeliveryError(f"helpdesks.{self.name}.reply is not configured", retryable=False)
        return self._send(spec, reply_values(reply), reply.idempotency_key, reply)

    def post_note(self, note: Note) -> SendResult:
        spec = self.options.note
        if spec is None:
            raise DeliveryError(
                f"helpdesks.{self.name}.note is not configured: this helpdesk cannot take "
                "internal notes",
                retryable=False,
            )
        return self._send(spec, note_values(note), note.idempotency_key, note)

    def _send(
        self,
        spec: ReplyRequestOptions,
        values: Mapping[str, str],
        idempotency_key: str,
        sent: Reply | Note,
    ) -> SendResult:
        url = render(spec.url, values, quote=True)
        headers = {k: render(v.get_secret_value(), values) for k, v in spec.headers.items()}
        if spec.idempotency_header:
            headers.setdefault(spec.idempotency_header, idempotency_key)
        params = {k: render(v.get_secret_value(), values) for k, v in spec.query.items()}
        body = render(spec.body, values)
        kwargs: dict[str, Any] = {"json": body} if spec.encoding == "json" else {"data": body}
        explain = None
        if spec.error_reason:
            explain = explainer(lambda body: _reason_items(spec.error_reason, body), sent)
        response = self.http.request(
            spec.method, url, headers=headers, params=params, explain=explain, **kwargs
        )
        answer = _json_or_none(response.content)
        if spec.error_path and answer is not None and jmespath.search(spec.error_path, answer):
            reason = explain(response) if explain else None
            message = f"{self.name}: the API answered 2xx with an error ({spec.error_path})"
            raise DeliveryError(
                f"{message}: {reason}" if reason else message,
                retryable=False,
                http_status=response.status_code,
                vendor_reason=reason,
            )
        message_id = jmespath.search(spec.message_id, answer) if spec.message_id else None
        return SendResult(external_id=as_text(message_id))

    def find_reply(self, reply: Reply, *, since: datetime) -> SendResult | None:
        spec = self.options.lookup
        if spec is None:
            raise DeliveryError(f"helpdesks.{self.name}.lookup is not configured", retryable=False)
        if not reply.marker:
            raise DeliveryError("nothing to look for: the reply has no marker", retryable=False)
        return self._look(spec, reply_values(reply), reply.marker, since)

    def find_note(self, note: Note, *, since: datetime) -> SendResult | None:
        spec = self.options.note_lookup
        if spec is None:
            raise DeliveryError(
                f"helpdesks.{self.name}.note_lookup is not configured", retryable=False
            )
        return self._look(spec, note_values(note), lookup_marker(note), since)

    def _look(
        self,
        spec: LookupRequestOptions,
        values: Mapping[str, str],
        marker: str,
        since: datetime,
    ) -> SendResult | None:
        url = render(spec.url, values, quote=True)
        headers = {k: render(v.get_secret_value(), values) for k, v in spec.headers.items()}
        params = {k: render(v.get_secret_value(), values) for k, v in spec.query.items()}
        kwargs: dict[str, Any] = {}
        if spec.body is not None:
            kwargs["json"] = render(spec.body, values)
        response = self.http.request(spec.method, url, headers=headers, params=params, **kwargs)
        answer = _json_or_none(response.content)
        if answer is None:
            # A proxy's page, a half-deployed API: worth asking again later.
            raise DeliveryError(f"{self.name}: the look-up answer is not JSON", retryable=True)
        return _find_marked(spec, answer, marker, since - LOOKUP_CLOCK_SKEW, self.name)

    def find_agent(self, dialog_id: str, context: Mapping[str, Any]) -> Person | None:
        """``agent_lookup.by_dialog``: who handled the dialog (None when not configured)."""
        spec = self.options.agent_lookup.by_dialog if self.options.agent_lookup else None
        if spec is None:
            return None
        return self._ask_agent(spec, {"dialog_id": dialog_id, **_text_values(context)})

    def fetch_agent(self, agent: Person, context: Mapping[str, Any]) -> Person | None:
        """``agent_lookup.by_id``: the agent's profile (None when not configured)."""
        spec = self.options.agent_lookup.by_id if self.options.agent_lookup else None
        if spec is None or not agent.id:
            return None
        found = self._ask_agent(spec, {**_text_values(context), "agent_id": agent.id})
        # The profile names the agent asked for, whatever id (or none) it shows.
        return Person(agent.id, found.name, found.email) if found else None

    def _ask_agent(self, spec: AgentRequestOptions, values: Mapping[str, str]) -> Person | None:
        url = render(spec.url, values, quote=True)
        headers = {k: render(v.get_secret_value(), values) for k, v in spec.headers.items()}
        params = {k: render(v.get_secret_value(), values) for k, v in spec.query.items()}
        kwargs: dict[str, Any] = {}
        if spec.body is not None:
            kwargs["json"] = render(spec.body, values)
        try:
            response = self.http.request(
                spec.method, url, headers=headers, params=params, retries=2, **kwargs
            )
        except DeliveryError as exc:
            if exc.http_status == 404:
                return None  # no such dialog or agent: sent without a name, like a miss
            raise
        answer = _json_or_none(response.content)
        if answer is None:
            # A proxy's page, a half-deployed API: worth asking again later.
            raise DeliveryError(
                f"{self.name}: the agent look-up answer is not JSON", retryable=True
            )
        return _agent_in(spec, answer)

    def explain(self, request: WebhookRequest) -> dict[str, Any]:
        payload = request.json()
        # Not self.parse: reading a captured payload must not capture it again.
        event = self._event(request, payload)
        return {
            "expressions": self.options.mapping.expressions(),
            "extracted": self.extract(payload),
            "result": type(event).__name__,
            **asdict(event),
        }

    def _capture(self, request: WebhookRequest) -> None:
        """Save the payload (owner-only) and prune this helpdesk's old captures."""
        options = self.options
        folder = private_dir(options.capture_dir or ".")
        stamp = request.received_at.strftime("%Y%m%dT%H%M%S%f")
        name = f"{self.name}-{stamp}-{_body_digest(request.body)[:8]}.json"
        with contextlib.suppress(FileExistsError):  # the same body in the same microsecond
            write_private(folder / name, request.body)
        prune(
            folder,
            f"{self.name}-",
            max_age_seconds=options.capture_retention_days * 86400,
            max_files=options.capture_max_files,
            max_bytes=options.capture_max_bytes,
        )


def reply_values(reply: Reply) -> dict[str, str]:
    """The placeholder values a reply template may use."""
    values = {
        "text": reply.text,
        # The same reply for APIs whose messages are HTML or Markdown (the scale of score
        # links as anchors / [label](url); otherwise the text with its link).
        "html": reply_html(reply),
        "markdown": reply_markdown(reply),
        "link": reply.link,
        "dialog_id": reply.dialog_id,
        "agent_id": reply.agent.id or "",
        "agent_name": reply.agent.name or "",
        "agent_email": reply.agent.email or "",
        "customer_id": reply.customer.id or "",
        "customer_email": reply.customer.email or "",
        "idempotency_key": reply.idempotency_key,
    }
    values.update({k: "" if v is None else str(v) for k, v in reply.context.items()})
    return values


def note_values(note: Note) -> dict[str, str]:
    """The placeholder values a note template may use (:data:`NOTE_FIELDS` and the context)."""
    values = {
        "text": note.text,
        "html": text_to_html(note.text),
        "dialog_id": note.dialog_id,
        "marker": note.marker,
        "idempotency_key": note.idempotency_key,
    }
    values.update({k: "" if v is None else str(v) for k, v in note.context.items()})
    return values


def _reason_items(expression: str | None, body: Any) -> list[ErrorItem]:
    """What ``reply.error_reason`` selects in an error answer, as items."""
    found = jmespath.search(expression, body) if expression else None
    return as_items(found, _reason_item)


def _reason_item(value: Any) -> ErrorItem | None:
    if isinstance(value, Mapping):
        return ErrorItem(
            code=value.get("code"), field=value.get("field"), message=value.get("message")
        )
    if isinstance(value, str | int) and not isinstance(value, bool):
        return ErrorItem(message=value)
    return None


def _find_marked(
    spec: LookupRequestOptions, answer: Any, marker: str, not_before: datetime, name: str
) -> SendResult | None:
    """The first message of ours in ``answer`` whose text carries ``marker``."""
    messages = jmespath.search(spec.messages, answer)
    if not isinstance(messages, list):
        # A wrong path, not a transient fault: asking again will not help.
        raise DeliveryError(
            f"helpdesks.{name}.lookup.messages ({spec.messages}) is not a list in the answer",
            retryable=False,
        )
    for message in messages[:LOOKUP_MAX_MESSAGES]:
        text = jmespath.search(spec.text, message)
        if not isinstance(text, str) or marker not in text:
            continue
        if spec.ours is not None and not jmespath.search(spec.ours, message):
            continue  # a customer quoting our survey, an internal note
        if spec.created_at is not None:
            created = parse_timestamp(jmespath.search(spec.created_at, message))
            # An unreadable date does not hide a match: the marker is unique to this survey.
            if created is not None and created < not_before:
                continue
        return SendResult(external_id=as_text(jmespath.search(spec.id, message)))
    return None


def _field(mapping: MappingOptions, key: str) -> str:
    """How an error names a mapped field: the payload path the mapping reads it from."""
    return f"{mapping.expressions().get(key, key)} (mapping.{key})"


def signed_message(template: str, request: WebhookRequest, *, timestamp: str) -> bytes:
    """The bytes an HMAC sender signs: ``template`` (``auth.signed_payload``) with the raw
    body, the timestamp header's value as received, the method and the path in place."""
    values = {
        "body": request.body,
        "timestamp": timestamp.encode("utf-8"),
        "method": request.method.encode("utf-8"),
        "path": request.path.encode("utf-8"),
    }
    parts: list[bytes] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        parts.append(literal.encode("utf-8"))
        if name is not None:
            parts.append(values[name])
    return b"".join(parts)


_UNIX = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,9})?")


def read_timestamp(value: str | None, unit: str) -> datetime | None:
    """A signature timestamp in ``unit`` (``s``, ``ms``, ``iso`` or ``auto``: any of them);
    None when missing or not written that way."""
    if value is None:
        return None
    text = value.strip()
    if unit == "auto":
        return parse_timestamp(text)
    if unit in ("s", "ms"):
        if not _UNIX.fullmatch(text):
            return None
        seconds = float(text) / (1000 if unit == "ms" else 1)
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not text[:4].isdigit():  # fromisoformat also reads "T12:00" and friends
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _field_token_matches(request: WebhookRequest, token: SecretStr, path: str) -> bool:
    """True when the JSON body's field ``path`` (keys joined by dots) is the token: a string,
    compared in constant time. A body that is not JSON carries no token."""
    try:
        value: Any = request.json()
    except BadPayloadError:
        return False
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return False
        value = value.get(key)
    if not isinstance(value, str):
        return False
    expected = token.get_secret_value().encode("utf-8")
    return hmac.compare_digest(expected, value.encode("utf-8", "replace"))


def _text_values(context: Mapping[str, Any]) -> dict[str, str]:
    return {k: "" if v is None else str(v) for k, v in context.items()}


def _agent_in(spec: AgentRequestOptions, answer: Any) -> Person | None:
    """The agent ``spec`` reads from a look-up answer; None when the answer names none."""
    found = jmespath.search(spec.agent, answer)
    if isinstance(found, list):
        found = next((item for item in found if isinstance(item, Mapping)), None)
    if not isinstance(found, Mapping):
        return None

    def read(expression: str | None) -> str | None:
        return as_text(jmespath.search(expression, found)) if expression else None

    person = Person(read(spec.id), read(spec.name), read(spec.email))
    return person if person.known else None


def _lower(items: list[str]) -> set[str]:
    return {item.lower() for item in items}


def _body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None
