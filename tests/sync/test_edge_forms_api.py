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
    assert (first.status, first.new) == ("ok", 1), first.error
    assert watermark(kit) == kit.now + store.WATERMARK_SKEW
    kit.now += timedelta(hours=1)
    kit.fake.submit_response(FORM, form_response(2, stamp(kit.now), "4", later))
    second = kit.run(config)
    assert (second.status, second.new) == ("ok", 1), second.error
    assert watermark(kit) == kit.now + store.WATERMARK_SKEW  # the 9999 one was read again


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
