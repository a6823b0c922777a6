"""Help Scout: configuration, events, API paths and the rate-limit headers."""

from __future__ import annotations

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
from csat_hook.helpdesks.signing import PreviousSecrets

STATUS_EVENT = "convo.status"
TEST_EVENT = "helpscout.test"
CLOSED_STATUS = "closed"
REOPEN_STATUSES = frozenset({"active", "pending", "open"})
# What every API path below starts with.
API_PREFIX = "/v2"
# https://developer.helpscout.com/mailbox-api/overview/authentication/
TOKEN_PATH = "/v2/oauth2/token"  # noqa: S105 (a path, not a secret)
# https://developer.helpscout.com/mailbox-api/endpoints/conversations/threads/reply/
REPLY_PATH = "/v2/conversations/{conversation}/reply"
# https://developer.helpscout.com/mailbox-api/endpoints/users/get/
USER_PATH = "/v2/users/{user}"
# https://developer.helpscout.com/mailbox-api/endpoints/conversations/threads/list/
THREADS_PATH = "/v2/conversations/{conversation}/threads"
# https://developer.helpscout.com/mailbox-api/endpoints/conversations/threads/note/
NOTES_PATH = "/v2/conversations/{conversation}/notes"
# https://developer.helpscout.com/mailbox-api/endpoints/conversations/get/
CONVERSATION_PATH = "/v2/conversations/{conversation}"
# The statuses a conversation can have; a note is posted with the current one.
CONVERSATION_STATUSES = frozenset({"active", "pending", CLOSED_STATUS, "spam"})
# https://developer.helpscout.com/mailbox-api/overview/rate-limiting/
RETRY_AFTER_HEADERS = ("X-RateLimit-Retry-After", "Retry-After")
MAX_SECRET_LENGTH = 40  # Help Scout refuses longer webhook secrets


class HelpScoutOptions(HelpdeskOptions):
    authorization_options: ClassVar[str | None] = "client_id and client_secret"
    rotated_secrets: ClassVar[dict[str, str]] = {"previous_webhook_secrets": "webhook_secret"}
    kind: str = "helpscout"
    base_url: str = "https://api.helpscout.net"
    # Your Profile → My Apps → Create My App: "App ID" and "App Secret".
    client_id: str
    client_secret: SecretStr
    webhook_secret: SecretStr
    # A rotation: the secrets webhook_secret replaced, still accepted until the webhook
    # signs with the new one.
    previous_webhook_secrets: PreviousSecrets = Field(
        default_factory=list, max_length=MAX_PREVIOUS_SECRETS
    )
    # Post the reply as this user id; default: the user who owns the app. Or as the agent.
    user_id: str | None = None
    reply_as_agent: bool = False
    mailboxes: dict[str, str] = Field(default_factory=dict)  # mailbox id → name (the "team")

    @field_validator("user_id", "mailboxes", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return ids_as_text(value)

    @model_validator(mode="after")
    def _complete(self) -> HelpScoutOptions:
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https://")
        if not self.client_id.strip() or not self.client_secret.get_secret_value().strip():
            raise ValueError(
                "client_id and client_secret are required (the app's ID and "
                "secret from Your Profile → My Apps)"
            )
        secret = self.webhook_secret.get_secret_value()
        if not secret.strip() or len(secret) > MAX_SECRET_LENGTH:
            raise ValueError(
                f"webhook_secret must be 1 to {MAX_SECRET_LENGTH} characters "
                "(Help Scout's limit), the same as in the webhook settings"
            )
        for index, old in enumerate(self.previous_webhook_secrets):
            if len(old.get_secret_value()) > MAX_SECRET_LENGTH:
                raise ValueError(
                    f"previous_webhook_secrets.{index}: longer than {MAX_SECRET_LENGTH} "
                    "characters, so never a Help Scout webhook's secret (Help Scout's limit)"
                )
        if self.user_id is not None and self.reply_as_agent:
            raise ValueError("set user_id or reply_as_agent, not both")
        if self.user_id is not None and not (self.user_id.isascii() and self.user_id.isdigit()):
            raise ValueError("user_id must be a Help Scout user id (a number)")
        self.base_url = self.base_url.rstrip("/")
        if api_prefixed(self.base_url, API_PREFIX):
            # The paths start with it: /v2/v2/oauth2/token is a 404, every reply failed for
            # good as refused credentials.
            raise ValueError(
                f"base_url without {API_PREFIX}: the API's address, https://api.helpscout.net"
            )
        return self
