"""Deliveries that meet what no adapter foresaw still end, and never post a reply twice: an
agent look-up answering text the database and the link cannot hold, an exception before the
request (a failure, nothing posted) or after it (an outcome unknown, looked up before posting
again), and a delivery that keeps bringing its worker down (failed after a bounded number of
claims, not claimed forever)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import responses
import sqlalchemy as sa

from csat_hook.db.schema import surveys
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import SendResult
from csat_hook.outbox.delivery import SETTLE_CLAIMS
from tests.helpers import link_fields
from tests.outbox.test_unknown_outcome import generic_with_lookup
from tests.outbox.test_unknown_outcome import gets
from tests.outbox.test_unknown_outcome import posts
from tests.outbox.test_unknown_outcome import settle
from tests.outbox.test_worker import drain
from tests.outbox.test_worker import outbox_rows
from tests.outbox.test_worker import queue_generic

NAMELESS = {"agent": {"id": "7", "name": None, "email": None}}


@pytest.fixture
def looked_up(make_config, make_services, fake_helpdesk):
    return make_services(make_config(helpdesks=generic_with_lookup(fake_helpdesk.url)))


def survey_row(services: Any) -> Any:
    with services.engine.connect() as conn:
        return conn.execute(sa.select(surveys)).one()


def test_a_looked_up_name_the_link_cannot_encode_is_cleaned_and_the_reply_sent_once(
    services, fake_helpdesk, clock, monkeypatch
):
    # What a vendor's JSON "name": "Ann\ud800a\u0000…" decodes to: a lone surrogate (no UTF-8
    # for the link), NUL (PostgreSQL refuses it) and more than the column holds.
    adapter = services.helpdesks["generic"]
    answer = Person("7", "Ann\ud800a\x00" + "n" * 300, "ann\x00@example.com")
    monkeypatch.setattr(adapter, "fetch_agent", lambda agent, context: answer)
    queue_generic(services, **NAMELESS)

    drain(services.delivery_worker(), clock)

    [request] = posts(fake_helpdesk)
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.attempts == 1
    name = ("Ann\ufffda" + "n" * 300)[:255]
    assert link_fields(request["body"]["text"].split()[-1])["entry.111"] == name
    survey = survey_row(services)
    assert (survey.agent_name, survey.agent_email) == (name, "ann@example.com")


def test_an_unexpected_error_before_the_request_fails_the_reply_without_posting(
    services, fake_helpdesk, clock, monkeypatch
):
    adapter = services.helpdesks["generic"]

    def broken(*args: Any, **kwargs: Any) -> Person:
        raise RuntimeError("Ivan's private words")

    monkeypatch.setattr(adapter, "resolve_agent", broken)
    queue_generic(services)

    drain(services.delivery_worker(), clock)  # run_once would raise it before

    assert fake_helpdesk.api_requests() == []
    [item] = outbox_rows(services)
    assert item.status == "failed" and item.attempts == 1
    assert item.last_error == "the reply could not be prepared: internal error (RuntimeError)"
    assert survey_row(services).status == "failed"


def test_an_unexpected_error_in_sending_before_any_post_fails_the_reply_without_posting(
    looked_up, fake_helpdesk, clock, monkeypatch
):
    # The adapter's own send broke before its POST (building the vendor's payload, say): not
    # an unknown outcome to look up, and not retried to fail the same way again.
    adapter = looked_up.helpdesks["generic"]

    def broken(reply: Reply) -> SendResult:
        adapter.http.request("GET", f"{fake_helpdesk.url}/api/dialogs/D-1001/messages")
        raise RuntimeError("Ivan's private words")

    monkeypatch.setattr(adapter, "send_reply", broken)
    queue_generic(looked_up)

    drain(looked_up.delivery_worker(), clock)

    assert posts(fake_helpdesk) == [] and len(gets(fake_helpdesk)) == 1
    [item] = outbox_rows(looked_up)
    assert item.status == "failed" and item.attempts == 1 and item.uncertain_since is None
    assert item.last_error == "internal error before anything was sent (RuntimeError): not sent"
    assert survey_row(looked_up).status == "failed"


def test_an_unexpected_error_after_the_request_is_an_unknown_outcome_looked_up_not_reposted(
    looked_up, fake_helpdesk, clock, monkeypatch
):
    # The vendor took the reply; reading its answer raised (a bug, an answer no one foresaw).
    adapter = looked_up.helpdesks["generic"]
    send = adapter.send_reply

    def posted_then_broke(reply: Reply) -> SendResult:
        send(reply)
        raise RuntimeError("answer: Ivan's private words")

    monkeypatch.setattr(adapter, "send_reply", posted_then_broke)
    queue_generic(looked_up)
    worker = looked_up.delivery_worker()
    worker.run_once()

    [item] = outbox_rows(looked_up)
    assert item.status == "pending" and item.uncertain_since is not None
    assert "RuntimeError" in item.last_error and "Ivan" not in item.last_error
    settle(looked_up, clock)
    worker.run_once()

    assert len(posts(fake_helpdesk)) == 1 and len(gets(fake_helpdesk)) == 1
    [item] = outbox_rows(looked_up)
    assert item.status == "sent" and item.attempts == 2


class WorkerDied(BaseException):
    """The process going down mid-delivery (killed, out of memory): nothing catches it."""


def test_a_delivery_that_keeps_bringing_its_worker_down_ends_failed(
    looked_up, fake_helpdesk, clock, monkeypatch
):
    # Each claim after the first dies in the look-up: nothing records an outcome, the lease
    # expires, the row is taken over with its outcome unknown and claimed again.
    adapter = looked_up.helpdesks["generic"]
    queue_generic(looked_up)
    fake_helpdesk.drop_next(1)  # the first attempt's outcome is unknown
    worker = looked_up.delivery_worker()
    worker.run_once()

    def dies(*args: Any, **kwargs: Any) -> None:
        raise WorkerDied

    monkeypatch.setattr(adapter, "find_reply", dies)
    max_attempts = looked_up.config.delivery.max_attempts
    for _ in range(2 * (max_attempts + SETTLE_CLAIMS + 3)):  # a take-over, then a claim
        clock.advance(3600)
        with contextlib.suppress(WorkerDied):
            looked_up.delivery_worker().run_once()

    [item] = outbox_rows(looked_up)
    assert item.status == "failed" and item.attempts == max_attempts + SETTLE_CLAIMS + 1
    assert "ended without an outcome" in item.last_error
    assert len(posts(fake_helpdesk)) == 1  # never posted again


@responses.activate
def test_a_2xx_answer_nested_too_deeply_to_parse_is_a_sent_reply_posted_once(services, clock):
    # Python's JSON parser raises RecursionError (not ValueError) on such a document.
    services.config.helpdesks["generic"].reply.url = "https://desk.example.com/{dialog_id}"
    deep = b"[" * 200_000 + b"]" * 200_000
    responses.post("https://desk.example.com/D-1001", body=deep, status=201)
    queue_generic(services)

    drain(services.delivery_worker(), clock)

    assert len(responses.calls) == 1
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.attempts == 1 and item.external_id is None


def test_a_header_template_filled_with_text_outside_latin1_is_sent_once(
    make_config, make_services, fake_helpdesk, clock
):
    """A generic reply's header filled with the agent's name: "Анна" raised UnicodeEncodeError
    in http.client before a byte left, taken for an unknown outcome (posted again, failing
    the same way, never sent). It goes out as UTF-8, once."""
    helpdesks = generic_with_lookup(fake_helpdesk.url)
    helpdesks["generic"]["reply"]["headers"]["X-Agent"] = "{agent_name}"
    services = make_services(make_config(helpdesks=helpdesks))
    queue_generic(services, agent={"id": "7", "name": "Анна Ωmega", "email": None})

    drain(services.delivery_worker(), clock)

    [request] = posts(fake_helpdesk)
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.attempts == 1, item.last_error
    sent = next(v for k, v in request["headers"].items() if k.lower() == "x-agent")
    assert sent.encode("latin-1").decode("utf-8") == "Анна Ωmega"
