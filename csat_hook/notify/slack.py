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
* Limits (Block Kit): a section's text 3000 characters, a header's 150, 50 blocks; a
  button's URL 3000. Text is clipped where it is plain, before it is assembled: each line
  of the first section (a helpdesk's agent name or dialog id can be any length) and the
  link's label are clipped on their own, so the ``<url|label>`` link is never cut (one too
  long to fit whole is left out, as is a button whose URL is over the limit), and escaped
  text is never cut inside an entity (``&amp;``).
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
from csat_hook.notify.render import comment_of
from csat_hook.notify.render import fact_lines
from csat_hook.notify.render import footer
from csat_hook.notify.render import headline
from csat_hook.notify.render import item_line

SECTION_LIMIT = 3000
# A line of the first section (the headline, a fact) and a link's label, clipped on their
# own: an extreme agent name or dialog id cannot crowd the ticket link out or cut it.
LINE_LIMIT = 500
LABEL_LIMIT = 100
# A link longer than this (a dialog id of thousands of characters in its URL) is left out;
# whatever its length, the headline keeps its room.
LINK_LIMIT = SECTION_LIMIT - LINE_LIMIT - 1
URL_LIMIT = 3000  # a button's url
# Slack's error answers are short snake_case codes; anything else is not read.
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def escape(text: str) -> str:
    """Slack's mrkdwn control characters (only these three are decoded by Slack)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip_escaped(text: str, limit: int) -> str:
    """:func:`escape`'d ``text`` cut to ``limit`` characters, an ellipsis marking the cut,
    never inside an entity (``&am…`` would show as text). Only for escaped text: every
    ``&`` in it starts an entity (a link's URL keeps raw ``&``: never clip one)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + "…"


def link(url: str, label: str) -> str | None:
    """``<url|label>`` (the label escaped and clipped to :data:`LABEL_LIMIT`), or None when
    ``url`` is not an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return None
    safe = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")
    safe = safe.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    return f"<{safe}|{clip_escaped(escape(label), LABEL_LIMIT)}>"


def first_section(head: str, facts: list[str], ticket: str | None) -> str:
    """The headline in bold, the facts and the ticket link, within :data:`SECTION_LIMIT`.

    Each line is escaped and clipped on its own (to :data:`LINE_LIMIT`, and to the room
    left); the link is whole or absent: the room for the lines is what it leaves. Facts
    that no longer fit are left out (a digest's per-agent lines are in its report too)."""
    if ticket is not None and len(ticket) > LINK_LIMIT:
        ticket = None
    room = SECTION_LIMIT - (len(ticket) + 1 if ticket else 0)
    lines = ["*" + clip_escaped(escape(head), min(LINE_LIMIT, room) - 2) + "*"]
    room -= len(lines[0])
    for fact in facts:
        if room < len("\n…") + 1:
            break
        line = clip_escaped(escape(fact), min(LINE_LIMIT, room - 1))
        lines.append(line)
        room -= len(line) + 1
    if ticket:
        lines.append(ticket)
    return "\n".join(lines)


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
        label = f"Open ticket {message.dialog_id or ''}".strip()
        ticket = link(message.ticket_url, label) if message.ticket_url else None
        first = first_section(head, fact_lines(message), ticket)
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": first}}
        ]
        comment = comment_of(message, include_comment=self.include_comment)
        if comment:
            quoted = "\n".join("> " + line for line in escape(comment).splitlines() or [""])
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": clip_escaped(quoted, SECTION_LIMIT),
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
                        "text": clip_escaped("*Lowest-rated answers*\n" + listed, SECTION_LIMIT),
                        "verbatim": True,
                    },
                }
            )
        if (
            self.options.button
            and message.ticket_url
            and link(message.ticket_url, "") is not None  # an http(s) URL
            and len(message.ticket_url) <= URL_LIMIT  # whole, or no button: never cut
        ):
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Open ticket"},
                            "url": message.ticket_url,
                            "action_id": "open_ticket",
                        }
                    ],
                }
            )
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": clip_escaped(escape(footer(message)), SECTION_LIMIT)}
                ],
            }
        )
        return {
            "text": clip_escaped(escape(head), SECTION_LIMIT),
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
