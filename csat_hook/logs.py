"""Logging: stable dotted event names plus a whitelist of context fields.

Log calls pass context in ``extra=``; only the keys in :data:`SAFE_FIELDS` are ever printed,
so a secret, a token, a reply text or a customer's words cannot reach the logs by accident;
nor are a message's arguments (a library's: :func:`event`).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC
from datetime import datetime
from typing import Any
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
    "route",
    "method",  # a refused request's, a standard one only (intake.web._method_named)
    "duration_ms",
    "rows",
    "requests",
    "sheet",
    "key",
    "index",  # which of a key's list (a previous webhook secret's place, never the secret)
    "destination",
    "kind",
    "queued_kind",
    "alert_id",
    "warning",  # the configuration's (csat_hook.config.checks): keys and hosts, no value
)

# The methods RFC 9110 defines, and PATCH: the only ones a log line names as sent. A method is
# any token a client sends (gunicorn passes on any upper-case one), so it can hold anything a
# sender pastes (intake.web._method_named, webserver.redact).
STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)


class LoggingConfig(StrictModel):
    """``level`` is csat-hook's and, unless gunicorn is given one (``--log-level``, in
    ``GUNICORN_CMD_ARGS`` too), gunicorn's own, its master's from its first line and after
    a reload (SIGHUP) too. ``access_log``: gunicorn's access log, one line per request,
    redacted (:mod:`csat_hook.webserver.redact`); off, none (URLs carry ``?token=...`` for
    some helpdesks), whatever gunicorn is told. On, a stream of its own: its lines are INFO
    records written at every ``level``, where and as these lines are, or where gunicorn is
    told to write them (``--access-logfile``), there only."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"
    access_log: bool = False


class SafeFormatter(logging.Formatter):
    """``time level logger event key=value ...`` or one JSON object per line."""

    def __init__(self, fmt: str = "text") -> None:
        super().__init__()
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: getattr(record, k) for k in SAFE_FIELDS if hasattr(record, k)}
        when = datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds")
        message = event(record)
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type only: messages of foreign exceptions can embed request data.
            fields["exception"] = record.exc_info[0].__name__
        if self.json:
            return printable_json(
                {
                    "time": when,
                    "level": record.levelname,
                    "logger": record.name,
                    "event": message,
                    **fields,
                },
                default=str,
            )
        extras = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        return f"{when} {record.levelname} {record.name} {escaped(message)}" + (
            f" {extras}" if extras else ""
        )


# A printf conversion of a message template (``%s``, ``%(name)r``, ``%-5.2f``), or ``%%``.
_CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[a-zA-Z%]")
ARGUMENT_REDACTED = "[…]"


def event(record: logging.LogRecord) -> str:
    """The record's message without its arguments, each written :data:`ARGUMENT_REDACTED`.
    csat-hook's events take none (their context goes in ``extra=``, whitelisted); a
    library's fill theirs with what it handled: urllib3's ``Failed to parse headers
    (url=%s): %s`` (WARNING) is the request's URL, a ``?api_key=`` in its query, and the
    bytes of the answer it could not read. gunicorn's records have theirs spelled out,
    redacted, before they get here (:mod:`csat_hook.webserver.redact`)."""
    template = str(record.msg)
    if not record.args:
        return template
    return _CONVERSION.sub(lambda m: "%" if m.group() == "%%" else ARGUMENT_REDACTED, template)


def _quote(value: object) -> str:
    # Quoted (JSON escapes) when it holds a space or anything unprintable: a value from a
    # request (a dialog id, a path) can never break the line or forge another field.
    text = str(value)
    if not text or " " in text or "=" in text or '"' in text or not text.isprintable():
        return printable_json(text)
    return text


def _escape(char: str) -> str:
    code = ord(char)
    if code > 0xFFFF:  # as JSON spells it: a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def escaped(text: str) -> str:
    """``text`` with each character that is not printable (``str.isprintable``) written as
    its ``\\uXXXX`` escape: line breaks of any kind (U+2028, U+2029, NEL), C0 and C1 controls
    (ESC, CSI), bidirectional overrides and isolates, zero-width characters, lone surrogates.
    What a sender wrote can then neither break a line, forge a field, drive a terminal nor
    reorder what it shows; printable non-ASCII text (a Cyrillic name) stays as it is."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def printable_json(value: Any, **options: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **options)`` with every unprintable character
    escaped (:func:`escaped`; json.dumps leaves U+2028, C1 controls, DEL, bidirectional
    controls and lone surrogates raw): still JSON that reads back to ``value``, readable
    where the text is. The whitespace ``indent`` puts between values (line breaks, tabs)
    stays as it is."""
    text = json.dumps(value, ensure_ascii=False, **options)
    if text.isprintable():
        return text
    # Outside strings only the whitespace of ``indent`` can be unprintable (escaped, a tab
    # between values would not be JSON); inside them json.dumps has escaped every ASCII
    # control already.
    return "".join(c if c.isprintable() or c in "\n\r\t" else _escape(c) for c in text)


def setup_logging(
    level: str = "INFO",
    fmt: str = "text",
    stream: TextIO | None = None,
    *,
    access_log: bool = False,
) -> None:
    """Route the root logger to stderr through :class:`SafeFormatter` (idempotent).
    ``access_log`` (``logging.access_log``) lets gunicorn's access lines through."""
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
    if access_log:  # asked for: its lines are redacted (csat_hook.webserver.redact)
        logging.getLogger("gunicorn.access").setLevel(logging.INFO)
