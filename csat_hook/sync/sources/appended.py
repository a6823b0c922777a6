"""Rows appended to a ``values.batchGet`` response read before, found in its bytes.

A responses sheet mostly grows at the bottom. When a response's rows start with exactly the
bytes of an earlier response's rows, those rows are the earlier rows (JSON decoding of a run
of complete array elements does not depend on what follows them), and only the rest needs
decoding. Everything here is checked, not assumed; any doubt answers None and the caller
decodes the whole response as usual:

* the ``values`` array is found by its key and by the document's closing brackets, and the
  document with that array emptied must decode to one ValueRange whose ``values`` is ``[]``;
  a read of every row decodes its rows from that array alone (:func:`whole_rows`), so a
  prefix never covers anything but the rows read;
* the earlier rows are compared by a digest of their bytes (length and blake2b-256);
* what follows them must be nothing or ``,`` and complete JSON arrays, decoded one by one
  with the same decoder ``json.loads`` uses.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from typing import Any
from typing import NamedTuple

from csat_hook.sync.sources.base import bytes_hash

_KEY = re.compile(rb'"values"\s*:\s*\[')
_WHITESPACE = b" \t\n\r"
_DECODER = json.JSONDecoder()


@dataclass(frozen=True)
class RowsPrefix:
    """Where a response's rows end: the byte length of its ``values`` array content up to
    the last row's closing bracket, that content's digest, and how many rows it holds (the
    header included)."""

    length: int
    digest: str
    rows: int

    def as_dict(self) -> dict[str, Any]:
        return {"length": self.length, "digest": self.digest, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: Any) -> RowsPrefix | None:
        try:
            return cls(int(data["length"]), str(data["digest"]), int(data["rows"]))
        except (KeyError, TypeError, ValueError):
            return None


def values_span(body: bytes) -> tuple[int, int] | None:
    """``(start, end)``: ``body[start:end]`` is the content of the response's ``values``
    array (between its brackets); None when the body is not one ValueRange by rows."""
    found = _KEY.search(body)
    if found is None:
        return None
    start = found.end()
    end = _before_closing(body)
    if end is None or end < start:
        return None
    try:
        shell = json.loads(body[:start] + body[end:])
    except ValueError:
        return None
    ranges = shell.get("valueRanges") if isinstance(shell, dict) else None
    if not (isinstance(ranges, list) and len(ranges) == 1 and isinstance(ranges[0], dict)):
        return None
    by_rows = ranges[0].get("majorDimension", "ROWS") == "ROWS"
    return (start, end) if by_rows and ranges[0].get("values") == [] else None


def _before_closing(body: bytes) -> int | None:
    """The index of the ``values`` array's ``]`` if the body ends ``] } ] }`` (whitespace
    between): the array, its ValueRange, ``valueRanges`` and the document closing."""
    at = len(body)
    for expected in b"}]}]":
        at = _last_non_space(body, 0, at) - 1
        if at < 0 or body[at] != expected:
            return None
    return at


def _rows_length(body: bytes, span: tuple[int, int]) -> int:
    """The length of the ``values`` array's content up to its last row's closing bracket
    (the array's trailing whitespace left out): where a prefix of every row ends."""
    start, end = span
    return _last_non_space(body, start, end) - start


def _last_non_space(body: bytes, start: int, end: int) -> int:
    """The end of ``body[start:end]`` without its trailing whitespace (no copy)."""
    while end > start and body[end - 1] in _WHITESPACE:
        end -= 1
    return end


def whole_rows(body: bytes) -> tuple[list[Any], tuple[int, int]] | None:
    """Every row of a response with one ``values`` array (:func:`values_span`), decoded from
    that array alone (the response is decoded once), and the array's span; None when there is
    no such array (the caller decodes the whole body, and no prefix is taken).

    The rows a decode of the whole body gives: the rest of it, with the array emptied,
    decodes to one ValueRange whose ``values`` is ``[]``, and a complete JSON value decodes
    the same wherever it stands."""
    span = values_span(body)
    if span is None:
        return None
    start, end = span
    try:
        # Decoded straight from the body's buffer (no copy of the bytes beside the text), as
        # ``json.loads`` decodes bytes that start with ``[``: UTF-8, lone surrogates passed.
        text = str(memoryview(body)[start - 1 : end + 1], "utf-8", "surrogatepass")
        rows = json.loads(text)
    except ValueError:
        return None
    # A row that is not a list is not rows at all: tab_rows says so.
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        return None
    return rows, span


def prefix_of(body: bytes, span: tuple[int, int], rows: int) -> RowsPrefix:
    """The prefix that ends after the last of the ``rows`` rows ``body`` holds."""
    start = span[0]
    length = _rows_length(body, span)
    return RowsPrefix(
        length, bytes_hash(memoryview(body)[start : start + length]).hexdigest(), rows
    )


class Appended(NamedTuple):
    """What :func:`rows_after` found: the header (the first row), the rows added after the
    earlier prefix, and the prefix that ends after them (:func:`prefix_of` of the body)."""

    header: list[Any]
    rows: list[list[Any]]
    prefix: RowsPrefix


def rows_after(body: bytes, span: tuple[int, int], prefix: RowsPrefix) -> Appended | None:
    """The rows added to ``body`` after ``prefix``'s rows, when ``body``'s rows start with
    ``prefix``'s bytes; else None. The header is the first row (it is part of the prefix).

    The new prefix is digested by going on from the earlier prefix's digest (blake2b hashes
    in one pass what it is given in pieces): a later sync hashes the rows' bytes once for
    both, not once to check the earlier rows and again for where the rows end now."""
    start, end = span
    if prefix.rows < 1 or end - start < prefix.length:
        return None
    # Views, not slices: the prefix is nearly the whole body, and a copy of it (or its text)
    # beside the body was a later sync's peak of memory.
    view = memoryview(body)
    hashed = bytes_hash(view[start : start + prefix.length])
    if hashed.hexdigest() != prefix.digest:  # the state goes on: hexdigest leaves it as is
        return None
    try:
        rest = str(view[start + prefix.length : end], "utf-8")
    except UnicodeDecodeError:
        return None
    header = _first(view[start : start + prefix.length])
    appended = _elements(rest)
    if header is None or appended is None:
        return None
    length = _rows_length(body, span)  # prefix_of's, hashed on from what follows
    hashed.update(view[start + prefix.length : start + length])
    return Appended(
        header, appended, RowsPrefix(length, hashed.hexdigest(), prefix.rows + len(appended))
    )


_FIRST_WINDOW = 1 << 16


def _first(data: memoryview) -> list[Any] | None:
    """The first JSON array in ``data``, which must be UTF-8 throughout (as a decode of the
    whole was): the text of 64 KiB windows is kept only until that array is whole (tried
    again each time the text has doubled), the rest is checked a window at a time and
    dropped. A complete value decodes the same whatever follows it."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    text, row, whole, tried = "", None, False, 0
    for at in range(0, len(data), _FIRST_WINDOW):
        stop = min(len(data), at + _FIRST_WINDOW)
        try:
            chunk = decoder.decode(data[at:stop], final=stop == len(data))
        except UnicodeDecodeError:
            return None
        if whole:
            continue
        text += chunk
        if len(text) < 2 * tried and stop < len(data):
            continue
        tried = len(text)
        try:
            row, _ = _DECODER.raw_decode(text, _skip(text, 0))
        except ValueError:
            continue  # not whole yet (or not an array: the last window says)
        whole, text = True, ""
    return row if whole and isinstance(row, list) else None


def _elements(text: str) -> list[list[Any]] | None:
    """``, [..], [..]`` → the arrays; None for anything else."""
    rows: list[list[Any]] = []
    at = _skip(text, 0)
    while at < len(text):
        if text[at] != ",":
            return None
        at = _skip(text, at + 1)
        try:
            row, at = _DECODER.raw_decode(text, at)
        except ValueError:
            return None
        if not isinstance(row, list):
            return None
        rows.append(row)
        at = _skip(text, at)
    return rows


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\n\r":
        at += 1
    return at
