"""Group commit for small writes from many threads.

Threads hand a write (a callable taking a connection) to :meth:`TransactionBatcher.run` and
wait for it. One writer thread runs every write waiting at that moment in one transaction:
under load, N commits become one; alone, a write waits for nothing but its own transaction.
If a shared transaction fails, its writes are run again one per transaction, so one bad
write cannot fail its neighbours.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import sqlalchemy as sa

from csat_hook.db import run_transaction

MAX_BATCH = 128


@dataclass
class _Write:
    work: Callable[[sa.Connection], Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class TransactionBatcher:
    """Runs writes from many threads in shared transactions. ``engine()`` gives the engine."""

    def __init__(self, engine: Callable[[], sa.Engine], *, name: str) -> None:
        self.engine = engine
        self.name = name
        self._queue: queue.SimpleQueue[_Write] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, work: Callable[[sa.Connection], Any]) -> Any:
        """Run ``work`` in a transaction (shared with concurrent writes); return its result.

        Raises what the write or its transaction raised.
        """
        self._ensure_thread()
        write = _Write(work)
        self._queue.put(write)
        write.done.wait()
        if write.error is not None:
            raise write.error
        return write.result

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                results = run_transaction(self.engine(),
                                          lambda conn, b=batch: [w.work(conn) for w in b])
                for write, result in zip(batch, results, strict=True):
                    write.result = result
            except Exception as exc:
                if len(batch) == 1:
                    batch[0].error = exc
                else:
                    for write in batch:  # isolate the failing write
                        try:
                            write.result = run_transaction(self.engine(), write.work)
                        except Exception as single:
                            write.error = single
            for write in batch:
                write.done.set()
