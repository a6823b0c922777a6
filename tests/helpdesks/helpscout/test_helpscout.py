"""Help Scout: signatures (with the PHP SDK's published test), convo.status parsing, the reply
request, OAuth2 token caching and renewal, rate limits, user look-ups, and the whole path from
webhook to delivered reply.

Help Scout HTTP is faked with ``responses`` (no test reaches the network).
"""

from __future__ import annotations

import html
import json
import logging
import re
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
import requests
import responses
import sqlalchemy as sa
from responses import matchers

from csat_hook.app import create_app
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.errors import ConfigError
from csat_hook.errors import DeliveryError
from csat_hook.errors import DialogReopenedError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.helpscout import HelpScoutHelpdesk
from csat_hook.helpdesks.helpscout import HelpScoutOptions
from csat_hook.helpdesks.helpscout.webhook import as_number
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.signing import PreviousSecret
from csat_hook.helpdesks.transport import HttpClient
from tests.helpdesks.helpscout.kit import helpscout_headers
from tests.helpers import body_of
from tests.helpers import fixture
from tests.helpers import link_fields

# Every distinct close is surveyed, with no grace window: these tests are about dedup keys.
EVERY_CLOSE = {"per_dialog": "every_close", "reclose_grace_seconds": 0}

API = "https://api.helpscout.test"
WEBHOOK_SECRET = "hs-webhook-secret"
APP_ID = "hs-app-id"
APP_SECRET = "hs-app-secret"
CLOSED = "convo.status.closed.json"
TOKEN_BODY = {"grant_type": "client_credentials", "client_id": APP_ID, "client_secret": APP_SECRET}
REPLY_URL = f"{API}/v2/conversations/2391938111/reply"
CONVERSATION_URL = f"{API}/v2/conversations/2391938111"


def options(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "helpscout",
        "base_url": API,
        "client_id": APP_ID,
        "client_secret": APP_SECRET,
        "webhook_secret": WEBHOOK_SECRET,
        **extra,
    }


def adapter(clock: Any, **extra: Any) -> HelpScoutHelpdesk:
    return HelpScoutHelpdesk(
        "helpscout",
        HelpScoutOptions(**options(**extra)),
        http=HttpClient(sleep=lambda _s: None),
        clock=clock,
    )


def request(body: bytes, headers: dict[str, str], clock: Any) -> WebhookRequest:
    return WebhookRequest(
        body=body,
        headers={k.lower(): v for k, v in headers.items()},
        query={},
        received_at=clock(),
        content_type="application/json",
    )


def signed(payload: Any, clock: Any, event: str = "convo.status") -> WebhookRequest:
    body = body_of(payload)
    return request(body, helpscout_headers(body, WEBHOOK_SECRET, event), clock)


def reply_for(**context: Any) -> Reply:
    link = "https://docs.google.com/forms/d/e/F/viewform?usp=pp_url&entry.111=Mira&entry.444=t"
    return Reply(
        helpdesk="helpscout",
        dialog_id="2391938111",
        text=f"How did Mira do? {link}",
        link=link,
        agent=Person("256", "Mira Novak"),
        customer=Person("238604"),
        context=context or {"customer_id": "238604"},
        idempotency_key="csat-hook-1",
    )


def reply_text(reply: Reply) -> str:
    link = html.escape(reply.link)
    return f'<p>How did Mira do? <a href="{link}">{link}</a></p>'


def href(text: str) -> str:
    match = re.search(r'href="([^"]+)"', text)
    assert match, text
    return html.unescape(match.group(1))


def expect_token(bearer: str = "tok-1", expires_in: int = 172800, status: int = 200) -> Any:
    answer = {"token_type": "bearer", "access_token": bearer, "expires_in": expires_in}
    return responses.post(
        f"{API}/v2/oauth2/token",
        json=answer,
        status=status,
        match=[matchers.json_params_matcher(TOKEN_BODY)],
    )


def expect_conversation(status: str = "closed") -> Any:
    """Get Conversation, read before the reply: the webhook fixture's conversation (the same
    v2 Conversation object) with ``status``."""
    conversation = fixture("helpscout", "convo.status.active.json")
    conversation["status"] = status
    return responses.get(CONVERSATION_URL, json=conversation)


def expect_reply(
    bearer: str = "tok-1", body: dict[str, Any] | None = None, status: int = 201
) -> Any:
    expect_conversation()
    match = [matchers.header_matcher({"Authorization": f"Bearer {bearer}"})]
    if body is not None:
        match.append(matchers.json_params_matcher(body))
    return responses.post(
        REPLY_URL,
        status=status,
        body=b"",
        match=match,
        headers={"Resource-ID": "10001"} if status == 201 else {},
    )


@pytest.fixture
def services(make_config, make_services):
    return make_services(make_config(helpdesks={"helpscout": options()}))


@pytest.fixture
def client(services):
    return create_app(services=services).test_client()


def post(
    client: Any, payload: Any, event: str = "convo.status", secret: str = WEBHOOK_SECRET
) -> Any:
    body = payload if isinstance(payload, bytes) else body_of(payload)
    return client.post(
        "/webhooks/helpscout", data=body, headers=helpscout_headers(body, secret, event)
    )


def rows(services: Any, table: sa.Table) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)).all())


# --- authentication, with the Help Scout PHP SDK's published test ---------------------------
# helpscout/helpscout-api-php tests/Webhooks/IncomingWebhookTest.php signs json_encode(['id' =>
# 123]) with the secret "asdffdsa" and event "helpscout.test", and expects a bad signature
# "asdfasdfasdfasdf" to be refused. The expected header below was computed independently:
#   printf '%s' '{"id":123}' | openssl dgst -sha1 -hmac asdffdsa -binary | base64

SDK_SECRET = "asdffdsa"
SDK_TEST_BODY = b'{"id":123}'
SDK_TEST_SIGNATURE = "YhXKie6t+YQPJLRzdKWwTPsJN2w="


def test_sdk_test_vector_verifies_and_is_the_test_event(clock):
    helpdesk = adapter(clock, webhook_secret=SDK_SECRET)
    incoming = request(
        SDK_TEST_BODY,
        {"X-HelpScout-Signature": SDK_TEST_SIGNATURE, "X-HelpScout-Event": "helpscout.test"},
        clock,
    )

    helpdesk.verify(incoming)  # does not raise

    assert helpdesk.parse(incoming) == Ignored("helpscout.test: Help Scout's test event")


def test_sdk_test_vector_verifies_with_its_secret_as_a_previous_one(clock):
    # A rotation: the SDK's secret replaced by another, kept in previous_webhook_secrets.
    helpdesk = adapter(
        clock, webhook_secret="the-new-one", previous_webhook_secrets=["x" * 40, SDK_SECRET]
    )
    incoming = request(
        SDK_TEST_BODY,
        {"X-HelpScout-Signature": SDK_TEST_SIGNATURE, "X-HelpScout-Event": "helpscout.test"},
        clock,
    )

    assert helpdesk.verify(incoming) == PreviousSecret("previous_webhook_secrets", 1)
    with pytest.raises(InvalidSignatureError):
        adapter(clock, webhook_secret="the-new-one").verify(incoming)


def test_sdk_invalid_signature_is_refused(clock):
    incoming = request(
        SDK_TEST_BODY,
        {"X-HelpScout-Signature": "asdfasdfasdfasdf", "X-HelpScout-Event": "helpscout.test"},
        clock,
    )
    with pytest.raises(InvalidSignatureError):
        adapter(clock, webhook_secret=SDK_SECRET).verify(incoming)


def test_sdk_test_event_through_the_app_is_acknowledged(make_config, make_services):
    services = make_services(
        make_config(helpdesks={"helpscout": options(webhook_secret=SDK_SECRET)})
    )
    client = create_app(services=services).test_client()

    response = client.post(
        "/webhooks/helpscout",
        data=SDK_TEST_BODY,
        headers={
            "Content-Type": "application/json",
            "X-HelpScout-Event": "helpscout.test",
            "X-HelpScout-Signature": SDK_TEST_SIGNATURE,
        },
    )

    assert response.status_code == 200
    assert response.json == {
        "status": "ignored",
        "reason": "helpscout.test: Help Scout's test event",
    }


def test_sdk_conversation_payload_as_php_encodes_it_is_a_close(clock):
    # The SDK's ConversationPayloads::conversation(123), byte for byte as PHP's json_encode
    # writes it (compact, "/" escaped): the signature must cover these raw bytes.
    conversation = {
        "id": 123,
        "number": 15473,
        "threads": 2,
        "type": "email",
        "folderId": 493,
        "status": "closed",
        "state": "published",
        "subject": "Need Help",
        "preview": "I'm having a hard time resolving this",
        "mailboxId": 85,
        "assignee": {"id": 256, "first": "Mr", "last": "Robot", "email": "none@nowhere.com"},
        "createdBy": {"id": 12, "type": "customer", "email": "bear@acme.com"},
        "createdAt": "2017-04-21T14:39:56Z",
        "closedBy": 17,
        "closedAt": "2017-04-21T14:43:24Z",
        "userUpdatedAt": "2017-04-21T14:43:24Z",
        "source": {"type": "email", "via": "customer"},
        "primaryCustomer": {"id": 238604},
        "_links": {"self": {"href": "https://api.helpscout.net/v2/conversations/123"}},
    }
    body = json.dumps(conversation, separators=(",", ":")).replace("/", "\\/").encode()
    helpdesk = adapter(clock, webhook_secret=SDK_SECRET)
    incoming = request(body, helpscout_headers(body, SDK_SECRET, "convo.status"), clock)

    helpdesk.verify(incoming)
    event = helpdesk.parse(incoming)

    assert isinstance(event, DialogClosed)
    assert (event.dialog_id, event.agent) == ("123", Person("256", "Mr Robot", "none@nowhere.com"))
    assert event.customer == Person("238604") and event.occurrence == "2017-04-21T14:43:24Z"


def test_signed_close_is_queued(client, services):
    response = post(client, fixture("helpscout", CLOSED))

    assert response.status_code == 200 and response.json["status"] == "queued"
    [survey] = rows(services, surveys)
    assert (survey.dialog_id, survey.agent_id, survey.agent_name, survey.agent_email) == (
        "2391938111",
        "256",
        "Mira Novak",
        "mira.novak@example.com",
    )
    assert (survey.customer_id, survey.customer_name) == ("238604", "Vernon Bear")
    assert survey.team == "85" and survey.channel == "email"
    [item] = rows(services, outbox)
    assert item.context == {"customer_id": "238604"}


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing X-HelpScout-Signature"),
        (
            {"X-HelpScout-Signature": "bm90IHRoZSBzaWduYXR1cmU="},
            "X-HelpScout-Signature does not match the body",
        ),
    ],
)
def test_missing_or_wrong_signature_is_401_with_a_reason(client, services, headers, reason):
    response = client.post(
        "/webhooks/helpscout",
        data=body_of(fixture("helpscout", CLOSED)),
        headers={
            "Content-Type": "application/json",
            "X-HelpScout-Event": "convo.status",
            **headers,
        },
    )

    assert response.status_code == 401
    assert response.json == {"error": "unauthorized", "reason": reason}
    assert rows(services, surveys) == []


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "missing X-HelpScout-Signature"),
        ("", "missing X-HelpScout-Signature"),
        ("   ", "X-HelpScout-Signature does not match the body"),
        ("c2VjcmV0LXNpZ25hdHVyZS1ndWVzcw==", "X-HelpScout-Signature does not match the body"),
        ("sig-\u00e9t\u00e9-guess", "X-HelpScout-Signature does not match the body"),
    ],
    ids=["absent", "empty", "blank", "wrong", "not-ascii"],
)
def test_a_refused_signature_is_logged_without_it_or_the_secret(
    client, services, caplog, signature, reason
):
    caplog.set_level(logging.DEBUG)
    headers = {"Content-Type": "application/json", "X-HelpScout-Event": "convo.status"}
    if signature is not None:
        headers["X-HelpScout-Signature"] = signature

    response = client.post(
        "/webhooks/helpscout", data=body_of(fixture("helpscout", CLOSED)), headers=headers
    )

    assert response.status_code == 401
    assert response.json == {"error": "unauthorized", "reason": reason}
    [refused] = [r for r in caplog.records if r.msg == "webhook.refused"]
    assert (refused.status, refused.reason) == (401, "unauthorized")
    for record in caplog.records:
        text = record.getMessage() + repr(vars(record))
        assert WEBHOOK_SECRET not in text and APP_SECRET not in text, record
        if signature and signature.strip():
            assert signature.strip() not in text, record
    assert rows(services, surveys) == []


def test_signature_made_with_another_secret_is_401(client, services):
    response = post(client, fixture("helpscout", CLOSED), secret="another-webhook-secret")
    assert response.status_code == 401 and rows(services, surveys) == []


def test_tampered_body_is_401(client, services):
    body = body_of(fixture("helpscout", CLOSED))
    headers = helpscout_headers(body, WEBHOOK_SECRET)

    response = client.post(
        "/webhooks/helpscout", data=body.replace(b"Mira", b"Eve"), headers=headers
    )

    assert response.status_code == 401 and rows(services, surveys) == []


# --- parsing ----------------------------------------------------------------------------------


def test_close_names_agent_customer_mailbox_time_and_occurrence(clock):
    event = adapter(clock, mailboxes={85: "Billing inbox"}).parse(
        signed(fixture("helpscout", CLOSED), clock)
    )

    assert isinstance(event, DialogClosed)
    assert event.dialog_id == "2391938111"
    assert event.agent == Person("256", "Mira Novak", "mira.novak@example.com")
    assert event.customer == Person("238604", "Vernon Bear", "vernon.bear@example.org")
    assert event.team == "Billing inbox" and event.channel == "email"
    assert event.close_times == (datetime(2026, 11, 20, 11, 58, 3, tzinfo=UTC),)
    assert event.occurrence == "2026-11-20T11:58:03Z"
    assert event.reply_context == {"customer_id": "238604"}


def test_unassigned_close_credits_the_user_who_closed_it(clock):
    payload = fixture("helpscout", CLOSED)
    del payload["assignee"]
    payload["closedByUser"] = {
        "id": 17,
        "type": "user",
        "first": "Sam",
        "last": "Ortiz",
        "email": "sam.ortiz@example.com",
    }

    event = adapter(clock).parse(signed(payload, clock))

    assert isinstance(event, DialogClosed)
    assert event.agent == Person("17", "Sam Ortiz", "sam.ortiz@example.com")


def _without_customer_id(payload: dict[str, Any], how: str) -> dict[str, Any]:
    """The close with no customer id anywhere: no primaryCustomer (missing, null, or one
    without an id) and a conversation an agent started (createdBy a user)."""
    if how == "missing":
        del payload["primaryCustomer"]
    elif how == "null":
        payload["primaryCustomer"] = None
    else:
        del payload["primaryCustomer"]["id"]
    payload["createdBy"] = {"id": 256, "type": "user", "email": "mira.novak@example.com"}
    return payload


@pytest.mark.parametrize("how", ["missing", "null", "no-id"])
def test_a_close_with_no_customer_id_is_skipped_saying_why(client, services, how):
    # Help Scout's reply names the customer replied to (customer.id, required): without one the
    # close was queued and every reply failed ("no customer id"), a survey sent to nobody.
    # Skipped at once instead, recorded with its reason, nothing queued.
    payload = _without_customer_id(fixture("helpscout", CLOSED), how)

    response = post(client, payload)

    assert response.status_code == 200, response.json
    assert response.json["status"] == "skipped" and response.json["reason"] == "no_customer"
    [survey] = rows(services, surveys)
    assert (survey.status, survey.skip_reason) == ("skipped", "no_customer")
    assert rows(services, outbox) == []


def test_a_customer_who_started_the_conversation_is_replied_to_without_primary_customer(
    client, services
):
    payload = fixture("helpscout", CLOSED)
    payload["primaryCustomer"] = None  # createdBy (type customer) names them: 238604

    response = post(client, payload)

    assert response.json["status"] == "queued", response.json
    [item] = rows(services, outbox)
    assert item.context == {"customer_id": "238604"}


@pytest.mark.parametrize("status", ["active", "pending"])
def test_status_back_to_active_or_pending_is_a_reopen(clock, status):
    payload = fixture("helpscout", "convo.status.active.json")
    payload["status"] = status
    # An agent's last update, then the time the customer has waited since: neither names the
    # reopen itself, and intake takes the later one.
    assert adapter(clock).parse(signed(payload, clock)) == DialogReopened(
        "helpscout",
        "2391938111",
        reopen_times=(
            datetime(2026, 11, 20, 12, 30, 45, tzinfo=UTC),
            datetime(2026, 11, 20, 10, 40, 11, tzinfo=UTC),
        ),
    )


@pytest.mark.parametrize(
    ("name", "event", "reason"),
    [
        ("convo.assigned.json", "convo.assigned", "event convo.assigned is not a status change"),
        (
            CLOSED,
            "convo.agent.reply.created",
            "event convo.agent.reply.created is not a status change",
        ),
        ("helpscout.test.json", "helpscout.test", "helpscout.test: Help Scout's test event"),
    ],
)
def test_other_events_are_acknowledged_and_ignored(client, services, name, event, reason):
    response = post(client, fixture("helpscout", name), event=event)

    assert response.status_code == 200
    assert response.json == {"status": "ignored", "reason": reason}
    assert rows(services, surveys) == []


def test_spam_status_is_ignored(clock):
    payload = fixture("helpscout", CLOSED)
    payload["status"] = "spam"
    assert adapter(clock).parse(signed(payload, clock)) == Ignored("status spam is not a close")


def test_status_event_without_an_id_is_400(client, services):
    payload = fixture("helpscout", CLOSED)
    del payload["id"]
    response = post(client, payload)
    assert response.status_code == 400 and response.json["error"] == "missing_field"


@pytest.mark.parametrize(
    "body",
    [
        {"url": "https://api.helpscout.net/v2/conversations/2391938111"},
        {"_links": {"self": {"href": "https://api.helpscout.net/v2/conversations/2391938111"}}},
        {"id": 2391938111, "url": "https://api.helpscout.net/v2/conversations/2391938111"},
        "https://api.helpscout.net/v2/conversations/2391938111",
        b"https://api.helpscout.net/v2/conversations/2391938111",
    ],
    ids=["url", "hal-link", "id-and-url", "json-string", "bare-uri"],
)
def test_a_notification_webhooks_status_change_is_ignored_saying_why(
    client, services, caplog, body
):
    """A webhook created with ``notification: true`` sends "just a resource URI that can be
    used to fetch the entity", not the conversation (Create Webhook, Mailbox API 2.0): no
    status, no customer, nothing to survey from. It was a 400 (missing_field, not_an_object
    or not JSON) that said nothing of why, and Help Scout retried it. Now 200 "ignored",
    logged at WARNING (webhook.ignored-misconfigured), the reason naming the setting."""
    caplog.set_level(logging.DEBUG)

    response = post(client, body)

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] == "ignored"
    assert "notification" in response.json["reason"]
    assert "helpscout.com" not in response.json["reason"]
    assert rows(services, surveys) == []
    [line] = [r for r in caplog.records if r.msg == "webhook.ignored-misconfigured"]
    assert line.levelno == logging.WARNING and line.reason == response.json["reason"]


@pytest.mark.parametrize("body", [b"not json at all", [1, 2], 5, "closed"])
def test_a_status_change_body_that_is_neither_a_conversation_nor_a_uri_is_still_a_400(
    client, services, body
):
    response = post(client, body)

    assert response.status_code == 400, response.get_data()[:300]
    assert rows(services, surveys) == []


def test_redelivery_is_a_duplicate_and_a_later_close_is_new(make_config, make_services):
    services = make_services(make_config(policy=EVERY_CLOSE, helpdesks={"helpscout": options()}))
    client = create_app(services=services).test_client()
    later = fixture("helpscout", CLOSED)
    later["closedAt"] = "2026-11-21T08:00:00Z"

    statuses = [
        post(client, p).json["status"]
        for p in (fixture("helpscout", CLOSED), fixture("helpscout", CLOSED), later)
    ]

    assert statuses == ["queued", "duplicate", "queued"]


@pytest.mark.parametrize("per_dialog", ["every_close", "once"])
def test_a_close_replayed_after_a_reopen_stays_cancelled(make_config, make_services, per_dialog):
    # Help Scout signs no timestamp, so a captured close can be sent again after the
    # conversation reopened (or Help Scout retries it late): its closedAt names that close, so
    # it is a duplicate and the survey the reopen cancelled stays cancelled. A close with a
    # new closedAt is surveyed. Under per_dialog: once no occurrence is kept: the close time
    # stored with the survey tells the two apart (a later one re-arms the cancelled survey).
    policy = {**EVERY_CLOSE, "per_dialog": per_dialog, "send_delay_seconds": 3600}
    policy["cancel_on_reopen"] = True
    services = make_services(make_config(policy=policy, helpdesks={"helpscout": options()}))
    client = create_app(services=services).test_client()
    assert post(client, fixture("helpscout", CLOSED)).json["status"] == "queued"
    reopened = post(client, fixture("helpscout", "convo.status.active.json"))
    assert reopened.json == {"status": "reopened", "cancelled": 1}
    later = fixture("helpscout", CLOSED)
    later["closedAt"] = "2026-11-21T08:00:00Z"

    statuses = [post(client, p).json["status"] for p in (fixture("helpscout", CLOSED), later)]

    assert statuses == ["duplicate", "queued"]
    expected = ["cancelled", "queued"] if per_dialog == "every_close" else ["queued"]
    assert [s.status for s in rows(services, surveys)] == expected


# The event name travels in X-HelpScout-Event, which the signature does not cover: a captured
# body of another event can be sent again under "convo.status". The body's own status decides,
# so such a body is the conversation as it was then: an open one is no close, and a closed
# one names its close by closedAt, the close already recorded.


def customer_reply_body() -> dict[str, Any]:
    """convo.customer.reply.created: the conversation the customer just wrote into, active."""
    body = fixture("helpscout", "convo.assigned.json")
    body.update(threads=4, preview="Actually, one more question…")
    body["customerWaitingSince"] = {"time": "2026-11-20T12:30:45Z", "friendly": "just now"}
    return body


def note_on_closed_body() -> dict[str, Any]:
    """convo.note.created on the closed conversation: still closed, its closedAt unchanged,
    a later userUpdatedAt."""
    body = fixture("helpscout", CLOSED)
    body.update(threads=4, userUpdatedAt="2026-11-20T14:02:10Z", preview="Refund approved")
    return body


@pytest.mark.parametrize(
    "body",
    [lambda: fixture("helpscout", "convo.assigned.json"), customer_reply_body],
    ids=["convo.assigned", "convo.customer.reply.created"],
)
def test_an_open_conversations_body_sent_as_a_status_change_queues_nothing(client, services, body):
    response = post(client, body(), event="convo.status")

    assert response.status_code == 200
    assert response.json == {"status": "reopened", "cancelled": 0}
    assert rows(services, surveys) == [] and rows(services, outbox) == []


@pytest.mark.parametrize("policy", [{}, EVERY_CLOSE], ids=["once", "every_close"])
def test_a_closed_conversations_other_event_sent_as_the_close_is_that_close_again(
    make_config, make_services, policy
):
    services = make_services(make_config(policy=policy, helpdesks={"helpscout": options()}))
    client = create_app(services=services).test_client()
    assert post(client, fixture("helpscout", CLOSED)).json["status"] == "queued"

    replayed = post(client, note_on_closed_body(), event="convo.status")

    assert replayed.status_code == 200 and replayed.json["status"] == "duplicate"
    assert len(rows(services, surveys)) == 1 and len(rows(services, outbox)) == 1


# --- the reply and its token ------------------------------------------------------------------


@responses.activate
def test_reply_request_has_the_exact_shape(clock):
    reply = reply_for()
    token = expect_token()
    sent = expect_reply(
        body={"customer": {"id": 238604}, "text": reply_text(reply), "status": "closed"}
    )

    result = adapter(clock).send_reply(reply)

    assert (token.call_count, sent.call_count) == (1, 1)
    assert result.external_id == "10001"


@pytest.mark.parametrize(
    ("extra", "user"), [({"user_id": 42}, 42), ({"reply_as_agent": True}, 256)]
)
@responses.activate
def test_reply_can_be_posted_as_a_user(clock, extra, user):
    reply = reply_for()
    expect_token()
    sent = expect_reply(
        body={
            "customer": {"id": 238604},
            "text": reply_text(reply),
            "status": "closed",
            "user": user,
        }
    )
    adapter(clock, **extra).send_reply(reply)
    assert sent.call_count == 1


# --- a conversation reactivated between the close and the reply -------------------------------


@responses.activate
def test_a_conversation_the_customer_reactivated_is_not_closed_again(clock):
    """The customer wrote back (or an agent reopened it) after the close, within
    ``send_delay_seconds`` or while the reply was retried, and the reopen's webhook was not
    seen: Get Conversation says ``active``; the reply, whose ``"status": "closed"`` would have
    closed it again, is not posted (cancelled, ``policy.cancel_on_reopen``)."""
    expect_token()
    responses.get(CONVERSATION_URL, json=fixture("helpscout", "convo.status.active.json"))
    posted = responses.post(REPLY_URL, status=201, headers={"Resource-ID": "10001"})

    with pytest.raises(DialogReopenedError) as caught:
        adapter(clock).send_reply(reply_for())

    assert "active again" in caught.value.message and not caught.value.retryable
    assert posted.call_count == 0


@pytest.mark.parametrize("status", ["active", "pending"])
@responses.activate
def test_without_cancel_on_reopen_the_reply_keeps_the_conversations_status(clock, status):
    reply = replace(reply_for(), cancel_on_reopen=False)
    expect_token()
    sent = responses.post(
        REPLY_URL,
        status=201,
        headers={"Resource-ID": "10001"},
        match=[
            matchers.json_params_matcher(
                {"customer": {"id": 238604}, "text": reply_text(reply), "status": status}
            )
        ],
    )
    expect_conversation(status)

    assert adapter(clock).send_reply(reply).external_id == "10001"
    assert sent.call_count == 1


@pytest.mark.parametrize(
    ("answer", "words", "retryable"),
    [
        ({"json": {"id": 2391938111, "status": "spam"}}, "marked spam", False),
        (
            {
                "status": 301,
                "headers": {"Location": f"{API}/v2/conversations/2391938222"},
            },
            "merged into another",
            False,
        ),
    ],
)
@responses.activate
def test_a_conversation_that_is_no_closed_one_gets_no_reply(clock, answer, words, retryable):
    expect_token()
    responses.get(CONVERSATION_URL, **answer)
    posted = responses.post(REPLY_URL, status=201, headers={"Resource-ID": "10001"})

    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for())

    assert words in caught.value.message and caught.value.retryable is retryable
    assert not caught.value.outcome_unknown and posted.call_count == 0


@pytest.mark.parametrize(
    "answer",
    [
        {"json": {"id": 2391938111}},
        {"status": 403, "json": {"message": "Forbidden"}},  # an app without read access
    ],
)
@responses.activate
def test_a_status_read_that_tells_nothing_sends_the_reply_closed_as_before(clock, answer, caplog):
    # Not knowing is no sign of a reactivation: the reply goes closed, as before the read
    # existed, and the operator is told. It was a retry, for ever.
    expect_token()
    responses.get(CONVERSATION_URL, **answer)
    posted = responses.post(
        REPLY_URL,
        status=201,
        headers={"Resource-ID": "10001"},
        match=[matchers.json_params_matcher({"status": "closed"}, strict_match=False)],
    )
    caplog.set_level(logging.WARNING, logger="csat_hook.helpdesks.calls")

    assert adapter(clock).send_reply(reply_for()).external_id == "10001"

    assert posted.call_count == 1
    said = [r for r in caplog.records if r.getMessage() == "reply.status-unread"]
    assert [r.helpdesk for r in said] == ["helpscout"]


@responses.activate
def test_a_status_read_that_times_out_is_a_plain_retry_nothing_posted(clock):
    # The read changes nothing: its timeout is no reply of unknown outcome to look for.
    expect_token()
    responses.get(CONVERSATION_URL, body=requests.exceptions.ReadTimeout("slow"))
    posted = responses.post(REPLY_URL, status=201, headers={"Resource-ID": "10001"})

    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for())

    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "nothing was posted" in caught.value.message and posted.call_count == 0


@responses.activate
def test_a_reply_into_a_conversation_reactivated_since_the_close_is_cancelled(client, services):
    """End to end: the close is queued, the customer writes back (no reopen delivered), the
    worker reads the conversation active: the reply is cancelled with its survey, nothing
    posted."""
    expect_token()
    responses.get(CONVERSATION_URL, json=fixture("helpscout", "convo.status.active.json"))
    posted = responses.post(REPLY_URL, status=201, headers={"Resource-ID": "10001"})

    assert post(client, fixture("helpscout", CLOSED)).json["status"] == "queued"
    assert services.delivery_worker().run_once() == 1

    assert posted.call_count == 0
    [item] = rows(services, outbox)
    assert item.status == "cancelled" and "active again" in item.last_error
    [survey] = rows(services, surveys)
    assert survey.status == "cancelled"


@responses.activate
def test_token_is_cached_until_it_is_about_to_expire(clock):
    first = expect_token("tok-1", expires_in=7200)
    helpdesk = adapter(clock)
    expect_reply("tok-1")
    helpdesk.send_reply(reply_for())
    clock.advance(6000)
    helpdesk.send_reply(reply_for())
    assert first.call_count == 1

    clock.advance(1000)  # within the renewal margin before the 2 h expire
    responses.replace(
        responses.POST, f"{API}/v2/oauth2/token", json={"access_token": "tok-2", "expires_in": 7200}
    )
    renewed = expect_reply("tok-2")
    helpdesk.send_reply(reply_for())

    assert renewed.call_count == 1


@pytest.mark.parametrize("expires_in", [10**20, 10**400, "1e300"])
@responses.activate
def test_a_token_lifetime_too_long_to_believe_is_kept_two_days_at_most(clock, expires_in):
    token = responses.post(
        f"{API}/v2/oauth2/token", json={"access_token": "tok-1", "expires_in": expires_in}
    )
    sent = expect_reply("tok-1")
    helpdesk = adapter(clock)

    helpdesk.send_reply(reply_for())  # raised OverflowError in timedelta before
    clock.advance(24 * 3600)
    helpdesk.send_reply(reply_for())
    assert (token.call_count, sent.call_count) == (1, 2)

    clock.advance(24 * 3600)  # two days: renewed
    helpdesk.send_reply(reply_for())
    assert token.call_count == 2


@pytest.mark.parametrize(
    "expires_in", [None, "soon", -5, 0, True, "1e400", float("inf"), "nan", {"s": 1}]
)
@responses.activate
def test_an_unreadable_token_lifetime_is_a_short_one(clock, expires_in):
    token = responses.post(
        f"{API}/v2/oauth2/token", json={"access_token": "tok-1", "expires_in": expires_in}
    )
    expect_reply("tok-1")
    helpdesk = adapter(clock)

    helpdesk.send_reply(reply_for())
    helpdesk.send_reply(reply_for())  # reused at once
    clock.advance(300)
    helpdesk.send_reply(reply_for())  # renewed within minutes

    assert token.call_count == 2


@responses.activate
def test_401_renews_the_token_once_and_sends_again(clock):
    responses.add(
        responses.POST,
        f"{API}/v2/oauth2/token",
        json={"access_token": "tok-1", "expires_in": 172800},
    )
    responses.add(
        responses.POST,
        f"{API}/v2/oauth2/token",
        json={"access_token": "tok-2", "expires_in": 172800},
    )
    revoked = responses.post(
        REPLY_URL, status=401, match=[matchers.header_matcher({"Authorization": "Bearer tok-1"})]
    )
    fresh = expect_reply("tok-2")

    result = adapter(clock).send_reply(reply_for())

    assert (revoked.call_count, fresh.call_count) == (1, 1)
    assert result.external_id == "10001"


@responses.activate
def test_a_second_401_is_permanent(clock):
    responses.post(f"{API}/v2/oauth2/token", json={"access_token": "tok", "expires_in": 60})
    expect_conversation()
    rejected = responses.post(REPLY_URL, status=401)

    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for())

    assert caught.value.retryable is False and rejected.call_count == 2


@responses.activate
def test_refused_credentials_are_permanent_and_name_the_keys(clock):
    expect_token(status=401)
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for())
    assert caught.value.retryable is False
    assert "helpdesks.helpscout.client_id" in str(caught.value)
    assert APP_SECRET not in str(caught.value)


@responses.activate
def test_token_endpoint_outage_is_retryable(clock):
    responses.post(f"{API}/v2/oauth2/token", status=503)
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for())
    assert caught.value.retryable and len(responses.calls) == 1


@pytest.mark.parametrize("failure", [500, 502, 504, "timeout"])
@responses.activate
def test_a_token_request_with_an_unknown_outcome_leaves_the_reply_a_plain_retry(clock, failure):
    # The token request is a POST, so a 500 or a timeout to it is an unknown outcome by the
    # transport's rule; but no reply was posted, so nothing needs looking up before a resend.
    if failure == "timeout":
        responses.post(f"{API}/v2/oauth2/token", body=requests.exceptions.ReadTimeout("slow"))
    else:
        responses.post(f"{API}/v2/oauth2/token", status=failure)
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "token request failed" in str(caught.value)
    assert str(caught.value).endswith("no reply was sent")
    assert [c.request.url for c in responses.calls] == [f"{API}/v2/oauth2/token"]


@pytest.mark.parametrize(
    "answer",
    [b"<html><body>Down for maintenance</body></html>", b"", b'{"access_token": "tok'],
)
@responses.activate
def test_a_token_answer_that_is_not_json_leaves_the_reply_a_plain_retry(clock, answer):
    # A 200 page from a proxy or a half-deployed API: unreadable, not a refusal of the app's
    # credentials. Failed for good, the survey was lost on one bad page.
    responses.post(f"{API}/v2/oauth2/token", body=answer, status=200)
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert str(caught.value).endswith("no reply was sent")
    assert [c.request.url for c in responses.calls] == [f"{API}/v2/oauth2/token"]


@responses.activate
def test_a_token_answer_in_json_without_a_token_is_permanent(clock):
    responses.post(f"{API}/v2/oauth2/token", json={"token_type": "bearer"}, status=200)
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for())
    assert not caught.value.retryable and "no access_token" in str(caught.value)


@responses.activate
def test_429_honours_x_ratelimit_retry_after(clock):
    expect_token()
    expect_conversation()
    responses.post(
        REPLY_URL,
        status=429,
        headers={
            "X-RateLimit-Limit-Minute": "200",
            "X-RateLimit-Remaining-Minute": "0",
            "X-RateLimit-Retry-After": "12",
        },
    )
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for())
    assert caught.value.retryable and caught.value.retry_after == 12


@pytest.mark.parametrize("status", [400, 403, 404, 412])
@responses.activate
def test_client_errors_are_permanent(clock, status):
    expect_token()
    expect_conversation()
    responses.post(REPLY_URL, status=status, json={"message": "Bad request"})
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for())
    assert caught.value.retryable is False and caught.value.http_status == status


def test_reply_without_a_customer_id_is_permanent(clock):
    reply = reply_for()
    reply = Reply(**{**reply.__dict__, "context": {}, "customer": Person()})
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply)
    assert caught.value.retryable is False and "primaryCustomer.id" in str(caught.value)


# --- user look-ups ----------------------------------------------------------------------------


@responses.activate
def test_fetch_agent_reads_the_user(clock):
    expect_token()
    responses.get(
        f"{API}/v2/users/256",
        json={
            "id": 256,
            "firstName": "Mira",
            "lastName": "Novak",
            "email": "mira.novak@example.com",
            "role": "user",
            "timezone": "Europe/Prague",
            "type": "user",
        },
        match=[matchers.header_matcher({"Authorization": "Bearer tok-1"})],
    )

    found = adapter(clock).fetch_agent(Person(id="256"), {})

    assert found == Person("256", "Mira Novak", "mira.novak@example.com")


@responses.activate
def test_unknown_user_is_none(clock):
    expect_token()
    responses.get(f"{API}/v2/users/9", status=404)
    assert adapter(clock).fetch_agent(Person(id="9"), {}) is None


# --- from webhook to delivered reply ---------------------------------------------------------


def id_only_close() -> dict[str, Any]:
    payload = fixture("helpscout", CLOSED)
    payload["assignee"] = {"id": 256, "type": "user"}
    return payload


@responses.activate
def test_id_only_assignee_gets_a_link_with_the_users_name(client, services):
    expect_token()
    responses.get(
        f"{API}/v2/users/256",
        json={
            "id": 256,
            "firstName": "Mira",
            "lastName": "Novak",
            "email": "mira.novak@example.com",
        },
    )
    sent = expect_reply()

    assert post(client, id_only_close()).json["status"] == "queued"
    assert services.delivery_worker().run_once() == 1

    fields = link_fields(href(json.loads(sent.calls[0].request.body)["text"]))
    assert (fields["entry.111"], fields["entry.222"]) == ("Mira Novak", "256")
    assert fields["entry.333"] == "2391938111"
    [item] = rows(services, outbox)
    assert (item.status, item.external_id) == ("sent", "10001")


@responses.activate
def test_reply_is_still_sent_when_the_lookup_keeps_failing(client, services, clock):
    expect_token()
    lookup = responses.get(f"{API}/v2/users/256", status=500)
    sent = expect_reply()
    post(client, id_only_close())
    worker = services.delivery_worker()

    for _ in range(services.config.delivery.max_attempts):
        worker.run_once()
        clock.advance(3600)

    assert sent.call_count == 1 and lookup.call_count > 1
    fields = link_fields(href(json.loads(sent.calls[0].request.body)["text"]))
    assert fields["entry.222"] == "256"
    assert [i.status for i in rows(services, outbox)] == ["sent"]


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"webhook_secret": "x" * 41}, "webhook_secret must be 1 to 40 characters"),
        ({"client_id": ""}, "client_id and client_secret are required"),
        ({"user_id": 42, "reply_as_agent": True}, "set user_id or reply_as_agent, not both"),
        ({"user_id": "mira"}, "user_id must be a Help Scout user id"),
        ({"user_id": "\u00b2"}, "user_id must be a Help Scout user id"),
        ({"base_url": "api.helpscout.net"}, "base_url: must start with https://"),
        # The API's own prefix: the paths add it again (/v2/v2/oauth2/token: 404, every reply
        # failed for good, blamed on client_id and client_secret).
        ({"base_url": "https://api.helpscout.net/v2"}, "base_url without /v2"),
        ({"base_url": "https://api.helpscout.net/v2/"}, "base_url without /v2"),
    ],
)
def test_bad_options_name_the_key(make_config, extra, message):
    with pytest.raises(ConfigError) as caught:
        make_config(helpdesks={"helpscout": options(**extra)})
    assert message in str(caught.value) and "helpdesks.helpscout" in str(caught.value)
    assert APP_SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "sent"), [("412", 412), ("00412", 412), ("²", "²"), ("٣", "٣"), ("4 1", "4 1")]
)
def test_an_id_is_sent_as_a_number_only_when_it_is_ascii_digits(value: str, sent: Any) -> None:
    assert as_number(value) == sent and type(as_number(value)) is type(sent)


PRIVATE = "Customer jane@acme.inc wrote: my password is hunter2"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (PRIVATE, "event (not a name: 52 characters) is not a status change"),
        # As a WSGI server hands it over: the header's UTF-8 bytes read as Latin-1 ("é" is
        # "Ã©"); the reason quoted it so ("\u00c3\u00a9" in the JSON answer).
        ("conv\u00c3\u00a9.x", "event convé.x is not a status change"),
        ("conv\u00c3\u00aa", "event convê is not a status change"),
        ("conv\u00ff", "event (not a name: 5 characters) is not a status change"),  # no UTF-8
        ("convo.assigned", "event convo.assigned is not a status change"),
    ],
)
def test_an_ignored_event_is_named_only_when_it_looks_like_a_name(clock, event, reason):
    # The reason is answered to the sender and logged: it quoted the header whatever it held.
    assert adapter(clock).parse(signed(fixture("helpscout", CLOSED), clock, event)) == Ignored(
        reason
    )


def test_an_ignored_status_is_named_only_when_it_looks_like_a_name(clock):
    payload = fixture("helpscout", CLOSED)
    payload["status"] = PRIVATE
    assert adapter(clock).parse(signed(payload, clock)) == Ignored(
        "status (not a name: 52 characters) is not a close"
    )


@pytest.mark.parametrize("bearer", ["tok-1\r\nX-Injected: yes", "tok\n1", "tok-1\x00"])
@responses.activate
def test_a_token_that_cannot_be_sent_in_a_header_is_not_kept(clock, bearer):
    # A broken or hostile token endpoint: requests refuses the header (no injection), but the
    # token was kept for its lifetime (two days) and every reply failed for good meanwhile,
    # as "InvalidHeader". Like an unreadable answer: a plain retry, the token asked again.
    responses.add(
        responses.POST,
        f"{API}/v2/oauth2/token",
        json={"access_token": bearer, "expires_in": 172800},
    )
    token = responses.add(
        responses.POST,
        f"{API}/v2/oauth2/token",
        json={"access_token": "tok-2", "expires_in": 172800},
    )
    sent = expect_reply("tok-2")
    helpdesk = adapter(clock)

    with pytest.raises(DeliveryError) as caught:
        helpdesk.send_reply(reply_for())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "X-Injected" not in str(caught.value)
    assert [c.request.url for c in responses.calls] == [f"{API}/v2/oauth2/token"]

    assert helpdesk.send_reply(reply_for()).external_id == "10001"
    assert (token.call_count, sent.call_count) == (1, 1)
