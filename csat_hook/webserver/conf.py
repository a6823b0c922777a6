"""gunicorn settings for csat-hook's web processes, in one place for both ways to run them.

The Procfile's ``web:`` line loads this module (``gunicorn --config
python:csat_hook.webserver.conf``; its own flags add the bind address, processes and
threads); ``csat-hook serve`` applies :data:`SETTINGS` to its embedded gunicorn. gunicorn
reads the module-level names that are settings and ignores the others.
"""

from __future__ import annotations

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

SETTINGS: dict[str, Any] = {
    "worker_class": worker_class,
    "logger_class": logger_class,
    "accesslog": accesslog,
    "errorlog": errorlog,
    "limit_request_line": limit_request_line,
    "limit_request_fields": limit_request_fields,
    "limit_request_field_size": limit_request_field_size,
}
