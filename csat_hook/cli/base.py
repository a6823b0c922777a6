"""What every command shares: the lazily loaded configuration and the exit-code-2 error."""

from __future__ import annotations

import math
import os
import shlex
from collections.abc import Iterable
from typing import TYPE_CHECKING
from typing import Any

import click

from csat_hook.config import Config
from csat_hook.config import load_config
from csat_hook.config.loading import given_by_variable
from csat_hook.config.loading import read_config_file
from csat_hook.errors import ConfigError
from csat_hook.errors import CsatHookError
from csat_hook.errors import SchemaError
from csat_hook.logs import escaped
from csat_hook.logs import setup_logging

if TYPE_CHECKING:
    from csat_hook.services import Services


class ConfigProblem(click.ClickException):
    exit_code = 2


class Seconds(click.FloatRange):
    """A number of seconds within the range; click's FloatRange lets nan through."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                float(value)
            except ValueError:  # click said "'x' is not a valid seconds."
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number of seconds", param, ctx)
        return number


class EnvOption(click.Option):
    """An option that may be given by an environment variable (``envvar``): a bad value
    taken from the variable names the variable, which the operator set (``PORT=abc`` on a
    Procfile platform), not the option, which they never typed."""

    def get_error_hint(self, ctx: click.Context | None) -> str:
        source = ctx.get_parameter_source(self.name) if ctx and self.name else None
        if source is not click.core.ParameterSource.ENVIRONMENT or not self.envvar:
            return super().get_error_hint(ctx)
        variable = self.envvar if isinstance(self.envvar, str) else " or ".join(self.envvar)
        return f"{variable} (environment variable, for {self.opts[-1]})"


class SetEnvOption(EnvOption):
    """An :class:`EnvOption` whose variable, when set, must hold a value: click reads a set
    but empty one as unset, and ``PORT=`` (a platform's template left blank) ran on the
    configured port without a word, where ``DATABASE_URL=`` and ``CSAT_HOOK_CONFIG=`` are
    refused."""

    def resolve_envvar_value(self, ctx: click.Context) -> str | None:
        given = os.environ.get(self.envvar) if isinstance(self.envvar, str) else None
        if given is not None and not given.strip():
            raise click.UsageError(
                f"{self.envvar} (environment variable, for {self.opts[-1]}) is set but "
                "empty: give its value, or unset it",
                ctx,
            )
        return super().resolve_envvar_value(ctx)


class Digits(click.IntRange):
    """A whole number within the range, written in ASCII digits: click's IntRange takes
    what ``int()`` takes, ``٨٠٩٠`` (Arabic-Indic digits) and ``8_090`` too."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip().lstrip("+-").isdecimal():
            self.fail(f"{value!r} is not a whole number", param, ctx)
        if isinstance(value, str) and not value.strip().isascii():
            self.fail(f"{value!r} is not written in ASCII digits (0-9)", param, ctx)
        return super().convert(value, param, ctx)


# What the database can hold: a count of rows to list, a row's id (64-bit).
LIMIT = Digits(1, 1_000_000)
ROW_ID = Digits(1, 2**63 - 1)


class State:
    """Lazily loaded configuration shared by the subcommands."""

    def __init__(self, path: str | None, *, from_env: bool = False) -> None:
        self.path = path
        # The path came from $CSAT_HOOK_CONFIG: named when the file cannot be read.
        self.from_env = from_env
        # The file's bytes as read: a pipe (`-c /dev/stdin`) cannot be read again by a child
        # process (serve's sync), which is given them instead.
        self.text: bytes | None = None
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                if self.path:
                    self.text = self._read(self.path)
                self._config = load_config(self.path, text=self.text)
            except ConfigError as exc:
                raise ConfigProblem(exc.message) from None
            logs = self._config.logging
            setup_logging(logs.level, logs.format, access_log=logs.access_log)
        return self._config

    def _read(self, path: str) -> bytes:
        try:
            return read_config_file(path)
        except ConfigError as exc:
            raise (given_by_variable(exc) if self.from_env else exc) from None

    def services(self) -> Services:
        # The web side's composition (Flask among it) is loaded by the commands that use it,
        # not by ``sync``.
        from csat_hook.services import build_services

        try:
            return build_services(self.config)
        except SchemaError:
            raise  # not the configuration's fault: exit 1 (see unreachable)
        except CsatHookError as exc:
            raise ConfigProblem(exc.message) from None


pass_state = click.make_pass_decorator(State)


def command_line(state: State, words: str) -> str:
    """```csat-hook <words>``` as the operator must type it for this configuration: with the
    ``-c`` this command was given. A hint to run a bare ``csat-hook db upgrade`` (or
    ``sync``) after ``csat-hook -c prod.yaml …`` read the built-in defaults: another
    database. A path from ``$CSAT_HOOK_CONFIG`` is still set for the next command."""
    given = f" -c {shlex.quote(state.path)}" if state.path and not state.from_env else ""
    return f"`csat-hook{given} {words}`"


def shown(text: str) -> str:
    """``text`` safe to print on the operator's terminal: each character that is not printable
    (a line break, a carriage return, the ESC that starts a terminal escape sequence, a bidi
    override) as its ``\\uXXXX`` escape, so what a helpdesk or a customer wrote cannot forge
    lines or drive the terminal. The same spelling as the logs and every ``--json`` output
    (:func:`csat_hook.logs.escaped`): one text reads the same wherever it is shown."""
    return escaped(text)


def unknown_helpdesk(name: str, configured: Iterable[str], *, also: str = "") -> click.BadParameter:
    """The exit-2 refusal of a ``--helpdesk`` no helpdesk is configured by: names it and lists
    the configured ones (``also``: what else was looked at, after them)."""
    names = ", ".join(configured) or "(none)"
    return click.BadParameter(
        shown(f"no helpdesk named {name!r}; configured: {names}{also}"), param_hint="--helpdesk"
    )


def unreachable(exc: Exception) -> click.ClickException | None:
    """What to say (exit 1) when ``exc`` is a failure to connect to the database, or a schema
    this release cannot upgrade (SchemaError), or a failure to open its file (ConfigError,
    exit 2); None for any other error (:func:`csat_hook.db.engine.connect_failure`)."""
    if isinstance(exc, SchemaError):
        return click.ClickException(exc.message)
    if isinstance(exc, CsatHookError):
        return ConfigProblem(exc.message) if isinstance(exc, ConfigError) else None
    from csat_hook.db.engine import connect_failure

    said = connect_failure(exc)
    return None if said is None else click.ClickException(said)
