"""The report as plain tables, the same for Google Sheets, xlsx and CSV.

* ``Summary``: per period, the overall row, one row per team and one per agent (ranked
  agents first), with surveys sent, answers, response rate, CSAT %, its 95% Wilson interval,
  mean, rank, the min-n flag and the distribution.
* One table per agent with answers: date, ticket, rating, comment and (when the helpdesk has a
  ``ticket_url_template``) a ticket link, newest first.
* ``Unverified``: answers that could not be credited, with the reason.

Cells are str, int, float or None (blank): numbers stay numbers, never NaN.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from csat_hook.sync.dataset import AnswerRecord
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.metrics import PeriodResult
from csat_hook.sync.metrics import Settings
from csat_hook.sync.metrics import Stats

Cell = str | int | float | None
NO_TEAM = "(no team)"


@dataclass
class Table:
    """``name`` is the wanted tab title before an output cleans it (for an agent table, the
    agent's name; ``key`` is the agent key); ``frozen`` is the number of header rows."""

    name: str
    kind: str
    rows: list[list[Cell]]
    frozen: int = 1
    key: str | None = None


@dataclass
class Report:
    summary: Table
    agents: list[Table]
    unverified: Table | None
    answers: Table | None  # every answer in one table, built only for the CSV export

    def sheets(self) -> list[Table]:
        """Tables in tab order: Summary, the agents, Unverified."""
        tail = [self.unverified] if self.unverified is not None else []
        return [self.summary, *self.agents, *tail]


def _pct(value: float | None, digits: int = 1) -> Cell:
    return None if value is None else round(100 * value, digits)


def _num(value: float | None, digits: int) -> Cell:
    return None if value is None else round(value, digits)


def summary_header(settings: Settings) -> list[Cell]:
    scores: list[Cell] = [str(s) for s in range(settings.scale_min, settings.scale_max + 1)]
    return [
        "Period",
        "From",
        "To",
        "Level",
        "Name",
        "Agent key",
        "Helpdesk",
        "Surveys sent",
        "Answers",
        "Response rate %",
        "CSAT %",
        "CSAT 95% low %",
        "CSAT 95% high %",
        "Mean",
        "Rank",
        "Below min n",
        *scores,
    ]


def _stats_cells(stats: Stats) -> list[Cell]:
    interval = stats.interval
    return [
        stats.sent,
        stats.answers,
        _pct(stats.response_rate),
        _pct(stats.csat),
        _pct(interval[0] if interval else None),
        _pct(interval[1] if interval else None),
        _num(stats.mean, 2),
        stats.rank,
        "yes" if stats.below_min_n else "",
        *stats.distribution,
    ]


def build_summary(
    results: Sequence[PeriodResult], data: Dataset, settings: Settings, *, generated: str
) -> Table:
    note = (
        f"Scale {settings.scale_min}–{settings.scale_max}; CSAT % = share of "
        f"{settings.top_box}–{settings.scale_max}; agents with fewer than {settings.min_n} "
        "answers are not ranked; each period is the cohort of surveys sent in it."
    )
    rows: list[list[Cell]] = [["CSAT report", generated, note], [], summary_header(settings)]
    for result in results:
        period = result.period
        first, last = period.first_date(), period.last_date()
        lead: list[Cell] = [
            period.label,
            first.isoformat() if first else None,
            last.isoformat() if last else None,
        ]
        rows.append([*lead, "Overall", "All agents", None, None, *_stats_cells(result.overall)])
        for team, stats in sorted(result.teams.items(), key=lambda kv: data.teams[kv[0]]):
            name = data.teams[team] or NO_TEAM
            rows.append([*lead, "Team", name, None, None, *_stats_cells(stats)])
        for agent, stats in sorted(result.agents.items(), key=lambda kv: _agent_order(kv, data)):
            who = data.agents[agent]
            rows.append([*lead, "Agent", who.name, who.key, who.helpdesk, *_stats_cells(stats)])
    return Table("Summary", "summary", rows, frozen=3)


def _agent_order(item: tuple[int, Stats], data: Dataset) -> tuple[int, int, int, str]:
    agent, stats = item
    ranked = 0 if stats.rank is not None else 1
    return (ranked, stats.rank or 0, -stats.answers, data.agents[agent].name.casefold())


def ticket_link(templates: Mapping[str, str | None], helpdesk: str, dialog_id: str) -> str | None:
    """The ticket URL from the helpdesk's ``ticket_url_template`` (as the adapters build it)."""
    template = templates.get(helpdesk)
    return template.replace("{ticket}", dialog_id) if template else None


def build_agent_tables(
    data: Dataset, *, tz: ZoneInfo, templates: Mapping[str, str | None], max_rows: int
) -> list[Table]:
    """One table per agent with answers, newest first, at most ``max_rows`` answers."""
    by_agent: dict[int, list[AnswerRecord]] = defaultdict(list)
    for answer in data.answers:
        by_agent[answer.agent].append(answer)
    with_links = any(templates.get(a.helpdesk) for a in data.agents)
    when = LocalTime(tz)
    header: list[Cell] = ["Submitted", "Ticket", "Rating", "Comment"]
    if with_links:
        header.append("Ticket link")
    tables = []
    order = sorted(by_agent, key=lambda i: (data.agents[i].name.casefold(), data.agents[i].key))
    for agent in order:
        answers = sorted(by_agent[agent], key=lambda a: a.submitted_at, reverse=True)[:max_rows]
        rows: list[list[Cell]] = [list(header)]
        for a in answers:
            row: list[Cell] = [when(a.submitted_at), a.dialog_id, a.rating, a.comment]
            if with_links:
                row.append(ticket_link(templates, a.helpdesk, a.dialog_id))
            rows.append(row)
        who = data.agents[agent]
        tables.append(Table(who.name, "agent", rows, key=who.key))
    return tables


def build_answers_table(
    data: Dataset, *, tz: ZoneInfo, templates: Mapping[str, str | None]
) -> Table:
    """Every credited answer in one table (the CSV export), newest first."""
    rows: list[list[Cell]] = [
        [
            "Submitted",
            "Agent",
            "Agent key",
            "Helpdesk",
            "Team",
            "Ticket",
            "Rating",
            "Comment",
            "Ticket link",
        ]
    ]
    when = LocalTime(tz)
    for a in sorted(data.answers, key=lambda a: a.submitted_at, reverse=True):
        who = data.agents[a.agent]
        rows.append(
            [
                when(a.submitted_at),
                who.name,
                who.key,
                a.helpdesk,
                data.teams[a.team] or None,
                a.dialog_id,
                a.rating,
                a.comment,
                ticket_link(templates, a.helpdesk, a.dialog_id),
            ]
        )
    return Table("Answers", "answers", rows)


def build_unverified_table(name: str, rows_in: Sequence[Any], *, tz: ZoneInfo) -> Table:
    rows: list[list[Cell]] = [
        [
            "Submitted",
            "Reason",
            "Rating",
            "Comment",
            "Agent (as typed)",
            "Ticket (as typed)",
            "Source row",
        ]
    ]
    for r in rows_in:
        rows.append(
            [
                local_time(r.submitted_at, tz) if r.submitted_at else None,
                r.reason,
                r.rating,
                r.comment or None,
                r.field_agent or None,
                r.field_ticket or None,
                r.source_ref,
            ]
        )
    return Table(name, "unverified", rows)


class LocalTime:
    """``YYYY-MM-DD HH:MM`` in ``tz``; the UTC offset is cached per UTC hour (a report formats
    every answer's time, and zone conversion is the slow part)."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._offsets: dict[int, timedelta] = {}

    def __call__(self, moment: datetime) -> str:
        hour = int(moment.timestamp() // 3600)
        offset = self._offsets.get(hour)
        if offset is None:
            offset = moment.astimezone(self.tz).utcoffset() or timedelta(0)
            self._offsets[hour] = offset
        t = (moment + offset).replace(tzinfo=None)
        return "%04d-%02d-%02d %02d:%02d" % (t.year, t.month, t.day, t.hour, t.minute)  # noqa: UP031 (faster than format)


def local_time(moment: datetime, tz: ZoneInfo) -> str:
    return LocalTime(tz)(moment)


def build_report(
    results: Sequence[PeriodResult],
    data: Dataset,
    settings: Settings,
    *,
    tz: ZoneInfo,
    templates: Mapping[str, str | None],
    max_rows_per_agent: int,
    unverified: Sequence[Any],
    unverified_name: str | None,
    summary_name: str,
    with_answers: bool = True,
) -> Report:
    # Not the run time: a run that finds nothing new must leave the sheet exactly as it was.
    latest = max((a.submitted_at for a in data.answers), default=None)
    generated = f"latest answer {local_time(latest, tz)} ({tz.key})" if latest else "no answers yet"
    summary = build_summary(results, data, settings, generated=generated)
    summary.name = summary_name
    unverified_table = (
        build_unverified_table(unverified_name, unverified, tz=tz) if unverified_name else None
    )
    return Report(
        summary=summary,
        agents=build_agent_tables(data, tz=tz, templates=templates, max_rows=max_rows_per_agent),
        unverified=unverified_table,
        answers=build_answers_table(data, tz=tz, templates=templates) if with_answers else None,
    )
