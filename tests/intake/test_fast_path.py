"""The webhooks' fast path (``intake.web.WebhookFastPath``) answers as the Flask route does.

Every vendor's kit posts the same requests to two apps on two databases with one clock: the
app as built (the fast path in front) and the same app built without it (ProxyFix and all else
as they are).
Each answer must be the same to the byte (status, headers, body) and log the same lines, for
a close accepted, repeated, ignored, refused at every step the route refuses, and failing
unexpectedly; and the fast path must have taken the requests it is for (Flask's
``request_started`` is not sent for them) and no others.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask import Response
from flask import request_started
from flask.wrappers import Request
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from csat_hook.app import create_app
from csat_hook.errors import ServiceUnavailableError
from csat_hook.intake.receive import Outcome
from csat_hook.intake.web import _asks_for_a_websocket
from csat_hook.intake.web import _bindable_host
from csat_hook.intake.web import _headers
from csat_hook.intake.web import _mimetype
from tests import schema_template
from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import load_kits
from tests.no_fast_path import without_fast_path

KITS = load_kits()

# LogRecord's own attributes: anything else on a record is a field the line was logged with.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class Twin:
    """One of the two apps: its test client, and how many requests Flask dispatched."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client = app.test_client()
        self.dispatched = 0
        request_started.connect(self._started, app, weak=False)

    def _started(self, sender: Any, **extra: Any) -> None:
        self.dispatched += 1

    def close(self) -> None:
        request_started.disconnect(self._started, self.app)


def _lines(records: list[logging.LogRecord]) -> list[tuple[Any, ...]]:
    """What each log line says: logger, level, message, its fields, the exception's type."""
    return [
        (
            record.name,
            record.levelname,
            record.getMessage(),
            sorted((k, repr(v)) for k, v in vars(record).items() if k not in _STANDARD),
            record.exc_info[0] if record.exc_info else None,
        )
        for record in records
    ]


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def make_twins(
    kit: Kit,
    make_config: Callable[..., Any],
    make_services: Callable[..., Any],
    fake_helpdesk: Any,
    tmp_path: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., tuple[Twin, Twin]]]:
    """The two apps for ``kit``'s helpdesk, with ``server`` options: the app as built, and
    the same app built without the fast path (ProxyFix and all else as they are)."""
    made: list[Twin] = []

    def make(**server: Any) -> tuple[Twin, Twin]:
        options = {"kind": kit.kind, **kit.options(fake_helpdesk.url, tmp_path)}
        fast = create_app(
            services=make_services(make_config(helpdesks={kit.kind: options}, server=server))
        )
        other_url = f"sqlite:///{tmp_path / f'twin{len(made)}.sqlite3'}"
        schema_template.sqlite_copy(tmp_path_factory.getbasetemp(), other_url)
        with without_fast_path():
            plain = create_app(
                services=make_services(
                    make_config(
                        helpdesks={kit.kind: options}, database={"url": other_url}, server=server
                    )
                )
            )
        pair = (Twin(fast), Twin(plain))
        made.extend(pair)
        return pair

    yield make
    for twin in made:
        twin.close()


@pytest.fixture
def twins(make_twins: Callable[..., tuple[Twin, Twin]]) -> tuple[Twin, Twin]:
    return make_twins()


def _exchange(
    twins: tuple[Twin, Twin], caplog: pytest.LogCaptureFixture, **post: Any
) -> tuple[int, int]:
    """Post the same request to both apps; assert the same answer and log lines; how many
    requests Flask dispatched in each (fast, plain)."""
    return _answered(twins, caplog, **post)[1]


def _answered(
    twins: tuple[Twin, Twin], caplog: pytest.LogCaptureFixture, **post: Any
) -> tuple[tuple[int, list[str]], tuple[int, int]]:
    """As :func:`_exchange`; the answer's status and the log lines' messages first."""
    answers = []
    method = post.pop("method", "POST")
    for twin in twins:
        before = twin.dispatched
        caplog.clear()
        with caplog.at_level(logging.DEBUG):
            response = twin.client.open(method=method, **post)
        answers.append(
            (
                response.status,
                list(response.headers.items()),  # in order: as a server writes them
                response.get_data(),
                _lines(caplog.records),
                twin.dispatched - before,
            )
        )
    fast, plain = answers
    assert fast[:4] == plain[:4]
    status = int(fast[0].split()[0])
    return (status, [line[2] for line in fast[3]]), (fast[4], plain[4])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_answer_is_the_routes(
    kit: Kit, twins: tuple[Twin, Twin], clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"/webhooks/{kit.kind}"
    body, headers, query = kit.closed(clock())
    taken = (0, 1)  # the fast path answered; Flask dispatched the plain app's request

    # Accepted, then the same close again, then an event that is no close.
    assert (
        _exchange(twins, caplog, path=url, data=body, headers=headers, query_string=query) == taken
    )
    assert (
        _exchange(twins, caplog, path=url, data=body, headers=headers, query_string=query) == taken
    )
    other, other_headers, other_query = kit.other(clock())
    assert (
        _exchange(
            twins, caplog, path=url, data=other, headers=other_headers, query_string=other_query
        )
        == taken
    )
    # Refused: a tampered request (401 with its challenge), a body that is not JSON, a
    # compressed body, a transfer coding gunicorn does not decode, a parameter given twice,
    # a body over the limit.
    tampered = kit.tamper(kit.closed(clock()))
    assert (
        _exchange(
            twins, caplog, path=url, data=tampered[0], headers=tampered[1], query_string=tampered[2]
        )
        == taken
    )
    junk, junk_headers, junk_query = kit.sign(b'{"id": 1,', clock())
    assert (
        _exchange(twins, caplog, path=url, data=junk, headers=junk_headers, query_string=junk_query)
        == taken
    )
    body, headers, query = kit.closed(clock())
    for extra in ({"Content-Encoding": "gzip"}, {"Transfer-Encoding": "gzip, chunked"}):
        assert (
            _exchange(
                twins, caplog, path=url, data=body, headers={**headers, **extra}, query_string=query
            )
            == taken
        )
    doubled = "&".join(f"{k}={v}" for k, v in query.items()) + "&x=1&x=2"
    assert (
        _exchange(twins, caplog, path=url, data=body, headers=headers, query_string=doubled)
        == taken
    )
    limit = twins[0].app.config["MAX_CONTENT_LENGTH"]
    large, large_headers, large_query = kit.sign(b" " * (limit + 1), clock())
    assert (
        _exchange(
            twins, caplog, path=url, data=large, headers=large_headers, query_string=large_query
        )
        == taken
    )

    # Read as Werkzeug reads them: a content type with parameters and capitals, header
    # names with underscores or beyond ASCII, an empty query, a mount point (ASCII or not).
    variants: list[dict[str, Any]] = [
        {"headers": {**headers, "Content-Type": "Application/JSON; Charset=UTF-8"}},
        {"headers": {**headers, "X_Odd_Name": "1", "X-Stra\u00dfe": "2"}},
        {
            "headers": headers,
            "query_string": query or "",
            "environ_overrides": {"SCRIPT_NAME": "/m/"},
        },
        {"headers": headers, "environ_overrides": {"SCRIPT_NAME": "/m\u00c3\u00a4"}},
    ]
    for variant in variants:
        variant.setdefault("query_string", query)
        assert _exchange(twins, caplog, path=url, data=body, **variant) == taken

    # Not the fast path's: a helpdesk not configured, a trailing slash, a doubled slash, a
    # name beyond ASCII, a HEAD and a GET of the URL.
    flask = (1, 1)
    for path in (
        "/webhooks/nope",
        url + "/",
        "/webhooks//" + kit.kind,
        "/webhooks/" + kit.kind + "%C3%A4",
    ):
        assert (
            _exchange(twins, caplog, path=path, data=body, headers=headers, query_string=query)
            == flask
        )
    assert _exchange(twins, caplog, method="HEAD", path=url) == flask
    # Another method is Flask's 405, a refusal logged as any other (it was logged nowhere).
    for method in ("GET", "PUT", "PATCH", "DELETE", "OPTIONS"):
        assert _answered(
            twins, caplog, method=method, path=url, data=body, headers=headers, query_string=query
        ) == ((405, ["webhook.refused"]), flask), method


def _when_receive_raises(
    kit: Kit,
    twins: tuple[Twin, Twin],
    clock: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> Any:
    """A close posted to both apps while their intake raises ``error``: the same answer and
    log lines from both, each dispatched by Flask once (its handlers answer it), and that
    answer, posted again to the first."""

    def failing(helpdesk: str, webhook: Any) -> Any:
        raise error

    for twin in twins:
        monkeypatch.setattr(twin.app.extensions["csat_hook.intake"], "receive", failing)
    body, headers, query = kit.closed(clock())
    path = f"/webhooks/{kit.kind}"
    assert _exchange(twins, caplog, path=path, data=body, headers=headers, query_string=query) == (
        0,
        1,
    )
    return twins[0].client.post(path, data=body, headers=headers, query_string=query)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unexpected_failure_is_the_routes_500(
    kit: Kit,
    twins: tuple[Twin, Twin],
    clock: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = _when_receive_raises(kit, twins, clock, caplog, monkeypatch, RuntimeError("a defect"))
    assert answer.status_code == 500


# Requests Werkzeug's own URL map routes another way than by method and path, or Flask
# refuses before routing: a WebSocket handshake (an Upgrade header; the app's map ignores it,
# Werkzeug's matches WebSocket rules only), a scheme of ws/wss (a proxy's X-Forwarded-Proto
# behind ProxyFix; the same), a Host whose name IDNA cannot encode (an empty or 64-character
# label: Werkzeug's BadHost, a 400). Each must get Flask's answer.
_NOT_ROUTED_AS_POSTED: dict[str, dict[str, Any]] = {
    "websocket-upgrade": {"headers": {"Connection": "keep-alive, Upgrade", "Upgrade": "WebSocket"}},
    "ws-scheme": {"environ_overrides": {"wsgi.url_scheme": "wss"}},
    "long-host-label": {"headers": {"Host": "a" * 64 + ".example.com"}},
    "empty-host-label": {"headers": {"Host": "hooks..example.com:8000"}},
    "leading-dot-host": {"headers": {"Host": ".example.com"}},
}


# Upgrades no URL map routes by (Werkzeug's looks for a WebSocket handshake only): HTTP/2's
# cleartext upgrade (RFC 7540 §3.2, which RFC 9113 removed; Java's HttpClient asks for it on
# every request to an http:// URL) as a client sends it and as a bare header in another
# case, and TLS's (RFC 2817). Each is the plain POST it also is: the fast path's.
_TAKEN_AS_POSTED: dict[str, dict[str, Any]] = {
    "h2c-upgrade": {
        "headers": {
            "Connection": "Upgrade, HTTP2-Settings",
            "Upgrade": "h2c",
            "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA",
        }
    },
    "h2c-bare": {"headers": {"Upgrade": "H2C"}},
    "tls-upgrade": {"headers": {"Connection": "Upgrade", "Upgrade": "TLS/1.0, HTTP/1.1"}},
}


def _answered_as_posted(
    kit: Kit,
    twins: tuple[Twin, Twin],
    closed: tuple[Any, dict[str, str], Any],
    caplog: pytest.LogCaptureFixture,
    shape: str,
) -> tuple[tuple[int, list[str]], tuple[int, int]]:
    """``closed`` (``kit.closed``'s body, headers and query) posted to both apps in the
    ``shape`` of :data:`_NOT_ROUTED_AS_POSTED` or :data:`_TAKEN_AS_POSTED`
    (:func:`_answered`)."""
    body, headers, query = closed
    variant = {**_NOT_ROUTED_AS_POSTED, **_TAKEN_AS_POSTED}[shape]
    return _answered(
        twins,
        caplog,
        path=f"/webhooks/{kit.kind}",
        data=body,
        headers={**headers, **variant.get("headers", {})},
        query_string=query,
        environ_overrides=variant.get("environ_overrides", {}),
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("shape", sorted(_NOT_ROUTED_AS_POSTED))
def test_a_request_flask_routes_otherwise_is_flasks(
    kit: Kit, twins: tuple[Twin, Twin], clock: Any, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    assert _answered_as_posted(kit, twins, kit.closed(clock()), caplog, shape)[1] == (1, 1)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("shape", ["websocket-upgrade", "ws-scheme"])
def test_a_close_asking_to_upgrade_is_received_either_way(
    kit: Kit, twins: tuple[Twin, Twin], clock: Any, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    """Upgrade is a hint a server may ignore (RFC 9110 §7.8): the close is received, as the
    same close without it is (it was a 405 naming HEAD alone, logged nowhere)."""
    closed = kit.closed(clock())
    answered = _answered_as_posted(kit, twins, closed, caplog, shape)
    body, headers, query = closed
    again = _answered(
        twins, caplog, path=f"/webhooks/{kit.kind}", data=body, headers=headers, query_string=query
    )
    assert answered[0][0] == again[0][0] == 200
    assert "webhook.refused" not in answered[0][1]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("shape", sorted(_TAKEN_AS_POSTED))
def test_a_close_asking_for_another_protocol_is_the_fast_paths(
    kit: Kit, twins: tuple[Twin, Twin], clock: Any, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    """An upgrade to anything but WebSocket is ignored by every URL map, as servers may
    (RFC 9110 §7.8): the fast path answers it (Flask dispatches none), accepted or refused,
    with the bytes Flask answers; ``Upgrade: h2c`` went to Flask (the same answer, slower)."""
    answered = _answered_as_posted(kit, twins, kit.closed(clock()), caplog, shape)
    assert answered[0][0] == 200 and "webhook.refused" not in answered[0][1]
    assert answered[1] == (0, 1)
    refused = _answered_as_posted(kit, twins, kit.tamper(kit.closed(clock())), caplog, shape)
    body, headers, query = kit.tamper(kit.closed(clock()))
    plain = _answered(
        twins, caplog, path=f"/webhooks/{kit.kind}", data=body, headers=headers, query_string=query
    )
    assert refused == plain and refused[1] == (0, 1)


_UPGRADE_VALUES = st.lists(
    st.sampled_from(["websocket", "WebSocket", "WEBSOCKET", "h2c", " ", ",", "\t", "/13"]),
    max_size=4,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(st.none(), _UPGRADE_VALUES),
    st.one_of(st.none(), st.sampled_from(["Upgrade", "keep-alive, UPGRADE", "close", ""])),
    st.sampled_from(["http", "https"]),
)
def test_a_request_werkzeug_routes_as_a_websocket_is_never_taken(
    upgrade: str | None, connection: str | None, scheme: str
) -> None:
    """Whenever Werkzeug's own URL map binds a request as a WebSocket one (a ws/wss scheme:
    it matches WebSocket rules only), the fast path leaves the request to Flask."""
    environ = {
        "wsgi.url_scheme": scheme,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/zendesk",
    }
    if upgrade is not None:
        environ["HTTP_UPGRADE"] = upgrade
    if connection is not None:
        environ["HTTP_CONNECTION"] = connection
    if Map().bind_to_environ(environ).url_scheme in {"ws", "wss"}:
        assert _asks_for_a_websocket(environ)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_doubled_slash_is_the_same_404_either_way(
    kit: Kit, twins: tuple[Twin, Twin], clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A leading doubled slash is no webhook URL, as a doubled slash elsewhere is not: it was
    accepted (Werkzeug's router strips the leading slashes). PATH_INFO as a server gives it:
    the test client reads ``//webhooks/<name>`` as a host and a path."""
    body, headers, query = kit.closed(clock())
    for path in (
        f"//webhooks/{kit.kind}",
        f"///webhooks/{kit.kind}",
        f"//webhooks/{kit.kind}/",
        f"/webhooks//{kit.kind}",
        f"/webhooks/{kit.kind}/",
    ):
        answered = _answered(
            twins,
            caplog,
            path="/",
            data=body,
            headers=headers,
            query_string=query,
            environ_overrides={"PATH_INFO": path},
        )
        assert answered == ((404, ["webhook.refused"]), (1, 1)), path


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_rule_that_wins_over_the_route_is_flasks(
    kit: Kit, twins: tuple[Twin, Twin], clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A rule of the app's for the very URL (Werkzeug prefers it to the route's converter)."""
    for twin in twins:
        twin.app.add_url_rule(
            f"/webhooks/{kit.kind}", "other", lambda: ("another view", 200), methods=["POST"]
        )
    body, headers, query = kit.closed(clock())
    path = f"/webhooks/{kit.kind}"
    assert _exchange(twins, caplog, path=path, data=body, headers=headers, query_string=query) == (
        1,
        1,
    )


class _Picky(Request):
    """A request class of an app's own, one that trusts one host only."""

    trusted_hosts = ("hooks.example.com",)  # type: ignore[assignment]


def _close_for_each_host(
    kit: Kit,
    twins: tuple[Twin, Twin],
    clock: Any,
    caplog: pytest.LogCaptureFixture,
    hosts: tuple[str, ...],
) -> None:
    """The kit's close posted to both apps once per ``Host``: the same answers each time."""
    for host in hosts:
        body, headers, query = kit.closed(clock())
        _exchange(
            twins,
            caplog,
            path=f"/webhooks/{kit.kind}",
            data=body,
            headers={**headers, "Host": host},
            query_string=query,
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_apps_own_request_class_reads_the_request(
    kit: Kit, twins: tuple[Twin, Twin], clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    for twin in twins:
        twin.app.request_class = _Picky
    _close_for_each_host(kit, twins, clock, caplog, ("elsewhere.example.net", "hooks.example.com"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_trusted_hosts_are_flasks_to_check(
    kit: Kit, twins: tuple[Twin, Twin], clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """With Flask's TRUSTED_HOSTS set, a request for another host is Flask's 400."""
    for twin in twins:
        twin.app.config["TRUSTED_HOSTS"] = ["hooks.example.com"]
    _close_for_each_host(kit, twins, clock, caplog, ("elsewhere.example.net", "hooks.example.com"))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_answer_json_cannot_write_is_the_routes_500(
    kit: Kit,
    twins: tuple[Twin, Twin],
    clock: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The accepted answer's JSON failing (a value the provider cannot write) is the app's
    logged 500, as when jsonify raises in the route; not an exception out of the app."""
    body, headers, query = kit.closed(clock())
    path = f"/webhooks/{kit.kind}"
    for status in (200, 202):  # jsonify's answer written by the fast path, and the provider's

        def unwritable(helpdesk: str, webhook: Any, status: int = status) -> Outcome:
            return Outcome(body={"ids": {1, 2}}, status=status)

        for twin in twins:
            monkeypatch.setattr(twin.app.extensions["csat_hook.intake"], "receive", unwritable)
        assert _exchange(
            twins, caplog, path=path, data=body, headers=headers, query_string=query
        ) == (0, 1)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_behind_a_proxy_the_forwarded_host_and_scheme_are_read_as_flask_reads_them(
    kit: Kit,
    make_twins: Callable[..., tuple[Twin, Twin]],
    clock: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With ``server.trust_proxy`` (ProxyFix in front of the fast path), what the proxy
    forwards is the host and scheme Werkzeug routes by."""
    twins = make_twins(trust_proxy=True)
    url = f"/webhooks/{kit.kind}"
    for forwarded, taken in (
        ({"X-Forwarded-Host": "hooks.example.com", "X-Forwarded-Proto": "https"}, (0, 1)),
        ({"X-Forwarded-Host": "hooks..example.com"}, (1, 1)),
        ({"X-Forwarded-Proto": "wss"}, (1, 1)),
    ):
        body, headers, query = kit.closed(clock())
        assert (
            _exchange(
                twins,
                caplog,
                path=url,
                data=body,
                headers={**headers, "X-Forwarded-For": "203.0.113.9", **forwarded},
                query_string=query,
            )
            == taken
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_database_outage_is_the_routes_503(
    kit: Kit,
    twins: tuple[Twin, Twin],
    clock: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The 503 with its Retry-After, logged as the route's handler logs it."""
    down = ServiceUnavailableError("the database is unavailable; retry later")
    answer = _when_receive_raises(kit, twins, clock, caplog, monkeypatch, down)
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "30")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_body_without_a_length_is_read_as_the_route_reads_it(
    kit: Kit, twins: tuple[Twin, Twin], clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A chunked body (no Content-Length, the stream terminated): accepted, and over the
    limit the route's 413."""
    limit = twins[0].app.config["MAX_CONTENT_LENGTH"]
    path = f"/webhooks/{kit.kind}"
    statuses = []
    for body, headers, query in (kit.closed(clock()), kit.sign(b" " * (limit + 1), clock())):
        answers = []
        for twin in twins:
            before = twin.dispatched
            caplog.clear()
            with caplog.at_level(logging.DEBUG):
                response = twin.client.post(
                    path,
                    input_stream=io.BytesIO(body),
                    headers={**headers, "Transfer-Encoding": "chunked"},
                    query_string=query,
                )
            answers.append(
                (
                    response.status,
                    list(response.headers.items()),
                    response.get_data(),
                    _lines(caplog.records),
                    twin.dispatched - before,
                )
            )
        assert answers[0][:4] == answers[1][:4]
        assert (answers[0][4], answers[1][4]) == (0, 1)
        statuses.append(answers[0][0])
    assert statuses == ["200 OK", "413 REQUEST ENTITY TOO LARGE"]


class _Stamped(Response):
    """A response class of an app's own: every answer carries a header of its making."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.headers["X-Served-By"] = "csat-hook"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_apps_own_response_class_writes_the_accepted_answer(
    kit: Kit, twins: tuple[Twin, Twin], clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    for twin in twins:
        twin.app.response_class = _Stamped
    body, headers, query = kit.closed(clock())
    path = f"/webhooks/{kit.kind}"
    assert _exchange(twins, caplog, path=path, data=body, headers=headers, query_string=query) == (
        0,
        1,
    )


_NAMES = st.text(st.sampled_from("ABCXZ_-09ßİ"), min_size=1, max_size=8)
_ENVIRON = st.dictionaries(
    st.one_of(
        _NAMES.map(lambda name: "HTTP_" + name),
        st.sampled_from(
            [
                "CONTENT_TYPE",
                "CONTENT_LENGTH",
                "HTTP_CONTENT_TYPE",
                "HTTP_CONTENT_LENGTH",
                "PATH_INFO",
            ]
        ),
    ),
    # WSGI gives every value as latin-1 (one character a byte).
    st.one_of(st.just(""), st.text(st.characters(max_codepoint=255), max_size=30)),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(_ENVIRON)
def test_the_headers_and_mimetype_are_werkzeugs(environ: dict[str, str]) -> None:
    posted = Request(environ)
    assert _headers(environ) == {key.lower(): value for key, value in posted.headers.items()}
    assert _mimetype(environ.get("CONTENT_TYPE", "")) == posted.mimetype


_HOSTS = st.one_of(
    st.text(st.sampled_from("ab9-.:[]_ \u00e4"), max_size=12),
    st.tuples(st.integers(60, 66), st.sampled_from(["", ".x", ":80", ":443", "..x"])).map(
        lambda shape: "a" * shape[0] + shape[1]
    ),
)


@settings(max_examples=300, deadline=None)
@given(_HOSTS, st.sampled_from(["http", "https"]))
def test_a_host_werkzeug_refuses_is_never_taken(host: str, scheme: str) -> None:
    """Whenever Flask cannot bind its URL map to a request for ``host`` (a 400 before routing),
    the fast path leaves the request to it."""
    environ = {
        "HTTP_HOST": host,
        "wsgi.url_scheme": scheme,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/zendesk",
    }
    try:
        Flask("hosts").create_url_adapter(Request(environ))
    except HTTPException:
        assert not _bindable_host(host)
