"""Which tab of a spreadsheet holds which tab of the report: the sheetIds csat-hook gives the
tabs it adds, and an agent's tab found again under an older title."""

from __future__ import annotations

from typing import Any

from csat_hook.sync.outputs.sheets_format import object_id
from csat_hook.sync.titles import SHEETS_MAX
from csat_hook.sync.titles import clean

# A new tab's sheetId is made from these and its agent key (an agent's tab) or its title: an
# agent's tab is found by its id when the agent's name, and so the wanted title, changed.
TAB, AGENT_TAB = "csat-hook tab", "csat-hook agent tab"


def new_id(parts: tuple[str, str], used: set[Any]) -> int:
    """A sheetId for a new tab: stable for ``parts``, not taken."""
    attempt = 0
    while True:
        sheet_id = object_id(*parts, attempt)
        if sheet_id not in used:
            return sheet_id
        attempt += 1


class Renamed:
    """The tab an agent had under an older title (their name changed in the helpdesk): a
    tab of ours for the agent's key whose title no tab of this report wants, renamed to the
    new title rather than left behind with the answers it held then.

    Ours for the key: its sheetId is the one :func:`new_id` gives the key, or (tabs made
    before ids came from keys) the one it gave the tab's own title, which ends with the
    key as :func:`~csat_hook.sync.titles.agent_title` writes it. A tab Google numbered (one
    a manager added) is never taken."""

    def __init__(
        self, existing: dict[str, dict[str, Any]], wanted: set[str], protected: set[int]
    ) -> None:
        self.free = {
            p.get("sheetId"): p
            for title, p in existing.items()
            if title not in wanted and p.get("sheetId") not in protected
        }
        self._by_title_id: dict[str, dict[str, Any]] | None = None

    def tab(self, key: str) -> dict[str, Any] | None:
        for attempt in range(3):
            props = self.free.get(object_id(AGENT_TAB, key, attempt))
            if props is not None:
                return self.free.pop(props.get("sheetId"))
        if self._by_title_id is None:  # built once, only when some agent's title is new
            self._by_title_id = {}
            for sheet_id, p in self.free.items():
                title = str(p.get("title", "")).casefold()
                if sheet_id in {object_id(TAB, title, a) for a in range(3)}:
                    self._by_title_id[title] = p
        suffix = f" ({clean(key, SHEETS_MAX)})".casefold()
        for title, props in self._by_title_id.items():
            if title.endswith(suffix) and props.get("sheetId") in self.free:
                del self._by_title_id[title]
                return self.free.pop(props.get("sheetId"))
        return None


def rename(sheet_id: int, title: str) -> dict[str, Any]:
    return {
        "updateSheetProperties": {
            "properties": {"sheetId": sheet_id, "title": title},
            "fields": "title",
        }
    }
