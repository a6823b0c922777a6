"""Time as the service reads it: aware UTC, injectable for tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (the only kind the database layer accepts)."""
    return datetime.now(UTC)
