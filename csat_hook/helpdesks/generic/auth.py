"""How a ``generic`` sender proves itself: a shared token or an HMAC signature.

``auth.mode`` ``token``: the shared secret in a header, the query string or a field of the
JSON body, compared in constant time. ``hmac``: a signature over a template of the request
(``auth.signed_payload``: the raw body, the timestamp header as received, the method, the
path), with a replay check when a timestamp header is named (the template must then sign
it). ``none``: nothing checked. A rotation keeps the tokens (secrets) the current one
replaced in ``previous_tokens`` (``previous_secrets``), accepted beside it, each where and as
the current one is.
"""

from __future__ import annotations

import hmac
import re
import string
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import SecretStr
from pydantic import ValidationInfo
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.clock import Clock
from csat_hook.errors import BadPayloadError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.generic.templates import template_fields
from csat_hook.helpdesks.payload import parse_timestamp
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.signing import MAX_PREVIOUS_SECRETS
from csat_hook.helpdesks.signing import MAX_TOLERANCE_SECONDS
from csat_hook.helpdesks.signing import SIGNATURE
from csat_hook.helpdesks.signing import TOKEN
from csat_hook.helpdesks.signing import PreviousSecret
from csat_hook.helpdesks.signing import PreviousSecrets
from csat_hook.helpdesks.signing import header_name
from csat_hook.helpdesks.signing import hmac_digest
from csat_hook.helpdesks.signing import nonblank_secret
from csat_hook.helpdesks.signing import previous_match
from csat_hook.helpdesks.signing import require_fresh
from csat_hook.helpdesks.signing import shared_token_matches
from csat_hook.helpdesks.signing import signature_matches
from csat_hook.settings import StrictModel

# What a signed-payload template may hold besides literal text.
SIGNED_PAYLOAD_FIELDS = ("timestamp", "body", "method", "path")
# A body field holding a token: a key, or keys joined by dots for a nested one.
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*")
_UNIX = re.compile(r"[0-9]{1,16}(?:\.[0-9]{1,9})?")


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
    # A rotation: the tokens (mode token) or secrets (mode hmac) the current one replaced,
    # still accepted until the sender uses the new one.
    previous_tokens: PreviousSecrets = Field(default_factory=list, max_length=MAX_PREVIOUS_SECRETS)
    previous_secrets: PreviousSecrets = Field(default_factory=list, max_length=MAX_PREVIOUS_SECRETS)
    signature_header: str = "X-Signature"
    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    # hex (either case), base64 (standard alphabet, padded), base64url (RFC 7515: "-" and "_",
    # no padding): each digest has one spelling in each.
    encoding: Literal["hex", "base64", "base64url"] = "hex"
    signature_prefix: str = ""
    timestamp_header: str | None = None
    timestamp_format: Literal["auto", "s", "ms", "iso"] = "auto"
    # Validated even when left out: the default signs no timestamp (see _template).
    signed_payload: str = Field(default="{body}", validate_default=True)
    # At most a day: .inf (or 1e300) made every timestamp fresh, the replay check none.
    tolerance_seconds: float = Field(default=300, gt=0, le=MAX_TOLERANCE_SECONDS)

    _secrets = field_validator("token", "secret")(nonblank_secret)
    _headers = field_validator("token_header", "signature_header")(header_name)

    @field_validator("token_field")
    @classmethod
    def _field_path(cls, value: str | None) -> str | None:
        if value is not None and not _FIELD_PATH.fullmatch(value):
            raise ValueError(
                "must name a body field: a key, or keys joined by dots "
                "(e.g. secret_key, auth.token)"
            )
        return value

    @field_validator("timestamp_header")
    @classmethod
    def _hmac_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        mode = info.data.get("mode")
        if value is not None and mode is not None and mode != "hmac":
            # Only an HMAC check reads it: in token mode it was ignored, and no replay check
            # was made although the setting promised one.
            raise ValueError(
                f"only read with mode: hmac (a replay check the signature covers); mode is "
                f"{mode}, which checks no timestamp: remove timestamp_header, or use mode: hmac"
            )
        return value

    @field_validator("signed_payload")
    @classmethod
    def _template(cls, value: str, info: ValidationInfo) -> str:
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
        hmac_mode = info.data.get("mode") == "hmac"
        if hmac_mode and info.data.get("timestamp_header") and "timestamp" not in names:
            # Its freshness alone proves nothing: a captured request replays for ever under a
            # fresh timestamp header unless the signature covers the timestamp too.
            raise ValueError(
                f"must contain {{timestamp}} when timestamp_header is set (now {value!r}): "
                "the timestamp header is only a replay check when the signature covers it, "
                'e.g. "{timestamp}.{body}" (or drop timestamp_header if the sender signs '
                "only the body)"
            )
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
        # Outside its mode a previous secret is never checked: said, as timestamp_header is.
        for key, mode in (("previous_tokens", "token"), ("previous_secrets", "hmac")):
            if getattr(self, key) and self.mode != mode:
                raise ValueError(
                    f"{key} is only read with mode: {mode}; mode is {self.mode}: remove it"
                )
        if "timestamp" in template_fields(self.signed_payload) and not self.timestamp_header:
            raise ValueError("timestamp_header is required when signed_payload has {timestamp}")
        return self


def verify(auth: AuthOptions, request: WebhookRequest, clock: Clock) -> PreviousSecret | None:
    """Raise InvalidSignatureError unless ``request`` carries what ``auth`` asks for (and,
    with a timestamp header, was signed within ``tolerance_seconds`` of ``clock()``). None
    when the current token or secret proved it (or ``mode: none``), else the previous one
    that did (``auth.previous_tokens``, ``auth.previous_secrets``)."""
    if auth.mode == "none":
        return None
    if auth.mode == "token":
        assert auth.token is not None
        # The current token as before rotations existed (inline: no call more per webhook).
        if shared_token_matches(
            request, auth.token, header=auth.token_header, query=auth.token_query
        ) or (auth.token_field and _field_token_matches(request, auth.token, auth.token_field)):
            return None
        previous = previous_match(
            auth.previous_tokens,
            "auth.previous_tokens",
            lambda old: _token_matches(auth, request, old),
        )
        if previous is None:
            raise InvalidSignatureError("missing or wrong webhook token")
        return previous
    assert auth.secret is not None
    timestamp = request.header(auth.timestamp_header) if auth.timestamp_header else None
    if auth.timestamp_header:
        require_fresh(
            read_timestamp(timestamp, auth.timestamp_format),
            clock(),
            auth.tolerance_seconds,
        )
    message = signed_message(auth.signed_payload, request, timestamp=timestamp or "")
    signature = request.header(auth.signature_header)
    expected = hmac_digest(auth.secret, message, auth.algorithm)
    if signature_matches(expected, signature, encoding=auth.encoding, prefix=auth.signature_prefix):
        return None
    previous = previous_match(
        auth.previous_secrets,
        "auth.previous_secrets",
        lambda old: _signed_with(auth, old, message, signature),
    )
    if previous is None:
        raise InvalidSignatureError("missing or invalid webhook signature")
    return previous


def _token_matches(auth: AuthOptions, request: WebhookRequest, token: SecretStr) -> bool:
    """Whether ``token`` arrives where ``auth`` says a token may (header, query, body field)."""
    return shared_token_matches(
        request, token, header=auth.token_header, query=auth.token_query
    ) or bool(auth.token_field and _field_token_matches(request, token, auth.token_field))


def _signed_with(
    auth: AuthOptions, secret: SecretStr, message: bytes, signature: str | None
) -> bool:
    """Whether ``signature`` is ``message``'s under ``secret`` as ``auth`` writes it."""
    return signature_matches(
        hmac_digest(secret, message, auth.algorithm),
        signature,
        encoding=auth.encoding,
        prefix=auth.signature_prefix,
    )


def credentials(auth: AuthOptions) -> list[tuple[str, str | None]]:
    """How a sender proves itself under ``auth``, for a 401's challenge (``Token`` naming its
    header when it may come in one, else none; ``Signature`` naming its header)."""
    if auth.mode == "hmac":
        return [(SIGNATURE, auth.signature_header)]
    return [(TOKEN, auth.token_header)]


def proof_headers(auth: AuthOptions) -> list[str]:
    """Every header :func:`verify` reads under ``auth``: the token's, or the signature's and
    the timestamp's (none in mode ``none``)."""
    if auth.mode == "none":
        return []
    if auth.mode == "hmac":
        return [auth.signature_header, *filter(None, [auth.timestamp_header])]
    return [auth.token_header] if auth.token_header else []


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
