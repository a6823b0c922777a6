"""The report as grids and tables, the same for Google Sheets, the .xlsx and the CSV files.

Tabs, in order: Summary (the leaderboard of the headline period: :mod:`.summary`), Trends
(weeks and months: :mod:`.trends`), Responses (every credited answer, flat), one tab per agent
with answers, Unverified (:mod:`.answers`), and Alerts when alert rules are on or alerts they
raised are stored (:mod:`.alerts`). Every header, period name and note is in the
report's language (:mod:`csat_hook.sync.texts`). Cells are str, int, float, a naive local
``datetime``/``date`` or None (blank): numbers stay numbers (fractions for percentages), never
NaN. Nothing depends on the time of the run beyond its day: a run that finds nothing new
writes the same cells.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from csat_hook.sync.dataset import Dataset
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Table
from csat_hook.sync.leaderboard import build_leaderboard
from csat_hook.sync.metrics import PeriodResult
from csat_hook.sync.metrics import Settings
from csat_hook.sync.metrics import compute
from csat_hook.sync.periods import Period
from csat_hook.sync.periods import local_day
from csat_hook.sync.periods import months
from csat_hook.sync.periods import previous
from csat_hook.sync.periods import rolling
from csat_hook.sync.periods import weeks
from csat_hook.sync.report.answers import KeptRows
from csat_hook.sync.report.answers import Newest
from csat_hook.sync.report.answers import build_agent_tabs
from csat_hook.sync.report.answers import build_responses
from csat_hook.sync.report.answers import build_unverified
from csat_hook.sync.report.common import Context
from csat_hook.sync.report.common import LocalTime
from csat_hook.sync.report.common import display_names
from csat_hook.sync.report.common import no_agent_indexes
from csat_hook.sync.report.summary import build_summary
from csat_hook.sync.report.trends import build_trends
from csat_hook.sync.texts import Texts


@dataclass
class Report:
    language: str
    summary: Grid
    trends: Grid
    responses: Grid
    agents: list[Grid]
    unverified: Grid | None
    csv: list[Table]  # each with its csv_name
    alerts: Grid | None = None  # the Alerts tab (report/alerts.py), set by the sync runner
    # The Alerts tab as Google Sheets gets it, when it differs: the team's checkboxes in
    # "Handled" written back as booleans (alerts/report.py: boxed_rows).
    alerts_gsheets: Grid | None = None
    # The rows listed as asked (the Responses tab's, each agent tab's), and the same two kinds
    # of tab built listing fewer (:meth:`gsheets_listing`).
    listed: tuple[int, int] = (0, 0)
    relist: Callable[[int, int], tuple[Grid, list[Grid]]] | None = None

    def sheets(self) -> list[Grid]:
        """Grids in tab order: Summary, Trends, Responses, the agents, Unverified, Alerts."""
        tail = [g for g in (self.unverified, self.alerts) if g is not None]
        return [self.summary, self.trends, self.responses, *self.agents, *tail]

    def gsheets(self) -> list[Grid]:
        """:meth:`sheets` as the Google Sheets output writes them (:attr:`alerts_gsheets`)."""
        grids = self.sheets()
        if self.alerts_gsheets is not None and self.alerts is not None:
            grids[-1] = self.alerts_gsheets
        return grids

    def gsheets_listing(self, response_rows: int, agent_rows: int) -> list[Grid]:
        """:meth:`gsheets` with the Responses tab listing the newest ``response_rows`` answers
        and each agent's tab its newest ``agent_rows`` (fewer than :attr:`listed`: the Sheets
        output's values must fit its requests); every other tab, and every figure, as it is.
        The same tabs, in the same order: an agent with answers keeps a tab."""
        if self.relist is None:
            raise ValueError("this report cannot be listed again")
        responses, agents = self.relist(response_rows, agent_rows)
        return replace(self, responses=responses, agents=agents).gsheets()


@dataclass(frozen=True)
class ReportSpec:
    """What the report is asked for (from ``metrics`` and ``output``)."""

    language: str
    settings: Settings
    tz: ZoneInfo
    listed: Sequence[Period]  # metrics.periods
    headline_days: int
    trend_weeks: int
    trend_months: int
    target: float
    low_rating: int
    nps: bool
    templates: Mapping[str, str | None]
    max_rows_per_agent: int
    max_response_rows: int
    summary_name: str | None = None
    unverified_name: str | None = None  # None: the language's name
    unverified: bool = True
    funnel: bool = False  # short links are on (or clicks exist): opened columns are shown
    every_answer: bool = True  # answers.csv (every answer) is built: a local CSV output


def build_report(
    data: Dataset,
    spec: ReportSpec,
    *,
    now: datetime,
    unverified: Sequence[Any],
    kept: KeptRows | None = None,
) -> Report:
    """Every figure from one pass over the answers (:func:`~csat_hook.sync.metrics.compute`
    over the listed, headline, previous, weekly and monthly periods together). ``kept``: the
    answers' rows a runner kept from its last report, reused where their answers are the same
    objects, and replaced by this report's (:class:`~.answers.KeptRows`)."""
    texts = Texts(spec.language)
    today = local_day(now, spec.tz)
    headline, before = rolling(today, spec.headline_days), previous(today, spec.headline_days)
    week_periods = weeks(today, spec.trend_weeks)[::-1]
    month_periods = months(today, spec.trend_months)[::-1]
    wanted = [*spec.listed, headline, before, *week_periods, *month_periods]
    unique = list({p.key: p for p in wanted}.values())
    results = compute(data.answer_facts(), data.sent_facts(), unique, spec.settings, spec.tz)
    by_key: dict[str, PeriodResult] = {r.period.key: r for r in results}
    ctx = Context(
        texts=texts,
        data=data,
        settings=spec.settings,
        tz=spec.tz,
        names=display_names(data, texts),
        target=spec.target,
        low_rating=spec.low_rating,
        nps=spec.nps,
        templates=spec.templates,
        funnel=spec.funnel,
    )
    board = build_leaderboard(
        by_key[headline.key],
        by_key[before.key],
        name=ctx.names.__getitem__,
        team_name=ctx.team,
        min_n=spec.settings.min_n,
        unranked=no_agent_indexes(data),
    )
    # The latest answer, not the run time: a run that finds nothing new writes the same cells.
    latest = max((a.submitted_at for a in data.answers), default=None)
    summary, summary_csv = build_summary(
        ctx,
        board,
        headline,
        before,
        [by_key[p.key] for p in spec.listed],
        LocalTime(spec.tz)(latest) if latest else None,
        name=spec.summary_name or texts["summary"],
    )
    trends, trends_csv = build_trends(
        ctx,
        [by_key[p.key] for p in week_periods],
        [by_key[p.key] for p in month_periods],
        name=texts["trends"],
    )
    newest = Newest.of(ctx, kept)  # sorted and converted once for both kinds of tab
    responses, answers_csv = build_responses(
        ctx,
        name=texts["responses"],
        max_rows=spec.max_response_rows,
        every=spec.every_answer,
        newest=newest,
    )
    unverified_grid, unverified_csv = build_unverified(
        ctx, unverified, name=spec.unverified_name or texts["unverified"]
    )
    agent_tabs = build_agent_tabs(ctx, max_rows=spec.max_rows_per_agent, newest=newest)
    newest.done(ctx)
    # The sorted answers alone (the runner keeps them too), not ``newest``: its working state,
    # a slot per answer, would be held while the report is written, the run's peak of memory.
    ordered = newest.answers

    def relist(response_rows: int, agent_rows: int) -> tuple[Grid, list[Grid]]:
        # In the order sorted once above, its rows built anew: the kept rows are this
        # report's now (newest.done), and the next run's to reuse, not these.
        again = Newest(ordered, LocalTime(spec.tz))
        grid, _ = build_responses(
            ctx, name=texts["responses"], max_rows=response_rows, every=False, newest=again
        )
        return grid, build_agent_tabs(ctx, max_rows=agent_rows, newest=again)

    csv = [*summary_csv, trends_csv]
    if answers_csv is not None:
        csv.append(answers_csv)
    if spec.unverified:
        csv.append(unverified_csv)
    return Report(
        language=spec.language,
        summary=summary,
        trends=trends,
        responses=responses,
        agents=agent_tabs,
        unverified=unverified_grid if spec.unverified else None,
        csv=csv,
        listed=(spec.max_response_rows, spec.max_rows_per_agent),
        relist=relist,
    )
