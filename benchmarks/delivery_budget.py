"""Where a delivered reply's CPU goes, step by step (one process; the fake helpdesk's own CPU
is not counted: each step is timed with the calling thread's CPU clock).

Queues N replies (generic helpdesk, fake helpdesk on loopback), then runs the worker's own
steps one reply at a time and prints CPU microseconds per reply for each: the claim (one
UPDATE, the next due time, the survey rows), deliver_one (agent, link, text, the HTTP POST
through the one outbound boundary), and recording the outcome (reply and survey marked
sent). Peers measured in the same run: the same POST sent with http.client on a kept-alive
connection (the floor of one HTTP request in Python), and a ``SELECT 1`` round trip through
SQLAlchemy (the floor of one database statement).

    python benchmarks/delivery_budget.py [--database-url postgresql://…] [-n 1000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _pg import private_schema  # noqa: E402

from csat_hook.config import load_config  # noqa: E402
from csat_hook.db.engine import run_statement  # noqa: E402
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk  # noqa: E402
from csat_hook.helpdesks.records import DialogClosed  # noqa: E402
from csat_hook.helpdesks.records import Person  # noqa: E402
from csat_hook.outbox import store  # noqa: E402
from csat_hook.outbox.delivery import Sent  # noqa: E402
from csat_hook.outbox.delivery import deliver_one  # noqa: E402
from csat_hook.services import build_services  # noqa: E402


def per_call(work: Callable[[], Any], n: int) -> tuple[float, list[Any]]:
    """Thread CPU microseconds per call, and the results."""
    out = []
    start = time.thread_time()
    for _ in range(n):
        out.append(work())
    return (time.thread_time() - start) / n * 1e6, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("-n", type=int, default=1000)
    args = parser.parse_args()
    n = args.n
    tmp = Path(tempfile.mkdtemp())
    url = args.database_url or f"sqlite:///{tmp / 'budget.sqlite3'}"
    drop_schema = None
    if url.startswith("postgres"):
        url, drop_schema = private_schema(url, "budget")
    fake = FakeHelpdesk().start()
    config = load_config(
        None,
        env={},
        overrides={
            "database": {"url": url},
            "token": {"secret": "bench-token-secret-0123456789"},
            "logging": {"level": "WARNING"},
            "helpdesks": {
                "generic": {
                    "kind": "generic",
                    "auth": {"mode": "token", "token": "budget-token"},
                    "reply": {"url": fake.url + "/api/dialogs/{dialog_id}/messages"},
                }
            },
        },
    )
    services = build_services(config)
    worker = services.delivery_worker()
    for i in range(n):
        event = DialogClosed(
            helpdesk="generic",
            dialog_id=f"budget-{i}",
            agent=Person(id=str(i % 100), name=f"Agent {i % 100}"),
            customer=Person(id=f"c{i}"),
            language="en",
        )
        services.intake.record_close(event)

    claim_us, claimed = per_call(lambda: worker._claim(1)[0][0], n)
    fence = worker._fence
    it = iter(claimed)

    def deliver() -> Any:
        row, survey = next(it)
        return row, deliver_one(worker.delivery, row, survey, may_write=fence(row))

    deliver_us, delivered = per_call(deliver, n)
    assert all(isinstance(outcome, Sent) for _, outcome in delivered)
    done = iter(delivered)

    def record() -> bool:
        row, outcome = next(done)
        # As the outcome group commit runs an outcome alone in its batch: one statement, in
        # autocommit on PostgreSQL (csat_hook.outbox.recorder).
        return run_statement(
            services.engine,
            lambda conn: store.mark_sent(
                conn,
                row.id,
                worker.worker_id,
                services.clock(),
                external_id=outcome.external_id,
                body=outcome.body,
                agent_id=outcome.agent.id if outcome.agent else None,
                agent_name=outcome.agent.name if outcome.agent else None,
                agent_email=outcome.agent.email if outcome.agent else None,
                link=outcome.link,
            ),
        )

    record_us, recorded = per_call(record, n)
    assert all(recorded)

    parts = urllib.parse.urlsplit(fake.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    body = json.dumps({"text": delivered[0][1].body}).encode()

    def raw_post() -> int:
        conn.request(
            "POST",
            "/api/dialogs/raw/messages",
            body=body,
            headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
        )
        response = conn.getresponse()
        response.read()
        return response.status

    raw_us, _ = per_call(raw_post, n)

    def ping() -> Any:
        with services.engine.connect() as c:
            return c.execute(sa.text("SELECT 1")).scalar()

    ping_us, _ = per_call(ping, n)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; database {url.split(':')[0]}; {n} replies; "
        "CPU µs per reply (calling thread)"
    )
    rows = [
        ("claim (UPDATE … RETURNING, next due, survey rows)", claim_us),
        ("deliver_one (agent, link, text, HTTP POST via requests)", deliver_us),
        ("record outcome (reply + survey sent, one statement)", record_us),
    ]
    for name, us in rows:
        print(f"  {name:<58} {us:8.1f}")
    print(f"  {'total':<58} {sum(us for _, us in rows):8.1f}")
    print(f"  {'peer: the same POST with http.client, kept alive':<58} {raw_us:8.1f}")
    print(f"  {'peer: one SELECT 1 round trip through SQLAlchemy':<58} {ping_us:8.1f}")
    fake.stop()
    services.engine.dispose()
    if drop_schema:
        drop_schema()


if __name__ == "__main__":
    main()
