"""The adapter contract, checked over every registered helpdesk type.

For each: a signed close is accepted and queued once; a tampered or unsigned one is refused
with 401 (its ``WWW-Authenticate`` naming what the kind expects) and stores nothing; another
event is answered 200 "ignored"; the queued reply reaches the (fake) vendor API in the
vendor's shape, with a link that decodes to the right agent, ticket and a valid token.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.app import create_app
from csat_hook.db.schema import surveys
from csat_hook.helpdesks import REGISTRY
from csat_hook.helpdesks.base import Helpdesk
from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import load_kits
from tests.helpers import link_fields

KITS = load_kits()
# What each kit's 401 asks for (RFC 9110 15.5.2: a 401 MUST carry a challenge): the way the
# sender proves itself, the helpdesk as realm, the header it goes in; never a secret.
CHALLENGES = {
    "chatwoot": 'Signature realm="chatwoot", header="X-Chatwoot-Signature"',
    "dryrun": 'Token realm="dryrun", header="X-Webhook-Token"',
    "freshdesk": 'Token realm="freshdesk", header="X-Csat-Hook-Token"',
    "generic": 'Signature realm="generic", header="X-Sig"',
    "helpscout": 'Signature realm="helpscout", header="X-HelpScout-Signature"',
    "intercom": 'Signature realm="intercom", header="X-Hub-Signature"',
    "zendesk": 'Signature realm="zendesk", header="X-Zendesk-Webhook-Signature"',
}


def test_every_registered_type_has_a_kit():
    assert set(REGISTRY) == set(KITS), "add tests/helpdesks/<kind>/kit.py for each adapter"


def test_every_adapter_subclasses_the_base_and_has_options():
    for kind, adapter in REGISTRY.items():
        assert issubclass(adapter, Helpdesk)
        assert adapter.kind == kind
        assert adapter.Options.model_fields["kind"].default == kind


def test_adapters_that_support_lookup_implement_it():
    """The outbox asks find_reply only where supports_lookup; those must answer it (#10)."""
    # True on the class for the vendors; a property (true when configured) for generic.
    looking = {kind for kind, adapter in REGISTRY.items() if adapter.supports_lookup is True}
    assert looking == {"chatwoot", "zendesk", "intercom", "freshdesk", "helpscout"}
    for kind in [*looking, "generic", "dryrun"]:  # dryrun: reads its output file back
        assert REGISTRY[kind].find_reply is not Helpdesk.find_reply, kind


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def kit_services(kit, make_config, make_services, fake_helpdesk, tmp_path):
    options = {"kind": kit.kind, **kit.options(fake_helpdesk.url, tmp_path)}
    return make_services(make_config(helpdesks={kit.kind: options}))


def _post(client: Any, kit: Kit, request: tuple[bytes, dict[str, str], dict[str, str]]) -> Any:
    body, headers, query = request
    return client.post(f"/webhooks/{kit.kind}", data=body, headers=headers, query_string=query)


def _surveys(services: Any) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(surveys)).all())


def test_signed_close_is_queued_once_and_delivered_in_vendor_shape(
    kit, kit_services, clock, fake_helpdesk, tmp_path
):
    client = create_app(services=kit_services).test_client()

    first = _post(client, kit, kit.closed(clock()))
    again = _post(client, kit, kit.closed(clock()))

    assert first.status_code == 200 and first.json["status"] == "queued", first.json
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    [survey] = _surveys(kit_services)
    assert survey.dialog_id == kit.dialog_id
    assert kit_services.delivery_worker().run_once() == 1
    kit.check_reply([r for r in fake_helpdesk.api_requests() if r["method"] != "GET"], tmp_path)
    with kit_services.engine.connect() as conn:
        link = conn.execute(sa.select(surveys.c.link)).scalar_one()
    fields = link_fields(link)
    assert fields["entry.333"] == kit.dialog_id
    assert fields["entry.111"] == kit.agent_name
    ref = tokens.verify(fields["entry.444"], kit_services.config.token.all_secrets())
    assert (ref.helpdesk, ref.dialog_id) == (kit.kind, kit.dialog_id)


def test_every_kind_says_what_its_401_expects():
    assert sorted(CHALLENGES) == sorted(REGISTRY)


def test_tampered_close_is_refused(kit, kit_services, clock):
    client = create_app(services=kit_services).test_client()
    response = _post(client, kit, kit.tamper(kit.closed(clock())))

    assert response.status_code == 401 and response.json["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == CHALLENGES[kit.kind]
    assert _surveys(kit_services) == []


def test_unauthenticated_close_is_refused(kit, kit_services, clock):
    client = create_app(services=kit_services).test_client()
    body, _, _ = kit.closed(clock())

    response = _post(client, kit, (body, {"Content-Type": "application/json"}, {}))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGES[kit.kind]
    assert _surveys(kit_services) == []


def test_other_events_are_acknowledged_and_ignored(kit, kit_services, clock):
    client = create_app(services=kit_services).test_client()

    response = _post(client, kit, kit.other(clock()))

    assert response.status_code == 200 and response.json["status"] == "ignored"
    assert _surveys(kit_services) == []
