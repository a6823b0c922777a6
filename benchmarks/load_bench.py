"""Load test of the Procfile deployment: gunicorn web processes plus delivery workers on
PostgreSQL, against a fake helpdesk on loopback.

Sends N close webhooks at a fixed rate; a share are sent twice (vendor retries) and the fake
helpdesk answers a share of replies with 503. Prints: accepted, replies sent, duplicates,
lost, acknowledgement latency p50/p99 and close-to-reply latency p50/p99 (from the survey's
commit to the helpdesk receiving the reply).

    python benchmarks/load_bench.py [--closes 4000] [--rate 200] [--duplicates 0.2]
                                    [--failures 0.2] [--web-workers 2] [--delivery-workers 2]
                                    [--database-url postgresql://postgres@127.0.0.1/test]

Targets: close → reply p50 ≤ 100 ms, p99 ≤ 1 s at 200 closes/s with no failures injected;
0 lost, 0 sent twice under duplicates and 5xx.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import open_loop  # noqa: E402

from csat_hook.db.config import normalize_database_url  # noqa: E402
from csat_hook.db.engine import make_engine  # noqa: E402
from csat_hook.db.schema import outbox  # noqa: E402
from csat_hook.db.schema import surveys  # noqa: E402
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk  # noqa: E402
from tests.cluster import LocalCluster  # noqa: E402


class Close:
    """Request n: a generic close; dialogs repeat for the duplicate share (a vendor retry)."""

    def __init__(self, run: str, duplicates: float) -> None:
        self.run = run
        self.every = int(1 / duplicates) if duplicates else 0

    def dialog(self, n: int) -> str:
        # Every `every`-th request repeats the previous dialog.
        if self.every and n % self.every == self.every - 1:
            n -= 1
        return f"{self.run}-{n}"

    def __call__(self, n: int) -> tuple[str, bytes, dict[str, str]]:
        body = {
            "event": "dialog.closed",
            "dialog": {"id": self.dialog(n)},
            "agent": {"id": str(n % 100), "name": f"Agent {n % 100}"},
            "customer": {"id": f"c{n}"},
            "language": "en",
        }
        return (
            "/webhooks/generic",
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "X-Webhook-Token": "load-token"},
        )


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--closes", type=int, default=4000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--failures", type=float, default=0.2)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--delivery-workers", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CSAT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()

    schema = f"load_{uuid.uuid4().hex[:8]}"
    base = sa.make_url(normalize_database_url(args.database_url))
    admin = make_engine(base.render_as_string(hide_password=False))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    fake = FakeHelpdesk(fail_ratio=args.failures).start()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = {
            "database": {"url": url},
            "token": {"secret": "load-token-secret-0123456789"},
            "delivery": {
                "backoff_base_seconds": 0.2,
                "backoff_cap_seconds": 2,
                "max_attempts": 30,
                "concurrency": 8,
                "poll_seconds": 5,
            },
            "logging": {"level": "WARNING"},
            "helpdesks": {
                "generic": {
                    "kind": "generic",
                    "auth": {"mode": "token", "token": "load-token"},
                    "reply": {"url": fake.url + "/api/dialogs/{dialog_id}/messages"},
                }
            },
        }
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        cluster = LocalCluster(work / "config.yaml", work, web_workers=args.web_workers)
        try:
            cluster.start_web()
            for _ in range(args.delivery_workers):
                cluster.start_worker()
            time.sleep(1)
            make = Close(schema, args.duplicates)
            acks = open_loop(cluster.url, make, rate=args.rate, duration=args.closes / args.rate)
            expected = {make.dialog(n) for n in range(int(args.rate * (args.closes / args.rate)))}
            engine = make_engine(url)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    waiting = conn.execute(
                        sa.select(sa.func.count())
                        .select_from(outbox)
                        .where(outbox.c.status.in_(("pending", "sending")))
                    ).scalar_one()
                if not waiting:
                    break
                time.sleep(0.5)
            time.sleep(1)
            with engine.connect() as conn:
                created = {
                    r.dialog_id: r.created_at.timestamp()
                    for r in conn.execute(sa.select(surveys.c.dialog_id, surveys.c.created_at))
                }
                statuses = Counter(s for (s,) in conn.execute(sa.select(outbox.c.status)))
            engine.dispose()
        finally:
            cluster.stop()
            fake.stop()
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()

    calls = [r for r in fake.api_requests() if r["method"] == "POST"]  # replies, not look-ups
    ok = [r for r in calls if r["answered"] == 200]
    per_dialog = Counter(r["path"].split("/")[3] for r in ok)
    first_ok = {}
    first_try = set()
    attempts = Counter(r["path"].split("/")[3] for r in calls)
    for r in ok:
        dialog = r["path"].split("/")[3]
        first_ok.setdefault(dialog, r["at"])
        if attempts[dialog] == 1:
            first_try.add(dialog)
    latency = [first_ok[d] - created[d] for d in first_ok if d in created]
    latency_clean = [first_ok[d] - created[d] for d in first_try if d in created]
    accepted = sum(c for s, c in acks.statuses.items() if 200 <= s < 300)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; PostgreSQL; web gunicorn gthread {args.web_workers}×8, "
        f"{args.delivery_workers} delivery workers × 8 threads"
    )
    print(
        f"sent {len(acks.latencies) + acks.errors} webhooks at {args.rate:.0f}/s for "
        f"{len(expected)} dialogs ({args.duplicates:.0%} repeated); helpdesk 503 share "
        f"{args.failures:.0%}"
    )
    print(
        f"accepted (2xx):        {accepted}   errors: {acks.errors}   other statuses: "
        f"{ {s: c for s, c in acks.statuses.items() if not 200 <= s < 300} }"
    )
    print(f"surveys stored:        {len(created)}   outbox: {dict(statuses)}")
    print(
        f"replies sent:          {len(per_dialog)}   helpdesk calls: {len(calls)} "
        f"({len(calls) - len(ok)} answered 503)"
    )
    print(f"duplicates:            {sum(1 for c in per_dialog.values() if c > 1)}")
    print(f"lost:                  {len(set(created) - set(per_dialog))}")
    print(
        f"ack latency:           p50 {pct(acks.latencies, 50) * 1000:.1f} ms   "
        f"p99 {pct(acks.latencies, 99) * 1000:.1f} ms"
    )
    print(
        f"close → reply:         p50 {pct(latency, 50) * 1000:.1f} ms   "
        f"p99 {pct(latency, 99) * 1000:.1f} ms   (all replies, retries included)"
    )
    print(
        f"close → reply (1st try): p50 {pct(latency_clean, 50) * 1000:.1f} ms   "
        f"p99 {pct(latency_clean, 99) * 1000:.1f} ms   ({len(latency_clean)} replies)"
    )


if __name__ == "__main__":
    main()
