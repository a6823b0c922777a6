"""Configuration of the ``generic`` adapter: authentication, the JSON-path mapping, the
reply request template and the optional look-up request (validated when the configuration is
loaded)."""

from __future__ import annotations

import re
import string
import urllib.parse
from collections.abc import Mapping
from typing import Any
from typing import Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.settings import StrictModel

REPLY_FIELDS = (
    "text",
    "html",
    "markdown",
    "link",
    "dialog_id",
    "agent_id",
    "agent_name",
    "agent_email",
    "customer_id",
    "customer_email",
    "idempotency_key",
)

# The placeholders of an internal note request (an alert): the note as plain text and as HTML
# (escaped, paragraphs), the alert's reference it carries, and the dialog.
NOTE_FIELDS = ("text", "html", "dialog_id", "marker", "idempotency_key")


# What a signed-payload template may hold besides literal text.
SIGNED_PAYLOAD_FIELDS = ("timestamp", "body", "method", "path")
# A body field holding a token: a key, or keys joined by dots for a nested one.
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*")


class AuthOptions(StrictModel):
    """How the sender proves itself: ``token`` (a shared secret in a header, the query string
    or a field of the JSON body), ``hmac`` (a signature over the request) or ``none``.

    ``signed_payload`` is the text the sender signs: a template of ``{body}`` (the raw body,
    required), ``{timestamp}`` (the ``timestamp_header`` value as received), ``{method}``,
    ``{path}`` (the URL path csat-hook received, without the query string) and literal text
    (``{{`` and ``}}`` for braces): ``{timestamp}.{body}``, Crisp's ``[{timestamp};{body}]``.
    ``timestamp_format`` says how the timestamp reads for the replay check: ``s`` or ``ms``
    (Unix seconds or milliseconds), ``iso`` (ISO 8601) or ``auto`` (any of them).
    """

    mode: Literal["token", "hmac", "none"] = "token"
    token: SecretStr | None = None
    token_header: str | None = "X-Webhook-Token"  # noqa: S105 (a header name)
    token_query: str | None = "token"  # noqa: S105 (a parameter name)
    # A field of the JSON body carrying the token, e.g. LiveChat's "secret_key".
    token_field: str | None = None
    secret: SecretStr | None = None
    signature_header: str = "X-Signature"
    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    signature_prefix: str = ""
    timestamp_header: str | None = None
    timestamp_format: Literal["auto", "s", "ms", "iso"] = "auto"
    signed_payload: str = "{body}"
    tolerance_seconds: float = Field(default=300, gt=0)

    @field_validator("token_field")
    @classmethod
    def _field_path(cls, value: str | None) -> str | None:
        if value is not None and not _FIELD_PATH.fullmatch(value):
            raise ValueError(
                "must name a body field: a key, or keys joined by dots "
                "(e.g. secret_key, auth.token)"
            )
        return value

    @field_validator("signed_payload")
    @classmethod
    def _template(cls, value: str) -> str:
        names = template_fields(value)
        unknown = sorted(set(names) - set(SIGNED_PAYLOAD_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{unknown[0]}}}; known: "
                + ", ".join(f"{{{name}}}" for name in SIGNED_PAYLOAD_FIELDS)
                + " (write {{ and }} for literal braces)"
            )
        if "body" not in names:
            raise ValueError("must contain {body}: the signature has to cover the body")
        return value

    @model_validator(mode="after")
    def _complete(self) -> AuthOptions:
        if self.mode == "token":
            if self.token is None:
                raise ValueError("token is required when mode is token")
            if not (self.token_header or self.token_query or self.token_field):
                raise ValueError("set token_header, token_query and/or token_field")
        if self.mode == "hmac" and self.secret is None:
            raise ValueError("secret is required when mode is hmac")
        if "timestamp" in template_fields(self.signed_payload) and not self.timestamp_header:
            raise ValueError("timestamp_header is required when signed_payload has {timestamp}")
        return self


def template_fields(template: str) -> list[str]:
    """The placeholder names of a ``str.format`` template; ValueError for a malformed one
    (an unmatched brace), a format spec or a conversion (``{body:x}``, ``{body!r}``)."""
    names = []
    for _, name, spec, conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if spec or conversion:
            raise ValueError(f"{{{name}}}: no format spec or conversion is allowed")
        names.append(name)
    return names


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
                raise ValueError(
                    f"{key}: {expression!r} is not a valid JMESPath: {str(exc).splitlines()[0]}"
                ) from None
        clash = set(self.context) & (set(REPLY_FIELDS) | set(NOTE_FIELDS))
        if clash:
            raise ValueError(f"context: names {sorted(clash)} are reserved")
        return self

    def expressions(self) -> dict[str, str]:
        """Every configured expression by its key (context values as ``context.<name>``)."""
        found = {
            key: getattr(self, key)
            for key in (
                "event",
                "status",
                "dialog_id",
                "agent_id",
                "agent_name",
                "agent_email",
                "customer_id",
                "customer_name",
                "customer_email",
                "team",
                "channel",
                "language",
                "occurrence",
            )
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
    # JMESPath into an error answer for the vendor's reason, e.g. "errors[].message" or
    # "error.code"; strings, numbers, or objects with code/field/message. Cleaned of customer
    # text (csat_hook.helpdesks.reasons) before it reaches last_error.
    error_reason: str | None = None

    @field_validator("message_id", "error_path", "error_reason")
    @classmethod
    def _jmespath(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                jmespath.compile(value)
            except JMESPathError as exc:
                raise ValueError(
                    f"{value!r} is not a valid JMESPath: {str(exc).splitlines()[0]}"
                ) from None
        return value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class LookupRequestOptions(StrictModel):
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

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _compile(self) -> LookupRequestOptions:
        if self.body is not None and self.method == "GET":
            raise ValueError("body is only sent with method POST")
        for key in ("messages", "text", "id", "ours", "created_at"):
            expression = getattr(self, key)
            if expression is None:
                continue
            try:
                jmespath.compile(expression)
            except JMESPathError as exc:
                raise ValueError(
                    f"{key}: {expression!r} is not a valid JMESPath: {str(exc).splitlines()[0]}"
                ) from None
        return self


class AgentRequestOptions(StrictModel):
    """One request of the agent look-up, and what it reads from the answer.

    ``url``, ``headers``, ``query`` and ``body`` are templates like the reply request's
    (``headers`` and ``query`` values are secrets). ``agent`` is a JMESPath to the agent in
    the answer: an object, or a list whose first object is taken (``users[?type=='agent']``);
    ``id``, ``name`` and ``email`` are JMESPaths evaluated on that object (null: not read).
    """

    method: Literal["GET", "POST"] = "GET"
    url: str
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    query: dict[str, SecretStr] = Field(default_factory=dict)
    body: Any = None
    agent: str = "@"
    id: str | None = "id"
    name: str | None = "name"
    email: str | None = "email"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _compile(self) -> AgentRequestOptions:
        if self.body is not None and self.method == "GET":
            raise ValueError("body is only sent with method POST")
        for key in ("agent", "id", "name", "email"):
            expression = getattr(self, key)
            if expression is None:
                continue
            try:
                jmespath.compile(expression)
            except JMESPathError as exc:
                raise ValueError(
                    f"{key}: {expression!r} is not a valid JMESPath: {str(exc).splitlines()[0]}"
                ) from None
        return self


class AgentLookupOptions(StrictModel):
    """Finding the agent's name and e-mail through the helpdesk's API when a close does not
    carry them (looked up when the reply is sent; a failure is retried, and the last attempt
    sends with what is known).

    ``by_dialog`` asks who handled the dialog (placeholders ``{dialog_id}`` and the context
    values), for a close that names no agent (Crisp, LiveChat). ``by_id`` reads an agent's
    profile and must use ``{agent_id}``, for a close (or a ``by_dialog`` answer) that names the
    agent by id only. A static ``agents:`` entry wins over ``by_id``, whose answers (a miss
    too) are remembered for ``agent_cache_seconds``.
    """

    by_dialog: AgentRequestOptions | None = None
    by_id: AgentRequestOptions | None = None

    @model_validator(mode="after")
    def _useful(self) -> AgentLookupOptions:
        if self.by_dialog is None and self.by_id is None:
            raise ValueError("set by_dialog and/or by_id")
        if self.by_dialog is not None and not (self.by_dialog.id or self.by_dialog.name):
            raise ValueError("by_dialog: read the agent's id and/or name")
        if self.by_id is not None and not (self.by_id.name or self.by_id.email):
            raise ValueError("by_id: read the agent's name and/or email")
        return self


class GenericOptions(HelpdeskOptions):
    kind: str = "generic"
    auth: AuthOptions
    mapping: MappingOptions = Field(default_factory=MappingOptions)
    reply: ReplyRequestOptions | None = None
    # Without it, a reply whose outcome is unknown (timeout, dropped connection) is sent again.
    lookup: LookupRequestOptions | None = None
    # Without it, a close that names its agent by id only goes out with the id (or `agents:`).
    agent_lookup: AgentLookupOptions | None = None
    # The request that posts an internal note (an alert, for the team only) into the dialog;
    # without it, alert rules cannot note this helpdesk's dialogs. Placeholders: NOTE_FIELDS
    # and the mapping's context names.
    note: ReplyRequestOptions | None = None
    # Lists a dialog's notes, to find one whose outcome was unknown (as ``lookup`` for replies);
    # ``ours`` should select internal notes. Without it, such a note is posted again.
    note_lookup: LookupRequestOptions | None = None
    # When set, every verified payload is saved here for `inspect-payload` (holds customer data:
    # files are owner-only, and pruned as new ones arrive: older than capture_retention_days,
    # then the oldest beyond capture_max_files or capture_max_bytes).
    capture_dir: str | None = None
    capture_retention_days: float = Field(default=7, gt=0, le=3650)
    capture_max_files: int = Field(default=1000, ge=1, le=1_000_000)
    capture_max_bytes: int = Field(default=100 * 1_048_576, ge=1024)

    @model_validator(mode="after")
    def _reply_needed(self) -> GenericOptions:
        if self.kind == "generic" and self.reply is None:
            raise ValueError("reply is required: describe the request that posts the reply")
        allowed = set(REPLY_FIELDS) | set(self.mapping.context)
        if self.reply is not None:
            _check_placeholders("reply", self.reply, allowed)
        if self.lookup is not None:
            _check_placeholders("lookup", self.lookup, allowed)
        if self.agent_lookup is not None:
            context = set(self.mapping.context)
            if self.agent_lookup.by_dialog is not None:
                _check_placeholders(
                    "agent_lookup.by_dialog", self.agent_lookup.by_dialog, {"dialog_id"} | context
                )
            if self.agent_lookup.by_id is not None:
                used = _check_placeholders(
                    "agent_lookup.by_id", self.agent_lookup.by_id, {"agent_id"} | context
                )
                if "agent_id" not in used:
                    raise ValueError("agent_lookup.by_id: the request must use {agent_id}")
        noted = set(NOTE_FIELDS) | set(self.mapping.context)
        if self.note is not None:
            _check_placeholders("note", self.note, noted)
        if self.note_lookup is not None:
            if self.note is None:
                raise ValueError("note_lookup needs note (the request that posts the note)")
            _check_placeholders("note_lookup", self.note_lookup, noted)
        return self


def _check_placeholders(
    key: str,
    request: ReplyRequestOptions | LookupRequestOptions | AgentRequestOptions,
    allowed: set[str],
) -> set[str]:
    """Refuse a placeholder outside ``allowed``; return the ones used."""
    texts = [
        request.url,
        *[v.get_secret_value() for v in request.headers.values()],
        *[v.get_secret_value() for v in request.query.values()],
        *_strings(request.body),
    ]
    used: set[str] = set()
    for text in texts:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(text)]
        except ValueError as exc:  # an unmatched brace
            raise ValueError(f"{key}: {exc}") from None
        for name in names:
            if name is not None and name not in allowed:
                raise ValueError(
                    f"{key}: unknown placeholder {{{name}}}; known: {', '.join(sorted(allowed))}"
                )
        used.update(name for name in names if name is not None)
    return used


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
        source = {k: urllib.parse.quote(v, safe="") for k, v in values.items()} if quote else values
        return string.Formatter().vformat(template, (), dict(source))
    if isinstance(template, dict):
        return {k: render(v, values, quote=quote) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values, quote=quote) for v in template]
    return template
