"""Every exchange through the project's session ends within connect plus read timeout from
its start, however slowly the status line and headers come (not only the body)."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.http_session import LeanSession
from csat_hook.helpdesks.transport import HttpClient
from tests.helpdesks.test_transport import loopback
from tests.helpdesks.test_transport import read_request
from tests.notify.smtp_server import make_certificates

CONNECT, READ = 0.2, 0.3
# The deadline (connect + read) plus room for a loaded machine; the trickle below takes 6 s.
BOUND = CONNECT + READ + 0.4
HEAD = b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 9\r\n"


def trickled_head(pause: float = 0.05) -> Callable[[socket.socket, list[bytes]], None]:
    """An answer whose status line and headers come one byte every ``pause`` seconds (each
    byte well within the read timeout, the whole 120 bytes far beyond it), then its body."""
    head = HEAD + b"X-Pad: " + b"p" * (120 - len(HEAD) - 11) + b"\r\n\r\n"

    def serve(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        for byte in head:
            conn.sendall(bytes([byte]))
            time.sleep(pause)
        conn.sendall(b'{"id": 1}')

    return serve


def timed(call: Callable[[], object]) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises((DeliveryError, requests.RequestException)) as caught:
        call()
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_headers_trickled_past_the_request_time_time_out(method):
    client = HttpClient(connect_timeout=CONNECT, read_timeout=READ)
    with loopback(trickled_head()) as (url, seen):
        error, took = timed(lambda: client.request(method, url + "/m", json={}))

    assert len(seen) == 1
    assert isinstance(error, DeliveryError) and error.retryable and error.http_status is None
    assert "timed out waiting for the answer" in error.message
    if method == "POST":  # the request was sent: the reply may have been stored
        assert error.outcome_unknown
    assert took < BOUND


def test_a_read_retried_in_place_is_bounded_per_attempt():
    client = HttpClient(connect_timeout=CONNECT, read_timeout=READ, sleep=lambda _: None)
    with loopback(trickled_head()) as (url, seen):
        error, took = timed(lambda: client.request("GET", url + "/m", retries=1))

    assert isinstance(error, DeliveryError) and error.retryable
    assert len(seen) == 2 and took < 2 * BOUND


@pytest.mark.parametrize("redirects", [False, True])  # LeanSession's own path and requests'
def test_the_session_bounds_every_call_not_only_the_clients(redirects):
    session = LeanSession()
    with loopback(trickled_head()) as (url, _):
        error, took = timed(
            lambda: session.get(url + "/m", timeout=(CONNECT, READ), allow_redirects=redirects)
        )

    assert isinstance(error, requests.ConnectionError | requests.Timeout)
    assert "Read timed out" in str(error)
    assert took < BOUND


def test_headers_that_come_in_time_are_read_and_the_connection_reused():
    answers = [b"Connection: keep-alive\r\n", b"Connection: close\r\n"]

    def serve(conn: socket.socket, seen: list[bytes]) -> None:
        # Two requests on one kept-alive connection; the second answer closes it, and its
        # body still arrives whole (the connection is closed while the body is unread).
        for extra in answers:
            seen.append(read_request(conn))
            conn.sendall(HEAD + extra + b"\r\n")
            time.sleep(0.05)
            conn.sendall(b'{"id": 1}')

    client = HttpClient(connect_timeout=CONNECT, read_timeout=READ)
    with loopback(serve) as (url, seen):
        first = client.request("POST", url + "/m", json={})
        second = client.request("POST", url + "/m", json={})

    assert first.json() == second.json() == {"id": 1}
    assert len(seen) == 2  # one connection served both


def test_a_slow_but_steady_answer_within_the_deadline_is_read():
    def serve(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        for part in (HEAD, b"\r\n", b'{"id": 1}'):
            time.sleep(0.1)  # three waits, each within the read timeout, all within the deadline
            conn.sendall(part)

    with loopback(serve) as (url, _):
        response = LeanSession().post(url + "/m", json={}, timeout=(CONNECT, READ))

    assert response.status_code == 201 and response.json() == {"id": 1}


def over_tls(
    serve: Callable[[socket.socket, list[bytes]], None], cert_file: Path, key_file: Path
) -> Callable[[socket.socket, list[bytes]], None]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)

    def serve_tls(conn: socket.socket, seen: list[bytes]) -> None:
        with context.wrap_socket(conn, server_side=True) as wrapped:
            serve(wrapped, seen)

    return serve_tls


def answer_at_once(conn: socket.socket, seen: list[bytes]) -> None:
    seen.append(read_request(conn))
    conn.sendall(HEAD + b"\r\n" + b'{"id": 1}')


@pytest.mark.parametrize("trickled", [True, False])
def test_https_answers_keep_the_deadline(tmp_path, monkeypatch, trickled):
    ca_file, cert_file, key_file = make_certificates(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    client = HttpClient(connect_timeout=CONNECT, read_timeout=READ)
    serve = over_tls(trickled_head() if trickled else answer_at_once, cert_file, key_file)
    with loopback(serve) as (url, _):
        url = url.replace("http://", "https://") + "/m"
        if not trickled:
            assert client.request("POST", url, json={}).json() == {"id": 1}
            return
        error, took = timed(lambda: client.request("POST", url, json={}))

    assert isinstance(error, DeliveryError) and error.outcome_unknown
    assert "timed out waiting for the answer" in error.message
    assert took < BOUND + 0.2  # and the handshake


# Sending the request keeps the deadline too. A vendor (or a middlebox) that accepts the
# connection and then takes the request slowly, through a small window: each send of it
# progressing within the socket timeout, the whole far beyond the request's time.
RCVBUF = 4096  # the vendor's receive buffer: the window it offers is that small


def slow_reader(
    stop: threading.Event | None = None, *, slow_for: float = 60.0
) -> Callable[[socket.socket, list[bytes]], None]:
    """A vendor that takes the request 4 KB every 10 ms for its first ``slow_for`` seconds,
    then as fast as it comes, and answers 201 once it is whole, or stops taking it once
    ``stop`` is set. Behind a small window (loopback's ``rcvbuf``) that is about 400 KB/s,
    once the client's socket buffers have taken their 2 MB or so. ``seen`` gets what it has
    taken so far (a bytearray that grows), whole or not."""

    def serve(conn: socket.socket, seen: list[bytes]) -> None:
        taken = bytearray()
        seen.append(taken)  # grows as it is taken
        fast_from = time.monotonic() + slow_for
        while not _whole(taken) and not (stop is not None and stop.is_set()):
            slowly = time.monotonic() < fast_from
            chunk = conn.recv(4096 if slowly else 1 << 20)
            if not chunk:
                return
            taken += chunk
            if slowly:
                time.sleep(0.01)
        if _whole(taken):
            conn.sendall(HEAD + b"\r\n" + b'{"id": 1}')

    return serve


def _whole(request: bytearray) -> bool:
    end = request.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = bytes(request[:end]).lower()
    if b"transfer-encoding: chunked" in head:
        return request.endswith(b"0\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip() == b"content-length":
            return len(request) - end - 4 >= int(value)
    return True


def pieces(count: int, size: int = 16 * 1024) -> Iterator[bytes]:
    """A body sent in ``count`` pieces (chunked: one send each)."""
    for _ in range(count):
        yield b"x" * size


def test_a_body_in_pieces_taken_slowly_ends_at_the_deadline():
    client = HttpClient(connect_timeout=CONNECT, read_timeout=READ)
    stop = threading.Event()
    # 4 MB at about 400 KB/s past what the buffers take: each 16 KB piece goes within the
    # 0.2 s a send may take, the whole would take about 5 s where the request has 0.5 s.
    with loopback(slow_reader(stop), rcvbuf=RCVBUF) as (url, seen):
        error, took = timed(lambda: client.request("POST", url + "/m", data=pieces(256)))
        stop.set()

    assert took < BOUND, took
    assert isinstance(error, DeliveryError) and error.retryable and error.http_status is None
    # The headers went out: a server may act on them before the body is in (see deadline).
    assert error.outcome_unknown
    assert "timed out sending the request (outcome unknown)" in error.message
    assert len(seen) == 1 and seen[0].startswith(b"POST /m ")
    assert not _whole(seen[0])  # and never will be: the rest was never written


# A connect that takes most of the request's time (a slow resolver, a slow TLS handshake):
# what is left of the deadline is less than the connect timeout a send may take.
LATE_CONNECT, LATE_READ = 1.5, 0.1
LATE = 0.9  # each slow step: well within the connect timeout, two of them past the deadline
LATE_BOUND = LATE_CONNECT + LATE_READ + 0.5


@pytest.fixture
def slow_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    """helpdesk.test and localhost resolve to loopback, each look-up after :data:`LATE`
    seconds."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("helpdesk.test", "localhost"):
            time.sleep(LATE)
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_reply_taken_slowly_after_a_slow_connect_ends_at_the_deadline(slow_resolver):
    client = HttpClient(connect_timeout=LATE_CONNECT, read_timeout=LATE_READ)
    text = "x" * (4 << 20)  # far more than the window and the socket buffers take
    stop = threading.Event()
    with loopback(slow_reader(stop), rcvbuf=RCVBUF) as (url, seen):
        url = url.replace("127.0.0.1", "helpdesk.test") + "/m"
        error, took = timed(lambda: client.request("POST", url, json={"text": text}))
        stop.set()

    # Not the resolver's 0.9 s and then the connect timeout's 1.5 s to send the body.
    assert took < LATE_BOUND, took
    assert isinstance(error, DeliveryError) and error.retryable and error.outcome_unknown
    assert "timed out sending the request (outcome unknown)" in error.message
    assert len(seen) == 1 and seen[0].startswith(b"POST /m ") and not _whole(seen[0])


def test_a_request_whose_time_ran_out_while_connecting_is_not_sent(
    tmp_path, monkeypatch, slow_resolver
):
    ca_file, cert_file, key_file = make_certificates(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    client = HttpClient(connect_timeout=LATE_CONNECT, read_timeout=LATE_READ)
    tls = over_tls(slow_reader(), cert_file, key_file)

    def late_handshake(conn: socket.socket, seen: list[bytes]) -> None:
        time.sleep(LATE)
        tls(conn, seen)

    with loopback(late_handshake) as (url, seen):
        url = url.replace("http://127.0.0.1", "https://localhost") + "/m"
        error, took = timed(lambda: client.request("POST", url, json={"text": "hi"}))

    # Resolving and the handshake would take 1.8 s, past the connect timeout (1.5 s): not one
    # byte of the request was sent, and connecting ended within the connect timeout (it ended
    # at 1.8 s, past the request's 1.6 s, and then the send timed out).
    assert isinstance(error, DeliveryError) and error.retryable and not error.outcome_unknown
    assert "connect timed out (not sent)" in error.message
    assert took < LATE_CONNECT + 0.25, took
    assert not any(seen)


def test_a_body_taken_slowly_but_within_the_deadline_is_sent_whole():
    # 3 MB, taken slowly for 0.8 s and then at once: sent whole within the request's 3.5 s,
    # though for the last of it less than the 3 s connect timeout was left. (A 1 s connect
    # timeout left a busy machine 0.7 s for the rest, and the test failed now and then.)
    client = HttpClient(connect_timeout=3.0, read_timeout=0.5)
    with loopback(slow_reader(slow_for=0.8), rcvbuf=RCVBUF) as (url, seen):
        response = client.request("POST", url + "/m", data=pieces(192))

    assert response.status_code == 201 and response.json() == {"id": 1}
    assert len(seen) == 1 and _whole(seen[0])
