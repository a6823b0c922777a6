"""Results sources, by ``results.source`` value."""

from __future__ import annotations

from csat_hook.sync.config import SyncSettings
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.sources.base import ResultsSource
from csat_hook.sync.sources.csv_export import CsvResults
from csat_hook.sync.sources.forms_api import FormsApiResults
from csat_hook.sync.sources.gsheets import GSheetsResults

REGISTRY: dict[str, type[ResultsSource]] = {
    CsvResults.kind: CsvResults,
    GSheetsResults.kind: GSheetsResults,
    FormsApiResults.kind: FormsApiResults,
}


def build_source(
    config: SyncSettings, *, sheets: SheetsApi | None, forms: FormsApi | None
) -> ResultsSource:
    """The configured source; Google sources need the matching API client."""
    return REGISTRY[config.results.source].from_config(config, sheets=sheets, forms=forms)


__all__ = ["REGISTRY", "ResultsSource", "build_source"]
