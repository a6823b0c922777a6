"""Freshdesk: configuration, status codes and API paths."""

from __future__ import annotations

import re
from typing import ClassVar

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.signing import MAX_PREVIOUS_SECRETS
from csat_hook.helpdesks.signing import PreviousSecrets
from csat_hook.helpdesks.signing import header_name
from csat_hook.helpdesks.signing import nonblank_credential
from csat_hook.helpdesks.signing import nonblank_secret

# https://developers.freshdesk.com/api/#reply_ticket
REPLY_PATH = "/api/v2/tickets/{ticket}/reply"
# https://developers.freshdesk.com/api/#view_a_ticket
TICKET_PATH = "/api/v2/tickets/{ticket}"
# https://developers.freshdesk.com/api/#add_note_to_a_ticket
NOTES_PATH = "/api/v2/tickets/{ticket}/notes"
# https://developers.freshdesk.com/api/#view_agent
AGENT_PATH = "/api/v2/agents/{agent}"
# https://developers.freshdesk.com/api/#list_all_ticket_notes
CONVERSATIONS_PATH = "/api/v2/tickets/{ticket}/conversations"

CLOSED_CODES = frozenset({"4", "5"})  # Resolved, Closed
# Open and Pending: Freshdesk's own statuses that are no close. A custom status (6 and up) may
# be one an account closes with (closed_statuses names it) or one it works in: not told apart.
OPEN_CODES = {2: "Open", 3: "Pending"}
# Freshdesk's own status names (2 Open, 3 Pending, 4 Resolved, 5 Closed, and the two custom
# statuses every account starts with): named in an ignored reason although they hold spaces,
# which :func:`~csat_hook.helpdesks.records.shown_name` takes for a sentence.
STATUS_NAMES = (
    "Open",
    "Pending",
    "Resolved",
    "Closed",
    "Waiting on Customer",
    "Waiting on Third Party",
)
# {status:{from:2,to:4}}: the one property change Freshdesk reports for the rule.
STATUS_CHANGE = re.compile(
    r"\{\s*status\s*:\s*\{\s*from\s*:\s*([^,{}]*?)\s*,"
    r"\s*to\s*:\s*([^,{}]*?)\s*\}\s*\}",
    re.IGNORECASE,
)


class FreshdeskOptions(HelpdeskOptions):
    authorization_options: ClassVar[str | None] = "api_key"
    rotated_secrets: ClassVar[dict[str, str]] = {
        "previous_webhook_tokens": "webhook_token",
        "previous_webhook_passwords": "webhook_password",
    }
    kind: str = "freshdesk"
    # https://{domain}.freshdesk.com; base_url wins when both are set (tests, custom domains).
    domain: str | None = None
    base_url: str | None = None
    api_key: SecretStr
    # How the automation rule proves itself: a shared secret in a custom header…
    webhook_token: SecretStr | None = None
    webhook_token_header: str = "X-Csat-Hook-Token"  # noqa: S105 (a header name)
    # …and/or Basic auth ("Requires authentication" in the rule).
    webhook_username: str | None = None
    webhook_password: SecretStr | None = None
    # A rotation: the tokens (passwords, for the same username) the current ones replaced,
    # still accepted until every rule sends the new one.
    previous_webhook_tokens: PreviousSecrets = Field(
        default_factory=list, max_length=MAX_PREVIOUS_SECRETS
    )
    previous_webhook_passwords: PreviousSecrets = Field(
        default_factory=list, max_length=MAX_PREVIOUS_SECRETS
    )
    # Status names meaning closed, for bodies without {{triggered_event}} (case-insensitive).
    closed_statuses: list[str] = Field(default_factory=lambda: ["Resolved", "Closed"])

    _secrets = field_validator("webhook_token", "webhook_password")(nonblank_secret)
    _credentials = field_validator("api_key")(nonblank_credential)
    _header = field_validator("webhook_token_header")(header_name)

    @model_validator(mode="after")
    def _complete(self) -> FreshdeskOptions:
        if self.base_url:
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError("base_url must start with http:// or https://")
            self.base_url = self.base_url.rstrip("/")
        elif self.domain:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", self.domain):
                raise ValueError("domain must be the name before .freshdesk.com, e.g. acme")
            self.base_url = f"https://{self.domain}.freshdesk.com"
        else:
            raise ValueError("set domain (https://<domain>.freshdesk.com) or base_url")
        basic = (self.webhook_username is not None, self.webhook_password is not None)
        if any(basic) and not all(basic):
            raise ValueError("webhook_username and webhook_password go together (Basic auth)")
        if self.webhook_token is None and not all(basic):
            raise ValueError(
                "set webhook_token (a custom header) or webhook_username + "
                "webhook_password (Basic auth): Freshdesk signs nothing"
            )
        return self
