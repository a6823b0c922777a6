"""A sync run's outputs step: the Google clients it needs, the report's language, and the
local files and Google Sheets written (an unchanged report is not rewritten to Sheets).

Mixed into :class:`csat_hook.sync.runner.SyncRunner` (see there for the phases)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from csat_hook.alerts import store as alerts_store
from csat_hook.alerts.report import written_handled
from csat_hook.sync import cache
from csat_hook.sync.alerts_step import AlertsStep
from csat_hook.sync.google import api as google_api
from csat_hook.sync.google import session as google
from csat_hook.sync.outputs.local import write_local
from csat_hook.sync.outputs.sheets import SheetsOutput
from csat_hook.sync.report import Report
from csat_hook.sync.sources.base import ResultsSource


class OutputsStep(AlertsStep):
    """The outputs step of :class:`~csat_hook.sync.runner.SyncRunner`; also reads
    ``google_sleep`` (set by the runner)."""

    google_sleep: Callable[[float], None]

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
