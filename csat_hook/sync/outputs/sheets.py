"""The report in Google Sheets: at most one structure write and two value writes.

1. One ``spreadsheets.batchUpdate`` (only when needed) adds missing tabs, sized to their data
   plus headroom, and grows grids that are too small. Grids are never shrunk and tabs never
   deleted: a failed run must not have destroyed anything.
2. One ``values.batchUpdate`` (two when the payload is over ``output.gsheets.max_request_bytes``;
   split between whole tabs) writes every tab from A1, padded with empty strings to the
   tab's whole grid. That overwrites old extents without a separate clear, and since each
   request is atomic, a failed write leaves every tab as it was. ``valueInputOption=RAW``:
   a comment starting with ``=`` stays text.

The responses tab of the form (when the output is the same spreadsheet) is protected: no
title of ours may take it, and a plan that would touch it is refused.

A structure write whose answer was lost (a timeout, a reset or a 5xx after Google applied it)
is retried by the session, and Google then refuses the addSheet: "A sheet with the name ...
already exists". The output reads the metadata again and plans from what is there (the tabs
now exist): one more read, no more writes; a second refusal is an error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gspread.utils import absolute_range_name

from csat_hook.errors import SyncError
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.google.api import TabExistsError
from csat_hook.sync.report import Table
from csat_hook.sync.titles import SHEETS_MAX
from csat_hook.sync.titles import table_titles

MAX_VALUE_REQUESTS = 2


def column_letters(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def grown(rows: int) -> int:
    """Rows to give a tab holding ``rows``: room to grow, so the grid is resized rarely."""
    return rows + max(20, rows // 5)


@dataclass
class TabPlan:
    title: str
    table: Table
    rows: int
    cols: int
    exists: bool


class SheetsOutput:
    """Writes report tables into one spreadsheet."""

    def __init__(
        self,
        api: SheetsApi,
        spreadsheet_id: str,
        *,
        protected: Iterable[int] = (),
        max_request_bytes: int = 8_000_000,
    ) -> None:
        self.api = api
        self.spreadsheet_id = spreadsheet_id
        self.protected = set(protected)
        self.max_request_bytes = max_request_bytes

    def plan(self, tables: Sequence[Table]) -> tuple[list[TabPlan], list[dict[str, Any]]]:
        """Titles and grid sizes per table, and the structure requests they need."""
        metadata = self.api.metadata(self.spreadsheet_id)
        existing = {
            p["title"].casefold(): p
            for p in (s.get("properties", {}) for s in metadata.get("sheets", []))
        }
        taken = [p["title"] for p in existing.values() if p.get("sheetId") in self.protected]
        titles = table_titles([(t.name, t.key) for t in tables], SHEETS_MAX, taken)
        plans: list[TabPlan] = []
        requests: list[dict[str, Any]] = []
        for title, table in zip(titles, tables, strict=True):
            need_rows = max(len(table.rows), 1)
            need_cols = max((len(r) for r in table.rows), default=1) or 1
            props = existing.get(title.casefold())
            if props is None:
                rows = grown(need_rows)
                requests.append(
                    {
                        "addSheet": {
                            "properties": {
                                "title": title,
                                **({"index": 0} if table.kind == "summary" else {}),
                                "gridProperties": {
                                    "rowCount": rows,
                                    "columnCount": need_cols,
                                    "frozenRowCount": table.frozen,
                                },
                            }
                        }
                    }
                )
                plans.append(TabPlan(title, table, rows, need_cols, exists=False))
                continue
            if props.get("sheetId") in self.protected:
                raise SyncError(f"refusing to write tab {title!r}: it holds the form responses")
            grid = props.get("gridProperties", {})
            rows, cols = int(grid.get("rowCount", 0)), int(grid.get("columnCount", 0))
            if rows < need_rows or cols < need_cols:
                rows, cols = max(rows, grown(need_rows)), max(cols, need_cols)
                requests.append(
                    {
                        "updateSheetProperties": {
                            "properties": {
                                "sheetId": props["sheetId"],
                                "gridProperties": {"rowCount": rows, "columnCount": cols},
                            },
                            "fields": "gridProperties.rowCount,gridProperties.columnCount",
                        }
                    }
                )
            plans.append(TabPlan(title, table, rows, cols, exists=True))
        return plans, requests

    def write(self, tables: Sequence[Table]) -> dict[str, Any]:
        """Create or resize tabs, then rewrite every tab in place; returns what was done."""
        plans, requests = self.plan(tables)
        chunks = self._ordered_chunks(plans)  # checks sizes before anything is written
        created = sum(not p.exists for p in plans)
        structure_writes = 0
        if requests:
            structure_writes = 1
            try:
                self.api.update_structure(self.spreadsheet_id, requests)
            except TabExistsError:
                # Our own addSheet, applied but its answer lost (or a tab added meanwhile):
                # plan again from the tabs as they are now.
                plans, requests = self.plan(tables)
                chunks = self._ordered_chunks(plans)
                if requests:
                    structure_writes += 1
                    self.api.update_structure(self.spreadsheet_id, requests)
        for chunk in chunks:
            self.api.write_values(self.spreadsheet_id, chunk)
        return {
            "kind": "gsheets",
            "spreadsheet_id": self.spreadsheet_id,
            "tabs": len(plans),
            "tabs_created": created,
            "cells": sum(p.rows * p.cols for p in plans),
            "write_requests": len(chunks) + structure_writes,
        }

    def _ordered_chunks(self, plans: list[TabPlan]) -> list[list[dict[str, Any]]]:
        # Summary last: if a second value request fails, the tabs of the first are complete.
        ordered = sorted(plans, key=lambda p: p.table.kind == "summary")
        return self._chunks([self._value_range(p) for p in ordered])

    @staticmethod
    def _value_range(plan: TabPlan) -> dict[str, Any]:
        blank_row = [""] * plan.cols
        values = [
            [("" if v is None else v) for v in row] + [""] * (plan.cols - len(row))
            for row in plan.table.rows
        ]
        values.extend(list(blank_row) for _ in range(plan.rows - len(values)))
        end = f"{column_letters(plan.cols - 1)}{plan.rows}"
        return {
            "range": f"{absolute_range_name(plan.title)}!A1:{end}",
            "majorDimension": "ROWS",
            "values": values,
        }

    def _chunks(self, data: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Split between whole tabs so each request stays under max_request_bytes."""
        chunks: list[list[dict[str, Any]]] = [[]]
        size = 0
        for item in data:
            item_size = len(json.dumps(item, ensure_ascii=False).encode("utf-8"))
            if item_size > self.max_request_bytes:
                raise SyncError(
                    f"tab {item['range'].split('!')[0]} needs {item_size} bytes, "
                    "more than output.gsheets.max_request_bytes; lower "
                    "output.gsheets.max_rows_per_agent"
                )
            if chunks[-1] and size + item_size > self.max_request_bytes:
                chunks.append([])
                size = 0
            chunks[-1].append(item)
            size += item_size
        if len(chunks) > MAX_VALUE_REQUESTS:
            raise SyncError(
                "the report needs more than two requests of "
                "output.gsheets.max_request_bytes; lower "
                "output.gsheets.max_rows_per_agent"
            )
        return [c for c in chunks if c]
