"""Reading a ``generic`` webhook: JMESPath expressions into its body, and the event they make.

``mapping`` names where each value is (https://jmespath.org: ``dialog.id``,
``data.item.assignee.name``, ``contacts[0].email``) and which ``event`` names or ``status``
values mean a close or a reopen; anything else is ignored. ``context`` values are kept with
the close, for the reply's templates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jmespath
import jmespath.functions
from jmespath.exceptions import JMESPathError
from jmespath.exceptions import JMESPathTypeError
from pydantic import Field
from pydantic import model_validator

from csat_hook.errors import BadPayloadError
from csat_hook.helpdesks.generic.templates import JMESPATH_OPTIONS
from csat_hook.helpdesks.generic.templates import Expression
from csat_hook.helpdesks.generic.templates import require_context_names
from csat_hook.helpdesks.generic.templates import require_jmespath
from csat_hook.helpdesks.generic.templates import require_one_value
from csat_hook.helpdesks.payload import as_id
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import document_digest
from csat_hook.helpdesks.payload import parse_timestamps
from csat_hook.helpdesks.payload import require_document
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Event
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import shown_name
from csat_hook.settings import StrictModel

# The longest text a mapped time may be: "2026-11-20T12:00:00.123456+05:30" is 32 characters.
TIME_LIMIT = 64


class MappingOptions(StrictModel):
    """JMESPath expressions into the webhook body. Unset (null) means "not in this payload".

    A function given a value the payload lacks reads as missing too (``join(' ', [first,
    last])`` without a last name, ``to_string(team)`` without a team): see :func:`evaluate`.
    """

    event: Expression | None = "event"
    close_events: list[str] = Field(default_factory=lambda: ["dialog.closed"])
    reopen_events: list[str] = Field(default_factory=lambda: ["dialog.reopened"])
    status: Expression | None = None
    closed_values: list[str] = Field(default_factory=lambda: ["closed", "resolved", "solved"])
    reopened_values: list[str] = Field(default_factory=lambda: ["open", "reopened"])
    dialog_id: Expression = "dialog.id"
    agent_id: Expression | None = "agent.id"
    agent_name: Expression | None = "agent.name"
    agent_email: Expression | None = "agent.email"
    customer_id: Expression | None = "customer.id"
    customer_name: Expression | None = "customer.name"
    customer_email: Expression | None = "customer.email"
    team: Expression | None = "team"
    channel: Expression | None = "channel"
    language: Expression | None = "language"
    occurrence: Expression | None = None
    # When the dialog closed / reopened (Unix seconds or milliseconds, or ISO 8601), read as
    # the vendors' times are (payload.parse_timestamp); unset: the payload names none. With
    # both, a reopen delivered after a later close leaves that close's survey queued. The
    # reopen's own time only: never a last activity, which may precede it.
    close_time: Expression | None = None
    reopen_time: Expression | None = None
    # The helpdesk never closes a dialog twice (LiveChat's threads): a close of a dialog whose
    # survey a reopen cancelled is a retry of its first close and re-arms nothing.
    closes_once: bool = False
    context: dict[str, Expression] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _compile(self) -> MappingOptions:
        if self.event is None and self.status is None:
            raise ValueError("set event and/or status: one of them must say a dialog closed")
        for key, expression in self.expressions().items():
            require_jmespath(expression, key)
            require_one_value(expression, key)
        self._can_close()
        require_context_names(self.context)
        return self

    def _can_close(self) -> None:
        """ValueError naming the key when no webhook could ever read as a close, or a value
        means both a close and a reopen (one of them never applies): taken, every webhook
        was answered 200 "ignored" and no survey went out."""
        for key in ("close_events", "reopen_events", "closed_values", "reopened_values"):
            for value in getattr(self, key):
                if not value.strip() or value != value.strip():
                    raise ValueError(
                        f"{key}: {value!r} never matches: a payload's value is read without "
                        "the spaces around it (and an empty one reads as none)"
                    )
        if self.event is not None:
            # With a status too, an event of either list passes on for the status to decide.
            if not self.close_events and (self.status is None or not self.reopen_events):
                raise ValueError(
                    "close_events: empty, so no event is ever a close (name the event "
                    "value(s) that mean a dialog closed)"
                )
            if self.status is None:
                _disjoint("close_events", self.close_events, "reopen_events", self.reopen_events)
        if self.status is not None:
            if not self.closed_values:
                raise ValueError(
                    "closed_values: empty, so no status is ever a close (name the status "
                    "value(s) that mean a dialog closed)"
                )
            _disjoint("closed_values", self.closed_values, "reopened_values", self.reopened_values)

    def expressions(self) -> dict[str, str]:
        """Every configured expression by its key (context values as ``context.<name>``)."""
        found = {
            key: getattr(self, key)
            for key in (
                "event",
                "status",
                "dialog_id",
                "agent_id",
                "agent_name",
                "agent_email",
                "customer_id",
                "customer_name",
                "customer_email",
                "team",
                "channel",
                "language",
                "occurrence",
                "close_time",
                "reopen_time",
            )
            if getattr(self, key)
        }
        found.update({f"context.{k}": v for k, v in self.context.items()})
        return found


def _disjoint(key: str, values: list[str], other_key: str, others: list[str]) -> None:
    """ValueError when a value (case aside, as they are compared) is in both lists."""
    both = sorted(_lower(values) & _lower(others))
    if both:
        raise ValueError(
            f"{key} and {other_key} both hold {both[0]!r} (compared without case): a webhook "
            "saying it cannot mean both; keep it in one of them"
        )


def extract(mapping: MappingOptions, payload: Any) -> dict[str, Any]:
    """Evaluate every configured expression against ``payload`` (raw values; see
    :func:`evaluate`).

    Raises :class:`BadPayloadError` naming the key when an expression's function refuses
    what the payload holds (``join(',', tags)`` given numbers): the sender chose the types.
    """
    return _search(mapping.expressions(), payload)


class UnreadableValueError(BadPayloadError):
    """A mapping function refused the type of a value the payload holds there (``join``
    over numbers). ``key`` is the mapping key, ``problem`` says which function wanted
    which types (never the value)."""

    code = "bad_field"

    def __init__(self, key: str, expression: str, problem: str) -> None:
        super().__init__(
            f"{expression} (mapping.{key}) cannot be evaluated on this payload: {problem}"
        )
        self.key = key
        self.problem = problem


def evaluate(key: str, expression: str, payload: Any) -> Any:
    """``expression`` (mapping ``key``) on ``payload``. A function given null (a value the
    payload lacks: ``join(' ', [first, last])`` without a last name, ``length(email)`` with
    none) reads as missing, as a plain path to that value does; a function given another
    type (``join`` over numbers), or ``floor``/``ceil`` given the infinity or NaN
    ``to_number`` reads ``"inf"`` or ``"1e400"`` as, raises :class:`UnreadableValueError`."""
    try:
        return jmespath.search(expression, payload, options=JMESPATH_OPTIONS)
    except JMESPathTypeError as exc:
        if exc.current_value is None:
            return None
        wanted = " or ".join(exc.expected_types)
        given = jmespath.functions.TYPES_MAP.get(exc.actual_type, exc.actual_type)
        problem = f"{exc.function_name}() takes {wanted}, not {given}"
        raise UnreadableValueError(key, expression, problem) from exc
    except JMESPathError as exc:
        raise UnreadableValueError(key, expression, type(exc).__name__) from exc
    except (OverflowError, ValueError) as exc:  # math.floor/ceil of inf or NaN: was a 500
        problem = "a number that is infinite or not a number (to_number of a text)"
        raise UnreadableValueError(key, expression, problem) from exc


# The expressions that say what happened (a close, a reopen, neither): evaluated before the
# rest, which only a close (a reopen: REOPEN_KEYS) reads.
CLASSIFYING_KEYS = frozenset({"event", "status"})
REOPEN_KEYS = frozenset({"dialog_id", "reopen_time"})


def _search(expressions: Mapping[str, str], payload: Any) -> dict[str, Any]:
    """Each of ``expressions`` (key → JMESPath) evaluated against ``payload`` (:func:`evaluate`)."""
    return {key: evaluate(key, expression, payload) for key, expression in expressions.items()}


def event_of(helpdesk: str, mapping: MappingOptions, payload: Any) -> Event:
    """What the webhook says happened to a dialog of ``helpdesk`` (BadPayloadError when a
    close names no dialog, or the body is a JSON scalar)."""
    require_document(payload)
    expressions = mapping.expressions()
    # What happened is decided first, from the event and status alone: an expression only a
    # close reads (``join(',', tags)`` in a context value) that cannot be evaluated on another
    # event's body must not refuse that event. A 400 makes the vendor retry it, and in the end
    # disable the webhook, for an event that was never a survey's.
    try:
        values = _search({k: v for k, v in expressions.items() if k in CLASSIFYING_KEYS}, payload)
    except UnreadableValueError as exc:
        # The expressions that say what a body is cannot read this one: it is not known to
        # be a close, and a 4xx would only be retried (the body never changes), then the
        # webhook disabled. Ignored, at WARNING: every body shaped so is ignored until the
        # mapping reads it (as a Zendesk or Freshdesk body the rule was not set up to send).
        return Ignored(
            f"mapping.{exc.key} cannot read this body ({exc.problem}): not known to be a close",
            misconfigured=True,
        )
    verdict = _classify(values, mapping)
    if isinstance(verdict, Ignored):
        return verdict
    wanted = REOPEN_KEYS if verdict == "reopened" else expressions.keys() - CLASSIFYING_KEYS
    values.update(_search({k: v for k, v in expressions.items() if k in wanted}, payload))
    dialog_id = as_id(values.get("dialog_id"), _field(mapping, "dialog_id"))
    if dialog_id is None and verdict == "reopened":
        # A reopen names no dialog we could have surveyed (LiveChat's first thread of a
        # chat has no previous one): nothing to cancel.
        return Ignored(f"reopen without a dialog id (mapping.dialog_id = {mapping.dialog_id})")
    if dialog_id is None:
        raise BadPayloadError(
            f"dialog id is missing (mapping.dialog_id = {mapping.dialog_id})",
            code="missing_field",
        )
    if verdict == "reopened":
        return DialogReopened(helpdesk, dialog_id, reopen_times=_times(values.get("reopen_time")))
    context = {
        k.removeprefix("context."): as_text(v, limit=1000)
        for k, v in values.items()
        if k.startswith("context.")
    }
    return DialogClosed(
        helpdesk=helpdesk,
        dialog_id=dialog_id,
        agent=Person(
            as_id(values.get("agent_id"), _field(mapping, "agent_id")),
            as_text(values.get("agent_name")),
            as_text(values.get("agent_email")),
        ),
        customer=Person(
            as_id(values.get("customer_id"), _field(mapping, "customer_id")),
            as_text(values.get("customer_name")),
            as_text(values.get("customer_email")),
        ),
        team=as_text(values.get("team")),
        channel=as_text(values.get("channel")),
        language=as_text(values.get("language")),
        close_times=_times(values.get("close_time")),
        occurrence=as_text(values.get("occurrence")) or document_digest(payload),
        closes_once=mapping.closes_once,
        reply_context=context,
    )


def _classify(values: Mapping[str, Any], mapping: MappingOptions) -> str | Ignored:
    event = (as_text(values.get("event")) or "").lower()
    status = (as_text(values.get("status")) or "").lower()
    if mapping.event is not None:
        if event in _lower(mapping.reopen_events) and mapping.status is None:
            return "reopened"
        if event not in _lower(mapping.close_events) | _lower(mapping.reopen_events):
            return Ignored(f"event {shown_name(event)!r} is not a close event")
    if mapping.status is not None:
        if status in _lower(mapping.closed_values):
            return "closed"
        if status in _lower(mapping.reopened_values):
            return "reopened"
        return Ignored(f"status {shown_name(status)!r} does not mean closed")
    return "reopened" if event in _lower(mapping.reopen_events) else "closed"


def _times(value: Any) -> tuple[datetime, ...]:
    """A mapped time as the vendors' adapters read theirs (:func:`parse_timestamps`): a
    number or a text of at most :data:`TIME_LIMIT` characters, else none (a list, an
    object, a page of digits): the close or reopen is then of unknown time, as without
    the mapping."""
    if isinstance(value, str) and len(value) > TIME_LIMIT:
        return ()
    if not isinstance(value, str | int | float):
        return ()
    return parse_timestamps(value)


def _field(mapping: MappingOptions, key: str) -> str:
    """How an error names a mapped field: the payload path the mapping reads it from."""
    return f"{mapping.expressions().get(key, key)} (mapping.{key})"


def _lower(items: list[str]) -> set[str]:
    return {item.lower() for item in items}


def body_digest(body: bytes) -> str:
    """A body's digest, in a capture's file name."""
    return hashlib.sha256(body).hexdigest()[:32]
