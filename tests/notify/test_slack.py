"""Slack: a Block Kit message the fake webhook (Slack's documented rules) accepts, escaping that
keeps customer text inert, and Slack's answers classified."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import ValidationError

from csat_hook.devtools.fake_notify import Script
from csat_hook.errors import DeliveryError
from csat_hook.notify.records import AgentFigures
from csat_hook.notify.records import DigestItem
from tests.notify.conftest import build
from tests.notify.conftest import sample


def slack(fake, **options):
    return build("team-slack", {"kind": "slack", "webhook_url": fake.slack_hook(), **options})


def test_the_alert_is_accepted_and_says_rating_agent_ticket_and_comment(fake_notify):
    result = slack(fake_notify).send(sample())

    [message] = fake_notify.delivered("slack")
    body = message.json()
    assert result.external_id is None  # a webhook answers "ok", no message id
    assert body["text"] == "Low rating 2/5 for Anna &lt;admin&gt; &amp; Co on ticket 4512"
    section, comment, context = body["blocks"]
    assert section["text"]["text"].startswith("*Low rating 2/5 for Anna &lt;admin&gt; &amp; Co")
    # The link's URL cannot pick its own label: | and > are percent-encoded, & kept raw.
    assert (
        "<https://acme.example/app/conversations/4512?a=1&b=x%7Cy%3Ez|Open ticket 4512>"
        in (section["text"]["text"])
    )
    assert comment["text"]["verbatim"] is True
    assert body["unfurl_links"] is False and body["unfurl_media"] is False
    assert "Alert ref: csat-alert-0123456789abcdef01234567" in context["elements"][0]["text"]


def test_customer_text_cannot_mention_or_format_links(fake_notify):
    slack(fake_notify).send(sample())
    comment = fake_notify.delivered("slack")[0].json()["blocks"][1]["text"]["text"]
    # Mentions and markup arrive as text (Slack decodes &lt; only for display).
    assert "<!channel>" not in comment and "&lt;!channel&gt;" in comment
    assert "<@U024BE7LH>" not in comment and "&lt;@U024BE7LH&gt;" in comment
    assert "&lt;script&gt;" in comment and "&amp;" in comment
    assert comment.startswith("> Ждал ответа 3 дня")


def test_without_the_escaping_the_fake_refuses_the_message(fake_notify, monkeypatch):
    # The fake's check is what makes the test above meaningful.
    monkeypatch.setattr("csat_hook.notify.slack.escape", lambda text: text)
    with pytest.raises(DeliveryError) as caught:
        slack(fake_notify).send(sample())
    assert caught.value.http_status == 400 and caught.value.vendor_reason == "invalid_blocks"
    assert fake_notify.delivered("slack") == []


def test_include_comment_false_leaves_the_comment_out(fake_notify):
    slack(fake_notify, include_comment=False).send(sample())
    body = fake_notify.delivered("slack")[0].json()
    assert "Ждал" not in json.dumps(body, ensure_ascii=False)
    assert len(body["blocks"]) == 2


def test_a_button_only_when_asked(fake_notify):
    slack(fake_notify, button=True).send(sample())
    blocks = fake_notify.delivered("slack")[0].json()["blocks"]
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert actions["elements"][0]["url"].startswith("https://acme.example/app/conversations/4512")


def test_a_very_long_comment_is_clipped_within_the_block_limit(fake_notify):
    slack(fake_notify).send(sample(comment="плохо " * 2000))
    blocks = fake_notify.delivered("slack")[0].json()["blocks"]
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section")


def test_agent_and_digest_alerts_are_accepted(fake_notify):
    figures = AgentFigures("14", "Anna", 25, 12, 0.48, (0.3, 0.67), 0.00001)
    destination = slack(fake_notify)
    destination.send(
        sample(
            event="agent_below_target",
            rating=None,
            comment=None,
            figures=figures,
            target=0.85,
            window_days=30,
            dialog_id=None,
            ticket_url=None,
        )
    )
    destination.send(
        sample(
            event="digest",
            rule="daily",
            period="2026-11-19",
            figures=AgentFigures("*", "All agents", 40, 30, 0.75, (0.6, 0.86)),
            agents=(figures,),
            items=(DigestItem(1, "Anna", "4512", "<b>awful</b>", None, None),),
            dialog_id=None,
            ticket_url=None,
            comment=None,
        )
    )
    first, second = (m.json() for m in fake_notify.delivered("slack"))
    assert "significantly below the 85.0% target" in first["text"]
    assert "25 answers, 12 satisfied (CSAT 48.0%" in first["blocks"][0]["text"]["text"]
    assert second["text"].startswith("CSAT digest (daily) for 2026-11-19: 40 answers")
    assert "&lt;b&gt;awful&lt;/b&gt;" in second["blocks"][1]["text"]["text"]


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (400, b"invalid_payload", False),
        (403, b"action_prohibited", False),
        (404, b"channel_not_found", False),
        (410, b"channel_is_archived", False),
        (500, b"rollup_error", True),
        (503, b"", True),
    ],
)
def test_slack_errors_are_classified_with_their_code(fake_notify, status, body, retryable):
    fake_notify.script("slack", Script(status=status, body=body))
    with pytest.raises(DeliveryError) as caught:
        slack(fake_notify).send(sample())
    error = caught.value
    assert error.retryable is retryable and error.http_status == status
    if body:
        assert error.vendor_reason == body.decode()
    # The URL's path is the secret: never in an error.
    assert "Xk3y5ecret" not in error.message and "/services/" not in error.message


def test_a_rate_limit_says_how_long_to_wait(fake_notify):
    fake_notify.script(
        "slack", Script(status=429, body=b"rate_limited", headers={"Retry-After": "7"})
    )
    with pytest.raises(DeliveryError) as caught:
        slack(fake_notify).send(sample())
    assert caught.value.retryable and caught.value.retry_after == 7


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/services/T0/B0/X0",  # not Slack
        "http://hooks.slack.com/services/T0/B0/X0",  # not https
        "https://hooks.slack.com/triggers/T0/123/abc",  # Workflow Builder: another payload
        "https://hooks.slack.com/services/T0",
    ],
)
def test_only_slack_incoming_webhook_urls_are_accepted(url):
    with pytest.raises(ValidationError):
        build("s", {"kind": "slack", "webhook_url": url})


def test_the_government_host_and_loopback_fakes_are_accepted():
    build("s", {"kind": "slack", "webhook_url": "https://hooks.slack-gov.com/services/T0/B0/X0"})
    build("s", {"kind": "slack", "webhook_url": "http://127.0.0.1:9/services/T0/B0/X0"})


# --- extreme names and ids: clipped before assembling, never a link or an entity cut ---------

_LINK = re.compile(r"<[^<>]*>")
_ENTITY = re.compile(r"&(?:amp|lt|gt);")


def assert_whole_mrkdwn(text: str) -> None:
    """Within Slack's section limit, every ``<`` closed by its ``>`` (only links remain raw)
    and every ``&`` the start of a whole entity."""
    assert len(text) <= 3000
    rest = "\n".join(line.removeprefix(">") for line in _LINK.sub("", text).split("\n"))
    assert "<" not in rest and ">" not in rest
    assert "&" not in _ENTITY.sub("", rest)


def first_section(fake_notify, message) -> str:
    slack(fake_notify).send(message)
    body = fake_notify.delivered("slack")[-1].json()
    for block in body["blocks"]:
        if block["type"] in ("section", "context"):
            texts = [block["text"]] if block["type"] == "section" else block["elements"]
            for text in texts:
                assert_whole_mrkdwn(text["text"])
    assert_whole_mrkdwn(body["text"])
    return body["blocks"][0]["text"]["text"]


@pytest.mark.parametrize("name", ["A" * 4000, "R&D <team> " * 400, "Ann&" * 1000])
def test_an_extreme_agent_name_never_cuts_the_ticket_link(fake_notify, name):
    text = first_section(fake_notify, sample(agent_name=name))
    link = "<https://acme.example/app/conversations/4512?a=1&b=x%7Cy%3Ez|Open ticket 4512>"
    assert text.endswith("\n" + link)
    assert text.startswith("*Low rating 2/5 for ") and "\nRating: 2/5\n" in text


@pytest.mark.parametrize("dialog_id", ["9" * 700, "&<>" * 300, "D" * 2300])
def test_an_extreme_dialog_id_never_cuts_the_ticket_link(fake_notify, dialog_id):
    url = "https://acme.example/app/conversations/" + dialog_id
    text = first_section(fake_notify, sample(dialog_id=dialog_id, ticket_url=url))
    [link] = _LINK.findall(text)
    target, label = link[1:-1].split("|")
    assert target.startswith("https://acme.example/app/conversations/")
    assert target.endswith(dialog_id[-5:].replace("<", "%3C").replace(">", "%3E"))
    assert label.startswith("Open ticket ") and label.endswith("…")


def test_a_link_that_cannot_fit_whole_is_left_out_not_cut(fake_notify):
    dialog_id = "7" * 3500
    url = "https://acme.example/app/conversations/" + dialog_id
    text = first_section(fake_notify, sample(dialog_id=dialog_id, ticket_url=url))
    assert "<" not in text and "https://" not in text
    assert text.startswith("*Low rating 2/5 for Anna &lt;admin&gt; &amp; Co on ticket 777")


def test_a_button_whose_url_is_over_the_limit_is_left_out_not_cut(fake_notify):
    url = "https://acme.example/app/conversations/" + "7" * 3000
    slack(fake_notify, button=True).send(sample(ticket_url=url))
    blocks = fake_notify.delivered("slack")[0].json()["blocks"]
    assert [b["type"] for b in blocks] == ["section", "section", "context"]


def test_a_comment_of_ampersands_is_never_cut_inside_an_entity(fake_notify):
    for comment in ("&" * 1500, "x" + "<" * 1499, "ab&" * 500):
        first_section(fake_notify, sample(comment=comment))
    quoted = fake_notify.delivered("slack")[-1].json()["blocks"][1]["text"]["text"]
    assert quoted.startswith("> ab&amp;ab&amp;") and quoted.endswith("…")


def test_a_digest_of_many_long_named_agents_stays_whole(fake_notify):
    agents = tuple(
        AgentFigures(str(i), f"Agent {i} " + "&" * 300, 25, 12, 0.48, (0.3, 0.67))
        for i in range(30)
    )
    first_section(
        fake_notify,
        sample(
            event="digest",
            rule="daily",
            period="2026-11-19",
            figures=AgentFigures("*", "All agents", 40, 30, 0.75, (0.6, 0.86)),
            agents=agents,
            items=tuple(
                DigestItem(1, "Anna&" * 50, "4512", "<&>" * 100, None, None) for _ in range(40)
            ),
            dialog_id=None,
            ticket_url=None,
            comment=None,
        ),
    )
