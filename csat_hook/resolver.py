"""Connecting to a host by name within the connect timeout, the name's resolution included.

A socket's timeout bounds the TCP connect, not ``getaddrinfo`` before it: a resolver that
does not answer (a DNS server that drops queries, a stuck NSS module, a search list tried
name by name) held a delivery thread for as long as the C library liked, which may be for
ever. :func:`resolve` runs the look-up on a helper thread and waits for it at most the
timeout, then raises :class:`ResolveTimeoutError` (a :class:`TimeoutError`: urllib3 reports it as
a connect timeout, smtplib's caller as a failure to connect; nothing was sent, so it is a
plain retry; PostgreSQL's connect as the driver's OperationalError, see
:func:`csat_hook.db.engine.resolve_host`). The helper thread cannot be stopped: it ends when
the C library gives up.
One look-up per name runs at a time; callers asking for a name being looked up wait for
that one, so a resolver that hangs costs one thread per name, not one per attempt.

:func:`connect` is ``socket.create_connection`` on top of it: each address the name resolves
to is tried in turn, each connect waiting at most the timeout.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable
from typing import Any

# getaddrinfo's answer: (family, type, proto, canonname, sockaddr) per address.
Addresses = list[tuple[Any, ...]]


class ResolveTimeoutError(TimeoutError):
    """The host name was not resolved within the timeout (nothing was sent)."""


class _Lookup:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.addresses: Addresses = []
        self.error: BaseException | None = None


_lock = threading.Lock()
_running: dict[tuple[str, Any, int, int], _Lookup] = {}


def resolve(
    host: str,
    port: Any,
    timeout: float | None,
    *,
    family: int = socket.AF_UNSPEC,
    type: int = socket.SOCK_STREAM,
) -> Addresses:
    """``socket.getaddrinfo(host, port, family, type)``, or :class:`ResolveTimeoutError` once
    ``timeout`` seconds passed without an answer (None: wait as long as it takes). Its
    errors (``socket.gaierror``) are raised as they are. An IP address is not looked up."""
    if timeout is None or is_address(host):
        return socket.getaddrinfo(host, port, family, type)
    key = (host, port, family, type)
    with _lock:
        lookup = _running.get(key)
        if lookup is None:
            lookup = _running[key] = _Lookup()
            threading.Thread(
                target=_look_up, args=(key, lookup), name="csat-resolve", daemon=True
            ).start()
    if not lookup.done.wait(max(0.0, timeout)):
        raise ResolveTimeoutError(f"resolving {host} took longer than {timeout:g} s")
    if lookup.error is not None:
        raise lookup.error
    return list(lookup.addresses)


def _look_up(key: tuple[str, Any, int, int], lookup: _Lookup) -> None:
    try:
        lookup.addresses = socket.getaddrinfo(*key)
    except BaseException as exc:  # handed to every waiter, raised on their threads
        lookup.error = exc
    finally:
        with _lock:
            _running.pop(key, None)
        lookup.done.set()


def is_address(host: str) -> bool:
    """Whether ``host`` is an IP address (IPv6 with or without a ``%zone``), not a name."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def connect(
    host: str,
    port: int,
    timeout: float | None,
    *,
    family: int = socket.AF_UNSPEC,
    source_address: Any = None,
    socket_options: Iterable[tuple[Any, ...]] | None = None,
) -> socket.socket:
    """``socket.create_connection((host, port), timeout, source_address)`` with the name's
    resolution bounded by ``timeout`` too (:func:`resolve`); ``socket_options`` are set on
    each socket before it connects (as urllib3 does). The last address's error is raised
    when none connects."""
    error: OSError | None = None
    for af, kind, proto, _name, address in resolve(host, port, timeout, family=family):
        sock = None
        try:
            sock = socket.socket(af, kind, proto)
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    if error is not None:
        raise error
    raise OSError("getaddrinfo returns an empty list")
