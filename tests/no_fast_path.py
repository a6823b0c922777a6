"""The app without the webhooks' fast path (``intake.web.WebhookFastPath``), for tests that
compare the two: built under :func:`without_fast_path`, every request goes to Flask's own
``wsgi_app``, and the app is otherwise the same (``ProxyFix`` in front when configured)."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from unittest import mock

from flask import Flask

from csat_hook.intake import web

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment


class ToFlask:
    """In the fast path's place: every request on to Flask."""

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self._wsgi_app = wsgi_app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._wsgi_app(environ, start_response)


@contextmanager
def without_fast_path() -> Iterator[None]:
    """While active, ``create_app`` installs :class:`ToFlask` where the fast path goes."""
    with mock.patch.object(web, "WebhookFastPath", ToFlask):
        yield
