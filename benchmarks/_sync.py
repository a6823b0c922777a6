"""What the sync and Forms API benchmarks share: the seeded surveys and answers (one
generator, one secret, one clock), the fake Google API's request log, CPU and peak RSS of a
process, the machine's description, the peer scripts' launcher, ``--runs`` (each run in a
fresh process) and the closing summary table (``Figure``, ``print_summary``)."""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

from csat_hook import tokens

SECRET = "benchmark-token-secret-0123456789"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# The sync's clock: after every answer (one comes up to 3,000 minutes after its survey, and
# the Forms benchmark's late and edited ones an hour or two after the latest). At NOW about
# 2,000 answers were dated after the run, over a day ahead for some 260 of them: skipped
# as implausible_timestamp since the twenty-fifth round, and a source with skipped rows is
# read whole again every run, which is not the run being measured.
SYNC_CLOCK = NOW + timedelta(days=4)
COMMENTS = [
    "Great, thanks!",
    "ok",
    "",
    "Took too long",
    "Спасибо, всё быстро",
    "",
    "=SUM(1;2)",
    "Solved on first contact",
    "meh",
    "",
]


LATE = 1000  # answers that arrive between the second and the third sync
# How the dialogs are numbered (BENCH_DIALOG_IDS, inherited by the benchmarks' child
# processes): "generated" (the default, every round's figures): D-n in the order generated,
# which is random against the time each dialog was closed, so the sheet's rows (in
# submission time) name survey keys in random order; "by-time": numbered in the order the
# dialogs were closed, as a helpdesk numbers them, so rows near in time name keys near in
# the indexes (a survey key begins with its helpdesk and dialog id).
DIALOG_ORDERS = ("generated", "by-time")
_dialog_numbers: dict[tuple[int, int, int], array[int]] = {}


def dialog_order() -> str:
    """BENCH_DIALOG_IDS, checked."""
    order = os.environ.get("BENCH_DIALOG_IDS", "generated")
    if order not in DIALOG_ORDERS:
        raise SystemExit(f"BENCH_DIALOG_IDS={order!r}: use one of {', '.join(DIALOG_ORDERS)}")
    return order


def _numbers(agents: int, answers: int, unanswered: int) -> array[int] | None:
    """Each survey's dialog number under BENCH_DIALOG_IDS=by-time (None: generated): its
    close's rank in time among every survey :func:`generate` makes (the same draws)."""
    if dialog_order() == "generated":
        return None
    shape = (agents, answers, unanswered)
    if shape not in _dialog_numbers:
        ago = array("q", (draw[2] for draw in _draws(agents, answers, unanswered)))
        numbers = array("q", bytes(8 * len(ago)))
        # The oldest close first (the most seconds ago); among one second's, in order made.
        for rank, n in enumerate(sorted(range(len(ago)), key=lambda i: (-ago[i], i))):
            numbers[n] = rank
        _dialog_numbers[shape] = numbers
    return _dialog_numbers[shape]


def _draws(agents: int, answers: int, unanswered: int) -> Iterator[tuple]:
    """The seeded draws of every survey :func:`generate` makes: (n, agent, seconds before NOW
    it was made, minutes until answered or None, rating, comment)."""
    rng = random.Random(42)
    for n in range(answers + LATE + unanswered):
        agent = str(1000 + rng.randrange(agents))
        ago = rng.randrange(120 * 86400)
        if n < answers + LATE:
            minutes = rng.randrange(5, 3000)
            rating = rng.choices([5, 4, 3, 2, 1], [45, 25, 12, 10, 8])[0]
            yield n, agent, ago, minutes, rating, rng.choice(COMMENTS)
        else:
            yield n, agent, ago, None, None, None


def generate(agents: int, answers: int, unanswered: int) -> Iterator[tuple]:
    """Deterministic surveys: (n, agent, token, created, answered_at or None, rating, comment,
    dialog id).

    The first ``answers`` are in the sheet from the start, the next LATE arrive later, the
    rest are never answered. The dialog id is the one the token signs, numbered as
    BENCH_DIALOG_IDS says (the benchmarks' ticket column and the surveys' dialog).
    """
    numbers = _numbers(agents, answers, unanswered)
    for n, agent, ago, minutes, rating, comment in _draws(agents, answers, unanswered):
        created = NOW - timedelta(seconds=ago)
        dialog = f"D-{numbers[n] if numbers is not None else n}"
        ref = tokens.SurveyRef("dryrun", dialog, agent, created, nonce=f"{n % 1679616:04x}")
        token = tokens.sign(SECRET, ref)
        submitted = None if minutes is None else created + timedelta(minutes=minutes)
        yield n, agent, token, created, submitted, rating, comment, dialog


# The responses sheet the sync benchmarks read: its columns, and the zone its serials are in.
SHEET_HEADER = ["Timestamp", "Rating", "Comment", "Agent", "Ticket", "Reference"]
SHEET_ZONE = "Europe/Moscow"


def sheet_rows(agents: int, answers: int, unanswered: int) -> tuple[list[list], list[list]]:
    """The responses sheet of :func:`generate`'s surveys: the header and a row per answer in
    it from the start, and the rows of the LATE answers a later run finds appended. The
    submission time is a datetime (the fake Google stores it as a serial)."""
    rows: list[list] = [list(SHEET_HEADER)]
    late: list[list] = []
    for n, agent, token, _, submitted, rating, comment, ticket in generate(
        agents, answers, unanswered
    ):
        if submitted is not None:
            (rows if n < answers else late).append(
                [submitted, rating, comment, f"Agent {agent}", ticket, token]
            )
    return rows, late


def requests_by_kind(url: str) -> tuple[dict[str, int], float]:
    """Requests the fake saw, by kind, and the seconds it spent answering them."""
    with urllib.request.urlopen(f"{url}/_fake/requests") as response:
        seen = json.load(response)
    return (dict(Counter(r["kind"] for r in seen)), sum(r.get("server_ms", 0) for r in seen) / 1000)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def failed_run(label: str, summary: Any) -> None:
    """Stop the benchmark when a measured sync did not end "ok": its time and memory measure a
    run that stopped partway (a report it could not write), not a sync, and the summary would
    have judged them against the targets all the same."""
    if summary.status != "ok":
        raise SystemExit(
            f"{label}: the sync ended {summary.status!r} ({summary.error or 'no error given'}); "
            "no figure of this benchmark measures a sync"
        )


def peak_rss_mb() -> float:
    """This process's peak RSS in MB (VmHWM: unlike ru_maxrss it does not carry over the
    parent's RSS across exec, so a run started by ``repeat`` counts its own memory only)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({model}), "
        f"Python {platform.python_version()}"
    )


def reset_requests(url: str) -> None:
    urllib.request.urlopen(urllib.request.Request(f"{url}/_fake/requests", method="DELETE"))


def run_peer_script(
    fake: dict, fake_pid: int, script: str, *args: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``script`` (beside this file) in its own process, given the fake's URL, a service
    account file and ``args``; returns the finished process and the fake's CPU meanwhile (the
    fake's request log is reset first)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as account:
        json.dump(fake["service_account"], account)
        account.flush()
        reset_requests(fake["url"])
        fake_cpu = cpu_seconds(fake_pid)
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name(script)),
                fake["url"],
                account.name,
                *args,
            ],
            capture_output=True,
            text=True,
        )
        return done, cpu_seconds(fake_pid) - fake_cpu


def repeat(count: int, once: Callable[[], dict], script: str, figures_out: str | None) -> list:
    """What ``once`` measured, for each of ``count`` runs.

    One run is ``once()`` in this process, as the benchmarks always ran. Several runs are
    each the whole script again in a fresh process (its own fake, database and peak RSS;
    nothing warmed by an earlier run), started with ``--run-figures FILE``: given that,
    this process is such a run and writes ``once()``'s figures to FILE as JSON (and returns
    no runs: the parent prints the summary)."""
    if figures_out:
        Path(figures_out).write_text(json.dumps(once()))
        return []
    if count <= 1:
        return [once()]
    results = []
    for i in range(count):
        print(f"\n=== run {i + 1} of {count} ===", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                [sys.executable, script, *sys.argv[1:], "--run-figures", out.name], check=True
            )
            results.append(json.loads(Path(out.name).read_text()))
    return results


Met = Callable[[float, float | None], bool | None]


@dataclass
class Figure:
    """One line of the closing summary: a figure measured once per run.

    ``values`` are ours and ``peer`` the peer's beside them (``None`` when the peer has no
    such figure), one per run, ``None`` where a run did not measure it (``--profile``, the
    peer failed). ``met(ours, peer's in the same run)`` says whether that run met
    ``target``: ``None`` when it cannot tell (e.g. "≤ peer" without the peer's figure).
    ``peer_met(peer's)`` marks the peer's figure when the same target applies to it.
    """

    label: str
    values: list[float | None]
    peer: list[float | None] | None = None
    target: str = ""
    met: Met | None = None
    unit: str = "s"
    digits: int = 2
    peer_met: Callable[[float], bool | None] | None = None


def below(limit: float) -> Met:
    """``met`` for "≤ limit"."""

    def met(value: float, _peer: float | None) -> bool:
        return value <= limit

    return met


def not_above_peer(value: float, peer_value: float | None) -> bool | None:
    """``met`` for "≤ the peer's figure in the same run"."""
    return None if peer_value is None else value <= peer_value


def _span(values: list[float | None], unit: str, digits: int) -> str:
    """min–max of the measured values (one value when they agree), with how many runs
    measured it when not all did."""
    seen = [v for v in values if v is not None]
    if not seen:
        return "–"
    low, high = f"{min(seen):,.{digits}f}", f"{max(seen):,.{digits}f}"
    text = low if low == high else f"{low}–{high}"
    text += f" {unit}" if unit else ""
    return text if len(seen) == len(values) else f"{text} ({len(seen)} of {len(values)} runs)"


def _verdict(marks: list[bool | None]) -> str:
    """✓ when every run met the target, ✗ when any did not, ? when some could not tell."""
    if any(m is False for m in marks):
        return "✗"
    return "✓" if marks and all(m is True for m in marks) else "?"


def print_summary(title: str, figures: list[Figure], notes: Sequence[str] = ()) -> None:
    """The table: per figure our range over the runs, the peer's beside it, the target and
    whether every run met it."""
    runs = max((len(f.values) for f in figures), default=0)
    ours = "ours" if runs == 1 else f"ours ({runs} runs)"
    header = ("figure", ours, "peer", "target", "every run")
    rows: list[tuple[str, ...]] = [header]
    for f in figures:
        peer = "" if f.peer is None else _span(f.peer, f.unit, f.digits)
        if f.peer is not None and f.peer_met is not None and any(p is not None for p in f.peer):
            peer += " " + _verdict([None if p is None else f.peer_met(p) for p in f.peer])
        verdict = ""
        if f.met is not None:
            peers = f.peer if f.peer is not None else [None] * len(f.values)
            verdict = _verdict(
                [None if v is None else f.met(v, p) for v, p in zip(f.values, peers, strict=True)]
            )
        rows.append((f.label, _span(f.values, f.unit, f.digits), peer, f.target or "–", verdict))
    if all(f.peer is None for f in figures):  # --no-peer: no column for it
        rows = [(label, value, target, met) for label, value, _, target, met in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n{title}")
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  " + "  ".join(cells).rstrip())
    for note in notes:
        print(f"  {note}")


class StepClock:
    """CPU (process time) and wall time spent in each coarse step of a sync, without a
    profiler: the steps' functions are wrapped where the sync looks them up, so the per-row
    functions run at full speed and only a few hundred step calls pay a clock read. A step
    nested in another is counted in both (``ingest part`` holds ``verify`` and ``store``).

    ``install()`` once, before the syncs; ``take()`` after each sync returns its steps and
    starts the next count."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = {}
        self.wall: dict[str, float] = {}
        self.names: list[str] = []  # in the order printed
        self.inside: set[str] = set()  # steps counted inside others (not added to the rest)
        self.installed = False

    def install(self) -> None:
        if self.installed:
            return
        self.installed = True
        from csat_hook.sync import alerts_step
        from csat_hook.sync import ingest
        from csat_hook.sync import report
        from csat_hook.sync import report_step
        from csat_hook.sync import runner
        from csat_hook.sync import summary
        from csat_hook.sync.google import session
        from csat_hook.sync.outputs import local
        from csat_hook.sync.outputs import sheets

        wrap = self._timed
        runner.read_source = wrap(
            "read: the source (requests, decoding, parsing)", runner.read_source
        )
        report_step.ReportStep._look_up = wrap(
            "ingest: look up each part's surveys and answers", report_step.ReportStep._look_up
        )
        report_step.ingest_submissions = wrap(
            "ingest: credit and store each part", report_step.ingest_submissions
        )
        ingest.check_reference = wrap(
            "  of which signed references checked", ingest.check_reference, inside=True
        )
        ingest._store_credited = wrap(
            "  of which answers stored", ingest._store_credited, inside=True
        )
        # Read when the context manager yields it: patched before the sync starts.
        summary._collect = wrap("ingest: cycle collection after each part", summary._collect)
        alerts_step.build_dataset = wrap(
            "report: every survey and answer read into the dataset", alerts_step.build_dataset
        )
        report_step.ReportStep._patched = wrap(
            "report: the kept dataset patched (changed rows read)", report_step.ReportStep._patched
        )
        report_step.build_report = wrap("report: metrics and tabs", report_step.build_report)
        # Inside build_report: each part where the report module looks it up.
        for attr, name in (
            ("compute", "  of which metrics (every period)"),
            ("build_leaderboard", "  of which the leaderboard"),
            ("build_summary", "  of which the Summary tab"),
            ("build_trends", "  of which the Trends tab"),
            ("build_responses", "  of which the Responses tab"),
            ("build_agent_tabs", "  of which the agent tabs"),
        ):
            setattr(report, attr, wrap(name, getattr(report, attr), inside=True))
        report.Newest.of = classmethod(  # type: ignore[method-assign]
            wrap("  of which answers sorted newest first", report.Newest.of.__func__, inside=True)
        )
        sheets.SheetsOutput.plan = wrap("write: tabs planned", sheets.SheetsOutput.plan)
        sheets.contents_digest = wrap("write: contents digest", sheets.contents_digest)
        summary.gc.collect = wrap(
            "cycle collection (gc.collect, all; in the rest)", summary.gc.collect, inside=True
        )
        sheets.SheetsOutput._encoded = wrap(
            "write: tabs encoded as JSON", sheets.SheetsOutput._encoded
        )
        # --output local: looked up in local's namespace by write_local.
        local.write_xlsx = wrap("write: the .xlsx workbook", local.write_xlsx)
        local.write_csv = wrap("write: the CSV files", local.write_csv)
        session.GoogleSession.request = wrap(
            "API requests, all (wall: with the fake's time)",
            session.GoogleSession.request,
            inside=True,  # the reads' in read:, the writes' in the rest
        )

    def _timed(self, name: str, function: Callable, *, inside: bool = False) -> Callable:
        self.names.append(name)
        if inside:
            self.inside.add(name)
        cpu, wall = self.cpu, self.wall
        clock, counter = time.process_time, time.perf_counter

        def timed(*args: object, **kwargs: object) -> object:
            started, wall_started = clock(), counter()
            try:
                return function(*args, **kwargs)
            finally:
                cpu[name] = cpu.get(name, 0.0) + clock() - started
                wall[name] = wall.get(name, 0.0) + counter() - wall_started

        return timed

    def take(self, total: float | None = None) -> list[tuple[str, float, float | None]]:
        """The steps since the last take, in a fixed order; with the sync's ``total`` CPU,
        a last line for what no step holds (the write's plan and digests, commits, the
        write requests, the run's own bookkeeping)."""
        steps: list[tuple[str, float, float | None]] = [
            (n, self.cpu[n], self.wall[n]) for n in self.names if n in self.cpu
        ]
        if total is not None:
            held = sum(c for n, c, _ in steps if n not in self.inside)
            steps.append(("rest (plan, digests, commits, write requests)", total - held, None))
        self.cpu.clear()
        self.wall.clear()
        return steps


def fake_started(child: subprocess.Popen[str]) -> dict:
    """The fake API's first line (its URL and credentials); a clear exit when the child died
    before writing it (its own error is above, e.g. the test extra not installed)."""
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line:
        child.wait(timeout=30)
        raise SystemExit(
            f"the fake Google API did not start (exit status {child.returncode}; its error is "
            "above). The benchmarks need the test and bench extras: "
            "pip install -e '.[test,bench]'"
        )
    started: dict = json.loads(line)
    return started
