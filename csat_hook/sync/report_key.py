"""The key of a report: what it was built from, so a sync whose key is unchanged skips the
dataset, the report and the writes, and a run whose inputs changed in any way builds again.

A report is a function of (1) the database, (2) the settings, (3) today's date in the
metrics time zone (every period, the headline window and the trends end "today"; the run's
instant itself is written nowhere), (4) the report's language, and (5) the code. The key is
an HMAC (keyed by the current token secret: the settings hashed include secrets) of:

* the **data version** (:func:`read_version`): what the tables the report, its dataset, its
  Alerts tab or its totals read (:data:`TRACKED`) hold, whoever wrote them (intake, outbox
  worker, short links, ``csat-hook alerts``, the sync);
* every setting of the configuration (a changed one only costs a rebuild), the token secrets;
* the local date in ``metrics.timezone``, the language, and the code (package version, and
  the size and modification time of its modules).

Why a version can never make a key stale. The version is read *before* the data and again
after it (:func:`settled`); the data read in between is what the version describes only if
nothing tracked changed meanwhile, and otherwise there is no key and the next run builds the
report.

* SQLite: a counter row (``data_version``) that triggers bump in the same transaction as
  every insert, update and delete of a tracked table (migration 0009), read with the
  AUTOINCREMENT sequence of ``row_changes``, which lists every insert, update and delete of
  ``surveys`` and ``answers`` instead (migrations 0017 and 0025: one trigger per written row,
  not two; the sequence never goes back, even once the listed rows are pruned). Both are
  transactional: a reader sees a version and the data it counts committed together. A
  writer holds the whole database from BEGIN (db/engine.py), so nobody commits while the
  sync's ingest reads; the report's read after it is a snapshot (``db.engine.snapshot``: one
  WAL state).
* PostgreSQL: a fingerprint of every tracked table's row versions, computed by the database
  in one statement (one snapshot): per table the row count and the sum of a 64-bit hash of
  each row's ``xmin`` (the transaction that wrote that version of the row) and ``ctid`` (where
  it lies). An insert, an update or a delete changes the set of (xmin, ctid) pairs, and a
  sum of 64-bit hashes misses a change with probability 2⁻⁶⁴; a rewrite of a table (VACUUM
  FULL) changes it too, which costs only a rebuild. No trigger and no counter row: a row
  bumped by every writer would serialise every commit of the webhook path on its lock
  (measured: close → reply p50 17 ms → 1.1–2.8 s at 200 closes/s). The database scans the
  tracked tables twice per run (≈ 0.1–0.2 s of its CPU at 100,000 answers), off the webhook
  path. (A sequence would not do either: ``nextval`` is not rolled back and not ordered with
  commits.)

Assumptions (the same as the Sheets contents digest, ``outputs/sheets.py``): nobody edits the
report's cells or files by hand between runs. A deleted output is noticed: the local files
must all exist, and the Sheets tabs written must all still be in the spreadsheet.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

import csat_hook
from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import sync_outputs
from csat_hook.sync.config import SyncSettings

# Every section of the configuration the sync reads (SyncSettings).
_SECTIONS = (
    "google",
    "results",
    "metrics",
    "output",
    "sync",
    "database",
    "token",
    "alerts",
    "survey",
)


# Every table a report, its dataset, its Alerts tab or its totals read (migration 0009 puts
# SQLite's triggers on the same list, and migration 0025 leaves those in ROW_CHANGES to the
# row-change list's; tests/db/test_data_version.py checks they agree).
TRACKED = (
    "surveys",
    "outbox",
    "answers",
    "answer_history",
    "unverified_answers",
    "sync_skipped_rows",
    "alerts",
    "alert_state",
    "link_clicks",
)
# The tracked tables whose writes SQLite counts by the row-change list's sequence (migration
# 0017's triggers), not by the counter row's (migration 0025).
ROW_CHANGES = ("surveys", "answers")
# The counter and the sequence in one statement (no row in sqlite_sequence: nothing listed yet).
_SQLITE_VERSION = sa.text(
    "SELECT version, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'row_changes'), 0)"
    " FROM data_version"
)
# One statement, so one snapshot; table names from TRACKED, never from input.
_PER_TABLE = (
    "(SELECT count(*) || ':' || coalesce(sum(hashtextextended(xmin::text || ',' || ctid::text,"
    " 0)), 0) FROM {})"
)
_FINGERPRINT = sa.text("SELECT " + ", ".join(_PER_TABLE.format(table) for table in TRACKED))


def read_version(conn: sa.Connection) -> str:
    """The data version as this statement sees it (read it before the data it should cover)."""
    if conn.dialect.name == "postgresql":
        row = conn.execute(_FINGERPRINT).one()
        return "pg:" + hashlib.sha256("|".join(row).encode()).hexdigest()
    counted, listed = conn.execute(_SQLITE_VERSION).one()
    return f"sqlite:{counted}:{listed}"


def settled(conn: sa.Connection, before: str) -> str | None:
    """The version that describes exactly the data this transaction read (and wrote), or None.

    Call it at the end of a transaction whose first statement was ``before =
    read_version(conn)``, after its last write.

    * SQLite: nobody else commits while a writing transaction runs, and a snapshot
      (``db.engine.snapshot``) reads one state throughout: the version it reads now, its own
      writes included, is exact.
    * PostgreSQL (read committed: each statement sees what is committed when it starts): the
      version is exact when it is still ``before``: nothing tracked changed while the data was
      read. If it changed (someone else, or this transaction's own writes), None: the next
      run, with nothing to write, reads and keys it. In a snapshot (REPEATABLE READ) it is
      always still ``before``.
    """
    now = read_version(conn)
    if conn.dialect.name != "postgresql":
        return now
    return now if now == before else None


@functools.cache
def code_identity() -> str:
    """The package version and every module's size and modification time: a deployed change
    of the code builds the report again even without a new version number."""
    root = Path(csat_hook.__file__).parent
    parts = [csat_hook.__version__]
    for path in sorted(root.rglob("*.py")):
        stat = path.stat()
        parts.append(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _dumped(section: Any) -> Any:
    dump = getattr(section, "model_dump", None)
    return dump(mode="json") if dump is not None else repr(section)


def report_key(
    config: SyncSettings, *, version: str, now: datetime, language: str, output: str
) -> str:
    """The key of the report ``output`` would hold (see the module's docstring)."""
    secrets = config.token.all_secrets()
    inputs = {
        "version": version,
        "today": now.astimezone(ZoneInfo(config.metrics.timezone)).date().isoformat(),
        "language": language,
        "output": output,
        "code": code_identity(),
        "settings": {name: _dumped(getattr(config, name)) for name in _SECTIONS},
        "helpdesks": {name: _dumped(options) for name, options in config.helpdesks.items()},
        "secrets": secrets,
    }
    message = json.dumps(inputs, sort_keys=True, default=str).encode()
    return hmac.new(secrets[0].encode(), message, hashlib.sha256).hexdigest()


def stored(conn: sa.Connection, outputs: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The report key and detail each of ``outputs`` last stored (absent: none)."""
    rows = conn.execute(
        sa.select(sync_outputs.c.output, sync_outputs.c.report_key, sync_outputs.c.report_detail)
        .where(sync_outputs.c.output.in_([o[:255] for o in outputs]))
        .where(sync_outputs.c.report_key.is_not(None))
    )
    return {output: (key, dict(detail or {})) for output, key, detail in rows}


def forget(conn: sa.Connection, output: str) -> None:
    """Before ``output`` is written: a write that fails halfway leaves no key behind."""
    conn.execute(
        sa.update(sync_outputs)
        .where(sync_outputs.c.output == output[:255])
        .values(report_key=None, report_detail=None)
    )


def remember(
    conn: sa.Connection, output: str, key: str, detail: dict[str, Any], now: datetime
) -> None:
    """After ``output`` was written successfully: it holds the report of ``key``."""
    values = {"report_key": key, "report_detail": detail, "written_at": now}
    stmt = dialect_insert(conn.dialect.name, sync_outputs).values(
        output=output[:255], digest="", **values
    )
    conn.execute(stmt.on_conflict_do_update(index_elements=["output"], set_=values))
