"""Freshdesk: header and Basic authentication, automation-body parsing, dedup, the reply
request, agent look-ups.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
import sqlalchemy as sa
from pydantic import ValidationError
from responses import matchers

from csat_hook.app import create_app
from csat_hook.config import load_config
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.errors import BadPayloadError
from csat_hook.errors import DeliveryError
from csat_hook.errors import DialogReopenedError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.freshdesk import FreshdeskHelpdesk
from csat_hook.helpdesks.freshdesk import FreshdeskOptions
from csat_hook.helpdesks.freshdesk import reply_html
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.intake.store import RETRY_WINDOW
from tests.helpers import body_of
from tests.helpers import fixture
from tests.helpers import link_fields
from tests.scripted import Answer
from tests.scripted import script_answers

# Every distinct close is surveyed, with no grace window: these tests are about dedup keys.
EVERY_CLOSE = {"per_dialog": "every_close", "reclose_grace_seconds": 0}

BASE = "https://acme.freshdesk.com"
TOKEN = "fd-webhook-token"
AUTH = {"X-Csat-Hook-Token": TOKEN}
API_BASIC = "Basic " + base64.b64encode(b"fd-api-key:X").decode()
AGENT_ID = "43001234567"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- building blocks ------------------------------------------------------------------------


def adapter(clock: Any, **options: Any) -> FreshdeskHelpdesk:
    values = {"base_url": BASE, "api_key": "fd-api-key", "webhook_token": TOKEN, **options}
    values = {k: v for k, v in values.items() if v is not None}
    return FreshdeskHelpdesk(
        "freshdesk",
        FreshdeskOptions.model_validate(values),
        http=HttpClient(sleep=lambda _s: None),
        clock=clock,
    )


def webhook(payload: Any, headers: dict[str, str], clock: Any) -> WebhookRequest:
    return WebhookRequest(
        body=body_of(payload),
        query={},
        received_at=clock(),
        headers={k.lower(): v for k, v in headers.items()},
        content_type="application/json",
    )


def parse(clock: Any, payload: Any, **options: Any) -> Any:
    return adapter(clock, **options).parse(webhook(payload, AUTH, clock))


def reply(
    text: str = "How did we do? https://x.test/f?a=1&b=2", link: str = "https://x.test/f?a=1&b=2"
) -> Reply:
    return Reply(
        helpdesk="freshdesk",
        dialog_id="1042",
        text=text,
        link=link,
        agent=Person(id=AGENT_ID),
        customer=Person(),
        context={},
        idempotency_key="csat-hook-1",
    )


@pytest.fixture
def fd_services(make_config, make_services, fake_helpdesk):
    def build(_sections: dict[str, Any] | None = None, **options: Any) -> Any:
        values = {
            "kind": "freshdesk",
            "base_url": fake_helpdesk.url,
            "api_key": "fd-api-key",
            "webhook_token": TOKEN,
            **options,
        }
        return make_services(make_config(helpdesks={"freshdesk": values}, **(_sections or {})))

    return build


def post(client: Any, payload: Any, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        "/webhooks/freshdesk",
        data=body_of(payload),
        headers={"Content-Type": "application/json", **(AUTH if headers is None else headers)},
    )


def rows(services: Any, table: sa.Table) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)).all())


# --- authentication -------------------------------------------------------------------------


def test_a_close_with_the_shared_secret_header_is_queued(fd_services):
    services = fd_services()
    client = create_app(services=services).test_client()

    response = post(client, fixture("freshdesk", "automation_resolved.json"))

    assert response.status_code == 200 and response.json["status"] == "queued"
    [survey] = rows(services, surveys)
    assert (survey.dialog_id, survey.agent_name, survey.team) == ("1042", "Anna Petrova", "Billing")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Csat-Hook-Token": "fd-webhook-tokeN"},
        {"X-Csat-Hook-Token": ""},
        {"X-Other-Token": TOKEN},
        basic("fd", TOKEN),
    ],
)
def test_missing_or_wrong_credentials_get_401_and_store_nothing(fd_services, headers):
    services = fd_services()
    client = create_app(services=services).test_client()

    response = post(client, fixture("freshdesk", "automation_resolved.json"), headers)

    assert response.status_code == 401
    assert response.json == {
        "error": "unauthorized",
        "reason": "missing or wrong webhook credentials",
    }
    assert rows(services, surveys) == []


@pytest.mark.parametrize(
    ("options", "challenge"),
    [
        ({}, 'Token realm="freshdesk", header="X-Csat-Hook-Token"'),
        (
            {"webhook_token": None, "webhook_username": "fd", "webhook_password": "fd-pass"},
            'Basic realm="freshdesk", charset="UTF-8"',
        ),
        (
            {"webhook_username": "fd", "webhook_password": "fd-pass"},
            'Token realm="freshdesk", header="X-Csat-Hook-Token", '
            'Basic realm="freshdesk", charset="UTF-8"',
        ),
    ],
)
def test_a_401_names_every_way_in_and_no_secret(fd_services, options, challenge):
    # RFC 9110 15.5.2: a 401 MUST carry WWW-Authenticate; one challenge per accepted way.
    client = create_app(services=fd_services(**options)).test_client()

    response = post(client, fixture("freshdesk", "automation_resolved.json"), {})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == challenge
    assert TOKEN not in str(response.headers) and "fd-pass" not in str(response.headers)


def test_the_token_header_name_is_configurable(clock):
    freshdesk = adapter(clock, webhook_token_header="X-Freshdesk-Secret")
    freshdesk.verify(webhook({}, {"X-Freshdesk-Secret": TOKEN}, clock))
    with pytest.raises(InvalidSignatureError):
        freshdesk.verify(webhook({}, AUTH, clock))


@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
        (basic("freshdesk", "fd-pass"), True),
        (basic("freshdesk", "fd-pasS"), False),
        (basic("Freshdesk", "fd-pass"), False),
        (basic("freshdesk", "fd-pass:"), False),
        ({"Authorization": "Basic !!not-base64!!"}, False),
        ({"Authorization": "Bearer " + base64.b64encode(b"freshdesk:fd-pass").decode()}, False),
        (AUTH, False),
    ],
)
def test_basic_auth_is_checked_exactly(clock, headers, accepted):
    freshdesk = adapter(
        clock, webhook_token=None, webhook_username="freshdesk", webhook_password="fd-pass"
    )
    request = webhook({}, headers, clock)
    if accepted:
        freshdesk.verify(request)
    else:
        with pytest.raises(InvalidSignatureError, match="missing or wrong webhook credentials"):
            freshdesk.verify(request)


def test_either_method_works_when_both_are_configured(clock):
    freshdesk = adapter(clock, webhook_username="freshdesk", webhook_password="fd-pass")
    freshdesk.verify(webhook({}, AUTH, clock))
    freshdesk.verify(webhook({}, basic("freshdesk", "fd-pass"), clock))


# --- parsing --------------------------------------------------------------------------------


def test_resolved_ticket_is_a_close(clock):
    assert parse(clock, fixture("freshdesk", "automation_resolved.json")) == DialogClosed(
        helpdesk="freshdesk",
        dialog_id="1042",
        agent=Person(AGENT_ID, "Anna Petrova", "anna@example.com"),
        customer=Person("43009876543", "Ivan Sidorov", "ivan@example.org"),
        team="Billing",
        channel="Email",
        occurrence="{status:{from:2,to:4}}",
        occurrence_repeats=True,
    )


@pytest.mark.parametrize(
    "event",
    [
        "{status:{from:2,to:5}}",
        "{status:{from:3,to:4}}",
        "{ status : { from : 6 , to : 4 } }",
        "{status:{from:Open,to:Resolved}}",
    ],
)
def test_changes_to_resolved_or_closed_are_closes(clock, event):
    payload = fixture("freshdesk", "automation_resolved.json")
    payload["triggered_event"] = event
    assert isinstance(parse(clock, payload), DialogClosed)


@pytest.mark.parametrize(
    "event",
    [
        '{"status":{"from":"Open","to":"Resolved"}}',
        '{ "status" : { "from" : "Open" , "to" : "Resolved" } }',
        '{\\"status\\":{\\"from\\":\\"Open\\",\\"to\\":\\"Resolved\\"}}',
        {"status": {"from": "Open", "to": "Resolved"}},
    ],
    ids=["json-text", "json-text-spaced", "escaped-twice", "json-object"],
)
def test_a_triggered_event_written_as_json_is_the_same_status_change(clock, event):
    # {{triggered_event}} pasted without quotes, or rendered JSON-quoted, arrives as a JSON
    # object or as JSON text (once more escaped by a tool in between). Its quotes hid the
    # status change: "(not a name) is not a status change", the close ignored.
    payload = fixture("freshdesk", "automation_resolved.json")
    payload["triggered_event"] = event

    closed = parse(clock, payload)

    assert isinstance(closed, DialogClosed)
    # The occurrence of the unquoted rendering: a retry in either spelling is the same close.
    assert closed.occurrence == "{status:{from:Open,to:Resolved}}"
    payload["triggered_event"] = '{"status":{"from":"Resolved","to":"Open"}}'
    assert parse(clock, payload) == DialogReopened("freshdesk", "1042")
    payload["triggered_event"] = {"note_type": "public"}
    assert parse(clock, payload) == Ignored("{note_type:public} is not a status change")


def test_reopen_is_recognised(clock):
    assert parse(clock, fixture("freshdesk", "automation_reopened.json")) == DialogReopened(
        "freshdesk", "1042"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("automation_closed_after_resolved.json", "status 4 → 5: the ticket was already resolved"),
        ("automation_note_added.json", "{note_type:public} is not a status change"),
        ("automation_status_custom.json", "status 2 → 6 is not a close"),
    ],
)
def test_other_events_are_ignored_with_a_reason(clock, name, reason):
    assert parse(clock, fixture("freshdesk", name)) == Ignored(reason)


def test_without_triggered_event_the_status_name_decides(clock):
    payload = fixture("freshdesk", "automation_resolved.json")
    del payload["triggered_event"]
    event = parse(clock, payload)
    assert isinstance(event, DialogClosed) and event.occurrence == "status:resolved"
    payload["ticket"]["status"] = "Open"
    assert parse(clock, payload) == Ignored("status 'Open' is not a close")


@pytest.mark.parametrize("status", ["", " ", "{{ticket.status}}", None, "missing"])
@pytest.mark.parametrize("event", ["", "{{triggered_event}}", None, "missing"])
def test_a_body_with_neither_the_event_nor_the_status_rendered_is_misconfigured(
    clock, event, status
):
    # Nothing in it can say a close: every close of that rule was ignored at DEBUG, unseen
    # (the ticket's id rendered, so it did not read as a body sent unrendered).
    payload = fixture("freshdesk", "automation_resolved.json")
    for key, value, where in (
        ("triggered_event", event, payload),
        ("status", status, payload["ticket"]),
    ):
        if value == "missing":
            del where[key]
        else:
            where[key] = value
    assert parse(clock, payload) == Ignored(
        "neither {{triggered_event}} nor {{ticket.status}} rendered in the automation body: "
        "nothing says a close",
        misconfigured=True,
    )


def test_localised_status_names_can_be_configured(clock):
    payload = fixture("freshdesk", "automation_resolved.json")
    del payload["triggered_event"]
    payload["ticket"]["status"] = "Gelöst"
    assert isinstance(parse(clock, payload), Ignored)
    assert isinstance(
        parse(clock, payload, closed_statuses=["Gelöst", "Geschlossen"]), DialogClosed
    )


def test_the_template_sent_unrendered_is_ignored(fd_services):
    # What arrives when the rule posts the body without Freshdesk filling it in (a test).
    template = json.loads((EXAMPLES / "freshdesk-automation-body.json").read_text())
    client = create_app(services=fd_services()).test_client()

    response = post(client, template)

    assert response.status_code == 200
    assert response.json == {
        "status": "ignored",
        "reason": "the automation body's placeholders were not rendered",
    }


def test_placeholders_freshdesk_does_not_know_read_as_unknown(clock):
    payload = fixture("freshdesk", "automation_resolved.json")
    payload["ticket"]["agent"]["id"] = "{{ticket.agent.id}}"
    payload["ticket"]["group"] = ""
    event = parse(clock, payload)
    assert isinstance(event, DialogClosed)
    assert event.agent == Person(None, "Anna Petrova", "anna@example.com") and event.team is None


def test_other_bodies_are_ignored(clock):
    legacy = {"freshdesk_webhook": {"triggered_event": "{status:{from:2,to:4}}", "ticket_id": "11"}}
    assert parse(clock, legacy) == Ignored(
        "not the csat-hook automation body (no ticket object)", misconfigured=True
    )


def test_a_rule_sending_another_body_is_said_at_warning_once_per_webhook(fd_services, caplog):
    # A rule set to Freshdesk's "Simple" content (or any body but ours) is answered 200, as
    # every ignored webhook is, but none of its closes gets a survey: the operator is told
    # (a warning naming the helpdesk and why, no payload value), routine ignores are not.
    client = create_app(services=fd_services()).test_client()
    simple = {"freshdesk_webhook": {"ticket_id": "11", "ticket_status": "Resolved"}}
    not_a_close = fixture("freshdesk", "automation_resolved.json")
    not_a_close["ticket"]["status"] = "Pending"
    not_a_close.pop("triggered_event", None)

    with caplog.at_level(logging.DEBUG, logger="csat_hook"):
        assert post(client, simple).status_code == 200
        assert post(client, not_a_close).status_code == 200

    warned = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [(r.getMessage(), r.helpdesk, r.reason) for r in warned] == [
        (
            "webhook.ignored-misconfigured",
            "freshdesk",
            "not the csat-hook automation body (no ticket object)",
        )
    ]
    assert "11" not in caplog.text and "Resolved" not in warned[0].reason


def test_missing_ticket_id_is_400(fd_services):
    payload = fixture("freshdesk", "automation_resolved.json")
    del payload["ticket"]["id"]
    client = create_app(services=fd_services()).test_client()

    response = post(client, payload)

    assert response.status_code == 400
    assert response.json == {"error": "missing_field", "reason": "ticket id is missing (ticket.id)"}


def test_non_object_body_is_refused(clock):
    with pytest.raises(BadPayloadError, match="must be an object"):
        parse(clock, ["ticket"])


def test_an_event_that_is_not_a_close_needs_no_ticket_id(clock):
    payload = fixture("freshdesk", "automation_note_added.json")
    del payload["ticket"]["id"]
    assert isinstance(parse(clock, payload), Ignored)


def test_a_retried_delivery_gives_one_survey_even_when_every_close_is_surveyed(fd_services):
    services = fd_services(_sections={"policy": EVERY_CLOSE})
    client = create_app(services=services).test_client()
    resolved = fixture("freshdesk", "automation_resolved.json")
    closed_later = fixture("freshdesk", "automation_resolved.json")
    closed_later["triggered_event"] = "{status:{from:3,to:5}}"

    statuses = [
        post(client, payload).json["status"] for payload in (resolved, resolved, closed_later)
    ]

    assert statuses == ["queued", "duplicate", "queued"]


def test_reopen_cancels_a_delayed_survey(fd_services):
    services = fd_services(_sections={"policy": {"send_delay_seconds": 3600}})
    client = create_app(services=services).test_client()
    post(client, fixture("freshdesk", "automation_resolved.json"))

    response = post(client, fixture("freshdesk", "automation_reopened.json"))

    assert response.json == {"status": "reopened", "cancelled": 1}


@pytest.mark.parametrize("triggered_event", [True, False], ids=["status-change", "status-name"])
def test_a_re_close_after_a_reopen_re_arms_the_cancelled_survey(
    fd_services, clock, triggered_event
):
    # Freshdesk's occurrence is derived from the status ("{status:{from:2,to:4}}", or
    # "status:resolved" without the event): a genuine re-close after a reopen carries the same
    # one, so it must re-arm the survey the reopen cancelled rather than read as a retry. Its
    # body names no time and is the first close's: received past the window in which
    # Freshdesk retries a close, it is a new close.
    policy = {**EVERY_CLOSE, "send_delay_seconds": 3600, "cancel_on_reopen": True}
    services = fd_services(_sections={"policy": policy})
    client = create_app(services=services).test_client()
    close = fixture("freshdesk", "automation_resolved.json")
    if not triggered_event:
        del close["triggered_event"]
    assert post(client, close).json["status"] == "queued"
    reopened = post(client, fixture("freshdesk", "automation_reopened.json"))
    assert reopened.json == {"status": "reopened", "cancelled": 1}
    clock.advance(RETRY_WINDOW.total_seconds() + 1)

    again = post(client, close)

    assert again.json["status"] == "queued"
    assert [s.status for s in rows(services, surveys)] == ["queued"]
    assert [o.status for o in rows(services, outbox)] == ["pending"]


@pytest.mark.parametrize(
    "policy",
    [{"send_delay_seconds": 3600}, {**EVERY_CLOSE, "send_delay_seconds": 3600}],
    ids=["once", "every-close"],
)
def test_a_retry_of_the_close_after_a_reopen_does_not_re_arm_the_cancelled_survey(
    fd_services, clock, policy
):
    """Freshdesk names no close time and sends no delivery id: a retry of the close (its
    answer lost; Freshdesk retries 5, 30 and 60 minutes after a failed attempt) that comes
    after the reopen had re-armed the survey the reopen cancelled, into the reopened ticket.
    The same body within store.RETRY_WINDOW of the close is that close again; a body that
    differs (another status change, another agent) is a new close."""
    services = fd_services(_sections={"policy": policy})
    client = create_app(services=services).test_client()
    close = fixture("freshdesk", "automation_resolved.json")
    assert post(client, close).json["status"] == "queued"
    reopened = post(client, fixture("freshdesk", "automation_reopened.json"))
    assert reopened.json == {"status": "reopened", "cancelled": 1}

    retries = []
    for minutes in (5, 30, 60):  # Freshdesk's schedule: each after the attempt before
        clock.advance(minutes * 60)
        retries.append(post(client, close).json)

    assert retries == [{"status": "duplicate"}] * 3
    assert [s.status for s in rows(services, surveys)] == ["cancelled"]
    assert [o.status for o in rows(services, outbox)] == ["cancelled"]
    other_agent = fixture("freshdesk", "automation_resolved.json")
    other_agent["ticket"]["agent"] = {"id": "43001230000", "name": "Boris", "email": "b@x.org"}
    assert post(client, other_agent).json["status"] == "queued"  # a new close: its own body
    assert [o.status for o in rows(services, outbox)] == ["pending"]


def test_a_retry_of_the_close_never_re_arms_a_survey_the_erasure_cancelled(fd_services, clock):
    """``csat-hook erase`` cancels a reply not sent yet. A retry of the close it came from
    (Freshdesk: no close time, so never "no later" than the erased one) re-armed it with the
    customer's name and e-mail again and sent it to the customer whose data was erased: now
    it is a duplicate, within the retry window and past it."""
    from csat_hook.erasure.records import Selector
    from csat_hook.erasure.store import erase

    services = fd_services(_sections={"policy": {"send_delay_seconds": 3600}})
    client = create_app(services=services).test_client()
    close = fixture("freshdesk", "automation_resolved.json")
    assert post(client, close).json["status"] == "queued"
    with services.engine.begin() as conn:
        erase(conn, Selector(email="ivan@example.org"), clock(), apply=True)

    soon = post(client, close).json
    clock.advance(RETRY_WINDOW.total_seconds() + 1)
    late = post(client, close).json

    assert [soon, late] == [{"status": "duplicate"}] * 2
    [survey] = rows(services, surveys)
    assert (survey.status, survey.customer_email, survey.customer_name) == ("cancelled", None, None)
    assert [o.status for o in rows(services, outbox)] == ["cancelled"]


def test_an_erasure_after_a_reopen_keeps_a_late_retry_of_the_close_from_re_arming(
    fd_services, clock
):
    """The reopen cancelled the reply first, so the erasure found it cancelled already and
    did not mark it: a retry of the close past the retry window (Freshdesk defers a webhook
    over its rate limit for up to 24 hours) re-armed the survey, with the customer's name
    and e-mail, for the customer whose data was erased. Marked, it stays cancelled."""
    from csat_hook.erasure.records import Selector
    from csat_hook.erasure.store import erase

    services = fd_services(_sections={"policy": {"send_delay_seconds": 3600}})
    client = create_app(services=services).test_client()
    close = fixture("freshdesk", "automation_resolved.json")
    assert post(client, close).json["status"] == "queued"
    assert post(client, fixture("freshdesk", "automation_reopened.json")).json["cancelled"] == 1
    with services.engine.begin() as conn:
        erase(conn, Selector(email="ivan@example.org"), clock(), apply=True)
    clock.advance(RETRY_WINDOW.total_seconds() + 1)

    assert post(client, close).json == {"status": "duplicate"}
    [survey] = rows(services, surveys)
    assert (survey.status, survey.customer_email, survey.customer_name) == ("cancelled", None, None)
    assert [o.status for o in rows(services, outbox)] == ["cancelled"]


@pytest.mark.parametrize("policy", [{}, EVERY_CLOSE], ids=["once", "every-close"])
@pytest.mark.parametrize("triggered_event", [True, False], ids=["status-change", "status-name"])
def test_a_replayed_close_never_re_arms_a_survey_that_went_out(
    fd_services, policy, triggered_event
):
    # Freshdesk sends no delivery id and its occurrence repeats, so a replay of the close (a
    # retry, a rule run again) has the key of the survey that went out. Only a survey a reopen
    # cancelled may be re-armed; a sent one stays the one survey, even after a reopen.
    services = fd_services(_sections={"policy": policy})
    client = create_app(services=services).test_client()
    close = fixture("freshdesk", "automation_resolved.json")
    if not triggered_event:
        del close["triggered_event"]
    assert post(client, close).json["status"] == "queued"
    assert services.delivery_worker().run_once() == 1
    assert [s.status for s in rows(services, surveys)] == ["sent"]

    replays = [post(client, close).json]
    reopened = post(client, fixture("freshdesk", "automation_reopened.json"))
    replays.append(post(client, close).json)

    assert reopened.json == {"status": "reopened", "cancelled": 0}
    assert replays == [{"status": "duplicate"}] * 2
    assert [s.status for s in rows(services, surveys)] == ["sent"]
    assert [o.status for o in rows(services, outbox)] == ["sent"]


def test_status_derived_occurrences_say_they_repeat(clock):
    # Intake may revive a cancelled survey for such a close (see DialogClosed).
    payload = fixture("freshdesk", "automation_resolved.json")
    assert parse(clock, payload).occurrence_repeats is True
    del payload["triggered_event"]
    assert parse(clock, payload).occurrence_repeats is True


# --- the reply ------------------------------------------------------------------------------


def test_reply_html_escapes_text_and_links_the_survey():
    link = "https://docs.google.com/forms/d/e/X/viewform?usp=pp_url&entry.1=A+%3Cb%3E"
    text = f"Thanks <Ann & co>!\nRate us: {link}"
    assert reply_html(text, link) == (
        "<p>Thanks &lt;Ann &amp; co&gt;!<br>Rate us: "
        '<a href="https://docs.google.com/forms/d/e/X/viewform?usp=pp_url&amp;entry.1=A+%3Cb%3E">'
        "https://docs.google.com/forms/d/e/X/viewform?usp=pp_url&amp;entry.1=A+%3Cb%3E</a></p>"
    )


TICKET_URL = f"{BASE}/api/v2/tickets/1042"


def ticket_is(status: int) -> None:
    """Register View a Ticket answering ``status`` (the fixture's other fields)."""
    shown = fixture("freshdesk", "view_ticket_reopened.json")
    shown["status"] = status
    responses.get(
        TICKET_URL, json=shown, match=[matchers.header_matcher({"Authorization": API_BASIC})]
    )


@responses.activate
def test_reply_request_shape(clock):
    ticket_is(4)
    responses.post(
        f"{BASE}/api/v2/tickets/1042/reply",
        match=[
            matchers.header_matcher({"Authorization": API_BASIC}),
            matchers.json_params_matcher(
                {
                    "body": (
                        '<p>How did we do? <a href="https://x.test/f?a=1&amp;b=2">'
                        "https://x.test/f?a=1&amp;b=2</a></p>"
                    )
                }
            ),
        ],
        status=201,
        json={"id": 35131397084, "body": "<p>…</p>", "ticket_id": 1042},
    )
    assert adapter(clock).send_reply(reply()).external_id == "35131397084"


@responses.activate
def test_429_is_retryable_and_carries_retry_after(clock):
    ticket_is(4)
    responses.post(f"{BASE}/api/v2/tickets/1042/reply", status=429, headers={"Retry-After": "60"})
    with pytest.raises(DeliveryError) as raised:
        adapter(clock).send_reply(reply())
    assert raised.value.retryable and raised.value.retry_after == 60


@pytest.mark.parametrize(
    ("status", "words"), [(404, "no such ticket"), (400, "HTTP 400"), (401, "API key")]
)
@responses.activate
def test_refusals_are_permanent(clock, status, words):
    ticket_is(5)
    responses.post(
        f"{BASE}/api/v2/tickets/1042/reply",
        status=status,
        json={"description": "Validation failed", "errors": []},
    )
    with pytest.raises(DeliveryError) as raised:
        adapter(clock).send_reply(reply())
    assert not raised.value.retryable and raised.value.http_status == status
    assert words in raised.value.message
    # Freshdesk's own reason follows (issue #10): operators see what the vendor said.
    assert raised.value.message.endswith(": Validation failed")


def test_a_deleted_ticket_marks_the_reply_failed(fd_services, fake_helpdesk, monkeypatch):
    services = fd_services()
    script_answers(
        fake_helpdesk,
        monkeypatch,
        Answer("POST", r"/api/v2/tickets/1042/reply", 404, {"code": "not_found"}),
    )
    post(
        create_app(services=services).test_client(),
        fixture("freshdesk", "automation_resolved.json"),
    )

    services.delivery_worker().run_once()

    [item] = rows(services, outbox)
    assert (item.status, item.last_http_status) == ("failed", 404)
    assert "no such ticket" in item.last_error


# --- a ticket reopened between the close and the reply ---------------------------------------


@responses.activate
def test_a_ticket_the_customer_reopened_gets_no_survey(clock):
    """The customer answered (Freshdesk set the ticket Open) after the close, and the reopen's
    webhook was not seen: View a Ticket says ``status: 2``; the reply is not posted (cancelled,
    ``policy.cancel_on_reopen``)."""
    responses.get(TICKET_URL, json=fixture("freshdesk", "view_ticket_reopened.json"))
    posted = responses.post(f"{BASE}/api/v2/tickets/1042/reply", status=201, json={"id": 1})

    with pytest.raises(DialogReopenedError) as raised:
        adapter(clock).send_reply(reply())

    assert "Open again" in raised.value.message and not raised.value.retryable
    assert posted.call_count == 0


@pytest.mark.parametrize("status", [4, 5, 6, 7])
@responses.activate
def test_a_resolved_closed_or_custom_status_takes_the_reply(clock, status):
    # A custom status (6 and up) may be the one the account closes with: not judged.
    ticket_is(status)
    responses.post(f"{BASE}/api/v2/tickets/1042/reply", status=201, json={"id": 35131397084})
    assert adapter(clock).send_reply(reply()).external_id == "35131397084"


@responses.activate
def test_without_cancel_on_reopen_the_ticket_is_not_read(clock):
    # Freshdesk's reply takes no status: posted, it changes none.
    responses.post(f"{BASE}/api/v2/tickets/1042/reply", status=201, json={"id": 35131397084})
    sent = adapter(clock).send_reply(replace(reply(), cancel_on_reopen=False))
    assert sent.external_id == "35131397084"
    assert [c.request.method for c in responses.calls] == ["POST"]


@responses.activate
def test_a_status_read_that_times_out_is_a_plain_retry_nothing_posted(clock):
    responses.get(TICKET_URL, body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(DeliveryError) as raised:
        adapter(clock).send_reply(reply())
    assert raised.value.retryable and not raised.value.outcome_unknown
    assert "nothing was posted" in raised.value.message
    assert {c.request.method for c in responses.calls} == {"GET"}


@pytest.mark.parametrize(
    "answer",
    [
        {"json": {"id": 1042}},
        {"json": {"status": "2"}},
        {"json": {"status": True}},
        {"json": []},
        {"status": 403, "json": {"code": "access_denied"}},  # a key without read access
        {"status": 404, "body": "Not Found"},  # a proxy serving the reply path alone
    ],
)
@responses.activate
def test_a_status_read_that_tells_nothing_sends_the_reply_as_before(clock, answer, caplog):
    # Not knowing is no sign of a reopen: the reply was posted, as before the read existed,
    # and the operator told. (It was a retry, for ever: every survey of such an account lost.)
    responses.get(TICKET_URL, **answer)
    responses.post(f"{BASE}/api/v2/tickets/1042/reply", status=201, json={"id": 35131397084})
    caplog.set_level(logging.WARNING, logger="csat_hook.helpdesks.calls")

    assert adapter(clock).send_reply(reply()).external_id == "35131397084"

    assert [c.request.method for c in responses.calls] == ["GET", "POST"]
    said = [r for r in caplog.records if r.getMessage() == "reply.status-unread"]
    assert [r.helpdesk for r in said] == ["freshdesk"]


def test_a_late_redelivery_of_the_close_after_a_reopen_sends_nothing_into_the_open_ticket(
    fd_services, clock, fake_helpdesk
):
    """Freshdesk's close body names no time: redelivered after a reopen cancelled its survey,
    past the two hours it is known as a retry (a webhook deferred for the account's rate
    limit), it re-arms that survey. The ticket is Open: nothing is posted into it."""
    services = fd_services({"policy": {"send_delay_seconds": 600}})
    client = create_app(services=services).test_client()
    close = fixture("freshdesk", "automation_resolved.json")
    assert post(client, close).json["status"] == "queued"
    assert post(client, fixture("freshdesk", "automation_reopened.json")).status_code == 200
    assert rows(services, surveys)[0].status == "cancelled"
    clock.advance(3 * 3600)
    assert post(client, close).json["status"] == "queued"  # re-armed
    fake_helpdesk.answer_dialog(
        "/api/v2/tickets/1042", fixture("freshdesk", "view_ticket_reopened.json")
    )
    clock.advance(600)

    assert services.delivery_worker().run_once() == 1

    assert [r["method"] for r in fake_helpdesk.api_requests()] == ["GET"]
    [item] = rows(services, outbox)
    assert item.status == "cancelled" and "Open again" in item.last_error


# --- agent look-ups -------------------------------------------------------------------------


AGENT_PATH = rf"/api/v2/agents/{AGENT_ID}"
AGENT = {
    "id": int(AGENT_ID),
    "available": True,
    "occasional": False,
    "ticket_scope": 1,
    "contact": {
        "active": True,
        "email": "anna@example.com",
        "name": "Anna Petrova",
        "language": "en",
        "time_zone": "Moscow",
    },
}


def _reply_link(fake: Any) -> str:
    [reply_request] = [r for r in fake.api_requests() if r["method"] == "POST"]
    html = reply_request["body"]["body"]
    return html.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")


def test_id_only_close_gets_the_agent_name_into_the_link(fd_services, fake_helpdesk, monkeypatch):
    services = fd_services()
    script_answers(fake_helpdesk, monkeypatch, Answer("GET", AGENT_PATH, 200, AGENT))
    post(
        create_app(services=services).test_client(),
        fixture("freshdesk", "automation_agent_id_only.json"),
    )

    assert services.delivery_worker().run_once() == 1

    lookup = fake_helpdesk.api_requests()[0]
    assert (lookup["method"], lookup["path"]) == ("GET", f"/api/v2/agents/{AGENT_ID}")
    assert lookup["headers"]["Authorization"] == API_BASIC
    assert link_fields(_reply_link(fake_helpdesk))["entry.111"] == "Anna Petrova"
    assert rows(services, surveys)[0].agent_email == "anna@example.com"


def test_a_failing_lookup_still_sends_the_reply(fd_services, clock, fake_helpdesk, monkeypatch):
    services = fd_services()
    script_answers(fake_helpdesk, monkeypatch, Answer("GET", AGENT_PATH, 502, {}))
    post(
        create_app(services=services).test_client(),
        fixture("freshdesk", "automation_agent_id_only.json"),
    )
    worker = services.delivery_worker()

    for _ in range(services.config.delivery.max_attempts):
        worker.run_once()
        clock.advance(3600)

    [item] = rows(services, outbox)
    assert item.status == "sent"
    assert link_fields(_reply_link(fake_helpdesk))["entry.222"] == AGENT_ID


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"base_url": None}, "set domain"),
        ({"base_url": None, "domain": "acme.freshdesk.com"}, "domain must be the name before"),
        ({"base_url": "ftp://acme"}, "must start with https://"),
        ({"webhook_token": None}, "set webhook_token .* or webhook_username \\+ webhook_password"),
        ({"webhook_username": "fd"}, "webhook_username and webhook_password go together"),
        ({"webhook_token_header": " "}, "is not a header name"),
        ({"api_key": None}, "api_key"),
        # ${FRESHDESK_API_KEY:-} unset: every reply refused 401, failed for good.
        ({"api_key": ""}, "api_key\n.*must not be empty"),
        ({"api_key": "  "}, "api_key\n.*must not be empty"),
    ],
)
def test_incomplete_options_are_refused_naming_the_keys(values, message):
    options = {"base_url": BASE, "api_key": "k", "webhook_token": TOKEN, **values}
    with pytest.raises(ValidationError, match=message):
        FreshdeskOptions.model_validate({k: v for k, v in options.items() if v is not None})


def test_domain_gives_the_base_url():
    options = FreshdeskOptions.model_validate(
        {"domain": "acme", "api_key": "k", "webhook_token": TOKEN}
    )
    assert options.base_url == "https://acme.freshdesk.com"


def test_the_example_config_block_loads_without_environment():
    config = load_config(str(EXAMPLES.parent / "config.example.yaml"), env={})
    options = config.helpdesks["freshdesk"]
    assert options.base_url == "http://127.0.0.1:8099"  # the local fake helpdesk
    assert options.webhook_token is not None and options.webhook_password is None


PRIVATE = "Customer jane@acme.inc wrote: my password is hunter2"


@pytest.mark.parametrize(
    ("event", "status", "reason"),
    [
        (None, "Waiting on Customer", "status 'Waiting on Customer' is not a close"),
        (None, " waiting on third  party ", "status 'Waiting on Third Party' is not a close"),
        (
            "{status:{from:Open,to:Waiting on Customer}}",
            "Open",
            "status Open → Waiting on Customer is not a close",
        ),
        (
            "{status:{from:Waiting on Third Party,to:Pending}}",
            "Pending",
            "status Waiting on Third Party → Pending is not a close",
        ),
        # Not one of Freshdesk's names: still described, never quoted.
        (None, "Waiting on Jane Doe", "status '(not a name: 19 characters)' is not a close"),
    ],
)
def test_freshdesks_own_status_names_are_named_in_ignored_reasons(clock, event, status, reason):
    # "Waiting on Customer" (a default Freshdesk status) was described as "(not a name: 19
    # characters)": its spaces made it look like a sentence.
    payload = fixture("freshdesk", "automation_note_added.json")
    payload["triggered_event"] = event
    payload["ticket"]["status"] = status
    assert parse(clock, payload) == Ignored(reason)


def test_a_configured_closed_status_with_spaces_is_named_too(clock):
    payload = fixture("freshdesk", "automation_resolved.json")
    payload["triggered_event"] = "{status:{from:Done for now,to:Open}}"
    assert parse(clock, payload, closed_statuses=["Done for now"]) == DialogReopened(
        "freshdesk", "1042"
    )
    payload["triggered_event"] = "{status:{from:Done for now,to:Done for now}}"
    assert parse(clock, payload, closed_statuses=["Done for now"]) == Ignored(
        "status Done for now → Done for now: the ticket was already resolved"
    )


@pytest.mark.parametrize(
    ("event", "status", "reason"),
    [
        (PRIVATE, "Open", "(not a name: 52 characters) is not a status change"),
        (
            "{status:{from:Open,to:my password is hunter2}}",
            "Open",
            "status Open → (not a name: 22 characters) is not a close",
        ),
        (None, PRIVATE, "status '(not a name: 52 characters)' is not a close"),
    ],
)
def test_an_ignored_reason_never_quotes_text_that_is_no_name(clock, event, status, reason):
    # The reason is answered to the sender and logged: it quoted the event (whitespace
    # removed, so a sentence ran together) and the status whatever they held.
    payload = fixture("freshdesk", "automation_note_added.json")
    payload["triggered_event"] = event
    payload["ticket"]["status"] = status
    assert parse(clock, payload) == Ignored(reason)
