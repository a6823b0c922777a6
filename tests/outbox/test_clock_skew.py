"""Hosts whose clocks differ: a web process and workers on other machines agree on when a
reply is due and whether a worker is gone, because the outbox's times are the database's
(:class:`~csat_hook.db.clock.DatabaseClock`), not each host's own."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from csat_hook.clock import utcnow
from csat_hook.config import Config
from csat_hook.db.clock import DatabaseClock
from csat_hook.services import Services
from csat_hook.services import build_services
from tests.outbox.test_worker import outbox_rows
from tests.outbox.test_worker import queue_generic

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def off_by(seconds: float) -> Callable[[], datetime]:
    """A host clock ``seconds`` ahead of true time (behind when negative)."""
    return lambda: utcnow() + timedelta(seconds=seconds)


@pytest.fixture
def on_host(config: Config) -> Iterator[Callable[[float], Services]]:
    """The services of a process on a host whose clock is off by some seconds."""
    built: list[Services] = []

    def build(seconds: float) -> Services:
        services = build_services(config, clock=off_by(seconds), database_time=True)
        built.append(services)
        return services

    yield build
    for services in built:
        services.close()


def test_a_worker_host_ahead_does_not_take_over_a_live_workers_send(on_host: Any) -> None:
    # Worker B's host runs 40 s ahead of worker A's: A's heartbeat, written by A's clock,
    # read as 40 s old by B, so B took A's reply in flight for a dead worker's and sent it
    # again (after delivery.worker_dead_after_seconds, 10 s, of skew).
    a, b = on_host(-20), on_host(20)
    queue_generic(a)
    sender = a.delivery_worker(worker_id="host-a")
    sender.beat()
    [_claimed], _ = sender._claim(1)
    sender.beat()

    assert b.delivery_worker(worker_id="host-b").release_stale() == 0

    [item] = outbox_rows(a)
    assert (item.status, item.claimed_by, item.uncertain_since) == ("sending", "host-a", None)


def test_a_reply_queued_on_a_web_host_ahead_is_due_at_once_for_a_worker(on_host: Any) -> None:
    # The web host runs a minute ahead: the reply's due time (its now, no send delay) was a
    # minute in the future for a worker with the right time, every reply a minute late.
    web, worker_host = on_host(60), on_host(0)
    queue_generic(web)

    assert worker_host.delivery_worker().run_once() == 1
    [item] = outbox_rows(worker_host)
    assert item.status == "sent"


def test_the_database_clock_reads_the_servers_time_whatever_the_hosts(services: Any) -> None:
    ahead = DatabaseClock(services.engine, off_by(3600))
    behind = DatabaseClock(services.engine, off_by(-3600))

    assert abs(ahead() - behind()) < timedelta(seconds=1)
    assert abs(ahead() - utcnow()) < timedelta(seconds=1)  # the test's database is local
    assert abs(ahead.offset + timedelta(hours=1)) < timedelta(seconds=1)
