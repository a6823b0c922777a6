"""Row identities, and admitting a row into a batch unless it was processed before.

A row's identity is a digest of what it *means*, not of how it was written: the submission
time as a UTC instant to the second, the reference, the rating as a number, the comment and
the pre-filled fields as text. The same answers exported again with another timestamp layout,
with the columns in another order, or read through another source kind have the same
identities, so nothing is processed twice. Digests stored before identities existed
(:func:`legacy_fingerprint`) are recognised once and replaced by the identity.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Callable
from collections.abc import Container
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from csat_hook.sync.records import IDENTITY_PREFIX
from csat_hook.sync.records import SkippedRow
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.records import Submission
from csat_hook.sync.records import later_worth_noting
from csat_hook.sync.records import note_later
from csat_hook.sync.records import place
from csat_hook.sync.records import position
from csat_hook.sync.values import as_text

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def identity_text(text: str) -> str:
    """Text as a row identity compares it: line breaks as ``\n``, Unicode NFC (an export may
    write CRLF inside a quoted cell, or decomposed accents where the sheet has composed ones).
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.isascii() else unicodedata.normalize("NFC", text)


def instant(when: datetime) -> str:
    """A submission time as identity text: whole UTC seconds since the epoch (exports show
    seconds; the Forms API has nanoseconds)."""
    return str((when - _EPOCH) // _SECOND)


def row_identity(*parts: str) -> str:
    """The identity of a row made of ``parts``: a fixed-size digest, :data:`IDENTITY_PREFIX`
    first. Frozen: a stored identity must keep matching (migration 0003 has a copy)."""
    payload = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return IDENTITY_PREFIX + hashlib.blake2b(payload, digest_size=16).hexdigest()


def submission_identity(
    submitted_at: datetime,
    token: str,
    rating: int,
    comment: str,
    field_agent: str,
    field_ticket: str,
    nps: int | None = None,
) -> str:
    """A readable answer's identity, from its parsed values (as a Submission holds them).
    The NPS answer is a part only when there is one, so rows without it keep the identity
    they had before NPS was read."""
    parts = [
        "answer",
        instant(submitted_at),
        token,
        str(rating),
        identity_text(comment),
        identity_text(field_agent),
        identity_text(field_ticket),
    ]
    if nps is not None:
        parts.append(f"nps {nps}")
    return row_identity(*parts)


def skipped_identity(values: Mapping[str, Any], submitted_at: datetime | None) -> str:
    """An unreadable row's identity: the time when it could be read, else the raw cells as
    text (``5.0`` and ``"5"`` alike), by role (so column order does not matter)."""
    stamp = (
        instant(submitted_at)
        if submitted_at is not None
        else "?" + as_text(values.get("timestamp"))
    )
    parts = [
        "skipped",
        stamp,
        as_text(values.get("token")),
        "?" + as_text(values.get("rating")),
        identity_text(as_text(values.get("comment"))),
        identity_text(as_text(values.get("agent"))[:255]),
        identity_text(as_text(values.get("ticket"))[:255]),
    ]
    nps = as_text(values.get("nps"))
    if nps:
        parts.append("?nps " + nps)
    return row_identity(*parts)


def legacy_fingerprint(kind: str, values: Mapping[str, Any], extra: str = "") -> str:
    """The digest stored before row identities (0002): raw mapped values and source kind.

    Only used to recognise rows processed by that version (see :func:`admit`).
    """
    # repr keeps types apart (5 vs "5") and is unambiguous with the separator between.
    get = values.get
    payload = "\x1f".join(
        (
            kind,
            extra,
            repr(get("timestamp")),
            repr(get("token")),
            repr(get("rating")),
            repr(get("comment")),
            repr(get("agent")),
            repr(get("ticket")),
        )
    )
    # surrogatepass: the same bytes for any text that version could store, and no error for
    # a lone surrogate in ``extra`` (a Forms responseId; the values are repr'd, escaped).
    return hashlib.blake2b(payload.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def admit(
    batch: SourceBatch,
    item: Submission | SkippedRow,
    known: Container[str],
    seen: dict[str, int],
    *,
    legacy: Callable[[], str] | None,
) -> None:
    """Add ``item`` to ``batch`` unless its identity was processed before (``known``) or
    earlier in this read (``seen``: a double-click submits the same values twice).

    ``seen`` maps each identity admitted in this read to its index in
    ``batch.submissions`` (−1: not there). The same values read again further down are one
    submission placed where the credited one of them is, at its time (the later: a Forms
    response's time has nanoseconds, an identity's whole seconds; in one instant, the row
    further down: ``records.position``), so an edit of the row above is not taken for an edit of the
    credited answer: an incremental run credits what a fresh read of the sheet would. A
    processed identity read again is noted in ``batch.found`` at its lowest row, for the
    same reason (sync/places.py), and in ``batch.later`` with its time when that may be
    later than the stored one (``records.later_worth_noting``). A last row that may have
    been cut (``batch.unterminated``) lends no place.

    ``legacy`` computes the row's legacy digest; it is given when ``known`` still holds
    some (:data:`~csat_hook.sync.records.LEGACY_PRESENT`). A row it matches is unchanged, and
    the pair goes to ``batch.rekeyed`` so its stored digest is replaced by the identity. A
    skipped row is never recognised: skipped rows are read again on every read of the rows.
    """
    identity = item.fingerprint
    if identity in known:
        batch.unchanged += 1
        if isinstance(item, Submission) and later_worth_noting(known, item):
            note_later(batch, item)
        if item.ref != batch.unterminated:
            place(batch.found, identity, item.ref)
        else:
            batch.last_known = identity  # there, though it lends no place
        return
    earlier = seen.get(identity)
    if earlier is not None:
        batch.unchanged += 1
        if earlier >= 0 and isinstance(item, Submission) and item.ref != batch.unterminated:
            first = batch.submissions[earlier]
            # The one a first read credits of the two (attribution.precedence): the later
            # (an identity's time is whole seconds, a Forms response's has nanoseconds),
            # in the same instant the one further down.
            if (item.submitted_at, position(item.ref)) > (first.submitted_at, position(first.ref)):
                batch.submissions[earlier] = first._replace(
                    ref=item.ref, submitted_at=item.submitted_at
                )
        return
    if legacy is not None and isinstance(item, Submission):
        digest = legacy()
        if digest in known:
            seen[identity] = -1
            batch.unchanged += 1
            place(batch.found, identity, item.ref)
            batch.rekeyed.append((digest, identity))
            return
    seen[identity] = len(batch.submissions) if isinstance(item, Submission) else -1
    add_parsed(batch, item)


def add_parsed(batch: SourceBatch, item: Submission | SkippedRow) -> None:
    if isinstance(item, Submission):
        batch.submissions.append(item)
    else:
        batch.skipped.append(item)
