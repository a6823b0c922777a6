"""SQLite's one writer across processes, waited for on a file lock instead of in SQLite's
busy handler.

A second process that finds the database's writer lock taken (``BEGIN IMMEDIATE`` while the
web's closes, a worker's outcomes or a customer's click commit) waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10, 15, 20, 25… up to 100 ms between looks whatever happens
meanwhile: a write that holds the lock 3 ms can keep the other process waiting 8, 18 or 33
ms, and the web's two processes take turns at it all day. :class:`ProcessWriterLock` is an
``flock`` on a file beside the database (``<database>-writer``) that every writer of this
service takes before ``BEGIN IMMEDIATE`` and gives back after its ``COMMIT``, when the
connection goes back to the pool (as the engine's in-process writer lock): a waiting process
looks again within :data:`LAST_POLL` seconds of the lock's release.

It only orders this service's writers; SQLite's own lock still decides. A writer that does
not take it (the ``sqlite3`` shell, an older release during an upgrade) is waited for by the
busy handler as before, and where the file cannot be created or locked (a read-only
folder, a file system without ``flock``) a write goes on without it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import weakref

# The first wait between two tries of a taken lock, doubled after each up to LAST_POLL: a
# short write is over within a few looks, a long one (a sync's part) costs one wake-up
# every LAST_POLL seconds (each sleep costs ~20-50 µs of CPU on a 2-vCPU VM).
FIRST_POLL = 0.0002
LAST_POLL = 0.002

SUFFIX = "-writer"


class ProcessWriterLock:
    """The writer lock of one SQLite file across processes (see the module docstring).

    Contract: :meth:`acquire` returns True once this process holds the lock (or cannot
    have one: then SQLite's own lock alone orders writers), False if ``deadline`` (a
    :func:`time.monotonic` value) passed first. :meth:`release` gives it back. One thread
    at a time per process: the engine's in-process writer lock is held around both. The
    file is open only while the lock is held or awaited: no descriptor outlives a write (a
    process that forks between writes holds none of the database's files), and each acquire
    is its own open file description. A child forked during a write closes its copy of the
    descriptor at once (:func:`_forget_in_child`): the lock stays its parent's, and is free
    when the parent releases it, however long the child lives.
    """

    def __init__(self, database: str) -> None:
        self.path = database + SUFFIX
        self._fd: int | None = None
        _LOCKS.add(self)

    def acquire(self, deadline: float) -> bool:
        """Take the lock, trying until ``deadline``; see the class contract."""
        try:
            # Read-only is enough for flock: a file another user made, readable, still works.
            fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:  # a read-only folder, say: SQLite's lock alone
            return True
        delay = FIRST_POLL
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            except OSError:  # ENOLCK and the like: no lock here, SQLite's alone
                os.close(fd)
                return True
            else:
                self._fd = fd
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                os.close(fd)
                return False
            time.sleep(min(delay, left))
            delay = min(delay * 2, LAST_POLL)

    def release(self) -> None:
        """Give the lock back: closing the descriptor that took it releases it (nothing when
        none is held)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


# Every lock of this process, for the child of a fork (weakly: an engine disposed of takes its
# lock with it).
_LOCKS: weakref.WeakSet[ProcessWriterLock] = weakref.WeakSet()


def _forget_in_child() -> None:
    """In a forked child: close the descriptors of locks its parent held. The copy shares the
    parent's open file description; kept, it would hold the parent's lock until the child
    exits, past the parent's release."""
    for lock in list(_LOCKS):
        with contextlib.suppress(OSError):
            lock.release()


os.register_at_fork(after_in_child=_forget_in_child)
