"""The ``csat-hook`` command.

Exit codes: 0 success; 1 the command ran and failed (a sync error, an invalid reference to
``verify-token``, a payload ``inspect-payload`` refuses, a failed ``alerts test``...); 2 bad
usage or an invalid configuration (the message names the key); 3 ``sync`` only: another sync
holds the lock, nothing was done (safe to ignore under cron).

One module per command group: ``run`` (serve, worker), ``configure`` (configuration, schema,
survey links and references), ``operate`` (payloads, the outbox), ``alerts``, ``sync``,
``dev`` (local fakes); ``base`` holds what they share.
"""

from __future__ import annotations

import click

from csat_hook import __version__
from csat_hook.cli import alerts
from csat_hook.cli import configure
from csat_hook.cli import dev
from csat_hook.cli import operate
from csat_hook.cli import run
from csat_hook.cli import sync
from csat_hook.cli.base import State

pass_state = click.make_pass_decorator(State)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    envvar="CSAT_HOOK_CONFIG",
    type=click.Path(dir_okay=False),
    help="YAML config file [env: CSAT_HOOK_CONFIG]; "
    "without it the built-in defaults run (SQLite, dry-run helpdesk).",
)
@click.version_option(__version__, prog_name="csat-hook")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """Survey customers when a helpdesk dialog closes; per-agent CSAT in Google Sheets."""
    ctx.obj = State(config_path)


for command in (
    run.serve,
    run.worker,
    configure.check_config,
    configure.db,
    configure.init_db,
    configure.link,
    configure.form_fields,
    configure.verify_token,
    operate.inspect_payload,
    operate.outbox,
    alerts.alerts,
    sync.sync,
    dev.dev,
):
    main.add_command(command)
