"""The Trends tab: the team's CSAT by week and by month with its interval (and a chart of
it), then CSAT and answers per agent per week and per month, oldest at the left.

A CSAT cell whose answers are fewer than ``metrics.min_n`` is grey and italic (a rule that
looks at the matching cell of the answers matrix below it). ``trends.csv`` has the same
figures as one long table (granularity, period start, level, name, answers, CSAT, interval).
"""

from __future__ import annotations

from collections.abc import Sequence

from csat_hook.sync.layout import TREND
from csat_hook.sync.layout import Area
from csat_hook.sync.layout import Canvas
from csat_hook.sync.layout import Cell
from csat_hook.sync.layout import Chart
from csat_hook.sync.layout import Column
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Look
from csat_hook.sync.layout import Placed
from csat_hook.sync.layout import Rule
from csat_hook.sync.layout import RuleKind
from csat_hook.sync.layout import Table
from csat_hook.sync.metrics import PeriodResult
from csat_hook.sync.metrics import Stats
from csat_hook.sync.periods import WEEK
from csat_hook.sync.report.common import Context
from csat_hook.sync.report.common import fraction
from csat_hook.sync.report.common import is_no_agent
from csat_hook.sync.report.common import percent_columns

CHART_COLUMN = 6  # the weekly chart sits right of the team tables


def _team_table(ctx: Context, results: Sequence[PeriodResult], first_key: str) -> Table:
    t = ctx.texts
    weekly = results and results[0].period.kind == WEEK
    columns = [
        Column(t[first_key], Fmt.DATE if weekly else None, 14),
        Column(t["answers"], Fmt.COUNT, 8),
        *percent_columns(t, "csat", "low", "high"),
    ]
    rows: list[list[Cell]] = []
    for result in results:
        stats = result.overall
        low, high = stats.interval or (None, None)
        label: Cell = result.period.first_date() if weekly else t.period(result.period)
        rows.append([label, stats.answers, fraction(stats.csat), fraction(low), fraction(high)])
    return Table(columns, rows)


def _matrices(
    ctx: Context, results: Sequence[PeriodResult], agents: list[int], weekly: bool
) -> tuple[Table, Table]:
    t = ctx.texts
    labels = []
    for result in results:
        first = result.period.first_date()
        labels.append(t.date(first) if weekly and first is not None else t.period(result.period))
    csat_columns = [Column(t["agent"], None, 24), *(Column(x, Fmt.PERCENT, 9) for x in labels)]
    count_columns = [Column(t["agent"], None, 24), *(Column(x, Fmt.COUNT, 9) for x in labels)]
    csat_rows: list[list[Cell]] = []
    count_rows: list[list[Cell]] = []
    for agent in agents:
        found = [r.agents.get(agent) for r in results]
        csat_rows.append([ctx.names[agent], *(fraction(s.csat) if s else None for s in found)])
        count_rows.append([ctx.names[agent], *(s.answers if s else None for s in found)])
    return Table(csat_columns, csat_rows), Table(count_columns, count_rows)


def _csv_rows(ctx: Context, results: Sequence[PeriodResult], granularity: str) -> list[list[Cell]]:
    t = ctx.texts
    rows: list[list[Cell]] = []

    def line(result: PeriodResult, level: str, name: str, stats: Stats) -> list[Cell]:
        low, high = stats.interval or (None, None)
        return [
            t[granularity],
            result.period.first_date(),
            t.period(result.period),
            level,
            name,
            stats.answers,
            fraction(stats.csat),
            fraction(low),
            fraction(high),
        ]

    for result in results:
        rows.append(line(result, t["overall"], t["all_agents"], result.overall))
        listed = sorted(
            result.agents.items(),
            key=lambda kv: (is_no_agent(ctx.data.agents[kv[0]]), ctx.names[kv[0]]),
        )
        for agent, stats in listed:
            if stats.answers:
                rows.append(line(result, t["agent"], ctx.names[agent], stats))
    return rows


def build_trends(
    ctx: Context, weeks: Sequence[PeriodResult], months: Sequence[PeriodResult], *, name: str
) -> tuple[Grid, Table]:
    """The Trends grid (``weeks`` and ``months`` oldest first) and ``trends.csv``."""
    t = ctx.texts
    grid = Grid(name, "trends", frozen_rows=0, frozen_cols=1)
    canvas = Canvas(grid)
    min_n = ctx.settings.min_n
    placed: dict[str, Placed] = {}
    for key, results, first in (
        ("team_by_week", weeks, "week"),
        ("team_by_month", months, "month"),
    ):
        canvas.line([t[key]], Look.BOLD)
        placed[key] = canvas.table(_team_table(ctx, results, first))
        area = Area(placed[key].first, 2, placed[key].end, 3)
        grid.rules += [
            Rule(RuleKind.SMALL_N, area, min_n, offset=(0, -1)),
            Rule(RuleKind.TARGET, area, ctx.target),
        ]
        canvas.blank()
    active = {a for r in (*weeks, *months) for a, s in r.agents.items() if s.answers}
    agents = sorted(active, key=ctx.agent_order)
    for results, csat_key, count_key, weekly in (
        (weeks, "csat_by_week", "answers_by_week", True),
        (months, "csat_by_month", "answers_by_month", False),
    ):
        csat, counts = _matrices(ctx, results, agents, weekly)
        canvas.line([t[csat_key]], Look.BOLD)
        top = canvas.table(csat)
        canvas.blank()
        canvas.line([t[count_key]], Look.BOLD)
        below = canvas.table(counts)
        canvas.blank()
        area = Area(top.first, 1, top.end, 1 + len(results))
        grid.rules += [
            Rule(RuleKind.SMALL_N, area, min_n, offset=(below.first - top.first, 0)),
            Rule(RuleKind.TARGET, area, ctx.target),
        ]
    week_table = placed["team_by_week"]
    if any(r.overall.answers for r in weeks):
        grid.charts.append(
            Chart(
                TREND,
                t["chart_trend"],
                (week_table.header, CHART_COLUMN),
                week_table.header,
                week_table.end,
                0,
                2,
                3,
                4,
                counts=1,
                axis_title=t["csat"],
            )
        )
    csv_columns = [
        Column(t["granularity"]),
        Column(t["from"], Fmt.DATE),
        Column(t["period"]),
        Column(t["level"]),
        Column(t["name"]),
        Column(t["answers"], Fmt.COUNT),
        *percent_columns(t, "csat", "low", "high"),
    ]
    rows = _csv_rows(ctx, weeks, "weekly") + _csv_rows(ctx, months, "monthly")
    return grid, Table(csv_columns, rows, csv_name="trends.csv")
