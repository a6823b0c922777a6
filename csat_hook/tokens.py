"""Signed survey references.

A reference binds helpdesk, dialog and agent as they were when the survey was sent, and can be
checked later without the database: it carries those values itself, plus an HMAC-SHA256 tag
(truncated to 96 bits) under the server's ``token.secret``. Respondents can edit every
pre-filled field of a Google Form; the sync trusts this token, not the fields.

Format: ``<payload>.<tag>``, both base64url without padding, where the payload is
``1|helpdesk|dialog|agent|issued|nonce`` (``|`` and ``%`` escaped in fields, issued in
base-36 Unix seconds). Typical length: 40-60 characters.

Exactly one spelling of a reference verifies: the canonical one :func:`sign` writes. Base64
leaves slack a lenient decoder ignores (the unused low bits of the last character when the
length is 2 or 3 mod 4, ``=`` padding, the ``+/`` alphabet, whitespace), which would give one
survey up to 16 spellings that all verify; :func:`verify` rejects all but one. The survey a
reference identifies is its payload (:func:`survey_key`), whichever secret signed it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Annotated
from typing import Any

from pydantic import AfterValidator
from pydantic import Field
from pydantic import SecretStr

from csat_hook.errors import TokenError
from csat_hook.settings import StrictModel

VERSION = "1"
TAG_BYTES = 12
MAX_TOKEN_LENGTH = 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DOMAIN = b"csat-hook/survey-ref/v1\x00"


def _long_enough(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < 16:
        raise ValueError("must be at least 16 characters (use a long random string)")
    return value


# A retired secret still verifies references: one shorter than any ``secret`` ever was (an
# empty ``${OLD:-}``) verified references anyone can sign. Each error names its index.
LongSecret = Annotated[SecretStr, AfterValidator(_long_enough)]


class TokenConfig(StrictModel):
    secret: LongSecret = SecretStr("dev-insecure-token-secret")
    previous_secrets: list[LongSecret] = Field(default_factory=list)

    def all_secrets(self) -> list[str]:
        """The current secret first, then retired ones still accepted when verifying."""
        return [
            self.secret.get_secret_value(),
            *(s.get_secret_value() for s in self.previous_secrets),
        ]


@dataclass(frozen=True, slots=True)  # a sync verifies 100,000 at a time
class SurveyRef:
    """What a token proves: which helpdesk's dialog, which agent, issued when."""

    helpdesk: str
    dialog_id: str
    agent: str
    issued_at: datetime
    nonce: str = ""


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64decode(text: str) -> bytes:
    """Decode canonical unpadded base64url, or raise ValueError for any other spelling.

    The decoder alone accepts several spellings of the same bytes (see the module docstring),
    so the result is encoded again and must give back the input exactly.
    """
    # binascii directly: base64.urlsafe_b64decode's argument checks cost more than the
    # decoding, and a sync decodes 200,000 of these at a time.
    encoded = text.encode("ascii")  # UnicodeEncodeError (a ValueError) for look-alikes
    data = encoded.translate(_FROM_URLSAFE)
    decoded = binascii.a2b_base64(data + b"=" * (-len(data) % 4), strict_mode=True)
    if binascii.b2a_base64(decoded, newline=False).translate(_TO_URLSAFE).rstrip(b"=") != encoded:
        raise ValueError("not the canonical base64url spelling")
    return decoded


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace("|", "%7C")


def _unescape(value: str) -> str:
    return value.replace("%7C", "|").replace("%25", "%") if "%" in value else value


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def _tag(secret: bytes, payload: bytes) -> bytes:
    return hmac.digest(secret, _DOMAIN + payload, "sha256")[:TAG_BYTES]


_KEYED: dict[str, Any] = {}  # secret → hmac object that has hashed the domain (≤ 16 kept)


def _tag_of(secret: str, payload: bytes) -> bytes:
    """:func:`_tag` of ``secret``'s UTF-8 bytes: the same bytes, from a copy of an HMAC that
    has already taken the key and the domain (the standard library's own state; a sync
    verifies 100,000 tokens at a time, and the key's two blocks are not hashed again)."""
    keyed = _KEYED.get(secret)
    if keyed is None:
        keyed = hmac.new(secret.encode("utf-8"), _DOMAIN, "sha256")
        if len(_KEYED) < 16:
            _KEYED[secret] = keyed
    mac = keyed.copy()  # the kept object is never updated itself
    mac.update(payload)
    tag: bytes = mac.digest()[:TAG_BYTES]
    return tag


def sign(secret: str, ref: SurveyRef) -> str:
    """Return the canonical token for ``ref`` (a fresh nonce when ``ref.nonce`` is empty).

    With a fresh nonce the token ends with a letter or a digit: a reply's link ends with it,
    and autolinkers leave trailing punctuation out of a link (GitHub-flavoured Markdown drops
    a final ``_``), which would cut one reference in 64 (:data:`_LINK_END`).
    """
    issued = _base36(int(ref.issued_at.timestamp()))
    key = secret.encode("utf-8")
    while True:
        # The nonce only keeps two otherwise identical references apart (the tag is what makes
        # a token unforgeable), so the fast PRNG is enough: SystemRandom costs a syscall per
        # token. Drawn again (1 time in 32) while the tag would end with "-" or "_".
        nonce = ref.nonce or _base36(random.randrange(36**4)).rjust(4, "0")
        fields = (VERSION, ref.helpdesk, ref.dialog_id, ref.agent, issued, nonce)
        payload = "|".join(_escape(f) for f in fields).encode("utf-8")
        token = f"{_b64encode(payload)}.{_b64encode(_tag(key, payload))}"
        if ref.nonce or token[-1] not in _LINK_END:
            return token


# Characters a link may lose at its end: base64url's two that are not letters or digits.
_LINK_END = frozenset("-_")


def survey_key(token: str) -> str:
    """The survey ``token`` identifies: its payload, as written (canonical base64url).

    Meaningful for a token :func:`verify` accepted or :func:`sign` wrote, whose spelling is
    the one canonical spelling; two tokens of one survey signed under different secrets share
    it. Answers are stored one per survey key, and surveys and answers meet on it.
    """
    return token.partition(".")[0]


def verify(token: str, secrets_: Sequence[str]) -> SurveyRef:
    """Check ``token`` against the current and previous secrets and return what it binds.

    Only the canonical spelling verifies: no surrounding or inner whitespace, no padding, no
    other alphabet, no stray bits (callers strip what a person pasted around it). Raises
    :class:`TokenError` for anything malformed, forged or signed with an unknown key.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise TokenError("malformed survey reference", code="token_malformed")
    encoded_payload, encoded_tag = token.split(".")
    try:
        payload = _b64decode(encoded_payload)
        tag = _b64decode(encoded_tag)
    except (ValueError, UnicodeEncodeError) as exc:
        raise TokenError("malformed survey reference", code="token_malformed") from exc
    return _signed_by_one(tag, payload, secrets_)


def _signed_by_one(tag: bytes, payload: bytes, secrets_: Sequence[str]) -> SurveyRef:
    """What ``payload`` binds when ``tag`` is its tag under one of ``secrets_`` (tried in
    order); else TokenError ``token_forged``."""
    # A loop, not any() over a generator: a sync checks 100,000 tags at a time, and the
    # generator cost 1 µs of the 7 a stored token's check takes.
    for secret in secrets_:
        if hmac.compare_digest(tag, _tag_of(secret, payload)):
            return _read(payload)
    raise TokenError("survey reference signature does not match", code="token_forged")


def claimed(token: str) -> SurveyRef | None:
    """What ``token`` says it binds, its signature unchecked: the reference a canonically
    spelled token of this version carries (None for anything else, a malformed or empty one).

    For finding an answer that cannot be credited by what its reference names (an erased
    dialog's: ``erasure/store.py``, ``sync/ingest.py``), never for crediting one: anyone can
    write any payload. The spelling checks are :func:`verify`'s, so a reference it calls
    forged is read, and one it calls malformed is not.
    """
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        return None
    encoded_payload, encoded_tag = token.split(".")
    try:
        payload = _b64decode(encoded_payload)
        _b64decode(encoded_tag)
        return _read(payload)
    except (ValueError, TokenError):  # binascii.Error and UnicodeEncodeError are ValueErrors
        return None


def key_set_id(secrets_: Sequence[str]) -> str:
    """An identifier of the set of ``secrets_`` (their order and repeats aside), safe to
    store: what a token checked under them was checked under. Made of an HMAC of a fixed text
    under each secret (reveals nothing of them); two sets share it only if they hold the same
    secrets."""
    ids = sorted(
        {hmac.new(s.encode("utf-8"), b"csat-hook key id", "sha256").hexdigest() for s in secrets_}
    )
    return hmac.new(b"csat-hook key set", "\n".join(ids).encode("ascii"), "sha256").hexdigest()[:32]


def verifies(token: str, secrets_: Sequence[str]) -> bool:
    """Whether :func:`verify` accepts ``token``."""
    try:
        verify(token, secrets_)
    except TokenError:
        return False
    return True


def verify_stored(token: str, stored: str | None, secrets_: Sequence[str]) -> SurveyRef:
    """:func:`verify`, for a token that may be the one the service stored for its survey.

    ``stored`` is the token on the survey row ``token``'s payload names (None when there is
    none). A stored token is the canonical spelling (:func:`sign` wrote it), so when ``token``
    is exactly ``stored`` the canonical re-encoding checks are skipped; the signature is still
    checked against ``secrets_`` (a survey signed under a secret since removed from them is
    forged, as :func:`verify` says). Any other token, however close, goes through
    :func:`verify`. The result, or the error, is the one :func:`verify` gives.
    """
    if token != stored or len(token) > MAX_TOKEN_LENGTH:
        return verify(token, secrets_)
    encoded_payload, _, encoded_tag = token.partition(".")
    try:  # canonical, so the lenient decoder gives the bytes the strict one would
        payload = binascii.a2b_base64(_padded(encoded_payload))
        tag = binascii.a2b_base64(_padded(encoded_tag))
    except ValueError:  # (UnicodeEncodeError too) not written by sign after all
        return verify(token, secrets_)
    return _signed_by_one(tag, payload, secrets_)


def _padded(text: str) -> bytes:
    data = text.encode("ascii").translate(_FROM_URLSAFE)
    return data + b"=" * (-len(data) % 4)


def _read(payload: bytes) -> SurveyRef:
    """The reference a signed payload binds."""
    try:
        text = payload.decode("utf-8")
        fields = text.split("|")
        if "%" in text:  # escaped field values (rare)
            fields = [_unescape(f) for f in fields]
        version, helpdesk, dialog_id, agent, issued, nonce = fields
        # The epoch plus whole seconds: datetime.fromtimestamp(seconds, UTC) exactly, in half
        # the time (both raise ValueError or OverflowError out of range).
        issued_at = _EPOCH + timedelta(0, int(issued, 36))
    except (ValueError, UnicodeDecodeError, OverflowError) as exc:
        # A valid tag over an unreadable payload means a bug or a future format, not a forgery.
        raise TokenError("unreadable survey reference", code="token_malformed") from exc
    if version != VERSION:
        raise TokenError(f"unsupported survey reference version {version}", code="token_version")
    return SurveyRef(helpdesk, dialog_id, agent, issued_at, nonce)
