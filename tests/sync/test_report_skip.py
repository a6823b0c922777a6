"""An unchanged report is not built again (sync/report_key.py): a run that finds nothing new
skips the dataset, the report and the writes, and every change of what a report is built from
builds it again: the source, a setting, a survey's status, a click, an alert, the date, a
deleted output, ``--full``. Each case is checked by the run's own account
(``summary.report``) and, where the report shows it, by the cells written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.alerts import store as alerts_store
from csat_hook.db.schema import link_clicks
from csat_hook.db.schema import surveys
from csat_hook.db.schema import sync_outputs
from csat_hook.sync import report_key
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
RESPONSES = "Form Responses 1"


def seed(kit: Any, count: int = 4) -> list[list[Any]]:
    rows: list[list[Any]] = [EN_HEADER]
    for n in range(count):
        token = kit.survey(f"T-{n}", str(n % 2), f"Agent {n % 2}", created=T0 - timedelta(days=1))
        rows.append([T0 + timedelta(hours=n), 5 - n % 3, f"comment {n}", "", "", token])
    kit.responses(rows)
    return rows


def both_outputs(kit: Any, **extra: Any) -> Any:
    return kit.config(output={"local": {"enabled": True, "csv": True}}, **extra)


def count_answer_reads(monkeypatch: Any, reads: list[int]) -> None:
    """Every read of all the answers (at once or streamed) appends how many it read."""
    from csat_hook.sync import store

    for name in ("all_answers", "iter_answers"):
        original = getattr(store, name)

        def counting(conn: Any, _original: Any = original) -> Any:
            found = list(_original(conn))
            reads.append(len(found))
            return iter(found) if _original.__name__.startswith("iter") else found

        monkeypatch.setattr(store, name, counting)


def version(kit: Any) -> str:
    with kit.engine.connect() as conn:
        return report_key.read_version(conn)


def test_a_run_that_finds_nothing_new_skips_the_report_and_says_what_it_holds(kit):
    seed(kit)
    config = both_outputs(kit)
    first = kit.run(config)
    assert (first.status, first.report, first.new) == ("ok", "built", 4), first.error
    written = kit.sheet("Summary")
    kit.fake.reset_requests()

    second = kit.run(config)

    assert (second.status, second.report, second.new) == ("ok", "unchanged", 0)
    assert second.agents == first.agents == 2
    assert second.totals == first.totals
    assert kit.fake.count("sheets_write") == 0
    assert kit.sheet("Summary") == written
    local, sheets = second.outputs
    assert local["unchanged"] and sorted(local["files"]) == sorted(first.outputs[0]["files"])
    assert (sheets["kind"], sheets["unchanged"], sheets["write_requests"]) == ("gsheets", True, 0)
    assert sheets["tabs"] == first.outputs[1]["tabs"]


def edit_a_cell(kit: Any, config: Any) -> Any:
    kit.fake.set_cell(SHEET_ID, RESPONSES, 1, 1, 1)  # row 2's rating → 1
    return config


def add_a_row(kit: Any, config: Any) -> Any:
    token = kit.survey("T-new", "1", "Agent 1", created=T0)
    kit.fake.append_rows(SHEET_ID, RESPONSES, [[T0 + timedelta(days=1), 2, "", "", "", token]])
    return config


def change_a_setting(kit: Any, config: Any) -> Any:
    return both_outputs(kit, metrics={"min_n": 1})


def mark_a_survey_sent(kit: Any, config: Any) -> Any:
    kit.survey("T-queued", "1", "Agent 1", created=T0, status="queued")
    kit.run(config)  # the new queued survey: built again once
    with kit.engine.begin() as conn:  # as the outbox does when the reply went out
        conn.execute(
            sa.update(surveys)
            .where(surveys.c.dialog_id == "T-queued")
            .values(status="sent", sent_at=T0)
        )
    return config


def click_a_link(kit: Any, config: Any) -> Any:
    with kit.engine.begin() as conn:
        survey_id = conn.execute(sa.select(sa.func.min(surveys.c.id))).scalar_one()
        conn.execute(
            sa.insert(link_clicks).values(survey_id=survey_id, method="GET", clicked_at=T0)
        )
    return config


def handle_an_alert(kit: Any, config: Any) -> Any:
    with kit.engine.begin() as conn:
        alert_id = alerts_store.insert_alert(
            conn,
            {
                "key": "k" * 64,
                "ref": "A-1",
                "kind": "answer",
                "rule": "low",
                # As the alerts flow stores one: the Alerts tab lists it (rules on or off).
                "payload": {
                    "ref": "A-1",
                    "event": "low_rating",
                    "rule": "low",
                    "created_at": T0.isoformat(),
                },
                "created_at": T0,
            },
        )
    kit.run(config)  # the new alert: built again once
    with kit.engine.begin() as conn:  # csat-hook alerts handle
        alerts_store.set_handled(conn, [alert_id], "Anna", T0)
    return config


def a_new_day(kit: Any, config: Any) -> Any:
    kit.now = kit.now + timedelta(days=1)
    return config


def delete_a_file(kit: Any, config: Any) -> Any:
    files = list((kit.tmp_path / "report").iterdir())
    files[0].unlink()
    return config


def delete_a_tab(kit: Any, config: Any) -> Any:
    with kit.fake.lock:
        sheet = kit.fake.spreadsheets[SHEET_ID]
        sheet.tabs = [t for t in sheet.tabs if t.title != "Trends"]
    return config


CHANGES: dict[str, Callable[[Any, Any], Any]] = {
    "edited cell": edit_a_cell,
    "new row": add_a_row,
    "changed setting": change_a_setting,
    "survey marked sent": mark_a_survey_sent,
    "click": click_a_link,
    "alert handled": handle_an_alert,
    "new day": a_new_day,
    "deleted file": delete_a_file,
    "deleted tab": delete_a_tab,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_every_change_of_what_the_report_is_built_from_builds_it_again(kit, change):
    seed(kit)
    config = both_outputs(kit)
    assert kit.run(config).report == "built"
    assert kit.run(config).report == "unchanged"

    config = CHANGES[change](kit, config)
    again = kit.run(config)

    assert (again.status, again.report) == ("ok", "built"), again.error
    if change == "alert handled":
        # The Alerts tab lists the alert (alert rules on or off) and the write records what
        # its "Handled" cell now holds: an update of the alert, which the data version
        # counts, so the report is built once more (with rules on as well).
        assert kit.run(config).report == "built"
    assert kit.run(config).report == "unchanged"  # and then it is remembered again


def test_a_survey_marked_sent_shows_in_the_report(kit):
    seed(kit)
    kit.survey("T-queued", "1", "Agent 1", created=T0, status="queued")
    kit.run()
    before = kit.sheet("Summary")
    with kit.engine.begin() as conn:
        conn.execute(
            sa.update(surveys).where(surveys.c.dialog_id == "T-queued").values(status="sent")
        )
    assert kit.run().report == "built"
    assert kit.sheet("Summary") != before  # the response rate counts one more survey sent


def test_full_and_dry_runs_build_and_a_dry_run_remembers_nothing(kit):
    seed(kit)
    assert kit.run().report == "built"
    assert kit.run(full=True).report == "built"
    with kit.engine.begin() as conn:
        conn.execute(sa.update(sync_outputs).values(report_key=None))
    dry = kit.run(dry_run=True)
    assert (dry.report, dry.outputs[0]["written"]) == ("built", False)
    assert kit.run().report == "built"  # the dry run left no key behind
    assert kit.run().report == "unchanged"


def test_a_write_that_fails_leaves_no_key(kit):
    seed(kit)
    config = kit.config(output={"gsheets": {"enabled": True}})
    assert kit.run(config).report == "built"
    kit.fake.fail(10, status=500, kind="sheets_write")
    assert kit.run(kit.config(metrics={"min_n": 1})).status == "failed"
    kit.fake.clear_failures()
    # The first run's settings and data again, so the first run's key; but the spreadsheet may
    # hold half of the failed run's report, so it is written again.
    assert kit.run(config).report == "built"


def test_the_data_version_counts_writes_from_outside_the_sync(kit):
    seed(kit)
    kit.run()
    start = version(kit)
    with kit.engine.begin() as conn:
        conn.execute(sa.update(surveys).where(surveys.c.id < 0).values(status="sent"))
    assert version(kit) == start  # no row changed: nothing counted
    with kit.engine.begin() as conn:
        conn.execute(sa.update(surveys).values(team="Team X"))
    assert version(kit) != start


def test_local_only_output_skips_too(kit, tmp_path: Path):
    seed(kit)
    config = kit.config(output={"gsheets": {"enabled": False}, "local": {"enabled": True}})
    assert kit.run(config).report == "built"
    again = kit.run(config)
    assert (again.report, again.outputs[0]["unchanged"]) == ("unchanged", True)


def test_a_run_with_nothing_to_credit_reads_the_answers_back_only_for_a_report(kit, monkeypatch):

    reads: list[int] = []
    count_answer_reads(monkeypatch, reads)
    seed(kit)
    assert kit.run().report == "built"
    # Four answers to credit: looked up in the ingest, everything read once after the commit
    # (the version then covers the run's own writes, on PostgreSQL too).
    assert reads == [4]
    reads.clear()
    assert kit.run().report == "unchanged"
    assert reads == []  # nothing new, report unchanged: no answer read at all
    with kit.engine.begin() as conn:
        conn.execute(sa.update(surveys).values(team="Team X"))
    again = kit.run()
    assert (again.report, reads, again.totals["answers"]) == ("built", [4], 4)


def test_a_batch_larger_than_a_part_is_looked_up_in_parts_and_read_once_after(kit, monkeypatch):
    from csat_hook.sync import report_step

    reads: list[int] = []
    count_answer_reads(monkeypatch, reads)
    monkeypatch.setattr(report_step, "LOOKED_UP_MAX", 3)  # four answers: parts of 3 and 1
    seed(kit)
    assert kit.run().report == "built"
    assert reads == [4]  # none inside the transaction; the report's, after the commit
    reads.clear()
    assert kit.run().report == "unchanged"
    assert reads == []


def test_a_whole_read_reads_back_inside_the_transaction_and_again_on_postgresql(kit, monkeypatch):
    from csat_hook.sync import report_step

    reads: list[int] = []
    count_answer_reads(monkeypatch, reads)
    # What a dry run and an alert rule reading every answer do.
    monkeypatch.setattr(report_step, "LOOKED_UP_MAX", 0)
    seed(kit)
    assert kit.run().report == "built"
    # Read back before the first answers were stored; on PostgreSQL once more after the
    # commit, for a data version that covers the run's own writes (runner.py).
    assert reads == ([0, 4] if kit.engine.name == "postgresql" else [0])
    reads.clear()
    assert kit.run().report == "unchanged"  # either way, the next quiet run skips
    assert reads == []


def test_a_rebuilt_report_whose_cells_are_the_same_writes_no_value(kit):
    seed(kit)
    config = kit.config()
    assert kit.run(config).report == "built"
    with kit.engine.begin() as conn:  # a tracked table changes; nothing the report shows
        conn.execute(sa.update(surveys).values(customer_name="Someone"))
    kit.fake.reset_requests()

    again = kit.run(config)

    sheets = again.outputs[0]
    assert (again.report, sheets["unchanged"], sheets["write_requests"]) == ("built", True, 0)
    assert kit.fake.count("sheets_write") == 0
    with kit.engine.begin() as conn:
        conn.execute(sa.update(surveys).values(team="Team X"))
    changed = kit.run(config).outputs[0]
    assert (changed.get("unchanged", False), changed["write_requests"]) == (False, 1)
    assert kit.fake.count("sheets_write") == 1
