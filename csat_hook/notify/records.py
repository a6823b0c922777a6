"""The alert as every destination sees it: plain values, stored as JSON with the alert.

The alerts flow builds an :class:`AlertMessage` when a rule matches (in the sync's
transaction) and stores :meth:`AlertMessage.to_payload`; the delivery worker reads it back
with :meth:`AlertMessage.from_payload` and hands it to each destination, which renders it in
its own format. So what is sent never depends on when it is sent: a retry a day later sends
the alert as it was raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from typing import Any

# What an alert is about (AlertMessage.event), and the webhook event types they map to.
LOW_RATING = "low_rating"
COMMENT = "comment"
NPS_DETRACTOR = "nps_detractor"
AGENT_BELOW_TARGET = "agent_below_target"
DIGEST = "digest"
OVERFLOW = "overflow"
EVENTS = (LOW_RATING, COMMENT, NPS_DETRACTOR, AGENT_BELOW_TARGET, DIGEST, OVERFLOW)
WEBHOOK_TYPES = {
    LOW_RATING: "csat.alert.low_rating",
    COMMENT: "csat.alert.comment",
    NPS_DETRACTOR: "csat.alert.nps_detractor",
    AGENT_BELOW_TARGET: "csat.alert.agent_below_target",
    DIGEST: "csat.digest",
    OVERFLOW: "csat.alert.overflow",
}
# Every alert's reference starts with this (``csat-alert-`` and 24 hex digits): what a note's
# look-up searches for, and what customer text is never allowed to spell (render.defused).
REF_PREFIX = "csat-alert-"
# Events about one answer: they have a conversation (a helpdesk note can go there).
ANSWER_EVENTS = frozenset({LOW_RATING, COMMENT, NPS_DETRACTOR})


@dataclass(frozen=True)
class DigestItem:
    """One of a digest's lowest-rated answers."""

    rating: int
    agent_name: str
    dialog_id: str
    comment: str | None = None
    ticket_url: str | None = None
    submitted_at: str | None = None


@dataclass(frozen=True)
class AgentFigures:
    """An agent's figures over a window: in an agent alert, and a digest's per-agent lines."""

    agent_key: str
    agent_name: str
    answers: int
    satisfied: int
    csat: float | None = None
    interval: tuple[float, float] | None = None  # Wilson 95%
    p_value: float | None = None  # one-sided exact binomial against the target


@dataclass(frozen=True)
class AlertMessage:
    """An alert, whatever it is about (``event``, one of :data:`EVENTS`).

    ``ref`` is the alert's reference (``csat-alert-<hex>``): unique, carried by every copy
    (the note's "Alert ref:" line, the e-mail's Message-ID, the webhook's id), so a copy whose
    outcome was unknown can be found or dropped by its receiver. Times are ISO 8601 UTC.
    Answer events carry the answer (``rating``, ``comment``, ``nps``) and its conversation
    (``helpdesk``, ``dialog_id``, ``ticket_url``, ``context``: the reply context the survey
    was sent with, for a note); agent events ``figures`` and ``target``/``window_days``;
    digests ``period``, ``figures`` (overall first, as agent key ``*``), ``agents`` and
    ``items``; an overflow ``held`` and ``destination``.
    """

    ref: str
    event: str
    rule: str
    created_at: str
    scale_min: int = 1
    scale_max: int = 5
    helpdesk: str | None = None
    dialog_id: str | None = None
    ticket_url: str | None = None
    agent_key: str | None = None
    agent_name: str | None = None
    team: str | None = None
    rating: int | None = None
    previous_rating: int | None = None
    nps: int | None = None
    comment: str | None = None
    submitted_at: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    threshold: int | None = None
    target: float | None = None
    window_days: int | None = None
    figures: AgentFigures | None = None
    period: str | None = None
    agents: tuple[AgentFigures, ...] = ()
    items: tuple[DigestItem, ...] = ()
    destination: str | None = None
    held_until: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """The JSON stored with the alert."""
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> AlertMessage:
        """Read a stored payload back (keys it does not know are ignored, so an older row
        still reads after an upgrade)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in payload.items() if k in known}
        if isinstance(values.get("figures"), Mapping):
            values["figures"] = _figures(values["figures"])
        values["agents"] = tuple(
            _figures(a) for a in values.get("agents") or () if isinstance(a, Mapping)
        )
        values["items"] = tuple(
            DigestItem(**{k: v for k, v in item.items() if k in _ITEM_FIELDS})
            for item in values.get("items") or ()
            if isinstance(item, Mapping)
        )
        values["context"] = dict(values.get("context") or {})
        return cls(**values)

    @property
    def about_answer(self) -> bool:
        return self.event in ANSWER_EVENTS


_ITEM_FIELDS = frozenset(f.name for f in fields(DigestItem))
_FIGURE_FIELDS = frozenset(f.name for f in fields(AgentFigures))


def _figures(data: Mapping[str, Any]) -> AgentFigures:
    values = {k: v for k, v in data.items() if k in _FIGURE_FIELDS}
    interval = values.get("interval")
    if isinstance(interval, list | tuple) and len(interval) == 2:
        values["interval"] = (float(interval[0]), float(interval[1]))
    else:
        values["interval"] = None
    return AgentFigures(**values)
