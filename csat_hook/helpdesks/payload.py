"""What adapters share to read a vendor payload: paths into JSON, labels and ids as text (ids
type-checked), required objects and ids, timestamps in any of the usual spellings, and a
digest of the document for closes that carry no occurrence."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import Any

from csat_hook.db.text import storable
from csat_hook.errors import BadPayloadError

# The path segments RFC 3986 removes (and "%2E" is "."): never an id (:func:`as_id`).
DOT_SEGMENTS = frozenset({".", ".."})
# What a template may pad an id with (spaces, tabs, line breaks): trimmed from ids. Not
# ``str.strip()``'s set, which also drops NEL, no-break and ideographic spaces and the
# separators U+001C-U+001F: "S\x85" would be ticket "S" (its reply posted there).
ID_PADDING = " \t\n\r\f\v"
_INDEX = re.compile(r"-?[0-9]+")  # a list index: ASCII digits ("²" is a digit to isdigit)


def dig(data: Any, path: str) -> Any:
    """``data["a"]["b"][0]`` for ``"a.b.0"``; None when any step is missing."""
    current = data
    for part in path.split("."):
        # A decoded body's objects are dicts: the ABC's isinstance only for other mappings.
        if current.__class__ is dict or isinstance(current, Mapping):
            current = current.get(part)
        elif isinstance(current, list) and _INDEX.fullmatch(part):
            index = int(part)
            current = current[index] if -len(current) <= index < len(current) else None
        else:
            return None
        if current is None:
            return None
    return current


def as_text(value: Any, *, limit: int | None = None) -> str | None:
    """A scalar as a trimmed string (ints stay exact); None for missing, empty or non-scalar.

    For labels (names, statuses, channels): lenient about types, never clipped unless
    ``limit`` says so (the database's column sizes are applied in one place, at intake). Ids go
    through :func:`as_id`, which refuses the wrong types.
    """
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if limit is not None:
        text = text[:limit]
    return text or None


def trim_id(text: str) -> str:
    """An id's text without the padding a template may add (:data:`ID_PADDING`)."""
    return text.strip(ID_PADDING)


def as_id(value: Any, field: str) -> str | None:
    """An id as text: a string (:func:`trim_id`) or an integer; None when missing or empty.

    Raises :class:`BadPayloadError` naming ``field`` for any other type (``true``, ``5.0``,
    an object, a list): an id of the wrong type is a malformed webhook, not an unknown id;
    and for ``.`` or ``..``, which a URL path cannot carry as a segment, also once stored
    (``".\\u0000"`` is stored as ``"."``: intake removes NUL characters).
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = trim_id(value)
        stored = storable(text)
        if stored in DOT_SEGMENTS:
            # Ids go into the helpdesk's API paths, one segment each: "/dialogs/../messages"
            # is "/messages" to every HTTP client and server (RFC 3986 removes dot segments,
            # escaped or not), so the reply would go to another endpoint.
            raise BadPayloadError(
                f"{field} is {stored!r}, which no URL path can carry as an id", code="bad_id"
            )
        return text or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise BadPayloadError(
        f"{field} must be a string or an integer, not {_json_type(value)}", code="bad_id"
    )


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a fraction"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def document_digest(document: Any) -> str:
    """A close's occurrence when the payload names none: a digest of the parsed document, not
    of the bytes, so the same close sent again with other whitespace, key order or escapes is
    recognised (vendors re-serialise a payload between retries; a body's key appears once,
    see ``_unique_keys`` in records)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()[:32]


def require_object(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise BadPayloadError("the JSON body must be an object", code="not_an_object")
    return payload


def require_document(payload: Any) -> None:
    """BadPayloadError unless ``payload`` is an object or an array (:func:`require_object`
    for adapters that take only an object): the generic mapping finds no event in a scalar,
    and a sender that JSON-encodes its document twice posts a string, which was answered 200
    "ignored" (the vendor stops; the close is lost)."""
    if isinstance(payload, Mapping | list):
        return
    if isinstance(payload, str):
        what = "a string (was the document JSON-encoded twice?)"
    elif payload is None:
        what = "null"
    elif isinstance(payload, bool):
        what = "a boolean"
    else:
        what = "a number"
    raise BadPayloadError(
        f"the JSON body must be an object or an array, not {what}", code="not_an_object"
    )


def require_id(payload: Any, path: str, what: str) -> str:
    """The id at ``path`` (see :func:`dig` and :func:`as_id`); BadPayloadError when missing."""
    value = as_id(dig(payload, path), path)
    if value is None:
        raise BadPayloadError(f"{what} is missing ({path})", code="missing_field")
    return value


def parse_timestamp(value: Any) -> datetime | None:
    """Unix seconds or milliseconds (number or text), or ISO 8601; None when unreadable.

    Never raises: integers too large for a float, infinities, NaN and instants outside the
    years 1-9999 in UTC are unreadable, like any other nonsense. The result is in UTC: a
    time written with an offset at either end of the calendar (``9999-12-31T23:59:59-05:00``)
    has no UTC instant a datetime holds, and converting it later (to store it) would raise.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        try:
            value = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
                return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            except (ValueError, OverflowError):
                return None
    if not isinstance(value, int | float):
        return None
    try:
        number = float(value)  # OverflowError for integers beyond a float's range
        if number > 1e11:  # milliseconds
            number /= 1000
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_timestamps(*values: Any) -> tuple[datetime, ...]:
    """Each of ``values`` that :func:`parse_timestamp` reads, in the order given: a close's
    candidate times, the vendor's preferred field first (``DialogClosed.close_times``)."""
    return tuple(when for when in map(parse_timestamp, values) if when is not None)
