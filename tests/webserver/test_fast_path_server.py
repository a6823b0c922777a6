"""Under gunicorn (the Procfile's ``web:``, csat-hook's worker), the webhooks' fast path
answers every request with the bytes the app without it answers, and logs the same lines.

Two servers on two databases, one with ``csat_hook.wsgi:app`` and one with
``tests.webserver.plain_wsgi:app`` (the same app, every request to Flask), get the same raw
requests, accepted ones and hostile ones, one connection each: the answers must be equal to
the byte but for the Date header and the time a survey is due (each server's own clock).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import LocalCluster
from tests.helpers import generic_close
from tests.rawhttp import chunked
from tests.rawhttp import exchange
from tests.rawhttp import request
from tests.rawhttp import status_of
from tests.webserver.test_real_sockets import HOOK
from tests.webserver.test_real_sockets import MAX_BODY
from tests.webserver.test_real_sockets import SECRET
from tests.webserver.test_real_sockets import write_config

pytestmark = pytest.mark.slow

_CLOSE = json.dumps(generic_close("d-1")).encode()
_JSON = {"Content-Type": "application/json", "Connection": "close"}


def _host(data: bytes, host: str) -> bytes:
    return data.replace(b"Host: 127.0.0.1\r\n", f"Host: {host}\r\n".encode(), 1)


# (what it is, the bytes sent, whether the client half-closes after them)
_REQUESTS: list[tuple[str, bytes, bool]] = [
    ("accepted", request("POST", HOOK, _CLOSE, _JSON), False),
    ("repeated", request("POST", HOOK, _CLOSE, _JSON), False),
    ("chunked", request("POST", HOOK, headers=_JSON, chunked_body=chunked(_CLOSE, 100)), False),
    ("expect-100", request("POST", HOOK, _CLOSE, {**_JSON, "Expect": "100-continue"}), False),
    ("http/1.0", request("POST", HOOK, _CLOSE, _JSON).replace(b"HTTP/1.1", b"HTTP/1.0"), False),
    ("absolute-form", request("POST", "http://elsewhere.example" + HOOK, _CLOSE, _JSON), False),
    ("%-escaped name", request("POST", HOOK.replace("generic", "%67eneric"), _CLOSE, _JSON), False),
    ("odd query", request("POST", HOOK + "&x=%zz&y=%ff%fe&=&&", _CLOSE, _JSON), False),
    ("doubled parameter", request("POST", HOOK + "&x=1&x=2", _CLOSE, _JSON), False),
    ("wrong token", request("POST", "/webhooks/generic?token=wrong", _CLOSE, _JSON), False),
    ("no content type", request("POST", HOOK, _CLOSE, {"Connection": "close"}), False),
    ("gzip", request("POST", HOOK, _CLOSE, {**_JSON, "Content-Encoding": "gzip"}), False),
    (
        "gzip, chunked",
        request("POST", HOOK, headers=_JSON, chunked_body=chunked(_CLOSE)).replace(
            b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip, chunked"
        ),
        False,
    ),
    ("over the limit", request("POST", HOOK, b" " * (MAX_BODY + 1), _JSON), False),
    (
        "shorter than its length",
        request("POST", HOOK, _CLOSE, _JSON).replace(
            f"Content-Length: {len(_CLOSE)}".encode(), f"Content-Length: {len(_CLOSE) + 9}".encode()
        ),
        True,
    ),
    # Werkzeug routes these by more than method and path (the app's URL map by both alone).
    (
        "websocket upgrade",
        request("POST", HOOK, _CLOSE, {**_JSON, "Connection": "Upgrade", "Upgrade": "websocket"}),
        False,
    ),
    # No map routes by these (the fast path's): HTTP/2's cleartext upgrade, bare and as sent.
    ("h2c upgrade", request("POST", HOOK, _CLOSE, {**_JSON, "Upgrade": "h2c"}), False),
    (
        "h2c upgrade as sent",
        request(
            "POST",
            HOOK,
            _CLOSE,
            {
                "Content-Type": "application/json",
                "Connection": "Upgrade, HTTP2-Settings",
                "Upgrade": "h2c",
                "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA",
            },
        ),
        False,
    ),
    ("ws absolute-form", request("POST", "ws://elsewhere.example" + HOOK, _CLOSE, _JSON), False),
    ("long host label", _host(request("POST", HOOK, _CLOSE, _JSON), "a" * 64 + ".x"), False),
    ("empty host label", _host(request("POST", HOOK, _CLOSE, _JSON), "hooks..x:80"), False),
    # Flask's: a doubled slash (leading: gunicorn's PATH_INFO keeps it), a trailing slash, a
    # name not configured.
    ("//webhooks", request("POST", "/" + HOOK, _CLOSE, _JSON), False),
    ("///webhooks", request("POST", "//" + HOOK, _CLOSE, _JSON), False),
    (
        "//webhooks absolute-form",
        request("POST", "http://elsewhere.example/" + HOOK, _CLOSE, _JSON),
        False,
    ),
    ("%2F-escaped //webhooks", request("POST", "/%2F" + HOOK[1:], _CLOSE, _JSON), False),
    ("webhooks//", request("POST", HOOK.replace("/generic", "//generic"), _CLOSE, _JSON), False),
    ("//healthz", request("GET", "//healthz", headers={"Connection": "close"}), False),
    ("trailing slash", request("POST", HOOK.replace("?", "/?"), _CLOSE, _JSON), False),
    ("not configured", request("POST", f"/webhooks/nope?token={SECRET}", _CLOSE, _JSON), False),
    # Another method (Flask's 405 with Allow, a refusal logged without the query or body).
    ("GET", request("GET", HOOK, headers={"Connection": "close"}), False),
    ("PUT", request("PUT", HOOK, _CLOSE, _JSON), False),
    ("OPTIONS", request("OPTIONS", HOOK, headers={"Connection": "close"}), False),
    # A refusal, then a close on the same connection.
    (
        "keep-alive",
        request("POST", "/webhooks/generic?token=wrong", _CLOSE, {})
        + request("POST", HOOK, json.dumps(generic_close("d-2")).encode(), _JSON),
        False,
    ),
]


# The status some of them get (each server the same): a hint to upgrade is ignored (the
# close there is the one "accepted" stored); a doubled slash is no path of ours.
_STATUSES = {
    "accepted": 200,
    "websocket upgrade": 200,
    "h2c upgrade": 200,
    "h2c upgrade as sent": 200,
    "ws absolute-form": 200,
    "//webhooks": 404,
    "///webhooks": 404,
    "//webhooks absolute-form": 404,
    "%2F-escaped //webhooks": 404,
    "webhooks//": 404,
    "//healthz": 404,
    "trailing slash": 404,
    "GET": 405,
    "PUT": 405,
    "OPTIONS": 405,
}


def _comparable(answer: bytes) -> bytes:
    """The answer without what each server says of its own clock."""
    answer = re.sub(rb"\r\nDate: [^\r]*", b"", answer)
    return re.sub(rb'"send_at":"[^"]*"', b'"send_at":"..."', answer)


def _app_lines(log: str) -> list[str]:
    """csat-hook's own log lines (``time level logger event fields``), without the time; not
    the master's start-up lines (the schema, the configuration's warnings: the Procfile's
    master says them for ``csat_hook.wsgi:app`` only, the plain app's worker makes the schema
    itself), which no request causes."""
    return [
        line.split(" ", 1)[1]
        for line in log.splitlines()
        if re.match(r"\S+ \w+ csat_hook\.", line)
        and " csat_hook.db.migrate " not in line
        and " config.warning " not in line
    ]


def test_gunicorn_answers_the_same_bytes_with_and_without_the_fast_path(
    tmp_path: Path, fake_helpdesk: Any
) -> None:
    fronts: list[LocalCluster] = []
    statuses: dict[str, int | None] = {}
    try:
        for name, app in (("fast", None), ("plain", "tests.webserver.plain_wsgi:app")):
            workdir = tmp_path / name
            workdir.mkdir()
            cluster = LocalCluster(write_config(workdir, fake_helpdesk.url), workdir, web_workers=1)
            fronts.append(cluster)
            cluster.start_web(log_level="info", app=app)
        ports = [int(front.url.rsplit(":", 1)[1]) for front in fronts]
        for what, data, half_close in _REQUESTS:
            fast, plain = (
                _comparable(exchange(port, data, half_close=half_close)) for port in ports
            )
            assert fast == plain, what
            assert fast.startswith(b"HTTP/1."), what
            statuses[what] = status_of(fast)
    finally:
        for front in fronts:
            front.stop()
    assert {what: statuses[what] for what in _STATUSES} == _STATUSES
    fast_log, plain_log = ((front.workdir / "web.log").read_text() for front in fronts)
    assert _app_lines(fast_log) == _app_lines(plain_log)
    assert "webhook.close" in fast_log
    refused_405 = [line for line in _app_lines(fast_log) if "status=405" in line]
    assert [line.split()[2] for line in refused_405] == ["webhook.refused"] * 3, refused_405
    assert [re.findall(r" method=(\S+)", line) for line in refused_405] == [
        ["GET"],
        ["PUT"],
        ["OPTIONS"],
    ]
    assert SECRET not in fast_log and "d-1" not in "".join(refused_405)
