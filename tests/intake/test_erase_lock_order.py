"""A close reviving a customer's cancelled survey while ``csat-hook erase`` erases that
customer, at the same instant on PostgreSQL: both finish, neither is aborted as a deadlock.

The erasure locks the customer's replies (``outbox``) as it reads them, then writes their
surveys; the delivery worker's outcome, a reopen's cancellation and a takeover lock the same
two rows in that order too. A revival used to lock the survey first and then its reply: it
waited for the erasure's reply while holding the survey the erasure was about to write."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.db.schema import CANCELLED
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.erasure import store as erasure_store
from csat_hook.erasure.records import Selector
from csat_hook.errors import CsatHookError
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import Person

WAIT_SECONDS = 20.0


def _close_event(customer: str) -> DialogClosed:
    return DialogClosed(
        helpdesk="eadesk",
        dialog_id="D-1",
        agent=Person(id="a-1"),
        customer=Person(id=customer),
        reply_context={"conversation": "D-1"},
    )


def _blocked_by(engine: sa.Engine, pid: int) -> bool:
    """Whether some backend waits for a lock ``pid`` holds."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
            ),
            {"pid": pid},
        ).scalar_one()
    return bool(found)


@pytest.mark.parametrize(
    "policy",
    [{}, {"customer_cooldown_days": 7}],
    ids=["one-statement", "transaction"],
)
def test_a_close_reviving_the_survey_an_erasure_is_erasing_waits_for_it_and_both_succeed(
    make_config, make_services, monkeypatch, policy
):
    """The close arrives after the erasure locked the customer's reply and before it writes
    the survey: the close waits for the erasure, then revives the survey as any later close
    (queued, not a 503), and the erasure commits (exit 0, not a deadlock)."""
    services = make_services(make_config(policy=policy))
    engine = services.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite: one writer at a time (BEGIN IMMEDIATE), no two lock orders")
    recorder = services.intake.recorder
    now = services.clock()
    first = recorder.record(_close_event("c-1"), token="token-1", now=now, occurrence="")
    assert first["status"] == "queued"
    with engine.begin() as conn:  # the dialog reopened before its reply went out
        conn.execute(sa.update(surveys).values(status=CANCELLED))
        conn.execute(sa.update(outbox).values(status=CANCELLED))

    outcome: dict[str, Any] = {}

    def close_again() -> None:
        try:
            outcome["close"] = recorder.record(
                _close_event("c-1"), token="token-2", now=services.clock(), occurrence=""
            )
        except CsatHookError as exc:
            outcome["close"] = exc.status

    racing = threading.Thread(target=close_again)
    original = erasure_store._alert_messages

    def close_arrives(conn: sa.Connection, *args: Any, **kwargs: Any) -> Any:
        # Between the erasure's reads (its replies locked) and its writes: the close arrives
        # and waits for a lock the erasure holds.
        if not racing.is_alive() and "close" not in outcome:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            racing.start()
            deadline = time.monotonic() + WAIT_SECONDS
            while not _blocked_by(engine, pid):
                assert time.monotonic() < deadline, "the close never waited for the erasure"
                assert "close" not in outcome, outcome
                time.sleep(0.02)
        return original(conn, *args, **kwargs)

    monkeypatch.setattr(erasure_store, "_alert_messages", close_arrives)
    try:
        with engine.begin() as conn:
            tally = erasure_store.erase(
                conn, Selector(helpdesk="eadesk", customer_id="c-1"), now, apply=True
            )
        outcome["erase"] = "committed"
    except sa.exc.DBAPIError as exc:
        outcome["erase"] = type(exc.orig).__name__
    racing.join(timeout=WAIT_SECONDS)

    assert outcome["erase"] == "committed", outcome
    assert isinstance(outcome["close"], dict), outcome
    assert outcome["close"]["status"] == "queued"
    assert outcome["close"]["survey_id"] == first["survey_id"]  # revived, not a second one
    assert tally.surveys == 1
    with engine.connect() as conn:
        survey = conn.execute(sa.select(surveys.c.status, surveys.c.customer_id)).one()
        reply = conn.execute(sa.select(outbox.c.status, outbox.c.context)).one()
    # The close came after the erasure: its survey goes out as any later close's.
    assert (survey.status, survey.customer_id) == ("queued", "c-1")
    assert (reply.status, reply.context) == ("pending", {"conversation": "D-1"})
