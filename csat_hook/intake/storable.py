"""The one place where a parsed event's text is made fit for the database.

Adapters hand over what the vendor sent; before anything is stored or looked up, the event
goes through :func:`storable_event`, with the column sizes of ``db/schema.py``:

* ``dialog_id`` is a key: a NUL character, a lone surrogate, or more characters than its
  column holds, is refused (400 naming it), never cut into another dialog's id; so is an id
  of invisible characters alone (``db.text.shows_something``: zero-width, format, space);
* ``occurrence`` is a key too, but an opaque one: a value too long or unstorable is replaced
  by its digest, the same on every retry, so a repeated close is still recognised;
* every other text (agent and customer ids, names, emails, team, channel, language) loses
  its NUL characters and lone surrogates and is clipped to its column, never inside what a
  reader sees as one character (``db.text.clipped``: an emoji sequence, a flag, a letter and
  its accent), the same clip the survey's reference signs as the agent's key;
* ``reply_context`` strings lose the same characters and are cut to
  :data:`CONTEXT_VALUE_LIMIT` characters.

SQLite would store all of it as it is and PostgreSQL would refuse it: here both store the same.

The close time is the sender's word too: :func:`trusted_close_time` keeps the first of the
times the close names that could be when it happened.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from csat_hook import tokens
from csat_hook.db.schema import surveys
from csat_hook.db.text import digest
from csat_hook.db.text import fitted
from csat_hook.db.text import is_storable
from csat_hook.db.text import length_of
from csat_hook.db.text import shows_something
from csat_hook.db.text import storable
from csat_hook.errors import BadPayloadError
from csat_hook.helpdesks.payload import DOT_SEGMENTS
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import DialogReopened

# Values the adapter keeps for the reply (an account id...), stored as JSON with the queued
# reply: no column size, but no reason for one to be long either.
CONTEXT_VALUE_LIMIT = 1000

# How far past the moment a close was received its time may be and still be believed: a
# close can not happen after it is reported, but the helpdesk's clock may run ahead of ours.
# Five minutes, the skew the signature checks (tolerance_seconds) and the reply look-ups
# (LOOKUP_CLOCK_SKEW) allow; servers kept by NTP are within a second. Not more: a time
# believed in the future is a survey that no close within that much of it can re-arm.
CLOSE_CLOCK_SKEW = timedelta(minutes=5)

# No close time before this is a helpdesk's: none of them sent webhooks then (the oldest we
# speak to, Zendesk, began in 2007). Such a time is a 0, a default or a unit mistaken, and
# believed it would order this close before every genuine one.
EARLIEST_CLOSE = datetime(2000, 1, 1, tzinfo=UTC)

DIALOG_ID_LIMIT = length_of(surveys.c.dialog_id) or 0
OCCURRENCE_LIMIT = length_of(surveys.c.occurrence) or 0
TOKEN_LIMIT = length_of(surveys.c.token) or 0


def storable_event(event: DialogClosed | DialogReopened) -> DialogClosed | DialogReopened:
    """``event`` with every text value storable; BadPayloadError for an unusable dialog id."""
    dialog_id = storable_dialog_id(event.dialog_id)
    if isinstance(event, DialogReopened):
        return event if dialog_id == event.dialog_id else replace(event, dialog_id=dialog_id)
    return replace(
        event,
        dialog_id=dialog_id,
        agent=event.agent.storable("agent"),
        customer=event.customer.storable("customer"),
        team=fitted(surveys.c.team, event.team),
        channel=fitted(surveys.c.channel, event.channel),
        language=fitted(surveys.c.language, event.language),
        occurrence=storable_occurrence(event.occurrence),
        reply_context=_context(event.reply_context),
    )


def trusted_close_time(close_times: Sequence[datetime], received: datetime) -> datetime | None:
    """The helpdesk's close time as intake stores it (``surveys.closed_at``), for a close
    ``received`` (aware) at that moment.

    The first of ``close_times`` (the event's candidates, the vendor's preferred field first;
    a naive one read as UTC) that lies from :data:`EARLIEST_CLOSE` to ``received`` plus
    :data:`CLOSE_CLOCK_SKEW`; None when there are none (unknown); otherwise, every one wrong,
    ``received``. A wrong first time gives way to a true later one: a field with a broken
    clock (a 0, a local time written as UTC) is no reason to forget the field that has the
    time. Whatever the sender wrote, the result is an instant both databases hold.

    Only the re-arm of a survey a reopen cancelled reads it (``store.LATER_CLOSE``: a close
    later than the stored one re-arms it). A time in the future stored as it was would be
    later than every genuine close to come: the dialog never surveyed again. The receive
    time is the latest the close can have happened, so the next genuine close is still later
    and a late retry of any earlier close with a true time still no later (a duplicate). None
    (unknown) would re-arm for any close, those retries too. One thing neither can do: tell
    a retry of this very close that arrives after a reopen from a new close (it is received
    later, as a close without a time is); the body's digest does, within the vendor's retry
    window (``store.SAME_DELIVERY``).
    """
    if not close_times:
        return None
    for closed_at in close_times:
        if closed_at.tzinfo is None:
            closed_at = closed_at.replace(tzinfo=UTC)
        if EARLIEST_CLOSE <= closed_at <= received + CLOSE_CLOCK_SKEW:
            return closed_at
    return received


def trusted_reopen_time(reopen_times: Sequence[datetime], received: datetime) -> datetime | None:
    """The helpdesk's time for a reopen ``received`` (aware) at that moment, or None (unknown).

    Read as a close's (:func:`trusted_close_time`: a naive time is UTC, one before
    :data:`EARLIEST_CLOSE` is a 0 or a default and is passed over), but the latest of the
    times is kept, and a time later than ``received`` plus :data:`CLOSE_CLOCK_SKEW`, or no
    time left, makes it unknown rather than ``received``. Intake cancels the waiting surveys
    of closes not later than this time, all of them when it is None: a time too early would
    send a survey into a dialog the customer reopened, one too late only cancels a survey, as
    a reopen without a time always did. So a reopen that names its time in several fields (a
    customer waiting since before the close, an agent's update that reopened it) is as late
    as the latest of them, and one from a clock that runs wild is never taken for older than
    the close.
    """
    aware = [when.replace(tzinfo=UTC) if when.tzinfo is None else when for when in reopen_times]
    if any(when > received + CLOSE_CLOCK_SKEW for when in aware):
        return None
    return max((when for when in aware if when >= EARLIEST_CLOSE), default=None)


def storable_dialog_id(dialog_id: str) -> str:
    """The dialog id as given, or BadPayloadError when it cannot be stored as it is."""
    if not is_storable(dialog_id):
        raise BadPayloadError(
            "the dialog id contains a NUL character or a lone surrogate", code="bad_id"
        )
    if not shows_something(dialog_id):
        # Zero-width, format or space characters alone: an id no one can read, type or find
        # again (erase, the reports), shown as nothing. Never quoted: it would show nothing.
        count = len(dialog_id)
        raise BadPayloadError(
            f"the dialog id is {count} invisible character{'' if count == 1 else 's'} "
            "(zero-width, format or space characters) and nothing else",
            code="bad_id",
        )
    if dialog_id in DOT_SEGMENTS:  # every adapter's; payload.as_id says why
        raise BadPayloadError(
            f"the dialog id is {dialog_id!r}, which no URL path can carry as an id", code="bad_id"
        )
    if len(dialog_id) > DIALOG_ID_LIMIT:
        raise BadPayloadError(
            f"the dialog id is longer than {DIALOG_ID_LIMIT} characters", code="id_too_long"
        )
    return dialog_id


def storable_occurrence(occurrence: str | None) -> str | None:
    """The occurrence as given, or its digest when it is too long or unstorable."""
    if occurrence is None:
        return None
    if len(occurrence) > OCCURRENCE_LIMIT or not is_storable(occurrence):
        return digest(occurrence)
    return occurrence


def survey_token(secret: str, event: DialogClosed, now: datetime) -> str:
    """The reference of ``event``'s survey: its helpdesk, dialog and agent's key signed
    (``tokens.sign``), checked to fit its column (:func:`check_token`).

    A key that is the agent's e-mail or name (no id) and makes the reference too long (a name
    of a few hundred multi-byte characters: 36 family emoji are 900 UTF-8 bytes) is signed as
    its :func:`~csat_hook.db.text.digest` (71 characters) instead, rather than the close being
    refused: the sync credits answers to the key the reference carries, so that agent is one
    agent on every close and answer, shown by the survey's name. A name that fits is signed
    as it is, as before. An id too long with the dialog is still refused: an id is what the
    agent is to the helpdesk's API, and a reference bound to another would not name them.
    """
    key = event.agent.key or ""
    token = tokens.sign(secret, tokens.SurveyRef(event.helpdesk, event.dialog_id, key, now))
    if len(token) > TOKEN_LIMIT and key and not event.agent.id:
        ref = tokens.SurveyRef(event.helpdesk, event.dialog_id, digest(key), now)
        token = tokens.sign(secret, ref)
    return check_token(token)


def check_token(token: str) -> str:
    """The survey reference, or BadPayloadError when the dialog id and the agent's key make
    it longer than its column (only ids of hundreds of multi-byte characters do)."""
    if len(token) > TOKEN_LIMIT:
        raise BadPayloadError(
            "the dialog id and the agent's id are too long together for a survey reference "
            f"({len(token)} characters, at most {TOKEN_LIMIT})",
            code="id_too_long",
        )
    return token


def _context(context: Mapping[str, Any]) -> dict[str, Any]:
    return {
        storable(key): storable(value)[:CONTEXT_VALUE_LIMIT] if isinstance(value, str) else value
        for key, value in context.items()
    }
