"""Helpdesk adapters, by type. Adding a vendor: one module, one line here, fixtures, tests."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.chatwoot import ChatwootHelpdesk
from csat_hook.helpdesks.dryrun import DryRunHelpdesk
from csat_hook.helpdesks.freshdesk import FreshdeskHelpdesk
from csat_hook.helpdesks.generic import GenericHelpdesk
from csat_hook.helpdesks.helpscout import HelpScoutHelpdesk
from csat_hook.helpdesks.intercom import IntercomHelpdesk
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.helpdesks.zendesk import ZendeskHelpdesk

REGISTRY: dict[str, type[Helpdesk]] = {
    "dryrun": DryRunHelpdesk,
    "generic": GenericHelpdesk,
    "chatwoot": ChatwootHelpdesk,
    "zendesk": ZendeskHelpdesk,
    "freshdesk": FreshdeskHelpdesk,
    "intercom": IntercomHelpdesk,
    "helpscout": HelpScoutHelpdesk,
}


def build_helpdesks(
    options_by_name: Mapping[str, Any], *, http: HttpClient, clock: Callable[[], datetime]
) -> dict[str, Helpdesk]:
    """Instantiate every configured helpdesk from its validated options."""
    return {
        name: REGISTRY[options.kind](name, options, http=http, clock=clock)
        for name, options in options_by_name.items()
    }


def takes_notes(options: Any) -> bool:
    """Whether the helpdesk configured by ``options`` can take internal notes (alerts)."""
    adapter = REGISTRY.get(getattr(options, "kind", ""))
    return adapter is not None and adapter.takes_notes(options)
