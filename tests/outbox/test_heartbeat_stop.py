"""A graceful stop goes through whatever the heartbeat's last database work meets: a pool
with no connection free (every one held by a database that stopped answering) raised
SQLAlchemy's TimeoutError, not a driver's error, out of ``Heartbeat.stop`` and into the
worker's stop, which then never wrote the outcomes of the replies it had just sent."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

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
