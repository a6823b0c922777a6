"""Zendesk Support.

* Close, two webhook shapes told apart by their keys (docs/helpdesks/zendesk.md):

  - an event subscription to ``zen:event-type:ticket.status_changed``: Zendesk's own envelope
    ``{"type", "id", "time", "detail": {...ticket...}, "event": {"current", "previous"}}``.
    Statuses are upper-case, ``detail.id`` is a string, people are ids only. A close is
    ``event.current`` SOLVED or CLOSED; a reopen is a change away from them. The event ``id``
    (a UUID, the same on every retry) is the close's occurrence.
    https://developer.zendesk.com/api-reference/webhooks/event-types/ticket-events/
  - a trigger's "Notify active webhook" action with the body we document
    (examples/zendesk-trigger-body.json): ``{"ticket": {...}}`` from placeholders;
    ``{{ticket.status}}`` renders display text ("Solved"), compared case-insensitively. The
    rendered ``{{ticket.updated_at_with_timestamp}}`` is the occurrence.
    https://developer.zendesk.com/documentation/webhooks/anatomy-of-a-webhook-request/

* Signing: ``X-Zendesk-Webhook-Signature = base64(HMAC-SHA256(secret, timestamp + body))`` with
  ``X-Zendesk-Webhook-Signature-Timestamp`` (ISO 8601), no separator; the key is the signing
  secret's text as UTF-8. Deliveries tested before a webhook exists are signed with a public
  test secret: they are answered 200 and ignored, never parsed into a survey.
  https://developer.zendesk.com/documentation/webhooks/verifying/
* Reply: ``PUT {base}/api/v2/tickets/{id}.json`` with a public comment and ``status: solved``
  so the ticket stays solved. A closed ticket cannot be updated: Zendesk answers 422.
  https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket
* Agent: ``GET {base}/api/v2/users/{id}.json`` (``user.name``, ``user.email``).
  https://developer.zendesk.com/api-reference/ticketing/users/users/#show-user
* Rate limits: 429 with ``Retry-After`` (seconds), honoured by the HTTP client.
  https://developer.zendesk.com/api-reference/introduction/rate-limits/
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

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
from csat_hook.helpdesks.base import require_fresh
from csat_hook.helpdesks.base import require_id
from csat_hook.helpdesks.base import require_object
from csat_hook.helpdesks.base import response_json
from csat_hook.helpdesks.base import signature_matches
from csat_hook.helpdesks.base import unless_not_found
from csat_hook.helpdesks.ids import ids_as_text
from csat_hook.helpdesks.placeholders import rendered
from csat_hook.helpdesks.placeholders import rendered_id
from csat_hook.helpdesks.placeholders import unrendered
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Event
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.records import WebhookRequest

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
# The fixed secret Zendesk signs test deliveries with before a webhook (and so its own secret)
# exists. Public: a request it signs proves nothing, so it is acknowledged and ignored.
TEST_SIGNING_SECRET = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ=="  # noqa: S105

STATUS_CHANGED = "zen:event-type:ticket.status_changed"
CLOSED_STATUSES = frozenset({"solved", "closed"})
# {{ticket.status}} display texts that mean "not solved any more" (a reopen trigger).
OPEN_STATUSES = frozenset({"new", "open", "pending", "on-hold", "hold"})

# https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket
TICKET_PATH = "/api/v2/tickets/{ticket}.json"
# https://developer.zendesk.com/api-reference/ticketing/users/users/#show-user
USER_PATH = "/api/v2/users/{user}.json"


class ZendeskOptions(HelpdeskOptions):
    kind: str = "zendesk"
    # https://{subdomain}.zendesk.com; base_url wins when both are set (tests, proxies).
    subdomain: str | None = None
    base_url: str | None = None
    webhook_secret: SecretStr
    tolerance_seconds: float = Field(default=300, gt=0)
    accept_test_deliveries: bool = True
    # API access: email + api_token (Basic "{email}/token:{api_token}"), or an OAuth token.
    email: str | None = None
    api_token: SecretStr | None = None
    oauth_token: SecretStr | None = None
    # Send "status": "solved" with the reply so posting it leaves the ticket solved.
    keep_solved: bool = True
    # Group id → name: events carry only detail.group_id; triggers send the name itself.
    groups: dict[str, str] = Field(default_factory=dict)

    @field_validator("groups", mode="before")
    @classmethod
    def _group_ids_as_text(cls, value: Any) -> Any:
        return ids_as_text(value)

    @model_validator(mode="after")
    def _complete(self) -> ZendeskOptions:
        if self.base_url:
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError("base_url must start with http:// or https://")
            self.base_url = self.base_url.rstrip("/")
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
        return self


def zendesk_signature(secret: SecretStr | str, timestamp: str, body: bytes) -> bytes:
    """The raw HMAC-SHA256 digest Zendesk base64-encodes into the signature header."""
    return hmac_digest(secret, timestamp.encode("utf-8") + body)


class ZendeskHelpdesk(Helpdesk):
    kind = "zendesk"
    Options = ZendeskOptions
    options: ZendeskOptions

    # --- webhooks ---------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        signature = request.header(SIGNATURE_HEADER)
        timestamp = request.header(TIMESTAMP_HEADER)
        if not signature:
            raise InvalidSignatureError(f"missing {SIGNATURE_HEADER}")
        if not timestamp:
            raise InvalidSignatureError(f"missing {TIMESTAMP_HEADER}")
        require_fresh(parse_timestamp(timestamp), self.clock(), self.options.tolerance_seconds)
        if self._signed_with(self.options.webhook_secret, request):
            return
        if self.options.accept_test_deliveries and self._is_test_delivery(request):
            return  # parse() answers it as ignored
        raise InvalidSignatureError(f"{SIGNATURE_HEADER} does not match the body")

    def parse(self, request: WebhookRequest) -> Event:
        # Checked before anything is read: a test body can be anything, even not JSON.
        if self._is_test_delivery(request):
            return Ignored("Zendesk test delivery (signed with the public test secret)")
        payload = require_object(request.json())
        kind = as_text(payload.get("type")) or ""
        if kind.startswith("zen:event-type:"):
            return self._from_event(kind, payload)
        ticket = payload.get("ticket")
        if isinstance(ticket, Mapping):
            return self._from_trigger(payload, ticket, request)
        return Ignored("neither a Zendesk event nor the csat-hook trigger body")

    def _from_event(self, kind: str, payload: Mapping[str, Any]) -> Event:
        if kind != STATUS_CHANGED:
            return Ignored(f"{kind} is not a status change")
        current = _status(dig(payload, "event.current")) or _status(dig(payload, "detail.status"))
        previous = _status(dig(payload, "event.previous"))
        if current in CLOSED_STATUSES and previous in CLOSED_STATUSES:
            # Solved → closed is the same close, archived days later: surveyed already.
            return Ignored(f"status {previous} → {current}: the ticket was already solved")
        if current in CLOSED_STATUSES:
            return self._event_close(payload, require_id(payload, "detail.id", "ticket id"))
        if previous in CLOSED_STATUSES:
            return DialogReopened(self.name, require_id(payload, "detail.id", "ticket id"))
        return Ignored(f"status {previous or '?'} → {current or '?'} is not a close")

    def _event_close(self, payload: Mapping[str, Any], ticket_id: str) -> DialogClosed:
        group = _zendesk_id(dig(payload, "detail.group_id"), "detail.group_id")
        return DialogClosed(
            helpdesk=self.name,
            dialog_id=ticket_id,
            agent=Person(id=_zendesk_id(dig(payload, "detail.assignee_id"), "detail.assignee_id")),
            customer=Person(
                id=_zendesk_id(dig(payload, "detail.requester_id"), "detail.requester_id")
            ),
            team=self.options.groups.get(group) if group else None,
            channel=as_text(dig(payload, "detail.via.channel")),
            closed_at=parse_timestamp(payload.get("time"))
            or parse_timestamp(dig(payload, "detail.updated_at")),
            occurrence=as_id(payload.get("id"), "id") or as_text(payload.get("time")),
        )

    def _from_trigger(
        self, payload: Mapping[str, Any], ticket: Mapping[str, Any], request: WebhookRequest
    ) -> Event:
        if unrendered(ticket.get("id")):
            return Ignored("the trigger body's placeholders were not rendered")
        status = (rendered(ticket.get("status")) or "").lower()
        if status in OPEN_STATUSES:
            return DialogReopened(self.name, require_id(payload, "ticket.id", "ticket id"))
        if status not in CLOSED_STATUSES:
            return Ignored(f"status {status or '(none)'!r} is not a close")
        ticket_id = require_id(payload, "ticket.id", "ticket id")
        assignee = ticket.get("assignee")
        requester = ticket.get("requester")
        updated = rendered(ticket.get("updated_at"))
        return DialogClosed(
            helpdesk=self.name,
            dialog_id=ticket_id,
            agent=_person(assignee, "ticket.assignee"),
            customer=_person(requester, "ticket.requester"),
            team=rendered(ticket.get("group")),
            channel=rendered(ticket.get("via")),
            closed_at=parse_timestamp(updated),
            # A retry repeats the rendered body; a later re-solve has a later update time.
            occurrence=updated or hashlib.sha256(request.body).hexdigest()[:32],
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
        """Add ``reply.text`` as a public comment; keep the ticket solved (``keep_solved``)."""
        ticket: dict[str, Any] = {"comment": {"body": reply.text, "public": True}}
        if self.options.keep_solved:
            ticket["status"] = "solved"
        url = self._url(TICKET_PATH, ticket=reply.dialog_id)
        try:
            response = self.http.request(
                "PUT", url, headers=self._auth_headers(), json={"ticket": ticket}
            )
        except DeliveryError as exc:
            raise _explained(exc) from exc
        return SendResult(external_id=_comment_id(response_json(response)))

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


def _explained(exc: DeliveryError) -> DeliveryError:
    """The HTTP client's error, with what a Zendesk 4xx means for this reply."""
    reasons = {
        422: "Zendesk refused the update (HTTP 422): the ticket is most likely closed, and "
        "closed tickets cannot be updated",
        404: "Zendesk has no such ticket (HTTP 404): deleted, merged or a wrong id",
        403: "Zendesk refused the credentials' access to this ticket (HTTP 403)",
        401: "Zendesk rejected the API credentials (HTTP 401): check email/api_token or "
        "oauth_token",
    }
    if exc.http_status in reasons:
        return DeliveryError(reasons[exc.http_status], retryable=False, http_status=exc.http_status)
    return exc


def _status(value: Any) -> str | None:
    """A status from an event (``"SOLVED"``, or ``{"status": "Solved"}``), lower-case."""
    if isinstance(value, Mapping):
        value = value.get("status")
    text = as_text(value)
    return text.lower() if text else None


def _zendesk_id(value: Any, field: str) -> str | None:
    """An id from an event; Zendesk writes "0" (or null) where there is none."""
    text = as_id(value, field)
    return None if text in (None, "0") else text


def _person(value: Any, field: str) -> Person:
    if not isinstance(value, Mapping):
        return Person()
    return Person(
        id=_zendesk_id(rendered_id(value.get("id"), f"{field}.id"), f"{field}.id"),
        name=rendered(value.get("name")),
        email=rendered(value.get("email")),
    )


def _comment_id(body: Any) -> str | None:
    """The new comment's id from an update's audit, else the audit id."""
    events = dig(body, "audit.events")
    if isinstance(events, list):
        for event in events:
            if isinstance(event, Mapping) and event.get("type") == "Comment":
                return as_text(event.get("id"))
    return as_text(dig(body, "audit.id"))
