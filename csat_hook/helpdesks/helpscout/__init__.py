"""Help Scout (Mailbox API 2.0).

* Close: the ``X-HelpScout-Event: convo.status`` header with the body's ``status == "closed"``
  (the body is the v2 Conversation object; the event name travels only in the header). The
  same event with ``active``/``pending`` is a reopen. Every other event, including the
  ``helpscout.test`` sent from the webhook settings, is acknowledged and ignored.
  See https://developer.helpscout.com/webhooks/
* A webhook created with ``notification: true`` sends "just a resource URI", not the
  conversation (https://developer.helpscout.com/mailbox-api/endpoints/webhooks/create/; the
  exact body is not documented): a ``convo.status`` body without a ``status`` (or a URI
  alone) is acknowledged, ignored and logged as misconfigured (webhook.ignored-misconfigured).
* Signing: ``X-HelpScout-Signature = base64(HMAC-SHA1(secret, raw body))``, the secret being
  the one typed into the webhook (at most 40 characters). There is no timestamp, so a replay
  is caught by deduplication on ``closedAt`` (the occurrence), not by the signature. See
  https://developer.helpscout.com/webhooks/ and the SDK's verifier
  https://github.com/helpscout/helpscout-api-php/blob/master/src/Webhooks/IncomingWebhook.php
* Reply: ``POST {base}/v2/conversations/{id}/reply`` with ``{"customer": {"id"}, "text",
  "status": "closed"}``: without ``status`` "a reply thread will reactivate the conversation".
  That status is the conversation's own, read right before the reply (``GET
  {base}/v2/conversations/{id}``): ``closed`` stays closed; one ``active`` or ``pending`` again
  was reactivated since the close (the customer wrote back, an agent reopened it) and its
  reopen's webhook not seen: nothing is posted (``DialogReopenedError``, the reply cancelled)
  under ``policy.cancel_on_reopen``, else the reply goes with that status, leaving it as it
  is. A reopen between the read and the write is closed again: Help Scout has no conditional
  update, the window is one request. A conversation merged since (the read answers 301) or
  marked spam gets no reply (permanent).
  Answer: 201 with the thread id in ``Resource-ID``. ``customer`` is required, so a close
  naming no customer id (``primaryCustomer``, else a customer ``createdBy``) is recorded as
  skipped (``no_customer``), never queued to fail. See
  https://developer.helpscout.com/mailbox-api/endpoints/conversations/threads/reply/
* Internal note (an alert): ``POST {base}/v2/conversations/{id}/notes`` with ``{"text",
  "status"}``; 201 with the thread id in ``Resource-ID``. Whether a note without ``status``
  reactivates a closed conversation is not documented (the v1 API defaulted every thread to
  active), so the conversation is read first (``GET {base}/v2/conversations/{id}``) and its
  current status sent back: closed stays closed. A customer reopening it between the read and
  the write would see it closed again; the window is one request. Found after an unknown
  outcome among the ``note`` threads.
* Merged conversations: "it is no longer accessible using the old ID. Get Conversation
  endpoint will return a HTTP 301 Moved Permanently [...] with the URI of the new
  conversation", every other endpoint a 404 ("call the Get Conversation endpoint to get a new
  conversation location"). The note's status read, and a look-up whose listing answers 404,
  follow that 301 once, to another conversation of the same API (never another host: the
  token would go along); the note goes to, and the look-up reads, the conversation it moved
  to. The reply itself is not moved (its customer may not be the new conversation's): a 404
  to it is a permanent failure. See
  https://developer.helpscout.com/mailbox-api/endpoints/conversations/update/
  https://developer.helpscout.com/mailbox-api/endpoints/conversations/threads/note/
* Auth: OAuth2 client credentials, ``POST {base}/v2/oauth2/token``; the token is cached until
  shortly before it expires and renewed once on a 401. See
  https://developer.helpscout.com/mailbox-api/overview/authentication/
* Agent lookup: ``assignee{id,first,last,email}`` is usually in the payload; otherwise
  ``GET {base}/v2/users/{id}`` (``firstName``, ``lastName``, ``email``). See
  https://developer.helpscout.com/mailbox-api/endpoints/users/get/
* Look-up after a timed-out reply: ``GET {base}/v2/conversations/{id}/threads`` lists threads
  newest first, 50 a page; the next page only while one has a ``next`` link and still
  reaches past ``since``, at most :data:`~csat_hook.helpdesks.helpscout.api.LOOKUP_PAGES`
  (the docs' "up to 100 threads" is not taken for the end of the listing: more pages than
  that is a permanent error, never "not found").
  Our thread is a user's (not a customer's) published reply, not a note, carrying the marker.
  https://developer.helpscout.com/mailbox-api/endpoints/conversations/threads/list/
* Errors: ``{"logRef", "message", "_embedded": {"errors": [{"path", "message",
  "rejectedValue"}]}}``; ``rejectedValue`` is never read (it echoes what we sent).
  https://developer.helpscout.com/mailbox-api/overview/errors/
* Rate limit: 429 with ``X-RateLimit-Retry-After`` (seconds). See
  https://developer.helpscout.com/mailbox-api/overview/rate-limiting/
* Help Scout has no teams: the mailbox (``mailboxId``, named through ``mailboxes``) stands in.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from datetime import datetime
from datetime import timedelta
from typing import Any

import requests

from csat_hook.clock import Clock
from csat_hook.errors import DeliveryError
from csat_hook.errors import DialogReopenedError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.base import HelpdeskOptions
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
from csat_hook.helpdesks.helpscout.api import LOOKUP_PAGES
from csat_hook.helpdesks.helpscout.api import ThreadPage
from csat_hook.helpdesks.helpscout.api import error_items
from csat_hook.helpdesks.helpscout.api import moved_to
from csat_hook.helpdesks.helpscout.options import CLOSED_STATUS
from csat_hook.helpdesks.helpscout.options import CONVERSATION_PATH
from csat_hook.helpdesks.helpscout.options import CONVERSATION_STATUSES
from csat_hook.helpdesks.helpscout.options import NOTES_PATH
from csat_hook.helpdesks.helpscout.options import REOPEN_STATUSES
from csat_hook.helpdesks.helpscout.options import REPLY_PATH
from csat_hook.helpdesks.helpscout.options import RETRY_AFTER_HEADERS
from csat_hook.helpdesks.helpscout.options import STATUS_EVENT
from csat_hook.helpdesks.helpscout.options import TEST_EVENT
from csat_hook.helpdesks.helpscout.options import THREADS_PATH
from csat_hook.helpdesks.helpscout.options import TOKEN_PATH
from csat_hook.helpdesks.helpscout.options import USER_PATH
from csat_hook.helpdesks.helpscout.options import HelpScoutOptions
from csat_hook.helpdesks.helpscout.webhook import as_number
from csat_hook.helpdesks.helpscout.webhook import nonzero_id
from csat_hook.helpdesks.helpscout.webhook import resource_uri_only
from csat_hook.helpdesks.helpscout.webhook import user_of
from csat_hook.helpdesks.markup import reply_html
from csat_hook.helpdesks.markup import text_to_html
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
from csat_hook.helpdesks.records import header_text
from csat_hook.helpdesks.records import shown_name
from csat_hook.helpdesks.signing import SIGNATURE
from csat_hook.helpdesks.signing import PreviousSecret
from csat_hook.helpdesks.signing import hmac_digest
from csat_hook.helpdesks.signing import previous_match
from csat_hook.helpdesks.signing import signature_matches
from csat_hook.helpdesks.transport import HttpClient

__all__ = ["HelpScoutHelpdesk", "HelpScoutOptions"]


# Help Scout's tokens live two days (the authentication page above). A longer lifetime is
# not believed: a token kept past its real expiry costs a 401 and a renewal per call.
MAX_TOKEN_LIFETIME = 2 * 24 * 3600.0
# For an answer whose lifetime cannot be read (absent, not a number, not positive, not
# finite): short, so a token the vendor meant to be brief is renewed soon anyway.
DEFAULT_TOKEN_LIFETIME = 300.0


def token_lifetime(value: Any) -> float:
    """Seconds a token lives, from the token answer's ``expires_in``: a number (or numeric
    text) up to :data:`MAX_TOKEN_LIFETIME`; :data:`DEFAULT_TOKEN_LIFETIME` when it is
    missing, not a number, not finite ("1e400", Infinity) or not positive. Never raises: a
    lifetime such as 1e20 or "1e400" once overflowed the expiry's ``timedelta``, failing
    every reply."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return DEFAULT_TOKEN_LIFETIME
    try:
        seconds = float(value)
    except OverflowError:  # an integer too big for a float: a long lifetime all the same
        return MAX_TOKEN_LIFETIME
    except ValueError:
        return DEFAULT_TOKEN_LIFETIME
    if not math.isfinite(seconds) or seconds <= 0:
        return DEFAULT_TOKEN_LIFETIME
    return min(seconds, MAX_TOKEN_LIFETIME)


class HelpScoutHelpdesk(Helpdesk):
    kind = "helpscout"
    supports_lookup = True
    supports_notes = True
    supports_note_lookup = True
    Options = HelpScoutOptions
    options: HelpScoutOptions

    def __init__(
        self, name: str, options: HelpdeskOptions, *, http: HttpClient, clock: Clock
    ) -> None:
        super().__init__(name, options, http=http, clock=clock)
        self._token: tuple[str, datetime] | None = None  # (access token, renew after)
        self._token_lock = threading.Lock()

    def verify(self, request: WebhookRequest) -> PreviousSecret | None:
        signature = request.header("X-HelpScout-Signature")
        if not signature:
            raise InvalidSignatureError("missing X-HelpScout-Signature")
        expected = hmac_digest(self.options.webhook_secret, request.body, "sha1")
        if signature_matches(expected, signature, encoding="base64"):
            return None
        previous = previous_match(
            self.options.previous_webhook_secrets,
            "previous_webhook_secrets",
            lambda old: signature_matches(
                hmac_digest(old, request.body, "sha1"), signature, encoding="base64"
            ),
        )
        if previous is None:
            raise InvalidSignatureError("X-HelpScout-Signature does not match the body")
        return previous

    def credentials(self) -> list[tuple[str, str | None]]:
        return [(SIGNATURE, "X-HelpScout-Signature")]

    def parse(self, request: WebhookRequest) -> Event:
        event = (request.header("X-HelpScout-Event") or "").strip()
        if event == TEST_EVENT:
            return Ignored("helpscout.test: Help Scout's test event")
        if event != STATUS_EVENT:
            shown = shown_name(header_text(event), missing="(no X-HelpScout-Event)")
            return Ignored(f"event {shown} is not a status change")
        if resource_uri_only(request):
            # Nothing here says which status, or whose conversation: a survey can't be sent
            # from it, and no answer of ours changes what the next delivery holds.
            return Ignored(
                "convo.status without the conversation: a notification webhook sends only its "
                "URI; turn notification off in the webhook's settings",
                misconfigured=True,
            )
        payload = require_object(request.json())
        dialog_id = require_id(payload, "id", "conversation id")
        status = (as_text(payload.get("status")) or "").lower()
        if status == CLOSED_STATUS:
            return self._closed(payload, dialog_id)
        if status in REOPEN_STATUSES:
            # No field names the reopen itself: an agent's last update (a reopen by hand) and
            # the time the customer has waited since (a reply that reopened it). Either may
            # be older than the reopen made the other way, so the later one counts
            # (storable.trusted_reopen_time); neither given, it cancels as it always did.
            return DialogReopened(
                self.name,
                dialog_id,
                reopen_times=parse_timestamps(
                    payload.get("userUpdatedAt"), dig(payload, "customerWaitingSince.time")
                ),
            )
        return Ignored(f"status {shown_name(status)} is not a close")

    def _closed(self, payload: Mapping[str, Any], dialog_id: str) -> DialogClosed:
        closed_by = payload.get("closedByUser")
        closer = (
            user_of(closed_by, "closedByUser")
            if isinstance(closed_by, Mapping)
            else Person(id=nonzero_id(payload.get("closedBy"), "closedBy"))
        )
        assignee = user_of(payload.get("assignee"), "assignee")
        customer = user_of(payload.get("primaryCustomer"), "primaryCustomer")
        created_by = payload.get("createdBy")
        if isinstance(created_by, Mapping) and created_by.get("type") == "customer":
            creator = user_of(created_by, "createdBy")  # often has the email primaryCustomer lacks
            if customer.id in (None, creator.id):
                customer = customer.merged(creator)
        mailbox = nonzero_id(payload.get("mailboxId"), "mailboxId")
        closed_at = as_text(payload.get("closedAt"))
        return DialogClosed(
            helpdesk=self.name,
            dialog_id=dialog_id,
            agent=assignee if assignee.known else closer,
            customer=customer,
            team=self.options.mailboxes.get(mailbox, mailbox) if mailbox else None,
            channel=as_text(payload.get("type")),
            close_times=parse_timestamps(closed_at),
            # closedAt is the same on every delivery of this close and new on the next one.
            occurrence=closed_at or as_text(payload.get("userUpdatedAt")),
            reply_context={"customer_id": customer.id} if customer.id else {},
            # The reply names the customer replied to (customer.id, required); a conversation
            # that names none (no primaryCustomer id, started by a user) cannot take it.
            unsurveyable=None if customer.id else "no_customer",
        )

    def send_reply(self, reply: Reply) -> SendResult:
        customer_id = as_text(reply.context.get("customer_id")) or reply.customer.id
        if not customer_id:
            raise DeliveryError(
                "the conversation has no customer id (primaryCustomer.id) to reply to",
                retryable=False,
            )
        body: dict[str, Any] = {
            "customer": {"id": as_number(customer_id)},
            "text": reply_html(reply),
            # Without a status, Help Scout reactivates the conversation: its own is sent back.
            "status": self._reply_status(reply),
        }
        user = self.options.user_id or (reply.agent.id if self.options.reply_as_agent else None)
        if user:
            body["user"] = as_number(user)
        response = self._api(
            "POST",
            REPLY_PATH.format(conversation=quote_id(reply.dialog_id)),
            json=body,
            explain=explainer(error_items, reply),
        )
        return created_message(response, as_text(response.headers.get("Resource-ID")))

    def _reply_status(self, reply: Reply) -> str:
        """The status the reply is sent with: the conversation's, read right before it
        (``closed``; ``active``/``pending`` without ``cancel_on_reopen``). Raises
        DialogReopenedError for a conversation reactivated since the close under
        ``cancel_on_reopen``; a permanent DeliveryError for one merged or marked spam since. A
        read refused for good or an answer that names no status tells nothing: ``closed``, as
        the reply was sent before it read the conversation
        (:func:`~csat_hook.helpdesks.calls.status_before_write`)."""
        read = status_before_write(self.name, lambda: self._conversation(reply.dialog_id))
        if read is None:
            return CLOSED_STATUS
        dialog_id, current = read
        if current is None:
            raise DeliveryError(
                f"Help Scout: conversation {dialog_id} was merged into another since its "
                "close; the reply is not posted there (its customer may not be that "
                "conversation's)",
                retryable=False,
            )
        status = as_text(dig(response_json(current), "status"))
        if status == CLOSED_STATUS:
            return status
        if status in REOPEN_STATUSES:
            if reply.cancel_on_reopen:
                raise DialogReopenedError(
                    f"Help Scout: the conversation is {status} again since it was closed; "
                    "not posted"
                )
            return status
        if status in CONVERSATION_STATUSES:  # spam
            raise DeliveryError(
                f"Help Scout: the conversation was marked {status} since its close; the "
                "reply is not posted",
                retryable=False,
            )
        status_unread(self.name)
        return CLOSED_STATUS

    def post_note(self, note: Note) -> SendResult:
        """A note thread (HTML-escaped), sent with the conversation's current status so that
        posting it changes no status (see the module docstring)."""
        try:
            dialog_id, current = self._conversation(note.dialog_id)
            if current is None:  # merged: the note goes where the conversation is now
                current = self._api(
                    "GET", CONVERSATION_PATH.format(conversation=quote_id(dialog_id)), retries=2
                )
        except DeliveryError as exc:
            raise lookup_refused(
                exc,
                "Help Scout",
                credentials=f"the app of helpdesks.{self.name}.client_id acts as its owner, "
                "who needs access to the conversation's mailbox",
            ) from exc
        conversation = quote_id(dialog_id)
        status = as_text(dig(response_json(current), "status"))
        if status not in CONVERSATION_STATUSES:
            # Posting without a status may reactivate a closed conversation: do not guess.
            raise DeliveryError(
                "Help Scout: the conversation's status is unreadable; the note was not posted",
                retryable=True,
            )
        response = self._api(
            "POST",
            NOTES_PATH.format(conversation=conversation),
            json={"text": text_to_html(note.text), "status": status},
            explain=explainer(error_items, note),
        )
        return created_message(response, as_text(response.headers.get("Resource-ID")))

    def find_reply(self, reply: Reply, *, since: datetime) -> SendResult | None:
        """Our reply thread carrying the marker, newest first (see the module docstring)."""
        return self._find(reply.dialog_id, lookup_marker(reply), since, note=False)

    def find_note(self, note: Note, *, since: datetime) -> SendResult | None:
        """Our note thread carrying the alert's reference, newest first."""
        return self._find(note.dialog_id, lookup_marker(note), since, note=True)

    def _conversation(self, dialog_id: str) -> tuple[str, requests.Response | None]:
        """Get Conversation: (the id the conversation has now, its answer), the answer None
        when a merge moved it (the 301 :func:`~csat_hook.helpdesks.helpscout.api.moved_to`
        reads: the caller reads the new one if it needs it); any other redirect stays the
        refusal it was."""
        path = CONVERSATION_PATH.format(conversation=quote_id(dialog_id))
        locations: list[str] = []

        def keep_location(response: requests.Response, **_: Any) -> None:
            if response.status_code == 301:  # read before the transport drops it
                locations.append(response.headers.get("Location") or "")

        try:
            return dialog_id, self._api("GET", path, retries=2, hooks={"response": keep_location})
        except DeliveryError as exc:
            moved = (
                moved_to(locations[-1], self.options.base_url + path)
                if exc.http_status == 301 and locations
                else None
            )
            if moved is None:
                raise
        return moved, None

    def _find(
        self, dialog_id: str, marker: str, since: datetime, *, note: bool
    ) -> SendResult | None:
        try:
            return self._find_in(dialog_id, marker, since, note=note)
        except DeliveryError as exc:
            if exc.http_status != 404:
                raise
            # Merged since it was sent: the threads moved with it (see the module docstring).
            try:
                moved, _ = self._conversation(dialog_id)
            except DeliveryError:
                raise exc from None
            if moved == dialog_id:
                raise
            return self._find_in(moved, marker, since, note=note)

    def _find_in(
        self, dialog_id: str, marker: str, since: datetime, *, note: bool
    ) -> SendResult | None:
        floor = lookup_floor(since)
        path = THREADS_PATH.format(conversation=quote_id(dialog_id))
        previous_ids: list[Any] | None = None  # the previous page's thread ids
        for number in range(1, LOOKUP_PAGES + 1):
            try:
                response = self._api(
                    "GET", path, retries=2, params={"page": number}, explain=explainer(error_items)
                )
            except DeliveryError as exc:
                raise lookup_refused(
                    exc,
                    "Help Scout",
                    credentials=f"the app of helpdesks.{self.name}.client_id acts as its "
                    "owner, who needs access to the conversation's mailbox",
                ) from exc
            page = ThreadPage.read(lookup_answer(response, "Help Scout"))
            found = page.find_note(marker, floor) if note else page.find(marker, floor)
            if found is not None:
                return found
            if not page.has_next or page.reaches_before(floor):
                return None
            ids = [thread.get("id") for thread in page.threads]
            if ids == previous_ids:
                # `page` ignored: the next page was never read, and taking it for read
                # would post the reply again.
                raise DeliveryError(
                    "Help Scout: the look-up answered the same page again (?page= ignored); "
                    "asked again later",
                    retryable=True,
                )
            previous_ids = ids
        raise DeliveryError(
            f"Help Scout: more than {LOOKUP_PAGES} pages of threads since it was sent; "
            "not searched further",
            retryable=False,
        )

    def fetch_agent(self, agent: Person, context: Mapping[str, Any]) -> Person | None:
        """Name and email of a Help Scout user by id; None when the id is unknown."""
        agent_id = agent.id
        if not agent_id:
            return None
        response = unless_not_found(
            lambda: self._api("GET", USER_PATH.format(user=quote_id(agent_id)), retries=2)
        )
        if response is None:
            return None
        user = response_json(response)
        return user_of({**user, "id": agent.id}, "user") if isinstance(user, Mapping) else None

    # --- OAuth2 -----------------------------------------------------------------------------

    def _api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """An authenticated call; a 401 renews the token and tries once more."""
        token = self._access_token()
        try:
            return self._send(method, path, token, **kwargs)
        except DeliveryError as exc:
            if exc.http_status != 401:
                raise
        # A 401 means the request was not processed (token expired early or was revoked),
        # so sending it again cannot duplicate the reply.
        return self._send(method, path, self._access_token(stale=token), **kwargs)

    def _send(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        return self.http.request(
            method,
            self.options.base_url + path,
            headers={"Authorization": f"Bearer {token}"},
            retry_after_headers=RETRY_AFTER_HEADERS,
            **kwargs,
        )

    def _access_token(self, stale: str | None = None) -> str:
        """The cached token, or a new one when there is none, it expired or it is ``stale``."""
        with self._token_lock:  # one request renews; the others wait and reuse its token
            now = self.clock()
            if self._token and self._token[0] != stale and now < self._token[1]:
                return self._token[0]
            token, lifetime = self._request_token()
            # Renew a little early so a token never expires between the check and the call.
            self._token = (token, now + timedelta(seconds=lifetime - min(300, lifetime / 10)))
            return token

    def _request_token(self) -> tuple[str, float]:
        try:
            response = self.http.request(
                "POST",
                self.options.base_url + TOKEN_PATH,
                json={
                    "grant_type": "client_credentials",
                    "client_id": self.options.client_id,
                    "client_secret": self.options.client_secret.get_secret_value(),
                },
                retry_after_headers=RETRY_AFTER_HEADERS,
            )
        except DeliveryError as exc:
            if exc.outcome_unknown:
                # A 500 or a timeout to the token request: whatever Help Scout did with it,
                # no reply was posted, so the reply is a plain retry, not looked up.
                answer = f"HTTP {exc.http_status}" if exc.http_status else "no answer in time"
                raise DeliveryError(
                    f"the Help Scout token request failed ({answer}); no reply was sent",
                    retryable=True,
                    http_status=exc.http_status,
                    retry_after=exc.retry_after,
                    vendor_reason=exc.vendor_reason,
                ) from exc
            if exc.retryable:
                raise
            raise DeliveryError(
                f"the Help Scout token request was refused (HTTP {exc.http_status}): check "
                f"helpdesks.{self.name}.client_id and client_secret",
                retryable=False,
                http_status=exc.http_status,
            ) from exc
        answer = response_json(response)
        if answer is None:
            # A 2xx that is not JSON (a proxy's or a maintenance page, cut short): unreadable,
            # not a refusal of the credentials; it once failed the reply for good.
            raise DeliveryError(
                "the Help Scout token answer is not JSON; no reply was sent",
                retryable=True,
                http_status=response.status_code,
            )
        token = (
            as_text(answer.get("access_token"), limit=4096) if isinstance(answer, Mapping) else None
        )
        if not token:
            raise DeliveryError(
                "the Help Scout token answer has no access_token",
                retryable=False,
                http_status=response.status_code,
            )
        if any((c < " " and c != "\t") or c == "\x7f" for c in token):
            # A line break would start another header (requests refuses it: a permanent
            # failure, of every reply while the token was kept), NUL or ESC reach the server:
            # unreadable like an answer that is not JSON, never kept, asked for again.
            raise DeliveryError(
                "the Help Scout token answer's access_token has a control character, which "
                "cannot be sent in a header; no reply was sent",
                retryable=True,
                http_status=response.status_code,
            )
        return token, token_lifetime(answer.get("expires_in"))
