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
from typing import Any
from typing import Generic
from typing import TypeVar

import sqlalchemy as sa

from csat_hook.db.engine import HOLD_IDLE_SECONDS
from csat_hook.db.engine import HeldConnection
from csat_hook.db.engine import run_statement
from csat_hook.db.engine import run_transaction

MAX_BATCH = 128
_STOP: Any = object()  # queued by close(): the writer ends after what came before it

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Waiting(Generic[T, R]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None


@dataclass
class _Lane(Generic[T, R]):
    """One writer thread's queue and held connection (a closed writer's next thread gets
    new ones, so the old thread's stop mark and release never reach it)."""

    queue: queue.SimpleQueue[_Waiting[T, R]] = field(default_factory=queue.SimpleQueue)
    held: HeldConnection = field(default_factory=HeldConnection)
    thread: threading.Thread | None = None


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
    serves (after a fork). :meth:`close` ends it once what was queued is written; a later
    :meth:`submit` starts another.
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
        self._lane: _Lane[T, R] = _Lane()
        self._lock = threading.Lock()

    def submit(self, item: T, *, timeout: float | None = None) -> R:
        """Store ``item`` (shared transaction); return its result once committed.

        Raises what its write or transaction raised, or TimeoutError after ``timeout``
        seconds (the item may still be committed later).
        """
        waiting: _Waiting[T, R] = _Waiting(item)
        with self._lock:  # into the lane whose thread is running (close() swaps lanes)
            lane = self._lane
            if lane.thread is None or not lane.thread.is_alive():
                # First use, or the thread died: a new one takes what is queued.
                lane.thread = threading.Thread(
                    target=self._loop, args=(lane,), name=self._name, daemon=True
                )
                lane.thread.start()
            lane.queue.put(waiting)
        if not waiting.done.wait(timeout):
            raise TimeoutError(f"{self._name}: the database did not answer in time")
        if waiting.error is not None:
            raise waiting.error
        return waiting.result  # type: ignore[return-value]  # set when there is no error

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end the writer thread and close its connection
        (waiting up to ``timeout`` for it). A process that builds writers more than once
        (tests, an application embedding the service) would otherwise keep every one's
        thread, and through it its engine and everything the engine compiled."""
        with self._lock:
            lane, self._lane = self._lane, _Lane()
        if lane.thread is None or not lane.thread.is_alive():
            lane.held.release()
            return
        lane.queue.put(_STOP)  # behind everything submitted to this lane
        lane.thread.join(timeout)

    def _loop(self, lane: _Lane[T, R]) -> None:
        stopping = False
        while not stopping:
            try:
                first = lane.queue.get(timeout=HOLD_IDLE_SECONDS)
            except queue.Empty:
                lane.held.release()
                first = lane.queue.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    following = lane.queue.get_nowait()
                except queue.Empty:
                    break
                if following is _STOP:
                    stopping = True
                    break
                batch.append(following)
            self._commit(batch, lane.held)
        lane.held.release()

    def _commit(self, batch: list[_Waiting[T, R]], held: HeldConnection) -> None:
        committed: list[R] = []
        try:
            results = self._transaction([w.item for w in batch], held)
            for waiting, result in zip(batch, results, strict=True):
                waiting.result = result
            committed.extend(results)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for waiting in batch:  # isolate the failing item; the others still commit
                    try:
                        waiting.result = self._transaction([waiting.item], held)[0]
                        committed.append(waiting.result)
                    except Exception as single:
                        waiting.error = single
        if committed and self._after_commit is not None:
            self._after_commit(committed)
        for waiting in batch:
            waiting.done.set()

    def _transaction(self, items: list[T], held: HeldConnection | None = None) -> Sequence[R]:
        held = held or self._lane.held
        engine = self._engine()
        work: Callable[[sa.Connection], Sequence[R]] = lambda conn: self._write(conn, items)  # noqa: E731
        if self._single is None or not self._single(items):
            return run_transaction(engine, work)
        if engine.dialect.name != "postgresql":
            return run_statement(engine, work)  # a transaction: SQLite's writer lock
        return held.run(engine, work)


def run_each(conn: sa.Connection, works: list[Callable[[sa.Connection], R]]) -> list[R]:
    """A ``write`` for a :class:`GroupCommit` of callables: run each on the connection."""
    return [work(conn) for work in works]
