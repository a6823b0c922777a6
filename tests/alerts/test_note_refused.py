"""A delivery that reaches a ``helpdesk_note`` destination at its claim which cannot take its
alert is cancelled, saying why, not failed: nothing went wrong with the destination, the
alert was never for a note. That happens when the notice of ``alerts.cap_per_hour`` is queued
to a note destination, when the destination became a note under the same name after the alert
was queued (a webhook's notice, a digest), or when a configuration newer than the worker's
queued it (a hand-run ``csat-hook sync``: the worker's recheck judges only what was raised
before its own configuration was loaded). SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from csat_hook.alerts.report import delivery_text
from csat_hook.db.schema import alerts
from csat_hook.devtools.fake_notify import Script
from tests.alerts.conftest import alerts_section
from tests.alerts.conftest import changed
from tests.alerts.conftest import generic_notes
from tests.alerts.conftest import raise_now
from tests.alerts.test_delivery import notes
from tests.alerts.test_delivery import rows
from tests.outbox.test_worker import drain


def notices(services: Any) -> list[Any]:
    """The deliveries of cap notices (their delivery key's alert is the notice)."""
    with services.engine.connect() as conn:
        ids = {
            row.id for row in conn.execute(alerts.select().where(alerts.c.kind == "overflow")).all()
        }
    return [row for row in rows(services) if row.alert_id in ids]


def test_a_cap_notice_queued_to_a_note_destination_is_cancelled_not_failed(
    make_config, make_services, fake_notify, fake_helpdesk, alerting, clock
):
    """Over the cap, the note destination is told as every destination is: the notice is about
    no conversation, so no note can carry it."""
    section = alerts_section(fake_notify, cap_per_hour=1)
    section["rules"][0]["destinations"] = ["note"]
    services = make_services(
        make_config(alerts=section, helpdesks={"generic": generic_notes(fake_helpdesk.url)})
    )
    outcome = raise_now(
        services, [changed(survey_key="s1"), changed(survey_key="s2", dialog_id="D-1002")]
    )
    assert outcome.raised == {"low": 2, "cap_per_hour": 1}

    drain(services.delivery_worker(), clock)

    [notice] = notices(services)
    assert notice.status == "cancelled"
    assert delivery_text(notice) == "note: cancelled (not for this destination)"
    assert notice.last_error == (
        "cancelled: not_for_this_destination; only an alert about one answer can be noted "
        "in its conversation"
    )
    assert len(notes(fake_helpdesk)) == 1  # the first alert, under the cap
    assert "failed" not in {row.status for row in rows(services)}


def test_a_destination_made_a_note_under_its_name_cancels_what_it_cannot_carry(
    make_config, make_services, fake_notify, fake_helpdesk, alerting, clock
):
    """``crm`` was a webhook when the cap notice was queued to it, and is a note now."""
    section = alerts_section(fake_notify, cap_per_hour=1)
    section["rules"][0]["destinations"] = ["crm"]
    before = make_services(
        make_config(alerts=section, helpdesks={"generic": generic_notes(fake_helpdesk.url)})
    )
    raise_now(before, [changed(survey_key="s1"), changed(survey_key="s2", dialog_id="D-1002")])
    section["destinations"]["crm"] = {"kind": "helpdesk_note"}
    services = make_services(
        make_config(alerts=section, helpdesks={"generic": generic_notes(fake_helpdesk.url)})
    )

    drain(services.delivery_worker(), clock)

    [notice] = notices(services)
    assert delivery_text(notice) == "crm: cancelled (not for this destination)"
    assert notice.last_error == (
        "cancelled: not_for_this_destination; only an alert about one answer can be noted in "
        "its conversation; queued for a webhook destination, now helpdesk_note"
    )
    assert fake_notify.requests("webhook") == []
    others = [delivery_text(row) for row in rows(services) if row.alert_id != notice.alert_id]
    assert sorted(others) == ["crm: held (cap)", "crm: sent"]
    assert len(notes(fake_helpdesk)) == 1  # the first alert, noted as the kind is now


def test_an_alert_a_newer_configuration_queued_is_cancelled_where_no_note_can_go(
    make_config, make_services, fake_notify, alerting, clock
):
    """The worker runs on a configuration loaded before the alert was raised (its recheck
    leaves the alert to the configuration that raised it), in which the alert's helpdesk has
    no note request."""
    worker_config = make_config(alerts=alerts_section(fake_notify))  # generic: replies only
    worker_config.alerts.mark_loaded(clock() - timedelta(minutes=1))
    worker = make_services(worker_config)
    raise_now(alerting, [changed(rating=1)])  # the newer configuration: notes in generic

    drain(worker.delivery_worker(), clock)

    statuses = {row.destination: delivery_text(row) for row in rows(worker)}
    assert statuses == {
        "slack": "slack: sent",
        "telegram": "telegram: sent",
        "crm": "crm: sent",
        "note": "note: cancelled (not for this destination)",
    }
    [note] = [row for row in rows(worker) if row.destination == "note"]
    assert note.last_error == (
        "cancelled: not_for_this_destination; helpdesk 'generic' (generic) cannot take "
        "internal notes"
    )


def test_an_unknown_outcome_as_the_old_kind_is_cancelled_saying_it_may_have_arrived(
    make_config, make_services, fake_notify, fake_helpdesk, alerting, clock
):
    """The webhook's answer to the cap notice was lost, then ``crm`` became a note: a note
    cannot carry the notice, nor settle what the webhook may have had."""
    fake_notify.script("webhook", Script(drop=True), Script(drop=True))
    section = alerts_section(fake_notify, cap_per_hour=1)
    section["rules"][0]["destinations"] = ["crm"]
    before = make_services(
        make_config(alerts=section, helpdesks={"generic": generic_notes(fake_helpdesk.url)})
    )
    raise_now(before, [changed(survey_key="s1"), changed(survey_key="s2", dialog_id="D-1002")])
    before.delivery_worker().run_once(limit=10)
    [notice] = notices(before)
    assert notice.uncertain_since is not None
    section["destinations"]["crm"] = {"kind": "helpdesk_note"}
    services = make_services(
        make_config(alerts=section, helpdesks={"generic": generic_notes(fake_helpdesk.url)})
    )

    clock.advance(services.config.delivery.settle_seconds + 1)
    drain(services.delivery_worker(), clock)

    [notice] = notices(services)
    assert delivery_text(notice) == "crm: cancelled (not for this destination, may have arrived)"
    assert len(fake_notify.requests("webhook")) == 2  # not sent there again
