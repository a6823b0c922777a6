"""Asking a ``generic`` helpdesk about the agent: ``agent_lookup``.

``by_dialog`` asks who handled a dialog, for closes that name no agent; ``by_id`` reads an
agent's profile, for closes that name the agent by id only (``examples/crisp.yaml``,
``examples/livechat.yaml``). A 404 is a miss (the reply goes without a name); other failures
are retried by the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import SecretStr
from pydantic import model_validator

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.calls import response_json
from csat_hook.helpdesks.generic.templates import RequestOptions
from csat_hook.helpdesks.generic.templates import render
from csat_hook.helpdesks.generic.templates import rendered_parts
from csat_hook.helpdesks.generic.templates import search_or_none
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.settings import StrictModel


class AgentRequestOptions(RequestOptions):
    """One request of the agent look-up, and what it reads from the answer.

    ``url``, ``headers``, ``query`` and ``body`` are templates like the reply request's
    (``headers`` and ``query`` values are secrets). ``agent`` is a JMESPath to the agent in
    the answer: an object, or a list whose first object is taken (``users[?type=='agent']``);
    ``id``, ``name`` and ``email`` are JMESPaths evaluated on that object (null: not read).
    """

    jmespath_fields = ("agent", "id", "name", "email")

    method: Literal["GET", "POST"] = "GET"
    url: str
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    query: dict[str, SecretStr] = Field(default_factory=dict)
    body: Any = None
    agent: str = "@"
    id: str | None = "id"
    name: str | None = "name"
    email: str | None = "email"


class AgentLookupOptions(StrictModel):
    """Finding the agent's name and e-mail through the helpdesk's API when a close does not
    carry them (looked up when the reply is sent; a failure is retried, and the last attempt
    sends with what is known).

    ``by_dialog`` asks who handled the dialog (placeholders ``{dialog_id}`` and the context
    values), for a close that names no agent (Crisp, LiveChat). ``by_id`` reads an agent's
    profile and must use ``{agent_id}``, for a close (or a ``by_dialog`` answer) that names the
    agent by id only. A static ``agents:`` entry wins over ``by_id``, whose answers (a miss
    too) are remembered for ``agent_cache_seconds``.
    """

    by_dialog: AgentRequestOptions | None = None
    by_id: AgentRequestOptions | None = None

    @model_validator(mode="after")
    def _useful(self) -> AgentLookupOptions:
        if self.by_dialog is None and self.by_id is None:
            raise ValueError("set by_dialog and/or by_id")
        if self.by_dialog is not None and not (self.by_dialog.id or self.by_dialog.name):
            raise ValueError("by_dialog: read the agent's id and/or name")
        if self.by_id is not None and not (self.by_id.name or self.by_id.email):
            raise ValueError("by_id: read the agent's name and/or email")
        return self


def ask_agent(
    http: HttpClient, name: str, spec: AgentRequestOptions, values: Mapping[str, str]
) -> Person | None:
    """The agent ``spec`` finds with ``values`` filled in; None for a 404 or an answer that
    names no agent. DeliveryError (retryable) for an answer that is not JSON."""
    url, headers, params = rendered_parts(spec, values)
    kwargs: dict[str, Any] = {}
    if spec.body is not None:
        kwargs["json"] = render(spec.body, values)
    try:
        response = http.request(
            spec.method, url, headers=headers, params=params, retries=2, **kwargs
        )
    except DeliveryError as exc:
        if exc.http_status == 404:
            return None  # no such dialog or agent: sent without a name, like a miss
        raise
    answer = response_json(response)
    if answer is None:
        # A proxy's page, a half-deployed API: worth asking again later.
        raise DeliveryError(f"{name}: the agent look-up answer is not JSON", retryable=True)
    return _agent_in(spec, answer)


def _agent_in(spec: AgentRequestOptions, answer: Any) -> Person | None:
    """The agent ``spec`` reads from a look-up answer; None when the answer names none. An
    expression the answer's values do not fit (a function given another type: ``join`` over
    numbers) reads as missing, as a field the answer lacks."""
    found = search_or_none(spec.agent, answer)
    if isinstance(found, list):
        found = next((item for item in found if isinstance(item, Mapping)), None)
    if not isinstance(found, Mapping):
        return None

    def read(expression: str | None) -> str | None:
        return as_text(search_or_none(expression, found)) if expression else None

    person = Person(read(spec.id), read(spec.name), read(spec.email))
    return person if person.known else None
