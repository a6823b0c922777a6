"""Starting and stopping delivery in a process: the one start-up for ``serve`` and ``worker``.

``csat-hook serve`` runs it inside each gunicorn web process (a queued reply wakes it through
memory); ``csat-hook worker`` runs it alone. On PostgreSQL a listener also turns NOTIFYs from
other processes into wake-ups: on the worker's own channel (a producer wakes one worker) and on
the shared one (broadcasts).
"""

from __future__ import annotations

from dataclasses import dataclass

from csat_hook.outbox.wake import PostgresListener
from csat_hook.outbox.worker import DeliveryWorker


@dataclass
class RunningDelivery:
    """A started worker and its listener; :meth:`stop` stops both."""

    worker: DeliveryWorker
    listener: PostgresListener | None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming, wait up to ``timeout`` for replies in flight, stop listening."""
        self.worker.stop(timeout)
        if self.listener is not None:
            self.listener.stop()


def start_delivery(
    worker: DeliveryWorker, *, database_url: str, threads: int | None = None
) -> RunningDelivery:
    """Start ``worker``'s threads and, on PostgreSQL, the NOTIFY listener that wakes them."""
    listener = None
    if worker.engine.dialect.name == "postgresql":
        listener = PostgresListener(database_url, worker.waker, worker_id=worker.worker_id)
        listener.start()
    # Its beats say whether the listener hears: a worker is the one woken for a reply only
    # while it does.
    worker.start(threads, hearing=listener.hearing if listener is not None else None)
    return RunningDelivery(worker, listener)
