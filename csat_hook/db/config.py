"""The ``database`` section of the configuration."""

from __future__ import annotations

import re

from pydantic import Field
from pydantic import field_validator

from csat_hook.settings import StrictModel


class DatabaseConfig(StrictModel):
    url: str = "sqlite:///var/csat-hook.sqlite3"
    pool_size: int = Field(default=5, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgres(ql)?)(\+\w+)?://", value):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value


def normalize_database_url(url: str) -> str:
    """Map Heroku-style ``postgres://`` URLs onto SQLAlchemy's psycopg 3 dialect."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
