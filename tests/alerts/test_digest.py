"""Digests: one per period and destination, at the first sync after the local send time, with
the period's figures and lowest-rated answers."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import time
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from csat_hook.alerts.config import DigestConfig
from csat_hook.alerts.engine import digest_due
from csat_hook.config.yamlfile import load_yaml
from csat_hook.db.schema import alerts
from csat_hook.db.schema import outbox
from csat_hook.notify.records import AlertMessage
from tests.alerts.conftest import alerts_section
from tests.alerts.conftest import generic_notes
from tests.alerts.conftest import raise_now
from tests.alerts.test_agent_drop import Agent
from tests.alerts.test_agent_drop import Answer
from tests.alerts.test_agent_drop import Data

MSK = ZoneInfo("Europe/Moscow")


def digest(**options) -> DigestConfig:
    return DigestConfig(name="daily", destinations=["slack"], **options)


@pytest.mark.parametrize(
    ("now", "send", "first", "after"),
    [
        # 15:00 in Moscow: today's 09:00 digest, about yesterday.
        (
            datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
            datetime(2026, 11, 20, 9, 0),
            "2026-11-19",
            "2026-11-20",
        ),
        # 08:00 in Moscow: not yet; the last one was yesterday's.
        (
            datetime(2026, 11, 20, 5, 0, tzinfo=UTC),
            datetime(2026, 11, 19, 9, 0),
            "2026-11-18",
            "2026-11-19",
        ),
    ],
)
def test_a_daily_digest_is_due_after_its_local_time(now, send, first, after):
    due, start, end = digest_due(digest(), now, MSK)
    assert due == send.replace(tzinfo=MSK)
    assert (start.isoformat(), end.isoformat()) == (first, after)


def test_a_weekly_digest_reports_the_seven_days_before_its_weekday():
    friday = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    due, start, end = digest_due(digest(every="week", weekday="monday"), friday, MSK)
    assert due == datetime(2026, 11, 16, 9, 0, tzinfo=MSK)
    assert (start.isoformat(), end.isoformat()) == ("2026-11-09", "2026-11-16")


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("at: 9:00", time(9, 0)),  # YAML 1.1: 540 (minutes)
        ("at: 18:30", time(18, 30)),  # 1110
        ("at: 9:00:30", time(9, 0, 30)),  # 32430 (seconds)
        ("at: 09:00", time(9, 0)),  # a leading 0: a string
        ("at: '9:00'", time(9, 0)),
        ("at: '7:05'", time(7, 5)),
    ],
)
def test_a_time_is_read_as_written_quoted_or_not(yaml_text, expected):
    assert digest(**load_yaml(yaml_text.encode(), "test")).at == expected


@pytest.mark.parametrize(
    "yaml_text",
    [
        "at: 9",  # a number: 00:09 was taken, not 9 o'clock
        "at: 24:00",  # YAML's 1440: 00:24 (seconds) was taken
        "at: 25:00",
        "at: '25:00'",
        "at: '9'",
        "at: 0",
        "at: '09:00+05:00'",  # an offset was dropped: always local (metrics.timezone)
        "at: '09:00Z'",
    ],
)
def test_a_time_that_is_no_local_time_of_day_is_refused_naming_the_format(yaml_text):
    with pytest.raises(ValidationError, match=r'"HH:MM"'):
        digest(**load_yaml(yaml_text.encode(), "test"))


@pytest.fixture
def digesting(make_config, make_services, fake_notify, fake_helpdesk, alerting):
    def build(**options):
        section = alerts_section(
            fake_notify,
            rules=[],
            digests=[{"name": "daily", "at": "09:00", "destinations": ["slack", "crm"], **options}],
        )
        config = make_config(
            alerts=section,
            helpdesks={"generic": generic_notes(fake_helpdesk.url)},
            metrics={"timezone": "Europe/Moscow"},
        )
        return make_services(config)

    return build


def yesterday_data(now: datetime) -> Data:
    data = Data(agents=[Agent("generic", "7", "Anna Petrova"), Agent("generic", "8", "Boris")])
    day = (now.astimezone(MSK) - timedelta(days=1)).replace(hour=12, minute=0)
    for i, (agent, rating, comment) in enumerate(
        [(0, 5, ""), (0, 1, "Ужасно"), (1, 2, "slow"), (1, 4, ""), (0, 3, "meh")]
    ):
        data.answers.append(
            Answer(agent, "generic", f"T-{i}", rating, comment, day + timedelta(minutes=i))
        )
    # The day before yesterday and today: not in the period.
    data.answers.append(Answer(1, "generic", "T-old", 1, "old", day - timedelta(days=1)))
    data.answers.append(Answer(1, "generic", "T-new", 1, "new", now))
    return data


def digests(services):
    with services.engine.connect() as conn:
        return [
            AlertMessage.from_payload(p)
            for p in conn.execute(
                sa.select(alerts.c.payload).where(alerts.c.kind == "digest")
            ).scalars()
        ]


def test_one_digest_per_period_from_the_first_one_due_after_it_was_configured(digesting, clock):
    services = digesting()
    clock.now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # 15:00 MSK: today's is past
    data = yesterday_data(clock())
    assert raise_now(services, [], data=data).raised == {}  # configured after today's 09:00

    clock.now = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)  # 09:30 MSK the next day
    data = yesterday_data(clock())
    outcome = raise_now(services, [], data=data)
    assert outcome.raised == {"daily": 1} and outcome.queued == 2  # Slack and the webhook
    clock.advance(3600)
    assert raise_now(services, [], data=data).raised == {}

    [message] = digests(services)
    assert message.period == "2026-11-20"
    overall = message.figures
    assert (overall.answers, overall.satisfied) == (5, 2)  # only the day's answers
    assert [(i.rating, i.dialog_id) for i in message.items] == [(1, "T-1"), (2, "T-2"), (3, "T-4")]
    assert [a.agent_name for a in message.agents] == ["Anna Petrova", "Boris"]  # CSAT 33% < 50%


def test_an_empty_day_is_said_or_skipped(digesting, clock):
    for send_empty, expected in ((True, {"daily": 1}), (False, {})):
        services = digesting(send_empty=send_empty)
        clock.now = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
        raise_now(services, [], data=Data())
        clock.now = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
        assert raise_now(services, [], data=Data()).raised == expected
        with services.engine.begin() as conn:
            conn.execute(sa.delete(outbox))
            conn.execute(sa.delete(alerts))
            conn.execute(sa.text("DELETE FROM alert_state"))


def test_answers_to_surveys_that_named_no_agent_are_labelled_in_a_digest(digesting, clock):
    """The no-agent key ("": a close that named none) has no name: the digest says so, as the
    report does, instead of an empty name (": 40.0% …" in a rendered digest)."""
    services = digesting()
    clock.now = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    raise_now(services, [], data=Data())
    clock.now = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)
    data = yesterday_data(clock())
    data.agents.append(Agent("generic", "", ""))
    day = (clock().astimezone(MSK) - timedelta(days=1)).replace(hour=13, minute=0)
    data.answers.append(Answer(2, "generic", "T-none", 1, "", day))
    raise_now(services, [], data=data)
    [message] = digests(services)
    assert "No agent recorded" in [a.agent_name for a in message.agents]
    assert ("T-none", "No agent recorded") in [(i.dialog_id, i.agent_name) for i in message.items]


def test_two_agents_of_one_name_are_told_apart_in_a_digest(digesting, clock):
    services = digesting()
    clock.now = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    raise_now(services, [], data=Data())
    clock.now = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)
    data = yesterday_data(clock())
    data.agents[1] = Agent("generic", "8", "Anna Petrova")  # Boris's answers: another Anna's
    raise_now(services, [], data=data)
    [message] = digests(services)
    assert sorted(a.agent_name for a in message.agents) == ["Anna Petrova (7)", "Anna Petrova (8)"]
    named = {i.dialog_id: i.agent_name for i in message.items}
    assert (named["T-1"], named["T-2"]) == ("Anna Petrova (7)", "Anna Petrova (8)")


def test_a_rating_off_the_scale_is_in_neither_the_report_nor_a_digest():
    """Answers stored under an earlier scale (1–10 before ``metrics.scale_max: 5``) are
    ignored by the report's figures; a digest counted a 7 as satisfied and a 0 as a low
    answer."""
    from csat_hook.alerts.digests import digest_alert
    from csat_hook.alerts.engine import Inputs
    from csat_hook.alerts.engine import Scale

    now = datetime(2026, 11, 21, 6, 30, tzinfo=UTC)
    data = yesterday_data(now)
    day = (now.astimezone(MSK) - timedelta(days=1)).replace(hour=15, minute=0)
    data.answers.append(Answer(0, "generic", "T-seven", 7, "", day))
    data.answers.append(Answer(1, "generic", "T-zero", 0, "", day))
    inputs = Inputs([], data, Scale(1, 5, 4), MSK, {}, now)
    found = digest_alert(digest(), inputs, data, now - timedelta(days=7))
    assert found is not None
    figures = found.message.figures
    assert figures is not None and (figures.answers, figures.satisfied) == (5, 2)
    assert "T-zero" not in [i.dialog_id for i in found.message.items]
    assert sum(a.answers for a in found.message.agents) == 5


def test_a_changed_cadence_sends_no_day_a_digest_of_that_name_reported_already(
    make_config, make_services, fake_notify, fake_helpdesk, alerting, clock
):
    """A daily digest made weekly on a Tuesday: last week's digest (due on Monday, under the
    new cadence) reports days the daily ones sent already, and is not sent then, stale; the
    next week's is. Made daily again on a Monday after the weekly one went out, the day before
    (Sunday, in the weekly) is not sent again either."""

    def configured(**options):
        section = alerts_section(
            fake_notify,
            rules=[],
            digests=[{"name": "daily", "at": "09:00", "destinations": ["slack"], **options}],
        )
        return make_config(
            alerts=section,
            helpdesks={"generic": generic_notes(fake_helpdesk.url)},
            metrics={"timezone": "Europe/Moscow"},
        )

    daily, weekly = configured(), configured(every="week", weekday="monday")
    services = make_services(daily)
    clock.now = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)
    raise_now(services, [], data=Data())
    for day in (21, 22, 23):  # Saturday to Monday, 09:30 in Moscow: the 20th to the 22nd
        clock.now = datetime(2026, 11, day, 6, 30, tzinfo=UTC)
        assert raise_now(services, [], data=yesterday_data(clock())).raised == {"daily": 1}

    clock.now = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # Tuesday: made weekly
    assert raise_now(services, [], data=yesterday_data(clock()), config=weekly).raised == {}
    clock.now = datetime(2026, 11, 30, 6, 30, tzinfo=UTC)  # Monday: the 23rd to the 29th
    assert raise_now(services, [], data=yesterday_data(clock()), config=weekly).raised == {
        "daily": 1
    }
    clock.now = datetime(2026, 11, 30, 7, 30, tzinfo=UTC)  # made daily again: Sunday was in it
    assert raise_now(services, [], data=yesterday_data(clock()), config=daily).raised == {}
    clock.now = datetime(2026, 12, 1, 6, 30, tzinfo=UTC)  # Tuesday: Monday the 30th
    assert raise_now(services, [], data=yesterday_data(clock()), config=daily).raised == {
        "daily": 1
    }
    assert [m.period for m in digests(services)][-2:] == ["2026-11-23 – 2026-11-29", "2026-11-30"]
