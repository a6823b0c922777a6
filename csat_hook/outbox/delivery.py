"""Delivering one claimed reply: render its link and text, post it, say what happened.

:func:`deliver_one` is the unit of work of the worker loop (:mod:`csat_hook.outbox.worker`),
as a task is in procrastinate. It never touches the database and never raises for a vendor's
answer: it returns an :data:`Outcome` (sent, retry later, failed) that the loop records.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.links import LinkValues
from csat_hook.links import SurveyConfig
from csat_hook.links import agent_label
from csat_hook.links import build_link
from csat_hook.links import readable_agent_name
from csat_hook.links import reply_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    """The vendor took the reply; ``agent`` and ``link`` are what it went out with."""

    external_id: str | None
    body: str
    agent: Person
    link: str


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
    """What delivering needs: the adapters, the survey's link and text settings, the budget."""

    helpdesks: Mapping[str, Helpdesk]
    survey: SurveyConfig
    max_attempts: int


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


def _readable_name(agent: Person) -> str | None:
    # Never an id or an e-mail where the customer reads a name.
    return readable_agent_name(agent.name, agent_id=agent.id, email=agent.email)


def deliver_one(delivery: Delivery, item: Any, survey: Any | None) -> Outcome:
    """Post one claimed reply (``item``: its outbox row; ``survey``: its survey row)."""
    extra = {"outbox_id": item.id, "helpdesk": item.helpdesk, "attempt": item.attempts}
    adapter = delivery.helpdesks.get(item.helpdesk)
    if adapter is None:
        return Failed(f"helpdesk {item.helpdesk!r} is not configured any more")
    if item.attempts > delivery.max_attempts:
        # Claimed more often than allowed: earlier claims died with their worker.
        return Failed(f"gave up after {item.attempts - 1} attempts")
    if survey is None:  # deleted by an operator while queued
        return Failed("survey row is missing")
    last_attempt = item.attempts >= delivery.max_attempts
    agent = Person(survey.agent_id, survey.agent_name, survey.agent_email)
    try:
        agent = adapter.resolve_agent(agent, item.context)
    except DeliveryError as exc:
        if exc.retryable and not last_attempt:
            return Retry(exc, prefix="agent lookup: ")
        # Out of retries for the lookup: the survey still goes out, with what we know.
        logger.warning("delivery.agent-lookup-failed", extra={**extra, "error": exc.message})
    link = survey_link(delivery.survey, survey, agent)
    text = reply_text(
        delivery.survey.reply,
        survey.language,
        link=link,
        agent_name=_readable_name(agent) or "",  # none: the template without an agent
        customer_name=survey.customer_name or "",
        ticket=survey.dialog_id,
        helpdesk=survey.helpdesk,
        team=survey.team or "",
    )
    reply = Reply(
        helpdesk=item.helpdesk,
        dialog_id=item.dialog_id,
        text=text,
        link=link,
        agent=agent,
        customer=Person(survey.customer_id, survey.customer_name, survey.customer_email),
        context=item.context,
        idempotency_key=f"csat-hook-{item.id}",
    )
    try:
        result = adapter.send_reply(reply)
    except DeliveryError as exc:
        if exc.retryable and not last_attempt:
            return Retry(exc)
        return Failed(exc.message, exc.http_status)
    except Exception as exc:
        # A bug, not a vendor answer: keep the reply, retry later, surface the type only.
        logger.exception("delivery.unexpected-error", extra=extra)
        return Retry(DeliveryError(f"internal error: {type(exc).__name__}", retryable=True))
    return Sent(result.external_id, text, agent, link)
