"""A worker whose LISTEN connection cannot hear is not the one worker woken for a reply.

Real workers on PostgreSQL, each with its own listener and its own in-process waker (the
intake's in-process wake-up reaches neither: only a NOTIFY does). One listener connects
through a loopback proxy that stops forwarding without a word (:class:`StallingProxy`): its
connection stays open, TCP notices nothing, and the NOTIFYs sent to it are never heard. Its
worker goes on beating over its other connections. A reply whose NOTIFY went to it waited
for the poll; it must go to a worker that hears, and promptly.

A connection that hangs for good (the proxy forwards new connections but never this one
again) is abandoned by its listener after a while without an answer: it connects again and
its worker is woken by NOTIFY again, instead of staying deaf until TCP gives up (never, when
every byte is acknowledged).
"""

from __future__ import annotations

import logging
import threading
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
from csat_hook.outbox.wake import PostgresListener
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
# A listener abandons a connection whose round trip had no answer for this long (10 s in
# production); it then reconnects after the backoff's first wait (up to 1 s).
ABANDON_SECONDS = 1.0
RECONNECTED_SECONDS = ABANDON_SECONDS + CONFIRM_SECONDS + 1.0
# A password in the listener's URL (the test server trusts loopback, so any will do): it must
# never reach a log line.
PASSWORD = "hunter2-never-logged"


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

    def start(
        name: str, *, via: StallingProxy | None = None, abandon_after: float | None = None
    ) -> DeliveryWorker:
        """A started worker (two delivery threads) and its listener, connected through
        ``via`` when given (its database connections go straight to the database); the
        listener abandons a connection after ``abandon_after`` without an answer, when given
        (otherwise after the production time)."""
        url = sa.make_url(database_url)
        if via is not None:
            url = url.set(host="127.0.0.1", port=via.port, password=PASSWORD)
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
        listen_url = url.render_as_string(hide_password=False)
        if abandon_after is None:
            started = start_delivery(worker, database_url=listen_url, threads=2)
        else:  # as start_delivery does, with the listener's abandon time
            listener = PostgresListener(
                listen_url, worker.waker, worker_id=worker.worker_id, abandon_after=abandon_after
            )
            listener.start()
            worker.start(2, hearing=listener.hearing)
            started = RunningDelivery(worker, listener)
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


def assert_both_hear(
    services: Services,
    client: Any,
    prefix: str,
    hearing: DeliveryWorker,
    deaf: DeliveryWorker,
) -> None:
    """16 replies, each sent within :data:`PROMPT_SECONDS`, and by both workers: each reply
    wakes one worker chosen at random among those that hear, so the one that was deaf hears
    again."""
    senders = set()
    for n in range(16):
        took, by = delivered(services, client, f"{prefix}-{n}", within=5 * PROMPT_SECONDS)
        assert took < PROMPT_SECONDS, (n, round(took, 2))
        senders.add(by)
    assert senders == {hearing.worker_id, deaf.worker_id}


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

    assert_both_hear(services, client, "again", hearing, deaf)


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


def established_to(port: int) -> int:
    """How many TCP connections on this machine to 127.0.0.1:``port`` are open on the
    client's side (the test's own: nobody else knows the proxy's port)."""
    count = 0
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            _, _, remote, state, *_ = line.split()
            if int(remote.split(":")[1], 16) == port and state == "01":  # ESTABLISHED
                count += 1
    return count


def test_a_listener_whose_connection_hangs_for_good_connects_again(
    services: Services,
    client: Any,
    proxy: StallingProxy,
    workers: Callable[..., DeliveryWorker],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Its connection never answers again, while TCP sees nothing wrong (every byte and
    # keepalive acknowledged): on main its listener waited for that answer for good, its
    # worker never woken by NOTIFY again. Now it abandons the connection and connects again.
    hearing = workers("hearing")
    with caplog.at_level(logging.WARNING, logger="csat_hook.outbox.wake"):
        deaf = workers("deaf", via=proxy, abandon_after=ABANDON_SECONDS)
        proxy.hang()  # the listener's connection; a new one goes through
        time.sleep(RECONNECTED_SECONDS + NOTICED_SECONDS)

        assert_both_hear(services, client, "hung", hearing, deaf)

    # Abandoned once, said in one line, without the URL's password; the hung connection
    # closed (only the new one open).
    said = [r for r in caplog.records if r.name == wake.__name__]
    assert [r.msg for r in said] == ["wake.listen-abandoned"]
    assert PASSWORD not in caplog.text
    assert not any(PASSWORD in str(value) for value in vars(said[0]).values())
    assert established_to(proxy.port) == 1


def test_stopping_a_listener_whose_connection_hangs(
    database_url: str, proxy: StallingProxy, caplog: pytest.LogCaptureFixture
) -> None:
    # On main a listener waiting for an answer that never comes ignored stop(): its thread
    # and its connection stayed for as long as the connection did.
    url = sa.make_url(database_url).set(host="127.0.0.1", port=proxy.port)

    before = set(threading.enumerate())  # a listener of an earlier test may still be ending

    def listening_threads() -> set[threading.Thread]:  # the proxy's own are not counted
        return {t for t in threading.enumerate() if t.name.startswith("pg-listen")} - before

    listener = PostgresListener(url.render_as_string(hide_password=False), Waker())
    with caplog.at_level(logging.WARNING, logger="csat_hook.outbox.wake"):
        listener.start()
        assert listener.listening.wait(10), "the listener did not connect"
        proxy.hang()
        time.sleep(3 * CONFIRM_SECONDS)  # its round trip waits for its answer
        listener.stop()
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and listening_threads():
            time.sleep(0.02)
    assert listening_threads() == set()
    assert established_to(proxy.port) == 0
    assert [r.msg for r in caplog.records if r.name == wake.__name__] == []  # not a failure
