"""``csat-hook sync``: one run, or periodic runs for a Procfile ``clock:`` process."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from typing import Any

import click
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from csat_hook.cli.base import ConfigProblem
from csat_hook.cli.base import Seconds
from csat_hook.cli.base import State
from csat_hook.cli.base import command_line
from csat_hook.cli.base import pass_state
from csat_hook.config import Config
from csat_hook.config import log_config_warnings
from csat_hook.db.engine import connect_failure
from csat_hook.db.engine import unavailable_cause
from csat_hook.errors import CsatHookError
from csat_hook.errors import SchemaError
from csat_hook.logs import printable_json
from csat_hook.sync.allocator import keep_large_blocks_mapped
from csat_hook.sync.runner import SyncRunner
from csat_hook.sync.runner import make_sync_engine

logger = logging.getLogger(__name__)

SYNC_EXIT_CODES = {"ok": 0, "failed": 1, "config_error": 2, "locked": 3, "data_error": 4}


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="Read and compute, but store nothing and write no output."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--full",
    is_flag=True,
    help="Read and parse every row again, whatever was remembered (the Forms API: every "
    "response, past the watermark, so a response deleted from the form is noticed), and "
    "build the report even if nothing changed.",
)
@click.option(
    "--periodic",
    is_flag=True,
    help="Run every sync.interval_seconds until stopped (Procfile clock: process).",
)
@click.option(
    "--interval",
    type=Seconds(1, 7 * 86400),
    help="Seconds between periodic runs [default: sync.interval_seconds].",
)
@click.option(
    "--keep-waiting",
    is_flag=True,
    hidden=True,
    help="Periodic: keep running when the results source is not there yet (serve's own "
    "sync child, which leaves the configuration's warnings to serve).",
)
@pass_state
def sync(
    state: State,
    dry_run: bool,
    as_json: bool,
    full: bool,
    periodic: bool,
    interval: float | None,
    keep_waiting: bool,
) -> None:
    """Ingest form answers, compute per-agent CSAT and write the reports.

    \b
    Exit codes:
      0 ok;
      1 failed (source, Google or database error);
      2 invalid configuration (a missing column title or tab, or the results file is
        missing; --periodic reports a missing tab every run and goes on);
      3 another sync holds the lock;
      4 data_error: one reason skipped more than results.max_skipped_share of the rows
        read (and at least results.min_skipped_rows); everything readable was stored and
        written, the message names the column, an example value and what to change, and
        the skipped rows are read again by the next run.
    """
    if interval is not None and not periodic:
        # Ran once and exited 0: a `clock:` line missing --periodic looked like it worked.
        raise click.UsageError("--interval is the time between periodic runs: add --periodic")
    config = state.config
    if periodic and not keep_waiting:
        # A long-running process (a Procfile clock:) says them once as it starts; serve's
        # child (--keep-waiting) leaves them to serve, which has said them.
        log_config_warnings(config)
    stop = _stop_on_signals() if periodic else None
    engine = _sync_engine(config, stop, interval or config.sync.interval_seconds)
    if engine is None:
        sys.exit(0)  # stopped (SIGTERM/SIGINT) while the database was still unreachable
    keep_large_blocks_mapped()  # the read's and the write's large buffers given back
    runner = SyncRunner(config, engine, waits_for_export=keep_waiting)
    try:
        code = _sync_loop(
            runner,
            config,
            dry_run=dry_run,
            full=full,
            as_json=as_json,
            periodic=periodic,
            interval=interval,
            keep_waiting=keep_waiting,
            stop=stop,
            rerun=command_line(state, "sync"),
        )
    finally:
        engine.dispose()
    sys.exit(code)


def _stop_on_signals() -> threading.Event:
    """An event SIGTERM/SIGINT set: a periodic sync finishes what it is doing and exits 0."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _sync_engine(config: Config, stop: threading.Event | None, every: float) -> Engine | None:
    """The sync's engine, the schema created. A periodic sync (``stop`` given) that cannot
    connect tries again every ``every`` seconds: a `clock:` process or serve's sync child
    (which serve never restarts) started while the database was down exited 1 and synced
    nothing until restarted by hand. None: stopped while waiting. One run exits 1 at once."""
    while True:
        try:
            return make_sync_engine(config)
        except SchemaError:
            raise  # not the configuration's fault: exit 1
        except CsatHookError as exc:
            raise ConfigProblem(exc.message) from None
        except DBAPIError as exc:
            if stop is None or connect_failure(exc) is None:
                raise
            # The driver's type only: its text is said by a run by hand (connect_failure).
            logger.error("sync.database-unavailable", extra={"error": unavailable_cause(exc)})
        if stop.wait(every):
            return None


def _sync_loop(
    runner: Any,
    config: Config,
    *,
    dry_run: bool,
    full: bool,
    as_json: bool,
    periodic: bool,
    interval: float | None,
    keep_waiting: bool = False,
    stop: threading.Event | None = None,
    rerun: str = "`csat-hook sync`",
) -> int:
    """One run (its exit code), or runs every interval until SIGTERM/SIGINT (then 0;
    ``stop``: the event those set, made here when not given)."""
    if not periodic:
        summary = runner.run(dry_run=dry_run, full=full)
        print_sync(summary, as_json)
        return SYNC_EXIT_CODES.get(summary.status, 1)
    if stop is None:
        stop = _stop_on_signals()
    every = interval or config.sync.interval_seconds
    while not stop.is_set():
        # Monotonic: the wall clock set back (NTP, an operator) during a run added that much
        # to the wait, and skipped the runs it covered.
        started = time.monotonic()
        summary = runner.run(dry_run=dry_run, full=full)
        if not (keep_waiting and summary.waiting_for):  # the runner says that once, calmly
            # This output is the process's log (serve's sync, a `clock:` process): no cell.
            print_sync(summary, as_json, examples=False, rerun=rerun)
        if summary.status == "config_error" and not keep_waiting and not summary.goes_on:
            return 2  # retrying cannot fix the configuration
        # A tab the spreadsheet lacks (goes_on) is said above every run: an editor may put it
        # back, and a clock: process that stopped on it stayed down until restarted by hand.
        elapsed = time.monotonic() - started
        stop.wait(max(1.0, every - elapsed))
    return 0


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "-"


def print_sync(
    summary: Any, as_json: bool, *, examples: bool = True, rerun: str = "`csat-hook sync`"
) -> None:
    """Print a run's summary. ``examples`` False: a data_error's example cell (the text a
    respondent typed) is left out, for output that is a log (periodic runs)."""
    data = summary.as_dict()
    if not examples:
        data["problems"] = [{**p, "example": None} for p in data.get("problems", [])]
    if as_json:
        click.echo(printable_json(data))
        return
    if summary.status not in ("ok", "data_error"):
        click.echo(f"sync {summary.status}: {summary.error}", err=True)
        return
    click.echo(
        f"sync {summary.status}"
        f"{' (dry run: nothing stored or written)' if summary.dry_run else ''}: "
        f"source {summary.source}, {summary.rows_read} rows read "
        f"({summary.blank_rows} blank, {summary.unchanged} unchanged), "
        f"{summary.new} new, {summary.updated} updated, "
        f"{data['unverified_total']} unverified ({_reasons(summary.unverified)}), "
        f"{data['skipped_total']} skipped ({_reasons(summary.skipped)})"
    )
    for row in summary.skipped_rows:
        click.echo(f"  skipped {row['row']}: {row['reason']} ({row['detail']})")
    if data["skipped_total"] > len(summary.skipped_rows):
        # Only the first rows are listed: the rest were counted and never named.
        click.echo(
            f"  ... and {data['skipped_total'] - len(summary.skipped_rows):,} more skipped rows "
            f"(the first {len(summary.skipped_rows)} are listed; the counts per reason above "
            "are of all of them)"
        )
    for row in summary.unverified_rows:
        click.echo(f"  unverified {row['row']}: {row['reason']} reference")
    if data["unverified_total"] > len(summary.unverified_rows):
        click.echo(
            f"  ... and {data['unverified_total'] - len(summary.unverified_rows):,} more "
            f"unverified rows (the first {len(summary.unverified_rows)} are listed here; the "
            "report's Unverified tab lists every one)"
        )
    if summary.reverified:
        click.echo(
            f"  {summary.reverified} answers kept as forged verify under the secrets now "
            "configured: credited, no longer unverified"
        )
    if summary.before_sent:
        first = summary.before_sent_first or {}
        click.echo(
            f"  {summary.before_sent} answers dated before their survey was sent (the first: "
            f"{first.get('row')}, {_span(first.get('minutes', 0))} before): credited in their "
            "survey's period; a clock, or a time zone setting (results.csv.timezone, the "
            "spreadsheet's), that is off dates them so"
        )
    for warning in summary.warnings:
        click.echo(f"  warning: {warning}")
    click.echo("requests: " + " ".join(f"{k}={v}" for k, v in summary.requests.items()))
    for output in summary.outputs:
        click.echo("output: " + ", ".join(f"{k}={v}" for k, v in output.items()))
    for problem in data.get("problems", []):
        _print_problem(problem, examples, rerun)


def _span(minutes: int) -> str:
    """``minutes`` as a person reads a span: ``7 min``, ``5 h``, ``3 h 30 min``, ``2 days``."""
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h" + (f" {rest} min" if rest else "")
    return f"{minutes // (24 * 60)} days"


def _print_problem(
    problem: dict[str, Any], examples: bool = True, rerun: str = "`csat-hook sync`"
) -> None:
    """A data_error, for the operator: the column, one example cell, why, what to change."""
    if problem.get("kind") == "unverified":
        click.echo(
            f"sync data_error: {problem['count']} of {problem['rows']} new rows stored as "
            f"unverified ({problem['reason']}): {problem['detail']}.\n  To fix: "
            f"{problem['fix']}.",
            err=True,
        )
        return
    among = "new rows" if problem["new_only"] else "rows read"
    if problem["example"]:
        example = f" e.g. {problem['example']!r}"
    elif not examples:
        # With the -c of this process (serve's sync, run with `-c x.yaml serve`): a bare
        # `csat-hook sync` read the built-in defaults.
        example = f" (run {rerun} by hand to see an example cell)"
    else:
        example = ""
    click.echo(
        f"sync data_error: {problem['count']} of {problem['rows']} {among} skipped as "
        f"{problem['reason']} in column {problem['column']!r} ({problem['setting']}),"
        f"{example}: {problem['detail']}.\n  To fix: {problem['fix']}. Nothing is lost: "
        "skipped rows are read again on the next run.",
        err=True,
    )
