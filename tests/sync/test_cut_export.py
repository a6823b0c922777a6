"""A CSV export read while it is still being written (an operator's copy, a download in
progress; the sync runs on a schedule): its last line may be cut anywhere. A cut row that
does not read as a complete answer is left for the next run, which reads it whole: nothing
stays under an identity the completed row never has again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_row_digests
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.db.schema import sync_source_reads
from csat_hook.db.schema import unverified_answers
from tests.sync.conftest import RU_HEADER
from tests.sync.test_read_memo import CSV_HEADER
from tests.sync.test_read_memo import csv_config
from tests.sync.test_read_memo import export_lines

LEFT = "does not read as a complete answer"


def last_line(kit, comment: str = '"Ответили быстро,\nспасибо!"') -> str:  # type: ignore[no-untyped-def]
    """The answer being written when the export was read: a Russian comment over two lines."""
    token = kit.survey("W-1", "7", "Agent 7")
    return f"2026/11/19 4:02:51 PM GMT+3,5,{comment},Agent 7,W-1,{token}"


def cuts(line: str) -> dict[str, str]:
    """Where a copy in progress can stop inside ``line``."""
    token_at = line.rindex(",") + 1
    comment_at = line.index('"') + 1
    return {
        "mid-token": line[: token_at + 30],
        "mid-token-signature": line[:-5],
        "mid-quoted-comment": line[: comment_at + 8],
        "after-a-line-break-in-quotes": line[: line.index("\n") + 1],
        "mid-timestamp": line[:14],
        "mid-zone": line[:24],  # '... 4:02:51 PM GM'
        "before-the-rating": line[: line.index(",") + 1],
    }


CUTS = [
    "mid-token",
    "mid-token-signature",
    "mid-quoted-comment",
    "after-a-line-break-in-quotes",
    "mid-timestamp",
    "mid-zone",
    "before-the-rating",
]


def stored(kit) -> dict[str, int]:  # type: ignore[no-untyped-def]
    return {
        "answers": len(kit.rows(answers)),
        "history": len(kit.rows(answer_history)),
        "unverified": len(kit.rows(unverified_answers)),
        "skipped": len(kit.rows(sync_skipped_rows)),
    }


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("ending", ["\r\n", "\n"], ids=["crlf", "lf"])
def test_a_cut_last_row_is_left_for_the_next_run(kit, tmp_path: Path, cut: str, ending: str):
    lines = [CSV_HEADER, *export_lines(kit, "C", 3)]
    line = last_line(kit).replace("\n", ending)
    partial = cuts(line)[cut]
    export = tmp_path / "export.csv"
    export.write_bytes(("\ufeff" + ending.join([*lines, partial])).encode())
    config = csv_config(kit, export)

    first = kit.run(config)
    assert (first.status, first.new, first.unverified, first.skipped) == ("ok", 3, {}, {})
    assert first.rows_read == 3  # the cut row is not read yet
    said = [w for w in first.warnings if LEFT in w]
    assert len(said) == 1 and said[0].startswith("row 5: the last row of the file has no line")
    assert "Ответили" not in " ".join(first.warnings) and "GMT" not in said[0]
    assert stored(kit) == {"answers": 3, "history": 0, "unverified": 0, "skipped": 0}
    assert len(kit.rows(sync_row_digests)) == 3  # the cut row's cells are not remembered
    # The same bytes again say the same, and store nothing either.
    again = kit.run(config)
    assert (again.status, again.new, again.rows_read) == ("ok", 0, 3)
    assert [w for w in again.warnings if LEFT in w] == said
    assert stored(kit) == {"answers": 3, "history": 0, "unverified": 0, "skipped": 0}

    # The copy is complete: the row is read whole and credited, and nothing of the cut stays.
    export.write_bytes(("\ufeff" + ending.join([*lines, line, ""])).encode())
    done = kit.run(config)
    assert (done.status, done.new, done.unverified, done.skipped) == ("ok", 1, {}, {})
    assert done.rows_read == 4 and not [w for w in done.warnings if LEFT in w]
    assert stored(kit) == {"answers": 4, "history": 0, "unverified": 0, "skipped": 0}
    comment = {r.dialog_id: r.comment for r in kit.rows(answers)}["W-1"]
    assert comment.replace("\r\n", "\n") == "Ответили быстро,\nспасибо!"
    assert kit.run(config).read == "replayed"


def test_a_row_cut_in_an_appended_read_is_left_too(kit, tmp_path: Path):
    # The earlier download was read whole; a new one is being copied over it.
    lines = [CSV_HEADER, *export_lines(kit, "C", 3)]
    export = tmp_path / "export.csv"
    export.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    config = csv_config(kit, export)
    assert kit.run(config).new == 3
    line = last_line(kit).replace("\n", "\r\n")
    more = export_lines(kit, "C", 4, start=3)
    export.write_text("\r\n".join([*lines, *more, cuts(line)["mid-token"]]), encoding="utf-8")
    cut = kit.run(config)
    assert (cut.read, cut.new, cut.unverified, cut.rows_read) == ("appended", 1, {}, 4)
    assert [w[:6] for w in cut.warnings if LEFT in w] == ["row 6:"]
    # No resume point inside the cut line: the memo of this read has none.
    [memo] = kit.rows(sync_source_reads)
    assert memo.outcome["resume"] is None
    export.write_text("\r\n".join([*lines, *more, line, ""]), encoding="utf-8")
    done = kit.run(config)
    assert (done.new, done.unverified, done.skipped, done.rows_read) == (1, {}, {}, 5)
    assert stored(kit) == {"answers": 5, "history": 0, "unverified": 0, "skipped": 0}


def test_a_complete_answer_without_a_final_line_break_is_credited_at_once(kit, tmp_path: Path):
    # Exports may lack a final line break: the latest answer must not wait for the next one.
    lines = [",".join(RU_HEADER), *export_lines(kit, "C", 2), last_line(kit)]
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines), encoding="utf-8")
    config = csv_config(kit, export)
    summary = kit.run(config)
    assert (summary.status, summary.new, summary.rows_read) == ("ok", 3, 3)
    assert not [w for w in summary.warnings if LEFT in w]
    # And the file with its line break is the same answers.
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert kit.run(config).unchanged == 3


def test_a_last_row_that_ends_with_a_line_break_is_stored_as_read(kit, tmp_path: Path):
    # Terminated, a row is what it says: an answer whose reference was cut by hand is
    # unverified at once, as before.
    line = last_line(kit)
    lines = [CSV_HEADER, *export_lines(kit, "C", 2), cuts(line)["mid-token"]]
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = kit.run(csv_config(kit, export))
    assert (summary.new, summary.unverified) == (2, {"malformed": 1})
    assert not [w for w in summary.warnings if LEFT in w]


def test_a_credited_row_cut_at_the_end_is_not_replaced_by_its_history(kit, tmp_path: Path):
    """A double-click's lower row (credited, the upper kept as history) is the export's last,
    and the next read finds it cut: it is not "no longer in the source", so the history's 2
    is not credited in its place (to flip back, alerting, once the row is whole)."""
    token = kit.survey("W-1", "7", "Agent 7")
    upper = f"2026/11/19 4:02:51 PM GMT+3,2,meh,Agent 7,W-1,{token}"
    lower = f'2026/11/19 4:02:51 PM GMT+3,5,"Ответили быстро, спасибо",Agent 7,W-1,{token}'
    export = tmp_path / "export.csv"
    config = csv_config(kit, export)
    ratings = []
    for last in (lower, lower[: lower.index('"') + 8], lower):
        export.write_bytes(("\ufeff" + "\r\n".join([CSV_HEADER, upper, last])).encode())
        summary = kit.run(config)
        assert summary.status == "ok", summary.error
        ratings.append(([r.rating for r in kit.rows(answers)], summary.updated))
    assert ratings == [([5], 0), ([5], 0), ([5], 0)]


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8-sig", ","), ("utf-8", ","), ("utf-16", "\t")],
)
def test_a_copy_cut_inside_a_character_is_a_cut_row_not_another_encoding(
    kit, tmp_path: Path, encoding: str, delimiter: str
):
    # A copy in progress stops at a byte, not at a character: its last bytes began a letter
    # of the Russian comment. The whole run failed "line 5 is not utf-8-sig: set
    # results.csv.encoding ... (cp1251 for a CSV from a Russian Excel)", and that setting
    # read every row's letters garbled.
    lines = [CSV_HEADER, *export_lines(kit, "C", 3), last_line(kit)]
    whole = ("\r\n".join(lines) + "\r\n").replace(",", delimiter).encode(encoding)
    letter = whole.rindex("Ответили".encode(encoding)[-4:])  # the comment's first letter
    export = tmp_path / "export.csv"
    export.write_bytes(whole[: letter + 1])  # one byte of a two-byte character
    config = csv_config(kit, export, encoding=encoding, delimiter=delimiter)
    first = kit.run(config)
    assert (first.status, first.new, first.unverified, first.skipped) == ("ok", 3, {}, {})
    assert [w[:6] for w in first.warnings if LEFT in w] == ["row 5:"]
    export.write_bytes(whole)
    done = kit.run(config)
    assert (done.status, done.new, done.unverified, done.skipped) == ("ok", 1, {}, {})
    comment = {r.dialog_id: r.comment for r in kit.rows(answers)}["W-1"]
    assert comment.replace("\r\n", "\n") == "Ответили быстро,\nспасибо!".replace(",", delimiter)


@pytest.mark.parametrize("last", ["unverified", "skipped"])
def test_a_sheet_saved_as_csv_without_a_final_line_break_has_its_last_row_stored(
    kit, tmp_path: Path, last: str
):
    """Google Sheets saves CSV with no line break after the last row. That row, unverified
    (a reference edited by the respondent) or skipped (a bad rating), was left for a next run
    on every run, "the file may still be being written": never stored nor listed, and the
    file never read as a whole source. A file last modified minutes ago is no copy in
    progress: its last row is read as it is."""
    line = last_line(kit, "fine")
    # Its reference edited short, or its rating a text no scale reads.
    edited = line[:-5] if last == "unverified" else line.replace(",5,", ",ten out of ten,", 1)
    export = tmp_path / "export.csv"
    export.write_bytes("\r\n".join([CSV_HEADER, *export_lines(kit, "C", 2), edited]).encode())
    hour_ago = export.stat().st_mtime - 3600
    os.utime(export, (hour_ago, hour_ago))
    config = kit.config(
        results={"source": "csv", "csv": {"path": str(export)}, "min_skipped_rows": 10},
        output={"gsheets": {"enabled": False}},
    )
    summary = kit.run(config)
    assert summary.status == "ok", summary.error
    assert summary.rows_read == 3 and not [w for w in summary.warnings if LEFT in w]
    listed = (
        {"unverified": 1, "skipped": 0} if last == "unverified" else {"unverified": 0, "skipped": 1}
    )
    assert stored(kit) == {"answers": 2, "history": 0, **listed}
