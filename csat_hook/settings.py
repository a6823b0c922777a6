"""What every configuration section builds on: strict models and shared field checks.

Each flow owns its section model (``intake/config.py``, ``outbox/config.py``,
``sync/config/``...); :mod:`csat_hook.config` composes them into the whole configuration.
This module imports no flow, so every section can use it.
"""

from __future__ import annotations

import string
from typing import Any
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from pydantic import BaseModel
from pydantic import ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in the YAML must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


def check_timezone(value: str) -> str:
    """``value`` when it names an IANA time zone; ValueError (naming the fix) otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as Europe/Moscow or UTC)"
        ) from exc
    return value


def blank_to_none(value: Any) -> Any:
    """Unset for an empty string: ``${VAR:-}`` expands to "" when the variable is unset."""
    return None if isinstance(value, str) and not value.strip() else value


def check_template(text: str, allowed: frozenset[str] | set[str], *, where: str) -> None:
    """Raise ValueError unless ``text`` only uses ``{name}`` placeholders from ``allowed``."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc} (write {{{{ and }}}} for literal braces)") from exc
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            known = ", ".join("{" + n + "}" for n in sorted(allowed))
            raise ValueError(f"{where}: unknown placeholder {{{name}}}; known: {known}")
