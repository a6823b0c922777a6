"""Reading a webhook's body: bounded in size and in time, every framing error a 4xx.

The view reads ``environ["wsgi.input"]`` itself rather than through Werkzeug, whose stream
(with gunicorn's ``wsgi.input_terminated``) silently cuts a chunked body at the size limit
and turns a read time-out into "client disconnected". Here:

* more than ``max_bytes``, declared (Content-Length) or streamed (chunked): 413, before any
  verification;
* a malformed chunked body (size line, terminator, extension, trailer): 400;
* fewer bytes than the Content-Length, or the sender hung up: 400;
* the body not complete within ``deadline_seconds`` (and no byte for ``idle_seconds``): 408.

Under gunicorn (``csat-hook serve`` and the Procfile) the worker of
:mod:`csat_hook.webserver.worker` has normally buffered the whole request before the view
runs; the deadline here bounds what still reaches a thread unbuffered (a request over the
worker's buffer cap, or a plain gthread worker). With another server, or Werkzeug's test
client, the stream is read as it is, with the size bound only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gunicorn.http.errors import ParseException

from csat_hook.errors import PayloadTooLargeError
from csat_hook.errors import RequestTimeoutError
from csat_hook.errors import WebhookError

READ_STEP = 65536


def read_body(
    environ: Mapping[str, Any],
    *,
    max_bytes: int,
    deadline_seconds: float,
    idle_seconds: float = 5.0,
) -> bytes:
    """The request's body; raise a WebhookError subclass (400, 408, 413) as described above."""
    stream = environ["wsgi.input"]
    declared = _content_length(environ.get("CONTENT_LENGTH"))
    if declared is not None and declared > max_bytes:
        _abandon(stream)
        raise PayloadTooLargeError(f"the body is over the {max_bytes}-byte limit")
    wanted = max_bytes + 1 if declared is None else declared
    with _Deadline(stream, time.monotonic() + deadline_seconds, idle_seconds):
        try:
            body = _read(stream, wanted)
        except TimeoutError as exc:  # before OSError: it is one
            _abandon(stream)
            raise RequestTimeoutError("the body did not arrive in time") from exc
        except ParseException as exc:
            _abandon(stream)
            raise WebhookError(
                f"malformed request body ({type(exc).__name__})", code="bad_framing"
            ) from exc
        except OSError as exc:  # gunicorn's NoMoreData, a reset connection
            _abandon(stream)
            raise WebhookError(
                "the connection closed before the body was complete", code="incomplete_body"
            ) from exc
    if len(body) > max_bytes:
        _abandon(stream)
        raise PayloadTooLargeError(f"the body is over the {max_bytes}-byte limit")
    if declared is not None and len(body) < declared:
        _abandon(stream)
        raise WebhookError("the body is shorter than its Content-Length", code="incomplete_body")
    return body


def _content_length(value: str | None) -> int | None:
    if not value:
        return None
    # ASCII digits only: "²" is a digit to isdigit() but not to int() (a 500), and int()
    # reads "١٢" as 12. gunicorn refuses these before the app runs; others may not.
    if not (value.isascii() and value.isdigit()):
        raise WebhookError("invalid Content-Length", code="bad_framing")
    return int(value)


def _read(stream: Any, wanted: int) -> bytes:
    """Up to ``wanted`` bytes: fewer only at the end of the stream."""
    chunks: list[bytes] = []
    total = 0
    while total < wanted:
        data = stream.read(min(wanted - total, READ_STEP))
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


def _abandon(stream: Any) -> None:
    """Tell gunicorn (27.x: ``Body.failed``) not to drain the rest: the connection closes,
    instead of a thread waiting for bytes that may never come."""
    if hasattr(stream, "failed"):
        stream.failed = True


class _Deadline:
    """While active, every ``recv()`` of gunicorn's reader for ``stream`` waits at most
    ``idle`` seconds and never past ``deadline`` (TimeoutError after). A no-op for streams
    that are not gunicorn's."""

    def __init__(self, stream: Any, deadline: float, idle: float) -> None:
        self.unreader = _unreader_of(stream)
        self.deadline = deadline
        self.idle = idle
        self.sock: Any = None
        self.prior: float | None = None

    def __enter__(self) -> _Deadline:
        if self.unreader is not None:
            self.sock = self.unreader.sock
            self.prior = self.sock.gettimeout()
            self.unreader.sock = _DeadlineSocket(self.sock, self.deadline, self.idle)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.unreader is not None:
            self.unreader.sock = self.sock
            self.sock.settimeout(self.prior)


class _DeadlineSocket:
    def __init__(self, sock: Any, deadline: float, idle: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._idle = idle

    def recv(self, size: int) -> bytes:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the body deadline passed")
        self._sock.settimeout(min(self._idle, left))
        data: bytes = self._sock.recv(size)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _unreader_of(stream: Any) -> Any:
    """gunicorn's SocketUnreader behind ``wsgi.input`` (``Body.reader.unreader`` for a
    Content-Length body, ``Body.reader.req.unreader`` for a chunked one), or None."""
    reader = getattr(stream, "reader", None)
    unreader = getattr(reader, "unreader", None) or getattr(
        getattr(reader, "req", None), "unreader", None
    )
    return unreader if hasattr(unreader, "sock") else None
