"""The ``csat-hook`` command.

Exit codes: 0 success; 1 the command ran and failed (a database it cannot connect to, a sync
error, an invalid reference to ``verify-token``, a payload ``inspect-payload`` refuses, a
failed ``alerts test``...); 2 bad usage or an invalid configuration (the message names the
key); 3 ``sync`` and ``erase``: another sync holds the lock, nothing was done (safe to
ignore under cron); 4 ``sync``: a data error (see ``csat-hook sync --help``).

One module per command group: ``run`` (serve, worker), ``configure`` (configuration, schema,
survey links and references), ``operate`` (payloads, the outbox), ``alerts``, ``sync``,
``erase`` (a customer's data), ``dev`` (local fakes); ``base`` holds what they share.

A command's module is imported when that command runs (click's lazily loaded subcommands):
``csat-hook sync`` does not load Flask and the web side, nor ``serve`` the sync's report
(numpy, gspread), ≈ 12 MB of RSS each would carry for nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from csat_hook import __version__
from csat_hook.cli.base import EnvOption
from csat_hook.cli.base import State
from csat_hook.cli.base import unreachable

pass_state = click.make_pass_decorator(State)

# Command name → "module:attribute" of its click command, imported on first use.
COMMANDS = {
    "serve": "run:serve",
    "worker": "run:worker",
    "check-config": "configure:check_config",
    "db": "configure:db",
    "init-db": "configure:init_db",
    "link": "configure:link",
    "form-fields": "configure:form_fields",
    "verify-token": "configure:verify_token",
    "inspect-payload": "operate:inspect_payload",
    "outbox": "operate:outbox",
    "alerts": "alerts:alerts",
    "sync": "sync:sync",
    "erase": "erase:erase",
    "dev": "dev:dev",
}


class LazyGroup(click.Group):
    """A group whose commands (:data:`COMMANDS`) are imported when asked for, as click's
    documentation shows for large command sets. A database that cannot be connected to ends
    any command with a message, not a traceback (:func:`~csat_hook.cli.base.unreachable`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            problem = unreachable(exc)
            if problem is None:
                raise
            raise problem from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attribute = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(f"csat_hook.cli.{module}"), attribute)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise RuntimeError(
                f"csat_hook.cli.{module}.{attribute} is not the {cmd_name!r} command"
            )
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    cls=EnvOption,
    envvar="CSAT_HOOK_CONFIG",
    type=click.Path(dir_okay=False),
    help="YAML config file [env: CSAT_HOOK_CONFIG]; "
    "without it the built-in defaults run (SQLite, dry-run helpdesk).",
)
@click.version_option(__version__, prog_name="csat-hook")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """Survey customers when a helpdesk dialog closes; per-agent CSAT in Google Sheets."""
    from_env = ctx.get_parameter_source("config_path") is click.core.ParameterSource.ENVIRONMENT
    ctx.obj = State(config_path, from_env=from_env)
