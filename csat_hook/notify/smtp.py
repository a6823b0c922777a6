"""E-mail: SMTP submission with STARTTLS (or implicit TLS), authenticated, certificate verified.

* Connection: ``security: starttls`` connects in clear, says EHLO, and always asks for
  STARTTLS: a server that does not offer it is refused (no silent downgrade); EHLO again, then
  AUTH when ``username`` is set. ``security: tls`` (port 465, RFC 8314) starts TLS at once.
  The certificate and host name are verified against the system's CAs (``ca_file`` adds one).
* The message: ``multipart/alternative`` with a text and an HTML part, quoted-printable (7-bit
  on the wire, so no relay needs 8BITMIME), ``Auto-Submitted: auto-generated`` (RFC 3834: no
  vacation replies), and ``Message-ID: <alert-ref.destination@domain>``: the same on every
  attempt. The comment is never in the Subject (headers are one line; a comment is not).
* Time: ``timeout_seconds`` bounds each socket operation, ``deadline_seconds`` the whole
  exchange (:mod:`csat_hook.notify.smtp_client`): a server answering a byte at a time holds
  the delivery no longer.
* Classification (RFC 5321): any 2xx to MAIL FROM, RCPT TO (251 "will forward", 252 "cannot
  VRFY, will try") and the message's end is success, as 250 is. Only 354 to DATA sends the
  message; any other positive reply to it (a 250) is retried, not sent (a server that did
  not ask for the message may read its lines as commands), and a 3xx to the message's end is
  an unknown outcome. 5xx replies (to EHLO and AUTH too), certificate failures, a server
  without STARTTLS: permanent (the configuration is wrong). 4xx replies (to EHLO and AUTH
  too: 421, 454 RFC 4954), refused or dropped connections before the server's 354 to DATA,
  timeouts or the deadline before it: retryable, not sent. A connection lost, a timeout, the
  deadline or an answer without a reply code once the message's end was sent (before the
  server's 2xx): the outcome is unknown. The server may have queued the message: it is sent
  again with the same Message-ID, which the recipient's mailbox or automation can use to
  drop the copy (a plain SMTP server delivers both). One of those while the message is
  still being sent, its end not yet out, is retryable, not sent: a server takes a message at
  its end and at no other point (RFC 5321 4.1.1.4), and one cut off before it (a server
  that drops the connection or stops reading mid-DATA) was discarded.
* Recipients: some refused and some accepted is delivered, the refused ones named with their
  codes in the note (the outbox row's last error). Those refused for now (4xx, or a reply
  without a code, which smtplib reads as -1 and which says nothing for good) are also
  returned as :attr:`~csat_hook.helpdesks.records.SendResult.retry_to`: the outbox sends the
  same message (same Message-ID) again later to them alone (:meth:`EmailDestination.send_to`,
  RCPT TO those still in ``to``; the To header keeps the whole list), so the others never get
  a second copy. Those refused for good (5xx) are only named. All refused is an error, retried
  when one was refused for now (nothing was sent), whatever happens to the connection after
  the refusals (a server closing it on RSET or QUIT).

Errors carry the SMTP code and the exception's class, never the server's text (it can echo an
address) nor the password.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from collections.abc import Sequence
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from email.utils import parseaddr

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.records import SendResult
from csat_hook.notify.base import Destination
from csat_hook.notify.base import Settle
from csat_hook.notify.options import CONTROL
from csat_hook.notify.options import ENCODED_WORD_START
from csat_hook.notify.options import EmailOptions
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.render import clip
from csat_hook.notify.render import headline
from csat_hook.notify.render import html_text
from csat_hook.notify.render import one_line
from csat_hook.notify.render import plain_text
from csat_hook.notify.smtp_client import Deadline
from csat_hook.notify.smtp_client import DeadlineSMTP

MAX_SUBJECT = 200
# What smtplib's login() can do (SMTP.login's preferred_auths).
SMTPLIB_MECHANISMS = frozenset({"CRAM-MD5", "PLAIN", "LOGIN"})
# What a Subject cannot carry as it is (its line breaks and tabs are spaces already): CONTROL
# characters (a NUL, a terminal escape) and ENCODED_WORD_START, "=?". The
# email package decodes an encoded word in a value it is given, so an agent named
# "=?utf-8?q?=0D=0AReply-To=3A_...?=" was a line break in the Subject, written out as it is by
# Python before 3.11.10 and 3.12.5: a header, or the start of the body, of their choosing (a
# later Python refuses to write it: the alert failed for good). A word joiner (U+2060, not
# shown) between "=" and "?" keeps it text; a control character becomes U+FFFD.
_DEFUSED_START = "=\u2060?"


class EmailDestination(Destination):
    kind = "email"
    options: EmailOptions

    @property
    def exchange_seconds(self) -> float:
        return self.options.deadline

    def message_id(self, message: AlertMessage) -> str:
        return f"<{message.ref}.{self.name}@{self.options.domain}>"

    def build(self, message: AlertMessage) -> EmailMessage:
        """The e-mail for ``message`` (deterministic but for the Date header)."""
        options = self.options
        mail = EmailMessage(policy=policy.SMTP)
        mail["Subject"] = subject(headline(message))
        local, domain = options.sender.rsplit("@", 1)
        mail["From"] = Address(options.sender_name, local, domain)
        mail["To"] = ", ".join(options.to)
        mail["Date"] = format_datetime(self.clock())
        mail["Message-ID"] = self.message_id(message)
        mail["Auto-Submitted"] = "auto-generated"
        mail["X-Csat-Hook-Alert"] = message.ref
        mail.set_content(
            plain_text(message, include_comment=self.include_comment) + "\n",
            cte="quoted-printable",
        )
        mail.add_alternative(
            html_text(message, include_comment=self.include_comment),
            subtype="html",
            cte="quoted-printable",
        )
        return mail

    def send(self, message: AlertMessage) -> SendResult:
        return self._send(message, self.options.to)

    def send_to(self, message: AlertMessage, receivers: Sequence[str]) -> SendResult:
        """The same e-mail again (same Message-ID), RCPT TO only those of ``receivers`` still
        in ``to`` (one removed from the config meanwhile is dropped); none left is permanent."""
        configured = set(self.options.to)
        still = [address for address in dict.fromkeys(receivers) if address in configured]
        if not still:
            raise DeliveryError(
                f"none of the recipients to send to again is in alerts.destinations.{self.name}"
                ".to any more: not sent",
                retryable=False,
            )
        return self._send(message, still)

    def _send(self, message: AlertMessage, recipients: Sequence[str]) -> SendResult:
        mail = self.build(message)
        refused = self._submit(mail, recipients)
        return SendResult(
            external_id=str(mail["Message-ID"]),
            note=_refused_note(refused),
            retry_to=tuple(address for address, code in refused if for_now(code)),
        )

    def settle(self, message: AlertMessage) -> Settle:
        return self.options.on_unknown_outcome

    # --- SMTP ------------------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.options.ca_file:
            context.load_verify_locations(cafile=self.options.ca_file)
        return context

    def _submit(self, mail: EmailMessage, recipients: Sequence[str]) -> list[tuple[str, int]]:
        """Send ``mail`` to ``recipients``; those refused, with their codes (when some were
        accepted)."""
        options = self.options
        where = f"SMTP {options.host}:{options.port}"
        stage = "connect"
        deadline = Deadline(options.deadline)
        try:
            context = self._context()
            client = DeadlineSMTP(
                options.host,
                options.port,
                timeout=options.timeout_seconds,
                deadline=deadline,
                tls=context if options.security == "tls" else None,
            )
            try:
                _ehlo(client, where)
                if options.security == "starttls":
                    client.starttls(context=context)
                    _ehlo(client, where)
                if options.username is not None and options.password is not None:
                    stage = "auth"
                    _check_mechanisms(client, where, self.name)
                    client.login(options.username, options.password.get_secret_value())
                stage = "envelope"
                return self._transfer(client, mail, recipients, where, deadline)
            finally:
                _quit(client)
        except DeliveryError:
            raise
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(
                f"{where}: the server does not offer {'STARTTLS' if stage == 'connect' else 'AUTH'}"
                f" (refused to go on in clear): check alerts.destinations.{self.name}",
                retryable=False,
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.smtp_code < 500:
                # 454 (RFC 4954): a temporary failure, the same login works later.
                raise DeliveryError(
                    f"{where}: authentication failed for now ({exc.smtp_code}) (not sent)",
                    retryable=True,
                ) from exc
            raise DeliveryError(
                f"{where}: authentication refused ({exc.smtp_code}): check "
                f"alerts.destinations.{self.name}.username and password",
                retryable=False,
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(
                f"{where}: the server's certificate is not trusted ({exc.verify_message}): "
                f"set alerts.destinations.{self.name}.ca_file for a private CA",
                retryable=False,
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise _by_code(where, exc.smtp_code, stage) from exc
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Refused, reset, timed out or TLS failed before the message was handed over.
            raise DeliveryError(
                f"{where}: {_why(exc, deadline)} during {stage} (not sent)", retryable=True
            ) from exc

    def _transfer(
        self,
        client: smtplib.SMTP,
        mail: EmailMessage,
        recipients: Sequence[str],
        where: str,
        deadline: Deadline,
    ) -> list[tuple[str, int]]:
        sender = parseaddr(str(mail["From"]))[1]
        code, _ = client.mail(sender)
        if not positive(code):
            raise _by_code(where, code, "MAIL FROM")
        accepted, refused = [], []
        for address in recipients:
            code, _ = client.rcpt(address)
            if positive(code):  # 250, 251 "will forward", 252 "cannot VRFY, will try"
                accepted.append(address)
            else:
                refused.append((address, code))
        if not accepted:
            _reset(client)
            # Nothing was sent. One refused for now (4xx) may take it later: retried (those
            # refused for good are refused again, and named once one is accepted).
            codes = [code for _, code in refused]
            later = [code for code in codes if for_now(code)]
            if later and len(later) < len(codes):
                stage = "RCPT TO (every recipient refused, some for now)"
                raise _by_code(where, max(later), stage)
            raise _by_code(where, max(codes), "RCPT TO (every recipient refused)")
        # smtplib's data(), in two steps: a failure before the server's 354 is before the
        # message left (not sent); from sending it on, the server may have queued it.
        code, _ = client.docmd("DATA")
        if code != 354:
            # Only 354 asks for the message. Any other positive reply (a 250, a 334) is no
            # refusal, but a server that did not say 354 may read the message's lines as
            # commands: it is not sent, and the attempt is retried (the code, not a guess,
            # decides: 5xx permanent, anything else retryable).
            raise _by_code(where, code, "DATA")
        try:
            client.send(_dot_stuffed(mail.as_bytes(policy=policy.SMTP)))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The message's end (CRLF.CRLF, its last bytes) never left: a server takes a
            # message at its end and at no other point (RFC 5321 4.1.1.4), so one cut off
            # before it (a connection reset, a server that stopped reading, the deadline) was
            # not accepted. Retried as not sent: an unknown outcome was recorded as sent,
            # unconfirmed, under on_unknown_outcome: skip, and the alert lost.
            raise DeliveryError(
                f"{where}: {_why(exc, deadline)} while sending the message, before its end "
                "(not sent)",
                retryable=True,
            ) from exc
        try:
            code, _ = client.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise DeliveryError(
                f"{where}: {_why(exc, deadline)} after the message was sent (outcome unknown)",
                retryable=True,
                outcome_unknown=True,
            ) from exc
        if not 200 <= code < 600:
            # No reply code (smtplib reads one that is not a number as -1): the server has
            # the message, and what it did with it cannot be told.
            raise DeliveryError(
                f"{where}: the answer to the message has no SMTP reply code (outcome unknown)",
                retryable=True,
                outcome_unknown=True,
            )
        if 300 <= code < 400:
            # An intermediate reply to the message's end: the server has it, and has not
            # said what it did with it.
            raise DeliveryError(
                f"{where}: the message was answered {code}, not a completion (outcome unknown)",
                retryable=True,
                outcome_unknown=True,
            )
        if not positive(code):
            raise _by_code(where, code, "DATA")
        return refused


def subject(text: str) -> str:
    """``text`` as a Subject: one line of at most :data:`MAX_SUBJECT` characters that the
    email package writes out as text, whatever it holds (see :data:`_DEFUSED_START`)."""
    line = CONTROL.sub("\ufffd", one_line(text))
    line = clip(line, MAX_SUBJECT)  # on a boundary, what it leaves open closed
    return line.replace(ENCODED_WORD_START, _DEFUSED_START)


def _dot_stuffed(message: bytes) -> bytes:
    """``message`` (CRLF line ends) as DATA carries it: a leading ``.`` doubled, ended by
    ``CRLF.CRLF`` (RFC 5321 4.5.2; what smtplib's data() sends)."""
    data = re.sub(rb"(?m)^\.", b"..", message)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _ehlo(client: smtplib.SMTP, where: str) -> None:
    """Say EHLO; a refusal is classified by its code. smtplib's ehlo() returns a refusal
    rather than raising it, leaving the server's extensions empty: starttls() and login() then
    raised "not supported", and a busy server's 421 read as one without STARTTLS or AUTH,
    a permanent configuration error."""
    code, _ = client.ehlo()
    if code != 250:
        raise _by_code(where, code, "EHLO")


def _check_mechanisms(client: smtplib.SMTP, where: str, name: str) -> None:
    """A permanent DeliveryError when the server offers AUTH but none of the mechanisms
    smtplib logs in with (only XOAUTH2, say): smtplib's bare SMTPException read as a passing
    connection failure. No AUTH at all is left to ``login`` (SMTPNotSupportedError)."""
    if not client.has_extn("auth"):
        return
    offered = set(client.esmtp_features.get("auth", "").upper().split())
    if not offered & SMTPLIB_MECHANISMS:
        raise DeliveryError(
            f"{where}: the server offers no AUTH mechanism this client has (it has "
            f"{', '.join(sorted(SMTPLIB_MECHANISMS))}): check alerts.destinations.{name}",
            retryable=False,
        )


def _refused_note(refused: list[tuple[str, int]]) -> str | None:
    """The recipients refused beside accepted ones, for operators (addresses from our own
    config, codes without the server's text); None when none was."""
    if not refused:
        return None
    named = ", ".join(
        f"{address} ({code}{', for now' if for_now(code) else ''})" for address, code in refused
    )
    return f"sent to the other recipients; refused by the server: {named}"


def _why(exc: BaseException, deadline: Deadline) -> str:
    """What stopped the exchange, for the error: the deadline, or the exception's class."""
    if deadline.passed:
        return f"the {deadline.seconds:g} s deadline passed"
    return type(exc).__name__


def _reset(client: smtplib.SMTP) -> None:
    """Say RSET after every recipient was refused; a failure here (the server closing the
    connection on it, a reset) changes nothing: the refusals are the answer, and they are
    classified by their codes, not as a connection lost before the message was sent."""
    with contextlib.suppress(smtplib.SMTPException, OSError):
        client.rset()


def _quit(client: smtplib.SMTP) -> None:
    """Say QUIT and close; a failure here changes nothing (the message is out, or not)."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


def for_now(code: int) -> bool:
    """Whether a refusal with this reply code may be taken back later: anything but a 5xx
    (RFC 5321's permanent failures). A reply without a code (smtplib reads it as -1) said
    nothing, least of all "never"."""
    return not 500 <= code < 600


def positive(code: int) -> bool:
    """Whether a reply code says the command was done (RFC 5321 4.2.1: 2yz, "positive
    completion"), whichever 2yz it is."""
    return 200 <= code < 300


def _by_code(where: str, code: int, stage: str) -> DeliveryError:
    """An SMTP reply code that stopped the exchange before the message was handed over, as a
    DeliveryError (not sent): 5xx permanent (RFC 5321's refusal for good); 4xx retryable; a
    positive reply where another was needed (a 250 to DATA) or a reply without a code (-1)
    retryable too: neither says "never"."""
    if not 200 <= code < 600:
        return DeliveryError(
            f"{where}: {stage} answered with no SMTP reply code (not sent)", retryable=True
        )
    return DeliveryError(
        f"{where}: {stage} answered {code}" + ("" if code >= 400 else " (not sent)"),
        retryable=not 500 <= code < 600,
        http_status=None,
    )
