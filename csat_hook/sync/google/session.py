"""The one boundary for Google calls: credentials, endpoints, timeouts, retries, counting.

Every Sheets and Forms request goes through :class:`GoogleSession`, a ``requests.Session``
handed to gspread (``gspread.Client(auth=None, session=...)``, the documented way to bring
your own session) and used directly for the Forms API. It:

* rewrites ``https://sheets.googleapis.com`` and ``https://forms.googleapis.com`` (hard-coded in
  gspread's ``urls.py``) to the configured bases, so an emulator or a proxy can stand in;
* always sets a timeout (gspread's default is none), and ends every exchange within connect
  plus read timeout from its start (:class:`~csat_hook.helpdesks.deadline.DeadlineAdapter`);
* reads each answer up to a limit by the kind of request (:data:`ANSWER_LIMITS`), far above
  any answer Google gives it: an endpoint or a proxy streaming more fails the request, named,
  instead of filling the sync's memory;
* retries 408/429/5xx, a 403 that is a rate limit (:data:`RATE_LIMIT_REASONS`), timeouts,
  connection errors and a body cut off a bounded number of times with
  jittered exponential backoff, waiting at least what the answer asks for (``Retry-After``,
  or ``google.rpc.RetryInfo``'s ``retryDelay`` in the error's body; capped as the policy caps
  a Retry-After) (gspread's ``BackOffHTTPClient`` retries forever; unused),
  except a request sent with ``repeat=False`` whose answer is lost (no answer, or a 5xx
  after which Google may have applied it): the caller decides, having looked at what is
  there (a ``spreadsheets.batchUpdate``: api.update_structure), and waits first as the answer
  asked (:meth:`GoogleSession.pause` with :func:`asked_wait`); a 429 or a rate limit to such
  a request was not applied and is retried here, after its wait, as any other; a quota spent
  for the day (:func:`spent_quota`) is not retried at all: it is back tomorrow, not within
  the run;
* counts every request by kind, for the sync summary and the quota budget.

Authorisation: the session asks the service-account credentials for a token with
``credentials.refresh()`` (which posts the signed JWT to the ``token_uri`` of the
service-account JSON) and adds it with ``credentials.apply()``. It deliberately does not use
google-auth's ``AuthorizedSession`` / ``before_request()``: since google-auth 2.55,
``before_request`` starts a background "Regional Access Boundary" look-up to
``iamcredentials.googleapis.com`` (``_after_refresh`` → ``_maybe_start_regional_access_boundary
_refresh``) whose URL cannot be configured nor switched off. ``refresh()`` + ``apply()`` are
public API, do exactly the token work, and so every URL the sync touches is configurable.
A token request left unanswered, or refused as transient (a 5xx after google-auth's own
three tries), is asked again under the same retry policy as every other request.

Transport failures leave as :class:`~csat_hook.errors.GoogleApiError`; the API calls
themselves are in :mod:`csat_hook.sync.google.api`.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import google.auth.exceptions
import requests
import urllib3
from google.auth.transport.requests import Request as GoogleAuthRequest
from google.oauth2 import service_account

from csat_hook.errors import ConfigError
from csat_hook.errors import GoogleApiError
from csat_hook.helpdesks.deadline import DeadlineAdapter
from csat_hook.helpdesks.transport import AnswerTooLarge
from csat_hook.helpdesks.transport import answer_reader
from csat_hook.helpdesks.transport import never_sent
from csat_hook.retry import Backoff
from csat_hook.retry import longest_wait
from csat_hook.retry import parse_duration
from csat_hook.retry import parse_retry_after
from csat_hook.sync.config import GOOGLE_FORMS_BASE_URL
from csat_hook.sync.config import GOOGLE_SHEETS_BASE_URL
from csat_hook.sync.config import GoogleConfig

logger = logging.getLogger(__name__)

# https://developers.google.com/workspace/sheets/api/scopes
SHEETS_SCOPE = "https://www.googleapis.com/auth/spreadsheets"
SHEETS_READONLY_SCOPE = "https://www.googleapis.com/auth/spreadsheets.readonly"
# https://developers.google.com/workspace/forms/api/reference/rest/v1/forms.responses/list
FORMS_RESPONSES_SCOPE = "https://www.googleapis.com/auth/forms.responses.readonly"
# https://developers.google.com/workspace/forms/api/reference/rest/v1/forms/get: the form's
# questions, asked when a response answers a question no role names (a question re-added).
FORMS_BODY_SCOPE = "https://www.googleapis.com/auth/forms.body.readonly"

# Statuses worth trying again at Google, and why (https://cloud.google.com/apis/design/errors
# and the Sheets "Usage limits" page). Anything else (400 INVALID_ARGUMENT, 403, 404, 409
# ALREADY_EXISTS...) is an answer that the same request will get again.
RETRYABLE_STATUS: dict[int, str] = {
    408: "Request Timeout",
    429: "RESOURCE_EXHAUSTED: a per-minute quota; Google says retry with exponential backoff",
    500: "INTERNAL: a transient fault",
    502: "Bad Gateway: the front end could not reach the API",
    503: "UNAVAILABLE: Google's own advice is to retry",
    504: "DEADLINE_EXCEEDED at the front end",
}

# A 403 whose reason is one of these is a rate limit, not a refusal: retried as a 429 is.
# ErrorInfo's reason in Cloud APIs' ``details``, and the older ``errors[].reason`` that Drive
# sends for per-user limits (Sheets itself answers a rate limit with 429).
RATE_LIMIT_REASONS = frozenset(
    {"RATE_LIMIT_EXCEEDED", "rateLimitExceeded", "userRateLimitExceeded"}
)
# A 403 (or 429) whose reason is one of these is a quota of the day spent (Drive-style
# ``errors[].reason``): the next run may do, waiting within this one does not.
DAILY_QUOTA_REASONS = frozenset({"dailyLimitExceeded", "quotaExceeded"})
# A per-day quota in an ErrorInfo's metadata: Google sends a day's quota spent with the same
# reason (RATE_LIMIT_EXCEEDED) and status (429 RESOURCE_EXHAUSTED) as a minute's, only its
# ``quota_limit`` ("defaultPerDayPerProject"), ``quota_unit`` ("1/d/{project}") and message
# ("... and limit 'Queries per day' of service ...") tell them apart (recorded answers).
_PER_DAY_LIMIT = re.compile(r"per_?day", re.IGNORECASE)
_PER_DAY_UNIT = re.compile(r"1/d(?:/|$)")
_LIMIT_IN_MESSAGE = re.compile(r"and limit '([A-Za-z0-9 ._/-]{1,80})'")
_PER_DAY_IN_MESSAGE = re.compile(r"\bper day\b", re.IGNORECASE)
# A quota's name as it may be shown: Google's identifiers, nothing else from the answer.
_QUOTA_NAME = re.compile(r"[A-Za-z0-9 ._/{}-]{1,100}")

# The most of an answer that is read, by the kind of request (:func:`request_name`), far above
# the largest Google gives it; :data:`DEFAULT_ANSWER_LIMIT` for every other kind.
SHEETS_MAX_CELLS = 10_000_000  # Google's limit of cells in one spreadsheet, all tabs together
FORMS_MAX_PAGE = 5000  # forms.responses.list's largest pageSize
ANSWER_LIMITS: dict[str, int] = {
    # A tab read may hold every cell a spreadsheet can have. A responses tab's cells are
    # timestamps (a serial: 17 bytes of JSON), ratings, names and ids (tens of bytes) and a
    # comment now and then: 10 million of them are ~300 MB; 100 bytes a cell is 1 GB.
    "values.batchGet": SHEETS_MAX_CELLS * 100,
    # A page of 5000 responses, each of 50 kB (as many answers as a form has questions, or
    # one text as long as a spreadsheet cell can hold, 50,000 characters): 250 MB.
    "forms.responses.list": FORMS_MAX_PAGE * 50_000,
}
# Metadata (with its fields mask: a few kB a tab), the answers to writes (a reply a request,
# a count a range): 64 MB is thousands of times the largest.
DEFAULT_ANSWER_LIMIT = 64 * 1024 * 1024
# The token endpoint's answer: an access token, its type and lifetime (~1 kB).
TOKEN_ANSWER_LIMIT = 1024 * 1024
# A token request left unanswered or refused as transient is asked again at most this many
# times, waiting by this policy (or the session's, when shorter): the token endpoint has no
# per-minute quota, and the session's budget for one (7 retries up to 32 s apart) made an
# unreachable token_uri ~90 s of waiting before the error said so. At most 0.5-1, 1-2 and
# 2-4 s: 7 s of waiting, plus each attempt's connect timeout.
TOKEN_MAX_RETRIES = 3
TOKEN_BACKOFF = Backoff(1.0, 4.0)


def error_reasons(response: requests.Response) -> dict[str, dict[str, Any]]:
    """The machine reasons of a Google error answer, each with its ErrorInfo ``metadata``
    (``{}`` for an ``errors[]`` reason): ``{"SERVICE_DISABLED": {"service": ...}}``. Nothing
    for a body of any other shape."""
    error = _error_of(response)
    if error is None:
        return {}
    found: dict[str, dict[str, Any]] = {}
    for key in ("details", "errors"):
        items = error.get(key)
        for item in items[:20] if isinstance(items, list) else ():
            reason = item.get("reason") if isinstance(item, dict) else None
            if isinstance(reason, str) and reason:
                metadata = item.get("metadata") if key == "details" else None
                found[reason[:64]] = metadata if isinstance(metadata, dict) else {}
    return found


def _error_of(response: requests.Response) -> dict[str, Any] | None:
    """The ``error`` object of a Google error answer's JSON body; None for any other body."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def is_rate_limit(status: int, reasons: Mapping[str, Any]) -> bool:
    """Whether an answer of ``status`` with these :func:`error_reasons` is a 403 rate limit
    (retried as a 429 is), not a refusal."""
    return status == 403 and not RATE_LIMIT_REASONS.isdisjoint(reasons)


def retryable_answer(response: requests.Response) -> bool:
    """Whether the same request may get another answer within the run: a status in
    :data:`RETRYABLE_STATUS`, or a 403 that is a rate limit; not a quota spent for the day
    (:func:`spent_quota`), whatever its status."""
    status = response.status_code
    if status not in RETRYABLE_STATUS and status != 403:
        return False
    quota = spent_quota(response)
    if quota is not None and quota.daily:
        return False
    return status in RETRYABLE_STATUS or is_rate_limit(403, error_reasons(response))


@dataclass(frozen=True)
class SpentQuota:
    """A quota an answer says is spent: its ``name`` as Google gives it (None: not given)
    and whether it is counted by the day (``daily``: back tomorrow, not within the run)."""

    name: str | None
    daily: bool


def spent_quota(response: requests.Response) -> SpentQuota | None:
    """The quota a 429, or a 403 that is a rate limit or a quota, says is spent; None for any
    other answer. Its name is the ErrorInfo's ``quota_limit``, else the limit the message
    names, else the Drive-style reason."""
    status = response.status_code
    if status not in (403, 429):
        return None
    reasons = error_reasons(response)
    quota_reasons = RATE_LIMIT_REASONS | DAILY_QUOTA_REASONS
    if status == 403 and quota_reasons.isdisjoint(reasons):
        return None
    daily = not DAILY_QUOTA_REASONS.isdisjoint(reasons)
    name = None
    for metadata in reasons.values():
        limit, unit = metadata.get("quota_limit"), metadata.get("quota_unit")
        if isinstance(limit, str) and _QUOTA_NAME.fullmatch(limit):
            name = name or limit
            daily = daily or bool(_PER_DAY_LIMIT.search(limit))
        if isinstance(unit, str) and _PER_DAY_UNIT.match(unit):
            daily = True
    error = _error_of(response)
    message = error.get("message") if error is not None else None
    said = _LIMIT_IN_MESSAGE.search(message[:1000]) if isinstance(message, str) else None
    if said is not None:
        name = name or f"'{said.group(1)}'"
        daily = daily or bool(_PER_DAY_IN_MESSAGE.search(said.group(1)))
    if name is None:
        named = sorted(quota_reasons & reasons.keys())
        name = named[0] if named else None
    return SpentQuota(name, daily)


@dataclass
class RequestLog:
    """HTTP requests sent, by kind: sheets_read, sheets_write, forms_read, token; and retries."""

    counts: Counter[str] = field(default_factory=Counter)

    def add(self, kind: str) -> None:
        self.counts[kind] += 1

    def as_dict(self) -> dict[str, int]:
        keys = ("sheets_read", "sheets_write", "forms_read", "token", "retries")
        return {key: self.counts.get(key, 0) for key in keys}


def request_name(method: str, url: str) -> str:
    """The API method a request calls (``values.batchGet``, ``spreadsheets.get``...), as
    errors name it; the method and where for any other request."""
    path = urllib.parse.urlsplit(url).path.rstrip("/")
    if "/v1/forms/" in path and path.endswith("/responses"):
        return "forms.responses.list"
    for suffix, name in (
        ("/values:batchGet", "values.batchGet"),
        ("/values:batchUpdate", "values.batchUpdate"),
        (":batchUpdate", "spreadsheets.batchUpdate"),
    ):
        if path.endswith(suffix):
            return name
    if method.upper() == "GET" and re.search(r"/v4/spreadsheets/[^/:]+$", path):
        return "spreadsheets.get"
    return f"{method.upper()} {_where(url)}"


def request_kind(method: str, url: str) -> str:
    """Which quota bucket a request counts against."""
    path = urllib.parse.urlsplit(url).path
    if "/v1/forms/" in path:
        return "forms_read"
    return "sheets_read" if method.upper() == "GET" else "sheets_write"


def load_credentials(google: GoogleConfig, scopes: list[str]) -> service_account.Credentials:
    """Service-account credentials from ``google.service_account_json`` or ``_file``.

    Raises ConfigError naming the key; never echoes the JSON (it holds the private key).
    """
    if google.service_account_json is not None:
        key = "google.service_account_json"
        try:
            info = json.loads(google.service_account_json.get_secret_value())
        except ValueError as exc:
            raise ConfigError(
                f"{key}: not valid JSON ({type(exc).__name__} at char {getattr(exc, 'pos', '?')})"
            ) from None
    elif google.service_account_file:
        key = "google.service_account_file"
        try:
            info = json.loads(Path(google.service_account_file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(
                f"{key}: cannot read {google.service_account_file}: {exc.strerror}"
            ) from None
        except ValueError:
            raise ConfigError(f"{key}: {google.service_account_file} is not valid JSON") from None
    else:
        # The variable is read only where the file says so: naming it bare sent an operator
        # whose file has no such line to set it, and get this message again.
        raise ConfigError(
            "google.service_account_file or google.service_account_json is required to call "
            "Google (to take the JSON from the environment, write "
            "service_account_json: ${GOOGLE_SERVICE_ACCOUNT_JSON}, as config.example.yaml does)"
        )
    if isinstance(info, dict) and "type" not in info and _OAUTH_CLIENT_KEYS & info.keys():
        # "Create credentials" offers an OAuth client ID first: its JSON has none of a key's
        # fields, and naming them sent the operator looking for fields, not for a key.
        raise ConfigError(
            f"{key}: this is an OAuth client ID's JSON, not a service-account key: create one "
            "in Google Cloud console → IAM & Admin → Service accounts → (the account) → Keys → "
            "Add key → JSON"
        )
    if not isinstance(info, dict) or info.get("type", "service_account") != "service_account":
        raise ConfigError(f'{key}: expected a service-account key ("type": "service_account")')
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise ConfigError(f"{key}: the service-account JSON lacks {', '.join(missing)}")
    # Parsing the private key is ≈ 40 ms of CPU, a tenth of a later sync's budget: a runner
    # that lives across runs parses each key once. Each run still gets its own credentials
    # (no token carried over: a copy made by with_scopes), from the key as it reads now.
    cache_key = (json.dumps(info, sort_keys=True), tuple(scopes))
    parsed = _PARSED_KEYS.get(cache_key)
    if parsed is None:
        try:
            parsed = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=scopes
            )
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{key}: unusable private key ({type(exc).__name__})") from None
        _PARSED_KEYS.clear()  # one key in use at a time: no other is kept
        _PARSED_KEYS[cache_key] = parsed
    credentials: service_account.Credentials = parsed.with_scopes(scopes)
    return credentials


# The one key of an OAuth client ID's JSON (a desktop or a web application's).
_OAUTH_CLIENT_KEYS = frozenset({"installed", "web"})

# The credentials made from the last service-account key parsed (its JSON and the scopes).
_PARSED_KEYS: dict[tuple[str, tuple[str, ...]], service_account.Credentials] = {}


class _TokenRequest(GoogleAuthRequest):
    """google-auth's transport for the token endpoint, with our timeout and counting."""

    def __init__(self, timeout: tuple[float, float], log: RequestLog) -> None:
        session = requests.Session()
        session.mount("https://", DeadlineAdapter())  # as GoogleSession's requests
        session.mount("http://", DeadlineAdapter())
        super().__init__(session=session)
        self._timeout = timeout
        self._log = log
        self.url: str | None = None  # the token endpoint last asked, for the errors

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: Any = None,
        **kwargs: Any,
    ) -> Any:
        self._log.add("token")
        self.url = url
        # Read up to its limit, as every Google answer (GoogleSession.request); a larger one
        # fails the refresh as a transport error (google-auth wraps requests' errors).
        hooks = {"response": [answer_reader(self._timeout, limit=TOKEN_ANSWER_LIMIT)]}
        return super().__call__(
            url,
            method=method,
            body=body,  # type: ignore[no-untyped-call]
            headers=headers,
            timeout=self._timeout,
            hooks=hooks,
            **kwargs,
        )


class UnansweredError(GoogleApiError):
    """A request was sent and no answer came (a timeout, the connection dropped, the body
    cut off): Google may have applied it."""


# A 5xx answer does not say whether the work was done: Google may have applied a write and
# then failed (or a proxy timed out waiting for it). 408 and 429 say it was not. 503 is here
# too, unlike the helpdesks' transport (whose vendors document 503 as "not processed"):
# Google's UNAVAILABLE is documented as not always safe to retry for a call that is not
# idempotent, and a structure write planned again costs one metadata read.
UNKNOWN_OUTCOME_STATUS = frozenset(status for status in RETRYABLE_STATUS if status >= 500)


class GoogleSession(requests.Session):
    """Rewrites Google origins, authorises, times out, retries (bounded) and counts."""

    def __init__(
        self,
        *,
        credentials: service_account.Credentials | None,
        bases: Mapping[str, str],
        timeout: tuple[float, float],
        max_retries: int,
        backoff_base: float,
        backoff_cap: float,
        log: RequestLog | None = None,
        sleep: Callable[[float], None] = time.sleep,
        credentials_key: str | None = None,
    ) -> None:
        super().__init__()
        # Every exchange within connect plus read timeout from its start: the read timeout
        # bounds each wait only, and an answer dripped a byte at a time held the run forever.
        self.mount("https://", DeadlineAdapter())
        self.mount("http://", DeadlineAdapter())
        self.credentials = credentials
        self.bases = {origin.rstrip("/"): base.rstrip("/") for origin, base in bases.items()}
        self.default_timeout = timeout
        self.max_retries = max_retries
        self.backoff = Backoff(backoff_base, backoff_cap, max_retry_after=max(backoff_cap, 1.0))
        # The token endpoint has no per-minute quota to outlast: its own, shorter budget.
        self.token_retries = min(max_retries, TOKEN_MAX_RETRIES)
        self.token_backoff = Backoff(
            min(backoff_base, TOKEN_BACKOFF.base), min(backoff_cap, TOKEN_BACKOFF.cap)
        )
        # Where the token_uri is set (google.service_account_file or _json), for the errors.
        self.credentials_key = credentials_key
        self.log = log if log is not None else RequestLog()
        self.sleep = sleep
        self.attempts = 0
        self._token_request = _TokenRequest(timeout, self.log)

    def rewrite(self, url: str) -> str:
        """The configured base in place of a canonical Google origin."""
        for origin, base in self.bases.items():
            if url.startswith(origin + "/") or url == origin:
                return base + url[len(origin) :]
        return url

    def request(
        self,
        method: str | bytes,
        url: str | bytes,
        *args: Any,
        repeat: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        """``repeat=False``: a request whose answer is lost is not sent again (a write that
        is not safe to apply twice): no answer raises :class:`UnansweredError` at once, a 5xx
        is returned as it came. 408, 429 and rate limits (not applied) are retried."""
        # The signature is Session.request's, loosely typed: gspread calls it positionally.
        method = method.decode() if isinstance(method, bytes) else method
        url = self.rewrite(url.decode() if isinstance(url, bytes) else url)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.default_timeout
        kind = request_kind(method, url)
        name = request_name(method, url)
        limit = ANSWER_LIMITS.get(name, DEFAULT_ANSWER_LIMIT)
        headers = dict(kwargs.pop("headers", None) or {})
        given = (kwargs.pop("hooks", None) or {}).get("response") or []
        given = given if isinstance(given, list) else [given]
        attempt, refreshed = 0, False
        rewind = getattr(kwargs.get("data"), "seek", None)
        while True:
            self._authorize(headers, force=False)
            self.log.add(kind)
            if rewind is not None:
                rewind(0)  # a streamed body (api.JoinedBody) is sent whole on every attempt
            # The answer is read in the first hook, up to its kind's limit (the time is the
            # DeadlineAdapter's): requests would read it all, however large.
            hooks = {"response": [answer_reader(kwargs["timeout"], limit=limit), *given]}
            try:
                response = super().request(
                    method,
                    url,
                    *args,
                    headers=headers,  # type: ignore[misc]
                    hooks=hooks,
                    **kwargs,
                )
            except AnswerTooLarge as exc:
                # Not asked again: the same request gets the same answer. A write's answer
                # came after Google applied it (a 2xx): nothing is lost by not reading it.
                self.attempts = attempt + 1
                raise GoogleApiError(
                    f"{name}: HTTP {exc.status}, the answer is larger than {exc.limit} bytes "
                    "(more than any answer Google gives it: a proxy or a fake in between?)",
                    http_status=exc.status,
                ) from exc
            except _NO_ANSWER as exc:
                # Sent again unless told not to: a value write overwrites its ranges, and a
                # read is a read; a structure change is sent with repeat=False and planned
                # again from what is there (api.update_structure, outputs/sheets.py), unless
                # it never left (no connection): then nothing can have been applied.
                sent = not never_sent(exc)
                if attempt >= self.max_retries or (sent and not repeat):
                    self.attempts = attempt + 1
                    what = _no_answer(exc)
                    tries = f" after {attempt + 1} attempts" if repeat or not sent else ""
                    unanswered = UnansweredError if sent else GoogleApiError
                    raise unanswered(
                        f"{method} {_where(url)}: {what}{tries}", retryable=True
                    ) from exc
                self._backoff(attempt, None)
                attempt += 1
                continue
            if response.status_code == 401 and self.credentials is not None and not refreshed:
                # The token was revoked or expired early: fetch a new one, once.
                response.close()
                refreshed = True
                self._authorize(headers, force=True)
                continue
            unknown = not repeat and response.status_code in UNKNOWN_OUTCOME_STATUS
            if attempt < self.max_retries and retryable_answer(response) and not unknown:
                retry_after = asked_wait(response)
                response.close()
                logger.warning(
                    "google.retry",
                    extra={
                        "http_status": response.status_code,
                        "attempt": attempt + 1,
                        "path": _where(url),
                    },
                )
                self._backoff(attempt, retry_after)
                attempt += 1
                continue
            self.attempts = attempt + 1
            return response

    def _authorize(self, headers: dict[str, str], *, force: bool) -> None:
        credentials = self.credentials
        if credentials is None:
            return
        attempt = 0
        while force or not credentials.valid:
            try:
                credentials.refresh(self._token_request)  # type: ignore[no-untyped-call]
                break
            except (google.auth.exceptions.GoogleAuthError, *_TOKEN_ANSWER_ERRORS) as exc:
                # A token request is safe to repeat: one left unanswered (google-auth retries
                # only the 5xx answers it reads) or refused as transient is asked again by
                # the session's policy; a refusal (invalid_grant) gets the same answer again.
                unanswered = _token_unanswered(exc)
                transient = unanswered is not None or getattr(exc, "retryable", False) is True
                if transient and attempt < self.token_retries:
                    self.log.add("retries")
                    self.sleep(self.token_backoff.delay(attempt + 1))
                    attempt += 1
                    continue
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise GoogleApiError(
                    f"could not get an access token from {self._token_endpoint()}: "
                    f"{unanswered or _auth_reason(exc)}{tries}",
                    retryable=transient,
                ) from exc
        credentials.apply(headers)  # type: ignore[no-untyped-call]

    def _token_endpoint(self) -> str:
        """The token endpoint as errors name it: its URL (no user or query: a proxy's may
        hold a secret) and the key that sets it."""
        url = self._token_request.url or getattr(self.credentials, "_token_uri", None)
        where = "the token_uri"
        if self.credentials_key is not None:
            where += f" in {self.credentials_key}"
        else:
            where += " of the service-account JSON"
        if not isinstance(url, str):
            return where
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        return f"{parts.scheme}://{host}{parts.path} ({where})"

    def pause(self, attempt: int, retry_after: float | None = None) -> None:
        """Wait as before the retry ``attempt`` (0 the first), counted as a retry: for a
        caller that tries again itself (a request sent with ``repeat=False``). ``retry_after``:
        what the answer asked for (:func:`asked_wait`), honoured as the session's own retries
        honour it (at least that long, capped)."""
        self._backoff(attempt, retry_after)

    def _backoff(self, attempt: int, retry_after: float | None) -> None:
        self.log.add("retries")
        self.sleep(self.backoff.delay(attempt + 1, retry_after))


def asked_wait(response: requests.Response) -> float | None:
    """How long the answer asks to wait at least: the longer of a ``Retry-After`` header and
    a ``google.rpc.RetryInfo`` ``retryDelay`` in the error's body (None: neither said)."""
    # Sheets sends no Retry-After on 429 (measured); honour it when a proxy adds one, by the
    # one rule (csat_hook.retry): delta-seconds or an HTTP date, nothing else. float() read
    # "-5" and "nan" as "now" (every retry of a quota minute spent within a second) and
    # "1e12" as the longest wait. Each says "not before": the later one counts.
    return longest_wait(
        (parse_retry_after(response.headers.get("Retry-After")), retry_delay(response))
    )


RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"


def retry_delay(response: requests.Response) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` in a Google error's ``details`` (its
    ``retryDelay``, a Duration's JSON such as ``"30s"``: :func:`~csat_hook.retry.
    parse_duration`); None when there is none or it is not a Duration. Google documents it as
    the least to wait before trying the same request again."""
    error = _error_of(response)
    details = error.get("details") if error is not None else None
    for item in details[:20] if isinstance(details, list) else ():
        if isinstance(item, dict) and item.get("@type") == RETRY_INFO_TYPE:
            return parse_duration(item.get("retryDelay"))
    return None


# No answer to read: the connection failed or dropped, a timeout or the request's deadline
# passed (a body dripped past it surfaces as a ConnectionError around urllib3's
# ReadTimeoutError), or the body broke off or could not be decoded.
_NO_ANSWER = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


def _no_answer(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout) or (
        exc.args and isinstance(exc.args[0], urllib3.exceptions.ReadTimeoutError)
    ):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return "answer cut off"


def _where(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    # The path only: queries can carry ranges (tab names) and filters; no need to log them.
    return parts.netloc + parts.path.split("/values")[0]


# What google-auth lets through from a token answer it cannot use, besides GoogleAuthError: a
# 200 whose body is not JSON or not an object (ValueError, TypeError, AttributeError), an
# ``expires_in`` that is not a number or too large for a date (TypeError, ValueError,
# OverflowError), a missing field (KeyError). The token_uri is the service account's: its
# answer must make a Google API error, not a crashed sync.
_TOKEN_ANSWER_ERRORS = (ValueError, TypeError, OverflowError, KeyError, AttributeError)


def _token_unanswered(exc: Exception) -> str | None:
    """What became of a token request that got no answer (:func:`_no_answer`: google-auth
    wraps requests' failure in a TransportError); None when an answer came (one too large
    is an answer: asked again, it is as large)."""
    cause = exc.__cause__
    if not isinstance(exc, google.auth.exceptions.TransportError):
        return None
    if not isinstance(cause, _NO_ANSWER) or isinstance(cause, AnswerTooLarge):
        return None
    return _no_answer(cause)


def _auth_reason(exc: Exception) -> str:
    if not isinstance(exc, google.auth.exceptions.GoogleAuthError):
        return f"the token answer could not be read ({type(exc).__name__})"
    first = exc.args[0] if exc.args else type(exc).__name__
    return (str(first).splitlines() or [""])[0][:200]


def build_session(
    google: GoogleConfig,
    scopes: list[str],
    *,
    log: RequestLog | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> GoogleSession:
    """A session authorised with the configured service account."""
    return GoogleSession(
        credentials=load_credentials(google, scopes),
        bases={
            GOOGLE_SHEETS_BASE_URL: google.sheets_base_url,
            GOOGLE_FORMS_BASE_URL: google.forms_base_url,
        },
        timeout=(google.connect_timeout_seconds, google.read_timeout_seconds),
        max_retries=google.max_retries,
        backoff_base=google.backoff_base_seconds,
        backoff_cap=google.backoff_cap_seconds,
        log=log,
        sleep=sleep,
        credentials_key=(
            "google.service_account_file"
            if google.service_account_file
            else "google.service_account_json"
        ),
    )


def service_account_email(session: GoogleSession) -> str | None:
    credentials = session.credentials
    return getattr(credentials, "service_account_email", None) if credentials else None
