"""The read-only operator API: ``GET /api/outbox`` (``?status=failed&limit=50``).

It lists replies with their status and last error, for operators. It needs
``Authorization: Bearer <server.api_token>`` (a 401 says so in ``WWW-Authenticate``) and
answers 404 while no token is configured. A client (an IPv4 address, an IPv6 /64; behind a
proxy with ``server.trust_proxy``, the address it forwards) that sent
``server.api_failures_per_minute`` wrong tokens within a minute gets a 429 (``Retry-After``)
for every request until the minute ends, the right token too: answered, a guess would still
be told right from wrong. Requests with the right token are never counted. Behind a proxy
``server.trust_proxy`` does not trust, every client is the proxy: the first 429 to a request
it forwarded is logged once per process (``api.limited-behind-proxy``, no address).
No answer under ``/api/`` may be kept by a cache (``Cache-Control: no-store``,
:func:`_operator_only`).
``status`` may be given several times (replies in any of them), ``limit`` once; any other
query parameter is refused (400), as is a value it cannot read exactly.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from dataclasses import dataclass
from dataclasses import field

import sqlalchemy as sa
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request
from werkzeug.wrappers import Response as BaseResponse

from csat_hook.db.engine import UNAVAILABLE
from csat_hook.db.engine import unavailable_cause
from csat_hook.db.schema import OUTBOX_STATUSES
from csat_hook.errors import InvalidSignatureError
from csat_hook.errors import ServiceUnavailableError
from csat_hook.errors import WebhookError
from csat_hook.helpdesks.signing import header_bytes
from csat_hook.outbox import listing
from csat_hook.ratelimit import ProxyWarning
from csat_hook.ratelimit import RateLimiter
from csat_hook.ratelimit import client_key

EXTENSION = "csat_hook.outbox_api"
MAX_LIMIT = 500
PREFIX = "/api/"
# RFC 9110 11.6.1: a 401 names the scheme that would be accepted (RFC 6750 3).
CHALLENGE = 'Bearer realm="csat-hook operator API"'
# Wrong tokens a client may send a minute (server.api_failures_per_minute's default).
FAILURES_PER_MINUTE = 10
PARAMETERS = ("status", "limit")  # status may repeat (any of them); limit once
_LIMIT = re.compile(r"[0-9]{1,6}")

logger = logging.getLogger(__name__)
bp = Blueprint("outbox_api", __name__)


@dataclass(frozen=True)
class OutboxApi:
    """What the endpoint needs: the database, the bearer token (None: the API is off) and the
    count of wrong tokens per client."""

    engine: sa.Engine
    token: str | None
    failures: RateLimiter = field(
        default_factory=lambda: RateLimiter(FAILURES_PER_MINUTE, clock=time.monotonic)
    )
    # Says, once in this process, that a client was held off behind a proxy it does not trust.
    proxy_warning: ProxyWarning = field(
        default_factory=lambda: ProxyWarning(logger, "api.limited-behind-proxy")
    )


class BadRequestError(WebhookError):
    status = 400
    code = "bad_request"


class NotFoundError(WebhookError):
    status = 404
    code = "not_found"


class TooManyFailuresError(WebhookError):
    """The client sent too many wrong tokens this minute; ``Retry-After`` says when it ends."""

    status = 429
    code = "too_many_failures"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after_header = retry_after


@bp.after_app_request
def _operator_only(response: BaseResponse) -> BaseResponse:
    """Every answer under ``/api/``, the app's own ones too (a 405, a 404 while the API is
    off): the listing names agents, tickets and helpdesks' error texts, and no proxy or
    browser between the operator and us may keep it for whoever asks the URL next."""
    if request.path.startswith(PREFIX):
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# Not Flask's own OPTIONS answer (a 200 with an empty text/html body, the API on or off): a
# JSON 405 naming GET, as /healthz and the webhook URLs answer. There is no CORS here.
@bp.get("/api/outbox", provide_automatic_options=False)
def api_outbox() -> tuple[Response, int]:
    """Replies with their status and last error, for operators. Needs the API bearer token."""
    api: OutboxApi = current_app.extensions[EXTENSION]
    _require_api_token(api)
    # Refused, not ignored: a misspelt key (?stauts=failed) listed every reply, and of two
    # limits the first was read, each with a 200 that answered another question.
    if any(key not in PARAMETERS for key in request.args):
        raise BadRequestError(f"unknown query parameter; known: {', '.join(PARAMETERS)}")
    if len(request.args.getlist("limit")) > 1:
        raise BadRequestError("limit is given more than once")
    statuses = request.args.getlist("status")
    for status in statuses:
        if status not in OUTBOX_STATUSES:
            # Named only when it is one of ours to name: the query is the caller's text.
            raise BadRequestError(f"status must be one of {', '.join(OUTBOX_STATUSES)}")
    raw_limit = request.args.get("limit", "50")
    # ASCII digits only: int() also reads " 5", "1_000" and "٣". Out of range is refused,
    # not clamped: a 0 read as 1 or a 999999 as 500 answers another question than the one
    # asked.
    if not _LIMIT.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise BadRequestError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    limit = int(raw_limit)
    try:
        with api.engine.connect() as conn:
            rows = listing.list_outbox(conn, statuses=statuses or None, limit=limit)
            counts = listing.outbox_counts(conn)
    except UNAVAILABLE as exc:  # try again later, not a 500
        logger.error("api.database-down", extra={"error": unavailable_cause(exc)})
        raise ServiceUnavailableError("the database is unavailable; retry later") from exc
    replies = [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row._mapping.items()}
        for row in rows
    ]
    return jsonify({"counts": counts, "replies": replies}), 200


def _require_api_token(api: OutboxApi) -> None:
    """Refuse the request unless it carries the API token: 404 while the API is off, 429 to
    a client held off for its wrong tokens (before its token is looked at), else 401 (counted
    against the client) for a missing or wrong one."""
    if api.token is None:
        raise NotFoundError("the operator API is off (set server.api_token)")
    # request.remote_addr is the proxy's forwarded address with server.trust_proxy (ProxyFix).
    client = client_key(request.remote_addr or "")
    if api.failures.blocked(client):
        # Every client counts as the proxy's address then: one guesser's wrong tokens hold
        # the operator off too.
        api.proxy_warning.refused(request.environ)
        raise TooManyFailuresError(
            "too many wrong API tokens from this client; retry later",
            retry_after=api.failures.retry_after(client),
        )
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    # One or more spaces after the scheme (RFC 9110 11.4, "Bearer  <token>" as typed).
    value = value.lstrip(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        header_bytes(value), api.token.encode("utf-8")
    ):
        api.failures.count(client)
        raise InvalidSignatureError("missing or wrong bearer token", challenge=CHALLENGE)
