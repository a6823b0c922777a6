"""Property-based fuzzing of POST /webhooks/<helpdesk>: whatever arrives, no 5xx.

For every registered adapter: random bodies, mutated real close payloads (signed the vendor's
way, so they get past verification and exercise the parser and the store) with hostile values
(NUL characters, lone surrogates, values longer than their columns, integers no float holds,
ids of the wrong type, deep nesting), wrong content types, invalid UTF-8. The answer is always
a 2xx or a 4xx with a JSON reason, and whatever was stored fits its column on both databases.

``HYPOTHESIS_PROFILE=explore`` runs many more (random) examples than CI's fixed-seed profile.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from csat_hook.app import create_app
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from tests.documents import leaves
from tests.documents import replaced
from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import load_kits

settings.register_profile(
    "ci",
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "explore",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

KITS = load_kits()

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=300)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
# Text the database cannot hold as it is, or that does not fit its column.
hostile_text = (
    st.text(
        alphabet=st.sampled_from(["\x00", "\ud800", "\udfff", "ж", "😀", "|", "%", " ", "a", "7"]),
        max_size=60,
    )
    | st.integers(min_value=150, max_value=1200).map(lambda n: "ж|" * n)
    | st.text(max_size=40)
)
hostile_scalars = (
    scalars
    | hostile_text
    | st.sampled_from([10**400, -(10**400), 2**1023, 10**30, 5.0, -0.0, 1.5e300, "1e999", "NaN"])
)


def _nested(levels: int) -> Any:
    value: Any = "\ud800"
    for _ in range(levels):
        value = {"a": value}
    return value


hostile_values = st.recursive(
    hostile_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=20,
) | st.integers(min_value=1, max_value=120).map(_nested)


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def fuzz_client(kit, make_config, make_services, fake_helpdesk, tmp_path):
    options = {"kind": kit.kind, **kit.options(fake_helpdesk.url, tmp_path)}
    services = make_services(
        make_config(helpdesks={kit.kind: options}, server={"max_body_bytes": 65536})
    )
    return create_app(services=services).test_client(), services


def _assert_not_5xx(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.get_data()[:300])
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        assert body is not None and body.get("error") and body.get("reason")


@given(data=st.data())
def test_mutated_close_payloads_never_cause_a_5xx(fuzz_client, kit, clock, data):
    client, services = fuzz_client
    body, _headers, _query = kit.closed(clock())
    # A dialog of its own for every example: each close is stored, not a duplicate.
    payload = kit.with_dialog_id(json.loads(body), f"F{next(_dialogs)}")
    # Values the adapters read are leaves: mutate those (the whole body is fuzzed below).
    paths = [path for path, _ in leaves(payload)]
    mutations = data.draw(st.integers(min_value=1, max_value=4))
    for _ in range(mutations):
        path = data.draw(st.sampled_from(paths))
        payload = replaced(payload, path, data.draw(hostile_text | hostile_values))
    try:  # raw UTF-8 or \u escapes; a lone surrogate can only be sent escaped
        raw = json.dumps(payload, ensure_ascii=data.draw(st.booleans())).encode()
    except UnicodeEncodeError:
        raw = json.dumps(payload).encode()
    signed_body, signed_headers, signed_query = kit.sign(raw, clock())
    response = client.post(
        f"/webhooks/{kit.kind}", data=signed_body, headers=signed_headers, query_string=signed_query
    )
    _assert_not_5xx(response)
    _assert_stored_values_fit(services)


def _assert_stored_values_fit(services: Any) -> None:
    """Every stored text: no NUL, no lone surrogate, within its column's size."""
    with services.engine.connect() as conn:
        for table in (surveys, outbox):
            for row in conn.execute(sa.select(table)):
                for column in table.c:
                    value = row._mapping[column.name]
                    if isinstance(value, str):
                        assert "\x00" not in value and not _SURROGATE.search(value)
                        limit = getattr(column.type, "length", None)
                        assert limit is None or len(value) <= limit, (column.name, len(value))


# A lone surrogate, or the stand-in the parser reads one as (helpdesks/records.py).
_SURROGATE = re.compile("[\ud800-\udfff\U0010f800-\U0010ffff]")
_dialogs = itertools.count()


@given(
    body=st.binary(max_size=2000),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/xml",
        ]
    ),
)
def test_random_signed_bodies_never_cause_a_5xx(fuzz_client, kit, clock, body, content_type):
    client, _ = fuzz_client
    signed_body, headers, query = kit.sign(body, clock())
    headers = {**headers, "Content-Type": content_type}
    response = client.post(
        f"/webhooks/{kit.kind}", data=signed_body, headers=headers, query_string=query
    )
    _assert_not_5xx(response)


@given(
    headers=st.dictionaries(
        st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,30}\Z"),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
        max_size=6,
    ),
    body=json_values,
)
def test_unauthenticated_requests_are_refused_without_a_5xx(fuzz_client, kit, headers, body):
    client, _services = fuzz_client
    response = client.post(f"/webhooks/{kit.kind}", data=json.dumps(body), headers=headers)
    _assert_not_5xx(response)
    assert response.status_code in (200, 400, 401)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,  # deep nesting
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"event": "dialog.closed", "dialog": {"id": ' + b"9" * 20_000 + b"}}",  # huge number
        b'{"event": "dialog.closed", "dialog": {"id": 1e999}}',
        b'{"event": "dialog.closed", "dialog": {"id": "\xff\xfe"}}',  # invalid UTF-8
        b'{"event": "dialog.closed", "dialog": {"id": "\\ud800"}}',  # lone surrogate
        b'{"a":' * 600 + b'"\\ud800"' + b"}" * 600,  # deep, and a lone surrogate to replace
        b'{"event": "dialog.closed", "dialog": {"id": true}}',
        b'{"event": "dialog.closed", "dialog": {"id": 5.0}, "updated_at": 1' + b"0" * 400 + b"}",
        b'{"event": "dialog.closed", "dialog": {"id": "a\\u0000b"}, "time": 1e400}',
        b'{"event": "dialog.closed", "dialog": {"id": "' + b"x" * 60_000 + b'"}}',
        b"\x00" * 1000,
    ],
)
def test_hostile_bodies_get_a_4xx_or_are_ignored(fuzz_client, kit, clock, body):
    client, _ = fuzz_client
    signed_body, headers, query = kit.sign(body, clock())
    response = client.post(
        f"/webhooks/{kit.kind}", data=signed_body, headers=headers, query_string=query
    )
    _assert_not_5xx(response)


def test_long_values_fit_the_store(fuzz_client, kit, clock):
    """Every field at an absurd length: stored (truncated) or refused, never a database error."""
    client, _ = fuzz_client
    body, _, _ = kit.closed(clock())
    payload = json.loads(body)
    for path, current in leaves(payload):
        if isinstance(current, str | int) and not isinstance(current, bool):
            payload = replaced(payload, path, str(current) + "ж" * 3000)
    signed_body, headers, query = kit.sign(json.dumps(payload).encode(), clock())
    response = client.post(
        f"/webhooks/{kit.kind}", data=signed_body, headers=headers, query_string=query
    )
    _assert_not_5xx(response)
