"""Crisp through ``examples/crisp.yaml``: signed plugin hooks, the reply through the REST API,
the assigned operator's name looked up, reopen, and what a failing look-up does.

Payloads: the web hook envelope and ``session:set_state`` data of Crisp's Web Hooks reference
and RTM events (``website_id``, ``session_id``, ``state``); REST answers shaped as Crisp's Go
library maps them (``{"error", "reason", "data"}``).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
import requests
import responses
from responses import matchers

from csat_hook import tokens
from csat_hook.app import create_app
from csat_hook.outbox.reply_delivery import agent_look_up_attempts
from csat_hook.sync import store as sync_store
from csat_hook.sync.dataset import build_dataset
from csat_hook.sync.runner import SyncRunner
from tests.helpdesks.generic.examples import CRISP_API
from tests.helpdesks.generic.examples import CRISP_CONVERSATION
from tests.helpdesks.generic.examples import CRISP_OPERATOR
from tests.helpdesks.generic.examples import CRISP_SECRETS
from tests.helpdesks.generic.examples import CRISP_SESSION
from tests.helpdesks.generic.examples import crisp_answer
from tests.helpdesks.generic.examples import crisp_body
from tests.helpdesks.generic.examples import crisp_headers
from tests.helpdesks.generic.examples import example_config
from tests.helpdesks.generic.examples import outbox_rows
from tests.helpdesks.generic.examples import survey_rows
from tests.helpers import link_fields

API_HEADERS = {
    "Authorization": "Basic " + CRISP_SECRETS["CRISP_API_AUTH"],
    "X-Crisp-Tier": "plugin",
}
OPERATOR_URL = f"{CRISP_API}/operator/{CRISP_OPERATOR}"
MESSAGE_URL = f"{CRISP_CONVERSATION}/message"


@pytest.fixture
def crisp(migrated_url, tmp_path, make_services):
    return make_services(example_config("crisp", CRISP_SECRETS, migrated_url, tmp_path))


def post(services, body: bytes, headers: dict[str, str]):
    client = create_app(services=services).test_client()
    return client.post("/webhooks/crisp", data=body, headers=headers)


def crisp_api_answers() -> None:
    """Crisp's REST API as the example uses it, each call checked for the token and tier."""
    auth = [matchers.header_matcher(API_HEADERS)]
    responses.get(CRISP_CONVERSATION, json=crisp_answer("get_conversation"), match=auth)
    responses.get(OPERATOR_URL, json=crisp_answer("get_operator"), match=auth)
    responses.post(MESSAGE_URL, json=crisp_answer("send_message"), match=auth)


def posted_messages() -> list[dict]:
    return [
        json.loads(call.request.body)
        for call in responses.calls
        if call.request.method == "POST" and call.request.url == MESSAGE_URL
    ]


@responses.activate
def test_a_signed_close_gets_one_reply_of_crisps_shape_thanking_the_assigned_operator(crisp, clock):
    crisp_api_answers()
    body = crisp_body("session_set_state_resolved")

    first = post(crisp, body, crisp_headers(body, clock()))
    again = post(crisp, body, crisp_headers(body, clock()))  # Crisp's retry of the same hook

    assert first.status_code == 200 and first.json["status"] == "queued", first.json
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert crisp.delivery_worker().run_once() == 1
    [message] = posted_messages()
    # Send A Message In Conversation: a text message from the operator side, in the chat.
    assert {k: v for k, v in message.items() if k != "content"} == {
        "type": "text",
        "from": "operator",
        "origin": "chat",
    }
    [survey] = survey_rows(crisp)
    assert survey.dialog_id == CRISP_SESSION and survey.link in message["content"]
    assert "Valerian Saliou" in message["content"]  # the operator is thanked by name
    fields = link_fields(survey.link)
    assert fields["entry.111"] == "Valerian Saliou"
    assert fields["entry.222"] == CRISP_OPERATOR
    assert fields["entry.333"] == CRISP_SESSION
    ref = tokens.verify(fields["entry.444"], crisp.config.token.all_secrets())
    assert (ref.helpdesk, ref.dialog_id) == ("crisp", CRISP_SESSION)
    assert (survey.agent_name, survey.agent_email) == ("Valerian Saliou", "valerian@crisp.chat")
    [item] = outbox_rows(crisp)
    assert item.status == "sent" and item.external_id == "163408415188827"


@pytest.mark.parametrize(
    "case",
    [
        "unsigned",
        "wrong secret",
        "body changed after signing",
        "timestamp replaced",
        "timestamp six minutes old",
        "timestamp in seconds instead of milliseconds",
        "re-serialized body",
    ],
)
def test_a_forged_unsigned_or_replayed_hook_is_refused_and_nothing_stored(crisp, clock, case):
    body = crisp_body("session_set_state_resolved")
    headers = crisp_headers(body, clock())
    if case == "unsigned":
        headers = {"Content-Type": "application/json"}
    elif case == "wrong secret":
        headers = crisp_headers(body, clock(), secret="someone-elses-secret")
    elif case == "body changed after signing":
        body = body.replace(b'"resolved"', b'"resolved" ')
    elif case == "timestamp replaced":
        headers["X-Crisp-Request-Timestamp"] = str(int(headers["X-Crisp-Request-Timestamp"]) + 1)
    elif case == "timestamp six minutes old":
        headers = crisp_headers(body, clock() - timedelta(minutes=6))
    elif case == "timestamp in seconds instead of milliseconds":
        seconds = str(int(clock().timestamp()))
        trace = b"[" + seconds.encode() + b";" + body + b"]"
        headers["X-Crisp-Request-Timestamp"] = seconds
        headers["X-Crisp-Signature"] = hmac.new(
            CRISP_SECRETS["CRISP_HOOK_SECRET"].encode(), trace, hashlib.sha256
        ).hexdigest()
    else:
        # Signed over the compact JSON Crisp sends, delivered pretty-printed: the signature
        # covers the bytes received, never a re-serialization of them (see docs/helpdesks/crisp.md).
        pretty = json.dumps(json.loads(body), indent=2).encode()
        headers, body = crisp_headers(body, clock()), pretty

    response = post(crisp, body, headers)

    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert survey_rows(crisp) == []


def test_a_reopen_cancels_a_survey_still_waiting(migrated_url, tmp_path, make_services, clock):
    services = make_services(
        example_config(
            "crisp",
            CRISP_SECRETS,
            migrated_url,
            tmp_path,
            policy={"send_delay_seconds": 3600},
        )
    )
    closed = crisp_body("session_set_state_resolved")
    reopened = crisp_body("session_set_state_unresolved")

    assert post(services, closed, crisp_headers(closed, clock())).json["status"] == "queued"
    response = post(services, reopened, crisp_headers(reopened, clock()))

    assert response.status_code == 200
    assert response.json == {"status": "reopened", "cancelled": 1}
    [item] = outbox_rows(services)
    assert item.status == "cancelled"


def _state(state: str, timestamp: int) -> bytes:
    """A session:set_state hook of the fixtures' conversation at ``timestamp`` (ms)."""
    document = json.loads(crisp_body("session_set_state_resolved"))
    document["data"]["state"] = state
    document["timestamp"] = timestamp
    return json.dumps(document, separators=(",", ":")).encode()


@pytest.mark.parametrize("policy", [{}, {"per_dialog": "every_close", "reclose_grace_seconds": 0}])
def test_the_hooks_own_times_order_closes_retries_and_reopens(
    migrated_url, tmp_path, make_services, clock, policy
):
    """The example maps Crisp's ``timestamp`` (when the state changed, the same on Crisp's
    retries) as the close's and the reopen's time. Without them, a retry of a close delivered
    after the customer reopened the conversation re-armed the cancelled survey (a survey into
    an open conversation), and a reopen delivered late cancelled the survey of the newer close
    that followed it."""
    services = make_services(
        example_config(
            "crisp",
            CRISP_SECRETS,
            migrated_url,
            tmp_path,
            policy={"send_delay_seconds": 3600, **policy},
        )
    )
    at = int(clock().timestamp() * 1000) - 600_000  # ten minutes ago

    def send(body: bytes) -> dict:
        clock.advance(1)
        return post(services, body, crisp_headers(body, clock())).json

    closed, reopened, closed_again = (
        _state("resolved", at),
        _state("unresolved", at + 60_000),
        _state("resolved", at + 120_000),
    )
    assert send(closed)["status"] == "queued"
    assert send(reopened) == {"status": "reopened", "cancelled": 1}
    # Crisp's retry of the first close, after the reopen: that close, not a new one.
    assert send(closed)["status"] == "duplicate"
    assert send(closed_again)["status"] == "queued"
    # Crisp's retry of the reopen, after the newer close: it does not cancel that one.
    late = send(reopened)
    assert (late["cancelled"], late["kept_older_than_close"]) == (0, 1), late
    assert [row.status for row in outbox_rows(services)][-1] == "pending"


def test_other_events_are_acknowledged_and_ignored(crisp, clock):
    body = crisp_body("message_send")

    response = post(crisp, body, crisp_headers(body, clock()))

    assert response.status_code == 200 and response.json["status"] == "ignored"
    assert survey_rows(crisp) == []


@responses.activate
def test_a_failing_look_up_is_retried_then_the_survey_goes_out_without_a_name(crisp, clock):
    responses.get(CRISP_CONVERSATION, status=503, json={"error": True, "reason": "unavailable"})
    responses.post(MESSAGE_URL, json=crisp_answer("send_message"))
    body = crisp_body("session_set_state_resolved")
    post(crisp, body, crisp_headers(body, clock()))
    worker = crisp.delivery_worker()
    looked_up = agent_look_up_attempts(crisp.config.delivery.max_attempts)

    for attempt in range(1, looked_up + 1):
        worker.run_once()
        [item] = outbox_rows(crisp)
        assert item.status == "pending" and item.last_error.startswith("agent lookup: ")
        assert posted_messages() == [], attempt
        clock.advance(3600)
    worker.run_once()

    [message] = posted_messages()  # then it sends with what is known
    [survey] = survey_rows(crisp)
    assert link_fields(survey.link)["entry.111"] == "Support team"
    assert "Valerian" not in message["content"]
    assert outbox_rows(crisp)[0].status == "sent"


@responses.activate
def test_a_failing_look_up_leaves_the_reply_attempts_of_its_own(crisp, clock):
    # The look-up was retried up to the last attempt: the reply then had that one try, and
    # a passing 503 to it failed the survey for good.
    responses.get(CRISP_CONVERSATION, status=503, json={"error": True, "reason": "unavailable"})
    responses.post(MESSAGE_URL, status=503, json={"error": True, "reason": "unavailable"})
    responses.post(MESSAGE_URL, json=crisp_answer("send_message"))
    body = crisp_body("session_set_state_resolved")
    post(crisp, body, crisp_headers(body, clock()))
    worker = crisp.delivery_worker()

    for _ in range(crisp.config.delivery.max_attempts):
        worker.run_once()
        clock.advance(3600)

    [item] = outbox_rows(crisp)
    assert item.status == "sent", item.last_error
    assert len(posted_messages()) == 2  # the 503, then the one that went out


@responses.activate
def test_a_token_that_may_not_read_operators_sends_at_once_with_the_id(crisp, clock):
    responses.get(CRISP_CONVERSATION, json=crisp_answer("get_conversation"))
    responses.get(OPERATOR_URL, status=403, json={"error": True, "reason": "not_allowed"})
    responses.post(MESSAGE_URL, json=crisp_answer("send_message"))
    body = crisp_body("session_set_state_resolved")
    post(crisp, body, crisp_headers(body, clock()))

    crisp.delivery_worker().run_once()

    assert len(posted_messages()) == 1  # a permanent refusal is not worth a retry
    [survey] = survey_rows(crisp)
    fields = link_fields(survey.link)
    assert fields["entry.222"] == CRISP_OPERATOR and fields["entry.111"] == "Support team"


@responses.activate
def test_an_operator_is_asked_for_once_and_remembered(crisp, clock):
    crisp_api_answers()
    other = "session_9f0d6f24-3f3a-4c59-9a43-0d4e1fb7d7a1"
    responses.get(f"{CRISP_API}/conversation/{other}", json=crisp_answer("get_conversation"))
    responses.post(f"{CRISP_API}/conversation/{other}/message", json=crisp_answer("send_message"))
    for session in (CRISP_SESSION, other):
        body = crisp_body("session_set_state_resolved").replace(
            CRISP_SESSION.encode(), session.encode()
        )
        assert post(crisp, body, crisp_headers(body, clock())).json["status"] == "queued"

    assert crisp.delivery_worker().run_once() == 2

    urls = [call.request.url for call in responses.calls]
    assert urls.count(OPERATOR_URL) == 1
    assert {link_fields(row.link)["entry.111"] for row in survey_rows(crisp)} == {"Valerian Saliou"}


@responses.activate
def test_a_reply_that_timed_out_is_found_and_not_posted_again(crisp, clock):
    responses.get(CRISP_CONVERSATION, json=crisp_answer("get_conversation"))
    responses.get(OPERATOR_URL, json=crisp_answer("get_operator"))
    responses.post(MESSAGE_URL, body=requests.ReadTimeout("slow"))
    body = crisp_body("session_set_state_resolved")
    post(crisp, body, crisp_headers(body, clock()))
    worker = crisp.delivery_worker()
    worker.run_once()
    [item] = outbox_rows(crisp)
    assert item.status == "pending" and "outcome unknown" in item.last_error
    # It had landed: Crisp lists it among the conversation's latest messages.
    listing = crisp_answer("list_messages")
    [sent] = posted_messages()
    listing["data"][1]["content"] = sent["content"]
    listing["data"][1]["timestamp"] = int(clock().timestamp() * 1000) + 1500
    responses.get(f"{CRISP_CONVERSATION}/messages", json=listing)

    clock.advance(crisp.config.delivery.settle_seconds + 1)
    worker.run_once()

    assert len(posted_messages()) == 1  # found: not posted again
    [item] = outbox_rows(crisp)
    assert item.status == "sent" and item.external_id == "163408415188827"


@responses.activate
def test_the_answer_is_credited_to_the_operator_the_look_up_found(
    migrated_url, tmp_path, make_services, clock
):
    """The close named no operator, so the survey's reference names none either; the operator
    found when the reply went out is recorded on the survey, and the sync credits the answer
    to them (not to a nameless bucket shared by every Crisp survey)."""
    export = tmp_path / "responses.csv"
    config = example_config(
        "crisp",
        CRISP_SECRETS,
        migrated_url,
        tmp_path,
        results={"source": "csv", "csv": {"path": str(export)}},
        output={"local": {"enabled": False}},
    )
    services = make_services(config)
    crisp_api_answers()
    body = crisp_body("session_set_state_resolved")
    post(services, body, crisp_headers(body, clock()))
    services.delivery_worker().run_once()
    [survey] = survey_rows(services)
    assert tokens.verify(survey.token, config.token.all_secrets()).agent == ""
    assert survey.agent_id == CRISP_OPERATOR  # recorded at send time
    when = (clock() + timedelta(hours=1)).strftime("%Y/%m/%d %I:%M:%S %p GMT+0")
    with export.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Timestamp", "Rating", "Comment", "Agent", "Ticket", "Reference"])
        writer.writerow([when, 5, "", "Valerian Saliou", CRISP_SESSION, survey.token])

    summary = SyncRunner(config, services.engine, clock=clock).run()

    assert summary.status == "ok", summary.error
    with services.engine.connect() as conn:
        data = build_dataset(
            sync_store.all_answers(conn),
            sync_store.survey_facts(conn),
            secrets=config.token.all_secrets(),
            helpdesks=config.helpdesks,
        )
    [answer] = data.answers
    agent = data.agents[answer.agent]
    assert (agent.key, agent.name, answer.rating) == (CRISP_OPERATOR, "Valerian Saliou", 5)
    assert answer.answered_sent
