"""Text timestamps as Google Forms, Google Sheets and Apps Script write them. Pure functions.

Three producers, each with its own habits (research notes: docs/sync.md "Timestamps"):

* **Forms "Download responses (.csv)"**: ``2025/09/08 3:47:14 AM EST``: year first, 12-hour
  clock, and the day-period marker and the zone in the *downloading user's* language:
  ``p.m.``, ``a. m.`` (with U+202F), ``午後``, ``오전`` (before or after the time);
  ``GMT+3``, ``GMT+5:30``, ``UTC−5`` (U+2212), ``-3 GMT``, or an abbreviation (``EST``,
  ``OEZ``, ``CEST``, ``IST``).
* **A responses sheet saved as CSV**: the cell's display text in the *spreadsheet's* locale,
  wall-clock time in its zone, no offset: ``9/8/2025 13:58:23`` (en_US),
  ``08.09.2025 21:58:23`` (ru_RU), ``12/02/2026 19.07.17`` (it_IT); Excel re-saves drop the
  seconds and shorten the year (``3/18/20 18:42``).
* **Apps Script**: ``Mon Sep 08 2025 13:58:23 GMT-0500 (Central Daylight Time)`` (V8; the
  name in parentheses is decoration and may be localized), ``Thu Dec 15 16:45:14 GMT+01:00
  2016`` (the old Rhino runtime), ISO 8601 (``toISOString``, the Forms API's ``createTime``
  with up to nine fraction digits), RFC 1123 (``toUTCString``).

How a value becomes an instant, in order:

1. An explicit offset (``GMT+3``, ``-05:00``, ``Z``) is the offset. ``GMT+3`` means UTC+3 as
   Google, ICU and JavaScript write it (not the POSIX reading, which python-dateutil uses).
2. An abbreviation: the configured zone's own name for that wall time first (zoneinfo:
   ``IST`` is +5:30 for Asia/Kolkata, +1 for Europe/Dublin; ``CDT``/``CST`` also settle a DST
   overlap), then ``abbreviations`` from the configuration, then a table of names with one
   meaning (``EST`` is always −5). ``AST``, ``CST`` and ``BST`` have a usual meaning in
   Google's English output (−4, −6, +1), used with a warning; ``IST``, ``GST`` and ``SST`` are
   refused (``ambiguous_tz_abbreviation``) unless the configured zone uses them.
3. No zone at all: wall-clock time in the configured zone. A time in the spring-forward gap
   does not exist and is refused (``nonexistent_local_time``); a time in the repeated hour is
   read as its *first* occurrence (``fold=0``, as Sheets serials are) and counted in a
   warning.

Day/month order of ``03/04/2025``-style dates is a property of the column, never guessed per
value: :meth:`TimestampColumn.scan` looks at every value first; a first field above 12
anywhere makes the column day-first, a second field above 12 month-first, both is refused
(``mixed_date_order``); otherwise the configured order, else the spreadsheet's locale, else
the value is refused (``ambiguous_date_order``). ``.``-separated dates are always day-first.

Reason codes (for skipped rows): ``missing_timestamp``, ``bad_timestamp``,
``ambiguous_date_order``, ``mixed_date_order``, ``unknown_tz_abbreviation``,
``ambiguous_tz_abbreviation``, ``nonexistent_local_time``.

Modules: ``words`` (markers, months, zones, layouts, locales), ``reader`` (one value),
``column`` (a column's date order, then its values).
"""

from __future__ import annotations

from csat_hook.sync.timestamps.column import TimestampColumn
from csat_hook.sync.timestamps.reader import TimestampReader
from csat_hook.sync.timestamps.words import FIXED_ABBREVIATIONS
from csat_hook.sync.timestamps.words import TIMESTAMP_REASONS
from csat_hook.sync.timestamps.words import DateOrder
from csat_hook.sync.timestamps.words import TimestampError
from csat_hook.sync.timestamps.words import abbreviation_zone
from csat_hook.sync.timestamps.words import locale_date_order
from csat_hook.sync.timestamps.words import normalize_text

__all__ = [
    "FIXED_ABBREVIATIONS",
    "TIMESTAMP_REASONS",
    "DateOrder",
    "TimestampColumn",
    "TimestampError",
    "TimestampReader",
    "abbreviation_zone",
    "locale_date_order",
    "normalize_text",
]
