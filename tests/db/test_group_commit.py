"""Group commit: concurrent writes share transactions, and one bad write fails alone."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from csat_hook.db.group_commit import GroupCommit
from csat_hook.db.group_commit import run_each


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'batch.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (k INTEGER PRIMARY KEY)"))
    yield engine
    engine.dispose()


def _insert(k: int):
    def work(conn: sa.Connection) -> int:
        conn.execute(sa.text("INSERT INTO t (k) VALUES (:k)"), {"k": k})
        return k * 10

    return work


def _keys(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.text("SELECT k FROM t")).scalars())


def test_each_caller_gets_its_own_result_and_every_write_is_committed(engine):
    batcher = GroupCommit(lambda: engine, run_each, name="test")
    results: dict[int, int] = {}

    def call(k: int) -> None:
        results[k] = batcher.submit(_insert(k))

    threads = [threading.Thread(target=call, args=(k,)) for k in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == {k: k * 10 for k in range(50)}
    assert _keys(engine) == list(range(50))


def test_a_failing_write_raises_to_its_caller_only_and_its_neighbours_are_kept(engine):
    batcher = GroupCommit(lambda: engine, run_each, name="test")
    batcher.submit(_insert(7))
    gate = threading.Event()
    outcomes: dict[int, object] = {}

    def blocker(conn: sa.Connection) -> None:
        gate.wait(5)  # holds the writer so the next writes queue up into one batch

    def call(k: int) -> None:
        try:
            outcomes[k] = batcher.submit(_insert(k))
        except sa.exc.IntegrityError as exc:
            outcomes[k] = exc

    first = threading.Thread(target=batcher.submit, args=(blocker,))
    first.start()
    threads = [threading.Thread(target=call, args=(k,)) for k in (1, 7, 2)]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in [first, *threads]:
        thread.join()

    assert outcomes[1] == 10 and outcomes[2] == 20
    assert isinstance(outcomes[7], sa.exc.IntegrityError)  # 7 was already there
    assert _keys(engine) == [1, 2, 7]


def test_a_batch_said_to_be_one_statement_runs_in_autocommit_on_postgresql(database_url):
    from csat_hook.db.engine import make_engine

    engine = make_engine(database_url)
    seen: list[tuple[int, bool]] = []

    def write(conn: sa.Connection, items: list[int]) -> list[int]:
        autocommit = conn.get_isolation_level() == "AUTOCOMMIT" or bool(
            getattr(conn.connection.driver_connection, "autocommit", False)
        )
        seen.append((len(items), autocommit))
        return items

    try:
        batcher = GroupCommit(lambda: engine, write, name="test", single=lambda b: b == [1])
        assert batcher.submit(1) == 1
        assert batcher.submit(2) == 2
    finally:
        engine.dispose()
    # Autocommit only where the predicate said "one statement", and never on SQLite (its
    # writer lock is taken at BEGIN).
    assert seen == [(1, engine.dialect.name == "postgresql"), (1, False)]


def _writers(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def test_close_writes_what_was_queued_then_ends_the_writer_and_a_later_submit_starts_another(
    engine,
):
    batcher = GroupCommit(lambda: engine, run_each, name="closing-writer")
    gate = threading.Event()
    outcomes: dict[int, object] = {}

    inside = threading.Event()

    def blocker(conn: sa.Connection) -> None:
        inside.set()
        gate.wait(5)  # holds the writer while more is queued and close() is called

    def call(k: int) -> None:
        outcomes[k] = batcher.submit(_insert(k), timeout=10)

    held = threading.Thread(target=batcher.submit, args=(blocker,))
    held.start()
    assert inside.wait(5)
    queued = [threading.Thread(target=call, args=(k,)) for k in range(5)]
    for thread in queued:
        thread.start()
    deadline = time.monotonic() + 5
    while batcher._lane.queue.qsize() < 5 and time.monotonic() < deadline:
        time.sleep(0.005)  # all five queued behind the held batch before close()
    closer = threading.Thread(target=batcher.close)
    closer.start()
    gate.set()
    for thread in [held, *queued, closer]:
        thread.join(10)

    assert outcomes == {k: k * 10 for k in range(5)}  # everything handed over was written
    assert _writers("closing-writer") == []  # and the thread is gone
    assert batcher.submit(_insert(99)) == 990  # a new thread for a later write
    assert len(_writers("closing-writer")) == 1
    batcher.close()
    assert _keys(engine) == [0, 1, 2, 3, 4, 99]
    assert _writers("closing-writer") == []


def test_closing_a_writer_never_used_is_harmless(engine):
    batcher = GroupCommit(lambda: engine, run_each, name="unused-writer")
    batcher.close()
    assert batcher.submit(_insert(1)) == 10
    batcher.close()
