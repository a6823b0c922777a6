"""Chatwoot specifics: signing details, older installs, reopens, account id, agent look-up."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import responses
import sqlalchemy as sa
from responses import matchers

from csat_hook.app import create_app
from csat_hook.config import load_config
from csat_hook.db.schema import surveys
from csat_hook.errors import ConfigError
from csat_hook.errors import DeliveryError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.chatwoot import ChatwootHelpdesk
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.transport import HttpClient
from tests.conftest import FakeClock
from tests.helpdesks.markdown import links_and_text
from tests.helpers import body_of
from tests.helpers import chatwoot_headers
from tests.helpers import fixture
from tests.helpers import link_fields

BASE = "https://chat.example.com"


def desk(clock: FakeClock, **options) -> ChatwootHelpdesk:
    options = {
        "kind": "chatwoot",
        "base_url": BASE + "/",
        "api_access_token": "tok",
        "webhook_secret": "sec",
        **options,
    }
    config = load_config(None, env={}, overrides={"helpdesks": {"chatwoot": options}})
    return ChatwootHelpdesk(
        "chatwoot", config.helpdesks["chatwoot"], http=HttpClient(sleep=lambda s: None), clock=clock
    )


def req(body: bytes, clock: FakeClock, headers=None, query=None) -> WebhookRequest:
    return WebhookRequest(
        body=body,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        query=query or {},
        received_at=clock(),
        content_type="application/json",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


RESOLVED = "conversation_status_changed_resolved.json"


def test_signature_covers_timestamp_dot_body(clock):
    body = body_of(fixture("chatwoot", RESOLVED))
    desk(clock).verify(req(body, clock, chatwoot_headers(body, "sec", clock())))


def test_a_timestamp_from_the_future_is_refused_too(clock):
    body = body_of(fixture("chatwoot", RESOLVED))
    headers = chatwoot_headers(body, "sec", clock() + timedelta(minutes=10))
    with pytest.raises(InvalidSignatureError, match="tolerance"):
        desk(clock).verify(req(body, clock, headers))


def test_signature_without_prefix_is_refused(clock):
    body = body_of(fixture("chatwoot", RESOLVED))
    headers = chatwoot_headers(body, "sec", clock())
    headers["X-Chatwoot-Signature"] = headers["X-Chatwoot-Signature"].removeprefix("sha256=")
    with pytest.raises(InvalidSignatureError):
        desk(clock).verify(req(body, clock, headers))


def test_older_installs_authenticate_with_a_url_token(clock):
    adapter = desk(clock, webhook_secret=None, webhook_token="url-token")
    body = body_of(fixture("chatwoot", RESOLVED))
    adapter.verify(req(body, clock, query={"token": "url-token"}))
    with pytest.raises(InvalidSignatureError):
        adapter.verify(req(body, clock, query={"token": "nope"}))


def test_closed_event_fields(clock):
    event = desk(clock).parse(req(body_of(fixture("chatwoot", RESOLVED)), clock))
    assert isinstance(event, DialogClosed)
    assert event.channel == "Channel::WebWidget"
    assert event.occurrence == "1627063525.7771"
    # updated_at (a float), then timestamp (last_activity_at)
    assert event.close_times == (
        datetime.fromtimestamp(1627063525.7771, tz=UTC),
        datetime.fromtimestamp(1627063520, tz=UTC),
    )


def test_legacy_conversation_resolved_event_counts_as_a_close(clock):
    payload = fixture("chatwoot", RESOLVED)
    payload["event"] = "conversation_resolved"
    del payload["changed_attributes"]
    assert isinstance(desk(clock).parse(req(body_of(payload), clock)), DialogClosed)


# Reopens Chatwoot reports in ways other than "status open, previously resolved":
# - a customer writing into a resolved conversation of an inbox with an active agent bot (or
#   Captain assistant) makes it pending, not open: Message#reopen_resolved_conversation,
#   chatwoot/chatwoot app/models/message.rb ("mark resolved bot conversation as pending");
# - before Chatwoot passed the status change to the dispatcher, conversation_status_changed
#   came with "changed_attributes": null (Conversation#notify_status_change called
#   dispatcher_dispatch(event) alone, chatwoot/chatwoot app/models/conversation.rb of the 1.x
#   and 2.x releases; a 2023 payload with it: wppconnect-team/wppconnect issue #1511).
REOPENS = [
    "conversation_status_changed_reopened.json",
    "conversation_status_changed_reopened_pending.json",
    "conversation_status_changed_reopened_without_changes.json",
]


@pytest.mark.parametrize("name", REOPENS)
def test_every_way_chatwoot_reports_a_reopen_cancels_the_waiting_survey(
    name, make_config, make_services, clock
):
    services = make_services(make_config(policy={"send_delay_seconds": 3600}))
    client = create_app(services=services).test_client()
    assert post(client, clock, fixture("chatwoot", RESOLVED)).json["status"] == "queued"

    response = post(client, clock, fixture("chatwoot", name))

    assert response.status_code == 200
    assert response.json == {"status": "reopened", "cancelled": 1}
    with services.engine.connect() as conn:
        assert [s.status for s in conn.execute(sa.select(surveys)).all()] == ["cancelled"]


def test_a_change_that_does_not_leave_resolved_is_no_reopen(clock):
    payload = fixture("chatwoot", "conversation_status_changed_pending.json")  # open → pending
    assert isinstance(desk(clock).parse(req(body_of(payload), clock)), Ignored)
    payload = fixture("chatwoot", "conversation_status_changed_reopened_pending.json")
    assert desk(clock).parse(req(body_of(payload), clock)) == DialogReopened(
        "chatwoot", "10", reopen_times=(datetime.fromtimestamp(1627064100.53, tz=UTC),)
    )


def test_a_reopen_is_timed_by_its_update_not_by_the_last_activity(clock):
    """updated_at is the reopen's; timestamp (last_activity_at), which a close falls back on,
    is the last message's, which may be before the close the reopen followed: a reopen
    without updated_at names no time (and cancels whatever close is waiting)."""
    payload = fixture("chatwoot", "conversation_status_changed_reopened.json")
    event = desk(clock).parse(req(body_of(payload), clock))
    assert event == DialogReopened(
        "chatwoot", "10", reopen_times=(datetime.fromtimestamp(1627064000.12, tz=UTC),)
    )
    payload = fixture("chatwoot", "conversation_status_changed_reopened_without_changes.json")
    assert "updated_at" not in payload and payload["timestamp"]
    assert desk(clock).parse(req(body_of(payload), clock)) == DialogReopened("chatwoot", "10")


def post(client: Any, clock: FakeClock, payload: Any) -> Any:
    body = body_of(payload)
    headers = chatwoot_headers(body, "cw-webhook-secret", clock())
    return client.post("/webhooks/chatwoot", data=body, headers=headers)


def test_a_bot_assignee_is_not_credited_as_an_agent(clock):
    payload = fixture("chatwoot", "conversation_status_changed_resolved_by_bot.json")
    event = desk(clock).parse(req(body_of(payload), clock))
    assert event.agent == Person()


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_api_token_is_refused_naming_the_key(value):
    # ${CHATWOOT_API_TOKEN:-} unset: the configuration loaded and every reply (or look-up)
    # was refused, the surveys failed for good.
    options = {"kind": "chatwoot", "api_access_token": value, "webhook_secret": "sec"}
    with pytest.raises(ConfigError, match=r"api_access_token.*must not be empty"):
        load_config(None, env={}, overrides={"helpdesks": {"chatwoot": options}})


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_lookup_token_is_unset_as_before(value):
    # ${CHATWOOT_LOOKUP_TOKEN:-} unset: the look-ups always asked with api_access_token (the
    # documented default), and a configuration so written loaded.
    options = {"kind": "chatwoot", "api_access_token": "tok", "webhook_secret": "sec"}
    options["lookup_access_token"] = value
    config = load_config(None, env={}, overrides={"helpdesks": {"chatwoot": options}})
    assert config.helpdesks["chatwoot"].lookup_access_token is None


@pytest.mark.parametrize("account_id", [0, -3])
def test_an_account_id_below_one_is_refused_naming_the_key(account_id):
    # Chatwoot's account ids start at 1: 0 read as unset ("set account_id" when it was set),
    # -3 built /accounts/-3/... and every reply failed for good.
    options = {
        "kind": "chatwoot",
        "api_access_token": "tok",
        "webhook_secret": "sec",
        "account_id": account_id,
    }
    with pytest.raises(ConfigError, match="account_id"):
        load_config(None, env={}, overrides={"helpdesks": {"chatwoot": options}})


def test_account_id_falls_back_to_the_config(clock):
    payload = fixture("chatwoot", RESOLVED)
    payload["messages"] = []
    event = desk(clock, account_id=42).parse(req(body_of(payload), clock))
    assert event.reply_context == {}
    with responses.RequestsMock() as rsps:
        rsps.post(BASE + "/api/v1/accounts/42/conversations/10/messages", json={"id": 5})
        from csat_hook.helpdesks.records import Reply

        result = desk(clock, account_id=42).send_reply(
            Reply(
                helpdesk="chatwoot",
                dialog_id="10",
                text="t",
                link="l",
                agent=Person(),
                customer=Person(),
                context={},
                idempotency_key="k",
            )
        )
    assert result.external_id == "5"


def test_ids_from_the_webhook_stay_one_path_segment_each(clock):
    """The conversation and account ids come from the (signed) webhook: "10/../../../profile"
    or "1?x=" must not reach another endpoint of Chatwoot's API with our token."""
    payload = fixture("chatwoot", RESOLVED)
    payload["id"] = "10/../../../../profile?x="
    payload["account_id"] = "1/../2"
    adapter = desk(clock)
    event = adapter.parse(
        req(body_of(payload), clock, chatwoot_headers(body_of(payload), "sec", clock()))
    )
    assert isinstance(event, DialogClosed)
    from csat_hook.helpdesks.records import Reply

    expected = (
        BASE + "/api/v1/accounts/1%2F..%2F2/conversations/"
        "10%2F..%2F..%2F..%2F..%2Fprofile%3Fx%3D/messages"
    )
    with responses.RequestsMock() as rsps:
        rsps.post(expected, json={"id": 5})
        result = adapter.send_reply(
            Reply(
                helpdesk="chatwoot",
                dialog_id=event.dialog_id,
                text="t",
                link="l",
                agent=Person(),
                customer=Person(),
                context=event.reply_context,
                idempotency_key="k",
            )
        )
        assert [call.request.url for call in rsps.calls] == [expected]
    assert result.external_id == "5"


def test_unknown_account_fails_permanently_with_the_key_to_set(clock):
    from csat_hook.helpdesks.records import Reply

    with pytest.raises(DeliveryError, match=r"set helpdesks\.chatwoot\.account_id") as info:
        desk(clock).send_reply(
            Reply(
                helpdesk="chatwoot",
                dialog_id="10",
                text="t",
                link="l",
                agent=Person(),
                customer=Person(),
                context={},
                idempotency_key="k",
            )
        )
    assert not info.value.retryable


@responses.activate
def test_agent_email_is_looked_up_once_and_cached(clock):
    responses.get(
        BASE + "/api/v1/accounts/1/agents",
        match=[matchers.header_matcher({"api_access_token": "tok"})],
        json=[
            {
                "id": 1,
                "name": "John Smith",
                "available_name": "John",
                "email": "john@acme.inc",
                "role": "agent",
            },
            {"id": 2, "name": "Eve", "email": "eve@acme.inc"},
        ],
    )
    adapter = desk(clock)
    first = adapter.resolve_agent(Person("1", "John", None), {"account_id": "1"})
    second = adapter.resolve_agent(Person("1", "John", None), {"account_id": "1"})
    assert first == second == Person("1", "John", "john@acme.inc")
    assert len(responses.calls) == 1


@responses.activate
def test_agents_are_listed_with_the_users_token_when_the_reply_is_a_bots(clock):
    refusal = {"error": "Access to this endpoint is not authorized for bots"}
    responses.get(
        BASE + "/api/v1/accounts/1/agents",
        match=[matchers.header_matcher({"api_access_token": "bot-token"})],
        status=401,
        json=refusal,
    )
    responses.get(
        BASE + "/api/v1/accounts/1/agents",
        match=[matchers.header_matcher({"api_access_token": "user-token"})],
        json=[{"id": 1, "name": "John Smith", "email": "john@acme.inc"}],
    )
    bot_only = desk(clock, api_access_token="bot-token")
    with pytest.raises(DeliveryError) as info:
        bot_only.resolve_agent(Person("1", "John"), {"account_id": "1"})
    assert not info.value.retryable and "lookup_access_token" in info.value.message
    with_user = desk(clock, api_access_token="bot-token", lookup_access_token="user-token")
    assert with_user.resolve_agent(Person("1", "John"), {"account_id": "1"}) == Person(
        "1", "John", "john@acme.inc"
    )


@pytest.mark.parametrize("answer", [5, True, "ok", {"payload": []}])
@responses.activate
def test_an_agents_answer_that_is_no_list_finds_no_one(clock, answer):
    # A proxy's or a newer version's 2xx: a number or true raised TypeError, and the reply
    # (being prepared) was failed for good, the survey never sent.
    responses.get(BASE + "/api/v1/accounts/1/agents", json=answer)
    assert desk(clock).resolve_agent(Person("1", "John"), {"account_id": "1"}) == Person(
        "1", "John"
    )


@responses.activate
def test_static_agent_map_wins_over_the_api(clock):
    adapter = desk(clock, agents={"1": {"name": "Johnny", "email": "j@x"}})
    assert adapter.resolve_agent(Person("1"), {"account_id": "1"}) == Person("1", "Johnny", "j@x")
    assert len(responses.calls) == 0


@responses.activate
def test_agent_lookup_retries_then_reports_a_retryable_error(clock):
    responses.get(BASE + "/api/v1/accounts/1/agents", status=502)
    with pytest.raises(DeliveryError) as info:
        desk(clock).resolve_agent(Person("1"), {"account_id": "1"})
    assert info.value.retryable and len(responses.calls) == 3  # bounded: 1 + 2 retries


PRIVATE = "Customer jane@acme.inc wrote: my password is hunter2"


@pytest.mark.parametrize(
    ("event", "status", "reason"),
    [
        (PRIVATE, "open", "(not a name: 52 characters) (open) is not a close"),
        (
            "conversation_updated",
            PRIVATE,
            "conversation_updated ((not a name: 52 characters)) is not a close",
        ),
    ],
)
def test_an_ignored_reason_never_quotes_text_that_is_no_name(clock, event, status, reason):
    # The reason is answered to the sender and logged: it quoted the event whatever it held.
    payload = fixture("chatwoot", RESOLVED)
    payload["event"], payload["status"] = event, status
    assert desk(clock).parse(req(body_of(payload), clock)) == Ignored(reason)


# --- backslashes, from the webhook to the posted message ------------------------------------

BACKSLASHED_AGENT = "C:\\Users\\Ann \\n"
BACKSLASHED_CUSTOMER = 'Jane \\"Q\\" \\\\ Doe\\'


@pytest.mark.parametrize(
    ("channel", "markdown"), [("Channel::WebWidget", True), ("Channel::Api", False)]
)
def test_backslashes_in_names_are_stored_linked_and_posted_as_written(
    make_config, make_services, fake_helpdesk, clock, channel, markdown
):
    """Names holding backslashes (a path, a literal ``\\n``, an escaped quote) are stored,
    put in the survey's link and read in the posted message exactly as the webhook had them:
    escaped once for Markdown where the channel renders it, not at all where it does not."""
    survey = {"reply": {"templates": {"en": "{customer_name}, how did {agent_name} do? {link}"}}}
    services = make_services(make_config(survey=survey))
    client = create_app(services=services).test_client()
    payload = fixture("chatwoot", RESOLVED)
    payload["channel"] = channel
    payload["meta"]["assignee"]["name"] = BACKSLASHED_AGENT
    payload["meta"]["assignee"]["available_name"] = BACKSLASHED_AGENT
    payload["meta"]["sender"]["name"] = BACKSLASHED_CUSTOMER

    assert post(client, clock, payload).json["status"] == "queued"
    assert services.delivery_worker().run_once() == 1

    [stored] = rows_of(services)
    assert (stored.agent_name, stored.customer_name) == (BACKSLASHED_AGENT, BACKSLASHED_CUSTOMER)
    assert link_fields(stored.link)["entry.111"] == BACKSLASHED_AGENT
    [sent] = [r for r in fake_helpdesk.api_requests() if r["method"] == "POST"]
    content = sent["body"]["content"]
    read = links_and_text(content)[1] if markdown else content
    assert read.startswith(f"{BACKSLASHED_CUSTOMER}, how did {BACKSLASHED_AGENT} do? "), content


def rows_of(services: Any) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(surveys)).all())
