"""A CSV export is decoded, split into lines and parsed a part at a time: what is read does not
depend on where a part ends (inside a character, between CR and LF, inside a quoted cell), and
no copy of the whole text is held (a 46 MB export peaked at 552 MB)."""

from __future__ import annotations

import codecs
import tracemalloc
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from csat_hook.errors import SourceError
from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.records import KnownRows
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.sources import csv_export
from csat_hook.sync.sources.csv_export import CsvResults
from csat_hook.sync.values import RatingScale

HEADER = "Timestamp,Rating,Comment,Agent,Ticket,Reference"
# Part sizes that put a part's end at every byte of a small file, and the default.
PARTS = [1, 2, 3, 5, 1 << 20]


def source(path: Path, encoding: str = "utf-8-sig", delimiter: str = ",") -> CsvResults:
    read = CsvResults(
        path,
        timezone="Europe/Moscow",
        encoding=encoding,
        delimiter=delimiter,
        columns=ColumnsConfig(),
        ratings=RatingScale(1, 5, {}),
    )
    read.read_at(datetime(2026, 12, 5, tzinfo=UTC))
    return read


def read(path: Path, encoding: str = "utf-8-sig", delimiter: str = ",") -> SourceBatch:
    return source(path, encoding, delimiter).fetch(set(), None)


def rows(batch: SourceBatch) -> list[tuple[str, str, str, int]]:
    return [(s.ref, s.comment, s.token, s.rating) for s in batch.submissions]


def line(n: int, comment: str, token: str | None = None) -> str:
    return f"2026/11/1{n} 3:47:14 PM GMT+3,{n},{comment},Агент {n},T-{n},{token or f'ref-{n}'}"


@pytest.mark.parametrize("part", PARTS)
def test_characters_line_breaks_and_quoted_cells_across_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int
):
    monkeypatch.setattr(csv_export, "_PART", part, raising=False)
    lines = [
        HEADER,
        line(1, "Спасибо 👍"),  # two- and four-byte UTF-8 characters
        line(2, '"first line\r\nsecond, ""quoted"" line\rthird\nend"'),  # breaks in quotes
        line(3, "€"),
    ]
    export = tmp_path / "export.csv"
    export.write_bytes(codecs.BOM_UTF8 + "\r\n".join(lines).encode() + b"\r\n")
    batch = read(export)
    assert rows(batch) == [
        ("row 2", "Спасибо 👍", "ref-1", 1),
        ("row 3", 'first line\r\nsecond, "quoted" line\rthird\nend', "ref-2", 2),
        ("row 4", "€", "ref-3", 3),
    ]
    assert batch.warnings == [] and batch.unterminated is None
    assert batch.resume == {
        "length": export.stat().st_size,
        "digest": batch.resume["digest"],
        "rows": 4,
    }


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("end", ["\r", ""])
def test_a_lone_cr_ends_a_line_wherever_a_part_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int, end: str
):
    # Excel for Mac's "CSV" ends lines with CR alone; a CR at a part's end may be the first
    # half of a CRLF, so the line is only ended when the next part shows it is not.
    monkeypatch.setattr(csv_export, "_PART", part, raising=False)
    export = tmp_path / "export.csv"
    export.write_bytes(("\r".join([HEADER, line(1, "a"), line(2, "b")]) + end).encode())
    batch = read(export)
    assert rows(batch) == [("row 2", "a", "ref-1", 1), ("row 3", "b", "ref-2", 2)]
    assert batch.unterminated == (None if end else "row 3")


@pytest.mark.parametrize("part", PARTS)
def test_utf16_with_a_byte_order_mark_and_tabs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int
):
    monkeypatch.setattr(csv_export, "_PART", part, raising=False)
    lines = [HEADER, line(1, "Отлично 👍"), line(2, '"две\r\nстроки"')]
    export = tmp_path / "export.txt"
    export.write_bytes(
        "\r\n".join(lines).replace(",", "\t").encode("utf-16") + "\r\n".encode("utf-16-le")
    )
    batch = read(export, encoding="utf-16", delimiter="\t")
    assert rows(batch) == [
        ("row 2", "Отлично 👍", "ref-1", 1),
        ("row 3", "две\r\nстроки", "ref-2", 2),
    ]
    assert batch.resume is None  # UTF-16 cannot be decoded from the middle


@pytest.mark.parametrize("part", PARTS)
def test_cp1251_with_a_sep_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int):
    monkeypatch.setattr(csv_export, "_PART", part, raising=False)
    lines = ["sep=;", HEADER, line(1, "Оператор молодец"), line(2, '"да; конечно"')]
    export = tmp_path / "export.csv"
    export.write_bytes(("\r\n".join(lines).replace(",", ";") + "\r\n").encode("cp1251"))
    batch = read(export, encoding="cp1251")
    assert rows(batch) == [
        ("row 2", "Оператор молодец", "ref-1", 1),
        ("row 3", "да; конечно", "ref-2", 2),
    ]


@pytest.mark.parametrize("part", PARTS)
def test_a_copy_cut_inside_a_character_and_inside_quotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int
):
    monkeypatch.setattr(csv_export, "_PART", part, raising=False)
    export = tmp_path / "export.csv"
    whole = ("\n".join([HEADER, line(1, "a"), line(2, '"Ещё')]) + "\n").encode()
    export.write_bytes(whole[: whole.rindex("ё".encode()) + 1])  # half of the "ё"
    batch = read(export)
    assert batch.unterminated == "row 3" and batch.resume is None
    assert [w.split(" is ")[0] for w in batch.warnings] == ["export.csv: line 3"]


@pytest.mark.parametrize("part", PARTS)
def test_a_stray_quote_is_named_by_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int
):
    monkeypatch.setattr(csv_export, "_PART", part, raising=False)
    lines = [HEADER, line(1, "a"), line(2, 'b "c'), line(3, '"d"e'), line(4, "f")]
    export = tmp_path / "export.csv"
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    batch = read(export)
    assert [w.split(" is ")[0] for w in batch.warnings] == ["export.csv: line 4"]
    assert batch.resume is None


@pytest.mark.parametrize("part", PARTS)
def test_a_line_in_another_encoding_is_named_after_a_byte_order_mark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int
):
    # A byte no UTF-8 character starts a line: the line named was the one above it (the
    # position was counted without the byte-order mark's three bytes).
    monkeypatch.setattr(csv_export, "_PART", part, raising=False)
    lines = [HEADER, line(1, "Спасибо"), line(2, "ok")]
    export = tmp_path / "export.csv"
    body = "\n".join(lines).encode() + b"\n" + line(3, "x").encode("cp1251")
    export.write_bytes(
        codecs.BOM_UTF8 + body.replace(b"2026/11/13", "Ё2026/11/13".encode("cp1251")) + b"\n"
    )
    with pytest.raises(SourceError) as refused:
        read(export)
    assert "line 4 is not utf-8-sig, while the text around it is" in refused.value.message


@pytest.mark.parametrize("part", PARTS)
def test_rows_added_later_are_read_alone_across_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, part: int
):
    monkeypatch.setattr(csv_export, "_PART", part, raising=False)
    export = tmp_path / "export.csv"
    first = "\r\n".join([HEADER, line(1, "Спасибо")]) + "\r\n"
    export.write_bytes(codecs.BOM_UTF8 + first.encode())
    resume = read(export).resume
    assert resume is not None
    added = "\r\n".join([line(2, '"две\r\nстроки 👍"'), line(3, "€")]) + "\r\n"
    export.write_bytes(codecs.BOM_UTF8 + (first + added).encode())
    later = source(export)
    later.prefetch()
    batch = later.fetch_after(resume, set())
    assert batch is not None
    assert rows(batch) == [("row 3", "две\r\nстроки 👍", "ref-2", 2), ("row 4", "€", "ref-3", 3)]
    assert batch.resume is not None and batch.resume["rows"] == 4


def test_a_second_read_of_a_large_export_holds_no_copy_of_its_text(tmp_path: Path):
    # Every row known (a download again with one row edited): the read held the file's
    # bytes, its text, a copy of that in io.StringIO and every row as lists at once.
    lines = [HEADER]
    lines += [
        line(n % 5 + 1, f'"Комментарий {n}, спасибо\r\nвторая строка"', f"ref-{n}")
        for n in range(40_000)
    ]
    export = tmp_path / "export.csv"
    export.write_bytes(codecs.BOM_UTF8 + ("\r\n".join(lines) + "\r\n").encode())
    size = export.stat().st_size
    first = read(export)
    assert len(first.submissions) == 40_000
    known = KnownRows(s.fingerprint for s in first.submissions)
    known.raw = frozenset(digest for digest, _ in first.raw_digests)
    del first
    again = source(export)
    again.prefetch()  # the bytes (held: what is parsed is what the memo's digest covers)
    tracemalloc.start()
    try:
        batch = again.fetch(known, None)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (batch.unchanged, batch.submissions) == (40_000, [])
    # Beside what the batch keeps (where each row was recognised), a part of the rows.
    assert peak - kept < size // 4, (peak, kept, size)


def test_a_first_read_lets_the_bytes_go_while_it_parses(tmp_path: Path):
    # Every row new: the parse keeps a submission per row, and the file's bytes were held to
    # its end, the read's peak (a 12 MB export of 100,000 answers put the sync at 202 MB).
    lines = [HEADER] + [line(n % 5 + 1, f"Комментарий {n}", f"ref-{n}") for n in range(40_000)]
    export = tmp_path / "export.csv"
    export.write_bytes(codecs.BOM_UTF8 + ("\r\n".join(lines) + "\r\n").encode())
    size = export.stat().st_size
    tracemalloc.start()
    try:
        results = source(export)
        results.prefetch()
        batch = results.fetch(set(), None)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(batch.submissions) == 40_000
    # At the peak, beside the batch, less than the bytes (the parse's own work; with the
    # bytes held to the end: 1.7 times their size, here 0.7).
    assert peak - kept < size, (peak, kept, size)


def test_the_text_is_not_read_again_after_its_last_pass():
    text = csv_export._Text(b"a,b\r\n1,2\r\n", "utf-8")
    assert "".join(text.parts()) == "a,b\r\n1,2\r\n"
    assert "".join(text.parts(last_pass=True)) == "a,b\r\n1,2\r\n"
    with pytest.raises(RuntimeError):
        next(text.parts())


def test_a_read_of_everything_after_added_rows_fail_reads_the_bytes_prefetched(tmp_path: Path):
    # Added rows not well-formed: the read of every row read the file again from disk, not
    # the bytes prefetch read and digested (the memo's key), so another download saved
    # meanwhile was remembered as these bytes' read.
    export = tmp_path / "export.csv"
    first = "\r\n".join([HEADER, line(1, "a")]) + "\r\n"
    export.write_bytes(first.encode())
    resume = read(export).resume
    assert resume is not None
    export.write_bytes((first + line(2, '"b"c') + "\r\n").encode())
    later = source(export)
    later.prefetch()
    export.write_bytes((first + line(3, "saved meanwhile") + "\r\n").encode())
    assert later.fetch_after(resume, set()) is None
    batch = later.fetch(set(), None)
    assert rows(batch) == [("row 2", "a", "ref-1", 1), ("row 3", "bc", "ref-2", 2)]
