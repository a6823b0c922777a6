"""Zendesk Support.

* Close, two webhook shapes told apart by their keys (docs/helpdesks/zendesk.md):

  - an event subscription to ``zen:event-type:ticket.status_changed``: Zendesk's own envelope
    ``{"type", "id", "time", "detail": {...ticket...}, "event": {"current", "previous"}}``.
    Statuses are upper-case, ``detail.id`` is a string, people are ids only. A close is
    ``event.current`` SOLVED or CLOSED; a reopen is a change away from them. The event ``id``
    (a UUID, the same on every retry) is the close's occurrence. A change to CLOSED from
    anything but SOLVED (a merge closes the merged ticket; an API call or automation may
    close one) is recorded skipped, ``ticket_closed``: a closed ticket takes no reply.
    https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/
  - a trigger's "Notify active webhook" action with the body we document
    (examples/zendesk-trigger-body.json): ``{"ticket": {...}}`` from placeholders;
    ``{{ticket.status}}`` renders display text ("Solved"), compared case-insensitively;
    "Closed" is skipped like the event's CLOSED. The rendered
    ``{{ticket.updated_at_with_timestamp}}`` is the occurrence.
    https://developer.zendesk.com/documentation/webhooks/anatomy-of-a-webhook-request/

* Signing: ``X-Zendesk-Webhook-Signature = base64(HMAC-SHA256(secret, timestamp + body))`` with
  ``X-Zendesk-Webhook-Signature-Timestamp`` (ISO 8601), no separator; the key is the signing
  secret's text as UTF-8. Deliveries tested before a webhook exists are signed with a public
  test secret: they are answered 200 and ignored, never parsed into a survey.
  https://developer.zendesk.com/documentation/webhooks/verifying/
* Reply: ``PUT {base}/api/v2/tickets/{id}.json`` with a public comment and ``status: solved``
  so the ticket stays solved (``keep_solved``). That status is sent only to a ticket still
  solved: the ticket is read first (``GET`` the same path, ``ticket.status`` and
  ``ticket.updated_at``), and the update is a safe one (``safe_update: true`` with that
  ``updated_stamp``), which Zendesk refuses with 409 when the ticket changed after the read
  (retried later, read again). A ticket new, open, pending or on hold again was reopened since
  the close (the customer answered, an agent reopened it) and its reopen's webhook not seen:
  nothing is posted (``DialogReopenedError``, the reply cancelled) under
  ``policy.cancel_on_reopen``, else the comment is posted without a status. A closed ticket
  cannot be updated: Zendesk answers 422. The
  comment is always ``html_body`` (escaped text, the survey link or score links anchors),
  never ``body``, which Zendesk renders as Markdown: a name like ``[click](url)`` stays text.
  https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket
* Internal note (an alert): the same ``PUT`` with ``"public": false`` and no status at all (a
  status would re-solve a ticket the customer reopened); Zendesk's standard notifications skip
  private comments, so the requester is not told. A closed ticket answers 422 (final). The
  note is ``html_body`` (its text escaped), not ``body``: "Markdown formatting is supported in
  body but not in html_body", so a customer's ``[text](url)`` or ``![x](img)`` stays text.
  https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/#bodies
* Agent: ``GET {base}/api/v2/users/{id}.json`` (``user.name``, ``user.email``).
  https://developer.zendesk.com/api-reference/ticketing/users/users/#show-user
* Look-up after a timed-out reply: ``GET {base}/api/v2/tickets/{id}/comments.json`` with
  ``sort=-created_at`` (newest first, cursor pagination), ``page[size]=100`` and
  ``include=users`` (the authors' roles, to count only agents' public comments); the next
  page is asked with the answer's ``meta.after_cursor`` (never by following ``links.next``
  to wherever it points) while ``meta.has_more`` and the page reaches back past ``since``,
  at most :data:`~csat_hook.helpdesks.zendesk.api.LOOKUP_PAGES` pages; more comments without
  a cursor not asked with yet is a retryable error, never the end of the listing.
  https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/#list-comments
  https://developer.zendesk.com/api-reference/introduction/pagination/
* Errors: ``{"error": "RecordInvalid", "description", "details": {field: [{"description",
  "error"}]}}``, ``{"error": "<text>"}`` or ``{"error": {"title", "message"}}``.
  https://developer.zendesk.com/api-reference/introduction/requests/
* Rate limits: 429 with ``Retry-After`` (seconds), honoured by the HTTP client.
  https://developer.zendesk.com/api-reference/introduction/rate-limits/
"""

from __future__ import annotations

import base64
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
from csat_hook.helpdesks.markup import reply_html
from csat_hook.helpdesks.markup import text_to_html
from csat_hook.helpdesks.payload import as_id
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import dig
from csat_hook.helpdesks.payload import document_digest
from csat_hook.helpdesks.payload import parse_timestamp
from csat_hook.helpdesks.payload import parse_timestamps
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
from csat_hook.helpdesks.signing import SIGNATURE
from csat_hook.helpdesks.signing import PreviousSecret
from csat_hook.helpdesks.signing import previous_match
from csat_hook.helpdesks.signing import require_fresh
from csat_hook.helpdesks.signing import signature_matches
from csat_hook.helpdesks.zendesk.api import LOOKUP_PAGES
from csat_hook.helpdesks.zendesk.api import LOOKUP_PARAMS
from csat_hook.helpdesks.zendesk.api import CommentPage
from csat_hook.helpdesks.zendesk.api import comment_id
from csat_hook.helpdesks.zendesk.api import error_items
from csat_hook.helpdesks.zendesk.api import explained
from csat_hook.helpdesks.zendesk.api import ticket_state
from csat_hook.helpdesks.zendesk.options import CLOSED
from csat_hook.helpdesks.zendesk.options import CLOSED_STATUSES
from csat_hook.helpdesks.zendesk.options import COMMENTS_PATH
from csat_hook.helpdesks.zendesk.options import OPEN_STATUSES
from csat_hook.helpdesks.zendesk.options import SIGNATURE_HEADER
from csat_hook.helpdesks.zendesk.options import SOLVED
from csat_hook.helpdesks.zendesk.options import STATUS_CHANGED
from csat_hook.helpdesks.zendesk.options import TEST_SIGNING_SECRET
from csat_hook.helpdesks.zendesk.options import TICKET_CLOSED
from csat_hook.helpdesks.zendesk.options import TICKET_PATH
from csat_hook.helpdesks.zendesk.options import TIMESTAMP_HEADER
from csat_hook.helpdesks.zendesk.options import USER_PATH
from csat_hook.helpdesks.zendesk.options import ZendeskOptions
from csat_hook.helpdesks.zendesk.options import status_key
from csat_hook.helpdesks.zendesk.options import zendesk_signature
from csat_hook.helpdesks.zendesk.webhook import person_of
from csat_hook.helpdesks.zendesk.webhook import status_of
from csat_hook.helpdesks.zendesk.webhook import zendesk_id

__all__ = ["TEST_SIGNING_SECRET", "ZendeskHelpdesk", "ZendeskOptions", "zendesk_signature"]


class ZendeskHelpdesk(Helpdesk):
    kind = "zendesk"
    supports_lookup = True
    supports_notes = True
    supports_note_lookup = True
    Options = ZendeskOptions
    options: ZendeskOptions

    # --- webhooks ---------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> PreviousSecret | None:
        signature = request.header(SIGNATURE_HEADER)
        timestamp = request.header(TIMESTAMP_HEADER)
        if not signature:
            raise InvalidSignatureError(f"missing {SIGNATURE_HEADER}")
        if not timestamp:
            raise InvalidSignatureError(f"missing {TIMESTAMP_HEADER}")
        require_fresh(parse_timestamp(timestamp), self.clock(), self.options.tolerance_seconds)
        if self._signed_with(self.options.webhook_secret, request):
            return None
        previous = previous_match(
            self.options.previous_webhook_secrets,
            "previous_webhook_secrets",
            lambda old: self._signed_with(old, request),
        )
        if previous is not None:
            return previous
        if self.options.accept_test_deliveries and self._is_test_delivery(request):
            return None  # parse() answers it as ignored
        raise InvalidSignatureError(f"{SIGNATURE_HEADER} does not match the body")

    def credentials(self) -> list[tuple[str, str | None]]:
        return [(SIGNATURE, SIGNATURE_HEADER)]

    def proof_headers(self) -> list[str]:
        return [*super().proof_headers(), TIMESTAMP_HEADER]  # the signed timestamp's too

    def parse(self, request: WebhookRequest) -> Event:
        # Checked before anything is read: a test body can be anything, even not JSON.
        if self._is_test_delivery(request):
            return Ignored("Zendesk test delivery (signed with the public test secret)")
        payload = require_object(rendered_json(request, self.name))
        kind = as_text(payload.get("type")) or ""
        if kind.startswith("zen:event-type:"):
            return self._from_event(kind, payload)
        ticket = payload.get("ticket")
        if isinstance(ticket, Mapping):
            return self._from_trigger(payload, ticket)
        return Ignored("neither a Zendesk event nor the csat-hook trigger body", misconfigured=True)

    def _from_event(self, kind: str, payload: Mapping[str, Any]) -> Event:
        if kind != STATUS_CHANGED:
            return Ignored(f"{shown_name(kind)} is not a status change")
        current = status_of(dig(payload, "event.current")) or status_of(
            dig(payload, "detail.status")
        )
        previous = status_of(dig(payload, "event.previous"))
        if current in CLOSED_STATUSES and previous in CLOSED_STATUSES:
            # Solved → closed is the same close, archived days later: surveyed already.
            return Ignored(
                f"status {shown_name(previous)} → {shown_name(current)}: "
                "the ticket was already solved"
            )
        if current in CLOSED_STATUSES:
            ticket_id = require_id(payload, "detail.id", "ticket id")
            return self._event_close(payload, ticket_id, closed=current == CLOSED)
        if previous in CLOSED_STATUSES:
            return DialogReopened(
                self.name,
                require_id(payload, "detail.id", "ticket id"),
                # As for a close: the event's time (the status change), the ticket's update.
                reopen_times=parse_timestamps(
                    payload.get("time"), dig(payload, "detail.updated_at")
                ),
            )
        return Ignored(
            f"status {shown_name(previous, missing='?')} → {shown_name(current, missing='?')} "
            "is not a close"
        )

    def _event_close(
        self, payload: Mapping[str, Any], ticket_id: str, *, closed: bool
    ) -> DialogClosed:
        group = zendesk_id(dig(payload, "detail.group_id"), "detail.group_id")
        return DialogClosed(
            helpdesk=self.name,
            dialog_id=ticket_id,
            agent=Person(id=zendesk_id(dig(payload, "detail.assignee_id"), "detail.assignee_id")),
            customer=Person(
                id=zendesk_id(dig(payload, "detail.requester_id"), "detail.requester_id")
            ),
            team=self.options.groups.get(group) if group else None,
            channel=as_text(dig(payload, "detail.via.channel")),
            # The event's time (the status change), then the ticket's last update.
            close_times=parse_timestamps(payload.get("time"), dig(payload, "detail.updated_at")),
            occurrence=as_id(payload.get("id"), "id") or as_text(payload.get("time")),
            unsurveyable=TICKET_CLOSED if closed else None,
        )

    def _from_trigger(self, payload: Mapping[str, Any], ticket: Mapping[str, Any]) -> Event:
        if unrendered(ticket.get("id")):
            return Ignored("the trigger body's placeholders were not rendered", misconfigured=True)
        status = rendered(ticket.get("status"))
        if status is None:
            # Zendesk always has a status, and renders a placeholder it does not know (a
            # misspelt one) as nothing: every close of this trigger would be lost unseen.
            return Ignored(
                "the trigger body's ticket.status is empty or not rendered: check "
                "{{ticket.status}} in the trigger's body",
                misconfigured=True,
            )
        meaning = self.options.trigger_status(status)
        if meaning == "reopened":
            return DialogReopened(
                self.name,
                require_id(payload, "ticket.id", "ticket id"),
                reopen_times=parse_timestamps(rendered(ticket.get("updated_at"))),
            )
        if meaning != "closed":
            # The status is Zendesk's text, not the customer's: named so a translated one
            # shows what to add to closed_statuses. In neither list, it is a close (or a
            # reopen) the lists do not name, lost with every other one: said at WARNING.
            return Ignored(
                f"status {shown_name(status)!r} is not a close "
                f"(helpdesks.{self.name}.closed_statuses)",
                misconfigured=True,
            )
        ticket_id = require_id(payload, "ticket.id", "ticket id")
        assignee = ticket.get("assignee")
        requester = ticket.get("requester")
        updated = rendered(ticket.get("updated_at"))
        return DialogClosed(
            helpdesk=self.name,
            dialog_id=ticket_id,
            agent=person_of(assignee, "ticket.assignee"),
            customer=person_of(requester, "ticket.requester"),
            team=rendered(ticket.get("group")),
            channel=rendered(ticket.get("via")),
            close_times=parse_timestamps(updated),
            # A retry repeats the rendered body; a later re-solve has a later update time.
            occurrence=updated or document_digest(payload),
            # Without the update time the body names no time: a re-solve after a reopen renders
            # the same document, so its digest may re-arm the survey the reopen cancelled.
            occurrence_repeats=not updated,
            # Zendesk's own word for it; a translated one is not known to mean closed.
            unsurveyable=TICKET_CLOSED if status_key(status or "") == CLOSED else None,
        )

    def _signed_with(self, secret: SecretStr | str, request: WebhookRequest) -> bool:
        timestamp = request.header(TIMESTAMP_HEADER) or ""
        expected = zendesk_signature(secret, timestamp, request.body)
        return signature_matches(expected, request.header(SIGNATURE_HEADER), encoding="base64")

    def _is_test_delivery(self, request: WebhookRequest) -> bool:
        """Signed with the public test secret and not with ours (see TEST_SIGNING_SECRET)."""
        if not request.header(SIGNATURE_HEADER) or not request.header(TIMESTAMP_HEADER):
            return False
        return self._signed_with(TEST_SIGNING_SECRET, request) and not self._signed_with(
            self.options.webhook_secret, request
        )

    # --- the API ----------------------------------------------------------------------------

    def send_reply(self, reply: Reply) -> SendResult:
        """Add the reply as a public comment, always escaped HTML (``html_body``: the text
        escaped, the survey link or the scale of score links its only anchors); keep the
        ticket solved (``keep_solved``)."""
        # Never "body": Zendesk renders it as Markdown, so a name in the reply (the agent's,
        # the customer's) like [click](url) or ![x](img) would be a link or an image there.
        comment = {"html_body": reply_html(reply), "public": True}
        ticket: dict[str, Any] = {"comment": comment}
        url = self._url(TICKET_PATH, ticket=reply.dialog_id)
        try:
            if self.options.keep_solved:
                ticket |= self._still_solved(url, reply)
            response = self.http.request(
                "PUT",
                url,
                headers=self._auth_headers(),
                json={"ticket": ticket},
                explain=explainer(error_items, reply),
            )
        except DialogReopenedError:
            raise
        except DeliveryError as exc:
            if exc.http_status == 409 and "safe_update" in ticket:
                raise exc.reworded(
                    "Zendesk refused the safe update (HTTP 409): the ticket changed after its "
                    "status was read; read again at the next attempt",
                    retryable=True,
                ) from exc
            raise explained(exc) from exc
        return created_message(response, comment_id(response_json(response)))

    def _still_solved(self, url: str, reply: Reply) -> dict[str, Any]:
        """What the reply's update adds to keep the ticket solved, read right before it: a
        solved ticket's ``status`` with the safe-update stamp (a change after this read is a
        409, never overwritten); nothing for a closed one (Zendesk refuses it, 422) or, without
        ``cancel_on_reopen``, for one reopened since the close. Raises DialogReopenedError for
        a reopened one under ``cancel_on_reopen``. A read refused for good or an answer that
        names no status Zendesk has tells nothing: ``status: solved`` alone, as the reply was
        sent before it read the ticket (:func:`~csat_hook.helpdesks.calls.status_before_write`)."""
        response = status_before_write(
            self.name,
            lambda: self.http.request(
                "GET", url, retries=2, headers=self._auth_headers(), explain=explainer(error_items)
            ),
        )
        if response is None:
            return {"status": SOLVED}
        status, stamp = ticket_state(response_json(response))
        if status == SOLVED and stamp:
            return {"status": SOLVED, "safe_update": True, "updated_stamp": stamp}
        if status == CLOSED:
            return {}
        if status in OPEN_STATUSES:
            if reply.cancel_on_reopen:
                raise DialogReopenedError(
                    f"Zendesk: the ticket is {status} again since it was solved; not posted"
                )
            return {}
        status_unread(self.name)
        return {"status": SOLVED}

    def post_note(self, note: Note) -> SendResult:
        """Add ``note.text`` as a private comment, escaped HTML (``html_body``: Zendesk renders
        a ``body`` as Markdown, which would make a comment's ``[text](url)`` a link); the
        status is left as it is."""
        url = self._url(TICKET_PATH, ticket=note.dialog_id)
        comment = {"html_body": text_to_html(note.text), "public": False}
        try:
            response = self.http.request(
                "PUT",
                url,
                headers=self._auth_headers(),
                json={"ticket": {"comment": comment}},
                explain=explainer(error_items, note),
            )
        except DeliveryError as exc:
            raise explained(exc) from exc
        return created_message(response, comment_id(response_json(response)))

    def find_reply(self, reply: Reply, *, since: datetime) -> SendResult | None:
        """Our public comment carrying the marker, newest first (see the module docstring)."""
        return self._find(reply.dialog_id, lookup_marker(reply), since, public=True)

    def find_note(self, note: Note, *, since: datetime) -> SendResult | None:
        """Our private comment carrying the alert's reference, newest first."""
        return self._find(note.dialog_id, lookup_marker(note), since, public=False)

    def _find(
        self, ticket: str, marker: str, since: datetime, *, public: bool
    ) -> SendResult | None:
        floor = lookup_floor(since)
        url = self._url(COMMENTS_PATH, ticket=ticket)
        params = dict(LOOKUP_PARAMS)
        asked: set[str] = set()
        for _ in range(LOOKUP_PAGES):
            try:
                response = self.http.request(
                    "GET",
                    url,
                    retries=2,
                    headers=self._auth_headers(),
                    params=params,
                    explain=explainer(error_items),
                )
            except DeliveryError as exc:
                raise lookup_refused(
                    exc,
                    "Zendesk",
                    what="ticket",
                    credentials=f"helpdesks.{self.name}.email/api_token (or oauth_token) "
                    "must belong to an agent who can see the ticket",
                ) from exc
            page = CommentPage.read(lookup_answer(response, "Zendesk"))
            found = page.find(marker, floor, public=public)
            if found is not None:
                return SendResult(external_id=found)
            if not page.has_more or page.reaches_before(floor):
                return None
            if not page.after_cursor or page.after_cursor in asked:
                # More comments, but no cursor that moves on: a listing that cannot be
                # followed, not one that ended (the reply would be posted again).
                raise DeliveryError(
                    "Zendesk: the look-up answer has more comments but no new cursor "
                    "(meta.after_cursor); asked again later",
                    retryable=True,
                )
            asked.add(page.after_cursor)
            params = {**LOOKUP_PARAMS, "page[after]": page.after_cursor}
        raise DeliveryError(
            f"Zendesk: more than {LOOKUP_PAGES} pages of comments since it was sent; "
            "not searched further",
            retryable=False,
        )

    def fetch_agent(self, agent: Person, context: Mapping[str, Any]) -> Person | None:
        """Name and email of a Zendesk user by id; None when there is no such user."""
        agent_id = agent.id
        if not agent_id:
            return None
        response = unless_not_found(
            lambda: self.http.request(
                "GET", self._url(USER_PATH, user=agent_id), headers=self._auth_headers(), retries=2
            )
        )
        if response is None:
            return None
        user = dig(response_json(response), "user")
        if not isinstance(user, Mapping):
            return None
        return Person(id=agent.id, name=as_text(user.get("name")), email=as_text(user.get("email")))

    def _url(self, path: str, **ids: str) -> str:
        # Ids come from verified payloads, but a path segment is still no place for a slash.
        quoted = {key: quote_id(value) for key, value in ids.items()}
        return f"{self.options.base_url}{path.format(**quoted)}"

    def _auth_headers(self) -> dict[str, str]:
        options = self.options
        if options.oauth_token is not None:
            return {"Authorization": f"Bearer {options.oauth_token.get_secret_value()}"}
        assert options.email is not None and options.api_token is not None  # the validator
        raw = f"{options.email}/token:{options.api_token.get_secret_value()}"
        return {"Authorization": "Basic " + base64.b64encode(raw.encode("utf-8")).decode()}
