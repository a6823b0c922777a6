"""What a Forms API response holds never fails a run: a responseId the database cannot hold
is stored cleaned, a lastSubmittedTime that is not a time is a skipped row, and a time far in
the future does not hold the watermark there (nor does one stored by an earlier version). A
listing whose page tokens go round in a circle fails the run, named (it never ended)."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.db.schema import sync_state
from csat_hook.devtools import forms_model
from csat_hook.sync import store
from csat_hook.sync.sources.forms_api import FormsApiResults
from csat_hook.sync.values import RatingScale
from tests.sync.test_forms_api import RATING
from tests.sync.test_forms_api import TOKEN
from tests.sync.test_forms_api import form_response
from tests.sync.test_forms_api import stamp

FORM = "f"
KEY = f"forms_api:{FORM}"


def forms_config(kit) -> Any:
    return kit.config(
        results={
            "source": "forms_api",
            "forms_api": {"form_id": FORM, "question_ids": {"rating": RATING, "token": TOKEN}},
            "min_skipped_rows": 100,  # the skips are judged below, not a data_error
        },
        output={"gsheets": {"enabled": False}},
    )


def watermark(kit) -> Any:
    with kit.engine.connect() as conn:
        return store.get_watermark(conn, KEY)


def test_response_ids_the_database_cannot_hold_are_stored_cleaned(kit):
    ids = {"ACYD\x00NUL": "response ACYDNUL", "ACYD\ud800x": "response ACYD\ufffdx"}
    ids["A" * 300] = ("response " + "A" * 300)[:191]
    responses = []
    for n, rid in enumerate(ids):
        response = form_response(n, stamp(kit.now - timedelta(minutes=n)), "5", "")
        response["answers"][TOKEN]["textAnswers"]["answers"][0]["value"] = kit.survey(
            f"T-{n}", "7", "Anna Petrova"
        )
        response["responseId"] = rid
        responses.append(response)
    kit.fake.add_form(FORM, responses, check=False)
    config = forms_config(kit)
    first = kit.run(config)
    assert (first.status, first.new) == ("ok", 3), first.error
    stored = {r.source_ref for r in kit.rows(answers)}
    assert stored == set(ids.values())
    # Read again in full: each is the stored answer itself, not an edit of it.
    again = kit.run(config, full=True)
    assert (again.status, again.new, again.updated, again.unchanged) == ("ok", 0, 0, 3)


@pytest.mark.parametrize(
    "when", ["2026-02-30T10:00:00Z", "2026-13-01T00:00:00Z", "0000-01-01T00:00:00Z"]
)
def test_an_unreadable_submission_time_is_a_skipped_row(kit, when):
    good, bad = kit.survey("T-1", "7", "Anna Petrova"), kit.survey("T-2", "7", "Anna Petrova")
    odd = form_response(2, when, "4", bad)
    kit.fake.add_form(FORM, [form_response(1, stamp(kit.now), "5", good), odd], check=False)
    config = forms_config(kit)
    for _ in range(2):
        summary = kit.run(config, full=True)
        assert summary.status == "ok", summary.error
        assert summary.skipped == {"bad_timestamp": 1}
        assert [r.source_ref for r in kit.rows(answers)] == ["response ACYDBNj000001"]
        assert [(r.source_ref, r.reason) for r in kit.rows(sync_skipped_rows)] == [
            ("response ACYDBNj000002", "bad_timestamp")
        ]
    assert watermark(kit) == kit.now  # the readable response's time


class ListedResponses:
    """A FormsApi that lists the given responses (shapes the fake, which holds Google's
    Zulu times only, cannot serve)."""

    def __init__(self, responses: list[dict[str, Any]]) -> None:
        self.responses = responses

    def list_responses(self, form_id: str, *, since: Any, page_size: int) -> Any:
        return iter(self.responses)


@pytest.mark.parametrize(
    ("when", "reason"),
    [
        ("9999-12-31T23:59:59-05:00", "bad_timestamp"),  # year 10000 in UTC
        ("0001-01-01T00:00:00+05:00", "bad_timestamp"),  # before year 1 in UTC
        ("2026-11-20T12:00:00+03:60", "bad_timestamp"),  # was read as +04:00
        ("yesterday", "bad_timestamp"),
        (17, "bad_timestamp"),
        (None, "missing_timestamp"),
    ],
)
def test_the_source_skips_a_response_whose_time_is_not_one(when, reason):
    odd = form_response(2, "", "4", "t2")
    odd["lastSubmittedTime"] = odd["createTime"] = when
    good = form_response(1, "2026-11-20T12:00:00Z", "5", "t1")
    source = FormsApiResults(
        ListedResponses([good, odd]),  # type: ignore[arg-type]
        FORM,
        question_ids={"rating": RATING, "token": TOKEN},
        page_size=5000,
        overlap_seconds=3600,
        ratings=RatingScale(1, 5, {}),
    )
    batch = source.fetch(set(), None)
    assert [s.ref for s in batch.submissions] == ["response ACYDBNj000001"]
    assert [(s.ref, s.reason) for s in batch.skipped] == [("response ACYDBNj000002", reason)]
    assert batch.watermark == datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_a_far_future_submission_time_does_not_hold_the_watermark(kit):
    early, later = kit.survey("T-1", "7", "Anna Petrova"), kit.survey("T-2", "7", "Anna Petrova")
    kit.fake.add_form(FORM, [form_response(1, "9999-12-31T23:59:59Z", "5", early)], check=False)
    config = forms_config(kit)
    first = kit.run(config)
    # Skipped (no answer is made in 9999: test_edge_timestamps), and it holds no watermark.
    assert (first.status, first.new, first.skipped) == ("ok", 0, {"implausible_timestamp": 1})
    assert watermark(kit) == kit.now + store.WATERMARK_SKEW
    kit.now += timedelta(hours=1)
    kit.fake.submit_response(FORM, form_response(2, stamp(kit.now), "4", later))
    second = kit.run(config)
    assert (second.status, second.new) == ("ok", 1), second.error
    assert second.skipped == {"implausible_timestamp": 1}  # the 9999 one was read again
    assert watermark(kit) == kit.now + store.WATERMARK_SKEW


def test_a_far_future_watermark_stored_before_heals(kit):
    early, later = kit.survey("T-1", "7", "Anna Petrova"), kit.survey("T-2", "7", "Anna Petrova")
    kit.fake.add_form(FORM, [form_response(1, stamp(kit.now), "5", early)], check=False)
    config = forms_config(kit)
    assert kit.run(config).new == 1
    # What an earlier version stored from a response dated 9999 (since deleted from the form).
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(sync_state)
            .where(sync_state.c.source == KEY)
            .values(watermark=kit.now.replace(year=9999))
        )
    kit.now += timedelta(minutes=10)
    answered = kit.now - timedelta(minutes=2)
    kit.fake.submit_response(FORM, form_response(2, stamp(answered), "4", later))
    healed = kit.run(config)
    assert (healed.status, healed.new, healed.unchanged) == ("ok", 1, 1), healed.error
    assert watermark(kit) == answered


def _paging_back(monkeypatch: pytest.MonkeyPatch, tokens: list[str]) -> None:
    """The fake lists the first page (pageToken ignored) with ``tokens[n]`` as the
    ``nextPageToken`` of the n-th request; once they run out, no token (the last page)."""
    original = forms_model.Form.list
    served = iter(tokens)

    def listing(self: forms_model.Form, query: dict[str, list[str]]) -> Any:
        first = {name: value for name, value in query.items() if name != "pageToken"}
        body = json.loads(original(self, first))
        body.pop("nextPageToken", None)
        token = next(served, None)
        if token is not None:
            body["nextPageToken"] = token
        return body

    monkeypatch.setattr(forms_model.Form, "list", listing)


@pytest.mark.parametrize(
    "tokens",
    [
        ["same"] * 50,  # the same token returned for the page it asked for
        ["one", "two"] * 25,  # a cycle of two pages
    ],
)
def test_a_page_token_given_again_fails_the_run_instead_of_paging_on(kit, monkeypatch, tokens):
    """Paging stopped only at a page without a token: a token handed back again (a cycle) was
    requested again and again, its responses read each time, the run never ending (and with
    an end, "ok" over a read that had not met the rest of the form)."""
    surveys = [kit.survey(f"T-{n}", "7", "Anna Petrova") for n in range(3)]
    made = [form_response(n, stamp(kit.now), "5", ref) for n, ref in enumerate(surveys)]
    kit.fake.add_form(FORM, made, check=False)
    _paging_back(monkeypatch, tokens)
    summary = kit.run(forms_config(kit))
    assert summary.status == "failed"
    assert "nextPageToken" in (summary.error or "")
    assert kit.fake.count("forms_read") <= len(set(tokens)) + 1
    assert kit.rows(answers) == []


def test_a_rating_question_gone_from_the_responses_names_the_forms_setting(kit):
    """The rating question deleted (or made again, under a new questionId): every response
    after it lacks the configured question. The run's fix named ``results.columns.rating``,
    which the Forms API source does not read."""
    surveys = [kit.survey(f"T-{n}", "7", "Anna Petrova") for n in range(5)]
    made = [form_response(n, stamp(kit.now), "5", ref) for n, ref in enumerate(surveys)]
    for response in made[1:]:
        del response["answers"][RATING]
    kit.fake.add_form(FORM, made, check=False)
    summary = kit.run(_judged(kit))
    assert (summary.status, summary.skipped) == ("data_error", {"missing_rating": 4})
    error = summary.error or ""
    assert "results.forms_api.question_ids.rating" in error
    assert "results.columns" not in error


def test_a_token_question_made_again_names_the_forms_setting(kit):
    """The reference question made again: responses carry it under a new questionId, the
    configured one is empty, so every answer is unverified as missing. The fix named
    ``results.columns.token``, which the Forms API source does not read."""
    surveys = [kit.survey(f"T-{n}", "7", "Anna Petrova") for n in range(5)]
    made = [
        form_response(n, stamp(kit.now - timedelta(minutes=n)), "5", ref)
        for n, ref in enumerate(surveys)
    ]
    for response in made:
        response["answers"]["dd44"] = response["answers"].pop(TOKEN)
    kit.fake.add_form(FORM, made, check=False)
    summary = kit.run(_judged(kit))
    assert (summary.status, summary.unverified) == ("data_error", {"missing": 5})
    error = summary.error or ""
    assert "results.forms_api.question_ids.token" in error
    assert "results.columns" not in error


def _judged(kit) -> Any:
    """The Forms configuration with the default thresholds of skipped and unverified rows."""
    return kit.config(
        results={
            "source": "forms_api",
            "forms_api": {"form_id": FORM, "question_ids": {"rating": RATING, "token": TOKEN}},
        },
        output={"gsheets": {"enabled": False}},
    )


# --- response shapes Google never sends (a proxy's or a fake's) ------------------------------


def _answer(response: dict[str, Any], qid: str) -> dict[str, Any]:
    answer: dict[str, Any] = response["answers"][qid]
    return answer


def _set_value(value: Any) -> Any:
    return lambda r: _answer(r, RATING)["textAnswers"]["answers"][0].__setitem__("value", value)


TEXTS = f"answers.{RATING}.textAnswers"


@pytest.mark.parametrize(
    ("change", "field", "detail"),
    [
        (lambda r: r.__setitem__("answers", [1, 2]), "answers", "not an object"),
        (lambda r: r["answers"].__setitem__(RATING, "5"), f"answers.{RATING}", "not an object"),
        (
            lambda r: _answer(r, RATING).__setitem__("textAnswers", ["5"]),
            TEXTS,
            "not an object",
        ),
        (
            lambda r: _answer(r, RATING)["textAnswers"].__setitem__("answers", {"value": "5"}),
            f"{TEXTS}.answers",
            "not a list",
        ),
        (_set_value(5), f"{TEXTS}.answers[0].value", "a number, not text"),
        (_set_value(4.5), f"{TEXTS}.answers[0].value", "a number, not text"),
        (_set_value(None), f"{TEXTS}.answers[0].value", "null, not text"),
        (_set_value({"a": 1}), f"{TEXTS}.answers[0].value", "an object, not text"),
        (_set_value(True), f"{TEXTS}.answers[0].value", "true/false, not text"),
        (
            lambda r: r["answers"].__setitem__(RATING, {"questionId": RATING, "grade": {}}),
            f"answers.{RATING}",
            "no textAnswers",
        ),
        (lambda r: r.__setitem__("responseId", 12), "responseId", "a number, not text"),
    ],
)
def test_a_response_in_a_shape_google_never_sends_is_a_skipped_row_naming_the_field(
    change, field, detail
):
    odd = form_response(2, "2026-11-20T12:01:00Z", "4", "t2")
    change(odd)
    good = form_response(1, "2026-11-20T12:00:00Z", "5", "t1")
    after = form_response(3, "2026-11-20T12:02:00Z", "3", "t3")
    batch = _listed([good, odd, after]).fetch(set(), None)
    # The rest of the page is read; the odd response is a skipped row, read again every run.
    assert [s.ref for s in batch.submissions] == [
        "response ACYDBNj000001",
        "response ACYDBNj000003",
    ]
    [skipped] = batch.skipped
    assert skipped.reason == "malformed_response"
    assert skipped.ref in ("response ACYDBNj000002", "response #2 of the listing")
    assert field in skipped.detail and detail in skipped.detail, skipped.detail
    assert batch.rows_read == 3


@pytest.mark.parametrize(
    ("change", "reason", "detail"),
    [
        (lambda r: r.pop("lastSubmittedTime"), "missing_timestamp", "no lastSubmittedTime"),
        (lambda r: r.__setitem__("lastSubmittedTime", "2026-11-20"), "bad_timestamp", ""),
        (lambda r: r.__setitem__("lastSubmittedTime", "2026-11-20T12:01:00"), "bad_timestamp", ""),
        (lambda r: r.__setitem__("lastSubmittedTime", "20261120T120100Z"), "bad_timestamp", ""),
        (
            lambda r: r.__setitem__("lastSubmittedTime", "2026-11-20 12:01:00Z"),
            "bad_timestamp",
            "",
        ),
    ],
)
def test_a_response_without_an_rfc3339_last_submitted_time_is_skipped(change, reason, detail):
    """Read as midnight, as UTC, or from createTime (the first submission of an edited
    response), it was credited at a time Google never gave."""
    odd = form_response(2, "2026-11-20T12:01:00Z", "4", "t2")
    change(odd)
    batch = _listed([form_response(1, "2026-11-20T12:00:00Z", "5", "t1"), odd]).fetch(set(), None)
    assert [s.ref for s in batch.submissions] == ["response ACYDBNj000001"]
    assert [(s.ref, s.reason) for s in batch.skipped] == [("response ACYDBNj000002", reason)]
    assert detail in batch.skipped[0].detail
    assert batch.watermark == datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_an_offset_time_is_rfc3339_and_read_as_its_instant():
    odd = form_response(2, "2026-11-20T15:01:00.5+03:00", "4", "t2")
    batch = _listed([odd]).fetch(set(), None)
    assert [s.submitted_at for s in batch.submissions] == [
        datetime(2026, 11, 20, 12, 1, 0, 500000, tzinfo=UTC)
    ]


@pytest.mark.parametrize("rid", [None, "", {"id": "x"}])
def test_a_response_without_a_response_id_is_named_by_its_place_in_the_listing(rid):
    odd = form_response(2, "2026-11-20T12:01:00Z", "4", "t2")
    if rid is None:
        del odd["responseId"]
    else:
        odd["responseId"] = rid
    batch = _listed([form_response(1, "2026-11-20T12:00:00Z", "5", "t1"), odd]).fetch(set(), None)
    assert [s.ref for s in batch.submissions] == ["response ACYDBNj000001"]
    [skipped] = batch.skipped
    assert (skipped.ref, skipped.reason) == ("response #2 of the listing", "malformed_response")
    assert "responseId" in skipped.detail


@pytest.mark.parametrize("item", ["x", 5, None, [1]])
def test_a_listed_response_that_is_not_an_object_is_skipped(item):
    batch = _listed([form_response(1, "2026-11-20T12:00:00Z", "5", "t1"), item]).fetch(set(), None)
    assert [s.ref for s in batch.submissions] == ["response ACYDBNj000001"]
    assert [(s.ref, s.reason) for s in batch.skipped] == [
        ("response #2 of the listing", "malformed_response")
    ]
    assert "not a JSON object" in batch.skipped[0].detail


def test_a_response_id_listed_twice_with_other_answers_at_one_time_is_skipped_both_times():
    """Which of the two is the response is unclear: crediting either (the one listed last won)
    was a guess. The same response listed twice alike is one row; listed again with a later
    lastSubmittedTime it is an edit (module doc), read as a later submission."""
    first = form_response(1, "2026-11-20T12:00:00Z", "5", "t1")
    other = form_response(1, "2026-11-20T12:00:00Z", "1", "t1")
    alike = form_response(2, "2026-11-20T12:01:00Z", "4", "t2")
    edited = form_response(3, "2026-11-20T12:02:00Z", "4", "t3")
    later = form_response(3, "2026-11-20T12:05:00Z", "2", "t3")
    listed = [first, alike, edited, json.loads(json.dumps(alike)), other, later]
    batch = _listed(listed).fetch(set(), None)
    assert [(s.ref, s.rating) for s in batch.submissions] == [
        ("response ACYDBNj000002", 4),
        ("response ACYDBNj000003", 4),
        ("response ACYDBNj000003", 2),
    ]
    assert [(s.ref, s.reason) for s in batch.skipped] == [
        ("response ACYDBNj000001", "duplicate_response"),
        ("response ACYDBNj000001", "duplicate_response"),
    ]
    assert "listed 2 times" in batch.skipped[0].detail


def _listed(responses: list[Any]) -> FormsApiResults:
    return FormsApiResults(
        ListedResponses(responses),  # type: ignore[arg-type]
        FORM,
        question_ids={"rating": RATING, "token": TOKEN},
        page_size=5000,
        overlap_seconds=3600,
        ratings=RatingScale(1, 5, {}),
    )


def test_malformed_responses_in_a_run_are_named_and_the_rest_credited(kit):
    """What the operator sees: the readable responses credited, each malformed one listed by
    response and field, and a run of many of them a data_error naming the listing."""
    good = form_response(1, stamp(kit.now), "5", kit.survey("T-1", "7", "Anna Petrova"))
    odd = []
    for n in range(2, 6):
        response = form_response(n, stamp(kit.now), "4", kit.survey(f"T-{n}", "7", "Anna Petrova"))
        _answer(response, RATING)["textAnswers"]["answers"][0]["value"] = n
        odd.append(response)
    kit.fake.add_form(FORM, [good, *odd], check=False)
    summary = kit.run(_judged(kit))
    assert (summary.status, summary.new, summary.skipped) == (
        "data_error",
        1,
        {"malformed_response": 4},
    ), summary.error
    assert summary.skipped_rows[0]["row"] == "response ACYDBNj000002"
    assert f"answers.{RATING}.textAnswers.answers[0].value" in summary.skipped_rows[0]["detail"]
    error = summary.error or ""
    assert "malformed_response" in error and "results.forms_api.question_ids.rating" in error
    assert "results.columns" not in error
    assert [r.source_ref for r in kit.rows(answers)] == ["response ACYDBNj000001"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda body: body.__setitem__("responses", 5), "responses"),
        (lambda body: body.__setitem__("responses", {"a": 1}), "responses"),
        (lambda body: body.__setitem__("nextPageToken", {"t": 1}), "nextPageToken"),
        (lambda body: body.__setitem__("nextPageToken", ["t"]), "nextPageToken"),
    ],
)
def test_a_page_in_a_shape_google_never_sends_fails_the_run_named(kit, monkeypatch, change, named):
    """Its responses cannot be told apart (a number, an object's keys read as responses) nor
    the listing followed: the run fails as a Google error naming the field, storing nothing
    (it was an internal error, or the keys read as malformed responses)."""
    made = [form_response(1, stamp(kit.now), "5", kit.survey("T-1", "7", "Anna Petrova"))]
    kit.fake.add_form(FORM, made, check=False)
    original = forms_model.Form.list

    def listing(self: forms_model.Form, query: dict[str, list[str]]) -> Any:
        body = json.loads(original(self, query))
        change(body)
        return body

    monkeypatch.setattr(forms_model.Form, "list", listing)
    summary = kit.run(forms_config(kit))
    assert summary.status == "failed", summary.error
    assert f"forms.responses.list: page 1's {named}" in (summary.error or "")
    assert kit.rows(answers) == []


def test_a_file_upload_question_named_as_the_rating_is_not_blamed_on_a_proxy():
    # Google lists a file upload question's answer as fileUploadAnswers alone: a questionId
    # of the wrong question, not a listing Google never sends; the detail said "a proxy or a
    # fake changed the listing?", sending the operator to look for one.
    odd = form_response(2, "2026-11-20T12:01:00Z", "4", "t2")
    odd["answers"][RATING] = {
        "questionId": RATING,
        "fileUploadAnswers": {"answers": [{"fileId": "x", "fileName": "a.png"}]},
    }
    batch = _listed([odd]).fetch(set(), None)
    [skipped] = batch.skipped
    assert skipped.reason == "malformed_response"
    assert "proxy" not in skipped.detail, skipped.detail
    assert "a file upload question's answer" in skipped.detail, skipped.detail
    assert "question_ids.rating" in skipped.detail, skipped.detail


def test_a_checkbox_question_named_as_the_rating_with_two_options_ticked_is_no_rating():
    # A checkbox question lists each option ticked as a separate text answer; joined with
    # ", " the ticks "5 - Excellent" and "1 - Awful" read as a rating of 5 (a label, then
    # more text), credited where the respondent gave two scores (ticked the other way round,
    # in the form's order, 1). One tick is a rating; a comment's several answers are joined.
    two = form_response(2, "2026-11-20T12:01:00Z", "5 - Excellent", "t2")
    _answer(two, RATING)["textAnswers"]["answers"].append({"value": "1 - Awful"})
    one = form_response(3, "2026-11-20T12:02:00Z", "4 - Good", "t3")
    batch = _listed([two, one]).fetch(set(), None)
    assert [(s.ref, s.rating) for s in batch.submissions] == [("response ACYDBNj000003", 4)]
    [skipped] = batch.skipped
    assert (skipped.ref, skipped.reason) == ("response ACYDBNj000002", "malformed_response")
    assert f"answers.{RATING}.textAnswers.answers (question_ids.rating) lists 2 answers" in (
        skipped.detail
    ), skipped.detail
    assert "proxy" not in skipped.detail and "Excellent" not in skipped.detail


def test_several_answers_to_the_comment_question_are_one_comment():
    ticked = form_response(2, "2026-11-20T12:01:00Z", "5", "t2")
    ticked["answers"]["dd44"] = {
        "questionId": "dd44",
        "textAnswers": {"answers": [{"value": "Fast"}, {"value": "Polite"}]},
    }
    source = FormsApiResults(
        ListedResponses([ticked]),  # type: ignore[arg-type]
        FORM,
        question_ids={"rating": RATING, "token": TOKEN, "comment": "dd44"},
        page_size=5000,
        overlap_seconds=3600,
        ratings=RatingScale(1, 5, {}),
    )
    [submission] = source.fetch(set(), None).submissions
    assert submission.comment == "Fast, Polite"
