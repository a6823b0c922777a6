"""The web front end over real sockets, both ways it runs: the Procfile's ``web:`` line and
``csat-hook serve``. What a well-behaved client library never sends: senders that stall,
malformed framing, bodies over the limit, malformed request lines carrying a secret.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from csat_hook import tokens
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk
from csat_hook.webserver.pending import MAX_BUFFERED_TOTAL
from tests import schema_template
from tests.clicks.conftest import survey_section
from tests.cluster import LocalCluster
from tests.cluster import free_port
from tests.helpers import generic_close
from tests.rawhttp import DEAF
from tests.rawhttp import STALLS
from tests.rawhttp import Stalled
from tests.rawhttp import chunked
from tests.rawhttp import exchange
from tests.rawhttp import request
from tests.rawhttp import status_of

pytestmark = pytest.mark.slow

SECRET = "SECRETTOKEN4242"
HMAC_SECRET = "webserver-hmac-secret"
MAX_BODY = 4096
HOOK = f"/webhooks/generic?token={SECRET}"


def write_config(
    tmp_path: Path,
    fake_url: str,
    *,
    survey: dict[str, Any] | None = None,
    logging: dict[str, Any] | None = None,
    **server: Any,
) -> Path:
    config: dict[str, Any] = {
        "database": {"url": f"sqlite:///{tmp_path / 'web.sqlite3'}"},
        "token": {"secret": "test-token-secret-0123456789"},
        "server": {"max_body_bytes": MAX_BODY, "threads": 2, **server},
        "logging": {"level": "DEBUG", **(logging or {})},
        "sync": {"run_in_serve": False},
        "helpdesks": {
            "generic": {
                "kind": "generic",
                "auth": {"mode": "token", "token": SECRET},
                "reply": {"url": fake_url + "/api/dialogs/{dialog_id}/messages"},
            },
            "signed": {
                "kind": "generic",
                "auth": {
                    "mode": "hmac",
                    "secret": HMAC_SECRET,
                    "signature_header": "X-Sig",
                    "signature_prefix": "sha256=",
                },
                "reply": {"url": fake_url + "/api/dialogs/{dialog_id}/messages"},
            },
        },
    }
    if survey is not None:
        config["survey"] = survey
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Serve:
    """``csat-hook serve --port 0`` in a subprocess (a port of ``$CSAT_TEST_PORTS`` when set:
    :func:`~tests.cluster.free_port`): the port is read from the line it prints."""

    def __init__(self, config: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = cwd / "serve.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        env.pop("DATABASE_URL", None)
        port = str(free_port()) if os.environ.get("CSAT_TEST_PORTS") else "0"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "csat_hook", "-c", str(config), "serve", "--port", port],
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.line = self._listening_line(timeout=30)
        self.port = int(re.search(r"http://127\.0\.0\.1:(\d+)", self.line)[1])  # type: ignore[index]
        self.url = f"http://127.0.0.1:{self.port}"
        _wait_healthy(self.url)

    def _listening_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("csat-hook listening on "):
                    return line
            time.sleep(0.05)
        self.stop()
        raise AssertionError("serve printed no address:\n" + self.log_path.read_text())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


class Procfile:
    """The Procfile's ``web:`` line (gunicorn, one process), its log captured."""

    def __init__(
        self,
        config: Path,
        cwd: Path,
        *,
        log_level: str | None = "info",
        access_log: bool = False,
        extra: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.cluster = LocalCluster(config, cwd, web_workers=1)
        self.cluster.env.update(env or {})
        extra = (*(("--access-logfile", "-") if access_log else ()), *extra)
        self.url = self.cluster.start_web(log_level=log_level, extra=extra)
        self.port = int(self.url.rsplit(":", 1)[1])
        self.log_path = cwd / "web.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.cluster.stop()


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become healthy")


def _front(
    kind: str,
    folder: Path,
    fake_url: str,
    *,
    log_level: str | None = "info",
    access_log: bool = False,
    survey: dict[str, Any] | None = None,
    logging: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    extra: tuple[str, ...] = (),
    **server: Any,
) -> Any:
    """``kind`` (``serve`` or ``procfile``) started in ``folder``, whose ``web.sqlite3`` the
    caller has put there."""
    config = write_config(folder, fake_url, survey=survey, logging=logging, **server)
    if kind == "serve":  # --log-level: GUNICORN_CMD_ARGS in env
        return Serve(config, folder, env=env)
    # ``extra``: more of gunicorn's flags
    return Procfile(
        config, folder, log_level=log_level, access_log=access_log, extra=extra, env=env
    )


def _migrated(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The database at the current schema, copied from this process's template: each server
    # migrated an empty file as it started, which none of these tests is about
    # (tests/webserver/test_boot.py starts on empty, behind and newer databases).
    schema_template.sqlite_copy(
        tmp_path_factory.getbasetemp(), f"sqlite:///{folder / 'web.sqlite3'}"
    )
    return folder


@pytest.fixture
def start(
    tmp_path: Path, fake_helpdesk: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A server of its own for the test: ``start(kind, **options)`` (see :func:`_front`)."""
    started: list[Any] = []
    _migrated(tmp_path, tmp_path_factory)

    def run(kind: str, **options: Any) -> Any:
        front = _front(kind, tmp_path, fake_helpdesk.url, **options)
        started.append(front)
        return front

    yield run
    for front in started:
        _told_to_stop(front)


# The processes of the servers their tests are done with, told to stop (gunicorn's graceful
# stop takes about a second, a worker's thread held by a sender up to its timeout): waited
# for at the module's end, not each at its test's end.
_STOPPING: list[subprocess.Popen[bytes]] = []


def _told_to_stop(front: Any) -> None:
    """SIGTERM to each process of ``front`` still running (a test may have stopped it)."""
    procs = (
        [front.proc] if isinstance(front, Serve) else [front.cluster.web, *front.cluster.workers]
    )
    for proc in procs:
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            _STOPPING.append(proc)
    _STOPPING[:] = [proc for proc in _STOPPING if proc.poll() is None]


def _wait_stopped() -> None:
    """Each process told to stop has ended (killed past 30 s, as ``stop`` does)."""
    while _STOPPING:
        proc = _STOPPING.pop()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module", autouse=True)
def _servers_stopped_by_the_modules_end() -> Iterator[None]:
    yield
    _wait_stopped()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``shared(kind, **options)``: one server per configuration for the module's tests that
    only exchange requests with it. None of them reads its log, signals or stops it, or
    leaves a connection open when it ends, and what each sends is answered alike by a
    server that has answered others first (a close sent again is answered 200 as the first
    was). A process started per test (two processes for the Procfile's, each importing the
    app) was most of these tests' time."""
    fake = FakeHelpdesk().start()
    fronts: dict[tuple[Any, ...], Any] = {}

    def run(kind: str, **options: Any) -> Any:
        key = (kind, *sorted(options.items()))
        if key not in fronts:
            folder = _migrated(tmp_path_factory.mktemp("shared-front"), tmp_path_factory)
            fronts[key] = _front(kind, folder, fake.url, **options)
        return fronts[key]

    try:
        yield run
    finally:
        for front in fronts.values():
            _told_to_stop(front)
        _wait_stopped()
        fake.stop()


def close_request(dialog_id: str) -> bytes:
    return request(
        "POST", HOOK, json.dumps(generic_close(dialog_id)).encode(), {"Connection": "close"}
    )


def signed_request(body: bytes, *, framed: bool) -> bytes:
    signature = "sha256=" + hmac.new(HMAC_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Sig": signature, "Content-Type": "application/json", "Connection": "close"}
    if framed:
        return request("POST", "/webhooks/signed", headers=headers, chunked_body=chunked(body))
    return request("POST", "/webhooks/signed", body, headers)


# --- senders that never finish ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["procfile", "serve"])
def test_valid_closes_are_answered_while_50_senders_stall(start, kind):
    """50 connections that declared a body (or a head) and stopped: far more than the web
    threads (2 for serve, 8 for the Procfile). Every valid close is still acknowledged, and
    the stalled connections are still open, unanswered, when the last one is."""
    front = start(kind, body_timeout_seconds=120)
    kinds = list(STALLS.values())
    stalled = [Stalled(front.port, *kinds[i % len(kinds)]) for i in range(50)]
    deaf = [Stalled(front.port, DEAF) for _ in range(20)]  # answered, never closing
    try:
        time.sleep(0.5)  # the stalled connections are accepted before the closes arrive
        answers = []
        for n in range(10):
            for sender in stalled:
                sender.tick()
            answer = exchange(front.port, close_request(f"S-{n}"), timeout=30)
            answers.append((status_of(answer), json.loads(answer.partition(b"\r\n\r\n")[2])))

        assert all(status == 200 and body["status"] == "queued" for status, body in answers)
        assert sum(sender.still_waiting() for sender in stalled) == 50
    finally:
        for sender in stalled + deaf:
            sender.close()


@pytest.mark.parametrize("kind", ["procfile", "serve"])
def test_a_body_that_never_arrives_is_answered_408(start, kind):
    front = start(kind, body_timeout_seconds=1)
    stalled = [Stalled(front.port, data, trickle=trickle) for data, trickle in STALLS.values()]
    try:
        answers = [sender.answer(timeout=15) for sender in stalled[:3]]  # those that sent bytes
        assert [status_of(answer) for answer in answers] == [408, 408, 408]
        idle = stalled[-1]
        deadline = time.monotonic() + 15
        while idle.still_waiting() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert idle.answer(timeout=1) == b""  # closed, unanswered: it never sent a byte
    finally:
        for sender in stalled:
            sender.close()


def test_heads_still_arriving_hold_no_thread_when_the_buffers_are_full(start):
    """Past the worker's buffer cap (MAX_BUFFERED_TOTAL, all pending requests together) a
    request goes to a thread as it is. One whose head had not ended went to gunicorn's
    parser, which reads a head with no deadline (each recv() waits 5 s): a byte every few
    seconds held the thread for good. A sender that filled the buffers to the byte, then
    sent one byte on each of two trickling heads, held both of serve's threads, and no close
    was answered after. A head stays buffered (its size is bounded: 64 KiB)."""
    front = start("serve", max_body_bytes=MAX_BUFFERED_TOTAL, body_timeout_seconds=60)
    slow_head = b"POST /webhooks/generic HTTP/1.1\r\nX-Slow: "
    tricklers = [Stalled(front.port, slow_head, trickle=b"x") for _ in range(2)]
    time.sleep(0.3)
    big_head = request("POST", HOOK, headers={"Content-Length": str(MAX_BUFFERED_TOTAL)})
    big_head = big_head.replace(b"Content-Length: 0\r\n", b"")
    fill = MAX_BUFFERED_TOTAL - len(slow_head) * len(tricklers) - len(big_head)
    big = Stalled(front.port, big_head + b" " * fill)  # the buffers hold the cap, exactly
    try:
        time.sleep(1.5)
        tricklers[0].tick()  # one byte over the cap
        time.sleep(0.3)
        big.sock.sendall(b" " * len(slow_head))  # the cap again, if the first went to a thread
        time.sleep(0.3)
        tricklers[1].tick()
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", front.port), timeout=1) as client:
            client.sendall(close_request("C-1"))
            answer = b""
            deadline = time.monotonic() + 8
            while not answer and time.monotonic() < deadline:
                for sender in tricklers:
                    sender.tick()
                with contextlib.suppress(TimeoutError):
                    answer = client.recv(65536)

        assert status_of(answer) == 200, answer[:300]
    finally:
        for sender in [*tricklers, big]:
            sender.close()


def test_a_close_is_answered_while_senders_hold_every_connection_slot(start):
    """A worker takes at most ``worker_connections`` connections (gunicorn's 1000), and
    stops accepting at that cap. Requests still arriving held their slots until the body's
    deadline: connections that sent nothing, opened again as each was closed, kept every
    close out of the worker for good. At the cap the oldest of them give way."""
    front = start("procfile", body_timeout_seconds=60, extra=("--worker-connections", "40"))
    idle = [Stalled(front.port, b"") for _ in range(45)]
    partial = [Stalled(front.port, STALLS["trickled-body"][0]) for _ in range(5)]
    try:
        time.sleep(1)
        began = time.monotonic()

        answer = exchange(front.port, close_request("CAP-1"), timeout=20)

        assert status_of(answer) == 200, answer[:300]
        assert time.monotonic() - began < 5
    finally:
        for sender in idle + partial:
            sender.close()


def healthz(socks: list[socket.socket]) -> list[float | None]:
    """``GET /healthz`` on each of ``socks`` at once; for each, when it was answered 200 and
    kept alive, else None (one answered ``Connection: close``, or not at all, is closed)."""
    for sock in socks:
        sock.sendall(request("GET", "/healthz"))
    kept: list[float | None] = []
    for sock in socks:
        answer = b""
        with contextlib.suppress(ConnectionResetError):
            while not answer.endswith(b"}\n") and (chunk := sock.recv(65536)):
                answer += chunk
        if status_of(answer) == 200 and b"Connection: close" not in answer:
            kept.append(time.monotonic())
        else:
            kept.append(None)
            sock.close()
    return kept


def fill_with_kept_alive(port: int, cap: int, threads: int) -> dict[socket.socket, float]:
    """``cap`` connections, each with a request answered and kept alive, silent since, and
    when each was answered. gunicorn keeps at most ``cap - threads`` alive when it answers,
    but counts those idle at that moment only: requests answered together (``threads`` of
    the idle ones asking again, and new ones) each find room, so the idle ones reach the
    cap, as a sender that sends in bursts makes them."""
    idle: dict[socket.socket, float] = {}
    for _ in range(cap - threads):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        (answered,) = healthz([sock])
        assert answered is not None
        idle[sock] = answered
    deadline = time.monotonic() + 30
    while len(idle) < cap:
        # On the code before, the request that made the cap was cut (reset) every time.
        assert time.monotonic() < deadline, f"{len(idle)} of {cap} kept alive, the rest cut"
        # The worker counts a connection closed after its answer a moment after the answer
        # is read: a burst made then would go over the cap, and idle ones give way.
        time.sleep(0.5)
        new = [socket.create_connection(("127.0.0.1", port)) for _ in range(cap - len(idle))]
        burst = [*list(idle)[:threads], *new]
        for sock in burst[:threads]:
            del idle[sock]
        for sock, answered in zip(burst, healthz(burst), strict=True):
            if answered is not None:
                idle[sock] = answered
    return idle


def test_a_close_is_answered_while_idle_kept_alive_connections_hold_every_slot(start):
    """Connections at the cap that had a request answered and sent nothing since (kept
    alive for a minute here) held their slots until the keep-alive timeout: a sender that
    had them all kept every close out. With a connection waiting, the idle ones give way,
    the oldest first; one whose next request has begun to arrive is served, never cut."""
    extra = ("--worker-connections", "40", "--keep-alive", "60")
    front = start("procfile", body_timeout_seconds=60, extra=extra)
    idle = fill_with_kept_alive(front.port, 40, threads=8)
    youngest = max(idle, key=idle.__getitem__)
    try:
        # The youngest idle connection begins its next request: not idle any more.
        youngest.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        time.sleep(1.5)
        assert all(Stalled.is_open(sock) for sock in idle)  # nobody waits: none is cut
        began = time.monotonic()

        answer = exchange(front.port, close_request("KEEP-1"), timeout=20)

        assert status_of(answer) == 200, answer[:300]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["status"] == "queued"
        assert time.monotonic() - began < 5
        youngest.sendall(b"Connection: close\r\n\r\n")
        youngest.settimeout(10)
        assert status_of(youngest.recv(65536)) == 200  # its request, answered whole
        # The oldest gave way (a share of the cap at a time: 4 of 40), the others are open
        # (answers that came together may reach the server and the client in either order).
        closed = [idle[sock] for sock in idle if sock is not youngest and not Stalled.is_open(sock)]
        still_open = [idle[sock] for sock in idle if Stalled.is_open(sock)]
        assert 0 < len(closed) < 10, closed
        assert max(closed) < min(still_open) + 0.2, (closed, still_open)
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.parametrize("target", ["/healthz", "/webhooks/unknown", "/s/reference", "/nowhere"])
def test_a_body_no_route_reads_holds_no_thread(start, target):
    """A body over the limit goes to a thread at once (the webhook answers 413 unread);
    another route answers without reading it, and gunicorn then read the rest of it to keep
    the connection alive. Its 5 s bound was checked only between reads of 1024 bytes: a
    byte every half second held the thread for as long as the sender kept it up, and four
    such senders held both of serve's threads. What has not arrived is not waited for: the
    connection closes."""
    front = start("serve")
    head = f"GET {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
    senders = [Stalled(front.port, head.encode(), trickle=b"x") for _ in range(4)]
    try:
        time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", front.port), timeout=0.5) as client:
            client.sendall(close_request("DRAIN-1"))
            answer = b""
            deadline = time.monotonic() + 10
            while not answer and time.monotonic() < deadline:
                for sender in senders:
                    sender.tick()
                with contextlib.suppress(TimeoutError):
                    answer = client.recv(65536)

        assert status_of(answer) == 200, answer[:300]
    finally:
        for sender in senders:
            sender.close()


# --- framing and size ------------------------------------------------------------------------

MALFORMED_CHUNKED = {
    "bad size": b"zz\r\n{}\r\n0\r\n\r\n",
    "no CRLF after the data": b"2\r\n{}XX0\r\n\r\n",
    "bad extension": b'2;a="\x01\r\n{}\r\n0\r\n\r\n',
    "bad trailer": b"2\r\n{}\r\n0\r\nX-Trailer " + SECRET.encode() + b"\r\n\r\n",
    "bare LF ending the trailers": b"2\r\n{}\r\n0\r\n\n",
}


@pytest.mark.parametrize("case", sorted(MALFORMED_CHUNKED))
@pytest.mark.parametrize("target", ["/webhooks/generic", "/webhooks/unknown"])
def test_malformed_chunked_framing_is_one_400(shared, case, target):
    """A known helpdesk reads the body and answers 400; an unknown one answers 404 without
    reading it. Either way exactly one response, never a 500, nor a second response that
    gunicorn's drain of the unread body would add."""
    front = shared("procfile")
    data = request("POST", f"{target}?token={SECRET}", chunked_body=MALFORMED_CHUNKED[case])

    answer = exchange(front.port, data)

    expected = 400 if target == "/webhooks/generic" else 404
    assert status_of(answer) == expected, answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    if expected == 400:
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "bad_framing"


@pytest.mark.parametrize("target", ["/webhooks/generic", "/webhooks/unknown"])
def test_chunk_size_lines_ended_by_a_bare_lf_are_400_at_once(shared, target):
    """The whole request is in, but gunicorn reads on for a CRLF: the sender waited for the
    body's deadline and was told 408 "did not arrive in time"."""
    front = shared("procfile", body_timeout_seconds=30)
    data = request("POST", f"{target}?token={SECRET}", chunked_body=b"2\n{}\n0\n\n")
    began = time.monotonic()

    answer = exchange(front.port, data, timeout=5)

    assert time.monotonic() - began < 3, answer[:300]
    status, headers, payload = json_answer(answer)
    assert status == 400 and headers["connection"] == "close", answer[:300]
    assert payload == {"error": "bad_framing", "reason": "malformed request body"}
    assert answer.count(b"HTTP/1.1 ") == 1, answer


@pytest.mark.parametrize(
    "body",
    [b"3\r\nabcdef\r\n0\r\n\r\n", b"3\r\nabcFFFFFFFF\r\n0\r\n\r\n"],
    ids=["data longer than its size", "a size read in the data"],
)
def test_chunk_data_longer_than_its_size_is_400_at_once(shared, body):
    """The two bytes after a chunk's data must be its CRLF: read as the start of the next
    size line ("f", "FFFFFF"), they kept the sender until the body's deadline (then 408
    "did not arrive in time") or were answered 413 for a chunk of 3 bytes."""
    front = shared("procfile", body_timeout_seconds=30)
    data = request("POST", HOOK, headers={"Connection": "close"}, chunked_body=body)
    began = time.monotonic()

    answer = exchange(front.port, data, timeout=5)

    assert time.monotonic() - began < 3, answer[:300]
    status, _, payload = json_answer(answer)
    assert (status, payload["error"]) == (400, "bad_framing"), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1, answer


def test_a_chunked_body_over_the_limit_is_413_before_verification(shared):
    front = shared("procfile")
    padded = json.dumps(generic_close("BIG-1")).encode()
    exactly = padded + b" " * (MAX_BODY - len(padded))
    over = exactly + b" "

    assert status_of(exchange(front.port, signed_request(exactly, framed=True))) == 200
    answer = exchange(front.port, signed_request(over, framed=True))
    assert status_of(answer) == 413, answer[:300]  # not 401: the signature covers all of it
    assert status_of(exchange(front.port, signed_request(over, framed=False))) == 413


def test_a_body_shorter_than_its_content_length_is_refused(shared):
    front = shared("procfile")
    body = json.dumps(generic_close("SHORT-1")).encode()
    head = f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body) + 5}\r\n\r\n"

    answer = exchange(front.port, head.encode() + body, half_close=True)  # 5 bytes missing

    assert status_of(answer) == 400, answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "incomplete_body"


# --- no request data in the server's own log -------------------------------------------------

S = SECRET.encode()
T = HOOK.encode()  # a target with the secret in its query
H = b"Host: x\r\n"
POST = b"POST /webhooks/generic HTTP/1.1\r\n" + H
UNKNOWN = f"/webhooks/unknown?token={SECRET}"
LEAKY_REQUESTS = {
    "NUL after the version": b"GET " + T + b" HTTP/1.1\x00\r\n" + H + b"\r\n",
    "NUL in the target": b"GET " + T + b"\x00 HTTP/1.1\r\n" + H + b"\r\n",
    "DEL in the target": b"GET " + T + b"\x7f HTTP/1.1\r\n" + H + b"\r\n",
    "non-ASCII target": b"GET " + T + b"\xe9 HTTP/1.1\r\n" + H + b"\r\n",
    "bad method": b"G@T?token=" + S + b" /webhooks/generic HTTP/1.1\r\n" + H + b"\r\n",
    "no method": T + b" HTTP/1.1\r\n" + H + b"\r\n",
    "space in the query": b"POST /webhooks/generic?a=b c&token=" + S + b" HTTP/1.1\r\n\r\n",
    "bad version": b"GET " + T + b" HTTP/1.x\r\n" + H + b"\r\n",
    "relative target": b"GET " + T[1:] + b" HTTP/1.1\r\n" + H + b"\r\n",
    "line too long": b"GET " + T + b"&pad=" + b"A" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n",
    "bare LF": b"GET " + T + b" HTTP/1.1\n" + H + b"\r\n",
    "header without colon": POST + b"X-Webhook-Token " + S + b"\r\n\r\n",
    "bad header name": POST + b"X-Webhook-Token=" + S + b": 1\r\n\r\n",
    "control in header value": POST + b"X-Webhook-Token: " + S + b"\x01\r\n\r\n",
    "folded header": POST + b"X-Webhook-Token: a\r\n " + S + b"\r\n\r\n",
    "too many headers": POST + b"".join(b"X-%d: %s\r\n" % (i, S) for i in range(120)) + b"\r\n",
    "header too long": POST + b"X-Big: " + S + b"B" * 9000 + b"\r\n\r\n",
    "unknown transfer coding": POST + b"Transfer-Encoding: " + S + b"\r\n\r\n",
    "bad expectation": POST + b"Expect: " + S + b"\r\nContent-Length: 0\r\n\r\n",
    "non-numeric length": POST + b"Content-Length: " + S + b"\r\n\r\n",
    "two Host headers": b"POST " + T + b" HTTP/1.1\r\n" + H + H + b"Content-Length: 0\r\n\r\n",
    "drained: bad size": request("POST", UNKNOWN, chunked_body=b'{"t":"' + S + b'"}\r\n'),
    "drained: bad trailer": request("POST", UNKNOWN, chunked_body=b"0\r\nX-T " + S + b"\r\n\r\n"),
    "read: bad size": request("POST", HOOK, chunked_body=b'{"token":"' + S + b'"}\r\n'),
}


@pytest.mark.parametrize("kind", ["procfile", "serve"])
def test_no_request_data_reaches_the_servers_log(start, kind):
    front = start(kind, log_level="debug")
    for data in LEAKY_REQUESTS.values():
        exchange(front.port, data, timeout=5)
    # A sender that hangs up in the middle of its head (logged at DEBUG).
    exchange(
        front.port, b"POST " + HOOK.encode() + b" HTTP/1.1\r\n" + H + b"X-T: " + S, half_close=True
    )
    time.sleep(0.5)  # the worker writes its last lines

    log = front.log()
    assert log.count("Invalid request from ip=") >= 15, log  # the cases were logged...
    assert SECRET not in log  # ...without what the client sent


def test_the_workers_own_refusals_are_logged_without_request_data(start):
    """The worker answers some requests itself, before gunicorn reads them: a head over
    64 KiB (431), chunk sizes over the limit (413), a chunk-size line ended by a bare LF
    (400), a request not complete in time (408). None of them left a line in any log, where
    gunicorn's own refusals are logged: a sender's "413" could not be told from silence."""
    front = start("procfile", body_timeout_seconds=1)
    post = f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nX-Token: {SECRET}\r\n"
    sent = {
        "431": post.encode() + b"X-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n",
        "413": request("POST", HOOK, chunked_body=b"%x\r\n" % (MAX_BODY + 1)),
        "400": request("POST", HOOK, chunked_body=b"2\n{}\n0\n\n"),
        "408": post.encode() + b"Content-Length: 10\r\n\r\n{",
    }
    for status, data in sent.items():
        assert status_of(exchange(front.port, data, timeout=10)) == int(status)
    time.sleep(0.5)  # the worker writes its last lines

    log = front.log()
    refused = [line for line in log.splitlines() if "Refused request from ip=" in line]
    assert sorted(line.split(": ")[-1][:3] for line in refused) == sorted(sent), log
    assert SECRET not in log and "aaaa" not in log


@pytest.mark.parametrize("kind", ["procfile", "serve"])
def test_the_workers_own_answers_are_in_the_access_log_without_request_data(start, kind):
    """The answers the worker writes itself (408, 413, 431, 400, and gunicorn's refusals of
    a request line it could not take) were in the error log only: the access log, asked
    for, did not show that a sender had been refused. Each has its line there, in the
    app's format: the method and the path where the whole request line was read (redacted
    as the app's are), ``-`` where it was not; never the query, a header or the body."""
    front = start(
        kind,
        log_level=None,
        logging={"level": "INFO", "access_log": True},
        body_timeout_seconds=1,
    )
    post = f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nX-Token: {SECRET}\r\n"
    line = b'"POST /webhooks/generic HTTP/1.1" '
    sent = {
        "431": (post.encode() + b"X-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n", line),
        "413": (post.encode() + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % 5000, line),
        "400": (post.encode() + b"Transfer-Encoding: chunked\r\n\r\n2\n{}\n0\n\n", line),
        "408": (post.encode() + b"Content-Length: 10\r\n\r\n{", line),
        "414": (f"GET /{SECRET}{'x' * 9000} HTTP/1.1\r\n\r\n".encode(), b'"-" '),
    }
    for status, (data, _) in sent.items():
        assert status_of(exchange(front.port, data, timeout=10)) == int(status)
    head_only = Stalled(front.port, f"POST {HOOK} HTTP/1.1\r\nX-Token: {SECRET}".encode())
    assert status_of(head_only.answer(timeout=10)) == 408  # the head never ended
    head_only.close()
    time.sleep(0.5)  # the worker writes its last lines

    log = front.log()
    assert SECRET not in log and "aaaa" not in log, log
    access = [entry for entry in log.splitlines() if "gunicorn.access" in entry]
    for status, (_, request_line) in sent.items():
        lines = [entry for entry in access if f" {status} ".encode() in entry.encode()]
        expected = 2 if status == "408" else 1
        assert len(lines) == expected, access
        assert all(request_line + status.encode() in entry.encode() for entry in lines), lines


# A token typed after the wrong separator, or as a path segment, and a method nobody sends:
# gunicorn's DEBUG line of each request (and its "Error handling request" line) prints the
# method and the path, where the query no longer holds the secret.
LEAKY_PATHS = [
    ("POST", f"/webhooks/generic&token={SECRET}"),
    ("POST", f"/webhooks/generic;token={SECRET}"),
    ("POST", f"/webhooks/generic%3Ftoken={SECRET}"),
    ("POST", f"/webhooks/generic/{SECRET}"),
    ("POST", f"/webhooks/generic/x/{SECRET}"),
    ("GET", f"/healthz&token={SECRET}"),
    ("GET", f"/api/outbox/{SECRET}"),
    (f"X{SECRET}", "/webhooks/generic"),
]


@pytest.mark.parametrize("kind", ["procfile", "serve"])
def test_a_secret_in_the_path_or_the_method_never_reaches_the_servers_log(start, kind):
    # The Procfile's line as a platform may run it: gunicorn at DEBUG, its access log asked
    # for (logging.access_log is off: its lines are not written).
    front = start(kind, log_level="debug", access_log=True)
    basic = base64.b64encode(f"{SECRET}:pw".encode()).decode()  # a Freshdesk webhook's
    headers = {"Authorization": f"Basic {basic}", "Referer": f"https://x/?t={SECRET}"}
    for method, path in LEAKY_PATHS:
        exchange(front.port, request(method, path, b"{}", {**headers, "Connection": "close"}))
    exchange(front.port, request("GET", "/healthz", b"", {"Connection": "close"}), timeout=5)
    time.sleep(0.5)  # the worker writes its last lines

    log = front.log()
    # serve's gunicorn follows logging.level (DEBUG), as the Procfile's --log-level debug.
    assert "GET /healthz" in log, log  # gunicorn's DEBUG line of each request was written
    assert "POST /webhooks/[path redacted]" in log, log
    assert SECRET not in log, log  # ...without what the client put in the path or the method


@pytest.mark.parametrize(
    ("kind", "level", "override", "debug_lines"),
    [
        ("serve", "DEBUG", None, True),
        ("serve", "INFO", None, False),
        ("serve", "DEBUG", "warning", False),
        ("serve", "WARNING", "debug", True),
        ("procfile", "DEBUG", None, True),
        ("procfile", "INFO", None, False),
        ("procfile", "DEBUG", "warning", False),
        ("procfile", "WARNING", "debug", True),
    ],
)
def test_gunicorns_level_follows_logging_level_unless_given(
    start, kind, level, override, debug_lines
):
    """gunicorn's own lines at ``logging.level``: serve ran it at WARNING whatever the level,
    the Procfile at gunicorn's INFO. An explicit level (the Procfile's ``--log-level``, or
    ``GUNICORN_CMD_ARGS`` for both) still wins. At every level, no request data."""
    env = {"GUNICORN_CMD_ARGS": f"--log-level {override}"} if override else None
    front = start(
        kind,
        log_level=override if kind == "procfile" else None,
        logging={"level": level},
        env=env,
    )
    exchange(front.port, request("GET", "/healthz", b"", {"Connection": "close"}), timeout=5)
    for method, path in LEAKY_PATHS:
        exchange(front.port, request(method, path, b"{}", {"Connection": "close"}))
    exchange(front.port, LEAKY_REQUESTS["NUL in the target"], timeout=5)
    time.sleep(0.5)  # the worker writes its last lines

    log = front.log()
    assert ("[DEBUG] GET /healthz" in log) is debug_lines, log
    assert "Invalid request from ip=" in log, log  # a WARNING: written at every level here
    assert SECRET not in log, log


CUSTOMER = "Zhanna-Kuznetsova-Words"


@pytest.mark.parametrize(
    ("kind", "fmt", "access_log"),
    [
        ("procfile", "text", True),
        ("serve", "text", True),
        ("serve", "json", True),
        ("procfile", "text", False),
        ("serve", "text", False),
    ],
)
def test_the_access_log_when_asked_for_is_written_redacted(start, kind, fmt, access_log):
    """``logging.access_log: true``: gunicorn's access log (kept silent before, whatever was
    asked) writes a line per request through the service's own handler (its format, its
    stream), with the method, a route-shaped path and the status; never a query, a path
    past a route's shape, a Basic user, a header's value or what the body holds."""
    front = start(
        kind, log_level=None, logging={"level": "INFO", "format": fmt, "access_log": access_log}
    )
    basic = base64.b64encode(f"{SECRET}:pw".encode()).decode()  # a Freshdesk webhook's
    headers = {
        "Authorization": f"Basic {basic}",
        "Referer": f"https://x/?t={SECRET}",
        "User-Agent": f"agent/{SECRET}",
        "Connection": "close",
    }
    body = json.dumps(generic_close("D-ACCESS", agent_name=CUSTOMER)).encode()
    assert status_of(exchange(front.port, request("POST", HOOK, body, headers))) == 200
    for method, path in LEAKY_PATHS:
        exchange(front.port, request(method, path, b"{}", headers))
    exchange(front.port, request("GET", f"/s/{SECRET}", b"", headers))
    exchange(front.port, request("GET", "/healthz", b"", {"Connection": "close"}), timeout=5)
    time.sleep(0.5)  # the worker writes its last lines

    log = front.log()
    assert SECRET not in log and CUSTOMER not in log and basic not in log, log
    access = [line for line in log.splitlines() if "gunicorn.access" in line]
    if not access_log:
        assert access == [], log
        return
    if fmt == "json":
        events = [json.loads(line)["event"] for line in access]
        assert all(json.loads(line)["level"] == "INFO" for line in access)
    else:
        assert all(re.match(r"\S+ INFO gunicorn\.access ", line) for line in access), access
        events = access
    assert any('"GET /healthz HTTP/1.1" 200 ' in event for event in events), access
    assert any('"POST /webhooks/generic HTTP/1.1" 200 ' in event for event in events), access
    assert any('"POST /webhooks/[path redacted] HTTP/1.1" ' in e for e in events), access
    assert any('"GET /s/[reference redacted] HTTP/1.1" ' in e for e in events), access
    assert len(events) >= len(LEAKY_PATHS) + 3, access


def probe(front: Any, n: int) -> None:
    """``GET /probe-<n>?token=SECRET``: a 404, a line of its own in the access log."""
    exchange(front.port, request("GET", f"/probe-{n}?token={SECRET}", b"", {"Connection": "close"}))


def probe_lines(log: str, n: int) -> list[str]:
    """The access-log lines of :func:`probe` ``n``, in either format (the service's or
    gunicorn's own, ``--access-logfile``)."""
    return [line for line in log.splitlines() if f'"GET /probe-{n} HTTP/1.1" 404 ' in line]


@pytest.mark.parametrize(
    ("kind", "access_log", "extra"),
    [
        ("procfile", True, ()),
        ("serve", True, ()),
        ("procfile", False, ()),
        ("serve", False, ()),
        ("procfile", True, ("--preload",)),
        ("procfile", False, ("--preload", "--access-logfile", "-")),
    ],
)
def test_the_access_log_is_written_whatever_the_level_and_only_when_asked_for(
    start, kind, access_log, extra
):
    """``logging.access_log`` is a stream of its own, as gunicorn's ``--access-logfile`` or
    nginx's ``access_log``: switched on, each request's line is written at every
    ``logging.level`` (WARNING here), an INFO record in both deployments; switched off, none
    is, a gunicorn flag (``--access-logfile``) or the app loaded in the master first
    (``--preload``: gunicorn then turned its access logger back on) notwithstanding."""
    front = start(
        kind, log_level=None, logging={"level": "WARNING", "access_log": access_log}, extra=extra
    )
    for n in range(3):
        probe(front, n)
    time.sleep(0.5)  # the worker writes its last lines

    log = front.log()
    assert SECRET not in log, log
    for n in range(3):
        lines = probe_lines(log, n)
        if access_log:
            assert len(lines) == 1, log
            assert re.match(r"\S+ INFO gunicorn\.access ", lines[0]), log
        else:
            assert lines == [], log


@pytest.mark.parametrize("where", ["-", "file"])
@pytest.mark.parametrize("given", ["argv", "GUNICORN_CMD_ARGS"])
def test_an_access_logfile_given_to_gunicorn_gets_each_line_once(start, tmp_path, where, given):
    """``logging.access_log: true`` and gunicorn's ``--access-logfile`` (on its command line
    or in ``GUNICORN_CMD_ARGS``): each request's line was written twice, once where gunicorn
    was told, once by the service's handler. The flag says where: there only, redacted."""
    target = "-" if where == "-" else str(tmp_path / "access.log")
    flag = ("--access-logfile", target)
    front = start(
        "procfile",
        log_level=None,
        logging={"level": "INFO", "access_log": True},
        extra=flag if given == "argv" else (),
        env={"GUNICORN_CMD_ARGS": shlex.join(flag)} if given != "argv" else None,
    )
    for n in range(3):
        probe(front, n)
    time.sleep(0.5)  # the worker writes its last lines

    log = front.log()
    written = log if where == "-" else (tmp_path / "access.log").read_text()
    for n in range(3):
        assert len(probe_lines(written, n)) == 1, written
        if where != "-":
            assert probe_lines(log, n) == [], log
    assert SECRET not in log + written, log + written


def children(pid: int) -> set[int]:
    """The processes ``pid`` forked, as Linux lists them."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def hang_up(front: Procfile) -> None:
    """SIGHUP to the Procfile's gunicorn master; back once its new worker answers (the old
    one gone)."""
    assert front.cluster.web is not None
    master = front.cluster.web.pid
    old = children(master)
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + 30
    while not (children(master) and not children(master) & old):
        assert time.monotonic() < deadline, front.log()
        time.sleep(0.1)
    _wait_healthy(front.url)


def test_a_graceful_stop_answers_every_request_already_queued(start):
    """SIGTERM while connections wait in the listen backlog, each with a whole close sent
    (the worker stopped here, as a busy one takes them late): gthread stopped accepting and
    closed its listening socket once its own connections were done, and the kernel reset
    every queued one, its close lost to a sender that does not retry. Each is answered."""
    front = start("procfile")
    assert front.cluster.web is not None
    master = front.cluster.web.pid
    (worker,) = children(master)
    os.kill(worker, signal.SIGSTOP)
    queued = []
    try:
        for n in range(20):
            sock = socket.create_connection(("127.0.0.1", front.port), timeout=20)
            sock.sendall(close_request(f"QUEUED-{n}"))
            queued.append(sock)
        os.kill(master, signal.SIGTERM)  # the master closes its listening socket first
        time.sleep(0.5)
    finally:
        os.kill(worker, signal.SIGCONT)
    answers = []
    for sock in queued:
        answer = b""
        with contextlib.suppress(ConnectionResetError), sock:
            while chunk := sock.recv(65536):
                answer += chunk
        answers.append(answer)

    statuses = [status_of(answer) for answer in answers]
    assert statuses == [200] * 20, (statuses, front.log())
    assert all(json.loads(a.partition(b"\r\n\r\n")[2])["status"] == "queued" for a in answers)
    assert front.cluster.web.wait(timeout=30) == 0


@pytest.mark.parametrize("level", ["WARNING", "DEBUG"])
def test_the_masters_lines_follow_logging_level_from_its_first_and_after_sighup(start, level):
    """The Procfile's gunicorn master, no ``--log-level``: its lines before ``on_starting``
    (``Starting gunicorn``, INFO; ``Current configuration``, DEBUG) and all of them after a
    SIGHUP followed gunicorn's default (INFO), not ``logging.level``."""
    front = start("procfile", log_level=None, logging={"level": level})
    hang_up(front)
    front.stop()

    log = front.log()
    if level == "WARNING":
        assert "[INFO]" not in log and "[DEBUG]" not in log, log
    else:
        assert log.count("[INFO] Starting gunicorn") == 1, log
        assert log.count("[DEBUG] Current configuration:") == 2, log  # at start, at reload
        reloaded = log.partition("[INFO] Hang up: Master")[2]
        assert "[INFO] Booting worker with pid" in reloaded, log
        assert "[INFO] Shutting down: Master" in reloaded, log
    assert "test-token-secret" not in log, log


def test_a_sighup_applies_a_changed_logging_section(start, tmp_path, fake_helpdesk):
    """SIGHUP reloads the Procfile's web process: its new workers read the configuration
    again, and so does the master for ``logging.level`` and ``logging.access_log``. The
    access log switched on by the reload stayed off (the master still had it off), and the
    master's lines followed gunicorn's default level, not the new ``logging.level``."""
    front = start("procfile", log_level=None, logging={"level": "INFO", "access_log": False})
    probe(front, 0)
    write_config(tmp_path, fake_helpdesk.url, logging={"level": "WARNING", "access_log": True})
    hang_up(front)
    probe(front, 1)
    time.sleep(0.5)  # the worker writes its last lines
    front.stop()

    log = front.log()
    assert probe_lines(log, 0) == [], log
    assert len(probe_lines(log, 1)) == 1, log
    before, hung_up, reloaded = log.partition("[INFO] Hang up: Master")
    assert "[INFO] Booting worker with pid" in before and hung_up, log
    assert "Booting worker" not in reloaded and "Shutting down" not in reloaded, log


# --- serve -----------------------------------------------------------------------------------


def test_serve_prints_the_address_it_listens_on(shared):
    front = shared("serve")

    assert re.fullmatch(
        r"csat-hook listening on http://127\.0\.0\.1:\d+ \(1 web process, delivery in each, "
        r"no periodic sync\)",
        front.line,
    )
    assert requests.get(front.url + "/healthz", timeout=5).status_code == 200


# --- the server's own answers ------------------------------------------------------------------

MARK = "<b>ECHO" + SECRET + "</b>"
M = MARK.encode()
# (request, status, error code): gunicorn's own refusals and the worker's, each carrying
# MARK where gunicorn's page repeated what it refused.
REFUSED_BY_THE_SERVER = {
    "bad request line": (b"GET /x" + M + b"\x00 HTTP/1.1\r\n" + H + b"\r\n", 400, "bad_request"),
    "bad method": (b"G@T" + M + b" /x HTTP/1.1\r\n" + H + b"\r\n", 400, "bad_request"),
    "bad version": (b"GET /x HTTP/1." + M + b"\r\n" + H + b"\r\n", 400, "bad_request"),
    "bad header value": (POST + b"X-T: " + M + b"\x01\r\n\r\n", 400, "bad_request"),
    "bad header name": (POST + b"X" + M + b": 1\r\n\r\n", 400, "bad_request"),
    "folded header": (POST + b"X-T: a\r\n " + M + b"\r\n\r\n", 400, "bad_request"),
    "request line too long": (
        b"GET /x?" + M * 400 + b" HTTP/1.1\r\n" + H + b"\r\n",
        414,
        "uri_too_long",
    ),
    "too many header fields": (
        POST + b"".join(b"X-%d: %s\r\n" % (i, M) for i in range(120)) + b"\r\n",
        431,
        "request_header_fields_too_large",
    ),
    "head over 64 KiB": (
        POST + b"".join(b"X-%d: %s\r\n" % (i, M * 200) for i in range(14)),
        431,
        "request_header_fields_too_large",
    ),
    "bad expectation": (POST + b"Expect: " + M + b"\r\nContent-Length: 0\r\n\r\n", 417, None),
}


def json_answer(answer: bytes) -> tuple[int | None, dict[str, str], Any]:
    """The status, the lower-cased headers and the JSON body of one answer."""
    head, _, body = answer.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_of(answer), headers, json.loads(body)


@pytest.mark.parametrize("kind", ["procfile", "serve"])
def test_the_servers_own_refusals_are_json_and_repeat_nothing_sent(start, kind):
    """gunicorn answered these with an HTML page that repeated the request line, the header
    or its value ("Invalid HTTP Header: '<b>ECHO...'"): a sender wrote part of the page.
    Now each is the app's JSON shape with a fixed reason, and the log has no byte of it."""
    front = start(kind, log_level="debug")
    for case, (data, status, code) in REFUSED_BY_THE_SERVER.items():
        answer = exchange(front.port, data, timeout=10)

        assert status_of(answer) == status, (case, answer[:300])
        assert answer.count(b"HTTP/1.1 ") == 1, (case, answer[:300])
        assert b"ECHO" not in answer and SECRET.encode() not in answer, (case, answer[:500])
        _, headers, body = json_answer(answer)
        assert headers["content-type"] == "application/json", (case, headers)
        assert headers["cache-control"] == "no-store", (case, headers)
        assert set(body) == {"error", "reason"} and body["reason"], (case, body)
        if code is not None:
            assert body["error"] == code, (case, body)
    time.sleep(0.5)  # the worker writes its last lines
    log = front.log()
    assert "Invalid request from ip=" in log
    assert "ECHO" not in log and SECRET not in log, log


# gunicorn's refusals of a one-click score link (GET /s/<ref>/<score>): the path names the
# survey, and an answer a proxy or browser kept would be served for the next click.
SCORE = b"GET /s/REF/5"
REFUSED_UNDER_S = {
    "request line too long": (SCORE + b"?" + b"x" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    "too many header fields": (
        SCORE + b" HTTP/1.1\r\n" + H + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n",
        431,
    ),
    "head over 64 KiB": (
        SCORE
        + b" HTTP/1.1\r\n"
        + H
        + b"".join(b"X-%d: %s\r\n" % (i, b"y" * 8000) for i in range(9)),
        431,
    ),
    "bad header value": (SCORE + b" HTTP/1.1\r\n" + H + b"X-T: a\x01\r\n\r\n", 400),
    "bad request line": (b"GET /s/REF/5\x00 HTTP/1.1\r\n" + H + b"\r\n", 400),
}


@pytest.mark.parametrize("kind", ["procfile", "serve"])
def test_the_servers_refusals_of_a_score_link_are_never_stored_by_a_cache(shared, kind):
    """The app marks every answer under /s/ ``Cache-Control: no-store``; gunicorn's own
    refusals (the worker's handle_error, before any path is parsed) carry it too: all of
    them, whatever the path, as none of them is a page worth keeping."""
    front = shared(kind)
    for case, (data, status) in REFUSED_UNDER_S.items():
        answer = exchange(front.port, data, timeout=10)

        found, headers, body = json_answer(answer)
        assert found == status, (case, answer[:300])
        assert headers.get("cache-control") == "no-store", (case, headers)
        assert set(body) == {"error", "reason"}, (case, body)
    # The app's own answer under /s/ says the same, for any spelling of the path.
    for path in ("/s/REF/5", "/S/REF/5", "/%73/REF/5"):
        answer = requests.get(front.url + path, timeout=5)
        assert answer.status_code == 404, path
        assert answer.headers["Cache-Control"] == "no-store", path
        assert answer.headers["Content-Type"].startswith("text/html"), path


def test_another_method_under_s_is_a_private_405_page_through_gunicorn(shared):
    """Under /s every answer is a page for a browser: POST (the webhooks' JSON 405 before)
    and OPTIONS (Flask's empty 200 before) are the 405 page naming GET and HEAD."""
    front = shared("procfile")
    for method in ("POST", "OPTIONS", "DELETE"):
        answer = requests.request(method, front.url + "/s/REF/5", timeout=5)

        assert answer.status_code == 405, method
        assert answer.headers["Allow"] == "GET, HEAD", method
        assert answer.headers["Content-Type"].startswith("text/html"), method
        assert answer.headers["Cache-Control"] == "no-store", method
        assert "<!doctype html>" in answer.text, method


def test_a_body_that_never_arrives_is_answered_408_in_json(shared):
    front = shared("procfile", body_timeout_seconds=1)
    head = b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"

    answer = exchange(front.port, head, timeout=15)

    status, headers, body = json_answer(answer)
    assert status == 408 and headers["content-type"] == "application/json"
    assert body == {"error": "request_timeout", "reason": "the body did not arrive in time"}


# Codings gunicorn knows pass on to the view, which refuses them; those it does not know (one
# with parameters, "chunked;x=1", is not "chunked") it refused itself with a 501 (a server
# error, that a sender retries) and an HTML page repeating the header's value.
@pytest.mark.parametrize(
    "codings",
    [
        "gzip, chunked",
        "deflate,chunked",
        "compress, chunked",
        "chunked;x=1",
        "chunked ; q=0.5",
        "gzip;level=9, chunked",
        "x-" + SECRET,
        "br, chunked",
    ],
)
@pytest.mark.parametrize("kind", ["procfile", "serve"])
def test_a_transfer_coding_other_than_chunked_is_415(shared, kind, codings):
    """gunicorn undoes the chunked framing only: a "gzip, chunked" body reached the view as
    the gzip bytes, and a plain one mislabelled gzip was taken as sent. Refused by its header,
    as a Content-Encoding is, with one answer in the app's JSON shape."""
    front = shared(kind)
    body = json.dumps(generic_close("TE-2")).encode()
    head = (
        f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Transfer-Encoding: {codings}\r\nConnection: close\r\n\r\n"
    )

    answer = exchange(front.port, head.encode() + chunked(body))

    assert status_of(answer) == 415, answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert json_answer(answer)[2] == {
        "error": "unsupported_encoding",
        "reason": "a Transfer-Encoding other than chunked is not accepted",
    }
    plain = request("POST", HOOK, chunked_body=chunked(body), headers={"Connection": "close"})
    assert status_of(exchange(front.port, plain)) == 200


def test_a_transfer_coding_other_than_chunked_is_415_before_the_body_is_in(shared):
    """Each is refused by its header alone (gunicorn's 415, or the view's before it reads a
    byte): the worker waited for the whole chunked body first, so a sender whose body was
    not all sent yet waited for the body's deadline and was told 408, not 415."""
    front = shared("procfile", body_timeout_seconds=30)
    for codings in ("x-chunked", "gzip;level=9, chunked", "gzip, chunked", "identity, chunked"):
        head = (
            f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: {codings}\r\nConnection: close\r\n\r\n"
        )
        began = time.monotonic()

        answer = exchange(front.port, head.encode() + b"ff\r\n{", timeout=5)

        assert time.monotonic() - began < 3, (codings, answer[:300])
        assert status_of(answer) == 415, (codings, answer[:300])
        assert json_answer(answer)[2]["error"] == "unsupported_encoding", codings


@pytest.mark.parametrize("kind", ["procfile", "serve"])
def test_script_name_and_path_info_headers_change_nothing(shared, kind):
    """gunicorn let a peer in forwarded_allow_ips (127.0.0.1 by default: a sidecar, a local
    proxy, or this test) set SCRIPT_NAME (and PATH_INFO) by header: a request served by
    another endpoint than its path names, or a 500 when the path did not start with
    SCRIPT_NAME."""
    front = shared(kind)
    body = json.dumps(generic_close("FWD-1")).encode()
    cases = [
        # (method, path, headers, the status without the headers)
        ("GET", "/healthz", {"SCRIPT_NAME": "/elsewhere"}, 200),  # was a 500
        ("GET", "/nowhere/healthz", {"SCRIPT_NAME": "/nowhere"}, 404),  # was /healthz: 200
        ("POST", "/x/webhooks/generic", {"SCRIPT_NAME": "/x"}, 404),  # was a close: 200
        ("GET", "/nowhere", {"PATH_INFO": "/healthz"}, 404),
        ("GET", "/healthz", {"SCRIPT_NAME": "/healthz", "PATH_INFO": "/x"}, 200),
    ]
    for method, path, headers, status in cases:
        data = request(method, f"{path}?token={SECRET}", body, {**headers, "Connection": "close"})

        answer = exchange(front.port, data)

        assert status_of(answer) == status, (path, headers, answer[:300])


# --- limits said at once, whatever the pace ------------------------------------------------


def test_a_head_over_64_kib_is_431_even_when_it_arrives_at_once(shared):
    """The head's limit (64 KiB) held only while a head had no end: ten 7,000-byte fields
    (70 KB, each field and their count within gunicorn's limits) sent in one go were served.
    One under the limit, sent the same way, still is."""
    front = shared("procfile", max_body_bytes=100_000)
    body = json.dumps(generic_close("HEAD-1")).encode()

    def sent_with(fields: int) -> bytes:
        pad = {f"X-H{i}": "h" * 7000 for i in range(fields)}
        return request("POST", HOOK, body, {**pad, "Connection": "close"})

    assert len(sent_with(9)) < 64 * 1024 < len(sent_with(10)) - len(body)
    answer = exchange(front.port, sent_with(10))

    status, headers, payload = json_answer(answer)
    assert status == 431 and headers["content-type"] == "application/json", answer[:300]
    assert payload == {
        "error": "request_header_fields_too_large",
        "reason": "the request head is too large",
    }
    assert status_of(exchange(front.port, sent_with(9))) == 200


@pytest.mark.parametrize(
    "chunks",
    [
        b"%x\r\n" % (MAX_BODY + 1),  # one byte over, its data not sent yet
        b"ffffffffffffffffffff\r\n",
        b"%x\r\n%s\r\n%x\r\n" % (MAX_BODY - 10, b" " * (MAX_BODY - 10), 11),  # the total
    ],
    ids=["one-over", "huge", "running-total"],
)
def test_a_chunk_size_over_the_limit_is_413_at_once(shared, chunks):
    """A chunk-size line that takes the body past max_body_bytes is refused when it is
    read, as the same Content-Length is: the sender was kept waiting for its data until the
    deadline, then told 408."""
    front = shared("procfile", body_timeout_seconds=30)
    head = f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    began = time.monotonic()

    answer = exchange(front.port, head + chunks, timeout=5)

    assert time.monotonic() - began < 3, answer[:300]
    status, headers, payload = json_answer(answer)
    assert status == 413 and headers["content-type"] == "application/json", answer[:300]
    assert payload == {
        "error": "payload_too_large",
        "reason": f"the body is over the {MAX_BODY}-byte limit",
    }


def test_an_expected_body_over_the_limit_is_refused_without_100_continue(shared):
    """A sender that expects 100-continue waits for it before sending its body: told 413 at
    once, never "100 Continue" (which had it send a body the view then refused unread)."""
    front = shared("procfile")
    head = (
        f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Expect: 100-continue\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n"
    ).encode()

    answer = exchange(front.port, head, timeout=5)

    assert b"100 Continue" not in answer, answer[:300]
    status, headers, payload = json_answer(answer)
    assert status == 413 and headers["connection"] == "close", answer[:300]
    assert payload["error"] == "payload_too_large"
    within = head.replace(b"%d" % (MAX_BODY + 1), b"2")
    assert exchange(front.port, within, timeout=2).startswith(b"HTTP/1.1 100 Continue\r\n")


def test_a_head_that_never_arrives_is_answered_408_naming_the_head(shared):
    front = shared("procfile", body_timeout_seconds=1)
    head = b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\nX-Slow: "

    answer = exchange(front.port, head, timeout=15)

    status, headers, body = json_answer(answer)
    assert status == 408 and headers["content-type"] == "application/json"
    assert body == {
        "error": "request_timeout",
        "reason": "the request head did not arrive in time",
    }


# (method, path, status, the Allow header's methods: None when there is none)
OTHER_METHODS = [
    ("OPTIONS", "/webhooks/generic", 405, {"HEAD", "POST"}),
    ("OPTIONS", "/webhooks/unknown", 404, None),
    ("GET", "/webhooks/generic", 405, {"HEAD", "POST"}),
    ("GET", "/webhooks/unknown", 404, None),
    ("DELETE", "/webhooks/generic", 405, {"HEAD", "POST"}),
    ("PROPFIND", "/webhooks/unknown", 404, None),
    ("HEAD", "/webhooks/generic", 200, None),
    ("HEAD", "/webhooks/unknown", 404, None),
    ("OPTIONS", "/healthz", 405, {"GET", "HEAD"}),
]


def test_every_method_on_the_webhook_route_is_answered_in_json(shared):
    """Flask answered OPTIONS itself, 200 and an empty text/html page, even for a helpdesk
    that is not configured; the HEAD probe was text/html too. A method a route does not take
    is 405 naming the ones it does; an unknown helpdesk is 404 whatever the method."""
    front = shared("procfile")
    for method, path, status, allowed in OTHER_METHODS:
        answer = exchange(front.port, request(method, path, headers={"Connection": "close"}))

        head, _, body = answer.partition(b"\r\n\r\n")
        assert status_of(answer) == status, (method, path, answer[:300])
        headers = json_answer(head + b"\r\n\r\n{}")[1]
        assert headers["content-type"] == "application/json", (method, path, headers)
        found = headers.get("allow")
        assert (None if found is None else {m.strip() for m in found.split(",")}) == allowed, (
            method,
            path,
            headers,
        )
        if method == "HEAD":
            assert body == b"", (path, body)
        else:
            assert set(json.loads(body)) == {"error", "reason"}, (method, path, body)


def test_an_integer_past_what_a_float_holds_is_number_out_of_range(shared):
    """json.loads refuses an integer of more than 4,300 digits (Python's int max-str-digits):
    it was "not valid JSON" while 1e400 was out of range. Valid JSON, a number no float holds:
    out of range, as 1e400 is, from one digit past a float on."""
    front = shared("procfile", max_body_bytes=100_000)
    for digits, status, code in [
        ("9" * 4301, 400, "number_out_of_range"),
        ("9" * 90_000, 400, "number_out_of_range"),
        ("1" + "0" * 309, 400, "number_out_of_range"),
        ("-1" + "0" * 309, 400, "number_out_of_range"),
        ("1" + "0" * 308, 200, None),
    ]:
        payload = json.dumps(generic_close(f"BIG-{len(digits)}-{digits[0]}"))
        body = (payload[:-1] + ', "extra": ' + digits + "}").encode()
        answer = exchange(front.port, request("POST", HOOK, body, {"Connection": "close"}))

        assert status_of(answer) == status, (len(digits), answer[:300])
        if code is not None:
            assert json_answer(answer)[2] == {
                "error": "number_out_of_range",
                "reason": "a number in the body is out of range",
            }


@pytest.mark.parametrize("kind", ["procfile", "serve"])
def test_a_click_leaves_no_reference_and_no_name_in_the_servers_log(start, fake_helpdesk, kind):
    # A survey sent through the running server, its score link opened (a person's browser,
    # a scanner, an edited reference, a misspelled path, a refused method): the log, at DEBUG
    # for the app and gunicorn alike, holds neither the reference nor the agent's name.
    front = start(kind, log_level="debug", survey=survey_section())
    name = "Zinaida Secretname"
    body = json.dumps(generic_close("D-LOG", agent_name=name)).encode()
    answer = exchange(front.port, request("POST", HOOK, body, {"Connection": "close"}))
    assert status_of(answer) == 200, answer[:300]
    if kind == "procfile":
        front.cluster.start_worker()  # the Procfile's worker: line sends the reply
    deadline = time.monotonic() + 30
    while not fake_helpdesk.api_requests() and time.monotonic() < deadline:
        time.sleep(0.1)
    [reply] = [r for r in fake_helpdesk.api_requests() if r["method"] == "POST"]
    token = re.search(r"/s/([\w.-]+)/5", str(reply["body"])).group(1)
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"}

    for method, path, headers in (
        ("GET", f"/s/{token}/5", browser),
        ("HEAD", f"/s/{token}", browser),
        ("GET", f"/s/{token}/4", {"User-Agent": "Mimecast-URL-Protect/1.0"}),
        ("GET", f"/s/{token[:-1]}/5", browser),
        ("GET", f"/S/{token}", browser),
        ("GET", f"/s%2F{token}", browser),
        ("POST", f"/s/{token}/5", browser),
    ):
        exchange(front.port, request(method, path, b"", {**headers, "Connection": "close"}))
    time.sleep(0.5)  # the worker writes its last lines

    log = front.log()
    assert "short-link.click" in log  # the app logged the clicks...
    assert tokens.survey_key(token) not in log and token not in log  # ...never the reference
    assert name not in log and "Secretname" not in log
