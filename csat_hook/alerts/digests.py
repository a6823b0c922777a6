"""Digests: a day's or a week's figures, the agents lowest first and the lowest answers.

A digest is identified by its name, its period and its cadence: it is raised by the first
sync at or after its send time (``at``, local to the report's time zone; ``weekday`` for a
weekly one) and never again for that period. The first digest is the first one due after
the digest was configured; after a change of its cadence, weekday, time or time zone, the
first whose period ends after the last day a digest of its name reported (a period whose
every day went out is not sent again; a weekday moved makes one week overlap the last).

A send time is the first instant the local clock shows it or a later time: where the clocks
go back and it comes twice, the first time; where they go forward past it (02:30 on a
spring-forward night), the moment they do (03:00). Send times are compared as instants: the
clocks going back neither hold a due digest back until the wall clock shows its time again,
nor make the previous one due again. A period is its local days, midnight to midnight (23 or
25 hours on the days the clocks change); a day the zone skipped (Samoa's 2011-12-30) is no
period and raises no digest. A rating off the scale (stored under an earlier ``metrics``
scale) is in no digest, as it is in none of the report's figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
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

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MIDNIGHT = time(0, 0)


def digest_due(digest: DigestConfig, now: datetime, tz: ZoneInfo) -> tuple[datetime, date, date]:
    """The latest send time at or before ``now`` (an instant, in UTC) and the period it
    reports (its first day and the day after its last, local dates)."""
    span = 1 if digest.every == "day" else 7
    # The day after today's: the clocks going back over midnight can show a date again.
    day = now.astimezone(tz).date() + timedelta(days=1)
    if digest.every == "week":
        day -= timedelta(days=(day.weekday() - WEEKDAYS.index(digest.weekday)) % 7)
    while (send := local_instant(day, digest.at, tz)) > now:
        day -= timedelta(days=span)
    return send, day - timedelta(days=span), day


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the clock in ``tz`` shows ``day`` ``at`` or later:
    the first of the two where the clocks go back over it, the end of the gap where they go
    forward over it."""
    wall = datetime.combine(day, at)
    first = wall.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the first of two
    if _shown(first, tz) == wall:
        return first
    # Skipped: the clocks jumped between ``before`` (the wall time read with the offset after
    # the jump, shown earlier) and ``first`` (read with the offset before it, shown later).
    # Transitions fall on whole seconds; a gap is at most a day, 17 halvings.
    before = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    low, high = int(before.timestamp()), int(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _shown(datetime.fromtimestamp(middle, UTC), tz) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _shown(instant: datetime, tz: ZoneInfo) -> datetime:
    """What the clock in ``tz`` shows at ``instant`` (naive: wall times compare as shown)."""
    return instant.astimezone(tz).replace(tzinfo=None)


def digest_alert(
    digest: DigestConfig,
    inputs: Inputs,
    data: DatasetLike,
    first_seen: datetime,
    reported: date | None = None,
) -> NewAlert | None:
    """The digest due at ``inputs.now`` (``first_seen``: when the digest was configured;
    ``reported``: the day after the last day a digest of its name reported, if any); None
    when none is due, its period ends by ``reported`` (its days went out already, under
    another cadence, weekday or time zone), or it had no answers and ``send_empty`` is off."""
    tz, now, scale = inputs.tz, inputs.now, inputs.scale
    send, first, after = digest_due(digest, now, tz)
    if send < first_seen:
        return None  # the first digest is the first one due after it was configured
    if reported is not None and after <= reported:
        # A cadence made weekly on a Tuesday: last week's digest (its Monday passed) is due
        # under it, and every one of its days went out in the daily digests; made daily on a
        # Monday, Sunday was in the weekly one. Stale, as a missed period is: not sent.
        return None
    start = local_instant(first, MIDNIGHT, tz)
    end = local_instant(after, MIDNIGHT, tz)
    if start == end:
        return None  # days the zone skipped: no time, no period
    # A rating off the scale (stored under an earlier one) the report ignores, and so does a
    # digest: a 7 on 1-5 counted as satisfied, a 0 was listed among the lowest.
    in_period = [
        a
        for a in data.answers
        if start <= a.submitted_at < end and scale.scale_min <= a.rating <= scale.scale_max
    ]
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
