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
    # One more read, of the comment column's typed rows only, as shown, with the references
    # that show each row is where the first read found it: within the budget.
    reads = fake_google.api_requests("sheets_read")
    assert len(reads) == 3
    shown = reads[-1]["query"]
    assert shown["valueRenderOption"] == ["FORMATTED_VALUE"]
    assert shown["ranges"] == ["'Form Responses 1'!C2:C7", "'Form Responses 1'!F2:F7"]
    assert batch.complete and not batch.warnings


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
        "'Form Responses 1'!C3:C3",
        "'Form Responses 1'!F3:F3",
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


def rearrange(fake: object, order: list[int]) -> None:
    """What a manager's sort (or a row inserted or deleted) does between the run's two reads:
    the tab's data rows (1-based, below the header) put in ``order``."""
    tab = fake.tab(SHEET_ID, "Form Responses 1")  # type: ignore[attr-defined]
    with fake.lock:  # type: ignore[attr-defined]
        data = tab.cells[1:]
        tab.cells[1:] = [data[i - 1] for i in order]


def test_a_sort_between_the_two_reads_never_gives_a_row_another_rows_comment(
    fake_google, google_session
):
    """Sorted between the whole read and the read of the comments as shown: row 2's comment
    read again would be the row now there (Boris's 'rude and slow' on Anna's answer). The
    reference read with it shows the row moved: that row is not read this run (the read is
    no read of every row, so nothing stored is taken as gone), and the run says so."""
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(
        SHEET_ID,
        "Form Responses 1",
        [
            EN_HEADER,
            [at(2), 5, ShownNumber(0.05, "5%"), "Anna", "T-1", "tok-1"],
            [at(3), 1, "rude and slow", "Boris", "T-2", "tok-2"],
            [at(4), 4, ShownNumber(1.5, "1,5"), "Anna", "T-3", "tok-3"],
            [at(5), 3, "ok", "Boris", "T-4", "tok-4"],
        ],
        sheet_id=0,
    )
    read = source(google_session)
    read.prefetch()
    rearrange(fake_google, [2, 1, 3, 4])  # rows 2 and 3 swapped; row 4 stays where it was
    batch = read.fetch(set(), None)
    comments = {s.token: s.comment for s in batch.submissions}
    assert comments == {"tok-2": "rude and slow", "tok-3": "1,5", "tok-4": "ok"}
    assert not batch.complete
    assert batch.rows_read == 3 and batch.blank_rows == 0 and not batch.skipped
    assert any("row 2" in w and "read next run" in w for w in batch.warnings), batch.warnings
    assert batch.resume is None
    assert fake_google.count("sheets_read") == 3  # still one more read, no other


def test_a_row_inserted_between_the_two_reads_holds_the_rows_it_moved(fake_google, google_session):
    """A row inserted above the typed rows moves every row below it: none of them takes the
    comment of the row now at its place; a typed row without a reference is held as soon as
    any row read again moved (its own blank reference proves nothing)."""
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(
        SHEET_ID,
        "Form Responses 1",
        [
            EN_HEADER,
            [at(2), 5, "fine", "Anna", "T-1", "tok-1"],
            [at(3), 4, ShownNumber(0.5, "50%"), "Anna", "T-2", "tok-2"],
            [at(4), 2, ShownNumber(2, "2"), "Boris", "T-3", ""],
        ],
        sheet_id=0,
    )
    read = source(google_session)
    read.prefetch()
    tab = fake_google.tab(SHEET_ID, "Form Responses 1")
    with fake_google.lock:
        tab.cells.insert(1, [None, None, "a manager's note", None, None, "tok-9"])
    batch = read.fetch(set(), None)
    assert [(s.token, s.comment) for s in batch.submissions] == [("tok-1", "fine")]
    assert not batch.complete
    assert any("2 rows" in w for w in batch.warnings), batch.warnings


def test_rows_submitted_between_the_two_reads_change_nothing(fake_google, google_session):
    """A form's submission appends below: the rows read again are where they were."""
    fake_google.add_spreadsheet(SHEET_ID)
    fake_google.add_tab(
        SHEET_ID,
        "Form Responses 1",
        [EN_HEADER, [at(2), 5, ShownNumber(0.05, "5%"), "Anna", "T-1", "tok-1"]],
        sheet_id=0,
    )
    read = source(google_session)
    read.prefetch()
    fake_google.append_rows(SHEET_ID, "Form Responses 1", [[at(3), 4, 7, "Anna", "T-2", "tok-2"]])
    batch = read.fetch(set(), None)
    assert [(s.token, s.comment) for s in batch.submissions] == [("tok-1", "5%")]
    assert batch.complete and not batch.warnings
    assert fake_google.api_requests("sheets_read")[-1]["query"]["ranges"] == [
        "'Form Responses 1'!C2:C2",
        "'Form Responses 1'!F2:F2",
    ]


def test_a_run_racing_a_sort_credits_the_moved_row_next_run_as_typed(kit, monkeypatch):
    """The whole run, on SQLite and PostgreSQL: a sort between the run's two reads leaves
    Anna's row out of that run (said in its warnings; nothing stored from it, no read
    remembered to replay), Boris's row is credited as read; the next run credits Anna's
    comment as typed, and Boris's answer is not edited."""
    anna, boris = kit.survey("d1", "7", "Anna"), kit.survey("d2", "8", "Boris")
    kit.responses(
        [
            EN_HEADER,
            [kit.now - timedelta(hours=2), 5, ShownNumber(0.05, "5%"), "Anna", "d1", anna],
            [kit.now - timedelta(hours=1), 1, "rude", "Boris", "d2", boris],
        ]
    )
    original = SheetsApi.read_shown
    raced: list[bool] = []

    def sorted_first(self: SheetsApi, *args: object, **kwargs: object) -> object:
        if not raced:
            raced.append(True)
            rearrange(kit.fake, [2, 1])  # by rating, ascending
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SheetsApi, "read_shown", sorted_first)
    first = kit.run()
    assert first.status == "ok", first
    with kit.engine.connect() as conn:
        assert [(a.rating, a.comment) for a in store.all_answers(conn)] == [(1, "rude")]
    assert any("row 2" in w and "read next run" in w for w in first.warnings), first.warnings
    second = kit.run()
    assert second.status == "ok" and second.read == "read", second
    with kit.engine.connect() as conn:
        answers = sorted((a.rating, a.comment) for a in store.all_answers(conn))
    assert answers == [(1, "rude"), (5, "5%")]
    assert not any("edited" in w for w in second.warnings), second.warnings


def test_a_comments_format_changed_alone_is_read_at_the_next_read_of_every_row(kit):
    """docs/sync.md's limit: the bytes remembered are the unformatted values, so a manager's
    format change of a typed comment's cell alone (5% shown 0.05) leaves the stored text as
    the customer's while the run replays; a read of every row (here ``sync --full``) reads it
    as then shown, its answer edited in place."""
    token = kit.survey("d1", "7", "Anna")
    kit.responses(
        [EN_HEADER, [kit.now - timedelta(hours=1), 4, ShownNumber(0.05, "5%"), "Anna", "d1", token]]
    )
    assert kit.run().status == "ok"
    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 1, 2, ShownNumber(0.05, "0.05"))
    replayed = kit.run()
    assert replayed.read == "replayed"
    with kit.engine.connect() as conn:
        assert [a.comment for a in store.all_answers(conn)] == ["5%"]
    full = kit.run(full=True)
    assert full.read == "read" and full.edited_in_place == 1
    with kit.engine.connect() as conn:
        assert [a.comment for a in store.all_answers(conn)] == ["0.05"]


def test_a_row_without_a_reference_never_takes_the_comment_of_one_moved_to_its_place(
    fake_google, google_session
):
    """Each of the two checks of a typed row without a reference, alone (the test above
    meets both at once): a reference now shown where the row had none (a row moved in), and
    a row of the range read again no longer where it was, another row without a reference
    moved to its place (Boris's "rude and slow" given to Anna's 5)."""
    fake_google.add_spreadsheet(SHEET_ID)
    moved_in = [
        EN_HEADER,
        [at(2), 5, ShownNumber(0.05, "5%"), "Anna", "T-1", ""],
        [at(3), 1, "rude and slow", "Boris", "T-2", "tok-2"],
    ]
    fake_google.add_tab(SHEET_ID, "Form Responses 1", moved_in, sheet_id=0)
    read = source(google_session)
    read.prefetch()
    rearrange(fake_google, [2, 1])
    batch = read.fetch(set(), None)
    assert [(s.token, s.comment) for s in batch.submissions] == [("tok-2", "rude and slow")]
    assert not batch.complete

    fake_google.add_tab(
        SHEET_ID,
        "Form Responses 2",
        [
            EN_HEADER,
            [at(2), 5, ShownNumber(0.05, "5%"), "Anna", "T-1", ""],
            [at(3), 1, "rude and slow", "Boris", "T-2", ""],
            [at(4), 4, ShownNumber(1.5, "1,5"), "Anna", "T-3", "tok-3"],
        ],
        sheet_id=1,
    )
    read = GSheetsResults(
        SheetsApi(google_session),
        SHEET_ID,
        sheet_gid=1,
        sheet_name=None,
        columns=ColumnsConfig(),
        ratings=SCALE,
    )
    read.prefetch()
    tab = fake_google.tab(SHEET_ID, "Form Responses 2")
    with fake_google.lock:
        data = tab.cells[1:]
        tab.cells[1:] = [data[1], data[2], data[0]]
    batch = read.fetch(set(), None)
    assert [(s.rating, s.comment) for s in batch.submissions] == [(1, "rude and slow")]
    assert not batch.complete
