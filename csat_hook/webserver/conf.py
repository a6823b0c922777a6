"""gunicorn settings for csat-hook's web processes, in one place for both ways to run them.

The Procfile's ``web:`` line loads this module (``gunicorn --config
python:csat_hook.webserver.conf``; its own flags add the bind address, processes and
threads); ``csat-hook serve`` applies :data:`SETTINGS` to its embedded gunicorn. gunicorn
reads the module-level names that are settings and ignores the others.
"""

from __future__ import annotations

import sys
from typing import Any

worker_class = "csat_hook.webserver.worker.BufferedThreadWorker"
logger_class = "csat_hook.webserver.redact.RedactingLogger"
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


def on_starting(server: Any) -> None:
    """The Procfile's gunicorn master, before it binds or boots a worker: the schema brought
    to this release's once, as ``csat-hook serve`` does before its gunicorn starts. Only for
    csat-hook's app (:data:`APP`): the benchmarks run these settings with a bare Flask peer.

    A schema this release cannot use (:class:`~csat_hook.errors.SchemaError`: a newer release
    upgraded it, or this user may not change it) stops the server with that one line and exit
    1, as the commands do; each worker stopped on it with a traceback, and gunicorn's stop
    after the first could end in a traceback of its own. A configuration error is said the
    same way, with exit 2, and a database that cannot be reached with exit 1 (each worker's
    boot failed on it with a traceback). Any other error is left to the workers' boot.
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


SETTINGS: dict[str, Any] = {
    "worker_class": worker_class,
    "logger_class": logger_class,
    "accesslog": accesslog,
    "errorlog": errorlog,
    "limit_request_line": limit_request_line,
    "limit_request_fields": limit_request_fields,
    "limit_request_field_size": limit_request_field_size,
    "forwarder_headers": forwarder_headers,
    "control_socket_disable": control_socket_disable,
}
