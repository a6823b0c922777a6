"""LiveChat through ``examples/livechat.yaml``: the body's ``secret_key``, the reply into the
closed chat through the Agent Chat API, the agent's name from Get Chat, and reopen.

Payloads: the ``chat_deactivated`` and ``incoming_chat`` samples of LiveChat's Webhooks v3.6
reference, Get Chat / Resume Chat / List Threads answers of the Agent Chat Web API v3.6
reference (livechat/livechat-public-docs).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
import responses
from click.testing import CliRunner
from responses import matchers

from csat_hook import tokens
from csat_hook.app import create_app
from csat_hook.cli import main
from csat_hook.outbox.reply_delivery import agent_look_up_attempts
from tests.helpdesks.generic.examples import EXAMPLES
from tests.helpdesks.generic.examples import LIVECHAT_ACTION
from tests.helpdesks.generic.examples import LIVECHAT_SECRET
from tests.helpdesks.generic.examples import LIVECHAT_SECRETS
from tests.helpdesks.generic.examples import example_config
from tests.helpdesks.generic.examples import livechat_answer
from tests.helpdesks.generic.examples import livechat_body
from tests.helpdesks.generic.examples import outbox_rows
from tests.helpdesks.generic.examples import survey_rows
from tests.helpers import link_fields

API_HEADERS = {"Authorization": "Basic " + LIVECHAT_SECRETS["LIVECHAT_API_AUTH"]}
GET_CHAT = LIVECHAT_ACTION + "get_chat"
RESUME_CHAT = LIVECHAT_ACTION + "resume_chat"
LIST_THREADS = LIVECHAT_ACTION + "list_threads"
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def livechat(migrated_url, tmp_path, make_services):
    return make_services(example_config("livechat", LIVECHAT_SECRETS, migrated_url, tmp_path))


@pytest.fixture
def delayed(migrated_url, tmp_path, make_services):
    """The example with an hour's send delay: a survey still waits when the customer is back."""
    return make_services(
        example_config(
            "livechat",
            LIVECHAT_SECRETS,
            migrated_url,
            tmp_path,
            policy={"send_delay_seconds": 3600},
        )
    )


def post(services, body: bytes, headers=None, query=None):
    client = create_app(services=services).test_client()
    return client.post(
        "/webhooks/livechat", data=body, headers=headers or JSON, query_string=query or {}
    )


def replies() -> list[dict]:
    return [
        json.loads(call.request.body) for call in responses.calls if call.request.url == RESUME_CHAT
    ]


@responses.activate
def test_a_close_gets_one_reply_of_livechats_shape_thanking_the_chats_agent(livechat):
    auth = matchers.header_matcher(API_HEADERS)
    responses.post(
        GET_CHAT,
        json=livechat_answer("get_chat"),
        match=[
            auth,
            matchers.json_params_matcher({"chat_id": "PJ0MRSHTDG", "thread_id": "K600PKZON8"}),
        ],
    )
    responses.post(RESUME_CHAT, json=livechat_answer("resume_chat"), match=[auth])
    body = livechat_body("chat_deactivated")

    first = post(livechat, body)
    again = post(livechat, body)  # LiveChat retries a webhook it got no 200 for

    assert first.status_code == 200 and first.json["status"] == "queued", first.json
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert livechat.delivery_worker().run_once() == 1
    [reply] = replies()
    # Resume Chat into the closed chat: one inactive thread holding our message.
    [event] = reply["chat"]["thread"]["events"]
    assert reply == {
        "chat": {"id": "PJ0MRSHTDG", "thread": {"events": [event]}},
        "active": False,
    }
    assert {k: v for k, v in event.items() if k != "text"} == {
        "type": "message",
        "visibility": "all",
    }
    [survey] = survey_rows(livechat)
    assert survey.dialog_id == "K600PKZON8" and survey.link in event["text"]
    assert "Agent Smith" in event["text"]
    fields = link_fields(survey.link)
    assert (fields["entry.111"], fields["entry.222"]) == ("Agent Smith", "smith@example.com")
    assert fields["entry.333"] == "K600PKZON8"
    ref = tokens.verify(fields["entry.444"], livechat.config.token.all_secrets())
    assert (ref.helpdesk, ref.dialog_id) == ("livechat", "K600PKZON8")
    [item] = outbox_rows(livechat)
    assert item.status == "sent" and item.external_id == "K600PKZOP8_1"


@pytest.mark.parametrize(
    ("case", "body", "query", "headers"),
    [
        ("no secret_key", livechat_body("chat_deactivated", secret=None), None, None),
        ("a wrong secret_key", livechat_body("chat_deactivated", secret="guess"), None, None),
        ("an empty secret_key", livechat_body("chat_deactivated", secret=""), None, None),
        (
            "the secret in a list",
            livechat_body("chat_deactivated").replace(
                f'"{LIVECHAT_SECRET}"'.encode(), f'["{LIVECHAT_SECRET}"]'.encode()
            ),
            None,
            None,
        ),
        (
            "the secret in the query, not the body",
            livechat_body("chat_deactivated", secret=None),
            {"token": LIVECHAT_SECRET, "secret_key": LIVECHAT_SECRET},
            None,
        ),
        (
            "the secret in a header, not the body",
            livechat_body("chat_deactivated", secret=None),
            None,
            {**JSON, "X-Webhook-Token": LIVECHAT_SECRET},
        ),
        ("not JSON", b"secret_key=" + LIVECHAT_SECRET.encode(), None, None),
    ],
)
def test_a_forged_or_unauthenticated_close_is_refused_and_nothing_stored(
    livechat, case, body, query, headers
):
    response = post(livechat, body, headers, query)

    assert response.status_code == 401 and response.json["error"] == "unauthorized", case
    assert survey_rows(livechat) == []


def test_the_customer_back_in_a_new_thread_cancels_a_survey_still_waiting(delayed):
    assert post(delayed, livechat_body("chat_deactivated")).json["status"] == "queued"

    # Our own reply opens an inactive thread: LiveChat announces it too, and it is no reopen.
    ours = post(delayed, livechat_body("incoming_chat_survey_thread"))
    back = post(delayed, livechat_body("incoming_chat_customer_back"))

    assert ours.status_code == 200 and ours.json["status"] == "ignored"
    assert back.status_code == 200 and back.json == {"status": "reopened", "cancelled": 1}
    assert [row.status for row in outbox_rows(delayed)] == ["cancelled"]


def test_a_retry_of_the_close_after_the_customer_came_back_re_arms_nothing(delayed):
    """A thread is never active again once deactivated (the customer back starts a new one),
    so the example maps ``closes_once``: the same chat_deactivated delivered again after the
    reopen (LiveChat retrying a delivery it saw fail) is that close's retry, and the survey
    the customer's return cancelled stays cancelled."""
    close = livechat_body("chat_deactivated")
    assert post(delayed, close).json["status"] == "queued"
    assert post(delayed, livechat_body("incoming_chat_customer_back")).json["cancelled"] == 1

    retry = post(delayed, close)

    assert retry.status_code == 200 and retry.json["status"] == "duplicate"
    assert [row.status for row in outbox_rows(delayed)] == ["cancelled"]
    assert [row.status for row in survey_rows(delayed)] == ["cancelled"]


def test_a_first_thread_is_no_reopen_and_other_actions_are_ignored(livechat):
    first = json.loads(livechat_body("incoming_chat_customer_back"))
    del first["payload"]["chat"]["thread"]["previous_thread_id"]  # a brand-new chat

    new_chat = post(livechat, json.dumps(first).encode())
    event = post(livechat, livechat_body("incoming_event"))

    assert new_chat.status_code == 200 and new_chat.json["status"] == "ignored"
    assert event.status_code == 200 and event.json["status"] == "ignored"
    assert survey_rows(livechat) == []


@responses.activate
@pytest.mark.parametrize(("status", "retried"), [(429, True), (401, False)])
def test_a_failing_get_chat_is_retried_or_not_then_the_survey_goes_out_without_a_name(
    livechat, clock, status, retried
):
    # 429: retried for the look-up's share of the attempts; 401: asking again cannot help.
    max_attempts = livechat.config.delivery.max_attempts
    attempts = agent_look_up_attempts(max_attempts) + 1 if retried else 1
    responses.post(GET_CHAT, status=status, json={"error": {"type": "x", "message": "no"}})
    responses.post(RESUME_CHAT, json=livechat_answer("resume_chat"))
    post(livechat, livechat_body("chat_deactivated"))
    worker = livechat.delivery_worker()

    for _ in range(attempts):
        assert replies() == []
        worker.run_once()
        clock.advance(3600)

    [reply] = replies()  # 429: after the retries; 401: at once (asking again cannot help)
    [survey] = survey_rows(livechat)
    assert link_fields(survey.link)["entry.111"] == "Support team"
    assert "Agent Smith" not in reply["chat"]["thread"]["events"][0]["text"]


@responses.activate
def test_a_refusal_keeps_livechats_reason(livechat):
    responses.post(GET_CHAT, json=livechat_answer("get_chat"))
    responses.post(RESUME_CHAT, status=422, json=livechat_answer("error_chat_inactive"))
    post(livechat, livechat_body("chat_deactivated"))

    livechat.delivery_worker().run_once()

    [item] = outbox_rows(livechat)
    assert item.status == "failed"
    assert item.last_error.endswith("chat_inactive: Chat is inactive"), item.last_error


@responses.activate
def test_a_reply_that_timed_out_is_found_in_the_newest_threads(livechat, clock):
    responses.post(GET_CHAT, json=livechat_answer("get_chat"))
    responses.post(RESUME_CHAT, body=requests.ReadTimeout("slow"))
    post(livechat, livechat_body("chat_deactivated"))
    worker = livechat.delivery_worker()
    worker.run_once()
    [sent] = replies()
    listing = json.dumps(livechat_answer("list_threads"))
    text = sent["chat"]["thread"]["events"][0]["text"]
    created = (clock() + timedelta(seconds=2)).isoformat().replace("+00:00", "Z")
    listing = listing.replace("{{REPLY}}", json.dumps(text)[1:-1]).replace("{{CREATED}}", created)
    responses.post(
        LIST_THREADS,
        json=json.loads(listing),
        match=[
            matchers.json_params_matcher(
                {"chat_id": "PJ0MRSHTDG", "sort_order": "desc", "limit": 3}
            )
        ],
    )

    clock.advance(livechat.config.delivery.settle_seconds + 1)
    worker.run_once()

    assert len(replies()) == 1  # found, not posted again
    [item] = outbox_rows(livechat)
    assert item.status == "sent" and item.external_id == "K600PKZOP8_1"


def test_inspect_payload_verifies_the_body_secret_and_never_prints_it(tmp_path):
    payload = tmp_path / "close.json"
    payload.write_bytes(livechat_body("chat_deactivated"))
    forged = tmp_path / "forged.json"
    forged.write_bytes(livechat_body("chat_deactivated", secret="guess"))
    args = ["--config", str(EXAMPLES / "livechat.yaml"), "inspect-payload"]
    args += ["--helpdesk", "livechat", "--verify"]
    runner = CliRunner()

    good = runner.invoke(main, [*args, str(payload)], env=LIVECHAT_SECRETS)
    bad = runner.invoke(main, [*args, str(forged)], env=LIVECHAT_SECRETS)

    assert good.exit_code == 0, good.output
    assert "sender: verified" in good.output and "result: DialogClosed" in good.output
    assert 'secret_key = "***"' in good.output
    assert bad.exit_code == 1 and "unauthorized" in bad.output
    assert LIVECHAT_SECRET not in good.output + bad.output


def test_check_config_masks_every_livechat_secret():
    result = CliRunner().invoke(
        main,
        ["--config", str(EXAMPLES / "livechat.yaml"), "check-config"],
        env=LIVECHAT_SECRETS,
    )

    assert result.exit_code == 0, result.output
    assert "secret_key" in result.output  # the field's name is shown, its value never
    for secret in LIVECHAT_SECRETS.values():
        assert secret not in result.output
