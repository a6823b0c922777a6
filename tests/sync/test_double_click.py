"""A double-click (the same values submitted twice) read over several syncs: each incremental
run credits what a first run over the final sheet or export credits.

A fresh read places the repeated values at their lower row, so an edit of the upper row in the
same second is an earlier submission (history), not an edit of the credited answer. The runs
below meet the lower row in a later sync than the upper one, recognised by its row digest, by
its identity among appended rows, or parsed, and only then (or in the same run) the edit."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_row_digests
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.db.schema import sync_source_reads
from csat_hook.db.schema import unverified_answers
from tests.sync.conftest import EN_HEADER

T0 = datetime(2026, 11, 18, 9, 0, 5, tzinfo=UTC)
TAB = "Form Responses 1"


class Sheet:
    """The responses sheet (the Sheets fake), written whole before each run."""

    def __init__(self, kit: Any, tmp_path: Path) -> None:
        self.kit = kit
        self.config = kit.config()

    def reconfigured(self, **results: Any) -> Any:
        return self.kit.config(results=results)

    def write(self, rows: list[list[Any]]) -> None:
        self.kit.responses([EN_HEADER, *rows])


class Export:
    """A Forms "Download responses (.csv)" export, downloaded again before each run."""

    def __init__(self, kit: Any, tmp_path: Path) -> None:
        self.kit = kit
        self.path = tmp_path / "responses.csv"
        self.config = self.reconfigured()

    def reconfigured(self, **results: Any) -> Any:
        csv = {"source": "csv", "csv": {"path": str(self.path), "timezone": "UTC"}}
        return self.kit.config(results={**csv, **results}, output={"gsheets": {"enabled": False}})

    def write(self, rows: list[list[Any]]) -> None:
        lines = [",".join(EN_HEADER)]
        for when, rating, comment, agent, ticket, reference in rows:
            stamp = f"{when:%Y/%m/%d} {when:%I:%M:%S %p} GMT" if when else ""
            lines.append(f"{stamp},{rating},{comment},{agent},{ticket},{reference}")
        self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def outcome(kit: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What is credited (survey, rating, comment, row) and kept as history (survey, rating,
    comment)."""
    credited = sorted((r.dialog_id, r.rating, r.comment, r.source_ref) for r in kit.rows(answers))
    with kit.engine.connect() as conn:
        history = sorted(
            conn.execute(
                sa.select(answers.c.dialog_id, answer_history.c.rating, answer_history.c.comment)
                .select_from(answer_history)
                .join(answers, answers.c.survey_key == answer_history.c.survey_key)
            ).all()
        )
    return credited, [tuple(row) for row in history]


def forget_every_read(kit: Any) -> None:
    """Every processed row, cache and memo forgotten: the next run is a first run over the
    source as it is."""
    with kit.engine.begin() as conn:
        for table in (
            answers,
            answer_history,
            unverified_answers,
            sync_skipped_rows,
            sync_row_digests,
            sync_source_reads,
        ):
            conn.execute(table.delete())


def fresh_outcome(kit: Any, config: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """What a first run over the source as it is now credits (:func:`forget_every_read`)."""
    forget_every_read(kit)
    summary = kit.run(config)
    assert summary.status == "ok", summary.error
    return outcome(kit)


@pytest.fixture(params=[Sheet, Export], ids=["gsheets", "csv"])
def source(request: pytest.FixtureRequest, kit: Any, tmp_path: Path) -> Any:
    return request.param(kit, tmp_path)


# Each scenario: the rows before each run. ``a`` is the customer's answer, ``a2`` the upper
# row edited in place (same submission time, another rating and comment), ``b`` another
# survey's answer between the two clicks, ``c`` a later answer below them.
SCENARIOS = {
    # The repeat read in a later sync than the first click (rows added at the bottom), the
    # upper row edited in a third.
    "repeat appended, then the upper row edited": [["a"], ["a", "b", "a"], ["a2", "b", "a"]],
    # The same, the repeat read by a run that also reads an edit elsewhere (every row read).
    "repeat read with every row, then the upper row edited": [
        ["a", "b"],
        ["a", "b2", "a"],
        ["a2", "b2", "a"],
    ],
    # The repeat and the edit of the upper row both new to the second run.
    "repeat and edit read together": [["a", "b"], ["a2", "b", "a"]],
    # Later answers below, then the edit: the repeat is no longer the last row.
    "repeat, later answers, then the edit": [["a"], ["a", "a"], ["a", "a", "c"], ["a2", "a", "c"]],
    # Another submission in the same second and the repeat below it, added together: the
    # repeat is found among the added rows.
    "another submission and the repeat appended together": [["a"], ["a", "a2", "a"]],
    # The lower row edited instead: a fresh read credits the edit (the lower row).
    "repeat, then the lower row edited": [["a"], ["a", "b", "a"], ["a", "b", "a2"]],
    # A blank row above removed, then the lower row edited: the stored place moves up.
    "a row above removed, then the lower row edited": [["blank", "a", "a"], ["a", "a2"]],
    # A row edited in place, then back: the row's first values are its current content
    # again (kept as history by the edit, they must not be taken for a processed row).
    "a row edited in place, then back": [["a"], ["a2"], ["a"]],
    # The same, recognised by their cells (row digests) or parsed under another setting.
    "a row edited in place, then back, read under another setting": [
        ["a", "b"],
        ["a2", "b"],
        ["a", "b", "relabelled"],
    ],
    # A double-click's upper row edited (history), then the two rows' values swapped: the
    # lower row, credited by a first run, holds the values kept as history.
    "a double-click's rows edited, then swapped": [["a", "a"], ["a2", "a"], ["a", "a2"]],
    # A later submission removed with an earlier one of the survey still there: a first run
    # credits the earlier one.
    "a later submission removed, an earlier one left": [["a", "b", "a3"], ["a", "b"]],
    # A later submission's row replaced by an earlier one of the survey (new to the run).
    "a later submission replaced by an earlier one": [["a3", "b"], ["a", "b"]],
    # ... and added back at the bottom (an appended read whose added row is in the history).
    "a later submission removed, then added back": [["a", "a3"], ["a"], ["a", "a3"]],
    # A survey's only row removed (its answer kept), then added back at the bottom with an
    # earlier time and another rating (an appended read): a first run credits that row, the
    # only one of the survey. The appended read kept the removed row's answer.
    "the answer's row removed, then an earlier row of the survey added": [
        ["b", "a3"],
        ["b"],
        ["b", "a"],
    ],
    # ... the same when the row added back was made in the same instant.
    "the answer's row removed, then a row of the same instant added": [
        ["b", "a"],
        ["b"],
        ["b", "a2"],
    ],
    # ... while an earlier row added below an answer whose row is still there is history.
    "an earlier row of the survey added below its answer's row": [["a3", "b"], ["a3", "b", "a"]],
    # The edit read under another setting that reads the rows (every row parsed, none
    # recognised by its raw digest).
    "repeat, then the upper row edited, read under another setting": [
        ["a"],
        ["a", "b", "a"],
        ["a2", "b", "a", "relabelled"],
    ],
}


@pytest.mark.parametrize("steps", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_an_incremental_run_credits_what_a_first_run_over_the_final_source_would(
    kit: Any, source: Any, steps: list[list[str]]
) -> None:
    anna = kit.survey("T-1", "7", "Anna Petrova")
    boris = kit.survey("T-2", "8", "Boris Ivanov")
    cora = kit.survey("T-3", "9", "Cora Lind")
    rows = {
        "a": [T0, 4, "fine", "", "", anna],
        "a2": [T0, 2, "changed my mind", "", "", anna],
        "a3": [T0.replace(hour=11), 3, "thought again", "", "", anna],
        "b": [T0.replace(minute=5), 5, "great", "", "", boris],
        "b2": [T0.replace(minute=5), 3, "so-so", "", "", boris],
        "c": [T0.replace(hour=10), 5, "later", "", "", cora],
        "blank": ["", "", "", "", "", ""],
    }
    config = source.config
    for step in steps:
        if "relabelled" in step:
            step = [name for name in step if name != "relabelled"]
            config = source.reconfigured(rating_labels={"Excellent": 5})
        source.write([list(rows[name]) for name in step])
        summary = kit.run(config)
        assert summary.status == "ok", summary.error
    credited, history = outcome(kit)

    fresh_credited, fresh_history = fresh_outcome(kit, config)
    assert credited == fresh_credited
    # The incremental history also keeps what edits replaced, which a fresh read never sees.
    assert set(fresh_history) <= set(history)


def test_a_row_edited_back_is_credited_again_as_an_edit_in_place(kit: Any, source: Any) -> None:
    """5, edited in place to 2, then back to 5: the third run credits the 5 again (its row's
    content, though kept as history), says so as the edit in place it is, and the report
    follows."""
    anna = kit.survey("T-1", "7", "Anna Petrova")
    five, two = [T0, 5, "great", "", "", anna], [T0, 2, "meh", "", "", anna]
    ratings = []
    for rows in ([five], [two], [five]):
        source.write([list(row) for row in rows])
        summary = kit.run(source.config)
        assert summary.status == "ok", summary.error
        ratings.append([r.rating for r in kit.rows(answers)])
    assert ratings == [[5], [2], [5]]
    assert (summary.new, summary.updated) == (0, 1)
    assert any("row 2: rating and comment changed in place" in w for w in summary.warnings)
    # Nothing new since: a replay, the 5 still credited.
    again = kit.run(source.config)
    assert (again.read, again.updated, again.unchanged) == ("replayed", 0, 1)
    assert [r.rating for r in kit.rows(answers)] == [5]


def test_a_row_removed_with_no_other_row_of_its_survey_keeps_its_answer(
    kit: Any, source: Any
) -> None:
    """What was read stays credited when the source no longer holds any row of the survey."""
    anna = kit.survey("T-1", "7", "Anna Petrova")
    boris = kit.survey("T-2", "8", "Boris Ivanov")
    a, b = [T0, 4, "fine", "", "", anna], [T0.replace(minute=5), 5, "great", "", "", boris]
    for rows in ([a, b], [b]):
        source.write([list(row) for row in rows])
        assert kit.run(source.config).status == "ok"
    assert sorted((r.dialog_id, r.rating) for r in kit.rows(answers)) == [("T-1", 4), ("T-2", 5)]


def alerting(kit: Any, source: Any, **section: Any) -> Any:
    """``source``'s settings with a rule alerting ratings of 2 and below to Slack (``section``:
    more of the alerts section)."""
    return kit.config(
        results=source.config.results.model_dump(mode="json"),
        output={"gsheets": {"enabled": False}},
        alerts={
            "destinations": {
                "slack": {"kind": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/C"}
            },
            "rules": [
                {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
            ],
            **section,
        },
    )


def test_an_earlier_row_added_after_its_answers_row_went_is_read_with_every_row(
    kit: Any, tmp_path: Path
) -> None:
    """The probe: A's row (20:00:02, 3) removed (A keeps its 3), then pasted back at the
    bottom with a corrected 4 and an earlier time. The appended read kept the 3 (the 4 as
    history); a first read of the file credits the 4, its only row. Rows added after that,
    of surveys whose rows are all there, are read alone again."""
    export = Export(kit, tmp_path)
    a, b, c = (kit.survey(f"P-{n}", str(n), "Anna Petrova") for n in range(3))
    at = T0.replace(hour=20, minute=0, second=0)
    a3 = [at.replace(second=2), 3, "", "", "", a]
    b5 = [at.replace(second=1), 5, "", "", "", b]
    for rows in ([a3, b5], [b5]):
        export.write(rows)
        assert kit.run(export.config).status == "ok"
    assert {r.dialog_id: r.rating for r in kit.rows(answers)} == {"P-0": 3, "P-1": 5}
    a4 = [at, 4, "", "", "", a]
    export.write([b5, a4])
    summary = kit.run(export.config)
    assert (summary.read, summary.updated, summary.history_only) == ("read", 1, 0)
    assert {r.dialog_id: r.rating for r in kit.rows(answers)} == {"P-0": 4, "P-1": 5}
    export.write([b5, a4, [at.replace(minute=5), 5, "", "", "", c]])
    later = kit.run(export.config)
    assert (later.read, later.new) == ("appended", 1)


def test_a_rating_lowered_by_crediting_a_row_again_alerts(kit: Any, tmp_path: Path) -> None:
    """A double-click's upper row edited to a 1 (history, never credited, never alerted),
    then the rows swapped: the 1, credited again, alerts as any lowered rating."""
    source = Export(kit, tmp_path)
    config = alerting(kit, source)
    anna = kit.survey("T-1", "7", "Anna Petrova")
    when = (kit.now - timedelta(minutes=3)).replace(microsecond=0)
    raised = []
    for ratings in ([5, 5], [1, 5], [5, 1]):
        source.write([[when, rating, "", "", "", anna] for rating in ratings])
        summary = kit.run(config)
        assert summary.status == "ok", summary.error
        raised.append(summary.alerts["raised"])
    assert raised == [{}, {}, {"low": 1}]
    assert [r.rating for r in kit.rows(answers)] == [1]


def test_an_answer_edited_beside_an_earlier_low_row_alerts_nothing(
    kit: Any, tmp_path: Path
) -> None:
    """An earlier 1 (history, never credited) and a later 5; the 5 edited to a 4: the 4 is
    credited as an edit, and the 1 is never credited on the way (no alert, one update)."""
    source = Export(kit, tmp_path)
    config = alerting(kit, source)
    anna = kit.survey("T-1", "7", "Anna Petrova")
    later = (kit.now - timedelta(minutes=3)).replace(microsecond=0)
    earlier = later - timedelta(minutes=1)
    outcomes = []
    for last in (5, 4):
        source.write([[earlier, 1, "", "", "", anna], [later, last, "", "", "", anna]])
        summary = kit.run(config)
        assert summary.status == "ok", summary.error
        outcomes.append((summary.alerts["raised"], summary.updated))
    assert outcomes == [({}, 0), ({}, 1)]
    assert [r.rating for r in kit.rows(answers)] == [4]


@pytest.mark.parametrize("reading_every_answer", [False, True], ids=["rules", "with a digest"])
def test_a_rating_raised_by_crediting_a_row_again_alerts_nothing(
    kit: Any, tmp_path: Path, reading_every_answer: bool
) -> None:
    """A 2 and a later 1 read together (the 1 credited and alerted); the 1's row removed:
    the 2 is credited again, an edit that raises a rating already alerted, so nothing, with
    a digest too (the run then weighs the batch against every answer read back, and the
    answer credited again was handed to the rules twice, the second time as unchanged)."""
    source = Export(kit, tmp_path)
    digests = [{"name": "daily", "destinations": ["slack"]}] if reading_every_answer else []
    config = alerting(kit, source, digests=digests)
    anna = kit.survey("T-1", "7", "Anna Petrova")
    boris = kit.survey("T-2", "8", "Boris Ivanov")
    later = (kit.now - timedelta(minutes=3)).replace(microsecond=0)
    two = [later - timedelta(minutes=1), 2, "", "", "", anna]
    one = [later, 1, "", "", "", anna]
    other = [later, 5, "", "", "", boris]  # another survey's new answer in the same run
    raised = []
    for rows in ([two, one], [two, other]):
        source.write([list(row) for row in rows])
        summary = kit.run(config)
        assert summary.status == "ok", summary.error
        raised.append(summary.alerts["raised"])
    assert sorted((r.dialog_id, r.rating) for r in kit.rows(answers)) == [("T-1", 2), ("T-2", 5)]
    assert raised == [{"low": 1}, {}]


def test_a_tie_appended_below_an_answer_whose_rows_above_were_removed_outranks_it(
    kit: Any, source: Any
) -> None:
    """Rows above an answer removed (a read of every row finds it higher up, in no tie, and
    leaves its stored row as it was), then another submission of its survey made in the same
    instant appended below it: a first run credits the appended one, further down, and so does
    the appended read, which meets only the added rows (each below every earlier one) however
    far down the answer's stored row says it was."""
    anna = kit.survey("T-1", "7", "Anna Petrova")
    boris = kit.survey("T-2", "8", "Boris Ivanov")
    rows = {
        "a": [T0, 4, "fine", "", "", anna],
        "a2": [T0, 2, "changed my mind", "", "", anna],
        "b": [T0.replace(minute=5), 5, "great", "", "", boris],
        "blank": ["", "", "", "", "", ""],
    }
    summary = None
    for step in (["blank", "blank", "b", "a"], ["b", "a"], ["b", "a", "a2"]):
        source.write([list(rows[name]) for name in step])
        summary = kit.run(source.config)
        assert summary.status == "ok", summary.error
    assert summary is not None and summary.read == "appended"
    credited, history = outcome(kit)
    fresh_credited, fresh_history = fresh_outcome(kit, source.config)
    # Credits and history as a first run's; the answers' rows only where a run placed them
    # (the appended one at its row; the other still at the row first read, not shown).
    assert [row[:3] for row in credited] == [row[:3] for row in fresh_credited]
    assert history == fresh_history
    assert credited[0] == fresh_credited[0] == ("T-1", 2, "changed my mind", "row 4")
