"""The ``sync`` section: how often the sync runs and how long its lock lasts."""

from __future__ import annotations

from pydantic import Field

from csat_hook.settings import StrictModel


class SyncConfig(StrictModel):
    # `csat-hook serve` also runs the periodic sync in a child process (the embedded default).
    run_in_serve: bool = True
    interval_seconds: float = Field(default=300, ge=10, le=7 * 86400)
    lock_lease_seconds: float = Field(default=900, ge=30, le=86400)
    lock_wait_seconds: float = Field(default=0, ge=0, le=3600)
