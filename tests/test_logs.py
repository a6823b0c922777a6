"""Secrets, survey tokens, reply texts and customer text never reach the logs.

Every adapter handles a close (with customer names and e-mails in the payload), a refused
request, a delivery that fails and one that succeeds, all at DEBUG level with the service's
own log handler; then the captured output is searched for every sensitive value.
"""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from typing import Any

import pytest
import responses
import sqlalchemy as sa

from csat_hook.app import create_app
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.logs import SafeFormatter
from csat_hook.logs import printable_json
from csat_hook.logs import setup_logging
from tests.helpdesks.generic.examples import CRISP_API
from tests.helpdesks.generic.examples import CRISP_CONVERSATION
from tests.helpdesks.generic.examples import CRISP_OPERATOR
from tests.helpdesks.generic.examples import CRISP_SECRETS
from tests.helpdesks.generic.examples import LIVECHAT_ACTION
from tests.helpdesks.generic.examples import LIVECHAT_SECRETS
from tests.helpdesks.generic.examples import crisp_answer
from tests.helpdesks.generic.examples import crisp_body
from tests.helpdesks.generic.examples import crisp_headers
from tests.helpdesks.generic.examples import example_config
from tests.helpdesks.generic.examples import livechat_answer
from tests.helpdesks.generic.examples import livechat_body
from tests.helpdesks.kits import load_kits

KITS = load_kits()


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.fixture
def captured() -> Any:
    stream = io.StringIO()
    setup_logging("DEBUG", "text", stream=stream)
    yield stream
    setup_logging("WARNING", "text", stream=io.StringIO())
    logging.getLogger().setLevel(logging.WARNING)


@pytest.mark.parametrize("kind", sorted(KITS))
def test_nothing_sensitive_is_logged(
    kind, captured, make_config, make_services, fake_helpdesk, tmp_path, clock
):
    kit = KITS[kind]
    options = {"kind": kit.kind, **kit.options(fake_helpdesk.url, tmp_path)}
    services = make_services(make_config(helpdesks={kit.kind: options}))
    client = create_app(services=services).test_client()
    body, headers, query = kit.closed(clock())

    client.post(f"/webhooks/{kit.kind}", data=body, headers=headers, query_string=query)
    client.post(f"/webhooks/{kit.kind}", data=body + b"x", headers=headers, query_string=query)
    client.post(f"/webhooks/{kit.kind}", data=b"{broken", headers=headers, query_string=query)
    fake_helpdesk.fail_next(4, 503)  # look-ups (retried in place) and the reply fail first
    worker = services.delivery_worker()
    for _ in range(8):
        worker.run_once()
        clock.advance(3600)

    with services.engine.connect() as conn:
        survey = conn.execute(sa.select(surveys)).one()
        sent = conn.execute(sa.select(outbox)).one()
    output = captured.getvalue()
    expected = ["webhook.close", "webhook.refused", "delivery.sent"]
    if kind != "dryrun":  # the dry run calls nothing, so nothing fails
        expected.append("delivery.retry")
    for event in expected:
        assert event in output  # the logs are really there
    assert sent.status == "sent"

    secrets = [
        s
        for k, v in options.items()
        if k not in ("kind", "type")
        for s in _strings(v)
        if len(s) >= 8 and not s.startswith(("http", "/"))
    ]
    customer = [survey.customer_email, survey.customer_name]
    # Free text from the payload (names, e-mails, subjects, messages); ids may be logged.
    payload_text = [
        s
        for s in _strings(json.loads(body))
        if len(s) >= 12 and not s.isdigit() and s != survey.dialog_id
    ]
    sensitive = [
        *secrets,
        survey.token,
        survey.link,
        sent.body or "",
        *[c for c in customer if c],
        *payload_text,
        services.config.token.secret.get_secret_value(),
    ]
    leaked = [value for value in sensitive if value and value in output]
    assert leaked == [], f"found in the logs: {leaked}"


@responses.activate
@pytest.mark.parametrize("example", ["crisp", "livechat"])
def test_nothing_sensitive_is_logged_by_the_example_configurations(
    example, captured, migrated_url, tmp_path, make_services, clock
):
    """The shipped Crisp and LiveChat configurations: the hook secret (LiveChat's sits in the
    body), the API credentials and the agent's e-mail stay out of the logs, through refusals,
    failing look-ups and a delivery."""
    if example == "crisp":
        secrets = CRISP_SECRETS
        body = crisp_body("session_set_state_resolved")
        headers = crisp_headers(body, clock())
        forged = crisp_headers(body, clock(), secret="x" * 20)
        responses.get(CRISP_CONVERSATION, json=crisp_answer("get_conversation"))
        responses.get(f"{CRISP_API}/operator/{CRISP_OPERATOR}", json=crisp_answer("get_operator"))
        responses.post(f"{CRISP_CONVERSATION}/message", json=crisp_answer("send_message"))
        email = crisp_answer("get_operator")["data"]["email"]
    else:
        secrets = LIVECHAT_SECRETS
        body = livechat_body("chat_deactivated")
        headers = forged = {"Content-Type": "application/json"}
        responses.post(LIVECHAT_ACTION + "get_chat", json=livechat_answer("get_chat"))
        responses.post(LIVECHAT_ACTION + "resume_chat", json=livechat_answer("resume_chat"))
        email = "smith@example.com"
    services = make_services(example_config(example, secrets, migrated_url, tmp_path))
    client = create_app(services=services).test_client()
    wrong = body.replace(secrets.get("LIVECHAT_WEBHOOK_SECRET", "-").encode(), b"guessed")

    client.post(
        f"/webhooks/{example}", data=wrong if example == "livechat" else body, headers=forged
    )
    client.post(f"/webhooks/{example}", data=b"{broken", headers=headers)
    client.post(f"/webhooks/{example}", data=body, headers=headers)
    # Every API call fails at first: the look-ups are retried, then it goes out.
    for call in responses.registered():
        call.status = 503
    worker = services.delivery_worker()
    worker.run_once()
    for call in responses.registered():
        call.status = 200
    clock.advance(3600)
    worker.run_once()

    with services.engine.connect() as conn:
        survey = conn.execute(sa.select(surveys)).one()
        sent = conn.execute(sa.select(outbox)).one()
    assert sent.status == "sent" and survey.agent_email == email
    output = captured.getvalue()
    for event in ("webhook.refused", "webhook.close", "delivery.retry", "delivery.sent"):
        assert event in output
    sensitive = [*secrets.values(), email, survey.token, survey.link, sent.body]
    leaked = [value for value in sensitive if value in output]
    assert leaked == [], f"found in the logs: {leaked}"


def test_a_refused_request_logs_the_helpdesk_never_the_senders_path(
    captured, make_config, make_services
):
    # webhook.refused kept the request path (up to 200 characters): the sender's text, which
    # can carry a token (/webhooks/<a secret pasted in the wrong place>) or a customer's words.
    client = create_app(services=make_services(make_config())).test_client()
    secret = "sk_live_Customer-Jane-hunter2"
    assert client.post(f"/webhooks/{secret}", data=b"{}").status_code == 404
    assert client.post(f"/webhooks/{secret}%20wrote%20this", data=b"{}").status_code == 404
    wrong = client.post(
        "/webhooks/generic", data=b"{}", query_string={"token": "wrong-token-hunter2"}
    )
    assert wrong.status_code == 401
    assert client.get("/api/outbox").status_code == 404  # the operator API is off
    assert client.get(f"/webhooks/{secret}").status_code == 404  # a method it does not take
    # A method the URL does not take, of a configured helpdesk: the method, not the query.
    for method in ("GET", "HUNTER2"):
        answer = client.open("/webhooks/generic", method=method, query_string={"token": secret})
        assert answer.status_code == 405

    lines = [line for line in captured.getvalue().splitlines() if "webhook.refused" in line]
    assert len(lines) == 7
    output = "\n".join(lines)
    assert "hunter2" not in output and "wrote" not in output and "path=" not in output
    assert "helpdesk=generic" in lines[2] and "status=401" in lines[2]
    # A name no helpdesk is configured by: its length, never its text.
    assert 'helpdesk="(not configured: 29 characters)"' in lines[0]
    assert "(not configured: 40 characters)" in lines[1]
    # The route, not the path: the same words for every request to it.
    assert "route=/webhooks/<helpdesk>" in lines[0] and "route=/api/outbox" in lines[3]
    assert 'helpdesk="(not configured: 29 characters)"' in lines[4]
    assert "helpdesk=generic status=405 reason=method_not_allowed method=GET" in lines[5]
    assert 'method="(not a standard method: 7 characters)"' in lines[6]


# --- what a request's text can do to a log line -------------------------------------------

# A value that came from a sender: line breaks Python's splitlines() and JavaScript see (U+2028,
# U+2029, NEL), C1 controls (CSI drives a terminal), bidirectional overrides and isolates that
# reorder what a terminal shows, a zero-width space, DEL, a lone surrogate and a tag character.
HOSTILE = (
    "D-1\u2028level=ERROR\u2029x\x85y\x9b2J\u202egnp.exe\u2066z\u2069\u200b\x7f\ud800"
    "\U000e0041\r\nforged=1 Анна"
)


def _record(message: str, **fields: Any) -> logging.LogRecord:
    record = logging.LogRecord("csat_hook.test", logging.INFO, __file__, 1, message, None, None)
    record.__dict__.update(fields)
    return record


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_value_from_a_request_never_breaks_or_reorders_a_log_line(fmt):
    """Every unprintable character, in the message as in the fields, is written as an
    escape; printable non-ASCII (a Cyrillic agent name) stays readable."""
    line = SafeFormatter(fmt).format(
        _record(f"webhook.refused {HOSTILE}", dialog_id=HOSTILE, path="/webhooks/" + HOSTILE)
    )

    assert line.isprintable(), ascii([c for c in line if not c.isprintable()])
    assert line.count("Анна") == 3
    for escaped in ("\\u2028", "\\u2029", "\\u0085", "\\u009b", "\\u202e", "\\u2066"):
        assert line.count(escaped) == 3, (escaped, line)
    if fmt == "json":
        parsed = json.loads(line)
        assert parsed["dialog_id"] == HOSTILE and parsed["event"] == f"webhook.refused {HOSTILE}"
    else:
        assert " forged=1" not in line.split(" dialog_id=")[1]
        assert line.count("dialog_id=") == 1


@pytest.mark.parametrize("indent", [None, 2, "\t"])
def test_printable_json_reads_back_whatever_the_indent(indent):
    value = {"dialog_id": HOSTILE, "n": [1, "\t"]}

    text = printable_json(value, indent=indent)

    assert json.loads(text) == value
    assert all(c.isprintable() or c in "\n\t" for c in text), ascii(text)


def _answer_once(server: socket.socket, answer: bytes) -> None:
    client, _ = server.accept()
    with client:
        client.recv(65536)
        client.sendall(answer)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_librarys_log_line_never_carries_its_arguments(fmt):
    """urllib3 warns of an answer whose headers it cannot parse (a broken proxy, a hostile
    vendor) with the request's URL and the bytes it could not read as its arguments: the
    query's credential (a generic helpdesk's ``query``) and what the answer echoed. The line
    keeps its words, without them."""
    stream = io.StringIO()
    setup_logging("INFO", fmt, stream=stream)
    port = {"text": 18771, "json": 18772}[fmt]  # one each: the two may run side by side
    server = socket.create_server(("127.0.0.1", port))
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nZoe O'Brien zoe@example.org\r\n\r\n{}"
    serving = threading.Thread(target=_answer_once, args=(server, answer), daemon=True)
    serving.start()
    try:
        HttpClient().request(
            "GET", f"http://127.0.0.1:{port}/messages", params={"api_key": "sk-QUERY-SECRET-42"}
        )
    finally:
        serving.join(timeout=5)
        server.close()
        setup_logging("WARNING", "text", stream=io.StringIO())

    output = stream.getvalue()
    assert "Failed to parse headers" in output and "HeaderParsingError" in output
    for secret in ("sk-QUERY-SECRET-42", "api_key", "O'Brien", "zoe@example.org", "/messages"):
        assert secret not in output, output
