"""Submissions of one survey within one second, told apart by Forms' ``lastSubmittedTime``
(nanoseconds in RFC 3339): the latest is credited, as a fresh read of a sheet credits the
row further down (the rule :func:`~csat_hook.sync.attribution.precedence` states), and an
incremental read credits what a fresh one does. Two of them alike (a rating, then another,
then the first again) are one row identity (its time is whole seconds): the row's time is
the later of the two, read in one run or in two."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.sync import report_step
from tests.sync.test_forms_api import form_response
from tests.sync.test_forms_api import stamp
from tests.sync.test_forms_recredit import FORM
from tests.sync.test_forms_recredit import credited
from tests.sync.test_forms_recredit import forms_config
from tests.sync.test_forms_recredit import fresh_credited

# Three answers of one survey within one second: a 3, a 4, the 3 again (nanoseconds).
SECOND = datetime(2026, 11, 20, 10, 30, 5)
ANSWERS = ((1, 100_000_000, 3), (2, 500_000_000, 4), (3, 900_000_000, 3))


def submit(kit: Any, n: int, nanos: int, rating: int, token: str) -> str:
    """Response ``n`` submitted ``nanos`` into the second :data:`SECOND`."""
    second = SECOND.replace(tzinfo=kit.now.tzinfo)
    response = form_response(n, stamp(second, nanos), str(rating), token)
    kit.fake.submit_response(FORM, response)
    return str(response["responseId"])


def stored(kit: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The answers and the history as stored: rating, response, time."""
    return (
        sorted((r.rating, r.source_ref, r.submitted_at) for r in kit.rows(answers)),
        sorted((r.rating, r.source_ref, r.submitted_at) for r in kit.rows(answer_history)),
    )


@pytest.mark.parametrize("read_back", [False, True], ids=["looked_up", "read_back"])
@pytest.mark.parametrize("full", [False, True], ids=["filtered", "full"])
@pytest.mark.parametrize("runs_after", [(3,), (1, 3), (2, 3), (1, 2, 3)], ids=str)
def test_the_latest_of_one_second_is_credited_fresh_and_incremental(
    kit, monkeypatch, runs_after, full, read_back
):
    """Whichever runs read the responses as they came (each a filtered read after the
    first, or each a read of every response), the 3 submitted last is credited, by its
    response and at its time, and a first run over the form stores the same; credited
    against the answers looked up or against every answer read back."""
    if read_back:
        monkeypatch.setattr(report_step, "LOOKED_UP_MAX", 0)
    anna = kit.survey("T-1", "7", "Anna")
    kit.fake.add_form(FORM, [])
    config = forms_config(kit)
    last = ""
    for n, nanos, rating in ANSWERS:
        last = submit(kit, n, nanos, rating, anna)
        if n in runs_after:
            kit.now += timedelta(seconds=10)
            summary = kit.run(config, full=full)
            assert summary.status == "ok", summary.error
    assert credited(kit) == {"T-1": (3, f"response {last}")}
    latest = SECOND.replace(tzinfo=UTC, microsecond=900_000)
    assert [a[2] for a in stored(kit)[0]] == [latest]
    incremental = stored(kit)
    kit.now += timedelta(minutes=10)
    again = kit.run(config, full=True)
    assert (again.status, again.new, again.updated) == ("ok", 0, 0), again.error
    assert stored(kit) == incremental
    assert fresh_credited(kit, config) == {"T-1": (3, f"response {last}")}
    assert stored(kit) == incremental


def test_the_earlier_alike_listed_after_the_later_is_still_the_later(kit):
    """The alike pair listed in the other order (the latest first): still the latest."""
    anna = kit.survey("T-1", "7", "Anna")
    kit.fake.add_form(FORM, [])
    config = forms_config(kit)
    for n, nanos, rating in reversed(ANSWERS):
        submit(kit, 10 - n, nanos, rating, anna)
    summary = kit.run(config)
    assert summary.status == "ok", summary.error
    assert credited(kit) == {"T-1": (3, "response ACYDBNj000007")}


@pytest.mark.parametrize("full", [False, True], ids=["filtered", "full"])
def test_the_latest_listed_after_the_watermark_passed_it_is_credited(kit, full):
    """The second 3 listed late (Google shows it after a later response of another survey
    moved the watermark past its time): the next read, filtered (its overlap lists the
    first 3 too) or of every response, credits it, as a first run does."""
    anna = kit.survey("T-1", "7", "Anna")
    boris = kit.survey("T-2", "8", "Boris")
    kit.fake.add_form(FORM, [])
    config = forms_config(kit)
    submit(kit, 1, ANSWERS[0][1], ANSWERS[0][2], anna)
    submit(kit, 2, ANSWERS[1][1], ANSWERS[1][2], anna)
    assert kit.run(config).status == "ok"
    later = form_response(4, stamp(SECOND.replace(tzinfo=UTC) + timedelta(seconds=5)), "5", boris)
    kit.fake.submit_response(FORM, later)
    kit.now += timedelta(seconds=10)
    assert kit.run(config).status == "ok"
    last = submit(kit, 3, ANSWERS[2][1], ANSWERS[2][2], anna)
    kit.now += timedelta(seconds=10)
    summary = kit.run(config, full=full)
    assert (summary.status, summary.new, summary.updated) == ("ok", 0, 1), summary.error
    assert credited(kit)["T-1"] == (3, f"response {last}")
    incremental = stored(kit)
    assert fresh_credited(kit, config)["T-1"] == (3, f"response {last}")
    assert stored(kit) == incremental
