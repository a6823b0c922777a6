"""Reading one HTTP/1.x request's bytes as they arrive and telling when it is complete (head,
Content-Length or chunked body), for :mod:`csat_hook.webserver.worker`; the limits it applies;
the answers the worker gives without gunicorn (408, 413, 431), in the app's JSON error shape."""

from __future__ import annotations

import json
import re

from gunicorn.http.body import CHUNK_EXT_RE

# Defaults until the app says otherwise (server.max_body_bytes, server.body_timeout_seconds).
MAX_BODY_BYTES = 1_048_576
REQUEST_TIMEOUT_SECONDS = 10.0
# Every socket operation left to a thread (a body dispatched incomplete, a response to a
# client that does not read) is bounded by this.
THREAD_SOCKET_TIMEOUT = 5.0
# A head (request line, fields and the blank line that ends them) over this many bytes is
# refused (431), whether it ends past the limit or has not ended when the limit is passed.
# gunicorn's own limits (100 fields of 8190 bytes) allow a head of 800 KB.
MAX_HEAD_BYTES = 64 * 1024
# All requests being buffered in one worker together; past it a request whose head is in
# goes to a thread with its body as it is (read there under the view's deadline); a head
# still arriving stays buffered (each at most MAX_HEAD_BYTES).
MAX_BUFFERED_TOTAL = 64 * 1_048_576
# A chunk-size line or trailer section longer than this is dispatched for gunicorn to refuse.
MAX_LINE_BYTES = 8192
# A connection closed after its response lingers this long (and reads at most LINGER_BYTES)
# for the client to close first, so the end of the response is not lost to a reset.
LINGER_SECONDS = 2.0
LINGER_BYTES = 65536

NEED_MORE, READY, HEAD_TOO_LARGE = "more", "ready", "head too large"
BODY_TOO_LARGE, BAD_FRAMING = "body too large", "bad framing"

_HEX = re.compile(rb"[0-9A-Fa-f]+")
# More significant hex digits than this is a size over any limit (2**64 and more).
_MAX_SIZE_DIGITS = 16
CONTINUE_ANSWER = b"HTTP/1.1 100 Continue\r\n\r\n"


def json_answer(status: str, code: str, reason: str) -> bytes:
    """A whole response, closing the connection, in the app's error shape (``{"error":
    <code>, "reason": <text>}``, as Flask's ``jsonify`` writes it). ``reason`` is a fixed
    text: never anything the request held.

    ``Cache-Control: no-store``, whatever the request: the server answers before any path is
    read (a request line too long has none), and under ``/s/`` (the one-click score links,
    whose answers the app marks so: ``clicks/web.py``) a refusal a cache kept would be served
    for the next click on that link. No refusal is worth keeping anywhere."""
    body = json.dumps({"error": code, "reason": reason}, separators=(",", ":")).encode() + b"\n"
    return (
        f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


TIMED_OUT_ANSWER = json_answer(
    "408 Request Timeout", "request_timeout", "the body did not arrive in time"
)
HEAD_TIMED_OUT_ANSWER = json_answer(
    "408 Request Timeout", "request_timeout", "the request head did not arrive in time"
)
# gunicorn's refusal of a chunk it cannot read (worker._REFUSALS), for one it would wait on.
BAD_FRAMING_ANSWER = json_answer("400 Bad Request", "bad_framing", "malformed request body")
HEAD_TOO_LARGE_ANSWER = json_answer(
    "431 Request Header Fields Too Large",
    "request_header_fields_too_large",
    "the request head is too large",
)


def body_too_large_answer(max_body: int) -> bytes:
    """The 413 the view gives a Content-Length over ``max_body`` (its code and reason)."""
    return json_answer(
        "413 Content Too Large", "payload_too_large", f"the body is over the {max_body}-byte limit"
    )


class PendingRequest:
    """The bytes of one request read so far, and whether they are a complete request.

    :meth:`state` scans only what arrived since its last call, so a sender trickling one
    byte at a time costs O(size) in all, not O(size²).
    """

    def __init__(self, data: bytes, deadline: float, max_body: int) -> None:
        self.data = bytearray(data)
        self.deadline = deadline
        self.max_body = max_body
        self.expect_continue = False
        self.sent_continue = False
        self._scanned = 0  # head: bytes already searched for the blank line
        self._head_end: int | None = None
        self._length: int | None = None  # Content-Length framing
        # chunked framing
        self._pos = 0  # where the next chunk-size line starts
        self._decoded = 0  # data bytes of the chunks before the current one
        self._chunk_size = 0  # the current chunk's size, until it is complete
        self._resume = 0  # where to resume looking for CRLF (or CRLFCRLF)
        self._last = False  # the zero-size chunk was seen

    @property
    def head_complete(self) -> bool:
        """Whether the head's blank line has arrived (as of the last :meth:`state`)."""
        return self._head_end is not None

    def state(self) -> str:
        """NEED_MORE, READY (complete, or anything gunicorn must judge), HEAD_TOO_LARGE,
        BAD_FRAMING (a chunk-size line ended by a bare LF, which gunicorn would wait on) or
        BODY_TOO_LARGE (chunk sizes that add up to more than ``max_body``: said as soon as
        the size line is in, not once the data has come; or a Content-Length over it with
        ``Expect: 100-continue``: said before the sender sends the body)."""
        data = self.data
        if self._head_end is None:
            start = 2 if data[:2] == b"\r\n" else 0  # one empty line may precede a request
            end = data.find(b"\r\n\r\n", max(start, self._scanned - 3))
            if end < 0:
                lf = data.find(b"\n", self._scanned)
                self._scanned = len(data)
                if len(data) > MAX_HEAD_BYTES:
                    return HEAD_TOO_LARGE
                while lf >= 0:
                    if lf == 0 or data[lf - 1] != 0x0D:
                        return READY  # a bare LF: gunicorn refuses it at once
                    lf = data.find(b"\n", lf + 1)
                return NEED_MORE
            if end + 4 > MAX_HEAD_BYTES:  # a head that ended, past the limit
                return HEAD_TOO_LARGE
            verdict = self._read_head(bytes(data[start:end]))
            self._head_end = self._pos = self._resume = end + 4
            if verdict is not None:
                return verdict
        if self._length is not None:
            return READY if len(data) - self._head_end >= self._length else NEED_MORE
        return self._chunked_state()

    def _read_head(self, head: bytes) -> str | None:
        """None when a body must be waited for; READY otherwise."""
        lines = head.split(b"\r\n")
        lengths: list[bytes] = []
        codings: list[bytes] = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                return READY  # malformed: gunicorn answers 400
            name = name.strip().lower()
            value = value.strip()
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings.append(value.lower())
            elif name == b"expect" and value.lower() == b"100-continue":
                self.expect_continue = lines[0].endswith(b"HTTP/1.1")
        if codings:
            # Anything but "chunked" alone is refused by its header: by gunicorn (415, 400)
            # or, "gzip, chunked" and the like, by the view before it reads the body. Waited
            # for as a chunked body, a sender not done sending was told 408, not 415.
            if lengths or len(codings) > 1 or codings[0] != b"chunked":
                return READY
            return None
        if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
            return READY
        if not lengths:
            return READY  # no body
        self._length = int(lengths[0])
        if self._length > self.max_body:
            # The view answers 413 without reading it; but a sender that expects
            # 100-continue is waiting for our word, and gunicorn said "100 Continue" before
            # the view refused: the sender sent the body we would not read. Refused here.
            return BODY_TOO_LARGE if self.expect_continue else READY
        return None

    def _chunked_state(self) -> str:
        data = self.data
        while True:
            if self._last:  # after the zero-size chunk: trailers, then an empty line
                if data.find(b"\r\n\r\n", max(self._pos - 2, self._resume - 3)) >= 0:
                    return READY
                lf = data.find(b"\n", max(self._pos, self._resume))
                while lf >= 0:
                    if data[lf - 1] != 0x0D:
                        return READY  # a bare LF: gunicorn refuses the trailers at once
                    lf = data.find(b"\n", lf + 1)
                self._resume = len(data)
                return READY if len(data) - self._pos > MAX_LINE_BYTES else NEED_MORE
            if len(data) < self._pos:  # inside a chunk's data (and its CRLF): its size
                return NEED_MORE  # kept the total within the limit
            if self._chunk_size and data[self._pos - 2 : self._pos] != b"\r\n":
                # Data longer than its size: what follows it is not its CRLF, and gunicorn
                # refuses the chunk (a 400). Scanned on, those bytes were skipped and the
                # data after them read as the next size line ("3\r\nabcdef": "f"): the
                # sender waited for the body's deadline (408), or was told 413.
                return READY
            self._decoded += self._chunk_size
            self._chunk_size = 0
            lf = data.find(b"\n", max(self._pos, self._resume))
            if lf < 0:
                self._resume = len(data)
                return READY if len(data) - self._pos > MAX_LINE_BYTES else NEED_MORE
            if lf == self._pos or data[lf - 1] != 0x0D:
                # A bare LF ends no chunk-size line (RFC 9112 7.1). gunicorn, like this
                # scan, reads on for a CRLF that never comes: the sender was answered 408
                # at the body's deadline, though the whole request had arrived.
                return BAD_FRAMING
            eol = lf - 1
            size = _chunk_size(bytes(data[self._pos : eol]), self.max_body)
            if size is None:
                return READY  # gunicorn raises InvalidChunkSize..., the view answers 400
            if size == 0:
                self._last = True
                self._pos = self._resume = eol + 2
                continue
            if self._decoded + size > self.max_body:
                # As a Content-Length over the limit is (the view's 413), without waiting
                # for data that would only be refused.
                return BODY_TOO_LARGE
            self._chunk_size = size
            self._pos = self._resume = eol + 2 + size + 2


def _chunk_size(line: bytes, max_body: int) -> int | None:
    """A chunk-size line's size, or None when gunicorn refuses the line (its checks, in its
    order: hex digits, then the extension). A size of more than 16 significant hex digits is
    given as ``max_body + 1``: over the limit, never converted."""
    size_text, semicolon, extension = line.partition(b";")
    if semicolon:  # white space before an extension only (RFC 9112 7.1.1)
        size_text = size_text.rstrip(b" \t")
    if not _HEX.fullmatch(size_text):
        return None
    if semicolon and (b"\r" in extension or not CHUNK_EXT_RE.fullmatch(b";" + extension)):
        return None
    digits = size_text.lstrip(b"0")
    if len(digits) > _MAX_SIZE_DIGITS:
        return max_body + 1
    return int(digits or b"0", 16)
