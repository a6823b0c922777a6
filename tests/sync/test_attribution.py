"""Crediting answers through the whole sync: the signed reference decides, never the fields."""

from __future__ import annotations

import string
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from csat_hook import tokens
from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.db.schema import unverified_answers
from csat_hook.sync.attribution import Credited
from csat_hook.sync.attribution import Unverified
from csat_hook.sync.attribution import check_reference
from csat_hook.sync.attribution import fields_edited
from csat_hook.sync.records import Submission
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SECRET
from tests.sync.conftest import SHEET_ID
from tests.sync.conftest import leaderboard
from tests.sync.conftest import local

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def test_edited_fields_are_ignored_and_bad_references_are_never_credited(kit):
    anna = kit.survey("T-1", "7", "Anna Petrova", team="L1")
    boris = kit.survey("T-2", "8", "Boris Ivanov", team="L2")
    forged = kit.token("T-3", "7", secret="somebody-elses-secret-123")
    tampered = anna[:-2] + ("AA" if not anna.endswith("AA") else "BB")
    kit.responses(
        [
            EN_HEADER,
            # The respondent overwrote the agent and ticket fields: credited to Anna, T-1 anyway.
            [at(1), 2, "meh", "Boris Ivanov", "T-2", anna],
            [at(2), 5, "great", "Boris Ivanov", "T-2", boris],
            [at(3), 5, "forged", "Anna Petrova", "T-3", forged],
            [at(4), 5, "tampered", "Anna Petrova", "T-1", tampered],
            [at(5), 5, "no reference", "Anna Petrova", "T-9", ""],
            [at(6), 5, "junk reference", "Anna Petrova", "T-9", "hello"],
        ]
    )
    summary = kit.run()

    assert summary.status == "ok", summary.error
    assert (summary.new, summary.edited_fields) == (2, 1)
    assert summary.unverified == {"forged": 2, "missing": 1, "malformed": 1}
    credited = {row.token: row for row in kit.rows(answers)}
    assert set(credited) == {anna, boris}
    assert (credited[anna].agent_key, credited[anna].dialog_id, credited[anna].rating) == (
        "7",
        "T-1",
        2,
    )
    assert credited[anna].field_agent == "Boris Ivanov" and credited[anna].fields_edited
    assert not credited[boris].fields_edited
    kept_apart = sorted((r.reason, r.comment, r.source_ref) for r in kit.rows(unverified_answers))
    assert kept_apart == [
        ("forged", "forged", "row 4"),
        ("forged", "tampered", "row 5"),
        ("malformed", "junk reference", "row 7"),
        ("missing", "no reference", "row 6"),
    ]
    assert kit.rows(unverified_answers)[0].source_row["Reference"]  # the row as read
    # In the report: Anna's tab has the edited answer; nothing forged reached an agent.
    anna_tab = kit.sheet("Anna Petrova (7)")
    assert [[local(r[0]), *r[1:4]] for r in anna_tab[1:]] == [["2026-11-18 10:00", "T-1", 2, "meh"]]
    every_agent_cell = [
        c for t in kit.fake.titles(SHEET_ID) if t.endswith(")") for row in kit.sheet(t) for c in row
    ]
    assert "forged" not in every_agent_cell and "tampered" not in every_agent_cell
    unverified_tab = kit.sheet("Unverified")
    assert unverified_tab[0][0].startswith("Not counted for anyone")
    assert unverified_tab[1][4] == "Agent field (not verified)"
    assert {row[1] for row in unverified_tab[2:]} == {"forged", "missing", "malformed"}


def test_latest_submission_wins_and_earlier_ones_are_history(kit):
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses(
        [
            EN_HEADER,
            [at(5), 4, "second thoughts", "", "", token],
            [at(1), 1, "first go", "", "", token],
            [at(5), 4, "second thoughts", "", "", token],  # a double-click: the same submission
        ]
    )
    first = kit.run()
    assert (first.new, first.updated, first.history_only, first.unchanged) == (1, 0, 1, 1)
    [answer] = kit.rows(answers)
    assert (answer.rating, answer.comment, answer.submitted_at) == (4, "second thoughts", at(5))
    assert [r.rating for r in kit.rows(answer_history)] == [1]  # the earlier submission

    # A later submission replaces it; an older one that shows up late only adds history.
    kit.fake.append_rows(
        SHEET_ID,
        "Form Responses 1",
        [[at(9), 5, "all good now", "", "", token], [at(0), 3, "very first", "", "", token]],
    )
    second = kit.run()
    assert (second.new, second.updated, second.history_only) == (0, 1, 1)
    [answer] = kit.rows(answers)
    assert (answer.rating, answer.comment) == (5, "all good now")
    # The replaced answer (4) joins the history, and so does the late older one (3).
    assert sorted(r.rating for r in kit.rows(answer_history)) == [1, 3, 4]


def test_an_answer_edited_in_place_updates_the_rating(kit):
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses([EN_HEADER, [at(1), 2, "bad", "", "", token]])
    kit.run()
    # Forms with "Allow response editing" rewrite the row: new timestamp, new answers.
    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 1, 0, at(30))
    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 1, 1, 5)
    summary = kit.run()
    assert (summary.new, summary.updated) == (0, 1)
    assert [a.rating for a in kit.rows(answers)] == [5]
    assert [r.rating for r in kit.rows(answer_history)] == [2]


def snapshot(kit) -> tuple:
    tables = tuple(
        tuple(tuple(v for k, v in r._mapping.items() if k not in ("id",)) for r in kit.rows(t))
        for t in (answers, answer_history, unverified_answers, sync_skipped_rows)
    )
    sheets = {t: kit.sheet(t) for t in kit.fake.titles(SHEET_ID)}
    return tables, sheets


def test_a_second_run_changes_nothing(kit):
    anna = kit.survey("T-1", "7", "Anna Petrova", team="L1")
    boris = kit.survey("T-2", "8", "Boris Ivanov", team="L2")
    kit.responses(
        [
            EN_HEADER,
            [at(1), 5, "good", "", "", anna],
            [at(2), "nope", "", "", "", boris],
            [at(3), 4, "=1+1", "", "", boris],
            [at(4), 3, "", "", "", "forged.x"],
        ]
    )
    first = kit.run()
    before = snapshot(kit)
    kit.fake.reset_requests()
    kit.now += timedelta(minutes=5)
    second = kit.run()

    assert first.status == second.status == "ok"
    # The unreadable rating is read again (a fixed config would credit it), still skipped.
    assert (second.new, second.updated, second.unchanged) == (0, 0, 3)
    assert second.unverified == {} and second.skipped == {"bad_rating": 1}
    assert second.totals == first.totals
    assert snapshot(kit) == before
    # Nothing new: the metadata and the responses read; the report is the one the sheet
    # holds, so nothing is written.
    assert (kit.fake.count("sheets_read"), kit.fake.count("sheets_write")) == (2, 0)


def test_agent_names_come_from_surveys_then_the_static_map_then_the_key(kit):
    recorded = kit.survey("T-1", "7", "Anna Petrova")
    by_email = kit.survey("T-2", None, "Eve Adams", agent_email="Eve@Example.com")
    static = kit.token("T-3", "42")  # no survey row; the helpdesk's agents: map knows 42
    unknown = kit.token("T-4", "99")  # known nowhere: the key is all there is
    kit.responses(
        [EN_HEADER]
        + [
            [at(i), 5, "", "Fake Name", "", t]
            for i, t in enumerate([recorded, by_email, static, unknown])
        ]
    )
    summary = kit.run()
    assert summary.status == "ok", summary.error
    titles = kit.fake.titles(SHEET_ID)
    assert {"Anna Petrova (7)", "Eve Adams (eve@example.com)", "Static Sam (42)", "99"} <= set(
        titles
    )
    assert not any("Fake Name" in t for t in titles)


# --- the agent field when the agent's name was unknown at send time (issue #10) --------------


def _credited(field_agent: str) -> Any:
    ref = tokens.SurveyRef("desk", "T-1", "7", T0, "n1")
    submission = Submission("fp", "row 2", T0, 5, "", "tok", field_agent, "T-1")
    return Credited(submission, ref, "tok", "survey-key")


@pytest.mark.parametrize(
    ("field", "survey_name", "edited"),
    [
        ("Support team", None, False),  # survey.reply.agent_label_without_name, as pre-filled
        ("Служба поддержки", None, False),
        ("boris@example.com", None, True),  # a key that is not the agent's
        ("anna@example.com", None, False),
        ("Support team", "Anna Petrova", True),  # a name was known, and this is not it
        ("Anna Petrova", "Anna Petrova", False),
    ],
)
def test_the_stand_in_for_an_unknown_name_is_not_an_edit(field, survey_name, edited):
    survey = SimpleNamespace(agent_id="7", agent_name=survey_name, agent_email="anna@example.com")
    assert fields_edited(_credited(field), survey, {}) is edited


# --- one survey, one rating, whatever the customer types ----------------------------------------

B64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def survey_with_slack(kit, dialog_prefix: str, remainder: int = 2) -> str:
    """A sent survey whose reference payload is ``remainder`` mod 4 long (2: 16 spellings of
    the same bytes for a lenient decoder, 3: 4)."""
    for size in range(12):
        token = kit.token(dialog_prefix + "x" * size, "7")
        if len(token.split(".")[0]) % 4 == remainder:
            return kit.survey(dialog_prefix + "x" * size, "7", "Anna Petrova", team="L1")
    raise AssertionError("no such length")


def other_spellings(token: str) -> list[str]:
    """The same payload bytes with the unused low bits of the last character set."""
    payload, tag = token.split(".")
    slack = {2: 16, 3: 4}[len(payload) % 4]
    first = B64URL.index(payload[-1])
    return [f"{payload[:-1]}{B64URL[i]}.{tag}" for i in range(first + 1, first + slack)]


def agent_summary(kit, name: str) -> dict:
    """The agent's leaderboard row (the last 30 days)."""
    return leaderboard(kit.sheet("Summary"))[name]


def test_one_survey_answered_under_several_spellings_is_one_answer(kit):
    token = survey_with_slack(kit, "S-")
    spellings = other_spellings(token)[:3]
    kit.responses(
        [
            EN_HEADER,
            [at(1), 5, "canonical", "", "", token],
            *([at(2 + i), 1, f"respelled {i}", "", "", s] for i, s in enumerate(spellings)),
            [at(6), 4, "pasted with spaces", "", "", f"  {token} "],
        ]
    )
    summary = kit.run()

    # Three of the run's four rows are malformed: a large share, so the run says so
    # (skips.judge_unverified); what it credited is the point here.
    assert summary.status == "data_error", summary.error
    assert [p["reason"] for p in summary.problems] == ["malformed"]
    # Before: four answers for one survey (CSAT 25 %). Now: one, the latest readable spelling.
    assert summary.unverified == {"malformed": 3}
    [answer] = kit.rows(answers)
    assert (answer.survey_key, answer.rating, answer.comment) == (
        token.split(".")[0],
        4,
        "pasted with spaces",
    )
    assert [r.rating for r in kit.rows(answer_history)] == [5]
    figures = agent_summary(kit, "Anna Petrova")
    assert (figures["Answers"], figures["CSAT"], figures["Surveys sent"]) == (1, 1.0, 1)
    assert figures["Response rate"] == 1.0


def test_an_answer_edited_in_place_becomes_the_credited_one(kit):
    token = kit.survey("T-1", "7", "Anna Petrova")
    other = kit.survey("T-2", "8", "Boris Ivanov")
    kit.responses([EN_HEADER, [at(1), 2, "bad", "", "", token], [at(2), 4, "", "", "", other]])
    kit.run()
    # Someone fixes the rating in the sheet: the same row, the same timestamp.
    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 1, 1, 5)
    summary = kit.run()

    assert (summary.new, summary.updated, summary.edited_in_place) == (0, 1, 1)
    assert summary.warnings == [
        "row 2: rating changed in place (same submission time); the edited answer is "
        "credited, the previous one kept in history"
    ]
    credited = {row.token: row for row in kit.rows(answers)}
    assert (credited[token].rating, credited[token].comment) == (5, "bad")
    assert credited[other].rating == 4
    assert [(r.rating, r.comment) for r in kit.rows(answer_history)] == [(2, "bad")]

    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 1, 2, "bad, then fixed")
    summary = kit.run()
    assert (summary.updated, summary.edited_in_place) == (1, 1)
    assert summary.warnings[0].startswith("row 2: comment changed in place")
    assert {row.token: row.comment for row in kit.rows(answers)}[token] == "bad, then fixed"
    assert [(r.rating, r.comment) for r in kit.rows(answer_history)] == [(2, "bad"), (5, "bad")]

    before = snapshot(kit)
    again = kit.run()
    assert (again.new, again.updated, again.edited_in_place, again.warnings) == (0, 0, 0, [])
    assert snapshot(kit) == before


def test_submissions_in_the_same_instant_the_one_further_down_wins_whatever_the_order(kit):
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses([EN_HEADER, [at(1), 1, "first row", "", "", token]])
    kit.run()
    # A second submission stamped the same second, further down: it wins, as in a fresh run.
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[at(1), 4, "second row", "", "", token]])
    appended = kit.run()
    assert (appended.updated, appended.edited_in_place, appended.warnings) == (1, 0, [])
    assert [a.comment for a in kit.rows(answers)] == ["second row"]
    # The row above is edited in place: it stays history, the row further down stays credited.
    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 1, 1, 2)
    edited_above = kit.run()
    assert (edited_above.updated, edited_above.history_only) == (0, 1)
    assert [(a.rating, a.comment) for a in kit.rows(answers)] == [(4, "second row")]
    assert sorted(r.rating for r in kit.rows(answer_history)) == [1, 2]

    incremental = kit.rows(answers)[0]
    with kit.engine.begin() as conn:
        for table in (answers, answer_history, unverified_answers, sync_skipped_rows):
            conn.execute(table.delete())
    kit.run()  # a fresh run over the same sheet credits the same answer
    fresh = kit.rows(answers)[0]
    assert (fresh.rating, fresh.comment, fresh.source_ref) == (
        incremental.rating,
        incremental.comment,
        incremental.source_ref,
    )


def test_a_stored_token_is_checked_exactly_as_verify_checks_it(monkeypatch):
    """check_reference with the surveys read back (a token exactly as stored skips the
    spelling checks): every outcome is the one without them."""
    secret, old = "current-secret-0123456789", "retired-secret-0123456789"
    stored = [
        tokens.sign(s, tokens.SurveyRef("desk", f"T-{i}", "7", T0, nonce=f"{i:04x}"))
        for i, s in enumerate([secret, old, secret])
    ]
    surveys = {tokens.survey_key(t): SimpleNamespace(token=t) for t in stored}
    first = stored[0]
    candidates = [
        *stored,
        f"  {first}\n",  # whitespace around is not part of the reference
        first[:-1] + ("A" if first[-1] != "A" else "B"),  # the tag's last character
        first[:5] + ("A" if first[5] != "A" else "B") + first[6:],  # a payload character
        first + "=",
        first.replace(".", ".."),
        first[:-1],
        "",
        "junk",
    ]
    for secrets in ([secret], [secret, old], [old]):
        for token in candidates:
            sub = submission(token)
            plain = check_reference(sub, secrets)
            fast = check_reference(sub, secrets, surveys)
            assert fast == plain, (token, secrets)
            if token.strip() != first or secret not in secrets:
                continue
            assert isinstance(fast, Credited) and fast.ref == tokens.verify(first, secrets)
    # The retired secret removed from the configuration: its stored survey is forged.
    assert check_reference(submission(stored[1]), [secret], surveys) == Unverified(
        submission(stored[1]), "forged"
    )
    for token in candidates[4:-2]:  # the edits of a stored token: never credited
        assert check_reference(submission(token), [secret, old], surveys).reason in (
            "forged",
            "malformed",
        )
    # Exactly as stored, the spelling checks are skipped (verify is not called); any other
    # token still goes through verify.
    plain = check_reference(submission(first), [secret])

    def no_verify(*_args: Any) -> None:
        raise AssertionError("verify called")

    monkeypatch.setattr(tokens, "verify", no_verify)
    assert check_reference(submission(first), [secret], surveys) == plain
    with pytest.raises(AssertionError, match="verify called"):
        check_reference(submission(first + "="), [secret], surveys)


def submission(token: str) -> Submission:
    return Submission(
        ref="row 2",
        submitted_at=T0,
        rating=5,
        comment="",
        field_agent="",
        field_ticket="",
        token=token,
        fingerprint="fp",
    )


@pytest.mark.parametrize("kept", [False, True])
def test_a_survey_signed_under_a_secret_no_longer_configured_is_forged(kit, kept):
    """The stored token is exactly the answer's, and still its signature decides."""
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses([EN_HEADER, [at(1), 5, "ok", "Anna Petrova", "T-1", token]])
    rotated = {"secret": "the-next-secret-0123456789"}
    if kept:
        rotated["previous_secrets"] = [SECRET]
    summary = kit.run(kit.config(token=rotated))
    assert summary.status == "ok", summary.error
    if kept:
        assert (summary.new, summary.unverified) == (1, {})
    else:
        assert (summary.new, summary.unverified) == (0, {"forged": 1})


def test_a_double_click_then_an_edit_of_its_upper_row_credits_what_a_fresh_run_would(kit):
    # The same values twice in one second (a double-click) are one submission; the row
    # further down is the one a fresh read credits, so an edit of the row above is history.
    token = kit.survey("T-1", "7", "Anna Petrova")
    twice = [at(1), 4, "", "", "", token]
    kit.responses([EN_HEADER, twice, list(twice)])
    kit.run()
    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 1, 1, 5)  # row 2 edited, row 3 as it was
    edited_above = kit.run()
    assert (edited_above.updated, edited_above.edited_in_place, edited_above.warnings) == (0, 0, [])
    assert [(a.rating, a.source_ref) for a in kit.rows(answers)] == [(4, "row 3")]

    with kit.engine.begin() as conn:
        for table in (answers, answer_history, unverified_answers, sync_skipped_rows):
            conn.execute(table.delete())
    kit.run()  # a fresh run over the same sheet credits the same answer
    assert [(a.rating, a.source_ref) for a in kit.rows(answers)] == [(4, "row 3")]
