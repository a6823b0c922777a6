"""Telegram: an HTML message the fake Bot API (Telegram's parsing rules) accepts, within 4096
visible characters, and the Bot API's answers classified (retry_after in the body)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from csat_hook.devtools.fake_notify import Script
from csat_hook.errors import DeliveryError
from csat_hook.notify.records import AgentFigures
from csat_hook.notify.records import DigestItem
from tests.notify.conftest import NASTY_COMMENT
from tests.notify.conftest import build
from tests.notify.conftest import flood_wait
from tests.notify.conftest import sample

TOKEN = "123456789:AAH0fakeBotTokenForTests_abcdefghijkl"
CHAT = "-1001234567890"


def telegram(fake, chat=CHAT, token=TOKEN, **options):
    base = fake.telegram_bot(TOKEN, CHAT)
    return build(
        "team-telegram",
        {"kind": "telegram", "bot_token": token, "chat_id": chat, "base_url": base, **options},
    )


def test_the_alert_is_accepted_and_reads_as_sent(fake_notify):
    result = telegram(fake_notify).send(sample())

    [message] = fake_notify.delivered("telegram")
    body = message.json()
    assert body["chat_id"] == CHAT and body["parse_mode"] == "HTML"
    assert body["link_preview_options"] == {"is_disabled": True}
    assert result.external_id == "101"  # result.message_id
    assert message.path == f"/bot{TOKEN}/sendMessage"
    # What the chat shows (the fake answers the visible text, entities decoded).
    visible = message.reply["result"]["text"]
    assert visible.startswith("Low rating 2/5 for Anna <admin> & Co on ticket 4512")
    assert NASTY_COMMENT in visible and "Alert ref: csat-alert-0123456789abcdef" in visible
    assert (
        '<a href="https://acme.example/app/conversations/4512?a=1&amp;b=x|y&gt;z">' in body["text"]
    )
    assert "<blockquote>" + NASTY_COMMENT.replace("&", "&amp;")[:10] in body["text"]


def test_markup_in_names_and_comments_is_text(fake_notify):
    telegram(fake_notify).send(sample())
    text = fake_notify.delivered("telegram")[0].json()["text"]
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "Anna &lt;admin&gt; &amp; Co" in text


def test_without_escaping_telegram_would_refuse_it(fake_notify, monkeypatch):
    monkeypatch.setattr("csat_hook.notify.telegram.escape", lambda text: text)
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert caught.value.http_status == 400 and not caught.value.retryable
    assert "can't parse entities" in (caught.value.vendor_reason or "")


def test_a_ticket_url_without_a_host_is_text_not_a_link(fake_notify):
    """Telegram refuses a message whose link has no host (400 "Bad Request: URL host is
    empty", as answered to ``<a href='/anotherCommand'>``: yagop/node-telegram-bot-api#188),
    for good: a ``ticket_url_template`` of ``/tickets/{ticket}`` lost every alert."""
    telegram(fake_notify).send(sample(ticket_url="/tickets/4512"))
    [message] = fake_notify.delivered("telegram")
    assert "<a " not in message.json()["text"]
    assert "Ticket: /tickets/4512" in message.reply["result"]["text"]


@pytest.mark.parametrize("unit", ["я", "👍"])
def test_a_long_comment_is_clipped_to_4096_visible_characters(fake_notify, unit):
    telegram(fake_notify).send(sample(comment=unit * 5000))
    [message] = fake_notify.delivered("telegram")
    assert message.answered == 200  # the fake counts UTF-16 units, as Telegram does
    assert "…" in message.json()["text"]


def test_a_rate_limit_is_read_from_the_body(fake_notify):
    fake_notify.script(
        "telegram",
        Script(status=429, body=flood_wait(41)),
    )
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert caught.value.retryable and caught.value.retry_after == 41


def test_an_unknown_chat_is_permanent(fake_notify):
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify, chat="-1009999999999").send(sample())
    assert not caught.value.retryable and "chat not found" in caught.value.message


def test_a_revoked_token_is_permanent_and_never_shown(fake_notify):
    other = "987654321:AAH0revokedTokenForTests_abcdefghijkl"
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify, token=other).send(sample())
    assert not caught.value.retryable and "bot_token" in caught.value.message
    assert other not in caught.value.message and "AAH0" not in caught.value.message


def test_a_migrated_group_names_the_new_chat_id(fake_notify):
    fake_notify.script(
        "telegram",
        Script(
            status=400,
            body={
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: group chat was upgraded to a supergroup chat",
                "parameters": {"migrate_to_chat_id": -1001987654321},
            },
        ),
    )
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert not caught.value.retryable
    assert "set alerts.destinations.team-telegram.chat_id to -1001987654321" in caught.value.message


@pytest.mark.parametrize(
    ("error_code", "retryable"), [(429, True), (502, True), (400, False), ("x", False)]
)
def test_ok_false_in_a_2xx_is_telegrams_refusal_classified_by_its_error_code(
    fake_notify, error_code, retryable
):
    body = {"ok": False, "error_code": error_code, "description": "Bad Request: nope"}
    fake_notify.script("telegram", Script(status=200, body=body))
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert caught.value.retryable is retryable and not caught.value.outcome_unknown
    assert caught.value.http_status == 200 and caught.value.vendor_reason == "Bad Request: nope"


def test_a_flood_wait_inside_a_2xx_is_honoured_and_never_delivered(fake_notify):
    """Telegram's ok=false with error_code 429 and parameters.retry_after, answered with HTTP
    200 (a proxy, a Bot API server in between): the wait it names was dropped, so the alert was
    retried on the backoff's own schedule, inside the flood wait."""
    body = flood_wait(5)
    fake_notify.script("telegram", Script(status=200, body=body))
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert caught.value.retryable and caught.value.retry_after == 5
    assert not caught.value.outcome_unknown
    assert fake_notify.delivered("telegram") == []


@pytest.mark.parametrize("status", [429, 200])
def test_a_flood_wait_too_large_for_a_float_is_still_a_refusal(fake_notify, status):
    """A retry_after of 10**400 (JSON has no bound) raised OverflowError out of send(): an
    unexpected error after the request went out, an unknown outcome, which is recorded as
    sent by default: a refused alert was lost. It is a rate limit, waited out at the cap."""
    body = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests",
        "parameters": {"retry_after": 10**400},
    }
    fake_notify.script("telegram", Script(status=status, body=body))
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert caught.value.retry_after == float("inf")  # the retry policy caps it


@pytest.mark.parametrize("status", [200, 502])  # inside a 2xx, or under a proxy's status
def test_a_revoked_token_said_inside_a_2xx_names_the_setting(fake_notify, status):
    body = {"ok": False, "error_code": 401, "description": "Unauthorized"}
    fake_notify.script("telegram", Script(status=status, body=body))
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert not caught.value.retryable and "bot_token" in caught.value.message


def test_a_migrated_group_said_inside_a_2xx_names_the_new_chat_id(fake_notify):
    body = {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1001987654321},
    }
    fake_notify.script("telegram", Script(status=200, body=body))
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert not caught.value.retryable
    assert "chat_id to -1001987654321" in caught.value.message


@pytest.mark.parametrize("body", [b"", b"<html>OK</html>", {"result": {}}, [1], b"[" * 100_000])
def test_a_2xx_without_ok_may_have_posted_the_message_an_unknown_outcome(fake_notify, body):
    fake_notify.script("telegram", Script(status=200, body=body))
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert caught.value.outcome_unknown and caught.value.http_status == 200


def test_a_proxy_error_page_may_hide_a_posted_message_an_unknown_outcome(fake_notify):
    fake_notify.script("telegram", Script(status=502, body=b"<html>Bad Gateway</html>"))
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert caught.value.retryable and caught.value.http_status == 502
    assert caught.value.outcome_unknown


@pytest.mark.parametrize("status", [500, 502])
def test_telegrams_own_ok_false_with_a_5xx_is_a_plain_retry(fake_notify, status):
    """ok=false is Telegram's word that the request was unsuccessful, whatever the status."""
    body = {"ok": False, "error_code": status, "description": "Internal Server Error"}
    fake_notify.script("telegram", Script(status=status, body=body))
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert caught.value.http_status == status
    assert caught.value.vendor_reason == "Internal Server Error"


@pytest.mark.parametrize("chat", ["", "12ab", "@abc", "-1001234567890123456789"])
def test_chat_ids_are_checked(chat):
    with pytest.raises(ValidationError):
        build("t", {"kind": "telegram", "bot_token": TOKEN, "chat_id": chat})


def test_tokens_are_checked():
    with pytest.raises(ValidationError):
        build("t", {"kind": "telegram", "bot_token": "not-a-token", "chat_id": CHAT})


def test_a_digest_too_long_for_one_message_leaves_items_out_and_says_so(fake_notify):
    items = tuple(DigestItem(1, "Анна " * 10, f"T-{i}", "очень долго " * 30) for i in range(20))
    agents = tuple(AgentFigures(str(i), "Агент " * 8, 10, 5, 0.5, (0.2, 0.8)) for i in range(50))
    telegram(fake_notify).send(
        sample(
            event="digest",
            rule="daily",
            period="2026-11-19",
            figures=AgentFigures("*", "All agents", 500, 250, 0.5, (0.45, 0.55)),
            agents=agents,
            items=items,
            comment=None,
            dialog_id=None,
            ticket_url=None,
        )
    )
    [message] = fake_notify.delivered("telegram")
    visible = message.reply["result"]["text"]
    assert len(visible.encode("utf-16-le")) // 2 <= 4096
    assert "more" in visible and visible.endswith("Alert ref: csat-alert-0123456789abcdef01234567")


@pytest.mark.parametrize(
    ("changes"),
    [
        {"agent_name": "A&<" * 2000},
        {"dialog_id": "9" * 5000, "ticket_url": "https://acme.example/t/" + "9" * 5000},
        {"dialog_id": "9" * 5000, "ticket_url": "/t/" + "9" * 5000},  # not a link: text
    ],
)
def test_an_extreme_agent_name_or_dialog_id_is_clipped_not_refused(fake_notify, changes):
    """Names and ids come from the helpdesk, any length: the headline, each fact and the
    link's label are clipped before escaping, so the message stays within Telegram's 4096
    (it refused the whole alert, for good: "message is too long")."""
    telegram(fake_notify).send(sample(**changes))
    [message] = fake_notify.delivered("telegram")
    visible = message.reply["result"]["text"]
    assert len(visible.encode("utf-16-le")) // 2 <= 4096
    assert visible.startswith("Low rating 2/5 for ")
    assert visible.endswith("Alert ref: csat-alert-0123456789abcdef01234567")


@pytest.mark.parametrize("status", [404, 200])
def test_an_error_that_echoes_the_bot_token_keeps_no_reason(fake_notify, status):
    """A proxy or a broken Bot API that quotes the request's path back (``/bot<token>/…``)
    must not put the token into the stored reason or the logs (the bot id's digits are
    masked as a long number, the secret after the colon is not)."""
    echo = f"Not Found: no route /bot{TOKEN}/sendMessage"
    fake_notify.script(
        "telegram",
        Script(status=status, body={"ok": False, "error_code": 404, "description": echo}),
    )
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert caught.value.vendor_reason is None and not caught.value.retryable
    assert TOKEN.split(":")[1][:12] not in caught.value.message


@pytest.mark.parametrize(
    ("status", "error_code", "retryable"),
    [(400, 429, True), (500, 400, False), (502, 403, False), (403, 500, True)],
)
def test_ok_false_with_another_status_is_classified_by_its_error_code(
    fake_notify, status, error_code, retryable
):
    """A proxy or a local Bot API server in front of Telegram may answer Telegram's ok=false
    under a status of its own: the body's error_code is Telegram's word, as inside a 2xx."""
    body = {"ok": False, "error_code": error_code, "description": "Bad Request: nope"}
    fake_notify.script("telegram", Script(status=status, body=body))
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    error = caught.value
    assert error.retryable is retryable and not error.outcome_unknown
    assert error.http_status == status and error.vendor_reason == "Bad Request: nope"


@pytest.mark.parametrize("status", [400, 502])
def test_a_flood_wait_under_another_status_is_honoured(fake_notify, status):
    fake_notify.script("telegram", Script(status=status, body=flood_wait(41)))
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert caught.value.retryable and caught.value.retry_after == 41
    assert not caught.value.outcome_unknown


@pytest.mark.parametrize(("status", "header"), [(429, "2"), (502, "0"), (200, "3")])
def test_a_flood_wait_longer_than_a_proxys_retry_after_is_the_wait(fake_notify, status, header):
    """A proxy (or a local Bot API server) adding "Retry-After: 2" beside Telegram's
    retry_after of 41 hid the body's wait: the alert came back within the flood wait, which
    Telegram answers with another 429. Each says "not before": the later one counts."""
    fake_notify.script(
        "telegram", Script(status=status, body=flood_wait(41), headers={"Retry-After": header})
    )
    with pytest.raises(DeliveryError) as caught:
        telegram(fake_notify).send(sample())
    assert caught.value.retryable and caught.value.retry_after == 41
    assert not caught.value.outcome_unknown


def test_a_base_url_with_a_line_break_after_it_reaches_the_bot_api(fake_notify):
    """``base_url: ${TELEGRAM_API}`` read from a file ends with a newline: the configuration
    passed it, and every alert failed as a URL that cannot be parsed."""
    base = fake_notify.telegram_bot(TOKEN, CHAT)
    built = build(
        "team-telegram",
        {"kind": "telegram", "bot_token": TOKEN, "chat_id": CHAT, "base_url": base + "/\n"},
    )

    built.send(sample())

    assert len(fake_notify.delivered("telegram")) == 1
