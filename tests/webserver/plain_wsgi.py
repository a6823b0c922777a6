"""``csat_hook.wsgi:app`` without the webhooks' fast path (``intake.web.WebhookFastPath``):
every request goes to Flask's own ``wsgi_app``. For gunicorn in tests that compare the two
(``tests/webserver/test_fast_path_server.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from unittest import mock

from flask import Flask

from csat_hook.intake import web

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment


class _ToFlask:
    """In the fast path's place: every request on to Flask."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self._wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._wsgi_app(environ, start_response)


with mock.patch.object(web, "WebhookFastPath", _ToFlask):
    from csat_hook.wsgi import app

__all__ = ["app"]
