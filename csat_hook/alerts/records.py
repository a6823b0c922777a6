"""What the alert rules read and produce: the inputs of a run, a new alert, its identity.

The sync builds :class:`Inputs` (the answers it changed, its dataset, the scale) and gets
back an :class:`AlertsOutcome`; every rule module turns inputs into :class:`NewAlert` items,
which :mod:`csat_hook.alerts.engine` stores and queues. ``alerts.kind`` values are here
because the Alerts tab and ``csat-hook alerts`` read them too.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any
from typing import Protocol
from zoneinfo import ZoneInfo

from csat_hook.helpdesks.base import ticket_url as ticket_link
from csat_hook.notify.records import REF_PREFIX
from csat_hook.notify.records import AlertMessage

# alerts.kind
ANSWER, AGENT, DIGEST_KIND, OVERFLOW_KIND = "answer", "agent", "digest", "overflow"
# alerts.cancel_reason: why an alert was withdrawn before it went out. The answer was edited
# so that its rule no longer matches it: a score above the rule's limit, or (the ``comment``
# rule) no comment any more; or the configuration changed (alerts/recheck.py): its rule (or
# digest) is gone, or raises it no more.
ANSWER_IMPROVED, COMMENT_REMOVED = "answer_improved", "comment_removed"
RULE_REMOVED, RULE_CHANGED = "rule_removed", "rule_changed"
# Every alerts.cancel_reason: what cancelled deliveries an alert standing again queues once
# more (outbox.store.requeue_withdrawn). A reason added above belongs here too.
WITHDRAWALS = (ANSWER_IMPROVED, COMMENT_REMOVED, RULE_REMOVED, RULE_CHANGED)
# A delivery's alone (in its ``last_error``, the alert standing): its destination was taken
# off the alert's rule.
DESTINATION_REMOVED = "destination_removed"


@dataclass(frozen=True)
class Changed:
    """An answer the sync added or replaced in this run (its current values)."""

    survey_key: str
    token: str
    helpdesk: str
    dialog_id: str
    agent_key: str
    rating: int
    comment: str | None
    submitted_at: datetime
    previous_rating: int | None = None
    nps: int | None = None
    previous_nps: int | None = None
    team: str | None = None
    agent_name: str | None = None
    # The answer it replaced (None: none): its comment and time, beside previous_rating and
    # previous_nps (an old answer a rule matched is said once: alerts/answers.py).
    previous_comment: str | None = None
    previous_submitted_at: datetime | None = None


class AgentLike(Protocol):
    @property
    def helpdesk(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...


class AnswerLike(Protocol):
    @property
    def agent(self) -> int: ...
    @property
    def helpdesk(self) -> str: ...
    @property
    def dialog_id(self) -> str: ...
    @property
    def rating(self) -> int: ...
    @property
    def comment(self) -> str: ...
    @property
    def submitted_at(self) -> datetime: ...


class DatasetLike(Protocol):
    """Every current answer with its agent (an index into ``agents``): the sync's dataset."""

    @property
    def agents(self) -> Sequence[AgentLike]: ...
    @property
    def answers(self) -> Sequence[AnswerLike]: ...


@dataclass(frozen=True)
class Scale:
    scale_min: int
    scale_max: int
    top_box: int  # a rating at or above it is "satisfied"

    @property
    def default_low(self) -> int:
        return max(self.scale_min, self.top_box - 2)


@dataclass(frozen=True)
class Inputs:
    """What the rules read: the answers this run changed, every current answer (``data``:
    needed only by agent rules and digests, see
    :func:`~csat_hook.alerts.engine.needs_dataset`), the scale, the report's time zone, the
    helpdesks' options (ticket URL templates, whether a conversation can take a note) and
    the run's time."""

    changed: Sequence[Changed]
    data: DatasetLike | None
    scale: Scale
    tz: ZoneInfo
    helpdesks: Mapping[str, Any]
    now: datetime


@dataclass
class AlertsOutcome:
    """What a run raised: alerts by rule, deliveries queued (a withdrawn alert's queued again
    too), deliveries held by a cap, deliveries cancelled because their alert was withdrawn."""

    raised: Counter[str] = field(default_factory=Counter)
    queued: int = 0
    held: int = 0
    cancelled: int = 0
    # Answers a rule matched that this run stored (not when the answer they replaced matched
    # it so too: what is new, once), not alerted because they were submitted
    # more than ``alerts.max_age_hours`` ago (by rule): an export read late, or dated hours
    # early by a clock or a zone setting, had its low ratings never alerted and nothing said.
    too_old: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "raised": dict(self.raised),
            "queued": self.queued,
            "held": self.held,
            "cancelled": self.cancelled,
            # Only when some were: most runs have none, and the summary stays as it was.
            **({"too_old": dict(self.too_old)} if self.too_old else {}),
        }


@dataclass(frozen=True)
class NewAlert:
    """An alert a rule raised in this run, before it is stored (``key``: its identity; one
    already stored under it is not raised again) and queued to ``destinations``."""

    key: str
    kind: str
    message: AlertMessage
    destinations: Sequence[str]
    survey_key: str | None = None
    agent_key: str | None = None
    submitted_at: datetime | None = None


def alert_key(*parts: object) -> str:
    """An alert's identity as stored (a digest of its parts, joined without ambiguity)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def alert_ref(key: str) -> str:
    """The reference every copy of the alert carries (notes, Message-ID, webhook-id)."""
    return REF_PREFIX + key[:24]


def ticket_url(helpdesks: Mapping[str, Any], helpdesk: str, dialog_id: str) -> str | None:
    """The dialog's page from the helpdesk's ``ticket_url_template``; None without one."""
    return ticket_link(getattr(helpdesks.get(helpdesk), "ticket_url_template", None), dialog_id)
