"""The report in Google Sheets: one structure write (more only past ``max_request_bytes`` of
looks, about 2,400 agents' tabs at the default) and at most two value writes.

1. One ``spreadsheets.batchUpdate`` (only when needed) adds missing tabs, sized to their data
   plus headroom, renames an agent's tab whose name changed and a tab of the report's own
   set whose title changed (the language: "Summary" → "Сводка"; a configured title:
   ``summary_tab: Report`` → ``Overview``; :mod:`.sheets_tabs`), records on each own tab its
   kind and title (developer metadata on the sheet, ``csat-hook.tab``: when it is added,
   renamed, or first written by this version), grows grids that are too small, deletes the
   report's own tabs it no longer writes (below), and sets how the tabs look: number
   formats, frozen rows, widths, conditional rules (:mod:`.sheets_format`) and charts
   (:mod:`.sheets_charts`). A grid is shrunk only where it is a list of answers (the
   Responses, Unverified and agents' tabs) over twice the rows it needs plus headroom
   (:data:`SLACK`), or over them at all when the values or the spreadsheet's cells would
   not fit otherwise, before any text is cut or fewer answers listed: every row of a grid
   is written, and blank rows of a grid an earlier run grew were padding that no lower
   limit shortened. Only a list's oldest rows go (it is newest first), rows this write
   blanks, never its frozen rows and the one after; after the looks, or first when a tab
   added or grown before them would go over the cell limit (:attr:`Plan.cuts`). A failed
   run leaves the last report's newest rows, none of them wrong, and every other tab as it
   was. The looks are sent only when they differ from what the last run set: a digest of
   them is kept in the spreadsheet's developer metadata (``csat-hook.report-format``), and
   a run whose digest, charts and rule counts match sends none. Each batch is atomic: all
   of it or nothing.
2. One ``values.batchUpdate`` (two when the payload is over ``output.gsheets.max_request_bytes``;
   split between whole tabs) writes every tab from A1, padded with empty strings to the
   tab's whole grid. That overwrites old extents without a separate clear, and since each
   request is atomic, a failed write leaves every tab as it was. ``valueInputOption=RAW``:
   a comment starting with ``=`` stays text; numbers are numbers (fractions under a percent
   format) and date-times are serial numbers under a date-time format. A text longer than a
   cell holds is cut (:mod:`.cells`): Google refuses the whole request otherwise. Values that
   do not fit two requests have their longest texts cut (:mod:`.sheets_fit`), then their
   lists of answers (the Responses tab, each agent's) cut to the newest that fit
   (:meth:`SheetsOutput._listed_fewer`).

The report writes only into tabs csat-hook owns (:class:`.sheets_tabs.Owned`: a sheetId it
makes, or one it recorded writing): any other tab's title is avoided with " 2", as an agent
whose name is a manager's tab's title or the form's linked responses tab's gets "<title> 2".

Each tab of the report is found by what the tab is before its title is looked at: an agent's
by the sheetIds made from the agent's key, a tab of its own set by its kind (its record, or an
id made for a title of its kind); a title finds a tab only when nothing claims the tab so.
Titles are typed by helpdesk users and change with the language: a name-only agent "Summary"
has the tab "Summary" while the report is in Russian, and the report switched to English must
not take it for its Summary. A title a tab of the report wants that another's tab holds goes
to the report's own tab, the agent's becoming "<title> 2" (renamed in the same batch, the
renames ordered so no two tabs hold one title after any request, a swap through a temporary
title). A tab of ours that no tab of the report claims but whose identity is known keeps
its title: the team's Alerts tab kept is avoided with " 2" as a foreign tab's; a departed
name-only agent's tab is avoided by agents' tabs, and renamed " 2" when one of the report's
own tabs wants its title ("Summary" after a language switch).

A tab csat-hook owns and no longer writes would stay as the last run left it, looking
current. What becomes of it depends on what it held:

* a tab of the report's own set (Summary, Trends, Responses, Unverified, Alerts), known as
  such by :class:`.sheets_tabs.Kinds` (its record names its kind and the title it still
  holds; a tab made before records: its id made for a title of its kind, its title one of
  them), is renamed to the title its kind has now (the language or a configured title
  changed), else deleted: one more of a kind the report writes elsewhere ("Сводка" beside
  "Summary", as versions before this one left a language switch), or of a kind the report
  no longer has (``output.gsheets.unverified: false``). Its contents are the report's,
  rebuilt from the database on any run. Not the Alerts tab once ``alerts.tab`` is off (with
  alert rules off it is still written while alerts are stored): its "Handled" column is the
  team's record (the edits since the last run not even read back), kept as it is. The
  deletes go first in the structure batch, so the cells they free count for the tabs it
  adds (Google checks its cell limit after each request); last when they are every tab
  there is, so the spreadsheet always keeps a sheet (Google refuses to delete the last one);
* an agent's tab whose agent's name changed is renamed (:class:`.sheets_tabs.Renamed`);
* an agent's tab whose agent is no longer in the report at all is kept as it is. An agent's
  tab lists every answer ever credited to them, whatever the periods: an agent with no answer
  lately keeps their tab, written every run; one leaves the report only when none of their
  answers is credited to them any more. The tab then holds what a manager read there,
  which a deletion would take away without a word; a stale tab is the lesser harm;
* a tab whose kind nothing says (the earliest versions let Google number theirs; one made
  under a configured title changed before this version recorded it; one a person renamed)
  cannot be told from an agent's: kept too. The team's Alerts tab a person renamed
  ("Alerts (old)") still carries its record, which names the title it had: its "Handled"
  column is read once more (:meth:`SheetsOutput.renamed_tabs`), and the write takes the
  record off, so its stale cells are never read again;
* a tab csat-hook does not own is never written, renamed or deleted.
The ids of the tabs written are handed to ``keep`` before anything is sent (the caller
records them: ``sync_outputs.tabs``). The responses tab of the form (when the output is the
same spreadsheet and the sync's source) is protected: never ours, and a plan that would
touch it is refused.

A structure write whose answer was lost (a timeout, a reset or a 5xx, after which Google may
have applied it or not) is not sent again as it is: a second pass of its rule deletes (by
index) would delete the rules it added, its addChart (under our id) would be refused, its
developer metadata created twice. The output reads the metadata again and plans from what is
there: nothing more to send when the batch was applied (one more read), the same batch when
it was not; up to ``google.max_retries`` times, after the session's backoff. An addSheet
refused because its title is taken ("A sheet with the name ... already exists") or a
deleteSheet whose tab is gone (a manager's change meanwhile) is planned again likewise,
once; a second refusal is an error.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from array import array
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import date
from datetime import datetime
from datetime import timedelta
from itertools import repeat
from typing import Any
from typing import TypeVar

import orjson
from gspread.utils import absolute_range_name

from csat_hook.errors import SyncError
from csat_hook.sync.google.api import OutcomeUnknownError
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.google.api import TabExistsError
from csat_hook.sync.google.api import TabGoneError
from csat_hook.sync.google.api import values_body_size
from csat_hook.sync.layout import Cell
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import column_letters
from csat_hook.sync.outputs.cells import SHEETS_CELL_MAX
from csat_hook.sync.outputs.cells import fitted_cell
from csat_hook.sync.outputs.digest import contents_digest
from csat_hook.sync.outputs.sheets_charts import chart_requests
from csat_hook.sync.outputs.sheets_expect import expectation
from csat_hook.sync.outputs.sheets_expect import needed
from csat_hook.sync.outputs.sheets_expect import still_holds
from csat_hook.sync.outputs.sheets_fit import MIN_CUT
from csat_hook.sync.outputs.sheets_fit import cut_grid
from csat_hook.sync.outputs.sheets_fit import cut_limit
from csat_hook.sync.outputs.sheets_fit import long_texts
from csat_hook.sync.outputs.sheets_format import Formatter
from csat_hook.sync.outputs.sheets_tabs import SPARES
from csat_hook.sync.outputs.sheets_tabs import TAB
from csat_hook.sync.outputs.sheets_tabs import Kinds
from csat_hook.sync.outputs.sheets_tabs import Mark
from csat_hook.sync.outputs.sheets_tabs import Owned
from csat_hook.sync.outputs.sheets_tabs import Renamed
from csat_hook.sync.outputs.sheets_tabs import agent_ids
from csat_hook.sync.outputs.sheets_tabs import agent_parts
from csat_hook.sync.outputs.sheets_tabs import delete
from csat_hook.sync.outputs.sheets_tabs import mark
from csat_hook.sync.outputs.sheets_tabs import marks
from csat_hook.sync.outputs.sheets_tabs import new_id
from csat_hook.sync.outputs.sheets_tabs import rename
from csat_hook.sync.outputs.sheets_tabs import unmark
from csat_hook.sync.report.alerts import ALERTS_KIND
from csat_hook.sync.report.answers import ROWS_KEPT
from csat_hook.sync.texts import LANGUAGES
from csat_hook.sync.texts import Texts
from csat_hook.sync.titles import SHEETS_MAX
from csat_hook.sync.titles import agent_title
from csat_hook.sync.titles import clean
from csat_hook.sync.titles import numbered
from csat_hook.sync.titles import table_titles
from csat_hook.sync.titles import unique_titles

MAX_VALUE_REQUESTS = 2
MAX_RELISTS = 6  # listings tried with fewer rows (SheetsOutput._listed_fewer)
_LISTS = ("responses", "agent")  # the tabs that list answers, which a listing shortens


@dataclass(frozen=True)
class Listing:
    """How to list fewer answers (:meth:`SheetsOutput.write`): the rows listed as asked
    (the Responses tab's, each agent tab's) and the report's grids listing fewer
    (:meth:`~csat_hook.sync.report.Report.gsheets_listing`)."""

    listed: tuple[int, int]
    relist: Callable[[int, int], Sequence[Grid]]


def _rows_of(tabs: Sequence[TabPlan], kind: str) -> int:
    """The most rows a grid of ``kind`` has (its header included): at least 1."""
    return max((len(p.grid.rows) for p in tabs if p.grid.kind == kind), default=1)


# The length texts were cut to in a Sheets write, and how many cells (SheetsOutput._fitted).
TextsCut = tuple[int, int]


def _scaled(
    response_rows: int, agent_rows: int, counts: Sequence[int], scales: tuple[float, float]
) -> tuple[int, int]:
    """The rows the Responses tab and each agent's tab list at ``scales`` of the rows they
    list now (``counts``: each agent tab's answers), at least one each. The agents' limit
    lists that share of the rows their tabs list now: scaling the limit itself cuts only the
    busiest agents, so with one agent far over the others every try cut little, and the tries
    ran out though a listing fits."""
    response_scale, agent_scale = scales
    return (
        max(1, int(response_rows * response_scale)),
        max(1, min(int(agent_rows * agent_scale), _limit_for(counts, agent_scale))),
    )


def _limit_for(counts: Sequence[int], scale: float) -> int:
    """The most rows per list that lists of ``counts`` rows, each cut to it, hold in all at
    most ``scale`` of their rows now (a few lists long, many short: the long ones are cut,
    then every one); 0 when there are no lists or one row each is too many."""
    room = sum(counts) * scale
    left = len(counts)
    for count in sorted(counts):
        if count * left > room:
            return int(room // left)
        room -= count
        left -= 1
    return max(counts, default=0)


def _shortened_by(kind: str) -> str:
    """What to change for a tab of ``kind`` over one request of values alone."""
    if kind == ALERTS_KIND:
        return (
            "lower alerts.tab_rows (the latest alerts the tab lists), or raise "
            "max_request_bytes (Google takes a request of up to 10 MB)"
        )
    if kind in _LISTS:
        return (
            "lower output.gsheets.max_rows_per_agent (agent tabs) or max_response_rows (the "
            "Responses tab), or raise max_request_bytes (another tab: Google takes a request "
            "of up to 10 MB)"
        )
    if kind == "unverified":
        return (
            "set output.gsheets.unverified: false (the answers not credited are still kept, "
            "and listed in the local files when they are written), or raise "
            "max_request_bytes (Google takes a request of up to 10 MB)"
        )
    return "raise max_request_bytes (Google takes a request of up to 10 MB)"


def _cut_entry(cut: TextsCut | None) -> dict[str, Any]:
    """What a write's result says of texts cut to fit its requests (nothing when none was)."""
    if cut is None:
        return {}
    return {"texts_cut": {"characters": cut[0], "cells": cut[1]}}


def _listed_entry(listed: tuple[int, int] | None) -> dict[str, Any]:
    """What a write's result says of a shortened listing (nothing when it was not)."""
    if listed is None:
        return {}
    return {"rows_listed": {"responses": listed[0], "per_agent": listed[1]}}


FORMAT_KEY = "csat-hook.report-format"  # developer metadata: the digest of the looks set
SERIAL_EPOCH = datetime(1899, 12, 30)
_DAY = timedelta(days=1)  # made once: serial() runs for every date-time cell of a report
# New tabs go after the Summary in this order; tabs whose tables only grow take open-ended
# formats (no new format write when rows are added).
TAB_INDEX = {"summary": 0, "trends": 1, "responses": 2}
GROWING = ("responses", "agent", "unverified")
# The report's own tabs titled in its language (texts.py), by kind (Grid.kind).
WORDED = ("summary", "trends", "responses", "unverified")
# Own tabs kept, frozen, when the report no longer writes them (renamed when it writes them
# under another title): the Alerts tab holds the team's edits.
KEPT_KINDS = frozenset({ALERTS_KIND})

T = TypeVar("T")


def grown(rows: int) -> int:
    """Rows to give a tab holding ``rows``: room to grow, so the grid is resized rarely."""
    return rows + max(20, rows // 5)


# A list's grid more than this many times what it is given (grown) is cut back to that: every
# row of the grid is written, blank or not, and a grid an earlier run grew (a limit since
# lowered, answers erased) was padding that no limit shortened. Under it, a grid is left as
# it is, so a list that shrinks by a row does not cost a structure request each run.
SLACK = 2


def _slack(plan: TabPlan) -> bool:
    """True when ``plan``'s grid is a list's with rows over what it is given (:func:`grown`)."""
    return plan.exists and plan.grid.kind in GROWING and plan.rows > grown(needed(plan.grid)[0])


def serial(value: datetime | date) -> float | int:
    """A naive local date-time or a date as a Sheets serial number (days since 1899-12-30;
    the spreadsheet's time zone plays no part in it)."""
    if isinstance(value, datetime):
        return round((value - SERIAL_EPOCH) / _DAY, 8)
    return (value - SERIAL_EPOCH.date()).days


# Cell types written as they are (checked by exact class: bool is not among them and goes
# through sheet_value, which returns it unchanged); text as it is up to this many characters
# (within SHEETS_CELL_MAX however it is counted), longer text through sheet_value.
_PLAIN = frozenset((str, int, float))
_SHORT = SHEETS_CELL_MAX // 2


def sheet_value(value: Cell) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return fitted_cell(value, SHEETS_CELL_MAX)
    if isinstance(value, datetime | date):
        return serial(value)
    return value


def locale_language(locale: str) -> str:
    """The report's language for a spreadsheet locale: ``ru``/``ru_RU`` → ru, else en."""
    return "ru" if locale.casefold().split("_")[0] == "ru" else "en"


@dataclass
class TabPlan:
    title: str
    grid: Grid
    rows: int
    cols: int
    exists: bool
    sheet_id: int


@dataclass
class Plan:
    tabs: list[TabPlan]
    structure: list[dict[str, Any]]  # tabs to add, grids to grow
    looks: list[dict[str, Any]]  # formats, rules, charts (empty: already as wanted)
    expected: dict[str, Any]  # what the spreadsheet holds once written (sheets_expect.py)
    owned: list[int]  # the tabs to record as csat-hook's: these, and the recorded still there
    deleted: list[int]  # the report's own tabs it no longer writes (deleteSheet in structure)
    # Lists' grids cut back (SheetsOutput.plan). After the looks as a rule: rows deleted may
    # take a person's conditional rule with them, and the looks delete the rules by their
    # count. First (cuts_first) when a tab added or grown before them would take the
    # spreadsheet over its cells: Google checks its limit after each request.
    cuts: list[dict[str, Any]] = field(default_factory=list)
    tight: bool = False  # every list's grid cut to what it is given (SheetsOutput.plan)
    cuts_first: bool = False

    @property
    def requests(self) -> list[dict[str, Any]]:
        if self.cuts_first:
            return self.cuts + self.structure + self.looks
        return self.structure + self.looks + self.cuts


@dataclass
class _KeptTab:
    """One tab as the last write encoded it: its rows (held: they are found again by
    ``id``, which no other live object can have while they are held), its columns, the
    ValueRange's bytes, and where each row's encoding starts in them (one more: where the
    row after the last would start, past its separator)."""

    rows: list[Sequence[Cell]]
    cols: int
    data: bytes
    starts: array[int]


class KeptEncoding:
    """The tabs a runner's last write encoded, for its next write to copy the encoding of
    every row it holds again (the same row object: a kept dataset's answers keep their rows,
    report/answers.py: KeptRows) instead of encoding it anew. Only tabs encoded by orjson
    (:func:`_fast_range`) are kept; a tab's rows are reused under the same title and number of
    columns (the padding is in each row's encoding)."""

    def __init__(self) -> None:
        self.tabs: dict[str, _KeptTab] = {}


class SheetsOutput:
    """Writes report grids into one spreadsheet. ``kept``: the encodings of the last write
    of the runner's, reused and replaced by this one's (:class:`KeptEncoding`)."""

    def __init__(
        self,
        api: SheetsApi,
        spreadsheet_id: str,
        *,
        protected: Iterable[int] = (),
        owned: Iterable[int] = (),
        titles: Mapping[str, Iterable[str]] | None = None,
        max_request_bytes: int = 8_000_000,
        kept: KeptEncoding | None = None,
    ) -> None:
        """``titles``: the titles the report's own tabs of a kind (``Grid.kind``) may have
        beside the ones it gives them now and the language's: the configured ones, the
        Alerts tab's (a kind the report may no longer have)."""
        self.api = api
        self.spreadsheet_id = spreadsheet_id
        self.protected = set(protected)
        self.owned = set(owned)  # the sheetIds recorded as csat-hook's (sheets_tabs.Owned)
        self.titles = {kind: list(names) for kind, names in (titles or {}).items()}
        self.max_request_bytes = max_request_bytes
        self.kept = kept

    def language(self) -> str:
        """The language of the spreadsheet's locale (its metadata, read once)."""
        metadata = self.api.metadata(self.spreadsheet_id)
        return locale_language(str(metadata.get("properties", {}).get("locale", "")))

    def kinds(self, grids: Sequence[Grid] = (), marked: Mapping[Any, Mark] | None = None) -> Kinds:
        """The report's own tabs by kind (:class:`.sheets_tabs.Kinds`): under the title each
        tab's record names (``marked``: :func:`.sheets_tabs.marks`), else under the titles
        either language gives them, the configured ones and those of ``grids``."""
        titles: dict[str, set[str]] = {ALERTS_KIND: set()}
        for language in LANGUAGES:
            texts = Texts(language)
            for kind in WORDED:
                titles.setdefault(kind, set()).add(texts[kind])
        for kind, names in self.titles.items():
            titles.setdefault(kind, set()).update(names)
        for grid in grids:
            if grid.key is None:
                titles.setdefault(grid.kind, set()).add(grid.name)
        return Kinds({kind: sorted(names) for kind, names in titles.items()}, marked)

    def plan(self, grids: Sequence[Grid], language: str, *, tight: bool = False) -> Plan:
        """Titles, ids and grid sizes per grid, and the structure and format requests.

        A list's grid (the Responses, Unverified and agents' tabs) over :data:`SLACK` times
        what it is given (:func:`grown`) is cut back to that; with ``tight``, any list's grid
        over it is (the values or the cells do not fit as the grids are: :meth:`_values`).
        A plan over the spreadsheet's cells with a list's grid over what it is given is made
        again ``tight``."""
        metadata = self.api.metadata(self.spreadsheet_id)
        sheets = metadata.get("sheets", [])
        existing = {p["title"].casefold(): p for p in (s.get("properties", {}) for s in sheets)}
        taken = [p["title"] for p in existing.values() if p.get("sheetId") in self.protected]
        marked = marks(sheets)
        kinds = self.kinds(grids, marked)
        agents = [(g.key, g.helpdesk) for g in grids if g.key is not None]
        ours = Owned(self.owned, agents, self.protected, kinds)
        # Each grid's tab by what it is first (an agent's by the ids of its key, an own tab by
        # its kind), whatever its title: a title is typed by helpdesk users and changes with
        # the language, and a tab found by it alone may be another's ("Summary", a name-only
        # agent's, when the report's Summary comes back to that title).
        claims = _claims(grids, existing.values(), kinds, self.protected)
        claimed = {int(p["sheetId"]) for p in claims.values()}
        # Tabs of ours no grid claims but whose identity says what they are, never taken by
        # title: a kind the report no longer writes (the team's Alerts tab kept), whose title
        # is avoided with " 2" as a foreign tab's; a departed name-only agent's, whose title
        # agents' tabs avoid and the report's own tabs take, the agent's tab renamed " 2".
        unclaimed = [p for p in existing.values() if int(p["sheetId"]) not in claimed]
        kept = [p for p in unclaimed if kinds.of(p)]
        departed = [p for p in unclaimed if not kinds.of(p) and ours(p) and _departed(p)]
        foreign = [p["title"] for p in existing.values() if not ours(p)]
        foreign += [p["title"] for p in kept]
        titles = _titles(grids, foreign, claims, existing, claimed, departed)
        moves: list[tuple[int, str, str]] = []  # (sheetId, title now, title wanted)
        wanted = {t.casefold() for t in titles}
        held = wanted | set(existing)
        for props in departed:
            if str(props["title"]).casefold() in wanted:
                [aside] = unique_titles([_departed(props) or "-"], SHEETS_MAX, held)
                held.add(aside.casefold())
                moves.append((int(props["sheetId"]), str(props["title"]), aside))
                claimed.add(int(props["sheetId"]))  # never another grid's by its title
        used_ids = {p.get("sheetId") for p in existing.values()}
        renamed = Renamed(
            {t: p for t, p in existing.items() if int(p["sheetId"]) not in claimed},
            {t.casefold() for t in titles},
            self.protected,
            ours.recorded,
            ours.helpdesks,
        )
        plans: list[TabPlan] = []
        requests: list[dict[str, Any]] = []
        cuts: list[dict[str, Any]] = []
        slack = 1 if tight else SLACK
        for index, (title, grid, before) in enumerate(
            zip(titles, grids, _befores(grids), strict=True)
        ):
            need_rows, need_cols = needed(grid)
            props = claims.get(index)
            if props is None:
                props = existing.get(title.casefold())
                if props is not None and int(props["sheetId"]) in claimed:
                    props = None  # another grid's tab, renamed away from this title below
            if props is None:
                if grid.key is not None:
                    props = renamed.tab(grid.key, grid.helpdesk, before)
                else:
                    props = renamed.own(clean(grid.name, SHEETS_MAX))
                    if props is None:
                        props = renamed.kind(grid.kind, kinds)
                if props is not None:
                    claimed.add(int(props["sheetId"]))
            if props is not None and str(props["title"]).casefold() != title.casefold():
                moves.append((int(props["sheetId"]), str(props["title"]), title))
            if props is None:
                rows = grown(need_rows)
                sheet_id = new_id(
                    agent_parts(grid.key, grid.helpdesk)
                    if grid.key is not None
                    else (TAB, title.casefold()),
                    used_ids,
                )
                used_ids.add(sheet_id)
                requests.append(_add_sheet(sheet_id, title, grid, rows, need_cols))
                plans.append(TabPlan(title, grid, rows, need_cols, False, sheet_id))
                continue
            if props.get("sheetId") in self.protected:
                raise SyncError(f"refusing to write tab {title!r}: it holds the form responses")
            if not ours(props):  # its title is avoided: never
                raise SyncError(f"refusing to write tab {title!r}: csat-hook did not make it")
            grid_props = props.get("gridProperties", {})
            rows, cols = int(grid_props.get("rowCount", 0)), int(grid_props.get("columnCount", 0))
            # Only rows past what a list is given go: newest first, they are its oldest
            # answers, which this write blanks (a write that then fails leaves the last
            # report's newest rows, none of them wrong). Never the frozen rows and one more:
            # Google refuses a grid with no row but frozen ones, and a person may freeze more
            # than the looks do.
            given = max(grown(need_rows), int(grid_props.get("frozenRowCount", 0)) + 1)
            cut = grid.kind in GROWING and rows > given and rows > grown(need_rows) * slack
            if rows < need_rows or cols < need_cols:
                # A grid cut and widened: its columns alone here, its rows with the cuts
                # (each request names only what it changes, so neither undoes the other).
                rows = rows if cut else max(rows, grown(need_rows))
                cols = max(cols, need_cols)
                sizes = {"columnCount": cols} if cut else {"rowCount": rows, "columnCount": cols}
                requests.append(_resized(props["sheetId"], sizes))
            if cut:
                rows = given
                cuts.append(_resized(props["sheetId"], {"rowCount": rows}))
            plans.append(TabPlan(title, grid, rows, cols, True, int(props["sheetId"])))
        # The renames first, each once its new title is free: before the tabs added under a
        # title a renamed tab leaves, and in an order Google accepts (it refuses a title two
        # tabs would hold after any one request of the batch).
        requests = _renames(moves, existing.values()) + requests
        # Each own tab recorded as its kind under its title (after the tab's addSheet or
        # rename), so a later run knows it whatever title the settings then give its kind;
        # an agent's tab carries no record (one found by its key with a record loses it).
        for tab_plan in plans:
            found = marked.get(tab_plan.sheet_id)
            if tab_plan.grid.key is None:
                requests += mark(tab_plan.sheet_id, tab_plan.grid.kind, tab_plan.title, found)
            else:
                requests += unmark(found)
        # A tab of a kept kind (the team's Alerts tab) a person renamed since the last write
        # ("Alerts (old)", a snapshot) is theirs from now on: its record goes, so that the
        # next run no longer reads its "Handled" column (read once, by this run: its cells
        # would undo the edits made in the new tab since). :meth:`renamed_tabs`.
        planned = {p.sheet_id for p in plans}
        for props, found in _renamed_by_hand(sheets, self.protected):
            if int(props["sheetId"]) not in planned:
                requests += unmark(found)
        # First, so that the cells they free are free before a tab is added or grown (Google
        # checks its cell limit after each request); last, after the tabs added, when they
        # are every tab there is (Google refuses to delete the last one). An Alerts tab
        # turned off is kept: its "Handled" column is the team's own record (those edited
        # since the last run not read back yet), not the report's to drop.
        left = [p for p in renamed.left(kinds) if KEPT_KINDS.isdisjoint(kinds.of(p))]
        deleted = [int(p["sheetId"]) for p in left] if plans else []
        deletes = [delete(sheet_id) for sheet_id in deleted]
        if len(deleted) < len(existing):
            requests = deletes + requests
        else:
            requests = deletes[:-1] + requests + deletes[-1:]
        # Google checks its cell limit after each request: the grids cut go after the looks
        # (rows cut may take a person's conditional rule, which the looks delete by their
        # count), or first when a tab added or grown before them would be over the limit.
        cuts_first = False
        try:
            _check_cells(plans, existing.values(), deleted)
            if _over_on_the_way(requests + cuts, existing.values()):
                cuts_first = True
                if _over_on_the_way(cuts + requests, existing.values()):
                    raise SyncError(
                        "the report's structure write would take the spreadsheet over the "
                        f"{CELLS_MAX:,} cells it holds before the tabs it deletes are gone "
                        "(Google checks after each request): delete the report's old tabs by "
                        "hand, or write the report to a spreadsheet of its own "
                        "(output.gsheets.spreadsheet_id)"
                    )
        except SyncError:
            if tight or not any(map(_slack, plans)):
                raise
            return self.plan(grids, language, tight=True)
        looks, digest, rules = self._looks(plans, metadata, Texts(language))
        tabs = [(p.title, p.sheet_id, p.grid) for p in plans]
        present = {p.get("sheetId") for p in existing.values()} - set(deleted)
        owned = sorted({p.sheet_id for p in plans} | (ours.recorded & present))
        expected = expectation(tabs, rules, digest, taken)
        return Plan(plans, requests, looks, expected, owned, deleted, cuts, tight, cuts_first)

    def own_tab(self, title: str, kind: str) -> str | None:
        """The title of the tab of ours that an own tab of the report titled ``title`` and of
        ``kind`` (the team's Alerts tab) is written to, if it exists: the tab of ``kind``
        (:class:`.sheets_tabs.Kinds`: its record, or an id made for a title of the kind, " 2"
        ... included), the one :meth:`plan` takes (under ``title``, else its " 2" ..., else
        the first). Only by what it is: with no tab of ``kind`` yet, a tab merely titled
        ``title`` is another's (a name-only agent "Alerts"'s, whose tab :meth:`plan` then
        renames "Alerts 2"), and its cells are none of the report's."""
        sheets = self.api.metadata(self.spreadsheet_id).get("sheets", [])
        props = [s.get("properties", {}) for s in sheets]
        kinds = self.kinds(marked=marks(sheets))
        of_kind = _of_kind([p for p in props if p.get("sheetId") not in self.protected], kinds)
        first = _first(of_kind.get(kind, []), title)
        return str(first["title"]) if first is not None else None

    def columns_of(self, title: str) -> int | None:
        """How many columns the grid of the tab ``title`` has (the metadata read this run),
        None when no tab has that title."""
        for sheet in self.api.metadata(self.spreadsheet_id).get("sheets", []):
            props = sheet.get("properties", {})
            if props.get("title") == title:
                return int(props.get("gridProperties", {}).get("columnCount", 0))
        return None

    def renamed_tabs(self, kind: str) -> list[str]:
        """The titles of the tabs of ``kind`` (the team's Alerts tab) that a person renamed
        since the report last wrote them, in the spreadsheet's order: tabs of ours whose
        record (:class:`.sheets_tabs.Mark`) still names another title. A write takes that
        record off (:meth:`plan`): the tab is then the person's snapshot, never read again,
        its title a new name for nothing of the report's."""
        sheets = self.api.metadata(self.spreadsheet_id).get("sheets", [])
        return [
            str(props["title"])
            for props, found in _renamed_by_hand(sheets, self.protected)
            if found.record is not None and found.record[0] == kind
        ]

    def still_holds(self, expected: dict[str, Any]) -> bool:
        """Whether the spreadsheet still looks as a write left it (``expected`` in what
        :meth:`write` returned): a later run may then skip writing the same report."""
        metadata = self.api.metadata(self.spreadsheet_id)
        return still_holds(metadata, expected, self.protected, FORMAT_KEY)

    def _looks(
        self, plans: list[TabPlan], metadata: dict[str, Any], texts: Texts
    ) -> tuple[list[dict[str, Any]], str, list[int]]:
        """The format requests (none when the spreadsheet already looks like this), the
        looks' digest, and each tab's number of conditional format rules."""
        formatter = Formatter(texts)
        by_id = {s.get("properties", {}).get("sheetId"): s for s in metadata.get("sheets", [])}
        requests: list[dict[str, Any]] = []
        desired: list[Any] = []
        counts: list[int] = []
        in_place = True
        for plan in plans:
            tab = by_id.get(plan.sheet_id, {})
            rules = len(tab.get("conditionalFormats", []))
            charts = {c.get("chartId") for c in tab.get("charts", [])}
            looks = formatter.tab_requests(
                plan.sheet_id, plan.grid, open_end=plan.grid.kind in GROWING
            )
            drawn, chart_desired = chart_requests(plan.sheet_id, plan.grid, charts)
            wanted_rules = sum(1 for r in looks if "addConditionalFormatRule" in r)
            counts.append(wanted_rules)
            in_place = (
                in_place and rules == wanted_rules and not any("addChart" in r for r in drawn)
            )
            deletes = [
                {"deleteConditionalFormatRule": {"sheetId": plan.sheet_id, "index": 0}}
            ] * rules
            requests += deletes + looks + drawn
            desired += [plan.title, looks, chart_desired]
        digest = (
            "sha256:"
            + hashlib.sha256(
                json.dumps(desired, sort_keys=True, ensure_ascii=False).encode()
            ).hexdigest()
        )
        stored = [
            m for m in metadata.get("developerMetadata", []) if m.get("metadataKey") == FORMAT_KEY
        ]
        if in_place and stored and stored[0].get("metadataValue") == digest:
            return [], digest, counts
        if stored:
            requests.append(
                {
                    "updateDeveloperMetadata": {
                        "dataFilters": [{"developerMetadataLookup": {"metadataKey": FORMAT_KEY}}],
                        "developerMetadata": {"metadataValue": digest},
                        "fields": "metadataValue",
                    }
                }
            )
        else:
            requests.append(
                {
                    "createDeveloperMetadata": {
                        "developerMetadata": {
                            "metadataKey": FORMAT_KEY,
                            "metadataValue": digest,
                            "location": {"spreadsheet": True},
                            "visibility": "DOCUMENT",
                        }
                    }
                }
            )
        return requests, digest, counts

    def write(
        self,
        grids: Sequence[Grid],
        language: str,
        *,
        last_written: str | None = None,
        keep: Callable[[list[int]], None] | None = None,
        listing: Listing | None = None,
    ) -> dict[str, Any]:
        """Create, resize and format tabs, then rewrite every tab in place; returns what was
        done, with ``digest`` (the contents written) and ``expected`` (the looks written).
        When the tabs need no structure or format change and the contents are
        ``last_written``, the values are not written again. ``keep`` is given the sheetIds
        to record as csat-hook's (:attr:`Plan.owned`) before any request is sent: a tab
        renamed is no longer known by its title's id, and must be known by the next run.

        ``listing``: the same grids listing fewer answers, for values that do not fit
        :data:`MAX_VALUE_REQUESTS` requests as they are (:meth:`_listed_fewer`); what was
        written then says how many (``rows_listed``)."""
        record = keep or (lambda _owned: None)

        def keep_owned(owned: list[int]) -> None:
            record(owned)
            # Ours from now on for this output too: a plan made again after a lost answer
            # sees a tab this one renamed under a title its id was not made from.
            self.owned.update(owned)

        first = self.plan(grids, language)
        keep_owned(first.owned)
        grids, plan, encoded, listed, cut = self._values(first, grids, language, listing)
        if plan is not first:
            keep_owned(plan.owned)
        digest = contents_digest(item for _, item in encoded)
        if not plan.requests and digest == last_written:
            return {
                "kind": "gsheets",
                "spreadsheet_id": self.spreadsheet_id,
                "tabs": len(plan.tabs),
                "tabs_created": 0,
                "tabs_deleted": 0,
                "formatted": False,
                "cells": 0,
                "write_requests": 0,
                "unchanged": True,
                "digest": digest,
                "expected": plan.expected,
                **_listed_entry(listed),
                **_cut_entry(cut),
            }
        chunks = self._chunks(encoded, plan.tabs)  # checks sizes before anything is written
        created = sum(not p.exists for p in plan.tabs)
        deleted = len(plan.deleted)
        formatted = bool(plan.looks)
        structure_writes = 0
        refused = lost = 0
        while True:
            try:
                for batch in self._batches(plan.requests):
                    structure_writes += 1
                    self.api.update_structure(self.spreadsheet_id, batch)
                break
            except (TabExistsError, TabGoneError):
                # Our own addSheet or deleteSheet, applied but its answer lost (or a tab added
                # or deleted meanwhile): plan again from the tabs as they are now, once.
                if refused:
                    raise
                refused += 1
            except OutcomeUnknownError as exc:
                # Applied or not, nobody knows: sent again as it is, its rule deletes would
                # take the rules it added, its addChart be refused, its metadata created
                # twice. Plan again from what is there instead (nothing left to send when it
                # was applied), as many times as the session would have sent it again.
                if lost >= self.api.max_retries:
                    raise OutcomeUnknownError(
                        f"{exc.message}: no answer that says whether the report's structure "
                        f"write was applied, {lost + 1} times (planned again from the "
                        "spreadsheet each time)",
                        http_status=exc.http_status,
                        reason=exc.reason,
                        retryable=True,
                    ) from exc
                # Not before the wait a 5xx asked for (Retry-After, RetryInfo), if it did.
                self.api.pause(lost, exc.retry_after)
                lost += 1
            plan = self.plan(grids, language, tight=plan.tight)
            keep_owned(plan.owned)
            encoded, cut = self._fitted(plan.tabs)
            digest = contents_digest(item for _, item in encoded)
            chunks = self._chunks(encoded, plan.tabs)
            formatted = formatted or bool(plan.looks)
            deleted = max(deleted, len(plan.deleted))  # a lost answer: then none left
        for chunk in chunks:
            self.api.write_values(self.spreadsheet_id, chunk)
        return {
            "kind": "gsheets",
            "spreadsheet_id": self.spreadsheet_id,
            "tabs": len(plan.tabs),
            "tabs_created": created,
            "tabs_deleted": deleted,
            "formatted": formatted,
            "cells": sum(p.rows * p.cols for p in plan.tabs),
            "write_requests": len(chunks) + structure_writes,
            "digest": digest,
            "expected": plan.expected,
            **_listed_entry(listed),
            **_cut_entry(cut),
        }

    def check(
        self, grids: Sequence[Grid], language: str, *, listing: Listing | None = None
    ) -> dict[str, Any]:
        """What :meth:`write` would do, nothing sent (a dry run): the tabs, the structure
        requests, and the values as they would go (their texts cut, fewer answers listed:
        ``rows_listed``) in ``value_requests`` requests of ``value_bytes`` in all. Raises the
        :class:`SyncError` :meth:`write` raises for values that fit no request, so a dry
        run says what a run would (the tabs' metadata is read, as a write reads it)."""
        kept, self.kept = self.kept, None  # the next write's encodings are left as they are
        try:
            first = self.plan(grids, language)
            _, plan, encoded, listed, cut = self._values(first, grids, language, listing)
            chunks = self._chunks(encoded, plan.tabs)
        finally:
            self.kept = kept
        return {
            "tabs": len(plan.tabs),
            "tabs_created": sum(not p.exists for p in plan.tabs),
            "tabs_deleted": len(plan.deleted),
            "structure_requests": len(plan.requests),
            "value_requests": len(chunks),
            "value_bytes": sum(len(data) for _, data in encoded),
            **_listed_entry(listed),
            **_cut_entry(cut),
        }

    def _values(
        self, plan: Plan, grids: Sequence[Grid], language: str, listing: Listing | None
    ) -> tuple[
        Sequence[Grid], Plan, list[tuple[str, bytes]], tuple[int, int] | None, TextsCut | None
    ]:
        """The grids, their plan and each tab's values (encoded once: the digest of what
        would be sent, the bytes sent) that :meth:`write` sends for ``plan`` (of ``grids``):
        as they are, their texts cut (:meth:`_fitted`), or listing fewer answers when
        ``listing`` allows it (:meth:`_listed_fewer`: then the rows listed, and the plan of
        the grids listing them); last, the texts cut (:meth:`_fitted`)."""
        encoded, cut = self._fitted(plan.tabs)
        fits = cut is None and self._fit([len(data) for _, data in encoded])
        if not fits and any(map(_slack, plan.tabs)):
            # Blank rows of grids an earlier run grew go before any text or answer does.
            plan = self.plan(grids, language, tight=True)
            encoded, cut = self._fitted(plan.tabs)
        if listing is not None and not self._fit([len(data) for _, data in encoded]):
            fewer = self._listed_fewer(plan, encoded, listing, language)
            if fewer is not None:
                return fewer
        return grids, plan, encoded, None, cut

    def _fitted(self, plans: list[TabPlan]) -> tuple[list[tuple[str, bytes]], TextsCut | None]:
        """:meth:`_encoded`, with the longest texts cut (:mod:`.sheets_fit`) when the values
        would not fit :data:`MAX_VALUE_REQUESTS` requests of ``max_request_bytes``; as
        :meth:`_encoded` gives them when they fit, or when no cut makes them fit
        (:meth:`_chunks` then says which limit to change). Second: the length the texts
        were cut to and how many cells were cut (None: none)."""
        encoded = self._encoded(plans)
        if self._fit([len(data) for _, data in encoded]):
            return encoded, None
        texts = {p.title: long_texts(p.grid) for p in plans}
        limit = cut_limit(
            [len(data) for _, data in encoded], [texts[title] for title, _ in encoded], self._fit
        )
        while limit is not None:
            cut = {
                p.title: self._value_range(replace(p, grid=cut_grid(p.grid, limit)))
                for p in plans
                if texts[p.title]
            }
            trial = [(title, cut.get(title, data)) for title, data in encoded]
            if self._fit([len(data) for _, data in trial]):
                if self.kept is not None:  # a kept tab's bytes are of its rows whole
                    for title in cut:
                        self.kept.tabs.pop(title, None)
                count = sum(len(text) > limit for tab in texts.values() for text in tab)
                return trial, (limit, count)
            # The estimate was short of the encoding (escapes it did not count): a tenth less.
            limit = None if limit == MIN_CUT else max(MIN_CUT, limit - limit // 10)
        return encoded, None

    def _listed_fewer(
        self,
        plan: Plan,
        encoded: list[tuple[str, bytes]],
        listing: Listing,
        language: str,
    ) -> (
        tuple[Sequence[Grid], Plan, list[tuple[str, bytes]], tuple[int, int], TextsCut | None]
        | None
    ):
        """The report listing fewer answers, so that its values fit :data:`MAX_VALUE_REQUESTS`
        requests: the grids, their plan, their values and the rows listed (the Responses
        tab's, each agent tab's); None when no listing of at least one row fits (the write
        then fails saying which limits to lower, as :meth:`_chunks` does).

        A report too large for Google's requests was a failed run, every run, until someone
        lowered a limit: the figures, every other tab and the files are whole, and only the
        two lists of answers are cut to what fits, newest kept, each step scaled by how far
        the values are over (a tenth more, for what an estimate misses), at most
        :data:`MAX_RELISTS` times. The tabs' grids are planned for the rows listed.

        Each listing is encoded as :meth:`_fitted` encodes it: its longest texts cut when
        that makes it fit, so a report needing both (long comments in a tab that lists no
        answers, the Alerts tab, and more rows than the requests carry) is written. The
        steps are scaled from the tabs' sizes as encoded, or, when the tabs that list no
        answers fill the requests alone, with their texts cut as far as they may be
        (:meth:`_floor_sizes`)."""
        kinds = {p.title: p.grid.kind for p in plan.tabs}
        asked = listing.listed
        # As many as the tabs list now (their answers, the header row aside): a limit above
        # every agent's count cuts nothing.
        start = (
            min(asked[0], _rows_of(plan.tabs, "responses") - 1),
            min(asked[1], _rows_of(plan.tabs, "agent") - 1),
        )
        response_rows, agent_rows = (max(1, rows) for rows in start)
        room = MAX_VALUE_REQUESTS * self.max_request_bytes
        for _ in range(MAX_RELISTS):
            sizes = {title: len(data) for title, data in encoded}
            if sum(size for title, size in sizes.items() if kinds[title] not in _LISTS) >= room:
                # The tabs that list no answers fill the requests alone: only their texts cut
                # make room. Sized as cut as far as they may be then, and only then: a cut
                # is made only when it makes the whole fit, and steps sized from cuts not made
                # were too small for six tries.
                sizes = self._floor_sizes(plan.tabs, encoded)
            lists = [size for title, size in sizes.items() if kinds[title] in _LISTS]
            listed = sum(lists)
            fixed = sum(sizes.values()) - listed
            if listed == 0 or fixed >= room:
                return None
            counts = [len(p.grid.rows) - 1 for p in plan.tabs if p.grid.kind == "agent"]
            scales = self._scales(sizes, kinds, room - fixed)
            rows = _scaled(response_rows, agent_rows, counts, scales)
            if rows == (response_rows, agent_rows):
                # A list already at one row chosen to be cut: the other is cut instead.
                rows = _scaled(response_rows, agent_rows, counts, (0.9, 0.9))
                if rows == (response_rows, agent_rows):
                    return None  # one row each does not fit
            response_rows, agent_rows = rows
            grids = listing.relist(response_rows, agent_rows)
            # Tight only when the grids as they were did not fit (_values): else a list's grid
            # would be cut each time its listing moves by a row, and grown again after.
            plan = self.plan(grids, language, tight=plan.tight)
            encoded, cut = self._fitted(plan.tabs)
            if self._fit([len(data) for _, data in encoded]):
                # A list that was not cut says its limit (the warning names only cut ones).
                said = (
                    response_rows if response_rows < start[0] else asked[0],
                    agent_rows if agent_rows < start[1] else asked[1],
                )
                return grids, plan, encoded, said, cut
        return None

    def _scales(
        self, sizes: Mapping[str, int], kinds: Mapping[str, str], room: int
    ) -> tuple[float, float]:
        """How much of its rows the Responses tab and the agents' tabs each list in the next
        try (``sizes``: each tab's bytes by title, ``room``: what the tabs that list no
        answers leave of the requests): each list cut so that its largest tab fits a request
        alone, then both alike when they are over ``room`` in all, a tenth more each for
        what an estimate misses. A list that fits is not cut (only the Responses tab over a
        request cut the agents' tabs too, and the warning asked for a lower limit than
        needed); when both would keep more than nine tenths, the larger list (in bytes) lists a
        tenth less, as whole tabs packed in order may not fit where their sum does."""
        per_request = self.max_request_bytes * 0.9
        scales, totals = [], []
        held = 0.0
        for kind in ("responses", "agent"):
            tabs = [size for title, size in sizes.items() if kinds[title] == kind]
            scale = min(1.0, per_request / max(tabs)) if tabs else 1.0
            scales.append(scale)
            totals.append(sum(tabs))
            held += scale * totals[-1]
        whole = 1.0 if held <= room else room * 0.9 / held
        response_scale, agent_scale = scales[0] * whole, scales[1] * whole
        if min(response_scale, agent_scale) > 0.9:
            # Whole tabs packed in order do not fit where their sum does: the larger list
            # lists a tenth less.
            return (0.9, 1.0) if totals[0] >= totals[1] else (1.0, 0.9)
        return response_scale, agent_scale

    def _floor_sizes(
        self, plans: list[TabPlan], encoded: list[tuple[str, bytes]]
    ) -> dict[str, int]:
        """Each tab's bytes (by title, in the order of ``encoded``: those of ``plans``) with
        its texts cut as far as :meth:`_fitted` cuts them (:data:`MIN_CUT`); a tab without
        such texts as encoded."""
        sizes = {title: len(data) for title, data in encoded}
        for plan in plans:
            if long_texts(plan.grid):
                floor = replace(plan, grid=cut_grid(plan.grid, MIN_CUT))
                sizes[plan.title] = min(sizes[plan.title], len(self._value_range(floor)))
        return sizes

    def _fit(self, sizes: list[int]) -> bool:
        """True when tabs of ``sizes`` bytes go in :data:`MAX_VALUE_REQUESTS` requests."""
        limit = self.max_request_bytes
        return max((values_body_size([size]) for size in sizes), default=0) <= limit and (
            len(_value_groups(sizes, sizes, limit)) <= MAX_VALUE_REQUESTS
        )

    def _encoded(self, plans: list[TabPlan]) -> list[tuple[str, bytes]]:
        """Each tab's ValueRange in the order written: the Summary last (if a second value
        request fails, the tabs of the first are complete). With :attr:`kept`, the rows
        encoded before are copied, and the kept tabs become this write's."""
        ordered = sorted(plans, key=lambda p: p.grid.kind == "summary")
        kept = self.kept
        if kept is None:
            return [(p.title, self._value_range(p)) for p in ordered]
        tabs: dict[str, _KeptTab] = {}
        encoded = []
        for plan in ordered:
            before = kept.tabs.get(plan.title)
            starts = array("i")
            data = _fast_range(
                plan, before if before is not None and before.cols == plan.cols else None, starts
            )
            if data is None:
                data = self._value_range(plan)
            elif plan.grid.kind in ROWS_KEPT:
                tabs[plan.title] = _KeptTab(plan.grid.rows, plan.cols, data, starts)
            encoded.append((plan.title, data))
        kept.tabs = tabs
        return encoded

    @staticmethod
    def _value_range(plan: TabPlan) -> bytes:
        """The tab's ValueRange as UTF-8 JSON, encoded once: its size decides the split into
        requests and the same bytes are sent (a first sync writes ~1.5 million cells).

        The bytes ``orjson.dumps`` gives for the whole ValueRange (compact: no spaces) when
        orjson writes every cell as ``json.dumps`` would (:func:`_fast_range`); else those
        of ``json.dumps`` (``ensure_ascii=False``; escaped to ASCII when some text holds a
        lone surrogate, which only a ``\\u`` escape makes valid JSON), which also refuses
        NaN. Either is the same JSON value, made :data:`ROWS_PER_BLOCK` rows at a time: the
        whole tab's converted rows, its JSON text and its bytes were three copies held at
        once, a first sync's peak of memory with a Responses tab of 100,000 rows."""
        fast = _fast_range(plan)
        if fast is not None:
            return fast
        try:
            return _encoded_range(plan, ascii_only=False)
        except UnicodeEncodeError:
            return _encoded_range(plan, ascii_only=True)

    def _batches(self, requests: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """The structure and format requests in order, as few ``batchUpdate`` bodies as keep
        each under max_request_bytes: a tab's looks are about 3 KB, so 2,500 agents' tabs
        would make one 8 MB body (Google refuses bodies over 10 MB). Each body is atomic and
        the looks' digest goes last, so a run that fails between two sends them all again,
        planned from what the spreadsheet then holds (rules deleted by their count, charts
        updated in place)."""
        # Each as requests encodes it, with the ", " that joins it to the next.
        sizes = [len(json.dumps(request)) + 2 for request in requests]
        return _packed(requests, sizes, self.max_request_bytes - len(b'{"requests": []}'))

    def _chunks(self, data: list[tuple[str, bytes]], plans: Sequence[TabPlan]) -> list[list[bytes]]:
        """Split between whole tabs so each request stays under max_request_bytes. A tab
        over one request alone is named, with the limit that shortens it (by its kind, from
        ``plans``): one that lists no answers first, as no shorter listing helps it."""
        kinds = {p.title: p.grid.kind for p in plans}
        # sorted() keeps the order within each group.
        for title, item in sorted(data, key=lambda pair: kinds[pair[0]] in _LISTS):
            needed = values_body_size([len(item)])  # the tab alone in a request
            if needed > self.max_request_bytes:
                raise SyncError(
                    f"tab {absolute_range_name(title)} needs {needed} bytes, more than "
                    f"output.gsheets.max_request_bytes; {_shortened_by(kinds[title])}"
                )
        items = [item for _, item in data]
        chunks = _value_groups(items, [len(item) for item in items], self.max_request_bytes)
        if len(chunks) > MAX_VALUE_REQUESTS:
            needed = sum(len(item) for item in items)
            raise SyncError(
                f"the report's values take {needed:,} bytes, more than two requests of "
                f"output.gsheets.max_request_bytes ({self.max_request_bytes:,}) carry; lower "
                "output.gsheets.max_rows_per_agent (the newest answers listed on each agent's "
                "tab) or max_response_rows (the Responses tab)"
            )
        return chunks


def _claims(
    grids: Sequence[Grid], tabs: Iterable[dict[str, Any]], kinds: Kinds, protected: set[int]
) -> dict[int, dict[str, Any]]:
    """Each grid's tab (by the grid's index) found by what the tab is, whatever its title: an
    agent's by the sheetIds :func:`.sheets_tabs.agent_ids` gives the agent, an own tab by its
    kind (:class:`.sheets_tabs.Kinds`): of several of a kind, the one under the grid's title,
    else under one of its " 2" ... (:func:`.sheets_tabs.spare`), else the first in the
    spreadsheet's order. A protected tab is never claimed."""
    by_id = {p.get("sheetId"): p for p in tabs if p.get("sheetId") not in protected}
    of_kind = _of_kind(by_id.values(), kinds)
    claims: dict[int, dict[str, Any]] = {}
    taken: set[Any] = set()
    for index, grid in enumerate(grids):
        if grid.key is not None:
            found = next((by_id[i] for i in agent_ids(grid.key, grid.helpdesk) if i in by_id), None)
        else:
            free = [p for p in of_kind.get(grid.kind, []) if p.get("sheetId") not in taken]
            found = _first(free, clean(grid.name, SHEETS_MAX))
        if found is not None and found.get("sheetId") not in taken:
            taken.add(found.get("sheetId"))
            claims[index] = found
    return claims


def _renamed_by_hand(
    sheets: Iterable[dict[str, Any]], protected: set[int]
) -> list[tuple[dict[str, Any], Mark]]:
    """The tabs of a kept kind (:data:`KEPT_KINDS`) whose record names a title other than
    theirs (compared as Google compares titles): renamed by a person since the report
    last wrote them. Each with its :class:`.sheets_tabs.Mark`."""
    by_id = {
        s.get("properties", {}).get("sheetId"): s.get("properties", {})
        for s in sheets
        if isinstance(s, dict)
    }
    found = []
    for sheet_id, mark_found in marks(sheets).items():
        props = by_id.get(sheet_id)
        record = mark_found.record
        if props is None or sheet_id in protected or record is None:
            continue
        kind, title = record
        if kind in KEPT_KINDS and str(props.get("title", "")).casefold() != title.casefold():
            found.append((props, mark_found))
    return found


def _of_kind(tabs: Iterable[dict[str, Any]], kinds: Kinds) -> dict[str, list[dict[str, Any]]]:
    """The tabs of each kind of the report's own set, in the spreadsheet's order."""
    found: dict[str, list[dict[str, Any]]] = {}
    for props in tabs:
        for kind in kinds.of(props):
            found.setdefault(kind, []).append(props)
    return found


def _first(tabs: Sequence[dict[str, Any]], title: str) -> dict[str, Any] | None:
    """Of tabs of one kind, the one under ``title``, else under its " 2" ... " 9" (given
    beside tabs not ours: :func:`.sheets_tabs.spare`), lowest first, else the first."""
    order = [title.casefold()] + [numbered(title, n, SHEETS_MAX).casefold() for n in SPARES]
    rank = {folded: n for n, folded in enumerate(order)}
    return min(
        tabs, key=lambda p: rank.get(str(p.get("title", "")).casefold(), len(order)), default=None
    )


def _departed(props: dict[str, Any]) -> str | None:
    """The key of the name-only agent whose tab ``props`` is, told by its sheetId (the one
    :func:`.sheets_tabs.agent_ids` gives that key) and its title: the key, or the key with
    the " 2" ... " 9" it was renamed to beside a tab of the report's own set. None: not
    such a tab (any other agent's tab says nothing of its key without the report's grids)."""
    title = str(props.get("title", ""))
    base, _, number = title.rpartition(" ")
    for key in (title, base) if number.isdigit() and int(number) in SPARES else (title,):
        if props.get("sheetId") in agent_ids(key, None):
            return key
    return None


def _titles(
    grids: Sequence[Grid],
    foreign: list[str],
    claims: Mapping[int, dict[str, Any]],
    existing: Mapping[str, dict[str, Any]],
    claimed: set[int],
    departed: Sequence[dict[str, Any]] = (),
) -> list[str]:
    """The grids' titles (:func:`~csat_hook.sync.titles.table_titles`) avoiding ``foreign``
    and any tab that would still hold a title a claimed tab is to be renamed to: one no grid
    claims, whose title only the grid that has a tab of its own wants. The ``departed``
    name-only agents' tabs' titles are avoided by agents' tabs only: such a tab is renamed
    out of the way of the report's own."""
    avoided = list(foreign)
    yielding = [str(p["title"]) for p in departed]
    moving = {int(p["sheetId"]) for p in departed}
    while True:
        titles = table_titles(
            [(g.name, g.key, g.helpdesk) for g in grids], SHEETS_MAX, avoided, yielding
        )
        stuck = [
            holder["title"]
            for index, title in enumerate(titles)
            if index in claims
            and (holder := existing.get(title.casefold())) is not None
            and int(holder["sheetId"]) not in claimed
            and (grids[index].key is not None or int(holder["sheetId"]) not in moving)
        ]
        if not stuck:
            return titles
        avoided += stuck


def _renames(moves: list[tuple[int, str, str]], tabs: Iterable[dict[str, Any]]) -> list[Any]:
    """The renames ``moves`` ((sheetId, title now, title wanted)) in an order in which no
    two tabs ever hold one title (compared case-insensitively, as Google does): each after
    the rename of the tab holding its new title. Tabs exchanging titles (a cycle) go through
    a temporary title first."""
    holders = {str(p.get("title", "")).casefold(): p.get("sheetId") for p in tabs}
    used = set(holders)
    pending = {sheet_id: (now, wanted) for sheet_id, now, wanted in moves}
    requests: list[dict[str, Any]] = []
    while pending:
        ready = [
            sheet_id
            for sheet_id, (_, wanted) in pending.items()
            if holders.get(wanted.casefold()) not in pending
        ]
        if not ready:  # a cycle: one of its tabs steps aside
            sheet_id, (now, wanted) = next(iter(pending.items()))
            [aside] = unique_titles([f"{wanted} ~{sheet_id}"[-SHEETS_MAX:]], SHEETS_MAX, used)
            used.add(aside.casefold())
            requests.append(rename(sheet_id, aside))
            del holders[now.casefold()]
            holders[aside.casefold()] = sheet_id
            pending[sheet_id] = (aside, wanted)
            continue
        for sheet_id in ready:
            now, wanted = pending.pop(sheet_id)
            requests.append(rename(sheet_id, wanted))
            if holders.get(now.casefold()) == sheet_id:
                del holders[now.casefold()]
            holders[wanted.casefold()] = sheet_id
            used.add(wanted.casefold())
    return requests


def _befores(grids: Sequence[Grid]) -> list[str | None]:
    """For each grid of an agent whose key another helpdesk's agent has come to share
    (:attr:`Grid.helpdesk`), the title the key alone gave their tab, where no other such
    agent of the report had the same (else None): their tab made before is theirs, renamed
    to name the helpdesk (:meth:`.sheets_tabs.Renamed.tab`). Two agents of one name had
    "Anna (7)" and "Anna (7) 2", in the order of their newest answers: neither title says
    whose it is."""
    before = [
        agent_title(g.name, g.key, SHEETS_MAX).casefold()
        if g.key is not None and g.helpdesk is not None
        else None
        for g in grids
    ]
    counts = Counter(title for title in before if title is not None)
    return [title if title is not None and counts[title] == 1 else None for title in before]


def _packed(items: Sequence[T], sizes: Sequence[int], limit: int) -> list[list[T]]:
    """``items`` in order, in as few consecutive groups as keep each group's ``sizes`` within
    ``limit`` (an item over it alone in its group); no group is empty."""
    groups: list[list[T]] = []
    size = 0
    for item, item_size in zip(items, sizes, strict=True):
        if not groups or size + item_size > limit:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += item_size
    return groups


def _value_groups(items: Sequence[T], sizes: Sequence[int], limit: int) -> list[list[T]]:
    """:func:`_packed` for ValueRanges of ``sizes``: each group's whole ``values.batchUpdate``
    body (:func:`~csat_hook.sync.google.api.values_body_size`: the ranges, the commas between
    them and what is around them) within ``limit``. The ranges alone were packed to it, and a
    body came up to 40 bytes over: at Google's limit, refused whole."""
    # A comma counted after every range, one more than a group has: the limit gets it back.
    room = limit - values_body_size([]) + 1
    return _packed(items, [size + 1 for size in sizes], room)


ROWS_PER_BLOCK = 2_000
CELLS_MAX = 10_000_000  # a spreadsheet's cells, every tab's grid counted


def _check_cells(
    plans: list[TabPlan], tabs: Iterable[dict[str, Any]], deleted: Iterable[int] = ()
) -> None:
    """Refuse a plan that takes the spreadsheet over Google's cell limit, before anything is
    written (Google refuses the whole structure request with a 400 that names no setting).
    The form's responses tab and any other tab count, so the way out is often another
    spreadsheet for the report; the tabs the plan deletes (``deleted``) do not."""
    ours = {p.sheet_id for p in plans} | set(deleted)
    before = others = 0
    for props in tabs:
        grid = props.get("gridProperties", {})
        cells = int(grid.get("rowCount", 0)) * int(grid.get("columnCount", 0))
        before += cells
        others += 0 if props.get("sheetId") in ours else cells
    needs = sum(p.rows * p.cols for p in plans)
    if others + needs > CELLS_MAX and others + needs > before:
        raise SyncError(
            f"the report needs {needs:,} cells and the spreadsheet's other tabs hold "
            f"{others:,}: more than the {CELLS_MAX:,} cells a spreadsheet holds; write the "
            "report to a spreadsheet of its own (output.gsheets.spreadsheet_id), delete tabs "
            "no longer needed (a departed agent's), or lower "
            "output.gsheets.max_response_rows or max_rows_per_agent"
        )


def _over_on_the_way(requests: Iterable[dict[str, Any]], tabs: Iterable[dict[str, Any]]) -> bool:
    """True when one of the structure ``requests``, sent in this order to a spreadsheet of
    ``tabs`` (their properties), takes it over :data:`CELLS_MAX` cells and above what it held
    before that request: Google checks its limit after each request of a batch, and cells a
    later request frees make no room for an earlier one (:func:`_check_cells` checks the
    end)."""
    grids: dict[int, tuple[int, int]] = {}
    for props in tabs:
        grid = props.get("gridProperties", {})
        grids[int(props["sheetId"])] = (
            int(grid.get("rowCount", 0)),
            int(grid.get("columnCount", 0)),
        )
    cells = sum(rows * cols for rows, cols in grids.values())
    for request in requests:
        kind, spec = next(iter(request.items()))
        if kind == "deleteSheet":
            rows, cols = grids.pop(int(spec["sheetId"]), (0, 0))
            cells -= rows * cols
            continue
        if kind not in ("addSheet", "updateSheetProperties"):
            continue
        # The sizes a request gives are the ones it changes (_resized, _add_sheet; a rename
        # gives none).
        props = spec["properties"]
        sizes = props.get("gridProperties", {})
        sheet_id = int(props["sheetId"])
        old_rows, old_cols = grids.get(sheet_id, (0, 0))
        rows = int(sizes.get("rowCount", old_rows))
        cols = int(sizes.get("columnCount", old_cols))
        grids[sheet_id] = (rows, cols)
        before, cells = cells, cells + rows * cols - old_rows * old_cols
        if cells > CELLS_MAX and cells > before:
            return True
    return False


def _encoded_range(plan: TabPlan, *, ascii_only: bool) -> bytes:
    """:meth:`SheetsOutput._value_range`'s bytes, in ASCII (escapes) or UTF-8: rows padded to
    the plan's columns and blank rows up to its row count, every row as ``json.dumps`` of the
    whole would write it (", " between rows, ``allow_nan=False`` as requests' ``json=`` has
    it: NaN is not JSON, and Google refuses it)."""
    cols, plain, short = plan.cols, _PLAIN, _SHORT
    codec = "ascii" if ascii_only else "utf-8"

    def dumps(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=ascii_only, allow_nan=False).encode(codec)

    def blocks() -> Iterator[tuple[int, bytes]]:
        rows, padding = plan.grid.rows, [""] * cols
        for start in range(0, len(rows), ROWS_PER_BLOCK):
            block = [
                [
                    v
                    if v.__class__ in plain and (v.__class__ is not str or len(v) <= short)
                    else sheet_value(v)
                    for v in row
                ]
                + padding[len(row) :]
                for row in rows[start : start + ROWS_PER_BLOCK]
            ]
            yield len(block), dumps(block)[1:-1]

    return _assembled(plan, dumps, blocks(), b", ")


def _assembled(
    plan: TabPlan,
    dumps: Callable[[Any], bytes],
    blocks: Iterable[tuple[int, bytes]],
    separator: bytes,
    starts: array[int] | None = None,
) -> bytes:
    """The tab's ValueRange as one bytes: its shell (range, major dimension) by ``dumps``,
    the ``blocks`` of encoded rows (each: how many rows, their encodings joined by
    ``separator``), then blank rows up to the plan's row count, ``separator`` between rows.
    Made in a ``BytesIO`` whose ``getvalue()`` hands over its buffer: no copy of the whole.
    ``starts``, when given, gets where the rows start (the first; ``blocks`` add the rest)."""
    cols = plan.cols
    end = f"{column_letters(cols - 1)}{plan.rows}"
    shell = dumps(
        {
            "range": f"{absolute_range_name(plan.title)}!A1:{end}",
            "majorDimension": "ROWS",
            "values": [],
        }
    )
    out = io.BytesIO()
    out.write(shell[:-2])  # up to the values' "["
    if starts is not None:
        starts.append(len(shell) - 2)  # the first row's (blocks add the others)
    written = 0
    for count, data in blocks:
        out.write(separator if written else b"")
        out.write(data)
        written += count
    blank = dumps([""] * cols)
    for start in range(written, plan.rows, ROWS_PER_BLOCK):
        count = min(ROWS_PER_BLOCK, plan.rows - start)
        out.write(separator if start else b"")
        out.write(separator.join([blank] * count))
    out.write(shell[-2:])
    return out.getvalue()


# orjson writes a date-time or a date as ISO text, a subclass of str, int, float, dict or list
# as its base and a dataclass as an object; these go to _fast_cell instead.
_FAST_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# _BLANK(v, v): "" for None, any other cell as it is (a C call, no Python frame per cell).
_BLANKS: dict[Cell, Cell] = {None: ""}
_BLANK = _BLANKS.get


def _fast_cell(value: Any) -> Any:
    """orjson's ``default``: a date-time or a date as its serial (as :func:`sheet_value`);
    any other value orjson does not write itself is refused, and the tab goes to
    :func:`_encoded_range`, which writes or refuses it as before."""
    if isinstance(value, datetime | date):
        return serial(value)
    raise TypeError(type(value).__name__)


def _fast_range(
    plan: TabPlan, before: _KeptTab | None = None, starts: array[int] | None = None
) -> bytes | None:
    """:meth:`SheetsOutput._value_range`'s bytes as orjson encodes the converted rows
    (about three times faster than ``json.dumps``, and no Python call per cell but per
    date-time), or None when they could differ from :func:`_encoded_range`'s JSON value:

    * orjson refuses a lone surrogate in a text (``json.dumps`` escapes it), an int beyond
      64 bits (``json.dumps`` writes it), a subclass of a plain type and any type it does
      not know (:func:`_fast_cell`): None;
    * orjson writes NaN and the infinities as ``null`` where ``json.dumps`` refuses them;
      None cells are written ``""`` before encoding, so a ``null`` among the values can only
      be one of those (or text that looks like one, ``,null,``): None;
    * a text longer than ``_SHORT`` characters may have to be cut (:func:`sheet_value`):
      rows whose encoding is longer than that (no text in a shorter row can be) are encoded
      again from :func:`sheet_value`'s cells.

    Cells are :data:`~csat_hook.sync.layout.Cell` values (strict typing): an Enum or a UUID,
    which orjson writes and ``json.dumps`` refuses, is not among them.

    ``before``: the tab as the last write encoded it (the same columns): a row of it found
    again (the same object) is copied from its bytes, checked then. ``starts``, when given,
    gets where each row's encoding starts in the bytes returned, and one more past the
    last (:class:`_KeptTab`)."""
    cols, short, dumps, blank, cell = plan.cols, _SHORT, orjson.dumps, _BLANK, _fast_cell
    options = _FAST_OPTIONS
    padding = [""] * cols
    old: dict[int, int] = {}
    if before is not None:
        # Imported when first used, as dataset.py does: a first sync (no tabs kept) reaches
        # its peak of memory without numpy's.
        import numpy as np

        old = dict(zip(map(id, before.rows), itertools.count()))  # id → index, built in C
        old_data = memoryview(before.data)
        old_starts = np.frombuffer(before.starts, dtype=np.intc)
        old_lengths = np.diff(old_starts) - 1  # each row's encoding, without its separator

    def encode(row: Sequence[Cell]) -> bytes:
        data = dumps(
            list(map(blank, row, row))
            if len(row) >= cols
            else list(map(blank, row, row)) + padding[len(row) :],
            cell,
            options,
        )
        if len(data) > short:
            data = dumps(_cells(row, padding), cell, options)
        return data

    def copied(block: Sequence[Sequence[Cell]]) -> tuple[list[bytes | memoryview], Any]:
        """The block's encoding in pieces: each run of rows the last write encoded one after
        another (the same objects, in the same order: most of a later sync's rows) one slice
        of its bytes, separators and all; each other row encoded. Beside it, each row's
        length. No Python work per copied row, but a few numpy passes per block."""
        where = np.fromiter(map(old.get, map(id, block), repeat(-1)), np.int64, len(block))
        kept = where >= 0
        lengths = np.zeros(len(block), dtype=np.int64)
        lengths[kept] = old_lengths[where[kept]]
        # A piece starts at every row but those that go on a run of kept rows.
        goes_on = np.zeros(len(block), dtype=bool)
        goes_on[1:] = kept[1:] & kept[:-1] & (where[1:] == where[:-1] + 1)
        firsts = np.flatnonzero(~goes_on).tolist()
        pieces: list[bytes | memoryview] = []
        for number, first in enumerate(firsts):
            if kept[first]:
                last = (firsts[number + 1] if number + 1 < len(firsts) else len(block)) - 1
                begin = int(old_starts[where[first]])
                pieces.append(
                    old_data[begin : begin + int(lengths[first : last + 1].sum()) + last - first]
                )
            else:
                data = encode(block[first])
                lengths[first] = len(data)
                pieces.append(data)
        return pieces, lengths

    def blocks() -> Iterator[tuple[int, bytes]]:
        rows = plan.grid.rows
        at = starts[-1] if starts else 0
        for start in range(0, len(rows), ROWS_PER_BLOCK):
            block = rows[start : start + ROWS_PER_BLOCK]
            if old:
                pieces, lengths = copied(block)
                if starts is not None:
                    ends = at + np.cumsum(lengths + 1)  # each row's end, and the separator
                    starts.frombytes(ends.astype(np.intc).tobytes())
                    at = int(ends[-1])
                joined = b",".join(pieces)
            else:
                encoded = list(map(encode, block))
                if starts is not None:
                    for data in encoded:
                        at += len(data) + 1  # and the separator
                        starts.append(at)
                joined = b",".join(encoded)
            if _holds_null(joined):
                raise _NotTheSameValueError
            yield len(block), joined

    try:
        return _assembled(plan, dumps, blocks(), b",", starts)
    except (TypeError, _NotTheSameValueError):  # TypeError: orjson's refusals, an unhashable cell
        return None


class _NotTheSameValueError(Exception):
    """orjson wrote a value ``json.dumps`` would not (a ``null``): :func:`_fast_range` gives
    the tab to :func:`_encoded_range`."""


def _cells(row: Sequence[Cell], padding: list[str]) -> list[Any]:
    """A row's cells as written, padded to the tab's columns."""
    return [sheet_value(v) for v in row] + padding[len(row) :]


def _holds_null(data: bytes) -> bool:
    """Whether ``data``, rows encoded by orjson, holds a ``null`` value (``[null`` or
    ``,null`` then ``,`` or ``]``), or text that looks like one."""
    at = data.find(b"null")
    while at >= 0:
        if data[at - 1 : at] in (b"[", b",") and data[at + 4 : at + 5] in (b",", b"]"):
            return True
        at = data.find(b"null", at + 4)
    return False


def _resized(sheet_id: int, sizes: dict[str, int]) -> dict[str, Any]:
    """An ``updateSheetProperties`` giving a tab's grid ``sizes`` (``rowCount``,
    ``columnCount``), its field mask naming exactly those: a size left out stays as it is."""
    return {
        "updateSheetProperties": {
            "properties": {"sheetId": sheet_id, "gridProperties": sizes},
            "fields": ",".join(f"gridProperties.{name}" for name in sizes),
        }
    }


def _add_sheet(sheet_id: int, title: str, grid: Grid, rows: int, cols: int) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "sheetId": sheet_id,
        "title": title,
        "gridProperties": {"rowCount": rows, "columnCount": cols},
    }
    if grid.kind in TAB_INDEX:
        properties["index"] = TAB_INDEX[grid.kind]
    return {"addSheet": {"properties": properties}}
