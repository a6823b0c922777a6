"""Waking delivery workers when a reply is queued; polling is only the fallback.

Inside one process (``csat-hook serve``) the webhook handler calls :meth:`Waker.notify`
after its commit. Across processes on PostgreSQL, the webhook transaction NOTIFYs one live
worker on its own channel (:func:`~csat_hook.outbox.store.notify_workers`: one worker woken
per batch of closes, not all of them), and that worker's :class:`PostgresListener` turns it
into a local notify. Each listener also LISTENs on the shared ``csat_hook_outbox`` channel,
for broadcasts (operator requeues, alerts, no live worker known).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

import psycopg
from sqlalchemy.engine import make_url

from csat_hook.outbox.store import NOTIFY_CHANNEL
from csat_hook.outbox.store import worker_channel
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
    """LISTEN in a daemon thread and forward to a :class:`Waker`: on the shared outbox
    channel, and on ``worker_id``'s own channel when given.

    ``received`` counts the NOTIFYs that arrived, per channel (what "one worker woken per
    reply" is measured by).
    """

    def __init__(self, database_url: str, waker: Waker, *, worker_id: str | None = None) -> None:
        url = make_url(database_url).set(drivername="postgresql")
        self._conninfo = url.render_as_string(hide_password=False)
        self._waker = waker
        self.channels = [NOTIFY_CHANNEL]
        if worker_id is not None:
            self.channels.append(worker_channel(worker_id))
        self.received: Counter[str] = Counter()
        self.listening = threading.Event()
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
                    for channel in self.channels:  # plain identifiers (see worker_channel)
                        conn.execute(f"LISTEN {channel}")
                    failures = 0
                    self.listening.set()
                    # A notify may have been missed while (re)connecting: wake once to re-check.
                    self._waker.notify()
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=1.0):
                            self.received[notify.channel] += 1
                            self._waker.notify()
            except Exception as exc:  # any connection trouble: reconnect with backoff
                failures += 1
                delay = RECONNECT_BACKOFF.delay(failures)
                logger.warning(
                    "wake.listen-failed",
                    extra={"error": type(exc).__name__, "delay": round(delay, 3)},
                )
                self._stop.wait(delay)
