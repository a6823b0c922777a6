"""Freshdesk.

* Close: Freshdesk has no webhook subscriptions. An automation rule on ticket updates ("Status
  is changed to Resolved/Closed") runs the "Trigger webhook" action with the JSON body we
  document (examples/freshdesk-automation-body.json, docs/helpdesks/freshdesk.md).
  ``{{triggered_event}}`` renders as ``{status:{from:2,to:4}}`` (not JSON); status codes are
  2 Open, 3 Pending, 4 Resolved, 5 Closed, 6+ custom. ``{{ticket.status}}`` renders the status
  name. A close is a change to 4/5 (or, without the event, the name Resolved/Closed); a reopen
  a change from 4/5 to anything else; Resolved → Closed is the same close, surveyed already.
  Placeholders: https://support.freshdesk.com/support/solutions/articles/132589-using-webhooks-in-automation-rules
* Authentication: Freshdesk signs nothing. The rule sends either a custom header holding a
  shared secret, or Basic auth ("Requires authentication"); both are compared in constant time.
* Dedup: Freshdesk retries a failed webhook after 5, 30 and 60 minutes with the same body, so
  the rendered ``{{triggered_event}}`` is the close's occurrence.
  https://support.freshdesk.com/support/solutions/articles/11000000028141-receiving-webhook-failure-emails
* Reply: ``POST {base}/api/v2/tickets/{id}/reply`` with ``{"body": "<p>…</p>"}`` (HTML), Basic
  auth ``API_KEY:X``; 429 carries ``Retry-After`` (seconds).
  https://developers.freshdesk.com/api/#reply_ticket, https://developers.freshdesk.com/api/#ratelimit
* Agent: ``GET {base}/api/v2/agents/{id}`` (``contact.name``, ``contact.email``) when the body
  has only an id. https://developers.freshdesk.com/api/#view_agent
"""

from __future__ import annotations

import base64
import binascii
import hmac
import html
import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field
from pydantic import SecretStr
from pydantic import model_validator

from csat_hook.errors import DeliveryError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.base import as_text
from csat_hook.helpdesks.base import dig
from csat_hook.helpdesks.base import quote_id
from csat_hook.helpdesks.base import require_id
from csat_hook.helpdesks.base import require_object
from csat_hook.helpdesks.base import response_json
from csat_hook.helpdesks.base import shared_token_matches
from csat_hook.helpdesks.base import unless_not_found
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

# https://developers.freshdesk.com/api/#reply_ticket
REPLY_PATH = "/api/v2/tickets/{ticket}/reply"
# https://developers.freshdesk.com/api/#view_agent
AGENT_PATH = "/api/v2/agents/{agent}"

CLOSED_CODES = frozenset({"4", "5"})  # Resolved, Closed
# {status:{from:2,to:4}}: the one property change Freshdesk reports for the rule.
STATUS_CHANGE = re.compile(
    r"\{\s*status\s*:\s*\{\s*from\s*:\s*([^,{}]*?)\s*,"
    r"\s*to\s*:\s*([^,{}]*?)\s*\}\s*\}",
    re.IGNORECASE,
)


class FreshdeskOptions(HelpdeskOptions):
    kind: str = "freshdesk"
    # https://{domain}.freshdesk.com; base_url wins when both are set (tests, custom domains).
    domain: str | None = None
    base_url: str | None = None
    api_key: SecretStr
    # How the automation rule proves itself: a shared secret in a custom header…
    webhook_token: SecretStr | None = None
    webhook_token_header: str = "X-Csat-Hook-Token"  # noqa: S105 (a header name)
    # …and/or Basic auth ("Requires authentication" in the rule).
    webhook_username: str | None = None
    webhook_password: SecretStr | None = None
    # Status names meaning closed, for bodies without {{triggered_event}} (case-insensitive).
    closed_statuses: list[str] = Field(default_factory=lambda: ["Resolved", "Closed"])

    @model_validator(mode="after")
    def _complete(self) -> FreshdeskOptions:
        if self.base_url:
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError("base_url must start with http:// or https://")
            self.base_url = self.base_url.rstrip("/")
        elif self.domain:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", self.domain):
                raise ValueError("domain must be the name before .freshdesk.com, e.g. acme")
            self.base_url = f"https://{self.domain}.freshdesk.com"
        else:
            raise ValueError("set domain (https://<domain>.freshdesk.com) or base_url")
        basic = (self.webhook_username is not None, self.webhook_password is not None)
        if any(basic) and not all(basic):
            raise ValueError("webhook_username and webhook_password go together (Basic auth)")
        if self.webhook_token is None and not all(basic):
            raise ValueError(
                "set webhook_token (a custom header) or webhook_username + "
                "webhook_password (Basic auth): Freshdesk signs nothing"
            )
        if not self.webhook_token_header.strip():
            raise ValueError("webhook_token_header must name a header")
        return self


class FreshdeskHelpdesk(Helpdesk):
    kind = "freshdesk"
    Options = FreshdeskOptions
    options: FreshdeskOptions

    # --- webhooks ---------------------------------------------------------------------------

    def verify(self, request: WebhookRequest) -> None:
        options = self.options
        if options.webhook_token is not None and shared_token_matches(
            request, options.webhook_token, header=options.webhook_token_header, query=None
        ):
            return
        if options.webhook_password is not None and self._basic_matches(request):
            return
        raise InvalidSignatureError("missing or wrong webhook credentials")

    def _basic_matches(self, request: WebhookRequest) -> bool:
        assert self.options.webhook_username is not None
        assert self.options.webhook_password is not None
        header = request.header("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = (
            f"{self.options.webhook_username}:{self.options.webhook_password.get_secret_value()}"
        ).encode()
        return hmac.compare_digest(expected, given)

    def parse(self, request: WebhookRequest) -> Event:
        payload = require_object(request.json())
        ticket = payload.get("ticket")
        if not isinstance(ticket, Mapping):
            return Ignored("not the csat-hook automation body (no ticket object)")
        if unrendered(ticket.get("id")):
            return Ignored("the automation body's placeholders were not rendered")
        event = rendered(payload.get("triggered_event"), limit=500)
        status = rendered(ticket.get("status"))
        change = STATUS_CHANGE.search(event) if event else None
        if change:
            before, after = change.group(1), change.group(2)
            if self._closed(after) and self._closed(before):
                return Ignored(f"status {before} → {after}: the ticket was already resolved")
            if self._closed(after):
                return self._close(payload, ticket, occurrence=_compact(event or ""))
            if self._closed(before):
                return DialogReopened(self.name, require_id(payload, "ticket.id", "ticket id"))
            return Ignored(f"status {before} → {after} is not a close")
        if event:
            return Ignored(f"{_compact(event)[:60]} is not a status change")
        if self._closed(status):
            # No {{triggered_event}} in the body: the status name is all there is.
            return self._close(payload, ticket, occurrence=f"status:{(status or '').lower()}")
        return Ignored(f"status {status or '(none)'!r} is not a close")

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
            agent=_person(ticket.get("agent"), "ticket.agent"),
            customer=_person(ticket.get("requester"), "ticket.requester"),
            team=rendered(ticket.get("group")),
            channel=rendered(ticket.get("source")),
            occurrence=occurrence,
        )

    # --- the API ----------------------------------------------------------------------------

    def send_reply(self, reply: Reply) -> SendResult:
        """Post ``reply.text`` as a public reply, HTML-escaped with the survey link clickable."""
        try:
            response = self.http.request(
                "POST",
                self._url(REPLY_PATH, ticket=reply.dialog_id),
                headers=self._auth_headers(),
                json={"body": reply_html(reply.text, reply.link)},
            )
        except DeliveryError as exc:
            raise _explained(exc) from exc
        body = response_json(response)
        return SendResult(external_id=as_text(body.get("id")) if isinstance(body, dict) else None)

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


def reply_html(text: str, link: str) -> str:
    """``text`` as one HTML paragraph: escaped, line breaks kept, ``link`` made clickable."""
    anchor = f'<a href="{html.escape(link, quote=True)}">{html.escape(link)}</a>'
    pieces = text.split(link) if link else [text]
    escaped = anchor.join(html.escape(piece, quote=False) for piece in pieces)
    return "<p>" + escaped.replace("\r\n", "\n").replace("\n", "<br>") + "</p>"


def _explained(exc: DeliveryError) -> DeliveryError:
    """The HTTP client's error, with what a Freshdesk 4xx means for this reply."""
    reasons = {
        404: "Freshdesk has no such ticket (HTTP 404): deleted or a wrong id",
        401: "Freshdesk rejected the API key (HTTP 401)",
        403: "Freshdesk refused the API key's access to this ticket (HTTP 403)",
    }
    if exc.http_status in reasons:
        return DeliveryError(reasons[exc.http_status], retryable=False, http_status=exc.http_status)
    return exc


def _person(value: Any, field: str) -> Person:
    if not isinstance(value, Mapping):
        return Person()
    return Person(
        id=rendered_id(value.get("id"), f"{field}.id"),
        name=rendered(value.get("name")),
        email=rendered(value.get("email")),
    )


def _compact(event: str) -> str:
    return re.sub(r"\s+", "", event)
