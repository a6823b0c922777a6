"""A vendor's refusal that quotes the message we sent, in the markup we sent it in (Markdown
for Chatwoot, HTML for Intercom, Help Scout, Freshdesk and Zendesk notes) or JSON-escaped in
an echoed request, never brings the customer's text into the error (``last_error``, the logs):
the reason keeps the vendor's codes, field names and own words, the quote cut out.

Realistic: a 422 validation error names the field and often quotes its value (Rails'
``errors.full_messages``, Zendesk's ``details``), and a proxy's or framework's error page may
echo the whole request body as JSON.
"""

from __future__ import annotations

import html
import io
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
import responses
import sqlalchemy as sa

from csat_hook.app import create_app
from csat_hook.config import load_config
from csat_hook.db.schema import outbox
from csat_hook.devtools.fake_helpdesk import Answer as FakeAnswer
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks import build_helpdesks
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.links import ReplyConfig
from csat_hook.links import Segment
from csat_hook.links import plain_text
from csat_hook.links import reply_body
from csat_hook.logs import SAFE_FIELDS
from csat_hook.logs import SafeFormatter
from tests.conftest import FakeClock
from tests.helpdesks.test_notes import HELPDESKS
from tests.helpdesks.test_notes import destination
from tests.helpers import body_of
from tests.helpers import chatwoot_headers
from tests.helpers import fixture
from tests.notify.conftest import sample

# A display name as e-mail channels give it, and a comment that quotes, escapes and names.
CUSTOMER = Person(id="12", name="Zoë O'Brien <zoe@example.com>", email="zoe@example.com")
COMMENT = 'Ignored 3x & said "no refund"!! — Zoë O\'Brien <zoe@example.com>'
# The customer's text in any spelling: ë as it is, JSON-, HTML- or percent-escaped; the
# e-mail; the comment's words.
FORBIDDEN = ("zoë", "zoe", "zo\\u00eb", "zo&#", "zo&euml", "zo%c3", "brien", "ignored", "refund")
LINK = "https://docs.google.com/forms/d/e/1FAIpQLSd_EXAMPLE/viewform?usp=pp_url&entry.1=Anna"
TEMPLATE = "Hi {customer_name}! Rate us: {link}"


def reply(vendor: str, dialog_id: str, context: dict[str, Any]) -> Reply:
    body = reply_body(
        ReplyConfig(templates={"en": TEMPLATE}),
        "en",
        link=Segment(LINK, href=LINK),
        agent_name="Anna",
        customer_name=CUSTOMER.name or "",
        ticket=dialog_id,
        helpdesk=vendor,
        team="",
    )
    return Reply(
        helpdesk=vendor,
        dialog_id=dialog_id,
        text=plain_text(body),
        link=LINK,
        agent=Person(id="7", name="Anna"),
        customer=CUSTOMER,
        context=context,
        idempotency_key="csat-hook-1",
        marker="",
        body=body,
        channel="Channel::WebWidget",  # Chatwoot: Markdown
    )


def message_field(document: Any) -> str:
    """The longest text of the request we sent: the message, in its markup."""
    if isinstance(document, dict):
        document = list(document.values())
    if isinstance(document, list):
        return max((message_field(value) for value in document), key=len, default="")
    return document if isinstance(document, str) else ""


def echoes(sent: str, request: str, customer_at: int) -> dict[str, str]:
    """How a vendor quotes what we sent: as we sent it (Markdown or HTML), JSON-escaped
    (``\\u00eb``, ``\\"``), escaped again for HTML, the whole request as JSON text (a
    framework's error page), and 48 characters from where the customer's text starts (a
    validator quoting the offending part)."""
    return {
        "as sent": sent,
        "json escaped": json.dumps(sent)[1:-1],
        "json escaped, <>& too": json.dumps(sent)[1:-1]
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026"),
        "html escaped": html.escape(sent),
        "request": request,
        "excerpt": sent[customer_at : customer_at + 48],
    }


# Each vendor's error shape quoting ``q``, and what of it must survive: a code or field name.
ERRORS: dict[str, tuple[Callable[[str], Any], str]] = {
    "chatwoot": (
        lambda q: {"message": f"Validation failed: Content {q}", "errors": {"content": [q]}},
        "content",
    ),
    "zendesk": (
        lambda q: {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {"base": [{"error": "InvalidValue", "description": f"Comment: {q}"}]},
        },
        "RecordInvalid",
    ),
    "intercom": (
        lambda q: {
            "type": "error.list",
            "errors": [{"code": "parameter_invalid", "message": f"Body {q} is invalid"}],
        },
        "parameter_invalid",
    ),
    "freshdesk": (
        lambda q: {
            "description": "Validation failed",
            "errors": [{"field": "body", "message": q, "code": "invalid_value"}],
        },
        "invalid_value",
    ),
    "helpscout": (
        lambda q: {
            "message": "Bad request",
            "_embedded": {"errors": [{"path": "text", "message": f"{q} is not valid"}]},
        },
        "text",
    ),
}
# A dialog still closed, in the shape of the vendors whose adapters read it before a reply
# (the others: Help Scout's and Intercom's shape).
CLOSED_DIALOG = {
    "zendesk": {"ticket": {"id": 1, "status": "solved", "updated_at": "2026-11-21T07:59:02Z"}},
    "freshdesk": {"id": 1, "status": 4},
}
CONTEXTS = {
    "chatwoot": ("42", {"account_id": "3"}),
    "zendesk": ("35436", {}),
    "intercom": ("503", {"admin_id": "991267800"}),
    "freshdesk": ("20", {}),
    "helpscout": ("2391938111", {"customer_id": "12"}),
}


def fake_vendor(vendor: str, status: int, form: str, customer_word: str) -> None:
    """The vendor's API: a token and a conversation's status where the adapter asks, and the
    message refused with ``status``, the refusal quoting it in ``form``."""
    shape, _ = ERRORS[vendor]

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        if request.url.endswith("/oauth2/token"):
            return 200, {}, json.dumps({"access_token": "tok", "expires_in": 7200})
        if request.method == "GET":
            return 200, {}, json.dumps(CLOSED_DIALOG.get(vendor, {"id": 1, "status": "closed"}))
        request_text = request.body.decode() if isinstance(request.body, bytes) else request.body
        sent = message_field(json.loads(request_text))
        quoted = echoes(sent, request_text, sent.index(customer_word))[form]
        return status, {"Content-Type": "application/json"}, json.dumps(shape(quoted))

    for method in (responses.GET, responses.POST, responses.PUT):
        responses.add_callback(method, re.compile(r"https://.*"), callback=answer)


def assert_no_customer_text(error: DeliveryError, vendor: str) -> None:
    shown = f"{error.message}\n{error.vendor_reason}".casefold()
    assert [word for word in FORBIDDEN if word in shown] == [], error.message
    # What is safe stays: the vendor's code or field name.
    assert ERRORS[vendor][1] in (error.vendor_reason or ""), error.message


FORMS = ["as sent", "json escaped", "json escaped, <>& too", "html escaped", "request", "excerpt"]


@pytest.mark.parametrize("status", [422, 500])
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("vendor", sorted(ERRORS))
@responses.activate
def test_a_refused_reply_quoted_back_keeps_no_customer_text(vendor, form, status):
    fake_vendor(vendor, status, form, "Zo")
    config = load_config(None, env={}, overrides={"helpdesks": {vendor: HELPDESKS[vendor]}})
    helpdesks = build_helpdesks(
        config.helpdesks, http=HttpClient(sleep=lambda _s: None), clock=FakeClock()
    )
    dialog_id, context = CONTEXTS[vendor]

    with pytest.raises(DeliveryError) as caught:
        helpdesks[vendor].send_reply(reply(vendor, dialog_id, context))

    assert caught.value.http_status == status
    assert_no_customer_text(caught.value, vendor)


@pytest.mark.parametrize("status", [422, 503])
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("vendor", sorted(ERRORS))
@responses.activate
def test_a_refused_note_quoted_back_keeps_no_comment_text(vendor, form, status):
    fake_vendor(vendor, status, form, "Ignored")
    dialog_id, context = CONTEXTS[vendor]
    alert = sample(
        helpdesk=vendor, dialog_id=dialog_id, context=context, comment=COMMENT, agent_name="Anna"
    )

    with pytest.raises(DeliveryError) as caught:
        destination(vendor).send(alert)

    assert caught.value.http_status == status
    assert_no_customer_text(caught.value, vendor)


# --- through the outbox: last_error and the logs --------------------------------------------


@pytest.fixture
def server_log() -> Any:
    """The server's own log lines (text and JSON, :class:`SafeFormatter`), every level."""
    streams = {fmt: io.StringIO() for fmt in ("text", "json")}
    handlers = []
    for fmt, stream in streams.items():
        handler = logging.StreamHandler(stream)
        handler.setFormatter(SafeFormatter(fmt))
        handlers.append(handler)
    root = logging.getLogger()
    level = root.level
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: "\n".join(stream.getvalue() for stream in streams.values())
    root.setLevel(level)
    for handler in handlers:
        root.removeHandler(handler)


@pytest.mark.parametrize("form", ["as sent", "json escaped", "request", "excerpt"])
def test_a_chatwoot_refusal_quoting_the_reply_stores_and_logs_no_customer_text(
    make_config, make_services, fake_helpdesk, monkeypatch, clock, caplog, server_log, form
):
    templates = {"en": TEMPLATE, "ru": TEMPLATE}
    services = make_services(make_config(survey={"reply": {"templates": templates}}))
    original = fake_helpdesk.record

    def record(method: str, path: str, query: str, headers: Any, raw: bytes) -> FakeAnswer:
        answered = original(method, path, query, headers, raw)
        if method != "POST":
            return answered
        request = raw.decode()
        sent = json.loads(request)["content"]
        quoted = echoes(sent, request, sent.index("Zo"))[form]
        with fake_helpdesk.lock:
            fake_helpdesk.requests[-1]["answered"] = 422
        return FakeAnswer(422, ERRORS["chatwoot"][0](quoted), {})

    monkeypatch.setattr(fake_helpdesk, "record", record)
    payload = fixture("chatwoot", "conversation_status_changed_resolved.json")
    payload["meta"]["sender"].update(name=CUSTOMER.name, email=CUSTOMER.email)
    body = body_of(payload)
    client = create_app(services=services).test_client()
    client.post(
        "/webhooks/chatwoot",
        data=body,
        headers=chatwoot_headers(body, "cw-webhook-secret", clock()),
    )

    with caplog.at_level(logging.DEBUG):
        assert services.delivery_worker().run_once() == 1

    [sent] = [r for r in fake_helpdesk.api_requests() if r["method"] == "POST"]
    assert "Zoë O\\'Brien" in sent["body"]["content"]  # the name went out, Markdown-escaped
    with services.engine.connect() as conn:
        [item] = conn.execute(sa.select(outbox)).all()
    assert (item.status, item.last_http_status) == ("failed", 422)
    logged = "\n".join(
        " ".join([r.getMessage(), *(str(getattr(r, k)) for k in SAFE_FIELDS if hasattr(r, k))])
        for r in caplog.records
    )
    assert "delivery.failed" in caplog.messages
    for where, text in [
        ("last_error", item.last_error),
        ("caplog", logged),
        ("server", server_log()),
    ]:
        found = [word for word in FORBIDDEN if word in str(text).casefold()]
        assert found == [], f"{where}: {text}"
    # The vendor's words and the field it named stay.
    assert item.last_error.endswith(": Validation failed: Content …; content")
