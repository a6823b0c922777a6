"""What every part of the report shares: the context, names, local times, stored figures."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from csat_hook.db.text import as_seen
from csat_hook.db.text import name_key
from csat_hook.helpdesks.base import ticket_url
from csat_hook.sync.dataset import Agent
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.layout import Column
from csat_hook.sync.layout import Fmt
from csat_hook.sync.metrics import Settings
from csat_hook.sync.metrics import Stats
from csat_hook.sync.texts import Texts
from csat_hook.sync.titles import BIDI
from csat_hook.sync.titles import tag
from csat_hook.sync.values import normalize

# Fractions are written rounded to this: a re-run writes the same cells. Nine digits, not
# six: a cell is shown rounded again (to 0.1% or 0.01), and a value within half a millionth
# of a rounding edge rounded twice showed one step off (Wilson's upper bound for 22 of 26,
# 93.849966%, was written 0.9385 and shown 93.9%).
DIGITS = 9
# Control characters (C0 but tab and line breaks, DEL, C1): nothing a reader sees in a label.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BREAKS = str.maketrans("\t\n\r", "   ")  # a label is one line


@dataclass(frozen=True)
class Context:
    """Everything the report's builders read besides the figures."""

    texts: Texts
    data: Dataset
    settings: Settings
    tz: ZoneInfo
    names: list[str]  # display name per agent index (unique)
    target: float
    low_rating: int
    nps: bool  # the form asks the 0–10 question: NPS columns are shown
    templates: Mapping[str, str | None]
    funnel: bool = False  # show the funnel's opened step (short links are on)

    def team(self, index: int) -> str:
        """The team's name; "No team" for the surveys that named none. A team that is
        called so (as a reader sees it) beside them is told apart by its tag, as an agent
        called "No agent recorded" is by their key: two "No team" rows could not be."""
        team = self.data.teams[index]
        if not team:
            return self.texts["no_team"]
        if team in self._called_no_team:
            return f"{team} #{tag(name_key(team))}"
        return team

    @cached_property
    def _called_no_team(self) -> frozenset[str]:
        """The teams whose name reads as the label of no team, when answers or surveys of no
        team are listed too (:meth:`team`)."""
        label = as_seen(self.texts["no_team"])
        called = frozenset(t for t in self.data.teams if t and as_seen(t) == label)
        if not called or "" not in self.data.teams:  # the usual case: no answer looked at
            return frozenset()
        none = self.data.teams.index("")
        listed = none in self.data.sent.team or any(a.team == none for a in self.data.answers)
        return called if listed else frozenset()

    def agent_order(self, index: int) -> tuple[bool, str]:
        """Agents by name, no agent recorded (:func:`is_no_agent`) after them."""
        return is_no_agent(self.data.agents[index]), self.names[index].casefold()

    def zone(self, key: str) -> str:
        """A header with the time zone: "Submitted (Europe/Moscow)"."""
        return self.texts[key].format(tz=self.tz.key)


def is_no_agent(agent: Agent) -> bool:
    """Whether ``agent`` stands for the surveys whose close named no agent (a helpdesk's
    agent key "", as intake signs it): not an agent, so never ranked nor fitted."""
    return not agent.key


def no_agent_indexes(data: Dataset) -> frozenset[int]:
    """The agent indexes of :func:`is_no_agent` (one per helpdesk at most)."""
    return frozenset(i for i, agent in enumerate(data.agents) if is_no_agent(agent))


def display_names(data: Dataset, texts: Texts | None = None) -> list[str]:
    """Each agent's name, with the agent key added where two agents share a name, and the
    helpdesk too where two helpdesks' agents share the name and the key (agent "7" of each).

    The surveys whose close named no agent (:func:`is_no_agent`) are labelled so
    (``texts["no_agent"]``, "No agent recorded"), with their helpdesk when more than one
    helpdesk has them; an agent whose name is that label gets their key.

    Names are compared as a reader sees them (:func:`~csat_hook.db.text.as_seen`:
    Unicode NFKC, case, runs of spaces): "Семён" typed with a composed ё and one written as
    е + U+0308 (a name pasted from a macOS file) look the same on the leaderboard, so both
    get their key. Labels that still look alike (no name and a key that shows nothing) get
    their tab's tag too (:func:`~csat_hook.sync.titles.tag`), whatever the agents' order."""
    label = (texts or Texts("en"))["no_agent"]
    unnamed = sum(1 for a in data.agents if is_no_agent(a))
    shown = [label if is_no_agent(a) else _shown(a) for a in data.agents]
    counts = Counter(as_seen(name) for name in shown)
    keyed = Counter((as_seen(name), a.key) for name, a in zip(shown, data.agents, strict=True))
    names = []
    for name, agent in zip(shown, data.agents, strict=True):
        seen = as_seen(name)
        if is_no_agent(agent):
            names.append(f"{name} ({agent.helpdesk})" if unnamed > 1 else name)
        elif counts[seen] > 1 and keyed[seen, agent.key] > 1:
            # The key alone does not tell them apart: the helpdesk does.
            if agent.name == agent.key:
                names.append(f"{name} ({agent.helpdesk})")
            else:
                names.append(f"{name} ({agent.helpdesk}: {_visible(agent.key)})")
        elif counts[seen] > 1 and agent.name != agent.key:
            key = _visible(agent.key)
            names.append(f"{name} ({key})" if as_seen(key) else name)  # a key that shows nothing
        elif seen == normalize(label) and unnamed:
            names.append(f"{name} ({agent.helpdesk}: {_visible(agent.key)})")  # key = the label
        else:
            names.append(name)
    # Labels that still look alike (no name and a key that shows nothing: "-"; keys that differ
    # only by what shows nothing, "7" and "7\u200b"): each gets the tag its tab gets
    # (titles.tag, titles.distinct), the same whatever the agents' order.
    alike = Counter(as_seen(name) for name in names)
    shared = Counter(agent.key for agent in data.agents)
    for i, agent in enumerate(data.agents):
        if alike[as_seen(names[i])] > 1 and not is_no_agent(agent):
            helpdesk = agent.helpdesk if shared[agent.key] > 1 else None
            names[i] = f"{names[i]} #{tag(agent.key, helpdesk)}"
    return names


def _visible(text: str) -> str:
    """``text`` without bidirectional controls (an override before ")7( annA" showed the key
    after it reversed: "(9) Anna (7)") nor control characters; tabs and line breaks as
    spaces. Right-to-left names still read right to left, by their letters."""
    return _CONTROLS.sub("", BIDI.sub("", text)).translate(_BREAKS)


def _shown(agent: Agent) -> str:
    """The agent's name as a label shows it (:func:`_visible`); their key when the name
    shows nothing (spaces, a zero-width space), "-" when neither does."""
    for text in (agent.name, agent.key):
        visible = _visible(text)
        if as_seen(visible):
            return visible
    return "-"


# Each adds 0.0: a value rounded to zero from below is -0.0, which a file may write "-0" and
# a CSV "-0.0" (-0.0 + 0.0 is 0.0).


def fraction(value: float | None) -> float | None:
    return None if value is None else round(value, DIGITS) + 0.0


def points(value: float | None) -> float | None:
    """A difference of fractions in percentage points (5.2 for +0.052)."""
    return None if value is None else round(100 * value, DIGITS) + 0.0


def score(value: float | None) -> float | None:
    """An NPS fraction on the usual −100..100 scale."""
    return None if value is None else round(100 * value, DIGITS) + 0.0


def ticket_link(templates: Mapping[str, str | None], helpdesk: str, dialog_id: str) -> str | None:
    """The ticket URL from the helpdesk's ``ticket_url_template`` (as the adapters build it)."""
    return ticket_url(templates.get(helpdesk), dialog_id)


class LocalTime:
    """A UTC instant as a naive local ``datetime`` in ``tz`` (to the minute); the UTC offset
    is cached per UTC hour (a report converts every answer's time, and zone conversion is the
    slow part) when the offset is the same all through that hour. An hour in which the zone's
    clocks change (at a half hour of UTC in Adelaide, St. John's or Lord Howe, at odd seconds
    from local mean time) is converted instant by instant. An instant whose local time falls
    outside the years 1-9999 (a sheet's ``0001-01-01 03:00 UTC`` seen from New York) is shown
    as its UTC time: a stored answer never fails the report."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._offsets: dict[int, timedelta | None] = {}  # None: the offset changes in it

    def _offset(self, moment: datetime) -> timedelta:
        try:
            return moment.astimezone(self.tz).utcoffset() or timedelta(0)
        except OverflowError:
            return timedelta(0)

    def __call__(self, moment: datetime) -> datetime:
        hour = int(moment.timestamp() // 3600)
        cached = self._offsets.get(hour, _UNSEEN)
        if cached is None:
            offset = self._offset(moment)
        elif cached is not _UNSEEN:
            offset = cached
        else:
            offset = self._offset(moment)
            try:
                start = datetime.fromtimestamp(hour * 3600, UTC)
                end = start + _LAST_SECOND
            except (OverflowError, OSError, ValueError):
                start = end = moment
            steady = self._offset(start) == offset == self._offset(end)
            self._offsets[hour] = offset if steady else None
        try:
            local = moment + offset
        except OverflowError:
            local = moment
        return local.replace(tzinfo=None, second=0, microsecond=0)


_LAST_SECOND = timedelta(seconds=3599, microseconds=999999)
_UNSEEN = timedelta(days=-1)  # never an offset of a real zone (they are within ±1 day)


def percent_columns(texts: Texts, *keys: str, width: int = 9) -> list[Column]:
    return [Column(texts[key], Fmt.PERCENT, width, csv_header=f"{texts[key]} (%)") for key in keys]


def funnel_columns(ctx: Context) -> list[Column]:
    """After "Surveys sent": the funnel's next steps on the same cohort."""
    t = ctx.texts
    return [
        Column(t["opened"], Fmt.COUNT, 9),
        Column(t["open_rate"], Fmt.PERCENT, 10, csv_header=f"{t['open_rate']} (%)"),
        Column(t["answered_sent"], Fmt.COUNT, 9),
    ]


def funnel_cells(stats: Stats) -> list[float | int | None]:
    return [stats.opened, fraction(stats.open_rate), stats.answered_sent]
