"""A reopen delivered before its own close: remembered, it makes the close stale.

No vendor promises that a dialog's reopen is delivered after its close. A reopen that names
a believable time is remembered by dialog (whether or not it cancelled a survey); a close
the helpdesk says happened no later than it (the dialog was reopened after that close) is
recorded as a skipped survey (``reopened_after_close``) and no reply goes out. A close later
than the reopen, or one whose time is unknown or not believed, is surveyed as before. Each
vendor with its own payloads and fields; on the one-statement path (PostgreSQL, no look-back)
and the transaction path (SQLite, or a customer cool-down, whichever database).
"""

from __future__ import annotations

import logging
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db.engine import run_transaction
from csat_hook.db.schema import early_reopens
from csat_hook.db.schema import surveys
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.intake import store
from csat_hook.intake.recorder import _Close
from csat_hook.intake.storable import storable_event
from tests.helpdesks.kits import load_kits
from tests.intake.test_reopen_order import DELAY
from tests.intake.test_reopen_order import VENDORS
from tests.intake.test_reopen_order import Vendor
from tests.intake.test_reopen_order import _post
from tests.intake.test_reopen_order import _statuses

KITS = load_kits()
SKIP = {"status": "skipped", "reason": "reopened_after_close"}
# The send policy's paths: without a look-back a batch is one statement on PostgreSQL; with
# a customer cool-down it is a transaction on both databases.
POLICIES = {"one-statement": {}, "look-back": {"customer_cooldown_days": 30}}


@pytest.fixture(params=["chatwoot", "zendesk-events"])
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return VENDORS[request.param]


@pytest.fixture(params=sorted(POLICIES))
def policy(request: pytest.FixtureRequest) -> dict[str, Any]:
    return POLICIES[request.param]


@pytest.fixture
def services_for(make_config, make_services, fake_helpdesk, tmp_path):
    def build(kind: str, **policy: Any) -> Any:
        options = {"kind": kind, **KITS[kind].options(fake_helpdesk.url, tmp_path)}
        policy = {"send_delay_seconds": DELAY, **policy}
        return make_services(make_config(helpdesks={kind: options}, policy=policy))

    return build


@pytest.fixture
def desk(vendor, policy, services_for):
    return services_for(vendor.kind, **policy)


def _dialog(vendor: Vendor, payload: dict[str, Any], dialog_id: str) -> dict[str, Any]:
    """The payload for another dialog (Chatwoot's conversation id, Zendesk's ticket id)."""
    if vendor.kind == "chatwoot":
        payload["id"] = int(dialog_id)
    else:
        payload["detail"]["id"] = dialog_id
    return payload


def _remembered(services: Any) -> list[tuple[str, str, datetime]]:
    with services.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                early_reopens.c.helpdesk, early_reopens.c.dialog_id, early_reopens.c.reopened_at
            ).order_by(early_reopens.c.dialog_id)
        ).all()
    return [tuple(row) for row in rows]


def _reopen_first(services: Any, vendor: Vendor, reopened_at: datetime) -> None:
    response = _post(services, vendor, vendor.reopen(reopened_at), services.clock())
    assert response.status_code == 200
    assert response.json == {"status": "reopened", "cancelled": 0}, response.json


@pytest.mark.parametrize(
    "reopen_after", [pytest.param(30, id="reopened-later"), pytest.param(0, id="same-time")]
)
def test_a_close_delivered_after_its_reopen_is_skipped(vendor, desk, clock, caplog, reopen_after):
    caplog.set_level(logging.INFO)
    closed_at = clock() - timedelta(seconds=60)
    reopened_at = closed_at + timedelta(seconds=reopen_after)
    _reopen_first(desk, vendor, reopened_at)
    [(helpdesk, dialog_id, remembered)] = _remembered(desk)
    assert (helpdesk, remembered) == (vendor.kind, reopened_at)
    clock.advance(1)

    response = _post(desk, vendor, vendor.close(closed_at), clock())

    assert response.status_code == 200
    assert {k: response.json[k] for k in SKIP} == SKIP
    with desk.engine.connect() as conn:
        row = conn.execute(sa.select(surveys.c.id, surveys.c.dialog_id, surveys.c.skip_reason))
        assert list(row) == [(response.json["survey_id"], dialog_id, "reopened_after_close")]
    assert _statuses(desk) == (["skipped"], [])
    clock.advance(DELAY)
    assert desk.delivery_worker().run_once() == 0
    [line] = [r for r in caplog.records if r.msg == "survey.skipped-reopened-after-close"]
    assert (line.helpdesk, line.reason) == (vendor.kind, "reopened_after_close")
    assert line.survey_id == response.json["survey_id"]
    assert not hasattr(line, "dialog_id")
    # A retry of that close is a duplicate: still no survey.
    assert _post(desk, vendor, vendor.close(closed_at), clock()).json["status"] == "duplicate"


def test_a_close_later_than_the_reopen_is_surveyed(vendor, desk, clock):
    now = clock()
    _reopen_first(desk, vendor, now - timedelta(seconds=60))
    clock.advance(1)

    response = _post(desk, vendor, vendor.close(now - timedelta(seconds=30)), clock())

    assert response.json["status"] == "queued", response.json
    assert _statuses(desk) == (["queued"], ["pending"])


def test_a_later_close_after_a_stale_one_is_surveyed(vendor, desk, clock):
    """Reopened after the first close (delivered first), then closed again: the second close
    re-arms the skipped survey, as one after a reopen that cancelled it does."""
    now = clock()
    _reopen_first(desk, vendor, now - timedelta(seconds=60))
    stale = _post(desk, vendor, vendor.close(now - timedelta(seconds=90)), clock())
    assert {k: stale.json[k] for k in SKIP} == SKIP
    clock.advance(1)

    later = _post(desk, vendor, vendor.close(now - timedelta(seconds=10)), clock())

    assert later.json["status"] == "queued", later.json
    assert later.json["survey_id"] == stale.json["survey_id"]
    assert _statuses(desk) == (["queued"], ["pending"])


@pytest.mark.parametrize("time", ["not-believed", "none"])
def test_a_close_without_a_believable_time_is_surveyed(vendor, desk, clock, time):
    now = clock()
    _reopen_first(desk, vendor, now - timedelta(seconds=60))
    close = vendor.close(now + timedelta(days=400))  # past the clock skew: not believed
    if time == "none":
        if vendor.kind == "chatwoot":
            del close["updated_at"], close["timestamp"]
        else:
            del close["time"], close["detail"]["updated_at"]

    response = _post(desk, vendor, close, clock())

    assert response.json["status"] == "queued", response.json


def test_the_reopen_delivered_twice_is_remembered_once(vendor, desk, clock):
    now = clock()
    reopened_at = now - timedelta(seconds=60)
    _reopen_first(desk, vendor, reopened_at)
    _reopen_first(desk, vendor, reopened_at)
    # An older reopen delivered late does not make the remembered one older.
    _reopen_first(desk, vendor, reopened_at - timedelta(hours=1))
    assert [row[2] for row in _remembered(desk)] == [reopened_at]
    # A newer one does make it newer.
    _reopen_first(desk, vendor, reopened_at + timedelta(seconds=20))
    assert [row[2] for row in _remembered(desk)] == [reopened_at + timedelta(seconds=20)]

    response = _post(desk, vendor, vendor.close(reopened_at + timedelta(seconds=10)), clock())

    assert {k: response.json[k] for k in SKIP} == SKIP


def test_a_remembered_reopen_is_its_dialogs_only(vendor, desk, clock):
    now = clock()
    reopen = _dialog(vendor, vendor.reopen(now - timedelta(seconds=60)), "7001")
    assert _post(desk, vendor, reopen, now).json == {"status": "reopened", "cancelled": 0}
    closed_at = now - timedelta(seconds=90)

    # The reopened dialog's first: a customer cool-down would skip the second close of the
    # customer (one customer in these payloads); a skipped close counts for no cool-down.
    same = _post(desk, vendor, _dialog(vendor, vendor.close(closed_at), "7001"), now)
    other = _post(desk, vendor, _dialog(vendor, vendor.close(closed_at), "7002"), now)

    assert other.json["status"] == "queued", other.json
    assert {k: same.json[k] for k in SKIP} == SKIP
    with desk.engine.connect() as conn:
        found = dict(conn.execute(sa.select(surveys.c.dialog_id, surveys.c.status)).all())
    assert found == {"7001": "skipped", "7002": "queued"}


def test_closes_of_two_dialogs_in_one_batch(vendor, desk, clock):
    """One batch (the group commit's): each close looked up by its own dialog, and the
    stale one counts for no customer cool-down within the batch."""
    now = clock()
    reopen = _dialog(vendor, vendor.reopen(now - timedelta(seconds=60)), "7001")
    assert _post(desk, vendor, reopen, now).json["cancelled"] == 0
    kit = desk.helpdesks[vendor.kind]
    events = []
    for dialog_id in ("7001", "7002"):
        body, headers, query = vendor.signed(
            _dialog(vendor, vendor.close(now - timedelta(seconds=90)), dialog_id), now
        )
        request = WebhookRequest(
            body=body,
            headers={k.lower(): v for k, v in headers.items()},
            query=query,
            received_at=now,
            content_type="application/json",
            path=f"/webhooks/{vendor.kind}",
        )
        events.append(storable_event(kit.parse(request)))
    recorder = desk.intake.recorder
    batch = [_Close(e, f"token-{i}", now, "") for i, e in enumerate(events)]
    # What the group commit's writer runs (one statement, or the transaction's statements).
    results = run_transaction(desk.engine, lambda conn: recorder._write_in(conn, batch))

    assert [r["status"] for r in results] == ["skipped", "queued"]
    assert results[0]["reason"] == "reopened_after_close"


def test_a_reopen_without_a_time_is_not_remembered(vendor, desk, clock):
    assert _post(desk, vendor, vendor.reopen(None), clock()).json["cancelled"] == 0
    assert _remembered(desk) == []
    response = _post(desk, vendor, vendor.close(clock() - timedelta(seconds=60)), clock())
    assert response.json["status"] == "queued"


def test_a_reopen_that_cancelled_a_survey_is_remembered_too(vendor, desk, clock):
    """Closed, closed again and reopened (close 1, reopen 1, close 2, reopen 2), delivered
    close 1, reopen 2, close 2: reopen 2 cancels close 1's survey and is delivered before
    its own close, close 2, which the helpdesk says happened before it. It was remembered
    only when it found nothing to cancel: close 2 re-armed the survey, which went into a
    dialog open again."""
    now = clock()
    first = _post(desk, vendor, vendor.close(now - timedelta(seconds=120)), now)
    assert first.json["status"] == "queued"
    response = _post(desk, vendor, vendor.reopen(now - timedelta(seconds=30)), now)
    assert response.json == {"status": "reopened", "cancelled": 1}
    assert [row[2] for row in _remembered(desk)] == [now - timedelta(seconds=30)]
    clock.advance(1)

    stale = _post(desk, vendor, vendor.close(now - timedelta(seconds=60)), clock())

    assert {k: stale.json.get(k) for k in SKIP} == SKIP, stale.json
    assert _statuses(desk) == (["skipped"], ["cancelled"])
    clock.advance(DELAY)
    assert desk.delivery_worker().run_once() == 0
    # Closed again after that reopen: surveyed.
    later = _post(desk, vendor, vendor.close(now - timedelta(seconds=10)), clock())
    assert later.json["status"] == "queued", later.json
    assert _statuses(desk) == (["queued"], ["pending"])


def test_remembered_reopens_are_pruned_after_a_week(vendor, desk, clock):
    now = clock()
    _reopen_first(desk, vendor, now - timedelta(seconds=60))
    clock.advance(3600)
    newer = _dialog(vendor, vendor.reopen(clock() - timedelta(seconds=60)), "7003")
    assert _post(desk, vendor, newer, clock()).json["cancelled"] == 0
    assert len(_remembered(desk)) == 2
    # Not yet a week: the heartbeat's chore keeps them.
    clock.advance(store.REOPEN_MEMORY.total_seconds() - 3600 - 1)
    desk.delivery_worker().run_once()
    assert len(_remembered(desk)) == 2

    clock.advance(3600)  # the first a week and more ago, the second not
    assert desk.intake.prune_reopens_due() == 1
    assert [row[1] for row in _remembered(desk)] == ["7003"]
    assert desk.intake.prune_reopens_due() == 0  # not due again so soon

    # Forgotten: a close from before that reopen, delivered now, is surveyed as before.
    response = _post(desk, vendor, vendor.close(now - timedelta(seconds=90)), clock())
    assert response.json["status"] == "queued"


def test_without_cancel_on_reopen_nothing_is_remembered(vendor, services_for, clock):
    services = services_for(vendor.kind, cancel_on_reopen=False)
    now = clock()
    response = _post(services, vendor, vendor.reopen(now - timedelta(seconds=60)), now)
    assert response.json == {"status": "reopened", "cancelled": 0}
    assert _remembered(services) == []
    assert (
        _post(services, vendor, vendor.close(now - timedelta(seconds=90)), now).json["status"]
        == "queued"
    )
