"""A host name whose resolution never answers: the attempt ends within the connect timeout as
"not sent" (a plain retry, nothing to look up), and a later attempt gets through once the
resolver answers. requests' (connect, read) timeout did not bound getaddrinfo: the delivery
thread waited for as long as the resolver did."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from csat_hook import resolver
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.transport import HttpClient
from tests.stuck_resolver import StuckResolver
from tests.stuck_resolver import answering_helpdesk

CONNECT, READ = 0.5, 2.0
SLACK = 1.5  # scheduling on a busy machine


@pytest.fixture
def stuck(monkeypatch: pytest.MonkeyPatch) -> Iterator[StuckResolver]:
    fake = StuckResolver({"helpdesk.test", "other.test"})
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    yield fake
    fake.release()  # the helper threads end


@pytest.fixture
def server() -> Iterator[tuple[int, list[str]]]:
    with answering_helpdesk() as found:
        yield found


def test_a_hanging_resolver_ends_the_attempt_as_not_sent_then_a_retry_gets_through(stuck, server):
    port, seen = server
    client = HttpClient(connect_timeout=CONNECT, read_timeout=READ)
    url = f"http://helpdesk.test:{port}/api/dialogs/D-1/messages"

    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        client.request("POST", url, json={"text": "hi"})
    took = time.monotonic() - started

    assert took < CONNECT + SLACK, took
    error = caught.value
    assert error.retryable and not error.outcome_unknown
    assert "not sent" in str(error)
    assert seen == []

    stuck.release()
    response = client.request("POST", url, json={"text": "hi"})
    assert response.status_code == 201
    assert seen == ["/api/dialogs/D-1/messages"]


def test_attempts_on_a_name_being_looked_up_wait_for_that_look_up(stuck):
    # A resolver that hangs costs one thread per name, not one per attempt.
    for _ in range(3):
        with pytest.raises(resolver.ResolveTimeoutError):
            resolver.resolve("helpdesk.test", 443, 0.05)
    with pytest.raises(resolver.ResolveTimeoutError):
        resolver.resolve("other.test", 443, 0.05)
    assert stuck.lookups == 2
    stuck.release()
    [*_, address] = resolver.resolve("helpdesk.test", 443, 5, family=socket.AF_INET)[0]
    assert address == ("127.0.0.1", 443)


def test_a_name_that_does_not_exist_is_still_a_name_resolution_error(server, monkeypatch):
    def no_such_name(*_args: object, **_kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    port, seen = server
    client = HttpClient(connect_timeout=CONNECT, read_timeout=READ)
    with pytest.raises(DeliveryError) as caught:
        client.request("POST", f"http://missing.test:{port}/x", json={})
    assert caught.value.retryable and not caught.value.outcome_unknown
    assert "not sent" in str(caught.value)
    assert seen == []
