"""One digest over a whole read (sync/read_memo.py): the same responses sheet or CSV export
read again is recognised from its bytes, and never changes an outcome: the summary is the one
a row-by-row read gives, and any change to the bytes, to a setting that reads them or to the
processed rows reads the rows again."""

from __future__ import annotations

import dataclasses
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.db.schema import sync_source_reads
from csat_hook.sync.sources import csv_export
from csat_hook.sync.sources import gsheets
from csat_hook.sync.sources import table
from csat_hook.sync.summary import SyncSummary
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import NOW
from tests.sync.conftest import SHEET_ID

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
TAB = "Form Responses 1"


@pytest.fixture
def looked_at(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many rows each read looked at (recognised by their digest or parsed)."""
    counts: list[int] = []
    original = table.read_table

    def counting(batch, *args, **kwargs):  # type: ignore[no-untyped-def]
        before = batch.rows_read
        original(batch, *args, **kwargs)
        counts.append(batch.rows_read - before)

    monkeypatch.setattr(gsheets, "read_table", counting)
    monkeypatch.setattr(csv_export, "read_table", counting)
    return counts


def clean_rows(kit, count: int = 4) -> list[list]:  # type: ignore[no-untyped-def]
    """Readable answers, a blank row and a double-click (the same values twice)."""
    tokens = [kit.survey(f"T-{n}", str(n), f"Agent {n}") for n in range(count)]
    rows: list[list] = [
        [T0 + timedelta(hours=n), 5 - n % 3, f"comment {n}", f"Agent {n}", f"T-{n}", token]
        for n, token in enumerate(tokens)
    ]
    return [*rows[:2], ["", "", "", "", "", ""], *rows[2:], rows[-1]]


def read_figures(summary: SyncSummary) -> dict[str, object]:
    """What a read tells the operator (everything but timings and requests)."""
    figures = dataclasses.asdict(summary)
    for key in ("duration_ms", "phases_ms", "requests", "outputs", "report", "read"):
        figures.pop(key, None)
    return figures


def test_the_same_sheet_is_not_read_again_and_says_what_a_row_read_says(kit, looked_at):
    kit.responses([EN_HEADER, *clean_rows(kit)])
    first = kit.run()
    assert (first.status, first.new, first.blank_rows) == ("ok", 4, 1)
    assert len(kit.rows(sync_source_reads)) == 1 and looked_at == [6]
    stored = kit.rows(answers)

    replayed = kit.run()
    assert looked_at == [6], "no row was looked at"
    assert (replayed.rows_read, replayed.unchanged, replayed.new) == (6, 5, 0)
    assert kit.rows(answers) == stored

    # The row-by-row read of the same sheet, without the memo, says the same.
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(sync_source_reads))
    by_rows = kit.run()
    assert looked_at == [6, 6]
    assert read_figures(replayed) == read_figures(by_rows)


def test_the_warnings_of_the_read_are_said_again(kit, parsed):
    rows = clean_rows(kit)
    # A re-added question: two Rating columns, the rightmost non-empty one is used.
    header = [*EN_HEADER, "Rating"]
    kit.responses([header, *[[*row, ""] for row in rows]])
    first = kit.run()
    assert any("2 columns match results.columns.rating" in w for w in first.warnings)
    parsed.clear()
    second = kit.run()
    assert parsed == []
    assert second.warnings == first.warnings


def test_an_edited_cell_reads_the_rows_again(kit, parsed):
    kit.responses([EN_HEADER, *clean_rows(kit)])
    assert kit.run().new == 4
    kit.fake.set_cell(SHEET_ID, TAB, 1, 1, 1)  # row 2's rating, 5 → 1
    parsed.clear()
    summary = kit.run()
    assert parsed == ["row 2"]  # the others by their row digests
    assert (summary.updated, summary.unchanged) == (1, 4)
    assert {r.dialog_id: r.rating for r in kit.rows(answers)}["T-0"] == 1
    # And the new bytes are remembered: the next run reads nothing.
    parsed.clear()
    assert kit.run().unchanged == 5 and parsed == []


def test_an_erased_answer_is_read_again(kit, parsed):
    kit.responses([EN_HEADER, *clean_rows(kit)])
    assert kit.run().new == 4
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(answers).where(answers.c.dialog_id == "T-1"))
    parsed.clear()
    summary = kit.run()
    assert parsed == ["row 3"]
    assert (summary.new, summary.unchanged) == (1, 4)
    assert {row.dialog_id for row in kit.rows(answers)} == {"T-0", "T-1", "T-2", "T-3"}


@pytest.mark.parametrize(
    "change",
    [
        {"metrics": {"scale_max": 10, "top_box": 9}},
        {"results": {"columns": {"comment": ["Comment", "Feedback"]}}},
        {"token": {"secret": "another-secret-of-32-characters!!", "previous_secrets": []}},
    ],
    ids=["rating scale", "columns", "token secret"],
)
def test_a_changed_setting_reads_the_rows_again(kit, looked_at, change):
    kit.responses([EN_HEADER, *clean_rows(kit)])
    assert kit.run().new == 4
    assert kit.run().unchanged == 5 and looked_at == [6]  # the second run: replayed
    assert kit.run(kit.config(**change)).status == "ok"
    assert looked_at == [6, 6]


def test_a_changed_time_zone_reads_the_rows_again(kit, parsed):
    tokens = [kit.survey(f"T-{n}", str(n), f"Agent {n}") for n in range(3)]
    rows = [[46000.25 + n, 5, "", "", "", token] for n, token in enumerate(tokens)]
    kit.responses([EN_HEADER, *rows], time_zone="Europe/Moscow")
    assert kit.run().new == 3
    kit.responses([EN_HEADER, *rows], time_zone="Asia/Tokyo")
    parsed.clear()
    summary = kit.run()
    assert parsed == ["row 2", "row 3", "row 4"]
    assert len(kit.rows(answer_history)) == 3 and summary.unchanged == 0


def replayable(kit: Any) -> list[Any]:
    """The memos a read can replay: not the data rows alone of a read that was not clean."""
    return [r for r in kit.rows(sync_source_reads) if r.outcome.get("settings") is not None]


# Rows a read skips: a rating off the scale, no timestamp, and the first of them again (one
# identity: counted unchanged, as a double-click is).
UNREADABLE = [
    [T0, "not a rating", "", "", "", ""],
    ["", 4, "late", "", "", ""],
    [T0, "not a rating", "", "", "", ""],
]


def skipped_records(kit: Any) -> list[tuple[Any, ...]]:
    """The skipped rows on record, as the table holds them (the time aside)."""
    return sorted(
        (r.fingerprint, r.source, r.source_ref, r.reason, r.detail, r.source_key)
        for r in kit.rows(sync_skipped_rows)
    )


def test_a_sheet_with_a_few_unreadable_rows_is_replayed_as_a_row_read_gives(kit, parsed):
    kit.responses([EN_HEADER, *clean_rows(kit), *UNREADABLE])
    first = kit.run()
    assert first.status == "ok" and first.new == 4
    assert first.skipped == {"bad_rating": 1, "missing_timestamp": 1}
    recorded = skipped_records(kit)
    assert sorted(r[2:4] for r in recorded) == [
        ("row 8", "bad_rating"),
        ("row 9", "missing_timestamp"),
    ]

    parsed.clear()
    replayed = kit.run()
    assert parsed == [] and replayed.read == "replayed"
    assert skipped_records(kit) == recorded

    # The row-by-row read of the same sheet, without the memo, says the same.
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(sync_source_reads))
    by_rows = kit.run()
    assert by_rows.read == "read" and parsed == ["row 8", "row 9", "row 10"]
    assert read_figures(replayed) == read_figures(by_rows)
    assert skipped_records(kit) == recorded


def test_rows_added_below_unreadable_rows_are_the_only_ones_parsed(kit, parsed):
    kit.responses([EN_HEADER, *clean_rows(kit), *UNREADABLE])
    assert kit.run().skipped == {"bad_rating": 1, "missing_timestamp": 1}
    recorded = skipped_records(kit)
    late = kit.survey("L-0", "9", "Agent 9")
    added = [
        [T0 + timedelta(days=1), 2, "late", "", "", late],
        ["x", 5, "", "", "", ""],
        UNREADABLE[1],  # row 9 again: the same unreadable row, unchanged
    ]
    kit.fake.append_rows(SHEET_ID, TAB, added)
    parsed.clear()
    appended = kit.run()
    assert appended.read == "appended" and parsed == ["row 11", "row 12", "row 13"]
    assert (appended.new, appended.unchanged, appended.rows_read) == (1, 7, 12)
    assert appended.skipped == {"bad_rating": 1, "missing_timestamp": 1, "bad_timestamp": 1}
    assert [r["row"] for r in appended.skipped_rows] == ["row 8", "row 9", "row 12"]
    assert set(recorded) <= set(skipped_records(kit))
    assert len(skipped_records(kit)) == 3

    # What a read of every row of the sheet as it is now says, and the memo replays it.
    parsed.clear()
    replayed = kit.run()
    assert replayed.read == "replayed" and parsed == []
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(sync_source_reads))
    by_rows = kit.run()
    assert by_rows.read == "read"
    assert read_figures(replayed) == read_figures(by_rows)
    assert (by_rows.skipped, by_rows.skipped_rows) == (appended.skipped, appended.skipped_rows)
    assert len(skipped_records(kit)) == 3


def test_a_sheet_whose_unreadable_rows_fail_the_run_is_read_every_run(kit, parsed):
    # Three of eight rows without a timestamp: over results.max_skipped_share, a data error
    # whose message shows one of the cells, which no memo keeps.
    bad = [["", n, "", "", "", ""] for n in (3, 4, 5)]
    kit.responses([EN_HEADER, *clean_rows(kit), *bad])
    first = kit.run()
    assert first.status == "data_error" and first.skipped == {"missing_timestamp": 3}
    assert replayable(kit) == []
    parsed.clear()
    second = kit.run()
    assert parsed == ["row 8", "row 9", "row 10"]
    assert (second.status, second.skipped) == ("data_error", {"missing_timestamp": 3})


def test_a_sheet_with_a_row_dated_ahead_is_read_every_run(kit, parsed):
    # More than a day after the run's time: read again each run, as the run's clock decides.
    ahead = [NOW + timedelta(days=3), 5, "", "", "", ""]
    kit.responses([EN_HEADER, *clean_rows(kit), ahead])
    first = kit.run()
    assert first.skipped == {"implausible_timestamp": 1}
    assert replayable(kit) == []
    parsed.clear()
    second = kit.run()
    assert parsed == ["row 8"] and second.skipped == {"implausible_timestamp": 1}


def test_a_skip_naming_a_header_the_database_cannot_store_is_replayed(kit, parsed):
    # Two rating columns, one titled with a NUL and a lone surrogate, different answers in
    # one row: skipped as ambiguous_columns, its detail naming both titles.
    header = [*EN_HEADER, "Rating\x00\ud800"]
    rows = [[*row, ""] for row in clean_rows(kit)] + [[T0, 4, "", "", "", "", 2]]
    kit.responses([header, *rows])
    config = kit.config(results={"columns": {"rating": ["Rating", "Rating\x00\ud800"]}})
    first = kit.run(config)
    assert first.skipped == {"ambiguous_columns": 1}, first.error
    parsed.clear()
    replayed = kit.run(config)
    assert parsed == [] and replayed.read == "replayed"
    assert replayed.skipped_rows == first.skipped_rows
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(sync_source_reads))
    by_rows = kit.run(config)
    assert read_figures(replayed) == read_figures(by_rows)


@pytest.mark.parametrize(
    "listed",
    [{"x": 1}, [["a", "row 8", "bad_rating", ""]], [["a", "row 8", "bad_rating", "", 5]]],
    ids=["not a list", "four fields", "not text"],
)
def test_a_memo_listing_its_skipped_rows_otherwise_is_not_replayed(kit, parsed, listed):
    kit.responses([EN_HEADER, *clean_rows(kit), *UNREADABLE])
    assert kit.run().skipped == {"bad_rating": 1, "missing_timestamp": 1}
    with kit.engine.begin() as conn:
        outcome = conn.execute(sa.select(sync_source_reads.c.outcome)).scalar_one()
        conn.execute(sa.update(sync_source_reads).values(outcome={**outcome, "skipped": listed}))
    parsed.clear()
    again = kit.run()
    assert again.read == "read" and parsed == ["row 8", "row 9", "row 10"]
    assert again.skipped == {"bad_rating": 1, "missing_timestamp": 1}


def test_more_unreadable_rows_than_a_memo_holds_are_read_every_run(kit, parsed):
    # 600 distinct unreadable rows (the run not failed: min_skipped_rows past them): their
    # list is over MAX_OUTCOME_BYTES, so the read is not remembered.
    bad = [[T0 + timedelta(minutes=n), "not a rating", "", "", "", ""] for n in range(600)]
    kit.responses([EN_HEADER, *clean_rows(kit), *bad])
    config = kit.config(results={"min_skipped_rows": 1_000_000})
    first = kit.run(config)
    assert (first.status, first.skipped) == ("ok", {"bad_rating": 600})
    assert replayable(kit) == []
    parsed.clear()
    again = kit.run(config)
    assert again.read == "read" and len(parsed) == 600
    assert again.skipped == {"bad_rating": 600}


def test_a_sheet_with_a_row_dated_before_2000_is_replayed(kit, parsed):
    # A 0 typed into the timestamp column: 1899-12-30, implausible whatever the run's time.
    kit.responses([EN_HEADER, *clean_rows(kit), [0, 5, "", "", "", ""]])
    first = kit.run()
    assert first.skipped == {"implausible_timestamp": 1}
    assert len(replayable(kit)) == 1
    parsed.clear()
    replayed = kit.run()
    assert parsed == [] and replayed.read == "replayed"
    assert replayed.skipped_rows == first.skipped_rows


def test_a_skipped_row_no_longer_on_record_reads_the_rows_again(kit, parsed):
    kit.responses([EN_HEADER, *clean_rows(kit), *UNREADABLE])
    assert kit.run().skipped == {"bad_rating": 1, "missing_timestamp": 1}
    recorded = skipped_records(kit)
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(sync_skipped_rows).where(sync_skipped_rows.c.source_ref == "row 9"))
    parsed.clear()
    again = kit.run()
    assert again.read == "read" and parsed == ["row 8", "row 9", "row 10"]
    assert again.skipped == {"bad_rating": 1, "missing_timestamp": 1}
    assert skipped_records(kit) == recorded


def test_full_and_dry_runs(kit, looked_at):
    kit.responses([EN_HEADER, *clean_rows(kit)])
    assert kit.run(dry_run=True).new == 4
    assert kit.rows(sync_source_reads) == []  # rolled back with the rest
    assert kit.run().new == 4
    assert kit.run(full=True).unchanged == 5
    assert looked_at == [6, 6, 6], "--full reads every row"


def test_a_header_the_database_cannot_store_is_kept_escaped(kit, parsed):
    rows = clean_rows(kit)
    header = [*EN_HEADER, "Rating\x00\ud800", "Rating\x00\ud800"]
    kit.responses([header, *[[*row, "", ""] for row in rows]])
    config = kit.config(results={"columns": {"rating": ["Rating", "Rating\x00\ud800"]}})
    first = kit.run(config)
    assert first.status == "ok" and first.new == 4
    parsed.clear()
    second = kit.run(config)
    assert parsed == []
    assert second.warnings == first.warnings


def test_a_replayed_read_still_protects_the_responses_tab(kit, parsed):
    # The form's tab is named like a report tab and found by name (no gid): only the read
    # knows its id.
    kit.responses([EN_HEADER, *clean_rows(kit)], title="Responses", gid=7)
    config = kit.config(results={"gsheets": {"sheet_gid": None, "sheet_name": "Responses"}})
    assert kit.run(config).new == 4
    kit.survey("T-late", "9", "Agent 9")  # a new survey: the report is built again
    parsed.clear()
    second = kit.run(config)
    assert parsed == [] and second.report == "built"
    assert kit.sheet("Responses")[0] == EN_HEADER  # the form's rows, untouched
    assert len(kit.sheet("Responses")) == 7


def test_a_csv_export_read_again(kit, parsed, looked_at, tmp_path: Path):
    tokens = [kit.survey(f"C-{n}", str(n), f"Agent {n}") for n in range(3)]
    lines = ["Timestamp,Rating,Comment,Agent,Ticket,Reference"] + [
        f"2026/11/1{n} 3:47:14 PM GMT+3,{4 + n % 2},ok,Agent {n},C-{n},{token}"
        for n, token in enumerate(tokens)
    ]
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = kit.config(
        results={"source": "csv", "csv": {"path": str(export)}},
        output={"gsheets": {"enabled": False}},
    )
    assert kit.run(config).new == 3
    parsed.clear()
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")  # written again, same bytes
    assert kit.run(config).unchanged == 3 and parsed == []
    # The same answers in CRLF: other bytes, read again (each row recognised by its cells).
    before = kit.rows(sync_source_reads)[0].digest
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    summary = kit.run(config)
    assert (summary.new, summary.unchanged) == (0, 3)
    assert looked_at == [3, 3] and kit.rows(sync_source_reads)[0].digest != before


def test_rows_added_at_the_bottom_are_the_only_ones_parsed(kit, looked_at):
    rows = clean_rows(kit)
    kit.responses([EN_HEADER, *rows])
    assert kit.run().new == 4
    late = [kit.survey(f"L-{n}", "9", "Agent 9") for n in range(2)]
    added = [[T0 + timedelta(days=1, hours=n), 2, "late", "", "", t] for n, t in enumerate(late)]
    # The second added row again, as a double-click gives, and the first row again (deleted
    # and added back by hand): both already processed.
    kit.fake.append_rows(SHEET_ID, TAB, [*added, added[1], rows[0]])
    summary = kit.run()
    assert summary.read == "appended" and looked_at == [6, 4]
    assert (summary.rows_read, summary.new, summary.unchanged, summary.blank_rows) == (10, 2, 7, 1)
    assert {r.dialog_id for r in kit.rows(answers)} == {"T-0", "T-1", "T-2", "T-3", "L-0", "L-1"}
    assert kit.rows(answer_history) == []
    assert any("Agent 9" in str(cell) for row in kit.sheet("Summary") for cell in row)

    # The read after says what a read of every row says, and reads nothing.
    replayed = kit.run()
    assert replayed.read == "replayed" and looked_at == [6, 4]
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(sync_source_reads))
    by_rows = kit.run()
    assert by_rows.read == "read" and looked_at == [6, 4, 10]
    assert read_figures(replayed) == read_figures(by_rows)
    assert (by_rows.rows_read, by_rows.unchanged, by_rows.new) == (10, 9, 0)


def test_added_rows_number_as_the_sheet_does(kit, looked_at):
    kit.responses([EN_HEADER, *clean_rows(kit)])
    assert kit.run().new == 4
    kit.fake.append_rows(SHEET_ID, TAB, [[T0, "not a rating", "", "", "", ""]])
    summary = kit.run()
    assert summary.read == "appended" and summary.skipped == {"bad_rating": 1}
    assert [row["row"] for row in summary.skipped_rows] == ["row 8"]
    # A few unreadable rows are remembered with the read: the next run replays it.
    assert len(replayable(kit)) == 1
    assert kit.run().read == "replayed"


def test_an_edit_above_the_added_rows_reads_every_row(kit, looked_at):
    kit.responses([EN_HEADER, *clean_rows(kit)])
    assert kit.run().new == 4
    token = kit.survey("L-0", "9", "Agent 9")
    kit.fake.append_rows(SHEET_ID, TAB, [[T0 + timedelta(days=1), 2, "", "", "", token]])
    kit.fake.set_cell(SHEET_ID, TAB, 1, 1, 1)  # row 2's rating, 5 → 1
    summary = kit.run()
    assert summary.read == "read" and (summary.new, summary.updated) == (1, 1)


def test_text_dates_whose_order_the_column_settles_read_every_row(kit, looked_at):
    tokens = [kit.survey(f"T-{n}", str(n), f"Agent {n}") for n in range(3)]
    rows = [[f"0{n + 1}/11/2026 10:00:00", 5, "", "", "", t] for n, t in enumerate(tokens)]
    kit.responses([EN_HEADER, *rows])
    assert kit.run().new == 3
    # 13/11: the column is day-first after all; every row may read otherwise now.
    token = kit.survey("L-0", "9", "Agent 9")
    kit.fake.append_rows(SHEET_ID, TAB, [["13/11/2026 10:00:00", 4, "", "", "", token]])
    summary = kit.run()
    assert summary.read == "read"
    days = sorted(r.submitted_at.day for r in kit.rows(answers) + kit.rows(answer_history))
    assert days[-1] == 13 and 11 not in days[:3]  # 01/11 is the 1st of November, not 11 Jan


def export_lines(kit, prefix: str, count: int, start: int = 0) -> list[str]:  # type: ignore[no-untyped-def]
    """Rows as Forms' "Download responses (.csv)" writes them (year first, a zone)."""
    tokens = [kit.survey(f"{prefix}-{n}", str(n), f"Agent {n}") for n in range(start, count)]
    return [
        f'2026/11/1{n % 10} 3:47:14 PM GMT+3,{4 + n % 2},"ok, ""fine""",Agent {n},{prefix}-{n},{t}'
        for n, t in zip(range(start, count), tokens, strict=True)
    ]


CSV_HEADER = "Timestamp,Rating,Comment,Agent,Ticket,Reference"


def csv_config(kit, export: Path, **csv_options):  # type: ignore[no-untyped-def]
    return kit.config(
        results={"source": "csv", "csv": {"path": str(export), **csv_options}},
        output={"gsheets": {"enabled": False}},
    )


def test_a_csv_export_downloaded_again_with_more_rows(kit, looked_at, tmp_path: Path):
    export = tmp_path / "export.csv"
    lines = [CSV_HEADER, *export_lines(kit, "C", 3)]
    export.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())  # BOM, CRLF
    config = csv_config(kit, export)
    assert kit.run(config).new == 3
    more = export_lines(kit, "C", 5, start=3)
    export.write_bytes(("\ufeff" + "\r\n".join([*lines, *more]) + "\r\n").encode())
    summary = kit.run(config)
    assert summary.read == "appended" and looked_at == [3, 2]
    assert (summary.rows_read, summary.new, summary.unchanged) == (5, 2, 3)
    stored = {r.dialog_id: r.comment for r in kit.rows(answers)}
    assert stored["C-4"] == 'ok, "fine"'
    assert kit.run(config).read == "replayed"


def test_rows_added_but_weighed_in_a_read_of_every_row_are_remembered_as_that_reads(
    kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # The added rows are weighed in a read of every row (an answer's row gone, a row of the
    # history back), which reads the source again: a download saved between the two reads
    # was remembered under the first read's digest, and that file back was replayed as the
    # rows of the other.
    from csat_hook.sync import read_step
    from csat_hook.sync.sources.csv_export import CsvResults

    export = tmp_path / "export.csv"
    lines = [CSV_HEADER, *export_lines(kit, "C", 3)]
    export.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    config = csv_config(kit, export)
    assert kit.run(config).new == 3
    added = ("\r\n".join([*lines, *export_lines(kit, "C", 4, start=3)]) + "\r\n").encode()
    saved_meanwhile = ("\r\n".join([*lines, *export_lines(kit, "C", 5, start=3)]) + "\r\n").encode()
    export.write_bytes(added)
    fetch_after = CsvResults.fetch_after

    def then_saved(self: CsvResults, *args: object, **kwargs: object) -> object:
        batch = fetch_after(self, *args, **kwargs)  # type: ignore[arg-type]
        export.write_bytes(saved_meanwhile)
        return batch

    monkeypatch.setattr(CsvResults, "fetch_after", then_saved)
    monkeypatch.setattr(read_step, "answer_row_gone", lambda *args: True)
    summary = kit.run(config)
    assert (summary.read, summary.new) == ("read", 2)  # C-3 and C-4: the file read again
    monkeypatch.undo()
    assert kit.run(config).read == "replayed"  # that file, unchanged: its read remembered
    export.write_bytes(added)  # the first read's bytes back: C-4 is not in them
    again = kit.run(config)
    assert again.read != "replayed" and again.rows_read == 4


@pytest.mark.parametrize(
    "ending",
    [
        "",  # the last line without a line break
        '\r\n2026/11/19 3:47:14 PM GMT+3,5,"an unfinished\r\n',  # ends inside a quoted cell
    ],
    ids=["no final line break", "inside quotes"],
)
def test_a_csv_export_that_does_not_end_a_record_is_read_whole_next_time(
    kit, looked_at, tmp_path: Path, ending: str
):
    export = tmp_path / "export.csv"
    lines = [CSV_HEADER, *export_lines(kit, "C", 3)]
    export.write_text("\r\n".join(lines) + ending, encoding="utf-8")
    config = csv_config(kit, export)
    kit.run(config)
    more = export_lines(kit, "C", 4, start=3)
    export.write_text("\r\n".join(lines) + ending + "\r\n".join(["", *more, ""]), encoding="utf-8")
    assert kit.run(config).read == "read"


def test_a_sheet_saved_as_csv_with_dates_to_order(kit, looked_at, tmp_path: Path):
    tokens = [kit.survey(f"S-{n}", str(n), f"Agent {n}") for n in range(4)]
    rows = [f"0{n + 1}/11/2026 10:00:00,5,,,S-{n},{t}" for n, t in enumerate(tokens)]
    export = tmp_path / "saved.csv"
    export.write_text("\n".join([CSV_HEADER, *rows[:3]]) + "\n", encoding="utf-8")
    auto = csv_config(kit, export, timezone="Europe/Moscow", date_order="DMY")
    assert kit.run(auto).new == 3
    export.write_text("\n".join([CSV_HEADER, *rows]) + "\n", encoding="utf-8")
    # The order is configured: added rows cannot change how the earlier ones read.
    assert kit.run(auto).read == "appended"


@pytest.mark.parametrize(
    ("encoding", "codec"),
    [
        ("utf-8", "utf-8"),
        ("utf-8-sig", "utf-8"),  # the mark only at the start of the file
        ("cp1251", "cp1251"),
        ("latin-1", "iso8859-1"),
        ("utf-16", None),  # bytes after a line break do not decode alone
        ("utf-16-le", None),
        ("no-such-codec", None),
    ],
)
def test_which_encodings_can_decode_added_rows_alone(encoding, codec):
    assert csv_export._tail_codec(encoding) == codec
