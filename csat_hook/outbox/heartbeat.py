"""A worker's heartbeat and the claims it holds: the proof that the process is alive, the
leases of its replies in flight, the takeover of gone workers' replies, and the fence.

Every ``delivery.heartbeat_seconds`` a thread updates the worker's row in ``workers``,
extends the leases of the replies it is sending (so a lease never expires under a running
request), and takes over the replies of workers that stopped beating for
``delivery.worker_dead_after_seconds`` (or whose lease expired): back to pending, due once
whatever the old owner may have sent has settled, and looked up before being sent again. Its
fence: a reply whose claim this worker has not confirmed (claimed or renewed) for
``fence_seconds`` may already be taken over, and is not sent (:meth:`HttpClient.guarded`).

After each beat it also runs the process's chores: housekeeping the composition root hands
over (pruning old clicks, :meth:`csat_hook.clicks.store.ClickRecorder.prune_due`), so they
run wherever a worker runs without the outbox importing them. A chore decides for itself
whether it is due (most beats it is not, and queries nothing), keeps each run short (it
delays the next beat), and its failure is logged without failing the beat.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from csat_hook.clock import Clock
from csat_hook.db.engine import UNAVAILABLE
from csat_hook.db.engine import unavailable_cause
from csat_hook.outbox import store
from csat_hook.outbox.config import DeliveryConfig
from csat_hook.outbox.wake import Waker

# Log lines keep the logger name they had before the module was split out of worker.
logger = logging.getLogger("csat_hook.outbox.worker")


class Heartbeat:
    """One worker's liveness and the replies it holds (``owned``: reply id → when this worker
    last knew the claim was its own, claimed or renewed; what the fence judges).

    ``hearing`` says whether the worker's NOTIFY listener hears now
    (:meth:`~csat_hook.outbox.wake.PostgresListener.hearing`); each beat writes it, and only
    a worker that beat hearing is the one woken for a queued reply. None (no listener): it
    never is, and is woken by broadcasts and its poll."""

    def __init__(
        self,
        engine: sa.Engine,
        config: DeliveryConfig,
        *,
        waker: Waker,
        clock: Clock,
        worker_id: str,
        chores: Sequence[Callable[[], object]] = (),
        exchanges: Mapping[str, float] | None = None,
    ) -> None:
        self.engine = engine
        self.chores = chores
        self.config = config
        # Alert destinations whose one send may outlast a request (an SMTP exchange's
        # deadline): name → its longest exchange. The fence and a takeover allow for it.
        self.exchanges = {
            name: seconds
            for name, seconds in (exchanges or {}).items()
            if seconds > config.request_seconds
        }
        self.waker = waker
        self.clock = clock
        self.worker_id = worker_id
        self.owned: dict[int, datetime] = {}
        self.hearing: Callable[[], bool] | None = None
        self._owned_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the claims held -------------------------------------------------------------------

    def hold(self, ids: Iterable[int], since: datetime) -> None:
        """This worker claimed ``ids`` at ``since`` (taken before the claim's transaction)."""
        with self._owned_lock:
            self.owned.update((outbox_id, since) for outbox_id in ids)

    def let_go(self, outbox_id: int) -> None:
        """The delivery of ``outbox_id`` is over (its outcome recorded, or not)."""
        with self._owned_lock:
            self.owned.pop(outbox_id, None)

    # --- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Beat once (registered before the first claim), then every ``heartbeat_seconds``."""
        self._safe_beat()
        self._thread = threading.Thread(target=self._loop, name="delivery-heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop beating (after the replies in flight are finished) and unregister. Never
        raises: a failure to unregister is logged and the stop goes on (the caller still has
        outcomes to write); the row stays and looks dead soon, harmless, as nothing of ours is
        in flight."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        try:
            with self.engine.begin() as conn:
                store.unregister(conn, self.worker_id)
        except UNAVAILABLE as exc:
            # Not only a driver's error: a pool whose every connection is held by a database
            # that stopped answering raises SQLAlchemy's TimeoutError, which escaped into the
            # worker's stop and skipped writing the outcomes of the replies just sent.
            logger.warning("worker.database-unavailable", extra={"error": unavailable_cause(exc)})
        except Exception as exc:
            logger.warning("worker.unregister-failed", extra={"error": type(exc).__name__})

    def beat(self) -> None:
        """One heartbeat: this worker is alive, and its replies in flight stay leased; it
        may be the one woken for a reply only if its listener hears (``hearing``)."""
        with self._owned_lock:
            in_flight = list(self.owned)
        hearing = self.hearing is not None and self.hearing()
        with self.engine.begin() as conn:
            # Timed once the transaction has the database (SQLite: BEGIN IMMEDIATE waits while
            # another process holds it): a time taken before that wait would be written as the
            # beat's, making this live worker look as silent as the wait was long.
            now = self.clock()
            lease = now + timedelta(seconds=self.config.lease_seconds)
            renewed = store.heartbeat(
                conn, self.worker_id, now, lease_until=lease, in_flight=in_flight, hearing=hearing
            )
        with self._owned_lock:
            # A reply not renewed was taken over meanwhile: its time stays, its fence closes.
            for outbox_id in renewed & self.owned.keys():
                self.owned[outbox_id] = now

    def release_stale(self) -> int:
        """Take over the replies of other workers that stopped beating, and those whose lease
        expired (this worker's own only when none of its deliveries holds them: one whose
        outcome could not be recorded): pending again, due after
        ``delivery.takeover_wait_seconds``, outcome unknown."""
        now = self.clock()
        config = self.config
        dead_after = timedelta(seconds=config.worker_dead_after_seconds)
        # An e-mail the old owner started just before its fence closed may still be in its
        # SMTP exchange long after one request would have ended: sent again only after it.
        slow = max(self.exchanges.values(), default=config.request_seconds)
        with self._owned_lock:
            in_flight = list(self.owned)
        with self.engine.begin() as conn:
            released = store.release_stale(
                conn,
                now,
                # Never its own replies as a dead worker's: it is alive, it is the one asking,
                # however old its last written beat looks (one that waited on a lock). Nor
                # one it is sending, whatever its lease says: its outcome is this worker's
                # to record.
                releaser=self.worker_id,
                in_flight=in_flight,
                dead_before=now - dead_after,
                quiet_before=now + timedelta(seconds=config.lease_seconds) - dead_after,
                check_at=now + timedelta(seconds=config.takeover_wait_seconds),
                slow_destinations=sorted(self.exchanges),
                slow_check_at=now + timedelta(seconds=config.takeover_wait(slow)),
            )
        if released:
            logger.warning(
                "worker.takeover",
                extra={"worker": self.worker_id, "count": len(released)},
            )
            self.waker.notify()  # the dispatcher's next due time may be sooner now
        return len(released)

    def _safe_beat(self) -> None:
        try:
            self.beat()
            self.release_stale()
        except DBAPIError as exc:
            # Until a beat succeeds again the fence closes on this worker's replies in
            # flight; others take them over if it stays silent.
            logger.warning("worker.heartbeat-failed", extra={"error": type(exc.orig).__name__})
        except Exception:
            logger.exception("worker.heartbeat-failed")
        self.run_chores()

    def run_chores(self) -> None:
        """Run each chore once (each decides whether it has work); a failure is logged."""
        for chore in self.chores:
            try:
                chore()
            except DBAPIError as exc:
                logger.warning("worker.chore-failed", extra={"error": type(exc.orig).__name__})
            except Exception:
                logger.exception("worker.chore-failed")

    def _loop(self) -> None:
        while not self._stop.wait(self.config.heartbeat_seconds):
            self._safe_beat()

    # --- the fence -------------------------------------------------------------------------

    def fence(self, item: sa.Row[Any]) -> Callable[[], bool]:
        """Whether this worker may still send ``item`` (checked before each write request).

        With a heartbeat: while the claim was confirmed (claimed, or renewed by a beat that
        found it still ours) less than ``fence_seconds`` ago; others take it over only once
        it has not been for ``worker_dead_after_seconds``. Without one (``run_once``, whose
        claims only expire): while the claim's lease outlasts one more request (or, to an
        e-mail destination, one more SMTP exchange).
        """
        if self._thread is not None:
            fence = timedelta(seconds=self.config.fence_seconds)

            def confirmed() -> bool:
                with self._owned_lock:
                    since = self.owned.get(item.id)
                return since is not None and self.clock() - since <= fence

            return confirmed
        # Time for one more request, or for the destination's whole exchange (an e-mail).
        exchange = self.exchanges.get(item.destination or "", self.config.request_seconds)
        margin = timedelta(seconds=exchange)
        lease_until: datetime = item.lease_until

        def leased() -> bool:
            return self.clock() + margin < lease_until

        return leased
