"""A report grid's charts as ``spreadsheets.batchUpdate`` requests (Sheets API v4).

A chart's id is chosen from its tab's id and its slot on the tab, so a re-run finds its own
charts: one that is there is updated in place (``updateChartSpec`` and
``updateEmbeddedObjectPosition``: anything a user linked to it keeps working), one that is
not is added (``addChart`` with that id). Charts a user added are left alone.

The API has no error bars (``BasicChartSeries`` has none), so an interval is drawn as point
markers above and below each column: a COMBO chart of the CSAT as columns and the 95% low and
high as LINE series with invisible lines. The trend is the weekly CSAT as a line, its
interval dashed, and the answers as grey columns on the right axis.
"""

from __future__ import annotations

from typing import Any

from csat_hook.sync.layout import BARS
from csat_hook.sync.layout import Chart
from csat_hook.sync.layout import Grid
from csat_hook.sync.outputs.sheets_format import BLUE
from csat_hook.sync.outputs.sheets_format import DARK_GREEN
from csat_hook.sync.outputs.sheets_format import DARK_RED
from csat_hook.sync.outputs.sheets_format import GREY
from csat_hook.sync.outputs.sheets_format import object_id

SIZE = (760, 360)  # pixels


def chart_id(sheet_id: int, slot: int) -> int:
    return object_id("csat-hook chart", sheet_id, slot)


def chart_requests(
    sheet_id: int, grid: Grid, existing: set[int]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the requests, their desired form for the fingerprint): addChart for a chart not
    there yet, updateChartSpec and updateEmbeddedObjectPosition for one that is."""
    requests: list[dict[str, Any]] = []
    desired: list[dict[str, Any]] = []
    for slot, chart in enumerate(grid.charts):
        spec = _chart_spec(sheet_id, chart)
        width, height = SIZE
        position = {
            "overlayPosition": {
                "anchorCell": {
                    "sheetId": sheet_id,
                    "rowIndex": chart.anchor[0],
                    "columnIndex": chart.anchor[1],
                },
                "widthPixels": width,
                "heightPixels": height,
            }
        }
        number = chart_id(sheet_id, slot)
        add = {"addChart": {"chart": {"chartId": number, "spec": spec, "position": position}}}
        desired.append(add)
        if number not in existing:
            requests.append(add)
            continue
        requests.append({"updateChartSpec": {"chartId": number, "spec": spec}})
        requests.append(
            {
                "updateEmbeddedObjectPosition": {
                    "objectId": number,
                    "newPosition": position,
                    "fields": "overlayPosition",
                }
            }
        )
    return requests, desired


def _source(sheet_id: int, chart: Chart, column: int) -> dict[str, Any]:
    return {
        "sourceRange": {
            "sources": [
                {
                    "sheetId": sheet_id,
                    "startRowIndex": chart.header,
                    "endRowIndex": chart.end,
                    "startColumnIndex": column,
                    "endColumnIndex": column + 1,
                }
            ]
        }
    }


def _chart_spec(sheet_id: int, chart: Chart) -> dict[str, Any]:
    percent_axis = {
        "position": "LEFT_AXIS",
        "title": chart.axis_title,
        "viewWindowOptions": {"viewWindowMode": "EXPLICIT", "viewWindowMin": 0, "viewWindowMax": 1},
    }
    if chart.kind == BARS:
        marker = {"shape": "DIAMOND", "size": 7}
        series = [
            {
                "series": _source(sheet_id, chart, chart.value),
                "type": "COLUMN",
                "targetAxis": "LEFT_AXIS",
                "colorStyle": {"rgbColor": BLUE},
            },
            *(
                {
                    "series": _source(sheet_id, chart, column),
                    "type": "LINE",
                    "targetAxis": "LEFT_AXIS",
                    "lineStyle": {"type": "INVISIBLE"},
                    "pointStyle": marker,
                    "colorStyle": {"rgbColor": color},
                }
                for column, color in ((chart.low, DARK_RED), (chart.high, DARK_GREEN))
            ),
        ]
        axes = [{"position": "BOTTOM_AXIS"}, percent_axis]
    else:
        series = [
            {
                "series": _source(sheet_id, chart, chart.value),
                "type": "LINE",
                "targetAxis": "LEFT_AXIS",
                "lineStyle": {"type": "SOLID", "width": 3},
            },
            *(
                {
                    "series": _source(sheet_id, chart, column),
                    "type": "LINE",
                    "targetAxis": "LEFT_AXIS",
                    "lineStyle": {"type": "MEDIUM_DASHED", "width": 1},
                }
                for column in (chart.low, chart.high)
            ),
        ]
        axes = [{"position": "BOTTOM_AXIS"}, percent_axis]
        if chart.counts is not None:
            series.insert(
                0,
                {
                    "series": _source(sheet_id, chart, chart.counts),
                    "type": "COLUMN",
                    "targetAxis": "RIGHT_AXIS",
                    "colorStyle": {"rgbColor": GREY},
                },
            )
            axes.append({"position": "RIGHT_AXIS"})
    return {
        "title": chart.title,
        "basicChart": {
            "chartType": "COMBO",
            "legendPosition": "BOTTOM_LEGEND",
            "headerCount": 1,
            "axis": axes,
            "domains": [{"domain": _source(sheet_id, chart, chart.category)}],
            "series": series,
        },
    }
