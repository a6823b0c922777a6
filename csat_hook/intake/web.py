"""HTTP endpoints of intake: ``POST /webhooks/<helpdesk>`` (and ``HEAD``, a URL check) and
``GET /healthz``.

The view only translates between Flask and :class:`~csat_hook.intake.receive.Intake`; one
error handler (for the whole app) turns every refusal into ``{"error": <code>, "reason":
<text>}`` with the error's status. Any other method on these URLs is 405 with ``Allow``
(``OPTIONS`` too: Flask does not answer it here), or on a webhook URL 404 when the helpdesk
is not configured, as a ``POST`` there is. Every refusal of a webhook URL, a 405 too, is a
``webhook.refused`` log line (its status, reason, route or helpdesk; never the path).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request
from flask.json.provider import DefaultJSONProvider
from flask.wrappers import Request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.routing import Map
from werkzeug.utils import get_content_type
from werkzeug.wsgi import get_path_info

from csat_hook.db.engine import UNAVAILABLE
from csat_hook.db.engine import ping
from csat_hook.db.engine import run_transaction
from csat_hook.db.engine import unavailable_cause
from csat_hook.errors import CsatHookError
from csat_hook.errors import NoSuchUrlError
from csat_hook.errors import PayloadTooLargeError
from csat_hook.errors import UnsupportedEncodingError
from csat_hook.errors import WebhookError
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.intake.body import read_body
from csat_hook.intake.receive import Intake
from csat_hook.intake.receive import Outcome
from csat_hook.intake.receive import unknown_helpdesk
from csat_hook.logs import STANDARD_METHODS

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

EXTENSION = "csat_hook.intake"
# app.config key: seconds a request body may take to arrive (server.body_timeout_seconds).
BODY_TIMEOUT = "CSAT_BODY_TIMEOUT_SECONDS"

logger = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)
# Flask answers OPTIONS for every route itself (200 and an empty text/html page, for any
# helpdesk name) unless told not to: here it is a method the route does not take, a 405
# naming those it does (provide_automatic_options=False on each route).


def _intake() -> Intake:
    intake: Intake = current_app.extensions[EXTENSION]
    return intake


@bp.post("/webhooks/<helpdesk>", provide_automatic_options=False)
def receive(helpdesk: str) -> tuple[Response, int]:
    posted: Request = request._get_current_object()  # type: ignore[attr-defined]
    outcome = _receive(
        _intake(),
        helpdesk,
        current_app.config,
        environ=posted.environ,
        headers={key.lower(): value for key, value in posted.headers.items()},
        args=lambda: posted.args,
        mimetype=posted.mimetype,
        path=posted.script_root + posted.path,
    )
    return jsonify(outcome.body), outcome.status


def _receive(
    intake: Intake,
    helpdesk: str,
    config: Mapping[str, Any],
    *,
    environ: WSGIEnvironment,
    headers: dict[str, str],
    args: Callable[[], MultiDict[str, str]],
    mimetype: str,
    path: str,
) -> Outcome:
    """One webhook, posted to ``/webhooks/<helpdesk>``, verified, parsed and recorded: the
    outcome to answer with; a :class:`~csat_hook.errors.CsatHookError` to refuse it. The
    route's work, whichever way the request came (:func:`receive`, :class:`WebhookFastPath`).

    ``config`` is the app's (``MAX_CONTENT_LENGTH``, :data:`BODY_TIMEOUT`); the rest is what
    Flask's request says: its headers by lower-cased name (a dict of the caller's own, kept
    as the webhook's), its query parameters (read only
    once the encodings are accepted, as the refusals' order is part of the answer), its
    mimetype and its path with the script root."""
    if helpdesk not in intake.helpdesks:  # before reading a body we would refuse anyway
        raise unknown_helpdesk(helpdesk)
    if (headers.get("content-encoding") or "identity").strip().lower() != "identity":
        # No vendor compresses webhooks; a compressed body would be signed as compressed
        # bytes and then read as text, so say what is wrong instead.
        raise UnsupportedEncodingError("a Content-Encoding other than identity is not accepted")
    if _transfer_codings(headers.get("transfer-encoding")) - {"chunked"}:
        # gunicorn decodes chunked framing only: a "gzip, chunked" body would be read as
        # the gzip bytes (or, mislabelled, as something other than what was sent).
        raise UnsupportedEncodingError("a Transfer-Encoding other than chunked is not accepted")
    query = _single_valued(args())
    body = read_body(
        environ,
        max_bytes=config["MAX_CONTENT_LENGTH"],
        deadline_seconds=config[BODY_TIMEOUT],
    )
    webhook = WebhookRequest(
        body=body,
        headers=headers,
        query=query,
        received_at=intake.clock(),
        content_type=mimetype.lower(),
        method="POST",
        path=path,
    )
    return intake.receive(helpdesk, webhook)


class WebhookFastPath:
    """WSGI middleware in front of the Flask app: a ``POST /webhooks/<helpdesk>`` for a
    configured helpdesk runs :func:`_receive` without Flask's request machinery; every other
    request goes on to ``wsgi_app`` (the app's own).

    Why: at peak, Flask's and Werkzeug's per-request work around the route (the request and
    app contexts, the URL map, the request object's properties, the response object and
    hooks, ``jsonify``) was about a quarter of an acknowledgement's CPU
    (``benchmarks/ack_budget.py``), for a route that needs none of it. The contract is that a
    request answered here gets the answer the route gives, to the byte:

    * only a request the route would match is taken: the method ``POST``, a path of
      ``/webhooks/`` and one ASCII segment naming a configured helpdesk that the app's URL
      map sends to the route (anything else, a name beyond ASCII, a trailing or a leading
      doubled slash included, is Flask's to route or refuse), and only when Werkzeug surely
      routes it by method and path alone: not a request its own URL map routes as a
      WebSocket handshake (an ``Upgrade`` header naming ``websocket``, a ws/wss scheme; the
      app's map does not, but the fast path does not rely on which map it is; another
      upgrade, ``h2c``, is a plain ``POST`` to every map), a ``Host`` its URL map cannot
      bind, nor any request while Flask's ``TRUSTED_HOSTS`` is set or the app has a request
      class of its own;
    * what the route reads of the request is read as Werkzeug's request reads it (the headers
      from the same ``HTTP_*`` keys, the mimetype by Werkzeug's ``parse_options_header``, a
      query string or a script root beyond ASCII by the app's request class itself);
    * the accepted answer is the one ``jsonify`` builds (the app's JSON provider, compact,
      Werkzeug's content type and status line); anything unusual (a debug app's indented
      JSON, another provider or response class, a status other than 200) is built by the
      app's JSON provider;
    * a refusal (or any exception) is answered by the app's own error handlers and response
      hooks, in a request context pushed for it, exactly as if raised in the route: only the
      accepted answer skips them, and no hook of the app touches a webhook's answer.

    ``tests/intake/test_fast_path.py`` compares both ways for every vendor, headers and log
    lines included.
    """

    def __init__(self, app: Flask, wsgi_app: WSGIApplication) -> None:
        self._app = app
        self._wsgi_app = wsgi_app
        # Per configured helpdesk: whether the app's URL map sends a POST of its URL to the
        # route (not to a rule of its own that Werkzeug prefers). Learnt at its first
        # request: an app adds its rules before it serves (create_app); Flask refuses one
        # after its own first request, but does not see those answered here.
        self._routed: dict[str, bool] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        helpdesk = self._configured_helpdesk(environ)
        if helpdesk is None:
            return self._wsgi_app(environ, start_response)
        app = self._app
        try:
            outcome = _receive(
                app.extensions[EXTENSION],
                helpdesk,
                app.config,
                environ=environ,
                headers=_headers(environ),
                args=lambda: self._args(environ),
                mimetype=_mimetype(environ.get("CONTENT_TYPE", "")),
                path=self._script_root(environ) + environ["PATH_INFO"],
            )
            # In the try: the route's jsonify raising (a value the provider cannot write) is
            # the app's logged 500 too.
            answer = self._answer(outcome)
            if answer is None:
                response = cast(Response, app.json.response(outcome.body))
                response.status_code = outcome.status
        except Exception as error:  # answered by the app's handlers, as in the route
            return self._refused(environ, start_response, error)
        if answer is None:
            return response(environ, start_response)
        start_response("200 OK", answer[0])
        return [answer[1]]

    def _configured_helpdesk(self, environ: WSGIEnvironment) -> str | None:
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        path: str = environ.get("PATH_INFO") or ""
        if not path.startswith(_WEBHOOKS):
            return None
        name = path[len(_WEBHOOKS) :]
        # ASCII: PATH_INFO holds the path's bytes as latin-1, which Flask decodes as UTF-8
        # before routing; for ASCII both read the same name (and the same path).
        if not name or "/" in name or not name.isascii():
            return None
        intake: Intake = self._app.extensions[EXTENSION]
        if name not in intake.helpdesks:
            return None
        routed = self._routed.get(name)
        if routed is None:
            routed = self._routed[name] = self._routes_to_receive(name)
        if not routed:
            return None
        # Routed by Werkzeug by more than method and path: a WebSocket handshake (the
        # Upgrade header naming websocket, or a ws/wss scheme a proxy's X-Forwarded-Proto
        # gave) matches only WebSocket rules in Werkzeug's own URL map (create_app's routes
        # it as HTTP: the webhook is received), a Host whose name IDNA cannot encode is a
        # 400 before routing, and so is a host Flask's TRUSTED_HOSTS does not name. Flask's
        # to answer, all of them: rare, and its map decides. Another upgrade (h2c, which
        # Java's HttpClient asks for on every http:// request) no map routes by: taken.
        if _asks_for_a_websocket(environ) or environ.get("wsgi.url_scheme") not in _HTTP_SCHEMES:
            return None
        host = environ.get("HTTP_HOST")
        if host is not None and not _bindable_host(host):
            return None
        if self._app.config.get("TRUSTED_HOSTS") is not None:
            return None
        # An app's own request class may read the request otherwise (its trusted hosts too).
        if self._app.request_class is not Request or Request.trusted_hosts is not None:
            return None
        return name

    def _routes_to_receive(self, name: str) -> bool:
        """Whether the app's URL map matches ``POST /webhooks/<name>`` to :func:`receive`."""
        try:
            endpoint, args = self._app.url_map.bind("").match(_WEBHOOKS + name, method="POST")
        except HTTPException:
            return False
        return endpoint == f"{bp.name}.{receive.__name__}" and args == {"helpdesk": name}

    def _args(self, environ: WSGIEnvironment) -> MultiDict[str, str]:
        if not environ.get("QUERY_STRING"):
            return MultiDict()
        return self._app.request_class(environ).args

    def _script_root(self, environ: WSGIEnvironment) -> str:
        root: str = environ.get("SCRIPT_NAME") or ""
        if root.isascii():
            return root.rstrip("/")
        return self._app.request_class(environ).script_root

    def _answer(self, outcome: Outcome) -> tuple[list[tuple[str, str]], bytes] | None:
        """The headers and body of ``jsonify(outcome.body)`` with status 200, as the default
        JSON provider and Werkzeug's response write them; None when another way is set up
        (a provider or response class of the app's own, a debug app's indented JSON) or the
        status is not 200, for the provider to build."""
        provider = self._app.json
        if outcome.status != 200 or type(provider) is not DefaultJSONProvider:
            return None
        if self._app.response_class is not Response:  # its own headers, its own bytes
            return None
        if (provider.compact is None and self._app.debug) or provider.compact is False:
            return None
        body = f"{provider.dumps(outcome.body, separators=(',', ':'))}\n".encode()
        headers = [
            ("Content-Type", get_content_type(provider.mimetype, "utf-8")),
            ("Content-Length", str(len(body))),
        ]
        return headers, body

    def _refused(
        self, environ: WSGIEnvironment, start_response: StartResponse, error: Exception
    ) -> Iterable[bytes]:
        """The answer Flask gives ``error`` raised in the route: its handler (logging the
        refusal with the matched route), then the after-request hooks, in a request context
        of this request (the body already read, as in the route). Called within the
        ``except`` of the raise, so a handler's ``logger.exception`` has the traceback."""
        app = self._app
        context = app.request_context(environ)
        context.push()
        try:
            try:
                response = app.finalize_request(app.handle_user_exception(error))
            except Exception as unhandled:  # as Flask's wsgi_app does
                response = app.handle_exception(unhandled)
            return response(environ, start_response)
        finally:
            context.pop()


def _headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request's headers by lower-cased name: what Werkzeug's ``EnvironHeaders`` yields
    (the ``HTTP_*`` keys but the two it reads unprefixed, ``CONTENT_TYPE`` and
    ``CONTENT_LENGTH`` when not empty, named in title case), each name lower-cased."""
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            if key not in _UNPREFIXED:
                name = key[5:].replace("_", "-")
                # title() then lower() is lower() for ASCII; not for all of Unicode (ß).
                headers[name.lower() if name.isascii() else name.title().lower()] = value
        elif key in _CONTENT and value:
            headers[_CONTENT[key]] = value
    return headers


_UNPREFIXED = frozenset({"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"})
_CONTENT = {"CONTENT_TYPE": "content-type", "CONTENT_LENGTH": "content-length"}


@functools.lru_cache(maxsize=64)
def _mimetype(content_type: str) -> str:
    """The request's mimetype as Werkzeug's ``Request.mimetype`` reads ``Content-Type``.
    Cached: a vendor sends one or two values; 64 of at most the server's header size."""
    return parse_options_header(content_type)[0].lower()


_WEBHOOKS = "/webhooks/"
_HTTP_SCHEMES = frozenset({"http", "https"})
# Binds as the app's URL map does (no host matching); only its check of the host is used.
_HOST_CHECK = Map()


def _asks_for_a_websocket(environ: WSGIEnvironment) -> bool:
    """Whether Werkzeug's own URL map may bind the request as a WebSocket handshake (which
    matches WebSocket rules only): an ``Upgrade`` header naming ``websocket`` anywhere, in
    any case. Werkzeug's asks for that value alone with ``Connection: Upgrade``; a wider net
    costs nothing (Flask gives the same answer) and holds if its reading changes. Any other
    upgrade (``h2c``, ``TLS/1.0``) is routed by method and path by every map: a plain
    request."""
    upgrade: str | None = environ.get("HTTP_UPGRADE")
    return upgrade is not None and "websocket" in upgrade.lower()


@functools.lru_cache(maxsize=256)
def _bindable_host(host: str) -> bool:
    """Whether Werkzeug binds its URL map to a request with this ``Host`` header, as sent.
    ``Map.bind`` refuses (``BadHost``, a 400) a name IDNA cannot encode: an empty label
    (``a..b``, ``.a``) or one over 63 characters. Flask binds the host Werkzeug's
    ``get_host`` reads, which is this one without a default port, or none when it holds
    characters no host has: never refused when this one is not. Cached: a sender names
    its host, the same every time."""
    try:
        _HOST_CHECK.bind(host)
    except HTTPException:
        return False
    return True


def _transfer_codings(header: str | None) -> set[str]:
    """The transfer codings a Transfer-Encoding header names (parameters dropped)."""
    codings = (part.partition(";")[0].strip().lower() for part in (header or "").split(","))
    return {coding for coding in codings if coding}


def _single_valued(args: MultiDict[str, str]) -> dict[str, str]:
    """The query's parameters; a 400 when one is given twice (``?token=a&token=b``): readers
    disagree on which value counts (Werkzeug takes the first, others the last)."""
    for name in args:
        if len(args.getlist(name)) > 1:
            raise WebhookError(
                f"the query parameter {name[:100]!r} is given more than once",
                code="duplicate_parameter",
            )
    return args.to_dict()


@bp.route("/webhooks/<helpdesk>", methods=["HEAD"], provide_automatic_options=False)
def probe(helpdesk: str) -> tuple[Response, int]:
    """Answer the HEAD request some vendors send to validate a webhook URL (Intercom does):
    the headers of a JSON answer, as every answer of the route is."""
    if helpdesk not in _intake().helpdesks:
        raise unknown_helpdesk(helpdesk)
    return jsonify({"status": "ok"}), 200


@bp.get("/healthz", provide_automatic_options=False)
def healthz() -> tuple[Response, int]:
    try:
        run_transaction(_intake().engine, ping, read_only=True)
    except UNAVAILABLE as exc:
        # A driver's error, or no pooled connection freed up within the pool's timeout
        # (every one held by a database that stopped answering): down, not a 500.
        logger.error("health.database-down", extra={"error": unavailable_cause(exc)})
        return jsonify({"status": "unavailable", "database": "down"}), 503
    return jsonify({"status": "ok", "database": "ok"}), 200


@bp.app_errorhandler(CsatHookError)
def _our_error(error: CsatHookError) -> tuple[Response, int]:
    if error.status >= 500:
        logger.error("http.error", extra={"status": error.status, "reason": error.code})
    else:
        _log_refused(error.status, error.code)
    response = jsonify(error.to_dict())
    if error.retry_after_header is not None:
        response.headers["Retry-After"] = str(error.retry_after_header)
    if error.www_authenticate is not None:
        response.headers["WWW-Authenticate"] = error.www_authenticate
    return response, error.status


def _where() -> dict[str, str]:
    """What a log line about a refused (or failed) request says of its URL, never the path
    itself (the sender's text: a token pasted into it, a customer's words): the route it
    matched (``/webhooks/<helpdesk>``) and, on a webhook URL, the helpdesk when one is
    configured by that name, else only the name's length."""
    where: dict[str, str] = {}
    rule = request.url_rule
    if rule is not None:
        where["route"] = rule.rule
        helpdesk = (request.view_args or {}).get("helpdesk")
    else:  # a method the URL does not take (a GET of a webhook URL)
        helpdesk = _webhook_helpdesk()
    if isinstance(helpdesk, str):
        configured = helpdesk in _intake().helpdesks
        where["helpdesk"] = (
            helpdesk if configured else f"(not configured: {len(helpdesk)} characters)"
        )
    return where


@bp.app_errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    if isinstance(error, RequestEntityTooLarge):
        return _our_error(PayloadTooLargeError("the body is over the size limit"))
    if isinstance(error, MethodNotAllowed):
        helpdesk = _webhook_helpdesk()
        if helpdesk is not None and helpdesk not in _intake().helpdesks:
            return _our_error(unknown_helpdesk(helpdesk))
        if helpdesk is not None:
            # A refusal of a webhook URL like any other: a sender whose helpdesk sends
            # another method (a GET, a PUT) would otherwise find nothing in our logs.
            _log_refused(status, "method_not_allowed", method=_method_named(request.method))
    if isinstance(error, NotFound) and request.url_rule is None and _meant_for_a_webhook():
        return _our_error(NoSuchUrlError(_webhook_form()))
    body: dict[str, Any] = {
        "error": (error.name or "error").lower().replace(" ", "_"),
        "reason": error.description or error.name,
    }
    response = jsonify(body)
    # Werkzeug's own headers but its HTML type: the Allow of a 405, its methods sorted (the
    # router's are a set: their order changed from one process to the next).
    for name, value in error.get_headers(request.environ):
        if name.lower() == "allow":
            value = ", ".join(sorted(m.strip() for m in value.split(",") if m.strip()))
        if name.lower() != "content-type":
            response.headers[name] = value
    return response, status


def _log_refused(status: int, reason: str, **more: str) -> None:
    """The ``webhook.refused`` line of a refused request: its status and reason, where it
    was sent (:func:`_where`: the route or the helpdesk, never the path), and ``more``."""
    logger.info("webhook.refused", extra={"status": status, "reason": reason, **more, **_where()})


def _method_named(method: str) -> str:
    """What a log line says of a request's method (Werkzeug's, upper-cased): a standard
    one as it is; of any other, only its length. A method is any token the client sends
    (gunicorn passes on any upper-case one), so it can hold anything a sender pastes."""
    if method in STANDARD_METHODS:
        return method
    return f"(not a standard method: {len(method)} characters)"


def _webhook_helpdesk(path: str | None = None) -> str | None:
    """The helpdesk the request's URL (or ``path`` on its host) names when it is a webhook
    URL, whatever the method; None for any other URL."""
    adapter = current_app.create_url_adapter(request)
    if adapter is None:
        return None
    try:
        endpoint, args = adapter.match(path, method="POST")
    except HTTPException:  # no such URL, or a redirect
        return None
    helpdesk = args.get("helpdesk")
    return helpdesk if endpoint == f"{bp.name}.{receive.__name__}" else None


# The URL of a webhook, as a refusal names it (never the path the sender used).
WEBHOOK_FORM = "/webhooks/<helpdesk>"


def _meant_for_a_webhook() -> bool:
    """Whether a request for a URL no route has was meant for a webhook's: a ``POST`` (only
    webhooks are posted) or a path whose first segment starts with "webhook" in any case
    (``/webhooks/zendesk/``, ``/webhook/zendesk``, ``/Webhooks``)."""
    first = request.path.lstrip("/").partition("/")[0]
    return request.method == "POST" or first.lower().startswith("webhook")


def _webhook_form() -> str:
    """Why a request meant for a webhook found no URL, naming the accepted form only."""
    accepted = (
        f"a webhook is posted to {WEBHOOK_FORM}: the helpdesk's configured name, one path segment"
    )
    # The path as routed: request.path has its leading slashes made one (//webhooks/x/).
    path = get_path_info(request.environ)
    if path.endswith("/") and _webhook_helpdesk(path.rstrip("/")) is not None:
        return f"no such URL ({accepted}, without a trailing slash)"
    return f"no such URL ({accepted})"


@bp.app_errorhandler(Exception)
def _unexpected(error: Exception) -> tuple[Response, int]:
    logger.exception("http.unexpected-error", extra=_where())
    return jsonify({"error": "internal_error", "reason": "unexpected server error"}), 500
