"""Header-mapped tables (the responses sheet, a CSV export): columns found by title.

Forms sheets are messy: headers are localized ("Отметка времени"), a renamed or re-added
question gives a second column with the same or a new title, managers add their own columns,
and blank rows appear between answers. Every configured title of a role is looked up after
normalization; when several columns hold a role, each row takes the rightmost non-empty one
(Forms appends new questions on the right, so that is the newest). A row that answers the
time, rating, reference or NPS question in two such columns, differently, is skipped
(``ambiguous_columns``, naming both columns by letter): which one is the form's is unclear.
The row as read keeps every column, a title met again as ``Title (2)``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Callable
from collections.abc import Container
from collections.abc import Iterable
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from csat_hook.errors import ConfigError
from csat_hook.errors import SourceConfigError
from csat_hook.sync.config import RESULT_ROLES
from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.layout import column_letters
from csat_hook.sync.records import LEGACY_PRESENT
from csat_hook.sync.records import SkippedRow
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.records import Submission
from csat_hook.sync.records import raw_of
from csat_hook.sync.sources.base import RowParser
from csat_hook.sync.sources.identity import admit
from csat_hook.sync.sources.identity import legacy_fingerprint
from csat_hook.sync.sources.identity import skipped_identity
from csat_hook.sync.timestamps import TimestampError
from csat_hook.sync.timestamps import TimestampReader
from csat_hook.sync.values import READING_VERSION
from csat_hook.sync.values import as_text
from csat_hook.sync.values import is_blank
from csat_hook.sync.values import normalize
from csat_hook.tokens import MAX_TOKEN_LENGTH

REQUIRED_ROLES = ("timestamp", "rating", "token")


def map_columns(
    header: Sequence[Any],
    columns: ColumnsConfig,
    where: str,
    *,
    timestamp_formats: Sequence[str] = (),
) -> tuple[dict[str, list[int]], list[str]]:
    """role → column indexes (rightmost first), plus warnings.

    A required role without a column is a configuration error (the titles are in the
    configuration), one the source's editors cause and undo without a deploy (a question
    renamed, the title row deleted, rows inserted above it), so a periodic sync reports it
    and goes on: SourceConfigError naming ``results.columns.<role>`` and listing the headers;
    or naming the source (``where``) when the row has no title at all (empty rows above the
    titles), or saying that the row is an answer (:func:`_looks_like_answer`, which reads
    the source's ``timestamp_formats`` too), whose cells are never listed.
    A named NPS question without a column is a warning that says the same.
    """
    titles = [normalize(cell) if not is_blank(cell) else "" for cell in header]
    found: dict[str, list[int]] = {}
    warnings: list[str] = []
    for role in RESULT_ROLES:
        wanted = {normalize(t) for t in getattr(columns, role) if t.strip()}
        indexes = [i for i, title in enumerate(titles) if title and title in wanted]
        if indexes:
            found[role] = indexes[::-1]
        if len(indexes) > 1:
            strict = role in _ONE_ANSWER_ROLES
            warnings.append(
                f"{len(indexes)} columns match results.columns.{role}; each row "
                "uses the rightmost non-empty one"
                + (" (a row answering two, differently, is skipped)" if strict else "")
            )
    missing = [role for role in REQUIRED_ROLES if role not in found]
    if missing and not any(titles):
        # Empty lines above the titles: the error named every results.columns key, whose
        # titles were right ("headers found: none"), and said to add them.
        raise SourceConfigError(
            f"{where}: the first row is empty, so no column titles were found: the header row "
            "(the form's question titles) must be the first row; delete the empty rows above it"
        )
    if missing and _looks_like_answer(header, timestamp_formats):
        # Its cells are a respondent's (a comment, a signed reference): never listed.
        raise SourceConfigError(
            f"{', '.join(f'results.columns.{role}' for role in missing)}: the first row of "
            f"{where} looks like an answer, not column titles (a cell in it is a date-time, "
            "a number or a signed reference): "
            "the header row is missing; download the export again (or put the form's header "
            "row back in the sheet)"
        )
    shown = _headers_shown(header)
    if missing:
        keys = ", ".join(f"results.columns.{role}" for role in missing)
        raise SourceConfigError(
            f"{keys}: no column with one of these titles in {where} ({shown}); add the "
            "question's title to that list"
        )
    if "nps" not in found and any(title.strip() for title in columns.nps):
        # Named, so the report has NPS columns: without this they stayed empty in an "ok"
        # run when the title differed by a character ("0-10" and "0–10").
        warnings.append(
            f"results.columns.nps: no column with one of these titles in {where} ({shown}); "
            "no NPS answer was read: add the question's title to that list"
        )
    return found, warnings


def _headers_shown(header: Sequence[Any]) -> str:
    """The header row's titles as a message lists them ("headers found: 'A', 'B'"), or why
    they are not listed: a cell that spans lines is a quote in the row missing or stray
    (titles are one line), and that cell and the ones after it are the answers below it (a
    comment, a signed reference), which were listed."""
    if any(isinstance(cell, str) and ("\n" in cell or "\r" in cell) for cell in header):
        return (
            "its headers are not listed: a cell of that row spans lines, so a quote in it is "
            "missing or stray and the rows below ran into it; fix the file"
        )
    titles = [str(h) for h in header if not is_blank(h)]
    # Bounded: a pasted document as a title, or 20,000 columns, made a message of megabytes
    # (the run's output, its ERROR log line).
    shown = [
        repr(t if len(t) <= _TITLE_SHOWN else t[: _TITLE_SHOWN - 3] + "...")
        for t in titles[:_TITLES_SHOWN]
    ]
    listed = ", ".join(shown) or "none"
    more = len(titles) - _TITLES_SHOWN
    return f"headers found: {listed}" + (f" and {more:,} more" if more > 0 else "")


# How many titles a message lists, and how much of each.
_TITLES_SHOWN = 30
_TITLE_SHOWN = 60


def _looks_like_answer(header: Sequence[Any], timestamp_formats: Sequence[str] = ()) -> bool:
    """Whether a row read as the header row holds what answers hold and question titles do
    not: the export lost its header row, and the first answer was taken for it, so its cells
    (a comment, a signed reference) must not be listed. Such a cell is a date-time (in a
    built-in layout or one of ``timestamp_formats``), a number (a sheet's serial, a midnight
    one whole; a rating), a text of digits alone (a rating, a ticket) or a signed
    reference's shape. A row whose submission time is blank or in no layout still holds its
    rating, or its reference. Not a row with a cell that spans lines: a quote missing there
    ran the rows below into it (:func:`_headers_shown` says so)."""
    reader = TimestampReader(ZoneInfo("UTC"), date_order="DMY", extra_formats=timestamp_formats)
    for cell in header:
        if isinstance(cell, datetime | int | float):  # bool too: a checkbox is no title
            return True
        if isinstance(cell, str) and ("\n" in cell or "\r" in cell):
            # A quote missing or stray ran the rows below into this cell, and the cells after
            # it are theirs: _headers_shown says so, listing none.
            return False
        if not isinstance(cell, str):
            continue
        text = cell.strip()
        if text.isdigit() or (len(text) <= _REFERENCE_CELL and _REFERENCE_SHAPE.search(text)):
            return True
        if not _has_digit(text):
            continue
        try:
            reader.parse(text)
        except TimestampError as exc:
            if exc.reason in ("bad_timestamp", "missing_timestamp"):
                continue
        return True
    return False


def _has_digit(text: str) -> bool:
    """Whether a character of ``text`` is a digit (``str.isdigit``: superscripts and other
    scripts' digits too). An ASCII text is searched by the regular expression engine: a
    pasted document as a title (10 MB) took seconds character by character, at each of the
    run's looks at its header row."""
    if text.isascii():
        return _ASCII_DIGIT.search(text) is not None
    return any(map(str.isdigit, text))


_ASCII_DIGIT = re.compile(r"[0-9]")


# A signed reference (csat_hook.tokens: base64url payload "." a tag of 12 bytes or more),
# alone or in a link, as a form's hidden field holds it. Looked for from the start of a run
# of its characters only, and in a cell no longer than a link holding one: within a run it
# was tried at every character, each try to the run's end (a title of a megabyte of letters
# took minutes).
_REFERENCE_SHAPE = re.compile(r"(?<![\w-])[\w-]{8,}+\.[\w-]{16}", re.ASCII)
_REFERENCE_CELL = 4 * MAX_TOKEN_LENGTH


def read_table(
    batch: SourceBatch,
    kind: str,
    header: Sequence[Any],
    rows: Iterable[Sequence[Any]],
    columns: ColumnsConfig,
    parser: RowParser,
    known: Container[str],
    *,
    where: str,
    first_row: int = 2,
    scan_timestamps: Callable[[Iterable[Any]], None] | None = None,
    timestamp_formats: Sequence[str] = (),
) -> None:
    """Parse data rows into ``batch``; row numbers are as the spreadsheet shows them. A
    header row of other columns (:func:`_other_header`) and every row below it are skipped
    (``columns_differ``): a read with such rows is not remembered (sync/read_memo.py), so
    rows added below it later are never read alone, by ``header``.

    ``scan_timestamps`` is given the timestamp column's values once before any row is
    parsed (the day/month order is a property of the whole column): ``rows`` is iterated
    twice then, so it must be a collection, or an iterable that reads them again (a CSV
    export's, which holds no row it does not keep). ``timestamp_formats``: the source's own
    layouts (:func:`map_columns`).
    """
    mapping, warnings = map_columns(header, columns, where, timestamp_formats=timestamp_formats)
    batch.warnings.extend(warnings)
    headers = tuple("" if is_blank(h) else str(h) for h in header)
    batch.columns.update(
        (role, headers[indexes[0]] or f"column {indexes[0] + 1}")
        for role, indexes in mapping.items()
    )
    pickers = [(role, tuple(indexes)) for role, indexes in mapping.items()]
    if scan_timestamps is not None:
        stamps = tuple(mapping["timestamp"])
        scan_timestamps(_pick(row, stamps) for row in rows)
    legacy = LEGACY_PRESENT in known
    # Rows recognised by their cells (none while legacy digests remain: those rows must be
    # parsed once to be re-keyed).
    raw_known = frozenset() if legacy else raw_of(known)
    key = raw_key(kind, headers, pickers, parser.signature())
    warning_count = parser.warning_count
    seen: dict[str, int] = {}  # a double-click submits the same values twice in one second
    recognised = batch.raw_seen
    stamp_titles = frozenset(normalize(t) for t in columns.timestamp if t.strip())
    doubled = [(r, i) for r, i in pickers if len(i) > 1 and r in _ONE_ANSWER_ROLES]
    other: str | None = None  # why the rows below a header row of other columns are skipped
    for offset, row in enumerate(rows):
        batch.rows_read += 1
        if other is not None:
            # Before the digests: read by row 1's titles, such a row may have been credited.
            values = {role: _pick(row, indexes) for role, indexes in pickers}
            if all(map(is_blank, row)):
                batch.blank_rows += 1
                continue
            below = SkippedRow(
                skipped_identity(values, None), f"row {first_row + offset}", "columns_differ", other
            )
            admit(batch, below, known, seen, legacy=None)
            continue
        digest = raw_digest(key, row)
        if digest in raw_known:
            batch.unchanged += 1  # the same cells read the same way: the same processed row
            recognised[digest] = first_row + offset  # rows in order: the last is the lowest
            continue
        values = {role: _pick(row, indexes) for role, indexes in pickers}
        if not any(v is not None for v in values.values()) and all(map(is_blank, row)):
            batch.blank_rows += 1
            continue
        clash = _clash(row, doubled, headers) if doubled else None
        if clash is not None:
            role, detail = clash
            item: Submission | SkippedRow = SkippedRow(
                skipped_identity(values, None),
                f"row {first_row + offset}",
                "ambiguous_columns",
                detail,
                role,
            )
            admit(batch, item, known, seen, legacy=None)
            continue
        # Parsed before the known check: the identity is made of parsed values.
        warned = warning_count()
        item = parser.parse(values, ref=f"row {first_row + offset}", headers=headers, cells=row)
        if isinstance(item, SkippedRow) and item.role == "timestamp":
            stamp = values["timestamp"]
            number = first_row + offset
            if isinstance(stamp, str) and normalize(stamp) in stamp_titles:
                item = dataclasses.replace(item, detail=_TITLES_AGAIN)
            elif _other_header(row, stamp_titles, columns, mapping):
                other = (
                    f"row {number} holds column titles again, and its columns differ from "
                    f"row 1's (another export pasted below?): it and the rows below it are "
                    "not read by either; move them into row 1's columns, or into a file or "
                    "tab of their own"
                )
                item = dataclasses.replace(item, reason="columns_differ", detail=other)
        if isinstance(item, Submission) and warning_count() == warned:
            # Rows whose reading warns are parsed every run, so each run's warnings are whole.
            batch.raw_digests.append((digest, item.fingerprint))
        admit(
            batch,
            item,
            known,
            seen,
            legacy=functools.partial(legacy_fingerprint, kind, values) if legacy else None,
        )


def _other_header(
    row: Sequence[Any],
    stamp_titles: frozenset[str],
    columns: ColumnsConfig,
    mapping: dict[str, list[int]],
) -> bool:
    """Whether ``row`` (its timestamp cell not a date-time) is a header row whose columns
    differ from the first one's (``mapping``): it holds a timestamp title elsewhere, and its
    titles give the required roles other columns. Only rows already skipped are asked."""
    if not any(isinstance(c, str) and normalize(c) in stamp_titles for c in row):
        return False
    try:
        found, _ = map_columns(row, columns, "")
    except ConfigError:
        return False
    return any(found.get(role) != mapping.get(role) for role in found.keys() | mapping.keys())


# The roles a row must answer in one column when several hold it: a guess between two
# answers is a wrong time, rating or credit. (A comment, agent or ticket is text beside the
# answer: the rightmost is read, and the row as read keeps both.)
_ONE_ANSWER_ROLES = frozenset({"timestamp", "rating", "token", "nps"})


def _clash(
    row: Sequence[Any], doubled: Sequence[tuple[str, tuple[int, ...]]], headers: Sequence[str]
) -> tuple[str, str] | None:
    """``(role, why)`` when ``row`` answers a role in two of its columns, differently: a
    question added again leaves each row an answer in one of them (the rightmost non-empty
    is read), while two answers are a manager's own column of the form's title, or two
    exports side by side, and the rightmost was read by a guess. The same answer in both
    (``5`` and ``"5"``) is no clash."""
    size = len(row)
    for role, indexes in doubled:
        found = [(i, as_text(row[i])) for i in sorted(indexes) if i < size and not is_blank(row[i])]
        if len({text for _, text in found}) < 2:
            continue
        (first, _), (second, _) = found[0], next(f for f in found if f[1] != found[0][1])
        one, two = headers[first] or f"column {first + 1}", headers[second] or ""
        titled = repr(one) if normalize(one) == normalize(two) else f"{one!r} and {two!r}"
        return role, (
            f"columns {column_letters(first)} and {column_letters(second)}, titled {titled} "
            f"(results.columns.{role}), both hold an answer in this row, different ones: which "
            "one is the form's is unclear; clear the other (or rename a column of your own)"
        )
    return None


# Why a row whose timestamp cell is a timestamp column's title is skipped: it was "not a
# date-time layout Forms, Sheets or Apps Script write", which sent the operator to the layouts.
_TITLES_AGAIN = (
    "a header row (the column titles again: two downloads joined?), not an answer: delete it; "
    "the rows below it are read by the first row's titles"
)


def raw_key(kind: str, headers: Sequence[str], pickers: Any, settings: str) -> bytes:
    """The key of a table's raw digests: everything besides the cells that decides what a row
    means (source kind, headers, which columns hold which role, reading settings, and the
    code's way of reading cells: :data:`~csat_hook.sync.values.READING_VERSION`)."""
    reading = f"{settings} reading {READING_VERSION}"
    text = "\x1f".join((kind, repr(tuple(headers)), repr(pickers), reading))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=32).digest()


def raw_digest(key: bytes, row: Sequence[Any]) -> str:
    """A row's cells as read (types kept: ``5`` and ``"5"`` differ), under ``key``. The same
    digest means the same identity; a different one only means the row is parsed (hot: once
    per row)."""
    data = repr(row).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16, key=key).hexdigest()


def _pick(row: Sequence[Any], indexes: tuple[int, ...]) -> Any:
    """The first non-blank cell among ``indexes`` (hot: once per role and row)."""
    size = len(row)
    for index in indexes:
        if index < size:
            cell = row[index]
            if cell is not None and cell != "" and (cell.__class__ is not str or cell.strip()):
                return cell
    return None
