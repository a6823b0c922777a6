"""The ``google`` section: service-account credentials, endpoints, retry policy."""

from __future__ import annotations

import re
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.files import written_out
from csat_hook.links.form import check_base_url
from csat_hook.retry import Backoff
from csat_hook.settings import StrictModel
from csat_hook.settings import blank_to_none

GOOGLE_SHEETS_BASE_URL = "https://sheets.googleapis.com"
GOOGLE_FORMS_BASE_URL = "https://forms.googleapis.com"
# Sheets and Forms quotas are counted per minute (Sheets API "Usage limits").
QUOTA_WINDOW_SECONDS = 60

# A spreadsheet's or a form's id: what its link holds after /d/ (Drive file ids).
_DOCUMENT_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")
_LINKED_ID = re.compile(r"/d/([A-Za-z0-9_-]{1,200})(?:[/?#]|$)")
_PUBLISHED_FORM = re.compile(r"/forms/(?:u/\d+/)?d/e/")
# How a published form's id starts (the respondents' link's, "1FAIpQLSd..."); an edit id
# is a Drive file id.
_PUBLISHED_PREFIX = "1FAIpQL"


def check_document_id(value: str, kind: Literal["spreadsheet", "form"]) -> str:
    """``value`` (spaces around it dropped) when it is a spreadsheet's or a form's id; else
    ValueError naming what to give. The id goes into the request's path as it is: a link
    pasted for it ("https://docs.google.com/spreadsheets/d/<id>/edit#gid=0") failed every run
    with a 404 that said to share the spreadsheet, one with a "?" with a 400 about a query
    parameter. A form's respondents' link (/forms/d/e/<id>/viewform) holds the id of the
    published form, which the Forms API does not know (a 404 too)."""
    text = value.strip()
    if kind == "form" and text.startswith(_PUBLISHED_PREFIX) and _DOCUMENT_ID.fullmatch(text):
        raise ValueError(
            f"{text!r} is the id in the respondents' link (/forms/d/e/<id>/viewform), which "
            "the Forms API does not know: give the id in the form's edit link "
            "(/forms/d/<id>/edit)"
        )
    if _DOCUMENT_ID.fullmatch(text):
        return text
    if kind == "form" and _PUBLISHED_FORM.search(text):
        raise ValueError(
            "the respondents' link (/forms/d/e/.../viewform) names the published form, not "
            "the form: give the id in the form's edit link (/forms/d/<id>/edit)"
        )
    linked = _LINKED_ID.search(text)
    if linked is not None:
        raise ValueError(f"a link, not an id: give {linked.group(1)} (the part after /d/)")
    shown = text if len(text) <= 100 else text[:100] + "…"
    raise ValueError(
        f"{shown!r} is not a {kind} id (letters, digits, - and _: the part of its link after /d/)"
    )


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

    @field_validator("service_account_file")
    @classmethod
    def _a_path(cls, value: str | None) -> str | None:
        # Held to every configured path's rule (files.written_out): `~/keys/sa.json` passed
        # check-config, then every sync said it cannot read it.
        return None if value is None else written_out(value, example="/home/app/sa.json")

    @field_validator("service_account_json")
    @classmethod
    def _blank_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        text = value.get_secret_value().strip()
        if not text.startswith("{"):
            # GOOGLE_SERVICE_ACCOUNT_JSON=/etc/keys/sa.json (the habit of
            # GOOGLE_APPLICATION_CREDENTIALS) passed check-config, then every sync said "not
            # valid JSON (JSONDecodeError at char 0)". Never quoted: it may be the key.
            path = text.startswith(("/", ".", "~")) or text.lower().endswith(".json")
            raise ValueError(
                "holds no JSON object (a service-account key's JSON starts with '{')"
                + (
                    ": it looks like a file's path; give the path as service_account_file"
                    if path
                    else ""
                )
            )
        return value

    @field_validator("sheets_base_url", "forms_base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        # Checked as a vendor's base_url is: https://[::1 ended check-config in a traceback,
        # a port of 99999 or a query was taken and every request failed.
        return check_base_url(value).rstrip("/")

    @model_validator(mode="after")
    def _one_service_account(self) -> GoogleConfig:
        """One way to give the credentials: with both, which account the sync used was a
        rule written nowhere (the JSON won, silently)."""
        if self.service_account_file and self.service_account_json:
            raise ValueError(
                "service_account_file and service_account_json are both set: set one of them "
                "(the key file's path, or its JSON) and leave the other out"
            )
        return self

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
