"""Internal notes (alerts) in each helpdesk: the request as the vendor documents it (private,
no status change, HTML escaped where bodies are HTML), the note's id read from the vendor's
answer (the research fixtures), and a note whose outcome was unknown found by its
"Alert ref:" line among the private items only."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import responses
from responses import matchers

from csat_hook.alerts.records import alert_key
from csat_hook.alerts.records import alert_ref
from csat_hook.config import load_config
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks import build_helpdesks
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.notify.note import NoteDestination
from csat_hook.notify.options import NoteOptions
from tests.conftest import FakeClock
from tests.helpdesks.lookup import SINCE
from tests.helpdesks.markdown import as_read
from tests.helpdesks.markdown import shown
from tests.helpers import fixture
from tests.notify.conftest import NASTY_COMMENT
from tests.notify.conftest import sample

REF = "csat-alert-0123456789abcdef01234567"
LATER = 1741946900  # 2025-03-14 10:08:20 UTC, after SINCE
LATER_ISO = "2025-03-14T10:08:20Z"
HELPDESKS: dict[str, dict[str, Any]] = {
    "chatwoot": {
        "kind": "chatwoot",
        "base_url": "https://chat.example.com",
        "api_access_token": "bot-token",
        "lookup_access_token": "user-token",
        "webhook_secret": "sec",
    },
    "zendesk": {
        "kind": "zendesk",
        "base_url": "https://acme.zendesk.com",
        "email": "bot@acme.inc",
        "api_token": "zd-token",
        "webhook_secret": "zd-secret",
    },
    "intercom": {
        "kind": "intercom",
        "base_url": "https://api.intercom.io",
        "access_token": "ic-token",
        "client_secret": "ic-secret",
    },
    "freshdesk": {
        "kind": "freshdesk",
        "base_url": "https://acme.freshdesk.com",
        "api_key": "fd-key",
        "webhook_token": "hook-token",
    },
    "helpscout": {
        "kind": "helpscout",
        "client_id": "app-id",
        "client_secret": "app-secret",
        "webhook_secret": "hook-secret",
    },
    "generic": {
        "kind": "generic",
        "auth": {"mode": "token", "token": "t0ken-generic"},
        "reply": {"url": "https://desk.example/api/{dialog_id}/messages"},
        "note": {
            "url": "https://desk.example/api/{dialog_id}/notes",
            "headers": {"Authorization": "Bearer desk-key"},
            "body": {"internal": True, "html": "{html}", "ref": "{marker}"},
        },
        "note_lookup": {
            "url": "https://desk.example/api/{dialog_id}/notes",
            "messages": "notes",
            "text": "html",
            "ours": "internal",
        },
    },
}


def destination(vendor: str, **options: Any) -> NoteDestination:
    config = load_config(None, env={}, overrides={"helpdesks": {vendor: HELPDESKS[vendor]}})
    helpdesks = build_helpdesks(
        config.helpdesks, http=HttpClient(sleep=lambda _s: None), clock=FakeClock()
    )
    return NoteDestination(
        "notes",
        NoteOptions(kind="helpdesk_note", **options),
        http=HttpClient(sleep=lambda _s: None),
        helpdesks=helpdesks,
        clock=FakeClock(),
    )


def alert(vendor: str, dialog: str, context: dict[str, Any] | None = None) -> Any:
    return sample(ref=REF, helpdesk=vendor, dialog_id=dialog, context=context or {})


def sent_json(call: Any) -> Any:
    return json.loads(call.request.body)


# A comment written to become a link, an image, emphasis, a heading, a list, a table, an
# auto-link, a code block, entities... in a helpdesk that renders notes as Markdown.
MARKDOWN_COMMENT = (
    "[text](https://evil.example/x) ![x](https://evil.example/img.png) **bold** _it_\n"
    "# heading\n- item\n1. one\n| a | b |\n|---|---|\n"
    "<https://auto.example/> evil.example a@evil.example &lt;b&gt; `code` ~~gone~~ -- (c)\n"
    "    indented\n---"
)


# --- Chatwoot ---------------------------------------------------------------------------------

CW = "https://chat.example.com/api/v1/accounts/3/conversations/42/messages"


@responses.activate
def test_chatwoot_posts_a_private_message_and_reads_its_id():
    responses.post(CW, json=fixture("chatwoot", "create_note_response.json"))
    result = destination("chatwoot").send(alert("chatwoot", "42", {"account_id": "3"}))
    body = sent_json(responses.calls[0])
    assert body["private"] is True and body["message_type"] == "outgoing"
    assert responses.calls[0].request.headers["api_access_token"] == "bot-token"
    assert REF in body["content"] and body["content"].endswith(f"Alert ref\\: {REF}")
    assert NASTY_COMMENT in shown(body["content"])
    assert result.external_id == "1206"


@responses.activate
def test_chatwoot_shows_the_customers_markdown_as_written_and_finds_the_note_again():
    responses.post(CW, json=fixture("chatwoot", "create_note_response.json"))
    message = sample(
        ref=REF,
        helpdesk="chatwoot",
        dialog_id="42",
        context={"account_id": "3"},
        comment=MARKDOWN_COMMENT,
    )
    dest = destination("chatwoot")
    dest.send(message)
    content = sent_json(responses.calls[0])["content"]
    assert "\\[text\\]\\(https\\:\\/\\/evil\\.example\\/x\\)" in content
    assert "\\!\\[x\\]" in content and "\\*\\*bold\\*\\*" in content
    assert "\n> \\# heading\n> \\- item\n" in content
    _, note = dest.note(message)
    assert shown(content) == as_read(note.text)
    assert "[text](https://evil.example/x)" in shown(content)

    # The note as Chatwoot keeps it is found by its ref after an unknown outcome.
    responses.get(CW, json=chatwoot_page(cw_message(1301, private=True, content=content)))
    found = dest.find(message, since=SINCE)
    assert found is not None and found.external_id == "1301"


def chatwoot_page(*extra: dict[str, Any]) -> dict[str, Any]:
    page = copy.deepcopy(fixture("chatwoot", "list_messages.json"))
    page["payload"] += list(extra)
    return page


def cw_message(ident: int, *, private: bool, content: str) -> dict[str, Any]:
    return {
        "id": ident,
        "content": content,
        "message_type": 1,
        "private": private,
        "created_at": LATER,
        "sender": {"id": 31, "type": "user"},
        "conversation_id": 42,
    }


@responses.activate
def test_chatwoot_finds_our_note_and_not_a_public_message_with_the_ref():
    public = cw_message(1300, private=False, content=f"quoting Alert ref: {REF}")
    note = cw_message(1301, private=True, content=f"Low rating… Alert ref: {REF}")
    responses.get(CW, json=chatwoot_page(public, note))
    found = destination("chatwoot").find(alert("chatwoot", "42", {"account_id": "3"}), since=SINCE)
    assert found is not None and found.external_id == "1301"
    assert responses.calls[0].request.headers["api_access_token"] == "user-token"

    responses.replace(responses.GET, CW, json=chatwoot_page(public))
    assert (
        destination("chatwoot").find(alert("chatwoot", "42", {"account_id": "3"}), since=SINCE)
        is None
    )


# --- Zendesk ----------------------------------------------------------------------------------

ZD = "https://acme.zendesk.com/api/v2/tickets/35436.json"
ZD_LIST = "https://acme.zendesk.com/api/v2/tickets/35436/comments.json"


@responses.activate
def test_zendesk_adds_a_private_comment_without_touching_the_status():
    responses.put(ZD, json=fixture("zendesk", "create_note_response.json"))
    result = destination("zendesk").send(alert("zendesk", "35436"))
    ticket = sent_json(responses.calls[0])["ticket"]
    assert ticket == {"comment": {"html_body": ticket["comment"]["html_body"], "public": False}}
    assert "status" not in ticket  # never re-solve a ticket the customer reopened
    assert result.external_id == "24519010001"


@responses.activate
def test_zendesk_sends_the_note_as_escaped_html_never_as_markdown():
    # Zendesk renders a comment's "body" as Markdown, not its "html_body" (API reference,
    # Ticket Comments, "Bodies"): a comment's [text](url) or ![x](img) would be live.
    responses.put(ZD, json=fixture("zendesk", "create_note_response.json"))
    destination("zendesk").send(
        sample(ref=REF, helpdesk="zendesk", dialog_id="35436", comment=MARKDOWN_COMMENT)
    )
    comment = sent_json(responses.calls[0])["ticket"]["comment"]
    assert "body" not in comment
    body = comment["html_body"]
    assert body.startswith("<p>") and "<a " not in body and "<img" not in body
    assert "&gt; [text](https://evil.example/x) ![x](https://evil.example/img.png)" in body
    assert "&lt;https://auto.example/&gt;" in body and "&amp;lt;b&amp;gt;" in body
    assert REF in body


@responses.activate
def test_zendesk_a_closed_ticket_is_a_permanent_failure():
    responses.put(
        ZD, status=422, json={"error": "RecordInvalid", "description": "Record validation errors"}
    )
    with pytest.raises(DeliveryError) as caught:
        destination("zendesk").send(alert("zendesk", "35436"))
    assert not caught.value.retryable and "closed" in caught.value.message


@responses.activate
def test_zendesk_finds_our_private_comment():
    page = copy.deepcopy(fixture("zendesk", "list_messages.json"))
    note = {
        "id": 24519200001,
        "type": "Comment",
        "author_id": 8447388090777,
        "body": f"Low rating… Alert ref: {REF}",
        "html_body": f"<p>Low rating… Alert ref: {REF}</p>",
        "plain_body": f"Low rating… Alert ref: {REF}",
        "public": False,
        "created_at": LATER_ISO,
    }
    public = {**note, "id": 24519200002, "public": True}
    page["comments"] = [public, note, *page["comments"]]
    responses.get(
        ZD_LIST,
        json=page,
        match=[
            matchers.query_param_matcher(
                {"sort": "-created_at", "page[size]": "100", "include": "users"}
            )
        ],
    )
    found = destination("zendesk").find(alert("zendesk", "35436"), since=SINCE)
    assert found is not None and found.external_id == "24519200001"


# --- Intercom ---------------------------------------------------------------------------------

IC = "https://api.intercom.io/conversations/503"


@responses.activate
def test_intercom_posts_an_admins_note_with_escaped_html():
    responses.post(f"{IC}/reply", json=fixture("intercom", "create_note_response.json"))
    result = destination("intercom").send(alert("intercom", "503", {"admin_id": "991267800"}))
    body = sent_json(responses.calls[0])
    assert (body["message_type"], body["type"], body["admin_id"]) == ("note", "admin", "991267800")
    assert "&lt;script&gt;" in body["body"] and "<script>" not in body["body"]
    assert result.external_id == "8212"
    assert len(responses.calls) == 1  # a note leaves the conversation closed: no re-close


@responses.activate
def test_intercom_finds_our_note_part():
    conversation = copy.deepcopy(fixture("intercom", "list_messages.json"))
    parts = conversation["conversation_parts"]["conversation_parts"]
    note = {
        "type": "conversation_part",
        "id": "8300",
        "part_type": "note",
        "body": f"<p>Low rating… Alert ref: {REF}</p>",
        "created_at": LATER,
        "author": {"type": "admin", "id": "991267800"},
    }
    parts += [{**note, "id": "8299", "part_type": "comment"}, note]
    responses.get(IC, json=conversation)
    found = destination("intercom").find(alert("intercom", "503"), since=SINCE)
    assert found is not None and found.external_id == "8300"


# --- Freshdesk --------------------------------------------------------------------------------

FD = "https://acme.freshdesk.com/api/v2/tickets/20"


@responses.activate
def test_freshdesk_adds_a_private_note_emailing_nobody():
    responses.post(
        f"{FD}/notes", status=201, json=fixture("freshdesk", "create_note_response.json")
    )
    result = destination("freshdesk").send(alert("freshdesk", "20"))
    body = sent_json(responses.calls[0])
    assert body["private"] is True and "notify_emails" not in body
    assert body["body"].startswith("<p>") and "&lt;script&gt;" in body["body"]
    assert result.external_id == "43001000105"


@responses.activate
def test_freshdesk_finds_our_private_note():
    page = copy.deepcopy(fixture("freshdesk", "list_messages.json"))
    note = {
        "id": 43001000200,
        "body": f"<div>Low rating… Alert ref: {REF}</div>",
        "body_text": f"Low rating… Alert ref: {REF}",
        "incoming": False,
        "private": True,
        "source": 2,
        "created_at": LATER_ISO,
    }
    page += [{**note, "id": 43001000199, "private": False, "source": 0}, note]
    responses.get(f"{FD}/conversations", json=page)
    found = destination("freshdesk").find(alert("freshdesk", "20"), since=SINCE)
    assert found is not None and found.external_id == "43001000200"


# --- Help Scout -------------------------------------------------------------------------------

HS = "https://api.helpscout.net/v2/conversations/2391938111"


@pytest.mark.parametrize("status", ["closed", "active"])
@responses.activate
def test_helpscout_posts_the_note_with_the_conversations_current_status(status):
    responses.post(
        "https://api.helpscout.net/v2/oauth2/token",
        json={"access_token": "tok", "expires_in": 7200},
    )
    responses.get(HS, json={"id": 2391938111, "status": status})
    responses.post(f"{HS}/notes", status=201, headers={"Resource-ID": "2198262401"})
    result = destination("helpscout").send(alert("helpscout", "2391938111"))
    body = sent_json(responses.calls[-1])
    assert body["status"] == status  # closed stays closed, an open one stays open
    assert "&lt;script&gt;" in body["text"]
    assert result.external_id == "2198262401"


@responses.activate
def test_helpscout_does_not_post_without_knowing_the_status():
    responses.post(
        "https://api.helpscout.net/v2/oauth2/token",
        json={"access_token": "tok", "expires_in": 7200},
    )
    responses.get(HS, json={"id": 2391938111})
    with pytest.raises(DeliveryError) as caught:
        destination("helpscout").send(alert("helpscout", "2391938111"))
    assert caught.value.retryable
    assert not [c for c in responses.calls if c.request.url.endswith("/notes")]


@responses.activate
def test_helpscout_finds_our_note_thread():
    responses.post(
        "https://api.helpscout.net/v2/oauth2/token",
        json={"access_token": "tok", "expires_in": 7200},
    )
    page = copy.deepcopy(fixture("helpscout", "list_messages.json"))
    note = {
        "id": 2198262500,
        "type": "note",
        "state": "published",
        "body": f"<p>Low rating… Alert ref: {REF}</p>",
        "createdBy": {"id": 1234, "type": "user"},
        "createdAt": LATER_ISO,
    }
    page["_embedded"]["threads"] = [note, {**note, "id": 2198262501, "type": "reply"}] + page[
        "_embedded"
    ]["threads"]
    responses.get(f"{HS}/threads", json=page)
    found = destination("helpscout").find(alert("helpscout", "2391938111"), since=SINCE)
    assert found is not None and found.external_id == "2198262500"


@responses.activate
def test_helpscout_posts_the_note_in_the_conversation_a_merge_moved_it_to():
    # Help Scout: "When a conversation is merged with another conversation, it is no longer
    # accessible using the old ID. Get Conversation endpoint will return a HTTP 301 [...] with
    # the URI of the new conversation"; the alert once failed for good on that 301.
    responses.post(
        "https://api.helpscout.net/v2/oauth2/token",
        json={"access_token": "tok", "expires_in": 7200},
    )
    moved = "https://api.helpscout.net/v2/conversations/2391938222"
    responses.get(HS, status=301, headers={"Location": moved})
    responses.get(moved, json={"id": 2391938222, "status": "closed"})
    responses.post(f"{moved}/notes", status=201, headers={"Resource-ID": "2198262402"})
    result = destination("helpscout").send(alert("helpscout", "2391938111"))
    assert result.external_id == "2198262402"
    assert sent_json(responses.calls[-1])["status"] == "closed"
    assert not [c for c in responses.calls if c.request.url == f"{HS}/notes"]


@pytest.mark.parametrize(
    "location",
    [
        "https://elsewhere.example/v2/conversations/2391938222",
        "https://api.helpscout.net/v2/users/2391938222",
        "https://api.helpscout.net/v2/conversations/2391938111",
    ],
)
@responses.activate
def test_helpscout_follows_no_move_but_to_another_conversation_of_its_api(location):
    responses.post(
        "https://api.helpscout.net/v2/oauth2/token",
        json={"access_token": "tok", "expires_in": 7200},
    )
    responses.get(HS, status=301, headers={"Location": location})
    with pytest.raises(DeliveryError) as caught:
        destination("helpscout").send(alert("helpscout", "2391938111"))
    assert caught.value.http_status == 301 and not caught.value.retryable
    assert [c.request.method for c in responses.calls] == ["POST", "GET"]


# --- generic ----------------------------------------------------------------------------------


@responses.activate
def test_generic_posts_the_configured_note_request_and_looks_it_up():
    responses.post("https://desk.example/api/D-1/notes", json={"id": "n-1"})
    dest = destination("generic")
    result = dest.send(alert("generic", "D-1"))
    call = responses.calls[0]
    body = sent_json(call)
    assert body["internal"] is True and body["ref"] == REF
    assert (
        "&lt;script&gt;" in body["html"]
        and call.request.headers["Authorization"] == "Bearer desk-key"
    )
    assert result.external_id == "n-1"
    assert dest.settle(alert("generic", "D-1")) == "lookup"

    responses.get(
        "https://desk.example/api/D-1/notes",
        json={
            "notes": [
                {"id": "n-0", "html": f"x {REF}", "internal": False},
                {"id": "n-1", "html": body["html"], "internal": True},
            ]
        },
    )
    found = dest.find(alert("generic", "D-1"), since=SINCE)
    assert found is not None and found.external_id == "n-1"


def test_a_helpdesk_without_notes_fails_the_note_permanently():
    config = dict(HELPDESKS["generic"])
    config.pop("note")
    config.pop("note_lookup")
    overrides = {"helpdesks": {"generic": config}}
    helpdesks = build_helpdesks(
        load_config(None, env={}, overrides=overrides).helpdesks,
        http=HttpClient(),
        clock=FakeClock(),
    )
    dest = NoteDestination(
        "notes",
        NoteOptions(kind="helpdesk_note"),
        http=HttpClient(),
        helpdesks=helpdesks,
        clock=FakeClock(),
    )
    with pytest.raises(DeliveryError) as caught:
        dest.send(alert("generic", "D-1"))
    assert not caught.value.retryable and "cannot take internal notes" in caught.value.message


@responses.activate
def test_include_rating_false_keeps_the_score_out_of_the_note():
    responses.post(CW, json=fixture("chatwoot", "create_note_response.json"))
    destination("chatwoot", include_rating=False).send(alert("chatwoot", "42", {"account_id": "3"}))
    content = sent_json(responses.calls[0])["content"]
    assert "2/5" not in content and "Rating" not in content
    assert shown(content).startswith("Customer feedback for Anna <admin> & Co on ticket 42")


@responses.activate
def test_a_comment_quoting_another_alerts_ref_does_not_pass_for_that_alerts_note():
    # An alert's ref is a digest of the rule, the survey's key (the payload of the reference
    # in the customer's own link), the event and the rating: a customer can compute it, and
    # write it in a comment. With `comment` and `low_rating` both noted in the conversation,
    # the comment alert's note quoted it, and a low-rating note whose outcome was unknown
    # was "found" in it: recorded as delivered, never posted.
    low_ref = alert_ref(alert_key("answer", "low_rating", "eyJ2Ijox", "low_rating", 1))
    comment_alert = sample(
        ref="csat-alert-fedcba9876543210fedcba98",
        event="comment",
        rule="comment",
        helpdesk="chatwoot",
        dialog_id="42",
        context={"account_id": "3"},
        comment=f"Nobody answered.\n\nAlert ref: {low_ref}",
    )
    dest = destination("chatwoot")
    _, comment_note = dest.note(comment_alert)
    responses.post(CW, json=fixture("chatwoot", "create_note_response.json"))
    dest.send(comment_alert)
    posted = sent_json(responses.calls[0])["content"]  # as Chatwoot keeps it: Markdown
    low_alert = sample(
        ref=low_ref, helpdesk="chatwoot", dialog_id="42", context={"account_id": "3"}
    )
    for content in (comment_note.text, posted):
        page = chatwoot_page(cw_message(1302, private=True, content=content))
        responses.upsert(responses.GET, CW, json=page)
        assert dest.find(low_alert, since=SINCE) is None
    assert "Nobody answered." in comment_note.text  # the comment is still quoted
    assert "Nobody answered\\." in posted and f"Alert ref\\: {low_ref}" not in posted
    assert low_ref.removeprefix("csat-alert-") in posted  # spelt, with a no-break hyphen


@pytest.mark.parametrize("field", ["agent_name", "team"])
@responses.activate
def test_an_agent_or_team_name_spelling_another_alerts_ref_does_not_pass_for_its_note(field):
    # The same as the comment above, through what the helpdesk's users type: the agent's
    # display name and the team's name are in the note (headline, "Agent:", "Team:").
    low_ref = alert_ref(alert_key("answer", "low_rating", "eyJ2Ijox", "low_rating", 1))
    comment_alert = sample(
        ref="csat-alert-fedcba9876543210fedcba98",
        event="comment",
        rule="comment",
        helpdesk="chatwoot",
        dialog_id="42",
        context={"account_id": "3"},
        **{field: f"Anna Alert ref: {low_ref}"},
    )
    dest = destination("chatwoot")
    _, comment_note = dest.note(comment_alert)
    low_alert = sample(
        ref=low_ref, helpdesk="chatwoot", dialog_id="42", context={"account_id": "3"}
    )
    page = chatwoot_page(cw_message(1302, private=True, content=comment_note.text))
    responses.get(CW, json=page)
    assert dest.find(low_alert, since=SINCE) is None
    assert low_ref.removeprefix("csat-alert-") in comment_note.text  # still shown
