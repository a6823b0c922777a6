"""A reopen cancels the waiting survey only when it is not known to be older than the close.

Vendors deliver and retry webhooks out of order: a reopen that happened before the close but
arrives after it says nothing about that close, whose survey must still go out. A reopen as
new as the close or newer, or one whose time the payload does not give (or gives wrong),
cancels it, as every reopen did before. Each vendor with times in its payloads, with its own
fields: the close's time and the reopen's are both the vendor's word.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.app import create_app
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.intake.storable import trusted_reopen_time
from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import load_kits
from tests.helpers import body_of
from tests.helpers import fixture
from tests.helpers import generic_close

KITS = load_kits()
DELAY = 8  # policy.send_delay_seconds, as in the probe that found it


def _unix(when: datetime) -> float:
    return when.timestamp()


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- each vendor's close and reopen, at a given time (None: the payload names no time) ---


def _chatwoot_close(at: datetime) -> dict[str, Any]:
    payload = fixture("chatwoot", "conversation_status_changed_resolved.json")
    payload["updated_at"] = _unix(at)
    payload["timestamp"] = payload["last_activity_at"] = int(_unix(at)) - 30
    return payload


def _chatwoot_reopen(at: datetime | None) -> dict[str, Any]:
    payload = fixture("chatwoot", "conversation_status_changed_reopened.json")
    # The last activity (a message before the close) is no reopen time: an agent's reopen
    # is no activity. Without updated_at the reopen names no time.
    payload["timestamp"] = payload["last_activity_at"] = int(_unix(at or NOW)) - 3600
    if at is None:
        del payload["updated_at"]
    else:
        payload["updated_at"] = _unix(at)
    return payload


def _intercom_close(at: datetime) -> dict[str, Any]:
    payload = fixture("intercom", "conversation.admin.closed.v1.json")
    item = payload["data"]["item"]
    item["conversation_parts"]["conversation_parts"][0]["created_at"] = int(_unix(at))
    item["updated_at"] = payload["created_at"] = int(_unix(at))
    return payload


def _intercom_reopen(at: datetime | None) -> dict[str, Any]:
    payload = fixture("intercom", "conversation.admin.opened.json")
    item = payload["data"]["item"]
    [part] = item["conversation_parts"]["conversation_parts"]  # assign_and_reopen
    if at is None:
        del part["created_at"], item["updated_at"], payload["created_at"]
    else:
        part["created_at"] = item["updated_at"] = payload["created_at"] = int(_unix(at))
    return payload


def _zendesk_close(at: datetime) -> dict[str, Any]:
    payload = fixture("zendesk", "ticket_status_changed_solved.json")
    payload["time"] = payload["detail"]["updated_at"] = _iso(at)
    return payload


def _zendesk_reopen(at: datetime | None) -> dict[str, Any]:
    payload = fixture("zendesk", "ticket_status_changed_reopened.json")
    if at is None:
        del payload["time"], payload["detail"]["updated_at"]
    else:
        payload["time"] = payload["detail"]["updated_at"] = _iso(at)
    return payload


def _zendesk_trigger_close(at: datetime) -> dict[str, Any]:
    payload = fixture("zendesk", "trigger_solved.json")
    payload["ticket"]["updated_at"] = _iso(at)
    return payload


def _zendesk_trigger_reopen(at: datetime | None) -> dict[str, Any]:
    payload = fixture("zendesk", "trigger_reopened.json")
    if at is None:
        del payload["ticket"]["updated_at"]
    else:
        payload["ticket"]["updated_at"] = _iso(at)
    return payload


def _helpscout_close(at: datetime) -> dict[str, Any]:
    payload = fixture("helpscout", "convo.status.closed.json")
    payload["closedAt"] = payload["userUpdatedAt"] = _iso(at)
    return payload


def _helpscout_reopen(at: datetime | None) -> dict[str, Any]:
    payload = fixture("helpscout", "convo.status.active.json")
    if at is None:
        del payload["userUpdatedAt"], payload["customerWaitingSince"]
    else:
        # Reopened by hand: the customer has been waiting since before the close.
        payload["userUpdatedAt"] = _iso(at)
        payload["customerWaitingSince"]["time"] = _iso(at - timedelta(hours=2))
    return payload


def _generic_close(at: datetime) -> dict[str, Any]:
    return generic_close("D-2", closed_at=_iso(at))


def _generic_reopen(at: datetime | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"event": "dialog.reopened", "dialog": {"id": "D-2"}}
    if at is not None:
        payload["reopened_at"] = int(_unix(at) * 1000)  # milliseconds, as Crisp's are
    return payload


# The generic adapter's close and reopen times: mapped (mapping.close_time, reopen_time).
GENERIC_TIMES = {"close_time": "closed_at", "reopen_time": "reopened_at"}


@dataclass(frozen=True)
class Vendor:
    kind: str
    close: Callable[[datetime], dict[str, Any]]
    reopen: Callable[[datetime | None], dict[str, Any]]
    mapping: dict[str, str] | None = None

    @property
    def kit(self) -> Kit:
        return KITS[self.kind]

    def signed(self, payload: dict[str, Any], now: datetime) -> tuple[bytes, dict, dict]:
        return self.kit.sign(body_of(payload), now)  # Help Scout's: a convo.status event


VENDORS = {
    "chatwoot": Vendor("chatwoot", _chatwoot_close, _chatwoot_reopen),
    "intercom": Vendor("intercom", _intercom_close, _intercom_reopen),
    "zendesk-events": Vendor("zendesk", _zendesk_close, _zendesk_reopen),
    "zendesk-trigger": Vendor("zendesk", _zendesk_trigger_close, _zendesk_trigger_reopen),
    "helpscout": Vendor("helpscout", _helpscout_close, _helpscout_reopen),
    "generic": Vendor("generic", _generic_close, _generic_reopen, GENERIC_TIMES),
}

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # the FakeClock's start


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> Vendor:
    return VENDORS[request.param]


@pytest.fixture
def services_for(make_config, make_services, fake_helpdesk, tmp_path):
    """Services with one vendor (its kit's options) and the probe's delay, or ``policy``."""

    def build(kind: str, mapping: dict[str, str] | None = None, **policy: Any) -> Any:
        options = {"kind": kind, **KITS[kind].options(fake_helpdesk.url, tmp_path)}
        if mapping:
            options["mapping"] = {**options.get("mapping", {}), **mapping}
        policy = {"send_delay_seconds": DELAY, **policy}
        return make_services(make_config(helpdesks={kind: options}, policy=policy))

    return build


@pytest.fixture
def desk(vendor, services_for):
    return services_for(vendor.kind, vendor.mapping)


def _post(services: Any, vendor: Vendor, payload: dict[str, Any], now: datetime) -> Any:
    client = create_app(services=services).test_client()
    body, headers, query = vendor.signed(payload, now)
    return client.post(f"/webhooks/{vendor.kind}", data=body, headers=headers, query_string=query)


def _statuses(services: Any) -> tuple[list[str], list[str]]:
    with services.engine.connect() as conn:
        return (
            list(conn.execute(sa.select(surveys.c.status)).scalars()),
            list(conn.execute(sa.select(outbox.c.status)).scalars()),
        )


def _closed_then_reopened(
    services: Any, vendor: Vendor, clock: Any, reopened_at: datetime | None
) -> Any:
    closed_at = clock() - timedelta(seconds=5)
    queued = _post(services, vendor, vendor.close(closed_at), clock())
    assert queued.status_code == 200 and queued.json["status"] == "queued", queued.json
    clock.advance(1)
    if reopened_at is not None:
        reopened_at = closed_at + (reopened_at - NOW)  # relative to the close
    response = _post(services, vendor, vendor.reopen(reopened_at), clock())
    assert response.status_code == 200, response.json
    return response


def test_a_reopen_older_than_the_close_leaves_its_survey_to_be_sent(
    vendor, desk, clock, fake_helpdesk, tmp_path
):
    # Reopened a minute before the close, delivered after it.
    response = _closed_then_reopened(desk, vendor, clock, NOW - timedelta(seconds=55))

    # Said, not only "cancelled: 0": the survey was kept because the reopen is older.
    assert response.json == {
        "status": "reopened",
        "cancelled": 0,
        "kept_older_than_close": 1,
        "reason": "the reopen is older than the close of 1 waiting survey: kept",
    }
    assert _statuses(desk) == (["queued"], ["pending"])
    clock.advance(DELAY)
    assert desk.delivery_worker().run_once() == 1
    vendor.kit.check_reply(
        [r for r in fake_helpdesk.api_requests() if r["method"] != "GET"], tmp_path
    )
    assert _statuses(desk) == (["sent"], ["sent"])


@pytest.mark.parametrize(
    "after",
    [
        pytest.param(timedelta(seconds=3), id="newer"),
        pytest.param(timedelta(0), id="same-time"),
        pytest.param(None, id="no-time"),
        pytest.param(timedelta(days=3650), id="time-in-the-future"),  # not believed
    ],
)
def test_a_reopen_not_known_to_be_older_cancels_the_waiting_survey(vendor, desk, clock, after):
    reopened_at = None if after is None else NOW + after
    response = _closed_then_reopened(desk, vendor, clock, reopened_at)

    assert response.json == {"status": "reopened", "cancelled": 1}
    assert _statuses(desk) == (["cancelled"], ["cancelled"])
    clock.advance(DELAY)
    assert desk.delivery_worker().run_once() == 0


def test_freshdesk_names_no_time_so_its_reopens_still_cancel(services_for, clock):
    kit, services = KITS["freshdesk"], services_for("freshdesk")
    client = create_app(services=services).test_client()
    body, headers, _ = kit.closed(clock())
    assert client.post("/webhooks/freshdesk", data=body, headers=headers).json["status"] == (
        "queued"
    )
    body = body_of(fixture("freshdesk", "automation_reopened.json"))
    response = client.post("/webhooks/freshdesk", data=body, headers=headers)

    assert response.json == {"status": "reopened", "cancelled": 1}
    assert _statuses(services) == (["cancelled"], ["cancelled"])


def test_a_close_whose_time_was_not_believed_is_cancelled_by_any_reopen(services_for, clock):
    """Every time of the close wrong (year 5138): intake records the receive time, the latest
    the close can have happened, not when it did. A reopen a minute before that receive time
    may still have come after the close: it cancels."""
    services, vendor = services_for("chatwoot"), VENDORS["chatwoot"]
    close = _chatwoot_close(clock())
    close["updated_at"] = close["timestamp"] = close["last_activity_at"] = 99_999_999_999
    assert _post(services, vendor, close, clock()).json["status"] == "queued"
    clock.advance(1)

    response = _post(services, vendor, _chatwoot_reopen(clock() - timedelta(seconds=60)), clock())

    assert response.json == {"status": "reopened", "cancelled": 1}


def test_a_reopen_with_one_time_in_the_future_cancels(services_for, clock):
    """Help Scout: an agent's update an hour ahead (not believed) and a customer waiting since
    before the close: the reopen's time is unknown, not the older of the two."""
    services, vendor = services_for("helpscout"), VENDORS["helpscout"]
    close = _helpscout_close(clock() - timedelta(seconds=5))
    assert _post(services, vendor, close, clock()).json["status"] == "queued"
    reopen = _helpscout_reopen(clock() + timedelta(hours=1))

    assert _post(services, vendor, reopen, clock()).json == {"status": "reopened", "cancelled": 1}


def test_a_customer_reply_reopen_is_as_late_as_the_customers_wait(services_for, clock):
    """Help Scout: closed by a workflow (no agent's update since an hour before), reopened by
    the customer's reply: userUpdatedAt is older than the close, customerWaitingSince is the
    reply. The later of the two is the reopen's time: it cancels."""
    services, vendor = services_for("helpscout"), VENDORS["helpscout"]
    close = _helpscout_close(clock() - timedelta(seconds=5))
    close["userUpdatedAt"] = _iso(clock() - timedelta(hours=1))
    assert _post(services, vendor, close, clock()).json["status"] == "queued"
    clock.advance(1)
    reopen = _helpscout_reopen(clock() - timedelta(hours=1))
    reopen["customerWaitingSince"]["time"] = _iso(clock())

    assert _post(services, vendor, reopen, clock()).json == {"status": "reopened", "cancelled": 1}


def test_a_reopen_between_two_closes_cancels_only_the_earlier_ones_survey(services_for, clock):
    """per_dialog: every_close, two closes waiting out the delay: a reopen delivered after
    both, which happened between them, cancels the first close's survey and not the second's."""
    vendor = VENDORS["chatwoot"]
    services = services_for(
        "chatwoot", per_dialog="every_close", send_delay_seconds=600, reclose_grace_seconds=0
    )
    first = _post(services, vendor, _chatwoot_close(clock() - timedelta(seconds=120)), clock())
    second = _post(services, vendor, _chatwoot_close(clock() - timedelta(seconds=5)), clock())
    assert (first.json["status"], second.json["status"]) == ("queued", "queued")
    clock.advance(1)

    response = _post(services, vendor, _chatwoot_reopen(clock() - timedelta(seconds=60)), clock())

    assert response.json["cancelled"] == 1 and response.json["kept_older_than_close"] == 1
    with services.engine.connect() as conn:
        found = dict(conn.execute(sa.select(surveys.c.id, surveys.c.status)).all())
    assert found == {first.json["survey_id"]: "cancelled", second.json["survey_id"]: "queued"}


def test_a_kept_survey_is_logged_without_the_senders_text(services_for, clock, caplog):
    caplog.set_level(logging.DEBUG)
    services, vendor = services_for("chatwoot"), VENDORS["chatwoot"]
    close = _chatwoot_close(clock() - timedelta(seconds=5))
    assert _post(services, vendor, close, clock()).json["status"] == "queued"
    clock.advance(1)
    _post(services, vendor, _chatwoot_reopen(clock() - timedelta(seconds=60)), clock())

    [kept] = [r for r in caplog.records if r.msg == "survey.kept-on-reopen"]
    assert (kept.helpdesk, kept.count, kept.reason) == ("chatwoot", 1, "reopen_older_than_close")
    assert not hasattr(kept, "dialog_id")
    assert not [r for r in caplog.records if r.msg == "survey.cancelled-on-reopen"]


def test_a_generic_reopen_without_time_mappings_cancels_as_before(services_for, clock):
    """Unmapped (the default), the generic adapter's close and reopen name no time: a late
    reopen cancels the newer close's survey, as every reopen did before times were read."""
    services, vendor = services_for("generic"), VENDORS["generic"]
    close = _generic_close(clock() - timedelta(seconds=5))
    assert _post(services, vendor, close, clock()).json["status"] == "queued"
    clock.advance(1)
    reopen = _generic_reopen(clock() - timedelta(seconds=60))
    assert _post(services, vendor, reopen, clock()).json == {"status": "reopened", "cancelled": 1}


def test_the_reopen_time_is_the_latest_believable_one_or_unknown():
    received = NOW
    minute = timedelta(minutes=1)
    naive = (NOW - minute).replace(tzinfo=None)  # read as UTC
    assert trusted_reopen_time((), received) is None
    assert trusted_reopen_time((NOW - 2 * minute, naive), received) == NOW - minute
    # A 0 or a default is passed over; nothing left is unknown.
    zero = datetime(1970, 1, 1, tzinfo=UTC)
    assert trusted_reopen_time((zero, NOW - 2 * minute), received) == NOW - 2 * minute
    assert trusted_reopen_time((zero,), received) is None
    # The helpdesk's clock a little ahead is believed; a time past the skew makes it unknown
    # (never the older of the others: a survey would go into a reopened dialog).
    assert trusted_reopen_time((NOW + 4 * minute,), received) == NOW + 4 * minute
    assert trusted_reopen_time((NOW - 9 * minute, NOW + 6 * minute), received) is None
