"""The Flask application factory."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from werkzeug.exceptions import NotFound
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import Map
from werkzeug.routing import MapAdapter

from csat_hook.clicks import web as short_links
from csat_hook.config import Config
from csat_hook.config import load_config
from csat_hook.intake import web
from csat_hook.outbox import api
from csat_hook.ratelimit import RateLimiter
from csat_hook.services import Services
from csat_hook.services import build_services

SERVICES = "csat_hook"


class _Adapter(MapAdapter):
    """Werkzeug's adapter, but a path that starts with a doubled slash matches no rule.

    Werkzeug's router strips a path's leading slashes before it matches (``merge_slashes``
    or not), and gunicorn gives a request-target of ``//webhooks/zendesk`` as PATH_INFO
    unchanged (``//`` is no authority in an origin-form target): the webhook was accepted
    there, ``//healthz`` was the health check and ``//api/outbox`` the operator API. A doubled
    slash is not one of our paths, leading or not (``/webhooks//zendesk`` matches nothing
    either): a 404, answered and logged as any other near miss of a webhook URL."""

    def match(self, path_info: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if (self.path_info if path_info is None else path_info).startswith("//"):
            raise NotFound()
        return super().match(path_info, *args, **kwargs)


class _Routes(Map):
    """The app's URL map: Werkzeug's, its adapters :class:`_Adapter`, routing a request by
    its method and path alone, never as a WebSocket handshake.

    Werkzeug binds a request with ``Connection: Upgrade`` and ``Upgrade: websocket`` (or a
    ``ws``/``wss`` scheme, as a proxy's X-Forwarded-Proto may say) as a WebSocket request,
    which matches WebSocket rules only: a webhook's POST got a 405 naming HEAD alone (POST is
    the URL's method), and no refusal was logged. We have no WebSocket rules and never answer
    101: Upgrade is a hint a server may ignore (RFC 9110 §7.8), as ``Upgrade: h2c`` already
    was, so the request is the plain HTTP request it also is. A webhook is verified by its
    signature or token, never by its hop-by-hop headers; refusing it would lose a close from
    a sender whose client (or proxy) adds the header, for no safety gained. So a POST is
    received, and refused only as any POST is (logged); a HEAD is the URL check; a GET (a
    WebSocket handshake proper) is the 405 any GET of a webhook URL gets."""

    def bind(self, *args: Any, **kwargs: Any) -> MapAdapter:
        return _over_http(super().bind(*args, **kwargs))

    def bind_to_environ(self, *args: Any, **kwargs: Any) -> MapAdapter:
        # Werkzeug's calls Map.bind itself, not self.bind.
        return _over_http(super().bind_to_environ(*args, **kwargs))


_HTTP_SCHEME = {"ws": "http", "wss": "https"}


def _over_http(adapter: MapAdapter) -> _Adapter:
    """``adapter`` as an :class:`_Adapter` for the HTTP scheme a WebSocket one stands for: it
    matches HTTP rules (Werkzeug's matches WebSocket ones for a ws/wss scheme)."""
    return _Adapter(
        adapter.map,
        adapter.server_name,
        adapter.script_name,
        adapter.subdomain,
        _HTTP_SCHEME.get(adapter.url_scheme, adapter.url_scheme),
        adapter.path_info,
        adapter.default_method,
        adapter.query_args,
    )


class _App(Flask):
    """Flask, routing by :class:`_Routes`."""

    url_map_class = _Routes


def create_app(config: Config | None = None, *, services: Services | None = None) -> Flask:
    """Build the web app. With no arguments, load the configuration from the environment.

    Gunicorn entry point: ``gunicorn 'csat_hook.app:create_app()'``.
    """
    if services is None:
        services = build_services(config if config is not None else load_config())
    config = services.config
    app = _App("csat_hook")
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_body_bytes
    app.config[web.BODY_TIMEOUT] = config.server.body_timeout_seconds
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # A doubled slash is not one of our paths: werkzeug would answer it with a permanent
    # redirect built from the request's Host (a signed close re-posted wherever it names).
    # Nor is a leading one, which werkzeug matches as one slash (_Adapter).
    app.url_map.merge_slashes = False
    app.extensions[SERVICES] = services
    app.extensions[web.EXTENSION] = services.intake
    app.extensions[short_links.EXTENSION] = services.short_links
    token = config.server.api_token
    app.extensions[api.EXTENSION] = api.OutboxApi(
        services.engine,
        token.get_secret_value() if token is not None else None,
        failures=RateLimiter(config.server.api_failures_per_minute, clock=time.monotonic),
    )
    # The webhooks' hot path, inside ProxyFix: it reads no client address or scheme, and a
    # request it does not take goes on to Flask as it came.
    app.wsgi_app = web.WebhookFastPath(app, app.wsgi_app)  # type: ignore[method-assign]
    if config.server.trust_proxy:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    app.register_blueprint(web.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(short_links.bp)
    return app
