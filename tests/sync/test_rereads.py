"""Skipped rows are not lost: they are read again once the configuration is fixed."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.google.session import SHEETS_READONLY_SCOPE
from csat_hook.sync.google.session import build_session
from csat_hook.sync.sources.gsheets import GSheetsResults
from tests.sync.conftest import EN_HEADER


def forms_response(n: int, when: datetime, rating: str, token: str) -> dict:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
    return {
        "responseId": f"ACYDBN{n}",
        "createTime": stamp,
        "lastSubmittedTime": stamp,
        "answers": {
            "aa11": {"questionId": "aa11", "textAnswers": {"answers": [{"value": rating}]}},
            "bb22": {"questionId": "bb22", "textAnswers": {"answers": [{"value": token}]}},
        },
    }


def test_forms_api_rows_skipped_before_the_watermark_come_back_with_full(kit):
    start = kit.now - timedelta(days=10)
    tokens = [kit.survey(f"T-{n}", "7", "Anna Petrova", created=start) for n in range(5)]
    kit.fake.add_form(
        "form-1",
        [
            forms_response(n, start + timedelta(days=n + 1), "Superb", t)
            for n, t in enumerate(tokens)
        ],
    )
    results = {
        "source": "forms_api",
        "forms_api": {"form_id": "form-1", "question_ids": {"rating": "aa11", "token": "bb22"}},
    }
    output = {"gsheets": {"enabled": False}}
    first = kit.run(kit.config(results=results, output=output))
    assert first.status == "data_error"
    assert first.skipped == {"bad_rating": 5}
    assert first.problems[0]["setting"] == "results.forms_api.question_ids.rating"
    assert first.problems[0]["example"] == "Superb"

    fixed = kit.config(results={**results, "rating_labels": {"Superb": 5}}, output=output)
    kit.now += timedelta(minutes=5)
    incremental = kit.run(fixed)  # from the watermark − overlap: only the latest response
    assert (incremental.status, incremental.new) == ("ok", 1)
    assert incremental.totals["skipped"] == {"bad_rating": 4}
    full = kit.run(fixed, full=True)
    assert (full.status, full.new) == ("ok", 4)
    assert full.totals["skipped"] == {} and full.totals["answers"] == 5


def test_sheet_text_timestamps_take_the_day_month_order_of_the_spreadsheet_locale(kit):
    """A date typed as text in the responses sheet: 03/04 is 3 April in en_GB, 4 March in
    en_US (the spreadsheet's locale, from its metadata); its zone is the spreadsheet's."""
    token = kit.survey("T-1", "7", "Anna Petrova")
    config = kit.config()
    for locale, expected in (
        ("en_GB", datetime(2026, 4, 3, 9, 0, tzinfo=UTC)),
        ("en_US", datetime(2026, 3, 4, 10, 0, tzinfo=UTC)),
    ):
        kit.responses(
            [EN_HEADER, ["03/04/2026 10:00:00", 5, "", "", "", token]],
            locale=locale,
            time_zone="Europe/London",
        )
        session = build_session(config.google, [SHEETS_READONLY_SCOPE])
        source = GSheetsResults.from_config(config, sheets=SheetsApi(session))
        (submission,) = source.fetch(set(), None).submissions
        assert submission.submitted_at == expected, locale


def test_a_row_skipped_at_a_later_step_once_fixed_leaves_one_record_and_then_none(kit):
    """A text timestamp the sheet cannot place is skipped; once the date order is known the
    same row fails on its rating (another identity): the first record goes, not doubled;
    once the label is added the row is credited and no record is left."""
    token = kit.survey("T-1", "7", "Anna Petrova")
    kit.responses(
        [EN_HEADER, ["03/04/2026 10:00:00", "Superb", "", "", "", token]],
        locale="en_PH",  # a locale whose day/month order is not settled
        time_zone="Europe/London",
    )
    first = kit.run()
    assert first.totals["skipped"] == {"ambiguous_date_order": 1}
    kit.responses(
        [EN_HEADER, ["03/04/2026 10:00:00", "Superb", "", "", "", token]],
        locale="en_GB",
        time_zone="Europe/London",
    )
    second = kit.run()
    assert second.totals["skipped"] == {"bad_rating": 1}
    third = kit.run(kit.config(results={"rating_labels": {"Superb": 5}}))
    assert (third.new, third.totals["skipped"], third.totals["answers"]) == (1, {}, 1)
