"""The send policy: whether a close gets a survey, and its ``policy`` configuration section."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from typing import Literal

import sqlalchemy as sa
from pydantic import Field

from csat_hook.helpdesks.records import DialogClosed
from csat_hook.intake import store
from csat_hook.settings import StrictModel


class PolicyConfig(StrictModel):
    per_dialog: Literal["once", "every_close"] = "once"
    # With every_close: a close within this many seconds of the dialog's last survey gets none
    # (a status that flaps, or a vendor re-closing the dialog after our own reply).
    reclose_grace_seconds: float = Field(default=600, ge=0, le=30 * 86400)
    send_delay_seconds: float = Field(default=0, ge=0, le=30 * 86400)
    cancel_on_reopen: bool = True
    customer_cooldown_days: float = Field(default=0, ge=0, le=3650)
    skip_without_agent: bool = False
    exclude_channels: list[str] = Field(default_factory=list)
    exclude_teams: list[str] = Field(default_factory=list)



def skip_reason(policy: PolicyConfig, conn: sa.Connection, event: DialogClosed, now: datetime,
                seen: set[str]) -> str | None:
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
