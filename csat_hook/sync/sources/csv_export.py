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
import time
from collections.abc import Container
from collections.abc import Iterable
from collections.abc import Iterator
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
from csat_hook.files import stored_path
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
    """Reads the whole file each run; fingerprints make that incremental.

    The file's bytes are held from :meth:`prefetch` to the end of the parse (what is parsed
    is what the memo's digest covers); their text never is: it is decoded, split into lines
    and parsed a part at a time (:class:`_Text`), once for each pass over the rows, and only
    the rows a batch keeps are kept."""

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
        zone_configured: bool = True,
    ) -> None:
        self.path = path
        self.tz = ZoneInfo(timezone)
        # False: results.csv.timezone left out, its default (UTC) taken (see _unzoned_warning).
        self.zone_configured = zone_configured
        self.encoding = encoding
        self.delimiter = delimiter
        self.formats = tuple(timestamp_formats)
        self.date_order = date_order
        self.abbreviations = dict(abbreviations or {})
        self.columns = columns
        self.ratings = ratings
        self._data: bytes | None = None  # what prefetch read, until fetch parses it
        self._content = b""  # its digest (WholeRead.content)
        self._modified = 0.0  # the file's modification time as prefetch read it

    @classmethod
    def from_config(
        cls, config: SyncSettings, *, sheets: SheetsApi | None = None, forms: FormsApi | None = None
    ) -> CsvResults:
        options = config.results.csv
        return cls(
            Path(options.path),
            timezone=options.timezone,
            zone_configured="timezone" in options.model_fields_set,
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
        return f"csv:{stored_path(self.path.name)}"

    @property
    def identity(self) -> str:
        """The file as configured, made absolute: a file of the same name in another folder
        is another export (the :attr:`key`, by name, only keys what is remembered to skip
        work)."""
        return f"csv:{stored_path(self.path.absolute())}"

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
            # After the read: a copy that wrote while it was read shows its last write.
            self._modified = self.path.stat().st_mtime
        except OSError as exc:
            raise self._unreadable(exc) from exc
        self._content = bytes_digest(self._data)
        return WholeRead(b"", self._content)

    def _unreadable(self, exc: Exception, data: bytes = b"") -> SourceError:
        """Why ``data`` (the file's bytes) cannot be read, naming the setting to change and
        the line, never quoting the file (customer text)."""
        codec = _codec_name(self.encoding) or ""
        if (
            isinstance(exc, UnicodeError)
            and codec in ("utf-16", "utf-32")
            and not data.startswith(_WIDE_BOMS)
        ):
            # Python's utf-16 and utf-32 take the byte order from the mark, and refuse text
            # without one ("stream does not start with BOM"; UTF-32-BE read as -LE: "code point
            # not in range"): the run said "cannot read" the path, as for a file it may not
            # open, or "line 1 is not utf-32" with code pages to try.
            return SourceError(
                f"results.csv.encoding: {self.path.name} has no byte-order mark, which "
                f"{self.encoding} needs to tell its byte order: set results.csv.encoding to "
                f"{_byte_order(data, codec)}"
            )
        if isinstance(exc, UnicodeDecodeError):
            wide_bom = data.startswith(_WIDE_BOMS)
            if wide_bom and codec.startswith(("utf-16", "utf-32")):
                # The encoding the mark says is the one set: a line of the file is not in it
                # (a lone surrogate, a character cut short). The error said to set it again.
                at = data[: exc.start].decode(codec, errors="replace").count("\n") + 1
                hint = (
                    f"line {at} is not valid {self.encoding} (half a character, or a lone "
                    "surrogate), while the file is: type that line again, or delete it"
                )
            elif codec in _UTF8 and _SURROGATE_IN_UTF8.match(data, exc.start):
                # A character beyond U+FFFF (an emoji) written as its two UTF-16 halves, each
                # encoded as UTF-8 (CESU-8, as some Java and MySQL exports write it). The text
                # around it may be ASCII alone, and the error said to set cp1251, which read
                # the line as garbled letters, stored so in an "ok" run.
                at = data.count(b"\n", 0, exc.start) + 1
                hint = (
                    f"line {at} holds a character written as two UTF-16 halves (CESU-8, as "
                    "some Java and MySQL exports write emoji), which UTF-8 does not allow: "
                    "type that line again in UTF-8, or delete it"
                )
            elif data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
                # Before UTF-16's: UTF-32's little-endian mark starts with UTF-16's, and the
                # error said to set utf-16, which reads the file as garbage.
                hint = (
                    "it starts with a UTF-32 byte-order mark: set results.csv.encoding to "
                    "utf-32 (or save the file as UTF-8)"
                )
            elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
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
                guessed = _code_page_of(data, exc.start) or ""
                if guessed == codec:
                    # Its letters look written in the code page set, and a byte of them is no
                    # character of it: the error said to set that code page again.
                    hint = (
                        f"line {line} is not {self.encoding}: a byte of it is no character "
                        f"of {self.encoding}; set results.csv.encoding to the export's code "
                        "page (cp1250 for a CSV from a Central European Excel, mac_roman for "
                        "one from an older Mac Excel, cp1251 for a Russian one)"
                    )
                else:
                    hint = f"line {line} is not {self.encoding}: set results.csv.encoding to " + (
                        _CODE_PAGE_HINTS.get(guessed)
                        or "the export's encoding (cp1251 for a CSV from a Russian Excel, "
                        "cp1252 for one from a Western European Excel)"
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
        text = _Text(data, self.encoding)
        try:
            delimiter, declared = _declared(text.head(), self.delimiter)
            survey = _Survey(declared)
            malformed, open_quote = self._malformed(_records(text, delimiter, strict=True), survey)
            if malformed:
                # The strict reader's records are the lenient one's when it reads to the end;
                # else the lenient one reads on past the quote (the pass the parse makes).
                survey = _Survey(declared)
                for record in _records(text, delimiter):
                    survey.add(record)
        except (UnicodeError, LookupError, csv.Error) as exc:
            raise self._unreadable(exc, data) from exc
        header, count = survey.header, survey.count
        if count and not self._titles_found(header):
            self._check_encoding(data, delimiter, declared)
            if not declared:
                self._check_delimiter(text, header)
        resume = self._prefix(data, count) if self._ends(text, malformed) else None
        cut = (open_quote or not text.last.endswith(_LINE_BREAKS)) and self._being_written()
        del data  # the text's rows hold the bytes until they are parsed
        batch = SourceBatch(source=self.kind)
        if malformed:
            batch.warnings.append(malformed)
        if not survey.filled:
            # No title (a Forms download always has them): a copy just begun, or a failed
            # download. Read as every row, it forgot the unverified and skipped rows stored
            # from the file, and the next run stored them again as new.
            batch.warnings.append(f"{self.path} is empty")
            batch.complete = False
            return batch
        if cut and count > 1:
            batch.unterminated = f"row {count}"  # the header is row 1
        if self._parse(batch, header, _Rows(text, delimiter, declared + 1), known, first_row=2):
            batch.resume = resume
        return batch

    def fetch_after(self, resume: Mapping[str, Any], known: Container[str]) -> SourceBatch | None:
        data, codec, prefix = self._data, _tail_codec(self.encoding), RowsPrefix.from_dict(resume)
        if data is None or codec is None or prefix is None or prefix.rows < 1:
            return None
        length, rows = prefix.length, prefix.rows
        if len(data) < length or bytes_digest(memoryview(data)[:length]).hex() != prefix.digest:
            return None
        # Decoded whole (final): a character cut at the end of either is no text of theirs.
        head = _Text(data, self.encoding, stop=length, final=True)
        tail = _Text(data, codec, start=length, final=True, bom=False)
        survey = _Survey(0)
        try:
            delimiter, declared = _declared(head.head(), self.delimiter)
            header = next(itertools.islice(_records(head, delimiter), declared, None))
            for _ in head.parts():
                pass  # every byte of the head decodes, as in a read of it all
            malformed = self._malformed(_records(tail, delimiter, strict=True), survey)[0]
        except (UnicodeError, LookupError, csv.Error, StopIteration):
            return None  # fetch reads it all, and says what is wrong
        if malformed:
            return None  # fetch reads it all, and says where
        if _utf8_under_single_byte(self.encoding, data):
            return None  # fetch refuses it (UTF-8 rows added to an ASCII file)
        # Not before: fetch reads the bytes prefetch read (and digested), not the file again.
        self._data = None
        added = survey.count
        later = self._prefix(data, rows + added) if self._ends(tail, None) else None
        # Well-formed: not inside quotes.
        cut = not tail.last.endswith(_LINE_BREAKS) and self._being_written()
        del data, head  # the tail's rows hold the bytes until they are parsed
        batch = SourceBatch(source=self.kind)
        if cut and added:
            batch.unterminated = f"row {rows + added}"
        if self._parse(batch, header, _Rows(tail, delimiter, 0), known, first_row=rows + 1):
            batch.resume = later
        return batch

    def _being_written(self) -> bool:
        """Whether the file may still be being written: it was modified less than
        :data:`_WRITTEN_WITHIN` ago (by the wall clock, which file times are in), or after
        now. Only then is a last row without a line break after it taken for one a copy may
        have cut (``SourceBatch.unterminated``). A file Google Sheets saved as CSV never ends
        with a line break: its last row, when unverified or skipped, was left for a next run
        that never read it otherwise, on every run (never stored nor listed, the file never
        read as a whole source, so no stored row it no longer has was forgotten)."""
        return time.time() - self._modified < _WRITTEN_WITHIN

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
            for _ in _decode_parts(data, "utf-8"):
                pass
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
        line = _line_at(data, declared)
        configured = _codec_name(self.encoding)
        for other in _USUAL_ENCODINGS:
            if _codec_name(other) == configured:
                continue
            try:
                titles = next(_records(_Text(line, other, final=True), delimiter))
                map_columns(titles, self.columns, "")
            except (UnicodeDecodeError, StopIteration, csv.Error, ConfigError):
                continue
            raise ConfigError(
                f"results.csv.encoding: the header row of {self.path.name} holds the column "
                f"titles when read as {other}, not {self.encoding}: set results.csv.encoding "
                f"to {other}"
            )
        if _wide_encoding(self.encoding) or b"\x00" not in data[:_SNIFFED]:
            return
        # UTF-16 without a byte-order mark: every ASCII character a NUL and itself, which a
        # UTF-8 or code-page reading keeps, and the error listed the titles full of NULs and
        # named results.columns.
        for other, sep in itertools.product(
            ("utf-16-le", "utf-16-be"), dict.fromkeys((delimiter, *_USUAL_DELIMITERS))
        ):
            head = data[: _SNIFFED & ~1].decode(other, errors="replace")
            first = head.split("\n", 1)[0].rstrip("\r")
            try:
                titles = next(_records(_Text(first.encode(), "utf-8", final=True), sep))
                map_columns(titles, self.columns, "")
            except (UnicodeDecodeError, StopIteration, csv.Error, ConfigError):
                continue
            also = "" if sep == delimiter else f" and results.csv.delimiter to {sep!r}"
            raise ConfigError(
                f"results.csv.encoding: {self.path.name} is UTF-16 without a byte-order mark "
                f"(its header row holds the column titles when read as {other}, not "
                f"{self.encoding}): set results.csv.encoding to {other}{also}"
            )

    def _check_delimiter(self, text: _Text, header: Sequence[str]) -> None:
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

    def _ends(self, text: _Text, malformed: str | None) -> bool:
        """Whether ``text`` ends at the end of a record, so that rows added after it read
        alone as they would in the whole file: it ends with a line break that is not inside
        a quoted cell (``malformed`` is None: the strict reader refuses a file ending inside
        quotes; it may refuse other files the lenient one reads, which only costs a read of
        every row)."""
        return _tail_codec(self.encoding) is not None and text.last == "\n" and not malformed

    def _malformed(self, reader: Reader, survey: _Survey) -> tuple[str | None, bool]:
        """A warning when the text the strict ``reader`` reads is not well-formed CSV (it
        refuses it): a quote missing or stray (a hand edit), or the text ending inside a
        quoted cell (a file still being written). The lenient reader reads on, so the rows
        from that quote to the next one read as one row, and those after it are missing from
        the read: the operator is told the line (never its text). Beside it, whether the text
        ends inside a quoted cell (as far as the strict reader shows: its first refusal is
        the end of the data; a stray quote above stops it first). ``survey`` is given each
        record read."""
        try:
            for record in reader:
                survey.add(record)
        except csv.Error as exc:
            warning = (
                f"{self.path.name}: line {reader.line_num} is not well-formed CSV ({exc}): a "
                "quote at or above it is missing or stray, or the file was still being "
                "written; the rows from that quote on may read as one: fix the file"
            )
            return warning, str(exc) == _END_IN_QUOTES
        return None, False

    def _unzoned_warning(self) -> str:
        """Said when timestamps without a zone (a responses sheet saved as CSV writes its
        wall-clock time, no offset) were read while ``results.csv.timezone`` was left out: they
        were read as UTC, its default, and a sheet kept in any other zone had every answer
        hours early or late while the run said ``ok`` (README: set it to the form's zone)."""
        return (
            f"{self.path.name}: timestamps without a time zone were read as UTC, the default of "
            "results.csv.timezone, which is not set: set it to the zone the responses sheet "
            "is kept in (File → Settings; UTC if that is it), or every answer is that "
            "many hours off"
        )

    def _parse(
        self,
        batch: SourceBatch,
        header: Sequence[str],
        rows: Iterable[Sequence[str]],
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
            timestamp_formats=self.formats,
        )
        batch.warnings.extend(
            f"{count} timestamps: {text}" for text, count in sorted(stamps.warnings.items())
        )
        if stamps.unzoned and not self.zone_configured:
            batch.warnings.append(self._unzoned_warning())
        return (not stamps.dated or self.date_order is not None) and not stamps.warning_count()


# The first bytes of a ZIP archive (a local file header): Forms' "Download responses (.csv)"
# gives "<form>.csv.zip", and an .xlsx is one. It was read as text: "not utf-8-sig, try
# cp1251", and under cp1251 its bytes were the header row the error listed.
_ZIP_MAGIC = b"PK\x03\x04"
# How long after its last modification a file may still be being written (a copy or a
# download in progress writes again within seconds; one stalled longer is no export).
_WRITTEN_WITHIN = 300.0  # seconds
# What ends a record (the csv module reads a lone CR as a line end too).
_LINE_BREAKS = ("\n", "\r")
# The strict reader's refusal of text that ends inside a quoted cell (CPython's _csv.c; only
# raised at the end of the data).
_END_IN_QUOTES = "unexpected end of data"
# The byte-order marks of UTF-16 and UTF-32 (UTF-32-LE's starts with UTF-16-LE's).
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# The UTF-8 codecs' names (codecs.lookup).
_UTF8 = ("utf-8", "utf-8-sig")
# Encodings spreadsheets write CSV in (UTF-16 is told by its byte-order mark), tried on the
# header line when the configured one does not give the titles.
_USUAL_ENCODINGS = ("utf-8-sig", "cp1251", "cp1252")
# The bytes at the start of a file weighed for UTF-16 without a byte-order mark.
_SNIFFED = 1 << 16
# Delimiters spreadsheets write CSV with, besides the configured one.
_USUAL_DELIMITERS = (",", ";", "\t", "|")
# Excel's delimiter hint: "sep=" and one character on the first line.
_SEP_LINE = re.compile(r"sep=([^\r\n\"])(?:\r\n|\r|\n)", re.IGNORECASE)
# The largest field size the csv module takes on every platform (a C long).
_FIELD_LIMIT_MAX = 2**31 - 1
# The bytes decoded at a time (:func:`_decode_parts`): a part of the rows is held, never the
# text of the file.
_PART = 1 << 16
# The passes read_table makes over a CSV's rows (sources/table.py: the timestamp column
# scanned, then the rows parsed), the last of which lets the bytes go (_Text).
_ROW_PASSES = 2
# The characters :func:`_declared` is given (a "sep=;" line is 7 at most).
_HEAD = 64


def _records(text: _Text, delimiter: str, *, strict: bool = False, last: bool = False) -> Reader:
    """The CSV records of ``text``, any cell as long as ``text`` itself, read a part at a time.

    The csv module refuses a cell over its field size limit (131,072 characters unless
    raised, process-wide): one respondent's long comment failed the read of every row. The
    file is in memory already, so no cell can be longer than it (no character is shorter
    than a byte); the limit is raised to that. The lines are those of
    ``io.StringIO(text, newline="")``: line ends inside quoted cells reach the reader as
    written. ``last``: the last pass over ``text`` (:meth:`_Text.parts`)."""
    if csv.field_size_limit() < text.size:
        csv.field_size_limit(min(text.size, _FIELD_LIMIT_MAX))
    return csv.reader(_lines(text.parts(last_pass=last)), delimiter=delimiter, strict=strict)


class _Text:
    """The text of ``data[start:stop]`` decoded with ``encoding``, given a part at a time
    (:meth:`parts`), decoded again for each pass over it: never held whole (a 46 MB export
    was 552 MB at its peak: its bytes, the text, a copy of that in io.StringIO, and every
    row as lists). ``bom``: without a byte-order mark at its start (Excel's "CSV UTF-8"
    writes one, and under ``encoding: utf-8`` it was read as part of the first title, so
    the timestamp column was not found). ``final``: a character cut at the end is an error
    (as ``bytes.decode``), else it is left out (:func:`_decode_parts`).

    The last pass (``parts(last_pass=True)``) lets each part's bytes go once it is decoded: the
    parse is that pass, and the rows it keeps grow while it reads, so the bytes held to its
    end were the read's peak of memory (a 12 MB export of 100,000 answers, the sync's peak
    202 MB; docs/performance.md, the forty-sixth round)."""

    def __init__(
        self,
        data: bytes,
        encoding: str,
        *,
        start: int = 0,
        stop: int | None = None,
        final: bool = False,
        bom: bool = True,
    ) -> None:
        self.data: bytes | None = data
        self.encoding, self.final, self.bom = encoding, final, bom
        self.start, self.stop = start, len(data) if stop is None else stop
        self.size = max(self.stop - self.start, 0)  # no text is longer than its bytes
        self.last = ""  # the last character, once a pass has read to the end

    def parts(self, *, last_pass: bool = False) -> Iterator[str]:
        """The text a part at a time; ``last_pass``: no pass follows (one after it is an
        error)."""
        if self.data is None:
            raise RuntimeError("the text was read by its last pass already")
        if last_pass:
            # Held by the parts only, which let them go as they are decoded.
            chunks = _chunks(self.data, self.start, self.stop)
            self.data = None
            parts = _decode_parts(chunks, self.encoding, self.start, final=self.final)
        else:
            parts = _decode_parts(self.data, self.encoding, self.start, self.stop, final=self.final)
        first, last = self.bom, ""
        for part in parts:
            if first and part:
                part, first = part[1:] if part.startswith("\ufeff") else part, False
            if part:
                last = part[-1]
                yield part
        self.last = last

    def head(self) -> str:
        """The first characters, enough for :func:`_declared` (all of a shorter text)."""
        head = ""
        for part in self.parts():
            head += part
            if len(head) >= _HEAD:
                break
        return head


class _Survey:
    """What is told of the records before they are parsed: the header (the first after
    ``skip``), how many there are from it on, and whether a cell of them is not blank."""

    def __init__(self, skip: int) -> None:
        self.skip = skip
        self.header: list[str] = []
        self.count, self.filled = 0, False

    def add(self, record: list[str]) -> None:
        if self.skip:
            self.skip -= 1
            return
        if not self.count:
            self.header = record
        self.count += 1
        self.filled = self.filled or any(cell.strip() for cell in record)


class _Rows:
    """The records of ``text`` after the first ``skip``, read again for each pass: the
    timestamp column is scanned before any row is parsed (sources/table.py), and the rows a
    batch does not keep are not held."""

    def __init__(self, text: _Text, delimiter: str, skip: int) -> None:
        self.text, self.delimiter, self.skip = text, delimiter, skip
        self.passes = 0

    def __iter__(self) -> Iterator[list[str]]:
        # read_table passes over the rows twice (the timestamps scanned, then the parse): the
        # parse is the text's last pass.
        self.passes += 1
        last = self.passes == _ROW_PASSES
        return itertools.islice(_records(self.text, self.delimiter, last=last), self.skip, None)


def _lines(parts: Iterable[str]) -> Iterator[str]:
    """The lines of the text ``parts`` make, as ``io.StringIO(text, newline="")`` gives them
    (each ends after LF, CRLF or a lone CR, as the csv module reads them): each part is split
    so, but for its last line, which goes on in the next part unless it ends with LF (one
    ending with CR may end with CRLF)."""
    pending: list[str] = []
    for part in parts:
        if "\n" not in part and "\r" not in part:
            pending.append(part)  # a long line (or a CR and what follows): joined once
            continue
        last = ""
        for line in io.StringIO("".join([*pending, part]), newline=""):
            if last:
                yield last
            last = line
        if last.endswith("\n"):
            pending = []
            yield last
        else:
            pending = [last]
    yield from io.StringIO("".join(pending), newline="")


def _chunks(data: bytes, start: int, stop: int) -> list[bytes]:
    """``data[start:stop]`` in copies of :data:`_PART` bytes, the last first (each popped
    in turn by :func:`_decode_parts`, which then holds none it has decoded)."""
    chunks = [data[at : min(at + _PART, stop)] for at in range(start, stop, _PART)]
    chunks.reverse()
    return chunks


def _decode_parts(
    data: bytes | list[bytes],
    encoding: str,
    start: int = 0,
    stop: int | None = None,
    *,
    final: bool = False,
) -> Iterator[str]:
    """The text of ``data[start:stop]``, decoded :data:`_PART` bytes at a time: the text a
    decode of it all gives, and a UnicodeDecodeError whose ``start`` and ``end`` are offsets
    in ``data``. ``data`` may also be :func:`_chunks` of ``data[start:]``, taken from the
    list as they are decoded (``stop`` is their end).

    Not ``final`` (the default), a character cut at the very end is left out: a copy in
    progress stops at a byte, not at a character. The run failed "line N is not utf-8: set
    results.csv.encoding", and a code page set so read every row's letters garbled. Without
    that partial character the text ends inside its last row, which reads as cut (the next
    run reads it whole); a byte that is no character anywhere else is UnicodeDecodeError."""
    name = codecs.lookup(encoding).name
    at = start
    if isinstance(data, list):
        stop = start + sum(map(len, data))
        head = b"".join(data[-1:-4:-1])[:3]  # the first chunks are last
    else:
        stop = len(data) if stop is None else stop
        head = data[start : min(start + 3, stop)]
    bom = name == "utf-8-sig" and head == codecs.BOM_UTF8
    if name == "utf-8-sig":
        # Its decoder counts an error's position from after the byte-order mark, so the
        # line named was the one above when the byte began a line: the mark is passed here.
        name = "utf-8"
        at += 3 if bom else 0
    if isinstance(data, list):
        pieces: Iterator[bytes | memoryview] = _after(_taken(data), at - start)
    else:
        pieces = _sliced(memoryview(data), at, stop)
    decoder = codecs.getincrementaldecoder(name)()
    for part in pieces:
        # The bytes of a character begun in the last part: an error's offset counts them.
        state = decoder.getstate()[0]
        pending = len(state) if isinstance(state, bytes) else 0
        try:
            text = decoder.decode(part, final=final and at + len(part) >= stop)
        except UnicodeDecodeError as exc:
            exc.start += at - pending
            exc.end += at - pending
            raise
        at += len(part)
        if text:
            yield text


def _taken(chunks: list[bytes]) -> Iterator[bytes]:
    """Each of :func:`_chunks`, first to last, taken from the list (then held by nobody once
    its caller lets it go)."""
    while chunks:
        yield chunks.pop()


def _sliced(view: memoryview, start: int, stop: int) -> Iterator[memoryview]:
    for at in range(start, stop, _PART):
        yield view[at : min(at + _PART, stop)]


def _after(pieces: Iterator[bytes], skip: int) -> Iterator[bytes]:
    """``pieces`` without their first ``skip`` bytes."""
    for piece in pieces:
        if skip:
            cut = min(skip, len(piece))
            piece, skip = piece[cut:], skip - cut
            if not piece:
                continue
        yield piece


def _line_at(data: bytes, index: int) -> bytes:
    """``data.split(b"\n")[index]`` (b"" when there is no such line), without splitting
    the rest."""
    start = 0
    for _ in range(index):
        found = data.find(b"\n", start)
        if found < 0:
            return b""
        start = found + 1
    end = data.find(b"\n", start)
    return data[start : end if end >= 0 else len(data)]


def _declared(text: str, configured: str) -> tuple[str, int]:
    """The delimiter of ``text`` and the records before its header: a first line ``sep=;``
    is Excel's hint, written so that a file opens in columns in any locale; it declares the
    delimiter (as in Excel, over any setting) and is no row. It was read as the header row,
    and the run was refused for column titles that were right."""
    match = _SEP_LINE.match(text)
    return (match.group(1), 1) if match else (configured, 0)


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


def _byte_order(data: bytes, wide: str) -> str:
    """The codec of ``wide`` ("utf-16" or "utf-32") in the byte order of ``data``, text
    without a byte-order mark: the one whose high bytes are the NULs (an ASCII character is
    "T\x00" in UTF-16-LE, "\x00T" in -BE), by the first :data:`_SNIFFED` bytes; both named
    when they do not tell."""
    head, width = data[:_SNIFFED], 2 if wide == "utf-16" else 4
    little = head[width - 1 :: width].count(0)  # the high byte of each little-endian unit
    big = head[::width].count(0)
    if little == big:
        return f"{wide}-le or {wide}-be"
    return f"{wide}-le" if little > big else f"{wide}-be"


def _utf8_under_single_byte(encoding: str, data: bytes) -> bool:
    """Whether ``data`` is UTF-8 text beyond ASCII (a UTF-8 byte-order mark, or non-ASCII
    bytes that decode strictly as UTF-8, or do but for a line: :func:`_utf8_but_line`) while
    ``encoding`` is a single-byte code page."""
    if data.isascii() or not _single_byte(encoding):
        return False
    if data.startswith(codecs.BOM_UTF8):
        return True
    try:
        for _ in _decode_parts(data, "utf-8"):
            pass
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


# A UTF-16 surrogate (U+D800-U+DFFF) encoded as UTF-8: CESU-8's half of a character.
_SURROGATE_IN_UTF8 = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")
# The bytes around a decoding error that say whether the rest is UTF-8 (_utf8_but_line).
_WEIGHED = 1 << 20
# A run of bytes outside ASCII, and an ASCII letter (_code_page_of).
_NON_ASCII_RUN = re.compile(rb"[\x80-\xff]+")
_ASCII_LETTER = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# What the refusal of a file that is not UTF-8 says to set, by _code_page_of's reading.
_CODE_PAGE_HINTS = {
    "cp1251": "cp1251 (its letters read as Cyrillic words: a CSV from a Russian Excel)",
    "cp1252": "cp1252 (its letters read as accented letters in Latin words: a CSV from a "
    "Western European Excel; cp1250 if it is from a Central European one)",
}


def _code_page_of(data: bytes, around: int) -> str | None:
    """The code page the bytes outside ASCII around ``around`` (within :data:`_WEIGHED`)
    look written in: ``cp1251`` when most are in runs of three or more (Cyrillic words, every
    letter a byte above 127), ``cp1252`` when most are one or two beside an ASCII letter
    (accented letters in Latin words: "Tr\xe8s", "Gr\xf6\xdfe"); None when neither
    prevails. Every file that was not UTF-8 was told to try cp1251, and a Western export
    read so was stored garbled ("Trиs") with the run ok. Only on the error's path."""
    start = max(around - _WEIGHED // 2, 0)
    window = data[start : start + _WEIGHED]
    words = accents = 0
    for run in _NON_ASCII_RUN.finditer(window):
        length = run.end() - run.start()
        if length >= 3:
            words += length
        elif (run.start() > 0 and window[run.start() - 1] in _ASCII_LETTER) or (
            run.end() < len(window) and window[run.end()] in _ASCII_LETTER
        ):
            accents += length
    if words == accents:
        return None
    return "cp1251" if words > accents else "cp1252"


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
