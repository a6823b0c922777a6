"""The operator keeps a destination's name and changes its kind (the webhook ``crm`` becomes a
Slack channel) while an alert waits to go out to it, and restarts. A queued delivery holds the
alert, not a message rendered for the old kind: it goes out rendered for the kind configured
now, its ``last_error`` and a log line saying so. What belonged to the old kind is not carried
over to the new one: an earlier attempt of unknown outcome, made as a webhook, is not settled
as a Slack message would be (recorded as sent, unconfirmed, though Slack never saw it); the
Slack message is sent, noting that the webhook may have had it. An attempt made as the new
kind is settled as the new kind. A delivery queued before migration 0023 (no kind stored) is
sent as its destination is configured, as before. SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from csat_hook.alerts.report import delivery_text
from csat_hook.db.schema import outbox
from csat_hook.devtools.fake_notify import Script
from tests.alerts.conftest import alerts_section
from tests.alerts.conftest import changed
from tests.alerts.conftest import generic_notes
from tests.alerts.conftest import raise_now
from tests.alerts.test_delivery import by_destination
from tests.alerts.test_rule_changed import LOW
from tests.outbox.test_worker import drain

CRM_SLACK = "/services/T0CSAT/B0CRM/Cr3ecret"
COMMENT = "Nobody answered for three days"  # the alerted answer's comment (conftest.changed)


def crm_now_slack(make_config, make_services, fake_notify, fake_helpdesk, **section: Any) -> Any:
    """The service built again, ``crm`` now a Slack destination of its own channel."""
    alerts = alerts_section(fake_notify, **section)
    alerts["destinations"]["crm"] = {
        "kind": "slack",
        "webhook_url": fake_notify.slack_hook(CRM_SLACK),
    }
    config = make_config(alerts=alerts, helpdesks={"generic": generic_notes(fake_helpdesk.url)})
    return make_services(config)


def to_crm(fake_notify: Any) -> list[Any]:
    """The requests the Slack channel ``crm`` now is received."""
    return [r for r in fake_notify.requests("slack") if r.path == CRM_SLACK]


def test_a_delivery_queued_for_a_webhook_goes_to_the_slack_destination_of_its_name(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock, caplog
):
    raise_now(alerting, [changed(rating=1)])
    service = crm_now_slack(make_config, make_services, fake_notify, fake_helpdesk)

    assert raise_now(service, []).cancelled == 0
    with caplog.at_level(logging.INFO, logger="csat_hook"):
        drain(service.delivery_worker(), clock)

    assert fake_notify.requests("webhook") == []
    [message] = to_crm(fake_notify)
    assert message.accepted and COMMENT in message.body.decode()  # rendered for Slack
    crm = by_destination(service)["crm"]
    assert crm.status == "sent" and delivery_text(crm) == "crm: sent"
    assert crm.last_error == "queued for a webhook destination, sent as slack"
    [line] = [r for r in caplog.records if r.getMessage() == "delivery.kind-changed"]
    assert (line.destination, line.queued_kind, line.kind) == ("crm", "webhook", "slack")
    assert COMMENT not in caplog.text


def test_an_unknown_outcome_as_a_webhook_is_not_settled_as_slack(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """Slack's rule for an unknown outcome (record it as sent, unconfirmed) is about a Slack
    message that may have arrived; the one that may have arrived went to the webhook."""
    fake_notify.script("webhook", Script(drop=True))
    raise_now(alerting, [changed(rating=1)])
    alerting.delivery_worker().run_once(limit=10)
    assert by_destination(alerting)["crm"].uncertain_since is not None
    service = crm_now_slack(make_config, make_services, fake_notify, fake_helpdesk)

    clock.advance(service.config.delivery.settle_seconds + 1)
    drain(service.delivery_worker(), clock)

    assert len(fake_notify.requests("webhook")) == 1  # not sent there again
    [message] = to_crm(fake_notify)
    assert message.accepted
    crm = by_destination(service)["crm"]
    assert crm.status == "sent" and delivery_text(crm) == "crm: sent"
    assert crm.last_error == (
        "queued for a webhook destination, sent as slack; an earlier attempt as webhook had "
        "an unknown outcome: it may have arrived there"
    )


def test_a_retry_after_the_change_is_not_taken_for_the_old_kinds_unknown_outcome(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """The Slack message is refused for now (503): its retry is an ordinary one, not the
    settling of the webhook's unknown outcome (which Slack would record as sent, unsent)."""
    fake_notify.script("webhook", Script(drop=True))
    raise_now(alerting, [changed(rating=1)])
    alerting.delivery_worker().run_once(limit=10)
    service = crm_now_slack(make_config, make_services, fake_notify, fake_helpdesk)
    fake_notify.script("slack", Script(status=503, body=b""))

    clock.advance(service.config.delivery.settle_seconds + 1)
    drain(service.delivery_worker(), clock)

    assert [r.accepted for r in to_crm(fake_notify)] == [False, True]
    crm = by_destination(service)["crm"]
    assert crm.status == "sent" and delivery_text(crm) == "crm: sent"


def test_an_unknown_outcome_as_the_new_kind_is_settled_as_the_new_kind(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """The Slack message's own answer is lost: the next claim settles it as Slack does
    (recorded as sent, unconfirmed), not as a change of kind (sent again)."""
    raise_now(alerting, [changed(rating=1)])
    service = crm_now_slack(
        make_config,
        make_services,
        fake_notify,
        fake_helpdesk,
        rules=[LOW | {"destinations": ["crm"]}],  # the others cancelled: crm alone to Slack
    )
    fake_notify.script("slack", Script(drop=True))

    drain(service.delivery_worker(), clock)

    crm = by_destination(service)["crm"]
    assert len(to_crm(fake_notify)) == 1
    assert delivery_text(crm) == "crm: sent, unconfirmed"


def test_an_alert_withdrawn_meanwhile_is_cancelled_not_settled_as_the_new_kind(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """The rule removed too: the webhook's unknown outcome cannot be asked of Slack, so it
    is cancelled saying it may have arrived (not recorded as a Slack message sent)."""
    fake_notify.script("webhook", Script(drop=True))
    raise_now(alerting, [changed(rating=1)])
    alerting.delivery_worker().run_once(limit=10)
    service = crm_now_slack(make_config, make_services, fake_notify, fake_helpdesk, rules=[])

    raise_now(service, [])
    clock.advance(service.config.delivery.settle_seconds + 1)
    drain(service.delivery_worker(), clock)

    assert to_crm(fake_notify) == []
    crm = by_destination(service)["crm"]
    assert delivery_text(crm) == "crm: cancelled (rule removed, may have arrived)"


def test_a_delivery_queued_before_the_kind_was_stored_is_sent_as_configured(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    raise_now(alerting, [changed(rating=1)])
    with alerting.engine.begin() as conn:  # as migration 0023 leaves the rows it finds
        conn.execute(sa.update(outbox).values(destination_kind=None))
    service = crm_now_slack(make_config, make_services, fake_notify, fake_helpdesk)

    drain(service.delivery_worker(), clock)

    assert len(to_crm(fake_notify)) == 1
    crm = by_destination(service)["crm"]
    assert crm.status == "sent" and crm.last_error is None


def test_a_changed_destination_keeps_the_rest_of_the_alert_going(
    alerting, make_config, make_services, fake_notify, fake_helpdesk, clock
):
    """The destinations whose kind did not change are sent as usual, once."""
    raise_now(alerting, [changed(rating=1)])
    service = crm_now_slack(make_config, make_services, fake_notify, fake_helpdesk, rules=[LOW])

    drain(service.delivery_worker(), clock)

    assert {name: row.status for name, row in by_destination(service).items()} == dict.fromkeys(
        ("slack", "telegram", "crm", "note"), "sent"
    )
    assert len(fake_notify.delivered("slack")) == 2  # the Slack one and crm, once each
