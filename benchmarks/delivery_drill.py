"""Delivery drill: exactly one reply per survey under SIGKILLed workers, slow vendors, dropped
connections and 503s, on PostgreSQL with four worker processes (the Procfile deployment).

Closes are posted at a steady rate while the fake vendor answers a share of replies only after
``--slow-seconds`` (saving them at the end of that delay, long after the read timeout), saves
a share and then drops the connection without answering, and answers a share of all calls
(look-ups too) with 503. Every ``--kill-every`` seconds a worker with replies in flight is
SIGKILLed and a new one started. At the end the queue is drained and the vendor's stored
messages are counted per dialog.

    python benchmarks/delivery_drill.py [--duration 60] [--rate 5] [--workers 4]
        [--kill-every 10] [--slow-share 0.15] [--slow-seconds 20] [--drop-share 0.05]
        [--fail-share 0.1] [--read-timeout 5] [--settle 20] [--no-peer]
        [--database-url postgresql://postgres@127.0.0.1/test]

The scenario runs twice: as shipped (the generic adapter with its ``lookup`` request), and its
peer without a look-up (an unknown outcome is sent again, as before look-ups existed). Each run
prints: dialogs, replies the vendor stored, lost, doubled, unknown outcomes, replies found by a
look-up, the SIGKILLs, the time for a live worker to take a killed worker's in-flight reply
over (p50/max) and from the kill to that reply settled (found or sent; p50/max).

Target: 0 lost and 0 doubled with the look-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import open_loop  # noqa: E402
from _outbox import wait_drained  # noqa: E402

from csat_hook.db.config import normalize_database_url  # noqa: E402
from csat_hook.db.engine import make_engine  # noqa: E402
from csat_hook.db.schema import outbox  # noqa: E402
from csat_hook.db.schema import surveys  # noqa: E402
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk  # noqa: E402
from tests.cluster import LocalCluster  # noqa: E402

TOKEN = "drill-token"


class Close:
    """Request n: a generic close of its own dialog."""

    def __init__(self, run: str) -> None:
        self.run = run

    def __call__(self, n: int) -> tuple[str, bytes, dict[str, str]]:
        body = {
            "event": "dialog.closed",
            "dialog": {"id": f"{self.run}-{n}"},
            "agent": {"id": str(n % 20), "name": f"Agent {n % 20}"},
            "customer": {"id": f"c{n}"},
            "language": "en",
        }
        return (
            "/webhooks/generic",
            json.dumps(body).encode(),
            {"Content-Type": "application/json", "X-Webhook-Token": TOKEN},
        )


@dataclass
class Kill:
    """One SIGKILL: when, which worker, which replies it had in flight, and what became of
    them (monotonic times of the takeover and of the reply settling, per outbox id)."""

    at: float
    pid: int
    in_flight: set[int]
    taken_over: dict[int, float] = field(default_factory=dict)
    settled: dict[int, float] = field(default_factory=dict)


@dataclass
class Figures:
    label: str
    dialogs: int = 0
    stored: int = 0
    lost: int = 0
    doubled: int = 0
    extra_copies: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    unknown: int = 0
    found: int = 0
    unchecked: int = 0
    kills: list[Kill] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    drained_in: float = 0.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def schema_url(base: str) -> tuple[str, str]:
    schema = f"drill_{uuid.uuid4().hex[:8]}"
    url = sa.make_url(normalize_database_url(base))
    admin = make_engine(url.render_as_string(hide_password=False))
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return schema, scoped.render_as_string(hide_password=False)


def drop_schema(base: str, schema: str) -> None:
    admin = make_engine(normalize_database_url(base))
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def write_config(
    path: Path, url: str, fake_url: str, args: argparse.Namespace, lookup: bool
) -> None:
    messages = fake_url + "/api/dialogs/{dialog_id}/messages"
    generic: dict[str, Any] = {
        "kind": "generic",
        "auth": {"mode": "token", "token": TOKEN},
        "reply": {"url": messages},
    }
    if lookup:
        generic["lookup"] = {
            "url": messages,
            "messages": "messages",
            "text": "text",
            "id": "id",
            "ours": "direction == 'outgoing' && !private",
            "created_at": "created_at",
        }
    request = args.connect_timeout + args.read_timeout
    config = {
        "database": {"url": url, "pool_size": 5},
        "token": {"secret": "drill-token-secret-0123456789"},
        "delivery": {
            "backoff_base_seconds": 0.5,
            "backoff_cap_seconds": 5,
            "max_attempts": 50,
            "concurrency": args.threads,
            "poll_seconds": 2,
            "connect_timeout_seconds": args.connect_timeout,
            "read_timeout_seconds": args.read_timeout,
            "lease_seconds": max(30.0, 4 * request + 1),
            "heartbeat_seconds": args.heartbeat,
            "worker_dead_after_seconds": args.dead_after,
            "settle_seconds": args.settle,
        },
        "logging": {"level": "WARNING"},
        "helpdesks": {"generic": generic},
    }
    path.write_text(yaml.safe_dump(config))


def in_flight(engine: sa.Engine, pid: int) -> set[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.id).where(
                outbox.c.status == "sending", outbox.c.claimed_by.like(f"%:{pid}:%")
            )
        )
        return set(rows.scalars())


def killer(
    cluster: LocalCluster,
    engine: sa.Engine,
    kills: list[Kill],
    stop: threading.Event,
    every: float,
    rng: random.Random,
) -> None:
    """Every ``every`` seconds SIGKILL a worker that has replies in flight; start another."""
    while not stop.wait(every):
        alive = [w for w in cluster.workers if w.poll() is None]
        rng.shuffle(alive)
        victim, ids = None, set()
        deadline = time.monotonic() + every / 2
        while victim is None and time.monotonic() < deadline and not stop.is_set():
            for worker in alive:
                ids = in_flight(engine, worker.pid)
                if ids:
                    victim = worker
                    break
            else:
                time.sleep(0.05)
        if victim is None:
            continue
        os.killpg(victim.pid, signal.SIGKILL)
        kills.append(Kill(at=time.monotonic(), pid=victim.pid, in_flight=ids))
        victim.wait(timeout=30)
        cluster.workers.remove(victim)
        cluster.start_worker()


def watcher(engine: sa.Engine, kills: list[Kill], stop: threading.Event) -> None:
    """Note when each killed worker's in-flight reply is taken over and when it settles."""
    while not stop.is_set():
        for kill in list(kills):
            open_ids = kill.in_flight - set(kill.settled)
            if not open_ids:
                continue
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(outbox.c.id, outbox.c.status, outbox.c.claimed_by).where(
                        outbox.c.id.in_(open_ids)
                    )
                ).all()
            now = time.monotonic()
            for row in rows:
                owner = row.claimed_by or ""
                if row.id not in kill.taken_over and f":{kill.pid}:" not in owner:
                    kill.taken_over[row.id] = now
                if row.status in ("sent", "failed"):
                    kill.settled.setdefault(row.id, now)
        time.sleep(0.1)


def run(args: argparse.Namespace, *, lookup: bool) -> Figures:
    label = "with look-up" if lookup else "peer: no look-up"
    figures = Figures(label)
    schema, url = schema_url(args.database_url)
    fake = FakeHelpdesk(
        fail_ratio=args.fail_share,
        slow_ratio=args.slow_share,
        slow_seconds=args.slow_seconds,
        store_late=True,
        drop_ratio=args.drop_share,
        seed=args.seed,
    ).start()
    engine = make_engine(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            write_config(work / "config.yaml", url, fake.url, args, lookup)
            cluster = LocalCluster(work / "config.yaml", work, web_workers=1, web_threads=8)
            stop = threading.Event()
            threads: list[threading.Thread] = []
            try:
                cluster.start_web()
                for _ in range(args.workers):
                    cluster.start_worker()
                time.sleep(1)
                threads = [
                    threading.Thread(
                        target=killer,
                        args=(
                            cluster,
                            engine,
                            figures.kills,
                            stop,
                            args.kill_every,
                            random.Random(args.seed),
                        ),
                        daemon=True,
                    ),
                    threading.Thread(
                        target=watcher, args=(engine, figures.kills, stop), daemon=True
                    ),
                ]
                for thread in threads:
                    thread.start()
                acks = open_loop(cluster.url, Close(schema), rate=args.rate, duration=args.duration)
                stop.set()  # no kill after the load: the drain is what is measured next
                threads[0].join()
                stop.clear()
                threads[1] = threading.Thread(
                    target=watcher, args=(engine, figures.kills, stop), daemon=True
                )
                threads[1].start()
                began = time.monotonic()
                wait_drained(engine, args.drain_timeout)
                figures.drained_in = time.monotonic() - began
                # A vendor that saves late: anything still on its way lands by now.
                time.sleep(args.slow_seconds + 1)
            finally:
                stop.set()
                for thread in threads:
                    thread.join(5)
                cluster.stop()
            if acks.errors or any(not 200 <= s < 300 for s in acks.statuses):
                print(f"  webhook errors: {acks.errors}, statuses {acks.statuses}")
        with engine.connect() as conn:
            dialogs = set(conn.execute(sa.select(surveys.c.dialog_id)).scalars())
            figures.statuses = {
                s: int(n)
                for s, n in conn.execute(
                    sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
                )
            }
            figures.unknown = conn.execute(
                sa.select(sa.func.count()).where(outbox.c.uncertain_since.is_not(None))
            ).scalar_one()
            figures.found = conn.execute(
                sa.select(sa.func.count()).where(outbox.c.last_error.like("found in the dialog%"))
            ).scalar_one()
            figures.unchecked = conn.execute(
                sa.select(sa.func.count()).where(outbox.c.last_error.like("sent again without%"))
            ).scalar_one()
        per_dialog = Counter(
            {p.split("/")[3]: len(items) for p, items in fake.messages_by_path().items()}
        )
        figures.dialogs = len(dialogs)
        figures.stored = sum(per_dialog.values())
        figures.lost = sum(1 for d in dialogs if per_dialog.get(d, 0) == 0)
        figures.doubled = sum(1 for d in dialogs if per_dialog.get(d, 0) > 1)
        figures.extra_copies = sum(max(0, per_dialog.get(d, 0) - 1) for d in dialogs)
        figures.requests = Counter(
            f"{r['method']} {r['answered']}" + (" slow" if r.get("delayed") else "")
            for r in fake.api_requests()
        )
    finally:
        engine.dispose()
        fake.stop()
        drop_schema(args.database_url, schema)
    return figures


def report(figures: Figures) -> None:
    takeover = [kill.taken_over[i] - kill.at for kill in figures.kills for i in kill.taken_over]
    settled = [kill.settled[i] - kill.at for kill in figures.kills for i in kill.settled]
    in_flight = sum(len(kill.in_flight) for kill in figures.kills)
    print(f"[{figures.label}]")
    print(
        f"  dialogs {figures.dialogs}   vendor stored {figures.stored}   "
        f"lost {figures.lost}   doubled {figures.doubled} ({figures.extra_copies} extra copies)"
    )
    print(f"  outbox {figures.statuses}   drained {figures.drained_in:.1f} s after the load")
    print(
        f"  unknown outcomes {figures.unknown}   found by look-up {figures.found}   "
        f"sent again unchecked {figures.unchecked}"
    )
    print(
        f"  SIGKILLs {len(figures.kills)} with {in_flight} replies in flight; "
        f"takeover p50 {pct(takeover, 50):.1f} s max {max(takeover, default=float('nan')):.1f} s"
        f" ({len(takeover)}); kill → settled p50 {pct(settled, 50):.1f} s "
        f"max {max(settled, default=float('nan')):.1f} s ({len(settled)})"
    )
    calls = ", ".join(f"{k}: {v}" for k, v in sorted(figures.requests.items()))
    print(f"  vendor calls: {calls}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of closes")
    parser.add_argument("--rate", type=float, default=5.0, help="closes per second")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="delivery threads per worker")
    parser.add_argument("--kill-every", type=float, default=10.0)
    parser.add_argument("--slow-share", type=float, default=0.15)
    parser.add_argument("--slow-seconds", type=float, default=20.0)
    parser.add_argument("--drop-share", type=float, default=0.05)
    parser.add_argument("--fail-share", type=float, default=0.10)
    parser.add_argument("--connect-timeout", type=float, default=1.0)
    parser.add_argument("--read-timeout", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=20.0)
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--dead-after", type=float, default=5.0)
    parser.add_argument("--drain-timeout", type=float, default=240.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-peer", action="store_true", help="skip the run without look-up")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "CSAT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    if args.settle < args.slow_seconds - args.read_timeout:
        print(
            f"note: --settle {args.settle:g} is shorter than the vendor's late save "
            f"({args.slow_seconds:g} s - read timeout {args.read_timeout:g} s): expect doubles"
        )
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; PostgreSQL; web gunicorn gthread 1×8, "
        f"{args.workers} delivery workers × {args.threads} threads"
    )
    print(
        f"closes: {args.rate:g}/s for {args.duration:g} s; vendor: {args.slow_share:.0%} of "
        f"replies saved and answered after {args.slow_seconds:g} s, {args.drop_share:.0%} saved "
        f"then dropped, {args.fail_share:.0%} of calls 503; a worker SIGKILLed every "
        f"{args.kill_every:g} s; timeouts connect {args.connect_timeout:g} s read "
        f"{args.read_timeout:g} s, settle {args.settle:g} s, heartbeat {args.heartbeat:g} s, "
        f"dead after {args.dead_after:g} s"
    )
    started = time.monotonic()
    report(run(args, lookup=True))
    if not args.no_peer:
        report(run(args, lookup=False))
    print(f"drill took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
