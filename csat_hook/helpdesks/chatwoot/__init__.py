"""Chatwoot (cloud and self-hosted).

* Close: the ``conversation_status_changed`` event with ``status == "resolved"`` (also the
  older ``conversation_resolved``). Reopen: a status change away from ``resolved`` (or
  ``conversation_opened``): to ``open``, or to ``pending`` when a customer writes into a
  resolved conversation of an inbox with an active bot (``Message#reopen_resolved_conversation``);
  installs from before ``changed_attributes`` (``null`` there) do not say what the status was,
  and any change to another status is taken as leaving ``resolved`` (see
  :func:`~csat_hook.helpdesks.chatwoot.api.left_resolved`).
  See https://www.chatwoot.com/docs/product/others/webhook-events
* Signing (v4.11.2+): ``X-Chatwoot-Signature: sha256=<hex HMAC-SHA256(secret,
  "{X-Chatwoot-Timestamp}.{raw body}")>``, the secret being the webhook's own. Older installs
  sign nothing: configure ``webhook_token`` and put ``?token=...`` in the webhook URL.
* Reply: ``POST {base}/api/v1/accounts/{account}/conversations/{id}/messages`` with header
  ``api_access_token``. See
  https://developers.chatwoot.com/api-reference/messages/create-new-message
  In a web-widget or e-mail conversation the reply is Markdown (``markup.reply_for_channel``):
  the widget renders it with markdown-it and ``linkify``, so its text is escaped like a note's
  and an agent's or a customer's name (``evil.com``, ``a@evil.com``, ``[click](http://x)``)
  is never a link; the survey link is an autolink ``<url>``. Other channels get plain text.
* Agent email: not in webhooks; ``GET /api/v1/accounts/{account}/agents`` lists them, for any
  user's token (``UserPolicy#index?``) but not an agent bot's: like the message list below,
  it asks with ``lookup_access_token`` when one is set.
* Look-up after a timed-out reply: ``GET …/messages`` answers the latest 20 messages (oldest
  first within the page), ``?before=<id>`` the 20 before that id (``MessageFinder``; see
  https://github.com/chatwoot/chatwoot/issues/9488). Pages are read newest first until one
  reaches ``since`` (less the skew), at most :data:`LOOKUP_PAGES`; a page that does not go
  back (``before`` ignored) is a retryable error, never the end of the search. Agent-bot
  tokens may only post messages (``AccessTokenAuthHelper::BOT_ACCESSIBLE_ENDPOINTS``): listing
  answers 401, so the look-up needs a user's token (``lookup_access_token``, else
  ``api_access_token``).
  https://developers.chatwoot.com/api-reference/messages/get-messages
* Internal note (an alert): the same ``POST …/messages`` with ``"private": true``; a note never
  reopens a resolved conversation (``Message#reopen_conversation`` acts on incoming messages
  only) and bot tokens may post it. Found after an unknown outcome like a reply, among the
  private outgoing messages. The dashboard renders every message, private notes too, as
  Markdown (``MessageFormatter.js``: markdown-it, ``html: false``, ``breaks``, ``linkify``,
  ``typographer``), so the note's text is escaped (``markup.text_to_markdown``): a
  comment's ``[text](url)``, ``![x](img)``, ``**bold**`` or bare URL shows as written. The
  alert's ref is left as it is, to be found.
* Errors: ``{"error": "…"}``, ``{"message": "…", "attributes": [...]}`` (a record invalid) or
  Devise's ``{"errors": ["…"]}`` (``RequestExceptionHandler``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

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
from csat_hook.helpdesks.calls import unreadable_listing
from csat_hook.helpdesks.chatwoot.api import created
from csat_hook.helpdesks.chatwoot.api import error_items
from csat_hook.helpdesks.chatwoot.api import is_message
from csat_hook.helpdesks.chatwoot.api import is_ours
from csat_hook.helpdesks.chatwoot.api import left_resolved
from csat_hook.helpdesks.chatwoot.api import message_id
from csat_hook.helpdesks.chatwoot.options import AGENTS_PATH
from csat_hook.helpdesks.chatwoot.options import CLOSE_EVENTS
from csat_hook.helpdesks.chatwoot.options import LOOKUP_PAGES
from csat_hook.helpdesks.chatwoot.options import MESSAGES_PATH
from csat_hook.helpdesks.chatwoot.options import PAGE_SIZE
from csat_hook.helpdesks.chatwoot.options import REOPEN_EVENTS
from csat_hook.helpdesks.chatwoot.options import ChatwootOptions
from csat_hook.helpdesks.markup import reply_for_channel
from csat_hook.helpdesks.markup import text_to_markdown
from csat_hook.helpdesks.payload import as_id
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import dig
from csat_hook.helpdesks.payload import parse_timestamp
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
from csat_hook.helpdesks.signing import TOKEN
from csat_hook.helpdesks.signing import PreviousSecret
from csat_hook.helpdesks.signing import hmac_digest
from csat_hook.helpdesks.signing import previous_match
from csat_hook.helpdesks.signing import require_fresh
from csat_hook.helpdesks.signing import shared_token_matches
from csat_hook.helpdesks.signing import signature_matches

__all__ = ["ChatwootHelpdesk", "ChatwootOptions", "error_items"]


class ChatwootHelpdesk(Helpdesk):
    kind = "chatwoot"
    supports_lookup = True
    supports_notes = True
    supports_note_lookup = True
    Options = ChatwootOptions
    options: ChatwootOptions

    def verify(self, request: WebhookRequest) -> PreviousSecret | None:
        signature = request.header("X-Chatwoot-Signature")
        options = self.options
        secret = options.webhook_secret
        if secret is not None and signature:
            timestamp = request.header("X-Chatwoot-Timestamp") or ""
            require_fresh(parse_timestamp(timestamp), self.clock(), options.tolerance_seconds)
            signed = timestamp.encode("ascii", "replace") + b"." + request.body
            expected = hmac_digest(secret, signed)
            if signature_matches(expected, signature, encoding="hex", prefix="sha256="):
                return None
            previous = previous_match(
                options.previous_webhook_secrets,
                "previous_webhook_secrets",
                lambda old: signature_matches(
                    hmac_digest(old, signed), signature, encoding="hex", prefix="sha256="
                ),
            )
            if previous is None:
                raise InvalidSignatureError("X-Chatwoot-Signature does not match the body")
            return previous
        token = options.webhook_token
        if token is not None:
            if shared_token_matches(request, token, header="X-Webhook-Token", query="token"):
                return None
            previous = previous_match(
                options.previous_webhook_tokens,
                "previous_webhook_tokens",
                lambda old: shared_token_matches(
                    request, old, header="X-Webhook-Token", query="token"
                ),
            )
            if previous is not None:
                return previous
        if secret is not None:
            raise InvalidSignatureError("missing X-Chatwoot-Signature")
        raise InvalidSignatureError("missing or wrong webhook token")

    def credentials(self) -> list[tuple[str, str | None]]:
        accepted: list[tuple[str, str | None]] = []
        if self.options.webhook_secret is not None:
            accepted.append((SIGNATURE, "X-Chatwoot-Signature"))
        if self.options.webhook_token is not None:
            accepted.append((TOKEN, "X-Webhook-Token"))  # or ?token=
        return accepted or super().credentials()

    def proof_headers(self) -> list[str]:
        # The credentials' headers, and the timestamp the signature covers.
        signed = ["X-Chatwoot-Timestamp"] if self.options.webhook_secret is not None else []
        return [*super().proof_headers(), *signed]

    def parse(self, request: WebhookRequest) -> Event:
        payload = require_object(request.json())
        event = as_text(payload.get("event")) or ""
        status = (as_text(payload.get("status")) or "").lower()
        if event in CLOSE_EVENTS and (status == "resolved" or event == "conversation_resolved"):
            return self._closed(payload, request)
        if event in REOPEN_EVENTS or (
            event == "conversation_status_changed" and status and left_resolved(payload)
        ):
            return DialogReopened(
                self.name,
                require_id(payload, "id", "conversation id"),
                # The conversation's last update: the reopen's. Not its last activity
                # (``timestamp``), which a close falls back on: an agent's reopen is no
                # activity, so that time may be before the close the reopen followed.
                reopen_times=parse_timestamps(payload.get("updated_at")),
            )
        named = shown_name(event, missing="unnamed event")
        return Ignored(f"{named} ({shown_name(status, missing='no status')}) is not a close")

    def _closed(self, payload: Mapping[str, Any], request: WebhookRequest) -> DialogClosed:
        assignee = dig(payload, "meta.assignee") or {}
        is_bot = (as_text(dig(payload, "meta.assignee_type")) or "").lower() == "agentbot"
        agent = (
            Person()
            if is_bot or not isinstance(assignee, Mapping)
            else Person(
                id=as_id(assignee.get("id"), "meta.assignee.id"),
                name=as_text(assignee.get("available_name")) or as_text(assignee.get("name")),
                email=as_text(assignee.get("email")),
            )
        )
        sender = dig(payload, "meta.sender") or {}
        account = (
            as_id(payload.get("account_id"), "account_id")
            or as_id(dig(payload, "account.id"), "account.id")
            or as_id(dig(payload, "messages.0.account_id"), "messages.0.account_id")
        )
        updated = payload.get("updated_at")
        return DialogClosed(
            helpdesk=self.name,
            dialog_id=require_id(payload, "id", "conversation id"),
            agent=agent,
            customer=Person(
                id=as_id(sender.get("id"), "meta.sender.id")
                if isinstance(sender, Mapping)
                else None,
                name=as_text(sender.get("name")) if isinstance(sender, Mapping) else None,
                email=as_text(sender.get("email")) if isinstance(sender, Mapping) else None,
            ),
            team=as_text(dig(payload, "meta.team.name")),
            channel=as_text(payload.get("channel")),
            language=as_text(dig(payload, "additional_attributes.browser_language")),
            # No field names the close itself: the conversation's last update (the resolve's),
            # else its last activity (``timestamp``, Chatwoot's ``last_activity_at``).
            close_times=parse_timestamps(updated, payload.get("timestamp")),
            occurrence=as_text(updated)
            or request.header("X-Chatwoot-Delivery")
            or as_text(payload.get("timestamp")),
            reply_context={"account_id": account} if account else {},
        )

    def _account(self, context: Mapping[str, Any]) -> str:
        account = context.get("account_id") or self.options.account_id
        if not account:
            raise DeliveryError(
                f"the Chatwoot account id is unknown: set helpdesks.{self.name}.account_id",
                retryable=False,
            )
        return str(account)

    def send_reply(self, reply: Reply) -> SendResult:
        # Markdown where the channel renders it (web widget, e-mail), else plain text.
        text = reply_for_channel(reply)
        return self._post(reply.context, reply.dialog_id, text, private=False, sent=reply)

    def post_note(self, note: Note) -> SendResult:
        """A private message: seen by agents only, and it does not reopen the conversation.
        Its plain text is escaped into Markdown, which Chatwoot renders every message as: the
        customer's comment shows as written, never as a link, an image or formatting."""
        text = text_to_markdown(note.text)
        return self._post(note.context, note.dialog_id, text, private=True, sent=note)

    def _post(
        self,
        context: Mapping[str, Any],
        conversation: str,
        text: str,
        *,
        private: bool,
        sent: Reply | Note,
    ) -> SendResult:
        url = self.options.base_url + MESSAGES_PATH.format(
            account=quote_id(self._account(context)), conversation=quote_id(conversation)
        )
        response = self.http.request(
            "POST",
            url,
            headers={"api_access_token": self.options.api_access_token.get_secret_value()},
            json={
                "content": text,
                "message_type": "outgoing",
                "private": private,
                "content_type": "text",
            },
            explain=explainer(error_items, sent),
        )
        body = response_json(response)
        return created_message(
            response, as_text(body.get("id")) if isinstance(body, dict) else None
        )

    def find_reply(self, reply: Reply, *, since: datetime) -> SendResult | None:
        """Our outgoing public message carrying the marker, newest pages first (see module)."""
        return self._find(reply.context, reply.dialog_id, lookup_marker(reply), since, False)

    def find_note(self, note: Note, *, since: datetime) -> SendResult | None:
        """Our private message (note) carrying the alert's reference, newest pages first."""
        return self._find(note.context, note.dialog_id, lookup_marker(note), since, True)

    def _find(
        self,
        context: Mapping[str, Any],
        conversation: str,
        marker: str,
        since: datetime,
        private: bool,
    ) -> SendResult | None:
        floor = lookup_floor(since).timestamp()
        url = self.options.base_url + MESSAGES_PATH.format(
            account=quote_id(self._account(context)), conversation=quote_id(conversation)
        )
        token = self.options.lookup_access_token or self.options.api_access_token
        before: int | None = None
        for _ in range(LOOKUP_PAGES):
            try:
                response = self.http.request(
                    "GET",
                    url,
                    retries=2,
                    headers={"api_access_token": token.get_secret_value()},
                    params={"before": before} if before is not None else None,
                    explain=explainer(error_items),
                )
            except DeliveryError as exc:
                raise lookup_refused(
                    exc,
                    "Chatwoot",
                    credentials="listing needs a user's access token (agent-bot tokens may "
                    f"only post): set helpdesks.{self.name}.lookup_access_token",
                ) from exc
            listed = dig(lookup_answer(response, "Chatwoot"), "payload")
            if not isinstance(listed, list):
                raise unreadable_listing("Chatwoot", "payload")
            page = [m for m in listed if is_message(m)]
            for message in sorted(page, key=message_id, reverse=True):
                if is_ours(message, marker, floor, private=private):
                    return SendResult(external_id=as_text(message.get("id")))
            oldest = min((created(m) for m in page), default=None)
            if len(page) < PAGE_SIZE or oldest is None or oldest < floor:
                return None
            oldest_id = min(message_id(m) for m in page)
            if before is not None and oldest_id >= before:
                # The answer ignored `before` (not in the API reference): reading on would
                # see the same page and give up, and the reply would be posted again.
                raise DeliveryError(
                    "Chatwoot: the look-up answer did not page back (?before= ignored); "
                    "asked again later",
                    retryable=True,
                )
            before = oldest_id
        raise DeliveryError(
            f"Chatwoot: {LOOKUP_PAGES * PAGE_SIZE} messages posted since it was sent; "
            "not searched further",
            retryable=False,
        )

    def fetch_agent(self, agent: Person, context: Mapping[str, Any]) -> Person | None:
        url = self.options.base_url + AGENTS_PATH.format(account=quote_id(self._account(context)))
        token = self.options.lookup_access_token or self.options.api_access_token
        try:
            response = self.http.request(
                "GET", url, retries=2, headers={"api_access_token": token.get_secret_value()}
            )
        except DeliveryError as exc:
            if exc.http_status in (401, 403):
                raise exc.reworded(
                    f"Chatwoot refused to list the agents (HTTP {exc.http_status}): an agent "
                    f"bot's token may not; set helpdesks.{self.name}.lookup_access_token to a "
                    "user's token, or give e-mails in agents:",
                    retryable=False,
                ) from exc
            raise
        rows = response_json(response)
        if not isinstance(rows, list):
            # Not the API's array (a proxy's answer): no one found, as an unreadable answer
            # is for the other adapters; iterating a number raised TypeError.
            return None
        for row in rows:
            if isinstance(row, Mapping) and as_text(row.get("id")) == agent.id:
                return Person(
                    id=agent.id,
                    name=as_text(row.get("available_name")) or as_text(row.get("name")),
                    email=as_text(row.get("email")),
                )
        return None
