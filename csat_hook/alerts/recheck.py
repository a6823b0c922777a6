"""Alerts not sent yet, checked again against the configuration as it is now.

An operator who removes or renames a rule, lowers its limit or takes a destination off it,
and restarts, expects what still waits to go out to follow the change. Every sync
(:func:`~csat_hook.alerts.engine.raise_alerts`, last, whether any rule is configured or not),
and every delivery worker before its first claim (``Services.recheck_alerts``: the first
sync after a restart may read its source for minutes), reads the standing alerts with a
delivery not finished (``pending``, or ``sending`` under a worker: few, the outbox sends an
alert in seconds unless its destination refuses it for now) and withdraws those the
configuration would not raise now, as an answer edited out of its rule withdraws its alert,
through the same statements and so under the same guards: only ``pending`` deliveries whose
earlier attempt's outcome is known are cancelled here; one a worker holds ends as it ends
(if it comes back for a retry, its next claim cancels it); one of unknown outcome is settled
first. Run twice, or by processes starting together, it changes nothing the second time.
``alerts.cancel_reason`` says why:

* ``rule_removed``: no rule (digest) of the alert's name any more. A renamed rule is another
  rule: its name is part of its alerts' identity;
* ``rule_changed``: the rule of that name raises another kind of alert, or (an answer rule)
  no longer matches the answer as it is now, under a limit other than the alert's
  (``max_rating: 2`` → ``1`` with an alert about a 2 queued);
* ``answer_improved`` / ``comment_removed``: the rule matches no more because the answer
  changed (an edit, or an erasure of its comment, that no rule read), as
  :func:`~csat_hook.alerts.answers.withdrawals` says it.

A destination taken off the rule (digest) cancels that destination's deliveries alone
(``cancelled: destination_removed`` in their ``last_error``): the alert stands, and goes to
the others. So does a note destination the rules would not queue the alert to now: its
``helpdesks`` no longer list the dialog's helpdesk, or that helpdesk is no longer configured
(or takes no notes) — the same test as when the alert was raised. Those it cannot cancel
now (a worker's, one of unknown outcome) are marked
(:func:`~csat_hook.outbox.store.mark_unrouted`): their next claim settles an earlier attempt
as usual (found: sent) and cancels them instead of sending them anew. An agent alert is
checked by its rule's name, kind and destinations only (whether the agent is still below a
changed target would take the window's answers again), a digest by its name and
destinations. An alert withdrawn here stands again only as a withdrawn alert
does (its answer edited back to a score the rule alerts on): a rule put back does not send
what was cancelled. Nor does a destination put back, even when the alert stands again: the
deliveries taken off the rule stay cancelled
(:func:`~csat_hook.outbox.store.requeue_withdrawn` queues only a withdrawal's). Cap notices
are left as they are.

A configuration judges only the alerts raised before it was loaded
(:attr:`~csat_hook.alerts.config.AlertsConfig.loaded_at`): ``serve`` still running on the
file as it was, beside a ``csat-hook sync`` run by hand with the edited one, must not
withdraw for good what the newer rules raised (its periodic sync, or a web process
respawned from the configuration the server started with). What was queued before a
restart is judged by the configuration the process started with.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from typing import NamedTuple

import sqlalchemy as sa

from csat_hook.alerts import store
from csat_hook.alerts.answers import rule_verdict
from csat_hook.alerts.config import AgentBelowTargetRule
from csat_hook.alerts.config import AlertsConfig
from csat_hook.alerts.records import AGENT
from csat_hook.alerts.records import ANSWER
from csat_hook.alerts.records import DESTINATION_REMOVED
from csat_hook.alerts.records import DIGEST_KIND
from csat_hook.alerts.records import RULE_CHANGED
from csat_hook.alerts.records import RULE_REMOVED
from csat_hook.alerts.records import Scale
from csat_hook.helpdesks import takes_notes
from csat_hook.outbox import store as outbox_store


class _Answer(NamedTuple):
    """An answer's scores as a rule reads them (a stored answer's, else the alert's)."""

    rating: int
    nps: int | None
    comment: str | None


def recheck(
    conn: sa.Connection,
    config: AlertsConfig,
    scale: Scale,
    now: datetime,
    helpdesks: Mapping[str, Any],
) -> int:
    """Withdraw the unfinished alerts the configuration would not raise now and cancel their
    deliveries not started, and the deliveries to destinations taken off their rule or that
    would not take them now (a note, ``helpdesks``: the configured helpdesks; see the
    module); return how many deliveries were cancelled."""
    unfinished = store.unfinished(conn, [ANSWER, AGENT, DIGEST_KIND], config.loaded_at)
    if not unfinished:
        return 0
    rules: dict[str, Any] = {rule.name: rule for rule in config.rules}
    digests: dict[str, Any] = {digest.name: digest for digest in config.digests}
    current = store.current_answers(
        conn, sorted({a.survey_key for a in unfinished if a.kind == ANSWER and a.survey_key})
    )
    withdrawn: dict[str, list[int]] = {}
    cancelled = 0
    for alert in unfinished:
        rule: Any = (digests if alert.kind == DIGEST_KIND else rules).get(alert.rule)
        reason = RULE_REMOVED if rule is None else _reason(alert, rule, current, scale)
        if reason is not None:
            withdrawn.setdefault(reason, []).append(alert.id)
            continue
        unrouted = sorted(
            name
            for name in alert.destinations
            if name not in rule.destinations
            or not _takes(config.destinations[name], alert, helpdesks)
        )
        if unrouted:
            cancelled += outbox_store.cancel_unrouted(
                conn, alert.id, unrouted, DESTINATION_REMOVED, now
            )
            # Those it must leave (a worker's, one of unknown outcome) are cancelled at their
            # next claim, after settling; without a mark the settle would send them anew.
            outbox_store.mark_unrouted(conn, alert.id, unrouted, DESTINATION_REMOVED)
    for reason, ids in sorted(withdrawn.items()):
        ids = store.withdraw_ids(conn, ids, reason, now)
        if ids:
            cancelled += outbox_store.cancel_withdrawn(conn, ids, reason, now)
    return cancelled


def notable(
    options: Any, helpdesk: str | None, dialog_id: str | None, helpdesks: Mapping[str, Any]
) -> bool:
    """Whether a note destination (``options``) takes an answer's alert about the dialog
    ``dialog_id`` of ``helpdesk``: a configured helpdesk that takes notes, among the
    destination's ``helpdesks`` when listed."""
    if not helpdesk or helpdesk not in helpdesks or not dialog_id:
        return False
    if options.helpdesks and helpdesk not in options.helpdesks:
        return False
    return takes_notes(helpdesks[helpdesk])


def _takes(options: Any, alert: store.Unfinished, helpdesks: Mapping[str, Any]) -> bool:
    """Whether the destination (``options``, as configured now) would be queued ``alert``
    now: a note only an answer's alert in a helpdesk it posts in, as the rules queue it."""
    if options.kind != "helpdesk_note":
        return True
    return alert.kind == ANSWER and notable(options, alert.helpdesk, alert.dialog_id, helpdesks)


def _reason(
    alert: store.Unfinished, rule: Any, current: Mapping[str, Any], scale: Scale
) -> str | None:
    """Why the configuration would not raise ``alert`` now (``rule``: the rule or digest of
    its name as configured); None when it would."""
    if alert.kind == AGENT:
        return None if isinstance(rule, AgentBelowTargetRule) else RULE_CHANGED
    if alert.kind != ANSWER:
        return None  # a digest of that name
    payload = alert.payload if isinstance(alert.payload, Mapping) else {}
    answer = current.get(alert.survey_key or "")
    if answer is None:  # not stored here (a test's, another installation's): as alerted
        rating = payload.get("rating")
        if not isinstance(rating, int):
            return None  # nothing to weigh: left as it is
        nps, comment = payload.get("nps"), payload.get("comment")
        answer = _Answer(
            rating,
            nps if isinstance(nps, int) else None,
            comment if isinstance(comment, str) else None,
        )
    threshold = payload.get("threshold")
    return rule_verdict(
        rule,
        str(payload.get("event")),
        threshold if isinstance(threshold, int) else None,
        answer,
        scale,
    )
