"""An SMTP client whose whole exchange ends by a deadline.

smtplib's ``timeout`` bounds each socket operation, and it reads replies through a buffered
file that calls ``recv`` again for every chunk: a server (or a man in the middle) that sends
its greeting, its EHLO answer or its final ``250`` one byte at a time, each just under the
timeout, keeps the client (and the worker thread) waiting for as long as it likes.
:class:`DeadlineSMTP` arms the socket before every ``recv`` and ``send`` with the time left
(at most the per-operation timeout), and fails with :class:`TimeoutError` once none is left:

* the connection: the host name's resolution, then each address it resolves to (sharing
  what is left: :mod:`csat_hook.resolver`) and, for implicit TLS, its handshake, all within
  one timeout from its start (one wait for the server, as an HTTP request's connect timeout
  bounds its connecting): each step had a whole timeout on its own, a slow resolver and a
  stalled handshake held the worker for two, every address that black-holed one more;
* every reply line (read here, not through ``makefile``);
* every command and the message (sent here, not through ``sendall``, whose TLS form re-arms
  the timeout per chunk);
* the STARTTLS handshake: it runs in ``wrap_socket`` right after the ``220`` was read, with
  the timeout armed for that read; CPython bounds a whole handshake by the socket's timeout.

smtplib turns an ``OSError`` while reading or sending into :class:`smtplib.SMTPServerDisconnected`
and closes the connection; :attr:`Deadline.passed` tells the caller that the deadline was why.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from csat_hook import resolver

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

CHUNK = 8192


class Deadline:
    """``seconds`` from now, on the monotonic clock."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def left(self) -> float:
        return self._end - self._clock()

    @property
    def passed(self) -> bool:
        return self.left() <= 0


class DeadlineSMTP(smtplib.SMTP):
    """:class:`smtplib.SMTP` (connected on creation, as smtplib's is) whose every socket
    operation waits at most ``timeout`` and never past ``deadline``; ``tls``: implicit TLS
    (port 465) with that context, else a plain connection (STARTTLS as smtplib does it)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float,
        deadline: Deadline,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._deadline = deadline
        self._tls = tls
        super().__init__(host, port, timeout=timeout)

    def _wait(self) -> float:
        """The timeout for the next socket operation; TimeoutError once the deadline passed."""
        left = self._deadline.left()
        if left <= 0:
            raise TimeoutError(f"the SMTP deadline ({self._deadline.seconds:g} s) passed")
        return min(self.timeout, left)

    # smtplib's hook for SMTP_SSL; the timeout it passes is the per-operation one.
    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        wait = self._wait()
        end = time.monotonic() + wait  # connecting, the TLS handshake included, ends by it
        sock = resolver.connect(host, port, wait, source_address=self.source_address)
        if self._tls is None:
            return sock
        try:
            sock.settimeout(min(resolver.time_left(end), self._wait()))
            return self._tls.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _Lines(self.sock, self._wait)
        return super().getreply()

    def send(self, s: ReadableBuffer | str) -> None:
        if self.sock is None:
            super().send(s)  # raises "please run connect() first"
            return
        data = s.encode(self.command_encoding) if isinstance(s, str) else bytes(s)
        try:
            with memoryview(data) as view:
                sent = 0
                while sent < len(view):
                    self.sock.settimeout(self._wait())
                    sent += self.sock.send(view[sent:])
        except OSError as exc:
            self.close()
            raise smtplib.SMTPServerDisconnected("Server not connected") from exc


class _Lines:
    """What smtplib's ``getreply`` reads lines from (in place of ``sock.makefile("rb")``):
    each ``recv`` is armed by ``wait``. Dropped by smtplib at STARTTLS, with whatever was
    buffered past the ``220`` (nothing sent in clear is read as if it came over TLS)."""

    def __init__(self, sock: socket.socket, wait: Callable[[], float]) -> None:
        self._sock = sock
        self._wait = wait
        self._buffer = bytearray()

    def readline(self, limit: int) -> bytes:
        """A line with its ``\\n``, or ``limit`` bytes of one; what is left at the end of the
        stream (``b""``: the server closed it)."""
        while True:
            end = self._buffer.find(b"\n", 0, limit)
            if end >= 0 or len(self._buffer) >= limit:
                cut = end + 1 if end >= 0 else limit
                line = bytes(self._buffer[:cut])
                del self._buffer[:cut]
                return line
            self._sock.settimeout(self._wait())
            chunk = self._sock.recv(CHUNK)
            if not chunk:
                line = bytes(self._buffer)
                self._buffer.clear()
                return line
            self._buffer += chunk

    def close(self) -> None:
        self._buffer.clear()
