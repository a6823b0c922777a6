"""Where a read found the rows already processed, for the one decision a stored row's place
takes part in: a survey's submission made in the same instant as its stored answer.

A first read places a submission at the lowest of its rows (a double-click's values are one
submission, at the lower row: ``sources.base.admit``) and credits, of a survey's submissions
made in one instant, the one further down. A stored answer was placed where the read that
stored it found it, but its values may have been submitted again further down since, read by
a later run as processed (the second click of a double-click split across two syncs). So when
a submission ties with a stored answer, the answer is placed where the current read found its
identity: the lowest row it was recognised at by its raw digest (``SourceBatch.raw_seen``,
the identity from ``sync_row_digests``), parsed, or among the rows added since the last read
(``SourceBatch.found``). A read of every row meets every row the answer has; a read of the
added rows meets only those, each below every earlier row, so an answer it did not meet is
above every one of them, whatever row it was stored at (rows above it deleted since, found by
a read of every row that did not move it: it was in no tie then). The answer's stored row
moves where it was found, so a later tie and the history it may go to say where it is; an
answer a read of every row finds elsewhere outside a tie keeps its stored row (moving every
answer below a deleted row would rewrite most answers, for no outcome).

Nothing here runs per row: the read notes places as it recognises rows (a dict entry where a
set entry was), and only the stored answers in a tie, a handful, are looked up.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping

import sqlalchemy as sa

from csat_hook.sync import cache
from csat_hook.sync import store
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.records import place
from csat_hook.sync.records import position


class Places:
    """Where one read (``batch``) found processed identities. ``whole``: the read was of
    every row of a sheet or export, or of every response of a form (no filter), so an
    identity it did not find is no longer there."""

    def __init__(self, batch: SourceBatch, *, whole: bool = False, appended: bool = False) -> None:
        self.raw = batch.raw_seen
        # Only the rows added after an earlier read's were read: each is below every row
        # that read met (read_step: ``appended``).
        self.appended = appended
        self.found = batch.found
        self.whole = whole and batch.complete and not batch.left_cut  # recredit.py: the same
        self.last_known = batch.last_known  # found at the last row, which lends no place

    def missing(self, conn: sa.Connection, fingerprints: Collection[str]) -> set[str]:
        """Which of ``fingerprints`` a read of every row did not find (none for another
        read: it does not meet every row). One read of the stored row digests, whatever the
        number asked (rare: stored answers that a new submission does not outrank)."""
        if not self.whole or not fingerprints:
            return set()
        left = {f for f in fingerprints if f not in self.found and f != self.last_known}
        if left and self.raw:
            left -= cache.fingerprints_of(conn, self.raw)
        return left

    def of(self, conn: sa.Connection, fingerprints: Collection[str]) -> dict[str, str]:
        """Identity → the ref of the lowest row the read found it at, for those it found."""
        pairs = cache.row_digests_of(conn, fingerprints) if self.raw and fingerprints else []
        return self.at(fingerprints, pairs)

    def at(self, fingerprints: Collection[str], pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
        """:meth:`of` given the stored (raw digest, identity) pairs of ``fingerprints`` (of
        those only)."""
        places = {f: self.found[f] for f in fingerprints if f in self.found}
        for digest, fingerprint in pairs:
            row = self.raw.get(digest)
            if row is not None:
                place(places, fingerprint, f"row {row}")
        return places


def placed(
    conn: sa.Connection, stored: Mapping[str, store.StoredAnswer], places: Places
) -> dict[str, store.StoredAnswer]:
    """``stored`` (survey key → its current answer) with each answer placed where the read
    found it, and moved there in the database. A row found is where the answer is now (up
    too: rows deleted above it); a place that is not a row (a Forms responseId) only ever
    moves further on, as a read of some responses does not meet the others. An answer a read
    of the added rows did not meet is above all of them: placed at no row (``""``, before
    any), its stored row kept."""
    where = places.of(conn, [a.fingerprint for a in stored.values() if a.fingerprint])
    moved: dict[str, str] = {}
    above: set[str] = set()
    for key, answer in stored.items():
        ref = where.get(answer.fingerprint or "")
        if ref is None and places.appended:
            above.add(key)
            continue
        if ref is None or ref == answer.source_ref:
            continue
        if position(ref)[0] < 0 and position(ref) < position(answer.source_ref):
            continue
        moved[key] = ref
    if not moved and not above:
        return dict(stored)
    store.move_answers(conn, moved)
    return {
        key: answer._replace(source_ref=moved[key])
        if key in moved
        else answer._replace(source_ref="")
        if key in above
        else answer
        for key, answer in stored.items()
    }
