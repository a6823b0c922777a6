"""Intercom.

* Close: the ``conversation.admin.closed`` topic; reopen: ``conversation.admin.opened``. Every
  other topic, including the ``ping`` Intercom sends when a webhook is saved, is acknowledged
  and ignored. See https://developers.intercom.com/docs/references/webhooks/webhook-models
* Envelope: ``{"type": "notification_event", "topic", "id": "notif_…", "data": {"item": …}}``.
  The item follows the app's API version: 2.x (``admin_assignee_id``, ``team_assignee_id``,
  ``contacts.contacts[]``, ``source.author``, ``statistics.last_close_at``) or 1.x
  (``assignee{id,name,email}``, ``user{…}``); both are read. The part that triggered the
  notification (``part_type: close``) names the closing admin.
* Signing: ``X-Hub-Signature: sha1=<hex HMAC-SHA1(client_secret, raw body)>``. There is no
  timestamp, so a replay is caught by deduplication on the notification ``id`` (the
  occurrence), not by the signature. See
  https://developers.intercom.com/intercom-api-reference/v1.0/reference/signed-notifications
  and https://developers.intercom.com/docs/webhooks/setting-up-webhooks
* Reply: ``POST {base}/conversations/{id}/reply`` with an admin ``comment`` (``Authorization:
  Bearer``, ``Intercom-Version``). Regions: ``api.intercom.io``, ``api.eu.intercom.io``,
  ``api.au.intercom.io``. See
  https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/replyconversation
* Re-close: a customer-visible reply can reopen the closed conversation (the answer's ``state``
  says so), which would put it back in the agent's inbox. With ``keep_closed`` (default) the
  adapter closes it again through ``POST {base}/conversations/{id}/parts`` — only when the
  answer does not already say ``closed``. See
  https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/manageconversation
* Agent lookup: ``GET {base}/admins/{id}`` (2.x items carry only ``admin_assignee_id``).
* Rate limit: 429 with ``X-RateLimit-Reset`` (a Unix time, 10-second windows), turned into a
  delay. See https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import requests
from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.errors import BadPayloadError
from csat_hook.errors import DeliveryError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.base import as_id
from csat_hook.helpdesks.base import as_text
from csat_hook.helpdesks.base import dig
from csat_hook.helpdesks.base import hmac_digest
from csat_hook.helpdesks.base import parse_timestamp
from csat_hook.helpdesks.base import quote_id
from csat_hook.helpdesks.base import require_id
from csat_hook.helpdesks.base import require_object
from csat_hook.helpdesks.base import response_json
from csat_hook.helpdesks.base import signature_matches
from csat_hook.helpdesks.base import unless_not_found
from csat_hook.helpdesks.ids import ids_as_text
from csat_hook.helpdesks.markup import text_to_html
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Event
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.records import WebhookRequest

logger = logging.getLogger(__name__)

CLOSE_TOPIC = "conversation.admin.closed"
REOPEN_TOPIC = "conversation.admin.opened"
PING_TOPIC = "ping"
# https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/replyconversation
REPLY_PATH = "/conversations/{conversation}/reply"
# https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/manageconversation
PARTS_PATH = "/conversations/{conversation}/parts"
# https://developers.intercom.com/docs/references/rest-api/api.intercom.io/admins/retrieveadmin
ADMIN_PATH = "/admins/{admin}"
# Intercom answers 429 with X-RateLimit-Reset (Unix time), not Retry-After; a response hook
# turns it into a delay under this name, which the HTTP client then reads like Retry-After.
RESET_DELAY_HEADER = "X-Csat-Hook-Reset-Delay"
RETRY_AFTER_HEADERS = ("Retry-After", RESET_DELAY_HEADER)
CUSTOMER_TYPES = frozenset({"user", "lead", "contact"})


class IntercomOptions(HelpdeskOptions):
    kind: str = "intercom"
    base_url: str = "https://api.intercom.io"
    access_token: SecretStr
    client_secret: SecretStr
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


class IntercomHelpdesk(Helpdesk):
    kind = "intercom"
    Options = IntercomOptions
    options: IntercomOptions

    def verify(self, request: WebhookRequest) -> None:
        signature = request.header("X-Hub-Signature")
        if not signature:
            raise InvalidSignatureError("missing X-Hub-Signature")
        expected = hmac_digest(self.options.client_secret, request.body, "sha1")
        if not signature_matches(expected, signature, encoding="hex", prefix="sha1="):
            raise InvalidSignatureError("X-Hub-Signature does not match the body")

    def parse(self, request: WebhookRequest) -> Event:
        payload = require_object(request.json())
        topic = as_text(payload.get("topic")) or ""
        if topic == CLOSE_TOPIC:
            return self._closed(payload)
        if topic == REOPEN_TOPIC:
            return DialogReopened(self.name, require_id(payload, "data.item.id", "conversation id"))
        if topic == PING_TOPIC:
            return Ignored("ping: Intercom's test notification")
        return Ignored(f"topic {topic or '(none)'} is not a close")

    def _closed(self, payload: Mapping[str, Any]) -> Event:
        item = dig(payload, "data.item")
        if not isinstance(item, Mapping):
            raise BadPayloadError("the conversation is missing (data.item)", code="missing_field")
        dialog_id = require_id(payload, "data.item.id", "conversation id")
        close_part, part_path = _close_part(item)
        if close_part:  # a bot's close part names no admin, and nobody is credited for it
            closer = _admin(close_part.get("author"), f"{part_path}.author") or Person()
        else:
            closer = Person(
                id=_nonzero_id(
                    dig(item, "statistics.last_closed_by_id"),
                    "data.item.statistics.last_closed_by_id",
                )
            )
        if closer.id and closer.id in self.options.ignore_closes_by:
            return Ignored(f"closed by admin {closer.id}, listed in ignore_closes_by")
        agent, team = self._assignee(item)
        if agent.id and agent.id == closer.id:
            agent = agent.merged(closer)  # the close part names the admin the item only ids
        elif not agent.known:
            agent = closer  # unassigned: credit whoever closed it
        sender = closer.id or agent.id
        return DialogClosed(
            helpdesk=self.name,
            dialog_id=dialog_id,
            agent=agent,
            customer=_customer(item),
            team=team,
            channel=as_text(dig(item, "source.type")),
            closed_at=parse_timestamp(dig(item, "statistics.last_close_at"))
            or parse_timestamp(close_part.get("created_at"))
            or parse_timestamp(item.get("updated_at"))
            or parse_timestamp(payload.get("created_at")),
            # The notification id is the same on every delivery attempt of this close.
            occurrence=as_id(payload.get("id"), "id")
            or as_id(close_part.get("id"), f"{part_path}.id")
            or as_text(dig(item, "statistics.last_close_at")),
            reply_context={"admin_id": sender} if sender else {},
        )

    def _assignee(self, item: Mapping[str, Any]) -> tuple[Person, str | None]:
        """The assigned admin and the team's name (or id, when ``teams`` does not name it)."""
        team = self._team(item.get("team_assignee_id"), "data.item.team_assignee_id")
        if "admin_assignee_id" in item:  # 2.x: ids only
            admin = _nonzero_id(item.get("admin_assignee_id"), "data.item.admin_assignee_id")
            return Person(id=admin), team
        assignee = item.get("assignee")  # 1.x: an admin, a team or "nobody_admin"
        if isinstance(assignee, Mapping) and assignee.get("type") == "team":
            name = as_text(assignee.get("name"))
            return Person(), name or self._team(assignee.get("id"), "data.item.assignee.id")
        return _admin(assignee, "data.item.assignee") or Person(), team

    def _team(self, team_id: Any, field: str) -> str | None:
        text = _nonzero_id(team_id, field)
        return self.options.teams.get(text, text) if text else None

    def send_reply(self, reply: Reply) -> SendResult:
        admin_id = self.options.admin_id or as_text(reply.context.get("admin_id")) or reply.agent.id
        if not admin_id:
            raise DeliveryError(
                f"no Intercom admin to reply as: set helpdesks.{self.name}.admin_id",
                retryable=False,
            )
        response = self._call(
            "POST",
            REPLY_PATH.format(conversation=quote_id(reply.dialog_id)),
            json={
                "message_type": "comment",
                "type": "admin",
                "admin_id": admin_id,
                "body": text_to_html(reply.text, reply.link),
            },
        )
        conversation = response_json(response)
        if self.options.keep_closed and _state(conversation) != "closed":
            self._close_again(reply.dialog_id, admin_id)
        return SendResult(external_id=_last_part_id(conversation))

    def _close_again(self, dialog_id: str, admin_id: str) -> None:
        """Close the conversation the reply reopened; a failure here must not resend it."""
        try:
            self._call(
                "POST",
                PARTS_PATH.format(conversation=quote_id(dialog_id)),
                json={"message_type": "close", "type": "admin", "admin_id": admin_id},
            )
        except DeliveryError as exc:
            # The survey is out; raising would queue it again. The conversation just stays
            # open in the inbox, which an agent can close by hand.
            logger.warning(
                "intercom.reclose-failed",
                extra={"helpdesk": self.name, "dialog_id": dialog_id, "error": exc.message},
            )

    def fetch_agent(self, agent: Person, context: Mapping[str, Any]) -> Person | None:
        """Name and email of an admin by id; None when Intercom does not know the id."""
        admin_id = agent.id
        if not admin_id:
            return None
        response = unless_not_found(
            lambda: self._call("GET", ADMIN_PATH.format(admin=quote_id(admin_id)), retries=2)
        )
        if response is None:
            return None
        admin = response_json(response)
        if not isinstance(admin, Mapping):
            return None
        return Person(
            id=agent.id, name=as_text(admin.get("name")), email=as_text(admin.get("email"))
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {
            "Authorization": "Bearer " + self.options.access_token.get_secret_value(),
            "Accept": "application/json",
        }
        if self.options.api_version:
            headers["Intercom-Version"] = self.options.api_version
        return self.http.request(
            method,
            self.options.base_url + path,
            headers=headers,
            retry_after_headers=RETRY_AFTER_HEADERS,
            hooks={"response": [_reset_as_delay]},
            **kwargs,
        )


def _reset_as_delay(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """On a 429, expose ``X-RateLimit-Reset`` (Unix seconds) as seconds to wait."""
    reset = response.headers.get("X-RateLimit-Reset")
    if response.status_code == 429 and reset:
        try:
            delay = max(0.0, float(reset) - time.time())
        except ValueError:
            return response
        response.headers[RESET_DELAY_HEADER] = f"{delay:.3f}"
    return response


def _close_part(item: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """The last close part of the conversation and its path in the payload ({} if none)."""
    parts = dig(item, "conversation_parts.conversation_parts")
    if isinstance(parts, list):
        for index in range(len(parts) - 1, -1, -1):
            part = parts[index]
            if isinstance(part, Mapping) and part.get("part_type") == "close":
                return part, f"data.item.conversation_parts.conversation_parts.{index}"
    return {}, ""


def _admin(value: Any, field: str) -> Person | None:
    """An admin reference (at ``field``) as a Person; None for bots, teams, contacts and
    "nobody_admin"."""
    if not isinstance(value, Mapping) or value.get("type") not in ("admin", None):
        return None
    admin_id = _nonzero_id(value.get("id"), f"{field}.id")
    if not admin_id:
        return None
    return Person(id=admin_id, name=as_text(value.get("name")), email=as_text(value.get("email")))


def _customer(item: Mapping[str, Any]) -> Person:
    user = item.get("user")  # 1.x
    if isinstance(user, Mapping):
        return Person(
            id=as_id(user.get("id"), "data.item.user.id"),
            name=as_text(user.get("name")),
            email=as_text(user.get("email")),
        )
    contact_id = as_id(dig(item, "contacts.contacts.0.id"), "data.item.contacts.contacts.0.id")
    author = dig(item, "source.author")
    if isinstance(author, Mapping) and author.get("type") in CUSTOMER_TYPES:
        return Person(
            id=contact_id or as_id(author.get("id"), "data.item.source.author.id"),
            name=as_text(author.get("name")),
            email=as_text(author.get("email")),
        )
    return Person(id=contact_id)


def _nonzero_id(value: Any, field: str) -> str | None:
    text = as_id(value, field)
    return text if text and text != "0" else None


def _state(conversation: Any) -> str | None:
    if not isinstance(conversation, Mapping):
        return None
    state = as_text(conversation.get("state"))
    if state:
        return state.lower()
    if isinstance(conversation.get("open"), bool):
        return "open" if conversation["open"] else "closed"
    return None


def _last_part_id(conversation: Any) -> str | None:
    parts = dig(conversation, "conversation_parts.conversation_parts")
    if isinstance(parts, list) and parts and isinstance(parts[-1], Mapping):
        return as_text(parts[-1].get("id"))
    return None
