"""Delivering one claimed row: a reply (render its link and text, post it) or an alert (hand
it to its destination), and say what happened.

:func:`deliver_one` is the unit of work of the worker loop (:mod:`csat_hook.outbox.worker`),
as a task is in procrastinate. It never touches the database and never raises for a vendor's
answer: it returns an :data:`Outcome` (sent, retry later, failed) that the loop records. It
dispatches on the row's ``kind``; both kinds share the attempt budget, the retry policy and
the fence.

Exactly one reply, even when an outcome is unknown. When an earlier attempt may have landed
(it timed out, its connection dropped, or its worker died mid-delivery: the row's
``uncertain_since``), the reply is first looked up in the dialog (:meth:`Helpdesk.find_reply`,
looking for the survey's signed reference):

* found: recorded as sent with the vendor's message id, nothing is posted;
* not found: posted;
* the vendor cannot be asked now (a retryable error): nothing is posted, the look-up is tried
  again later;
* the helpdesk cannot be asked at all (no look-up: the generic adapter without ``lookup``,
  the dry run; or a permanent refusal such as no permission to list): posted again, as before
  look-ups existed, with a warning and a note in ``last_error`` (the dialog may show it twice).

An alert whose earlier attempt may have landed is settled as its destination says
(:meth:`~csat_hook.notify.base.Destination.settle`): a helpdesk note is looked up by its
"Alert ref:" line, as a reply is; an e-mail or a webhook is sent again with the same
Message-ID or ``webhook-id`` (the receiver can drop the copy); a Slack or Telegram message,
which can neither be looked up nor deduplicated, is by default recorded as sent, unconfirmed,
and not sent again (``on_unknown_outcome: skip``): such an answer nearly always means the
message arrived, and a second copy would be the likelier error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

from csat_hook.db.schema import ALERT
from csat_hook.db.schema import REPLY
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.base import AgentLookupError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.links import LinkValues
from csat_hook.links import Segment
from csat_hook.links import SurveyConfig
from csat_hook.links import agent_label
from csat_hook.links import build_link
from csat_hook.links import plain_text
from csat_hook.links import readable_agent_name
from csat_hook.links import reply_body
from csat_hook.links import survey_segment
from csat_hook.notify.base import Destination
from csat_hook.notify.records import AlertMessage

logger = logging.getLogger(__name__)

# Look-ups start this long before the first uncertain attempt: clocks of our hosts and the
# vendor's differ by a little.
LOOKUP_SKEW = timedelta(minutes=2)
FOUND_NOTE = "found in the dialog after an unknown outcome: recorded as sent, not posted again"
UNCONFIRMED_NOTE = (
    "outcome unknown, not sent again ({kind} can neither be asked whether it arrived nor drop "
    "a copy; on_unknown_outcome: skip): recorded as sent, unconfirmed"
)


@dataclass(frozen=True)
class Sent:
    """The vendor took the reply (or the destination the alert); for a reply ``agent`` and
    ``link`` are what it went out with.

    ``note`` is kept for operators: found by a look-up, sent again without one, not sent again.
    """

    external_id: str | None
    body: str | None
    agent: Person | None = None
    link: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Retry:
    """Try again later (after the retry policy's delay, or the vendor's Retry-After)."""

    error: DeliveryError
    prefix: str = ""

    @property
    def message(self) -> str:
        return self.prefix + self.error.message


@dataclass(frozen=True)
class Failed:
    """Give up: a permanent refusal, or no attempts left. ``reason`` is shown to operators."""

    reason: str
    http_status: int | None = None


Outcome = Sent | Retry | Failed


@dataclass(frozen=True)
class Delivery:
    """What delivering needs: the adapters, the survey's link and text settings, the budget,
    and the alert destinations."""

    helpdesks: Mapping[str, Helpdesk]
    survey: SurveyConfig
    max_attempts: int
    destinations: Mapping[str, Destination] = field(default_factory=dict)


def survey_link(survey_config: SurveyConfig, survey: Any, agent: Person) -> str:
    """The link for a stored survey, with the agent as resolved at send time (the agent field
    shows a readable name, else the language's ``agent_label_without_name``)."""
    values = LinkValues(
        agent_name=agent_label(survey_config.reply, survey.language, _readable_name(agent)),
        agent_id=agent.id or "",
        agent_email=agent.email or "",
        ticket=survey.dialog_id,
        helpdesk=survey.helpdesk,
        team=survey.team or "",
        token=survey.token or "",
    )
    return build_link(survey_config.form, values)


def _survey_segment(survey_config: SurveyConfig, survey: Any, link: str) -> Segment:
    """Where the template says ``{link}``: the short link or the scale of score links when
    ``survey.links.public_base_url`` is set (the survey's reference is all they carry), else
    the form link itself. ``link`` (the form link) is what the short links redirect to."""
    if survey_config.links.enabled and survey.token:
        return survey_segment(survey_config.links, survey.token, survey.language)
    return Segment(link, href=link)


def _readable_name(agent: Person) -> str | None:
    # Never an id or an e-mail where the customer reads a name.
    return readable_agent_name(agent.name, agent_id=agent.id, email=agent.email)


@dataclass(frozen=True)
class _Unchecked:
    """The helpdesk cannot be asked whether the reply landed, and why."""

    reason: str


def deliver_one(
    delivery: Delivery,
    item: Any,
    record: Any | None,
    *,
    may_write: Callable[[], bool] | None = None,
) -> Outcome:
    """Deliver one claimed row (``item``: its outbox row; ``record``: its survey row for a
    reply, its alert row for an alert).

    ``may_write`` is the worker's fence: checked before each request that may change
    something, it says whether this worker still owns the claim (see
    :meth:`~csat_hook.helpdesks.transport.HttpClient.guarded`).
    """
    if getattr(item, "kind", REPLY) == ALERT:  # rows before alerts existed are replies
        return _deliver_alert(delivery, item, record, may_write)
    survey = record
    adapter = delivery.helpdesks.get(item.helpdesk)
    if adapter is None:
        return Failed(f"helpdesk {item.helpdesk!r} is not configured any more")
    if survey is None:  # deleted by an operator while queued
        return Failed("survey row is missing")
    fence = adapter.http.guarded(may_write) if may_write else contextlib.nullcontext()
    with fence:
        return _deliver(delivery, adapter, item, survey)


def _deliver(delivery: Delivery, adapter: Helpdesk, item: Any, survey: Any) -> Outcome:
    extra = {"outbox_id": item.id, "helpdesk": item.helpdesk, "attempt": item.attempts}
    uncertain: datetime | None = item.uncertain_since
    # Claimed more often than allowed (earlier claims died with their worker, or the last
    # attempt's outcome is unknown): only a look-up is left.
    over_budget = item.attempts > delivery.max_attempts
    gave_up = f"gave up after {item.attempts - 1} attempts"
    if over_budget and uncertain is None:
        return Failed(gave_up)
    last_attempt = item.attempts >= delivery.max_attempts
    agent = Person(survey.agent_id, survey.agent_name, survey.agent_email)
    try:
        agent = adapter.resolve_agent(agent, item.context, dialog_id=item.dialog_id)
    except DeliveryError as exc:
        if exc.retryable and not last_attempt:
            return Retry(exc, prefix="agent lookup: ")
        # Out of retries for the lookup: the survey still goes out, with what we know.
        if isinstance(exc, AgentLookupError):
            agent = exc.known
        logger.warning("delivery.agent-lookup-failed", extra={**extra, "error": exc.message})
    link = survey_link(delivery.survey, survey, agent)
    body = reply_body(
        delivery.survey.reply,
        survey.language,
        link=_survey_segment(delivery.survey, survey, link),
        agent_name=_readable_name(agent) or "",  # none: the template without an agent
        customer_name=survey.customer_name or "",
        ticket=survey.dialog_id,
        helpdesk=survey.helpdesk,
        team=survey.team or "",
    )
    text = plain_text(body)
    shown = next((segment.href for segment in body if segment.href), link)
    reply = Reply(
        helpdesk=item.helpdesk,
        dialog_id=item.dialog_id,
        text=text,
        link=shown,
        agent=agent,
        customer=Person(survey.customer_id, survey.customer_name, survey.customer_email),
        context=item.context,
        idempotency_key=f"csat-hook-{item.id}",
        marker=survey.token or "",
        body=body,
        channel=getattr(survey, "channel", None) or "",
    )
    note = None
    if uncertain is not None:
        checked = _look_up(adapter, reply, uncertain)
        if isinstance(checked, SendResult):
            logger.info("delivery.found", extra=extra)
            return Sent(checked.external_id, text, agent, link, note=FOUND_NOTE)
        if isinstance(checked, DeliveryError):
            if over_budget:
                return Failed(
                    f"{gave_up}; the last one's outcome is unknown and the look-up failed: "
                    f"{checked.message}",
                    checked.http_status,
                )
            return Retry(checked, prefix="look-up before sending again: ")
        if isinstance(checked, _Unchecked):
            if over_budget:
                return Failed(f"{gave_up}; the last one's outcome is unknown ({checked.reason})")
            logger.warning("delivery.resend-unchecked", extra={**extra, "reason": checked.reason})
            note = (
                f"sent again without a check ({checked.reason}): an earlier attempt's outcome "
                "was unknown, the dialog may show the survey twice"
            )
        elif over_budget:
            return Failed(f"{gave_up}; looked up: the last one did not land")
    try:
        result = adapter.send_reply(reply)
    except DeliveryError as exc:
        if exc.outcome_unknown:
            # Even on the last attempt: the next claim looks whether it landed.
            return Retry(exc)
        if exc.retryable and not last_attempt:
            return Retry(exc)
        return Failed(exc.message, exc.http_status)
    except Exception as exc:
        # A bug, not a vendor answer: keep the reply, retry later, surface the type only.
        logger.exception("delivery.unexpected-error", extra=extra)
        return Retry(DeliveryError(f"internal error: {type(exc).__name__}", retryable=True))
    return Sent(result.external_id, text, agent, link, note=note)


def _look_up(
    adapter: Helpdesk, reply: Reply, uncertain_since: datetime
) -> SendResult | DeliveryError | _Unchecked | None:
    """Whether an earlier attempt landed: the message found, None (not there), a retryable
    error (ask again later), or why the helpdesk cannot be asked."""
    if not adapter.supports_lookup:
        return _Unchecked(f"helpdesk {adapter.name!r} has no look-up")
    if not reply.marker:
        return _Unchecked("the survey has no reference to look for")
    try:
        return adapter.find_reply(reply, since=uncertain_since - LOOKUP_SKEW)
    except DeliveryError as exc:
        if exc.retryable:
            return exc
        return _Unchecked(f"look-up refused: {exc.message}")
    except Exception as exc:
        # A bug in the look-up: neither send (it may double) nor give up; retry, and the
        # attempt budget ends it as failed, visibly.
        logger.exception(
            "delivery.unexpected-error", extra={"helpdesk": adapter.name, "reason": "look-up"}
        )
        return DeliveryError(f"internal error in look-up: {type(exc).__name__}", retryable=True)


# --- alerts -----------------------------------------------------------------------------------


def _deliver_alert(
    delivery: Delivery, item: Any, alert: Any | None, may_write: Callable[[], bool] | None
) -> Outcome:
    destination = delivery.destinations.get(item.destination or "")
    if destination is None:
        return Failed(f"alert destination {item.destination!r} is not configured any more")
    if alert is None:  # deleted by an operator while queued
        return Failed("alert row is missing")
    try:
        message = AlertMessage.from_payload(alert.payload)
    except (TypeError, ValueError) as exc:
        return Failed(f"the stored alert cannot be read ({type(exc).__name__})")
    fence = destination.http.guarded(may_write) if may_write else contextlib.nullcontext()
    with fence:
        return _send_alert(delivery, destination, item, message, may_write)


def _send_alert(
    delivery: Delivery,
    destination: Destination,
    item: Any,
    message: AlertMessage,
    may_write: Callable[[], bool] | None,
) -> Outcome:
    extra = {"outbox_id": item.id, "destination": destination.name, "attempt": item.attempts}
    uncertain: datetime | None = item.uncertain_since
    over_budget = item.attempts > delivery.max_attempts
    gave_up = f"gave up after {item.attempts - 1} attempts"
    if over_budget and uncertain is None:
        return Failed(gave_up)
    last_attempt = item.attempts >= delivery.max_attempts
    note = None
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
            if isinstance(checked, DeliveryError):
                if over_budget:
                    return Failed(
                        f"{gave_up}; the last one's outcome is unknown and the look-up failed: "
                        f"{checked.message}",
                        checked.http_status,
                    )
                return Retry(checked, prefix="look-up before sending again: ")
            if isinstance(checked, _Unchecked):
                if over_budget:
                    return Failed(
                        f"{gave_up}; the last one's outcome is unknown ({checked.reason})"
                    )
                note = f"sent again without a check ({checked.reason}): it may show twice"
            elif over_budget:
                return Failed(f"{gave_up}; looked up: the last one did not land")
        else:
            if over_budget:
                return Failed(f"{gave_up}; the last one's outcome is unknown")
            note = (
                "sent again after an unknown outcome, with the same id (Message-ID, "
                "webhook-id): the receiver can drop the copy"
            )
    if may_write is not None and not may_write():
        # Destinations that are not HTTP (SMTP) are not guarded by the HTTP client.
        return Retry(
            DeliveryError("not sent: this worker can no longer be sure it owns it", retryable=True)
        )
    try:
        result = destination.send(message)
    except DeliveryError as exc:
        if exc.outcome_unknown or (exc.retryable and not last_attempt):
            return Retry(exc)
        return Failed(exc.message, exc.http_status)
    except Exception as exc:
        logger.exception("delivery.unexpected-error", extra=extra)
        return Retry(DeliveryError(f"internal error: {type(exc).__name__}", retryable=True))
    return Sent(result.external_id, None, note=note)


def _find_alert(
    destination: Destination, message: AlertMessage, uncertain_since: datetime
) -> SendResult | DeliveryError | _Unchecked | None:
    try:
        return destination.find(message, since=uncertain_since - LOOKUP_SKEW)
    except DeliveryError as exc:
        if exc.retryable:
            return exc
        return _Unchecked(f"look-up refused: {exc.message}")
    except Exception as exc:
        logger.exception("delivery.unexpected-error", extra={"reason": "look-up"})
        return DeliveryError(f"internal error in look-up: {type(exc).__name__}", retryable=True)
