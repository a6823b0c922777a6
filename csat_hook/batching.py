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
from typing import Generic
from typing import TypeVar

import sqlalchemy as sa

from csat_hook.db import run_transaction

MAX_BATCH = 128

T = TypeVar("T")


class BatchThread(Generic[T]):
    """A daemon thread that hands ``handle`` everything queued at that moment (up to
    ``MAX_BATCH`` items), batch after batch.

    Started on first :meth:`put`, so it lives in the process that serves (after a fork).
    ``handle`` must not raise: each item carries its own outcome to its waiter.
    """

    def __init__(self, handle: Callable[[list[T]], None], *, name: str) -> None:
        self._handle = handle
        self._name = name
        self._queue: queue.SimpleQueue[T] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, item: T) -> None:
        self._ensure_thread()
        self._queue.put(item)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._handle(batch)


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
        self._writer: BatchThread[_Write] = BatchThread(self._write_batch, name=name)

    def run(self, work: Callable[[sa.Connection], Any]) -> Any:
        """Run ``work`` in a transaction (shared with concurrent writes); return its result.

        Raises what the write or its transaction raised.
        """
        write = _Write(work)
        self._writer.put(write)
        write.done.wait()
        if write.error is not None:
            raise write.error
        return write.result

    def _write_batch(self, batch: list[_Write]) -> None:
        try:
            results = run_transaction(self.engine(),
                                      lambda conn: [w.work(conn) for w in batch])
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
