"""A structure batch Google applied but whose answer was lost (the connection dropped, a
timeout, a 5xx): sending the same batch again is not safe for every request in it. Rules are
deleted by index (a second pass deletes the rules just added), a chart added under our id is
refused the second time, and a developer metadata entry created twice is two entries. After
such a loss the output reads the spreadsheet again and plans from what is there; the
spreadsheet ends as a run without the loss leaves it."""

from __future__ import annotations

import copy
from typing import Any

from csat_hook.devtools import sheets_model
from csat_hook.sync.outputs.sheets import FORMAT_KEY
from tests.sync.conftest import SHEET_ID
from tests.sync.test_sheets_looks import seed

STRUCTURE = r"^/v4/spreadsheets/[^/]+:batchUpdate$"


def structure_writes(kit) -> list[Any]:
    return [
        w["status"]
        for w in kit.fake.api_requests("sheets_write")
        if w["path"].endswith(":batchUpdate") and "/values" not in w["path"]
    ]


def summary(kit) -> sheets_model.Tab:
    return kit.fake.tab(SHEET_ID, "Summary")


def add_rule(kit, tab: sheets_model.Tab) -> None:
    """A rule a person added on the tab (the report replaces every rule of its tabs)."""
    rule = {
        "ranges": [{"sheetId": tab.sheet_id, "startRowIndex": 0, "endRowIndex": 1}],
        "booleanRule": {
            "condition": {"type": "NOT_BLANK"},
            "format": {"textFormat": {"italic": True}},
        },
    }
    sheets_model.batch_update(
        kit.fake.spreadsheets[SHEET_ID],
        [{"addConditionalFormatRule": {"index": 0, "rule": rule}}],
    )


def lost_then_run(kit, status: int = 0) -> None:
    kit.fake.reset_requests()
    kit.fake.lose(1, "sheets_write", path=STRUCTURE, status=status)
    done = kit.run()
    assert done.status == "ok", done.error


def test_a_repair_of_a_chart_whose_answer_was_lost_is_not_refused(kit):
    """A person deleted the report's chart; the run adds it again under its id, Google does
    it and the answer is lost. Sent again, the addChart was refused ("An object with id ...
    already exists"): the run failed and the report's values were not written."""
    seed(kit)
    assert kit.run().status == "ok"
    wanted = kit.fake.state(SHEET_ID)
    [chart_id] = list(summary(kit).charts)
    sheets_model.batch_update(
        kit.fake.spreadsheets[SHEET_ID], [{"deleteEmbeddedObject": {"objectId": chart_id}}]
    )

    lost_then_run(kit)

    assert kit.fake.state(SHEET_ID) == wanted
    assert structure_writes(kit) == ["dropped"]  # nothing sent blindly again


def test_rules_replaced_after_a_lost_answer_are_not_stacked(kit):
    """A person deleted one of the report's rules: the run deletes the tab's rules by their
    count (one fewer) and adds them all. Sent again after the loss, the deletes took all but
    one of the rules just added and the adds stacked a second set on that one."""
    seed(kit)
    assert kit.run().status == "ok"
    wanted = kit.fake.state(SHEET_ID)
    tab = summary(kit)
    sheets_model.batch_update(
        kit.fake.spreadsheets[SHEET_ID],
        [{"deleteConditionalFormatRule": {"sheetId": tab.sheet_id, "index": 0}}],
    )

    lost_then_run(kit, status=503)

    [before] = [t for t in wanted["tabs"] if t["properties"]["title"] == "Summary"]
    assert len(summary(kit).rules) == len(before["conditionalFormats"])
    assert kit.fake.state(SHEET_ID) == wanted


def test_a_stray_rule_removed_after_a_lost_answer_leaves_no_error(kit):
    """A person added a rule: the run deletes one more rule than it adds. Sent again, the
    last delete found no rule at index 0 and Google refused the whole batch: the run failed."""
    seed(kit)
    assert kit.run().status == "ok"
    wanted = kit.fake.state(SHEET_ID)
    add_rule(kit, summary(kit))

    lost_then_run(kit)

    assert kit.fake.state(SHEET_ID) == wanted


def test_the_looks_digest_written_after_a_lost_answer_is_one_entry(kit):
    """The looks' digest is created (no entry yet: a spreadsheet written by a version before
    it, or an entry a person deleted) and the answer lost: sent again, the spreadsheet held
    two entries under the key, for good."""
    seed(kit)
    assert kit.run().status == "ok"
    wanted = kit.fake.state(SHEET_ID)
    spreadsheet = kit.fake.spreadsheets[SHEET_ID]
    spreadsheet.developer_metadata = []

    lost_then_run(kit)

    stored = [m for m in spreadsheet.developer_metadata if m["metadataKey"] == FORMAT_KEY]
    assert len(stored) == 1
    assert stored[0]["metadataValue"] == wanted["developerMetadata"][0]["metadataValue"]
    # The same spreadsheet but the entry's id (Google gives a new one to a new entry).
    renumbered = copy.deepcopy(wanted)
    renumbered["developerMetadata"][0]["metadataId"] = stored[0]["metadataId"]
    assert kit.fake.state(SHEET_ID) == renumbered


def test_a_first_run_whose_structure_answer_was_lost_converges(kit):
    """The first run's batch (tabs, records, looks) applied and its answer lost: the run
    reads the spreadsheet again and finds everything there. The next run has nothing to
    write, and no tab, rule, chart or record is doubled."""
    seed(kit)
    lost_then_run(kit)
    state = kit.fake.state(SHEET_ID)
    for tab in state["tabs"]:
        keys = [m["metadataKey"] for m in tab.get("developerMetadata", [])]
        assert len(keys) == len(set(keys)), tab["properties"]["title"]
    assert len(state["developerMetadata"]) == 1
    kit.fake.reset_requests()
    assert kit.run().status == "ok"
    assert kit.fake.api_requests("sheets_write") == []
    assert kit.fake.state(SHEET_ID) == state


def test_a_503_that_applied_nothing_sends_the_batch_again_after_reading(kit):
    """A 503 may also mean nothing was done: planned again from the spreadsheet as it is, the
    same batch goes out once more, after the session's backoff."""
    seed(kit)
    kit.fake.fail(1, 503, "sheets_write")
    done = kit.run()

    assert done.status == "ok", done.error
    assert structure_writes(kit) == [503, 200]
    assert kit.sleeps  # waited before sending it again
    state = kit.fake.state(SHEET_ID)
    kit.fake.reset_requests()
    assert kit.run().status == "ok"
    assert kit.fake.api_requests("sheets_write") == []
    assert kit.fake.state(SHEET_ID) == state


def test_answers_lost_every_time_end_the_run_with_a_clear_error(kit):
    """Never a sure answer (a 5xx each time, nothing applied): the batch is planned again and
    sent as many times as the session would have sent it (``google.max_retries``), then the
    run fails saying so; the next run writes the report."""
    seed(kit)
    config = kit.config()
    tries = config.google.max_retries + 1
    kit.fake.fail(tries, 503, "sheets_write")
    done = kit.run(config)

    assert done.status == "failed"
    assert f"was applied, {tries} times" in str(done.error)
    assert structure_writes(kit) == [503] * tries
    assert kit.fake.count("sheets_read") >= tries  # read again before each
    kit.fake.reset_requests()
    assert kit.run(config).status == "ok"
    state = kit.fake.state(SHEET_ID)
    assert len(state["developerMetadata"]) == 1
    kit.fake.reset_requests()
    assert kit.run(config).status == "ok"
    assert kit.fake.api_requests("sheets_write") == []
