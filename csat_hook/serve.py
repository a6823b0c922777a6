"""``csat-hook serve``: gunicorn (gthread) with delivery threads inside each web process.

The delivery worker lives in the same process as the webhook handler, so a queued reply wakes
it through memory, with no database polling on the hot path. On PostgreSQL each process also
listens for NOTIFY, so replies queued by another process wake it too.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from csat_hook.config import Config


class _Application(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: Config, options: dict[str, Any]) -> None:
        self._csat_config = config
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from csat_hook.app import create_app

        return create_app(self._csat_config)


def _start_delivery(worker: Any) -> None:
    from csat_hook.wake import PostgresListener
    from csat_hook.worker import DeliveryWorker

    services = worker.wsgi.extensions["csat_hook"]
    delivery = DeliveryWorker(services)
    delivery.start()
    listener = None
    if services.engine.dialect.name == "postgresql":
        listener = PostgresListener(services.config.database.url, services.waker)
        listener.start()
    worker._csat_delivery = (delivery, listener)


def _stop_delivery(_server: Any, worker: Any) -> None:
    delivery, listener = getattr(worker, "_csat_delivery", (None, None))
    if delivery is not None:
        delivery.stop(timeout=5)
    if listener is not None:
        listener.stop()


def run_server(config: Config, *, host: str, port: int, workers: int,
               with_delivery: bool) -> None:
    """Run gunicorn in the foreground until SIGTERM/SIGINT."""
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": config.server.threads,
        "timeout": 60,
        "graceful_timeout": 20,
        "accesslog": None,  # URLs can carry ?token=...: no access log
        "errorlog": "-",
        "loglevel": "warning",
        "limit_request_line": 8190,
        "limit_request_fields": 100,
    }
    if with_delivery:
        options["post_worker_init"] = _start_delivery
        options["worker_exit"] = _stop_delivery
    _Application(config, options).run()
