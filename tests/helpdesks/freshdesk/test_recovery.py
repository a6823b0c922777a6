"""Freshdesk: finding a reply after a timeout (find_reply), and the vendor's reason on a refusal."""

from __future__ import annotations

import base64
import copy
from datetime import timedelta
from typing import Any

import pytest
import responses
from responses import matchers

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.freshdesk import FreshdeskHelpdesk
from csat_hook.helpdesks.freshdesk import FreshdeskOptions
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

BASE = "https://acme.freshdesk.com"
URL = f"{BASE}/api/v2/tickets/20/conversations"
REPLY = lookup_reply("freshdesk", "20", "43000100014")
AUTH = "Basic " + base64.b64encode(b"fd-key:X").decode()
OURS, NOTE, CUSTOMER_QUOTE = 43001000104, 43001000103, 43001000105


def adapter() -> FreshdeskHelpdesk:
    options = FreshdeskOptions(base_url=BASE, api_key="fd-key", webhook_token="hook-token")
    return FreshdeskHelpdesk(
        "freshdesk", options, http=HttpClient(sleep=lambda _s: None), clock=FakeClock()
    )


def conversations(*, drop: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    data: Any = fixture("freshdesk", "list_messages.json")  # a JSON array, not an object
    return [c for c in copy.deepcopy(data) if c["id"] not in drop]


def params(page: int) -> list[Any]:
    return [matchers.query_param_matcher({"page": str(page), "per_page": "100"})]


def test_the_fixture_reply_carries_a_real_token():
    assert_real_token(REPLY.marker, "freshdesk", "20")
    assert REPLY.marker in next(c for c in conversations() if c["id"] == OURS)["body_text"]


@responses.activate
def test_finds_our_reply_on_a_single_page():
    responses.get(
        URL,
        json=conversations(),
        match=[*params(1), matchers.header_matcher({"Authorization": AUTH})],
    )
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)
    assert len(responses.calls) == 1


@pytest.mark.parametrize("field", ["body", "body_text"])
@responses.activate
def test_both_text_fields_are_searched(field):
    data = conversations()
    ours = next(c for c in data if c["id"] == OURS)
    ours["body" if field == "body_text" else "body_text"] = "(rendered differently)"
    responses.get(URL, json=data)
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)


@pytest.mark.parametrize(
    ("drop", "why"),
    [((OURS, NOTE), "a customer's e-mail quoting the survey"), ((OURS, CUSTOMER_QUOTE), "a note")],
)
@responses.activate
def test_a_conversation_that_is_not_our_reply_is_no_match(drop, why):
    responses.get(URL, json=conversations(drop=drop))
    assert adapter().find_reply(REPLY, since=SINCE) is None, why


@responses.activate
def test_a_reply_older_than_since_less_the_skew_is_no_match():
    responses.get(URL, json=conversations())
    assert adapter().find_reply(REPLY, since=SINCE + timedelta(minutes=6)) is None


def _older_page(start: int) -> list[dict[str, Any]]:
    template = conversations()[0]
    return [{**template, "id": start + i, "body_text": "hi", "body": "hi"} for i in range(100)]


@responses.activate
def test_walks_the_pages_oldest_first_following_link():
    nxt = {"Link": f'<{URL}?page=2&per_page=100>; rel="next"'}
    responses.get(URL, json=_older_page(1), headers=nxt, match=params(1))
    responses.get(URL, json=conversations(), match=params(2))
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)
    assert len(responses.calls) == 2


@responses.activate
def test_paging_stops_at_a_short_page_without_a_next_link():
    responses.get(URL, json=conversations(drop=(OURS,)), match=params(1))
    assert adapter().find_reply(REPLY, since=SINCE) is None
    assert len(responses.calls) == 1


@responses.activate
def test_paging_is_capped_at_ten_pages():
    for n in range(1, 12):
        nxt = {"Link": f'<{URL}?page={n + 1}&per_page=100>; rel="next"'}
        responses.get(URL, json=_older_page(n * 1000), headers=nxt, match=params(n))
    with pytest.raises(DeliveryError, match="not searched further") as caught:
        adapter().find_reply(REPLY, since=SINCE)
    assert not caught.value.retryable and len(responses.calls) == 10


@pytest.mark.parametrize(
    ("status", "body", "retryable", "words"),
    [
        (
            401,
            {"code": "invalid_credentials", "message": "You have to be logged in"},
            False,
            "api_key",
        ),
        (403, {"code": "access_denied", "message": "You are not authorized"}, False, "api_key"),
        (404, None, False, "no such ticket"),
        (429, None, True, "HTTP 429"),
        (502, None, True, "HTTP 502"),
    ],
)
@responses.activate
def test_lookup_errors_map_to_what_the_caller_does(status, body, retryable, words):
    responses.get(URL, status=status, json=body)
    with pytest.raises(DeliveryError) as caught:
        adapter().find_reply(REPLY, since=SINCE)
    assert caught.value.retryable is retryable and caught.value.http_status == status
    assert words in caught.value.message
    if body:
        assert body["code"] in caught.value.message


# --- the vendor's reason when a reply is refused -------------------------------------------


@responses.activate
def test_a_refused_reply_keeps_freshdesks_validation_errors_without_customer_text():
    responses.get(f"{BASE}/api/v2/tickets/{REPLY.dialog_id}", json={"id": 1, "status": 4})
    responses.post(
        f"{BASE}/api/v2/tickets/20/reply",
        status=400,
        json={
            "description": "Validation failed",
            "errors": [
                {"field": "body", "message": "It should not be blank", "code": "missing_field"},
                {
                    "field": "cc_emails",
                    "message": "There is no contact matching the given email jane@acme.inc",
                    "code": "invalid_value",
                },
                {
                    "field": "from_email",
                    "message": "Jane Doe cannot reply",
                    "code": "invalid_value",
                },
            ],
        },
    )
    with pytest.raises(DeliveryError) as caught:
        adapter().send_reply(REPLY)
    assert caught.value.vendor_reason == (
        "Validation failed; missing_field body: It should not be blank; "
        "invalid_value cc_emails: There is no contact matching the given email …; "
        "invalid_value from_email"
    )
    assert "jane@acme.inc" not in caught.value.message
    assert "Jane Doe" not in caught.value.message


KITS = load_kits()


@pytest.mark.parametrize("unreadable", [{"body": HTML, "content_type": "text/html"}, {"json": {}}])
@responses.activate
def test_an_unreadable_listing_is_asked_again_later_not_taken_for_empty(unreadable):
    # Freshdesk answers a JSON array: a proxy's page or an object is no proof the reply is
    # absent (taking it for "not found" posted the survey a second time).
    responses.get(URL, status=200, **unreadable)
    responses.get(URL, json=conversations())
    with pytest.raises(DeliveryError, match="look-up answer") as caught:
        adapter().find_reply(REPLY, since=SINCE)
    assert caught.value.retryable and not caught.value.outcome_unknown
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)


@responses.activate
def test_an_empty_listing_is_still_not_found():
    responses.get(URL, json=[])
    assert adapter().find_reply(REPLY, since=SINCE) is None


VENDOR = "https://freshdesk.vendor.test"


@pytest.mark.parametrize("post_answer", NOT_THE_APIS_ANSWER)
def test_the_outbox_posts_once_when_the_listing_is_unreadable(
    make_config, make_services, clock, post_answer
):
    options = {"kind": "freshdesk", **KITS["freshdesk"].options(VENDOR, None)}
    outbox_posts_once(
        make_services(make_config(helpdesks={"freshdesk": options})),
        "freshdesk",
        clock,
        post_answer=post_answer,
        post_url=f"{VENDOR}/api/v2/tickets/1042/reply",
        dialog_reads={f"{VENDOR}/api/v2/tickets/1042": {"id": 1042, "status": 4}},
        listing_url=f"{VENDOR}/api/v2/tickets/1042/conversations",
        posted_text=lambda body: body["body"],
        landed=lambda text, now: [
            {
                "id": 777,
                "body": text,
                "incoming": False,
                "private": False,
                "source": 0,
                "created_at": now.isoformat(),
            }
        ],
        unreadable=[HTML, "{}"],
    )


@responses.activate
def test_a_listing_that_answers_the_same_page_again_is_asked_again_later():
    # `page` ignored (a proxy's cache, an API change): the first page again, with its next
    # link. Ten identical pages read as "more than 1000 conversations", the look-up gave up
    # and the outbox posted the reply again.
    nxt = {"Link": f'<{URL}?page=2&per_page=100>; rel="next"'}
    responses.get(URL, json=_older_page(1), headers=nxt)
    with pytest.raises(DeliveryError, match="same page") as caught:
        adapter().find_reply(REPLY, since=SINCE)
    assert caught.value.retryable and len(responses.calls) == 2
