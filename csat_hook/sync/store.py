"""The sync's statements: the answers ledger, history, unverified and skipped rows, the
watermark, and the large reads the report is built from (the lock's own are in
:mod:`csat_hook.sync.lock`).

Bulk statements take lists of plain dicts and run as one executemany each (see
:mod:`csat_hook.sync.bulk`). Re-reading a source row is a no-op because every ledger table is
unique on the row's fingerprint (its identity), and answers on the survey.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import NamedTuple

import sqlalchemy as sa

from csat_hook.db.engine import dialect_insert
from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import erased_dialogs
from csat_hook.db.schema import erasures
from csat_hook.db.schema import surveys
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.db.schema import sync_state
from csat_hook.db.schema import unverified_answers
from csat_hook.db.text import RenderedIds
from csat_hook.db.text import folded
from csat_hook.db.text import in_chunks
from csat_hook.db.text import may_be_rendering
from csat_hook.db.text import ticket_form
from csat_hook.db.text import ticket_spellings
from csat_hook.sync.bulk import among
from csat_hook.sync.bulk import bulk_execute
from csat_hook.sync.bulk import bulk_iter
from csat_hook.sync.bulk import bulk_select
from csat_hook.sync.bulk import driver_rows
from csat_hook.sync.bulk import epoch_microseconds
from csat_hook.sync.bulk import matching
from csat_hook.sync.records import IDENTITY_PREFIX
from csat_hook.sync.records import LEGACY_PRESENT
from csat_hook.sync.values import READING_VERSION


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return dialect_insert(conn.dialect.name, table)


def known_fingerprints(conn: sa.Connection) -> set[str]:
    """Identities of every source row already processed: credited or kept unverified.

    Skipped rows are not among them: they are read again on every run (:mod:`.skips`).
    Digests stored before identities existed (still on unverified rows until their row is
    read again) are included as stored, with :data:`LEGACY_PRESENT` when there is any.
    """
    union = sa.union_all(
        sa.select(answers.c.fingerprint).where(answers.c.fingerprint.is_not(None)),
        sa.select(answer_history.c.fingerprint),
        sa.select(unverified_answers.c.fingerprint),
    )
    known = set(conn.execute(union).scalars())
    if any(not f.startswith(IDENTITY_PREFIX) for f in known):
        known.add(LEGACY_PRESENT)
    return known


class Standing(NamedTuple):
    """A survey's stored submission as a whole read weighs it (:mod:`.recredit`)."""

    survey_key: str
    submitted_at: datetime
    source_ref: str


def history_standing(
    conn: sa.Connection,
) -> tuple[dict[str, Standing], dict[str, tuple[str, Standing]]]:
    """Every submission kept in the history (identity → :class:`Standing`), and the current
    answer of each survey that has one (survey key → its identity and standing): what
    :mod:`.recredit` weighs the rows a whole read found against. Two reads of the history's
    unique index and of the answers of those surveys (empty on a first sync)."""
    history = {
        fingerprint: Standing(key, submitted_at, ref or "")
        for fingerprint, key, submitted_at, ref in conn.execute(
            sa.select(
                answer_history.c.fingerprint,
                answer_history.c.survey_key,
                answer_history.c.submitted_at,
                answer_history.c.source_ref,
            ).where(answer_history.c.survey_key.is_not(None))
        )
    }
    if not history:
        return history, {}
    with_history = sa.select(answer_history.c.survey_key).where(
        answer_history.c.survey_key.is_not(None)
    )
    current = {
        key: (fingerprint, Standing(key, submitted_at, ref or ""))
        for key, fingerprint, submitted_at, ref in conn.execute(
            sa.select(
                answers.c.survey_key,
                answers.c.fingerprint,
                answers.c.submitted_at,
                answers.c.source_ref,
            ).where(answers.c.fingerprint.is_not(None), answers.c.survey_key.in_(with_history))
        )
    }
    return history, current


def history_among(conn: sa.Connection, fingerprints: Iterable[str]) -> set[str]:
    """Which of ``fingerprints`` (few) are kept in the history (by its unique index)."""
    found: set[str] = set()
    for condition in among(conn, answer_history.c.fingerprint, fingerprints):
        found.update(
            conn.execute(sa.select(answer_history.c.fingerprint).where(condition)).scalars()
        )
    return found


class Erased(NamedTuple):
    """What :func:`erased_among` found erased (``csat-hook erase``) among what it was asked:
    survey ``keys`` (``erasures``), ``dialogs`` of any helpdesk (an erased survey's dialog, or
    an erased dialog: what a typed ticket field is matched with), and ``(helpdesk, dialog)``
    ``pairs`` erased as dialogs (``erased_dialogs``: what a reference is matched with)."""

    keys: set[str]
    dialogs: set[str]
    pairs: set[tuple[str, str]]
    # The erased dialogs (any helpdesk's) that typed tickets name, as ``ticket_form``s: how a
    # ticket field is matched ("#d38" is D38's), as ``erase`` matches it; with the tickets
    # that are a spreadsheet's rendering of an erased numeric dialog ("1.23457e+18").
    tickets: set[str]
    # The ``pairs`` as ``(helpdesk, ticket_form)``: an erasure recorded as "d38" before
    # anything of D38 was stored is D38's (``erase --dialog`` takes a ticket as typed).
    pair_forms: set[tuple[str, str]]


def any_erasure(conn: sa.Connection) -> bool:
    """Whether ``csat-hook erase`` ever recorded an erasure: the usual answer, no, in one cheap
    look before the submissions' look-ups are even gathered."""
    return any(
        conn.execute(sa.select(table.c.id).limit(1)).first() is not None
        for table in (erasures, erased_dialogs)
    )


# The erased rows (``erasures`` and ``erased_dialogs`` together) read whole at most, to match
# what a sync asks about in Python (:func:`erased_among`): a few MB of ids at the most, where
# erasures are normally tens to thousands. More are looked up by what is asked (the SQL path).
ERASED_WHOLE = 50_000
# ... and only while they are at most this many per value asked: a row read whole costs a
# microsecond or two, a value looked up (a spelling folded in an ``IN`` list that scans both
# tables' ids, for want of an index on their lower()) far more; a sync asking about a
# handful of dialogs is not worth reading thousands of erasures for.
ERASED_PER_ASKED = 10
# Every ASCII character but NUL (which PostgreSQL cannot hold): the database's lower() of it
# is compared with Python's, once per look-up, before an ASCII spelling is folded in Python.
FOLD_PROBE = "".join(map(chr, range(1, 128)))


class _ErasedRows(NamedTuple):
    """The erased rows read whole, each dialog id with its :func:`folded` form as the
    database folds it (``lower()``: its own rules outside ASCII, not Python's)."""

    keyed: list[sa.Row[Any]]  # erasures: survey_key, dialog_id, lowered
    dialogs: list[sa.Row[Any]]  # erased_dialogs: helpdesk, dialog_id, lowered
    ascii_folds: bool  # the database lowers ASCII as Python's str.lower() does


def erased_among(
    conn: sa.Connection,
    keys: Sequence[str],
    dialogs: Sequence[str],
    tickets: Sequence[str] = (),
    *,
    whole: bool | None = None,
) -> Erased:
    """Which of the survey ``keys``, and which of the ``dialogs`` (and as which helpdesk's),
    had their customer data erased (``csat-hook erase``), and which of the typed ``tickets``
    name an erased dialog as a person types it (:func:`~csat_hook.db.text.ticket_form`)
    or as a spreadsheet program rendered its numeric id (:func:`_renderings_of_erased`): a
    submission to one is stored without its comment (:mod:`.ingest`).

    The erased rows, when few beside what is asked (at most :data:`ERASED_PER_ASKED` per
    value asked and :data:`ERASED_WHOLE` in all: one bounded count tells), are read whole and
    matched here, in a few statements however much is asked (a first sync asks about every
    answer's dialog); more are looked up by what is asked, a statement per
    :data:`~csat_hook.db.text.IN_CHUNK` spellings. Both give the same answer: the erased ids
    are folded by the database either way, and a spelling asked about in Python only when it
    is ASCII and the database lowers ASCII as Python does (else it is looked up). ``whole``
    chooses the way (tests); None decides by the count."""
    found = Erased(set(), set(), set(), set(), set())
    typed = {ticket_form(ticket) for ticket in tickets} - {""}
    forms = {ticket_form(dialog) for dialog in (*dialogs, *tickets)} - {""}
    spellings = sorted({s for dialog in (*dialogs, *tickets) for s in ticket_spellings(dialog)})
    rows = _erased_rows(conn, len(keys) + len(dialogs) + len(tickets), whole)
    asked = spellings
    # Rows matched by a spelling, as the look-up by spelling finds them: a survey's dialog id;
    # a dialog's (helpdesk, dialog id).
    recorded: list[str] = []
    pairs: list[tuple[str, str]] = []
    if rows is not None and rows.ascii_folds:
        asked = [spelling for spelling in spellings if not spelling.isascii()]
        lowered = {spelling.lower() for spelling in spellings if spelling.isascii()}
        recorded.extend(row.dialog_id for row in rows.keyed if row.lowered in lowered)
        pairs.extend(
            (row.helpdesk, row.dialog_id) for row in rows.dialogs if row.lowered in lowered
        )
    for chunk in in_chunks(asked):
        lowered_chunk = [folded(spelling) for spelling in chunk]
        recorded.extend(
            conn.execute(
                sa.select(erasures.c.dialog_id).where(
                    folded(erasures.c.dialog_id).in_(lowered_chunk)
                )
            ).scalars()
        )
        pairs.extend(
            (row.helpdesk, row.dialog_id)
            for row in conn.execute(
                sa.select(erased_dialogs.c.helpdesk, erased_dialogs.c.dialog_id).where(
                    folded(erased_dialogs.c.dialog_id).in_(lowered_chunk)
                )
            )
        )
    found.tickets.update(form for form in map(ticket_form, recorded) if form in typed)
    for helpdesk, dialog_id in pairs:
        form = ticket_form(dialog_id)
        if form in forms:
            found.pair_forms.add((helpdesk, form))
        if form in typed:
            found.tickets.add(form)
    # The erased rows read whole hold every id the renderings are matched against: not read
    # again (the same ids, as the database picks them: all ASCII digits).
    known = (
        [row.dialog_id for row in (*rows.keyed, *rows.dialogs) if _all_digits(row.dialog_id)]
        if rows is not None
        else None
    )
    found.tickets.update(_renderings_of_erased(conn, tickets, known))
    if rows is not None:
        asked_keys, asked_dialogs = set(keys), set(dialogs)
        for row in rows.keyed:
            if row.survey_key in asked_keys:
                found.keys.add(row.survey_key)
            if row.dialog_id in asked_dialogs:
                found.dialogs.add(row.dialog_id)
        found.pairs.update(
            (row.helpdesk, row.dialog_id) for row in rows.dialogs if row.dialog_id in asked_dialogs
        )
    else:
        for condition in among(conn, erasures.c.survey_key, keys):
            found.keys.update(
                conn.execute(sa.select(erasures.c.survey_key).where(condition)).scalars()
            )
        for match in matching(conn, dialogs):
            found.dialogs.update(
                conn.execute(
                    sa.select(erasures.c.dialog_id).where(match(erasures.c.dialog_id)).distinct()
                ).scalars()
            )
            found.pairs.update(
                (row.helpdesk, row.dialog_id)
                for row in conn.execute(
                    sa.select(erased_dialogs.c.helpdesk, erased_dialogs.c.dialog_id).where(
                        match(erased_dialogs.c.dialog_id)
                    )
                )
            )
    found.dialogs.update(dialog for _, dialog in found.pairs)
    return found


def _erased_rows(conn: sa.Connection, asked: int, whole: bool | None) -> _ErasedRows | None:
    """The erased rows whole (``whole``; when None, only if there are at most
    :data:`ERASED_PER_ASKED` per one of the ``asked`` values and :data:`ERASED_WHOLE` in
    all, counted up to that many and one: a bounded count); None for the look-up by what is
    asked. Three statements: the count (with the :data:`FOLD_PROBE`), and a read per table."""
    if whole is False or (whole is None and not asked):
        return None
    limit = min(ERASED_WHOLE, ERASED_PER_ASKED * asked)
    counts = [
        sa.select(sa.func.count())
        .select_from(sa.select(table.c.id).limit(limit + 1).subquery())
        .scalar_subquery()
        for table in (erasures, erased_dialogs)
    ]
    count, probe = conn.execute(sa.select(counts[0] + counts[1], folded(FOLD_PROBE))).one()
    if whole is None and count > limit:
        return None
    lowered = folded(erasures.c.dialog_id).label("lowered")
    surveys_read = sa.select(erasures.c.survey_key, erasures.c.dialog_id, lowered)
    lowered = folded(erased_dialogs.c.dialog_id).label("lowered")
    dialogs_read = sa.select(erased_dialogs.c.helpdesk, erased_dialogs.c.dialog_id, lowered)
    return _ErasedRows(
        list(conn.execute(surveys_read)),
        list(conn.execute(dialogs_read)),
        probe == FOLD_PROBE.lower(),
    )


ERASED_PAGE = 5000  # erased dialog ids read at a time for :func:`_renderings_of_erased`


def _renderings_of_erased(
    conn: sa.Connection, tickets: Sequence[str], known: Sequence[str] | None = None
) -> set[str]:
    """The typed ``tickets`` that are a spreadsheet program's rendering of an erased numeric
    dialog's id (``db.text.spreadsheet_rendering``: ``1.23457E+18`` for
    1234567890123456789, ``987`` for 000987), as their :func:`~csat_hook.db.text.ticket_form`,
    as ``erase`` matches an unverified answer's ticket (``erasure/store.py``). A rounded
    rendering cannot be turned back into the id to look it up by: the erased ids that are
    all digits are read instead (only when a ticket has a rendering's shape, a page at a
    time), and the tickets found among them by bisection (``db.text.RenderedIds``), never
    each ticket compared with each id. ``known``: those ids, already read (the erased rows
    read whole), else they are read here."""
    shaped = {ticket for ticket in tickets if may_be_rendering(ticket_form(ticket))}
    if not shaped:
        return set()
    erased = RenderedIds(known if known is not None else _numeric_erased_ids(conn))
    return {ticket_form(ticket) for ticket in shaped if erased.rendered_by(ticket)}


def _all_digits(dialog_id: str) -> bool:
    """Whether ``dialog_id`` is all ASCII digits, as :func:`_numeric_erased_ids` has the
    database pick them."""
    return dialog_id.isascii() and dialog_id.isdigit()


def _numeric_erased_ids(conn: sa.Connection) -> Iterator[str]:
    """The dialog ids of ``erasures`` and ``erased_dialogs`` that are all ASCII digits (the
    database picks them: a pattern each dialect has its own words for), read
    :data:`ERASED_PAGE` rows at a time by primary key: a bounded read, however many."""
    for table in (erasures, erased_dialogs):
        column = table.c.dialog_id
        digits: sa.ColumnElement[bool]
        if conn.dialect.name == "postgresql":
            digits = column.op("~", is_comparison=True)("^[0-9]+$")
        else:  # SQLite's GLOB: a class of characters, case-sensitive
            digits = sa.and_(
                column != "", sa.not_(column.op("GLOB", is_comparison=True)("*[^0-9]*"))
            )
        page = sa.select(table.c.id, column).where(digits).order_by(table.c.id).limit(ERASED_PAGE)
        after = 0
        while rows := conn.execute(page.where(table.c.id > after)).all():
            after = rows[-1].id
            yield from (row.dialog_id for row in rows)


def processed_among(conn: sa.Connection, fingerprints: Mapping[str, str]) -> set[str]:
    """Which of ``fingerprints`` are processed (:func:`known_fingerprints` for a few rows).

    ``fingerprints`` maps each row's identity to the survey key its reference names
    (``tokens.survey_key`` of the stripped reference, as the ingest credits it). The history
    and the unverified answers are looked up by their unique index on the identity; the
    answers by the survey key (their unique index) and the identity compared after it: an
    answer's identity covers its reference, so a row processed as the current answer names
    that answer's key. The answers keep no index on the identity: every answer stored would
    write it, at a random place, and it cost a first sync of 100,000 answers 0.5–0.8 s of
    SQLite's time (migration 0015 dropped the one 0014 added)."""
    found: set[str] = set()
    for match in matching(conn, fingerprints):
        union = sa.union_all(
            sa.select(answer_history.c.fingerprint).where(match(answer_history.c.fingerprint)),
            sa.select(unverified_answers.c.fingerprint).where(
                match(unverified_answers.c.fingerprint)
            ),
        )
        found.update(conn.execute(union).scalars())
    for match in matching(conn, set(fingerprints.values())):
        rows = conn.execute(
            sa.select(answers.c.survey_key, answers.c.fingerprint).where(
                match(answers.c.survey_key)
            )
        )
        found.update(
            fingerprint
            for key, fingerprint in rows
            if fingerprint is not None and fingerprints.get(fingerprint) == key
        )
    return found


# The sync_state row saying a scan found no legacy digest. None is ever written again (every
# processed row has carried an identity since migration 0003, and a legacy one is only ever
# replaced), so once none is left the answer is remembered instead of scanning again.
NO_LEGACY_KEY = "no legacy digests"


def legacy_present(conn: sa.Connection) -> bool:
    """Whether any processed row still carries a digest from before identities (only a read
    of every row re-keys those: see :func:`known_fingerprints`). Scans the processed tables
    (the answers' fingerprint has no index) unless :func:`note_no_legacy` was recorded."""
    if get_watermark(conn, NO_LEGACY_KEY) is not None:
        return False
    for column in (
        answers.c.fingerprint,
        answer_history.c.fingerprint,
        unverified_answers.c.fingerprint,
    ):
        legacy = sa.select(column).where(
            column.is_not(None), sa.not_(column.startswith(IDENTITY_PREFIX, autoescape=True))
        )
        if conn.execute(legacy.limit(1)).first() is not None:
            return True
    return False


def note_no_legacy(conn: sa.Connection, now: datetime) -> None:
    """Remember that :func:`legacy_present` found none (in the ingest's transaction, so a
    dry run leaves nothing); once remembered, it stays as first written."""
    stmt = _insert(conn, sync_state).values(source=NO_LEGACY_KEY, watermark=now, updated_at=now)
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["source"]))


def replace_legacy_fingerprints(conn: sa.Connection, pairs: Sequence[tuple[str, str]]) -> None:
    """Store each row's identity in place of the legacy digest it was recognised by (pairs as
    ``SourceBatch.rekeyed`` holds them). Answers and their history carry identities since
    migration 0003; unverified rows are replaced here, the first time their row is read again
    (skipped rows are read again anyway, and their stale records replaced: see :mod:`.skips`)."""
    read = [{"old": old, "new": new} for old, new in pairs]
    for table, rows in ((unverified_answers, read), (answer_history, read)):
        if rows:
            conn.execute(
                sa.update(table)
                .where(table.c.fingerprint == sa.bindparam("old"))
                .values(fingerprint=sa.bindparam("new")),
                rows,
            )


_ARCHIVED = [
    "fingerprint",
    "survey_key",
    "token",
    "rating",
    "comment",
    "submitted_at",
    "field_agent",
    "field_ticket",
    "fields_edited",
    "source",
    "source_ref",
    "nps",
]


def archive_answers(conn: sa.Connection, keys: Sequence[str]) -> None:
    """Copy the current answers of the surveys ``keys`` into the history (before they are
    replaced)."""
    for condition in among(conn, answers.c.survey_key, keys):
        select = sa.select(*[answers.c[name] for name in _ARCHIVED], answers.c.updated_at).where(
            condition, answers.c.fingerprint.is_not(None)
        )
        stmt = _insert(conn, answer_history).from_select([*_ARCHIVED, "recorded_at"], select)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["fingerprint"]))


def history_rows(conn: sa.Connection, fingerprints: Iterable[str]) -> dict[str, sa.Row[Any]]:
    """The history's rows of ``fingerprints`` (few), by identity."""
    return _whole_rows(conn, answer_history.c.fingerprint, fingerprints)


def answer_rows(conn: sa.Connection, keys: Iterable[str]) -> dict[str, sa.Row[Any]]:
    """The current answers of the surveys ``keys`` (few), whole, by survey key."""
    return _whole_rows(conn, answers.c.survey_key, keys)


def _whole_rows(
    conn: sa.Connection, column: sa.Column[str], values: Iterable[str]
) -> dict[str, sa.Row[Any]]:
    """The whole rows of ``column``'s table whose ``column`` is one of ``values`` (a unique
    column), by that value."""
    found: dict[str, sa.Row[Any]] = {}
    for condition in among(conn, column, values):
        for row in conn.execute(sa.select(column.table).where(condition)):
            found[row._mapping[column.name]] = row
    return found


def promote_history(conn: sa.Connection, kept: sa.Row[Any], ref: str, now: datetime) -> None:
    """Make the history's row ``kept`` its survey's current answer again, read at ``ref``
    (the current one archived first: :func:`archive_answers`), and take it out of the
    history: a survey's submission is its answer or in its history, never both. Unlike
    :func:`upsert_answers`, it may put an earlier submission back (:mod:`.recredit`)."""
    values = {name: kept._mapping[name] for name in _ARCHIVED if name != "survey_key"}
    values.update(source_ref=ref[:191], updated_at=now)
    conn.execute(sa.update(answers).where(answers.c.survey_key == kept.survey_key).values(values))
    conn.execute(sa.delete(answer_history).where(answer_history.c.fingerprint == kept.fingerprint))


class StoredAnswer(NamedTuple):
    """What decides between a stored answer and a submission made in the same instant."""

    source_ref: str
    fingerprint: str | None
    rating: int
    comment: str
    field_agent: str
    field_ticket: str
    nps: int | None


def stored_answers(conn: sa.Connection, keys: Sequence[str]) -> dict[str, StoredAnswer]:
    """The current answers of the surveys ``keys`` (few: only ties are looked up)."""
    found: dict[str, StoredAnswer] = {}
    for condition in among(conn, answers.c.survey_key, keys):
        rows = conn.execute(
            sa.select(
                answers.c.survey_key,
                answers.c.source_ref,
                answers.c.fingerprint,
                answers.c.rating,
                answers.c.comment,
                answers.c.field_agent,
                answers.c.field_ticket,
                answers.c.nps,
            ).where(condition)
        )
        for key, ref, fingerprint, rating, comment, agent, ticket, nps in rows:
            found[key] = StoredAnswer(
                ref or "", fingerprint, rating, comment or "", agent or "", ticket or "", nps
            )
    return found


def answer_times(conn: sa.Connection, keys: Iterable[str]) -> dict[str, tuple[str, datetime]]:
    """Survey key → the identity and submission time of its current answer, for the surveys
    ``keys`` (few: by the answers' unique index) whose answer has an identity."""
    found: dict[str, tuple[str, datetime]] = {}
    for condition in among(conn, answers.c.survey_key, keys):
        rows = conn.execute(
            sa.select(answers.c.survey_key, answers.c.fingerprint, answers.c.submitted_at).where(
                condition
            )
        )
        for key, fingerprint, submitted_at in rows:
            if fingerprint is not None:
                found[key] = (fingerprint, submitted_at)
    return found


def retime(conn: sa.Connection, times: Mapping[str, tuple[datetime, str, str]]) -> None:
    """Store that the rows of the identities in ``times`` (identity → time, ref, the survey
    key its reference names) were submitted at that later time, read at that ref
    (sync/retime.py): answers, history and unverified answers alike, each only where its
    stored time is earlier. An answer is found by its survey key (the answers keep no index
    on the identity: :func:`processed_among`), the others by their identity."""
    if not times:
        return
    params = [
        {"f": fingerprint, "k": key, "at": when, "ref": ref[:191]}
        for fingerprint, (when, ref, key) in times.items()
    ]
    for table in (answers, answer_history, unverified_answers):
        at = sa.bindparam("at", type_=table.c.submitted_at.type)
        where = [table.c.fingerprint == sa.bindparam("f"), table.c.submitted_at < at]
        if table is answers:
            where.append(answers.c.survey_key == sa.bindparam("k"))
        conn.execute(
            sa.update(table).where(*where).values(submitted_at=at, source_ref=sa.bindparam("ref")),
            params,
        )


def move_answers(conn: sa.Connection, refs: Mapping[str, str]) -> None:
    """Store where the current answers of the surveys in ``refs`` (survey key → ref) are now
    read (sync/places.py)."""
    if refs:
        conn.execute(
            sa.update(answers)
            .where(answers.c.survey_key == sa.bindparam("key"))
            .values(source_ref=sa.bindparam("ref")),
            [{"key": key, "ref": ref[:191]} for key, ref in refs.items()],
        )


def upsert_answers(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert answers, one per survey; an existing one is replaced only by a submission made
    at the same time or later (the ingest decides between same-time ones).

    The condition lives in the statement, so a replayed or out-of-order batch can never put
    an older rating back.
    """
    if not rows:
        return
    stmt = _insert(conn, answers)
    updatable = [c.name for c in answers.c if c.name not in ("id", "survey_key")]
    stmt = stmt.on_conflict_do_update(
        index_elements=["survey_key"],
        set_={name: stmt.excluded[name] for name in updatable},
        where=answers.c.submitted_at <= stmt.excluded.submitted_at,
    )
    bulk_execute(conn, stmt, answers, rows)


def overwrite_answers(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace stored answers whatever their submission time (:func:`upsert_answers` never
    puts an earlier one back): the few the ingest found gone from a read of every row."""
    if not rows:
        return
    names = [c.name for c in answers.c if c.name not in ("id", "survey_key")]
    stmt = (
        sa.update(answers)
        .where(answers.c.survey_key == sa.bindparam("key"))
        .values({name: sa.bindparam(f"new_{name}") for name in names})
    )
    conn.execute(
        stmt,
        [
            {"key": row["survey_key"], **{f"new_{name}": row[name] for name in names}}
            for row in rows
        ],
    )


def _insert_new(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        stmt = _insert(conn, table).on_conflict_do_nothing(index_elements=["fingerprint"])
        bulk_execute(conn, stmt, table, rows)


def insert_answer_history(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record credited submissions that are not the current answer (each fingerprint once)."""
    _insert_new(conn, answer_history, rows)


def insert_unverified(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record answers that cannot be credited (each fingerprint once)."""
    _insert_new(conn, unverified_answers, rows)


def unverified_to_check(
    conn: sa.Connection, reason: str, key_set: str, after_id: int, limit: int
) -> list[sa.Row[Any]]:
    """Up to ``limit`` unverified answers of ``reason`` not checked under ``key_set`` (never
    checked, or under another set of secrets), by id after ``after_id``."""
    t = unverified_answers
    query = (
        sa.select(t)
        .where(
            t.c.reason == reason,
            sa.or_(t.c.checked_with.is_(None), t.c.checked_with != key_set),
            t.c.id > after_id,
        )
        .order_by(t.c.id)
        .limit(limit)
    )
    return list(conn.execute(query))


def unverified_since_credited(conn: sa.Connection, reason: str, key_set: str | None) -> int:
    """How many unverified answers of ``reason`` (with ``key_set``: checked under it, still
    not verified) were submitted after the latest credited answer (all of them when none is)."""
    t = unverified_answers
    latest = sa.select(sa.func.max(answers.c.submitted_at)).scalar_subquery()
    query = (
        sa.select(sa.func.count())
        .select_from(t)
        .where(
            t.c.reason == reason,
            sa.or_(latest.is_(None), t.c.submitted_at > latest),
        )
    )
    if key_set is not None:
        query = query.where(t.c.checked_with == key_set)
    return int(conn.execute(query).scalar_one())


def mark_checked(conn: sa.Connection, ids: Sequence[int], key_set: str) -> None:
    """Unverified answers checked under ``key_set`` and still not verified."""
    for start in range(0, len(ids), 1000):
        conn.execute(
            sa.update(unverified_answers)
            .where(unverified_answers.c.id.in_(ids[start : start + 1000]))
            .values(checked_with=key_set)
        )


def forget_unverified(conn: sa.Connection, ids: Sequence[int]) -> None:
    """Unverified answers now credited (their identity lives on in the answers or history)."""
    for start in range(0, len(ids), 1000):
        conn.execute(
            sa.delete(unverified_answers).where(
                unverified_answers.c.id.in_(ids[start : start + 1000])
            )
        )


class UnverifiedPlace(NamedTuple):
    """Where an unverified answer was read: its source (kind and identity) and row."""

    id: int
    fingerprint: str
    source: str
    source_key: str | None
    source_ref: str | None


def unverified_places(conn: sa.Connection) -> list[UnverifiedPlace]:
    """Where every unverified answer was read (few, usually; one statement)."""
    t = unverified_answers
    query = sa.select(t.c.id, t.c.fingerprint, t.c.source, t.c.source_key, t.c.source_ref)
    return [UnverifiedPlace(*row) for row in conn.execute(query)]


def move_unverified(conn: sa.Connection, moves: Sequence[Mapping[str, Any]]) -> None:
    """Store where unverified answers are read now: ``id``'s ``ref`` (row) and ``key``
    (source identity). One executemany."""
    if moves:
        t = unverified_answers
        conn.execute(
            sa.update(t)
            .where(t.c.id == sa.bindparam("b_id"))
            .values(source_ref=sa.bindparam("ref"), source_key=sa.bindparam("key")),
            [{"b_id": m["id"], "ref": m["ref"], "key": m["key"]} for m in moves],
        )


def insert_skipped_rows(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Record unreadable source rows (each fingerprint once)."""
    _insert_new(conn, sync_skipped_rows, rows)


def unverified_of_source(conn: sa.Connection, origin: str) -> int:
    """How many unverified answers were stored from the source ``origin``
    (``ResultsSource.identity``): what its read of every row would forget of them if it did
    not find them (``ingest.forget_gone_unverified``)."""
    query = sa.select(sa.func.count()).select_from(unverified_answers)
    where = unverified_answers.c.source_key == origin[:255]
    return int(conn.execute(query.where(where)).scalar_one())


def claim_skipped_rows(
    conn: sa.Connection, rows: Sequence[Mapping[str, Any]], source_key: str
) -> None:
    """The skipped rows recorded among ``rows`` (as :func:`insert_skipped_rows` takes them,
    read from the source ``source_key``) that another source read last, or that name none
    (recorded before migration 0019), become that source's: its key, kind and row (the first
    of ``rows`` with that fingerprint, as the insert keeps). One statement per chunk of
    fingerprints finds them (usually none: those of this source are left as they are)."""
    table = sync_skipped_rows
    first: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        first.setdefault(row["fingerprint"], row)
    other = sa.or_(table.c.source_key.is_(None), table.c.source_key != source_key)
    claimed: list[str] = []
    for condition in among(conn, table.c.fingerprint, first):
        claimed += conn.execute(sa.select(table.c.fingerprint).where(condition, other)).scalars()
    if claimed:
        conn.execute(
            sa.update(table)
            .where(table.c.fingerprint == sa.bindparam("fp"))
            .values(
                source_key=sa.bindparam("to_key"),
                source=sa.bindparam("to_source"),
                source_ref=sa.bindparam("to_ref"),
            ),
            [
                {
                    "fp": fingerprint,
                    "to_key": source_key,
                    "to_source": first[fingerprint]["source"],
                    "to_ref": first[fingerprint]["source_ref"],
                }
                for fingerprint in sorted(claimed)
            ],
        )


def get_watermark(conn: sa.Connection, source: str) -> datetime | None:
    return conn.execute(
        sa.select(sync_state.c.watermark).where(sync_state.c.source == source)
    ).scalar()


# How far past our clock a watermark may be. A watermark is a time the source wrote (Google's
# clock), and the next read asks for what came after it: one beyond ``now`` (a response dated
# 9999 by whatever wrote it) would make every read ask for the future and miss each new answer.
# Held back to ``now + WATERMARK_SKEW`` it can only be earlier than the time seen, which reads
# some responses again (recognised by their identity), never skips one, however far Google's
# clock is from ours. Small, so that a bogus time costs at most this much of the overlap.
WATERMARK_SKEW = timedelta(minutes=5)


def watermark_limit(now: datetime) -> datetime:
    """The latest watermark a source may have at ``now`` (see :data:`WATERMARK_SKEW`)."""
    return now + WATERMARK_SKEW


def set_watermark(conn: sa.Connection, source: str, watermark: datetime, now: datetime) -> None:
    """Move a source's watermark forward (never back), to :func:`watermark_limit` at most.

    A stored watermark beyond that limit (written before the limit existed, or before our
    clock stepped back) is replaced whatever the new one is: it is not a time seen.
    """
    limit = watermark_limit(now)
    watermark = min(watermark, limit)
    stmt = _insert(conn, sync_state).values(source=source, watermark=watermark, updated_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=["source"],
        set_={"watermark": stmt.excluded.watermark, "updated_at": stmt.excluded.updated_at},
        where=sa.or_(
            sync_state.c.watermark.is_(None),
            sync_state.c.watermark < stmt.excluded.watermark,
            sync_state.c.watermark > limit,
        ),
    )
    conn.execute(stmt)


def full_read_key(source: str) -> str:
    """The ``sync_state`` row whose watermark is when ``source`` was last read in full under
    this code's way of reading cells (:data:`~csat_hook.sync.values.READING_VERSION`); before
    reading versions, ``<source> full read``."""
    return f"{source} full read, reading {READING_VERSION}"


def full_read_due(conn: sa.Connection, source: str, every: timedelta | None, now: datetime) -> bool:
    """True when ``source`` was never read in full under this reading (the first run after an
    upgrade that reads some cell differently lists every response once, as a sheet's rows
    are all read once: rows read before the watermark are not listed again otherwise), or
    last more than ``every`` ago (None: no periodic full read)."""
    last = get_watermark(conn, full_read_key(source))
    return last is None or (every is not None and now - last >= every)


def note_full_read(conn: sa.Connection, source: str, now: datetime) -> None:
    """Record that ``source`` was read in full at ``now`` under this reading, and forget when
    it was under another (an older version's, or a newer one's before a downgrade: a run
    under that reading again reads every response once more)."""
    key = full_read_key(source)
    set_watermark(conn, key, now, now)
    column = sync_state.c.source
    other = sa.and_(column.startswith(f"{source} full read", autoescape=True), column != key)
    conn.execute(sa.delete(sync_state).where(other))


class AnswerRow(NamedTuple):
    """A credited answer as the report reads it (the column order of :func:`all_answers`)."""

    survey_key: str
    helpdesk: str
    dialog_id: str
    agent_key: str
    issued_at: datetime
    rating: int
    comment: str | None
    submitted_at: datetime
    nps: int | None


ANSWER_ROWS = sa.select(*[answers.c[name] for name in AnswerRow._fields])


def all_answers(conn: sa.Connection) -> list[AnswerRow]:
    """Every credited answer (the current submission of each survey)."""
    return bulk_select(conn, ANSWER_ROWS, row_type=AnswerRow)


def iter_answers(conn: sa.Connection) -> Iterator[tuple[Any, ...]]:
    """:func:`all_answers`, a partition at a time (:func:`~csat_hook.sync.bulk.bulk_iter`), as
    plain tuples in :class:`AnswerRow`'s field order: the report's dataset unpacks them by
    position (:func:`~csat_hook.sync.dataset.build_dataset`), and a named tuple per answer
    was 19 ms of a first sync's 100,000."""
    return bulk_iter(conn, ANSWER_ROWS, row_type=tuple)


def answers_among(conn: sa.Connection, keys: Sequence[str]) -> dict[str, AnswerRow]:
    """The current answers of the surveys ``keys`` (survey key → :class:`AnswerRow`): what
    :func:`all_answers` holds for them, looked up instead of read whole."""
    found: dict[str, AnswerRow] = {}
    for condition in among(conn, answers.c.survey_key, keys):
        for row in conn.execute(ANSWER_ROWS.where(condition)):
            found[row.survey_key] = AnswerRow._make(row)
    return found


class SurveyFact(NamedTuple):
    """A survey as the metrics read it (the column order of :func:`survey_facts`)."""

    token: str
    helpdesk: str
    dialog_id: str
    agent_id: str | None
    agent_name: str | None
    agent_email: str | None
    team: str | None
    status: str
    created_us: int  # creation time (the cohort instant), microseconds since the Unix epoch
    channel: str | None


_SURVEY_FACTS = sa.select(
    surveys.c.token,
    surveys.c.helpdesk,
    surveys.c.dialog_id,
    surveys.c.agent_id,
    surveys.c.agent_name,
    surveys.c.agent_email,
    surveys.c.team,
    surveys.c.status,
    epoch_microseconds(surveys.c.created_at).label("created_us"),
    surveys.c.channel,
)
SIGNED_SURVEY_FACTS = _SURVEY_FACTS.where(surveys.c.token.is_not(None))


def survey_facts(conn: sa.Connection) -> list[SurveyFact]:
    """What the metrics need of every survey with a token: agent, team, status, cohort time.

    The creation time comes as an integer from the database (:class:`epoch_microseconds`):
    a first sync reads every survey, and parsing each one's datetime and converting it to
    Unix time in Python was most of the metrics' cost.
    """
    return bulk_select(conn, SIGNED_SURVEY_FACTS, row_type=SurveyFact)


def iter_survey_facts(conn: sa.Connection) -> Iterator[tuple[Any, ...]]:
    """:func:`survey_facts`, a partition at a time (:func:`~csat_hook.sync.bulk.bulk_iter`), as
    plain tuples in :class:`SurveyFact`'s field order (as :func:`iter_answers`: 31 ms of a
    first sync's 150,000 surveys as named tuples)."""
    return bulk_iter(conn, SIGNED_SURVEY_FACTS, row_type=tuple)


def survey_facts_by_token(conn: sa.Connection, tokens: Sequence[str]) -> list[SurveyFact]:
    """:func:`survey_facts` of the surveys whose token is one of ``tokens`` (looked up by the
    token's unique index)."""
    found: list[SurveyFact] = []
    for condition in among(conn, surveys.c.token, tokens):
        # The driver's rows (driver_rows): a first sync looks up every answered survey, and
        # iterating SQLAlchemy's result was a Python-level fetch per row.
        found.extend(driver_rows(conn, _SURVEY_FACTS.where(condition), SurveyFact))
    return found


def list_unverified(conn: sa.Connection, limit: int) -> list[sa.Row[Any]]:
    """Unverified answers, newest first."""
    return list(
        conn.execute(
            sa.select(unverified_answers)
            .order_by(
                unverified_answers.c.submitted_at.desc().nulls_last(),
                unverified_answers.c.id.desc(),
            )
            .limit(limit)
        ).all()
    )


def count_by(conn: sa.Connection, table_name: str) -> dict[str, int]:
    """Rows per reason in ``unverified_answers`` or ``sync_skipped_rows``."""
    table = {"unverified_answers": unverified_answers, "sync_skipped_rows": sync_skipped_rows}[
        table_name
    ]
    rows = conn.execute(sa.select(table.c.reason, sa.func.count()).group_by(table.c.reason))
    return {reason: int(n) for reason, n in rows}


def any_answers(conn: sa.Connection) -> bool:
    """Whether any answer is stored (one row read, not a count)."""
    return conn.execute(sa.select(answers.c.id).limit(1)).first() is not None


def count_answers(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(answers)).scalar_one())
