"""Configuration of each destination kind (``alerts.destinations.<name>``).

Secrets (the Slack webhook URL, the bot token, the SMTP password, the webhook signing secret,
extra headers) are :class:`~pydantic.SecretStr`: masked by ``check-config``, never logged.
Give them as ``${VARIABLE}`` references so they come from the environment.

URLs must be ``https://`` except on a loopback host (a local fake, a local Bot API server),
and never a link-local address (cloud metadata endpoints).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import socket
import ssl
import urllib.parse
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.settings import StrictModel

SLACK_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
TELEGRAM_BASE_URL = "https://api.telegram.org"
# https://core.telegram.org/bots/api#sendmessage: "Unique identifier for the target chat or
# username of the target channel (in the format @channelusername)".
CHAT_ID = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31}")
BOT_TOKEN = re.compile(r"\d{1,20}:[A-Za-z0-9_-]{20,100}")
# What a header cannot carry as it is: control characters (a NUL, a terminal escape), and
# "=?", which starts an RFC 2047 encoded word: the email package decodes one in a value it is
# given (smtp.py defuses both in the Subject; the configuration refuses them in a sender).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
ENCODED_WORD_START = "=?"
# An address we can put in a header as it is: ASCII, one @, no spaces or brackets.
EMAIL_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}")
# An SMTP exchange's default deadline in timeouts: a slow connection, a slow final reply (a
# server scanning the message) and every other step.
DEADLINE_TIMEOUTS = 3
IMPLICIT_TLS_PORT = 465  # security: tls, when no port is given (587 is STARTTLS's)
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,64}")
HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")
# Headers the webhook destination (or the HTTP connection) sets itself: a Transfer-Encoding
# beside the body's Content-Length would frame the request two ways.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "host",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)


def is_loopback(host: str) -> bool:
    return host.lower().strip("[]") in LOOPBACK_HOSTS


def check_url(value: str, *, allow_http: bool = False) -> urllib.parse.SplitResult:
    """An absolute http(s) URL without credentials: https unless the host is loopback (or
    ``allow_http``), never a link-local address. ValueError says what is wrong."""
    parts = urllib.parse.urlsplit(value.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError("must be an absolute https:// URL")
    if parts.scheme == "http" and not (allow_http or is_loopback(host)):
        raise ValueError("must be https:// (http only for a loopback host, or allow_http: true)")
    if parts.username or parts.password:
        raise ValueError("must not hold credentials (user:password@)")
    try:
        parts.port  # noqa: B018  (reading it checks it: 99999 passed, and every send failed)
    except ValueError:
        raise ValueError("the port must be a number up to 65535") from None
    address = ip_of(host)
    if address is not None and address.is_link_local:
        raise ValueError("must not point at a link-local address (cloud metadata)")
    return parts


def ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a URL's host spells, as a connection would reach it; None for a name.

    The resolver reads IPv4 as ``inet_aton`` does (``2852039166``, ``0xa9.0xfe.0xa9.0xfe``,
    ``0251.0376.0251.0376`` and ``169.254.43518`` are all 169.254.169.254), and an
    IPv4-mapped IPv6 address (``::ffff:169.254.169.254``) reaches its IPv4 address.
    """
    text = host.strip("[]").split("%", 1)[0]
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(text)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class DestinationOptions(StrictModel):
    """What every destination accepts."""

    kind: str
    # The customer's comment is personal data: false sends the alert without it.
    include_comment: bool = True


class SlackOptions(DestinationOptions):
    """An incoming webhook: https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks

    ``button`` adds an "Open ticket" button; Slack treats every button as interactive, so
    without an Interactivity Request URL configured in the Slack app it shows a warning after
    the click: the link in the text is the default. ``on_unknown_outcome``: what to do when
    Slack may have posted the message but did not say so (a timeout, a proxy's 500 or 502, a
    worker killed mid-request): ``skip`` (record it as sent, unconfirmed; a lost message is
    unlikely, a second one likely) or ``resend`` (may post it twice).
    """

    kind: Literal["slack"]
    webhook_url: SecretStr
    button: bool = False
    on_unknown_outcome: Literal["skip", "resend"] = "skip"

    @field_validator("webhook_url")
    @classmethod
    def _hook(cls, value: SecretStr) -> SecretStr:
        # Messages name no part of the URL: its path is the secret.
        try:
            parts = check_url(value.get_secret_value())
        except ValueError as exc:
            raise ValueError(f"the webhook URL {exc}") from None
        host = (parts.hostname or "").lower()
        if host not in SLACK_HOSTS and not is_loopback(host):
            raise ValueError(
                "must be a Slack incoming webhook URL (https://hooks.slack.com/services/...)"
            )
        if not re.fullmatch(r"/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+/?", parts.path):
            raise ValueError(
                "must be an incoming webhook URL (/services/T…/B…/…); Workflow Builder "
                "/triggers/ URLs take another payload"
            )
        return value


class TelegramOptions(DestinationOptions):
    """A bot's ``sendMessage``: https://core.telegram.org/bots/api#sendmessage

    ``chat_id``: a group's or channel's id (negative; supergroups and channels start with
    -100) or ``@channelusername``. ``base_url`` is for a local Bot API server.
    ``on_unknown_outcome`` as for Slack.
    """

    kind: Literal["telegram"]
    bot_token: SecretStr
    chat_id: str
    base_url: str = TELEGRAM_BASE_URL
    message_thread_id: int | None = Field(default=None, ge=1)
    disable_notification: bool = False
    on_unknown_outcome: Literal["skip", "resend"] = "skip"

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat(cls, value: Any) -> Any:
        text = str(value).strip() if isinstance(value, int | str) else value
        if not isinstance(text, str) or not CHAT_ID.fullmatch(text):
            raise ValueError("must be a chat id (-1001234567890) or @channelusername")
        return text

    @field_validator("bot_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not BOT_TOKEN.fullmatch(value.get_secret_value().strip()):
            raise ValueError("must be a bot token as @BotFather gives it (123456:ABC-...)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        # As checked: without the line break a value from a file ends with (kept, every
        # request went to ".../\n/bot…", a 404 read as a refused bot token).
        check_url(value)
        return value.strip().rstrip("/")


class EmailOptions(DestinationOptions):
    """SMTP submission: STARTTLS on 587 (default) or implicit TLS on 465 (``security: tls``;
    ``port`` defaults to the security's), never in clear; the server's certificate is
    verified (``ca_file`` adds a private CA). ``to`` and ``sender`` are plain ASCII addresses,
    ``username`` and ``password`` ASCII (smtplib sends no other). The Message-ID is
    ``<alert-ref.destination@message_id_domain>`` (default: the sender's domain), the same on
    every attempt. ``timeout_seconds`` bounds each wait for the server, ``deadline_seconds``
    the whole exchange from the connection on (default: three timeouts), so a server that
    answers a byte at a time cannot hold a delivery longer."""

    kind: Literal["email"]
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    sender_name: str = "csat-hook"
    to: list[str] = Field(min_length=1, max_length=50)
    ca_file: str | None = None
    timeout_seconds: float = Field(default=30, gt=0, le=300)
    deadline_seconds: float | None = Field(default=None, gt=0, le=900)
    message_id_domain: str | None = None
    on_unknown_outcome: Literal["resend", "skip"] = "resend"

    @model_validator(mode="before")
    @classmethod
    def _port(cls, data: Any) -> Any:
        # Implicit TLS listens on 465 (RFC 8314): on 587 the server greets in clear and
        # every handshake failed. A port given is kept.
        if isinstance(data, dict) and data.get("port") is None and data.get("security") == "tls":
            return {**data, "port": IMPLICIT_TLS_PORT}
        return data

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return _address(value)

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        return [_address(v) for v in value]

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        # Read here, as each send will: a missing or unreadable file was otherwise found by
        # every alert e-mail, each retried as a passing failure naming no key.
        if value is None:
            return None
        try:
            ssl.create_default_context().load_verify_locations(cafile=value)
        except ssl.SSLError:  # (an OSError) read, but no PEM certificate in it
            raise ValueError(f"{value} holds no PEM certificate") from None
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror or type(exc).__name__}") from None
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", value.strip()):
            raise ValueError("must be a host name or address")
        return value.strip()

    @field_validator("sender_name")
    @classmethod
    def _name(cls, value: str) -> str:
        if any(c in value for c in "\r\n"):
            raise ValueError("must be one line")
        if CONTROL.search(value) or ENCODED_WORD_START in value:
            # The email package decodes an encoded word in a display name as it writes the
            # From header: "=?utf-8?b?DQpCY2M6...?=" was a line break, a Bcc and a body of
            # the configuration's choosing (the Subject defuses it: smtp.py).
            raise ValueError(
                "must be text without control characters or '=?' (which starts an RFC 2047 "
                "encoded word): write the name as it should show"
            )
        return value.strip()[:100]

    @field_validator("message_id_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", value):
            raise ValueError("must be a domain name")
        return value

    @model_validator(mode="after")
    def _login(self) -> EmailOptions:
        if (self.username is None) != (self.password is None):
            raise ValueError("set both username and password, or neither")
        # smtplib sends AUTH (PLAIN, LOGIN, CRAM-MD5) encoded as ASCII: any other character
        # failed every e-mail (a UnicodeEncodeError naming it). Neither is quoted here.
        if self.username is not None and not self.username.isascii():
            raise ValueError("username: only ASCII characters can be sent to log in")
        if self.password is not None and not self.password.get_secret_value().isascii():
            raise ValueError("password: only ASCII characters can be sent to log in")
        return self

    @model_validator(mode="after")
    def _deadline(self) -> EmailOptions:
        if self.deadline_seconds is not None and self.deadline_seconds < self.timeout_seconds:
            raise ValueError(
                f"deadline_seconds ({self.deadline_seconds:g}) must be at least timeout_seconds"
                f" ({self.timeout_seconds:g}): the exchange may wait that long for one answer"
            )
        return self

    @property
    def domain(self) -> str:
        return self.message_id_domain or self.sender.rsplit("@", 1)[1]

    @property
    def deadline(self) -> float:
        """``deadline_seconds``, by default :data:`DEADLINE_TIMEOUTS` × ``timeout_seconds``."""
        return self.deadline_seconds or DEADLINE_TIMEOUTS * self.timeout_seconds


def _address(value: str) -> str:
    text = value.strip()
    # "=?" starts an RFC 2047 encoded word, which the email package decodes in a header (a
    # line break: every e-mail refused to be written, or a Bcc of the word's choosing).
    if not EMAIL_ADDRESS.fullmatch(text) or ENCODED_WORD_START in text:
        raise ValueError(f"{text!r} is not a plain ASCII e-mail address (name@example.org)")
    return text


class WebhookOptions(DestinationOptions):
    """A signed JSON POST (Standard Webhooks v1: ``webhook-id``, ``webhook-timestamp``,
    ``webhook-signature: v1,<base64 HMAC-SHA256>``; https://www.standardwebhooks.com).

    ``secret`` is ``whsec_`` + base64 of 24 to 64 random bytes; ``previous_secret`` signs too
    while receivers move to a new one. ``webhook-id`` is the same on every attempt: receivers
    drop a copy they already have. ``headers`` are extra headers (values are secrets).
    """

    kind: Literal["webhook"]
    url: str
    secret: SecretStr
    previous_secret: SecretStr | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    allow_http: bool = False

    @field_validator("secret", "previous_secret")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            signing_key(value)
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, text in value.items():
            if not HEADER_NAME.fullmatch(name) or name.lower() in RESERVED_HEADERS:
                raise ValueError(f"{name!r} is not a header name we may set")
            if any(c in text.get_secret_value() for c in "\r\n"):
                raise ValueError(f"{name}: a header value is one line")
            if not HEADER_VALUE.fullmatch(text.get_secret_value()):
                # Not sendable as typed: http.client encodes a value as Latin-1 (anything
                # else failed every alert as an internal error) and sends a NUL as it is.
                raise ValueError(
                    f"{name}: a header value is printable ASCII (spaces and tabs inside)"
                )
        return value

    @field_validator("url")
    @classmethod
    def _stripped(cls, value: str) -> str:
        """The URL as :func:`check_url` reads it, without the spaces and line break around
        it: ``${CRM_HOOK_URL}`` from a file or a Kubernetes secret ends with a newline, which
        passed the check and was sent (``/hook%0A``: a 404, every alert failed for good)."""
        return value.strip()

    @model_validator(mode="after")
    def _url(self) -> WebhookOptions:
        try:
            check_url(self.url, allow_http=self.allow_http)
        except ValueError as exc:
            raise ValueError(f"url {exc}") from None
        return self


def signing_key(secret: SecretStr) -> bytes:
    """The key of a ``whsec_`` secret: canonical base64 of 24..64 bytes (ValueError else)."""
    text = secret.get_secret_value().strip()
    if not text.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError("must start with whsec_ (whsec_ + base64 of 24 to 64 random bytes)")
    encoded = text[len(WEBHOOK_SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise ValueError("must be whsec_ + canonical base64") from None
    if base64.b64encode(key).decode("ascii") != encoded:
        raise ValueError("must be whsec_ + canonical base64")
    if not 24 <= len(key) <= 64:
        raise ValueError("must decode to 24 to 64 bytes")
    return key


class NoteOptions(DestinationOptions):
    """An internal note in the rated conversation, through its helpdesk's API (private: the
    customer never sees it, and it changes no status). Only alerts about one answer go there.
    ``helpdesks``: the configured helpdesks it posts to (empty: every one that can take notes).
    ``include_rating: false`` leaves the score out (agents see these notes, the rated one too).
    """

    kind: Literal["helpdesk_note"]
    helpdesks: list[str] = Field(default_factory=list)
    include_rating: bool = True


AnyDestination = Annotated[
    SlackOptions | TelegramOptions | EmailOptions | WebhookOptions | NoteOptions,
    Field(discriminator="kind"),
]
KINDS = ("slack", "telegram", "email", "webhook", "helpdesk_note")
