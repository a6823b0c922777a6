"""Wake-ups across processes on PostgreSQL: one worker woken per queued reply, not all.

Real LISTEN/NOTIFY (channels are per database, so other tests may broadcast on the shared
channel at the same time: counts here are on the workers' own channels, which nobody else
knows).
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db import engine as db_engine
from csat_hook.db.engine import statements
from csat_hook.db.schema import outbox
from csat_hook.outbox import store
from csat_hook.outbox.wake import NOTIFY_CHANNEL
from csat_hook.outbox.wake import WORKER_CHANNEL_PREFIX
from csat_hook.outbox.wake import PostgresListener
from csat_hook.outbox.wake import Waker
from csat_hook.outbox.wake import worker_channel
from csat_hook.services import Services
from tests.stuck_resolver import StuckResolver
from tests.tcp_proxy import VanishingProxy
from tests.tcp_proxy import can_vanish

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


@pytest.fixture
def listen(database_url: str) -> Iterator[Callable[[str], PostgresListener]]:
    started: list[PostgresListener] = []

    def start(worker_id: str) -> PostgresListener:
        listener = PostgresListener(database_url, Waker(), worker_id=worker_id)
        listener.start()
        assert listener.listening.wait(10), "the listener did not connect"
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop()


def own(listener: PostgresListener) -> int:
    return sum(n for channel, n in listener.received.items() if channel != NOTIFY_CHANNEL)


def settle(listeners: list[PostgresListener], expected: int) -> int:
    """Wait until the listeners' own channels got ``expected`` NOTIFYs (or 10 s), then a little
    longer so a surplus would show; return the total."""
    deadline = time.monotonic() + 10
    while sum(own(x) for x in listeners) < expected and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    return sum(own(x) for x in listeners)


def beat(
    services: Services, worker_id: str, seconds_ago: float = 0, *, hearing: bool = True
) -> None:
    """A beat of ``worker_id``, by default saying its listener hears (the test starts one)."""
    with services.engine.begin() as conn:
        at = services.clock() - timedelta(seconds=seconds_ago)
        store.heartbeat(conn, worker_id, at, hearing=hearing)


def close(client: Any, dialog: str) -> None:
    response = client.post(
        "/webhooks/generic",
        json={"event": "dialog.closed", "dialog": {"id": dialog}, "agent": {"id": "a1"}},
        headers={"X-Webhook-Token": "generic-token-123"},
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "queued"


def queued(client: Any, prefix: str, n: int) -> None:
    """``n`` closes queued; call it before any worker beats, so their wake-ups are
    broadcasts on the shared channel, which the counts leave out."""
    for i in range(n):
        close(client, f"{prefix}-{i}")


def alive(services: Services, *names: str) -> list[str]:
    """Workers that beat just now, one per name, each made unique."""
    ids = [f"{name}-{uuid.uuid4().hex[:6]}" for name in names]
    for worker_id in ids:
        beat(services, worker_id)
    return ids


def test_each_queued_reply_wakes_exactly_one_live_worker(
    services: Services, client: Any, listen: Callable[[str], PostgresListener]
) -> None:
    live = [f"w{i}-{uuid.uuid4().hex[:6]}" for i in range(4)]
    dead = f"dead-{uuid.uuid4().hex[:6]}"
    for worker_id in live:
        beat(services, worker_id)
    beat(services, dead, seconds_ago=60)  # stopped beating: never chosen
    listeners = [listen(worker_id) for worker_id in live]
    gone = listen(dead)

    for n in range(40):  # one close per transaction: 40 queued replies
        close(client, f"wake-{n}")

    assert settle(listeners, 40) == 40
    assert own(gone) == 0
    assert sum(1 for x in listeners if own(x)) >= 2  # spread, not one worker for everything


def test_serve_wakes_its_own_worker_once_per_queued_reply(
    services: Services, client: Any, listen: Callable[[str], PostgresListener]
) -> None:
    # `serve` on PostgreSQL: the close's transaction NOTIFYs one live worker (here the only
    # one, this process's), and the web process woke its delivery threads in memory as well:
    # two wake-ups for one reply (with other workers alive, two processes woken).
    [live] = alive(services, "serve")
    worker = services.delivery_worker(worker_id=live)
    heard = listen(live)
    worker.heartbeat.hearing = heard.hearing  # as start_delivery starts it
    before = services.waker.generation

    close(client, "serve-once")

    assert settle([heard], 1) == 1  # the NOTIFY, on its own channel
    assert services.waker.generation == before  # and no second wake-up in memory

    # Its listener not hearing (reconnecting): the NOTIFY may not reach it, so the web
    # process wakes it in memory, as on SQLite.
    worker.heartbeat.hearing = lambda: False
    close(client, "serve-deaf")
    assert services.waker.generation == before + 1


def test_a_worker_that_beat_without_hearing_is_never_the_one_woken(
    services: Services, client: Any, listen: Callable[[str], PostgresListener]
) -> None:
    # Its beat said its listener did not hear (a LISTEN connection dropped without a word):
    # a wake-up sent to it waited for the poll. Others are chosen; with none, everyone is.
    hearing, deaf = alive(services, "hearing", "deaf")
    beat(services, deaf, hearing=False)  # alive (nothing of it taken over), not hearing
    theirs, passed_over = listen(hearing), listen(deaf)

    for n in range(10):
        close(client, f"heard-{n}")
    assert settle([theirs, passed_over], 10) == 10
    assert own(passed_over) == 0

    beat(services, hearing, hearing=False)  # none hears: the shared channel, for all
    shared = passed_over.received[NOTIFY_CHANNEL]
    for n in range(3):
        close(client, f"unheard-{n}")
    deadline = time.monotonic() + 10
    while passed_over.received[NOTIFY_CHANNEL] < shared + 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert passed_over.received[NOTIFY_CHANNEL] >= shared + 3
    assert settle([theirs, passed_over], 10) == 10


def test_without_a_live_worker_every_worker_is_woken(
    services: Services, client: Any, listen: Callable[[str], PostgresListener]
) -> None:
    stale = [f"old{i}-{uuid.uuid4().hex[:6]}" for i in range(2)]
    for worker_id in stale:
        beat(services, worker_id, seconds_ago=60)
    listeners = [listen(worker_id) for worker_id in stale]

    for n in range(5):
        close(client, f"nobody-{n}")

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(x.received[NOTIFY_CHANNEL] < 5 for x in listeners):
        time.sleep(0.02)
    # The shared channel: each of them heard every close (others' tests may add more).
    assert all(x.received[NOTIFY_CHANNEL] >= 5 for x in listeners)
    assert settle(listeners, 0) == 0


def claim(services: Services, worker_id: str, limit: int) -> int:
    """One claim as ``worker_id`` (the worker's one statement, in autocommit); how many."""
    now = services.clock()
    with statements(services.engine) as conn:
        rows, _, _ = store.claim_with_surveys(
            conn, worker_id, now, now + timedelta(seconds=60), limit=limit
        )
    return len(rows)


def test_a_full_claim_with_more_due_wakes_one_other_worker(
    services: Services, client: Any, listen: Callable[[str], PostgresListener]
) -> None:
    queued(client, "queued", 12)
    me, other = alive(services, "me", "other")
    dead = f"dead-{uuid.uuid4().hex[:6]}"
    beat(services, dead, seconds_ago=60)
    mine, theirs, gone = listen(me), listen(other), listen(dead)

    # Ten claims of one, each leaving more due: each wakes the other live worker.
    assert [claim(services, me, 1) for _ in range(10)] == [1] * 10
    # Full, but nothing more is due; then not full: nobody else is woken.
    assert claim(services, me, 2) == 2
    assert claim(services, me, 5) == 0

    assert settle([mine, theirs, gone], 10) == 10
    assert (own(mine), own(theirs), own(gone)) == (0, 10, 0)


def test_a_full_claim_of_several_wakes_exactly_one_other_worker(
    services: Services, client: Any, listen: Callable[[str], PostgresListener]
) -> None:
    queued(client, "many", 6)
    me, *others = alive(services, "me", "o0", "o1", "o2")
    listeners = [listen(worker_id) for worker_id in others]

    assert claim(services, me, 4) == 4  # four rows claimed, two more due: one NOTIFY, not four

    assert settle(listeners, 1) == 1


def test_a_claim_that_leaves_nothing_due_now_wakes_nobody(
    services: Services, client: Any, listen: Callable[[str], PostgresListener]
) -> None:
    queued(client, "now", 2)
    me, other = alive(services, "me", "other")
    theirs = listen(other)
    # The second reply is due only later: a full claim of the first one is not a reason.
    with statements(services.engine) as conn:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == sa.select(sa.func.max(outbox.c.id)).scalar_subquery())
            .values(next_attempt_at=services.clock() + timedelta(minutes=5))
        )

    assert claim(services, me, 1) == 1
    assert settle([theirs], 0) == 0


def test_a_claim_that_gets_fewer_than_it_asked_wakes_nobody(
    services: Services, client: Any, listen: Callable[[str], PostgresListener]
) -> None:
    queued(client, "held", 3)
    me, other = alive(services, "me", "other")
    theirs = listen(other)
    # Another worker's claim holds a due reply, not yet committed: from here it still looks
    # due, but a claim that got fewer than it asked for is not full, so no reason to wake.
    with services.engine.begin() as held:
        held.execute(sa.select(outbox.c.id).order_by(outbox.c.id).limit(1).with_for_update()).one()
        assert claim(services, me, 5) == 2
    assert settle([theirs], 0) == 0


def test_passing_on_wakes_nobody_when_no_other_worker_is_alive(
    services: Services, client: Any, listen: Callable[[str], PostgresListener]
) -> None:
    queued(client, "alone", 3)
    [me] = alive(services, "alone")
    mine = listen(me)

    assert claim(services, me, 1) == 1  # full, more due, but no one else to wake

    assert settle([mine], 0) == 0


def test_the_worker_channel_is_the_one_postgresql_computes(services: Services) -> None:
    worker_id = "host.example:1234:ab12cd é"
    with services.engine.begin() as conn:
        computed = conn.exec_driver_sql(
            "SELECT %(prefix)s || substr(md5(%(id)s), 1, 16)",
            {"prefix": WORKER_CHANNEL_PREFIX, "id": worker_id},
        ).scalar()
    assert computed == worker_channel(worker_id)


def test_the_listener_resolves_the_database_host_within_its_connect_timeout(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # psycopg resolved the name itself, before connect_timeout applied: a resolver that
    # never answered held the listener (no wake-ups across processes, only polling) for as
    # long as it liked. Now the attempt fails in time, and the next one gets through.
    url = sa.make_url(database_url)
    if url.host not in ("127.0.0.1", "localhost"):
        pytest.skip("the test database is not on loopback")
    stuck = StuckResolver({"db.stuck.test"})
    monkeypatch.setattr(socket, "getaddrinfo", stuck.getaddrinfo)
    monkeypatch.setattr(db_engine, "CONNECT_TIMEOUT_SECONDS", 2)
    listener = PostgresListener(
        url.set(host="db.stuck.test").render_as_string(hide_password=False), Waker()
    )
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="csat_hook.outbox.wake"):
        listener.start()
        try:
            while time.monotonic() - started < 4 and not caplog.records:
                time.sleep(0.02)
            took = time.monotonic() - started
            stuck.release()
            assert [r.msg for r in caplog.records][:1] == ["wake.listen-failed"], took
            assert took < 3.5, took
            assert listener.listening.wait(10), "the listener did not connect once resolved"
        finally:
            stuck.release()
            listener.stop()


def _wait_for_log(caplog: pytest.LogCaptureFixture, message: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(r.msg == message for r in caplog.records):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.skipif(not can_vanish(), reason="TCP_REPAIR needs CAP_NET_ADMIN (Linux)")
@pytest.mark.parametrize("given", ["by the URL", "by default"])
def test_a_listener_whose_server_went_silent_reconnects_and_is_woken_again(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    given: str,
) -> None:
    # A server gone without a reset (a partition, a failover, a NAT that dropped the flow):
    # the listener only waits to read, so without keepalives nothing told it, and its worker
    # had no wake-up for the kernel's two hours (its replies waited for the poll). The
    # engine's keepalives and tcp_user_timeout end it; the URL's own values win over ours.
    small = {
        "KEEPALIVE_IDLE_SECONDS": 1,
        "KEEPALIVE_INTERVAL_SECONDS": 1,
        "KEEPALIVE_COUNT": 1,
        "TCP_USER_TIMEOUT_SECONDS": 2,
    }
    url = sa.make_url(database_url)
    proxy = VanishingProxy((url.host or "127.0.0.1", url.port or 5432))
    via = url.set(host="127.0.0.1", port=proxy.port)
    if given == "by the URL":
        for name in small:  # ours would wait an hour or more
            monkeypatch.setattr(db_engine, name, 100 if name == "KEEPALIVE_COUNT" else 3600)
        via = via.update_query_dict(
            {
                "keepalives_idle": "1",
                "keepalives_interval": "1",
                "keepalives_count": "1",
                "tcp_user_timeout": "2000",
            }
        )
    else:
        for name, value in small.items():
            monkeypatch.setattr(db_engine, name, value)
    worker_id = f"silent-{uuid.uuid4().hex[:6]}"
    channel = worker_channel(worker_id)
    listener = PostgresListener(
        via.render_as_string(hide_password=False), Waker(), worker_id=worker_id
    )
    engine = db_engine.make_engine(database_url, pool_size=1)
    with caplog.at_level(logging.WARNING, logger="csat_hook.outbox.wake"):
        listener.start()
        try:
            assert listener.listening.wait(10), "the listener did not connect"
            proxy.vanish(at_once=True)
            assert proxy.vanished.wait(5)
            started = time.monotonic()
            # A NOTIFY on the worker's own channel every 0.2 s, until one reaches it.
            while not listener.received[channel] and time.monotonic() - started < 12:
                with statements(engine) as conn:
                    conn.execute(sa.select(sa.func.pg_notify(channel, "")))
                time.sleep(0.2)
            took = time.monotonic() - started
            assert listener.received[channel], f"no wake-up reached the listener in {took:.0f} s"
            assert took < 8, took
            assert proxy.accepted == 2  # it reconnected (through the proxy, forwarding again)
            assert "wake.listen-failed" in [r.msg for r in caplog.records]
        finally:
            listener.stop()
            proxy.close()
            engine.dispose()


def test_the_listener_keeps_the_url_own_connect_timeout(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Ours replaced the URL's ?connect_timeout=: the engine keeps it, the listener now too.
    monkeypatch.setattr(db_engine, "CONNECT_TIMEOUT_SECONDS", 30)
    mute = socket.create_server(("127.0.0.1", 0))  # the kernel takes it; nobody answers
    url = sa.make_url(database_url).set(host="127.0.0.1", port=mute.getsockname()[1])
    listener = PostgresListener(
        url.update_query_dict({"connect_timeout": "2"}).render_as_string(hide_password=False),
        Waker(),
    )
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="csat_hook.outbox.wake"):
        listener.start()
        try:
            failed = _wait_for_log(caplog, "wake.listen-failed", 6)
            took = time.monotonic() - started
            assert failed, f"still connecting after {took:.0f} s"
            assert took < 4, took
        finally:
            listener.stop()
            mute.close()


def test_the_listener_connects_with_the_url_options_as_the_engine_reads_them(
    database_url: str,
) -> None:
    # The listener's conninfo was the URL rendered again, its query encoded for a form (a
    # space as "+"), which libpq reads as a "+": ``options=-c%20statement_timeout%3D5000``
    # became "-c+statement_timeout=5000", refused by the server at every connect, while the
    # engine's connections (the driver's keyword arguments) took it. No wake-up then crossed
    # processes: every worker waited for its poll.
    url = sa.make_url(database_url).update_query_dict(
        {"options": "-c statement_timeout=5000", "application_name": "csat hook+listener"}
    )
    listener = PostgresListener(url.render_as_string(hide_password=False), Waker())
    listener.start()
    try:
        assert listener.listening.wait(10), "the listener did not connect"
    finally:
        listener.stop()
