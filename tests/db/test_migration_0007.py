"""Migration 0007 (short links' clicks): surveys sent before it keep working (their short link
finds them, clicks are stored); clicks go with their survey; going back drops only the clicks."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import sqlalchemy as sa

from csat_hook.clicks.store import Click
from csat_hook.clicks.store import ClickRecorder
from csat_hook.clicks.store import find_survey
from csat_hook.clicks.store import prune
from csat_hook.db import migrate
from csat_hook.db.schema import link_clicks

NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
SURVEY = sa.text(
    "INSERT INTO surveys (helpdesk, dialog_id, occurrence, agent_id, token, status, created_at)"
    " VALUES ('generic', :dialog, '', '7', :token, 'sent', :at) RETURNING id"
)


def test_surveys_from_before_get_clicks_and_clicks_go_with_their_survey(engine):
    migrate.upgrade(engine, "0006")
    with engine.begin() as conn:
        old = conn.execute(SURVEY, {"dialog": "OLD-1", "token": "tok-1", "at": NOW}).scalar_one()
    assert migrate.upgrade(engine) == ("0006", migrate.head_revision())
    recorder = ClickRecorder(
        lambda: engine, burst_seconds=1, retention=timedelta(days=400), clock=lambda: NOW
    )
    with engine.connect() as conn:
        assert find_survey(conn, "tok-1").id == old
    recorder.record(Click(old, 4, "GET", NOW, False, None, None), timeout=10)
    recorder.record(
        Click(old, 5, "GET", NOW + timedelta(seconds=0.5), False, None, None), timeout=10
    )
    with engine.connect() as conn:
        rows = conn.execute(sa.select(link_clicks.c.automated, link_clicks.c.reason)).all()
    assert sorted(rows) == [(True, "burst"), (True, "burst")]  # two scores within a second
    with engine.begin() as conn:
        assert prune(conn, NOW + timedelta(seconds=0.1)) == 1
        conn.execute(sa.text("DELETE FROM surveys WHERE id = :id"), {"id": old})
    with engine.connect() as conn:  # ON DELETE CASCADE (SQLite: foreign keys are on)
        assert conn.execute(sa.select(sa.func.count()).select_from(link_clicks)).scalar() == 0


def test_down_drops_the_clicks_and_keeps_the_surveys(engine):
    migrate.upgrade(engine)
    with engine.begin() as conn:
        survey = conn.execute(SURVEY, {"dialog": "D-1", "token": "tok-2", "at": NOW}).scalar_one()
        conn.execute(sa.insert(link_clicks).values(survey_id=survey, method="GET", clicked_at=NOW))
    assert migrate.downgrade(engine, "0006") == "0006"
    assert "link_clicks" not in sa.inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM surveys")).scalar_one() == 1
    assert migrate.upgrade(engine)[1] == migrate.head_revision()


def test_a_backlog_of_old_clicks_is_pruned_a_bounded_batch_per_write(engine):
    # retention_days lowered, or a long history: one write deleted every old click inside the
    # transaction that stores customers' clicks (1,000,000 took 1.85 s on SQLite, holding its
    # write lock, against a 2 s wait for the click). Now the oldest batch per write, until done.
    migrate.upgrade(engine)
    with engine.begin() as conn:
        survey = conn.execute(SURVEY, {"dialog": "D-9", "token": "tok-9", "at": NOW}).scalar_one()
        conn.execute(
            sa.insert(link_clicks),
            [
                {
                    "survey_id": survey,
                    "method": "GET",
                    "clicked_at": NOW - timedelta(days=100 - i),  # 100 … 94 days old
                }
                for i in range(7)
            ]
            + [{"survey_id": survey, "method": "GET", "clicked_at": NOW - timedelta(days=5)}],
        )
    now = [NOW]
    recorder = ClickRecorder(
        lambda: engine, burst_seconds=1, retention=timedelta(days=30), clock=lambda: now[0]
    )
    recorder.prune_batch = 3

    def ages() -> list[int]:
        with engine.connect() as conn:
            stamps = conn.execute(sa.select(link_clicks.c.clicked_at)).scalars()
            return sorted((NOW - stamp).days for stamp in stamps)

    def click() -> None:
        now[0] += timedelta(seconds=30)  # well within PRUNE_EVERY
        recorder.record(Click(survey, None, "GET", now[0], False, None, None), timeout=10)

    click()
    assert ages() == [-1, 5, 94, 95, 96, 97]  # the three oldest went; the new click is there
    click()
    assert ages() == [-1, -1, 5, 94]
    click()
    assert ages() == [-1, -1, -1, 5]  # the last old one: a batch not full, the backlog is done
    with engine.begin() as conn:
        conn.execute(
            sa.insert(link_clicks).values(
                survey_id=survey, method="GET", clicked_at=NOW - timedelta(days=60)
            )
        )
    click()
    assert 60 in ages()  # the next prune waits PRUNE_EVERY again
