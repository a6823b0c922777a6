"""Bidirectional controls in what a customer or a helpdesk's user typed stay in that value.

A RIGHT-TO-LEFT OVERRIDE (U+202E) in an agent's name, a team, a ticket id or a comment,
left open, reverses everything after it up to the end of the paragraph: "Low rating 1/5 for
Bob<RLO> on ticket 4512" shows as "Low rating 1/5 for Bob 2154 tekcit no", a forged ticket
number in the alert the team acts on (the same trick as "Trojan Source", CVE-2021-42574). An
embedding or isolate left open (LRE, RLE, LRO, RLI, LRI, FSI) reorders what follows too.
Whatever arrives at Slack, Telegram, the mailbox or the helpdesk closes every one a value
opened before any text of ours: the value is shown as typed, the rest of the line as ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from csat_hook.notify.records import DigestItem
from tests.notify.conftest import build
from tests.notify.conftest import sample
from tests.notify.smtp_server import Mailbox
from tests.notify.smtp_server import email_options
from tests.notify.smtp_server import start_server
from tests.notify.test_slack import slack
from tests.notify.test_slack import text_objects
from tests.notify.test_telegram import telegram

RLO, RLE, RLI, LRO = "\u202e", "\u202b", "\u2067", "\u202d"
OPENS = {"\u202a", "\u202b", "\u202d", "\u202e"}
ISOLATES = {"\u2066", "\u2067", "\u2068"}
PARAGRAPH_BREAKS = "\n\r\x1c\x1d\x1e\x85\u2029"

HOSTILE: dict[str, Any] = {
    "agent_name": f"Bob{RLO}",
    "team": f"L{RLE}1",
    "dialog_id": f"45{RLI}12",
    "comment": f"slow {RLO}service\nsecond {LRO}line",
}


def open_before(text: str, at: int, *, html: bool) -> list[str]:
    """The embeddings, overrides and isolates still open at ``text[at]`` (Unicode's bidi
    algorithm: a PDF closes the last embedding, a PDI the last isolate and what it holds; a
    paragraph ends them all; in HTML a line break in the source ends nothing)."""
    stack: list[str] = []
    for char in text[:at]:
        if not html and char in PARAGRAPH_BREAKS:
            stack.clear()
        elif char in OPENS or char in ISOLATES:
            stack.append(char)
        elif char == "\u202c" and stack and stack[-1] in OPENS:
            stack.pop()
        elif char == "\u2069" and any(c in ISOLATES for c in stack):
            while stack.pop() not in ISOLATES:
                pass
    return stack


def assert_contained(text: str, *, html: bool = False, ours: tuple[str, ...] = ()) -> None:
    """Nothing is open where our own text starts: at each line's end, before each of our
    fragments ``ours``, and in HTML before every tag (values are escaped: a ``<`` is ours)."""
    points = [len(text)]
    points += [
        i for i, char in enumerate(text) if char in PARAGRAPH_BREAKS or (html and char == "<")
    ]
    for fragment in ours:
        start = text.find(fragment)
        while start != -1:
            points.append(start)
            start = text.find(fragment, start + 1)
    for at in sorted(points):
        assert open_before(text, at, html=html) == [], (text[max(0, at - 60) : at + 20], at)


OURS = (" on ticket ", "…")


def test_slack_closes_what_a_value_opened(fake_notify):
    slack(fake_notify).send(sample(**HOSTILE))
    body = fake_notify.delivered("slack")[0].json()
    assert_contained(body["text"], ours=OURS)
    for text in text_objects(body):
        assert_contained(text["text"], ours=OURS)
    shown = "\n".join(t["text"] for t in text_objects(body))
    assert f"Bob{RLO}" in shown and f"slow {RLO}service" in shown  # shown as typed


def test_telegram_closes_what_a_value_opened(fake_notify):
    telegram(fake_notify).send(sample(**HOSTILE))
    [message] = fake_notify.delivered("telegram")
    assert_contained(message.json()["text"], html=True, ours=OURS)
    assert_contained(message.reply["result"]["text"], ours=OURS)  # as the chat shows it


def test_email_closes_what_a_value_opened(tmp_path: Path):
    mailbox = Mailbox()
    controller, ca_file = start_server(tmp_path, mailbox)
    try:
        options = email_options(controller.port, ca_file, ["lead@example.org"])
        build("managers", options).send(sample(**HOSTILE))
    finally:
        controller.stop()
    [message] = mailbox.parsed()
    assert_contained(str(message["Subject"]), ours=OURS)
    plain = message.get_body(("plain",)).get_content()
    assert_contained(plain, ours=OURS)
    assert_contained(message.get_body(("html",)).get_content(), html=True, ours=OURS)
    assert f"slow {RLO}service" in plain


@pytest.mark.parametrize("field", ["agent_name", "dialog_id", "comment"])
def test_a_value_cut_to_a_limit_is_closed_before_the_ellipsis(fake_notify, field):
    # Slack's header holds 150 units, Telegram's lines and the e-mail's Subject fewer than
    # the value: the cut falls inside what the value opened, and "…" is ours.
    long = {field: RLO + "x" * 5000}
    slack(fake_notify).send(sample(**long))
    telegram(fake_notify).send(sample(**long))
    body = fake_notify.delivered("slack")[0].json()
    assert_contained(body["text"], ours=OURS)
    for text in text_objects(body):
        assert_contained(text["text"], ours=OURS)
    [message] = fake_notify.delivered("telegram")
    assert_contained(message.json()["text"], html=True, ours=OURS)


def test_a_digest_item_closes_what_its_values_opened(fake_notify):
    digest = sample(
        event="digest",
        rule="daily",
        dialog_id=None,
        ticket_url=None,
        comment=None,
        period="2026-11-19",
        items=(DigestItem(rating=1, agent_name=f"Anna{RLO}", dialog_id=f"7{RLI}7", comment="x"),),
    )
    slack(fake_notify).send(digest)
    telegram(fake_notify).send(digest)
    for text in text_objects(fake_notify.delivered("slack")[0].json()):
        assert_contained(text["text"], ours=(", ticket ", ": x"))
    text = fake_notify.delivered("telegram")[0].json()["text"]
    assert_contained(text, html=True, ours=(", ticket ", ": x"))
