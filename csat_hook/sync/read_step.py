"""The sync's first step: read the source, doing only the work its bytes call for.

Three ways, cheapest first, each giving the batch a row-by-row read of every row would give:

* **replayed**: a whole-reading source's bytes are those of its last clean read, under the
  same settings, with the processed rows as that read left them: its outcome is said again
  and nothing is decoded (:mod:`.read_memo`);
* **appended**: the bytes start with that read's rows and go on with more: only the added rows
  are decoded and parsed (``ResultsSource.fetch_after``), and the identities among them that
  are already processed (a row deleted and added back, a double-click across two reads) are
  looked up in the database instead of loading every processed identity;
* **read**: everything, each row recognised by its digest or parsed (``ResultsSource.fetch``);
  or, for a source that filters (the Forms API after a first read), what the filter returns,
  the processed identities among it looked up after the read rather than all loaded before.

A read of every row of a sheet or export, and a read of every response of a form (the Forms
API with no filter: ``sync --full``, a first read, or the full read ``full_read_hours`` makes
due), also notes where it found the rows kept in the history, and which surveys to credit
again from them (:mod:`.recredit`); the unverified answers it did not find are forgotten after
it (``ingest.forget_gone_unverified``). A filtered Forms read lists only the responses submitted
since its watermark, so a deleted response is noticed at the next full read. An appended read
whose added rows hold one reads every row instead, as does one whose added rows give a survey
whose answer's row is gone a submission that does not outrank it (:func:`answer_row_gone`).

Either way, a last row that may have been cut (``SourceBatch.unterminated``: a CSV export
read while it was still being written) and does not read as a complete answer is left for
the next run (:func:`leave_cut_row`). A read of every row that finds no data row where rows
were read from the source before (a sheet cleared, an export cut short) is taken as no read of
every row, so that nothing stored from the source is forgotten, and said (:func:`hold_emptied`).
"""

from __future__ import annotations

import logging
from collections.abc import Container
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine

from csat_hook.errors import ConfigError
from csat_hook.sync import cache
from csat_hook.sync import read_memo
from csat_hook.sync import recredit
from csat_hook.sync import retime
from csat_hook.sync import skips
from csat_hook.sync import store
from csat_hook.sync.attribution import Credited
from csat_hook.sync.attribution import check_reference
from csat_hook.sync.config import RESULT_ROLES
from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.config import SyncSettings
from csat_hook.sync.records import KnownRows
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.sources.base import ResultsSource
from csat_hook.sync.sources.table import REQUIRED_ROLES

logger = logging.getLogger(__name__)


@dataclass
class SourceRead:
    """A read's batch and what the ingest needs besides it.

    ``skipped``: the rows recorded as skipped before the read (identity → reason).
    ``memo``: the keys to remember the batch under (None: a replay, whose memo stays).
    ``known``: what a row-by-row whole read was given, so that the row digests no row has any
    more are forgotten after it (None: no such read).
    ``how``: ``replayed``, ``appended`` or ``read``.
    ``no_legacy``: a scan found no legacy digest (``store.legacy_present``), for the ingest
    to remember (``store.note_no_legacy``).
    ``recredits``: the surveys a read of every row found to credit again (:mod:`.recredit`).
    ``every_row``: the read was meant to meet every row the source holds (a sheet or export
    read row by row, or every response of a form listed, no filter), so a stored answer it
    does not find is no longer there (``Places.whole``, which also asks that the batch be
    complete: not emptied, not cut).
    ``retimes``: the stored rows the read met at a later time, to store it before the batch
    is credited (:mod:`.retime`; the plans it makes are among ``recredits``).
    """

    batch: SourceBatch
    skipped: dict[str, str]
    memo: read_memo.MemoKeys | None
    known: KnownRows | None
    how: str
    no_legacy: bool = False
    recredits: list[recredit.Recredit] = field(default_factory=list)
    every_row: bool = False
    retimes: retime.Times = field(default_factory=dict)


def read_source(
    engine: Engine, config: SyncSettings, source: ResultsSource, *, full: bool, now: datetime
) -> SourceRead:
    """Read ``source`` (``full``: every row, row by row, whatever was remembered) as at
    ``now``, the run's clock (a row dated more than a day after it is skipped)."""
    source.read_at(now)
    whole = source.prefetch()
    keys = None if whole is None else read_memo.MemoKeys.of(config, source.key, whole)
    with engine.connect() as conn:
        skipped = skips.skipped_reasons(conn)
        memo = None if keys is None or full else read_memo.load(conn, source.key, keys, skipped)
        if memo is not None and keys is not None and memo.digest == keys.digest:
            return SourceRead(memo.replay(source.kind), skipped, None, None, "replayed")
        legacy: bool | None = None  # store.legacy_present, asked at most once
        if memo is not None and memo.resume is not None:
            legacy = store.legacy_present(conn)
            # Nothing is given as known: what the added rows hold is looked up below.
            batch = None if legacy else source.fetch_after(memo.resume, KnownRows(skipped=skipped))
            if batch is not None:
                leave_cut_row(batch, config.token.all_secrets())
                processed = store.processed_among(conn, named_keys(batch))
                # A row kept in the history added back may be its survey's answer again: a
                # read of every row weighs it (recredit.py); so is a row of a survey whose
                # answer's row is gone (answer_row_gone). Rare: the added rows are few.
                if not (processed and store.history_among(conn, processed)) and not (
                    answer_row_gone(conn, batch, processed)
                ):
                    warn_after_now(batch, now)
                    memo.extend(batch, processed)
                    return SourceRead(batch, skipped, keys, None, "appended", no_legacy=True)
                # Weighed in a read of every row, which parses the source read again: what
                # prefetch read is let go by fetch_after, and fetch reads it anew. The memo is
                # keyed by that read's digests, not the first's: a download saved (or a row
                # submitted) between the two had been remembered under the first read's bytes,
                # and those bytes back (the row deleted again) replayed rows they do not hold.
                whole = source.prefetch()
                keys = None if whole is None else read_memo.MemoKeys.of(config, source.key, whole)
        # The columns the last read of every row of a sheet or export read (a question whose
        # title was edited since has none now: check_columns_kept).
        columns_before = None if whole is None else read_memo.last_columns(conn, source.key)
        if source.remembers:
            source.recall(read_memo.recalled(conn, source.key))
        stored_mark = store.get_watermark(conn, source.key)
        watermark = None if full else stored_mark
        if watermark is not None and watermark > store.watermark_limit(now):
            # Not a time seen (stored before the limit existed): the reads it filtered may
            # have missed answers, so this one reads everything, and stores a sane one.
            watermark = None
        every = source.full_read_every
        if watermark is not None and store.full_read_due(conn, source.key, every, now):
            # Read everything again: edits the filter may have missed, or responses last read
            # under another reading (READING_VERSION).
            watermark = None
        # An incremental read (the Forms API's filter) returns the responses of the last hour
        # or so: the processed ones among them are looked up after it, not all loaded before.
        if watermark is not None and whole is None and legacy is None:
            legacy = store.legacy_present(conn)
        incremental = watermark is not None and whole is None and not legacy
        # Read row by row (a sheet, an export) or every response listed (no filter).
        meets_every_row = whole is not None or watermark is None
        watch: recredit.Watch | None = None
        noted: dict[str, str] = {}
        if incremental:
            known = KnownRows(skipped=skipped)
        else:
            # Skipped rows are read again: they are not among the processed ones.
            known = KnownRows(store.known_fingerprints(conn), skipped)
            known.read_until = stored_mark  # a later copy of a processed row: retime.py
            # A sheet or export is read whole, and a form's every response is listed with no
            # filter: where its rows kept in the history are. Not a filtered read (a legacy
            # digest left): it does not meet every response, so it cannot tell one is gone.
            watch = recredit.Watch(conn) if meets_every_row else None
            watched = watch.identities() if watch is not None else frozenset()
            known.watched = watched
            known.raw, known.raw_orphans, noted = cache.known_row_digests(conn, known, watched)
    batch = source.fetch(known, watermark)
    check_columns_kept(batch, columns_before, config.results.columns)
    leave_cut_row(batch, config.token.all_secrets())
    if incremental:
        with engine.connect() as conn:
            drop_processed(conn, batch)
    warn_after_now(batch, now)
    # Not a filtered read (the Forms API's since its watermark): none new is no emptying.
    # A last row left cut counts for none (a copy begun again: the titles and part of a row).
    if watermark is None and batch.rows_read == batch.blank_rows:
        with engine.connect() as conn:
            if hold_emptied(conn, batch, source):
                # The last clean read's memo stays: this read stored nothing, so the same
                # rows back are that read's again (replayed, or their added rows read).
                keys = None
    # Not when the last row was left cut: the answer not found may be that row's, whole next
    # run (credited again from the history now, it would flip back then, alerting meanwhile).
    every_row = batch.complete and not batch.left_cut
    secrets = config.token.all_secrets()
    watching = watch if every_row else None
    times: retime.Times = {}
    plans: list[recredit.Recredit] = []
    if batch.later:
        with engine.connect() as conn:
            times, plans = retime.weigh(conn, batch, secrets, watching)
    if watching is not None:
        plans = watching.plan(batch, noted, secrets)
    return SourceRead(
        batch,
        skipped,
        keys,
        known if whole is not None else None,
        "read",
        legacy is False,
        recredits=plans,
        every_row=meets_every_row,
        retimes=times,
    )


def hold_emptied(conn: Connection, batch: SourceBatch, source: ResultsSource) -> bool:
    """Whether ``batch``, a read of every row of ``source`` that found no data row (the
    header row alone, blank rows, nothing at all, or only a cut last row left for the next
    run: :func:`leave_cut_row`), is held back from being one because rows were read from the
    source before; if so, it is marked incomplete and the run says so.

    Contract. Rows were read before when the last read of every row of the source that found
    some is remembered (:func:`read_memo.last_rows`: a sheet's or export's, clean or not, a
    form's read of every response), or when unverified answers or skipped rows stored from it
    are still there (``store.unverified_of_source``, ``skips.count_of_source``).
    Then the read is no read of every row (``batch.complete`` false, as for an export with no
    byte): the source's unverified answers and skipped rows are kept
    (:func:`~csat_hook.sync.ingest.forget_gone_unverified`, :func:`skips.record_rereads`), its
    rows' digests too (``cache.prune_row_digests``), no survey is credited again from the
    history (:mod:`.recredit`), and a Forms read in full is not noted as one. Credited
    answers are never forgotten by a read, and the report still counts them. An export cut
    short, a sheet cleared by mistake, a CSV replaced by an empty template, a form's responses
    deleted: the stored rows are what is left of them.
    The run says so: one warning in the batch (the run's summary and JSON output) and a
    ``sync.source-emptied`` warning in the log, naming the source's key, the data rows of
    that last read when remembered and how many stored rows are kept (never a cell).

    Only a read with no data row is held back: one with fewer rows (1,000 down to 3) is a
    read of every row as any other (rows are deleted on purpose, too), and so is the first
    read with rows after an emptying, which forgets the stored rows it does not find. A
    first read of a source nothing was read from says nothing."""
    before = read_memo.last_rows(conn, source.key)
    unverified = store.unverified_of_source(conn, source.identity)
    skipped = skips.count_of_source(conn, source.kind, source.identity)
    if not (before or unverified or skipped):
        return False
    batch.complete = False
    kept = f"{unverified:,} unverified answer{'' if unverified == 1 else 's'} and {skipped:,} "
    kept += f"skipped row{'' if skipped == 1 else 's'}"
    had = "rows were read from it before"
    if before:
        had = f"the last read with rows found {before:,} data row{'' if before == 1 else 's'}"
    batch.warnings.append(
        f"{source.key}: no data row read (the header row alone, or nothing), where {had}: "
        f"not taken as the whole source, so what was stored from it is kept and still "
        f"reported ({kept} stored from it, and every credited answer). An export cut short, "
        "a sheet cleared, a CSV replaced by an empty template, a form's responses deleted? "
        "Once it has rows again it is read as before, and the stored rows it no longer has "
        "are forgotten then"
    )
    said: dict[str, Any] = {
        "source": source.key,
        "count": unverified + skipped,
        "reason": f"no data row read where {had}: the stored rows are kept",
    }
    if before:  # the last read's rows, when remembered
        said["rows"] = before
    logger.warning("sync.source-emptied", extra=said)
    return True


# The questions a row may leave unanswered, whose column a header may lack (a form without
# them); the others' titles must be in the header.
_OPTIONAL_ROLES = tuple(role for role in RESULT_ROLES if role not in REQUIRED_ROLES)


def check_columns_kept(
    batch: SourceBatch, before: dict[str, str] | None, columns: ColumnsConfig
) -> None:
    """ConfigError when ``batch``, a read of a sheet's or export's header row, finds no column
    for a question that the last read of every row of the source (``before``:
    :func:`read_memo.last_columns`) read from a column, while ``results.columns`` still names
    the question: its title was edited in the form (Forms renames the responses sheet's
    column) or the column was deleted. Read without it, each row's identity lost that answer,
    so every stored answer was taken for an edit in place, its comment (agent or ticket
    field, NPS answer) replaced by nothing, in a run that said "ok". A question whose titles
    are emptied (``[]``) is no longer looked for, and then nothing is said."""
    if not before or not batch.columns:
        return  # no earlier read remembered, or no header row read (an empty tab or file)
    lost = [
        role
        for role in _OPTIONAL_ROLES
        if role in before
        and role not in batch.columns
        and any(title.strip() for title in getattr(columns, role))
    ]
    if not lost:
        return
    found = "; ".join(f"results.columns.{role} was read from {before[role]!r}" for role in lost)
    raise ConfigError(
        f"{', '.join(f'results.columns.{role}' for role in lost)}: no column with one of these "
        f"titles now, where the last read found one ({found}): a question's title edited in "
        "the form renames its column; add the new title to that list (or set it to [] if the "
        "form no longer asks the question). Read without it, every stored answer's value of "
        "it would be replaced by nothing"
    )


def warn_after_now(batch: SourceBatch, now: datetime) -> None:
    """Say which new submissions are dated after now (beyond the skew allowed to Google's
    clock, :data:`store.WATERMARK_SKEW`): credited as read, such a row outranks every later
    submission of its survey until that time, and tops the reports' latest answers. A date
    typed by hand or a clock or zone that is wrong makes one; the run says so, naming the row
    and its time (never a text of the row). One warning, naming the first such row and
    counting the others: a zone setting that is off dates every recent row after now, and a
    warning per row would make the read's outcome too big to remember (read_memo), so every
    later run would read every row again. It is said by this run alone
    (``SourceBatch.dated_ahead``: a replay of the read does not say it again)."""
    limit = store.watermark_limit(now)
    future = [s for s in batch.submissions if s.submitted_at > limit]
    if not future:
        return
    first, others = future[0], len(future) - 1
    more = f" and {others:,} more row{'s' if others > 1 else ''}" if others else ""
    batch.dated_ahead = (
        f"{first.ref}{more}: submitted after now "
        f"({first.submitted_at:%Y-%m-%d %H:%M} UTC{', the first' if others else ''}); "
        f"{'they are' if others else 'it is'} credited, and outrank"
        f"{'' if others else 's'} every later submission of "
        f"{'their surveys' if others else 'its survey'} until then: a date typed by hand, or "
        "a clock or time zone setting (results.csv.timezone, the spreadsheet's) that is wrong?"
    )
    batch.warnings.append(batch.dated_ahead)


def answer_row_gone(conn: Connection, batch: SourceBatch, processed: Container[str]) -> bool:
    """Whether a submission among the added rows of ``batch`` does not outrank its survey's
    stored answer (made earlier, or in the same instant) while that answer's row is no
    longer in the source: no row digest of its identity is stored. The last read of every
    row forgot the digests of the rows it did not find (``cache.prune_row_digests``), and
    the rows before the added ones are that read's. A first read of the source credits such
    a survey's submission found (:func:`csat_hook.sync.ingest._gone`), which only a read of
    every row knows to do: weighed against the stored answer alone, the added row went to
    the history and the removed row's answer stayed credited. A row whose digest is not
    stored for another reason costs a read of every row, never another outcome."""
    added: dict[str, datetime] = {}  # survey key → its earliest added submission
    for sub in batch.submissions:
        key = sub.named_key()
        if key and sub.fingerprint not in processed:
            earliest = added.get(key)
            added[key] = sub.submitted_at if earliest is None else min(earliest, sub.submitted_at)
    if not added:
        return False
    stored = store.answer_times(conn, added)
    weighed = {
        fingerprint
        for key, (fingerprint, submitted_at) in stored.items()
        if added[key] <= submitted_at and fingerprint not in processed
    }
    if not weighed:
        return False
    return bool(weighed - {fingerprint for _, fingerprint in cache.row_digests_of(conn, weighed)})


# Why an answer is unverified that a cut through its row can explain: the reference column
# not reached yet (missing), or the reference itself cut (malformed; forged when the cut
# leaves a shorter signature that still decodes). Not ``unsupported``: its version is signed.
CUT_UNVERIFIED = frozenset({"missing", "malformed", "forged"})


def leave_cut_row(batch: SourceBatch, secrets: Sequence[str]) -> None:
    """Take the source's last row out of ``batch`` when it may have been cut
    (``batch.unterminated``) and does not read as a complete answer: skipped (a cut
    timestamp or rating, or a rating not reached yet) or unverified for a reason a cut can
    cause (:data:`CUT_UNVERIFIED`). Stored, it would stay under an identity the completed
    row never has again (an unverified answer is never read again). It is not stored, not
    counted as read and its digest not remembered: the next read parses it, whole by then;
    the run says so in one warning, by row number. A last row that reads as a verified answer
    is kept (an export may simply lack a final line break); so is any row already processed
    (then it is not in the batch)."""
    ref = batch.unterminated
    if ref is None:
        return
    if batch.skipped and batch.skipped[-1].ref == ref:
        why = f"skipped as {batch.skipped.pop().reason}"
    elif batch.submissions and batch.submissions[-1].ref == ref:
        last = batch.submissions[-1]
        checked = check_reference(last, secrets)
        if isinstance(checked, Credited) or checked.reason not in CUT_UNVERIFIED:
            return
        batch.submissions.pop()
        if batch.raw_digests and batch.raw_digests[-1][1] == last.fingerprint:
            batch.raw_digests.pop()
        why = f"its reference {checked.reason}"
    else:
        return
    batch.rows_read -= 1
    batch.left_cut = True
    batch.warnings.append(
        f"{ref}: the last row of the file has no line break after it (or ends inside a "
        f"quoted cell) and does not read as a complete answer ({why}): the file may still "
        "be being written; not stored, it is read again on the next run"
    )


LOOKED_UP_MAX = 20_000  # identities looked up one chunk at a time; beyond, all are loaded


def drop_processed(conn: Connection, batch: SourceBatch) -> None:
    """Count the submissions of ``batch`` (read with nothing known) that are already
    processed as unchanged, as a read given every processed identity would have (each with
    the time it was read at: :mod:`.retime`)."""
    if len(batch.submissions) <= LOOKED_UP_MAX:
        processed: Container[str] = store.processed_among(conn, named_keys(batch))
    else:
        processed = store.known_fingerprints(conn)
    batch.drop_processed(processed)


def named_keys(batch: SourceBatch) -> dict[str, str]:
    """Each submission's identity → the survey key its reference names, as the ingest
    credits it (:meth:`~csat_hook.sync.records.Submission.named_key`): what
    :func:`store.processed_among` looks the answers up by."""
    return {s.fingerprint: s.named_key() for s in batch.submissions}
