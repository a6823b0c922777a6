"""A graceful stop goes through whatever the heartbeat's last database work meets: a pool
with no connection free (every one held by a database that stopped answering) raised
SQLAlchemy's TimeoutError, not a driver's error, out of ``Heartbeat.stop`` and into the
worker's stop, which then never wrote the outcomes of the replies it had just sent."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import outbox
from csat_hook.db.schema import workers
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import Person
from csat_hook.outbox.config import DeliveryConfig
from csat_hook.outbox.heartbeat import Heartbeat
from csat_hook.outbox.wake import Waker


def test_a_stop_with_no_pooled_connection_free_logs_and_returns(migrated_url, clock, caplog):
    engine = sa.create_engine(migrated_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    heartbeat = Heartbeat(
        engine, DeliveryConfig(), waker=Waker(), clock=clock, worker_id="w-stopping"
    )
    heartbeat.start()
    held = engine.connect()  # the only connection, as a statement stuck on a dead database
    try:
        with caplog.at_level(logging.WARNING):
            heartbeat.stop(1.0)  # raised sqlalchemy.exc.TimeoutError
    finally:
        held.close()
        engine.dispose()
    [record] = [r for r in caplog.records if r.getMessage() == "worker.database-unavailable"]
    assert record.error == "TimeoutError"


def test_the_worker_writes_its_outcomes_whatever_the_heartbeat_stop_met(services, monkeypatch):
    worker = services.delivery_worker()
    closed: list[bool] = []
    monkeypatch.setattr(worker.recorder, "close", lambda: closed.append(True))

    def broken_stop(_timeout: float) -> None:
        raise RuntimeError("something no one foresaw")

    monkeypatch.setattr(worker.heartbeat, "stop", broken_stop)
    with pytest.raises(RuntimeError):
        worker.stop(0.1)
    assert closed == [True]


def test_a_worker_stopping_with_an_outcome_unwritten_leaves_it_to_the_takeover(services, clock):
    """A worker that stops while one of its replies is still ``sending`` (its outcome's write
    failed: an outage longer than the write's retries, a value the database refused):
    unregistering it took its row away, and with it what tells the others it is gone, so the
    reply waited for its lease to run out (``lease_seconds``, 120 s) instead of being taken
    over once the worker had been silent ``worker_dead_after_seconds``, as a killed worker's
    are. Its row stays until the takeover forgets it."""
    services.intake.record_close(
        DialogClosed(helpdesk="eadesk", dialog_id="D-1", agent=Person(id="a"))
    )
    stopping = services.delivery_worker(worker_id="w-stopping")
    stopping.heartbeat.start()
    [(row, _)], _ = stopping._claim(1)
    stopping.heartbeat.let_go(row.id)  # its delivery ended; the outcome was not written
    stopping.heartbeat.stop(1.0)

    clock.advance(services.config.delivery.worker_dead_after_seconds + 1)
    live = services.delivery_worker(worker_id="w-live")
    assert live.release_stale() == 1
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(outbox.c.status)).scalar_one() == "pending"
        assert list(conn.execute(sa.select(workers.c.id)).scalars()) == []


def test_a_worker_stopping_with_nothing_held_unregisters(services):
    worker = services.delivery_worker(worker_id="w-done")
    worker.heartbeat.start()
    worker.heartbeat.stop(1.0)
    with services.engine.connect() as conn:
        assert list(conn.execute(sa.select(workers.c.id)).scalars()) == []
