"""Benchmark: one sync of 100 agents and 100,000 answers against the fake Google API.

    python benchmarks/sync_bench.py [--agents 100] [--answers 100000] [--unanswered 50000]
                                    [--source gsheets|csv]

The fake runs in a child process (so its CPU and memory are not counted), holding a
responses sheet it generates from the same seed as the surveys this process puts in a fresh
SQLite database. Prints wall time, peak memory (tracemalloc during the sync, and the process's
peak RSS) and the API requests by kind, for a first (cold) sync, a second one (nothing new)
and a third after 1,000 more answers arrived (the usual periodic run). Targets: ≤ 3 Sheets
reads and ≤ 3 writes per sync, ≤ 10 s, ≤ 500 MB. ``--no-tracemalloc`` for wall times (the
tracer slows Python several-fold and inflates RSS); ``--database-url`` for PostgreSQL.
``--source csv`` reads the answers from a Forms "Download responses (.csv)" export instead
(timestamps as text, ``2026/11/02 3:47:14 PM EST``: every one goes through the text reader);
the report still goes to the fake Sheets.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from zoneinfo import ZoneInfo

from _sync import LATE
from _sync import NOW
from _sync import SECRET
from _sync import cpu_seconds
from _sync import generate
from _sync import machine
from _sync import requests_by_kind
from _sync import reset_requests
from _sync import run_peer_script

from csat_hook.config import load_config
from csat_hook.db.config import normalize_database_url
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.intake import store
from csat_hook.sync.runner import SyncRunner

SHEET = "bench-responses"
PEER_SHEET = "bench-peer-output"  # the peer writes its tabs here (csat-hook's go beside the
# responses, as configured)
BUDGET = 60  # Sheets requests per minute per user, reads and writes each


def serve(agents: int, answers: int, unanswered: int) -> None:
    """Child process: the fake, seeded with the responses sheet; "append" on stdin adds the
    late answers (as form submissions would); EOF stops it."""
    from csat_hook.devtools.fake_google import FakeGoogle

    fake = FakeGoogle().start()
    fake.add_spreadsheet(SHEET, locale="en_US", time_zone="Europe/Moscow")
    rows: list[list] = [["Timestamp", "Rating", "Comment", "Agent", "Ticket", "Reference"]]
    late: list[list] = []
    for n, agent, token, _, submitted, rating, comment in generate(agents, answers, unanswered):
        if submitted is not None:
            (rows if n < answers else late).append(
                [submitted, rating, comment, f"Agent {agent}", f"D-{n}", token]
            )
    fake.add_tab(SHEET, "Form Responses 1", rows, sheet_id=0)
    fake.add_spreadsheet(PEER_SHEET, locale="en_US", time_zone="Europe/Moscow")
    print(json.dumps({"url": fake.url, "service_account": fake.service_account_info()}), flush=True)
    for line in sys.stdin:
        if line.strip() == "append":
            fake.append_rows(SHEET, "Form Responses 1", late)
            print("ok", flush=True)
    fake.stop()


def budget(seen: dict[str, int]) -> str:
    """Whether one run fits Google's per-user quota (60 reads and 60 writes a minute)."""
    reads, writes = seen.get("sheets_read", 0), seen.get("sheets_write", 0)
    worst = max(reads, writes)
    verdict = "within" if worst <= BUDGET else f"over: needs ≥ {-(-worst // BUDGET)} minutes of"
    return f"{reads} reads + {writes} writes ({verdict} the 60/min per-user budget)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--unanswered", type=int, default=50_000)
    parser.add_argument(
        "--database-url",
        help="Use this (empty) database instead of a fresh "
        "SQLite file, e.g. postgresql://postgres@127.0.0.1/bench",
    )
    parser.add_argument(
        "--no-tracemalloc",
        action="store_true",
        help="Wall time without tracemalloc's overhead (peak RSS only).",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the first sync.")
    parser.add_argument(
        "--no-peer", action="store_true", help="Skip the gspread + pandas peer (needs pandas)."
    )
    parser.add_argument(
        "--source",
        choices=("gsheets", "csv"),
        default="gsheets",
        help="Read the answers from the fake sheet (serials) or a Forms CSV export (text).",
    )
    parser.add_argument(
        "--csv-zones",
        choices=("abbreviation", "gmt"),
        default="abbreviation",
        help="--source csv: zones as en-US writes them (EST/EDT) or as GMT-5/GMT-4.",
    )
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        serve(args.agents, args.answers, args.unanswered)
        return
    if args.seed_only:
        seed_database(args.seed_only, args).dispose()
        return
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve-fake",
            "--agents",
            str(args.agents),
            "--answers",
            str(args.answers),
            "--unanswered",
            str(args.unanswered),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        started = time.monotonic()
        fake = json.loads(child.stdout.readline())
        print(f"machine: {machine()}")
        with tempfile.TemporaryDirectory() as tmp:
            # Seeding runs in its own process so this one's peak RSS is the sync's alone.
            url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--seed-only",
                    url,
                    "--agents",
                    str(args.agents),
                    "--answers",
                    str(args.answers),
                    "--unanswered",
                    str(args.unanswered),
                ],
                check=True,
            )
            engine = make_engine(normalize_database_url(url))
            print(
                f"seeded {args.answers:,} answers by {args.agents} agents and "
                f"{args.unanswered:,} unanswered surveys in {time.monotonic() - started:.1f} s"
            )
            export = Path(tmp) / "form-responses.csv"
            if args.source == "csv":
                write_export(export, args, late=False)
                results = {"source": "csv", "csv": {"path": str(export)}}
            else:
                results = {
                    "source": "gsheets",
                    "gsheets": {"spreadsheet_id": SHEET, "sheet_gid": 0},
                }
            config = load_config(
                None,
                env={},
                overrides={
                    "database": {"url": engine.url.render_as_string(hide_password=False)},
                    "token": {"secret": SECRET},
                    "google": {
                        "service_account_json": json.dumps(fake["service_account"]),
                        "sheets_base_url": fake["url"],
                        "forms_base_url": fake["url"],
                    },
                    "results": results,
                    "output": {
                        "gsheets": {
                            "enabled": True,
                            "spreadsheet_id": SHEET,
                            "max_request_bytes": 20_000_000,
                        },
                        "local": {"enabled": False},
                    },
                },
            )
            runner = SyncRunner(config, engine, clock=lambda: NOW)
            for label in (
                "first sync (all new)",
                "second sync (nothing new)",
                f"third sync ({LATE:,} new answers)",
            ):
                if label.startswith("third") and args.source == "csv":
                    write_export(export, args, late=True)
                elif label.startswith("third"):
                    assert child.stdin is not None
                    child.stdin.write("append\n")
                    child.stdin.flush()
                    child.stdout.readline()
                reset_requests(fake["url"])
                if args.profile:
                    import cProfile
                    import pstats

                    profiler = cProfile.Profile()
                    profiler.runcall(runner.run)
                    # SORT=cumulative / TOP=80 in the environment change the listing.
                    stats = pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime"))
                    stats.print_stats(int(os.environ.get("TOP", "40")))
                    continue
                measure(label, runner, fake["url"], child.pid, trace=not args.no_tracemalloc)
            engine.dispose()
            if not args.no_peer:
                for label in ("first run: tabs created", "later run: tabs exist"):
                    run_peer(fake, child.pid, label)
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=30)


def write_export(path: Path, args: argparse.Namespace, *, late: bool) -> None:
    """The answers as Forms' CSV export writes them (New York: EST/EDT or GMT-5/GMT-4)."""
    zone = ZoneInfo("America/New_York")
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["Timestamp", "Rating", "Comment", "Agent", "Ticket", "Reference"])
        for n, agent, token, _, submitted, rating, comment in generate(
            args.agents, args.answers, args.unanswered
        ):
            if submitted is None or (n >= args.answers and not late):
                continue
            t = submitted.astimezone(zone)
            offset = int(t.utcoffset().total_seconds() // 3600)  # type: ignore[union-attr]
            name = t.tzname() if args.csv_zones == "abbreviation" else f"GMT{offset:+d}"
            stamp = (
                f"{t:%Y/%m/%d} {t.hour % 12 or 12}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'} {name}"
            )
            out.writerow([stamp, rating, comment, f"Agent {agent}", f"D-{n}", token])


def seed_database(url: str, args: argparse.Namespace):
    engine = make_engine(normalize_database_url(url))
    create_schema(engine)
    rows = [
        {
            "helpdesk": "dryrun",
            "dialog_id": f"D-{n}",
            "occurrence": "",
            "agent_id": agent,
            "agent_name": f"Agent {agent}",
            "team": f"Team {int(agent) % 7}",
            "token": token,
            "status": "sent",
            "created_at": created,
            "sent_at": created,
        }
        for n, agent, token, created, *_ in generate(args.agents, args.answers, args.unanswered)
    ]
    with engine.begin() as conn:
        store.insert_surveys(conn, rows)
    return engine


def measure(label: str, runner: SyncRunner, url: str, fake_pid: int, *, trace: bool) -> None:
    if trace:
        tracemalloc.start()
    fake_cpu = cpu_seconds(fake_pid)
    started, cpu_started = time.perf_counter(), time.process_time()
    summary = runner.run()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    fake_cpu = cpu_seconds(fake_pid) - fake_cpu
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    tracemalloc.stop()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seen, fake_seconds = requests_by_kind(url)
    print(f"\n{label}: status {summary.status} {summary.error or ''}")
    print(
        f"  rows read {summary.rows_read:,}, new {summary.new:,}, unchanged "
        f"{summary.unchanged:,}, agents {summary.agents}, outputs "
        f"{[o.get('tabs') for o in summary.outputs]} tabs"
    )
    print(
        f"  OUR OWN TIME (CPU of the sync's process) {cpu:.2f} s; the fake API's CPU "
        f"{fake_cpu:.2f} s (its handlers' wall time {fake_seconds:.2f} s); wall time {wall:.2f} s"
    )
    print(f"  tracemalloc peak {peak / 1e6:.0f} MB; process peak RSS so far {rss_mb:.0f} MB")
    print(f"  phases (ms): {summary.phases_ms}")
    print(f"  requests: {budget(seen)}; by kind {seen}")


def run_peer(fake: dict, fake_pid: int, label: str) -> None:
    """The gspread + pandas script (benchmarks/peer_gspread_pandas.py) in its own process."""
    done, fake_cpu = run_peer_script(fake, fake_pid, "peer_gspread_pandas.py", SHEET, PEER_SHEET)
    if done.returncode != 0:
        print(f"\npeer ({label}) failed: {done.stderr.strip().splitlines()[-1:]}")
        return
    result = json.loads(done.stdout.strip().splitlines()[-1])
    seen, fake_seconds = requests_by_kind(fake["url"])
    print(f"\npeer, gspread + pandas ({label}): {result['agents']} agent tabs")
    print(
        f"  PEER'S OWN TIME (CPU of its process, imports excluded) {result['cpu']:.2f} s; the "
        f"fake API's CPU {fake_cpu:.2f} s (handlers {fake_seconds:.2f} s); wall time "
        f"{result['wall']:.2f} s; peak RSS {result['rss_mb']:.0f} MB"
    )
    print(f"  requests: {budget(seen)}; by kind {seen}")


if __name__ == "__main__":
    main()
