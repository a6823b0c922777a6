"""Benchmark: one sync of 100 agents and 100,000 answers against the fake Google API.

    python benchmarks/sync_bench.py [--agents 100] [--answers 100000] [--unanswered 50000]
                                    [--source gsheets|csv] [--runs 1] [--no-peer]
                                    [--erasures 0] [--unreadable 0] [--output gsheets|local]

The fake runs in a child process (so its CPU and memory are not counted), holding a
responses sheet it generates from the same seed as the surveys this process puts in a fresh
SQLite database. Prints wall time, our own CPU time, the fake API's CPU apart, peak memory
(tracemalloc during the sync, and the process's peak RSS) and the API requests by kind, for a
first (cold) sync, a second one (nothing new) and a third after 1,000 more answers arrived
(the usual periodic run); then the gspread + pandas peer (``peer_gspread_pandas.py``) twice
against the same fake. Targets (issue 16): the first sync ≤ 3 s of our own CPU and ≤ 200 MB
peak RSS; later syncs (nothing new, 1,000 new) ≤ 1 s of our CPU each; within Google's
per-user quota of 60 Sheets reads and 60 writes a minute (the peer is not); at least as fast
as the peer, end to end (wall time) and on CPU (ours against its own). ``--runs N`` repeats
the whole benchmark N times, each in a fresh process with a fresh database and fake, and
ends with a table of every figure's range over the runs, the peer's beside it, the target
and whether every run met it (also printed for one run). ``--no-tracemalloc`` for wall
times and the targets (the tracer slows Python several-fold and inflates RSS);
``--database-url`` for PostgreSQL (each run in a private schema, dropped after it).
``--source csv`` reads the answers from a Forms "Download responses (.csv)" export instead
(timestamps as text, ``2026/11/02 3:47:14 PM EST``: every one goes through the text reader);
the report still goes to the fake Sheets. ``--erasures N`` records N customer erasures
(``csat-hook erase``) before the first sync: one of an answered survey, the others of
dialogs the benchmark has none of (half by survey, half by dialog), so every sync pays the
look-up of its answers among the erased. ``--unreadable N`` puts N rows the sync cannot read
among the answers (a rating of "n/a", as a test submission or a row typed by hand gives),
recorded as skipped rows: most real sheets hold a few, and each sync reads them again.

``--output local`` writes the report as the embedded defaults do (``csat-report.xlsx`` and the
CSV files in a folder) instead of to the fake Sheets: the same report, every cell of it
written to the workbook each run (the Sheets output sends only what changed). The peer beside
it stays the gspread + pandas script against the fake Sheets.

``BENCH_DIALOG_IDS=by-time`` numbers the dialogs in the order they were closed, as a helpdesk
numbers them (the default, ``generated``, numbers them in the order generated, random against
time: every round's figures); a survey key begins with its helpdesk and dialog id, so this
decides whether the rows of a sheet, read in submission time, name keys near one another in
the indexes (docs/performance.md, the thirty-sixth round).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from _pg import bench_database
from _sync import LATE
from _sync import NOW
from _sync import SECRET
from _sync import SHEET_HEADER
from _sync import SHEET_ZONE
from _sync import SYNC_CLOCK
from _sync import Figure
from _sync import StepClock
from _sync import below
from _sync import cpu_seconds
from _sync import dialog_order
from _sync import failed_run
from _sync import fake_started
from _sync import generate
from _sync import machine
from _sync import not_above_peer
from _sync import peak_rss_mb
from _sync import print_summary
from _sync import repeat
from _sync import requests_by_kind
from _sync import reset_requests
from _sync import run_peer_script
from _sync import sheet_rows

from csat_hook import tokens
from csat_hook.config import load_config
from csat_hook.db.config import normalize_database_url
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.db.schema import erased_dialogs
from csat_hook.db.schema import erasures
from csat_hook.intake import store
from csat_hook.sync.allocator import keep_large_blocks_mapped
from csat_hook.sync.runner import SyncRunner

SHEET = "bench-responses"
PEER_SHEET = "bench-peer-output"  # the peer writes its tabs here (csat-hook's go beside the
# responses, as configured)
BUDGET = 60  # Sheets requests per minute per user, reads and writes each
FIRST_CPU, LATER_CPU, FIRST_RSS = 3.0, 1.0, 200.0  # targets: s of our CPU, MB peak RSS


def with_unreadable(rows: list[list], count: int) -> list[list]:
    """``rows`` (the header first) with ``count`` rows the sync cannot read spread among them,
    each dated as the answer above it: a rating of "n/a" (skipped as bad_rating)."""
    if count <= 0:
        return rows
    out, step = [rows[0]], max(1, (len(rows) - 1) // count)
    for index, row in enumerate(rows[1:]):
        out.append(row)
        if index % step == step - 1 and len(out) - len(rows) < count:
            out.append([row[0], "n/a", "test", "", "", ""])
    return out


def serve(agents: int, answers: int, unanswered: int, unreadable: int) -> None:
    """Child process: the fake, seeded with the responses sheet (``unreadable`` rows among
    its answers: :func:`with_unreadable`); "append" on stdin adds the late answers (as form
    submissions would); EOF stops it."""
    from csat_hook.devtools.fake_google import FakeGoogle

    fake = FakeGoogle().start()
    fake.add_spreadsheet(SHEET, locale="en_US", time_zone=SHEET_ZONE)
    rows, late = sheet_rows(agents, answers, unanswered)
    fake.add_tab(SHEET, "Form Responses 1", with_unreadable(rows, unreadable), sheet_id=0)
    fake.add_spreadsheet(PEER_SHEET, locale="en_US", time_zone=SHEET_ZONE)
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
        "--steps",
        action="store_true",
        help="Print each sync's CPU and wall time per step (timed around the steps, no "
        "profiler: the figures the budget in docs/performance.md gives).",
    )
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
        "--output",
        choices=("gsheets", "local"),
        default="gsheets",
        help="Write the report to the fake Sheets, or to a local .xlsx and CSV files (the "
        "embedded defaults' output).",
    )
    parser.add_argument(
        "--csv-zones",
        choices=("abbreviation", "gmt"),
        default="abbreviation",
        help="--source csv: zones as en-US writes them (EST/EDT) or as GMT-5/GMT-4.",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="Repeat the whole benchmark N times (each in a fresh process, database and fake) "
        "and summarise the range of every figure.",
    )
    parser.add_argument(
        "--erasures",
        type=int,
        default=0,
        help="Record N erasures before the first sync (one of an answered survey, the rest "
        "of other dialogs): the syncs' figures with erasures on record.",
    )
    parser.add_argument(
        "--unreadable",
        type=int,
        default=0,
        help="Put N rows the sync cannot read among the answers (skipped rows): the syncs' "
        "figures with a few such rows, as most real sheets hold.",
    )
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed-only", help=argparse.SUPPRESS)
    parser.add_argument("--write-export", help=argparse.SUPPRESS)
    parser.add_argument("--late", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-figures", help=argparse.SUPPRESS)
    args = parser.parse_args()
    dialog_order()  # a wrong BENCH_DIALOG_IDS stops here, before a child fails on it
    if args.serve_fake:
        serve(args.agents, args.answers, args.unanswered, args.unreadable)
        return
    if args.seed_only:
        seed_database(args.seed_only, args).dispose()
        return
    if args.write_export:
        write_export(Path(args.write_export), args, late=args.late)
        return
    runs = repeat(args.runs, lambda: run_once(args), __file__, args.run_figures)
    if runs and not args.profile:  # --profile measures none of the syncs
        summarize(args, runs)


def _sizes(args: argparse.Namespace) -> list[str]:
    """The options that size the data, for a child process (the fake, the seeding, the
    export) to make the same surveys."""
    sizes = {"--agents": args.agents, "--answers": args.answers, "--unanswered": args.unanswered}
    return [part for option, value in sizes.items() for part in (option, str(value))]


def run_once(args: argparse.Namespace) -> dict:
    """One whole benchmark: the three syncs and the peer's two runs; what each measured
    (``None`` for a sync that was profiled or a peer run that failed)."""
    syncs: list[dict | None] = []
    peer: list[dict | None] = []
    child = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve-fake",
            *_sizes(args),
            "--unreadable",
            str(args.unreadable),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        started = time.monotonic()
        fake = fake_started(child)
        print(f"machine: {machine()}")
        print(f"dialog ids (BENCH_DIALOG_IDS): {dialog_order()}")
        with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as cleanup:
            # Seeding runs in its own process so this one's peak RSS is the sync's alone.
            url = bench_database(args.database_url, Path(tmp), "sync_bench", cleanup)
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--seed-only",
                    url,
                    *_sizes(args),
                    "--erasures",
                    str(args.erasures),
                ],
                check=True,
            )
            engine = make_engine(normalize_database_url(url))
            print(
                f"seeded {args.answers:,} answers by {args.agents} agents and "
                f"{args.unanswered:,} unanswered surveys"
                + (f", {args.erasures:,} erasures" if args.erasures else "")
                + (f", {args.unreadable:,} unreadable rows" if args.unreadable else "")
                + f" in {time.monotonic() - started:.1f} s"
            )
            export = Path(tmp) / "form-responses.csv"
            if args.source == "csv":
                export_in_child(export, args, late=False)
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
                            "enabled": args.output == "gsheets",
                            "spreadsheet_id": SHEET,
                            "max_request_bytes": 10_485_760,  # Google's limit
                        },
                        "local": {
                            "enabled": args.output == "local",
                            "dir": str(Path(tmp) / "report"),
                            "xlsx": True,
                            "csv": True,
                        },
                    },
                },
            )
            keep_large_blocks_mapped()  # as `csat-hook sync` does before its runner
            runner = SyncRunner(config, engine, clock=lambda: SYNC_CLOCK)
            for label in (
                "first sync (all new)",
                "second sync (nothing new)",
                f"third sync ({LATE:,} new answers)",
            ):
                if label.startswith("third") and args.source == "csv":
                    export_in_child(export, args, late=True)
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
                    if os.environ.get("PROFILE_OUT"):
                        # PROFILE_OUT=path.N keeps each sync's stats for pstats' callers view.
                        profiler.dump_stats(f"{os.environ['PROFILE_OUT']}.{len(syncs)}")
                    # SORT=cumulative / TOP=80 in the environment change the listing.
                    stats = pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "tottime"))
                    stats.print_stats(int(os.environ.get("TOP", "40")))
                    syncs.append(None)
                    continue
                syncs.append(
                    measure(
                        label,
                        runner,
                        fake["url"],
                        child.pid,
                        trace=not args.no_tracemalloc,
                        steps=STEPS if args.steps else None,
                    )
                )
            engine.dispose()
            if not args.no_peer:
                for label in ("first run: tabs created", "later run: tabs exist"):
                    peer.append(run_peer(fake, child.pid, label))
    finally:
        if child.stdin:
            child.stdin.close()
        child.wait(timeout=30)
    return {"syncs": syncs, "peer": peer}


def summarize(args: argparse.Namespace, runs: list[dict]) -> None:
    """The closing table: each figure's range over the runs beside the peer's and the target.

    The peer's first run (it creates its tabs and reads every answer, as our first sync
    does) stands beside our first sync; its later run (tabs exist, every answer read again)
    beside our sync of 1,000 new answers."""
    with_peer = not args.no_peer

    def ours(sync: int, key: str) -> list[float | None]:
        return [None if r["syncs"][sync] is None else r["syncs"][sync][key] for r in runs]

    def peers(run: int, key: str) -> list[float | None] | None:
        if not with_peer:
            return None
        return [None if r["peer"][run] is None else r["peer"][run][key] for r in runs]

    def ratio(our: float | None, peer: float | None) -> float | None:
        return None if our is None or not peer else our / peer

    quota = below(BUDGET)

    figures = [
        Figure(
            "first sync: our CPU",
            ours(0, "cpu"),
            peers(0, "cpu"),
            f"≤ {FIRST_CPU:.0f} s",
            below(FIRST_CPU),
        ),
    ]
    if with_peer:
        # At least as fast as the peer: our CPU against its own, then end to end.
        figures.append(
            Figure(
                "first sync: our CPU / peer's",
                [ratio(o, p) for o, p in zip(ours(0, "cpu"), peers(0, "cpu") or [], strict=True)],
                target="≤ 1×",
                met=below(1.0),
                unit="×",
            )
        )
    figures += [
        Figure(
            "first sync: wall",
            ours(0, "wall"),
            peers(0, "wall"),
            "≤ peer" if with_peer else "",
            not_above_peer if with_peer else None,
        ),
        Figure(
            "first sync: peak RSS",
            ours(0, "rss_mb"),
            peers(0, "rss_mb"),
            f"≤ {FIRST_RSS:.0f} MB",
            below(FIRST_RSS),
            unit="MB",
            digits=0,
        ),
    ]

    def beside(sync: int, key: str) -> list[float | None] | None:
        """The peer's figure beside our sync: its first run by our first, its later by our
        sync of new answers, none by the sync with nothing new."""
        return {0: peers(0, key), 2: peers(1, key)}.get(sync)

    for sync, label in enumerate(("first sync", "nothing new", f"{LATE:,} new")):
        if sync:
            figures += [
                Figure(
                    f"{label}: our CPU",
                    ours(sync, "cpu"),
                    beside(sync, "cpu"),
                    f"≤ {LATER_CPU:.0f} s",
                    below(LATER_CPU),
                ),
                Figure(f"{label}: wall", ours(sync, "wall"), beside(sync, "wall")),
            ]
        figures.append(
            Figure(f"{label}: fake API CPU", ours(sync, "fake_cpu"), beside(sync, "fake_cpu"))
        )
        figures += [
            Figure(
                f"{label}: Sheets {kind}",
                ours(sync, kind),
                beside(sync, kind),
                f"≤ {BUDGET}/min",
                quota,
                unit="",
                digits=0,
                peer_met=lambda peer: quota(peer, None),
            )
            for kind in ("reads", "writes")
        ]
    notes = []
    if with_peer:
        notes.append(
            "peer: gspread + pandas; its first run beside our first sync, its later run "
            f"(tabs exist) beside our {LATE:,}-new sync; a mark after its figure: whether it "
            "met the same target"
        )
    if not args.no_tracemalloc:
        notes.append("tracemalloc was on: CPU, wall and RSS inflated (--no-tracemalloc)")
    print_summary(
        f"summary: {args.agents} agents, {args.answers:,} answers, {args.unanswered:,} "
        f"unanswered, source {args.source}, output {args.output}, {len(runs)} run(s)",
        figures,
        notes,
    )


def export_in_child(path: Path, args: argparse.Namespace, *, late: bool) -> None:
    """:func:`write_export` in a process of its own, as the seeding runs: the 100,000 rows it
    builds were this process's, and its peak RSS is the sync's alone (the export's rows had
    put 23 MB more in it before the first sync began, 202-203 MB at its peak)."""
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--write-export",
            str(path),
            *(["--late"] if late else []),
            *_sizes(args),
            "--unreadable",
            str(args.unreadable),
            "--csv-zones",
            args.csv_zones,
        ],
        check=True,
    )


def write_export(path: Path, args: argparse.Namespace, *, late: bool) -> None:
    """The answers as Forms' CSV export writes them (New York: EST/EDT or GMT-5/GMT-4)."""
    zone = ZoneInfo("America/New_York")
    rows: list[list] = [list(SHEET_HEADER)]
    late_rows: list[list] = []
    for n, agent, token, _, submitted, rating, comment, ticket in generate(
        args.agents, args.answers, args.unanswered
    ):
        if submitted is None or (n >= args.answers and not late):
            continue
        t = submitted.astimezone(zone)
        offset = int(t.utcoffset().total_seconds() // 3600)  # type: ignore[union-attr]
        name = t.tzname() if args.csv_zones == "abbreviation" else f"GMT{offset:+d}"
        stamp = f"{t:%Y/%m/%d} {t.hour % 12 or 12}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'} {name}"
        (rows if n < args.answers else late_rows).append(
            [stamp, rating, comment, f"Agent {agent}", ticket, token]
        )
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([*with_unreadable(rows, args.unreadable), *late_rows])


def seed_database(url: str, args: argparse.Namespace):
    engine = make_engine(normalize_database_url(url))
    create_schema(engine)
    rows = [
        {
            "helpdesk": "dryrun",
            "dialog_id": dialog,
            "occurrence": "",
            "agent_id": agent,
            "agent_name": f"Agent {agent}",
            "team": f"Team {int(agent) % 7}",
            "token": token,
            "status": "sent",
            "created_at": created,
            "sent_at": created,
        }
        for _, agent, token, created, *_, dialog in generate(
            args.agents, args.answers, args.unanswered
        )
    ]
    with engine.begin() as conn:
        store.insert_surveys(conn, rows)
        if args.erasures > 0:
            keyed, as_dialogs = erasure_rows(args.erasures, rows[0])
            conn.execute(sa.insert(erasures), keyed)
            if as_dialogs:
                conn.execute(sa.insert(erased_dialogs), as_dialogs)
    return engine


def erasure_rows(count: int, answered: dict) -> tuple[list[dict], list[dict]]:
    """``count`` erasures as ``csat-hook erase`` records them: the survey ``answered`` (its
    answer is in the sheet: stored without its comment), and ``count - 1`` of dialogs
    ("E-…") the benchmark has no survey of, every other one erased by survey (``erasures``:
    its survey key and dialog), the rest as dialogs (``erased_dialogs``, ``--dialog``)."""
    keyed = [
        {
            "survey_key": tokens.survey_key(answered["token"]),
            "dialog_id": answered["dialog_id"],
            "erased_at": NOW,
        }
    ]
    as_dialogs = []
    for i in range(1, count):
        dialog = f"E-{i}"
        if i % 2:
            ref = tokens.SurveyRef("dryrun", dialog, "1000", NOW, nonce=f"{i % 1679616:04x}")
            key = tokens.survey_key(tokens.sign(SECRET, ref))
            keyed.append({"survey_key": key, "dialog_id": dialog, "erased_at": NOW})
        else:
            as_dialogs.append({"helpdesk": "dryrun", "dialog_id": dialog, "erased_at": NOW})
    return keyed, as_dialogs


STEPS = StepClock()


def measure(
    label: str,
    runner: SyncRunner,
    url: str,
    fake_pid: int,
    *,
    trace: bool,
    steps: StepClock | None = None,
) -> dict:
    if steps is not None:
        steps.install()
        steps.take()
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
    rss_mb = peak_rss_mb()
    seen, fake_seconds = requests_by_kind(url)
    print(f"\n{label}: status {summary.status} {summary.error or ''}")
    failed_run(label, summary)
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
    if steps is not None:
        print("  CPU per step (process time around each step; wall beside it):")
        for name, step_cpu, step_wall in steps.take(cpu):
            beside = "" if step_wall is None else f"  (wall {step_wall:6.2f} s)"
            print(f"    {name:<58} {step_cpu:6.2f} s{beside}")
    return {
        "cpu": cpu,
        "wall": wall,
        "fake_cpu": fake_cpu,
        "rss_mb": rss_mb,
        "reads": seen.get("sheets_read", 0),
        "writes": seen.get("sheets_write", 0),
    }


def run_peer(fake: dict, fake_pid: int, label: str) -> dict | None:
    """The gspread + pandas script (benchmarks/peer_gspread_pandas.py) in its own process."""
    done, fake_cpu = run_peer_script(fake, fake_pid, "peer_gspread_pandas.py", SHEET, PEER_SHEET)
    if done.returncode != 0:
        print(f"\npeer ({label}) failed: {done.stderr.strip().splitlines()[-1:]}")
        return None
    result = json.loads(done.stdout.strip().splitlines()[-1])
    seen, fake_seconds = requests_by_kind(fake["url"])
    print(f"\npeer, gspread + pandas ({label}): {result['agents']} agent tabs")
    print(
        f"  PEER'S OWN TIME (CPU of its process, imports excluded) {result['cpu']:.2f} s; the "
        f"fake API's CPU {fake_cpu:.2f} s (handlers {fake_seconds:.2f} s); wall time "
        f"{result['wall']:.2f} s; peak RSS {result['rss_mb']:.0f} MB"
    )
    print(f"  requests: {budget(seen)}; by kind {seen}")
    return {
        "cpu": result["cpu"],
        "wall": result["wall"],
        "fake_cpu": fake_cpu,
        "rss_mb": result["rss_mb"],
        "reads": seen.get("sheets_read", 0),
        "writes": seen.get("sheets_write", 0),
    }


if __name__ == "__main__":
    main()
