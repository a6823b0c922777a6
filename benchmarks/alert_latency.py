"""Benchmark: from a bad rating submitted in the form to the alert in Slack.

    python benchmarks/alert_latency.py [--intervals 10 20] [--submissions 12]
                                       [--poll 1] [--database-url postgresql://...]

Runs csat-hook the Procfile way, as separate processes: ``csat-hook sync --periodic`` (the
``clock:`` process, reading the Forms API fake every ``--interval`` seconds) and ``csat-hook
worker``, on one database; the Forms API fake and a fake Slack webhook run in this process.
For each interval it submits ``--submissions`` bad ratings, three per interval, each at a
random moment of its third of the interval (so every phase of the sync cycle is sampled
alike), and waits until Slack has each one. Prints, per interval, the
latency from submission (the response's ``lastSubmittedTime``) to the Slack message arriving:
p50, p95 and max, beside the interval itself (the bound the design promises: interval + the
sync's own duration + the worker's wake-up) and the sync's measured duration.

On SQLite the worker learns of new alerts by polling (``delivery.poll_seconds``, ``--poll``);
on PostgreSQL a NOTIFY sent with the sync's commit wakes it at once. The Forms API's own
visibility delay (a real submission is not listed at once) is not modelled: the fake lists a
response as soon as it is added.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path

import yaml

from csat_hook import tokens
from csat_hook.config import load_config
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.devtools.fake_google import FakeGoogle
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.intake import store

SECRET = "benchmark-token-secret-0123456789"
FORM = "bench-form"
QUESTIONS = {"rating": "aa11", "token": "bb22", "comment": "cc33"}
PER_INTERVAL = 3


@dataclass
class Run:
    interval: float
    latencies: list[float] = field(default_factory=list)
    sync_ms: list[int] = field(default_factory=list)
    lost: int = 0


def write_config(
    folder: Path, database_url: str, google: FakeGoogle, slack: str, poll: float, interval: float
) -> Path:
    config = {
        "database": {"url": database_url},
        "token": {"secret": SECRET},
        "google": {
            "service_account_json": json.dumps(google.service_account_info()),
            "forms_base_url": google.url,
            "sheets_base_url": google.url,
        },
        "results": {
            "source": "forms_api",
            "forms_api": {"form_id": FORM, "question_ids": QUESTIONS},
        },
        "output": {"local": {"enabled": False}},
        "sync": {"interval_seconds": interval},
        "delivery": {"poll_seconds": poll},
        "logging": {"level": "WARNING"},
        "helpdesks": {"dryrun": {"kind": "dryrun", "output": str(folder / "dry.jsonl")}},
        "alerts": {
            "destinations": {"slack": {"kind": "slack", "webhook_url": slack}},
            "rules": [
                {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
            ],
        },
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def make_surveys(database_url: str, count: int) -> list[str]:
    """Sent surveys, as intake records them; their tokens."""
    engine = make_engine(database_url)
    create_schema(engine)
    now = datetime.now(UTC)
    found, rows = [], []
    for n in range(count):
        ref = tokens.SurveyRef("dryrun", f"B-{n}-{now.timestamp():.0f}", "7", now, nonce=f"{n:04x}")
        token = tokens.sign(SECRET, ref)
        found.append(token)
        rows.append(
            {
                "helpdesk": "dryrun",
                "dialog_id": ref.dialog_id,
                "occurrence": "",
                "agent_id": "7",
                "agent_name": "Anna Petrova",
                "token": token,
                "status": "sent",
                "created_at": now,
                "sent_at": now,
            }
        )
    with engine.begin() as conn:
        store.insert_surveys(conn, rows)
    engine.dispose()
    return found


def response(n: int, when: datetime, token: str) -> dict[str, object]:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def answer(qid: str, value: str) -> dict[str, object]:
        return {"questionId": qid, "textAnswers": {"answers": [{"value": value}]}}

    return {
        "responseId": f"BENCH{n}-{when.timestamp():.0f}",
        "createTime": stamp,
        "lastSubmittedTime": stamp,
        "answers": {
            "aa11": answer("aa11", "1"),
            "bb22": answer("bb22", token),
            "cc33": answer("cc33", "slow"),
        },
    }


def spawn(args: list[str], config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CSAT_HOOK_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    with log.open("ab") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "csat_hook", *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_once(
    interval: float, submissions: int, poll: float, database_url: str | None, seed: int
) -> Run:
    rng = random.Random(seed)
    result = Run(interval)
    with tempfile.TemporaryDirectory(prefix="alert-latency-") as tmp:
        folder = Path(tmp)
        url = database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
        if database_url:  # a fresh schema per run on PostgreSQL
            schema = f"bench_{int(time.time() * 1000)}"
            engine = make_engine(database_url)
            with engine.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
            engine.dispose()
            joiner = "&" if "?" in database_url else "?"
            url = f"{database_url}{joiner}options=-csearch_path%3D{schema}"
        google = FakeGoogle().start()
        slack = FakeNotify().start()
        google.add_form(FORM, [])
        config = write_config(folder, url, google, slack.slack_hook(), poll, interval)
        load_config(config, env={})  # fail early on a bad configuration
        surveys = make_surveys(url, submissions)
        submitted: dict[str, datetime] = {}
        sync = spawn(
            ["sync", "--periodic", "--json", "--interval", str(interval)],
            config,
            folder / "sync.log",
        )
        worker = spawn(["worker"], config, folder / "worker.log")
        try:
            time.sleep(2)  # both up, a first sync done
            start = time.monotonic()
            for n, token in enumerate(surveys):
                # Three submissions per interval, each at a random moment of its third: every
                # part of the sync cycle is sampled alike (arrivals are independent of syncs).
                due = start + (n + rng.random()) * interval / PER_INTERVAL
                time.sleep(max(0.0, due - time.monotonic()))
                when = datetime.now(UTC)
                ref = tokens.verify(token, [SECRET])
                submitted[ref.dialog_id] = when
                with google.lock:
                    google.submit_response(FORM, response(n, when, token))
            deadline = time.monotonic() + 3 * interval + 30
            while time.monotonic() < deadline and len(slack.delivered("slack")) < submissions:
                time.sleep(0.05)
        finally:
            stop(sync)
            stop(worker)
            google.stop()
            slack.stop()
        for message in slack.delivered("slack"):
            text = message.json()["text"]
            dialog = text.rsplit("on ticket ", 1)[-1]
            if dialog in submitted:
                result.latencies.append(message.at - submitted[dialog].timestamp())
        result.lost = submissions - len(result.latencies)
        for line in (
            (folder / "sync.log").read_text(encoding="utf-8", errors="replace").splitlines()
        ):
            if line.startswith("{"):
                with contextlib.suppress(ValueError, KeyError):
                    result.sync_ms.append(int(json.loads(line)["duration_ms"]))
    return result


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intervals", type=float, nargs="+", default=[10.0, 20.0])
    parser.add_argument("--submissions", type=int, default=12)
    parser.add_argument("--poll", type=float, default=1.0, help="delivery.poll_seconds")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    wake = (
        "PostgreSQL (NOTIFY wakes the worker)"
        if args.database_url
        else f"SQLite (the worker polls every {args.poll:g} s)"
    )
    print(
        f"alert latency: {args.submissions} bad ratings per interval, {wake}; "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"{'interval':>9} {'p50':>7} {'p95':>7} {'max':>7} {'lost':>5}   sync duration (median)")
    for interval in args.intervals:
        run = run_once(interval, args.submissions, args.poll, args.database_url, args.seed)
        sync = statistics.median(run.sync_ms) / 1000 if run.sync_ms else float("nan")
        if run.latencies:
            print(
                f"{interval:>8g}s {quantile(run.latencies, 0.5):>6.1f}s "
                f"{quantile(run.latencies, 0.95):>6.1f}s {max(run.latencies):>6.1f}s "
                f"{run.lost:>5}   {sync:.2f}s (bound: interval + sync + poll = "
                f"{interval + sync + (0 if args.database_url else args.poll):.1f}s)"
            )
        else:
            print(f"{interval:>8g}s  no alert arrived ({run.lost} lost): see the logs")


if __name__ == "__main__":
    main()
