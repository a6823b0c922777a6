"""``gsheets``: the responses sheet linked to the form, read in one request.

Two Sheets reads per run whatever the size: the spreadsheet's metadata (tab list and time
zone; shared with the Sheets output when it is the same spreadsheet) and one
``values:batchGet`` of the whole tab with UNFORMATTED_VALUE + SERIAL_NUMBER, so ratings stay
numbers and timestamps come as serials, which are wall-clock time in the spreadsheet's time
zone. A third only when a comment came back no text (Sheets read a typed "5%" as 0.05): the
comment columns of those rows as the sheet shows them (:mod:`.sheet_comments`).
The tab is found by gid (stable when Google localizes or renumbers its name) or by name.
Timestamps typed as text (by hand, or pasted) are read by
:mod:`csat_hook.sync.timestamps` in the spreadsheet's zone, the day/month order settled by
the column or else by the spreadsheet's locale.
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Container
from collections.abc import Mapping
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

from csat_hook.errors import SourceConfigError
from csat_hook.errors import SourceError
from csat_hook.settings import zone_named
from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.config import SyncSettings
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.google.api import tab_rows
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.sources.appended import RowsPrefix
from csat_hook.sync.sources.appended import prefix_of
from csat_hook.sync.sources.appended import rows_after
from csat_hook.sync.sources.appended import values_span
from csat_hook.sync.sources.appended import whole_rows
from csat_hook.sync.sources.base import ResultsSource
from csat_hook.sync.sources.base import RowParser
from csat_hook.sync.sources.base import WholeRead
from csat_hook.sync.sources.base import bytes_digest
from csat_hook.sync.sources.sheet_comments import comments_as_typed
from csat_hook.sync.sources.sheet_comments import hold_moved
from csat_hook.sync.sources.table import read_table
from csat_hook.sync.timestamps import TimestampColumn
from csat_hook.sync.values import RatingScale
from csat_hook.sync.values import from_serial
from csat_hook.sync.values import normalize


def encodable(title: str) -> bool:
    """Whether ``title`` can go into a request's URL (as UTF-8): no lone surrogate."""
    try:
        title.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def find_tab(metadata: dict[str, Any], gid: int | None, name: str | None) -> dict[str, Any]:
    """The tab's properties by gid (preferred) or by name; SourceConfigError naming the key
    and the tabs there are (a configuration error, as a missing column title is: it exited 1
    as a failed read)."""
    tabs = [s.get("properties", {}) for s in metadata.get("sheets", [])]
    if gid is not None:
        match = [t for t in tabs if t.get("sheetId") == gid]
        key = "results.gsheets.sheet_gid"
    else:
        wanted = name or ""
        match = [t for t in tabs if t.get("title") == wanted] or [
            t for t in tabs if normalize(t.get("title", "")) == normalize(wanted)
        ]
        key = "results.gsheets.sheet_name"
    if not match:
        listing = ", ".join(f"{t.get('title')!r} (gid {t.get('sheetId')})" for t in tabs)
        raise SourceConfigError(f"{key}: no such tab in the spreadsheet; tabs: {listing or 'none'}")
    found: dict[str, Any] = match[0]
    return found


# "GMT-07:00": what Sheets gives for a spreadsheet time zone it does not recognise
# (SpreadsheetProperties.timeZone: "this may be a custom time zone such as GMT-07:00"): a
# Java custom time zone id, whose offset may have minutes ("GMT+05:30"; Apps Script's
# setSpreadsheetTimeZone takes one).
_CUSTOM_ZONE = re.compile(r"(?:GMT|UTC)([+-])(\d{1,2}):?([0-5]\d)")
_MAX_OFFSET = 14 * 60  # minutes: the farthest any zone is from UTC (Pacific/Kiritimati)


def sheet_zone(name: str) -> ZoneInfo:
    """The spreadsheet's time zone: an IANA name, or a custom ``GMT-07:00`` as the fixed
    offset it is (``Etc/GMT+7`` for whole hours: POSIX signs are inverted; else a zone of
    that one offset, named as Sheets names it). ZoneInfoNotFoundError or ValueError for
    anything else. A custom zone was refused as unknown, and with it every run of the
    spreadsheet."""
    custom = _CUSTOM_ZONE.fullmatch(name.strip())
    if custom is None:
        return zone_named(name)
    sign, hours, minutes = custom.group(1), int(custom.group(2)), int(custom.group(3))
    offset = (hours * 60 + minutes) * (-1 if sign == "-" else 1)
    if abs(offset) > _MAX_OFFSET:
        raise ZoneInfoNotFoundError(f"No time zone found with key {name}")
    if offset == 0:
        return ZoneInfo("Etc/GMT")
    if minutes == 0:
        return zone_named(f"Etc/GMT{'-' if sign == '+' else '+'}{hours}")
    return _fixed_zone(offset)


def _fixed_zone(minutes: int) -> ZoneInfo:
    """A zone whose offset is always ``minutes`` east of UTC (``GMT+05:30``): the zone
    database has none for an offset of whole hours and minutes, so it is made as the
    database's files are (TZif version 2: one local time type, no transitions, and the
    POSIX rule ``<+0530>-5:30`` for every time)."""
    hours, rest = divmod(abs(minutes), 60)
    east = "+" if minutes > 0 else "-"
    abbreviation = f"{east}{hours:02d}{rest:02d}".encode("ascii")
    rule = f"<{abbreviation.decode()}>{'-' if minutes > 0 else '+'}{hours}:{rest:02d}"
    counts = struct.pack(">6l", 0, 0, 0, 0, 1, len(abbreviation) + 1)  # one type, no times
    block = b"TZif2" + bytes(15) + counts + struct.pack(">lBB", minutes * 60, 0, 0)
    block += abbreviation + b"\0"
    data = block + block + b"\n" + rule.encode("ascii") + b"\n"  # version 1, then 2, rule
    key = f"GMT{east}{hours:02d}:{rest:02d}"
    return ZoneInfo.from_file(io.BytesIO(data), key=key)


# What settles the order of dates typed as text into the sheet: results.csv.date_order, which
# the reason named, is never read for a sheet.
_SHEET_ORDER_FIX = (
    "format the timestamp column as Date time (Format → Number) and type those dates again "
    "as the spreadsheet's locale writes them (File → Settings)"
)


class SheetTimestamps(TimestampColumn):
    """The text timestamps of a responses sheet: read in the spreadsheet's time zone, with
    no ``results.csv`` setting (none is read for a sheet). A reason said to set
    results.csv.timezone or results.csv.timezone_abbreviations: the operator did, and every
    row stayed skipped, for the same reason."""

    order_fix = _SHEET_ORDER_FIX
    zone_named = "the spreadsheet's time zone"
    zone_fix = (
        "check the spreadsheet's time zone (File → Settings), which text without a zone is "
        "read in, or type the time with its UTC offset (GMT+3)"
    )
    unknown_name_fix = (
        "type the time with its UTC offset (GMT+8) instead, or as the spreadsheet's locale "
        "writes it in a column formatted as Date time (Format → Number)"
    )
    ambiguous_name_fix = (
        "type the time with its UTC offset (GMT+5:30) instead of {name}, or set the "
        "spreadsheet's time zone (File → Settings) to the one the time was written in"
    )
    ambiguous_name_warning = "type the time with its UTC offset"
    serial_fix = (
        "type the date-time again as the spreadsheet's locale writes it, in a column "
        "formatted as Date time (Format → Number)"
    )


class GSheetsResults(ResultsSource):
    kind = "gsheets"

    def __init__(
        self,
        api: SheetsApi,
        spreadsheet_id: str,
        *,
        sheet_gid: int | None,
        sheet_name: str | None,
        columns: ColumnsConfig,
        ratings: RatingScale,
    ) -> None:
        self.api = api
        self.spreadsheet_id = spreadsheet_id
        self.sheet_gid = sheet_gid
        self.sheet_name = sheet_name
        self.columns = columns
        self.ratings = ratings
        self.tab_id: int | None = None  # the responses tab, which outputs must never touch
        # What prefetch read (metadata, the tab, the values' bytes), until fetch parses it.
        self._read: tuple[dict[str, Any], dict[str, Any], bytes] | None = None

    @classmethod
    def from_config(
        cls, config: SyncSettings, *, sheets: SheetsApi | None = None, forms: FormsApi | None = None
    ) -> GSheetsResults:
        if sheets is None:
            raise ValueError("the gsheets source needs a Sheets API client")
        api = sheets
        options = config.results.gsheets
        assert options.spreadsheet_id is not None  # checked by the config model
        return cls(
            api,
            options.spreadsheet_id,
            sheet_gid=options.sheet_gid,
            sheet_name=options.sheet_name,
            columns=config.results.columns,
            ratings=RatingScale.from_config(config.results, config.metrics),
        )

    @property
    def key(self) -> str:
        tab = self.sheet_gid if self.sheet_gid is not None else self.sheet_name
        return f"gsheets:{self.spreadsheet_id}:{tab}"

    def prefetch(self) -> WholeRead:
        """The metadata and the tab's values, read now; the context is the tab's title and the
        spreadsheet's time zone and locale (serials and text dates are read in them)."""
        metadata = self.api.metadata(self.spreadsheet_id)
        tab = find_tab(metadata, self.sheet_gid, self.sheet_name)
        self.tab_id = tab.get("sheetId")
        title = str(tab.get("title", ""))
        if not encodable(title):
            # A lone surrogate (Sheets' JSON may escape one as "\ud800"): the tab is read by
            # its title in the URL, and UTF-8 cannot encode that title.
            key = "sheet_gid" if self.sheet_gid is not None else "sheet_name"
            raise SourceError(
                f"results.gsheets.{key}: the tab (gid {self.tab_id}) has a title Google's"
                " API cannot be asked for (it holds a lone surrogate, U+D800-U+DFFF); rename"
                " the tab"
            )
        body = self.api.read_tab_bytes(self.spreadsheet_id, title)
        self._read = (metadata, tab, body)
        properties = metadata.get("properties", {})
        context = repr((title, properties.get("timeZone"), properties.get("locale")))
        return WholeRead(bytes_digest(context.encode("utf-8", "surrogatepass")), bytes_digest(body))

    def _take(self) -> tuple[dict[str, Any], dict[str, Any], bytes]:
        if self._read is None:
            self.prefetch()
        assert self._read is not None
        read, self._read = self._read, None  # the bytes are not kept past the parse
        return read

    def fetch(self, known: Container[str], watermark: datetime | None) -> SourceBatch:
        metadata, tab, body = self._take()
        found = whole_rows(body)  # decoded once, with where the rows' bytes are
        rows, span = found if found is not None else (tab_rows(body), None)
        # Where a later read's added rows start, taken now: the body is not held while its
        # rows are parsed (it was beside every parsed row at a first sync's peak of memory).
        prefix = None if span is None or not rows else prefix_of(body, span, len(rows))
        del body
        batch = SourceBatch(source=self.kind)
        if not rows:
            batch.warnings.append("the responses tab is empty (no header row yet)")
            return batch
        alone = self._parse(batch, metadata, tab, rows[0], rows[1:], known, first_row=2)
        if alone and prefix is not None:
            batch.resume = prefix.as_dict()
        return batch

    def fetch_after(self, resume: Mapping[str, Any], known: Container[str]) -> SourceBatch | None:
        prefix = RowsPrefix.from_dict(resume)
        if prefix is None or self._read is None:
            return None
        body = self._read[2]
        span = values_span(body)
        found = None if span is None else rows_after(body, span, prefix)
        if span is None or found is None:
            return None  # fetch reads it all
        metadata, tab, body = self._take()
        del body  # not held while the added rows are parsed
        batch = SourceBatch(source=self.kind)
        if self._parse(
            batch, metadata, tab, found.header, found.rows, known, first_row=prefix.rows + 1
        ):
            batch.resume = found.prefix.as_dict()
        return batch

    def _parse(
        self,
        batch: SourceBatch,
        metadata: dict[str, Any],
        tab: dict[str, Any],
        header: Sequence[Any],
        rows: Sequence[Sequence[Any]],
        known: Container[str],
        *,
        first_row: int,
    ) -> bool:
        """Parse ``rows`` into ``batch``; True when rows added later can be read alone: no
        value of the timestamp column had a day/month order to settle (which rows added later
        could change) and no row's reading warned."""
        zone_name = metadata.get("properties", {}).get("timeZone") or "UTC"
        try:
            tz = sheet_zone(zone_name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SourceError(
                f"the spreadsheet's time zone {zone_name!r} is unknown here "
                "(File → Settings → Time zone)"
            ) from exc

        text_stamps = SheetTimestamps(tz, locale=metadata.get("properties", {}).get("locale"))

        def to_datetime(value: Any) -> datetime | None:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return from_serial(value, tz)  # an int too big for a float is its TimestampError
            return text_stamps.parse(value)

        # Comments as typed ("5%", not 0.05): one more read only when one came back no text.
        title = str(tab.get("title", ""))
        typed = comments_as_typed(
            self.api, self.spreadsheet_id, title, header, rows, self.columns, first_row=first_row
        )
        read_table(
            batch,
            self.kind,
            header,
            typed.rows,
            self.columns,
            RowParser(
                self.ratings,
                to_datetime,
                describe=text_stamps.describe,
                warning_count=text_stamps.warning_count,
                now=self.now,
            ),
            known,
            where=f"tab {tab.get('title')!r}",
            first_row=first_row,
            scan_timestamps=text_stamps.scan,
        )
        batch.warnings.extend(
            f"{count} text timestamps: {text}"
            for text, count in sorted(text_stamps.warnings.items())
        )
        if typed.held:
            hold_moved(batch, typed.held)
        return not text_stamps.dated and not text_stamps.warning_count() and not typed.held
