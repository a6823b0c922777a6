"""What adapters share to check a sender: HMAC digests, constant-time signature and token
comparison, the freshness window of a signed timestamp, the challenge a 401 names, and the
previous secrets a rotation keeps accepting for a while (:class:`PreviousSecret`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator
from pydantic import SecretStr

from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.records import WebhookRequest

# A header's name: an RFC 9110 token.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


# How a sender proves itself, as a 401's challenge names it (WWW-Authenticate schemes):
# an HMAC of the request in a header, a shared token (in a header, or the query or body),
# HTTP Basic credentials (RFC 7617).
SIGNATURE, TOKEN, BASIC = "Signature", "Token", "Basic"

# The widest replay window a signed timestamp may be given: a day. Unbounded (.inf, 1e300),
# every timestamp was fresh and a captured request replayed for ever.
MAX_TOLERANCE_SECONDS = 86400


def header_name(value: str | None) -> str | None:
    """``value`` unless it cannot be a header's name (ValueError): a field validator. A
    sender's header of that name never arrives (every webhook refused), and a request of ours
    carrying it is refused before it is sent (every reply failed)."""
    if value is not None and not HEADER_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a header name (letters, digits and !#$%&'*+-.^_`|~, "
            "no spaces or colon)"
        )
    return value


def nonblank_secret(value: SecretStr | None) -> SecretStr | None:
    """``value`` unless it is empty or only spaces (ValueError): a field validator for what
    proves a sender. An empty token matched an empty ``?token=``, and an HMAC with an empty
    key is one anyone can compute: written as ``${VAR:-}`` with VAR unset, every webhook was
    taken from anyone. None (not configured) is for the model to judge."""
    return _nonblank(value, ": an empty one lets any sender in")


def nonblank_credential(value: SecretStr | None) -> SecretStr | None:
    """``value`` unless it is empty or only spaces (ValueError): a field validator for a
    vendor API credential (a token, a key). Written as ``${VAR:-}`` with VAR unset, the
    configuration loaded and every reply was refused (401) and failed for good, or, blank, was
    refused as a header value before it was sent. None (not configured) is for the model to
    judge."""
    return _nonblank(value, "")


# The most previous secrets one key may hold: a request none of the secrets proves costs one
# check per secret, and any sender can post one. A rotation keeps one, seldom two.
MAX_PREVIOUS_SECRETS = 3


def _nonblank_previous(value: SecretStr) -> SecretStr:
    checked = nonblank_secret(value)
    assert checked is not None
    return checked


# A rotation's previous webhook secrets or tokens (``previous_webhook_secrets``...): each one
# held to the rule of the current one (not empty: an empty one lets any sender in), an error
# naming its index (``previous_webhook_secrets.1: must not be empty…``).
PreviousSecrets = list[Annotated[SecretStr, AfterValidator(_nonblank_previous)]]


@dataclass(frozen=True, slots=True)
class PreviousSecret:
    """Which previous secret proved a webhook (:meth:`Helpdesk.verify
    <csat_hook.helpdesks.base.Helpdesk.verify>`'s answer when the current one did not):
    the option holding it (``previous_webhook_secrets``, ``auth.previous_tokens``) and its
    index there. Never the secret."""

    key: str
    index: int


def previous_match(
    previous: Sequence[SecretStr], key: str, matches: Callable[[SecretStr], bool]
) -> PreviousSecret | None:
    """After the current secret did not prove a request: the first of ``previous`` (the
    option ``key``) that ``matches`` it, else None. Every one is tried whichever matched, so
    how long the check takes says nothing of which one did; ``matches`` compares in constant
    time itself (:func:`signature_matches`, :func:`shared_token_matches`)."""
    found: PreviousSecret | None = None
    for index, secret in enumerate(previous):
        if matches(secret) and found is None:
            found = PreviousSecret(key, index)
    return found


def check_previous(
    current: SecretStr | None, previous: Sequence[SecretStr], *, key: str, current_key: str
) -> None:
    """ValueError when ``previous`` (the option ``key``) is set without ``current`` (the
    option ``current_key``: the secret a rotation replaced them with), or one of them is the
    current one or an earlier one of the list. Each is named by its index, never shown."""
    if not previous:
        return
    if current is None:
        raise ValueError(
            f"{key} is set but {current_key} is not: previous secrets are accepted beside "
            f"the current one, {current_key}; set it (the new secret)"
        )
    seen = [current.get_secret_value().encode("utf-8")]
    for index, secret in enumerate(previous):
        value = secret.get_secret_value().encode("utf-8")
        if hmac.compare_digest(value, seen[0]):
            raise ValueError(
                f"{key}.{index} is {current_key} itself: list only the secrets it replaced "
                f"(after a rotation, the old value; {current_key} holds the new one)"
            )
        for earlier, other in enumerate(seen[1:]):
            if hmac.compare_digest(value, other):
                raise ValueError(f"{key}.{index} is {key}.{earlier} again: give each once")
        seen.append(value)


def _nonblank(value: SecretStr | None, why: str) -> SecretStr | None:
    """``value`` unless it is empty or only spaces: ValueError saying ``why`` that matters."""
    if value is not None and not value.get_secret_value().strip():
        raise ValueError(f"must not be empty{why} (is its environment variable set?)")
    return value


def hmac_digest(secret: SecretStr | str, message: bytes, algorithm: str = "sha256") -> bytes:
    key = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return hmac.new(key.encode("utf-8"), message, getattr(hashlib, algorithm)).digest()


def signature_matches(
    expected: bytes, given: str | None, *, encoding: str, prefix: str = ""
) -> bool:
    """Constant-time comparison of a received signature header with the expected digest,
    written in ``encoding``: ``hex`` (either case), ``base64`` (standard, padded) or
    ``base64url`` (URL-safe, unpadded); only that canonical spelling matches."""
    if not given:
        return False
    given = given.strip()
    if prefix:
        if not given.lower().startswith(prefix.lower()):
            return False
        given = given[len(prefix) :]
    if encoding == "hex":
        expected_text = expected.hex()
        given = given.lower()
    elif encoding == "base64url":  # RFC 7515's: '-' and '_', no '=' padding
        expected_text = base64.urlsafe_b64encode(expected).decode("ascii").rstrip("=")
    else:  # standard base64, padded: the one spelling of each digest
        expected_text = base64.b64encode(expected).decode("ascii")
    return hmac.compare_digest(expected_text.encode("ascii"), given.encode("utf-8", "replace"))


def require_fresh(timestamp: datetime | None, now: datetime, tolerance_seconds: float) -> None:
    """Reject a signed timestamp that is missing or outside the tolerance window."""
    if timestamp is None:
        raise InvalidSignatureError("missing or unreadable signature timestamp")
    if abs((now - timestamp).total_seconds()) > tolerance_seconds:
        raise InvalidSignatureError(
            f"signature timestamp outside the {tolerance_seconds:g} s tolerance window "
            "(replayed or clock skew)"
        )


def header_bytes(value: str) -> bytes:
    """A header's value as the bytes the sender wrote, to compare with a secret's UTF-8.

    WSGI servers hand header values over decoded as ISO-8859-1 (PEP 3333): encoding that text
    as UTF-8 again made a secret with any letter outside ASCII never match. Text outside
    ISO-8859-1 came from no server (a test client passes text as it is): its UTF-8.
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace")


def shared_token_matches(
    request: WebhookRequest, token: SecretStr, *, header: str | None, query: str | None
) -> bool:
    """True when the shared token arrives in the header or the query parameter (a ``+``
    written there unescaped counts as itself, not only as a space). In an
    ``Authorization`` header it is the credentials after the scheme (``Bearer <token>``,
    however many spaces follow the scheme) or the whole value: configured as the header is
    written (``Bearer <token>``, as a reply's headers are), it was compared with the part after
    the scheme only, and every webhook refused."""
    expected = token.get_secret_value().encode("utf-8")
    candidates: list[bytes | None] = []
    if header:
        value = request.header(header)
        if value and header.lower() == "authorization" and " " in value.strip():
            # "Bearer <token>" / "Token <token>"
            candidates.append(header_bytes(value.strip().split(" ", 1)[1].lstrip(" ")))
        candidates.append(header_bytes(value.strip()) if value is not None else None)
    if query:
        given = request.query.get(query)  # percent-escapes already read as UTF-8
        candidates.append(given.encode("utf-8", "replace") if given is not None else None)
        if given is not None and " " in given:
            # The query was read as a form, '+' as a space: a token with '+' (base64's)
            # pasted into the webhook URL unescaped arrives so, and was refused for ever.
            candidates.append(given.replace(" ", "+").encode("utf-8", "replace"))
    return any(value is not None and hmac.compare_digest(expected, value) for value in candidates)


def challenge(realm: str, accepted: Sequence[tuple[str, str | None]]) -> str:
    """The ``WWW-Authenticate`` value of a webhook's 401 (RFC 9110 11.6.1; a 401 MUST carry
    one): a challenge per way the helpdesk ``realm`` (its configured name, the URL's
    segment) accepts, ``(scheme, header)`` with ``scheme`` one of :data:`SIGNATURE`,
    :data:`TOKEN`, :data:`BASIC` and ``header`` the header it is read from (None: none to
    name), e.g. ``Signature realm="zendesk", header="X-Zendesk-Webhook-Signature"``.

    Names only: no secret, nor the algorithm or prefix a signature takes (what a guesser
    would want to know first); whoever configured the sender knows them."""
    quoted = _quoted(realm)
    challenges = []
    for scheme, header in accepted:
        params = [f"realm={quoted}"]
        if header is not None:
            params.append(f"header={_quoted(header)}")
        if scheme == BASIC:
            params.append('charset="UTF-8"')  # RFC 7617 2.1: the only value allowed
        challenges.append(f"{scheme} {', '.join(params)}")
    return ", ".join(challenges)


def _quoted(text: str) -> str:
    """``text`` as an RFC 9110 quoted-string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
