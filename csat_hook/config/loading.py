"""Loading the configuration: defaults, the YAML file, ``${VAR}`` references from the environment,
``$DATABASE_URL``; every error names its key."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from csat_hook.alerts.config import check_alerts_section
from csat_hook.clock import utcnow
from csat_hook.config.checks import mask_values
from csat_hook.config.checks import secrets_taken
from csat_hook.config.checks import secrets_written
from csat_hook.config.model import ENV_CONFIG_PATH
from csat_hook.config.model import Config
from csat_hook.config.yamlfile import load_yaml
from csat_hook.db.config import normalize_database_url
from csat_hook.db.engine import ENV_DATABASE_URL  # wins over database.url (Procfile platforms)
from csat_hook.errors import ConfigError
from csat_hook.helpdesks import REGISTRY
from csat_hook.logs import escaped

MAX_FILE_BYTES = 1_000_000  # config.example.yaml, every key commented, is about 36 kB


def _interpolate(
    value: Any,
    env: Mapping[str, str],
    path: str,
    errors: list[str],
    written: set[str],
    taken: dict[str, list[str]],
) -> Any:
    """``value`` with its ``${VAR}`` references expanded; ``written`` gets the dotted path of
    each text that took nothing from the environment (written in the file, or a default),
    ``taken`` the variables each other one took its value from."""
    if isinstance(value, dict):
        return {
            k: _interpolate(v, env, f"{path}.{k}" if path else str(k), errors, written, taken)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolate(v, env, f"{path}[{i}]", errors, written, taken)
            for i, v in enumerate(value)
        ]
    if not isinstance(value, str):
        return value
    if "$" not in value:
        written.add(path)
        return value
    used: list[str] = []
    expanded = _expand(value, env, path, errors, used)
    if used:
        taken[path] = used
    else:
        written.add(path)
    return expanded


def _naming_variables(errors: list[str], taken: Mapping[str, list[str]]) -> list[str]:
    """Each error about a key whose value came from the environment, with the variables it
    came from: "server.api_token: must be at least 16 characters" sent the operator to a
    file that held ``${API_TOKEN}``, the value being in the environment."""
    named = []
    for line in errors:
        variables = taken.get(line.partition(": ")[0])
        if variables:
            line += f" (expanded from ${', $'.join(dict.fromkeys(variables))})"
        named.append(line)
    return named


# How deep ``${A:-${B:-${C}}}`` may nest: the default is expanded in turn (as a shell and
# docker compose do), by recursion.
MAX_REFERENCE_DEPTH = 8


def _expand(
    text: str,
    env: Mapping[str, str],
    path: str,
    errors: list[str],
    used: list[str],
    level: int = 0,
) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}`` (default may hold braces, and references of its
    own: ``${A:-${B}}``) and ``$$``; ``used`` gets the name of each variable whose value was
    taken. A default was taken as written: ``${A:-${B}}`` with A unset held the text
    ``${B}``, a secret anyone reading the file knew."""
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
        if not depth and name and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            # Its position, not the name (it may be a secret pasted in the wrong place).
            errors.append(
                f"{path}: malformed ${{...}} reference at character {i + 1}: a variable "
                "name holds only ASCII letters, digits and underscore, and does not start "
                "with a digit"
            )
            return text
        if depth or not name:
            # Its position, not its text: a default, or a literal secret's rest, is a secret.
            errors.append(
                f"{path}: malformed ${{...}} reference at character {i + 1} (write ${{NAME}} "
                "or ${NAME:-default}; $$ for a literal $)"
            )
            return text
        if env.get(name):
            out.append(env[name])
            used.append(name)
        elif sep and level >= MAX_REFERENCE_DEPTH:
            errors.append(
                f"{path}: ${{...}} references nested deeper than {MAX_REFERENCE_DEPTH} levels "
                f"at character {i + 1}"
            )
            return text
        elif sep:
            out.append(_expand(default, env, path, errors, used, level + 1))
        elif name in env:  # set to nothing: `echo $NAME` shows it, "not set" would mislead
            errors.append(f"{path}: environment variable {name} is empty")
        else:
            errors.append(f"{path}: environment variable {name} is not set")
        i = j
    return "".join(out)


def _format_validation_error(exc: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for err in exc.errors():
        # A mapping's key that failed is "[key]" in pydantic's location.
        loc = ".".join(str(part) for part in err["loc"]).replace(".[key]", " (the key)")
        where = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            hidden = _hidden_in(str(err["loc"][-1])) if err["loc"] else None
            message = f"unknown key ({hidden or 'check the spelling'}; see config.example.yaml)"
            where = escaped(where)  # a zero-width character shown, not printed unseen
        elif err["type"] == "union_tag_not_found":
            tag = str(err.get("ctx", {}).get("discriminator", "kind")).strip("'")
            message = f"{tag} is required (one of the kinds in config.example.yaml)"
        elif err["type"] in MAPPING_TYPES:
            # pydantic names its class ("instance of ServerConfig"): say what YAML to write.
            message = f"must be a mapping of keys (key: value), not {_yaml_kind(err['input'])}"
        # A check of the whole configuration (a model validator: no location) starts its
        # message with the key it is about.
        lines.append(f"{where}: {message}" if where else message)
    return lines


def _hidden_in(key: str) -> str | None:
    """What makes ``key`` another key than the one it looks like, when something does: a
    space at an end, or a character beyond ASCII (a Cyrillic letter that looks Latin, a
    zero-width space pasted with it). The key was said as "server.port: unknown key", which
    reads as the right key; None for any other key."""
    if key != key.strip():
        return "it starts or ends with a space"
    odd = next((c for c in key if not c.isascii()), None)
    if odd is None:
        return None
    name = unicodedata.name(odd, "a character beyond ASCII")
    return f"it holds U+{ord(odd):04X} {name}: every key is plain ASCII"


# pydantic's error types for a value that is not a mapping where one belongs.
MAPPING_TYPES = frozenset({"model_type", "dict_type", "model_attributes_type"})


def _yaml_kind(value: Any) -> str:
    """What YAML made of a value, in the words of the file: its text is not quoted (it may
    be a secret)."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    return "a single value"


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    text: bytes | None = None,
) -> Config:
    """Read, interpolate and validate the configuration; raise ConfigError naming each bad key.

    ``path`` None means ``$CSAT_HOOK_CONFIG`` if set (set but empty is refused), else the
    built-in defaults.
    ``overrides`` is merged over the file (tests use it). ``text``: the file's content,
    already read by :func:`read_config_file` (a pipe can be read once); ``path`` then only
    names it.
    """
    env = os.environ if env is None else env
    from_env = path is None
    if path is None:
        # Set but empty is refused below, as `-c ""` is: taken as unset, the process ran on
        # the built-in defaults beside the ones that read the real file.
        path = env.get(ENV_CONFIG_PATH)
    raw: dict[str, Any] = {}
    source = "<built-in defaults>"
    if path is not None and not str(path):  # `-c "$CONFIG"` with CONFIG unset
        raise ConfigError(
            "the config file's path is empty (--config or CSAT_HOOK_CONFIG): give the file, "
            "or leave both out for the built-in defaults"
        )
    if path is not None:
        source = str(path)
        try:
            data = read_config_file(path) if text is None else text
        except ConfigError as exc:
            raise (given_by_variable(exc) if from_env else exc) from None
        loaded = load_yaml(data, source)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: the top level must be a mapping of sections")
        raw = loaded
    if overrides:
        raw = _deep_merge(raw, overrides)

    errors: list[str] = []
    written: set[str] = set()
    taken: dict[str, list[str]] = {}
    raw = _interpolate(raw, env, "", errors, written, taken)
    database_url = env.get(ENV_DATABASE_URL)
    from_env = bool(database_url and database_url.strip())
    if from_env:
        # The file's database.url is replaced whole: a ${VAR} it needs (its password) is
        # not needed.
        errors = [e for e in errors if e.partition(": ")[0] != "database.url"]
        taken.pop("database.url", None)  # its value is DATABASE_URL's, said so below
    # A key whose reference could not be expanded holds no value worth checking: what its
    # check would say of the text left ("must be at least 16 characters") is about nothing
    # the file meant, so the reference's message is the one said about that key.
    unexpanded = {line.partition(": ")[0] for line in errors}
    said = len(errors)
    if database_url is not None and not from_env:
        # `DATABASE_URL=` in an env file, `${DB_URL}` of an unset variable in a compose
        # file: taken as unset, the service ran on database.url's SQLite file (on a
        # platform's ephemeral disk) without a word.
        errors.append(
            f"{ENV_DATABASE_URL}: the environment variable is set but empty; give the "
            "database's URL, or unset it to use database.url"
        )
    elif from_env:
        raw.setdefault("database", {})
        if isinstance(raw["database"], dict):
            raw["database"]["url"] = database_url
    helpdesks = raw.pop("helpdesks", None)
    if helpdesks is None:
        helpdesks = Config.model_fields["helpdesks"].get_default(call_default_factory=True)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        found = _format_validation_error(exc)
        if from_env:
            # The file may hold a good URL: the operator is sent to the variable.
            found = [
                f"{line} (the URL given by ${ENV_DATABASE_URL}, which wins over the file)"
                if line.startswith("database.url: ")
                else line
                for line in found
            ]
        errors.extend(found)
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
        errors[said:] = [e for e in errors[said:] if e.partition(": ")[0] not in unexpanded]
        errors[said:] = _naming_variables(errors[said:], taken)
        # A variable with a secret's name expanded into a key whose check quotes the value
        # ("unknown time zone '...'"): masked here as check-config masks it in the dump.
        hidden = sorted(secrets_taken(taken, env), key=len, reverse=True)
        raise ConfigError(_error_text(source, mask_values(errors, hidden)))
    config.helpdesks = validated
    config.source = source
    if from_env:
        written.discard("database.url")
    config.secrets_in_file = secrets_written(config, written)
    config.secrets_from_env = secrets_taken(taken, env)
    config.database.url = normalize_database_url(config.database.url)
    # A process that read an older file (serve, beside a `csat-hook sync` run by hand with the
    # edited one) must not withdraw what the newer one raised: alerts/recheck.py.
    config.alerts.mark_loaded(utcnow())
    return config


def given_by_variable(error: ConfigError) -> ConfigError:
    """``error`` about the file ``$CSAT_HOOK_CONFIG`` named, naming the variable: "cannot
    read config file /etc/csat-hook.yml" sent the operator looking for a --config they
    never typed."""
    return ConfigError(
        f"{error.message} (the path given by ${ENV_CONFIG_PATH}, the environment variable)"
    )


def read_config_file(path: str | os.PathLike[str]) -> bytes:
    """The bytes of the configuration file at ``path`` (ConfigError naming it when it cannot
    be read or is larger than :data:`MAX_FILE_BYTES`)."""
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)  # /dev/zero, a log file: not read whole
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{path}: larger than {MAX_FILE_BYTES // 1_000_000} MB; is it the configuration file?"
        )
    return data


def _validate_helpdesks(raw: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    validated: dict[str, Any] = {}
    for name, options in raw.items():
        if isinstance(name, bool) or name is None or isinstance(name, date):
            # Said as "helpdesks.None: the name is read as a number; quote it ('None':)".
            written, kind = _read_as(name)
            errors.append(
                f"helpdesks.{written}: the name is read as {kind}; write it as text "
                "(lower-case letters, digits, - or _; quoted when YAML would read it otherwise)"
            )
            continue
        where = f"helpdesks.{name}"
        if not isinstance(name, str):  # YAML reads 1: or 2024: as a number
            errors.append(f"{where}: the name is read as a number; quote it ('{name}':)")
            continue
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
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


def _read_as(value: bool | date | None) -> tuple[str, str]:
    """A key YAML read as another value than text: as the file may have written it, and
    what it was read as."""
    if value is None:
        return "null", "null (no value)"
    if isinstance(value, bool):
        return str(value).lower(), "true/false (yes, no, on, off: YAML's booleans)"
    return value.isoformat(), "a date"


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
