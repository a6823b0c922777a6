"""Migration 0006 (alerts): replies queued before it stay replies and are delivered; going
back drops the alerts and their deliveries and keeps the replies."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from csat_hook.db import migrate

SURVEY = sa.text(
    "INSERT INTO surveys (helpdesk, dialog_id, occurrence, agent_id, token, status, created_at)"
    " VALUES ('generic', 'OLD-1', '', '7', 'tok-old-1', 'queued', :at) RETURNING id"
)
QUEUED = sa.text(
    "INSERT INTO outbox (kind, delivery_key, alert_id, survey_id, helpdesk, dialog_id,"
    " context, status, attempts, next_attempt_at, created_at, updated_at) VALUES (:kind,"
    " :key, :alert, :survey, 'generic', 'OLD-1', '{}', 'pending', 0, :at, :at, :at)"
)


def test_replies_queued_before_alerts_existed_are_delivered(
    engine, make_config, make_services, fake_helpdesk
):
    migrate.upgrade(engine, "0005")
    created = datetime(2026, 11, 1, 9, 30)
    with engine.begin() as conn:
        survey_id = conn.execute(SURVEY, {"at": created}).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO outbox (survey_id, helpdesk, dialog_id, context, status, attempts,"
                " next_attempt_at, created_at, updated_at)"
                " VALUES (:s, 'generic', 'OLD-1', '{}', 'pending', 0, :at, :at, :at)"
            ),
            {"s": survey_id, "at": created},
        )

    assert migrate.upgrade(engine) == ("0005", migrate.head_revision())
    with engine.connect() as conn:
        kind, key = conn.execute(sa.text("SELECT kind, delivery_key FROM outbox")).one()
    assert (kind, key) == ("reply", None)

    services = make_services(make_config())
    assert services.delivery_worker().run_once() == 1
    assert [r["path"] for r in fake_helpdesk.api_requests()] == ["/api/dialogs/OLD-1/messages"]


def test_down_drops_alerts_and_keeps_replies(engine):
    migrate.upgrade(engine)
    now = datetime(2026, 11, 1, 9, 30)
    with engine.begin() as conn:
        alert_id = conn.execute(
            sa.text(
                "INSERT INTO alerts (key, ref, kind, rule, payload, created_at)"
                " VALUES ('k', 'csat-alert-x', 'answer', 'low', '{}', :at) RETURNING id"
            ),
            {"at": now},
        ).scalar_one()
        survey_id = conn.execute(SURVEY, {"at": now}).scalar_one()
        rows = (("alert", f"{alert_id}:slack", alert_id, None), ("reply", None, None, survey_id))
        for kind, key, alert, survey in rows:
            conn.execute(
                QUEUED, {"kind": kind, "key": key, "alert": alert, "survey": survey, "at": now}
            )
    assert migrate.downgrade(engine, "0005") == "0005"
    assert "alerts" not in sa.inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one() == 1
    assert migrate.upgrade(engine)[1] == migrate.head_revision()
