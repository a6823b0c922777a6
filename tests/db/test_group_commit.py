"""Group commit: concurrent writes share transactions, and one bad write fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from collections.abc import Sequence

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


def test_close_waits_for_the_batch_being_written_and_what_was_queued_behind_it(engine):
    batcher = GroupCommit(lambda: engine, run_each, name="closing")
    gate = threading.Event()
    inside = threading.Event()
    outcomes: dict[int, object] = {}

    def blocker(conn: sa.Connection) -> None:
        inside.set()
        gate.wait(5)  # holds the batch while more is queued and close() is called

    def call(k: int) -> None:
        outcomes[k] = batcher.submit(_insert(k), timeout=10)

    held = threading.Thread(target=batcher.submit, args=(blocker,))
    held.start()
    assert inside.wait(5)
    queued = [threading.Thread(target=call, args=(k,)) for k in range(5)]
    for thread in queued:
        thread.start()
    _wait_for(lambda: len(batcher._queue) == 5)  # all five queued behind the held batch
    closed = threading.Event()
    closer = threading.Thread(target=lambda: (batcher.close(), closed.set()))
    closer.start()
    time.sleep(0.2)
    assert not closed.is_set()  # close() waits while a batch is written
    gate.set()
    for thread in [held, *queued, closer]:
        thread.join(10)

    assert closed.is_set()
    assert outcomes == {k: k * 10 for k in range(5)}  # everything handed over was written
    assert batcher.submit(_insert(99)) == 990  # usable after close()
    batcher.close()
    assert _keys(engine) == [0, 1, 2, 3, 4, 99]


def test_closing_a_writer_never_used_is_harmless(engine):
    batcher = GroupCommit(lambda: engine, run_each, name="unused-writer")
    batcher.close()
    assert batcher.submit(_insert(1)) == 10
    batcher.close()


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _submitting(
    batcher: GroupCommit[int, int],
    outcomes: dict[int, object],
    caught: type[BaseException] | tuple[type[BaseException], ...],
) -> Callable[[int, float], None]:
    """``call(k, timeout)``: submit ``k``; its result, or the ``caught`` error it raised, goes
    into ``outcomes[k]``."""

    def call(k: int, timeout: float) -> None:
        try:
            outcomes[k] = batcher.submit(k, timeout=timeout)
        except caught as exc:
            outcomes[k] = exc

    return call


def _recording(engine: sa.Engine, batches: list[tuple[str, list[int]]], gate=None):
    """A ``write`` that inserts its items and records (thread name, items) per batch; the
    first batch waits for ``gate`` when one is given."""

    def write(conn: sa.Connection, items: list[int]) -> list[int]:
        batches.append((threading.current_thread().name, list(items)))
        if gate is not None and len(batches) == 1:
            gate.wait(5)
        for k in items:
            conn.execute(sa.text("INSERT INTO t (k) VALUES (:k)"), {"k": k})
        return [k * 10 for k in items]

    return write


def test_an_item_alone_is_written_on_the_thread_that_submitted_it(engine):
    """No hand-off to a writer thread and back when nothing else is being written: each
    thread switch cost more CPU than the statement (benchmarks/ack_budget.py)."""
    batches: list[tuple[str, list[int]]] = []
    batcher = GroupCommit(lambda: engine, _recording(engine, batches), name="alone")
    results = {}

    def call() -> None:
        results["k"] = batcher.submit(3)

    thread = threading.Thread(target=call, name="request-thread")
    thread.start()
    thread.join(5)

    assert results == {"k": 30}
    assert batches == [("request-thread", [3])]
    assert [t for t in threading.enumerate() if t.name == "alone"] == []


def test_items_queued_behind_a_batch_are_written_together_by_one_of_their_threads(engine):
    batches: list[tuple[str, list[int]]] = []
    gate = threading.Event()
    batcher = GroupCommit(lambda: engine, _recording(engine, batches, gate), name="queued")
    results: dict[int, int] = {}

    def call(k: int) -> None:
        results[k] = batcher.submit(k, timeout=10)

    first = threading.Thread(target=call, args=(0,), name="t-0")
    first.start()
    _wait_for(lambda: len(batches) == 1)  # the first batch is being written
    others = [threading.Thread(target=call, args=(k,), name=f"t-{k}") for k in range(1, 6)]
    for thread in others:
        thread.start()
    _wait_for(lambda: len(batcher._queue) == 5)
    gate.set()
    for thread in [first, *others]:
        thread.join(10)

    assert results == {k: k * 10 for k in range(6)}
    assert batches[0] == ("t-0", [0])
    assert len(batches) == 2  # the five queued ones: one transaction
    name, items = batches[1]
    assert sorted(items) == [1, 2, 3, 4, 5]
    assert name in {f"t-{k}" for k in range(1, 6)}  # written by one of them
    assert _keys(engine) == [0, 1, 2, 3, 4, 5]


def test_a_waiter_that_gave_up_is_never_made_to_lead_and_its_item_is_still_written(engine):
    batches: list[tuple[str, list[int]]] = []
    gate = threading.Event()
    batcher = GroupCommit(lambda: engine, _recording(engine, batches, gate), name="timeouts")
    outcomes: dict[int, object] = {}
    call = _submitting(batcher, outcomes, TimeoutError)

    first = threading.Thread(target=call, args=(0, 10))
    first.start()
    _wait_for(lambda: len(batches) == 1)
    impatient = threading.Thread(target=call, args=(1, 0.1))
    impatient.start()
    impatient.join(5)
    assert isinstance(outcomes[1], TimeoutError)
    patient = threading.Thread(target=call, args=(2, 10))
    patient.start()
    _wait_for(lambda: len(batcher._queue) == 2)
    gate.set()
    for thread in [first, patient]:
        thread.join(10)

    assert outcomes[0] == 0 and outcomes[2] == 20  # the patient one was answered
    assert _keys(engine) == [0, 1, 2]  # and the item given up on was written all the same
    assert batcher.submit(3, timeout=5) == 30  # nothing left waiting for a leader


def test_a_failing_after_commit_reaches_the_writing_thread_and_leaves_the_writer_usable(engine):
    calls: list[Sequence[int]] = []

    def after_commit(results: Sequence[int]) -> None:
        calls.append(results)
        if len(calls) == 1:
            raise RuntimeError("wake-up failed")

    batcher = GroupCommit(lambda: engine, run_each, name="after", after_commit=after_commit)
    with pytest.raises(RuntimeError, match="wake-up failed"):
        batcher.submit(_insert(1), timeout=2)
    assert batcher.submit(_insert(2), timeout=2) == 20  # not left waiting for a dead writer
    assert _keys(engine) == [1, 2]


def test_the_held_connection_is_closed_after_an_idle_spell(database_url, monkeypatch):
    from csat_hook.db import group_commit
    from csat_hook.db.engine import make_engine

    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL runs one-statement batches on a held connection")
    monkeypatch.setattr(group_commit, "HOLD_IDLE_SECONDS", 0.3)
    engine = make_engine(database_url)
    try:
        batcher = GroupCommit(
            lambda: engine, lambda conn, items: items, name="idle", single=lambda b: True
        )
        assert batcher.submit(1) == 1
        assert batcher.submit(2) == 2
        held = batcher._held
        assert held.holding  # kept from one batch to the next
        _wait_for(lambda: not held.holding, seconds=3)  # closed once nothing came
        assert batcher.submit(3) == 3  # and a later batch opens another
        batcher.close()
        assert not held.holding
    finally:
        engine.dispose()


def test_a_leader_whose_own_item_is_still_queued_when_its_batch_fails_hands_the_queue_on(
    engine, monkeypatch
):
    """A leader writes the items ahead of its own first (given up on, MAX_BATCH of them or
    more). When one of those batches fails (after_commit here), its own item is still
    queued: the queue must go to someone else, not to the thread that is leaving."""
    from csat_hook.db import group_commit

    monkeypatch.setattr(group_commit, "MAX_BATCH", 1)
    batches: list[tuple[str, list[int]]] = []
    gate = threading.Event()

    def after_commit(results: Sequence[int]) -> None:
        if list(results) == [10]:
            raise RuntimeError("wake-up failed")

    batcher = GroupCommit(
        lambda: engine, _recording(engine, batches, gate), name="own", after_commit=after_commit
    )
    outcomes: dict[int, object] = {}
    call = _submitting(batcher, outcomes, (TimeoutError, RuntimeError))

    first = threading.Thread(target=call, args=(0, 10))
    first.start()
    _wait_for(lambda: len(batches) == 1)
    call(1, 0.05)  # gives up: still queued, ahead of the next one
    assert isinstance(outcomes[1], TimeoutError)
    second = threading.Thread(target=call, args=(2, 10))
    second.start()
    _wait_for(lambda: len(batcher._queue) == 2)
    gate.set()  # 0 is written; 2 leads, writes 1 alone, and its after_commit fails
    for thread in [first, second]:
        thread.join(10)

    assert outcomes[0] == 0
    assert isinstance(outcomes[2], RuntimeError)
    assert batcher.submit(3, timeout=2) == 30  # not queued behind a leader that left
    assert _keys(engine) == [0, 1, 3]  # 2 was answered with an error: not written later


class _InterruptedWhenWoken(threading.Event):
    """A wake-up that a KeyboardInterrupt (SystemExit, a greenlet's kill…) cuts short."""

    def wait(self, timeout: float | None = None) -> bool:
        if super().wait(timeout):
            raise KeyboardInterrupt
        return False


def test_a_waiter_interrupted_as_it_is_made_to_lead_hands_the_queue_on(engine, monkeypatch):
    from csat_hook.db import group_commit

    real = group_commit._Waiting
    monkeypatch.setattr(
        group_commit,
        "_Waiting",
        lambda item, wake: real(item, _InterruptedWhenWoken() if item == 1 else wake),
    )
    batches: list[tuple[str, list[int]]] = []
    gate = threading.Event()
    batcher = GroupCommit(lambda: engine, _recording(engine, batches, gate), name="interrupted")
    outcomes: dict[int, object] = {}
    call = _submitting(batcher, outcomes, KeyboardInterrupt)

    first = threading.Thread(target=call, args=(0, 10))
    first.start()
    _wait_for(lambda: len(batches) == 1)
    interrupted = threading.Thread(target=call, args=(1, 10))
    interrupted.start()
    _wait_for(lambda: len(batcher._queue) == 1)
    gate.set()  # 0 is written; 1 is made to lead and is interrupted instead
    for thread in [first, interrupted]:
        thread.join(10)

    assert outcomes[0] == 0
    assert isinstance(outcomes[1], KeyboardInterrupt)
    assert batcher.submit(2, timeout=2) == 20  # not queued behind a leader that left
    assert _keys(engine) == [0, 2]  # 1 was answered with the interruption: not written


class _AfterCommitError(Exception):
    pass


def test_many_threads_with_failures_and_timeouts_answer_each_item_once_and_write_it_once(
    monkeypatch,
):
    """Stress: items from many threads, some failing their transaction, some given up on
    after a few milliseconds, some batches' after_commit raising (an Exception or a
    BaseException). Every submit returns or raises; no item is written twice; what was
    answered with a result was written, what failed was not, what was given up on is written
    by a later batch; after_commit saw every committed result once; nothing is left queued."""
    import random
    from collections import Counter

    from csat_hook.db import group_commit

    monkeypatch.setattr(group_commit, "MAX_BATCH", 3)  # own items behind others' batches
    guard = threading.Lock()
    rng = random.Random(20261204)
    written: Counter[int] = Counter()
    reported: Counter[int] = Counter()

    def bad(k: int) -> bool:
        return k % 7 == 3

    def transaction(items: list[int], held: object = None) -> list[int]:
        with guard:
            pause = rng.random() * 0.002
        time.sleep(pause)
        if any(bad(k) for k in items):
            raise ValueError(f"bad item in {items}")
        with guard:
            written.update(items)
        return [k * 10 for k in items]

    def after_commit(results: Sequence[int]) -> None:
        with guard:
            reported.update(results)
        if any(r % 130 == 10 for r in results):
            raise _AfterCommitError
        if any(r % 190 == 20 for r in results):
            raise SystemExit(3)

    batcher: GroupCommit[int, int] = GroupCommit(
        lambda: sa.create_engine("sqlite://"), run_each, name="stress", after_commit=after_commit
    )
    monkeypatch.setattr(batcher, "_transaction", transaction)
    outcomes: dict[int, object] = {}
    timeouts = {k: rng.choice([5.0, 5.0, 0.001, 0.004]) for k in range(400)}

    def call(keys: range) -> None:
        for k in keys:
            try:
                outcomes[k] = batcher.submit(k, timeout=timeouts[k])
            except BaseException as exc:  # what each submit raised is checked
                outcomes[k] = exc

    threads = [threading.Thread(target=call, args=(range(i, 400, 16),)) for i in range(16)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0))
    assert not any(thread.is_alive() for thread in threads)  # every submit came back
    assert batcher.submit(1000, timeout=2) == 10000  # a leader; it writes what was given up on
    assert not batcher._queue and not batcher._leading

    assert sorted(outcomes) == list(range(400))
    for k, outcome in outcomes.items():
        assert written[k] <= 1, k
        if isinstance(outcome, int):
            assert (outcome, written[k]) == (k * 10, 1), k
        elif isinstance(outcome, ValueError):
            assert bad(k) and written[k] == 0, k
        elif isinstance(outcome, TimeoutError):
            assert written[k] == (0 if bad(k) else 1), k
        else:  # a batch it led: after_commit raised, for its own item or another's
            assert isinstance(outcome, _AfterCommitError | SystemExit), (k, outcome)
    # after_commit was called once for each committed batch, with what it committed
    assert reported == Counter({k * 10: n for k, n in written.items()})


def test_the_idle_spell_never_closes_the_held_connection_under_a_statement(
    database_url, monkeypatch
):
    """A statement run on the held connection outside a batch (``_transaction``, as tests
    and benchmarks call it) keeps it open even when the idle spell passes meanwhile."""
    from csat_hook.db import group_commit
    from csat_hook.db.engine import make_engine

    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL runs one-statement batches on a held connection")
    monkeypatch.setattr(group_commit, "HOLD_IDLE_SECONDS", 0.2)
    engine = make_engine(database_url)

    def write(conn: sa.Connection, items: list[float]) -> list[int]:
        for pause in items:
            time.sleep(pause)  # the idle spell passes while this runs
            conn.execute(sa.text("SELECT 1"))
        return [1 for _ in items]

    try:
        batcher = GroupCommit(lambda: engine, write, name="in-use", single=lambda b: True)
        assert batcher.submit(0.0) == 1  # a batch: the idle thread now watches
        assert batcher._transaction([0.5, 0.0]) == [1, 1]  # not closed under it
        _wait_for(lambda: not batcher._held.holding, seconds=3)  # closed once idle
        batcher.close()
    finally:
        engine.dispose()
