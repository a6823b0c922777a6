"""The words every destination shares (csat_hook.notify.render)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from csat_hook.notify.records import LOW_RATING
from csat_hook.notify.records import OVERFLOW
from csat_hook.notify.records import AlertMessage
from csat_hook.notify.render import fact_lines
from csat_hook.notify.render import headline
from csat_hook.notify.render import when

MOSCOW = ZoneInfo("Europe/Moscow")


def test_times_are_shown_in_utc_whatever_zone_they_come_in():
    """'... UTC' was printed after the time as it came: right only because every stored time
    is UTC today; a time in another zone was shown as its wall clock, labelled UTC."""
    local = datetime(2026, 12, 7, 22, 5, 12, tzinfo=MOSCOW)  # 19:05:12 UTC
    assert when(local) == "2026-12-07 19:05 UTC"
    assert when(local.isoformat()) == "2026-12-07 19:05 UTC"
    assert when("2026-12-07T19:05:12+00:00") == "2026-12-07 19:05 UTC"
    assert when("2026-12-07T19:05:12") == "2026-12-07 19:05 UTC"  # no zone: stored UTC
    assert when("not a time") == "not a time"
    answer = AlertMessage(
        ref="A-1",
        event=LOW_RATING,
        rule="low",
        created_at=local.isoformat(),
        rating=1,
        agent_name="Ann",
        submitted_at=local.isoformat(),
    )
    assert "Submitted: 2026-12-07 19:05 UTC" in fact_lines(answer)
    overflow = AlertMessage(
        ref="A-2",
        event=OVERFLOW,
        rule="cap_per_hour",
        created_at=local.isoformat(),
        destination="ops",
        held_until=datetime(2026, 12, 7, 23, 0, tzinfo=MOSCOW).isoformat(),
    )
    assert "until 2026-12-07 20:00 UTC;" in headline(overflow)
