"""Plain values that cross the sync's module boundaries.

Sources turn vendor shapes (sheet rows, CSV records, Forms API JSON) into these; nothing
downstream of a source sees a header, a serial number or a questionId.
"""

from __future__ import annotations

from collections.abc import Container
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any
from typing import NamedTuple

from csat_hook import tokens
from csat_hook.db.text import storable

# A row identity (``Submission.fingerprint``, ``SkippedRow.fingerprint``, the ``fingerprint``
# columns) starts with this; digests written before it (raw cell text and source kind, which
# a re-export changes) do not, and are recognised once and replaced (sources/identity.py).
IDENTITY_PREFIX = "r2-"
# In the set of known fingerprints a source is given: present when legacy digests remain.
LEGACY_PRESENT = "legacy digests present"


class KnownRows(set[str]):
    """The identities of the rows already processed (credited or kept unverified), which a
    source does not return again, and in ``skipped`` those of the rows recorded as skipped
    (identity → reason), which it reads again on every read of its rows (a fixed setting may
    make them readable)."""

    def __init__(
        self, processed: Iterable[str] = (), skipped: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(processed)
        self.skipped: Mapping[str, str] = dict(skipped or {})
        # Raw digests (sources/table.py ``raw_digest``) of rows whose identity is processed:
        # such a row is unchanged without being parsed.
        self.raw: frozenset[str] = frozenset()
        # Stored raw digests of identities no longer processed (cache.known_row_digests).
        self.raw_orphans: tuple[str, ...] = ()
        # The source's watermark before the read (the latest submission time it had listed):
        # a processed identity read at a later time is a copy not met before; and the
        # identities a read of every row weighs again (sync/recredit.py ``Watch``), whose
        # times are at hand: each is noted in ``SourceBatch.later`` (:func:`note_later`).
        self.read_until: datetime | None = None
        self.watched: Container[str] = frozenset()


def later_worth_noting(known: Container[str], submission: Submission) -> bool:
    """Whether the processed identity of ``submission``, given as ``known``, is noted in
    ``SourceBatch.later`` (:func:`note_later`): read at a time after the source's watermark
    (a copy no earlier read met), or watched by a read of every row. Neither for a plain set,
    nor for a source with no watermark (a sheet, an export) outside a read of every row: a
    read of 1,000,000 processed rows holds nothing more."""
    if not isinstance(known, KnownRows) or not submission.submitted_at.microsecond:
        return False
    mark = known.read_until
    return (mark is not None and submission.submitted_at > mark) or (
        submission.fingerprint in known.watched
    )


def raw_of(known: Container[str]) -> Container[str]:
    """The raw digests of processed rows a source was given (none for a plain set)."""
    return known.raw if isinstance(known, KnownRows) else frozenset()


def skipped_of(known: Container[str]) -> Mapping[str, str]:
    """The skipped rows a source was given, identity → reason (none for a plain set)."""
    return known.skipped if isinstance(known, KnownRows) else {}


class _FromFields(tuple):  # type: ignore[type-arg]
    """The type of :data:`FROM_FIELDS`."""

    __slots__ = ()


# ``Submission.cells`` of a source whose row is the submission's own values, one per header
# named by its role (the Forms API: a response's answers by question): the row as read is made
# from the fields when it is asked for (only for an answer that cannot be credited), instead
# of a tuple of the texts as read held with every submission (≈ 160 bytes a response, 160 MB
# of a first read of 1,000,000 responses).
FROM_FIELDS: Sequence[Any] = _FromFields()


class Submission(NamedTuple):
    """One form submission as read, before its reference is checked.

    ``field_agent`` and ``field_ticket`` are the pre-filled values as the respondent left them
    (editable: reported when they disagree with the token, never used to credit).
    ``ref`` says where it came from ("row 17", a Forms responseId). ``fingerprint`` is the
    row's identity, made of parsed values only (see ``sources.identity.submission_identity``). A
    NamedTuple: a first sync builds one per answer, and tuples are the cheapest immutable
    record to build.
    """

    fingerprint: str
    ref: str
    submitted_at: datetime
    rating: int
    comment: str
    token: str
    field_agent: str
    field_ticket: str
    headers: Sequence[str] = ()
    cells: Sequence[Any] = ()  # the row as read (not copied: a first sync holds 100,000)
    nps: int | None = None  # the 0–10 "would you recommend us" answer, when asked

    def named_key(self) -> str:
        """The survey key this submission's reference names, as the ingest credits it:
        ``tokens.survey_key`` of the stripped reference ("" for none)."""
        return tokens.survey_key(self.token.strip())

    def source_row(self) -> dict[str, Any]:
        """The row as read (header → value), kept with answers that cannot be credited; text
        made storable (a cell may hold NUL or a lone surrogate, which no database keeps). A
        title met again is the next free ``Title (2)``, ``Title (3)``.

        With ``cells`` :data:`FROM_FIELDS`, each header is a role and its value the field
        read for it (the rating and the NPS answer as the numbers they read as, the agent and
        ticket fields as stored, at most 255 characters); the timestamp header (the first)
        gets the submission time in RFC 3339 UTC, to the microsecond."""
        if self.cells is FROM_FIELDS:
            return self._row_from_fields()
        row: dict[str, Any] = {}
        for i, (h, v) in enumerate(zip(self.headers, self.cells, strict=False)):
            if v in ("", None):
                continue
            title = storable(str(h)) if h else f"column {i + 1}"
            # Two columns of one title (a question added again, a manager's own column): the
            # second was written over the first, losing what the respondent wrote in it.
            key, n = title, 1
            while key in row:
                n += 1
                key = f"{title} ({n})"
            row[key] = storable(v) if isinstance(v, str) else v
        return row

    def _row_from_fields(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "rating": str(self.rating),
            "comment": self.comment,
            "token": self.token,
            "agent": self.field_agent,
            "ticket": self.field_ticket,
            "nps": None if self.nps is None else str(self.nps),
        }
        row: dict[str, Any] = {}
        for i, header in enumerate(self.headers):
            if i == 0:
                stamp = self.submitted_at.astimezone(UTC).isoformat(timespec="microseconds")
                row[storable(str(header))] = stamp.replace("+00:00", "Z")
                continue
            value = values.get(str(header))
            if value not in ("", None):
                row[storable(str(header))] = value
        return row


@dataclass(frozen=True)
class SkippedRow:
    """A row that is not a readable answer. ``detail`` never quotes the cell (customer text);
    ``fingerprint`` is the row's identity (``sources.identity.skipped_identity``).

    ``role`` is the column at fault (``timestamp``, ``rating``) and ``example`` its cell as
    read, kept only for those two roles (a date or a rating choice, never free text): shown
    to the operator in the run's output, never stored nor logged. ``clocked``: the run's time
    decided the skip (a row dated more than a day after it), so a later run may read the row
    otherwise (never stored: a read with such a row is not remembered, sync/read_memo.py).
    """

    fingerprint: str
    ref: str
    reason: str
    detail: str = ""
    role: str = ""
    example: str = ""
    clocked: bool = False


@dataclass
class SourceBatch:
    """What one read of a source gives: new submissions, new skips and counts."""

    source: str
    submissions: list[Submission] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    rows_read: int = 0
    blank_rows: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)
    watermark: datetime | None = None
    columns: dict[str, str] = field(default_factory=dict)  # role → where it was read from
    # True when the batch holds every row of the source (a CSV file, a responses sheet, the
    # Forms API read in full): the rows recorded as skipped are then exactly this batch's.
    complete: bool = True
    # Rows recorded as skipped by an earlier run that read differently now (an incremental read
    # only): their old records go.
    resolved_skips: list[str] = field(default_factory=list)
    # Rows recognised by a legacy digest: (the digest as in ``known``, the row's identity),
    # for the ingest to store the identity in its place.
    rekeyed: list[tuple[str, str]] = field(default_factory=list)
    # (raw digest, identity) of the readable rows parsed in this read, for the ingest to
    # store: the next run recognises them without parsing.
    raw_digests: list[tuple[str, str]] = field(default_factory=list)
    # The raw digests rows were recognised by in this read (cache.prune_row_digests), each
    # with the number of the lowest row it was read at (sync/places.py).
    raw_seen: dict[str, int] = field(default_factory=dict)
    # Processed identities this read met again other than by a raw digest (parsed, or among
    # rows added since the last read), each at the lowest row it was read at
    # (:func:`place`): where a first read would place a stored answer (sync/places.py).
    found: dict[str, str] = field(default_factory=dict)
    # What a later read needs to parse only the rows added after this read's, for a source
    # that can (ResultsSource.fetch_after); None: a later read reads everything.
    resume: dict[str, Any] | None = None
    # What the source remembers for its next read (ResultsSource.recall: the Forms API's
    # forms.get answer), stored with the batch's ingest; None: what was remembered stays.
    remember: dict[str, Any] | None = None
    # The ref of the source's last row when nothing shows it was written whole (a CSV export
    # whose last record has no line break after it, or ends inside a quoted cell: a file read
    # while it is still being written); the read step leaves it for the next run unless it
    # reads as a complete answer (read_step.leave_cut_row).
    unterminated: str | None = None
    # That last row was taken out of the batch, left for the next run (leave_cut_row): the
    # read met every row but that one, so a stored answer it did not find may be that row's,
    # still being written (the read is no read of every row for sync/recredit.py).
    left_cut: bool = False
    # The processed identity read at that last row (``unterminated``), which lends no place
    # (sync/places.py) but is there: a read of every row found it (sync/recredit.py). A cut
    # row never has a processed identity (its values are not the row's), so this is whole.
    last_known: str | None = None
    # Processed identities this read met at a time that may be later than the stored one
    # (:func:`note_later`): identity → the latest such time, where it was read and the survey
    # key its reference names. A row identity's time is whole seconds; Forms' lastSubmittedTime has
    # nanoseconds, and two responses of one survey alike but for it (a 3, a 4, the 3 again
    # within a second) are one identity, whose time is the later (sync/retime.py).
    later: dict[str, tuple[datetime, str, str]] = field(default_factory=dict)
    # The warning of new submissions dated after the run's time (read_step.warn_after_now):
    # true of the run that credits them only, so a read remembered for replay is remembered
    # without it (read_memo.record). Such rows are processed after that run, and a read of
    # every row meets them unchanged and says nothing; a replay said it again every run,
    # "submitted after now" long after that time, "credited" with nothing credited.
    dated_ahead: str | None = None

    def drop_processed(self, processed: Container[str]) -> None:
        """Count the submissions whose identity is in ``processed`` (of a read given nothing
        as known: a filtered Forms read, the responses of the last hour or so) as unchanged,
        as a read given every processed identity would have, each noted where it was read
        (``found``) and at what time (``later``: :func:`note_later`)."""
        kept = []
        for submission in self.submissions:
            if submission.fingerprint not in processed:
                kept.append(submission)
                continue
            note_later(self, submission)
            if submission.ref != self.unterminated:
                place(self.found, submission.fingerprint, submission.ref)
        self.unchanged += len(self.submissions) - len(kept)
        self.submissions = kept


def note_later(batch: SourceBatch, submission: Submission) -> None:
    """Note in ``batch.later`` that the processed identity of ``submission`` was read at its
    time, when that time is not whole seconds (a Forms response's): the stored row may be at
    an earlier time of the same second (sync/retime.py compares). The latest of the times
    it is read at in this read is kept."""
    when = submission.submitted_at
    if not when.microsecond:
        return  # the earliest of its second: no stored copy is earlier
    noted = batch.later.get(submission.fingerprint)
    if noted is None or (when, position(submission.ref)) > (noted[0], position(noted[1])):
        batch.later[submission.fingerprint] = (when, submission.ref, submission.named_key())


def position(ref: str) -> tuple[int, str]:
    """Where a row sits, for ordering submissions made in the same second: "row 17" by its
    number; anything else (a Forms responseId) before any row, by its text."""
    kind, _, number = ref.partition(" ")
    if kind == "row" and number.isdigit():
        return int(number), ""
    return -1, ref


def place(found: dict[str, str], identity: str, ref: str) -> None:
    """Note that ``identity`` was read at ``ref``: the further down of the two when it was
    read before (a double-click's values are one submission, at its lower row)."""
    earlier = found.get(identity)
    if earlier is None or position(ref) > position(earlier):
        found[identity] = ref
