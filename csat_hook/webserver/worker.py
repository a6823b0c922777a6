"""A gthread worker that hands a connection to a thread only once its whole request is in.

Stock gthread (gunicorn 27.0) gives each accepted connection to a pool thread at once; the
thread reads the head and the body with blocking, timeout-less ``recv()`` calls. A sender
that declares a body and stops sending holds that thread for as long as it keeps the
connection open, and ``threads`` such senders stop the worker: every other close waits.
``--timeout`` does not help (the worker's main loop stays alive), nor do more threads (any
fixed pool falls to one more stalled connection).

Here a connection waits in the worker's selector, costing a file descriptor and its buffer
but no thread, until its request (head and body) is complete; then the buffered bytes are
handed to gunicorn's own parser and the connection to a thread, as gthread would have done.
A request not complete within ``server.body_timeout_seconds`` is answered 408 and closed.
The completeness check only decides *when* to dispatch: whenever the framing is anything
but plain (a bad chunk size, two Content-Lengths, a bare LF...), the request is dispatched
at once and gunicorn or the app answers it exactly as before, so the two can never disagree
on where a request ends.

Plain HTTP/1.x only: with TLS, HTTP/2, uWSGI or the PROXY protocol the worker is stock
gthread. It relies on gthread internals (``enqueue_req``, ``murder_pending``,
``_keepalive_after``, ``TConn.initialized``/``data_ready``/``parser``,
``Unreader.take_buffered``/``unread``): gunicorn is pinned to 27.0.x and
``tests/test_webserver.py`` exercises it over real sockets.
"""

from __future__ import annotations

import contextlib
import re
import selectors
import socket
import struct
import time
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn.http.errors import ParseException
from gunicorn.workers.gthread import _DEFER
from gunicorn.workers.gthread import ThreadWorker

# Defaults until the app says otherwise (server.max_body_bytes, server.body_timeout_seconds).
MAX_BODY_BYTES = 1_048_576
REQUEST_TIMEOUT_SECONDS = 10.0
# Every socket operation left to a thread (a body dispatched incomplete, a response to a
# client that does not read) is bounded by this.
THREAD_SOCKET_TIMEOUT = 5.0
# A head without its blank line after this many bytes is refused (431).
MAX_HEAD_BYTES = 64 * 1024
# All requests being buffered in one worker together; past it a request goes to a thread
# as it is (its reads there are bounded by THREAD_SOCKET_TIMEOUT and the view's deadline).
MAX_BUFFERED_TOTAL = 64 * 1_048_576
# A chunk-size line or trailer section longer than this is dispatched for gunicorn to refuse.
MAX_LINE_BYTES = 8192
# A connection closed after its response lingers this long (and reads at most LINGER_BYTES)
# for the client to close first, so the end of the response is not lost to a reset.
LINGER_SECONDS = 2.0
LINGER_BYTES = 65536

NEED_MORE, READY, HEAD_TOO_LARGE = "more", "ready", "head too large"

_HEX = re.compile(rb"[0-9A-Fa-f]+")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _plain_response(status: str, text: str) -> bytes:
    body = text.encode() + b"\n"
    return (
        f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


_TIMED_OUT = _plain_response("408 Request Timeout", "request timeout")
_HEAD_TOO_LARGE = _plain_response("431 Request Header Fields Too Large", "request head too large")


class PendingRequest:
    """The bytes of one request read so far, and whether they are a complete request.

    :meth:`state` scans only what arrived since its last call, so a sender trickling one
    byte at a time costs O(size) in all, not O(size²).
    """

    def __init__(self, data: bytes, deadline: float, max_body: int) -> None:
        self.data = bytearray(data)
        self.deadline = deadline
        self.max_body = max_body
        self.expect_continue = False
        self.sent_continue = False
        self._scanned = 0  # head: bytes already searched for the blank line
        self._head_end: int | None = None
        self._length: int | None = None  # Content-Length framing
        # chunked framing
        self._pos = 0  # where the next chunk-size line starts
        self._decoded = 0  # data bytes of the chunks before the current one
        self._chunk_start = 0  # where the current chunk's data starts
        self._chunk_size = 0  # the current chunk's size, until it is complete
        self._resume = 0  # where to resume looking for CRLF (or CRLFCRLF)
        self._last = False  # the zero-size chunk was seen

    def state(self) -> str:
        """NEED_MORE, READY (complete, or anything gunicorn must judge) or HEAD_TOO_LARGE."""
        data = self.data
        if self._head_end is None:
            start = 2 if data[:2] == b"\r\n" else 0  # one empty line may precede a request
            end = data.find(b"\r\n\r\n", max(start, self._scanned - 3))
            if end < 0:
                lf = data.find(b"\n", self._scanned)
                self._scanned = len(data)
                if len(data) > MAX_HEAD_BYTES:
                    return HEAD_TOO_LARGE
                while lf >= 0:
                    if lf == 0 or data[lf - 1] != 0x0D:
                        return READY  # a bare LF: gunicorn refuses it at once
                    lf = data.find(b"\n", lf + 1)
                return NEED_MORE
            verdict = self._read_head(bytes(data[start:end]))
            self._head_end = self._pos = self._resume = end + 4
            if verdict is not None:
                return verdict
        if self._length is not None:
            return READY if len(data) - self._head_end >= self._length else NEED_MORE
        return self._chunked_state()

    def _read_head(self, head: bytes) -> str | None:
        """None when a body must be waited for; READY otherwise."""
        lines = head.split(b"\r\n")
        lengths: list[bytes] = []
        codings: list[bytes] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                return READY  # malformed: gunicorn answers 400
            name = name.strip().lower()
            value = value.strip()
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings.append(value.lower())
            elif name == b"expect" and value.lower() == b"100-continue":
                self.expect_continue = lines[0].endswith(b"HTTP/1.1")
        if codings:
            if lengths or len(codings) > 1 or not codings[0].endswith(b"chunked"):
                return READY  # framings gunicorn refuses
            return None
        if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
            return READY
        if not lengths:
            return READY  # no body
        self._length = int(lengths[0])
        if self._length > self.max_body:
            return READY  # the view answers 413 without reading it
        return None

    def _chunked_state(self) -> str:
        data = self.data
        while True:
            if self._last:  # after the zero-size chunk: trailers, then an empty line
                if data.find(b"\r\n\r\n", max(self._pos - 2, self._resume - 3)) >= 0:
                    return READY
                self._resume = len(data)
                return READY if len(data) - self._pos > MAX_LINE_BYTES else NEED_MORE
            if len(data) < self._pos:  # inside a chunk's data (and its CRLF)
                in_chunk = min(len(data) - self._chunk_start, self._chunk_size)
                # Over the limit once decoded: the view reads max_body + 1 bytes from the
                # buffer and answers 413 without waiting for the rest.
                return READY if self._decoded + in_chunk > self.max_body else NEED_MORE
            self._decoded += self._chunk_size
            self._chunk_size = 0
            eol = data.find(b"\r\n", max(self._pos, self._resume - 1))
            if eol < 0:
                self._resume = len(data)
                return READY if len(data) - self._pos > MAX_LINE_BYTES else NEED_MORE
            size_text = bytes(data[self._pos : eol]).split(b";", 1)[0].rstrip(b" \t")
            if not _HEX.fullmatch(size_text):
                return READY  # gunicorn raises InvalidChunkSize, the view answers 400
            size = int(size_text, 16)
            if size == 0:
                self._last = True
                self._pos = self._resume = eol + 2
                continue
            if self._decoded > self.max_body:
                return READY
            self._chunk_start = eol + 2
            self._chunk_size = size
            self._pos = self._resume = eol + 2 + size + 2


class BufferedThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gthread, with each request buffered in the worker's event loop before a thread
    serves it (see the module docstring)."""

    max_body = MAX_BODY_BYTES
    request_timeout = REQUEST_TIMEOUT_SECONDS

    def load_wsgi(self) -> None:
        super().load_wsgi()
        # The app carries the limits the view applies: buffer what it will accept.
        config = getattr(self.wsgi, "config", None)
        if isinstance(config, dict):
            self.max_body = int(config.get("MAX_CONTENT_LENGTH") or MAX_BODY_BYTES)
            self.request_timeout = float(
                config.get("CSAT_BODY_TIMEOUT_SECONDS") or REQUEST_TIMEOUT_SECONDS
            )

    def init_process(self) -> None:
        self._pending: dict[Any, tuple[Any, PendingRequest]] = {}
        self._buffered = 0
        self._lingering: dict[Any, list[float]] = {}  # sock -> [deadline, bytes drained]
        cfg = self.cfg
        self._buffering = (
            not cfg.is_ssl
            and getattr(cfg, "protocol", "http") == "http"
            and getattr(cfg, "http2_cleartext", "off") == "off"
            and getattr(cfg, "proxy_protocol", "off") in ("off", False, None)
        )
        super().init_process()

    # accept(), a kept-alive connection becoming readable and finish_request() (bytes of a
    # pipelined request already read) all hand connections to the pool through here.
    def enqueue_req(self, conn: Any) -> None:
        if not self._buffering or getattr(conn, "csat_complete", False):
            conn.csat_complete = False
            super().enqueue_req(conn)
            return
        data = b""
        if conn.parser is not None:  # kept alive: bytes read ahead come first
            data = conn.parser.unreader.take_buffered()
        conn.sock.setblocking(False)
        pending = PendingRequest(data, time.monotonic() + self.request_timeout, self.max_body)
        self._pending[conn.sock] = (conn, pending)
        self._buffered += len(data)
        if data and self._check(conn, registered=False):
            return
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _readable(self, conn: Any, _sock: Any) -> None:
        pending = self._pending[conn.sock][1]
        try:
            chunk = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the sender closed: nothing sent, close; a partial request goes on,
            if pending.data:  # and gunicorn and the view answer it (400) as they would
                self._check(conn, registered=True, dispatch_as_is=True)
            else:
                self._drop(conn, registered=True)
            return
        pending.data += chunk
        self._buffered += len(chunk)
        self._check(conn, registered=True, dispatch_as_is=self._buffered > MAX_BUFFERED_TOTAL)

    def _check(self, conn: Any, *, registered: bool, dispatch_as_is: bool = False) -> bool:
        """Dispatch the request if it is complete (or ``dispatch_as_is``); True when the
        connection left the selector (dispatched or dropped)."""
        pending = self._pending[conn.sock][1]
        state = READY if dispatch_as_is else pending.state()
        if state == NEED_MORE:
            if pending.expect_continue and not pending.sent_continue:
                pending.sent_continue = True  # gunicorn may send another: 1xx may repeat
                self._send_quietly(conn.sock, _CONTINUE)
            return False
        if state == HEAD_TOO_LARGE:
            self._send_quietly(conn.sock, _HEAD_TOO_LARGE)
            self._drop(conn, registered=registered)
            return True
        del self._pending[conn.sock]
        self._buffered -= len(pending.data)
        if registered:
            self.poller.unregister(conn.sock)
        if conn.parser is None:
            conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(pending.data))
        # handle() calls setblocking(True), which clears Python's socket timeout; the
        # kernel's SO_RCVTIMEO/SO_SNDTIMEO survive it, so no recv()/send() in the thread
        # blocks longer than THREAD_SOCKET_TIMEOUT, head included.
        seconds = int(THREAD_SOCKET_TIMEOUT)
        micros = int((THREAD_SOCKET_TIMEOUT - seconds) * 1_000_000)
        timeval = struct.pack("ll", seconds, micros)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
        conn.initialized = True  # else TConn.init() would build a parser of its own
        conn.data_ready = True  # else handle() would wait up to 5 s for a first byte
        conn.csat_complete = True
        self.enqueue_req(conn)
        return True

    @staticmethod
    def _send_quietly(sock: socket.socket, payload: bytes) -> None:
        with contextlib.suppress(OSError):
            sock.send(payload)

    def _drop(self, conn: Any, *, registered: bool) -> None:
        entry = self._pending.pop(conn.sock, None)
        if entry is not None:
            self._buffered -= len(entry[1].data)
        if registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:  # run() calls it on every turn of its loop (<= 1 s)
        super().murder_pending()
        now = time.monotonic()
        for conn, pending in list(self._pending.values()):
            if pending.deadline <= now:
                if pending.data:
                    self._send_quietly(conn.sock, _TIMED_OUT)
                self._drop(conn, registered=True)
        for sock, (deadline, _drained) in list(self._lingering.items()):
            if deadline <= now:
                self._end_linger(sock)

    def finish_request(self, conn: Any, fs: Any) -> None:
        # gthread closes a connection after its response with a graceful close that waits
        # up to 2 s for the client to close first, in this loop: a client that neither reads
        # nor closes would stop every other connection of the worker for 2 s. The same wait
        # happens here in the selector instead.
        if self._buffering and not fs.cancelled() and fs.exception() is None:
            result = fs.result()
            if result is not _DEFER and not result:
                self.nr_conns -= 1
                self._linger(conn.sock)
                return
        super().finish_request(conn, fs)

    def _linger(self, sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
            self.poller.register(sock, selectors.EVENT_READ, self._drain_lingering)
        except (OSError, ValueError, KeyError):
            with contextlib.suppress(OSError):
                sock.close()
            return
        self._lingering[sock] = [time.monotonic() + LINGER_SECONDS, 0]

    def _drain_lingering(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        entry = self._lingering[sock]
        entry[1] += len(data)
        if not data or entry[1] >= LINGER_BYTES:
            self._end_linger(sock)

    def _end_linger(self, sock: socket.socket) -> None:
        del self._lingering[sock]
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(sock)
        with contextlib.suppress(OSError):
            sock.close()

    def _keepalive_after(self, conn: Any, keepalive: bool) -> bool:
        # gunicorn drains a body the app did not read; a malformed one would make it answer
        # a second time (a 400 after the app's response) on the same connection. Close.
        try:
            return bool(super()._keepalive_after(conn, keepalive))
        except ParseException:
            return False

    def handle_request(self, req: Any, conn: Any) -> Any:
        # Body reads and response writes in the thread are bounded too.
        conn.sock.settimeout(THREAD_SOCKET_TIMEOUT)
        return super().handle_request(req, conn)
