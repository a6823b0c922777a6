"""The surveys' cohort instants as the database computes them (``store.survey_facts``): whole
microseconds since the Unix epoch, equal to what Python makes of the stored datetime."""

from __future__ import annotations

import calendar
import random
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import sqlalchemy as sa

from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.db.schema import surveys
from csat_hook.sync import store
from csat_hook.sync.bulk import bulk_execute
from csat_hook.sync.dataset import epoch_microseconds


def _independent(moment: datetime) -> int:
    """Microseconds since the epoch from the calendar fields (no datetime arithmetic)."""
    utc = moment.astimezone(UTC)
    return calendar.timegm(utc.utctimetuple()) * 1_000_000 + utc.microsecond


def _moments() -> list[datetime]:
    rng = random.Random(3)
    moscow = timezone(timedelta(hours=3))
    edges = [
        # A microsecond before and at a UTC midnight and a Moscow midnight (21:00 UTC):
        # SQLite's date functions would round the first ones up into the next day.
        datetime(2026, 3, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 4, 1, 0, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 3, 31, 20, 59, 59, 999_600, tzinfo=UTC),
        datetime(2026, 3, 31, 21, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 4, 1, 0, 0, 0, 0, tzinfo=moscow),  # stored as UTC
        datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),  # before the epoch
        datetime(2038, 1, 19, 3, 14, 8, 123_456, tzinfo=UTC),  # past 32-bit seconds
    ]
    start = datetime(2020, 1, 1, tzinfo=UTC)
    spread = [
        start
        + timedelta(seconds=rng.randrange(10 * 365 * 86400), microseconds=rng.randrange(10**6))
        for _ in range(300)
    ]
    return edges + spread


def _answer(i: int, at: datetime, **other: object) -> dict[str, object]:
    """An answers row for survey ``k{i}`` (token ``k{i}.t``, fingerprint ``f{i}``) issued,
    submitted and updated ``at``; ``other`` sets or replaces columns."""
    return {
        "survey_key": f"k{i}",
        "token": f"k{i}.t",
        "helpdesk": "h",
        "dialog_id": f"d{i}",
        "agent_key": "7",
        "issued_at": at,
        "rating": 5,
        "submitted_at": at,
        "fields_edited": False,
        "source": "gsheets",
        "updated_at": at,
        "fingerprint": f"f{i}",
        **other,
    }


def test_cohort_microseconds_equal_python_on_both_write_paths(migrated_url):
    """Rows written one by one through SQLAlchemy and in bulk read back as the same integer
    as the datetime's own arithmetic, and as its ``timestamp()`` once divided."""
    engine = make_engine(migrated_url)
    create_schema(engine)
    moments = _moments()
    rows = [
        {
            "helpdesk": "h",
            "dialog_id": f"d{i}",
            "occurrence": "",
            "token": f"t{i}",
            "status": "sent",
            "created_at": moment,
        }
        for i, moment in enumerate(moments)
    ]
    half = len(rows) // 2
    with engine.begin() as conn:
        conn.execute(sa.insert(surveys), rows[:half])
        bulk_execute(conn, sa.insert(surveys), surveys, rows[half:])
    with engine.connect() as conn:
        facts = {row.token: row.created_us for row in store.survey_facts(conn)}
    engine.dispose()
    for i, moment in enumerate(moments):
        got = facts[f"t{i}"]
        assert isinstance(got, int)
        assert got == _independent(moment) == epoch_microseconds(moment), moment
        assert got / 1_000_000 == moment.timestamp(), moment


def test_sqlite_text_in_another_form_is_read_to_the_millisecond(tmp_path):
    """Text another writer left with an offset or a 'T' goes through SQLite's own parser."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    create_schema(engine)
    texts = {
        "2026-04-01 03:00:00.250+03:00": datetime(2026, 4, 1, 0, 0, 0, 250_000, tzinfo=UTC),
        "2026-04-01T00:00:01": datetime(2026, 4, 1, 0, 0, 1, tzinfo=UTC),
        "2026-04-01 00:00:02": datetime(2026, 4, 1, 0, 0, 2, tzinfo=UTC),
        # Below the millisecond: rounded by SQLite's parser, whole seconds and milliseconds
        # taken from the same rounded value.
        "2026-04-01 02:59:59.9996+03:00": datetime(2026, 4, 1, tzinfo=UTC),
        "2026-04-01 02:59:58.9994+03:00": datetime(2026, 3, 31, 23, 59, 58, 999_000, tzinfo=UTC),
    }
    with engine.begin() as conn:
        for i, text in enumerate(texts):
            conn.exec_driver_sql(
                "INSERT INTO surveys (helpdesk, dialog_id, occurrence, token, status, created_at)"
                " VALUES ('h', ?, '', ?, 'sent', ?)",
                (f"d{i}", f"t{i}", text),
            )
    with engine.connect() as conn:
        facts = {row.token: row.created_us for row in store.survey_facts(conn)}
    engine.dispose()
    for i, moment in enumerate(texts.values()):
        assert facts[f"t{i}"] == _independent(moment)


def test_streamed_rows_equal_the_whole_read_across_partitions(migrated_url):
    """``bulk_iter`` (the report's streamed read) gives the rows ``bulk_select`` gives, in
    partitions of any size, datetimes converted; the connection is usable afterwards."""
    from csat_hook.db.schema import answers

    engine = make_engine(migrated_url)
    create_schema(engine)
    moments = _moments()[:23]
    with engine.begin() as conn:
        bulk_execute(
            conn,
            sa.insert(answers),
            answers,
            [
                _answer(
                    i,
                    moment,
                    token=f"k{i}.tag",
                    rating=1 + i % 5,
                    comment=None if i % 3 else f"comment {i}",
                    submitted_at=moment + timedelta(minutes=i),
                )
                for i, moment in enumerate(moments)
            ],
        )
    statement = sa.select(*[answers.c[name] for name in store.AnswerRow._fields])
    try:
        check_streamed(engine, statement)
    finally:
        engine.dispose()


def check_streamed(engine: sa.Engine, statement: sa.Select) -> None:
    from csat_hook.db.engine import snapshot
    from csat_hook.sync.bulk import bulk_iter
    from csat_hook.sync.bulk import bulk_select

    with snapshot(engine) as conn:
        whole = bulk_select(conn, statement, row_type=store.AnswerRow)
        for partition in (1, 5, 23, 1000):
            streamed = list(bulk_iter(conn, statement, store.AnswerRow, partition=partition))
            assert sorted(streamed) == sorted(whole)  # no order asked for
            assert all(type(row) is store.AnswerRow for row in streamed)
        # The report's streamed reads: plain tuples, the named rows' values in their order.
        for plain, named in (
            (store.iter_answers(conn), store.all_answers(conn)),
            (store.iter_survey_facts(conn), store.survey_facts(conn)),
        ):
            rows = list(plain)
            assert all(type(row) is tuple for row in rows)
            assert sorted(rows) == sorted(map(tuple, named))
        plain_rows = list(bulk_iter(conn, statement, tuple, partition=5))
        selected = bulk_select(conn, statement, row_type=tuple)
        for plain in (plain_rows, selected):
            assert sorted(plain) == sorted(map(tuple, whole))
            assert all(type(row) is tuple for row in plain)
        half = bulk_iter(conn, statement, store.AnswerRow, partition=5)
        assert len([next(half) for _ in range(7)]) == 7
        half.close()  # left before the end: its cursor is closed, the connection goes on
        assert len(bulk_select(conn, statement)) == 23
    assert len(whole) == 23 and whole[0].submitted_at.tzinfo is UTC


def test_look_ups_find_every_value_in_any_chunking_and_are_never_prepared(
    migrated_url, monkeypatch
):
    """``survey_facts_by_token`` and ``answers_among`` (a sync's look-ups, a part at a time):
    every value found however the values are split into statements (IN lists on SQLite, one
    array per chunk on PostgreSQL), unknown ones ignored; on PostgreSQL the look-ups are never
    prepared (a generic plan made while the answers were few would scan them all later)."""
    from csat_hook.db.schema import answers
    from csat_hook.sync import bulk

    monkeypatch.setattr(bulk, "ARRAY_CHUNK", 3)
    monkeypatch.setattr(bulk, "IN_CHUNK", 3)
    engine = make_engine(migrated_url)
    create_schema(engine)
    at = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(surveys),
            [
                {
                    "helpdesk": "h",
                    "dialog_id": f"d{i}",
                    "occurrence": "",
                    "token": f"k{i}.t",
                    "status": "sent",
                    "created_at": at,
                }
                for i in range(8)
            ],
        )
        conn.execute(
            sa.insert(answers),
            [_answer(i, at) for i in range(0, 8, 2)],
        )
        long_token = "L" * 1022 + ".t"  # as long as the column holds
        conn.execute(
            sa.insert(surveys),
            {
                "helpdesk": "h",
                "dialog_id": "long",
                "occurrence": "",
                "token": long_token,
                "status": "sent",
                "created_at": at,
            },
        )
    # Unknown, quoted, and one character past the column's length (never cut to match).
    wanted = [f"k{i}.t" for i in range(8)] + ["k9.t", "k'; --.t", long_token + "x"]
    try:
        with engine.begin() as conn:
            for _ in range(8):  # psycopg prepares a statement run five times
                found = store.survey_facts_by_token(conn, wanted)
                among = store.answers_among(conn, [t.partition(".")[0] for t in wanted])
            assert sorted(row.token for row in found) == [f"k{i}.t" for i in range(8)]
            assert sorted(among) == ["k0", "k2", "k4", "k6"]
            assert among["k2"].dialog_id == "d2" and among["k2"].submitted_at == at
            if engine.name == "postgresql":
                prepared = conn.execute(
                    sa.text(
                        "SELECT statement FROM pg_prepared_statements "
                        "WHERE statement LIKE :surveys OR statement LIKE :answers"
                    ),
                    {"surveys": "%FROM surveys%", "answers": "%FROM answers%"},
                ).all()
                assert prepared == []
    finally:
        engine.dispose()


def test_other_look_ups_in_any_chunking_and_never_prepared(migrated_url, monkeypatch):
    """The sync's other batched look-ups and deletes (processed identities, the answers
    archived or compared on a tie, skipped rows read again, stale row digests) go through the
    same chunks as the part look-ups: every value found or removed however the values are
    split, unknown and quoted ones ignored, and on PostgreSQL never prepared."""
    from csat_hook.db.schema import answer_history
    from csat_hook.db.schema import answers
    from csat_hook.db.schema import sync_row_digests
    from csat_hook.db.schema import sync_skipped_rows
    from csat_hook.db.schema import unverified_answers
    from csat_hook.sync import bulk
    from csat_hook.sync import cache
    from csat_hook.sync import skips

    monkeypatch.setattr(bulk, "ARRAY_CHUNK", 3)
    monkeypatch.setattr(bulk, "IN_CHUNK", 3)
    engine = make_engine(migrated_url)
    create_schema(engine)
    at = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(answers),
            [
                _answer(i, at, rating=i % 5 + 1, comment=f"c{i}", source_ref=f"row {i}")
                for i in range(0, 8, 2)
            ],
        )
        conn.execute(
            sa.insert(answer_history),
            {
                "fingerprint": "h1",
                "survey_key": "k1",
                "token": "k1.t",
                "rating": 3,
                "submitted_at": at,
                "source": "gsheets",
                "recorded_at": at,
            },
        )
        conn.execute(
            sa.insert(unverified_answers),
            {
                "fingerprint": "u1",
                "reason": "forged",
                "source": "gsheets",
                "source_row": "9",
                "recorded_at": at,
            },
        )
        conn.execute(
            sa.insert(sync_skipped_rows),
            [
                {"fingerprint": f"s{i}", "source": "gsheets", "reason": "r", "recorded_at": at}
                for i in range(5)
            ],
        )
        conn.execute(
            sa.insert(sync_row_digests),
            [{"digest": f"g{i}", "fingerprint": f"f{i}"} for i in range(7)],
        )
    # Each row's identity → the survey key its reference names. "f1" names k1, which has no
    # answer; "f3" and "f5" name surveys whose answers have other identities.
    fingerprints = {
        "f0": "k0",
        "f1": "k1",
        "f2": "k2",
        "f3": "k2",
        "f4": "k4",
        "h1": "k1",
        "u1": "",
        "x": "kx",
        "f'; --": "k'; --",
        "f6": "k6",
        "f5": "k0",
    }
    keys = ["k0", "k1", "k2", "k4", "k6", "k9", "k'; --"]
    try:
        with engine.begin() as conn:
            for _ in range(8):  # psycopg prepares a statement run five times
                processed = store.processed_among(conn, fingerprints)
                stored = store.stored_answers(conn, keys)
                store.archive_answers(conn, keys)
            assert processed == {"f0", "f2", "f4", "f6", "h1", "u1"}
            assert sorted(stored) == ["k0", "k2", "k4", "k6"]
            assert stored["k4"].source_ref == "row 4" and stored["k4"].comment == "c4"
            archived = conn.execute(sa.select(answer_history.c.fingerprint)).scalars().all()
            assert sorted(archived) == ["f0", "f2", "f4", "f6", "h1"]
            for _ in range(8):
                skips.forget_skipped(conn, ["s0", "s1", "s2", "s3", "zz", "s'; --"])
            left = conn.execute(sa.select(sync_skipped_rows.c.fingerprint)).scalars().all()
            assert left == ["s4"]
            known = frozenset(f"g{i}" for i in range(7))
            for _ in range(8):
                assert cache.prune_row_digests(conn, known, ["g9"], {"g6"}) == 7
            digests = conn.execute(sa.select(sync_row_digests.c.digest)).scalars().all()
            assert digests == ["g6"]
            if engine.name == "postgresql":
                prepared = conn.execute(
                    sa.text("SELECT statement FROM pg_prepared_statements")
                ).scalars()
                assert [s for s in prepared if "ANY" in s or " IN " in s] == []
                # An iteration left early gives the connection its threshold back.
                raw = conn.connection.dbapi_connection
                before = raw.prepare_threshold
                unfinished = bulk.matching(conn, ["a", "b", "c", "d"])
                next(unfinished)
                assert raw.prepare_threshold is None
                unfinished.close()
                assert raw.prepare_threshold == before is not None
    finally:
        engine.dispose()


def test_which_rows_are_processed_is_asked_through_indexes_only(tmp_path):
    # A sync reading only the responses since its watermark asks which rows it read are
    # processed (the answers by survey key, their history and the unverified ones by
    # fingerprint). A question that scanned every answer cost 12 s of a sync with nothing
    # new over 1,000,000 answers.
    engine = make_engine(f"sqlite:///{tmp_path / 'plan.sqlite3'}")
    create_schema(engine)
    plans: list[str] = []
    seen: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def explain(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "fingerprint" in statement:
            seen.append(statement)
            rows = conn.connection.dbapi_connection.execute(
                "EXPLAIN QUERY PLAN " + statement, parameters
            ).fetchall()
            plans.extend(str(row[-1]) for row in rows)

    try:
        with engine.begin() as conn:
            assert store.processed_among(conn, {"f0": "k0", "f1": "k1"}) == set()
    finally:
        engine.dispose()

    assert any("FROM answers " in statement for statement in seen), seen
    assert plans, "no statement was explained"
    scans = [p for p in plans if p.startswith("SCAN") and "INDEX" not in p]
    assert scans == [], plans
