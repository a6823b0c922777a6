"""The one retry policy: how long to wait before trying again.

Every caller that retries uses :class:`Backoff`: a reply's next attempt, an agent look-up, a
Google API call, the delivery loop riding out a database outage, a delivered reply's outcome
being written, the NOTIFY listener reconnecting. Waits grow exponentially from ``base``
seconds, capped at ``cap``, with *equal jitter* (half fixed, half random) so that clients that
failed together do not come back together, yet never retry at once. A server's own
``Retry-After`` is "not before": a longer one wins over the backoff's step, up to
``max_retry_after``, plus up to 10% so a crowd of clients told the same instant spreads out; a
shorter one (0, a date already past, the second a rate limiter says each time) is met by the
backoff's own step, so a server repeating it never has every attempt spent within seconds.
What a
``Retry-After`` header asks for is read by one rule, :func:`parse_retry_after`, for the
helpdesks' calls and Google's alike; what Google's ``google.rpc.RetryInfo`` asks for (a
``retryDelay`` Duration in an error's body) by :func:`parse_duration`, and counts as a
Retry-After does.

Which failures are worth retrying is a property of each boundary, not of the policy: see
``RETRYABLE_STATUS`` in :mod:`csat_hook.helpdesks.transport` and in
:mod:`csat_hook.sync.google.session`.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with equal jitter. Times in seconds."""

    base: float
    cap: float
    max_retry_after: float | None = None  # None: a Retry-After is capped at ``cap``

    def ceiling(self, failures: int) -> float:
        """The longest wait after ``failures`` failed attempts in a row."""
        return float(min(self.cap, self.base * 2.0 ** max(0, failures - 1)))

    def least_total(self, retries: int) -> float:
        """The shortest time ``retries`` waits in a row can add up to (every wait at the low
        end of its jitter, no Retry-After): what a retry budget guarantees at worst."""
        return sum(self.ceiling(failures) / 2 for failures in range(1, retries + 1))

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after ``failures`` failed attempts in a row (1 after the first).

        ``retry_after`` is what the server asked for, when it said so: "not before". One
        longer than the backoff's step wins (up to ``max_retry_after``); a shorter one, zero
        ("Retry-After: 0", a date already past), none, a negative or a NaN one (a vendor's
        JSON can say anything) leave the backoff's own step: a vendor repeating "1" to every
        attempt had them all spent within seconds, the survey failed for a limit that lasted
        a minute.
        """
        ceiling = self.ceiling(failures)
        own = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None and retry_after > 0:
            limit = self.cap if self.max_retry_after is None else self.max_retry_after
            return max(own, min(retry_after, limit) * random.uniform(1.0, 1.1))
        return own


# Delta-seconds (RFC 9110: digits; a fraction is tolerated). Not Python's float(): it reads
# "-5", "nan", "inf", "1e12", "1_000" and non-ASCII digits, and a negative or NaN wait was
# "now": a rate-limited reply retried at once, its every attempt spent within a second.
_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date (one in
    the past: 0); None for anything else (the caller's own backoff decides).

    A header sent more than once (a proxy's beside the API's) reaches us as one value, its
    field lines joined with ", " (RFC 9110 5.3; urllib3 does so): each is read, and the
    longest wait counts, as of several wait headers (:func:`longest_wait`). Read whole,
    "120, 120" was neither a number nor a date: the 429 was retried at the backoff's first
    step, its every attempt spent while the limit lasted."""
    if not value:
        return None
    return longest_wait(_one_retry_after(field, now) for field in _field_lines(value))


# The day names an HTTP date starts with ("Tue, 14 Nov 2023 ..."; RFC 850's "Tuesday, ..."):
# the comma after one is the date's own, not a separator of joined field lines.
_DAY_NAMES = frozenset(
    day.casefold()
    for day in (
        *("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
        *("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    )
)


def _field_lines(value: str) -> list[str]:
    """``value`` split back into the field lines a recipient joined with commas."""
    lines: list[str] = []
    for piece in value.split(","):
        if lines and lines[-1].strip().casefold() in _DAY_NAMES:
            lines[-1] += "," + piece
        else:
            lines.append(piece)
    return lines


def _one_retry_after(value: str, now: Callable[[], float]) -> float | None:
    """One field line of ``Retry-After`` (see :func:`parse_retry_after`)."""
    value = value.strip()
    if not value:
        return None
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)  # inf when too large: capped by the retry policy
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now())


def longest_wait(waits: Iterable[float | None]) -> float | None:
    """The longest of several "not before" waits an answer gives (headers, a body's retry
    info), those it does not give being None; None when it gives none."""
    given = [wait for wait in waits if wait is not None]
    return max(given) if given else None


# A google.protobuf.Duration's JSON form: seconds, up to 9 fractional digits, and "s"
# ("30s", "1.5s", "0.000001s"). A negative one ("-5s") is no wait; nothing else is read.
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]{1,9})?)s")


def parse_duration(value: object) -> float | None:
    """Seconds from a Duration's JSON string (``"30s"``, ``"1.5s"``); None for anything else
    (a number, a negative, "nan", an exponent: the caller's own backoff decides)."""
    if not isinstance(value, str):
        return None
    match = _DURATION.fullmatch(value.strip())
    return float(match.group(1)) if match else None
