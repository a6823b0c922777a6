"""release_stale's due time must be stored as UTCDateTime stores it (naive UTC)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import sqlalchemy as sa

from csat_hook.db.engine import make_engine
from csat_hook.db.schema import outbox
from csat_hook.outbox.store import workers as store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("zone", [None, "America/New_York"])
@pytest.mark.parametrize("slow", [[], ["mail"]])
@pytest.mark.parametrize("destination", [None, "mail", "slack"])
def test_a_taken_over_row_is_due_at_check_at(migrated_url, zone, slow, destination):
    engine = make_engine(migrated_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                outbox.insert().values(
                    helpdesk="h",
                    dialog_id="d",
                    context={},
                    status="sending",
                    next_attempt_at=NOW,
                    lease_until=NOW - timedelta(seconds=1),
                    claimed_by="gone",
                    created_at=NOW,
                    updated_at=NOW,
                    destination=destination,
                    kind="alert" if destination else "reply",
                )
            )
        check_at = NOW + timedelta(seconds=30)
        slow_check_at = NOW + timedelta(seconds=200)
        with engine.begin() as conn:
            if zone and conn.dialect.name == "postgresql":
                # The engine sets UTC on each connection; a server whose time zone is another
                # one is what the parameters' type must survive.
                conn.exec_driver_sql(f"SET LOCAL TIME ZONE '{zone}'")
            released = store.release_stale(
                conn,
                NOW,
                dead_before=NOW,
                quiet_before=NOW,
                check_at=check_at,
                slow_destinations=slow,
                slow_check_at=slow_check_at,
            )
            raw = conn.execute(sa.text("select next_attempt_at from outbox")).scalar()
            due = conn.execute(sa.select(outbox.c.next_attempt_at)).scalar()
            pending_now = conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.next_attempt_at <= NOW + timedelta(seconds=1))
            ).scalar()
        expected = slow_check_at if destination in slow else check_at
        assert len(released) == 1
        assert (due, pending_now) == (expected, 0), f"stored raw: {raw!r}"
    finally:
        engine.dispose()
