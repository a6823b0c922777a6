"""Intercom: finding a reply after a timeout (find_reply), and the vendor's reason on a refusal."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from datetime import timedelta
from typing import Any

import pytest
import responses
from responses import matchers

from csat_hook.app import create_app
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.intercom import IntercomHelpdesk
from csat_hook.helpdesks.intercom import IntercomOptions
from csat_hook.helpdesks.records import Person
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
from tests.outbox.test_worker import outbox_rows

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


@responses.activate
def test_finds_our_reply_recorded_as_the_part_that_reopened_the_conversation():
    # An admin's reply that reopens a closed conversation is one part of type "open" that
    # carries the reply's body (as a customer's reply that reopens it is): read as not ours,
    # the survey was posted a second time.
    data = conversation(drop=(CUSTOMER_QUOTE,))
    next(p for p in data["conversation_parts"]["conversation_parts"] if p["id"] == OURS)[
        "part_type"
    ] = "open"
    responses.get(URL, json={**data, "state": "closed", "open": False})
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == OURS


@responses.activate
def test_a_customers_reopening_part_quoting_the_survey_is_no_match():
    data = conversation(drop=(OURS, NOTE))
    for part in data["conversation_parts"]["conversation_parts"]:
        part["part_type"] = "open"
    responses.get(URL, json=data)
    assert adapter().find_reply(REPLY, since=SINCE) is None


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


# --- keep_closed for a reply found by the look-up -------------------------------------------
# A reply posted this attempt is followed by a close when Intercom's answer says the
# conversation is open again; one found by the look-up (the earlier attempt's answer was lost:
# a timeout, a proxy's page) was left open in the agent's inbox.

CLOSE_BODY = {"message_type": "close", "type": "admin", "admin_id": "991267800"}


def reopened_by_our_reply(*, after_ours: tuple[str, ...] = ()) -> dict[str, Any]:
    """The conversation as our reply left it: open, our comment the newest part (then the
    parts ``after_ours`` of the fixture, re-stamped after it)."""
    data = conversation(drop=(CUSTOMER_QUOTE,))
    data["state"], data["open"] = "open", True
    parts = data["conversation_parts"]["conversation_parts"]
    for i, part_id in enumerate(after_ours, start=1):
        part = copy.deepcopy(
            next(
                p
                for p in conversation()["conversation_parts"]["conversation_parts"]
                if p["id"] == part_id
            )
        )
        part["id"] = f"9{i:03d}"
        part["created_at"] = parts[-1]["created_at"] + 60
        parts.append(part)
    return data


def expect_close(status: int = 200) -> Any:
    return responses.post(
        f"{URL}/parts",
        status=status,
        json={"type": "conversation", "id": "503", "state": "closed"},
        match=[matchers.json_params_matcher(CLOSE_BODY), matchers.header_matcher(HEADERS)],
    )


@responses.activate
def test_a_found_reply_that_reopened_the_conversation_closes_it_again():
    responses.get(URL, json=reopened_by_our_reply())
    closed = expect_close()
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == OURS
    assert closed.call_count == 1


@responses.activate
def test_a_found_reply_in_a_closed_conversation_is_not_closed_again():
    responses.get(URL, json={**reopened_by_our_reply(), "state": "closed", "open": False})
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and len(responses.calls) == 1


@pytest.mark.parametrize(
    ("after_ours", "why"),
    [
        ((CUSTOMER_QUOTE,), "the customer answered after the survey: an agent must see it"),
        (("8207",), "an agent wrote after the survey: the conversation is being handled"),
        (("8208",), "an agent's note after the survey"),
    ],
)
@responses.activate
def test_a_conversation_acted_on_after_our_reply_is_left_open(after_ours, why):
    responses.get(URL, json=reopened_by_our_reply(after_ours=after_ours))
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == OURS
    assert len(responses.calls) == 1, why


@responses.activate
def test_a_conversation_the_customer_reopened_before_our_reply_is_left_open():
    # The customer wrote between the close and our reply (their reply reopened it, a part of
    # type open): the conversation is open for them, not because of ours, and closing it again
    # hid their message from the inbox.
    data = reopened_by_our_reply()
    parts = data["conversation_parts"]["conversation_parts"]
    ours = next(i for i, p in enumerate(parts) if p["id"] == OURS)
    reopen = {
        "type": "conversation_part",
        "id": "8210",
        "part_type": "open",
        "body": "<p>One more question: where is my refund?</p>",
        "created_at": parts[ours]["created_at"] - 5,
        "author": {"type": "user", "id": "6762f1261bb69f9f2193bba7", "name": "Jane"},
    }
    parts.insert(ours, reopen)
    responses.get(URL, json=data)
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == OURS
    assert len(responses.calls) == 1


@responses.activate
def test_a_snoozed_conversation_is_left_snoozed():
    # Our reply reopens to "open"; snoozed is someone's choice made since.
    responses.get(URL, json={**reopened_by_our_reply(), "state": "snoozed"})
    assert adapter().find_reply(REPLY, since=SINCE) is not None
    assert len(responses.calls) == 1


@responses.activate
def test_keep_closed_off_leaves_a_found_reply_alone():
    responses.get(URL, json=reopened_by_our_reply())
    options = IntercomOptions(
        kind="intercom",
        base_url=API,
        access_token="ic-token",
        client_secret="ic-secret",
        keep_closed=False,
    )
    helpdesk = IntercomHelpdesk(
        "intercom", options, http=HttpClient(sleep=lambda _s: None), clock=FakeClock()
    )
    assert helpdesk.find_reply(REPLY, since=SINCE) is not None
    assert len(responses.calls) == 1


@responses.activate
def test_a_failed_close_after_a_found_reply_still_finds_it(caplog):
    responses.get(URL, json=reopened_by_our_reply())
    closed = expect_close(status=500)
    found = adapter().find_reply(REPLY, since=SINCE)
    assert found is not None and found.external_id == OURS  # never posted again
    assert closed.call_count >= 1
    assert "intercom.reclose-failed" in [r.msg for r in caplog.records]


@responses.activate
def test_the_close_after_a_found_reply_is_by_the_admin_the_reply_was_posted_as():
    reply = lookup_reply("intercom", "503", "991267715")
    responses.get(URL, json=reopened_by_our_reply())
    # No admin in the context: send_reply posts as the agent (991267715), so it closes.
    closed = responses.post(
        f"{URL}/parts",
        json={"type": "conversation", "id": "503", "state": "closed"},
        match=[matchers.json_params_matcher({**CLOSE_BODY, "admin_id": "991267715"})],
    )
    assert adapter().find_reply(reply, since=SINCE) is not None
    assert closed.call_count == 1


@responses.activate
def test_a_found_reply_with_no_admin_to_close_as_is_still_found():
    # Cannot happen for a reply this adapter posted (no admin: it is never posted), but the
    # look-up must not turn it into a refusal (which would post the reply again).
    reply = dataclasses.replace(lookup_reply("intercom", "503", "991267715"), agent=Person())
    responses.get(URL, json=reopened_by_our_reply())
    found = adapter().find_reply(reply, since=SINCE)
    assert found is not None and found.external_id == OURS
    assert len(responses.calls) == 1


def test_the_outbox_closes_again_a_reply_found_after_an_unknown_outcome(
    make_config, make_services, clock
):
    # The reply's POST answers 201 {} (no part id: outcome unknown); the next attempt finds
    # it in the conversation, which our reply reopened: the survey is sent and the
    # conversation closed again, as when the reply is posted and answered.
    options = {"kind": "intercom", **KITS["intercom"].options(VENDOR, None)}
    services = make_services(make_config(helpdesks={"intercom": options}))
    body, headers, query = KITS["intercom"].closed(clock.now)
    client = create_app(services=services).test_client()
    queued = client.post("/webhooks/intercom", data=body, headers=headers, query_string=query)
    assert queued.json["status"] == "queued"
    conversation_url = f"{VENDOR}/conversations/137324500000000"
    posted: list[str] = []
    closes: list[dict[str, Any]] = []

    def post(request: Any) -> Any:
        posted.append(json.loads(request.body)["body"])
        return 201, {"Content-Type": "application/json"}, "{}"

    def listing(request: Any) -> Any:
        part = {
            "id": "777",
            "part_type": "comment",
            "author": {"type": "admin", "id": "3330619"},
            "created_at": int(clock.now.timestamp()),
            "body": posted[0],
        }
        answer = {"type": "conversation", "state": "open", "open": True, **_parts([part])}
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)

    def close(request: Any) -> Any:
        closes.append(json.loads(request.body))
        return 200, {"Content-Type": "application/json"}, '{"type": "conversation"}'

    worker = services.delivery_worker()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake:
        fake.add_callback(responses.POST, f"{conversation_url}/reply", callback=post)
        fake.add_callback(responses.GET, conversation_url, callback=listing)
        fake.add_callback(responses.POST, f"{conversation_url}/parts", callback=close)
        fake.add(responses.GET, re.compile(r".*/admins/[^/]*$"), status=404, json={})
        worker.run_once()
        [item] = outbox_rows(services)
        assert item.status == "pending" and item.uncertain_since is not None, item.last_error
        assert closes == []
        clock.advance(3600)
        worker.run_once()
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.external_id == "777", item.last_error
    assert len(posted) == 1
    assert closes == [{"message_type": "close", "type": "admin", "admin_id": "3330619"}]
