"""The skipped-share rule: which runs end as data_error, and what they say."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from csat_hook.sync.records import SkippedRow
from csat_hook.sync.records import SourceBatch
from csat_hook.sync.records import Submission
from csat_hook.sync.skips import judge

WHEN = datetime(2026, 11, 2, tzinfo=UTC)


def batch(
    ok: int,
    bad: int,
    *,
    unchanged: int = 0,
    reason: str = "bad_timestamp",
    source: str = "csv",
    prefix: str = "",
) -> SourceBatch:
    made = SourceBatch(source=source, rows_read=ok + bad + unchanged, unchanged=unchanged)
    made.columns = {"timestamp": "Horodateur", "rating": "Note"}
    made.submissions = [
        Submission(f"{prefix}ok{i}", f"row {i}", WHEN, 5, "", "t", "", "") for i in range(ok)
    ]
    role = "rating" if reason.endswith("rating") else "timestamp"
    made.skipped = [
        SkippedRow(f"{prefix}bad{i}", f"row {ok + i}", reason, "why", role, f"cell {i}")
        for i in range(bad)
    ]
    return made


def test_a_large_share_for_one_reason_is_a_problem_naming_column_example_and_fix():
    (problem,) = judge(batch(10, 5), set(), max_share=0.2, min_rows=3)
    assert (problem.reason, problem.count, problem.rows, problem.new_only) == (
        "bad_timestamp",
        5,
        15,
        False,
    )
    assert (problem.column, problem.setting) == ("Horodateur", "results.columns.timestamp")
    assert problem.example == "cell 0" and "results.csv.timestamp_formats" in problem.fix
    assert "cell 0" not in problem.message()  # the logged text carries no cell value
    assert problem.message().startswith("5 of 15 rows read skipped as bad_timestamp")


def test_small_counts_and_small_shares_are_not_problems():
    assert judge(batch(1, 1), set(), max_share=0.2, min_rows=3) == []  # 1 of 2
    assert judge(batch(1, 2), set(), max_share=0.2, min_rows=3) == []  # below min_rows
    assert judge(batch(90, 10), set(), max_share=0.2, min_rows=3) == []  # 10 %
    assert judge(batch(3, 3), set(), max_share=1.0, min_rows=3) == []  # the rule switched off
    assert judge(batch(0, 3), set(), max_share=0.2, min_rows=3) != []


def test_new_rows_are_judged_apart_from_a_long_history():
    # 10,000 rows read and known; today's 50 new ones are all unreadable: 0.5 % of all rows
    # read, 100 % of the new ones.
    (problem,) = judge(batch(0, 50, unchanged=10_000), set(), max_share=0.2, min_rows=3)
    assert (problem.count, problem.rows, problem.new_only) == (50, 50, True)


def test_rows_still_skipped_from_before_count_among_rows_read_not_as_new():
    earlier = {f"bad{i}" for i in range(3)}
    # 3 junk rows from long ago among 40 rows read: 7.5 %, and no new skip: no problem.
    assert judge(batch(37, 3), earlier, max_share=0.2, min_rows=3) == []
    # A problem that persists keeps failing each run until fixed.
    (problem,) = judge(batch(2, 3), earlier, max_share=0.2, min_rows=3)
    assert not problem.new_only


def test_wording_per_source():
    (rating,) = judge(batch(2, 5, reason="bad_rating"), set(), max_share=0.2, min_rows=3)
    assert (rating.column, rating.setting) == ("Note", "results.columns.rating")
    assert "results.rating_labels" in rating.fix
    forms = batch(2, 5, reason="bad_rating", source="forms_api")
    forms.columns = {"rating": "question 1a2b"}
    (problem,) = judge(forms, set(), max_share=0.2, min_rows=3)
    assert problem.setting == "results.forms_api.question_ids.rating"
    sheet = batch(2, 5, source="gsheets")
    (problem,) = judge(sheet, set(), max_share=0.2, min_rows=3)
    assert "File → Settings" in problem.fix


@pytest.mark.parametrize("source", ["csv", "gsheets", "forms_api"])
def test_an_implausible_timestamp_is_told_what_it_is_not_a_layout_to_add(source):
    made = batch(2, 5, reason="implausible_timestamp", source=source)
    (problem,) = judge(made, set(), max_share=0.2, min_rows=3)
    assert "2000" in problem.fix and "a day after" in problem.fix
    assert "timestamp_formats" not in problem.fix and "Format" not in problem.fix
