"""A fake helpdesk API on loopback, for demos, end-to-end tests and benchmarks.

Every request to any path is recorded and answered ``200 {"id": <n>}`` unless a failure was
scripted. A successful ``POST``/``PUT``/``PATCH`` is also stored as a message of the dialog its
path names, and ``GET`` on a path ending in ``/messages`` lists what was stored there:
``{"messages": [{"id", "text", "created_at", "direction": "outgoing", "private": false}]}``
(``text`` is the body's ``text`` or ``content``, else the whole body as JSON). That is the
listing the generic adapter's ``lookup`` reads, and how benchmarks count what a vendor holds.

Control endpoints (JSON):

* ``GET /_fake/requests``: the recorded requests (method, path, query, headers, body);
* ``DELETE /_fake/requests``: forget them;
* ``GET /_fake/messages``: the stored messages by path;
* ``POST /_fake/fail`` with ``{"count": 3, "status": 503}``: fail the next N API calls
  (``"retry_after": 1`` adds that header).

Options for load tests and drills: ``fail_ratio`` fails that share of calls at random;
``slow_ratio`` answers that share of writes only after ``slow_seconds`` (the message is stored
on arrival, or at the end of the delay with ``store_late``, as a vendor still working on it);
``drop_ratio`` stores that share of writes and closes the connection without answering.
``idempotent`` answers a repeated ``Idempotency-Key`` with the first answer, changing nothing
(as vendors that honour such a key do); such requests are recorded with ``"replayed": true``.
The same behaviours can be scripted for the next calls: :meth:`FakeHelpdesk.fail_next`,
:meth:`FakeHelpdesk.drop_next`, :meth:`FakeHelpdesk.delay_next`.

``POST …/oauth2/token`` (an OAuth2 client-credentials grant, as Help Scout's) is recorded and
answered with a bearer token, so adapters that authenticate that way work against the fake.

``GET`` of one dialog, as the adapters that read its status right before a reply ask it
(:data:`DIALOG_PATHS`), is answered in that vendor's shape of a dialog still closed: Zendesk's
solved ticket, Help Scout's closed conversation, Freshdesk's resolved ticket; or with what
:meth:`FakeHelpdesk.answer_dialog` set for that path (a dialog reopened since its close).

Not a product path: it exists so the real service can be exercised without a helpdesk.
"""

from __future__ import annotations

import json
import random
import re
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

from csat_hook.devtools.loopback import LoopbackServer

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _closed_dialog(vendor: str) -> dict[str, Any]:
    if vendor == "zendesk":
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"ticket": {"status": "solved", "updated_at": stamp}}
    if vendor == "helpscout":
        return {"status": "closed"}
    return {"status": 4}  # freshdesk: Resolved


# The paths of one dialog whose status an adapter reads before a reply, and whose shape
# (zendesk: Show Ticket; helpscout: Get Conversation; freshdesk: View a Ticket) answers them.
DIALOG_PATHS = (
    (re.compile(r".*/api/v2/tickets/[^/]+\.json"), "zendesk"),
    (re.compile(r".*/v2/conversations/[^/]+"), "helpscout"),
    (re.compile(r".*/api/v2/tickets/[^/]+"), "freshdesk"),
)


@dataclass(frozen=True)
class Scripted:
    """What to do with one coming API call: answer ``status`` (a failure), or ``drop`` the
    connection, or answer after ``delay`` seconds; ``store`` says whether a write is kept."""

    status: int = 200
    retry_after: float | None = None
    drop: bool = False
    delay: float = 0.0
    store: bool = True
    store_late: bool = False


@dataclass
class Answer:
    """How the handler answers one recorded call."""

    status: int
    body: Any
    headers: dict[str, str]
    delay: float = 0.0
    drop: bool = False
    late_message: tuple[str, Any, int] | None = None  # (path, body, id) stored after the delay


def created(number: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The answer (body, headers) to a write that created message ``number``: its id where
    each vendor puts it (the generic ``id``, Chatwoot's and Freshdesk's ``id``, Zendesk's
    audit comment, Intercom's last conversation part, Help Scout's ``Resource-ID``), as an
    adapter takes a 2xx without it for a proxy's page, not the API's answer."""
    body = {
        "id": number,
        "status": "sent",
        "audit": {"id": number, "events": [{"id": number, "type": "Comment"}]},
        "conversation_parts": {"conversation_parts": [{"id": str(number)}]},
    }
    return body, {"Resource-ID": str(number)}


class FakeHelpdesk(LoopbackServer):
    """Start with :meth:`start` (background thread) or :meth:`serve_forever`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        log_file: Path | None = None,
        echo: bool = False,
        latency: float = 0.0,
        fail_ratio: float = 0.0,
        fail_status: int = 503,
        idempotent: bool = False,
        slow_ratio: float = 0.0,
        slow_seconds: float = 20.0,
        store_late: bool = False,
        drop_ratio: float = 0.0,
        seed: int = 7,
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}
        # Random failures (load tests) and Idempotency-Key support (as vendors that honour one:
        # a repeated key gets the first answer again and changes nothing).
        self.fail_ratio = fail_ratio
        self.fail_status = fail_status
        self.idempotent = idempotent
        self.slow_ratio = slow_ratio
        self.slow_seconds = slow_seconds
        self.store_late = store_late
        self.drop_ratio = drop_ratio
        self._random = random.Random(seed)
        self._answers_by_key: dict[str, tuple[int, Any, dict[str, str]]] = {}
        # Scripted behaviours of the next API calls, in order (fail_next, drop_next...).
        self.failures: deque[Scripted] = deque()
        self.lock = threading.Lock()
        self.log_file = log_file
        self.echo = echo
        self.latency = latency
        self._counter = 0
        # Path → the answer to a GET of that dialog (answer_dialog), over DIALOG_PATHS' own.
        self.dialogs: dict[str, Any] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: with Nagle's algorithm on a keep-alive
            # connection the body waits for the client's delayed ACK (~20-40 ms per request).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                # Bytes go as they are (a proxy's HTML page, an empty answer), else JSON.
                raw = isinstance(body, bytes)
                data = body if raw else json.dumps(body, ensure_ascii=False).encode("utf-8")
                headers = dict(headers or {})
                kind = headers.pop("Content-Type", "text/html" if raw else "application/json")
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    # The client gave up (timed out, was killed): a real server's write fails
                    # the same way, after it has done the work.
                    self.close_connection = True

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                if parts.path.startswith("/_fake/"):
                    self._control(parts.path, raw)
                    return
                if fake.latency:
                    time.sleep(fake.latency)
                answer = fake.record(
                    self.command, parts.path, parts.query, dict(self.headers.items()), raw
                )
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.late_message is not None:
                    fake.store(*answer.late_message)
                if answer.drop:
                    # No answer at all: the client sees the connection close after its
                    # request was taken (and, here, acted on).
                    self.close_connection = True
                    return
                self._reply(answer.status, answer.body, answer.headers)

            def _control(self, path: str, raw: bytes) -> None:
                if path == "/_fake/requests" and self.command == "GET":
                    with fake.lock:
                        self._reply(200, fake.requests)
                elif path == "/_fake/requests" and self.command == "DELETE":
                    with fake.lock:
                        fake.requests.clear()
                    self._reply(200, {"cleared": True})
                elif path == "/_fake/messages" and self.command == "GET":
                    self._reply(200, fake.messages_by_path())
                elif path == "/_fake/fail" and self.command == "POST":
                    spec = json.loads(raw or b"{}")
                    fake.fail_next(
                        int(spec.get("count", 1)),
                        int(spec.get("status", 503)),
                        spec.get("retry_after"),
                    )
                    self._reply(200, {"scripted": True})
                else:
                    self._reply(404, {"error": "unknown control endpoint"})

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # --- scripting -------------------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        status: int = 503,
        retry_after: float | None = None,
        *,
        store: bool = False,
    ) -> None:
        """Answer the next ``count`` API calls with ``status``; a write is stored first only
        with ``store`` (a vendor that failed after its commit)."""
        with self.lock:
            scripted = Scripted(status=status, retry_after=retry_after, store=store)
            self.failures.extend([scripted] * count)

    def drop_next(self, count: int = 1, *, store: bool = True) -> None:
        """Close the connection of the next ``count`` API calls without answering; a write is
        stored first unless ``store`` is False."""
        with self.lock:
            self.failures.extend([Scripted(drop=True, store=store)] * count)

    def delay_next(self, count: int = 1, seconds: float = 1.0, *, store_late: bool = False) -> None:
        """Answer the next ``count`` API calls after ``seconds``; a write is stored on arrival,
        or at the end of the delay with ``store_late``."""
        with self.lock:
            self.failures.extend([Scripted(delay=seconds, store_late=store_late)] * count)

    # --- recording -------------------------------------------------------------------------

    def record(
        self, method: str, path: str, query: str, headers: dict[str, str], raw: bytes
    ) -> Answer:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        key = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), None)
        write = method in WRITE_METHODS
        with self.lock:
            self._counter += 1
            entry = {
                "n": self._counter,
                "at": time.time(),
                "method": method,
                "path": path,
                "query": dict(parse_qsl(query)),
                "headers": headers,
                "body": body,
            }
            if self.idempotent and key in self._answers_by_key:
                entry["answered"], entry["replayed"] = self._answers_by_key[key][0], True
                self.requests.append(entry)
                status, answer, extra = self._answers_by_key[key]
                return Answer(status, answer, extra)
            action = self.failures.popleft() if self.failures else None
            if action is None and self.fail_ratio and self._random.random() < self.fail_ratio:
                action = Scripted(status=self.fail_status, store=False)
            # Drawn in a fixed order from one seeded generator: a run is reproducible.
            if action is None and write and self._draw(self.drop_ratio):
                action = Scripted(drop=True)
            if action is None and write and self._draw(self.slow_ratio):
                action = Scripted(delay=self.slow_seconds, store_late=self.store_late)
            failed = action is not None and action.status != 200
            entry["answered"] = action.status if action else 200
            if action is not None and action.drop:
                entry["answered"] = "dropped"
            if action is not None and action.delay:
                entry["delayed"] = action.delay
            self.requests.append(entry)
            number = self._counter
            # The key is kept with what the write did: a write stored and then unanswered (the
            # connection dropped) is replayed too, as a vendor that stored it would.
            stored = not (action and action.drop and not action.store)
            if self.idempotent and key and not failed and stored:
                self._answers_by_key[key] = (200, *created(number))
        if self.log_file:
            with self.log_file.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        if self.echo:
            print(
                f"{method} {path} -> {entry['answered']}: "
                f"{json.dumps(body, ensure_ascii=False)[:300]}",
                file=sys.stderr,
                flush=True,
            )
        if action is not None and failed:
            if write and action.store:
                self.store(path, body, number)
            extra = (
                {"Retry-After": str(action.retry_after)} if action.retry_after is not None else {}
            )
            return Answer(action.status, {"error": f"scripted failure {action.status}"}, extra)
        delay = action.delay if action else 0.0
        drop = bool(action and action.drop)
        if method == "POST" and path.endswith("/oauth2/token"):
            token = {"token_type": "bearer", "access_token": f"fake-token-{number}"}
            return Answer(200, {**token, "expires_in": 7200}, {}, delay=delay, drop=drop)
        if method == "GET" and path.endswith("/messages"):
            return Answer(200, {"messages": self.messages_at(path)}, {}, delay=delay, drop=drop)
        dialog = self.dialog_at(path) if method == "GET" else None
        if dialog is not None:
            return Answer(200, dialog, {}, delay=delay, drop=drop)
        late = None
        if write and (action is None or action.store):
            if action is not None and action.store_late:
                late = (path, body, number)
            else:
                self.store(path, body, number)
        answer = Answer(200, *created(number), delay=delay, drop=drop)
        answer.late_message = late
        return answer

    def answer_dialog(self, path: str, body: Any) -> None:
        """Answer a GET of ``path`` (one dialog) with ``body`` from now on: a dialog reopened
        since its close, in its vendor's shape."""
        with self.lock:
            self.dialogs[path] = body

    def dialog_at(self, path: str) -> Any | None:
        """The answer to a GET of one dialog at ``path`` (see :data:`DIALOG_PATHS`), or None
        when ``path`` names no dialog."""
        with self.lock:
            if path in self.dialogs:
                return self.dialogs[path]
        for pattern, vendor in DIALOG_PATHS:
            if pattern.fullmatch(path):
                return _closed_dialog(vendor)
        return None

    def _draw(self, ratio: float) -> bool:
        return bool(ratio) and self._random.random() < ratio

    def store(self, path: str, body: Any, message_id: int | None = None) -> dict[str, Any]:
        """Keep a posted message in the dialog ``path`` names (its id: the request's number,
        as answered); return it."""
        text = body.get("text", body.get("content")) if isinstance(body, dict) else body
        if not isinstance(text, str):
            text = json.dumps(body, ensure_ascii=False)
        with self.lock:
            if message_id is None:
                self._counter += 1
                message_id = self._counter
            message = {
                "id": message_id,
                "text": text,
                "created_at": datetime.now(UTC).isoformat(),
                "direction": "outgoing",
                "private": False,
            }
            self.messages.setdefault(path, []).append(message)
        return message

    def api_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)

    def messages_at(self, path: str) -> list[dict[str, Any]]:
        """The messages stored in the dialog ``path`` names, oldest first."""
        with self.lock:
            return list(self.messages.get(path, []))

    def messages_by_path(self) -> dict[str, list[dict[str, Any]]]:
        with self.lock:
            return {path: list(items) for path, items in self.messages.items()}
