"""The results-source interface and the row reading every source shares.

A source reads answers where they live (a CSV export, the responses sheet, the Forms API) and
returns a :class:`~csat_hook.sync.records.SourceBatch`: submissions it has not returned
before (``known`` holds the fingerprints already processed), rows it could not read, counts.
It does not check references nor touch the database. :class:`RowParser` turns a row's cells
into a submission or a skipped row carrying its identity (:mod:`.identity`, which also admits
a row into a batch unless it was processed before).
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable
from collections.abc import Container
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import ClassVar
from typing import NamedTuple

from csat_hook.clock import utcnow
from csat_hook.db.text import clipped
from csat_hook.db.text import storable
from csat_hook.sync.cell_text import strip_format
from csat_hook.sync.records import SkippedRow
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.records import Submission
from csat_hook.sync.sources.identity import skipped_identity
from csat_hook.sync.sources.identity import submission_identity
from csat_hook.sync.timestamps import TimestampError
from csat_hook.sync.values import RatingError
from csat_hook.sync.values import RatingScale
from csat_hook.sync.values import as_text
from csat_hook.sync.values import formula_error
from csat_hook.sync.values import is_blank
from csat_hook.sync.values import parse_nps

# The size of the typed agent and ticket fields as stored (db/schema.py: answers' field_agent
# and field_ticket).
FIELD_LIMIT = 255

# When a submission can have been made: a time outside is no answer's time, and the row is
# skipped as ``implausible_timestamp`` (read again every run). A number in a sheet's timestamp
# column (0, a small serial) is a time in 1899 or 1900; a date typed wrong, or a producer's
# clock or a zone setting far off, dates a row years ahead (9999-12-31), where credited it
# outranked every later submission of its survey, topped the reports' latest answers and
# alerted as current. A few hours ahead is credited, with the read step's warning: a zone
# setting a little off dates every recent row so (read_step.warn_after_now).
EARLIEST_SUBMISSION = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)


class ResultsSource(abc.ABC):
    """Base class of results sources; ``kind`` is the ``results.source`` value."""

    kind: ClassVar[str]
    # An incremental source (one that reads from a watermark) reads everything again when its
    # last full read is older than this; None: only the first run and ``sync --full`` do.
    full_read_every: timedelta | None = None
    # The source keeps something across reads (:meth:`recall`, ``SourceBatch.remember``).
    remembers: ClassVar[bool] = False
    # The time the read is made at (:meth:`read_at`); None: the wall clock's.
    _read_at: datetime | None = None

    def read_at(self, now: datetime) -> None:
        """Read as at ``now`` (the run's clock): a row dated more than
        :data:`FUTURE_SLACK` after it is skipped as ``implausible_timestamp``."""
        self._read_at = now

    def now(self) -> datetime:
        """The time the read is made at (:meth:`read_at`, else the wall clock's)."""
        return self._read_at if self._read_at is not None else utcnow()

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: Any, *, sheets: Any = None, forms: Any = None) -> ResultsSource:
        """Build from the configuration (``results.<kind>``) and the API clients it needs."""

    @property
    @abc.abstractmethod
    def key(self) -> str:
        """Identifies this source's state (watermark) across runs."""

    @property
    def identity(self) -> str:
        """Which sheet and tab, file or form the rows are read from (at most 255 characters
        are stored): stored with each unverified answer, so that a read of every row of this
        source forgets only its own that it no longer finds (sync/ingest.py). The
        :attr:`key`, unless a source says more."""
        return self.key

    def recall(self, state: Mapping[str, Any] | None) -> None:
        """Take what this source's last read remembered for the next (its batch's
        ``remember``, sync/read_memo.py), before :meth:`fetch`; None: nothing remembered.
        Called only for a source that :attr:`remembers`."""
        return None  # a source that remembers nothing: nothing to take

    def prefetch(self) -> WholeRead | None:
        """Read the whole source now, for :meth:`fetch` or :meth:`fetch_after` to parse, and
        return the digests of what was read; None for a source that reads incrementally. The
        same digests mean the same rows read the same way (sync/read_memo.py)."""
        return None

    @abc.abstractmethod
    def fetch(self, known: Container[str], watermark: datetime | None) -> SourceBatch:
        """New submissions and unreadable rows, skipping fingerprints in ``known`` (from what
        :meth:`prefetch` read, when it was called)."""

    def fetch_after(self, resume: Mapping[str, Any], known: Container[str]) -> SourceBatch | None:
        """Only the rows added after an earlier read's rows, parsed as :meth:`fetch` parses
        them (first row numbers included), when what :meth:`prefetch` read starts with that
        read's rows; ``resume`` is that read's ``SourceBatch.resume``. None when it does not
        (then :meth:`fetch` reads everything), or for a source that cannot tell."""
        return None


class WholeRead(NamedTuple):
    """The digests of a whole read (:meth:`ResultsSource.prefetch`): ``context`` of what reads
    the bytes besides the settings (a spreadsheet's title, time zone and locale), ``content``
    of the bytes."""

    context: bytes
    content: bytes


class RowParser:
    """Turns one row's role → raw value mapping into a Submission or a SkippedRow.

    ``describe`` returns the timestamp reader's settings as text (zone, day/month order once
    the column was scanned...) and ``warning_count`` how many warnings it has given so far:
    together with the rating scale they say whether a row's cells still mean what they meant
    (:meth:`signature`) and whether reading them said anything (sources/table.py).
    """

    def __init__(
        self,
        ratings: RatingScale,
        to_datetime: Callable[[Any], datetime | None],
        *,
        describe: Callable[[], str] = str,
        warning_count: Callable[[], int] = int,
        now: Callable[[], datetime] = utcnow,
        formulas: bool = True,
    ) -> None:
        self.ratings = ratings
        self.formulas = formulas  # a cell may be a formula's (a sheet's; not a Forms answer)
        self.to_datetime = to_datetime
        self.describe = describe
        self.warning_count = warning_count
        self.now = now

    def _why(self, exc: TimestampError | RatingError, cell: Any) -> tuple[str, str]:
        """A skipped cell's reason and detail: ``formula_error`` for a formula's error."""
        shown = formula_error(cell) if self.formulas else None
        return ("formula_error", shown) if shown else (exc.reason, exc.detail)

    def signature(self) -> str:
        """Everything besides a row's cells that its identity depends on."""
        ratings = self.ratings
        labels = sorted(ratings.labels.items())
        return f"{ratings.low}..{ratings.high} {labels!r} {self.describe()}"

    def parse(
        self,
        values: Mapping[str, Any],
        *,
        ref: str,
        headers: Sequence[str] = (),
        cells: Sequence[Any] = (),
    ) -> Submission | SkippedRow:
        """The row's submission, or why it is skipped; either carries the row's identity.

        A skipped row names the column at fault (``role``) and, for a timestamp or a rating,
        its cell as read (``example``: shown to the operator, never stored nor logged).
        """
        stamp = values.get("timestamp")
        if is_blank(stamp):
            return SkippedRow(
                skipped_identity(values, None),
                ref,
                "missing_timestamp",
                "no submission time",
                "timestamp",
            )
        try:
            submitted_at = self.to_datetime(stamp)
        except TimestampError as exc:
            return SkippedRow(
                skipped_identity(values, None),
                ref,
                *self._why(exc, stamp),
                "timestamp",
                example(stamp),
            )
        except OverflowError:
            # The readers say TimestampError for a date beyond datetime's range; this is the
            # row's last guard, so that no cell ever fails the run.
            return SkippedRow(
                skipped_identity(values, None),
                ref,
                "bad_timestamp",
                "a date-time outside the years 1-9999",
                "timestamp",
                example(stamp),
            )
        if submitted_at is None:
            return SkippedRow(
                skipped_identity(values, None),
                ref,
                "bad_timestamp",
                "the timestamp cell is not a date-time",
                "timestamp",
                example(stamp),
            )
        implausible = self._implausible(submitted_at)
        if implausible:
            return SkippedRow(
                skipped_identity(values, submitted_at),
                ref,
                "implausible_timestamp",
                implausible,
                "timestamp",
                example(stamp),
                clocked=submitted_at >= EARLIEST_SUBMISSION,  # ahead of the run's time
            )
        raw_rating = values.get("rating")
        try:
            rating = self.ratings.parse(raw_rating)
        except RatingError as exc:
            return SkippedRow(
                skipped_identity(values, submitted_at),
                ref,
                *self._why(exc, raw_rating),
                "rating",
                example(raw_rating),
            )
        raw_nps = values.get("nps")
        try:
            nps = parse_nps(raw_nps)
        except RatingError as exc:
            return SkippedRow(
                skipped_identity(values, submitted_at),
                ref,
                *self._why(exc, raw_nps),
                "nps",
                example(raw_nps),
            )
        # Text the database can hold (no NUL, no lone surrogate: a cell may carry either),
        # so an answer never turns into a database error the next run meets again.
        comment = storable(as_text(values.get("comment")))
        # A reference or ticket never holds a format character: one at an edge (a zero-width
        # space a copy left) is no part of it, as a space there is not. A NUL in a reference
        # is kept as U+FFFD, not dropped as storable drops it from other text: dropped, an
        # edited reference ("ab\x00c") verified as the one it was edited from.
        token = storable(strip_format(as_text(values.get("token"))).replace("\x00", "\ufffd"))
        typed_agent = storable(as_text(values.get("agent")))
        # A name stored clipped as intake clips one (db.text.clipped: never half an emoji);
        # the row's identity keeps the plain cut it was first read with, so a row read
        # before is the same row.
        field_agent = clipped(typed_agent, FIELD_LIMIT)
        field_ticket = storable(strip_format(as_text(values.get("ticket"))))[:FIELD_LIMIT]
        identity = submission_identity(
            submitted_at, token, rating, comment, typed_agent[:FIELD_LIMIT], field_ticket, nps
        )
        # In field order, not by keyword: once per row, and a NamedTuple's keywords cost
        # 0.8 µs of the 1.3 it takes to build one.
        return Submission(
            identity,  # fingerprint
            ref,
            submitted_at,
            rating,
            comment,
            token,
            field_agent,
            field_ticket,
            headers,
            cells,
            nps,
        )

    def _implausible(self, submitted_at: datetime) -> str:
        """Why ``submitted_at`` is no submission's time (:data:`EARLIEST_SUBMISSION`,
        :data:`FUTURE_SLACK`); empty when it may be one. The time is shown, never a text."""
        if submitted_at < EARLIEST_SUBMISSION:
            return (
                f"dated {_shown(submitted_at)}, before {EARLIEST_SUBMISSION:%Y-%m-%d}: no "
                "answer's time (a number such as 0 in the timestamp column is a time in 1899 "
                "or 1900, or a year typed wrong); the row is read again every run"
            )
        latest = self.now() + FUTURE_SLACK
        if submitted_at > latest:
            return (
                f"dated {_shown(submitted_at)}, more than a day after this run's time: no "
                "answer's time yet (a year typed wrong, or a clock or time zone far off); the "
                "row is read again every run, and credited once the run's time comes within a "
                "day of it"
            )
        return ""


def _shown(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def bytes_digest(data: bytes | memoryview) -> bytes:
    """A digest of bytes read (:class:`WholeRead`)."""
    return bytes_hash(data).digest()


def bytes_hash(data: bytes | memoryview) -> hashlib.blake2b:
    """:func:`bytes_digest`'s hash of ``data`` (blake2b-256), open for more: its ``digest()``
    is :func:`bytes_digest` of ``data``, and after ``update(more)`` of ``data`` and ``more``
    (a later read's rows go on from the earlier rows' hash: sources/appended.py)."""
    return hashlib.blake2b(data, digest_size=32)


def example(value: Any) -> str:
    """A timestamp or rating cell as the operator may be shown it: one line, at most 60
    characters (a rating choice or a date, never a comment)."""
    text = " ".join(as_text(value).split())
    return text if len(text) <= 60 else text[:57] + "..."
