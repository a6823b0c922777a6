"""The erasure's SQL: the rows that hold one customer's data, counted, and erased in the
caller's transaction.

A survey is the customer's when it matches the selector (:class:`~.records.Selector`); its
survey key (``tokens.survey_key`` of its reference) finds its answers, their history and the
alerts about them, and a ``--dialog`` selector also finds the answers to that dialog that
have no survey row; an ``--email`` or ``--customer-id`` selector also finds the unverified
answers that hold one of the customer's addresses itself (:func:`_holding_email`): the one
given, and those of their surveys (:func:`_addresses`). The early reopens intake remembers
are found by helpdesk and dialog (they hold no customer field): those of the selected
dialog and of the customer's surveys' dialogs are deleted (:func:`_remembered_reopens`).
Every count is of rows that still hold something to erase, and of records not yet added: a
second run counts nothing.

The records: one per survey key found (``erasures``, with its dialog), and for ``--dialog``
one for that helpdesk's dialog (``erased_dialogs``), added even when nothing of it is stored
now: its answers may be still to come from the source, or be there only as an unverified row
typed with its ticket number, which an edit in the source would make new to the sync. From
either, the sync's ingest stores a later submission without its text (``sync/ingest.py``).

Unverified answers are found by the survey their reference names (a forged one's reference
is kept), or by the ``--dialog`` it names (read unchecked, as the ingest reads it: no survey
key is needed), or else by their ticket field naming one of the dialogs (the selected one,
and those of the customer's surveys) as a person types a ticket (``db.text.ticket_form``: any
case, a leading ``#`` and spaces aside; "D3" never names D38), or as a spreadsheet program
renders a numeric one (``db.text.spreadsheet_rendering``: ``1.23457E+18``, leading zeros
dropped): counted apart, as matched by typed ticket only. That field
is all that ties an answer without a usable reference to a dialog, and it holds a dialog id
as the respondent left it, with no helpdesk: it cannot tell helpdesk A's dialog "123" from
helpdesk B's, nor from a "123" typed by someone else, and ``--helpdesk`` cannot narrow it.
Such answers are matched all the same. An erasure is a legal request: erasing a comment that
was not the customer's is the lesser harm than keeping one that was, and an unverified
answer is never credited, so no figure moves (its rating stays). The command says so when it
counts any (cli/erase.py), and the sync stores a later one without its text in the same way
(``sync/ingest.py``, by the erasure records' dialogs).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from csat_hook import tokens
from csat_hook.alerts.records import ANSWER
from csat_hook.alerts.records import DIGEST_KIND
from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import FAILED
from csat_hook.db.schema import PENDING
from csat_hook.db.schema import QUEUED
from csat_hook.db.schema import REPLY
from csat_hook.db.schema import SENDING
from csat_hook.db.schema import SENT
from csat_hook.db.schema import alerts
from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import early_reopens
from csat_hook.db.schema import erased_dialogs
from csat_hook.db.schema import erasures
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.db.schema import unverified_answers
from csat_hook.db.text import RenderedIds
from csat_hook.db.text import folded
from csat_hook.db.text import in_chunks
from csat_hook.db.text import ticket_form
from csat_hook.db.text import ticket_spellings
from csat_hook.erasure.records import Selector
from csat_hook.erasure.records import Tally
from csat_hook.helpdesks.payload import trim_id

CANCEL_NOTE = "customer data erased before sending"
UNSENT = (PENDING, FAILED)
# Forged answers' references read at a time (_claiming): a bounded read, however many.
CLAIM_PAGE = 2_000
# (helpdesk, dialog) pairs per look-up or delete of remembered reopens: two parameters each,
# under SQLite's oldest limit of 999.
REOPEN_CHUNK = 400


def erase(conn: sa.Connection, selector: Selector, now: datetime, *, apply: bool) -> Tally:
    """Count what the customer ``selector`` names still has stored and, when ``apply``, erase
    it (in the caller's transaction: all of it or nothing)."""
    tally = Tally()
    found = conn.execute(
        sa.select(
            surveys.c.id,
            surveys.c.helpdesk,
            surveys.c.dialog_id,
            surveys.c.token,
            surveys.c.customer_id,
            surveys.c.customer_email,
            surveys.c.customer_name,
        ).where(_customer(selector, _email_spelt_otherwise(conn, selector.email)))
    ).all()
    replies = _replies(conn, [row.id for row in found], lock=apply)
    # Being delivered: a worker holds the survey's customer fields and the reply context in
    # memory and records the outcome when it is done. Erased now all the same, and marked
    # (outbox.erased_at): that outcome keeps no customer data (outbox/store/outcomes.py).
    busy = [row.id for row in replies if row.status == SENDING]
    tally.in_delivery = len(busy)
    # Survey key → its dialog, for each survey of the customer's.
    keys = {tokens.survey_key(row.token): row.dialog_id for row in found if row.token}
    dialogs = {(row.helpdesk, row.dialog_id) for row in found}
    # The dialog selected, recorded as such whatever is found of it now (erased_dialogs).
    selected: list[tuple[str, str]] = []
    if selector.helpdesk and selector.dialog_id:
        selected.append((selector.helpdesk, selector.dialog_id))
        dialogs.add((selector.helpdesk, selector.dialog_id))
        keys.update(
            conn.execute(
                sa.select(answers.c.survey_key, answers.c.dialog_id).where(
                    answers.c.helpdesk == selector.helpdesk,
                    answers.c.dialog_id == selector.dialog_id,
                )
            ).all()
        )
    ordered = sorted(keys)

    holders = [r.id for r in found if r.customer_id or r.customer_email or r.customer_name]
    tally.surveys = len(holders)
    # Not sent: pending, or failed (which `outbox retry` would send again, to the customer
    # whose data is erased): cancelled. The survey's status stays (a failed one counts so).
    waiting = [row.id for row in replies if row.status in UNSENT]
    tally.cancelled = len(waiting)
    sent = [
        row.id
        for row in replies
        if row.status not in (*UNSENT, SENDING) and (row.body or row.context)
    ]
    tally.replies = len(sent)
    answered = _rows(
        conn,
        sa.select(
            answers.c.id,
            answers.c.comment,
            answers.c.field_agent,
            answers.c.field_ticket,
            answers.c.dialog_id,
            answers.c.submitted_at,
        ).add_columns(answers.c.survey_key),
        answers.c.survey_key,
        ordered,
    )
    earlier = _rows(
        conn,
        sa.select(
            answer_history.c.id,
            answer_history.c.comment,
            answer_history.c.field_agent,
            answer_history.c.field_ticket,
            answer_history.c.submitted_at,
        ).add_columns(answer_history.c.survey_key),
        answer_history.c.survey_key,
        ordered,
    )
    tally.answers = sum(1 for row in answered if _typed(row))
    tally.history = sum(1 for row in earlier if _typed(row))
    named, by_ticket, typed_otherwise = _unverified(
        conn, ordered, sorted({dialog for _, dialog in dialogs}), set(selected)
    )
    tally.unverified = len(named)
    tally.unverified_by_ticket = len(by_ticket)
    tally.typed_otherwise = typed_otherwise
    by_email = _holding_email(conn, _addresses(selector, found), set(named) | set(by_ticket))
    tally.unverified_by_email = len(by_email)
    unverified = sorted(named + by_ticket + by_email)
    # What a digest's line about one of these answers holds: its dialog and submission time.
    dialog_of = {row.survey_key: row.dialog_id for row in answered}
    lines = {(row.dialog_id, row.submitted_at.isoformat()) for row in answered} | {
        (dialog_of[row.survey_key], row.submitted_at.isoformat())
        for row in earlier
        if row.survey_key in dialog_of
    }
    messages = _alert_messages(conn, ordered, lines)
    tally.alerts = len(messages)
    # Remembered by helpdesk and dialog alone (no customer field): those of the dialogs found.
    reopened = _remembered_reopens(conn, dialogs)
    tally.reopens = len(reopened)
    known = set(
        _rows(conn, sa.select(erasures.c.survey_key), erasures.c.survey_key, ordered, scalars=True)
    )
    new_keys = [key for key in ordered if key not in known]
    new_dialogs = [pair for pair in selected if not _recorded(conn, pair)]
    tally.records = len(new_keys) + len(new_dialogs)
    if not apply:
        return tally

    # The replies first, each in the state it was read (and locked) in.
    for chunk in in_chunks(waiting):
        cancelled = conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(chunk), outbox.c.status.in_(UNSENT))
            # Marked as erased (erased_at): a vendor's retry of the close must not re-arm it
            # (intake/store.py, ERASED), as it would a survey a reopen cancelled.
            .values(
                status=CANCELLED,
                updated_at=now,
                last_error=CANCEL_NOTE,
                body=None,
                context={},
                erased_at=now,
            )
            .returning(outbox.c.survey_id)
        ).scalars()
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.id.in_(list(cancelled)), surveys.c.status == QUEUED)
            .values(status=CANCELLED)
        )
    for chunk in in_chunks(sent):
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(chunk), outbox.c.status.in_((SENT, CANCELLED)))
            .values(body=None, context={})
        )
    # A reply a reopen had cancelled: marked as the erasure's own are, so that no retry of
    # its close re-arms it, with the customer's data, for the customer whose data is erased
    # (intake/store.py, ERASED). Not counted: it held nothing more to erase.
    cancelled_before = [row.id for row in replies if row.status == CANCELLED]
    for chunk in in_chunks(cancelled_before):
        conn.execute(
            sa.update(outbox)
            .where(
                outbox.c.id.in_(chunk),
                outbox.c.status == CANCELLED,
                outbox.c.erased_at.is_(None),
            )
            .values(erased_at=now)
        )
    for chunk in in_chunks(busy):
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id.in_(chunk), outbox.c.status == SENDING)
            .values(body=None, context={}, erased_at=now)
        )
    for chunk in in_chunks(holders):
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.id.in_(chunk))
            .values(customer_id=None, customer_email=None, customer_name=None)
        )
    for table, rows in ((answers, answered), (answer_history, earlier)):
        for chunk in in_chunks([row.id for row in rows if _typed(row)]):
            conn.execute(
                sa.update(table)
                .where(table.c.id.in_(chunk))
                .values(comment=None, field_agent=None, field_ticket=None)
            )
    for chunk in in_chunks(unverified):
        conn.execute(
            sa.update(unverified_answers)
            .where(unverified_answers.c.id.in_(chunk))
            .values(comment=None, field_agent=None, field_ticket=None, source_row={})
        )
    pair = sa.tuple_(early_reopens.c.helpdesk, early_reopens.c.dialog_id)
    deleted = 0
    for chunk in in_chunks(reopened, REOPEN_CHUNK):
        result = conn.execute(sa.delete(early_reopens).where(pair.in_(chunk)))
        deleted += int(result.rowcount or 0)
    # The rows deleted: intake's pruning may have forgotten one since it was counted.
    tally.reopens = deleted
    if messages:
        conn.execute(
            sa.update(alerts).where(alerts.c.id == sa.bindparam("alert_id")),
            [{"alert_id": ident, "payload": payload} for ident, payload in messages.items()],
        )
    if new_keys:
        conn.execute(
            sa.insert(erasures),
            [{"survey_key": key, "dialog_id": keys[key], "erased_at": now} for key in new_keys],
        )
    if new_dialogs:
        conn.execute(
            sa.insert(erased_dialogs),
            [{"helpdesk": h, "dialog_id": d, "erased_at": now} for h, d in new_dialogs],
        )
    return tally


def _replies(conn: sa.Connection, survey_ids: Sequence[int], *, lock: bool) -> list[Any]:
    """The replies to the surveys ``survey_ids`` (id, survey, status, text and context), in
    the order of their ids. With ``lock``, locked until the caller's transaction ends
    (PostgreSQL; SQLite's writer lock is held from BEGIN): no worker claims one of them
    meanwhile (a claim skips locked rows), and an outcome recorded for one being sent waits,
    then reads the erasure's mark. Each is erased in the state read here.

    The locks are taken in the order of the replies' ids, whatever the table's or the
    surveys' order and however many IN lists it takes (their ids are read first, then locked
    a sorted list at a time): the order in which another erasure of the same replies and
    ``outbox retry`` (outbox/listing.py) take them, so two of them wait for each other
    instead of deadlocking."""
    columns = (outbox.c.id, outbox.c.survey_id, outbox.c.status, outbox.c.body, outbox.c.context)
    of_surveys = sa.select(outbox.c.id).where(outbox.c.kind == REPLY)
    ids = sorted(_rows(conn, of_surveys, outbox.c.survey_id, survey_ids, scalars=True))
    query = sa.select(*columns).where(outbox.c.kind == REPLY).order_by(outbox.c.id)
    if lock:
        query = query.with_for_update()
    return _rows(conn, query, outbox.c.id, ids)


def stored_dialogs(conn: sa.Connection, helpdesk: str, dialog: str) -> list[str]:
    """The ``helpdesk``'s dialogs stored (surveyed, answered, or recorded as erased) that
    ``dialog`` (an operator's ``--dialog``, trimmed as intake trims an id) names in another
    case or with a leading ``#`` ("#d38" names D38; "D3" does not): itself alone when it is
    stored as given. Stricter than a form's typed ticket (:func:`ticket_form`): no other
    space and no width folding, as intake keeps them in an id ("D-2" followed by NEL, or an
    ideographic space before it, is a dialog of its own, never D-2)."""
    wanted = ticket_form(dialog)
    exact = trim_id(trim_id(dialog).removeprefix("#")).casefold()
    spellings = ticket_spellings(dialog)
    if not wanted or not spellings:
        return []
    found: set[str] = set()
    for table in (surveys, answers, erased_dialogs):
        column = table.c.dialog_id
        rows = conn.execute(
            sa.select(column)
            .where(
                table.c.helpdesk == helpdesk,
                folded(column).in_([folded(spelling) for spelling in spellings]),
            )
            .distinct()
        ).scalars()
        found.update(
            value
            for value in rows
            if ticket_form(value) == wanted and trim_id(value.removeprefix("#")).casefold() == exact
        )
    return [dialog] if dialog in found else sorted(found)


# The zero-width non-joiner and joiner: format characters that tell two words apart in
# Persian, Hindi or an emoji sequence, and that IDNA allows inside a domain there. Kept
# inside an address (with one it is another's); at its ends they join nothing.
JOINERS = "\u200c\u200d"
_ENDS = re.compile(rf"^[\s{JOINERS}]+|[\s{JOINERS}]+$")


def email_text(text: str) -> str:
    """An e-mail address as typed, made comparable but for case: without the format
    characters that show nothing and that no address holds (a zero-width space, a byte order
    mark, a word joiner, a soft hyphen, bidi marks: left in by a copy from a mail client, a
    chat or a PDF; IDNA drops or refuses them in a domain), but the :data:`JOINERS` inside;
    in NFKC ("ｍａｒｉａ＠…", typed on a fullwidth keyboard, is "maria@…"); trimmed of
    spaces (a no-break one too) and of joiners at its ends."""
    return _ENDS.sub("", unicodedata.normalize("NFKC", _format_as(text, "")))


def _format_as(text: str, instead: str) -> str:
    """``text`` with each format character that shows nothing (Unicode Cf) but the
    :data:`JOINERS` replaced by ``instead``."""
    return "".join(
        instead if char not in JOINERS and unicodedata.category(char) == "Cf" else char
        for char in text
    )


def email_form(text: str) -> str:
    """An e-mail address as the erasure compares it: :func:`email_text`, lowered, never
    case-folded (which makes "straße@…" and "strasse@…", two addresses, one)."""
    return email_text(text).lower()


@dataclass(frozen=True)
class Traces:
    """What names the customer outside the database (erasure/files.py): the dialogs
    (helpdesk, dialog id), the customer ids (helpdesk, id) and the e-mail addresses (as
    :func:`email_form` makes them) of the selector and of the surveys it selects."""

    dialogs: frozenset[tuple[str, str]]
    ids: frozenset[tuple[str, str]]
    emails: frozenset[str]


def customer_traces(conn: sa.Connection, selector: Selector) -> Traces:
    """The :class:`Traces` of ``selector``: read before the erasure, which empties the
    surveys' customer fields."""
    found = conn.execute(
        sa.select(
            surveys.c.helpdesk,
            surveys.c.dialog_id,
            surveys.c.customer_id,
            surveys.c.customer_email,
        ).where(_customer(selector, _email_spelt_otherwise(conn, selector.email)))
    ).all()
    dialogs = {(row.helpdesk, row.dialog_id) for row in found}
    ids = {(row.helpdesk, row.customer_id) for row in found if row.customer_id}
    emails = {email_form(row.customer_email) for row in found if row.customer_email}
    if selector.helpdesk and selector.dialog_id:
        dialogs.add((selector.helpdesk, selector.dialog_id))
    if selector.helpdesk and selector.customer_id:
        ids.add((selector.helpdesk, selector.customer_id))
    if selector.email:
        emails.add(email_form(selector.email))
    # An address used as the customer id is an address too.
    emails |= {email_form(value) for _, value in ids if "@" in value}
    return Traces(frozenset(dialogs), frozenset(ids), frozenset(emails - {""}))


def _customer(selector: Selector, also: Sequence[int] = ()) -> sa.ColumnElement[bool]:
    """The surveys ``selector`` names; ``also``: survey ids found apart (by an e-mail stored
    in another Unicode spelling, :func:`_email_spelt_otherwise`)."""
    who = []
    if selector.email:
        # As intake's cool-down compares them: both sides lowered by the database (the given
        # address as email_text makes it: a fullwidth one is the ASCII address stored). A
        # stored one with any character outside ASCII is compared in Python (``also``).
        # Some helpdesks use the address as the customer id: that survey is the customer's too.
        given = email_text(selector.email)
        who.append(folded(surveys.c.customer_email) == folded(given))
        who.append(folded(surveys.c.customer_id) == folded(given))
    if also:
        who.append(surveys.c.id.in_(list(also)))
    if selector.helpdesk and selector.customer_id:
        who.append(
            sa.and_(
                surveys.c.helpdesk == selector.helpdesk,
                surveys.c.customer_id == selector.customer_id,
            )
        )
    if selector.helpdesk and selector.dialog_id:
        who.append(
            sa.and_(
                surveys.c.helpdesk == selector.helpdesk, surveys.c.dialog_id == selector.dialog_id
            )
        )
    return sa.or_(*who)


def _email_spelt_otherwise(conn: sa.Connection, email: str | None) -> list[int]:
    """The surveys whose customer e-mail, or customer id (a helpdesk that uses the address as
    the id), holds a character outside ASCII (which the database cannot put in NFKC: SQLite
    has no such function) and is ``email`` under :func:`email_form`: read and compared here,
    the rest of the addresses by the database."""
    if not email:
        return []
    wanted = email_form(email)
    found: list[int] = []
    for column in (surveys.c.customer_email, surveys.c.customer_id):
        if conn.dialect.name == "postgresql":
            wide = sa.func.octet_length(column) != sa.func.char_length(column)
        else:
            wide = sa.func.length(sa.cast(column, sa.LargeBinary)) != sa.func.length(column)
        rows = conn.execute(sa.select(surveys.c.id, column.label("value")).where(wide))
        found += [row.id for row in rows if row.value and email_form(row.value) == wanted]
    return found


def _remembered_reopens(
    conn: sa.Connection, dialogs: set[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The (helpdesk, dialog) pairs of ``dialogs`` that intake remembers an early reopen of
    (``early_reopens``: a reopen delivered before its close)."""
    found: list[tuple[str, str]] = []
    pair = sa.tuple_(early_reopens.c.helpdesk, early_reopens.c.dialog_id)
    for chunk in in_chunks(sorted(dialogs), REOPEN_CHUNK):
        rows = conn.execute(
            sa.select(early_reopens.c.helpdesk, early_reopens.c.dialog_id).where(pair.in_(chunk))
        )
        found.extend((row.helpdesk, row.dialog_id) for row in rows)
    return sorted(found)


def _recorded(conn: sa.Connection, pair: tuple[str, str]) -> bool:
    """Whether the helpdesk's dialog ``pair`` is recorded as erased already."""
    helpdesk, dialog = pair
    found = conn.execute(
        sa.select(erased_dialogs.c.id).where(
            erased_dialogs.c.dialog_id == dialog, erased_dialogs.c.helpdesk == helpdesk
        )
    ).first()
    return found is not None


def _unverified(
    conn: sa.Connection,
    keys: Sequence[str],
    dialogs: Sequence[str],
    selected: set[tuple[str, str]],
) -> tuple[list[int], list[int], int]:
    """The unverified answers that still hold a comment or the row as read: those to these
    surveys (by the reference they kept) or to the ``selected`` helpdesks' dialogs (by what
    the reference they kept names), and apart, the others with one of these dialogs in their
    ticket field (any helpdesk's: the field names none, see the module's note), as a person
    types it (:func:`~csat_hook.db.text.ticket_form`: case, a leading ``#`` and spaces aside)
    or a spreadsheet renders it (:func:`_names_one_of`), with how many of those were typed
    otherwise than the dialog is stored."""
    table = unverified_answers
    query = sa.select(
        table.c.id, table.c.comment, table.c.field_agent, table.c.field_ticket, table.c.source_row
    )
    named: dict[int, Any] = {}
    for chunk in in_chunks(keys):
        condition = sa.or_(*(table.c.token.startswith(f"{key}.", autoescape=True) for key in chunk))
        named.update((row.id, row) for row in conn.execute(query.where(condition)))
    if selected:
        claiming = _claiming(conn, selected)
        named.update((row.id, row) for row in _rows(conn, query, table.c.id, claiming))
    # Compared as typed (ticket_form): "#d38" or "D38 " is D38, "D3" and "D380" are not.
    wanted = {ticket_form(dialog) for dialog in dialogs} - {""}
    by_ticket: dict[int, Any] = {}
    if wanted:
        typed = query.where(table.c.field_ticket.is_not(None))
        rendered = RenderedIds(dialogs)
        by_ticket = {
            row.id: row
            for row in _every_unverified(conn, typed)
            if row.id not in named and _names_one_of(row.field_ticket, wanted, rendered)
        }
    held = _holding(by_ticket)
    exact = set(dialogs)
    otherwise = sum(1 for ident in held if by_ticket[ident].field_ticket not in exact)
    return _holding(named), held, otherwise


def _names_one_of(field: str, wanted: set[str], rendered: RenderedIds) -> bool:
    """Whether the typed ticket ``field`` names one of the dialogs (``wanted``: their
    :func:`ticket_form`): as typed, or as a spreadsheet program rendered a numeric one
    (``rendered``, the dialogs': an export saved in Excel, ``1.23457E+18``, leading zeros
    dropped; ``db.text.spreadsheet_rendering``, as the sync's attribution reads a ticket
    field and the sync matches later answers). A rendering may be of another dialog as well:
    erased all the same, the lesser harm (module note)."""
    return ticket_form(field) in wanted or rendered.rendered_by(field)


def _claiming(conn: sa.Connection, selected: set[tuple[str, str]]) -> list[int]:
    """The unverified answers whose kept reference (a forged one's: the others keep none)
    names one of the ``selected`` helpdesks' dialogs, as the sync's ingest reads it
    (``tokens.claimed``). The payload is base64: read here, a page of references at a time,
    exactly as the ingest does, rather than guessed at by a prefix in SQL."""
    table = unverified_answers
    query = sa.select(table.c.id, table.c.token).where(table.c.token.is_not(None))
    found: list[int] = []
    for row in _every_unverified(conn, query):
        ref = tokens.claimed(row.token)
        if ref is not None and (ref.helpdesk, ref.dialog_id) in selected:
            found.append(row.id)
    return found


def _every_unverified(conn: sa.Connection, query: sa.Select[Any]) -> Iterator[Any]:
    """``query``'s rows of ``unverified_answers`` (it selects their ``id``), all of them,
    read :data:`CLAIM_PAGE` at a time in the order of their ids: a bounded read, however many
    there are."""
    page = query.order_by(unverified_answers.c.id).limit(CLAIM_PAGE)
    after = 0
    while rows := conn.execute(page.where(unverified_answers.c.id > after)).all():
        after = rows[-1].id
        yield from rows


def _addresses(selector: Selector, found: Sequence[Any]) -> list[str]:
    """The customer's addresses (as :func:`email_form` makes them) the unverified answers are
    searched for: the selector's, and when it names the customer (by address or by id) those
    their surveys ``found`` hold, as the e-mail or as the id of a helpdesk that uses the
    address as one (as :func:`customer_traces` finds them for the captures). Erased by id,
    the customer is the same person as by address: an answer giving their address was kept.
    A ``--dialog`` alone names one dialog, not its customer's answers about others."""
    addresses = {email_form(selector.email)} if selector.email else set()
    if selector.email or selector.customer_id:
        for row in found:
            for value in (row.customer_email, row.customer_id):
                local, at, domain = email_form(value or "").rpartition("@")
                if at and local and domain:
                    addresses.add(f"{local}@{domain}")
    return sorted(addresses)


def _holding_email(conn: sa.Connection, emails: Sequence[str], found: set[int]) -> list[int]:
    """The unverified answers besides ``found`` that hold one of the addresses ``emails`` (as
    :func:`email_form` makes them) itself in a cell of the row as read (a form that asks for
    it) or in a typed field, compared in NFKC and without case (:func:`email_form`: lowered,
    as ``_customer`` has the database compare the surveys'; never by Unicode case folding,
    which makes "straße@…" and "strasse@…", two addresses, one), not inside a
    longer address. Nothing ties such an answer to the customer's surveys (its reference is
    missing or forged, its ticket another): read a page at a time, every one, the address
    searched in Python (the row as read is JSON, which the databases search differently)."""
    if not emails:
        return []
    patterns = [standing_alone(email) for email in emails]
    table = unverified_answers
    query = sa.select(
        table.c.id, table.c.comment, table.c.field_agent, table.c.field_ticket, table.c.source_row
    )
    held: list[int] = []
    for row in _every_unverified(conn, query):
        if row.id in found:
            continue
        cells = row.source_row.values() if isinstance(row.source_row, dict) else ()
        texts = (row.comment, row.field_agent, row.field_ticket, *cells)
        if any(isinstance(t, str) and holds(p, t) for t in texts for p in patterns):
            held.append(row.id)
    return held


def standing_alone(email: str) -> re.Pattern[str]:
    """``email`` (as :func:`email_form` makes it) standing alone in a text, not inside a longer
    address. A full stop ends the address only when no more of a domain follows it:
    "…@example.com." closes a sentence, "…@example.com.au" is a longer address."""
    return re.compile(rf"(?<![\w.+-]){re.escape(email)}(?![\w-]|\.[\w-])")


def holds(pattern: re.Pattern[str], text: str) -> bool:
    """Whether ``pattern`` (an address standing alone) is in ``text`` as :func:`email_form`
    reads it: a format character inside the address is no part of it; or where one parts
    words, as the space it stands for: Thai (Khmer, Lao, Burmese) text parts its words with
    zero-width spaces only, and left out they joined the address to the words around it."""
    if text.isascii():  # no format character; NFKC changes nothing
        return pattern.search(text.lower()) is not None
    if pattern.search(email_form(text)):
        return True
    parted = _format_as(text, " ")
    return pattern.search(unicodedata.normalize("NFKC", parted).lower()) is not None


def _holding(found: dict[int, Any]) -> list[int]:
    """The ids of the unverified answers ``found`` that still hold something to erase."""
    return sorted(ident for ident, row in found.items() if _typed(row) or row.source_row)


def _typed(row: Any) -> bool:
    """Whether a submission still holds what the respondent typed: the comment, or the
    form's agent and ticket fields (theirs to edit; the verified agent and dialog stay)."""
    return bool(row.comment or row.field_agent or row.field_ticket)


def _alert_messages(
    conn: sa.Connection, keys: Sequence[str], lines: set[tuple[str, str]]
) -> dict[int, dict[str, Any]]:
    """Alert id → its message without the customer's text, for each alert whose message
    holds some: an answer's alert (its comment, its reply context), a digest's line about one
    of the answers (its comment)."""
    changed: dict[int, dict[str, Any]] = {}
    about = sa.select(alerts.c.id, alerts.c.payload).where(alerts.c.kind == ANSWER)
    for row in _rows(conn, about, alerts.c.survey_key, keys):
        payload = dict(row.payload)
        if payload.get("comment") or payload.get("context"):
            changed[row.id] = {**payload, "comment": None, "context": {}}
    if not lines:
        return changed
    digests = sa.select(alerts.c.id, alerts.c.payload).where(alerts.c.kind == DIGEST_KIND)
    for row in conn.execute(digests):
        items = row.payload.get("items") or []
        if not any(_line_of(item) in lines and item.get("comment") for item in items):
            continue
        changed[row.id] = {
            **row.payload,
            "items": [
                {**item, "comment": None} if _line_of(item) in lines else item for item in items
            ],
        }
    return changed


def _line_of(item: Any) -> tuple[str, str] | None:
    if not isinstance(item, dict):
        return None
    return (str(item.get("dialog_id")), str(item.get("submitted_at")))


def _rows(
    conn: sa.Connection,
    query: sa.Select[Any],
    column: sa.ColumnElement[Any],
    values: Sequence[Any],
    *,
    scalars: bool = False,
) -> list[Any]:
    """``query``'s rows whose ``column`` is one of ``values``, a bounded IN list at a time."""
    found: list[Any] = []
    for chunk in in_chunks(values):
        result = conn.execute(query.where(column.in_(chunk)))
        found.extend(result.scalars() if scalars else result.all())
    return found
