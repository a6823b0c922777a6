"""Load test of the Procfile deployment: gunicorn web processes plus delivery workers on
PostgreSQL, against a fake helpdesk on loopback.

Sends N close webhooks at a fixed rate; a share are sent twice (vendor retries) and the fake
helpdesk answers a share of replies with 503. Prints: accepted, replies sent, duplicates,
lost, acknowledgement latency p50/p99 and close-to-reply latency p50/p99 (from the survey's
commit to the helpdesk receiving the reply), and the CPU seconds our processes (gunicorn web
processes and delivery workers) spent per close, beside the CPU a bare Flask endpoint on the
same gunicorn (the Procfile's web line) spends per request at the same rate (the peer,
measured in the same run). PostgreSQL's CPU is printed apart (the whole server: other
sessions on the machine are included).

    python benchmarks/load_bench.py [--closes 4000] [--rate 200] [--duplicates 0.2]
                                    [--failures 0.2] [--web-workers 2] [--delivery-workers 2]
                                    [--runs 5] [--no-peer]
                                    [--database-url postgresql://postgres@127.0.0.1/test]

Targets (issue 16): close → reply p50 ≤ 50 ms, p99 ≤ 250 ms at 200 closes/s with no failures
injected, in every run; CPU per close (acknowledgement + delivery) ≤ 3× a bare request;
0 lost, 0 sent twice under duplicates and 5xx.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import requests
import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cpu import named_cpu  # noqa: E402
from _cpu import self_cpu  # noqa: E402
from _cpu import tree_cpu  # noqa: E402
from _load import open_loop  # noqa: E402
from _outbox import wait_drained  # noqa: E402

from csat_hook.db.config import normalize_database_url  # noqa: E402
from csat_hook.db.engine import make_engine  # noqa: E402
from csat_hook.db.schema import outbox  # noqa: E402
from csat_hook.db.schema import surveys  # noqa: E402
from csat_hook.db.schema import workers  # noqa: E402
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk  # noqa: E402
from tests.cluster import LocalCluster  # noqa: E402
from tests.cluster import free_port  # noqa: E402
from tests.cluster import procfile_command  # noqa: E402


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
    parser.add_argument("--runs", type=int, default=1, help="repeat; print each and the range")
    parser.add_argument("--no-peer", action="store_true", help="skip the bare Flask peer")
    parser.add_argument(
        "--timeline", action="store_true", help="per second of closes: count, p50, max latency"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CSAT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; PostgreSQL; web gunicorn gthread {args.web_workers}×8, "
        f"{args.delivery_workers} delivery workers × 8 threads; generator, fake helpdesk and "
        "PostgreSQL on the same cores",
        flush=True,
    )
    runs = []
    for run in range(1, args.runs + 1):
        print(f"--- run {run}/{args.runs}", flush=True)
        runs.append(run_once(args))
    if args.runs > 1:
        print(f"=== {args.runs} runs (ranges)")
        for key, label, unit in SUMMARY:
            values = [r[key] for r in runs if key in r]
            if values:
                print(f"{label:<34} {min(values):9.2f} – {max(values):9.2f} {unit}")
        met = sum(1 for r in runs if r["reply_p50"] <= 50 and r["reply_p99"] <= 250)
        print(f"runs with close → reply p50 ≤ 50 ms and p99 ≤ 250 ms: {met}/{len(runs)}")


SUMMARY = [
    ("reply_p50", "close → reply p50", "ms"),
    ("reply_p99", "close → reply p99", "ms"),
    ("ack_p50", "ack p50", "ms"),
    ("ack_p99", "ack p99", "ms"),
    ("cpu_close", "our CPU per close (web + workers)", "ms"),
    ("cpu_web", "  web (acknowledgement)", "ms"),
    ("cpu_workers", "  delivery workers", "ms"),
    ("cpu_pg", "PostgreSQL CPU per close", "ms"),
    ("cpu_bare", "bare Flask CPU per request", "ms"),
    ("ratio", "CPU ratio close / bare request", "×"),
    ("ack_ratio", "CPU ratio ack / bare request", "×"),
]


def bare_cpu_per_request(args: argparse.Namespace, count: int) -> float:
    """The peer: the bare Flask endpoint on the Procfile's gunicorn (same worker class,
    processes, threads and settings), ``count`` requests at ``args.rate``; CPU ms/request."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}"}
    command = procfile_command(
        "web",
        {"PORT": str(port), "WEB_CONCURRENCY": str(args.web_workers)},
        {"--bind": f"127.0.0.1:{port}"},
    )
    command[-1] = "bare_app:app"
    proc = subprocess.Popen(
        [*command[:-1], "--log-level", "warning", command[-1]],
        cwd=ROOT / "benchmarks",
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                requests.post(url + "/webhooks/probe", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.1)
        time.sleep(0.5)
        before = tree_cpu(proc.pid)
        make = Close("bare", 0)
        open_loop(url, make, rate=args.rate, duration=count / args.rate)
        return (tree_cpu(proc.pid) - before) / count * 1000
    finally:
        proc.terminate()
        proc.wait()


def _wait_for_workers(url: str, count: int, timeout: float = 120) -> None:
    engine = make_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if (
                    conn.execute(sa.select(sa.func.count()).select_from(workers)).scalar_one()
                    >= count
                ):
                    return
            time.sleep(0.1)
        raise SystemExit(f"the {count} delivery workers did not register in {timeout:g} s")
    finally:
        engine.dispose()


def run_once(args: argparse.Namespace) -> dict[str, float]:
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
            # Steady state, not start-up: wait until every worker has registered (its first
            # heartbeat comes after its imports and before its threads claim), then a second
            # for the listeners to connect. Without this the first seconds of closes wait for
            # Python to start the workers, which is most of the p99.
            _wait_for_workers(url, args.delivery_workers)
            time.sleep(1)
            make = Close(schema, args.duplicates)
            assert cluster.web is not None
            ours = [cluster.web.pid, *(w.pid for w in cluster.workers)]
            cpu_before = [tree_cpu(cluster.web.pid), tree_cpu(*ours[1:]), named_cpu("postgres")]
            # This process (fake helpdesk) and the load generator's processes, waited for by
            # then; ours are not waited for until cluster.stop(), so they are not in it.
            generator_s = -self_cpu()
            acks = open_loop(cluster.url, make, rate=args.rate, duration=args.closes / args.rate)
            expected = {make.dialog(n) for n in range(int(args.rate * (args.closes / args.rate)))}
            engine = make_engine(url)
            wait_drained(engine, 120)
            cpu_after = [tree_cpu(cluster.web.pid), tree_cpu(*ours[1:]), named_cpu("postgres")]
            generator_s += self_cpu()
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
    if args.timeline and created:
        # Whether slow replies are spread out or come in bursts (a stall of the whole box).
        start = min(created.values())
        seconds: dict[int, list[float]] = {}
        for dialog, at in first_ok.items():
            if dialog in created:
                seconds.setdefault(int(created[dialog] - start), []).append(at - created[dialog])
        for second in sorted(seconds):
            values = seconds[second]
            print(
                f"  t={second:3d}s  {len(values):4d} closes  p50 {pct(values, 50) * 1000:7.1f} ms"
                f"  max {max(values) * 1000:7.1f} ms"
            )
    closes = len(created)
    web_ms, workers_ms, pg_ms = (
        (after - before) / max(1, closes) * 1000
        for before, after in zip(cpu_before, cpu_after, strict=True)
    )
    result = {
        "reply_p50": pct(latency, 50) * 1000,
        "reply_p99": pct(latency, 99) * 1000,
        "ack_p50": pct(acks.latencies, 50) * 1000,
        "ack_p99": pct(acks.latencies, 99) * 1000,
        "cpu_close": web_ms + workers_ms,
        "cpu_web": web_ms,
        "cpu_workers": workers_ms,
        "cpu_pg": pg_ms,
    }
    print(
        f"CPU per close (ours):  {web_ms + workers_ms:.2f} ms = web {web_ms:.2f} + workers "
        f"{workers_ms:.2f}; PostgreSQL {pg_ms:.2f} ms (whole server); generator and fake "
        f"helpdesk {generator_s:.1f} s in all"
    )
    if not args.no_peer:
        bare = bare_cpu_per_request(args, len(acks.latencies))
        result |= {
            "cpu_bare": bare,
            "ratio": result["cpu_close"] / bare,
            "ack_ratio": web_ms / bare,
        }
        print(
            f"bare Flask endpoint:   {bare:.2f} ms CPU per request (same gunicorn, same rate) → "
            f"close / bare {result['ratio']:.2f} (target ≤ 3), ack / bare "
            f"{result['ack_ratio']:.2f}"
        )
    return result


if __name__ == "__main__":
    main()
