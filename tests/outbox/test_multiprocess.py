"""Several web processes and delivery workers on one PostgreSQL database, the Procfile way:
four workers under duplicate deliveries, a failing and slow helpdesk, dropped connections and a
SIGKILL of a worker with replies in flight; two web processes and two workers SIGTERMed
together mid-load (a deploy) and started again.
"""

from __future__ import annotations

import os
import signal
import subprocess
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
from csat_hook.db.schema import surveys
from csat_hook.db.schema import workers
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk
from tests.cluster import LocalCluster
from tests.helpers import generic_close

pytestmark = pytest.mark.slow

DIALOGS = 120


def write_config(tmp_path: Path, fake_url: str, url: str) -> Path:
    messages = fake_url + "/api/dialogs/{dialog_id}/messages"
    config = {
        "database": {"url": url},
        "token": {"secret": "cluster-token-secret-0123456789"},
        "delivery": {
            "backoff_base_seconds": 0.05,
            "backoff_cap_seconds": 0.5,
            "max_attempts": 50,
            "poll_seconds": 1,
            "concurrency": 4,
            # Short timings, so a killed worker's replies are taken over within the test; not
            # so short that a live worker starved of CPU (2 cores shared by the suite's other
            # processes, seven of this cluster's and PostgreSQL) misses beats long enough to be
            # taken for dead while its request is still going out (its fence is half of
            # worker_dead_after_seconds), or that the fake's late save (2 s after the request,
            # a thread of this busy test process) lands after the look-up settle_seconds
            # later. With 2.5 s and 3 s it sent a reply twice in a loaded full-suite run, and
            # with 5 s and 6 s once in a full-suite run beside four CPU burners (load ≈ 15).
            "connect_timeout_seconds": 0.5,
            "read_timeout_seconds": 1,
            "lease_seconds": 16,
            "heartbeat_seconds": 0.5,
            "worker_dead_after_seconds": 8,
            "settle_seconds": 12,
        },
        "logging": {"level": "INFO"},
        "helpdesks": {
            "generic": {
                "kind": "generic",
                "auth": {"mode": "token", "token": "cluster-token"},
                "reply": {"url": messages},
                "lookup": {"url": messages, "ours": "direction == 'outgoing'"},
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


def in_flight(engine: sa.Engine, pid: int) -> set[int]:
    """Replies the worker process ``pid`` is sending (its id is host:pid:random)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.id).where(
                outbox.c.status == "sending", outbox.c.claimed_by.like(f"%:{pid}:%")
            )
        )
        return set(rows.scalars())


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_four_workers_deliver_every_reply_exactly_once_through_a_sigkill(database_url, tmp_path):
    pg_url = database_url
    # No Idempotency-Key support: only the look-up can keep a retried reply from doubling.
    # A third of replies are saved two seconds late, past the 1 s read timeout; some are
    # saved and then the connection drops; a fifth of calls (look-ups too) get 503.
    fake = FakeHelpdesk(
        fail_ratio=0.2, slow_ratio=0.3, slow_seconds=2, store_late=True, drop_ratio=0.05
    ).start()
    cluster = LocalCluster(write_config(tmp_path, fake.url, pg_url), tmp_path, web_workers=2)
    engine = make_engine(pg_url)
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

        victim = cluster.workers[0]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(deliver_twice, dialogs[: DIALOGS // 2]))
            # Kill a worker while it has replies in flight, then bring a new one up. It is
            # stopped first and its statements already sent given time to finish, so the
            # replies found in flight are the ones it left: a reply it marked sent between a
            # look and the kill would have been finished by it, not taken over.
            deadline = time.monotonic() + 30
            killed_in_flight: set[int] = set()
            while not killed_in_flight and time.monotonic() < deadline:
                if not in_flight(engine, victim.pid):
                    time.sleep(0.01)
                    continue
                os.killpg(victim.pid, signal.SIGSTOP)
                time.sleep(0.5)
                killed_in_flight = in_flight(engine, victim.pid)
                if not killed_in_flight:
                    os.killpg(victim.pid, signal.SIGCONT)
            cluster.kill(victim)
            cluster.start_worker()
            list(pool.map(deliver_twice, dialogs[DIALOGS // 2 :]))

        assert statuses == {"queued": DIALOGS, "duplicate": DIALOGS}
        assert killed_in_flight, "the killed worker had no reply in flight: nothing was tested"

        def counts() -> dict[str, int]:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
                )
                return {status: int(n) for status, n in rows}

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and counts() != {"sent": DIALOGS}:
            time.sleep(0.5)
        time.sleep(3)  # past a slow answer: a late save would show up by now

        stored = Counter(
            {path.split("/")[3]: len(items) for path, items in fake.messages_by_path().items()}
        )
        assert sorted(stored) == sorted(dialogs), "replies were lost"
        doubled = {dialog: n for dialog, n in stored.items() if n > 1}
        assert doubled == {}, "replies were sent twice"
        assert counts() == {"sent": DIALOGS}
        with engine.connect() as conn:
            taken_over = conn.execute(
                sa.select(outbox.c.status, outbox.c.claimed_by).where(
                    outbox.c.id.in_(killed_in_flight)
                )
            ).all()
        assert all(
            status == "sent" and f":{victim.pid}:" not in claimed_by
            for status, claimed_by in taken_over
        )
        # The failure modes were exercised, not just configured.
        answered = Counter(str(r["answered"]) for r in fake.api_requests())
        assert answered["503"] and answered["dropped"]
        assert any(r.get("delayed") for r in fake.api_requests())
    finally:
        cluster.stop()
        fake.stop()
        engine.dispose()


def wait_for_workers(engine: sa.Engine, count: int, timeout: float = 60) -> None:
    """Back once ``count`` delivery workers have beaten (their signal handlers are set)."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(workers)).scalar_one() >= count:
                return
        assert time.monotonic() < deadline, "the delivery workers did not start"
        time.sleep(0.1)


def stop_and_wait(procs: list[subprocess.Popen[bytes]], timeout: float = 60) -> list[int | None]:
    """SIGTERM to each process's group at once (a platform stops a dyno's every process so),
    then the exit status of each."""
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    codes: list[int | None] = []
    for proc in procs:
        try:
            codes.append(proc.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            codes.append(None)
    return codes


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_sigterm_mid_load_to_every_process_loses_nothing_accepted_and_doubles_nothing(
    database_url, tmp_path
):
    """Two web processes and two delivery workers SIGTERMed at once while closes arrive and
    replies are going out (a deploy): each process drains and exits 0, nothing is left
    claimed, and once the processes are up again (the helpdesk retrying the closes that got no
    answer) every dialog has exactly one reply: each 2xx'd close was stored, none sent twice."""
    fake = FakeHelpdesk(slow_ratio=0.3, slow_seconds=0.6, drop_ratio=0.05).start()
    config = write_config(tmp_path, fake.url, database_url)
    first = LocalCluster(config, tmp_path, web_workers=2)
    engine = make_engine(database_url)
    second: LocalCluster | None = None
    try:
        url = first.start_web()
        for _ in range(2):
            first.start_worker()
        wait_for_workers(engine, 2)
        answered: dict[str, int | None] = {}
        posting = threading.Event()
        posting.set()

        def sender(k: int) -> None:
            n = 0
            while posting.is_set():
                dialog = f"GS-{k}-{n}"
                n += 1
                try:
                    status: int | None = requests.post(
                        url + "/webhooks/generic",
                        json=generic_close(dialog),
                        headers={"X-Webhook-Token": "cluster-token"},
                        timeout=30,
                    ).status_code
                except requests.RequestException:
                    status = None
                answered[dialog] = status
                if status is None:
                    return  # refused or reset: the helpdesk retries it later

        senders = [threading.Thread(target=sender, args=(k,)) for k in range(8)]
        for thread in senders:
            thread.start()
        deadline = time.monotonic() + 60
        # Mid-load: closes arriving, replies sent and others in flight.
        while sum(s == 200 for s in list(answered.values())) < 80 or not (
            in_flight(engine, first.workers[0].pid) and in_flight(engine, first.workers[1].pid)
        ):
            assert time.monotonic() < deadline, "the closes were not answered"
            time.sleep(0.01)
        assert first.web is not None
        codes = stop_and_wait([first.web, *first.workers])
        time.sleep(0.5)  # closes sent meanwhile are refused
        posting.clear()
        for thread in senders:
            thread.join()

        assert codes == [0, 0, 0], (codes, (tmp_path / "web.log").read_text())
        accepted = {d for d, s in answered.items() if s == 200}
        assert set(answered.values()) <= {200, None}, Counter(answered.values())
        with engine.connect() as conn:
            stored = set(conn.execute(sa.select(surveys.c.dialog_id)).scalars())
            claimed = conn.execute(
                sa.select(sa.func.count()).where(outbox.c.status == "sending")
            ).scalar_one()
        assert accepted <= stored, "2xx'd closes were lost"
        assert claimed == 0, "replies were left claimed by the workers that stopped"

        (tmp_path / "again").mkdir()
        second = LocalCluster(config, tmp_path / "again", web_workers=2)
        url = second.start_web()
        for _ in range(2):
            second.start_worker()
        for dialog in sorted(set(answered) - accepted):  # the helpdesk's retries
            assert post(url, dialog) in ("queued", "duplicate")

        def counts() -> dict[str, int]:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
                )
                return {status: int(n) for status, n in rows}

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and counts() != {"sent": len(answered)}:
            time.sleep(0.5)
        time.sleep(1)  # past a slow answer

        per_dialog = Counter(
            {path.split("/")[3]: len(items) for path, items in fake.messages_by_path().items()}
        )
        assert sorted(per_dialog) == sorted(answered), "replies were lost"
        assert {d: n for d, n in per_dialog.items() if n > 1} == {}, "replies were sent twice"
        assert counts() == {"sent": len(answered)}
    finally:
        first.stop()
        if second is not None:
            second.stop()
        fake.stop()
        engine.dispose()
