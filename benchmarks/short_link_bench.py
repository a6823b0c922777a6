"""Short links: a score link's redirect (verify the reference, read the survey, store the click
durably through the group commit, 302) against peers on the same gunicorn, in the same run.

Peers: ``GET /s/<forged>/4`` (the 404 page: the reference is checked, nothing is read or
stored) and ``GET /healthz`` (one database read). Every score request names a different sent
survey and a browser User-Agent, so each stores a human click.

    python benchmarks/short_link_bench.py [--duration 10] [--rate 200] [--database-url URL]

Prints redirects per second (closed loop) and latency percentiles at a fixed rate (open loop).
Target: the click costs the customer little: p99 ≤ 50 ms at 200/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import Result
from _load import closed_loop
from _load import open_loop
from ack_bench import _drop_schema
from ack_bench import _private_schema
from ack_bench import start_gunicorn

from csat_hook import tokens
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.db.schema import link_clicks
from csat_hook.db.schema import surveys

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-token-secret-0123456789"
BROWSER = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0 Safari/537.36"}


def seed(url: str, count: int) -> list[str]:
    """``count`` sent surveys (sent an hour ago); their references."""
    engine = make_engine(url)
    create_schema(engine)
    sent = datetime.now(UTC) - timedelta(hours=1)
    refs = [
        tokens.sign(SECRET, tokens.SurveyRef("generic", f"B-{n}", str(n % 40), sent))
        for n in range(count)
    ]
    rows = [
        {
            "helpdesk": "generic",
            "dialog_id": f"B-{n}",
            "occurrence": "",
            "agent_id": str(n % 40),
            "agent_name": f"Agent {n % 40}",
            "token": ref,
            "link": f"https://docs.google.com/forms/d/e/X/viewform?usp=pp_url&entry.4={ref}",
            "status": "sent",
            "created_at": sent,
            "sent_at": sent,
        }
        for n, ref in enumerate(refs)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(surveys), rows)
    engine.dispose()
    return refs


def bench_config(url: str) -> dict[str, Any]:
    """The service's configuration for a score-link run on the database at ``url``: score
    links on, limits high enough that the load is never refused."""
    return {
        "database": {"url": url},
        "token": {"secret": SECRET},
        "logging": {"level": "WARNING"},
        "sync": {"run_in_serve": False},
        "survey": {
            "form": {
                "url": "https://docs.google.com/forms/d/e/X/viewform",
                "fields": {"token": "entry.4", "rating": "entry.5"},
            },
            "links": {
                "public_base_url": "https://csat.example.com",
                "style": "scores",
                "rate_per_client": 100000,
                "rate_per_reference": 10000,
            },
        },
        "helpdesks": {
            "generic": {
                "kind": "generic",
                "auth": {"mode": "token", "token": "bench-token-xyz"},
                "reply": {"url": "http://127.0.0.1:9/{dialog_id}"},
            }
        },
    }


def forged_reference(ref: str) -> str:
    """``ref`` with its last character changed: a reference that fails verification."""
    return ref[:-1] + ("A" if ref[-1] != "A" else "B")


class ScoreLinks:
    """Request n: score link ``1 + n % 5`` of survey ``n`` (each a different sent survey)."""

    def __init__(self, refs: list[str]) -> None:
        self.refs = refs

    def __call__(self, n: int) -> tuple[str, None, dict[str, str]]:
        return f"/s/{self.refs[n % len(self.refs)]}/{1 + n % 5}", None, BROWSER


class Fixed:
    """The same GET every time."""

    def __init__(self, path: str, headers: dict[str, str]) -> None:
        self.path, self.headers = path, headers

    def __call__(self, n: int) -> tuple[str, None, dict[str, str]]:
        return self.path, None, self.headers


def clicks(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        found = conn.execute(sa.select(sa.func.count()).select_from(link_clicks)).scalar_one()
    engine.dispose()
    return int(found)


def row(name: str, peak: Result, steady: Result, rate: float) -> str:
    return (
        f"{name:<30} {peak.rate:>7.0f}/s  p50 {peak.percentile(50) * 1000:6.1f} ms  "
        f"p99 {peak.percentile(99) * 1000:6.1f} ms | at {rate:.0f}/s: "
        f"p50 {steady.percentile(50) * 1000:6.1f} ms  p99 {steady.percentile(99) * 1000:6.1f}"
        f" ms  (statuses {dict(sorted({**peak.statuses}.items()))}, "
        f"errors {peak.errors + steady.errors})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop requests/s")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    parser.add_argument("--clients", type=int, default=8, help="client connections per process")
    parser.add_argument("--surveys", type=int, default=20000)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        db = args.database_url or f"sqlite:///{work / 'bench.sqlite3'}"
        schema = None
        if db.startswith("postgres"):
            db, schema = _private_schema(db)
        refs = seed(db, args.surveys)
        config = bench_config(db)
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        env = {**os.environ, "CSAT_HOOK_CONFIG": str(work / "config.yaml")}
        env.pop("DATABASE_URL", None)

        forged = forged_reference(refs[0])
        proc, base = start_gunicorn("csat_hook.wsgi:app", args, env, ROOT)
        results = {}
        try:
            for name, make in (
                ("404 page (forged, no DB)", Fixed(f"/s/{forged}/4", BROWSER)),
                ("/healthz (one DB read)", Fixed("/healthz", {})),
                ("score link (302 + click)", ScoreLinks(refs)),
            ):
                closed_loop(base, make, duration=2, threads=args.clients)  # warm-up
                peak = closed_loop(base, make, duration=args.duration, threads=args.clients)
                steady = open_loop(base, make, rate=args.rate, duration=args.duration)
                results[name] = (peak, steady)
        finally:
            proc.terminate()
            proc.wait()
        stored = clicks(db)
        if schema:
            _drop_schema(args.database_url, schema)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; gunicorn gthread {args.workers}×{args.threads}; "
        f"database {db.split(':')[0].split('+')[0]}; {args.duration:g} s per phase"
    )
    for name, (peak, steady) in results.items():
        print(row(name, peak, steady, args.rate))
    peak, steady = results["score link (302 + click)"]
    sent = sum(peak.statuses.values()) + sum(steady.statuses.values())
    print(f"clicks stored: {stored} (score requests answered incl. warm-up: ≥ {sent})")
    print(f"score link p99 at {args.rate:.0f}/s: {steady.percentile(99) * 1000:.1f} ms (≤ 50 ms)")


if __name__ == "__main__":
    main()
