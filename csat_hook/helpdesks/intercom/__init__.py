"""Intercom.

* Close: the ``conversation.admin.closed`` topic; reopen: ``conversation.admin.opened`` (an
  admin), or ``conversation.user.replied`` when the customer's reply reopened the closed
  conversation (a part of type ``open``). Every other topic, including the ``ping`` Intercom
  sends when a webhook is saved, is acknowledged and ignored. See
  https://developers.intercom.com/docs/references/webhooks/webhook-models
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
  adapter closes it again through ``POST {base}/conversations/{id}/parts`` — unless the
  answer says ``closed`` (nothing to do) or ``snoozed`` (someone's snooze, which a close
  would drop); ``open``, what our reply reopens to, or a state that cannot be read, is
  closed again, unless a customer's part comes between the last close and our reply (they
  reopened it before our reply went out: closing would hide their message). See
  https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/manageconversation
  A reply found by the look-up after an unknown outcome (below) is closed again the same
  way, when the conversation is ``open`` and nothing but our reply moved it since (no
  customer's part, comment, note or close after ours, nor a customer's part between the last
  close and ours): an answer or a snooze since then is someone's, and closing would hide it.
* Internal note (an alert): the same ``POST …/reply`` with ``message_type: note`` (HTML body);
  a note leaves a closed conversation closed (the API's "Admin Reply with a Note" example),
  so it is never closed again. Found after an unknown outcome among the ``note`` parts.
* Agent lookup: ``GET {base}/admins/{id}`` (2.x items carry only ``admin_assignee_id``).
* Look-up after a timed-out reply: ``GET {base}/conversations/{id}`` answers the conversation
  with its newest 500 parts (no pagination exists), so one request; our part is an admin's
  (or bot's) ``comment`` whose HTML body carries the marker, or the ``open`` part that carries
  it when our reply reopened the conversation. Notes (``part_type: note``) and
  customers' parts never count. See
  https://developers.intercom.com/docs/references/rest-api/api.intercom.io/conversations/retrieveconversation
* Errors: ``{"type": "error.list", "request_id", "errors": [{"code", "message", "field"}]}``.
  See https://developers.intercom.com/docs/references/rest-api/errors/error-objects
* Rate limit: 429 with ``X-RateLimit-Reset`` (a Unix time, 10-second windows), turned into a
  delay. See https://developers.intercom.com/docs/references/rest-api/errors/rate-limiting
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import requests

from csat_hook.errors import BadPayloadError
from csat_hook.errors import DeliveryError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.calls import created_message
from csat_hook.helpdesks.calls import lookup_answer
from csat_hook.helpdesks.calls import lookup_floor
from csat_hook.helpdesks.calls import lookup_marker
from csat_hook.helpdesks.calls import lookup_refused
from csat_hook.helpdesks.calls import quote_id
from csat_hook.helpdesks.calls import response_json
from csat_hook.helpdesks.calls import unless_not_found
from csat_hook.helpdesks.calls import unreadable_listing
from csat_hook.helpdesks.intercom.api import NOTE_PARTS
from csat_hook.helpdesks.intercom.api import REPLY_PARTS
from csat_hook.helpdesks.intercom.api import acted_on_after
from csat_hook.helpdesks.intercom.api import error_items
from csat_hook.helpdesks.intercom.api import find_part
from csat_hook.helpdesks.intercom.api import last_part_id
from csat_hook.helpdesks.intercom.api import reopened_before
from csat_hook.helpdesks.intercom.api import reset_as_delay
from csat_hook.helpdesks.intercom.api import state_of
from csat_hook.helpdesks.intercom.options import ADMIN_PATH
from csat_hook.helpdesks.intercom.options import CLOSE_TOPIC
from csat_hook.helpdesks.intercom.options import CONVERSATION_PATH
from csat_hook.helpdesks.intercom.options import PARTS_PATH
from csat_hook.helpdesks.intercom.options import PING_TOPIC
from csat_hook.helpdesks.intercom.options import REOPEN_TOPIC
from csat_hook.helpdesks.intercom.options import REPLY_PATH
from csat_hook.helpdesks.intercom.options import REPLY_TOPIC
from csat_hook.helpdesks.intercom.options import RETRY_AFTER_HEADERS
from csat_hook.helpdesks.intercom.options import IntercomOptions
from csat_hook.helpdesks.intercom.webhook import admin_of
from csat_hook.helpdesks.intercom.webhook import bot_of
from csat_hook.helpdesks.intercom.webhook import close_part_of
from csat_hook.helpdesks.intercom.webhook import customer_of
from csat_hook.helpdesks.intercom.webhook import nonzero_id
from csat_hook.helpdesks.intercom.webhook import open_part_of
from csat_hook.helpdesks.intercom.webhook import reopened_by_reply
from csat_hook.helpdesks.markup import reply_html
from csat_hook.helpdesks.markup import text_to_html
from csat_hook.helpdesks.payload import as_id
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import dig
from csat_hook.helpdesks.payload import parse_timestamps
from csat_hook.helpdesks.payload import require_id
from csat_hook.helpdesks.payload import require_object
from csat_hook.helpdesks.reasons import explainer
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Event
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.records import shown_name
from csat_hook.helpdesks.signing import SIGNATURE
from csat_hook.helpdesks.signing import PreviousSecret
from csat_hook.helpdesks.signing import hmac_digest
from csat_hook.helpdesks.signing import previous_match
from csat_hook.helpdesks.signing import signature_matches

__all__ = ["IntercomHelpdesk", "IntercomOptions"]

logger = logging.getLogger(__name__)


class IntercomHelpdesk(Helpdesk):
    kind = "intercom"
    supports_lookup = True
    supports_notes = True
    supports_note_lookup = True
    Options = IntercomOptions
    options: IntercomOptions

    def verify(self, request: WebhookRequest) -> PreviousSecret | None:
        signature = request.header("X-Hub-Signature")
        if not signature:
            raise InvalidSignatureError("missing X-Hub-Signature")
        expected = hmac_digest(self.options.client_secret, request.body, "sha1")
        if signature_matches(expected, signature, encoding="hex", prefix="sha1="):
            return None
        previous = previous_match(
            self.options.previous_client_secrets,
            "previous_client_secrets",
            lambda old: signature_matches(
                hmac_digest(old, request.body, "sha1"), signature, encoding="hex", prefix="sha1="
            ),
        )
        if previous is None:
            raise InvalidSignatureError("X-Hub-Signature does not match the body")
        return previous

    def credentials(self) -> list[tuple[str, str | None]]:
        return [(SIGNATURE, "X-Hub-Signature")]

    def parse(self, request: WebhookRequest) -> Event:
        payload = require_object(request.json())
        topic = as_text(payload.get("topic")) or ""
        if topic == CLOSE_TOPIC:
            return self._closed(payload)
        item = dig(payload, "data.item")
        if topic == REOPEN_TOPIC or (
            topic == REPLY_TOPIC and isinstance(item, Mapping) and reopened_by_reply(item)
        ):
            return self._reopened(payload, item if isinstance(item, Mapping) else {})
        if topic == PING_TOPIC:
            return Ignored("ping: Intercom's test notification")
        return Ignored(f"topic {shown_name(topic)} is not a close")

    def _reopened(self, payload: Mapping[str, Any], item: Mapping[str, Any]) -> DialogReopened:
        return DialogReopened(
            self.name,
            require_id(payload, "data.item.id", "conversation id"),
            # As for a close: the reopen part's own time, then the item's last update and the
            # notification's creation.
            reopen_times=parse_timestamps(
                open_part_of(item).get("created_at"),
                item.get("updated_at"),
                payload.get("created_at"),
            ),
        )

    def _closed(self, payload: Mapping[str, Any]) -> Event:
        item = dig(payload, "data.item")
        if not isinstance(item, Mapping):
            raise BadPayloadError("the conversation is missing (data.item)", code="missing_field")
        dialog_id = require_id(payload, "data.item.id", "conversation id")
        close_part, part_path = close_part_of(item)
        if close_part:  # a bot's close part names no admin, and nobody is credited for it
            closer = admin_of(close_part.get("author"), f"{part_path}.author") or Person()
        else:
            closer = Person(
                id=nonzero_id(
                    dig(item, "statistics.last_closed_by_id"),
                    "data.item.statistics.last_closed_by_id",
                )
            )
        # A bot's close credits no one, but its id is still who closed it: a bot listed in
        # ignore_closes_by (Fin, a workflow) was surveyed, crediting the assignee.
        closed_by = closer.id or bot_of(close_part.get("author"), f"{part_path}.author")
        if closed_by and closed_by in self.options.ignore_closes_by:
            return Ignored(f"closed by admin {shown_name(closed_by)}, listed in ignore_closes_by")
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
            customer=customer_of(item),
            team=team,
            channel=as_text(dig(item, "source.type")),
            # The close's own time (2.x statistics, the close part), then, for an item that
            # names neither, its last update and the notification's creation.
            close_times=parse_timestamps(
                dig(item, "statistics.last_close_at"),
                close_part.get("created_at"),
                item.get("updated_at"),
                payload.get("created_at"),
            ),
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
            admin = nonzero_id(item.get("admin_assignee_id"), "data.item.admin_assignee_id")
            return Person(id=admin), team
        assignee = item.get("assignee")  # 1.x: an admin, a team or "nobody_admin"
        if isinstance(assignee, Mapping) and assignee.get("type") == "team":
            name = as_text(assignee.get("name"))
            return Person(), name or self._team(assignee.get("id"), "data.item.assignee.id")
        return admin_of(assignee, "data.item.assignee") or Person(), team

    def _team(self, team_id: Any, field: str) -> str | None:
        text = nonzero_id(team_id, field)
        return self.options.teams.get(text, text) if text else None

    def send_reply(self, reply: Reply) -> SendResult:
        """Post the reply as an admin's comment; with ``keep_closed``, close the conversation
        again when the answer says the reply reopened it (state ``open``; see
        :meth:`find_reply`)."""
        admin_id = self._admin(reply.context, reply.agent.id)
        response = self._call(
            "POST",
            REPLY_PATH.format(conversation=quote_id(reply.dialog_id)),
            json={
                "message_type": "comment",
                "type": "admin",
                "admin_id": admin_id,
                "body": reply_html(reply),
            },
            explain=explainer(error_items, reply),
        )
        conversation = response_json(response)
        result = created_message(response, last_part_id(conversation))
        # Not "snoozed": that is someone's snooze (an admin's reply does not unsnooze), which
        # a close would drop; "closed" needs nothing. An answer whose state cannot be read
        # is taken as our comment's reopening (to "open"), as before. Nor a conversation a
        # customer reopened before our reply (their part since the close): open for them.
        if (
            self.options.keep_closed
            and state_of(conversation) not in ("closed", "snoozed")
            and not reopened_before(conversation, result.external_id)
        ):
            self._close_again(reply.dialog_id, admin_id)
        return result

    def post_note(self, note: Note) -> SendResult:
        """An admin's note (HTML-escaped); it does not reopen the conversation."""
        response = self._call(
            "POST",
            REPLY_PATH.format(conversation=quote_id(note.dialog_id)),
            json={
                "message_type": "note",
                "type": "admin",
                "admin_id": self._admin(note.context, None),
                "body": text_to_html(note.text),
            },
            explain=explainer(error_items, note),
        )
        return created_message(response, last_part_id(response_json(response)))

    def _admin_or_none(self, context: Mapping[str, Any], agent_id: str | None) -> str | None:
        """The admin a reply is posted as: the configured one, the closing one, the agent."""
        return self.options.admin_id or as_text(context.get("admin_id")) or agent_id or None

    def _admin(self, context: Mapping[str, Any], agent_id: str | None) -> str:
        admin_id = self._admin_or_none(context, agent_id)
        if not admin_id:
            raise DeliveryError(
                f"no Intercom admin to post as: set helpdesks.{self.name}.admin_id",
                retryable=False,
            )
        return admin_id

    def find_reply(self, reply: Reply, *, since: datetime) -> SendResult | None:
        """Our comment carrying the marker among the conversation's parts (one request).

        A found reply gets what a posted one gets after its answer: with ``keep_closed``, the
        conversation it reopened is closed again (the earlier attempt's answer, which would
        have said so, was lost), unless someone acted on it since. That close never raises.
        """
        marker = lookup_marker(reply)
        conversation = self._conversation(reply.dialog_id)
        found = find_part(conversation, marker, lookup_floor(since), REPLY_PARTS)
        if (
            found is not None
            and self.options.keep_closed
            # Only "open": our reply reopens to open, so snoozed (or unknown) is not ours.
            and state_of(conversation) == "open"
            and not acted_on_after(conversation, found.external_id)
            and not reopened_before(conversation, found.external_id)
        ):
            admin_id = self._admin_or_none(reply.context, reply.agent.id)
            if admin_id:  # always, for a reply this adapter posted (send_reply needs one)
                self._close_again(reply.dialog_id, admin_id)
        return found

    def find_note(self, note: Note, *, since: datetime) -> SendResult | None:
        """Our note carrying the alert's reference among the conversation's parts."""
        marker = lookup_marker(note)
        conversation = self._conversation(note.dialog_id)
        return find_part(conversation, marker, lookup_floor(since), NOTE_PARTS)

    def _conversation(self, dialog_id: str) -> Any:
        """The conversation with its newest parts, for a look-up; raises DeliveryError as
        :meth:`find_reply` does (refusals worded, an unreadable answer retryable)."""
        try:
            response = self._call(
                "GET",
                CONVERSATION_PATH.format(conversation=quote_id(dialog_id)),
                retries=2,
                explain=explainer(error_items),
            )
        except DeliveryError as exc:
            raise lookup_refused(
                exc,
                "Intercom",
                credentials=f"helpdesks.{self.name}.access_token needs the permission to "
                "read conversations",
            ) from exc
        conversation = lookup_answer(response, "Intercom")
        if not isinstance(dig(conversation, "conversation_parts.conversation_parts"), list):
            # Intercom always sends the parts' list (empty when there are none).
            raise unreadable_listing("Intercom", "conversation_parts")
        return conversation

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
            hooks={"response": [reset_as_delay]},
            **kwargs,
        )
