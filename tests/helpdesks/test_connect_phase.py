"""Connecting (the name's resolution, TCP to each address it resolves to, the TLS handshake)
ends within the connect timeout from the request's start, as "not sent". Each step was
bounded by the connect timeout on its own: a slow resolver, then every address that
black-holes, then a handshake that stalls, each took a whole connect timeout, about 3 × it
(more with more addresses) before the request gave up, holding the delivery thread."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.transport import HttpClient
from tests.helpdesks.test_transport import loopback
from tests.notify.smtp_server import make_certificates
from tests.stuck_resolver import answering_helpdesk

CONNECT, READ = 1.0, 3.0
SLACK = 0.4  # scheduling on a busy machine; each case took at least 0.8 s more before
SLOW_LOOKUP = 0.8  # within the connect timeout, alone
NAME = "helpdesk.test"


@contextlib.contextmanager
def black_holes(hosts: list[str], port: int = 0) -> Iterator[int]:
    """A port (``port``, or any) on which each of ``hosts`` (loopback addresses) drops every
    connection's SYN: a listener whose backlog one connection, never accepted, fills (Linux
    drops SYNs once the backlog is full), as a firewall that drops packets does."""
    opened: list[socket.socket] = []
    try:
        for host in hosts:
            listener = socket.socket()
            opened.append(listener)
            listener.bind((host, port))
            listener.listen(0)
            port = listener.getsockname()[1]
            opened.append(socket.create_connection((host, port), timeout=1))  # the backlog
        yield port
    finally:
        for each in opened:
            each.close()


def slow_resolution(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> Callable[[list[str], float], None]:
    """``install(addresses, after)``: ``name`` resolves to ``addresses`` (IPv4, in that
    order), the answer coming ``after`` seconds late; any other name as before."""

    def install(addresses: list[str], after: float) -> None:
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != name:
                return real(host, port, *args, **kwargs)
            time.sleep(after)
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))
                for address in addresses
            ]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    return install


@pytest.fixture
def resolving(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[str], float], None]:
    """``resolving(addresses, after)``: :data:`NAME` resolves so (:func:`slow_resolution`)."""
    return slow_resolution(monkeypatch, NAME)


def failed(client: HttpClient, url: str) -> tuple[DeliveryError, float]:
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        client.request("POST", url, json={"text": "hi"})
    return caught.value, time.monotonic() - started


def assert_not_sent(error: DeliveryError) -> None:
    assert error.retryable and not error.outcome_unknown and error.http_status is None
    assert "(not sent)" in error.message, error.message


@pytest.mark.parametrize("after", [0.0, SLOW_LOOKUP])
def test_addresses_that_black_hole_take_the_connect_timeout_in_all(resolving, after):
    # Three addresses: each took the whole connect timeout, 3 s after the look-up.
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    resolving(hosts, after)
    client = HttpClient(connect_timeout=CONNECT, read_timeout=READ)
    with black_holes(hosts) as port:
        error, took = failed(client, f"http://{NAME}:{port}/m")
    assert_not_sent(error)
    assert "connect timed out" in error.message
    assert took < CONNECT + SLACK, took


def test_an_address_that_black_holes_leaves_time_for_the_next(resolving):
    # The connect timeout is shared among the addresses: the first (an IPv6 route that drops
    # packets, say) does not take it all, and the next one answers within it.
    connect = 2.0
    resolving(["127.0.0.2", "127.0.0.1"], 0.0)
    client = HttpClient(connect_timeout=connect, read_timeout=READ)
    with answering_helpdesk() as (port, seen), black_holes(["127.0.0.2"], port):
        started = time.monotonic()
        response = client.request("POST", f"http://{NAME}:{port}/m", json={"text": "hi"})
        took = time.monotonic() - started
    assert response.status_code == 201 and seen == ["/m"]
    # Half of the connect timeout on the first address, then the second: not 2 s and then it.
    assert took < connect / 2 + SLACK, took


def stalled_handshake(conn: socket.socket, seen: list[bytes]) -> None:
    """Takes the TCP connection and never answers the TLS ClientHello."""
    seen.append(conn.recv(65536))
    time.sleep(CONNECT + SLOW_LOOKUP + 1)


@pytest.mark.parametrize("after", [0.0, SLOW_LOOKUP])
def test_a_tls_handshake_that_stalls_ends_within_the_connect_timeout(
    tmp_path, monkeypatch, resolving, after
):
    # A slow look-up (0.8 s), then the handshake: it had the whole connect timeout again.
    ca_file, _, _ = make_certificates(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    resolving(["127.0.0.1"], after)
    client = HttpClient(connect_timeout=CONNECT, read_timeout=READ)
    with loopback(stalled_handshake) as (url, seen):
        url = url.replace("http://127.0.0.1", f"https://{NAME}") + "/m"
        error, took = failed(client, url)
    assert_not_sent(error)
    assert "connect timed out" in error.message  # urllib3 said a read timed out
    assert took < CONNECT + SLACK, took
    assert seen and seen[0][:1] == b"\x16"  # the ClientHello, and nothing of the request


def proxy_answering(how: str) -> Callable[[socket.socket, list[bytes]], None]:
    """An HTTP proxy that reads a CONNECT and then ``how``: "stalls" (never answers it) or
    "trickles" (its 200 one byte every 0.05 s, each in time, about 5 s in all)."""

    def serve(conn: socket.socket, seen: list[bytes]) -> None:
        request = b""
        while b"\r\n\r\n" not in request and (chunk := conn.recv(65536)):
            request += chunk
        seen.append(request)
        if how == "stalls":
            time.sleep(CONNECT + SLOW_LOOKUP + 1)
            return
        for byte in b"HTTP/1.1 200 Connection established\r\nX-Pad: " + b"p" * 60 + b"\r\n\r\n":
            conn.sendall(bytes([byte]))
            time.sleep(0.05)

    return serve


@pytest.mark.parametrize("how", ["stalls", "trickles"])
def test_an_http_proxys_tunnel_ends_within_the_connect_timeout(monkeypatch, resolving, how):
    # The proxy's name looked up slowly (0.8 s), then its answer to CONNECT: each receive had
    # the connect timeout, the whole answer the request's time (4 s).
    resolving(["127.0.0.1"], SLOW_LOOKUP)
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    client = HttpClient(connect_timeout=CONNECT, read_timeout=READ)
    with loopback(proxy_answering(how)) as (url, seen):
        for name in ("HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(name, url.replace("127.0.0.1", NAME))
        error, took = failed(client, "https://api.helpdesk.example/m")
    assert seen and seen[0].startswith(b"CONNECT api.helpdesk.example:443 ")
    assert_not_sent(error)
    assert took < CONNECT + SLACK, took
