"""Deliveries that meet what no adapter foresaw still end, and never post a reply twice: an
agent look-up answering text the database and the link cannot hold."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from csat_hook.db.schema import surveys
from csat_hook.helpdesks.records import Person
from tests.helpers import link_fields
from tests.outbox.test_unknown_outcome import posts
from tests.outbox.test_worker import drain
from tests.outbox.test_worker import outbox_rows
from tests.outbox.test_worker import queue_generic

NAMELESS = {"agent": {"id": "7", "name": None, "email": None}}


def survey_row(services: Any) -> Any:
    with services.engine.connect() as conn:
        return conn.execute(sa.select(surveys)).one()


def test_a_looked_up_name_the_link_cannot_encode_is_cleaned_and_the_reply_sent_once(
    services, fake_helpdesk, clock, monkeypatch
):
    # What a vendor's JSON "name": "Ann\ud800a\u0000…" decodes to: a lone surrogate (no UTF-8
    # for the link), NUL (PostgreSQL refuses it) and more than the column holds.
    adapter = services.helpdesks["generic"]
    answer = Person("7", "Ann\ud800a\x00" + "n" * 300, "ann\x00@example.com")
    monkeypatch.setattr(adapter, "fetch_agent", lambda agent, context: answer)
    queue_generic(services, **NAMELESS)

    drain(services.delivery_worker(), clock)

    [request] = posts(fake_helpdesk)
    [item] = outbox_rows(services)
    assert item.status == "sent" and item.attempts == 1
    name = ("Ann\ufffda" + "n" * 300)[:255]
    assert link_fields(request["body"]["text"].split()[-1])["entry.111"] == name
    survey = survey_row(services)
    assert (survey.agent_name, survey.agent_email) == (name, "ann@example.com")
