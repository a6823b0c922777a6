"""The database goes away in the middle of a sync (a restart kills every connection) and
comes back: the next run converges. No answer is lost or counted twice, no alert is queued
twice or lost, and the report is written again in full."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from csat_hook.db.engine import make_engine
from csat_hook.db.schema import alerts
from csat_hook.db.schema import answers
from csat_hook.db.schema import outbox
from csat_hook.sync.runner import SyncRunner
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


class Restarts:
    """A sync engine whose connections are named, and a way to kill them all at once (what
    a PostgreSQL restart does to a running sync's pool), leaving other tests' alone."""

    def __init__(self, kit: Any) -> None:
        self.kit = kit
        self.name = f"csat-sync-restart-{time.monotonic_ns()}"
        url = sa.make_url(kit.database_url).update_query_dict({"application_name": self.name})
        self.engine = make_engine(url.render_as_string(hide_password=False))
        self.admin = sa.create_engine(kit.database_url, poolclass=sa.pool.NullPool)
        self.kills = 0

    def kill(self) -> None:
        with self.admin.begin() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": self.name},
            ).scalar_one()
        assert killed >= 1
        self.kills += 1

    def runner(self, config: Any) -> SyncRunner:
        return SyncRunner(
            config,
            self.engine,
            clock=lambda: self.kit.now,
            sleep=lambda _s: None,
            google_sleep=self.kit.sleeps.append,
        )

    def close(self) -> None:
        self.engine.dispose()
        self.admin.dispose()


@pytest.fixture
def restarts(kit: Any) -> Iterator[Restarts]:
    built = Restarts(kit)
    yield built
    built.close()


def killing_on(
    monkeypatch: pytest.MonkeyPatch, restarts: Restarts, target: Any, name: str, call: int = 1
) -> None:
    """The database restarts as ``target.name`` is called for the ``call``-th time (before
    the call runs: its statements meet a dead connection), once."""
    original = getattr(target, name)
    calls = 0

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call:
            restarts.kill()
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, wrapped)


def seed(kit: Any, n: int) -> None:
    rows = [EN_HEADER]
    for i in range(n):
        token = kit.survey(f"T{i}", "7", "Anna", team="Care")
        when = (kit.now - timedelta(hours=1, minutes=i)).strftime("%m/%d/%Y %H:%M:%S")
        rows.append([when, str(1 + i % 5), f"comment {i}", "", "", token])
    kit.responses(rows, time_zone="UTC")


def alerting(kit: Any, **output: Any) -> Any:
    return kit.config(
        output={"local": {"enabled": True, "csv": True}, **output},
        alerts={
            "destinations": {
                "crm": {"kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret": SECRET},
                "ops": {"kind": "webhook", "url": "http://127.0.0.1:9/ops", "secret": SECRET},
            },
            "rules": [
                {
                    "name": "low",
                    "kind": "low_rating",
                    "max_rating": 2,
                    "destinations": ["crm", "ops"],
                }
            ],
        },
    )


def counts(kit: Any) -> tuple[int, int, int]:
    with kit.engine.connect() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(answers)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(alerts)).scalar_one(),
            conn.execute(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.kind == "alert")
            ).scalar_one(),
        )


def test_a_restart_while_alerts_are_queued_queues_each_once_on_the_next_run(
    kit, restarts, monkeypatch
):
    from csat_hook.alerts import engine as alerts_engine

    config = alerting(kit)
    kit.responses([EN_HEADER], time_zone="UTC")
    assert restarts.runner(config).run().status == "ok"  # the rule is seen from now on
    kit.now += timedelta(hours=2)
    seed(kit, 10)  # ratings 1..5 twice: four low ones
    killing_on(monkeypatch, restarts, alerts_engine, "_fan_out", call=2)
    failed = restarts.runner(config).run()
    assert failed.status == "failed" and "database" in (failed.error or "")
    assert restarts.kills == 1
    assert counts(kit) == (0, 0, 0)  # all or nothing

    again = restarts.runner(config).run()
    assert again.status == "ok", again.error
    assert again.new == 10 and again.alerts["raised"] == {"low": 4}
    assert counts(kit) == (10, 4, 8)
    third = restarts.runner(config).run()
    assert third.status == "ok" and third.new == 0 and third.alerts["raised"] == {}
    assert counts(kit) == (10, 4, 8)


def test_a_restart_between_two_parts_of_the_ingest_stores_nothing_then_everything_once(
    kit, restarts, monkeypatch
):
    from csat_hook.sync import report_step

    config = alerting(kit)
    kit.responses([EN_HEADER], time_zone="UTC")
    assert restarts.runner(config).run().status == "ok"
    kit.now += timedelta(hours=2)
    seed(kit, 10)
    monkeypatch.setattr(report_step, "LOOKED_UP_MAX", 3)  # four parts
    killing_on(monkeypatch, restarts, report_step.ReportStep, "_credit", call=3)
    failed = restarts.runner(config).run()
    assert failed.status == "failed" and restarts.kills == 1
    assert counts(kit) == (0, 0, 0)

    again = restarts.runner(config).run()
    assert again.status == "ok", again.error
    assert (again.new, again.updated) == (10, 0)
    assert counts(kit) == (10, 4, 8)
    assert restarts.runner(config).run().new == 0
    assert counts(kit) == (10, 4, 8)


def sheet_titles(kit: Any) -> list[str]:
    return [tab.title for tab in kit.fake.spreadsheets[SHEET_ID].tabs]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        # After the ingest's commit: the report is read from the database.
        ("csat_hook.sync.report_step:ReportStep", "_read_for_report"),
        ("csat_hook.sync.owned_tabs", "record"),  # the tabs just made, remembered
        ("csat_hook.sync.cache", "set_output_digest"),  # the values just written
        ("csat_hook.alerts.store", "mark_written"),  # the Alerts tab's Handled cells
        ("csat_hook.sync.report_key", "remember"),  # the report's key
    ],
)
def test_a_restart_while_the_report_is_written_is_made_good_by_the_next_run(
    kit, restarts, monkeypatch, module, name
):
    import importlib

    config = alerting(kit)
    kit.responses([EN_HEADER], time_zone="UTC")
    assert restarts.runner(config).run().status == "ok"
    kit.now += timedelta(hours=2)
    seed(kit, 10)
    first = restarts.runner(config).run()
    assert first.status == "ok" and counts(kit) == (10, 4, 8)
    kit.now += timedelta(hours=2)
    more = [EN_HEADER]
    token = kit.survey("LATE", "8", "Boris", team="Care")
    more.append(
        [(kit.now - timedelta(minutes=5)).strftime("%m/%d/%Y %H:%M:%S"), "1", "late", "", "", token]
    )
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", more[1:])
    path, _, attribute = module.partition(":")
    target = importlib.import_module(path)
    killing_on(monkeypatch, restarts, getattr(target, attribute) if attribute else target, name)
    failed = restarts.runner(config).run()
    assert restarts.kills == 1
    assert failed.status == "failed", failed
    monkeypatch.undo()

    again = restarts.runner(config).run()
    assert again.status == "ok", again.error
    assert counts(kit) == (11, 5, 10)
    # No tab made twice, none beside its own as " 2".
    titles = ["Form Responses 1", "Summary", "Trends", "Responses", "Anna (7)", "Boris (8)"]
    assert sorted(sheet_titles(kit)) == sorted([*titles, "Unverified", "Alerts"])
    responses = [row for row in kit.sheet("Responses")[1:] if any(row)]
    assert len(responses) == 11 and any("late" in row for row in responses)
    workbook = load_workbook(kit.tmp_path / "report" / "csat-report.xlsx")
    assert workbook["Responses"].max_row == 12  # the header and every answer
    quiet = restarts.runner(config).run()
    assert quiet.status == "ok" and quiet.report == "unchanged", quiet
