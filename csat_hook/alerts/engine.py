"""Raising alerts: the rules run over the answers a sync stored, in the sync's transaction.

:func:`raise_alerts` is called by the sync after the ingest, before it commits: the alerts it
raises and the deliveries it queues are stored with the answers that raised them, or not at
all (a failed run, a dry run). Every alert has an identity (``alerts.key``):

* an answer rule: the rule, the survey and the rating (the NPS score for ``nps_detractor``).
  Reading the answer again (the next sync, ``--full``, an edit of the comment) raises
  nothing; a changed rating raises one alert for the change (``previous_rating``); coming
  back to a rating already alerted raises nothing;
* ``agent_below_target``: the rule, the agent and the episode (the n-th time the agent went
  below), so an agent is alerted once per drop;
* a digest: the digest and its period; an overflow notice: the destination and the hour.

Each new alert is queued once per destination (``<alert id>:<destination>``) through the
outbox, which delivers it like a reply. The storm guards of :class:`AlertsConfig` apply here.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from csat_hook.alerts import store
from csat_hook.alerts.config import AgentBelowTargetRule
from csat_hook.alerts.config import AlertsConfig
from csat_hook.alerts.config import CommentRule
from csat_hook.alerts.config import DigestConfig
from csat_hook.alerts.config import LowRatingRule
from csat_hook.alerts.config import NpsDetractorRule
from csat_hook.alerts.stats import binomial_cdf
from csat_hook.alerts.stats import wilson
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import PENDING
from csat_hook.helpdesks import takes_notes
from csat_hook.notify.records import AGENT_BELOW_TARGET
from csat_hook.notify.records import COMMENT
from csat_hook.notify.records import DIGEST
from csat_hook.notify.records import LOW_RATING
from csat_hook.notify.records import NPS_DETRACTOR
from csat_hook.notify.records import OVERFLOW
from csat_hook.notify.records import AgentFigures
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.records import DigestItem
from csat_hook.outbox import store as outbox_store
from csat_hook.outbox import wake

# alerts.kind
ANSWER, AGENT, DIGEST_KIND, OVERFLOW_KIND = "answer", "agent", "digest", "overflow"
CAP_WINDOW = timedelta(hours=1)
REF_PREFIX = "csat-alert-"
BELOW, OK = "below", "ok"


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
    team: str | None = None
    agent_name: str | None = None


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
    needed only by agent rules and digests, see :func:`needs_dataset`), the scale, the
    report's time zone, the helpdesks' options (ticket URL templates, whether a conversation
    can take a note) and the run's time."""

    changed: Sequence[Changed]
    data: DatasetLike | None
    scale: Scale
    tz: ZoneInfo
    helpdesks: Mapping[str, Any]
    now: datetime


@dataclass
class AlertsOutcome:
    """What a run raised: alerts by rule, deliveries queued, deliveries held by a cap."""

    raised: Counter[str] = field(default_factory=Counter)
    queued: int = 0
    held: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"raised": dict(self.raised), "queued": self.queued, "held": self.held}


@dataclass(frozen=True)
class _New:
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


def needs_dataset(config: AlertsConfig) -> bool:
    """Whether the rules read every current answer (agent rules, digests), not only the
    answers a run changed."""
    return bool(config.digests) or any(
        isinstance(rule, AgentBelowTargetRule) for rule in config.rules
    )


def raise_alerts(conn: sa.Connection, config: AlertsConfig, inputs: Inputs) -> AlertsOutcome:
    """Run every rule and due digest; store new alerts and queue their deliveries."""
    outcome = AlertsOutcome()
    if not config.active:
        return outcome
    now = inputs.now
    seen = store.first_seen(
        conn,
        [f"rule:{r.name}" for r in config.rules] + [f"digest:{d.name}" for d in config.digests],
        now,
    )
    new: list[_New] = []
    answer_rules = [r for r in config.rules if not isinstance(r, AgentBelowTargetRule)]
    if answer_rules and inputs.changed:
        new += _answer_alerts(conn, config, answer_rules, inputs, seen)
    data = inputs.data
    if data is not None:
        for rule in config.rules:
            if isinstance(rule, AgentBelowTargetRule):
                new += _agent_alerts(conn, rule, inputs, data)
        for digest in config.digests:
            found = _digest(digest, inputs, data, seen[f"digest:{digest.name}"])
            if found is not None:
                new.append(found)
    if not new:
        return outcome
    existing = store.existing_keys(conn, [n.key for n in new])
    for item in new:
        if item.key in existing:
            continue
        alert_id = _store(conn, item, now)
        if alert_id is None:
            continue
        outcome.raised[item.message.rule] += 1
        _fan_out(conn, config, alert_id, item, inputs, outcome)
    if outcome.queued:
        wake.notify_workers(conn)
    return outcome


# --- answer rules -----------------------------------------------------------------------------


def _answer_alerts(
    conn: sa.Connection,
    config: AlertsConfig,
    rules: Sequence[LowRatingRule | CommentRule | NpsDetractorRule | AgentBelowTargetRule],
    inputs: Inputs,
    seen: Mapping[str, datetime],
) -> list[_New]:
    now = inputs.now
    too_old = now - timedelta(hours=config.max_age_hours)
    backfill = timedelta(minutes=config.backfill_minutes)
    matched: list[tuple[Any, Changed, str, str]] = []
    for answer in inputs.changed:
        if answer.submitted_at < too_old:
            continue
        for rule in rules:
            if answer.submitted_at < seen[f"rule:{rule.name}"] - backfill:
                continue  # submitted before the rule existed: not replayed
            event = _match(rule, answer, inputs.scale)
            if event is None:
                continue
            score = answer.nps if event == NPS_DETRACTOR else answer.rating
            matched.append(
                (
                    rule,
                    answer,
                    event,
                    alert_key("answer", rule.name, answer.survey_key, event, score),
                )
            )
    if not matched:
        return []
    contexts = store.reply_contexts(conn, sorted({a.token for _, a, _, _ in matched}))
    new = []
    for rule, answer, event, key in matched:
        template = getattr(inputs.helpdesks.get(answer.helpdesk), "ticket_url_template", None)
        message = AlertMessage(
            ref=alert_ref(key),
            event=event,
            rule=rule.name,
            created_at=now.isoformat(),
            scale_min=inputs.scale.scale_min,
            scale_max=inputs.scale.scale_max,
            helpdesk=answer.helpdesk,
            dialog_id=answer.dialog_id,
            ticket_url=template.replace("{ticket}", answer.dialog_id) if template else None,
            agent_key=answer.agent_key,
            agent_name=answer.agent_name or answer.agent_key,
            team=answer.team,
            rating=answer.rating,
            previous_rating=answer.previous_rating
            if answer.previous_rating != answer.rating
            else None,
            nps=answer.nps,
            comment=answer.comment,
            submitted_at=answer.submitted_at.isoformat(),
            context=contexts.get(answer.token, {}),
            threshold=_limit(rule, inputs.scale),
        )
        new.append(
            _New(
                key=key,
                kind=ANSWER,
                message=message,
                destinations=rule.destinations,
                survey_key=answer.survey_key,
                agent_key=answer.agent_key,
                submitted_at=answer.submitted_at,
            )
        )
    return new


def _limit(rule: Any, scale: Scale) -> int | None:
    if isinstance(rule, LowRatingRule):
        return rule.max_rating if rule.max_rating is not None else scale.default_low
    if isinstance(rule, CommentRule):
        return rule.max_rating
    if isinstance(rule, NpsDetractorRule):
        return rule.max_score
    return None


def _match(rule: Any, answer: Changed, scale: Scale) -> str | None:
    """The event ``answer`` raises under ``rule``, or None."""
    if isinstance(rule, LowRatingRule):
        return LOW_RATING if answer.rating <= (_limit(rule, scale) or 0) else None
    if isinstance(rule, CommentRule):
        if not answer.comment or not answer.comment.strip():
            return None
        limit = rule.max_rating
        return COMMENT if limit is None or answer.rating <= limit else None
    if isinstance(rule, NpsDetractorRule):
        return NPS_DETRACTOR if answer.nps is not None and answer.nps <= rule.max_score else None
    return None


# --- agents below target ----------------------------------------------------------------------


def agent_state_name(rule: str, helpdesk: str, agent_key: str) -> str:
    digest = hashlib.sha256(agent_key.encode("utf-8")).hexdigest()[:24]
    return f"agent:{rule}:{helpdesk}:{digest}"


def _agent_alerts(
    conn: sa.Connection, rule: AgentBelowTargetRule, inputs: Inputs, data: DatasetLike
) -> list[_New]:
    """Agents with an answer changed in this run, tested over their window (see the rule)."""
    now = inputs.now
    start = now - timedelta(days=rule.window_days)
    wanted = {(c.helpdesk, c.agent_key) for c in inputs.changed if c.submitted_at >= start}
    if not wanted:
        return []
    agents = data.agents
    index = {i: (a.helpdesk, a.key) for i, a in enumerate(agents) if (a.helpdesk, a.key) in wanted}
    answers: Counter[int] = Counter()
    satisfied: Counter[int] = Counter()
    top = inputs.scale.top_box
    for answer in data.answers:
        if answer.agent in index and start <= answer.submitted_at <= now:
            answers[answer.agent] += 1
            if answer.rating >= top:
                satisfied[answer.agent] += 1
    state_names = {i: agent_state_name(rule.name, *index[i]) for i in index}
    known = store.states(conn, list(state_names.values()))
    new = []
    for i, (helpdesk, key) in sorted(index.items(), key=lambda kv: kv[1]):
        n, x = answers[i], satisfied[i]
        if n < rule.min_answers:
            continue
        p = binomial_cdf(x, n, rule.target)
        name = state_names[i]
        state = known.get(name)
        # A "below" older than the window was about answers no longer in it: a new drop.
        below = state is not None and state.state == BELOW and state.since > start
        if below:
            if p >= rule.exit_alpha:
                store.save_state(conn, name, OK, state.episode if state else 0, now, now)
            continue
        if p >= rule.alpha:
            if state is not None and state.state == BELOW:
                store.save_state(conn, name, OK, state.episode, now, now)
            continue
        episode = (state.episode if state else 0) + 1
        store.save_state(conn, name, BELOW, episode, now, now)
        akey = alert_key("agent", rule.name, helpdesk, key, episode)
        figures = AgentFigures(
            agent_key=key,
            agent_name=agents[i].name or key,
            answers=n,
            satisfied=x,
            csat=x / n,
            interval=wilson(x, n),
            p_value=p,
        )
        message = AlertMessage(
            ref=alert_ref(akey),
            event=AGENT_BELOW_TARGET,
            rule=rule.name,
            created_at=now.isoformat(),
            scale_min=inputs.scale.scale_min,
            scale_max=inputs.scale.scale_max,
            helpdesk=helpdesk,
            agent_key=key,
            agent_name=figures.agent_name,
            target=rule.target,
            window_days=rule.window_days,
            figures=figures,
        )
        new.append(
            _New(
                key=akey, kind=AGENT, message=message, destinations=rule.destinations, agent_key=key
            )
        )
    return new


# --- digests ----------------------------------------------------------------------------------


def digest_due(digest: DigestConfig, now: datetime, tz: ZoneInfo) -> tuple[datetime, date, date]:
    """The latest send time at or before ``now`` and the period it reports (its first day
    and the day after its last, local dates)."""
    local = now.astimezone(tz)
    send = datetime.combine(local.date(), digest.at, tzinfo=tz)
    if digest.every == "day":
        if send > local:
            send -= timedelta(days=1)
        day = send.date()
        return send, day - timedelta(days=1), day
    weekday = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday").index(
        digest.weekday
    )
    send -= timedelta(days=(local.weekday() - weekday) % 7)
    if send > local:
        send -= timedelta(days=7)
    day = send.date()
    return send, day - timedelta(days=7), day


def _digest(
    digest: DigestConfig, inputs: Inputs, data: DatasetLike, first_seen: datetime
) -> _New | None:
    tz, now, scale = inputs.tz, inputs.now, inputs.scale
    send, first, after = digest_due(digest, now, tz)
    if send < first_seen:
        return None  # the first digest is the first one due after it was configured
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(after, datetime.min.time(), tzinfo=tz)
    in_period = [a for a in data.answers if start <= a.submitted_at < end]
    if not in_period and not digest.send_empty:
        return None
    period = (
        first.isoformat()
        if digest.every == "day"
        else (f"{first.isoformat()} – {(after - timedelta(days=1)).isoformat()}")
    )
    agents = data.agents
    per_agent: dict[int, list[int]] = {}
    for answer in in_period:
        per_agent.setdefault(answer.agent, []).append(answer.rating)
    overall = _figures("*", "All agents", [a.rating for a in in_period], scale.top_box)
    listed = sorted(
        (
            _figures(agents[i].key, agents[i].name, ratings, scale.top_box)
            for i, ratings in per_agent.items()
        ),
        key=lambda f: (f.csat if f.csat is not None else 1.0, -f.answers, f.agent_name),
    )[: digest.agents]
    lowest = sorted(
        (a for a in in_period if a.rating < scale.top_box),
        key=lambda a: (a.rating, -a.submitted_at.timestamp()),
    )[: digest.lowest]
    items = tuple(
        DigestItem(
            rating=a.rating,
            agent_name=agents[a.agent].name,
            dialog_id=a.dialog_id,
            comment=a.comment or None,
            ticket_url=_ticket_url(inputs.helpdesks, a.helpdesk, a.dialog_id),
            submitted_at=a.submitted_at.isoformat(),
        )
        for a in lowest
    )
    key = alert_key("digest", digest.name, first.isoformat(), digest.every)
    message = AlertMessage(
        ref=alert_ref(key),
        event=DIGEST,
        rule=digest.name,
        created_at=now.isoformat(),
        scale_min=scale.scale_min,
        scale_max=scale.scale_max,
        period=period,
        figures=overall,
        agents=tuple(listed),
        items=items,
    )
    return _New(key=key, kind=DIGEST_KIND, message=message, destinations=digest.destinations)


def _figures(key: str, name: str, ratings: Sequence[int], top: int) -> AgentFigures:
    n = len(ratings)
    x = sum(1 for r in ratings if r >= top)
    return AgentFigures(
        agent_key=key,
        agent_name=name,
        answers=n,
        satisfied=x,
        csat=x / n if n else None,
        interval=wilson(x, n),
    )


def _ticket_url(helpdesks: Mapping[str, Any], helpdesk: str, dialog_id: str) -> str | None:
    template = getattr(helpdesks.get(helpdesk), "ticket_url_template", None)
    return template.replace("{ticket}", dialog_id) if template else None


# --- storing and queueing ---------------------------------------------------------------------


def _store(conn: sa.Connection, item: _New, now: datetime) -> int | None:
    message = item.message
    return store.insert_alert(
        conn,
        {
            "key": item.key,
            "ref": message.ref,
            "kind": item.kind,
            "rule": message.rule,
            "survey_key": item.survey_key,
            "helpdesk": message.helpdesk,
            "dialog_id": message.dialog_id,
            "agent_key": item.agent_key,
            "rating": message.rating,
            "previous_rating": message.previous_rating,
            "submitted_at": item.submitted_at,
            "payload": message.to_payload(),
            "created_at": now,
        },
    )


def _fan_out(
    conn: sa.Connection,
    config: AlertsConfig,
    alert_id: int,
    item: _New,
    inputs: Inputs,
    outcome: AlertsOutcome,
) -> None:
    """Queue one delivery per destination of the alert (a note only where it can go); over a
    destination's cap for the hour, the delivery is held and the destination told once."""
    now = inputs.now
    message = item.message
    hour = now.replace(minute=0, second=0, microsecond=0)
    for name in item.destinations:
        options = config.destinations[name]
        if options.kind == "helpdesk_note" and not _notable(options, message, inputs.helpdesks):
            continue
        held = item.kind in (ANSWER, AGENT) and (
            outbox_store.count_alert_deliveries(conn, name, hour) >= config.cap_per_hour
        )
        outbox_store.enqueue_alerts(
            conn,
            [
                _delivery(
                    alert_id,
                    name,
                    message,
                    now,
                    status=CANCELLED if held else PENDING,
                    error=f"held: more than alerts.cap_per_hour ({config.cap_per_hour}) for "
                    "this destination in this hour"
                    if held
                    else None,
                )
            ],
        )
        if held:
            outcome.held += 1
            _overflow(conn, name, hour, inputs, outcome)
        else:
            outcome.queued += 1


def _notable(options: Any, message: AlertMessage, helpdesks: Mapping[str, Any]) -> bool:
    """Whether a note destination takes ``message``: an answer's alert, in a helpdesk that
    takes notes (and is among the destination's ``helpdesks``, when listed)."""
    helpdesk = message.helpdesk or ""
    if not message.about_answer or helpdesk not in helpdesks or not message.dialog_id:
        return False
    if options.helpdesks and helpdesk not in options.helpdesks:
        return False
    return takes_notes(helpdesks[helpdesk])


def _overflow(
    conn: sa.Connection, destination: str, hour: datetime, inputs: Inputs, outcome: AlertsOutcome
) -> None:
    key = alert_key("overflow", destination, hour.isoformat())
    until = hour + CAP_WINDOW
    message = AlertMessage(
        ref=alert_ref(key),
        event=OVERFLOW,
        rule="cap_per_hour",
        created_at=inputs.now.isoformat(),
        destination=destination,
        held_until=until.strftime("%Y-%m-%d %H:%M UTC"),
    )
    alert_id = store.insert_alert(
        conn,
        {
            "key": key,
            "ref": message.ref,
            "kind": OVERFLOW_KIND,
            "rule": message.rule,
            "payload": message.to_payload(),
            "created_at": inputs.now,
        },
    )
    if alert_id is None:
        return  # told already this hour
    outbox_store.enqueue_alerts(
        conn, [_delivery(alert_id, destination, message, inputs.now, status=PENDING)]
    )
    outcome.raised[message.rule] += 1
    outcome.queued += 1


def _delivery(
    alert_id: int,
    destination: str,
    message: AlertMessage,
    now: datetime,
    *,
    status: str,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "destination": destination,
        "delivery_key": f"{alert_id}:{destination}",
        "helpdesk": message.helpdesk or "",
        "dialog_id": (message.dialog_id or "")[:191],
        "context": {},
        "status": status,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": error,
        "created_at": now,
        "updated_at": now,
    }
