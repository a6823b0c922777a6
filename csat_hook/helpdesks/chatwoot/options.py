"""Chatwoot's options and the API paths and event names the adapter uses."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.signing import MAX_PREVIOUS_SECRETS
from csat_hook.helpdesks.signing import MAX_TOLERANCE_SECONDS
from csat_hook.helpdesks.signing import PreviousSecrets
from csat_hook.helpdesks.signing import nonblank_credential
from csat_hook.helpdesks.signing import nonblank_secret

# https://developers.chatwoot.com/api-reference/messages/create-new-message
MESSAGES_PATH = "/api/v1/accounts/{account}/conversations/{conversation}/messages"
# https://developers.chatwoot.com/api-reference/agents/list-agents-in-account
AGENTS_PATH = "/api/v1/accounts/{account}/agents"

# MessageFinder's page: the latest 20, or the 20 before a message id.
PAGE_SIZE = 20
# Pages read back from the newest: 100 messages posted since a reply is far beyond any dialog.
LOOKUP_PAGES = 5
OUTGOING = (1, "1", "outgoing")  # message_type: an integer in answers, a word in requests

CLOSE_EVENTS = frozenset({"conversation_status_changed", "conversation_resolved"})
REOPEN_EVENTS = frozenset({"conversation_opened"})


class ChatwootOptions(HelpdeskOptions):
    rotated_secrets: ClassVar[dict[str, str]] = {
        "previous_webhook_secrets": "webhook_secret",
        "previous_webhook_tokens": "webhook_token",
    }
    kind: str = "chatwoot"
    base_url: str = "https://app.chatwoot.com"
    api_access_token: SecretStr
    # Chatwoot's account ids start at 1: 0 read as unset ("set account_id" when it was set),
    # a negative one built /accounts/-3/… and every reply failed for good.
    account_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    webhook_secret: SecretStr | None = None
    webhook_token: SecretStr | None = None
    # A rotation: the secrets (tokens) webhook_secret (webhook_token) replaced, still accepted
    # until the webhook sends with the new one.
    previous_webhook_secrets: PreviousSecrets = Field(
        default_factory=list, max_length=MAX_PREVIOUS_SECRETS
    )
    previous_webhook_tokens: PreviousSecrets = Field(
        default_factory=list, max_length=MAX_PREVIOUS_SECRETS
    )
    # Zero or less refused every signed webhook; .inf let a captured one replay for ever.
    tolerance_seconds: float = Field(default=300, gt=0, le=MAX_TOLERANCE_SECONDS)
    # A user's (agent's or admin's) token for what an agent-bot token may not do: list a
    # conversation's messages (finding a reply after a timeout) and the agents (their
    # e-mails). Default: api_access_token, when null or empty (${CHATWOOT_LOOKUP_TOKEN:-}
    # unset: it always was; only api_access_token must not be empty).
    lookup_access_token: SecretStr | None = None

    _secrets = field_validator("webhook_secret", "webhook_token")(nonblank_secret)
    _credentials = field_validator("api_access_token")(nonblank_credential)

    @field_validator("lookup_access_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _some_auth(self) -> ChatwootOptions:
        if self.webhook_secret is None and self.webhook_token is None:
            raise ValueError(
                "set webhook_secret (Chatwoot 4.11.2+) or webhook_token "
                "(older installs: add ?token=... to the webhook URL)"
            )
        self.base_url = self.base_url.rstrip("/")
        return self
