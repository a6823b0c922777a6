"""What the sync remembers to skip work (sync/cache.py): unchanged rows are recognised by
their cells without being parsed, and an unchanged report is not written again. Neither may
change an outcome: an edited row, a changed reading setting, an erased answer and a changed
report are all handled as without the cache."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import answer_history
from csat_hook.db.schema import answers
from csat_hook.db.schema import sync_outputs
from csat_hook.db.schema import sync_row_digests
from tests.sync.conftest import EN_HEADER
from tests.sync.conftest import SHEET_ID
from tests.sync.conftest import misread

T0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)


def seed(kit) -> list[list]:  # type: ignore[no-untyped-def]
    rows = [
        [T0 + timedelta(hours=n), 5 - n % 3, f"comment {n}", f"Agent {n}", f"T-{n}", token]
        for n, token in enumerate(kit.survey(f"T-{n}", str(n), f"Agent {n}") for n in range(3))
    ]
    kit.responses([EN_HEADER, *rows, [T0, "not a rating", "", "", "", ""]])
    return rows


def test_unchanged_rows_are_not_parsed_and_an_edit_in_place_is_still_credited(kit, parsed):
    seed(kit)
    first = kit.run()
    assert (first.status, first.new, first.skipped) == ("ok", 3, {"bad_rating": 1})
    assert len(kit.rows(sync_row_digests)) == 3  # readable rows only
    parsed.clear()

    second = kit.run(full=True)  # row by row: the same bytes are otherwise replayed
    # Only the unreadable row is read again (skipped rows are, every read of the rows).
    assert parsed == ["row 5"]
    assert (second.new, second.updated, second.unchanged) == (0, 0, 3)
    assert second.skipped == {"bad_rating": 1}

    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 2, 1, 1)  # row 3's rating, 4 → 1
    parsed.clear()
    third = kit.run()
    assert parsed == ["row 3", "row 5"]
    assert (third.new, third.updated, third.unchanged) == (0, 1, 2)
    assert any("changed in place" in w for w in third.warnings)
    credited = {row.dialog_id: row.rating for row in kit.rows(answers)}
    assert credited == {"T-0": 5, "T-1": 1, "T-2": 3}
    assert [row.rating for row in kit.rows(answer_history)] == [4]


def test_a_changed_time_zone_reads_every_row_again(kit, parsed):
    tokens = [kit.survey(f"T-{n}", str(n), f"Agent {n}") for n in range(3)]
    # Serial numbers: the same cells mean other instants in another zone.
    rows = [[46000.25 + n, 5, "", "", "", token] for n, token in enumerate(tokens)]
    kit.responses([EN_HEADER, *rows], time_zone="Europe/Moscow")
    assert kit.run().new == 3
    read_before = {row.submitted_at for row in kit.rows(answers)}
    kit.responses([EN_HEADER, *rows], time_zone="Asia/Tokyo")
    parsed.clear()
    summary = kit.run()
    assert parsed == ["row 2", "row 3", "row 4"]
    # Six hours earlier, and the only rows of their surveys: what a first read credits
    # replaces the answers read under the old zone (kept as history).
    assert (summary.new, summary.updated, summary.unchanged) == (0, 3, 0)
    assert len(kit.rows(answer_history)) == 3
    shift = timedelta(hours=6)
    assert {row.submitted_at for row in kit.rows(answers)} == {t - shift for t in read_before}


def test_a_row_whose_answer_was_erased_is_read_again(kit, parsed):
    seed(kit)
    assert kit.run().new == 3
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(answers).where(answers.c.dialog_id == "T-1"))
    parsed.clear()
    summary = kit.run()
    assert parsed == ["row 3", "row 5"]
    assert (summary.new, summary.unchanged) == (1, 2)
    assert {row.dialog_id for row in kit.rows(answers)} == {"T-0", "T-1", "T-2"}


def test_an_unchanged_report_is_not_written_and_a_changed_one_is(kit):
    seed(kit)
    assert kit.run().status == "ok"
    assert len(kit.rows(sync_outputs)) == 1
    kit.fake.reset_requests()
    second = kit.run()
    assert kit.fake.count("sheets_write") == 0
    assert second.outputs[0]["unchanged"] is True and second.outputs[0]["write_requests"] == 0

    token = kit.survey("T-9", "9", "Agent 9")
    kit.fake.append_rows(SHEET_ID, "Form Responses 1", [[T0, 2, "late", "", "", token]])
    kit.fake.reset_requests()
    third = kit.run()
    assert third.new == 1 and kit.fake.count("sheets_write") >= 1
    assert any("Agent 9" in str(cell) for row in kit.sheet("Summary") for cell in row)


def test_a_forgotten_digest_writes_the_report_again(kit):
    seed(kit)
    assert kit.run().status == "ok"
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(sync_outputs))
    kit.fake.reset_requests()
    assert kit.run().status == "ok"
    assert kit.fake.count("sheets_write") == 1


def digests(kit) -> set[str]:  # type: ignore[no-untyped-def]
    return {row.digest for row in kit.rows(sync_row_digests)}


def test_digests_no_row_has_any_more_are_forgotten(kit, parsed):
    rows = seed(kit)
    assert kit.run().new == 3
    before = digests(kit)
    assert len(before) == 3

    # An edit in place: the row's old digest goes, its new one comes.
    kit.fake.set_cell(SHEET_ID, "Form Responses 1", 2, 1, 1)
    assert kit.run().updated == 1
    after_edit = digests(kit)
    assert len(after_edit) == 3 and len(after_edit & before) == 2

    # A setting that reads every row differently: every old digest goes.
    wider = kit.config(metrics={"scale_max": 10, "top_box": 9})
    kit.run(wider)
    assert len(digests(kit)) == 3 and not digests(kit) & after_edit

    # A row deleted from the sheet: its digest goes too (its answer stays credited).
    kit.responses([EN_HEADER, *rows[1:], [T0, "not a rating", "", "", "", ""]])
    kit.run(wider)
    assert len(digests(kit)) == 2
    assert len(kit.rows(answers)) == 3


def test_a_digest_whose_answer_went_is_forgotten_and_written_again(kit, parsed):
    seed(kit)
    assert kit.run().new == 3
    with kit.engine.begin() as conn:
        conn.execute(sa.delete(answers).where(answers.c.dialog_id == "T-1"))
    assert kit.run().new == 1
    # The orphan went, the row parsed again stored its digest again: one per row still.
    assert len(kit.rows(sync_row_digests)) == 3
    parsed.clear()
    kit.run(full=True)
    assert parsed == ["row 5"]  # only the unreadable row, as before


def test_row_digests_are_inserted_in_chunks_once_each_and_a_stored_one_keeps_its_identity(
    migrated_url,
):
    from csat_hook.db.engine import make_engine
    from csat_hook.db.migrate import create_schema
    from csat_hook.sync.cache import insert_row_digests

    engine = make_engine(migrated_url)
    create_schema(engine)
    # 999 read twice, in different chunks; "d1" twice in one chunk (one statement).
    pairs = [(f"d{n % 12_001}", f"i{n % 12_001}") for n in range(13_000)]
    pairs.insert(2, ("d1", "i1"))
    with engine.begin() as conn:
        insert_row_digests(conn, [("d7", "first")])
        insert_row_digests(conn, pairs)  # three chunks of at most 5,000
        stored = dict(
            conn.execute(sa.select(sync_row_digests.c.digest, sync_row_digests.c.fingerprint)).all()
        )
    engine.dispose()
    assert len(stored) == 12_001
    assert stored["d7"] == "first" and stored["d12000"] == "i12000"


def test_row_digests_are_stored_before_the_parts_and_then_no_longer_held(kit, monkeypatch):
    """A first sync's (digest, identity) pairs, one per row, were held through every part's
    look-ups (its peak of memory): they are stored first, in the same transaction, and
    dropped from the batch; a later run that prunes stale digests keeps its own."""
    from csat_hook.sync import report_step

    held: list[int] = []
    store_digests = report_step.ingest_row_digests

    def recording(conn, batch, *, keep):  # type: ignore[no-untyped-def]
        store_digests(conn, batch, keep=keep)
        held.append(len(batch.raw_digests))

    look_up = report_step.ReportStep._look_up

    def looking_up(self, conn, part, **options):  # type: ignore[no-untyped-def]
        # The digests are in the database (this transaction) before any part is credited.
        stored = conn.execute(sa.select(sa.func.count()).select_from(sync_row_digests))
        held.append(stored.scalar_one())
        return look_up(self, conn, part, **options)

    monkeypatch.setattr(report_step, "ingest_row_digests", recording)
    monkeypatch.setattr(report_step.ReportStep, "_look_up", looking_up)
    rows = seed(kit)
    assert kit.run().new == 3
    assert held == [0, 3]  # dropped from the batch, stored before the part's look-up
    assert len(kit.rows(sync_row_digests)) == 3

    # A later run: row 2 is gone from the sheet (its stored digest goes stale), one is new.
    token = kit.survey("T-9", "9", "Agent 9")
    kit.responses([EN_HEADER, rows[0], rows[2], [T0, 2, "late", "", "", token]])
    held.clear()
    second = kit.run()
    assert (second.new, second.unchanged) == (1, 2)
    assert held[0] == 1  # kept: the prune compares the stored digests with this run's
    assert len(kit.rows(sync_row_digests)) == 3  # the stale one pruned, the new one stored


def low_alerts(kit):  # type: ignore[no-untyped-def]
    return kit.config(
        alerts={
            "destinations": {
                "slack": {"kind": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/X"}
            },
            "rules": [
                {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}
            ],
        }
    )


def test_rows_stored_under_an_older_reading_are_read_again_once_and_corrected(
    kit, parsed, monkeypatch
):
    """Rows are recognised by their cells and the reading settings; a new version of the
    code that reads a cell differently (READING_VERSION) read none of the stored rows again,
    so an answer stored misread stayed misread until its cells changed."""
    from csat_hook.db.schema import alerts

    config = low_alerts(kit)
    when = [kit.now - timedelta(minutes=30 - n) for n in range(3)]
    tokens = [kit.survey(f"T-{n}", str(n), f"Agent {n}") for n in range(3)]
    kit.responses(
        [
            EN_HEADER,
            [when[0], "2 out of 5", "", "", "", tokens[0]],  # misread as 5 by the older reader
            [when[1], 1, "", "", "", tokens[1]],  # alerted once, read the same way by both
            [when[2], 5, "", "", "", tokens[2]],
        ]
    )
    with monkeypatch.context() as older:
        misread(older, {"2 out of 5": 5})
        first = kit.run(config)
    assert (first.status, first.new) == ("ok", 3)
    stored = digests(kit)
    assert [(a.dialog_id, a.rating) for a in kit.rows(alerts)] == [("T-1", 1)]

    parsed.clear()
    upgraded = kit.run(config)
    # Every row read once again; the one read differently is credited as an edit in place.
    assert parsed == ["row 2", "row 3", "row 4"]
    assert (upgraded.new, upgraded.updated, upgraded.unchanged) == (0, 1, 2)
    assert any("rating changed in place" in w for w in upgraded.warnings)
    assert {a.dialog_id: a.rating for a in kit.rows(answers)} == {"T-0": 2, "T-1": 1, "T-2": 5}
    # The misread answer in the history; the rows read the same way added nothing.
    assert [(h.rating, h.source_ref) for h in kit.rows(answer_history)] == [(5, "row 2")]
    # The corrected low rating alerts as an edit would; the unchanged one not a second time.
    assert [(a.dialog_id, a.rating, a.previous_rating) for a in kit.rows(alerts)] == [
        ("T-1", 1, None),
        ("T-0", 2, 5),
    ]
    # One digest a row, under the new reading; the older reading's are forgotten.
    assert len(digests(kit)) == 3 and not digests(kit) & stored

    parsed.clear()
    later = kit.run(config)
    assert parsed == []  # recognised again, nothing read
    assert (later.new, later.updated, later.unchanged) == (0, 0, 3)
    assert len(kit.rows(answer_history)) == 1 and len(kit.rows(alerts)) == 2


def test_an_answer_an_older_reading_stored_from_a_row_now_refused_stays_credited(
    kit, parsed, monkeypatch
):
    """ "3 of 10" was stored as a 3 before a score out of another number was refused. Read
    again after the upgrade it is a skipped row (bad_rating, reported every run), but its
    stored answer stays credited: the sync never deletes an answer (as when a row is edited
    in the sheet into something unreadable)."""
    token = kit.survey("T-0", "0", "Agent 0")
    kit.responses([EN_HEADER, [T0, "3 of 10", "", "", "", token]])
    with monkeypatch.context() as older:
        misread(older, {"3 of 10": 3})
        assert kit.run().new == 1

    parsed.clear()
    upgraded = kit.run()
    assert parsed == ["row 2"]
    assert upgraded.skipped == {"bad_rating": 1} and upgraded.unchanged == 0
    assert [a.rating for a in kit.rows(answers)] == [3]
    assert kit.rows(answer_history) == []


@pytest.mark.parametrize(
    ("misread_cells", "label", "version"),
    [
        # Reading 3 read "4 or 5" and "4 to 5" by their first number; reading 4 refuses them.
        (("4 or 5", "4 to 5"), "5 or so", 3),
        # Reading 4 read "4 or five" and "4 ½" by their first number; reading 5 refuses them.
        (("4 or five", "4 ½"), "5 - Five stars", 4),
    ],
    ids=["joined-under-3", "in-words-under-4"],
)
def test_scores_misread_by_an_older_reading_are_read_again_and_refused(
    kit, parsed, monkeypatch, misread_cells, label, version
):
    """The reading that refuses two scores in one cell is a new version, so a store made
    under the older one reads those rows once more (as skipped rows, their answers staying
    credited) instead of recognising them by their cells and keeping the 4 for good; a label
    both read alike stays unchanged."""
    tokens = [kit.survey(f"T-{n}", str(n), f"Agent {n}") for n in range(3)]
    first, second = misread_cells
    kit.responses(
        [
            EN_HEADER,
            [T0, first, "", "", "", tokens[0]],
            [T0 + timedelta(minutes=1), second, "", "", "", tokens[1]],
            [T0 + timedelta(minutes=2), label, "", "", "", tokens[2]],
        ]
    )
    with monkeypatch.context() as older:
        misread(older, {first: 4, second: 4}, version=version)
        assert kit.run().new == 3

    parsed.clear()
    upgraded = kit.run()
    assert parsed == ["row 2", "row 3", "row 4"]
    assert upgraded.skipped == {"bad_rating": 2} and upgraded.unchanged == 1
    assert {a.dialog_id: a.rating for a in kit.rows(answers)} == {"T-0": 4, "T-1": 4, "T-2": 5}
