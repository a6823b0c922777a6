"""The ``output`` section: the Google Sheets and local report outputs, and the language."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import field_validator

from csat_hook.files import written_out
from csat_hook.settings import StrictModel
from csat_hook.settings import blank_to_none
from csat_hook.sync.config.google import check_document_id


class SheetsOutputConfig(StrictModel):
    enabled: bool = False
    spreadsheet_id: str | None = None
    # Tab titles; null: in the report's language ("Summary" / "Сводка", "Unverified" /
    # "Непроверенные").
    summary_tab: str | None = Field(default=None, min_length=1, max_length=100)
    unverified_tab: str | None = Field(default=None, max_length=100)
    unverified: bool = True  # false: no tab for answers that could not be credited
    max_rows_per_agent: int = Field(default=2000, ge=1, le=1_000_000)
    # The Responses tab (one row per credited answer): the newest this many.
    max_response_rows: int = Field(default=50_000, ge=1, le=1_000_000)
    # Google refuses a larger body whole (400 "Request payload size exceeds the limit:
    # 10485760 bytes."): a value above it made every write of a report that needed it fail.
    max_request_bytes: int = Field(default=8_000_000, ge=100_000, le=10_485_760)

    @field_validator("spreadsheet_id", "summary_tab", "unverified_tab", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return blank_to_none(value)

    @field_validator("spreadsheet_id")
    @classmethod
    def _an_id(cls, value: str | None) -> str | None:
        return None if value is None else check_document_id(value, "spreadsheet")


# Every file the local output writes in its folder, or removes from it: the workbook first,
# then the CSV files (sync/outputs/local.py: REPORT_XLSX and REPORT_CSVS).
REPORT_FILES = (
    "csat-report.xlsx",
    "summary.csv",
    "periods.csv",
    "trends.csv",
    "answers.csv",
    "unverified.csv",
    "alerts.csv",
)


class LocalOutputConfig(StrictModel):
    enabled: bool = True
    dir: str = "var/csat-report"
    xlsx: bool = True
    csv: bool = True

    def report_file(self, path: str) -> str | None:
        """The name of the report's file that ``path`` is (one this output writes or removes
        in its folder: :data:`REPORT_FILES`), else None. Symbolic links are followed, and an
        existing file is compared as the same file too (another spelling of it on a
        case-insensitive file system, a hard link)."""
        target, folder = Path(path).resolve(), Path(self.dir).resolve()
        if target.parent == folder and target.name in REPORT_FILES:
            return target.name
        if not target.is_file() or not folder.is_dir():
            return None
        for name in REPORT_FILES:
            try:
                if os.path.samefile(target, folder / name):
                    return name
            except OSError:  # that report file does not exist (yet)
                continue
        return None

    @field_validator("dir")
    @classmethod
    def _a_folder(cls, value: str) -> str:
        # Blank (`${REPORT_DIR:-}` unset) wrote the report into whatever folder the process
        # started in, beside the code or the configuration.
        if not value.strip():
            raise ValueError("blank: give the report's folder (. for the current one)")
        return written_out(value)


class OutputConfig(StrictModel):
    gsheets: SheetsOutputConfig = Field(default_factory=SheetsOutputConfig)
    local: LocalOutputConfig = Field(default_factory=LocalOutputConfig)
    # The report's language (headers, period names, notes, tab titles). auto: the Google
    # Sheets output's locale (ru* → Russian) when that output is on, else English.
    language: Literal["auto", "en", "ru"] = "auto"
