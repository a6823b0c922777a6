"""Zendesk: configuration, the webhook signing scheme and the API paths."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from typing import ClassVar

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.base import api_prefixed
from csat_hook.helpdesks.ids import ids_as_text
from csat_hook.helpdesks.signing import MAX_PREVIOUS_SECRETS
from csat_hook.helpdesks.signing import MAX_TOLERANCE_SECONDS
from csat_hook.helpdesks.signing import PreviousSecrets
from csat_hook.helpdesks.signing import hmac_digest
from csat_hook.helpdesks.signing import nonblank_secret

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
# The fixed secret Zendesk signs test deliveries with before a webhook (and so its own secret)
# exists. Public: a request it signs proves nothing, so it is acknowledged and ignored.
TEST_SIGNING_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="  # noqa: S105

STATUS_CHANGED = "zen:event-type:ticket.status_changed"
CLOSED = "closed"
SOLVED = "solved"
CLOSED_STATUSES = frozenset({SOLVED, CLOSED})
# The skip reason of a close to Closed: "Tickets with a status set to Closed can't be updated"
# (Zendesk's native system ticket rules), so its reply could only fail (HTTP 422).
# https://support.zendesk.com/hc/en-us/articles/4408894213018
TICKET_CLOSED = "ticket_closed"
# {{ticket.status}} display texts that mean "not solved any more" (a reopen trigger).
OPEN_STATUSES = frozenset({"new", "open", "pending", "on-hold", "hold"})

# What every API path below starts with.
API_PREFIX = "/api/v2"
# https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket
TICKET_PATH = "/api/v2/tickets/{ticket}.json"
# https://developer.zendesk.com/api-reference/ticketing/users/users/#show-user
USER_PATH = "/api/v2/users/{user}.json"
# https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/#list-comments
COMMENTS_PATH = "/api/v2/tickets/{ticket}/comments.json"


class ZendeskOptions(HelpdeskOptions):
    authorization_options: ClassVar[str | None] = "email and api_token (or oauth_token)"
    rotated_secrets: ClassVar[dict[str, str]] = {"previous_webhook_secrets": "webhook_secret"}
    kind: str = "zendesk"
    # https://{subdomain}.zendesk.com; base_url wins when both are set (tests, proxies).
    subdomain: str | None = None
    base_url: str | None = None
    webhook_secret: SecretStr
    # A rotation ("Reset secret" on the webhook): the secrets webhook_secret replaced, still
    # accepted until every delivery is signed with the new one.
    previous_webhook_secrets: PreviousSecrets = Field(
        default_factory=list, max_length=MAX_PREVIOUS_SECRETS
    )
    tolerance_seconds: float = Field(default=300, gt=0, le=MAX_TOLERANCE_SECONDS)
    accept_test_deliveries: bool = True
    # API access: email + api_token (Basic "{email}/token:{api_token}"), or an OAuth token.
    email: str | None = None
    api_token: SecretStr | None = None
    oauth_token: SecretStr | None = None
    # Send "status": "solved" with the reply so posting it leaves the ticket solved.
    keep_solved: bool = True
    # Group id → name: events carry only detail.group_id; triggers send the name itself.
    groups: dict[str, str] = Field(default_factory=dict)
    # What a trigger body's {{ticket.status}} renders for a close and for a reopen, compared
    # case-insensitively (Unicode case folding, NFC): an account that renders statuses in its
    # own language lists its words here ("Решен", "Gelöst"). Events are not affected: their
    # statuses are Zendesk's fixed upper-case names.
    closed_statuses: list[str] = Field(
        default_factory=lambda: sorted(CLOSED_STATUSES), min_length=1, max_length=20
    )
    reopened_statuses: list[str] = Field(
        default_factory=lambda: sorted(OPEN_STATUSES), max_length=20
    )

    _secrets = field_validator("webhook_secret")(nonblank_secret)

    @field_validator("closed_statuses", "reopened_statuses")
    @classmethod
    def _status_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not status_key(name):
                raise ValueError("a status name must not be empty")
            if len(name) > 100:
                raise ValueError(f"status name {name[:20]!r}… is longer than 100 characters")
        return value

    def trigger_status(self, rendered_status: str | None) -> str | None:
        """``"closed"``, ``"reopened"`` or None for a trigger body's rendered status."""
        key = status_key(rendered_status or "")
        if not key:
            return None
        if key in {status_key(name) for name in self.closed_statuses}:
            return "closed"
        if key in {status_key(name) for name in self.reopened_statuses}:
            return "reopened"
        return None

    @field_validator("groups", mode="before")
    @classmethod
    def _group_ids_as_text(cls, value: Any) -> Any:
        return ids_as_text(value)

    @model_validator(mode="after")
    def _complete(self) -> ZendeskOptions:
        both = {status_key(n) for n in self.closed_statuses} & {
            status_key(n) for n in self.reopened_statuses
        }
        if both:
            raise ValueError(
                f"status {sorted(both)[0]!r} is in both closed_statuses and reopened_statuses"
            )
        if self.base_url:
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError("base_url must start with http:// or https://")
            self.base_url = self.base_url.rstrip("/")
            if api_prefixed(self.base_url, API_PREFIX):
                # The paths start with it: /api/v2/api/v2/tickets/… is a 404 for every reply,
                # failed for good as a ticket "deleted, merged or a wrong id".
                raise ValueError(
                    f"base_url without {API_PREFIX}: the account's address, e.g. "
                    "https://acme.zendesk.com (or set subdomain)"
                )
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
        for index, old in enumerate(self.previous_webhook_secrets):
            # Accepted as a webhook's own, it would let anyone's test delivery in as a close.
            if old.get_secret_value() == TEST_SIGNING_SECRET:
                raise ValueError(
                    f"previous_webhook_secrets.{index} is Zendesk's public test secret, "
                    "which signs nothing a webhook of yours sent: remove it"
                )
        return self


def status_key(name: str) -> str:
    """A status name as compared: NFC, case-folded, surrounding spaces ignored."""
    return unicodedata.normalize("NFC", name).strip().casefold()


def zendesk_signature(secret: SecretStr | str, timestamp: str, body: bytes) -> bytes:
    """The raw HMAC-SHA256 digest Zendesk base64-encodes into the signature header."""
    return hmac_digest(secret, timestamp.encode("utf-8") + body)
