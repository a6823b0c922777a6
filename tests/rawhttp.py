"""HTTP over raw sockets, for what a well-behaved client library will not send: malformed
framing, bodies that stop half-way, connections that stall."""

from __future__ import annotations

import contextlib
import socket

HOST = "127.0.0.1"


def exchange(port: int, data: bytes, *, half_close: bool = False, timeout: float = 10) -> bytes:
    """Send ``data`` on a new connection and return every byte answered until the server
    closes it (or ``timeout`` seconds pass without one)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                answer += chunk
                if b"Connection: close" not in answer and _complete(answer):
                    break
        return answer


def _complete(answer: bytes) -> bool:
    """A keep-alive response is complete once its Content-Length bytes are in."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def status_of(answer: bytes) -> int | None:
    """The status of the first response in ``answer``; None when there is none."""
    if not answer.startswith(b"HTTP/1."):
        return None
    return int(answer.split(b" ", 2)[1])


def request(
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    chunked_body: bytes | None = None,
) -> bytes:
    """A request's bytes: ``body`` with its Content-Length, or ``chunked_body`` (already
    framed) with ``Transfer-Encoding: chunked``."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if chunked_body is not None:
        lines.append("Transfer-Encoding: chunked")
        payload = chunked_body
    else:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def chunked(body: bytes, size: int = 4096) -> bytes:
    """``body`` framed as chunks of ``size`` bytes, with the last chunk."""
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
    return framed + b"0\r\n\r\n"


class Stalled:
    """A connection that sends ``data`` and then nothing more (or, with ``trickle``, one byte
    each time :meth:`tick` is called), and stays open."""

    def __init__(self, port: int, data: bytes, trickle: bytes = b"") -> None:
        self.sock = socket.create_connection((HOST, port), timeout=10)
        if data:
            self.sock.sendall(data)
        self.trickle = trickle

    def tick(self) -> None:
        if self.trickle:
            with contextlib.suppress(OSError):
                self.sock.sendall(self.trickle)

    def still_waiting(self) -> bool:
        """True while the server has neither answered nor closed the connection."""
        return Stalled.is_open(self.sock)

    @staticmethod
    def is_open(sock: socket.socket) -> bool:
        """True while the server has neither sent anything more on ``sock`` nor closed it."""
        sock.setblocking(False)
        try:
            sock.recv(1, socket.MSG_PEEK)  # an answer, or b"" when closed
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            sock.setblocking(True)
        return False

    def answer(self, timeout: float) -> bytes:
        """What the server sends before it closes, waiting at most ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        answer = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := self.sock.recv(65536):
                answer += chunk
        return answer

    def close(self) -> None:
        self.sock.close()


# The ways a sender can stall (a body within the 1 KiB minimum of server.max_body_bytes):
# a body declared and never sent, a chunked body never finished, a body trickled a byte at a
# time, a head trickled a byte at a time, and nothing at all.
_POST = b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\n"
STALLS: dict[str, tuple[bytes, bytes]] = {
    "content-length": (_POST + b"Content-Length: 1000\r\n\r\n{", b""),
    "chunked": (_POST + b"Transfer-Encoding: chunked\r\n\r\n10\r\n{", b""),
    "trickled-body": (_POST + b"Content-Length: 1000\r\n\r\n", b"x"),
    "trickled-head": (_POST + b"X-Slow: ", b"x"),
    "idle": (b"", b""),
}
# A sender whose request is answered at once (413: declared over the limit) and that then
# neither reads the answer nor closes its end.
DEAF = _POST + b"Content-Length: 100000000\r\n\r\n"
