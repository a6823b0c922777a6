"""Shared fixtures: a controllable clock, a database per test (SQLite, and PostgreSQL when
``CSAT_TEST_DATABASE_URL`` is set), the app and its client, and a loopback fake helpdesk.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from google.auth.crypt import RSASigner

from csat_hook.app import create_app
from csat_hook.config import Config
from csat_hook.config import load_config
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.services import Services
from csat_hook.services import build_services
from csat_hook.sync import report_step
from csat_hook.sync import summary
from tests import schema_template

PG_ENV = "CSAT_TEST_DATABASE_URL"


def pytest_report_header(config: pytest.Config) -> str:
    if os.environ.get(PG_ENV):
        return f"PostgreSQL tests: on ({PG_ENV} is set)"
    return f"PostgreSQL tests: SKIPPED, {PG_ENV} is not set (e.g. postgresql://postgres@127.0.0.1/test)"


class FakeClock:
    """A settable UTC clock; ``advance`` moves it forward."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# A test process holds a quarter of a million objects the tests never free (modules, the
# collected tests). A sync's full cycle collections (summary.cyclic_gc_paused, one run in
# summary.FULL_COLLECTION_EVERY) walked all of them: 0.15-0.25 s a run, 40 % of the sync
# tests' CPU when every run ended in one. Frozen (gc.freeze), they are not walked; the
# collections still walk everything the test made.
FULL_COLLECTION_EVERY = 20  # tests; frozen garbage is freed then (and when a sync thaws it)
_tests_since_full_collection = 0


@pytest.fixture(autouse=True)
def _collector_walks_only_the_tests_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Freeze what exists before each test, and again after a sync's ingest (which thaws
    every frozen object when it leaves ``cycles_freed_as_made``): the sync's own
    collections run as in production, over the objects made since. Every
    ``FULL_COLLECTION_EVERY`` tests everything is thawed and collected, so the cyclic
    garbage of earlier tests is freed (the syncs' collections used to free it)."""
    global _tests_since_full_collection
    _tests_since_full_collection += 1
    if _tests_since_full_collection >= FULL_COLLECTION_EVERY:
        _tests_since_full_collection = 0
        gc.unfreeze()
        gc.collect()
    gc.freeze()
    thawing = summary.cycles_freed_as_made
    assert report_step.cycles_freed_as_made is thawing  # else this fixture patches nothing

    @contextlib.contextmanager
    def frozen_again(*args: Any, **kwargs: Any) -> Iterator[Callable[[], None]]:
        try:
            with thawing(*args, **kwargs) as free_cycles:
                yield free_cycles
        finally:
            gc.freeze()

    monkeypatch.setattr(report_step, "cycles_freed_as_made", frozen_again)


@pytest.fixture(scope="session", autouse=True)
def _service_account_keys_parsed_once() -> Iterator[None]:
    """Each Google session loads its service account's private key, and cryptography checks
    an RSA key as it loads it (≈ 45 ms for 2048 bits): a fifth of the sync tests' time, for
    the one key they share (whose id the fake derives from it). The signer is the same
    object for the same PEM and id (it holds the key and the id, nothing else); a key that
    fails to load still fails every time."""
    parse = RSASigner.from_string.__func__  # type: ignore[attr-defined]
    once = functools.lru_cache(maxsize=16)(parse)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RSASigner, "from_string", classmethod(once))
        yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private schema on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'csat.sqlite3'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1/test)")
    schema = schema_template.pg_create(base)
    try:
        yield schema_template.schema_url(base, schema)
    finally:
        schema_template.pg_release(base, schema)


@pytest.fixture(scope="session", autouse=True)
def _pooled_schemas_dropped() -> Iterator[None]:
    """The PostgreSQL schemas this process kept for reuse go when its session ends."""
    yield
    schema_template.pg_close()


@pytest.fixture
def migrated_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``database_url`` at the current schema, copied from a template this process migrated
    once (``tests/schema_template.py``); tests about the migrations use ``database_url``."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        schema_template.sqlite_copy(tmp_path_factory.getbasetemp(), database_url)
    else:
        schema = url.query["options"].removeprefix("-csearch_path=")  # type: ignore[union-attr]
        schema_template.pg_fill(os.environ[PG_ENV], schema)
    return database_url


@pytest.fixture
def fake_helpdesk() -> Iterator[FakeHelpdesk]:
    fake = FakeHelpdesk().start()
    yield fake
    fake.stop()


def base_overrides(database_url: str, tmp_path: Path, fake_url: str) -> dict[str, Any]:
    """A complete test configuration: generic and chatwoot pointed at the fake helpdesk."""
    return {
        "database": {"url": database_url},
        "token": {"secret": "test-token-secret-0123456789"},
        "survey": {
            "form": {
                "url": "https://docs.google.com/forms/d/e/1FAIpQLSfTEST/viewform",
                "fields": {
                    "agent_name": "entry.111",
                    "agent_id": "entry.222",
                    "ticket": "entry.333",
                    "token": "entry.444",
                },
            }
        },
        "delivery": {
            "backoff_base_seconds": 0.01,
            "backoff_cap_seconds": 0.05,
            "max_attempts": 5,
            "connect_timeout_seconds": 1,
            "read_timeout_seconds": 2,
            "poll_seconds": 0.2,
            "lease_seconds": 30,
        },
        "helpdesks": {
            "dryrun": {
                "kind": "dryrun",
                "output": str(tmp_path / "dry.jsonl"),
                "auth": {"mode": "token", "token": "dry-token-123"},
            },
            "generic": {
                "kind": "generic",
                "auth": {"mode": "token", "token": "generic-token-123"},
                "reply": {
                    "url": fake_url + "/api/dialogs/{dialog_id}/messages",
                    "headers": {"Authorization": "Bearer generic-api-key"},
                },
            },
            "chatwoot": {
                "kind": "chatwoot",
                "base_url": fake_url,
                "api_access_token": "cw-api-token",
                "webhook_secret": "cw-webhook-secret",
            },
        },
    }


@pytest.fixture
def make_config(
    migrated_url: str, tmp_path: Path, fake_helpdesk: FakeHelpdesk
) -> Callable[..., Config]:
    def build(**sections: Any) -> Config:
        overrides = base_overrides(migrated_url, tmp_path, fake_helpdesk.url)
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(overrides.get(key), dict):
                overrides[key] = {**overrides[key], **value}
            else:
                overrides[key] = value
        return load_config(None, env={}, overrides=overrides)

    return build


@pytest.fixture
def config(make_config: Callable[..., Config]) -> Config:
    return make_config()


@pytest.fixture
def make_services(clock: FakeClock) -> Iterator[Callable[[Config], Services]]:
    built: list[Services] = []

    def build(config: Config) -> Services:
        # Tests that want a timeout script one (their own client, or `responses`). This one is
        # generous because a loaded CI machine once kept a loopback answer past 2 s, and an
        # unknown outcome is rightly left pending, which failed a test about claims.
        http = HttpClient(connect_timeout=5, read_timeout=10, sleep=lambda _s: None)
        services = build_services(config, clock=clock, http=http)
        built.append(services)
        return services

    yield build
    for services in built:
        services.close()  # the writer threads too: each holds its engine for good


@pytest.fixture
def services(config: Config, make_services: Callable[[Config], Services]) -> Services:
    return make_services(config)


@pytest.fixture
def app(services: Services) -> Any:
    flask_app = create_app(services=services)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()
