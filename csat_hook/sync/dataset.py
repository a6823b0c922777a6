"""Database rows → the facts the metrics and the report need.

Agents are identified by (helpdesk, agent key), the key being what the signed reference
carries; a reference that names no agent (its close named none) counts for the agent id the
service recorded on the survey when the reply went out (an agent look-up). Display names
come from the survey rows (as recorded at send time; the latest one wins), else from the
helpdesk's static ``agents:`` map, else the key itself. Never from the form's editable agent
field.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from collections.abc import Set
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from operator import itemgetter
from typing import Any
from typing import NamedTuple

from csat_hook import tokens
from csat_hook.errors import TokenError
from csat_hook.helpdesks.records import Person
from csat_hook.sync.metrics import AnswerColumns
from csat_hook.sync.metrics import SentColumns

SENT = "sent"


@dataclass(frozen=True, slots=True)
class Agent:
    helpdesk: str
    key: str
    name: str
    email: str


class AnswerRecord(NamedTuple):
    agent: int
    team: int
    helpdesk: str
    dialog_id: str
    rating: int
    comment: str
    submitted_at: datetime
    # The survey's creation (else the token's issue time), in microseconds since the Unix
    # epoch: an integer as the database computes it (store.survey_facts).
    cohort: int
    answered_sent: bool
    nps: int | None  # the 0–10 answer, when the form asks it
    channel: str  # as recorded with the survey ("" when unknown)


@dataclass
class SentRows:
    """The sent surveys as parallel lists, one entry per survey: agent and team indexes, the
    cohort instant (microseconds since the Unix epoch), whether a person opened it through a
    short link. Only the metrics read them, as columns: four appends per survey cost less
    than a tuple per survey (1,300,000 of them) and its unpacking again, column by column."""

    agent: list[int] = field(default_factory=list)
    team: list[int] = field(default_factory=list)
    cohort: list[int] = field(default_factory=list)
    opened: list[bool] = field(default_factory=list)

    def append(self, agent: int, team: int, cohort: int, opened: bool) -> None:
        self.agent.append(agent)
        self.team.append(team)
        self.cohort.append(cohort)
        self.opened.append(opened)

    def __len__(self) -> int:
        return len(self.agent)


@dataclass
class Dataset:
    agents: list[Agent] = field(default_factory=list)
    teams: list[str] = field(default_factory=list)
    answers: list[AnswerRecord] = field(default_factory=list)
    sent: SentRows = field(default_factory=SentRows)

    def answer_facts(self) -> AnswerColumns:
        """``(agent, team, cohort instant, rating, answered_sent, nps)`` of the answers as
        columns, as :func:`~csat_hook.sync.metrics.compute` takes them (instants in Unix
        seconds: the integer microseconds divided as one array, equal to
        ``datetime.timestamp()``, which divides the same integers)."""
        import numpy as np

        answers, n = self.answers, len(self.answers)
        return AnswerColumns(
            np.fromiter(map(_AGENT, answers), np.int64, n),
            np.fromiter(map(_TEAM, answers), np.int64, n),
            np.fromiter(map(_COHORT, answers), np.int64, n) / MICROSECONDS,
            np.fromiter(map(_RATING, answers), np.int64, n),
            np.fromiter(map(_MATCHED, answers), np.bool_, n),
            np.fromiter((-1 if v is None else v for v in map(_NPS, answers)), np.int64, n),
        )

    def sent_facts(self) -> SentColumns:
        """The surveys sent, ``(agent, team, cohort instant, opened)``, as columns."""
        import numpy as np

        sent, n = self.sent, len(self.sent)
        return SentColumns(
            np.fromiter(sent.agent, np.int64, n),
            np.fromiter(sent.team, np.int64, n),
            np.fromiter(sent.cohort, np.int64, n) / MICROSECONDS,
            np.fromiter(sent.opened, np.bool_, n),
        )


MICROSECONDS = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_microseconds(moment: datetime) -> int:
    """An aware datetime as whole microseconds since the Unix epoch (what
    :class:`csat_hook.sync.bulk.epoch_microseconds` computes in the database)."""
    return (moment - _EPOCH) // _MICROSECOND


# By position: an itemgetter is faster than the named tuple's attribute (1,000,000 a column).
_AGENT, _TEAM, _COHORT, _RATING, _MATCHED, _NPS = (
    itemgetter(AnswerRecord._fields.index(name))
    for name in ("agent", "team", "cohort", "rating", "answered_sent", "nps")
)


class _Index:
    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}

    def __call__(self, key: Any) -> int:
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.ids)
        return found


# A survey as the answers join it, packed in one int (build_dataset): from the top, its
# creation time (µs since the epoch; shifts floor, so any sign comes back as it went in),
# whether it was sent (one bit), then its channel's, team's and agent's indexes, _FIELD bits
# each (far fewer than 2**32 of any).
_FIELD = 32
_MASK = (1 << _FIELD) - 1
_CHANNEL, _TOP = 2 * _FIELD, 3 * _FIELD


def survey_agent_key(
    agent_id: str | None,
    agent_name: str | None,
    agent_email: str | None,
    token: str,
    secrets: Sequence[str],
) -> str:
    """The agent key a survey's token binds (the id when recorded, else read from the token)."""
    if agent_id:
        return str(agent_id)
    try:
        return tokens.verify(token, secrets).agent
    except TokenError:
        # Signed with a retired secret: the key intake used is computed the same way.
        return Person(agent_id, agent_name, agent_email).key or ""


def build_dataset(
    answer_rows: Iterable[Any],
    survey_rows: Iterable[Any],
    *,
    secrets: Sequence[str],
    helpdesks: Mapping[str, Any],
    opened: Set[str] = frozenset(),
) -> Dataset:
    """Join answers to their surveys (by survey key, whatever spelling of the reference an
    answer was stored under) and index agents and teams. ``opened`` holds the keys of the
    surveys a person opened (:func:`csat_hook.clicks.funnel.opened_survey_keys`).

    Each iterable is read once, surveys first, and no row is kept (they may be streamed
    from the database: :func:`csat_hook.sync.store.iter_survey_facts`). Rows are unpacked
    positionally (the column order of ``store.survey_facts`` and
    ``store.all_answers``): this runs once per survey and answer, hundreds of thousands of
    times in a first sync. A survey's creation time is the integer the database computed
    (``created_us``, microseconds since the Unix epoch): no datetime is made or converted per
    survey; only an answer whose survey is not in the database converts its token's issue time.
    """
    agent_index, team_index = _Index(), _Index()
    agent_ids, team_ids = agent_index.ids, team_index.ids
    names: dict[tuple[str, str], tuple[int, str, str]] = {}
    # Survey key → the survey packed in one int (_FIELD): a tuple and its creation time were
    # ≈ 110 bytes a survey, the report's peak of memory with 150,000 of them.
    surveys: dict[str, int] = {}
    channels = _Index()  # each channel's text once, not once per survey
    channel_ids = channels.ids
    data = Dataset()
    sent_agent, sent_team = data.sent.agent.append, data.sent.team.append
    sent_cohort, sent_opened = data.sent.cohort.append, data.sent.opened.append
    for (
        token,
        helpdesk,
        _,
        agent_id,
        agent_name,
        agent_email,
        team_name,
        status,
        created,  # microseconds since the Unix epoch
        channel,
    ) in survey_rows:
        # The index look-ups inlined (a new key goes through _Index): once per survey.
        who = (
            helpdesk,
            agent_id
            if agent_id and agent_id.__class__ is str
            else survey_agent_key(agent_id, agent_name, agent_email, token, secrets),
        )
        agent = agent_ids.get(who)
        if agent is None:
            agent = agent_index(who)
        team = team_ids.get(team_name or "")
        if team is None:
            team = team_index(team_name or "")
        sent = status == SENT
        key = token.partition(".")[0]  # tokens.survey_key, inlined
        channel_id = channel_ids.get(channel or "")
        if channel_id is None:
            channel_id = channels(channel or "")
        surveys[key] = (
            (((created << 1 | sent) << _FIELD | channel_id) << _FIELD | team) << _FIELD
        ) | agent
        if (agent_name or agent_email) and who[1]:  # the no-agent key is never named
            seen = names.get(who)
            if seen is None or created >= seen[0]:
                names[who] = (created, agent_name or "", agent_email or "")
        if sent:
            sent_agent(agent)
            sent_team(team)
            sent_cohort(created)
            sent_opened(key in opened)
    no_team = team_index("")
    channel_texts = list(channels.ids)  # in index order (a dict keeps insertion order)
    helpdesk_texts: dict[str, str] = {}  # each helpdesk's name held once, not per answer
    append, new_record = data.answers.append, tuple.__new__
    for (
        survey_key,
        helpdesk,
        dialog_id,
        agent_key,
        issued_at,
        rating,
        comment,
        submitted_at,
        nps,
    ) in answer_rows:
        helpdesk = helpdesk_texts.setdefault(helpdesk, helpdesk)
        packed = surveys.get(survey_key)
        if packed is not None:
            top = packed >> _TOP
            cohort, matched = top >> 1, top & 1 == 1
            channel = channel_texts[packed >> _CHANNEL & _MASK]
            team, surveyed = packed >> _FIELD & _MASK, packed & _MASK
        else:
            cohort = epoch_microseconds(issued_at)
            team, matched, channel, surveyed = no_team, False, "", None
        # A reference naming no agent (the close named none) goes to the agent the reply was
        # sent for, as the service recorded it on the survey.
        if agent_key or surveyed is None:
            who = (helpdesk, agent_key)
            agent = agent_ids.get(who)  # the index look-up inlined, as above
            if agent is None:
                agent = agent_index(who)
        else:
            agent = surveyed
        append(
            # The tuple made directly: calling the NamedTuple class goes through its Python
            # __new__ (100,000 answers in a first sync).
            new_record(
                AnswerRecord,
                (
                    agent,
                    team,
                    helpdesk,
                    dialog_id,
                    rating,
                    comment or "",
                    submitted_at,
                    cohort,
                    matched,
                    nps,
                    channel,
                ),
            )
        )
    data.teams = [team for team, _ in sorted(team_index.ids.items(), key=lambda kv: kv[1])]
    data.agents = [
        _agent(who, names.get(who), helpdesks)
        for who, _ in sorted(agent_index.ids.items(), key=lambda kv: kv[1])
    ]
    return data


def _agent(
    who: tuple[str, str], recorded: tuple[int, str, str] | None, helpdesks: Mapping[str, Any]
) -> Agent:
    helpdesk, key = who
    name, email = (recorded[1], recorded[2]) if recorded else ("", "")
    options = helpdesks.get(helpdesk)
    static = getattr(options, "agents", {}).get(key) if options is not None else None
    if static is not None:
        name = name or (static.name or "")
        email = email or (static.email or "")
    return Agent(helpdesk, key, name or email or key, email)
