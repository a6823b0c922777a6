"""A processed row read again at a later time than stored: a Forms response alike to an
earlier one of its survey within the same second.

A row's identity holds its time in whole seconds (:func:`~csat_hook.sync.sources.identity.
instant`: an export shows seconds), while Forms' ``lastSubmittedTime`` has nanoseconds and
decides between a survey's submissions (:func:`~csat_hook.sync.attribution.precedence`). So
a 3, a 4 and the 3 again submitted within one second are two identities, the 3's read twice:
a first read keeps it at the later of its two times (``sources.identity.admit``) and credits
it, the latest. A read that meets it again after storing it at the earlier time (the second 3
submitted, or listed, after the run that read the first) finds the identity processed, and
notes the time it read it at (``SourceBatch.later``): a filtered read every processed one it
lists (the last hour's), a read of every response those read after the source's watermark
(a copy no earlier read met) and those :mod:`.recredit` weighs again (the history and the
answers of its surveys). Here, before the batch is credited, the stored rows of those
identities read at a later time take it and where it was read (:func:`store.retime`), and a
survey whose row kept in the history now outranks its answer is credited again from it, as
:mod:`.recredit` credits a row found again: an incremental read credits what a first read of
the form as it is does.

Not caught: the later copy of an answer whose survey has no history, listed only after the
watermark passed its time and the overlap its first copy (a response Google shows more than
``overlap_seconds`` late): its stored time stays the earlier, in the same second.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from csat_hook.sync import store
from csat_hook.sync.attribution import Credited
from csat_hook.sync.attribution import check_reference
from csat_hook.sync.attribution import precedence
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.recredit import Recredit
from csat_hook.sync.recredit import Watch

# Identity → the later time its rows were submitted at, where it was read, its survey key.
Times = dict[str, tuple[datetime, str, str]]


def weigh(
    conn: sa.Connection, batch: SourceBatch, secrets: Sequence[str], watch: Watch | None
) -> tuple[Times, list[Recredit]]:
    """The stored rows of ``batch.later`` to move to their later time (for
    :func:`store.retime`, before the batch is credited), and the surveys to credit again
    from a row of their history that the later time puts ahead of their answer. With
    ``watch`` (a read of every row: :mod:`.recredit` plans from it), the rows it watches are
    weighed by its standings, which take the later times, and it plans; the others are
    looked up (a copy after the watermark: few)."""
    later = batch.later
    if not later:
        return {}, []
    times: Times = {}
    if watch is not None:
        later = _watched(watch, later, times)
    history = store.history_rows(conn, later)
    current = store.answer_rows(conn, {key for _, _, key in later.values()} - {""})
    moved: dict[str, tuple[datetime, str]] = {}  # survey key → its answer's later time, ref
    best: dict[str, tuple[str, datetime, str]] = {}  # survey key → its best history row moved
    for fingerprint, (when, ref, key) in later.items():
        kept = history.get(fingerprint)
        answer = current.get(key)
        if kept is not None:
            if kept.submitted_at < when:
                times[fingerprint] = (when, ref, kept.survey_key)
                other = best.get(kept.survey_key)
                if other is None or precedence(when, ref) > precedence(other[1], other[2]):
                    best[kept.survey_key] = (fingerprint, when, ref)
        elif answer is not None and answer.fingerprint == fingerprint:
            if answer.submitted_at < when:
                times[fingerprint] = (when, ref, key)
                moved[key] = (when, ref)
        else:
            times[fingerprint] = (when, ref, key)  # unverified, if anything: no credit moves
    for fingerprint, (_, ref, _) in times.items():
        # Where a first read finds it: at the later copy (a Forms place is no row).
        if fingerprint in batch.found:
            batch.found[fingerprint] = ref
    if watch is not None:
        return times, []
    plans = []
    for key, (fingerprint, when, ref) in best.items():
        answer = current.get(key)
        if answer is None:
            continue  # no answer stored (deleted by hand)
        at, answer_ref = moved.get(key, (answer.submitted_at, answer.source_ref or ""))
        rank = precedence(when, ref)
        if precedence(at, answer_ref) >= rank:
            continue
        # A new submission of the survey that outranks the row is credited by the ingest as
        # usual (recredit.Watch.plan: crediting the row first would report a rating the
        # source no longer gives).
        if any(
            sub.named_key() == key
            and precedence(sub.submitted_at, sub.ref) > rank
            and isinstance(check_reference(sub, secrets), Credited)
            for sub in batch.submissions
        ):
            continue
        plans.append(Recredit(key, fingerprint, ref, None))
    return times, plans


def _watched(
    watch: Watch, later: Mapping[str, tuple[datetime, str, str]], times: Times
) -> dict[str, tuple[datetime, str, str]]:
    """Weigh the rows of ``later`` that ``watch`` holds (its history and the answers of
    its surveys) by its standings: those read at a later time go to ``times`` and its
    standings take that time. Returns the rest of ``later``."""
    answer_of = {fingerprint: key for key, (fingerprint, _) in watch.current.items()}
    rest = {}
    for fingerprint, (when, ref, key) in later.items():
        standing = watch.history.get(fingerprint)
        if standing is not None:
            if standing.submitted_at < when:
                times[fingerprint] = (when, ref, standing.survey_key)
                watch.history[fingerprint] = standing._replace(submitted_at=when, source_ref=ref)
            continue
        survey = answer_of.get(fingerprint)
        if survey is not None:
            standing = watch.current[survey][1]
            if standing.submitted_at < when:
                times[fingerprint] = (when, ref, survey)
                watch.current[survey] = (
                    fingerprint,
                    standing._replace(submitted_at=when, source_ref=ref),
                )
            continue
        rest[fingerprint] = (when, ref, key)
    return rest
