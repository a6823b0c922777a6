"""A hostile respondent: the survey is a public form, so anyone can submit anything, any
number of times. Whatever they submit, everyone else's answers are read, credited and
written, and what they cost the report stays bounded."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from csat_hook.db.schema import unverified_answers
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import leaderboard
from tests.sync.test_double_click import T0
from tests.sync.test_double_click import Export
from tests.sync.test_double_click import Sheet
from tests.sync.test_double_click import fresh_outcome
from tests.sync.test_double_click import outcome
from tests.sync.test_forms_recredit import FORM
from tests.sync.test_forms_recredit import credited
from tests.sync.test_forms_recredit import forms_config
from tests.sync.test_forms_recredit import submit


def made_up(i: int) -> str:
    """A reference of a signed reference's shape that verifies for no survey (the i-th)."""
    return f"MXxkZXNrfEQtMXw3fHRuc3FvMHxsODd{i:04d}.Z-3ZU30Al8CkT0iS"


def junk(count: int, comment: str) -> list[list[Any]]:
    """``count`` rated-1 submissions a second apart, each with a made-up reference and
    ``comment``."""
    return [
        [T0 + timedelta(seconds=i + 1), 1, comment, "Anna", "G-1", made_up(i)] for i in range(count)
    ]


def test_junk_submissions_with_long_texts_do_not_stop_the_report(kit: Any, tmp_path: Path):
    # 300 submissions with made-up references and a 10,000-character comment each (emoji: 4
    # bytes apiece in UTF-8) made the Unverified tab 12 MB, over the 8 MB a value request may
    # carry: every run then failed ("tab 'Unverified' needs … bytes"), and neither the
    # Sheets report nor the local files were written again while the rows were there.
    anna = kit.survey("G-1", "7", "Anna Petrova")
    rows = [[T0, 5, "good", "Anna Petrova", "G-1", anna], *junk(300, "😡" * 10_000)]
    kit.responses([EN_HEADER, *rows])
    config = kit.config(output={"local": {"enabled": True, "csv": True}})
    summary = kit.run(config)
    assert summary.status in ("ok", "data_error"), summary.error
    assert summary.new == 1 and sum(summary.unverified.values()) == 300
    assert leaderboard(kit.sheet("Summary"))["Anna Petrova"]["Answers"] == 1
    assert len(kit.rows(unverified_answers)) == 300  # all kept; only the listing is bounded
    listed = [r for r in kit.sheet("Unverified") if r and r[0] not in (None, "")][2:]
    assert 0 < len(listed) < 300
    assert [r[-1] for r in listed] == [f"row {n}" for n in range(302, 302 - len(listed), -1)]
    report = tmp_path / "report"
    assert (report / "unverified.csv").stat().st_size < 3_000_000
    with (report / "unverified.csv").open(encoding="utf-8-sig") as file:
        assert len(list(csv.reader(file))) == len(listed) + 1
    # A later answer is still read and written.
    boris = kit.survey("G-2", "8", "Boris Ivanov")
    kit.responses([EN_HEADER, *rows, [T0 + timedelta(hours=1), 4, "ok", "", "G-2", boris]])
    again = kit.run(config)
    assert again.status == "ok", again.error
    assert leaderboard(kit.sheet("Summary"))["Boris Ivanov"]["Answers"] == 1


def test_junk_texts_that_json_escapes_longer_do_not_stop_the_report(kit: Any):
    # The listing's budget counted a text's UTF-8 bytes, but the value write carries it as
    # JSON, where a control character is six bytes ("\\u0001"): 300 comments of 40,000
    # U+0001 each made the Unverified tab 11.8 MB within a 2 MB budget, and every run failed
    # as before.
    anna = kit.survey("G-1", "7", "Anna Petrova")
    rows = [[T0, 5, "good", "Anna Petrova", "G-1", anna], *junk(300, "\x01" * 40_000)]
    kit.responses([EN_HEADER, *rows])
    summary = kit.run(kit.config())
    assert summary.status in ("ok", "data_error"), summary.error
    assert leaderboard(kit.sheet("Summary"))["Anna Petrova"]["Answers"] == 1
    listed = [r for r in kit.sheet("Unverified") if r and r[0] not in (None, "")][2:]
    assert 0 < len(listed) < 300


def test_a_customer_with_many_surveys_and_long_comments_does_not_stop_the_report(kit: Any):
    # Credited answers, not made-up ones: a customer who closed 40 dialogs with the same
    # agent answers each survey with a comment as long as a cell holds (50,000 characters,
    # here U+0001, which JSON carries as six bytes). The agent's tab and the Responses tab
    # each came to 12 MB, over the 8 MB a value request carries, and every run failed until
    # an operator lowered the row limits under 27 rows. The longest texts are now cut in the
    # Sheets write as far as needed to fit; the figures and every row are kept.
    rows = []
    for i in range(40):
        token = kit.survey(f"M-{i}", "7", "Anna Petrova")
        rows.append([T0 + timedelta(minutes=i), 1, "\x01" * 49_000, "", f"M-{i}", token])
    token = kit.survey("M-good", "7", "Anna Petrova")
    rows.append([T0 + timedelta(hours=2), 5, "thanks", "", "M-good", token])
    kit.responses([EN_HEADER, *rows])
    summary = kit.run(kit.config())
    assert summary.status == "ok", summary.error
    assert leaderboard(kit.sheet("Summary"))["Anna Petrova"]["Answers"] == 41
    responses = [r for r in kit.sheet("Responses")[1:] if r and r[0] not in (None, "")]
    assert len(responses) == 41
    comments = [r[7] for r in responses]
    assert comments[0] == "thanks"  # short texts whole
    assert all(c.endswith("…") and 10_000 < len(c) < 49_000 for c in comments[1:])
    agent = [r for r in kit.sheet("Anna Petrova (7)")[1:] if r and r[0] not in (None, "")]
    assert len(agent) == 41 and agent[0][3] == "thanks"
    assert [r[3] for r in agent[1:]] == comments[1:]
    # The run says so (the sheet shows the cut; the database keeps every text whole): 40
    # cells of the Responses tab and 40 of the agent's.
    [cut] = [o["texts_cut"] for o in summary.outputs if o["kind"] == "gsheets"]
    assert cut == {"characters": len(comments[1]), "cells": 80}
    [warning] = [w for w in summary.warnings if "long texts (comments) cut" in w]
    assert f"cut to {len(comments[1]):,} characters in 80 cells" in warning
    again = kit.run(kit.config())  # the same cut again: nothing written
    assert again.status == "ok" and again.outputs[0]["write_requests"] == 0, again.outputs


@pytest.fixture(params=[Sheet, Export], ids=["gsheets", "csv"])
def source(request: pytest.FixtureRequest, kit: Any, tmp_path: Path) -> Any:
    return request.param(kit, tmp_path)


def test_a_made_up_reference_to_a_survey_does_not_keep_a_removed_answer(kit: Any, source: Any):
    # The survey's later answer removed from the source (a row deleted), and in the same read
    # a submission whose reference names that survey but is not its reference (the
    # customer's own link with its signature edited): the read of every row took that
    # submission for a newer one of the survey, left it to be credited instead of the
    # earlier row still there, and it never was (unverified). The removed answer stayed
    # credited, against a first read's.
    anna = kit.survey("H-1", "7", "Anna Petrova")
    edited = anna[:-1] + ("A" if anna[-1] != "A" else "B")
    earlier = [T0, 5, "fine", "", "H-1", anna]
    later = [T0 + timedelta(minutes=10), 1, "awful", "", "H-1", anna]
    made_up = [T0 + timedelta(minutes=20), 1, "again", "", "H-1", edited]
    for rows in ([earlier], [earlier, later], [earlier, made_up]):
        source.write([list(row) for row in rows])
        summary = kit.run(source.config)
        assert summary.status == "ok", summary.error
    assert summary.unverified == {"forged": 1}
    credited, _ = outcome(kit)
    assert [row[:3] for row in credited] == [("H-1", 5, "fine")]
    assert credited == fresh_outcome(kit, source.config)[0]


def test_a_made_up_reference_to_a_survey_does_not_keep_a_deleted_response(kit: Any):
    # The same through the Forms API: the later response deleted in the form, a response
    # with the survey's reference edited submitted after it; the read of every response
    # (sync --full) kept the deleted response's rating.
    anna = kit.survey("T-1", "7", "Anna")
    kit.fake.add_form(FORM, [])
    early = submit(kit, 1, kit.now - timedelta(hours=3), 4, anna)
    late = submit(kit, 2, kit.now - timedelta(hours=2), 1, anna)
    config = forms_config(kit)
    assert kit.run(config).new == 1
    assert kit.fake.delete_response(FORM, late)
    submit(kit, 3, kit.now - timedelta(hours=1), 1, anna[:-1] + ("A" if anna[-1] != "A" else "B"))
    kit.now += timedelta(minutes=10)
    full = kit.run(config, full=True)
    assert (full.status, full.unverified) == ("ok", {"forged": 1}), full.error
    assert credited(kit) == {"T-1": (4, f"response {early}")}
