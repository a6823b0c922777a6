"""When the buffering worker hands a request to a thread: once it is complete, or at once
when its framing is anything gunicorn must judge. Fed all at once or a byte at a time, the
verdict is the same (the scan is incremental)."""

from __future__ import annotations

import pytest

from csat_hook.webserver.pending import BAD_FRAMING
from csat_hook.webserver.pending import BODY_TOO_LARGE
from csat_hook.webserver.pending import HEAD_TOO_LARGE
from csat_hook.webserver.pending import MAX_HEAD_BYTES
from csat_hook.webserver.pending import NEED_MORE
from csat_hook.webserver.pending import READY
from csat_hook.webserver.pending import PendingRequest

HEAD = b"POST /webhooks/generic HTTP/1.1\r\nHost: x\r\n"


def verdicts(data: bytes, *, max_body: int = 1000, step: int = 1) -> list[str]:
    """The state after each ``step`` bytes arrive."""
    pending = PendingRequest(b"", deadline=0, max_body=max_body)
    found = []
    for i in range(0, len(data), step):
        pending.data += data[i : i + step]
        found.append(pending.state())
    return found


def first_ready(data: bytes, **kw: int) -> int | None:
    """How many bytes had arrived when the request was judged ready (None: never)."""
    for n, verdict in enumerate(verdicts(data, **kw), start=1):
        if verdict != NEED_MORE:
            return n
    return None


def test_a_content_length_body_is_ready_with_its_last_byte():
    data = HEAD + b"Content-Length: 5\r\n\r\nhello"
    assert first_ready(data) == len(data)
    assert verdicts(data, step=len(data)) == [READY]


def test_a_chunked_body_is_ready_at_its_end_trailers_included():
    body = b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
    data = HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body
    assert first_ready(data) == len(data)
    plain = HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    assert first_ready(plain) == len(plain)


@pytest.mark.parametrize(
    "data",
    [
        HEAD + b"\r\n",  # no body
        HEAD + b"Content-Length: 2000\r\n\r\n",  # over max_body: the view answers 413
        HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
        HEAD + b"Content-Length: x\r\n\r\n",
        HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        HEAD + b"Transfer-Encoding: gzip\r\n\r\n",
        HEAD + b"X-No-Colon\r\n\r\n",
    ],
)
def test_heads_gunicorn_or_the_view_must_judge_go_at_once(data):
    assert first_ready(data) == len(data)


@pytest.mark.parametrize(
    "codings", [b"x-chunked", b"gzip;level=9, chunked", b"gzip, chunked", b"identity,chunked"]
)
def test_a_transfer_coding_other_than_chunked_goes_at_once(codings):
    """Refused by the header alone (gunicorn's 415, or the view's before it reads the body):
    not waited for as a chunked body (a sender that had not sent all of it was told 408)."""
    data = HEAD + b"Transfer-Encoding: " + codings + b"\r\n\r\n"
    assert first_ready(data + b"ff\r\n{") == len(data)


def test_a_bare_lf_goes_at_once():
    data = b"POST / HTTP/1.1\nHost: x\r\n"
    assert first_ready(data) == data.index(b"\n") + 1


def test_a_bad_chunk_size_goes_as_soon_as_its_line_ends():
    data = HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
    assert first_ready(data) == len(data)


CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "sizes",
    [
        b"3e9\r\n",  # 1001, limit 1000
        b"3E9;name=value\r\n",
        b"ffffffffffffffffffffffffffffffffffffffff\r\n",
        b"000000000000000000000000000003e9\r\n",
        b"3e8\r\n" + b"x" * 1000 + b"\r\n1\r\n",  # the total: 1000, then one more
    ],
)
def test_a_chunked_body_over_the_limit_is_refused_at_its_size_line(sizes):
    """Its data is not waited for (a sender that never sends it was answered 408)."""
    data = CHUNKED + sizes
    assert first_ready(data) == len(data)
    assert verdicts(data)[-1] == BODY_TOO_LARGE
    assert verdicts(data, step=len(data)) == [BODY_TOO_LARGE]


def test_a_chunked_body_of_exactly_the_limit_is_ready_at_its_end():
    data = CHUNKED + b"1f4\r\n" + b"x" * 500 + b"\r\n1f4\r\n" + b"y" * 500 + b"\r\n0\r\n\r\n"
    assert first_ready(data) == len(data)
    assert verdicts(data, step=len(data)) == [READY]


@pytest.mark.parametrize(
    "line",
    [
        b"3e9 \r\n",  # white space without an extension
        b'3e9;a="\x01"\r\n',  # a malformed extension
        b"3e9;a\rb\r\n",  # a bare CR in it
    ],
)
def test_a_size_line_gunicorn_refuses_goes_at_once_whatever_its_size(line):
    """gunicorn answers 400 for the line: the worker does not answer 413 in its place."""
    data = CHUNKED + line
    assert verdicts(data, step=len(data)) == [READY]


@pytest.mark.parametrize(
    "trailers",
    [
        b"\n",  # the empty line that ends the trailer section, a bare LF
        b"X-Trailer: 1\n\r\n",
        b"X-Trailer: 1\r\n\n",
    ],
)
def test_a_bare_lf_in_the_trailer_section_goes_at_once(trailers):
    """gunicorn refuses it (a 400, as a bare LF in the head): the whole request had arrived,
    and waiting for a CRLF that never comes answered 408 "did not arrive in time" after the
    body's deadline."""
    data = CHUNKED + b"2\r\n{}\r\n0\r\n" + trailers
    bare = trailers.replace(b"\r\n", b"  ").index(b"\n")
    assert first_ready(data) == len(data) - len(trailers) + bare + 1
    assert verdicts(data, step=len(data)) == [READY]


@pytest.mark.parametrize(
    "body",
    [
        b"2\n{}\n0\n\n",  # every line ends in a bare LF
        b"2\n",  # the first size line, before its data
        b"2\r\n{}\r\n0\n",  # the last chunk's size line
        b"2;ext=1\n",
    ],
)
def test_a_bare_lf_ending_a_chunk_size_line_is_bad_framing_at_once(body):
    """Waiting for a CRLF that never comes (gunicorn waits too) kept the sender until the
    body's deadline, then answered 408 "did not arrive in time"."""
    data = CHUNKED + body
    bare = body.replace(b"\r\n", b"  ").index(b"\n")
    assert first_ready(data) == len(CHUNKED) + bare + 1
    assert verdicts(data)[-1] == BAD_FRAMING
    assert verdicts(data, step=len(data)) == [BAD_FRAMING]


@pytest.mark.parametrize(
    "body",
    [
        b"3\r\nabcdef\r\n0\r\n\r\n",  # "f" read as the next size line: 15 bytes waited for
        b"3\r\nabcdeffff\r\n0\r\n\r\n",  # "ffff": 65535 bytes, over the limit (413)
        b"3\r\nabc\n\r\n0\r\n\r\n",
    ],
)
def test_chunk_data_not_ended_by_crlf_goes_as_soon_as_its_end_is_in(body):
    """A chunk's data is followed by CRLF (RFC 9112 7.1); gunicorn refuses anything else
    (a 400). The scan skipped those two bytes unread and took what followed for the next
    size line: the sender waited for the body's deadline (408), or was told 413."""
    data = CHUNKED + body
    assert first_ready(data) == len(CHUNKED) + body.index(b"c") + 3
    assert verdicts(data, step=len(data)) == [READY]


def test_an_expected_body_over_the_limit_is_refused_before_it_is_sent():
    """With ``Expect: 100-continue`` the sender waits for our word before sending a body we
    would refuse: 413 at once (gunicorn answered "100 Continue" first, inviting the body)."""
    data = HEAD + b"Content-Length: 2000\r\nExpect: 100-continue\r\n\r\n"
    assert first_ready(data) == len(data)
    assert verdicts(data, step=len(data)) == [BODY_TOO_LARGE]
    exactly = HEAD + b"Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n"
    assert verdicts(exactly, step=len(exactly)) == [NEED_MORE]
    http_1_0 = data.replace(b"HTTP/1.1", b"HTTP/1.0")  # the expectation is ignored: the view
    assert verdicts(http_1_0, step=len(http_1_0)) == [READY]  # answers 413


def test_an_endless_head_is_refused():
    data = HEAD + b"X-Big: " + b"x" * MAX_HEAD_BYTES
    assert verdicts(data, step=4096)[-1] == HEAD_TOO_LARGE


def test_a_head_over_the_limit_is_refused_however_fast_it_arrives():
    """The limit held only while the head had not ended: one that arrived whole, or in two
    reads of 64 KiB, was handed to gunicorn, whose own limits allow 800 KB."""
    fields = b"".join(b"X-H%d: %s\r\n" % (i, b"h" * 7000) for i in range(10))
    data = HEAD + fields + b"Content-Length: 2\r\n\r\n{}"
    assert verdicts(data, step=len(data)) == [HEAD_TOO_LARGE]
    assert verdicts(data, step=65536)[-1] == HEAD_TOO_LARGE


def test_a_head_of_exactly_the_limit_is_read():
    head = HEAD + b"Content-Length: 2\r\nX-Pad: "
    exactly = head + b"p" * (MAX_HEAD_BYTES - len(head) - 4) + b"\r\n\r\n"
    assert len(exactly) == MAX_HEAD_BYTES
    assert verdicts(exactly + b"{}", step=len(exactly) + 2) == [READY]
    over = exactly[:-4] + b"p\r\n\r\n"
    assert verdicts(over + b"{}", step=len(over) + 2) == [HEAD_TOO_LARGE]


def test_only_the_first_request_counts_when_two_arrive_together():
    first = HEAD + b"Content-Length: 2\r\n\r\n{}"
    assert verdicts(first + HEAD + b"Content-Length: 900\r\n\r\n", step=10_000) == [READY]


def test_expect_100_continue_is_noticed_for_http_1_1():
    pending = PendingRequest(
        HEAD + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n", deadline=0, max_body=1000
    )
    assert pending.state() == NEED_MORE and pending.expect_continue
