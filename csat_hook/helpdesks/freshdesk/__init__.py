"""Freshdesk.

* Close: Freshdesk has no webhook subscriptions. An automation rule on ticket updates ("Status
  is changed to Resolved/Closed") runs the "Trigger webhook" action with the JSON body we
  document (examples/freshdesk-automation-body.json, docs/helpdesks/freshdesk.md).
  ``{{triggered_event}}`` renders as ``{status:{from:2,to:4}}`` (not JSON); status codes are
  2 Open, 3 Pending, 4 Resolved, 5 Closed, 6+ custom. Written as JSON (an object, or text
  with quotes) it reads the same (``webhook.triggered_event``). ``{{ticket.status}}`` renders
  the status name. A close is a change to 4/5 (or, without the event, the name
  Resolved/Closed); a reopen a change from 4/5 to anything else; Resolved → Closed is the same
  close, surveyed already.
  Placeholders: https://support.freshdesk.com/support/solutions/articles/132589-using-webhooks-in-automation-rules
* Authentication: Freshdesk signs nothing. The rule sends either a custom header holding a
  shared secret, or Basic auth ("Requires authentication"); both are compared in constant time.
* Dedup: Freshdesk retries a failed webhook after 5, 30 and 60 minutes with the same body, so
  the rendered ``{{triggered_event}}`` is the close's occurrence. It names no time, so a later
  close with the same status change has it too: the close says its occurrence repeats.
  https://support.freshdesk.com/support/solutions/articles/11000000028141-receiving-webhook-failure-emails
* Reply: ``POST {base}/api/v2/tickets/{id}/reply`` with ``{"body": "<p>…</p>"}`` (HTML), Basic
  auth ``API_KEY:X``; 429 carries ``Retry-After`` (seconds). Under ``policy.cancel_on_reopen``
  the ticket is read right before it (``GET {base}/api/v2/tickets/{id}``, ``status``): Open (2)
  or Pending (3) again was reopened since the close, its reopen's webhook not seen (a reopen
  rule not set up, or its webhook deferred; or a late redelivery of the close, past the two
  hours its body is known as a retry, re-armed the survey a reopen cancelled): nothing is
  posted (``DialogReopenedError``, the reply cancelled). A custom status (6 and up) is not
  judged: it may be one the account closes with. The reply takes no status, so without
  ``cancel_on_reopen`` it is posted unread: it changes none.
  https://developers.freshdesk.com/api/#reply_ticket, https://developers.freshdesk.com/api/#view_a_ticket,
  https://developers.freshdesk.com/api/#ratelimit
* Look-up after a timed-out reply: ``GET {base}/api/v2/tickets/{id}/conversations`` lists a
  ticket's replies and notes oldest first (no sort parameter), ``per_page`` at most 100; the
  ``link`` header names the next page. The newest page cannot be addressed, so pages are
  walked from the first, at most :data:`~csat_hook.helpdesks.freshdesk.api.LOOKUP_PAGES`
  (1000 conversations; a page answered again is a retryable error, never read on to the
  cap); our reply is an outgoing, public agent reply (``incoming`` false,
  ``private`` false, ``source`` 0) whose ``body`` or ``body_text`` carries the marker.
  https://developers.freshdesk.com/api/#list_all_ticket_notes, https://developers.freshdesk.com/api/#pagination
* Internal note (an alert): ``POST {base}/api/v2/tickets/{id}/notes`` with ``{"body": "<p>…</p>",
  "private": true}`` (no ``notify_emails``: nobody is e-mailed); 201 with the note. Found after
  an unknown outcome like a reply, among the private notes (``source`` 2).
  https://developers.freshdesk.com/api/#add_note_to_a_ticket
* Errors: ``{"description": "Validation failed", "errors": [{"field", "message", "code"}]}``,
  or ``{"code", "message"}`` (authentication, access). https://developers.freshdesk.com/api/#error
* Agent: ``GET {base}/api/v2/agents/{id}`` (``contact.name``, ``contact.email``) when the body
  has only an id. https://developers.freshdesk.com/api/#view_agent
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from csat_hook.errors import DeliveryError
from csat_hook.errors import DialogReopenedError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.calls import created_message
from csat_hook.helpdesks.calls import lookup_answer
from csat_hook.helpdesks.calls import lookup_floor
from csat_hook.helpdesks.calls import lookup_marker
from csat_hook.helpdesks.calls import lookup_refused
from csat_hook.helpdesks.calls import quote_id
from csat_hook.helpdesks.calls import response_json
from csat_hook.helpdesks.calls import status_before_write
from csat_hook.helpdesks.calls import status_unread
from csat_hook.helpdesks.calls import unless_not_found
from csat_hook.helpdesks.calls import unreadable_listing
from csat_hook.helpdesks.freshdesk.api import LOOKUP_PAGES
from csat_hook.helpdesks.freshdesk.api import PAGE_SIZE
from csat_hook.helpdesks.freshdesk.api import error_items
from csat_hook.helpdesks.freshdesk.api import explained
from csat_hook.helpdesks.freshdesk.api import find_conversation
from csat_hook.helpdesks.freshdesk.api import reply_html
from csat_hook.helpdesks.freshdesk.options import AGENT_PATH
from csat_hook.helpdesks.freshdesk.options import CLOSED_CODES
from csat_hook.helpdesks.freshdesk.options import CONVERSATIONS_PATH
from csat_hook.helpdesks.freshdesk.options import NOTES_PATH
from csat_hook.helpdesks.freshdesk.options import OPEN_CODES
from csat_hook.helpdesks.freshdesk.options import REPLY_PATH
from csat_hook.helpdesks.freshdesk.options import STATUS_CHANGE
from csat_hook.helpdesks.freshdesk.options import STATUS_NAMES
from csat_hook.helpdesks.freshdesk.options import TICKET_PATH
from csat_hook.helpdesks.freshdesk.options import FreshdeskOptions
from csat_hook.helpdesks.freshdesk.webhook import compact
from csat_hook.helpdesks.freshdesk.webhook import person_of
from csat_hook.helpdesks.freshdesk.webhook import triggered_event
from csat_hook.helpdesks.markup import body_to_html
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import dig
from csat_hook.helpdesks.payload import require_id
from csat_hook.helpdesks.payload import require_object
from csat_hook.helpdesks.placeholders import rendered
from csat_hook.helpdesks.placeholders import rendered_json
from csat_hook.helpdesks.placeholders import unrendered
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
from csat_hook.helpdesks.signing import BASIC
from csat_hook.helpdesks.signing import TOKEN
from csat_hook.helpdesks.signing import PreviousSecret
from csat_hook.helpdesks.signing import previous_match
from csat_hook.helpdesks.signing import shared_token_matches
from csat_hook.links.body import has_scale

__all__ = ["FreshdeskHelpdesk", "FreshdeskOptions", "reply_html"]


class FreshdeskHelpdesk(Helpdesk):
    kind = "freshdesk"
    supports_lookup = True
    supports_notes = True
    supports_note_lookup = True
    Options = FreshdeskOptions
    options: FreshdeskOptions

    # --- webhooks ---------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> PreviousSecret | None:
        options = self.options
        token, header = options.webhook_token, options.webhook_token_header
        if token is not None and shared_token_matches(request, token, header=header, query=None):
            return None
        password = options.webhook_password
        if password is not None and self._basic_matches(request, password):
            return None
        previous = previous_match(
            options.previous_webhook_tokens,
            "previous_webhook_tokens",
            lambda old: shared_token_matches(request, old, header=header, query=None),
        ) or previous_match(
            options.previous_webhook_passwords,
            "previous_webhook_passwords",
            lambda old: self._basic_matches(request, old),
        )
        if previous is None:
            raise InvalidSignatureError("missing or wrong webhook credentials")
        return previous

    def credentials(self) -> list[tuple[str, str | None]]:
        options = self.options
        accepted: list[tuple[str, str | None]] = []
        if options.webhook_token is not None:
            accepted.append((TOKEN, options.webhook_token_header))
        if options.webhook_password is not None:
            accepted.append((BASIC, None))
        return accepted or super().credentials()

    def _basic_matches(self, request: WebhookRequest, password: SecretStr) -> bool:
        """Whether the request's Basic credentials are ``webhook_username`` and ``password``
        (the current one or a previous one), compared in constant time."""
        assert self.options.webhook_username is not None
        header = request.header("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{self.options.webhook_username}:{password.get_secret_value()}".encode()
        return hmac.compare_digest(expected, given)

    def parse(self, request: WebhookRequest) -> Event:
        payload = require_object(rendered_json(request, self.name))
        ticket = payload.get("ticket")
        if not isinstance(ticket, Mapping):
            return Ignored(
                "not the csat-hook automation body (no ticket object)", misconfigured=True
            )
        if unrendered(ticket.get("id")):
            return Ignored(
                "the automation body's placeholders were not rendered", misconfigured=True
            )
        event = triggered_event(payload.get("triggered_event"), limit=500)
        status = rendered(ticket.get("status"))
        if event is None and status is None:
            # Nothing here can say a close (the id rendered, so the body is no unrendered
            # test): every close of the rule would be lost unseen.
            return Ignored(
                "neither {{triggered_event}} nor {{ticket.status}} rendered in the automation "
                "body: nothing says a close",
                misconfigured=True,
            )
        change = STATUS_CHANGE.search(event) if event else None
        if change:
            before, after = change.group(1), change.group(2)
            if self._closed(after) and self._closed(before):
                return Ignored(
                    f"status {self._shown(before)} → {self._shown(after)}: "
                    "the ticket was already resolved"
                )
            if self._closed(after):
                return self._close(payload, ticket, occurrence=compact(event or ""))
            if self._closed(before):
                return DialogReopened(self.name, require_id(payload, "ticket.id", "ticket id"))
            return Ignored(f"status {self._shown(before)} → {self._shown(after)} is not a close")
        if event:
            return Ignored(f"{shown_name(event.strip())} is not a status change")
        if self._closed(status):
            # No {{triggered_event}} in the body: the status name is all there is.
            return self._close(payload, ticket, occurrence=f"status:{(status or '').lower()}")
        return Ignored(f"status {self._shown(status)!r} is not a close")

    def _shown(self, status: str | None) -> str:
        """A status as an ignored reason shows it: Freshdesk's own names and the configured
        ``closed_statuses`` by name (as spelt there, whatever the case or spacing sent),
        anything else only if it looks like a name (:func:`shown_name`): sender text."""
        spelt = " ".join((status or "").split()).casefold()
        for name in (*STATUS_NAMES, *self.options.closed_statuses):
            if spelt and " ".join(name.split()).casefold() == spelt:
                return name
        return shown_name(status)

    def _closed(self, status: str | None) -> bool:
        if not status:
            return False
        names = {name.lower() for name in self.options.closed_statuses}
        return status in CLOSED_CODES or status.lower() in names

    def _close(
        self, payload: Mapping[str, Any], ticket: Mapping[str, Any], *, occurrence: str
    ) -> DialogClosed:
        return DialogClosed(
            helpdesk=self.name,
            dialog_id=require_id(payload, "ticket.id", "ticket id"),
            agent=person_of(ticket.get("agent"), "ticket.agent"),
            customer=person_of(ticket.get("requester"), "ticket.requester"),
            team=rendered(ticket.get("group")),
            channel=rendered(ticket.get("source")),
            occurrence=occurrence,
            # Both occurrences ({{triggered_event}}, else the status name) come from the status
            # alone: a genuine re-close after a reopen ("Open → Resolved" again) carries the
            # same one as the close it follows, so it may re-arm that close's survey.
            occurrence_repeats=True,
        )

    # --- the API ----------------------------------------------------------------------------

    def send_reply(self, reply: Reply) -> SendResult:
        """Post ``reply.text`` as a public reply, HTML-escaped with the survey link clickable
        (or the scale of score links as anchors)."""
        body = body_to_html(reply.body) if has_scale(reply.body) else None
        try:
            if reply.cancel_on_reopen:
                self._require_not_reopened(reply.dialog_id)
            response = self.http.request(
                "POST",
                self._url(REPLY_PATH, ticket=reply.dialog_id),
                headers=self._auth_headers(),
                json={"body": body or reply_html(reply.text, reply.link)},
                explain=explainer(error_items, reply),
            )
        except DialogReopenedError:
            raise
        except DeliveryError as exc:
            raise explained(exc) from exc
        body = response_json(response)
        return created_message(
            response, as_text(body.get("id")) if isinstance(body, dict) else None
        )

    def _require_not_reopened(self, ticket: str) -> None:
        """Raise DialogReopenedError when the ticket, read now, is Open or Pending again (see
        the module docstring). A read refused for good or an answer that names no status
        tells nothing: the reply goes, as it went before it read the ticket
        (:func:`~csat_hook.helpdesks.calls.status_before_write`)."""
        response = status_before_write(
            self.name,
            lambda: self.http.request(
                "GET",
                self._url(TICKET_PATH, ticket=ticket),
                retries=2,
                headers=self._auth_headers(),
                explain=explainer(error_items),
            ),
        )
        if response is None:
            return
        answer = response_json(response)
        status = answer.get("status") if isinstance(answer, Mapping) else None
        if not isinstance(status, int) or isinstance(status, bool):
            status_unread(self.name)
            return
        if status in OPEN_CODES:
            raise DialogReopenedError(
                f"Freshdesk: the ticket is {OPEN_CODES[status]} again since it was resolved; "
                "not posted"
            )

    def post_note(self, note: Note) -> SendResult:
        """A private note (HTML-escaped), e-mailing nobody."""
        try:
            response = self.http.request(
                "POST",
                self._url(NOTES_PATH, ticket=note.dialog_id),
                headers=self._auth_headers(),
                json={"body": reply_html(note.text, ""), "private": True},
                explain=explainer(error_items, note),
            )
        except DeliveryError as exc:
            raise explained(exc) from exc
        body = response_json(response)
        return created_message(
            response, as_text(body.get("id")) if isinstance(body, dict) else None
        )

    def find_reply(self, reply: Reply, *, since: datetime) -> SendResult | None:
        """Our public reply carrying the marker, walking the pages (see the module docstring)."""
        return self._find(reply.dialog_id, lookup_marker(reply), since, note=False)

    def find_note(self, note: Note, *, since: datetime) -> SendResult | None:
        """Our private note carrying the alert's reference, walking the pages."""
        return self._find(note.dialog_id, lookup_marker(note), since, note=True)

    def _find(self, ticket: str, marker: str, since: datetime, *, note: bool) -> SendResult | None:
        floor = lookup_floor(since)
        url = self._url(CONVERSATIONS_PATH, ticket=ticket)
        read: set[tuple[str, ...]] = set()  # each page's conversation ids
        for number in range(1, LOOKUP_PAGES + 1):
            try:
                response = self.http.request(
                    "GET",
                    url,
                    retries=2,
                    headers=self._auth_headers(),
                    params={"page": number, "per_page": PAGE_SIZE},
                    explain=explainer(error_items),
                )
            except DeliveryError as exc:
                raise lookup_refused(
                    exc,
                    "Freshdesk",
                    what="ticket",
                    credentials=f"helpdesks.{self.name}.api_key must belong to an agent who "
                    "can see the ticket",
                ) from exc
            conversations = lookup_answer(response, "Freshdesk")
            if not isinstance(conversations, list):
                raise unreadable_listing("Freshdesk", "conversation")
            found = find_conversation(conversations, marker, floor, note=note)
            if found is not None:
                return found
            if "next" not in response.links and len(conversations) < PAGE_SIZE:
                return None
            ids = tuple(str(c.get("id")) for c in conversations if isinstance(c, Mapping))
            if ids in read:
                # `page` ignored: walking on would read it to the cap, give up, and the reply
                # would be posted again.
                raise DeliveryError(
                    "Freshdesk: the look-up answered the same page again (?page= ignored); "
                    "asked again later",
                    retryable=True,
                )
            read.add(ids)
        raise DeliveryError(
            f"Freshdesk: the ticket has more than {LOOKUP_PAGES * PAGE_SIZE} conversations; "
            "not searched further",
            retryable=False,
        )

    def fetch_agent(self, agent: Person, context: Mapping[str, Any]) -> Person | None:
        """Name and email of a Freshdesk agent by id; None when there is no such agent."""
        agent_id = agent.id
        if not agent_id:
            return None
        response = unless_not_found(
            lambda: self.http.request(
                "GET",
                self._url(AGENT_PATH, agent=agent_id),
                headers=self._auth_headers(),
                retries=2,
            )
        )
        if response is None:
            return None
        contact = dig(response_json(response), "contact")
        if not isinstance(contact, Mapping):
            return None
        return Person(
            id=agent.id, name=as_text(contact.get("name")), email=as_text(contact.get("email"))
        )

    def _url(self, path: str, **ids: str) -> str:
        quoted = {key: quote_id(value) for key, value in ids.items()}
        return f"{self.options.base_url}{path.format(**quoted)}"

    def _auth_headers(self) -> dict[str, str]:
        # Freshdesk API keys go as the Basic username with any password; "X" by convention.
        raw = f"{self.options.api_key.get_secret_value()}:X".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
