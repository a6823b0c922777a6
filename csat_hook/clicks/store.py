"""The clicks' SQL: finding the survey a short link names, storing clicks (through the group
commit, so a burst of clicks costs one transaction), pruning old ones, reading them back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from csat_hook.clicks.scanners import BURST
from csat_hook.clicks.scanners import PREFETCH
from csat_hook.clicks.scanners import StoredClick
from csat_hook.clicks.scanners import burst_ids
from csat_hook.db.engine import LOCK_WAIT
from csat_hook.db.engine import run_transaction
from csat_hook.db.group_commit import GroupCommit
from csat_hook.db.schema import link_clicks
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys

PRUNE_EVERY = timedelta(minutes=10)
# The most clicks one prune deletes: it runs inside a transaction that stores clicks, or in one
# of its own on the delivery worker's heartbeat (on SQLite either holds the one write lock), so
# a backlog (retention_days lowered, a long history) is deleted a bounded batch per
# transaction, not a million rows while customers' clicks wait.
PRUNE_BATCH = 2_000
# How long a click's write waits for SQLite's writer lock (db/engine.py LOCK_WAIT): the
# redirect's own bound (clicks/web.py RECORD_TIMEOUT).
LOCK_WAIT_SECONDS = 2.0


# The statements a click runs, built once: building a Core statement per call (its columns
# coerced, its cache key computed anew) cost more CPU than SQLite ran it in.
_FIND_SURVEY = (
    sa.select(
        surveys.c.id,
        surveys.c.helpdesk,
        surveys.c.dialog_id,
        surveys.c.agent_name,
        surveys.c.agent_id,
        surveys.c.agent_email,
        surveys.c.team,
        surveys.c.language,
        surveys.c.token,
        surveys.c.link,
        surveys.c.status,
        surveys.c.sent_at,
        outbox.c.uncertain_since,
    )
    .select_from(surveys.outerjoin(outbox, outbox.c.survey_id == surveys.c.id))
    .where(surveys.c.token == sa.bindparam("token"))
)
_INSERT_CLICK = sa.insert(link_clicks).returning(link_clicks.c.id)
# A browser's prefetch opened no link (refused: clicks/web.py): no part of a burst. Chromium
# prefetches a score the pointer passes over, so one would make the customer's click on the
# next score, within a second, a burst.
_OPENED_A_LINK = sa.or_(link_clicks.c.reason.is_(None), link_clicks.c.reason != PREFETCH)
_NEAR_CLICKS = sa.select(
    link_clicks.c.id, link_clicks.c.survey_id, link_clicks.c.score, link_clicks.c.clicked_at
).where(
    link_clicks.c.survey_id.in_(sa.bindparam("survey_ids", expanding=True)),
    link_clicks.c.clicked_at.between(sa.bindparam("since"), sa.bindparam("until")),
    _OPENED_A_LINK,
)
_MARK_BURST = (
    sa.update(link_clicks)
    .where(
        link_clicks.c.id.in_(sa.bindparam("click_ids", expanding=True)),
        link_clicks.c.automated.is_(False),
    )
    .values(automated=True, reason=BURST)
)


def find_survey(conn: sa.Connection, token: str) -> Any | None:
    """The survey that went out with this reference (its exact, canonical spelling), with its
    reply's ``uncertain_since`` (the start of an attempt whose outcome is unknown: the reply
    may be out although the survey is not recorded as sent)."""
    return conn.execute(_FIND_SURVEY, {"token": token}).first()


@dataclass(frozen=True)
class Click:
    survey_id: int
    score: int | None
    method: str
    clicked_at: datetime
    automated: bool
    reason: str | None
    detail: str | None


class ClickRecorder:
    """Stores clicks in shared transactions; marks bursts among each batch's surveys' clicks;
    deletes clicks older than ``retention``, at most ``prune_batch`` at a time: with a write,
    or from :meth:`prune_due` (the delivery worker's heartbeat, so retention holds while no
    click arrives). Again at the next chance while a full batch was deleted, else after
    :data:`PRUNE_EVERY`; no query in between."""

    prune_batch = PRUNE_BATCH

    def __init__(
        self,
        engine: Callable[[], sa.Engine],
        *,
        burst_seconds: float,
        retention: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self.burst_seconds = burst_seconds
        self.retention = retention
        self._clock = clock
        self._pruned: datetime | None = None
        self._lock = threading.Lock()
        # (engine, seconds, the engine with LOCK_WAIT): made once, not per batch.
        self._bounded: tuple[sa.Engine, float, sa.Engine] | None = None
        self._writer: GroupCommit[Click, int] = GroupCommit(
            self._waiting_engine, self._write, name="clicks"
        )

    def record(self, click: Click, *, timeout: float) -> int:
        """Store ``click`` (committed when this returns); its row id. Raises TimeoutError
        after ``timeout`` seconds behind another click's batch, and the database's error
        (OperationalError) when a batch it writes itself waits :data:`LOCK_WAIT_SECONDS` for
        SQLite's writer lock: the customer goes on to the form, the click not stored."""
        return self._writer.submit(click, timeout=timeout)

    def _waiting_engine(self) -> sa.Engine:
        """The engine, a click's write waiting :data:`LOCK_WAIT_SECONDS` at most for SQLite's
        writer lock (a sync, a burst of closes, another process), not its 30 s: the thread
        that writes a batch is a customer's request on its way to the form."""
        engine, wait = self._engine(), LOCK_WAIT_SECONDS
        if self._bounded is None or self._bounded[:2] != (engine, wait):
            self._bounded = (engine, wait, engine.execution_options(**{LOCK_WAIT: wait}))
        return self._bounded[2]

    def close(self) -> None:
        """Wait for the clicks already handed over, then close the held connection."""
        self._writer.close()

    def _write(self, conn: sa.Connection, batch: list[Click]) -> list[int]:
        ids = [
            conn.execute(
                _INSERT_CLICK,
                {
                    "survey_id": c.survey_id,
                    "score": c.score,
                    "method": c.method,
                    "clicked_at": c.clicked_at,
                    "automated": c.automated,
                    "reason": c.reason,
                    "detail": c.detail,
                },
            ).scalar_one()
            for c in batch
        ]
        mark_bursts(conn, batch, self.burst_seconds)
        self._maybe_prune(conn)
        return ids

    def prune_due(self) -> int:
        """Delete old clicks if a prune is due, in a transaction of its own; how many. Without
        one due (most calls) nothing is queried, so this may run every few seconds. A prune
        that fails (the caller logs it) is tried again after :data:`PRUNE_EVERY`."""
        now = self._clock()
        if not self._prune_due(now):
            return 0
        deleted = run_transaction(
            self._engine(), lambda conn: prune(conn, now - self.retention, limit=self.prune_batch)
        )
        self._pruned_batch(deleted)
        return deleted

    def _maybe_prune(self, conn: sa.Connection) -> None:
        now = self._clock()
        if self._prune_due(now):
            self._pruned_batch(prune(conn, now - self.retention, limit=self.prune_batch))

    def _prune_due(self, now: datetime) -> bool:
        """Whether to prune now; if so, the next chance waits for its outcome or the interval."""
        with self._lock:
            if self._pruned is not None and now - self._pruned < PRUNE_EVERY:
                return False
            self._pruned = now
            return True

    def _pruned_batch(self, deleted: int) -> None:
        if deleted == self.prune_batch:
            with self._lock:
                self._pruned = None  # more may be left: the next chance prunes again


def mark_bursts(conn: sa.Connection, clicks: Sequence[Click], burst_seconds: float) -> int:
    """Mark the clicks that form a burst (:func:`burst_ids`) with ``clicks``, just stored, as
    automated.

    Only their surveys' clicks within ``burst_seconds`` of them are read: every burst a new
    click belongs to lies there, and the older ones were marked when they were stored. A
    click's cost does not grow with its survey's history (a link opened by a script every few
    seconds for weeks, within the rate limits, is still one small read per click).
    """
    if not clicks:
        return 0
    margin = timedelta(seconds=burst_seconds)
    rows = conn.execute(
        _NEAR_CLICKS,
        {
            "survey_ids": sorted({c.survey_id for c in clicks}),
            # One batch's clicks arrived together: one window around all of them.
            "since": min(c.clicked_at for c in clicks) - margin,
            "until": max(c.clicked_at for c in clicks) + margin,
        },
    ).all()
    found = burst_ids((StoredClick(*row) for row in rows), burst_seconds)
    if not found:
        return 0
    result = conn.execute(_MARK_BURST, {"click_ids": sorted(found)})
    return int(result.rowcount or 0)


def prune(conn: sa.Connection, before: datetime, *, limit: int = PRUNE_BATCH) -> int:
    """Delete the oldest clicks older than ``before``, at most ``limit``; how many."""
    oldest = (
        sa.select(link_clicks.c.id)
        .where(link_clicks.c.clicked_at < before)
        .order_by(link_clicks.c.clicked_at)
        .limit(limit)
    )
    result = conn.execute(sa.delete(link_clicks).where(link_clicks.c.id.in_(oldest)))
    return int(result.rowcount or 0)


def click_facts(conn: sa.Connection) -> Sequence[Any]:
    """Every stored click but a prefetch (automated, and no part of a burst) with its
    survey's reference: ``(id, token, score, clicked_at, automated)``, for the funnel."""
    return conn.execute(
        sa.select(
            link_clicks.c.id,
            surveys.c.token,
            link_clicks.c.score,
            link_clicks.c.clicked_at,
            link_clicks.c.automated,
        )
        .join(surveys, surveys.c.id == link_clicks.c.survey_id)
        .where(_OPENED_A_LINK)
    ).all()
