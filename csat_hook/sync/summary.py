"""What a sync run did (``--json`` prints it), and the run's time and memory bookkeeping."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from csat_hook.sync.ingest import IngestResult
from csat_hook.sync.records import SourceBatch


@dataclass
class SyncSummary:
    """What a run did; ``--json`` prints it as is."""

    status: str = "ok"
    dry_run: bool = False
    source: str = ""
    # How the source was read (sync/read_step.py): "read" (every row), "appended" (only the
    # rows added since the last read), "replayed" (the same bytes: nothing parsed).
    read: str = ""
    rows_read: int = 0
    blank_rows: int = 0
    unchanged: int = 0
    new: int = 0
    updated: int = 0
    edited_in_place: int = 0
    history_only: int = 0
    edited_fields: int = 0
    unverified: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    unverified_rows: list[dict[str, str]] = field(default_factory=list)
    # Answers kept as forged that a secret added to token.previous_secrets since now verifies:
    # credited by this run (sync/reverify.py), and no longer unverified.
    reverified: int = 0
    # Answers this run made their survey's answer dated before it was sent (beyond the clock
    # skew allowed), where the answer replaced was not: what is new, not said again at an edit
    # or a read of every row; credited in their survey's period; a clock or a zone setting is off
    # (ingest.IngestResult.before_sent). ``before_sent_first``: the first one's row and how
    # many minutes before.
    before_sent: int = 0
    before_sent_first: dict[str, Any] | None = None
    skipped_rows: list[dict[str, str]] = field(default_factory=list)
    agents: int = 0
    # The report: "built", or "unchanged" when every output already held it (not rebuilt).
    report: str = ""
    totals: dict[str, Any] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # data_error: the reasons that skipped a large share of the rows (sync.skips.SkipProblem)
    problems: list[dict[str, Any]] = field(default_factory=list)
    waiting_for: str | None = None  # the results export that is not there yet
    # Alerts raised by this run (by rule), deliveries queued and held by a cap (empty: off).
    alerts: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0
    phases_ms: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    # A config_error a periodic sync reports and goes on after (errors.SourceConfigError: the
    # source lacks a tab the configuration names); not printed: the status and error say it.
    goes_on: bool = False

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["goes_on"]
        data["unverified_total"] = sum(self.unverified.values())
        data["skipped_total"] = sum(self.skipped.values())
        return data

    def absorb(self, batch: SourceBatch, result: IngestResult) -> None:
        self.rows_read, self.blank_rows = batch.rows_read, batch.blank_rows
        self.unchanged = batch.unchanged
        self.warnings.extend(batch.warnings)
        self.warnings.extend(result.warnings)
        column = batch.columns.get("ticket", "ticket")
        self.warnings.extend(
            f"{ref}: the {column} column holds the ticket id rounded, as a spreadsheet program "
            "shows a long number (the export was opened and saved in one?): it cannot be "
            "read back nor compared with the ticket the reference names; the answer is "
            "credited by its signed reference"
            for ref in result.rounded_tickets
        )
        self.new, self.updated = result.new, result.updated
        self.edited_in_place = result.edited_in_place
        self.history_only, self.edited_fields = result.history_only, result.edited_fields
        self.unverified, self.skipped = dict(result.unverified), dict(result.skipped)
        self.unverified_rows, self.skipped_rows = result.unverified_rows, result.skipped_rows
        self.before_sent = result.before_sent
        if result.before_sent_first is not None:
            ref, early = result.before_sent_first
            self.before_sent_first = {"row": ref, "minutes": round(early.total_seconds() / 60)}


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for the length of a sync.

    A sync of 100,000 answers holds several hundred thousand small objects until it ends; the
    collector would walk all of them again every few thousand allocations (seconds, in total,
    on a first sync). They form no garbage cycles worth collecting early: collect once after.
    Reference counting still frees everything as usual.

    The collection after looks at the young generations only (what the run made), and at
    every generation after every :data:`FULL_COLLECTION_EVERY` runs. A runner that lives
    across runs keeps its last dataset and rows (hundreds of thousands of objects, old by
    then), and a full collection walked them all after every run (≈ 0.1–0.2 s). Python's own
    full collections cannot be counted on instead: the collector is off through a run, and
    a periodic sync makes too few objects between runs for one to start; and cyclic garbage
    does reach the oldest generation (objects a run still held when it ended, freed by the
    next; what :func:`cycles_freed_as_made` thaws goes there): without a full collection
    now and then it would only grow.
    """
    global _runs_since_full_collection
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        _runs_since_full_collection += 1
        if _runs_since_full_collection >= FULL_COLLECTION_EVERY:
            _runs_since_full_collection = 0
            gc.collect()
        else:
            gc.collect(1)


# Runs ended with a young collection since the last full one (cyclic_gc_paused): the
# cyclic garbage of at most this many runs waits in the oldest generation.
FULL_COLLECTION_EVERY = 10
_runs_since_full_collection = 0


@contextlib.contextmanager
def cycles_freed_as_made() -> Iterator[Callable[[], None]]:
    """Set aside every object that exists now from the cycle collector (``gc.freeze``) and
    give a function that frees the reference cycles made since, walking only the objects
    made since; everything is handed back to the collector on leaving.

    For a loop that makes cyclic garbage while :func:`cyclic_gc_paused` holds the collector
    off: each part of a first sync's ingest compiles a few dozen look-up statements
    (SQLAlchemy's compiled statements are reference cycles, and they hold their parameters:
    500 references each), about 750 objects that only a collection frees. Left to the end
    of the run, ten parts' worth kept ≈ 40 MB of RSS that no later phase got back (the
    write phase's peak stacked on it). A full collection per part walked every object the
    read holds (≈ 150 ms each); with those set aside it takes ≈ 10 ms. Freezing and thawing
    are constant time (the generations' lists are spliced). This thaws whatever was frozen
    before too: nothing else in a sync's process freezes objects.
    """
    gc.freeze()
    try:
        yield _collect
    finally:
        gc.unfreeze()


def _collect() -> None:
    gc.collect()


class PhaseClock:
    """Milliseconds spent per phase, for the summary (where does a slow sync spend time)."""

    def __init__(self, into: dict[str, int]) -> None:
        self.into = into
        self.last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.into[name] = int((now - self.last) * 1000)
        self.last = now
