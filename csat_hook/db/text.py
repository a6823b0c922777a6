"""Text the database can hold, the same on SQLite and PostgreSQL.

PostgreSQL's text types cannot hold NUL (U+0000) and neither driver can encode a lone
surrogate (U+D800-U+DFFF); PostgreSQL refuses a string longer than its ``VARCHAR(n)`` while
SQLite stores it whole. Values cleaned and clipped here are stored identically on both, and
never turn a close into a database error.
"""

from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` without NUL characters and with lone surrogates replaced by U+FFFD."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def is_storable(text: str) -> bool:
    """True when :func:`storable` would leave ``text`` unchanged."""
    return _UNSTORABLE.search(text) is None


def length_of(column: sa.Column[str]) -> int | None:
    """The column's size in characters (``VARCHAR(n)``); None when unbounded."""
    length = getattr(column.type, "length", None)
    return int(length) if length is not None else None


def fitted(column: sa.Column[str], value: str | None) -> str | None:
    """``value`` made storable and clipped to the column's size; None when nothing is left.

    For columns whose values are only shown or compared loosely (names, emails, labels):
    a key column must refuse or digest an over-long value instead (see :func:`digest`).
    """
    if value is None:
        return None
    text = storable(value)
    limit = length_of(column)
    if limit is not None:
        text = text[:limit]
    return text or None


def digest(text: str) -> str:
    """A short, stable stand-in for a key too long (or unstorable) to keep as it is:
    ``sha256:`` and 64 hex digits (71 characters)."""
    raw = text.encode("utf-8", "surrogatepass")
    return "sha256:" + hashlib.sha256(raw).hexdigest()
