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
liked. Here the whole connect ends within the connect timeout and never past the deadline
given (:func:`new_conn`; the connect phase's, from the request's start): the look-ups, then
the TCP connect to the proxy with its handshake, the proxy's addresses sharing what is left
as an API's do (:func:`csat_hook.resolver.attempt_seconds`), and the TLS handshake after it
within what is then left. Else a ConnectTimeoutError (not sent: no byte of the request has
left). Each look-up and each address bounded by the connect timeout on its own, a slow
resolver and a stalled proxy held the thread for 2 × it, and a TLS handshake a third.

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
    """urllib3's ``SOCKSConnection._new_conn`` ending within the connect timeout and by
    ``deadline`` (``time.monotonic``; None: no deadline but the connect timeout's), see the
    module docstring: the proxy's name and, for local resolution, the API's resolved, then
    each of the proxy's addresses tried in turn (as PySocks does) for its share of what is
    left; the API's first address is sent (as PySocks does). The socket returned has what is
    left of that time as its timeout: the TLS handshake after it ends within it."""
    timeout = conn.timeout
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        return cast(socket.socket, SOCKSConnection._new_conn(conn))  # no number: as urllib3
    options = conn._socks_options
    wait = float(timeout)
    end = time.monotonic() + wait
    if deadline is not None:
        end = min(end, deadline)
    proxy_host = str(options["proxy_host"]).strip("[]")
    proxies = _resolve(conn, proxy_host, options["proxy_port"], _left(conn, end))
    host = conn.host.strip("[]")
    if not options["rdns"] and not resolver.is_address(host):
        # SOCKS4 carries IPv4 addresses only (PySocks used gethostbyname).
        v4 = options["socks_version"] == socks.PROXY_TYPE_SOCKS4
        family = socket.AF_INET if v4 else socket.AF_UNSPEC
        found = _resolve(conn, host, conn.port, _left(conn, end), family)
        host = str(found[0][4][0])
    error: BaseException | None = None
    addresses = list(dict.fromkeys((entry[0], str(entry[4][0])) for entry in proxies))
    for index, (family, address) in enumerate(addresses):
        left = end - time.monotonic()
        if left <= 0:
            error = TimeoutError("the connect timeout ran out before the proxy answered")
            break
        until = time.monotonic() + resolver.attempt_seconds(left, len(addresses) - index)
        try:
            sock = _through_proxy(conn, family, address, (host, conn.port), wait, until)
        except OSError as exc:  # socks.ProxyError included
            error = exc
            continue
        try:
            sock.settimeout(resolver.time_left(end))
        except TimeoutError as exc:
            sock.close()
            error = exc
            break
        return sock
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


def _left(conn: SOCKSConnection, end: float) -> float:
    """Seconds until ``end``, or a ConnectTimeoutError once it passed."""
    left = end - time.monotonic()
    if left <= 0:
        raise urllib3.exceptions.ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
        )
    return left


def _resolve(
    conn: SOCKSConnection, name: str, port: Any, timeout: float, family: int = socket.AF_UNSPEC
) -> resolver.Addresses:
    """``resolver.resolve`` waiting ``timeout`` seconds (what is left of the connect
    timeout), its errors as urllib3 reports a direct connection's."""
    try:
        return resolver.resolve(name, port, timeout, family=family)
    except socket.gaierror as exc:
        raise urllib3.exceptions.NameResolutionError(name, conn, exc) from exc
    except resolver.ResolveTimeoutError as exc:
        raise urllib3.exceptions.ConnectTimeoutError(
            conn, f"Resolving {name} timed out. (connect timeout={conn.timeout})"
        ) from exc
