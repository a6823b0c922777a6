"""Tabs of single answers: Responses (every credited answer, flat, for pivot tables and Looker
Studio), one tab per agent, and Unverified (answers credited to no one).

Newest first; the submission time is a real date-time, local to ``metrics.timezone``, whose
name is in the header; low ratings (``metrics.low_rating``) are highlighted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any

from csat_hook.sync.dataset import Agent
from csat_hook.sync.dataset import AnswerRecord
from csat_hook.sync.layout import Area
from csat_hook.sync.layout import Canvas
from csat_hook.sync.layout import Cell
from csat_hook.sync.layout import Column
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Look
from csat_hook.sync.layout import Rule
from csat_hook.sync.layout import RuleKind
from csat_hook.sync.layout import Table
from csat_hook.sync.report.common import Context
from csat_hook.sync.report.common import LocalTime
from csat_hook.sync.report.common import is_no_agent
from csat_hook.sync.report.common import ticket_link

_NEWEST = attrgetter("submitted_at", "dialog_id")  # the sort key, built in C


def _newest(answers: Sequence[AnswerRecord], limit: int) -> list[AnswerRecord]:
    return sorted(answers, key=_NEWEST, reverse=True)[:limit]


class Newest:
    """Every answer newest first, with its submission time as the tabs show it: sorted once
    for the Responses tab and the agent tabs (the sort is stable, so an agent's answers taken
    from it are in the order sorting them alone gives), each time converted once and only
    when a tab shows it (at 1,000,000 answers the tabs show about half)."""

    def __init__(self, answers: list[AnswerRecord], when: LocalTime) -> None:
        self.answers = answers
        self._when = when
        self._shown: list[datetime | None] = [None] * len(answers)

    @classmethod
    def of(cls, ctx: Context) -> Newest:
        return cls(_newest(ctx.data.answers, len(ctx.data.answers)), LocalTime(ctx.tz))

    def shown(self, index: int) -> datetime:
        """The submission time of ``answers[index]``, local and to the minute."""
        shown = self._shown[index]
        if shown is None:
            shown = self._shown[index] = self._when(self.answers[index].submitted_at)
        return shown


def _low_ratings(ctx: Context, grid: Grid, first: int, end: int, column: int) -> None:
    if end > first:
        area = Area(first, 0, end, grid.width)
        grid.rules.append(Rule(RuleKind.LOW_RATING, area, ctx.low_rating, column=column))


def build_responses(
    ctx: Context, *, name: str, max_rows: int, every: bool = True, newest: Newest | None = None
) -> tuple[Grid, Table | None]:
    """The Responses tab (the newest ``max_rows`` answers) and ``answers.csv`` (the same
    table, every answer), or None for the file when not ``every`` (no output writes it: at
    1,000,000 answers the table is a million rows); ``newest`` is :meth:`Newest.of` ``ctx``
    (computed here when not given)."""
    t = ctx.texts
    columns = [
        Column(ctx.zone("submitted"), Fmt.DATETIME, 17),
        Column(t["agent"], None, 22),
        Column(t["team"], None, 14),
        Column(t["helpdesk"], None, 11),
        Column(t["channel"], None, 10),
        Column(t["ticket"], None, 12),
        Column(t["rating"], Fmt.COUNT, 7),
    ]
    if ctx.nps:
        columns.append(Column(t["nps_score"], Fmt.COUNT, 8))
    columns += [Column(t["comment"], None, 50), Column(t["ticket_link"], None, 36)]
    data = ctx.data
    newest = newest or Newest.of(ctx)
    names, teams, templates = ctx.names, data.teams, ctx.templates
    listed = newest.answers if every else newest.answers[:max_rows]
    rows: list[list[Cell]] = []
    for index, a in enumerate(listed):
        row: list[Cell] = [
            newest.shown(index),
            names[a.agent],
            teams[a.team] or None,
            a.helpdesk,
            a.channel or None,
            a.dialog_id,
            a.rating,
        ]
        if ctx.nps:
            row.append(a.nps)
        row += [a.comment or None, ticket_link(templates, a.helpdesk, a.dialog_id)]
        rows.append(row)
    grid = Grid(name, "responses")
    placed = Canvas(grid).table(Table(columns, rows[:max_rows]))
    _low_ratings(ctx, grid, placed.first, placed.end, 6)
    return grid, Table(columns, rows, csv_name="answers.csv") if every else None


def build_agent_tabs(ctx: Context, *, max_rows: int, newest: Newest | None = None) -> list[Grid]:
    """One tab per agent with answers, newest first, at most ``max_rows`` answers; ``newest``
    is :meth:`Newest.of` ``ctx`` (computed here when not given).

    An agent is (helpdesk, key): a tab whose key another helpdesk's agent also has (among
    every agent of the dataset, with answers or only surveys: a key, once shared, stays
    shared) carries its helpdesk (:attr:`Grid.helpdesk`), and the tabs are in the order of
    name, key and helpdesk, never of whose answer came last."""
    t = ctx.texts
    newest = newest or Newest.of(ctx)
    # Positions in the newest-first order, per agent, up to max_rows each.
    by_agent: dict[int, list[int]] = defaultdict(list)
    for index, answer in enumerate(newest.answers):
        mine = by_agent[answer.agent]
        if len(mine) < max_rows:
            mine.append(index)
    with_links = any(ctx.templates.get(a.helpdesk) for a in ctx.data.agents)
    columns = [
        Column(ctx.zone("submitted"), Fmt.DATETIME, 17),
        Column(t["ticket"], None, 12),
        Column(t["rating"], Fmt.COUNT, 7),
    ]
    if ctx.nps:
        columns.append(Column(t["nps_score"], Fmt.COUNT, 8))
    columns.append(Column(t["comment"], None, 60))
    if with_links:
        columns.append(Column(t["ticket_link"], None, 36))
    grids = []
    agents = ctx.data.agents
    shared = _shared_keys(agents)
    ordered, shown = newest.answers, newest.shown
    for agent in sorted(
        by_agent,
        key=lambda i: (
            is_no_agent(agents[i]),
            agents[i].name.casefold(),
            agents[i].key,
            agents[i].helpdesk,
        ),
    ):
        rows: list[list[Cell]] = []
        for index in by_agent[agent]:
            a = ordered[index]
            row: list[Cell] = [shown(index), a.dialog_id, a.rating]
            if ctx.nps:
                row.append(a.nps)
            row.append(a.comment or None)
            if with_links:
                row.append(ticket_link(ctx.templates, a.helpdesk, a.dialog_id))
            rows.append(row)
        who = agents[agent]
        helpdesk = who.helpdesk if who.key in shared else None
        # No agent recorded: titled with the label alone (and its helpdesk when several
        # helpdesks have such answers: the key "" is then shared).
        title = t["no_agent"] if is_no_agent(who) else who.name
        grid = Grid(title, "agent", key=who.key, helpdesk=helpdesk)
        placed = Canvas(grid).table(Table(columns, rows))
        _low_ratings(ctx, grid, placed.first, placed.end, 2)
        grids.append(grid)
    return grids


def _shared_keys(agents: Sequence[Agent]) -> set[str]:
    """The agent keys more than one helpdesk's agents have."""
    helpdesks: dict[str, str] = {}
    shared = set()
    for agent in agents:
        if helpdesks.setdefault(agent.key, agent.helpdesk) != agent.helpdesk:
            shared.add(agent.key)
    return shared


def build_unverified(ctx: Context, rows_in: Sequence[Any], *, name: str) -> tuple[Grid, Table]:
    """Answers that could not be credited, under a line that says so, and ``unverified.csv``.

    The form's agent and ticket fields are labelled as unverified: beside a forged answer
    they name whom the forger claimed, not whom it counts for (nobody).
    """
    t = ctx.texts
    columns = [
        Column(ctx.zone("submitted"), Fmt.DATETIME, 17),
        Column(t["reason"], None, 10),
        Column(t["rating"], Fmt.COUNT, 7),
        Column(t["comment"], None, 40),
        Column(t["field_agent"], None, 20),
        Column(t["field_ticket"], None, 20),
        Column(t["source_row"], None, 14),
    ]
    when = LocalTime(ctx.tz)
    rows: list[list[Cell]] = [
        [
            when(r.submitted_at) if r.submitted_at else None,
            r.reason,
            r.rating,
            r.comment or None,
            r.field_agent or None,
            r.field_ticket or None,
            r.source_ref,
        ]
        for r in rows_in
    ]
    table = Table(columns, rows, csv_name="unverified.csv")
    grid = Grid(name, "unverified", frozen_rows=2)
    canvas = Canvas(grid)
    canvas.line([t["unverified_note"]], Look.NOTE)
    canvas.table(table)
    return grid, table
