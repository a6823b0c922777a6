"""Zendesk trigger and Freshdesk automation bodies whose placeholders were filled in without
JSON's escapes: neither vendor documents that a value is escaped in a JSON body, and a
customer's name with a quote or a backslash made the whole body invalid JSON (a 400, the
survey lost). The documented templates (``examples/``) are rendered here as a vendor that
does not escape would render them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.app import create_app
from csat_hook.db.schema import surveys
from tests.helpdesks.zendesk.kit import zendesk_headers

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ZENDESK_SECRET = "zd-webhook-secret"
FRESHDESK_TOKEN = "fd-webhook-token"

VALUES = {
    "ticket.id": "5158",
    "ticket.status": "Solved",
    "ticket.updated_at_with_timestamp": "2026-11-20T11:58:20Z",
    "ticket.via": "Web Form",
    "ticket.url": "https://acme.freshdesk.com/a/tickets/5158",
    "ticket.source": "Email",
    "ticket.group.name": "Billing",
    "triggered_event": "{status:{from:2,to:4}}",
    "ticket.assignee.id": "8447388090494",
    "ticket.agent.id": "",
    "ticket.requester.id": "8447388090110",
    "ticket.assignee.email": "anna@example.com",
    "ticket.agent.email": "anna@example.com",
    "ticket.requester.email": "ivan@example.org",
}


def rendered(kind: str, agent: str, customer: str) -> bytes:
    """The example template of ``kind`` with every placeholder replaced by its raw text."""
    name = "zendesk-trigger-body.json" if kind == "zendesk" else "freshdesk-automation-body.json"
    text = (EXAMPLES / name).read_text()
    values = {
        **VALUES,
        "ticket.assignee.name": agent,
        "ticket.agent.name": agent,
        "ticket.requester.name": customer,
    }
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    assert "{{" not in text, text
    return text.encode("utf-8")


@pytest.fixture
def post(make_config, make_services, fake_helpdesk, clock) -> Any:
    def send(kind: str, body: bytes) -> tuple[Any, Any]:
        if kind == "zendesk":
            options = {
                "email": "bot@example.com",
                "api_token": "t",
                "webhook_secret": ZENDESK_SECRET,
            }
            headers = zendesk_headers(body, ZENDESK_SECRET, clock())
        else:
            options = {"api_key": "k", "webhook_token": FRESHDESK_TOKEN}
            headers = {"Content-Type": "application/json", "X-Csat-Hook-Token": FRESHDESK_TOKEN}
        helpdesk = {"kind": kind, "base_url": fake_helpdesk.url, **options}
        services = make_services(make_config(helpdesks={kind: helpdesk}))
        client = create_app(services=services).test_client()
        response = client.post(f"/webhooks/{kind}", data=body, headers=headers)
        with services.engine.connect() as conn:
            rows = list(conn.execute(sa.select(surveys)).all())
        return response, rows

    return send


@pytest.mark.parametrize("kind", ["zendesk", "freshdesk"])
@pytest.mark.parametrize(
    ("agent", "customer"),
    [
        ("Anna Petrova", 'Ivan "Vanya" Sidorov'),
        ("Anna \\ Petrova", "Ivan Sidorov"),
        ('Anna "A.P." \\o/ Petrova', 'Ivan ", "id": "999'),
        ("Anna\tPetrova", "Ivan\\nSidorov"),
        ("Anna Petrova", 'Ivan ", "id": "999'),
    ],
    ids=["quote", "backslash", "both-and-keys", "tab-and-escape-lookalike", "a-key-twice"],
)
def test_a_name_rendered_without_escapes_is_read_as_written(post, caplog, kind, agent, customer):
    caplog.set_level(logging.WARNING)

    response, rows = post(kind, rendered(kind, agent, customer))

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] == "queued"
    [survey] = rows
    assert survey.dialog_id == "5158"
    assert survey.agent_name == agent
    # A value that happens to be a valid escape sequence is taken as one: it cannot be told
    # from an escaped value.
    assert survey.customer_name == customer.replace("\\n", "\n")
    assert survey.customer_email == "ivan@example.org"
    [line] = [r for r in caplog.records if r.msg == "webhook.template-unescaped"]
    assert line.helpdesk == kind and line.lines >= 1
    assert customer not in line.getMessage() + repr(vars(line))


@pytest.mark.parametrize("kind", ["zendesk", "freshdesk"])
def test_a_body_that_cannot_be_read_even_so_is_still_a_400(post, kind):
    # A line break inside a value splits its line: no line is one key and one value.
    response, rows = post(kind, rendered(kind, "Anna Petrova", 'Ivan "V"\nSidorov'))

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "invalid_json"
    assert rows == []


@pytest.mark.parametrize("kind", ["zendesk", "freshdesk"])
def test_a_line_of_spaces_after_a_quote_is_read_once_not_backtracked_over(post, kind):
    # The template line's end was matched with two optional runs of spaces around an
    # optional comma: a quote followed by 200,000 spaces and no closing quote (a line break
    # in the value) was tried in every split of them, minutes of a web thread per request.
    name = 'Ivan "V"' + " " * 200_000 + "x\nSidorov"

    response, rows = post(kind, rendered(kind, "Anna Petrova", name))

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "invalid_json"
    assert rows == []


@pytest.mark.parametrize("kind", ["zendesk", "freshdesk"])
def test_an_escaped_body_is_read_without_a_warning(post, caplog, kind):
    caplog.set_level(logging.WARNING)

    response, rows = post(kind, rendered(kind, "Anna Petrova", 'Ivan \\"Vanya\\" Sidorov'))

    assert response.status_code == 200, response.get_data()[:300]
    assert [row.customer_name for row in rows] == ['Ivan "Vanya" Sidorov']
    assert not [r for r in caplog.records if r.msg == "webhook.template-unescaped"]
