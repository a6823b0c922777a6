"""Checks that span the sync's sections (each message starts with the key it is about)."""

from __future__ import annotations

from csat_hook.sync.config.metrics import MetricsConfig
from csat_hook.sync.config.output import OutputConfig
from csat_hook.sync.config.results import ResultsConfig


def check_sync_sections(
    results: ResultsConfig, metrics: MetricsConfig, output: OutputConfig
) -> None:
    """Checks that span the sync's sections; ValueError names the key."""
    # Only the labels the configuration gives: the built-in ones are the five-point scale's
    # (a three-point scale was refused for "Satisfied: 4", a key nobody wrote, or copied from
    # the example); on another scale a cell holding one is skipped (values.RatingScale).
    given = results.rating_labels if results.labels_given() else {}
    for label, score in given.items():
        if not metrics.scale_min <= score <= metrics.scale_max:
            raise ValueError(
                f"results.rating_labels.{label}: {score} is outside the scale "
                f"{metrics.scale_min}..{metrics.scale_max} (metrics.scale_*)"
            )
    local = output.local
    if results.source == "csv" and local.enabled:
        name = local.report_file(results.csv.path)
        if name is not None:
            # Each run wrote the report's file over the export it had just read (the
            # unverified rows and the references lost with it), or removed it (alerts.csv
            # with the alerts off), and the next run found no export.
            raise ValueError(
                f"results.csv.path: {results.csv.path!r} is the report's own {name} "
                f"(output.local.dir {local.dir!r}): every sync would write the report over "
                "the export it reads, or remove it; keep the export in another folder, or "
                "under another name"
            )
    sheets = output.gsheets
    if sheets.enabled and not (sheets.spreadsheet_id or results.gsheets.spreadsheet_id):
        raise ValueError(
            "output.gsheets.spreadsheet_id is required when output.gsheets is "
            "enabled and results.gsheets.spreadsheet_id is not set"
        )
    if (
        sheets.unverified_tab
        and sheets.summary_tab
        and sheets.unverified_tab.casefold() == sheets.summary_tab.casefold()
    ):
        raise ValueError("output.gsheets.unverified_tab must differ from summary_tab")
