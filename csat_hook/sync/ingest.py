"""Store one source batch: credited answers, their history, unverified answers, skips.

Runs inside the caller's transaction. Every table is unique on the row identity (history,
unverified, skipped) or on the survey (answers), so applying the same batch twice changes
nothing.

Which submission of a survey is credited (:func:`~csat_hook.sync.attribution.precedence`):
the latest; in the same instant, the one further down the sheet. A stored answer is replaced
by a later submission, or by one made in the same instant further down, or by its own row
edited in place (same row, same time, other rating, comment or fields: reported as a
warning); what it is replaced by never depends on the order rows arrived in, so an
incremental run credits what a first run over the same sheet would (a stored answer in such a
tie is placed where the current read found it: :mod:`.places`). A read of every row of a
sheet or export, or of every response of a form, that no longer finds a stored answer's row
credits the survey's submission it found instead, earlier or further up as it may be, as a
first read of the source would (rows kept in the history that it found: :mod:`.recredit`).
The replaced answer and every other submission go to the history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from datetime import datetime
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.db.text import is_storable
from csat_hook.db.text import spreadsheet_rendering
from csat_hook.db.text import ticket_form
from csat_hook.sync import cache
from csat_hook.sync import store
from csat_hook.sync.attribution import FORGED
from csat_hook.sync.attribution import Credited
from csat_hook.sync.attribution import Unverified
from csat_hook.sync.attribution import check_reference
from csat_hook.sync.attribution import fields_edited
from csat_hook.sync.attribution import latest_per_survey
from csat_hook.sync.attribution import precedence
from csat_hook.sync.dataset import answer_agent_key
from csat_hook.sync.places import Places
from csat_hook.sync.places import placed
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.records import Submission

MAX_LISTED = 50
# How much earlier than its link was issued a submission may be dated before it is counted
# (IngestResult.before_sent): the skew allowed to Google's clock (store.WATERMARK_SKEW).
SENT_SKEW = store.WATERMARK_SKEW


@dataclass
class IngestResult:
    new: int = 0
    updated: int = 0
    edited_in_place: int = 0  # of the updated: the same row edited (same submission time)
    history_only: int = 0
    edited_fields: int = 0
    warnings: list[str] = field(default_factory=list)
    unverified: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_rows: list[dict[str, str]] = field(default_factory=list)
    unverified_rows: list[dict[str, str]] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)  # new or replaced, as store.AnswerRow
    # The rows whose ticket field holds the signed ticket id as a spreadsheet program rounds a
    # long number (attribution.spreadsheet_rendering), up to MAX_LISTED: warned of by the
    # run, which names the column (SyncSummary.absorb).
    rounded_tickets: list[str] = field(default_factory=list)
    # For each reason (missing, malformed, forged) the batch stored answers as unverified for:
    # how many answers are stored so, submitted after the latest credited answer (these
    # included; forged: under the current secrets). A changed token.secret, or a reference
    # question made again, drops every answer from then on; a run reading a few at a time
    # judged only its own few, below results.min_skipped_rows, and said "ok" every run.
    unverified_in_a_row: dict[str, int] = field(default_factory=dict)
    # Submissions made their survey's answer by this run dated more than SENT_SKEW before its
    # link was issued, where the answer they replace (if any) was not: what is new in this
    # run, as ``new`` and ``updated`` are (an edit of such an answer, or a read of every row,
    # counts none again). The first one's row and by how much: a
    # form's clock, or a zone setting (results.csv.timezone, the spreadsheet's), that is off.
    # Credited in their survey's period all the same (the cohort is the send time), but the
    # times the alerts, the digests and the tabs show are off by as much, and nothing said so.
    before_sent: int = 0
    before_sent_first: tuple[str, timedelta] | None = None


def ingest_submissions(
    conn: sa.Connection,
    submissions: Sequence[Submission],
    source: str,
    *,
    secrets: Sequence[str],
    agents: Mapping[str, Mapping[str, Any]],
    surveys: Mapping[str, Any],
    answers: Mapping[str, Any],
    now: datetime,
    into: IngestResult,
    places: Places | None = None,
    origin: str | None = None,
) -> None:
    """Verify, classify and store ``submissions``, adding to ``into`` (``into.answers`` is
    extended with the answers added or replaced, as ``store.AnswerRow``). ``places``: where
    the read that gave them found the processed rows (a stored answer in a tie is placed
    there: :mod:`.places`). ``origin``: the source they were read from
    (``ResultsSource.identity``), stored with the unverified ones.

    ``agents`` is helpdesk → its static agents map; ``surveys`` is survey key → survey row
    (the agent as recorded at send time), both used only to tell whether fields were edited.
    ``answers`` is survey key → the current answer (``store.AnswerRow``).

    Called once per part of a batch (:func:`by_survey`), it stores what one call over the
    whole batch stores, provided every submission of a survey is in the same part and
    ``surveys``/``answers`` hold what the database holds for that part's surveys when the
    part is stored (earlier parts included). :func:`ingest_row_digests` comes first and
    :func:`ingest_rest` follows, once per batch."""
    credited: list[Credited] = []
    unverified: list[Unverified] = []
    for submission in submissions:
        checked = check_reference(submission, secrets, surveys)
        if isinstance(checked, Credited):
            credited.append(checked)
        else:
            unverified.append(checked)
    credited, unverified = _without_erased_text(conn, credited, unverified)
    _store_credited(conn, credited, source, agents, surveys, answers, now, into, places)
    _store_unverified(conn, unverified, source, now, into, secrets, origin)


def _without_erased_text(
    conn: sa.Connection, credited: list[Credited], unverified: list[Unverified]
) -> tuple[list[Credited], list[Unverified]]:
    """The submissions to surveys whose customer data was erased (``csat-hook erase``: an
    ``erasures`` row), or to dialogs erased as such (``erased_dialogs``: ``--dialog``, found
    stored or not), without their comment, form fields and cells: the source still holds
    the answer, and its rating is credited as any other, never the text that was erased (its
    fields, blank, count as not edited). A credited one is matched by its survey key or by
    its verified reference's helpdesk and dialog. An unverified one names such a survey by its
    reference, or such a dialog by what its reference says (``tokens.claimed``: a forged one
    is read), or by the dialog in the ticket field: any helpdesk's dialog of that id, as the
    field names none, compared as a person types a ticket (``db.text.ticket_form``: "#d38"
    is D38's) or as a spreadsheet program renders a numeric one (``1.23457E+18``, ``987``
    for 000987: ``db.text.spreadsheet_rendering``) as ``erase`` compares it (an erasure
    errs on erasing; ``erasure/store.py``).
    The identity stays
    the row's own, so the row is recognised as processed on the next run."""
    if (not credited and not unverified) or not store.any_erasure(conn):
        return credited, unverified  # the usual case: no erasure ever
    keys = {item.key for item in credited}
    keys.update(filter(None, (item.submission.named_key() for item in unverified)))
    named = [_named_dialog(item.submission) for item in unverified]
    tickets = {item.submission.field_ticket.strip() for item in unverified} - {""}
    dialogs = {item.ref.dialog_id for item in credited} | tickets
    dialogs.update(pair[1] for pair in named if pair)
    erased = store.erased_among(conn, sorted(keys), sorted(dialogs), sorted(tickets))
    if not (erased.keys or erased.dialogs or erased.tickets or erased.pair_forms):
        return credited, unverified

    def erased_dialog(pair: tuple[str, str] | None) -> bool:
        """An erased dialog's, written as stored or as ``erase --dialog`` was given it."""
        return pair is not None and (
            pair in erased.pairs or (pair[0], ticket_form(pair[1])) in erased.pair_forms
        )

    return (
        [
            replace(item, submission=_erased(item.submission))
            if item.key in erased.keys or erased_dialog((item.ref.helpdesk, item.ref.dialog_id))
            else item
            for item in credited
        ],
        [
            replace(item, submission=_erased(item.submission))
            if (
                item.submission.named_key() in erased.keys
                or erased_dialog(pair)
                or item.submission.field_ticket.strip() in erased.dialogs
                or ticket_form(item.submission.field_ticket) in erased.tickets
            )
            else item
            for item, pair in zip(unverified, named, strict=True)
        ],
    )


def _named_dialog(submission: Submission) -> tuple[str, str] | None:
    """The helpdesk and dialog an unverified submission's reference names, unchecked (None
    when it names none: missing, malformed, or a dialog id no database holds).

    Its payload is whatever its writer encoded: a dialog id with a NUL, which no dialog stored
    or erased holds (intake and ``erase --dialog`` refuse one), names none. Looked up among
    the erased dialogs, PostgreSQL refused it as a parameter (DataError): every run failed on
    that row, where SQLite's went on."""
    ref = tokens.claimed(submission.token.strip())
    if ref is None or not is_storable(ref.dialog_id):
        return None
    return (ref.helpdesk, ref.dialog_id)


def _erased(submission: Submission) -> Submission:
    return submission._replace(comment="", field_agent="", field_ticket="", headers=(), cells=())


def ingest_row_digests(conn: sa.Connection, batch: SourceBatch, *, keep: bool) -> None:
    """Store the batch's (raw digest, identity) pairs, once and before its submissions, in the
    transaction that stores every one of those rows (credited, history or unverified): they
    commit together or not at all, and the next run recognises each row by its cells.

    Unless ``keep`` (the caller still compares them with the stored digests, to prune the
    stale ones), the pairs are then dropped from the batch: one per row, ≈ 15 MB at 100,000
    rows, they were held through every part's look-ups, a first sync's peak of memory."""
    cache.insert_row_digests(conn, batch.raw_digests)
    if not keep:
        batch.raw_digests.clear()


def ingest_rest(
    conn: sa.Connection,
    batch: SourceBatch,
    *,
    source_key: str,
    now: datetime,
    into: IngestResult,
    origin: str | None = None,
) -> None:
    """What a batch stores besides its submissions and row digests, once and after them:
    skipped rows, re-keyed identities and the source's watermark (under ``source_key``,
    ``ResultsSource.key``). ``origin``: the source read (``ResultsSource.identity``), stored
    with the skipped rows (:func:`_store_skipped`)."""
    _store_skipped(conn, batch, now, into, origin)
    store.replace_legacy_fingerprints(conn, batch.rekeyed)
    if batch.watermark is not None:
        store.set_watermark(conn, source_key, batch.watermark, now)
        if batch.complete:  # an incremental source read in full: when, for the next full read
            store.note_full_read(conn, source_key, now)


def forget_gone_unverified(conn: sa.Connection, batch: SourceBatch, origin: str) -> int:
    """After a read (``batch``) that met every row of the source ``origin``
    (``ResultsSource.identity``: every row of a sheet or export, every response of a form
    listed with no filter; not cut, not emptied): the unverified answers stored are listed as
    a first read of that source as it is lists them.

    Those of that source whose identity the read did not find, neither recognised (by raw
    digest, parsed, at the last row) nor new in it, are forgotten: their row was removed or
    edited (a fixed reference is credited, an edited forged row is kept again under its new
    identity; a deleted response of a form). Those of another source are not: another sheet,
    tab, file or form was read, even of the same kind. Nor those stored before sources were
    told apart (no ``source_key``), whose source is not known.

    Those of that source it found at another row (rows above deleted, rows moved) are moved
    to the row it found them at (the lowest, where a first read places a double-click:
    :mod:`.places`). Those stored before sources were told apart that it found, read by a
    source of its kind, become that source's (and are moved). Those of another source it
    found are left as they are: the same answers read from another sheet or export change
    nothing (the other source's read of every row moves them, or forgets them once they are
    gone from it; this source's next read then stores them as its own).

    Returns how many went. Called after the batch is stored (re-keyed identities included),
    only for such a read (the caller decides: ``Places.whole``). Two statements read what it
    needs, whatever the rows read: the unverified answers and their stored row digests."""
    gone, moved = _unverified_weighed(conn, batch, origin)
    store.forget_unverified(conn, gone)
    store.move_unverified(conn, moved)
    return len(gone)


def unverified_gone(conn: sa.Connection, batch: SourceBatch, origin: str) -> set[int]:
    """The ids of the unverified answers :func:`forget_gone_unverified` would forget after
    ``batch``, asked before it is stored: the run's reverify (:mod:`.reverify`) credits none
    of them, as a first read of the source as it is meets none (a forged row deleted from the
    sheet in the run that put its secret back was credited, its rating outranking the row
    still there, and kept: the row's gone). One stored before sources were told apart, or
    under a legacy digest the batch re-keys, may be among them: it is credited by the next
    run instead, still unverified and unchecked."""
    return set(_unverified_weighed(conn, batch, origin)[0])


def _unverified_weighed(
    conn: sa.Connection, batch: SourceBatch, origin: str
) -> tuple[list[int], list[dict[str, Any]]]:
    """What :func:`forget_gone_unverified` forgets (ids, in order) and moves."""
    places = Places(batch, whole=True)
    if not places.whole:
        return [], []
    stored = store.unverified_places(conn)
    if not stored:
        return [], []
    where = places.at({row.fingerprint for row in stored}, cache.unverified_row_digests(conn))
    # Not gone: new in the batch, or read at the last row (which lends no place).
    kept = {sub.fingerprint for sub in batch.submissions} | {places.last_known}
    key = origin[:255]
    gone: list[int] = []
    moved: list[dict[str, Any]] = []
    for row in stored:
        ref = where.get(row.fingerprint)
        if ref is None:
            if row.source_key == key and row.fingerprint not in kept:
                gone.append(row.id)
            continue
        own = row.source_key == key or (row.source_key is None and row.source == batch.source)
        if own and (ref[:191], key) != (row.source_ref, row.source_key):
            moved.append({"id": row.id, "ref": ref[:191], "key": key})
    return sorted(gone), moved


def by_survey(submissions: Sequence[Submission], size: int) -> list[list[Submission]]:
    """``submissions`` in parts of about ``size``, in their order, except that every
    submission naming a survey goes into the part of that survey's first one (a part can
    then hold more than ``size``): :func:`ingest_submissions` decides between a survey's
    submissions only when they are stored together. The survey is the one its reference
    names, as :func:`~csat_hook.sync.attribution.check_reference` reads it; a submission
    without a reference names none."""
    # Most surveys have one submission. A first pass marks each key's hash in a bitmap of 64
    # bits per submission and keeps the slots met twice (≈ 1.5 % of them): only keys in those
    # slots can have a later submission, and only they are remembered by part. A dict of every
    # key's hash to its part was ≈ 100 bytes a submission, a first sync's peak with 1,000,000.
    # Two keys of one hash (or slot) share a part, which changes nothing: a part may hold any
    # surveys.
    slots = 1 << (len(submissions) * 64).bit_length()  # a power of two, ≥ 64 per submission
    mask = slots - 1
    bits = bytearray(slots >> 3)
    shared: set[int] = set()
    for submission in submissions:
        key = submission.token.strip().partition(".")[0]  # tokens.survey_key
        if key:
            slot = hash(key) & mask
            if bits[slot >> 3] & 1 << (slot & 7):
                shared.add(slot)
            else:
                bits[slot >> 3] |= 1 << (slot & 7)
    del bits
    parts: list[list[Submission]] = []
    part_of: dict[int, list[Submission]] = {}  # key hash → its part, for shared slots only
    for submission in submissions:
        key = submission.token.strip().partition(".")[0]
        tracked = bool(key) and ((digest := hash(key)) & mask) in shared
        part = part_of.get(digest) if tracked else None
        if part is None:
            if not parts or len(parts[-1]) >= size:
                parts.append([])
            part = parts[-1]
            if tracked:
                part_of[digest] = part
        part.append(submission)
    return parts


def _store_credited(
    conn: sa.Connection,
    credited: list[Credited],
    source: str,
    agents: Mapping[str, Mapping[str, Any]],
    surveys: Mapping[str, Any],
    answers: Mapping[str, Any],
    now: datetime,
    result: IngestResult,
    places: Places | None,
) -> None:
    """The submission of highest precedence of each survey becomes (or replaces) its answer;
    every other one, and an answer it replaces, goes to the history."""
    if not credited:
        return
    winners = latest_per_survey(credited)
    # A winner made in the same instant as the stored answer: that answer's row and content
    # decide (rare: looked up for these surveys only).
    ties = [
        key
        for key, item in winners.items()
        if (before := answers.get(key)) is not None
        and before.submitted_at == item.submission.submitted_at
    ]
    stored = store.stored_answers(conn, ties) if ties else {}
    if stored and places is not None:
        stored = placed(conn, stored, places)  # where a first read places them
    gone = _gone(conn, winners, answers, stored, places)
    # (item, fields edited) pairs; their row dicts are built a chunk at a time as they are
    # written (100,000 dicts of 17 keys held at once were a first sync's peak memory).
    current: list[tuple[Credited, bool]] = []
    history: list[tuple[Credited, bool]] = []
    replaced: list[str] = []

    def credit(pair: tuple[Credited, bool], before: Any) -> None:
        """``pair`` becomes its survey's answer (in place of ``before``, if any): counted as
        dated before its survey was sent when it is, and ``before`` was not (an edit of such an
        answer, or a read of every row meeting it again, was counted every time: the operator
        told of the same answers again and again)."""
        current.append(pair)
        item = pair[0]
        issued = item.ref.issued_at
        early = issued - item.submission.submitted_at
        if early > SENT_SKEW and (before is None or issued - before.submitted_at <= SENT_SKEW):
            result.before_sent += 1
            if result.before_sent_first is None:
                result.before_sent_first = (item.submission.ref, early)

    for item in credited:
        sub = item.submission
        before = answers.get(item.key)
        pair = (item, fields_edited(item, surveys.get(item.key), agents.get(item.ref.helpdesk)))
        result.edited_fields += pair[1]
        if (
            sub.field_ticket
            and sub.field_ticket != item.ref.dialog_id
            and len(result.rounded_tickets) < MAX_LISTED
            and spreadsheet_rendering(sub.field_ticket, item.ref.dialog_id) == "rounded"
        ):
            result.rounded_tickets.append(sub.ref)
        if winners[item.key] is not item:
            history.append(pair)
        elif before is None:
            credit(pair, before)
            result.new += 1
        elif sub.submitted_at > before.submitted_at or (
            item.key in gone and sub.submitted_at < before.submitted_at
        ):
            credit(pair, before)
            result.updated += 1
            replaced.append(item.key)
        elif sub.submitted_at < before.submitted_at:
            history.append(pair)
        else:
            answer = stored[item.key]
            if item.key in gone and answer.source_ref != sub.ref:
                answer = answer._replace(source_ref="")  # no row: every row is further down
            verdict = _same_instant(item, answer, result)
            if verdict == "history":
                history.append(pair)
            else:
                credit(pair, before)
                if verdict == "replace":
                    replaced.append(item.key)
    del winners
    result.history_only += len(history)
    store.archive_answers(conn, replaced)  # before the rows that replace them are written
    for chunk in _chunks(current):
        store.upsert_answers(conn, [_answer_row(i, e, source, now) for i, e in chunk])
    if gone:  # an earlier submission replacing an answer gone from the source
        store.overwrite_answers(
            conn,
            [
                _answer_row(i, e, source, now)
                for i, e in current
                if i.key in gone and i.submission.submitted_at < answers[i.key].submitted_at
            ],
        )
    for chunk in _chunks(history):
        store.insert_answer_history(conn, [_history_row(i, e, source, now) for i, e in chunk])
    # As _answer_row stores them (the same truncations).
    result.answers.extend(
        store.AnswerRow(
            item.key,
            item.ref.helpdesk,
            item.ref.dialog_id[:191],
            answer_agent_key(item.ref.agent),
            item.ref.issued_at,
            item.submission.rating,
            item.submission.comment,
            item.submission.submitted_at,
            item.submission.nps,
        )
        for item, _ in current
    )


def _gone(
    conn: sa.Connection,
    winners: Mapping[str, Credited],
    answers: Mapping[str, Any],
    stored: Mapping[str, store.StoredAnswer],
    places: Places | None,
) -> set[str]:
    """The surveys whose stored answer a read of every row did not find (``places.whole``),
    among those whose new submission does not outrank it: its row was removed or edited away,
    and a first read of the source as it is credits the survey's submission found instead,
    earlier or further up as it may be (:mod:`.recredit` does the same for rows kept in the
    history). Looked up only for those surveys (rare: a changed time zone, a removed row)."""
    if places is None or not places.whole:
        return set()
    earlier = [
        key
        for key, item in winners.items()
        if (before := answers.get(key)) is not None
        and item.submission.submitted_at < before.submitted_at
    ]
    if not earlier and not stored:
        return set()
    weighed = {**(store.stored_answers(conn, earlier) if earlier else {}), **stored}
    missing = places.missing(conn, {a.fingerprint for a in weighed.values() if a.fingerprint})
    return {key for key, answer in weighed.items() if answer.fingerprint in missing}


COMPARED = (
    ("rating", "rating"),
    ("comment", "comment"),
    ("agent field", "field_agent"),
    ("ticket field", "field_ticket"),
    ("NPS answer", "nps"),
)


def _same_instant(item: Credited, before: store.StoredAnswer, result: IngestResult) -> str:
    """A survey's submission made in the same instant as its stored answer: ``replace`` it
    (further down the sheet, or its own row edited in place), go to the ``history`` (further
    up), or ``refresh`` it (the stored answer itself, read under another identity, e.g. one
    an older version stored: it takes this row's identity and nothing else changes)."""
    sub: Submission = item.submission
    changed = [label for label, name in COMPARED if getattr(sub, name) != getattr(before, name)]
    if not changed or (changed == ["NPS answer"] and before.nps is None):
        # The stored answer itself, or the same row read again once results.columns.nps
        # names the question: it takes this row's identity (and its NPS answer).
        return "refresh"
    mine = precedence(sub.submitted_at, sub.ref)
    theirs = precedence(sub.submitted_at, before.source_ref)
    if mine < theirs:
        return "history"
    result.updated += 1
    if mine == theirs:
        note_edit_in_place(result, sub.ref, changed)
    return "replace"


def note_edit_in_place(result: IngestResult, ref: str, changed: Sequence[str]) -> None:
    """Count an edit in place of the row ``ref`` in ``result``, with a warning naming what
    ``changed`` (the labels of :data:`COMPARED`; none named, no warning), up to
    :data:`MAX_LISTED` warnings."""
    result.edited_in_place += 1
    if changed and len(result.warnings) < MAX_LISTED:
        result.warnings.append(
            f"{ref}: {' and '.join(changed)} changed in place (same submission "
            "time); the edited answer is credited, the previous one kept in history"
        )


def _history_row(item: Credited, edited: bool, source: str, now: datetime) -> dict[str, Any]:
    sub = item.submission
    return {
        "fingerprint": sub.fingerprint,
        "survey_key": item.key,
        "token": item.token,
        "rating": sub.rating,
        "comment": sub.comment,
        "submitted_at": sub.submitted_at,
        "field_agent": sub.field_agent,
        "field_ticket": sub.field_ticket,
        "fields_edited": edited,
        "source": source,
        "source_ref": sub.ref[:191],
        "recorded_at": now,
        "nps": sub.nps,
    }


def _chunks(items: list[Any], size: int = 5000) -> Iterator[list[Any]]:
    """Bounded statements: a first sync of 100,000 answers must not build them all at once."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _answer_row(item: Credited, edited: bool, source: str, now: datetime) -> dict[str, Any]:
    sub, ref = item.submission, item.ref
    return {
        "survey_key": item.key,
        "token": item.token,
        "helpdesk": ref.helpdesk,
        "dialog_id": ref.dialog_id[:191],
        "agent_key": answer_agent_key(ref.agent),
        "issued_at": ref.issued_at,
        "rating": sub.rating,
        "comment": sub.comment,
        "submitted_at": sub.submitted_at,
        "field_agent": sub.field_agent,
        "field_ticket": sub.field_ticket,
        "fields_edited": edited,
        "source": source,
        "source_ref": sub.ref[:191],
        "updated_at": now,
        "fingerprint": sub.fingerprint,
        "nps": sub.nps,
    }


def _store_unverified(
    conn: sa.Connection,
    unverified: list[Unverified],
    source: str,
    now: datetime,
    result: IngestResult,
    secrets: Sequence[str],
    origin: str | None,
) -> None:
    """A forged one keeps its reference and the secrets it was checked under: it is credited
    once a secret added to them verifies it (:mod:`.reverify`). Each keeps the source it was
    read from (``origin``): a read of every row of that source forgets it once it is gone
    (:func:`forget_gone_unverified`)."""
    rows = []
    checked_with = tokens.key_set_id(secrets) if unverified else None
    source_key = origin[:255] if origin is not None else None
    for item in unverified:
        sub = item.submission
        forged = item.reason == FORGED
        result.unverified[item.reason] += 1
        if len(result.unverified_rows) < MAX_LISTED:
            result.unverified_rows.append({"row": sub.ref, "reason": item.reason})
        rows.append(
            {
                "fingerprint": sub.fingerprint,
                "reason": item.reason,
                "source": source,
                "source_ref": sub.ref[:191],
                "submitted_at": sub.submitted_at,
                "rating": sub.rating,
                "comment": sub.comment,
                "field_agent": sub.field_agent,
                "field_ticket": sub.field_ticket,
                "source_row": sub.source_row(),
                "recorded_at": now,
                # A forged reference is canonical base64url of at most tokens.MAX_TOKEN_LENGTH
                # (a longer one is malformed): it fits its column as it is.
                "token": sub.token.strip() if forged else None,
                "nps": sub.nps,
                "checked_with": checked_with if forged else None,
                "source_key": source_key,
            }
        )
    store.insert_unverified(conn, rows)


def _store_skipped(
    conn: sa.Connection,
    batch: SourceBatch,
    now: datetime,
    result: IngestResult,
    origin: str | None,
) -> None:
    """Each keeps the source it was read from (``origin``): a read of every row of that
    source forgets it once it is gone (:func:`.skips.record_rereads`).

    One recorded already (the same cells, skipped before) that another source read last, or
    none (recorded before migration 0019), becomes this source's, at the row it is at here:
    a skipped row is the source's that read it last, whose read of every row forgets it once
    it is gone from it. (Kept as the first source's, a row of a sheet that is also in the
    sheet's CSV export, once the operator switched to the export and fixed it there, would
    stay skipped for ever: the sheet is no longer read. One still in the other source is the
    other's again at that source's next read.)"""
    source_key = origin[:255] if origin is not None else None
    rows = []
    for skip in batch.skipped:
        result.skipped[skip.reason] += 1
        if len(result.skipped_rows) < MAX_LISTED:
            result.skipped_rows.append(
                {"row": skip.ref, "reason": skip.reason, "detail": skip.detail}
            )
        rows.append(
            {
                "fingerprint": skip.fingerprint,
                "source": batch.source,
                "source_ref": skip.ref[:191],
                "reason": skip.reason,
                "detail": skip.detail[:255],
                "recorded_at": now,
                "source_key": source_key,
            }
        )
    store.insert_skipped_rows(conn, rows)
    if source_key is not None and rows:
        store.claim_skipped_rows(conn, rows, source_key)
