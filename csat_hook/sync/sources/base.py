"""The results-source interface and the row reading every source shares.

A source reads answers where they live (a CSV export, the responses sheet, the Forms API) and
returns a :class:`~csat_hook.sync.records.SourceBatch`: submissions it has not returned
before (``known`` holds the fingerprints already processed), rows it could not read, counts.
It does not check references nor touch the database.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable
from collections.abc import Container
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from typing import ClassVar

from csat_hook.sync.records import SkippedRow
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.records import Submission
from csat_hook.sync.timestamps import TimestampError
from csat_hook.sync.values import RatingError
from csat_hook.sync.values import RatingScale
from csat_hook.sync.values import as_text
from csat_hook.sync.values import is_blank


class ResultsSource(abc.ABC):
    """Base class of results sources; ``kind`` is the ``results.source`` value."""

    kind: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def from_config(cls, config: Any, *, sheets: Any = None, forms: Any = None) -> ResultsSource:
        """Build from the configuration (``results.<kind>``) and the API clients it needs."""

    @property
    @abc.abstractmethod
    def key(self) -> str:
        """Identifies this source's state (watermark) across runs."""

    @abc.abstractmethod
    def fetch(self, known: Container[str], watermark: datetime | None) -> SourceBatch:
        """New submissions and unreadable rows, skipping fingerprints in ``known``."""


def fingerprint(kind: str, values: Mapping[str, Any], extra: str = "") -> str:
    """A digest of a submission's mapped values: the same submission read again matches.

    Only mapped roles count, so a manager's notes in an extra column, a re-sorted sheet or a
    row pushed down by a new submission do not make a row look new. The role order is part
    of the digest: changing it makes every row look new once (harmless, but a full re-read).
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
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()


class RowParser:
    """Turns one row's role → raw value mapping into a Submission or a SkippedRow."""

    def __init__(self, ratings: RatingScale, to_datetime: Callable[[Any], datetime | None]) -> None:
        self.ratings = ratings
        self.to_datetime = to_datetime

    def parse(
        self,
        values: Mapping[str, Any],
        *,
        fingerprint: str,
        ref: str,
        headers: Sequence[str] = (),
        cells: Sequence[Any] = (),
    ) -> Submission | SkippedRow:
        stamp = values.get("timestamp")
        if is_blank(stamp):
            return SkippedRow(
                fingerprint, ref, "missing_timestamp", "no submission time", "timestamp"
            )
        try:
            submitted_at = self.to_datetime(stamp)
        except TimestampError as exc:
            return SkippedRow(fingerprint, ref, exc.reason, exc.detail, "timestamp", example(stamp))
        if submitted_at is None:
            return SkippedRow(
                fingerprint,
                ref,
                "bad_timestamp",
                "the timestamp cell is not a date-time",
                "timestamp",
                example(stamp),
            )
        rating = values.get("rating")
        try:
            score = self.ratings.parse(rating)
        except RatingError as exc:
            return SkippedRow(fingerprint, ref, exc.reason, exc.detail, "rating", example(rating))
        return Submission(
            fingerprint=fingerprint,
            ref=ref,
            submitted_at=submitted_at,
            rating=score,
            comment=as_text(values.get("comment")),
            token=as_text(values.get("token")),
            field_agent=as_text(values.get("agent"))[:255],
            field_ticket=as_text(values.get("ticket"))[:255],
            headers=headers,
            cells=cells,
        )


def example(value: Any) -> str:
    """A timestamp or rating cell as the operator may be shown it: one line, at most 60
    characters (a rating choice or a date, never a comment)."""
    text = " ".join(as_text(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def add_parsed(batch: SourceBatch, item: Submission | SkippedRow) -> None:
    if isinstance(item, Submission):
        batch.submissions.append(item)
    else:
        batch.skipped.append(item)
