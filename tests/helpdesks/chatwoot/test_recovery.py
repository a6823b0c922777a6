"""Chatwoot: finding a reply after a timeout (find_reply), and the vendor's reason on a refusal."""

from __future__ import annotations

import copy
import dataclasses
from datetime import timedelta
from typing import Any

import pytest
import responses
from responses import matchers

from csat_hook.config import load_config
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.chatwoot import ChatwootHelpdesk
from csat_hook.helpdesks.transport import HttpClient
from tests.conftest import FakeClock
from tests.helpdesks.kits import load_kits
from tests.helpdesks.lookup import HTML
from tests.helpdesks.lookup import NOT_THE_APIS_ANSWER
from tests.helpdesks.lookup import SINCE
from tests.helpdesks.lookup import assert_real_token
from tests.helpdesks.lookup import lookup_reply
from tests.helpdesks.lookup import outbox_posts_once
from tests.helpers import fixture

BASE = "https://chat.example.com"
URL = f"{BASE}/api/v1/accounts/3/conversations/42/messages"
KITS = load_kits()
REPLY = lookup_reply("chatwoot", "42", "14", context={"account_id": "3"})


def desk(**options: Any) -> ChatwootHelpdesk:
    values = {
        "kind": "chatwoot",
        "base_url": BASE,
        "api_access_token": "bot-token",
        "webhook_secret": "sec",
        **options,
    }
    config = load_config(None, env={}, overrides={"helpdesks": {"chatwoot": values}})
    return ChatwootHelpdesk(
        "chatwoot",
        config.helpdesks["chatwoot"],
        http=HttpClient(sleep=lambda s: None),
        clock=FakeClock(),
    )


def page() -> dict[str, Any]:
    return fixture("chatwoot", "list_messages.json")


def without(data: dict[str, Any], *ids: int) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["payload"] = [m for m in data["payload"] if m["id"] not in ids]
    return data


def test_the_fixture_reply_carries_a_real_token():
    assert_real_token(REPLY.marker, "chatwoot", "42")
    assert REPLY.marker in page()["payload"][4]["content"]


@responses.activate
def test_finds_our_reply_among_the_others_with_the_lookup_token():
    responses.get(
        URL,
        json=page(),
        match=[
            matchers.header_matcher({"api_access_token": "user-token"}),
            matchers.query_param_matcher({}),
        ],
    )
    found = desk(lookup_access_token="user-token").find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == "1205"


@pytest.mark.parametrize(
    ("removed", "why"),
    [((1205, 1203), "a customer's e-mail quoting the survey"), ((1205, 1206), "a private note")],
)
@responses.activate
def test_a_message_that_is_not_our_reply_is_no_match(removed, why):
    responses.get(URL, json=without(page(), *removed))
    assert desk().find_reply(REPLY, since=SINCE) is None, why


@responses.activate
def test_a_reply_older_than_since_less_the_skew_is_no_match():
    responses.get(URL, json=page())
    # Posted 10:05:12; a look-up for an attempt that started 10:11 allows back to 10:06.
    assert desk().find_reply(REPLY, since=SINCE + timedelta(minutes=11)) is None
    # Clock skew: the attempt started at 10:09 by our clock still finds it.
    assert desk().find_reply(REPLY, since=SINCE + timedelta(minutes=4)) is not None


def _full_page(first_id: int, created: int) -> dict[str, Any]:
    """20 customer messages (a full page), ids ascending, all posted at ``created``."""
    data = page()
    template = data["payload"][0]
    data["payload"] = [
        {**template, "id": first_id + i, "created_at": created, "content": f"msg {i}"}
        for i in range(20)
    ]
    return data


@responses.activate
def test_pages_back_with_before_until_the_reply_is_found():
    newest = _full_page(2000, 1741947000)  # all after the reply: go back one page
    responses.get(URL, json=newest, match=[matchers.query_param_matcher({})])
    responses.get(URL, json=page(), match=[matchers.query_param_matcher({"before": "2000"})])
    found = desk().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == "1205"
    assert len(responses.calls) == 2


@responses.activate
def test_paging_stops_at_a_page_older_than_since():
    older = _full_page(100, 1741900000)  # a full page, but all from hours before the reply
    responses.get(URL, json=older, match=[matchers.query_param_matcher({})])
    assert desk().find_reply(REPLY, since=SINCE) is None
    assert len(responses.calls) == 1


@responses.activate
def test_paging_is_capped():
    for n in range(6):
        params = {} if n == 0 else {"before": str(10_000 - 20 * n)}
        responses.get(
            URL,
            json=_full_page(10_000 - 20 * (n + 1), 1741949000),
            match=[matchers.query_param_matcher(params)],
        )
    with pytest.raises(DeliveryError, match="not searched further") as caught:
        desk().find_reply(REPLY, since=SINCE)
    assert not caught.value.retryable
    assert len(responses.calls) == 5


@pytest.mark.parametrize(
    ("status", "body", "retryable", "words"),
    [
        (401, {"error": "Access to this endpoint is not authorized for bots"}, False, "lookup_"),
        (403, {"error": "You are not authorized to do this action"}, False, "user's access token"),
        (404, {"error": "Resource could not be found"}, False, "no such conversation"),
        (429, {"error": "Too many requests"}, True, "HTTP 429"),
        (503, None, True, "HTTP 503"),
    ],
)
@responses.activate
def test_lookup_errors_map_to_what_the_caller_does(status, body, retryable, words):
    responses.get(URL, status=status, json=body)
    with pytest.raises(DeliveryError) as caught:
        desk().find_reply(REPLY, since=SINCE)
    assert caught.value.retryable is retryable
    assert words in caught.value.message
    assert caught.value.http_status == status
    if status == 401:
        assert "not authorized for bots" in caught.value.message  # Chatwoot's own words kept


def test_a_reply_without_a_marker_cannot_be_looked_up():
    with pytest.raises(DeliveryError, match="marker") as caught:
        desk().find_reply(dataclasses.replace(REPLY, marker=""), since=SINCE)
    assert not caught.value.retryable


# --- the vendor's reason when a reply is refused -------------------------------------------


@responses.activate
def test_a_refused_reply_keeps_chatwoots_reason_without_customer_text():
    responses.post(
        URL,
        status=422,
        json={
            # RequestExceptionHandler#render_record_invalid, echoing the content we sent
            "message": f"Content is too long; content was '{REPLY.text[:40]}', "
            "sender jane@acme.inc",
            "attributes": ["content"],
        },
    )
    with pytest.raises(DeliveryError) as caught:
        desk().send_reply(REPLY)
    message = caught.value.message
    assert caught.value.vendor_reason == "Content is too long; content was …, sender …; content"
    assert message.endswith(caught.value.vendor_reason)
    for private in ("Thanks for contacting", "jane@acme.inc", REPLY.link, REPLY.marker):
        assert private not in message


@responses.activate
def test_devise_errors_list_is_read_too():
    responses.post(URL, status=401, json={"errors": ["You need to sign in or sign up."]})
    with pytest.raises(DeliveryError) as caught:
        desk().send_reply(REPLY)
    assert caught.value.vendor_reason == "You need to sign in or sign up"


@pytest.mark.parametrize(
    "unreadable",
    [{"body": HTML, "content_type": "text/html"}, {"json": {}}, {"json": {"payload": None}}],
)
@responses.activate
def test_an_unreadable_listing_is_asked_again_later_not_taken_for_empty(unreadable):
    # A proxy's page or an answer without the list is no proof the reply is absent: taking it
    # for "not found" posted the survey a second time.
    responses.get(URL, status=200, **unreadable)
    responses.get(URL, json=page())
    with pytest.raises(DeliveryError, match="look-up answer") as caught:
        desk().find_reply(REPLY, since=SINCE)
    assert caught.value.retryable and not caught.value.outcome_unknown
    found = desk().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == "1205"


@responses.activate
def test_an_empty_listing_is_still_not_found():
    responses.get(URL, json={"meta": {}, "payload": []})
    assert desk().find_reply(REPLY, since=SINCE) is None


# --- through the outbox -----------------------------------------------------------------------

VENDOR = "https://chatwoot.vendor.test"
KIT_MESSAGES = f"{VENDOR}/api/v1/accounts/1/conversations/10/messages"


@pytest.mark.parametrize("post_answer", NOT_THE_APIS_ANSWER)
def test_the_outbox_posts_once_when_the_listing_is_unreadable(
    make_config, make_services, clock, post_answer
):
    options = {"kind": "chatwoot", **KITS["chatwoot"].options(VENDOR, None)}
    outbox_posts_once(
        make_services(make_config(helpdesks={"chatwoot": options})),
        "chatwoot",
        clock,
        post_answer=post_answer,
        post_url=KIT_MESSAGES,
        listing_url=KIT_MESSAGES,
        posted_text=lambda body: body["content"],
        landed=lambda text, now: {
            "meta": {},
            "payload": [
                {
                    "id": 777,
                    "content": text,
                    "message_type": 1,
                    "private": False,
                    "created_at": int(now.timestamp()),
                    "sender": {"type": "user"},
                }
            ],
        },
        unreadable=[HTML, "{}"],  # a proxy's page, then JSON without "payload"
        empty_lists=[f"{VENDOR}/api/v1/accounts/1/agents"],
    )


@responses.activate
def test_a_listing_that_does_not_page_back_is_asked_again_later_not_given_up_on():
    # `before` is not in Chatwoot's API reference: an instance that ignores it answers the
    # newest 20 every time. Five identical pages read as "100 messages since", the look-up
    # gave up (permanent) and the outbox posted the reply again, perhaps a second time.
    newest = _full_page(2000, 1741947000)  # all after the reply: go back a page
    responses.get(URL, json=newest)
    with pytest.raises(DeliveryError, match="before") as caught:
        desk().find_reply(REPLY, since=SINCE)
    assert caught.value.retryable
    assert len(responses.calls) == 2
