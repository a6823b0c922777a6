"""CSV exports as operators really save them: whatever a respondent typed into a cell, the
file's other rows are read and the run does not fail."""

from __future__ import annotations

from pathlib import Path

from csat_hook.db.schema import answers
from tests.sync.test_read_memo import CSV_HEADER
from tests.sync.test_read_memo import csv_config
from tests.sync.test_read_memo import export_lines


def test_a_comment_longer_than_the_csv_modules_field_limit_is_read(kit, tmp_path: Path):
    # Python's csv refuses a cell over 131,072 characters unless told otherwise; that one
    # cell used to fail the read of the whole file ("cannot read ... (Error; ...)").
    before, after = export_lines(kit, "C", 1), export_lines(kit, "C", 3, start=2)
    token = kit.survey("L-1", "1", "Agent 1")
    essay = "slow reply " * 20_000  # 220,000 characters, quoted, with a line break
    long_row = f'2026/11/11 3:47:14 PM GMT+3,2,"{essay}\nthe end",Agent 1,L-1,{token}'
    export = tmp_path / "export.csv"
    export.write_text("\n".join([CSV_HEADER, *before, long_row, *after]) + "\n", "utf-8")
    config = csv_config(kit, export)
    summary = kit.run(config)
    assert (summary.status, summary.new, summary.skipped) == ("ok", 3, {}), summary.error
    stored = {r.dialog_id: r.comment for r in kit.rows(answers)}
    assert stored["L-1"] == essay + "\nthe end"
    # A later download with a row added after it reads only that row.
    more = export_lines(kit, "C", 4, start=3)
    export.write_text("\n".join([CSV_HEADER, *before, long_row, *after, *more]) + "\n", "utf-8")
    again = kit.run(config)
    assert (again.read, again.new, again.unchanged) == ("appended", 1, 3)
