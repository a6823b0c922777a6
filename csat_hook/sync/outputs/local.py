"""The report as local files: an .xlsx workbook and CSV files, written atomically.

Text that a spreadsheet program would run as a formula stays text:

* xlsx: every string cell is stored with the string type (openpyxl would otherwise make any
  value starting with ``=`` a formula); characters XML cannot hold are dropped.
* CSV: per the OWASP "CSV Injection" guidance, a text cell starting with ``=``, ``+``, ``-``,
  ``@``, a tab or a carriage return gets a leading apostrophe (``'=1+1``), which Excel and
  LibreOffice show as text; numbers are written as numbers. The files are UTF-8 with a BOM
  so Excel reads Cyrillic correctly.

Each file is written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from csat_hook.sync.report import Report
from csat_hook.sync.report import Table
from csat_hook.sync.titles import XLSX_MAX
from csat_hook.sync.titles import table_titles

CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: Any) -> Any:
    """A CSV cell that cannot run as a formula (OWASP CSV Injection)."""
    if isinstance(value, str) and value.startswith(CSV_TRIGGERS):
        return "'" + value
    return "" if value is None else value


def _atomic(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_xlsx(path: Path, tables: Sequence[Table]) -> None:
    titles = table_titles([(t.name, t.key) for t in tables], XLSX_MAX)

    def write(target: Path) -> None:
        workbook = Workbook(write_only=True)
        for title, table in zip(titles, tables, strict=True):
            sheet = workbook.create_sheet(title)
            sheet.freeze_panes = f"A{table.frozen + 1}"
            for row in table.rows:
                sheet.append([_xlsx_cell(sheet, v) for v in row])
        workbook.save(target)

    _atomic(path, write)


def _xlsx_cell(sheet: Any, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
    cell.data_type = "s"  # never a formula, whatever the text starts with
    return cell


def write_csv(path: Path, table: Table, *, skip_preamble: int = 0) -> None:
    def write(target: Path) -> None:
        with target.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            for row in table.rows[skip_preamble:]:
                writer.writerow([neutralize(v) for v in row])

    _atomic(path, write)


def write_local(report: Report, directory: Path, *, xlsx: bool, csv_files: bool) -> dict[str, Any]:
    """Write ``csat-report.xlsx`` and/or ``summary.csv``, ``answers.csv``, ``unverified.csv``."""
    written: list[str] = []
    if xlsx:
        path = directory / "csat-report.xlsx"
        write_xlsx(path, report.sheets())
        written.append(str(path))
    if csv_files:
        # The summary's first rows are a title and a note: a CSV is one plain table.
        parts = [("summary.csv", report.summary, report.summary.frozen - 1)]
        if report.answers is not None:
            parts.append(("answers.csv", report.answers, 0))
        if report.unverified is not None:
            parts.append(("unverified.csv", report.unverified, 0))
        for name, table, skip in parts:
            write_csv(directory / name, table, skip_preamble=skip)
            written.append(str(directory / name))
    return {"kind": "local", "files": written}
