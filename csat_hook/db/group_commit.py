"""Group commit: one transaction for every write waiting at that moment.

Threads hand an item to :meth:`GroupCommit.submit` and wait. The first thread to arrive when
no batch is being written writes one itself (the leader): everything queued at that moment
(up to :data:`MAX_BATCH` items, its own first) in one transaction, with ``write(conn,
items)``. Threads arriving meanwhile queue behind it; when its batch has committed the
leader answers them if their items were in it, else wakes the first of them to lead the next
batch, and returns. Under load, N commits become one (the database does the same with its
own group commit); alone, an item is written on its own thread with no hand-off at all:
each thread switch on the way to a writer thread and back cost more CPU than the statement's
client side (benchmarks/ack_budget.py), and a close at a few a second is always alone.

If a shared transaction fails, its items are written again one per transaction, so one bad
item cannot fail its neighbours; each waiter gets its own result or its own error.

Used by intake (closes: surveys and their queued replies, multi-row inserts), by the outbox
(delivery outcomes) and by the rating pages (clicks).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(eq=False)
class _Waiting(Generic[T, R]):
    """One submitted item. ``wake`` is set when it was written (``finished``) or when it is
    to lead the next batch (``lead``); ``abandoned`` when its submitter stopped waiting."""

    item: T
    wake: threading.Event
    result: R | None = None
    error: BaseException | None = None
    finished: bool = False
    lead: bool = False
    abandoned: bool = False


class GroupCommit(Generic[T, R]):
    """Writes items from many threads in shared transactions.

    ``engine()`` gives the engine (read at each batch, so a test may swap it).
    ``write(conn, items)`` runs inside the transaction and returns one result per item, in
    order. ``after_commit(results)`` runs once a batch committed (to wake a worker, say), on
    the thread that wrote it. ``single(items)`` says that ``write`` sends those items as ONE
    statement, atomic on its own: the batch then runs in autocommit on PostgreSQL
    (:func:`run_statement`, no BEGIN and COMMIT round trips; committed before anyone is
    answered all the same); otherwise, and always on SQLite, in a transaction. That
    autocommit connection is kept from one batch to the next while they keep coming, and
    closed after :data:`HOLD_IDLE_SECONDS` without one by a small thread that lives only
    while a connection is held (started in the process that writes, so after a fork).
    :meth:`close` waits for what was handed over and closes the connection; a later
    :meth:`submit` opens another.
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
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when no batch is written
        self._queue: deque[_Waiting[T, R]] = deque()
        self._leading = False  # a thread is writing a batch (it alone uses _held)
        self._held = HeldConnection()
        # Taken while a statement runs on _held, so the idle thread never closes it under a
        # writer (a test, or a caller of _transaction, may run one outside a batch).
        self._held_lock = threading.Lock()
        self._last_batch = 0.0  # monotonic time the last batch ended
        self._janitor: threading.Thread | None = None

    def submit(self, item: T, *, timeout: float | None = None) -> R:
        """Store ``item`` (shared transaction); return its result once committed.

        Raises what its write or transaction raised, or TimeoutError after ``timeout``
        seconds spent waiting behind another thread's batch (the item may still be committed
        later). A thread writing a batch itself waits for the database as long as it takes.
        """
        waiting: _Waiting[T, R] = _Waiting(item, threading.Event())
        with self._lock:
            self._queue.append(waiting)
            lead = not self._leading
            self._leading = True
        if not lead:
            lead = self._follow(waiting, timeout)
        if lead:
            self._lead(waiting)
        if waiting.error is not None:
            raise waiting.error
        return waiting.result  # type: ignore[return-value]  # set when there is no error

    def _follow(self, waiting: _Waiting[T, R], timeout: float | None) -> bool:
        """Wait behind the batch being written: False once ``waiting`` was written, True
        when it is to lead the next batch. TimeoutError after ``timeout`` seconds."""
        try:
            woken = waiting.wake.wait(timeout)
        except BaseException:  # KeyboardInterrupt, SystemExit, a greenlet killed…
            with self._lock:
                waiting.abandoned = True
                if waiting in self._queue:  # not being written: now it never will be
                    self._queue.remove(waiting)
                if waiting.lead:  # made to lead just now: the queue goes to another
                    self._hand_over()
            raise
        if not woken:
            with self._lock:
                if not waiting.wake.is_set():  # not woken while the lock was awaited
                    waiting.abandoned = True  # never made a leader: no one waits to lead
                    raise TimeoutError(f"{self._name}: the database did not answer in time")
        return waiting.lead

    def _lead(self, own: _Waiting[T, R]) -> None:
        """Write batches from the head of the queue until ``own`` is written; then hand the
        queue to the first thread still waiting, or leave it idle. Whatever happens, the
        batch's waiters are answered and the queue is never left without a leader."""
        handed = False
        try:
            while True:
                with self._lock:
                    size = min(len(self._queue), MAX_BATCH)
                    batch = [self._queue.popleft() for _ in range(size)]
                try:
                    self._commit(batch)
                finally:
                    for waiting in batch:
                        if not waiting.finished:  # _commit raised (after_commit, say)
                            waiting.error = waiting.error or RuntimeError(
                                f"{self._name}: the batch was not written"
                            )
                            waiting.finished = True
                        waiting.wake.set()
                with self._lock:
                    if not self._queue:
                        break
                    if own.finished and self._wake_next():
                        handed = True
                        return
                    # Own item not written yet (only abandoned items were ahead of it), or
                    # nobody left to hand over to: write the next batch here.
        finally:
            if not handed:
                with self._lock:
                    if not own.finished and own in self._queue:
                        # Leaving by an exception before its own item's batch: this thread
                        # raises, so its item leaves the queue (not written) and it must
                        # not be the one the queue is handed to.
                        self._queue.remove(own)
                    self._hand_over()
            self._last_batch = time.monotonic()
            self._watch_idle()

    def _hand_over(self) -> None:
        """Wake the first thread still waiting to lead the next batch, or, if none is left,
        mark the queue idle (what is queued then was given up on: the next leader writes
        it). Called with the lock held, by the thread that leads and is leaving."""
        if not self._wake_next():
            self._leading = False
            self._idle.notify_all()

    def _wake_next(self) -> bool:
        """Make the first thread still waiting (not given up) lead the next batch and wake
        it; False when there is none. Called with the lock held."""
        successor = next((w for w in self._queue if not w.abandoned), None)
        if successor is None:
            return False
        successor.lead = True
        successor.wake.set()
        return True

    def _commit(self, batch: list[_Waiting[T, R]]) -> None:
        committed: list[R] = []
        try:
            results = self._transaction([w.item for w in batch])
            for waiting, result in zip(batch, results, strict=True):
                waiting.result = result
                waiting.finished = True
            committed.extend(results)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].finished = True
            else:
                for waiting in batch:  # isolate the failing item; the others still commit
                    try:
                        waiting.result = self._transaction([waiting.item])[0]
                        committed.append(waiting.result)
                    except Exception as single:
                        waiting.error = single
                    waiting.finished = True
        if committed and self._after_commit is not None:
            self._after_commit(committed)

    def _transaction(self, items: list[T], held: HeldConnection | None = None) -> Sequence[R]:
        held = held or self._held
        engine = self._engine()
        work: Callable[[sa.Connection], Sequence[R]] = lambda conn: self._write(conn, items)  # noqa: E731
        if self._single is None or not self._single(items):
            return run_transaction(engine, work)
        if engine.dialect.name != "postgresql":
            return run_statement(engine, work)  # a transaction: SQLite's writer lock
        with self._held_lock:
            return held.run(engine, work)

    def _watch_idle(self) -> None:
        """Start the thread that closes the held connection after an idle spell, if a
        connection is held and no such thread runs."""
        if not self._held.holding:
            return
        with self._lock:
            if self._janitor is not None and self._janitor.is_alive():
                return
            self._janitor = threading.Thread(
                target=self._close_when_idle, name=f"{self._name}-idle", daemon=True
            )
            self._janitor.start()

    def _close_when_idle(self) -> None:
        while True:
            with self._lock:
                idle = time.monotonic() - self._last_batch
                # No batch can start while the lock is held, and none is running; a statement
                # run outside a batch holds _held_lock (then look again later).
                if (
                    not self._leading
                    and idle >= HOLD_IDLE_SECONDS
                    and self._held_lock.acquire(blocking=False)
                ):
                    try:
                        self._held.release()
                    finally:
                        self._held_lock.release()
                    self._janitor = None
                    return
                wait = max(HOLD_IDLE_SECONDS - idle, 0.05)
            time.sleep(wait)

    def close(self, timeout: float = 10.0) -> None:
        """Wait (up to ``timeout`` seconds) for the items already handed over to be written,
        then close the held connection. A process that builds writers more than once (tests,
        an application embedding the service) would otherwise keep every one's connection,
        and through it its engine and everything the engine compiled."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._leading:
                left = deadline - time.monotonic()
                if left <= 0:
                    return  # a batch still being written keeps its connection
                self._idle.wait(left)
            with self._held_lock:
                self._held.release()


def run_each(conn: sa.Connection, works: list[Callable[[sa.Connection], R]]) -> list[R]:
    """A ``write`` for a :class:`GroupCommit` of callables: run each on the connection."""
    return [work(conn) for work in works]
