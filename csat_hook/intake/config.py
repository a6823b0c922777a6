"""Intake's configuration sections: ``server`` (the web endpoints' bind address, processes,
body limit, proxy and operator-API settings) and ``policy`` (which closes get a survey)."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

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
    # A request's head and body must arrive within this many seconds (else 408): a sender
    # that declares a body and never finishes it cannot hold a web thread.
    body_timeout_seconds: float = Field(default=10, gt=0, le=300)
    trust_proxy: bool = False
    # Bearer token for the read-only operator API (GET /api/...); unset: the API is off (404).
    api_token: SecretStr | None = None
    # Wrong API tokens one client (an IPv4 address, an IPv6 /64) may send a minute, in each
    # web process; past it, every API request of that client is a 429 until the minute ends.
    api_failures_per_minute: int = Field(default=10, ge=1, le=10_000)

    @field_validator("host")
    @classmethod
    def _interface(cls, value: str) -> str:
        return bind_host(value)

    @field_validator("api_token")
    @classmethod
    def _long_api_token(cls, value: SecretStr | None) -> SecretStr | None:
        """Empty is unset (the API off): what ``${API_TOKEN:-}`` means with the variable
        unset, the way to turn the API on where the variable is set and off elsewhere. It
        was refused as "must be at least 16 characters", the API no switch to turn off."""
        if value is None or value.get_secret_value() == "":
            return None
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value.get_secret_value()):
            # An Authorization header cannot carry it: the API would be on and every request
            # to it a 401. Said without quoting the token.
            raise ValueError(
                "holds a control character (a tab, a line break, NUL), which no Authorization "
                "header can carry"
            )
        return value


def bind_host(value: str) -> str:
    """``value`` as the interface gunicorn binds (``host:port``): a host name, an IPv4
    address, or an IPv6 one (bracketed here, written with or without); ValueError for
    anything else. Blank was bound as every interface (``:8000``) where 127.0.0.1 was
    meant; a host with a port bound that port, server.port and ``--port`` ignored; ``::1``
    unbracketed was gunicorn's "'' is not a valid port number"."""
    text = value.strip()
    if not text:
        raise ValueError(
            "empty: give the interface to listen on (127.0.0.1: this machine only; "
            "0.0.0.0: every interface, as in a container)"
        )
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ipaddress.ip_address(inner)
    except ValueError:
        address = None
    if address is not None:
        return f"[{address}]" if address.version == 6 else str(address)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}", text):
        raise ValueError(
            f"{text[:100]!r} is not a host name or an IP address (nothing else: the port is "
            "server.port, or --port)"
        )
    return text


class PolicyConfig(StrictModel):
    per_dialog: Literal["once", "every_close"] = "once"
    # With every_close: a close within this many seconds of the dialog's last survey (when its
    # reply went out; its close while it waits) gets none (a status that flaps, or a vendor
    # re-closing the dialog after our own reply).
    reclose_grace_seconds: float = Field(default=600, ge=0, le=30 * 86400)
    send_delay_seconds: float = Field(default=0, ge=0, le=30 * 86400)
    cancel_on_reopen: bool = True
    customer_cooldown_days: float = Field(default=0, ge=0, le=3650)
    skip_without_agent: bool = False
    exclude_channels: list[str] = Field(default_factory=list)
    exclude_teams: list[str] = Field(default_factory=list)
