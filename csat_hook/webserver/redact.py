"""gunicorn's own log lines, without the request data they would carry.

csat-hook's logs print whitelisted fields only (:mod:`csat_hook.logs`), but gunicorn logs on
its own loggers (``gunicorn.error``, ``gunicorn.access``), which do not propagate, and for
requests it could not parse it prints what the client sent. gunicorn 27.0:

* ``Invalid request from ip=...: <error>`` (WARNING) where ``<error>`` is the ``repr`` of the
  whole request line (a ``?token=...`` in it), of a header line or name, of a
  Transfer-Encoding or Expect value, or of body bytes (a bad chunk size or trailer);
* ``Error handling request <method> <uri>`` (ERROR) with the raw URI, query included, and a
  traceback whose last line is the exception's message;
* ``Ignored premature client disconnection. <error>`` (DEBUG), the bytes read so far;
* ``<method> <path>`` (DEBUG), the default ``pre_request`` hook's line for every request;
* ``Current configuration:`` (DEBUG), every setting, ``raw_env`` (``-e NAME=VALUE``, the
  environment csat-hook reads its secrets from) among them: its values are dropped;
* the access log's request line, query string, Referer, Basic auth user name (a Freshdesk
  webhook's credential), header and environ atoms (the access log is off unless
  ``logging.access_log`` is on; on, those atoms are blanked, wherever its lines go).

A path is kept, but not a short link's reference (``/s/<reference>``: whoever reads it could
open the customer's form and answer as them): ``/s/[reference redacted]``; nor anything past
the shape of a route (a token typed after ``&`` instead of ``?``, or as a path segment):
``/webhooks/[path redacted]``; nor, once the configuration is read, a webhook URL's name that
no helpdesk is configured by (the app's own lines give its length only); nor a method other
than the standard ones.

:class:`RedactingLogger` (gunicorn's ``logger_class``) puts :class:`RedactRequestData` on
both loggers, before any handler: it keeps the event, the kind of error and the path, and
drops every byte that came from the client. Tracebacks keep their frames (file, line,
code), not the exceptions' messages.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from gunicorn.glogging import Logger

from csat_hook.logs import STANDARD_METHODS

_INVALID_REQUEST = re.compile(r"^(Invalid request from ip=\S*?): (.*)$", re.DOTALL)
# gunicorn.http.errors texts that hold no client bytes: sizes and fixed words only.
_SAFE_ERRORS = re.compile(
    r"^(limit request headers fields( size)?|limit request trailer section size|"
    r"max buffer headers|Request Line is too large \(\d+ > \d+\)|\d+|"
    r"Contradictory scheme headers|Invalid chunk extension: [a-zA-Z ]+|"
    # BufferedThreadWorker.handle_error: the exception's class and a fixed reason.
    r"[A-Z][A-Za-z0-9]+ \([A-Za-z0-9 -]+\))$"
)
_QUERY = re.compile(r"\?[^\s'\"]*")
REDACTED = "[request data redacted]"
# The master prints every setting at DEBUG (arbiter.py, "Current configuration:"); these hold
# NAME=VALUE pairs: gunicorn's -e (environment variables: csat-hook's secrets come from the
# environment) and --paste-global. Their names are kept, never their values.
_CONFIGURATION = "Current configuration:\n"
_SETTING_VALUES = re.compile(r"^(  (?:raw_env|raw_paste_global_conf): )(.*)$", re.MULTILINE)
# A short link's path, its separators and "s" (or "S") percent-encoded too (the server decodes them
# before the route is matched; /s%2F<reference> is refused, but its reference is there).
_SHORT_LINK = re.compile(r"(?:/|%2f)(?:s|%73|%53)(?:/|%2f)", re.IGNORECASE)
REFERENCE_REDACTED = "/s/[reference redacted]"
# csat-hook's routes are at most two segments deep (/webhooks/<helpdesk>, /api/outbox) apart
# from a short link's, each segment a name of unreserved characters.
_MAX_SEGMENTS = 2
_SEGMENT = re.compile(r"[A-Za-z0-9._~-]{0,64}")
PATH_REDACTED = "[path redacted]"
METHOD_REDACTED = "[method redacted]"
# Response headers the access log never prints (as atoms, ``%({name}o)s``): a short link's
# 302 names the customer's pre-filled form, with the survey's token and the agent's name (in a
# template form's fragment too, which no query redaction cuts).
_RESPONSE_HEADERS_DROPPED = ("{location}o",)


def _error_kind(error: str) -> str:
    """ "Invalid HTTP request line: 'GET /x?token=...'" → "Invalid HTTP request line"."""
    if _SAFE_ERRORS.match(error):
        return error
    head = re.split(r"[:'\"]|, got ", error, maxsplit=1)[0].strip()[:60]
    return f"{head} {REDACTED}" if head else REDACTED


def _path_only(uri: object, helpdesks: frozenset[str] | None = None) -> str:
    """The path of a URI (no query, no fragment), a short link's reference taken out, and
    only as far as it has the shape of a route: at most :data:`_MAX_SEGMENTS` segments of
    unreserved characters. A token typed after ``&`` or ``;`` instead of ``?``, an encoded
    ``%3F``, or one pasted as a path segment is a secret in the path: from the first
    segment that is not of that shape on, the path is :data:`PATH_REDACTED`. With the
    configured ``helpdesks`` known, a webhook URL's name is kept only when it is one of
    them (see :func:`_route_shaped`)."""
    path = re.split(r"[?#]", str(uri), maxsplit=1)[0]
    short_link = _SHORT_LINK.search(path)
    if short_link is not None:
        return _route_shaped(path[: short_link.start()], helpdesks) + REFERENCE_REDACTED
    return _route_shaped(path, helpdesks)


def _route_shaped(path: str, helpdesks: frozenset[str] | None = None) -> str:
    """``path`` up to its first segment that no route has (see :func:`_path_only`). A name
    after a first segment meant for a webhook (``webhooks``, ``webhook``, ``Webhooks``: as
    the app tells one) that none of ``helpdesks`` is named is the sender's text, a secret
    pasted in the wrong place as likely as a typo: the app logs its length only, and here
    it is :data:`PATH_REDACTED`."""
    segments = path.split("/")
    if segments[0]:  # not absolute (refused by the parser): nothing of it is a route
        return PATH_REDACTED
    for index, segment in enumerate(segments[1:], start=1):
        if index > _MAX_SEGMENTS or not _SEGMENT.fullmatch(segment):
            return "/".join([*segments[:index], PATH_REDACTED])
        if (
            index == 2
            and helpdesks is not None
            and segments[1].lower().startswith("webhook")
            and segment not in helpdesks
        ):
            return "/".join([*segments[:index], PATH_REDACTED])
    return path


def _method(method: object) -> str:
    """An HTTP method as the client sent it when it is a standard one (gunicorn passes on
    any upper-case token, which a client can fill with anything)."""
    return str(method) if method in STANDARD_METHODS else METHOD_REDACTED


def _names_only(match: re.Match[str]) -> str:
    """``  raw_env: ['A=secret', 'B=1']`` → ``  raw_env: ['A=[redacted]', 'B=[redacted]']``."""
    names = re.findall(r"""(?:^\[|, )['"]([^'"=\n]*)=""", match.group(2))
    return f"{match.group(1)}[{', '.join(repr(f'{name}=[redacted]') for name in names)}]"


def redact_message(record: logging.LogRecord, helpdesks: frozenset[str] | None = None) -> str:
    """The record's message with the request data taken out (``helpdesks``: the configured
    names, when known; see :func:`_path_only`)."""
    args = record.args
    if record.msg == "Error handling request %s %s" and isinstance(args, tuple) and len(args) == 2:
        return f"Error handling request {_method(args[0])} {_path_only(args[1], helpdesks)}"
    if record.msg == "Error handling request %s" and isinstance(args, tuple) and args:
        return f"Error handling request {_path_only(args[0], helpdesks)}"
    if record.msg == "%s %s" and isinstance(args, tuple) and len(args) == 2:
        # The default pre_request hook's DEBUG line: the method and the path.
        return f"{_method(args[0])} {_path_only(args[1], helpdesks)}"
    if isinstance(record.msg, str) and record.msg.startswith(_CONFIGURATION):
        return _SETTING_VALUES.sub(_names_only, record.msg)
    if isinstance(args, tuple):  # an exception's text can be request bytes: its type only
        args = tuple(type(a).__name__ if isinstance(a, BaseException) else a for a in args)
    try:
        message = str(record.msg) % args if args else str(record.msg)
    except (TypeError, ValueError):
        message = str(record.msg)
    match = _INVALID_REQUEST.match(message)
    if match:
        message = f"{match.group(1)}: {_error_kind(match.group(2))}"
    return _QUERY.sub("?[redacted]", message)


def redact_traceback(exc_info: Any) -> str:
    """The frames of each exception in the chain, without the exceptions' messages."""
    exc = exc_info[1]
    parts = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        frames = "".join(traceback.format_tb(exc.__traceback__))
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        parts.append(f"Traceback (most recent call last):\n{frames}{kind}: [message redacted]")
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    separator = "\n\nDuring handling of the above exception, another exception occurred:\n\n"
    return separator.join(reversed(parts))


class RedactRequestData(logging.Filter):
    """Rewrites each record of a gunicorn logger before any handler formats it.
    ``helpdesks``: the configured helpdesks' names, once known (its logger's setup)."""

    helpdesks: frozenset[str] | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_message(record, self.helpdesks)
        record.args = ()
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact_traceback(record.exc_info)  # Formatter reuses exc_text
        return True


class RedactingLogger(Logger):  # type: ignore[misc]
    """gunicorn's ``logger_class`` for csat-hook: request data never reaches its logs.

    The access log is ``logging.access_log``'s (``service_access_log``, set once the
    configuration is read: :func:`csat_hook.webserver.conf.apply_logging`, or
    :class:`csat_hook.webserver.conf.ProcfileLogger` each time gunicorn sets it up), a
    stream of its own, as gunicorn's ``--access-logfile`` and nginx's ``access_log`` are:

    * whether: ``logging.access_log`` alone. Off, no line is written, whatever gunicorn is
      told (``--access-logfile``, syslog, a log configuration) and whatever its logger's
      level (gunicorn's setup puts it back at INFO: with ``--preload``, after the app's
      logging had quieted it, and its lines were written).
    * at which level: on, one INFO record (``gunicorn.access``) per request, written at
      every ``logging.level``: the level filters csat-hook's and gunicorn's own lines, never
      the stream the operator switched on.
    * where: where gunicorn is told, when it is (``--access-logfile``, in its command line or
      ``GUNICORN_CMD_ARGS``; syslog; a log configuration), in its access format; else the
      service's own handler (stderr, ``logging.format``). One place, so one line a request.

    Every line goes through :class:`RedactRequestData` first; ``service_helpdesks``, the
    configured helpdesks' names (set with ``service_access_log``), tell it which webhook
    URLs' names may be kept. ``service_access_log`` None (another app on these settings: the
    benchmarks' bare peer): gunicorn's own rules."""

    service_access_log: bool | None = None
    service_helpdesks: frozenset[str] | None = None

    def _compute_access_log_enabled(self) -> bool:
        if self.service_access_log is None:
            return bool(super()._compute_access_log_enabled())
        return self.service_access_log

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)  # runs again on reload (SIGHUP): one filter per logger
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactRequestData) for f in log.filters):
                log.addFilter(RedactRequestData())
            for redacting in log.filters:
                if isinstance(redacting, RedactRequestData):
                    redacting.helpdesks = self.service_helpdesks
        # Filters run on the logger the record was made on, before it propagates: up to
        # the service's handler only where gunicorn has no destination of its own (both
        # wrote each line).
        own_destination = bool(super()._compute_access_log_enabled())
        self.access_log.propagate = bool(self.service_access_log) and not own_destination

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """Access-log atoms without the query string, Referer, Basic auth user, request headers,
        environ, or a response's redirect target (:data:`_RESPONSE_HEADERS_DROPPED`)."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        method = _method(environ.get("REQUEST_METHOD"))
        atoms["m"] = method
        helpdesks = self.service_helpdesks
        atoms["r"] = f"{method} {_path_only(environ.get('RAW_URI', ''), helpdesks)} "
        atoms["r"] += str(environ.get("SERVER_PROTOCOL"))
        atoms["U"] = _path_only(environ.get("PATH_INFO", ""), helpdesks)
        if not environ.get("REQUEST_METHOD"):  # the worker's own answer, no request line read
            atoms["m"] = atoms["r"] = atoms["U"] = atoms["H"] = "-"
        atoms["q"] = "-"
        atoms["f"] = "-"
        atoms["u"] = "-"  # Basic auth's user name: half a webhook's credential (Freshdesk)
        atoms["a"] = "-"  # the User-Agent: a header value, the sender's to write
        for key in [k for k in atoms if k.startswith("{") and not k.endswith("}o")]:
            del atoms[key]  # gunicorn's SafeAtoms renders a missing atom as "-"
        for key in _RESPONSE_HEADERS_DROPPED:
            atoms.pop(key, None)
        return atoms
