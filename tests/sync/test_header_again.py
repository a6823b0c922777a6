"""A header row further down (another export pasted below the first): with row 1's columns,
it is skipped and the rows below are read by row 1's titles; with other columns, it and every
row below it are skipped, named by its row number, until the file is one table again. Read by
row 1's titles, those rows' times were ratings and their ratings references."""

from __future__ import annotations

import logging
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_skipped_rows
from tests.sync.test_read_memo import CSV_HEADER
from tests.sync.test_read_memo import csv_config
from tests.sync.test_read_memo import export_lines

OTHER_HEADER = "Reference,Timestamp,Rating,Comment,Agent,Ticket"


def reordered(line: str) -> str:
    """An export line in OTHER_HEADER's order (the comment is the quoted middle cell)."""
    stamp, rating, rest = line.split(",", 2)
    comment, rest = rest.rsplit('",', 1)
    agent, ticket, token = rest.split(",")
    return ",".join([token, stamp, rating, comment + '"', agent, ticket])


def test_rows_under_a_header_of_other_columns_are_skipped_naming_its_row(kit, tmp_path: Path):
    export = tmp_path / "export.csv"
    first = [CSV_HEADER, *export_lines(kit, "A", 3)]
    export.write_text("\n".join(first) + "\n", "utf-8")
    config = csv_config(kit, export)
    assert kit.run(config).new == 3
    pasted = [reordered(line) for line in export_lines(kit, "B", 3)]
    export.write_text("\n".join([*first, OTHER_HEADER, *pasted]) + "\n", "utf-8")
    summary = kit.run(config)
    assert summary.status == "data_error", summary.error
    assert (summary.new, summary.skipped) == (0, {"columns_differ": 4})
    assert [r["row"] for r in summary.skipped_rows] == ["row 5", "row 6", "row 7", "row 8"]
    detail = summary.skipped_rows[0]["detail"]
    assert "row 5" in detail and "columns differ from row 1's" in detail, detail
    assert "row 5" in summary.skipped_rows[1]["detail"]
    assert "columns_differ" in (summary.error or "")
    assert len(kit.rows(answers)) == 3  # nothing stored is lost
    # A row added below later is not read by row 1's titles either (nor the file appended to).
    more = [reordered(line) for line in export_lines(kit, "B", 4, start=3)]
    export.write_text("\n".join([*first, OTHER_HEADER, *pasted, *more]) + "\n", "utf-8")
    again = kit.run(config)
    assert (again.new, again.skipped) == (0, {"columns_differ": 5}), again.error
    # Made one table (the pasted rows moved into row 1's columns), every row is read.
    moved = export_lines(kit, "B", 4)
    export.write_text("\n".join([*first, *moved]) + "\n", "utf-8")
    fixed = kit.run(config)
    assert (fixed.status, fixed.new, fixed.skipped) == ("ok", 4, {}), fixed.error
    assert kit.rows(sync_skipped_rows) == []


def test_a_header_again_in_the_same_columns_reads_the_rows_below(kit, tmp_path: Path):
    export = tmp_path / "export.csv"
    lines = [CSV_HEADER, *export_lines(kit, "A", 2), CSV_HEADER, *export_lines(kit, "B", 2)]
    export.write_text("\n".join(lines) + "\n", "utf-8")
    summary = kit.run(csv_config(kit, export))
    assert (summary.new, summary.skipped) == (4, {"bad_timestamp": 1}), summary.error
    assert (
        "the rows below it are read by the first row's titles"
        in (summary.skipped_rows[0]["detail"])
    )


def test_a_sheet_with_a_header_of_other_columns_pasted_below(kit):
    from tests.sync.conftest import EN_HEADER
    from tests.sync.test_attribution import at

    first = [[at(n), 5, "", "", "", kit.survey(f"A-{n}", "7", "Anna Petrova")] for n in (1, 2)]
    other = [EN_HEADER[-1], *EN_HEADER[:-1]]  # the reference first
    pasted = [[kit.survey(f"B-{n}", "7", "Anna Petrova"), at(n), 4, "", "", ""] for n in (3, 4)]
    kit.responses([EN_HEADER, *first, other, *pasted])
    config = kit.config(results={"min_skipped_rows": 10})
    summary = kit.run(config)
    assert (summary.status, summary.new, summary.skipped) == (
        "ok",
        2,
        {"columns_differ": 3},
    ), summary.error
    assert "row 4 holds column titles again" in summary.skipped_rows[2]["detail"]
    # A row added at the bottom later is not read alone by row 1's titles.
    more = [kit.survey("B-5", "7", "Anna Petrova"), at(5), 3, "", "", ""]
    kit.responses([EN_HEADER, *first, other, *pasted, more])
    again = kit.run(config)
    assert (again.read, again.new, again.skipped) == ("read", 0, {"columns_differ": 4})
    assert len(kit.rows(answers)) == 2


def test_a_sheet_whose_first_answer_was_taken_for_its_titles_is_never_quoted(kit, caplog):
    # A sheet without its header row, whose first answer was submitted at midnight: its
    # timestamp is a whole serial (46345.0), which was no answer's sign, and the row's
    # comment and reference were listed as the headers found, in the error and its log line.
    caplog.set_level(logging.INFO)
    midnight = datetime(2026, 11, 19, 0, 0, tzinfo=UTC)
    comment = "Secret comment, call me at home"
    # No reference (an answer the form lost it from) and a label for a rating: the serial
    # alone says it is an answer.
    kit.responses([[midnight, "Good", comment, "Anna Petrova", "T-1", ""]], time_zone="UTC")
    config = kit.config(output={"gsheets": {"enabled": False}, "local": {"enabled": False}})
    summary = kit.run(config)
    assert summary.status == "config_error" and summary.error is not None
    assert "looks like an answer, not column titles" in summary.error, summary.error
    logged = " ".join(repr(vars(record)) for record in caplog.records)
    for text in (summary.error, logged):
        assert comment not in text and "Anna Petrova" not in text


@pytest.mark.parametrize("remembered", [True, False])
def test_a_question_renamed_in_the_form_is_a_configuration_error_not_every_answer_edited(
    kit, remembered: bool
):
    """Forms renames a question's column when its title is edited. A comment (agent, ticket,
    NPS) question's column no longer found was read as unanswered: every stored answer's
    identity changed, each was credited again as "comment changed in place" with its comment
    replaced by nothing, and the run said "ok". The last read's columns are remembered, clean
    (replayable) or not (``remembered``: a row dated years ahead keeps the read from being
    replayed), and a role it read that has no column now is a configuration error naming the
    list and the title it was read from; with the new title added the answers are unchanged."""
    from tests.sync.conftest import EN_HEADER
    from tests.sync.conftest import SHEET_ID
    from tests.sync.test_attribution import at

    rows: list[list[object]] = [
        [at(n), 5, f"comment {n}", "Anna", f"T-{n}", kit.survey(f"T-{n}", "7", "Anna Petrova")]
        for n in (1, 2)
    ]
    if not remembered:
        rows.append([datetime(2099, 1, 1, tzinfo=UTC), 4, "", "", "", "typo"])
    kit.responses([EN_HEADER, *rows])
    config = kit.config(results={"min_skipped_rows": 10})
    assert kit.run(config).new == 2
    assert (kit.run(config).read == "replayed") is remembered
    column = EN_HEADER.index("Comment")
    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 0, column, "Anything else?")

    refused = kit.run(config)
    assert refused.status == "config_error", refused.error
    assert refused.error.startswith("results.columns.comment: no column"), refused.error
    assert "read from 'Comment'" in refused.error
    assert sorted(r.comment for r in kit.rows(answers)) == ["comment 1", "comment 2"]

    renamed = kit.config(
        results={"min_skipped_rows": 10, "columns": {"comment": ["Comment", "Anything else?"]}}
    )
    summary = kit.run(renamed)
    assert (summary.status, summary.new, summary.updated) == ("ok", 0, 0), summary.error
    assert not [w for w in summary.warnings if "changed in place" in w]
    assert sorted(r.comment for r in kit.rows(answers)) == ["comment 1", "comment 2"]
    # A question no longer asked: its titles emptied, nothing is looked for or said.
    dropped = kit.config(results={"min_skipped_rows": 10, "columns": {"comment": []}})
    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 0, column, "Notes")
    assert kit.run(dropped).status == "ok"
