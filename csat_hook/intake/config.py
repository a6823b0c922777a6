"""The ``server`` section: the web endpoints' bind address, processes, body limit, proxy and
operator-API settings."""

from __future__ import annotations

from pydantic import Field
from pydantic import SecretStr
from pydantic import field_validator

from csat_hook.settings import StrictModel


class ServerConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    threads: int = Field(default=8, ge=1, le=256)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    trust_proxy: bool = False
    # Bearer token for the read-only operator API (GET /api/...); unset: the API is off (404).
    api_token: SecretStr | None = None

    @field_validator("api_token")
    @classmethod
    def _long_api_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value


