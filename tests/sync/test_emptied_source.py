"""A source that had rows and is suddenly read with none (the header row alone, or not even
that): an export cut short, a sheet cleared by mistake, a CSV replaced by an empty template,
a form's responses deleted. The read is no read of every row: what was stored from the source
(its unverified and skipped rows, its credited answers) is kept, the run says so (a warning in
its summary, ``sync.source-emptied`` in the log, naming the source and how many rows it had,
never a cell), and the report still counts every answer. Once the rows are back, nothing is
stored again as new."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.db.schema import unverified_answers
from tests.sync.conftest import EN_HEADER
from tests.sync.test_double_click import T0
from tests.sync.test_double_click import Export
from tests.sync.test_double_click import Sheet
from tests.sync.test_forms_api import RATING
from tests.sync.test_forms_api import TOKEN
from tests.sync.test_forms_api import form_response
from tests.sync.test_forms_api import stamp

# Customer text in the rows: never in a log line.
COMMENTS = ("great-comment-text", "awful-comment-text", "skipped-comment-text")


def local_report(kit: Any, config: Any, **results: Any) -> Any:
    """``config``'s source with the report written as local CSV files too."""
    sections: dict[str, Any] = {"output": {"local": {"enabled": True, "csv": True}}}
    if config.results.source == "csv":
        sections["output"]["gsheets"] = {"enabled": False}
        csv = {"path": str(config.results.csv.path), "timezone": "UTC"}
        sections["results"] = {"source": "csv", "csv": csv, **results}
    return kit.config(**sections)


class Emptied:
    """Each source of a whole read, and the ways it is read with no data row."""

    def __init__(self, kit: Any, tmp_path: Path, kind: str, how: str) -> None:
        self.source = (Sheet if kind == "gsheets" else Export)(kit, tmp_path)
        self.kit, self.kind, self.how = kit, kind, how
        self.config = local_report(kit, self.source.config)

    def write(self, rows: list[list[Any]]) -> None:
        self.source.write(rows)

    def empty(self) -> None:
        if self.kind == "gsheets":
            self.kit.responses([] if self.how == "no-rows" else [EN_HEADER])
            return
        path = self.source.path
        header = ",".join(EN_HEADER) + "\n"
        path.write_text(header + ("\n\n" if self.how == "blank-lines" else ""), encoding="utf-8")


WAYS = [
    ("gsheets", "header-only"),
    ("gsheets", "no-rows"),
    ("csv", "header-only"),
    ("csv", "blank-lines"),
]


@pytest.fixture(params=WAYS, ids=[f"{kind}-{how}" for kind, how in WAYS])
def emptied(request: pytest.FixtureRequest, kit: Any, tmp_path: Path) -> Emptied:
    kind, how = request.param
    return Emptied(kit, tmp_path, kind, how)


def rows(kit: Any) -> list[list[Any]]:
    """A credited answer, a forged one (unverified) and a skipped one (a rating off the
    scale)."""
    boris = kit.survey("T-2", "8", "Boris Ivanov")
    anna = kit.survey("T-1", "7", "Anna Petrova")
    forged = kit.token("T-9", "7", secret="a-forger-secret-99")
    return [
        [T0, 5, COMMENTS[0], "", "", boris],
        [T0.replace(minute=7), 1, COMMENTS[1], "", "", forged],
        [T0.replace(minute=9), 9, COMMENTS[2], "", "", anna],
    ]


def stored(kit: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """The credited answers, the unverified ones and the skipped rows, as the report and the
    next runs see them."""
    return (
        sorted((r.dialog_id, r.rating, r.source_ref) for r in kit.rows(answers)),
        sorted((r.reason, r.source_ref, r.rating) for r in kit.rows(unverified_answers)),
        sorted((r.reason, r.source_ref) for r in kit.rows(sync_skipped_rows)),
    )


def report_files(kit: Any) -> dict[str, str]:
    folder = kit.tmp_path / "report"
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.csv"))}


def emptied_events(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == "sync.source-emptied"]


def test_a_source_read_with_no_data_row_keeps_what_was_stored_from_it(
    kit: Any, emptied: Emptied, caplog: pytest.LogCaptureFixture
) -> None:
    written = rows(kit)
    emptied.write(written)
    first = kit.run(emptied.config)
    assert first.status in ("ok", "data_error"), first.error
    before = stored(kit)
    assert before == (
        [("T-2", 5, "row 2")],
        [("forged", "row 3", 1)],
        [("bad_rating", "row 4")],
    )
    report = report_files(kit)
    assert "T-2" in report["answers.csv"]

    emptied.empty()
    caplog.set_level(logging.INFO)
    summary = kit.run(emptied.config)
    assert summary.status == "ok", summary.error
    assert stored(kit) == before
    assert summary.totals["unverified"] == {"forged": 1}
    assert summary.totals["skipped"] == {"bad_rating": 1}
    assert summary.totals["answers"] == 1
    said = [w for w in summary.warnings if "no data row" in w]
    assert len(said) == 1, summary.warnings
    assert "1 unverified answer and 1 skipped row" in said[0]
    (event,) = emptied_events(caplog)
    assert event.levelno == logging.WARNING
    fields = vars(event)
    assert fields["source"].startswith(emptied.kind + ":")
    # The last read skipped a row: not replayed (read_memo), its data rows remembered.
    assert (fields.get("rows"), fields["count"]) == (3, 2)
    logged = " ".join(r.getMessage() + repr(vars(r)) for r in caplog.records)
    assert not any(comment in logged for comment in COMMENTS)

    # The report is built again from what is stored: every answer still counts.
    rebuilt = kit.run(emptied.config, full=True)
    assert rebuilt.status == "ok", rebuilt.error
    assert rebuilt.report == "built"
    assert report_files(kit) == report
    assert stored(kit) == before

    # The rows back: nothing is new, nothing stored again, nothing said about an emptying.
    caplog.clear()
    emptied.write(written)
    again = kit.run(emptied.config)
    assert again.status in ("ok", "data_error"), again.error
    assert (again.new, again.updated, sum(again.unverified.values())) == (0, 0, 0)
    assert stored(kit) == before
    assert not emptied_events(caplog)
    assert not [w for w in again.warnings if "no data row" in w]


def test_the_warning_names_the_last_clean_reads_rows(
    kit: Any, emptied: Emptied, caplog: pytest.LogCaptureFixture
) -> None:
    """A source whose last read skipped nothing (remembered: read_memo), even with only
    credited answers and so nothing that would be forgotten: the emptying is said, with the
    data rows that read found, and the answers still count."""
    emptied.write(rows(kit)[:1])
    assert kit.run(emptied.config).status == "ok"
    emptied.empty()
    caplog.set_level(logging.INFO)
    summary = kit.run(emptied.config)
    assert summary.status == "ok", summary.error
    assert [w for w in summary.warnings if "the last read with rows found 1 data row:" in w]
    (event,) = emptied_events(caplog)
    assert (event.rows, event.count) == (1, 0)  # type: ignore[attr-defined]
    assert summary.totals["answers"] == 1
    # Said again while it lasts.
    caplog.clear()
    assert kit.run(emptied.config).status == "ok"
    assert len(emptied_events(caplog)) == 1


def test_the_warning_names_the_rows_of_a_last_read_that_skipped_one(
    kit: Any, emptied: Emptied, caplog: pytest.LogCaptureFixture
) -> None:
    """A last read that skipped a row is not remembered to be replayed (read_memo), but the
    data rows it found are, for the warning: the count is said as after a clean read, while
    the emptying lasts."""
    emptied.write(rows(kit))
    assert kit.run(emptied.config).skipped == {"bad_rating": 1}
    emptied.empty()
    caplog.set_level(logging.INFO)
    for _ in range(2):
        caplog.clear()
        summary = kit.run(emptied.config)
        assert summary.status == "ok", summary.error
        said = [w for w in summary.warnings if "no data row" in w]
        assert len(said) == 1, summary.warnings
        assert "the last read with rows found 3 data rows:" in said[0]
        (event,) = emptied_events(caplog)
        assert (event.rows, event.count) == (3, 2)  # type: ignore[attr-defined]


def test_rows_removed_later_are_forgotten_again_once_the_source_has_rows(
    kit: Any, tmp_path: Path
) -> None:
    """The guard holds for a read with no data row only: the next read with rows is a read of
    every row again, and forgets the rows no longer there (a shrink is not guarded: rows are
    deleted on purpose too)."""
    emptied = Emptied(kit, tmp_path, "csv", "header-only")
    written = rows(kit)
    emptied.write(written)
    kit.run(emptied.config)
    emptied.empty()
    assert kit.run(emptied.config).status == "ok"
    emptied.write(written[:1])
    summary = kit.run(emptied.config)
    assert summary.status == "ok", summary.error
    assert stored(kit) == ([("T-2", 5, "row 2")], [], [])
    assert not [w for w in summary.warnings if "no data row" in w]


def test_a_first_read_of_an_empty_source_says_nothing_of_an_emptying(
    kit: Any, emptied: Emptied, caplog: pytest.LogCaptureFixture
) -> None:
    emptied.empty()
    caplog.set_level(logging.INFO)
    summary = kit.run(emptied.config)
    assert summary.status == "ok", summary.error
    assert not emptied_events(caplog)
    assert not [w for w in summary.warnings if "no data row" in w]


def test_a_form_whose_responses_are_deleted_keeps_what_was_stored_from_it(
    kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A read of every response (the first, --full, a full read due) that lists none where
    the last listed some: the skipped responses are kept (a read of every response replaces
    the form's skipped records), as are the credited and unverified answers."""
    boris = kit.survey("T-2", "8", "Boris Ivanov")
    forged = kit.token("T-9", "7", secret="a-forger-secret-99")
    anna = kit.survey("T-1", "7", "Anna Petrova")
    when = kit.now - timedelta(hours=2)
    kit.fake.add_form(
        "f",
        [
            form_response(1, stamp(when), "5", boris),
            form_response(2, stamp(when + timedelta(minutes=1)), "1", forged),
            form_response(3, stamp(when + timedelta(minutes=2)), "9", anna),
        ],
    )
    results = {
        "source": "forms_api",
        "forms_api": {"form_id": "f", "question_ids": {"rating": RATING, "token": TOKEN}},
    }
    config = kit.config(results=results, output={"gsheets": {"enabled": False}})
    first = kit.run(config)
    assert first.status in ("ok", "data_error"), first.error
    before = stored(kit)
    assert [len(part) for part in before] == [1, 1, 1]
    kit.fake.add_form("f", [])
    caplog.set_level(logging.INFO)
    summary = kit.run(config, full=True)
    assert summary.status == "ok", summary.error
    assert stored(kit) == before
    assert [w for w in summary.warnings if "no data row" in w], summary.warnings
    assert [w for w in summary.warnings if "the last read with rows found 3 data rows:" in w]
    (event,) = emptied_events(caplog)
    assert (event.source, event.rows) == ("forms_api:f", 3)  # type: ignore[attr-defined]


def test_an_export_begun_again_with_only_its_first_row_cut_keeps_what_was_stored(
    kit: Any, tmp_path: Path
) -> None:
    """A copy of the export just begun: its titles and part of its first row, left for the
    next run as a cut row (read_step.leave_cut_row). No data row is read: the stored rows are
    kept, as for the titles alone."""
    emptied = Emptied(kit, tmp_path, "csv", "header-only")
    written = rows(kit)
    emptied.write(written)
    kit.run(emptied.config)
    before = stored(kit)
    whole = emptied.source.path.read_text(encoding="utf-8")
    cut = whole.index("\n", whole.index("\n") + 1) - 20  # inside row 2's reference
    emptied.source.path.write_text(whole[:cut], encoding="utf-8")
    summary = kit.run(emptied.config)
    assert summary.status == "ok", summary.error
    assert summary.rows_read == 0
    assert stored(kit) == before
    assert [w for w in summary.warnings if "no data row" in w], summary.warnings
