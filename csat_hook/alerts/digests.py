"""Digests: a day's or a week's figures, the agents lowest first and the lowest answers.

A digest is identified by its name, its period and its cadence: it is raised by the first
sync at or after its send time (``at``, local to the report's time zone; ``weekday`` for a
weekly one) and never again for that period. The first digest is the first one due after
the digest was configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from csat_hook.alerts.config import DigestConfig
from csat_hook.alerts.names import told_apart
from csat_hook.alerts.records import DIGEST_KIND
from csat_hook.alerts.records import DatasetLike
from csat_hook.alerts.records import Inputs
from csat_hook.alerts.records import NewAlert
from csat_hook.alerts.records import alert_key
from csat_hook.alerts.records import alert_ref
from csat_hook.alerts.records import ticket_url
from csat_hook.alerts.stats import wilson
from csat_hook.notify.records import DIGEST
from csat_hook.notify.records import AgentFigures
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.records import DigestItem


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


def digest_alert(
    digest: DigestConfig, inputs: Inputs, data: DatasetLike, first_seen: datetime
) -> NewAlert | None:
    """The digest due at ``inputs.now`` (``first_seen``: when the digest was configured);
    None when none is due, or its period had no answers and ``send_empty`` is off."""
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
    # Named with their key where another agent's name looks the same (alerts/names.py).
    shown = told_apart({(a.helpdesk, a.key): _named(a) for a in agents})
    per_agent: dict[int, list[int]] = {}
    for answer in in_period:
        per_agent.setdefault(answer.agent, []).append(answer.rating)
    overall = _figures("*", "All agents", [a.rating for a in in_period], scale.top_box)
    listed = sorted(
        (
            _figures(
                agents[i].key, shown[agents[i].helpdesk, agents[i].key], ratings, scale.top_box
            )
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
            agent_name=shown[agents[a.agent].helpdesk, agents[a.agent].key],
            dialog_id=a.dialog_id,
            comment=a.comment or None,
            ticket_url=ticket_url(inputs.helpdesks, a.helpdesk, a.dialog_id),
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
    return NewAlert(key=key, kind=DIGEST_KIND, message=message, destinations=digest.destinations)


# The agent key of a survey whose close named no agent (intake writes ""), and how a digest
# names it: as the report does (sync/texts.py "no_agent"; alerts are written in English).
NO_AGENT = "No agent recorded"


def _named(agent: Any) -> str:
    return agent.name or (NO_AGENT if not agent.key else agent.key)


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
