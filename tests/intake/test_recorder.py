"""The close recorder's batch: the same outcomes on both paths (PostgreSQL without a policy
look-back: one statement in autocommit; otherwise a transaction), and atomic on both."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.db.text import IN_CHUNK
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import Person
from csat_hook.intake import store
from csat_hook.intake.recorder import _Close
from csat_hook.services import Services


def _close(
    services: Services,
    dialog: str,
    *,
    agent: str | None = "a-1",
    customer: str | None = None,
    occurrence: str = "",
    closed_at: datetime | None = None,
    helpdesk: str = "eadesk",
    **kw: Any,
) -> _Close:
    event = DialogClosed(
        helpdesk=helpdesk,
        dialog_id=dialog,
        agent=Person(id=agent),
        customer=Person(id=customer or "c-" + dialog),
        reply_context={"conversation": dialog},
        close_times=() if closed_at is None else (closed_at,),
        **kw,
    )
    now = services.clock()
    return _Close(event, f"token-{dialog}-{occurrence}-{now.isoformat()}", now, occurrence)


@pytest.fixture(autouse=True)
def _release_held_connections(monkeypatch, make_services):
    # These tests run batches on the calling thread, where no idle writer gives the held
    # autocommit connection back: give it back at the end.
    from csat_hook.db.group_commit import GroupCommit

    made: list[GroupCommit[Any, Any]] = []
    original = GroupCommit.__init__

    def init(self: GroupCommit[Any, Any], *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(GroupCommit, "__init__", init)
    yield
    for writer in made:
        writer.close()


def _statements(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements sent from now on: SQLAlchemy's, and those run on psycopg's own cursor
    (csat_hook/db/frozen.py), which SQLAlchemy's events do not see."""
    seen: list[str] = []
    if engine.dialect.name != "postgresql":

        def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            seen.append(statement)

        sa.event.listen(engine, "before_cursor_execute", count)
        return seen
    import psycopg

    execute = psycopg.Cursor.execute

    def counting(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(query))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", counting)
    return seen


def test_a_batch_stores_queues_skips_revives_and_answers_duplicates(
    make_config, make_services, monkeypatch
):
    services = make_services(make_config(policy={"skip_without_agent": True}))
    recorder = services.intake.recorder
    engine = services.engine
    first = recorder._writer._transaction([_close(services, "D-1")])
    assert first[0]["status"] == "queued"
    with engine.begin() as conn:  # the dialog reopened before its reply went out
        conn.execute(sa.update(surveys).values(status=CANCELLED))
        conn.execute(sa.update(outbox).values(status=CANCELLED))
    statements = _statements(engine, monkeypatch)

    batch = [
        _close(services, "D-2"),
        _close(services, "D-2"),  # the same close twice in one batch
        _close(services, "D-3", agent=None),  # skipped by the policy
        _close(services, "D-1"),  # closed again: the cancelled survey is revived
    ]
    results = recorder._writer._transaction(batch)
    sent = list(statements)

    assert [r["status"] for r in results] == ["queued", "duplicate", "skipped", "queued"]
    assert results[2]["reason"] == "no_agent"
    assert results[3]["survey_id"] == first[0]["survey_id"]
    with engine.connect() as conn:  # committed: another connection sees it
        rows = {r.dialog_id: r for r in conn.execute(sa.select(surveys))}
        queue = {r.dialog_id: r for r in conn.execute(sa.select(outbox))}
    assert {d: r.status for d, r in rows.items()} == {
        "D-1": "queued",
        "D-2": "queued",
        "D-3": "skipped",
    }
    assert {d: (r.status, r.attempts, r.context) for d, r in queue.items()} == {
        "D-1": ("pending", 0, {"conversation": "D-1"}),
        "D-2": ("pending", 0, {"conversation": "D-2"}),
    }
    assert queue["D-2"].survey_id == results[0]["survey_id"]
    # Nothing stored twice on a later retry of the same closes.
    assert [r["status"] for r in recorder._writer._transaction(batch)] == ["duplicate"] * 4
    if engine.dialect.name == "postgresql":
        # One statement per batch: no BEGIN, no COMMIT, no separate NOTIFY.
        assert len(sent) == 1, sent


@pytest.mark.parametrize(
    "policy",
    [{}, {"customer_cooldown_days": 7}],
    ids=["one-statement", "transaction"],  # on PostgreSQL; SQLite always runs a transaction
)
def test_only_a_close_whose_occurrence_may_repeat_revives_a_cancelled_survey(
    make_config, make_services, policy
):
    # A survey cancelled by a reopen is re-armed by a close of the same key only when that key
    # cannot tell a new close from the old one: no occurrence (per_dialog: once), or one the
    # adapter says repeats (Freshdesk's status change). An occurrence naming one close (a
    # notification id) seen again is that close's retry or replay: a duplicate.
    services = make_services(make_config(policy=policy))
    recorder = services.intake.recorder
    engine = services.engine
    unique = _close(services, "D-1", occurrence="notif-1")
    repeating = _close(services, "D-2", occurrence="status:closed", occurrence_repeats=True)
    once = _close(services, "D-3")
    first = recorder._writer._transaction([unique, repeating, once])
    assert [r["status"] for r in first] == ["queued"] * 3
    with engine.begin() as conn:  # the dialogs reopened before their replies went out
        conn.execute(sa.update(surveys).values(status=CANCELLED))
        conn.execute(sa.update(outbox).values(status=CANCELLED))

    again = recorder._writer._transaction(
        [
            _close(services, "D-1", occurrence="notif-1"),  # replayed: a duplicate
            _close(services, "D-1", customer="c-new", occurrence="notif-2"),  # a new close
            _close(services, "D-2", occurrence="status:closed", occurrence_repeats=True),
            _close(services, "D-3"),
        ]
    )

    assert [r["status"] for r in again] == ["duplicate", "queued", "queued", "queued"]
    assert again[2]["survey_id"] == first[1]["survey_id"]  # revived, not a second survey
    assert again[3]["survey_id"] == first[2]["survey_id"]
    with engine.connect() as conn:
        stored = {
            (r.dialog_id, r.occurrence): r.status
            for r in conn.execute(
                sa.select(surveys.c.dialog_id, surveys.c.occurrence, surveys.c.status)
            )
        }
        queue = {
            r.survey_id: r.status
            for r in conn.execute(sa.select(outbox.c.survey_id, outbox.c.status))
        }
    assert stored == {
        ("D-1", "notif-1"): "cancelled",
        ("D-1", "notif-2"): "queued",
        ("D-2", "status:closed"): "queued",
        ("D-3", ""): "queued",
    }
    assert queue[first[0]["survey_id"]] == "cancelled"
    assert queue[again[1]["survey_id"]] == "pending"
    assert queue[first[1]["survey_id"]] == queue[first[2]["survey_id"]] == "pending"


@pytest.mark.parametrize(
    "policy",
    [{}, {"customer_cooldown_days": 7}],
    ids=["one-statement", "transaction"],  # on PostgreSQL; SQLite always runs a transaction
)
def test_a_close_no_later_than_the_cancelled_one_does_not_revive_it(
    make_config, make_services, policy
):
    # Under per_dialog: once the key has no occurrence: a late retry of the close a reopen
    # cancelled, or a replay of its signed body, carries that close's own time. Only a close
    # the helpdesk says came later re-arms the survey; an unknown time re-arms it as before.
    services = make_services(make_config(policy=policy))
    recorder = services.intake.recorder
    engine = services.engine
    t0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    first = recorder._writer._transaction(
        [
            _close(services, "D-1", closed_at=t0),
            _close(services, "D-2", closed_at=t0),
            _close(services, "D-3"),
        ]
    )
    assert [r["status"] for r in first] == ["queued"] * 3
    with engine.begin() as conn:  # the dialogs reopened before their replies went out
        conn.execute(sa.update(surveys).values(status=CANCELLED))
        conn.execute(sa.update(outbox).values(status=CANCELLED))

    again = recorder._writer._transaction(
        [
            _close(services, "D-1", closed_at=t0),  # the same close again: a duplicate
            _close(services, "D-2", closed_at=t0 - timedelta(minutes=5)),  # an older one
            _close(services, "D-3", closed_at=t0),  # the cancelled one's time unknown
        ]
    )
    assert [r["status"] for r in again] == ["duplicate", "duplicate", "queued"]
    assert again[2]["survey_id"] == first[2]["survey_id"]

    later = recorder._writer._transaction(
        [_close(services, "D-1", closed_at=t0 + timedelta(minutes=3)), _close(services, "D-2")]
    )
    assert [r["status"] for r in later] == ["queued", "queued"]  # closed again; time unknown
    assert [r["survey_id"] for r in later] == [first[0]["survey_id"], first[1]["survey_id"]]
    with engine.connect() as conn:
        stored = {
            r.dialog_id: (r.status, r.closed_at)
            for r in conn.execute(
                sa.select(surveys.c.dialog_id, surveys.c.status, surveys.c.closed_at)
            )
        }
        queue = {
            r.survey_id: r.status
            for r in conn.execute(sa.select(outbox.c.survey_id, outbox.c.status))
        }
    assert stored == {
        "D-1": ("queued", t0 + timedelta(minutes=3)),
        "D-2": ("queued", None),
        "D-3": ("queued", t0),
    }
    assert set(queue.values()) == {"pending"}


@pytest.mark.parametrize(
    "policy",
    [{}, {"customer_cooldown_days": 7}],
    ids=["one-statement", "transaction"],  # on PostgreSQL; SQLite always runs a transaction
)
def test_a_close_time_in_the_future_does_not_stop_later_closes_reviving_the_survey(
    make_config, make_services, clock, policy
):
    """A close can not happen after it was reported: a close time beyond the receive time
    (and the clock skew allowed) is the sender's mistake (year 9999, seconds misread, a local
    time written as UTC). Stored as it was, every genuine close after the reopen was earlier
    than it, and the survey the reopen cancelled was never re-armed. Each is recorded at the
    time it was received: a later close re-arms the survey, once."""
    services = make_services(make_config(policy=policy))
    recorder = services.intake.recorder
    received = clock.now
    bogus = {
        "D-1": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "D-2": datetime(2100, 1, 1, tzinfo=UTC),
        "D-3": datetime.fromtimestamp(99_999_999_999, tz=UTC),  # year 5138: Unix seconds below 1e11
        "D-4": received + timedelta(hours=14),  # a +14:00 wall time written as UTC
        "D-5": received + timedelta(minutes=5, microseconds=1),  # past the skew allowed
    }
    first = recorder._writer._transaction(
        [_close(services, dialog, closed_at=at) for dialog, at in bogus.items()]
    )
    assert [r["status"] for r in first] == ["queued"] * len(bogus)
    with services.engine.begin() as conn:  # the dialogs reopened before their replies went out
        conn.execute(sa.update(surveys).values(status=CANCELLED))
        conn.execute(sa.update(outbox).values(status=CANCELLED))

    clock.advance(120)
    genuine = {dialog: clock.now - timedelta(seconds=3) for dialog in bogus}
    again = recorder._writer._transaction(
        [_close(services, dialog, closed_at=at) for dialog, at in genuine.items()]
    )
    clock.advance(60)
    replayed = recorder._writer._transaction(  # the bogus closes again: duplicates
        [_close(services, dialog, closed_at=at) for dialog, at in bogus.items()]
    )

    assert [r["status"] for r in again] == ["queued"] * len(bogus)
    assert [r["survey_id"] for r in again] == [r["survey_id"] for r in first]
    assert [r["status"] for r in replayed] == ["duplicate"] * len(bogus)
    with services.engine.connect() as conn:
        stored = {
            r.dialog_id: (r.status, r.closed_at)
            for r in conn.execute(
                sa.select(surveys.c.dialog_id, surveys.c.status, surveys.c.closed_at)
            )
        }
        queue = [r.status for r in conn.execute(sa.select(outbox.c.status))]
    assert stored == {dialog: ("queued", at) for dialog, at in genuine.items()}
    assert queue == ["pending"] * len(bogus)  # one reply each


@pytest.mark.parametrize(
    "policy",
    [{}, {"customer_cooldown_days": 7}],
    ids=["one-statement", "transaction"],  # on PostgreSQL; SQLite always runs a transaction
)
def test_close_times_received_as_stored_and_those_not_believed(
    make_config, make_services, clock, policy
):
    """What intake stores as the helpdesk's close time: the instant the sender wrote, in any
    offset, up to the clock skew allowed past the receive time; a time beyond it, or before
    any helpdesk could send it (a 0 or a default: before 2000), is recorded as the receive
    time; an unknown one stays unknown."""
    services = make_services(make_config(policy=policy))
    received = clock.now
    plus14, minus12 = timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))
    given: dict[str, datetime | None] = {
        "kiritimati": (received - timedelta(minutes=2)).astimezone(plus14),  # the next day
        "baker": (received - timedelta(minutes=2)).astimezone(minus12),
        "fast-clock": received + timedelta(minutes=5),  # the skew allowed: believed
        "naive": datetime(2026, 11, 20, 11, 0),  # an adapter's naive time: UTC
        "year-2000": datetime(2000, 1, 1, tzinfo=UTC),
        "future": received + timedelta(minutes=5, microseconds=1),
        "epoch": datetime(1970, 1, 1, tzinfo=UTC),
        "negative": datetime.fromtimestamp(-86_400 * 365 * 30, tz=UTC),
        "year-1": datetime(1, 1, 1, tzinfo=UTC),
        "unknown": None,
    }

    results = services.intake.recorder._writer._transaction(
        [_close(services, dialog, closed_at=at) for dialog, at in given.items()]
    )

    assert [r["status"] for r in results] == ["queued"] * len(given)
    with services.engine.connect() as conn:
        stored = dict(conn.execute(sa.select(surveys.c.dialog_id, surveys.c.closed_at)).all())
    assert stored == {
        "kiritimati": received - timedelta(minutes=2),
        "baker": received - timedelta(minutes=2),
        "fast-clock": received + timedelta(minutes=5),
        "naive": datetime(2026, 11, 20, 11, 0, tzinfo=UTC),
        "year-2000": datetime(2000, 1, 1, tzinfo=UTC),
        "future": received,
        "epoch": received,
        "negative": received,
        "year-1": received,
        "unknown": None,
    }


@pytest.mark.parametrize(
    "policy",
    [{}, {"customer_cooldown_days": 7}],
    ids=["one-statement", "transaction"],  # on PostgreSQL; SQLite always runs a transaction
)
def test_a_new_close_whose_time_is_zero_revives_the_survey_like_one_without_a_time(
    make_config, make_services, clock, policy
):
    """A close time of 0 (1970) is a sender's "unknown", not a close older than the one the
    reopen cancelled: the new close re-arms the survey, as one without a time does."""
    services = make_services(make_config(policy=policy))
    recorder = services.intake.recorder
    first = recorder._writer._transaction(
        [_close(services, "D-1", closed_at=clock.now - timedelta(seconds=3))]
    )
    with services.engine.begin() as conn:  # the dialog reopened before its reply went out
        conn.execute(sa.update(surveys).values(status=CANCELLED))
        conn.execute(sa.update(outbox).values(status=CANCELLED))
    clock.advance(120)

    again = recorder._writer._transaction(
        [_close(services, "D-1", closed_at=datetime.fromtimestamp(0, tz=UTC))]
    )

    assert [(r["status"], r.get("survey_id")) for r in again] == [("queued", first[0]["survey_id"])]


def test_a_batch_with_a_value_the_database_refuses_leaves_nothing(make_config, make_services):
    services = make_services(make_config())
    recorder = services.intake.recorder
    bad = _close(services, "D-9", language="x" * 100)  # over the column's 16 characters
    if services.engine.dialect.name == "sqlite":
        pytest.skip("SQLite does not enforce string lengths")
    with pytest.raises(sa.exc.DataError):
        recorder._writer._transaction([_close(services, "D-8"), bad])
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(surveys)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar() == 0


def test_a_look_back_policy_still_batches_in_a_transaction(make_config, make_services):
    services = make_services(make_config(policy={"customer_cooldown_days": 7}))
    recorder = services.intake.recorder
    results = recorder._writer._transaction(
        [_close(services, "D-1"), _close(services, "D-2", customer="c-D-1")]
    )
    assert [r["status"] for r in results] == ["queued", "skipped"]
    assert results[1]["reason"] == "customer_cooldown"


def test_a_batch_stores_every_character_and_instant_exactly(make_config, make_services, clock):
    # The one-statement batch sends its rows as JSON text: what goes in must come back the
    # same, escapes, non-BMP characters, line separators and microseconds included.
    services = make_services(make_config())
    clock.now = datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)
    texts = {
        "D-a": 'Anna "quoted" \\ back\\slash \u2028 line \u0085 next \t tab \x7f del',
        "D-b": 'Ольга 😀 \U0010fffd Ω \ufeff bom {"a": [1]} \\u0041 not an escape',
        "D-c": "x" * 255,
    }
    batch = [
        _close(services, dialog, agent=dialog, closed_at=clock.now, language="de", team=text)
        for dialog, text in texts.items()
    ]
    results = services.intake.recorder._writer._transaction(batch)
    assert [r["status"] for r in results] == ["queued"] * 3
    with services.engine.connect() as conn:
        rows = {r.dialog_id: r for r in conn.execute(sa.select(surveys))}
        queued = {r.dialog_id: r for r in conn.execute(sa.select(outbox))}
    assert {d: r.team for d, r in rows.items()} == texts
    assert all(r.closed_at == clock.now and r.created_at == clock.now for r in rows.values())
    assert {d: r.context for d, r in queued.items()} == {d: {"conversation": d} for d in texts}
    assert all(r.next_attempt_at >= clock.now for r in queued.values())


@pytest.mark.parametrize(
    ("policy", "second_dialog", "reason"),
    [
        ({"per_dialog": "every_close", "reclose_grace_seconds": 600}, "D-1", "recently_surveyed"),
        ({"customer_cooldown_days": 7}, "D-2", "customer_cooldown"),
    ],
)
def test_a_look_back_sees_a_close_racing_it_in_another_process(
    make_config, make_services, policy, second_dialog, reason
):
    """Two closes the policy allows only one survey for (two closes of one dialog within the
    re-close grace, two dialogs of one customer within the cool-down), recorded at once by
    two processes: on PostgreSQL (READ COMMITTED) neither look-back saw the other's
    uncommitted survey and both were sent. The second now waits for the first to commit."""
    services = make_services(make_config(policy=policy))
    recorder = services.intake.recorder
    first = _close(services, "D-1", customer="c-1")
    first = _Close(first.event, first.token, first.now, "close-1")
    second = _close(services, second_dialog, customer="c-1")
    second = _Close(second.event, second.token + "-2", second.now, "close-2")
    results: dict[str, Any] = {}

    def other_process() -> None:
        results["second"] = recorder._writer._transaction([second])

    with services.engine.begin() as conn:  # the first process, not yet committed
        results["first"] = recorder._write_in(conn, [first])
        racing = threading.Thread(target=other_process)
        racing.start()
        racing.join(timeout=1.0)  # long enough for it to record its close, had it not waited
    racing.join(timeout=30)

    assert results["first"][0]["status"] == "queued"
    assert results["second"][0]["status"] == "skipped", results["second"]
    assert results["second"][0]["reason"] == reason
    with services.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar() == 1


def test_customers_of_two_helpdesks_sharing_an_id_are_two_customers(make_config, make_services):
    """The cool-down looks back within one helpdesk; within a batch too, where customer 42 of
    one helpdesk used to put customer 42 of another (or a customer id spelled like a dialog
    key) on cool-down."""
    services = make_services(make_config(policy={"customer_cooldown_days": 7}))
    ours = _close(services, "D-1", customer="42")
    theirs = _close(services, "D-1", customer="42")
    theirs = _Close(replace(theirs.event, helpdesk="zendesk"), "token-zd", theirs.now, "")
    same = _close(services, "D-2", customer="42")

    results = services.intake.recorder._writer._transaction([ours, theirs, same])

    assert [r["status"] for r in results] == ["queued", "queued", "skipped"]
    assert results[2]["reason"] == "customer_cooldown"


# Pairs of addresses that the cool-down's stored comparison (the database's lower() of both
# sides) and Python's lower() disagree about on one database or the other: SQLite's lower()
# is ASCII-only ("Иван" stays as it is); PostgreSQL's maps "İ" to "i" (Python: "i" and a
# combining dot, so "İ" and "i̇" are one in Python and two in PostgreSQL) and has no final
# sigma (Python lowers the last "Σ" of a word to "ς").
DISPUTED_EMAILS = [
    ("Иван@почта.рф", "иван@почта.рф"),
    ("İlker@example.com", "ilker@example.com"),
    ("İlker@example.com", "i\u0307lker@example.com"),
    ("ΟΔΟΣ@example.gr", "οδοσ@example.gr"),
    ("ANNA@example.com", "anna@example.com"),
]


def _close_of(services: Services, dialog: str, email: str, occurrence: str = "") -> _Close:
    # A customer id of its own for each close: only the e-mail can make them one customer.
    event = DialogClosed(
        helpdesk="eadesk",
        dialog_id=dialog,
        agent=Person(id="a-1"),
        customer=Person(id="c-" + dialog, email=email),
        reply_context={"conversation": dialog},
    )
    now = services.clock()
    return _Close(event, f"token-{dialog}-{now.isoformat()}", now, occurrence)


def _one_customer_to_the_database(services: Services, first: str, second: str) -> bool:
    lowered = sa.select(
        sa.func.lower(sa.literal(first, sa.String()))
        == sa.func.lower(sa.literal(second, sa.String()))
    )
    with services.engine.connect() as conn:
        return bool(conn.execute(lowered).scalar())


@pytest.mark.parametrize(("first", "second"), DISPUTED_EMAILS)
def test_a_batch_knows_a_customer_by_email_as_the_look_back_does(
    make_config, make_services, first, second
):
    """Two closes of one batch, two customer ids, e-mails the database lowers to one address
    or not. The look-back compares them by the database's lower() (a close in a later batch
    is decided that way); within a batch the keys were Python's lower(), so on PostgreSQL
    "İlker@" and "ilker@" were two customers (both surveyed within the cool-down) and on
    SQLite "Иван@" and "иван@" one (the second skipped, though a later batch surveys it)."""
    services = make_services(make_config(policy={"customer_cooldown_days": 7}))
    expected = "skipped" if _one_customer_to_the_database(services, first, second) else "queued"
    recorder = services.intake.recorder

    batched = recorder._writer._transaction(
        [_close_of(services, "D-1", first), _close_of(services, "D-2", second)]
    )
    apart = [
        recorder._writer._transaction([_close_of(services, dialog, email)])[0]
        for dialog, email in (("D-3", first), ("D-4", second))
    ]

    assert [r["status"] for r in batched] == ["queued", expected], batched
    assert apart[1]["status"] == "skipped"  # D-1 or D-2 is a survey of the same address


@pytest.mark.parametrize(("first", "second"), DISPUTED_EMAILS)
def test_a_look_back_by_email_waits_for_a_close_racing_it_in_another_process(
    make_config, make_services, first, second
):
    """The race of test_a_look_back_sees_a_close_racing_it_in_another_process with two
    customer ids and e-mails the database lowers to one address: the lock key was Python's
    lower(), so "İlker@" and "ilker@" took two PostgreSQL locks, neither close waited for the
    other and both were surveyed."""
    services = make_services(make_config(policy={"customer_cooldown_days": 7}))
    expected = "skipped" if _one_customer_to_the_database(services, first, second) else "queued"
    recorder = services.intake.recorder
    results: dict[str, Any] = {}

    def other_process() -> None:
        results["second"] = recorder._writer._transaction([_close_of(services, "D-2", second)])

    with services.engine.begin() as conn:  # the first process, not yet committed
        results["first"] = recorder._write_in(conn, [_close_of(services, "D-1", first)])
        racing = threading.Thread(target=other_process)
        racing.start()
        racing.join(timeout=1.0)  # long enough for it to record its close, had it not waited
    racing.join(timeout=30)

    assert results["first"][0]["status"] == "queued"
    assert results["second"][0]["status"] == expected, results["second"]


@pytest.mark.parametrize(
    "policy",
    [{}, {"customer_cooldown_days": 7}],
    ids=["one-statement", "transaction"],  # on PostgreSQL; SQLite always runs a transaction
)
def test_close_times_are_compared_as_instants_to_the_microsecond(
    make_config, make_services, policy
):
    """The same instant written in another offset is the same close (a duplicate), and one a
    microsecond later is a later close, on both paths (SQLite compares stored text)."""
    services = make_services(make_config(policy=policy))
    recorder = services.intake.recorder
    t0 = datetime(2026, 11, 2, 9, 30, 0, 500000, tzinfo=UTC)
    moscow = timezone(timedelta(hours=3))
    first = recorder._writer._transaction(
        [_close(services, "D-1", closed_at=t0), _close(services, "D-2", closed_at=t0)]
    )
    assert [r["status"] for r in first] == ["queued", "queued"]
    with services.engine.begin() as conn:  # the dialogs reopened before their replies went out
        conn.execute(sa.update(surveys).values(status=CANCELLED))
        conn.execute(sa.update(outbox).values(status=CANCELLED))

    again = recorder._writer._transaction(
        [
            _close(services, "D-1", closed_at=t0.astimezone(moscow)),
            _close(services, "D-2", closed_at=t0 + timedelta(microseconds=1)),
        ]
    )

    assert [r["status"] for r in again] == ["duplicate", "queued"]


def test_fold_emails_folds_more_than_one_statement_holds(services):
    """store.fold_emails lowers in chunks of FOLD_CHUNK (a select list's columns are bounded:
    1,664 on PostgreSQL, 2,000 on SQLite): every e-mail of a large set comes back folded."""
    emails = [f"Customer{n}@Example.COM" for n in range(2 * store.FOLD_CHUNK + 7)]
    emails += ["İlker@x.tr", "ΟΔΟΣ@x.gr", "Иван@x.ru", "Customer0@Example.COM"]
    with services.engine.connect() as conn:
        folded = store.fold_emails(conn, emails)
        expected = {
            e: conn.execute(sa.select(sa.func.lower(sa.literal(e, sa.String())))).scalar_one()
            for e in emails
        }
    assert folded == expected
    assert folded["Customer1@Example.COM"] == "customer1@example.com"


@pytest.mark.parametrize(
    "policy",
    [{}, {"customer_cooldown_days": 7}],
    ids=["one-statement", "transaction"],  # on PostgreSQL; SQLite always runs a transaction
)
def test_a_survey_revived_after_an_erasure_cancelled_its_reply_mid_send_is_sent_as_any(
    make_config, make_services, policy
):
    # The erasure's mark (outbox.erased_at) is about the attempt in flight when it ran: the
    # reply a later close re-arms is new, its text kept when sent and retried when it fails.
    # Only a close the helpdesk dates later than the erased one re-arms it (store.ERASED).
    services = make_services(make_config(policy=policy))
    recorder = services.intake.recorder
    engine = services.engine
    t0 = services.clock() - timedelta(minutes=10)
    (first,) = recorder._writer._transaction([_close(services, "D-1", closed_at=t0)])
    with engine.begin() as conn:
        conn.execute(sa.update(surveys).values(status=CANCELLED))
        conn.execute(sa.update(outbox).values(status=CANCELLED, erased_at=services.clock()))

    later = t0 + timedelta(minutes=5)
    (again,) = recorder._writer._transaction(
        [_close(services, "D-1", customer="c-new", closed_at=later)]
    )

    assert again["survey_id"] == first["survey_id"]
    with engine.connect() as conn:
        row = conn.execute(sa.select(outbox.c.status, outbox.c.erased_at)).one()
    assert (row.status, row.erased_at) == ("pending", None)


@pytest.mark.parametrize(
    ("policy", "window", "by", "reason"),
    [
        ({"customer_cooldown_days": 1}, timedelta(days=1), "id", "customer_cooldown"),
        ({"customer_cooldown_days": 1}, timedelta(days=1), "email", "customer_cooldown"),
        (
            {"per_dialog": "every_close", "reclose_grace_seconds": 600},
            timedelta(seconds=600),
            "dialog",
            "recently_surveyed",
        ),
    ],
)
def test_each_close_of_a_batch_looks_back_from_its_own_time(
    make_config, make_services, clock, policy, window, by, reason
):
    """A batch's look-backs are one statement per kind of key (store.latest_surveys), asked
    back to its earliest close's time; each close still counts only the surveys since its own:
    a survey just inside the earlier close's window (by customer id, by e-mail in another
    case, or of the same dialog) and just outside the later one's puts only the earlier close
    on cool-down."""
    services = make_services(make_config(policy=policy))
    recorder = services.intake.recorder
    t0 = clock.now

    def close(dialog: str, email: str, occurrence: str, at: datetime) -> _Close:
        made = _close(services, dialog, customer="c-1" if by == "id" else f"c-{dialog}")
        customer = replace(made.event.customer, email=email if by == "email" else None)
        event = replace(made.event, customer=customer)
        return _Close(event, f"{made.token}-{occurrence}", at, occurrence)

    dialogs = ("D-1", "D-1", "D-1") if by == "dialog" else ("D-1", "D-2", "D-3")
    (first,) = recorder._writer._transaction([close(dialogs[0], "Ann@X.org", "1", t0)])
    assert first["status"] == "queued"
    early = close(dialogs[1], "ann@x.ORG", "2", t0 + window - timedelta(seconds=1))
    late = close(dialogs[2], "ANN@x.org", "3", t0 + window + timedelta(seconds=1))

    results = recorder._writer._transaction([early, late])

    assert [r["status"] for r in results] == ["skipped", "queued"]
    assert results[0]["reason"] == reason


def test_a_batch_looks_back_in_each_of_its_helpdesks_and_past_an_in_list(services, clock):
    """store.latest_surveys: the keys of several helpdesks, and more values of one kind than
    one IN list takes (in_chunks), each answered with its own latest survey; a key of one
    helpdesk never answered by another's survey."""
    t0 = clock.now
    count = IN_CHUNK + 3
    with services.engine.begin() as conn:
        conn.execute(
            surveys.insert(),
            [
                {
                    "helpdesk": helpdesk,
                    "dialog_id": f"D-{n}",
                    "customer_id": f"c-{n}",
                    "customer_email": f"C{n}@X.org",
                    "status": "sent" if n % 2 else "queued",
                    "created_at": t0 + timedelta(seconds=n if helpdesk == "eadesk" else -n),
                }
                for helpdesk in ("eadesk", "zendesk")
                for n in range(count)
            ],
        )
    keys = {("customer", "eadesk", f"c-{n}") for n in range(count)}
    keys |= {("email", "zendesk", f"c{n}@x.org") for n in range(count)}
    keys |= {("dialog", "zendesk", "D-1"), ("dialog", "eadesk", "D-none")}
    since = dict.fromkeys(("dialog", "customer", "email"), t0 - timedelta(seconds=count // 2))
    with services.engine.connect() as conn:
        found = store.latest_surveys(conn, keys, since)
    expected = {("customer", "eadesk", f"c-{n}"): t0 + timedelta(seconds=n) for n in range(count)}
    expected |= {
        ("email", "zendesk", f"c{n}@x.org"): t0 - timedelta(seconds=n)
        for n in range(count // 2 + 1)
    }
    expected[("dialog", "zendesk", "D-1")] = t0 - timedelta(seconds=1)
    assert found == expected


@pytest.mark.parametrize(
    "policy",
    [
        {"customer_cooldown_days": 7},
        {"customer_cooldown_days": 7, "per_dialog": "every_close", "reclose_grace_seconds": 600},
    ],
    ids=["cool-down", "cool-down-and-re-close"],
)
def test_a_batchs_look_backs_take_as_many_statements_whatever_its_size(
    make_config, make_services, monkeypatch, policy
):
    """A look-back policy's statements per batch do not grow with the batch: the e-mails
    folded, the locks (PostgreSQL), each kind of look-back and the reopens once for the whole
    batch (a statement per close each was two round trips and a query per close)."""
    services = make_services(make_config(policy=policy))
    recorder = services.intake.recorder

    def sent_for(closes: int, offset: int) -> int:
        batch = []
        for n in range(closes):
            close = _close(services, f"D-{offset + n}")
            customer = replace(close.event.customer, email=f"Customer-{offset + n}@Example.COM")
            event = replace(close.event, customer=customer)
            batch.append(_Close(event, close.token, close.now, close.occurrence))
        statements = _statements(services.engine, monkeypatch)
        results = recorder._writer._transaction(batch)
        assert [r["status"] for r in results] == ["queued"] * closes
        return len(statements)

    sent_for(1, 0)  # the connection's first batch may set it up
    # No more for 16 closes than for 1 (on PostgreSQL the outbox rows of 16 go by
    # executemany, which _statements does not count).
    assert sent_for(16, 100) <= sent_for(1, 200)


def test_a_look_back_policy_is_never_decided_without_the_batchs_latest_surveys(services):
    """skip_reason without the batch's latest surveys (the one-statement path's None): a
    policy that looks back refuses rather than call every close never surveyed."""
    from csat_hook.intake.config import PolicyConfig
    from csat_hook.intake.policy import skip_reason

    event = _close(services, "D-1").event
    now = services.clock()
    assert skip_reason(PolicyConfig(), None, event, now, set(), {}) is None
    for looking_back in (
        PolicyConfig(customer_cooldown_days=7),
        PolicyConfig(per_dialog="every_close", reclose_grace_seconds=600),
    ):
        with pytest.raises(ValueError, match="look-back"):
            skip_reason(looking_back, None, event, now, set(), {})


@pytest.mark.parametrize(
    ("policy", "later", "share", "reason"),
    [
        ({"customer_cooldown_days": 7}, timedelta(days=8), "customer", "customer_cooldown"),
        (
            {"per_dialog": "every_close", "reclose_grace_seconds": 600},
            timedelta(seconds=601),
            "dialog",
            "recently_surveyed",
        ),
    ],
)
def test_a_duplicate_in_a_batch_puts_no_other_close_on_cool_down(
    make_config, make_services, clock, policy, later, share, reason
):
    """A vendor's late retry of a close surveyed past the look-back (its survey older than
    the cool-down, or than the re-close grace), in one batch with a new close of the same
    customer (or dialog): the retry is a duplicate and surveys no one, yet it counted as a
    survey of its customer for the closes after it, and the new close was skipped."""
    services = make_services(make_config(policy=policy))
    recorder = services.intake.recorder

    def close(dialog: str, occurrence: str) -> _Close:
        made = _close(services, dialog, customer="c-1", occurrence=occurrence)
        return replace(made, token=f"{made.token}-{occurrence}")

    first_dialog, second_dialog = ("D-1", "D-2") if share == "customer" else ("D-1", "D-1")
    (first,) = recorder._writer._transaction([close(first_dialog, "1")])
    assert first["status"] == "queued"
    clock.advance(later.total_seconds())

    results = recorder._writer._transaction([close(first_dialog, "1"), close(second_dialog, "2")])

    assert [r["status"] for r in results] == ["duplicate", "queued"], results
    # The new close counts for the closes after it as before.
    (third,) = recorder._writer._transaction([close("D-3" if share == "customer" else "D-1", "3")])
    assert (third["status"], third["reason"]) == ("skipped", reason)
    with services.engine.connect() as conn:
        queue = conn.execute(sa.select(outbox.c.survey_id)).scalars().all()
    assert sorted(queue) == sorted([first["survey_id"], results[1]["survey_id"]])


@pytest.mark.parametrize(
    "policy",
    [{"send_delay_seconds": 60}, {"send_delay_seconds": 60, "customer_cooldown_days": 7}],
    ids=["one-statement", "transaction"],  # on PostgreSQL; SQLite always runs a transaction
)
@pytest.mark.parametrize(
    "order", ["close-unseen-by-the-cancel", "reopen-unseen-by-the-close", "reopen-remembered-first"]
)
def test_a_close_and_its_reopen_recorded_at_once_by_two_processes_never_reply_into_the_dialog(
    make_config, make_services, clock, fake_helpdesk, policy, order
):
    """A close and the reopen that followed it, received at the same moment by two web
    processes. On PostgreSQL (READ COMMITTED, no lock) neither need see the other: the
    reopen's cancel may not see the close's uncommitted reply, and the close may not see the
    uncommitted reopen. The reopen is remembered and committed before its cancel looks, so
    the close is skipped, or the cancel cancels its reply, or the reply's claim reads the
    remembered reopen and cancels it: whichever order, nothing is posted into the reopened
    dialog. (SQLite serialises the writers: the second waits and sees the first.)"""
    from csat_hook.helpdesks.records import DialogReopened
    from csat_hook.outbox import store as outbox_store

    services = make_services(make_config(policy=policy))
    recorder, intake = services.intake.recorder, services.intake
    postgres = services.engine.dialect.name == "postgresql"
    closed_at = clock.now - timedelta(minutes=2)
    reopened_at = clock.now - timedelta(minutes=1)
    close = _close(services, "D-1", closed_at=closed_at, helpdesk="generic")
    reopen = DialogReopened(helpdesk="generic", dialog_id="D-1", reopen_times=(reopened_at,))
    now = clock.now
    results: dict[str, Any] = {}

    def record_close(conn: sa.Connection | None = None) -> None:
        if conn is None:
            results["close"] = recorder._writer._transaction([close])[0]
        else:
            results["close"] = recorder._write_in(conn, [close])[0]

    def remember(conn: sa.Connection) -> None:
        intake.remember_reopen(conn, reopen, now, reopened_at)

    def cancel() -> None:  # the reopen's second transaction: a snapshot after remember's
        with services.engine.begin() as conn:
            results["reopen"] = intake.cancel_on_reopen(conn, reopen, now, reopened_at)

    def record_reopen() -> None:
        with services.engine.begin() as conn:
            remember(conn)
        cancel()

    def at_once(holding: Any, racing: Any) -> None:
        with services.engine.begin() as conn:  # the first process, not yet committed
            holding(conn)
            thread = threading.Thread(target=racing)
            thread.start()
            thread.join(timeout=1.0)  # long enough for it to record its event (PostgreSQL)
        thread.join(timeout=30)

    if order == "close-unseen-by-the-cancel":
        # The close's statement ran before the reopen was remembered and commits after the
        # reopen's cancel looked.
        at_once(record_close, record_reopen)
    elif order == "reopen-unseen-by-the-close":
        # The close ran while the reopen's memory was not yet committed; the cancel follows.
        at_once(remember, record_close)
        cancel()
    else:
        with services.engine.begin() as conn:
            remember(conn)
        record_close()
        cancel()

    clock.advance(61)
    services.delivery_worker().run_once()

    assert [r for r in fake_helpdesk.api_requests() if r["method"] == "POST"] == []
    with services.engine.connect() as conn:
        replies = conn.execute(sa.select(outbox.c.status, outbox.c.last_error)).all()
        survey = conn.execute(sa.select(surveys.c.status, surveys.c.skip_reason)).one()
    if results["close"]["status"] == "skipped":
        assert results["close"]["reason"] == store.REOPENED_AFTER_CLOSE
        assert replies == [], replies
    else:
        assert results["close"]["status"] == "queued", results
        # Cancelled as a reopen cancels: by its cancel, or at the reply's claim.
        assert [tuple(r) for r in replies] == [(CANCELLED, outbox_store.REOPENED_NOTE)]
        assert tuple(survey) == (CANCELLED, None)
    if postgres and order == "close-unseen-by-the-cancel":
        # Neither saw the other: the claim cancelled the reply.
        assert results["reopen"] == (0, 0), results
        assert results["close"]["status"] == "queued", results
    if postgres and order == "reopen-unseen-by-the-close":
        assert results["reopen"] == (1, 0), results
    if order == "reopen-remembered-first":
        assert results["close"]["status"] == "skipped", results
