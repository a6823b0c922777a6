"""Connections through a SOCKS proxy: every host name resolved within the connect timeout,
connecting and the proxy's handshake within it too.

A proxy URL of scheme ``socks4``, ``socks4a``, ``socks5`` or ``socks5h`` (``HTTPS_PROXY``,
``HTTP_PROXY``, ``ALL_PROXY``; PySocks, a dependency: ``requests[socks]``) sends a request
through urllib3's SOCKS connections, where PySocks resolves with ``socket.getaddrinfo`` (or
``gethostbyname``) and no bound: the proxy's own host name always, and the API's for
``socks4://`` and ``socks5://`` (local resolution; ``socks4a://`` and ``socks5h://`` have the
proxy resolve it). A resolver that never answered held the delivery thread. These
connections resolve both first (:mod:`csat_hook.resolver`) and hand PySocks addresses, which
it does not look up; TLS still checks the API's certificate against its name. Errors are
urllib3's, as for a direct connection: a look-up that timed out is a ConnectTimeoutError, one
that failed a NameResolutionError (both: not sent).

PySocks bounds each receive of the handshake by the socket's timeout, not the handshake: a
proxy that answers it one byte at a time, each in time, held the thread for as long as it
liked. Here the TCP connect to the proxy and the handshake together take at most the connect
timeout for each of the proxy's addresses (as a TCP connect does for each of an API's), and
never run past the request's deadline when there is one (:func:`new_conn`): else a
ConnectTimeoutError (not sent: no byte of the request has left).

Imported only for a SOCKS proxy (urllib3's SOCKS support imports PySocks);
:mod:`csat_hook.helpdesks.deadline` builds its connections on :func:`new_conn`.
"""

from __future__ import annotations

import socket
import time
from typing import Any
from typing import cast

import socks
import urllib3.exceptions
from urllib3.contrib.socks import SOCKSConnection

from csat_hook import resolver


def new_conn(conn: SOCKSConnection, deadline: float | None = None) -> socket.socket:
    """urllib3's ``SOCKSConnection._new_conn`` with the proxy's name and, for local
    resolution, the API's resolved within the connect timeout, and the connection to the
    proxy with its handshake bounded (see the module docstring): each of the proxy's
    addresses is tried in turn (as PySocks does) for at most the connect timeout and until
    ``deadline`` (``time.monotonic``; None: no deadline but the connect timeout's); the API's
    first address is sent (as PySocks does). The socket returned has the connect timeout."""
    timeout = conn.timeout
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        return cast(socket.socket, SOCKSConnection._new_conn(conn))  # no number: as urllib3
    options = conn._socks_options
    wait = float(timeout)
    proxies = _resolve(conn, str(options["proxy_host"]).strip("[]"), options["proxy_port"], wait)
    host = conn.host.strip("[]")
    if not options["rdns"] and not resolver.is_address(host):
        # SOCKS4 carries IPv4 addresses only (PySocks used gethostbyname).
        v4 = options["socks_version"] == socks.PROXY_TYPE_SOCKS4
        found = _resolve(conn, host, conn.port, wait, socket.AF_INET if v4 else socket.AF_UNSPEC)
        host = str(found[0][4][0])
    error: BaseException | None = None
    for family, address in dict.fromkeys((entry[0], str(entry[4][0])) for entry in proxies):
        until = time.monotonic() + wait
        if deadline is not None:
            until = min(until, deadline)
        if until <= time.monotonic():
            error = TimeoutError("the request's time ran out before the proxy answered")
            break
        try:
            return _through_proxy(conn, family, address, (host, conn.port), wait, until)
        except OSError as exc:  # socks.ProxyError included
            error = exc
    cause = getattr(error, "socket_err", None) or error
    if isinstance(cause, TimeoutError):
        raise urllib3.exceptions.ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out. (connect timeout={timeout})"
        ) from error
    raise urllib3.exceptions.NewConnectionError(
        conn, f"Failed to establish a new connection: {cause or 'no address for the proxy'}"
    ) from error


class _HandshakeSocket(socks.socksocket):  # type: ignore[misc]  # PySocks has no types
    """PySocks' socket, each receive of its handshake waiting at most ``per_receive`` seconds
    and never past ``until`` (``time.monotonic``): PySocks reads the handshake through
    ``makefile``, whose reader receives with ``recv_into``. Once :meth:`handshake_over`, each
    receive waits the socket's timeout only (urllib3 and the deadline's reader set it)."""

    def __init__(self, family: int, per_receive: float, until: float) -> None:
        super().__init__(family, socket.SOCK_STREAM)
        self._per_receive = per_receive
        self._until: float | None = until

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        until = self._until
        if until is not None:
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError("the SOCKS handshake did not end in time")
            # socket.socket's own: PySocks' settimeout records the value, restored after it.
            socket.socket.settimeout(self, min(self._per_receive, left))
        return cast(int, super().recv_into(buffer, nbytes, flags))

    def handshake_over(self) -> None:
        """Receives no longer bounded by ``until``; the socket's timeout: ``per_receive``."""
        self._until = None
        self.settimeout(self._per_receive)


def _through_proxy(
    conn: SOCKSConnection,
    family: int,
    proxy_address: str,
    destination: tuple[str, int],
    wait: float,
    until: float,
) -> socket.socket:
    """``socks.create_connection`` to one of the proxy's addresses, the TCP connect and the
    handshake ending by ``until``, each receive waiting at most ``wait`` seconds."""
    options = conn._socks_options
    sock = _HandshakeSocket(family, wait, until)
    try:
        for option in conn.socket_options or ():
            sock.setsockopt(*option)
        sock.settimeout(max(0.001, min(wait, until - time.monotonic())))  # the TCP connect
        sock.set_proxy(
            options["socks_version"],
            proxy_address,
            options["proxy_port"],
            options["rdns"],
            options["username"],
            options["password"],
        )
        if conn.source_address:
            sock.bind(conn.source_address)
        sock.connect(destination)
        sock.handshake_over()
    except BaseException:
        sock.close()
        raise
    return sock


def _resolve(
    conn: SOCKSConnection, name: str, port: Any, timeout: float, family: int = socket.AF_UNSPEC
) -> resolver.Addresses:
    """``resolver.resolve``, its errors as urllib3 reports a direct connection's."""
    try:
        return resolver.resolve(name, port, timeout, family=family)
    except socket.gaierror as exc:
        raise urllib3.exceptions.NameResolutionError(name, conn, exc) from exc
    except resolver.ResolveTimeoutError as exc:
        raise urllib3.exceptions.ConnectTimeoutError(
            conn, f"Resolving {name} timed out. (connect timeout={timeout:g})"
        ) from exc
