"""A row's identity survives a re-export: another timestamp layout, another column order,
another source kind, CRLF or decomposed accents in a comment. Nothing is processed twice."""

from __future__ import annotations

import csv
import unicodedata
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_skipped_rows
from csat_hook.db.schema import unverified_answers
from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.google.api import FormsApi
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.sources.csv_export import CsvResults
from csat_hook.sync.sources.forms_api import FormsApiResults
from csat_hook.sync.sources.gsheets import GSheetsResults
from csat_hook.sync.values import RatingScale
from tests.sync.conftest import SHEET_ID

MOSCOW = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 9, 27, 12, 0, tzinfo=UTC)  # 15:00 in Moscow
ROLES = ["Timestamp", "Rating", "Comment", "Agent", "Ticket", "Reference"]


def forms_export(when: datetime) -> str:
    """The Forms "Download responses (.csv)" layout: ``2026/09/27 3:00:00 PM GMT+3``."""
    local = when.astimezone(MOSCOW)
    return f"{local:%Y/%m/%d} {local.hour % 12 or 12}:{local:%M:%S %p} GMT+3"


def sheet_saved_as_csv(when: datetime) -> str:
    """A ru_RU sheet saved as CSV: Moscow wall-clock time, ``27.09.2026 15:00:00``."""
    return f"{when.astimezone(MOSCOW):%d.%m.%Y %H:%M:%S}"


def answers_of(kit) -> list[dict]:
    """Role → value: two submissions of one survey (history), one with a multi-line Cyrillic
    comment, a double-click, a forged and a missing reference, a rating that is not one."""
    anna = kit.survey("T-1", "7", "Anna Petrova", team="L1")
    boris = kit.survey("T-2", "8", "Boris Ivanov", team="L2")
    forged = kit.token("T-3", "7", secret="somebody-elses-secret-123")
    rows = [
        (T0, 2, "first go", "Anna Petrova", "T-1", anna),
        (T0 + timedelta(hours=1), 5, "second go", "Anna Petrova", "T-1", anna),
        (T0 + timedelta(hours=2), 4, "Спасибо,\nвсё быстро", "Boris Ivanov", "T-2", boris),
        (T0 + timedelta(hours=2), 4, "Спасибо,\nвсё быстро", "Boris Ivanov", "T-2", boris),
        (T0 + timedelta(hours=3), 1, "forged", "Anna Petrova", "T-3", forged),
        (T0 + timedelta(hours=4), 5, "no reference", "Anna Petrova", "T-9", ""),
        (T0 + timedelta(hours=5), "ten out of ten", "", "Boris Ivanov", "T-2", boris),
    ]
    return [dict(zip(ROLES, row, strict=True)) for row in rows]


def write_csv(path: Path, rows: list[dict], order: list[str], stamp, newline: str = "\n") -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(order)
        for row in rows:
            cells = {**row, "Timestamp": stamp(row["Timestamp"])}
            cells["Comment"] = str(cells["Comment"]).replace("\n", newline)
            writer.writerow([cells[name] for name in order])


def tables(kit) -> tuple:
    return tuple(
        tuple(tuple(v for k, v in r._mapping.items() if k != "id") for r in kit.rows(t))
        for t in (answers, answer_history, unverified_answers, sync_skipped_rows)
    )


def test_a_re_export_in_another_layout_column_order_or_source_changes_nothing(kit, tmp_path):
    rows = answers_of(kit)
    # The responses sheet holds the same answers (date-time serials in Moscow time).
    kit.responses(
        [ROLES, *([row[name] for name in ROLES] for row in rows)], time_zone="Europe/Moscow"
    )
    export = tmp_path / "responses.csv"
    write_csv(export, rows, ROLES, forms_export)
    csv_config = kit.config(
        results={"source": "csv", "csv": {"path": str(export), "timezone": "Europe/Moscow"}}
    )
    first = kit.run(csv_config)
    assert first.status == "ok", first.error
    assert (first.new, first.history_only, first.unchanged) == (2, 1, 1)
    assert first.unverified == {"forged": 1, "missing": 1} and first.skipped == {"bad_rating": 1}
    stored = tables(kit)
    figures = kit.sheet("Summary")

    # Saved again from the sheet: another timestamp layout, columns in another order, CRLF
    # line breaks and decomposed Cyrillic in the comment.
    reordered = ["Reference", "Ticket", "Rating", "Timestamp", "Agent", "Comment"]
    decomposed = [
        {**row, "Comment": unicodedata.normalize("NFD", str(row["Comment"]))} for row in rows
    ]
    write_csv(export, decomposed, reordered, sheet_saved_as_csv, newline="\r\n")
    second = kit.run(csv_config)
    assert tables(kit) == stored
    # Read through the Sheets API instead: the same rows, the skipped one now the sheet's
    # (a skipped row is the source's that read it last: sync/ingest.py _store_skipped).
    third = kit.run()
    names = [c.name for c in sync_skipped_rows.c if c.name != "id"]
    sheet = {"source": "gsheets", "source_key": f"gsheets:{SHEET_ID}:0"}
    *kept, skipped = stored
    skipped = tuple(
        tuple(sheet.get(name, v) for name, v in zip(names, row, strict=True)) for row in skipped
    )
    stored = (*kept, skipped)

    for summary in (second, third):
        assert summary.status == "ok", summary.error
        assert (summary.new, summary.updated, summary.history_only) == (0, 0, 0)
        # The unreadable rating is read again every run (still skipped, not duplicated).
        assert (summary.unverified, summary.skipped, summary.unchanged) == (
            {},
            {"bad_rating": 1},
            6,
        )
        assert summary.totals == first.totals
    assert tables(kit) == stored
    assert kit.sheet("Summary") == figures


COLUMNS = ColumnsConfig(agent=["Agent"], ticket=["Ticket"])
SCALE = RatingScale(1, 5, {})


def test_every_source_kind_gives_the_same_identities(kit, tmp_path, google_session):
    rows = [row for row in answers_of(kit) if row["Reference"]]
    export = tmp_path / "a.csv"
    write_csv(export, rows, ROLES, forms_export)
    again = tmp_path / "b.csv"
    write_csv(again, rows, ROLES[::-1], sheet_saved_as_csv, newline="\r\n")
    kit.responses([ROLES, *([row[name] for name in ROLES] for row in rows)])

    def from_csv(path: Path) -> list[str]:
        source = CsvResults(
            path,
            timezone="Europe/Moscow",
            encoding="utf-8-sig",
            delimiter=",",
            timestamp_formats=["%Y/%m/%d %I:%M:%S %p", "%d.%m.%Y %H:%M:%S"],
            columns=COLUMNS,
            ratings=SCALE,
        )
        batch = source.fetch(set(), None)
        return [item.fingerprint for item in [*batch.submissions, *batch.skipped]]

    sheets = GSheetsResults(
        SheetsApi(google_session),
        SHEET_ID,
        sheet_gid=0,
        sheet_name=None,
        columns=COLUMNS,
        ratings=SCALE,
    ).fetch(set(), None)
    questions = {"rating": "r1", "comment": "c1", "agent": "a1", "ticket": "t1", "token": "k1"}
    kit.fake.add_form(
        "form-1",
        [
            {
                "responseId": f"ACYDBN{n}",
                "createTime": "2026-09-27T11:00:00Z",
                # The API has nanoseconds; exports show whole seconds.
                "lastSubmittedTime": row["Timestamp"].strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
                "answers": {
                    qid: {
                        "questionId": qid,
                        "textAnswers": {"answers": [{"value": str(row[name])}]},
                    }
                    for qid, name in zip(
                        questions.values(),
                        ["Rating", "Comment", "Agent", "Ticket", "Reference"],
                        strict=True,
                    )
                    if row[name] != ""
                },
            }
            for n, row in enumerate(rows)
        ],
    )
    forms = FormsApiResults(
        FormsApi(google_session),
        "form-1",
        question_ids={role: qid for role, qid in questions.items()},
        page_size=100,
        overlap_seconds=0,
        ratings=SCALE,
    ).fetch(set(), None)

    expected = from_csv(export)
    assert len(expected) == 5 and len(set(expected)) == 5  # the double-click is read once
    assert from_csv(again) == expected
    assert [i.fingerprint for i in [*sheets.submissions, *sheets.skipped]] == expected
    # responses.list may list in any order; the double-click is two responses, one identity.
    assert sorted({i.fingerprint for i in [*forms.submissions, *forms.skipped]}) == sorted(expected)
    assert forms.unchanged == 1
