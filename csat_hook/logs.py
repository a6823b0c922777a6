"""Logging: stable dotted event names plus a whitelist of context fields.

Log calls pass context in ``extra=``; only the keys in :data:`SAFE_FIELDS` are ever printed,
so a secret, a token, a reply text or a customer's words cannot reach the logs by accident.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC
from datetime import datetime
from typing import Literal
from typing import TextIO

from csat_hook.settings import StrictModel

SAFE_FIELDS = (
    "helpdesk",
    "dialog_id",
    "survey_id",
    "outbox_id",
    "status",
    "attempt",
    "reason",
    "error",
    "http_status",
    "delay",
    "worker",
    "count",
    "source",
    "path",
    "duration_ms",
    "rows",
    "requests",
    "sheet",
    "key",
    "destination",
    "kind",
    "alert_id",
)


class LoggingConfig(StrictModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class SafeFormatter(logging.Formatter):
    """``time level logger event key=value ...`` or one JSON object per line."""

    def __init__(self, fmt: str = "text") -> None:
        super().__init__()
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: getattr(record, k) for k in SAFE_FIELDS if hasattr(record, k)}
        when = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        message = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages of foreign exceptions can embed request data.
            fields["exception"] = record.exc_info[0].__name__
        if self.json:
            return json.dumps(
                {
                    "time": when,
                    "level": record.levelname,
                    "logger": record.name,
                    "event": message,
                    **fields,
                },
                default=str,
                ensure_ascii=False,
            )
        extras = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        return f"{when} {record.levelname} {record.name} {message}" + (
            f" {extras}" if extras else ""
        )


def _quote(value: object) -> str:
    # Quoted (JSON escapes) when it holds a space or anything unprintable: a value from a
    # request (a dialog id, a path) can never break the line or forge another field.
    text = str(value)
    if not text or " " in text or "=" in text or '"' in text or not text.isprintable():
        return json.dumps(text, ensure_ascii=False)
    return text


def setup_logging(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Route the root logger to stderr through :class:`SafeFormatter` (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_csat_hook", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(SafeFormatter(fmt))
    handler._csat_hook = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that log URLs (with query tokens) at DEBUG/INFO stay at WARNING.
    for noisy in ("urllib3", "requests", "gunicorn.access", "google", "gspread", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
