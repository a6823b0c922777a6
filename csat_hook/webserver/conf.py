"""gunicorn settings for csat-hook's web processes, in one place for both ways to run them.

The Procfile's ``web:`` line loads this module (``gunicorn --config
python:csat_hook.webserver.conf``; its own flags add the bind address, processes and
threads); ``csat-hook serve`` applies :data:`SETTINGS` to its embedded gunicorn. gunicorn
reads the module-level names that are settings and ignores the others.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from csat_hook.webserver.redact import RedactingLogger

worker_class = "csat_hook.webserver.worker.BufferedThreadWorker"
# The Procfile's: its level and access log read from the configuration (serve's: SETTINGS).
logger_class = "csat_hook.webserver.conf.ProcfileLogger"
# URLs carry ?token=... for some helpdesks: no access log.
accesslog = None
errorlog = "-"
# Request heads: one line of at most 8190 bytes (gunicorn's ceiling), at most 100 fields of
# 8190 bytes each. The same for both deployments.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# gunicorn lets a peer in forwarded_allow_ips (127.0.0.1 unless set: a sidecar, a local
# proxy) set SCRIPT_NAME and PATH_INFO by header: a request served by another endpoint than
# its path names, or a 500. The app is mounted at the root; no header moves it.
forwarder_headers = ""
# No control socket (gunicorn 25.1+ opens one at $HOME/.gunicorn/gunicorn.ctl by default): a
# second csat-hook on the host unlinked the first one's and took its path, so `gunicornc`
# reached, and could stop, another service. Nothing of csat-hook uses it.
control_socket_disable = True
# The app the Procfile's web: line serves.
APP = "csat_hook.wsgi:app"


# The configuration's warnings the Procfile's master has logged (on_starting, on_reload): a
# reload logs those it has not said yet, once.
_warned: set[str] = set()

# logging.level as gunicorn names its levels.
GUNICORN_LEVELS = {"DEBUG": "debug", "INFO": "info", "WARNING": "warning", "ERROR": "error"}


def given_setting(name: str, argv: Sequence[str]) -> Any:
    """The value of gunicorn's setting ``name`` given on its command line ``argv`` or in
    ``GUNICORN_CMD_ARGS`` (the command line winning, as gunicorn applies them), else None."""
    from gunicorn.config import Config as GunicornConfig

    parser = GunicornConfig().parser()
    given = None
    try:
        from_env = shlex.split(os.environ.get("GUNICORN_CMD_ARGS", ""))
    except ValueError:  # an unclosed quote: gunicorn_args_problem says so before gunicorn
        from_env = []
    for args in (from_env, list(argv)):
        try:
            parsed, _ = parser.parse_known_args(args)
        except SystemExit:  # gunicorn itself says what is wrong with them
            continue
        value = getattr(parsed, name, None) if isinstance(parsed, argparse.Namespace) else None
        if value is not None:
            given = value
    return given


# gunicorn's own levels (glogging.Logger.LOG_LEVELS): any other name it reads as info.
GUNICORN_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def gunicorn_args_problem() -> str | None:
    """Why ``GUNICORN_CMD_ARGS`` cannot be read as gunicorn reads it (split as a shell would,
    then parsed as its command line), or None. An unclosed quote ended gunicorn's start in
    a traceback; an option without its value printed gunicorn's usage twice while the
    server ran without the option; a ``--log-level`` of no level's name was read as info,
    without a word."""
    from gunicorn.config import Config as GunicornConfig

    try:
        args = shlex.split(os.environ.get("GUNICORN_CMD_ARGS", ""))
    except ValueError as exc:
        return f"GUNICORN_CMD_ARGS cannot be split as a shell splits words ({exc})"
    parser = GunicornConfig().parser()
    parser.exit_on_error = False  # an ArgumentError to say, not argparse's exit
    try:
        parsed, _ = parser.parse_known_args(args)
    except argparse.ArgumentError as exc:
        return f"GUNICORN_CMD_ARGS: {exc}"
    level = getattr(parsed, "loglevel", None)
    if isinstance(level, str) and level.lower() not in GUNICORN_LOG_LEVELS:
        return (
            f"GUNICORN_CMD_ARGS: --log-level {level[:40]!r} is none of gunicorn's levels "
            f"({', '.join(GUNICORN_LOG_LEVELS)})"
        )
    return None


def gunicorn_level(level: str, argv: Sequence[str]) -> str:
    """gunicorn's error-log level: ``--log-level`` where given (``argv``, or
    ``GUNICORN_CMD_ARGS``), else ``logging.level``'s (``level``)."""
    given = given_setting("loglevel", argv)
    return str(given) if given is not None else GUNICORN_LEVELS[level]


def apply_logging(
    server: Any,
    *,
    level: str,
    access_log: bool,
    argv: Sequence[str],
    helpdesks: Iterable[str] | None = None,
) -> None:
    """``csat-hook serve``'s, once its gunicorn master starts, before any worker is forked
    (the Procfile's logger does it itself: :class:`ProcfileLogger`): gunicorn's level
    follows ``logging.level`` (:func:`gunicorn_level`), and its access log is on when
    ``logging.access_log`` is (see :class:`~csat_hook.webserver.redact.RedactingLogger`).
    Its lines stay redacted at every level; with the configured ``helpdesks``' names, a
    webhook URL of none of them keeps no name."""
    server.cfg.set("loglevel", gunicorn_level(level, argv))
    server.log.service_access_log = access_log
    if helpdesks is not None:
        server.log.service_helpdesks = frozenset(helpdesks)
    server.log.setup(server.cfg)


class ProcfileLogger(RedactingLogger):
    """The Procfile's gunicorn logger (:data:`logger_class`): a :class:`~csat_hook.webserver
    .redact.RedactingLogger` whose level and access log are the configuration's
    (``$CSAT_HOOK_CONFIG``), read each time gunicorn sets its logger up: when the master
    makes it, before its first line, and at each reload (SIGHUP), before the reload's
    lines. Its level is ``logging.level``'s unless gunicorn is given one
    (:func:`gunicorn_level`); its access log is ``logging.access_log``'s. So every line of
    the master follows ``logging.level``, from ``Starting gunicorn`` (and ``Current
    configuration``, at DEBUG) on; a SIGHUP applies a changed ``logging`` section, as the
    workers it starts read it, where gunicorn's own reload put its level back to
    ``--log-level``'s or its default (INFO). (Before it, gunicorn has only parsed its
    command line and loaded this module: what it says then, its usage errors, is printed,
    not logged.)

    Only for csat-hook's app (:data:`APP`). A configuration that cannot be read changes
    nothing: at start the logger keeps gunicorn's level, and :func:`on_starting` stops the
    server with the error before a worker is started; at a reload it keeps the values read
    last, and the new workers stop on the error."""

    service_level: str | None = None

    def setup(self, cfg: Any) -> None:
        if APP in (cfg.default_proc_name, cfg.wsgi_app):
            from csat_hook.config import load_config
            from csat_hook.errors import ConfigError

            try:
                config = load_config()
            except ConfigError:
                pass  # said by on_starting, or by the workers (see above)
            else:
                self.service_level = config.logging.level
                self.service_access_log = config.logging.access_log
                self.service_helpdesks = frozenset(config.helpdesks)
            if self.service_level is not None:
                cfg.set("loglevel", gunicorn_level(self.service_level, sys.argv[1:]))
        super().setup(cfg)


def on_starting(server: Any) -> None:
    """The Procfile's gunicorn master, before it binds or boots a worker: the configuration's
    warnings logged once (:func:`~csat_hook.config.checks.log_config_warnings`; the workers
    log none of them) and the schema brought to this release's once, as ``csat-hook
    serve`` does both before its gunicorn starts. Only for
    csat-hook's app (:data:`APP`): the benchmarks run these settings with a bare Flask peer.

    gunicorn's level and access log are the configuration's already (:class:`ProcfileLogger`).
    A schema this release cannot use
    (:class:`~csat_hook.errors.SchemaError`: a newer release upgraded it, or this user may
    not change it) stops the server with that one line and exit 1, as the commands do; each
    worker stopped on it with a traceback, and gunicorn's stop after the first could end in a
    traceback of its own. A configuration error is said the same way, with exit 2, and a
    database that cannot be reached with exit 1 (each worker's boot failed on it with a
    traceback). Any other error is left to the workers' boot.
    ``csat-hook serve`` does not use this hook: it has made the schema before gunicorn starts.
    """
    if getattr(server.app, "app_uri", None) != APP:
        return
    from csat_hook.config import load_config
    from csat_hook.db.engine import connect_failure
    from csat_hook.db.engine import make_engine
    from csat_hook.db.migrate import create_schema
    from csat_hook.errors import ConfigError
    from csat_hook.errors import SchemaError

    try:
        config = load_config()
    except ConfigError as exc:  # each worker would stop on it with a traceback
        print(f"Error: {exc.message}", file=sys.stderr, flush=True)
        sys.exit(2)  # as the commands exit on a configuration error
    _said_in_the_master(config)  # here, once: not by each worker (wsgi.py)
    try:
        engine = make_engine(config.database.url)
        try:
            create_schema(engine)
        finally:
            engine.dispose()  # nothing of it is inherited by the workers
    except SchemaError as exc:
        print(f"Error: {exc.message}", file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception as exc:
        said = connect_failure(exc)
        if said is None:
            return  # the workers' boot says it: see above
        print(f"Error: {said}", file=sys.stderr, flush=True)
        sys.exit(1)


def on_reload(server: Any) -> None:
    """The Procfile's gunicorn master at a reload (SIGHUP), before it starts the new workers
    on the configuration read again: its warnings that the master has not logged yet, each
    once (the workers log none; one logged at the start is not said again). Only for
    csat-hook's app (:data:`APP`). A configuration that cannot be read says nothing here:
    the new workers stop on it."""
    if getattr(server.app, "app_uri", None) != APP:
        return
    from csat_hook.config import load_config
    from csat_hook.errors import ConfigError

    try:
        config = load_config()
    except ConfigError:
        return  # said by the new workers (see above)
    _said_in_the_master(config)


def _said_in_the_master(config: Any) -> None:
    """The master's own logging set from ``config`` (the service's lines, as its workers
    write them), then the configuration's warnings it has not logged yet (:data:`_warned`)."""
    from csat_hook.config import log_config_warnings
    from csat_hook.logs import setup_logging

    logs = config.logging
    setup_logging(logs.level, logs.format, access_log=logs.access_log)
    log_config_warnings(config, said=_warned)


SETTINGS: dict[str, Any] = {
    "worker_class": worker_class,
    # serve sets its logger's level and access log itself (server.py): its configuration
    # is the one it was given, not necessarily $CSAT_HOOK_CONFIG's.
    "logger_class": "csat_hook.webserver.redact.RedactingLogger",
    "accesslog": accesslog,
    "errorlog": errorlog,
    "limit_request_line": limit_request_line,
    "limit_request_fields": limit_request_fields,
    "limit_request_field_size": limit_request_field_size,
    "forwarder_headers": forwarder_headers,
    "control_socket_disable": control_socket_disable,
}
