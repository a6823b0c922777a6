"""From a verified webhook to a stored survey and a queued reply, in one transaction.

Nothing here calls out: the helpdesk gets its answer as soon as the row is committed, and the
delivery worker (woken right after the commit) posts the reply.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from csat_hook import store
from csat_hook import tokens
from csat_hook.db import run_transaction
from csat_hook.errors import ServiceUnavailableError
from csat_hook.errors import UnknownHelpdeskError
from csat_hook.records import DialogClosed
from csat_hook.records import DialogReopened
from csat_hook.records import Ignored
from csat_hook.records import WebhookRequest
from csat_hook.services import Services

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What the webhook endpoint answers. Always 200 on success: Eadesk wants exactly 200."""

    body: dict[str, Any]
    status: int = 200


def receive(services: Services, helpdesk_name: str, request: WebhookRequest) -> Outcome:
    """Verify, parse and record one webhook; raise a WebhookError subclass to refuse it."""
    adapter = services.helpdesks.get(helpdesk_name)
    if adapter is None:
        raise UnknownHelpdeskError(f"no helpdesk named {helpdesk_name!r} is configured")
    adapter.verify(request)
    event = adapter.parse(request)
    if isinstance(event, Ignored):
        logger.debug("webhook.ignored", extra={"helpdesk": helpdesk_name, "reason": event.reason})
        return Outcome({"status": "ignored", "reason": event.reason})
    if isinstance(event, DialogClosed):
        return record_close(services, event)
    try:
        return _reopened(services, event)
    except DBAPIError as exc:
        logger.error("webhook.database-unavailable", extra={"helpdesk": helpdesk_name,
                                                            "error": type(exc.orig).__name__})
        raise ServiceUnavailableError("the database is unavailable; retry later") from exc


def _reopened(services: Services, event: DialogReopened) -> Outcome:
    cancelled = 0
    if services.config.policy.cancel_on_reopen:
        cancelled = run_transaction(services.engine, lambda conn: store.cancel_waiting(
            conn, event.helpdesk, event.dialog_id, services.clock()))
    if cancelled:
        logger.info("survey.cancelled-on-reopen", extra={"helpdesk": event.helpdesk,
                                                         "dialog_id": event.dialog_id})
    return Outcome({"status": "reopened", "cancelled": cancelled})


def record_close(services: Services, event: DialogClosed) -> Outcome:
    """Store the survey for a close and queue its reply, unless it is a duplicate or skipped.

    Returns once the close is committed (concurrent closes share one transaction: see
    :mod:`csat_hook.recorder`).
    """
    config = services.config
    now = services.clock()
    occurrence = (event.occurrence or "") if config.policy.per_dialog == "every_close" else ""
    token = tokens.sign(
        config.token.secret.get_secret_value(),
        tokens.SurveyRef(event.helpdesk, event.dialog_id, event.agent.key or "", now),
    )
    body = services.recorder.record(event, token=token, now=now, occurrence=occurrence)
    logger.info("webhook.close", extra={"helpdesk": event.helpdesk, "dialog_id": event.dialog_id,
                                        "status": body["status"]})
    return Outcome(body)


def skip_reason(services: Services, conn: sa.Connection, event: DialogClosed, now: datetime,
                seen: set[str]) -> str | None:
    """The send policy: why this close gets no survey, or None to send one.

    ``seen`` holds the customers and dialogs surveyed earlier in the same transaction.
    """
    policy = services.config.policy
    if policy.skip_without_agent and not event.agent.known:
        return "no_agent"
    if event.channel and event.channel.lower() in {c.lower() for c in policy.exclude_channels}:
        return "excluded_channel"
    if event.team and event.team.lower() in {t.lower() for t in policy.exclude_teams}:
        return "excluded_team"
    if policy.per_dialog == "every_close" and policy.reclose_grace_seconds > 0:
        dialog = f"dialog:{event.helpdesk}:{event.dialog_id}"
        if dialog in seen or store.dialog_surveyed_since(
            conn, event.helpdesk, event.dialog_id,
            now - timedelta(seconds=policy.reclose_grace_seconds),
        ):
            return "recently_surveyed"
        seen.add(dialog)
    if policy.customer_cooldown_days > 0:
        who = {k for k in (event.customer.id, (event.customer.email or "").lower()) if k}
        if who & seen or store.customer_surveyed_since(
            conn, event.helpdesk, event.customer.id, event.customer.email,
            now - timedelta(days=policy.customer_cooldown_days),
        ):
            return "customer_cooldown"
        seen.update(who)
    return None
