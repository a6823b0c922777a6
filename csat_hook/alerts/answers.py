"""Answer rules (``low_rating``, ``comment``, ``nps_detractor``): one answer, one alert.

An answer rule's alert is identified by the rule, the survey, the event and the rating (the
NPS score for ``nps_detractor``): reading the answer again raises nothing, a changed rating
raises one alert for the change, coming back to a rating already alerted raises nothing.
An edit that raises the score (1 → 2 under ``max_rating: 2``) of an answer the rule has
alerted on already raises nothing either: the team was told of the worse score, and the
better one is no news to act on. An edit that lowers it (2 → 1, or 4 → 2) does alert, and
so does an improving edit of an answer the rule never alerted on (one submitted before the
rule existed, or whose comment is new to a ``comment`` rule): it is the first the team hears.
Answers older than ``alerts.max_age_hours``, or submitted before the rule existed (less
``backfill_minutes``), are not alerted.

An edit the rule no longer matches (a 1 raised to a 5 under ``max_rating: 2``, a comment
removed under ``comment``) withdraws the rule's alerts on that answer (:func:`withdrawals`):
their deliveries not yet started are cancelled, and ``alerts.cancel_reason`` says why. An
edit back to an alerted score makes that alert stand again, its cancelled deliveries queued
once more (no new alert: same identity).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Protocol

import sqlalchemy as sa

from csat_hook.alerts import store
from csat_hook.alerts.config import AgentBelowTargetRule
from csat_hook.alerts.config import AlertsConfig
from csat_hook.alerts.config import CommentRule
from csat_hook.alerts.config import LowRatingRule
from csat_hook.alerts.config import NpsDetractorRule
from csat_hook.alerts.names import named_alike
from csat_hook.alerts.names import team_names
from csat_hook.alerts.names import told_apart
from csat_hook.alerts.records import ANSWER
from csat_hook.alerts.records import ANSWER_IMPROVED
from csat_hook.alerts.records import COMMENT_REMOVED
from csat_hook.alerts.records import RULE_CHANGED
from csat_hook.alerts.records import Changed
from csat_hook.alerts.records import Inputs
from csat_hook.alerts.records import NewAlert
from csat_hook.alerts.records import Scale
from csat_hook.alerts.records import alert_key
from csat_hook.alerts.records import alert_ref
from csat_hook.alerts.records import ticket_url
from csat_hook.notify.records import COMMENT
from csat_hook.notify.records import LOW_RATING
from csat_hook.notify.records import NPS_DETRACTOR
from csat_hook.notify.records import AlertMessage


def answer_alerts(
    conn: sa.Connection,
    config: AlertsConfig,
    rules: Sequence[LowRatingRule | CommentRule | NpsDetractorRule | AgentBelowTargetRule],
    inputs: Inputs,
    seen: Mapping[str, datetime],
    stale: Counter[str] | None = None,
) -> list[NewAlert]:
    """The alerts ``rules`` raise over the answers this run changed (``seen``: when each
    rule was first seen, by ``rule:<name>``), with the reply's context of each answer.
    ``stale`` counts, by rule, the answers a rule matches that are too old to alert
    (``alerts.max_age_hours``) and were submitted after it existed, unless the answer they
    replace matched it so too (:func:`_said_before`): the run says what is new."""
    now = inputs.now
    too_old = now - timedelta(hours=config.max_age_hours)
    backfill = timedelta(minutes=config.backfill_minutes)
    matched: list[tuple[Any, Changed, str, str]] = []
    for answer in inputs.changed:
        old = answer.submitted_at < too_old
        if old and stale is None:
            continue
        for rule in rules:
            if answer.submitted_at < seen[f"rule:{rule.name}"] - backfill:
                continue  # submitted before the rule existed: not replayed
            event = _match(rule, answer, inputs.scale)
            if event is None:
                continue
            if old:
                assert stale is not None
                if not _said_before(rule, answer, event, inputs.scale, seen, backfill):
                    stale[rule.name] += 1
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
    matched = _without_improvements(conn, matched, inputs.scale)
    if not matched:
        return []
    contexts = store.reply_contexts(conn, sorted({a.token for _, a, _, _ in matched}))
    shown = _shown_names(conn, [a for _, a, _, _ in matched], inputs)
    # The team as the report names it ("Billing"), not as this survey spelled it ("billing ").
    teams = team_names(conn, [a.team for _, a, _, _ in matched])
    new = []
    for rule, answer, event, key in matched:
        message = AlertMessage(
            ref=alert_ref(key),
            event=event,
            rule=rule.name,
            created_at=now.isoformat(),
            scale_min=inputs.scale.scale_min,
            scale_max=inputs.scale.scale_max,
            helpdesk=answer.helpdesk,
            dialog_id=answer.dialog_id,
            ticket_url=ticket_url(inputs.helpdesks, answer.helpdesk, answer.dialog_id),
            agent_key=answer.agent_key,
            agent_name=shown[answer.helpdesk, answer.agent_key],
            team=teams.get(answer.team or "") or None,
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
            NewAlert(
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


def _scores(event: str, answer: Changed) -> tuple[int | None, int | None]:
    """The score ``event`` is about (the NPS score for a detractor, else the rating) and the
    one the edit replaced (None for a first answer)."""
    if event == NPS_DETRACTOR:
        return answer.nps, answer.previous_nps
    return answer.rating, answer.previous_rating


def _without_improvements(
    conn: sa.Connection, matched: list[tuple[Any, Changed, str, str]], scale: Scale
) -> list[tuple[Any, Changed, str, str]]:
    """``matched`` less the edits that raised the score of an answer the same rule has
    alerted on already (under any score, the alert standing): the team knows of the worse
    one."""
    told: dict[int, list[str]] = {}
    for index, (rule, answer, event, _) in enumerate(matched):
        score, previous = _scores(event, answer)
        if score is None or previous is None or score <= previous:
            continue
        told[index] = _keys_under_any_score(rule.name, answer, event, scale)
    if not told:
        return matched
    # A withdrawn alert told the team nothing it should act on (its deliveries not yet made
    # were cancelled): the better score is the first they hear.
    existing = store.existing_keys(
        conn, sorted({k for keys in told.values() for k in keys}), standing=True
    )
    return [
        item
        for index, item in enumerate(matched)
        if not any(key in existing for key in told.get(index, ()))
    ]


def withdrawals(
    rules: Sequence[LowRatingRule | CommentRule | NpsDetractorRule | AgentBelowTargetRule],
    inputs: Inputs,
) -> dict[str, list[str]]:
    """The alerts to withdraw, by reason (``alerts.cancel_reason``): those each rule may have
    raised on an answer this run edited (under any score) that the rule no longer matches.

    Only an answer's latest version here counts (a survey may change twice in a run), and
    only edits (a first answer has no alert yet). Whether such an alert exists, stands, and
    has deliveries not yet started is the store's to find; what went out stays sent. Age
    and the rule's start do not matter: an alert that was raised is withdrawn however old
    its answer."""
    latest: dict[str, Changed] = {}
    for answer in inputs.changed:
        kept = latest.get(answer.survey_key)
        if kept is None or answer.submitted_at >= kept.submitted_at:
            latest[answer.survey_key] = answer
    found: dict[str, list[str]] = {}
    for answer in latest.values():
        if answer.previous_rating is None and answer.previous_nps is None:
            continue  # a first answer: nothing was raised on it before this run
        for rule in rules:
            event = _event(rule)
            if event is None or _match(rule, answer, inputs.scale) is not None:
                continue
            score, previous = _scores(event, answer)
            if score == previous and event != COMMENT:
                continue  # the same score: the rule did not match it before either
            found.setdefault(_why(rule, answer), []).extend(
                _keys_under_any_score(rule.name, answer, event, inputs.scale)
            )
    return found


def _keys_under_any_score(rule: str, answer: Changed, event: str, scale: Scale) -> list[str]:
    """The identities an alert of ``rule`` on ``answer`` may have been raised under, whatever
    the score was then: every score of the scale (0-10 for NPS), widened to the score the
    edit replaced."""
    _, previous = _scores(event, answer)
    low, high = (0, 10) if event == NPS_DETRACTOR else (scale.scale_min, scale.scale_max)
    if previous is not None:
        low, high = min(low, previous), max(high, previous)
    return [
        alert_key("answer", rule, answer.survey_key, event, score) for score in range(low, high + 1)
    ]


def _event(rule: Any) -> str | None:
    """The event ``rule`` raises (part of its alerts' identity); None for an agent rule."""
    if isinstance(rule, LowRatingRule):
        return LOW_RATING
    if isinstance(rule, CommentRule):
        return COMMENT
    if isinstance(rule, NpsDetractorRule):
        return NPS_DETRACTOR
    return None


def _why(rule: Any, answer: Scored) -> str:
    """Why ``rule`` no longer matches ``answer``: its score is above the limit, or (a
    ``comment`` rule) it has no comment any more."""
    if isinstance(rule, CommentRule) and (
        rule.max_rating is None or answer.rating <= rule.max_rating
    ):
        return COMMENT_REMOVED  # the rating still counts: the comment is what went
    return ANSWER_IMPROVED


class Scored(Protocol):
    """An answer as a rule reads it (a :class:`Changed`, a stored answer)."""

    @property
    def rating(self) -> int: ...
    @property
    def nps(self) -> int | None: ...
    @property
    def comment(self) -> str | None: ...


def rule_verdict(
    rule: Any, event: str, threshold: int | None, answer: Scored, scale: Scale
) -> str | None:
    """Why ``rule`` (the answer rule of an alert's name, as configured now) would not raise
    the alert of ``event``, raised under the limit ``threshold``, about ``answer`` as it is
    now (``alerts.cancel_reason``); None when it would. Another kind of rule, or a limit
    other than the alert's that ``answer`` is not within: the rule changed. Otherwise the
    answer did (an edit or an erasure no rule read), as :func:`withdrawals` says it: its
    comment gone (its rating still counts), or its score above the alert's own limit."""
    if _event(rule) != event:
        return RULE_CHANGED
    if _match(rule, answer, scale) is not None:
        return None
    why = _why(rule, answer)
    if why == ANSWER_IMPROVED and _limit(rule, scale) != threshold:
        return RULE_CHANGED
    return why


def _limit(rule: Any, scale: Scale) -> int | None:
    """The highest rating (NPS score) ``rule`` alerts on; None when any rating counts."""
    if isinstance(rule, LowRatingRule):
        return rule.max_rating if rule.max_rating is not None else scale.default_low
    if isinstance(rule, CommentRule):
        return rule.max_rating
    if isinstance(rule, NpsDetractorRule):
        return rule.max_score
    return None


def _said_before(
    rule: Any,
    answer: Changed,
    event: str,
    scale: Scale,
    seen: Mapping[str, datetime],
    back: timedelta,
) -> bool:
    """Whether the answer ``answer`` replaced raised ``event`` under ``rule`` too, submitted
    after the rule existed (alerted, or counted too old, by the run that stored it). An edit
    of an old answer, or a read of every row crediting it again, counted it every time."""
    when, rating = answer.previous_submitted_at, answer.previous_rating
    if when is None or rating is None or when < seen[f"rule:{rule.name}"] - back:
        return False  # a new answer, or one before the rule
    previous = replace(
        answer, rating=rating, comment=answer.previous_comment, nps=answer.previous_nps
    )
    return _match(rule, previous, scale) == event


def _match(rule: Any, answer: Scored, scale: Scale) -> str | None:
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


def _shown_names(
    conn: sa.Connection, alerted: Sequence[Changed], inputs: Inputs
) -> dict[tuple[str, str], str]:
    """The alerted answers' agents as alert text names them (alerts/names.py): with their key
    where another agent's name looks the same, among the answers this run changed, the
    dataset's agents (else the agents with an answer whose survey recorded the same name)
    and the helpdesks' configured agents."""
    named = {(a.helpdesk, a.agent_key): a.agent_name or a.agent_key for a in alerted}
    others = [((c.helpdesk, c.agent_key), c.agent_name or c.agent_key) for c in inputs.changed]
    if inputs.data is not None:
        others += [((a.helpdesk, a.key), a.name or a.key) for a in inputs.data.agents if a.key]
    else:
        others += named_alike(conn, list(named.values()))
    for helpdesk, options in inputs.helpdesks.items():
        for key, agent in (getattr(options, "agents", None) or {}).items():
            name = getattr(agent, "name", None)
            if name:
                others.append(((helpdesk, str(key)), str(name)))
    return told_apart(named, others)
