"""The send policy: whether a close gets a survey (configured by the ``policy`` section)."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

import sqlalchemy as sa

from csat_hook.helpdesks.records import DialogClosed
from csat_hook.intake import store
from csat_hook.intake.config import PolicyConfig


def looks_back(policy: PolicyConfig) -> bool:
    """True when :func:`skip_reason` may query earlier surveys (a re-close grace or a
    customer cool-down); False when it decides from the close alone."""
    return (
        policy.per_dialog == "every_close" and policy.reclose_grace_seconds > 0
    ) or policy.customer_cooldown_days > 0


def skip_reason(
    policy: PolicyConfig, conn: sa.Connection, event: DialogClosed, now: datetime, seen: set[str]
) -> str | None:
    """Why this close gets no survey, or None to send one.

    ``seen`` holds the customers and dialogs surveyed earlier in the same transaction.
    """
    if policy.skip_without_agent and not event.agent.known:
        return "no_agent"
    if event.channel and event.channel.lower() in {c.lower() for c in policy.exclude_channels}:
        return "excluded_channel"
    if event.team and event.team.lower() in {t.lower() for t in policy.exclude_teams}:
        return "excluded_team"
    if policy.per_dialog == "every_close" and policy.reclose_grace_seconds > 0:
        dialog = f"dialog:{event.helpdesk}:{event.dialog_id}"
        if dialog in seen or store.dialog_surveyed_since(
            conn,
            event.helpdesk,
            event.dialog_id,
            now - timedelta(seconds=policy.reclose_grace_seconds),
        ):
            return "recently_surveyed"
        seen.add(dialog)
    if policy.customer_cooldown_days > 0:
        who = {k for k in (event.customer.id, (event.customer.email or "").lower()) if k}
        if who & seen or store.customer_surveyed_since(
            conn,
            event.helpdesk,
            event.customer.id,
            event.customer.email,
            now - timedelta(days=policy.customer_cooldown_days),
        ):
            return "customer_cooldown"
        seen.update(who)
    return None
