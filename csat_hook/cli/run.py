"""Running the service: ``serve`` (the embedded default) and ``worker``."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from csat_hook.cli.base import ConfigProblem
from csat_hook.cli.base import Digits
from csat_hook.cli.base import SetEnvOption
from csat_hook.cli.base import State
from csat_hook.cli.base import pass_state
from csat_hook.cli.base import shown
from csat_hook.config import log_config_warnings
from csat_hook.config.checks import exchanges_past_the_lease
from csat_hook.intake.config import bind_host
from csat_hook.outbox.runtime import start_delivery
from csat_hook.server import bind_problem
from csat_hook.server import run_server
from csat_hook.webserver.conf import gunicorn_args_problem


@click.command()
@click.option(
    "--host", callback=lambda _c, _p, v: _host(v), help="Interface to bind [default: server.host]."
)
@click.option(
    "--port",
    cls=SetEnvOption,
    type=Digits(0, 65535),
    envvar="PORT",
    help="Port [env: PORT; default: server.port; 0: any free port].",
)
@click.option("--workers", type=Digits(1, 64), help="Web processes [default: server.workers].")
@pass_state
def serve(state: State, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the web app and the delivery worker together (the embedded default)."""
    config = state.config
    bind_at = config.server.host if host is None else host
    port = config.server.port if port is None else port  # 0: any free port
    problem = gunicorn_args_problem() or bind_problem(bind_at, port)
    if problem is not None:
        click.echo(f"Error: cannot serve: {shown(problem)}", err=True)
        sys.exit(2)
    # Fail fast on a bad database URL and create the schema once; then close what that opened.
    # No database connection may be open here when gunicorn forks the web processes: a child
    # inherits SQLite's record of this process's locks but not the locks, so its connections
    # never took them; when the parent's connection closed later (the garbage collector ended
    # it), SQLite saw no one else using the database and deleted its WAL, and with it every
    # close committed there since (each later webhook a 503). A PostgreSQL connection shared
    # by two processes would be closed under the child too.
    state.services().close()
    # Said here, once: its web processes (forked) and its sync child say none of them.
    log_config_warnings(config)
    run_server(
        config,
        host=bind_at,
        port=port,
        workers=workers or config.server.workers,
        with_delivery=True,
        **(_sync_child(state) if config.sync.run_in_serve else {}),
    )


def _host(value: str | None) -> str | None:
    """The --host given, as :func:`bind_host` checks server.host (None: not given)."""
    if value is None:
        return None
    try:
        return bind_host(value)
    except ValueError as exc:
        raise click.BadParameter(shown(str(exc))) from None


def _sync_child(state: State) -> dict[str, Any]:
    """The periodic sync that ``serve`` runs beside the web processes: ``sync_command`` and,
    for a configuration that is not a file the child can open again (a pipe: ``-c
    /dev/stdin``, ``-c <(envsubst < tpl)``), ``sync_input``, the bytes this process read,
    which the child reads on its standard input. It read the consumed pipe again and died;
    serve went on without its sync, saying nothing."""
    command = [sys.executable, "-m", "csat_hook"]
    given: bytes | None = None
    if state.path:
        resolved = Path(state.path).resolve()
        if resolved.is_file():
            command += ["--config", str(resolved)]
        else:
            command += ["--config", "/dev/stdin"]
            given = state.text
    return {
        "sync_command": [*command, "sync", "--periodic", "--keep-waiting"],
        "sync_input": given,
    }


@click.command()
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit (for cron).")
@click.option(
    "--threads",
    type=Digits(1, 64),
    help="Delivery threads [default: delivery.concurrency].",
)
@pass_state
def worker(state: State, once: bool, threads: int | None) -> None:
    """Run the delivery worker alone (Procfile `worker:`)."""
    if once and (refused := exchanges_past_the_lease(state.config)):
        raise ConfigProblem(refused[0])
    log_config_warnings(state.config)
    services = state.services()
    delivery = services.delivery_worker()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if once:
        # Ctrl-C broke off the reply being sent (its outcome unrecorded until its lease ran
        # out), or, with several threads, left them claiming every due reply: the replies in
        # flight are finished and recorded, no other is claimed.
        count = delivery.run_once(
            limit=10_000, threads=threads or services.config.delivery.concurrency, stop=stop
        )
        if stop.is_set():
            click.echo(
                "stopped (SIGINT/SIGTERM): the replies in flight were finished, "
                "the rest stay queued",
                err=True,
            )
        click.echo(f"processed {count} replies")
        return
    running = start_delivery(delivery, database_url=services.config.database.url, threads=threads)
    stop.wait()
    click.echo("stopping: finishing replies in flight", err=True)
    running.stop()
