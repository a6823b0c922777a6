"""Running the service: ``serve`` (the embedded default) and ``worker``."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from csat_hook.cli.base import ConfigProblem
from csat_hook.cli.base import EnvOption
from csat_hook.cli.base import State
from csat_hook.cli.base import pass_state
from csat_hook.cli.base import warn_insecure
from csat_hook.config.checks import exchanges_past_the_lease
from csat_hook.outbox.runtime import start_delivery
from csat_hook.server import run_server


@click.command()
@click.option("--host", help="Interface to bind [default: server.host].")
@click.option(
    "--port",
    cls=EnvOption,
    type=click.IntRange(0, 65535),
    envvar="PORT",
    help="Port [env: PORT; default: server.port; 0: any free port].",
)
@click.option(
    "--workers", type=click.IntRange(1, 64), help="Web processes [default: server.workers]."
)
@pass_state
def serve(state: State, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the web app and the delivery worker together (the embedded default)."""
    config = state.config
    # Fail fast on a bad database URL and create the schema once; then close what that opened.
    # No database connection may be open here when gunicorn forks the web processes: a child
    # inherits SQLite's record of this process's locks but not the locks, so its connections
    # never took them; when the parent's connection closed later (the garbage collector ended
    # it), SQLite saw no one else using the database and deleted its WAL, and with it every
    # close committed there since (each later webhook a 503). A PostgreSQL connection shared
    # by two processes would be closed under the child too.
    state.services().close()
    warn_insecure(config)
    run_server(
        config,
        host=host or config.server.host,
        port=config.server.port if port is None else port,  # 0: any free port
        workers=workers or config.server.workers,
        with_delivery=True,
        sync_command=_sync_child_command(state) if config.sync.run_in_serve else None,
    )


def _sync_child_command(state: State) -> list[str]:
    """The periodic sync that ``serve`` runs beside the web processes."""
    command = [sys.executable, "-m", "csat_hook"]
    if state.path:
        command += ["--config", str(Path(state.path).resolve())]
    return [*command, "sync", "--periodic", "--keep-waiting"]


@click.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (for cron).")
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    help="Delivery threads [default: delivery.concurrency].",
)
@pass_state
def worker(state: State, once: bool, threads: int | None) -> None:
    """Run the delivery worker alone (Procfile ``worker:``)."""
    if once and (refused := exchanges_past_the_lease(state.config)):
        raise ConfigProblem(refused[0])
    services = state.services()
    delivery = services.delivery_worker()
    if once:
        count = delivery.run_once(limit=10_000)
        click.echo(f"processed {count} replies")
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    running = start_delivery(delivery, database_url=services.config.database.url, threads=threads)
    stop.wait()
    click.echo("stopping: finishing replies in flight", err=True)
    running.stop()
