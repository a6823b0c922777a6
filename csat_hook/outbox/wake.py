"""Waking delivery workers when a reply is queued; polling is only the fallback.

Inside one process (``csat-hook serve``) the webhook handler calls :meth:`Waker.notify`
after its commit. Across processes on PostgreSQL, the webhook transaction issues
``NOTIFY csat_hook_outbox`` and :class:`PostgresListener` turns it into a local notify.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy.engine import make_url

from csat_hook.outbox.store import NOTIFY_CHANNEL
from csat_hook.retry import Backoff

logger = logging.getLogger(__name__)

RECONNECT_BACKOFF = Backoff(base=1.0, cap=30.0)


class Waker:
    """A generation counter behind a condition: no wake-up is lost between check and wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Block until a notify newer than ``seen`` or the timeout; True when notified."""
        with self._cond:
            return self._cond.wait_for(lambda: self._generation != seen, timeout=timeout)


class PostgresListener:
    """LISTEN on the outbox channel in a daemon thread and forward to a :class:`Waker`."""

    def __init__(self, database_url: str, waker: Waker) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._waker = waker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    failures = 0
                    # A notify may have been missed while (re)connecting: wake once to re-check.
                    self._waker.notify()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self._waker.notify()
            except Exception as exc:  # any connection trouble: reconnect with backoff
                failures += 1
                delay = RECONNECT_BACKOFF.delay(failures)
                logger.warning(
                    "wake.listen-failed",
                    extra={"error": type(exc).__name__, "delay": round(delay, 3)},
                )
                self._stop.wait(delay)
