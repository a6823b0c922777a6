"""The database server's time, read through the host's clock (:class:`DatabaseClock`).

Every time the outbox compares was written by some process: a reply's due time by the web
process that queued it (or the worker that rescheduled it), a lease and a heartbeat by the
worker sending it, and each is compared by another process, on another host. Read off each
host's own clock, a worker host 30 s ahead of another took that one's heartbeat for 30 s old
and its live sends for a dead worker's (a takeover, and a second post, after
``delivery.worker_dead_after_seconds``); a web host behind delayed every reply by its skew,
one ahead cut the send delay short. Every process of one deployment reads the same database,
so its clock is the one they share: each process reads the database's time now and then and
keeps the difference to its own clock, so its timestamps are the database's, within half a
round trip.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import sqlalchemy as sa

from csat_hook.clock import Clock
from csat_hook.clock import utcnow

logger = logging.getLogger(__name__)

# How often the difference is read again (a host's clock drifts, or is stepped by NTP), and
# how soon after a failed read (the database unreachable: the last difference is kept).
REFRESH_SECONDS = 60.0
RETRY_SECONDS = 5.0
# A difference at least this large is logged (``clock.skew``): the operator should fix the
# host's time sync, whatever this module makes good.
SKEW_WARNING = timedelta(seconds=1)


class DatabaseClock:
    """``host()`` plus the last measured difference to the database server's clock.

    Measured once at construction (synchronously: the first timestamp is already the
    database's) and every :data:`REFRESH_SECONDS` after, in a background thread that a call
    starts, so a call never waits on the database, nor needs a connection while its caller
    holds the last one of the pool. A read that fails keeps the last difference (0 before any)
    and is tried again after :data:`RETRY_SECONDS`; it is logged, never raised.
    """

    def __init__(
        self,
        engine: sa.Engine,
        host: Clock = utcnow,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._host = host
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._due = 0.0  # monotonic time of the next read
        self._reading = False
        self._warned: timedelta | None = None
        self.refresh()

    @property
    def offset(self) -> timedelta:
        """The database's clock minus the host's, as last measured."""
        return self._offset

    def __call__(self) -> datetime:
        with self._lock:
            start = not self._reading and self._monotonic() >= self._due
            if start:
                self._reading = True
        if start:
            threading.Thread(target=self._read_in_background, name="db-clock", daemon=True).start()
        return self._host() + self._offset

    def _read_in_background(self) -> None:
        try:
            self._read()
        finally:
            with self._lock:
                self._reading = False

    def refresh(self) -> None:
        """Read the difference now (the caller waits)."""
        with self._lock:
            self._reading = True
        self._read_in_background()

    def _read(self) -> None:
        try:
            sent = self._monotonic()
            host = self._host()
            with self._engine.connect() as conn:
                server = conn.execute(sa.select(sa.func.clock_timestamp())).scalar_one()
            elapsed = self._monotonic() - sent
        except Exception as exc:  # the database unreachable: keep what was measured
            logger.warning("clock.read-failed", extra={"error": type(exc).__name__})
            with self._lock:
                self._due = self._monotonic() + RETRY_SECONDS
            return
        if server.tzinfo is None:  # a driver that gives it naive: the server's UTC
            server = server.replace(tzinfo=UTC)
        # The server read its clock about halfway through the round trip.
        offset = server - (host + timedelta(seconds=elapsed / 2))
        with self._lock:
            self._offset = offset
            self._due = self._monotonic() + REFRESH_SECONDS
        if abs(offset) >= SKEW_WARNING and (
            self._warned is None or abs(offset - self._warned) >= SKEW_WARNING
        ):
            self._warned = offset
            logger.warning(
                "clock.skew",
                extra={"seconds": round(offset.total_seconds(), 3), "using": "database"},
            )


def shared_clock(
    engine: sa.Engine, clock: Clock = utcnow, *, database_time: bool | None = None
) -> Clock:
    """The clock a process of a deployment on ``engine`` compares shared times by.

    On PostgreSQL, :class:`DatabaseClock` over ``clock`` when ``database_time`` is true or,
    by default (None), when ``clock`` is the host's own, :func:`~csat_hook.clock.utcnow` (a
    test's clock is its own); else ``clock`` itself (SQLite is one host's file). Every
    process that writes or compares a time another process reads takes its clock here: the
    web and the workers (the outbox), a sync and ``erase`` (the sync lease they share, the
    alerts a sync queues for the workers).
    """
    if engine.dialect.name == "postgresql" and (
        database_time or (database_time is None and clock is utcnow)
    ):
        return DatabaseClock(engine, clock)
    return clock
