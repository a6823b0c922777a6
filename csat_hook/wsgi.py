"""WSGI entry point for gunicorn: ``gunicorn csat_hook.wsgi:app``.

Reads the configuration named by ``$CSAT_HOOK_CONFIG`` (or the built-in defaults) and
``$DATABASE_URL``. Delivery runs in the separate ``csat-hook worker`` process.
The configuration's warnings are logged by gunicorn's master
(:func:`csat_hook.webserver.conf.on_starting`), once, not by each worker importing this.
"""

from __future__ import annotations

from csat_hook.app import create_app
from csat_hook.config import load_config
from csat_hook.logs import setup_logging

_config = load_config()
setup_logging(_config.logging.level, _config.logging.format, access_log=_config.logging.access_log)
app = create_app(_config)
