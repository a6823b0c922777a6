"""The answer rules: what alerts, exactly once per rule, survey and rating; a changed rating
alerts once for the change, an edit the rule no longer matches withdraws its alert; the storm
guards (age, rules enabled later, the hourly cap)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.alerts.engine import ANSWER
from csat_hook.db.schema import alerts
from csat_hook.db.schema import outbox
from csat_hook.errors import ConfigError
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.render import headline
from csat_hook.notify.webhook import event_body
from tests.alerts.conftest import alerts_section
from tests.alerts.conftest import changed
from tests.alerts.conftest import generic_notes
from tests.alerts.conftest import raise_now
from tests.alerts.test_agent_drop import Agent
from tests.alerts.test_agent_drop import Data


def stored(services: Any) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(alerts).order_by(alerts.c.id)))


def deliveries(services: Any) -> list[Any]:
    with services.engine.connect() as conn:
        return list(
            conn.execute(sa.select(outbox).where(outbox.c.kind == "alert").order_by(outbox.c.id))
        )


def rule(kind: str, **options: Any) -> dict[str, Any]:
    return {"name": options.pop("name", kind), "kind": kind, "destinations": ["slack"], **options}


@pytest.fixture
def with_rules(make_config, make_services, fake_notify, fake_helpdesk, alerting):
    """Services whose alerts section has the given rules (Slack only), the clock as alerting's."""

    def build(*rules: dict[str, Any], **section: Any) -> Any:
        config = make_config(
            alerts=alerts_section(fake_notify, rules=list(rules), **section),
            helpdesks={"generic": generic_notes(fake_helpdesk.url)},
        )
        return make_services(config)

    return build


def test_a_low_rating_alerts_once_however_often_it_is_read(alerting):
    assert raise_now(alerting, [changed()]).raised == {"low": 1}
    assert raise_now(alerting, [changed()]).raised == {}
    assert raise_now(alerting, [changed(comment="the comment edited")]).raised == {}
    [alert] = stored(alerting)
    assert (alert.kind, alert.rule, alert.rating, alert.previous_rating) == (ANSWER, "low", 1, None)
    assert alert.ref.startswith("csat-alert-") and len(alert.ref) == 35
    assert len(deliveries(alerting)) == 4


def test_a_changed_rating_alerts_once_for_the_change(alerting):
    raise_now(alerting, [changed(rating=2)])
    assert raise_now(alerting, [changed(rating=1, previous_rating=2)]).raised == {"low": 1}
    assert raise_now(alerting, [changed(rating=1, previous_rating=2)]).raised == {}
    assert raise_now(alerting, [changed(rating=4, previous_rating=1)]).raised == {}
    # Back to a rating alerted already: nothing new (once per rating).
    assert raise_now(alerting, [changed(rating=2, previous_rating=4)]).raised == {}
    first, second = stored(alerting)
    assert (first.rating, second.rating, second.previous_rating) == (2, 1, 2)
    assert AlertMessage.from_payload(second.payload).previous_rating == 2


def test_an_edit_that_improves_a_low_rating_alerts_nothing(alerting):
    """The team was told about the 1: the customer raising it to a 2 (still at or below
    ``max_rating``) is no new low rating. Lowering it again, or from above the rule, is."""
    assert raise_now(alerting, [changed(rating=1)]).raised == {"low": 1}
    assert raise_now(alerting, [changed(rating=2, previous_rating=1)]).raised == {}
    # Back down to the 1 already alerted: nothing either.
    assert raise_now(alerting, [changed(rating=1, previous_rating=2)]).raised == {}
    # Out of the rule, then low again: a worsening edit, one alert for it.
    assert raise_now(alerting, [changed(rating=5, previous_rating=1)]).raised == {}
    assert raise_now(alerting, [changed(rating=2, previous_rating=5)]).raised == {"low": 1}
    first, second = stored(alerting)
    assert (first.rating, first.previous_rating) == (1, None)
    assert (second.rating, second.previous_rating) == (2, 5)


def test_an_improving_edit_within_a_wider_rule_alerts_nothing_each_step(with_rules):
    services = with_rules(rule("low_rating", name="low", max_rating=3))
    assert raise_now(services, [changed(rating=1)]).raised == {"low": 1}
    assert raise_now(services, [changed(rating=2, previous_rating=1)]).raised == {}
    assert raise_now(services, [changed(rating=3, previous_rating=2)]).raised == {}
    assert [a.rating for a in stored(services)] == [1]


def test_a_first_low_answer_and_a_worsening_edit_still_alert(alerting):
    assert raise_now(alerting, [changed(survey_key="a", rating=2)]).raised == {"low": 1}
    assert raise_now(alerting, [changed(survey_key="a", rating=1, previous_rating=2)]).raised == {
        "low": 1
    }
    assert raise_now(alerting, [changed(survey_key="b", rating=4)]).raised == {}
    assert raise_now(alerting, [changed(survey_key="b", rating=2, previous_rating=4)]).raised == {
        "low": 1
    }
    assert [(a.survey_key, a.rating, a.previous_rating) for a in stored(alerting)] == [
        ("a", 2, None),
        ("a", 1, 2),
        ("b", 2, 4),
    ]


def test_an_improving_edit_the_rule_never_alerted_on_alerts(alerting, clock):
    """Nobody was told about the 1 (submitted before the rule existed): the edited answer,
    submitted now and still low, is the first the team hears of it."""
    raise_now(alerting, [])  # the rule is first seen now
    clock.advance(3600 * 5)
    assert raise_now(
        alerting, [changed(rating=2, previous_rating=1, submitted_at=clock())]
    ).raised == {"low": 1}
    [alert] = stored(alerting)
    assert (alert.rating, alert.previous_rating) == (2, 1)


def test_improving_edits_under_the_comment_and_nps_rules_alert_nothing(with_rules):
    services = with_rules(
        rule("comment"),
        rule("comment", name="low-comment", max_rating=2),
        rule("nps_detractor", name="detractors"),
    )
    assert raise_now(services, [changed(rating=1, comment="Slow", nps=2)]).raised == {
        "comment": 1,
        "low-comment": 1,
        "detractors": 1,
    }
    improved = changed(rating=2, previous_rating=1, comment="Slow", nps=5, previous_nps=2)
    assert raise_now(services, [improved]).raised == {}
    # A comment first written with an improving edit is news to the comment rules.
    fresh = changed(survey_key="b", rating=2, previous_rating=1, comment="Still slow")
    assert raise_now(services, [fresh]).raised == {"comment": 1, "low-comment": 1}
    # Worse again: alerted.
    worse = changed(rating=1, previous_rating=2, comment="Slow", nps=0, previous_nps=5)
    assert raise_now(services, [worse]).raised == {"detractors": 1}


def test_the_comment_and_nps_rules_withdraw_theirs_too(with_rules):
    services = with_rules(rule("comment", name="comments"), rule("nps_detractor", name="nps"))
    first = raise_now(services, [changed(rating=4, nps=3, comment="meh")])
    assert first.raised == {"comments": 1, "nps": 1}

    # The NPS score raised to 9: the detractor alert is withdrawn, the comment one stands.
    better = changed(rating=4, previous_rating=4, nps=9, previous_nps=3, comment="meh")
    assert raise_now(services, [better]).cancelled == 1
    # The comment removed: the comment alert is withdrawn.
    quiet = changed(rating=4, previous_rating=4, nps=9, previous_nps=9, comment=None)
    assert raise_now(services, [quiet]).cancelled == 1

    assert {a.rule: a.cancel_reason for a in stored(services)} == {
        "nps": "answer_improved",
        "comments": "comment_removed",
    }
    assert {d.status for d in deliveries(services)} == {"cancelled"}


def test_ratings_above_the_threshold_do_not_alert(alerting):
    assert raise_now(alerting, [changed(rating=3)]).raised == {}
    assert stored(alerting) == [] and deliveries(alerting) == []


def test_the_default_threshold_is_two_below_the_top_box(with_rules):
    services = with_rules(rule("low_rating"))  # top_box 4 on 1..5: 2 or less
    assert raise_now(services, [changed(rating=3, survey_key="a")]).raised == {}
    assert raise_now(services, [changed(rating=2, survey_key="b")]).raised == {"low_rating": 1}


def test_the_comment_rule(with_rules):
    services = with_rules(rule("comment"), rule("comment", name="low-comment", max_rating=2))
    outcome = raise_now(
        services,
        [
            changed(survey_key="a", rating=5, comment="Great, thanks"),
            changed(survey_key="b", rating=1, comment="Slow"),
            changed(survey_key="c", rating=1, comment="   "),
            changed(survey_key="d", rating=1, comment=None),
        ],
    )
    assert outcome.raised == {"comment": 2, "low-comment": 1}


def test_the_nps_detractor_rule(with_rules):
    services = with_rules(rule("nps_detractor", name="detractors"))
    outcome = raise_now(
        services,
        [
            changed(survey_key="a", rating=5, nps=6),
            changed(survey_key="b", rating=5, nps=7),
            changed(survey_key="c", rating=1, nps=None),
        ],
    )
    assert outcome.raised == {"detractors": 1}
    assert raise_now(services, [changed(survey_key="a", rating=4, nps=6)]).raised == {}
    assert raise_now(services, [changed(survey_key="a", rating=5, nps=3)]).raised == {
        "detractors": 1
    }
    [_, second] = stored(services)
    assert AlertMessage.from_payload(second.payload).nps == 3


def test_old_answers_never_alert(alerting, clock):
    too_old = clock() - timedelta(hours=alerting.config.alerts.max_age_hours, minutes=1)
    assert raise_now(alerting, [changed(submitted_at=too_old)]).raised == {}


def test_old_answers_the_rule_matches_are_counted(alerting, clock):
    """An export read days late (or dated hours early by a zone setting): its low ratings,
    submitted while the rule existed, are too old to alert; the run counts them by rule
    (the summary's alerts.too_old and a warning), where it said nothing."""
    raise_now(alerting, [])  # the rule is first seen now
    clock.advance(3600 * 24 * 5)
    too_old = clock() - timedelta(hours=alerting.config.alerts.max_age_hours, minutes=1)
    outcome = raise_now(
        alerting,
        [
            changed(survey_key="late", submitted_at=too_old),
            changed(survey_key="fine", submitted_at=too_old, rating=5),
        ],
    )
    assert outcome.raised == {}
    assert outcome.too_old == {"low": 1}
    assert outcome.as_dict()["too_old"] == {"low": 1}
    assert "too_old" not in raise_now(alerting, []).as_dict()


def test_a_rule_added_later_does_not_replay_history(alerting, clock):
    enabled = clock()
    raise_now(alerting, [])  # the rule is first seen now
    clock.advance(3600 * 5)
    before = enabled - timedelta(hours=2)  # before the rule existed, beyond the backfill
    recent = enabled - timedelta(minutes=30)  # before it too, but within the backfill
    outcome = raise_now(
        alerting,
        [
            changed(survey_key="old", submitted_at=before),
            changed(survey_key="new", submitted_at=recent),
        ],
    )
    assert outcome.raised == {"low": 1}
    assert [a.survey_key for a in stored(alerting)] == ["new"]
    assert alerting.config.alerts.backfill_minutes == 60


def test_the_hourly_cap_holds_the_rest_and_tells_the_destination_once(with_rules, clock):
    services = with_rules(rule("low_rating", name="low", max_rating=2), cap_per_hour=2)
    answers = [changed(survey_key=f"s{i}") for i in range(5)]
    outcome = raise_now(services, answers)
    assert outcome.raised == {"low": 5, "cap_per_hour": 1}
    assert (outcome.queued, outcome.held) == (3, 3)  # 2 alerts and the notice; 3 held
    statuses = [(d.destination, d.status) for d in deliveries(services)]
    assert statuses.count(("slack", "cancelled")) == 3
    assert statuses.count(("slack", "pending")) == 3
    held = [d for d in deliveries(services) if d.status == "cancelled"]
    assert all(d.last_error.startswith("held: more than alerts.cap_per_hour (2)") for d in held)
    # Still this hour: held, no second notice. Next hour: room again.
    again = raise_now(services, [changed(survey_key="s5")])
    assert (again.queued, again.held) == (0, 1)
    clock.advance(3600)
    later = raise_now(services, [changed(survey_key="s6", submitted_at=clock())])
    assert (later.queued, later.held) == (1, 0)


def test_a_note_goes_only_where_the_helpdesk_takes_notes(
    make_config, make_services, fake_notify, fake_helpdesk, alerting
):
    generic = generic_notes(fake_helpdesk.url)
    generic.pop("note")
    generic.pop("note_lookup")
    config = make_config(alerts=alerts_section(fake_notify), helpdesks={"generic": generic})
    services = make_services(config)
    raise_now(services, [changed()])
    assert sorted(d.destination for d in deliveries(services)) == ["crm", "slack", "telegram"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"rules": [rule("low_rating", destinations=["nowhere"])]},
            "unknown destination 'nowhere'",
        ),
        ({"rules": [rule("low_rating", max_rating=9)]}, "outside the scale 1..5"),
        ({"rules": [rule("low_rating"), rule("low_rating")]}, "must be unique"),
        (
            {"rules": [rule("agent_below_target", name="agents", destinations=["note"])]},
            "only alerts about one answer",
        ),
        (
            {"destinations": {"note": {"kind": "helpdesk_note", "helpdesks": ["dryrun-x"]}}},
            "is not a configured helpdesk",
        ),
        ({"rules": [rule("agent_below_target", alpha=0.2, exit_alpha=0.1)]}, "exit_alpha"),
        ({"digests": [{"name": "daily", "destinations": ["slack"], "at": "25:00"}]}, "digests"),
        # Listed twice: one delivery (same delivery key), but the second pass saw the cap
        # reached by the first and told the destination that alerts were held.
        (
            {"rules": [rule("low_rating", name="low", destinations=["slack", "slack"])]},
            "rules.low: 'slack' is listed twice",
        ),
        (
            {"digests": [{"name": "daily", "destinations": ["crm", "slack", "crm"]}]},
            "digests.daily: 'crm' is listed twice",
        ),
    ],
)
def test_configuration_errors_name_the_key(make_config, fake_notify, change, message):
    section = alerts_section(fake_notify)
    change = dict(change)  # shared by the parametrized runs
    if "destinations" in change:
        section["destinations"] = {**section["destinations"], **change.pop("destinations")}
    section.update(change)
    with pytest.raises(ConfigError) as caught:
        make_config(alerts=section)
    assert message in caught.value.message and "alerts" in caught.value.message


def test_a_digest_does_not_count_towards_the_hourly_cap(with_rules, clock):
    # Documented: "Digests are not counted". A digest sent this hour must leave the bad
    # rating that follows it its full allowance: held, it would never be delivered.
    daily = {"name": "daily", "at": "12:00", "destinations": ["slack"]}
    services = with_rules(
        rule("low_rating", name="low", max_rating=2), cap_per_hour=1, digests=[daily]
    )
    clock.now = clock().replace(hour=11, minute=50)
    assert raise_now(services, [], data=Data()).raised == {}  # the digest is configured
    clock.now = clock().replace(hour=12, minute=5)
    assert raise_now(services, [], data=Data()).raised == {"daily": 1}
    clock.advance(300)
    outcome = raise_now(services, [changed(submitted_at=clock())], data=Data())
    assert (outcome.raised, outcome.queued, outcome.held) == ({"low": 1}, 1, 0)
    assert [d.status for d in deliveries(services)] == ["pending", "pending"]


def _agent_names(services: Any) -> dict[str, str]:
    """Each stored alert's dialog (or agent key) → the agent as its text names them."""
    found = {}
    for alert in stored(services):
        message = AlertMessage.from_payload(alert.payload)
        found[message.dialog_id or message.agent_key or ""] = message.agent_name
    return found


def test_two_agents_of_one_name_are_told_apart_by_their_key(alerting):
    """Two agents named "Anna Petrova" (agents 7 and 8): their alerts read the same, "Low
    rating 1/5 for Anna Petrova": whose was it? Only where names collide the key is added."""
    answers = [
        changed(survey_key="s-1", dialog_id="D-1", agent_key="7"),
        changed(survey_key="s-2", dialog_id="D-2", agent_key="8", agent_name="anna  petrova"),
        changed(survey_key="s-3", dialog_id="D-3", agent_key="9", agent_name="Boris"),
    ]
    assert raise_now(alerting, answers).raised == {"low": 3}
    assert _agent_names(alerting) == {
        "D-1": "Anna Petrova (7)",
        "D-2": "anna  petrova (8)",
        "D-3": "Boris",
    }


def test_a_name_that_reads_as_another_agents_name_and_key_is_told_apart_too(alerting):
    """Agent 9 named "Anna Petrova (7)" and agent 7 "Anna Petrova" (beside agent 8 of that
    name, so shown with the key): both alerts read "Low rating 1/5 for Anna Petrova (7)", and
    agent 9's bad ratings passed for agent 7's. Names still alike get the helpdesk and key, as
    the report's labels still alike get their tag."""
    answers = [
        changed(survey_key="s-1", dialog_id="D-1", agent_key="7"),
        changed(survey_key="s-2", dialog_id="D-2", agent_key="8"),
        changed(survey_key="s-3", dialog_id="D-3", agent_key="9", agent_name="Anna Petrova (7)"),
    ]
    assert raise_now(alerting, answers).raised == {"low": 3}
    names = _agent_names(alerting)
    assert len(set(names.values())) == 3, names
    assert names["D-2"] == "Anna Petrova (8)"
    assert names["D-1"].startswith("Anna Petrova (7)") and "7" in names["D-1"][16:]
    assert names["D-3"].startswith("Anna Petrova (7)") and "9" in names["D-3"][16:]


def test_an_agent_of_the_same_name_in_the_dataset_is_a_collision_too(alerting):
    data = Data(agents=[Agent("generic", "7", "Anna Petrova"), Agent("other", "7", "Anna Petrova")])
    raise_now(alerting, [changed()], data=data)
    assert _agent_names(alerting) == {"D-1001": "Anna Petrova (generic: 7)"}


def test_the_cap_notice_says_until_when_in_iso_8601_to_a_webhook(with_rules, clock):
    """docs/alerts.md: a webhook's times are ISO 8601 UTC. ``held_until`` was sent as
    "2026-11-20 13:00 UTC", which no ISO parser reads; the notice's text still says it so."""
    services = with_rules(rule("low_rating", name="low", max_rating=2), cap_per_hour=1)
    raise_now(services, [changed(survey_key=f"s{i}") for i in range(2)])
    with services.engine.connect() as conn:
        payload = conn.execute(
            sa.select(alerts.c.payload).where(alerts.c.kind == "overflow")
        ).scalar_one()
    message = AlertMessage.from_payload(payload)

    until = event_body(message, include_comment=True)["data"]["held_until"]

    assert datetime.fromisoformat(until) == datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
    assert "further alerts to it are held until 2026-11-20 13:00 UTC;" in headline(message)
