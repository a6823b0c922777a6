"""A sync run's outputs step: the Google clients it needs, the report's language, the
local files and Google Sheets written (an unchanged report is not rewritten to Sheets), and
whether every output already holds the report this run would build (its key, remembered per
output after a successful write: :mod:`.report_key`).

Mixed into :class:`csat_hook.sync.runner.SyncRunner` (see there for the phases)."""

from __future__ import annotations

import errno
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from csat_hook.alerts import store as alerts_store
from csat_hook.alerts.config import DEFAULT_TAB as DEFAULT_ALERTS_TAB
from csat_hook.alerts.report import Checkboxes
from csat_hook.alerts.report import written_handled
from csat_hook.db.schema import alerts as alerts_table
from csat_hook.db.schema import sync_outputs
from csat_hook.errors import ConfigError
from csat_hook.errors import CsatHookError
from csat_hook.errors import SyncError
from csat_hook.files import stored_path
from csat_hook.sync import cache
from csat_hook.sync import owned_tabs
from csat_hook.sync import report_key
from csat_hook.sync.alerts_step import AlertsStep
from csat_hook.sync.config import SyncSettings
from csat_hook.sync.google import api as google_api
from csat_hook.sync.google import session as google
from csat_hook.sync.outputs.local import REPORT_CSVS
from csat_hook.sync.outputs.local import REPORT_XLSX
from csat_hook.sync.outputs.local import KeptFiles
from csat_hook.sync.outputs.local import write_local
from csat_hook.sync.outputs.sheets import KeptEncoding
from csat_hook.sync.outputs.sheets import Listing
from csat_hook.sync.outputs.sheets import SheetsOutput
from csat_hook.sync.report import Report
from csat_hook.sync.report.alerts import ALERTS_KIND
from csat_hook.sync.sources.base import ResultsSource
from csat_hook.sync.summary import SyncSummary


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

    def _output_names(self) -> dict[str, str]:
        """The enabled outputs by kind (``local``, ``gsheets``), as ``sync_outputs`` names
        them."""
        return output_names(self.config)

    def _report_keys(self, version: str | None, now: datetime, language: str) -> dict[str, str]:
        """Each enabled output's key for the report of this run (none: no known version)."""
        if version is None:
            return {}
        return {
            name: report_key.report_key(
                self.config, version=version, now=now, language=language, output=name
            )
            for name in self._output_names().values()
        }

    def _keys(
        self,
        version: str | None,
        now: datetime,
        language: str,
        sheets: google_api.SheetsApi | None,
        source: ResultsSource,
        warnings: list[str] | None = None,
    ) -> dict[str, str]:
        """The team's Alerts tab edits taken first (so every output shows them), then each
        output's report key; none when an edit was taken (a write ``version`` misses).
        ``warnings``: the run's, told of an Alerts tab a person renamed."""
        merged = self._merge_sheet_edits(sheets, source, warnings)
        return self._report_keys(None if merged else version, now, language)

    def _all_unchanged(
        self,
        summary: SyncSummary,
        keys: dict[str, str],
        sheets: google_api.SheetsApi | None,
        source: ResultsSource,
    ) -> bool:
        """Whether every output already holds the report of ``keys`` (the summary then says
        so): the report need not be built."""
        unchanged = self._unchanged_outputs(keys, sheets, source)
        if unchanged is None:
            return False
        summary.outputs, summary.agents = unchanged
        summary.report = "unchanged"
        return True

    def _unchanged_outputs(
        self, keys: dict[str, str], sheets: google_api.SheetsApi | None, source: ResultsSource
    ) -> tuple[list[dict[str, Any]], int] | None:
        """When every output holds the report of ``keys`` and is still there: the summary's
        entries for them and the report's number of agents; else None (build the report)."""
        names = self._output_names()
        if not names or set(keys) != set(names.values()):
            return None
        with self.engine.connect() as conn:
            found = report_key.stored(conn, list(names.values()))
        done: list[dict[str, Any]] = []
        agents = 0
        for kind, name in names.items():
            key, detail = found.get(name, ("", {}))
            if key != keys[name]:
                return None
            agents = int(detail.get("agents", 0))
            if kind == "local":
                files = [str(f) for f in detail.get("files", [])]
                if not all(Path(f).is_file() for f in files):
                    return None
                done.append({"kind": "local", "files": files, "unchanged": True})
                continue
            if sheets is None:
                return None
            output = self._sheets_output(sheets, source)
            expected = detail.get("expected")
            if not isinstance(expected, dict) or not output.still_holds(expected):
                return None  # a tab, a chart or a rule was changed: build and write again
            done.append(
                {
                    "kind": "gsheets",
                    "spreadsheet_id": output.spreadsheet_id,
                    "tabs": len(expected.get("tabs", [])),
                    "tabs_created": 0,
                    "tabs_deleted": 0,
                    "formatted": False,
                    "cells": 0,
                    "write_requests": 0,
                    "unchanged": True,
                }
            )
        return done, agents

    def _remember(self, name: str, keys: dict[str, str], detail: dict[str, Any]) -> None:
        if name in keys:
            with self.engine.begin() as conn:
                report_key.remember(conn, name, keys[name], detail, self.clock())

    def _write_outputs(
        self,
        report: Report,
        sheets: google_api.SheetsApi | None,
        source: ResultsSource,
        *,
        dry_run: bool,
        keys: dict[str, str],
        agents: int,
    ) -> list[dict[str, Any]]:
        """Write every output; each one written remembers its key in ``keys`` (forgotten
        before the write, so a write that fails halfway leaves none)."""
        config = self.config
        done: list[dict[str, Any]] = []
        output = None
        if config.output.gsheets.enabled and sheets is not None:
            output = self._sheets_output(sheets, source)
        names = self._output_names()
        if not dry_run:
            with self.engine.begin() as conn:
                for name in names.values():  # with a key or not (no version): the old goes
                    report_key.forget(conn, name)
        if config.output.local.enabled:
            local = config.output.local
            if dry_run:
                done.append({"kind": "local", "dir": local.dir, "written": False})
            else:
                try:
                    written = write_local(
                        report,
                        Path(local.dir),
                        xlsx=local.xlsx,
                        csv_files=local.csv,
                        kept=self._kept_files(local.dir),
                    )
                except OSError as exc:
                    raise _unwritable(local.dir, exc) from exc
                done.append(written)
                self._remember(names["local"], keys, {"files": written["files"], "agents": agents})
        if output is not None:
            if dry_run:
                # Sizes checked as the write checks them: a dry run fails as the run would.
                checked = output.check(report.gsheets(), report.language, listing=_listing(report))
                done.append(
                    {
                        "kind": "gsheets",
                        "spreadsheet_id": output.spreadsheet_id,
                        **checked,
                        "written": False,
                    }
                )
            else:
                written = self._write_sheets(output, report)
                expected = written.pop("expected")
                done.append(written)
                tab = report.alerts_gsheets or report.alerts
                if tab is not None:
                    with self.engine.begin() as conn:
                        alerts_store.mark_written(
                            conn, written_handled(tab.rows, getattr(self, "_checkboxes", None))
                        )
                self._remember(names["gsheets"], keys, {"expected": expected, "agents": agents})
        return done

    def _merge_sheet_edits(
        self,
        sheets: google_api.SheetsApi | None,
        source: ResultsSource,
        warnings: list[str] | None = None,
    ) -> int:
        """The team's edits of the Alerts tab, kept before the report is built (so every
        output shows them); how many alerts changed."""
        alerts = self.config.alerts
        self._checkboxes = Checkboxes()  # none read: the tab is not written with any
        if not self.config.output.gsheets.enabled or sheets is None:
            return 0
        if alerts.tab is None:  # rules off, the tab is still written (AlertsStep._alerts_table)
            return 0
        return self._merge_handled(self._sheets_output(sheets, source), warnings)

    def _write_sheets(self, output: SheetsOutput, report: Report) -> dict[str, Any]:
        """Write the report unless the spreadsheet already holds exactly it (as this
        database last wrote it); remember what was written."""
        key = f"gsheets:{output.spreadsheet_id}"
        with self.engine.connect() as conn:
            last = cache.output_digest(conn, key)
            recorded = owned_tabs.recorded(conn, key)

        def keep(owned: list[int]) -> None:
            nonlocal recorded
            if owned != recorded:
                with self.engine.begin() as conn:
                    owned_tabs.record(conn, key, owned, self.clock())
                recorded = owned

        done = output.write(
            report.gsheets(),
            report.language,
            last_written=last,
            keep=keep,
            listing=_listing(report),
        )
        digest = done.pop("digest")
        if digest != last:
            with self.engine.begin() as conn:
                cache.set_output_digest(conn, key, digest, self.clock())
        return done

    def _kept_files(self, directory: str) -> KeptFiles:
        """The last local write's rows and their text, kept by this runner for its next
        write to the same folder (:class:`~csat_hook.sync.outputs.local.KeptFiles`)."""
        kept = self._files
        if kept is None or kept[0] != directory:
            if kept is not None:
                kept[1].drop()
            kept = self._files = (directory, KeptFiles())
        return kept[1]

    def _kept_encoding(self, spreadsheet_id: str) -> KeptEncoding:
        """The last write's encodings, kept by this runner for its next write to the same
        spreadsheet (:class:`~csat_hook.sync.outputs.sheets.KeptEncoding`)."""
        kept = getattr(self, "_encodings", None)
        if kept is None or kept[0] != spreadsheet_id:
            kept = self._encodings = (spreadsheet_id, KeptEncoding())
        return kept[1]

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
        with self.engine.connect() as conn:
            owned = owned_tabs.recorded(conn, f"gsheets:{spreadsheet_id}") or []
        gsheets = config.output.gsheets
        # The configured titles of the report's own tabs, also while a tab is off: a tab of
        # ours under one of them is that tab, renamed or deleted when the report no longer
        # writes it there (the language's own titles the output knows).
        titles = {
            "summary": [t for t in (gsheets.summary_tab,) if t],
            "unverified": [t for t in (gsheets.unverified_tab,) if t],
            ALERTS_KIND: [t for t in (DEFAULT_ALERTS_TAB, config.alerts.tab) if t],
        }
        return SheetsOutput(
            sheets,
            spreadsheet_id,
            protected=protected,
            owned=owned,
            titles=titles,
            max_request_bytes=gsheets.max_request_bytes,
            kept=self._kept_encoding(spreadsheet_id),
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
            scopes += [google.FORMS_RESPONSES_SCOPE, google.FORMS_BODY_SCOPE]
        if not scopes:
            return None, None
        session = google.build_session(config.google, scopes, log=log, sleep=self.google_sleep)
        needs_sheets = config.output.gsheets.enabled or config.results.source == "gsheets"
        sheets = google_api.SheetsApi(session) if needs_sheets else None
        forms = google_api.FormsApi(session) if config.results.source == "forms_api" else None
        return sheets, forms


# A folder that cannot be made or written by design (a path under a file, no permission, a
# read-only mount) is the configuration's to fix; anything else (a full disk) is a failure.
_CONFIGURED = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS}
)


def _listing(report: Report) -> Listing | None:
    """How the Sheets write lists fewer answers when the values do not fit Google's requests
    otherwise (None: the report cannot be relisted)."""
    if report.relist is None:
        return None
    return Listing(report.listed, report.gsheets_listing)


def _unwritable(directory: str, exc: OSError) -> CsatHookError:
    """The error for a local report that could not be written: the key and the folder (the
    operator's own setting), the system's reason, never a file's contents."""
    reason = exc.strerror or type(exc).__name__
    message = f"output.local.dir: cannot write the report in {directory!r}: {reason}"
    return ConfigError(message) if exc.errno in _CONFIGURED else SyncError(message)


def output_names(config: SyncSettings) -> dict[str, str]:
    """The enabled outputs by kind (``local``, ``gsheets``), as ``sync_outputs`` names
    them."""
    names: dict[str, str] = {}
    if config.output.local.enabled:
        names["local"] = f"local:{stored_path(Path(config.output.local.dir).resolve())}"
    if config.output.gsheets.enabled:
        spreadsheet_id = (
            config.output.gsheets.spreadsheet_id or config.results.gsheets.spreadsheet_id
        )
        names["gsheets"] = f"gsheets:{spreadsheet_id}"
    return names


def places_left(conn: sa.Connection, config: SyncSettings) -> list[str]:
    """Where the report was written and no sync with ``config`` writes it any more, so what
    it held stays, comments erased since too: the spreadsheets and folders ``sync_outputs``
    records and ``config`` does not enable (``spreadsheet <id>``, ``folder <path>``), the
    Alerts tab of the spreadsheet once ``alerts.tab`` is off (kept, never rewritten), and in
    the configured folder the report's files of a format turned off (``output.local.xlsx``,
    ``csv``). Ids and paths only, never what they hold."""
    names = output_names(config)
    enabled = set(names.values())
    recorded = conn.execute(sa.select(sync_outputs.c.output).order_by(sync_outputs.c.output))
    left = []
    for (name,) in recorded:
        if name in enabled:
            continue
        kind, _, where = name.partition(":")
        left.append(f"spreadsheet {where}" if kind == "gsheets" else f"folder {where}")
    sheets = names.get("gsheets")
    if sheets is not None and config.alerts.tab is None:
        raised = conn.execute(sa.select(alerts_table.c.id).limit(1)).first() is not None
        if raised:  # a tab the report no longer writes is kept as it was (sheets.py)
            where = sheets.partition(":")[2]
            left.append(f"the Alerts tab of spreadsheet {where}, if it is there (alerts.tab off)")
    local = config.output.local
    if local.enabled:
        folder = Path(local.dir).resolve()
        files = ([] if local.xlsx else [REPORT_XLSX]) + ([] if local.csv else list(REPORT_CSVS))
        left += [str(folder / name) for name in files if (folder / name).exists()]
    return left
