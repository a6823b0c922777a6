"""Every exchange through the project's session ends within connect plus read timeout from
its start, however slowly the status line and headers come (not only the body)."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

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
