"""How the Sheets write lists fewer answers (SheetsOutput._listed_fewer), on grids made here:
the cases a report's seeding makes slowly or not at all (in order: whole tabs packed into
two requests, a Responses tab already at one row, a list that needs no cut)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from csat_hook.sync.google.api import values_body_size
from csat_hook.sync.layout import Grid
from csat_hook.sync.outputs.sheets import Listing
from csat_hook.sync.outputs.sheets import Plan
from csat_hook.sync.outputs.sheets import SheetsOutput
from csat_hook.sync.outputs.sheets import TabPlan

LIMIT = 100_000  # max_request_bytes: the least the configuration takes


class _Planned(SheetsOutput):
    """The output with each grid planned as an existing tab (no API: no metadata to read)."""

    def plan(self, grids: Sequence[Grid], language: str, *, tight: bool = False) -> Plan:
        tabs = [TabPlan(g.name, g, len(g.rows) + 20, 2, True, i) for i, g in enumerate(grids)]
        return Plan(tabs, [], [], {}, [], [])


def grid(name: str, kind: str, rows: int, width: int, key: str | None = None) -> Grid:
    made = Grid(name, kind, key=key)
    made.rows = [["h1", "h2"]] + [[f"{name}-{i}", "x" * width] for i in range(rows)]
    return made


def listed(grids: list[Grid], asked: tuple[int, int]) -> Any:
    """What _listed_fewer gives for ``grids`` (None: no listing fits), the listing's values
    checked to fit two requests when one does."""

    def relist(responses: int, agents: int) -> list[Grid]:
        return [
            g
            if (n := {"responses": responses, "agent": agents}.get(g.kind)) is None
            else Grid(g.name, g.kind, g.rows[: 1 + n], key=g.key)
            for g in grids
        ]

    output = _Planned(None, "sheet", max_request_bytes=LIMIT)  # type: ignore[arg-type]
    first = output.plan(grids, "en")
    encoded, _ = output._fitted(first.tabs)
    assert not output._fit([len(data) for _, data in encoded])  # the case needs a listing
    found = output._listed_fewer(first, encoded, Listing(asked, relist), "en")
    if found is not None:
        sizes = [len(data) for _, data in found[2]]
        assert output._fit(sizes) and max(values_body_size([s]) for s in sizes) <= LIMIT
    return found


def test_whole_tabs_packed_in_order_fit_once_the_larger_list_lists_fewer():
    """The lists' sum fits two requests, the tabs packed in order do not: the list larger in
    bytes (twelve agents' tabs, not the one larger Responses tab) lists fewer until they do."""
    grids = [
        grid("Summary", "summary", 80, 100),
        grid("Trends", "trends", 8, 100),
        grid("Responses", "responses", 100, 100),
        *(grid(f"Agent {i}", "agent", 45, 100, str(i)) for i in range(12)),
        grid("Unverified", "unverified", 290, 100),
        grid("Alerts", "alerts", 500, 100),
    ]
    found = listed(grids, (100, 45))
    assert found is not None
    assert found[3][0] == 100 and found[3][1] < 45


def test_a_responses_tab_at_one_row_leaves_the_agents_tabs_to_list_fewer():
    """The Responses tab lists one answer and is still the larger tab: cutting it changes
    nothing, so the agents' tabs list fewer (every try made the same listing, then failed)."""
    grids = [
        grid("Summary", "summary", 60, 100),
        grid("Trends", "trends", 8, 100),
        grid("Responses", "responses", 1, 190),
        *(grid(f"Agent {i}", "agent", 2, 60, str(i)) for i in range(100)),
        grid("Unverified", "unverified", 520, 100),
        grid("Alerts", "alerts", 480, 100),
    ]
    found = listed(grids, (1, 2))
    assert found is not None and found[3] == (1, 1)


def test_a_list_not_cut_says_its_limit_not_its_rows_and_a_header():
    """One busy agent's tab is over a request; the Responses tab, which fits, lists every
    answer: the listing says the Responses tab's limit (it said 101 for 100 answers, the
    header counted, as if one fewer had been cut), and the agents' limit it cut to."""
    grids = [
        grid("Summary", "summary", 10, 100),
        grid("Trends", "trends", 8, 100),
        grid("Responses", "responses", 100, 100),
        grid("Busy", "agent", 1200, 100, "1"),
        *(grid(f"Agent {i}", "agent", 20, 100, str(i + 2)) for i in range(5)),
    ]
    found = listed(grids, (50_000, 2_000))
    assert found is not None
    responses, per_agent = found[3]
    assert responses == 50_000 and 20 <= per_agent < 1_200


def test_one_row_each_over_the_requests_is_no_listing():
    """A thousand agents' tabs of one answer each take more than two requests: no listing
    fits, and the tries end (the write then fails naming the limits)."""
    grids = [
        grid("Responses", "responses", 3, 150),
        *(grid(f"Agent {i}", "agent", 3, 150, str(i)) for i in range(1_000)),
    ]
    assert listed(grids, (3, 3)) is None


def test_a_listing_whole_tabs_packed_in_order_fit_is_found_with_texts_no_cut_makes_fit():
    """The agents' cells are long texts a cut could shorten, but no cut alone makes the
    report fit (a cut is all or nothing), and the tabs that list no answers nearly fill each
    request: steps sized as if the texts were cut were too small, and six tries ran out at
    (1, 4) where (1, 3) fits (the code before the text cuts wrote it)."""
    grids = [
        grid("Summary", "summary", 740, 100),
        grid("Trends", "trends", 8, 100),
        grid("Responses", "responses", 4, 100),
        *(grid(f"Agent {i}", "agent", 60, 300, str(i)) for i in range(10)),
        grid("Alerts", "alerts", 740, 100),
    ]
    assert listed(grids, (4, 60)) is not None
