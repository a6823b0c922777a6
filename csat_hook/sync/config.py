"""The sync's configuration sections: ``google``, ``results``, ``metrics``, ``output``, ``sync``.

Checks that span these sections are in :func:`check_sync_sections` (each message starts with
the key it is about); :mod:`csat_hook.config` runs it on the whole configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any
from typing import Literal
from typing import Protocol

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.alerts.config import AlertsConfig
from csat_hook.db.config import DatabaseConfig
from csat_hook.helpdesks.base import HelpdeskOptions
from csat_hook.links import SurveyConfig
from csat_hook.retry import Backoff
from csat_hook.settings import StrictModel
from csat_hook.settings import blank_to_none
from csat_hook.settings import check_timezone
from csat_hook.sync.timestamps import DateOrder
from csat_hook.sync.timestamps import abbreviation_zone
from csat_hook.tokens import TokenConfig

GOOGLE_SHEETS_BASE_URL = "https://sheets.googleapis.com"
GOOGLE_FORMS_BASE_URL = "https://forms.googleapis.com"
# Sheets and Forms quotas are counted per minute (Sheets API "Usage limits").
QUOTA_WINDOW_SECONDS = 60
RESULT_ROLES = ("timestamp", "rating", "comment", "token", "agent", "ticket", "nps")
# The 0–10 "how likely are you to recommend us" question (optional; NPS next to CSAT).
NPS_MIN, NPS_MAX = 0, 10


class GoogleConfig(StrictModel):
    """Service-account credentials and the Google endpoints (overridable for emulators)."""

    service_account_file: str | None = None
    service_account_json: SecretStr | None = None
    sheets_base_url: str = GOOGLE_SHEETS_BASE_URL
    forms_base_url: str = GOOGLE_FORMS_BASE_URL
    connect_timeout_seconds: float = Field(default=10, gt=0, le=120)
    read_timeout_seconds: float = Field(default=120, gt=0, le=600)
    # Retries must outlast Google's per-minute quota window: see _retries_outlast_a_minute.
    max_retries: int = Field(default=7, ge=0, le=12)
    backoff_base_seconds: float = Field(default=2, ge=0, le=60)
    backoff_cap_seconds: float = Field(default=32, ge=0, le=600)

    @field_validator("service_account_file", "service_account_json", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return blank_to_none(value)

    @field_validator("service_account_json")
    @classmethod
    def _blank_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("sheets_base_url", "forms_base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _retries_outlast_a_minute(self) -> GoogleConfig:
        """Sheets quotas are per minute: a run that meets 429s must keep trying for more than
        60 s, even when every jittered wait comes out at its shortest. 0 retries is allowed
        (fail at once, on purpose)."""
        if self.max_retries == 0:
            return self
        least = self.backoff.least_total(self.max_retries)
        if least <= QUOTA_WINDOW_SECONDS:
            raise ValueError(
                f"max_retries {self.max_retries} with backoff_base_seconds "
                f"{self.backoff_base_seconds:g} and backoff_cap_seconds "
                f"{self.backoff_cap_seconds:g} may give up after {least:g} s of waiting; "
                f"Google's quota window is {QUOTA_WINDOW_SECONDS} s: raise max_retries or "
                "backoff_cap_seconds (the defaults 7, 2 and 32 wait at least 63 s), or set "
                "max_retries to 0 to fail at once"
            )
        return self

    @property
    def backoff(self) -> Backoff:
        """The retry policy of the Google session (Retry-After honoured up to the cap)."""
        return Backoff(
            self.backoff_base_seconds,
            self.backoff_cap_seconds,
            max_retry_after=max(self.backoff_cap_seconds, 1.0),
        )

    @property
    def has_credentials(self) -> bool:
        return bool(self.service_account_file or self.service_account_json)


class ColumnsConfig(StrictModel):
    """Role → the header titles that may hold it (any language; first match wins per row).

    Several titles per role cover localized sheets and renamed questions.
    """

    timestamp: list[str] = Field(default_factory=lambda: ["Timestamp", "Отметка времени"])
    rating: list[str] = Field(default_factory=lambda: ["Rating", "Оценка"])
    comment: list[str] = Field(default_factory=lambda: ["Comment", "Комментарий"])
    token: list[str] = Field(default_factory=lambda: ["Reference", "Token", "Код ссылки"])
    agent: list[str] = Field(default_factory=lambda: ["Agent", "Оператор"])
    ticket: list[str] = Field(default_factory=lambda: ["Ticket", "Обращение"])
    # Empty: no NPS question. Give its title(s) to report NPS next to CSAT.
    nps: list[str] = Field(default_factory=list)

    @field_validator("timestamp", "rating", "token")
    @classmethod
    def _required_role(cls, value: list[str]) -> list[str]:
        if not [title for title in value if title.strip()]:
            raise ValueError("give at least one header title")
        return value


class CsvResultsConfig(StrictModel):
    """A Forms export or a sheet saved as CSV. Timestamps in every layout Forms, Sheets and
    Apps Script write are read without configuration (:mod:`csat_hook.sync.timestamps`)."""

    path: str = "var/form-responses.csv"
    # The zone of timestamps written without one (a sheet saved as CSV); also tells what a
    # zone abbreviation means when the name has several meanings (IST, CST).
    timezone: str = "UTC"
    encoding: str = "utf-8-sig"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    # Day/month order of dates such as 03/04/2025 when no value in the column settles it.
    date_order: Literal["auto", "DMY", "MDY"] = "auto"
    # Zone abbreviation → "+05:30" or an IANA zone, for names the built-in table lacks.
    timezone_abbreviations: dict[str, str] = Field(default_factory=dict)
    # Extra strptime layouts, tried when no built-in layout matches a value.
    timestamp_formats: list[str] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("timezone_abbreviations")
    @classmethod
    def _zones(cls, value: dict[str, str]) -> dict[str, str]:
        for name, zone in value.items():
            if not re.fullmatch(r"[^\W\d_]{2,5}", name):
                raise ValueError(f"{name!r}: an abbreviation is 2 to 5 letters")
            abbreviation_zone(zone)  # ValueError says what is allowed
        return value

    @field_validator("timestamp_formats")
    @classmethod
    def _layouts(cls, value: list[str]) -> list[str]:
        for layout in value:
            if "%" not in layout:
                raise ValueError(f"{layout!r} is not a strptime layout (no % directive)")
        return value

    @property
    def configured_order(self) -> DateOrder | None:
        return None if self.date_order == "auto" else self.date_order

    def abbreviation_zones(self) -> dict[str, tzinfo]:
        return {k: abbreviation_zone(v) for k, v in self.timezone_abbreviations.items()}


class GSheetsResultsConfig(StrictModel):
    spreadsheet_id: str | None = None
    sheet_gid: int | None = Field(default=None, ge=0)
    sheet_name: str | None = None

    @field_validator("spreadsheet_id", "sheet_name", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return blank_to_none(value)


class FormsApiResultsConfig(StrictModel):
    form_id: str | None = None
    question_ids: dict[str, str] = Field(default_factory=dict)
    page_size: int = Field(default=5000, ge=1, le=5000)
    overlap_seconds: float = Field(default=3600, ge=0, le=30 * 86400)

    @field_validator("question_ids")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        for role, question in value.items():
            if role not in RESULT_ROLES or role == "timestamp":
                raise ValueError(
                    f"unknown role {role!r}; known: rating, comment, token, agent, ticket, nps"
                )
            if not re.fullmatch(r"[0-9a-fA-F]{1,32}", question):
                raise ValueError(f"{role}: {question!r} is not a Forms questionId (hex)")
        return value


def _default_rating_labels() -> dict[str, int]:
    return {
        "Very dissatisfied": 1,
        "Dissatisfied": 2,
        "Neutral": 3,
        "Satisfied": 4,
        "Very satisfied": 5,
        "Ужасно": 1,
        "Плохо": 2,
        "Нормально": 3,
        "Хорошо": 4,
        "Отлично": 5,
    }


class ResultsConfig(StrictModel):
    source: Literal["csv", "gsheets", "forms_api"] = "csv"
    csv: CsvResultsConfig = Field(default_factory=CsvResultsConfig)
    gsheets: GSheetsResultsConfig = Field(default_factory=GSheetsResultsConfig)
    forms_api: FormsApiResultsConfig = Field(default_factory=FormsApiResultsConfig)
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)
    rating_labels: dict[str, int] = Field(default_factory=_default_rating_labels)
    # A run that skips more than this share of the rows it read for one reason (and at
    # least min_skipped_rows of them) ends with status data_error (exit 4).
    max_skipped_share: float = Field(default=0.2, ge=0, le=1)
    min_skipped_rows: int = Field(default=3, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _source_needs(self) -> ResultsConfig:
        if self.source == "gsheets":
            if not self.gsheets.spreadsheet_id:
                raise ValueError("gsheets.spreadsheet_id is required when source is gsheets")
            if self.gsheets.sheet_gid is None and not self.gsheets.sheet_name:
                raise ValueError(
                    "gsheets.sheet_gid or gsheets.sheet_name is required when "
                    "source is gsheets (the gid is the number after #gid= in "
                    "the sheet's URL)"
                )
        if self.source == "forms_api":
            if not self.forms_api.form_id:
                raise ValueError("forms_api.form_id is required when source is forms_api")
            missing = {"rating", "token"} - set(self.forms_api.question_ids)
            if missing:
                raise ValueError(f"forms_api.question_ids needs {', '.join(sorted(missing))}")
        return self

    @property
    def nps_configured(self) -> bool:
        """Whether the form has a 0–10 question the report shows NPS for."""
        if self.source == "forms_api":
            return "nps" in self.forms_api.question_ids
        return any(title.strip() for title in self.columns.nps)


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


class SheetsOutputConfig(StrictModel):
    enabled: bool = False
    spreadsheet_id: str | None = None
    # Tab titles; null: in the report's language ("Summary" / "Сводка", "Unverified" /
    # "Непроверенные").
    summary_tab: str | None = Field(default=None, min_length=1, max_length=100)
    unverified_tab: str | None = Field(default=None, max_length=100)
    unverified: bool = True  # false: no tab for answers that could not be credited
    max_rows_per_agent: int = Field(default=5000, ge=1, le=1_000_000)
    # The Responses tab (one row per credited answer): the newest this many.
    max_response_rows: int = Field(default=50_000, ge=1, le=1_000_000)
    max_request_bytes: int = Field(default=8_000_000, ge=100_000, le=100_000_000)

    @field_validator("spreadsheet_id", "summary_tab", "unverified_tab", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return blank_to_none(value)


class LocalOutputConfig(StrictModel):
    enabled: bool = True
    dir: str = "var/csat-report"
    xlsx: bool = True
    csv: bool = True


class OutputConfig(StrictModel):
    gsheets: SheetsOutputConfig = Field(default_factory=SheetsOutputConfig)
    local: LocalOutputConfig = Field(default_factory=LocalOutputConfig)
    # The report's language (headers, period names, notes, tab titles). auto: the Google
    # Sheets output's locale (ru* → Russian) when that output is on, else English.
    language: Literal["auto", "en", "ru"] = "auto"


class SyncConfig(StrictModel):
    # `csat-hook serve` also runs the periodic sync in a child process (the embedded default).
    run_in_serve: bool = True
    interval_seconds: float = Field(default=300, ge=10, le=7 * 86400)
    lock_lease_seconds: float = Field(default=900, ge=30, le=86400)
    lock_wait_seconds: float = Field(default=0, ge=0, le=3600)


def check_sync_sections(
    results: ResultsConfig, metrics: MetricsConfig, output: OutputConfig
) -> None:
    """Checks that span the sync's sections; ValueError names the key."""
    for label, score in results.rating_labels.items():
        if not metrics.scale_min <= score <= metrics.scale_max:
            raise ValueError(
                f"results.rating_labels.{label}: {score} is outside the scale "
                f"{metrics.scale_min}..{metrics.scale_max} (metrics.scale_*)"
            )
    sheets = output.gsheets
    if sheets.enabled and not (sheets.spreadsheet_id or results.gsheets.spreadsheet_id):
        raise ValueError(
            "output.gsheets.spreadsheet_id is required when output.gsheets is "
            "enabled and results.gsheets.spreadsheet_id is not set"
        )
    if (
        sheets.unverified_tab
        and sheets.summary_tab
        and sheets.unverified_tab.casefold() == sheets.summary_tab.casefold()
    ):
        raise ValueError("output.gsheets.unverified_tab must differ from summary_tab")


class SyncSettings(Protocol):
    """What the sync reads of the whole configuration (:class:`csat_hook.config.Config` is
    one): its own sections, plus the database, the token secrets, the helpdesks' static
    agent maps and ticket URL templates, the alert rules it runs after the ingest, and the
    short links' settings (the funnel: ``survey.links``)."""

    @property
    def google(self) -> GoogleConfig: ...
    @property
    def results(self) -> ResultsConfig: ...
    @property
    def metrics(self) -> MetricsConfig: ...
    @property
    def output(self) -> OutputConfig: ...
    @property
    def sync(self) -> SyncConfig: ...
    @property
    def database(self) -> DatabaseConfig: ...
    @property
    def token(self) -> TokenConfig: ...
    @property
    def helpdesks(self) -> Mapping[str, HelpdeskOptions]: ...
    @property
    def alerts(self) -> AlertsConfig: ...
    @property
    def survey(self) -> SurveyConfig: ...
