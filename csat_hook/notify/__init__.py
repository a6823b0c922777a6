"""Alert destinations: where a bad rating is told to the team.

``options`` (each kind's configuration), ``records`` (the alert as every destination sees
it), ``render`` (the words they share), ``base`` (the interface), and one module per kind:
``slack`` (incoming webhook, Block Kit), ``telegram`` (Bot API ``sendMessage``), ``smtp``
(e-mail over STARTTLS), ``webhook`` (signed JSON, Standard Webhooks) and ``note`` (an internal
note in the rated conversation, through its helpdesk's adapter). The outbox delivers alerts
through them exactly as it delivers replies through the helpdesk adapters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csat_hook.clock import Clock
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.notify.base import Destination
from csat_hook.notify.note import NoteDestination
from csat_hook.notify.slack import SlackDestination
from csat_hook.notify.smtp import EmailDestination
from csat_hook.notify.telegram import TelegramDestination
from csat_hook.notify.webhook import WebhookDestination

REGISTRY: dict[str, type[Destination]] = {
    "slack": SlackDestination,
    "telegram": TelegramDestination,
    "email": EmailDestination,
    "webhook": WebhookDestination,
    "helpdesk_note": NoteDestination,
}


def build_destinations(
    options_by_name: Mapping[str, Any],
    *,
    http: HttpClient,
    helpdesks: Mapping[str, Helpdesk],
    clock: Clock,
) -> dict[str, Destination]:
    """Instantiate every configured destination from its validated options."""
    return {
        name: REGISTRY[options.kind](name, options, http=http, helpdesks=helpdesks, clock=clock)
        for name, options in options_by_name.items()
    }
