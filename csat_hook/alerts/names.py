"""How alert text names an agent: by name, with the agent key only where another agent's name
looks the same.

Two agents named "Anna Petrova" (agents 7 and 8) got the same text, "Low rating 1/5 for Anna
Petrova": whose answer it was could not be told. Where names collide, the key is added, as the
report's labels add it ("Anna Petrova (7)"); where the key is another helpdesk's agent's too,
the helpdesk as well ("Anna Petrova (zendesk: 7)"). Names are compared as a reader sees them
(:func:`~csat_hook.db.text.as_seen`), as the report's labels compare them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence

import sqlalchemy as sa

from csat_hook.db.schema import answers
from csat_hook.db.schema import surveys
from csat_hook.db.text import as_seen
from csat_hook.db.text import in_chunks
from csat_hook.db.text import name_key
from csat_hook.db.text import shown_name
from csat_hook.db.text import shown_spelling

Agent = tuple[str, str]  # (helpdesk, agent key)


def told_apart(
    named: Mapping[Agent, str], others: Iterable[tuple[Agent, str]] = ()
) -> dict[Agent, str]:
    """Each agent of ``named`` ((helpdesk, key) → name) → the name alert text shows: the name,
    with the key where another agent (of ``named`` or ``others``) has a name that looks the
    same, and the helpdesk too where that agent's key is the same.

    A name that still looks like another agent's once keys are added (agent 9 named "Anna
    Petrova (7)" beside agent 7, shown as "Anna Petrova (7)" for an agent 8 of that name)
    gets the helpdesk and key too, as the report's labels still alike get their tag: both
    alerts read "Anna Petrova (7)", and agent 9's bad ratings passed for agent 7's."""
    pairs = [*others, *named.items()]
    by_look: dict[str, set[Agent]] = {}
    for agent, name in pairs:  # an agent renamed: under each name
        by_look.setdefault(as_seen(name), set()).add(agent)

    def label(agent: Agent, name: str) -> str:
        helpdesk, key = agent
        alike = by_look[as_seen(name)]
        if len(alike) < 2:
            return name
        same_key = sum(1 for _, other in alike if other == key) > 1
        if not key:  # the no-agent label ("No agent recorded") of more than one helpdesk
            return f"{name} ({helpdesk})"
        if as_seen(key) == as_seen(name):  # no name but the key: the others get theirs
            return f"{name} ({helpdesk})" if same_key else name
        if same_key:  # the key does not tell them apart: the helpdesk does
            return f"{name} ({helpdesk}: {key})"
        return f"{name} ({key})"

    shown = {agent: label(agent, name) for agent, name in named.items()}
    labelled: dict[str, set[Agent]] = {}
    for agent, name in pairs:
        text = shown[agent] if agent in named else label(agent, name)
        labelled.setdefault(as_seen(text), set()).add(agent)
    for (helpdesk, key), text in shown.items():
        if len(labelled[as_seen(text)]) > 1:
            shown[helpdesk, key] = f"{text} ({helpdesk}: {key})" if key else f"{text} ({helpdesk})"
    return shown


def team_names(conn: sa.Connection, teams: Iterable[str | None]) -> dict[str, str]:
    """Each of ``teams`` (a survey's team as its helpdesk spelled it: "billing ") → the name
    the report shows that team by, its spellings compared by
    :func:`~csat_hook.db.text.name_key` ("Billing", most surveys with a token spelling it
    so: :func:`~csat_hook.db.text.shown_name`); "" for a name that is no team (spaces,
    invisible characters)."""
    keys = {team: name_key(team) for team in teams if team}
    wanted = set(keys.values()) - {""}
    if not wanted:
        return dict.fromkeys(keys, "")
    uses: dict[str, Counter[str]] = {}
    for team, count in conn.execute(
        sa.select(surveys.c.team, sa.func.count())
        .where(surveys.c.token.is_not(None), surveys.c.team.is_not(None))
        .group_by(surveys.c.team)
    ):
        key = name_key(team)
        if key in wanted:
            uses.setdefault(key, Counter())[shown_spelling(team)] += count
    return {
        team: shown_name(uses[key].items()) if key in uses else shown_spelling(team) if key else ""
        for team, key in keys.items()
    }


def named_alike(conn: sa.Connection, names: Sequence[str]) -> list[tuple[Agent, str]]:
    """The agents with an answer whose survey recorded one of ``names``, each with that name:
    whom an agent's name may collide with when no dataset was read (answer rules only)."""
    found: set[tuple[Agent, str]] = set()
    for chunk in in_chunks(sorted({name for name in names if name})):
        rows = conn.execute(
            sa.select(answers.c.helpdesk, answers.c.agent_key, surveys.c.agent_name)
            .join(surveys, surveys.c.token == answers.c.token)
            .where(surveys.c.agent_name.in_(chunk))
            .distinct()
        )
        found.update(((helpdesk, key), name) for helpdesk, key, name in rows)
    return sorted(found)
