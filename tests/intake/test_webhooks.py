"""POST /webhooks/<helpdesk>: what is accepted, refused, deduplicated and stored."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.app import create_app
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.errors import UnknownHelpdeskError
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.logs import SafeFormatter
from csat_hook.outbox.api import EXTENSION as OUTBOX_API
from csat_hook.outbox.api import OutboxApi
from csat_hook.ratelimit import RateLimiter
from tests.helpers import body_of
from tests.helpers import chatwoot_headers
from tests.helpers import fixture
from tests.helpers import generic_close

GENERIC_AUTH = {"X-Webhook-Token": "generic-token-123"}


def rows(services: Any, table: sa.Table) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(table).order_by(table.c.id)).all())


def post_chatwoot(client: Any, clock: Any, payload: dict[str, Any], **kw: Any) -> Any:
    body = body_of(payload)
    headers = chatwoot_headers(body, kw.pop("secret", "cw-webhook-secret"), kw.pop("when", clock()))
    return client.post("/webhooks/chatwoot", data=body, headers=headers, **kw)


def test_generic_close_is_stored_and_queued_in_one_go(client, services):
    response = client.post("/webhooks/generic", json=generic_close(), headers=GENERIC_AUTH)

    assert response.status_code == 200
    assert response.json["status"] == "queued"
    [survey] = rows(services, surveys)
    assert (survey.helpdesk, survey.dialog_id, survey.agent_id, survey.agent_name) == (
        "generic",
        "D-1001",
        "7",
        "Anna Petrova",
    )
    assert survey.team == "Support L1" and survey.status == "queued" and survey.token
    [item] = rows(services, outbox)
    assert item.survey_id == survey.id and item.status == "pending"


def test_chatwoot_resolved_conversation_is_queued(client, services, clock):
    response = post_chatwoot(
        client, clock, fixture("chatwoot", "conversation_status_changed_resolved.json")
    )

    assert response.status_code == 200, response.json
    [survey] = rows(services, surveys)
    assert survey.dialog_id == "10"
    assert (survey.agent_id, survey.agent_name) == ("1", "John")
    assert (survey.customer_id, survey.customer_email) == ("12", "jane@acme.inc")
    assert survey.team == "billing" and survey.language == "ru"
    [item] = rows(services, outbox)
    assert item.context == {"account_id": "1"}


def test_same_close_twice_gives_one_survey(client, services):
    first = client.post("/webhooks/generic", json=generic_close(), headers=GENERIC_AUTH)
    second = client.post("/webhooks/generic", json=generic_close(), headers=GENERIC_AUTH)

    assert first.json["status"] == "queued"
    assert second.status_code == 200 and second.json["status"] == "duplicate"
    assert len(rows(services, surveys)) == 1
    assert len(rows(services, outbox)) == 1


def test_concurrent_duplicate_deliveries_give_one_survey(services):
    app = create_app(services=services)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def deliver() -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(
            "/webhooks/generic", json=generic_close(dialog_id="RACE"), headers=GENERIC_AUTH
        )
        results.append(response.json["status"])

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["duplicate"] * 7 + ["queued"]
    assert len(rows(services, outbox)) == 1


def test_reclosing_a_dialog_by_default_gives_no_second_survey(client, services):
    client.post("/webhooks/generic", json=generic_close(), headers=GENERIC_AUTH)
    client.post(
        "/webhooks/generic",
        json={"event": "dialog.reopened", "dialog": {"id": "D-1001"}},
        headers=GENERIC_AUTH,
    )
    again = client.post(
        "/webhooks/generic", json=generic_close(closed_at="later"), headers=GENERIC_AUTH
    )
    # The first survey was still waiting when the dialog reopened, so it was cancelled and
    # the second close revives it: the customer still gets exactly one.
    assert again.json["status"] == "queued"
    assert [s.status for s in rows(services, surveys)] == ["queued"]
    assert len(rows(services, outbox)) == 1


def test_every_close_policy_surveys_each_distinct_close(make_config, make_services):
    services = make_services(
        make_config(
            policy={"per_dialog": "every_close", "reclose_grace_seconds": 0},
            helpdesks={
                "generic": {
                    "kind": "generic",
                    "auth": {"mode": "token", "token": "generic-token-123"},
                    "mapping": {"occurrence": "closed_at"},
                    "reply": {"url": "http://127.0.0.1:9/x"},
                }
            },
        )
    )
    client = create_app(services=services).test_client()
    statuses = [
        client.post(
            "/webhooks/generic", json=generic_close(closed_at=at), headers=GENERIC_AUTH
        ).json["status"]
        for at in ("2026-11-01T10:00:00Z", "2026-11-01T10:00:00Z", "2026-11-02T09:00:00Z")
    ]
    assert statuses == ["queued", "duplicate", "queued"]
    assert len(rows(services, surveys)) == 2


def every_close(
    make_config: Any, make_services: Any, reply_url: str, **policy: Any
) -> tuple[Any, Any]:
    """Services surveying every close of the generic helpdesk (each close its own occurrence,
    by its ``closed_at``), and a function posting a close at a given ``closed_at``."""
    services = make_services(
        make_config(
            policy={"per_dialog": "every_close", "reclose_grace_seconds": 600, **policy},
            helpdesks={
                "generic": {
                    "kind": "generic",
                    "auth": {"mode": "token", "token": "generic-token-123"},
                    "mapping": {"occurrence": "closed_at"},
                    "reply": {"url": reply_url},
                }
            },
        )
    )
    client = create_app(services=services).test_client()

    def close(at: str) -> Any:
        return client.post(
            "/webhooks/generic", json=generic_close(closed_at=at), headers=GENERIC_AUTH
        ).json

    return services, close


def test_every_close_gives_no_new_survey_within_the_grace_window(make_config, make_services, clock):
    _, close = every_close(make_config, make_services, "http://127.0.0.1:9/x")

    first = close("t1")
    clock.advance(60)
    soon = close("t2")  # e.g. the vendor re-closing the dialog after our reply
    clock.advance(600)
    later = close("t3")

    assert first["status"] == "queued"
    assert soon == {
        "status": "skipped",
        "reason": "recently_surveyed",
        "survey_id": soon["survey_id"],
    }
    assert later["status"] == "queued"


def test_the_re_close_grace_counts_from_the_reply_after_a_send_delay(
    make_config, make_services, fake_helpdesk, clock
):
    # The grace was counted from the close: with a send delay at or past it, the vendor's
    # own re-close after our reply (Intercom's and Zendesk's keep_closed) was a close past
    # the grace, and queued a new survey, whose reply re-closed the dialog again: a survey in
    # the same dialog every send delay, for ever.
    from tests.outbox.test_worker import drain

    reply_url = fake_helpdesk.url + "/api/dialogs/{dialog_id}/messages"
    services, close = every_close(make_config, make_services, reply_url, send_delay_seconds=3600)

    first = close("t1")
    assert first["status"] == "queued"
    clock.advance(3601)
    drain(services.delivery_worker(), clock)
    assert [r.status for r in rows(services, outbox)] == ["sent"]
    clock.advance(5)
    again = close("t2")  # the dialog closed again right after our reply
    assert again == {
        "status": "skipped",
        "reason": "recently_surveyed",
        "survey_id": again["survey_id"],
    }
    clock.advance(600)
    assert close("t3")["status"] == "queued"  # the grace past the reply: a close of its own


def test_reopen_cancels_a_delayed_survey(make_config, make_services):
    services = make_services(make_config(policy={"send_delay_seconds": 3600}))
    client = create_app(services=services).test_client()
    client.post("/webhooks/generic", json=generic_close(), headers=GENERIC_AUTH)

    response = client.post(
        "/webhooks/generic",
        json={"event": "dialog.reopened", "dialog": {"id": "D-1001"}},
        headers=GENERIC_AUTH,
    )

    assert response.json == {"status": "reopened", "cancelled": 1}
    assert [i.status for i in rows(services, outbox)] == ["cancelled"]
    assert [s.status for s in rows(services, surveys)] == ["cancelled"]


def test_chatwoot_reopen_event_is_recognised(client, services, clock):
    post_chatwoot(client, clock, fixture("chatwoot", "conversation_status_changed_reopened.json"))
    assert rows(services, surveys) == []


@pytest.mark.parametrize(
    "name",
    [
        "conversation_status_changed_pending.json",
        "conversation_updated.json",
        "message_created.json",
    ],
)
def test_chatwoot_other_events_are_ignored_quickly(client, services, clock, name):
    response = post_chatwoot(client, clock, fixture("chatwoot", name))

    assert response.status_code == 200
    assert response.json["status"] == "ignored"
    assert rows(services, surveys) == []


def test_generic_non_close_event_is_ignored(client, services):
    response = client.post(
        "/webhooks/generic", json={"event": "dialog.assigned", "dialog": {}}, headers=GENERIC_AUTH
    )
    assert response.status_code == 200 and response.json["status"] == "ignored"
    assert rows(services, surveys) == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "empty_body"),
        (b"\xff\xfe\x00garbage", "bad_encoding"),
        (b'{"event": "dialog.closed", "dialog": {}}', "missing_field"),
        (b'{"event": "dialog.closed", "n": NaN}', "invalid_json"),
    ],
)
def test_malformed_bodies_get_400_with_a_reason_and_store_nothing(client, services, body, code):
    response = client.post(
        "/webhooks/generic", data=body, headers=GENERIC_AUTH, content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json["error"] == code and response.json["reason"]
    assert rows(services, surveys) == []


@pytest.mark.parametrize("helpdesk", ["generic", "dryrun"])
@pytest.mark.parametrize(
    ("body", "named"),
    [
        (json.dumps(json.dumps(generic_close("TWICE-1"))).encode(), "a string"),
        (b"42", "a number"),
        (b"null", "null"),
        (b"true", "a boolean"),
    ],
)
def test_a_body_that_is_a_json_scalar_is_a_400_naming_it(client, services, helpdesk, body, named):
    """A sender that JSON-encodes the document twice posts one JSON string: the generic
    mapping found no event in it and answered 200 "ignored", so the vendor stopped and the
    close was lost. No scalar can be a webhook (every vendor adapter already refuses it);
    an array still can (``[0].dialog.id``)."""
    token = "generic-token-123" if helpdesk == "generic" else "dry-token-123"
    response = client.post(
        f"/webhooks/{helpdesk}",
        data=body,
        headers={"X-Webhook-Token": token},
        content_type="application/json",
    )

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "not_an_object"
    assert named in response.json["reason"]
    assert rows(services, surveys) == []


def test_chatwoot_non_object_body_is_400(client, clock):
    response = post_chatwoot(client, clock, [1, 2, 3])  # type: ignore[arg-type]
    assert response.status_code == 400 and response.json["error"] == "not_an_object"


@pytest.mark.parametrize("headers", [{}, {"X-Webhook-Token": "wrong"}])
def test_missing_or_wrong_token_gets_401_and_stores_nothing(client, services, headers):
    response = client.post("/webhooks/generic", json=generic_close(), headers=headers)

    assert response.status_code == 401
    assert response.json == {"error": "unauthorized", "reason": "missing or wrong webhook token"}
    # RFC 9110 15.5.2: a 401 says what would be accepted; the token itself never.
    assert response.headers["WWW-Authenticate"] == 'Token realm="generic", header="X-Webhook-Token"'
    assert "generic-token-123" not in str(response.headers)
    assert rows(services, surveys) == []


def test_token_may_come_in_the_query(client):
    response = client.post("/webhooks/generic?token=generic-token-123", json=generic_close())
    assert response.status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        "token=generic-token-123&token=wrong",
        "token=wrong&token=generic-token-123",
        "token=generic-token-123&token=generic-token-123",
        "token=generic-token-123&x=1&x=2",
    ],
)
def test_a_query_parameter_given_twice_is_refused(client, services, query):
    """Which of two values counts differs between readers (Werkzeug the first, others the
    last): a URL that says two things is refused whatever the order, never half-accepted."""
    response = client.post(f"/webhooks/generic?{query}", json=generic_close())

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "duplicate_parameter"
    assert rows(services, surveys) == []


@pytest.mark.parametrize(
    "spelled", ["generic-token-123", "generic%2Dtoken%2d123", "%67eneric-token-123"]
)
def test_a_percent_escaped_query_token_is_the_same_token(client, spelled):
    response = client.post(f"/webhooks/generic?token={spelled}", json=generic_close())
    assert response.status_code == 200, response.get_data()[:300]


def test_a_query_token_with_a_plus_sign_matches_as_written(make_config, make_services):
    """A token from `openssl rand -base64` holds '+', '/' and '=': pasted into the webhook
    URL as it is, its '+' was read as a space (form decoding) and every webhook refused 401."""
    token = "k9+Fz/Qw==+x"
    config = make_config(
        helpdesks={
            "generic": {
                "kind": "generic",
                "auth": {"mode": "token", "token": token},
                "reply": {"url": "https://desk.example.com/d/{dialog_id}"},
            }
        }
    )
    client = create_app(services=make_services(config)).test_client()

    for spelled in (token, "k9%2BFz%2FQw%3D%3D%2Bx"):
        response = client.post(f"/webhooks/generic?token={spelled}", json=generic_close())
        assert response.status_code == 200, (spelled, response.get_data()[:300])
    for wrong in ("k9+Fz/Qw==+", "k9+Fz/Qw==+xx", "k9-Fz/Qw==+x"):
        response = client.post(f"/webhooks/generic?token={wrong}", json=generic_close())
        assert response.status_code == 401, (wrong, response.get_data()[:300])


def test_unsigned_chatwoot_request_gets_401(client, services):
    payload = fixture("chatwoot", "conversation_status_changed_resolved.json")
    response = client.post("/webhooks/chatwoot", json=payload)
    assert response.status_code == 401
    assert "X-Chatwoot-Signature" in response.json["reason"]
    assert rows(services, surveys) == []


def test_chatwoot_signature_with_wrong_secret_gets_401(client, clock):
    payload = fixture("chatwoot", "conversation_status_changed_resolved.json")
    assert post_chatwoot(client, clock, payload, secret="other").status_code == 401


def test_chatwoot_tampered_body_gets_401(client, clock):
    payload = fixture("chatwoot", "conversation_status_changed_resolved.json")
    body = body_of(payload)
    headers = chatwoot_headers(body, "cw-webhook-secret", clock())
    tampered = body.replace(b'"John"', b'"Mallory"')
    assert client.post("/webhooks/chatwoot", data=tampered, headers=headers).status_code == 401


def test_chatwoot_replay_outside_tolerance_gets_401(client, clock):
    payload = fixture("chatwoot", "conversation_status_changed_resolved.json")
    from datetime import timedelta

    response = post_chatwoot(client, clock, payload, when=clock() - timedelta(minutes=6))
    assert response.status_code == 401
    assert "tolerance" in response.json["reason"]
    assert response.headers["WWW-Authenticate"].startswith('Signature realm="chatwoot"')


@pytest.mark.parametrize("length", ["\xb2", "1\xb9", "\u0661\u0662", "-1", "1e3"])
def test_a_content_length_that_is_not_ascii_digits_is_a_400(client, services, length):
    """gunicorn refuses such a header before the app runs; behind another server it reached
    the view: "²" and "¹" (Latin-1 header bytes) are digits to str.isdigit but not to int(),
    a 500; "١٢" (Arabic-Indic) was read as 12."""
    body = body_of(generic_close(dialog_id="CL-1"))

    response = client.post(
        "/webhooks/generic",
        data=body,
        headers={**GENERIC_AUTH, "Content-Type": "application/json"},
        environ_overrides={"CONTENT_LENGTH": length},
    )

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json == {"error": "bad_framing", "reason": "invalid Content-Length"}
    assert rows(services, surveys) == []


def test_oversized_body_gets_413_and_stores_nothing(make_config, make_services):
    services = make_services(make_config(server={"max_body_bytes": 2048}))
    client = create_app(services=services).test_client()
    payload = generic_close(note="x" * 5000)

    response = client.post("/webhooks/generic", json=payload, headers=GENERIC_AUTH)

    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"
    assert rows(services, surveys) == []


@pytest.mark.parametrize("encoding", ["gzip", "deflate, gzip", "br"])
def test_a_compressed_body_is_415_and_never_inflated(client, services, encoding):
    """A gzip bomb (10 MB of spaces in 10 kB) is refused by its header, before a byte of it is
    read, decompressed or verified."""
    bomb = gzip.compress(b" " * 10_000_000)

    response = client.post(
        "/webhooks/generic",
        data=bomb,
        headers={**GENERIC_AUTH, "Content-Encoding": encoding, "Content-Type": "application/json"},
    )

    assert response.status_code == 415, response.get_data()[:300]
    assert response.json == {
        "error": "unsupported_encoding",
        "reason": "a Content-Encoding other than identity is not accepted",
    }
    assert rows(services, surveys) == []
    plain = client.post(
        "/webhooks/generic",
        json=generic_close(),
        headers={**GENERIC_AUTH, "Content-Encoding": "identity"},
    )
    assert plain.status_code == 200


def test_unknown_helpdesk_is_404(client):
    response = client.post("/webhooks/nosuchdesk", json={}, headers=GENERIC_AUTH)
    assert response.status_code == 404
    assert response.json["error"] == "unknown_helpdesk"


PRIVATE = "Customer jane@acme.inc wrote: my password is hunter2"


def test_an_unknown_helpdesk_is_named_when_it_looks_like_a_name(client):
    response = client.post("/webhooks/nosuchdesk", json={}, headers=GENERIC_AUTH)
    assert response.json["reason"] == "no helpdesk named 'nosuchdesk' is configured"


def test_an_ignored_event_is_neither_answered_nor_logged_with_the_senders_text(client, caplog):
    # The ignored reason quoted the event, whatever it held, in the 200 answer and at DEBUG.
    caplog.set_level(logging.DEBUG)
    response = client.post(
        "/webhooks/generic", json={"event": PRIVATE, "dialog": {}}, headers=GENERIC_AUTH
    )

    assert response.status_code == 200
    assert response.json == {
        "status": "ignored",
        "reason": "event '(not a name: 52 characters)' is not a close event",
    }
    [ignored] = [r for r in caplog.records if r.msg == "webhook.ignored"]
    assert ignored.reason == response.json["reason"]
    for record in caplog.records:
        text = record.getMessage() + repr(vars(record))
        assert "hunter2" not in text.lower() and "jane" not in text.lower(), record


def test_intake_itself_bounds_an_unknown_helpdesk_name(services):
    # The view checks the name first; Intake.receive, called by anything else, named the
    # whole name in its reason.
    name = "y\u2028" + "B" * 6000
    request = WebhookRequest(body=b"{}", headers={}, query={}, received_at=datetime.now(UTC))

    with pytest.raises(UnknownHelpdeskError) as refused:
        services.intake.receive(name, request)

    # Then clipped and escaped, it still quoted 200 characters of the sender's text: now a
    # name is named only when it looks like one.
    assert str(refused.value) == (
        "no helpdesk is configured by the name in the path (not a name: 6002 characters)"
    )


@pytest.mark.parametrize("method", ["POST", "HEAD"])
def test_a_long_unknown_helpdesk_name_is_echoed_bounded_and_escaped(client, caplog, method):
    # The 404's reason and its log line held the whole path segment: up to 8 KB of the
    # sender's text in each answer and each log line.
    caplog.set_level(logging.INFO)
    name = "x\u2028\x1b[2J" + "A" * 6000

    response = client.open(f"/webhooks/{name}", method=method, json={}, headers=GENERIC_AUTH)

    assert response.status_code == 404
    if method == "POST":
        assert response.json["reason"] == (
            "no helpdesk is configured by the name in the path (not a name: 6006 characters)"
        )
    [refused] = [r for r in caplog.records if r.msg == "webhook.refused"]
    # Not the path, not even clipped: the name's length only (tests/test_logs.py).
    assert not hasattr(refused, "path")
    assert refused.helpdesk == "(not configured: 6006 characters)"


@pytest.mark.parametrize(
    ("method", "path", "trailing"),
    [
        ("POST", "/webhooks/generic/", True),
        ("POST", "/webhooks/nosuchdesk/", True),
        ("HEAD", "/webhooks/generic/", True),
        ("POST", "/webhooks/generic/close", False),
        ("POST", "/webhooks/", False),
        ("POST", "/webhooks", False),
        ("POST", "/webhook/generic", False),
        ("POST", "/Webhooks/generic", False),
        ("GET", "/webhooks/generic/", True),
        ("POST", "/hooks/generic", False),
    ],
)
def test_a_near_miss_of_a_webhook_url_is_a_404_naming_the_accepted_form(
    client, services, caplog, method, path, trailing
):
    """Werkzeug's 404 said "The requested URL was not found on the server. If you entered
    the URL manually please check your spelling": nothing about what the URL should be. The
    reason names the accepted form, never the sender's path, nor does the log line."""
    caplog.set_level(logging.DEBUG)
    private = "hunter2"

    response = client.open(
        f"{path}?token={private}", method=method, json=generic_close(), headers=GENERIC_AUTH
    )

    assert response.status_code == 404, response.get_data()[:300]
    assert response.mimetype == "application/json"
    if method != "HEAD":
        reason = response.json["reason"]
        assert response.json["error"] == "not_found"
        assert "/webhooks/<helpdesk>" in reason
        assert ("without a trailing slash" in reason) is trailing
        assert "generic" not in reason and "nosuchdesk" not in reason and "close" not in reason
    assert rows(services, surveys) == []
    [refused] = [r for r in caplog.records if r.msg == "webhook.refused"]
    assert refused.status == 404 and refused.reason == "not_found"
    for record in caplog.records:
        text = record.getMessage() + repr(vars(record))
        assert path not in text and private not in text, record


def test_an_unknown_page_fetched_is_still_a_plain_404(client):
    # Not a webhook's near miss: a browser or a scanner asking for a page.
    response = client.get("/favicon.ico")

    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    assert "/webhooks/" not in response.json["reason"]


def test_wrong_method_is_json_405(client):
    response = client.get("/webhooks/generic")
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("sent", "logged"),
    [
        ("GET", "GET"),
        ("get", "GET"),  # Werkzeug's request.method, as the router read it
        ("PUT", "PUT"),
        ("PATCH", "PATCH"),
        ("DELETE", "DELETE"),
        ("OPTIONS", "OPTIONS"),
        # A method is any token a client sends (gunicorn passes any upper-case one on): one
        # no standard names may hold anything, so only its length is said.
        ("HUNTER2SECRET", "(not a standard method: 13 characters)"),
    ],
)
def test_a_method_a_webhook_url_refuses_is_logged_as_any_refusal(client, caplog, sent, logged):
    """A 405 on a configured helpdesk's URL was answered (with Allow) but logged nowhere,
    where every other refusal of a webhook URL is a ``webhook.refused`` line: a sender whose
    helpdesk sends another method saw nothing in our logs. The answer is as it was; the line
    names the method, never the query string or the body."""
    caplog.set_level(logging.DEBUG)
    private = "hunter2"

    response = client.open(
        f"/webhooks/generic?token={private}",
        method=sent,
        json={"note": f"the customer wrote {private}"},
    )

    assert response.status_code == 405, response.get_data()[:300]
    assert response.headers["Allow"] == "HEAD, POST"
    assert response.mimetype == "application/json"
    assert response.json == {
        "error": "method_not_allowed",
        "reason": "The method is not allowed for the requested URL.",
    }
    [refused] = [r for r in caplog.records if r.msg == "webhook.refused"]
    assert (refused.status, refused.reason, refused.method) == (405, "method_not_allowed", logged)
    assert refused.helpdesk == "generic"
    assert not hasattr(refused, "route")  # no route matched: the router refused the method
    assert refused.levelname == "INFO"
    for record in caplog.records:
        assert private not in record.getMessage() + repr(vars(record)), record


def test_a_method_another_url_refuses_is_no_webhook_refusal(client, caplog):
    """The 405 of /healthz (or any URL not a webhook's) is no webhook's refusal."""
    caplog.set_level(logging.DEBUG)

    assert client.post("/healthz").status_code == 405
    assert client.open("/healthz", method="OPTIONS").status_code == 405

    assert not [r for r in caplog.records if r.msg.startswith("webhook.")]


def test_healthz_checks_the_database(client, services):
    assert client.get("/healthz").json == {"status": "ok", "database": "ok"}
    services.engine.dispose()
    services.engine = sa.create_engine("sqlite:////nonexistent-dir/x/y.db")
    services.intake.engine = services.engine
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json["database"] == "down"


def one_connection_engine(tmp_path: Path) -> sa.Engine:
    """A SQLite engine whose pool holds one connection and waits 0.1 s for it to free up."""
    return sa.create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}",
        poolclass=sa.pool.QueuePool,
        pool_size=1,
        max_overflow=0,
        pool_timeout=0.1,
    )


def test_healthz_says_down_when_no_pooled_connection_frees_up(client, services, tmp_path):
    # Every pooled connection held (by a database that stopped answering) past the pool's
    # timeout: SQLAlchemy's TimeoutError, not a driver's error. /healthz answered 500
    # "internal_error" with a traceback, where the service says the database is unavailable.
    engine = one_connection_engine(tmp_path)
    services.intake.engine = engine
    try:
        with engine.connect():  # the only connection, held
            response = client.get("/healthz")
    finally:
        engine.dispose()

    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "database": "down"}


def test_healthz_answers_while_another_transaction_writes(client, services):
    # Its read took SQLite's writer lock (BEGIN IMMEDIATE): during a long write (a sync,
    # another process) /healthz waited up to the 30 s busy timeout, then said "down".
    writing, release = threading.Event(), threading.Event()

    def busy() -> None:
        with services.engine.begin() as conn:
            conn.execute(sa.text("SELECT 1"))
            writing.set()
            release.wait(10)

    writer = threading.Thread(target=busy)
    writer.start()
    try:
        writing.wait(5)
        started = time.monotonic()
        response = client.get("/healthz")
        took = time.monotonic() - started
    finally:
        release.set()
        writer.join()

    assert response.json == {"status": "ok", "database": "ok"}
    assert took < 2.0, took


def test_a_close_or_reopen_while_no_pooled_connection_frees_up_gets_503(client, services, tmp_path):
    # Every pooled connection held past the pool's timeout (a database that stopped
    # answering) raises SQLAlchemy's TimeoutError, no driver's error: the close was answered
    # 500 internal_error (logged webhook.record-failed), the reopen too, with a traceback.
    engine = one_connection_engine(tmp_path)
    kept = services.engine
    services.engine = services.intake.engine = engine
    reopen = {**generic_close(), "event": "dialog.reopened"}
    try:
        with engine.connect():  # the only connection, held
            responses = [
                client.post("/webhooks/generic", json=body, headers=GENERIC_AUTH)
                for body in (generic_close(), reopen)
            ]
    finally:
        services.engine = services.intake.engine = kept
        engine.dispose()

    for response in responses:
        assert response.status_code == 503, response.json
        assert response.json["error"] == "unavailable"


def test_database_down_during_a_close_gets_503(client, services):
    services.engine.dispose()
    services.engine = sa.create_engine("sqlite:////nonexistent-dir/x/y.db")
    response = client.post("/webhooks/generic", json=generic_close(), headers=GENERIC_AUTH)
    assert response.status_code == 503 and response.json["error"] == "unavailable"


@pytest.mark.parametrize(
    ("policy", "payload", "reason"),
    [
        ({"skip_without_agent": True}, generic_close(agent={}), "no_agent"),
        ({"exclude_channels": ["Chat"]}, generic_close(), "excluded_channel"),
        ({"exclude_teams": ["support l1"]}, generic_close(), "excluded_team"),
    ],
)
def test_send_policy_skips_are_recorded_without_a_reply(
    make_config, make_services, policy, payload, reason
):
    services = make_services(make_config(policy=policy))
    client = create_app(services=services).test_client()

    response = client.post("/webhooks/generic", json=payload, headers=GENERIC_AUTH)

    assert response.json["status"] == "skipped" and response.json["reason"] == reason
    assert [s.skip_reason for s in rows(services, surveys)] == [reason]
    assert rows(services, outbox) == []


@pytest.mark.parametrize(
    ("excluded", "team", "reason"),
    [
        ("support l1", "SUPPORT L1 ", "excluded_team"),
        ("support l1", "Support\u00a0L1", "excluded_team"),
        ("support l1", "Support  L1\u200b", "excluded_team"),
        ("  Support L1", "support\tl1", "excluded_team"),
        ("Équipe", "E\u0301QUIPE", "excluded_team"),
        ("support l1", "Support L2", None),
        ("support l1", "Support L11", None),
    ],
)
def test_exclude_teams_compares_teams_as_the_report_groups_them(
    make_config, make_services, excluded, team, reason
):
    """A team the helpdesk spells another way (case, spaces, a no-break space, an invisible
    character, an accent composed or not) is the excluded team, as the report counts those
    spellings as one team (db.text.name_key)."""
    services = make_services(make_config(policy={"exclude_teams": [excluded]}))
    client = create_app(services=services).test_client()

    response = client.post("/webhooks/generic", json=generic_close(team=team), headers=GENERIC_AUTH)

    assert response.json.get("reason") == reason
    assert [s.skip_reason for s in rows(services, surveys)] == [reason]
    # Stored as the helpdesk sent it (the adapter trims the ends), not folded.
    assert [s.team for s in rows(services, surveys)] == [team.strip()]


@pytest.mark.parametrize(
    ("excluded", "channel", "reason"),
    [
        ("WhatsApp", "whatsapp", "excluded_channel"),
        ("WhatsApp", "WHATSAPP\u00a0", "excluded_channel"),
        ("e-mail", "E-MAIL\u200b", "excluded_channel"),
        ("Télégram", "TE\u0301LE\u0301GRAM", "excluded_channel"),
        ("chat", "chat bot", None),
        ("e-mail", "email", None),
    ],
)
def test_exclude_channels_compares_channels_as_teams_are_compared(
    make_config, make_services, excluded, channel, reason
):
    """A channel the helpdesk spells another way (case, a no-break space, an invisible
    character, an accent composed or not) is the excluded channel; it was compared by
    lower() alone."""
    services = make_services(make_config(policy={"exclude_channels": [excluded]}))
    client = create_app(services=services).test_client()

    response = client.post(
        "/webhooks/generic", json=generic_close(channel=channel), headers=GENERIC_AUTH
    )

    assert response.json.get("reason") == reason
    assert [s.skip_reason for s in rows(services, surveys)] == [reason]


def test_customer_cooldown_skips_a_second_dialog_of_the_same_customer(
    make_config, make_services, clock
):
    services = make_services(make_config(policy={"customer_cooldown_days": 30}))
    client = create_app(services=services).test_client()
    client.post("/webhooks/generic", json=generic_close(dialog_id="A"), headers=GENERIC_AUTH)
    clock.advance(86400)
    second = client.post(
        "/webhooks/generic", json=generic_close(dialog_id="B"), headers=GENERIC_AUTH
    )
    clock.advance(31 * 86400)
    third = client.post(
        "/webhooks/generic", json=generic_close(dialog_id="C"), headers=GENERIC_AUTH
    )

    assert second.json["reason"] == "customer_cooldown"
    assert third.json["status"] == "queued"


@pytest.mark.parametrize("email", ["Иван@почта.рф", "İlker@example.com", "ANNA@example.com"])
def test_customer_cooldown_knows_a_customer_by_an_email_with_capitals_of_any_script(
    make_config, make_services, email
):
    """Closes naming the customer by e-mail only. The look-back compared the database's
    lower() of the stored e-mail with Python's lower() of the new one: SQLite's lower() is
    ASCII-only and PostgreSQL's maps "İ" to "i" (Python: "i" and a combining dot), so the
    very same address with a capital outside ASCII never matched, and every close surveyed."""
    services = make_services(make_config(policy={"customer_cooldown_days": 30}))
    client = create_app(services=services).test_client()

    def close(dialog_id: str) -> dict[str, Any]:
        return generic_close(dialog_id=dialog_id, customer={"email": email})

    first = client.post("/webhooks/generic", json=close("A"), headers=GENERIC_AUTH)
    second = client.post("/webhooks/generic", json=close("B"), headers=GENERIC_AUTH)

    assert first.json["status"] == "queued"
    assert second.json.get("reason") == "customer_cooldown", second.json


def test_form_encoded_bodies_are_read(client, services):
    response = client.post(
        "/webhooks/generic",
        headers=GENERIC_AUTH,
        data={"payload": body_of(generic_close(dialog_id="FORM-1")).decode()},
    )
    assert response.status_code == 200 and response.json["status"] == "queued"
    assert rows(services, surveys)[0].dialog_id == "FORM-1"


def test_json_in_a_form_field_beside_other_fields_is_the_close(client, services):
    """Automation tools (Zapier's and Make's webhook steps) post the fields the user lists: the
    JSON in ``payload`` beside a token or a label. Read as the form it was, the close inside
    was answered 200 "ignored" (no event field): lost. The other fields go beside the JSON's
    own, so a body-field token (auth.token_field) still reads."""
    response = client.post(
        "/webhooks/generic",
        headers=GENERIC_AUTH,
        data={
            "payload": body_of(generic_close(dialog_id="FORM-2")).decode(),
            "source": "zapier",
        },
    )

    assert response.status_code == 200 and response.json["status"] == "queued", response.json
    assert [s.dialog_id for s in rows(services, surveys)] == ["FORM-2"]


@pytest.mark.parametrize(
    ("form", "code"),
    [
        # A sibling named as a key of the JSON: the body would say two things.
        ({"payload": json.dumps(generic_close()), "event": "dialog.opened"}, "duplicate_key"),
        # JSON in two wrapper fields: which one is the close cannot be told.
        ({"payload": json.dumps(generic_close()), "data": "{}"}, "mixed_form"),
        # A list beside other fields: nothing to put them beside.
        ({"data": json.dumps([generic_close()]), "source": "make"}, "mixed_form"),
    ],
    ids=["same-key", "two-documents", "list"],
)
def test_json_in_a_form_field_that_cannot_be_read_one_way_is_a_400(client, services, form, code):
    response = client.post("/webhooks/generic", headers=GENERIC_AUTH, data=form)

    assert response.status_code == 400 and response.json["error"] == code, response.json
    assert rows(services, surveys) == []


def test_a_form_field_named_data_that_holds_no_json_is_a_plain_field(client, services):
    # A form whose fields are the document (mapping paths read them) may name one "data".
    response = client.post(
        "/webhooks/generic",
        headers=GENERIC_AUTH,
        data={"event": "dialog.opened", "data": "plain text"},
    )

    assert response.status_code == 200 and response.json["status"] == "ignored", response.json


def test_operator_api_is_off_without_a_token(client):
    response = client.get("/api/outbox")
    assert response.status_code == 404 and "server.api_token" in response.json["reason"]


def test_operator_api_needs_the_bearer_token(make_config, make_services):
    services = make_services(make_config(server={"api_token": "operator-token-0123456789"}))
    client = create_app(services=services).test_client()
    client.post("/webhooks/generic", json=generic_close("API-1"), headers=GENERIC_AUTH)

    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic operator-token-0123456789"},
    ):
        denied = client.get("/api/outbox", headers=headers)
        assert denied.status_code == 401 and "API-1" not in denied.get_data(as_text=True)
    allowed = client.get(
        "/api/outbox?status=pending", headers={"Authorization": "Bearer operator-token-0123456789"}
    )
    assert allowed.status_code == 200
    assert allowed.json["counts"]["pending"] == 1
    assert [r["dialog_id"] for r in allowed.json["replies"]] == ["API-1"]


def as_wsgi_header(text: str) -> str:
    """A header value as a WSGI server hands it over: its UTF-8 bytes decoded as ISO-8859-1
    (PEP 3333). Werkzeug's test client passes text as it is, which no server does."""
    return text.encode("utf-8").decode("latin-1")


def test_a_token_outside_ascii_is_accepted_in_a_header_as_in_the_query(make_config, make_services):
    """The header's value was encoded as UTF-8 again, as if it were text: a token with a
    letter outside ASCII never matched in a header (only in the query), so every webhook of
    such a helpdesk was a 401 "wrong webhook token"; the same for the operator API's bearer
    token."""
    token, api_token = "пароль-секрет-123", "токен-оператора-0123"
    generic = base_generic_with_token(token)
    services = make_services(
        make_config(helpdesks={"generic": generic}, server={"api_token": api_token})
    )
    client = create_app(services=services).test_client()

    header = client.post(
        "/webhooks/generic",
        json=generic_close("NA-1"),
        headers={"X-Webhook-Token": as_wsgi_header(token)},
    )
    query = client.post(
        "/webhooks/generic", json=generic_close("NA-2"), query_string={"token": token}
    )
    wrong = client.post(
        "/webhooks/generic",
        json=generic_close("NA-3"),
        headers={"X-Webhook-Token": as_wsgi_header("пароль-секрет-124")},
    )
    api = client.get(
        "/api/outbox", headers={"Authorization": as_wsgi_header(f"Bearer {api_token}")}
    )

    assert (header.status_code, query.status_code, wrong.status_code) == (200, 200, 401)
    assert api.status_code == 200 and api.json["counts"]["pending"] == 2


def base_generic_with_token(token: str) -> dict[str, Any]:
    return {
        "kind": "generic",
        "auth": {"mode": "token", "token": token},
        "reply": {"url": "http://127.0.0.1:9/api/dialogs/{dialog_id}/messages"},
    }


OPERATOR = {"Authorization": "Bearer operator-token-0123456789"}


@pytest.mark.parametrize(
    "query",
    ["limit=abc", "limit=-1", "limit=%205", "limit=1_000", "limit=%D9%A3", "limit=", "status=lost"],
)
def test_operator_api_refuses_a_query_it_cannot_read_exactly(make_config, make_services, query):
    services = make_services(make_config(server={"api_token": "operator-token-0123456789"}))
    client = create_app(services=services).test_client()
    response = client.get(f"/api/outbox?{query}", headers=OPERATOR)
    assert response.status_code == 400 and response.json["error"] == "bad_request"


@pytest.mark.parametrize("limit", ["0", "000", "501", "999999", "1000000", "10" * 20, "2.5", "-0"])
def test_operator_api_refuses_a_limit_outside_1_to_500_naming_it(make_config, make_services, limit):
    # 0 was read as 1 and 999999 as 500: an answer to another question than the one asked.
    services = make_services(make_config(server={"api_token": "operator-token-0123456789"}))
    client = create_app(services=services).test_client()

    response = client.get(f"/api/outbox?limit={limit}", headers=OPERATOR)

    assert response.status_code == 400, response.json
    assert response.json == {
        "error": "bad_request",
        "reason": "limit must be a whole number from 1 to 500",
    }
    for ends in ("1", "500", "007"):
        assert client.get(f"/api/outbox?limit={ends}", headers=OPERATOR).status_code == 200


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("limit=5&limit=600", "limit is given more than once"),
        ("limit=600&limit=5", "limit is given more than once"),
        ("stauts=failed", "unknown query parameter; known: status, limit"),
        ("status=failed&limt=5", "unknown query parameter; known: status, limit"),
    ],
)
def test_operator_api_refuses_a_parameter_it_would_not_read_naming_the_key(
    make_config, make_services, query, reason
):
    # A typo (?stauts=failed) listed every reply, failed or not, and a repeated limit was
    # read as its first value: an answer to another question than the one asked, with a 200.
    services = make_services(make_config(server={"api_token": "operator-token-0123456789"}))
    client = create_app(services=services).test_client()
    client.post("/webhooks/generic", json=generic_close("API-1"), headers=GENERIC_AUTH)

    response = client.get(f"/api/outbox?{query}", headers=OPERATOR)

    assert response.status_code == 400, response.json
    assert response.json == {"error": "bad_request", "reason": reason}
    assert "stauts" not in response.get_data(as_text=True)  # never the caller's text
    for fine in ("status=failed&status=pending", "status=pending&limit=5", ""):
        assert client.get(f"/api/outbox?{fine}", headers=OPERATOR).status_code == 200


def test_operator_api_answers_503_while_the_database_is_down(make_config, make_services, caplog):
    services = make_services(make_config(server={"api_token": "operator-token-0123456789"}))
    app = create_app(services=services)
    dead = sa.create_engine("sqlite:////nonexistent-dir/x/y.db")
    app.extensions[OUTBOX_API] = OutboxApi(dead, "operator-token-0123456789")
    response = app.test_client().get("/api/outbox?limit=5", headers=OPERATOR)
    assert response.status_code == 503 and response.json["error"] == "unavailable"
    [down] = [r for r in caplog.records if r.msg == "api.database-down"]
    assert down.error == "OperationalError"  # the driver's error type, never its text


@pytest.mark.parametrize(
    ("method", "query", "headers", "status"),
    [
        ("GET", "", OPERATOR, 200),
        ("HEAD", "", OPERATOR, 200),
        ("GET", "", {}, 401),
        ("GET", "limit=0", OPERATOR, 400),
        ("POST", "", OPERATOR, 405),
    ],
)
def test_no_answer_of_the_operator_api_is_kept_by_a_cache(
    make_config, make_services, method, query, headers, status
):
    # The listing names agents, tickets and the helpdesks' error texts: a shared proxy or the
    # browser that fetched it kept it (no Cache-Control), for whoever asks that URL next.
    services = make_services(make_config(server={"api_token": "operator-token-0123456789"}))
    client = create_app(services=services).test_client()
    client.post("/webhooks/generic", json=generic_close("API-1"), headers=GENERIC_AUTH)

    response = client.open(f"/api/outbox?{query}", method=method, headers=headers)

    assert response.status_code == status
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.mimetype == "application/json"


def test_operator_api_off_is_not_kept_by_a_cache_either(client):
    # Off today, on tomorrow: a cached 404 would hide the API after the token is set.
    response = client.get("/api/outbox")

    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer wrong-token-0123456789", "Basic dXNlcjpwYXNz"]
)
def test_a_refused_operator_says_which_scheme_to_use(make_config, make_services, authorization):
    # RFC 9110 11.6.1: a 401 carries WWW-Authenticate (RFC 6750: Bearer), else clients and
    # proxies cannot tell a missing credential from a refused request, and some retry blind.
    services = make_services(make_config(server={"api_token": "operator-token-0123456789"}))
    client = create_app(services=services).test_client()
    headers = {} if authorization is None else {"Authorization": authorization}

    response = client.get("/api/outbox", headers=headers)

    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="csat-hook operator API"'


def _api_client(make_config, make_services, *, clock=None, **server):
    """A client of the app with the operator API on; ``clock``: the failure limit's clock."""
    services = make_services(
        make_config(server={"api_token": "operator-token-0123456789", **server})
    )
    app = create_app(services=services)
    if clock is not None:
        limit = server.get("api_failures_per_minute", 10)
        app.extensions[OUTBOX_API] = OutboxApi(
            services.engine,
            "operator-token-0123456789",
            failures=RateLimiter(limit, clock=clock),
        )
    return app.test_client()


def _wrong(client, address="203.0.113.9", **headers):
    return client.get(
        "/api/outbox",
        headers={"Authorization": "Bearer wrong-token-0123456789", **headers},
        environ_base={"REMOTE_ADDR": address},
    )


def test_a_token_guesser_is_held_off_after_ten_wrong_tokens_a_minute(make_config, make_services):
    client = _api_client(make_config, make_services)

    codes = [_wrong(client).status_code for _ in range(11)]

    assert codes == [401] * 10 + [429]
    held = _wrong(client)
    assert held.status_code == 429 and held.json["error"] == "too_many_failures"
    assert 1 <= int(held.headers["Retry-After"]) <= 61
    assert held.headers["Cache-Control"] == "no-store"
    # Held off whatever it sends next, the right token too: else a guess would still be
    # answered (200 or 429) and guessing never stop.
    right = client.get("/api/outbox", headers=OPERATOR, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert right.status_code == 429
    # Another client, and the operator elsewhere, are not.
    assert _wrong(client, "198.51.100.1").status_code == 401
    assert client.get("/api/outbox", headers=OPERATOR).status_code == 200


def test_the_hold_ends_with_its_minute(make_config, make_services):
    now = [1000.0]
    client = _api_client(make_config, make_services, clock=lambda: now[0])
    for _ in range(10):
        _wrong(client)
    held = _wrong(client)
    assert held.status_code == 429

    now[0] += int(held.headers["Retry-After"])

    assert _wrong(client).status_code == 401


def test_an_operators_own_requests_never_count(make_config, make_services):
    client = _api_client(make_config, make_services)
    ok = {"REMOTE_ADDR": "203.0.113.9"}

    assert all(
        client.get("/api/outbox", headers=OPERATOR, environ_base=ok).status_code == 200
        for _ in range(50)
    )
    assert [_wrong(client).status_code for _ in range(10)] == [401] * 10


def test_an_ipv6_client_is_held_off_by_its_64(make_config, make_services):
    client = _api_client(make_config, make_services)
    for i in range(10):  # a new address of its /64 for every guess
        assert _wrong(client, f"2001:db8:1:2::{i + 1:x}").status_code == 401

    assert _wrong(client, "2001:db8:1:2:ffff::1").status_code == 429
    assert _wrong(client, "2001:db8:1:3::1").status_code == 401  # another /64


@pytest.mark.parametrize("trust_proxy", [False, True])
def test_the_address_that_counts_is_the_one_trust_proxy_says(
    make_config, make_services, trust_proxy
):
    # Behind a trusted proxy the client is the address it appended; without trust_proxy the
    # header is the sender's text, and a guesser naming a new address each time gains nothing.
    client = _api_client(make_config, make_services, trust_proxy=trust_proxy)
    codes = [
        _wrong(client, "192.0.2.1", **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in range(11)
    ]
    assert codes == ([401] * 11 if trust_proxy else [401] * 10 + [429])


def test_wrong_tokens_held_off_behind_an_untrusted_proxy_are_said_once(
    make_config, make_services, caplog
):
    # Behind a reverse proxy without server.trust_proxy every client is the proxy's address:
    # one guesser's wrong tokens hold the operator off too. The operator is told, once per
    # process (as the short links' client limit does), naming the setting, not an address.
    client = _api_client(make_config, make_services, api_failures_per_minute=1)
    caplog.set_level(logging.INFO)
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    forwarded = {"X-Forwarded-For": "198.51.100.7"}

    codes = [_wrong(client, "10.0.0.1", **forwarded).status_code for _ in range(3)]
    right = client.get("/api/outbox", headers={**OPERATOR, **forwarded}, environ_base=proxy)

    assert codes == [401, 429, 429] and right.status_code == 429
    warned = [r for r in caplog.records if r.getMessage() == "api.limited-behind-proxy"]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    line = SafeFormatter().format(warned[0])
    assert "server.trust_proxy" in line
    assert "198.51.100.7" not in line and "10.0.0.1" not in line


@pytest.mark.parametrize(
    ("trust_proxy", "headers"),
    [(False, {}), (True, {"X-Forwarded-For": "198.51.100.7"})],
    ids=["no-proxy", "trusted-proxy"],
)
def test_wrong_tokens_held_off_without_an_untrusted_proxy_warn_of_none(
    make_config, make_services, caplog, trust_proxy, headers
):
    client = _api_client(
        make_config, make_services, api_failures_per_minute=1, trust_proxy=trust_proxy
    )
    caplog.set_level(logging.INFO)

    codes = [_wrong(client, "10.0.0.1", **headers).status_code for _ in range(2)]

    assert codes == [401, 429]
    assert not [r for r in caplog.records if "behind-proxy" in r.getMessage()]


def test_the_failure_limit_is_configurable(make_config, make_services):
    client = _api_client(make_config, make_services, api_failures_per_minute=3)
    assert [_wrong(client).status_code for _ in range(4)] == [401, 401, 401, 429]


@pytest.mark.parametrize("api_token", [None, "operator-token-0123456789"])
def test_options_on_the_operator_api_is_a_405_naming_get(make_config, make_services, api_token):
    # Flask answered OPTIONS itself: a 200 with an empty text/html body, the API on or off,
    # where /healthz and the webhook URLs (and every other method here) answer a JSON 405.
    services = make_services(make_config(server={"api_token": api_token}))
    client = create_app(services=services).test_client()

    response = client.options("/api/outbox", headers=OPERATOR)

    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, HEAD"
    assert response.headers["Cache-Control"] == "no-store"


def _sent(target: str) -> dict[str, str]:
    """The environ of a request-target as gunicorn gives it: PATH_INFO its path unchanged
    (``//webhooks/generic`` included, util.split_request_uri). The test client cannot send
    such a path: it reads ``//webhooks/generic`` as a network-path reference (host
    ``webhooks``, path ``/generic``) and ``http://h///webhooks/generic`` with one slash."""
    path, _, query = target.partition("?")
    return {"PATH_INFO": path, "QUERY_STRING": query, "RAW_URI": target, "REQUEST_URI": target}


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/webhooks//generic"), ("POST", "//webhooks/generic"), ("GET", "/api//outbox")],
)
def test_a_doubled_slash_is_a_404_not_a_redirect_to_the_host_the_request_named(
    client, services, method, path
):
    # Werkzeug merged the slashes with a 308 to http://<Host header>/webhooks/generic: a
    # signed close re-posted wherever that header (or X-Forwarded-Host) said.
    response = client.open(
        "/",
        method=method,
        json=generic_close(),
        headers={"Host": "evil.example"},
        environ_overrides=_sent(f"{path}?token=generic-token-123"),
    )

    assert response.status_code == 404, response.headers
    assert "Location" not in response.headers
    assert rows(services, surveys) == []


@pytest.mark.parametrize(
    ("path", "trailing"),
    [
        ("//webhooks/generic", False),
        ("///webhooks/generic", False),
        ("//webhooks/generic/", False),  # without the trailing slash it is still no URL
        ("/webhooks//generic", False),
        ("/webhooks/generic/", True),
    ],
)
def test_a_doubled_slash_before_a_webhook_url_is_a_404_as_any_other(
    client, services, caplog, path, trailing
):
    """A leading doubled slash was a webhook URL: gunicorn gives ``//webhooks/generic`` as
    PATH_INFO unchanged, and Werkzeug's router strips leading slashes before it matches
    (merge_slashes=False or not). Now the 404 every near miss gets, logged as they are."""
    caplog.set_level(logging.DEBUG)

    response = client.post(
        "/", json=generic_close(), environ_overrides=_sent(f"{path}?token=generic-token-123")
    )

    assert response.status_code == 404, response.get_data()[:300]
    assert response.json["error"] == "not_found"
    assert "/webhooks/<helpdesk>" in response.json["reason"]
    assert ("without a trailing slash" in response.json["reason"]) is trailing
    assert rows(services, surveys) == []
    [refused] = [r for r in caplog.records if r.msg == "webhook.refused"]
    assert (refused.status, refused.reason) == (404, "not_found")
    assert not [r for r in caplog.records if r.msg.startswith("webhook.") and r is not refused]


@pytest.mark.parametrize("path", ["//healthz", "//api/outbox", "///healthz"])
def test_a_leading_doubled_slash_is_no_path_of_ours(make_config, make_services, caplog, path):
    """Not a webhook URL's alone: ``//healthz`` answered the health check and ``//api/outbox``
    the operator API. Each is the plain 404 of a page that does not exist."""
    services = make_services(make_config(server={"api_token": "operator-token-0123456789"}))
    client = create_app(services=services).test_client()
    caplog.set_level(logging.DEBUG)

    response = client.get("/", headers=OPERATOR, environ_overrides=_sent(path))

    assert response.status_code == 404, response.get_data()[:300]
    assert response.json == client.get("/favicon.ico").json
    assert not [r for r in caplog.records if r.msg.startswith("webhook.")]


# The handshake's headers as browsers and WebSocket libraries send them (any case, Upgrade
# among other connection options), and HTTP/2's cleartext upgrade (Java's HttpClient asks
# for it on every request to an http:// URL).
UPGRADES = {
    "websocket": {"Connection": "Upgrade", "Upgrade": "websocket"},
    "WebSocket, keep-alive": {"Connection": "keep-alive, Upgrade", "Upgrade": "WebSocket"},
    "h2c": {"Connection": "Upgrade, HTTP2-Settings", "Upgrade": "h2c", "HTTP2-Settings": ""},
}


@pytest.mark.parametrize("upgrade", sorted(UPGRADES))
def test_a_close_asking_to_upgrade_is_received_as_any_close(client, services, caplog, upgrade):
    """Upgrade is a hint a server may ignore (RFC 9110 §7.8): a POST carrying one is a webhook.
    With ``websocket`` it was a 405 naming HEAD alone (POST is this URL's method), logged
    nowhere: Werkzeug routed it as a WebSocket handshake, to WebSocket rules only."""
    caplog.set_level(logging.DEBUG)
    headers = {**GENERIC_AUTH, **UPGRADES[upgrade]}

    response = client.post("/webhooks/generic", json=generic_close(), headers=headers)

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] == "queued"
    assert "Allow" not in response.headers
    assert len(rows(services, surveys)) == 1
    assert [r.msg for r in caplog.records if r.msg.startswith("webhook.")] == ["webhook.close"]


@pytest.mark.parametrize("scheme", ["ws", "wss"])
def test_a_close_over_a_websocket_scheme_is_received_as_any_close(client, services, scheme):
    """The scheme a proxy's X-Forwarded-Proto says (ProxyFix): ``ws``/``wss`` made Werkzeug
    route the request as a WebSocket handshake, a 405 naming HEAD."""
    response = client.post(
        "/webhooks/generic",
        json=generic_close(),
        headers=GENERIC_AUTH,
        environ_overrides={"wsgi.url_scheme": scheme},
    )

    assert response.status_code == 200, response.get_data()[:300]
    assert len(rows(services, surveys)) == 1


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "route", "helpdesk"),
    [
        ("POST", "/webhooks/generic", {"X-Webhook-Token": "wrong"}, 401, True, "generic"),
        (
            "POST",
            "/webhooks/nosuchdesk",
            GENERIC_AUTH,
            404,
            True,
            "(not configured: 10 characters)",
        ),
        (
            "GET",
            "/webhooks/nosuchdesk",
            GENERIC_AUTH,
            404,
            False,
            "(not configured: 10 characters)",
        ),
    ],
)
def test_a_refusal_asking_to_upgrade_is_logged_as_any_refusal(
    client, caplog, method, path, headers, status, route, helpdesk
):
    caplog.set_level(logging.DEBUG)
    upgrade = UPGRADES["websocket"]

    response = client.open(
        path, method=method, json=generic_close(), headers={**headers, **upgrade}
    )

    assert response.status_code == status, response.get_data()[:300]
    [refused] = [r for r in caplog.records if r.msg == "webhook.refused"]
    assert refused.status == status and refused.helpdesk == helpdesk
    assert getattr(refused, "route", None) == ("/webhooks/<helpdesk>" if route else None)


def test_other_methods_asking_to_upgrade_are_answered_as_without(client):
    """A WebSocket handshake proper (a GET) is the 405 a GET gets, naming both methods; a HEAD
    the URL check's 200 (it was a 405 naming POST)."""
    upgrade = UPGRADES["websocket"]
    for method, status, allow in (("GET", 405, "HEAD, POST"), ("HEAD", 200, None)):
        plain = client.open("/webhooks/generic", method=method)
        asking = client.open("/webhooks/generic", method=method, headers=upgrade)
        assert (asking.status_code, asking.headers.get("Allow")) == (status, allow)
        assert (asking.status_code, list(asking.headers), asking.get_data()) == (
            plain.status_code,
            list(plain.headers),
            plain.get_data(),
        )


@pytest.mark.parametrize(
    "customer",
    [
        {"id": "c\x00nul", "email": "nul\x00@example.com"},
        {"id": "\ud800lone", "email": "\udfffx@example.com"},
        {"id": "i" * 5_000, "email": "E" * 5_000 + "@example.com"},
        {"id": "😀" * 300, "email": "Ωμέγα😀@παράδειγμα.ελ"},
        {"id": 12345678901234567890123, "email": ""},
        {"id": "", "email": " \t "},
    ],
    ids=["nul", "surrogates", "over-long", "non-bmp", "huge-number", "blank"],
)
def test_hostile_customer_values_under_the_look_backs_never_fail_and_still_cool_down(
    make_config, make_services, customer
):
    """The look-backs send a sender's customer id and e-mail to the database (the fold, the
    locks, one IN list per kind): NUL, lone surrogates, values past their columns, non-BMP
    characters, numbers no column holds, blanks. Each close is stored, cleaned (200, never a
    5xx); a second dialog of the same customer, where the values name one, is cooled down,
    and the same dialog closed again within the grace is not surveyed again."""
    policy = {"customer_cooldown_days": 30, "per_dialog": "every_close"}
    services = make_services(make_config(policy=policy))
    client = create_app(services=services).test_client()

    def post(dialog: str, **extra: Any) -> Any:
        payload = generic_close(dialog_id=dialog, customer=customer, **extra)
        return client.post("/webhooks/generic", json=payload, headers=GENERIC_AUTH)

    # The re-close another delivery (another body: with every_close, another occurrence).
    first, second, again = post("A"), post("B"), post("A", delivery="2")

    for response in (first, second, again):
        assert response.status_code == 200, response.json  # stored, cleaned: none refused
    assert first.json["status"] == "queued", first.json
    assert again.json.get("reason") == "recently_surveyed", again.json
    names_someone = bool(str(customer["id"]).strip() or str(customer["email"]).strip())
    expected = "customer_cooldown" if names_someone else None
    assert second.json.get("reason") == expected, second.json


@pytest.mark.parametrize(
    ("first", "again"),
    [
        # Another key order, spacing and escapes: the same document, the same close.
        (
            b'{"id": 7, "agent": {"name": "Anna", "id": 3}}',
            b'{"agent":{"id":3,"name":"Anna"},"id":7}',
        ),
        (b'{"note": "caf\\u00e9 \\u2014 ok"}', '{"note":"café — ok"}'.encode()),
        # Documents orjson refuses to write (a lone surrogate, an integer beyond 64 bits) are
        # digested all the same, by json.dumps.
        (b'{"note": "\\ud800", "id": 1}', b'{"id":1,"note":"\\ud800"}'),
        (b'{"id": 123456789012345678901234567890}', b'{ "id" : 123456789012345678901234567890 }'),
    ],
)
def test_a_close_digest_is_the_documents_whatever_its_writing(first: bytes, again: bytes):
    from csat_hook.intake.receive import close_digest

    def digest(body: bytes) -> str:
        return close_digest(
            WebhookRequest(body, {"content-type": "application/json"}, {}, datetime.now(UTC))
        )

    assert digest(first) == digest(again)
    assert digest(first) != digest(b'{"id": 8}')
    # Not a JSON document: its bytes.
    assert digest(b"not json") == digest(b"not json") != digest(b"not json ")


def test_operator_api_takes_the_bearer_token_after_any_number_of_spaces(make_config, make_services):
    # RFC 9110 11.4: credentials = auth-scheme [ 1*SP token68 ], and the scheme is
    # case-insensitive. "Bearer  <token>" (two spaces, as a hand-typed curl has it) was a
    # 401 counted against the operator's address.
    token = "operator-token-0123456789"
    services = make_services(make_config(server={"api_token": token}))
    client = create_app(services=services).test_client()
    for value in (f"Bearer  {token}", f"bearer   {token}", f"BEARER {token}"):
        assert client.get("/api/outbox", headers={"Authorization": value}).status_code == 200
    for value in (f"Bearer{token}", f"Bearer {token}x", f"Bearer\t{token}", f"Bearer {token} x"):
        assert client.get("/api/outbox", headers={"Authorization": value}).status_code == 401
