"""What the customer reads when the agent's name is unknown (issue #10): never a raw id or an
e-mail as a name, the template without an agent in the customer's language instead, and a
readable value in the pre-filled form's agent field."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.helpdesks.records import Event
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.links import SurveyConfig
from csat_hook.outbox.delivery import Delivery
from csat_hook.outbox.delivery import Sent
from csat_hook.outbox.delivery import deliver_one
from tests.conftest import FakeClock
from tests.helpers import link_fields

AGENT_NAME_FIELD = "entry.1000001"
AGENT_ID_FIELD = "entry.1000002"


class Recording(Helpdesk):
    """Records the replies it is handed; its agent look-up answers as told."""

    kind = "recording"

    def __init__(self, lookup: Person | DeliveryError | None) -> None:
        super().__init__(
            "desk", HelpdeskOptions(kind="recording"), http=HttpClient(), clock=FakeClock()
        )
        self.lookup = lookup
        self.replies: list[Reply] = []

    def verify(self, request: WebhookRequest) -> None:
        raise NotImplementedError

    def parse(self, request: WebhookRequest) -> Event:
        raise NotImplementedError

    def send_reply(self, reply: Reply) -> SendResult:
        self.replies.append(reply)
        return SendResult("m-1")

    def fetch_agent(self, agent: Person, context: Any) -> Person | None:
        if isinstance(self.lookup, DeliveryError):
            raise self.lookup
        return self.lookup


def deliver(agent: Person, language: str, lookup: Person | DeliveryError | None = None) -> Sent:
    adapter = Recording(lookup)
    item = SimpleNamespace(
        id=7, helpdesk="desk", dialog_id="D-1", attempts=5, context={}, uncertain_since=None
    )
    survey = SimpleNamespace(
        agent_id=agent.id,
        agent_name=agent.name,
        agent_email=agent.email,
        customer_id="c-1",
        customer_name="Ivan",
        customer_email="ivan@example.org",
        dialog_id="D-1",
        helpdesk="desk",
        team=None,
        token="tok.en",
        language=language,
    )
    delivery = Delivery(helpdesks={"desk": adapter}, survey=SurveyConfig(), max_attempts=5)
    outcome = deliver_one(delivery, item, survey)
    assert isinstance(outcome, Sent), outcome
    [reply] = adapter.replies
    assert reply.text == outcome.body
    return outcome


NAMELESS = {
    "en": "Thanks for contacting us! How did we do? Rate this conversation",
    "ru": "Спасибо за обращение! Оцените, пожалуйста, как мы с вами поработали:",
}
LABEL = {"en": "Support team", "ru": "Служба поддержки"}


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize(
    ("case", "agent", "lookup"),
    [
        ("no agent at all", Person(), None),
        ("only an id, the look-up knows nothing", Person(id="222"), None),
        ("the look-up failed", Person(id="222"), DeliveryError("HTTP 502", retryable=True)),
        ("only an e-mail", Person(email="anna@example.com"), None),
        ("the look-up finds only an e-mail", Person(id="222"), Person(email="anna@example.com")),
        ("the name is the e-mail", Person(id="222", name="anna@example.com"), None),
    ],
)
def test_an_unknown_name_uses_the_template_without_an_agent(case, agent, lookup, language):
    sent = deliver(agent, language, lookup)
    assert sent.body.startswith(NAMELESS[language]), case
    words = sent.body.replace(sent.link, "")  # the link's own agent-id field may carry the id
    for raw in ("222", "anna@example.com", "  "):
        assert raw not in words, case
    fields = link_fields(sent.link)
    assert fields[AGENT_NAME_FIELD] == LABEL[language], case
    if agent.id:
        assert fields[AGENT_ID_FIELD] == "222"  # the id goes to the id field, not the name


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Thanks for contacting us! How did Anna Petrova do? Rate this conversation"),
        ("ru", "Спасибо за обращение! Оцените, пожалуйста, как с вами поработал(а) Anna Petrova:"),
    ],
)
def test_a_known_name_is_used(language, expected):
    sent = deliver(Person(id="222"), language, Person(name="Anna Petrova"))
    assert sent.body.startswith(expected)
    assert link_fields(sent.link)[AGENT_NAME_FIELD] == "Anna Petrova"
