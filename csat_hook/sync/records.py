"""Plain values that cross the sync's module boundaries.

Sources turn vendor shapes (sheet rows, CSV records, Forms API JSON) into these; nothing
downstream of a source sees a header, a serial number or a questionId.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any
from typing import NamedTuple


class Submission(NamedTuple):
    """One form submission as read, before its reference is checked.

    ``field_agent`` and ``field_ticket`` are the pre-filled values as the respondent left them
    (editable: reported when they disagree with the token, never used to credit).
    ``ref`` says where it came from ("row 17", a Forms responseId). A NamedTuple: a first
    sync builds one per answer, and tuples are the cheapest immutable record to build.
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

    def source_row(self) -> dict[str, Any]:
        """The row as read (header → value), kept with answers that cannot be credited."""
        return {
            h or f"column {i + 1}": v
            for i, (h, v) in enumerate(zip(self.headers, self.cells, strict=False))
            if v not in ("", None)
        }


@dataclass(frozen=True)
class SkippedRow:
    """A row that is not a readable answer. ``detail`` never quotes the cell (customer text).

    ``role`` is the column at fault (``timestamp``, ``rating``) and ``example`` its cell as
    read, kept only for those two roles (a date or a rating choice, never free text): shown
    to the operator in the run's output, never stored nor logged.
    """

    fingerprint: str
    ref: str
    reason: str
    detail: str = ""
    role: str = ""
    example: str = ""


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
