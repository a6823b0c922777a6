"""A Forms response deleted (the owner's Responses tab): a read of every response (``sync
--full``, or the full read ``full_read_hours`` makes due) credits what a first run over the
form as it is would, as a read of every row of a sheet or export does (``sync/recredit.py``):
a survey whose credited response is gone is credited again from an earlier response still
listed, with the warnings and alerts of any edit; a survey with no response left keeps its
answer. A filtered read (responses since the watermark) cannot see a deletion: it changes
nothing until the next full read."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from tests.sync.test_double_click import forget_every_read
from tests.sync.test_forms_api import RATING
from tests.sync.test_forms_api import TOKEN
from tests.sync.test_forms_api import form_response
from tests.sync.test_forms_api import stamp

FORM = "f"


def forms_config(kit: Any, *, full_read_hours: float = 0, **sections: Any) -> Any:
    """The forms_api source on the fake's form ``f`` (``full_read_hours`` 0: only ``sync
    --full`` reads every response), no spreadsheet output."""
    results = {
        "source": "forms_api",
        "forms_api": {
            "form_id": FORM,
            "question_ids": {"rating": RATING, "token": TOKEN},
            "full_read_hours": full_read_hours,
        },
    }
    return kit.config(results=results, output={"gsheets": {"enabled": False}}, **sections)


def alerting(kit: Any, **forms: Any) -> Any:
    """:func:`forms_config` with a rule alerting ratings of 2 and below to Slack."""
    return forms_config(
        kit,
        **forms,
        alerts={
            "destinations": {
                "slack": {"kind": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/C"}
            },
            "rules": [
                {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
            ],
        },
    )


def submit(kit: Any, n: int, when: datetime, rating: int, token: str) -> str:
    """Response ``n`` (its responseId returned) submitted at ``when``."""
    response = form_response(n, stamp(when), str(rating), token)
    kit.fake.submit_response(FORM, response)
    return str(response["responseId"])


def credited(kit: Any) -> dict[str, tuple[int, str]]:
    """Survey (dialog) → its credited rating and the response it was read from."""
    return {r.dialog_id: (r.rating, r.source_ref) for r in kit.rows(answers)}


def history(kit: Any) -> list[tuple[str | None, int]]:
    return sorted((r.source_ref, r.rating) for r in kit.rows(answer_history))


def filtered(kit: Any) -> list[bool]:
    """Whether each responses.list request since the last reset had a filter."""
    return ["filter" in r["query"] for r in kit.fake.api_requests("forms_read")]


def fresh_credited(kit: Any, config: Any) -> dict[str, tuple[int, str]]:
    """What a first run over the form as it is now credits (everything stored forgotten)."""
    forget_every_read(kit)
    summary = kit.run(config)
    assert summary.status == "ok", summary.error
    return credited(kit)


def test_a_later_response_deleted_is_credited_again_from_the_earlier_at_a_full_read(kit):
    """A survey answered twice (a 4, then a 1: credited); the 1's response deleted. The
    filtered run cannot see it (the 1 stays); ``sync --full`` credits the 4 again, as a
    first run over the form would, the 1 kept in the history."""
    anna = kit.survey("T-1", "7", "Anna")
    boris = kit.survey("T-2", "8", "Boris")
    kit.fake.add_form(FORM, [])
    early = submit(kit, 1, kit.now - timedelta(hours=3), 4, anna)
    late = submit(kit, 2, kit.now - timedelta(hours=2), 1, anna)
    submit(kit, 3, kit.now - timedelta(hours=2), 5, boris)
    config = forms_config(kit)
    first = kit.run(config)
    assert (first.status, first.new) == ("ok", 2)
    assert credited(kit)["T-1"] == (1, f"response {late}")

    assert kit.fake.delete_response(FORM, late)
    kit.now += timedelta(minutes=10)
    kit.fake.reset_requests()
    watermarked = kit.run(config)
    assert filtered(kit) == [True] and watermarked.updated == 0
    assert credited(kit)["T-1"] == (1, f"response {late}")  # not seen: noticed at a full read

    kit.now += timedelta(minutes=10)
    kit.fake.reset_requests()
    full = kit.run(config, full=True)
    assert full.status == "ok", full.error
    assert filtered(kit) == [False]
    assert (full.new, full.updated) == (0, 1)
    assert credited(kit) == {"T-1": (4, f"response {early}"), "T-2": (5, "response ACYDBNj000003")}
    assert (f"response {late}", 1) in history(kit)

    # Read in full again: nothing more to credit.
    kit.now += timedelta(minutes=10)
    again = kit.run(config, full=True)
    assert (again.new, again.updated) == (0, 0)
    assert credited(kit) == fresh_credited(kit, config)


def test_the_full_read_full_read_hours_make_due_credits_again_too(kit):
    """Without ``--full``: the run that reads every response because ``full_read_hours``
    passed credits the earlier response again."""
    anna = kit.survey("T-1", "7", "Anna")
    kit.fake.add_form(FORM, [])
    early = submit(kit, 1, kit.now - timedelta(hours=3), 4, anna)
    late = submit(kit, 2, kit.now - timedelta(hours=2), 2, anna)
    config = forms_config(kit, full_read_hours=6)
    assert kit.run(config).new == 1
    kit.fake.delete_response(FORM, late)
    kit.now += timedelta(hours=6)
    kit.fake.reset_requests()
    due = kit.run(config)
    assert filtered(kit) == [False] and due.updated == 1
    assert credited(kit) == {"T-1": (4, f"response {early}")}


def test_a_surveys_only_response_deleted_keeps_its_answer(kit):
    """The sync never deletes an answer: a survey none of whose responses is left keeps what
    was read, through a full read too."""
    anna = kit.survey("T-1", "7", "Anna")
    boris = kit.survey("T-2", "8", "Boris")
    kit.fake.add_form(FORM, [])
    gone = submit(kit, 1, kit.now - timedelta(hours=3), 3, anna)
    submit(kit, 2, kit.now - timedelta(hours=2), 5, boris)
    config = forms_config(kit)
    assert kit.run(config).new == 2
    kit.fake.delete_response(FORM, gone)
    kit.now += timedelta(minutes=10)
    full = kit.run(config, full=True)
    assert (full.status, full.new, full.updated) == ("ok", 0, 0)
    assert {k: v[0] for k, v in credited(kit).items()} == {"T-1": 3, "T-2": 5}
    assert full.totals["answers"] == 2


def test_an_edited_response_read_in_full_stays_credited(kit):
    """An edited response keeps its responseId and lists only its latest version: the
    version it replaced (history) is not listed, and the edit stays credited."""
    anna = kit.survey("T-1", "7", "Anna")
    kit.fake.add_form(FORM, [])
    submit(kit, 1, kit.now - timedelta(hours=3), 4, anna)
    config = forms_config(kit)
    assert kit.run(config).new == 1
    edited = submit(kit, 1, kit.now - timedelta(hours=1), 2, anna)
    kit.now += timedelta(minutes=10)
    assert kit.run(config).updated == 1
    kit.now += timedelta(minutes=10)
    full = kit.run(config, full=True)
    assert (full.new, full.updated) == (0, 0)
    assert credited(kit) == {"T-1": (2, f"response {edited}")}


@pytest.mark.parametrize(
    ("ratings", "raised"),
    [((1, 5), {"low": 1}), ((2, 1), {})],
    ids=["lowered alerts", "raised alerts nothing"],
)
def test_a_rating_credited_again_alerts_as_any_edit(kit, ratings, raised):
    """The later response deleted: the earlier one credited again is an edit of the answer.
    A 5 replaced by an earlier 1 alerts; a 1 (alerted) replaced by an earlier 2 does not."""
    anna = kit.survey("T-1", "7", "Anna")
    kit.fake.add_form(FORM, [])
    earlier, later = ratings
    at = (kit.now - timedelta(minutes=3)).replace(microsecond=0)
    submit(kit, 1, at - timedelta(minutes=1), earlier, anna)
    late = submit(kit, 2, at, later, anna)
    config = alerting(kit)
    first = kit.run(config)
    assert first.status == "ok", first.error
    assert first.alerts["raised"] == ({"low": 1} if later <= 2 else {})
    kit.fake.delete_response(FORM, late)
    kit.now += timedelta(minutes=1)
    full = kit.run(config, full=True)
    assert full.status == "ok", full.error
    assert full.alerts["raised"] == raised
    assert credited(kit)["T-1"][0] == earlier


def test_a_new_response_outranking_the_earlier_one_is_credited_instead(kit):
    """The later 5 deleted and a newer 3 submitted, read by one full read: the 3 is credited
    (as a first run would), and the earlier 1 is never credited on the way (no alert)."""
    anna = kit.survey("T-1", "7", "Anna")
    kit.fake.add_form(FORM, [])
    at = (kit.now - timedelta(minutes=5)).replace(microsecond=0)
    submit(kit, 1, at - timedelta(minutes=2), 1, anna)
    late = submit(kit, 2, at - timedelta(minutes=1), 5, anna)
    config = alerting(kit)
    assert kit.run(config).alerts["raised"] == {}
    kit.fake.delete_response(FORM, late)
    newest = submit(kit, 3, at, 3, anna)
    kit.now += timedelta(minutes=1)
    full = kit.run(config, full=True)
    assert (full.status, full.updated, full.alerts["raised"]) == ("ok", 1, {})
    assert credited(kit) == {"T-1": (3, f"response {newest}")}


def test_an_earlier_response_the_filter_missed_is_credited_once_the_later_one_is_gone(kit):
    """A 2 credited; an earlier 4 of the survey listed before the filtered window (never
    read), and the 2's response deleted: the full read reads the 4, new and earlier than the
    stored answer, and credits it, the survey's only response left (a first run would)."""
    anna = kit.survey("T-1", "7", "Anna")
    kit.fake.add_form(FORM, [])
    late = submit(kit, 2, kit.now - timedelta(hours=1), 2, anna)
    config = forms_config(kit)
    assert kit.run(config).new == 1
    early = submit(kit, 1, kit.now - timedelta(days=1), 4, anna)  # outside the window
    kit.now += timedelta(minutes=10)
    assert kit.run(config).history_only == 0 and credited(kit)["T-1"][0] == 2  # not listed
    kit.fake.delete_response(FORM, late)
    kit.now += timedelta(minutes=10)
    full = kit.run(config, full=True)
    assert (full.status, full.new, full.updated) == ("ok", 0, 1)
    assert credited(kit) == {"T-1": (4, f"response {early}")}
    assert (f"response {late}", 2) in history(kit)
