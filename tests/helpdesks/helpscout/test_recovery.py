"""Help Scout: finding a reply after a timeout (find_reply), and the vendor's reason on a
refusal."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
import responses
from responses import matchers

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.helpscout import HelpScoutHelpdesk
from csat_hook.helpdesks.helpscout import HelpScoutOptions
from csat_hook.helpdesks.helpscout.api import LOOKUP_PAGES
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

API = "https://api.helpscout.net"
URL = f"{API}/v2/conversations/2391938111/threads"
REPLY = lookup_reply("helpscout", "2391938111", "1234", context={"customer_id": "29418"})
OURS, NOTE, CUSTOMER_QUOTE = 2198262400, 2198262399, 2198262401


@pytest.fixture
def adapter() -> HelpScoutHelpdesk:
    responses.post(f"{API}/v2/oauth2/token", json={"access_token": "tok", "expires_in": 7200})
    options = HelpScoutOptions(
        client_id="app-id", client_secret="app-secret", webhook_secret="hook-secret"
    )
    return HelpScoutHelpdesk(
        "helpscout", options, http=HttpClient(sleep=lambda _s: None), clock=FakeClock()
    )


def threads(*, drop: tuple[int, ...] = ()) -> dict[str, Any]:
    data = copy.deepcopy(fixture("helpscout", "list_messages.json"))
    embedded = data["_embedded"]
    embedded["threads"] = [t for t in embedded["threads"] if t["id"] not in drop]
    return data


def page(number: int) -> list[Any]:
    return [
        matchers.query_param_matcher({"page": str(number)}),
        matchers.header_matcher({"Authorization": "Bearer tok"}),
    ]


def lookups() -> list[Any]:
    return [c for c in responses.calls if c.request.method == "GET"]


def test_the_fixture_reply_carries_a_real_token():
    assert_real_token(REPLY.marker, "helpscout", "2391938111")
    first = next(t for t in threads()["_embedded"]["threads"] if t["id"] == OURS)
    assert REPLY.marker in first["body"]


@responses.activate
def test_finds_our_reply_on_the_first_page(adapter):
    responses.get(URL, json=threads(), match=page(1))
    found = adapter.find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)
    assert len(lookups()) == 1


@responses.activate
def test_finds_our_reply_in_the_conversation_a_merge_moved_it_to(adapter):
    # Merged after our reply went out: its threads answer 404 under the old id, and Get
    # Conversation says where it went (301). Taken for "no such conversation", the survey was
    # posted again blindly (and refused) though it had landed.
    moved = f"{API}/v2/conversations/2391938222"
    responses.get(URL, status=404)
    responses.get(f"{API}/v2/conversations/2391938111", status=301, headers={"Location": moved})
    responses.get(f"{moved}/threads", json=threads(), match=page(1))
    found = adapter.find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)


@responses.activate
def test_a_deleted_conversation_is_still_no_such_conversation(adapter):
    responses.get(URL, status=404)
    responses.get(f"{API}/v2/conversations/2391938111", status=404)
    with pytest.raises(DeliveryError) as caught:
        adapter.find_reply(REPLY, since=SINCE)
    assert caught.value.http_status == 404 and not caught.value.retryable


@pytest.mark.parametrize(
    ("drop", "why"),
    [((OURS, NOTE), "a customer's e-mail quoting the survey"), ((OURS, CUSTOMER_QUOTE), "a note")],
)
@responses.activate
def test_a_thread_that_is_not_our_reply_is_no_match(adapter, drop, why):
    responses.get(URL, json=threads(drop=drop))
    assert adapter.find_reply(REPLY, since=SINCE) is None, why


@responses.activate
def test_a_draft_carrying_the_marker_is_no_match(adapter):
    data = threads()
    next(t for t in data["_embedded"]["threads"] if t["id"] == OURS)["state"] = "draft"
    responses.get(URL, json=data)
    assert adapter.find_reply(REPLY, since=SINCE) is None


@responses.activate
def test_a_thread_older_than_since_less_the_skew_is_no_match(adapter):
    responses.get(URL, json=threads())
    assert adapter.find_reply(REPLY, since=SINCE + timedelta(minutes=6)) is None


def _newer_page(first_id: int = 2198300000) -> dict[str, Any]:
    """A full first page of customer threads, all newer than our reply, with a next page."""
    data = threads()
    template = data["_embedded"]["threads"][0]
    data["_embedded"]["threads"] = [
        {**template, "id": first_id + i, "body": "hi", "createdAt": "2025-03-14T11:00:00Z"}
        for i in range(50)
    ]
    data["_links"]["next"] = {"href": f"{URL}?page=2"}
    return data


@responses.activate
def test_reads_the_second_page_when_the_first_is_all_newer(adapter):
    responses.get(URL, json=_newer_page(), match=page(1))
    responses.get(URL, json=threads(), match=page(2))
    found = adapter.find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)
    assert len(lookups()) == 2


@responses.activate
def test_paging_stops_when_the_page_reaches_before_since(adapter):
    data = threads(drop=(OURS,))
    data["_links"]["next"] = {"href": f"{URL}?page=2"}
    responses.get(URL, json=data, match=page(1))
    assert adapter.find_reply(REPLY, since=SINCE) is None
    assert len(lookups()) == 1


@responses.activate
def test_a_third_page_is_read_when_the_second_has_a_next_link(adapter):
    # "At most 100 threads" is what the docs say, not what the API answers: a second page
    # with a next link and no thread before `since` was taken for the end of the search,
    # "not found", and the reply was posted a second time.
    responses.get(URL, json=_newer_page(), match=page(1))
    responses.get(URL, json=_newer_page(2198300100), match=page(2))
    responses.get(URL, json=threads(), match=page(3))
    found = adapter.find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)
    assert len(lookups()) == 3


@responses.activate
def test_a_listing_longer_than_the_pages_read_is_no_proof_of_absence(adapter):
    for number in range(1, LOOKUP_PAGES + 2):
        responses.get(URL, json=_newer_page(2198300000 + 100 * number), match=page(number))
    with pytest.raises(DeliveryError, match="not searched further") as caught:
        adapter.find_reply(REPLY, since=SINCE)
    assert len(lookups()) == LOOKUP_PAGES
    # Permanent, as Zendesk's: the outbox sends again once, with a note saying it was not
    # checked, rather than asking the same endless listing until the survey is lost.
    assert not caught.value.retryable


@responses.activate
def test_a_second_page_that_is_the_first_again_is_asked_again_later(adapter):
    # `page` ignored: the first page twice is not "both pages read"; taken for it, the
    # look-up ended "not found" and the reply was posted again.
    responses.get(URL, json=_newer_page())
    with pytest.raises(DeliveryError, match="same page") as caught:
        adapter.find_reply(REPLY, since=SINCE)
    assert caught.value.retryable and len(lookups()) == 2


@responses.activate
def test_an_empty_conversation_has_no_embedded_threads(adapter):
    responses.get(URL, json={"_links": {}, "page": {"size": 50, "totalElements": 0}})
    assert adapter.find_reply(REPLY, since=SINCE) is None


# A thread type that is not text (a list, an object) once raised TypeError (unhashable) from
# the look-up, so a timed-out reply could not be settled; such a thread is not our reply.
HOSTILE_TYPES = [["customer"], {"type": "reply"}, ["note"]]


@pytest.mark.parametrize("value", HOSTILE_TYPES)
@responses.activate
def test_a_newer_thread_with_an_unreadable_type_is_skipped(adapter, value):
    data = threads()
    next(t for t in data["_embedded"]["threads"] if t["id"] == CUSTOMER_QUOTE)["type"] = value
    responses.get(URL, json=data)
    found = adapter.find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)


@pytest.mark.parametrize("value", HOSTILE_TYPES)
@responses.activate
def test_a_note_whose_type_is_unreadable_is_not_our_reply(adapter, value):
    data = threads(drop=(OURS,))
    next(t for t in data["_embedded"]["threads"] if t["id"] == NOTE)["type"] = value
    responses.get(URL, json=data)
    assert adapter.find_reply(REPLY, since=SINCE) is None


@pytest.mark.parametrize(
    ("status", "retryable", "words"),
    [
        (401, False, "client_id"),
        (403, False, "access to the conversation's mailbox"),
        (404, False, "no such conversation"),
        (429, True, "HTTP 429"),
        (503, True, "HTTP 503"),
    ],
)
@responses.activate
def test_lookup_errors_map_to_what_the_caller_does(adapter, status, retryable, words):
    body = {"logRef": "64bb72b4", "message": "Request refused", "_links": {}}
    responses.get(URL, status=status, json=body)
    with pytest.raises(DeliveryError) as caught:
        adapter.find_reply(REPLY, since=SINCE)
    assert caught.value.retryable is retryable and caught.value.http_status == status
    assert words in caught.value.message and "Request refused" in caught.value.message


# --- the vendor's reason when a reply is refused -------------------------------------------


@responses.activate
def test_a_refused_reply_keeps_help_scouts_errors_without_rejected_values(adapter):
    responses.get(f"{API}/v2/conversations/2391938111", json={"status": "closed"})
    responses.post(
        f"{API}/v2/conversations/2391938111/reply",
        status=400,
        json={
            "logRef": "64bb72b4-0a92-11e8-ba89-0ed5f89f718b",
            "message": "Bad request",
            "_embedded": {
                "errors": [
                    {
                        "path": "text",
                        "message": "may not be empty",
                        "rejectedValue": REPLY.text,
                        "source": "JSON",
                    },
                    {
                        "path": "customer.id",
                        "message": "Customer jane@acme.inc not found",
                        "rejectedValue": "29418",
                        "source": "JSON",
                    },
                ]
            },
            "_links": {"about": {"href": "http://developer.helpscout.net/mailbox-api/"}},
        },
    )
    with pytest.raises(DeliveryError) as caught:
        adapter.send_reply(REPLY)
    assert caught.value.vendor_reason == (
        "Bad request; text: may not be empty; customer.id: Customer … not found"
    )
    assert "jane@acme.inc" not in caught.value.message
    assert REPLY.text not in caught.value.message


KITS = load_kits()


@pytest.mark.parametrize("unreadable", [{"body": HTML, "content_type": "text/html"}, {"json": []}])
@responses.activate
def test_an_unreadable_listing_is_asked_again_later_not_taken_for_empty(adapter, unreadable):
    # A proxy's page is no proof the reply is absent: taking it for "not found" posted the
    # survey a second time.
    responses.get(URL, status=200, **unreadable)
    responses.get(URL, json=threads())
    with pytest.raises(DeliveryError, match="look-up answer") as caught:
        adapter.find_reply(REPLY, since=SINCE)
    assert caught.value.retryable and not caught.value.outcome_unknown
    found = adapter.find_reply(REPLY, since=SINCE)
    assert found is not None


@responses.activate
def test_a_listing_without_embedded_threads_is_not_found(adapter):
    # Help Scout leaves "_embedded" out when a conversation has no threads.
    responses.get(URL, json={"page": {"size": 50, "totalElements": 0, "number": 1}})
    assert adapter.find_reply(REPLY, since=SINCE) is None


VENDOR = "https://helpscout.vendor.test"


@pytest.mark.parametrize("post_answer", NOT_THE_APIS_ANSWER)
def test_the_outbox_posts_once_when_the_listing_is_unreadable(
    make_config, make_services, clock, post_answer
):
    options = {"kind": "helpscout", **KITS["helpscout"].options(VENDOR, None)}
    outbox_posts_once(
        make_services(make_config(helpdesks={"helpscout": options})),
        "helpscout",
        clock,
        post_answer=post_answer,
        post_url=f"{VENDOR}/v2/conversations/2391938111/reply",
        dialog_reads={f"{VENDOR}/v2/conversations/2391938111": {"status": "closed"}},
        listing_url=f"{VENDOR}/v2/conversations/2391938111/threads",
        posted_text=lambda body: body["text"],
        landed=lambda text, now: {
            "_embedded": {
                "threads": [
                    {
                        "id": 777,
                        "type": "reply",
                        "state": "published",
                        "createdBy": {"type": "user"},
                        "createdAt": now.isoformat(),
                        "body": text,
                    }
                ]
            },
            "_links": {},
        },
        unreadable=[HTML, "[]"],
    )
