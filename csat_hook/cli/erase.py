"""``csat-hook erase``: erase one customer's data (a GDPR-style request), a dry run unless
``--yes``. Prints counts per place, never the data nor the selector's values."""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import replace
from types import FrameType
from typing import Any

import click
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from csat_hook.cli.base import State
from csat_hook.cli.base import command_line
from csat_hook.cli.base import pass_state
from csat_hook.cli.base import shown
from csat_hook.cli.base import unknown_helpdesk
from csat_hook.clock import Clock
from csat_hook.clock import utcnow
from csat_hook.config import Config
from csat_hook.db.clock import shared_clock
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.db.migrate import current_revision
from csat_hook.db.migrate import head_revision
from csat_hook.db.migrate import known_revisions
from csat_hook.db.schema import answers
from csat_hook.db.schema import surveys
from csat_hook.db.text import is_storable
from csat_hook.erasure.files import erase_files
from csat_hook.erasure.records import LINES
from csat_hook.erasure.records import MAX_DIALOG
from csat_hook.erasure.records import MAX_HELPDESK
from csat_hook.erasure.records import Selector
from csat_hook.erasure.records import Tally
from csat_hook.erasure.store import customer_traces
from csat_hook.erasure.store import email_text
from csat_hook.erasure.store import erase as erase_rows
from csat_hook.erasure.store import stored_dialogs
from csat_hook.errors import SyncError
from csat_hook.errors import SyncLockedError
from csat_hook.helpdesks.payload import trim_id
from csat_hook.sync.lock import SyncLock
from csat_hook.sync.lock import holder_id
from csat_hook.sync.outputs_step import places_left

logger = logging.getLogger(__name__)

OUT_OF_REACH = (
    "Not reachable from here: alerts and survey replies already posted (helpdesk notes and "
    "replies, Slack, Telegram, e-mail, webhooks), the answers in their source (the responses "
    "sheet, the form, the CSV file) and report tabs renamed by hand (kept as snapshots): "
    "erase them there. The next sync rewrites the reports without the erased comments and "
    "never stores them again."
)
# Said with the dry-run files and capture folders the configuration names that are not there.
NOT_FOUND = (
    "Not found from this folder (a relative path is read from the folder the command runs "
    "in: run it where the worker runs, or erase the customer's lines there by hand):"
)
NOT_ERASED = "Could not be read or written: erase the customer's data there by hand:"

# How many times the erasure's transaction runs when PostgreSQL aborts it as a deadlock's
# victim. The erasure locks the customer's replies, then writes their surveys: the order in
# which the delivery worker and a reopen take a reply and its survey. A close reviving a
# cancelled survey takes the survey first (its one statement updates it, then queues the
# reply); and within the outbox a worker's outcome batch locks its replies in the order they
# were delivered, the erasure hers in the order of their ids (erasure/store.py: _replies, the
# order of another erasure and of `outbox retry`, which therefore only wait). Either, at the
# same instant as the erasure, is a deadlock, and PostgreSQL aborts one of the two: the close
# gets a 503 (the helpdesk sends it again) or, nothing erased, the erasure is run again.
DEADLOCK_ATTEMPTS = 3

# Said with the places a report was written to that no sync rewrites any more.
PLACES_LEFT = (
    "The report was also written where no sync with this configuration writes it any more "
    "(another spreadsheet or folder, files of a format turned off, a tab turned off): those "
    "keep the comments as they were, erased ones too. Delete them there:"
)

# Said when unverified answers are matched by their typed ticket alone (erasure/store.py).
BY_TICKET = (
    "Matched by typed ticket only: the form's ticket field of an unverified answer (no "
    "reference, or one that could not be verified) names one of these dialogs as the "
    "respondent left it (any case, a leading '#' and spaces aside; a longer or shorter "
    "ticket never). It names no helpdesk: an answer about another helpdesk's dialog of "
    "the same id, or typed by someone else, is matched as well, since erasing a comment that "
    "was not the customer's is the lesser harm than keeping one that was. Unverified answers "
    "are never credited: no figure changes."
)
# Said when only the erasure's record is (or would be) added: nothing is stored yet.
LATER = (
    "later syncs store its answers still in their source (credited to it, naming it, or typed "
    "with its ticket number) with their rating, never their text."
)
BY_TICKET_HELPDESK = (
    "--helpdesk cannot narrow them: a typed ticket does not say which helpdesk's dialog it is."
)


@click.command()
@click.option(
    "--email",
    metavar="ADDRESS",
    help="The customer's e-mail address (any case), as the e-mail or the customer id.",
)
@click.option("--helpdesk", metavar="NAME", help="With --customer-id or --dialog: the helpdesk.")
@click.option("--customer-id", metavar="ID", help="The customer's id in --helpdesk.")
@click.option("--dialog", "dialog_id", metavar="ID", help="One dialog (ticket) of --helpdesk.")
@click.option("--yes", "apply", is_flag=True, help="Erase (without it: only say what would be).")
@pass_state
def erase(
    state: State,
    email: str | None,
    helpdesk: str | None,
    customer_id: str | None,
    dialog_id: str | None,
    apply: bool,
) -> None:
    """Erase a customer's data: the survey's customer id, e-mail and name, replies as sent
    (one not sent, pending or failed, is cancelled), comments and the form's agent and ticket
    fields as typed (answers, their history, unverified answers, alerts).

    Ratings, agents, dialogs and times stay: every CSAT figure and every agent's numbers
    are unchanged. Select by --email, or by --helpdesk with --customer-id or --dialog (any
    of them: a survey matching one is erased). Without --yes nothing is changed and the
    counts say what would be erased; --yes erases all of it in one transaction.

    Unverified answers whose ticket field, as typed, is one of the dialogs are erased too,
    counted apart: that field names no helpdesk, so one about another helpdesk's dialog of
    the same id is matched as well (over-erasing is the lesser harm). A ticket is compared
    as a person types it: "#d38" and "d38 " are D38, "D3" and "D380" are not; --dialog too
    (the output says which stored dialog it matched).

    A --dialog erasure is recorded even when nothing of the dialog is stored yet: later
    syncs store its answers still in the source (credited to it, naming it, or typed with
    its ticket number) with their rating, never their text. Running it again adds nothing.

    A reply being sent right now is erased as well: the delivery's outcome keeps nothing of
    the customer (sent: recorded without its text; not sent: cancelled, never sent again).

    Then csat-hook's own files: a dry-run helpdesk's lines about the customer's dialogs keep
    what makes them posted, not their text; captured payloads naming the customer (an
    address, an id, a dialog) are deleted. A relative path not found from the current folder
    is named: run the command where the worker runs.

    \b
    Exit codes: 0 done (or a dry run); 1 a file named in the output could not be read or
    rewritten (the database is erased); 2 bad usage, or a dry run on a database whose
    schema is behind (run `csat-hook db upgrade`: a dry run changes nothing); 3 a sync
    is running (the erasure waits for its lock as a sync does): nothing was erased."""
    selector = _selector(email, helpdesk, customer_id, dialog_id)
    config = state.config
    interrupts = _Interrupts()
    upgrade = command_line(state, "db upgrade")
    if not apply:
        _database_there(config.database.url, upgrade)
    try:
        engine = make_engine(config.database.url, pool_size=1)
        try:
            if apply:
                create_schema(engine)
            else:
                _schema_current(engine, upgrade)
            if selector.helpdesk is not None:
                _known_helpdesk(engine, config, selector.helpdesk)
            selector, matched = _as_stored(engine, selector)
            with engine.connect() as conn:  # before the erasure empties the customer fields
                traces = customer_traces(conn, selector)
            if apply:
                interrupts.install()
                tally = _apply(engine, config, selector, interrupts)
            else:
                with engine.connect() as conn:
                    tally = erase_rows(conn, selector, utcnow(), apply=False)
            with engine.connect() as conn:
                left = places_left(conn, config)
        finally:
            engine.dispose()
        # The files after the database: what they hold of the customer goes once the rows do.
        files = erase_files(config.helpdesks, traces, apply=apply)
    finally:
        interrupts.restore()
    tally.dry_run_lines, tally.captures = files.dry_run_lines, files.captures
    if matched:
        click.echo(matched)
    _report(tally, apply, selector)
    if left and tally.total() > tally.records:
        click.echo(PLACES_LEFT)
        for place in left:
            click.echo(f"  {place}")
    for said, places in ((NOT_FOUND, files.not_found), (NOT_ERASED, files.failed)):
        if places:
            click.echo(said)
            for place in places:
                click.echo(f"  {shown(place)}")
    if interrupts.received:
        click.echo(
            f"interrupted ({interrupts.received}) once the erasure had committed: its files "
            "were erased first, as the database was",
            err=True,
        )
    if apply:
        # Counts only: who was erased is not logged (the selector is customer data).
        logger.info("erasure.applied", extra=tally.counts())
    if files.failed:
        sys.exit(1)


def _database_there(url: str, upgrade: str) -> None:
    """A dry run creates no database: a SQLite URL naming a file that is not there (a new
    install, a mistyped path) is said (exit 2), before the engine would create the file and
    its folder (db/engine.py) only to find no schema in it."""
    parsed = sa.make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return
    if path.startswith("file:") or os.path.exists(path):
        return  # a URI filename is SQLite's to open (mode=ro may forbid creating it)
    click.echo(
        f"Nothing erased: no SQLite database at {shown(path)} (database.url): a dry run "
        f"creates nothing. Check the path ({upgrade} creates a database there).",
        err=True,
    )
    sys.exit(2)


def _schema_current(engine: Engine, upgrade: str) -> None:
    """A dry run changes nothing, the schema included: on a database whose schema is not this
    release's, say what to run instead of migrating it (exit 2)."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    engine.dispose()
    if current is None or current in known_revisions():
        said = (
            f"the database schema is at revision {shown(current or 'none (empty)')}, this "
            f"release's is {head}: a dry run changes nothing, the schema included. Run "
            f"{upgrade} first (or erase with --yes, which upgrades it)."
        )
    else:
        said = (
            f"the database schema is at revision {shown(current)}, newer than this release's "
            f"({head}): run the release that upgraded it."
        )
    click.echo(f"Nothing erased: {said}", err=True)
    sys.exit(2)


def _known_helpdesk(engine: Engine, config: Config, name: str) -> None:
    """Refuse (exit 2) a ``--helpdesk`` neither configured nor naming stored surveys or
    answers: a misspelt name matched nothing and said "Nothing to erase", and with --dialog
    recorded the erasure of another helpdesk's dialog. One removed from the configuration
    since is accepted while its rows are stored: they are what the request is about."""
    if name in config.helpdesks:
        return
    with engine.connect() as conn:
        for table in (surveys, answers):
            if conn.execute(sa.select(table.c.id).where(table.c.helpdesk == name).limit(1)).first():
                return
    raise unknown_helpdesk(
        name, config.helpdesks, also=" (and no survey or answer stored names it)"
    )


def _as_stored(engine: Engine, selector: Selector) -> tuple[Selector, str | None]:
    """``selector`` with its ``--dialog`` as the helpdesk stores it, and what to say of it: a
    ticket given as a person types it ("#d38", "d38") names the stored D38, as the ticket
    fields typed in the form are matched (erasure/store.py); never a longer or shorter id
    ("D3" is not D38). Several stored dialogs differing only in case are bad usage (exit 2):
    which one is meant is the operator's to say. None stored: the dialog is recorded as
    given, without a leading ``#`` (no helpdesk's ids start with one)."""
    given = selector.dialog_id
    if given is None or selector.helpdesk is None:
        return selector, None
    with engine.connect() as conn:
        found = stored_dialogs(conn, selector.helpdesk, given)
    if len(found) > 1:
        listed = ", ".join(repr(dialog) for dialog in found[:5])
        raise click.BadParameter(
            shown(
                f"names {len(found)} stored dialogs of this helpdesk that differ only in case "
                f"or a leading '#' ({listed}{', …' if len(found) > 5 else ''}): give the one "
                "meant exactly as stored"
            ),
            param_hint="--dialog",
        )
    if found:
        dialog = found[0]
        said = (
            f"--dialog matched the stored dialog {shown(repr(dialog))}: the same ticket written "
            "in another case, or with a leading '#' or spaces (a longer or shorter id never "
            "matches)."
        )
    else:
        dialog = trim_id(given.removeprefix("#"))  # as intake trims an id
        if not dialog:
            raise click.BadParameter("names no ticket (only '#')", param_hint="--dialog")
        said = "--dialog: no stored dialog has it; taken without its leading '#'."
    if dialog == given:
        return selector, None
    return replace(selector, dialog_id=dialog), said


class _Interrupts:
    """SIGINT and SIGTERM during ``erase --yes``: before the transaction commits they stop the
    command (KeyboardInterrupt: rolled back, nothing erased; a wait for the sync lock can be
    given up); once it is committing (:meth:`hold`), they are noted and the command goes on
    to erase the files. Stopped between the two, the dry-run file's lines and the captures
    about the customer stayed, and no second run found them: the surveys that named their
    dialogs no longer name the customer (erasure/store.py, ``customer_traces``)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.held = False
        self.received: str | None = None
        self._before: dict[int, Any] = {}

    def install(self) -> None:
        for sig in self.SIGNALS:
            self._before[sig] = signal.signal(sig, self._handle)

    def hold(self) -> None:
        self.held = True

    def restore(self) -> None:
        for sig, handler in self._before.items():
            signal.signal(sig, handler)
        self._before.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if not self.held:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name


def _apply(engine: Engine, config: Config, selector: Selector, interrupts: _Interrupts) -> Tally:
    """Erase under the sync lock: a sync that read no erasure record for these surveys must
    not store a comment after the erasure commits (on PostgreSQL they could overlap). The
    lease is renewed while the erasure runs and checked in its transaction, as a sync's
    (``SyncLock.kept``, ``renew_in``): an erasure longer than ``sync.lock_lease_seconds`` let
    the lease expire, and a sync took the lock and ran alongside; one that lost it anyway
    (the database unreachable for the renewals) erases nothing, exit 3. A run PostgreSQL
    aborts as a deadlock's victim erased nothing and is run again, up to
    :data:`DEADLOCK_ATTEMPTS` runs in all."""
    # The sync lease is compared by the sync's clock, on PostgreSQL the database's.
    clock = shared_clock(engine)
    lock = SyncLock(
        engine,
        clock=clock,
        sleep=time.sleep,
        lease_seconds=config.sync.lock_lease_seconds,
        wait_seconds=config.sync.lock_wait_seconds,
    )
    holder = holder_id()
    try:
        lock.acquire(holder)
    except SyncLockedError as exc:
        click.echo(f"Nothing erased: {exc.message}; run it again once the sync is done.")
        sys.exit(3)
    try:
        with lock.kept(holder):
            for attempt in range(1, DEADLOCK_ATTEMPTS):
                try:
                    return _erase_once(engine, selector, lock, holder, clock, interrupts)
                except sa.exc.DBAPIError as exc:
                    if not _deadlock(exc):
                        raise
                    # Rolled back: nothing was erased, and the other writer went on.
                    logger.warning("erasure.deadlock-retried", extra={"attempt": attempt})
            return _erase_once(engine, selector, lock, holder, clock, interrupts)
    except SyncError as exc:  # the lease lost: rolled back
        click.echo(f"Nothing erased: {exc.message}; run it again.")
        sys.exit(3)
    finally:
        lock.release(holder)


def _erase_once(
    engine: Engine,
    selector: Selector,
    lock: SyncLock,
    holder: str,
    clock: Clock,
    interrupts: _Interrupts,
) -> Tally:
    """The erasure in one transaction: all of it, or nothing when it raises (SyncError when
    the sync lock's lease was lost before it could commit). From its commit on, a signal
    waits for the files (:class:`_Interrupts`)."""
    with engine.begin() as conn:
        tally = erase_rows(conn, selector, clock(), apply=True)
        lock.renew_in(conn, holder)
        interrupts.hold()
        return tally


def _deadlock(exc: sa.exc.DBAPIError) -> bool:
    """Whether PostgreSQL aborted the transaction as a deadlock's victim (SQLSTATE 40P01)."""
    return getattr(exc.orig, "sqlstate", None) == "40P01"


def _selector(
    email: str | None, helpdesk: str | None, customer_id: str | None, dialog_id: str | None
) -> Selector:
    for value, option in (
        (email, "--email"),
        (helpdesk, "--helpdesk"),
        (customer_id, "--customer-id"),
        (dialog_id, "--dialog"),
    ):
        if value is not None and not is_storable(value):
            # Never echoed: the value is the customer's.
            raise click.BadParameter(
                "holds a NUL byte or bytes that are not UTF-8: no stored value can match it",
                param_hint=option,
            )
    # Trimmed as intake stores them (helpdesks/payload.py: as_text, and trim_id for ids, which
    # keeps a character such as NEL or a no-break space: "D-2\x85" is a dialog of its own).
    # The address as every stored one is compared (erasure/store.py, email_text): a fullwidth
    # "ｍａｒｉａ＠example.com" is an address, maria@example.com, and a zero-width space
    # pasted with it is not part of it.
    if email is not None:
        email = email_text(email)
    email, helpdesk = (value.strip() if value is not None else None for value in (email, helpdesk))
    customer_id, dialog_id = (
        trim_id(value) if value is not None else None for value in (customer_id, dialog_id)
    )
    if email == "":
        raise click.BadParameter("empty: give the customer's e-mail address", param_hint="--email")
    if email is not None and not _is_address(email):
        # Never echoed. A word ("maria", "a") matched no survey, but was found as a word in
        # every unverified answer's comment (erasure/store.py: _holding_email), anyone's.
        raise click.BadParameter(
            "not an e-mail address (something@domain): select a customer known by another "
            "value with --helpdesk and --customer-id or --dialog",
            param_hint="--email",
        )
    for value, option in ((customer_id, "--customer-id"), (dialog_id, "--dialog")):
        if value is not None and not helpdesk:
            raise click.UsageError(f"{option} needs --helpdesk (the helpdesk it belongs to)")
        if value == "":
            raise click.BadParameter("empty", param_hint=option)
    # A dialog is recorded as erased (erasure/store.py): a value longer than any stored one
    # matches nothing, and PostgreSQL would refuse to record it.
    for value, option, longest, what in (
        (helpdesk, "--helpdesk", MAX_HELPDESK, "helpdesk name"),
        (dialog_id, "--dialog", MAX_DIALOG, "ticket field csat-hook stores"),
    ):
        if value is not None and len(value) > longest:
            raise click.BadParameter(
                f"longer than any {what} ({longest} characters): nothing can match it",
                param_hint=option,
            )
    if helpdesk is not None and not (customer_id or dialog_id):
        raise click.UsageError("--helpdesk needs --customer-id or --dialog")
    if not (email or customer_id or dialog_id):
        raise click.UsageError(
            "say whose data: --email ADDRESS, or --helpdesk NAME with --customer-id ID "
            "or --dialog ID"
        )
    return Selector(email=email, helpdesk=helpdesk, customer_id=customer_id, dialog_id=dialog_id)


def _is_address(email: str) -> bool:
    """Whether ``email`` has the shape of an address: something, an ``@``, something."""
    local, at, domain = email.rpartition("@")
    return bool(at and local and domain)


def _report(tally: Tally, applied: bool, selector: Selector) -> None:
    # A --dialog erasure always has its dialog to record (erasure/store.py): none to add means
    # it was recorded by an earlier run.
    which = " this dialog" if selector.dialog_id else ""
    if tally.total() == 0 and not tally.in_delivery:
        click.echo(f"Nothing to erase: no stored data matches{which} (or it was erased already).")
        if selector.dialog_id:
            click.echo(f"The erasure of this dialog is recorded already: {LATER}")
    elif tally.total() == tally.records:
        records = f"{tally.records} erasure record{'s' if tally.records != 1 else ''}"
        if applied:
            click.echo(
                f"No stored data matched{which}; the erasure is recorded ({records}): {LATER}"
            )
        else:
            click.echo(
                f"Dry run, nothing changed. No stored data matches{which} now; the erasure would "
                f"be recorded ({records}): {LATER}"
            )
            click.echo("Run again with --yes to record it.")
    else:
        click.echo("Erased:" if applied else "Dry run, nothing changed. Would erase:")
        for name, label, what in LINES:
            click.echo(f"  {label}: {getattr(tally, name)} ({what})")
        if tally.unverified_by_ticket:
            click.echo(BY_TICKET)
            if tally.typed_otherwise:
                click.echo(
                    f"{tally.typed_otherwise} of them typed the ticket in another case, or "
                    "with a leading '#' or spaces: the same ticket (a longer or shorter one is "
                    "never matched)."
                )
            if selector.helpdesk:
                click.echo(BY_TICKET_HELPDESK)
        if not applied:
            click.echo("Run again with --yes to erase it (one transaction).")
    if tally.in_delivery:
        done = "were being sent right now: erased all the same, and marked"
        if not applied:
            done = "are being sent right now: --yes erases them all the same, and marks them"
        click.echo(
            f"{tally.in_delivery} survey replies to this customer {done}, so what their "
            "delivery records keeps no customer data (one that goes out is recorded as sent "
            "without its text; one that does not is cancelled, never sent again)."
        )
    click.echo(OUT_OF_REACH)
