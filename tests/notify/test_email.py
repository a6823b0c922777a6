"""E-mail: STARTTLS, AUTH and a verified certificate against a real SMTP server (aiosmtpd on
loopback), the message as it arrives, and every SMTP failure classified."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from csat_hook.errors import ConfigError
from csat_hook.errors import DeliveryError
from csat_hook.notify.records import DigestItem
from tests.notify.conftest import NASTY_COMMENT
from tests.notify.conftest import build
from tests.notify.conftest import sample
from tests.notify.smtp_server import Mailbox
from tests.notify.smtp_server import email_options
from tests.notify.smtp_server import make_certificates
from tests.notify.smtp_server import start_server
from tests.stuck_resolver import StuckResolver

TO = ["lead@example.org", "team@example.org"]


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp(tmp_path: Path, mailbox: Mailbox) -> Iterator[tuple[int, Path]]:
    controller, ca_file = start_server(tmp_path / "tls", mailbox)
    yield controller.port, ca_file
    controller.stop()


def email(port: int, ca_file: Path, **options: Any):
    values = {"to": TO, **options}
    return build("managers", email_options(port, ca_file, **values))


def test_the_alert_arrives_over_starttls_with_a_deterministic_message_id(smtp, mailbox):
    port, ca_file = smtp
    result = email(port, ca_file).send(sample())

    [(sender, recipients, raw)] = mailbox.messages
    [message] = mailbox.parsed()
    assert sender == "alerts@example.org" and recipients == TO
    assert message["Message-ID"] == "<csat-alert-0123456789abcdef01234567.managers@example.org>"
    assert result.external_id == message["Message-ID"]
    assert message["Subject"] == "Low rating 2/5 for Anna <admin> & Co on ticket 4512"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["From"] == "csat-hook <alerts@example.org>"
    assert all(byte < 128 for byte in raw)  # quoted-printable: 7-bit on the wire
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert NASTY_COMMENT in text and "Alert ref: csat-alert-0123456789abcdef01234567" in text
    assert "&lt;script&gt;" in html and "<script>" not in html


def test_a_resend_carries_the_same_message_id(smtp, mailbox):
    port, ca_file = smtp
    destination = email(port, ca_file)
    destination.send(sample())
    destination.send(sample())
    first, second = mailbox.parsed()
    assert first["Message-ID"] == second["Message-ID"]


def test_a_comment_with_line_breaks_never_reaches_a_header(smtp, mailbox):
    port, ca_file = smtp
    email(port, ca_file).send(sample(agent_name="Anna\r\nBcc: victim@example.org"))
    [message] = mailbox.parsed()
    assert message["Bcc"] is None and mailbox.messages[0][1] == TO


@pytest.mark.parametrize(
    "agent_name",
    [
        # RFC 2047 encoded words of "\r\nReply-To: ..." and of a NUL: Python's email package
        # decodes an encoded word in a header value it is given, and (3.11 before 3.11.10)
        # writes the decoded line breaks out as they are: a header of the agent's choosing.
        "=?utf-8?b?" + base64.b64encode(b"\r\nReply-To: evil@example.net\r\n").decode() + "?=",
        "=?utf-8?q?x=0D=0AReply-To=3A_evil=40example=2Enet?=",
        "=?utf-8?q?x=00y?=",
        "Anna\x00\x1b[31m\x7f",
        "Anna\u2028Reply-To: evil@example.net\x85\u2029\x0b\x0c\x1c",  # line breaks too
    ],
)
def test_an_encoded_word_or_a_control_character_in_a_name_stays_text(smtp, mailbox, agent_name):
    port, ca_file = smtp
    email(port, ca_file).send(sample(agent_name=agent_name))
    [(_, _, raw)] = mailbox.messages
    [message] = mailbox.parsed()
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    assert message["Reply-To"] is None
    assert not any(line.lower().startswith(b"reply-to") for line in lines)
    assert all(32 <= byte < 127 for line in lines for byte in line)
    subject = str(message["Subject"])
    assert subject.startswith("Low rating 2/5 for ") and subject.endswith(" on ticket 4512")
    assert "\n" not in subject and "\x00" not in subject
    if agent_name.startswith("=?"):  # shown as it was typed, not decoded
        assert agent_name[10:16] in subject


def test_a_digest_item_stays_one_line_whatever_its_ticket_id_holds(smtp, mailbox):
    # A dialog id typed in a helpdesk: its line breaks made lines of its own in the digest.
    port, ca_file = smtp
    forged = "77\n\nTicket: https://evil.example/login\n\ncsat-hook · Alert ref: csat-alert-f"
    digest = sample(
        event="digest",
        rule="daily",
        dialog_id=None,
        ticket_url=None,
        comment=None,
        period="2026-11-19",
        items=(DigestItem(rating=1, agent_name="Anna", dialog_id=forged, comment="slow"),),
    )
    email(port, ca_file).send(digest)
    text = mailbox.parsed()[0].get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert not any(line.startswith("Ticket:") for line in text.splitlines())
    assert [line for line in text.splitlines() if line.startswith("csat-hook")] == [
        "csat-hook · rule daily · Alert ref: csat-alert-0123456789abcdef01234567"
    ]
    [item] = [line for line in text.splitlines() if line.startswith("- ")]
    assert "evil.example" in item and item.endswith(": slow")


def test_a_wrong_password_is_permanent_and_not_shown(smtp, mailbox):
    port, ca_file = smtp
    with pytest.raises(DeliveryError) as caught:
        email(port, ca_file, password="wrong-password").send(sample())
    assert not caught.value.retryable and "535" in caught.value.message
    assert "wrong-password" not in caught.value.message and mailbox.messages == []


def test_authentication_failing_for_now_is_retried(smtp, mailbox):
    # RFC 4954: 454 4.7.0 "Temporary authentication failure" (the server's password store is
    # down, say): the same login works later. It failed the alert for good.
    port, ca_file = smtp
    mailbox.auth_replies.extend(["454 4.7.0 Temporary authentication failure"] * 3)
    with pytest.raises(DeliveryError) as caught:
        email(port, ca_file).send(sample())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "454" in caught.value.message and mailbox.messages == []
    mailbox.auth_replies.clear()
    email(port, ca_file).send(sample())
    assert len(mailbox.messages) == 1


def test_a_server_offering_no_login_smtplib_can_do_is_permanent(tmp_path):
    # Only XOAUTH2 offered: smtplib raises a bare SMTPException, taken as a connection failure
    # ("SMTPException during auth (not sent)") and retried until the attempts ran out.
    box = Mailbox()
    controller, ca_file = start_server(tmp_path / "oauth", box, without_auth=("PLAIN", "LOGIN"))
    try:
        with pytest.raises(DeliveryError) as caught:
            email(controller.port, ca_file).send(sample())
    finally:
        controller.stop()
    assert not caught.value.retryable and "AUTH" in caught.value.message
    assert box.messages == []


def test_a_certificate_from_another_ca_is_refused(smtp, mailbox, tmp_path):
    port, _ = smtp
    other_ca, _, _ = make_certificates(tmp_path / "other", name="other-ca")
    with pytest.raises(DeliveryError) as caught:
        email(port, other_ca).send(sample())
    assert not caught.value.retryable and "certificate" in caught.value.message
    assert mailbox.messages == []


def test_a_server_without_starttls_is_refused_not_used_in_clear(tmp_path):
    plain_box = Mailbox()
    controller, ca_file = start_server(tmp_path / "plain", plain_box, starttls=False)
    try:
        with pytest.raises(DeliveryError) as caught:
            email(controller.port, ca_file).send(sample())
    finally:
        controller.stop()
    assert not caught.value.retryable and "STARTTLS" in caught.value.message
    assert plain_box.messages == []


def test_one_refused_recipient_does_not_stop_the_others(smtp, mailbox):
    port, ca_file = smtp
    mailbox.refuse.add("team@example.org")
    result = email(port, ca_file).send(sample())
    assert mailbox.messages[0][1] == ["lead@example.org"]
    assert result.external_id == mailbox.parsed()[0]["Message-ID"]
    assert (
        result.note == "sent to the other recipients; refused by the server: team@example.org (550)"
    )


def test_a_recipient_refused_for_now_beside_others_is_named_and_returned_to_retry(smtp, mailbox):
    port, ca_file = smtp
    mailbox.refuse_for_now.add("lead@example.org")
    result = email(port, ca_file).send(sample())
    assert [recipients for _, recipients, _ in mailbox.messages] == [["team@example.org"]]
    assert "lead@example.org (450, for now)" in (result.note or "")
    assert result.retry_to == ("lead@example.org",)


def test_a_recipient_refused_for_good_is_not_returned_to_retry(smtp, mailbox):
    port, ca_file = smtp
    mailbox.refuse.add("lead@example.org")
    mailbox.refuse_for_now.add("team@example.org")
    three = email(port, ca_file, to=[*TO, "ops@example.org"])
    result = three.send(sample())
    assert result.retry_to == ("team@example.org",)
    assert "lead@example.org (550)" in (result.note or "")


def test_sending_again_to_some_recipients_is_the_same_message_to_them_alone(smtp, mailbox):
    port, ca_file = smtp
    three = email(port, ca_file, to=[*TO, "ops@example.org"])
    three.send(sample())
    # ops@ is not in `to` any more: dropped, never sent to.
    again = email(port, ca_file).send_to(sample(), ["team@example.org", "ops@example.org"])
    (_, first, _), (_, second, _) = mailbox.messages
    assert first == [*TO, "ops@example.org"] and second == ["team@example.org"]
    one, two = mailbox.parsed()
    assert one["Message-ID"] == two["Message-ID"] == again.external_id
    assert two["To"] == "lead@example.org, team@example.org"  # the whole list, as configured
    assert again.retry_to == () and again.note is None


def test_sending_again_to_recipients_no_longer_configured_is_permanent(smtp, mailbox):
    port, ca_file = smtp
    with pytest.raises(DeliveryError) as caught:
        email(port, ca_file).send_to(sample(), ["ops@example.org"])
    assert not caught.value.retryable and "alerts.destinations.managers.to" in caught.value.message
    assert mailbox.messages == []


def test_every_recipient_refused_is_permanent(smtp, mailbox):
    port, ca_file = smtp
    mailbox.refuse.update(TO)
    with pytest.raises(DeliveryError) as caught:
        email(port, ca_file).send(sample())
    assert not caught.value.retryable and "550" in caught.value.message


@pytest.mark.parametrize("drop_at", [{"RSET"}, {"QUIT"}, {"RSET", "QUIT"}])
def test_every_recipient_refused_then_the_connection_dropped_is_still_permanent(
    smtp, mailbox, drop_at
):
    """The 550s already said it: a server closing the connection on the RSET (or QUIT) after
    them made it "not sent, retryable", and the alert was refused again on every attempt."""
    port, ca_file = smtp
    mailbox.refuse.update(TO)
    mailbox.drop_at.update(drop_at)
    with pytest.raises(DeliveryError) as caught:
        email(port, ca_file).send(sample())
    assert not caught.value.retryable and not caught.value.outcome_unknown
    assert "550" in caught.value.message and mailbox.messages == []


def test_a_recipient_refused_for_now_then_the_connection_dropped_is_retried(smtp, mailbox):
    port, ca_file = smtp
    mailbox.refuse_for_now.update(TO)
    mailbox.drop_at.add("RSET")
    with pytest.raises(DeliveryError) as caught:
        email(port, ca_file).send(sample())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "450" in caught.value.message


@pytest.mark.parametrize(
    "replies",
    [
        ["421 4.3.2 Service not available, try later"],
        [None, "451 4.3.0 Try again later"],  # the EHLO after STARTTLS
    ],
)
def test_a_temporary_refusal_of_ehlo_is_retried_not_taken_for_a_missing_extension(
    smtp, mailbox, replies
):
    """smtplib's ehlo() returns a refusal instead of raising: the features stayed empty and
    starttls() or login() raised "not supported", which read as a server without STARTTLS
    (or AUTH): a busy server failed the alert for good, blaming the configuration."""
    mailbox.ehlo_replies.extend(replies)
    with pytest.raises(DeliveryError) as caught:
        email(*smtp).send(sample())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "EHLO" in caught.value.message and mailbox.messages == []


def test_a_permanent_refusal_of_ehlo_is_permanent(smtp, mailbox):
    mailbox.ehlo_replies.append("554 5.7.1 No service for you")
    with pytest.raises(DeliveryError) as caught:
        email(*smtp).send(sample())
    assert not caught.value.retryable and "EHLO answered 554" in caught.value.message


def test_every_recipient_answered_without_a_reply_code_is_retried_not_refused(smtp, mailbox):
    """smtplib reads a reply that is not a number as -1: "RCPT TO answered -1" failed the
    alert for good, as if the server had refused it, when it had said nothing readable."""
    port, ca_file = smtp
    mailbox.rcpt_replies.update(dict.fromkeys(TO, "2x0 fine"))
    with pytest.raises(DeliveryError) as caught:
        email(port, ca_file).send(sample())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "no SMTP reply code" in caught.value.message and mailbox.messages == []


def test_an_ehlo_answered_without_a_reply_code_is_retried(smtp, mailbox):
    mailbox.ehlo_replies.append("hello there")
    with pytest.raises(DeliveryError) as caught:
        email(*smtp).send(sample())
    assert caught.value.retryable and "EHLO" in caught.value.message


def test_a_temporary_refusal_is_retried(smtp, mailbox):
    port, ca_file = smtp
    mailbox.data_replies.append("451 4.3.0 Try again later")
    with pytest.raises(DeliveryError) as caught:
        email(port, ca_file).send(sample())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert mailbox.messages == []


def test_a_connection_lost_after_the_message_is_an_unknown_outcome(smtp, mailbox):
    port, ca_file = smtp
    mailbox.drop_after_data = 1
    with pytest.raises(DeliveryError) as caught:
        email(port, ca_file).send(sample())
    assert caught.value.outcome_unknown  # the server has it: a resend keeps its Message-ID
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize(
    "reply",
    ["250 " + "x" * 9000, "2x0 queued"],  # longer than smtplib reads; no code
)
def test_an_unreadable_answer_to_the_message_is_an_unknown_outcome(smtp, mailbox, reply):
    # The server has the message: it was "refused (500)" for good, and never sent again.
    port, ca_file = smtp
    mailbox.replies_after_data.append(reply)
    with pytest.raises(DeliveryError) as caught:
        email(port, ca_file).send(sample())
    assert caught.value.outcome_unknown and caught.value.retryable
    assert "outcome unknown" in caught.value.message and "xxx" not in caught.value.message
    assert len(mailbox.messages) == 1


def test_lines_starting_with_a_dot_arrive_whole(smtp, mailbox):
    # DATA ends at a line holding a lone ".": such lines are sent dot-stuffed (RFC 5321).
    port, ca_file = smtp
    destination = email(port, ca_file)
    built = destination.build

    def with_dots(message):
        mail = built(message)
        mail.clear_content()
        mail.set_content("first\n.\n..second\n.third\n", cte="7bit")
        return mail

    destination.build = with_dots
    destination.send(sample())
    text = mailbox.parsed()[0].get_content()
    assert text.replace("\r\n", "\n") == "first\n.\n..second\n.third\n"


def test_a_connection_lost_before_the_message_is_not_sent(smtp, mailbox):
    """The server closed the connection on DATA, before its 354: the message never left. Not
    an unknown outcome: with on_unknown_outcome: skip it would be recorded as sent, and lost."""
    port, ca_file = smtp
    mailbox.drop_at_data = 1
    with pytest.raises(DeliveryError) as caught:
        email(port, ca_file, on_unknown_outcome="skip").send(sample())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "(not sent)" in caught.value.message and mailbox.messages == []
    email(port, ca_file).send(sample())  # the next attempt delivers it
    assert len(mailbox.messages) == 1


def test_a_refused_connection_is_retryable_and_not_sent(tmp_path):
    ca_file, _, _ = make_certificates(tmp_path)
    with pytest.raises(DeliveryError) as caught:
        email(1, ca_file).send(sample())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "not sent" in caught.value.message


@pytest.mark.parametrize(
    "changes",
    [
        {"to": ["not an address"]},
        {"to": ["ян@пример.рф"]},
        {"sender": "alerts@example.org\r\nBcc: x@example.org"},
        # An RFC 2047 encoded word is decoded where a header is written: a CR LF, a Bcc and
        # a body of the configuration's choosing in the From header; in "to", every e-mail
        # failed ("address parts cannot contain CR or LF") after check-config said OK.
        {"sender": "=?utf-8?b?DQpCY2M6IGV2aWxAeC5jb20=?=@example.com"},
        {"to": ["=?utf-8?b?DQpCY2M6IGV2aWxAeC5jb20=?=@example.com"]},
        {"sender_name": "=?utf-8?b?DQpCY2M6IGV2aWxAeC5jb20NCg0KRm9yZ2VkIGJvZHk=?="},
        {"sender_name": "Alerts =?utf-8?q?=0D=0A?="},
        {"sender_name": "Alerts\x00"},
        {"sender_name": "Alerts\x1b[31m"},
        {"username": "only-user", "password": None},
        {"to": []},
    ],
)
def test_addresses_and_logins_are_checked(changes):
    options = {
        "kind": "email",
        "host": "smtp.example.org",
        "sender": "alerts@example.org",
        "to": ["lead@example.org"],
        **changes,
    }
    with pytest.raises(ValidationError):
        build("m", options)


@pytest.mark.parametrize(
    ("changes", "port"),
    [({}, 587), ({"security": "tls"}, 465), ({"security": "tls", "port": 2465}, 2465)],
)
def test_the_port_follows_the_security_unless_given(changes, port):
    # Implicit TLS on the submission port 587 meets a server that greets in clear: every
    # e-mail failed its TLS handshake ("SSLError during connect"), retried until it failed.
    options = {
        "kind": "email",
        "host": "smtp.example.org",
        "sender": "alerts@example.org",
        "to": ["lead@example.org"],
        **changes,
    }
    assert build("m", options).options.port == port


@pytest.mark.parametrize(
    "login", [("alerts@example.org", "pässwort-geheim"), ("jürgen", "s3cret-smtp-pass")]
)
def test_a_login_smtplib_cannot_send_is_refused_without_showing_it(login):
    # smtplib encodes AUTH as ASCII: every alert e-mail failed with a UnicodeEncodeError (its
    # traceback, logged, naming a character of the password and where it is).
    username, password = login
    options = {
        "kind": "email",
        "host": "smtp.example.org",
        "sender": "alerts@example.org",
        "to": ["lead@example.org"],
        "username": username,
        "password": password,
    }
    with pytest.raises(ValidationError) as caught:
        build("m", options)
    said = " ".join(error["msg"] for error in caught.value.errors())  # what the config shows
    assert "ASCII" in said and "ä" not in said and "ü" not in said and "geheim" not in said


@pytest.mark.parametrize("content", [None, b"", b"not a certificate\n"])
def test_a_ca_file_that_is_not_a_readable_certificate_is_a_configuration_error(
    tmp_path, make_config, content
):
    # It passed check-config and serve, and every alert e-mail was then retried as a passing
    # failure ("FileNotFoundError during connect (not sent)") naming no key, until it failed.
    ca_file = tmp_path / "ca.pem"
    if content is not None:
        ca_file.write_bytes(content)
    alerts = {
        "destinations": {
            "managers": {
                "kind": "email",
                "host": "smtp.example.org",
                "sender": "alerts@example.org",
                "to": ["lead@example.org"],
                "ca_file": str(ca_file),
            }
        },
        "rules": [{"name": "low", "kind": "low_rating", "destinations": ["managers"]}],
    }
    with pytest.raises(ConfigError) as caught:
        make_config(alerts=alerts)
    assert "managers" in caught.value.message and "ca_file" in caught.value.message
    assert "not a certificate" not in caught.value.message  # the file's text is not echoed


# --- unusual but positive replies (RFC 5321: 2xx is done, 3xx asks for more) ----------------


@pytest.mark.parametrize(
    "replies",
    [
        ["251 2.1.5 User not local; will forward", "252 2.1.5 Cannot VRFY user, will try"],
        ["252 2.1.5 Cannot VRFY user, will try", "250 OK"],
    ],
)
def test_recipients_taken_with_251_or_252_are_sent_to(smtp, mailbox, replies):
    # Both say the server takes the message for them: it was "RCPT TO answered 252", failed
    # for good (every recipient) or retried to a recipient that already had it.
    port, ca_file = smtp
    mailbox.rcpt_replies.update(zip(TO, replies, strict=True))
    result = email(port, ca_file).send(sample())
    assert result.note is None and result.retry_to == ()
    [(_, rcpt_tos, _)] = mailbox.messages
    assert rcpt_tos == TO


def test_a_sender_taken_with_another_2xx_is_sent(smtp, mailbox):
    mailbox.mail_replies.append("251 2.1.0 Sender OK, with a word")
    email(*smtp).send(sample())
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize("reply", ["251 2.6.0 Queued, will forward", "252 2.6.0 Taken"])
def test_the_message_answered_with_another_2xx_is_sent(smtp, mailbox, reply):
    mailbox.replies_after_data.append(reply)
    result = email(*smtp).send(sample())
    assert result.external_id and len(mailbox.messages) == 1


@pytest.mark.parametrize("reply", ["250 2.0.0 OK", "334 go on"])
def test_data_answered_without_354_is_retried_and_the_message_not_handed_over(smtp, mailbox, reply):
    # A 2xx or another 3xx to DATA is no refusal (it was "DATA answered 250", failed for
    # good), and no invitation to send the message either: a server that did not say 354
    # would read its lines as commands. Nothing was sent: a plain retry.
    mailbox.data_command_replies.append(reply)
    with pytest.raises(DeliveryError) as caught:
        email(*smtp).send(sample())
    error = caught.value
    assert error.retryable and not error.outcome_unknown
    assert "DATA" in error.message and "not sent" in error.message
    assert mailbox.messages == []


def test_the_message_answered_with_a_3xx_is_an_unknown_outcome(smtp, mailbox):
    # Not a completion, nor a refusal: the server has the message and has not said what it
    # did with it ("DATA answered 354" was a permanent failure, never sent again).
    mailbox.replies_after_data.append("354 go ahead")
    with pytest.raises(DeliveryError) as caught:
        email(*smtp).send(sample())
    assert caught.value.outcome_unknown and caught.value.retryable
    assert len(mailbox.messages) == 1


def test_a_comments_lines_stay_lines_in_the_html_part(smtp, mailbox):
    """The plain part splits a comment at every line break Python knows (CR alone, VT, FF,
    NEL, U+2028, U+2029); the HTML part, which mail programs show, made only LF a <br>: the
    others ran the customer's lines together, VT and NEL (control characters HTML does not
    allow) left in the document."""
    port, ca_file = smtp
    comment = "first\rsecond\u2028third\x85fourth\x0bfifth\x0csixth\u2029seventh\r\neighth"
    email(port, ca_file).send(sample(comment=comment))
    [message] = mailbox.parsed()
    html = message.get_body(("html",)).get_content()
    quoted = html.split("<blockquote>")[1].split("</blockquote>")[0]
    lines = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"]
    assert quoted.split("<br>") == lines


def test_a_resolver_that_never_answers_ends_the_attempt_not_sent(smtp, mailbox, monkeypatch):
    # The SMTP timeout bounded each address's connect, not the name's resolution before it.
    port, ca_file = smtp
    stuck = StuckResolver({"localhost"})
    monkeypatch.setattr(socket, "getaddrinfo", stuck.getaddrinfo)
    try:
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            email(port, ca_file, timeout_seconds=0.5, deadline_seconds=1).send(sample())
        assert time.monotonic() - started < 2.5
        assert caught.value.retryable and not caught.value.outcome_unknown
        assert str(caught.value).endswith("during connect (not sent)")
        assert mailbox.messages == []
    finally:
        stuck.release()
    email(port, ca_file).send(sample())  # once it answers, the retry goes through
    assert len(mailbox.messages) == 1
