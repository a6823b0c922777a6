"""Several web processes and four delivery workers on one PostgreSQL database, the Procfile
way, under duplicate deliveries, a failing helpdesk and a SIGKILL in the middle.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
import yaml

from csat_hook.db.engine import make_engine
from csat_hook.db.schema import outbox
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk
from tests.cluster import LocalCluster
from tests.helpers import generic_close

pytestmark = pytest.mark.slow

DIALOGS = 120


def write_config(tmp_path: Path, fake_url: str, url: str) -> Path:
    config = {
        "database": {"url": url},
        "token": {"secret": "cluster-token-secret-0123456789"},
        "delivery": {
            "backoff_base_seconds": 0.05,
            "backoff_cap_seconds": 0.5,
            "max_attempts": 50,
            "poll_seconds": 1,
            "lease_seconds": 5,
            "concurrency": 4,
        },
        "logging": {"level": "INFO"},
        "helpdesks": {
            "generic": {
                "kind": "generic",
                "auth": {"mode": "token", "token": "cluster-token"},
                "reply": {"url": fake_url + "/api/dialogs/{dialog_id}/messages"},
            }
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def post(url: str, dialog: str) -> str:
    response = requests.post(
        url + "/webhooks/generic",
        json=generic_close(dialog),
        headers={"X-Webhook-Token": "cluster-token"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_four_workers_deliver_every_reply_exactly_once_through_a_sigkill(database_url, tmp_path):
    pg_url = database_url
    fake = FakeHelpdesk(fail_ratio=0.3, idempotent=True, latency=0.02).start()
    cluster = LocalCluster(write_config(tmp_path, fake.url, pg_url), tmp_path, web_workers=2)
    try:
        url = cluster.start_web()
        for _ in range(4):
            cluster.start_worker()
        dialogs = [f"MP-{i}" for i in range(DIALOGS)]
        statuses: Counter[str] = Counter()
        lock = threading.Lock()

        def deliver_twice(dialog: str) -> None:
            # A vendor retry: the same close twice, concurrently.
            with ThreadPoolExecutor(2) as pair:
                results = list(pair.map(lambda _: post(url, dialog), range(2)))
            with lock:
                statuses.update(results)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(deliver_twice, dialogs[: DIALOGS // 2]))
            # Kill a worker while replies are in flight, then bring a new one up.
            cluster.kill(cluster.workers[0])
            cluster.start_worker()
            list(pool.map(deliver_twice, dialogs[DIALOGS // 2 :]))

        assert statuses == {"queued": DIALOGS, "duplicate": DIALOGS}

        def effective() -> Counter[str]:
            return Counter(
                r["path"].split("/")[3]
                for r in fake.api_requests()
                if r["answered"] == 200 and not r.get("replayed")
            )

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(effective()) < DIALOGS:
            time.sleep(0.2)
        time.sleep(6)  # past a lease: anything left to be re-sent would be re-sent by now

        delivered = effective()
        assert sorted(delivered) == sorted(dialogs), "replies were lost"
        assert set(delivered.values()) == {1}, "a reply was sent twice"
        replayed = [r for r in fake.api_requests() if r.get("replayed")]
        # Only requests in flight at the kill can be repeated, and the key makes them harmless.
        assert len(replayed) <= 4
        engine = make_engine(pg_url)
        with engine.connect() as conn:
            counts = dict(
                conn.execute(
                    sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
                ).all()
            )
        engine.dispose()
        assert counts == {"sent": DIALOGS}
    finally:
        cluster.stop()
        fake.stop()
