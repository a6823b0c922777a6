"""Events per minute per key, in this process: the short links' requests per reference and
per client (:mod:`csat_hook.clicks.limits`), the operator API's failed tokens per client.

A fixed one-minute window per key, kept in a bounded table (the oldest keys are dropped once
it holds :data:`MAX_KEYS`, so a flood of distinct keys cannot grow memory). The counts live in
each web process: with ``server.workers`` processes a client can get up to that many times the
limit through, which is enough to stop a scanner or a script (what the limits are for)
without a shared store. A client is its IPv4 address or its IPv6 /64 (:func:`client_key`).

Behind a reverse proxy that ``server.trust_proxy`` does not trust, every client is the
proxy's address: :class:`ProxyWarning` says so once per process when a client limit refuses a
request the proxy forwarded.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

WINDOW_SECONDS = 60.0
MAX_KEYS = 100_000
# The network an IPv6 client is counted by: one subscriber (a home, a phone, a server) gets
# a /64, and a script can take a new address of it for every request.
IPV6_CLIENT_PREFIX = 64
UNREADABLE = "unreadable"
# The headers a reverse proxy names the client in (X-Forwarded-For, RFC 7239's Forwarded), as
# the WSGI environ holds them.
FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED")
# Set by werkzeug's ProxyFix (server.trust_proxy) once it has read the forwarded headers.
PROXY_FIX_KEY = "werkzeug.proxy_fix.orig"


def client_key(address: str) -> str:
    """The key a client address is counted by: an IPv4 address (an IPv4-mapped IPv6 one
    too) as it is, an IPv6 address by its /64, and anything that is no address (an empty
    one, a forwarded header's text) as one client, :data:`UNREADABLE`: a key is never
    longer than an address. A port after the address (``203.0.113.5:50001``,
    ``[2001:db8::1]:443``: some proxies forward it) is not part of the client."""
    text = address.strip()
    if text.startswith("["):  # [IPv6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4:port (an IPv6 address has two or more)
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return UNREADABLE
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        network = ipaddress.IPv6Network((int(ip), IPV6_CLIENT_PREFIX), strict=False)
        return str(network)
    return str(ip)


class RateLimiter:
    """``allow(key)`` is False once ``key`` made ``per_minute`` requests in this window.

    Or, to count only some events (failures): :meth:`count` one, and :meth:`blocked` says
    whether ``key`` has had ``per_minute`` of them in this window."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float], max_keys: int = MAX_KEYS):
        self.per_minute = per_minute
        self._clock = clock
        self._max_keys = max_keys
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count one request of ``key`` unless it is over the limit (then False)."""
        now = self._clock()
        with self._lock:
            start, count = self._window(key, now)
            if count >= self.per_minute:
                return False
            self._store(key, start, count + 1)
            return True

    def blocked(self, key: str) -> bool:
        """Whether ``key`` had ``per_minute`` events in this window (none is counted)."""
        now = self._clock()
        with self._lock:
            return self._window(key, now)[1] >= self.per_minute

    def count(self, key: str) -> None:
        """Count one event of ``key``."""
        now = self._clock()
        with self._lock:
            start, count = self._window(key, now)
            self._store(key, start, count + 1)

    def _window(self, key: str, now: float) -> tuple[float, int]:
        start, count = self._counts.get(key, (now, 0))
        return (now, 0) if now - start >= WINDOW_SECONDS else (start, count)

    def _store(self, key: str, start: float, count: int) -> None:
        self._counts[key] = (start, count)
        self._counts.move_to_end(key)
        while len(self._counts) > self._max_keys:
            self._counts.popitem(last=False)

    def retry_after(self, key: str) -> int:
        """Seconds until ``key``'s window ends (at least 1)."""
        with self._lock:
            start, _ = self._counts.get(key, (self._clock(), 0))
        return max(1, int(WINDOW_SECONDS - (self._clock() - start)) + 1)


class ProxyWarning:
    """Says once (per instance: one per endpoint's limits, made once per process) that a
    client limit refused a request a proxy forwarded while ``server.trust_proxy`` is off.
    Every client then counts as the proxy's address, and whoever is over the limit holds
    everyone behind the proxy off. Logged as ``event`` at WARNING on ``logger``, naming the
    setting; neither address nor any header's value is logged."""

    def __init__(self, logger: logging.Logger, event: str) -> None:
        self._logger = logger
        self._event = event
        self._said = False
        self._lock = threading.Lock()

    def refused(self, environ: Mapping[str, Any]) -> None:
        """A client limit refused this request (its WSGI ``environ``): say so, the first time
        only, if a proxy forwarded it and ProxyFix did not read that."""
        forwarded = any(name in environ for name in FORWARDED_HEADERS)
        if self._said or not forwarded or PROXY_FIX_KEY in environ:
            return
        with self._lock:
            if self._said:
                return
            self._said = True
        self._logger.warning(
            self._event,
            extra={"reason": "server.trust_proxy is off: every client counts as the proxy"},
        )
