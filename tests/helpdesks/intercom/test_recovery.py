"""Intercom: finding a reply after a timeout (find_reply), and the vendor's reason on a refusal."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest
import responses
from responses import matchers

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.intercom import IntercomHelpdesk
from csat_hook.helpdesks.intercom import IntercomOptions
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

API = "https://api.intercom.io"
URL = f"{API}/conversations/503"
REPLY = lookup_reply("intercom", "503", "991267715", context={"admin_id": "991267800"})
HEADERS = {"Authorization": "Bearer ic-token", "Intercom-Version": "2.14"}


def adapter() -> IntercomHelpdesk:
    options = IntercomOptions(
        kind="intercom", base_url=API, access_token="ic-token", client_secret="ic-secret"
    )
    return IntercomHelpdesk(
        "intercom", options, http=HttpClient(sleep=lambda _s: None), clock=FakeClock()
    )


def conversation(*, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    data = copy.deepcopy(fixture("intercom", "list_messages.json"))
    parts = data["conversation_parts"]
    parts["conversation_parts"] = [p for p in parts["conversation_parts"] if p["id"] not in drop]
    return data


OURS, NOTE, CUSTOMER_QUOTE = "8211", "8208", "8212"


def test_the_fixture_reply_carries_a_real_token():
    assert_real_token(REPLY.marker, "intercom", "503")
    parts = conversation()["conversation_parts"]["conversation_parts"]
    assert REPLY.marker in next(p for p in parts if p["id"] == OURS)["body"]


@responses.activate
def test_finds_our_comment_in_one_request():
    responses.get(
        URL,
        json=conversation(),
        match=[matchers.header_matcher(HEADERS), matchers.query_param_matcher({})],
    )
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == OURS
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("drop", "why"),
    [((OURS, NOTE), "a customer's e-mail quoting the survey"), ((OURS, CUSTOMER_QUOTE), "a note")],
)
@responses.activate
def test_a_part_that_is_not_our_reply_is_no_match(drop, why):
    responses.get(URL, json=conversation(drop=drop))
    assert adapter().find_reply(REPLY, since=SINCE) is None, why


@responses.activate
def test_the_customers_first_message_is_not_a_part_and_never_matches():
    data = conversation(drop=(OURS,))
    data["source"]["body"] = f"<p>{REPLY.marker}</p>"
    data["source"]["author"]["type"] = "admin"
    responses.get(URL, json=data)
    assert adapter().find_reply(REPLY, since=SINCE) is None


@responses.activate
def test_a_part_older_than_since_less_the_skew_is_no_match():
    responses.get(URL, json=conversation())
    assert adapter().find_reply(REPLY, since=SINCE + timedelta(minutes=6)) is None


# An author type that is not text (a list, an object) once raised TypeError (unhashable) from
# the look-up, so a timed-out reply could not be settled; such a part is no admin's.
HOSTILE_TYPES = [["user"], {"type": "admin"}, ["admin"]]


@pytest.mark.parametrize("value", HOSTILE_TYPES)
@responses.activate
def test_a_newer_part_with_an_unreadable_author_type_is_skipped(value):
    data = conversation()
    parts = data["conversation_parts"]["conversation_parts"]
    next(p for p in parts if p["id"] == CUSTOMER_QUOTE)["author"]["type"] = value
    responses.get(URL, json=data)
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == OURS


@pytest.mark.parametrize("value", HOSTILE_TYPES)
@responses.activate
def test_a_part_whose_author_type_is_unreadable_is_not_ours(value):
    data = conversation()
    parts = data["conversation_parts"]["conversation_parts"]
    next(p for p in parts if p["id"] == OURS)["author"]["type"] = value
    responses.get(URL, json=data)
    assert adapter().find_reply(REPLY, since=SINCE) is None


@pytest.mark.parametrize(
    ("status", "code", "retryable", "words"),
    [
        (401, "unauthorized", False, "access_token"),
        (403, "action_forbidden", False, "read conversations"),
        (404, "not_found", False, "no such conversation"),
        (429, "rate_limit_exceeded", True, "HTTP 429"),
        (500, "server_error", True, "HTTP 500"),
    ],
)
@responses.activate
def test_lookup_errors_map_to_what_the_caller_does(status, code, retryable, words):
    body = {"type": "error.list", "request_id": "r1", "errors": [{"code": code, "message": "x y"}]}
    responses.get(URL, status=status, json=body)
    with pytest.raises(DeliveryError) as caught:
        adapter().find_reply(REPLY, since=SINCE)
    assert caught.value.retryable is retryable and caught.value.http_status == status
    assert words in caught.value.message and code in caught.value.message


# --- the vendor's reason when a reply is refused -------------------------------------------


@responses.activate
def test_a_refused_reply_keeps_intercoms_codes_without_customer_text():
    responses.post(
        f"{URL}/reply",
        status=400,
        json={
            "type": "error.list",
            "request_id": "f93ecfa8-d08a-4325-8694-89aeb89c8f85",
            "errors": [
                # the documentation's own example: values echoed in brackets
                {"code": "not_found", "message": "No such email[jane@acme.inc]", "field": "email"},
                {"code": "parameter_invalid", "message": f"Body {REPLY.text[:60]} is invalid"},
                {"code": "admin_not_found", "message": "Admin Anna not found"},
            ],
        },
    )
    with pytest.raises(DeliveryError) as caught:
        adapter().send_reply(REPLY)
    assert caught.value.vendor_reason == (
        "not_found email: No such email…; parameter_invalid: Body … is invalid; admin_not_found"
    )
    for private in ("jane@acme.inc", "Anna", REPLY.text[:60]):
        assert private not in caught.value.message


KITS = load_kits()


@pytest.mark.parametrize(
    "unreadable",
    [
        {"body": HTML, "content_type": "text/html"},
        {"json": {}},
        {"json": {"type": "conversation", "id": "503"}},
    ],
)
@responses.activate
def test_an_unreadable_listing_is_asked_again_later_not_taken_for_empty(unreadable):
    # Intercom always sends conversation_parts: without it (or with a proxy's page) the
    # answer is no proof the reply is absent; "not found" posted the survey a second time.
    responses.get(URL, status=200, **unreadable)
    responses.get(URL, json=conversation())
    with pytest.raises(DeliveryError, match="look-up answer") as caught:
        adapter().find_reply(REPLY, since=SINCE)
    assert caught.value.retryable and not caught.value.outcome_unknown
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == OURS


@responses.activate
def test_a_conversation_without_parts_is_still_not_found():
    empty = {"type": "conversation.part.list", "conversation_parts": [], "total_count": 0}
    responses.get(URL, json={**conversation(), "conversation_parts": empty})
    assert adapter().find_reply(REPLY, since=SINCE) is None


VENDOR = "https://intercom.vendor.test"


@pytest.mark.parametrize("post_answer", NOT_THE_APIS_ANSWER)
def test_the_outbox_posts_once_when_the_listing_is_unreadable(
    make_config, make_services, clock, post_answer
):
    options = {"kind": "intercom", **KITS["intercom"].options(VENDOR, None)}
    conversation = f"{VENDOR}/conversations/137324500000000"

    def landed(text: str, now: Any) -> dict[str, Any]:
        part = {
            "id": "777",
            "part_type": "comment",
            "author": {"type": "admin", "id": "3330619"},
            "created_at": int(now.timestamp()),
            "body": text,
        }
        return {"type": "conversation", "state": "closed", **_parts([part])}

    outbox_posts_once(
        make_services(make_config(helpdesks={"intercom": options})),
        "intercom",
        clock,
        post_answer=post_answer,
        post_url=f"{conversation}/reply",
        listing_url=conversation,
        posted_text=lambda body: body["body"],
        landed=landed,
        unreadable=[HTML, "{}", '{"type": "conversation", "state": "closed"}'],
        before_post={"type": "conversation", "state": "closed", **_parts([])},
    )


def _parts(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"conversation_parts": {"type": "conversation_part.list", "conversation_parts": parts}}
