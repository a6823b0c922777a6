"""The one outbound HTTP boundary.

Every call to a helpdesk goes through :class:`HttpClient`, which always sets a timeout and
turns ``requests`` failures into :class:`~csat_hook.errors.DeliveryError` exactly once:
the statuses in :data:`RETRYABLE_STATUS` (and other 5xx but 501/505), timeouts and
connection errors are retryable; other 4xx are permanent. Retries of a reply are the
outbox's job (bounded by ``delivery.max_attempts``); ``retries=`` here is only for idempotent
reads such as agent look-ups.

A failure without an answer is classified by whether the request can have reached the
vendor (:func:`never_sent`). Connecting failed (refused, DNS, connect timeout, the proxy, a
certificate, any failure of the TLS handshake; a SOCKS proxy without PySocks, the variable
named), or the request's time ran out before its header section had all been written: the
request was not sent, a plain retryable error. Anything after that (a read timeout, a body the
vendor took too slowly to send within the request's time, the connection dropped or reset
while we waited, a truncated or undecodable body, a pooled keep-alive connection that turned
out to be closed): the vendor may have acted on it, so the error says ``outcome_unknown``
and the caller looks before sending again (a body that
breaks off after a refusal's status line leaves the refusal as it is). The answer
is read within the request's time (connect plus read timeout from its start, however slowly a
vendor trickles it: the status line and headers by :class:`LeanSession`'s connections, see
:mod:`csat_hook.helpdesks.deadline`, the body by a response hook) and up to
:data:`MAX_ANSWER_BYTES` (a refusal's up to :data:`MAX_REFUSAL_BYTES`, all a reason needs): an
answer that does not fit is, like one cut off, unknown for a write and a retryable error for
a read. An HTTP answer is the vendor's
word, but for a failure that may come after the work was done (:func:`unknown_if_written`:
500, a bad gateway, a gateway's timeout, any server error not known to mean "not
processed") to a request that may change something: the API may
have stored the reply and then failed, or a proxy in front of it may have forwarded the
request and then stopped waiting or got no valid answer, so the outcome is unknown, as at our
own read timeout. A read answered so is a plain retryable error, and so is a write answered
with a status that says it was not processed (503, 429, 408, 425, 409).

:meth:`HttpClient.guarded` lets a caller refuse, on its thread, every request that may change
something once it can no longer be sure it owns the work (the delivery worker's fence).

Error messages name the method, host and status (with the status line's phrase only when it
is one of HTTP's own), never the URL's query (it can hold a token) nor the response body (it
can echo customer text). A caller that knows the vendor's error shape
passes ``explain``: what it returns (codes, field names, short messages, cleaned of customer
text by :mod:`csat_hook.helpdesks.reasons`) ends the message and is kept as ``vendor_reason``.
A vendor's reason (or reason phrase) that quotes a credential the request carried (a token
from a header, the query, the URL's path or user part) is left out whole
(:func:`vendor_reason`): a broken or hostile API that echoes the request back must not put
the token into ``last_error`` and the logs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import requests
import urllib3.exceptions

from csat_hook import __version__
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.deadline import FenceClosedError
from csat_hook.helpdesks.deadline import SendTimeoutError
from csat_hook.helpdesks.deadline import guarding
from csat_hook.helpdesks.deadline import raised_unsent
from csat_hook.helpdesks.http_session import LeanSession
from csat_hook.helpdesks.http_session import socks_proxies_without_pysocks
from csat_hook.helpdesks.payload import DOT_SEGMENTS
from csat_hook.retry import Backoff
from csat_hook.retry import longest_wait
from csat_hook.retry import parse_retry_after

# Statuses worth trying again at a helpdesk API, and why. Any other 4xx is permanent: the
# request itself is wrong and will be refused again. A write answered with one of
# :func:`unknown_if_written` may have been stored: it is looked up before it is sent again.
RETRYABLE_STATUS: dict[int, str] = {
    408: "Request Timeout: the server gave up waiting for the request",
    409: "Conflict: Zendesk answers it when two updates of one ticket race; a retry succeeds",
    425: "Too Early: the server refuses a request that might be replayed; later it accepts",
    429: "Too Many Requests: rate limited; Retry-After (or X-RateLimit-Reset) says when",
    500: "Internal Server Error: a fault at the vendor, perhaps after it stored a write",
    502: "Bad Gateway: a proxy got no valid answer from the API, perhaps after it stored one",
    503: "Service Unavailable: overloaded or in maintenance, not processed; often Retry-After",
    504: "Gateway Timeout: a proxy stopped waiting for the API, which had the request",
}
# Server errors that say the request was not processed: 503, 506-511 (negotiation, storage, a
# loop, a bandwidth limit, a captive portal's 511), Cloudflare's 521-523 and 525-526 (the
# origin never reached: down, unreachable, its TLS refused) and 529-530 (overload, a
# Cloudflare error page before the origin), and a proxy's 599 (its connection to the API timed
# out): plain retries, as the 4xx retried. Every other server error retried can come after the
# API acted on the request (:func:`unknown_if_written`).
NOT_PROCESSED_5XX = frozenset(
    {503, 506, 507, 508, 509, 510, 511, 521, 522, 523, 525, 526, 529, 530, 599}
)


# 303 See Other answers a request the server acted on with where to read its result (RFC
# 9110 15.4.4: "the output of a POST action"). Failed for good as any redirect, a reply in
# the dialog was shown failed, never looked up, and ``outbox retry`` posted it again. The
# other redirects (301, 302, 307, 308: moved, or "repeat it there") act on nothing.
SEE_OTHER = 303


def unknown_if_written(status: int) -> bool:
    """Whether a write answered ``status`` may have been acted on: 303 See Other
    (:data:`SEE_OTHER`), or a server error retried and not one of :data:`NOT_PROCESSED_5XX`.
    The API's own 500 (a fault after the commit: rendering the answer, a hook, a replica), a
    proxy's 502 (it forwarded the request and got no valid answer: the API may have crashed,
    or closed the connection, after storing it), a proxy's timeout, 504 and Cloudflare's 524
    ("A timeout occurred": the origin took the request and answered nothing in 100 s),
    Cloudflare's 520 (the origin's answer was empty or unreadable), and any server error no
    one documents as "not processed" (a proxy's 598 network read timeout, a 560, a status
    past 599 that no standard defines). For a write, the outcome is unknown (see the module
    docstring)."""
    if status == SEE_OTHER:
        return True
    return status >= 500 and is_retryable_status(status) and status not in NOT_PROCESSED_5XX


# The most of a 2xx answer that is read: a reply's answer is a few kilobytes, a look-up's
# page of messages a few megabytes. A refusal is read only as far as its reason needs.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
MAX_REFUSAL_BYTES = 64 * 1024 + 1  # one more than reasons.MAX_ERROR_BODY: "too big" shows
_CHUNK = 64 * 1024
# In-place retries of idempotent reads (agent look-ups): short, as a reply waits on them.
READ_BACKOFF = Backoff(base=1.0, cap=8.0, max_retry_after=30.0)
USER_AGENT = f"csat-hook/{__version__} (+https://github.com/csat-hook)"
# Reads a refused response into the vendor's reason, without customer text (see the module).
Explain = Callable[[requests.Response], str | None]
# Whether a refusal is the API's own word that it did not act on the request (an error code in
# its own shape, not a proxy's page): such an answer to a write is never an unknown outcome.
Refused = Callable[[requests.Response], bool]
# Methods that change nothing at the vendor: never refused by a guard.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Failures that happen before a byte of the request can have left: the connection (or the
# proxy's, or the TLS handshake's certificate check) failed, or the request could not even be
# prepared. urllib3's NewConnectionError and NameResolutionError derive from
# ConnectTimeoutError.
_NOT_SENT: tuple[type[BaseException], ...] = (
    urllib3.exceptions.ConnectTimeoutError,
    urllib3.exceptions.ProxyError,
    urllib3.exceptions.ClosedPoolError,
    urllib3.exceptions.EmptyPoolError,
    urllib3.exceptions.LocationValueError,
    ssl.SSLCertVerificationError,
    requests.ConnectTimeout,
    requests.exceptions.ProxyError,
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidJSONError,
)


def never_sent(exc: BaseException) -> bool:
    """True when ``exc`` (a requests/urllib3 failure) proves the request was not sent.

    Walks the chain requests builds (``ConnectionError(MaxRetryError(reason=...))``, causes
    and contexts). Anything it cannot prove, it reports as possibly sent.
    """
    chain = _chain(exc)
    # urllib3 raises InvalidHeader only for an answer's headers (requests' InvalidHeader,
    # not sent, is also a request header it refuses to send): the request went out.
    if any(isinstance(item, urllib3.exceptions.InvalidHeader) for item in chain):
        return False
    return any(isinstance(item, _NOT_SENT) or raised_unsent(item) for item in chain)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception it wraps (reasons, causes, contexts, arguments)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    chain: list[BaseException] = []
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        chain.append(current)
        reason = getattr(current, "reason", None)
        linked = [reason, current.__cause__, current.__context__, *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return chain


def _closed(where: str) -> DeliveryError:
    """A write the sender's guard refused (``HttpClient.guarded``): nothing sent, retried."""
    return DeliveryError(
        f"{where}: not sent: this worker can no longer be sure it owns the reply", retryable=True
    )


def is_retryable_status(status: int) -> bool:
    """True for the statuses in :data:`RETRYABLE_STATUS` and any other 5xx but 501.

    501 Not Implemented and 505 HTTP Version Not Supported say the request can never work.
    """
    return status in RETRYABLE_STATUS or (status >= 500 and status not in (501, 505))


class HttpClient:
    """Timeouts, connection reuse and error translation for outbound calls."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        session_factory: Callable[[], requests.Session] = LeanSession,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.timeout = (connect_timeout, read_timeout)
        self._session_factory = session_factory
        self._local = threading.local()
        self._sleep = sleep

    @contextlib.contextmanager
    def guarded(self, may_write: Callable[[], bool]) -> Iterator[None]:
        """Within the block, on this thread, send a request that may change something (any
        method but GET, HEAD, OPTIONS) only while ``may_write()`` is True; otherwise raise a
        retryable DeliveryError without sending. Checked right before each such request."""
        previous = getattr(self._local, "guard", None)
        self._local.guard = may_write
        try:
            yield
        finally:
            self._local.guard = previous

    def start_write(self, where: str) -> None:
        """Before a request that may change something (or another write standing for one:
        the dry run's output file): raise a retryable DeliveryError, nothing written, when
        this thread's guard (:meth:`guarded`) says the worker may no longer write; otherwise
        count it in :meth:`writes_started`."""
        guard: Callable[[], bool] | None = getattr(self._local, "guard", None)
        if guard is not None and not guard():
            raise _closed(where)
        self._local.writes = self.writes_started() + 1

    def writes_started(self) -> int:
        """How many requests that may change something (any method but GET, HEAD, OPTIONS)
        this thread has handed to the network so far, answered or not. Unchanged across a
        call means that call cannot have changed anything at a vendor (what an unexpected
        error in it is then: outbox/results.py)."""
        return int(getattr(self._local, "writes", 0))

    @property
    def session(self) -> requests.Session:
        # One session per thread: requests does not promise Session is thread-safe.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            session.headers["User-Agent"] = USER_AGENT
            self._local.session = session
        return session

    def request(
        self,
        method: str,
        url: str,
        *,
        retries: int = 0,
        retry_after_headers: Iterable[str] = ("Retry-After",),
        explain: Explain | None = None,
        refused: Refused | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send one request; return the 2xx response or raise DeliveryError.

        ``retries`` > 0 retries retryable failures in place with capped, jittered backoff
        (for idempotent reads only; never set it for a reply). ``explain`` reads a refusal's
        body into the vendor's reason (see the module docstring); it must not raise, and a
        failure in it only loses the reason. ``refused`` says whether an answer that may come
        after the work was done (:func:`unknown_if_written`) is the API's own refusal (Slack's
        error code, Telegram's ``ok: false``): then it is a plain failure, not an unknown
        outcome; it must not raise either.
        """
        if has_dot_segment(url):
            raise DeliveryError(
                f"{method} {_host(url)}: not sent: the URL's path has a '.' or '..' segment "
                "(an id no URL path can carry), which sends the request to another path",
                retryable=False,
            )
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        attempt = 0
        while True:
            try:
                return self._send_once(
                    method, url, tuple(retry_after_headers), explain, refused, kwargs
                )
            except DeliveryError as exc:
                # A missing PySocks is retried by the outbox, not here: this process fails
                # the same way until it is restarted with PySocks (or another proxy).
                if not exc.retryable or attempt >= retries or _pysocks_missing(exc.__cause__):
                    raise
                attempt += 1
                self._sleep(READ_BACKOFF.delay(attempt, exc.retry_after))

    def _send_once(
        self,
        method: str,
        url: str,
        retry_after_headers: tuple[str, ...],
        explain: Explain | None,
        refused: Refused | None,
        kwargs: dict[str, Any],
    ) -> requests.Response:
        where = f"{method} {_host(url)}"
        if method.upper() not in SAFE_METHODS:
            self.start_write(where)
        write = method.upper() not in SAFE_METHODS
        guard: Callable[[], bool] | None = getattr(self._local, "guard", None) if write else None
        read_answer = answer_reader(kwargs["timeout"], limit=MAX_ANSWER_BYTES)
        if kwargs.get("headers"):
            kwargs = {**kwargs, "headers": wire_headers(kwargs["headers"])}
        hooks = dict(kwargs.get("hooks") or {})
        given = hooks.get("response") or []
        hooks["response"] = [*(given if isinstance(given, list) else [given]), read_answer]
        if not kwargs["allow_redirects"]:
            hooks["response"].append(_unfollowed)
        try:
            if guard is None:
                response = self.session.request(method, url, **{**kwargs, "hooks": hooks})
            else:  # asked again right before the first byte leaves (deadline.guarding)
                with guarding(guard):
                    response = self.session.request(method, url, **{**kwargs, "hooks": hooks})
        except AnswerTooLarge as exc:
            raise DeliveryError(
                f"{where}: answer larger than {exc.limit} bytes"
                + (" (outcome unknown)" if write else ""),
                retryable=True,
                outcome_unknown=write,
            ) from exc
        except FenceClosedError as exc:  # urllib3 wraps it (below); not if that changes
            raise _closed(where) from exc
        except requests.RequestException as exc:
            if any(isinstance(item, FenceClosedError) for item in _chain(exc)):
                raise _closed(where) from exc
            raise _classify(where, exc) from exc
        if 200 <= response.status_code < 300:
            return response
        status = response.status_code
        # Each header says "not before": the latest of them counts (a proxy's "Retry-After: 0"
        # beside Intercom's reset must not hide the reset).
        retry_after = longest_wait(
            parse_retry_after(response.headers.get(header)) for header in retry_after_headers
        )
        reason = vendor_reason(explain, response)
        unknown = write and unknown_if_written(status) and not _said(refused, response)
        response.close()
        phrase = _phrase(response.reason)
        if quotes_secret(phrase, request_secrets(response.request)):
            phrase = ""
        message = f"{where}: HTTP {status} {phrase}".rstrip()
        if unknown:
            message += " (outcome unknown)"
        target = getattr(response, _REDIRECT_TARGET, None)
        if target is not None:
            # Never followed (the request's credentials would go to wherever it points):
            # the operator learns where the API went, and can point base_url there.
            message += f" (a redirect to {target}, not followed)"
        raise DeliveryError(
            f"{message}: {reason}" if reason else message,
            # An unknown outcome is settled by a later attempt (a look-up first), never
            # failed for good: a 303's is retried as a 5xx's is.
            retryable=is_retryable_status(status) or unknown,
            http_status=status,
            retry_after=retry_after,
            vendor_reason=reason,
            outcome_unknown=unknown,
        )


def wire_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """``headers`` with each text value outside ASCII as its UTF-8 bytes (written as the
    Latin-1 text http.client encodes back to those bytes).

    A generic adapter's header template may be filled with any value of a payload (an agent's
    name, a context value). http.client encodes header text as Latin-1: a character outside
    it raised UnicodeEncodeError out of the request, before a byte left, which delivery took
    for an unknown outcome (looked up and posted again, failing the same way every time); one
    inside it went out as Latin-1, while intake reads a header as the UTF-8 a sender wrote
    (``signing.header_bytes``). Every value goes out as UTF-8; CR, LF and NUL stay refused
    (requests' InvalidHeader: not sent).
    """
    return {
        name: value.encode("utf-8").decode("latin-1")
        if isinstance(value, str) and not value.isascii()
        else value
        for name, value in headers.items()
    }


# Where an unfollowed redirect pointed (its scheme and host), kept on the response.
_REDIRECT_TARGET = "_csat_redirect_target"


def _unfollowed(response: requests.Response, **_: Any) -> None:
    """A response hook for a request whose redirects are not followed: the answer keeps no
    ``Location``. requests still parses it (into ``response.next``, which nothing reads), and
    one it cannot parse (``http://[::1``) raised ValueError out of a request the vendor had
    answered: taken for an unknown outcome, a reply was posted again at every attempt. The
    target's scheme and host are kept for the error (:func:`redirect_target`)."""
    if response.is_redirect:
        setattr(response, _REDIRECT_TARGET, redirect_target(response.headers["Location"]))
        del response.headers["Location"]


def redirect_target(location: str) -> str | None:
    """A redirect's ``Location`` as the operator may read it: its scheme and host (with a
    port), never its user, path or query (a token may ride there); None for a relative or
    unreadable one, or one whose host is not plain ASCII letters, digits, dots, dashes and
    an IPv6 literal's brackets and colons."""
    try:
        parts = urllib.parse.urlsplit(location.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    if not re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", host):
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{shown}" + (f":{port}" if port is not None else "")


def _said(refused: Refused | None, response: requests.Response) -> bool:
    """Whether ``refused`` reads ``response`` as the API's own refusal; a failure in it reads
    as not (the answer stays an unknown outcome: never a blind resend)."""
    if refused is None:
        return False
    try:
        return refused(response)
    except Exception:
        return False


class AnswerTooLarge(requests.RequestException):
    """A 2xx answer longer than its limit (:func:`answer_reader`): not read further.
    ``status`` is its HTTP status, ``limit`` the bytes it could have had."""

    def __init__(self, status: int, limit: int) -> None:
        super().__init__(f"HTTP {status}: more than {limit} bytes")
        self.status = status
        self.limit = limit


def answer_reader(
    timeout: Any, *, limit: int, refusal_limit: int = MAX_REFUSAL_BYTES
) -> Callable[..., None]:
    """A ``requests`` response hook that reads the answer at once, within the request's time
    from now (``timeout``'s connect plus read) and up to ``limit`` bytes, ``refusal_limit``
    for an answer that is not 2xx (see the module docstring): a 2xx over its limit raises
    :class:`AnswerTooLarge` out of the request, its connection closed unread. Made right
    before each request is sent."""
    connect, read = _timeouts(timeout)
    deadline = time.monotonic() + connect + read

    def read_answer(response: requests.Response, **_: Any) -> None:
        _read_answer(response, deadline, read, limit, refusal_limit)

    return read_answer


def _timeouts(timeout: Any) -> tuple[float, float]:
    """(connect, read) seconds from a requests ``timeout`` (a pair or one number)."""
    if isinstance(timeout, tuple):
        return float(timeout[0]), float(timeout[1])
    return float(timeout), float(timeout)


def _read_answer(
    response: requests.Response,
    deadline: float,
    read_timeout: float,
    answer_limit: int,
    refusal_limit: int,
) -> None:
    """Read ``response``'s body now (a response hook: requests then finds it read), by
    ``deadline`` (``time.monotonic``) however slowly it comes, and up to its size limit (see
    the module docstring: ``answer_limit`` for a 2xx, ``refusal_limit`` else). Each wait for
    the network is at most ``read_timeout`` and never past the deadline. Failures are
    requests' own, as ``Response.content`` raises them, but a refusal whose body is slow to
    come, cut off or undecodable keeps what came: its status line, already read, is the
    vendor's answer."""
    ok = 200 <= response.status_code < 300
    limit = answer_limit if ok else refusal_limit
    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    # One buffer grown in place, its bytes handed over by getvalue (no copy): chunks joined at
    # the end held the body twice, 26 MB for the sync's 13 MB read of 100,000 rows.
    body = io.BytesIO()
    size = 0
    try:
        while size <= limit:
            left = deadline - time.monotonic()
            if left <= 0:
                raise urllib3.exceptions.ReadTimeoutError(
                    None,  # type: ignore[arg-type]
                    response.url,
                    "the answer did not arrive within the request's time",
                )
            if sock is not None:
                sock.settimeout(min(read_timeout, left))
            chunk = raw.read1(min(_CHUNK, limit + 1 - size), decode_content=True)
            if not chunk:
                break
            body.write(chunk)
            size += len(chunk)
    except urllib3.exceptions.HTTPError as exc:
        response.close()  # the rest of the answer is never read: the connection goes
        if ok:
            raise _as_requests_error(exc) from exc
        # A refusal's status is its word (a 404 read as an unknown outcome was recorded as
        # sent, unconfirmed, by a destination that skips those); its reason is what came.
    if ok and size > limit:
        response.close()
        raise AnswerTooLarge(response.status_code, limit)
    if size > limit:
        # A refusal's rest is never read: its connection cannot serve another request, and
        # a caller that never closes the response (the Google session) left it open.
        response.close()
    content = body.getvalue()
    response._content = content if size <= limit else content[:limit]
    response._content_consumed = True  # type: ignore[attr-defined]


def _as_requests_error(exc: urllib3.exceptions.HTTPError) -> requests.RequestException:
    """What requests' ``Response.content`` raises for ``exc`` (``iter_content``'s mapping)."""
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return requests.exceptions.ChunkedEncodingError(exc)
    if isinstance(exc, urllib3.exceptions.DecodeError):
        return requests.exceptions.ContentDecodingError(exc)
    if isinstance(exc, urllib3.exceptions.SSLError):
        return requests.exceptions.SSLError(exc)
    return requests.ConnectionError(exc)  # ReadTimeoutError, as requests raises it


# The status line's reason phrase ("Service Unavailable") is the vendor's free text, and the
# error is logged and stored: kept only when it is one of HTTP's own phrases (any letter
# case), since a vendor or a proxy may put there what it was sent (the reply's text, the
# people's names, the survey link), which no check of ours can tell from prose.
_STANDARD_PHRASES = frozenset(
    phrase.casefold()
    for status in HTTPStatus
    for phrase in (status.phrase, status.name.replace("_", " "))
) | {"unprocessable content", "content too large", "request timeout"}


def _phrase(reason: str | None) -> str:
    text = " ".join((reason or "")[:60].split())
    return text if text.casefold() in _STANDARD_PHRASES and text.isascii() else ""


def vendor_reason(explain: Explain | None, response: requests.Response) -> str | None:
    """What ``explain`` reads from ``response``; None when it reads nothing, fails, or
    quotes a credential of the request (:func:`request_secrets`)."""
    if explain is None:
        return None
    try:
        reason = explain(response) or None
    except Exception:  # a reason is a courtesy; the HTTP error must still surface
        return None
    if reason and quotes_secret(reason, request_secrets(response.request)):
        return None
    return reason


# A credential is looked for in a vendor's text by runs of this many characters: a reason
# clipped in the middle of an echoed token still holds one.
SECRET_RUN = 12
# Headers that carry nothing secret (requests' and ours); every other header value may.
_PLAIN_HEADERS = frozenset(
    {"user-agent", "accept", "accept-encoding", "connection", "content-type", "content-length"}
)


_PLAIN_WORD = re.compile(r"[a-z._-]*")


def request_secrets(request: requests.PreparedRequest | None) -> list[str]:
    """Every value of ``request`` that may be a credential, at least :data:`SECRET_RUN`
    characters long: header values but the plain ones (and what an ``Authorization`` scheme
    wraps: a bearer token, Basic's decoded user and password), the URL's user and password,
    query values and path segments (Telegram's bot token and Slack's secret are in the
    path)."""
    if request is None:
        return []
    values: list[str] = []
    for name, value in (request.headers or {}).items():
        if name.lower() in _PLAIN_HEADERS or not isinstance(value, str):
            continue
        values.append(value)
        if (meant := _as_sent(value)) != value:  # sent as UTF-8 (wire_headers)
            values.append(meant)
            value = meant
        if name.lower() == "authorization":
            values.extend(_credentials(value))
    parts = urllib.parse.urlsplit(request.url or "")
    values += [parts.username or "", parts.password or ""]
    in_url = [urllib.parse.unquote(segment) for segment in parts.path.split("/")]
    in_url += [value for _, value in urllib.parse.parse_qsl(parts.query)]
    # A path's plain words ("conversations", "tickets.json") are the API's, not secrets.
    values += [value for value in in_url if not _PLAIN_WORD.fullmatch(value)]
    return [value for value in values if len(value) >= SECRET_RUN]


def _as_sent(value: str) -> str:
    """A header value as the sender meant it: the UTF-8 text :func:`wire_headers` wrote as
    Latin-1 read back (any other value unchanged)."""
    if value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def has_dot_segment(url: str) -> bool:
    """True when ``url``'s path has a ``.`` or ``..`` segment, escaped or not: requests
    unescapes ``%2E`` and urllib3 then removes dot segments (RFC 3986 5.2.4), as servers do,
    so ``/dialogs/../messages`` would be sent as ``/messages``. An id placed in a path
    (``calls.quote_id``, the generic adapter's templates) must never do that."""
    path = urllib.parse.urlsplit(url).path
    return any(urllib.parse.unquote(segment) in DOT_SEGMENTS for segment in path.split("/"))


def _credentials(authorization: str) -> list[str]:
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "basic":
        return [token]
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return [token]
    return [token, *decoded.split(":", 1)]


def quotes_secret(text: str, secrets: Iterable[str]) -> bool:
    """True when ``text`` holds :data:`SECRET_RUN` characters in a row of any of ``secrets``
    (case folded: an echo may change the case)."""
    folded = text.casefold()
    if len(folded) < SECRET_RUN:
        return False
    for secret in secrets:
        secret = secret.casefold()
        for start in range(len(secret) - SECRET_RUN + 1):
            if secret[start : start + SECRET_RUN] in folded:
                return True
    return False


def _classify(where: str, exc: requests.RequestException) -> DeliveryError:
    """The DeliveryError for a request that got no HTTP answer (see the module docstring)."""
    sent = not never_sent(exc)
    if isinstance(exc, requests.Timeout | requests.ConnectionError):
        # The request's sending ran out of time (deadline.SendTimeoutError): not sent when
        # its header section never all left, else the vendor may have acted on the headers.
        sending = any(isinstance(item, SendTimeoutError) for item in _chain(exc))
        if not sent:
            if sending:
                what = "timed out sending the request"
            elif isinstance(exc, requests.ConnectTimeout):
                what = "connect timed out"
            else:
                what = "connection failed"
            return DeliveryError(f"{where}: {what} (not sent)", retryable=True)
        timed_out = isinstance(exc, requests.Timeout) or _caused_by_read_timeout(exc)
        if sending:
            what = "timed out sending the request"
        elif timed_out:
            what = "timed out waiting for the answer"
        else:
            what = "connection dropped"
        return DeliveryError(
            f"{where}: {what} (outcome unknown)", retryable=True, outcome_unknown=True
        )
    if _pysocks_missing(exc):
        # requests' "Missing dependencies for SOCKS support": PySocks is not installed. Not
        # sent, and not the request's fault: retryable, within delivery.max_attempts as a
        # refused connection is, so that what waits goes out once the operator installs
        # PySocks (a dependency) or fixes the variable, and restarts.
        setting = ", ".join(socks_proxies_without_pysocks()) or "the proxy"
        return DeliveryError(
            f"{where}: not sent: {setting} is a SOCKS proxy, which needs PySocks, not "
            "installed (install requests[socks])",
            retryable=True,
        )
    if sent and isinstance(exc, requests.exceptions.InvalidHeader):
        # The answer came with headers that cannot be read (two Content-Lengths that
        # disagree): its status is not known, so neither is what the vendor did.
        return DeliveryError(
            f"{where}: answer unreadable ({type(exc).__name__}, outcome unknown)",
            retryable=True,
            outcome_unknown=True,
        )
    if sent and isinstance(
        exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
    ):
        # The answer started and broke off: its status may have said it worked.
        return DeliveryError(
            f"{where}: answer cut off ({type(exc).__name__}, outcome unknown)",
            retryable=True,
            outcome_unknown=True,
        )
    return DeliveryError(f"{where}: {type(exc).__name__}", retryable=False)


def _pysocks_missing(exc: BaseException | None) -> bool:
    """Whether ``exc`` is requests' refusal of a SOCKS proxy without PySocks (its stand-in
    for urllib3's SOCKS manager, bound when requests was imported)."""
    return isinstance(exc, requests.exceptions.InvalidSchema) and "SOCKS" in str(exc)


def _caused_by_read_timeout(exc: BaseException) -> bool:
    # requests raises ConnectionError(ReadTimeoutError) when the body stalls after the status.
    return any(isinstance(arg, urllib3.exceptions.ReadTimeoutError) for arg in exc.args)


def _host(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.netloc.rsplit("@", 1)[-1] or "?"
