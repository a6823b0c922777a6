"""After a read of every row of a sheet or export, or of every response of a form (the Forms
API listed with no filter): the surveys whose stored answer is not what a first read of those
rows would credit, credited again from the rows the read found.

The ingest weighs each new submission against its survey's stored answer, and a row already
processed (credited, or kept in the history) is not read again. That credits what a first read
would as long as the stored answer is the best of its survey's rows in the source
(:func:`~csat_hook.sync.attribution.precedence`). Rows kept in the history can become that
again: a row edited in place and then back (its first values, kept as history by the edit, are
its content again), a double-click whose rows were edited and swapped (the values kept as
history are now the lower row), a later submission removed while an earlier one is still
there (a sheet's row deleted, a form's response deleted in its Responses tab). A read of
every row meets each row the source holds, so after it each survey one of whose history rows
the read found is weighed again: when the read did not find the row of its
answer, or found a history row that outranks the answer where it found it, the best history
row found becomes the answer again (in place, as an edit the run reports), and the answer goes
to the history. New submissions are then weighed against it as usual (:mod:`.ingest`). A
survey none of whose history rows the read found keeps its answer, found or not: a row removed
from the source, with no other row of its survey left, keeps what was read.

A filtered Forms read (the responses submitted since the watermark) meets only those: it
cannot tell that a response was deleted, so the survey is credited again at the next read of
every response (``sync --full``, or the one ``full_read_hours`` makes due).

Cheap: the history's identities and the answers of their surveys are read once per read of
every row (not on a replay, an appended read or a filtered read, nothing on a first sync),
rows are matched by the row digests the read recognised and the processed identities it met
(none parsed for it; a form's responses are matched by identity alone), and only the surveys
to credit again are read whole.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from csat_hook.sync import store
from csat_hook.sync.attribution import Credited
from csat_hook.sync.attribution import check_reference
from csat_hook.sync.attribution import precedence
from csat_hook.sync.ingest import COMPARED
from csat_hook.sync.ingest import IngestResult
from csat_hook.sync.ingest import note_edit_in_place
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.records import Submission
from csat_hook.sync.records import place


@dataclass(frozen=True)
class Recredit:
    """Credit the history's row ``fingerprint`` to survey ``key`` again, read at ``ref``;
    ``was_at``: where the read found the answer it replaces (None: not found)."""

    key: str
    fingerprint: str
    ref: str
    was_at: str | None


class Watch:
    """What a read of every row is checked against: the history's submissions and the
    answers of their surveys (:func:`store.history_standing`)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.history, self.current = store.history_standing(conn)

    def identities(self) -> set[str]:
        """The identities whose rows the read should note: every one in the history, and the
        answers of their surveys."""
        return self.history.keys() | {fingerprint for fingerprint, _ in self.current.values()}

    def plan(
        self, batch: SourceBatch, digests: Mapping[str, str], secrets: Sequence[str]
    ) -> list[Recredit]:
        """The surveys to credit again after ``batch`` (a read of every row), given the
        stored row digests of :meth:`identities` (digest → identity) and the secrets a new
        submission's reference is verified under."""
        if not self.history:
            return []
        found: dict[str, str] = {}  # identity → the lowest row the read found it at
        for digest, row in batch.raw_seen.items():
            fingerprint = digests.get(digest)
            if fingerprint is not None:
                place(found, fingerprint, f"row {row}")
        watched = self.identities()
        for fingerprint, ref in batch.found.items():
            if fingerprint in watched:
                place(found, fingerprint, ref)
        last = batch.last_known
        if last is not None and last in watched and batch.unterminated is not None:
            # Parsed at a last row without a line break (a warned reading is parsed every
            # run): whole, since its identity is a processed one, and there.
            place(found, last, batch.unterminated)
        best: dict[str, tuple[str, str]] = {}  # survey key → its best history row found
        for fingerprint, ref in found.items():
            standing = self.history.get(fingerprint)
            if standing is None:
                continue
            other = best.get(standing.survey_key)
            rank = precedence(standing.submitted_at, ref)
            if other is None or rank > precedence(self.history[other[0]].submitted_at, other[1]):
                best[standing.survey_key] = (fingerprint, ref)
        if best:
            # A new submission of the survey that outranks its best history row found is what
            # a first read credits: the ingest weighs it against the answer as usual, and
            # crediting the history row first would report (and alert on) a rating the
            # source no longer gives (an answer edited in place beside an earlier row). Only
            # one whose reference verifies is credited: one that names the survey but is
            # not its reference (a signature edited) is unverified, and the row is still due.
            for sub in batch.submissions:
                key = sub.named_key()
                if key in best:
                    fingerprint, ref = best[key]
                    history_rank = precedence(self.history[fingerprint].submitted_at, ref)
                    if precedence(sub.submitted_at, sub.ref) > history_rank and isinstance(
                        check_reference(sub, secrets), Credited
                    ):
                        del best[key]
        plans = []
        for key, (fingerprint, ref) in best.items():
            current = self.current.get(key)
            if current is None or current[0] == fingerprint:
                continue  # no answer stored (deleted by hand), or this row is it
            answer, standing = current
            at = found.get(answer)
            if at is not None and precedence(standing.submitted_at, at) > precedence(
                self.history[fingerprint].submitted_at, ref
            ):
                continue  # the answer's row is there and outranks every history row found
            plans.append(Recredit(key, fingerprint, ref, at))
        return plans


def overtaken(
    conn: sa.Connection, plans: Sequence[Recredit], credited: Sequence[Submission]
) -> Sequence[Recredit]:
    """``plans`` (made by the read) once ``credited`` (submissions credited since, by the run's
    reverify: forged answers a secret put back verifies, of rows the read found) are stored:
    a plan whose survey has one of them that outranks the row it credits again credits that
    one instead (the best), as a first read of the source credits it. It is in the history
    then (:func:`apply` credits it), or the answer already (:func:`apply` skips it): a row put
    back in the history by the plan, ranked over the one just credited, was credited (a
    survey's answer removed from the sheet in the run that put the secret back)."""
    if not plans or not credited:
        return plans
    best: dict[str, Submission] = {}
    for sub in credited:
        key = sub.named_key()
        other = best.get(key)
        if other is None or precedence(sub.submitted_at, sub.ref) > precedence(
            other.submitted_at, other.ref
        ):
            best[key] = sub
    kept = store.history_rows(conn, [plan.fingerprint for plan in plans if plan.key in best])
    revised = []
    for plan in plans:
        better, row = best.get(plan.key), kept.get(plan.fingerprint)
        if (
            better is not None
            and row is not None
            and precedence(better.submitted_at, better.ref) > precedence(row.submitted_at, plan.ref)
        ):
            plan = replace(plan, fingerprint=better.fingerprint, ref=better.ref)
        revised.append(plan)
    return revised


def apply(
    conn: sa.Connection, plans: Collection[Recredit], now: datetime, into: IngestResult
) -> dict[str, Any]:
    """Credit ``plans`` (in the ingest's transaction, before its submissions): each survey's
    answer goes to the history and the history's row becomes its answer, counted as updated
    (an edit in place, warned as the ingest warns it, when it is read at the answer's row in
    the same instant). ``into.answers`` is extended with the new answers (as
    ``store.AnswerRow``); returns the answers they replaced, by survey key."""
    before = store.answer_rows(conn, [plan.key for plan in plans])
    kept = store.history_rows(conn, [plan.fingerprint for plan in plans])
    plans = [p for p in plans if p.key in before and p.fingerprint in kept]
    store.archive_answers(conn, [plan.key for plan in plans])  # before they are replaced
    for plan in plans:
        old, row = before[plan.key], kept[plan.fingerprint]
        store.promote_history(conn, row, plan.ref, now)
        into.updated += 1
        if row.submitted_at == old.submitted_at and plan.ref == (plan.was_at or old.source_ref):
            changed = [
                label for label, name in COMPARED if row._mapping[name] != old._mapping[name]
            ]
            note_edit_in_place(into, plan.ref, changed)
        into.answers.append(
            store.AnswerRow(
                plan.key,
                old.helpdesk,
                old.dialog_id,
                old.agent_key,
                old.issued_at,
                row.rating,
                row.comment,
                row.submitted_at,
                row.nps,
            )
        )
    return {plan.key: before[plan.key] for plan in plans}
