"""The Forms API path: the fake accepts only what Google's discovery document accepts, pages
as Google documents, and the forms_api source reads every response once, then only the new
and edited ones, without losing or double-counting an answer."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from csat_hook.db.schema import answer_history
from csat_hook.db.schema import sync_state
from csat_hook.devtools import discovery
from csat_hook.devtools import forms_model
from csat_hook.errors import GoogleApiError
from csat_hook.sync import read_memo
from csat_hook.sync import store
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.sources.forms_api import FormsApiResults
from csat_hook.sync.values import READING_VERSION
from csat_hook.sync.values import RatingScale
from tests.sync.conftest import misread

FORMS = "https://forms.googleapis.com/v1/forms"
RATING, TOKEN, AGENT = "aa11", "bb22", "cc33"
SCALE = RatingScale(1, 5, {})


def stamp(when: datetime, nanos: int = 0) -> str:
    """RFC3339 Zulu as Google writes it (0, 3, 6 or 9 fraction digits)."""
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos:09d}Z" if nanos else f"{text}Z"


def form_response(
    n: int, submitted: str, rating: str, token: str, *, created: str | None = None
) -> dict[str, Any]:
    answers = {RATING: rating, TOKEN: token}
    return {
        "responseId": f"ACYDBNj{n:06d}",
        "createTime": created or submitted,
        "lastSubmittedTime": submitted,
        "answers": {
            qid: {"questionId": qid, "textAnswers": {"answers": [{"value": value}]}}
            for qid, value in answers.items()
        },
    }


def listed(google_session: Any, form_id: str, **params: Any) -> Any:
    return google_session.get(f"{FORMS}/{form_id}/responses", params=params)


# --- the fake against the discovery document ------------------------------------------------


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"pageSiz": "10"}, 'Unknown name "pageSiz"'),
        ({"formId": "f"}, 'Unknown name "formId"'),  # a path parameter, not a query one
        ({"pageSize": "ten"}, "TYPE_INT32"),
        ({"pageSize": str(2**31)}, "TYPE_INT32"),
        ({"pageSize": "-1"}, "negative"),
        ({"prettyPrint": "yes"}, "TYPE_BOOL"),
        ({"alt": "xml"}, "'alt'"),
        ({"$.xgafv": "3"}, "'$.xgafv'"),
        ({"filter": ["timestamp > 2026-11-01T00:00:00Z"] * 2}, "given 2 times"),
        ({"fields": "responses(responseId,rating)"}, "no field 'rating'"),
        ({"filter": "timestamp >= 2026-11-01T00:00:00+03:00"}, "Invalid filter"),
        ({"filter": "timestamp >= 2026-11-01"}, "Invalid filter"),
        ({"filter": "timestamp < 2026-11-01T00:00:00Z"}, "Invalid filter"),
        ({"filter": "createTime >= 2026-11-01T00:00:00Z"}, "Invalid filter"),
        ({"filter": "timestamp >= 2026-11-01T00:00:00.1234567890Z"}, "Invalid filter"),
        ({"filter": "lastSubmittedTime > 2026-11-01T00:00:00Z"}, "Invalid filter"),
        ({"pageToken": "not-a-token"}, "Invalid page token"),
    ],
)
def test_the_fake_refuses_what_google_refuses(fake_google, google_session, params, words):
    fake_google.add_form("f", [form_response(1, stamp(datetime(2026, 11, 2)), "5", "t")])
    answer = listed(google_session, "f", **params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert words in answer.json()["error"]["message"]


def test_the_fake_accepts_every_parameter_the_document_gives_the_method(
    fake_google, google_session
):
    """Read from forms.v1.json, not from a list of ours: the standard parameters too."""
    fake_google.add_form("f", [])
    method = next(m for m in discovery.methods("forms") if m.id.endswith("responses.list"))
    standard = discovery.document("forms")["parameters"]
    example = {"string": "x", "integer": "10", "boolean": "true"}
    good = {"filter": "timestamp >= 2026-11-01T00:00:00.5Z", "fields": "nextPageToken"}
    names = [n for n, spec in method.parameters.items() if spec["location"] == "query"]
    assert {"filter", "pageSize", "pageToken"} <= set(names)
    for name in [*names, *standard]:
        if name in ("pageToken", "callback", "alt"):
            continue  # a token must come from a list; JSONP and other formats are not served
        spec = {**standard, **method.parameters}[name]
        value = good.get(name) or (spec["enum"][0] if "enum" in spec else example[spec["type"]])
        answer = listed(google_session, "f", **{name: value})
        assert answer.status_code == 200, (name, answer.text)


def test_methods_and_bodies_the_document_does_not_have_are_refused(fake_google, google_session):
    fake_google.add_form("f", [])
    assert google_session.post(f"{FORMS}/f/responses", json={}).status_code == 404
    assert google_session.delete(f"{FORMS}/f").status_code == 404
    assert google_session.get(f"{FORMS}/f/answers").status_code == 404
    with_body = google_session.request("GET", f"{FORMS}/f/responses", data=b'{"a": 1}')
    assert with_body.status_code == 400 and "body must be empty" in with_body.text
    assert listed(google_session, "no-such-form").status_code == 404


def test_forms_get_and_every_response_match_the_document_schemas(fake_google, google_session):
    items = [forms_model.question(RATING, "Rating", choices=["1", "2", "3", "4", "5"])]
    items.append(forms_model.question(TOKEN, "Reference"))
    fake_google.add_form(
        "f", [form_response(1, stamp(datetime(2026, 11, 2)), "5", "t")], items=items
    )
    form = google_session.get(f"{FORMS}/f").json()
    assert discovery.validate(form, "Form", api="forms") == []
    questions = [i["questionItem"]["question"]["questionId"] for i in form["items"]]
    assert questions == [RATING, TOKEN]
    page = listed(google_session, "f").json()
    assert discovery.validate(page, "ListFormResponsesResponse", api="forms") == []
    one = google_session.get(f"{FORMS}/f/responses/ACYDBNj000001").json()
    assert one["formId"] == "f" and discovery.validate(one, "FormResponse", api="forms") == []
    partial = listed(google_session, "f", fields="responses(responseId)").json()
    assert partial == {"responses": [{"responseId": "ACYDBNj000001"}]}
    with pytest.raises(ValueError, match="rating"):
        fake_google.add_form("g", [{**form_response(2, stamp(datetime(2026, 11, 2)), "5", "t"),
                                    "rating": 5}])  # fmt: skip


# --- paging and the filter --------------------------------------------------------------------


def some_responses(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Responses in random order, with ties and 0, 3, 6 or 9 fraction digits."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    made = []
    for n in range(count):
        when = start + timedelta(seconds=rng.randrange(0, 40))
        nanos = rng.choice([0, 0, 500_000_000, 123_000, 999_999_999])
        made.append(form_response(n, stamp(when, nanos), str(1 + n % 5), f"tok-{n}"))
    rng.shuffle(made)
    return made


def instant(response: dict[str, Any]) -> tuple[str, str]:
    return forms_model.instant_key(response["lastSubmittedTime"]), response["responseId"]


def every_page(google_session: Any, form_id: str, **params: Any) -> list[dict[str, Any]]:
    pages = []
    while True:
        page = listed(google_session, form_id, **params)
        assert page.status_code == 200, page.text
        pages.append(page.json())
        if "nextPageToken" not in pages[-1]:
            return pages
        params["pageToken"] = pages[-1]["nextPageToken"]


@pytest.mark.parametrize(("page_size", "cap"), [(7, 5000), (1, 5000), (0, 5000), (10, 4)])
def test_paging_returns_every_response_once_in_order(fake_google, google_session, page_size, cap):
    made = some_responses(61)
    fake_google.add_form("f", made).page_cap = cap  # the service may return fewer
    pages = every_page(google_session, "f", pageSize=page_size)
    got = [r for p in pages for r in p.get("responses", [])]
    assert [r["responseId"] for r in got] == [r["responseId"] for r in sorted(made, key=instant)]
    per_page = min(page_size or 5000, cap)
    assert [len(p["responses"]) for p in pages[:-1]] == [per_page] * (len(pages) - 1)
    assert 0 < len(pages[-1]["responses"]) <= per_page
    assert got == sorted(made, key=instant)  # the responses as added, byte for byte


def test_a_deleted_response_is_no_longer_listed_nor_got(fake_google, google_session):
    """The owner deletes a response (the Responses tab; the API has none): it is simply gone
    from every listing, filtered or not, and from forms.responses.get."""
    made = some_responses(12)
    fake_google.add_form("f", made)
    gone = sorted(made, key=instant)[5]
    assert fake_google.delete_response("f", gone["responseId"])
    assert not fake_google.delete_response("f", gone["responseId"])  # already gone
    left = sorted((r for r in made if r is not gone), key=instant)
    for params in ({"pageSize": 4}, {"filter": "timestamp >= 2026-11-01T00:00:00Z"}):
        got = [r for p in every_page(google_session, "f", **params) for r in p.get("responses", [])]
        assert got == left, params
    one = google_session.get(f"{FORMS}/f/responses/{gone['responseId']}")
    assert one.status_code == 404


def test_unspecified_page_size_is_at_most_5000(fake_google, google_session):
    made = [form_response(n, stamp(datetime(2026, 11, 1) + timedelta(seconds=n)), "5", "t")
            for n in range(5003)]  # fmt: skip
    fake_google.add_form("f", made, check=False)
    for params in ({}, {"pageSize": 0}, {"pageSize": 100_000}):
        pages = every_page(google_session, "f", **params)
        assert [len(p["responses"]) for p in pages] == [5000, 3], params


def test_a_page_token_belongs_to_its_filter_and_survives_new_and_edited_responses(
    fake_google, google_session
):
    made = some_responses(20)
    fake_google.add_form("f", made)
    first = listed(google_session, "f", pageSize=8).json()
    token = first["nextPageToken"]
    other = listed(google_session, "f", pageToken=token, filter="timestamp > 2026-11-01T00:00:00Z")
    assert other.status_code == 400
    # While the client pages: one response is edited (it moves to the end), one arrives.
    late = datetime(2026, 11, 2, tzinfo=UTC)
    edited = {**first["responses"][0], "lastSubmittedTime": stamp(late)}
    fake_google.submit_response("f", edited)
    fake_google.submit_response("f", form_response(99, stamp(late, 1000), "3", "tok-99"))
    rest = every_page(google_session, "f", pageSize=8, pageToken=token)
    seen = [r["responseId"] for r in first["responses"]]
    seen += [r["responseId"] for p in rest for r in p.get("responses", [])]
    assert set(seen) == {r["responseId"] for r in made} | {"ACYDBNj000099"}
    assert seen.count(edited["responseId"]) == 2  # before and after the edit: none skipped
    assert len(seen) == len(set(seen)) + 1


@pytest.mark.parametrize("field", ["lastSubmittedTime", "createTime"])
def test_the_filter_compares_instants_not_text(fake_google, google_session, field):
    at = datetime(2026, 11, 1, 10, tzinfo=UTC)
    made = [
        form_response(1, stamp(at), "1", "a"),
        form_response(2, stamp(at, 500_000_000), "2", "b"),  # "…:00.5Z" sorts before "…:00Z"
        form_response(3, stamp(at - timedelta(seconds=1), 999_999_999), "3", "c"),
        # Edited later: only lastSubmittedTime moved.
        form_response(4, stamp(at + timedelta(hours=1)), "4", "d", created=stamp(at, 1)),
    ]
    fake_google.add_form("f", made).filter_field = field

    def ids(text: str) -> list[str]:
        page = listed(google_session, "f", filter=text).json()
        return sorted(r["responseId"][-1] for r in page.get("responses", []))

    at_text = stamp(at)
    assert ids(f"timestamp >= {at_text}") == ["1", "2", "4"]
    assert ids(f"timestamp > {at_text}") == ["2", "4"]  # not at N
    assert ids(f"timestamp > {stamp(at, 500_000_000)}") == (
        ["4"] if field == "lastSubmittedTime" else []
    )
    assert ids("timestamp >= 2026-11-01T09:59:59.999999999Z") == ["1", "2", "3", "4"]


# --- the source: first read, later reads ------------------------------------------------------


def forms_source(google_session: Any, page_size: int = 5000, overlap: float = 3600) -> Any:
    return FormsApiResults(
        FormsApi(google_session),
        "f",
        question_ids={"rating": RATING, "token": TOKEN},
        page_size=page_size,
        overlap_seconds=overlap,
        ratings=SCALE,
    )


def test_the_source_reads_every_page_and_stops_early_without_a_stray_request(
    fake_google, google_session
):
    made = some_responses(23)
    fake_google.add_form("f", made)
    batch = forms_source(google_session, page_size=5).fetch(set(), None)
    assert sorted(s.token for s in batch.submissions) == sorted(f"tok-{n}" for n in range(23))
    assert fake_google.count("forms_read") == 5
    # A consumer that stops after the first response: the page thread stops too.
    fake_google.reset_requests()
    api = FormsApi(google_session)
    pages = api.pages("f", since=None, page_size=5)
    next(pages)
    pages.close()
    assert fake_google.count("forms_read") <= 2  # the page read and at most one ahead


def _with_comment(response: dict[str, Any], qid: str, text: str) -> dict[str, Any]:
    answer = {"questionId": qid, "textAnswers": {"answers": [{"value": text}]}}
    return {**response, "answers": {**response["answers"], qid: answer}}


def test_a_question_id_no_response_answers_beside_an_unnamed_one_is_warned_of(
    fake_google, google_session
):
    # The comment question deleted and added again (a new questionId, "dd44"), or its id
    # mistyped: every comment read as a question skipped, "ok", nothing said; a comment
    # rule never matched again.
    made = [_with_comment(r, "dd44", "Nobody answered me") for r in some_responses(12)]
    fake_google.add_form("f", made)
    source = FormsApiResults(
        FormsApi(google_session),
        "f",
        question_ids={"rating": RATING, "token": TOKEN, "comment": AGENT},
        page_size=5000,
        overlap_seconds=3600,
        ratings=SCALE,
    )
    batch = source.fetch(set(), None)
    assert len(batch.submissions) == 12 and all(s.comment == "" for s in batch.submissions)
    [warning] = batch.warnings
    assert warning.startswith(
        f"results.forms_api.question_ids.comment: {AGENT!r} is answered in none of the 12 "
        "responses read, while questions 'dd44' are answered and named by no role"
    ), warning
    assert "Nobody" not in warning

    # Answered once, or with no unnamed question beside it (an optional question all skip),
    # or in too few responses to tell: nothing said.
    fake_google.add_form("g", [*made, _with_comment(some_responses(1)[0], AGENT, "hi")])
    fake_google.add_form("h", some_responses(12))
    fake_google.add_form("k", made[:9])
    for form in ("g", "h", "k"):
        source.form_id = form
        assert source.fetch(set(), None).warnings == [], form


def readd_source(google_session: Any, **titles: list[str]) -> FormsApiResults:
    return FormsApiResults(
        FormsApi(google_session),
        "f",
        question_ids={"rating": RATING, "token": TOKEN, "comment": AGENT},
        page_size=5000,
        overlap_seconds=3600,
        ratings=SCALE,
        titles={"comment": ["Comment", "Комментарий"], **titles},
    )


def test_a_question_deleted_and_added_again_is_read_by_its_new_id_and_its_old_one(
    fake_google, google_session, monkeypatch
):
    # The comment question (AGENT's id here, "cc33") deleted and added again, same title: a
    # new questionId, "dd44". The older responses answer cc33, the newer dd44; one older
    # response answering cc33 kept the configured id "matching", so no warning was said and
    # every newer comment was read as none.
    older = [_with_comment(r, AGENT, f"old {n}") for n, r in enumerate(some_responses(3))]
    newer = [
        _with_comment({**r, "responseId": f"new{n}"}, "dd44", f"new {n}")
        for n, r in enumerate(some_responses(3, seed=8))
    ]
    items = [
        forms_model.question(RATING, "Rating", choices=["1", "2", "3", "4", "5"]),
        forms_model.question(TOKEN, "Reference"),
        forms_model.question("dd44", "  comment "),  # compared as headers are
    ]
    fake_google.add_form("f", [*older, *newer], items=items)
    batch = readd_source(google_session).fetch(set(), None)
    assert not batch.skipped and batch.warnings == []
    assert sorted(s.comment for s in batch.submissions) == [
        "new 0", "new 1", "new 2", "old 0", "old 1", "old 2"
    ]  # fmt: skip
    assert batch.columns["comment"] == f"question dd44, {AGENT}"
    gets = [r for r in fake_google.api_requests("forms_read") if r["path"] == "/v1/forms/f"]
    assert len(gets) == 1  # forms.get once a read, checked against the discovery document

    # Titled otherwise: the older comments are still read, and the warning names the keys
    # and the form's question no role reads (its title is the form author's, not a reply).
    items[2] = forms_model.question("dd44", "Anything else?")
    fake_google.add_form("f", [*older, *newer], items=items)
    batch = readd_source(google_session).fetch(set(), None)
    assert sorted(s.comment for s in batch.submissions)[3:] == ["old 0", "old 1", "old 2"]
    [warning] = batch.warnings
    assert warning.startswith(
        f"results.forms_api.question_ids.comment: {AGENT!r} is no longer a question of the form"
    ), warning
    assert "results.columns.comment" in warning and "'dd44' ('Anything else?')" in warning
    assert "new 0" not in warning

    # forms.get refused (the listing was not): the responses are read as before, and said.
    def refused(self: FormsApi, form_id: str) -> Any:
        raise GoogleApiError("forms.get: HTTP 403 (PERMISSION_DENIED)")

    monkeypatch.setattr(FormsApi, "questions", refused)
    batch = readd_source(google_session).fetch(set(), None)
    assert len(batch.submissions) == 6
    [warning] = batch.warnings
    assert warning.startswith("forms.get: HTTP 403"), warning


def test_the_form_is_not_asked_while_responses_answer_only_the_questions_read(
    fake_google, google_session
):
    fake_google.add_form("f", some_responses(7), items=[forms_model.question(RATING, "Rating")])
    batch = readd_source(google_session).fetch(set(), None)
    assert len(batch.submissions) == 7
    assert [r["path"] for r in fake_google.api_requests("forms_read")] == ["/v1/forms/f/responses"]


def test_a_failed_page_is_raised_in_order_and_retried_through_the_session(
    fake_google, google_session
):
    fake_google.add_form("f", some_responses(12))
    fake_google.fail(1, 503, "forms_read")  # retried by the session
    batch = forms_source(google_session, page_size=5).fetch(set(), None)
    assert len(batch.submissions) == 12
    fake_google.fail(10, 429, "forms_read")  # more than the session's retries
    with pytest.raises(GoogleApiError, match=r"forms\.responses\.list: HTTP 429"):
        forms_source(google_session, page_size=5).fetch(set(), None)


def test_a_forms_quota_error_is_the_forms_apis_and_is_retried(fake_google, google_session):
    """The fake's Forms 429 was a copy of Sheets' (service sheets.googleapis.com, its read
    bucket): Forms' own names it (https://developers.google.com/workspace/forms/api/limits:
    forms.responses.list counts as an "Expensive read request", 180 a minute per user), and a
    run that runs out of retries says which quota it was."""
    fake_google.add_form("f", some_responses(3))
    google_session.max_retries = 0
    fake_google.fail(1, 429, "forms_read")
    response = google_session.get("https://forms.googleapis.com/v1/forms/f/responses")
    error = response.json()["error"]
    assert response.status_code == 429 and "Retry-After" not in response.headers
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert "'Expensive read requests'" in error["message"]
    assert "'forms.googleapis.com'" in error["message"]
    [info] = [d for d in error["details"] if d["@type"].endswith("ErrorInfo")]
    assert info["reason"] == "RATE_LIMIT_EXCEEDED"
    assert info["metadata"]["service"] == "forms.googleapis.com"
    assert info["metadata"]["quota_metric"] == "forms.googleapis.com/expensive_read_requests"
    assert info["metadata"]["quota_limit_value"] == "180"
    fake_google.fail(1, 429, "forms_read")
    form = google_session.get("https://forms.googleapis.com/v1/forms/f").json()["error"]
    assert "'Read requests'" in form["message"] and "'forms.googleapis.com'" in form["message"]

    # Retried with backoff (no Retry-After to wait for), then read.
    google_session.max_retries = 3
    fake_google.fail(2, 429, "forms_read")
    assert len(forms_source(google_session).fetch(set(), None).submissions) == 3
    fake_google.fail(10, 429, "forms_read")
    with pytest.raises(GoogleApiError, match="ExpensiveReadRequestsPerMinutePerUser"):
        forms_source(google_session).fetch(set(), None)


def credited(kit: Any) -> dict[str, int]:
    with kit.engine.connect() as conn:
        return {row.dialog_id: row.rating for row in store.all_answers(conn)}


def test_later_runs_read_new_and_edited_responses_only_and_lose_nothing(kit):
    """Three runs through the runner: all, then only the filter's window, then new and edited
    responses; the credited answers equal the form's final state, computed here."""
    start = kit.now - timedelta(days=20)
    agents = {"7": "Anna", "8": "Boris", "9": "Chen"}
    tokens = {}
    for n in range(40):
        agent = list(agents)[n % 3]
        tokens[n] = kit.survey(f"T-{n}", agent, agents[agent], created=start)
    form: dict[str, dict[str, Any]] = {}

    def submit(n: int, when: datetime, rating: int, *, created: datetime | None = None) -> None:
        response = form_response(
            n, stamp(when, 250_000_000), str(rating), tokens[n],
            created=stamp(created) if created else None,
        )  # fmt: skip
        form[response["responseId"]] = response
        kit.fake.submit_response("f", response)

    kit.fake.add_form("f", [])
    for n in range(30):
        submit(n, start + timedelta(hours=n * 5), 1 + n % 5)
    results = {
        "source": "forms_api",
        "forms_api": {
            "form_id": "f",
            "question_ids": {"rating": RATING, "token": TOKEN},
            "page_size": 7,
        },
    }
    config = kit.config(results=results, output={"gsheets": {"enabled": False}})

    def expected() -> dict[str, int]:
        """The latest submission per survey, from the form as it is now."""
        latest: dict[str, tuple[str, int]] = {}
        for response in form.values():
            dialog = f"T-{int(response['responseId'][-6:])}"
            value = int(response["answers"][RATING]["textAnswers"]["answers"][0]["value"])
            when = forms_model.instant_key(response["lastSubmittedTime"])
            if dialog not in latest or when > latest[dialog][0]:
                latest[dialog] = (when, value)
        return {dialog: value for dialog, (_, value) in latest.items()}

    first = kit.run(config)
    assert (first.status, first.new, first.rows_read) == ("ok", 30, 30)
    assert kit.fake.count("forms_read") == 5  # 30 responses, pages of 7
    assert credited(kit) == expected()

    kit.fake.reset_requests()
    kit.now += timedelta(hours=1)
    again = kit.run(config)
    (query,) = [r["query"] for r in kit.fake.api_requests("forms_read")]
    last = start + timedelta(hours=29 * 5)
    assert query["filter"] == [f"timestamp >= {stamp(last - timedelta(hours=1))}"]
    assert (again.status, again.new, again.updated, again.rows_read) == ("ok", 0, 0, 1)
    assert credited(kit) == expected()  # rows outside the window are not gone

    # Five new responses; three earlier respondents edit theirs (an old one among them:
    # created 20 days ago, far outside the overlap), one edits twice.
    later = last + timedelta(hours=3)
    for i, n in enumerate(range(30, 35)):
        submit(n, later + timedelta(minutes=i), 5)
    for i, n in enumerate((0, 12, 29)):
        submit(n, later + timedelta(minutes=10 + i), 6 - (1 + n % 5), created=start)
    submit(12, later + timedelta(minutes=20), 1, created=start)
    kit.fake.reset_requests()
    kit.now = later + timedelta(hours=1)
    third = kit.run(config)
    assert third.status == "ok"
    assert (third.new, third.updated) == (5, 3)
    # In the window: the 5 new and the 3 edited (the form keeps 12's latest version only).
    assert (third.rows_read, kit.fake.count("forms_read")) == (8, 2)
    assert credited(kit) == expected()
    assert (credited(kit)["T-0"], credited(kit)["T-12"], credited(kit)["T-29"]) == (5, 1, 1)
    per_agent: dict[str, list[int]] = defaultdict(list)
    for dialog, rating in expected().items():
        per_agent[list(agents)[int(dialog[2:]) % 3]].append(rating)
    with kit.engine.connect() as conn:
        stored: dict[str, list[int]] = defaultdict(list)
        for row in store.all_answers(conn):
            stored[row.agent_key].append(row.rating)
    assert {a: sorted(r) for a, r in stored.items()} == {a: sorted(r) for a, r in per_agent.items()}

    # Nothing new: the same answers, nothing counted twice.
    kit.now += timedelta(minutes=5)
    fourth = kit.run(config)
    assert (fourth.new, fourth.updated) == (0, 0)
    assert credited(kit) == expected() and fourth.totals["answers"] == 35


@pytest.mark.parametrize("full_read_hours", [6, 0])
def test_a_response_the_filter_missed_is_read_at_the_next_full_read(kit, full_read_hours):
    """A response listed with a submission time before the incremental window (Google's filter
    would not show it) is credited by the next full read, once ``full_read_hours`` have passed
    since the last one; with 0, only ``sync --full`` reads it."""
    start = kit.now - timedelta(days=3)
    tokens = {n: kit.survey(f"T-{n}", "7", "Anna", created=start) for n in range(2)}
    kit.fake.add_form("f", [])

    def submit(n: int, when: datetime, rating: int) -> None:
        kit.fake.submit_response("f", form_response(n, stamp(when), str(rating), tokens[n]))

    def filters() -> list[bool]:
        return ["filter" in r["query"] for r in kit.fake.api_requests("forms_read")]

    submit(0, kit.now - timedelta(hours=1), 5)
    results = {
        "source": "forms_api",
        "forms_api": {
            "form_id": "f",
            "question_ids": {"rating": RATING, "token": TOKEN},
            "full_read_hours": full_read_hours,
        },
    }
    config = kit.config(results=results, output={"gsheets": {"enabled": False}})
    assert kit.run(config).new == 1
    first_read = kit.now

    submit(1, kit.now - timedelta(days=1), 2)  # a day before the watermark: outside the window
    kit.fake.reset_requests()
    kit.now = first_read + timedelta(hours=5, minutes=59)
    assert kit.run(config).new == 0
    assert filters() == [True] and credited(kit) == {"T-0": 5}

    kit.fake.reset_requests()
    kit.now = first_read + timedelta(hours=6)
    due = kit.run(config)
    if full_read_hours:
        assert filters() == [False] and due.new == 1
        assert credited(kit) == {"T-0": 5, "T-1": 2}
        kit.fake.reset_requests()
        kit.now += timedelta(minutes=5)  # the full read was recorded: incremental again
        assert kit.run(config).new == 0 and filters() == [True]
    else:
        assert filters() == [True] and due.new == 0 and credited(kit) == {"T-0": 5}
        kit.fake.reset_requests()
        assert kit.run(config, full=True).new == 1 and filters() == [False]
        assert credited(kit) == {"T-0": 5, "T-1": 2}


@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(-1, 5), st.booleans()), min_size=1, max_size=40
    ),
    st.sampled_from(["lastSubmittedTime", "createTime"]),
)
@settings(max_examples=150, deadline=None)
def test_the_fakes_order_equals_a_full_sort_after_any_adds_and_edits(operations, field):
    """Responses added, edited and deleted in any order (an edit may even go back to an
    earlier time, a deleted response come back, lists interleaved): the keys a list pages
    through are the current ones, sorted."""
    form = forms_model.Form("f", filter_field=field)
    current: dict[str, dict[str, Any]] = {}
    at = datetime(2026, 11, 1, tzinfo=UTC)
    for n, seconds, list_now in operations:
        if seconds < 0:  # the owner deletes response n
            rid = form_response(n, stamp(at), "5", "t")["responseId"]
            assert form.delete(rid) == (current.pop(rid, None) is not None)
            assert form.response(rid) is None
            if list_now:
                form.settle()
            continue
        response = form_response(n, stamp(at + timedelta(seconds=seconds)), "5", "t")
        response["createTime"] = current.get(response["responseId"], response)["createTime"]
        form.put(response, check=False)
        current[response["responseId"]] = response
        if list_now:
            form.settle()
    expected = sorted((forms_model.instant_key(r[field]), rid) for rid, r in current.items())
    assert form.settle() == expected
    assert len(form) == len(current)


def test_sheets_requests_are_checked_against_their_document_too(fake_google, google_session):
    """The same check for the Sheets fake: query parameters and enums from sheets.v4.json."""
    fake_google.add_spreadsheet("s")
    fake_google.add_tab("s", "Tab", [["a", 1]])
    url = "https://sheets.googleapis.com/v4/spreadsheets/s/values/Tab!A1:B1"
    assert google_session.get(url).json()["values"] == [["a", "1"]]
    assert google_session.get(url, params={"valueRenderOption": "FORMULA"}).status_code == 200
    bad_enum = google_session.get(url, params={"valueRenderOption": "RAW"})
    assert bad_enum.status_code == 400 and "valueRenderOption" in bad_enum.text
    unknown = google_session.get(url, params={"renderOption": "FORMULA"})
    assert unknown.status_code == 400
    assert 'Unknown name "renderOption"' in unknown.json()["error"]["message"]
    no_such = google_session.delete("https://sheets.googleapis.com/v4/spreadsheets/s")
    assert no_such.status_code == 404


@pytest.mark.parametrize("looked_up_max", [20_000, 0])
def test_a_filtered_read_looks_up_what_it_returned_instead_of_loading_every_identity(
    kit, monkeypatch, looked_up_max
):
    from csat_hook.sync import read_step

    start = kit.now - timedelta(days=2)
    tokens = [kit.survey(f"T-{n}", "7", "Anna", created=start) for n in range(6)]
    kit.fake.add_form("f", [])
    for n in range(5):
        when = stamp(start + timedelta(hours=n))
        kit.fake.submit_response("f", form_response(n, when, "4", tokens[n]))
    results = {
        "source": "forms_api",
        "forms_api": {"form_id": "f", "question_ids": {"rating": RATING, "token": TOKEN}},
    }
    config = kit.config(results=results, output={"gsheets": {"enabled": False}})
    assert kit.run(config).new == 5
    loads: list[int] = []
    original = store.known_fingerprints
    monkeypatch.setattr(store, "known_fingerprints", lambda conn: loads.append(1) or original(conn))
    monkeypatch.setattr(read_step, "LOOKED_UP_MAX", looked_up_max)
    # One new response; responses 3 and 4 (the hour before the last) come back through the
    # filter's overlap.
    late = stamp(start + timedelta(hours=4, minutes=30))
    kit.fake.submit_response("f", form_response(5, late, "2", tokens[5]))

    again = kit.run(config)

    assert (again.status, again.rows_read, again.new, again.unchanged) == ("ok", 3, 1, 2)
    assert loads == ([] if looked_up_max else [1])
    assert credited(kit) == {f"T-{n}": 4 for n in range(5)} | {"T-5": 2}


def test_the_scan_for_legacy_digests_is_remembered_once_it_finds_none(kit, monkeypatch):
    """A filtered read needs every processed row to carry an identity (a digest from before
    identities is only re-keyed by a read of every row). The processed tables are scanned
    for one until a run finds none and remembers that in its ingest (a dry run remembers
    nothing); with one left, every identity is loaded instead and nothing is remembered."""
    import sqlalchemy as sa

    from csat_hook.db.schema import sync_state
    from csat_hook.db.schema import unverified_answers

    start = kit.now - timedelta(days=2)
    tokens = [kit.survey(f"T-{n}", "7", "Anna", created=start) for n in range(3)]
    kit.fake.add_form("f", [])
    for n in range(3):
        kit.fake.submit_response(
            "f", form_response(n, stamp(start + timedelta(hours=n)), "4", tokens[n])
        )
    results = {
        "source": "forms_api",
        "forms_api": {"form_id": "f", "question_ids": {"rating": RATING, "token": TOKEN}},
    }
    config = kit.config(results=results, output={"gsheets": {"enabled": False}})
    loads: list[int] = []
    original = store.known_fingerprints
    monkeypatch.setattr(store, "known_fingerprints", lambda conn: loads.append(1) or original(conn))

    def remembered() -> bool:
        with kit.engine.connect() as conn:
            return store.get_watermark(conn, store.NO_LEGACY_KEY) is not None

    assert kit.run(config).new == 3 and loads == [1]  # no watermark: a whole read
    assert not remembered()
    assert kit.run(config, dry_run=True).status == "ok" and not remembered()
    assert kit.run(config).new == 0 and remembered() and loads == [1]  # a filtered read

    # A digest from before identities (only an old version wrote them): the scan finds it.
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(sync_state).where(sync_state.c.source == store.NO_LEGACY_KEY))
        conn.execute(
            sa.insert(unverified_answers),
            {
                "fingerprint": "9f" * 32,
                "reason": "forged",
                "source": "forms_api",
                "source_row": {},
                "recorded_at": kit.now,
            },
        )
    assert kit.run(config).status == "ok" and loads == [1, 1] and not remembered()
    assert kit.run(config).status == "ok" and loads == [1, 1, 1] and not remembered()
    assert credited(kit) == {f"T-{n}": 4 for n in range(3)}


@pytest.mark.parametrize("full_read_hours", [24, 0])
def test_the_first_run_under_a_new_reading_lists_every_response_once(
    kit, monkeypatch, full_read_hours
):
    """After an upgrade that reads some cell differently (READING_VERSION), a sheet's or an
    export's rows are all read once more; the Forms API source went on asking for the last
    hour's responses, so an answer stored misread stayed so until the next full read (a day
    later by default; never with ``full_read_hours: 0``). Now the first run under a new
    reading lists every response once, then the filter is used again."""
    start = kit.now - timedelta(days=2)
    tokens = [kit.survey(f"T-{n}", "7", "Anna", created=start) for n in range(3)]
    kit.fake.add_form("f", [])
    # Three hours apart: only the last is in the filter's window of the run after the first.
    for n, rating in enumerate(["2 out of 5", "4/5 - 5/5", "5"]):
        when = stamp(start + timedelta(hours=3 * n))
        kit.fake.submit_response("f", form_response(n, when, rating, tokens[n]))
    results = {
        "source": "forms_api",
        "forms_api": {
            "form_id": "f",
            "question_ids": {"rating": RATING, "token": TOKEN},
            "full_read_hours": full_read_hours,
        },
    }
    config = kit.config(results=results, output={"gsheets": {"enabled": False}})

    def filtered() -> list[bool]:
        return ["filter" in r["query"] for r in kit.fake.api_requests("forms_read")]

    with monkeypatch.context() as older:
        misread(older, {"2 out of 5": 5, "4/5 - 5/5": 4})
        assert kit.run(config).new == 3
        kit.fake.reset_requests()
        kit.now += timedelta(minutes=10)
        assert kit.run(config).unchanged == 1 and filtered() == [True]
    assert credited(kit) == {"T-0": 5, "T-1": 4, "T-2": 5}
    with kit.engine.begin() as conn:  # as a release before reading versions recorded it
        store.set_watermark(conn, "forms_api:f full read", kit.now, kit.now)

    kit.fake.reset_requests()
    kit.now += timedelta(minutes=10)
    upgraded = kit.run(config)
    assert filtered() == [False]  # every response, once
    assert (upgraded.new, upgraded.updated, upgraded.unchanged) == (0, 1, 1)
    assert any("rating changed in place" in w for w in upgraded.warnings)
    # "4/5 - 5/5" is refused now; its stored answer stays credited, as on the sheet path.
    assert upgraded.skipped == {"bad_rating": 1}
    assert credited(kit) == {"T-0": 2, "T-1": 4, "T-2": 5}
    assert [(h.rating, h.source_ref) for h in kit.rows(answer_history)] == [
        (5, "response ACYDBNj000000")
    ]
    # When it was read in full is remembered under this reading only.
    assert sorted(r.source for r in kit.rows(sync_state) if r.source.startswith("forms")) == [
        "forms_api:f",
        f"forms_api:f full read, reading {READING_VERSION}",
    ]

    kit.fake.reset_requests()
    kit.now += timedelta(minutes=10)
    later = kit.run(config)
    assert filtered() == [True]  # the filter again
    assert (later.new, later.updated, later.unchanged) == (0, 0, 1)
    assert credited(kit) == {"T-0": 2, "T-1": 4, "T-2": 5}


def test_what_forms_get_said_is_remembered_and_asked_again_only_for_a_question_not_seen(kit):
    """A form whose responses answer a question no role reads (a question re-added, an extra
    one) cost a forms.get every run, of the Forms "Read requests" quota. What it said is
    remembered with the read: asked again only when a response answers a question it did not
    list, or under other question_ids; the remembered questions are read as forms.get's were
    (the re-added comment question, by its title)."""
    start = kit.now - timedelta(days=2)
    tokens = [kit.survey(f"T-{n}", "7", "Anna", created=start) for n in range(8)]
    items = [
        forms_model.question(RATING, "Rating", choices=["1", "2", "3", "4", "5"]),
        forms_model.question(TOKEN, "Reference"),
        forms_model.question("dd44", "Comment"),  # the comment question, added again
        forms_model.question("ee55", "Anything else?"),  # no role reads it
    ]

    def response(n: int, extra: dict[str, str]) -> dict[str, Any]:
        made = form_response(n, stamp(start + timedelta(hours=n)), "4", tokens[n])
        for qid, text in extra.items():
            made = _with_comment(made, qid, text)
        return made

    kit.fake.add_form(
        "f", [response(0, {AGENT: "old"}), response(1, {"dd44": "new 1"})], items=items
    )
    results = {
        "source": "forms_api",
        "forms_api": {
            "form_id": "f",
            "question_ids": {"rating": RATING, "token": TOKEN, "comment": AGENT},
        },
    }
    config = kit.config(results=results, output={"gsheets": {"enabled": False}})

    def gets() -> int:
        return sum(r["path"] == "/v1/forms/f" for r in kit.fake.api_requests("forms_read"))

    def comments() -> dict[str, str | None]:
        with kit.engine.connect() as conn:
            return {row.dialog_id: row.comment for row in store.all_answers(conn)}

    assert kit.run(config).new == 2 and gets() == 1
    assert comments() == {"T-0": "old", "T-1": "new 1"}
    # The request asks for the form's revisionId too (checked against the document), and it
    # is remembered with the questions listed.
    [get] = [r for r in kit.fake.api_requests("forms_read") if r["path"] == "/v1/forms/f"]
    assert "revisionId" in get["query"]["fields"][0]
    with kit.engine.connect() as conn:
        remembered = read_memo.recalled(conn, "forms_api:f")
    assert remembered == {
        "read": sorted([RATING, TOKEN, AGENT]),
        "revision": "r4",
        "questions": [[RATING, "Rating"], [TOKEN, "Reference"], ["dd44", "Comment"],
                      ["ee55", "Anything else?"]],
    }  # fmt: skip

    # Later runs, filtered or full, answering the questions it listed: not asked again.
    kit.fake.submit_response("f", response(2, {"dd44": "new 2", "ee55": "x"}))
    assert kit.run(config).new == 1 and gets() == 1
    assert kit.run(config, full=True).new == 0 and gets() == 1
    assert comments()["T-2"] == "new 2"  # read by the re-added question, as remembered

    # A question it did not list: asked again (once), and that answer remembered.
    items.append(forms_model.question("ff66", "Comment"))  # added again, once more
    kit.fake.add_form(
        "f",
        [response(n, {"dd44": f"new {n}"}) for n in range(3)] + [response(3, {"ff66": "newest"})],
        items=items,
    )
    assert kit.run(config).new == 1 and gets() == 2
    assert comments()["T-3"] == "newest"
    kit.fake.submit_response("f", response(4, {"ff66": "later"}))
    assert kit.run(config).new == 1 and gets() == 2 and comments()["T-4"] == "later"

    # Other question_ids: what was asked under the old ones is not taken.
    results["forms_api"]["question_ids"] = {"rating": RATING, "token": TOKEN, "comment": "ff66"}
    config = kit.config(results=results, output={"gsheets": {"enabled": False}})
    kit.fake.submit_response("f", response(5, {"ff66": "after", "ee55": "y"}))
    assert kit.run(config).new == 1 and gets() == 3
    kit.fake.submit_response("f", response(6, {"ff66": "again", "ee55": "z"}))
    assert kit.run(config).new == 1 and gets() == 3
