"""``GET /s/<reference>`` and ``GET /s/<reference>/<score>``: the short links of a reply.

A request is answered, in this order:

* 302 to the link itself: a link followed by punctuation a chat app's linkifier took in from
  the reply's text ("Rate us: {link}.", "({link})"), characters no reference or score ends
  with, when the reference verifies (:func:`_glued`); the link answers as below;
* 404 page: a path spelled otherwise than csat-hook writes it (a percent-escape anywhere,
  ``/S/``: :func:`_canonical`), a score that is not canonical decimal digits (``05``, ``+5``,
  ``٥``) or is off the scale, a reference longer than any we sign;
* 405 page (``Allow: GET, HEAD``): any other method, ``OPTIONS`` too (:func:`_canonical`);
* 429 page (``Retry-After``): over ``survey.links.rate_per_client`` requests a minute from one
  client address (checked before any work), or over ``rate_per_reference`` for one survey;
* 404 page: a reference that does not verify (edited, forged, malformed: exactly one
  spelling verifies, :func:`csat_hook.tokens.verify`);
* 410 page: a reference issued more than ``survey.links.expire_days`` ago;
* 404 page: a valid reference no survey went out with (another installation's, a deleted
  survey);
* 403 page: a browser's prefetch, prerender or preview (``scanners.prefetch_kind``), its
  click stored as automated: Chromium follows a speculation rule's prefetched 302 when the
  customer clicks, whatever its ``Cache-Control``, and their click would never come here;
* otherwise 302 to the form: the link the survey went out with, with the score pre-selected
  for a score link. The click is stored as intent (human or automated, ``scanners.py``)
  before the redirect, in a shared transaction (``store.ClickRecorder``); if the database
  does not answer within :data:`RECORD_TIMEOUT` the customer is still sent to the form (the
  form matters more than our count) and the click is lost, logged. When the database cannot
  be read at all, a valid reference still redirects, to the form link rebuilt from what the
  reference signs (ticket, agent id, the reference itself).

Anything unexpected while a link is answered is a 503 page ("briefly unavailable"), logged as
``short-link.unexpected-error`` with the exception's type and never the path (the reference).

Nothing is stored for a page. Pages are in the survey's language when known (the 410 page of
an expired survey), else the best of ``Accept-Language``, else English (``pages.py``).
Responses are never cached, send no Referer, are not indexed, run nothing and are shown in no
frame (:func:`_private`).
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import redirect
from flask import request
from flask.blueprints import BlueprintSetupState
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import PathConverter
from werkzeug.wrappers import Response as BaseResponse

from csat_hook import tokens
from csat_hook.clicks import pages
from csat_hook.clicks.limits import ProxyWarning
from csat_hook.clicks.limits import RateLimiter
from csat_hook.clicks.limits import client_key
from csat_hook.clicks.scanners import PREFETCH
from csat_hook.clicks.scanners import PURPOSE_HEADERS
from csat_hook.clicks.scanners import Verdict
from csat_hook.clicks.scanners import classify
from csat_hook.clicks.store import Click
from csat_hook.clicks.store import ClickRecorder
from csat_hook.clicks.store import find_survey
from csat_hook.db.engine import UNAVAILABLE
from csat_hook.db.engine import run_transaction
from csat_hook.db.engine import unavailable_cause
from csat_hook.errors import TokenError
from csat_hook.links import LinkValues
from csat_hook.links import SurveyConfig
from csat_hook.links import agent_label
from csat_hook.links import build_link
from csat_hook.links import readable_agent_name
from csat_hook.links import with_rating
from csat_hook.links.short import PATH
from csat_hook.links.short import TRAILING

EXTENSION = "csat_hook.clicks"
RECORD_TIMEOUT = 2.0
_SCORE = re.compile(r"[0-9]{1,2}")
# A link as csat-hook writes it, before TRAILING punctuation a linkifier took in (a browser
# sends its ASCII characters as they are, but " and >, and percent-encodes the others; a "?"
# or a "#" never reaches the path). Matched once they are stripped, not by one pattern with a
# lazy part before them: that backtracked, 0.8 s of CPU for one 8 KB path of dots and a letter.
_LINK = re.compile(rf"{PATH}[A-Za-z0-9_.\-]+(?:/[0-9]{{1,2}})?")

logger = logging.getLogger(__name__)
bp = Blueprint("short_links", __name__)


@dataclass
class ShortLinks:
    """What the endpoint needs: settings, secrets, the database, the limits, the clock."""

    survey: SurveyConfig
    secrets: list[str]
    engine: sa.Engine
    clock: Callable[[], datetime]
    monotonic: Callable[[], float]
    recorder: ClickRecorder = field(init=False)
    per_client: RateLimiter = field(init=False)
    per_reference: RateLimiter = field(init=False)
    # Says, once in this process, that the client limit was hit behind a proxy it does not
    # trust.
    proxy_warning: ProxyWarning = field(
        init=False, default_factory=lambda: ProxyWarning(logger, "short-link.limited-behind-proxy")
    )

    def __post_init__(self) -> None:
        links = self.survey.links
        self.recorder = ClickRecorder(
            lambda: self.engine,
            burst_seconds=links.burst_seconds,
            retention=timedelta(days=links.retention_days),
            clock=self.clock,
        )
        self.per_client = RateLimiter(links.rate_per_client, clock=self.monotonic)
        self.per_reference = RateLimiter(links.rate_per_reference, clock=self.monotonic)


def _service() -> ShortLinks:
    service: ShortLinks = current_app.extensions[EXTENSION]
    return service


class _Rest(PathConverter):
    """``path`` (tried after the other rules), that may also start with a slash (``/s//x``)."""

    regex = r"[\s\S]*"  # line breaks too (a "." would stop at a %0A)
    part_isolating = False  # else set from the regex, which has no "/"


@bp.record_once  # before the rules below are added: the set-up runs in order of declaration
def _converters(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["rest"] = _Rest


def _under_s(path: str) -> bool:
    """Whether ``path`` (decoded) is under ``/s`` in any case: ``/s/…``, ``/S/…``, ``/s``."""
    return path[1:].split("/", 1)[0].casefold() == PATH.strip("/")


@bp.before_app_request
def _canonical() -> BaseResponse | None:
    """The 404 page for any spelling of a path under ``/s`` but the one csat-hook writes: a
    lower-case ``s``, no percent-escape (a reference, a score and the separators need none).

    The server decodes the path before the route is matched, so ``/s/%4D…``, ``/s%2F…``,
    ``/s/<reference>%2F5`` (one segment, by RFC 3986) or ``/%73/…`` opened the form and
    stored a click, and ``/S/…`` (the reference in it all the same) got the app's JSON 404,
    neither private nor a page. The request line as sent (``RAW_URI``, gunicorn's and
    werkzeug's) is compared with the decoded path; a server that gives no raw line is judged
    by the decoded path alone.

    A method the path does not take (``POST``, ``OPTIONS``...) on a canonical path is the 405
    page naming those it does: the app's handler would answer the webhooks' JSON, and this
    runs before the routing error is raised."""
    path = request.path
    if not _under_s(path):
        return None
    raw: str | None = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw is not None and not raw.startswith("/"):  # the absolute form, http://host/s/…
        raw = "/" + raw.partition("://")[2].partition("/")[2]
    sent = path if raw is None else re.split(r"[?#]", raw, maxsplit=1)[0]
    # The prefix gunicorn strips when run with SCRIPT_NAME is in the line as sent.
    glued = _glued(path, sent)
    if glued is None and (
        sent not in (path, request.script_root + path)
        or not (path == "/s" or path.startswith(PATH))
    ):
        return _page(pages.NOT_FOUND)
    refused = request.routing_exception
    if isinstance(refused, MethodNotAllowed):
        response = _page(pages.NOT_ALLOWED)
        response.headers["Allow"] = ", ".join(sorted(refused.valid_methods or ["GET", "HEAD"]))
        return response
    return None if glued is None else _unglued(*glued)


def _glued(path: str, sent: str) -> tuple[str, str] | None:
    """``(link, punctuation)`` when ``path`` is a link as csat-hook writes it followed only by
    :data:`TRAILING` characters, the link sent as written (the punctuation may be
    percent-encoded, as browsers send ``»`` or ``"``); else None."""
    link = path.rstrip(TRAILING)
    tail = path[len(link) :]
    if not tail or _LINK.fullmatch(link) is None:
        return None
    for prefix in {"", request.script_root}:
        written = prefix + link
        if sent.startswith(written) and urllib.parse.unquote(sent[len(written) :]) == tail:
            return link, tail
    return None


def _unglued(link: str, tail: str) -> BaseResponse:
    """The 302 to ``link`` itself (relative: never to a host the request names), once its
    reference verifies and its score is on the scale; else the 404 page an edited link gets.

    A customer whose chat app took the reply's "." or ")" into the link reaches the form, and
    their click is counted there, once. Only characters that end no reference are dropped, and
    what is left must verify as it is: an edited reference opens nothing, with or without
    punctuation after it. The client limit counts this request as any other."""
    service = _service()
    held_off = _client_held_off(service)
    if held_off is not None:
        return held_off
    reference, _, score = link.removeprefix(PATH).partition("/")
    on_scale = not score or (
        score == str(int(score)) and int(score) in service.survey.links.scores()
    )
    if (
        not on_scale
        or len(reference) > tokens.MAX_TOKEN_LENGTH
        or not tokens.verifies(reference, service.secrets)
    ):
        logger.info("short-link.refused", extra={"status": 404, "reason": "trailing_text"})
        return _page(pages.NOT_FOUND)
    # The characters alone, never the reference: a reply template to fix ("{link}.", say).
    logger.info("short-link.trailing-punctuation", extra={"reason": f"{tail[:8]!r} after the link"})
    return redirect(request.script_root + link, code=302)


@bp.after_app_request
def _private(response: BaseResponse) -> BaseResponse:
    # Every answer under /s, the app's own ones too (405 for a POST, say).
    if _under_s(request.path):
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Robots-Tag"] = "noindex, nofollow"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # The pages' policy on every answer: the redirect's body is an HTML page too.
        response.headers["Content-Security-Policy"] = pages.POLICY
        response.headers["X-Frame-Options"] = "DENY"  # frame-ancestors, for older browsers
    return response


# No automatic OPTIONS answer (Flask's 200, an empty text/html body): a method these pages
# do not take, refused as any other (:func:`_canonical`). There is no CORS here.
@bp.get("/s/<reference>", provide_automatic_options=False)
def open_survey(reference: str) -> BaseResponse:
    return _answer(reference, None)


@bp.get("/s/<reference>/<score>", provide_automatic_options=False)
def open_with_score(reference: str, score: str) -> BaseResponse:
    links = _service().survey.links
    if not _SCORE.fullmatch(score) or int(score) not in links.scores() or score != str(int(score)):
        return _page(pages.NOT_FOUND)
    return _answer(reference, int(score))


@bp.get("/s/", strict_slashes=False, provide_automatic_options=False)
@bp.get("/s/<rest:rest>", provide_automatic_options=False)
def not_a_short_link(rest: str = "") -> BaseResponse:
    """Anything else under ``/s/`` (a trailing slash, extra segments, ``/s``, a doubled slash):
    the same 404 page. Never werkzeug's 308 to the same path with one slash more or fewer: its
    address is built from the request's Host (any host a sender names, ``http`` behind a TLS
    proxy) and it would carry the reference there."""
    return _page(pages.NOT_FOUND)


def _answer(reference: str, score: int | None) -> BaseResponse:
    try:
        return _open(reference, score)
    except Exception:
        # Not the app's handler, which logs the path: here it holds the customer's reference
        # (whoever reads the logs could answer the survey as them). The event and the
        # exception's type only; the customer gets a page, not the webhooks' JSON.
        logger.exception("short-link.unexpected-error")
        return _page(pages.UNAVAILABLE)


def _client_held_off(service: ShortLinks) -> BaseResponse | None:
    """The 429 page for a client over ``rate_per_client`` (this request counted), else None."""
    client = client_key(request.remote_addr or "")
    if service.per_client.allow(client):
        return None
    # Behind a proxy not trusted, every customer counts as the proxy's address: a wave of
    # clicks gets the 429.
    service.proxy_warning.refused(request.environ)
    return _page(pages.TOO_MANY, retry_after=service.per_client.retry_after(client))


def _open(reference: str, score: int | None) -> BaseResponse:
    service = _service()
    if len(reference) > tokens.MAX_TOKEN_LENGTH:
        return _page(pages.NOT_FOUND)
    held_off = _client_held_off(service)
    if held_off is not None:
        return held_off
    try:
        ref = tokens.verify(reference, service.secrets)
    except TokenError as exc:
        logger.info("short-link.refused", extra={"status": 404, "reason": exc.code})
        return _page(pages.NOT_FOUND)
    key = tokens.survey_key(reference)
    if not service.per_reference.allow(key):
        return _page(pages.TOO_MANY, retry_after=service.per_reference.retry_after(key))
    now = service.clock()
    if now - ref.issued_at > timedelta(days=service.survey.links.expire_days):
        logger.info("short-link.refused", extra={"status": 410, "reason": "expired"})
        return _page(pages.GONE, known=_language_of(service, reference))
    try:
        survey = run_transaction(
            service.engine, lambda conn: find_survey(conn, reference), read_only=True
        )
    except UNAVAILABLE as exc:
        # Signed by us, so issued by us: the form still opens, rebuilt from the reference.
        logger.error("short-link.database-down", extra={"error": unavailable_cause(exc)})
        return redirect(_fallback_link(service.survey, ref, reference, score), code=302)
    if survey is None:
        logger.info("short-link.refused", extra={"status": 404, "reason": "unknown_survey"})
        return _page(pages.NOT_FOUND)
    if _record(service, survey, score, now).reason == PREFETCH:
        # Chromium keeps a speculation rule's prefetch of the 302, no-store or not, and
        # follows it when the customer clicks: their click never came here. A prefetch
        # answered outside 2xx (after redirects) is dropped, and the click is fetched anew.
        return _page(pages.PREFETCHED)
    return redirect(_target(service.survey, survey, score), code=302)


def _language_of(service: ShortLinks, reference: str) -> str | None:
    """The survey's language, for its page (None when unknown or unreadable)."""
    try:
        survey = run_transaction(
            service.engine, lambda conn: find_survey(conn, reference), read_only=True
        )
    except UNAVAILABLE:
        return None
    return survey.language if survey is not None else None


def _target(survey_config: SurveyConfig, survey: Any, score: int | None) -> str:
    """The link the survey went out with (the score pre-selected); a URL template's link is
    built again with ``{rating}`` filled."""
    if survey_config.form.kind == "template" or not survey.link:
        return build_link(survey_config.form, _row_values(survey_config, survey), rating=score)
    link: str = survey.link
    return with_rating(survey_config.form, link, score) if score is not None else link


def _record(service: ShortLinks, survey: Any, score: int | None, now: datetime) -> Verdict:
    links = service.survey.links
    # Recorded as sent; else an attempt whose outcome is unknown may have posted it then;
    # else it is on its way, or went nowhere: no one had it for min_seconds_after_send.
    sent_at: datetime | None = survey.sent_at or survey.uncertain_since
    verdict = classify(
        method=request.method,
        user_agent=request.headers.get("User-Agent", ""),
        seconds_since_send=(now - sent_at).total_seconds() if sent_at else 0.0,
        min_seconds_after_send=links.min_seconds_after_send,
        extra_agents=links.scanner_user_agents,
        purpose=" ".join(request.headers.get(name, "") for name in PURPOSE_HEADERS),
    )
    click = Click(survey.id, score, request.method.upper()[:8], now, *verdict)
    try:
        service.recorder.record(click, timeout=RECORD_TIMEOUT)
    except (TimeoutError, sa.exc.SQLAlchemyError) as exc:
        logger.error("short-link.click-not-stored", extra={"error": type(exc).__name__})
    else:
        logger.info(
            "short-link.click",
            extra={
                "survey_id": survey.id,
                "kind": "automated" if verdict.automated else "human",
                "reason": verdict.reason or "",
            },
        )
    return verdict


def _row_values(survey_config: SurveyConfig, survey: Any) -> LinkValues:
    name = readable_agent_name(
        survey.agent_name, agent_id=survey.agent_id, email=survey.agent_email
    )
    return LinkValues(
        agent_name=agent_label(survey_config.reply, survey.language, name),
        agent_id=survey.agent_id or "",
        agent_email=survey.agent_email or "",
        ticket=survey.dialog_id,
        helpdesk=survey.helpdesk,
        team=survey.team or "",
        token=survey.token,
    )


def _fallback_link(
    survey_config: SurveyConfig, ref: tokens.SurveyRef, token: str, score: int | None
) -> str:
    values = LinkValues(
        agent_name=agent_label(survey_config.reply, None, None),
        agent_id=ref.agent,
        agent_email="",
        ticket=ref.dialog_id,
        helpdesk=ref.helpdesk,
        team="",
        token=token,
    )
    return build_link(survey_config.form, values, rating=score)


def _page(status: int, *, retry_after: int | None = None, known: str | None = None) -> BaseResponse:
    language = pages.language_for(known, request.headers.get("Accept-Language", ""))
    response = Response(pages.page(status, language), status=status, mimetype="text/html")
    response.headers["Content-Language"] = language  # its policy: _private, as every answer
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response
