"""Database rows → the facts the metrics and the report need.

Agents are identified by (helpdesk, agent key), the key being what the signed reference
carries; a reference that names no agent (its close named none) counts for the agent id the
service recorded on the survey when the reply went out (an agent look-up). Display names
come from the survey rows (as recorded at send time; the latest one wins), else from the
helpdesk's static ``agents:`` map, else the key itself. Never from the form's editable agent
field.

Teams are identified by their name's :func:`~csat_hook.db.text.name_key` (NFKC, case, spaces
and invisible characters aside): "Billing", "billing" and "BILLING " recorded with surveys are
one team, named by its most frequent spelling (:func:`team_names`). The surveys keep the
spelling the helpdesk sent; only the report folds them.
"""

from __future__ import annotations

from array import array
from collections import Counter
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
from csat_hook.db.text import clipped
from csat_hook.db.text import digest
from csat_hook.db.text import name_key
from csat_hook.db.text import shown_name
from csat_hook.db.text import shown_spelling
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
    answered_sent: bool
    nps: int | None  # the 0–10 answer, when the form asks it
    channel: str  # as recorded with the survey ("" when unknown)


@dataclass
class SentRows:
    """The sent surveys as parallel columns, one entry per survey: agent and team indexes, the
    cohort instant (microseconds since the Unix epoch), whether a person opened it through a
    short link. Only the metrics read them, as columns: four appends per survey cost less
    than a tuple per survey (1,300,000 of them) and its unpacking again, column by column.
    Typed arrays, not lists: ≈ 17 bytes a survey where lists of ints held ≈ 60 (a cohort is
    an int object of its own), and the dataset is kept between runs (patch_dataset)."""

    agent: array[int] = field(default_factory=lambda: array("i"))
    team: array[int] = field(default_factory=lambda: array("i"))
    cohort: array[int] = field(default_factory=lambda: array("q"))
    opened: array[int] = field(default_factory=lambda: array("b"))

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
    # Beside each answer, its survey's creation (else the token's issue time), in
    # microseconds since the Unix epoch: an integer as the database computes it
    # (store.survey_facts). A column, not a field of the answer: an int object of its own
    # per answer was 3 MB of a first sync's peak at 100,000 answers, and the dataset is kept.
    cohorts: array[int] = field(default_factory=lambda: array("q"))
    sent: SentRows = field(default_factory=SentRows)
    # What build_dataset knew of the rows, so that patch_dataset can apply changed ones.
    joined: Joined | None = field(default=None, repr=False, compare=False)

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
            np.frombuffer(self.cohorts, np.int64, n) / MICROSECONDS,
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
_AGENT, _TEAM, _RATING, _MATCHED, _NPS = (
    itemgetter(AnswerRecord._fields.index(name))
    for name in ("agent", "team", "rating", "answered_sent", "nps")
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


# answers.agent_key's size (db/schema.py).
AGENT_KEY_LIMIT = 255


def answer_agent_key(agent: str) -> str:
    """A reference's agent as an answer stores it (``answers.agent_key``) and a survey is
    credited to: clipped as intake clips the name it signs (``db.text.clipped``), so a key
    intake signed is kept whole, and one longer than the column (an e-mail that lowering
    lengthened) is the same on both sides of the join."""
    return clipped(agent, AGENT_KEY_LIMIT)


def survey_agent_key(
    agent_id: str | None,
    agent_name: str | None,
    agent_email: str | None,
    token: str,
    secrets: Sequence[str],
) -> str:
    """The agent key a survey's token binds (the id when recorded, else read from the token),
    as its answers store it (:func:`answer_agent_key`)."""
    if agent_id:
        return str(agent_id)
    try:
        return answer_agent_key(tokens.verify(token, secrets).agent)
    except TokenError:
        # Signed with a retired secret: the key intake used is computed the same way, or was
        # signed as its digest (too long for the reference: intake/storable.survey_token).
        key = Person(agent_id, agent_name, agent_email).key or ""
        said = tokens.claimed(token)
        if said is not None and key and said.agent == digest(key):
            key = said.agent
        return answer_agent_key(key)


def build_dataset(
    answer_rows: Iterable[Any],
    survey_rows: Iterable[Any],
    *,
    secrets: Sequence[str],
    helpdesks: Mapping[str, Any],
    opened: Set[str] = frozenset(),
) -> Dataset:
    """Join answers to their surveys (by survey key, whatever spelling of the reference an
    answer was stored under) and index agents and teams (a team by its
    :func:`~csat_hook.db.text.name_key`, named as :func:`team_names` says). ``opened`` holds
    the keys of the surveys a person opened (:func:`csat_hook.clicks.funnel.opened_survey_keys`).

    Each iterable is read once, surveys first, and no row is kept (they may be streamed
    from the database: :func:`csat_hook.sync.store.iter_survey_facts`). Rows are unpacked
    positionally (the column order of ``store.survey_facts`` and
    ``store.all_answers``): this runs once per survey and answer, hundreds of thousands of
    times in a first sync. A survey's creation time is the integer the database computed
    (``created_us``, microseconds since the Unix epoch): no datetime is made or converted per
    survey; only an answer whose survey is not in the database converts its token's issue time.
    """
    agent_index, team_index = _Index(), _Index()
    # A survey's team as the helpdesk spelled it (the packed ints and _Compact hold this
    # index), each spelling's team (its key: db.text.name_key) and how many surveys spell it.
    spellings, team_of, spelling_uses = _Index(), array("i"), array("q")
    agent_ids, spelling_ids = agent_index.ids, spellings.ids
    names: dict[tuple[str, str], tuple[int, str, str]] = {}
    # Survey key → the survey packed in one int (_FIELD): a tuple and its creation time were
    # ≈ 110 bytes a survey, the report's peak of memory with 150,000 of them.
    surveys: dict[str, int] = {}
    channels = _Index()  # each channel's text once, not once per survey
    channel_ids = channels.ids
    data = Dataset()
    sent_agent, sent_team = data.sent.agent.append, data.sent.team.append
    sent_cohort, sent_opened = data.sent.cohort.append, data.sent.opened.append
    # The columns of the join state kept with the dataset (_Compact), in the surveys' order.
    hashes, lows, places = array("q"), array("q"), array("i")
    hash_append, low_append, place_append = hashes.append, lows.append, places.append
    unsent: dict[int, int] = {}
    sent_count = 0
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
        spelling = spelling_ids.get(team_name or "")
        if spelling is None:
            spelling = _spelling(team_name or "", spellings, team_of, spelling_uses, team_index)
        spelling_uses[spelling] += 1
        sent = status == SENT
        key = token.partition(".")[0]  # tokens.survey_key, inlined
        channel_id = channel_ids.get(channel or "")
        if channel_id is None:
            channel_id = channels(channel or "")
        surveys[key] = (
            (((created << 1 | sent) << _FIELD | channel_id) << _FIELD | spelling) << _FIELD
        ) | agent
        if (agent_name or agent_email) and who[1]:  # the no-agent key is never named
            seen = names.get(who)
            if seen is None or created >= seen[0]:
                names[who] = (created, agent_name or "", agent_email or "")
        hashed = hash(key)
        hash_append(hashed)
        low_append(
            (channel_id & _SMALL_MASK) << 2 * _SMALL
            | (spelling & _SMALL_MASK) << _SMALL
            | agent & _SMALL_MASK
        )
        if sent:
            sent_agent(agent)
            sent_team(team_of[spelling])
            sent_cohort(created)
            sent_opened(key in opened)
            place_append(sent_count)
            sent_count += 1
        else:
            place_append(-1)
            unsent[hashed] = created
    no_team = team_index("")
    teams = team_of.tolist()
    channel_texts = list(channels.ids)  # in index order (a dict keeps insertion order)
    helpdesk_texts: dict[str, str] = {}  # each helpdesk's name held once, not per answer
    append, new_record = data.answers.append, tuple.__new__
    cohort_append = data.cohorts.append
    # Each answer's survey key (its hash: see Joined), in the order of data.answers.
    answer_keys = array("q")
    key_append = answer_keys.append
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
        key_append(hash(survey_key))
        packed = surveys.get(survey_key)
        if packed is not None:
            top = packed >> _TOP
            cohort, matched = top >> 1, top & 1 == 1
            channel = channel_texts[packed >> _CHANNEL & _MASK]
            team, surveyed = teams[packed >> _FIELD & _MASK], packed & _MASK
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
                    matched,
                    nps,
                    channel,
                ),
            )
        )
        cohort_append(cohort)
    data.teams = team_names(spellings, team_of, spelling_uses, team_index)
    data.agents = [
        _agent(who, names.get(who), helpdesks)
        for who, _ in sorted(agent_index.ids.items(), key=lambda kv: kv[1])
    ]
    del surveys
    compact = _compact(
        hashes,
        lows,
        places,
        unsent,
        max(len(agent_index.ids), len(spelling_ids), len(channel_ids)),
    )
    del hashes, lows, places, unsent
    if compact is None or _shared_hash(answer_keys):
        return data  # nothing to patch from: the next report is built anew
    data.joined = Joined(
        secrets=tuple(secrets),
        helpdesks=helpdesks,
        agents=agent_index,
        teams=team_index,
        spellings=spellings,
        team_of=team_of,
        spelling_uses=spelling_uses,
        channels=channels,
        names=names,
        surveys=compact,
        answer_keys=answer_keys,
        opened=opened,
    )
    return data


def _spelling(
    text: str, spellings: _Index, team_of: array[int], uses: array[int], teams: _Index
) -> int:
    """The index of a team's spelling new to the build or the patch, its team (by
    :func:`~csat_hook.db.text.name_key`) indexed too."""
    index = spellings(text)
    team_of.append(teams(name_key(text)))
    uses.append(0)
    return index


def team_names(
    spellings: _Index, team_of: array[int], uses: array[int], teams: _Index
) -> list[str]:
    """Each team's name, by team index (``teams``: by key): of the spellings of the team
    (:func:`~csat_hook.db.text.shown_spelling`, ``uses``: how many surveys spell each), the
    one most surveys use; among as many, the first in code-point order ("Billing" before
    "billing"): :func:`~csat_hook.db.text.shown_name`, as alert text names it. The
    order the surveys were read in plays no part: a build and a patched dataset name a team
    alike, and the report does not change from one sync to the next unless the surveys do.
    The surveys naming no team, or only spaces or invisible characters, are no team ("")."""
    seen: list[Counter[str]] = [Counter() for _ in teams.ids]
    for text, index in spellings.ids.items():
        if uses[index] > 0:
            seen[team_of[index]][shown_spelling(text)] += uses[index]
    return [
        shown_name(counts.items()) if key and counts else ""
        for key, counts in zip(teams.ids, seen, strict=True)
    ]


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


class _Compact(NamedTuple):
    """Every survey of a build as columns sorted by the hash of its key: the hash, its
    channel, team and agent indexes (:data:`_SMALL` bits each) and its place in the sent
    columns (-1: not sent); its creation time is the sent columns' cohort, or, for the few
    surveys not sent, in ``unsent`` (key → creation time). ≈ 20 bytes a survey where the dict
    the build joins with holds ≈ 170 (the key's text, the packed int, the entry): the kept
    dataset's cost to the first sync's peak of memory, and to a process that keeps a dataset
    of 1,000,000 answers between runs."""

    keys: Any
    lows: Any
    sent_at: Any
    unsent: dict[int, int]


_SMALL = 21  # bits per index in _Compact.lows
_SMALL_MASK = (1 << _SMALL) - 1


def _compact(
    hashes: array[int], lows: array[int], places: array[int], unsent: dict[int, int], most: int
) -> _Compact | None:
    """The build's columns (in the surveys' order: each key's hash, its indexes, its place
    among the sent) sorted by hash, as :class:`_Compact`; None when they cannot be: more
    than 2²¹ agents, teams or channels (``most``), or two keys sharing a hash."""
    import numpy as np

    if most >= 1 << _SMALL:
        return None
    keys = np.frombuffer(hashes, np.int64)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if len(keys) > 1 and bool((keys[1:] == keys[:-1]).any()):
        return None
    return _Compact(
        keys,
        np.frombuffer(lows, np.int64)[order],
        np.frombuffer(places, np.int32)[order],
        unsent,
    )


def _shared_hash(keys: array[int]) -> bool:
    """Whether two of ``keys`` are equal (two answers' survey keys sharing a hash)."""
    import numpy as np

    values = np.frombuffer(keys, np.int64) if len(keys) else np.zeros(0, np.int64)
    return len(np.unique(values)) < len(values)


def _pack(top: int, low: int) -> int:
    """A survey's packed int (:data:`_FIELD`) from its :class:`_Compact` columns."""
    return (
        top << _TOP
        | (low >> 2 * _SMALL) << _CHANNEL
        | (low >> _SMALL & _SMALL_MASK) << _FIELD
        | low & _SMALL_MASK
    )


def _low(packed: int) -> int:
    return (
        (packed >> _CHANNEL & _MASK) << 2 * _SMALL
        | (packed >> _FIELD & _MASK) << _SMALL
        | packed & _MASK
    )


class Joined:
    """What :func:`build_dataset` knew when it joined the rows: the agent, team and channel
    indexes, the names recorded per agent, every survey (:class:`_Compact`), each answer's
    survey key (in the order of ``Dataset.answers``) and the surveys opened. Kept with the
    dataset, it lets :func:`patch_dataset` apply the rows that changed since, instead of every
    row being read and joined again.

    A survey key is held as its ``hash()`` (64-bit SipHash under the process's random key), not
    as its text. A build whose survey keys, or whose answers' survey keys, share a hash keeps
    no join state. A key added later that shares an existing key's hash is taken for that key:
    for a survey or an answer, the dataset then holds one fewer than the database, which the
    caller's count finds (a new build); for an answer whose survey is not stored, meeting
    another survey's hash, it is not found: one chance in ≈ 10¹¹ for a thousand new answers
    among 150,000 surveys, and no one outside the process can aim at it (the hash key is
    random per process)."""

    def __init__(
        self,
        *,
        secrets: tuple[str, ...],
        helpdesks: Mapping[str, Any],
        agents: _Index,
        teams: _Index,
        spellings: _Index,
        team_of: array[int],
        spelling_uses: array[int],
        channels: _Index,
        names: dict[tuple[str, str], tuple[int, str, str]],
        surveys: _Compact,
        answer_keys: array[int],
        opened: Set[str],
    ) -> None:
        self.secrets = secrets
        self.helpdesks = helpdesks
        self.agents = agents
        self.teams = teams  # by name_key
        # Each spelling of a team (as surveys hold it), its team index, how many surveys
        # spell it (team_names).
        self.spellings = spellings
        self.team_of = team_of
        self.spelling_uses = spelling_uses
        self.channels = channels
        self.names = names
        self.surveys = surveys
        self.answer_keys = answer_keys
        self.opened = opened
        self.agent_whos: list[Any] = []  # (helpdesk, key) by agent index, made when asked
        # How many surveys and answers name each agent index: made when a survey's agent
        # first changes, kept up to date after.
        self.uses: Counter[int] | None = None
        self._answer_order: Any = None  # argsort of answer_keys, made when first asked
        self._sent_keys: array[int] | None = None  # made at the first patch (sent_keys)

    def sent_keys(self) -> array[int]:
        """The sent surveys' key hashes in the order of the sent columns: made from the
        columns' places at the first patch (not held by a run that only builds), kept up to
        date by the patches after."""
        if self._sent_keys is None:
            import numpy as np

            compact = self.surveys
            sent = compact.sent_at >= 0
            keys = np.empty(int(sent.sum()), np.int64)
            keys[compact.sent_at[sent]] = compact.keys[sent]
            self._sent_keys = array("q", keys.tobytes())
        return self._sent_keys

    def survey_count(self) -> int:
        return len(self.surveys.keys)

    def find_surveys(self, keys: Iterable[int]) -> dict[int, int]:
        """Each of ``keys`` held, with its place in the :class:`_Compact` columns."""
        return _sorted_places(self.surveys.keys, keys)

    def find_answers(self, keys: Iterable[int]) -> dict[int, int]:
        """Each of ``keys`` an answer holds, with the answer's place in ``Dataset.answers``."""
        import numpy as np

        if not len(self.answer_keys):
            return {}
        held = np.frombuffer(self.answer_keys, np.int64)
        if self._answer_order is None or len(self._answer_order) != len(held):
            self._answer_order = np.argsort(held, kind="stable")
        order = self._answer_order
        return {key: int(order[at]) for key, at in _sorted_places(held[order], keys).items()}

    def packed(self, index: int, cohorts: Sequence[int]) -> int:
        """The packed int (:data:`_FIELD`) of the survey at ``index``; ``cohorts``: the sent
        columns' creation times (``Dataset.sent.cohort``), a sent survey's own."""
        compact = self.surveys
        at = int(compact.sent_at[index])
        created = cohorts[at] if at >= 0 else compact.unsent[int(compact.keys[index])]
        return _pack(created << 1 | (at >= 0), int(compact.lows[index]))

    def count_uses(
        self, answers: Sequence[AnswerRecord], pending: Mapping[int, int], places: Mapping[int, int]
    ) -> Counter[int]:
        """:attr:`uses`, counted when not yet made: the surveys held, those of ``pending``
        (key → packed, this patch's surveys so far; ``places``: where the held ones are) as
        they are now, and ``answers``."""
        if self.uses is None:
            import numpy as np

            agents = self.surveys.lows & _SMALL_MASK
            uses = (
                Counter(dict(enumerate(np.bincount(agents).tolist()))) if len(agents) else Counter()
            )
            for key, packed in pending.items():
                place = places.get(key)
                if place is not None:
                    uses[int(agents[place])] -= 1
                uses[packed & _MASK] += 1
            uses.update(map(_AGENT, answers))
            self.uses = uses
        return self.uses

    def store(
        self, pending: Mapping[int, int], sent_at: Mapping[int, int], places: dict[int, int]
    ) -> None:
        """Write a patch's surveys back into the columns: ``pending`` (key → packed) and
        ``sent_at`` (key → place in the sent columns, -1: not sent) of the surveys it
        changed or added (``places``: where the held ones are, as found)."""
        import numpy as np

        compact = self.surveys
        unplaced = [k for k in (sent_at.keys() | pending.keys()) if k not in places]
        places.update(self.find_surveys(unplaced))
        for key, packed in pending.items():
            if packed >> _TOP & 1:
                compact.unsent.pop(key, None)  # its time is the sent columns' cohort
            else:
                compact.unsent[key] = packed >> _TOP >> 1
        for key, place in places.items():
            if key in pending:
                compact.lows[place] = _low(pending[key])
            if key in sent_at:
                compact.sent_at[place] = sent_at[key]
        new = sorted(k for k in pending if k not in places)
        if not new:
            return
        keys = np.array(new, np.int64)
        at = np.searchsorted(compact.keys, keys)
        self.surveys = _Compact(
            np.insert(compact.keys, at, keys),
            np.insert(compact.lows, at, [_low(pending[k]) for k in new]),
            np.insert(compact.sent_at, at, [sent_at.get(k, -1) for k in new]),
            compact.unsent,
        )


def _sorted_places(held: Any, keys: Iterable[int]) -> dict[int, int]:
    """Each of ``keys`` found in ``held`` (a sorted int64 array), with its place there."""
    import numpy as np

    wanted = np.fromiter(set(keys), np.int64)
    if not len(wanted) or not len(held):
        return {}
    at = np.minimum(np.searchsorted(held, wanted), len(held) - 1)
    found = held[at] == wanted
    return dict(zip(wanted[found].tolist(), at[found].tolist(), strict=True))


class UnpatchableError(Exception):
    """The changed rows cannot be applied to the dataset (what it held of a survey's agent
    name may have come from the row that changed): build it anew."""


def patch_dataset(
    data: Dataset,
    survey_rows: Iterable[Any],
    answer_rows: Iterable[Any],
    *,
    opened: Set[str],
) -> None:
    """Apply surveys and answers added or changed since ``data`` was built (rows as
    :func:`build_dataset` takes them), so that ``data`` holds what :func:`build_dataset`
    of every row would: the same answers (each joined to its survey), the same sent
    surveys, agents (with the same names), teams (with the same names: :func:`team_names`)
    and opened marks, indexes aside (an index new since is appended, and the sent columns'
    order may differ: nothing reads it). A team no survey names any more is refused, as an
    agent is: a new build would not list it.

    The caller gives every changed survey's current answer among ``answer_rows`` (its join
    changes with the survey), and knows that no survey and no answer was removed (a removal
    is not a change this applies). Raises :class:`UnpatchableError` when the result could
    differ from a new build (``data`` is then half-patched: drop it)."""
    joined = data.joined
    if joined is None:
        raise UnpatchableError("no join state")
    # The joins below are build_dataset's (its loops inline them for speed): a change to one
    # is a change to both (tests/sync/test_dataset_patch.py compares them).
    survey_rows, answer_rows = list(survey_rows), list(answer_rows)
    texts = [row[0].partition(".")[0] for row in survey_rows]  # tokens.survey_key
    keys = [hash(text) for text in texts]
    answer_keys = [hash(row[0]) for row in answer_rows]
    places = joined.find_surveys(keys + answer_keys)
    # This patch's view of the surveys it touches: key → packed, key → place among the sent.
    pending = {key: joined.packed(place, data.sent.cohort) for key, place in places.items()}
    sent_at = {key: int(joined.surveys.sent_at[place]) for key, place in places.items()}
    sent_keys, names, sent = joined.sent_keys(), joined.names, data.sent
    agent_index, team_index, channel_index = joined.agents, joined.teams, joined.channels
    spellings, team_of, spelling_uses = joined.spellings, joined.team_of, joined.spelling_uses
    renamed: set[tuple[str, str]] = set()
    left: set[int] = set()  # agents a survey or an answer no longer names
    left_teams: set[int] = set()  # teams a changed survey no longer names
    for row, text_key, key in zip(survey_rows, texts, keys, strict=True):
        (token, helpdesk, _, agent_id, agent_name, agent_email, team_name, status, created) = row[
            :9
        ]
        channel = row[9]
        who = (
            helpdesk,
            agent_id
            if agent_id and agent_id.__class__ is str
            else survey_agent_key(agent_id, agent_name, agent_email, token, joined.secrets),
        )
        agent = agent_index(who)
        spelling = spellings.ids.get(team_name or "")
        if spelling is None:
            spelling = _spelling(team_name or "", spellings, team_of, spelling_uses, team_index)
        team = team_of[spelling]
        is_sent = status == SENT
        packed = (
            (
                ((created << 1 | is_sent) << _FIELD | channel_index(channel or "")) << _FIELD
                | spelling
            )
            << _FIELD
        ) | agent
        old = pending.get(key)
        if old is not None:
            spelling_uses[old >> _FIELD & _MASK] -= 1
            left_teams.add(team_of[old >> _FIELD & _MASK])
        spelling_uses[spelling] += 1
        named = bool((agent_name or agent_email) and who[1])
        if old is not None:
            old_who = _who_of(joined, old & _MASK)
            seen = names.get(old_who)
            # The name the dataset holds for the survey's agent may be this survey's own
            # (the latest survey's); if the agent, the time or the name went, an earlier
            # survey's name would be, which the dataset does not hold.
            if (
                seen is not None
                and seen[0] == old >> _TOP >> 1
                and (old_who != who or seen[0] != created or not named)
            ):
                raise UnpatchableError("a survey that named its agent changed")
        if named:
            seen = names.get(who)
            if seen is None or created >= seen[0]:
                names[who] = (created, agent_name or "", agent_email or "")
                renamed.add(who)
        was_sent = old is not None and old >> _TOP & 1 == 1
        if was_sent and is_sent:
            at = sent_at[key]
            sent.agent[at], sent.team[at], sent.cohort[at] = agent, team, created
        elif was_sent:  # no longer sent: the last sent survey takes its place
            at, last = sent_at[key], len(sent_keys) - 1
            if at != last:
                moved = sent_keys[last]
                sent_keys[at] = moved
                sent_at[moved] = at
                for column in (sent.agent, sent.team, sent.cohort):
                    column[at] = column[last]
                sent.opened[at] = sent.opened[last]
            sent_keys.pop()
            for column in (sent.agent, sent.team, sent.cohort):
                column.pop()
            sent.opened.pop()
            sent_at[key] = -1
        elif is_sent:
            sent_at[key] = len(sent_keys)
            sent_keys.append(key)
            sent.append(agent, team, created, text_key in opened)
        else:
            sent_at[key] = -1
        if old is not None and old & _MASK != agent:
            uses = joined.count_uses(data.answers, pending, places)  # before the change
            uses[old & _MASK] -= 1
            uses[agent] += 1
            left.add(old & _MASK)
        elif old is None and joined.uses is not None:
            joined.uses[agent] += 1
        pending[key] = packed
    no_team = team_index("")
    channel_texts = list(channel_index.ids)
    answer_at = joined.find_answers(answer_keys)
    for row, key in zip(answer_rows, answer_keys, strict=True):
        (_, helpdesk, dialog_id, agent_key, issued_at, rating, comment, submitted_at, nps) = row
        packed = pending.get(key)
        if packed is not None:
            top = packed >> _TOP
            cohort, matched = top >> 1, top & 1 == 1
            channel = channel_texts[packed >> _CHANNEL & _MASK]
            team, surveyed = team_of[packed >> _FIELD & _MASK], packed & _MASK
        else:
            cohort = epoch_microseconds(issued_at)
            team, matched, channel, surveyed = no_team, False, "", None
        agent = agent_index((helpdesk, agent_key)) if agent_key or surveyed is None else surveyed
        record = AnswerRecord(
            agent,
            team,
            helpdesk,
            dialog_id,
            rating,
            comment or "",
            submitted_at,
            matched,
            nps,
            channel,
        )
        place = answer_at.get(key)
        if place is None:
            answer_at[key] = len(data.answers)
            data.answers.append(record)
            data.cohorts.append(cohort)
            joined.answer_keys.append(key)
            if joined.uses is not None:
                joined.uses[agent] += 1
        else:
            before = data.answers[place].agent
            if before != agent:
                uses = joined.count_uses(data.answers, pending, places)  # before the change
                uses[before] -= 1
                uses[agent] += 1
                left.add(before)
            data.answers[place] = record
            data.cohorts[place] = cohort
    if joined.uses is not None and any(joined.uses[agent] <= 0 for agent in left):
        # A new build would not know that agent (its name could rename another's tab).
        raise UnpatchableError("an agent is no longer named by any survey or answer")
    if left_teams:
        spelt = {team_of[index] for index in spellings.ids.values() if spelling_uses[index] > 0}
        if any(team not in spelt and team != no_team for team in left_teams):
            # A new build would not know that team (the one that names no team aside).
            raise UnpatchableError("a team is no longer named by any survey")
    joined.store(pending, sent_at, places)
    if opened != joined.opened:
        hashed = {hash(key) for key in opened}
        sent.opened = array("b", [key in hashed for key in sent_keys])
        joined.opened = opened
    # Every team's name again: a spelling's count may have changed which one is shown.
    data.teams[:] = team_names(spellings, team_of, spelling_uses, team_index)
    whos = list(agent_index.ids)
    renamed.update(whos[len(data.agents) :])
    data.agents.extend([None] * (len(whos) - len(data.agents)))  # type: ignore[list-item]
    for who in renamed:
        data.agents[agent_index.ids[who]] = _agent(who, names.get(who), joined.helpdesks)


def _who_of(joined: Joined, agent: int) -> tuple[str, str]:
    """The (helpdesk, key) of agent index ``agent``."""
    whos = joined.agent_whos
    if len(whos) != len(joined.agents.ids):
        whos[:] = list(joined.agents.ids)
    return whos[agent]  # type: ignore[no-any-return]
