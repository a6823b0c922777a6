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

:func:`connect` is ``socket.create_connection`` on top of it, the timeout bounding the whole
connect: the look-up and the attempts on each address the name resolves to, in turn, share it
(:func:`attempt_seconds`). Each step bounded on its own, a slow look-up and then every address
that black-holes took a timeout each: a name with three addresses held the thread 4 × it.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

# getaddrinfo's answer: (family, type, proto, canonname, sockaddr) per address.
Addresses = list[tuple[Any, ...]]


# An address's attempt may take at least this long (when that much is left): time for one
# lost SYN to be sent again (Linux's first retransmission comes after 1 s). Go's dialer
# shares its timeout among addresses alike, with a 2 s floor.
MIN_ATTEMPT_SECONDS = 1.0


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


def attempt_seconds(left: float, addresses: int) -> float:
    """How long the next of ``addresses`` attempts (this one included) may take when ``left``
    seconds are left for them all: an even share, at least :data:`MIN_ATTEMPT_SECONDS` (when
    that much is left). Not all of it: an address that black-holes (an IPv6 route that drops
    packets, say) would leave nothing for the next, which answers."""
    return max(left / max(addresses, 1), min(MIN_ATTEMPT_SECONDS, left))


def connect(
    host: str,
    port: int,
    timeout: float | None,
    *,
    family: int = socket.AF_UNSPEC,
    source_address: Any = None,
    socket_options: Iterable[tuple[Any, ...]] | None = None,
) -> socket.socket:
    """``socket.create_connection((host, port), timeout, source_address)`` ending within
    ``timeout`` (None: no bound) in all: the name's resolution (:func:`resolve`), then each
    address in turn for its share of what is left (:func:`attempt_seconds`; the last one all
    of it). ``socket_options`` are set on each socket before it connects (as urllib3 does).
    The socket returned has what is left of ``timeout`` as its timeout: a TLS handshake on it
    ends within the same bound. Raises :class:`ResolveTimeoutError` when the look-up did not
    end in time, a :class:`TimeoutError` when no time was left for an address, or the last
    address's error when none connects."""
    end = None if timeout is None else time.monotonic() + timeout
    addresses = resolve(host, port, timeout, family=family)
    error: OSError | None = None
    for index, (af, kind, proto, _name, address) in enumerate(addresses):
        wait = None
        if end is not None:
            left = end - time.monotonic()
            if left <= 0:
                error = TimeoutError(f"connecting to {host} took longer than {timeout:g} s")
                break
            wait = attempt_seconds(left, len(addresses) - index)
        sock = None
        try:
            sock = socket.socket(af, kind, proto)
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(wait)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
            if end is not None:
                sock.settimeout(time_left(end))
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    if error is not None:
        raise error
    raise OSError("getaddrinfo returns an empty list")


def time_left(end: float) -> float:
    """Seconds until ``end`` (``time.monotonic``), as a socket timeout: :class:`TimeoutError`
    once it passed (a timeout of 0 would make the socket non-blocking, not bounded)."""
    left = end - time.monotonic()
    if left <= 0:
        raise TimeoutError("the connect timeout passed")
    return left
