"""A sync run's alerts step: the answers a run changed as the alert rules read them, the
Alerts tab read back (the team's "Handled" edits) and rebuilt from the database.

Mixed into :class:`csat_hook.sync.runner.SyncRunner` (see there for the phases)."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from csat_hook.alerts import store as alerts_store
from csat_hook.alerts.engine import Changed
from csat_hook.alerts.engine import Inputs
from csat_hook.alerts.engine import Scale
from csat_hook.alerts.report import HANDLED_AT
from csat_hook.alerts.report import HANDLED_COLUMN
from csat_hook.alerts.report import KEY_AT
from csat_hook.alerts.report import KEY_COLUMN
from csat_hook.alerts.report import Checkbox
from csat_hook.alerts.report import Checkboxes
from csat_hook.alerts.report import alerts_table
from csat_hook.alerts.report import boxed_rows
from csat_hook.alerts.report import checkboxes
from csat_hook.alerts.report import handled_cells
from csat_hook.alerts.report import handled_column
from csat_hook.sync.config import SyncSettings
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.dataset import build_dataset
from csat_hook.sync.google.api import SheetCell
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Table
from csat_hook.sync.layout import column_letters
from csat_hook.sync.outputs.local import KeptFiles
from csat_hook.sync.outputs.sheets import KeptEncoding
from csat_hook.sync.outputs.sheets import SheetsOutput
from csat_hook.sync.report import Report
from csat_hook.sync.report.alerts import ALERTS_CSV
from csat_hook.sync.report.alerts import ALERTS_KIND
from csat_hook.sync.report.alerts import alerts_grid
from csat_hook.sync.report.alerts import alerts_tab_clash
from csat_hook.sync.titles import SHEETS_MAX
from csat_hook.sync.titles import clean


class AlertsStep:
    """The alerts step of :class:`~csat_hook.sync.runner.SyncRunner`; reads ``config``,
    ``engine`` and ``clock`` (set by the runner), and ``_opened`` once the ingest has read it."""

    config: SyncSettings
    engine: Engine
    clock: Callable[[], datetime]
    # The Sheets output's encodings of the last write, by spreadsheet (outputs_step), which
    # hold its rows: let go of with the rows the report step kept (report_step).
    _encodings: tuple[str, KeptEncoding] | None
    # The local files' rows and their text as the last write wrote them, by folder
    # (outputs_step): let go of with them too.
    _files: tuple[str, KeptFiles] | None
    # The checkboxes in the Alerts tab's "Handled" column, by row, as this run read it back.
    _checkboxes: Checkboxes

    def _changed(
        self, rows: Sequence[Any], current: dict[str, Any], by_key: dict[str, Any]
    ) -> list[Changed]:
        """``rows`` (answers this run added or replaced, ``store.AnswerRow``) as the alert
        rules read them: with the rating and NPS score they replaced (``current``: each
        survey's answer before them), the survey's team and the agent's recorded name."""
        if not self.config.alerts.rules:
            return []
        found = []
        for row in rows:
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
                    previous_nps=before.nps if before is not None else None,
                    previous_comment=before.comment if before is not None else None,
                    previous_submitted_at=before.submitted_at if before is not None else None,
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

    def _dataset(self, answers: Iterable[Any], surveys: Iterable[Any]) -> Dataset:
        config = self.config
        return build_dataset(
            answers,
            surveys,
            secrets=config.token.all_secrets(),
            helpdesks=config.helpdesks,
            opened=getattr(self, "_opened", frozenset()),
        )

    def _alerts_table(self) -> tuple[Grid, Table, Grid | None] | None:
        """The Alerts tab as the database holds it (None when the tab is off), and its CSV.

        Alert rules and digests turned off, the alerts raised before are still listed (while
        the database holds any, and the tab's title is not one of the report's other tabs',
        which only the rules being on forbids): the tab and ``alerts.csv`` keep the team's
        "Handled" column and, rewritten, show no comment a customer's erasure took away; left
        as the last run with rules wrote them, they kept it for good.

        Third: the tab as Google Sheets gets it when the team put checkboxes in "Handled"
        (read back this run: :meth:`_merge_handled`), else None."""
        alerts = self.config.alerts
        if alerts.tab is None:
            return None
        if not alerts.active and alerts_tab_clash(alerts.tab, self.config.output) is not None:
            return None
        with self.engine.connect() as conn:
            rows = alerts_table(
                conn, limit=alerts.tab_rows, tz=ZoneInfo(self.config.metrics.timezone)
            )
        if not alerts.active and len(rows) == 1:  # the header alone: no alert was ever raised
            return None
        grid, table = alerts_grid(alerts.tab, rows)
        boxed = boxed_rows(rows, getattr(self, "_checkboxes", Checkboxes()))
        return grid, table, alerts_grid(alerts.tab, boxed)[0] if boxed is not None else None

    def _merge_handled(self, output: SheetsOutput, warnings: list[str] | None = None) -> int:
        """Read the Alerts tab's "Handled" column back (one read, only when the tab exists)
        and keep the team's edits in the database before the tab is rewritten.

        The tab a person renamed since the last write ("Alerts" → "Alerts (old)", kept as a
        snapshot, a new "Alerts" written) is read too, first, this once
        (:meth:`SheetsOutput.renamed_tabs`): the edits made there since the last sync were
        lost with the title the tab was looked for under. ``warnings`` is told of it."""
        self._checkboxes = Checkboxes()
        if self.config.alerts.tab is None:
            return 0
        # The title as the output writes it: "Alerts: support" is the tab "Alerts support",
        # "Alerts support 2" when a tab csat-hook did not make holds that title.
        title = output.own_tab(clean(self.config.alerts.tab, SHEETS_MAX), ALERTS_KIND)
        renamed = output.renamed_tabs(ALERTS_KIND)
        for snapshot in renamed:
            if warnings is not None:
                warnings.append(
                    f"the Alerts tab was renamed {snapshot!r} since the last sync: its "
                    '"Handled" column was read from it once, the tab is left as it is, '
                    "and the alerts are written to the Alerts tab again"
                )
        changed = 0
        for tab in renamed:
            changed += self._merge_tab(output, tab, written=False)
        if title is not None:
            changed += self._merge_tab(output, title, written=True)
        return changed

    def _merge_tab(self, output: SheetsOutput, title: str, *, written: bool) -> int:
        """:meth:`_merge_handled` for the tab ``title``: how many alerts changed.
        ``written``: the tab is the one rewritten this run, whose checkboxes the write keeps
        (a renamed one's are its own).

        One ``spreadsheets.get`` of the header row and the columns the tab is written with
        "Alert" and "Handled" in (one more, only when the team moved them): each cell's
        value, the text the sheet shows and its checkbox, if any, from one read of the tab.
        The text shown is what a number or a date typed in "Handled" is kept as ("50%", not
        0.5; "12/5/2026", not its serial number); a checkbox's own values tell ticked from
        unticked ("No" is an unticked box with custom values, not the team's words)."""
        api, spreadsheet = output.api, output.spreadsheet_id
        # Only columns the grid has: Google refuses a range past it (a tab the team made
        # narrower by deleting columns failed every sync).
        width = output.columns_of(title)
        asked = [c for c in WRITTEN_COLUMNS if width is None or c < width]
        cells = api.read_cells(spreadsheet, title, ["1:1", *map(_whole, asked)])
        values = _grid(cells, shown=False)
        moved = [c for c in _found_columns(values) if c not in asked]
        if moved:
            cells |= api.read_cells(spreadsheet, title, [_whole(c) for c in moved])
            values = _grid(cells, shown=False)
        column = handled_column(values)
        boxes = {
            r: Checkbox(c.checkbox)
            for (r, col), c in cells.items()
            if col == column and c.checkbox is not None
        }
        cells_read = handled_cells(values, _grid(cells, shown=True), boxes)
        if written:
            at = {
                r: Checkbox(c.checkbox)
                for (r, col), c in cells.items()
                if col == HANDLED_AT and c.checkbox is not None
            }
            self._checkboxes = checkboxes(values, at)
        if not cells_read:
            return 0
        with self.engine.begin() as conn:
            return alerts_store.merge_sheet_handled(conn, cells_read, self.clock())

    def _attach_alerts(self, report: Report) -> None:
        """Put the Alerts tab (and ``alerts.csv``) in the report, as the database holds it."""
        alerts = self._alerts_table()
        report.csv = [t for t in report.csv if t.csv_name != ALERTS_CSV]
        if alerts is None:
            report.alerts = report.alerts_gsheets = None
            return
        grid, table, boxed = alerts
        report.alerts, report.alerts_gsheets = grid, boxed
        report.csv.append(table)


# The columns the Alerts tab is written with "Alert" and "Handled" in (alerts.report.HEADER).
WRITTEN_COLUMNS = (KEY_AT, HANDLED_AT)


def _whole(column: int) -> str:
    """A whole column in A1 notation: 13 → "N:N"."""
    letters = column_letters(column)
    return f"{letters}:{letters}"


def _grid(cells: dict[tuple[int, int], SheetCell], *, shown: bool) -> list[list[Any]]:
    """The cells read as rows (the header first), as ``handled_cells`` reads a tab: their
    values, or with ``shown`` the text the sheet shows in the "Handled" column (a number
    typed there, a date), the values elsewhere."""
    if not cells:
        return []
    rows = max(r for r, _ in cells) + 1
    width = max(c for _, c in cells) + 1
    grid: list[list[Any]] = [[None] * width for _ in range(rows)]
    for (r, c), cell in cells.items():
        grid[r][c] = cell.value
    column = handled_column(grid) if shown else None
    if column is not None:
        for (r, c), cell in cells.items():
            if c == column and r and _is_number(cell.value):
                grid[r][c] = cell.shown
    return grid


def _found_columns(values: list[list[Any]]) -> list[int]:
    """The columns "Alert" and "Handled" are in, as the header read names them."""
    header = [
        str(cell).strip() if cell is not None else "" for cell in (values[0] if values else [])
    ]
    return [header.index(name) for name in (KEY_COLUMN, HANDLED_COLUMN) if name in header]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
