"""Raising alerts: the rules run over the answers a sync stored, in the sync's transaction.

:func:`raise_alerts` is called by the sync after the ingest, before it commits: the alerts it
raises and the deliveries it queues are stored with the answers that raised them, or not at
all (a failed run, a dry run). Every alert has an identity (``alerts.key``):

* an answer rule (:mod:`~csat_hook.alerts.answers`): the rule, the survey and the rating
  (the NPS score for ``nps_detractor``). Reading the answer again (the next sync,
  ``--full``, an edit of the comment) raises nothing; a lowered rating raises one alert for
  the change (``previous_rating``); coming back to a rating already alerted, or raising one
  the rule alerted on (1 → 2 under ``max_rating: 2``), raises nothing;
* ``agent_below_target`` (:mod:`~csat_hook.alerts.agents`): the rule, the agent and the
  episode (the n-th time the agent went below), so an agent is alerted once per drop;
* a digest (:mod:`~csat_hook.alerts.digests`): the digest and its period; an overflow
  notice: the destination and the hour (a note destination is sent none, see
  :func:`_overflow`).

An answer edited so that a rule no longer matches it (a 1 raised to a 5) withdraws the
rule's alerts on it (``alerts.cancel_reason``): their deliveries not yet started are
cancelled in the same transaction (one conditional UPDATE on ``pending`` rows: a delivery a
worker holds is left to it, and cancelled by the worker at its next claim if it comes back),
what went out stays sent (no retraction is sent). Matched again (back to the alerted score),
the alert stands again and the deliveries its withdrawal cancelled are queued once more (not
those cancelled for their destination: taken off the rule, not for it at a claim). Alerts
not sent yet are checked again against the configuration as it is now, every run, rules or
none (:mod:`~csat_hook.alerts.recheck`): a rule removed, renamed or changed withdraws them
the same way, a destination taken off a rule cancels its deliveries there.

Each new alert is queued once per destination (``<alert id>:<destination>``) through the
outbox, which delivers it like a reply. The storm guards of :class:`AlertsConfig` apply here.
The records a run reads and returns are in :mod:`~csat_hook.alerts.records` (importable from
here too).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from csat_hook.alerts import store
from csat_hook.alerts.agents import agent_alerts
from csat_hook.alerts.agents import agent_state_name
from csat_hook.alerts.answers import answer_alerts
from csat_hook.alerts.answers import withdrawals
from csat_hook.alerts.config import AgentBelowTargetRule
from csat_hook.alerts.config import AlertsConfig
from csat_hook.alerts.digests import digest_alert
from csat_hook.alerts.digests import digest_due
from csat_hook.alerts.recheck import notable
from csat_hook.alerts.recheck import recheck
from csat_hook.alerts.records import AGENT
from csat_hook.alerts.records import ANSWER
from csat_hook.alerts.records import DIGEST_KIND
from csat_hook.alerts.records import OVERFLOW_KIND
from csat_hook.alerts.records import WITHDRAWALS
from csat_hook.alerts.records import AlertsOutcome
from csat_hook.alerts.records import Changed
from csat_hook.alerts.records import Inputs
from csat_hook.alerts.records import NewAlert
from csat_hook.alerts.records import Scale
from csat_hook.alerts.records import alert_key
from csat_hook.alerts.records import alert_ref
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import PENDING
from csat_hook.notify.records import OVERFLOW
from csat_hook.notify.records import AlertMessage
from csat_hook.outbox import store as outbox_store
from csat_hook.outbox import wake

__all__ = [
    "AGENT",
    "ANSWER",
    "DIGEST_KIND",
    "OVERFLOW_KIND",
    "AlertsOutcome",
    "Changed",
    "Inputs",
    "Scale",
    "agent_state_name",
    "alert_key",
    "alert_ref",
    "digest_due",
    "needs_dataset",
    "raise_alerts",
]

CAP_WINDOW = timedelta(hours=1)


def needs_dataset(config: AlertsConfig) -> bool:
    """Whether the rules read every current answer (agent rules, digests), not only the
    answers a run changed."""
    return bool(config.digests) or any(
        isinstance(rule, AgentBelowTargetRule) for rule in config.rules
    )


def raise_alerts(conn: sa.Connection, config: AlertsConfig, inputs: Inputs) -> AlertsOutcome:
    """Run every rule and due digest; store new alerts and queue their deliveries. Then,
    rules or none, withdraw the alerts not sent yet that the configuration would not raise
    now (:mod:`~csat_hook.alerts.recheck`)."""
    outcome = AlertsOutcome()
    if config.active:
        _raise(conn, config, inputs, outcome)
    # Last: an alert this run restored (its cancelled deliveries queued again) is checked
    # too, in the same transaction, so no worker sees a delivery the rule no longer has.
    outcome.cancelled += recheck(conn, config, inputs.scale, inputs.now, inputs.helpdesks)
    if outcome.queued:
        wake.notify_workers(conn)
    return outcome


def _raise(
    conn: sa.Connection, config: AlertsConfig, inputs: Inputs, outcome: AlertsOutcome
) -> None:
    now = inputs.now
    seen = store.first_seen(
        conn,
        [f"rule:{r.name}" for r in config.rules] + [f"digest:{d.name}" for d in config.digests],
        now,
    )
    new: list[NewAlert] = []
    answer_rules = [r for r in config.rules if not isinstance(r, AgentBelowTargetRule)]
    if answer_rules and inputs.changed:
        new += answer_alerts(conn, config, answer_rules, inputs, seen, outcome.too_old)
    data = inputs.data
    if data is not None:
        for rule in config.rules:
            if isinstance(rule, AgentBelowTargetRule):
                new += agent_alerts(conn, rule, inputs, data)
        reported = (
            store.digests_reported(conn, [d.name for d in config.digests]) if config.digests else {}
        )
        for digest in config.digests:
            found = digest_alert(
                digest, inputs, data, seen[f"digest:{digest.name}"], reported.get(digest.name)
            )
            if found is not None:
                new.append(found)
    existing = store.existing_keys(conn, [n.key for n in new]) if new else set()
    # Raised before, withdrawn since, and matched again (the answer came back to the alerted
    # score): the same alert stands again, and what was cancelled goes out.
    again = store.restore(conn, sorted({n.key for n in new if n.key in existing}))
    if again:
        outcome.queued += outbox_store.requeue_withdrawn(conn, again, WITHDRAWALS, now)
    for item in new:
        if item.key in existing:
            continue
        alert_id = _store(conn, item, now)
        if alert_id is None:
            continue
        outcome.raised[item.message.rule] += 1
        _fan_out(conn, config, alert_id, item, inputs, outcome)
    # Last, so that an alert this run raised or restored on an answer whose latest version
    # the rule no longer matches is withdrawn too.
    if answer_rules and inputs.changed:
        for reason, keys in withdrawals(answer_rules, inputs).items():
            withdrawn = store.withdraw(conn, keys, reason, now)
            if withdrawn:
                outcome.cancelled += outbox_store.cancel_withdrawn(conn, withdrawn, reason, now)


# --- storing and queueing ---------------------------------------------------------------------


def _store(conn: sa.Connection, item: NewAlert, now: datetime) -> int | None:
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
    item: NewAlert,
    inputs: Inputs,
    outcome: AlertsOutcome,
) -> None:
    """Queue one delivery per destination of the alert (a note only where it can go); over a
    destination's cap for the hour, the delivery is held (listed as "held (cap)" in the
    Alerts tab and ``csat-hook alerts``) and the destination told once, unless it is a note
    (see :func:`_overflow`)."""
    now = inputs.now
    message = item.message
    hour = now.replace(minute=0, second=0, microsecond=0)
    for name in item.destinations:
        options = config.destinations[name]
        if options.kind == "helpdesk_note" and not _notable(options, message, inputs.helpdesks):
            continue
        held = item.kind in (ANSWER, AGENT) and (
            store.capped_deliveries(conn, name, hour) >= config.cap_per_hour
        )
        outbox_store.enqueue_alerts(
            conn,
            [
                _delivery(
                    alert_id,
                    name,
                    options.kind,
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
            if options.kind != "helpdesk_note":
                _overflow(conn, name, options.kind, hour, inputs, outcome)
        else:
            outcome.queued += 1


def _notable(options: Any, message: AlertMessage, helpdesks: Mapping[str, Any]) -> bool:
    """Whether a note destination takes ``message``: an answer's alert, in a helpdesk that
    takes notes (and is among the destination's ``helpdesks``, when listed)."""
    return message.about_answer and notable(options, message.helpdesk, message.dialog_id, helpdesks)


def _overflow(
    conn: sa.Connection,
    destination: str,
    kind: str,
    hour: datetime,
    inputs: Inputs,
    outcome: AlertsOutcome,
) -> None:
    """Raise the notice that ``destination`` reached its cap this hour (once an hour) and
    queue it there. Never called for a note destination: a note goes into the conversation of
    the one answer it is about, and the notice is about none (queued, it was only cancelled
    at its claim, ``not_for_this_destination``); what a note destination held is listed as
    every destination's is."""
    key = alert_key("overflow", destination, hour.isoformat())
    until = hour + CAP_WINDOW
    message = AlertMessage(
        ref=alert_ref(key),
        event=OVERFLOW,
        rule="cap_per_hour",
        created_at=inputs.now.isoformat(),
        destination=destination,
        # ISO 8601, as a webhook's every time (docs/alerts.md); the text shows it as
        # "2026-11-20 13:00 UTC" (render.when).
        held_until=until.isoformat(),
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
        conn,
        [
            _delivery(
                alert_id,
                destination,
                kind,
                message,
                inputs.now,
                status=PENDING,
            )
        ],
    )
    outcome.raised[message.rule] += 1
    outcome.queued += 1


def _delivery(
    alert_id: int,
    destination: str,
    kind: str,
    message: AlertMessage,
    now: datetime,
    *,
    status: str,
    error: str | None = None,
) -> dict[str, Any]:
    return {
        "alert_id": alert_id,
        "destination": destination,
        "destination_kind": kind,
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
