"""Intercom: signatures, the 1.x and 2.x close payloads, the reply and re-close requests, rate
limits, admin look-ups, and the whole path from webhook to delivered reply.

Intercom HTTP is faked with ``responses`` (no test reaches the network).
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
import responses
import sqlalchemy as sa
from responses import matchers

from csat_hook.app import create_app
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.errors import ConfigError
from csat_hook.errors import DeliveryError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.intercom import IntercomHelpdesk
from csat_hook.helpdesks.intercom import IntercomOptions
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.signing import PreviousSecret
from csat_hook.helpdesks.transport import HttpClient
from tests.helpdesks.intercom.kit import intercom_headers
from tests.helpers import body_of
from tests.helpers import fixture
from tests.helpers import link_fields

# Every distinct close is surveyed, with no grace window: these tests are about dedup keys.
EVERY_CLOSE = {"per_dialog": "every_close", "reclose_grace_seconds": 0}

API = "https://api.intercom.test"
SECRET = "ic-client-secret"
TOKEN = "ic-access-token"
V1_CLOSE = "conversation.admin.closed.v1.json"
V2_CLOSE = "conversation.admin.closed.v2.json"


def options(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "intercom",
        "base_url": API,
        "access_token": TOKEN,
        "client_secret": SECRET,
        **extra,
    }


def adapter(clock: Any, **extra: Any) -> IntercomHelpdesk:
    return IntercomHelpdesk(
        "intercom",
        IntercomOptions(**options(**extra)),
        http=HttpClient(sleep=lambda _s: None),
        clock=clock,
    )


def signed(payload: Any, clock: Any, secret: str = SECRET) -> WebhookRequest:
    body = body_of(payload)
    headers = {k.lower(): v for k, v in intercom_headers(body, secret).items()}
    return WebhookRequest(
        body=body, headers=headers, query={}, received_at=clock(), content_type="application/json"
    )


def reply_for(dialog_id: str = "215470063290017", **context: Any) -> Reply:
    link = "https://docs.google.com/forms/d/e/F/viewform?usp=pp_url&entry.111=Mira&entry.444=t"
    return Reply(
        helpdesk="intercom",
        dialog_id=dialog_id,
        text=f"How did Mira <Support> do?\n\nRate us: {link}",
        link=link,
        agent=Person("991267715", "Mira"),
        customer=Person("c-1"),
        context=context,
        idempotency_key="csat-hook-1",
    )


def href(body: str) -> str:
    match = re.search(r'href="([^"]+)"', body)
    assert match, body
    return html.unescape(match.group(1))


@pytest.fixture
def services(make_config, make_services):
    return make_services(make_config(helpdesks={"intercom": options()}))


@pytest.fixture
def client(services):
    return create_app(services=services).test_client()


def post(client: Any, payload: Any, secret: str = SECRET) -> Any:
    body = body_of(payload)
    return client.post("/webhooks/intercom", data=body, headers=intercom_headers(body, secret))


def rows(services: Any, table: sa.Table) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)).all())


# --- authentication -------------------------------------------------------------------------


def test_signed_close_is_queued_with_the_assignee(client, services):
    response = post(client, fixture("intercom", V1_CLOSE))

    assert response.status_code == 200 and response.json["status"] == "queued"
    [survey] = rows(services, surveys)
    assert (survey.dialog_id, survey.agent_id, survey.agent_name, survey.agent_email) == (
        "137324500000000",
        "3330619",
        "Andrea Ruiz",
        "andrea.ruiz@example.com",
    )
    assert (survey.customer_id, survey.customer_email) == (
        "5ee3d479d1cf3dedbee23d68",
        "bob.tester@example.org",
    )
    [item] = rows(services, outbox)
    assert item.context == {"admin_id": "3330619"}


@pytest.mark.parametrize("kind", [[], {}, ["user"]], ids=["[]", "{}", "[user]"])
def test_an_author_type_that_is_not_text_is_no_customer_and_no_500(client, services, kind):
    """``source.author.type`` was looked up in a set as it came: a list or an object there
    (unhashable) raised TypeError, a 500 the vendor retries forever. It is a label: anything
    but one of the customer types names no customer, and the close is still taken."""
    payload = fixture("intercom", V2_CLOSE)
    payload["data"]["item"]["source"]["author"]["type"] = kind
    payload["data"]["item"].pop("contacts", None)

    response = post(client, payload)

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] == "queued"
    [survey] = rows(services, surveys)
    assert (survey.customer_id, survey.customer_email) == (None, None)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing X-Hub-Signature"),
        ({"X-Hub-Signature": "sha1=" + "0" * 40}, "X-Hub-Signature does not match the body"),
    ],
)
def test_missing_or_wrong_signature_is_401_with_a_reason(client, services, headers, reason):
    response = client.post(
        "/webhooks/intercom",
        data=body_of(fixture("intercom", V1_CLOSE)),
        headers={"Content-Type": "application/json", **headers},
    )

    assert response.status_code == 401
    assert response.json == {"error": "unauthorized", "reason": reason}
    assert rows(services, surveys) == []


def test_signature_made_with_another_secret_is_401(client, services):
    response = post(client, fixture("intercom", V1_CLOSE), secret="someone-elses-secret")
    assert response.status_code == 401 and rows(services, surveys) == []


def test_tampered_body_is_401(client, services):
    body = body_of(fixture("intercom", V1_CLOSE))
    headers = intercom_headers(body, SECRET)
    tampered = body.replace(b'"Andrea Ruiz"', b'"Mallory"')

    response = client.post("/webhooks/intercom", data=tampered, headers=headers)

    assert response.status_code == 401 and rows(services, surveys) == []


def test_a_bare_hex_signature_without_the_sha1_prefix_is_refused(clock):
    request = signed(fixture("intercom", V1_CLOSE), clock)
    bare = request.headers["x-hub-signature"].removeprefix("sha1=")
    with pytest.raises(InvalidSignatureError):
        adapter(clock).verify(WebhookRequest(request.body, {"x-hub-signature": bare}, {}, clock()))


def test_published_hmac_sha1_vector_verifies(clock):
    # Intercom publishes no signature test vector (its docs' example names no secret), so the
    # construction is checked against RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya
    # want for nothing?") = effcdf6a…7c79, sent the way Intercom sends it.
    request = WebhookRequest(
        body=b"what do ya want for nothing?",
        headers={"x-hub-signature": "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
        query={},
        received_at=clock(),
    )

    adapter(clock, client_secret="Jefe").verify(request)  # does not raise
    with pytest.raises(InvalidSignatureError):
        adapter(clock, client_secret="jefe").verify(request)
    # A rotation: "Jefe" replaced, kept in previous_client_secrets; another is refused.
    rotated = adapter(clock, client_secret="new-one", previous_client_secrets=["Jefe"])
    assert rotated.verify(request) == PreviousSecret("previous_client_secrets", 0)
    with pytest.raises(InvalidSignatureError):
        adapter(clock, client_secret="new-one", previous_client_secrets=["jefe"]).verify(request)


# --- parsing ----------------------------------------------------------------------------------


def test_v1_close_names_agent_customer_time_and_occurrence(clock):
    event = adapter(clock).parse(signed(fixture("intercom", V1_CLOSE), clock))

    assert isinstance(event, DialogClosed)
    assert event.dialog_id == "137324500000000"
    assert event.agent == Person("3330619", "Andrea Ruiz", "andrea.ruiz@example.com")
    assert event.customer == Person(
        "5ee3d479d1cf3dedbee23d68", "Bob Tester", "bob.tester@example.org"
    )
    # The close part's time, the item's update, the notification's creation.
    assert event.close_times == tuple(
        datetime.fromtimestamp(at, tz=UTC) for at in (1596635368, 1596635368, 1596635369)
    )
    assert event.occurrence == "notif_2a8995f8-92cb-4edd-a38c-041f4cdbf659"
    assert event.reply_context == {"admin_id": "3330619"}


def test_v2_close_carries_the_assignee_id_only_and_replies_as_the_closer(clock):
    event = adapter(clock).parse(signed(fixture("intercom", V2_CLOSE), clock))

    assert isinstance(event, DialogClosed)
    assert event.dialog_id == "215470063290017"
    assert event.agent == Person(id="991267715")  # name comes from GET /admins/{id}
    assert event.team == "5017691"
    assert event.customer == Person(
        "6762f1571bb69f9f2193bbbb", "Joe Bloggs", "joe.bloggs@example.org"
    )
    assert event.channel == "conversation"
    # statistics.last_close_at, the close part's time, the item's update, the notification's.
    assert event.close_times == tuple(
        datetime.fromtimestamp(at, tz=UTC)
        for at in (1763636100, 1763636100, 1763636100, 1763636101)
    )
    assert event.occurrence == "notif_5d3f0a6e-8c3b-4f1a-9a77-2b1f0c9d7e41"
    assert event.reply_context == {"admin_id": "991267720"}


def test_v2_team_ids_are_named_by_the_teams_option(clock):
    event = adapter(clock, teams={5017691: "Billing"}).parse(
        signed(fixture("intercom", V2_CLOSE), clock)
    )
    assert isinstance(event, DialogClosed) and event.team == "Billing"


def test_v2_close_by_the_assignee_takes_the_name_from_the_close_part(clock):
    payload = fixture("intercom", V2_CLOSE)
    payload["data"]["item"]["admin_assignee_id"] = 991267720

    event = adapter(clock).parse(signed(payload, clock))

    assert isinstance(event, DialogClosed)
    assert event.agent == Person("991267720", "Priya Shah", "priya.shah@example.com")


def test_unassigned_v2_close_credits_the_closing_admin(clock):
    payload = fixture("intercom", V2_CLOSE)
    payload["data"]["item"]["admin_assignee_id"] = None

    event = adapter(clock).parse(signed(payload, clock))

    assert isinstance(event, DialogClosed) and event.agent.id == "991267720"


def test_close_without_parts_falls_back_to_the_statistics_closer(clock):
    payload = fixture("intercom", V2_CLOSE)
    payload["data"]["item"]["admin_assignee_id"] = None
    payload["data"]["item"]["conversation_parts"]["conversation_parts"] = []

    event = adapter(clock).parse(signed(payload, clock))

    assert isinstance(event, DialogClosed)
    assert event.agent == Person(id="991267720")
    assert event.reply_context == {"admin_id": "991267720"}


def test_a_bots_close_credits_no_one_but_the_assignee(clock):
    payload = fixture("intercom", V2_CLOSE)
    [part] = payload["data"]["item"]["conversation_parts"]["conversation_parts"]
    part["author"] = {"id": "991267800", "type": "bot", "name": "Fin"}

    assigned = adapter(clock).parse(signed(payload, clock))
    payload["data"]["item"]["admin_assignee_id"] = None
    unassigned = adapter(clock).parse(signed(payload, clock))

    assert isinstance(assigned, DialogClosed) and isinstance(unassigned, DialogClosed)
    assert assigned.agent == Person(id="991267715")
    assert assigned.reply_context == {"admin_id": "991267715"}
    assert not unassigned.agent.known and unassigned.reply_context == {}


def test_a_close_by_a_bot_listed_in_ignore_closes_by_is_ignored(clock):
    payload = fixture("intercom", V2_CLOSE)
    [part] = payload["data"]["item"]["conversation_parts"]["conversation_parts"]
    part["author"] = {"id": "991267800", "type": "bot", "name": "Fin"}

    event = adapter(clock, ignore_closes_by=[991267800]).parse(signed(payload, clock))

    assert isinstance(event, Ignored) and "991267800" in event.reason


def test_v1_conversation_assigned_to_a_team_records_the_team(clock):
    payload = fixture("intercom", V1_CLOSE)
    payload["data"]["item"]["assignee"] = {"type": "team", "id": "814860", "name": "Billing"}

    event = adapter(clock).parse(signed(payload, clock))

    assert isinstance(event, DialogClosed)
    assert event.team == "Billing"
    assert event.agent == Person("3330619", "Andrea Ruiz")  # credited: the closing admin


def test_closes_by_listed_admins_are_ignored(clock):
    event = adapter(clock, ignore_closes_by=[991267720]).parse(
        signed(fixture("intercom", V2_CLOSE), clock)
    )
    assert isinstance(event, Ignored) and "991267720" in event.reason


def test_opened_topic_is_a_reopen(clock):
    event = adapter(clock).parse(
        signed(fixture("intercom", "conversation.admin.opened.json"), clock)
    )
    # The reopen part's time, the item's last update, the notification's creation.
    times = tuple(datetime.fromtimestamp(t, tz=UTC) for t in (1596634937, 1596634937, 1596634939))
    assert event == DialogReopened("intercom", "137324500000000", reopen_times=times)


def opened_after_v1_close() -> dict[str, Any]:
    """conversation.admin.opened (Intercom's example, of 7 minutes before the V1_CLOSE one)
    moved to a minute after that close: a reopen older than the close cancels nothing."""
    payload = fixture("intercom", "conversation.admin.opened.json")
    item = payload["data"]["item"]
    item["conversation_parts"]["conversation_parts"][0]["created_at"] = 1596635428
    item["updated_at"] = payload["created_at"] = 1596635429
    return payload


def test_reopen_cancels_a_survey_still_waiting(make_config, make_services):
    services = make_services(
        make_config(policy={"send_delay_seconds": 3600}, helpdesks={"intercom": options()})
    )
    client = create_app(services=services).test_client()
    post(client, fixture("intercom", V1_CLOSE))

    response = post(client, opened_after_v1_close())

    assert response.json == {"status": "reopened", "cancelled": 1}
    assert [s.status for s in rows(services, surveys)] == ["cancelled"]


# A customer who replies to a closed conversation reopens it, and Intercom then notifies
# conversation.user.replied, not conversation.admin.opened (an admin's action). The reply is a
# part of type "open" and the conversation's state is "open": Intercom's "User reply" example
# of POST /conversations/{id}/reply, intercom/Intercom-OpenAPI descriptions/2.14/
# api.intercom.io.yaml (replyConversation); topics in
# https://developers.intercom.com/docs/references/webhooks/webhook-models
USER_REOPENED = "conversation.user.replied.reopened.json"


def test_a_customer_reply_that_reopens_the_conversation_cancels_the_waiting_survey(
    make_config, make_services
):
    services = make_services(
        make_config(policy={"send_delay_seconds": 3600}, helpdesks={"intercom": options()})
    )
    client = create_app(services=services).test_client()
    assert post(client, fixture("intercom", V2_CLOSE)).json["status"] == "queued"

    response = post(client, fixture("intercom", USER_REOPENED))

    assert response.status_code == 200
    assert response.json == {"status": "reopened", "cancelled": 1}
    assert [s.status for s in rows(services, surveys)] == ["cancelled"]


def test_a_customer_reply_that_reopens_is_timed_by_its_open_part(clock):
    payload = fixture("intercom", USER_REOPENED)
    payload["data"]["item"]["conversation_parts"]["conversation_parts"][-1]["created_at"] = 1
    payload["created_at"] = 1763640009
    event = adapter(clock).parse(signed(payload, clock))
    assert isinstance(event, DialogReopened)
    assert event.reopen_times == tuple(
        datetime.fromtimestamp(t, tz=UTC) for t in (1, 1763640000, 1763640009)
    )


def test_a_customer_reply_without_its_parts_is_read_from_the_conversations_state(clock):
    payload = fixture("intercom", USER_REOPENED)
    del payload["data"]["item"]["conversation_parts"]
    event = adapter(clock).parse(signed(payload, clock))
    at = datetime.fromtimestamp(1763640000, tz=UTC)  # the item's update, the notification's
    assert event == DialogReopened("intercom", "215470063290017", reopen_times=(at, at))
    payload["data"]["item"].update(state="closed", open=False)
    assert isinstance(adapter(clock).parse(signed(payload, clock)), Ignored)


def test_a_customer_reply_in_an_open_conversation_is_no_reopen(client, services):
    response = post(client, fixture("intercom", "conversation.user.replied.json"))

    assert response.status_code == 200 and response.json["status"] == "ignored"
    assert rows(services, surveys) == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("conversation.admin.replied.json", "topic conversation.admin.replied is not a close"),
        ("ping.json", "ping: Intercom's test notification"),
    ],
)
def test_other_topics_and_the_ping_are_acknowledged_and_ignored(client, services, name, reason):
    response = post(client, fixture("intercom", name))

    assert response.status_code == 200
    assert response.json == {"status": "ignored", "reason": reason}
    assert rows(services, surveys) == []


def test_close_without_a_conversation_is_400(client, services):
    payload = fixture("intercom", V1_CLOSE)
    del payload["data"]["item"]

    response = post(client, payload)

    assert response.status_code == 400 and response.json["error"] == "missing_field"
    assert "data.item" in response.json["reason"]


def test_a_redelivered_notification_gives_no_second_survey(make_config, make_services):
    services = make_services(make_config(policy=EVERY_CLOSE, helpdesks={"intercom": options()}))
    client = create_app(services=services).test_client()
    first = fixture("intercom", V1_CLOSE)
    retry = fixture("intercom", V1_CLOSE)
    retry["delivery_attempts"] = 2  # Intercom's retry of the same notification
    later = fixture("intercom", V1_CLOSE)
    later["id"] = "notif_11111111-2222-4333-8444-555555555555"  # closed again, another day

    statuses = [post(client, p).json["status"] for p in (first, retry, later)]

    assert statuses == ["queued", "duplicate", "queued"]
    assert [s.occurrence for s in rows(services, surveys)] == [
        "notif_2a8995f8-92cb-4edd-a38c-041f4cdbf659",
        "notif_11111111-2222-4333-8444-555555555555",
    ]


def test_a_notification_replayed_after_a_reopen_does_not_re_arm_its_cancelled_survey(
    make_config, make_services
):
    # Intercom signs no timestamp: the close's signed body can be sent again after the
    # conversation reopened (or Intercom's last retry arrives that late). Its notification id
    # names that one close, so it is a duplicate: the survey cancelled by the reopen stays
    # cancelled instead of going out into a conversation that is open again.
    policy = {**EVERY_CLOSE, "send_delay_seconds": 3600, "cancel_on_reopen": True}
    services = make_services(make_config(policy=policy, helpdesks={"intercom": options()}))
    client = create_app(services=services).test_client()
    close = fixture("intercom", V1_CLOSE)
    assert post(client, close).json["status"] == "queued"
    assert post(client, opened_after_v1_close()).json == {
        "status": "reopened",
        "cancelled": 1,
    }

    replay = post(client, close)

    assert replay.status_code == 200 and replay.json == {"status": "duplicate"}
    assert [s.status for s in rows(services, surveys)] == ["cancelled"]
    assert [o.status for o in rows(services, outbox)] == ["cancelled"]
    # A genuine close after the reopen is a new notification, of a later time: it is
    # surveyed.
    later = fixture("intercom", V1_CLOSE)
    later["id"] = "notif_11111111-2222-4333-8444-555555555555"
    item = later["data"]["item"]
    item["conversation_parts"]["conversation_parts"][0]["created_at"] = 1596635500
    item["updated_at"] = later["created_at"] = 1596635500
    assert post(client, later).json["status"] == "queued"
    assert [s.status for s in rows(services, surveys)] == ["cancelled", "queued"]


# --- the reply --------------------------------------------------------------------------------


def conversation_answer(state: str, part_id: str = "500") -> dict[str, Any]:
    return {
        "type": "conversation",
        "id": "215470063290017",
        "state": state,
        "open": state == "open",
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": [
                {"type": "conversation_part", "id": part_id, "part_type": "comment"}
            ],
        },
    }


def expect_reply(admin_id: str, answer: dict[str, Any], base: str = API) -> Any:
    reply = reply_for()
    body = (
        "<p>How did Mira &lt;Support&gt; do?</p><p>Rate us: "
        f'<a href="{html.escape(reply.link)}">{html.escape(reply.link)}</a></p>'
    )
    return responses.post(
        f"{base}/conversations/215470063290017/reply",
        json=answer,
        match=[
            matchers.json_params_matcher(
                {"message_type": "comment", "type": "admin", "admin_id": admin_id, "body": body}
            ),
            matchers.header_matcher(
                {"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.14"}
            ),
        ],
    )


def expect_close(admin_id: str, status: int = 200) -> Any:
    return responses.post(
        f"{API}/conversations/215470063290017/parts",
        json=conversation_answer("closed"),
        status=status,
        match=[
            matchers.json_params_matcher(
                {"message_type": "close", "type": "admin", "admin_id": admin_id}
            )
        ],
    )


@responses.activate
def test_reply_that_leaves_the_conversation_closed_is_one_request(clock):
    sent = expect_reply("991267720", conversation_answer("closed", part_id="77"))

    result = adapter(clock).send_reply(reply_for(admin_id="991267720"))

    assert sent.call_count == 1 and len(responses.calls) == 1
    assert result.external_id == "77"


@responses.activate
def test_reply_that_reopens_the_conversation_is_followed_by_a_close(clock):
    sent = expect_reply("991267720", conversation_answer("open", part_id="78"))
    closed = expect_close("991267720")

    result = adapter(clock).send_reply(reply_for(admin_id="991267720"))

    assert (sent.call_count, closed.call_count) == (1, 1)
    assert result.external_id == "78"


@responses.activate
def test_reply_to_a_snoozed_conversation_leaves_it_snoozed(clock):
    # Our comment reopens a closed conversation to "open"; "snoozed" in the answer is
    # someone's snooze (an admin's reply does not unsnooze), which a close would drop.
    sent = expect_reply("991267720", conversation_answer("snoozed", part_id="79"))
    closed = expect_close("991267720")

    result = adapter(clock).send_reply(reply_for(admin_id="991267720"))

    assert (sent.call_count, closed.call_count) == (1, 0)
    assert result.external_id == "79"


@responses.activate
def test_a_failed_close_does_not_fail_the_sent_reply(clock, caplog):
    sent = expect_reply("991267720", conversation_answer("open"))
    closed = expect_close("991267720", status=500)

    with caplog.at_level(logging.WARNING, logger="csat_hook.helpdesks.intercom"):
        result = adapter(clock).send_reply(reply_for(admin_id="991267720"))

    assert result.external_id == "500"  # reported sent: the worker must not send it again
    assert (sent.call_count, closed.call_count) == (1, 1)
    assert [r.msg for r in caplog.records] == ["intercom.reclose-failed"]
    assert TOKEN not in caplog.text


@responses.activate
def test_reply_to_a_conversation_the_customer_reopened_leaves_it_open(clock):
    # The customer wrote after the close and before our reply went out (their reply reopened
    # it): "open" is theirs, not our reply's, and closing it hid their message from the inbox.
    answer = conversation_answer("open", part_id="78")
    answer["conversation_parts"]["conversation_parts"][:0] = [
        {"type": "conversation_part", "id": "75", "part_type": "close", "author": ADMIN},
        {"type": "conversation_part", "id": "76", "part_type": "open", "author": USER},
    ]
    sent = expect_reply("991267720", answer)

    result = adapter(clock).send_reply(reply_for(admin_id="991267720"))

    assert sent.call_count == 1 and len(responses.calls) == 1
    assert result.external_id == "78"


@responses.activate
def test_reply_after_the_customer_wrote_before_the_close_still_closes_it_again(clock):
    answer = conversation_answer("open", part_id="78")
    answer["conversation_parts"]["conversation_parts"][:0] = [
        {"type": "conversation_part", "id": "74", "part_type": "comment", "author": USER},
        {"type": "conversation_part", "id": "75", "part_type": "close", "author": ADMIN},
    ]
    expect_reply("991267720", answer)
    closed = expect_close("991267720")

    adapter(clock).send_reply(reply_for(admin_id="991267720"))

    assert closed.call_count == 1


ADMIN = {"type": "admin", "id": "991267720"}
USER = {"type": "user", "id": "6762f1261bb69f9f2193bba7"}


@responses.activate
def test_keep_closed_off_leaves_a_reopened_conversation_alone(clock):
    expect_reply("991267720", conversation_answer("open"))
    adapter(clock, keep_closed=False).send_reply(reply_for(admin_id="991267720"))
    assert len(responses.calls) == 1


@responses.activate
def test_configured_admin_id_wins_over_the_closing_admin(clock):
    sent = expect_reply("42", conversation_answer("closed"))
    adapter(clock, admin_id=42).send_reply(reply_for(admin_id="991267720"))
    assert sent.call_count == 1


@responses.activate
def test_regional_base_url_is_used(clock):
    sent = expect_reply(
        "991267720", conversation_answer("closed"), base="https://api.eu.intercom.io"
    )
    adapter(clock, base_url="https://api.eu.intercom.io/").send_reply(
        reply_for(admin_id="991267720")
    )
    assert sent.call_count == 1


def test_no_admin_to_reply_as_is_a_permanent_error_naming_the_key(clock):
    reply = reply_for()
    reply = Reply(**{**reply.__dict__, "agent": Person()})
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply)
    assert caught.value.retryable is False and "helpdesks.intercom.admin_id" in str(caught.value)


@responses.activate
def test_429_with_rate_limit_reset_is_retryable_with_the_wait(clock):
    responses.post(
        f"{API}/conversations/215470063290017/reply",
        status=429,
        json={"type": "error.list", "errors": [{"code": "rate_limit_exceeded"}]},
        headers={
            "X-RateLimit-Limit": "167",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time()) + 8),
        },
    )

    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for(admin_id="1"))

    assert caught.value.retryable and caught.value.http_status == 429
    assert caught.value.retry_after is not None and 6 <= caught.value.retry_after <= 8


@pytest.mark.parametrize("reset", ["nan", "inf", "-inf", "soon"])
@responses.activate
def test_a_rate_limit_reset_that_is_no_time_leaves_the_backoff_in_charge(clock, reset):
    # float("nan") - now read as a wait of 0: retried at once, every attempt in a second.
    responses.post(
        f"{API}/conversations/215470063290017/reply",
        status=429,
        json={"type": "error.list", "errors": [{"code": "rate_limit_exceeded"}]},
        headers={"X-RateLimit-Reset": reset},
    )

    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for(admin_id="1"))

    assert caught.value.retryable and caught.value.http_status == 429
    assert caught.value.retry_after is None


@responses.activate
def test_429_with_retry_after_is_retryable_with_that_wait(clock):
    responses.post(
        f"{API}/conversations/215470063290017/reply", status=429, headers={"Retry-After": "30"}
    )
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for(admin_id="1"))
    assert caught.value.retryable and caught.value.retry_after == 30


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@responses.activate
def test_client_errors_are_permanent(clock, status):
    responses.post(
        f"{API}/conversations/215470063290017/reply",
        status=status,
        json={"type": "error.list", "errors": [{"code": "parameter_invalid"}]},
    )
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).send_reply(reply_for(admin_id="1"))
    assert caught.value.retryable is False and caught.value.http_status == status
    assert TOKEN not in str(caught.value)


# --- admin look-ups ---------------------------------------------------------------------------


@responses.activate
def test_fetch_agent_reads_the_admin(clock):
    responses.get(
        f"{API}/admins/991267715",
        json={
            "type": "admin",
            "id": "991267715",
            "name": "Ciaran Lee",
            "email": "ciaran@example.com",
            "away_mode_enabled": False,
            "has_inbox_seat": True,
            "team_ids": [],
        },
        match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})],
    )

    found = adapter(clock).fetch_agent(Person(id="991267715"), {})

    assert found == Person("991267715", "Ciaran Lee", "ciaran@example.com")


@responses.activate
def test_unknown_admin_is_none_and_remembered(clock):
    lookup = responses.get(
        f"{API}/admins/5",
        status=404,
        json={"type": "error.list", "errors": [{"code": "admin_not_found"}]},
    )
    helpdesk = adapter(clock)

    assert helpdesk.resolve_agent(Person(id="5"), {}) == Person(id="5")
    assert helpdesk.resolve_agent(Person(id="5"), {}) == Person(id="5")
    assert lookup.call_count == 1


@responses.activate
def test_failing_lookup_raises_retryable_after_its_own_retries(clock):
    lookup = responses.get(f"{API}/admins/5", status=503)
    with pytest.raises(DeliveryError) as caught:
        adapter(clock).fetch_agent(Person(id="5"), {})
    assert caught.value.retryable and lookup.call_count == 3


# --- from webhook to delivered reply ---------------------------------------------------------


@responses.activate
def test_id_only_close_gets_a_link_with_the_agents_name(client, services):
    responses.get(
        f"{API}/admins/991267715",
        json={
            "type": "admin",
            "id": "991267715",
            "name": "Ciaran Lee",
            "email": "ciaran.lee@example.com",
        },
    )
    sent = responses.post(
        f"{API}/conversations/215470063290017/reply", json=conversation_answer("closed")
    )

    assert post(client, fixture("intercom", V2_CLOSE)).json["status"] == "queued"
    assert services.delivery_worker().run_once() == 1

    fields = link_fields(href(json.loads(sent.calls[0].request.body)["body"]))
    assert fields["entry.111"] == "Ciaran Lee"
    assert fields["entry.222"] == "991267715" and fields["entry.333"] == "215470063290017"
    [survey] = rows(services, surveys)
    assert (survey.agent_name, survey.agent_email, survey.status) == (
        "Ciaran Lee",
        "ciaran.lee@example.com",
        "sent",
    )


@responses.activate
def test_reply_is_still_sent_when_the_lookup_keeps_failing(client, services, clock):
    lookup = responses.get(f"{API}/admins/991267715", status=502)
    sent = responses.post(
        f"{API}/conversations/215470063290017/reply", json=conversation_answer("closed")
    )
    post(client, fixture("intercom", V2_CLOSE))
    worker = services.delivery_worker()

    for _ in range(services.config.delivery.max_attempts):
        worker.run_once()
        clock.advance(3600)

    assert sent.call_count == 1 and lookup.call_count > 1
    body = json.loads(sent.calls[0].request.body)["body"]
    fields = link_fields(href(body))
    # The id goes to the agent-id field; the name field and the text never show it (#10).
    assert fields["entry.222"] == "991267715" and fields["entry.111"] == "Support team"
    assert "How did we do?" in body and "How did 991267715" not in body
    assert [i.status for i in rows(services, outbox)] == ["sent"]


# --- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"access_token": None}, "helpdesks.intercom.access_token"),
        ({"client_secret": ""}, "client_secret must not be empty"),
        ({"base_url": "api.intercom.io"}, "base_url: must start with https://"),
        ({"admin_id": " "}, "admin_id must be an admin id"),
        ({"keep_closd": True}, "helpdesks.intercom.keep_closd: unknown key"),
    ],
)
def test_bad_options_name_the_key(make_config, extra, message):
    raw = {k: v for k, v in options(**extra).items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        make_config(helpdesks={"intercom": raw})
    assert message in str(caught.value)
    assert SECRET not in str(caught.value) and TOKEN not in str(caught.value)


def test_webhook_url_answers_the_head_request_intercom_validates_it_with(client):
    # "it must be able to receive a HEAD request, which we use to validate the URL"
    # (https://developers.intercom.com/docs/webhooks/setting-up-webhooks)
    assert client.head("/webhooks/intercom").status_code == 200
    assert client.head("/webhooks/nosuchdesk").status_code == 404
    assert client.get("/webhooks/intercom").status_code == 405


PRIVATE = "Customer jane@acme.inc wrote: my password is hunter2"


def test_an_ignored_topic_is_named_only_when_it_looks_like_a_name(clock):
    # The reason is answered to the sender and logged: it quoted the topic whatever it held.
    payload = fixture("intercom", "conversation.admin.replied.json")
    payload["topic"] = PRIVATE
    assert adapter(clock).parse(signed(payload, clock)) == Ignored(
        "topic (not a name: 52 characters) is not a close"
    )
