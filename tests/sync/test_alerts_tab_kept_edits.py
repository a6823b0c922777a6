"""The team's "Handled" edits in the Alerts tab survive what a manager does to the tab: a
rename ("Alerts" → "Alerts (old)", a snapshot kept) and checkboxes in the column."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.alerts import store as alerts_store
from csat_hook.config import Config
from csat_hook.db.schema import alerts
from csat_hook.devtools.fake_notify import FakeNotify
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


def test_a_new_alert_under_checkboxes_gets_an_unticked_box(kit, receivers):
    cfg = config(kit, receivers)
    two_alerts(kit)
    assert kit.run(cfg).status == "ok"
    column = kit.sheet("Alerts")[0].index("Handled")
    kit.fake.set_cell(SHEET_ID, "Alerts", 1, column, False)
    kit.fake.set_cell(SHEET_ID, "Alerts", 2, column, "Anna")  # words in an unboxed cell
    token = kit.survey("T-3", "7", "Anna")
    answered = kit.now.strftime("%m/%d/%Y %H:%M:%S")
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[answered, 1, "again", "", "", token]])

    kit.now += timedelta(minutes=5)
    assert kit.run(cfg).alerts["raised"] == {"low": 1}

    assert sorted(map(str, handled(kit).values())) == ["Anna", "False", "False"]
