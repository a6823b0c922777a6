"""The objects a running process shares, built once from the configuration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

from sqlalchemy.engine import Engine

from csat_hook.config import Config
from csat_hook.db import create_schema
from csat_hook.db import make_engine
from csat_hook.helpdesks import build_helpdesks
from csat_hook.helpdesks.base import Helpdesk
from csat_hook.http import HttpClient
from csat_hook.http import utcnow
from csat_hook.recorder import CloseRecorder
from csat_hook.wake import Waker


@dataclass
class Services:
    config: Config
    engine: Engine
    helpdesks: dict[str, Helpdesk]
    http: HttpClient
    clock: Callable[[], datetime] = utcnow
    waker: Waker = field(default_factory=Waker)
    recorder: CloseRecorder = field(init=False)

    def __post_init__(self) -> None:
        from csat_hook.intake import skip_reason

        self.recorder = CloseRecorder(
            lambda: self.engine,
            send_delay=self.config.policy.send_delay_seconds,
            skip_reason=lambda conn, event, now, seen: skip_reason(self, conn, event, now, seen),
            after_commit=self.waker.notify,
        )


def build_services(
    config: Config,
    *,
    clock: Callable[[], datetime] = utcnow,
    http: HttpClient | None = None,
    engine: Engine | None = None,
    create_tables: bool = True,
) -> Services:
    """Engine, HTTP client and adapters for ``config``; creates missing tables by default."""
    if http is None:
        http = HttpClient(connect_timeout=config.delivery.connect_timeout_seconds,
                          read_timeout=config.delivery.read_timeout_seconds)
    if engine is None:
        engine = make_engine(config.database.url, pool_size=config.database.pool_size)
    if create_tables:
        create_schema(engine)
    helpdesks = build_helpdesks(config.helpdesks, http=http, clock=clock)
    return Services(config=config, engine=engine, helpdesks=helpdesks, http=http, clock=clock)
