"""The reply queue as the load benchmarks watch it: waiting until every queued reply and
alert has settled (sent, failed or given up), which is when a run's CPU and latency are read."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from csat_hook.db.schema import outbox


def wait_drained(engine: Engine, timeout: float, *, poll: float = 0.5) -> bool:
    """Poll until no outbox row is ``pending`` or ``sending``; False if ``timeout`` seconds
    pass first."""
    deadline = time.monotonic() + timeout
    while True:
        with engine.connect() as conn:
            waiting = conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox)
                .where(outbox.c.status.in_(("pending", "sending")))
            ).scalar_one()
        if not waiting:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
