"""E-mail: the whole SMTP exchange ends by ``deadline_seconds``, whatever the server trickles.

:class:`ScriptedServer` is a plain socket server on loopback (in a thread) that speaks just
enough SMTP (STARTTLS or implicit TLS with the test CA) and, at the step it is told, answers
with an endless multiline reply one byte at a time, each byte well within the per-operation
timeout. It gives up after :data:`TRICKLE_LIMIT` seconds: that is how long a delivery waited
before the deadline.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from csat_hook import resolver
from csat_hook.cli import main
from csat_hook.config import load_config
from csat_hook.errors import DeliveryError
from tests.helpdesks.test_connect_phase import black_holes
from tests.helpdesks.test_connect_phase import slow_resolution
from tests.helpdesks.test_connect_phase import stalled_handshake
from tests.helpdesks.test_transport import loopback
from tests.notify.conftest import build
from tests.notify.conftest import sample
from tests.notify.smtp_server import Mailbox
from tests.notify.smtp_server import make_certificates
from tests.notify.smtp_server import start_server
from tests.notify.test_email import email

TIMEOUT, DEADLINE = 0.5, 1.0
PACE = 0.05  # between trickled bytes: a tenth of the timeout
TRICKLE_LIMIT = 4.0
SLACK = 0.75  # scheduling on a busy machine


class ScriptedServer:
    """One SMTP session at a time; ``trickle``: the step whose answer comes a byte at a time
    (``greeting``, ``ehlo`` over TLS, ``rcpt``, ``final``: the reply to the message's end),
    or None for a server that delivers. ``mid_data``: what it does once it said 354, before
    the message's end: ``stall`` (reads none of it), ``drop`` (resets the connection while
    the client is sending it). ``messages``: the messages it read to their end."""

    def __init__(
        self,
        folder: Path,
        *,
        trickle: str | None,
        implicit_tls: bool = False,
        mid_data: str | None = None,
    ):
        self.ca_file, cert, key = make_certificates(folder)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.trickle, self.implicit_tls, self.mid_data = trickle, implicit_tls, mid_data
        self.messages: list[bytes] = []
        self.stopping = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        if mid_data:  # a small window (accepted connections inherit it): the sender must wait
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(TRICKLE_LIMIT + 1)
        self.listener.close()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            opened = [conn]
            try:
                self._session(conn, opened)
            except OSError:
                pass  # the client gave up
            finally:
                for each in opened:
                    each.close()

    def _session(self, conn: socket.socket, opened: list[socket.socket]) -> None:
        conn.settimeout(TRICKLE_LIMIT)
        if self.implicit_tls:
            conn = self._tls(conn, opened)
        if self.trickle == "greeting":
            return self._drip(conn)
        conn.sendall(b"220 localhost ESMTP\r\n")
        lines, tls = conn.makefile("rb"), self.implicit_tls
        while line := lines.readline():
            verb = line[:4].upper()
            if verb == b"EHLO" and tls and self.trickle == "ehlo":
                return self._drip(conn)
            if verb == b"EHLO":
                conn.sendall(b"250 localhost\r\n" if tls else b"250-localhost\r\n250 STARTTLS\r\n")
            elif verb == b"STAR":
                conn.sendall(b"220 go ahead\r\n")
                conn = self._tls(conn, opened)
                lines, tls = conn.makefile("rb"), True
            elif verb == b"RCPT" and self.trickle == "rcpt":
                return self._drip(conn)
            elif verb == b"DATA":
                conn.sendall(b"354 end with .\r\n")
                if self.mid_data:
                    return self._cut_short(conn)
                message = b"".join(iter(lines.readline, b".\r\n"))
                self.messages.append(message)
                if self.trickle == "final":
                    return self._drip(conn)
                conn.sendall(b"250 queued\r\n")
            elif verb == b"QUIT":
                return conn.sendall(b"221 bye\r\n")
            else:
                conn.sendall(b"250 ok\r\n")
        return None

    def _cut_short(self, conn: socket.socket) -> None:
        """The message never read: not until the client leaves (``stall``), or reset once
        the client waits to send more of it (``drop``)."""
        if self.mid_data == "stall":
            end = time.monotonic() + TRICKLE_LIMIT
            while time.monotonic() < end and not self.stopping.is_set():
                time.sleep(PACE)
            return
        time.sleep(TIMEOUT / 2)  # the buffers full, the client blocked in its send
        # Closed with what the client sent unread, and no linger: a reset.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _tls(self, conn: socket.socket, opened: list[socket.socket]) -> socket.socket:
        opened.append(self.context.wrap_socket(conn, server_side=True))
        return opened[-1]

    def _drip(self, conn: socket.socket) -> None:
        """An endless "250-slow" reply, a byte every PACE, until the limit or the client left."""
        end = time.monotonic() + TRICKLE_LIMIT
        reply = b"250-slow\r\n"
        sent = 0
        while time.monotonic() < end and not self.stopping.is_set():
            conn.sendall(reply[sent % len(reply) : sent % len(reply) + 1])
            sent += 1
            time.sleep(PACE)


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Any]:
    servers: list[ScriptedServer] = []

    def start(trickle: str | None, **kwargs: Any) -> ScriptedServer:
        servers.append(ScriptedServer(tmp_path / f"s{len(servers)}", trickle=trickle, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def send_to(server: ScriptedServer, **options: Any) -> tuple[DeliveryError | None, float]:
    return send(server.port, server.ca_file, TIMEOUT, DEADLINE, **options)


def send(
    port: int, ca_file: Path, timeout: float, deadline: float, **options: Any
) -> tuple[DeliveryError | None, float]:
    """Send one alert by e-mail to the server on ``port`` (no login); the error, if any, and
    how long it took."""
    destination = email(
        port,
        ca_file,
        username=None,
        password=None,
        timeout_seconds=timeout,
        deadline_seconds=deadline,
        **options,
    )
    started = time.monotonic()
    try:
        destination.send(sample())
    except DeliveryError as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


@pytest.mark.parametrize(
    ("trickle", "implicit_tls"),
    [("greeting", False), ("greeting", True), ("ehlo", False), ("rcpt", True)],
)
def test_a_trickled_answer_before_the_message_ends_by_the_deadline_not_sent(
    scripted, trickle, implicit_tls
):
    server = scripted(trickle, implicit_tls=implicit_tls)
    error, took = send_to(server, security="tls" if implicit_tls else "starttls")
    assert took < DEADLINE + SLACK  # not TRICKLE_LIMIT: the server would go on for ever
    assert error is not None and error.retryable and not error.outcome_unknown
    assert f"the {DEADLINE:g} s deadline passed" in error.message
    assert "(not sent)" in error.message and server.messages == []


def test_a_trickled_final_reply_ends_by_the_deadline_as_an_unknown_outcome(scripted):
    server = scripted("final")
    error, took = send_to(server)
    assert took < DEADLINE + SLACK
    assert error is not None and error.outcome_unknown  # the server has the whole message
    assert "deadline passed after the message was sent" in error.message
    assert len(server.messages) == 1


@pytest.fixture
def small_send_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's connections with a small send buffer (the kernel's own grows to
    megabytes on loopback): a message the server stops reading fills it, as one of a few
    hundred kilobytes does on a real network."""
    connect = resolver.connect

    def small(*args: Any, **kwargs: Any) -> socket.socket:
        sock = connect(*args, **kwargs)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        return sock

    monkeypatch.setattr(resolver, "connect", small)


@pytest.mark.parametrize("mid_data", ["stall", "drop"])
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_message_cut_off_before_its_end_is_not_sent(
    scripted, small_send_buffer, mid_data, security
):
    # RFC 5321 4.1.1.4: a server takes a message at its end (CRLF.CRLF) and at no other
    # point; one whose end never left the client was never accepted. Taken for an unknown
    # outcome, it was recorded as sent, unconfirmed, under on_unknown_outcome: skip: lost.
    server = scripted(None, implicit_tls=security == "tls", mid_data=mid_data)
    destination = email(
        server.port,
        server.ca_file,
        username=None,
        password=None,
        security=security,
        timeout_seconds=TIMEOUT,
        deadline_seconds=DEADLINE,
        on_unknown_outcome="skip",
    )
    with pytest.raises(DeliveryError) as caught:
        destination.send(sample(comment="Ж" * 1500))  # 20 kB quoted-printable
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "before its end (not sent)" in caught.value.message
    assert server.messages == []


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_a_prompt_server_gets_the_alert_within_the_deadline(scripted, security):
    server = scripted(None, implicit_tls=security == "tls")
    error, _ = send_to(server, security=security)
    assert error is None
    [message] = server.messages
    assert b"X-Csat-Hook-Alert: csat-alert-0123456789abcdef01234567" in message


def test_the_real_server_takes_the_alert_with_a_tight_deadline(tmp_path):
    # STARTTLS, AUTH and the message through the deadline-armed reads and sends.
    mailbox = Mailbox()
    controller, ca_file = start_server(tmp_path / "tls", mailbox)
    try:
        email(controller.port, ca_file, timeout_seconds=2, deadline_seconds=2).send(sample())
    finally:
        controller.stop()
    assert len(mailbox.messages) == 1


def test_the_deadline_is_at_least_one_timeout():
    options = {
        "kind": "email",
        "host": "smtp.example.org",
        "sender": "alerts@example.org",
        "to": ["lead@example.org"],
        "timeout_seconds": 30,
    }
    with pytest.raises(ValidationError, match="deadline_seconds"):
        build("m", {**options, "deadline_seconds": 10})
    build("m", {**options, "deadline_seconds": 30})


@pytest.mark.parametrize(
    ("email_options", "lease", "refused"),
    [
        ({"timeout_seconds": 30}, 90, True),  # the default deadline: 3 × 30 s
        ({"timeout_seconds": 30}, 91, False),
        ({"timeout_seconds": 5, "deadline_seconds": 200}, 120, True),
        ({"timeout_seconds": 5, "deadline_seconds": 100}, 120, False),
    ],
)
def test_worker_once_refuses_an_smtp_exchange_longer_than_the_lease_naming_both(
    tmp_path, email_options, lease, refused
):
    """``worker --once`` renews no claim: it starts a send only while the lease outlasts it,
    so with such a deadline it would never send the e-mail. It refuses to start, naming the
    keys; ``check-config`` warns; a running worker (heartbeat) is not refused."""
    destination = {
        "kind": "email",
        "host": "smtp.example.org",
        "sender": "alerts@example.org",
        "to": ["lead@example.org"],
        **email_options,
    }
    path = tmp_path / "csat.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "database": {"url": f"sqlite:///{tmp_path / 'c.sqlite3'}"},
                "delivery": {"lease_seconds": lease},
                "alerts": {
                    "destinations": {"managers": destination},
                    "rules": [{"name": "low", "kind": "low_rating", "destinations": ["managers"]}],
                },
            }
        )
    )
    load_config(str(path), env={})  # loads either way

    once = CliRunner().invoke(main, ["--config", str(path), "worker", "--once"])
    checked = CliRunner().invoke(main, ["--config", str(path), "check-config"])

    said = "alerts.destinations.managers: its SMTP exchange may last"
    if refused:
        assert once.exit_code == 2, once.output
        assert said in once.output and "delivery.lease_seconds" in once.output
        assert said in checked.output
    else:
        assert once.exit_code == 0, once.output
        assert said not in checked.output


# Connecting (the host name's resolution, TCP to each address, the implicit TLS handshake)
# ends within one timeout from its start, as an HTTP request's connect does: each step had
# the whole timeout on its own (the time left of the deadline, when less), so a slow
# resolver, then every address that black-holes, then a handshake that stalls held the worker
# for a timeout each, far past the one wait for the server the timeout names.
C_TIMEOUT, C_DEADLINE = 1.0, 6.0
SLOW_LOOKUP = 0.8  # within the timeout, alone
C_SLACK = 0.4


@pytest.fixture
def resolving(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``resolving(addresses, after)``: localhost resolves to ``addresses`` (IPv4, in that
    order), the answer coming ``after`` seconds late."""
    return slow_resolution(monkeypatch, "localhost")


def send_within(port: int, ca_file: Path, security: str) -> tuple[DeliveryError | None, float]:
    return send(port, ca_file, C_TIMEOUT, C_DEADLINE, security=security)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_addresses_that_black_hole_take_one_timeout_in_all(tmp_path, resolving, security):
    # A slow look-up and three addresses: 0.8 s, then 1 s each.
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    resolving(hosts, SLOW_LOOKUP)
    ca_file, _, _ = make_certificates(tmp_path)
    with black_holes(hosts) as port:
        error, took = send_within(port, ca_file, security)
    assert error is not None and error.retryable and not error.outcome_unknown
    assert "during connect (not sent)" in error.message
    assert took < C_TIMEOUT + C_SLACK, took


def test_an_implicit_tls_handshake_that_stalls_ends_within_one_timeout(tmp_path, resolving):
    # A slow look-up (0.8 s), then the handshake: it had the whole timeout again.
    resolving(["127.0.0.1"], SLOW_LOOKUP)
    ca_file, _, _ = make_certificates(tmp_path)
    with loopback(stalled_handshake) as (url, seen):
        port = int(url.rsplit(":", 1)[1])
        error, took = send_within(port, ca_file, "tls")
    assert error is not None and error.retryable and not error.outcome_unknown
    assert "during connect (not sent)" in error.message
    assert took < C_TIMEOUT + C_SLACK, took
    assert seen and seen[0][:1] == b"\x16"  # the ClientHello, never answered
