"""``csv``: a Forms "Download responses (.csv)" export (or a sheet saved as CSV).

The embedded default. The export's timestamps look like ``2026/09/27 3:00:00 PM GMT+3`` or
``2025/09/08 3:47:14 AM EST`` (the offset or zone is honoured); a sheet saved as CSV gives
locale text such as ``11/22/2026 20:17:11`` (en_US) or ``22.11.2026 20:17:11`` (ru_RU), read
as wall-clock time in ``results.csv.timezone``. Every layout is read by
:mod:`csat_hook.sync.timestamps`; the day/month order is settled per file
(``results.csv.date_order`` when the dates do not settle it).
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import re
from collections.abc import Container
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from zoneinfo import ZoneInfo

from csat_hook.errors import ConfigError
from csat_hook.errors import ResultsMissingError
from csat_hook.errors import SourceError
from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.config import SyncSettings
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.sources.appended import RowsPrefix
from csat_hook.sync.sources.base import ResultsSource
from csat_hook.sync.sources.base import RowParser
from csat_hook.sync.sources.base import WholeRead
from csat_hook.sync.sources.base import bytes_digest
from csat_hook.sync.sources.table import map_columns
from csat_hook.sync.sources.table import read_table
from csat_hook.sync.timestamps import DateOrder
from csat_hook.sync.timestamps import TimestampColumn
from csat_hook.sync.values import RatingScale

if TYPE_CHECKING:
    from _csv import Reader


class CsvResults(ResultsSource):
    """Reads the whole file each run; fingerprints make that incremental."""

    kind = "csv"

    def __init__(
        self,
        path: Path,
        *,
        timezone: str,
        encoding: str,
        delimiter: str,
        timestamp_formats: Sequence[str] = (),
        date_order: DateOrder | None = None,
        abbreviations: Mapping[str, tzinfo] | None = None,
        columns: ColumnsConfig,
        ratings: RatingScale,
    ) -> None:
        self.path = path
        self.tz = ZoneInfo(timezone)
        self.encoding = encoding
        self.delimiter = delimiter
        self.formats = tuple(timestamp_formats)
        self.date_order = date_order
        self.abbreviations = dict(abbreviations or {})
        self.columns = columns
        self.ratings = ratings
        self._data: bytes | None = None  # what prefetch read, until fetch parses it
        self._content = b""  # its digest (WholeRead.content)

    @classmethod
    def from_config(
        cls, config: SyncSettings, *, sheets: SheetsApi | None = None, forms: FormsApi | None = None
    ) -> CsvResults:
        options = config.results.csv
        return cls(
            Path(options.path),
            timezone=options.timezone,
            encoding=options.encoding,
            delimiter=options.delimiter,
            timestamp_formats=options.timestamp_formats,
            date_order=options.configured_order,
            abbreviations=options.abbreviation_zones(),
            columns=config.results.columns,
            ratings=RatingScale.from_config(config.results, config.metrics),
        )

    @property
    def key(self) -> str:
        return f"csv:{self.path.name}"

    @property
    def identity(self) -> str:
        """The file as configured, made absolute: a file of the same name in another folder
        is another export (the :attr:`key`, by name, only keys what is remembered to skip
        work)."""
        return f"csv:{self.path.absolute()}"

    def prefetch(self) -> WholeRead:
        """The file's bytes, read now; the digest covers them (every setting that reads them
        is in ``results.csv``, which the memo's key covers)."""
        if self.path.is_dir():
            # It was "does not exist", and `serve` waited for it as for a download to come.
            raise ConfigError(
                f"results.csv.path: {self.path} is a folder, not a file: point "
                "results.csv.path at the export's .csv file in it"
            )
        if not self.path.is_file():
            raise ResultsMissingError(
                f"results.csv.path: {self.path} does not exist (in the form: "
                "Responses → ⋮ → Download responses (.csv), then save it there or point "
                "results.csv.path at the file)",
                path=str(self.path),
            )
        try:
            self._data = self.path.read_bytes()
        except OSError as exc:
            raise self._unreadable(exc) from exc
        self._content = bytes_digest(self._data)
        return WholeRead(b"", self._content)

    def _unreadable(self, exc: Exception, data: bytes = b"") -> SourceError:
        """Why ``data`` (the file's bytes) cannot be read, naming the setting to change and
        the line, never quoting the file (customer text)."""
        if isinstance(exc, UnicodeDecodeError):
            if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                hint = (
                    'it starts with a UTF-16 byte-order mark (Excel\'s "Unicode Text"): set '
                    "results.csv.encoding to utf-16 (and results.csv.delimiter to '\\t')"
                )
            elif _codec_name(self.encoding) in _UTF8 and (line := _utf8_but_line(data, exc)):
                hint = (
                    f"line {line} is not {self.encoding}, while the text around it is: that "
                    "line was saved in another encoding (a hand edit?): type it again in "
                    "UTF-8, or delete it"
                )
            else:
                line = data.count(b"\n", 0, exc.start) + 1
                hint = (
                    f"line {line} is not {self.encoding}: set results.csv.encoding to the "
                    "export's encoding (cp1251 for a CSV from a Russian Excel)"
                )
            return SourceError(f"results.csv.encoding: cannot decode {self.path}: {hint}")
        if isinstance(exc, LookupError):
            return SourceError(f"results.csv.encoding: {self.encoding!r} is not an encoding")
        return SourceError(f"results.csv.path: cannot read {self.path} ({type(exc).__name__})")

    def fetch(self, known: Container[str], watermark: datetime | None) -> SourceBatch:
        data = self._take()
        if data.startswith(_ZIP_MAGIC):
            raise SourceError(
                f"results.csv.path: {self.path.name} is a ZIP archive, not a CSV file: Forms "
                "downloads the responses zipped (unzip it and point results.csv.path at the "
                ".csv inside), and an .xlsx workbook is one too (save it as CSV)"
            )
        wide = _wide_encoding(self.encoding)
        if wide and data and b"\x00" not in data:
            raise SourceError(
                f"results.csv.encoding: {self.path.name} is not {wide} (no byte of it is 0, "
                "as the commas and line breaks of a CSV in it are): set results.csv.encoding "
                "to the export's encoding (utf-8-sig for a Forms download)"
            )
        self._check_not_utf8(data)
        try:
            text = _without_bom(_decoded(data, self.encoding))
            delimiter, declared = _declared(text, self.delimiter)
            records = list(_records(text, delimiter))[declared:]
        except (UnicodeError, LookupError, csv.Error) as exc:
            raise self._unreadable(exc, data) from exc
        if records and not self._titles_found(records[0]):
            self._check_encoding(data, delimiter, declared)
            if not declared:
                self._check_delimiter(text, records[0])
        malformed, open_quote = self._malformed(text, delimiter)
        resume = self._prefix(data, len(records)) if self._ends(text, malformed) else None
        cut = open_quote or not text.endswith(_LINE_BREAKS)
        del data, text
        batch = SourceBatch(source=self.kind)
        if malformed:
            batch.warnings.append(malformed)
        if not any(any(cell.strip() for cell in record) for record in records):
            # No title (a Forms download always has them): a copy just begun, or a failed
            # download. Read as every row, it forgot the unverified and skipped rows stored
            # from the file, and the next run stored them again as new.
            batch.warnings.append(f"{self.path} is empty")
            batch.complete = False
            return batch
        if cut and len(records) > 1:
            batch.unterminated = f"row {len(records)}"  # the header is row 1
        if self._parse(batch, records[0], records[1:], known, first_row=2):
            batch.resume = resume
        return batch

    def fetch_after(self, resume: Mapping[str, Any], known: Container[str]) -> SourceBatch | None:
        data, codec, prefix = self._data, _tail_codec(self.encoding), RowsPrefix.from_dict(resume)
        if data is None or codec is None or prefix is None or prefix.rows < 1:
            return None
        length, rows = prefix.length, prefix.rows
        if len(data) < length or bytes_digest(data[:length]).hex() != prefix.digest:
            return None
        try:
            head = _without_bom(data[:length].decode(self.encoding))
            tail = data[length:].decode(codec)
            delimiter, declared = _declared(head, self.delimiter)
            header = next(itertools.islice(_records(head, delimiter), declared, None))
            added = list(_records(tail, delimiter))
        except (UnicodeError, LookupError, csv.Error, StopIteration):
            return None  # fetch reads it all, and says what is wrong
        if _utf8_under_single_byte(self.encoding, data):
            return None  # fetch refuses it (UTF-8 rows added to an ASCII file)
        self._data = None
        if self._malformed(tail, delimiter)[0]:
            return None  # fetch reads it all, and says where
        later = self._prefix(data, rows + len(added)) if self._ends(tail, None) else None
        cut = not tail.endswith(_LINE_BREAKS)  # well-formed: not inside quotes
        del data, head, tail
        batch = SourceBatch(source=self.kind)
        if cut and added:
            batch.unterminated = f"row {rows + len(added)}"
        if self._parse(batch, header, added, known, first_row=rows + 1):
            batch.resume = later
        return batch

    def _check_not_utf8(self, data: bytes) -> None:
        """SourceError naming ``results.csv.encoding`` when ``data`` is UTF-8 text (a UTF-8
        byte-order mark, or non-ASCII bytes that all decode as UTF-8, or all but a line's) and
        the encoding is a single-byte code page. Such a code page decodes nearly any bytes: a
        Forms export read as cp1251 was stored garbled (each Cyrillic letter two others) and
        the run said ok; with Excel's byte-order mark the error blamed the column titles. A
        genuine cp1251 file's letters are not UTF-8 sequences, and an ASCII one reads the
        same either way."""
        if not _utf8_under_single_byte(self.encoding, data):
            return
        why = (
            "it starts with a UTF-8 byte-order mark"
            if data.startswith(codecs.BOM_UTF8)
            else "its non-ASCII bytes are UTF-8 characters"
        )
        also = ""
        try:
            _decoded(data, "utf-8")
        except UnicodeDecodeError as exc:
            also = (
                f"; line {_utf8_but_line(data, exc)} was saved in another encoding (a hand "
                "edit?): type it again in UTF-8, or delete it"
            )
        raise SourceError(
            f"results.csv.encoding: {self.path.name} is UTF-8, not {self.encoding} ({why}; "
            f"read as {self.encoding} its letters would be stored garbled): set "
            f"results.csv.encoding to utf-8 (a Forms download is UTF-8){also}"
        )

    def _titles_found(self, header: Sequence[str]) -> bool:
        """Whether the configured column titles are in ``header`` (else the read fails naming
        them, unless a check below finds what setting is really wrong)."""
        try:
            map_columns(header, self.columns, "")
        except ConfigError:
            return False
        return True

    def _check_encoding(self, data: bytes, delimiter: str, declared: int) -> None:
        """ConfigError naming ``results.csv.encoding`` when the header row's bytes decoded with
        another usual encoding hold the configured titles (called when they are not in the
        header as decoded): a code page decodes nearly any bytes, so a Russian Excel's CSV
        (cp1251) read as cp1252 listed its titles garbled ('Îòìåòêà âðåìåíè') and said to add
        them to results.columns. Only the header line is decoded again, on this error's
        path."""
        lines = data.split(b"\n", declared + 1)
        line = lines[declared] if len(lines) > declared else b""
        configured = _codec_name(self.encoding)
        for other in _USUAL_ENCODINGS:
            if _codec_name(other) == configured:
                continue
            try:
                titles = next(_records(_without_bom(line.decode(other)), delimiter))
                map_columns(titles, self.columns, "")
            except (UnicodeDecodeError, StopIteration, csv.Error, ConfigError):
                continue
            raise ConfigError(
                f"results.csv.encoding: the header row of {self.path.name} holds the column "
                f"titles when read as {other}, not {self.encoding}: set results.csv.encoding "
                f"to {other}"
            )

    def _check_delimiter(self, text: str, header: Sequence[str]) -> None:
        """ConfigError naming ``results.csv.delimiter`` when the header row split by another
        usual delimiter holds the configured titles (called when they are not in the header
        as split): Excel saves "CSV" with ``;`` in locales whose decimal mark is a comma (ru,
        de, fr...), and "Unicode Text" with tabs. The error named the column titles, which
        are right."""
        for other in _USUAL_DELIMITERS:
            if other == self.delimiter or not any(other in cell for cell in header):
                continue
            try:
                map_columns(next(_records(text, other)), self.columns, "")
            except ConfigError:
                continue
            raise ConfigError(
                f"results.csv.delimiter: the header row of {self.path.name} is separated by "
                f"{other!r}, not {self.delimiter!r} (spreadsheets in some locales save CSV "
                f"so): set results.csv.delimiter to {other!r}"
            )

    def _prefix(self, data: bytes, rows: int) -> dict[str, Any]:
        """The resume of a read of all of ``data`` (``rows`` records): the whole file, whose
        digest prefetch already took."""
        return RowsPrefix(len(data), self._content.hex(), rows).as_dict()

    def _take(self) -> bytes:
        if self._data is None:
            self.prefetch()
        assert self._data is not None
        data, self._data = self._data, None  # the bytes are not kept past the parse
        return data

    def _ends(self, text: str, malformed: str | None) -> bool:
        """Whether ``text`` ends at the end of a record, so that rows added after it read
        alone as they would in the whole file: it ends with a line break that is not inside
        a quoted cell (``malformed`` is None: the strict reader refuses a file ending inside
        quotes; it may refuse other files the lenient one reads, which only costs a read of
        every row)."""
        return _tail_codec(self.encoding) is not None and text.endswith("\n") and not malformed

    def _malformed(self, text: str, delimiter: str) -> tuple[str | None, bool]:
        """A warning when ``text`` is not well-formed CSV (the strict reader refuses it): a
        quote missing or stray (a hand edit), or the text ending inside a quoted cell (a
        file still being written). The lenient reader reads on, so the rows from that quote
        to the next one read as one row, and those after it are missing from the read:
        the operator is told the line (never its text). Beside it, whether the text ends
        inside a quoted cell (as far as the strict reader shows: its first refusal is the
        end of the data; a stray quote above stops it first)."""
        reader = _records(text, delimiter, strict=True)
        try:
            for _ in reader:
                pass
        except csv.Error as exc:
            warning = (
                f"{self.path.name}: line {reader.line_num} is not well-formed CSV ({exc}): a "
                "quote at or above it is missing or stray, or the file was still being "
                "written; the rows from that quote on may read as one: fix the file"
            )
            return warning, str(exc) == _END_IN_QUOTES
        return None, False

    def _parse(
        self,
        batch: SourceBatch,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        known: Container[str],
        *,
        first_row: int,
    ) -> bool:
        """Parse ``rows`` into ``batch``; True when rows added later can be read alone (no
        value whose day/month order the column settles, unless the order is configured, and
        no reading warned)."""
        stamps = TimestampColumn(
            self.tz,
            configured=self.date_order,
            abbreviations=self.abbreviations,
            extra_formats=self.formats,
        )
        read_table(
            batch,
            self.kind,
            header,
            rows,
            self.columns,
            RowParser(
                self.ratings,
                stamps.parse,
                describe=stamps.describe,
                warning_count=stamps.warning_count,
                now=self.now,
            ),
            known,
            where=f"results.csv.path ({self.path.name})",
            first_row=first_row,
            scan_timestamps=stamps.scan,
        )
        batch.warnings.extend(
            f"{count} timestamps: {text}" for text, count in sorted(stamps.warnings.items())
        )
        return (not stamps.dated or self.date_order is not None) and not stamps.warning_count()


# The first bytes of a ZIP archive (a local file header): Forms' "Download responses (.csv)"
# gives "<form>.csv.zip", and an .xlsx is one. It was read as text: "not utf-8-sig, try
# cp1251", and under cp1251 its bytes were the header row the error listed.
_ZIP_MAGIC = b"PK\x03\x04"
# What ends a record (the csv module reads a lone CR as a line end too).
_LINE_BREAKS = ("\n", "\r")
# The strict reader's refusal of text that ends inside a quoted cell (CPython's _csv.c; only
# raised at the end of the data).
_END_IN_QUOTES = "unexpected end of data"
# The UTF-8 codecs' names (codecs.lookup).
_UTF8 = ("utf-8", "utf-8-sig")
# Encodings spreadsheets write CSV in (UTF-16 is told by its byte-order mark), tried on the
# header line when the configured one does not give the titles.
_USUAL_ENCODINGS = ("utf-8-sig", "cp1251", "cp1252")
# Delimiters spreadsheets write CSV with, besides the configured one.
_USUAL_DELIMITERS = (",", ";", "\t", "|")
# Excel's delimiter hint: "sep=" and one character on the first line.
_SEP_LINE = re.compile(r"sep=([^\r\n\"])(?:\r\n|\r|\n)", re.IGNORECASE)
# The largest field size the csv module takes on every platform (a C long).
_FIELD_LIMIT_MAX = 2**31 - 1


def _records(text: str, delimiter: str, *, strict: bool = False) -> Reader:
    """The CSV records of ``text``, any cell as long as ``text`` itself.

    The csv module refuses a cell over its field size limit (131,072 characters unless
    raised, process-wide): one respondent's long comment failed the read of every row. The
    file is in memory already, so no cell can be longer than it; the limit is raised to
    that. ``newline=""``: line ends inside quoted cells reach the reader as written."""
    if csv.field_size_limit() < len(text):
        csv.field_size_limit(min(len(text), _FIELD_LIMIT_MAX))
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=strict)


def _declared(text: str, configured: str) -> tuple[str, int]:
    """The delimiter of ``text`` and the records before its header: a first line ``sep=;``
    is Excel's hint, written so that a file opens in columns in any locale; it declares the
    delimiter (as in Excel, over any setting) and is no row. It was read as the header row,
    and the run was refused for column titles that were right."""
    match = _SEP_LINE.match(text)
    return (match.group(1), 1) if match else (configured, 0)


def _decoded(data: bytes, encoding: str) -> str:
    """``data`` decoded, but for a character cut at its very end: a copy in progress stops at
    a byte, not at a character. The run failed "line N is not utf-8: set
    results.csv.encoding", and a code page set so read every row's letters garbled. Without
    that partial character the text ends inside its last row, which reads as cut (the next
    run reads it whole); a byte that is no character anywhere else is UnicodeDecodeError."""
    # Not final: the bytes of a character begun at the end wait for more, which never come.
    return codecs.getincrementaldecoder(encoding)().decode(data, final=False)


def _without_bom(text: str) -> str:
    """``text`` without a byte-order mark at its start: Excel's "CSV UTF-8" writes one, and
    under ``encoding: utf-8`` (not ``utf-8-sig``) it was read as part of the first title, so
    the timestamp column was not found."""
    return text[1:] if text.startswith("\ufeff") else text


def _codec_name(encoding: str) -> str | None:
    """The codec's canonical name (``latin-1`` and ``iso-8859-1`` are one), None when
    ``encoding`` is none."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return None


def _wide_encoding(encoding: str) -> str | None:
    """ "UTF-16" or "UTF-32" when ``encoding`` is one of theirs, else None. Such a codec
    decodes nearly any bytes: a UTF-8 file read so was one line of CJK characters, taken for
    the header row and listed whole (every answer in it) as the "headers found"."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return None  # fetch says so (_unreadable)
    for wide in ("utf-16", "utf-32"):
        if name.startswith(wide):
            return wide.upper()
    return None


def _utf8_under_single_byte(encoding: str, data: bytes) -> bool:
    """Whether ``data`` is UTF-8 text beyond ASCII (a UTF-8 byte-order mark, or non-ASCII
    bytes that decode strictly as UTF-8, or do but for a line: :func:`_utf8_but_line`) while
    ``encoding`` is a single-byte code page."""
    if data.isascii() or not _single_byte(encoding):
        return False
    if data.startswith(codecs.BOM_UTF8):
        return True
    try:
        _decoded(data, "utf-8")
    except UnicodeDecodeError as exc:
        return _utf8_but_line(data, exc) is not None
    return True


def _utf8_but_line(data: bytes, exc: UnicodeDecodeError) -> int | None:
    """The line of ``exc`` (``data`` refused as UTF-8) when the text around it is UTF-8 (more
    of its bytes are in UTF-8 characters than in none): a UTF-8 export with a row saved in
    another encoding (a hand edit), not a file in that encoding. The error said to set the
    code page (cp1251), which read every other row's letters garbled. Only the megabyte
    around the error is weighed (a genuine code-page file is read on every run)."""
    start = max(exc.start - _WEIGHED // 2, 0)
    text = data[start : start + _WEIGHED].decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    # Each multi-byte character makes the text shorter than its bytes; an invalid byte not.
    if invalid and len(data[start : start + _WEIGHED]) - len(text) > invalid:
        return data.count(b"\n", 0, exc.start) + 1
    return None


# The bytes around a decoding error that say whether the rest is UTF-8 (_utf8_but_line).
_WEIGHED = 1 << 20


@functools.cache
def _single_byte(encoding: str) -> bool:
    """Whether ``encoding`` is a single-byte code page that keeps ASCII (cp1251, latin-1,
    cp1252...): every byte is one character or none. The UTF codecs are not."""
    try:
        name = codecs.lookup(encoding).name
        if name.startswith("utf") or "\n".encode(name) != b"\n":
            return False
        return len(bytes(range(256)).decode(name, errors="replace")) == 256
    except (LookupError, UnicodeError):
        return False


def _tail_codec(encoding: str) -> str | None:
    """The codec that decodes a file's bytes after a line break as they decode in the whole
    file, or None when bytes cannot be decoded from the middle (UTF-16 and the like). A
    byte-order mark is stripped only at the start of the file."""
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return None
    if name == "utf-8-sig":
        return "utf-8"
    if "\n".encode(name) != b"\n" or name.startswith(("utf-16", "utf-32", "utf-7")):
        return None
    return name
