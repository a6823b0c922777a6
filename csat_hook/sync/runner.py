"""One sync: lock, read the source, credit answers, compute metrics, write the outputs.

Phases and what a failure in each leaves behind:

1. **Lock** (a lease row, compare-and-set): a second run waits up to
   ``sync.lock_wait_seconds`` and then reports ``locked``; it never runs alongside.
2. **Read** the source (no transaction open: Google may be slow, webhooks must not wait).
3. **Ingest** in one transaction: answers, history, unverified and skipped rows, watermark,
   and the alerts the new or changed answers raise (with their queued deliveries: stored
   with the answers or not at all, so a re-run never alerts twice and a failed run alerts
   on its next try). All or nothing. ``--dry-run`` rolls it back (and says what it would
   have alerted).
4. **Report**: metrics and tables from the database as a whole (not just this batch), so an
   output that failed last time is complete again on the next run; not built when every
   output already holds the report of this run's key (:mod:`.report_key`).
5. **Outputs**: local files and/or Google Sheets (skipped in a dry run).

Rows the sync cannot read are recorded and read again on every read of the rows
(:mod:`.skips`; the same bytes under the same settings replay them, :mod:`.read_memo`); when one
reason skips a large share of the rows, the run still stores and writes everything it could,
then ends with ``data_error``.

:meth:`SyncRunner.run` never raises for an expected failure: the summary carries
``status`` (ok, data_error, failed, config_error, locked) and the error message. A results
export that is not there yet is a ``config_error``; for a runner that waits for it (serve's
periodic sync, ``waits_for_export``) it is a normal state: said once at INFO
(``sync.waiting``), not again while it lasts. Any other run (by hand, a ``clock:`` process)
ends on it with exit 2 and logs it as the config error it is. A tab the configuration
names and the spreadsheet lacks (:class:`~csat_hook.errors.SourceConfigError`) is a
``config_error`` too, marked ``goes_on``: a periodic sync reports it every run and goes on.

The run, its phases in order and its log lines are here; the steps' work is in
:mod:`.alerts_step`, :mod:`.report_step` and :mod:`.outputs_step` (mixed into
:class:`SyncRunner`).
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Callable
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from csat_hook import tokens
from csat_hook.alerts.engine import needs_dataset
from csat_hook.alerts.engine import raise_alerts
from csat_hook.clock import utcnow
from csat_hook.db.clock import shared_clock
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.errors import ConfigError
from csat_hook.errors import CsatHookError
from csat_hook.errors import ResultsMissingError
from csat_hook.errors import SourceConfigError
from csat_hook.errors import SyncLockedError
from csat_hook.sync import cache
from csat_hook.sync import read_memo
from csat_hook.sync import recredit
from csat_hook.sync import report_key
from csat_hook.sync import report_step
from csat_hook.sync import skips
from csat_hook.sync import store
from csat_hook.sync.config import SyncSettings
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.google import api as google_api
from csat_hook.sync.google import session as google
from csat_hook.sync.ingest import forget_gone_unverified
from csat_hook.sync.ingest import unverified_gone
from csat_hook.sync.lock import SyncLock
from csat_hook.sync.lock import holder_id
from csat_hook.sync.outputs_step import OutputsStep
from csat_hook.sync.read_step import SourceRead
from csat_hook.sync.read_step import read_source
from csat_hook.sync.report import Report
from csat_hook.sync.report_step import MAX_UNVERIFIED_LISTED
from csat_hook.sync.report_step import ReportStep
from csat_hook.sync.sources import build_source
from csat_hook.sync.sources.base import ResultsSource
from csat_hook.sync.summary import PhaseClock
from csat_hook.sync.summary import SyncSummary
from csat_hook.sync.summary import cyclic_gc_paused

logger = logging.getLogger(__name__)


def raised_at(exc: BaseException) -> str:
    """Where ``exc`` was raised in csat-hook's own code (``sync/runner.py:123``), for an
    error message that names the place and nothing of the data."""
    package = Path(__file__).resolve().parent.parent
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if path.is_relative_to(package):
            where = f"{path.relative_to(package).as_posix()}:{frame.lineno}"
    return where


class SyncRunner(ReportStep, OutputsStep):
    """Runs syncs for one configuration and database. ``google_sleep`` is for tests."""

    def __init__(
        self,
        config: SyncSettings,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        google_sleep: Callable[[float], None] = time.sleep,
        waits_for_export: bool = False,
    ) -> None:
        self.config = config
        # serve's periodic sync waits for the first export (sync.waiting, once, at INFO);
        # any other run ends on it, and says so as the config error it is then.
        self.waits_for_export = waits_for_export
        self.engine = engine
        # The sync lease it shares with other hosts' runs and `erase`, and the alerts it
        # queues for the workers, are compared by other processes: on PostgreSQL, the
        # database server's time (db/clock.py), as the web's and the workers'.
        self.clock = shared_clock(engine, clock)
        self.sleep = sleep
        self.google_sleep = google_sleep
        self._kept = None  # the last report's dataset, patched by the next (report_step)
        self._kept_rows = None  # the rows its answers' tabs were built with (report_step)
        self._encodings = None  # the last write's encodings of those rows (outputs_step)
        self._files = None  # the last local write's rows and their text (outputs_step)
        self.dataset_patched = False  # whether this run's report patched it
        self.lock = SyncLock(
            engine,
            clock=lambda: self.clock(),
            sleep=lambda s: self.sleep(s),
            lease_seconds=config.sync.lock_lease_seconds,
            wait_seconds=config.sync.lock_wait_seconds,
        )
        self._waiting_said: str | None = None  # the missing export already reported

    # --- the run ---------------------------------------------------------------------------

    def run(self, *, dry_run: bool = False, full: bool = False) -> SyncSummary:
        """One sync; the summary says how it went (it is also logged)."""
        with cyclic_gc_paused():
            return self._run_logged(dry_run=dry_run, full=full)

    def _run_logged(self, *, dry_run: bool, full: bool) -> SyncSummary:
        started = time.monotonic()
        summary = SyncSummary(dry_run=dry_run, source=self.config.results.source)
        log = google.RequestLog()
        holder = holder_id()
        locked = False
        try:
            if not dry_run:
                self.lock.acquire(holder)
                locked = True
            with self.lock.kept(holder) if locked else contextlib.nullcontext():
                self._run(summary, log, holder if locked else None, dry_run=dry_run, full=full)
        except SyncLockedError as exc:
            summary.status = "locked"
            summary.error = f"{exc.message}: nothing was done, the running sync does the work"
        except ResultsMissingError as exc:
            summary.status, summary.error = "config_error", exc.message
            summary.waiting_for = exc.path
        except ConfigError as exc:
            summary.status, summary.error = "config_error", exc.message
            summary.goes_on = isinstance(exc, SourceConfigError)
        except CsatHookError as exc:
            summary.status, summary.error = "failed", exc.message
        except DBAPIError as exc:
            summary.status = "failed"
            summary.error = f"database error ({type(exc.orig).__name__})"
        except Exception as exc:
            # A bug: what a source, Google or the database can answer has its status above.
            # The run fails visibly (its transaction rolled back, the lock released, exit 1)
            # and a periodic sync tries again at its next interval instead of dying. The
            # type and the line only: an exception's text may quote a cell or a comment.
            summary.status = "failed"
            summary.error = f"internal error ({type(exc).__name__} at {raised_at(exc)})"
        finally:
            if locked:
                self.lock.release(holder)
            summary.requests = log.as_dict()
            summary.duration_ms = int((time.monotonic() - started) * 1000)
        extra: dict[str, Any] = {
            "status": summary.status,
            "rows": summary.rows_read,
            "count": summary.new + summary.updated,
            "requests": sum(summary.requests.values()),
            "duration_ms": summary.duration_ms,
        }
        if summary.error:
            extra["error"] = summary.error
        if summary.waiting_for is not None and self.waits_for_export:
            self._say_waiting(summary.waiting_for)
            return summary
        self._waiting_said = None
        # A held lock is expected (runs overlapping under cron, a sync by hand beside
        # serve's): a warning, never an ERROR that log alerting would page someone for.
        level = {"ok": logging.INFO, "data_error": logging.WARNING, "locked": logging.WARNING}.get(
            summary.status, logging.ERROR
        )
        logger.log(level, "sync.done", extra=extra)
        return summary

    def _say_waiting(self, path: str) -> None:
        """Once per wait: before the first download there is simply nothing to read."""
        said_before = self._waiting_said == path
        self._waiting_said = path
        logger.log(
            logging.DEBUG if said_before else logging.INFO,
            "sync.waiting",
            extra={
                "path": path,
                "reason": f"no results export yet at {path}; waiting for it (copy a Forms "
                "'Download responses (.csv)' there)",
            },
        )

    def _run(
        self,
        summary: SyncSummary,
        log: google.RequestLog,
        holder: str | None,
        *,
        dry_run: bool,
        full: bool,
    ) -> None:
        clock = PhaseClock(summary.phases_ms)
        sheets, forms = self._google_clients(log)
        source = build_source(self.config, sheets=sheets, forms=forms)
        read = read_source(self.engine, self.config, source, full=full, now=self.clock())
        summary.read = read.how
        clock.lap("read")
        self.lock.renew(holder)
        report, keys = self._ingest_and_report(
            summary, source, read, sheets, holder, dry_run=dry_run, full=full, clock=clock
        )
        del read  # every submission read; not needed while the report is written
        self.lock.renew(holder)
        if report is not None:
            summary.outputs = self._write_outputs(
                report, sheets, source, dry_run=dry_run, keys=keys, agents=summary.agents
            )
            summary.warnings.extend(_listed_fewer(summary.outputs, report.listed))
            summary.warnings.extend(_texts_cut(summary.outputs))
        clock.lap("write")

    def _ingest_and_report(
        self,
        summary: SyncSummary,
        source: ResultsSource,
        read: SourceRead,
        sheets: google_api.SheetsApi | None,
        holder: str | None,
        *,
        dry_run: bool,
        full: bool,
        clock: PhaseClock,
    ) -> tuple[Report | None, dict[str, str]]:
        """Ingest the batch; then the report, or None when every output already holds it
        (``summary.outputs`` then says so), and the report's key per output. The batch is
        committed only while ``holder`` still holds the lease (checked in its transaction)."""
        batch, skipped = read.batch, read.skipped
        config = self.config
        now = self.clock()
        data: Dataset | None = None
        # Nothing to credit and no alert rule reading every answer: the surveys and answers
        # are read only if the report has to be built (_read_back), often not at all.
        whole = config.alerts.active and needs_dataset(config.alerts)
        deferred = not batch.submissions and not whole
        # Answers to credit: looked up a part at a time, and the report reads everything
        # after the commit (on SQLite the write transaction holds every other writer, the
        # webhooks included, for as long as it lasts; on PostgreSQL a read inside it gets no
        # data version, its own writes move it, and is read again; and every survey and
        # answer held at once was a first sync's peak of memory).
        looked_up = (
            not deferred
            and not whole
            and not dry_run  # rolled back: a report read after it would miss the batch
            and report_step.LOOKED_UP_MAX > 0  # 0: tests compare the whole read
        )
        known = read.known
        # No digest stored before the read, none stale: a first sync makes no set of every
        # row's digest (and its row digests go as soon as they are stored).
        prune = known is not None and batch.complete and bool(known.raw or known.raw_orphans)
        with self.engine.connect() as conn:
            transaction = conn.begin()
            try:
                # First: the data read below is at least as new as this (report_key.py).
                first_version = report_key.read_version(conn)
                # First too: the batch is then credited against, and the report reads, the
                # forged answers that a secret added since verifies (reverify.py).
                # Not those a read of every row no longer has: forgotten after the ingest.
                absent = (
                    unverified_gone(conn, batch, source.identity)
                    if read.how == "read" and read.every_row
                    else set()
                )
                reverified, changed_before, again = self._reverify(conn, now, absent)
                # Planned by the read, before those were credited: one that outranks the
                # row a plan credits again is the row to credit.
                recredits = recredit.overtaken(conn, read.recredits, again)
                surveys: list[Any] = []
                answers: list[Any] = []
                if looked_up:
                    result, changed = self._ingest(
                        conn,
                        batch,
                        source.key,
                        now,
                        keep_digests=prune,
                        recredits=recredits,
                        retimes=read.retimes,
                        whole_read=read.every_row,
                        appended=read.how == "appended",
                        origin=source.identity,
                    )
                else:
                    current: dict[str, Any] = {}
                    if not deferred:
                        surveys, current = self._read_back(conn)
                    by_key = {tokens.survey_key(row.token): row for row in surveys}
                    result, changed = self._ingest(
                        conn,
                        batch,
                        source.key,
                        now,
                        read_back=(by_key, current),
                        keep_digests=prune,
                        recredits=recredits,
                        retimes=read.retimes,
                        whole_read=read.every_row,
                        appended=read.how == "appended",
                        origin=source.identity,
                    )
                    # One read of the answers: the batch's new and replaced ones merged in
                    # memory.
                    current.update((row.survey_key, row) for row in result.answers)
                    answers = list(current.values())
                    del current, by_key
                if read.how == "read" and read.every_row:
                    # A read of every row of a sheet or export, or of every response of a
                    # form (no filter), not emptied nor cut (Places.whole): unverified rows
                    # no longer in it go, as a first read lists none.
                    forget_gone_unverified(conn, batch, source.identity)
                skips.record_rereads(conn, batch, skipped, source.identity)
                if read.no_legacy:
                    store.note_no_legacy(conn, now)
                if read.memo is not None or (read.every_row and batch.complete):
                    # Without keys: every response of a form listed (no bytes to key, nothing
                    # to replay), how many it found, for the warning of an emptying
                    # (hold_emptied).
                    read_memo.record(
                        conn,
                        source.key,
                        read.memo,
                        batch,
                        now,
                        max_share=config.results.max_skipped_share,
                        min_rows=config.results.min_skipped_rows,
                    )
                if batch.remember is not None:
                    read_memo.remember(conn, source.key, batch.remember, now)
                if prune:
                    assert known is not None
                    seen = batch.raw_seen.keys() | {digest for digest, _ in batch.raw_digests}
                    cache.prune_row_digests(conn, known.raw, known.raw_orphans, seen)
                if config.alerts.active and needs_dataset(config.alerts):
                    data = self._dataset(answers, surveys)
                # Rules or none: alerts queued under an earlier configuration that this one
                # would not raise are withdrawn (alerts/recheck.py).
                outcome = raise_alerts(
                    conn, config.alerts, self._alert_inputs(changed_before + changed, data, now)
                )
                if config.alerts.active or outcome.cancelled:
                    summary.alerts = outcome.as_dict()
                if outcome.too_old:
                    summary.warnings.append(_too_old_warning(outcome.too_old, config.alerts))
                del changed, changed_before
                unverified = store.list_unverified(conn, MAX_UNVERIFIED_LISTED)
                summary.totals = {
                    "answers": store.count_answers(conn) if deferred or looked_up else len(answers),
                    "unverified": store.count_by(conn, "unverified_answers"),
                    "skipped": store.count_by(conn, "sync_skipped_rows"),
                }
                version = report_key.settled(conn, first_version)
                # Last, in this transaction: a lease lost during the ingest stores nothing.
                self.lock.renew_in(conn, holder)
            except BaseException:
                transaction.rollback()
                raise
            if dry_run:
                transaction.rollback()
            else:
                transaction.commit()
        summary.absorb(batch, result)
        summary.reverified = reverified.new + reverified.updated + reverified.history_only
        self._judge_skips(summary, batch, skipped, result.unverified_in_a_row)
        # Stored, counted and judged: the batch's rows (and the response they reference) and
        # the database rows go before the report is built, the run's peak of memory.
        batch.submissions.clear()
        batch.raw_digests.clear()
        batch.raw_seen.clear()
        batch.found.clear()
        read.known = known = None  # every processed identity and row digest: not needed now
        del result
        clock.lap("ingest")
        language = self._language(sheets, source)
        keys = (
            {} if dry_run else self._keys(version, now, language, sheets, source, summary.warnings)
        )
        if not (dry_run or full) and self._all_unchanged(summary, keys, sheets, source):
            clock.lap("report")
            return None, keys
        # Read again after the commit (and after any Alerts-tab edits were taken: _keys),
        # with a version that covers both: when the ingest read nothing or only looked rows
        # up, and on PostgreSQL when its own writes left it no version (report_key.settled),
        # so that the next run with nothing new skips instead of building once more.
        pg_unversioned = version is None and data is None and self.engine.name == "postgresql"
        if deferred or looked_up or (pg_unversioned and not dry_run):
            del answers, surveys  # the ingest's read, if any: superseded
            if full:
                self._kept = self._kept_rows = None  # --full: the dataset from every row too
            data, unverified, version = self._read_for_report()
            keys = self._report_keys(None if dry_run else version, now, language)
        else:
            if data is None:
                data = self._dataset(answers, surveys)
            del answers, surveys
        report = self._report(summary, data, unverified, now, language)
        summary.report = "built"
        clock.lap("report")
        return report, keys


def make_sync_engine(config: SyncSettings) -> Engine:
    """The database engine with the schema created (sync tables included)."""
    engine = make_engine(config.database.url, pool_size=config.database.pool_size)
    try:
        create_schema(engine)
    except BaseException:
        engine.dispose()  # the caller never gets it: close its connection now
        raise
    return engine


def _texts_cut(outputs: list[dict[str, Any]]) -> list[str]:
    """The run's warning when the Sheets report shows its longest texts cut (``texts_cut``:
    its values did not fit Google's requests otherwise)."""
    warnings = []
    for output in outputs:
        cut = output.get("texts_cut")
        if cut:
            warnings.append(
                f"the Google Sheets report shows long texts (comments) cut to "
                f"{cut['characters']:,} characters in {cut['cells']:,} cells, an ellipsis "
                "marking each cut: whole, they do not fit two requests of "
                "output.gsheets.max_request_bytes. The database and the local files keep "
                "every text whole"
            )
    return warnings


def _listed_fewer(outputs: list[dict[str, Any]], asked: tuple[int, int]) -> list[str]:
    """The run's warning when the Sheets report listed fewer answers than its limits ask
    (``rows_listed``: its values did not fit Google's requests otherwise)."""
    warnings = []
    for output in outputs:
        listed = output.get("rows_listed")
        if listed:
            # Only the lists that list fewer than their limit (a list that fits says it).
            cut = [
                f"the newest {listed['per_agent']:,} answers on each agent's tab"
                if listed["per_agent"] < asked[1]
                else "",
                f"the newest {listed['responses']:,} answers on the Responses tab"
                if listed["responses"] < asked[0]
                else "",
            ]
            warnings.append(
                f"the Google Sheets report lists {' and '.join(c for c in cut if c)} "
                f"(output.gsheets.max_rows_per_agent {asked[1]:,}, max_response_rows "
                f"{asked[0]:,}): more do not fit two requests of "
                "output.gsheets.max_request_bytes; every figure counts every answer, and the "
                "local files list them all. Set the limits to the numbers listed to spare every "
                "run building and encoding the longer lists first"
            )
    return warnings


def _too_old_warning(too_old: Mapping[str, int], alerts: Any) -> str:
    """Said when answers a rule matched were not alerted for their age (``too_old``: by
    rule): read more than ``alerts.max_age_hours`` after they were submitted (an export
    downloaded late), or dated hours early (a clock or a zone setting off)."""
    counted = ", ".join(f"{n} by {rule}" for rule, n in sorted(too_old.items()))
    return (
        f"answers matched by alert rules not alerted ({counted}): submitted more than "
        f"alerts.max_age_hours ({alerts.max_age_hours:g}) before this run read them (an "
        "export read late, or dated hours early by a clock or a time zone setting)"
    )
