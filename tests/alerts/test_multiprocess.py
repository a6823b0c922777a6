"""A delivery worker SIGKILLed while its alerts are in flight (the receivers took them and
had not answered yet): a new worker takes them over and nothing reaches a receiver twice.
Slack cannot be asked, so its alert is recorded as sent, unconfirmed; the note is found by its
"Alert ref:" line; the webhook is sent again and dropped by the receiver (same id)."""

from __future__ import annotations

import base64
import time
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from csat_hook.config import load_config
from csat_hook.db.schema import outbox
from csat_hook.devtools.fake_helpdesk import FakeHelpdesk
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.devtools.fake_notify import Script
from csat_hook.services import build_services
from tests.alerts.conftest import changed
from tests.alerts.conftest import generic_notes
from tests.alerts.conftest import raise_now
from tests.cluster import LocalCluster

pytestmark = pytest.mark.slow
SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
HELD = 3.5  # each receiver takes the request, then answers this much later


def write_config(tmp_path: Path, url: str, helpdesk: FakeHelpdesk, fake: FakeNotify) -> Path:
    config = {
        "database": {"url": url},
        "token": {"secret": "cluster-token-secret-0123456789"},
        "delivery": {
            "backoff_base_seconds": 0.05,
            "backoff_cap_seconds": 0.5,
            "max_attempts": 20,
            "poll_seconds": 0.5,
            "concurrency": 4,
            "connect_timeout_seconds": 0.5,
            "read_timeout_seconds": 3,
            "lease_seconds": 15,
            "heartbeat_seconds": 0.2,
            "worker_dead_after_seconds": 1,
            "settle_seconds": 3,
        },
        "helpdesks": {"generic": generic_notes(helpdesk.url)},
        "alerts": {
            "destinations": {
                "slack": {"kind": "slack", "webhook_url": fake.slack_hook()},
                "crm": {"kind": "webhook", "url": fake.webhook("crm", SECRET), "secret": SECRET},
                "note": {"kind": "helpdesk_note"},
            },
            "rules": [
                {
                    "name": "low",
                    "kind": "low_rating",
                    "max_rating": 2,
                    "destinations": ["slack", "crm", "note"],
                }
            ],
        },
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def statuses(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(outbox.c.destination, outbox.c.status).where(outbox.c.kind == "alert")
        )
        return {destination: status for destination, status in rows}


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_sigkill_mid_send_never_sends_an_alert_twice(database_url, tmp_path):
    helpdesk = FakeHelpdesk().start()
    fake = FakeNotify().start()
    path = write_config(tmp_path, database_url, helpdesk, fake)
    config = load_config(path, env={})
    services = build_services(config, clock=lambda: datetime.now(UTC))
    cluster = LocalCluster(path, tmp_path, database_url=database_url)
    try:
        raise_now(services, [changed(submitted_at=datetime.now(UTC))])
        fake.script("slack", Script(delay=HELD))
        fake.script("webhook", Script(delay=HELD))
        helpdesk.delay_next(1, seconds=HELD)  # the note is stored on arrival, answered late

        victim = cluster.start_worker()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            fake.requests("slack") and fake.requests("webhook") and helpdesk.api_requests()
        ):
            time.sleep(0.01)
        cluster.kill(victim)
        assert statuses(services.engine) == dict.fromkeys(("slack", "crm", "note"), "sending")

        cluster.start_worker()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and set(statuses(services.engine).values()) != {"sent"}:
            time.sleep(0.2)
        time.sleep(HELD)  # a late copy would have arrived by now

        assert set(statuses(services.engine).values()) == {"sent"}
        assert len(fake.requests("slack")) == 1  # not sent again: Slack cannot be asked
        assert len(fake.requests("webhook")) == 2  # sent again with the same id...
        assert len(fake.delivered("webhook")) == 1  # ...and dropped by the receiver
        notes = [r for r in helpdesk.api_requests() if r["method"] == "POST"]
        assert len(notes) == 1  # looked up and found, not posted again
        with services.engine.connect() as conn:
            errors = dict(
                conn.execute(
                    sa.select(outbox.c.destination, outbox.c.last_error).where(
                        outbox.c.kind == "alert"
                    )
                ).all()
            )
        assert errors["slack"].startswith("outcome unknown, not sent again")
        assert errors["note"].startswith("found in the dialog")
        assert "same id" in errors["crm"]
    finally:
        cluster.stop()
        services.close()
        fake.stop()
        helpdesk.stop()
