"""A deadline for a whole HTTP exchange, from the request's start to the answer's last byte.

A socket timeout bounds each wait for the network, not the exchange: a server that sends
its status line and headers one byte every 0.2 s never lets a 15 s read timeout expire, and
``requests`` hands the response (and its hooks) over only once the headers are in.
:class:`DeadlineAdapter`, the ``requests`` adapter that
:class:`~csat_hook.helpdesks.http_session.LeanSession` mounts for http and https, gives every
request with a ``(connect, read)`` timeout a deadline of connect plus read seconds from its
start. Until the deadline, each
receive on the connection (the status line, the headers, the body, however it is read)
waits at most the read timeout and never past the deadline; once it has passed, the next
receive raises :class:`TimeoutError`, which urllib3 reports as a read timeout (a request that
may have been acted on: an unknown outcome for a write, a retry for a read, see
:mod:`csat_hook.helpdesks.transport`).

Writing the request keeps the deadline too: each send of it (the header section, then each
piece of the body) waits at most the connect timeout, as urllib3 sets it, and never past the
deadline, or raises :class:`SendTimeoutError`: not sent when the header section never all
left, an unknown outcome once it did (the argument: :class:`_DeadlineHTTPConnection`). A
server that takes the request a few bytes at a time, each send progressing in time, no
longer holds the thread for as long as the body lasts.

The deadline reaches the connection through a context variable set around the adapter's
``send`` (one thread runs it from start to end); the response keeps it for the body, which
the caller reads after ``send`` returned. Connections through a SOCKS proxy keep it too: the
connect to the proxy and its handshake end within the connect timeout and by the deadline
(:mod:`~csat_hook.helpdesks.socks_proxy`: else a connect timeout, not sent), and the answer
through it is read as a direct connection's. A timeout given as a ``urllib3.Timeout`` is
bounded per receive only, as before.

Opening a connection ends within the connect timeout from the request's start, every step
of it together: the host name's resolution (:mod:`csat_hook.resolver`: a look-up that does not
answer in time is a connect timeout, where ``getaddrinfo`` could hold the thread for as long
as it liked), the TCP connect to each address it resolves to (which share what is left), an
HTTP proxy's tunnel, the TLS handshake, and a SOCKS proxy's connect and handshake. Past it,
the request was not sent. Each step bounded by the connect timeout on its own, a slow
look-up, two addresses that black-hole and a stalled handshake held the thread 4 × it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import http.client
import io
import socket
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import requests.adapters
import urllib3.connection
import urllib3.connectionpool
import urllib3.poolmanager
import urllib3.util.connection

from csat_hook import resolver

# The current request's times (time.monotonic), None when it has no deadline: when its answer
# must have arrived by (the deadline), and when a connection it opens must be open by (its
# start plus the connect timeout). While a connection is being opened, both are the latter.
# One variable, set once per request: the reply path's cost is unchanged.
_DEADLINE: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "csat_hook_http_deadline", default=None
)


# The sender's guard for the current request (:func:`guarding`): checked once more right
# before the request's first byte leaves, the connection open (see FenceClosedError).
_GUARD: contextvars.ContextVar[Callable[[], bool] | None] = contextvars.ContextVar(
    "csat_hook_http_guard", default=None
)


@contextlib.contextmanager
def guarding(may_send: Callable[[], bool]) -> Iterator[None]:
    """Within the block, on this thread, a request's header section is written only while
    ``may_send()`` is True, asked right before its first byte leaves (the connection, its
    proxy tunnel and TLS handshake done); otherwise :class:`FenceClosedError`, nothing sent.

    The caller asks it before the request too (``HttpClient.start_write``): this second
    look closes the gap in between, which is the connect, the name's resolution and the
    handshake, seconds long on a slow network, and any stop of the whole process (a worker
    frozen, its host suspended, then resumed after another took its reply over), to the
    few statements between the look and the send."""
    token = _GUARD.set(may_send)
    try:
        yield
    finally:
        _GUARD.reset(token)


class FenceClosedError(ConnectionError):
    """The request's guard (:func:`guarding`) closed before its first byte left: not sent
    (marked :func:`raised_unsent`)."""


def _timeouts(timeout: Any) -> tuple[float, float] | None:
    """A ``requests`` timeout as (connect, read) seconds (one number is both, as requests
    reads it); None when either is unbounded or unknown."""
    if isinstance(timeout, tuple) and len(timeout) == 2:
        connect, read = timeout
    elif isinstance(timeout, int | float) and not isinstance(timeout, bool):
        connect = read = timeout
    else:
        return None
    if not isinstance(connect, int | float) or not isinstance(read, int | float):
        return None
    return float(connect), float(read)


class _DeadlineSocketIO(socket.SocketIO):
    """The raw reader under a response: each receive waits at most ``read_timeout`` seconds
    (None: no limit but the deadline) and never past ``deadline`` (``time.monotonic``)."""

    def __init__(self, sock: Any, deadline: float, read_timeout: float | None) -> None:
        super().__init__(sock, "rb")
        self._owner = sock
        self._deadline = deadline
        self._read_timeout = read_timeout

    def readinto(self, b: Any) -> int | None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the answer did not arrive within the request's time")
        wait = left if self._read_timeout is None else min(self._read_timeout, left)
        self._owner.settimeout(wait)
        return super().readinto(b)


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, reading through :class:`_DeadlineSocketIO` when the request
    has a deadline, and past every interim 1xx answer to the final one."""

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        times = _DEADLINE.get()
        if times is None:
            return
        deadline = times[0]
        # The reader sock.makefile made holds a reference that keeps the socket open while
        # the response is read (a "Connection: close" answer closes the connection at once);
        # it passes to ours: the old one is marked closed without giving it back.
        raw = self.fp.detach()
        owner = raw._sock  # type: ignore[attr-defined]  # the socket, or urllib3's TLS wrapper
        io.RawIOBase.close(raw)
        # urllib3 set the socket's timeout to the read timeout just before.
        reader = _DeadlineSocketIO(owner, deadline, sock.gettimeout())
        self.fp = io.BufferedReader(reader)

    def begin(self) -> None:
        super().begin()
        if self.status == http.client.SWITCHING_PROTOCOLS:
            # Never asked for, and the connection no longer speaks HTTP: what comes next on
            # it is not the next request's answer (http.client closes it on will_close).
            self.will_close = True

    def _read_status(self) -> tuple[str, int, str]:
        # RFC 9110 15.2: any number of 1xx may come before the final answer. http.client
        # skips 100 only: a 102 Processing or 103 Early Hints was taken for the answer (a
        # reply the vendor took, then recorded as refused), and a final answer coming after
        # it was read, on the kept-alive connection, as the next request's.
        # 101 is left as it is (never asked for: an error, and its connection is not HTTP).
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if status in (http.client.CONTINUE, http.client.SWITCHING_PROTOCOLS):
                return version, status, reason
            if not 100 <= status < 200:
                return version, status, reason
            http.client.parse_headers(self.fp)  # the interim answer's headers, skipped


class SendTimeoutError(TimeoutError):
    """The request was not all written in time: its deadline passed before its last byte
    left, or one send of it waited the whole socket timeout. Raised before the request's
    header section was all written, it is marked :func:`raised_unsent`; after, the server may
    have the request's headers (see :class:`_DeadlineHTTPConnection`)."""


# Set on an exception raised while a connection was being opened, or while the request's
# header section was being written and did not all leave: no server can have read a
# request from what it got (see raised_unsent).
_UNSENT = "csat_hook_raised_unsent"


def raised_unsent(exc: BaseException) -> bool:
    """True when ``exc`` was raised before the server could have read the request: while one
    of these connections was being opened (TCP, a proxy's tunnel, the TLS handshake), before
    any byte of the request was written, or when writing the request's header section timed
    out (:class:`SendTimeoutError`) before its end left. urllib3 reports a handshake that
    timed out as a read timeout and one that failed as an SSLError or a dropped connection,
    and a send that timed out as a dropped connection, as it reports them once the request
    was sent."""
    return getattr(exc, _UNSENT, False) is True


def _mark_unsent(exc: BaseException) -> None:
    with contextlib.suppress(AttributeError, TypeError):
        setattr(exc, _UNSENT, True)


@contextlib.contextmanager
def _opening() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        _mark_unsent(exc)
        raise


def _new_conn(conn: urllib3.connection.HTTPConnection) -> socket.socket:
    """urllib3's ``HTTPConnection._new_conn`` ending within the connect timeout, the host
    name's resolution included (:mod:`csat_hook.resolver`: a resolver that never answers was
    not bounded by it), and by the deadline (the connect phase's, see
    :meth:`_DeadlineHTTPConnection.connect`). The socket returned has what is left of that
    time as its timeout: the TLS handshake (a tunnel's too) ends within it. Errors are
    urllib3's: a look-up or a connect that timed out is a ConnectTimeoutError, a look-up that
    failed a NameResolutionError (both: not sent)."""
    timeout = conn.timeout
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        return urllib3.connection.HTTPConnection._new_conn(conn)  # no number: as urllib3
    wait = float(timeout)
    times = _DEADLINE.get()
    if times is not None:
        wait = min(wait, times[1] - time.monotonic())
        if wait <= 0:
            raise urllib3.exceptions.ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out. (connect timeout={timeout})"
            )
    host = conn._dns_host
    if host.startswith("["):
        host = host.strip("[]")
    try:
        host.encode("idna")
    except UnicodeError:
        raise urllib3.exceptions.LocationParseError(f"'{host}', label empty or too long") from None
    try:
        sock = resolver.connect(
            host,
            conn.port,
            wait,
            family=urllib3.util.connection.allowed_gai_family(),
            source_address=conn.source_address,
            socket_options=conn.socket_options,
        )
    except socket.gaierror as exc:
        raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
    except TimeoutError as exc:
        what = "Resolving" if isinstance(exc, resolver.ResolveTimeoutError) else "Connection to"
        raise urllib3.exceptions.ConnectTimeoutError(
            conn, f"{what} {conn.host} timed out. (connect timeout={timeout})"
        ) from exc
    except OSError as exc:
        raise urllib3.exceptions.NewConnectionError(
            conn, f"Failed to establish a new connection: {exc}"
        ) from exc
    sys.audit("http.client.connect", conn, conn.host, conn.port)
    return sock


class _DeadlineHTTPConnection(urllib3.connection.HTTPConnection):
    """urllib3's connection, keeping the request's deadline (the base of the https and SOCKS
    kinds): opened with its host name resolved within the connect timeout, the request
    written and the answer read by the deadline.

    Writing the request: each send (http.client's: the header section, then each piece of
    the body) waits at most the connect timeout, as urllib3 sets it, and never past the
    deadline. A send waits on the server's window, not on its answer: a server (or a
    middlebox) that takes the request a few bytes at a time, each send progressing within
    the socket timeout, held the thread for as long as the body lasted. A send that does not
    end in time raises :class:`SendTimeoutError`, and the connection is closed (urllib3
    discards it) with the request cut short. What the vendor may then have done:

    * the header section did not all leave (or nothing did: the deadline passed while
      connecting): not sent. An HTTP/1.1 server reads a request only once its header section
      has ended (the empty line, RFC 9112 section 2.2), which never left.
    * the header section left, the body did not all follow: an unknown outcome. The server
      cannot have the whole request (its Content-Length, or the chunked coding's last chunk,
      never came: an incomplete message, RFC 9112 section 8), but a server may hand the
      request to its application once the headers are in (Go's net/http, Node's request
      event, a proxy that streams bodies), and one whose action is in the URL (a query
      string API, a generic adapter's template) need not read the body before acting on it.
    * every byte left, the answer did not come in time: an unknown outcome, as before.

    The normal path costs a context variable's read and a clock read per send; the socket's
    timeout is changed only once less than the connect timeout is left."""

    response_class = _DeadlineResponse
    # The guard of the request whose header section is next to leave (set by endheaders,
    # taken by the first send that follows): see guarding.
    _guard: Callable[[], bool] | None = None

    def connect(self) -> None:
        """Opens the connection by the request's connect deadline (its start plus the connect
        timeout), which the connection's steps read as the deadline meanwhile (an HTTP
        proxy's tunnel sends its CONNECT and reads the answer through this connection's send
        and response); then the socket's timeout is the connect timeout again, for sending
        the request."""
        times = _DEADLINE.get()
        token = _DEADLINE.set((times[1], times[1])) if times is not None else None
        try:
            with _opening():
                try:
                    super().connect()
                except TimeoutError as exc:
                    # The TLS handshake's (or a tunnel's): urllib3 reported it as a read
                    # timeout, as one while waiting for an answer; it is the connect's.
                    raise urllib3.exceptions.ConnectTimeoutError(
                        self,
                        f"Connection to {self.host} timed out. (connect timeout={self.timeout})",
                    ) from exc
        finally:
            if token is not None:
                _DEADLINE.reset(token)
        timeout = self.timeout
        if self.sock is not None and isinstance(timeout, int | float):
            # What was left of the connect phase bounded the handshake; urllib3 has each send
            # wait the connect timeout (and send() no longer than the request's deadline).
            self.sock.settimeout(timeout)

    def _new_conn(self) -> socket.socket:
        return _new_conn(self)

    def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
        if message_body is not None:  # urllib3 sends the body after: never here
            super().endheaders(message_body, encode_chunked=encode_chunked)
            return
        self._guard = _GUARD.get()  # the header section's send asks it
        try:
            super().endheaders(encode_chunked=encode_chunked)  # the header section: one send
        except SendTimeoutError as exc:
            _mark_unsent(exc)
            raise

    def send(self, data: Any) -> None:
        guard = self._guard
        if guard is not None:  # the request's first bytes: the connection opened first
            self._guard = None
            if self.sock is None and self.auto_open:
                self.connect()
            if not guard():
                closed = FenceClosedError("the sender may no longer send this request")
                _mark_unsent(closed)
                raise closed
        times = _DEADLINE.get()
        if times is None:
            super().send(data)
            return
        if self.sock is None and self.auto_open:
            self.connect()  # as http.client's send would, before the time left is read
        left = times[0] - time.monotonic()
        if left <= 0:
            raise SendTimeoutError("the request's time ran out before it was all sent")
        timeout = self.timeout
        if self.sock is not None and (not isinstance(timeout, int | float) or left < timeout):
            # urllib3 sets the socket's timeout before it writes a request and again before
            # it reads the answer: this lower one ends with this request's sending.
            self.sock.settimeout(left)
        try:
            super().send(data)
        except TimeoutError as exc:
            raise SendTimeoutError("the request was not all sent within its time") from exc


class _DeadlineHTTPSConnection(_DeadlineHTTPConnection, urllib3.connection.HTTPSConnection):
    pass


class _DeadlineHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


_POOLS: dict[str, type[urllib3.connectionpool.HTTPConnectionPool]] = {
    "http": _DeadlineHTTPPool,
    "https": _DeadlineHTTPSPool,
}


@functools.cache
def _socks_pools() -> dict[str, type[urllib3.connectionpool.HTTPConnectionPool]]:
    """The pools of a SOCKS proxy's manager: urllib3's SOCKS connections, connected by
    :func:`~csat_hook.helpdesks.socks_proxy.new_conn` within the request's deadline and
    answered through :class:`_DeadlineResponse`. Built on first use: the module imports
    PySocks, which only a SOCKS proxy needs loaded."""
    from urllib3.contrib.socks import SOCKSConnection
    from urllib3.contrib.socks import SOCKSHTTPSConnection

    from csat_hook.helpdesks import socks_proxy

    class _DeadlineSOCKSConnection(_DeadlineHTTPConnection, SOCKSConnection):
        def _new_conn(self) -> socket.socket:
            times = _DEADLINE.get()  # its connect deadline: times[1]
            return socks_proxy.new_conn(self, None if times is None else times[1])

    class _DeadlineSOCKSHTTPSConnection(_DeadlineSOCKSConnection, SOCKSHTTPSConnection):
        pass

    class _DeadlineSOCKSHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = _DeadlineSOCKSConnection

    class _DeadlineSOCKSHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = _DeadlineSOCKSHTTPSConnection

    return {"http": _DeadlineSOCKSHTTPPool, "https": _DeadlineSOCKSHTTPSPool}


class DeadlineAdapter(requests.adapters.HTTPAdapter):
    """``requests``' HTTPAdapter whose connections keep the request's deadline (see the
    module docstring); everything else is the HTTPAdapter's."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: Any, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is urllib3.poolmanager.ProxyManager:  # not SOCKS: its own pools
            manager.pool_classes_by_scheme = _POOLS
        elif str(proxy).lower().startswith("socks"):
            # A SOCKS manager (requests made one: PySocks is installed): its connections keep
            # the deadline too, their names resolved within the connect timeout.
            manager.pool_classes_by_scheme = _socks_pools()
        return manager

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """HTTPAdapter.send, within the request's deadline when its timeout gives one, a
        connection it opens open within the connect timeout from its start."""
        timeouts = _timeouts(timeout)
        if timeouts is None:
            return super().send(request, stream, timeout, verify, cert, proxies)
        connect, read = timeouts
        start = time.monotonic()
        # Connecting ends within the connect timeout from the request's start, not by the
        # deadline (connect plus read): the documented bound of `connect_timeout_seconds`
        # (the name's resolution "counts against the connect timeout"), and a connect that
        # took some of the read timeout would leave less time for an answer, cut short after
        # the vendor may have acted (an unknown outcome) where a connect that failed is a
        # plain retry. The read timeout stays the answer's: the deadline is unchanged.
        token = _DEADLINE.set((start + connect + read, start + connect))
        try:
            return super().send(request, stream, timeout, verify, cert, proxies)
        finally:
            _DEADLINE.reset(token)
