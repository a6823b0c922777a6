"""What every configuration section builds on: strict models and shared field checks.

Each flow owns its section model (``intake/config.py``, ``outbox/config.py``,
``sync/config/``...); :mod:`csat_hook.config` composes them into the whole configuration.
This module imports no flow, so every section can use it.
"""

from __future__ import annotations

import string
import typing
from typing import Any
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import SecretStr
from pydantic import model_validator


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in the YAML must not be silently ignored. A number is
    never read from true/false (YAML's yes, no, on, off): pydantic would take it as 1 or 0.
    A secret is read without the spaces and line breaks around it: one from a file or a
    Kubernetes secret often ends with a newline, which no vendor's secret or token holds (an
    HMAC over it never matches; a header holding it is refused before it is sent). A section
    given as null (every key under it commented out) is its defaults."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _as_written(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        trimmed: dict[str, str] = {}
        empty: list[str] = []
        for name, value in data.items():
            field = cls.model_fields.get(name)
            if field is None:
                continue
            if value is None and _is_section(field.annotation):
                empty.append(name)
                continue
            kinds = typing.get_args(field.annotation) or (field.annotation,)
            if isinstance(value, bool):
                if bool not in kinds and (int in kinds or float in kinds):
                    raise ValueError(
                        f"{name}: a number, not {str(value).lower()} (yes/no/on/off in YAML)"
                    )
            else:
                secret = _trimmed_secret(field.annotation, value)
                if secret is not value:
                    trimmed[name] = secret
        if empty:  # a section whose keys are all commented out (YAML's null): its defaults
            data = {name: value for name, value in data.items() if name not in empty}
        return {**data, **trimmed} if trimmed else data


def _is_section(annotation: Any) -> bool:
    """Whether a field holds a section (a model, not optional): null there means its
    defaults, as an empty mapping would."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _trimmed_secret(annotation: Any, value: Any) -> Any:
    """``value`` with the space around each secret in it removed, for a field typed
    ``SecretStr`` (or optional), ``list[SecretStr]`` or ``dict[str, SecretStr]``; the same
    object when nothing changes. ``Annotated[SecretStr, …]`` (a validated secret) is a
    ``SecretStr``."""
    annotation = _unannotated(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    args = tuple(_unannotated(arg) for arg in args)
    if annotation is SecretStr or (SecretStr in args and origin not in (list, dict)):
        return value.strip() if isinstance(value, str) and value != value.strip() else value
    if origin is list and args == (SecretStr,) and isinstance(value, list):
        items = [_trimmed_secret(SecretStr, item) for item in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    if origin is dict and args[1:] == (SecretStr,) and isinstance(value, dict):
        entries = {key: _trimmed_secret(SecretStr, item) for key, item in value.items()}
        return entries if any(entries[k] is not value[k] for k in value) else value
    return value


def _unannotated(annotation: Any) -> Any:
    """The type inside ``Annotated[type, …]``; any other annotation as it is."""
    if typing.get_origin(annotation) is typing.Annotated:
        return typing.get_args(annotation)[0]
    return annotation


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ZoneInfoNotFoundError or ValueError for any other text.

    ZoneInfo opens ``name`` as a file of the zone database: a folder of it (``Europe``,
    ``America``) raised IsADirectoryError and a name longer than a file name may be raised
    OSError, which no caller expected (a configuration of ``timezone: Europe`` ended
    check-config in a traceback)."""
    try:
        return ZoneInfo(name)
    except OSError:
        raise ZoneInfoNotFoundError(f"No time zone found with key {name}") from None


def check_timezone(value: str) -> str:
    """``value`` when it names an IANA time zone; ValueError (naming the fix) otherwise."""
    try:
        zone_named(value)
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
        if name not in allowed:
            known = ", ".join("{" + n + "}" for n in sorted(allowed))
            raise ValueError(f"{where}: unknown placeholder {{{name}}}; known: {known}")
        # After the name check: said as an unknown placeholder, it read "unknown
        # placeholder {agent_name}; known: ... {agent_name} ...".
        refuse_format_spec(name, spec, conversion, where=where)


def refuse_format_spec(
    name: str, spec: str | None, conversion: str | None, *, where: str = ""
) -> None:
    """ValueError when the placeholder ``{name}`` (as ``string.Formatter().parse`` gives it)
    carries str.format's own syntax, a format spec or a conversion (':' or '!' after the
    name): ``{x!r}`` quoted every value, ``{x:d}`` raised at every use, ``{x:>999999999}``
    built a gigabyte. Named by the placeholder alone (a header or query value is secret)."""
    if spec or conversion:
        prefix = f"{where}: " if where else ""
        raise ValueError(
            f"{prefix}{{{name}}} has a format spec or conversion (after : or !): no format "
            f"spec or conversion is allowed; write {{{name}}}"
        )
