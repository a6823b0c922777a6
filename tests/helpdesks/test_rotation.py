"""A webhook secret's rotation, over every adapter that checks its sender: the secrets (or
tokens) the current one replaced, listed in the helpdesk's ``previous_*`` option, are accepted
beside it, each compared in constant time; a close one of them proves is stored as any other
and said in a ``webhook.previous-secret`` line naming the helpdesk, the option and the index
(never the secret); an unknown one is a 401. ``check-config`` warns while any is listed and
refuses one that is the current one, blank, or set without a current one.

Each kit signs as its vendor does (``Kit.sign_with``: Chatwoot's hex HMAC-SHA256 of
``ts.body``, Zendesk's base64 HMAC-SHA256 of timestamp + body, Intercom's ``sha1=`` hex,
Help Scout's base64 HMAC-SHA1, the shared token of Freshdesk and the dry run, the generic
adapter's configured HMAC)."""

from __future__ import annotations

import base64
import hmac
import json
import logging
from copy import deepcopy
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from csat_hook.app import create_app
from csat_hook.cli import main
from csat_hook.config import load_config
from csat_hook.config.checks import config_warnings
from csat_hook.db.schema import surveys
from csat_hook.errors import ConfigError
from csat_hook.errors import InvalidSignatureError
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.signing import PreviousSecret
from csat_hook.logs import SafeFormatter
from tests.conftest import FakeClock
from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import SignedRequest
from tests.helpdesks.kits import load_kits
from tests.helpers import body_of
from tests.helpers import chatwoot_headers
from tests.helpers import fixture
from tests.helpers import generic_close

KITS = load_kits()
OLD = ["kit-rotated-away-secret-0", "kit-rotated-away-secret-1"]
UNKNOWN = "kit-never-configured-secret"


def with_previous(options: dict[str, Any], key: str, previous: list[str]) -> dict[str, Any]:
    """``options`` with ``previous`` under the dotted ``key`` (``auth.previous_tokens``)."""
    options = deepcopy(options)
    *path, last = key.split(".")
    section = options
    for part in path:
        section = section.setdefault(part, {})
    section[last] = previous
    return options


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def rotated(kit, make_config, make_services, fake_helpdesk, tmp_path):
    """The kit's helpdesk with two previous secrets beside its current one."""
    options = {"kind": kit.kind, **kit.options(fake_helpdesk.url, tmp_path)}
    options = with_previous(options, kit.previous_key, OLD)
    return make_services(make_config(helpdesks={kit.kind: options}))


def _close(kit: Kit, clock: FakeClock, secret: str) -> SignedRequest:
    """The kit's close, authenticated with ``secret`` the vendor's way."""
    assert kit.sign_with is not None
    body, _, _ = kit.closed(clock())
    return kit.sign_with(body, clock(), secret)


def _post(client: Any, kit: Kit, request: SignedRequest) -> Any:
    body, headers, query = request
    return client.post(f"/webhooks/{kit.kind}", data=body, headers=headers, query_string=query)


def _surveys(services: Any) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(surveys)).all())


def _rotation_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        SafeFormatter().format(record)
        for record in caplog.records
        if record.msg == "webhook.previous-secret"
    ]


def test_every_kit_signs_with_a_given_secret():
    assert all(kit.previous_key and kit.sign_with for kit in KITS.values())


def test_a_close_a_previous_secret_proves_is_stored_and_said(kit, rotated, clock, caplog):
    caplog.set_level(logging.INFO, logger="csat_hook")
    client = create_app(services=rotated).test_client()

    response = _post(client, kit, _close(kit, clock, OLD[1]))

    assert response.status_code == 200 and response.json["status"] == "queued", response.json
    [survey] = _surveys(rotated)
    assert survey.dialog_id == kit.dialog_id
    assert rotated.delivery_worker().run_once() == 1  # its reply goes out as any other's
    [line] = _rotation_lines(caplog)
    key = kit.previous_key.rpartition(".")[2]
    assert f"helpdesk={kit.kind}" in line and "index=1" in line and key in line
    assert OLD[1] not in line and OLD[1] not in caplog.text


def test_the_current_secret_is_accepted_and_says_nothing_of_a_rotation(kit, rotated, clock, caplog):
    caplog.set_level(logging.INFO, logger="csat_hook")
    client = create_app(services=rotated).test_client()

    response = _post(client, kit, kit.closed(clock()))

    assert response.status_code == 200 and response.json["status"] == "queued", response.json
    assert _rotation_lines(caplog) == []


def test_a_secret_neither_current_nor_previous_is_refused(kit, rotated, clock, caplog):
    caplog.set_level(logging.INFO, logger="csat_hook")
    client = create_app(services=rotated).test_client()

    response = _post(client, kit, _close(kit, clock, UNKNOWN))

    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert _surveys(rotated) == []
    assert _rotation_lines(caplog) == []


def _request(
    body: bytes, headers: dict[str, str], query: dict[str, str], clock: Any
) -> WebhookRequest:
    """The request the adapter verifies: the webhook as intake records it (names lower-cased)."""
    return WebhookRequest(
        body=body,
        headers={k.lower(): v for k, v in headers.items()},
        query=query,
        received_at=clock(),
        content_type="application/json",
    )


def test_each_previous_secret_is_compared_in_constant_time_and_all_are(
    kit, rotated, clock, monkeypatch
):
    """A previous secret is accepted by ``hmac.compare_digest`` (never ``==``), and the
    secrets after the one that matched are compared too: how long the check takes does not
    say which one matched."""
    adapter = rotated.helpdesks[kit.kind]
    body, headers, query = _close(kit, clock, OLD[0])
    request = _request(body, headers, query, clock)
    compared: list[bool] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append(real(a, b))
        return compared[-1]

    monkeypatch.setattr(hmac, "compare_digest", spy)

    assert adapter.verify(request) == PreviousSecret(kit.previous_key, 0)
    assert compared.count(True) == 1
    assert len(compared) >= 3  # the current secret, OLD[0] (the match), OLD[1] all the same


def test_without_previous_secrets_the_current_one_alone_is_compared(
    kit, make_config, make_services, fake_helpdesk, tmp_path, clock, monkeypatch
):
    """The acknowledgement's cost is unchanged: one comparison per candidate of the current
    secret, as before rotations existed."""
    options = {"kind": kit.kind, **kit.options(fake_helpdesk.url, tmp_path)}
    plain = make_services(make_config(helpdesks={kit.kind: options}))
    body, headers, query = kit.closed(clock())
    request = _request(body, headers, query, clock)
    compared: list[bool] = []
    real = hmac.compare_digest
    monkeypatch.setattr(
        hmac, "compare_digest", lambda a, b: compared.append(real(a, b)) or real(a, b)
    )

    assert plain.helpdesks[kit.kind].verify(request) is None
    assert compared == [True]


# --- what each vendor's own second credential takes -------------------------------------------


def load_one(options: dict[str, Any]) -> Any:
    return load_config(None, env={}, overrides={"helpdesks": {"h": options}})


CHATWOOT = {"kind": "chatwoot", "api_access_token": "tok", "webhook_secret": "new-sec"}


def test_chatwoot_takes_a_previous_url_token_of_older_installs(make_config, make_services, clock):
    options = {**CHATWOOT, "webhook_secret": None, "webhook_token": "new-url-token"}
    options["previous_webhook_tokens"] = ["old-url-token"]
    services = make_services(make_config(helpdesks={"chatwoot": options}))
    client = create_app(services=services).test_client()
    body = body_of(fixture("chatwoot", "conversation_status_changed_resolved.json"))

    def post(token: str) -> Any:
        headers = {"Content-Type": "application/json"}
        return client.post(
            "/webhooks/chatwoot", data=body, headers=headers, query_string={"token": token}
        )

    assert post("old-url-token").json["status"] == "queued"
    assert post("new-url-token").json["status"] == "duplicate"
    assert post("other-url-token").status_code == 401


def test_chatwoot_checks_a_previous_secrets_timestamp_as_the_current_ones(
    make_config, make_services, clock
):
    options = {**CHATWOOT, "previous_webhook_secrets": ["old-cw-secret"]}
    services = make_services(make_config(helpdesks={"chatwoot": options}))
    client = create_app(services=services).test_client()
    body = body_of(fixture("chatwoot", "conversation_status_changed_resolved.json"))
    stale = chatwoot_headers(body, "old-cw-secret", clock() - timedelta(hours=1))

    response = client.post("/webhooks/chatwoot", data=body, headers=stale)

    assert response.status_code == 401 and "tolerance" in response.json["reason"]


def test_freshdesk_takes_a_previous_basic_auth_password(make_config, make_services, clock):
    options = {
        "kind": "freshdesk",
        "base_url": "https://desk.example.com",
        "api_key": "key",
        "webhook_username": "csat",
        "webhook_password": "new-fd-password",
        "previous_webhook_passwords": ["old-fd-password"],
    }
    services = make_services(make_config(helpdesks={"freshdesk": options}))
    client = create_app(services=services).test_client()
    body = body_of(fixture("freshdesk", "automation_resolved.json"))

    def post(user: str, password: str) -> Any:
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers = {"Content-Type": "application/json", "Authorization": f"Basic {basic}"}
        return client.post("/webhooks/freshdesk", data=body, headers=headers)

    assert post("csat", "old-fd-password").json["status"] == "queued"
    assert post("csat", "new-fd-password").json["status"] == "duplicate"
    assert post("other", "old-fd-password").status_code == 401  # the username still counts
    assert post("csat", "other-password").status_code == 401


def test_a_generic_previous_token_in_the_body_is_accepted_and_never_captured(
    make_config, make_services, clock, tmp_path
):
    options = {
        "kind": "generic",
        "auth": {
            "mode": "token",
            "token": "new-body-token-0123456789",
            "token_field": "secret_key",
            "previous_tokens": ["old-body-token-0123456789"],
        },
        "reply": {"url": "https://desk.example.com/d/{dialog_id}"},
        "capture_dir": str(tmp_path / "cap"),
    }
    services = make_services(make_config(helpdesks={"g": options}))
    client = create_app(services=services).test_client()
    body = json.dumps({"secret_key": "old-body-token-0123456789", **generic_close("D-7")})

    response = client.post("/webhooks/g", data=body, headers={"Content-Type": "application/json"})

    assert response.json["status"] == "queued"
    [saved] = [p.read_text() for p in (tmp_path / "cap").iterdir()]
    assert "old-body-token" not in saved and json.loads(saved)["secret_key"] == "(token removed)"


def test_inspect_payload_says_which_previous_secret_verified_the_sender(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "helpdesks:\n  dryrun:\n    kind: dryrun\n    auth:\n      mode: token\n"
        "      token: new-dryrun-token-0123\n      previous_tokens: [old-dryrun-token-0123]\n"
    )
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps(generic_close()))
    args = ["-c", str(config), "inspect-payload", "--helpdesk", "dryrun", "--verify"]

    result = CliRunner().invoke(
        main, [*args, "-H", "X-Webhook-Token: old-dryrun-token-0123", str(payload)]
    )

    assert result.exit_code == 0, result.output
    assert "sender: verified by auth.previous_tokens.0 (a previous secret)" in result.output
    assert "old-dryrun-token" not in result.output


# --- the configuration ------------------------------------------------------------------------

# Each adapter's options with one previous secret listed, by the key that lists it.
ROTATED = {
    "chatwoot.previous_webhook_secrets": {**CHATWOOT, "previous_webhook_secrets": ["old-sec"]},
    "chatwoot.previous_webhook_tokens": {
        **CHATWOOT,
        "webhook_token": "new-tok",
        "previous_webhook_tokens": ["old-tok"],
    },
    "zendesk.previous_webhook_secrets": {
        "kind": "zendesk",
        "subdomain": "acme",
        "oauth_token": "o",
        "webhook_secret": "new-sec",
        "previous_webhook_secrets": ["old-sec"],
    },
    "intercom.previous_client_secrets": {
        "kind": "intercom",
        "access_token": "a",
        "client_secret": "new-sec",
        "previous_client_secrets": ["old-sec"],
    },
    "freshdesk.previous_webhook_tokens": {
        "kind": "freshdesk",
        "domain": "acme",
        "api_key": "k",
        "webhook_token": "new-tok",
        "previous_webhook_tokens": ["old-tok"],
    },
    "freshdesk.previous_webhook_passwords": {
        "kind": "freshdesk",
        "domain": "acme",
        "api_key": "k",
        "webhook_username": "u",
        "webhook_password": "new-pw",
        "previous_webhook_passwords": ["old-pw"],
    },
    "helpscout.previous_webhook_secrets": {
        "kind": "helpscout",
        "client_id": "1",
        "client_secret": "s",
        "webhook_secret": "new-sec",
        "previous_webhook_secrets": ["old-sec"],
    },
    "generic.auth.previous_tokens": {
        "kind": "generic",
        "auth": {"mode": "token", "token": "new-tok", "previous_tokens": ["old-tok"]},
        "reply": {"url": "https://desk.example.com/d/{dialog_id}"},
    },
    "generic.auth.previous_secrets": {
        "kind": "generic",
        "auth": {"mode": "hmac", "secret": "new-sec", "previous_secrets": ["old-sec"]},
        "reply": {"url": "https://desk.example.com/d/{dialog_id}"},
    },
}


def _set(options: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return with_previous(options, key, value)


def _key(case: str) -> str:
    return case.partition(".")[2]


@pytest.mark.parametrize("case", sorted(ROTATED))
def test_check_config_warns_while_a_previous_secret_is_listed(case):
    config = load_one(ROTATED[case])
    warned = [w for w in config_warnings(config) if "still accepted" in w]

    assert len(warned) == 1 and warned[0].startswith(f"helpdesks.h.{_key(case)}: ")
    assert "old-" not in warned[0]


@pytest.mark.parametrize("case", sorted(ROTATED))
def test_a_previous_secret_that_is_the_current_one_is_refused_naming_its_index(case):
    options = ROTATED[case]
    current = "new-pw" if "password" in case else "new-tok" if "token" in case else "new-sec"
    with pytest.raises(ConfigError) as raised:
        load_one(_set(options, _key(case), ["old-one", current]))
    assert f"{_key(case).rpartition('.')[2]}.1 is " in raised.value.message
    assert "itself" in raised.value.message


@pytest.mark.parametrize("case", sorted(ROTATED))
@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_previous_secret_is_refused_naming_its_index(case, blank):
    with pytest.raises(ConfigError) as raised:
        load_one(_set(ROTATED[case], _key(case), ["old-one", blank]))
    assert f"{_key(case)}.1: must not be empty" in raised.value.message


def test_previous_secrets_without_a_current_one_are_refused():
    options = {**CHATWOOT, "webhook_token": None, "previous_webhook_tokens": ["old-tok"]}
    with pytest.raises(ConfigError, match="previous_webhook_tokens is set but webhook_token"):
        load_one(options)


def test_a_generic_previous_secret_outside_its_mode_is_refused():
    options = _set(ROTATED["generic.auth.previous_tokens"], "auth.previous_secrets", ["x"])
    with pytest.raises(ConfigError, match="previous_secrets is only read with mode: hmac"):
        load_one(options)


def test_a_previous_secret_given_twice_is_refused():
    with pytest.raises(
        ConfigError, match=r"previous_webhook_secrets.1 is previous_webhook_secrets.0 again"
    ):
        load_one({**CHATWOOT, "previous_webhook_secrets": ["old", "old"]})


def test_at_most_three_previous_secrets_are_kept():
    with pytest.raises(ConfigError, match="previous_webhook_secrets"):
        load_one({**CHATWOOT, "previous_webhook_secrets": ["a", "b", "c", "d"]})


def test_zendesks_public_test_secret_is_no_previous_secret():
    from csat_hook.helpdesks.zendesk import TEST_SIGNING_SECRET

    options = _set(
        ROTATED["zendesk.previous_webhook_secrets"],
        "previous_webhook_secrets",
        [TEST_SIGNING_SECRET],
    )
    with pytest.raises(ConfigError, match=r"previous_webhook_secrets\.0 is Zendesk's public test"):
        load_one(options)


def test_a_help_scout_previous_secret_holds_to_its_40_characters():
    options = _set(
        ROTATED["helpscout.previous_webhook_secrets"], "previous_webhook_secrets", ["x" * 41]
    )
    with pytest.raises(ConfigError, match=r"previous_webhook_secrets\.0: longer than 40"):
        load_one(options)


def test_a_short_generic_previous_secret_is_warned_of_as_the_current_one():
    options = _set(
        ROTATED["generic.auth.previous_tokens"], "auth.previous_tokens", ["o" * 20, "short"]
    )
    options["auth"]["token"] = "n" * 20
    warned = [w for w in config_warnings(load_one(options)) if "can be guessed" in w]
    assert warned == [
        "helpdesks.h.auth.previous_tokens.1: 5 characters: one this short can be guessed; use "
        "at least 16 random characters (32 is usual)"
    ]


def test_a_refused_signature_says_no_more_with_previous_secrets(clock):
    """The 401's reason is the one it was: nothing says whether a previous secret exists."""
    from csat_hook.helpdesks.chatwoot import ChatwootHelpdesk
    from csat_hook.helpdesks.transport import HttpClient

    config = load_one({**CHATWOOT, "previous_webhook_secrets": ["old-cw-secret"]})
    adapter = ChatwootHelpdesk("h", config.helpdesks["h"], http=HttpClient(), clock=clock)
    body = body_of(fixture("chatwoot", "conversation_status_changed_resolved.json"))
    request = WebhookRequest(
        body=body,
        headers={k.lower(): v for k, v in chatwoot_headers(body, UNKNOWN, clock()).items()},
        query={},
        received_at=clock(),
    )
    with pytest.raises(
        InvalidSignatureError, match=r"^X-Chatwoot-Signature does not match the body$"
    ):
        adapter.verify(request)
