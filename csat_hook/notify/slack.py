"""Slack: an incoming webhook, a Block Kit message.

* Request: ``POST <webhook URL>`` with ``{"text", "blocks", "unfurl_links": false,
  "unfurl_media": false}``. ``text`` is the notification's fallback; channel, name and icon
  come from the app (a webhook cannot override them).
  https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks
* Answer: ``200 ok`` (plain text). Errors are plain-text codes: ``400 invalid_payload`` /
  ``invalid_blocks`` / ``no_text`` (our message: permanent), ``403 action_prohibited``,
  ``404 channel_not_found`` / ``no_service``, ``410 channel_is_archived`` (the webhook is
  gone: permanent), ``429`` with ``Retry-After`` (honoured), ``503`` and ``500
  rollup_error`` (retried: Slack's own error code says it did not post the message, as
  Telegram's ``ok: false`` does; a lost alert costs more than a second one). A 500 without
  Slack's code, a proxy's 502 or a gateway timeout may come after the message was posted:
  an outcome unknown, settled as below.
* mrkdwn: only ``&``, ``<`` and ``>`` are control characters and are escaped in every value
  (so a comment's ``<!channel>`` or ``<@U123>`` stays inert text); the comment is quoted and
  ``verbatim`` (no auto-linking). The ticket link is ``<url|label>`` with ``|``, ``<``, ``>``
  percent-encoded in the URL, so a crafted URL cannot choose its label.
  https://docs.slack.dev/messaging/formatting-message-text#escaping
* Limits (Block Kit): a section's text 3000 characters, a header's 150, 50 blocks; an
  alert stays far below them (the comment is clipped).
* A webhook answers no message id, and nothing can be looked up: an attempt whose outcome is
  unknown is recorded as sent unconfirmed (``on_unknown_outcome: skip``) or sent again.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote
from urllib.parse import urlsplit

import requests

from csat_hook.helpdesks.records import SendResult
from csat_hook.notify.base import Destination
from csat_hook.notify.base import Settle
from csat_hook.notify.options import SlackOptions
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.render import clip
from csat_hook.notify.render import comment_of
from csat_hook.notify.render import fact_lines
from csat_hook.notify.render import footer
from csat_hook.notify.render import headline
from csat_hook.notify.render import item_line

SECTION_LIMIT = 3000
# Slack's error answers are short snake_case codes; anything else is not read.
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def escape(text: str) -> str:
    """Slack's mrkdwn control characters (only these three are decoded by Slack)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str, label: str) -> str | None:
    """``<url|label>``, or None when ``url`` is not an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return None
    safe = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")
    safe = safe.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe}|{escape(label)}>"


def slack_error(response: requests.Response) -> str | None:
    """Slack's error code from a refusal's plain-text body."""
    text = response.text.strip()[:64] if len(response.content) <= 1024 else ""
    return text if _CODE.fullmatch(text) else None


class SlackDestination(Destination):
    kind = "slack"
    options: SlackOptions

    def payload(self, message: AlertMessage) -> dict[str, Any]:
        """The webhook's JSON body."""
        head = headline(message)
        first = f"*{escape(head)}*"
        facts = fact_lines(message)
        if facts:
            first += "\n" + "\n".join(escape(line) for line in facts)
        label = f"Open ticket {message.dialog_id or ''}".strip()
        ticket = link(message.ticket_url, label) if message.ticket_url else None
        if ticket:
            first += "\n" + ticket
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": clip(first, SECTION_LIMIT)}}
        ]
        comment = comment_of(message, include_comment=self.include_comment)
        if comment:
            quoted = "\n".join("> " + line for line in escape(comment).splitlines() or [""])
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": clip(quoted, SECTION_LIMIT),
                        "verbatim": True,
                    },
                }
            )
        if message.items:
            listed = "\n".join(
                "• " + escape(item_line(item, message, include_comment=self.include_comment))
                for item in message.items
            )
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": clip("*Lowest-rated answers*\n" + listed, SECTION_LIMIT),
                        "verbatim": True,
                    },
                }
            )
        if self.options.button and message.ticket_url and ticket:  # the link is valid
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Open ticket"},
                            "url": message.ticket_url[:3000],
                            "action_id": "open_ticket",
                        }
                    ],
                }
            )
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(footer(message))}]}
        )
        return {
            "text": clip(escape(head), SECTION_LIMIT),
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }

    def send(self, message: AlertMessage) -> SendResult:
        self.http.request(
            "POST",
            self.options.webhook_url.get_secret_value(),
            json=self.payload(message),
            explain=slack_error,
            # An answer in Slack's own words (500 rollup_error): Slack's servers say it
            # failed, not a proxy that may have forwarded it. Retried as a failure.
            refused=lambda response: slack_error(response) is not None,
        )
        return SendResult(external_id=None)  # a webhook answers no message id

    def settle(self, message: AlertMessage) -> Settle:
        return self.options.on_unknown_outcome
