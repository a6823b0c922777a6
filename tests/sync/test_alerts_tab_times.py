"""The Alerts tab's times are date-times a manager can sort, filter and compute with, in
``metrics.timezone`` and saying so, as on the report's other tabs: serial numbers under a
date-time format in Google Sheets, date cells in the .xlsx, local ``YYYY-MM-DD HH:MM`` in
``alerts.csv``. They were text (``"2026-11-20 19:30"``) in all three, under a header that
named no zone."""

from __future__ import annotations

import base64
import csv
from datetime import datetime
from datetime import timedelta

from openpyxl import load_workbook

from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
ZONE = "Asia/Kolkata"  # UTC+5:30


def test_alert_times_are_local_date_times_under_a_header_naming_the_zone(kit):
    config = kit.config(
        metrics={"timezone": ZONE},
        output={"local": {"enabled": True, "csv": True}},
        alerts={
            "destinations": {
                "crm": {"kind": "webhook", "url": "http://127.0.0.1:9/hook", "secret": SECRET}
            },
            "rules": [
                {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["crm"]}
            ],
        },
    )
    kit.responses([EN_HEADER], time_zone="UTC")
    assert kit.run(config).status == "ok"  # the rule is seen from now on
    kit.now += timedelta(hours=2)  # 14:00 UTC, 19:30 in Kolkata
    token = kit.survey("T-1", "7", "Anna", team="Care")
    submitted = kit.now - timedelta(minutes=10)  # 19:20 in Kolkata
    kit.fake.append_rows(
        SHEET_ID,
        "Form Responses 1",
        [[submitted.strftime("%m/%d/%Y %H:%M:%S"), "1", '=HYPERLINK("x")', "", "", token]],
    )
    summary = kit.run(config)
    assert summary.status == "ok" and summary.alerts["raised"] == {"low": 1}, summary
    raised, sent = f"Raised ({ZONE})", f"Submitted ({ZONE})"

    sheet = load_workbook(kit.tmp_path / "report" / "csat-report.xlsx")["Alerts"]
    header = [c.value for c in sheet[1]]
    row = {h: c for h, c in zip(header, sheet[2], strict=False)}
    assert row[raised].value == datetime(2026, 11, 20, 19, 30)
    assert row[sent].value == datetime(2026, 11, 20, 19, 20)
    assert row[raised].is_date and row[raised].number_format == "yyyy-mm-dd hh:mm"
    assert row[sent].is_date and row[sent].number_format == "yyyy-mm-dd hh:mm"
    assert (row["Comment"].value, row["Comment"].data_type) == ('=HYPERLINK("x")', "s")

    cells = kit.sheet("Alerts")
    values = dict(zip(cells[0], cells[1], strict=False))
    serial = (datetime(2026, 11, 20, 19, 30) - datetime(1899, 12, 30)) / timedelta(days=1)
    assert abs(values[raised] - serial) < 1e-6
    tab = next(t for t in kit.fake.spreadsheets[SHEET_ID].tabs if t.title == "Alerts")
    column = cells[0].index(raised)
    assert any(
        op.col0 <= column < op.col1
        and op.cell_format.get("numberFormat", {}).get("type") == "DATE_TIME"
        for op in tab.formats
    )

    with (kit.tmp_path / "report" / "alerts.csv").open(encoding="utf-8-sig") as handle:
        [line] = list(csv.DictReader(handle))
    assert (line[raised], line[sent]) == ("2026-11-20 19:30", "2026-11-20 19:20")
    assert line["Comment"] == '\'=HYPERLINK("x")'

    again = kit.run(config)  # nothing new: the tab (and its looks) stay as they are
    assert again.status == "ok" and again.requests["sheets_write"] == 0, again
