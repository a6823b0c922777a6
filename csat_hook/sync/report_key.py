"""The key of a report: what it was built from, so a sync whose key is unchanged skips the
dataset, the report and the writes, and a run whose inputs changed in any way builds again.

A report is a function of (1) the database, (2) the settings, (3) today's date in the
metrics time zone (every period, the headline window and the trends end "today"; the run's
instant itself is written nowhere), (4) the report's language, and (5) the code. The key is
an HMAC (keyed by the current token secret: the settings hashed include secrets) of:

* the **data version** (``data_version``, migration 0009): a counter that triggers bump in
  the same transaction as every insert, update, delete (and truncate) of a table the report,
  its dataset, its Alerts tab or its totals read, whoever the writer is (intake, outbox
  worker, short links, ``csat-hook alerts``, the sync);
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
The sync's own transaction may write too; :func:`settled` decides whether the version after
its writes still describes exactly the data it read (see there). When it cannot tell, there
is no key and the next run builds the report.

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


def read_version(conn: sa.Connection) -> int:
    """The data version as this statement sees it (read it before the data it should cover)."""
    return int(conn.execute(sa.select(data_version.c.version)).scalar_one())


def bump_at_end(conn: sa.Connection) -> None:
    """Make this (long) transaction's writes bump the data version once, in :func:`settled`,
    not at its first write.

    PostgreSQL: a bump holds the counter's row lock until the transaction ends, and every
    other writer of a tracked table (each webhook's statement, each reply marked sent) would
    wait that long: seconds, for an ingest of 100,000 answers. With this set, the triggers only
    note that something changed (``csat_hook.changed``), and :func:`settled` bumps, holding
    the lock from there to the commit. SQLite: nothing to do (a writer holds the whole
    database from BEGIN, db/engine.py).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT set_config('csat_hook.bump_at_end', 'on', true)"))


def settled(conn: sa.Connection, before: int) -> int | None:
    """The version that describes exactly the data this transaction read and wrote, or None.

    Call it at the end of a transaction whose first statement was ``before =
    read_version(conn)``, after its last write: under :func:`bump_at_end` it is what bumps.

    * SQLite: the transaction holds the writer lock from BEGIN (db/engine.py), nobody else
      commits meanwhile: the version it reads now, its own bumps included, is exact.
    * PostgreSQL (read committed: each statement sees what is committed when it starts): a
      transaction bumps the counter once (``xact``) and then holds its row lock until it
      commits, so no other writer of a tracked table can commit after that. If this
      transaction bumped, the version is exact when it is ``before + 1`` (nobody committed
      between the first read and the bump); if it did not, when it is still ``before``
      (nobody committed while it read). Otherwise someone wrote while the data was read: None.
    """
    if conn.dialect.name != "postgresql":
        return int(conn.execute(sa.select(data_version.c.version)).scalar_one())
    changed = conn.execute(sa.text("SELECT current_setting('csat_hook.changed', true)"))
    if changed.scalar_one() == "on":  # writes made under bump_at_end: counted now, once
        conn.execute(sa.text("SELECT set_config('csat_hook.changed', '', true)"))
        conn.execute(
            sa.update(data_version)
            .where(data_version.c.id == 1)
            .where(data_version.c.xact.is_distinct_from(sa.func.txid_current()))
            .values(version=data_version.c.version + 1, xact=sa.func.txid_current())
        )
    version, xact = conn.execute(sa.select(data_version.c.version, data_version.c.xact)).one()
    mine = conn.execute(sa.text("SELECT txid_current_if_assigned()")).scalar_one()
    if mine is not None and xact == mine:
        return int(version) if version == before + 1 else None
    return int(version) if version == before else None


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
