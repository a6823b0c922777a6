"""The ``alerts`` section: destinations, rules, digests and the guards against alert storms.

Checks that need other sections (a rule's rating within ``metrics``' scale, a note
destination's helpdesks) are in :func:`check_alerts_section`, run by :mod:`csat_hook.config`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from datetime import time
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import PrivateAttr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.helpdesks import takes_notes
from csat_hook.notify.options import AnyDestination
from csat_hook.settings import StrictModel

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
# A digest's time of day as written: H:MM or HH:MM, seconds optional (checked by time()).
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# The Alerts tab's title unless set: the sync also knows a tab of that title as the report's
# Alerts tab once the tab is turned off or retitled (sync/outputs/sheets.py).
DEFAULT_TAB = "Alerts"


class RuleBase(StrictModel):
    """What every rule has: a unique ``name`` (it is part of each alert's identity: renaming a
    rule makes its next matches new alerts) and the destinations it alerts."""

    name: str
    destinations: list[str] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError("lower-case letters, digits, - and _ (at most 64)")
        return value


class LowRatingRule(RuleBase):
    """A rating at or below ``max_rating`` (default: ``metrics.top_box`` − 2, 2 on 1–5)."""

    kind: Literal["low_rating"]
    max_rating: int | None = None


class CommentRule(RuleBase):
    """Any comment; with ``max_rating``, a comment on a rating at or below it."""

    kind: Literal["comment"]
    max_rating: int | None = None


class NpsDetractorRule(RuleBase):
    """An NPS answer (0–10) at or below ``max_score`` (6: a detractor by the NPS definition)."""

    kind: Literal["nps_detractor"]
    max_score: int = Field(default=6, ge=0, le=9)


class AgentBelowTargetRule(RuleBase):
    """An agent's CSAT over the last ``window_days`` significantly below ``target``.

    Tested when the agent has a new or changed answer: a one-sided exact binomial test of
    "CSAT ≥ target" (satisfied = a rating of ``metrics.top_box`` or more), with at least
    ``min_answers``; alerts once when p < ``alpha``, and again only after the agent recovered
    (p ≥ ``exit_alpha``) or ``window_days`` after the alert (hysteresis: no flapping).
    """

    kind: Literal["agent_below_target"]
    target: float = Field(default=0.85, gt=0, lt=1)
    window_days: int = Field(default=30, ge=1, le=366)
    min_answers: int = Field(default=20, ge=5, le=100_000)
    alpha: float = Field(default=0.01, gt=0, le=0.2)
    exit_alpha: float = Field(default=0.2, gt=0, lt=1)

    @model_validator(mode="after")
    def _hysteresis(self) -> AgentBelowTargetRule:
        if self.exit_alpha <= self.alpha:
            raise ValueError(
                "exit_alpha must be above alpha (the band between them is the hysteresis)"
            )
        return self


AnyRule = Annotated[
    LowRatingRule | CommentRule | NpsDetractorRule | AgentBelowTargetRule,
    Field(discriminator="kind"),
]


class DigestConfig(StrictModel):
    """One message per day (or week) per destination: the figures of the day (week) before
    and its lowest-rated answers, sent at the first sync after ``at`` (local time,
    ``metrics.timezone``; weekly on ``weekday``)."""

    name: str
    every: Literal["day", "week"] = "day"
    at: time = time(9, 0)
    weekday: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = "monday"
    lowest: int = Field(default=5, ge=0, le=20)
    agents: int = Field(default=10, ge=0, le=50)
    # An empty digest says "nothing came in"; silence would look like a broken sync.
    send_empty: bool = True
    destinations: list[str] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.fullmatch(value):
            raise ValueError("lower-case letters, digits, - and _ (at most 64)")
        return value

    @field_validator("at", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        """A local time of day, ``"HH:MM"``. YAML 1.1 reads an unquoted ``9:00`` as 540 (a
        number of minutes, sexagesimal: its first digit is never 0) and ``9:00:30`` as
        seconds; any other number (``9``, ``24:00`` read as 1440) is no time of day, and was
        taken for one (00:09, 00:24). An offset (``09:00+05:00``) was dropped: refused."""
        if isinstance(value, int) and not isinstance(value, bool):
            if 60 <= value < 24 * 60:
                return time(value // 60, value % 60)
            if 3600 <= value < 24 * 3600:
                return time(value // 3600, value // 60 % 60, value % 60)
            raise ValueError(f'{value} is no time of day: write it quoted, "HH:MM" (local time)')
        if isinstance(value, str):
            match = _CLOCK.fullmatch(value.strip())
            try:
                if match is None:
                    raise ValueError
                hour, minute, second = match.groups()
                return time(int(hour), int(minute), int(second or 0))
            except ValueError:
                raise ValueError(f'{value!r}: a local time of day, "HH:MM" (no offset)') from None
        return value


class AlertsConfig(StrictModel):
    """Alert rules and where they go.

    Storm guards: only verified answers are alerted (the ``answers`` table, never unverified
    ones); a rule alerts on answers submitted after it was first seen (less
    ``backfill_minutes``) and less than ``max_age_hours`` ago, so turning alerts on, or
    ``sync --full``, does not replay old ratings; at most ``cap_per_hour`` alerts go to one
    destination in an hour: the next ones are held (listed as "held (cap)" in the Alerts tab
    and ``csat-hook alerts``) and the destination gets one notice that it happened, but for
    a ``helpdesk_note`` destination (a note goes into one answer's conversation; the notice
    is about none).
    """

    destinations: dict[str, AnyDestination] = Field(default_factory=dict)
    rules: list[AnyRule] = Field(default_factory=list)
    digests: list[DigestConfig] = Field(default_factory=list)
    backfill_minutes: float = Field(default=60, ge=0, le=7 * 24 * 60)
    max_age_hours: float = Field(default=48, gt=0, le=24 * 366)
    cap_per_hour: int = Field(default=30, ge=1, le=10_000)
    # The Alerts tab (Sheets) and sheet (.xlsx): the latest alerts with a "Handled" column the
    # team fills in (kept across syncs). Empty: no tab.
    tab: str | None = Field(default=DEFAULT_TAB, max_length=100)
    tab_rows: int = Field(default=1000, ge=10, le=50_000)
    # When the file this section came from was read (config/loading.py): a configuration
    # judges only the alerts raised before it (alerts/recheck.py). None: every alert.
    _loaded_at: datetime | None = PrivateAttr(default=None)

    @property
    def loaded_at(self) -> datetime | None:
        """When this configuration was loaded; None for one built otherwise (every alert not
        sent yet is then checked against it)."""
        return self._loaded_at

    def mark_loaded(self, at: datetime) -> None:
        """Record when this configuration was loaded (see :attr:`loaded_at`)."""
        self._loaded_at = at

    @field_validator("destinations")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r}: a destination name is lower-case letters, digits, - and _"
                )
        return value

    @field_validator("tab", mode="before")
    @classmethod
    def _tab(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _references(self) -> AlertsConfig:
        names = [r.name for r in self.rules] + [d.name for d in self.digests]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"rule and digest names must be unique: {', '.join(doubled)}")
        for where, item in [("rules", r) for r in self.rules] + [
            ("digests", d) for d in self.digests
        ]:
            for destination in item.destinations:
                if item.destinations.count(destination) > 1:
                    # One delivery either way (one delivery key), but the second pass would
                    # find the cap reached by the first and send a false "held" notice.
                    raise ValueError(f"{where}.{item.name}: {destination!r} is listed twice")
                if destination not in self.destinations:
                    raise ValueError(
                        f"{where}.{item.name}: unknown destination {destination!r}; "
                        f"configured: {', '.join(sorted(self.destinations)) or 'none'}"
                    )
                options = self.destinations[destination]
                if options.kind == "helpdesk_note" and not isinstance(
                    item, LowRatingRule | CommentRule | NpsDetractorRule
                ):
                    raise ValueError(
                        f"{where}.{item.name}: {destination} is a helpdesk note, which only "
                        "alerts about one answer can go to"
                    )
        return self

    @property
    def active(self) -> bool:
        return bool(self.rules or self.digests)


def check_alerts_section(
    alerts: AlertsConfig, *, scale_min: int, scale_max: int, helpdesks: Mapping[str, Any]
) -> None:
    """Checks spanning sections (the metrics' scale, the configured helpdesks); ValueError
    names the key."""
    for rule in alerts.rules:
        limit = getattr(rule, "max_rating", None)
        if limit is not None and not scale_min <= limit <= scale_max:
            raise ValueError(
                f"alerts.rules.{rule.name}.max_rating: {limit} is outside the scale "
                f"{scale_min}..{scale_max} (metrics.scale_*)"
            )
    for name, options in alerts.destinations.items():
        if options.kind != "helpdesk_note":
            continue
        for helpdesk in options.helpdesks:
            if helpdesk not in helpdesks:
                raise ValueError(
                    f"alerts.destinations.{name}.helpdesks: {helpdesk!r} is not a configured "
                    "helpdesk"
                )
            if not takes_notes(helpdesks[helpdesk]):
                raise ValueError(
                    f"alerts.destinations.{name}.helpdesks: {helpdesk!r} cannot take internal "
                    "notes (for the generic adapter, configure its note request)"
                )
