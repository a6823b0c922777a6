"""A fake helpdesk API on loopback, for demos, end-to-end tests and benchmarks.

Every request to any path is recorded and answered ``200 {"id": <n>}`` unless a failure was
scripted. Control endpoints (JSON):

* ``GET /_fake/requests``: the recorded requests (method, path, query, headers, body);
* ``DELETE /_fake/requests``: forget them;
* ``POST /_fake/fail`` with ``{"count": 3, "status": 503}``: fail the next N API calls
  (``"retry_after": 1`` adds that header).

Options for load tests: ``fail_ratio`` fails that share of calls at random, and
``idempotent`` answers a repeated ``Idempotency-Key`` with the first answer, changing nothing
(as vendors that honour such a key do); such requests are recorded with ``"replayed": true``.

``POST …/oauth2/token`` (an OAuth2 client-credentials grant, as Help Scout's) is recorded and
answered with a bearer token, so adapters that authenticate that way work against the fake.

Not a product path: it exists so the real service can be exercised without a helpdesk.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

from csat_hook.devtools.loopback import LoopbackServer


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
        seed: int = 7,
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        # Random failures (load tests) and Idempotency-Key support (as vendors that honour one:
        # a repeated key gets the first answer again and changes nothing).
        self.fail_ratio = fail_ratio
        self.fail_status = fail_status
        self.idempotent = idempotent
        self._random = random.Random(seed)
        self._answers_by_key: dict[str, tuple[int, Any, dict[str, str]]] = {}
        self.failures: deque[tuple[int, float | None]] = deque()
        self.lock = threading.Lock()
        self.log_file = log_file
        self.echo = echo
        self.latency = latency
        self._counter = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: with Nagle's algorithm on a keep-alive
            # connection the body waits for the client's delayed ACK (~20-40 ms per request).
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                if parts.path.startswith("/_fake/"):
                    self._control(parts.path, raw)
                    return
                if fake.latency:
                    time.sleep(fake.latency)
                status, body, headers = fake.record(
                    self.command, parts.path, parts.query, dict(self.headers.items()), raw
                )
                self._reply(status, body, headers)

            def _control(self, path: str, raw: bytes) -> None:
                if path == "/_fake/requests" and self.command == "GET":
                    with fake.lock:
                        self._reply(200, fake.requests)
                elif path == "/_fake/requests" and self.command == "DELETE":
                    with fake.lock:
                        fake.requests.clear()
                    self._reply(200, {"cleared": True})
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

    def fail_next(self, count: int, status: int = 503, retry_after: float | None = None) -> None:
        with self.lock:
            self.failures.extend([(status, retry_after)] * count)

    def record(
        self, method: str, path: str, query: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        key = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), None)
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
                return self._answers_by_key[key]
            failure = self.failures.popleft() if self.failures else None
            if failure is None and self.fail_ratio and self._random.random() < self.fail_ratio:
                failure = (self.fail_status, None)
            entry["answered"] = failure[0] if failure else 200
            self.requests.append(entry)
            number = self._counter
            if self.idempotent and key and not failure:
                self._answers_by_key[key] = (200, {"id": number, "status": "sent"}, {})
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
        if failure:
            status, retry_after = failure
            extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return status, {"error": f"scripted failure {status}"}, extra
        if method == "POST" and path.endswith("/oauth2/token"):
            return (
                200,
                {
                    "token_type": "bearer",
                    "access_token": f"fake-token-{number}",
                    "expires_in": 7200,
                },
                {},
            )
        return 200, {"id": number, "status": "sent"}, {}

    def api_requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.requests)
