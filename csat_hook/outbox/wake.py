"""Waking delivery workers when a reply is queued; polling is only the fallback.

Inside one process (``csat-hook serve``) the webhook handler calls :meth:`Waker.notify`
after its commit, on PostgreSQL only while its own worker's listener does not hear (else the
NOTIFY below may choose that worker: two wake-ups for one reply; ``Services._replies_queued``).
Across processes on PostgreSQL, the webhook transaction NOTIFYs one live
worker on its own channel (:func:`notify_workers`: one worker woken per batch of closes, not
all of them; a worker whose claim fills its threads while more are due passes it on, inside
the claim statement: :func:`live_channel`), and
that worker's :class:`PostgresListener` turns it into a local notify. Each listener also
LISTENs on the shared ``csat_hook_outbox`` channel, for broadcasts (operator requeues, alerts,
no live worker known).

A worker is "live" for a wake-up only while its listener is known to hear: its connection
answered a round trip within :data:`HEARING_SECONDS` when the worker last beat (the beat writes
``workers.listening_at``). One whose LISTEN connection dropped without a word (a dead peer,
noticed by TCP only after about a minute) went on beating from its other connections and was
still chosen: the reply waited for the poll. It is passed over within a few seconds now, and
chosen again once its listener hears again.

A listener whose round trip gets no answer while TCP sees nothing wrong (a proxy or middlebox
that hangs the connection without resetting it: keepalives and the bytes sent are still
acknowledged, so neither keepalives nor tcp_user_timeout ever fail it) abandons that
connection after :data:`ABANDON_SECONDS` and connects again, so it hears again within about
that time once a new connection gets through, instead of never.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import socket
import threading
import time
from collections import Counter
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from csat_hook.db import engine as db_engine
from csat_hook.db.schema import workers
from csat_hook.retry import Backoff

logger = logging.getLogger(__name__)

# Every worker LISTENs on its own channel (one woken per NOTIFY) and on the shared one (a
# broadcast: operator requeues, alerts, or no live worker known).
NOTIFY_CHANNEL = "csat_hook_outbox"
WORKER_CHANNEL_PREFIX = "csat_hook_w_"
# A worker whose heartbeat is older than this is not chosen for a wake-up (the default
# delivery.worker_dead_after_seconds).
LIVE_SECONDS = 10.0
# A listener confirms its connection with a round trip every CONFIRM_SECONDS; one that has
# not had an answer for HEARING_SECONDS does not count as hearing (its worker's next beat
# says so). Room for a slow answer or two: a worker passed over by mistake costs nothing but
# a wake-up sent to another one (or to all, when none hears).
CONFIRM_SECONDS = 1.0
HEARING_SECONDS = 3.0
# A listener whose round trip has had no answer for ABANDON_SECONDS abandons its connection
# and connects again. Its worker is passed over after HEARING_SECONDS already, so waiting
# longer costs no reply any latency, only the time until the worker is chosen again after the
# path heals; shorter would churn connections (a new backend each, and a gap in LISTEN) under a
# server merely slow to answer for a few seconds. Ten seconds is what the service gives a
# server to accept a connection (db.engine.CONNECT_TIMEOUT_SECONDS) and a worker to beat before
# it counts as dead (LIVE_SECONDS): a SELECT 1 unanswered for that long is a connection gone,
# which TCP might notice only at tcp_user_timeout (60 s), or never (keepalives=0, or a
# middlebox that hangs the flow while acknowledging every byte).
ABANDON_SECONDS = 10.0


def worker_channel(worker_id: str) -> str:
    """The NOTIFY channel of one worker: a plain identifier whatever its id contains (the
    same md5 PostgreSQL computes in :func:`_notify_one_stmt`)."""
    digest = hashlib.md5(worker_id.encode(), usedforsecurity=False).hexdigest()
    return WORKER_CHANNEL_PREFIX + digest[:16]


def live_channel(exclude: bool) -> Any:
    """A SELECT of one live worker's channel, chosen at random (spreads wake-ups without
    shared state): a worker that beat, its listener hearing, since the ``alive_since``
    parameter and, with ``exclude``, is not the ``worker_id`` parameter. No row when there is
    none."""
    since = sa.bindparam("alive_since", type_=workers.c.listening_at.type)
    chosen = sa.select(
        sa.literal(WORKER_CHANNEL_PREFIX) + sa.func.substr(sa.func.md5(workers.c.id), 1, 16)
    ).where(workers.c.listening_at >= since)
    if exclude:
        chosen = chosen.where(workers.c.id != sa.bindparam("worker_id"))
    return chosen.order_by(sa.func.random()).limit(1)


@functools.cache
def _notify_one_stmt() -> Any:
    # Built once: every batch of closes runs it. One statement, always exactly one NOTIFY:
    # a live worker's channel, else the shared one.
    channel = sa.func.coalesce(live_channel(False).scalar_subquery(), NOTIFY_CHANNEL)
    return sa.select(sa.func.pg_notify(channel, ""))


def notify_one_sql(alive_since_param: str) -> str:
    """The SQL expression of :func:`_notify_one_stmt` for a hand-written statement:
    ``pg_notify`` on one live worker's channel (chosen at random among those that beat, their
    listener hearing, since the ``%(<alive_since_param>)s`` parameter, a naive UTC timestamp),
    else the shared one.
    Kept beside the Core statement so the two choose alike (``tests/outbox/test_wake.py``
    counts the NOTIFYs of both)."""
    return (  # constants and a parameter name only: no value goes into the text
        f"pg_notify(coalesce((SELECT '{WORKER_CHANNEL_PREFIX}' || substr(md5(workers.id), 1, 16)"  # noqa: S608
        f" FROM workers WHERE workers.listening_at >= %({alive_since_param})s::timestamp"
        f" ORDER BY random() LIMIT 1), '{NOTIFY_CHANNEL}'), '')"
    )


@functools.cache
def _broadcast_stmt() -> Any:
    return sa.select(sa.func.pg_notify(NOTIFY_CHANNEL, ""))


def notify_workers(
    conn: sa.Connection, now: datetime | None = None, *, live_seconds: float = LIVE_SECONDS
) -> None:
    """Wake delivery workers in other processes (PostgreSQL LISTEN/NOTIFY, sent on commit).

    With ``now``: one worker, chosen among those that beat in the last ``live_seconds`` with
    their listener hearing, on its own channel (no thundering herd: the others sleep on); it
    claims what is due and, if that fills its threads while more are due, its claim passes
    the wake-up on to one other live worker. With no live worker known (none whose listener
    hears), or without ``now`` (a requeue of many rows, alerts), every worker is woken.
    """
    if conn.dialect.name != "postgresql":
        return
    if now is None:
        conn.execute(_broadcast_stmt())
        return
    conn.execute(_notify_one_stmt(), {"alive_since": now - timedelta(seconds=live_seconds)})


RECONNECT_BACKOFF = Backoff(base=1.0, cap=30.0)


class Waker:
    """A generation counter behind a condition: no wake-up is lost between check and wait."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Block until a notify newer than ``seen`` or the timeout; True when notified."""
        with self._cond:
            return self._cond.wait_for(lambda: self._generation != seen, timeout=timeout)


class PostgresListener:
    """LISTEN in a daemon thread and forward to a :class:`Waker`: on the shared outbox
    channel, and on ``worker_id``'s own channel when given.

    Connected as the engine's connections are (:func:`~csat_hook.db.engine.pg_connect_args`:
    the connect timeout, TCP keepalives and tcp_user_timeout, a URL's own values kept), so
    a server gone silent is noticed within about a minute; any failure, to connect or while
    waiting, is logged (``wake.listen-failed``) and followed by a reconnect with backoff.

    Every :data:`CONFIRM_SECONDS` it confirms its connection with a round trip: while the
    last one answered within :data:`HEARING_SECONDS`, :meth:`hearing` is true and its worker
    may be the one woken for a reply. A connection that dropped without a word gives no
    answer (until TCP gives up on it, and the listener reconnects), so its worker is passed
    over meanwhile instead of being woken through it.

    A round trip (the confirmation, or the LISTENs after connecting) that has had no answer
    for ``abandon_after`` seconds (:data:`ABANDON_SECONDS` by default) abandons the
    connection: a watchdog thread shuts its socket down, the wait fails at once, and the
    listener reconnects with backoff as after any failure, logging one line
    (``wake.listen-abandoned`` instead of ``wake.listen-failed``: how long it waited, and the
    reconnect's delay; never the URL). :meth:`stop` cuts a round trip short the same way, so
    both threads end promptly whatever the connection does.

    ``received`` counts the NOTIFYs that arrived, per channel (what "one worker woken per
    reply" is measured by).
    """

    def __init__(
        self,
        database_url: str,
        waker: Waker,
        *,
        worker_id: str | None = None,
        abandon_after: float = ABANDON_SECONDS,
    ) -> None:
        url = make_url(database_url).set(drivername="postgresql+psycopg")
        # The URL as the engine's connections read it (the driver's keyword arguments), not
        # rendered again: that encoded its query for a form, a space as "+", which libpq
        # reads as a "+" (``options=-c%20statement_timeout%3D5000`` refused at every connect).
        self._url_params = dict(url.get_dialect()().create_connect_args(url)[1])
        # The engine's connection parameters, each only where the URL gives none: the connect
        # timeout, and the keepalives and tcp_user_timeout without which a server gone
        # without a reset (a partition, a failover, a NAT that dropped the flow) left this
        # connection, which only waits to read, blocked for the kernel's two hours, its
        # worker woken by nothing but its poll meanwhile. A dead socket then fails the wait
        # below, and the listener reconnects.
        self._connect_args = db_engine.pg_connect_args(url)
        self._waker = waker
        self.channels = [NOTIFY_CHANNEL]
        if worker_id is not None:
            self.channels.append(worker_channel(worker_id))
        self.received: Counter[str] = Counter()
        self.listening = threading.Event()
        # When (time.monotonic) a round trip last confirmed that the connection hears: the
        # time it was sent, as everything the server sent before its answer has arrived.
        # None while not connected.
        self._heard_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        # The watchdog's view of the connection, under _guard: a duplicate of its socket (its
        # own file descriptor, closed by the listener thread only once done with the
        # connection, so a shutdown never reaches a descriptor reused by another connection),
        # when the round trip awaited was sent (None: none awaited), and how long the one it
        # abandoned had waited (for the listener thread's log line).
        self._abandon_after = abandon_after
        self._guard = threading.Lock()
        self._socket: socket.socket | None = None
        self._asked_at: float | None = None
        self._abandoned: float | None = None
        self._watchdog = threading.Thread(
            target=self._watch, name="pg-listen-watchdog", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        self._watchdog.start()

    def stop(self) -> None:
        """Stop listening: both threads end promptly (a round trip awaited is cut short), the
        connection is closed."""
        self._stop.set()
        self._heard_at = None
        with self._guard:
            self._shut_down()

    def hearing(self) -> bool:
        """Whether a NOTIFY sent now would be heard: the listener's connection answered a
        round trip sent less than :data:`HEARING_SECONDS` ago. Cheap (no I/O): read by its
        worker's every beat."""
        heard = self._heard_at
        return heard is not None and time.monotonic() - heard < HEARING_SECONDS

    def _shut_down(self) -> None:
        # Under _guard. A shutdown, not a close: the listener thread's wait wakes at once with
        # an end of stream (psycopg raises OperationalError), and psycopg still owns and
        # closes the connection's own descriptor in that thread, the only one using it.
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)

    def _watch(self) -> None:
        """The watchdog thread: abandon the connection once a round trip has waited
        ``abandon_after``. It looks every CONFIRM_SECONDS (a quarter of ``abandon_after`` at
        most): a wake-up costs a lock and a clock read."""
        interval = min(CONFIRM_SECONDS, self._abandon_after / 4)
        while not self._stop.wait(interval):
            with self._guard:
                asked = self._asked_at
                if asked is None or self._socket is None or self._abandoned is not None:
                    continue
                waited = time.monotonic() - asked
                if waited >= self._abandon_after:
                    self._abandoned = waited
                    self._shut_down()

    def _watched(self, conn: Any) -> None:
        """Let the watchdog see ``conn`` (just connected)."""
        fd = os.dup(conn.fileno())
        try:
            dup = socket.socket(fileno=fd)
        except OSError:
            os.close(fd)
            raise
        with self._guard:
            self._socket = dup
            if self._stop.is_set():  # stopped while connecting: end it now
                self._shut_down()

    def _unwatched(self) -> None:
        with self._guard:
            dup, self._socket = self._socket, None
            self._asked_at = None
        if dup is not None:
            dup.close()

    def _round_trip(self, conn: Any, statement: str) -> float:
        """Execute ``statement`` under the watchdog; when it was sent."""
        sent = time.monotonic()
        with self._guard:
            self._asked_at = sent
        conn.execute(statement)
        with self._guard:
            self._asked_at = None
        return sent

    def _run(self) -> None:
        import psycopg  # PostgreSQL's own listener: a SQLite deployment never loads the driver
        import psycopg.conninfo

        failures = 0
        while not self._stop.is_set():
            try:
                params: dict[str, Any] = {**self._url_params, **self._connect_args}
                # The host name within the connect timeout, as the engine's connections do
                # (psycopg resolves it before the timeout applies); again at each reconnect.
                db_engine.resolve_host(params)
                conninfo = psycopg.conninfo.make_conninfo("", **params)
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    self._watched(conn)
                    try:
                        self._listen(conn)
                        failures = 0
                        while not self._stop.is_set():
                            for notify in conn.notifies(timeout=CONFIRM_SECONDS):
                                self.received[notify.channel] += 1
                                self._waker.notify()
                            # A connection that only waits to read learns of nothing when it
                            # drops without a word: ask, and count it as hearing only while it
                            # answers (NOTIFYs arriving meanwhile wait for the loop above).
                            self._heard_at = self._round_trip(conn, "SELECT 1")
                    finally:
                        self._unwatched()
            except Exception as exc:  # any connection trouble: reconnect with backoff
                self._heard_at = None
                with self._guard:
                    abandoned, self._abandoned = self._abandoned, None
                if self._stop.is_set():
                    return  # stop() cut it short: nothing went wrong
                failures += 1
                delay = RECONNECT_BACKOFF.delay(failures)
                if abandoned is not None:
                    logger.warning(
                        "wake.listen-abandoned",
                        extra={"waited": round(abandoned, 3), "delay": round(delay, 3)},
                    )
                else:
                    logger.warning(
                        "wake.listen-failed",
                        extra={"error": type(exc).__name__, "delay": round(delay, 3)},
                    )
                self._stop.wait(delay)

    def _listen(self, conn: Any) -> None:
        sent = time.monotonic()
        for channel in self.channels:  # plain identifiers (see worker_channel)
            self._round_trip(conn, f"LISTEN {channel}")
        self._heard_at = sent
        self.listening.set()
        # A notify may have been missed while (re)connecting: wake once to re-check.
        self._waker.notify()
