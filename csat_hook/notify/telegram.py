"""Telegram: a bot's ``sendMessage`` to a group, channel or chat.

* Request: ``POST {base}/bot<token>/sendMessage`` with ``{"chat_id", "text", "parse_mode":
  "HTML", "link_preview_options": {"is_disabled": true}}`` (and ``message_thread_id`` for a
  forum topic, ``disable_notification``). https://core.telegram.org/bots/api#sendmessage
* HTML mode: every ``<``, ``>``, ``&`` (and ``"`` in attributes) that is not markup is an
  entity; ``html.escape`` does exactly that (its ``&#x27;`` is a numeric entity, which
  Telegram accepts). Only ``b``, ``a href`` and ``blockquote`` are used; the ticket is a
  link only when its URL has a host (Telegram refuses the message otherwise), else text.
  https://core.telegram.org/bots/api#html-style
* The text is at most 4096 characters after entity parsing (counted here in UTF-16 units,
  as Telegram counts entity offsets): the headline, each fact and the ticket's label or text
  are clipped on their own before escaping (an agent name or dialog id from the helpdesk can
  be any length, and a message over the limit is refused for good), a digest's lines left
  out from the end, then the comment clipped.
* Answer: ``{"ok": true, "result": {"message_id", …}}``; errors ``{"ok": false,
  "error_code", "description", "parameters": {"retry_after" | "migrate_to_chat_id"}}``. A 429
  says how long to wait only in ``parameters.retry_after`` (no header): it is honoured, bounded
  as a Retry-After is, whether it comes with HTTP 429 or inside a 2xx (a proxy's shorter
  ``Retry-After`` beside it does not shorten it). A
  group upgraded to a supergroup answers 400 with ``migrate_to_chat_id``: the error names the
  new id to configure (the alert is not sent somewhere the configuration does not say).
  ``ok: false`` means the request was unsuccessful, whatever the HTTP status: it is
  classified by its ``error_code`` (a 400 whose body says 429 waits its ``retry_after``; a
  502 whose body says 400 is permanent), the error keeping the HTTP status. A 2xx without
  ``ok`` (a body cut off or unreadable, a proxy's page) may hide a posted message: an outcome
  unknown, never a blind resend; so does a 500, 502 or gateway timeout without Telegram's
  ``ok: false`` (a proxy's page, an answer that may come after the message was posted).
  https://core.telegram.org/bots/api#making-requests
* The URL carries the bot token: errors name the host only. Nothing can be looked up, so an
  attempt whose outcome is unknown is recorded as sent unconfirmed, or sent again
  (``on_unknown_outcome``).
"""

from __future__ import annotations

import html
import math
import re
from typing import Any
from urllib.parse import urlsplit

import requests

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.calls import response_json
from csat_hook.helpdesks.payload import as_text
from csat_hook.helpdesks.payload import dig
from csat_hook.helpdesks.reasons import ErrorItem
from csat_hook.helpdesks.reasons import compose_reason
from csat_hook.helpdesks.records import SendResult
from csat_hook.helpdesks.transport import is_retryable_status
from csat_hook.helpdesks.transport import vendor_reason
from csat_hook.notify.base import Destination
from csat_hook.notify.base import Settle
from csat_hook.notify.options import TelegramOptions
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.render import clip
from csat_hook.notify.render import clip_units
from csat_hook.notify.render import comment_of
from csat_hook.notify.render import fact_lines
from csat_hook.notify.render import footer
from csat_hook.notify.render import headline
from csat_hook.notify.render import item_line
from csat_hook.notify.render import one_line
from csat_hook.notify.render import units
from csat_hook.retry import longest_wait

MAX_TEXT = 4096
# A line (the headline, a fact, the ticket as text) and the link's label, clipped before
# escaping: however long a name or an id, the headline, link and footer fit.
LINE_LIMIT = 500
LABEL_LIMIT = 100


def escape(text: str) -> str:
    return html.escape(text, quote=True)


def linkable(url: str) -> bool:
    """Whether ``url`` can be a link: absolute http(s) with a host. Telegram refuses a link
    without a host, and the whole message with it (400 "Bad Request: URL host is empty"), so a
    ``ticket_url_template`` such as ``/tickets/{ticket}`` would fail every alert for good."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _visible(lines: list[str]) -> int:
    """What Telegram counts of ``lines`` joined: the text after entity parsing, in UTF-16."""
    text = re.sub(r"<[^>]+>", "", "\n".join(lines))
    return units(html.unescape(text))


class TelegramDestination(Destination):
    kind = "telegram"
    options: TelegramOptions

    def text(self, message: AlertMessage) -> str:
        """The message in Telegram's HTML, within 4096 visible characters: a digest's items,
        then its per-agent lines, are left out from the end (and counted), then the comment
        is clipped."""
        head = [f"<b>{escape(clip(headline(message), LINE_LIMIT))}</b>"]
        facts = [escape(clip(line, LINE_LIMIT)) for line in fact_lines(message)]
        link = []
        if message.ticket_url and linkable(message.ticket_url):
            label = escape(
                clip(f"Open ticket {one_line(message.dialog_id or '')}".strip(), LABEL_LIMIT)
            )
            link.append(f'<a href="{escape(message.ticket_url)}">{label}</a>')
        elif message.ticket_url:
            link.append(escape(clip(f"Ticket: {one_line(message.ticket_url)}", LINE_LIMIT)))
        items = [
            "• " + escape(item_line(item, message, include_comment=self.include_comment))
            for item in message.items
        ]
        title = ["", "<b>Lowest-rated answers</b>"] if items else []
        footer_line = f"<i>{escape(footer(message))}</i>"
        left_out = 0

        def lines() -> list[str]:
            more = [f"… {left_out} more not shown"] if left_out else []
            return head + facts + link + title + items + more + [footer_line]

        for trimmed in (items, facts):
            while trimmed and _visible(lines()) > MAX_TEXT:
                trimmed.pop()
                left_out += 1
        comment = comment_of(message, include_comment=self.include_comment)
        room = MAX_TEXT - _visible(lines()) - 1  # the line break before it
        body = lines()
        if comment and room > 1:
            if units(comment) > room:
                comment = clip_units(comment, room)
            body.insert(len(head + facts + link), f"<blockquote>{escape(comment)}</blockquote>")
        return "\n".join(body)

    def send(self, message: AlertMessage) -> SendResult:
        options = self.options
        payload: dict[str, Any] = {
            "chat_id": options.chat_id,
            "text": self.text(message),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if options.message_thread_id is not None:
            payload["message_thread_id"] = options.message_thread_id
        if options.disable_notification:
            payload["disable_notification"] = True
        said: dict[str, Any] = {}

        def explain(response: requests.Response) -> str | None:
            body = response_json(response)
            said["retry_after"] = dig(body, "parameters.retry_after")
            said["migrate_to"] = dig(body, "parameters.migrate_to_chat_id")
            if not isinstance(body, dict):
                return None
            said_code = body.get("error_code")
            if body.get("ok") is False and type(said_code) is int:
                said["code"] = said_code
            return compose_reason([ErrorItem(message=body.get("description"))], (payload["text"],))

        url = f"{options.base_url}/bot{options.bot_token.get_secret_value()}/sendMessage"
        try:
            response = self.http.request(
                "POST", url, json=payload, explain=explain, refused=_own_refusal
            )
        except DeliveryError as exc:
            code = said.get("code")
            if isinstance(code, int) and code != exc.http_status:
                # Telegram's ok=false under another status (a proxy's, a local Bot API
                # server's): its error_code is its word, as inside a 2xx below.
                exc = DeliveryError(
                    exc.message,
                    retryable=is_retryable_status(code),
                    http_status=exc.http_status,
                    retry_after=exc.retry_after,
                    vendor_reason=exc.vendor_reason,
                    outcome_unknown=exc.outcome_unknown,
                )
                raise self._explained(exc, said, code=code) from exc
            raise self._explained(exc, said) from exc
        body = response_json(response)
        if isinstance(body, dict) and body.get("ok") is True:
            return SendResult(external_id=as_text(dig(body, "result.message_id")))
        status = response.status_code
        if isinstance(body, dict) and body.get("ok") is False:
            # Telegram's own word that the request was unsuccessful (it normally comes with
            # its HTTP status): nothing was posted, so it is classified as that status would
            # be, by its error_code.
            # Its parameters (retry_after, migrate_to_chat_id) count as they would with the
            # status: a flood wait inside a 200 is honoured, not retried on our own schedule.
            said_code = body.get("error_code")
            code = said_code if type(said_code) is int else None
            reason = vendor_reason(explain, response)
            refused = f"{self.name}: Telegram answered HTTP {status} with ok=false"
            raise self._explained(
                DeliveryError(
                    f"{refused}: {reason}" if reason else refused,
                    retryable=code is not None and is_retryable_status(code),
                    http_status=status,
                    vendor_reason=reason,
                ),
                said,
                code=code,
            )
        # A 2xx whose body is not Telegram's answer (cut off, unreadable, a proxy's page): the
        # message may well have been posted. Unknown: settled as on_unknown_outcome says
        # (recorded unconfirmed by default), never a blind resend.
        raise DeliveryError(
            f"{self.name}: Telegram answered HTTP {status} without ok=true (outcome unknown)",
            retryable=True,
            http_status=status,
            outcome_unknown=True,
        )

    def _explained(
        self, exc: DeliveryError, said: dict[str, Any], code: int | None = None
    ) -> DeliveryError:
        """``exc`` in Telegram's words. ``code`` is the answer's ``error_code`` when it differs
        from the HTTP status (an ``ok: false`` inside a 2xx, or under a proxy's status); else
        the status is the code."""
        where = f"alerts.destinations.{self.name}"
        if code is None:
            code = exc.http_status
        migrate = said.get("migrate_to")
        if isinstance(migrate, int) and not isinstance(migrate, bool):
            return exc.reworded(
                f"Telegram: the group became the supergroup {migrate}: set {where}.chat_id "
                f"to {migrate}",
                retryable=False,
            )
        wait = said.get("retry_after")
        if code == 429 and isinstance(wait, int | float) and not isinstance(wait, bool):
            # Each says "not before": a proxy's Retry-After beside the body's flood wait
            # must not shorten it (Telegram answers an early retry with another 429).
            return DeliveryError(
                exc.message,
                retryable=True,
                http_status=exc.http_status,
                retry_after=longest_wait((exc.retry_after, _seconds(wait))),
                vendor_reason=exc.vendor_reason,
            )
        if code in (401, 404):
            return exc.reworded(
                f"Telegram refused the bot token (error {code}): check {where}.bot_token",
                retryable=False,
            )
        return exc

    def settle(self, message: AlertMessage) -> Settle:
        return self.options.on_unknown_outcome


def _own_refusal(response: requests.Response) -> bool:
    """Telegram's own ``ok: false``: the request was unsuccessful, whatever the HTTP status
    (a 500 or 502 with it is retried as a failure, not settled as an unknown outcome)."""
    body = response_json(response)
    return isinstance(body, dict) and body.get("ok") is False


def _seconds(wait: float) -> float:
    """A JSON number as seconds: an integer too large for a float (JSON has no bound) is
    infinite, which the retry policy caps, not an OverflowError out of the send (an unexpected
    error after the request went out: an outcome unknown, recorded as sent by default)."""
    try:
        return float(wait)
    except OverflowError:
        return math.inf
