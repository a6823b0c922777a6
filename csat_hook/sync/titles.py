"""Tab and worksheet titles: stable, unique, short enough, no forbidden characters.

An agent's tab is ``<name> (<key>)`` (just the key when there is no other name), so it
stays the same across runs and two agents with one name never share a tab; an agent whose
key another helpdesk's agent also has (agent "7" of each) is ``<name> (<helpdesk> <key>)``
(``<key> (<helpdesk>)``), so two helpdesks' agents of one name and key never do either.
Sheets allows 100 characters, Excel 31; neither likes ``[]:*?/\\`` nor a leading or
trailing apostrophe. Titles are compared case-insensitively, as Sheets does. Lengths are
counted in UTF-16 code units, as Excel counts them: an emoji is two, and a name of 31 code
points holding one makes Excel report the workbook damaged (randym/axlsx#588,
caxlsx/caxlsx#70). Excel also reserves the name "History" (any case;
:data:`XLSX_RESERVED`), which Sheets allows. Bidirectional controls are dropped: a
RIGHT-TO-LEFT OVERRIDE (U+202E) before ")7( annA" reversed the rest of the title, the key
included, and the tab of agent 9 showed as "(9) Anna (7)".

A key too long to fit whole (an e-mail past Excel's 31) is cut, and the title ends with
``… #TAG``: four characters made from the agent's helpdesk and key (:func:`tag`). Cut alone,
two such keys starting alike ("support.team.alice@…", "support.team.bob@…" at 20 characters)
gave one title, told apart only by the " 2" the later one got: which was whose depended on
the report's order. The tag is the same run after run and in both outputs. Agents whose
titles clean to one ("Anna (a/b)" and "Anna (a:b)" are both "Anna (a b)"; names and keys
that show nothing, "-") each get theirs the same way (:func:`distinct`): " 2" went by order.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from collections.abc import Sequence

from csat_hook.db.text import shows_something

SHEETS_MAX = 100
XLSX_MAX = 31
_WHOLE = 1_000  # an agent key is at most 255 characters (answers.agent_key): never cut
# Names Excel keeps for itself ("Rename a worksheet", support.microsoft.com: "History" is
# "a reserved word Excel uses internally"). openpyxl writes a sheet so named and Excel then
# reports the workbook damaged: pass them as ``taken`` and such a title becomes "History 2".
XLSX_RESERVED = ("History",)
# Also what XML cannot hold (an .xlsx keeps the titles in XML): controls, U+FFFE, U+FFFF.
_FORBIDDEN = re.compile("[\\[\\]:*?/\\\\\x00-\x1f\ud800-\udfff\ufffe\uffff]")
# Bidirectional marks, embeddings, overrides and isolates (UAX #9): invisible, so dropped.
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def units(text: str) -> int:
    """``text``'s length in UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def cut(text: str, max_units: int) -> str:
    """The longest start of ``text`` within ``max_units`` UTF-16 code units."""
    if len(text) <= max_units and text.isascii():
        return text
    # A pair cut in half leaves half a surrogate at the end: "ignore" drops it.
    return text.encode("utf-16-le", "surrogatepass")[: 2 * max_units].decode("utf-16-le", "ignore")


def clean(text: str, max_len: int) -> str:
    """``text`` without forbidden characters, squeezed and cut to ``max_len``, neither a
    space nor an apostrophe first or last (stripped together: apostrophes stripped alone left
    the space beside them there, " 'Anna" from "' ' 'Anna"; once squeezed, a space is all
    the white space left)."""
    text = " ".join(_FORBIDDEN.sub(" ", BIDI.sub("", text)).split()).strip(" '")
    return cut(text, max_len).strip(" '") or "-"


def tag(key: str, helpdesk: str | None = None) -> str:
    """Four characters (A-Z, 2-7) made from the agent ``key`` (and ``helpdesk``): the same on
    every run, different for two keys but once in about a million pairs (then " 2" still
    tells the titles apart)."""
    digest = hashlib.blake2b(json.dumps([helpdesk, key]).encode(), digest_size=5).digest()
    return base64.b32encode(digest).decode("ascii")[:4]


def _tagged(title: str, key: str, helpdesk: str | None, max_len: int) -> str:
    """``title`` cut to end with ``… #TAG`` (:func:`tag`) within ``max_len``."""
    tail = f"… #{tag(key, helpdesk)}"
    return clean(cut(title, max_len - units(tail)), max_len) + tail


def distinct(title: str, key: str, helpdesk: str | None, max_len: int) -> str:
    """``title`` of an agent whose title another agent's cleans to too (keys that differ by a
    forbidden character, "a/b" and "a:b"; names and keys that show nothing, "-"), told apart
    by `` #TAG`` (:func:`tag`), cut to end with ``… #TAG`` when it does not fit: the same
    whatever the order of the agents, as " 2" was not."""
    tail = f" #{tag(key, helpdesk)}"
    if units(title) + units(tail) <= max_len:
        return title + tail
    return _tagged(title, key, helpdesk, max_len)


def agent_title(name: str, key: str, max_len: int, helpdesk: str | None = None) -> str:
    """``Name (key)``; the name is shortened first so the key (the identity) survives. A key
    that does not fit whole even so is cut, with ``… #TAG`` at the end (:func:`tag`): the
    start of two long keys may be the same.

    With ``helpdesk`` (another helpdesk has an agent of the same key: the key alone does not
    name the agent), ``Name (helpdesk key)``, or ``key (helpdesk)`` for an agent with no other
    name, as the report's labels name them (report/common.py ``display_names``; a colon is
    not allowed in a title).

    The answers of no agent (key ""): the name alone, ``Name (helpdesk)`` with ``helpdesk``.
    A name that shows nothing (spaces, a zero-width space) is no name: the key is the title,
    as the report's labels name such an agent (their tab was "\u200b (124)" or "- (123)"
    where the Summary said "124" and "123")."""
    if key and not shows_something(name):
        name = key
    if not key:
        return clean(name if helpdesk is None else f"{name} ({helpdesk})", max_len)
    identity = key
    # Cleaned whole (a title is never longer than this): whether the key fits is asked below.
    name, key = clean(name, _WHOLE), clean(key, _WHOLE)
    if name.casefold() == key.casefold():  # the key is all the title says: never cut alone
        whole = key if helpdesk is None else clean(f"{key} ({helpdesk})", _WHOLE)
        return whole if units(whole) <= max_len else _tagged(whole, identity, helpdesk, max_len)
    if helpdesk is not None:
        key = clean(f"{helpdesk} {key}", _WHOLE)
    whole = clean(f"{name} ({key})", _WHOLE)
    if units(whole) <= max_len:
        return whole
    suffix = f" ({key})"
    if units(suffix) >= max_len - 3:
        return _tagged(whole, identity, helpdesk, max_len)
    return clean(cut(name, max_len - units(suffix)) + suffix, max_len)


def numbered(title: str, n: int, max_len: int) -> str:
    """``title`` with " ``n``" after it, cut to keep within ``max_len``: the title
    :func:`unique_titles` gives the ``n``-th tab wanting ``title``."""
    tail = f" {n}"
    return cut(title, max_len - len(tail)).rstrip() + tail


def unique_titles(wanted: Sequence[str], max_len: int, taken: Iterable[str] = ()) -> list[str]:
    """Make each title unique (case-insensitively, also against ``taken``) with " 2", " 3"."""
    used = {t.casefold() for t in taken}
    result = []
    for title in wanted:
        candidate, n = title, 1
        while candidate.casefold() in used:
            n += 1
            candidate = numbered(title, n, max_len)
        used.add(candidate.casefold())
        result.append(candidate)
    return result


# A tab to title: (name, agent key or None), and the agent's helpdesk (agent_title) when
# the key alone does not name the agent.
Named = tuple[str, str | None] | tuple[str, str | None, str | None]


def table_titles(
    names: Sequence[Named], max_len: int, taken: Iterable[str] = (), yielding: Iterable[str] = ()
) -> list[str]:
    """Titles for ``(name, agent key or None[, helpdesk])`` tuples, unique and within
    ``max_len``, in the order given, none of ``taken``; none of ``yielding`` either but the
    report's own (titles of tabs that give way to them: a departed agent's, renamed).

    Agents whose titles are one (compared as Sheets does) each get their tag
    (:func:`distinct`), so which tab is whose does not depend on their order; " 2" is left
    for a title that is still taken (the report's own, a tab csat-hook did not make, two
    tags alike: once in about a million pairs).

    The report's own tabs (no key) get theirs first, wherever they are listed: the agents'
    tabs come before Unverified and Alerts, and an agent whose title is the same (a shared
    account whose key is its name, "alerts") took the team's Alerts tab, its alerts moved
    to "Alerts 2", and the "Handled" column was read back from the agent's tab."""
    wanted = [
        agent_title(named[0], named[1], max_len, named[2] if len(named) > 2 else None)
        if named[1] is not None
        else clean(named[0], max_len)
        for named in names
    ]
    own = [i for i, named in enumerate(names) if named[1] is None]
    agents = [i for i, named in enumerate(names) if named[1] is not None]
    # Agents whose titles are one get their tags, unless two of them are one agent to a tag
    # (the same key and helpdesk: only " 2" tells such tabs apart).
    clashing: dict[str, list[tuple[str, str | None]]] = {}
    for i in agents:
        clashing.setdefault(wanted[i].casefold(), []).append(_identity(names[i]))
    for i in agents:
        group = clashing[wanted[i].casefold()]
        if len(group) > 1 and len(set(group)) == len(group):
            key, helpdesk = _identity(names[i])
            wanted[i] = distinct(wanted[i], key, helpdesk, max_len)
    titles = dict(zip(own, unique_titles([wanted[i] for i in own], max_len, taken), strict=True))
    claimed = [*taken, *yielding, *titles.values()]
    agent_titles = unique_titles([wanted[i] for i in agents], max_len, claimed)
    titles.update(zip(agents, agent_titles, strict=True))
    return [titles[i] for i in range(len(names))]


def _identity(named: Named) -> tuple[str, str | None]:
    """The agent key and helpdesk a tag is made from."""
    return named[1] or "", named[2] if len(named) > 2 else None
