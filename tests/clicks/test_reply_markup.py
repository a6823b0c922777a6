"""A reply with short links, in every vendor's markup (issue 14).

Over every registered adapter (the contract kits): a close is delivered with
``survey.links.style: scores``; the request the vendor API receives shows each score as a
short link ``<base>/s/<reference>/<score>`` in that vendor's markup (HTML anchors for
Intercom, Help Scout, Freshdesk and Zendesk's ``html_body``; Markdown links for a Chatwoot
web-widget conversation; one score a line for plain-text APIs), and with ``style: link`` the
reply carries the short link instead of the long form link.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.app import create_app
from csat_hook.db.schema import surveys
from csat_hook.helpdesks.markup import body_to_html
from csat_hook.helpdesks.markup import body_to_markdown
from csat_hook.helpdesks.markup import reply_for_channel
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.links import LinksConfig
from csat_hook.links import ReplyConfig
from csat_hook.links import plain_text
from csat_hook.links import reply_body
from csat_hook.links import survey_segment
from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import load_kits
from tests.helpdesks.markdown import links_and_text

KITS = load_kits()
BASE = "https://csat.example.test"
HTML = {"intercom", "helpscout", "freshdesk", "zendesk"}
MARKDOWN = {"chatwoot"}  # the kit's close is a web-widget conversation


def links(style: str, **extra: Any) -> dict[str, Any]:
    return {"links": {"public_base_url": BASE, "style": style, **extra}}


def form_with_rating() -> dict[str, Any]:
    return {
        "url": "https://docs.google.com/forms/d/e/1FAIpQLSfTEST/viewform",
        "fields": {
            "agent_name": "entry.111",
            "agent_id": "entry.222",
            "ticket": "entry.333",
            "token": "entry.444",
            "rating": "entry.555",
        },
    }


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


def _deliver(kit: Kit, make_config, make_services, fake_helpdesk, tmp_path, clock, survey):
    options = {"kind": kit.kind, **kit.options(fake_helpdesk.url, tmp_path)}
    services = make_services(make_config(helpdesks={kit.kind: options}, survey=survey))
    client = create_app(services=services).test_client()
    body, headers, query = kit.closed(clock())
    response = client.post(f"/webhooks/{kit.kind}", data=body, headers=headers, query_string=query)
    assert response.status_code == 200 and response.json["status"] == "queued", response.json
    assert services.delivery_worker().run_once() == 1
    with services.engine.connect() as conn:
        token, link = conn.execute(sa.select(surveys.c.token, surveys.c.link)).one()
    if kit.kind == "dryrun":
        [line] = (tmp_path / "dry.jsonl").read_text().splitlines() or [""]
        sent = json.loads(line)
    else:
        # The reply (Help Scout also asks for an OAuth token, Intercom may re-close).
        [sent] = [
            r["body"]
            for r in fake_helpdesk.api_requests()
            if r["method"] != "GET" and "/s/" + token in json.dumps(r["body"])
        ]
    return token, link, sent


def _texts(value: Any) -> list[str]:
    """Every string inside the request body (the reply's text sits in a vendor field)."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return [value] if isinstance(value, str) else []


def test_score_links_in_each_vendors_markup(
    kit, make_config, make_services, fake_helpdesk, tmp_path, clock
):
    survey = {"form": form_with_rating(), **links("scores", labelled=True)}
    token, form_link, sent = _deliver(
        kit, make_config, make_services, fake_helpdesk, tmp_path, clock, survey
    )
    texts = [t for t in _texts(sent) if f"/s/{token}/" in t]
    assert texts, f"{kit.kind}: no score link in {sent}"
    shown = sent["text"] if kit.kind == "dryrun" else max(texts, key=len)
    urls = [f"{BASE}/s/{token}/{score}" for score in range(1, 6)]
    if kit.kind in HTML:
        for score, url in enumerate(urls, start=1):
            assert re.search(rf'<a href="{re.escape(url)}"[^>]*>{score} – ', shown), shown
        assert "entry.444" not in shown  # the long link is not in the message
    elif kit.kind in MARKDOWN:
        for score, url in enumerate(urls, start=1):
            assert f"[{score} – " in shown and f"]({url})" in shown, shown
    else:  # plain text: one score a line, its URL after it
        lines = shown.splitlines()
        for score, url in enumerate(urls, start=1):
            assert any(line.startswith(f"{score} – ") and line.endswith(url) for line in lines)
    assert "<script" not in shown
    if kit.kind == "dryrun":  # it also keeps what an HTML and a Markdown helpdesk would show
        assert f'<a href="{urls[0]}"' in sent["html"] and f"]({urls[0]})" in sent["markdown"]
    # The form link (the redirect's target) is what the survey records.
    assert form_link.startswith("https://docs.google.com/forms/") and token in form_link


def test_short_link_replaces_the_long_link(
    kit, make_config, make_services, fake_helpdesk, tmp_path, clock
):
    token, form_link, sent = _deliver(
        kit, make_config, make_services, fake_helpdesk, tmp_path, clock, links("link")
    )
    texts = _texts(sent)
    assert any(f"{BASE}/s/{token}" in t for t in texts), sent
    assert not any("docs.google.com" in t for t in texts), "the long link must not be sent"
    assert token in form_link


def _reply(channel: str, labelled: bool = False) -> Reply:
    cfg = LinksConfig(public_base_url=BASE, style="scores", labelled=labelled)
    body = reply_body(
        ReplyConfig(),
        "ru",
        link=survey_segment(cfg, "abc.def", "ru"),
        agent_name="Анна *звезда* [x](http://evil)",
        customer_name="",
        ticket="1",
        helpdesk="h",
        team="",
    )
    return Reply(
        helpdesk="h",
        dialog_id="1",
        text=plain_text(body),
        link=f"{BASE}/s/abc.def",
        agent=Person("1", "Анна", None),
        customer=Person(None, None, None),
        context={},
        idempotency_key="k",
        body=body,
        channel=channel,
    )


def test_chat_channels_get_plain_text_and_markdown_is_escaped():
    telegram = reply_for_channel(_reply("Channel::Telegram", labelled=True))
    assert f"5 – Отлично: {BASE}/s/abc.def/5" in telegram.splitlines()
    assert f"]({BASE}" not in telegram  # no Markdown where the channel shows it raw
    widget = reply_for_channel(_reply("Channel::WebWidget"))
    assert f"[5]({BASE}/s/abc.def/5)" in widget
    # A name cannot make a link or emphasis: it reads as written, the scale's are the links.
    hrefs, text = links_and_text(widget)
    assert hrefs == [f"{BASE}/s/abc.def/{score}" for score in range(1, 6)]
    assert "Анна *звезда* [x](http://evil):" in text


def test_html_escapes_names_and_makes_anchors():
    rendered = body_to_html(_reply("").body)
    assert '<a href="http://evil"' not in rendered
    assert f'<a href="{BASE}/s/abc.def/1"' in rendered
    assert body_to_markdown(_reply("").body).count(f"]({BASE}/s/abc.def/") == 5
