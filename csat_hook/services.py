"""The composition root: the objects a running process shares, built once from the config.

Flows never import this module: it imports them and wires each one with what it needs
(intake gets the adapters, the engine and the send policy; delivery gets the adapters, the
survey settings, the retry budget and the alert destinations), so data flows one way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from dataclasses import field

from sqlalchemy.engine import Engine

from csat_hook.alerts.recheck import recheck
from csat_hook.alerts.records import Scale
from csat_hook.clicks.web import ShortLinks
from csat_hook.clock import Clock
from csat_hook.clock import utcnow
from csat_hook.config import Config
from csat_hook.db.clock import shared_clock
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.helpdesks import build_helpdesks
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.helpdesks.transport import HttpClient
from csat_hook.intake.receive import Intake
from csat_hook.intake.recorder import CloseRecorder
from csat_hook.notify import build_destinations
from csat_hook.notify.base import Destination
from csat_hook.outbox.delivery import Delivery
from csat_hook.outbox.wake import Waker
from csat_hook.outbox.worker import DeliveryWorker


@dataclass
class Services:
    config: Config
    engine: Engine
    helpdesks: dict[str, Helpdesk]
    http: HttpClient
    clock: Clock = utcnow
    waker: Waker = field(default_factory=Waker)
    destinations: dict[str, Destination] = field(default_factory=dict)
    intake: Intake = field(init=False)
    short_links: ShortLinks = field(init=False)
    _workers: list[DeliveryWorker] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        recorder = CloseRecorder(
            lambda: self.engine,
            policy=self.config.policy,
            replies_queued=self._replies_queued,
            live_seconds=self.config.delivery.worker_dead_after_seconds,
        )
        self.intake = Intake(
            helpdesks=self.helpdesks,
            engine=self.engine,
            policy=self.config.policy,
            token_secret=self.config.token.secret.get_secret_value(),
            recorder=recorder,
            clock=lambda: self.clock(),
        )
        self.short_links = ShortLinks(
            survey=self.config.survey,
            secrets=self.config.token.all_secrets(),
            engine=self.engine,
            clock=lambda: self.clock(),
            monotonic=time.monotonic,
        )

    def _replies_queued(self) -> None:
        """Wake this process's delivery threads for replies a batch of closes just queued,
        unless the batch's NOTIFY already woke one worker (PostgreSQL: the transaction
        NOTIFYs one live worker, which may be this one): with a worker of this process
        hearing NOTIFYs, that worker is among those chosen from, so both wake-ups were two
        for one reply (``serve``'s own worker twice, or it and another process). A worker of
        this process that does not hear (its listener reconnecting) is woken here, as on
        SQLite, where nothing else would wake it before its poll."""
        if self.engine.dialect.name == "postgresql" and any(
            worker.hears_notifies() for worker in self._workers
        ):
            return
        self.waker.notify()

    def close(self) -> None:
        """Wait for what the web threads handed over (closes, clicks) to be written and
        close the database connections. For a process that builds services more than
        once (tests, an embedding application); a serving process keeps them to its end."""
        self.intake.recorder.close()
        self.short_links.recorder.close()
        for worker in self._workers:
            worker.recorder.close()
        self.engine.dispose()

    def delivery_worker(self, *, worker_id: str | None = None) -> DeliveryWorker:
        """A delivery worker for this process (not started)."""
        delivery = Delivery(
            self.helpdesks,
            self.config.survey,
            self.config.delivery.max_attempts,
            destinations=self.destinations,
            cancel_on_reopen=self.config.policy.cancel_on_reopen,
        )
        worker = DeliveryWorker(
            self.engine,
            delivery,
            self.config.delivery,
            waker=self.waker,
            clock=lambda: self.clock(),
            worker_id=worker_id,
            # Retention holds without new clicks or reopens: every deployment runs a worker.
            chores=[self.short_links.recorder.prune_due, self.intake.prune_reopens_due],
            # The first sync after a restart may read its source for minutes: what is queued
            # is checked against this configuration before anything of it goes out.
            before_claims=[self.recheck_alerts],
        )
        self._workers.append(worker)
        return worker

    def recheck_alerts(self) -> int:
        """Withdraw the alerts not sent yet that this configuration would not raise now, as
        every sync does (:mod:`csat_hook.alerts.recheck`), in one transaction; return how
        many deliveries were cancelled. Run by each delivery worker before its first claim
        (every web process of ``serve``, ``worker``, ``worker --once``): at a restart with a
        changed ``alerts`` section, before the first sync has read the results. Processes
        starting together are safe: its statements are conditional (an alert is withdrawn
        once, only ``pending`` deliveries of known outcome are cancelled), so a second run
        changes nothing."""
        metrics = self.config.metrics
        scale = Scale(metrics.scale_min, metrics.scale_max, metrics.top_box)
        with self.engine.begin() as conn:
            return recheck(conn, self.config.alerts, scale, self.clock(), self.config.helpdesks)


def build_services(
    config: Config,
    *,
    clock: Clock = utcnow,
    http: HttpClient | None = None,
    engine: Engine | None = None,
    create_tables: bool = True,
    database_time: bool | None = None,
) -> Services:
    """Engine, HTTP client and adapters for ``config``; creates missing tables by default.

    ``database_time``: on PostgreSQL, the service's clock (queue times, leases, heartbeats)
    is ``clock`` set to the database server's (:class:`~csat_hook.db.clock.DatabaseClock`),
    so processes on hosts whose clocks differ agree on when a reply is due and a worker is
    gone. By default (None) only for the host's own clock, :func:`~csat_hook.clock.utcnow`
    (a test's clock is its own); SQLite is one host's file and needs none."""
    if http is None:
        http = HttpClient(
            connect_timeout=config.delivery.connect_timeout_seconds,
            read_timeout=config.delivery.read_timeout_seconds,
        )
    owned = engine is None
    if engine is None:
        engine = make_engine(config.database.url, pool_size=config.database.pool_size)
    if create_tables:
        try:
            create_schema(engine)
        except BaseException:
            if owned:  # the caller never gets it: close its connection now
                engine.dispose()
            raise
    shared = shared_clock(engine, clock, database_time=database_time)
    helpdesks = build_helpdesks(config.helpdesks, http=http, clock=clock)
    destinations = build_destinations(
        config.alerts.destinations, http=http, helpdesks=helpdesks, clock=clock
    )
    return Services(
        config=config,
        engine=engine,
        helpdesks=helpdesks,
        http=http,
        clock=shared,
        destinations=destinations,
    )
