"""A helpdesk reached through a SOCKS proxy (``HTTPS_PROXY=socks5://...``, PySocks installed):
every host name is resolved within the connect timeout, as without a proxy. PySocks resolved
the proxy's own name, and with local resolution (``socks5://``, ``socks4://``; not
``socks5h://``) the helpdesk's, through ``socket.getaddrinfo`` without a bound: a resolver
that never answered held the delivery thread."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.transport import HttpClient
from tests.stuck_resolver import StuckResolver
from tests.stuck_resolver import answering_helpdesk

pytest.importorskip("socks")  # PySocks: SOCKS proxies need it (requests[socks])

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
    destination as sent (an address, or a name the proxy resolves: any name is loopback)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []  # ("address" | "name", value)
        self._listener = socket.create_server(("127.0.0.1", 0))
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
            client.sendall(b"\x05\x00")
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
            client.sendall(b"\x05\x00\x00\x01" + bytes(6))  # bound to: unspecified
            relay = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
            relay.start()
            _pipe(client, upstream)
            relay.join(5)

    def close(self) -> None:
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
