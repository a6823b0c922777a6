"""The generic adapter: auth modes, JMESPath mapping, the reply request template."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner
from responses import matchers

from csat_hook.app import create_app
from csat_hook.cli import main
from csat_hook.config import Config
from csat_hook.config import load_config
from csat_hook.errors import BadPayloadError
from csat_hook.errors import ConfigError
from csat_hook.errors import DeliveryError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.generic import GenericHelpdesk
from csat_hook.helpdesks.generic.lookup import LOOKUP_MAX_MESSAGES
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened
from csat_hook.helpdesks.records import Ignored
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.transport import HttpClient
from tests.conftest import FakeClock
from tests.helpers import body_of
from tests.helpers import fixture_path
from tests.helpers import generic_close

ROOT = Path(__file__).resolve().parents[3]


def load_generic(**options) -> Config:
    """A configuration with one generic helpdesk ``g`` of these options (by default no
    sender check and a reply URL)."""
    options.setdefault("auth", {"mode": "none"})
    options.setdefault("reply", {"url": "https://desk.example.com/d/{dialog_id}"})
    return load_config(None, env={}, overrides={"helpdesks": {"g": {"kind": "generic", **options}}})


def adapter(clock: FakeClock, **options) -> GenericHelpdesk:
    config = load_generic(**options)
    return GenericHelpdesk("g", config.helpdesks["g"], http=HttpClient(), clock=clock)


def request(body: bytes, clock: FakeClock, headers=None, query=None) -> WebhookRequest:
    return WebhookRequest(
        body=body,
        headers={k.lower(): v for k, v in (headers or {}).items()},
        query=query or {},
        received_at=clock(),
        content_type="application/json",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# --- authentication ---------------------------------------------------------------------------


def test_hmac_hex_with_timestamp(clock):
    desk = adapter(
        clock,
        auth={
            "mode": "hmac",
            "secret": "k",
            "signature_header": "X-Sig",
            "timestamp_header": "X-Ts",
            "signed_payload": "{timestamp}.{body}",
        },
    )
    body = body_of(generic_close())
    ts = str(int(clock().timestamp()))
    sig = hmac.new(b"k", ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    desk.verify(request(body, clock, {"X-Sig": sig, "X-Ts": ts}))
    stale = str(int(clock().timestamp()) - 301)
    old = hmac.new(b"k", stale.encode() + b"." + body, hashlib.sha256).hexdigest()
    with pytest.raises(InvalidSignatureError, match="tolerance"):
        desk.verify(request(body, clock, {"X-Sig": old, "X-Ts": stale}))
    with pytest.raises(InvalidSignatureError, match="timestamp"):
        desk.verify(request(body, clock, {"X-Sig": sig}))


def test_hmac_base64_sha1_with_prefix(clock):
    desk = adapter(
        clock,
        auth={
            "mode": "hmac",
            "secret": "k",
            "algorithm": "sha1",
            "encoding": "base64",
            "signature_prefix": "sha1=",
        },
    )
    body = b'{"a": 1}'
    good = "sha1=" + base64.b64encode(hmac.new(b"k", body, hashlib.sha1).digest()).decode()
    desk.verify(request(body, clock, {"X-Signature": good}))
    with pytest.raises(InvalidSignatureError):
        desk.verify(request(body, clock, {"X-Signature": good[5:]}))  # prefix missing


@pytest.mark.parametrize("secret_body", [b'{"a": 1}', b'{"b": "\xc3\xa9\xff"}', b"{}"])
def test_hmac_base64url_is_the_url_safe_alphabet_without_padding(clock, secret_body):
    """Some senders sign in base64url (RFC 7515: '-' and '_', no '='); with only standard
    base64 on offer their closes could never be verified. Each encoding takes its one
    canonical spelling: standard base64 is refused under base64url and the padded form too."""
    desk = adapter(
        clock,
        auth={"mode": "hmac", "secret": "k", "encoding": "base64url"},
    )
    digest = hmac.new(b"k", secret_body, hashlib.sha256).digest()
    good = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    desk.verify(request(secret_body, clock, {"X-Signature": good}))
    for wrong in {base64.b64encode(digest).decode(), good + "=", digest.hex()} - {good}:
        with pytest.raises(InvalidSignatureError):
            desk.verify(request(secret_body, clock, {"X-Signature": wrong}))


def test_hmac_base64_takes_the_padded_standard_alphabet_only(clock):
    desk = adapter(clock, auth={"mode": "hmac", "secret": "k", "encoding": "base64"})
    body = b'{"a": 2}'
    digest = hmac.new(b"k", body, hashlib.sha256).digest()
    desk.verify(request(body, clock, {"X-Signature": base64.b64encode(digest).decode()}))
    for wrong in {
        base64.b64encode(digest).decode().rstrip("="),
        base64.urlsafe_b64encode(digest).decode(),
    } - {base64.b64encode(digest).decode()}:
        with pytest.raises(InvalidSignatureError):
            desk.verify(request(body, clock, {"X-Signature": wrong}))


def test_token_in_authorization_bearer(clock):
    desk = adapter(
        clock,
        auth={
            "mode": "token",
            "token": "tok",
            "token_header": "Authorization",
            "token_query": None,
        },
    )
    desk.verify(request(b"{}", clock, {"Authorization": "Bearer tok"}))
    with pytest.raises(InvalidSignatureError):
        desk.verify(request(b"{}", clock, {}, {"token": "tok"}))  # query not enabled


@pytest.mark.parametrize(
    ("token", "sent"),
    [
        ("Bearer tok-123", "Bearer tok-123"),  # the whole value, as reply headers are written
        ("Token tok-123", "Token tok-123"),
        ("tok-123", "Bearer  tok-123"),  # RFC 9110: one or more spaces after the scheme
        ("tok-123", "bearer tok-123"),
    ],
)
def test_a_token_in_authorization_is_the_credentials_or_the_whole_value(clock, token, sent):
    """Configured as the whole header value ("Bearer ..."), it was compared with the part
    after the scheme only, and every webhook was refused 401."""
    desk = adapter(
        clock,
        auth={"mode": "token", "token": token, "token_header": "Authorization"},
    )
    desk.verify(request(b"{}", clock, {"Authorization": sent}))
    for wrong in ("Bearer tok-1234", "Bearer", "tok-12", f"{sent} x"):
        with pytest.raises(InvalidSignatureError):
            desk.verify(request(b"{}", clock, {"Authorization": wrong}))


# --- mapping --------------------------------------------------------------------------------


def test_status_based_mapping_with_nested_paths(clock):
    desk = adapter(
        clock,
        mapping={
            "event": None,
            "status": "data.state",
            "closed_values": ["Done"],
            "reopened_values": ["Active"],
            "dialog_id": "data.ticket.number",
            "agent_id": "data.owner.uid",
            "agent_name": "data.owner.full_name",
            "agent_email": None,
            "customer_email": "data.contacts[0].email",
            "team": "data.queue",
            "occurrence": "data.changed_at",
            "context": {"account": "account.slug"},
        },
    )
    payload = {
        "account": {"slug": "acme"},
        "data": {
            "state": "done",
            "ticket": {"number": 77},
            "owner": {"uid": 5, "full_name": "Kim"},
            "contacts": [{"email": "c@example.org"}],
            "queue": "VIP",
            "changed_at": 1732100000,
        },
    }
    event = desk.parse(request(body_of(payload), clock))
    assert isinstance(event, DialogClosed)
    assert (event.dialog_id, event.agent, event.team) == ("77", Person("5", "Kim", None), "VIP")
    assert event.customer.email == "c@example.org"
    assert event.occurrence == "1732100000"
    assert event.reply_context == {"account": "acme"}
    payload["data"]["state"] = "ACTIVE"
    assert isinstance(desk.parse(request(body_of(payload), clock)), DialogReopened)
    payload["data"]["state"] = "waiting"
    assert isinstance(desk.parse(request(body_of(payload), clock)), Ignored)


def test_missing_dialog_id_is_a_400_naming_the_path(clock):
    desk = adapter(clock)
    with pytest.raises(BadPayloadError, match=r"mapping\.dialog_id = dialog\.id"):
        desk.parse(request(b'{"event": "dialog.closed"}', clock))


def test_without_an_occurrence_path_the_body_digest_dedups_retries(clock):
    desk = adapter(clock)
    body = body_of(generic_close())
    first = desk.parse(request(body, clock))
    assert first.occurrence == desk.parse(request(body, clock)).occurrence
    other = desk.parse(request(body_of(generic_close(closed_at="x")), clock))
    assert first.occurrence != other.occurrence


# --- reply request --------------------------------------------------------------------------


def reply(**kw) -> Reply:
    values = dict(
        helpdesk="g",
        dialog_id="D 9",
        text="Rate us: https://f/?a=1",
        link="https://f/",
        agent=Person("7", "Anna", "a@x"),
        customer=Person("c1", None, "c@x"),
        context={"account": "acme"},
        idempotency_key="csat-hook-5",
    )
    values.update(kw)
    return Reply(**values)


@responses.activate
def test_reply_request_is_rendered_from_the_template(clock):
    desk = adapter(
        clock,
        mapping={"context": {"account": "account"}},
        reply={
            "method": "PUT",
            "url": "https://desk.example.com/{account}/d/{dialog_id}",
            "headers": {"Authorization": "Token secret-1"},
            "query": {"key": "q-{account}"},
            "body": {"message": {"text": "{text}", "to": "{customer_email}"}, "n": 1},
        },
    )
    responses.put(
        "https://desk.example.com/acme/d/D%209",
        json={"message": {"id": 991}},
        match=[
            matchers.query_param_matcher({"key": "q-acme"}),
            matchers.header_matcher(
                {"Authorization": "Token secret-1", "Idempotency-Key": "csat-hook-5"}
            ),
            matchers.json_params_matcher(
                {"message": {"text": "Rate us: https://f/?a=1", "to": "c@x"}, "n": 1}
            ),
        ],
    )
    desk.options.reply.message_id = "message.id"
    assert desk.send_reply(reply()).external_id == "991"


@responses.activate
def test_form_encoded_reply(clock):
    desk = adapter(
        clock,
        reply={
            "url": "https://d.example/r",
            "encoding": "form",
            "body": {"dialog": "{dialog_id}", "text": "{text}"},
        },
    )
    responses.post(
        "https://d.example/r",
        json={},
        match=[
            matchers.urlencoded_params_matcher({"dialog": "D 9", "text": "Rate us: https://f/?a=1"})
        ],
    )
    desk.send_reply(reply())


@responses.activate
def test_a_2xx_carrying_an_error_is_a_permanent_failure(clock):
    desk = adapter(clock, reply={"url": "https://d.example/r", "error_path": "err"})
    responses.post("https://d.example/r", json={"err": "dialog not found"})
    with pytest.raises(DeliveryError) as info:
        desk.send_reply(reply())
    assert not info.value.retryable and "dialog not found" not in info.value.message


@responses.activate
def test_error_reason_keeps_the_vendors_words_without_customer_text(clock):
    desk = adapter(
        clock,
        reply={"url": "https://d.example/r", "error_reason": "errors", "error_path": "err"},
    )
    responses.post(
        "https://d.example/r",
        status=422,
        json={
            "errors": [
                {"code": "dialog_closed", "message": "Dialog D 9 is closed"},
                "Text 'Rate us: https://f/?a=1' is too long",
                {"code": "bad value", "field": "customer", "message": "ivan@example.org blocked"},
            ]
        },
    )
    with pytest.raises(DeliveryError) as info:
        desk.send_reply(reply())
    assert info.value.vendor_reason == (
        "dialog_closed: Dialog D 9 is closed; Text … is too long; customer: … blocked"
    )
    assert "https://f/" not in info.value.message and "ivan@" not in info.value.message
    # A 2xx that carries an error is explained the same way.
    responses.replace(
        responses.POST, "https://d.example/r", json={"err": 1, "errors": ["quota exceeded"]}
    )
    with pytest.raises(DeliveryError) as info:
        desk.send_reply(reply())
    assert info.value.vendor_reason == "quota exceeded"


@responses.activate
def test_an_error_that_echoes_the_query_token_keeps_no_reason(clock):
    """Yeahdesk-style APIs take the token in ``?token=``; an API that quotes the request back
    in its error (2xx or not) must not put the token into last_error or the logs."""
    token = "yd-Qw3rTy8uIoPaSdFgSECRET"
    desk = adapter(
        clock,
        reply={
            "url": "https://d.example/r",
            "query": {"token": token},
            "error_reason": "errors",
            "error_path": "err",
        },
    )
    responses.post("https://d.example/r", status=401, json={"errors": [f"bad token {token}"]})
    with pytest.raises(DeliveryError) as refused:
        desk.send_reply(reply())
    # A 2xx carrying an error, its reason quoting a clipped token.
    responses.replace(
        responses.POST, "https://d.example/r", json={"err": 1, "errors": [f"{token[:14]} expired"]}
    )
    with pytest.raises(DeliveryError) as errored:
        desk.send_reply(reply())
    for error in (refused.value, errored.value):
        assert error.vendor_reason is None and not error.retryable
        assert "SECRET" not in error.message and "Qw3rTy8uIoPa" not in error.message


def test_error_reason_must_be_a_valid_jmespath():
    with pytest.raises(Exception, match="error_reason"):
        load_generic(reply={"url": "https://d.example/r", "error_reason": "errors[?"})


def test_a_mapping_nested_past_the_parser_is_refused_naming_its_key():
    """jmespath's parser recurses once per bracket: an expression nested thousands deep raised
    RecursionError out of the config check, a traceback instead of the key."""
    deep = "[" * 3000 + "dialog.id" + "]" * 3000
    refused = r"helpdesks\.g\.mapping: dialog_id: the expression nests too deeply"
    with pytest.raises(ConfigError, match=refused):
        load_generic(reply={"url": "https://d.example/r"}, mapping={"dialog_id": deep})
    long_path = ".".join(["a"] * 5000)  # long but flat: read as any path
    desk = adapter(FakeClock(), mapping={"dialog_id": long_path})
    with pytest.raises(BadPayloadError, match="dialog id is missing"):
        desk.parse(request(body_of(generic_close()), FakeClock()))


@responses.activate
@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (429, True),
        (500, True),
        (503, True),
        (408, True),
        (400, False),
        (401, False),
        (404, False),
        (422, False),
    ],
)
def test_status_classification(clock, status, retryable):
    desk = adapter(clock, reply={"url": "https://d.example/r"})
    responses.post(
        "https://d.example/r",
        status=status,
        json={"detail": "customer wrote x"},
        headers={"Retry-After": "7"},
    )
    with pytest.raises(DeliveryError) as info:
        desk.send_reply(reply())
    assert info.value.retryable is retryable
    assert info.value.http_status == status and info.value.retry_after == 7
    assert "customer wrote" not in info.value.message


# --- the Eadesk example and inspect-payload ---------------------------------------------------


def test_eadesk_example_maps_a_dialog_update(tmp_path):
    """The example's placeholder paths, on a synthetic payload shaped like them.

    Yeahdesk's real format is undocumented: this checks the example is coherent, not that
    it matches Yeahdesk (operators confirm that with inspect-payload).
    """
    import yaml

    block = yaml.safe_load((ROOT / "examples" / "eadesk.yaml").read_text(encoding="utf-8"))
    config = load_config(
        None,
        env={"EADESK_WEBHOOK_TOKEN": "t", "EADESK_API_TOKEN": "a"},
        overrides={"helpdesks": block["helpdesks"]},
    )
    desk = GenericHelpdesk(
        "eadesk", config.helpdesks["eadesk"], http=HttpClient(), clock=FakeClock()
    )
    desk.options.capture_dir = str(tmp_path / "cap")
    body = fixture_path("generic", "synthetic_eadesk_style_close.json").read_bytes()
    event = desk.parse(request(body, FakeClock(), query={"token": "t"}))
    assert isinstance(event, DialogClosed)
    assert (event.dialog_id, event.agent.name) == ("58213", "Мария Иванова")
    assert [p.read_bytes() for p in (tmp_path / "cap").iterdir()] == [body]


@pytest.mark.parametrize("secret", ["lc-secret-key-0123456789", 'a "quoted\\ secret" 12345'])
def test_a_captured_payload_keeps_the_body_but_not_the_token_it_carries(tmp_path, clock, secret):
    # LiveChat-style senders put the shared token in the body (token_field): a capture is kept
    # for days to design a mapping from, so the secret is not kept with it (0600 or not).
    desk = adapter(
        clock,
        auth={"mode": "token", "token": secret, "token_field": "secret_key"},
        capture_dir=str(tmp_path / "cap"),
    )
    body = json.dumps({"secret_key": secret, **generic_close("D-9")}).encode()

    desk.verify(request(body, clock))
    assert isinstance(desk.parse(request(body, clock)), DialogClosed)

    [saved] = [p.read_bytes() for p in (tmp_path / "cap").iterdir()]
    escaped = json.dumps(secret)[1:-1].encode()
    assert secret.encode() not in saved and escaped not in saved
    kept = json.loads(saved)
    assert kept.pop("secret_key") == "(token removed)"
    assert kept == generic_close("D-9")


@pytest.mark.parametrize(
    "spelt",
    [
        b"lc\\/key\\/0123456789+x",  # PHP's json_encode escapes every "/" by default
        b"lc/key/0123456789\\u002Bx",  # any character may be a \u escape, either case
        b"\\u006c\\u0063/key/0123456789+x",
    ],
)
def test_a_captured_payload_keeps_no_token_the_sender_escaped_its_own_way(tmp_path, clock, spelt):
    # The sender's JSON library decides the escapes: every spelling that reads as the token
    # verified the request, so every one is taken out of the capture.
    secret = "lc/key/0123456789+x"
    desk = adapter(
        clock,
        auth={"mode": "token", "token": secret, "token_field": "secret_key"},
        capture_dir=str(tmp_path / "cap"),
    )
    body = b'{"secret_key":"' + spelt + b'",' + json.dumps(generic_close("D-9")).encode()[1:]

    desk.verify(request(body, clock))
    assert isinstance(desk.parse(request(body, clock)), DialogClosed)

    [saved] = [p.read_bytes() for p in (tmp_path / "cap").iterdir()]
    kept = json.loads(saved)
    assert kept.pop("secret_key") == "(token removed)"
    assert kept == generic_close("D-9")


@pytest.mark.parametrize(
    "spelt",
    [
        "lc%2Fkey%2F0123456789%2Bx%3D%3D+%C3%A9",  # as urlencode writes it
        "lc%2fkey/0123456789%2bx%3d=%20%c3%a9",  # lower-case escapes, some characters raw
    ],
)
def test_a_captured_form_keeps_no_token_in_its_percent_escapes(tmp_path, clock, spelt):
    # An automation tool (Zapier, Make) posts a form: the JSON in "payload", the token in a
    # field beside it. A base64 token's "/", "+" and "=" are percent-escaped there, and the
    # JSON spellings alone left it in the capture whole.
    secret = "lc/key/0123456789+x== é"
    desk = adapter(
        clock,
        auth={"mode": "token", "token": secret, "token_field": "secret_key"},
        capture_dir=str(tmp_path / "cap"),
    )
    payload = urllib.parse.quote(json.dumps(generic_close("D-9")), safe="")
    body = f"payload={payload}&secret_key={spelt}".encode()
    form = WebhookRequest(
        body=body,
        headers={},
        query={},
        received_at=clock(),
        content_type="application/x-www-form-urlencoded",
    )

    desk.verify(form)
    assert isinstance(desk.parse(form), DialogClosed)

    [saved] = [p.read_bytes() for p in (tmp_path / "cap").iterdir()]
    fields = dict(urllib.parse.parse_qsl(saved.decode()))
    assert fields["secret_key"] == "(token removed)"
    assert json.loads(fields["payload"]) == generic_close("D-9")


def test_a_capture_folder_that_cannot_be_written_is_logged_and_the_close_still_taken(
    tmp_path, caplog, clock
):
    """Capturing is a setup aid: a full disk or a folder that cannot be made must not turn
    every close into a 500 (and the helpdesk's retries)."""
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    desk = adapter(clock, capture_dir=str(tmp_path / "a-file" / "cap"))

    with caplog.at_level("WARNING", logger="csat_hook.helpdesks.generic"):
        event = desk.parse(request(json.dumps(generic_close("D-7")).encode(), clock))

    assert isinstance(event, DialogClosed) and event.dialog_id == "D-7"
    warned = [r for r in caplog.records if r.getMessage() == "generic.capture-failed"]
    assert [(r.helpdesk, r.error) for r in warned] == [("g", "Not a directory")]


def test_inspect_payload_shows_paths_and_what_the_mapping_extracts(tmp_path):
    payload = tmp_path / "p.json"
    payload.write_text(
        json.dumps({"event": "dialog.closed", "dialog": {"id": 5}, "who": {"name": "Kim"}})
    )
    result = CliRunner().invoke(
        main,
        ["inspect-payload", "--helpdesk", "dryrun", str(payload)],
        env={"CSAT_HOOK_CONFIG": None},
    )
    assert result.exit_code == 0, result.output
    assert '  who.name = "Kim"' in result.output
    assert "agent_name: agent.name → null   <-- nothing here" in result.output
    assert "result: DialogClosed" in result.output


def test_inspect_payload_can_verify_the_sender(tmp_path):
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps(generic_close()))
    args = ["inspect-payload", "--helpdesk", "dryrun", "--verify", str(payload)]
    bad = CliRunner().invoke(main, args, env={"CSAT_HOOK_CONFIG": None})
    good = CliRunner().invoke(
        main,
        [*args[:-1], "-H", "X-Webhook-Token: dev-insecure-dryrun-token", str(payload)],
        env={"CSAT_HOOK_CONFIG": None},
    )
    assert bad.exit_code == 1 and "unauthorized" in bad.output
    assert good.exit_code == 0 and "sender: verified" in good.output


def test_inspect_payload_refuses_a_file_larger_than_a_webhook_may_be_as_the_web_app(tmp_path):
    # The file was read whole: a log file, or /dev/zero, grew the process until it was killed.
    config = tmp_path / "c.yaml"
    config.write_text("server:\n  max_body_bytes: 1024\n")
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({**generic_close(), "padding": "x" * 1024}))

    result = CliRunner().invoke(
        main, ["-c", str(config), "inspect-payload", "--helpdesk", "dryrun", str(payload)]
    )

    assert result.exit_code == 1, result.output
    assert "error (payload_too_large)" in result.output
    assert "server.max_body_bytes" in result.output


def test_timestamps_in_milliseconds_and_iso_are_understood(clock):
    from csat_hook.helpdesks.payload import parse_timestamp

    now = clock()
    assert parse_timestamp(str(int(now.timestamp() * 1000))) == now
    assert parse_timestamp(now.isoformat().replace("+00:00", "Z")) == now
    assert parse_timestamp("garbage") is None
    assert parse_timestamp(now.timestamp() + 0.5) == now + timedelta(seconds=0.5)


# --- look-up after an unknown outcome ---------------------------------------------------------

REF = "MXxnfEQgOXw3fGFiY2R8eHl6.q1w2e3r4t5y6u7i8o9p0"
SINCE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LOOKUP = {
    "url": "https://desk.example.com/{account}/d/{dialog_id}/messages",
    "headers": {"Authorization": "Token secret-1"},
    "query": {"order": "desc", "key": "q-{account}"},
    "messages": "data.items",
    "text": "body.plain",
    "id": "uid",
    "ours": "direction == 'out' && !internal",
    "created_at": "created",
}


def listing(*items: dict) -> dict:
    return {"data": {"items": list(items)}}


def message(
    uid: int, text: str, *, direction="out", internal=False, created="2026-11-20T12:00:05Z"
):
    return {
        "uid": uid,
        "body": {"plain": text},
        "direction": direction,
        "internal": internal,
        "created": created,
    }


def test_the_look_up_is_configured_only_when_asked_for(clock):
    assert not adapter(clock).supports_lookup
    assert adapter(
        clock, mapping={"context": {"account": "account"}}, lookup=LOOKUP
    ).supports_lookup


@responses.activate
def test_the_look_up_finds_our_outgoing_message_carrying_the_reference(clock):
    desk = adapter(clock, mapping={"context": {"account": "account"}}, lookup=LOOKUP)
    responses.get(
        "https://desk.example.com/acme/d/D%209/messages",
        json=listing(
            message(1, f"Customer: > Rate us {REF}", direction="in"),  # a quote of our survey
            message(2, f"note {REF}", internal=True),  # an internal note
            message(3, f"Rate us {REF}", created="2026-11-19T08:00:00Z"),  # long before
            message(4, "Rate us: https://f/?ref=someone-else"),
            message(5, f"Rate us: https://f/?a=1&amp;ref={REF}"),
        ),
        match=[
            matchers.query_param_matcher({"order": "desc", "key": "q-acme"}),
            matchers.header_matcher({"Authorization": "Token secret-1"}),
        ],
    )

    found = desk.find_reply(reply(marker=REF), since=SINCE)

    assert found is not None and found.external_id == "5"


@responses.activate
def test_a_found_message_without_the_id_to_string_reads_has_none_not_null(clock):
    # The look-up's expressions are the mapping's: to_string of a missing value is None,
    # never the text "null" recorded as the reply's message id.
    desk = adapter(
        clock,
        mapping={"context": {"account": "account"}},
        lookup={**LOOKUP, "id": "to_string(uid)"},
    )
    found_message = message(5, f"Rate us {REF}")
    del found_message["uid"]
    responses.get("https://desk.example.com/acme/d/D%209/messages", json=listing(found_message))

    found = desk.find_reply(reply(marker=REF), since=SINCE)

    assert found is not None and found.external_id is None


@responses.activate
def test_the_look_up_returns_none_when_the_reply_is_not_there(clock):
    desk = adapter(clock, mapping={"context": {"account": "account"}}, lookup=LOOKUP)
    responses.get(
        "https://desk.example.com/acme/d/D%209/messages",
        json=listing(message(1, f"> {REF}", direction="in")),
    )
    assert desk.find_reply(reply(marker=REF), since=SINCE) is None


@responses.activate
def test_a_message_with_an_unreadable_date_still_matches(clock):
    desk = adapter(clock, mapping={"context": {"account": "account"}}, lookup=LOOKUP)
    responses.get(
        "https://desk.example.com/acme/d/D%209/messages",
        json=listing(message(8, f"Rate us {REF}", created="yesterday-ish")),
    )
    assert desk.find_reply(reply(marker=REF), since=SINCE).external_id == "8"


@responses.activate
def test_a_message_the_expressions_cannot_read_is_passed_over_not_a_crash(clock):
    # join() over numbers raises JMESPathTypeError: that message cannot be told to be ours.
    spec = {**LOOKUP, "text": "join(' ', body.parts)"}
    desk = adapter(clock, mapping={"context": {"account": "account"}}, lookup=spec)
    unreadable = {**message(1, ""), "body": {"parts": [1, 2]}}
    ours = {**message(2, ""), "body": {"parts": ["Rate us", REF]}}
    responses.get("https://desk.example.com/acme/d/D%209/messages", json=listing(unreadable, ours))
    assert desk.find_reply(reply(marker=REF), since=SINCE).external_id == "2"


@responses.activate
def test_a_long_listing_oldest_first_is_searched_at_its_newest_end(clock):
    # Only the first LOOKUP_MAX_MESSAGES were read: a dialog listed oldest first with more
    # than that had our reply (the newest) past them, "not found", and it was posted again.
    desk = adapter(clock, mapping={"context": {"account": "account"}}, lookup=LOOKUP)
    older = [message(n, f"message {n}") for n in range(1, LOOKUP_MAX_MESSAGES + 200)]
    ours = message(99999, f"Rate us {REF}")
    responses.get("https://desk.example.com/acme/d/D%209/messages", json=listing(*older, ours))
    assert desk.find_reply(reply(marker=REF), since=SINCE).external_id == "99999"


@responses.activate
def test_a_listing_longer_than_both_ends_searched_is_no_proof_of_absence(clock):
    desk = adapter(clock, mapping={"context": {"account": "account"}}, lookup=LOOKUP)
    many = [message(n, f"message {n}") for n in range(1, 2 * LOOKUP_MAX_MESSAGES + 2)]
    responses.get("https://desk.example.com/acme/d/D%209/messages", json=listing(*many))
    with pytest.raises(DeliveryError, match="not searched further") as info:
        desk.find_reply(reply(marker=REF), since=SINCE)
    # Permanent: sent again once with a note saying it was not checked, not asked for ever.
    assert not info.value.retryable


@responses.activate
@pytest.mark.parametrize(
    ("answer", "retryable"),
    [
        ({"status": 503, "json": {}}, True),  # ask again later
        ({"status": 403, "json": {}}, False),  # no permission to list: never
        ({"status": 200, "body": "<html>maintenance</html>"}, True),
        ({"status": 200, "json": {"data": {"items": "nope"}}}, False),  # a wrong path
    ],
)
def test_look_up_failures_say_whether_asking_again_can_help(clock, answer, retryable):
    desk = adapter(clock, mapping={"context": {"account": "account"}}, lookup=LOOKUP)
    responses.get("https://desk.example.com/acme/d/D%209/messages", **answer)
    with pytest.raises(DeliveryError) as info:
        desk.find_reply(reply(marker=REF), since=SINCE)
    assert info.value.retryable is retryable and not info.value.outcome_unknown


@pytest.mark.parametrize(
    ("lookup", "message"),
    [
        ({"url": "ftp://x/{dialog_id}"}, "helpdesks.g.lookup.url: must start with http://"),
        ({"url": "https://x/{nope}"}, "lookup.url: unknown placeholder {nope}"),
        ({"url": "https://x/", "text": "body.["}, "text: 'body.[' is not a valid JMESPath"),
        ({"url": "https://x/", "body": {"q": "{dialog_id}"}}, "body is only sent with method POST"),
    ],
)
def test_a_bad_look_up_is_refused_naming_the_key(lookup, message):
    with pytest.raises(ConfigError) as info:
        load_generic(reply={"url": "https://x/{dialog_id}"}, lookup=lookup)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Bad Name": "v"}, "helpdesks.g: reply.headers: 'Bad Name' is not a header name"),
        ({"X-Token:": "v"}, "helpdesks.g: reply.headers: 'X-Token:' is not a header name"),
        (
            {"Authorization": "Bearer S3cret\nX-Other: 1"},
            "helpdesks.g: reply.headers.Authorization: a line break or NUL cannot be sent",
        ),
    ],
)
def test_a_header_that_cannot_be_sent_is_refused_at_start(headers, message):
    # Taken, every reply then failed for good with "InvalidHeader", one close at a time.
    with pytest.raises(ConfigError) as info:
        load_generic(reply={"url": "https://x/{dialog_id}", "headers": headers})
    assert message in str(info.value), str(info.value)
    assert "S3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            {"url": "https://x/y", "headers": {"Authorization": "Bearer S3cret {nope}"}},
            "helpdesks.g: reply.headers.Authorization: unknown placeholder {nope}",
        ),
        (
            {"url": "https://x/y", "query": {"key": "S3cret}"}},
            "helpdesks.g: reply.query.key: Single '}' encountered in format string "
            "(write {{ and }} for a literal brace)",
        ),
        (
            {"url": "https://x/{dialog_id", "body": {"text": "{text}"}},
            "helpdesks.g: reply.url: expected '}' before end of string",
        ),
        (
            {"url": "https://x/y", "body": {"message": {"parts": ["{text}", "{oops}"]}}},
            "helpdesks.g: reply.body.message.parts[1]: unknown placeholder {oops}",
        ),
    ],
)
def test_a_bad_reply_template_names_the_header_query_or_body_key_and_quotes_no_secret(
    reply, message
):
    # It said only "reply:", and a brace as Python's format error: which of a dozen headers
    # and body fields, and how to write a literal brace, were left to guess.
    with pytest.raises(ConfigError) as info:
        load_generic(reply=reply)
    assert message in str(info.value), str(info.value)
    assert "S3cret" not in str(info.value)


def test_look_up_secrets_are_masked_by_check_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        json.dumps(
            {
                "helpdesks": {
                    "g": {
                        "kind": "generic",
                        "auth": {"mode": "none"},
                        "reply": {"url": "https://x/{dialog_id}"},
                        "lookup": {
                            "url": "https://x/{dialog_id}/messages",
                            "headers": {"Authorization": "Token lookup-secret-1"},
                            "query": {"api_key": "lookup-secret-2"},
                        },
                    }
                }
            }
        )
    )
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code == 0, result.output
    assert "lookup-secret" not in result.output and "messages" in result.output


# --- signed-payload templates, timestamp formats, a token in the body -------------------------


def hmac_adapter(clock, **auth) -> GenericHelpdesk:
    return adapter(clock, auth={"mode": "hmac", "secret": "k", "signature_header": "X-Sig", **auth})


def sign(message: bytes) -> str:
    return hmac.new(b"k", message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("template", "layout"),
    [
        ("{body}", lambda ts, body: body),
        ("{timestamp}{body}", lambda ts, body: ts + body),
        ("{timestamp}.{body}", lambda ts, body: ts + b"." + body),
        ("[{timestamp};{body}]", lambda ts, body: b"[" + ts + b";" + body + b"]"),
        ("v0:{timestamp}:{body}", lambda ts, body: b"v0:" + ts + b":" + body),
        ("{{{timestamp}}}{body}", lambda ts, body: b"{" + ts + b"}" + body),
    ],
)
def test_a_signed_payload_template_places_the_timestamp_and_body_as_received(
    clock, template, layout
):
    # A timestamp header the template does not sign is refused (a replay check it cannot be).
    ts_header = {"timestamp_header": "X-Ts"} if "{timestamp}" in template else {}
    desk = hmac_adapter(clock, signed_payload=template, **ts_header)
    body = body_of(generic_close())
    ts = str(int(clock().timestamp()))

    desk.verify(request(body, clock, {"X-Sig": sign(layout(ts.encode(), body)), "X-Ts": ts}))
    with pytest.raises(InvalidSignatureError):  # the body alone is not what was signed
        desk.verify(request(body, clock, {"X-Sig": sign(body + b"x"), "X-Ts": ts}))


def test_method_and_path_are_signed_as_the_web_app_received_them(make_config, make_services, clock):
    services = make_services(
        make_config(
            helpdesks={
                "signed": {
                    "kind": "generic",
                    "auth": {
                        "mode": "hmac",
                        "secret": "path-secret-123",
                        "signature_header": "X-Sig",
                        "timestamp_header": "X-Ts",
                        "timestamp_format": "iso",
                        "signed_payload": "{method} {path}\n{timestamp}\n{body}",
                    },
                    "reply": {"url": "https://desk.example.com/{dialog_id}"},
                }
            }
        )
    )
    client = create_app(services=services).test_client()
    body = body_of(generic_close())
    ts = clock().isoformat()

    def post(path_signed: str, method: str = "POST"):
        message = f"{method} {path_signed}\n{ts}\n".encode() + body
        digest = hmac.new(b"path-secret-123", message, hashlib.sha256).hexdigest()
        return client.post(
            "/webhooks/signed",
            data=body,
            headers={"X-Sig": digest, "X-Ts": ts},
            content_type="application/json",
        )

    assert post("/webhooks/other").status_code == 401
    assert post("/webhooks/signed", method="PUT").status_code == 401
    assert post("/webhooks/signed").status_code == 200


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"signed_payload": "{ts}.{body}"}, "unknown placeholder {ts}"),
        ({"signed_payload": "{timestamp}"}, "must contain {body}"),
        ({"signed_payload": "{body:x}"}, "no format spec or conversion"),
        ({"signed_payload": "{body!r}"}, "no format spec or conversion"),
        ({"signed_payload": "{body"}, "signed_payload"),
        ({"signed_payload": "[{timestamp};{body}]"}, "timestamp_header is required"),
        ({"timestamp_format": "minutes"}, "timestamp_format"),
        ({"mode": "token", "token": "t", "token_field": "a..b"}, "must name a body field"),
        ({"mode": "token", "token": "t", "token_field": "items[0]"}, "must name a body field"),
        (
            {"mode": "token", "token": "t", "token_header": None, "token_query": None},
            "set token_header, token_query and/or token_field",
        ),
    ],
)
def test_a_bad_auth_setting_is_refused_when_the_config_loads(auth, message):
    options = {"mode": "hmac", "secret": "k", **auth}
    with pytest.raises(ConfigError) as info:
        load_generic(auth=options, reply={"url": "https://x/"})
    assert message in str(info.value) and "helpdesks.g.auth" in str(info.value)


@pytest.mark.parametrize("signed_payload", [None, "{body}", "{method} {path}\n{body}"])
def test_a_timestamp_header_the_signature_does_not_cover_is_refused(signed_payload):
    # Its freshness would be checked, but anyone holding one request could replay it forever
    # under a fresh timestamp: the setting promises a replay check it cannot give.
    auth = {"mode": "hmac", "secret": "k", "signature_header": "X-Sig", "timestamp_header": "X-Ts"}
    if signed_payload is not None:
        auth["signed_payload"] = signed_payload
    with pytest.raises(ConfigError) as info:
        load_generic(auth=auth)
    text = str(info.value)
    assert "helpdesks.g.auth.signed_payload" in text
    assert "{timestamp}" in text and "{timestamp}.{body}" in text and "replay" in text


def test_check_config_refuses_a_timestamp_header_outside_the_signature(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        json.dumps(
            {
                "helpdesks": {
                    "g": {
                        "kind": "generic",
                        "auth": {
                            "mode": "hmac",
                            "secret": "replay-secret-1",
                            "signature_header": "X-Signature",
                            "timestamp_header": "X-Timestamp",
                        },
                        "reply": {"url": "https://desk.example.com/{dialog_id}"},
                    }
                }
            }
        )
    )
    result = CliRunner().invoke(main, ["--config", str(path), "check-config"])
    assert result.exit_code != 0
    assert "helpdesks.g.auth.signed_payload" in result.output


@pytest.mark.parametrize("auth", [{"mode": "token", "token": "t"}, {"mode": "none"}])
def test_a_timestamp_header_outside_hmac_mode_is_refused_naming_the_key(auth):
    # It was silently ignored: no replay check was made, yet the setting promised one.
    with pytest.raises(ConfigError) as info:
        load_generic(auth={**auth, "timestamp_header": "X-Ts"})
    text = str(info.value)
    assert "helpdesks.g.auth.timestamp_header" in text and "mode: hmac" in text


def test_token_mode_ignores_the_other_hmac_settings_as_before():
    load_generic(auth={"mode": "token", "token": "t", "algorithm": "sha1", "encoding": "base64"})


def test_a_signed_timestamp_stops_a_replay_under_a_fresh_timestamp(
    make_config, make_services, clock
):
    services = make_services(
        make_config(
            helpdesks={
                "signed": {
                    "kind": "generic",
                    "auth": {
                        "mode": "hmac",
                        "secret": "replay-secret-1",
                        "signature_header": "X-Signature",
                        "timestamp_header": "X-Timestamp",
                        "signed_payload": "{timestamp}.{body}",
                    },
                    "reply": {"url": "https://desk.example.com/{dialog_id}"},
                }
            }
        )
    )
    client = create_app(services=services).test_client()
    body = body_of(generic_close())
    day_old = str(int(clock().timestamp()) - 86_400)
    captured = hmac.new(b"replay-secret-1", day_old.encode() + b"." + body, hashlib.sha256)

    def post(timestamp: str, signature: str):
        return client.post(
            "/webhooks/signed",
            data=body,
            headers={"X-Signature": signature, "X-Timestamp": timestamp},
            content_type="application/json",
        )

    fresh = str(int(clock().timestamp()))
    assert post(day_old, captured.hexdigest()).status_code == 401  # outside the tolerance
    assert post(fresh, captured.hexdigest()).status_code == 401  # the replay: not what was signed
    signed_now = hmac.new(b"replay-secret-1", fresh.encode() + b"." + body, hashlib.sha256)
    assert post(fresh, signed_now.hexdigest()).status_code == 200


@pytest.mark.parametrize(
    ("unit", "spelled", "accepted"),
    [
        ("s", lambda now: str(int(now.timestamp())), True),
        ("s", lambda now: f"{now.timestamp():.3f}", True),
        ("s", lambda now: str(int(now.timestamp() * 1000)), False),  # ms read as seconds
        ("s", lambda now: now.isoformat(), False),
        ("ms", lambda now: str(int(now.timestamp() * 1000)), True),
        ("ms", lambda now: str(int(now.timestamp())), False),  # seconds read as ms: 1970
        ("ms", lambda now: " 1e12", False),
        ("iso", lambda now: now.isoformat(), True),
        ("iso", lambda now: now.strftime("%Y-%m-%dT%H:%M:%SZ"), True),
        ("iso", lambda now: now.replace(tzinfo=None).isoformat(), True),  # naive: UTC
        ("iso", lambda now: str(int(now.timestamp())), False),
        ("auto", lambda now: str(int(now.timestamp() * 1000)), True),
        ("auto", lambda now: now.isoformat(), True),
    ],
)
def test_timestamps_are_read_in_the_configured_unit(clock, unit, spelled, accepted):
    desk = hmac_adapter(
        clock, timestamp_header="X-Ts", timestamp_format=unit, signed_payload="{timestamp}.{body}"
    )
    body = b'{"event": "dialog.closed"}'
    ts = spelled(clock())
    headers = {"X-Sig": sign(ts.encode() + b"." + body), "X-Ts": ts}
    if accepted:
        desk.verify(request(body, clock, headers))
    else:
        with pytest.raises(InvalidSignatureError, match="timestamp"):
            desk.verify(request(body, clock, headers))


def test_read_timestamp_never_guesses_outside_its_unit():
    from csat_hook.helpdesks.generic import read_timestamp

    assert read_timestamp("1732104000", "s") == datetime(2024, 11, 20, 12, 0, tzinfo=UTC)
    assert read_timestamp("1732104000000", "ms") == datetime(2024, 11, 20, 12, 0, tzinfo=UTC)
    assert read_timestamp("T12:00", "iso") is None
    assert read_timestamp("-5", "s") is None and read_timestamp("", "ms") is None
    assert read_timestamp("9" * 16, "s") is None  # beyond the calendar: unreadable, not a crash
    assert read_timestamp(None, "iso") is None


def body_token_adapter(clock, field="secret_key") -> GenericHelpdesk:
    return adapter(
        clock,
        auth={
            "mode": "token",
            "token": "lc-secret-1",
            "token_header": None,
            "token_query": None,
            "token_field": field,
        },
    )


@pytest.mark.parametrize(
    ("payload", "accepted"),
    [
        ({"secret_key": "lc-secret-1", "event": "x"}, True),
        ({"secret_key": "lc-secret-2"}, False),
        ({"secret_key": "lc-secret-1 "}, False),
        ({"secret_key": ["lc-secret-1"]}, False),
        ({"secret_key": None}, False),
        ({"payload": {"secret_key": "lc-secret-1"}}, False),  # only where configured
        ({}, False),
        (["lc-secret-1"], False),
    ],
)
def test_a_token_in_a_body_field_must_be_that_exact_string(clock, payload, accepted):
    desk = body_token_adapter(clock)
    webhook = request(body_of(payload), clock)
    if accepted:
        desk.verify(webhook)
    else:
        with pytest.raises(InvalidSignatureError, match="webhook token"):
            desk.verify(webhook)


def test_a_nested_body_field_and_a_form_body_carry_the_token(clock):
    desk = body_token_adapter(clock, field="auth.token")
    desk.verify(request(b'{"auth": {"token": "lc-secret-1"}}', clock))
    form = WebhookRequest(
        body=b"token=lc-secret-1&event=x",
        headers={},
        query={},
        received_at=clock(),
        content_type="application/x-www-form-urlencoded",
    )
    with pytest.raises(InvalidSignatureError):  # a flat form has no "auth" object
        desk.verify(form)
    body_token_adapter(clock, field="token").verify(form)


def test_a_reopen_naming_no_dialog_is_ignored_but_a_close_naming_none_is_a_400(clock):
    desk = adapter(clock)
    reopen = desk.parse(request(b'{"event": "dialog.reopened"}', clock))
    assert isinstance(reopen, Ignored) and "reopen without a dialog id" in reopen.reason
    with pytest.raises(BadPayloadError):
        desk.parse(request(b'{"event": "dialog.closed"}', clock))


# --- the agent look-up ------------------------------------------------------------------------

BY_ID = {
    "url": "https://desk.example.com/{account}/agents/{agent_id}",
    "headers": {"Authorization": "Token agents-secret"},
    "agent": "data",
    "id": None,
    "name": "display_name",
    "email": "contact.email",
}
BY_DIALOG = {
    "method": "POST",
    "url": "https://desk.example.com/{account}/who",
    "body": {"dialog": "{dialog_id}"},
    "agent": "participants[?role=='agent']",
    "id": "uid",
    "name": "name",
    "email": None,
}


def lookup_adapter(clock, **lookup) -> GenericHelpdesk:
    return adapter(clock, mapping={"context": {"account": "account"}}, agent_lookup=lookup)


@responses.activate
def test_by_id_reads_the_profile_once_and_remembers_it(clock):
    desk = lookup_adapter(clock, by_id=BY_ID)
    responses.get(
        "https://desk.example.com/acme/agents/7%2F8",
        json={"data": {"display_name": "Anna Petrova", "contact": {"email": "anna@x"}}},
        match=[matchers.header_matcher({"Authorization": "Token agents-secret"})],
    )
    context = {"account": "acme"}

    first = desk.resolve_agent(Person(id="7/8"), context, dialog_id="D-1")
    second = desk.resolve_agent(Person(id="7/8"), context, dialog_id="D-2")

    assert first == second == Person("7/8", "Anna Petrova", "anna@x")
    assert len(responses.calls) == 1


@responses.activate
def test_a_look_up_answer_missing_a_value_to_string_reads_is_missing_not_null(clock):
    # to_string of a missing value was the text "null": the agent's name, sent in the link.
    desk = lookup_adapter(clock, by_id={**BY_ID, "name": "to_string(display_name)"})
    responses.get(
        "https://desk.example.com/acme/agents/7",
        json={"data": {"contact": {"email": "anna@x"}}},
    )

    found = desk.resolve_agent(Person(id="7"), {"account": "acme"}, dialog_id="D-1")

    assert found == Person("7", None, "anna@x")


@responses.activate
def test_by_dialog_finds_the_agent_of_a_close_that_names_none(clock):
    desk = lookup_adapter(clock, by_dialog=BY_DIALOG, by_id=BY_ID)
    responses.post(
        "https://desk.example.com/acme/who",
        json={
            "participants": [
                {"role": "customer", "uid": "c"},
                {"role": "agent", "uid": "5", "name": "Kim"},
            ]
        },
        match=[matchers.json_params_matcher({"dialog": "D 1"})],
    )
    responses.get(
        "https://desk.example.com/acme/agents/5",
        json={"data": {"display_name": "Kim Lee", "contact": {"email": "kim@x"}}},
    )

    found = desk.resolve_agent(Person(), {"account": "acme"}, dialog_id="D 1")

    # The dialog's answer gives the id (and a name); the profile adds the e-mail.
    assert found == Person("5", "Kim", "kim@x")


@responses.activate
def test_a_close_naming_its_agent_is_never_asked_for_by_dialog(clock):
    desk = lookup_adapter(clock, by_dialog=BY_DIALOG)
    assert desk.resolve_agent(Person(id="5"), {"account": "acme"}, dialog_id="D") == Person("5")
    assert desk.resolve_agent(Person(name="Kim"), {"account": "acme"}, dialog_id="D") == Person(
        name="Kim"
    )
    assert len(responses.calls) == 0


@responses.activate
@pytest.mark.parametrize(
    ("answer", "found"),
    [
        ({"status": 404, "json": {"error": "no such dialog"}}, None),
        ({"json": {"participants": []}}, None),
        ({"json": {"participants": [{"role": "agent", "uid": None, "name": None}]}}, None),
        ({"json": {"participants": [{"role": "agent", "uid": 5}]}}, Person("5")),
        ({"json": ["not", "an", "object"]}, None),
    ],
)
def test_a_dialog_the_answer_names_no_agent_for_is_sent_without_one(clock, answer, found):
    desk = lookup_adapter(clock, by_dialog=BY_DIALOG)
    responses.post("https://desk.example.com/acme/who", **answer)
    assert desk.find_agent("D", {"account": "acme"}) == found


@responses.activate
def test_an_agent_name_the_expressions_cannot_read_is_left_out(clock):
    # A vendor answer of a type the configured function refuses (join over numbers).
    desk = lookup_adapter(clock, by_dialog={**BY_DIALOG, "name": "join(' ', names)"})
    responses.post(
        "https://desk.example.com/acme/who",
        json={"participants": [{"role": "agent", "uid": 5, "names": [1, 2]}]},
    )
    assert desk.find_agent("D", {"account": "acme"}) == Person("5")


@responses.activate
@pytest.mark.parametrize(
    ("answer", "retryable"),
    [
        ({"status": 503, "json": {}}, True),
        ({"status": 200, "body": "<html>proxy</html>"}, True),
        ({"status": 403, "json": {}}, False),
    ],
)
def test_a_failing_look_up_says_whether_asking_again_can_help(clock, answer, retryable):
    from csat_hook.helpdesks.base import AgentLookupError

    desk = lookup_adapter(clock, by_dialog=BY_DIALOG)
    responses.post("https://desk.example.com/acme/who", **answer)
    with pytest.raises(AgentLookupError) as info:
        desk.resolve_agent(Person(), {"account": "acme"}, dialog_id="D")
    assert info.value.retryable is retryable and info.value.known == Person()


@pytest.mark.parametrize(
    ("lookup", "message"),
    [
        ({}, "set by_dialog and/or by_id"),
        ({"by_id": {**BY_ID, "url": "https://x/agents"}}, "by_id: the request must use {agent_id}"),
        (
            {"by_dialog": {**BY_DIALOG, "url": "https://x/{agent_id}"}},
            "unknown placeholder {agent_id}",
        ),
        ({"by_dialog": {**BY_DIALOG, "id": None, "name": None}}, "read the agent's id and/or name"),
        ({"by_id": {**BY_ID, "name": None, "email": None}}, "read the agent's name and/or email"),
        ({"by_id": {**BY_ID, "name": "join(' ',"}}, "name: \"join(' ',\" is not a valid JMESPath"),
        ({"by_dialog": {**BY_DIALOG, "method": "GET"}}, "body is only sent with method POST"),
    ],
)
def test_a_bad_agent_look_up_is_refused_naming_the_key(lookup, message):
    with pytest.raises(ConfigError) as info:
        load_generic(
            mapping={"context": {"account": "account"}},
            reply={"url": "https://x/{dialog_id}"},
            agent_lookup=lookup,
        )
    assert message in str(info.value)


# --- inspect-payload with a query string --------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "verified"),
    [
        (["--query", "token=eadesk-hook-token"], True),
        (["-q", "a=1&token=eadesk-hook-token"], True),
        (["--url", "https://csat.example.com/webhooks/eadesk?token=eadesk-hook-token"], True),
        (["--query", "token=guess"], False),
        ([], False),
    ],
)
def test_inspect_payload_verifies_a_token_in_the_query(extra, verified, tmp_path, monkeypatch):
    fixture_file = fixture_path("generic", "synthetic_eadesk_style_close.json")
    config = ROOT / "examples" / "eadesk.yaml"
    args = ["--config", str(config), "inspect-payload", "--helpdesk", "eadesk", "--verify"]
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main,
        [*args, *extra, str(fixture_file)],
        env={"EADESK_WEBHOOK_TOKEN": "eadesk-hook-token", "EADESK_API_TOKEN": "api"},
    )
    # The example captures payloads (capture_dir); reading one must not capture it again.
    assert list(tmp_path.iterdir()) == []
    if verified:
        assert result.exit_code == 0, result.output
        assert "sender: verified" in result.output and "result: DialogClosed" in result.output
    else:
        assert result.exit_code == 1 and "unauthorized" in result.output


def test_inspect_payload_prints_the_senders_control_characters_escaped(tmp_path):
    # A captured payload is the sender's text: the result's dialog id was printed raw (an ESC
    # sequence setting the terminal's title), and DEL / C1 controls pass JSON's escaping.
    payload = tmp_path / "p.json"
    payload.write_text(
        json.dumps(generic_close("4\x1b]0;pwned\x07\n#forged", agent_name="A\x9b2J\x7f")),
        encoding="utf-8",
    )
    args = ["inspect-payload", "--helpdesk", "dryrun", str(payload)]
    result = CliRunner().invoke(main, args, env={"CSAT_HOOK_CONFIG": None})
    assert result.exit_code == 0, result.output
    assert r'  dialog_id: "4\u001b]0;pwned\u0007\n#forged"' in result.output
    assert r'  agent.name = "A\u009b2J\u007f"' in result.output
    assert not any(c in result.output for c in "\x1b\x07\x9b\x7f")
    assert "\n#forged" not in result.output


PRIVATE = "Customer jane@acme.inc wrote: my password is hunter2"


def test_an_ignored_reason_never_quotes_text_that_is_no_name(clock):
    # The reason is answered to the sender and logged: it quoted the event and the status
    # whatever they held (a mapping pointing at the wrong field sent customer text there).
    body = json.dumps({"event": PRIVATE, "dialog": {"id": "1"}}).encode()
    assert adapter(clock).parse(request(body, clock)) == Ignored(
        "event '(not a name: 52 characters)' is not a close event"
    )
    statuses = adapter(
        clock, mapping={"dialog_id": "id", "status": "status", "closed_values": ["closed"]}
    )
    body = json.dumps({"event": "dialog.closed", "id": "1", "status": PRIVATE}).encode()
    assert statuses.parse(request(body, clock)) == Ignored(
        "status '(not a name: 52 characters)' does not mean closed"
    )
    body = json.dumps({"event": "dialog.closed", "id": "1", "status": "snoozed"}).encode()
    assert statuses.parse(request(body, clock)) == Ignored("status 'snoozed' does not mean closed")


# --- the close's and the reopen's times (mapping.close_time, mapping.reopen_time) ----------

TIMES = {"close_time": "dialog.closed_at", "reopen_time": "dialog.reopened_at"}
AT = datetime(2026, 11, 20, 11, 59, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-20T11:59:00Z",
        "2026-11-20T14:59:00+03:00",
        int(AT.timestamp()),
        int(AT.timestamp() * 1000),
        str(int(AT.timestamp())),
    ],
)
def test_mapped_close_and_reopen_times_are_read_as_the_vendors_are(clock, value):
    helpdesk = adapter(clock, mapping=TIMES)
    close = generic_close("D-7")
    close["dialog"]["closed_at"] = value
    reopen = {"event": "dialog.reopened", "dialog": {"id": "D-7", "reopened_at": value}}
    closed = helpdesk.parse(request(body_of(close), clock))
    reopened = helpdesk.parse(request(body_of(reopen), clock))
    assert isinstance(closed, DialogClosed) and closed.close_times == (AT,)
    assert reopened == DialogReopened("g", "D-7", reopen_times=(AT,))


@pytest.mark.parametrize(
    "value",
    [None, "", "yesterday", "1" * 65, " " * 30 + "2026-11-20T11:59:00Z" + " " * 30, [1], {}, True],
)
def test_a_mapped_time_that_does_not_read_as_one_is_no_time(clock, value):
    # A close or reopen of unknown time, as without the mapping: never a refusal (the
    # sender's types), never a long text parsed.
    helpdesk = adapter(clock, mapping=TIMES)
    close = generic_close("D-7")
    close["dialog"]["closed_at"] = value
    reopen = {"event": "dialog.reopened", "dialog": {"id": "D-7", "reopened_at": value}}
    closed = helpdesk.parse(request(body_of(close), clock))
    assert isinstance(closed, DialogClosed) and closed.close_times == ()
    assert helpdesk.parse(request(body_of(reopen), clock)) == DialogReopened("g", "D-7")


def test_without_time_mappings_no_time_is_read(clock):
    helpdesk = adapter(clock)
    close = generic_close("D-7", closed_at="2026-11-20T11:59:00Z")
    closed = helpdesk.parse(request(body_of(close), clock))
    assert isinstance(closed, DialogClosed) and closed.close_times == ()


@pytest.mark.parametrize("key", ["close_time", "reopen_time"])
def test_a_bad_time_expression_is_refused_when_the_config_loads(key):
    with pytest.raises(ConfigError) as info:
        load_generic(mapping={key: "dialog.[closed"})
    assert f"mapping.{key}" in str(info.value) or key in str(info.value)


# --- context values the reply's URL path cannot carry -----------------------------------------

ACCOUNT_PATH = "https://desk.example.com/{account}/d/{dialog_id}"


def _close_with_account(clock: FakeClock, account: object, **options) -> object:
    options.setdefault("mapping", {"context": {"account": "account"}})
    options.setdefault("reply", {"url": ACCOUNT_PATH})
    desk = adapter(clock, **options)
    payload = {"event": "dialog.closed", "dialog": {"id": "D-1"}, "agent": {"id": "7"}}
    if account is not None:
        payload["account"] = account
    options_mapping = desk.options.mapping
    options_mapping.dialog_id, options_mapping.agent_id = "dialog.id", "agent.id"
    return desk.parse(request(json.dumps(payload).encode(), clock))


@pytest.mark.parametrize("value", ["..", ".", " .. "])
def test_a_context_value_the_reply_path_takes_as_a_dot_segment_is_a_400(clock, value):
    """Accepted, the close's reply could never be sent (the URL would name another path, so
    delivery refuses it): the sender is told now, naming the value's context name."""
    with pytest.raises(BadPayloadError) as refused:
        _close_with_account(clock, value)
    assert refused.value.status == 400
    assert "context.account" in str(refused.value) and "URL path" in str(refused.value)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_context_value_missing_from_a_path_segment_of_the_reply_is_a_400(clock, value):
    """``/{account}/d/…`` with no account is ``//d/…``: delivery refuses it, every time."""
    with pytest.raises(BadPayloadError) as refused:
        _close_with_account(clock, value)
    assert refused.value.status == 400
    assert "context.account" in str(refused.value) and "empty" in str(refused.value)


@pytest.mark.parametrize("value", ["acme", "...", "a..", ".hidden", "a/../b", "%2e%2e"])
def test_other_context_values_in_the_reply_path_are_taken(clock, value):
    """Not dot segments: "a/../b" is quoted into one segment, "%2e%2e" is sent as %252e%252e."""
    event = _close_with_account(clock, value)
    assert isinstance(event, DialogClosed) and event.reply_context["account"] == value.strip()


@pytest.mark.parametrize("value", ["..", None])
def test_a_context_value_used_outside_the_path_is_not_judged_as_a_path(clock, value):
    event = _close_with_account(
        clock,
        value,
        reply={
            "url": "https://desk.example.com/d/{dialog_id}",
            "query": {"account": "{account}"},
            "body": {"text": "{text} ({account})"},
        },
    )
    assert isinstance(event, DialogClosed)


def test_a_context_value_the_lookup_path_takes_as_a_dot_segment_is_a_400(clock):
    """The look-up settles an unknown outcome: a path it cannot reach would leave the reply
    unsettled for ever."""
    with pytest.raises(BadPayloadError) as refused:
        _close_with_account(
            clock,
            "..",
            reply={"url": "https://desk.example.com/d/{dialog_id}"},
            lookup={"url": "https://desk.example.com/{account}/d/{dialog_id}/messages"},
        )
    assert "context.account" in str(refused.value)


def test_a_context_value_in_a_segment_with_literal_text_is_no_dot_segment(clock):
    event = _close_with_account(
        clock, "..", reply={"url": "https://desk.example.com/acct-{account}/d/{dialog_id}"}
    )
    assert isinstance(event, DialogClosed)


def test_inspect_payload_without_verify_says_the_sender_was_not_checked(tmp_path):
    # `--url '…?token=wrong'` without --verify printed the DialogClosed and nothing about the
    # sender: a wrong token looked accepted.
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps(generic_close()))
    url = "https://csat.example.com/webhooks/dryrun?token=wrong"
    result = CliRunner().invoke(
        main,
        ["inspect-payload", "--helpdesk", "dryrun", "--url", url, str(payload)],
        env={"CSAT_HOOK_CONFIG": None},
    )
    assert result.exit_code == 0, result.output
    assert "sender: not checked (add --verify" in result.output
    assert "sender: verified" not in result.output
