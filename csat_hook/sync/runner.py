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
   output that failed last time is complete again on the next run.
5. **Outputs**: local files and/or Google Sheets (skipped in a dry run).

Rows the sync cannot read are recorded and read again on every run (:mod:`.skips`); when one
reason skips a large share of the rows, the run still stores and writes everything it could,
then ends with ``data_error``.

:meth:`SyncRunner.run` never raises for an expected failure: the summary carries
``status`` (ok, data_error, failed, config_error, locked) and the error message. A results
export that is not there yet is a normal state: said once at INFO (``sync.waiting``), not
again while it lasts, and the run is a ``config_error`` (exit 2 for a run by hand).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from csat_hook import tokens
from csat_hook.alerts import store as alerts_store
from csat_hook.alerts.engine import Changed
from csat_hook.alerts.engine import Inputs
from csat_hook.alerts.engine import Scale
from csat_hook.alerts.engine import needs_dataset
from csat_hook.alerts.engine import raise_alerts
from csat_hook.alerts.report import alerts_table
from csat_hook.alerts.report import handled_cells
from csat_hook.alerts.report import written_handled
from csat_hook.clicks.funnel import opened_survey_keys
from csat_hook.clicks.store import click_facts
from csat_hook.clock import utcnow
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.errors import ConfigError
from csat_hook.errors import CsatHookError
from csat_hook.errors import ResultsMissingError
from csat_hook.errors import SyncLockedError
from csat_hook.sync import cache
from csat_hook.sync import skips
from csat_hook.sync import store
from csat_hook.sync.config import SyncSettings
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.dataset import build_dataset
from csat_hook.sync.google import api as google_api
from csat_hook.sync.google import session as google
from csat_hook.sync.ingest import IngestResult
from csat_hook.sync.ingest import ingest
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Table
from csat_hook.sync.lock import SyncLock
from csat_hook.sync.lock import holder_id
from csat_hook.sync.metrics import Settings
from csat_hook.sync.outputs.local import write_local
from csat_hook.sync.outputs.sheets import SheetsOutput
from csat_hook.sync.periods import build_periods
from csat_hook.sync.records import KnownRows
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.report import Report
from csat_hook.sync.report import ReportSpec
from csat_hook.sync.report import build_report
from csat_hook.sync.report.alerts import ALERTS_CSV
from csat_hook.sync.report.alerts import alerts_grid
from csat_hook.sync.sources import build_source
from csat_hook.sync.sources.base import ResultsSource
from csat_hook.sync.summary import PhaseClock
from csat_hook.sync.summary import SyncSummary
from csat_hook.sync.summary import cyclic_gc_paused

logger = logging.getLogger(__name__)

MAX_UNVERIFIED_LISTED = 5000


class SyncRunner:
    """Runs syncs for one configuration and database. ``google_sleep`` is for tests."""

    def __init__(
        self,
        config: SyncSettings,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = utcnow,
        sleep: Callable[[float], None] = time.sleep,
        google_sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.engine = engine
        self.clock = clock
        self.sleep = sleep
        self.google_sleep = google_sleep
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
            self._run(summary, log, holder if locked else None, dry_run=dry_run, full=full)
        except SyncLockedError as exc:
            summary.status, summary.error = "locked", exc.message
        except ResultsMissingError as exc:
            summary.status, summary.error = "config_error", exc.message
            summary.waiting_for = exc.path
        except ConfigError as exc:
            summary.status, summary.error = "config_error", exc.message
        except CsatHookError as exc:
            summary.status, summary.error = "failed", exc.message
        except DBAPIError as exc:
            summary.status = "failed"
            summary.error = f"database error ({type(exc.orig).__name__})"
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
        if summary.waiting_for is not None:
            self._say_waiting(summary.waiting_for)
            return summary
        self._waiting_said = None
        level = {"ok": logging.INFO, "data_error": logging.WARNING}.get(
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
        with self.engine.connect() as conn:
            skipped = skips.skipped_reasons(conn)
            # Skipped rows are read again: they are not among the processed ones.
            known = KnownRows(store.known_fingerprints(conn), skipped)
            known.raw = cache.known_row_digests(conn, known)
            watermark = None if full else store.get_watermark(conn, source.key)
        batch = source.fetch(known, watermark)
        clock.lap("read")
        self.lock.renew(holder)
        report = self._ingest_and_report(
            summary, source, batch, skipped, sheets, dry_run=dry_run, clock=clock
        )
        del batch  # every submission read; not needed while the report is written
        self.lock.renew(holder)
        summary.outputs = self._write_outputs(report, sheets, source, dry_run=dry_run)
        clock.lap("write")

    def _ingest_and_report(
        self,
        summary: SyncSummary,
        source: ResultsSource,
        batch: SourceBatch,
        skipped: dict[str, str],
        sheets: google_api.SheetsApi | None,
        *,
        dry_run: bool,
        clock: PhaseClock,
    ) -> Report:
        config = self.config
        now = self.clock()
        data: Dataset | None = None
        with self.engine.connect() as conn:
            transaction = conn.begin()
            try:
                surveys = store.survey_facts(conn)
                # The funnel's middle step: surveys a person opened through a short link.
                self._opened = opened_survey_keys(
                    click_facts(conn), config.survey.links.burst_seconds
                )
                by_key = {tokens.survey_key(row.token): row for row in surveys}
                current = {row.survey_key: row for row in store.all_answers(conn)}
                result = ingest(
                    conn,
                    batch,
                    source_key=source.key,
                    secrets=config.token.all_secrets(),
                    agents={name: options.agents for name, options in config.helpdesks.items()},
                    surveys=by_key,
                    answers=current,
                    now=now,
                )
                skips.record_rereads(conn, batch, skipped)
                changed = self._changed(result, current, by_key)
                # One read of the answers: the batch's new and replaced ones merged in memory.
                current.update((row.survey_key, row) for row in result.answers)
                answers = list(current.values())
                del current
                if config.alerts.active:
                    if needs_dataset(config.alerts):
                        data = self._dataset(answers, surveys)
                    summary.alerts = raise_alerts(
                        conn, config.alerts, self._alert_inputs(changed, data, now)
                    ).as_dict()
                unverified = store.list_unverified(conn, MAX_UNVERIFIED_LISTED)
                summary.totals = {
                    "answers": len(answers),
                    "unverified": store.count_by(conn, "unverified_answers"),
                    "skipped": store.count_by(conn, "sync_skipped_rows"),
                }
            except BaseException:
                transaction.rollback()
                raise
            if dry_run:
                transaction.rollback()
            else:
                transaction.commit()
        summary.absorb(batch, result)
        self._judge_skips(summary, batch, skipped)
        clock.lap("ingest")
        language = self._language(sheets, source)
        report = self._report(summary, answers, surveys, unverified, now, language, data)
        clock.lap("report")
        return report

    # --- alerts ----------------------------------------------------------------------------

    def _changed(
        self, result: IngestResult, current: dict[str, Any], by_key: dict[str, Any]
    ) -> list[Changed]:
        """The answers this run added or replaced, as the alert rules read them (with the
        rating they replaced, the survey's team and the agent's recorded name)."""
        if not self.config.alerts.rules:
            return []
        found = []
        for row in result.answers:
            before = current.get(row.survey_key)
            survey = by_key.get(row.survey_key)
            static = getattr(self.config.helpdesks.get(row.helpdesk), "agents", {})
            found.append(
                Changed(
                    survey_key=row.survey_key,
                    # No survey row (sent by another installation): no reply context either.
                    token=survey.token if survey is not None else "",
                    helpdesk=row.helpdesk,
                    dialog_id=row.dialog_id,
                    agent_key=row.agent_key,
                    rating=row.rating,
                    comment=row.comment,
                    submitted_at=row.submitted_at,
                    previous_rating=before.rating if before is not None else None,
                    nps=getattr(row, "nps", None),
                    team=survey.team if survey is not None else None,
                    agent_name=(survey.agent_name if survey is not None else None)
                    or getattr(static.get(row.agent_key), "name", None),
                )
            )
        return found

    def _alert_inputs(self, changed: list[Changed], data: Dataset | None, now: datetime) -> Inputs:
        metrics = self.config.metrics
        return Inputs(
            changed=changed,
            data=data,
            scale=Scale(metrics.scale_min, metrics.scale_max, metrics.top_box),
            tz=ZoneInfo(metrics.timezone),
            helpdesks=self.config.helpdesks,
            now=now,
        )

    def _dataset(self, answers: list[Any], surveys: list[Any]) -> Dataset:
        config = self.config
        return build_dataset(
            answers,
            surveys,
            secrets=config.token.all_secrets(),
            helpdesks=config.helpdesks,
            opened=getattr(self, "_opened", frozenset()),
        )

    def _alerts_table(self) -> tuple[Grid, Table] | None:
        """The Alerts tab as the database holds it (None when the tab is off), and its CSV."""
        alerts = self.config.alerts
        if alerts.tab is None or not alerts.active:
            return None
        with self.engine.connect() as conn:
            rows = alerts_table(
                conn, limit=alerts.tab_rows, tz=ZoneInfo(self.config.metrics.timezone)
            )
        return alerts_grid(alerts.tab, rows)

    def _merge_handled(self, output: SheetsOutput) -> int:
        """Read the Alerts tab's "Handled" column back (one read, only when the tab exists)
        and keep the team's edits in the database before the tab is rewritten."""
        title = self.config.alerts.tab
        if title is None:
            return 0
        tabs = output.api.metadata(output.spreadsheet_id).get("sheets", [])
        existing = [
            s.get("properties", {}).get("title")
            for s in tabs
            if str(s.get("properties", {}).get("title", "")).casefold() == title.casefold()
        ]
        if not existing:
            return 0
        values = output.api.read_tab(output.spreadsheet_id, existing[0])
        cells = handled_cells(values)
        if not cells:
            return 0
        with self.engine.begin() as conn:
            return alerts_store.merge_sheet_handled(conn, cells, self.clock())

    def _judge_skips(
        self, summary: SyncSummary, batch: SourceBatch, skipped: dict[str, str]
    ) -> None:
        results = self.config.results
        problems = skips.judge(
            batch,
            skipped,
            max_share=results.max_skipped_share,
            min_rows=results.min_skipped_rows,
        )
        if problems:
            summary.status = "data_error"
            summary.error = "; ".join(p.message() for p in problems)
            summary.problems = [p.as_dict() for p in problems]

    def _report(
        self,
        summary: SyncSummary,
        answers: list[Any],
        surveys: list[Any],
        unverified: list[Any],
        now: datetime,
        language: str,
        data: Dataset | None = None,
    ) -> Report:
        config = self.config
        metrics = config.metrics
        tz = ZoneInfo(metrics.timezone)
        if data is None:
            data = self._dataset(answers, surveys)
        summary.agents = len({a.agent for a in data.answers})
        sheets = config.output.gsheets
        spec = ReportSpec(
            language=language,
            settings=Settings(metrics.scale_min, metrics.scale_max, metrics.top_box, metrics.min_n),
            tz=tz,
            listed=build_periods(now, tz, metrics.periods),
            headline_days=metrics.headline_days,
            trend_weeks=metrics.trend_weeks,
            trend_months=metrics.trend_months,
            target=metrics.target_csat,
            low_rating=metrics.low_rating_limit,
            nps=config.results.nps_configured,
            funnel=config.survey.links.enabled or bool(getattr(self, "_opened", None)),
            templates={
                name: options.ticket_url_template for name, options in config.helpdesks.items()
            },
            max_rows_per_agent=sheets.max_rows_per_agent,
            max_response_rows=sheets.max_response_rows,
            summary_name=sheets.summary_tab,
            unverified_name=sheets.unverified_tab,
            unverified=sheets.unverified,
        )
        report = build_report(data, spec, now=now, unverified=unverified)
        self._attach_alerts(report)
        return report

    def _attach_alerts(self, report: Report) -> None:
        """Put the Alerts tab (and ``alerts.csv``) in the report, as the database holds it."""
        alerts = self._alerts_table()
        report.csv = [t for t in report.csv if t.csv_name != ALERTS_CSV]
        if alerts is None:
            report.alerts = None
            return
        grid, table = alerts
        report.alerts = grid
        report.csv.append(table)

    def _language(self, sheets: google_api.SheetsApi | None, source: ResultsSource) -> str:
        """``output.language``; for auto, the Sheets output's locale (ru* → Russian) when that
        output is on (its metadata is read anyway: one request, cached), else English."""
        output = self.config.output
        if output.language != "auto":
            return output.language
        if output.gsheets.enabled and sheets is not None:
            return self._sheets_output(sheets, source).language()
        return "en"

    # --- outputs ---------------------------------------------------------------------------

    def _write_outputs(
        self,
        report: Report,
        sheets: google_api.SheetsApi | None,
        source: ResultsSource,
        *,
        dry_run: bool,
    ) -> list[dict[str, Any]]:
        config = self.config
        done: list[dict[str, Any]] = []
        output = None
        if config.output.gsheets.enabled and sheets is not None:
            output = self._sheets_output(sheets, source)
            # The team's edits first, so every output shows them.
            if not dry_run and report.alerts is not None and self._merge_handled(output):
                self._attach_alerts(report)
        if config.output.local.enabled:
            local = config.output.local
            if dry_run:
                done.append({"kind": "local", "dir": local.dir, "written": False})
            else:
                done.append(
                    write_local(report, Path(local.dir), xlsx=local.xlsx, csv_files=local.csv)
                )
        if output is not None:
            if dry_run:
                plan = output.plan(report.sheets(), report.language)
                done.append(
                    {
                        "kind": "gsheets",
                        "spreadsheet_id": output.spreadsheet_id,
                        "tabs": len(plan.tabs),
                        "tabs_created": sum(not p.exists for p in plan.tabs),
                        "structure_requests": len(plan.requests),
                        "written": False,
                    }
                )
            else:
                done.append(self._write_sheets(output, report))
                if report.alerts is not None:
                    with self.engine.begin() as conn:
                        alerts_store.mark_written(conn, written_handled(report.alerts.rows))
        return done

    def _write_sheets(self, output: SheetsOutput, report: Report) -> dict[str, Any]:
        """Write the report unless the spreadsheet already holds exactly it (as this
        database last wrote it); remember what was written."""
        key = f"gsheets:{output.spreadsheet_id}"
        with self.engine.connect() as conn:
            last = cache.output_digest(conn, key)
        done = output.write(report.sheets(), report.language, last_written=last)
        digest = done.pop("digest")
        if digest != last:
            with self.engine.begin() as conn:
                cache.set_output_digest(conn, key, digest, self.clock())
        return done

    def _sheets_output(self, sheets: google_api.SheetsApi, source: ResultsSource) -> SheetsOutput:
        config = self.config
        results_id = config.results.gsheets.spreadsheet_id
        spreadsheet_id = config.output.gsheets.spreadsheet_id or results_id
        assert spreadsheet_id is not None  # checked by the config model
        protected: set[int] = set()
        if spreadsheet_id == results_id:
            tab_id = getattr(source, "tab_id", None)
            for candidate in (tab_id, config.results.gsheets.sheet_gid):
                if candidate is not None:
                    protected.add(int(candidate))
        return SheetsOutput(
            sheets,
            spreadsheet_id,
            protected=protected,
            max_request_bytes=config.output.gsheets.max_request_bytes,
        )

    def _google_clients(
        self, log: google.RequestLog
    ) -> tuple[google_api.SheetsApi | None, google_api.FormsApi | None]:
        config = self.config
        scopes = []
        if config.output.gsheets.enabled:
            scopes.append(google.SHEETS_SCOPE)
        elif config.results.source == "gsheets":
            scopes.append(google.SHEETS_READONLY_SCOPE)
        if config.results.source == "forms_api":
            scopes.append(google.FORMS_RESPONSES_SCOPE)
        if not scopes:
            return None, None
        session = google.build_session(config.google, scopes, log=log, sleep=self.google_sleep)
        needs_sheets = config.output.gsheets.enabled or config.results.source == "gsheets"
        sheets = google_api.SheetsApi(session) if needs_sheets else None
        forms = google_api.FormsApi(session) if config.results.source == "forms_api" else None
        return sheets, forms


def make_sync_engine(config: SyncSettings) -> Engine:
    """The database engine with the schema created (sync tables included)."""
    engine = make_engine(config.database.url, pool_size=config.database.pool_size)
    create_schema(engine)
    return engine
