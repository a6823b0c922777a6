"""The sync lock: a lease row taken with compare-and-set, so overlapping runs (cron and a
manual run, two clock processes) are serialised on SQLite and PostgreSQL alike. A holder that
died leaves a lease that expires after ``sync.lock_lease_seconds``."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from csat_hook.clock import Clock
from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import sync_locks
from csat_hook.errors import SyncError
from csat_hook.errors import SyncLockedError

logger = logging.getLogger(__name__)

LOCK_NAME = "sync"


def holder_id() -> str:
    """``host:pid:random``: who holds the lock, readable in the table."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SyncLock:
    """Acquire, renew and release the one sync lease."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock,
        sleep: Callable[[float], None],
        lease_seconds: float,
        wait_seconds: float,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.sleep = sleep
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds
        # A third of the lease: two renewals may fail (the database briefly down) before it
        # expires under a live run.
        self.heartbeat_seconds = lease_seconds / 3

    def _lease(self) -> datetime:
        return self.clock() + timedelta(seconds=self.lease_seconds)

    def acquire(self, holder: str) -> None:
        """Take the lock, waiting up to ``wait_seconds``; SyncLockedError if another run has it."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            with self.engine.begin() as conn:
                if acquire_lock(conn, LOCK_NAME, holder, self.clock(), self._lease()):
                    return
                state = lock_state(conn, LOCK_NAME)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                since = state.acquired_at.isoformat() if state and state.acquired_at else "?"
                raise SyncLockedError(
                    f"another sync is running (lock held since {since}; "
                    "it expires after sync.lock_lease_seconds)"
                )
            self.sleep(min(1.0, remaining))

    def renew(self, holder: str | None) -> None:
        """Extend our lease (no-op for None: a dry run holds no lock); SyncError when lost."""
        if holder is None:
            return
        with self.engine.begin() as conn:
            self.renew_in(conn, holder)

    @contextlib.contextmanager
    def kept(self, holder: str) -> Iterator[None]:
        """While the block runs, renew ``holder``'s lease every ``heartbeat_seconds`` in a
        thread. Renewed only between phases, it expired under a live run whose write to the
        outputs outlasted it, and a second run wrote the report alongside. Only a holder
        that died lets it expire now. A renewal that fails (the database down, the lease
        lost) is left to the next one and to the run's own checks (:meth:`renew_in`)."""
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat_seconds):
                try:
                    self.renew(holder)
                except Exception as exc:
                    # Lost: the run's own renewal says so before it stores anything. Anything
                    # else (the database down, no pooled connection in time) is the next
                    # beat's to retry: this thread must not end while the run goes on.
                    logger.warning("sync.lease-renewal-failed", extra={"error": type(exc).__name__})

        thread = threading.Thread(target=beat, name="sync-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def renew_in(self, conn: sa.Connection, holder: str | None) -> None:
        """Extend our lease inside the caller's transaction, just before it commits; SyncError
        (the caller rolls back) when it was lost. A check in a transaction of its own left a
        gap: the lease taken over after it, the batch was committed alongside the new run's.
        On PostgreSQL the row stays locked until the commit, so a run taking over waits and
        then sees the extended lease; on SQLite the writer is one at a time anyway."""
        if holder is None:
            return
        if not renew_lock(conn, LOCK_NAME, holder, self._lease()):
            raise SyncError(
                "lost the sync lock (this run took longer than "
                "sync.lock_lease_seconds and another run took over)"
            )

    def release(self, holder: str) -> None:
        """Give the lock back (if the database is down, the lease expires by itself)."""
        try:
            with self.engine.begin() as conn:
                release_lock(conn, LOCK_NAME, holder)
        except DBAPIError as exc:  # the lease expires by itself
            logger.warning("sync.unlock-failed", extra={"error": type(exc.orig).__name__})


# --- the lease row's statements ------------------------------------------------------------


def acquire_lock(
    conn: sa.Connection, name: str, holder: str, now: datetime, lease_until: datetime
) -> bool:
    """Take the named lease if it is free, expired or already ours (compare-and-set).

    On PostgreSQL a concurrent UPDATE of the same row waits for the other transaction and
    then re-checks the condition, so exactly one of two racing callers wins.
    """
    conn.execute(
        dialect_insert(conn.dialect.name, sync_locks)
        .values(name=name)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    result = conn.execute(
        sa.update(sync_locks)
        .where(
            sync_locks.c.name == name,
            sa.or_(
                sync_locks.c.holder.is_(None),
                sync_locks.c.lease_until < now,
                sync_locks.c.holder == holder,
            ),
        )
        .values(holder=holder, lease_until=lease_until, acquired_at=now)
    )
    return result.rowcount == 1


def renew_lock(conn: sa.Connection, name: str, holder: str, lease_until: datetime) -> bool:
    """Extend our lease; False when it was lost (expired and taken by another run)."""
    result = conn.execute(
        sa.update(sync_locks)
        .where(sync_locks.c.name == name, sync_locks.c.holder == holder)
        .values(lease_until=lease_until)
    )
    return result.rowcount == 1


def release_lock(conn: sa.Connection, name: str, holder: str) -> None:
    conn.execute(
        sa.update(sync_locks)
        .where(sync_locks.c.name == name, sync_locks.c.holder == holder)
        .values(holder=None, lease_until=None)
    )


def lock_state(conn: sa.Connection, name: str) -> sa.Row[Any] | None:
    return conn.execute(sa.select(sync_locks).where(sync_locks.c.name == name)).first()
