"""Configuration: one YAML file, secrets from the environment, validated once at start-up.

Flow: built-in defaults → the YAML file (``--config`` or ``$CSAT_HOOK_CONFIG``) → ``${VAR}``
references inside it resolved from the environment → ``$DATABASE_URL`` overriding
``database.url``. Nothing reads ``os.environ`` after :func:`load_config` returns.

Every error names the key (``helpdesks.chatwoot.base_url: ...``) and what is wrong with it.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from typing import Literal
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import SecretStr
from pydantic import ValidationError
from pydantic import field_validator
from pydantic import model_validator

from csat_hook.errors import ConfigError

ENV_CONFIG_PATH = "CSAT_HOOK_CONFIG"
# Values that ship as defaults so a fresh checkout runs; `check-config` flags them.
INSECURE_MARKER = "insecure"

LINK_ROLES = ("agent_name", "agent_id", "agent_email", "ticket", "helpdesk", "team", "token")
REPLY_PLACEHOLDERS = frozenset(
    {"agent_name", "agent_first_name", "customer_name", "ticket", "link", "helpdesk", "team"}
)


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo in the YAML must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


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


class DatabaseConfig(StrictModel):
    url: str = "sqlite:///var/csat-hook.sqlite3"
    pool_size: int = Field(default=5, ge=1, le=100)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not re.match(r"^(sqlite|postgres(ql)?)(\+\w+)?://", value):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value


class TokenConfig(StrictModel):
    secret: SecretStr = SecretStr("dev-insecure-token-secret")
    previous_secrets: list[SecretStr] = Field(default_factory=list)

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (use a long random string)")
        return value

    def all_secrets(self) -> list[str]:
        """The current secret first, then retired ones still accepted when verifying."""
        return [self.secret.get_secret_value(),
                *(s.get_secret_value() for s in self.previous_secrets)]


class FormConfig(StrictModel):
    kind: Literal["google_forms", "template"] = "google_forms"
    url: str = "https://docs.google.com/forms/d/e/YOUR_FORM_ID/viewform"
    fields: dict[str, str] = Field(
        default_factory=lambda: {
            "agent_name": "entry.1000001",
            "agent_id": "entry.1000002",
            "ticket": "entry.1000003",
            "token": "entry.1000004",
        }
    )
    extra_params: dict[str, str] = Field(default_factory=dict)
    url_template: str | None = None

    @field_validator("fields")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        for role, entry in value.items():
            if role not in LINK_ROLES:
                raise ValueError(f"unknown field {role!r}; known: {', '.join(LINK_ROLES)}")
            if not re.fullmatch(r"entry\.\d+", entry):
                raise ValueError(f"{role}: {entry!r} is not a Google Forms entry id (entry.<N>)")
        return value

    @model_validator(mode="after")
    def _kind_needs(self) -> FormConfig:
        if self.kind == "template":
            if not self.url_template:
                raise ValueError("url_template is required when kind is template")
            check_template(self.url_template, frozenset(LINK_ROLES), where="url_template")
            if "{token}" not in self.url_template:
                raise ValueError("url_template must contain {token}: answers are credited by it")
        elif "token" not in self.fields:
            raise ValueError("fields.token is required: answers are credited by the signed token")
        return self


class ReplyConfig(StrictModel):
    default_language: str = "en"
    templates: dict[str, str] = Field(
        default_factory=lambda: {
            "en": "Thanks for contacting us! How did {agent_name} do? "
            "Rate this conversation (it takes 10 seconds): {link}",
            "ru": "Спасибо за обращение! Оцените, пожалуйста, как с вами поработал(а) "
            "{agent_name}: {link}",
        }
    )

    @field_validator("templates")
    @classmethod
    def _valid_templates(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("at least one template is required")
        for lang, text in value.items():
            check_template(text, REPLY_PLACEHOLDERS, where=lang)
            if "{link}" not in text:
                raise ValueError(f"{lang}: the template must contain {{link}}")
        return value


class SurveyConfig(StrictModel):
    form: FormConfig = Field(default_factory=FormConfig)
    reply: ReplyConfig = Field(default_factory=ReplyConfig)


class PolicyConfig(StrictModel):
    per_dialog: Literal["once", "every_close"] = "once"
    # With every_close: a close within this many seconds of the dialog's last survey gets none
    # (a status that flaps, or a vendor re-closing the dialog after our own reply).
    reclose_grace_seconds: float = Field(default=600, ge=0, le=30 * 86400)
    send_delay_seconds: float = Field(default=0, ge=0, le=30 * 86400)
    cancel_on_reopen: bool = True
    customer_cooldown_days: float = Field(default=0, ge=0, le=3650)
    skip_without_agent: bool = False
    exclude_channels: list[str] = Field(default_factory=list)
    exclude_teams: list[str] = Field(default_factory=list)


class DeliveryConfig(StrictModel):
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_base_seconds: float = Field(default=5, gt=0, le=3600)
    backoff_cap_seconds: float = Field(default=3600, gt=0, le=7 * 86400)
    max_retry_after_seconds: float = Field(default=86400, gt=0)
    connect_timeout_seconds: float = Field(default=5, gt=0, le=120)
    read_timeout_seconds: float = Field(default=15, gt=0, le=600)
    concurrency: int = Field(default=4, ge=1, le=64)
    poll_seconds: float = Field(default=5, gt=0, le=3600)
    lease_seconds: float = Field(default=120, ge=5, le=86400)


class LoggingConfig(StrictModel):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


# --- the sync: results in, per-agent CSAT out ------------------------------------------------

GOOGLE_SHEETS_BASE_URL = "https://sheets.googleapis.com"
GOOGLE_FORMS_BASE_URL = "https://forms.googleapis.com"
RESULT_ROLES = ("timestamp", "rating", "comment", "token", "agent", "ticket")


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as "
                         "Europe/Moscow or UTC)") from exc
    return value


def _blank_to_none(value: Any) -> Any:
    # `${GOOGLE_SERVICE_ACCOUNT_JSON:-}` expands to "" when the variable is unset.
    return None if isinstance(value, str) and not value.strip() else value


class GoogleConfig(StrictModel):
    """Service-account credentials and the Google endpoints (overridable for emulators)."""

    service_account_file: str | None = None
    service_account_json: SecretStr | None = None
    sheets_base_url: str = GOOGLE_SHEETS_BASE_URL
    forms_base_url: str = GOOGLE_FORMS_BASE_URL
    connect_timeout_seconds: float = Field(default=10, gt=0, le=120)
    read_timeout_seconds: float = Field(default=120, gt=0, le=600)
    max_retries: int = Field(default=5, ge=0, le=10)
    backoff_base_seconds: float = Field(default=2, ge=0, le=60)
    backoff_cap_seconds: float = Field(default=32, ge=0, le=600)

    @field_validator("service_account_file", "service_account_json", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @field_validator("service_account_json")
    @classmethod
    def _blank_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None

    @field_validator("sheets_base_url", "forms_base_url")
    @classmethod
    def _http_base(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def has_credentials(self) -> bool:
        return bool(self.service_account_file or self.service_account_json)


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

    @field_validator("timestamp", "rating", "token")
    @classmethod
    def _required_role(cls, value: list[str]) -> list[str]:
        if not [title for title in value if title.strip()]:
            raise ValueError("give at least one header title")
        return value


class CsvResultsConfig(StrictModel):
    path: str = "var/form-responses.csv"
    timezone: str = "UTC"
    encoding: str = "utf-8-sig"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    timestamp_formats: list[str] = Field(
        default_factory=lambda: [
            "%Y/%m/%d %I:%M:%S %p",   # Forms "Download responses (.csv)", offset cut off first
            "%Y/%m/%d %H:%M:%S",
            "%m/%d/%Y %H:%M:%S",      # Sheets en_US
            "%d.%m.%Y %H:%M:%S",      # Sheets ru_RU
            "%Y-%m-%d %H:%M:%S",
        ]
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return _check_timezone(value)


class GSheetsResultsConfig(StrictModel):
    spreadsheet_id: str | None = None
    sheet_gid: int | None = Field(default=None, ge=0)
    sheet_name: str | None = None

    @field_validator("spreadsheet_id", "sheet_name", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return _blank_to_none(value)


class FormsApiResultsConfig(StrictModel):
    form_id: str | None = None
    question_ids: dict[str, str] = Field(default_factory=dict)
    page_size: int = Field(default=5000, ge=1, le=5000)
    overlap_seconds: float = Field(default=3600, ge=0, le=30 * 86400)

    @field_validator("question_ids")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        for role, question in value.items():
            if role not in RESULT_ROLES or role == "timestamp":
                raise ValueError(f"unknown role {role!r}; known: rating, comment, token, "
                                 "agent, ticket")
            if not re.fullmatch(r"[0-9a-fA-F]{1,32}", question):
                raise ValueError(f"{role}: {question!r} is not a Forms questionId (hex)")
        return value


def _default_rating_labels() -> dict[str, int]:
    return {
        "Very dissatisfied": 1, "Dissatisfied": 2, "Neutral": 3, "Satisfied": 4,
        "Very satisfied": 5,
        "Ужасно": 1, "Плохо": 2, "Нормально": 3, "Хорошо": 4, "Отлично": 5,
    }


class ResultsConfig(StrictModel):
    source: Literal["csv", "gsheets", "forms_api"] = "csv"
    csv: CsvResultsConfig = Field(default_factory=CsvResultsConfig)
    gsheets: GSheetsResultsConfig = Field(default_factory=GSheetsResultsConfig)
    forms_api: FormsApiResultsConfig = Field(default_factory=FormsApiResultsConfig)
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)
    rating_labels: dict[str, int] = Field(default_factory=_default_rating_labels)

    @model_validator(mode="after")
    def _source_needs(self) -> ResultsConfig:
        if self.source == "gsheets":
            if not self.gsheets.spreadsheet_id:
                raise ValueError("gsheets.spreadsheet_id is required when source is gsheets")
            if self.gsheets.sheet_gid is None and not self.gsheets.sheet_name:
                raise ValueError("gsheets.sheet_gid or gsheets.sheet_name is required when "
                                 "source is gsheets (the gid is the number after #gid= in "
                                 "the sheet's URL)")
        if self.source == "forms_api":
            if not self.forms_api.form_id:
                raise ValueError("forms_api.form_id is required when source is forms_api")
            missing = {"rating", "token"} - set(self.forms_api.question_ids)
            if missing:
                raise ValueError(f"forms_api.question_ids needs {', '.join(sorted(missing))}")
        return self


class PeriodsConfig(StrictModel):
    rolling_days: list[int] = Field(default_factory=lambda: [7, 30])
    calendar_months: int = Field(default=3, ge=0, le=120)
    all_time: bool = True

    @field_validator("rolling_days")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(days < 1 or days > 3660 for days in value):
            raise ValueError("each entry must be between 1 and 3660 days")
        return sorted(set(value))


class MetricsConfig(StrictModel):
    scale_min: int = Field(default=1, ge=0, le=100)
    scale_max: int = Field(default=5, ge=1, le=100)
    top_box: int = Field(default=4, ge=0, le=100)
    min_n: int = Field(default=10, ge=1, le=100_000)
    timezone: str = "UTC"
    periods: PeriodsConfig = Field(default_factory=PeriodsConfig)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @model_validator(mode="after")
    def _consistent_scale(self) -> MetricsConfig:
        if not self.scale_min < self.scale_max <= self.scale_min + 20:
            raise ValueError("scale_min must be below scale_max (at most 21 points)")
        if not self.scale_min <= self.top_box <= self.scale_max:
            raise ValueError("top_box must lie within scale_min..scale_max")
        return self


class SheetsOutputConfig(StrictModel):
    enabled: bool = False
    spreadsheet_id: str | None = None
    summary_tab: str = Field(default="Summary", min_length=1, max_length=100)
    unverified_tab: str | None = Field(default="Unverified", max_length=100)
    max_rows_per_agent: int = Field(default=5000, ge=1, le=1_000_000)
    max_request_bytes: int = Field(default=8_000_000, ge=100_000, le=100_000_000)

    @field_validator("spreadsheet_id", "unverified_tab", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return _blank_to_none(value)


class LocalOutputConfig(StrictModel):
    enabled: bool = True
    dir: str = "var/csat-report"
    xlsx: bool = True
    csv: bool = True


class OutputConfig(StrictModel):
    gsheets: SheetsOutputConfig = Field(default_factory=SheetsOutputConfig)
    local: LocalOutputConfig = Field(default_factory=LocalOutputConfig)


class SyncConfig(StrictModel):
    # `csat-hook serve` also runs the periodic sync in a child process (the embedded default).
    run_in_serve: bool = True
    interval_seconds: float = Field(default=300, ge=10, le=7 * 86400)
    lock_lease_seconds: float = Field(default=900, ge=30, le=86400)
    lock_wait_seconds: float = Field(default=0, ge=0, le=3600)


def _check_sync_sections(config: Config) -> None:
    """Checks that span sections (each message starts with the key it is about)."""
    metrics = config.metrics
    for label, score in config.results.rating_labels.items():
        if not metrics.scale_min <= score <= metrics.scale_max:
            raise ValueError(f"results.rating_labels.{label}: {score} is outside the scale "
                             f"{metrics.scale_min}..{metrics.scale_max} (metrics.scale_*)")
    sheets = config.output.gsheets
    if sheets.enabled and not (sheets.spreadsheet_id or config.results.gsheets.spreadsheet_id):
        raise ValueError("output.gsheets.spreadsheet_id is required when output.gsheets is "
                         "enabled and results.gsheets.spreadsheet_id is not set")
    if sheets.unverified_tab and sheets.unverified_tab.casefold() == sheets.summary_tab.casefold():
        raise ValueError("output.gsheets.unverified_tab must differ from summary_tab")


class Config(StrictModel):
    """The whole configuration. ``helpdesks`` maps an instance name to its adapter options."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    token: TokenConfig = Field(default_factory=TokenConfig)
    survey: SurveyConfig = Field(default_factory=SurveyConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    helpdesks: dict[str, Any] = Field(default_factory=lambda: {"dryrun": {"type": "dryrun"}})
    google: GoogleConfig = Field(default_factory=GoogleConfig)
    results: ResultsConfig = Field(default_factory=ResultsConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)

    source: str = Field(default="<built-in defaults>", exclude=True)

    @model_validator(mode="after")
    def _sync_sections(self) -> Config:
        _check_sync_sections(self)
        return self


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


# --- loading -------------------------------------------------------------------------------

def _interpolate(value: Any, env: Mapping[str, str], path: str, errors: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, env, f"{path}.{k}" if path else str(k), errors)
                for k, v in value.items()}
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
            errors.append(f"{path}: malformed reference ${{{inner}}} (write ${{NAME}} or "
                          "${NAME:-default}; $$ for a literal $)")
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


def normalize_database_url(url: str) -> str:
    """Map Heroku-style ``postgres://`` URLs onto SQLAlchemy's psycopg 3 dialect."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


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
    else:
        errors.append("helpdesks: must be a mapping of instance name to options")
    if errors or config is None:
        raise ConfigError(_error_text(source, errors))
    config.helpdesks = validated
    config.source = source
    config.database.url = normalize_database_url(config.database.url)
    return config


def _validate_helpdesks(raw: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    from csat_hook.helpdesks import REGISTRY  # the registry imports adapters, which import us

    validated: dict[str, Any] = {}
    for name, options in raw.items():
        where = f"helpdesks.{name}"
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", str(name)):
            errors.append(f"{where}: the name must be lower-case letters, digits, - or _ "
                          "(it is the URL segment /webhooks/<name>)")
            continue
        if options is None:
            options = {}
        if not isinstance(options, dict):
            errors.append(f"{where}: must be a mapping of options")
            continue
        kind = options.get("type", name)
        adapter = REGISTRY.get(kind)
        if adapter is None:
            errors.append(f"{where}.type: unknown helpdesk type {kind!r}; "
                          f"known: {', '.join(sorted(REGISTRY))}")
            continue
        try:
            validated[name] = adapter.Options.model_validate({**options, "type": kind})
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


def masked_dump(config: Config) -> dict[str, Any]:
    """The effective configuration as plain data, every secret replaced by a mask."""
    data = config.model_dump(mode="json")
    data["helpdesks"] = {
        name: options.model_dump(mode="json") for name, options in config.helpdesks.items()
    }
    return data


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
