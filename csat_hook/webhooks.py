"""HTTP endpoints: ``POST /webhooks/<helpdesk>`` (and ``HEAD``, a URL check), ``GET /healthz``,
and the token-protected operator API ``GET /api/outbox``.

The view only translates between Flask and :mod:`csat_hook.intake`; one error handler turns
every refusal into ``{"error": <code>, "reason": <text>}`` with the error's status.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge

from csat_hook import intake
from csat_hook import store
from csat_hook.db import run_transaction
from csat_hook.errors import CsatHookError
from csat_hook.errors import InvalidSignatureError
from csat_hook.errors import PayloadTooLargeError
from csat_hook.errors import UnknownHelpdeskError
from csat_hook.errors import WebhookError
from csat_hook.records import WebhookRequest
from csat_hook.services import Services

logger = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)


class BadRequestError(WebhookError):
    status = 400
    code = "bad_request"


class NotFoundError(WebhookError):
    status = 404
    code = "not_found"


def _services() -> Services:
    services: Services = current_app.extensions["csat_hook"]
    return services


@bp.post("/webhooks/<helpdesk>")
def receive(helpdesk: str) -> tuple[Response, int]:
    services = _services()
    if helpdesk not in services.helpdesks:  # before reading a body we would refuse anyway
        raise UnknownHelpdeskError(f"no helpdesk named {helpdesk!r} is configured")
    limit = services.config.server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLargeError(f"the body is over the {limit}-byte limit")
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge as exc:
        raise PayloadTooLargeError(f"the body is over the {limit}-byte limit") from exc
    webhook = WebhookRequest(
        body=body,
        headers={key.lower(): value for key, value in request.headers.items()},
        query=request.args.to_dict(),
        received_at=services.clock(),
        content_type=(request.mimetype or "").lower(),
    )
    outcome = intake.receive(services, helpdesk, webhook)
    return jsonify(outcome.body), outcome.status


@bp.route("/webhooks/<helpdesk>", methods=["HEAD"])
def probe(helpdesk: str) -> tuple[str, int]:
    """Answer the HEAD request some vendors send to validate a webhook URL (Intercom does)."""
    if helpdesk not in _services().helpdesks:
        raise UnknownHelpdeskError(f"no helpdesk named {helpdesk!r} is configured")
    return "", 200


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    services = _services()
    try:
        run_transaction(services.engine, store.ping, read_only=True)
    except DBAPIError as exc:
        logger.error("health.database-down", extra={"error": type(exc.orig).__name__})
        return jsonify({"status": "unavailable", "database": "down"}), 503
    return jsonify({"status": "ok", "database": "ok"}), 200


@bp.get("/api/outbox")
def api_outbox() -> tuple[Response, int]:
    """Replies with their status and last error, for operators. Needs the API bearer token."""
    services = _services()
    _require_api_token(services)
    statuses = [s for s in request.args.getlist("status") if s in store.OUTBOX_STATUSES]
    try:
        limit = max(1, min(500, int(request.args.get("limit", "50"))))
    except ValueError as exc:
        raise BadRequestError("limit must be a number") from exc
    with services.engine.connect() as conn:
        rows = store.list_outbox(conn, statuses=statuses or None, limit=limit)
        counts = store.outbox_counts(conn)
    replies = [{k: (v.isoformat() if hasattr(v, "isoformat") else v)
                for k, v in row._mapping.items()} for row in rows]
    return jsonify({"counts": counts, "replies": replies}), 200


def _require_api_token(services: Services) -> None:
    token = services.config.server.api_token
    if token is None:
        raise NotFoundError("the operator API is off (set server.api_token)")
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.encode("utf-8", "replace"), token.get_secret_value().encode("utf-8")):
        raise InvalidSignatureError("missing or wrong bearer token")


@bp.app_errorhandler(CsatHookError)
def _our_error(error: CsatHookError) -> tuple[Response, int]:
    if error.status >= 500:
        logger.error("http.error", extra={"status": error.status, "reason": error.code})
    else:
        logger.info("webhook.refused", extra={"status": error.status, "reason": error.code,
                                              "path": request.path})
    return jsonify(error.to_dict()), error.status


@bp.app_errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[Response, int]:
    status = error.code or 500
    if isinstance(error, RequestEntityTooLarge):
        return _our_error(PayloadTooLargeError("the body is over the size limit"))
    body: dict[str, Any] = {"error": (error.name or "error").lower().replace(" ", "_"),
                            "reason": error.description or error.name}
    return jsonify(body), status


@bp.app_errorhandler(Exception)
def _unexpected(error: Exception) -> tuple[Response, int]:
    logger.exception("http.unexpected-error", extra={"path": request.path})
    return jsonify({"error": "internal_error", "reason": "unexpected server error"}), 500
