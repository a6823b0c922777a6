"""Slack: an incoming webhook, a Block Kit message.

* Request: ``POST <webhook URL>`` with ``{"text", "mrkdwn": false, "blocks",
  "unfurl_links": false, "unfurl_media": false}``; channel, name and icon come from the app
  (a webhook cannot override them).
  https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks
* Answer: ``200 ok`` (plain text; the Web API's ``{"ok": true}`` is read alike). A 2xx is
  delivered only when it says so: Slack's error code inside a 2xx (``invalid_payload`` or
  ``{"ok": false, "error": …}``) is classified as the same code with a 4xx would be (see
  :func:`refusal_in_2xx`), and a 2xx without ``ok`` (empty, cut off, a proxy's page) is an
  outcome unknown, settled as below. Errors are plain-text codes: ``400 invalid_payload`` /
  ``invalid_blocks`` / ``no_text`` (our message: permanent), ``403 action_prohibited``,
  ``404 channel_not_found`` / ``no_service``, ``410 channel_is_archived`` (the webhook is
  gone: permanent), ``429`` with ``Retry-After`` (honoured), ``503`` and ``500
  rollup_error`` (retried: Slack's own error code says it did not post the message, as
  Telegram's ``ok: false`` does; a lost alert costs more than a second one). A 500 without
  Slack's code, a proxy's 502 or a gateway timeout may come after the message was posted:
  an outcome unknown, settled as below.
* Text: everything a customer or a helpdesk's user typed (the comment, an agent's or a team's
  name, a ticket's id, in the headline, the facts and a digest's items) is in ``plain_text``
  text objects with ``emoji: false``, which Slack shows as written: no formatting, mention,
  link or ``:emoji:`` code. mrkdwn cannot carry it: only ``&``, ``<`` and ``>`` have an
  escape there, so a comment's ``*urgent*``, ``_x_``, ``~x~``, backticks or a line's leading
  ``>`` would format. Our own labels (``*Rating*``, ``*Comment*``) are mrkdwn, as is the
  ticket link ``<url|Open ticket>``: its label is ours, and ``|``, ``<``, ``>`` are
  percent-encoded in the URL, so a crafted URL cannot choose its label.
  https://docs.slack.dev/messaging/formatting-message-text#escaping
  https://docs.slack.dev/reference/block-kit/composition-objects/text-object
* ``text`` is what a notification (and a client that cannot show blocks) shows: the headline,
  no comment (a helpdesk's user's names and ids, though). It is sent with ``mrkdwn: false``
  (a name's ``*`` or ``_`` formats nothing), and its ``&``, ``<``, ``>`` are escaped all the
  same: ``mrkdwn: false`` is documented to turn formatting off, not the parsing of
  ``<!channel>`` or ``<@U123>``, which would notify.
* Blocks: a header (the headline), the facts (our labels beside their values in a section's
  fields when every fact has a label; otherwise their lines in one ``plain_text`` section),
  the ticket link, the comment and a digest's items each under a label, the button when
  asked for, and a context line with the alert's reference.
* Limits (Block Kit), counted in UTF-16 code units (the stricter reading of Slack's
  "characters"): a header's text 150, a section's text 3000, a field 2000 (10 a section), a
  context element 3000, 50 blocks, a button's URL 3000. Each value is cut on its own, on a
  character boundary, an ellipsis marking the cut; a line of the facts or the items to
  :data:`LINE_LIMIT` first, so one extreme name cannot crowd the others out. Lines longer
  together than a section (a digest's 50 agents) go into as many sections as they need, each
  ending at a line's end (:func:`line_sections`): never a line cut at 3000 in the middle. A
  digest takes at most 18 blocks under its configured limits; lines past 50 blocks, or past
  :data:`LINES_BUDGET` characters in all (Slack's undocumented limit on a message's blocks),
  are left out, the last section saying how many ("… 12 more lines not shown").
  A link or a button is whole or absent: one whose URL does not fit is left out.
* A webhook answers no message id, and nothing can be looked up: an attempt whose outcome is
  unknown is recorded as sent unconfirmed (``on_unknown_outcome: skip``) or sent again.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote
from urllib.parse import urlsplit

import requests

from csat_hook.bidi import contained
from csat_hook.db.text import boundary
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.calls import response_json
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.transport import vendor_reason
from csat_hook.notify.base import Destination
from csat_hook.notify.base import Settle
from csat_hook.notify.options import SlackOptions
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.render import clip_units
from csat_hook.notify.render import comment_of
from csat_hook.notify.render import facts
from csat_hook.notify.render import footer
from csat_hook.notify.render import headline
from csat_hook.notify.render import item_line
from csat_hook.notify.render import units
from csat_hook.retry import parse_retry_after

HEADER_LIMIT = 150
SECTION_LIMIT = 3000  # a section's text, a context element
BLOCK_LIMIT = 50  # a message's blocks
# Slack refuses a message whose blocks hold more than about this many characters in all
# (msg_blocks_too_long), whatever each block's own limit. Slack does not document it: it was
# observed (slackapi/bolt-js#2509), and may change without notice; README says so.
BLOCKS_TEXT_OBSERVED = 13_200
# The digest's lines (facts and items) in all: the observed limit less 2,200 for the rest of
# a message (header, fields, notes), which takes well under that.
LINES_BUDGET = BLOCKS_TEXT_OBSERVED - 2_200
NOTE_UNITS = 40  # "… N more lines not shown", and its line break
FIELD_LIMIT = 2000
FIELD_PAIRS = 5  # 10 fields a section: a label and its value each
# A line of the facts or of a digest's items, cut on its own: an extreme agent name or dialog
# id cannot crowd the other lines out.
LINE_LIMIT = 500
# The notification's text (Slack truncates a message's text at 40,000; a notification shows
# far less).
TEXT_LIMIT = 3000
URL_LIMIT = 3000  # a button's url
LINK_LABEL = "Open ticket"
# Slack's error answers are short snake_case codes; anything else is not read.
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# Error codes that say Slack failed for now and posted nothing: a webhook's ``rollup_error``
# ("likely not your fault"), a rate limit (with Retry-After), the Web API's
# ``service_unavailable`` and ``team_added_to_org`` (a migration: "intermittently
# unavailable"). Retried as a failure. Any other code is about the message or the webhook:
# permanent.
RETRYABLE_CODES = frozenset(
    {"rollup_error", "rate_limited", "ratelimited", "service_unavailable", "team_added_to_org"}
)
# The Web API's ``internal_error`` and ``fatal_error``: "it's possible some aspect of the
# operation succeeded before the error was raised": the message may have been posted.
UNKNOWN_CODES = frozenset({"internal_error", "fatal_error"})


def escape(text: str) -> str:
    """Slack's mrkdwn control characters (only these three are decoded by Slack)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip_escaped(text: str, limit: int) -> str:
    """:func:`escape`'d ``text`` cut to ``limit`` UTF-16 code units, an ellipsis marking the
    cut, never inside an entity (``&am…`` would show as text) or a character. Only for
    escaped text: every ``&`` in it starts an entity."""
    if units(text) <= limit:
        return text
    kept = clip_units(text, limit)[:-1]
    amp = kept.rfind("&")
    if amp != -1 and ";" not in kept[amp:]:
        kept = contained(kept[: boundary(kept, amp)].rstrip())  # the cut's closers again
    return kept.rstrip() + "…"


def plain(text: str, limit: int) -> dict[str, Any]:
    """A ``plain_text`` object, cut to ``limit``: Slack shows it as written (no formatting,
    mention, link or ``:emoji:`` code), whatever it holds."""
    return {"type": "plain_text", "text": clip_units(text, limit) or "–", "emoji": False}


def label(text: str) -> dict[str, Any]:
    """One of our own labels, in bold: never a value from outside."""
    return {"type": "mrkdwn", "text": f"*{text}*"}


def is_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("https", "http") and bool(parts.netloc)


def link(url: str) -> str | None:
    """``<url|Open ticket>``, or None when ``url`` is not an absolute http(s) URL or the link
    does not fit a section whole."""
    if not is_http(url):
        return None
    safe = quote(url, safe=":/?#[]@!$&'()*+,;=%~-._")
    safe = safe.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    text = f"<{safe}|{LINK_LABEL}>"
    return text if len(text) <= SECTION_LIMIT else None  # quoted: ASCII, one unit each


def facts_blocks(
    pairs: list[tuple[str | None, str]], room: int, budget: int
) -> list[dict[str, Any]]:
    """The facts: each label beside its value in a section's fields when every fact has a
    label and they fit, else every fact's line in ``plain_text`` sections (at most ``room``
    and ``budget``: :func:`line_sections`)."""
    if len(pairs) <= FIELD_PAIRS and all(name for name, _ in pairs):
        fields: list[dict[str, Any]] = []
        for name, value in pairs:
            fields += [label(name or ""), plain(value, FIELD_LIMIT)]
        return [{"type": "section", "fields": fields}]
    lines = [clip_units(f"{name}: {value}" if name else value, LINE_LIMIT) for name, value in pairs]
    return line_sections(lines, room, budget)


def line_sections(lines: list[str], room: int, budget: int) -> list[dict[str, Any]]:
    """``lines`` (each within :data:`LINE_LIMIT`) as ``plain_text`` sections of at most
    :data:`SECTION_LIMIT` units, each ending at a line's end, in at most ``room`` (≥ 1)
    sections and ``budget`` units in all. Lines past either are left out, the last section
    ending with how many: a message over Slack's 50 blocks is refused whole
    (``invalid_blocks``), as is one whose blocks' text is too long (:data:`LINES_BUDGET`)."""
    fits = total = 0
    for line in lines:
        if total + units(line) + 1 > budget - (NOTE_UNITS if fits + 1 < len(lines) else 0):
            break
        total += units(line) + 1
        fits += 1
    texts: list[list[str]] = [[]]
    used = 0
    for line in lines[:fits]:
        size = units(line) + (1 if texts[-1] else 0)  # its "\n" after the line before
        if texts[-1] and used + size > SECTION_LIMIT:
            texts.append([])
            size, used = units(line), 0
        texts[-1].append(line)
        used += size
    texts = texts[:room]
    kept = sum(len(t) for t in texts)
    if kept < len(lines):
        last = texts[-1]
        while True:  # each line within LINE_LIMIT: the note fits once a line or two are out
            note = f"… {len(lines) - kept} more lines not shown"
            if units("\n".join([*last, note])) <= SECTION_LIMIT:
                break
            last.pop()
            kept -= 1
        last.append(note)
    return [{"type": "section", "text": plain("\n".join(t), SECTION_LIMIT)} for t in texts]


def labelled(name: str, text: str) -> list[dict[str, Any]]:
    """Our label over someone else's text: two sections."""
    return [
        {"type": "section", "text": label(name)},
        {"type": "section", "text": plain(text, SECTION_LIMIT)},
    ]


def slack_error(response: requests.Response) -> str | None:
    """Slack's error code from an answer's body: a webhook's plain text (``invalid_payload``)
    or the Web API's ``{"ok": false, "error": "..."}``; None for anything else (``ok``, a
    proxy's page, a body cut off)."""
    if len(response.content) > 1024:
        return None
    body = response_json(response)
    if isinstance(body, dict):
        said = body.get("error") if body.get("ok") is False else None
        text = said.strip() if isinstance(said, str) else ""
    else:
        text = response.text.strip()
    return text if text != "ok" and _CODE.fullmatch(text) else None


def _refused(response: requests.Response) -> bool:
    """Whether an answer that is no 2xx is Slack's own word that nothing was posted."""
    code = slack_error(response)
    return code is not None and code not in UNKNOWN_CODES


def slack_ok(response: requests.Response) -> bool:
    """Whether a 2xx is Slack's word that the message was posted: a webhook's ``ok`` or the
    Web API's ``{"ok": true, ...}``."""
    if response.content.strip() == b"ok":
        return True
    body = response_json(response)
    return isinstance(body, dict) and body.get("ok") is True


def refusal_in_2xx(name: str, response: requests.Response) -> DeliveryError:
    """The error for a 2xx that is not :func:`slack_ok`.

    Slack's own error code (plain text or ``ok: false``) means the request was unsuccessful,
    as with a 4xx: retried when the code says Slack failed for now (:data:`RETRYABLE_CODES`,
    a rate limit's ``Retry-After`` honoured), unknown when it says part of it may have been
    done (:data:`UNKNOWN_CODES`), else permanent (the same message would be refused again).
    Anything else (an empty or cut-off body, a proxy's page) may hide a posted message: an
    outcome unknown, settled as ``on_unknown_outcome`` says, never counted as delivered.
    """
    status = response.status_code
    code = vendor_reason(slack_error, response)
    if code is None:
        return DeliveryError(
            f"{name}: Slack answered HTTP {status} without ok (outcome unknown)",
            retryable=True,
            http_status=status,
            outcome_unknown=True,
        )
    unknown = code in UNKNOWN_CODES
    message = f"{name}: Slack answered HTTP {status} with an error"
    return DeliveryError(
        f"{message} (outcome unknown): {code}" if unknown else f"{message}: {code}",
        retryable=code in RETRYABLE_CODES,
        http_status=status,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        vendor_reason=code,
        outcome_unknown=unknown,
    )


class SlackDestination(Destination):
    kind = "slack"
    options: SlackOptions

    def payload(self, message: AlertMessage) -> dict[str, Any]:
        """The webhook's JSON body: at most :data:`BLOCK_LIMIT` blocks."""
        head = headline(message)
        header = {"type": "header", "text": plain(head, HEADER_LIMIT)}
        middle: list[dict[str, Any]] = []  # between the facts and the items
        ticket = link(message.ticket_url) if message.ticket_url else None
        if ticket:
            middle.append({"type": "section", "text": {"type": "mrkdwn", "text": ticket}})
        comment = comment_of(message, include_comment=self.include_comment)
        if comment:
            middle += labelled("Comment", comment)
        end: list[dict[str, Any]] = []
        if (
            self.options.button
            and message.ticket_url
            and is_http(message.ticket_url)
            and len(message.ticket_url) <= URL_LIMIT  # whole, or no button: never cut
        ):
            end.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": LINK_LABEL},
                            "url": message.ticket_url,
                            "action_id": "open_ticket",
                        }
                    ],
                }
            )
        end.append({"type": "context", "elements": [plain(footer(message), SECTION_LIMIT)]})
        # The facts' and the items' lines share the blocks the others leave, the items keeping
        # their label and a section at least.
        # Of LINES_BUDGET, the facts take what the items leave, half at least.
        room = BLOCK_LIMIT - 1 - len(middle) - len(end) - (2 if message.items else 0)
        items = self.items(message)
        budget = max(LINES_BUDGET // 2, LINES_BUDGET - sum(units(i) + 1 for i in items))
        pairs = facts(message)
        shown = facts_blocks(pairs, room, budget) if pairs else []
        blocks = [header, *shown, *middle]
        if items:
            left = LINES_BUDGET - sum(units(b["text"]["text"]) + 1 for b in shown if "text" in b)
            blocks.append({"type": "section", "text": label("Lowest-rated answers")})
            blocks += line_sections(items, BLOCK_LIMIT - len(blocks) - len(end), left)
        blocks += end
        return {
            "text": clip_escaped(escape(head), TEXT_LIMIT),
            "mrkdwn": False,
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }

    def items(self, message: AlertMessage) -> list[str]:
        """A digest's items, a line each, each cut to :data:`LINE_LIMIT`."""
        return [
            "• "
            + clip_units(item_line(item, message, include_comment=self.include_comment), LINE_LIMIT)
            for item in message.items
        ]

    def send(self, message: AlertMessage) -> SendResult:
        response = self.http.request(
            "POST",
            self.options.webhook_url.get_secret_value(),
            json=self.payload(message),
            explain=slack_error,
            # An answer in Slack's own words (500 rollup_error): Slack's servers say it
            # failed, not a proxy that may have forwarded it. Retried as a failure; unless
            # the words say it may have been posted (500 internal_error: UNKNOWN_CODES), an
            # outcome unknown as in a 2xx (retried blindly, it was posted twice).
            refused=_refused,
        )
        if not slack_ok(response):
            raise refusal_in_2xx(self.name, response)
        return SendResult(external_id=None)  # a webhook answers no message id

    def settle(self, message: AlertMessage) -> Settle:
        return self.options.on_unknown_outcome
