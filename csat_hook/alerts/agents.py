"""The ``agent_below_target`` rule: an agent whose CSAT went below target, once per drop.

Agents with an answer changed in this run are tested over the rule's window with an exact
binomial (:mod:`csat_hook.alerts.stats`); each agent's state (``below``/``ok`` and the
episode, the n-th time it went below) is kept in ``alert_state``, so an agent is alerted
once per drop, and again only after it came back (p ≥ ``exit_alpha``) or the window passed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import timedelta

import sqlalchemy as sa

from csat_hook.alerts import store
from csat_hook.alerts.config import AgentBelowTargetRule
from csat_hook.alerts.names import told_apart
from csat_hook.alerts.records import AGENT
from csat_hook.alerts.records import DatasetLike
from csat_hook.alerts.records import Inputs
from csat_hook.alerts.records import NewAlert
from csat_hook.alerts.records import alert_key
from csat_hook.alerts.records import alert_ref
from csat_hook.alerts.stats import binomial_cdf
from csat_hook.alerts.stats import wilson
from csat_hook.notify.records import AGENT_BELOW_TARGET
from csat_hook.notify.records import AgentFigures
from csat_hook.notify.records import AlertMessage

BELOW, OK = "below", "ok"
# How far after now an answer's time may be and still count in the window: as far as the sync
# credits one (sync/sources/base.py FUTURE_SLACK; a source's clock ahead of ours, a zone
# setting a little off). The window ended at now: the very answer a run credited, dated a few
# seconds ahead, was left out of its agent's test, which no later run made again.
AHEAD = timedelta(days=1)


def agent_state_name(rule: str, helpdesk: str, agent_key: str) -> str:
    """The ``alert_state`` name of an agent under a rule (the agent's key digested)."""
    digest = hashlib.sha256(agent_key.encode("utf-8")).hexdigest()[:24]
    return f"agent:{rule}:{helpdesk}:{digest}"


def agent_alerts(
    conn: sa.Connection, rule: AgentBelowTargetRule, inputs: Inputs, data: DatasetLike
) -> list[NewAlert]:
    """Agents with an answer changed in this run, tested over their window (see the rule)."""
    now = inputs.now
    start = now - timedelta(days=rule.window_days)
    wanted = {(c.helpdesk, c.agent_key) for c in inputs.changed if c.submitted_at >= start}
    if not wanted:
        return []
    agents = data.agents
    # The no-agent key ("": closes that named none) pools many dialogs, and is never ranked.
    index = {
        i: (a.helpdesk, a.key)
        for i, a in enumerate(agents)
        if a.key and (a.helpdesk, a.key) in wanted
    }
    answers: Counter[int] = Counter()
    satisfied: Counter[int] = Counter()
    top = inputs.scale.top_box
    end = now + AHEAD
    for answer in data.answers:
        if answer.agent in index and start <= answer.submitted_at <= end:
            answers[answer.agent] += 1
            if answer.rating >= top:
                satisfied[answer.agent] += 1
    state_names = {i: agent_state_name(rule.name, *index[i]) for i in index}
    # Named with their key where another agent's name looks the same (alerts/names.py).
    shown = told_apart(
        {index[i]: agents[i].name or index[i][1] for i in index},
        (((a.helpdesk, a.key), a.name or a.key) for a in agents if a.key),
    )
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
            agent_name=shown[helpdesk, key],
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
            NewAlert(
                key=akey, kind=AGENT, message=message, destinations=rule.destinations, agent_key=key
            )
        )
    return new
