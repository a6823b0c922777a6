"""Fake alert receivers on loopback: a Slack incoming webhook, the Telegram Bot API's
``sendMessage`` and a Standard Webhooks receiver, for tests, benchmarks and demos.

Each accepts only what the real service accepts, as far as it is documented, and answers the
way it answers:

* **Slack** ``POST /services/<T>/<B>/<X>`` (configured hooks only, else ``404 no_service``):
  ``Content-Type: application/json``, a JSON object of known top-level keys
  (``invalid_payload``), some ``text``/``blocks`` (``no_text``), Block Kit blocks of the types
  and limits an alert uses (``invalid_blocks``: 1–50 blocks, exact keys, text objects of
  1–3000 characters with ``emoji`` only on ``plain_text`` and ``verbatim`` only on
  ``mrkdwn``, both booleans; a section's text and/or 1–10 fields of ≤ 2000, ``plain_text``
  headers ≤ 150, buttons ≤ 75, context elements 1–10, unique ids). Lengths are counted in
  UTF-16 code units, the stricter reading of Slack's "characters" (an emoji outside the BMP
  is two): what fits here fits however Slack counts. Beyond Slack's rules, as this project's
  policy, mrkdwn (the blocks' and the top-level ``text``) may hold no raw ``<`` or ``>`` but
  in ``<http(s)://url|label>`` links (and a line's leading quote marker in blocks): an alert
  mentions no one, so a ``<!channel>``, ``<@U…>`` or ``<#C…>`` there is customer text that
  reached mrkdwn unescaped. Success is ``200 ok`` in plain text.
* **Telegram** ``POST /bot<token>/sendMessage`` (known tokens, else ``401 Unauthorized``; a
  malformed one ``404 Not Found``): ``chat_id`` known (``400 chat not found``), HTML parse
  mode with only Telegram's tags and the four named entities (``can't parse entities``), links
  with a host (``URL host is empty``), at most 4096 visible characters counted in UTF-16
  (``message is too long``). Success is
  ``{"ok": true, "result": {"message_id", "chat", "date", "text": <visible text>}}``.
* **Webhook** ``POST /hooks/<name>``: verifies ``webhook-signature`` (v1, HMAC-SHA256 over
  ``id.timestamp.body`` with the configured ``whsec_`` secret; 401 otherwise) and the
  timestamp (±5 minutes), and keeps one message per ``webhook-id`` (a repeat is answered 200
  and recorded as a duplicate, as the specification asks receivers to do).

Every request is recorded. Failures can be scripted for the next requests: an HTTP status
with the service's own error body (and ``Retry-After``), a delay (the message is taken when
the request arrives, the answer comes late), or a dropped connection after taking it.

Not a product path: it exists so alert delivery can be exercised without accounts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from csat_hook.devtools.loopback import LoopbackServer

SLACK_TOP_KEYS = frozenset(
    {
        "text",
        "blocks",
        "attachments",
        "thread_ts",
        "mrkdwn",
        "unfurl_links",
        "unfurl_media",
        "metadata",
        "username",
        "icon_emoji",
        "icon_url",
        "channel",
        "link_names",
        "parse",
        "reply_broadcast",
    }
)
TELEGRAM_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
        "tg-time",
    }
)
TELEGRAM_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})
# A raw "<" in an alert's mrkdwn may only open a link (an alert mentions no one).
_SLACK_LINK = re.compile(r"<https?://[^|<>\s]+(?:\|[^<>]*)?>")
TOLERANCE_SECONDS = 300


class InvalidError(Exception):
    """What the fake refuses, with the service's error code."""


@dataclass
class Script:
    """What to do with one coming request: answer ``status`` with ``body`` (when the status
    is not 200 or a body is given), else the service's own answer, after ``delay``, or a
    dropped connection."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


@dataclass
class Received:
    """A request as the fake saw it."""

    service: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int | str
    accepted: bool = False
    duplicate: bool = False
    at: float = 0.0
    reply: Any = None  # what the fake answered (Telegram's result holds the visible text)

    def json(self) -> Any:
        return json.loads(self.body)


class FakeNotify(LoopbackServer):
    """Start with :meth:`start`; configure receivers with :meth:`slack_hook`,
    :meth:`telegram_bot` and :meth:`webhook`."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, now: Callable[[], float] = time.time
    ) -> None:
        # The receiver's clock, against which webhook timestamps are judged (tests that run
        # the service on a fake clock give the same one here).
        self.now = now
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.hooks: set[str] = set()
        self.bots: dict[str, set[str]] = {}
        self.receivers: dict[str, bytes] = {}
        self._seen_ids: dict[str, set[str]] = {}
        self._message_id = 100
        self.scripts: dict[str, deque[Script]] = {
            "slack": deque(),
            "telegram": deque(),
            "webhook": deque(),
        }
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = urlsplit(self.path).path
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, body, extra, delay, drop = fake.handle(path, headers, raw)
                if delay:
                    time.sleep(delay)
                if drop:
                    self.close_connection = True
                    return
                data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
                kind = (
                    "text/plain; charset=utf-8" if isinstance(body, bytes) else "application/json"
                )
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    self.close_connection = True

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- configuration ---------------------------------------------------------------------

    def slack_hook(self, path: str = "/services/T0CSAT/B0ALERTS/Xk3y5ecret") -> str:
        """Accept a Slack webhook at ``path``; its URL."""
        self.hooks.add(path)
        return self.url + path

    def telegram_bot(self, token: str, *chats: str) -> str:
        """Accept a bot ``token`` posting to ``chats``; the Bot API base URL."""
        self.bots[token] = set(chats)
        return self.url

    def webhook(self, name: str, secret: str) -> str:
        """Accept signed webhooks at ``/hooks/<name>`` with ``secret`` (``whsec_…``)."""
        self.receivers[name] = base64.b64decode(secret.removeprefix("whsec_"))
        self._seen_ids[name] = set()
        return f"{self.url}/hooks/{name}"

    def script(self, service: str, *scripts: Script) -> None:
        """Answer the next requests to ``service`` (slack, telegram, webhook) as scripted."""
        with self.lock:
            self.scripts[service].extend(scripts)

    # --- what arrived ----------------------------------------------------------------------

    def delivered(self, service: str) -> list[Received]:
        """Messages the service took (a duplicate webhook-id is not a message)."""
        with self.lock:
            return [r for r in self.received if r.service == service and r.accepted]

    def requests(self, service: str | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.received if service is None or r.service == service]

    # --- handling --------------------------------------------------------------------------

    def handle(
        self, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str], float, bool]:
        service = _service(path)
        record = Received(service, path, headers, raw, answered=0, at=time.time())
        with self.lock:
            self.received.append(record)
            script = self.scripts[service].popleft() if self.scripts.get(service) else None
        # A script with a status other than 200, or with a body, answers as written (a 200
        # with a body of its own: what a proxy or a cut-off answer looks like); a bare one
        # only delays or drops the service's own answer.
        if script is not None and (script.status != 200 or script.body is not None):
            record.answered = script.status
            return script.status, script.body, script.headers, script.delay, False
        if service == "slack":
            status, body = self._slack(path, headers, raw)
        elif service == "telegram":
            status, body = self._telegram(path, raw)
        elif service == "webhook":
            status, body = self._webhook(path, headers, raw, record)
        else:
            status, body = 404, b"not found"
        with self.lock:
            record.reply = body
            record.accepted = status == 200 and not record.duplicate
            record.answered = "dropped" if script is not None and script.drop else status
        if script is not None:
            return status, body, script.headers, script.delay, script.drop
        return status, body, {}, 0.0, False

    def _slack(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if path not in self.hooks:
            return 404, b"no_service"
        if not headers.get("content-type", "").startswith("application/json"):
            return 400, b"invalid_payload"
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return 400, b"invalid_payload"
        if not isinstance(body, dict) or set(body) - SLACK_TOP_KEYS:
            return 400, b"invalid_payload"
        text, blocks = body.get("text"), body.get("blocks")
        if text is not None and not isinstance(text, str):
            return 400, b"invalid_payload"
        if not text and not blocks and not body.get("attachments"):
            return 400, b"no_text"
        try:
            _check_mrkdwn(text or "", quotes=False)
            if blocks is not None:
                _check_blocks(blocks)
        except InvalidError:
            return 400, b"invalid_blocks"
        return 200, b"ok"

    def _telegram(self, path: str, raw: bytes) -> tuple[int, Any]:
        match = re.fullmatch(r"/bot([^/]+)/sendMessage", path)
        if match is None or not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", match.group(1)):
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        chats = self.bots.get(match.group(1))
        if chats is None:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _tg_error(400, "Bad Request: invalid JSON")
        chat = str(body.get("chat_id", "")) if isinstance(body, dict) else ""
        if not chat:
            return _tg_error(400, "Bad Request: chat_id is empty")
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return _tg_error(400, "Bad Request: message text is empty")
        visible = text
        if body.get("parse_mode") == "HTML":
            parser = _TelegramHtml()
            parser.feed(text)
            parser.close()
            if parser.error or parser.stack:
                return _tg_error(400, parser.error or "Bad Request: can't parse entities")
            visible = "".join(parser.visible)
        if len(visible.encode("utf-16-le")) // 2 > 4096:
            return _tg_error(400, "Bad Request: message is too long")
        if not visible.strip():
            return _tg_error(400, "Bad Request: message text is empty")
        if chat not in chats:
            return _tg_error(400, "Bad Request: chat not found")
        with self.lock:
            self._message_id += 1
            message_id = self._message_id
        return 200, {
            "ok": True,
            "result": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {
                    "id": int(chat) if chat.lstrip("-").isdigit() else chat,
                    "type": "supergroup",
                },
                "text": visible,
            },
        }

    def _webhook(
        self, path: str, headers: dict[str, str], raw: bytes, record: Received
    ) -> tuple[int, Any]:
        name = path.removeprefix("/hooks/")
        key = self.receivers.get(name)
        if key is None:
            return 404, {"error": "unknown receiver"}
        message_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        if not message_id or "." in message_id or not stamp.isdigit():
            return 400, {"error": "missing webhook headers"}
        if abs(self.now() - int(stamp)) > TOLERANCE_SECONDS:
            return 401, {"error": "timestamp outside the tolerance"}
        expected = base64.b64encode(
            hmac.new(key, f"{message_id}.{stamp}.".encode() + raw, hashlib.sha256).digest()
        ).decode()
        given = [part.split(",", 1) for part in headers.get("webhook-signature", "").split(" ")]
        if not any(
            len(part) == 2 and part[0] == "v1" and hmac.compare_digest(part[1], expected)
            for part in given
        ):
            return 401, {"error": "bad signature"}
        with self.lock:
            seen = self._seen_ids[name]
            record.duplicate = message_id in seen
            seen.add(message_id)
        return 200, {"received": True}


def _service(path: str) -> str:
    if path.startswith("/services/"):
        return "slack"
    if path.startswith("/bot"):
        return "telegram"
    if path.startswith("/hooks/"):
        return "webhook"
    return "other"


def _tg_error(code: int, description: str) -> tuple[int, dict[str, Any]]:
    return code, {"ok": False, "error_code": code, "description": description}


class _TelegramHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.visible: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self.error = f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"'
        if tag == "a":
            # A link's URL needs a host (one without a scheme is taken as http://).
            href = dict(attrs).get("href") or ""  # the parser unescapes attributes
            if not urlsplit(href if "://" in href else "http://" + href).hostname:
                self.error = "Bad Request: URL host is empty"
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.error = "Bad Request: can't parse entities: Can't find end tag"

    def handle_data(self, data: str) -> None:
        if "<" in data or ">" in data:
            self.error = "Bad Request: can't parse entities"
        self.visible.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in TELEGRAM_ENTITIES:
            self.error = f'Bad Request: can\'t parse entities: Unsupported entity "{name}"'
        self.visible.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.visible.append(html.unescape(f"&#{name};"))


def _check_mrkdwn(text: str, *, quotes: bool = True) -> None:
    """No raw ``<`` or ``>`` but in links and (``quotes``) a line's leading quote marker:
    anything else is text that should have been escaped, or a mention no alert makes."""
    for line in _SLACK_LINK.sub("", text).split("\n"):
        body = line[1:] if quotes and line.startswith(">") else line
        if "<" in body or ">" in body:
            raise InvalidError("raw markup characters")


def _units(text: str) -> int:
    """``text``'s length in UTF-16 code units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _text(obj: Any, *, limit: int, plain: bool = False) -> None:
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        raise InvalidError("text object")
    if plain and obj["type"] != "plain_text":
        raise InvalidError("plain_text required")
    flag = "emoji" if obj["type"] == "plain_text" else "verbatim"
    if set(obj) - {"type", "text", flag} or not isinstance(obj.get("text"), str):
        raise InvalidError("text keys")
    if flag in obj and not isinstance(obj[flag], bool):
        raise InvalidError(f"{flag} is a boolean")
    if not 1 <= _units(obj["text"]) <= limit:
        raise InvalidError("text length")
    if obj["type"] == "mrkdwn":
        _check_mrkdwn(obj["text"])


def _check_blocks(blocks: Any) -> None:
    if not isinstance(blocks, list) or not 1 <= len(blocks) <= 50:
        raise InvalidError("1..50 blocks")
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for block in blocks:
        if not isinstance(block, dict):
            raise InvalidError("block")
        block_id = block.get("block_id")
        if block_id is not None:
            if (
                not isinstance(block_id, str)
                or not 1 <= len(block_id) <= 255
                or block_id in block_ids
            ):
                raise InvalidError("block_id")
            block_ids.add(block_id)
        kind = block.get("type")
        if kind == "section":
            fields = block.get("fields")
            if set(block) - {"type", "block_id", "text", "fields"} or (
                "text" not in block and "fields" not in block
            ):
                raise InvalidError("section")
            if "text" in block:
                _text(block["text"], limit=3000)
            if fields is not None:
                if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                    raise InvalidError("section fields")
                for text in fields:
                    _text(text, limit=2000)
        elif kind == "context":
            elements = block.get("elements")
            if set(block) - {"type", "block_id", "elements"} or not isinstance(elements, list):
                raise InvalidError("context")
            if not 1 <= len(elements) <= 10:
                raise InvalidError("context elements")
            for element in elements:
                _text(element, limit=3000)
        elif kind == "actions":
            elements = block.get("elements")
            if set(block) - {"type", "block_id", "elements"} or not isinstance(elements, list):
                raise InvalidError("actions")
            if not 1 <= len(elements) <= 25:
                raise InvalidError("actions elements")
            for element in elements:
                _button(element, action_ids)
        elif kind == "header":
            if set(block) - {"type", "block_id", "text"}:
                raise InvalidError("header")
            _text(block.get("text"), limit=150, plain=True)
        elif kind == "divider":
            if set(block) - {"type", "block_id"}:
                raise InvalidError("divider")
        else:
            raise InvalidError(f"block type {kind!r}")


def _button(element: Any, action_ids: set[str]) -> None:
    if not isinstance(element, dict) or element.get("type") != "button":
        raise InvalidError("button")
    if set(element) - {"type", "text", "action_id", "url", "value", "style"}:
        raise InvalidError("button keys")
    _text(element.get("text"), limit=75, plain=True)
    action_id = element.get("action_id")
    if action_id is not None:
        if (
            not isinstance(action_id, str)
            or not 1 <= len(action_id) <= 255
            or action_id in action_ids
        ):
            raise InvalidError("action_id")
        action_ids.add(action_id)
    url = element.get("url")
    if url is not None and (not isinstance(url, str) or not 1 <= len(url) <= 3000):
        raise InvalidError("button url")
