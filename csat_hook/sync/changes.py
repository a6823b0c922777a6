"""The surveys and answers changed since a dataset was read, so that a sync that kept its last
report's dataset applies them (:func:`~csat_hook.sync.dataset.patch_dataset`) instead of
reading and joining every row again.

Where a dataset was read is a :class:`Mark`, taken in the same snapshot as its rows
(``db.engine.snapshot``). A later snapshot asks what changed since (:func:`since`):

* SQLite: triggers list every insert, update and delete of a survey or an answer in
  ``row_changes`` (migration 0017), in commit order (a writer holds the whole database). The
  rows listed after the mark are read again by id.
* PostgreSQL: the rows whose version (``xmin``, the transaction that wrote it) the mark's
  snapshot could not see. ``xmin`` is 32 bits: it is placed in the current epoch (a row
  version is never older than 2³¹ transactions unless frozen, and a frozen row keeps its raw
  ``xmin``), and a mark more than 2³⁰ transactions old is too old to ask. Nothing is written on
  the webhook path.

A bulk write of answers on SQLite (more than :data:`MAX_CHANGED`, which no dataset is patched
with) is listed once, not row by row (:func:`unlisted`, migration 0027): one "bulk" row, after
which a dataset marked before it is built anew.

Neither tells which rows were deleted: the caller compares the counts (:func:`counts`) with
what the patched dataset holds, and builds anew when they differ (an erasure, a token
cleared). Any doubt (the list pruned past the mark, too many changes to be worth applying, a
mark too old) is None: build anew. A patched dataset is then what a new build would be.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from collections.abc import Set
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.db.schema import answers
from csat_hook.db.schema import row_changes
from csat_hook.db.schema import row_changes_paused
from csat_hook.db.schema import surveys
from csat_hook.sync import store
from csat_hook.sync.dataset import Dataset
from csat_hook.sync.dataset import UnpatchableError
from csat_hook.sync.dataset import patch_dataset
from csat_hook.sync.store import AnswerRow
from csat_hook.sync.store import SurveyFact

# More changed rows than this, or than a quarter of the dataset's: build anew (reading a
# changed row by id costs several times what streaming it with the rest does).
MAX_CHANGED = 50_000
# SQLite: the listed rows up to a mark are deleted once there are this many of them.
PRUNE_ROWS = 20_000
_IDS_PER_STATEMENT = 500
_MAX_AGE = 1 << 30
PRUNED = "pruned"
BULK = "bulk"


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a dataset's rows were read. SQLite: the last ``row_changes.seq`` (and the oldest
    still listed); PostgreSQL: the snapshot, as ``pg_snapshot`` text."""

    position: str
    oldest: int = 0


@dataclass(slots=True)
class RowChanges:
    """The signed surveys added or changed since a mark (by id), and the answers added or
    changed with the current answer of every one of those surveys (its join changed)."""

    surveys: list[SurveyFact]
    answers: list[AnswerRow]


def mark(conn: sa.Connection) -> Mark:
    """Where the rows this snapshot reads are (call it in the snapshot that reads them)."""
    if conn.dialect.name == "postgresql":
        return Mark(conn.execute(sa.text("SELECT pg_current_snapshot()::text")).scalar_one())
    last, oldest = conn.execute(
        sa.select(sa.func.max(row_changes.c.seq), sa.func.min(row_changes.c.seq))
    ).one()
    return Mark(str(last or 0), oldest or 0)


def counts(conn: sa.Connection) -> tuple[int, int]:
    """The signed surveys and the answers there are (a dataset holds as many)."""
    signed = sa.select(sa.func.count()).select_from(surveys).where(surveys.c.token.is_not(None))
    answered = sa.select(sa.func.count()).select_from(answers)
    return conn.execute(signed).scalar_one(), conn.execute(answered).scalar_one()


def since(conn: sa.Connection, at: Mark, *, held: int) -> RowChanges | None:
    """What changed since ``at`` (see the module's docstring), or None when it cannot be
    told or is not worth applying to a dataset of ``held`` rows."""
    limit = min(MAX_CHANGED, max(held // 4, 1_000))
    if conn.dialect.name == "postgresql":
        found = _since_snapshot(conn, at.position, limit)
    else:
        found = _since_listed(conn, int(at.position), limit)
    if found is None:
        return None
    changed, answer_rows = found
    keys = sorted({tokens.survey_key(row.token) for row in changed})
    joined = store.answers_among(conn, keys)
    answer_rows = [row for row in answer_rows if row.survey_key not in joined]
    answer_rows.extend(joined.values())
    return RowChanges(changed, answer_rows)


def patched(conn: sa.Connection, data: Dataset, at: Mark, *, opened: Set[str]) -> bool:
    """Patch ``data`` (read at ``at``) to what this snapshot holds: the rows changed since
    (:func:`since`) applied (:func:`~csat_hook.sync.dataset.patch_dataset`), then the counts
    compared. False: build anew (``data`` may then be half-patched: drop it)."""
    joined = data.joined
    if joined is None:
        return False
    found = since(conn, at, held=joined.survey_count() + len(data.answers))
    if found is None:
        return False
    try:
        patch_dataset(data, found.surveys, found.answers, opened=opened)
    except UnpatchableError:
        return False
    # A survey or an answer removed (an erasure, a token cleared) is no change the rows say:
    # the dataset then holds more than the database.
    return counts(conn) == (joined.survey_count(), len(data.answers))


def _since_listed(
    conn: sa.Connection, after: int, limit: int
) -> tuple[list[SurveyFact], list[AnswerRow]] | None:
    listed = conn.execute(
        sa.select(row_changes.c.tbl, row_changes.c.row_id)
        .where(row_changes.c.seq > after)
        .order_by(row_changes.c.seq)
        .limit(limit + 1)
    ).all()
    if len(listed) > limit:
        return None
    ids: dict[str, set[int]] = {"surveys": set(), "answers": set()}
    for table, row_id in listed:
        if table == PRUNED:
            if row_id > after:
                return None  # rows listed after the mark were deleted
            continue
        if table == BULK:
            return None  # a bulk write after the mark, its rows not listed (unlisted)
        ids[table].add(row_id)
    changed = [
        SurveyFact._make(row)
        for part in _parts(ids["surveys"])
        for row in conn.execute(
            store.SIGNED_SURVEY_FACTS.where(surveys.c.id.in_(part)).order_by(surveys.c.id)
        )
    ]
    answer_rows = [
        AnswerRow._make(row)
        for part in _parts(ids["answers"])
        for row in conn.execute(
            store.ANSWER_ROWS.where(answers.c.id.in_(part)).order_by(answers.c.id)
        )
    ]
    return changed, answer_rows


def _parts(ids: set[int]) -> Iterator[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), _IDS_PER_STATEMENT):
        yield ordered[start : start + _IDS_PER_STATEMENT]


# A row version's transaction as a 64-bit xid8: its 32-bit xmin placed in the current epoch
# (:base, the current xmax's epoch), or the one before when that would be in the future
# (:cur). 0–2 are the bootstrap and frozen ids (older than any snapshot).
_XID8 = (
    "(xmin::text::bigint + :base"
    " - CASE WHEN xmin::text::bigint + :base > :cur THEN 4294967296 ELSE 0 END)"
)
_UNSEEN = sa.text(
    f"xmin::text::bigint >= 3 AND {_XID8} >= 3"
    f" AND NOT pg_visible_in_snapshot({_XID8}::text::xid8, CAST(:prev AS pg_snapshot))"
)


def _since_snapshot(
    conn: sa.Connection, prev: str, limit: int
) -> tuple[list[SurveyFact], list[AnswerRow]] | None:
    cur = int(
        conn.execute(sa.text("SELECT pg_snapshot_xmax(pg_current_snapshot())::text")).scalar_one()
    )
    prev_xmax = int(prev.split(":")[1])
    if not 0 <= cur - prev_xmax < _MAX_AGE:
        return None
    params: dict[str, Any] = {"base": cur >> 32 << 32, "cur": cur, "prev": prev}
    changed = _limited(
        conn,
        store.SIGNED_SURVEY_FACTS.where(_UNSEEN).order_by(surveys.c.id),
        params,
        limit,
        SurveyFact,
    )
    if changed is None:
        return None
    answer_rows = _limited(
        conn, store.ANSWER_ROWS.where(_UNSEEN).order_by(answers.c.id), params, limit, AnswerRow
    )
    if answer_rows is None:
        return None
    return changed, answer_rows


def _limited(
    conn: sa.Connection, stmt: sa.Select[Any], params: dict[str, Any], limit: int, row: Any
) -> list[Any] | None:
    rows = conn.execute(stmt.limit(limit + 1), params).all()
    return None if len(rows) > limit else [row._make(r) for r in rows]


@contextlib.contextmanager
def unlisted(conn: sa.Connection) -> Iterator[None]:
    """Inside: the answers ``conn`` writes are not listed row by row (SQLite; nothing on
    PostgreSQL); once out, one "bulk" row is listed for all of them, so any dataset marked
    before it is built anew (:func:`since`) and the data version moves (report_key.py).

    For a writer of more answers than :data:`MAX_CHANGED` in one transaction (a first sync):
    a dataset is never patched with that many, and the triggers' rows were 8.7 s of a million
    upserts' 18.9 s (migration 0027). ``conn`` must be in a transaction that holds the write
    lock, so no other connection ever sees the pause; on an error inside, the pause is
    lifted and the row listed as well when the connection still can (the transaction is
    rolled back anyway when it cannot)."""
    if conn.dialect.name == "postgresql":
        yield
        return
    conn.execute(sa.insert(row_changes_paused).values(id=1))
    try:
        yield
    except BaseException:
        with contextlib.suppress(sa.exc.SQLAlchemyError):  # the first error is the one raised
            _resume(conn)
        raise
    _resume(conn)


def _resume(conn: sa.Connection) -> None:
    conn.execute(sa.delete(row_changes_paused))
    conn.execute(sa.insert(row_changes).values(tbl=BULK, row_id=0))


def prune_due(at: Mark) -> bool:
    """SQLite: whether the rows listed up to ``at`` are many enough to delete (:func:`prune`)."""
    return at.oldest > 0 and int(at.position) - at.oldest >= PRUNE_ROWS


def prune(conn: sa.Connection, at: Mark) -> None:
    """Delete the rows listed up to ``at`` (SQLite), and say so: a dataset read at an earlier
    mark then finds it cannot be patched (:func:`since`).

    The last row listed becomes the marker rather than a new row being added: the list's
    sequence is part of the data version (report_key.py, migration 0025), and a prune changes
    no data, so a run after it with nothing new still finds its report unchanged."""
    position = int(at.position)
    conn.execute(sa.delete(row_changes).where(row_changes.c.seq < position))
    marked = conn.execute(
        sa.update(row_changes)
        .where(row_changes.c.seq == position)
        .values(tbl=PRUNED, row_id=position)
    ).rowcount
    if not marked:  # never listed (none is deleted but here): a new row, one more rebuild
        conn.execute(sa.insert(row_changes).values(tbl=PRUNED, row_id=position))
