"""The Summary tab: the leaderboard of the headline period, notes, the periods, a chart.

Layout (0-based rows): 0 the title, 1 the target and the latest answer, 3 the leaderboard's
header (rows 0–3 and the rank and agent columns are frozen), its agents (ranked first),
team rows (when there are two teams or more) and the overall row; notes; the "By period"
table (overall and teams for every listed period); the chart of CSAT by agent with its
interval. ``summary.csv`` is the leaderboard, ``periods.csv`` the periods with agents too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from csat_hook.sync.layout import BARS
from csat_hook.sync.layout import MARK_DOWN
from csat_hook.sync.layout import MARK_UP
from csat_hook.sync.layout import Area
from csat_hook.sync.layout import Canvas
from csat_hook.sync.layout import Cell
from csat_hook.sync.layout import Chart
from csat_hook.sync.layout import Column
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Look
from csat_hook.sync.layout import Rule
from csat_hook.sync.layout import RuleKind
from csat_hook.sync.layout import Table
from csat_hook.sync.leaderboard import Leaderboard
from csat_hook.sync.leaderboard import Row
from csat_hook.sync.metrics import PeriodResult
from csat_hook.sync.metrics import Stats
from csat_hook.sync.periods import Period
from csat_hook.sync.report.common import DIGITS
from csat_hook.sync.report.common import Context
from csat_hook.sync.report.common import fraction
from csat_hook.sync.report.common import funnel_cells
from csat_hook.sync.report.common import funnel_columns
from csat_hook.sync.report.common import is_no_agent
from csat_hook.sync.report.common import percent_columns
from csat_hook.sync.report.common import points
from csat_hook.sync.report.common import score

LEADERBOARD_HEADER = 3  # the row of the leaderboard's header
RANK, AGENT, CSAT, ADJUSTED, CHANGE, MARK = 0, 1, 3, 6, 8, 9
PERIODS_COLUMN = 1  # the "By period" table starts under the (wide) agent column


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def leaderboard_columns(ctx: Context, previous: Period) -> list[Column]:
    t = ctx.texts
    unit = "п.п." if t.language == "ru" else "pp"
    columns = [
        Column(t["rank"], Fmt.COUNT, len(t["not_enough"]) + 1),
        Column(t["agent"], None, 24),
        Column(t["answers"], Fmt.COUNT, 8),
        *percent_columns(t, "csat", "low", "high"),
        Column(t["adjusted"], Fmt.PERCENT, 12, csv_header=f"{t['adjusted']} (%)"),
    ]
    before = t["previous_csat"].format(period=t.period(previous))
    columns += [
        Column(before, Fmt.PERCENT, 12, csv_header=f"{before} (%)"),
        Column(t["change"], Fmt.POINTS, 11, csv_header=f"{t['change']} ({unit})"),
        Column(t["mark"], None, 6),
        Column(t["response_rate"], Fmt.PERCENT, 10, csv_header=f"{t['response_rate']} (%)"),
        Column(t["sent"], Fmt.COUNT, 10),
    ]
    if ctx.funnel:
        columns += funnel_columns(ctx)
    if ctx.nps:
        columns += [
            Column(t["nps"], Fmt.SCORE, 7),
            Column(t["nps_answers"], Fmt.COUNT, 8),
            Column(t["nps_low"], Fmt.SCORE, 9),
            Column(t["nps_high"], Fmt.SCORE, 9),
        ]
    return columns


def _figures(ctx: Context, row: Row) -> list[Cell]:
    stats = row.stats
    low, high = stats.interval or (None, None)
    before = row.previous.csat if row.previous is not None else None
    mark = {1: MARK_UP, -1: MARK_DOWN}.get(row.mark)
    cells: list[Cell] = [
        stats.answers,
        fraction(stats.csat),
        fraction(low),
        fraction(high),
        row.adjusted,
        fraction(before),
        points(row.change.value) if row.change is not None else None,
        mark,
        fraction(stats.response_rate),
        stats.sent,
    ]
    if ctx.funnel:
        cells += funnel_cells(stats)
    if ctx.nps:
        nps_low, nps_high = stats.nps_interval or (None, None)
        cells += [score(stats.nps), stats.nps_answers, score(nps_low), score(nps_high)]
    return cells


def leaderboard_table(ctx: Context, board: Leaderboard, previous: Period) -> Table:
    t = ctx.texts
    rows: list[list[Cell]] = []
    for agent, row in board.agents:
        rank: Cell = row.rank if row.rank is not None else t["not_enough"]
        if is_no_agent(ctx.data.agents[agent]):
            rank = None  # not an agent: never ranked, whatever its answers
        rows.append([rank, ctx.names[agent], *_figures(ctx, row)])
    if len(board.teams) > 1:
        rows.extend([t["team"], ctx.team(team), *_figures(ctx, row)] for team, row in board.teams)
    rows.append([None, t["all_agents"], *_figures(ctx, board.overall)])
    return Table(leaderboard_columns(ctx, previous), rows, csv_name="summary.csv")


def csv_leaderboard(table: Table, board: Leaderboard) -> Table:
    """The leaderboard for ``summary.csv``: a shared place written as ``2=``."""
    rows = [list(r) for r in table.rows]
    for i, (_, row) in enumerate(board.agents):
        if row.tied:
            rows[i][RANK] = f"{row.rank}="
    return Table(table.columns, rows, csv_name=table.csv_name)


def _notes(ctx: Context, board: Leaderboard, previous: Period) -> list[str]:
    t = ctx.texts
    settings = ctx.settings
    prior = board.prior
    notes = [t["note_rank" if prior is not None else "note_rank_raw"].format(min_n=board.min_n)]
    if prior is not None and prior.pooled:
        notes.append(t["note_pooled"].format(mean=t.percent(prior.mean)))
    elif prior is not None:
        # Already as noted (leaderboard.noted_prior): written whole, every digit kept.
        weight = format(Decimal(repr(prior.weight)).normalize(), "f")
        if t.language == "ru":
            weight = weight.replace(".", ",")
        whole = prior.weight == int(prior.weight)
        notes.append(
            t["note_prior"].format(
                weight=weight,
                mean=t.percent(prior.mean),
                answers_word=t.answers_word(int(prior.weight) if whole else 2),
                agents=prior.agents,
            )
        )
    notes.append(t["note_interval"])
    notes.append(
        t["note_change"].format(previous=lower_first(t.period(previous)), min_n=board.min_n)
    )
    if ctx.funnel:
        notes.append(t["note_funnel"])
    if ctx.nps:
        notes.append(t["note_nps"])
    top, high = settings.top_box, settings.scale_max
    # The ratings CSAT counts: "4–5", or "5" alone (top_box at the top read "5–5").
    satisfied = f"{top}–{high}" if top < high else f"{high}"
    notes.append(t["note_cohort"].format(low=settings.scale_min, high=high, satisfied=satisfied))
    return notes


def _period_cells(ctx: Context, period: Period, stats: Stats) -> list[Cell]:
    t = ctx.texts
    low, high = stats.interval or (None, None)
    cells: list[Cell] = [
        t.period(period),
        period.first_date(),
        period.last_date(),
    ]
    figures: list[Cell] = [
        stats.sent,
        stats.answers,
        fraction(stats.response_rate),
        fraction(stats.csat),
        fraction(low),
        fraction(high),
        fraction(stats.mean),
    ]
    if ctx.funnel:
        figures += funnel_cells(stats)
    if ctx.nps:
        figures += [score(stats.nps), stats.nps_answers]
    return [*cells, *figures]


def _period_columns(ctx: Context, *, full: bool) -> list[Column]:
    t = ctx.texts
    columns = [
        Column(t["period"], None, 22),
        Column(t["from"], Fmt.DATE, 11),
        Column(t["to"], Fmt.DATE, 11),
    ]
    columns += (
        [
            Column(t["level"], None, 9),
            Column(t["name"], None, 20),
            Column(t["agent_key"], None, 12),
            Column(t["helpdesk"], None, 10),
        ]
        if full
        else [Column(t["name"], None, 20)]
    )
    columns += [
        Column(t["sent"], Fmt.COUNT, 10),
        Column(t["answers"], Fmt.COUNT, 8),
        Column(t["response_rate"], Fmt.PERCENT, 10, csv_header=f"{t['response_rate']} (%)"),
        *percent_columns(t, "csat", "low", "high"),
        Column(t["mean"], Fmt.MEAN, 8),
    ]
    if ctx.funnel:
        columns += funnel_columns(ctx)
    if ctx.nps:
        columns += [Column(t["nps"], Fmt.SCORE, 7), Column(t["nps_answers"], Fmt.COUNT, 8)]
    if full:
        s = ctx.settings
        columns += [Column(str(v), Fmt.COUNT, 5) for v in range(s.scale_min, s.scale_max + 1)]
    return columns


def periods_tables(ctx: Context, results: Sequence[PeriodResult]) -> tuple[Table, Table]:
    """The "By period" table (overall and teams) and ``periods.csv`` (agents too)."""
    t = ctx.texts
    shown: list[list[Cell]] = []
    full: list[list[Cell]] = []
    for result in results:
        if not (result.overall.answers or result.overall.sent):
            continue
        period = result.period
        overall = _period_cells(ctx, period, result.overall)
        shown.append([*overall[:3], t["all_agents"], *overall[3:]])
        full.append([*overall[:3], t["overall"], t["all_agents"], None, None, *overall[3:]])
        full[-1].extend(result.overall.distribution)
        teams = sorted(result.teams.items(), key=lambda kv: ctx.team(kv[0]))
        for team, stats in teams:
            cells = _period_cells(ctx, period, stats)
            if len(teams) > 1:
                shown.append([*cells[:3], ctx.team(team), *cells[3:]])
            full.append([*cells[:3], t["team"], ctx.team(team), None, None, *cells[3:]])
            full[-1].extend(stats.distribution)
        agents = sorted(result.agents.items(), key=lambda kv: ctx.agent_order(kv[0]))
        for agent, stats in agents:
            who = ctx.data.agents[agent]
            cells = _period_cells(ctx, period, stats)
            full.append([*cells[:3], t["agent"], ctx.names[agent], who.key, who.helpdesk])
            full[-1].extend([*cells[3:], *stats.distribution])
    return (
        Table(_period_columns(ctx, full=False), shown),
        Table(_period_columns(ctx, full=True), full, csv_name="periods.csv"),
    )


def build_summary(
    ctx: Context,
    board: Leaderboard,
    headline: Period,
    previous: Period,
    listed: Sequence[PeriodResult],
    latest: datetime | None,
    *,
    name: str,
) -> tuple[Grid, list[Table]]:
    """The Summary grid and its CSV tables (``summary.csv``, ``periods.csv``)."""
    t = ctx.texts
    grid = Grid(name, "summary", frozen_rows=LEADERBOARD_HEADER + 1, frozen_cols=2)
    canvas = Canvas(grid)
    first, last = headline.first_date(), headline.last_date()
    assert first is not None and last is not None  # the headline period is bounded
    title = t["title"].format(period=t.period(headline), first=t.date(first), last=t.date(last))
    canvas.line([title], Look.TITLE)
    # Texts spill over the empty cells right of them; the target is a number in its own cell.
    stamp = t["no_answers"] if latest is None else f"{t.datetime(latest)} ({ctx.tz.key})"
    canvas.line([t["target"], None, ctx.target, f"{t['latest']}: {stamp}"])
    canvas.look(Area(1, 0, 2, 3), Look.BOLD)
    # A whole percent ("85%") only for a target that is one: 0.855 showed "86%" beside an
    # 85.6% the rules colour green (they compare with the target shown to 0.1%).
    whole = round(ctx.target * 100, DIGITS) == round(ctx.target * 100)
    canvas.fmt(Area(1, 2, 2, 3), Fmt.WHOLE_PERCENT if whole else Fmt.PERCENT)
    canvas.blank()
    table = leaderboard_table(ctx, board, previous)
    placed = canvas.table(table)
    agents_end = placed.first + len(board.agents)
    for i, (_, row) in enumerate(board.agents):
        r = placed.first + i
        if row.tied:
            canvas.fmt(Area(r, RANK, r + 1, RANK + 1), Fmt.TIED)
        if row.rank is None:
            canvas.look(Area(r, RANK, r + 1, RANK + 1), Look.MUTED)
    canvas.look(Area(placed.first, RANK, placed.end, RANK + 1), Look.CENTER)
    canvas.look(Area(placed.first, MARK, placed.end, MARK + 1), Look.CENTER)
    canvas.look(Area(agents_end, 0, placed.end, len(table.columns)), Look.BOLD)
    data = Area(placed.first, CSAT, placed.end, CSAT + 1)
    grid.rules += [
        Rule(RuleKind.TARGET, data, ctx.target),
        Rule(RuleKind.TARGET, Area(placed.first, ADJUSTED, placed.end, ADJUSTED + 1), ctx.target),
        Rule(RuleKind.MARKS, Area(placed.first, CHANGE, placed.end, MARK + 1), column=MARK),
    ]
    canvas.blank()
    for note in _notes(ctx, board, previous):
        canvas.line([note], Look.NOTE)
    canvas.blank()
    by_period, periods_csv = periods_tables(ctx, listed)
    canvas.line([None, t["by_period"]], Look.BOLD)
    periods = canvas.table(by_period, col0=PERIODS_COLUMN)
    csat = PERIODS_COLUMN + [c.header for c in by_period.columns].index(t["csat"])
    grid.rules.append(
        Rule(RuleKind.TARGET, Area(periods.first, csat, periods.end, csat + 1), ctx.target)
    )
    canvas.blank()
    if any(row.stats.answers for _, row in board.agents):
        grid.charts.append(
            Chart(
                BARS,
                t["chart_agents"].format(period=lower_first(t.period(headline))),
                (canvas.row, 1),
                placed.header,
                agents_end,
                AGENT,
                CSAT,
                CSAT + 1,
                CSAT + 2,
                axis_title=t["csat"],
            )
        )
    return grid, [csv_leaderboard(table, board), periods_csv]
