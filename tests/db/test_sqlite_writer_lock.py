"""SQLite's one writer across processes: every write transaction of the service holds a
file lock beside the database (``<database>-writer``) from its BEGIN to its end, so a second
process waits for it on the lock and goes on as soon as it is free, not in SQLite's busy
handler's sleeps; a bounded write (a click's) still gives up at its bound."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db import engine as db_engine
from csat_hook.db.sqlite_lock import ProcessWriterLock


def _free(path: str) -> bool:
    """Whether nobody holds the lock file's lock (tried through a description of our own)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases what this description took
    return True


def _open_files() -> list[str]:
    fds = os.listdir("/proc/self/fd")
    return [os.path.realpath(f"/proc/self/fd/{fd}") for fd in fds]


def _engine(tmp_path: Path) -> sa.Engine:
    engine = db_engine.make_engine(f"sqlite:///{tmp_path / 'csat.sqlite3'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    return engine


def test_a_write_transaction_holds_the_file_lock_from_begin_to_its_end(tmp_path):
    engine = _engine(tmp_path)
    lock_file = str(tmp_path / "csat.sqlite3-writer")
    try:
        assert stat.S_IMODE(os.stat(lock_file).st_mode) == 0o600
        assert _free(lock_file)
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            assert not _free(lock_file)
        assert _free(lock_file)
        # Open only while held: a process that forks after a write shares no lock file.
        assert lock_file not in _open_files()
        # A read-only snapshot takes no writer lock, in SQLite or here.
        with db_engine.snapshot(engine) as conn:
            conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
            assert _free(lock_file)
        # Nor does a transaction that failed: the lock goes back with the connection.
        with pytest.raises(sa.exc.OperationalError), engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO missing VALUES (1)")
        assert _free(lock_file)
    finally:
        engine.dispose()


_HOLDER = textwrap.dedent(
    """
    import sys
    from csat_hook.db.engine import make_engine
    engine = make_engine(sys.argv[1])
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        print("holding", flush=True)
        sys.stdin.readline()
    print("committed", flush=True)
    """
)


def test_another_process_writing_holds_a_bounded_write_on_the_lock_then_lets_it_go(tmp_path):
    engine = _engine(tmp_path)
    url = f"sqlite:///{tmp_path / 'csat.sqlite3'}"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    bounded = engine.execution_options(**{db_engine.LOCK_WAIT: 0.3})
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        with pytest.raises(sa.exc.OperationalError) as refused, bounded.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (3)")
        took = time.monotonic() - started
        # Refused by the file lock at its bound (SQLite's own would say "database is locked").
        assert isinstance(refused.value.orig, TimeoutError), refused.value
        assert 0.25 <= took < 3, took
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "committed"
        with bounded.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (3)")
        with engine.connect() as conn:
            assert sorted(conn.exec_driver_sql("SELECT x FROM t").scalars()) == [2, 3]
    finally:
        holder.kill()
        holder.communicate()  # waits, and closes the pipes
        engine.dispose()


def test_a_waiting_writer_takes_the_lock_once_it_is_released(tmp_path):
    path = str(tmp_path / "db")
    first, second = ProcessWriterLock(path), ProcessWriterLock(path)
    assert first.acquire(time.monotonic() + 1)
    assert not second.acquire(time.monotonic() + 0.05)  # two descriptions exclude each other
    first.release()
    assert second.acquire(time.monotonic() + 1)
    assert not first.acquire(time.monotonic() + 0.05)
    second.release()
    second.release()  # not held: nothing to do
    assert first.acquire(time.monotonic())


def _child_tries(path: str, lock: ProcessWriterLock, done: multiprocessing.Queue) -> None:
    # The parent's object, inherited by fork, the parent's descriptor in it: the child must
    # take the lock through a description of its own, or it would hold the parent's lock.
    done.put(lock.acquire(time.monotonic() + 0.2))


def test_a_forked_child_waits_for_its_parents_lock(tmp_path):
    path = str(tmp_path / "db")
    lock = ProcessWriterLock(path)
    assert lock.acquire(time.monotonic() + 1)
    fork = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = fork.Queue()
    child = fork.Process(target=_child_tries, args=(path, lock, results))
    child.start()
    child.join(10)
    assert results.get(timeout=5) is False
    lock.release()
    child = fork.Process(target=_child_tries, args=(path, lock, results))
    child.start()
    child.join(10)
    assert results.get(timeout=5) is True
    results.close()
    results.join_thread()


def test_where_no_lock_file_can_be_made_a_write_goes_on_without_one(tmp_path):
    lock = ProcessWriterLock(str(tmp_path / "no-such-folder" / "db"))
    assert lock.acquire(time.monotonic())
    lock.release()


def test_an_in_memory_database_needs_no_lock_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    engine = db_engine.make_engine("sqlite://")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        assert list(tmp_path.iterdir()) == []
    finally:
        engine.dispose()


def _child_stays(ready: Any, leave: Any) -> None:
    ready.set()
    leave.wait(10)


def test_a_child_forked_during_a_write_does_not_keep_the_lock_past_its_parents_release(
    tmp_path,
):
    path = str(tmp_path / "db")
    lock, other = ProcessWriterLock(path), ProcessWriterLock(path)
    assert lock.acquire(time.monotonic() + 1)
    fork = multiprocessing.get_context("fork")
    ready, leave = fork.Event(), fork.Event()
    child = fork.Process(target=_child_stays, args=(ready, leave))
    child.start()
    try:
        assert ready.wait(10)
        assert not other.acquire(time.monotonic() + 0.05)  # the parent's, still held
        lock.release()
        # Free at once, the child still alive with its copy of the descriptor closed.
        assert other.acquire(time.monotonic() + 1)
        assert child.is_alive()
        other.release()
    finally:
        leave.set()
        child.join(10)


def test_a_lock_file_left_readable_by_others_is_made_owner_only(tmp_path):
    lock_file = tmp_path / "csat.sqlite3-writer"
    lock_file.touch()
    lock_file.chmod(0o644)
    _engine(tmp_path).dispose()
    assert stat.S_IMODE(os.stat(lock_file).st_mode) == 0o600
