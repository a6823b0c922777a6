"""The team's "Handled" edits in the Alerts tab survive what a manager does to the tab: a
rename ("Alerts" → "Alerts (old)", a snapshot kept) and checkboxes in the column."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.alerts import store as alerts_store
from csat_hook.alerts.report import Checkbox
from csat_hook.alerts.report import Checkboxes
from csat_hook.alerts.report import boxed_rows
from csat_hook.alerts.report import handled_cells
from csat_hook.alerts.report import written_handled
from csat_hook.config import Config
from csat_hook.db.schema import alerts
from csat_hook.devtools.fake_notify import FakeNotify
from csat_hook.sync.google import api
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID


@pytest.fixture
def receivers(kit: Any) -> Iterator[FakeNotify]:
    fake = FakeNotify(now=lambda: kit.now.timestamp()).start()
    yield fake
    fake.stop()


def config(kit: Any, receivers: FakeNotify) -> Config:
    slack = {"slack": {"kind": "slack", "webhook_url": receivers.slack_hook()}}
    rule = {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
    return kit.config(alerts={"destinations": slack, "rules": [rule]})


def two_alerts(kit: Any) -> None:
    answered = (kit.now - timedelta(minutes=2)).strftime("%m/%d/%Y %H:%M:%S")
    first = kit.survey("T-1", "7", "Anna")
    second = kit.survey("T-2", "7", "Anna")
    kit.responses(
        [EN_HEADER, [answered, 1, "rude", "", "", first], [answered, 2, "slow", "", "", second]],
        time_zone="UTC",
    )


def handled(kit: Any, title: str = "Alerts") -> dict[int, Any]:
    header, *rows = kit.sheet(title)
    key, column = header.index("Alert"), header.index("Handled")
    return {
        row[key]: (row[column] if column < len(row) else None) for row in rows if row and row[key]
    }


def stored(kit: Any) -> dict[int, str | None]:
    with kit.engine.connect() as conn:
        return dict(conn.execute(sa.select(alerts.c.id, alerts.c.handled)).all())


def test_edits_made_before_the_tab_was_renamed_are_kept(kit, receivers):
    """A manager marks an alert handled, then renames "Alerts" to "Alerts (old)" to keep it
    as it is: the renamed tab is theirs (never written again), and the sync made a new
    "Alerts"; the edit made since the last sync was never read (it was looked for in a tab
    of the kind under the title the report gave it), and the new tab lost it."""
    cfg = config(kit, receivers)
    two_alerts(kit)
    assert kit.run(cfg).alerts["raised"] == {"low": 2}
    header = kit.sheet("Alerts")[0]
    target = kit.sheet("Alerts")[1][0]
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, header.index("Handled"), "Anna: called back")
    kit.fake.tab(SHEET_ID, "Alerts").title = "Alerts (old)"
    snapshot = kit.sheet("Alerts (old)")

    kit.now += timedelta(minutes=5)
    summary = kit.run(cfg)

    assert summary.status == "ok", summary.error
    assert stored(kit)[target] == "Anna: called back"
    assert handled(kit)[target] == "Anna: called back"
    assert kit.sheet("Alerts (old)") == snapshot  # the manager's, left as it is
    assert any("Alerts (old)" in w for w in summary.warnings)

    # The snapshot is read no more: an edit in the new tab is not undone by its old cell.
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, header.index("Handled"), "Boris")
    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).status == "ok"
    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).status == "ok"
    assert stored(kit)[target] == "Boris"
    assert handled(kit)[target] == "Boris"


def test_a_renamed_tab_older_than_the_last_write_is_not_read(kit, receivers):
    """A snapshot renamed long ago ("Alerts (old)") and the current Alerts tab deleted by a
    manager: the snapshot's stale cells must not undo what was marked since."""
    cfg = config(kit, receivers)
    two_alerts(kit)
    assert kit.run(cfg).status == "ok"
    header = kit.sheet("Alerts")[0]
    target = kit.sheet("Alerts")[1][0]
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, header.index("Handled"), "old mark")
    kit.fake.tab(SHEET_ID, "Alerts").title = "Alerts (old)"
    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).status == "ok"
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, header.index("Handled"), "new mark")
    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).status == "ok"
    assert stored(kit)[target] == "new mark"
    with kit.fake.lock:
        sheet = kit.fake.spreadsheets[SHEET_ID]
        sheet.tabs.remove(sheet.tab_by_title("Alerts"))

    kit.now += timedelta(minutes=5)
    summary = kit.run(cfg)

    assert summary.status == "ok", summary.error
    assert stored(kit)[target] == "new mark"
    assert handled(kit)[target] == "new mark"


def test_checkboxes_in_handled_stay_checkboxes(kit, receivers, tmp_path):
    """A manager puts checkboxes in "Handled" (data validation BOOLEAN: the cells hold TRUE
    or FALSE, read unformatted as JSON booleans). A ticked box counts as handled, an unticked
    one as not, and the column is written back as booleans: a ticked box was rewritten as the
    text "yes" and an unticked one emptied, the checkbox gone from the cell's value."""
    cfg = config(kit, receivers)
    two_alerts(kit)
    assert kit.run(cfg).status == "ok"
    header = kit.sheet("Alerts")[0]
    column = header.index("Handled")
    newest, oldest = (row[0] for row in kit.sheet("Alerts")[1:3])
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, column, True)  # ticked
    kit.fake.set_cell(SHEET_ID, "Alerts", 2, column, False)  # inserted, not ticked

    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).status == "ok"

    assert stored(kit) == {newest: "yes", oldest: None}
    assert handled(kit) == {newest: True, oldest: False}

    # Marked from the command line: its box is ticked, the words kept in the database.
    with kit.engine.begin() as conn:
        alerts_store.set_handled(conn, [oldest], "Boris", kit.now)
    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).status == "ok"
    assert handled(kit) == {newest: True, oldest: True}
    assert stored(kit) == {newest: "yes", oldest: "Boris"}

    # Unticked in the sheet: not handled any more.
    kit.fake.set_cell(SHEET_ID, "Alerts", 2, column, False)
    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).status == "ok"
    assert stored(kit) == {newest: "yes", oldest: None}
    assert handled(kit) == {newest: True, oldest: False}


def new_alert(kit: Any, ticket: str = "T-3") -> None:
    token = kit.survey(ticket, "7", "Anna")
    answered = kit.now.strftime("%m/%d/%Y %H:%M:%S")
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[answered, 1, "again", "", "", token]])


def test_a_new_alert_under_checkboxes_gets_an_unticked_box(kit, receivers):
    """A box read in a row (no rule said, as before rules were read) keeps its row's form: the
    new alert, newest first, lands in that row and gets an unticked box; the alerts pushed
    down take the form of the rows they land in (a cell without a box: their words, or blank
    while not handled), not a TRUE/FALSE in a cell that shows the word."""
    cfg = config(kit, receivers)
    two_alerts(kit)
    assert kit.run(cfg).status == "ok"
    column = kit.sheet("Alerts")[0].index("Handled")
    boxed, worded = (row[0] for row in kit.sheet("Alerts")[1:3])
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, column, False)
    kit.fake.set_cell(SHEET_ID, "Alerts", 2, column, "Anna")  # words in an unboxed cell
    new_alert(kit)

    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).alerts["raised"] == {"low": 1}

    newest = kit.sheet("Alerts")[1][0]
    assert handled(kit) == {newest: False, boxed: None, worded: "Anna"}
    assert stored(kit) == {newest: None, boxed: None, worded: "Anna"}


CHECKBOX = {"condition": {"type": "BOOLEAN"}}
YES_NO = {
    "condition": {
        "type": "BOOLEAN",
        "values": [{"userEnteredValue": "Yes"}, {"userEnteredValue": "No"}],
    },
    "showCustomUi": True,
}
ONE_ZERO = {
    "condition": {
        "type": "BOOLEAN",
        "values": [{"userEnteredValue": "1"}, {"userEnteredValue": "0"}],
    }
}


def test_custom_valued_checkboxes_are_read_and_written_with_their_values(kit, receivers):
    """Checkboxes with custom values ("Yes"/"No", 1/0: data validation BOOLEAN with two
    condition values). An unticked one holds "No" (or 0): read as the team's words it counted
    as handled, and the box was written back as text. Now a cell with a BOOLEAN rule is
    handled when it holds the rule's checked value, and is written back with its own values."""
    cfg = config(kit, receivers)
    two_alerts(kit)
    assert kit.run(cfg).status == "ok"
    column = kit.sheet("Alerts")[0].index("Handled")
    newest, oldest = (row[0] for row in kit.sheet("Alerts")[1:3])
    kit.fake.set_validation(SHEET_ID, "Alerts", 1, column, YES_NO)
    kit.fake.set_validation(SHEET_ID, "Alerts", 2, column, ONE_ZERO)
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, column, "No")  # unticked
    kit.fake.set_cell(SHEET_ID, "Alerts", 2, column, 1)  # ticked

    kit.now += timedelta(minutes=5)
    kit.fake.reset_requests()
    assert kit.run(cfg).status == "ok"

    assert stored(kit) == {newest: None, oldest: "yes"}
    assert handled(kit) == {newest: "No", oldest: 1}
    # The tab read in one spreadsheets.get (values and rules), checked against the document.
    reads = [r for r in kit.fake.api_requests("sheets_read") if r["path"].endswith(SHEET_ID)]
    reads = [r for r in reads if "ranges" in r["query"]]
    assert [(r["query"]["fields"], r["status"]) for r in reads] == [([api.CELLS_FIELDS], 200)]

    # Ticked and unticked in the sheet: read so, written back with the cell's own values.
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, column, "Yes")
    kit.fake.set_cell(SHEET_ID, "Alerts", 2, column, 0)
    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).status == "ok"
    assert stored(kit) == {newest: "yes", oldest: None}
    assert handled(kit) == {newest: "Yes", oldest: 0}

    # Marked from the command line: the box is ticked with its own checked value.
    with kit.engine.begin() as conn:
        alerts_store.set_handled(conn, [oldest], "Boris", kit.now)
    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).status == "ok"
    assert handled(kit) == {newest: "Yes", oldest: 1}
    assert stored(kit) == {newest: "yes", oldest: "Boris"}


def in_form(kit: Any) -> None:
    """Every "Handled" cell of the Alerts tab holds what its rule allows (a checkbox's
    checked or unchecked value), a cell without a rule no TRUE/FALSE."""
    tab = kit.fake.tab(SHEET_ID, "Alerts")
    column = kit.sheet("Alerts")[0].index("Handled")
    for row in range(1, len(kit.sheet("Alerts"))):
        cell = tab.get(row, column)
        rule = tab.validations.get((row, column))
        if rule is None:
            assert not isinstance(cell, bool), (row, cell)
            continue
        values = [v["userEnteredValue"] for v in rule["condition"].get("values", [])]
        allowed = {True, False} if not values else {*values, None} if len(values) == 1 else set()
        allowed |= {int(v) if v.isdigit() else v for v in values}
        assert cell in allowed, (row, cell, values)


def test_a_mixed_column_is_written_back_cell_by_cell(kit, receivers):
    """Some "Handled" cells a plain checkbox, some a "Yes"/"No" one, the rest text. Whether
    the column was written as checkboxes was decided per alert: an alert once read as a box
    was written TRUE/FALSE wherever it moved (into a "Yes"/"No" box: a value the box does not
    have; into a text cell: the word "TRUE"), and an unticked "Yes"/"No" box was read as the
    words "No". Each cell is now written in the form the cell has, the value the alert's; in
    the same one value write as before, the rules read in one spreadsheets.get."""
    cfg = config(kit, receivers)
    two_alerts(kit)
    assert kit.run(cfg).status == "ok"
    column = kit.sheet("Alerts")[0].index("Handled")
    first, second = (row[0] for row in kit.sheet("Alerts")[1:3])
    kit.fake.set_validation(SHEET_ID, "Alerts", 1, column, CHECKBOX)
    kit.fake.set_validation(SHEET_ID, "Alerts", 2, column, YES_NO)
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, column, True)  # ticked
    kit.fake.set_cell(SHEET_ID, "Alerts", 2, column, "No")  # unticked
    new_alert(kit)

    kit.now += timedelta(minutes=5)
    kit.fake.reset_requests()
    assert kit.run(cfg).alerts["raised"] == {"low": 1}

    newest = kit.sheet("Alerts")[1][0]
    assert stored(kit) == {newest: None, first: "yes", second: None}
    # The new alert in the plain box (unticked), the first in the "Yes"/"No" one (ticked),
    # the second in a cell without a rule (not handled: blank).
    assert handled(kit) == {newest: False, first: "Yes", second: None}
    in_form(kit)
    writes = [r["path"] for r in kit.fake.api_requests("sheets_write")]
    assert [p for p in writes if p.endswith("values:batchUpdate")] == [writes[-1]]
    assert [r["query"].get("fields") for r in kit.fake.api_requests("sheets_read")].count(
        [api.CELLS_FIELDS]
    ) == 1

    # Edits in each form are read back: the box unticked, the words typed.
    kit.fake.set_cell(SHEET_ID, "Alerts", 2, column, "No")
    kit.fake.set_cell(SHEET_ID, "Alerts", 3, column, "Boris")
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, column, True)
    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).status == "ok"
    assert stored(kit) == {newest: "yes", first: None, second: "Boris"}
    assert handled(kit) == {newest: True, first: "No", second: "Boris"}
    in_form(kit)


def test_a_handled_column_the_team_moved_is_read_where_it_is(kit, receivers):
    """The tab is read as the header row and the columns it is written with "Alert" and
    "Handled" in; moved elsewhere (the team dragged "Handled" to column P), the column is
    read where the header says, in one more read, its checkboxes with it."""
    cfg = config(kit, receivers)
    two_alerts(kit)
    assert kit.run(cfg).status == "ok"
    column = kit.sheet("Alerts")[0].index("Handled")
    newest, oldest = (row[0] for row in kit.sheet("Alerts")[1:3])
    moved = 15
    tab = kit.fake.tab(SHEET_ID, "Alerts")
    tab.cols = max(tab.cols, moved + 1)  # columns the team added
    for row, value in enumerate(["Handled", "No", "Anna"]):
        kit.fake.set_cell(SHEET_ID, "Alerts", row, column, "Notes" if row == 0 else "")
        kit.fake.set_cell(SHEET_ID, "Alerts", row, moved, value)
    kit.fake.set_validation(SHEET_ID, "Alerts", 1, moved, YES_NO)

    kit.now += timedelta(minutes=5)
    summary = kit.run(cfg)

    assert summary.status == "ok", summary.error
    assert summary.requests["sheets_read"] == 4  # metadata, responses, the Alerts tab twice
    assert stored(kit) == {newest: None, oldest: "Anna"}
    assert handled(kit) == {newest: None, oldest: "Anna"}  # written back in place


def test_a_tab_narrower_than_the_columns_it_is_written_in_is_still_read(kit, receivers):
    """The team deleted columns ("Comment" to "Deliveries"): the tab is narrower than the
    column "Handled" is written in. Asked for that column, Google refuses the read (the range
    exceeds the grid): every sync failed, the team's edits never read. Only the columns the
    grid has are asked for; "Handled" is read where the header says."""
    cfg = config(kit, receivers)
    two_alerts(kit)
    assert kit.run(cfg).status == "ok"
    header = kit.sheet("Alerts")[0]
    column = header.index("Handled")
    newest, oldest = (row[0] for row in kit.sheet("Alerts")[1:3])
    tab = kit.fake.tab(SHEET_ID, "Alerts")
    with kit.fake.lock:
        tab.cells = [line[:5] + line[column : column + 1] for line in tab.cells]
        tab.cols = 6
    kit.fake.set_cell(SHEET_ID, "Alerts", 2, 5, "Anna")

    kit.now += timedelta(minutes=5)
    summary = kit.run(cfg)

    assert summary.status == "ok", summary.error
    assert stored(kit) == {newest: None, oldest: "Anna"}
    assert handled(kit) == {newest: None, oldest: "Anna"}


def test_a_checkbox_is_read_and_written_with_its_own_values():
    """Zero, one or two condition values (sheets.v4.json's BooleanCondition BOOLEAN): TRUE/
    FALSE; the value, else blank; the first, else the second. What a box is written with
    reads back as what the database holds (written_handled, the read-back's comparison)."""
    plain, done, yes_no, one_zero = (
        Checkbox(),
        Checkbox(("Done",)),
        Checkbox(("Yes", "No")),
        Checkbox(("1", "0")),
    )
    assert [plain.cell(True), plain.cell(False)] == [True, False]
    assert [done.cell(True), done.cell(False)] == ["Done", None]
    assert [yes_no.cell(True), yes_no.cell(False)] == ["Yes", "No"]
    assert [one_zero.cell(True), one_zero.cell(False)] == [1, 0]
    assert yes_no.ticked("yes ") and not yes_no.ticked("No") and not yes_no.ticked(True)
    assert one_zero.ticked(1) and one_zero.ticked(1.0) and one_zero.ticked("1")
    assert not one_zero.ticked(0) and not one_zero.ticked(True)
    assert plain.ticked(True) and not plain.ticked(False) and not plain.ticked(1)
    assert done.ticked("Done") and not done.ticked(None) and not done.ticked("")

    header = ["Alert", *[""] * 12, "Handled"]
    rows = [header, [5, *[""] * 12, "Anna"], [4, *[""] * 12, None], [3, *[""] * 12, "x"]]
    boxes = Checkboxes({1: yes_no, 2: done})
    written = boxed_rows(rows, boxes)
    assert written is not None
    assert [row[-1] for row in written[1:]] == ["Yes", None, "x"]
    at = {1: yes_no, 2: done}
    assert written_handled(written, boxes) == handled_cells(written, None, at)
    assert written_handled(written, boxes) == {5: "yes", 4: None, 3: "x"}
