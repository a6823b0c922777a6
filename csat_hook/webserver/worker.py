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
A request not complete within ``server.body_timeout_seconds`` is answered 408 and closed;
one whose head is over 64 KiB is answered 431, and one whose chunk sizes add up to more than
``server.max_body_bytes`` 413, as soon as that is known (as is a Content-Length over it that
expects ``100-continue``: the sender is told before it sends the body), and one whose
chunk-size line ends in a bare LF 400 (gunicorn would wait for a CRLF). At gunicorn's
connection cap (``worker_connections``), with a connection waiting, the kept-alive
connections idle longest give way, then the requests that have been arriving longest (408),
so connections that send nothing, or nothing after one request, cannot keep every close
out (:meth:`BufferedThreadWorker._make_room`). Each of these
answers is logged as gunicorn's refusals are (the address and the status line only), and
has its access-log line (:meth:`BufferedThreadWorker._log_access`), as the app's answers do.
The completeness check only decides *when* to dispatch: whenever the framing is anything
but plain (a bad chunk size, two Content-Lengths, a bare LF...), the request is dispatched
at once and gunicorn or the app answers it exactly as before, so the two can never disagree
on where a request ends.

Plain HTTP/1.x only: with TLS, HTTP/2, uWSGI or the PROXY protocol the worker is stock
gthread. It relies on gthread internals (``enqueue_req``, ``murder_pending``,
``_keepalive_after``, ``TConn.initialized``/``data_ready``/``parser``,
``Unreader.take_buffered``/``unread``): gunicorn is pinned to 27.0.x and
``tests/webserver/`` exercises it over real sockets; the request framing is in
:mod:`csat_hook.webserver.pending`.
"""

from __future__ import annotations

import contextlib
import heapq
import re
import select
import selectors
import socket
import struct
import time
from collections import deque
from datetime import datetime
from datetime import timedelta
from functools import partial
from ssl import SSLError
from typing import Any
from typing import NamedTuple

from gunicorn import http
from gunicorn import util
from gunicorn.http import errors
from gunicorn.http.errors import ParseException
from gunicorn.http.wsgi import Response
from gunicorn.http.wsgi import default_environ
from gunicorn.workers.gthread import _DEFER
from gunicorn.workers.gthread import TConn
from gunicorn.workers.gthread import ThreadWorker

from csat_hook.webserver.pending import BAD_FRAMING
from csat_hook.webserver.pending import BAD_FRAMING_ANSWER
from csat_hook.webserver.pending import BODY_TOO_LARGE
from csat_hook.webserver.pending import CONTINUE_ANSWER
from csat_hook.webserver.pending import HEAD_TIMED_OUT_ANSWER
from csat_hook.webserver.pending import HEAD_TOO_LARGE
from csat_hook.webserver.pending import HEAD_TOO_LARGE_ANSWER
from csat_hook.webserver.pending import LINGER_BYTES
from csat_hook.webserver.pending import LINGER_SECONDS
from csat_hook.webserver.pending import MAX_BODY_BYTES
from csat_hook.webserver.pending import MAX_BUFFERED_TOTAL
from csat_hook.webserver.pending import NEED_MORE
from csat_hook.webserver.pending import READY
from csat_hook.webserver.pending import REQUEST_TIMEOUT_SECONDS
from csat_hook.webserver.pending import THREAD_SOCKET_TIMEOUT
from csat_hook.webserver.pending import TIMED_OUT_ANSWER
from csat_hook.webserver.pending import PendingRequest
from csat_hook.webserver.pending import body_too_large_answer
from csat_hook.webserver.pending import json_answer

# gunicorn's own refusals, answered in the app's JSON shape with a fixed reason: gunicorn's
# page repeated the request line, the header or the bytes it refused (HTML-escaped, but
# the sender's text all the same). (exception classes, status, error code, reason); a
# request gunicorn cannot parse that is in none of these is a 400 "bad_request".
_REFUSALS: tuple[tuple[tuple[type[BaseException], ...], str, str, str], ...] = (
    (
        (errors.LimitRequestLine,),
        "414 URI Too Long",
        "uri_too_long",
        "the request line is too long",
    ),
    (
        (errors.LimitRequestHeaders,),
        "431 Request Header Fields Too Large",
        "request_header_fields_too_large",
        "the request head is too large",
    ),
    (
        # gunicorn answered 501 (a server error, which senders retry): the view's 415 for
        # "gzip, chunked", to a coding it does not know or one with parameters too.
        (errors.UnsupportedTransferCoding,),
        "415 Unsupported Media Type",
        "unsupported_encoding",
        "a Transfer-Encoding other than chunked is not accepted",
    ),
    (
        (errors.ExpectationFailed,),
        "417 Expectation Failed",
        "expectation_failed",
        "the only expectation accepted is 100-continue",
    ),
    (
        (errors.InvalidRequestLine, errors.InvalidRequestMethod, errors.InvalidHTTPVersion),
        "400 Bad Request",
        "bad_request",
        "malformed request line",
    ),
    (
        (errors.InvalidHeader, errors.InvalidHeaderName, errors.ObsoleteFolding),
        "400 Bad Request",
        "bad_request",
        "malformed header",
    ),
    (
        (errors.InvalidChunkSize, errors.ChunkMissingTerminator, errors.InvalidChunkExtension),
        "400 Bad Request",
        "bad_framing",
        "malformed request body",
    ),
    (
        (errors.ForbiddenProxyRequest, SSLError),
        "403 Forbidden",
        "forbidden",
        "request forbidden",
    ),
)
_SERVER_ERRORS = (
    errors.ConfigurationProblem,
    errors.InvalidResponseHeader,
    errors.InvalidResponseHeaderName,
)
_INTERNAL_ERROR = ("500 Internal Server Error", "internal_error", "unexpected server error")
# At the connection cap, this share of it is made free at a time (BufferedThreadWorker
# ._make_room): 100 of gunicorn's default 1000.
ROOM_SHARE = 0.1


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
        self._check(conn, registered=True, over_cap=self._buffered > MAX_BUFFERED_TOTAL)

    def _check(
        self, conn: Any, *, registered: bool, dispatch_as_is: bool = False, over_cap: bool = False
    ) -> bool:
        """Dispatch the request if it is complete (or ``dispatch_as_is``, or ``over_cap``
        with its head complete); True when the connection left the selector (dispatched or
        dropped)."""
        pending = self._pending[conn.sock][1]
        state = READY if dispatch_as_is else pending.state()
        if state == NEED_MORE and over_cap and pending.head_complete:
            # Over the buffer cap a body is read in the thread, bounded by the view's
            # deadline. Never a head: gunicorn's parser reads one with no deadline (each
            # recv() waits THREAD_SOCKET_TIMEOUT), so a byte every few seconds held the
            # thread for good. Heads stay here, each at most MAX_HEAD_BYTES.
            state = READY
        if state == NEED_MORE:
            if pending.expect_continue and not pending.sent_continue:
                pending.sent_continue = True  # gunicorn may send another: 1xx may repeat
                self._send_quietly(conn.sock, CONTINUE_ANSWER)
            return False
        if state in (HEAD_TOO_LARGE, BODY_TOO_LARGE, BAD_FRAMING):
            if state == HEAD_TOO_LARGE:
                answer = HEAD_TOO_LARGE_ANSWER
            elif state == BAD_FRAMING:
                answer = BAD_FRAMING_ANSWER
            else:
                answer = body_too_large_answer(self.max_body)
            self._drop(conn, registered=registered, answer=answer)
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

    def _drop(self, conn: Any, *, registered: bool, answer: bytes | None = None) -> None:
        """Forget a request not handed to a thread and close its connection; with an
        ``answer``, send it first and close as after a response (:meth:`_linger`): a sender
        still sending (the rest of its head, a chunk's data) would otherwise have its unread
        bytes reset the connection, and the answer be lost with them."""
        entry = self._pending.pop(conn.sock, None)
        if entry is not None:
            self._buffered -= len(entry[1].data)
        if registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        if answer is None:
            conn.close()
            return
        # As gunicorn logs its own refusals (handle_error): the sender's address and the
        # answer's status line, a fixed text; never a byte of the request.
        client = conn.client[0] if isinstance(conn.client, tuple) else ""
        status = answer[len(b"HTTP/1.1 ") : answer.index(b"\r\n")].decode("ascii")
        self.log.warning("Refused request from ip=%s: %s", client, status)
        self._send_quietly(conn.sock, answer)
        self._linger(conn.sock)
        if entry is not None:
            began = entry[1].deadline - self.request_timeout
            line = bytes(entry[1].data[: self.cfg.limit_request_line + 2])
            self._log_access(conn.client, answer, time.monotonic() - began, line)

    def _log_access(self, client: Any, answer: bytes, seconds: float, request: bytes = b"") -> None:
        """The access log's line of an ``answer`` the worker wrote itself, in the format of
        the app's (gunicorn's ``access_log_format``, :class:`~csat_hook.webserver.redact
        .RedactingLogger`'s atoms): the sender's address, the status, the body's length,
        the time taken, and the method and path (redacted as the app's are) only when
        ``request`` (the bytes read) begins with a whole request line (:func:`_request_line`);
        else ``-``. Nothing else of the request: no query, no header, no body."""
        if not self.log.access_log_enabled:
            return
        head, _, body = answer.partition(b"\r\n\r\n")
        status_line, *fields = head.decode("latin-1").split("\r\n")
        method, target, version = _request_line(request) or ("", "", "-")
        environ = {
            "REMOTE_ADDR": client[0] if isinstance(client, tuple) else "-",
            "REQUEST_METHOD": method,
            "RAW_URI": target,
            "PATH_INFO": target.split("?", 1)[0],
            "SERVER_PROTOCOL": version,
        }
        resp = _OwnAnswer(
            status=status_line.split(" ", 1)[1],
            sent=len(body),
            headers=[tuple(field.split(": ", 1)) for field in fields],
        )
        try:  # no request headers: an empty list, as gunicorn's atoms read them
            self.log.access(resp, [], environ, timedelta(seconds=max(seconds, 0.0)))
        except Exception:  # a log line never stops the worker's loop
            self.log.exception("Failed to write the access log's line")

    def murder_pending(self) -> None:  # run() calls it on every turn of its loop (<= 1 s)
        super().murder_pending()
        now = time.monotonic()
        for conn, pending in list(self._pending.values()):
            if pending.deadline <= now:
                self._drop(conn, registered=True, answer=_timed_out(pending))
        for sock, (deadline, _drained) in list(self._lingering.items()):
            if deadline <= now:
                self._end_linger(sock)
        self._make_room()

    def _make_room(self) -> None:
        """At gunicorn's connection cap (``worker_connections``, past which it accepts no
        connection), while a connection waits to be accepted, a share of the cap
        (:data:`ROOM_SHARE`) gives way at a time: first the kept-alive connections idle
        longest (a request answered, nothing since: closed, as their keep-alive timeout
        would close them), then the requests that have been arriving longest (408, or closed
        when they sent nothing), as their deadline would end them. Else connections that
        send nothing, opened again as each is closed, or one cheap request on each
        connection kept alive, kept every close out of the worker. The connections waiting
        in the listen backlog are accepted in the order they came, before those opened
        again.

        Never a connection whose request is in a thread or whose response is being written
        (neither is counted here), nor one whose next bytes have arrived unread (an idle one
        whose next request has begun, one accepted whose request is in: read at the next
        turn). With nobody waiting nothing gives way: an idle connection cut needlessly can
        cross a request its sender has just sent on it."""
        if self.nr_conns < self.worker_connections or not self._someone_waits():
            return
        room = max(1, int(self.worker_connections * ROOM_SHARE))
        idle: deque[Any] = self.keepalived_conns  # idle longest first: ordered by timeout
        kept: deque[Any] = deque()
        for conn in idle:
            if room and not _has_arrived(conn.sock):
                room -= 1
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self.poller.unregister(conn.sock)
                self.nr_conns -= 1
                # As after a response: a request crossing the close reads an end of stream
                # (which clients retry on a reused connection), not a reset.
                self._linger(conn.sock)
            else:
                kept.append(conn)
        idle.clear()
        idle.extend(kept)
        if not room:
            return
        arriving = [e for e in self._pending.values() if e[1].data or not _has_arrived(e[0].sock)]
        for conn, pending in heapq.nsmallest(room, arriving, key=lambda e: e[1].deadline):
            self._drop(conn, registered=True, answer=_timed_out(pending))

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:  # run()'s loop has ended on a graceful stop
            self._drain_backlog()

    def _drain_backlog(self) -> None:
        """A graceful stop (SIGTERM: ``alive`` False; also a reload's, or ``max_requests``')
        accepts every connection already in the listen backlog, then closes the worker's
        listening sockets at once: served within ``graceful_timeout`` as the others are.
        gthread stopped accepting and kept its listening sockets open until its last
        connection was done; the kernel went on completing connections into the backlog,
        and when the last process holding them (the master closes its own first) closed
        them, every connection queued there was reset, its request sent and lost.

        What is left: a connection the kernel queues between this worker's last accept()
        (EAGAIN) and its close(), when it is the last process holding the socket, is still
        reset (a window of microseconds; the platform's router should have stopped sending
        by then). A connection that arrives after the close is refused, which a sender can
        tell from a lost answer. More connections than this process may open (EMFILE) stop
        the drain; those left are reset."""
        for listener in self.sockets:
            with contextlib.suppress(OSError):
                listener.setblocking(False)
            while True:
                try:
                    client, addr = listener.accept()
                except BlockingIOError:  # the backlog is empty
                    break
                except ConnectionAbortedError:  # reset by its sender before it was taken
                    continue
                except (OSError, AttributeError):  # EMFILE, or the socket already closed
                    self.log.warning("Stopped taking the queued connections (graceful stop)")
                    break
                self.nr_conns += 1
                client.setblocking(True)
                self.enqueue_req(TConn(self.cfg, client, addr, listener.getsockname()))
            listener.close()  # gunicorn's own close at the end of run() then does nothing

    def _someone_waits(self) -> bool:
        """Whether a connection waits in a listening socket's backlog (or the poll failed);
        never while stopping (the listening sockets are closed, their backlog taken)."""
        if not self.alive:
            return False
        waiting = select.poll()
        for listener in self.sockets:
            waiting.register(listener, select.POLLIN)
        try:
            return bool(waiting.poll(0))
        except OSError:
            return True

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
        # Its drain checks its 5 s bound only between reads of 1024 bytes, each of which
        # waits for all of them: a body trickled a byte at a time held the thread for as
        # long as the sender kept it up. The drain takes what has arrived, never waits:
        # a body not all in closes the connection (the app had not wanted it).
        # (Plain HTTP only: a TLS socket's drain reads "want read" as drained.)
        unreader: Any = getattr(conn.parser, "unreader", None)
        sock = getattr(unreader, "sock", None) if keepalive and self._buffering else None
        if sock is not None:
            unreader.sock = _ArrivedOnly(sock)
        try:
            return bool(super()._keepalive_after(conn, keepalive))
        except ParseException:
            return False
        finally:
            if sock is not None:
                unreader.sock = sock

    def handle_request(self, req: Any, conn: Any) -> Any:
        # Body reads and response writes in the thread are bounded too.
        conn.sock.settimeout(THREAD_SOCKET_TIMEOUT)
        return super().handle_request(req, conn)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's answer to a request it could not parse, or to an app that failed
        outside Flask, as the app answers: JSON ``{"error": ..., "reason": ...}`` with a
        fixed reason (gunicorn's HTML page repeated what the client sent, see
        :data:`_REFUSALS`). Its log line names the kind of error, never the bytes."""
        started = datetime.now()
        addr = addr or ("", -1)  # a Unix socket
        status, code, reason = _refusal(exc)
        if status != _INTERNAL_ERROR[0]:
            self.log.warning(
                "Invalid request from ip=%s: %s (%s)", addr[0], type(exc).__name__, reason
            )
        elif hasattr(req, "uri") and hasattr(req, "method"):
            # RedactingLogger keeps the path only, and the traceback without messages.
            self.log.exception("Error handling request %s %s", req.method, req.uri)
        elif hasattr(req, "uri"):
            self.log.exception("Error handling request %s", req.uri)
        else:
            self.log.exception("Error handling request (no URI read)")
        answer = json_answer(status, code, reason)
        if req is None and isinstance(exc, (errors.InvalidHeader, errors.InvalidHeaderName)):
            req = getattr(exc, "req", None)  # for the access log, as gunicorn does
        if req is not None:
            environ = default_environ(req, client, self.cfg)
            environ["REMOTE_ADDR"] = addr[0]
            environ["REMOTE_PORT"] = str(addr[1])
            resp = Response(req, client, self.cfg)
            resp.status = status
            resp.response_length = len(answer.partition(b"\r\n\r\n")[2])
            self.log.access(resp, req, environ, datetime.now() - started)
        try:
            util.write_nonblock(client, answer)
        except Exception:
            self.log.debug("Failed to send error message.")
        if req is None:  # no request line read (or none gunicorn took): the status only
            self._log_access(addr, answer, (datetime.now() - started).total_seconds())


class _ArrivedOnly:
    """A socket whose ``recv()`` returns only bytes that have arrived, and raises
    TimeoutError (the drain's "abandoned") where it would wait. Anything else is the
    socket's."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self, size: int) -> bytes:
        # Non-blocking: with a timeout, Python waits for the socket before any recv(),
        # MSG_DONTWAIT or not. The drain puts its own timeout back when it ends.
        self._sock.settimeout(0.0)
        try:
            return self._sock.recv(size)
        except (BlockingIOError, InterruptedError) as exc:
            raise TimeoutError("the rest of the body has not arrived") from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _OwnAnswer(NamedTuple):
    """What gunicorn's access log reads of a response (``Response``), for the worker's own."""

    status: str
    sent: int
    headers: list[tuple[str, ...]]


# A request line as gunicorn takes it (a token, a target without white space, HTTP/1.x).
_REQUEST_LINE = re.compile(rb"(?:\r\n)?([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([!-~]+) (HTTP/1\.[01])\r\n")


def _request_line(data: bytes) -> tuple[str, str, str] | None:
    """(method, target, version) of the request line ``data`` begins with, when all of it
    has arrived; else None."""
    match = _REQUEST_LINE.match(data)
    if match is None:
        return None
    method, target, version = match.groups()
    return method.decode("ascii"), target.decode("ascii"), version.decode("ascii")


def _has_arrived(sock: socket.socket) -> bool:
    """Whether bytes the worker has not read yet wait on ``sock`` (its end closed: no).
    The socket's own bytes, as they came: a TLS socket's ``recv`` takes no flags."""
    try:
        return bool(socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (OSError, ValueError):  # nothing yet (EAGAIN), or the connection is gone
        return False


def _timed_out(pending: PendingRequest) -> bytes | None:
    """The answer to a request not complete in time (None: it sent nothing, closed
    unanswered)."""
    if not pending.data:
        return None
    return TIMED_OUT_ANSWER if pending.head_complete else HEAD_TIMED_OUT_ANSWER


def _refusal(exc: BaseException) -> tuple[str, str, str]:
    """(status line, error code, reason) of the answer to ``exc``."""
    if isinstance(exc, _SERVER_ERRORS):
        return _INTERNAL_ERROR
    for kinds, status, code, reason in _REFUSALS:
        if isinstance(exc, kinds):
            return status, code, reason
    if isinstance(exc, ParseException):  # InvalidProxyLine, InvalidSchemeHeaders...
        return "400 Bad Request", "bad_request", "malformed request"
    return _INTERNAL_ERROR
