"""Webhook acknowledgements: csat-hook vs a bare Flask endpoint on the same gunicorn.

Both servers run with identical gunicorn settings; both receive the same signed Chatwoot
"conversation resolved" webhook (a new conversation id each time, so csat-hook verifies the
HMAC, parses, stores a survey and queues a reply for every request). Delivery is not running:
this measures the acknowledgement path only.

    python benchmarks/ack_bench.py [--duration 10] [--rate 200] [--database-url URL]

Prints acknowledgements per second (closed loop), latency percentiles at a fixed rate (open
loop), the CPU per request of each server and of PostgreSQL at peak (where the ratio goes),
on PostgreSQL the closes per commit at peak (how much the group commit shares), and the
ratios. Targets: ratio ≥ 0.6 (issue 16), p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cpu import named_cpu
from _cpu import tree_cpu
from _load import Result
from _load import closed_loop
from _load import open_loop

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-webhook-secret"
# --look-back (here and in ack_budget.py): the send policy's look-backs both on.
LOOK_BACK = {"per_dialog": "every_close", "customer_cooldown_days": 30}
LOOK_BACK_HELP = (
    "with the send policy's look-backs on (policy.per_dialog every_close, "
    "policy.customer_cooldown_days 30): each close asks whether its dialog or customer was "
    "surveyed lately"
)
FIXTURE = ROOT / "tests/helpdesks/chatwoot/fixtures/conversation_status_changed_resolved.json"


class SignedClose:
    """Request n: a resolved Chatwoot conversation with id n, signed like Chatwoot signs."""

    def __init__(self, run: int) -> None:
        self.template = json.loads(FIXTURE.read_text(encoding="utf-8"))
        self.run = run

    def __call__(self, n: int) -> tuple[str, bytes, dict[str, str]]:
        payload = dict(self.template)
        payload["id"] = self.run * 10_000_000 + n
        # Each close another customer (the fixture's contact, renumbered): with --look-back's
        # cool-down every close is then surveyed, as most closes of a real helpdesk are.
        sender = dict(payload["meta"]["sender"], id=payload["id"])
        sender["email"] = f"customer-{payload['id']}@example.com"
        payload["meta"] = dict(payload["meta"], sender=sender)
        body = json.dumps(payload).encode()
        ts = str(int(time.time()))
        sig = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        return (
            "/webhooks/chatwoot",
            body,
            {
                "Content-Type": "application/json",
                "X-Chatwoot-Timestamp": ts,
                "X-Chatwoot-Signature": "sha256=" + sig,
            },
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(
    app: str, args: argparse.Namespace, env: dict[str, str], cwd: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
            "--log-level",
            "warning",
            app,
        ],
        cwd=cwd,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.post(base + "/webhooks/probe", timeout=5)
            return proc, base
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{app} did not start")


class Cpu:
    """CPU milliseconds per request of the closed-loop phase: the server's processes (the
    gunicorn tree) and PostgreSQL's (every ``postgres`` process: the server's backends, its
    WAL writer), each over the phase's requests."""

    def __init__(self, server_ms: float, postgres_ms: float, per_commit: float | None) -> None:
        self.server_ms = server_ms
        self.postgres_ms = postgres_ms
        self.per_commit = per_commit  # requests per PostgreSQL commit (the group commit's batch)


def commits(database_url: str | None) -> int | None:
    """The database's committed transactions so far (``pg_stat_database``), after a pause:
    a backend reports its counts when idle (at most once a second) or when it exits, and
    csat-hook closes its held connection after an idle second. None without PostgreSQL."""
    if not database_url or not database_url.startswith("postgres"):
        return None
    import psycopg

    time.sleep(1.5)
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else None


def measure(
    base: str, args: argparse.Namespace, run: int, server_pid: int
) -> tuple[Result, Result, Cpu]:
    closed_loop(base, SignedClose(run * 3), duration=2, threads=args.clients)  # warm-up
    before = commits(args.database_url)
    server, postgres = tree_cpu(server_pid), named_cpu("postgres")
    peak = closed_loop(base, SignedClose(run * 3 + 1), duration=args.duration, threads=args.clients)
    count = max(len(peak.latencies), 1)
    server_ms = (tree_cpu(server_pid) - server) / count * 1000
    postgres_ms = (named_cpu("postgres") - postgres) / count * 1000
    after = commits(args.database_url)
    # Less the two look-ups' own (one transaction each, counted in the second).
    done = after - before - 1 if after is not None and before is not None else 0
    cpu = Cpu(server_ms, postgres_ms, count / done if done > 0 else None)
    steady = open_loop(base, SignedClose(run * 3 + 2), rate=args.rate, duration=args.duration)
    return peak, steady, cpu


def row(name: str, peak: Result, steady: Result) -> str:
    ok = sum(c for s, c in peak.statuses.items() if 200 <= s < 300)
    return (
        f"{name:<22} {peak.rate:>9.0f}/s  p50 {peak.percentile(50) * 1000:6.1f} ms  "
        f"p99 {peak.percentile(99) * 1000:6.1f} ms | at {args_rate:.0f}/s: "
        f"p50 {steady.percentile(50) * 1000:6.1f} ms  p99 {steady.percentile(99) * 1000:6.1f}"
        f" ms  (2xx {ok}/{len(peak.latencies)}, errors {peak.errors + steady.errors})"
    )


args_rate = 0.0


def main() -> None:
    global args_rate
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop requests/s")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--clients", type=int, default=8, help="client connections per process")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--look-back", action="store_true", help=LOOK_BACK_HELP)
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        help="N surveys already stored (of this helpdesk, each another dialog and customer, "
        "sent 400 days ago: outside every look-back) and the tables analysed, as a running "
        "install's are, before the server starts",
    )
    args = parser.parse_args()
    args_rate = args.rate

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = args.database_url or f"sqlite:///{work / 'bench.sqlite3'}"
        config = {
            "database": {"url": db},
            "token": {"secret": "bench-token-secret-0123456789"},
            "logging": {"level": "WARNING"},
            "policy": LOOK_BACK if args.look_back else {},
            "helpdesks": {
                "chatwoot": {
                    "kind": "chatwoot",
                    "base_url": "http://127.0.0.1:9",
                    "api_access_token": "x",
                    "webhook_secret": SECRET,
                }
            },
        }
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        env = {**os.environ, "CSAT_HOOK_CONFIG": str(work / "config.yaml")}
        env.pop("DATABASE_URL", None)
        schema = None
        if db.startswith("postgres"):
            db, schema = _private_schema(db)
            config["database"]["url"] = db
            (work / "config.yaml").write_text(yaml.safe_dump(config))

        if args.history:
            _history(db, args.history)
        ours, ours_url = start_gunicorn("csat_hook.wsgi:app", args, env, ROOT)
        try:
            our_peak, our_steady, our_cpu = measure(ours_url, args, 1, ours.pid)
        finally:
            ours.terminate()
            ours.wait()
        bare, bare_url = start_gunicorn("bare_app:app", args, env, ROOT / "benchmarks")
        try:
            bare_peak, bare_steady, bare_cpu = measure(bare_url, args, 2, bare.pid)
        finally:
            bare.terminate()
            bare.wait()
        if schema:
            _drop_schema(args.database_url, schema)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; gunicorn gthread {args.workers}×{args.threads}; "
        f"database {db.split(':')[0].split('+')[0]}; {args.duration:g} s per phase"
        + ("; policy look-backs on" if args.look_back else "")
        + (f"; {args.history:,} earlier surveys, analysed" if args.history else "")
    )
    print(row("bare Flask endpoint", bare_peak, bare_steady))
    print(row("csat-hook webhook", our_peak, our_steady))
    print(
        f"CPU per request at peak: csat-hook {our_cpu.server_ms:.2f} ms + PostgreSQL "
        f"{our_cpu.postgres_ms:.2f} ms; bare {bare_cpu.server_ms:.2f} ms (the load "
        "generator's own on the same cores, alike for both)"
    )
    if our_cpu.per_commit is not None:
        print(
            f"closes per PostgreSQL commit at peak (the group commit's batches, every "
            f"process): {our_cpu.per_commit:.1f}"
        )
    ratio = our_peak.rate / bare_peak.rate if bare_peak.rate else float("nan")
    p99 = our_steady.percentile(99) * 1000
    print(
        f"ratio csat-hook / bare: {ratio:.2f} (target ≥ 0.60); csat-hook p99 at "
        f"{args.rate:.0f}/s: {p99:.1f} ms (target ≤ 50 ms)"
    )


def _history(url: str, count: int) -> None:
    """``count`` earlier surveys in the database at ``url`` (its schema made first), and its
    statistics gathered (ANALYZE): what a server that has run a while finds, where a new
    schema's planner has no statistics at all."""
    from datetime import UTC
    from datetime import datetime
    from datetime import timedelta

    import sqlalchemy as sa

    from csat_hook.db import migrate
    from csat_hook.db.engine import make_engine
    from csat_hook.db.schema import surveys

    engine = make_engine(url)
    migrate.upgrade(engine)
    sent = datetime.now(UTC) - timedelta(days=400)
    rows = [
        {
            "helpdesk": "chatwoot",
            "dialog_id": f"old-{n}",
            "customer_id": f"old-{n}",
            "customer_email": f"old-{n}@example.com",
            "status": "sent",
            "created_at": sent,
            "sent_at": sent,
        }
        for n in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(surveys.insert(), rows)
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()


def _private_schema(url: str) -> tuple[str, str]:
    """A fresh schema for this run (dropped at the end): the URL that uses it, and its name."""
    import uuid

    import sqlalchemy as sa

    from csat_hook.db.config import normalize_database_url
    from csat_hook.db.engine import make_engine

    schema = f"ack_{uuid.uuid4().hex[:8]}"
    base = sa.make_url(normalize_database_url(url))
    engine = make_engine(base.render_as_string(hide_password=False))
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    scoped = base.update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), schema


def _drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    from csat_hook.db.config import normalize_database_url
    from csat_hook.db.engine import make_engine

    engine = make_engine(normalize_database_url(url))
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


if __name__ == "__main__":
    main()
