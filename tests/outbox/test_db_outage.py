"""The database goes away mid-run and comes back: the service recovers without a restart."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from csat_hook.app import create_app
from csat_hook.clock import utcnow
from csat_hook.db.schema import outbox
from tests.helpers import generic_close
from tests.tcp_proxy import TcpProxy

AUTH = {"X-Webhook-Token": "generic-token-123"}


def wait_for(predicate, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_service_recovers_when_the_database_comes_back(
    database_url, make_config, make_services, fake_helpdesk
):
    url = sa.make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    services = make_services(make_config(database={"url": proxied}, delivery={"poll_seconds": 0.2}))
    services.clock = utcnow
    client = create_app(services=services).test_client()
    worker = services.delivery_worker()
    worker.start(threads=2)
    try:
        assert (
            client.post("/webhooks/generic", json=generic_close("UP-1"), headers=AUTH).json[
                "status"
            ]
            == "queued"
        )
        assert wait_for(lambda: len(fake_helpdesk.api_requests()) == 1)

        proxy.cut()  # the database goes away: pooled connections die, new ones are refused
        down = client.post("/webhooks/generic", json=generic_close("DOWN-1"), headers=AUTH)
        assert down.status_code == 503 and down.json["error"] == "unavailable"
        assert client.get("/healthz").status_code == 503

        proxy.start()  # back on the same address
        assert wait_for(lambda: client.get("/healthz").status_code == 200)
        back = client.post("/webhooks/generic", json=generic_close("BACK-1"), headers=AUTH)
        assert back.status_code == 200 and back.json["status"] == "queued"
        assert wait_for(lambda: len(fake_helpdesk.api_requests()) == 2)
        assert [r["path"] for r in fake_helpdesk.api_requests()] == [
            "/api/dialogs/UP-1/messages",
            "/api/dialogs/BACK-1/messages",
        ]
    finally:
        worker.stop()
        proxy.cut()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_connections_killed_by_a_database_restart_are_replaced_transparently(
    database_url, make_config, make_services, fake_helpdesk
):
    name = f"csat-restart-{time.monotonic_ns()}"
    url = sa.make_url(database_url).update_query_dict({"application_name": name})
    services = make_services(
        make_config(database={"url": url.render_as_string(hide_password=False)})
    )
    client = create_app(services=services).test_client()
    assert (
        client.post("/webhooks/generic", json=generic_close("R-1"), headers=AUTH).json["status"]
        == "queued"
    )
    assert client.get("/healthz").status_code == 200  # the pool now holds live connections

    admin = sa.create_engine(database_url)
    with admin.begin() as conn:  # what a restart does to every pooled connection
        killed = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ),
            {"name": name},
        ).scalar_one()
    admin.dispose()
    assert killed >= 1

    assert client.get("/healthz").status_code == 200
    after = client.post("/webhooks/generic", json=generic_close("R-2"), headers=AUTH)
    assert after.status_code == 200 and after.json["status"] == "queued"
    assert services.delivery_worker().run_once() == 2


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_reply_sent_as_the_worker_stops_is_recorded_through_a_short_outage(
    database_url, make_config, make_services, fake_helpdesk
):
    """A worker stopped (SIGTERM, a deploy) while a reply is being answered and the database
    restarts: the outcome's write is retried through a short outage while running, but a
    stopping worker gave up at once (six tries within milliseconds), and the reply that was
    out stayed ``sending``, to be taken over as an unknown outcome: looked up, or, where
    nothing can be looked up (the generic adapter without ``lookup``), sent again. The stop
    rides the outage out as a running worker does."""
    url = sa.make_url(database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    services = make_services(make_config(database={"url": proxied}, delivery={"poll_seconds": 60}))
    services.clock = utcnow
    fake_helpdesk.delay_next(1, seconds=1.0)
    client = create_app(services=services).test_client()
    assert (
        client.post("/webhooks/generic", json=generic_close("OUT-1"), headers=AUTH).json["status"]
        == "queued"
    )
    worker = services.delivery_worker()
    worker.start(threads=1)
    stopping = threading.Thread(target=worker.stop)
    down = False
    try:
        assert wait_for(lambda: len(fake_helpdesk.api_requests()) == 1)
        proxy.cut()  # the database restarts while the vendor is still answering
        down = True
        stopping.start()
        time.sleep(2.5)  # the answer came; its outcome's write met the outage
    finally:
        if down:
            proxy.start()
        else:
            worker.stop()
    stopping.join(60)
    assert not stopping.is_alive()
    proxy.cut()
    direct = sa.create_engine(database_url)
    with direct.connect() as conn:
        status = conn.execute(sa.select(outbox.c.status)).scalar_one()
    direct.dispose()
    assert status == "sent"
    assert len(fake_helpdesk.messages_by_path()["/api/dialogs/OUT-1/messages"]) == 1
