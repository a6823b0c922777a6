"""Local times in the report (answers.csv, the Responses and agent tabs): the instant's own
wall-clock time, also in zones whose clocks change at a half hour of UTC (Adelaide, St. John's,
Lord Howe), whichever answer was converted first.
"""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from csat_hook.sync.report.common import LocalTime

# Each pair: two instants in one UTC hour, on either side of a change of the zone's offset.
HALF_HOUR_CHANGES = [
    # Adelaide (+9:30 → +10:30 at 02:00 local, 16:30 UTC)
    ("Australia/Adelaide", datetime(2026, 10, 3, 16, 10, tzinfo=UTC), 40),
    # St. John's (−2:30 → −3:30 at 02:00 local, 04:30 UTC)
    ("America/St_Johns", datetime(2026, 11, 1, 4, 10, tzinfo=UTC), 30),
    # Lord Howe (+10:30 → +11 at 02:00 local, 15:30 UTC)
    ("Australia/Lord_Howe", datetime(2026, 10, 3, 15, 10, tzinfo=UTC), 40),
    # Lord Howe (+11 → +10:30 at 02:00 local, 15:00 UTC): the hour after it is steady
    ("Australia/Lord_Howe", datetime(2026, 4, 4, 14, 50, tzinfo=UTC), 20),
]


@pytest.mark.parametrize(("zone", "first", "minutes"), HALF_HOUR_CHANGES)
@pytest.mark.parametrize("reverse", [False, True])
def test_local_time_is_exact_across_a_half_hour_change(
    zone: str, first: datetime, minutes: int, reverse: bool
) -> None:
    tz = ZoneInfo(zone)
    moments = [first, first + timedelta(minutes=minutes)]
    if reverse:
        moments.reverse()
    convert = LocalTime(tz)
    for moment in moments:
        expected = moment.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
        assert convert(moment) == expected, (zone, moment)


def test_local_time_every_minute_of_a_change_day() -> None:
    tz = ZoneInfo("Australia/Adelaide")
    convert = LocalTime(tz)
    start = datetime(2026, 10, 3, 12, 0, tzinfo=UTC)
    for minute in range(0, 12 * 60, 7):
        moment = start + timedelta(minutes=minute, seconds=13)
        assert convert(moment) == moment.astimezone(tz).replace(
            tzinfo=None, second=0, microsecond=0
        )
