"""The lean session sends what ``requests.Session`` sends and keeps what it keeps: the same
method, URL, headers and body at the vendor, the same proxies and TLS settings, the same
hooks, cookies and ``.netrc`` credentials; and it never follows a redirect."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import requests
import responses

from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.http_session import LeanSession
from csat_hook.helpdesks.transport import USER_AGENT
from csat_hook.helpdesks.transport import HttpClient
from tests.helpdesks.test_transport import ANSWER
from tests.helpdesks.test_transport import loopback
from tests.helpdesks.test_transport import read_request

URL = "https://desk.example/api/dialogs/42/messages"
TIMEOUT = (5.0, 15.0)


def stamp(response: requests.Response, **kwargs: Any) -> requests.Response:
    response.headers["X-Hooked"] = "yes"
    return response


CASES: dict[str, dict[str, Any]] = {
    "json": {"json": {"text": "Rate us: https://forms.example/?a=1&b=é", "private": False}},
    "json and headers": {
        "json": {"text": "hi"},
        "headers": {"Authorization": "Bearer t", "Content-Type": "application/json; x=1"},
    },
    "bytes body": {"data": b'{"raw": true}', "headers": {"Content-Type": "application/json"}},
    "text body": {"data": "plain text ✓"},
    "form body": {"data": {"body": "hi", "empty": ""}},
    "params, one None": {"params": {"page": 2, "q": "a b&c", "skip": None}},
    "a header removed, one replaced": {
        "json": {},
        "headers": {"Accept-Encoding": None, "user-agent": "custom/1", "X-Id": "7"},
    },
    "a response hook": {"json": {"text": "hi"}, "hooks": {"response": [stamp]}},
}


def send(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    session.headers["User-Agent"] = USER_AGENT  # as HttpClient sets it
    return session.request(method, url, timeout=TIMEOUT, allow_redirects=False, **kwargs)


def as_received(call: Any) -> tuple[Any, ...]:
    request = call.request
    body = request.body.encode() if isinstance(request.body, str) else request.body
    return (request.method, request.url, dict(request.headers), body, request.req_kwargs)


def received_from(make: type[requests.Session], method: str, url: str, **kwargs: Any) -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(method.upper(), url.split("?")[0], json={"id": 1}, headers={"X-Answer": "1"})
        response = send(make(), method, url, **kwargs)
        read = response._content_consumed  # the body is read before the call returns
        return as_received(mock.calls[0]), dict(response.headers), read, response.content


@pytest.fixture
def no_requests_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if the call goes through requests.Session.request: the lean path must take it."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("went through requests.Session.request")

    monkeypatch.setattr(requests.Session, "request", refuse)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", ["POST", "put", "GET"])
def test_the_vendor_receives_what_requests_would_send(case, method, monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    expected = received_from(requests.Session, method, URL, **CASES[case])

    with monkeypatch.context() as patch:
        patch.setattr(requests.Session, "request", None)  # the lean path only
        got = received_from(LeanSession, method, URL, **CASES[case])

    assert got == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://user:p%40ss@desk.example/api/x",  # credentials in the URL: Basic auth
        "https://desk.example/api/x?fixed=1",  # a query the params are appended to
        "https://bücher.example/api/x",  # an international host name (IDNA)
    ],
)
def test_urls_are_prepared_as_requests_prepares_them(url, monkeypatch):
    kwargs: dict[str, Any] = {"json": {"a": 1}, "params": {"extra": "v"}}
    expected = received_from(requests.Session, "POST", url, **kwargs)
    monkeypatch.setattr(requests.Session, "request", None)
    assert received_from(LeanSession, "POST", url, **kwargs) == expected


def test_the_proxy_environment_is_honoured_per_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "direct.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/custom-ca.pem")
    session = LeanSession()
    with responses.RequestsMock() as mock:
        mock.post("https://desk.example/x", json={})
        mock.post("https://direct.example/x", json={})
        send(session, "POST", "https://desk.example/x", json={})
        send(session, "POST", "https://direct.example/x", json={})
        send(session, "POST", "https://desk.example/x", json={})  # from the cache
        proxied, direct, again = (call.request.req_kwargs for call in mock.calls)

    assert proxied["proxies"]["https"] == "http://proxy.example:3128"
    assert "https" not in direct["proxies"]
    assert again == proxied and proxied["verify"] == "/etc/ssl/custom-ca.pem"
    assert (proxied["timeout"], proxied["cert"], proxied["stream"]) == (TIMEOUT, None, False)


def test_a_request_through_the_proxy_reaches_the_proxy(monkeypatch):
    def proxy(conn: socket.socket, seen: list[bytes]) -> None:
        seen.append(read_request(conn))
        conn.sendall(ANSWER)

    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with loopback(proxy) as (proxy_url, seen):
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        response = HttpClient(connect_timeout=1, read_timeout=2).request(
            "POST", "http://desk.invalid/api/messages", json={"text": "survey"}
        )

    assert response.json() == {"id": 1}
    assert seen[0].startswith(b"POST http://desk.invalid/api/messages HTTP/1.1\r\n")
    assert seen[0].endswith(b'{"text": "survey"}')


def test_a_redirect_is_never_followed_and_is_an_error(no_requests_path):
    client = HttpClient(session_factory=LeanSession)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(URL, status=302, headers={"Location": "https://elsewhere.example/x"})
        mock.post("https://elsewhere.example/x", json={})
        with pytest.raises(DeliveryError) as caught:
            client.request("POST", URL, json={"text": "hi"})
        calls = [call.request.url for call in mock.calls]

    assert calls == [URL]
    assert caught.value.http_status == 302 and not caught.value.retryable


def test_a_cookie_the_vendor_sets_is_sent_back_as_requests_would(monkeypatch):
    def two_calls(make: type[requests.Session]) -> Any:
        session = make()
        with responses.RequestsMock() as mock:
            mock.post(URL, json={}, headers={"Set-Cookie": "lb=node-2; Path=/; Secure"})
            send(session, "POST", URL, json={})
            send(session, "POST", URL, json={})
            return [call.request.headers.get("Cookie") for call in mock.calls]

    expected = two_calls(requests.Session)
    assert two_calls(LeanSession) == expected == [None, "lb=node-2"]


def test_netrc_credentials_are_used_as_requests_uses_them(tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine desk.example login bot password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    expected = received_from(requests.Session, "POST", URL, json={"a": 1})
    got = received_from(LeanSession, "POST", URL, json={"a": 1})
    assert got == expected and got[0][2]["Authorization"].startswith("Basic ")


def test_calls_off_the_lean_path_are_requests_own(monkeypatch):
    seen: list[dict[str, Any]] = []
    original = requests.Session.request

    def spy(self: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    session = LeanSession()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(URL, json={})
        send(session, "POST", URL, json={})  # lean
        session.request("POST", URL, json={})  # follows redirects: requests' own
        send(session, "POST", URL, json={}, auth=("u", "p"))
        send(session, "POST", URL, json={}, params=[("a", "1")])
        calls = [call.request for call in mock.calls]

    assert len(seen) == 3 and len(calls) == 4
    assert calls[2].headers["Authorization"].startswith("Basic ")
    assert calls[3].url == URL + "?a=1"
