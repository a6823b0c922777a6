"""Database rows → the facts the metrics and the report need.

Agents are identified by (helpdesk, agent key), the key being what the signed reference
carries. Display names come from the survey rows (as recorded at send time; the latest one
wins), else from the helpdesk's static ``agents:`` map, else the key itself. Never from the
form's editable agent field.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from csat_hook import tokens
from csat_hook.errors import TokenError
from csat_hook.records import Person
from csat_hook.sync.metrics import DayIndexer

SENT = "sent"


@dataclass(frozen=True, slots=True)
class Agent:
    helpdesk: str
    key: str
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    agent: int
    team: int
    helpdesk: str
    dialog_id: str
    rating: int
    comment: str
    submitted_at: datetime
    day: int
    answered_sent: bool


@dataclass
class Dataset:
    agents: list[Agent] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    answers: list[AnswerRecord] = field(default_factory=list)
    sent: list[tuple[int, int, int]] = field(default_factory=list)

    def answer_facts(self) -> Iterator[tuple[int, int, int, int, bool]]:
        return ((a.agent, a.team, a.day, a.rating, a.answered_sent) for a in self.answers)


class _Index:
    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}

    def __call__(self, key: Any) -> int:
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.ids)
        return found


def survey_agent_key(row: Any, secrets: Sequence[str]) -> str:
    """The agent key a survey's token binds (the id when recorded, else read from the token)."""
    if row.agent_id:
        return str(row.agent_id)
    try:
        return tokens.verify(row.token, secrets).agent
    except TokenError:
        # Signed with a retired secret: the key intake used is computed the same way.
        return Person(row.agent_id, row.agent_name, row.agent_email).key or ""


def build_dataset(answer_rows: Sequence[Any], survey_rows: Sequence[Any], *,
                  secrets: Sequence[str], helpdesks: Mapping[str, Any],
                  day_of: DayIndexer) -> Dataset:
    """Join answers to their surveys (by token) and index agents and teams."""
    agent_index, team_index = _Index(), _Index()
    names: dict[tuple[str, str], tuple[datetime, str, str]] = {}
    surveys: dict[str, tuple[int, int, datetime, str]] = {}
    data = Dataset()
    for row in survey_rows:
        who = (row.helpdesk, survey_agent_key(row, secrets))
        agent = agent_index(who)
        team = team_index(row.team or "")
        surveys[row.token] = (agent, team, row.created_at, row.status)
        if row.agent_name or row.agent_email:
            seen = names.get(who)
            if seen is None or row.created_at >= seen[0]:
                names[who] = (row.created_at, row.agent_name or "", row.agent_email or "")
        if row.status == SENT:
            data.sent.append((agent, team, day_of(row.created_at)))
    for row in answer_rows:
        agent = agent_index((row.helpdesk, row.agent_key))
        survey = surveys.get(row.token)
        if survey is None:
            team, cohort, matched = team_index(""), row.issued_at, False
        else:
            _, team, cohort, status = survey
            matched = status == SENT
        data.answers.append(AnswerRecord(agent, team, row.helpdesk, row.dialog_id, row.rating,
                                         row.comment or "", row.submitted_at, day_of(cohort),
                                         matched))
    data.teams = [team for team, _ in sorted(team_index.ids.items(), key=lambda kv: kv[1])]
    data.agents = [_agent(who, names.get(who), helpdesks)
                   for who, _ in sorted(agent_index.ids.items(), key=lambda kv: kv[1])]
    return data


def _agent(who: tuple[str, str], recorded: tuple[datetime, str, str] | None,
           helpdesks: Mapping[str, Any]) -> Agent:
    helpdesk, key = who
    name, email = (recorded[1], recorded[2]) if recorded else ("", "")
    options = helpdesks.get(helpdesk)
    static = getattr(options, "agents", {}).get(key) if options is not None else None
    if static is not None:
        name = name or (static.name or "")
        email = email or (static.email or "")
    return Agent(helpdesk, key, name or email or key, email)
