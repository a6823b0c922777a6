"""The ``delivery`` section: attempts, backoff, timeouts, concurrency, polling, leases,
heartbeats and unknown outcomes.

How the timings fit together (checked at start-up, errors name the keys):

* A claim is a lease (``lease_seconds``) that the worker's heartbeat renews every
  ``heartbeat_seconds`` while a reply is in flight, so it never expires under a running
  request. Without renewal (the database unreachable from that worker, ``worker --once``), the
  lease must still outlast one delivery: ``lease_seconds`` > :data:`DELIVERY_REQUESTS` ×
  (``connect_timeout_seconds`` + ``read_timeout_seconds``). An e-mail destination's whole
  SMTP exchange (its ``deadline_seconds``) longer than the lease is only a warning: a running
  worker renews its claims, and ``worker --once`` refuses to start with it
  (``config/checks.py``).
* A worker that has not beaten for ``worker_dead_after_seconds`` is gone: a live worker takes
  its replies over. At least three heartbeats fit in that time, so one slow beat is not death.
  A beat (and a claim) is timed once it has the database, not before waiting for it, and a
  worker never takes its own replies over: it is alive, whatever its last beat looks like.
* A worker sends a reply only while it confirmed its claim (claimed it, or a heartbeat renewed
  its lease) less than :attr:`fence_seconds` ago (half of ``worker_dead_after_seconds``); a
  reply is taken over only when neither happened for ``worker_dead_after_seconds``, and looked
  up no sooner than :attr:`takeover_wait_seconds` later, when any request the old owner may
  have started has ended and settled (an e-mail: :meth:`takeover_wait` of its exchange).
* After an unknown outcome (a read timeout, a dropped connection) the reply is looked up
  ``settle_seconds`` later, at least ``read_timeout_seconds``: a vendor may still save a
  request for a while after the client stopped waiting.
"""

from __future__ import annotations

from pydantic import Field
from pydantic import model_validator

from csat_hook.retry import Backoff
from csat_hook.settings import StrictModel

# Requests one delivery may make when nothing renews its lease: an agent look-up with its two
# in-place retries, and the reply.
DELIVERY_REQUESTS = 4
# A heartbeat may be late once without the worker being taken for dead.
MIN_BEATS_BEFORE_DEAD = 3


class DeliveryConfig(StrictModel):
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_base_seconds: float = Field(default=5, gt=0, le=3600)
    backoff_cap_seconds: float = Field(default=3600, gt=0, le=7 * 86400)
    # Bounded: a vendor's Retry-After is honoured up to it, and now + an unbounded one
    # overflowed the date of the next attempt.
    max_retry_after_seconds: float = Field(default=86400, gt=0, le=30 * 86400)
    connect_timeout_seconds: float = Field(default=5, gt=0, le=120)
    read_timeout_seconds: float = Field(default=15, gt=0, le=600)
    concurrency: int = Field(default=4, ge=1, le=64)
    poll_seconds: float = Field(default=5, gt=0, le=3600)
    # After a wake-up, how long the dispatcher lets more replies arrive before it claims:
    # closes queued within it cost one claim statement, not one each (0: claim at once).
    claim_linger_seconds: float = Field(default=0.01, ge=0, le=1)
    lease_seconds: float = Field(default=120, ge=5, le=86400)
    heartbeat_seconds: float = Field(default=2, gt=0, le=600)
    worker_dead_after_seconds: float = Field(default=10, gt=0, le=3600)
    settle_seconds: float = Field(default=30, ge=0, le=3600)

    @model_validator(mode="after")
    def _timings_fit(self) -> DeliveryConfig:
        request = self.connect_timeout_seconds + self.read_timeout_seconds
        if self.lease_seconds <= DELIVERY_REQUESTS * request:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must exceed {DELIVERY_REQUESTS} × "
                f"(connect_timeout_seconds + read_timeout_seconds) = "
                f"{DELIVERY_REQUESTS * request:g}: a lease must outlast one delivery even "
                "when the heartbeat cannot renew it"
            )
        if self.worker_dead_after_seconds < MIN_BEATS_BEFORE_DEAD * self.heartbeat_seconds:
            raise ValueError(
                f"worker_dead_after_seconds ({self.worker_dead_after_seconds:g}) must be at "
                f"least {MIN_BEATS_BEFORE_DEAD} × heartbeat_seconds "
                f"({MIN_BEATS_BEFORE_DEAD * self.heartbeat_seconds:g}): one late heartbeat "
                "must not make a live worker look dead"
            )
        if self.lease_seconds <= self.worker_dead_after_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds:g}) must exceed "
                f"worker_dead_after_seconds ({self.worker_dead_after_seconds:g})"
            )
        if self.settle_seconds < self.read_timeout_seconds:
            raise ValueError(
                f"settle_seconds ({self.settle_seconds:g}) must be at least "
                f"read_timeout_seconds ({self.read_timeout_seconds:g}): a timed-out request "
                "can still be saved by the vendor after we stopped waiting"
            )
        return self

    @property
    def backoff(self) -> Backoff:
        """The retry policy for a reply's next attempt."""
        return Backoff(
            self.backoff_base_seconds,
            self.backoff_cap_seconds,
            max_retry_after=self.max_retry_after_seconds,
        )

    @property
    def request_seconds(self) -> float:
        """The longest one request may take: connect plus read timeouts."""
        return self.connect_timeout_seconds + self.read_timeout_seconds

    @property
    def fence_seconds(self) -> float:
        """A reply whose claim its worker has not confirmed for this long is not sent by it."""
        return self.worker_dead_after_seconds / 2

    @property
    def takeover_wait_seconds(self) -> float:
        """How long after taking a reply over from a gone worker it is first looked up:
        :meth:`takeover_wait` of one request (an alert to a destination whose exchange may
        last longer, an e-mail, waits for that: :class:`~csat_hook.outbox.heartbeat.Heartbeat`).
        """
        return self.takeover_wait(self.request_seconds)

    def takeover_wait(self, exchange_seconds: float) -> float:
        """How long after taking a row over it is first looked up (or sent again), when one
        send may last ``exchange_seconds`` once started.

        The old owner last confirmed the claim at ``b``; others take over after
        ``b + dead_after``. It started nothing after ``b + fence``, so what it sent ended by
        ``b + fence + exchange`` and is settled ``settle_seconds`` later. Waiting
        ``settle + max(0, fence + exchange - dead_after)`` from the takeover covers that.
        """
        late = self.fence_seconds + exchange_seconds - self.worker_dead_after_seconds
        return self.settle_seconds + max(0.0, late)
