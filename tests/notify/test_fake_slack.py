"""The fake Slack webhook refuses what Slack's Block Kit reference says Slack refuses (so a
message it takes would be taken by Slack), and takes Slack's maxima.

Lengths are counted in UTF-16 code units: the stricter reading of Slack's "characters" (an
emoji outside the BMP is two), so what fits here fits however Slack counts.
https://docs.slack.dev/reference/block-kit/blocks
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

ASTRAL = "\U0001f600"


def post(fake, body: dict[str, Any]) -> requests.Response:
    return requests.post(fake.slack_hook(), json=body, timeout=5)


def plain(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, **extra}


def mrkdwn(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, **extra}


def section(text: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"type": "section", **({"text": text} if text else {}), **extra}


def test_slacks_maxima_are_taken(fake_notify):
    blocks = [
        {"type": "header", "text": plain("h" * 150, emoji=False)},
        section(plain("p" * 3000, emoji=False)),
        section(mrkdwn("m" * 3000, verbatim=True)),
        section(plain(ASTRAL * 1500)),
        section(fields=[plain("f" * 2000) for _ in range(10)]),  # fields without text
        section(mrkdwn("*Label*"), fields=[mrkdwn("*a*"), plain("b")]),
        {"type": "context", "elements": [plain("c" * 3000)] + [mrkdwn("*d*")] * 9},
    ]
    blocks += [{"type": "divider"}] * (50 - len(blocks))
    answer = post(fake_notify, {"text": "x", "mrkdwn": False, "blocks": blocks})
    assert (answer.status_code, answer.text) == (200, "ok")


@pytest.mark.parametrize(
    "blocks",
    [
        pytest.param([section(plain("x", verbatim=True))], id="plain_text-with-verbatim"),
        pytest.param([section(mrkdwn("x", emoji=False))], id="mrkdwn-with-emoji"),
        pytest.param([section(plain("x", emoji="no"))], id="emoji-not-a-boolean"),
        pytest.param([section(mrkdwn("x", verbatim=1))], id="verbatim-not-a-boolean"),
        pytest.param([section(plain(""))], id="empty-text"),
        pytest.param([section(plain("p" * 3001))], id="section-text-3001"),
        pytest.param([section(plain(ASTRAL * 1500 + "p"))], id="section-text-3001-utf16"),
        pytest.param([section()], id="section-without-text-or-fields"),
        pytest.param([section(plain("x"), fields=[])], id="no-fields"),
        pytest.param([section(plain("x"), fields=[plain("f")] * 11)], id="eleven-fields"),
        pytest.param([section(plain("x"), fields=[plain("f" * 2001)])], id="field-2001"),
        pytest.param(
            [section(plain("x"), fields=[plain(ASTRAL * 1000 + "f")])], id="field-2001-utf16"
        ),
        pytest.param([section(plain("x"), fields=["f"])], id="field-not-a-text-object"),
        pytest.param([section(plain("x"), accessory={"type": "image"})], id="unknown-key"),
        pytest.param([{"type": "header", "text": plain("h" * 151)}], id="header-151"),
        pytest.param([{"type": "header", "text": plain(ASTRAL * 75 + "h")}], id="header-utf16"),
        pytest.param([{"type": "header", "text": mrkdwn("*h*")}], id="header-mrkdwn"),
        pytest.param([{"type": "context", "elements": [plain("c")] * 11}], id="context-11"),
        pytest.param([{"type": "context", "elements": [plain("c" * 3001)]}], id="context-3001"),
        pytest.param([{"type": "divider"}] * 51, id="51-blocks"),
    ],
)
def test_what_slack_refuses_is_refused(fake_notify, blocks):
    answer = post(fake_notify, {"text": "x", "blocks": blocks})
    assert (answer.status_code, answer.text) == (400, "invalid_blocks")
    assert fake_notify.delivered("slack") == []


@pytest.mark.parametrize("where", ["text", "block"])
@pytest.mark.parametrize(
    "markup",
    ["<!channel> now", "<!here|here>", "hi <@U024BE7LH>", "<#C024BE7LR>", "x > y", "a < b"],
)
def test_a_mention_or_raw_markup_in_mrkdwn_is_refused(fake_notify, where, markup):
    # Not Slack's refusal: Slack would parse it (notify everyone, show a forged link). An
    # alert mentions no one and links only to its ticket, so the fake refuses anything else
    # raw: a test whose customer text reached mrkdwn unescaped fails.
    body = {"text": markup, "blocks": [section(plain("x"))]}
    if where == "block":
        body = {"text": "x", "blocks": [section(mrkdwn(markup))]}
    answer = post(fake_notify, body)
    assert (answer.status_code, answer.text) == (400, "invalid_blocks")


def test_a_link_is_the_one_raw_markup_taken(fake_notify):
    link = "<https://acme.example/t/1?a=1&b=2|Open ticket>"
    answer = post(fake_notify, {"text": "x", "blocks": [section(mrkdwn(link))]})
    assert (answer.status_code, answer.text) == (200, "ok")
