"""A resolver that does not answer: ``socket.getaddrinfo`` for the names it holds blocks
until :meth:`StuckResolver.release` (then answers with loopback), as a DNS server that drops
queries or a stuck NSS module holds the C library's look-up."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any


class StuckResolver:
    def __init__(self, names: set[str]) -> None:
        self.names = names
        self.released = threading.Event()
        self.lookups = 0  # of the held names, started
        self._real = socket.getaddrinfo

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in self.names:
            self.lookups += 1
            self.released.wait(30)
            host = "127.0.0.1"
        return self._real(host, port, *args, **kwargs)

    def release(self) -> None:
        self.released.set()


@contextlib.contextmanager
def answering_helpdesk() -> Iterator[tuple[int, list[str]]]:
    """A loopback helpdesk that answers every POST ``201 {"id": 1}``: its port, and the paths
    it was sent (what got through once the names resolved)."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.path)
            body = b'{"id": 1}'
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd.server_address[1], seen
    finally:
        httpd.shutdown()
        httpd.server_close()
