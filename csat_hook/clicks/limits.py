"""Requests per minute per reference and per client, in this process.

Counted by :class:`csat_hook.ratelimit.RateLimiter` (a fixed one-minute window per key, in a
bounded table, in each web process: with ``server.workers`` processes a client can get up to
that many times the limit through, which is enough to stop a scanner or a script hammering one
survey without a shared store). Refused requests are answered 429 and store nothing. A client
is its IPv4 address or its IPv6 /64 (:func:`csat_hook.ratelimit.client_key`); a limit hit
behind a proxy ``server.trust_proxy`` does not trust is said once
(:class:`csat_hook.ratelimit.ProxyWarning`).
"""

from __future__ import annotations

from csat_hook.ratelimit import ProxyWarning
from csat_hook.ratelimit import RateLimiter
from csat_hook.ratelimit import client_key

__all__ = ["ProxyWarning", "RateLimiter", "client_key"]
