"""The ``metrics`` section: the rating scale, the periods and the report's thresholds."""

from __future__ import annotations

from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.settings import StrictModel
from csat_hook.settings import check_timezone


class PeriodsConfig(StrictModel):
    rolling_days: list[int] = Field(default_factory=lambda: [7, 30])
    calendar_months: int = Field(default=3, ge=0, le=120)
    all_time: bool = True

    @field_validator("rolling_days")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(days < 1 or days > 3660 for days in value):
            raise ValueError("each entry must be between 1 and 3660 days")
        return sorted(set(value))


class MetricsConfig(StrictModel):
    scale_min: int = Field(default=1, ge=0, le=100)
    scale_max: int = Field(default=5, ge=1, le=100)
    top_box: int = Field(default=4, ge=0, le=100)
    min_n: int = Field(default=10, ge=1, le=100_000)
    timezone: str = "UTC"
    periods: PeriodsConfig = Field(default_factory=PeriodsConfig)
    # The leaderboard's period: the last N days (today included), compared with the N days
    # before them.
    headline_days: int = Field(default=30, ge=1, le=366)
    # CSAT at or above it is shown green, below it red (a fraction: 0.85 is 85%).
    target_csat: float = Field(default=0.85, ge=0, le=1)
    # Ratings at or below it are highlighted in the agent tabs (default: top_box - 2).
    low_rating: int | None = Field(default=None, ge=0, le=100)
    # The Trends tab: this many weeks (Monday to Sunday) and calendar months, newest last.
    trend_weeks: int = Field(default=12, ge=1, le=104)
    trend_months: int = Field(default=12, ge=1, le=60)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _consistent_scale(self) -> MetricsConfig:
        if not self.scale_min < self.scale_max <= self.scale_min + 20:
            raise ValueError("scale_min must be below scale_max (at most 21 points)")
        if not self.scale_min <= self.top_box <= self.scale_max:
            raise ValueError("top_box must lie within scale_min..scale_max")
        if self.low_rating is not None and not (
            self.scale_min <= self.low_rating <= self.scale_max
        ):
            raise ValueError("low_rating must lie within scale_min..scale_max")
        return self

    @property
    def low_rating_limit(self) -> int:
        """Ratings at or below this are highlighted as low."""
        if self.low_rating is not None:
            return self.low_rating
        return max(self.scale_min, self.top_box - 2)
