"""Configuration: one YAML file, secrets from the environment, validated once at start-up.

Flow: built-in defaults → the YAML file (``--config`` or ``$CSAT_HOOK_CONFIG``) → ``${VAR}``
references inside it resolved from the environment → ``$DATABASE_URL`` overriding
``database.url``. Nothing reads ``os.environ`` after :func:`load_config` returns.

This module only composes: each section's model lives with the code that uses it (the table
in the README says where). Every error names the key (``helpdesks.chatwoot.base_url: ...``)
and what is wrong with it.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic import Field
from pydantic import SecretStr
from pydantic import ValidationError
from pydantic import model_validator

from csat_hook.alerts.config import AlertsConfig
from csat_hook.alerts.config import check_alerts_section
from csat_hook.db.config import DatabaseConfig
from csat_hook.db.config import normalize_database_url
from csat_hook.errors import ConfigError
from csat_hook.helpdesks import REGISTRY
from csat_hook.helpdesks import takes_notes
from csat_hook.intake.config import PolicyConfig
from csat_hook.intake.config import ServerConfig
from csat_hook.links import SurveyConfig
from csat_hook.logs import LoggingConfig
from csat_hook.outbox.config import DeliveryConfig
from csat_hook.settings import StrictModel
from csat_hook.sync.config import GoogleConfig
from csat_hook.sync.config import MetricsConfig
from csat_hook.sync.config import OutputConfig
from csat_hook.sync.config import ResultsConfig
from csat_hook.sync.config import SyncConfig
from csat_hook.sync.config import check_sync_sections
from csat_hook.tokens import TokenConfig

ENV_CONFIG_PATH = "CSAT_HOOK_CONFIG"
# Values that ship as defaults so a fresh checkout runs; `check-config` flags them.
INSECURE_MARKER = "insecure"


class Config(StrictModel):
    """The whole configuration. ``helpdesks`` maps an instance name to its adapter options."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    token: TokenConfig = Field(default_factory=TokenConfig)
    survey: SurveyConfig = Field(default_factory=SurveyConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    helpdesks: dict[str, Any] = Field(default_factory=lambda: {"dryrun": {"kind": "dryrun"}})
    google: GoogleConfig = Field(default_factory=GoogleConfig)
    results: ResultsConfig = Field(default_factory=ResultsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    source: str = Field(default="<built-in defaults>", exclude=True)

    @model_validator(mode="after")
    def _sync_sections(self) -> Config:
        check_sync_sections(self.results, self.metrics, self.output)
        links, metrics = self.survey.links, self.metrics
        if links.scale_min < metrics.scale_min or links.scale_max > metrics.scale_max:
            raise ValueError(
                f"survey.links: the scale {links.scale_min}–{links.scale_max} must lie within "
                f"metrics.scale_min–scale_max ({metrics.scale_min}–{metrics.scale_max})"
            )
        return self


# --- loading -------------------------------------------------------------------------------


def _interpolate(value: Any, env: Mapping[str, str], path: str, errors: list[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: _interpolate(v, env, f"{path}.{k}" if path else str(k), errors)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, env, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value
    return _expand(value, env, path, errors)


def _expand(text: str, env: Mapping[str, str], path: str, errors: list[str]) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}`` (default may hold braces) and ``$$``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        if not text.startswith("${", i):
            out.append(text[i])
            i += 1
            continue
        depth, j = 1, i + 2
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        inner = text[i + 2 : j - 1]
        name, sep, default = inner.partition(":-")
        if depth or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            errors.append(
                f"{path}: malformed reference ${{{inner}}} (write ${{NAME}} or "
                "${NAME:-default}; $$ for a literal $)"
            )
            return text
        if env.get(name):
            out.append(env[name])
        elif sep:
            out.append(default)
        else:
            errors.append(f"{path}: environment variable {name} is not set")
        i = j
    return "".join(out)


def _format_validation_error(exc: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(part) for part in err["loc"])
        where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "(top level)")
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see config.example.yaml)"
        lines.append(f"{where}: {message}")
    return lines


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read, interpolate and validate the configuration; raise ConfigError naming each bad key.

    ``path`` None means ``$CSAT_HOOK_CONFIG`` if set, else the built-in defaults.
    ``overrides`` is merged over the file (tests use it).
    """
    env = os.environ if env is None else env
    if path is None:
        path = env.get(ENV_CONFIG_PATH) or None
    raw: dict[str, Any] = {}
    source = "<built-in defaults>"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {source}: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: the top level must be a mapping of sections")
        raw = loaded
    if overrides:
        raw = _deep_merge(raw, overrides)

    errors: list[str] = []
    raw = _interpolate(raw, env, "", errors)
    if env.get("DATABASE_URL"):
        raw.setdefault("database", {})
        if isinstance(raw["database"], dict):
            raw["database"]["url"] = env["DATABASE_URL"]
    helpdesks = raw.pop("helpdesks", None)
    if helpdesks is None:
        helpdesks = Config.model_fields["helpdesks"].get_default(call_default_factory=True)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        errors.extend(_format_validation_error(exc))
        config = None
    if isinstance(helpdesks, dict):
        validated = _validate_helpdesks(helpdesks, errors)
        if config is not None and not errors:
            try:
                check_alerts_section(
                    config.alerts,
                    scale_min=config.metrics.scale_min,
                    scale_max=config.metrics.scale_max,
                    helpdesks=validated,
                )
            except ValueError as exc:
                errors.append(str(exc))
    else:
        errors.append("helpdesks: must be a mapping of instance name to options")
    if errors or config is None:
        raise ConfigError(_error_text(source, errors))
    config.helpdesks = validated
    config.source = source
    config.database.url = normalize_database_url(config.database.url)
    return config


def _validate_helpdesks(raw: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    validated: dict[str, Any] = {}
    for name, options in raw.items():
        where = f"helpdesks.{name}"
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", str(name)):
            errors.append(
                f"{where}: the name must be lower-case letters, digits, - or _ "
                "(it is the URL segment /webhooks/<name>)"
            )
            continue
        if options is None:
            options = {}
        if not isinstance(options, dict):
            errors.append(f"{where}: must be a mapping of options")
            continue
        given = {key: options[key] for key in ("kind", "type") if key in options}
        if len(given) == 2 and given["kind"] != given["type"]:
            errors.append(f"{where}: kind and type disagree; keep kind")
            continue
        # `type:` is the key's older name, still accepted.
        kind = next(iter(given.values()), name)
        adapter = REGISTRY.get(kind) if isinstance(kind, str) else None
        if adapter is None:
            errors.append(
                f"{where}.kind: unknown helpdesk kind {kind!r}; "
                f"known: {', '.join(sorted(REGISTRY))}"
            )
            continue
        rest = {key: value for key, value in options.items() if key not in ("kind", "type")}
        try:
            validated[name] = adapter.Options.model_validate({**rest, "kind": kind})
        except ValidationError as exc:
            errors.extend(_format_validation_error(exc, where))
    if not validated and not errors:
        errors.append("helpdesks: configure at least one helpdesk")
    return validated


def _deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _error_text(source: str, errors: list[str]) -> str:
    return f"invalid configuration ({source}):\n" + "\n".join(f"  {line}" for line in errors)


MASK = "**********"  # what pydantic prints for a SecretStr
# Query parameters whose value is a credential (compared lower-case, "-" read as "_").
SECRET_PARAMETERS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "api_token",
        "auth_token",
        "refresh_token",
        "key",
        "api_key",
        "apikey",
        "signature",
        "sig",
        "sslpassword",
    }
)
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def masked_dump(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data, every secret replaced by a mask.

    Secrets are the ``SecretStr`` fields, and credentials inside any URL: the password of
    ``user:password@host`` (``database.url``, also when it came from ``$DATABASE_URL``) and
    query parameters such as ``?token=`` or ``?password=``.
    """
    data = config.model_dump(mode="json")
    data["helpdesks"] = {
        name: options.model_dump(mode="json") for name, options in config.helpdesks.items()
    }
    masked: dict[str, Any] = _mask_urls(data)
    return masked


def _mask_urls(value: Any) -> Any:
    if isinstance(value, str):
        return _URL.sub(lambda m: mask_url(m.group()), value) if "://" in value else value
    if isinstance(value, dict):
        return {key: _mask_urls(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_urls(item) for item in value]
    return value


def mask_url(url: str) -> str:
    """``url`` with the password of its user info and the values of credential-like query
    parameters (:data:`SECRET_PARAMETERS`) replaced by the mask."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, colon, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if colon else netloc
    query = "&".join(_mask_parameter(item) for item in parts.query.split("&"))
    if netloc == parts.netloc and query == parts.query:
        return url
    masked = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    return masked + (f"#{parts.fragment}" if parts.fragment else "")


def _mask_parameter(item: str) -> str:
    name, equals, _value = item.partition("=")
    normalised = urllib.parse.unquote_plus(name).lower().replace("-", "_")
    if equals and normalised in SECRET_PARAMETERS:
        return f"{name}={MASK}"
    return item


def config_warnings(config: Config) -> list[str]:
    """Settings that work but deserve the operator's attention (``check-config``, ``serve``)."""
    warnings = [
        f"{key} still holds the shipped development secret" for key in insecure_settings(config)
    ]
    for name, options in config.alerts.destinations.items():
        if options.kind == "helpdesk_note" and not any(
            takes_notes(h) for h in config.helpdesks.values()
        ):
            warnings.append(
                f"alerts.destinations.{name}: no configured helpdesk can take internal notes "
                "(the generic adapter needs its note request): nothing will be noted"
            )
    if config.alerts.active and config.results.source == "csv" and not config.sync.run_in_serve:
        warnings.append(
            "alerts: answers are read only when a sync runs; with results.source csv they "
            "reach the team when the export is refreshed"
        )
    for lang in config.survey.reply.languages_without_nameless_template():
        warnings.append(
            f"survey.reply.templates_without_agent has no {lang!r} template: a {lang} reply "
            "whose agent has no known name reads agent_label_without_name in its place"
        )
    return warnings


def insecure_settings(config: Config) -> list[str]:
    """Dotted keys still holding a shipped development secret (fine locally, not in production)."""
    found = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, SecretStr):
            if INSECURE_MARKER in value.get_secret_value():
                found.append(path)
        elif isinstance(value, BaseModel):
            for key in type(value).model_fields:
                walk(getattr(value, key), f"{path}.{key}" if path else key)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    walk(config, "")

    return found
