"""Text the database can hold, the same on SQLite and PostgreSQL.

PostgreSQL's text types cannot hold NUL (U+0000) and neither driver can encode a lone
surrogate (U+D800-U+DFFF); PostgreSQL refuses a string longer than its ``VARCHAR(n)`` while
SQLite stores it whole. Values cleaned and clipped here are stored identically on both, and
never turn a close into a database error.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import unicodedata
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any
from typing import TypeVar

import sqlalchemy as sa

T = TypeVar("T")

# NUL, a lone surrogate, and a lone surrogate's stand-in (U+10F800-U+10FFFF: what the webhook
# parser reads "\ud800" as, helpdesks/records.py SURROGATE_STAND_INS), treated as one.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff\U0010f800-\U0010ffff]")


def storable(text: str) -> str:
    """``text`` without NUL characters and with lone surrogates (and their stand-ins)
    replaced by U+FFFD."""
    if str.isascii(text):  # (a TypeError for a non-string, as the search gives)
        # Hot (every cell of a sheet, every field of a close), and ASCII is most text: of
        # what _UNSTORABLE matches it can only hold NUL, which a byte search finds at once
        # (isascii reads a flag; the search took 0.7 µs for a 60-character reference).
        return text if "\x00" not in text else text.replace("\x00", "")
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


def is_storable(text: str) -> bool:
    """True when :func:`storable` would leave ``text`` unchanged."""
    if str.isascii(text):
        return "\x00" not in text
    return _UNSTORABLE.search(text) is None


def length_of(column: sa.Column[str]) -> int | None:
    """The column's size in characters (``VARCHAR(n)``); None when unbounded."""
    length = getattr(column.type, "length", None)
    return int(length) if length is not None else None


def fitted(column: sa.Column[str], value: str | None) -> str | None:
    """``value`` made storable and :func:`clipped` to the column's size; None when nothing is
    left.

    For columns whose values are only shown or compared loosely (names, emails, labels):
    a key column must refuse or digest an over-long value instead (see :func:`digest`). An
    agent key made of a clipped id, e-mail or name (``Person.key``) is signed into the survey's
    reference as clipped here, and the sync clips a reference's agent the same way
    (``sync/ingest.py``, ``sync/dataset.py``): one function, one stored value.
    """
    if value is None:
        return None
    text = storable(value)
    limit = length_of(column)
    if limit is not None:
        text = clipped(text, limit)
    return text or None


_ZWJ = 0x200D


def _extends(char: str) -> bool:
    """Whether ``char`` belongs to the character before it: a combining mark (a variation
    selector is one), a zero-width joiner, an emoji skin tone or tag."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Me", "Mc")
        or code == _ZWJ
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def boundary(text: str, at: int) -> int:
    """The last place at or before ``at`` where ``text`` can be cut between two characters as
    a reader sees them: not between a letter and its accent, inside an emoji's ZWJ sequence
    (with its skin tone and variation selector), or between a flag's two letters."""
    while 0 < at < len(text) and (_extends(text[at]) or ord(text[at - 1]) == _ZWJ):
        at -= 1
    if 0 < at < len(text) and _regional(text[at]):
        pairs = 0
        while at - pairs > 0 and _regional(text[at - pairs - 1]):
            pairs += 1
        at -= pairs % 2
    return at


def clipped(text: str, limit: int) -> str:
    """``text`` whole when it has at most ``limit`` code points, else its start cut to at most
    ``limit`` on a :func:`boundary`: never half of an emoji sequence (ZWJ, skin tone,
    variation selector, tag, a flag's pair) nor a letter without its combining marks. The
    same text gives the same result, and a result is returned unchanged (idempotent: what is
    stored clipped is clipped again to itself).

    When the first ``limit`` code points are all one cluster (a base with hundreds of marks),
    the plain cut is kept, without a trailing ZWJ: something rather than nothing."""
    if len(text) <= limit:
        return text
    at = boundary(text, limit)
    if at == 0:
        return text[:limit].rstrip("\u200d")
    return text[:at]


def digest(text: str) -> str:
    """A short, stable stand-in for a key too long (or unstorable) to keep as it is:
    ``sha256:`` and 64 hex digits (71 characters)."""
    raw = text.encode("utf-8", "surrogatepass")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def folded(value: sa.ColumnElement[Any] | str) -> sa.ColumnElement[str]:
    """``value`` (a column, or a text bound as a parameter) lowered by the database: how two
    e-mails are compared as one customer's (the cool-down, its batch keys, ``erase``). Both
    sides must be lowered there: Python's lower() and the database's differ outside ASCII
    (SQLite's is ASCII-only, "Иван" stays; PostgreSQL's maps "İ" to "i"), and an address
    written with such a capital never matched itself."""
    if isinstance(value, str):
        value = sa.literal(value, sa.String())
    return sa.func.lower(value)


def as_seen(name: str) -> str:
    """``name`` as a reader tells names apart: without the characters that show nothing
    (format characters: zero-width spaces and joiners, bidirectional marks; controls), in
    Unicode NFKC, case-folded, runs of spaces as one: "An\u200bna" and "ANNA" are "anna" to
    the eye. How the report's labels and the alerts' text decide that two agents' names
    collide."""
    visible = "".join(c for c in name if unicodedata.category(c) not in ("Cf", "Cc"))
    return " ".join(unicodedata.normalize("NFKC", visible).casefold().split())


def shows_something(text: str) -> bool:
    """Whether ``text`` holds a character that shows (``as_seen(text)`` is not empty): False
    for zero-width, format, control and space characters alone. Printable ASCII with a
    character other than a space is answered at once (the ids of every close): the
    normalisation is only for the rest."""
    if text and text.isascii() and text.isprintable() and not text.isspace():
        return True
    return bool(as_seen(text))


def name_key(name: str) -> str:
    """A team's or a channel's identity: its name :func:`as_seen`, every kind of space (a
    tab, a line break, U+00A0) first read as one space. "Billing", "billing", "BILLING " and
    "Billing\u00a0" are one team, "Café" composed and as "Cafe" + U+0301 too; "" is no team
    (nor is a name of spaces or of invisible characters alone). How the report groups surveys
    into teams (``sync/dataset.py``) and how intake compares a close's team and channel with
    ``exclude_teams`` and ``exclude_channels``. Nothing stored is rewritten: the key is
    computed where names are compared."""
    return as_seen(" ".join(name.split()))


def shown_spelling(text: str) -> str:
    """A spelling of a team as the report may show it: Unicode NFC ("Café" whether the
    helpdesk composed the é or not), runs of spaces of any kind as one, none at either end.
    Case is kept: it is the helpdesk's."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def shown_name(uses: Iterable[tuple[str, int]]) -> str:
    """The name a team is shown by, of its spellings (each :func:`shown_spelling`, with how
    many surveys spell it; at least one): the one most surveys use; among as many, the first
    in code-point order ("Billing" before "billing"). How the report names a team
    (``sync/dataset.py``), and alert text with it."""
    return min(uses, key=lambda kv: (-kv[1], kv[0]))[0]


def ticket_form(text: str) -> str:
    """A ticket as people type it, made comparable: "#D38", " d38 " and "Ｄ38" are D38's
    (NFKC, surrounding spaces and one leading ``#`` dropped, case-folded); "D3" and "D380"
    stay other tickets. How a form's ticket field is matched with a dialog id (``erase``, and
    the sync's erased dialogs); empty when nothing is left."""
    form = unicodedata.normalize("NFKC", text).strip()
    return form.removeprefix("#").strip().casefold()


def ticket_spellings(text: str) -> list[str]:
    """The spellings of ``text``'s ticket a database may hold, for a look-up by
    :func:`folded` (which compares them without case): as typed without spaces, without its
    leading ``#`` and with one. Compare what it finds by :func:`ticket_form`."""
    bare = unicodedata.normalize("NFKC", text).strip().removeprefix("#").strip()
    return sorted({text.strip(), bare, f"#{bare}"} - {"", "#"})


# A number as a spreadsheet program shows one too long for its cell: "1.23457E+18" (a comma
# for the decimal mark in some locales).
_SCIENTIFIC = re.compile(r"([0-9])(?:[.,]([0-9]{1,14}))?E\+?([0-9]{1,3})", re.IGNORECASE)
# The significant digits a spreadsheet program keeps of a number (Excel: 15), and the least
# number its General format shows in scientific notation (Excel: 12 digits and more).
_KEPT_DIGITS = 15
_SHOWN_WHOLE = 10**11


def spreadsheet_rendering(field: str, dialog_id: str) -> str | None:
    """How the ticket ``field`` is what a spreadsheet program (an export opened and saved in
    Excel) makes of the numeric ticket id ``dialog_id``: ``"zeros"`` (its leading zeros
    dropped: ``123`` for ``00123``), ``"rounded"`` (a long number rounded, beyond recovery:
    ``1.23457E+18``, or kept to 15 significant digits, ``1234567890123450000``, for
    ``1234567890123456789``); None when it is neither (another ticket: an edit). Both say
    nothing of which survey the answer is for: the signed reference says that. How the
    sync's attribution reads a credited answer's ticket field, and the erasure an unverified
    one's (besides :func:`ticket_form`)."""
    field, dialog_id = field.strip(), dialog_id.strip()
    if not (dialog_id.isascii() and dialog_id.isdigit() and field.isascii()):
        return None
    number = int(dialog_id)
    if field.isdigit():
        if field != dialog_id and field.lstrip("0") == dialog_id.lstrip("0"):
            return "zeros"
        size = len(dialog_id.lstrip("0"))
        if len(field) != size or size <= _KEPT_DIGITS:
            return None
        if not field[_KEPT_DIGITS:].strip("0") and abs(int(field) - number) < 10 ** (
            size - _KEPT_DIGITS
        ):
            return "rounded"  # rounded or cut at the 15th digit
        # A sheet's number cell holds a double: read as one, 1234567890123456789 is
        # 1234567890123456768.
        return "rounded" if float(int(field)) == float(number) else None
    shown = _SCIENTIFIC.fullmatch(field)
    if shown is None or number < _SHOWN_WHOLE:
        return None  # a shorter number is shown whole
    fraction = shown.group(2) or ""
    digits = int(shown.group(1) + fraction)
    exponent = int(shown.group(3)) - len(fraction)
    if exponent < 0:
        return None
    step = 10**exponent  # the last digit shown
    kept = 10 ** max(len(str(number)) - _KEPT_DIGITS, 0)
    held = number // kept * kept  # the digits past the 15th cut as the file is opened
    # Shown rounded half up to the digits shown.
    return "rounded" if 0 <= held - (digits * step - step // 2) < step else None


def may_be_rendering(field: str) -> bool:
    """Whether the ticket ``field`` has the shape of a spreadsheet rendering of a numeric id
    (all ASCII digits, or shown in scientific notation): only such a field can be
    :func:`spreadsheet_rendering` of an id, so only such fields are worth a
    :class:`RenderedIds` look-up."""
    field = field.strip()
    if not field.isascii():
        return False
    return field.isdigit() or _SCIENTIFIC.fullmatch(field) is not None


class RenderedIds:
    """Numeric ids (all ASCII digits; the others are left out), asked whether a ticket field
    is a :func:`spreadsheet_rendering` of one of them without comparing the field with each:
    a rounded rendering cannot be turned back into its id, but it stands for a range of
    numbers. How the sync finds a typed ticket naming an erased dialog as Excel showed it.

    The ids' values are kept sorted. The numbers a field renders (as
    :func:`spreadsheet_rendering` decides) are one range, as the digits a spreadsheet keeps
    of a number grow with it, and that range holds the number the field reads as (the
    least it can render when that one is too short to be rendered so) whenever it holds
    any: of the ids, only the nearest to that number on either side need be confirmed, one
    farther out is in the range only if they are. With the ids of the field's own value
    (leading zeros dropped), a field costs a bisection and a few comparisons, however many
    ids there are."""

    def __init__(self, ids: Iterable[str]) -> None:
        spellings: dict[int, set[str]] = {}
        for raw in ids:
            text = raw.strip()
            if text and text.isascii() and text.isdigit():
                spellings.setdefault(int(text.lstrip("0") or "0"), set()).add(text)
        self._spellings = {value: sorted(texts) for value, texts in spellings.items()}
        self._values = sorted(spellings)
        # No field longer than the longest id (without its leading zeros) renders one: its
        # value is never read (Python refuses an int of more than 4,300 digits).
        self._widest = max((len(str(value)) for value in self._values), default=0)

    def __len__(self) -> int:
        return len(self._values)

    def rendered_by(self, field: str) -> bool:
        """Whether the ticket ``field``, compared in its :func:`ticket_form` as typed tickets
        are, is a spreadsheet program's rendering of one of the ids: exactly when
        ``spreadsheet_rendering`` says so of one of them. An id typed exactly as it is
        spelled is the look-up by spelling's to find."""
        form = ticket_form(field)
        if not self._values or not may_be_rendering(form):
            return False
        return any(
            spreadsheet_rendering(form, spelling) is not None
            for value in self._candidates(form)
            for spelling in self._spellings[value]
        )

    def _candidates(self, form: str) -> set[int]:
        """The values of the ids that ``form`` (a rendering's shape) may render."""
        found: set[int] = set()
        if form.isdigit():
            significant = form.lstrip("0")
            if len(significant) > self._widest:
                return found
            value = int(significant or "0")
            if value in self._spellings:
                found.add(value)  # its leading zeros dropped, or added
            if _KEPT_DIGITS < len(form) <= self._widest:
                # Rounded: a number as long as the field ("0…" reads as the least of them).
                found.update(self._nearest(max(value, 10 ** (len(form) - 1))))
            return found
        shown = _SCIENTIFIC.fullmatch(form)
        if shown is None:
            return found
        fraction = shown.group(2) or ""
        exponent = int(shown.group(3)) - len(fraction)
        if exponent >= 0:
            number = int(shown.group(1) + fraction) * 10**exponent
            found.update(self._nearest(max(number, _SHOWN_WHOLE)))
        return found

    def _nearest(self, point: int) -> list[int]:
        """The values next to ``point``: the least at or above it, the greatest below it."""
        at = bisect.bisect_left(self._values, point)
        return self._values[max(at - 1, 0) : at + 1]


IN_CHUNK = 500  # values per ``IN (...)`` list: well under every driver's parameter limit


def in_chunks(values: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """``values`` in lists of at most ``size``, for look-ups by ``column.in_(chunk)``."""
    items = list(values)
    for start in range(0, len(items), size):
        yield items[start : start + size]
