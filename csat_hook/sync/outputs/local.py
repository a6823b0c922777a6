"""The report as local files: an .xlsx workbook and CSV files, written atomically.

Text that a spreadsheet program would run as a formula stays text:

* xlsx: every string cell is stored with the string type (openpyxl would otherwise make any
  value starting with ``=`` a formula); characters XML cannot hold are dropped, and text
  over the 32,767 characters a cell holds is cut.
* CSV: per the OWASP "CSV Injection" guidance, a text cell starting with ``=``, ``+``, ``-``,
  ``@``, their full-width forms (``＝ ＋ － ＠``: Japanese Excel reads ``＝`` as ``=``, Apple
  Numbers folds all four to ASCII; OWASP www-community#1088, adaltas/node-csv#387, and so
  every character that the same compatibility mapping, NFKC, folds to one: ``﹦ ⁺ ₌``…), a tab,
  a carriage return or a line feed gets a leading apostrophe (``'=1+1``), which Excel and
  LibreOffice show as text; so does a sign inside a text where a reader may start a cell,
  after a ``;``, a tab or a line break (``ok;'=1+1``): Excel splits a line on the system's
  list separator, ``;`` where the comma is the decimal sign (Russian, German), its import
  wizard on a tab, and LibreOffice so split ``"ok;=1+1"`` quotes and all, the second cell
  a formula that ran. Numbers are written as numbers. The files are UTF-8 with a BOM
  so Excel reads Cyrillic correctly. A CSV has no number formats, so it holds readable
  numbers: percentages ×100 with "(%)" in the header, date-times as local ISO text.

Each file is written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from datetime import date
from datetime import datetime
from decimal import ROUND_HALF_UP
from decimal import Context
from decimal import Decimal
from pathlib import Path
from typing import IO
from typing import Any

from csat_hook.files import private_dir
from csat_hook.sync.config.output import REPORT_FILES
from csat_hook.sync.layout import Fmt
from csat_hook.sync.layout import Grid
from csat_hook.sync.layout import Table
from csat_hook.sync.outputs.kept_text import KeptText
from csat_hook.sync.outputs.kept_text import RowTexts
from csat_hook.sync.outputs.kept_text import close_unused
from csat_hook.sync.report import Report
from csat_hook.sync.report.alerts import ALERTS_CSV
from csat_hook.sync.report.answers import UNVERIFIED_CSV
from csat_hook.sync.texts import Texts
from csat_hook.sync.titles import XLSX_MAX
from csat_hook.sync.titles import XLSX_RESERVED
from csat_hook.sync.titles import table_titles

# The workbook, and every CSV file a report may hold (report/summary.py, trends.py,
# answers.py, alerts.py): the configuration's list, which a CSV export's path is checked
# against.
REPORT_XLSX = REPORT_FILES[0]
REPORT_CSVS = REPORT_FILES[1:]
CSV_TRIGGERS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\t", "\r", "\n")
_PERCENT = (Fmt.PERCENT, Fmt.WHOLE_PERCENT)
# First characters of a text neutralize leaves as it is: ASCII but the formula signs (any other
# may fold to one), and the empty text's "".
_PLAIN_START = frozenset([chr(c) for c in range(128) if not chr(c).startswith(CSV_TRIGGERS)] + [""])
# Where a reader may start a cell inside a text (a list separator ";", a tab, a line break),
# before a character that may be a formula sign (checked then: _inner_apostrophe). Every
# character that NFKC folds to one is in U+2000-U+2FFF or U+F000-U+FFFF (⁺ ₌ ⩵, ﬩ ﹦ ＝;
# tests/sync/test_local_output.py checks it), so a line break before a Cyrillic letter, in
# most multi-line comments, is passed over; a lone surrogate, which the file leaves out, is
# looked behind (neutralize).
_INNER_START = re.compile("(?<=[;\t\r\n])(?=[=+\\-@\u2000-\u2fff\ud800-\udfff\uf000-\uffff])")
# The same in a row as text_of encodes it (UTF-8: those ranges' lead bytes are E2 and EF): a
# row without it holds no such text.
_INNER_START_BYTES = re.compile(b"[;\t\r\n][=+\\-@\xe2\xef]")


def neutralize(value: Any) -> Any:
    """A CSV cell that cannot run as a formula (OWASP CSV Injection), judged by what the file
    holds: a lone surrogate, which UTF-8 cannot hold and the file leaves out, is left out of
    its start first ("\ud800=1+1" was written as "=1+1"); a sign where a reader may start a
    cell inside it (after a ";", a tab or a line break) gets its apostrophe too."""
    if isinstance(value, str):
        if "\ud800" <= value[:1] <= "\udfff":
            value = value.lstrip(_SURROGATES)
        if _INNER_START.search(value):  # rare: the surrogates the file leaves out, first
            value = _INNER_START.sub(_inner_apostrophe, _SURROGATE.sub("", value))
        if value.startswith(CSV_TRIGGERS) or _folds_to_trigger(value):
            return "'" + value
        return value
    return "" if value is None else value


_SURROGATES = "".join(map(chr, range(0xD800, 0xE000)))
_SURROGATE = re.compile("[\ud800-\udfff]")


def _inner_apostrophe(match: re.Match[str]) -> str:
    """An apostrophe where :data:`_INNER_START` found a formula sign, else nothing."""
    sign = match.string[match.end()]
    return "'" if sign.startswith(CSV_TRIGGERS) or _folds_to_trigger(sign) else ""


def _folds_to_trigger(text: str) -> bool:
    """Whether ``text`` starts with a character that compatibility normalisation (NFKC, the
    mapping that makes ``＝`` an ``=``) makes a formula sign: the small ``﹦ ﹢ ﹣ ﹫``, the
    superscript and subscript ``⁼ ⁺ ₌ ₊``, ``⩵`` (``==``), as well as the full-width forms.
    Only a first character outside ASCII is normalised: the usual cell costs one compare."""
    return text[:1] > "\x7f" and unicodedata.normalize("NFKC", text[0]).startswith(CSV_TRIGGERS)


def _atomic(path: Path, write: Any) -> None:
    # The report holds customer comments: owner-only, like every file csat-hook writes
    # (mkstemp creates the file 0600 and the rename keeps it).
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class KeptFiles:
    """What a runner's last local write wrote of its rows, for its next write to copy the
    rows it holds again (:mod:`.kept_text`): the workbook's agents' and Responses sheets and
    every CSV file's rows, each with the temporary file its text is in (held open)."""

    def __init__(self) -> None:
        self.csv: dict[str, KeptText] = {}  # by file name
        self.sheets: dict[str, KeptText] = {}  # by sheet title (xlsx.write_workbook)

    def drop(self) -> None:
        """Keep nothing (each file closed): the next write makes every row."""
        close_unused([*self.csv.values(), *self.sheets.values()], [])
        self.csv, self.sheets = {}, {}

    def __del__(self) -> None:
        # The runner's (or a test's) last files go with it: anonymous, nothing is left. Only
        # the objects' own methods: at exit, module globals may be gone first. (Closing a
        # file twice, where texts share one, does nothing.)
        for text in [*self.csv.values(), *self.sheets.values()]:
            text.file.close()


def write_xlsx(
    path: Path, grids: Sequence[Grid], texts: Texts, kept: KeptFiles | None = None
) -> None:
    # openpyxl (≈ 5 MB of RSS) is loaded only by a run that writes a workbook.
    from csat_hook.sync.outputs.xlsx import write_workbook

    titles = table_titles(
        [(g.name, g.key, g.helpdesk) for g in grids], XLSX_MAX, taken=XLSX_RESERVED
    )
    sheets = kept.sheets if kept is not None else None
    _atomic(path, lambda target: write_workbook(target, titles, grids, texts, sheets))


def csv_value(value: Any, fmt: Fmt | None) -> Any:
    """A cell as a CSV file shows it: percentages ×100 (the header says "(%)"), dates and
    times as ISO text (local), other numbers as they are."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return neutralize(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")  # strftime writes year 1 as "1"
    if isinstance(value, date):
        return value.isoformat()
    if fmt in _PERCENT:
        return shown(value, 1, scale=100)
    if fmt in (Fmt.POINTS, Fmt.SCORE):
        return shown(value, 1)
    if fmt == Fmt.MEAN:
        return shown(value, 2)
    return value


def shown(value: float, places: int, *, scale: int = 1) -> float:
    """``value`` × ``scale`` to ``places`` decimals as a spreadsheet shows the cell under such
    a format: the decimal number the cell holds, halves away from zero. (``round`` works on
    the binary value: 100 × 0.4355 is 43.549999…, which it makes 43.5 where Sheets and Excel
    show 43.6%; and it rounds an exact half to even.) Zero is 0.0, never -0.0 (+ 0.0)."""
    number = float(value)  # a numpy float's, an int's or a Decimal's value as the cell's float
    if not math.isfinite(number):
        return number
    exact = Decimal(repr(number)) * scale  # (repr of a numpy float is "np.float64(…)")
    step = Decimal(1).scaleb(-places)
    return float(exact.quantize(step, rounding=ROUND_HALF_UP, context=_EVERY_DIGIT)) + 0.0


# Room for every digit of any float to a few decimals (1e308 has 309 before the point): the
# default context's 28 digits refused a larger one (InvalidOperation), failing the run.
_EVERY_DIGIT = Context(prec=400)


def write_csv(path: Path, table: Table, kept: KeptFiles | None = None) -> None:
    """``table`` as a CSV file at ``path`` (UTF-8 with a BOM, Excel's dialect). ``kept``: the
    rows of the runner's last write of this file, each copied where held again, replaced by
    this write's once it is written. The rows a runner keeps are written to a temporary file
    of its own too (kept open for the next write): the file at ``path`` is anyone's to open
    and save in place. Temporary files are made beside ``path``
    (anonymous), where the report's space is."""
    formats = tuple(c.fmt for c in table.columns)
    name = path.name
    before = kept.csv.get(name) if kept is not None else None
    own: IO[bytes] | None = None  # outlives this call: closed by the next, or KeptFiles.drop
    written: KeptText | None = None

    def write(target: Path) -> None:
        nonlocal own, written
        if kept is not None:
            # Beside the file (anonymous): on the disk the report is written to, not TMPDIR.
            own = tempfile.TemporaryFile(dir=target.parent)  # noqa: SIM115
        line = io.StringIO()
        writer = csv.writer(line)

        def text_of(values: Sequence[Any]) -> bytes:
            line.seek(0)
            line.truncate()
            writer.writerow(values)
            # A lone surrogate is no character UTF-8 can hold (a YAML text's "\ud800", say):
            # left out, as the workbook leaves it out, not an error that fails every run.
            return line.getvalue().encode("utf-8", "ignore")

        def row_text(row: Sequence[Any]) -> bytes:
            # A text that starts with a character that is none of the formula signs is
            # written as it is (most of a report's cells): csv_value only for the others,
            # and for every cell of a row where a sign may follow a ";", a tab or a line
            # break (neutralize: a reader may start a cell there).
            data = text_of(
                [
                    v if type(v) is str and v[:1] in _PLAIN_START else csv_value(v, f)
                    for v, f in zip(row, formats, strict=False)
                ]
            )
            if _INNER_START_BYTES.search(data, 0, len(data) - 2) is None:  # but the "\r\n"
                return data
            return text_of([csv_value(v, f) for v, f in zip(row, formats, strict=False)])

        with target.open("wb") as handle:
            handle.write(codecs.BOM_UTF8)
            handle.write(text_of([neutralize(c.csv_header or c.header) for c in table.columns]))
            texts = RowTexts(before, handle, keep=own)
            texts.write(table.rows, 1, formats, row_text)
            written = texts.kept()

    try:
        _atomic(path, write)
    except BaseException:
        if own is not None:
            own.close()
        raise
    if kept is not None and written is not None:
        kept.csv[name] = written
        close_unused([before] if before is not None else [], [written])


def write_local(
    report: Report,
    directory: Path,
    *,
    xlsx: bool,
    csv_files: bool,
    kept: KeptFiles | None = None,
) -> dict[str, Any]:
    """Write ``csat-report.xlsx`` and/or the CSV files (``summary.csv``: the leaderboard,
    ``periods.csv``, ``trends.csv``, ``answers.csv``, and ``unverified.csv`` and
    ``alerts.csv`` when the report has those tabs: either left by an earlier run is removed
    when it has not). ``kept``: what the runner's last write wrote of its rows
    (:class:`KeptFiles`), used and replaced."""
    try:
        return _write_local(report, directory, xlsx=xlsx, csv_files=csv_files, kept=kept)
    except BaseException:
        if kept is not None:  # whatever it held may be what failed: the next write makes all
            kept.drop()
        raise


def _write_local(
    report: Report,
    directory: Path,
    *,
    xlsx: bool,
    csv_files: bool,
    kept: KeptFiles | None,
) -> dict[str, Any]:
    written: list[str] = []
    if xlsx:
        path = directory / REPORT_XLSX
        write_xlsx(path, report.sheets(), Texts(report.language), kept)
        written.append(str(path))
    if csv_files:
        for table in report.csv:
            assert table.csv_name is not None
            write_csv(directory / table.csv_name, table, kept)
            written.append(str(directory / table.csv_name))
        # A file of a tab the report no longer writes (the Alerts tab turned off,
        # output.gsheets.unverified: false) would look current beside the others, and keep
        # a comment erased since: removed, as the workbook, rewritten whole, loses the sheet.
        for name in {ALERTS_CSV, UNVERIFIED_CSV} - {t.csv_name for t in report.csv}:
            (directory / name).unlink(missing_ok=True)
    if kept is not None:
        # Nothing is kept of a file not written this time (its comments erased since, say).
        before = [*kept.csv.values(), *kept.sheets.values()]
        kept.csv = {
            t.csv_name: kept.csv[t.csv_name]
            for t in report.csv
            if csv_files and t.csv_name in kept.csv
        }
        if not xlsx:
            kept.sheets = {}
        close_unused(before, [*kept.csv.values(), *kept.sheets.values()])
    return {"kind": "local", "files": written}
