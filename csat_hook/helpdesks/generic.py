"""Any helpdesk, configured by JSON paths: the ``generic`` adapter.

Where a helpdesk has no adapter of its own, an operator maps its webhook with JMESPath
expressions (https://jmespath.org: ``dialog.id``, ``data.item.assignee.name``,
``contacts[0].email``), chooses how the sender is authenticated (shared token in a header or
the query, or an HMAC signature), and describes the reply request as a template.
``csat-hook inspect-payload`` shows what a saved payload contains and what the mapping takes
from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import string
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from typing import Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.config import StrictModel
from csat_hook.errors import BadPayloadError
from csat_hook.errors import DeliveryError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.base import as_text
from csat_hook.helpdesks.base import hmac_digest
from csat_hook.helpdesks.base import parse_timestamp
from csat_hook.helpdesks.base import require_fresh
from csat_hook.helpdesks.base import shared_token_matches
from csat_hook.helpdesks.base import signature_matches
from csat_hook.records import DialogClosed
from csat_hook.records import DialogReopened
from csat_hook.records import Event
from csat_hook.records import Ignored
from csat_hook.records import Person
from csat_hook.records import Reply
from csat_hook.records import SendResult
from csat_hook.records import WebhookRequest

logger = logging.getLogger(__name__)

REPLY_FIELDS = (
    "text", "link", "dialog_id", "agent_id", "agent_name", "agent_email", "customer_id",
    "customer_email", "idempotency_key",
)


class AuthOptions(StrictModel):
    """How the sender proves itself: ``token`` (shared secret), ``hmac`` or ``none``."""

    mode: Literal["token", "hmac", "none"] = "token"
    token: SecretStr | None = None
    token_header: str | None = "X-Webhook-Token"  # noqa: S105 (a header name)
    token_query: str | None = "token"  # noqa: S105 (a parameter name)
    secret: SecretStr | None = None
    signature_header: str = "X-Signature"
    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    signature_prefix: str = ""
    timestamp_header: str | None = None
    signed_payload: Literal["{body}", "{timestamp}{body}", "{timestamp}.{body}"] = "{body}"
    tolerance_seconds: float = Field(default=300, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> AuthOptions:
        if self.mode == "token":
            if self.token is None:
                raise ValueError("token is required when mode is token")
            if not (self.token_header or self.token_query):
                raise ValueError("set token_header and/or token_query")
        if self.mode == "hmac" and self.secret is None:
            raise ValueError("secret is required when mode is hmac")
        if "{timestamp}" in self.signed_payload and not self.timestamp_header:
            raise ValueError("timestamp_header is required when signed_payload has {timestamp}")
        return self


class MappingOptions(StrictModel):
    """JMESPath expressions into the webhook body. Unset (null) means "not in this payload"."""

    event: str | None = "event"
    close_events: list[str] = Field(default_factory=lambda: ["dialog.closed"])
    reopen_events: list[str] = Field(default_factory=lambda: ["dialog.reopened"])
    status: str | None = None
    closed_values: list[str] = Field(default_factory=lambda: ["closed", "resolved", "solved"])
    reopened_values: list[str] = Field(default_factory=lambda: ["open", "reopened"])
    dialog_id: str = "dialog.id"
    agent_id: str | None = "agent.id"
    agent_name: str | None = "agent.name"
    agent_email: str | None = "agent.email"
    customer_id: str | None = "customer.id"
    customer_name: str | None = "customer.name"
    customer_email: str | None = "customer.email"
    team: str | None = "team"
    channel: str | None = "channel"
    language: str | None = "language"
    occurrence: str | None = None
    context: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _compile(self) -> MappingOptions:
        if self.event is None and self.status is None:
            raise ValueError("set event and/or status: one of them must say a dialog closed")
        for key, expression in self.expressions().items():
            try:
                jmespath.compile(expression)
            except JMESPathError as exc:
                raise ValueError(f"{key}: {expression!r} is not a valid JMESPath: "
                                 f"{str(exc).splitlines()[0]}") from None
        clash = set(self.context) & set(REPLY_FIELDS)
        if clash:
            raise ValueError(f"context: names {sorted(clash)} are reserved")
        return self

    def expressions(self) -> dict[str, str]:
        """Every configured expression by its key (context values as ``context.<name>``)."""
        found = {
            key: getattr(self, key)
            for key in ("event", "status", "dialog_id", "agent_id", "agent_name", "agent_email",
                        "customer_id", "customer_name", "customer_email", "team", "channel",
                        "language", "occurrence")
            if getattr(self, key)
        }
        found.update({f"context.{k}": v for k, v in self.context.items()})
        return found


class ReplyRequestOptions(StrictModel):
    """The HTTP request that posts the reply. Placeholders: ``{text}``, ``{dialog_id}``...

    ``headers`` and ``query`` values are treated as secrets (masked by check-config).
    """

    method: Literal["POST", "PUT", "PATCH"] = "POST"
    url: str
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    query: dict[str, SecretStr] = Field(default_factory=dict)
    body: Any = Field(default_factory=lambda: {"dialog_id": "{dialog_id}", "text": "{text}"})
    encoding: Literal["json", "form"] = "json"
    idempotency_header: str | None = "Idempotency-Key"
    message_id: str | None = "id"
    error_path: str | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class GenericOptions(HelpdeskOptions):
    type: str = "generic"
    auth: AuthOptions
    mapping: MappingOptions = Field(default_factory=MappingOptions)
    reply: ReplyRequestOptions | None = None
    # When set, every verified payload is saved here for `inspect-payload` (holds customer data).
    capture_dir: str | None = None

    @model_validator(mode="after")
    def _reply_needed(self) -> GenericOptions:
        if self.type == "generic" and self.reply is None:
            raise ValueError("reply is required: describe the request that posts the reply")
        if self.reply is not None:
            allowed = set(REPLY_FIELDS) | set(self.mapping.context)
            _check_placeholders(self.reply, allowed)
        return self


def _check_placeholders(reply: ReplyRequestOptions, allowed: set[str]) -> None:
    texts = [reply.url, *[v.get_secret_value() for v in reply.headers.values()],
             *[v.get_secret_value() for v in reply.query.values()], *_strings(reply.body)]
    for text in texts:
        for _, name, _, _ in string.Formatter().parse(text):
            if name is not None and name not in allowed:
                raise ValueError(f"reply: unknown placeholder {{{name}}}; "
                                 f"known: {', '.join(sorted(allowed))}")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def render(template: Any, values: Mapping[str, str], *, quote: bool = False) -> Any:
    """Fill ``{name}`` placeholders in every string of a JSON-like template."""
    if isinstance(template, str):
        source = {k: urllib.parse.quote(v, safe="") for k, v in values.items()} if quote \
            else values
        return string.Formatter().vformat(template, (), dict(source))
    if isinstance(template, dict):
        return {k: render(v, values, quote=quote) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values, quote=quote) for v in template]
    return template


class GenericHelpdesk(Helpdesk):
    """A helpdesk described entirely by configuration."""

    type = "generic"
    Options = GenericOptions
    options: GenericOptions

    def verify(self, request: WebhookRequest) -> None:
        auth = self.options.auth
        if auth.mode == "none":
            return
        if auth.mode == "token":
            assert auth.token is not None
            if not shared_token_matches(request, auth.token, header=auth.token_header,
                                        query=auth.token_query):
                raise InvalidSignatureError("missing or wrong webhook token")
            return
        assert auth.secret is not None
        timestamp = request.header(auth.timestamp_header) if auth.timestamp_header else None
        if auth.timestamp_header:
            require_fresh(parse_timestamp(timestamp), self.clock(), auth.tolerance_seconds)
        message = auth.signed_payload.replace("{timestamp}", timestamp or "").encode("utf-8")
        message = message.replace(b"{body}", request.body)
        expected = hmac_digest(auth.secret, message, auth.algorithm)
        if not signature_matches(expected, request.header(auth.signature_header),
                                 encoding=auth.encoding, prefix=auth.signature_prefix):
            raise InvalidSignatureError("missing or invalid webhook signature")

    def extract(self, payload: Any) -> dict[str, Any]:
        """Evaluate every configured expression against ``payload`` (raw values)."""
        return {key: jmespath.search(expr, payload)
                for key, expr in self.options.mapping.expressions().items()}

    def parse(self, request: WebhookRequest) -> Event:
        payload = request.json()
        if self.options.capture_dir:
            self._capture(request)
        values = self.extract(payload)
        mapping = self.options.mapping
        verdict = self._classify(values, mapping)
        if isinstance(verdict, Ignored):
            return verdict
        dialog_id = as_text(values.get("dialog_id"))
        if dialog_id is None:
            raise BadPayloadError(f"dialog id is missing (mapping.dialog_id = {mapping.dialog_id})",
                                  code="missing_field")
        if verdict == "reopened":
            return DialogReopened(self.name, dialog_id)
        context = {k.removeprefix("context."): as_text(v, limit=1000)
                   for k, v in values.items() if k.startswith("context.")}
        return DialogClosed(
            helpdesk=self.name,
            dialog_id=dialog_id,
            agent=Person(as_text(values.get("agent_id")), as_text(values.get("agent_name")),
                         as_text(values.get("agent_email"))),
            customer=Person(as_text(values.get("customer_id")),
                            as_text(values.get("customer_name")),
                            as_text(values.get("customer_email"))),
            team=as_text(values.get("team")),
            channel=as_text(values.get("channel")),
            language=as_text(values.get("language"), limit=16),
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
        values = reply_values(reply)
        url = render(spec.url, values, quote=True)
        headers = {k: render(v.get_secret_value(), values) for k, v in spec.headers.items()}
        if spec.idempotency_header:
            headers.setdefault(spec.idempotency_header, reply.idempotency_key)
        params = {k: render(v.get_secret_value(), values) for k, v in spec.query.items()}
        body = render(spec.body, values)
        kwargs: dict[str, Any] = {"json": body} if spec.encoding == "json" else {"data": body}
        response = self.http.request(spec.method, url, headers=headers, params=params, **kwargs)
        answer = _json_or_none(response.content)
        if spec.error_path and answer is not None and jmespath.search(spec.error_path, answer):
            raise DeliveryError(f"{self.name}: the API answered 2xx with an error "
                                f"({spec.error_path})", retryable=False,
                                http_status=response.status_code)
        message_id = jmespath.search(spec.message_id, answer) if spec.message_id else None
        return SendResult(external_id=as_text(message_id))

    def explain(self, request: WebhookRequest) -> dict[str, Any]:
        payload = request.json()
        values = self.extract(payload)
        return {
            "expressions": self.options.mapping.expressions(),
            "extracted": values,
            **super().explain(request),
        }

    def _capture(self, request: WebhookRequest) -> None:
        folder = Path(self.options.capture_dir or ".")
        folder.mkdir(parents=True, exist_ok=True)
        stamp = request.received_at.strftime("%Y%m%dT%H%M%S%f")
        (folder / f"{self.name}-{stamp}-{_body_digest(request.body)[:8]}.json").write_bytes(
            request.body)


def reply_values(reply: Reply) -> dict[str, str]:
    """The placeholder values a reply template may use."""
    values = {
        "text": reply.text,
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


def _lower(items: list[str]) -> set[str]:
    return {item.lower() for item in items}


def _body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None
