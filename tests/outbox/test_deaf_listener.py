"""A worker whose LISTEN connection cannot hear is not the one worker woken for a reply.

Real workers on PostgreSQL, each with its own listener and its own in-process waker (the
intake's in-process wake-up reaches neither: only a NOTIFY does). One listener connects
through a loopback proxy that stops forwarding without a word (:class:`StallingProxy`): its
connection stays open, TCP notices nothing, and the NOTIFYs sent to it are never heard. Its
worker goes on beating over its other connections. A reply whose NOTIFY went to it waited
for the poll; it must go to a worker that hears, and promptly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.config import Config
from csat_hook.db.schema import SENT
from csat_hook.db.schema import outbox
from csat_hook.outbox import wake
from csat_hook.outbox.delivery import Delivery
from csat_hook.outbox.runtime import RunningDelivery
from csat_hook.outbox.runtime import start_delivery
from csat_hook.outbox.wake import Waker
from csat_hook.outbox.worker import DeliveryWorker
from csat_hook.services import Services
from tests.tcp_proxy import StallingProxy

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

# A reply whose wake-up was heard is sent well within PROMPT_SECONDS; one whose wake-up was
# not waits for a worker's poll (a long one: a poll that happens to come soon cannot pass for
# a wake-up, but in one reply of five, and the first test sends about five such replies).
PROMPT_SECONDS = 1.0
# Short timings, so the test does not wait for the production ones (a listener confirms its
# connection every second and counts as deaf after three without an answer; a beat every 2 s).
CONFIRM_SECONDS = 0.1
HEARING_SECONDS = 0.5
HEARTBEAT_SECONDS = 0.2
NOTICED_SECONDS = HEARING_SECONDS + 3 * HEARTBEAT_SECONDS  # deafness written in a beat


@pytest.fixture
def poll_seconds() -> float:
    return 10.0


@pytest.fixture
def config(make_config: Callable[..., Config], poll_seconds: float) -> Config:
    return make_config(
        delivery={"poll_seconds": poll_seconds, "heartbeat_seconds": HEARTBEAT_SECONDS}
    )


@pytest.fixture(autouse=True)
def _short_confirmations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wake, "CONFIRM_SECONDS", CONFIRM_SECONDS, raising=False)
    monkeypatch.setattr(wake, "HEARING_SECONDS", HEARING_SECONDS, raising=False)


@pytest.fixture
def proxy(database_url: str) -> Iterator[StallingProxy]:
    url = sa.make_url(database_url)
    stalling = StallingProxy((url.host or "127.0.0.1", url.port or 5432))
    yield stalling
    stalling.close()


@pytest.fixture
def workers(services: Services, database_url: str) -> Iterator[Callable[..., DeliveryWorker]]:
    running: list[RunningDelivery] = []

    def start(name: str, *, via: StallingProxy | None = None) -> DeliveryWorker:
        """A started worker (two delivery threads) and its listener, connected through
        ``via`` when given (its database connections go straight to the database)."""
        url = sa.make_url(database_url)
        if via is not None:
            url = url.set(host="127.0.0.1", port=via.port)
        delivery = Delivery(
            services.helpdesks,
            services.config.survey,
            services.config.delivery.max_attempts,
            destinations=services.destinations,
        )
        worker = DeliveryWorker(
            services.engine,
            delivery,
            services.config.delivery,
            waker=Waker(),  # its own: the intake's in-process wake-up does not reach it
            clock=services.clock,
            worker_id=f"{name}-{uuid.uuid4().hex[:6]}",
        )
        started = start_delivery(
            worker, database_url=url.render_as_string(hide_password=False), threads=2
        )
        running.append(started)
        assert started.listener is not None
        assert started.listener.listening.wait(10), "the listener did not connect"
        return worker

    yield start
    for started in running:
        started.stop(5)


def close(client: Any, dialog: str) -> None:
    response = client.post(
        "/webhooks/generic",
        json={"event": "dialog.closed", "dialog": {"id": dialog}, "agent": {"id": "a1"}},
        headers={"X-Webhook-Token": "generic-token-123"},
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "queued"


def delivered(services: Services, client: Any, dialog: str, within: float) -> tuple[float, str]:
    """Queue a reply for ``dialog``; how long it took to be sent, and by which worker (an
    AssertionError when not sent ``within`` seconds)."""
    started = time.monotonic()
    close(client, dialog)
    query = sa.select(outbox.c.claimed_by).where(
        outbox.c.dialog_id == dialog, outbox.c.status == SENT
    )
    while time.monotonic() - started < within:
        with services.engine.connect() as conn:
            by = conn.execute(query).scalar()
        if by is not None:
            return time.monotonic() - started, by
        time.sleep(0.01)
    raise AssertionError(f"{dialog} was not sent within {within:g} s")


def test_replies_go_promptly_to_the_worker_that_hears(
    services: Services,
    client: Any,
    proxy: StallingProxy,
    workers: Callable[..., DeliveryWorker],
) -> None:
    hearing = workers("hearing")
    deaf = workers("deaf", via=proxy)
    proxy.stall()
    time.sleep(NOTICED_SECONDS)

    for n in range(10):
        took, by = delivered(services, client, f"deaf-{n}", within=5 * PROMPT_SECONDS)
        # Woken through the deaf listener, it waited for a worker's poll.
        assert took < PROMPT_SECONDS, (n, round(took, 2), by == deaf.worker_id)
        assert by == hearing.worker_id


@pytest.mark.parametrize("recovery", ["answers again", "reconnects"])
def test_a_listener_that_hears_again_is_woken_again(
    services: Services,
    client: Any,
    proxy: StallingProxy,
    workers: Callable[..., DeliveryWorker],
    recovery: str,
) -> None:
    hearing = workers("hearing")
    deaf = workers("deaf", via=proxy)
    proxy.stall()
    time.sleep(NOTICED_SECONDS)
    if recovery == "answers again":
        proxy.resume()  # its round trip gets its answer at last
    else:
        proxy.drop()  # its connection fails; it connects again, through the proxy
    time.sleep(NOTICED_SECONDS + 1.0)  # a reconnect waits up to 1 s (the backoff's first)

    senders = set()
    for n in range(16):
        took, by = delivered(services, client, f"again-{n}", within=5 * PROMPT_SECONDS)
        assert took < PROMPT_SECONDS, (n, round(took, 2))
        senders.add(by)
    # Each reply woke one worker chosen at random among those that hear: both, again.
    assert senders == {hearing.worker_id, deaf.worker_id}


@pytest.mark.parametrize("poll_seconds", [2.0])
def test_with_no_worker_hearing_replies_still_go_out_at_the_poll(
    services: Services,
    client: Any,
    proxy: StallingProxy,
    workers: Callable[..., DeliveryWorker],
    poll_seconds: float,
) -> None:
    deaf = workers("deaf", via=proxy)
    proxy.stall()
    time.sleep(NOTICED_SECONDS)

    for n in range(2):
        took, by = delivered(services, client, f"nobody-{n}", within=poll_seconds + 1.5)
        assert by == deaf.worker_id, (n, round(took, 2))
