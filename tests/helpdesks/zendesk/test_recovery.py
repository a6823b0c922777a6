"""Zendesk: finding a reply after a timeout (find_reply), and the vendor's reason on a refusal."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
import responses
from responses import matchers

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.helpdesks.zendesk import ZendeskHelpdesk
from csat_hook.helpdesks.zendesk import ZendeskOptions
from tests.conftest import FakeClock
from tests.helpdesks.kits import load_kits
from tests.helpdesks.lookup import HTML
from tests.helpdesks.lookup import NOT_THE_APIS_ANSWER
from tests.helpdesks.lookup import SINCE
from tests.helpdesks.lookup import assert_real_token
from tests.helpdesks.lookup import lookup_reply
from tests.helpdesks.lookup import outbox_posts_once
from tests.helpers import fixture

BASE = "https://acme.zendesk.com"
URL = f"{BASE}/api/v2/tickets/35436/comments.json"
TICKET_URL = f"{BASE}/api/v2/tickets/35436.json"
REPLY = lookup_reply("zendesk", "35436", "8447388090494")
FIRST = {"sort": "-created_at", "page[size]": "100", "include": "users"}
# Show Ticket of a ticket still solved: read before every reply.
SOLVED = {"ticket": {"id": 35436, "status": "solved", "updated_at": "2026-11-21T07:59:02Z"}}


def adapter() -> ZendeskHelpdesk:
    options = ZendeskOptions.model_validate(
        {
            "base_url": BASE,
            "email": "bot@acme.inc",
            "api_token": "zd-token",
            "webhook_secret": "zd-secret",
        }
    )
    return ZendeskHelpdesk(
        "zendesk", options, http=HttpClient(sleep=lambda _s: None), clock=FakeClock()
    )


def page() -> dict[str, Any]:
    return fixture("zendesk", "list_messages.json")


def without(data: dict[str, Any], *ids: int) -> dict[str, Any]:
    data = copy.deepcopy(data)
    data["comments"] = [c for c in data["comments"] if c["id"] not in ids]
    return data


OURS, NOTE, CUSTOMER_QUOTE = 24519000003, 24518990001, 24519100001


def test_the_fixture_reply_carries_a_real_token():
    assert_real_token(REPLY.marker, "zendesk", "35436")
    assert REPLY.marker in page()["comments"][1]["body"]


@responses.activate
def test_finds_our_comment_newest_first_with_one_request():
    responses.get(URL, json=page(), match=[matchers.query_param_matcher(FIRST)])
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)
    assert len(responses.calls) == 1


@pytest.mark.parametrize("field", ["body", "html_body", "plain_body"])
@responses.activate
def test_every_text_field_is_searched(field):
    data = page()
    ours = next(c for c in data["comments"] if c["id"] == OURS)
    for other in ("body", "html_body", "plain_body"):
        if other != field:
            ours[other] = "(rendered differently)"
    responses.get(URL, json=data)
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)


@responses.activate
def test_a_reply_posted_as_html_body_is_found_by_its_html_body():
    """Our reply goes as ``html_body``; Zendesk answers List Comments with that HTML
    (sanitised, in its ``zd-comment`` wrapper, ``&`` as ``&amp;``) and derives ``body`` and
    ``plain_body`` from it. The marker is in the HTML we sent, href and link text alike, so
    the look-up finds the reply by its ``html_body`` alone."""
    responses.get(TICKET_URL, json=SOLVED)
    responses.put(TICKET_URL, json={"audit": {"id": 1, "events": []}})
    adapter().send_reply(REPLY)
    sent = json.loads(responses.calls[1].request.body)["ticket"]["comment"]
    assert "body" not in sent and REPLY.marker in sent["html_body"]
    data = page()
    ours = next(c for c in data["comments"] if c["id"] == OURS)
    wrapped = sent["html_body"].replace("<a ", '<a rel="noopener noreferrer" ')
    ours["html_body"] = f'<div class="zd-comment" dir="auto">{wrapped}</div>'
    ours["body"] = ours["plain_body"] = "(rendered differently)"
    responses.get(URL, json=data)
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)


@pytest.mark.parametrize(
    ("removed", "why"),
    [((OURS, NOTE), "an end-user's e-mail quoting the survey"), ((OURS, CUSTOMER_QUOTE), "a note")],
)
@responses.activate
def test_a_comment_that_is_not_our_reply_is_no_match(removed, why):
    responses.get(URL, json=without(page(), *removed))
    assert adapter().find_reply(REPLY, since=SINCE) is None, why


@responses.activate
def test_without_the_users_sideload_only_api_comments_count():
    data = without(page(), OURS, NOTE)
    del data["users"]
    responses.get(URL, json=data)
    assert adapter().find_reply(REPLY, since=SINCE) is None  # the quote came by e-mail
    data = page()
    del data["users"]
    responses.replace(responses.GET, URL, json=data)
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)


@responses.activate
def test_unreadable_roles_and_author_ids_answer_without_raising():
    # Roles and ids that are not text (lists, objects) are read as text, never looked up raw
    # in a set: a newer comment with a list as its author is skipped, ours is still found.
    data = page()
    data["users"].append({"id": [1], "role": ["admin"]})
    data["users"][2]["role"] = {"name": "end-user"}
    data["comments"][0]["author_id"] = [8447388011111]
    responses.get(URL, json=data)
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)


@responses.activate
def test_a_comment_older_than_since_less_the_skew_is_no_match():
    responses.get(URL, json=page())
    assert adapter().find_reply(REPLY, since=SINCE + timedelta(minutes=6)) is None


def _newer_page(cursor: str) -> dict[str, Any]:
    """A full page of end-user comments, all newer than our reply, with more to come."""
    data = page()
    template = data["comments"][0]
    data["comments"] = [
        {**template, "id": 30_000_000_000 + i, "body": "hi", "created_at": "2025-03-14T11:00:00Z"}
        for i in range(100)
    ]
    data["meta"] = {"has_more": True, "after_cursor": cursor, "before_cursor": "b"}
    data["links"]["next"] = "https://attacker.example/steal"  # never followed
    return data


@responses.activate
def test_pages_on_with_the_after_cursor_never_the_next_link():
    responses.get(URL, json=_newer_page("c1"), match=[matchers.query_param_matcher(FIRST)])
    responses.get(
        URL, json=page(), match=[matchers.query_param_matcher({**FIRST, "page[after]": "c1"})]
    )
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)
    assert [c.request.url.split("?")[0] for c in responses.calls] == [URL, URL]


@responses.activate
def test_paging_stops_when_a_page_reaches_before_since():
    data = without(page(), OURS)
    data["meta"]["has_more"] = True  # more exists, but only older comments
    responses.get(URL, json=data, match=[matchers.query_param_matcher(FIRST)])
    assert adapter().find_reply(REPLY, since=SINCE) is None
    assert len(responses.calls) == 1


@responses.activate
def test_paging_is_capped():
    cursors = iter(f"c{n}" for n in range(10))
    responses.add_callback(
        responses.GET, URL, callback=lambda _: (200, {}, json.dumps(_newer_page(next(cursors))))
    )
    with pytest.raises(DeliveryError, match="not searched further") as caught:
        adapter().find_reply(REPLY, since=SINCE)
    assert not caught.value.retryable and len(responses.calls) == 5


@pytest.mark.parametrize("cursor", ["c", None, ""])  # "c": the cursor it was asked with
@responses.activate
def test_a_listing_whose_cursor_does_not_move_on_is_asked_again_later(cursor):
    # More comments, but the same cursor again (or none to ask with): a listing that cannot
    # be followed. Taken for "nothing older" (no cursor) or read five times over (the same
    # one), the look-up ended "not found" or gave up, and the reply was posted again.
    first = _newer_page("c")
    again = _newer_page(cursor)
    responses.get(URL, json=first, match=[matchers.query_param_matcher(FIRST)])
    responses.get(
        URL, json=again, match=[matchers.query_param_matcher({**FIRST, "page[after]": "c"})]
    )
    with pytest.raises(DeliveryError, match="cursor") as caught:
        adapter().find_reply(REPLY, since=SINCE)
    assert caught.value.retryable
    assert len(responses.calls) == 2


@pytest.mark.parametrize(
    ("status", "body", "retryable", "words"),
    [
        (401, {"error": "Couldn't authenticate you"}, False, "email/api_token"),
        (
            403,
            {"error": {"title": "Forbidden", "message": "You do not have access"}},
            False,
            "agent",
        ),
        (404, {"error": "RecordNotFound", "description": "Not found"}, False, "no such ticket"),
        (429, None, True, "HTTP 429"),
        (500, None, True, "HTTP 500"),
    ],
)
@responses.activate
def test_lookup_errors_map_to_what_the_caller_does(status, body, retryable, words):
    responses.get(URL, status=status, json=body)
    with pytest.raises(DeliveryError) as caught:
        adapter().find_reply(REPLY, since=SINCE)
    assert caught.value.retryable is retryable and caught.value.http_status == status
    assert words in caught.value.message


# --- the vendor's reason when a reply is refused -------------------------------------------


@responses.activate
def test_a_refused_reply_keeps_zendesks_details_without_customer_text():
    responses.get(TICKET_URL, json=SOLVED)
    responses.put(
        TICKET_URL,
        status=422,
        json={
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {
                "base": [
                    {
                        "description": f"Body {REPLY.text[20:80]} is invalid",
                        "error": "InvalidValue",
                    }
                ],
                "requester": [{"description": "Requester: Jane Doe is suspended"}],
                "collaborators": [{"description": "Email: jane@acme.inc is not valid"}],
            },
        },
    )
    with pytest.raises(DeliveryError) as caught:
        adapter().send_reply(REPLY)
    assert caught.value.vendor_reason == (
        "RecordInvalid: Record validation errors; InvalidValue base: Body … is invalid; "
        "requester; collaborators: Email: … is not valid"
    )
    for private in ("Jane Doe", "jane@acme.inc", REPLY.text[20:80], REPLY.link):
        assert private not in caught.value.message


@responses.activate
def test_a_long_reason_is_trimmed():
    responses.get(TICKET_URL, json=SOLVED)
    details = {f"field_{i}": [{"description": "is much too long " * 10}] for i in range(5)}
    responses.put(TICKET_URL, status=422, json={"error": "RecordInvalid", "details": details})
    with pytest.raises(DeliveryError) as caught:
        adapter().send_reply(REPLY)
    assert caught.value.vendor_reason is not None
    assert len(caught.value.vendor_reason) <= 200 and caught.value.vendor_reason.endswith("…")


KITS = load_kits()


@pytest.mark.parametrize(
    "unreadable",
    [{"body": HTML, "content_type": "text/html"}, {"json": {}}, {"json": {"comments": None}}],
)
@responses.activate
def test_an_unreadable_listing_is_asked_again_later_not_taken_for_empty(unreadable):
    # Zendesk always sends "comments": without it (or with a proxy's page) the answer is no
    # proof the reply is absent; taking it for "not found" posted the survey a second time.
    responses.get(URL, status=200, **unreadable)
    responses.get(URL, json=page())
    with pytest.raises(DeliveryError, match="look-up answer") as caught:
        adapter().find_reply(REPLY, since=SINCE)
    assert caught.value.retryable and not caught.value.outcome_unknown
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == str(OURS)


@responses.activate
def test_an_empty_listing_is_still_not_found():
    responses.get(URL, json={"comments": [], "meta": {"has_more": False}})
    assert adapter().find_reply(REPLY, since=SINCE) is None


VENDOR = "https://zendesk.vendor.test"


@pytest.mark.parametrize("post_answer", NOT_THE_APIS_ANSWER)
def test_the_outbox_posts_once_when_the_listing_is_unreadable(
    make_config, make_services, clock, post_answer
):
    options = {"kind": "zendesk", **KITS["zendesk"].options(VENDOR, None)}
    outbox_posts_once(
        make_services(make_config(helpdesks={"zendesk": options})),
        "zendesk",
        clock,
        post_answer=post_answer,
        post_method="PUT",
        post_url=f"{VENDOR}/api/v2/tickets/5158.json",
        dialog_reads={f"{VENDOR}/api/v2/tickets/5158.json": SOLVED},
        listing_url=f"{VENDOR}/api/v2/tickets/5158/comments.json",
        posted_text=lambda body: body["ticket"]["comment"]["html_body"],
        landed=lambda text, now: {
            "comments": [
                {
                    "id": 777,
                    "public": True,
                    "via": {"channel": "api"},
                    "html_body": text,
                    "created_at": now.isoformat(),
                }
            ],
            "meta": {"has_more": False},
        },
        unreadable=[HTML, "{}"],
    )
