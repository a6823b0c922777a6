"""Recording delivered replies: sent outcomes committed together are one statement, and each
still gets its own answer (its claim may have been taken over meanwhile)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import SENDING
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.outbox import store
from csat_hook.outbox.recorder import _OneStatement
from tests.intake.test_recorder import _release_held_connections  # noqa: F401  # autouse
from tests.intake.test_recorder import _statements
from tests.outbox.test_worker import queue_generic


def _claimed(services: Any, clock: Any, count: int, **close: Any) -> list[Any]:
    for i in range(count):
        queue_generic(services, dialog_id=f"B-{len(close)}-{i}", **close)
    with services.engine.begin() as conn:
        return store.claim_due(conn, "w", clock(), clock() + timedelta(seconds=30), limit=count)


def _surveys(services: Any) -> dict[str, Any]:
    with services.engine.connect() as conn:
        return {r.dialog_id: r for r in conn.execute(sa.select(surveys))}


def test_sent_outcomes_batched_together_are_one_statement_each_with_its_answer(
    services, clock, monkeypatch
):
    named = _claimed(services, clock, 2)  # the close named agent 7
    nameless = _claimed(services, clock, 1, agent={"name": None})
    with services.engine.begin() as conn:  # another worker took this one over
        conn.execute(sa.update(outbox).where(outbox.c.id == named[1].id).values(claimed_by="x"))
    now = clock()
    marks = [
        store.SentMark(named[0].id, now, "m-1", "text 1"),  # no link: agent fields untouched
        store.SentMark(named[1].id, now, "m-2", "text 2", link="https://f/2"),
        store.SentMark(
            nameless[0].id,
            now + timedelta(microseconds=7),
            "m-3",
            "text 3 «ё» 🙂",
            agent_id="found-9",
            agent_name="Kim",
            agent_email="kim@example.com",
            link="https://f/3",
            note="found by a look-up",
        ),
    ]
    recorder = services.delivery_worker(worker_id="w").recorder
    statements = _statements(services.engine, monkeypatch)

    results = recorder._outcomes._transaction(marks)

    assert results == [True, False, True]
    if services.engine.dialect.name == "postgresql":
        assert len(statements) == 1  # autocommit: no BEGIN, no COMMIT either
    rows = {}
    with services.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(outbox))}
    first, lost, third = (rows[m.outbox_id] for m in marks)
    assert (first.status, first.external_id, first.body, first.sent_at) == (
        "sent",
        "m-1",
        "text 1",
        now,
    )
    assert (lost.status, lost.claimed_by, lost.external_id) == (SENDING, "x", None)
    assert (third.status, third.body, third.last_error) == (
        "sent",
        "text 3 «ё» 🙂",
        "found by a look-up",
    )
    assert third.sent_at == now + timedelta(microseconds=7) and third.lease_until is None
    by_dialog = _surveys(services)
    kept = by_dialog[named[0].dialog_id]
    assert (kept.status, kept.agent_id, kept.link) == ("sent", "7", None)
    assert by_dialog[named[1].dialog_id].status == "queued"  # not this worker's to finish
    found = by_dialog[nameless[0].dialog_id]
    assert (found.status, found.agent_id, found.agent_name, found.agent_email, found.link) == (
        "sent",
        "found-9",
        "Kim",
        "kim@example.com",
        "https://f/3",
    )
    assert found.sent_at == now + timedelta(microseconds=7)


def test_a_found_agent_id_never_replaces_the_one_the_close_gave(services, clock):
    [row] = _claimed(services, clock, 1)
    with services.engine.begin() as conn:
        mark = store.SentMark(row.id, clock(), "m", "b", agent_id="found-9", link="https://f/")
        assert store.mark_sent_many(conn, "w", [mark]) == [True]
    [survey] = _surveys(services).values()
    assert (survey.agent_id, survey.link) == ("7", "https://f/")


@pytest.mark.parametrize(
    "batch",
    [
        pytest.param(["sent", "sent"], id="only-sent"),
        pytest.param(["sent", "other"], id="mixed"),
        pytest.param(["other"], id="one-other"),
    ],
)
def test_sent_outcomes_share_a_statement_only_with_each_other(services, clock, monkeypatch, batch):
    rows = _claimed(services, clock, len(batch))
    writes: list[Any] = []
    for row, kind in zip(rows, batch, strict=True):
        if kind == "sent":
            writes.append(store.SentMark(row.id, clock(), "m", "b"))
        else:
            writes.append(
                _OneStatement(
                    lambda conn, row=row: store.reschedule(
                        conn,
                        row.id,
                        "w",
                        clock(),
                        next_attempt_at=clock(),
                        error="503",
                        http_status=503,
                    )
                )
            )
    recorder = services.delivery_worker(worker_id="w").recorder
    statements = _statements(services.engine, monkeypatch)

    assert recorder._outcomes._transaction(writes) == [True] * len(batch)
    sent = list(statements)

    with services.engine.connect() as conn:
        status = dict(conn.execute(sa.select(outbox.c.id, outbox.c.status)).all())
    expected = {"sent": "sent", "other": "pending"}
    assert [status[row.id] for row in rows] == [expected[kind] for kind in batch]
    if services.engine.dialect.name == "postgresql":
        # Sent outcomes together: one statement; otherwise one per outcome.
        assert len(sent) == (1 if set(batch) == {"sent"} else len(batch))


def test_a_sent_outcome_rides_out_a_pool_timeout(services, fake_helpdesk, monkeypatch):
    # Every pooled connection busy past pool_timeout raises no DBAPIError: the sent mark was
    # not retried, the reply stayed "sending" until its lease ran out, and was then taken for
    # an outcome unknown (sent again where nothing can be looked up).
    queue_generic(services)
    worker = services.delivery_worker()
    real = worker.recorder._outcomes.submit
    refused: list[int] = []

    def busy_once(write: Any, **kwargs: Any) -> Any:
        if not refused:
            refused.append(1)
            raise sa.exc.TimeoutError("QueuePool limit of size 5 overflow 5 reached")
        return real(write, **kwargs)

    monkeypatch.setattr(worker.recorder._outcomes, "submit", busy_once)

    assert worker.run_once() == 1

    with services.engine.connect() as conn:
        [item] = conn.execute(sa.select(outbox)).all()
    assert refused == [1] and item.status == "sent"
    assert len(fake_helpdesk.api_requests()) == 1
