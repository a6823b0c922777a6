"""The ``delivery`` section: attempts, backoff, timeouts, concurrency, polling and leases."""

from __future__ import annotations

from pydantic import Field

from csat_hook.retry import Backoff
from csat_hook.settings import StrictModel


class DeliveryConfig(StrictModel):
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_base_seconds: float = Field(default=5, gt=0, le=3600)
    backoff_cap_seconds: float = Field(default=3600, gt=0, le=7 * 86400)
    max_retry_after_seconds: float = Field(default=86400, gt=0)
    connect_timeout_seconds: float = Field(default=5, gt=0, le=120)
    read_timeout_seconds: float = Field(default=15, gt=0, le=600)
    concurrency: int = Field(default=4, ge=1, le=64)
    poll_seconds: float = Field(default=5, gt=0, le=3600)
    lease_seconds: float = Field(default=120, ge=5, le=86400)

    @property
    def backoff(self) -> Backoff:
        """The retry policy for a reply's next attempt."""
        return Backoff(
            self.backoff_base_seconds,
            self.backoff_cap_seconds,
            max_retry_after=self.max_retry_after_seconds,
        )
