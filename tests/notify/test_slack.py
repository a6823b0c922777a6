"""Slack: a Block Kit message the fake webhook (Slack's documented rules) accepts, in which
every string a customer or a helpdesk's user typed is ``plain_text`` (shown as written, never
formatted or parsed), within Slack's limits, and Slack's answers classified."""

from __future__ import annotations

import json
import socket
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from csat_hook.devtools.fake_notify import Script
from csat_hook.errors import DeliveryError
from csat_hook.notify.records import AgentFigures
from csat_hook.notify.records import DigestItem
from csat_hook.notify.render import headline
from tests.helpdesks.test_transport import loopback
from tests.helpdesks.test_transport import read_request
from tests.notify.conftest import NASTY_COMMENT
from tests.notify.conftest import build
from tests.notify.conftest import sample

# Every kind of mrkdwn a comment could try: formatting, a block quote at a line's start (raw
# and as an entity), code, mentions, a link with a label of its own choosing, an emoji code.
HOSTILE = (
    "*urgent* _call me_ ~now~ `code` ```block```\n"
    "> quoted\n"
    "&gt; also quoted <!channel> <!here|here> <@U024BE7LH> <#C024BE7LR> "
    "<http://evil.example|click> <mailto:x@evil.example|mail> :rotating_light: & done"
)
LINK = "<https://acme.example/app/conversations/4512?a=1&b=x%7Cy%3Ez|Open ticket>"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji, 8 UTF-16 code units


def slack(fake, **options):
    return build("team-slack", {"kind": "slack", "webhook_url": fake.slack_hook(), **options})


def sent(fake_notify, message, **options) -> dict[str, Any]:
    slack(fake_notify, **options).send(message)
    return fake_notify.delivered("slack")[-1].json()


def text_objects(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every text object of the message's blocks."""
    for block in body["blocks"]:
        if "text" in block:
            yield block["text"]
        yield from block.get("fields", ())
        for element in block.get("elements", ()):
            yield element["text"] if element["type"] == "button" else element


def mrkdwn_of(body: dict[str, Any]) -> str:
    """All the message's mrkdwn, what Slack formats and parses."""
    return "\n".join(t["text"] for t in text_objects(body) if t["type"] == "mrkdwn")


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def assert_cut_cleanly(shown: str, original: str, limit: int) -> None:
    """``shown`` is ``original`` whole, or its start cut on a character boundary (no half of a
    surrogate pair, no base without its combining mark, no emoji without the rest of its ZWJ
    sequence) and marked with an ellipsis, within ``limit`` UTF-16 code units."""
    assert units(shown) <= limit
    if shown == original:
        return
    assert shown.endswith("…")
    kept = shown[:-1]
    assert original.startswith(kept.rstrip()) and kept
    rest = original[len(kept) :]
    assert not kept.endswith("\u200d")
    letters = len(kept) - len(kept.rstrip("".join(map(chr, range(0x1F1E6, 0x1F200)))))
    assert letters % 2 == 0  # no flag cut in half
    assert unicodedata.category(rest[0]) not in ("Mn", "Me", "Mc") and rest[0] != "\u200d"


# --- the message ------------------------------------------------------------------------------


def test_the_alert_is_accepted_and_says_rating_agent_ticket_and_comment(fake_notify):
    result = slack(fake_notify).send(sample())

    [message] = fake_notify.delivered("slack")
    body = message.json()
    assert result.external_id is None  # a webhook answers "ok", no message id
    # The notification's text: the headline, its control characters escaped, not formatted.
    assert body["text"] == "Low rating 2/5 for Anna &lt;admin&gt; &amp; Co on ticket 4512"
    assert body["mrkdwn"] is False
    assert body["unfurl_links"] is False and body["unfurl_media"] is False
    header, facts, link, label, comment, context = body["blocks"]
    assert header == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": "Low rating 2/5 for Anna <admin> & Co on ticket 4512",
            "emoji": False,
        },
    }
    # Our labels in mrkdwn, each value beside it in plain_text.
    assert [(f["type"], f["text"]) for f in facts["fields"]] == [
        ("mrkdwn", "*Rating*"),
        ("plain_text", "2/5"),
        ("mrkdwn", "*Agent*"),
        ("plain_text", "Anna <admin> & Co"),
        ("mrkdwn", "*Team*"),
        ("plain_text", "Support L1"),
        ("mrkdwn", "*Submitted*"),
        ("plain_text", "2026-11-20 11:58 UTC"),
    ]
    # The link's URL cannot pick its own label: | and > are percent-encoded, & kept raw.
    assert link["text"] == {"type": "mrkdwn", "text": LINK}
    assert label["text"] == {"type": "mrkdwn", "text": "*Comment*"}
    assert comment["text"] == {"type": "plain_text", "text": NASTY_COMMENT, "emoji": False}
    [footer] = context["elements"]
    assert footer["type"] == "plain_text"
    assert (
        footer["text"]
        == "csat-hook · rule low_rating · Alert ref: csat-alert-0123456789abcdef01234567"
    )


def test_a_hostile_comment_arrives_as_literal_plain_text(fake_notify):
    body = sent(fake_notify, sample(comment=HOSTILE))

    [comment] = [t for t in text_objects(body) if "urgent" in t["text"]]
    # As typed: Slack formats nothing, parses no mention or link, turns no :code: into emoji.
    assert comment == {"type": "plain_text", "text": HOSTILE, "emoji": False}
    mrkdwn = mrkdwn_of(body)
    for piece in ("urgent", "call me", "now~", "code", "quoted", "channel", "here", "U024"):
        assert piece not in mrkdwn
    assert "evil" not in mrkdwn and "click" not in mrkdwn and "rotating" not in mrkdwn
    # The notification's text holds no customer text at all.
    assert "urgent" not in body["text"] and "evil" not in body["text"]


@pytest.mark.parametrize(
    ("field", "typed"),
    [
        ("agent_name", "*Boss* _x_ <!channel> <http://evil.example|click>"),
        ("team", "~L1~ `x` <!here> <http://evil.example|click>"),
        ("dialog_id", "45*12*_<!channel>"),
    ],
)
def test_names_and_ids_a_helpdesk_user_typed_are_plain_text_too(fake_notify, field, typed):
    message = sample(comment="fine", ticket_url="https://acme.example/t/9", **{field: typed})
    body = sent(fake_notify, message)

    mrkdwn = mrkdwn_of(body)
    for piece in ("Boss", "L1", "45", "channel", "here", "evil", "click"):
        assert piece not in mrkdwn
    plain = [t for t in text_objects(body) if t["type"] == "plain_text" and typed in t["text"]]
    assert plain and all(t["emoji"] is False for t in plain)
    # In the notification: escaped (no mention fires), and mrkdwn off (nothing formats).
    assert "<!" not in body["text"] and body["mrkdwn"] is False


def test_without_the_escaping_the_fake_refuses_the_notification_text(fake_notify, monkeypatch):
    # mrkdwn: false turns formatting off, not (as documented) the parsing of <!channel>: the
    # fake refuses raw markup in the text, which is what makes the escaping checked.
    monkeypatch.setattr("csat_hook.notify.slack.escape", lambda text: text)
    with pytest.raises(DeliveryError) as caught:
        slack(fake_notify).send(sample())
    assert caught.value.http_status == 400 and caught.value.vendor_reason == "invalid_blocks"
    assert fake_notify.delivered("slack") == []


def test_include_comment_false_leaves_the_comment_out(fake_notify):
    body = sent(fake_notify, sample(), include_comment=False)
    assert "Ждал" not in json.dumps(body, ensure_ascii=False)
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "context"]


def test_a_button_only_when_asked(fake_notify):
    blocks = sent(fake_notify, sample(), button=True)["blocks"]
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert actions["elements"][0]["url"].startswith("https://acme.example/app/conversations/4512")


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
            agents=(AgentFigures("15", "*Bo*", 3, 1, 0.33),),
            items=(DigestItem(1, "_Anna_", "4512", "<b>awful</b> *really*", None, None),),
            dialog_id=None,
            ticket_url=None,
            comment=None,
        )
    )
    first, second = (m.json() for m in fake_notify.delivered("slack"))
    assert "significantly below the 85.0% target" in first["text"]
    assert [b["type"] for b in first["blocks"]] == ["header", "section", "context"]
    facts = first["blocks"][1]["text"]
    assert facts["type"] == "plain_text" and "25 answers, 12 satisfied (CSAT 48.0%" in facts["text"]
    assert second["text"].startswith("CSAT digest (daily) for 2026-11-19: 40 answers")
    _header, facts, label, items, _context = second["blocks"]
    assert facts["text"]["type"] == "plain_text"
    assert facts["text"]["text"].splitlines()[1].startswith("*Bo*: 3 answers")
    assert label["text"] == {"type": "mrkdwn", "text": "*Lowest-rated answers*"}
    assert items["text"] == {
        "type": "plain_text",
        "text": "• 1/5 _Anna_, ticket 4512: <b>awful</b> *really*",
        "emoji": False,
    }


# --- Slack's answers and the webhook URL --------------------------------------------------


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


@pytest.mark.parametrize("status", [500, 502])
@pytest.mark.parametrize(
    "body", [b"internal_error", {"ok": False, "error": "internal_error"}, b"fatal_error"]
)
def test_an_error_answer_saying_it_may_have_posted_is_an_unknown_outcome(fake_notify, status, body):
    # "internal_error" and "fatal_error": "it's possible some aspect of the operation
    # succeeded". Inside a 2xx they were an unknown outcome; with a 500 they were read as
    # Slack's refusal and retried as a failure: the alert posted twice.
    fake_notify.script("slack", Script(status=status, body=body))
    with pytest.raises(DeliveryError) as caught:
        slack(fake_notify).send(sample())
    error = caught.value
    assert error.outcome_unknown and error.retryable and error.http_status == status
    code = body["error"] if isinstance(body, dict) else body.decode()
    assert error.vendor_reason == code and "(outcome unknown)" in error.message
    assert "/services/" not in error.message


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


# --- extreme names, ids and comments: cut cleanly within each limit, the link whole or absent --


@pytest.mark.parametrize(
    ("field", "label", "value"),
    [
        ("agent_name", "*Agent*", "A" * 4000),
        ("agent_name", "*Agent*", FAMILY * 500),
        ("agent_name", "*Agent*", "e\u0301" * 3000),
        ("agent_name", "*Agent*", "R&D <team> " * 400),
        ("team", "*Team*", FAMILY * 400),
        ("team", "*Team*", "\U0001f600" * 1500),
        ("team", "*Team*", "\U0001f1fa\U0001f1e6" * 600),  # flags: two letters each
    ],
)
def test_an_extreme_name_is_cut_cleanly_within_each_limit(fake_notify, field, label, value):
    message = sample(**{field: value})
    body = sent(fake_notify, message)

    typed = " ".join(value.split())
    assert_cut_cleanly(body["blocks"][0]["text"]["text"], headline(message), 150)
    fields = body["blocks"][1]["fields"]
    at = [f["text"] for f in fields].index(label)
    assert fields[at + 1]["type"] == "plain_text"
    assert_cut_cleanly(fields[at + 1]["text"], typed, 2000)
    assert LINK in mrkdwn_of(body)  # never crowded out
    if not set("&<>") & set(headline(message)):
        assert_cut_cleanly(body["text"], headline(message), 3000)


@pytest.mark.parametrize(
    "comment",
    ["плохо " * 2000, FAMILY * 1000, "e\u0301" * 2000, "\U0001f600" * 3000, "&<>" * 1000],
)
def test_a_long_comment_is_cut_cleanly_within_the_limit(fake_notify, comment):
    body = sent(fake_notify, sample(comment=comment))
    shown = body["blocks"][4]["text"]
    assert shown["type"] == "plain_text"
    assert_cut_cleanly(shown["text"], comment.strip(), 3000)


@pytest.mark.parametrize("dialog_id", ["9" * 700, "&<>|" * 200, "D" * 2300])
def test_an_extreme_dialog_id_is_cut_in_the_header_and_its_link_kept_whole(fake_notify, dialog_id):
    url = "https://acme.example/app/conversations/" + dialog_id
    message = sample(dialog_id=dialog_id, ticket_url=url)
    body = sent(fake_notify, message)

    assert_cut_cleanly(body["blocks"][0]["text"]["text"], headline(message), 150)
    [link] = [t["text"] for t in text_objects(body) if t["text"].startswith("<")]
    target, label = link[1:-1].split("|")
    assert label == "Open ticket"
    assert target.startswith("https://acme.example/app/conversations/")
    assert target.endswith(
        dialog_id[-8:].replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    )


def test_a_link_that_cannot_fit_whole_is_left_out_not_cut(fake_notify):
    dialog_id = "7" * 3500
    url = "https://acme.example/app/conversations/" + dialog_id
    body = sent(fake_notify, sample(dialog_id=dialog_id, ticket_url=url, comment=None), button=True)
    assert "https://" not in json.dumps(body["blocks"])  # neither the link nor a button
    assert body["blocks"][0]["text"]["text"].startswith("Low rating 2/5 for Anna <admin> & Co")


def digest(
    agents: int,
    items: int,
    name: str = FAMILY * 300,
    comment: str = "<&>" * 100,
    item_agent: str = "Anna&" * 500,
) -> Any:
    return sample(
        event="digest",
        rule="daily",
        period="2026-11-19",
        figures=AgentFigures("*", "All agents", 40, 30, 0.75, (0.6, 0.86)),
        agents=tuple(
            AgentFigures(str(i), f"Agent {i} " + name, 25, 12, 0.48, (0.3, 0.67))
            for i in range(agents)
        ),
        items=tuple(DigestItem(1, item_agent, "4512", comment, None, None) for _ in range(items)),
        dialog_id=None,
        ticket_url=None,
        comment=None,
    )


def digest_lines(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The facts' and the items' lines, each list over its sections."""
    blocks = body["blocks"]
    at = next(i for i, b in enumerate(blocks) if b["text"].get("text") == "*Lowest-rated answers*")
    for block in blocks[1:at] + blocks[at + 1 : -1]:
        assert units(block["text"]["text"]) <= 3000
    return tuple(  # type: ignore[return-value]
        [line for b in part for line in b["text"]["text"].split("\n")]
        for part in (blocks[1:at], blocks[at + 1 : -1])
    )


def test_a_digest_of_fifty_agents_and_long_comments_shows_every_line(fake_notify):
    """A digest's lines over 3,000 characters together (Slack's limit for a section's text)
    go into several sections, each ending at a line's end; they were one section cut at
    3,000 in the middle of a line, the agents and answers after it never shown."""
    long_comments = digest(50, 20, "Петрова-Водкина", "слишком долго " * 20, "Anna&")
    body = sent(fake_notify, long_comments)
    assert 4 < len(body["blocks"]) <= 50
    facts, items = digest_lines(body)
    assert facts[0].startswith("All agents: 40 answers") and len(facts) == 51
    assert [line.split(" ", 2)[1] for line in facts[1:]] == [str(i) for i in range(50)]
    assert all(line.endswith("95% interval 30.0%–67.0%)") for line in facts[1:]), facts[1]
    assert len(items) == 20 and all(line.startswith("• 1/5 Anna&, ticket 4512: ") for line in items)


def test_a_digest_of_many_long_named_agents_stays_within_every_limit(fake_notify):
    """Lines that would take the message's blocks past what Slack takes in all (about 13,200
    characters: msg_blocks_too_long, the message refused whole) are left out, the last of
    their sections saying how many; each line is cut on its own, cleanly."""
    body = sent(fake_notify, digest(30, 40))
    facts, items = digest_lines(body)
    assert facts[0].startswith("All agents: 40 answers")
    assert facts[-1] == f"… {31 - (len(facts) - 1)} more lines not shown"
    assert items[-1] == f"… {40 - (len(items) - 1)} more lines not shown"
    assert sum(units(line) + 1 for line in facts + items) <= 11_000
    assert all(line.endswith("…") for line in facts[1:-1])
    assert not any(line[:-1].rstrip().endswith("\u200d") for line in facts)
    assert items[0].startswith("• 1/5 Anna&Anna&")


def test_lines_past_the_sections_room_are_left_out_with_a_note():
    """Past the sections a message has room for (Slack's 50 blocks a message), the lines
    are left out, the last section saying how many."""
    from csat_hook.notify.slack import line_sections

    lines = [f"line {i} " + "x" * 490 for i in range(20)]
    [only] = line_sections(lines, 1, 100_000)
    shown = only["text"]["text"].split("\n")
    assert shown[-1] == f"… {20 - (len(shown) - 1)} more lines not shown"
    assert shown[:-1] == lines[: len(shown) - 1] and units(only["text"]["text"]) <= 3000


def test_a_refusal_cut_off_mid_body_is_a_failure_not_an_unconfirmed_send():
    # Slack said 404 no_service (the webhook is gone) and the connection closed before the
    # body was whole: a refusal all the same. Read as an unknown outcome, the default
    # on_unknown_outcome (skip) recorded the alert as sent, unconfirmed: lost without a word.
    def gone(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\nno_service")
        conn.shutdown(socket.SHUT_RDWR)

    with loopback(gone) as (url, seen):
        destination = build("s", {"kind": "slack", "webhook_url": url + "/services/T0/B0/X0"})
        with pytest.raises(DeliveryError) as caught:
            destination.send(sample())

    assert len(seen) == 1
    error = caught.value
    assert error.http_status == 404 and not error.retryable and not error.outcome_unknown


# --- a 2xx is delivered only when it says so ------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"invalid_payload",
        b"channel_not_found",
        b"no_text\n",
        {"ok": False, "error": "channel_not_found"},
        {"ok": False, "error": "invalid_blocks"},
    ],
)
def test_a_refusal_inside_a_2xx_is_a_permanent_failure_not_a_delivery(fake_notify, body):
    # Slack's own error code, even with HTTP 200: nothing was posted, and the same message
    # would be refused again (counted as delivered, the alert was lost without a word).
    fake_notify.script("slack", Script(status=200, body=body))
    with pytest.raises(DeliveryError) as caught:
        slack(fake_notify).send(sample())
    error = caught.value
    code = body["error"] if isinstance(body, dict) else body.decode().strip()
    assert not error.retryable and not error.outcome_unknown
    assert error.http_status == 200 and error.vendor_reason == code
    assert code in error.message and "/services/" not in error.message


@pytest.mark.parametrize("body", [b"rollup_error", {"ok": False, "error": "service_unavailable"}])
def test_a_transient_refusal_inside_a_2xx_is_retried_as_a_failure(fake_notify, body):
    fake_notify.script("slack", Script(status=200, body=body))
    with pytest.raises(DeliveryError) as caught:
        slack(fake_notify).send(sample())
    assert caught.value.retryable and not caught.value.outcome_unknown


@pytest.mark.parametrize("body", [b"rate_limited", {"ok": False, "error": "ratelimited"}])
def test_a_rate_limit_inside_a_2xx_honours_its_wait(fake_notify, body):
    fake_notify.script("slack", Script(status=200, body=body, headers={"Retry-After": "30"}))
    with pytest.raises(DeliveryError) as caught:
        slack(fake_notify).send(sample())
    assert caught.value.retryable and caught.value.retry_after == 30


@pytest.mark.parametrize(
    "body",
    [
        {"ok": False, "error": "internal_error"},  # "some aspect may have succeeded"
        b"",  # an empty or cut-off answer, a proxy's page: Slack said neither yes nor no
        b"<html><body>Welcome</body></html>",
        {"ok": "yes"},
    ],
)
def test_a_2xx_that_is_not_slacks_ok_is_an_unknown_outcome(fake_notify, body):
    fake_notify.script("slack", Script(status=200, body=body))
    with pytest.raises(DeliveryError) as caught:
        slack(fake_notify).send(sample())
    assert caught.value.outcome_unknown and caught.value.retryable


@pytest.mark.parametrize("body", [b"ok", b"ok\n", {"ok": True, "ts": "1700000000.000100"}])
def test_slacks_ok_in_either_form_is_a_delivery(fake_notify, body):
    fake_notify.script("slack", Script(status=200, body=body))
    assert slack(fake_notify).send(sample()).external_id is None


def test_the_digest_budget_rests_on_an_undocumented_limit_and_the_readme_says_so():
    """The 11,000-character budget of a digest's lines is below a limit Slack does not
    document (observed in slackapi/bolt-js#2509): a named constant beside the observed
    limit, and the README's Slack alerts say what it rests on, with the same figures."""
    from pathlib import Path

    from csat_hook.notify import slack

    assert slack.LINES_BUDGET == 11_000 < slack.BLOCKS_TEXT_OBSERVED == 13_200
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    digests = " ".join(readme.split("* **Digests**", 1)[1].split("* **Follow-up**", 1)[0].split())
    assert f"lines past {slack.LINES_BUDGET:,} characters" in digests
    assert f"≈ {slack.BLOCKS_TEXT_OBSERVED:,} at which Slack refuses" in digests
    assert "a limit Slack does not document" in digests
    assert "slackapi/bolt-js issue #2509" in digests
    assert "`LINES_BUDGET` in `notify/slack.py`" in digests
