"""Skipped rows belong to the source they were read from (``sync_skipped_rows.source_key``,
``ResultsSource.identity``: the sheet and tab, the CSV file or the form), not to its kind: a
read of every row of another sheet, file or form of the same kind forgets none of them, and
switching back does not judge them as new rows. A read of every row of their own source that
no longer finds them forgets them. Rows recorded before migration 0019 (no source) are
forgotten, as before, by a read of every row of their kind that does not find them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from csat_hook.db.schema import sync_skipped_rows
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID
from tests.sync.test_double_click import T0
from tests.sync.test_double_click import Export
from tests.sync.test_rereads import forms_response


def keys(kit: Any) -> dict[str, str | None]:
    """Recorded skipped rows, each of its own reason: reason → source key."""
    rows = kit.rows(sync_skipped_rows)
    assert len({r.reason for r in rows}) == len(rows)
    return {r.reason: r.source_key for r in rows}


class Files:
    """Two exports of the same kind (CSV), in two folders, each with its own answers and one
    row whose rating cannot be read."""

    def __init__(self, kit: Any, tmp_path: Path) -> None:
        self.kit = kit
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        # One skip in six rows is under max_skipped_share (0.2) of the rows read, and all of
        # the rows new to a run when they are the only new ones (min_skipped_rows: 1).
        self.a = Export(kit, tmp_path / "a")
        self.b = Export(kit, tmp_path / "b")
        for export in (self.a, self.b):
            export.config = export.reconfigured(min_skipped_rows=1)
        self.good_a = [self.answer(f"A-{n}", n) for n in range(5)]
        self.good_b = [self.answer(f"B-{n}", n + 10) for n in range(5)]
        # Each with its own reason, to tell them apart.
        self.superb = [T0.replace(hour=11), "Superb", "a", "", "", ""]  # bad_rating
        self.blank = [T0.replace(hour=12), "", "b", "", "", ""]  # missing_rating
        self.undated = [None, 3, "both", "", "", ""]  # missing_timestamp

    def answer(self, dialog: str, minute: int) -> list[Any]:
        token = self.kit.survey(dialog, "7", "Anna Petrova")
        return [T0.replace(minute=minute), 4, "fine", "", "", token]

    def run(self, export: Export, rows: list[list[Any]]) -> Any:
        export.write(rows)
        summary = self.kit.run(export.config)
        assert summary.status == "ok", (summary.error, summary.problems)
        assert summary.read == "read"
        return summary

    def key(self, export: Export) -> str:
        return f"csv:{export.path.absolute()}"


def test_a_read_of_another_export_keeps_the_first_exports_skipped_rows(
    kit: Any, tmp_path: Path
) -> None:
    files = Files(kit, tmp_path)
    files.run(files.a, [*files.good_a, files.superb])
    assert keys(kit) == {"bad_rating": files.key(files.a)}
    b = files.run(files.b, [*files.good_b, files.blank])
    assert keys(kit) == {"bad_rating": files.key(files.a), "missing_rating": files.key(files.b)}
    assert b.totals["skipped"] == {"bad_rating": 1, "missing_rating": 1}
    # Back to the first: its skipped row is not new (all of the run's new rows, it would be
    # judged a problem, and the run a data_error).
    again = files.run(files.a, [*files.good_a, files.superb])
    assert again.problems == []
    assert keys(kit) == {"bad_rating": files.key(files.a), "missing_rating": files.key(files.b)}
    # Its row removed from the first export: that record goes, the other export's stays.
    files.run(files.a, files.good_a)
    assert keys(kit) == {"missing_rating": files.key(files.b)}


def test_switching_back_judges_the_first_exports_skipped_rows_as_read_before(
    kit: Any, tmp_path: Path
) -> None:
    """The ``previously_skipped`` a run judges its new rows against still has them: a run
    whose only new row is a skipped one the first export always had says no problem."""
    files = Files(kit, tmp_path)
    files.run(files.a, [*files.good_a, files.superb])
    files.run(files.b, [*files.good_b, files.blank])
    files.a.write([*files.good_a, files.superb, files.undated])
    summary = kit.run(files.a.config)
    # Only the new skipped row is new: one of one, a problem, and only that one counted.
    assert summary.status == "data_error"
    [problem] = summary.problems
    assert (problem["count"], problem["rows"], problem["new_only"]) == (1, 1, True)
    assert problem["reason"] == "missing_timestamp"


def test_a_row_in_both_exports_belongs_to_the_one_that_read_it_last(
    kit: Any, tmp_path: Path
) -> None:
    """The same row skipped in two exports (the same cells: one identity) is one record, of
    the source that read it last: a read of every row of the other export, which no longer
    has it, keeps it; one of that source forgets it."""
    files = Files(kit, tmp_path)
    files.run(files.a, [*files.good_a, files.undated])
    assert keys(kit) == {"missing_timestamp": files.key(files.a)}
    files.run(files.b, [*files.good_b, files.undated])
    assert keys(kit) == {"missing_timestamp": files.key(files.b)}
    [row] = kit.rows(sync_skipped_rows)
    assert row.source_ref == "row 7"  # where the export that read it last has it
    files.run(files.a, files.good_a)  # gone from the first export: still in the second
    assert keys(kit) == {"missing_timestamp": files.key(files.b)}
    files.run(files.b, files.good_b)
    assert keys(kit) == {}


def test_rows_recorded_before_sources_were_told_apart_are_forgotten_by_kind(
    kit: Any, tmp_path: Path
) -> None:
    """A skipped row recorded before migration 0019 names no source: a read of every row of
    its kind that does not find it forgets it (a stale count would stay forever); one that
    finds it makes it that source's own."""
    files = Files(kit, tmp_path)
    files.run(files.a, [*files.good_a, files.superb, files.undated])
    with kit.engine.begin() as conn:
        conn.execute(sync_skipped_rows.update().values(source_key=None))
    files.run(files.b, [*files.good_b, files.undated])
    # Not found by a read of every row of its kind: forgotten; found: B's now.
    assert keys(kit) == {"missing_timestamp": files.key(files.b)}


def test_a_legacy_row_of_another_kind_is_not_forgotten(kit: Any, tmp_path: Path) -> None:
    files = Files(kit, tmp_path)
    files.run(files.a, [*files.good_a, files.superb])
    with kit.engine.begin() as conn:
        conn.execute(sync_skipped_rows.update().values(source_key=None, source="gsheets"))
    files.run(files.b, files.good_b)
    assert keys(kit) == {"bad_rating": None}


def test_a_read_of_another_spreadsheet_keeps_the_first_sheets_skipped_rows(kit: Any) -> None:
    first = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses([EN_HEADER, [T0, 4, "fine", "", "", first], [T0, "Superb", "", "", "", ""]])
    assert kit.run().totals["skipped"] == {"bad_rating": 1}
    kit.fake.add_spreadsheet("other-spreadsheet-id")
    kit.fake.add_tab(
        "other-spreadsheet-id", "Form Responses 1", [EN_HEADER, [T0, "", "", "", "", ""]]
    )
    other = kit.config(results={"gsheets": {"spreadsheet_id": "other-spreadsheet-id"}})
    summary = kit.run(other)
    assert summary.read == "read"
    assert summary.totals["skipped"] == {"bad_rating": 1, "missing_rating": 1}
    assert keys(kit) == {
        "bad_rating": f"gsheets:{SHEET_ID}:0",
        "missing_rating": "gsheets:other-spreadsheet-id:0",
    }


def test_a_full_read_of_another_form_keeps_the_first_forms_skipped_responses(kit: Any) -> None:
    """The Forms API reads from its watermark: a skipped response forgotten by another
    form's read would never be read, nor counted, again."""
    start = kit.now - timedelta(days=3)
    token = kit.survey("T-1", "7", "Anna Petrova", created=start)
    kit.fake.add_form(
        "form-1",
        [
            forms_response(1, start + timedelta(days=1), "Superb", ""),
            forms_response(2, start + timedelta(days=2), "5", token),
        ],
    )
    kit.fake.add_form("form-2", [forms_response(3, start + timedelta(days=1), "", "")])

    def results(form: str) -> Any:
        ids = {"rating": "aa11", "token": "bb22"}
        return kit.config(
            results={"source": "forms_api", "forms_api": {"form_id": form, "question_ids": ids}},
            output={"gsheets": {"enabled": False}},
        )

    first = kit.run(results("form-1"))
    assert first.totals["skipped"] == {"bad_rating": 1}
    second = kit.run(results("form-2"), full=True)
    assert second.totals["skipped"] == {"bad_rating": 1, "missing_rating": 1}
    assert keys(kit) == {"bad_rating": "forms_api:form-1", "missing_rating": "forms_api:form-2"}
    kit.now += timedelta(minutes=5)
    later = kit.run(results("form-1"))  # from its watermark: the skipped one is not read
    assert (later.read, later.skipped) == ("read", {})
    assert later.totals["skipped"] == {"bad_rating": 1, "missing_rating": 1}


def test_the_source_key_is_at_most_255_characters(kit: Any, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120) / ("e" * 120)
    deep.mkdir(parents=True)
    export = Export(kit, deep)
    export.write([[T0, "Superb", "", "", "", ""]])
    kit.run(export.config)
    [row] = kit.rows(sync_skipped_rows)
    assert row.source_key == f"csv:{export.path.absolute()}"[:255]
