"""The optional 0–10 NPS question: read by every source, validated, stored with the answer
and its history (migration 0005), and reported next to CSAT."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from csat_hook.db import migrate
from csat_hook.db.engine import make_engine
from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.sources.csv_export import CsvResults
from csat_hook.sync.sources.forms_api import FormsApiResults
from csat_hook.sync.sources.identity import submission_identity
from csat_hook.sync.values import RatingScale
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import leaderboard

SCALE = RatingScale(1, 5, {})
NPS_TITLE = "How likely are you to recommend us?"
COLUMNS = ColumnsConfig(nps=[NPS_TITLE, "Порекомендуете ли вы нас?"])
T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def test_a_csv_export_with_an_nps_question(tmp_path: Path):
    path = tmp_path / "responses.csv"
    path.write_text(
        f"Timestamp,Rating,Reference,{NPS_TITLE}\n"
        "2026/11/18 12:00:00 PM GMT+3,5,t1,10\n"
        "2026/11/18 12:01:00 PM GMT+3,4,t2,10 - Extremely likely\n"
        "2026/11/18 12:02:00 PM GMT+3,4,t3,\n"
        "2026/11/18 12:03:00 PM GMT+3,3,t4,11\n"
        "2026/11/18 12:04:00 PM GMT+3,3,t5,maybe\n",
        encoding="utf-8",
    )
    source = CsvResults(
        path,
        timezone="UTC",
        encoding="utf-8",
        delimiter=",",
        timestamp_formats=[],
        columns=COLUMNS,
        ratings=SCALE,
    )
    batch = source.fetch(set(), None)
    assert [(s.token, s.nps) for s in batch.submissions] == [("t1", 10), ("t2", 10), ("t3", None)]
    # Outside 0..10 or not a number: skipped (and read again every run), the column named.
    assert [(s.ref, s.reason, s.role, s.example) for s in batch.skipped] == [
        ("row 5", "bad_nps", "nps", "11"),
        ("row 6", "bad_nps", "nps", "maybe"),
    ]
    assert batch.columns["nps"] == NPS_TITLE
    # A row without an NPS answer keeps the identity it had before NPS was read.
    third = batch.submissions[2]
    assert third.fingerprint == submission_identity(third.submitted_at, "t3", 4, "", "", "")
    first = batch.submissions[0]
    assert first.fingerprint != submission_identity(first.submitted_at, "t1", 5, "", "", "")


def test_the_forms_api_reads_the_nps_question(fake_google, google_session):
    def answer(question: str, value: str) -> dict:
        return {"questionId": question, "textAnswers": {"answers": [{"value": value}]}}

    fake_google.add_form(
        "form-1",
        [
            {
                "responseId": "ACYDBN1",
                "createTime": "2026-11-18T10:00:00Z",
                "lastSubmittedTime": "2026-11-18T10:00:00Z",
                "answers": {
                    "aa11": answer("aa11", "5"),
                    "bb22": answer("bb22", "tok"),
                    "cc33": answer("cc33", "9"),
                },
            }
        ],
    )
    source = FormsApiResults(
        FormsApi(google_session),
        "form-1",
        question_ids={"rating": "aa11", "token": "bb22", "nps": "cc33"},
        page_size=10,
        overlap_seconds=0,
        ratings=SCALE,
    )
    [submission] = source.fetch(set(), None).submissions
    assert (submission.rating, submission.nps) == (5, 9)


def test_nps_is_stored_with_the_answer_and_its_history_and_reported(kit):
    header = [*EN_HEADER, NPS_TITLE]
    rows = [header]
    for n, (rating, nps) in enumerate([(5, 10), (5, 9), (4, 8), (2, 3), (5, "")]):
        token = kit.survey(f"T-{n}", "7", "Anna Petrova")
        rows.append([T0 + timedelta(minutes=n), rating, "", "", "", token, nps])
    changed = kit.survey("T-9", "8", "Boris Ivanov")
    rows.append([T0, 4, "", "", "", changed, 6])
    rows.append([T0 + timedelta(hours=1), 5, "", "", "", changed, 10])  # changed their mind
    kit.responses(rows)
    config = kit.config(results={"columns": {"nps": [NPS_TITLE]}})
    assert kit.run(config).status == "ok"

    stored = {r.survey_key[-4:]: r.nps for r in kit.rows(answers)}
    assert sorted(stored.values(), key=str) == sorted([10, 9, 8, 3, None, 10], key=str)
    assert [r.nps for r in kit.rows(answer_history)] == [6]
    board = leaderboard(kit.sheet("Summary"))
    anna = board["Anna Petrova"]
    # 4 NPS answers: promoters 10, 9; passive 8; detractor 3 → (2 − 1) / 4 = +25.
    assert (anna["NPS"], anna["NPS answers"]) == (25.0, 4)
    assert anna["NPS 95% low"] < 25 < anna["NPS 95% high"]
    assert board["All agents"]["NPS answers"] == 5


def test_answers_stored_before_the_question_was_configured_take_their_nps(kit):
    rows = [[*EN_HEADER, NPS_TITLE]]
    for n in range(3):
        token = kit.survey(f"T-{n}", "7", "Anna Petrova")
        rows.append([T0 + timedelta(minutes=n), 5, "", "", "", token, 10 - n])
    kit.responses(rows)
    assert kit.run().status == "ok"  # results.columns.nps not set: no NPS read
    assert [r.nps for r in kit.rows(answers)] == [None, None, None]
    assert "NPS" not in kit.sheet("Summary")[3]

    again = kit.run(kit.config(results={"columns": {"nps": [NPS_TITLE]}}))
    assert again.status == "ok" and (again.new, again.edited_in_place) == (0, 0)
    assert [r.nps for r in kit.rows(answers)] == [10, 9, 8]
    assert kit.rows(answer_history) == []  # the same answers, not edits


def test_migration_0005_adds_the_column_and_goes_back(database_url):
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, "0004")
        assert "nps" not in {c["name"] for c in sa.inspect(engine).get_columns("answers")}
        migrate.upgrade(engine)
        for table in ("answers", "answer_history"):
            assert "nps" in {c["name"] for c in sa.inspect(engine).get_columns(table)}
        assert migrate.downgrade(engine, "0004") == "0004"
        assert "nps" not in {c["name"] for c in sa.inspect(engine).get_columns("answer_history")}
    finally:
        engine.dispose()
