"""``csv``: a Forms "Download responses (.csv)" export (or a sheet saved as CSV).

The embedded default. The export's timestamps look like ``2026/09/27 3:00:00 PM GMT+3``
(the offset is honoured); a sheet saved as CSV gives locale text such as
``11/22/2026 20:17:11`` (en_US) or ``22.11.2026 20:17:11`` (ru_RU), read as wall-clock time in
``results.csv.timezone`` with ``results.csv.timestamp_formats``.
"""

from __future__ import annotations

import csv
from collections.abc import Container
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from csat_hook.errors import ConfigError
from csat_hook.errors import SourceError
from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.config import SyncSettings
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.sources.base import ResultsSource
from csat_hook.sync.sources.base import RowParser
from csat_hook.sync.sources.table import read_table
from csat_hook.sync.values import RatingScale
from csat_hook.sync.values import parse_text_time


class CsvResults(ResultsSource):
    """Reads the whole file each run; fingerprints make that incremental."""

    kind = "csv"

    def __init__(
        self,
        path: Path,
        *,
        timezone: str,
        encoding: str,
        delimiter: str,
        timestamp_formats: Sequence[str],
        columns: ColumnsConfig,
        ratings: RatingScale,
    ) -> None:
        self.path = path
        self.tz = ZoneInfo(timezone)
        self.encoding = encoding
        self.delimiter = delimiter
        self.formats = list(timestamp_formats)
        self.columns = columns
        self.parser = RowParser(ratings, self._to_datetime)

    @classmethod
    def from_config(
        cls, config: SyncSettings, *, sheets: SheetsApi | None = None, forms: FormsApi | None = None
    ) -> CsvResults:
        options = config.results.csv
        return cls(
            Path(options.path),
            timezone=options.timezone,
            encoding=options.encoding,
            delimiter=options.delimiter,
            timestamp_formats=options.timestamp_formats,
            columns=config.results.columns,
            ratings=RatingScale.from_config(config.results, config.metrics),
        )

    @property
    def key(self) -> str:
        return f"csv:{self.path.name}"

    def _to_datetime(self, value: Any) -> datetime | None:
        return parse_text_time(str(value), self.tz, self.formats)

    def fetch(self, known: Container[str], watermark: datetime | None) -> SourceBatch:
        if not self.path.is_file():
            raise ConfigError(
                f"results.csv.path: {self.path} does not exist (in the form: "
                "Responses → ⋮ → Download responses (.csv), then point "
                "results.csv.path at the file)"
            )
        try:
            with self.path.open(encoding=self.encoding, newline="") as handle:
                records = list(csv.reader(handle, delimiter=self.delimiter))
        except (OSError, UnicodeError, csv.Error) as exc:
            raise SourceError(
                f"results.csv.path: cannot read {self.path} "
                f"({type(exc).__name__}; check results.csv.encoding)"
            ) from exc
        batch = SourceBatch(source=self.kind)
        if not records:
            batch.warnings.append(f"{self.path} is empty")
            return batch
        read_table(
            batch,
            self.kind,
            records[0],
            records[1:],
            self.columns,
            self.parser,
            known,
            where=f"results.csv.path ({self.path.name})",
        )
        return batch
