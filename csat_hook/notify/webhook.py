"""A generic webhook: a signed JSON POST, Standard Webhooks v1 (https://www.standardwebhooks.com).

* Headers: ``webhook-id`` (``<alert ref>_<destination>``: the same on every attempt, the
  receiver's idempotency key), ``webhook-timestamp`` (Unix seconds of this attempt) and
  ``webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>``, the key
  being the base64-decoded ``whsec_`` secret; a space-separated second signature with
  ``previous_secret`` while receivers rotate.
* Body: ``{"type": "csat.alert.low_rating" | … | "csat.digest", "timestamp", "data": {…}}``
  (docs/alerts.md documents every field; ``include_comment: false`` leaves the comment out).
  The exact bytes signed are the bytes sent.
* Answer: any 2xx is delivered; 3xx is a failure (redirects are not followed); 410 Gone and
  other 4xx are permanent, but 408, 409, 425 and 429 (with ``Retry-After``) and 5xx but 501
  and 505 are retried (the helpdesk transport's statuses), a 500, 502
  or gateway timeout (which may come after the receiver took the event) as an unknown outcome.
* An attempt whose outcome is unknown is sent again with the same ``webhook-id``: a receiver
  that keeps the ids it processed drops the copy (the specification asks receivers to).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from csat_hook.helpdesks.records import SendResult
from csat_hook.notify.base import Destination
from csat_hook.notify.options import WebhookOptions
from csat_hook.notify.options import signing_key
from csat_hook.notify.records import WEBHOOK_TYPES
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.render import clip
from csat_hook.notify.render import headline

# A comment is sent whole up to this many characters, else cut there ("…" marking the cut,
# ``comment_truncated`` true): the form's own limit is far above what a receiver takes in one
# body (many refuse 1 MB, and a 4xx fails the alert for good). The stored answer, the
# report's CSV files and the helpdesk keep it whole.
MAX_WEBHOOK_COMMENT = 10_000


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{id}.{timestamp}.{body}`` (Standard Webhooks)."""
    if "." in message_id:
        raise ValueError("a webhook id must not contain '.'")
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def figures_data(figures: Any) -> dict[str, Any] | None:
    if figures is None:
        return None
    return {
        "agent": {"key": figures.agent_key, "name": figures.agent_name},
        "answers": figures.answers,
        "satisfied": figures.satisfied,
        "csat": figures.csat,
        "interval": list(figures.interval) if figures.interval else None,
        "p_value": figures.p_value,
    }


def _comment(text: str | None) -> dict[str, Any]:
    """``comment`` (None when left out or absent) and whether it was cut
    (:data:`MAX_WEBHOOK_COMMENT`, on a character boundary)."""
    if text is None or len(text) <= MAX_WEBHOOK_COMMENT:
        return {"comment": text, "comment_truncated": False}
    return {"comment": clip(text, MAX_WEBHOOK_COMMENT), "comment_truncated": True}


def event_body(message: AlertMessage, *, include_comment: bool) -> dict[str, Any]:
    """The documented JSON body (docs/alerts.md, "Webhook payload")."""
    data: dict[str, Any] = {
        "alert_id": message.ref,
        "rule": message.rule,
        "summary": headline(message),
        "scale": {"min": message.scale_min, "max": message.scale_max},
    }
    if message.about_answer:
        data.update(
            {
                "rating": message.rating,
                "previous_rating": message.previous_rating,
                "nps": message.nps,
                **_comment(message.comment if include_comment else None),
                "agent": {"key": message.agent_key, "name": message.agent_name},
                "team": message.team,
                "helpdesk": message.helpdesk,
                "ticket": {"id": message.dialog_id, "url": message.ticket_url},
                "submitted_at": message.submitted_at,
            }
        )
    elif message.event == "agent_below_target":
        data.update(
            {
                "agent": {"key": message.agent_key, "name": message.agent_name},
                "helpdesk": message.helpdesk,
                "target": message.target,
                "window_days": message.window_days,
                "figures": figures_data(message.figures),
            }
        )
    elif message.event == "digest":
        data.update(
            {
                "period": message.period,
                "overall": figures_data(message.figures),
                "agents": [figures_data(a) for a in message.agents],
                "lowest": [
                    {
                        "rating": item.rating,
                        "agent_name": item.agent_name,
                        "ticket": {"id": item.dialog_id, "url": item.ticket_url},
                        **_comment(item.comment if include_comment else None),
                        "submitted_at": item.submitted_at,
                    }
                    for item in message.items
                ],
            }
        )
    else:
        data.update({"destination": message.destination, "held_until": message.held_until})
    return {
        "type": WEBHOOK_TYPES.get(message.event, f"csat.alert.{message.event}"),
        "timestamp": message.created_at,
        "data": data,
    }


class WebhookDestination(Destination):
    kind = "webhook"
    options: WebhookOptions

    def message_id(self, message: AlertMessage) -> str:
        return f"{message.ref}_{self.name}"

    def request(self, message: AlertMessage) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one attempt (the timestamp is the attempt's)."""
        options = self.options
        body = json.dumps(
            event_body(message, include_comment=self.include_comment),
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        message_id = self.message_id(message)
        timestamp = int(self.clock().timestamp())
        keys = [signing_key(options.secret)]
        if options.previous_secret is not None:
            keys.append(signing_key(options.previous_secret))
        headers = {k: v.get_secret_value() for k, v in options.headers.items()}
        headers.update(
            {
                "Content-Type": "application/json",
                "webhook-id": message_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": " ".join(
                    signature(key, message_id, timestamp, body) for key in keys
                ),
            }
        )
        return body, headers

    def send(self, message: AlertMessage) -> SendResult:
        body, headers = self.request(message)
        self.http.request("POST", self.options.url, data=body, headers=headers)
        return SendResult(external_id=headers["webhook-id"])
