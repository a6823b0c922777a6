"""The helpdesk adapter interface and what adapters share.

An adapter does four things, each for one vendor:

* :meth:`Helpdesk.verify` checks the sender on the raw body, before anything is parsed (with
  the current secret, else a previous one a rotation keeps for a while: it says which);
* :meth:`Helpdesk.parse` turns a verified webhook into a :data:`~csat_hook.helpdesks.records.Event`;
* :meth:`Helpdesk.send_reply` posts the survey reply into the same dialog;
* :meth:`Helpdesk.fetch_agent` (optional) looks an agent up by id for name and email, and
  :meth:`Helpdesk.find_agent` (optional) finds who handled a dialog whose close named no agent;
* :meth:`Helpdesk.find_reply` (where :attr:`Helpdesk.supports_lookup`) finds, after an attempt
  whose outcome is unknown (a timeout, a dropped connection), whether the reply was posted;
* :meth:`Helpdesk.post_note` (where :attr:`Helpdesk.supports_notes`) posts an internal note
  (an alert about the customer's rating) into the dialog, and :meth:`Helpdesk.find_note`
  finds one whose outcome is unknown, as ``find_reply`` does for replies.

Adapters never sleep or retry: they raise :class:`~csat_hook.errors.DeliveryError` and the
delivery worker decides. They build from plain options validated by their ``Options`` model.

What adapters share beside the interface: :mod:`~csat_hook.helpdesks.signing` (checking a
sender), :mod:`~csat_hook.helpdesks.payload` (reading a payload) and
:mod:`~csat_hook.helpdesks.calls` (vendor API calls and look-ups).
"""

from __future__ import annotations

import abc
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any
from typing import ClassVar

from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.clock import Clock
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.ids import ids_as_text
from csat_hook.helpdesks.records import Event
from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.signing import BASIC
from csat_hook.helpdesks.signing import SIGNATURE
from csat_hook.helpdesks.signing import PreviousSecret
from csat_hook.helpdesks.signing import challenge
from csat_hook.helpdesks.signing import check_previous
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.links.form import check_base_url
from csat_hook.links.form import check_link
from csat_hook.settings import StrictModel

# Agents remembered per adapter (name and email looked up through the vendor API).
AGENT_CACHE_LIMIT = 10_000


class AgentInfo(StrictModel):
    name: str | None = None
    email: str | None = None


class AgentLookupError(DeliveryError):
    """A failed agent look-up, carrying what was known when it failed (``known``: the close's
    agent, or an id :meth:`Helpdesk.find_agent` found), to send with if the caller gives up."""

    def __init__(self, cause: DeliveryError, known: Person) -> None:
        super().__init__(
            cause.message,
            retryable=cause.retryable,
            http_status=cause.http_status,
            retry_after=cause.retry_after,
            vendor_reason=cause.vendor_reason,
            outcome_unknown=cause.outcome_unknown,
        )
        self.known = known


class HelpdeskOptions(StrictModel):
    """Options every adapter accepts, on top of its own."""

    # The options holding the credentials an adapter sends in the Authorization header (None:
    # it sends none there). A base_url's user:password@ would replace that header (requests
    # puts a URL's credentials over it): refused for such an adapter.
    authorization_options: ClassVar[str | None] = None
    # A rotation's keys: each option holding previous secrets (dotted below the helpdesk, as
    # ``auth.previous_tokens``) → the option holding the current one they are accepted beside.
    rotated_secrets: ClassVar[dict[str, str]] = {}

    kind: str
    # Static agent directory, id → name/email: wins over the vendor API, needs no API access.
    agents: dict[str, AgentInfo] = Field(default_factory=dict)
    agent_cache_seconds: float = Field(default=3600, ge=0)
    # Link to a ticket for reports and alerts, e.g. https://desk.example.com/tickets/{ticket}
    ticket_url_template: str | None = None

    @field_validator("ticket_url_template")
    @classmethod
    def _ticket_link(cls, value: str | None) -> str | None:
        # Reports and alerts link to it (Telegram refuses a link without a host); the dialog
        # id goes in as one escaped segment (ticket_url), never into the scheme or host.
        if value is None or not value.strip():
            return None
        text = value.strip()
        # The link a dialog id makes must be one replies and chats can carry as it is (the
        # survey links' check: no credentials, a readable port, no space or quote).
        try:
            check_link(text.replace("{ticket}", "1"))
        except ValueError as exc:
            problem = f"{exc}; "
        else:
            problem = ""
        if problem or "{ticket}" not in text or "{" in urllib.parse.urlsplit(text).netloc:
            raise ValueError(
                f"ticket_url_template: {problem}an http(s) link with {{ticket}} after the host, "
                "e.g. https://desk.example.com/tickets/{ticket}"
            )
        return text

    @field_validator("base_url", check_fields=False)
    @classmethod
    def _api_base_url(cls, value: str | None) -> str | None:
        """A vendor API's ``base_url`` (the adapters that have one): an absolute http(s)
        address the paths are appended to, checked as a link is (a host, a readable port, no
        space; a user:password@ is let through); a path is kept (a self-hosted install under
        one), a query or a fragment refused (the paths went after it). It was taken as
        written: without a scheme, every reply failed at delivery; ``https://[::1`` ended
        check-config in a traceback. Messages quote nothing of it (a pasted token may be in
        it). A user:password@ is refused when the adapter authenticates with the Authorization
        header (:attr:`authorization_options`): sent, it replaced the configured token, and
        every reply was refused (401) naming nothing."""
        if value is None:
            return None
        checked = check_base_url(value)
        if cls.authorization_options and "@" in urllib.parse.urlsplit(checked).netloc:
            raise ValueError(
                "no user:password@ in it: it would be sent in place of the "
                f"{cls.authorization_options} this helpdesk's API is called with, which "
                "go in their own keys; give the address alone, e.g. https://desk.example.com"
            )
        return checked

    @field_validator("agents", mode="before")
    @classmethod
    def _agent_ids_as_text(cls, value: Any) -> Any:
        # YAML reads `agents: {14: {...}}` with an integer key; payload ids compare as text.
        return ids_as_text(value)

    @model_validator(mode="after")
    def _previous_secrets(self) -> HelpdeskOptions:
        # Every adapter's rotation checked alike: each previous secret set only beside a
        # current one, and none of them the current one or given twice.
        for key, current in self.rotated_secrets.items():
            check_previous(self._option(current), self._option(key), key=key, current_key=current)
        return self

    def _option(self, dotted: str) -> Any:
        """The value of an option named as in :attr:`rotated_secrets` (``auth.token``)."""
        value: Any = self
        for part in dotted.split("."):
            value = getattr(value, part)
        return value

    def previous_secret_counts(self) -> dict[str, int]:
        """How many previous secrets each option of :attr:`rotated_secrets` holds, those that
        hold any (check-config warns while one does: they are for a rotation, then removed)."""
        counts = {key: len(self._option(key)) for key in self.rotated_secrets}
        return {key: count for key, count in counts.items() if count}


class Helpdesk(abc.ABC):
    """Base class of every adapter. ``name`` is the configured instance (URL segment)."""

    kind: ClassVar[str]
    Options: ClassVar[type[HelpdeskOptions]] = HelpdeskOptions
    # True where find_reply is implemented (and, for configurable adapters, configured).
    supports_lookup: ClassVar[bool] = False
    # True where post_note is implemented (and configured); find_note where both are True.
    supports_notes: ClassVar[bool] = False
    supports_note_lookup: ClassVar[bool] = False

    def __init__(
        self, name: str, options: HelpdeskOptions, *, http: HttpClient, clock: Clock
    ) -> None:
        self.name = name
        self.options = options
        self.http = http
        self.clock = clock
        self._agent_cache: dict[str, tuple[float, Person]] = {}
        self._agent_lock = threading.Lock()

    # --- the vendor-specific part ----------------------------------------------------------

    @abc.abstractmethod
    def verify(self, request: WebhookRequest) -> PreviousSecret | None:
        """Raise InvalidSignatureError unless the vendor sent exactly this body. None when
        the current secret (or token, or no check at all) proved it; when only a previous
        one of a rotation did (an option of :attr:`HelpdeskOptions.rotated_secrets`), which.
        The current one is tried first and alone: without previous secrets a request costs
        what it did before they existed."""

    def credentials(self) -> list[tuple[str, str | None]]:
        """How this helpdesk's sender proves itself, for the challenge of a 401: ``(scheme,
        header)`` pairs as :func:`csat_hook.helpdesks.signing.challenge` takes them, in the
        order :meth:`verify` tries them (override: the base says a signature, no header)."""
        return [(SIGNATURE, None)]

    def proof_headers(self) -> list[str]:
        """Every header :meth:`verify` reads its sender's proof from, as configured: the
        signature, token or ``Authorization`` header, and a signed timestamp's. The intake
        refuses a request that failed verification with one of them sent twice as a 400
        naming it (:func:`csat_hook.intake.receive.repeated_proof_header`). The base: the
        headers :meth:`credentials` names (``Authorization`` for Basic); an adapter that reads
        more (a timestamp) says so."""
        return [
            name if name is not None else "Authorization"
            for scheme, name in self.credentials()
            if name is not None or scheme == BASIC
        ]

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` of this helpdesk's 401: what :meth:`credentials` names,
        this instance's name as the realm; never a secret."""
        return challenge(self.name, self.credentials())

    @abc.abstractmethod
    def parse(self, request: WebhookRequest) -> Event:
        """Return DialogClosed, DialogReopened or Ignored; raise BadPayloadError if malformed."""

    @abc.abstractmethod
    def send_reply(self, reply: Reply) -> SendResult:
        """Post ``reply.text`` into the dialog; raise DeliveryError on failure.

        A reply never undoes what was done in the dialog since its close: an adapter whose
        reply sets a status (or whose vendor may not report a reopen in time) reads the
        dialog's status right before it (a timeout, bounded retries; its failure an outcome
        known: :func:`~csat_hook.helpdesks.calls.status_before_write`), and for a dialog open
        again raises :class:`~csat_hook.errors.DialogReopenedError` without posting
        (``reply.cancel_on_reopen``), or posts without changing the status. A read that tells
        nothing (refused for good, no status in the answer) is no sign of a reopen: the reply
        goes as it went before such reads."""

    def fetch_agent(self, agent: Person, context: Mapping[str, Any]) -> Person | None:
        """Look an agent up through the vendor API (override where the vendor has one)."""
        return None

    def find_agent(self, dialog_id: str, context: Mapping[str, Any]) -> Person | None:
        """Who handled ``dialog_id``, asked of the vendor API, for a close that named no agent
        (override where the vendor's close events carry none). Raises DeliveryError like
        :meth:`fetch_agent`."""
        return None

    def find_reply(self, reply: Reply, *, since: datetime) -> SendResult | None:
        """After an unknown outcome: the message carrying ``reply.marker`` that this helpdesk's
        API shows in the dialog, posted at or after ``since`` (give a few minutes of clock
        skew), as a SendResult (its message id), or None when there is none. Raises
        DeliveryError: retryable when the vendor cannot be asked now, permanent when it never
        can (no permission to list): the caller then falls back to sending again.

        A found reply is recorded as sent and never posted again, so an adapter whose
        ``send_reply`` does more after a posted reply (Intercom's re-close of a conversation
        the reply reopened) does it here for a found one too, without raising for it."""
        raise NotImplementedError

    @classmethod
    def takes_notes(cls, options: HelpdeskOptions) -> bool:
        """Whether an adapter built from ``options`` can post notes (for checks made before
        adapters exist: the configuration, the sync deciding where alerts go)."""
        return cls.supports_notes

    def post_note(self, note: Note) -> SendResult:
        """Post ``note.text`` as an internal note (private: the customer never sees it) into
        the dialog, without changing its status; raise DeliveryError on failure."""
        raise DeliveryError(
            f"helpdesk {self.name!r} ({self.kind}) cannot post internal notes", retryable=False
        )

    def find_note(self, note: Note, *, since: datetime) -> SendResult | None:
        """After an unknown outcome: our internal note carrying ``note.marker``, posted at or
        after ``since``, or None. Raises DeliveryError as :meth:`find_reply` does."""
        raise NotImplementedError

    # --- shared behaviour ------------------------------------------------------------------

    def resolve_agent(
        self, agent: Person, context: Mapping[str, Any], *, dialog_id: str | None = None
    ) -> Person:
        """Fill in name and email: static map, then cache, then the vendor API. An agent not
        known at all is first asked for by ``dialog_id`` (:meth:`find_agent`).

        What the vendor API answers is made storable and fitted to the survey's agent columns
        (:meth:`Person.storable`), as a webhook's agent is at intake, before it is cached or
        returned: the caller stores it and puts it into the survey's link and text.

        Raises :class:`AgentLookupError` when the vendor lookup fails; the caller decides
        whether to retry or to send with what is known (its ``known``).
        """
        if agent.name and agent.email:
            return agent
        if not agent.known and dialog_id:
            try:
                found_by_dialog = self.find_agent(dialog_id, context)
            except DeliveryError as exc:
                raise AgentLookupError(exc, agent) from exc
            if found_by_dialog is not None:
                agent = found_by_dialog.storable()
            if agent.name and agent.email:
                return agent
        if agent.id and agent.id in self.options.agents:
            info = self.options.agents[agent.id]
            return agent.merged(Person(id=agent.id, name=info.name, email=info.email).storable())
        if not agent.id:
            return agent
        cached = self._cached_agent(agent.id)
        if cached is not None:
            return agent.merged(cached)
        # A miss is remembered too, so an unknown id does not cost a call per reply.
        try:
            fetched = self.fetch_agent(agent, context)
        except DeliveryError as exc:
            raise AgentLookupError(exc, agent) from exc
        found = fetched.storable() if fetched is not None else Person(id=agent.id)
        with self._agent_lock:
            self._agent_cache.pop(agent.id, None)  # re-inserted last: the newest
            self._agent_cache[agent.id] = (time.monotonic(), found)
            # Agent ids come from webhooks: the cache must not grow with every id a sender
            # makes up. The oldest entries go first (dicts keep insertion order).
            while len(self._agent_cache) > AGENT_CACHE_LIMIT:
                del self._agent_cache[next(iter(self._agent_cache))]
        return agent.merged(found)

    def _cached_agent(self, agent_id: str) -> Person | None:
        with self._agent_lock:
            entry = self._agent_cache.get(agent_id)
        if entry and time.monotonic() - entry[0] < self.options.agent_cache_seconds:
            return entry[1]
        return None

    def payload_secrets(self) -> list[str]:
        """Secrets a verified payload itself carries (a token in a body field), which
        ``csat-hook inspect-payload`` must not print."""
        return []

    def explain(self, request: WebhookRequest) -> dict[str, Any]:
        """What :meth:`parse` makes of a payload, for ``csat-hook inspect-payload``."""
        event = self.parse(request)
        return {"result": type(event).__name__, **asdict(event)}


def api_prefixed(base_url: str, prefix: str) -> bool:
    """Whether ``base_url``'s path ends with ``prefix`` (any letter case, a trailing slash
    aside): the API's own prefix (``/api/v2``), which the adapter's paths start with, pasted
    from the vendor's reference into ``base_url``, doubled in every call."""
    path = urllib.parse.urlsplit(base_url).path.rstrip("/").lower()
    return path.endswith(prefix)


def ticket_url(template: str | None, dialog_id: str) -> str | None:
    """The dialog's page from a ``ticket_url_template``, the id escaped as one URL segment
    (``a/b`` stays one id, ``?`` starts no query); None without a template."""
    if not template:
        return None
    return template.replace("{ticket}", urllib.parse.quote(dialog_id, safe=""))
