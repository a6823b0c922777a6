"""What the sync remembers only to skip work: the raw digests of processed rows
(``sync_row_digests``) and the digest of what each output last wrote (``sync_outputs``).

Both are caches. A missing entry costs a parse or a write, never a different outcome: a row
is recognised by its digest only while its identity is still processed, and a digest covers
the reading settings (sources/table.py), so the same digest always means the same identity.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from collections.abc import Container
from collections.abc import Iterable
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import sync_outputs
from csat_hook.db.schema import sync_row_digests
from csat_hook.db.schema import unverified_answers
from csat_hook.sync.bulk import among
from csat_hook.sync.bulk import bulk_execute
from csat_hook.sync.bulk import matching


def known_row_digests(
    conn: sa.Connection, processed: Container[str], watched: Container[str] = frozenset()
) -> tuple[frozenset[str], tuple[str, ...], dict[str, str]]:
    """Raw digests of the rows whose identity is in ``processed`` (a row whose answer went,
    e.g. erased, is parsed again), the stored digests of any other identity (orphans,
    which :func:`prune_row_digests` removes), and digest → identity for the identities in
    ``watched`` (few: where a read finds them, :mod:`.recredit`)."""
    rows = conn.execute(sa.select(sync_row_digests.c.digest, sync_row_digests.c.fingerprint))
    known: list[str] = []
    orphans: list[str] = []
    noted: dict[str, str] = {}
    for digest, fingerprint in rows:
        if fingerprint in processed:
            known.append(digest)
            if fingerprint in watched:
                noted[digest] = fingerprint
        else:
            orphans.append(digest)
    return frozenset(known), tuple(orphans), noted


def prune_row_digests(
    conn: sa.Connection, known: Collection[str], orphans: Iterable[str], seen: Collection[str]
) -> int:
    """After a read of every row of the source: forget the digests no row has any more.

    ``known`` and ``orphans`` are what :func:`known_row_digests` gave before the read,
    ``seen`` the digests of every row the read recognised or stored. What is left of
    ``known`` belongs to rows edited since or read under other settings (their identities
    stay processed, in the history), so without this the table would grow with every edit
    and every settings change, and every run reads all of it. Returns how many went.
    """
    # An orphan re-parsed in this read was stored again under its digest: it stays.
    stale = [d for d in orphans if d not in seen]
    if any(d not in seen for d in known):
        stale.extend(d for d in known if d not in seen)
    for condition in among(conn, sync_row_digests.c.digest, stale):
        conn.execute(sa.delete(sync_row_digests).where(condition))
    return len(stale)


def insert_row_digests(conn: sa.Connection, pairs: Sequence[tuple[str, str]]) -> None:
    """Remember (raw digest, identity) pairs; a digest already stored keeps its identity (the
    digest covers the settings that read the row, so the same digest means the same identity).
    """
    stmt = dialect_insert(conn.dialect.name, sync_row_digests).on_conflict_do_nothing(
        index_elements=["digest"]
    )
    # Bounded statements, each chunk's rows made as it is written: a first sync has a pair per
    # row, and 100,000 row dicts at once were ≈ 20 MB at the end of its ingest, its peak (as
    # was a dict of every pair, to drop repeats, after them). The same cells twice in one read
    # give one digest: a repeat within a chunk is dropped here, one in a later chunk by the
    # conflict clause (the same digest means the same identity, so either is the one kept).
    items = iter(pairs)
    while chunk := dict(itertools.islice(items, 5000)):
        bulk_execute(
            conn,
            stmt,
            sync_row_digests,
            [{"digest": d, "fingerprint": f} for d, f in chunk.items()],
        )


def output_digest(conn: sa.Connection, output: str) -> str | None:
    """The digest of what ``output`` last wrote, if it wrote anything."""
    found = conn.execute(
        sa.select(sync_outputs.c.digest).where(sync_outputs.c.output == output)
    ).scalar_one_or_none()
    return str(found) if found is not None else None


def set_output_digest(conn: sa.Connection, output: str, digest: str, now: datetime) -> None:
    """Remember that ``output`` now holds what ``digest`` describes."""
    stmt = dialect_insert(conn.dialect.name, sync_outputs).values(
        output=output[:255], digest=digest, written_at=now
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["output"], set_={"digest": digest, "written_at": now}
        )
    )


def row_digests_of(conn: sa.Connection, fingerprints: Iterable[str]) -> list[tuple[str, str]]:
    """The stored (raw digest, identity) pairs of the identities ``fingerprints`` (few: no
    index holds the identities, so each statement reads the table through)."""
    found: list[tuple[str, str]] = []
    for match in matching(conn, fingerprints):
        rows = conn.execute(
            sa.select(sync_row_digests.c.digest, sync_row_digests.c.fingerprint).where(
                match(sync_row_digests.c.fingerprint)
            )
        )
        found.extend((digest, fingerprint) for digest, fingerprint in rows)
    return found


def unverified_row_digests(conn: sa.Connection) -> list[tuple[str, str]]:
    """The stored (raw digest, identity) pairs of the unverified answers' identities (one
    join: the digests of every other row are not read)."""
    rows = conn.execute(
        sa.select(sync_row_digests.c.digest, sync_row_digests.c.fingerprint).join(
            unverified_answers, unverified_answers.c.fingerprint == sync_row_digests.c.fingerprint
        )
    )
    return [(digest, fingerprint) for digest, fingerprint in rows]


def fingerprints_of(conn: sa.Connection, digests: Container[str]) -> set[str]:
    """The identities of the stored raw digests among ``digests`` (one read of the table)."""
    rows = conn.execute(sa.select(sync_row_digests.c.digest, sync_row_digests.c.fingerprint))
    return {fingerprint for digest, fingerprint in rows if digest in digests}
