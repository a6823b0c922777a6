"""A delivery that reaches a ``helpdesk_note`` destination at its claim which cannot take its
alert is cancelled, saying why, not failed: nothing went wrong with the destination, the
alert was never for a note. That happens when the destination became a note under the same
name after the alert was queued (a webhook's cap notice, a digest), when a configuration newer
than the worker's queued it (a hand-run ``csat-hook sync``: the worker's recheck judges only
what was raised before its own configuration was loaded), or to a cap notice queued to a note
before notes were left out of them. The notice of ``alerts.cap_per_hour`` itself is not
queued to a note destination. Cancelled so, the delivery stays cancelled when its alert,
withdrawn meanwhile, stands again: only what the withdrawal cancelled is queued again.
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner

from csat_hook import services as services_module
from csat_hook.alerts.report import alerts_table
from csat_hook.alerts.report import delivery_text
from csat_hook.cli import main
from csat_hook.config import load_config
from csat_hook.db.schema import alerts
from csat_hook.devtools.fake_notify import Script
from tests.alerts.conftest import alerts_section
from tests.alerts.conftest import changed
from tests.alerts.conftest import generic_notes
from tests.alerts.conftest import raise_now
from tests.alerts.test_delivery import by_destination
from tests.alerts.test_delivery import notes
from tests.alerts.test_delivery import rows
from tests.conftest import base_overrides
from tests.outbox.test_worker import drain


def notices(services: Any) -> list[Any]:
    """The deliveries of cap notices (their delivery key's alert is the notice)."""
    with services.engine.connect() as conn:
        ids = {
            row.id for row in conn.execute(alerts.select().where(alerts.c.kind == "overflow")).all()
        }
    return [row for row in rows(services) if row.alert_id in ids]


def listing(path: Path) -> Any:
    """``csat-hook alerts`` run with the configuration at ``path``; the services it builds
    closed after it (a command leaves its pool to the process's exit, and a later test would
    see the PostgreSQL connection garbage collected open: as tests/cli/test_cli.py's
    ``disposed``)."""
    built: list[Any] = []
    real = services_module.build_services

    def build(*args: Any, **kwargs: Any) -> Any:
        built.append(real(*args, **kwargs))
        return built[-1]

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(services_module, "build_services", build)
            return CliRunner().invoke(
                main, ["alerts"], env={"CSAT_HOOK_CONFIG": str(path), "DATABASE_URL": None}
            )
    finally:
        for services in built:
            services.close()


def test_a_note_destination_over_the_cap_is_queued_no_notice_its_held_alerts_listed(
    migrated_url, make_services, fake_notify, fake_helpdesk, alerting, clock, tmp_path
):
    """Over the cap, a note destination is not queued the cap notice, which is about no
    conversation (it was queued, then cancelled at its claim as not for this destination: the
    outbox listed a cancelled row for nothing, and the destination was told nothing). Its held
    alert is listed as held, where every destination's is: the Alerts tab and ``csat-hook
    alerts``. The Slack destination beside it gets its notice as before."""
    section = alerts_section(fake_notify, cap_per_hour=1)
    section["rules"][0]["destinations"] = ["note", "slack"]
    overrides = base_overrides(migrated_url, tmp_path, fake_helpdesk.url)
    overrides["helpdesks"]["generic"] = generic_notes(fake_helpdesk.url)
    overrides["alerts"] = section
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(overrides), encoding="utf-8")
    services = make_services(load_config(path, env={}))

    outcome = raise_now(
        services, [changed(survey_key="s1"), changed(survey_key="s2", dialog_id="D-1002")]
    )
    assert outcome.raised == {"low": 2, "cap_per_hour": 1}  # Slack's notice alone
    assert (outcome.queued, outcome.held) == (3, 2)
    drain(services.delivery_worker(), clock)

    [notice] = notices(services)
    assert (notice.destination, notice.status) == ("slack", "sent")
    assert sorted(delivery_text(row) for row in rows(services)) == [
        "note: held (cap)",
        "note: sent",
        "slack: held (cap)",
        "slack: sent",
        "slack: sent",
    ]
    assert len(notes(fake_helpdesk)) == 1  # the first alert, under the cap
    assert notes(fake_helpdesk, "D-1002") == []
    with services.engine.connect() as conn:
        tab = alerts_table(conn, limit=10, tz=ZoneInfo("UTC"))
    deliveries = tab[0].index("Deliveries")
    assert sorted(row[deliveries] for row in tab[1:]) == [
        "note: held (cap); slack: held (cap)",
        "note: sent; slack: sent",
    ]

    listed = listing(path)
    assert listed.exit_code == 0, listed.output
    assert "note: held (cap)" in listed.output and "slack: held (cap)" in listed.output
    assert "Alert cap reached for slack" in listed.output
    assert "Alert cap reached for note" not in listed.output
    assert "not for this destination" not in listed.output


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


@pytest.mark.parametrize("drained_by", ["the refusing configuration", "one taking the note"])
def test_an_alert_standing_again_leaves_the_note_it_could_not_carry_cancelled(
    drained_by, make_config, make_services, fake_notify, fake_helpdesk, alerting, clock
):
    """The worker's configuration has no notes in the dialog's helpdesk: it cancels the note
    (not for this destination) while Slack waits for a retry. The answer improves (Slack's
    delivery cancelled with the alert) and comes back to the 1: the alert stands again and
    Slack's delivery is queued again and sent, once; the note's stays cancelled, saying why,
    never claimed again. So too when the worker draining it now runs on a configuration in
    which the note could go: the alert went to the team, and a configuration change sends
    nothing that was cancelled (a rule or a destination put back does not either)."""
    fake_notify.script("slack", Script(status=503, body=b""))
    worker_config = make_config(alerts=alerts_section(fake_notify))  # generic: replies only
    worker_config.alerts.mark_loaded(clock() - timedelta(minutes=1))
    worker = make_services(worker_config)
    raise_now(alerting, [changed(rating=1)])  # the newer configuration: notes in generic
    worker.delivery_worker().run_once(limit=10)
    refused = by_destination(worker)["note"]
    assert delivery_text(refused) == "note: cancelled (not for this destination)"
    assert by_destination(worker)["slack"].status == "pending"

    assert raise_now(alerting, [changed(rating=5, previous_rating=1)]).cancelled == 1
    clock.advance(60)
    again = raise_now(alerting, [changed(rating=1, previous_rating=5)])
    assert (again.raised, again.queued, again.cancelled) == ({}, 1, 0)  # Slack's alone
    drainer = worker if drained_by == "the refusing configuration" else alerting
    drain(drainer.delivery_worker(), clock)

    after = by_destination(worker)
    assert {name: delivery_text(row) for name, row in after.items()} == {
        "slack": "slack: sent",
        "telegram": "telegram: sent",
        "crm": "crm: sent",
        "note": "note: cancelled (not for this destination)",
    }
    note = after["note"]
    assert (note.last_error, note.attempts, note.updated_at) == (
        refused.last_error,
        refused.attempts,
        refused.updated_at,
    )
    assert len(fake_notify.delivered("slack")) == 1
    assert notes(fake_helpdesk) == []
