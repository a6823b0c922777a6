"""One digest over a whole read: the same responses sheet (or CSV export) read again with
nothing changed is recognised from its bytes, without decoding, parsing or recognising a
single row.

A whole-reading source (``gsheets``, ``csv``) hands the runner a digest of the bytes it read
and of what it read them with (the spreadsheet's time zone and locale: ``prefetch``). The
memo's key adds every setting of ``results`` and ``metrics`` and the code (:func:`memo_key`).

Why a replayed read is the read the rows would give. What a source returns is a function of
its bytes, its settings, the code and the identities already processed (``known``). The
first three are the key. ``known`` is represented by the number of processed rows: answers,
their history and unverified answers are written only by the sync's ingest, never deleted by
csat-hook, and the memo is written in the ingest's own transaction with the count that
transaction leaves; a row deleted by hand, or another source's rows ingested in between,
change the count and the memo is not used. A memo is written only for a clean read (every
row of the source, none skipped, no legacy digest re-keyed): every readable row of it was
stored, so reading it again row by row would find each one unchanged, and the replay says
exactly that (the same counts, warnings and columns) and stores nothing. Any other read of every
row (one that skipped a row, a form's every response) leaves only how many data rows it found,
under no settings, which no read replays (:func:`record`, :func:`last_rows`).
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
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.report_key import code_identity
from csat_hook.sync.sources.base import WholeRead
from csat_hook.sync.values import READING_VERSION

# An outcome bigger than this (thousands of warnings) is not kept: the rows are read instead.
MAX_OUTCOME_BYTES = 65_536


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
    """A source's last clean whole read: its key and what it found."""

    digest: str
    outcome: dict[str, Any]

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
        batch.unchanged = batch.rows_read - batch.blank_rows
        batch.warnings = [str(w) for w in outcome["warnings"]]
        batch.columns = {str(k): str(v) for k, v in outcome["columns"].items()}
        return batch

    def extend(self, added: SourceBatch, processed: Container[str]) -> None:
        """Make ``added`` (the rows after this read's, read with nothing known) the batch of
        the whole source: this read's rows count as read and unchanged (every one of them was
        stored), and added submissions already processed are unchanged, not new (and found:
        below every earlier row, each is its identity's lowest row)."""
        rows_read, blank_rows = int(self.outcome["rows_read"]), int(self.outcome["blank_rows"])
        added.rows_read += rows_read
        added.blank_rows += blank_rows
        added.unchanged += rows_read - blank_rows
        added.drop_processed(processed)


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


def load(conn: sa.Connection, source_key: str, keys: MemoKeys) -> ReadMemo | None:
    """The memo of ``source_key`` if its last clean read was under ``keys.settings`` and the
    processed rows are still the ones it left; else None (read the rows)."""
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
    return ReadMemo(row.digest, row.outcome)


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


def clean(batch: SourceBatch) -> bool:
    """Whether a replay of ``batch`` would be the read its rows give (module docstring)."""
    return batch.complete and not batch.skipped and not batch.rekeyed


def record(
    conn: sa.Connection, source_key: str, keys: MemoKeys | None, batch: SourceBatch, now: datetime
) -> None:
    """After ``batch`` was ingested in this transaction: remember it when it is clean and has
    keys, else forget the source's memo (its rows are read next time).

    A batch not remembered so that is a read of every row (``batch.complete``: a sheet or
    export that skipped a row, a form's every response, which has no bytes to key: ``keys``
    None) with data rows leaves how many it found (:func:`last_rows`, for the warning of a
    source read with none: ``read_step.hold_emptied``), under no settings: never replayed.
    """
    table = sync_source_reads
    key = source_key[:255]
    outcome: dict[str, Any] = {
        "settings": keys.settings if keys is not None else None,
        "rows_read": batch.rows_read,
        "blank_rows": batch.blank_rows,
        "warnings": list(batch.warnings),
        "columns": dict(batch.columns),
        "resume": batch.resume,
    }
    # ASCII JSON: a warning may quote a header holding NUL or a lone surrogate, which neither
    # database stores as text; escaped, it is plain ASCII.
    text = json.dumps(outcome, ensure_ascii=True)
    if keys is not None and clean(batch) and len(text) <= MAX_OUTCOME_BYTES:
        values = {
            "digest": keys.digest,
            "known_count": known_count(conn),
            "outcome": outcome,
            "read_at": now,
        }
    elif batch.complete and batch.rows_read > batch.blank_rows:
        # No settings: load() finds no memo in it, only last_rows() its count.
        counts = {"settings": None, "rows_read": batch.rows_read, "blank_rows": batch.blank_rows}
        values = {"digest": "", "known_count": 0, "outcome": counts, "read_at": now}
    else:
        conn.execute(sa.delete(table).where(table.c.source == key))
        return
    stmt = dialect_insert(conn.dialect.name, table).values(source=key, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["source"], set_=values))
