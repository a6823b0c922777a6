"""A resolver that does not answer: ``socket.getaddrinfo`` for the names it holds blocks
until :meth:`StuckResolver.release` (then answers with loopback), as a DNS server that drops
queries or a stuck NSS module holds the C library's look-up."""

from __future__ import annotations

import socket
import threading
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
