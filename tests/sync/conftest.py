"""Fixtures for the sync: a loopback fake Google API, a service-account JSON signed with a
fresh RSA key whose token_uri is the fake, surveys in the database, and a runner whose
retry sleeps are recorded instead of slept.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import rsa

from csat_hook import tokens
from csat_hook.config import Config
from csat_hook.config import load_config
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.devtools.fake_google import FakeGoogle
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.intake import store
from csat_hook.sync.runner import SyncRunner
from csat_hook.sync.sources.base import RowParser
from csat_hook.sync.summary import SyncSummary

SECRET = "test-token-secret-0123456789"
SHEET_ID = "1RespOnsesSheet"
HELPDESK = "dryrun"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake_google() -> Iterator[FakeGoogle]:
    fake = FakeGoogle().start()
    yield fake
    fake.stop()


class SyncKit:
    """Builds configurations, surveys and runs against one database and one fake Google."""

    def __init__(
        self, fake: FakeGoogle, database_url: str, tmp_path: Path, key: rsa.RSAPrivateKey
    ) -> None:
        self.fake = fake
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.service_account = fake.service_account_info(key=key)
        self.engine = make_engine(database_url)
        create_schema(self.engine)
        self.sleeps: list[float] = []
        self.now = NOW
        self._nonce = 0

    def config(self, **sections: Any) -> Config:
        """A valid configuration pointed at the fake; ``sections`` are merged over it."""
        base: dict[str, Any] = {
            "database": {"url": self.database_url},
            "token": {"secret": SECRET},
            "google": {
                "service_account_json": json.dumps(self.service_account),
                "sheets_base_url": self.fake.url,
                "forms_base_url": self.fake.url,
                # Three retries that still outlast Google's 60 s quota window (sleeps recorded).
                "max_retries": 3,
                "backoff_base_seconds": 24,
                "backoff_cap_seconds": 96,
            },
            "results": {
                "source": "gsheets",
                "gsheets": {"spreadsheet_id": SHEET_ID, "sheet_gid": 0},
                "columns": {"agent": ["Agent", "Оператор"], "ticket": ["Ticket", "Обращение"]},
            },
            "metrics": {"min_n": 3, "timezone": "UTC"},
            "output": {
                "gsheets": {"enabled": True},
                "local": {"enabled": False, "dir": str(self.tmp_path / "report")},
            },
            "helpdesks": {
                HELPDESK: {
                    "kind": "dryrun",
                    "output": str(self.tmp_path / "dry.jsonl"),
                    "ticket_url_template": "https://desk.example.com/t/{ticket}",
                    "agents": {"42": {"name": "Static Sam"}},
                }
            },
        }
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = _merge(base[key], value)
            else:
                base[key] = value
        return load_config(None, env={}, overrides=base)

    def token(
        self,
        dialog_id: str,
        agent: str,
        issued: datetime | None = None,
        secret: str = SECRET,
        helpdesk: str = HELPDESK,
    ) -> str:
        self._nonce += 1
        ref = tokens.SurveyRef(
            helpdesk,
            dialog_id,
            agent,
            issued or self.now - timedelta(days=1),
            nonce=f"{self._nonce:04x}",
        )
        return tokens.sign(secret, ref)

    def survey(
        self,
        dialog_id: str,
        agent_id: str | None,
        agent_name: str | None = None,
        *,
        team: str | None = None,
        created: datetime | None = None,
        status: str = "sent",
        agent_email: str | None = None,
    ) -> str:
        """Record a sent survey the way intake does; returns its token."""
        created = created or self.now - timedelta(days=1)
        key = agent_id or (agent_email.lower() if agent_email else None) or agent_name or ""
        token = self.token(dialog_id, key, created)
        with self.engine.begin() as conn:
            store.insert_surveys(
                conn,
                [
                    {
                        "helpdesk": HELPDESK,
                        "dialog_id": dialog_id,
                        "occurrence": "",
                        "agent_id": agent_id,
                        "agent_name": agent_name,
                        "agent_email": agent_email,
                        "team": team,
                        "token": token,
                        "status": status,
                        "created_at": created,
                        "sent_at": created if status == "sent" else None,
                    }
                ],
            )
        return token

    def runner(self, config: Config | None = None) -> SyncRunner:
        return SyncRunner(
            config or self.config(),
            self.engine,
            clock=lambda: self.now,
            sleep=lambda _s: None,
            google_sleep=self.sleeps.append,
        )

    def run(self, config: Config | None = None, **kwargs: Any) -> SyncSummary:
        return self.runner(config).run(**kwargs)

    def rows(self, table: sa.Table) -> list[Any]:
        with self.engine.connect() as conn:
            first_column = next(iter(table.c))
            return list(conn.execute(sa.select(table).order_by(first_column)).all())

    def sheet(self, title: str) -> list[list[Any]]:
        return self.fake.cells(SHEET_ID, title)

    def responses(
        self,
        rows: list[list[Any]],
        *,
        title: str = "Form Responses 1",
        locale: str = "en_US",
        time_zone: str = "Europe/Moscow",
        gid: int = 0,
    ) -> None:
        """A fresh spreadsheet holding one responses tab."""
        self.fake.add_spreadsheet(SHEET_ID, locale=locale, time_zone=time_zone)
        self.fake.add_tab(SHEET_ID, title, rows, sheet_id=gid)


def local(serial: float) -> str:
    """A date-time serial as the sheet shows it with our format: ``2026-11-18 10:00``."""
    moment = datetime(1899, 12, 30) + timedelta(days=serial)
    return (moment + timedelta(seconds=30)).strftime("%Y-%m-%d %H:%M")


def leaderboard(cells: list[list[Any]]) -> dict[str, dict[str, Any]]:
    """The Summary's leaderboard as written (row 4 holds its header): agent (or team / "All
    agents") name → header → cell."""
    header = cells[3]
    rows: dict[str, dict[str, Any]] = {}
    for row in cells[4:]:
        if not any(v not in (None, "") for v in row):
            break
        padded = list(row) + [None] * (len(header) - len(row))
        rows[str(padded[1])] = dict(zip(header, padded, strict=True))
    return rows


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def misread(monkeypatch: pytest.MonkeyPatch, wrong: dict[str, int], version: int = 1) -> None:
    """An older reader, simulated: it read the rating texts in ``wrong`` as those scores, and
    stored what it read under an older reading version (``version``: every module that holds
    ``READING_VERSION`` sees it)."""
    from csat_hook.sync import values

    original = values.RatingScale._parse

    def reading(self, value):  # type: ignore[no-untyped-def]
        return wrong[value] if value in wrong else original(self, value)

    monkeypatch.setattr(values.RatingScale, "_parse", reading)
    for name, module in list(sys.modules.items()):
        if name.startswith("csat_hook.") and hasattr(module, "READING_VERSION"):
            monkeypatch.setattr(module, "READING_VERSION", version)


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The refs of the rows parsed, in order."""
    calls: list[str] = []
    original = RowParser.parse

    def counting(self, values, *, ref, headers=(), cells=()):  # type: ignore[no-untyped-def]
        calls.append(ref)
        return original(self, values, ref=ref, headers=headers, cells=cells)

    monkeypatch.setattr(RowParser, "parse", counting)
    return calls


@pytest.fixture
def kit(
    fake_google: FakeGoogle, migrated_url: str, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> Iterator[SyncKit]:
    built = SyncKit(fake_google, migrated_url, tmp_path, rsa_key)
    yield built
    built.engine.dispose()


@pytest.fixture
def receivers(kit: SyncKit) -> Iterator[FakeNotify]:
    """The alert destinations' fakes (Slack, Telegram, webhooks) on loopback, on the kit's
    clock."""
    fake = FakeNotify(now=lambda: kit.now.timestamp()).start()
    yield fake
    fake.stop()


EN_HEADER = ["Timestamp", "Rating", "Comment", "Agent", "Ticket", "Reference"]
RU_HEADER = ["Отметка времени", "Оценка", "Комментарий", "Оператор", "Обращение", "Reference"]


@pytest.fixture
def google_session(fake_google: FakeGoogle, rsa_key: rsa.RSAPrivateKey) -> Any:
    """A GoogleSession on the fake (no database involved); sleeps are recorded."""
    from csat_hook.sync.config import GoogleConfig
    from csat_hook.sync.google.session import SHEETS_SCOPE
    from csat_hook.sync.google.session import build_session

    google = GoogleConfig(
        service_account_json=json.dumps(fake_google.service_account_info(key=rsa_key)),
        sheets_base_url=fake_google.url,
        forms_base_url=fake_google.url,
        max_retries=3,
        backoff_base_seconds=24,
        backoff_cap_seconds=96,
    )
    slept: list[float] = []
    session = build_session(google, [SHEETS_SCOPE], sleep=slept.append)
    session.slept = slept  # type: ignore[attr-defined]
    return session
