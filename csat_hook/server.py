"""``csat-hook serve``: gunicorn (gthread) with delivery threads inside each web process.

The delivery start-up is the one the ``worker`` command uses too
(:func:`csat_hook.outbox.runtime.start_delivery`).

The delivery worker lives in the same process as the webhook handler, so a queued reply wakes
it through memory, with no database polling on the hot path. On PostgreSQL each process also
listens for NOTIFY, so replies queued by another process wake it too.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import signal
import socket
import subprocess
import sys
from typing import IO
from typing import Any

from gunicorn.app.base import BaseApplication

from csat_hook.app import SERVICES
from csat_hook.app import create_app
from csat_hook.config import Config
from csat_hook.outbox.runtime import start_delivery
from csat_hook.services import Services
from csat_hook.webserver.conf import SETTINGS
from csat_hook.webserver.conf import apply_logging
from csat_hook.webserver.conf import gunicorn_level


class _Application(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: Config, options: dict[str, Any]) -> None:
        self._csat_config = config
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return create_app(self._csat_config)


def _start_delivery(worker: Any) -> None:
    services: Services = worker.wsgi.extensions[SERVICES]
    worker._csat_delivery = start_delivery(
        services.delivery_worker(), database_url=services.config.database.url
    )


def _stop_delivery(_server: Any, worker: Any) -> None:
    running = getattr(worker, "_csat_delivery", None)
    if running is not None:
        running.stop(timeout=5)


def bind_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, None when it can: checked before gunicorn
    starts, which retries a busy address for about five seconds and then says so in its own
    words. The check's socket is closed at once (with SO_REUSEADDR, as gunicorn binds, so a
    port left in TIME_WAIT is not taken for busy); a port taken between the check and
    gunicorn's bind is still gunicorn's to report. An IPv6 ``host`` may be bracketed, as
    :func:`~csat_hook.intake.config.bind_host` gives it (getaddrinfo takes it without)."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    where = f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"
    try:
        found = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        return f"{where}: the host cannot be resolved (server.host or --host)"
    if port == 0:
        return None  # any free port: gunicorn picks one
    family, kind, proto, _, address = found[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"{where} is in use (another server listens there): choose another port"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{where}: the host is not an address of this machine"
            if exc.errno == errno.EACCES:
                return f"{where}: permission denied (ports below 1024 need privileges)"
            return f"{where} cannot be listened on ({exc.strerror or type(exc).__name__})"
    return None


def run_server(
    config: Config,
    *,
    host: str,
    port: int,
    workers: int,
    with_delivery: bool,
    sync_command: list[str] | None = None,
    sync_input: bytes | None = None,
) -> None:
    """Run gunicorn in the foreground until SIGTERM/SIGINT.

    ``sync_command`` is started as a child process (the periodic sync) and stopped with the
    server. It is a separate process so a large sync never competes with webhooks for the GIL.
    ``sync_input`` (the configuration, when the child cannot read it from a file) is written
    to its standard input.
    """
    options: dict[str, Any] = {
        **SETTINGS,  # the worker and logger classes, limits: the same as the Procfile's
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": config.server.threads,
        "timeout": 60,
        "graceful_timeout": 20,
        # logging.level, unless GUNICORN_CMD_ARGS names a --log-level (its only setting
        # serve takes from there: the others are serve's own options and config keys).
        "loglevel": gunicorn_level(config.logging.level, ()),
    }
    if with_delivery:
        options["post_worker_init"] = _start_delivery
        options["worker_exit"] = _stop_delivery
    sync_every = config.sync.interval_seconds if sync_command else None
    child: subprocess.Popen[bytes] | None = None

    # The listening sockets are bound: say where (the port may have been 0), then start the
    # periodic sync child, stopped on exit; PR_SET_PDEATHSIG also stops it if the server is
    # killed outright.
    def when_ready(server: Any) -> None:
        nonlocal child
        print(listening_line(server.LISTENERS, workers, with_delivery, sync_every), file=sys.stderr)
        sys.stderr.flush()
        if sync_command:
            child = subprocess.Popen(  # noqa: S603
                sync_command,
                preexec_fn=_die_with_parent,
                stdin=None if sync_input is None else subprocess.PIPE,
            )
            if child.stdin is not None and sync_input is not None:
                _feed(child.stdin, sync_input)

    def on_exit(_server: Any) -> None:
        if child is not None and child.poll() is None:
            child.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=20)

    def on_starting(server: Any) -> None:
        apply_logging(
            server,
            level=config.logging.level,
            access_log=config.logging.access_log,
            argv=(),
            helpdesks=config.helpdesks,
        )

    options["on_starting"] = on_starting
    options["when_ready"] = when_ready
    options["on_exit"] = on_exit
    _Application(config, options).run()


def listening_line(
    listeners: list[Any], workers: int, with_delivery: bool, sync_every: float | None
) -> str:
    """What ``serve`` prints once it listens, e.g. ``csat-hook listening on
    http://127.0.0.1:8000 (2 web processes, delivery in each, sync every 300 s)``."""
    where = ", ".join(str(listener) for listener in listeners)
    parts = [f"{workers} web process" + ("es" if workers != 1 else "")]
    parts.append("delivery in each" if with_delivery else "no delivery")
    parts.append(f"sync every {sync_every:g} s" if sync_every else "no periodic sync")
    return f"csat-hook listening on {where} ({', '.join(parts)})"


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Write ``data`` to the child's standard input and close it, here, before the web
    processes are forked: one holding the pipe open would keep the child waiting for the
    end of it. The pipe is made large enough for the whole configuration (Linux) so the
    write does not wait on the child's start-up; a child that died early is its own report."""
    with contextlib.suppress(OSError, AttributeError):  # F_SETPIPE_SZ: Linux only
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, max(len(data), 4096))
    with contextlib.suppress(BrokenPipeError):
        pipe.write(data)
    with contextlib.suppress(BrokenPipeError):
        pipe.close()


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies (Linux; elsewhere a no-op)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
