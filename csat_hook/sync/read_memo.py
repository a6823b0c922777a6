"""One digest over a whole read: the same responses sheet (or CSV export) read again with
nothing changed is recognised from its bytes, without decoding, parsing or recognising a
single row.

A whole-reading source (``gsheets``, ``csv``) hands the runner a digest of the bytes it read
and of what it read them with (the spreadsheet's time zone and locale: ``prefetch``). The
memo's key adds every setting of ``results`` and ``metrics`` and the code (:func:`memo_key`).

Why a replayed read is the read the rows would give. What a source returns is a function of
its bytes, its settings, the code and the identities already processed (``known``). The
first three are the key (but for a responses sheet's comments read as shown,
``sources/sheet_comments.py``, which no byte of the read holds: a change of such a cell's
format alone is read at the next read of every row, as docs/sync.md says). ``known`` is
represented by the number of processed rows: answers, their history and unverified answers
are written only by the sync's ingest, never deleted by csat-hook, and the memo is written
in the ingest's own transaction with the count that transaction leaves; a row deleted by
hand, or another source's rows ingested in between, change the count and the memo is not
used. A memo is written only for a clean read (every
row of the source, no legacy digest re-keyed, and any rows skipped as :func:`clean` says):
every readable row of it was stored, so reading it again row by row would find each one
unchanged, and the replay says exactly that (the same counts, warnings and columns) and
stores nothing.

Skipped rows. An unreadable row is read again on every read of the rows (``skips.py``:
fixing a setting credits it), but what it reads as is a function of the key too. Not
remembered: a read with a skip decided outside its row (a row dated ahead, which the run's
clock decides, where one dated before 2000 is implausible at any time; :data:`_NOT_KEPT`: a
row of titles again, below which every row is skipped; a day/month order the whole column
settles), and skips that fail the run (the failure quotes one of the cells, which is never
stored). The memo keeps the others (identity, row, reason, detail, column; a few hundred fit
in :data:`MAX_OUTCOME_BYTES`), the replay gives them back for the ingest to record as a read
does, and a replay is refused while any of them is no longer on record (``load``'s
``recorded``: deleted by hand, or forgotten by another source's read). So a sheet with a few
unreadable rows, the usual sheet, is not read row by row every run.

Any other read of every row (a form's every response, one whose skips are not kept) leaves
only how many data rows it found, under no settings, which no read replays (:func:`record`,
:func:`last_rows`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_source_reads
from csat_hook.db.schema import unverified_answers
from csat_hook.sync.config import SyncSettings
from csat_hook.sync.records import SkippedRow
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.report_key import code_identity
from csat_hook.sync.skips import judge
from csat_hook.sync.sources.base import WholeRead
from csat_hook.sync.values import READING_VERSION

# An outcome bigger than this (thousands of warnings, hundreds of skipped rows) is not kept:
# the rows are read instead.
MAX_OUTCOME_BYTES = 65_536
# How much of each column title a read that is not remembered keeps (:func:`record`).
_TITLE_KEPT = 200
# Skips a replay, or a read of the rows added alone, would not give again: a read with one
# of them is not remembered (nor with a row the run's clock skipped, SkippedRow.clocked: a
# row dated ahead; one dated before 2000 is implausible at any time).
_NOT_KEPT = {
    # A row of titles again: every row below it is skipped, which only a read that meets
    # that row knows (sources/table.py); rows added below would be read by row 1's titles.
    "columns_differ",
    # The day/month order is the whole column's: rows added may settle it.
    "ambiguous_date_order",
    "mixed_date_order",
}


@dataclass(frozen=True)
class MemoKeys:
    """A whole read's keys: ``settings`` covers everything that reads the bytes (settings,
    code, the source's reading context), ``digest`` that and the bytes too."""

    settings: str
    digest: str

    @classmethod
    def of(cls, config: SyncSettings, source_key: str, whole: WholeRead) -> MemoKeys:
        return cls(
            memo_key(config, source_key, b"context " + whole.context),
            memo_key(config, source_key, b"bytes " + whole.context + whole.content),
        )


@dataclass(frozen=True)
class ReadMemo:
    """A source's last clean whole read: its key, what it found, and the rows it skipped, in
    order (their example cells are not kept: a read whose skips fail the run is not
    remembered, so none is shown)."""

    digest: str
    outcome: dict[str, Any]
    skipped: tuple[SkippedRow, ...] = ()

    @property
    def resume(self) -> dict[str, Any] | None:
        """What the source needs to parse only rows added since (``SourceBatch.resume``)."""
        resume = self.outcome.get("resume")
        return resume if isinstance(resume, dict) else None

    def replay(self, source: str) -> SourceBatch:
        """The batch the rows would give again: all of them unchanged, nothing to store."""
        outcome = self.outcome
        batch = SourceBatch(source=source)
        batch.rows_read = int(outcome["rows_read"])
        batch.blank_rows = int(outcome["blank_rows"])
        batch.skipped = list(self.skipped)
        batch.unchanged = batch.rows_read - batch.blank_rows - len(batch.skipped)
        batch.warnings = [str(w) for w in outcome["warnings"]]
        batch.columns = {str(k): str(v) for k, v in outcome["columns"].items()}
        return batch

    def extend(self, added: SourceBatch, processed: Container[str]) -> None:
        """Make ``added`` (the rows after this read's, read with nothing known) the batch of
        the whole source: this read's rows count as read and unchanged (every one of them was
        stored), and added submissions already processed are unchanged, not new (and found:
        below every earlier row, each is its identity's lowest row)."""
        rows_read, blank_rows = int(self.outcome["rows_read"]), int(self.outcome["blank_rows"])
        skipped = self.skipped
        added.rows_read += rows_read
        added.blank_rows += blank_rows
        added.unchanged += rows_read - blank_rows - len(skipped)
        # This read's skipped rows are above the added ones: the batch is the whole source's,
        # whose skipped rows are exactly its own (skips.record_rereads). An added row that
        # skips as one of them did is the same row again, unchanged, as a read of every row
        # counts it (identity.admit).
        above = {skip.fingerprint for skip in skipped}
        again = [skip for skip in added.skipped if skip.fingerprint in above]
        added.unchanged += len(again)
        added.skipped = [*skipped, *(s for s in added.skipped if s.fingerprint not in above)]
        added.drop_processed(processed)


def _skipped_rows(outcome: dict[str, Any]) -> tuple[SkippedRow, ...] | None:
    """The skipped rows an outcome lists (:func:`record`); None when it lists them otherwise
    than :func:`record` writes them (not a memo to replay)."""
    rows = outcome.get("skipped", [])
    if not isinstance(rows, list):
        return None
    skipped = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 5 and all(isinstance(v, str) for v in row)):
            return None
        skipped.append(SkippedRow(*row))
    return tuple(skipped)


def memo_key(config: SyncSettings, source_key: str, source_digest: bytes) -> str:
    """A key under every setting of ``results`` and ``metrics`` and the code, of what the
    source gives (keyed by the token secret: the stored value says nothing about the sheet
    to whoever reads the database)."""
    settings = {
        "source": source_key,
        "results": config.results.model_dump(mode="json"),
        "metrics": config.metrics.model_dump(mode="json"),
        "code": code_identity(),
        # The rows' digests are under it (sources/table.py): a memo must not replay a read
        # whose rows a new reading would read again.
        "reading": READING_VERSION,
    }
    message = json.dumps(settings, sort_keys=True, default=str).encode() + b"\x00" + source_digest
    secret = config.token.all_secrets()[0].encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def known_count(conn: sa.Connection) -> int:
    """How many processed rows there are (the rows ``store.known_fingerprints`` reads)."""
    counts = [
        sa.select(sa.func.count()).select_from(answers).where(answers.c.fingerprint.is_not(None)),
        sa.select(sa.func.count()).select_from(answer_history),
        sa.select(sa.func.count()).select_from(unverified_answers),
    ]
    return sum(int(conn.execute(query).scalar_one()) for query in counts)


def load(
    conn: sa.Connection, source_key: str, keys: MemoKeys, recorded: Container[str]
) -> ReadMemo | None:
    """The memo of ``source_key`` if its last clean read was under ``keys.settings``, the
    processed rows are still the ones it left, and each row it skipped is still among the
    ``recorded`` skipped rows (their identities); else None (read the rows)."""
    table = sync_source_reads
    row = conn.execute(
        sa.select(table.c.digest, table.c.known_count, table.c.outcome).where(
            table.c.source == source_key[:255]
        )
    ).one_or_none()
    if row is None or not isinstance(row.outcome, dict):
        return None
    if row.outcome.get("settings") != keys.settings:
        return None
    if int(row.known_count) != known_count(conn):
        return None
    skipped = _skipped_rows(row.outcome)
    if skipped is None or any(skip.fingerprint not in recorded for skip in skipped):
        return None
    return ReadMemo(row.digest, row.outcome, skipped)


def last_rows(conn: sa.Connection, source_key: str) -> int | None:
    """How many data rows (not blank) the last read of every row of ``source_key`` that found
    some found, under whatever settings, clean or not (:func:`record`); None: none remembered
    (no such read yet, or only under code that remembered a clean read alone)."""
    table = sync_source_reads
    outcome = conn.execute(
        sa.select(table.c.outcome).where(table.c.source == source_key[:255])
    ).scalar_one_or_none()
    if not isinstance(outcome, dict):
        return None
    try:
        return int(outcome["rows_read"]) - int(outcome["blank_rows"])
    except (KeyError, TypeError, ValueError):
        return None


def last_columns(conn: sa.Connection, source_key: str) -> dict[str, str] | None:
    """Role → the column title it was read from at the last read of every row of
    ``source_key`` that is remembered (:func:`record`), under whatever settings; None: none
    remembered, or one made by code that kept no columns with a read that was not clean."""
    table = sync_source_reads
    outcome = conn.execute(
        sa.select(table.c.outcome).where(table.c.source == source_key[:255])
    ).scalar_one_or_none()
    columns = outcome.get("columns") if isinstance(outcome, dict) else None
    if not isinstance(columns, dict):
        return None
    return {str(role): str(title) for role, title in columns.items()}


def clean(batch: SourceBatch, *, max_share: float, min_rows: int) -> bool:
    """Whether a replay of ``batch`` would be the read its rows give, and a read of the rows
    added to it alone the read of them all (module docstring): every row read, none
    re-keyed, none skipped for a reason outside the row (:data:`_NOT_KEPT`, the run's clock),
    and its skips no
    failure of the run under ``max_share`` and ``min_rows`` (``results``' settings, under the
    memo's key). Every skip counts as recorded before: a replay's are, and a row new to the
    run that read them is judged in that run."""
    if not batch.complete or batch.rekeyed:
        return False
    if not batch.skipped:
        return True
    if any(skip.reason in _NOT_KEPT or skip.clocked for skip in batch.skipped):
        return False
    recorded = {skip.fingerprint for skip in batch.skipped}
    return not judge(batch, recorded, max_share=max_share, min_rows=min_rows)


def record(
    conn: sa.Connection,
    source_key: str,
    keys: MemoKeys | None,
    batch: SourceBatch,
    now: datetime,
    *,
    max_share: float,
    min_rows: int,
) -> None:
    """After ``batch`` was ingested in this transaction: remember it when it is clean and has
    keys, else forget the source's memo (its rows are read next time).

    A batch not remembered so that is a read of every row (``batch.complete``: a sheet or
    export whose skipped rows are not kept, a form's every response, which has no bytes to
    key: ``keys`` None) with data rows leaves how many it found (:func:`last_rows`, for the
    warning of a source read with none: ``read_step.hold_emptied``) and which columns it
    read each role from (:func:`last_columns`, for ``read_step.check_columns_kept``), under
    no settings: never replayed.
    """
    table = sync_source_reads
    key = source_key[:255]
    outcome: dict[str, Any] = {
        "settings": keys.settings if keys is not None else None,
        "rows_read": batch.rows_read,
        "blank_rows": batch.blank_rows,
        # Not the warning of rows dated ahead: that run's only (SourceBatch.dated_ahead).
        "warnings": [w for w in batch.warnings if w != batch.dated_ahead],
        "columns": dict(batch.columns),
        "resume": batch.resume,
        # Identity, row, reason, detail, column: SkippedRow's fields but the example cell.
        "skipped": [[s.fingerprint, s.ref, s.reason, s.detail, s.role] for s in batch.skipped],
    }
    # ASCII JSON: a warning may quote a header holding NUL or a lone surrogate, which neither
    # database stores as text; escaped, it is plain ASCII.
    text = json.dumps(outcome, ensure_ascii=True)
    if (
        keys is not None
        and clean(batch, max_share=max_share, min_rows=min_rows)
        and len(text) <= MAX_OUTCOME_BYTES
    ):
        values = {
            "digest": keys.digest,
            "known_count": known_count(conn),
            "outcome": outcome,
            "read_at": now,
        }
    elif batch.complete and batch.rows_read > batch.blank_rows:
        # No settings: load() finds no memo in it, only last_rows() its count and
        # last_columns() the columns it read (read_step.check_columns_kept).
        counts = {
            "settings": None,
            "rows_read": batch.rows_read,
            "blank_rows": batch.blank_rows,
            # Each title cut short: a pasted document as a title is never stored whole (a
            # clean read's are, within MAX_OUTCOME_BYTES).
            "columns": {role: title[:_TITLE_KEPT] for role, title in batch.columns.items()},
        }
        values = {"digest": "", "known_count": 0, "outcome": counts, "read_at": now}
    else:
        conn.execute(sa.delete(table).where(table.c.source == key))
        return
    stmt = dialect_insert(conn.dialect.name, table).values(source=key, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["source"], set_=values))


def _remembered_key(source_key: str) -> str:
    # A row of its own beside the source's memo (whose key is the source's key).
    return f"remembered {source_key}"[:255]


def remember(conn: sa.Connection, source_key: str, state: dict[str, Any], now: datetime) -> None:
    """Keep ``state`` (``SourceBatch.remember``) for the next reads of ``source_key`` (:func:
    `recalled`), in the ingest's transaction: a run that fails remembers nothing. Only a cache,
    as the memo is: without it the source asks again (the Forms API: forms.get)."""
    values = {
        "digest": "",
        "known_count": 0,
        "outcome": {"remembered": state},
        "read_at": now,
    }
    stmt = dialect_insert(conn.dialect.name, sync_source_reads).values(
        source=_remembered_key(source_key), **values
    )
    conn.execute(stmt.on_conflict_do_update(index_elements=["source"], set_=values))


def recalled(conn: sa.Connection, source_key: str) -> dict[str, Any] | None:
    """What the last :func:`remember` of ``source_key`` kept; None: nothing."""
    table = sync_source_reads
    outcome = conn.execute(
        sa.select(table.c.outcome).where(table.c.source == _remembered_key(source_key))
    ).scalar_one_or_none()
    state = outcome.get("remembered") if isinstance(outcome, dict) else None
    return state if isinstance(state, dict) else None
