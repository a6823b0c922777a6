"""The key of a report: what it was built from, so a sync whose key is unchanged skips the
dataset, the report and the writes, and a run whose inputs changed in any way builds again.

A report is a function of (1) the database, (2) the settings, (3) today's date in the
metrics time zone (every period, the headline window and the trends end "today"; the run's
instant itself is written nowhere), (4) the report's language, and (5) the code. The key is
an HMAC (keyed by the current token secret: the settings hashed include secrets) of:

* the **data version** (``data_version``, migration 0009): a counter that triggers bump in
  the same transaction as every insert, update, delete (and truncate) of a table the report,
  its dataset, its Alerts tab or its totals read, whoever the writer is (intake, outbox
  worker, short links, ``csat-hook alerts``, the sync); on PostgreSQL once per transaction,
  at its commit (the migration says why);
* every setting of the configuration (a changed one only costs a rebuild), the token secrets;
* the local date in ``metrics.timezone``, the language, and the code (package version, and
  the size and modification time of its modules).

Why the counter can never make a key stale. The counter is an ordinary row, so it is
transactional: a reader sees a version and the data it counts committed together, never one
without the other. (A sequence would not do: ``nextval`` is not rolled back and not ordered
with commits, so a reader could see number *n* while the data of *n* is not yet visible.)
The version is read *before* the data (:func:`read_version`, the first statement of the
ingest's transaction), so the data read is at least as new as the version, and when a later
run reads the same version, nothing was committed since that read: the data is what was read.
The sync's own transaction may write too; :func:`settled` decides, once it committed, whether
the version after its writes still describes exactly the data it read (see there). When it
cannot tell, there is no key and the next run builds the report.

Assumptions (the same as the Sheets contents digest, ``outputs/sheets.py``): nobody edits the
report's cells or files by hand between runs. A deleted or reshaped output is noticed: the
local files must all exist, and the spreadsheet must still have the tabs, grids, rules, charts
and looks the write left (outputs/sheets_expect.py).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

import csat_hook
from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import data_version
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


SHARDS = 16  # rows of data_version on PostgreSQL (migration 0009)


def read_version(conn: sa.Connection) -> int:
    """The data version as this statement sees it (read it before the data it should cover):
    the sum of the counter's rows, one statement, so one snapshot."""
    return int(conn.execute(sa.select(sa.func.sum(data_version.c.version))).scalar_one())


@dataclass(frozen=True)
class Reading:
    """What a transaction saw of the data version (:func:`reading`), for :func:`settled`."""

    first: int  # read by the transaction's first statement
    exact: int | None  # SQLite: the version at its end, its own writes counted
    mine: int | None  # PostgreSQL: the transaction's id, when it wrote anything


def reading(conn: sa.Connection, first: int) -> Reading:
    """Call last in a transaction whose first statement was ``first = read_version(conn)``,
    then :func:`settled` once it committed."""
    if conn.dialect.name != "postgresql":
        return Reading(first, read_version(conn), None)
    mine = conn.execute(sa.text("SELECT txid_current_if_assigned()")).scalar_one()
    return Reading(first, None, None if mine is None else int(mine))


def settled(engine: sa.Engine, seen: Reading) -> int | None:
    """The version that describes exactly the data the transaction read and wrote, or None
    (someone else wrote meanwhile: no key, the next run builds).

    * SQLite: the transaction held the writer lock from BEGIN (db/engine.py): nobody else
      committed while it ran, and the version it read at its end counts its own writes.
    * PostgreSQL (read committed): bumps happen at commit, once per transaction, on the row
      of the transaction's shard, which records the last transaction that bumped it
      (``xact``; migration 0009). Every bump adds one to the sum. Read after the commit: if
      this transaction bumped (its row still names it), the version is exact when it is
      ``first + 1`` (nobody else committed since the first read); if it did not, when it is
      still ``first``. A bump by anyone else since makes the sum larger than either.
    """
    if seen.exact is not None:
        return seen.exact
    with engine.connect() as conn:
        version = read_version(conn)
        xact = None
        if seen.mine is not None:
            shard = data_version.c.id == 1 + seen.mine % SHARDS
            xact = conn.execute(sa.select(data_version.c.xact).where(shard)).scalar_one()
    if seen.mine is not None and xact == seen.mine:
        return version if version == seen.first + 1 else None
    return version if version == seen.first else None


@functools.cache
def _code_identity() -> str:
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
    config: SyncSettings, *, version: int, now: datetime, language: str, output: str
) -> str:
    """The key of the report ``output`` would hold (see the module's docstring)."""
    secrets = config.token.all_secrets()
    inputs = {
        "version": version,
        "today": now.astimezone(ZoneInfo(config.metrics.timezone)).date().isoformat(),
        "language": language,
        "output": output,
        "code": _code_identity(),
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
