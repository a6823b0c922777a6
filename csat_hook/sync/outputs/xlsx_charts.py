"""A report chart as an openpyxl chart of its .xlsx sheet.

CSAT by agent as columns with the 95% interval as custom error bars (Excel takes the amounts
below and above each bar from cells: two hidden columns right of the grid, which the chart
plots all the same; LibreOffice ignores amounts given as literals: :func:`.xlsx._error_amounts`
writes them); the team's weekly CSAT as a line with its interval dashed and the answers as grey
columns on a second axis.
"""

from __future__ import annotations

from typing import Any

from openpyxl.chart import BarChart
from openpyxl.chart import LineChart
from openpyxl.chart import Reference
from openpyxl.chart.data_source import AxDataSource
from openpyxl.chart.data_source import NumDataSource
from openpyxl.chart.data_source import NumRef
from openpyxl.chart.data_source import StrRef
from openpyxl.chart.error_bar import ErrorBars
from openpyxl.chart.shapes import GraphicalProperties
from openpyxl.drawing.line import LineProperties
from openpyxl.utils import get_column_letter
from openpyxl.utils import quote_sheetname

from csat_hook.sync.layout import BARS
from csat_hook.sync.layout import Chart
from csat_hook.sync.texts import Texts


def xlsx_chart(chart: Chart, sheet: Any, helpers: int, texts: Texts) -> Any:
    """The chart of ``sheet`` (anything with the sheet's ``title`` as Excel shows it)."""
    quoted = quote_sheetname(sheet.title)
    first, last = chart.header + 2, chart.end  # 1-based data rows
    categories = AxDataSource(
        strRef=StrRef(
            f"{quoted}!${get_column_letter(chart.category + 1)}${first}"
            f":${get_column_letter(chart.category + 1)}${last}"
        )
    )

    if chart.kind == BARS:
        bars = BarChart()
        bars.type = "col"
        bars.add_data(_ref(sheet, chart.value, chart.header + 1, last), titles_from_data=True)
        series = bars.series[0]
        series.cat = categories
        series.graphicalProperties.solidFill = "6FA8DC"
        series.errBars = ErrorBars(
            errDir="y",
            errBarType="both",
            errValType="cust",
            noEndCap=False,
            minus=NumDataSource(numRef=NumRef(f=str(_ref(sheet, helpers, first, last)))),
            plus=NumDataSource(numRef=NumRef(f=str(_ref(sheet, helpers + 1, first, last)))),
            spPr=GraphicalProperties(ln=LineProperties(solidFill="000000", w=15875)),
        )
        bars.title = chart.title
        bars.legend = None
        bars.visible_cells_only = False  # the amounts are in hidden columns
        _percent_axis(bars, chart.axis_title)
        bars.width, bars.height = 24, 10
        return bars
    line = LineChart()
    line.title = chart.title
    for column in (chart.value, chart.low, chart.high):
        line.add_data(_ref(sheet, column, chart.header + 1, last), titles_from_data=True)
    for i, series in enumerate(line.series):
        series.cat = categories
        series.smooth = False  # openpyxl smooths lines by default; a trend must not be
        series.graphicalProperties.line.width = 28575 if i == 0 else 9525
        if i:
            series.graphicalProperties.line.dashStyle = "dash"
    _percent_axis(line, chart.axis_title)
    line.x_axis.number_format = "dd.mm" if texts.language == "ru" else "mm-dd"
    if chart.counts is not None:
        counts = BarChart()
        counts.add_data(_ref(sheet, chart.counts, chart.header + 1, last), titles_from_data=True)
        counts.series[0].graphicalProperties.solidFill = "D9D9D9"
        counts.y_axis.axId = 200
        counts.y_axis.crosses = "max"
        counts.y_axis.majorGridlines = None
        counts.y_axis.delete = False
        line += counts
    line.width, line.height = 22, 9
    return line


def _ref(sheet: Any, column: int, header: int, last: int) -> Reference:
    """One column of ``sheet`` from ``header`` (the series name, 1-based) to ``last``. Made
    from the worksheet, not from range text: openpyxl keeps the sheet name of a quoted range
    as written, its apostrophes still doubled, and doubles them again when it writes the
    range ("Team's CSAT" became ``'Team''''s CSAT'!``: no such sheet)."""
    return Reference(sheet, column + 1, header, column + 1, last)


def _percent_axis(chart: Any, title: str) -> None:
    chart.y_axis.title = title
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 1
    chart.y_axis.number_format = "0%"
    chart.y_axis.delete = False
    chart.x_axis.delete = False
