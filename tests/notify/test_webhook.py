"""The generic webhook: Standard Webhooks v1 signing (the specification's test vector), a
receiver that verifies it and drops a repeated id, the documented body, and answers
classified."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic import ValidationError

from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.devtools.fake_notify import Script
from csat_hook.errors import DeliveryError
from csat_hook.notify.options import signing_key
from csat_hook.notify.webhook import signature
from tests.conftest import FakeClock
from tests.notify.conftest import NASTY_COMMENT
from tests.notify.conftest import build
from tests.notify.conftest import sample

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
OLD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture
def receiver(clock):
    fake = FakeNotify(now=lambda: clock().timestamp()).start()
    yield fake
    fake.stop()


def hook(fake, clock, secret=SECRET, **options):
    url = fake.webhook("crm", secret)
    options.setdefault("secret", SECRET)
    return build("crm", {"kind": "webhook", "url": url, **options}, clock=clock)


def test_the_specifications_test_vector():
    key = signing_key(SecretStr(OLD_SECRET))
    assert len(key) == 24
    got = signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_signed_alert_is_accepted_with_the_documented_body(receiver, clock):
    result = hook(receiver, clock).send(sample(previous_rating=4))

    [message] = receiver.delivered("webhook")
    assert message.headers["webhook-id"] == "csat-alert-0123456789abcdef01234567_crm"
    assert result.external_id == message.headers["webhook-id"]
    assert message.headers["content-type"] == "application/json"
    body = message.json()
    assert body["type"] == "csat.alert.low_rating"
    assert body["timestamp"] == "2026-11-20T12:00:00+00:00"
    data = body["data"]
    assert data["alert_id"] == "csat-alert-0123456789abcdef01234567"
    assert (data["rating"], data["previous_rating"]) == (2, 4)
    assert data["scale"] == {"min": 1, "max": 5}
    assert data["comment"] == NASTY_COMMENT
    assert data["agent"] == {"key": "14", "name": "Anna <admin> & Co"}
    assert data["ticket"] == {
        "id": "4512",
        "url": "https://acme.example/app/conversations/4512?a=1&b=x|y>z",
    }
    assert data["helpdesk"] == "chatwoot" and data["team"] == "Support L1"


def test_a_long_comment_is_cut_to_a_documented_size_and_said_so(receiver, clock):
    """A comment of 3,000,000 characters went out whole, a 3 MB body that receivers refuse
    (a 4xx fails the alert for good); Slack, Telegram and the notes each had a limit."""
    from csat_hook.notify.webhook import MAX_WEBHOOK_COMMENT

    long = "👍🏽" + "B" * 3_000_000
    hook(receiver, clock).send(sample(comment=long))
    [message] = receiver.delivered("webhook")
    data = message.json()["data"]
    assert len(message.body) < 4 * MAX_WEBHOOK_COMMENT + 2_000
    assert len(data["comment"]) <= MAX_WEBHOOK_COMMENT and data["comment"].endswith("…")
    assert data["comment"].startswith("👍🏽B") and data["comment_truncated"] is True
    hook(receiver, clock).send(sample(ref="csat-alert-0123456789abcdef0123456a"))
    assert receiver.delivered("webhook")[-1].json()["data"]["comment_truncated"] is False


def test_a_wrong_secret_is_refused_by_the_receiver(receiver, clock):
    other = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    with pytest.raises(DeliveryError) as caught:
        hook(receiver, clock, secret=other).send(sample())  # the receiver knows another one
    assert caught.value.http_status == 401 and not caught.value.retryable


def test_a_stale_timestamp_is_refused_by_the_receiver(clock):
    receiver = FakeNotify(now=lambda: clock().timestamp() + 600).start()  # ten minutes ahead
    try:
        with pytest.raises(DeliveryError) as caught:
            hook(receiver, clock).send(sample())
    finally:
        receiver.stop()
    assert caught.value.http_status == 401


def test_during_a_rotation_both_secrets_sign(receiver, clock):
    # The receiver still has the old secret; we sign with the new one and the old one.
    url = receiver.webhook("crm", OLD_SECRET)
    options = {"kind": "webhook", "url": url, "secret": SECRET, "previous_secret": OLD_SECRET}
    build("crm", options, clock=clock).send(sample())
    [message] = receiver.delivered("webhook")
    assert message.headers["webhook-signature"].count("v1,") == 2


def test_a_resend_has_the_same_id_and_the_receiver_drops_the_copy(receiver, clock):
    destination = hook(receiver, clock)
    destination.send(sample())
    clock.advance(30)
    destination.send(sample())
    first, second = receiver.requests("webhook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.headers["webhook-timestamp"] != second.headers["webhook-timestamp"]
    assert len(receiver.delivered("webhook")) == 1 and second.duplicate


def test_include_comment_false_sends_no_comment(receiver, clock):
    hook(receiver, clock, include_comment=False).send(sample())
    data = receiver.delivered("webhook")[0].json()["data"]
    assert data["comment"] is None
    assert "Ждал" not in json.dumps(data, ensure_ascii=False)


@pytest.mark.parametrize(
    ("status", "retryable"), [(410, False), (400, False), (302, False), (429, True), (503, True)]
)
def test_answers_are_classified(receiver, clock, status, retryable):
    receiver.script("webhook", Script(status=status, body={"error": "x"}))
    with pytest.raises(DeliveryError) as caught:
        hook(receiver, clock).send(sample())
    assert caught.value.retryable is retryable


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix
        "whsec_" + base64.b64encode(b"short").decode(),  # 5 bytes
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",  # not canonical base64
    ],
)
def test_secrets_are_checked(secret):
    with pytest.raises(ValidationError):
        build("w", {"kind": "webhook", "url": "https://crm.example/hooks", "secret": secret})


@pytest.mark.parametrize(
    "url",
    [
        "http://crm.example/hooks",  # not https
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        # The same address as the resolver reads other spellings of it (inet_aton's forms),
        # and IPv4-mapped on a dual-stack socket: they passed.
        "https://2852039166/latest/meta-data",
        "https://0xa9.0xfe.0xa9.0xfe/latest/meta-data",
        "https://0251.0376.0251.0376/latest/meta-data",
        "https://169.254.43518/latest/meta-data",
        "https://[::ffff:169.254.169.254]/latest/meta-data",
        "https://[::ffff:a9fe:a9fe]/latest/meta-data",
        "https://user:pass@crm.example/hooks",
        "ftp://crm.example/hooks",
    ],
)
def test_urls_are_checked(url):
    with pytest.raises(ValidationError):
        build("w", {"kind": "webhook", "url": url, "secret": SECRET})


@pytest.mark.parametrize("url", ["https://crm.example:99999/hooks", "https://crm.example:80a/h"])
def test_a_port_no_connection_can_use_is_refused_at_load(url):
    # It passed check-config, and every alert then failed at delivery (urllib3 refuses it).
    with pytest.raises(ValidationError, match="port must be a number up to 65535"):
        build("w", {"kind": "webhook", "url": url, "secret": SECRET})


@pytest.mark.parametrize(
    "name",
    # Ours, and the connection's own: a Transfer-Encoding beside the Content-Length the body
    # is sent with frames the request two ways (a 400, or a request smuggled past a proxy).
    ["webhook-id", "Transfer-Encoding", "Connection", "TE", "Upgrade", "Expect", "Trailer"],
)
def test_reserved_headers_cannot_be_overridden(name):
    options = {
        "kind": "webhook",
        "url": "https://crm.example/hooks",
        "secret": SECRET,
        "headers": {name: "x"},
    }
    with pytest.raises(ValidationError):
        build("w", options)


@pytest.mark.parametrize(
    "value",
    [
        "Bearer тест",  # http.client cannot encode it: every alert an internal error
        "Bearer t\u00e9tok",  # Latin-1 on the wire: no receiver reads it as typed
        "Bearer\x00tok",  # sent raw on the wire
        "Bearer\x7ftok",
    ],
)
def test_header_values_that_cannot_be_sent_are_refused_without_showing_them(value):
    options = {
        "kind": "webhook",
        "url": "https://crm.example/hooks",
        "secret": SECRET,
        "headers": {"Authorization": value},
    }
    with pytest.raises(ValidationError) as caught:
        build("w", options)
    said = " ".join(error["msg"] for error in caught.value.errors())  # what the config shows
    assert "Authorization" in said and "tok" not in said and "тест" not in said


def test_a_header_value_with_inner_spaces_is_sent_as_it_is(clock):
    destination = build(
        "crm",
        {
            "kind": "webhook",
            "url": "https://crm.example/hooks",
            "secret": SECRET,
            "headers": {"Authorization": "Bearer a.b-c_d~e+f/g= \tx"},
        },
        clock=clock,
    )
    _, headers = destination.request(sample())
    assert headers["Authorization"] == "Bearer a.b-c_d~e+f/g= \tx"


def test_the_verification_snippet_in_the_docs_accepts_our_requests(clock):
    """docs/alerts.md shows receivers how to verify; it must accept what we send and refuse
    a tampered body."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text(encoding="utf-8")
    snippet = docs.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "docs/alerts.md", "exec"), namespace)  # noqa: S102 (our own docs)
    verify = namespace["verify"]
    destination = build(
        "crm",
        {"kind": "webhook", "url": "https://crm.example/hooks", "secret": SECRET},
        clock=clock,
    )
    body, headers = destination.request(sample())
    wire = {k.lower(): v for k, v in headers.items()}
    assert verify(SECRET, wire, body) is True
    assert verify(SECRET, wire, body + b" ") is False
    assert verify(OLD_SECRET, wire, body) is False


@pytest.mark.parametrize(
    "script", [Script(delay=1.5), Script(drop=True), Script(status=502, body={"error": "x"})]
)
def test_no_answer_after_the_request_is_an_unknown_outcome_resent_with_the_same_id(
    receiver, clock, script
):
    # A read timeout, a dropped connection, a proxy's 502: the receiver may have it. Unknown,
    # not failed; the destination resends it, with the id the receiver drops a copy by.
    receiver.script("webhook", script)
    url = receiver.webhook("crm", SECRET)
    options = {"kind": "webhook", "url": url, "secret": SECRET}
    destination = build("crm", options, clock=clock, read_timeout=0.5)
    with pytest.raises(DeliveryError) as caught:
        destination.send(sample())
    assert caught.value.outcome_unknown and caught.value.retryable
    assert destination.settle(sample()) == "resend"
    assert "/hooks/crm" not in caught.value.message  # the host only: a path may be a token


@pytest.mark.parametrize("around", ["\n", " \r\n", "\t"])
def test_a_url_with_a_line_break_around_it_is_posted_to_the_url(receiver, clock, around):
    """``url: ${CRM_HOOK_URL}`` from a file or a Kubernetes secret ends with a newline: the
    configuration passed it (the check strips it) and every alert went to ``/hook%0A``, a
    404 that failed it for good."""
    url = receiver.webhook("crm", SECRET)
    built = build("crm", {"kind": "webhook", "url": url + around, "secret": SECRET}, clock=clock)

    built.send(sample())

    [message] = receiver.delivered("webhook")
    assert message.path == "/hooks/crm"
