"""Zendesk: signatures, both close shapes, dedup, the reply request, agent look-ups."""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from html.parser import HTMLParser
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
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.helpdesks.zendesk import TEST_SIGNING_SECRET
from csat_hook.helpdesks.zendesk import ZendeskHelpdesk
from csat_hook.helpdesks.zendesk import ZendeskOptions
from csat_hook.helpdesks.zendesk import zendesk_signature
from csat_hook.outbox.reply_delivery import agent_look_up_attempts
from tests.helpdesks.zendesk.kit import zendesk_headers
from tests.helpdesks.zendesk.kit import zendesk_signed
from tests.helpers import body_of
from tests.helpers import fixture
from tests.helpers import fixture_path
from tests.helpers import link_fields
from tests.scripted import Answer
from tests.scripted import script_answers

# Every distinct close is surveyed, with no grace window: these tests are about dedup keys.
EVERY_CLOSE = {"per_dialog": "every_close", "reclose_grace_seconds": 0}

SECRET = "zd-webhook-secret"
BASE = "https://acme.zendesk.com"
AGENT_ID = "8447388090494"
BASIC = "Basic " + base64.b64encode(b"bot@example.com/token:zd-api-token").decode()
USER_PATH = rf"/api/v2/users/{AGENT_ID}\.json"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


# --- building blocks ------------------------------------------------------------------------


def adapter(clock: Any, **options: Any) -> ZendeskHelpdesk:
    values = {
        "base_url": BASE,
        "email": "bot@example.com",
        "api_token": "zd-api-token",
        "webhook_secret": SECRET,
        **options,
    }
    return ZendeskHelpdesk(
        "zendesk",
        ZendeskOptions.model_validate(values),
        http=HttpClient(sleep=lambda _s: None),
        clock=clock,
    )


def webhook(body: bytes, headers: dict[str, str], when: datetime) -> WebhookRequest:
    return WebhookRequest(
        body=body,
        headers={k.lower(): v for k, v in headers.items()},
        query={},
        received_at=when,
        content_type="application/json",
    )


def signed(
    payload: Any, clock: Any, secret: str = SECRET, when: datetime | None = None
) -> WebhookRequest:
    body = body_of(payload)
    return webhook(body, zendesk_headers(body, secret, when or clock()), clock())


def reply(dialog_id: str = "5158") -> Reply:
    return Reply(
        helpdesk="zendesk",
        dialog_id=dialog_id,
        text="How did we do? https://x.test/f",
        link="https://x.test/f",
        agent=Person(id=AGENT_ID),
        customer=Person(),
        context={},
        idempotency_key="csat-hook-1",
    )


@pytest.fixture
def zd_services(make_config, make_services, fake_helpdesk):
    def build(_sections: dict[str, Any] | None = None, **options: Any) -> Any:
        values = {
            "kind": "zendesk",
            "base_url": fake_helpdesk.url,
            "email": "bot@example.com",
            "api_token": "zd-api-token",
            "webhook_secret": SECRET,
            **options,
        }
        return make_services(make_config(helpdesks={"zendesk": values}, **(_sections or {})))

    return build


def post(client: Any, payload: Any, clock: Any, **kw: Any) -> Any:
    body, headers, _ = zendesk_signed(payload, kw.pop("when", clock()), kw.pop("secret", SECRET))
    return client.post("/webhooks/zendesk", data=body, headers=headers)


def rows(services: Any, table: sa.Table) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)).all())


def deliver_all(services: Any, clock: Any, rounds: int = 10) -> None:
    """Run the worker until nothing is due, moving the clock past every backoff."""
    worker = services.delivery_worker()
    for _ in range(rounds):
        worker.run_once()
        clock.advance(3600)


# --- signatures -----------------------------------------------------------------------------


def test_a_signed_close_is_accepted(zd_services, clock):
    client = create_app(services=zd_services()).test_client()
    response = post(client, fixture("zendesk", "ticket_status_changed_solved.json"), clock)
    assert response.status_code == 200 and response.json["status"] == "queued"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"secret": "another-secret"}, "X-Zendesk-Webhook-Signature does not match the body"),
        ({"drop": "X-Zendesk-Webhook-Signature"}, "missing X-Zendesk-Webhook-Signature"),
        (
            {"drop": "X-Zendesk-Webhook-Signature-Timestamp"},
            "missing X-Zendesk-Webhook-Signature-Timestamp",
        ),
        ({"tamper": True}, "X-Zendesk-Webhook-Signature does not match the body"),
        ({"timestamp": "yesterday-ish"}, "missing or unreadable signature timestamp"),
        (
            {"age": 301},
            "signature timestamp outside the 300 s tolerance window (replayed or clock skew)",
        ),
        (
            {"age": -301},
            "signature timestamp outside the 300 s tolerance window (replayed or clock skew)",
        ),
    ],
)
def test_refused_signatures_get_401_with_a_reason_and_store_nothing(
    zd_services, clock, change, reason
):
    services = zd_services()
    client = create_app(services=services).test_client()
    payload = fixture("zendesk", "ticket_status_changed_solved.json")
    when = clock() - timedelta(seconds=change.get("age", 0))
    body, headers, _ = zendesk_signed(payload, when, change.get("secret", SECRET))
    if change.get("tamper"):
        body = body.replace(b'"5158"', b'"5159"')
    if "drop" in change:
        del headers[change["drop"]]
    if "timestamp" in change:
        headers["X-Zendesk-Webhook-Signature-Timestamp"] = change["timestamp"]

    response = client.post("/webhooks/zendesk", data=body, headers=headers)

    assert response.status_code == 401
    assert response.json == {"error": "unauthorized", "reason": reason}
    assert rows(services, surveys) == []


@pytest.mark.parametrize("age", [299, -299])
def test_timestamps_inside_the_window_are_accepted(clock, age):
    request = signed({"ticket": {}}, clock, when=clock() - timedelta(seconds=age))
    adapter(clock).verify(request)  # does not raise


def test_the_tolerance_window_is_configurable(clock):
    request = signed({}, clock, when=clock() - timedelta(seconds=600))
    with pytest.raises(InvalidSignatureError, match="300 s tolerance"):
        adapter(clock).verify(request)
    adapter(clock, tolerance_seconds=900).verify(request)


def test_published_third_party_vector_matches():
    # aaronellington/zendesk-go, zendesk/webhook_test.go: Zendesk's test-delivery secret used
    # as UTF-8 text (not base64-decoded), timestamp "1234", the body file byte for byte.
    body = fixture_path("zendesk", "vector_group_membership_created.json").read_bytes()
    digest = zendesk_signature(TEST_SIGNING_SECRET, "1234", body)
    assert base64.b64encode(digest).decode() == "10IqYzYTLHRftNsNE+im0DeOM6/JactIRuy0XCHJ9B8="


def _vector_request() -> tuple[WebhookRequest, datetime]:
    body = fixture_path("zendesk", "vector_group_membership_created.json").read_bytes()
    when = datetime(1970, 1, 1, 0, 20, 34, tzinfo=UTC)  # the vector's timestamp "1234"
    headers = {
        "X-Zendesk-Webhook-Signature": "10IqYzYTLHRftNsNE+im0DeOM6/JactIRuy0XCHJ9B8=",
        "X-Zendesk-Webhook-Signature-Timestamp": "1234",
    }
    return webhook(body, headers, when), when


def test_the_published_vector_is_a_test_delivery_answered_and_ignored():
    request, when = _vector_request()
    zendesk = adapter(lambda: when)

    zendesk.verify(request)

    assert zendesk.parse(request) == Ignored(
        "Zendesk test delivery (signed with the public test secret)"
    )


def test_test_deliveries_are_refused_when_not_accepted():
    request, when = _vector_request()
    with pytest.raises(InvalidSignatureError, match="does not match"):
        adapter(lambda: when, accept_test_deliveries=False).verify(request)


def test_a_close_signed_with_the_public_test_secret_never_becomes_a_survey(zd_services, clock):
    services = zd_services()
    client = create_app(services=services).test_client()

    response = post(
        client,
        fixture("zendesk", "ticket_status_changed_solved.json"),
        clock,
        secret=TEST_SIGNING_SECRET,
    )

    assert response.status_code == 200 and response.json["status"] == "ignored"
    assert rows(services, surveys) == []


# --- event subscriptions --------------------------------------------------------------------


def test_event_close_is_parsed(clock):
    zendesk = adapter(clock, groups={"8447320466430": "Billing"})
    event = zendesk.parse(signed(fixture("zendesk", "ticket_status_changed_solved.json"), clock))

    assert event == DialogClosed(
        helpdesk="zendesk",
        dialog_id="5158",
        agent=Person(id=AGENT_ID),
        customer=Person(id="8447388090110"),
        team="Billing",
        channel="web_form",
        close_times=(  # the event's time, then the ticket's update
            datetime(2026, 11, 20, 11, 58, 20, 987654, tzinfo=UTC),
            datetime(2026, 11, 20, 11, 58, 20, tzinfo=UTC),
        ),
        occurrence="a8b9c1d2-3e4f-4a6b-8c8d-9e0f1a2b3c4d",
    )


def test_event_close_directly_to_closed_counts(clock):
    payload = fixture("zendesk", "ticket_status_changed_solved.json")
    payload["event"].update(current="CLOSED", previous="PENDING")
    event = adapter(clock).parse(signed(payload, clock))
    assert isinstance(event, DialogClosed) and event.team is None


def test_a_ticket_closed_without_being_solved_is_skipped_not_queued_to_fail(zd_services, clock):
    """A ticket that goes to Closed without Solved (merged into another ticket: Zendesk closes
    the source; closed by API or an automation) can never take the reply: closed tickets
    cannot be updated (422). Recorded skipped, ``ticket_closed``, nothing queued; a solve is
    queued as ever, and so is a trigger that says Solved."""
    services = zd_services()
    client = create_app(services=services).test_client()
    merged = fixture("zendesk", "ticket_status_changed_solved.json")
    merged["event"].update(current="CLOSED", previous="OPEN")
    trigger = fixture("zendesk", "trigger_solved.json")
    trigger["ticket"].update(id="5159", status="Closed")

    answers = [post(client, payload, clock).json for payload in (merged, trigger)]

    assert [(a["status"], a.get("reason")) for a in answers] == [
        ("skipped", "ticket_closed"),
        ("skipped", "ticket_closed"),
    ]
    assert [(s.status, s.skip_reason) for s in rows(services, surveys)] == [
        ("skipped", "ticket_closed"),
        ("skipped", "ticket_closed"),
    ]
    assert rows(services, outbox) == []
    solved = adapter(clock).parse(
        signed(fixture("zendesk", "ticket_status_changed_solved.json"), clock)
    )
    assert isinstance(solved, DialogClosed) and solved.unsurveyable is None


def test_event_without_event_object_falls_back_to_detail_status(clock):
    payload = fixture("zendesk", "ticket_status_changed_solved.json")
    del payload["event"]
    assert isinstance(adapter(clock).parse(signed(payload, clock)), DialogClosed)


def test_unassigned_ticket_has_no_agent(clock):
    payload = fixture("zendesk", "ticket_status_changed_solved.json")
    payload["detail"]["assignee_id"] = None
    payload["detail"]["group_id"] = "0"
    event = adapter(clock, groups={"0": "nobody"}).parse(signed(payload, clock))
    assert isinstance(event, DialogClosed)
    assert event.agent == Person() and event.team is None


def test_event_reopen_is_recognised(clock):
    event = adapter(clock).parse(
        signed(fixture("zendesk", "ticket_status_changed_reopened.json"), clock)
    )
    # The event's time (the status change), then the ticket's update.
    assert event == DialogReopened(
        "zendesk",
        "5158",
        reopen_times=(
            datetime(2026, 11, 21, 8, 3, 11, 120045, tzinfo=UTC),
            datetime(2026, 11, 21, 8, 3, 11, tzinfo=UTC),
        ),
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        (
            "ticket_status_changed_closed_after_solved.json",
            "status solved → closed: the ticket was already solved",
        ),
        ("ticket_status_changed_pending.json", "status open → pending is not a close"),
        (
            "ticket_priority_changed.json",
            "zen:event-type:ticket.priority_changed is not a status change",
        ),
    ],
)
def test_other_events_are_ignored_with_a_reason(clock, name, reason):
    assert adapter(clock).parse(signed(fixture("zendesk", name), clock)) == Ignored(reason)


def test_a_body_neither_an_event_nor_ours_is_ignored_as_a_misconfiguration(clock):
    assert adapter(clock).parse(signed(fixture("zendesk", "test_delivery.json"), clock)) == (
        Ignored("neither a Zendesk event nor the csat-hook trigger body", misconfigured=True)
    )


def test_event_without_ticket_id_is_400(zd_services, clock):
    payload = fixture("zendesk", "ticket_status_changed_solved.json")
    del payload["detail"]["id"]
    client = create_app(services=zd_services()).test_client()

    response = post(client, payload, clock)

    assert response.status_code == 400
    assert response.json == {"error": "missing_field", "reason": "ticket id is missing (detail.id)"}


def test_non_object_body_is_refused(clock):
    with pytest.raises(BadPayloadError, match="must be an object"):
        adapter(clock).parse(signed([1, 2], clock))


def test_event_reopen_cancels_a_delayed_survey(zd_services, clock):
    services = zd_services(_sections={"policy": {"send_delay_seconds": 3600}})
    client = create_app(services=services).test_client()
    post(client, fixture("zendesk", "ticket_status_changed_solved.json"), clock)

    response = post(client, fixture("zendesk", "ticket_status_changed_reopened.json"), clock)

    assert response.json == {"status": "reopened", "cancelled": 1}
    assert [s.status for s in rows(services, surveys)] == ["cancelled"]


def test_an_event_that_is_not_a_close_needs_no_ticket_id(clock):
    payload = fixture("zendesk", "ticket_status_changed_pending.json")
    del payload["detail"]["id"]
    assert isinstance(adapter(clock).parse(signed(payload, clock)), Ignored)


# --- triggers -------------------------------------------------------------------------------


def test_trigger_close_is_parsed(clock):
    event = adapter(clock).parse(signed(fixture("zendesk", "trigger_solved.json"), clock))
    assert event == DialogClosed(
        helpdesk="zendesk",
        dialog_id="5158",
        agent=Person(AGENT_ID, "Anna Petrova", "anna@example.com"),
        customer=Person("8447388090110", "Ivan Sidorov", "ivan@example.org"),
        team="Billing",
        channel="Web Form",
        close_times=(datetime(2026, 11, 20, 11, 58, 20, tzinfo=UTC),),
        occurrence="2026-11-20T11:58:20Z",
    )


@pytest.mark.parametrize("status", ["SOLVED", "solved", "Closed"])
def test_trigger_status_is_compared_case_insensitively(clock, status):
    payload = fixture("zendesk", "trigger_solved.json")
    payload["ticket"]["status"] = status
    assert isinstance(adapter(clock).parse(signed(payload, clock)), DialogClosed)


def test_trigger_reopen_is_recognised(clock):
    event = adapter(clock).parse(signed(fixture("zendesk", "trigger_reopened.json"), clock))
    reopened_at = datetime(2026, 11, 21, 8, 3, 11, tzinfo=UTC)  # {{ticket.updated_at...}}
    assert event == DialogReopened("zendesk", "5158", reopen_times=(reopened_at,))


def test_trigger_for_an_unassigned_ticket_has_no_agent(clock):
    event = adapter(clock).parse(
        signed(fixture("zendesk", "trigger_solved_unassigned.json"), clock)
    )
    assert isinstance(event, DialogClosed)
    assert event.agent == Person() and event.team is None


def test_trigger_body_sent_unrendered_is_ignored(clock):
    template = json.loads((EXAMPLES / "zendesk-trigger-body.json").read_text())
    assert adapter(clock).parse(signed(template, clock)) == Ignored(
        "the trigger body's placeholders were not rendered", misconfigured=True
    )


@pytest.mark.parametrize("status", ["", "  ", "{{ticket.stauts}}", None, "missing"])
def test_a_trigger_body_whose_status_did_not_render_is_ignored_as_misconfigured(clock, status):
    # Zendesk renders a placeholder it does not know (a misspelt one) as nothing: with the
    # ticket's id rendered, every close of that trigger was ignored at DEBUG, unseen.
    payload = fixture("zendesk", "trigger_solved.json")
    if status == "missing":
        del payload["ticket"]["status"]
    else:
        payload["ticket"]["status"] = status
    assert adapter(clock).parse(signed(payload, clock)) == Ignored(
        "the trigger body's ticket.status is empty or not rendered: check {{ticket.status}} "
        "in the trigger's body",
        misconfigured=True,
    )


@pytest.mark.parametrize("status", ["Gelöst", "Waiting for parts"])
def test_a_trigger_status_in_neither_list_is_ignored_as_misconfigured(clock, status):
    # A status in neither closed_statuses nor reopened_statuses is a close (a translated
    # "Solved") or a reopen (a status of the account's own) the lists do not name: every
    # one of them was ignored at DEBUG, the surveys (or their cancelling) lost unseen.
    payload = fixture("zendesk", "trigger_solved.json")
    payload["ticket"]["status"] = status
    event = adapter(clock).parse(signed(payload, clock))
    assert isinstance(event, Ignored) and event.misconfigured, event
    assert "(helpdesks.zendesk.closed_statuses)" in event.reason, event


def test_trigger_with_an_unknown_status_is_ignored(clock):
    payload = fixture("zendesk", "trigger_solved.json")
    payload["ticket"]["status"] = "Gelöst"
    assert adapter(clock).parse(signed(payload, clock)) == Ignored(
        "status 'Gelöst' is not a close (helpdesks.zendesk.closed_statuses)", misconfigured=True
    )


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [
        ("Решён", DialogClosed),  # composed ё
        ("РЕШЕ\u0308Н", DialogClosed),  # е + combining diaeresis, upper case
        (" закрыт ", DialogClosed),
        ("Открыт", DialogReopened),
        ("В ожидании", DialogReopened),
        ("Solved", Ignored),  # the list replaces the English names
        ("Новый", Ignored),
    ],
)
def test_trigger_statuses_in_the_accounts_language_are_configured(clock, rendered, expected):
    zendesk = adapter(
        clock,
        closed_statuses=["Решён", "Закрыт"],
        reopened_statuses=["Открыт", "В ожидании"],
    )
    payload = fixture("zendesk", "trigger_solved.json")
    payload["ticket"]["status"] = rendered
    assert type(zendesk.parse(signed(payload, clock))) is expected


def test_configured_statuses_leave_events_alone(clock):
    zendesk = adapter(clock, closed_statuses=["Решён"], reopened_statuses=["Открыт"])
    event = zendesk.parse(signed(fixture("zendesk", "ticket_status_changed_solved.json"), clock))
    assert isinstance(event, DialogClosed)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"closed_statuses": []}, "closed_statuses"),
        ({"closed_statuses": ["  "]}, "must not be empty"),
        ({"closed_statuses": ["x" * 101]}, "longer than 100"),
        ({"closed_statuses": ["Open"]}, "in both closed_statuses and reopened_statuses"),
        ({"reopened_statuses": ["SOLVED"]}, "in both closed_statuses and reopened_statuses"),
    ],
)
def test_status_names_are_checked(clock, options, message):
    with pytest.raises(ValidationError, match=message):
        adapter(clock, **options)


# --- deduplication --------------------------------------------------------------------------


def test_a_retried_event_gives_one_survey_even_when_every_close_is_surveyed(zd_services, clock):
    services = zd_services(_sections={"policy": EVERY_CLOSE})
    client = create_app(services=services).test_client()
    solved = fixture("zendesk", "ticket_status_changed_solved.json")
    again = fixture("zendesk", "ticket_status_changed_solved.json")
    again["id"] = "0d9c8b7a-6f5e-4d3c-9b2a-190817263544"  # a second solve, after a reopen
    again["time"] = "2026-11-20T11:59:30Z"

    statuses = [post(client, payload, clock).json["status"] for payload in (solved, solved, again)]

    assert statuses == ["queued", "duplicate", "queued"]
    assert [s.occurrence for s in rows(services, surveys)] == [
        "a8b9c1d2-3e4f-4a6b-8c8d-9e0f1a2b3c4d",
        "0d9c8b7a-6f5e-4d3c-9b2a-190817263544",
    ]


def test_a_retried_trigger_gives_one_survey(zd_services, clock):
    services = zd_services(_sections={"policy": EVERY_CLOSE})
    client = create_app(services=services).test_client()
    solved = fixture("zendesk", "trigger_solved.json")
    resolved_later = fixture("zendesk", "trigger_solved.json")
    resolved_later["ticket"]["updated_at"] = "2026-11-20T11:59:40Z"

    statuses = [
        post(client, payload, clock).json["status"] for payload in (solved, solved, resolved_later)
    ]

    assert statuses == ["queued", "duplicate", "queued"]


def test_a_trigger_without_its_update_time_is_told_apart_by_its_document(clock):
    """The body's digest is the close's occurrence then: the same body re-serialised (key
    order, whitespace) is the same close; another body is another."""
    desk = adapter(clock)
    payload = fixture("zendesk", "trigger_solved.json")
    del payload["ticket"]["updated_at"]

    def occurrence(body: bytes) -> str | None:
        event = desk.parse(webhook(body, zendesk_headers(body, SECRET, clock()), clock()))
        assert isinstance(event, DialogClosed)
        return event.occurrence

    first = occurrence(json.dumps(payload).encode())
    assert first and occurrence(json.dumps(payload, indent=2, sort_keys=True).encode()) == first
    payload["ticket"]["status"] = "Closed"
    assert occurrence(json.dumps(payload).encode()) != first


def test_only_a_trigger_without_its_update_time_says_its_occurrence_repeats(clock):
    # The event id and the update time name one solve: seen again after a reopen they are a
    # retry or replay, never a new close. A digest of the trigger body without its update
    # time is the same on a genuine re-solve (nothing in it changes), so that close may
    # re-arm a survey the reopen cancelled.
    desk = adapter(clock)
    event = desk.parse(signed(fixture("zendesk", "ticket_status_changed_solved.json"), clock))
    trigger = fixture("zendesk", "trigger_solved.json")
    timed = desk.parse(signed(trigger, clock))
    del trigger["ticket"]["updated_at"]
    untimed = desk.parse(signed(trigger, clock))
    assert isinstance(event, DialogClosed) and isinstance(timed, DialogClosed)
    assert isinstance(untimed, DialogClosed)
    assert (event.occurrence_repeats, timed.occurrence_repeats) == (False, False)
    assert untimed.occurrence_repeats is True


# --- the reply ------------------------------------------------------------------------------


# The reply's comment as the adapter sends it for reply(): escaped HTML, public.
COMMENT = {
    "html_body": '<p>How did we do? <a href="https://x.test/f">https://x.test/f</a></p>',
    "public": True,
}

# Zendesk's Show Ticket for a ticket still solved: what the reply reads before it re-solves it.
SOLVED_AT = "2026-11-21T07:59:02Z"


def solved_ticket(dialog_id: str = "5158", status: str = "solved") -> None:
    """Register Show Ticket answering the ticket ``status`` (the fixture's other fields)."""
    shown = fixture("zendesk", "show_ticket_reopened.json")
    shown["ticket"].update(status=status, updated_at=SOLVED_AT)
    responses.get(
        f"{BASE}/api/v2/tickets/{dialog_id}.json",
        match=[matchers.header_matcher({"Authorization": BASIC})],
        json=shown,
    )


@responses.activate
def test_reply_is_a_public_comment_that_keeps_the_ticket_solved(clock):
    solved_ticket()
    responses.put(
        f"{BASE}/api/v2/tickets/5158.json",
        match=[
            matchers.header_matcher({"Authorization": BASIC}),
            matchers.json_params_matcher(
                {
                    "ticket": {
                        "comment": COMMENT,
                        # Re-solved only as read: a change since is refused (409), not undone.
                        "status": "solved",
                        "safe_update": True,
                        "updated_stamp": SOLVED_AT,
                    }
                }
            ),
        ],
        json={
            "ticket": {"id": 5158, "status": "solved"},
            "audit": {"id": 91, "events": [{"id": 92, "type": "Comment", "public": True}]},
        },
    )
    assert adapter(clock).send_reply(reply()).external_id == "92"


# Zendesk's answer to a ticket update: the ticket and the audit, whose Comment event is the
# new comment.
UPDATED = {
    "ticket": {"id": 5158, "status": "solved"},
    "audit": {"id": 8001, "events": [{"id": 8002, "type": "Comment", "public": True}]},
}


@responses.activate
def test_reply_with_oauth_and_without_status(clock):
    responses.put(
        f"{BASE}/api/v2/tickets/5158.json",
        match=[
            matchers.header_matcher({"Authorization": "Bearer zd-oauth"}),
            matchers.json_params_matcher({"ticket": {"comment": COMMENT}}),
        ],
        json=UPDATED,
    )
    zendesk = adapter(clock, email=None, api_token=None, oauth_token="zd-oauth", keep_solved=False)
    assert zendesk.send_reply(reply()).external_id == "8002"


@responses.activate
def test_429_is_retryable_and_carries_retry_after(clock):
    solved_ticket()
    responses.put(f"{BASE}/api/v2/tickets/5158.json", status=429, headers={"Retry-After": "42"})
    with pytest.raises(DeliveryError) as raised:
        adapter(clock).send_reply(reply())
    assert raised.value.retryable and raised.value.retry_after == 42
    assert raised.value.http_status == 429


@pytest.mark.parametrize(
    ("status", "words"), [(422, "closed tickets cannot be updated"), (404, "no such ticket")]
)
@responses.activate
def test_refusals_are_permanent_with_a_clear_reason(clock, status, words):
    solved_ticket()
    responses.put(
        f"{BASE}/api/v2/tickets/5158.json",
        status=status,
        json={"error": "RecordInvalid", "description": "Record validation errors"},
    )
    with pytest.raises(DeliveryError) as raised:
        adapter(clock).send_reply(reply())
    assert not raised.value.retryable and raised.value.http_status == status
    assert words in raised.value.message
    # Zendesk's own reason follows ours (issue #10): operators see what the vendor said.
    assert raised.value.message.endswith(": RecordInvalid: Record validation errors")
    assert raised.value.vendor_reason == "RecordInvalid: Record validation errors"


@responses.activate
def test_a_ticket_id_cannot_escape_its_path_segment(clock):
    solved_ticket("..%2Fusers%2F1")
    responses.put(f"{BASE}/api/v2/tickets/..%2Fusers%2F1.json", json=UPDATED)
    adapter(clock).send_reply(reply(dialog_id="../users/1"))
    assert all(c.request.url.endswith("/tickets/..%2Fusers%2F1.json") for c in responses.calls)


# --- a ticket reopened between the close and the reply ---------------------------------------


@responses.activate
def test_a_ticket_the_customer_reopened_is_not_solved_again(clock):
    """The customer answered (or an agent reopened the ticket) after the close, within
    ``send_delay_seconds`` or while the reply was retried, and the reopen's webhook was not
    seen: Show Ticket says ``open``, and the reply, which would have re-solved it with
    ``status: solved``, is not posted (cancelled, ``policy.cancel_on_reopen``)."""
    responses.get(
        f"{BASE}/api/v2/tickets/5158.json", json=fixture("zendesk", "show_ticket_reopened.json")
    )
    with pytest.raises(DialogReopenedError) as raised:
        adapter(clock).send_reply(reply())
    assert "open again" in raised.value.message and not raised.value.retryable
    assert [c.request.method for c in responses.calls] == ["GET"]


@pytest.mark.parametrize("status", ["pending", "hold", "new"])
@responses.activate
def test_without_cancel_on_reopen_the_comment_leaves_a_reopened_status_alone(clock, status):
    solved_ticket(status=status)
    responses.put(
        f"{BASE}/api/v2/tickets/5158.json",
        match=[matchers.json_params_matcher({"ticket": {"comment": COMMENT}})],
        json=UPDATED,
    )
    sent = adapter(clock).send_reply(replace(reply(), cancel_on_reopen=False))
    assert sent.external_id == "8002"


@responses.activate
def test_a_change_between_the_read_and_the_update_is_a_retry_never_overwritten(clock):
    """Zendesk's safe update: the ticket updated after ``updated_stamp`` (the customer's answer
    came in between the read and the write) is refused with 409 and nothing applied; the next
    attempt reads the ticket again."""
    solved_ticket()
    responses.put(
        f"{BASE}/api/v2/tickets/5158.json",
        status=409,
        json={
            "error": "UpdateConflict",
            "description": "Safe Update prevented the update due to outdated ticket data. "
            "Please fetch the latest ticket data and try again.",
        },
    )
    with pytest.raises(DeliveryError) as raised:
        adapter(clock).send_reply(reply())
    error = raised.value
    assert error.retryable and not error.outcome_unknown and error.http_status == 409
    assert "changed after its status was read" in error.message


@responses.activate
def test_a_status_read_that_times_out_is_a_plain_retry_nothing_posted(clock):
    """The read changes nothing: its timeout leaves the reply a plain retry (not an outcome
    unknown, which would have the next attempt look for a reply never sent, and fail one sent
    again without a look-up as if it were a second copy)."""
    responses.get(f"{BASE}/api/v2/tickets/5158.json", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(DeliveryError) as raised:
        adapter(clock).send_reply(reply())
    assert raised.value.retryable and not raised.value.outcome_unknown
    assert "nothing was posted" in raised.value.message
    assert {c.request.method for c in responses.calls} == {"GET"}  # its retries in place


@pytest.mark.parametrize(
    "answer",
    [
        {"json": {"ticket": {"id": 5158}}},
        {"json": {"ticket": {"status": "solved"}}},  # no updated_at: no safe update to make
        {"status": 403, "json": {"error": "Forbidden"}},  # a token that may not read it
        {"status": 404, "body": "Not Found"},  # a proxy serving the update path alone
    ],
)
@responses.activate
def test_a_status_read_that_tells_nothing_sends_the_reply_as_before(clock, answer, caplog):
    # Not knowing is no sign of a reopen: the reply goes as it went before the read existed
    # (solved, no safe update), and the operator is told. It was a retry, for ever.
    responses.get(f"{BASE}/api/v2/tickets/5158.json", **answer)
    responses.put(
        f"{BASE}/api/v2/tickets/5158.json",
        match=[matchers.json_params_matcher({"ticket": {"comment": COMMENT, "status": "solved"}})],
        json=UPDATED,
    )
    caplog.set_level(logging.WARNING, logger="csat_hook.helpdesks.calls")

    assert adapter(clock).send_reply(reply()).external_id == "8002"

    assert [c.request.method for c in responses.calls] == ["GET", "PUT"]
    said = [r for r in caplog.records if r.getMessage() == "reply.status-unread"]
    assert [r.helpdesk for r in said] == ["zendesk"]


def test_a_reply_into_a_ticket_reopened_since_the_close_is_cancelled(
    zd_services, clock, fake_helpdesk
):
    """End to end: the close is queued, the customer reopens the ticket (no reopen trigger
    configured), the worker reads the ticket open: the reply is cancelled with its survey,
    the ticket never updated."""
    services = zd_services(agents={AGENT_ID: {"name": "Anna Petrova"}})
    client = create_app(services=services).test_client()
    post(client, fixture("zendesk", "ticket_status_changed_solved.json"), clock)
    fake_helpdesk.answer_dialog(
        "/api/v2/tickets/5158.json", fixture("zendesk", "show_ticket_reopened.json")
    )

    assert services.delivery_worker().run_once() == 1

    assert [r["method"] for r in fake_helpdesk.api_requests()] == ["GET"]
    [item] = rows(services, outbox)
    assert item.status == "cancelled" and "open again" in item.last_error
    [survey] = rows(services, surveys)
    assert survey.status == "cancelled"


def test_with_cancel_on_reopen_off_the_reply_goes_into_the_reopened_ticket_unsolved(
    zd_services, clock, fake_helpdesk
):
    """``policy.cancel_on_reopen: false`` reaches the adapter: the survey goes out, as that
    policy asks, but the ticket is left open."""
    services = zd_services(
        {"policy": {"cancel_on_reopen": False}}, agents={AGENT_ID: {"name": "Anna Petrova"}}
    )
    client = create_app(services=services).test_client()
    post(client, fixture("zendesk", "ticket_status_changed_solved.json"), clock)
    fake_helpdesk.answer_dialog(
        "/api/v2/tickets/5158.json", fixture("zendesk", "show_ticket_reopened.json")
    )

    assert services.delivery_worker().run_once() == 1

    [put] = _puts(fake_helpdesk)
    assert set(put["body"]["ticket"]) == {"comment"}
    assert [item.status for item in rows(services, outbox)] == ["sent"]


def test_a_reply_of_unknown_outcome_looked_up_then_found_reopened_is_cancelled_settled(
    zd_services, clock, fake_helpdesk, monkeypatch
):
    """The first update answered 500 (perhaps applied): the next attempt looks for it (not in
    the ticket's comments), then reads the ticket, which the customer reopened meanwhile:
    cancelled, not posted again, and settled (nothing of it is in the ticket)."""
    services = zd_services(agents={AGENT_ID: {"name": "Anna Petrova"}})
    script_answers(
        fake_helpdesk,
        monkeypatch,
        Answer("PUT", r"/api/v2/tickets/5158\.json", 500, {"error": "boom"}),
        Answer(
            "GET",
            r"/api/v2/tickets/5158/comments\.json",
            200,
            {"comments": [], "users": [], "meta": {"has_more": False}},
        ),
    )
    client = create_app(services=services).test_client()
    post(client, fixture("zendesk", "ticket_status_changed_solved.json"), clock)
    worker = services.delivery_worker()
    assert worker.run_once() == 1
    [item] = rows(services, outbox)
    assert item.status == "pending" and item.uncertain_since is not None

    fake_helpdesk.answer_dialog(
        "/api/v2/tickets/5158.json", fixture("zendesk", "show_ticket_reopened.json")
    )
    clock.advance(3600)
    assert worker.run_once() == 1

    assert len([r for r in fake_helpdesk.api_requests() if r["method"] == "PUT"]) == 1
    [item] = rows(services, outbox)
    assert item.status == "cancelled" and item.uncertain_since is None, item.last_error


def test_a_closed_ticket_marks_the_reply_failed(zd_services, clock, fake_helpdesk, monkeypatch):
    services = zd_services(agents={AGENT_ID: {"name": "Anna Petrova"}})
    script_answers(
        fake_helpdesk,
        monkeypatch,
        Answer("PUT", r"/api/v2/tickets/5158\.json", 422, {"error": "RecordInvalid"}),
    )
    client = create_app(services=services).test_client()
    post(client, fixture("zendesk", "ticket_status_changed_solved.json"), clock)

    assert services.delivery_worker().run_once() == 1

    [item] = rows(services, outbox)
    assert (item.status, item.last_http_status, item.attempts) == ("failed", 422, 1)
    assert "closed tickets cannot be updated" in item.last_error


HOSTILE_NAME = "<b>Eve</b> [click](http://evil.example) ![x](http://evil.example/p.png)"


class _Tags(HTMLParser):
    """The anchors' hrefs and every other tag an HTML body holds."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str | None] = []
        self.others: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href"))
        elif tag not in ("p", "br"):
            self.others.add(tag)


def test_a_plain_reply_is_escaped_html_never_markdown(zd_services, clock, fake_helpdesk):
    """Zendesk renders a comment's ``body`` as Markdown ("Markdown formatting is supported in
    body but not in html_body"): an agent named ``[click](url)`` or ``![x](img)`` would put a
    link or an image into the public comment the customer gets. The reply without a scale goes
    as escaped ``html_body`` too, the survey link its only anchor."""
    services = zd_services(agents={AGENT_ID: {"name": HOSTILE_NAME}})
    client = create_app(services=services).test_client()
    post(client, fixture("zendesk", "ticket_status_changed_solved.json"), clock)

    assert services.delivery_worker().run_once() == 1

    [put] = _puts(fake_helpdesk)
    comment = put["body"]["ticket"]["comment"]
    assert set(comment) == {"html_body", "public"} and comment["public"] is True
    body = comment["html_body"]
    assert html.escape(HOSTILE_NAME) in body  # shown as written, as text
    [survey] = rows(services, surveys)
    tags = _Tags()
    tags.feed(body)
    assert tags.hrefs == [survey.link] and not tags.others
    assert link_fields(survey.link)["entry.111"] == HOSTILE_NAME


# --- agent look-ups -------------------------------------------------------------------------


def _user_answer(status: int = 200, times: int | None = None) -> Answer:
    user = {
        "user": {
            "id": int(AGENT_ID),
            "name": "Anna Petrova",
            "email": "anna@example.com",
            "role": "agent",
        }
    }
    return Answer("GET", USER_PATH, status, user if status == 200 else {"error": "x"}, times=times)


def _href(html_body: str) -> str:
    """The one anchor's href, as written (entities and all)."""
    [href] = re.findall(r'<a href="([^"]*)"', html_body)
    return href


def _puts(fake: Any) -> list[dict[str, Any]]:
    return [r for r in fake.api_requests() if r["method"] == "PUT" and r["answered"] == 200]


def _beside_reads(fake: Any) -> list[str]:
    """The methods of the calls made, but the ticket's status read before each reply."""
    return [
        r["method"]
        for r in fake.api_requests()
        if not (r["method"] == "GET" and re.fullmatch(r"/api/v2/tickets/\d+\.json", r["path"]))
    ]


def test_id_only_close_gets_the_agent_name_into_the_link(
    zd_services, clock, fake_helpdesk, monkeypatch
):
    services = zd_services()
    script_answers(fake_helpdesk, monkeypatch, _user_answer())
    client = create_app(services=services).test_client()
    post(client, fixture("zendesk", "ticket_status_changed_solved.json"), clock)

    assert services.delivery_worker().run_once() == 1

    lookup, read, put = fake_helpdesk.api_requests()
    assert (lookup["method"], lookup["path"]) == ("GET", f"/api/v2/users/{AGENT_ID}.json")
    assert (read["method"], read["path"]) == ("GET", "/api/v2/tickets/5158.json")
    assert lookup["headers"]["Authorization"] == BASIC
    link = html.unescape(_href(put["body"]["ticket"]["comment"]["html_body"]))
    assert link_fields(link)["entry.111"] == "Anna Petrova"
    [survey] = rows(services, surveys)
    assert (survey.agent_name, survey.agent_email) == ("Anna Petrova", "anna@example.com")


def test_a_lookup_that_keeps_failing_still_sends_the_reply(
    zd_services, clock, fake_helpdesk, monkeypatch
):
    services = zd_services()
    script_answers(fake_helpdesk, monkeypatch, _user_answer(503))
    client = create_app(services=services).test_client()
    post(client, fixture("zendesk", "ticket_status_changed_solved.json"), clock)

    deliver_all(services, clock)

    [put] = _puts(fake_helpdesk)
    [item] = rows(services, outbox)
    # Sent once the look-up's share of the attempts is spent, the rest left to the reply.
    looked_up = agent_look_up_attempts(services.config.delivery.max_attempts)
    assert item.status == "sent" and item.attempts == looked_up + 1
    link = html.unescape(_href(put["body"]["ticket"]["comment"]["html_body"]))
    assert link_fields(link)["entry.222"] == AGENT_ID  # the id still identifies the agent


def test_a_lookup_that_recovers_sends_the_name(zd_services, clock, fake_helpdesk, monkeypatch):
    services = zd_services()
    # Three failures use up the first attempt's in-place retries; the next attempt works.
    script_answers(fake_helpdesk, monkeypatch, _user_answer(503, times=3), _user_answer())
    client = create_app(services=services).test_client()
    post(client, fixture("zendesk", "ticket_status_changed_solved.json"), clock)

    deliver_all(services, clock)

    [survey] = rows(services, surveys)
    assert survey.agent_name == "Anna Petrova" and survey.status == "sent"
    assert len(_puts(fake_helpdesk)) == 1


def test_an_unknown_user_is_sent_at_once_and_remembered(
    zd_services, clock, fake_helpdesk, monkeypatch
):
    services = zd_services(_sections={"policy": EVERY_CLOSE})
    script_answers(fake_helpdesk, monkeypatch, _user_answer(404))
    client = create_app(services=services).test_client()
    first = fixture("zendesk", "ticket_status_changed_solved.json")
    second = fixture("zendesk", "ticket_status_changed_solved.json")
    second["id"], second["detail"]["id"] = "1b2c3d4e-5f60-4718-92a3-b4c5d6e7f809", "5159"
    worker = services.delivery_worker()

    post(client, first, clock)
    assert worker.run_once() == 1
    post(client, second, clock)
    assert worker.run_once() == 1

    # The miss is cached for the second reply.
    assert _beside_reads(fake_helpdesk) == ["GET", "PUT", "PUT"]
    assert [s.status for s in rows(services, surveys)] == ["sent", "sent"]


def test_the_static_directory_wins_over_the_api(zd_services, clock, fake_helpdesk):
    services = zd_services(agents={AGENT_ID: {"name": "Anna P.", "email": "a@example.com"}})
    client = create_app(services=services).test_client()
    post(client, fixture("zendesk", "ticket_status_changed_solved.json"), clock)

    services.delivery_worker().run_once()

    assert _beside_reads(fake_helpdesk) == ["PUT"]
    assert rows(services, surveys)[0].agent_name == "Anna P."


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"base_url": None}, "set subdomain"),
        ({"base_url": None, "subdomain": "acme.zendesk.com"}, "subdomain must be the name before"),
        ({"base_url": "acme.zendesk.com"}, "must start with https://"),
        # The API's own prefix: the paths add it again (/api/v2/api/v2/tickets: 404, every
        # reply failed for good as "no such ticket").
        ({"base_url": "https://acme.zendesk.com/api/v2"}, "base_url without /api/v2"),
        ({"base_url": "https://acme.zendesk.com/API/v2/"}, "base_url without /api/v2"),
        ({"api_token": None}, "email and api_token go together"),
        ({"oauth_token": "t"}, "either email \\+ api_token, or oauth_token"),
        ({"email": None, "api_token": None}, "either email \\+ api_token, or oauth_token"),
        ({"webhook_secret": TEST_SIGNING_SECRET}, "public test secret"),
        ({"webhook_secret": None}, "webhook_secret"),
    ],
)
def test_incomplete_options_are_refused_naming_the_keys(values, message):
    options = {
        "base_url": BASE,
        "email": "bot@example.com",
        "api_token": "zd-api-token",
        "webhook_secret": SECRET,
        **values,
    }
    options = {k: v for k, v in options.items() if v is not None}
    with pytest.raises(ValidationError, match=message):
        ZendeskOptions.model_validate(options)


def test_subdomain_gives_the_base_url():
    options = ZendeskOptions.model_validate(
        {"subdomain": "acme", "oauth_token": "t", "webhook_secret": SECRET}
    )
    assert options.base_url == "https://acme.zendesk.com"


def test_the_example_config_block_loads_without_environment():
    config = load_config(str(EXAMPLES.parent / "config.example.yaml"), env={})
    options = config.helpdesks["zendesk"]
    assert options.base_url == "http://127.0.0.1:8099"  # the local fake helpdesk
    assert options.email and options.api_token and options.oauth_token is None


PRIVATE = "Customer jane@acme.inc wrote: my password is hunter2"


def test_an_ignored_reason_never_quotes_text_that_is_no_name(clock):
    # The reason is answered to the sender and logged: it quoted the event type, the
    # statuses and the trigger's status whatever they held.
    payload = fixture("zendesk", "ticket_priority_changed.json")
    payload["type"] = "zen:event-type:" + PRIVATE
    assert adapter(clock).parse(signed(payload, clock)) == Ignored(
        "(not a name: 67 characters) is not a status change"
    )
    payload = fixture("zendesk", "ticket_status_changed_pending.json")
    payload["event"]["current"] = PRIVATE
    assert adapter(clock).parse(signed(payload, clock)) == Ignored(
        "status open → (not a name: 52 characters) is not a close"
    )
    payload = fixture("zendesk", "trigger_solved.json")
    payload["ticket"]["status"] = PRIVATE
    assert adapter(clock).parse(signed(payload, clock)) == Ignored(
        "status '(not a name: 52 characters)' is not a close (helpdesks.zendesk.closed_statuses)",
        misconfigured=True,
    )
