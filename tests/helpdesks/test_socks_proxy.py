"""A helpdesk reached through a SOCKS proxy (``HTTPS_PROXY=socks5://...``, PySocks: a
dependency, ``requests[socks]``): every host name is resolved within the connect timeout, as
without a proxy. PySocks resolved the proxy's own name, and with local resolution
(``socks5://``, ``socks4://``; not ``socks5h://``) the helpdesk's, through
``socket.getaddrinfo`` without a bound: a resolver that never answered held the delivery
thread. And every exchange through one ends within connect plus read timeout from its start,
as a direct one does: a proxy that trickled its handshake or the answer, each byte within
the socket timeout, held the thread for as long as it kept trickling."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
import requests.adapters

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.transport import HttpClient
from tests.helpdesks.test_deadline import HEAD
from tests.helpdesks.test_deadline import RCVBUF
from tests.helpdesks.test_deadline import answer_at_once
from tests.helpdesks.test_deadline import over_tls
from tests.helpdesks.test_deadline import pieces
from tests.helpdesks.test_deadline import slow_reader
from tests.helpdesks.test_deadline import trickled_head
from tests.helpdesks.test_transport import loopback
from tests.helpdesks.test_transport import read_request
from tests.notify.smtp_server import make_certificates
from tests.stuck_resolver import StuckResolver
from tests.stuck_resolver import answering_helpdesk

CONNECT, READ = 0.5, 2.0
SLACK = 1.5  # scheduling on a busy machine
PATH = "/api/dialogs/D-1/messages"


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch) -> Iterator[StuckResolver]:
    fake = StuckResolver({"helpdesk.test", "socks.proxy.test"})
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    yield fake
    fake.release()


@pytest.fixture
def helpdesk() -> Iterator[tuple[int, list[str]]]:
    with answering_helpdesk() as found:
        yield found


class Socks5Proxy:
    """A SOCKS5 proxy on loopback (no authentication, CONNECT only): records each request's
    destination as sent (an address, or a name the proxy resolves: any name is loopback).

    ``handshake``: "stall" never answers the client's greeting; "trickle" sends its
    handshake one byte every ``pause`` seconds, the bound address a 255-byte name (about 13
    s in all at 0.05 s). ``trickle_answer``: what the helpdesk answers reaches the client one
    byte every ``pause`` seconds. ``trickle_request``: the proxy takes the request 4 KB every
    10 ms through a small window (about 400 KB/s), a middlebox slow to pass it on."""

    def __init__(
        self,
        *,
        handshake: str = "prompt",
        trickle_answer: bool = False,
        trickle_request: bool = False,
        pause: float = 0.05,
    ) -> None:
        self.asked: list[tuple[str, str]] = []  # ("address" | "name", value)
        self._handshake = handshake
        self._trickle_answer = trickle_answer
        self._trickle_request = trickle_request
        self._pause = pause
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        if trickle_request:  # taken by the connections accepted from now on
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        # A request the test gave up on may arrive after it ended (nothing listens then).
        with contextlib.suppress(OSError, ValueError), contextlib.ExitStack() as stack:
            stack.enter_context(client)
            reader = client.makefile("rb")
            _version, methods = reader.read(2)
            reader.read(methods)
            if self._handshake == "stall":
                self._closed.wait(30)
                return
            self._send(client, b"\x05\x00", self._handshake == "trickle")
            _v, _cmd, _rsv, kind = reader.read(4)
            if kind == 1:
                host = socket.inet_ntoa(reader.read(4))
                self.asked.append(("address", host))
            elif kind == 4:
                host = socket.inet_ntop(socket.AF_INET6, reader.read(16))
                self.asked.append(("address", host))
            else:
                name = reader.read(reader.read(1)[0]).decode()
                self.asked.append(("name", name))
                host = "127.0.0.1"
            (port,) = struct.unpack(">H", reader.read(2))
            upstream = stack.enter_context(socket.create_connection((host, port), timeout=5))
            if self._handshake == "trickle":  # bound to: a 255-byte name, slowly
                self._send(client, b"\x05\x00\x00\x03\xff" + b"a" * 255 + bytes(2), True)
            else:
                client.sendall(b"\x05\x00\x00\x01" + bytes(6))  # bound to: unspecified
            relay = threading.Thread(target=self._pipe_back, args=(upstream, client), daemon=True)
            relay.start()
            if self._trickle_request:
                while not self._closed.wait(0.01) and (data := client.recv(4096)):
                    upstream.sendall(data)
                upstream.shutdown(socket.SHUT_WR)
            else:
                _pipe(client, upstream)
            relay.join(5)

    def _send(self, client: socket.socket, data: bytes, slowly: bool) -> None:
        if not slowly:
            client.sendall(data)
            return
        for byte in data:
            if self._closed.wait(self._pause):
                return
            client.sendall(bytes([byte]))

    def _pipe_back(self, upstream: socket.socket, client: socket.socket) -> None:
        if not self._trickle_answer:
            _pipe(upstream, client)
            return
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                self._send(client, data, True)

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[Socks5Proxy]:
    fake = Socks5Proxy()
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield fake
    fake.close()


def _through(monkeypatch: pytest.MonkeyPatch, proxy_url: str) -> HttpClient:
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    monkeypatch.setenv("http_proxy", proxy_url)
    return HttpClient(connect_timeout=CONNECT, read_timeout=READ)


def _not_sent_in_time(client: HttpClient, url: str) -> None:
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        client.request("POST", url, json={"text": "hi"})
    took = time.monotonic() - started
    assert took < CONNECT + SLACK, took
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "not sent" in str(caught.value)


def _run(call: Any, wait: float) -> None:
    """``call()`` on a thread, failing the test (not hanging it) past ``wait`` seconds."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(wait)
    assert not thread.is_alive(), "the request waited for the resolver"
    if errors:
        raise errors[0]


def test_local_resolution_of_the_helpdesk_is_bounded(stuck, helpdesk, proxy, monkeypatch):
    port, seen = helpdesk
    client = _through(monkeypatch, f"socks5://127.0.0.1:{proxy.port}")
    url = f"http://helpdesk.test:{port}{PATH}"
    _run(lambda: _not_sent_in_time(client, url), CONNECT + SLACK + 1)
    assert seen == [] and proxy.asked == []

    stuck.release()
    assert client.request("POST", url, json={"text": "hi"}).status_code == 201
    assert seen == [PATH]
    # Still resolved here (socks5://, not socks5h://): the proxy was given the address.
    assert proxy.asked == [("address", "127.0.0.1")]


def test_the_proxys_own_name_is_resolved_within_the_timeout(stuck, helpdesk, proxy, monkeypatch):
    port, seen = helpdesk
    client = _through(monkeypatch, f"socks5h://socks.proxy.test:{proxy.port}")
    url = f"http://helpdesk.test:{port}{PATH}"
    _run(lambda: _not_sent_in_time(client, url), CONNECT + SLACK + 1)
    assert seen == [] and proxy.asked == []

    stuck.release()
    assert client.request("POST", url, json={"text": "hi"}).status_code == 201
    assert seen == [PATH]
    assert proxy.asked == [("name", "helpdesk.test")]  # socks5h://: the proxy resolves it


def test_remote_resolution_looks_nothing_up_here(stuck, helpdesk, proxy, monkeypatch):
    port, seen = helpdesk
    client = _through(monkeypatch, f"socks5h://127.0.0.1:{proxy.port}")
    response = client.request("POST", f"http://helpdesk.test:{port}{PATH}", json={"text": "hi"})
    assert response.status_code == 201 and seen == [PATH]
    assert proxy.asked == [("name", "helpdesk.test")]
    assert stuck.lookups == 0


# The deadline through a proxy: short timeouts, each trickled byte well within them.
D_CONNECT, D_READ = 0.3, 0.5
DEADLINE_SLACK = 0.5  # scheduling on a busy machine


@pytest.fixture
def socks(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., tuple[Socks5Proxy, HttpClient]]]:
    """Makes a proxy (``Socks5Proxy``'s options) and a client sending through it."""
    made: list[Socks5Proxy] = []

    def make(
        scheme: str = "socks5h",
        timeouts: tuple[float, float] = (D_CONNECT, D_READ),
        proxy_host: str = "127.0.0.1",
        **options: Any,
    ) -> tuple[Socks5Proxy, HttpClient]:
        fake = Socks5Proxy(**options)
        made.append(fake)
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(name, f"{scheme}://{proxy_host}:{fake.port}")
        connect, read = timeouts
        return fake, HttpClient(connect_timeout=connect, read_timeout=read)

    yield make
    for fake in made:
        fake.close()


def _failed_post(client: HttpClient, url: str, **body: Any) -> tuple[DeliveryError, float]:
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        client.request("POST", url, **(body or {"json": {"text": "hi"}}))
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize(
    ("scheme", "host"), [("socks5", "127.0.0.1"), ("socks5h", "helpdesk.test")]
)
def test_an_answer_the_proxy_trickles_ends_at_the_deadline(helpdesk, socks, scheme, host):
    port, seen = helpdesk
    _, client = socks(scheme, trickle_answer=True)  # the whole answer: about 8 s

    error, took = _failed_post(client, f"http://{host}:{port}{PATH}")

    assert seen == [PATH]  # the helpdesk took it: the reply may be stored
    assert error.retryable and error.outcome_unknown and error.http_status is None
    assert "timed out waiting for the answer" in error.message
    assert took < D_CONNECT + D_READ + DEADLINE_SLACK, took


@pytest.mark.parametrize("handshake", ["trickle", "stall"])
def test_a_handshake_that_does_not_end_is_a_connect_timeout(helpdesk, socks, handshake):
    port, seen = helpdesk
    _, client = socks(handshake=handshake)  # trickled: about 13 s

    error, took = _failed_post(client, f"http://helpdesk.test:{port}{PATH}")

    assert seen == []
    assert error.retryable and not error.outcome_unknown
    assert "connect timed out (not sent)" in error.message
    # Connecting through the proxy, its handshake included, takes at most the connect timeout.
    assert took < D_CONNECT + DEADLINE_SLACK, took


def test_an_answer_the_proxy_trickles_within_the_deadline_is_read(helpdesk, socks):
    port, seen = helpdesk
    # About 420 bytes, each after 1 ms: 0.5 s or so, within 2 s to connect and 2 s to answer.
    _, client = socks(timeouts=(2.0, 2.0), handshake="trickle", trickle_answer=True, pause=0.001)

    response = client.request("POST", f"http://helpdesk.test:{port}{PATH}", json={"text": "hi"})

    assert response.status_code == 201 and response.json() == {"id": 1}
    assert seen == [PATH]


def test_a_kept_alive_connection_through_the_proxy_serves_the_next_request(socks):
    def serve(conn: socket.socket, seen: list[bytes]) -> None:
        for extra in (b"Connection: keep-alive\r\n", b"Connection: close\r\n"):
            seen.append(read_request(conn))
            conn.sendall(HEAD + extra + b"\r\n")
            time.sleep(0.05)
            conn.sendall(b'{"id": 1}')

    proxy, client = socks()
    with loopback(serve) as (url, seen):
        url = url.replace("127.0.0.1", "helpdesk.test") + PATH
        first = client.request("POST", url, json={})
        second = client.request("POST", url, json={})

    assert first.json() == second.json() == {"id": 1}
    assert len(seen) == 2 and proxy.asked == [("name", "helpdesk.test")]  # one connection


@pytest.mark.parametrize("trickled", [False, True])
def test_https_through_the_proxy_keeps_the_deadline(tmp_path, monkeypatch, socks, trickled):
    ca_file, cert_file, key_file = make_certificates(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    proxy, client = socks()
    serve = over_tls(trickled_head() if trickled else answer_at_once, cert_file, key_file)
    with loopback(serve) as (url, seen):
        url = url.replace("http://127.0.0.1", "https://localhost") + PATH
        if not trickled:
            assert client.request("POST", url, json={}).json() == {"id": 1}
            assert proxy.asked == [("name", "localhost")]  # the proxy resolved it
            return
        error, took = _failed_post(client, url)

    assert len(seen) == 1
    assert error.retryable and error.outcome_unknown
    assert "timed out waiting for the answer" in error.message
    assert took < D_CONNECT + D_READ + DEADLINE_SLACK, took


# Connecting through the proxy ends within the connect timeout in all: the proxy's name
# looked up slowly (0.8 s, within the 1 s connect timeout alone), then the proxy's handshake
# or the helpdesk's TLS handshake through it stalling. Each step had the whole connect
# timeout on its own: about 1.8 s.
C_CONNECT, C_READ = 1.0, 3.0
SLOW_LOOKUP = 0.8
C_SLACK = 0.4


@pytest.fixture
def slow_proxy_name(monkeypatch: pytest.MonkeyPatch) -> str:
    """A name for the proxy that resolves to loopback, :data:`SLOW_LOOKUP` seconds late."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "socks.proxy.test":
            time.sleep(SLOW_LOOKUP)
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return "socks.proxy.test"


def test_a_slow_look_up_then_a_stalled_proxy_end_within_the_connect_timeout(
    helpdesk, socks, slow_proxy_name
):
    port, seen = helpdesk
    _, client = socks(timeouts=(C_CONNECT, C_READ), proxy_host=slow_proxy_name, handshake="stall")

    error, took = _failed_post(client, f"http://helpdesk.test:{port}{PATH}")

    assert seen == []
    assert error.retryable and not error.outcome_unknown
    assert "connect timed out (not sent)" in error.message
    assert took < C_CONNECT + C_SLACK, took


def test_a_tls_handshake_through_the_proxy_ends_within_the_connect_timeout(
    tmp_path, monkeypatch, socks, slow_proxy_name
):
    ca_file, _, _ = make_certificates(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
    proxy, client = socks(timeouts=(C_CONNECT, C_READ), proxy_host=slow_proxy_name)

    def stalled_handshake(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(conn.recv(65536))  # the ClientHello, never answered
        time.sleep(C_CONNECT + SLOW_LOOKUP + 1)

    with loopback(stalled_handshake) as (url, seen):
        url = url.replace("http://127.0.0.1", "https://localhost") + PATH
        error, took = _failed_post(client, url)

    assert proxy.asked == [("name", "localhost")]
    assert seen and seen[0][:1] == b"\x16"  # a TLS record: nothing of the request
    assert error.retryable and not error.outcome_unknown
    assert "(not sent)" in error.message
    assert took < C_CONNECT + C_SLACK, took


def test_without_pysocks_the_error_names_the_proxy_setting():
    """PySocks is a dependency (requests[socks]); an install without it fails each request
    through a SOCKS proxy before sending, and says why: retryable, not sent (installing
    PySocks, or fixing the variable, and restarting lets what waits go out)."""
    script = "\n".join(
        [
            "import sys",
            "sys.modules['socks'] = None  # PySocks not installed",
            "from csat_hook.errors import DeliveryError",
            "from csat_hook.helpdesks.transport import HttpClient",
            "try:",
            "    HttpClient().request('POST', 'http://helpdesk.test/api', json={})",
            "except DeliveryError as exc:",
            "    print(exc.retryable, exc.outcome_unknown, exc.message)",
        ]
    )
    env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    env["HTTP_PROXY"] = "socks5h://127.0.0.1:9"  # loopback's discard port: never reached
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "True False POST helpdesk.test: not sent: HTTP_PROXY is a SOCKS proxy, which needs "
        "PySocks, not installed (install requests[socks])"
    )


def without_pysocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """As an install without PySocks is: requests has no SOCKS manager, ``socks`` no module."""

    def missing(*_args: Any, **_kwargs: Any) -> None:
        # requests' own stand-in when urllib3.contrib.socks cannot be imported.
        raise requests.exceptions.InvalidSchema("Missing dependencies for SOCKS support.")

    monkeypatch.setitem(sys.modules, "socks", None)
    monkeypatch.setattr(requests.adapters, "SOCKSProxyManager", missing)


def test_without_pysocks_a_read_is_not_retried_in_place(monkeypatch):
    """Retryable, but by the outbox later: this process fails the same way until it is
    restarted, so an agent look-up's in-place retries would only hold the reply."""
    without_pysocks(monkeypatch)
    env = [name for name in os.environ if name.lower().endswith("_proxy")]
    for name in env:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HTTP_PROXY", "socks5h://127.0.0.1:9")  # never reached
    slept: list[float] = []
    client = HttpClient(connect_timeout=CONNECT, read_timeout=READ, sleep=slept.append)

    with pytest.raises(DeliveryError) as caught:
        client.request("GET", "http://helpdesk.test/api/agents/7", retries=2)

    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "HTTP_PROXY is a SOCKS proxy" in caught.value.message
    assert slept == []


def test_a_body_the_proxy_takes_slowly_ends_at_the_deadline(socks):
    """Sending the request through the proxy keeps the deadline, as a direct one does: each
    send of the body progressing within the socket timeout, the whole far beyond."""
    proxy, client = socks(trickle_request=True)
    stop = threading.Event()
    # 4 MB: each 16 KB piece goes within the 0.3 s a send may take, the whole about 5 s
    # past what the buffers take.
    with loopback(slow_reader(stop, slow_for=0)) as (url, seen):
        url = url.replace("127.0.0.1", "helpdesk.test") + PATH
        error, took = _failed_post(client, url, data=pieces(256))
        stop.set()

    assert took < D_CONNECT + D_READ + DEADLINE_SLACK, took
    assert error.retryable and error.outcome_unknown and error.http_status is None
    assert "timed out sending the request (outcome unknown)" in error.message
    assert proxy.asked == [("name", "helpdesk.test")]
    assert len(seen) == 1 and seen[0].startswith(f"POST {PATH} ".encode())
