"""Clicks older than ``survey.links.retention_days`` are deleted while no click arrives: the
delivery worker (every deployment runs one) prunes them on its heartbeat, in bounded batches,
and queries nothing between prunes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.clicks.store import PRUNE_EVERY
from csat_hook.db.schema import link_clicks
from tests.clicks.conftest import survey_section

SURVEY = sa.text(
    "INSERT INTO surveys (helpdesk, dialog_id, occurrence, agent_id, token, status, created_at)"
    " VALUES ('generic', 'D-1', '', '7', 'tok-1', 'sent', :at) RETURNING id"
)


@pytest.fixture
def kept(make_config, make_services, clock):
    """Services keeping clicks 30 days, and ``add(*days_old)`` storing clicks that old."""
    services = make_services(make_config(survey=survey_section(retention_days=30)))
    with services.engine.begin() as conn:
        survey = conn.execute(SURVEY, {"at": clock()}).scalar_one()

    def add(*days_old: float) -> None:
        with services.engine.begin() as conn:
            conn.execute(
                sa.insert(link_clicks),
                [
                    {
                        "survey_id": survey,
                        "method": "GET",
                        "clicked_at": clock() - timedelta(days=age),
                    }
                    for age in days_old
                ],
            )

    return services, add


def ages(services: Any, clock: Any) -> list[int]:
    with services.engine.connect() as conn:
        stamps = conn.execute(sa.select(link_clicks.c.clicked_at)).scalars()
        return sorted((clock() - stamp).days for stamp in stamps)


def test_a_running_worker_deletes_clicks_past_retention_without_a_new_click(kept, clock):
    services, add = kept
    add(400, 31, 29, 1)
    worker = services.delivery_worker()
    worker.start(1)  # its first heartbeat runs before start returns
    try:
        assert ages(services, clock) == [1, 29]
    finally:
        worker.stop()


def test_worker_once_prunes_a_backlog_a_batch_per_run_then_waits(kept, clock):
    # `worker --once` from cron runs the chores as a heartbeat would.
    services, add = kept
    services.short_links.recorder.prune_batch = 2
    add(90, 80, 70, 60, 50, 2)
    worker = services.delivery_worker()
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "link_clicks" in statement:
            statements.append(statement)

    sa.event.listen(services.engine, "before_cursor_execute", seen)
    worker.run_once()
    assert ages(services, clock) == [2, 50, 60, 70]  # the oldest batch
    clock.advance(1)
    worker.run_once()  # a full batch went: more may be left, pruned at once
    assert ages(services, clock) == [2, 50]
    clock.advance(1)
    worker.run_once()
    assert ages(services, clock) == [2]  # a batch not full: the backlog is done
    add(45)
    statements.clear()
    clock.advance(PRUNE_EVERY.total_seconds() - 10)
    worker.run_once()
    assert statements == []  # nothing due: not one query about clicks
    assert ages(services, clock) == [2, 45]
    clock.advance(10)
    worker.run_once()
    assert ages(services, clock) == [2]
