"""The helpdesk adapter interface and what adapters share.

An adapter does four things, each for one vendor:

* :meth:`Helpdesk.verify` checks the sender on the raw body, before anything is parsed;
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
"""

from __future__ import annotations

import abc
import base64
import hashlib
import hmac
import threading
import time
import urllib.parse
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import ClassVar

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator

from csat_hook.clock import Clock
from csat_hook.errors import BadPayloadError
from csat_hook.errors import DeliveryError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.ids import ids_as_text
from csat_hook.helpdesks.records import Event
from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.transport import HttpClient
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

    kind: str
    # Static agent directory, id → name/email: wins over the vendor API, needs no API access.
    agents: dict[str, AgentInfo] = Field(default_factory=dict)
    agent_cache_seconds: float = Field(default=3600, ge=0)
    # Link to a ticket for reports, e.g. https://desk.example.com/tickets/{ticket}
    ticket_url_template: str | None = None

    @field_validator("agents", mode="before")
    @classmethod
    def _agent_ids_as_text(cls, value: Any) -> Any:
        # YAML reads `agents: {14: {...}}` with an integer key; payload ids compare as text.
        return ids_as_text(value)


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
    def verify(self, request: WebhookRequest) -> None:
        """Raise InvalidSignatureError unless the vendor sent exactly this body."""

    @abc.abstractmethod
    def parse(self, request: WebhookRequest) -> Event:
        """Return DialogClosed, DialogReopened or Ignored; raise BadPayloadError if malformed."""

    @abc.abstractmethod
    def send_reply(self, reply: Reply) -> SendResult:
        """Post ``reply.text`` into the dialog; raise DeliveryError on failure."""

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
        can (no permission to list): the caller then falls back to sending again."""
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

        Raises :class:`AgentLookupError` when the vendor lookup fails; the caller decides
        whether to retry or to send with what is known (its ``known``).
        """
        if agent.name and agent.email:
            return agent
        if not agent.known and dialog_id:
            try:
                agent = self.find_agent(dialog_id, context) or agent
            except DeliveryError as exc:
                raise AgentLookupError(exc, agent) from exc
            if agent.name and agent.email:
                return agent
        if agent.id and agent.id in self.options.agents:
            info = self.options.agents[agent.id]
            return agent.merged(Person(id=agent.id, name=info.name, email=info.email))
        if not agent.id:
            return agent
        cached = self._cached_agent(agent.id)
        if cached is not None:
            return agent.merged(cached)
        # A miss is remembered too, so an unknown id does not cost a call per reply.
        try:
            found = self.fetch_agent(agent, context) or Person(id=agent.id)
        except DeliveryError as exc:
            raise AgentLookupError(exc, agent) from exc
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


# --- helpers for verify() -------------------------------------------------------------------


def hmac_digest(secret: SecretStr | str, message: bytes, algorithm: str = "sha256") -> bytes:
    key = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return hmac.new(key.encode("utf-8"), message, getattr(hashlib, algorithm)).digest()


def signature_matches(
    expected: bytes, given: str | None, *, encoding: str, prefix: str = ""
) -> bool:
    """Constant-time comparison of a received signature header with the expected digest."""
    if not given:
        return False
    given = given.strip()
    if prefix:
        if not given.lower().startswith(prefix.lower()):
            return False
        given = given[len(prefix) :]
    if encoding == "hex":
        expected_text = expected.hex()
        given = given.lower()
    else:
        expected_text = base64.b64encode(expected).decode("ascii")
    return hmac.compare_digest(expected_text.encode("ascii"), given.encode("utf-8", "replace"))


def require_fresh(timestamp: datetime | None, now: datetime, tolerance_seconds: float) -> None:
    """Reject a signed timestamp that is missing or outside the tolerance window."""
    if timestamp is None:
        raise InvalidSignatureError("missing or unreadable signature timestamp")
    if abs((now - timestamp).total_seconds()) > tolerance_seconds:
        raise InvalidSignatureError(
            f"signature timestamp outside the {tolerance_seconds:g} s tolerance window "
            "(replayed or clock skew)"
        )


def shared_token_matches(
    request: WebhookRequest, token: SecretStr, *, header: str | None, query: str | None
) -> bool:
    """True when the shared token arrives in the header or the query parameter."""
    expected = token.get_secret_value().encode("utf-8")
    candidates = []
    if header:
        value = request.header(header)
        if value and header.lower() == "authorization" and " " in value:
            value = value.split(" ", 1)[1]  # "Bearer <token>" / "Token <token>"
        candidates.append(value)
    if query:
        candidates.append(request.query.get(query))
    return any(
        value is not None and hmac.compare_digest(expected, value.encode("utf-8", "replace"))
        for value in candidates
    )


# --- helpers for vendor API calls ------------------------------------------------------------


def quote_id(value: str) -> str:
    """An id as one URL path segment (``/`` and every other reserved character escaped)."""
    return urllib.parse.quote(value, safe="")


def response_json(response: Any) -> Any:
    """The response's JSON body; None when it has none or it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def unless_not_found(call: Callable[[], Any]) -> Any:
    """``call()``'s response, or None when the vendor answered 404 (no such record)."""
    try:
        return call()
    except DeliveryError as exc:
        if exc.http_status == 404:
            return None
        raise


# --- helpers for find_reply() ----------------------------------------------------------------

# Vendor clocks and ours disagree by a little; a message stamped this much before ``since``
# still counts, and paging stops only past it.
LOOKUP_CLOCK_SKEW = timedelta(minutes=5)
# A marker shorter than this could occur by chance in a customer's text.
MIN_MARKER_LENGTH = 16


def lookup_marker(reply: Reply | Note) -> str:
    """``reply.marker``, checked: a permanent DeliveryError when it cannot identify a reply
    (the survey's signed reference) or a note (the alert's reference)."""
    marker = reply.marker.strip()
    if len(marker) < MIN_MARKER_LENGTH or any(c.isspace() or c in "<>&\"'" for c in marker):
        what = "note" if isinstance(reply, Note) else "reply"
        raise DeliveryError(
            f"the {what} has no usable marker to look for (its signed or alert reference)",
            retryable=False,
        )
    return marker


def lookup_floor(since: datetime) -> datetime:
    """The oldest creation time a looked-for message may have: ``since`` less the skew."""
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return since - LOOKUP_CLOCK_SKEW


def carries_marker(marker: str, *texts: Any) -> bool:
    """True when any of ``texts`` (a vendor's text fields: plain, HTML...) holds ``marker``.

    The marker's alphabet (base64url and ``.``) survives HTML escaping, and a link around it
    changes only its ``&`` separators, so the bare marker is searched as it is.
    """
    return any(isinstance(text, str) and marker in text for text in texts)


def lookup_refused(
    exc: DeliveryError, vendor: str, *, credentials: str, what: str = "conversation"
) -> DeliveryError:
    """A look-up failure as the caller must act on it.

    401/403: permanent, naming the ``credentials`` option that lacks the right to list;
    404: permanent (the dialog is gone); anything else unchanged (429/5xx/timeouts retryable).
    """
    if exc.http_status in (401, 403):
        return exc.reworded(
            f"{vendor} refused to list the {what}'s messages (HTTP {exc.http_status}): "
            f"{credentials}",
            retryable=False,
        )
    if exc.http_status == 404:
        return exc.reworded(
            f"{vendor} has no such {what} (HTTP 404): deleted, merged or a wrong id",
            retryable=False,
        )
    return exc


# --- helpers for parse() --------------------------------------------------------------------


def dig(data: Any, path: str) -> Any:
    """``data["a"]["b"][0]`` for ``"a.b.0"``; None when any step is missing."""
    current = data
    for part in path.split("."):
        if isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else None
        else:
            return None
        if current is None:
            return None
    return current


def as_text(value: Any, *, limit: int | None = None) -> str | None:
    """A scalar as a trimmed string (ints stay exact); None for missing, empty or non-scalar.

    For labels (names, statuses, channels): lenient about types, never clipped unless
    ``limit`` says so (the database's column sizes are applied in one place, at intake). Ids go
    through :func:`as_id`, which refuses the wrong types.
    """
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if limit is not None:
        text = text[:limit]
    return text or None


def as_id(value: Any, field: str) -> str | None:
    """An id as text: a string (trimmed) or an integer; None when missing or empty.

    Raises :class:`BadPayloadError` naming ``field`` for any other type (``true``, ``5.0``,
    an object, a list): an id of the wrong type is a malformed webhook, not an unknown id.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise BadPayloadError(
        f"{field} must be a string or an integer, not {_json_type(value)}", code="bad_id"
    )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a fraction"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def require_object(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise BadPayloadError("the JSON body must be an object", code="not_an_object")
    return payload


def require_id(payload: Any, path: str, what: str) -> str:
    """The id at ``path`` (see :func:`dig` and :func:`as_id`); BadPayloadError when missing."""
    value = as_id(dig(payload, path), path)
    if value is None:
        raise BadPayloadError(f"{what} is missing ({path})", code="missing_field")
    return value


def parse_timestamp(value: Any) -> datetime | None:
    """Unix seconds or milliseconds (number or text), or ISO 8601; None when unreadable.

    Never raises: integers too large for a float, infinities, NaN and dates outside the
    years 1-9999 are unreadable, like any other nonsense.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            value = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if not isinstance(value, int | float):
        return None
    try:
        number = float(value)  # OverflowError for integers beyond a float's range
        if number > 1e11:  # milliseconds
            number /= 1000
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
