"""Two columns of one title (a question deleted and added again, a manager's own column, an
export pasted beside another): nothing a respondent wrote in either is lost from the row as
read, and a row that answers a configured role in both, differently, is not read by a guess.
"""

from __future__ import annotations

import sqlalchemy as sa

from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.db.schema import unverified_answers
from tests.sync.conftest import EN_HEADER
from tests.sync.test_attribution import at


def test_both_columns_of_a_duplicated_title_are_kept_in_the_row_as_read(kit):
    kit.responses(
        [
            [*EN_HEADER, "Comment", "Column 7"],
            [at(1), 2, "first comment", "Boris", "T-2", "not-a-reference", "second", "x"],
        ]
    )
    summary = kit.run()
    assert (summary.status, summary.unverified) == ("ok", {"malformed": 1}), summary.error
    with kit.engine.connect() as conn:
        row = conn.execute(sa.select(unverified_answers.c.source_row)).scalar_one()
    assert row["Comment"] == "first comment"
    assert row["Comment (2)"] == "second"
    assert row["Column 7"] == "x"


def test_a_row_answering_a_configured_title_twice_differently_is_skipped_naming_both(kit):
    """A re-added rating question: each row answers one of the two columns (read as it
    is); a row with a rating in both, differing, was read by the rightmost one, silently."""
    one = kit.survey("T-1", "7", "Anna Petrova")
    two = kit.survey("T-2", "7", "Anna Petrova")
    three = kit.survey("T-3", "7", "Anna Petrova")
    kit.responses(
        [
            [*EN_HEADER, "Rating"],
            [at(1), 5, "", "", "", one, ""],  # the old question
            [at(2), "", "", "", "", two, 4],  # the question added again
            [at(3), 2, "", "", "", three, 5],  # both, differing: which is meant?
        ]
    )
    summary = kit.run(kit.config(results={"min_skipped_rows": 5}))
    assert (summary.status, summary.new, summary.skipped) == (
        "ok",
        2,
        {"ambiguous_columns": 1},
    ), summary.error
    [skipped] = summary.skipped_rows
    assert skipped["row"] == "row 4"
    detail = skipped["detail"]
    assert "'Rating'" in detail and "B and G" in detail, detail
    assert sorted(r.rating for r in kit.rows(answers)) == [4, 5]
    assert [r.reason for r in kit.rows(sync_skipped_rows)] == ["ambiguous_columns"]


def test_a_duplicated_rating_title_answered_in_both_on_every_row_fails_the_run_naming_it(kit):
    """A manager's own "Rating" column beside the form's: every row is ambiguous, and the run
    is a data_error naming the title and both columns (not the rightmost read as the form's)."""
    rows = [
        [at(n), 5, "", "", "", kit.survey(f"T-{n}", "7", "Anna Petrova"), 1] for n in range(1, 5)
    ]
    kit.responses([[*EN_HEADER, "Rating"], *rows])
    summary = kit.run()
    assert summary.status == "data_error"
    error = summary.error or ""
    assert "ambiguous_columns" in error and "results.columns.rating" in error, error
    assert "B and G" in summary.problems[0]["detail"]
    assert kit.rows(answers) == []
