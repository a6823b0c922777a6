"""A real SMTP server for the e-mail tests: aiosmtpd on loopback with STARTTLS required, AUTH
(PLAIN/LOGIN) after TLS only, and a certificate from a throwaway CA made with `cryptography`.
The client trusts that CA alone, so chain and host name are really verified.

aiosmtpd 1.4.6 cannot bind port 0 (its readiness probe connects to the configured port):
:class:`LoopbackController` takes the port from the listening socket first.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
from dataclasses import dataclass
from dataclasses import field
from email import message_from_bytes
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import AuthResult
from aiosmtpd.smtp import LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

USER, PASSWORD = "alerts@example.org", "s3cret-smtp-pass"


def make_certificates(folder: Path, name: str = "ca") -> tuple[Path, Path, Path]:
    """A CA and a server certificate for localhost/127.0.0.1; (CA file, cert, key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"csat-hook test {name}")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = (
        folder / f"{name}.pem",
        folder / "server.pem",
        folder / "server.key",
    )
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


@dataclass
class Mailbox:
    """What the server took, and what it is told to do with the next messages."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    asked: list[str] = field(default_factory=list)  # every RCPT TO, accepted or not, in order
    refuse: set[str] = field(default_factory=set)  # recipients answered 550
    refuse_for_now: set[str] = field(default_factory=set)  # recipients answered 450
    # Recipients answered so (one answered a 2xx is taken: "251 will forward", "252 cannot
    # VRFY, will try").
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    mail_replies: list[str] = field(default_factory=list)  # the next MAIL FROMs' replies
    # The next DATA commands' replies in place of the 354 (the server stays in command mode).
    data_command_replies: list[str] = field(default_factory=list)
    busy: dict[str, int] = field(default_factory=dict)  # answered 450 this many more times
    data_replies: list[str] = field(default_factory=list)  # e.g. "451 4.3.0 try later"
    drop_after_data: int = 0  # store, then close the connection without the 250
    replies_after_data: list[str] = field(default_factory=list)  # store, then answer this
    drop_at_data: int = 0  # close the connection on the DATA command (before its 354)
    drop_at: set[str] = field(default_factory=set)  # close it on these commands: RSET, QUIT
    # The next EHLOs' replies in order, e.g. "421 4.3.2 busy" (None: the server's own).
    ehlo_replies: list[str | None] = field(default_factory=list)
    auth_replies: list[str] = field(default_factory=list)  # e.g. "454 4.7.0 try later"

    def parsed(self) -> list[EmailMessage]:
        return [
            message_from_bytes(raw, policy=policy.default)  # type: ignore[misc]
            for _, _, raw in self.messages
        ]

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        self.asked.append(address)
        if address in self.rcpt_replies:
            reply = self.rcpt_replies[address]
            if re.match(r"2[0-9][0-9][ -]", reply):
                envelope.rcpt_tos.append(address)
            return reply
        if address in self.refuse:
            return "550 5.1.1 No such user"
        if address in self.refuse_for_now:
            return "450 4.2.1 Mailbox busy"
        if self.busy.get(address, 0) > 0:
            self.busy[address] -= 1
            return "450 4.2.1 Mailbox busy"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_MAIL(self, server, session, envelope, address, options):  # noqa: N802
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return self.mail_replies.pop(0) if self.mail_replies else "250 OK"

    async def auth_XOAUTH2(self, server, args):  # noqa: N802 (a mechanism smtplib lacks)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_replies:
            return self.data_replies.pop(0)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        if self.drop_after_data:
            self.drop_after_data -= 1
            server.transport.abort()  # queued, but the client never hears the 250
        if self.replies_after_data:
            return self.replies_after_data.pop(0)  # queued, and answered so
        return "250 Message accepted for delivery"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth: Any
) -> AuthResult:
    mailbox = server.event_handler
    if isinstance(mailbox, Mailbox) and mailbox.auth_replies:
        return AuthResult(success=False, handled=False, message=mailbox.auth_replies.pop(0))
    ok = (
        isinstance(auth, LoginPassword)
        and auth.login == USER.encode()
        and auth.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


class DroppingSMTP(SMTP):
    """aiosmtpd's server, closing the connection on DATA when the mailbox says so."""

    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802
        mailbox = self.event_handler
        if isinstance(mailbox, Mailbox) and mailbox.drop_at_data:
            mailbox.drop_at_data -= 1
            assert self.transport is not None
            self.transport.abort()
            return
        if isinstance(mailbox, Mailbox) and mailbox.data_command_replies:
            await self.push(mailbox.data_command_replies.pop(0))
            return
        await super().smtp_DATA(arg)

    def _dropped_at(self, command: str) -> bool:
        mailbox = self.event_handler
        if isinstance(mailbox, Mailbox) and command in mailbox.drop_at:
            assert self.transport is not None
            self.transport.abort()
            return True
        return False

    async def smtp_EHLO(self, hostname: str) -> None:  # noqa: N802
        mailbox = self.event_handler
        reply = (
            mailbox.ehlo_replies.pop(0)
            if isinstance(mailbox, Mailbox) and mailbox.ehlo_replies
            else None
        )
        if reply is not None:
            await self.push(reply)
            return
        await super().smtp_EHLO(hostname)

    async def smtp_RSET(self, arg: str) -> None:  # noqa: N802
        if not self._dropped_at("RSET"):
            await super().smtp_RSET(arg)

    async def smtp_QUIT(self, arg: str) -> None:  # noqa: N802
        if not self._dropped_at("QUIT"):
            await super().smtp_QUIT(arg)


class LoopbackController(Controller):
    def factory(self) -> SMTP:
        return DroppingSMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def start_server(
    folder: Path, mailbox: Mailbox, *, starttls: bool = True, without_auth: tuple[str, ...] = ()
) -> tuple[LoopbackController, Path]:
    """A running server (stop it with ``.stop()``) and the CA file its certificate chains to;
    ``without_auth``: AUTH mechanisms it does not offer (PLAIN, LOGIN; XOAUTH2 it offers
    always, and smtplib cannot use it)."""
    ca_file, cert_file, key_file = make_certificates(folder)
    kwargs: dict[str, Any] = {
        "authenticator": authenticator,
        "auth_require_tls": True,
        "auth_exclude_mechanism": list(without_auth),
    }
    if starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        kwargs.update(tls_context=context, require_starttls=True)
    controller = LoopbackController(mailbox, hostname="127.0.0.1", port=0, **kwargs)
    controller.start()
    return controller, ca_file


def email_options(port: int, ca_file: Path, to: list[str], **options: Any) -> dict[str, Any]:
    """An ``email`` destination's settings for the server :func:`start_server` runs on
    ``port``: its user, its CA, the sender ``alerts@example.org``, a 5 s timeout (a 15 s
    deadline: within the tests' 30 s delivery lease); ``options`` added last."""
    return {
        "kind": "email",
        "host": "localhost",
        "port": port,
        "username": USER,
        "password": PASSWORD,
        "sender": "alerts@example.org",
        "to": to,
        "ca_file": str(ca_file),
        "timeout_seconds": 5,
        **options,
    }
