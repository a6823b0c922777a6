"""The ``results`` section: where the answers are read from and which columns hold what."""

from __future__ import annotations

import codecs
import re
import unicodedata
from datetime import tzinfo
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.files import written_out
from csat_hook.settings import StrictModel
from csat_hook.settings import blank_to_none
from csat_hook.settings import check_timezone
from csat_hook.sync.cell_text import strip_format
from csat_hook.sync.config.google import check_document_id
from csat_hook.sync.timestamps import DateOrder
from csat_hook.sync.timestamps import abbreviation_zone

RESULT_ROLES = ("timestamp", "rating", "comment", "token", "agent", "ticket", "nps")
# The 0–10 "how likely are you to recommend us" question (optional; NPS next to CSAT).
NPS_MIN, NPS_MAX = 0, 10


def comparable_text(text: Any) -> str:
    """A header title or a rating label as the sync compares them: NFKC, case-folded, single
    spaces; invisible format characters at either end (a zero-width space, a bidi mark copied
    with a question's title) read as the spaces there are (``sync/values.py`` reads cells with
    it, the checks below refuse what it merges)."""
    return " ".join(strip_format(unicodedata.normalize("NFKC", str(text))).casefold().split())


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

    @model_validator(mode="after")
    def _one_role_per_title(self) -> ColumnsConfig:
        # A column holds one role: a title under two (compared as headers are) read one
        # column twice, the ticket field from the agent column, the NPS from the ratings.
        seen: dict[str, str] = {}
        for role in RESULT_ROLES:
            for title in getattr(self, role):
                first = seen.setdefault(comparable_text(title), role)
                if title.strip() and first != role:
                    raise ValueError(
                        f"{title!r} is a title of two roles, {first} and {role}: a column holds "
                        "one role; keep it under one"
                    )
        return self


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

    @field_validator("path")
    @classmethod
    def _a_path(cls, value: str) -> str:
        return written_out(value)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("encoding")
    @classmethod
    def _text_encoding(cls, value: str) -> str:
        # Checked at start-up: an unknown name passed check-config and failed every sync.
        try:
            codec = codecs.lookup(value)
        except (LookupError, ValueError):  # ValueError: a NUL in the name
            raise ValueError(f"{value[:40]!r} is not an encoding (utf-8, cp1251...)") from None
        # base64, rot13, zlib...: codecs between bytes or between texts, not of a file's text;
        # "undefined" refuses every text.
        if not getattr(codec, "_is_text_encoding", True) or codec.name == "undefined":
            raise ValueError(f"{value[:40]!r} is not a text encoding (utf-8, cp1251...)")
        return value

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

    @field_validator("spreadsheet_id")
    @classmethod
    def _an_id(cls, value: str | None) -> str | None:
        return None if value is None else check_document_id(value, "spreadsheet")


class FormsApiResultsConfig(StrictModel):
    form_id: str | None = None
    question_ids: dict[str, str] = Field(default_factory=dict)
    page_size: int = Field(default=5000, ge=1, le=5000)
    overlap_seconds: float = Field(default=3600, ge=0, le=30 * 86400)
    # Read every response again when the last full read is older than this (0: never, but for
    # the first run after an upgrade that reads some cell differently: store.full_read_due).
    # Google does not say which submission time its filter compares; a daily full read bounds
    # how long an edit the filter missed can stay uncredited.
    full_read_hours: float = Field(default=24, ge=0, le=90 * 24)

    @field_validator("form_id", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return blank_to_none(value)

    @field_validator("form_id")
    @classmethod
    def _an_id(cls, value: str | None) -> str | None:
        return None if value is None else check_document_id(value, "form")

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

    def labels_given(self) -> bool:
        """Whether ``rating_labels`` are the configuration's own: set, and not the built-in
        ones (the 1–5 scale's words, which the example configuration spells out)."""
        return (
            "rating_labels" in self.model_fields_set
            and self.rating_labels != _default_rating_labels()
        )

    @field_validator("rating_labels")
    @classmethod
    def _one_score_per_label(cls, value: dict[str, int]) -> dict[str, int]:
        # A cell is looked up without case, spacing or width, so two such spellings are one
        # label: with two scores, the later one won, silently.
        seen: dict[str, tuple[str, int]] = {}
        for label, score in value.items():
            first = seen.setdefault(comparable_text(label), (label, score))
            if first[1] != score:
                raise ValueError(
                    f"{first[0]!r} and {label!r} are one label (case, spacing and character "
                    f"width do not matter) with two scores, {first[1]} and {score}: keep one"
                )
        return value

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
