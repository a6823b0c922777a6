"""The HTTP boundary classifies a failure by whether the request can have reached the vendor:
not sent (retry freely), or outcome unknown (look before sending again), or an answer."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from collections.abc import Iterator

import pytest
import requests
import responses
import urllib3.exceptions

from csat_hook import retry
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.helpdesks.transport import never_sent
from csat_hook.helpdesks.transport import request_secrets
from csat_hook.retry import Backoff
from csat_hook.retry import parse_retry_after

ANSWER = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"id": 1}'


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP request (headers and a Content-Length body) from ``conn``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@contextlib.contextmanager
def loopback(
    serve: Callable[[socket.socket, list[bytes]], None], *, rcvbuf: int | None = None
) -> Iterator[tuple[str, list]]:
    """A one-thread TCP server running ``serve(conn, seen)`` for each connection; ``rcvbuf``:
    its connections' receive buffer (set before listening, so the window they offer is that
    small), else the system's."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf is not None:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    seen: list[bytes] = []
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                serve(conn, seen)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", seen
    finally:
        stop.set()
        server.close()
        thread.join(2)


def post(client: HttpClient, url: str) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        client.request("POST", url + "/api/messages", json={"text": "survey"})
    return caught.value


def test_an_answer_slower_than_the_read_timeout_is_an_unknown_outcome():
    def slow(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        time.sleep(1.0)  # the vendor is still working when the client gives up
        conn.sendall(ANSWER)

    with loopback(slow) as (url, seen):
        error = post(HttpClient(connect_timeout=1, read_timeout=0.2), url)

    assert seen and seen[0].startswith(b"POST /api/messages")
    assert error.outcome_unknown and error.retryable and error.http_status is None
    host = url.removeprefix("http://")
    assert error.message == f"POST {host}: timed out waiting for the answer (outcome unknown)"


def test_a_connection_closed_after_the_request_was_read_is_an_unknown_outcome():
    def hang_up(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))  # taken (and, for all we know, acted on)

    with loopback(hang_up) as (url, seen):
        error = post(HttpClient(connect_timeout=1, read_timeout=2), url)

    assert len(seen) == 1
    assert error.outcome_unknown and error.retryable
    assert error.message.endswith("connection dropped (outcome unknown)")


def test_a_reset_after_the_request_was_read_is_an_unknown_outcome():
    def reset(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    with loopback(reset) as (url, _):
        error = post(HttpClient(connect_timeout=1, read_timeout=2), url)

    assert error.outcome_unknown and error.retryable


def test_a_pooled_keep_alive_connection_closed_under_the_next_request_is_unknown():
    # The first request is answered on a keep-alive connection; the server then takes the
    # second request on that same connection and closes it without answering. From the
    # client this is indistinguishable from a stale pooled connection: possibly sent.
    def once_then_hang_up(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(ANSWER)
        seen.append(read_request(conn))

    client = HttpClient(connect_timeout=1, read_timeout=2)
    with loopback(once_then_hang_up) as (url, seen):
        assert client.request("POST", url + "/api/messages", json={}).json() == {"id": 1}
        error = post(client, url)

    assert len(seen) == 2 and seen[1].startswith(b"POST")
    assert error.outcome_unknown


def test_an_answer_cut_off_mid_body_is_an_unknown_outcome():
    def truncated(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"id"\r\n'
        )

    with loopback(truncated) as (url, _):
        error = post(HttpClient(connect_timeout=1, read_timeout=2), url)

    assert error.outcome_unknown and error.retryable


@pytest.mark.parametrize(
    ("interim", "pause"),
    [
        (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n", 0.0),
        (b"HTTP/1.1 102 Processing\r\n\r\n", 0.0),
        (b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 103 Early Hints\r\n\r\n", 0.0),
        # What 102 is for: the final answer comes later.
        (b"HTTP/1.1 102 Processing\r\n\r\n", 0.3),
    ],
)
def test_an_interim_1xx_answer_is_skipped_for_the_final_one(interim, pause):
    # RFC 9110 15.2: a client must read past any 1xx before the final answer. http.client
    # skips only 100: a 102 or 103 was taken for the answer, so a reply the vendor took was
    # recorded as failed ("HTTP 103", permanent, no id); and a final answer that came after
    # it stayed on the kept-alive connection and was read as the next request's: a refused
    # reply recorded as sent, with the other reply's id.
    refused = (
        b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Type: application/json\r\n"
        b'Content-Length: 18\r\n\r\n{"error":"closed"}'
    )

    def interim_then_answer(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(interim)
        time.sleep(pause)
        conn.sendall(ANSWER)
        seen.append(read_request(conn))
        conn.sendall(refused)

    client = HttpClient(connect_timeout=1, read_timeout=2)
    with loopback(interim_then_answer) as (url, seen):
        first = client.request("POST", url + "/api/messages", json={"text": "survey"})
        second = post(client, url)

    assert len(seen) == 2
    assert first.status_code == 200 and first.json() == {"id": 1}
    assert second.http_status == 422 and not second.outcome_unknown


def test_a_switch_of_protocols_nobody_asked_for_fails_and_its_connection_is_not_reused():
    # A 101 ends HTTP on the connection: what follows is not the next request's answer.
    refused = b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: 2\r\n\r\n{}"
    connections: list[int] = []

    def switch(conn: socket.socket, seen: list[bytes]) -> None:
        connections.append(1)
        seen.append(read_request(conn))
        if len(connections) == 1:
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
            time.sleep(0.3)
            conn.sendall(ANSWER)
            if read_request(conn):
                conn.sendall(refused)
        else:
            conn.sendall(refused)

    client = HttpClient(connect_timeout=1, read_timeout=2)
    with loopback(switch) as (url, _):
        first = post(client, url)
        second = post(client, url)

    assert first.http_status == 101 and not first.retryable
    assert second.http_status == 422


@pytest.mark.parametrize("location", [b"http://[::1", b"https://a:b@[::1/"])
@pytest.mark.parametrize("status", [b"302 Found", b"303 See Other", b"307 Temporary Redirect"])
def test_a_redirect_whose_target_cannot_be_parsed_is_still_its_status(location, status):
    # Never followed, but requests parses the target into response.next: one it cannot
    # parse raised ValueError out of the request, after the vendor answered; the delivery
    # took it for an unknown outcome and posted again at each attempt.
    def redirect(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 " + status + b"\r\nLocation: " + location + b"\r\n\r\n")

    with loopback(redirect) as (url, seen):
        error = post(HttpClient(connect_timeout=1, read_timeout=2), url)

    assert len(seen) == 1
    assert error.http_status == int(status[:3])
    # A 303 to a POST says the server acted on it (see the test below): looked up, not
    # failed; the others act on nothing.
    see_other = status.startswith(b"303")
    assert error.retryable is see_other and error.outcome_unknown is see_other


@pytest.mark.parametrize(
    ("status", "unknown"),
    [(301, False), (302, False), (303, True), (307, False), (308, False)],
)
@responses.activate
def test_a_see_other_after_a_post_is_an_unknown_outcome_other_redirects_a_refusal(status, unknown):
    # 303 See Other is how a server answers a POST it acted on ("the output of a POST
    # action", RFC 9110 15.4.4): failed for good, the reply in the dialog was shown failed,
    # never looked up, and `outbox retry` posted it again. None is followed.
    responses.post(
        "https://api.example/messages",
        status=status,
        headers={"Location": "https://api.example/messages/9"},
    )
    client = HttpClient(connect_timeout=1, read_timeout=2)

    with pytest.raises(DeliveryError) as caught:
        client.request("POST", "https://api.example/messages", json={"text": "hi"})

    error = caught.value
    assert len(responses.calls) == 1  # never followed
    assert error.http_status == status
    assert error.outcome_unknown is unknown and error.retryable is unknown
    assert "not followed" in error.message


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_an_answer_whose_headers_cannot_be_read_is_an_unknown_outcome_for_a_write(method):
    # Two Content-Length values that disagree: urllib3 refuses the answer (InvalidHeader),
    # which requests also raises for a request header it cannot send. This one came back
    # after the request was taken: not "not sent", a permanent failure of a reply the
    # vendor may have stored, but the answer unreadable, as a cut-off one.
    def two_lengths(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
            b'Content-Length: 9\r\nContent-Length: 90\r\n\r\n{"id": 1}'
        )

    with loopback(two_lengths) as (url, seen), pytest.raises(DeliveryError) as caught:
        HttpClient(connect_timeout=1, read_timeout=2).request(method, url + "/api/messages")

    assert len(seen) == 1
    assert caught.value.retryable
    assert caught.value.outcome_unknown or method == "GET"


def _silent(conn: socket.socket) -> None:
    time.sleep(1.5)


def _plain_http(conn: socket.socket) -> None:
    conn.recv(1024)  # the ClientHello, answered as a plain HTTP server answers it
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    time.sleep(0.3)


def _hang_up(conn: socket.socket) -> None:
    conn.recv(1024)


def _reset(conn: socket.socket) -> None:
    conn.recv(1024)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


@pytest.mark.parametrize("handshake", [_silent, _plain_http, _hang_up, _reset])
def test_a_tls_handshake_that_fails_was_never_sent(handshake):
    # No byte of the request leaves before the handshake is done. A handshake that timed
    # out, met a plain HTTP server, or was hung up on was an unknown outcome: looked up
    # before a resend, and recorded as sent (unconfirmed) by an alert destination that
    # skips unknown outcomes, though nothing went out.
    with loopback(lambda conn, seen: handshake(conn)) as (url, _):
        error = post(
            HttpClient(connect_timeout=1, read_timeout=0.5), url.replace("http:", "https:")
        )

    assert error.retryable and not error.outcome_unknown
    assert "(not sent)" in error.message


def test_a_refused_connection_was_never_sent():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed

    error = post(HttpClient(connect_timeout=1, read_timeout=1), f"http://127.0.0.1:{port}")

    assert error.retryable and not error.outcome_unknown
    assert error.message.endswith("connection failed (not sent)")


def test_a_5xx_is_an_answer_not_an_unknown_outcome():
    def unavailable(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")

    with loopback(unavailable) as (url, _):
        error = post(HttpClient(connect_timeout=1, read_timeout=2), url)

    assert error.retryable and not error.outcome_unknown and error.http_status == 503


def test_a_reason_phrase_that_is_not_https_own_is_left_out():
    # The status line's phrase is the vendor's free text, and the error is logged and stored.
    phrase = "Service Unavailable \x1b[31m" + "x" * 5000 + " \u00e9 Set-Cookie: secret"

    def odd(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        status = f"HTTP/1.1 503 {phrase}\r\nContent-Length: 0\r\n\r\n"
        conn.sendall(status.encode("latin-1"))

    with loopback(odd) as (url, _):
        error = post(HttpClient(connect_timeout=1, read_timeout=2), url)

    assert error.http_status == 503 and error.retryable
    assert str(error).endswith(": HTTP 503")
    assert "secret" not in str(error) and "\x1b" not in str(error)


@responses.activate
def test_a_reason_that_quotes_a_credential_of_the_request_is_left_out():
    """A vendor that echoes the request back: a bearer token, an API key in a header, Basic
    auth's decoded password, a clipped token. The reason is dropped whole (it is stored in
    last_error and logged); one that quotes no credential is kept."""
    key = "fd-key-0123456789abcdef"
    basic = base64.b64encode(f"{key}:X".encode()).decode()
    echoes = {
        "Bearer tok-0123456789abcdefghij": "token tok-0123456789abcdefghij revoked",
        "Token tok-0123456789abcdefghij": "TOKEN TOK-0123456789AB… revoked",
        f"Basic {basic}": f"api key {key} invalid",
    }
    url = "https://api.example/api/conversations/42"
    responses.get(url, status=401, json={})
    client = HttpClient()
    kept = "conversations: expired"  # the path's own words are no credential
    for authorization, said in [*echoes.items(), ("Bearer tok-0123456789abcdefghij", kept)]:
        with pytest.raises(DeliveryError) as caught:
            client.request(
                "GET",
                url,
                headers={"Authorization": authorization},
                explain=lambda _response, said=said: said,
            )
        assert caught.value.vendor_reason == (said if said == kept else None)
        assert "0123456789" not in caught.value.message


def test_a_reason_phrase_that_quotes_a_credential_of_the_request_is_left_out():
    token = "cw-0123456789abcdefghij"

    def echo(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(f"HTTP/1.1 401 bad token {token}\r\nContent-Length: 0\r\n\r\n".encode())

    with loopback(echo) as (url, _), pytest.raises(DeliveryError) as caught:
        HttpClient(connect_timeout=1, read_timeout=2).request(
            "POST", url + "/api/messages", headers={"api_access_token": token}
        )

    assert caught.value.http_status == 401 and str(caught.value).endswith(": HTTP 401")
    assert token[:12] not in str(caught.value)


class RaisingSession(requests.Session):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def request(self, *args: object, **kwargs: object) -> requests.Response:  # type: ignore[override]
        raise self.exc


def connect_failure(reason: Exception) -> requests.RequestException:
    """What requests raises when urllib3 could not connect (its exact wrapping)."""
    pool = urllib3.HTTPConnectionPool("desk.example.com")
    wrapped = urllib3.exceptions.MaxRetryError(pool, "/api", reason=reason)
    if type(reason) is urllib3.exceptions.ConnectTimeoutError:
        return requests.ConnectTimeout(wrapped)
    return requests.ConnectionError(wrapped)


@pytest.mark.parametrize(
    ("exc", "unknown"),
    [
        # Never sent: the connection did not open (timeout, refused, DNS).
        (connect_failure(urllib3.exceptions.ConnectTimeoutError(None, "connect timed out")), False),
        (connect_failure(urllib3.exceptions.NewConnectionError(None, "refused")), False),
        (connect_failure(urllib3.exceptions.NameResolutionError("desk", None, OSError())), False),
        # Possibly sent: a read timeout, a drop or reset while waiting, a stalled body.
        (requests.ReadTimeout("read timed out"), True),
        (
            requests.ConnectionError(
                urllib3.exceptions.ProtocolError(
                    "Connection aborted.", ConnectionResetError(104, "reset")
                )
            ),
            True,
        ),
        (
            requests.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, "/", "stalled")),
            True,
        ),
        (requests.exceptions.ChunkedEncodingError("broken"), True),
    ],
)
def test_requests_failures_are_classified_by_whether_they_can_have_been_sent(exc, unknown):
    client = HttpClient(session_factory=lambda: RaisingSession(exc))

    error = post(client, "https://desk.example.com")

    assert error.retryable
    assert error.outcome_unknown is unknown
    assert never_sent(exc) is not unknown


def test_a_connect_timeout_is_both_timeout_and_connection_error_but_never_sent():
    exc = connect_failure(urllib3.exceptions.ConnectTimeoutError(None, "connect timed out"))
    assert isinstance(exc, requests.Timeout) and isinstance(exc, requests.ConnectionError)

    error = post(HttpClient(session_factory=lambda: RaisingSession(exc)), "https://x.example")

    assert not error.outcome_unknown and error.message.endswith("connect timed out (not sent)")


def test_a_request_that_cannot_be_prepared_is_permanent():
    exc = requests.exceptions.InvalidURL("bad")
    error = post(HttpClient(session_factory=lambda: RaisingSession(exc)), "https://x.example")
    assert not error.retryable and not error.outcome_unknown


def _answer_each(conn: socket.socket, seen: list[bytes]) -> None:
    """A loopback server that records each request and answers it with :data:`ANSWER`."""
    while request := read_request(conn):
        seen.append(request)
        conn.sendall(ANSWER)


def test_a_header_value_outside_ascii_is_sent_as_utf8():
    """A generic adapter's header template filled with a payload's value (an agent's name, a
    context value) may hold any character. http.client encodes header text as Latin-1: "Ω"
    raised UnicodeEncodeError out of the request, before a byte left, which delivery took
    for an unknown outcome (looked up, posted again, the same error each time, never sent);
    "é" went out as Latin-1, unlike the UTF-8 intake reads a header as. Both go as UTF-8."""

    client = HttpClient(connect_timeout=1, read_timeout=2)
    with loopback(_answer_each) as (url, seen):
        headers = {"X-Agent": "Анна Ωmega", "X-Team": "Café", "X-Plain": "ok"}
        response = client.request("POST", f"{url}/api/messages", json={}, headers=headers)

    assert response.status_code == 200
    head = seen[0].partition(b"\r\n\r\n")[0].split(b"\r\n")
    assert "X-Agent: Анна Ωmega".encode() in head
    assert "X-Team: Café".encode() in head
    assert b"X-Plain: ok" in head


def test_a_credential_outside_ascii_in_a_header_is_still_recognised_in_a_reason():
    prepared = requests.Request(
        "POST", "https://x.example/m", headers={"X-Api-Key": "ключ-секрет-12345"}
    ).prepare()
    prepared.headers["X-Api-Key"] = "ключ-секрет-12345".encode().decode("latin-1")  # on the wire

    assert "ключ-секрет-12345" in request_secrets(prepared)


@pytest.mark.parametrize("segment", ["..", ".", "%2E%2E", "%2e", ".%2E"])
def test_a_path_with_a_dot_segment_is_refused_without_sending(segment):
    """requests unescapes %2E and urllib3 removes dot segments: ``/dialogs/../messages`` would
    be sent as ``/messages``. Seen by the loopback server: only the request without one."""

    client = HttpClient(connect_timeout=1, read_timeout=2)
    with loopback(_answer_each) as (url, seen):
        for method in ("POST", "GET"):
            with pytest.raises(DeliveryError) as refused:
                client.request(method, f"{url}/api/dialogs/{segment}/messages", json={})
            assert not refused.value.retryable and not refused.value.outcome_unknown
            assert "not sent" in refused.value.message
        assert client.writes_started() == 0
        fine = client.request("POST", f"{url}/api/dialogs/5158..%2E/messages?to=..", json={})
        assert fine.status_code == 200

    assert [line.split(b" ")[:2] for line in seen] == [
        [b"POST", b"/api/dialogs/5158.../messages?to=.."]  # requests unescapes %2E
    ]


def test_a_guard_refuses_writes_without_sending_but_lets_reads_through():
    def answer(conn: socket.socket, seen: list[bytes]) -> None:
        while True:
            request = read_request(conn)
            if not request:
                return
            seen.append(request)
            conn.sendall(ANSWER)

    client = HttpClient(connect_timeout=1, read_timeout=2)
    with loopback(answer) as (url, seen):
        with client.guarded(lambda: False):
            error = post(client, url)
            assert client.request("GET", url + "/api/messages").json() == {"id": 1}
        assert client.writes_started() == 0  # a refused write and a read change nothing
        assert client.request("POST", url + "/api/messages", json={}).status_code == 200
        assert client.writes_started() == 1
        other: list[int] = []  # counted per thread, as the guard is
        thread = threading.Thread(target=lambda: other.append(client.writes_started()))
        thread.start()
        thread.join()
        assert other == [0]

    assert [line.split(b" ")[0] for line in seen] == [b"GET", b"POST"]
    assert error.retryable and not error.outcome_unknown
    assert "not sent" in error.message


def closing_after(looks: int) -> Callable[[], bool]:
    """A guard open for its first ``looks`` looks, closed after: a fence that closes while
    the request is on its way (a slow connect, the whole process stopped and resumed)."""
    asked = itertools.count()
    return lambda: next(asked) < looks


@pytest.mark.parametrize("pooled", [False, True], ids=["new-connection", "kept-alive"])
def test_a_guard_closed_before_the_first_byte_leaves_sends_nothing(pooled):
    # The guard was asked once, before the request: a worker stopped after that look (its
    # host suspended, the process frozen) or held up by a slow connect, past the time another
    # worker takes its reply over, still sent it when it went on: a second copy. It is asked
    # again right before the request's first byte leaves, the connection open.
    client = HttpClient(connect_timeout=1, read_timeout=2)
    with loopback(_answer_each) as (url, seen):
        if pooled:  # a connection kept alive from an earlier request: no connect this time
            assert client.request("GET", url + "/api/messages").status_code == 200
        with client.guarded(closing_after(1)):
            error = post(client, url)
        with client.guarded(closing_after(2)):  # open at both looks: sent
            assert client.request("POST", url + "/api/messages", json={}).status_code == 200

    assert [line.split(b" ")[0] for line in seen] == [b"GET"] * pooled + [b"POST"]
    assert error.retryable and not error.outcome_unknown
    assert "not sent" in error.message and "owns the reply" in error.message


@pytest.mark.parametrize("status", [500, 502, 504, 520, 524, 598, 560, 700, 999])
@responses.activate
def test_an_answer_that_may_follow_the_work_is_an_unknown_outcome_for_a_write_only(status):
    """The API's 500, a proxy's 502 or gateway timeout can come after the write was stored;
    so can a server error no one documents as "not processed" (a proxy's 598 network read
    timeout, a 560, a status past 599 that no standard defines): looked up, never resent
    blind."""
    responses.post("https://api.example/m", status=status)
    responses.get("https://api.example/m", status=status)
    with pytest.raises(DeliveryError) as posted:
        HttpClient().request("POST", "https://api.example/m", json={})
    with pytest.raises(DeliveryError) as read:
        HttpClient().request("GET", "https://api.example/m")
    assert posted.value.outcome_unknown and posted.value.http_status == status
    assert posted.value.message.endswith("(outcome unknown)")
    assert read.value.retryable and not read.value.outcome_unknown


@pytest.mark.parametrize(
    "status", [503, 429, 408, 425, 409, 507, 508, 511, 521, 522, 523, 525, 526, 529, 530, 599]
)
@responses.activate
def test_a_write_refused_unprocessed_is_a_plain_retry(status):
    responses.post("https://api.example/m", status=status)
    with pytest.raises(DeliveryError) as posted:
        HttpClient().request("POST", "https://api.example/m", json={})
    assert posted.value.retryable and not posted.value.outcome_unknown


@responses.activate
def test_a_read_answered_500_is_retried_in_place():
    responses.get("https://api.example/m", status=500)
    responses.get("https://api.example/m", json={"ok": True})
    client = HttpClient(sleep=lambda _: None)
    assert client.request("GET", "https://api.example/m", retries=1).json() == {"ok": True}


def trickle(status: bytes, total: int, pause: float) -> Callable[[socket.socket, list], None]:
    """An answer whose body of ``total`` bytes comes one byte every ``pause`` seconds: each
    byte well within the read timeout, the whole far beyond it."""

    def serve(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n" % total)
        for _ in range(total):
            time.sleep(pause)
            conn.sendall(b" ")

    return serve


def test_an_answer_trickled_past_the_request_time_is_an_unknown_outcome():
    # 40 bytes at 0.1 s each (4 s) against a read timeout of 0.3 s: without a bound on the
    # whole answer, a trickling vendor holds a delivery thread (its lease kept renewed) forever.
    with loopback(trickle(b"201 Created", 40, 0.1)) as (url, _):
        started = time.monotonic()
        error = post(HttpClient(connect_timeout=0.5, read_timeout=0.3), url)
        took = time.monotonic() - started

    assert error.outcome_unknown and error.http_status is None
    assert "timed out waiting for the answer (outcome unknown)" in error.message
    assert took < 0.5 + 0.3 + 0.3


def test_a_refusal_trickled_past_the_request_time_keeps_its_status():
    with loopback(trickle(b"422 Unprocessable Entity", 40, 0.1)) as (url, _):
        started = time.monotonic()
        error = post(HttpClient(connect_timeout=0.5, read_timeout=0.3), url)
        took = time.monotonic() - started

    assert error.http_status == 422 and not error.retryable and not error.outcome_unknown
    assert took < 0.5 + 0.3 + 0.3


@pytest.mark.parametrize(("method", "unknown"), [("POST", True), ("GET", False)])
def test_an_answer_larger_than_the_limit_is_not_read(monkeypatch, method, unknown):
    monkeypatch.setattr("csat_hook.helpdesks.transport.MAX_ANSWER_BYTES", 64 * 1024, raising=False)
    body = b"[" + b"0," * 300_000 + b"0]"

    def huge(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
        conn.sendall(head % len(body) + body)

    with loopback(huge) as (url, _), pytest.raises(DeliveryError) as caught:
        HttpClient(connect_timeout=1, read_timeout=2).request(method, url + "/m")

    assert caught.value.retryable and caught.value.outcome_unknown is unknown
    assert f"answer larger than {64 * 1024} bytes" in caught.value.message


def cut_off(status: bytes, head: bytes, body: bytes) -> Callable[[socket.socket, list], None]:
    """An answer with ``status`` whose body stops after ``body`` (the connection closed), or
    cannot be decoded as its headers (``head``) say."""

    def serve(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 " + status + b"\r\n" + head + b"\r\n\r\n" + body)
        conn.shutdown(socket.SHUT_RDWR)

    return serve


@pytest.mark.parametrize(
    ("head", "body"),
    [
        (b"Content-Length: 100", b'{"error": "inv'),  # closed mid-body
        (b"Transfer-Encoding: chunked", b"zz\r\n"),  # a broken chunk
        (b"Content-Encoding: gzip\r\nContent-Length: 5", b"hello"),  # not gzip
    ],
)
@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(b"422 Unprocessable Entity", 422, False), (b"429 Too Many Requests", 429, True)],
)
def test_a_refusal_whose_body_breaks_off_keeps_its_status(head, body, status, code, retryable):
    # The status line is the vendor's word that it did not take the request: a body cut off
    # after it must not turn the refusal into an unknown outcome (looked up, posted again, or
    # recorded as sent unconfirmed by a destination that skips unknown outcomes).
    with loopback(cut_off(status, head, body)) as (url, _):
        error = post(HttpClient(connect_timeout=1, read_timeout=2), url)

    assert error.http_status == code and not error.outcome_unknown
    assert error.retryable is retryable


def test_a_5xx_whose_body_breaks_off_is_still_an_unknown_outcome_for_a_write():
    head, body = b"Content-Length: 100", b"oops"
    with loopback(cut_off(b"502 Bad Gateway", head, body)) as (url, _):
        error = post(HttpClient(connect_timeout=1, read_timeout=2), url)

    assert error.http_status == 502 and error.outcome_unknown and error.retryable


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),  # not RFC 9110's digits, but plain enough to honour
        ("9" * 400, float("inf")),  # huge: capped by the retry policy
        ("Tue, 14 Nov 2023 22:13:30 GMT", 10.0),
        ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),  # a past date: now
        # Neither delta-seconds nor a date: the retry policy's own backoff.
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("-inf", None),
        ("1e12", None),
        ("1_000", None),
        ("\u0661\u0662", None),  # Arabic-Indic digits: float() reads them, HTTP does not
        ("0x10", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_delta_seconds_or_a_date(value, seconds):
    assert parse_retry_after(value, now=lambda: NOW) == seconds


@pytest.mark.parametrize("wait", [-1.0, float("nan")])
def test_a_wait_a_vendor_says_is_negative_or_nan_leaves_the_backoff_in_charge(wait):
    # Telegram's parameters.retry_after is whatever its JSON holds.
    assert 2.0 <= Backoff(base=4, cap=60).delay(1, wait) <= 4.0


@pytest.mark.parametrize("failures", [1, 2, 5])
def test_a_retry_after_of_zero_is_no_shorter_than_the_backoff(monkeypatch, failures):
    # "Retry-After: 0" (or a date already past) is the server saying "any time": our own
    # backoff's step still applies, or a vendor repeating it has every attempt spent at once.
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    backoff = Backoff(base=4, cap=60)
    assert backoff.delay(failures, 0.0) == backoff.ceiling(failures) / 2


def test_a_retry_after_longer_than_the_step_wins_and_a_shorter_one_is_a_floor(monkeypatch):
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    assert Backoff(base=4, cap=60).delay(1, 3.0) == 3.0  # longer than the step (2): waited
    assert Backoff(base=4, cap=60).delay(1, 600.0) == 60.0  # capped
    # "Not before" 3 s, at the fifth failure: the backoff's step (30) still spreads attempts.
    assert Backoff(base=4, cap=60).delay(5, 3.0) == 30.0


@pytest.mark.parametrize("value", ["0", "Tue, 14 Nov 2023 22:13:00 GMT"])
@responses.activate
def test_a_read_answered_429_retry_after_zero_every_time_is_spread_by_the_backoff(
    monkeypatch, value
):
    monkeypatch.setattr(retry.random, "uniform", lambda low, high: low)
    for _ in range(3):
        responses.get("https://api.example/m", status=429, headers={"Retry-After": value})
    responses.get("https://api.example/m", json={"ok": True})
    slept: list[float] = []
    client = HttpClient(sleep=slept.append)
    assert client.request("GET", "https://api.example/m", retries=3).json() == {"ok": True}
    assert slept == [0.5, 1.0, 2.0]  # READ_BACKOFF's own steps (low end of the jitter)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120, 120", 120.0),
        ("0, 120", 120.0),  # a proxy's "any time" beside the API's own wait
        ("Tue, 14 Nov 2023 22:13:30 GMT, 5", 10.0),
        ("Tuesday, 14-Nov-23 22:13:30 GMT, Tue, 14 Nov 2023 22:13:20 GMT", 10.0),
        ("soon, 30", 30.0),
        ("soon, later", None),
        (",", None),
    ],
)
def test_a_retry_after_sent_more_than_once_is_read_line_by_line(value, seconds):
    # Field lines of one name reach us joined with ", " (RFC 9110 5.3).
    assert parse_retry_after(value, now=lambda: NOW) == seconds


@responses.activate
def test_a_duplicated_retry_after_header_is_honoured():
    # Read whole, "120, 120" was no wait at all: the backoff's first step (seconds) instead.
    responses.post(
        "https://api.example/m",
        status=429,
        headers=[("Retry-After", "120"), ("Retry-After", "120")],
    )
    with pytest.raises(DeliveryError) as caught:
        HttpClient().request("POST", "https://api.example/m")
    assert caught.value.retry_after == 120.0


@responses.activate
def test_of_several_wait_headers_the_longest_counts():
    # Intercom's X-RateLimit-Reset (read as a delay) behind a proxy that adds "Retry-After: 0":
    # the first header found won, and the reset the API named was retried into.
    responses.get(
        "https://api.example/m",
        status=429,
        headers={"Retry-After": "0", "X-Reset-Delay": "30"},
    )
    with pytest.raises(DeliveryError) as caught:
        HttpClient().request(
            "GET", "https://api.example/m", retry_after_headers=("Retry-After", "X-Reset-Delay")
        )
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        (b"https://new.example.com/api/x?token=S3CRET", "a redirect to https://new.example.com,"),
        (
            b"https://u:S3CRET@desk.example.com:8443/p",
            "a redirect to https://desk.example.com:8443",
        ),
        (b"/relative/S3CRET", None),
        (b"http://[::1", None),
    ],
)
def test_a_redirect_says_where_it_points_without_its_path_or_credentials(location, shown):
    # "HTTP 301 Moved Permanently" alone, for every reply: the operator could not tell that
    # the API had moved (http:// to https://, a renamed subdomain), nor where.
    def redirect(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 301 Moved Permanently\r\nLocation: " + location + b"\r\n\r\n")

    with loopback(redirect) as (url, seen):
        error = post(HttpClient(connect_timeout=1, read_timeout=2), url)

    assert len(seen) == 1 and error.http_status == 301 and not error.retryable
    assert "S3CRET" not in error.message
    if shown is None:
        assert "redirect to" not in error.message
    else:
        assert shown in error.message and error.message.endswith("not followed)")


def test_a_reason_phrase_that_echoes_the_request_is_left_out():
    """A vendor (or a proxy) that puts what it was sent in the status line: the reply's text
    (the agent's and the customer's names, the survey link that answers as the customer) is
    logged and stored in last_error with the phrase. Only a standard phrase is kept."""

    def echo(conn: socket.socket, seen: list[bytes]) -> None:
        request = read_request(conn)
        seen.append(request)
        said = json.loads(request.partition(b"\r\n\r\n")[2])["text"]
        conn.sendall(f"HTTP/1.1 422 Invalid {said}\r\nContent-Length: 0\r\n\r\n".encode())

    def standard(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(b"HTTP/1.1 429 too many requests\r\nContent-Length: 0\r\n\r\n")

    client = HttpClient(connect_timeout=1, read_timeout=2)
    with loopback(echo) as (url, _), pytest.raises(DeliveryError) as caught:
        client.request("POST", url + "/api/messages", json={"text": "Zoe O'Brien https://s/x"})
    with loopback(standard) as (url, _):
        limited = post(client, url)

    assert caught.value.http_status == 422 and str(caught.value).endswith(": HTTP 422")
    assert "Brien" not in str(caught.value) and "https" not in str(caught.value)
    assert str(limited).endswith(": HTTP 429 too many requests")
