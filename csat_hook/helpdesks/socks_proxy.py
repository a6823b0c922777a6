"""Connections through a SOCKS proxy with every host name resolved within the connect timeout.

A proxy URL of scheme ``socks4``, ``socks4a``, ``socks5`` or ``socks5h`` (``HTTPS_PROXY``,
with PySocks installed: ``requests[socks]``) sends a request through urllib3's SOCKS
connections, where PySocks resolves with ``socket.getaddrinfo`` (or ``gethostbyname``) and
no bound: the proxy's own host name always, and the API's for ``socks4://`` and
``socks5://`` (local resolution; ``socks4a://`` and ``socks5h://`` have the proxy resolve
it). A resolver that never answered held the delivery thread. These connections resolve
both first (:mod:`csat_hook.resolver`) and hand PySocks addresses, which it does not look
up; TLS still checks the API's certificate against its name. Errors are urllib3's, as for
a direct connection: a look-up that timed out is a ConnectTimeoutError, one that failed a
NameResolutionError (both: not sent).

Imported only for a SOCKS proxy (urllib3's SOCKS support needs PySocks, an optional
dependency).
"""

from __future__ import annotations

import socket
from typing import Any
from typing import cast

import socks
import urllib3.connectionpool
import urllib3.exceptions
from urllib3.contrib.socks import SOCKSConnection
from urllib3.contrib.socks import SOCKSHTTPSConnection

from csat_hook import resolver


def _new_conn(conn: SOCKSConnection) -> socket.socket:
    """urllib3's ``SOCKSConnection._new_conn`` with the proxy's name and, for local
    resolution, the API's resolved within the connect timeout. Each of the proxy's addresses
    is tried in turn (as PySocks does); the API's first address is sent (as PySocks does)."""
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
    extra: dict[str, Any] = {}
    if conn.source_address:
        extra["source_address"] = conn.source_address
    if conn.socket_options:
        extra["socket_options"] = conn.socket_options
    error: BaseException | None = None
    for address in dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in proxies):
        try:
            return cast(
                socket.socket,
                socks.create_connection(
                    (host, conn.port),
                    proxy_type=options["socks_version"],
                    proxy_addr=address,
                    proxy_port=options["proxy_port"],
                    proxy_username=options["username"],
                    proxy_password=options["password"],
                    proxy_rdns=options["rdns"],
                    timeout=timeout,
                    **extra,
                ),
            )
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


class _BoundedSOCKSConnection(SOCKSConnection):
    def _new_conn(self) -> socket.socket:
        return _new_conn(self)


class _BoundedSOCKSHTTPSConnection(SOCKSHTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _new_conn(self)


class _BoundedSOCKSHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _BoundedSOCKSConnection


class _BoundedSOCKSHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _BoundedSOCKSHTTPSConnection


POOLS: dict[str, type[urllib3.connectionpool.HTTPConnectionPool]] = {
    "http": _BoundedSOCKSHTTPPool,
    "https": _BoundedSOCKSHTTPSPool,
}
