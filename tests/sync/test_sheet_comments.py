"""Free-text comments of a responses sheet are read as the customer typed them: Sheets reads
"5%", "1,5" (a comma-decimal locale) or "3/4" into a number or a date, and the unformatted
read gave 0.05, 1.5 or a date serial. Ratings and timestamps keep their unformatted reading."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from csat_hook.devtools.sheets_model import ShownNumber
from csat_hook.sync import store
from csat_hook.sync.config import ColumnsConfig
from csat_hook.sync.google.api import SheetsApi
from csat_hook.sync.sources.gsheets import GSheetsResults
from csat_hook.sync.values import RatingScale
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID

SCALE = RatingScale(1, 5, {})


def source(session: object, columns: ColumnsConfig | None = None) -> GSheetsResults:
    return GSheetsResults(
        SheetsApi(session),  # type: ignore[arg-type]
        SHEET_ID,
        sheet_gid=0,
        sheet_name=None,
        columns=columns or ColumnsConfig(),
        ratings=SCALE,
    )


def at(day: int) -> datetime:
    return datetime(2026, 11, day, 9, 0, tzinfo=UTC)


def test_comments_sheets_read_as_numbers_are_read_as_typed(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID, locale="ru_RU")
    fake_google.add_tab(
        SHEET_ID,
        "Form Responses 1",
        [
            EN_HEADER,
            [at(2), 5, ShownNumber(0.05, "5%"), "Anna", "T-1", "tok-1"],
            [at(3), ShownNumber(4, "4,0"), ShownNumber(1.5, "1,5"), "Anna", "T-2", "tok-2"],
            [at(4), 3, "plain text", "Boris", "T-3", "tok-3"],
            [at(5), 2, ShownNumber(46085, "3/4"), "Boris", "T-4", "tok-4"],
            [at(6), 1, True, "Boris", "T-5", "tok-5"],
            [at(7), 5, 12, "Boris", "T-6", "tok-6"],
        ],
        sheet_id=0,
    )
    batch = source(google_session).fetch(set(), None)
    assert not batch.skipped
    read = {s.token: (s.rating, s.comment, s.submitted_at) for s in batch.submissions}
    assert read == {
        "tok-1": (5, "5%", at(2)),
        "tok-2": (4, "1,5", at(3)),  # the rating keeps its unformatted reading
        "tok-3": (3, "plain text", at(4)),
        "tok-4": (2, "3/4", at(5)),
        "tok-5": (1, "TRUE", at(6)),  # a checkbox-looking TRUE, as typed
        "tok-6": (5, "12", at(7)),
    }
    # One more read, of the comment column's typed rows only, as shown: within the budget.
    reads = fake_google.api_requests("sheets_read")
    assert len(reads) == 3
    shown = reads[-1]["query"]
    assert shown["valueRenderOption"] == ["FORMATTED_VALUE"]
    assert shown["ranges"] == ["'Form Responses 1'!C2:C7"]


def test_a_sheet_whose_comments_are_all_text_is_read_in_two_requests(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(
        SHEET_ID,
        "Form Responses 1",
        [EN_HEADER, [at(2), 5, "5%", "Anna", "T-1", "tok-1"], [at(3), 4, "", "A", "T-2", "tok-2"]],
        sheet_id=0,
    )
    batch = source(google_session).fetch(set(), None)
    assert [s.comment for s in batch.submissions] == ["5%", ""]
    assert fake_google.count("sheets_read") == 2


def test_rows_added_below_are_read_alone_with_their_comments_as_typed(fake_google, google_session):
    fake_google.add_spreadsheet(SHEET_ID)
    rows = [EN_HEADER, [at(2), 5, "fine", "Anna", "T-1", "tok-1"]]
    fake_google.add_tab(SHEET_ID, "Form Responses 1", rows, sheet_id=0)
    first = source(google_session).fetch(set(), None)
    assert first.resume is not None
    fake_google.append_rows(
        SHEET_ID, "Form Responses 1", [[at(3), 4, ShownNumber(0.5, "50%"), "Anna", "T-2", "tok-2"]]
    )
    fake_google.reset_requests()
    later = source(google_session)
    later.prefetch()
    batch = later.fetch_after(first.resume, set())
    assert batch is not None
    assert [(s.token, s.comment) for s in batch.submissions] == [("tok-2", "50%")]
    assert fake_google.api_requests("sheets_read")[-1]["query"]["ranges"] == [
        "'Form Responses 1'!C3:C3"
    ]


def test_a_typed_comment_is_credited_as_typed_and_a_second_run_changes_nothing(kit):
    """The whole run, on SQLite and PostgreSQL: the credited comment is the text, a later run
    with nothing new replays the read and writes nothing; huge cells and formula errors
    beside it are skipped rows, each counted with its reason."""
    token = kit.survey("d1", "7", "Anna")
    kit.responses(
        [
            EN_HEADER,
            [kit.now - timedelta(hours=2), 4, ShownNumber(0.05, "5%"), "Anna", "d1", token],
            [kit.now - timedelta(hours=1), "#N/A", "x" * 50_000, "Anna", "d2", "t" * 50_000],
            [kit.now - timedelta(minutes=30), "4" * 50_000, "", "", "", "tok"],
        ]
    )
    first = kit.run()
    assert first.status == "ok", first
    with kit.engine.connect() as conn:
        [answer] = store.all_answers(conn)
    assert (answer.rating, answer.comment) == (4, "5%")
    assert sorted(first.skipped.items()) == [("bad_rating", 1), ("formula_error", 1)]
    kit.fake.reset_requests()
    second = kit.run()
    assert second.status == "ok"
    # The same bytes: the last read's outcome said again, no third read, nothing written.
    assert (kit.fake.count("sheets_read"), kit.fake.count("sheets_write")) == (2, 0)
    assert second.read == "replayed" and sorted(second.skipped.items()) == sorted(
        first.skipped.items()
    )
