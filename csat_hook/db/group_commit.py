"""Group commit: one transaction for every write waiting at that moment.

Threads hand an item to :meth:`GroupCommit.submit` and wait. One writer thread per process
takes everything queued (up to :data:`MAX_BATCH` items) and stores it with ``write(conn,
items)`` in one transaction: under load, N commits become one (the database does the same
with its own group commit); alone, an item waits for nothing but its own transaction.

If a shared transaction fails, its items are written again one per transaction, so one bad
item cannot fail its neighbours; each waiter gets its own result or its own error.

Used by intake (closes: surveys and their queued replies, multi-row inserts) and by the outbox
(delivery outcomes).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Generic
from typing import TypeVar

import sqlalchemy as sa

from csat_hook.db.engine import HOLD_IDLE_SECONDS
from csat_hook.db.engine import HeldConnection
from csat_hook.db.engine import run_statement
from csat_hook.db.engine import run_transaction

MAX_BATCH = 128

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Writes items from many threads in shared transactions.

    ``engine()`` gives the engine (read at each batch, so a test may swap it).
    ``write(conn, items)`` runs inside the transaction and returns one result per item, in
    order. ``after_commit(results)`` runs once a batch committed (to wake a worker, say).
    ``single(items)`` says that ``write`` sends those items as ONE statement, atomic on its
    own: the batch then runs in autocommit on PostgreSQL (:func:`run_statement`, no BEGIN and
    COMMIT round trips; committed before anyone is answered all the same); otherwise, and
    always on SQLite, in a transaction. The writer keeps that autocommit connection from one
    batch to the next while they keep coming (:data:`HOLD_IDLE_SECONDS`).
    The writer thread starts on the first :meth:`submit`, so it lives in the process that
    serves (after a fork).
    """

    def __init__(
        self,
        engine: Callable[[], sa.Engine],
        write: Callable[[sa.Connection, list[T]], Sequence[R]],
        *,
        name: str,
        after_commit: Callable[[Sequence[R]], None] | None = None,
        single: Callable[[list[T]], bool] | None = None,
    ) -> None:
        self._engine = engine
        self._single = single
        self._write = write
        self._after_commit = after_commit
        self._name = name
        self._queue: queue.SimpleQueue[_Waiting[T, R]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._held = HeldConnection()  # the writer thread's, for one-statement batches

    def submit(self, item: T, *, timeout: float | None = None) -> R:
        """Store ``item`` (shared transaction); return its result once committed.

        Raises what its write or transaction raised, or TimeoutError after ``timeout``
        seconds (the item may still be committed later).
        """
        waiting: _Waiting[T, R] = _Waiting(item)
        self._ensure_thread()
        self._queue.put(waiting)
        if not waiting.done.wait(timeout):
            raise TimeoutError(f"{self._name}: the database did not answer in time")
        if waiting.error is not None:
            raise waiting.error
        return waiting.result  # type: ignore[return-value]  # set when there is no error

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=HOLD_IDLE_SECONDS)
            except queue.Empty:
                self._held.release()
                first = self._queue.get()
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._commit(batch)

    def _commit(self, batch: list[_Waiting[T, R]]) -> None:
        committed: list[R] = []
        try:
            results = self._transaction([w.item for w in batch])
            for waiting, result in zip(batch, results, strict=True):
                waiting.result = result
            committed.extend(results)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for waiting in batch:  # isolate the failing item; the others still commit
                    try:
                        waiting.result = self._transaction([waiting.item])[0]
                        committed.append(waiting.result)
                    except Exception as single:
                        waiting.error = single
        if committed and self._after_commit is not None:
            self._after_commit(committed)
        for waiting in batch:
            waiting.done.set()

    def _transaction(self, items: list[T]) -> Sequence[R]:
        engine = self._engine()
        work: Callable[[sa.Connection], Sequence[R]] = lambda conn: self._write(conn, items)  # noqa: E731
        if self._single is None or not self._single(items):
            return run_transaction(engine, work)
        if engine.dialect.name != "postgresql":
            return run_statement(engine, work)  # a transaction: SQLite's writer lock
        return self._held.run(engine, work)


def run_each(conn: sa.Connection, works: list[Callable[[sa.Connection], R]]) -> list[R]:
    """A ``write`` for a :class:`GroupCommit` of callables: run each on the connection."""
    return [work(conn) for work in works]
