"""Delivering one alert to its destination, settling an earlier attempt whose outcome is
unknown as the destination says (see :mod:`csat_hook.outbox.delivery`).

Receivers that refused an alert for now while others took it (an e-mail's recipients answered
4xx: ``SendResult.retry_to``) get it later from a follow-up delivery, queued with the sent mark
(:class:`~csat_hook.outbox.results.FollowUp`): its ``context`` names them, its generation and
how many attempts they already had (``tried``), and delivering it sends the same alert to them
alone (``Destination.send_to``). The attempt budget, ``delivery.max_attempts``, is each
receiver's across the first delivery and all its follow-ups: every claim of a delivery counts
for each of its receivers (a follow-up's receivers were in every earlier one, so one count
serves them all), and so is the backoff: their n-th attempt in all waits the retry policy's
n-th delay, a follow-up's retries never going back to the first one. A follow-up is queued
only while the receivers have attempts left, and it is retried (every receiver refused for
now, a connection refused) only within what is left; past that the note, or the failed
follow-up's error, names who never got it. A receiver that took the alert is never in a
follow-up, so never sent it twice.

A destination whose kind changed under the same name since the delivery was queued (the
webhook ``crm`` made a Slack channel; ``outbox.destination_kind``) is sent the alert rendered
for its new kind: the row holds the alert, not a message rendered for the old kind, and the
operator pointed the name elsewhere, as a changed URL does. Its ``last_error`` says so (``queued
for a webhook destination, sent as slack``) and a ``delivery.kind-changed`` line names the
destination and both kinds. What was the old kind's is not applied to the new one:

* an earlier attempt of unknown outcome went to the old receiver, which the new kind can
  neither look up nor settle (Slack's ``skip`` would record as sent a message Slack never
  saw): the alert is sent, noting that the old receiver may have had it; withdrawn
  meanwhile, it is cancelled saying it may have arrived. From then on the row is the new
  kind's (its retry, its own unknown outcome settled as the new kind does);
* a follow-up's receivers are the old kind's (an e-mail's recipients): cancelled
  (``cancelled: kind_changed``), naming who never got it, as a follow-up whose recipients
  were all removed from ``to`` is not sent. The alert went to the destination already.

A delivery queued before the kind was stored (migration 0023) is sent as configured.

A destination removed from ``alerts.destinations`` while a delivery waited for it cancels
that delivery when the recheck took it off its rule or withdrew its alert (an earlier attempt
of unknown outcome noted as one that may have arrived: nothing is left to settle it through);
one the recheck did not judge (a newer configuration's) fails naming the destination.

A destination that, as configured at the claim, can never carry the alert
(:meth:`~csat_hook.notify.base.Destination.refusal`: a helpdesk note, and a cap notice or a
digest, or an answer in a helpdesk it does not post in or that takes no notes) has the
delivery cancelled, not failed (``cancelled: not_for_this_destination; <why>``, the kind it
was queued for added when that changed): the rules would not queue it there now, and
nothing went wrong that a retry could mend. It gets there when the name became a note after
the alert was queued (a webhook's notice of ``alerts.cap_per_hour``, a digest), when a
configuration newer than the worker's queued it (the recheck before the first claim judges
only the alerts raised before its configuration was loaded), or as a cap notice queued to a
note by an earlier version (the rules queue none to a note now). An earlier
attempt of unknown outcome cannot be looked up through a destination that refuses the alert:
the delivery is cancelled saying it may have arrived. Cancelled so, or as a follow-up whose
kind changed, a delivery stays cancelled when its alert, withdrawn meanwhile, stands again
(``store.requeue_withdrawn``): no withdrawal cancelled it, and a claim would cancel it again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from typing import Any

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.records import SendResult
from csat_hook.notify.base import Destination
from csat_hook.notify.records import AlertMessage
from csat_hook.outbox import store
from csat_hook.outbox.results import FOUND_NOTE
from csat_hook.outbox.results import LOOKUP_SKEW
from csat_hook.outbox.results import Budget
from csat_hook.outbox.results import Cancelled
from csat_hook.outbox.results import Delivery
from csat_hook.outbox.results import Failed
from csat_hook.outbox.results import FollowUp
from csat_hook.outbox.results import Outcome
from csat_hook.outbox.results import Retry
from csat_hook.outbox.results import Sent
from csat_hook.outbox.results import Unchecked
from csat_hook.outbox.results import after_look_up
from csat_hook.outbox.results import unexpected_outcome

# Log lines keep the logger name they had before the module was split out of delivery.
logger = logging.getLogger("csat_hook.outbox.delivery")

# Why a follow-up was cancelled when its destination's kind changed (``cancelled: <it>``),
# and why a delivery was cancelled when its destination, as configured at the claim, can never
# carry its alert (``cancelled: <it>; <why>``): a helpdesk note and an alert about no answer,
# or about a helpdesk the note does not post in. Defined with the store, whose
# ``requeue_withdrawn`` leaves both cancelled when the alert stands again.
KIND_CHANGED = store.KIND_CHANGED
NOT_FOR_DESTINATION = store.NOT_FOR_DESTINATION

UNCONFIRMED_NOTE = (
    "outcome unknown, not sent again ({kind} can neither be asked whether it arrived nor drop "
    "a copy; on_unknown_outcome: skip): recorded as sent, unconfirmed"
)


def deliver_alert(
    delivery: Delivery, item: Any, alert: Any | None, may_write: Callable[[], bool] | None
) -> Outcome:
    """Deliver one claimed alert (``alert``: its alert row) to its destination."""
    destination = delivery.destinations.get(item.destination or "")
    if destination is None:
        return _not_configured(item, alert)
    if alert is None:  # deleted by an operator while queued
        return Failed("alert row is missing")
    try:
        message = AlertMessage.from_payload(alert.payload)
    except (TypeError, ValueError) as exc:
        return Failed(f"the stored alert cannot be read ({type(exc).__name__})")
    # Withdrawn (alerts.cancel_reason): the answer was edited so that its rule no longer
    # matches it, or the configuration changed so that it would not be raised now, after
    # this delivery was queued (a retry after a 503, held for a claim). Or this delivery
    # alone: its destination was taken off the rule (store.mark_unrouted).
    unrouted = store.unrouted_reason(item.context)
    withdrawn = alert.cancel_reason or unrouted
    if withdrawn is not None and item.uncertain_since is None:
        return Cancelled(store.withdrawn_note(withdrawn), unrouted=unrouted is not None)
    chain = follow_up_of(item)
    queued = item.destination_kind  # None: queued before migration 0023
    changed = queued if queued is not None and queued != destination.kind else None
    if changed is not None:
        logger.info(
            "delivery.kind-changed",
            extra={
                "outbox_id": item.id,
                "destination": destination.name,
                "queued_kind": changed,
                "kind": destination.kind,
            },
        )
        uncertain = item.uncertain_since is not None
        if chain.receivers is not None:
            # Receivers of the old kind (e-mail addresses): none of the destination now.
            note = store.withdrawn_note(KIND_CHANGED, may_have_arrived=uncertain)
            return Cancelled(
                f"{note}; queued for {_a(changed)} destination, now {destination.kind}; "
                f"never got it: {', '.join(chain.receivers)}",
                unrouted=True,
            )
    refused = _refused(destination, message, changed)
    if refused is not None and withdrawn is None:
        # The alert is not for this destination as configured now (a note: an alert about
        # no answer, a cap notice, or one about a helpdesk it does not post in; the kind
        # changed since, or a newer configuration queued it): cancelled, as the rules would
        # not queue it (alerts/recheck.py), not failed. Nothing went wrong: retrying or
        # `outbox retry` would only refuse it again. This delivery alone, the alert stands.
        unrouted = withdrawn = refused
        if item.uncertain_since is None:
            return Cancelled(store.withdrawn_note(refused), unrouted=True)
    if changed is not None and withdrawn is not None:
        # The old kind's unknown outcome cannot be settled now.
        return Cancelled(
            store.withdrawn_note(withdrawn, may_have_arrived=True),
            unrouted=unrouted is not None,
        )
    fence = destination.http.guarded(may_write) if may_write else contextlib.nullcontext()
    with fence:
        outcome = _send_alert(delivery, destination, item, message, may_write, withdrawn, changed)
    if isinstance(outcome, Cancelled) and unrouted is not None:
        return replace(outcome, unrouted=True)
    if changed is not None and isinstance(outcome, Retry):
        # The row is the new kind's from this attempt on (store.reschedule).
        outcome = replace(outcome, kind=destination.kind)
    if chain.receivers is not None and isinstance(outcome, Failed):
        # A failed follow-up: say who never got the alert (addresses from our own config).
        reason = f"{outcome.reason}; never got it: {', '.join(chain.receivers)}"
        return Failed(reason, outcome.http_status)
    if chain.tried and isinstance(outcome, Retry):
        # The receivers' n-th attempt in all waits the n-th delay, as their follow-up did.
        return replace(outcome, failures=chain.tried + item.attempts)
    return outcome


def _send_alert(
    delivery: Delivery,
    destination: Destination,
    item: Any,
    message: AlertMessage,
    may_write: Callable[[], bool] | None,
    withdrawn: str | None = None,
    changed: str | None = None,
) -> Outcome:
    """Send one alert, an earlier attempt of unknown outcome settled first as the destination
    says. ``withdrawn``: the alert's ``cancel_reason`` (it is withdrawn): whatever settling
    says is kept (found: sent; not to be sent again: sent, unconfirmed), but nothing is sent
    anew: cancelled, saying whether an earlier attempt may have arrived. ``changed``: the
    kind the delivery was queued for, the destination's now being another: sent as a first
    attempt of the new kind, an earlier attempt's unknown outcome (the old kind's) noted, not
    settled (see the module)."""
    extra = {"outbox_id": item.id, "destination": destination.name, "attempt": item.attempts}
    uncertain: datetime | None = item.uncertain_since
    notes: list[str] = []
    if changed is not None:
        notes.append(f"queued for {_a(changed)} destination, sent as {destination.kind}")
        if uncertain is not None:
            notes.append(
                f"an earlier attempt as {changed} had an unknown outcome: it may have arrived there"
            )
        uncertain = None
    chain = follow_up_of(item)
    # The receivers' attempts: those of the deliveries before this one count.
    budget = Budget.of(chain.tried + item.attempts, delivery.max_attempts)
    # Claimed more often than allowed (earlier claims died with their worker, or the last
    # attempt's outcome is unknown): only a look-up is left.
    if budget.over and uncertain is None:
        return Failed(budget.gave_up)
    note = None
    not_there = False  # a look-up found no copy of an earlier attempt
    if uncertain is not None:
        how = destination.settle(message)
        if how == "skip":
            logger.warning("delivery.unconfirmed", extra=extra)
            return Sent(None, None, note=UNCONFIRMED_NOTE.format(kind=destination.kind))
        if how == "lookup":
            checked = _find_alert(destination, message, uncertain)
            if isinstance(checked, SendResult):
                logger.info("delivery.found", extra=extra)
                return Sent(checked.external_id, None, note=FOUND_NOTE)
            stop = after_look_up(checked, budget)
            if stop is not None:
                return stop
            if isinstance(checked, Unchecked):
                note = f"sent again without a check ({checked.reason}): it may show twice"
            else:
                not_there = True
        else:
            if budget.over:
                return Failed(f"{budget.gave_up}; the last one's outcome is unknown")
            note = (
                "sent again after an unknown outcome, with the same id (Message-ID, "
                "webhook-id): the receiver can drop the copy"
            )
    if withdrawn is not None:
        # Looked up and not found: it did not land. Otherwise (not looked up, or a look-up
        # that could not tell) it may have.
        return Cancelled(store.withdrawn_note(withdrawn, may_have_arrived=not not_there))
    if may_write is not None and not may_write():
        # Destinations that are not HTTP (SMTP) are not guarded by the HTTP client.
        return Retry(
            DeliveryError("not sent: this worker can no longer be sure it owns it", retryable=True)
        )
    writes = destination.http.writes_started()
    try:
        if chain.receivers is None:
            result = destination.send(message)
        else:
            result = destination.send_to(message, chain.receivers)
    except DeliveryError as exc:
        if exc.outcome_unknown or (exc.retryable and not budget.last):
            return Retry(exc)
        return Failed(exc.message, exc.http_status)
    except Exception as exc:
        # A bug, or an answer the destination could not read. Once a write request went out
        # the alert may have arrived: unknown, settled at the next claim as the destination
        # says, never a blind resend. Before any (rendering, say), nothing was sent: failed,
        # and not "recorded as sent, unconfirmed" by a destination that skips unknowns.
        # SMTP sends no HTTP: its own errors after DATA are DeliveryErrors (notify/smtp.py).
        logger.exception("delivery.unexpected-error", extra=extra)
        wrote = destination.http.writes_started() != writes
        return unexpected_outcome(exc, wrote=wrote, uncertain=uncertain is not None)
    follow_up, later = _follow_up(delivery, item, chain, result.retry_to, destination.kind)
    # The destination's own note (an e-mail's refused recipients) after ours: the Alerts tab
    # reads "sent, unconfirmed" from the start of the note.
    return Sent(
        result.external_id,
        None,
        note="; ".join(filter(None, (*notes, note, result.note, later))) or None,
        follow_up=follow_up,
    )


@dataclass(frozen=True)
class Chain:
    """Where a delivery stands among an alert's deliveries to one destination."""

    receivers: tuple[str, ...] | None  # a follow-up's; None: a first delivery, to every one
    generation: int  # 0 for a first delivery, n for its n-th follow-up
    tried: int  # attempts its receivers had in the deliveries before it (0 for a first)


def follow_up_of(item: Any) -> Chain:
    """The delivery's place in its chain of follow-ups, from its ``context``. A follow-up
    queued before ``tried`` was kept counts one attempt per earlier delivery (each sent to
    its receivers at least once)."""
    context = item.context if isinstance(item.context, dict) else {}
    receivers = context.get("recipients")
    if not isinstance(receivers, list):
        return Chain(None, 0, 0)
    generation = context.get("generation")
    generation = generation if isinstance(generation, int) and generation > 0 else 1
    tried = context.get("tried")
    return Chain(
        tuple(str(r) for r in receivers),
        generation,
        tried if isinstance(tried, int) and tried > 0 else generation,
    )


def _follow_up(
    delivery: Delivery, item: Any, chain: Chain, retry_to: tuple[str, ...], kind: str
) -> tuple[FollowUp | None, str | None]:
    """The follow-up for the receivers that refused for now (none when none did), receivers
    of a ``kind`` destination, and what the note says of them; none once they had
    ``delivery.max_attempts`` attempts in all (then the note names who never got it)."""
    if not retry_to:
        return None, None
    tried = chain.tried + item.attempts  # theirs, this delivery's included
    if tried >= delivery.max_attempts:
        return None, (
            f"not sent again: refused for now after {tried} attempts (delivery.max_attempts), "
            f"never got it: {', '.join(retry_to)}"
        )
    following = chain.generation + 1
    key = item.delivery_key or f"{item.alert_id}:{item.destination}"
    return (
        FollowUp(retry_to, following, store.follow_up_key(key, following), tried, kind),
        f"to be sent again to those refused for now (follow-up {following})",
    )


def _find_alert(
    destination: Destination, message: AlertMessage, uncertain_since: datetime
) -> SendResult | DeliveryError | Unchecked | None:
    try:
        return destination.find(message, since=uncertain_since - LOOKUP_SKEW)
    except DeliveryError as exc:
        if exc.retryable:
            return exc
        return Unchecked(f"look-up refused: {exc.message}")
    except Exception as exc:
        logger.exception("delivery.unexpected-error", extra={"reason": "look-up"})
        return DeliveryError(f"internal error in look-up: {type(exc).__name__}", retryable=True)


def _not_configured(item: Any, alert: Any | None) -> Outcome:
    """The outcome of a delivery to a destination the configuration no longer has.

    Withdrawn (its alert's ``cancel_reason``) or taken off its rule (the recheck's
    :func:`~csat_hook.outbox.store.mark_unrouted`: a destination removed from
    ``alerts.destinations`` is off every rule too), it is cancelled as it would be through a
    destination still configured, saying it may have arrived when an earlier attempt's
    outcome is unknown (nothing is left to settle it through); failed, it was listed as a
    failure the operator chose, and ``outbox retry`` only failed it again. Otherwise (a
    destination this process does not know, say one a newer configuration queued) it fails
    naming the destination: a process started with that configuration can send it after
    ``outbox retry``."""
    unrouted = store.unrouted_reason(item.context)
    withdrawn = (alert.cancel_reason if alert is not None else None) or unrouted
    if withdrawn is None:
        return Failed(f"alert destination {item.destination!r} is not configured any more")
    note = store.withdrawn_note(withdrawn, may_have_arrived=item.uncertain_since is not None)
    receivers = follow_up_of(item).receivers
    if receivers is not None:
        note += f"; never got it: {', '.join(receivers)}"
    return Cancelled(note, unrouted=unrouted is not None)


def _refused(destination: Destination, message: AlertMessage, changed: str | None) -> str | None:
    """The withdrawn reason (``not_for_this_destination; <why>``) of an alert the destination
    can never carry as configured now (:meth:`~csat_hook.notify.base.Destination.refusal`),
    saying the kind it was queued for when that changed; None when it can carry it."""
    why = destination.refusal(message)
    if why is None:
        return None
    reason = f"{NOT_FOR_DESTINATION}; {why}"
    if changed is not None:
        reason += f"; queued for {_a(changed)} destination, now {destination.kind}"
    return reason


def _a(kind: str) -> str:
    """``kind`` with its article: ``a webhook``, ``an email``."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"
