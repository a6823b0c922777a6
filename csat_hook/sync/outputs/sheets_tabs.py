"""Which tab of a spreadsheet holds which tab of the report: the sheetIds csat-hook gives the
tabs it adds, which tabs are csat-hook's (the only ones it writes), an agent's tab found
again under an older title, and a tab of the report's own set (Summary, Trends...) found
under another of its titles (:class:`Kinds`: the other language's, a configured one, or
any title its record (:class:`Mark`) names)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from csat_hook.sync.outputs.sheets_format import object_id
from csat_hook.sync.titles import SHEETS_MAX
from csat_hook.sync.titles import agent_title
from csat_hook.sync.titles import clean
from csat_hook.sync.titles import numbered

# A new tab's sheetId is made from these and its agent key (an agent's tab) or its title: an
# agent's tab is found by its id when the agent's name, and so the wanted title, changed.
# An agent whose key another helpdesk's agent also has (Grid.helpdesk) is numbered from its
# helpdesk and key (agent_parts); no other tab's id changed when that was added.
TAB, AGENT_TAB = "csat-hook tab", "csat-hook agent tab"
HELPDESK_AGENT_TAB = "csat-hook helpdesk agent tab"
# new_id's attempts recognised as ours: a later one is taken only when a tab already holds
# the id of every earlier one.
ATTEMPTS = 3
# The " 2" ... " 9" a report's own tab may have been given beside tabs not ours holding its
# title (unique_titles): " 10" would need nine such tabs, all titled as the report's.
SPARES = range(2, 10)
# Developer metadata on each tab of the report's own set, located on the sheet: its kind, its
# sheetId and the title the report gave it (:func:`mark_value`). Written in the structure
# batch that adds or renames the tab (or the first one after a version that did not write
# it), read with the metadata every run already reads; deleted by Google with the tab.
MARK_KEY = "csat-hook.tab"
# A value longer than this is not one of ours (a kind, an id and 100 UTF-16 units of title
# make under 700 characters even escaped): not parsed.
_MARK_MAX = 1_000


def agent_parts(key: str, helpdesk: str | None) -> tuple[str, str]:
    """What :func:`new_id` makes an agent's tab's id from: the key alone (as every version
    did), or, for an agent whose key another helpdesk's agent also has, the helpdesk and the
    key as one JSON array: ``object_id`` joins its parts with ":", and a helpdesk "a" with
    key "b:c" must not be numbered as "a:b" with key "c" (nor as a key "a:b:c" alone, whose
    parts start with :data:`AGENT_TAB`)."""
    if helpdesk is None:
        return AGENT_TAB, key
    return HELPDESK_AGENT_TAB, json.dumps([helpdesk, key])


def agent_ids(key: str, helpdesk: str | None) -> list[int]:
    """The sheetIds :func:`new_id` gives the agent's tab, in the order it tries them."""
    parts = agent_parts(key, helpdesk)
    return [object_id(*parts, attempt) for attempt in range(ATTEMPTS)]


def new_id(parts: tuple[str, str], used: set[Any]) -> int:
    """A sheetId for a new tab: stable for ``parts``, not taken."""
    attempt = 0
    while True:
        sheet_id = object_id(*parts, attempt)
        if sheet_id not in used:
            return sheet_id
        attempt += 1


def titled(props: dict[str, Any]) -> bool:
    """Whether the tab's sheetId is the one :func:`new_id` gives its own title: a tab
    csat-hook added under that title (the report's own tabs; agents' tabs made before ids
    came from keys)."""
    title = str(props.get("title", "")).casefold()
    return props.get("sheetId") in {object_id(TAB, title, a) for a in range(ATTEMPTS)}


def spare(title: str, tabs: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The tab csat-hook added for the report's own tab ``title`` (Summary, Alerts...) as
    "``title`` 2" (" 3"...) beside a tab not ours that held ``title`` then, now that no tab
    holds ``title``: ``tabs`` by casefolded title; its sheetId is the one :func:`new_id` gave
    that title. The lowest number first (as :func:`~csat_hook.sync.titles.unique_titles`)."""
    for n in range(2, len(tabs) + 2):
        props = tabs.get(numbered(title, n, SHEETS_MAX).casefold())
        if props is not None and titled(props):
            return props
    return None


def _variants(title: str) -> list[str]:
    """``title`` and the titles it gets beside a tab not ours holding it (" 2" ...), as
    :func:`~csat_hook.sync.titles.unique_titles` makes them, casefolded."""
    spared = [numbered(title, n, SHEETS_MAX) for n in SPARES]
    return [t.casefold() for t in (title, *spared)]


@dataclass(frozen=True)
class Mark:
    """What the developer metadata under :data:`MARK_KEY` on one tab says: ``record`` the
    kind and title the report gave the tab, None when nothing sure (a value not ours, one
    naming another sheetId, two that disagree); ``ids`` its entries' metadataIds, all
    rewritten or deleted together (versions before this one sent a batch again after a lost
    answer, and left two)."""

    record: tuple[str, str] | None
    ids: tuple[int, ...]


def mark_value(kind: str, sheet_id: int, title: str) -> str:
    """The value recorded on the report's own tab ``sheet_id``: compact JSON, keys sorted.

    The sheetId is in it because a copy of a tab may carry its metadata (a person's copy of
    the Summary, made in the UI): the copy's own id is not the one its record names."""
    record = {"kind": kind, "sheetId": sheet_id, "title": title}
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _record(value: Any, sheet_id: Any) -> tuple[str, str] | None:
    """``value`` as :func:`mark_value` writes it for ``sheet_id``: (kind, title), else None."""
    if not isinstance(value, str) or len(value) > _MARK_MAX:
        return None
    try:
        found = json.loads(value)
    except ValueError:
        return None
    if not isinstance(found, dict) or set(found) != {"kind", "sheetId", "title"}:
        return None
    kind, number, title = found["kind"], found["sheetId"], found["title"]
    if not (isinstance(kind, str) and isinstance(title, str) and isinstance(number, int)):
        return None
    if isinstance(number, bool) or isinstance(sheet_id, bool) or number != sheet_id:
        return None
    return kind, title


def marks(sheets: Iterable[Any]) -> dict[Any, Mark]:
    """Each tab's :class:`Mark` by sheetId (tabs with no entry under :data:`MARK_KEY` left
    out), from ``spreadsheets.get``'s ``sheets`` (each ``developerMetadata`` the sheet's)."""
    found: dict[Any, Mark] = {}
    for sheet in sheets:
        if not isinstance(sheet, dict):
            continue
        sheet_id = sheet.get("properties", {}).get("sheetId")
        entries = [
            m
            for m in sheet.get("developerMetadata", [])
            if isinstance(m, dict) and m.get("metadataKey") == MARK_KEY
        ]
        if not entries:
            continue
        ids = tuple(
            m["metadataId"]
            for m in entries
            if isinstance(m.get("metadataId"), int) and not isinstance(m["metadataId"], bool)
        )
        records = {_record(m.get("metadataValue"), sheet_id) for m in entries}
        record = next(iter(records)) if len(records) == 1 else None
        found[sheet_id] = Mark(record, ids)
    return found


def mark(sheet_id: int, kind: str, title: str, found: Mark | None) -> list[dict[str, Any]]:
    """The requests that leave the report's own tab ``sheet_id`` recorded as ``kind`` under
    ``title``: none when it is; a create when it has no entry (a tab added in the same
    batch, before it: its sheetId exists by then; or one an earlier version made); else
    every entry of ours on it rewritten."""
    value = mark_value(kind, sheet_id, title)
    if found is None or not found.ids:
        metadata = {
            "metadataKey": MARK_KEY,
            "metadataValue": value,
            "location": {"sheetId": sheet_id},
            "visibility": "DOCUMENT",
        }
        return [{"createDeveloperMetadata": {"developerMetadata": metadata}}]
    if found.record == (kind, title):
        return []
    lookups = [{"developerMetadataLookup": {"metadataId": number}} for number in found.ids]
    return [
        {
            "updateDeveloperMetadata": {
                "dataFilters": lookups,
                "developerMetadata": {"metadataValue": value},
                "fields": "metadataValue",
            }
        }
    ]


def unmark(found: Mark | None) -> list[dict[str, Any]]:
    """The requests that delete every entry of ours on a tab the report now writes as an
    agent's (it held a title an own tab had): marked, it would be taken for that kind's and
    deleted once the agent leaves the report, when agents' tabs are kept."""
    ids = found.ids if found is not None else ()
    return [
        {"deleteDeveloperMetadata": {"dataFilter": {"developerMetadataLookup": {"metadataId": n}}}}
        for n in ids
    ]


class Kinds:
    """The report's own tabs (Summary, Trends, Responses, Unverified, Alerts) known by kind
    whatever language or title they were made under.

    A tab recorded by the report (:class:`Mark`: its kind, its sheetId and the title the
    report gave it) is of the kind its record names when it still holds that title: a tab of
    ours a manager renamed ("Summary November", kept as a snapshot) is the manager's to keep,
    neither renamed back nor deleted, and a copy of ours that carries the record names
    another sheetId. So a custom title changed to another (``summary_tab: Report`` →
    ``Overview``) finds the tab under the old one, whichever titles the settings name now.

    A tab without a record (made by a version before records, or the record unreadable)
    is of a kind when its sheetId is one :func:`new_id` gives one of that kind's ``titles``
    (either language's, the configured ones; " 2" ... " 9" included) and its title is one of
    them too. The id says csat-hook made the tab as that kind's (a manager's tab titled
    "Сводка" has Google's id); the title says it still is one. A tab of the earliest versions
    (Google numbered it) or one made under a configured title since changed, before records,
    has no kind: the report cannot tell it from an agent's, and leaves it as it is."""

    def __init__(
        self, titles: Mapping[str, Iterable[str]], marked: Mapping[Any, Mark] | None = None
    ) -> None:
        self._marked = {
            sheet_id: m.record for sheet_id, m in (marked or {}).items() if m.record is not None
        }
        self._ids: dict[Any, set[str]] = {}  # sheetId → kinds (asked with any JSON value)
        self._titles: dict[str, set[str]] = {}
        for kind, names in titles.items():
            folded = self._titles.setdefault(kind, set())
            for name in names:
                for variant in _variants(clean(name, SHEETS_MAX)):
                    if variant in folded:
                        continue
                    folded.add(variant)
                    for attempt in range(ATTEMPTS):
                        self._ids.setdefault(object_id(TAB, variant, attempt), set()).add(kind)

    def of(self, props: dict[str, Any]) -> set[str]:
        """The kinds the tab ``props`` is of (empty: none; two only when two kinds share a
        title, a configured title clashing with another kind's, on a tab without a record)."""
        recorded = self._marked.get(props.get("sheetId"))
        if recorded is not None:
            kind, title = recorded
            same = str(props.get("title", "")).casefold() == title.casefold()
            return {kind} if same and kind in self._titles else set()
        kinds = self._ids.get(props.get("sheetId"))
        if not kinds:
            return set()
        title = str(props.get("title", "")).casefold()
        return {kind for kind in kinds if title in self._titles[kind]}


class Owned:
    """Which tabs are csat-hook's: the report writes only into these, and avoids the titles
    of all others (a manager's tab, the form's linked responses tab) with " 2". An agent's
    name is typed by helpdesk users: "Ответы на форму" with id 1 is the title Google Forms
    gives its responses tab in Russian, and a name-only agent's title is the bare name.

    A tab is csat-hook's when its sheetId is one :func:`new_id` gives an agent of the report
    (``agents``: (key, helpdesk or None) as :func:`agent_parts` takes them; the key alone
    counts too, for a tab made before the key was shared) or the tab's own title, or one
    csat-hook recorded writing (``recorded``: the
    tabs of its reports, kept between runs; the earliest versions let Google number their
    tabs, and a tab renamed keeps the id of its first title), or a tab of the report's own
    set under a title of its kind (:class:`Kinds`: "Сводка" made as "Summary" and renamed
    when the language changed). A protected tab never is."""

    def __init__(
        self,
        recorded: Iterable[int],
        agents: Iterable[tuple[str, str | None]],
        protected: set[int],
        kinds: Kinds | None = None,
    ) -> None:
        self.recorded = set(recorded) - protected
        self.protected = protected
        pairs = set(agents)
        # The ids of agents the key alone does not name: never another agent's tab (Renamed).
        self.helpdesks = {
            i for key, helpdesk in pairs if helpdesk is not None for i in agent_ids(key, helpdesk)
        }
        self.keyed = {i for key, _ in pairs for i in agent_ids(key, None)} | self.helpdesks
        self.kinds = kinds
        self._seen: dict[tuple[Any, str], bool] = {}  # a plan asks twice about the tabs it takes

    def __call__(self, props: dict[str, Any]) -> bool:
        sheet_id = props.get("sheetId")
        if sheet_id in self.protected:
            return False
        if sheet_id in self.recorded or sheet_id in self.keyed:
            return True
        seen = (sheet_id, str(props.get("title", "")))
        if seen not in self._seen:
            self._seen[seen] = titled(props) or (
                self.kinds is not None and bool(self.kinds.of(props))
            )
        return self._seen[seen]


class Renamed:
    """The tab an agent had under an older title (their name changed in the helpdesk): a
    tab of ours for the agent's key whose title no tab of this report wants, renamed to the
    new title rather than left behind with the answers it held then.

    Ours for the key: its sheetId is the one :func:`new_id` gives the key, or it is ours
    (made under its own title before ids came from keys, or recorded: :class:`Owned`) and
    its title ends with the key as :func:`~csat_hook.sync.titles.agent_title` writes it. A
    tab Google numbered that csat-hook did not record (one a manager added) is never taken.

    An agent whose key another helpdesk's agent also has is (helpdesk, key): its tab is the
    one numbered from both, or one of ours whose title names both (:meth:`tab`); never one
    found by the key alone, which may be the other agent's. ``helpdesk_ids``: the sheetIds
    :func:`new_id` gives such agents of the report (:attr:`Owned.helpdesks`), each taken
    only by its own agent."""

    def __init__(
        self,
        existing: dict[str, dict[str, Any]],
        wanted: set[str],
        protected: set[int],
        recorded: Iterable[int] = (),
        helpdesk_ids: Iterable[int] = (),
    ) -> None:
        self.free = {
            p.get("sheetId"): p
            for title, p in existing.items()
            if title not in wanted and p.get("sheetId") not in protected
        }
        self.recorded = set(recorded)
        self.helpdesk_ids = set(helpdesk_ids)
        self._by_title_id: dict[str, dict[str, Any]] | None = None

    def own(self, title: str) -> dict[str, Any] | None:
        """The tab of ours the report's own tab ``title`` (its wanted title held by no tab)
        was written to as "``title`` 2" while a tab not ours held ``title`` (:func:`spare`),
        to be renamed."""
        props = spare(title, {str(p.get("title", "")).casefold(): p for p in self.free.values()})
        return self.free.pop(props.get("sheetId")) if props is not None else None

    def kind(self, kind: str, kinds: Kinds) -> dict[str, Any] | None:
        """A tab of ours of the report's own ``kind`` under another of its titles (the other
        language's, a configured title before), to be renamed: the first in the
        spreadsheet's order. Renamed rather than a new tab added and the old deleted: a
        manager's link to it (its ``#gid=``) and its place among the tabs stay."""
        for sheet_id, props in self.free.items():
            if kind in kinds.of(props):
                return self.free.pop(sheet_id)
        return None

    def left(self, kinds: Kinds) -> list[dict[str, Any]]:
        """The tabs of the report's own set that no tab of this report took (asked once
        every tab of the report has asked for its own): one more of a kind the report
        writes elsewhere, or of a kind it no longer has (Unverified or Alerts turned off)."""
        return [props for props in self.free.values() if kinds.of(props)]

    def tab(
        self, key: str, helpdesk: str | None = None, before: str | None = None
    ) -> dict[str, Any] | None:
        """The agent's tab to rename: ``key``'s, or (``helpdesk`` given) the one of the
        agent (helpdesk, key) whose key another helpdesk's agent also has: numbered from
        both (:func:`agent_parts`), or ours for the key and titled with both (its name
        since changed), or titled ``before``: the title the key alone gave it before the
        key was shared, which the caller passes only when no other agent of the report had
        it (two agents of one name had "Anna (7)" and "Anna (7) 2", and which was whose
        the titles do not say)."""
        for sheet_id in agent_ids(key, helpdesk):
            props = self.free.get(sheet_id)
            if props is not None:
                return self.free.pop(sheet_id)
        if helpdesk is not None:
            return self._helpdesk_tab(key, helpdesk, before)
        if self._by_title_id is None:  # built once, only when some agent's title is new
            self._by_title_id = {
                str(p.get("title", "")).casefold(): p
                for sheet_id, p in self.free.items()
                if (sheet_id in self.recorded or titled(p)) and sheet_id not in self.helpdesk_ids
            }
        suffix = f" ({clean(key, SHEETS_MAX)})".casefold()
        for title, props in self._by_title_id.items():
            if title.endswith(suffix) and props.get("sheetId") in self.free:
                del self._by_title_id[title]
                return self.free.pop(props.get("sheetId"))
        return None

    def _helpdesk_tab(self, key: str, helpdesk: str, before: str | None) -> dict[str, Any] | None:
        """:meth:`tab`'s tab of ours for ``key`` whose title names the agent (helpdesk, key)."""
        legacy = set(agent_ids(key, None))
        bare = agent_title(key, key, SHEETS_MAX, helpdesk).casefold()
        suffix = f" ({clean(f'{helpdesk} {key}', SHEETS_MAX)})".casefold()
        for sheet_id, props in self.free.items():
            if sheet_id in self.helpdesk_ids:
                continue
            if sheet_id not in legacy and sheet_id not in self.recorded and not titled(props):
                continue
            title = str(props.get("title", "")).casefold()
            if title == bare or title.endswith(suffix) or (before and title == before.casefold()):
                return self.free.pop(sheet_id)
        return None


def delete(sheet_id: int) -> dict[str, Any]:
    return {"deleteSheet": {"sheetId": sheet_id}}


def rename(sheet_id: int, title: str) -> dict[str, Any]:
    return {
        "updateSheetProperties": {
            "properties": {"sheetId": sheet_id, "title": title},
            "fields": "title",
        }
    }
