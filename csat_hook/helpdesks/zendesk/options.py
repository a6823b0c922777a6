"""Zendesk: configuration, the webhook signing scheme and the API paths."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.ids import ids_as_text
from csat_hook.helpdesks.signing import hmac_digest

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
# The fixed secret Zendesk signs test deliveries with before a webhook (and so its own secret)
# exists. Public: a request it signs proves nothing, so it is acknowledged and ignored.
TEST_SIGNING_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="  # noqa: S105

STATUS_CHANGED = "zen:event-type:ticket.status_changed"
CLOSED_STATUSES = frozenset({"solved", "closed"})
# {{ticket.status}} display texts that mean "not solved any more" (a reopen trigger).
OPEN_STATUSES = frozenset({"new", "open", "pending", "on-hold", "hold"})

# https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket
TICKET_PATH = "/api/v2/tickets/{ticket}.json"
# https://developer.zendesk.com/api-reference/ticketing/users/users/#show-user
USER_PATH = "/api/v2/users/{user}.json"
# https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/#list-comments
COMMENTS_PATH = "/api/v2/tickets/{ticket}/comments.json"


class ZendeskOptions(HelpdeskOptions):
    kind: str = "zendesk"
    # https://{subdomain}.zendesk.com; base_url wins when both are set (tests, proxies).
    subdomain: str | None = None
    base_url: str | None = None
    webhook_secret: SecretStr
    tolerance_seconds: float = Field(default=300, gt=0)
    accept_test_deliveries: bool = True
    # API access: email + api_token (Basic "{email}/token:{api_token}"), or an OAuth token.
    email: str | None = None
    api_token: SecretStr | None = None
    oauth_token: SecretStr | None = None
    # Send "status": "solved" with the reply so posting it leaves the ticket solved.
    keep_solved: bool = True
    # Group id → name: events carry only detail.group_id; triggers send the name itself.
    groups: dict[str, str] = Field(default_factory=dict)

    @field_validator("groups", mode="before")
    @classmethod
    def _group_ids_as_text(cls, value: Any) -> Any:
        return ids_as_text(value)

    @model_validator(mode="after")
    def _complete(self) -> ZendeskOptions:
        if self.base_url:
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError("base_url must start with http:// or https://")
            self.base_url = self.base_url.rstrip("/")
        elif self.subdomain:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", self.subdomain):
                raise ValueError("subdomain must be the name before .zendesk.com, e.g. acme")
            self.base_url = f"https://{self.subdomain}.zendesk.com"
        else:
            raise ValueError("set subdomain (https://<subdomain>.zendesk.com) or base_url")
        basic = self.email is not None or self.api_token is not None
        if basic and (self.email is None or self.api_token is None):
            raise ValueError("email and api_token go together (API token authentication)")
        if basic == (self.oauth_token is not None):
            raise ValueError("set either email + api_token, or oauth_token, for the Zendesk API")
        if self.webhook_secret.get_secret_value() == TEST_SIGNING_SECRET:
            raise ValueError(
                "webhook_secret is Zendesk's public test secret; use the "
                "webhook's own signing secret (Admin Center → Webhooks)"
            )
        return self


def zendesk_signature(secret: SecretStr | str, timestamp: str, body: bytes) -> bytes:
    """The raw HMAC-SHA256 digest Zendesk base64-encodes into the signature header."""
    return hmac_digest(secret, timestamp.encode("utf-8") + body)
