"""Digests on the nights the clocks change: a send time that comes twice (the clocks go back),
one that never comes (they go forward: an hour, half an hour, a whole day), and days of 23
or 25 hours. A fake clock steps through each night as syncs would, and what a digest does
is checked against the local clock read minute by minute: each period raised once, at the
first sync at or after its send time (the first instant the local clock shows it or later),
never before, never twice, never skipped, with the answers of its local days."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest

from csat_hook.alerts.config import DigestConfig
from csat_hook.alerts.digests import digest_alert
from csat_hook.alerts.engine import Inputs
from csat_hook.alerts.engine import Scale
from csat_hook.alerts.engine import digest_due
from tests.alerts.conftest import alerts_section
from tests.alerts.conftest import raise_now
from tests.alerts.test_agent_drop import Answer
from tests.alerts.test_agent_drop import Data
from tests.alerts.test_digest import digests

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Night:
    """A digest in ``zone`` watched by syncs from ``start`` (UTC; the digest is configured at
    the first one) for ``hours``."""

    label: str
    zone: str
    start: datetime
    at: str
    every: str = "day"
    weekday: str = "monday"
    hours: int = 24

    def digest(self) -> DigestConfig:
        return DigestConfig(
            name="daily",
            every=self.every,
            at=self.at,
            weekday=self.weekday,
            agents=0,
            lowest=0,
            destinations=["slack"],
        )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


NIGHTS = [
    # Europe: 03:00 CEST → 02:00 CET (2026-10-25 01:00 UTC): 02:00-02:59 twice.
    Night("berlin-back-0230", "Europe/Berlin", utc(2026, 10, 24, 13, 0), "02:30"),
    Night("berlin-back-0200", "Europe/Berlin", utc(2026, 10, 24, 13, 0), "02:00"),
    Night("berlin-back-0259", "Europe/Berlin", utc(2026, 10, 24, 13, 0), "02:59"),
    Night(
        "berlin-back-weekly",
        "Europe/Berlin",
        utc(2026, 10, 24, 13, 0),
        "02:30",
        every="week",
        weekday="sunday",
    ),
    # 02:00 CET → 03:00 CEST (2027-03-28 01:00 UTC): no 02:00-02:59 that night.
    Night("berlin-forward-0230", "Europe/Berlin", utc(2027, 3, 27, 13, 0), "02:30"),
    Night("berlin-forward-0200", "Europe/Berlin", utc(2027, 3, 27, 13, 0), "02:00"),
    Night(
        "berlin-forward-weekly",
        "Europe/Berlin",
        utc(2027, 3, 27, 13, 0),
        "02:30",
        every="week",
        weekday="sunday",
    ),
    # Configured after the clocks went forward, past the skipped 02:30 (03:00 CEST): the
    # first digest is the next day's.
    Night("berlin-forward-configured-0310", "Europe/Berlin", utc(2027, 3, 28, 1, 10), "02:30"),
    # Lord Howe moves by half an hour: 02:00 +11 → 01:30 +10:30 (2027-04-03 15:00 UTC) and
    # 02:00 +10:30 → 02:30 +11 (2026-10-03 15:30 UTC).
    Night("lord-howe-back-0145", "Australia/Lord_Howe", utc(2027, 4, 3, 3, 0), "01:45"),
    Night("lord-howe-forward-0215", "Australia/Lord_Howe", utc(2026, 10, 3, 3, 30), "02:15"),
    # Samoa skipped 2011-12-30 (23:59:59 -10 on the 29th → 00:00 +14 on the 31st).
    Night("apia-skipped-day", "Pacific/Apia", utc(2011, 12, 29, 22, 0), "09:00", hours=30),
    Night(
        "apia-skipped-friday",
        "Pacific/Apia",
        utc(2011, 12, 29, 22, 0),
        "09:00",
        every="week",
        weekday="friday",
        hours=30,
    ),
    # Clocks changed at midnight. Santiago: Saturday 24:00 -03 → 23:00 -04 (2026-04-05 03:00
    # UTC), Saturday's last hour twice; Havana: 01:00 -04 → 00:00 -05 (2026-11-01 05:00 UTC),
    # the first hour of the day twice; Cairo: 00:00 +02 → 01:00 +03 (2026-04-23 22:00 UTC),
    # no midnight.
    Night("santiago-back-2330", "America/Santiago", utc(2026, 4, 4, 15, 0), "23:30"),
    Night("santiago-back-0000", "America/Santiago", utc(2026, 4, 4, 15, 0), "00:00"),
    Night("havana-back-0030", "America/Havana", utc(2026, 10, 31, 17, 0), "00:30"),
    Night("cairo-forward-0030", "Africa/Cairo", utc(2026, 4, 23, 10, 0), "00:30"),
]


# --- what the local clock says, minute by minute (the reference) ------------------------------


@cache
def readings(zone: str, start: datetime, end: datetime) -> tuple[tuple[datetime, datetime], ...]:
    """Every minute from ``start`` to ``end`` (UTC) and what the wall clock shows then."""
    tz = ZoneInfo(zone)
    count = int((end - start) / timedelta(minutes=1)) + 1
    instants = (start + timedelta(minutes=i) for i in range(count))
    return tuple((t, t.astimezone(tz).replace(tzinfo=None)) for t in instants)


@dataclass(frozen=True)
class Due:
    send: datetime  # UTC: the first minute the local clock shows the send time or later
    first: date
    after: date


def around(night: Night) -> tuple[tuple[datetime, datetime], ...]:
    """The local clock from 9 days before the first sync to 2 days after the last."""
    end = night.start + timedelta(hours=night.hours, days=2)
    return readings(night.zone, night.start - timedelta(days=9), end)


@cache
def sends(night: Night) -> tuple[Due, ...]:
    """Each send of the digest around ``night``, in order."""
    clock = around(night)
    at = time.fromisoformat(night.at)
    span = 1 if night.every == "day" else 7
    found = []
    day = clock[0][1].date()
    while day <= clock[-1][1].date():
        if night.every == "day" or WEEKDAYS[day.weekday()] == night.weekday:
            wall = datetime.combine(day, at)
            send = next((t for t, shown in clock if shown >= wall), None)
            if send is not None:
                found.append(Due(send, day - timedelta(days=span), day))
        day += timedelta(days=1)
    return tuple(found)


def latest(night: Night, now: datetime) -> Due:
    return [due for due in sends(night) if due.send <= now][-1]


def local_days(night: Night, due: Due) -> set[date]:
    """The days of ``due``'s period the local clock showed (Samoa never showed 2011-12-30)."""
    shown = {wall.date() for _, wall in around(night)}
    return shown & {due.first + timedelta(days=i) for i in range((due.after - due.first).days)}


def syncs(night: Night, every: timedelta, offset: timedelta) -> Iterator[datetime]:
    now, end = night.start + offset, night.start + timedelta(hours=night.hours)
    while now <= end:
        yield now
        now += every


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("night", NIGHTS, ids=lambda n: n.label)
def test_the_digest_due_at_each_sync_is_the_latest_whose_send_time_the_clock_has_shown(night):
    """At every sync (each 5 minutes), the digest due is the one whose send time the local
    clock showed last, with that send's instant and period: never the day before's again
    when the clocks go back, never one ahead of the clock."""
    tz = ZoneInfo(night.zone)
    digest = night.digest()
    for now in syncs(night, timedelta(minutes=5), timedelta(0)):
        send, first, after = digest_due(digest, now, tz)
        want = latest(night, now)
        assert (send.astimezone(UTC), first, after) == (want.send, want.first, want.after), now


def answers_every_10_minutes(night: Night) -> Data:
    data = Data()
    t = night.start - timedelta(days=9)
    while t <= night.start + timedelta(hours=night.hours):
        data.answers.append(Answer(0, "generic", f"T-{len(data.answers)}", 5, "", t))
        t += timedelta(minutes=10)
    return data


def period_text(night: Night, due: Due) -> str:
    last = due.after - timedelta(days=1)
    return due.first.isoformat() if night.every == "day" else f"{due.first} – {last}"


def expected_digests(night: Night, times: list[datetime], data: Data):
    """(the sync that raises it, its period, its answers) for each digest of ``night``: the
    first sync at or after each send time since the first sync (when the digest was
    configured), the latest period only when one sync finds two due; a period of no local
    day at all (a day the zone skipped) raises nothing."""
    tz = ZoneInfo(night.zone)
    by_sync: dict[datetime, Due] = {}
    for due in sends(night):
        if times[0] <= due.send <= times[-1] and local_days(night, due):
            by_sync[next(t for t in times if t >= due.send)] = due
    found = []
    for at_sync, due in sorted(by_sync.items()):
        period = period_text(night, due)
        days = {due.first + timedelta(days=i) for i in range((due.after - due.first).days)}
        count = sum(1 for a in data.answers if a.submitted_at.astimezone(tz).date() in days)
        found.append((at_sync, period, count))
    return found


CADENCES = {
    "every-5-minutes": (timedelta(minutes=5), timedelta(0)),
    "every-10-minutes-at-3": (timedelta(minutes=10), timedelta(minutes=3)),
    "every-25-minutes": (timedelta(minutes=25), timedelta(minutes=1)),
    "hourly-at-05": (timedelta(hours=1), timedelta(minutes=5)),
}


@pytest.mark.parametrize("cadence", CADENCES)
@pytest.mark.parametrize("night", NIGHTS, ids=lambda n: n.label)
def test_each_period_is_raised_once_at_the_first_sync_after_its_send_time(night, cadence):
    """Syncs at ``cadence`` through the night: each period once, at the first sync at or after
    its send time, with the answers of its local days (none on a day the zone skipped)."""
    data = answers_every_10_minutes(night)
    times = list(syncs(night, *CADENCES[cadence]))
    assert raised_by(night, times, data) == expected_digests(night, times, data)


def raised_by(night: Night, times: list[datetime], data: Data) -> list[tuple[datetime, str, int]]:
    """(the sync, the period, its answers) of each digest syncs at ``times`` raise; the first
    configured at the first. One per key, as the store keeps them (the key is the period)."""
    tz = ZoneInfo(night.zone)
    digest = night.digest()
    raised: dict[str, tuple[datetime, str, int]] = {}
    for now in times:
        inputs = Inputs(changed=[], data=data, scale=Scale(1, 5, 4), tz=tz, helpdesks={}, now=now)
        found = digest_alert(digest, inputs, data, first_seen=times[0])
        if found is not None and found.key not in raised:
            message = found.message
            assert message.period is not None and message.figures is not None
            raised[found.key] = (now, message.period, message.figures.answers)
    return list(raised.values())


@pytest.fixture
def berlin_digest(make_config, make_services, fake_notify, fake_helpdesk):
    config = make_config(
        alerts=alerts_section(
            fake_notify,
            rules=[],
            digests=[{"name": "daily", "at": "02:30", "destinations": ["slack"]}],
        ),
        metrics={"timezone": "Europe/Berlin"},
    )
    return make_services(config)


def test_the_digest_of_a_repeated_half_hour_goes_with_the_first_hourly_sync_after_it(
    berlin_digest, clock
):
    """Hourly syncs at :05 UTC through the night the clocks go back (2026-10-25): the
    02:30 CEST digest (00:30 UTC) goes at 01:05 UTC (02:05 CET), once; it waited for the
    second 02:30 (03:05 CET) when send times were compared on the wall clock."""
    data = Data()
    clock.now = utc(2026, 10, 24, 12, 5)
    sent = []
    while clock.now <= utc(2026, 10, 25, 12, 5):
        if raise_now(berlin_digest, [], data=data).raised:
            sent.append(clock.now)
        clock.advance(3600)
    assert sent == [utc(2026, 10, 25, 1, 5)]
    assert [m.period for m in digests(berlin_digest)] == ["2026-10-24"]


@pytest.mark.parametrize(
    ("zone", "times", "day"),
    [
        # The 25-hour day in Berlin: the repeated hour is the same day's.
        (
            "Europe/Berlin",
            ["2026-10-25T00:00:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"],
            "2026-10-25",
        ),
        ("Europe/Berlin", ["2026-10-25T23:59:59+01:00"], "2026-10-25"),
        ("Europe/Berlin", ["2026-10-26T00:00:00+01:00"], "2026-10-26"),
        ("Europe/Berlin", ["2027-03-28T00:00:00+01:00", "2027-03-28T23:59:59+02:00"], "2027-03-28"),
        # Santiago's Saturday ends twice; Sunday starts once, after the second.
        (
            "America/Santiago",
            ["2026-04-04T23:59:59-03:00", "2026-04-04T23:00:00-04:00", "2026-04-04T23:59:59-04:00"],
            "2026-04-04",
        ),
        ("America/Santiago", ["2026-04-05T00:00:00-04:00"], "2026-04-05"),
        # Havana's Sunday starts twice: both in Sunday.
        ("America/Havana", ["2026-10-31T23:59:59-04:00"], "2026-10-31"),
        (
            "America/Havana",
            ["2026-11-01T00:00:00-04:00", "2026-11-01T00:00:00-05:00"],
            "2026-11-01",
        ),
        # Cairo's Friday has no midnight: it starts at 01:00 +03.
        ("Africa/Cairo", ["2026-04-23T23:59:59+02:00"], "2026-04-23"),
        ("Africa/Cairo", ["2026-04-24T01:00:00+03:00"], "2026-04-24"),
    ],
)
def test_an_answer_at_the_turn_of_a_day_the_clocks_change_is_in_its_local_day(zone, times, day):
    """A daily digest reports local midnight to midnight (23 or 25 hours on those days): an
    answer is in the digest of the day the local clock showed when it came, and no other."""
    tz = ZoneInfo(zone)
    data = Data()
    for i, text in enumerate(times):
        data.answers.append(Answer(0, "generic", f"T-{i}", 5, "", datetime.fromisoformat(text)))
    digest = DigestConfig(name="daily", at="09:00", destinations=["slack"])
    counts = {}
    for shift in (-1, 0, 1):
        reported = date.fromisoformat(day) + timedelta(days=shift)
        now = datetime.combine(reported + timedelta(days=1), time(12, 0), tzinfo=tz)
        inputs = Inputs(changed=[], data=data, scale=Scale(1, 5, 4), tz=tz, helpdesks={}, now=now)
        found = digest_alert(digest, inputs, data, first_seen=now - timedelta(days=30))
        assert found is not None and found.message.period == reported.isoformat()
        assert found.message.figures is not None
        counts[shift] = found.message.figures.answers
    assert counts == {-1: 0, 0: len(times), 1: 0}


OUTAGES = [
    # Down from Saturday evening to Tuesday evening over the night the clocks go back.
    Night("daily-0900", "Europe/Berlin", utc(2026, 10, 20, 10, 0), "09:00", hours=16 * 24),
    Night("daily-0230", "Europe/Berlin", utc(2026, 10, 20, 10, 0), "02:30", hours=16 * 24),
    Night(
        "weekly-monday",
        "Europe/Berlin",
        utc(2026, 10, 20, 10, 0),
        "09:00",
        every="week",
        weekday="monday",
        hours=16 * 24,
    ),
    Night(
        "weekly-sunday-0230",
        "Europe/Berlin",
        utc(2026, 10, 20, 10, 0),
        "02:30",
        every="week",
        weekday="sunday",
        hours=16 * 24,
    ),
]


@pytest.mark.parametrize("down", [timedelta(days=3), timedelta(days=8)], ids=["3d", "8d"])
@pytest.mark.parametrize("night", OUTAGES, ids=lambda n: n.label)
def test_after_an_outage_over_the_night_the_clocks_change_the_latest_digest_goes_once(night, down):
    """Syncs every 10 minutes, none from Saturday 2026-10-24 20:00 UTC for ``down``: the
    first sync back sends the latest period due (a weekly one missed by the outage too), once;
    the periods missed before it are not sent, and the ones after it all are, on time."""
    data = answers_every_10_minutes(night)
    gone = utc(2026, 10, 24, 20, 0)
    times = [
        t for t in syncs(night, timedelta(minutes=10), timedelta(0)) if not gone <= t < gone + down
    ]
    back = next(t for t in times if t >= gone)
    got = raised_by(night, times, data)
    assert got == expected_digests(night, times, data)
    assert [period for t, period, _ in got if t == back] == [
        period_text(night, latest(night, back))
    ]
    assert len({period for _, period, _ in got}) == len(got)
