"""Intercom: configuration, topics, API paths and the rate-limit header."""

from __future__ import annotations

from typing import Any
from typing import ClassVar

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.ids import ids_as_text
from csat_hook.helpdesks.signing import MAX_PREVIOUS_SECRETS
from csat_hook.helpdesks.signing import PreviousSecrets

CLOSE_TOPIC = "conversation.admin.closed"
REOPEN_TOPIC = "conversation.admin.opened"
# A customer's reply: a reopen when it reopened the closed conversation (webhook.reopened_by).
REPLY_TOPIC = "conversation.user.replied"
PING_TOPIC = "ping"
# https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/replyconversation
REPLY_PATH = "/conversations/{conversation}/reply"
# https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/manageconversation
PARTS_PATH = "/conversations/{conversation}/parts"
# https://developers.intercom.com/docs/references/rest-api/api.intercom.io/admins/retrieveadmin
ADMIN_PATH = "/admins/{admin}"
# https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/retrieveconversation
CONVERSATION_PATH = "/conversations/{conversation}"
# Intercom answers 429 with X-RateLimit-Reset (Unix time), not Retry-After; a response hook
# turns it into a delay under this name, which the HTTP client then reads like Retry-After.
RESET_DELAY_HEADER = "X-Csat-Hook-Reset-Delay"
RETRY_AFTER_HEADERS = ("Retry-After", RESET_DELAY_HEADER)
CUSTOMER_TYPES = frozenset({"user", "lead", "contact"})


class IntercomOptions(HelpdeskOptions):
    authorization_options: ClassVar[str | None] = "access_token"
    rotated_secrets: ClassVar[dict[str, str]] = {"previous_client_secrets": "client_secret"}
    kind: str = "intercom"
    base_url: str = "https://api.intercom.io"
    access_token: SecretStr
    client_secret: SecretStr
    # A rotation: the client secrets client_secret replaced, whose signatures are still
    # accepted until Intercom signs with the new one.
    previous_client_secrets: PreviousSecrets = Field(
        default_factory=list, max_length=MAX_PREVIOUS_SECRETS
    )
    api_version: str | None = "2.14"
    admin_id: str | None = None
    keep_closed: bool = True
    # Team id → name: 2.x items carry team_assignee_id only (no call is made while intake runs).
    teams: dict[str, str] = Field(default_factory=dict)
    # Admins whose closes never start a survey (bots, automation, a dedicated survey sender).
    ignore_closes_by: list[str] = Field(default_factory=list)

    @field_validator("admin_id", "teams", "ignore_closes_by", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return ids_as_text(value)

    @model_validator(mode="after")
    def _complete(self) -> IntercomOptions:
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must start with https:// (e.g. https://api.eu.intercom.io)")
        for key in ("access_token", "client_secret"):
            if not getattr(self, key).get_secret_value().strip():
                raise ValueError(f"{key} must not be empty")
        if self.admin_id is not None and not self.admin_id.strip():
            raise ValueError("admin_id must be an admin id or null (reply as the closing admin)")
        self.base_url = self.base_url.rstrip("/")
        return self
