"""Tabs of single answers: Responses (every credited answer, flat, for pivot tables and Looker
Studio), one tab per agent, and Unverified (answers credited to no one).

Newest first; the submission time is a real date-time, local to ``metrics.timezone``, whose
name is in the header; low ratings (``metrics.low_rating``) are highlighted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from collections.abc import Sequence
from datetime import datetime
from json import dumps
from operator import attrgetter
from operator import itemgetter
from typing import Any
from typing import cast

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

# The sort key, built in C: newest first, then the ticket, then what a row shows, so that the
# order is the same whatever order the dataset holds its answers in (a kept dataset, patched,
# holds them in another order than one built anew: KeptRows). Not quite: agent and team are
# indexes, which a patched dataset may number otherwise than one built anew (answers alike in
# everything before them, one ticket's two surveys answered at one instant, may then come in
# another order), and answers alike in all of these differ at most in their 0–10 answer (in
# the dataset's order, or with KeptRows the kept ones first). Either way only the order of
# rows alike but for those cells differs; a key that orders them too costs about a fifth of
# the sort (a pass over every answer's time after it, to find the ties).
_NEWEST = attrgetter(
    "submitted_at", "dialog_id", "rating", "comment", "helpdesk", "agent", "team", "channel"
)

UNVERIFIED_CSV = "unverified.csv"
# The kinds of tab whose rows a runner keeps between reports (:class:`KeptRows`): the only
# tabs an output can copy a row's last encoding of; every other tab's rows are made anew.
ROWS_KEPT = frozenset(("agent", "responses"))
# What the texts of the answers Unverified lists may take, in bytes as the value write carries
# them (JSON in UTF-8: a control character six bytes, a quote two; comments, form fields,
# rows): anyone can submit the public form any number of times with a made-up reference and a
# long comment, and a tab over output.gsheets.max_request_bytes (8 MB) failed every run's
# write. About 1 MB of text is what 5,000 usual ones take.
UNVERIFIED_TEXT_BYTES = 2_000_000


_AGENT = itemgetter(AnswerRecord._fields.index("agent"))  # in C, where attrgetter goes by name


def _newest(answers: Sequence[AnswerRecord], limit: int) -> list[AnswerRecord]:
    return sorted(answers, key=_NEWEST, reverse=True)[:limit]


Row = tuple[Cell, ...]


class KeptRows:
    """What one report made of its answers, kept by a runner for its next report: every
    answer newest first, and the rows its tabs showed, in that order (None where a row was
    not built: past the Responses tab's or an agent's row limit).

    A later report of a kept dataset (``patch_dataset``) holds the same answer objects for
    every answer that did not change (an answer is an immutable tuple, replaced when it
    changes): their rows are taken as they were and only the new answers' rows are built,
    and their order is the kept order with the new answers merged in (:func:`_merged`).
    Rows are lists beside the order, not a mapping by answer: a first sync holds them all at
    its peak of memory. A row also depends on what :meth:`shape_of` gives (the time zone,
    the agents' display names, the teams, the ticket links, the NPS column): rows kept under
    another shape are not used."""

    def __init__(self) -> None:
        self.newest: list[AnswerRecord] = []
        self.shape: tuple[object, ...] | None = None
        self.responses: list[Row | None] = []
        self.agents: list[Row | None] = []

    @staticmethod
    def shape_of(ctx: Context) -> tuple[object, ...]:
        """What a row holds besides its answer."""
        return (
            ctx.tz.key,
            ctx.nps,
            tuple(ctx.names),
            tuple(ctx.data.teams),
            tuple(sorted((k, v or "") for k, v in ctx.templates.items())),
            any(ctx.templates.get(a.helpdesk) for a in ctx.data.agents),
        )


def _merged(
    kept: list[AnswerRecord], answers: Sequence[AnswerRecord]
) -> tuple[list[AnswerRecord], list[int]]:
    """``answers`` newest first, as :func:`_newest` orders them, from ``kept`` (an earlier
    such order, some of whose answers are among ``answers`` as the same objects); beside
    each, its place in ``kept``, or -1 for an answer ``kept`` does not hold.

    Answers are told apart by ``id``: every object in ``kept`` and in ``answers`` is alive
    now, so two of them share an ``id`` only when they are one object. The new answers are
    sorted and each put where a binary search of the kept ones says (after the kept answers
    alike in every key field, as a stable sort of the kept order followed by the new answers
    puts it), the kept ones between copied as slices: a few thousand sort keys are made, not
    one per answer. Which are kept, and which kept are still there, is found on arrays of
    the ``id``s (a sort and a binary search in numpy): sets of a million ``id``s were ≈ 0.9 s
    of a later sync at 1,000,000 answers."""
    added = list(map(answers.__getitem__, _absent(answers, kept)))
    if len(kept) + len(added) == len(answers):  # every kept answer is still there
        still, places = kept, list(range(len(kept)))
    else:
        places = _held(kept, answers).nonzero()[0].tolist()
        still = list(map(kept.__getitem__, places))
    added.sort(key=_NEWEST, reverse=True)
    ordered: list[AnswerRecord] = []
    at: list[int] = []
    key, start, end = _NEWEST, 0, len(still)
    for new in added:
        new_key = key(new)
        low, high = start, end  # the first kept answer older than the new one, from start
        while low < high:
            middle = (low + high) // 2
            if key(still[middle]) >= new_key:
                low = middle + 1
            else:
                high = middle
        ordered += still[start:low]
        at += places[start:low]
        ordered.append(new)
        at.append(-1)
        start = low
    ordered += still[start:]
    at += places[start:]
    return ordered, at


def _held(items: Sequence[object], pool: Sequence[object]) -> Any:
    """Beside each of ``items``, whether ``pool`` holds it (a numpy array of booleans; by
    ``id``: every object of both is alive, so equal ``id``s are one object)."""
    import numpy as np  # imported when first used, as dataset.py does: not at a sync's peak

    ids = np.fromiter(map(id, items), dtype=np.int64, count=len(items))
    held = np.sort(np.fromiter(map(id, pool), dtype=np.int64, count=len(pool)))
    if not len(held):
        return np.zeros(len(items), dtype=bool)
    at = np.searchsorted(held, ids)
    at[at == len(held)] = 0  # past the last: compared with any, it is not there
    return held[at] == ids


def _absent(items: Sequence[object], pool: Sequence[object]) -> list[int]:
    """The positions in ``items`` of the objects that are not in ``pool``, ascending."""
    return (~_held(items, pool)).nonzero()[0].tolist()  # type: ignore[no-any-return]


def _low_ratings(ctx: Context, grid: Grid, first: int, end: int, column: int) -> None:
    if end > first:
        area = Area(first, 0, end, grid.width)
        grid.rules.append(Rule(RuleKind.LOW_RATING, area, ctx.low_rating, column=column))


class Newest:
    """Every answer newest first, with its submission time as the tabs show it: sorted once
    for the Responses tab and the agent tabs (the sort is stable, so an agent's answers taken
    from it are in the order sorting them alone gives), each time converted once and only
    when a tab shows it (at 1,000,000 answers the tabs show about half).

    With ``kept`` (:class:`KeptRows`), a row kept for an answer is reused (:meth:`places_of`), and
    :meth:`done` keeps this report's for the next."""

    def __init__(
        self,
        answers: list[AnswerRecord],
        when: LocalTime,
        kept: KeptRows | None = None,
        places: list[int] | None = None,
    ) -> None:
        self.answers = answers
        self._when = when
        self._shown: list[datetime | None] = [None] * len(answers)
        self.kept = kept
        count = len(answers) if kept is not None else 0
        # Rows built or reused, by place (the Responses tab's: as many as it lists).
        self.responses: list[Row | None] = []
        self.agents: list[Row | None] = [None] * count
        self._places = places  # each answer's place in the kept order, or -1

    @classmethod
    def of(cls, ctx: Context, kept: KeptRows | None = None) -> Newest:
        answers = ctx.data.answers
        if kept is None or not kept.newest or kept.shape != KeptRows.shape_of(ctx):
            return cls(_newest(answers, len(answers)), LocalTime(ctx.tz), kept)
        ordered, places = _merged(kept.newest, answers)
        return cls(ordered, LocalTime(ctx.tz), kept, places)

    def shown(self, index: int) -> datetime:
        """The submission time of ``answers[index]``, local and to the minute."""
        shown = self._shown[index]
        if shown is None:
            shown = self._shown[index] = self._when(self.answers[index].submitted_at)
        return shown

    def places_of(self, rows: list[Row | None]) -> tuple[Sequence[int], list[Row | None]]:
        """Each answer's place in the kept order (-1: none), and ``rows`` (kept rows, by that
        place) padded so that every place indexes them: ``rows[place]`` is the row kept for
        the answer, or None."""
        places = self._places
        if places is None:
            return [-1] * len(self.answers), []
        missing = len(self.kept.newest) - len(rows) if self.kept else 0
        return places, rows + [None] * missing if missing > 0 else rows

    def done(self, ctx: Context) -> None:
        """Keep this report's order and rows for the next (when given ``kept``)."""
        kept = self.kept
        if kept is None:
            return
        kept.newest, kept.shape = self.answers, KeptRows.shape_of(ctx)
        kept.responses, kept.agents = self.responses, self.agents
        self._places = None


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
    nps = ctx.nps
    places, kept_rows = newest.places_of(newest.kept.responses if newest.kept else [])
    rows = _reused(_by_place(kept_rows), places[: len(listed)], len(listed))
    for index in _missing(rows):
        a = listed[index]
        head: Row = (
            newest.shown(index),
            names[a.agent],
            teams[a.team] or None,
            a.helpdesk,
            a.channel or None,
            a.dialog_id,
            a.rating,
        )
        tail = (a.comment or None, ticket_link(templates, a.helpdesk, a.dialog_id))
        rows[index] = (*head, a.nps, *tail) if nps else head + tail
    if newest.kept is not None:
        newest.responses += rows
    built = cast(list[Row], rows)  # every None was built above
    grid = Grid(name, "responses")  # ROWS_KEPT
    placed = Canvas(grid).table(Table(columns, built[:max_rows]), share=True)
    _low_ratings(ctx, grid, placed.first, placed.end, 6)
    return grid, Table(columns, built, csv_name="answers.csv") if every else None


def build_agent_tabs(ctx: Context, *, max_rows: int, newest: Newest | None = None) -> list[Grid]:
    """One tab per agent with answers, newest first, at most ``max_rows`` answers; ``newest``
    is :meth:`Newest.of` ``ctx`` (computed here when not given).

    An agent is (helpdesk, key): a tab whose key another helpdesk's agent also has (among
    every agent of the dataset, with answers or only surveys: a key, once shared, stays
    shared) carries its helpdesk (:attr:`Grid.helpdesk`), and the tabs are in the order of
    name, key and helpdesk, never of whose answer came last."""
    t = ctx.texts
    newest = newest or Newest.of(ctx)
    by_agent = _positions_by_agent(newest.answers, len(ctx.data.agents), max_rows)
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
    nps = ctx.nps
    made = newest.agents if newest.kept is not None else None
    places, kept_rows = newest.places_of(newest.kept.agents if newest.kept else [])
    # The rows of an agent's positions are picked in C, and only the missing ones built.
    lookup = _by_place(kept_rows)
    remember = made.__setitem__ if made is not None else None
    for agent in sorted(
        by_agent,
        key=lambda i: (
            is_no_agent(agents[i]),
            agents[i].name.casefold(),
            agents[i].key,
            agents[i].helpdesk,
        ),
    ):
        indexes = by_agent[agent]
        rows = _reused(lookup, map(places.__getitem__, indexes), len(indexes))
        for at in _missing(rows):
            index = indexes[at]
            a = ordered[index]
            row: Row = (shown(index), a.dialog_id, a.rating)
            if nps:
                row += (a.nps,)
            row += (a.comment or None,)
            if with_links:
                row += (ticket_link(ctx.templates, a.helpdesk, a.dialog_id),)
            rows[at] = row
        if remember is not None:
            deque(map(remember, indexes, rows), maxlen=0)  # made[index] = row, in C
        who = agents[agent]
        helpdesk = who.helpdesk if who.key in shared else None
        # No agent recorded: titled with the label alone (and its helpdesk when several
        # helpdesks have such answers: the key "" is then shared).
        title = t["no_agent"] if is_no_agent(who) else who.name
        grid = Grid(title, "agent", key=who.key, helpdesk=helpdesk)  # ROWS_KEPT
        built = cast(list[Row], rows)  # every None was built above
        placed = Canvas(grid).table(Table(columns, built), share=True)
        _low_ratings(ctx, grid, placed.first, placed.end, 2)
        grids.append(grid)
    return grids


def _by_place(kept_rows: list[Row | None]) -> list[Row | None]:
    """The kept rows by their place in the kept order, and a None after them: place -1 (an
    answer no kept row is for: see :meth:`Newest.places_of`) picks it."""
    return [*kept_rows, None]


def _reused(lookup: list[Row | None], places: Iterable[int], count: int) -> list[Row | None]:
    """The kept row at each of ``places`` (``count`` of them) in ``lookup``
    (:func:`_by_place`), None where there is none; picked in C (a loop per answer was a
    fifth of the Responses tab's time in a later sync)."""
    if len(lookup) == 1:  # nothing kept
        return [None] * count
    return list(map(lookup.__getitem__, places))


def _missing(rows: list[Row | None]) -> list[int]:
    """The positions of the Nones in ``rows``, ascending: found by ``list.index`` (a scan in
    C) where they are few, as in a later sync (nearly every row kept, only the new ones
    None); by one pass where they are many, as in a first sync (every row None)."""
    nones = rows.count(None)
    if nones == len(rows):
        return list(range(nones))
    if nones * 4 > len(rows):
        return [at for at, row in enumerate(rows) if row is None]
    found: list[int] = []
    at = -1
    try:
        while True:
            at = rows.index(None, at + 1)
            found.append(at)
    except ValueError:
        return found


def _positions_by_agent(
    answers: Sequence[AnswerRecord], agent_count: int, max_rows: int
) -> dict[int, list[int]]:
    """Each agent's positions in ``answers`` (agent index → positions, ascending), the first
    ``max_rows`` of each; an agent without answers is not a key. Grouped by a stable sort of
    the agent indexes in numpy: a loop per answer was ≈ 0.1 s of a later sync at 100,000."""
    if not answers:
        return {}
    import numpy as np  # imported when first used, as dataset.py does: not at a sync's peak

    who = np.fromiter(map(_AGENT, answers), dtype=np.int64, count=len(answers))
    order = np.argsort(who, kind="stable")  # positions grouped by agent, each ascending
    counts = np.bincount(who, minlength=agent_count)
    ends = np.cumsum(counts)
    grouped: dict[int, list[int]] = {}
    for agent in np.flatnonzero(counts).tolist():
        end = int(ends[agent])
        start = end - int(counts[agent])
        grouped[agent] = order[start : min(end, start + max_rows)].tolist()
    return grouped


def _shared_keys(agents: Sequence[Agent]) -> set[str]:
    """The agent keys more than one helpdesk's agents have."""
    helpdesks: dict[str, str] = {}
    shared = set()
    for agent in agents:
        if helpdesks.setdefault(agent.key, agent.helpdesk) != agent.helpdesk:
            shared.add(agent.key)
    return shared


def build_unverified(ctx: Context, rows_in: Sequence[Any], *, name: str) -> tuple[Grid, Table]:
    """Answers that could not be credited, under a line that says so, and ``unverified.csv``:
    ``rows_in`` (newest first) as far as their texts fit :data:`UNVERIFIED_TEXT_BYTES`, a row
    that does not fit in what is left passed over (one long comment hides no other row).

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
        for r in _within_budget(rows_in)
    ]
    table = Table(columns, rows, csv_name=UNVERIFIED_CSV)
    grid = Grid(name, "unverified", frozen_rows=2)
    canvas = Canvas(grid)
    canvas.line([t["unverified_note"]], Look.NOTE)
    canvas.table(table)
    return grid, table


def _within_budget(rows_in: Sequence[Any]) -> list[Any]:
    """``rows_in`` whose texts, added up in order, fit :data:`UNVERIFIED_TEXT_BYTES`, each
    counted as JSON escapes it: by its UTF-8 bytes, a control character counted as six."""
    kept, left = [], UNVERIFIED_TEXT_BYTES
    for row in rows_in:
        size = sum(
            len(dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass"))
            for text in (row.comment, row.field_agent, row.field_ticket, row.source_ref)
            if text
        )
        if size <= left:
            kept.append(row)
            left -= size
    return kept
