"""E-mail recipients refused for now (450 to RCPT TO) beside accepted ones get the alert later
from a follow-up delivery, exactly once, and the others never get a second copy; a real SMTP
server (aiosmtpd on loopback), SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook import server
from csat_hook.alerts import store as alerts_store
from csat_hook.alerts.report import delivery_text
from csat_hook.db.schema import outbox
from csat_hook.outbox import listing
from csat_hook.outbox import store
from csat_hook.outbox.alert_delivery import Chain
from csat_hook.outbox.alert_delivery import follow_up_of
from tests.alerts.conftest import SECRET
from tests.alerts.conftest import alerts_section
from tests.alerts.conftest import changed
from tests.alerts.conftest import generic_notes
from tests.alerts.conftest import raise_now
from tests.alerts.test_rule_changed import serve_delivery
from tests.notify.smtp_server import Mailbox
from tests.notify.smtp_server import email_options
from tests.notify.smtp_server import start_server
from tests.outbox.test_worker import drain

LEAD, TEAM, OPS, BOSS = (f"{n}@example.org" for n in ("lead", "team", "ops", "boss"))


@pytest.fixture
def box() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp(tmp_path: Path, box: Mailbox) -> Iterator[tuple[int, Path]]:
    controller, ca_file = start_server(tmp_path / "smtp", box)
    yield controller.port, ca_file
    controller.stop()


@pytest.fixture
def mail_services(
    make_config: Callable[..., Any],
    make_services: Callable[[Any], Any],
    fake_notify: Any,
    fake_helpdesk: Any,
    smtp: tuple[int, Path],
) -> Callable[..., Any]:
    """Services whose one rule alerts the e-mail destination ``mail`` (``to`` as given)."""

    def build(to: list[str], **delivery: Any) -> Any:
        port, ca_file = smtp
        section = alerts_section(
            fake_notify,
            rules=[
                {"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["mail"]}
            ],
        )
        section["destinations"]["mail"] = email_options(port, ca_file, to)
        config = make_config(
            alerts=section,
            helpdesks={"generic": generic_notes(fake_helpdesk.url)},
            **({"delivery": delivery} if delivery else {}),
        )
        return make_services(config)

    return build


def rows(services: Any) -> list[Any]:
    with services.engine.connect() as conn:
        return list(conn.execute(sa.select(outbox).order_by(outbox.c.id)))


def received(box: Mailbox) -> Counter[str]:
    """How many copies each recipient was handed (one RCPT TO accepted, one message)."""
    return Counter(address for _, recipients, _ in box.messages for address in recipients)


def test_a_recipient_refused_for_now_gets_the_alert_once_later_and_the_others_once(
    mail_services, box, clock
):
    box.busy[TEAM] = 1  # 450 at the first send, accepted at the next
    services = mail_services([LEAD, TEAM, OPS])
    raise_now(services, [changed(submitted_at=clock() - timedelta(minutes=2))])
    worker = services.delivery_worker()
    worker.run_once()

    first, follow_up = rows(services)
    assert first.status == "sent" and first.last_error == (
        "sent to the other recipients; refused by the server: team@example.org (450, for now); "
        "to be sent again to those refused for now (follow-up 1)"
    )
    assert follow_up.status == "pending" and follow_up.attempts == 0
    assert follow_up.delivery_key == f"{first.delivery_key}:rcpt:1"
    assert (follow_up.alert_id, follow_up.destination) == (first.alert_id, "mail")
    # The team had one attempt of its delivery.max_attempts: the first delivery's.
    assert follow_up.context == {"recipients": [TEAM], "generation": 1, "tried": 1}
    # After the retry policy's delay (backoff_base_seconds 0.01 in the tests), not at once.
    assert follow_up.next_attempt_at > clock()

    drain(worker, clock)

    assert received(box) == {LEAD: 1, OPS: 1, TEAM: 1}
    assert [recipients for _, recipients, _ in box.messages] == [[LEAD, OPS], [TEAM]]
    one, two = box.parsed()
    assert one["Message-ID"] == two["Message-ID"]  # the same alert, not a new one
    first, follow_up = rows(services)
    assert follow_up.status == "sent" and follow_up.last_error is None
    with services.engine.connect() as conn:
        # One alert to the destination for alerts.cap_per_hour, its follow-up not counted.
        assert alerts_store.capped_deliveries(conn, "mail", clock() - timedelta(hours=1)) == 1
        deliveries = alerts_store.deliveries_of(conn, [first.alert_id])[first.alert_id]
        listed = listing.list_outbox(conn, kinds=["alert"])
    assert [delivery_text(d) for d in deliveries] == ["mail: sent", "mail (again, 1): sent"]
    assert [store.follow_up_generation(r.delivery_key) for r in listed] == [1, 0]


def test_a_recipient_refused_for_good_is_not_sent_again(mail_services, box, clock):
    box.refuse.add(TEAM)
    services = mail_services([LEAD, TEAM])
    raise_now(services, [changed(submitted_at=clock() - timedelta(minutes=2))])
    drain(services.delivery_worker(), clock)

    [row] = rows(services)
    assert row.status == "sent" and row.attempts == 1
    assert row.last_error == "sent to the other recipients; refused by the server: " + (
        "team@example.org (550)"
    )
    assert received(box) == {LEAD: 1}


def test_follow_ups_stop_at_max_attempts_and_say_who_never_got_it(mail_services, box, clock):
    # Each send reaches one more recipient; BOSS is refused for now at every one.
    box.busy.update({TEAM: 1, OPS: 2})
    box.refuse_for_now.add(BOSS)
    services = mail_services([LEAD, TEAM, OPS, BOSS], max_attempts=3)
    raise_now(services, [changed(submitted_at=clock() - timedelta(minutes=2))])
    drain(services.delivery_worker(), clock)

    found = rows(services)
    assert [(r.status, store.follow_up_generation(r.delivery_key)) for r in found] == [
        ("sent", 0),
        ("sent", 1),
        ("sent", 2),
    ]
    assert [r.context.get("recipients") for r in found] == [None, [TEAM, OPS, BOSS], [OPS, BOSS]]
    assert found[-1].last_error.endswith(
        "not sent again: refused for now after 3 attempts (delivery.max_attempts), "
        "never got it: boss@example.org"
    )
    assert received(box) == {LEAD: 1, TEAM: 1, OPS: 1}
    assert Counter(box.asked)[BOSS] == 3


def test_a_follow_up_whose_recipients_stay_refused_fails_naming_them(mail_services, box, clock):
    box.busy[TEAM] = 1_000
    services = mail_services([LEAD, TEAM], max_attempts=3)
    raise_now(services, [changed(submitted_at=clock() - timedelta(minutes=2))])
    drain(services.delivery_worker(), clock)

    first, follow_up = rows(services)
    assert first.status == "sent"
    # A send every recipient refused (450: retryable) is retried within the team's budget:
    # the first delivery's attempt and the follow-up's two.
    assert follow_up.status == "failed" and follow_up.attempts == 2
    assert Counter(box.asked)[TEAM] == 3
    assert follow_up.last_error.endswith("never got it: team@example.org")
    assert received(box) == {LEAD: 1}


@pytest.mark.parametrize(
    ("to", "busy"),
    [
        # The lead takes it at once; the follow-up is all that is left for the team.
        ([LEAD, TEAM], {}),
        # Every recipient refused the first send (retried as a whole): those count too.
        ([LEAD, TEAM], {LEAD: 1}),
        # Ops takes it from the first follow-up: the team's tries go on in a second one.
        ([LEAD, OPS, TEAM], {OPS: 1}),
    ],
    ids=["one-follow-up", "original-retried", "chained-follow-ups"],
)
def test_a_recipient_refused_for_now_forever_is_tried_max_attempts_times_in_all(
    mail_services, box, clock, to, busy
):
    """The budget is the recipient's, across the first delivery and all its follow-ups: each
    follow-up had its own max_attempts, so the team was asked up to max_attempts² times."""
    box.refuse_for_now.add(TEAM)  # 450 at every RCPT TO
    box.busy.update(busy)
    services = mail_services(to, max_attempts=4)
    raise_now(services, [changed(submitted_at=clock() - timedelta(minutes=2))])
    drain(services.delivery_worker(), clock)

    asked = Counter(box.asked)
    assert asked[TEAM] == 4
    assert received(box) == {address: 1 for address in to if address != TEAM}
    assert all(asked[address] == 1 + busy.get(address, 0) for address in to if address != TEAM)
    found = rows(services)
    assert [r.status for r in found[:-1]] == ["sent"] * (len(found) - 1)
    assert found[-1].status == "failed"
    assert found[-1].last_error.endswith("never got it: team@example.org")


def scheduled_waits(services: Any, clock: Any, rounds: int = 20) -> list[float]:
    """Run the delivery worker until nothing is due, moving the clock to each due time; the
    seconds each pending row was given to wait, in the order they were scheduled (a retry's,
    and a follow-up's before its first attempt)."""
    worker = services.delivery_worker()
    seen: set[tuple[int, int]] = set()
    waits: list[float] = []
    for _ in range(rounds):
        worker.run_once()
        for row in rows(services):
            if row.status == "pending" and (row.id, row.attempts) not in seen:
                seen.add((row.id, row.attempts))
                waits.append((row.next_attempt_at - clock()).total_seconds())
        with services.engine.connect() as conn:
            due = store.next_due_at(conn)
        if due is None:
            return waits
        clock.now = max(clock.now, due) + timedelta(milliseconds=1)
    raise AssertionError("still due after every round")


@pytest.mark.parametrize(
    ("to", "busy"),
    [([LEAD, TEAM], {}), ([LEAD, TEAM], {LEAD: 1}), ([LEAD, OPS, TEAM], {OPS: 1})],
    ids=["one-follow-up", "original-retried", "chained-follow-ups"],
)
def test_a_recipients_waits_continue_the_backoff_across_its_follow_ups(
    mail_services, box, clock, monkeypatch, to, busy
):
    """The n-th attempt overall for a recipient waits the retry policy's n-th delay: a
    follow-up's own retries, and the follow-up after a retried delivery, went back to the
    first delay (1 s, 1 s, 2 s instead of 1 s, 2 s, 4 s)."""
    # Each wait at the top of its jitter: the policy's ceiling, 1 s doubling.
    monkeypatch.setattr("csat_hook.retry.random", SimpleNamespace(uniform=lambda low, high: high))
    box.refuse_for_now.add(TEAM)  # 450 at every RCPT TO
    box.busy.update(busy)
    services = mail_services(to, max_attempts=4, backoff_base_seconds=1, backoff_cap_seconds=1000)
    raise_now(services, [changed(submitted_at=clock() - timedelta(minutes=2))])

    # The team's four attempts (delivery.max_attempts): three waits, the last one fails.
    assert scheduled_waits(services, clock) == [1.0, 2.0, 4.0]
    assert Counter(box.asked)[TEAM] == 4
    assert rows(services)[-1].status == "failed"


def test_a_follow_up_queued_before_tried_was_kept_counts_one_attempt_per_earlier_delivery():
    def row(context: Any) -> Any:
        return SimpleNamespace(context=context)

    assert follow_up_of(row({})) == Chain(None, 0, 0)
    assert follow_up_of(row({"recipients": [TEAM], "generation": 2, "tried": 5})) == Chain(
        (TEAM,), 2, 5
    )
    # Each earlier delivery sent to its receivers at least once.
    assert follow_up_of(row({"recipients": [TEAM], "generation": 2})) == Chain((TEAM,), 2, 2)


def test_a_recipient_removed_from_the_config_is_dropped_from_the_follow_up(
    mail_services, box, clock
):
    box.busy.update({TEAM: 1, OPS: 1})
    before = mail_services([LEAD, TEAM, OPS])
    raise_now(before, [changed(submitted_at=clock() - timedelta(minutes=2))])
    before.delivery_worker().run_once()
    assert rows(before)[1].context["recipients"] == [TEAM, OPS]

    after = mail_services([LEAD, TEAM])  # ops@ removed meanwhile
    drain(after.delivery_worker(), clock)

    assert [r.status for r in rows(after)] == ["sent", "sent"]
    assert [recipients for _, recipients, _ in box.messages] == [[LEAD], [TEAM]]


def test_the_follow_up_is_queued_only_with_its_sent_mark(mail_services, box, clock):
    """Another worker took the row over: neither the sent mark nor the follow-up is written
    (the new owner sends the alert to everyone)."""
    services = mail_services([LEAD, TEAM])
    raise_now(services, [changed(submitted_at=clock() - timedelta(minutes=2))])
    with services.engine.begin() as conn:
        [item] = store.claim_due(conn, "w", clock(), clock() + timedelta(seconds=30), limit=1)
    mark = store.SentMark(item.id, clock(), "<id@example.org>", None)
    follow_up = {
        "alert_id": item.alert_id,
        "destination": "mail",
        "delivery_key": store.follow_up_key(item.delivery_key, 1),
        "helpdesk": "",
        "dialog_id": "",
        "context": {"recipients": [TEAM], "generation": 1, "tried": 1},
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": clock(),
        "created_at": clock(),
        "updated_at": clock(),
    }
    with services.engine.begin() as conn:
        assert not store.mark_sent_and_follow_up(conn, "other", mark, follow_up)
    assert [r.status for r in rows(services)] == ["sending"]
    with services.engine.begin() as conn:
        assert store.mark_sent_and_follow_up(conn, "w", mark, follow_up)
    assert [r.status for r in rows(services)] == ["sent", "pending"]


def test_follow_up_keys_fit_the_column_and_name_their_generation():
    key = "9" * 19 + ":" + "d" * 64
    assert store.follow_up_key(key, 1) == key + ":rcpt:1"
    assert store.follow_up_key(key + ":rcpt:1", 2) == key + ":rcpt:2"
    assert store.follow_up_generation(key + ":rcpt:12") == 12
    assert store.follow_up_generation(key) == 0 and store.follow_up_generation(None) == 0
    long = store.follow_up_key("x" * 191, 3)
    assert len(long) == 191 and long.endswith(":rcpt:3")


def test_a_gone_workers_email_is_sent_again_only_once_its_smtp_exchange_could_have_ended(
    mail_services, box, clock
):
    """The gone worker may have started the e-mail just before its fence closed, and an SMTP
    exchange may last the destination's whole deadline (15 s here), far longer than the one
    request (3 s) a takeover allowed for: sent again meanwhile, it could arrive twice."""
    services = mail_services([LEAD])
    raise_now(services, [changed(submitted_at=clock() - timedelta(minutes=2))])
    config = services.config.delivery
    gone = services.delivery_worker(worker_id="gone")
    gone.beat()
    with services.engine.begin() as conn:
        lease = clock() + timedelta(seconds=config.lease_seconds)
        assert len(store.claim_due(conn, "gone", clock(), lease, limit=1)) == 1
    survivor = services.delivery_worker(worker_id="survivor")
    clock.advance(config.worker_dead_after_seconds + 1)
    assert survivor.release_stale() == 1

    clock.advance(config.takeover_wait_seconds + 1)  # enough after one request
    survivor.run_once()
    assert box.messages == []  # the gone worker's exchange may still be under way

    clock.advance(config.takeover_wait(15) - config.takeover_wait_seconds)
    survivor.run_once()
    assert received(box) == {LEAD: 1}
    [row] = rows(services)
    assert row.status == "sent" and row.last_error.startswith("sent again after an unknown")


def test_every_recipient_refused_some_for_now_is_retried_not_failed(mail_services, box, clock):
    """450 to one and 550 to the other: nothing was sent, and the first may take it later.
    It was failed as a whole (the highest code won), and the lead never got the alert."""
    box.busy[LEAD] = 1  # 450 at the first send, accepted at the next
    box.refuse.add(TEAM)  # 550 at every one
    services = mail_services([LEAD, TEAM])
    raise_now(services, [changed(submitted_at=clock() - timedelta(minutes=2))])
    worker = services.delivery_worker()

    worker.run_once()
    [row] = rows(services)
    assert row.status == "pending" and box.messages == []
    assert "every recipient refused, some for now" in row.last_error

    drain(worker, clock)
    assert received(box) == {LEAD: 1}
    [row] = rows(services)
    assert row.status == "sent" and row.last_error == (
        "sent to the other recipients; refused by the server: team@example.org (550)"
    )


def test_a_follow_up_of_a_delivery_taken_off_its_rule_while_in_flight_is_not_sent(
    mail_services, make_config, make_services, fake_notify, fake_helpdesk, smtp, box, clock
):
    """The old process's worker is sending the alert by e-mail when a new process starts
    with ``mail`` taken off the rule: its start's check marks the delivery, which it cannot
    cancel under the worker. The server refuses one recipient for now: the follow-up to
    that recipient is queued after the mark, and the new process's worker, whose start's
    check has run, must not send it to a destination the rule no longer has."""
    box.busy[TEAM] = 1
    old = mail_services([LEAD, TEAM, OPS])
    port, ca_file = smtp
    section = alerts_section(
        fake_notify,
        rules=[{"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["slack"]}],
    )
    section["destinations"]["mail"] = email_options(port, ca_file, [LEAD, TEAM, OPS])
    new = make_services(
        make_config(alerts=section, helpdesks={"generic": generic_notes(fake_helpdesk.url)})
    )
    raise_now(old, [changed(submitted_at=clock() - timedelta(minutes=2))])
    booted: list[Any] = []

    def marked() -> bool:
        return all(store.unrouted_reason(r.context) for r in rows(new))

    class Asked(list[str]):
        def append(self, address: str) -> None:
            if not booted:  # the new process starts while the old one sends
                booted.append(serve_delivery(new))
                deadline = time.monotonic() + 10
                while not marked() and time.monotonic() < deadline:
                    time.sleep(0.02)
            super().append(address)

    box.asked = Asked()
    try:
        old.delivery_worker().run_once()
        first, follow_up = rows(old)
        assert first.status == "sent" and follow_up.status == "pending"
        clock.advance(60)  # the follow-up is due
        deadline = time.monotonic() + 10
        while rows(new)[1].status in ("pending", "sending") and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for one in booted:
            server._stop_delivery(None, one)

    assert received(box) == {LEAD: 1, OPS: 1}
    with new.engine.connect() as conn:
        deliveries = alerts_store.deliveries_of(conn, [first.alert_id])[first.alert_id]
    assert [delivery_text(d) for d in deliveries] == [
        "mail: sent",
        "mail (again, 1): cancelled (destination removed)",
    ]


def mail_a_webhook(
    make_config: Callable[..., Any],
    make_services: Callable[[Any], Any],
    fake_notify: Any,
    fake_helpdesk: Any,
) -> Any:
    """Services as :func:`mail_services` builds them, but ``mail`` made a webhook."""
    section = alerts_section(
        fake_notify,
        rules=[{"name": "low", "kind": "low_rating", "max_rating": 2, "destinations": ["mail"]}],
    )
    section["destinations"]["mail"] = {
        "kind": "webhook",
        "url": fake_notify.webhook("mail", SECRET),
        "secret": SECRET,
    }
    return make_services(
        make_config(alerts=section, helpdesks={"generic": generic_notes(fake_helpdesk.url)})
    )


def test_a_follow_up_to_recipients_of_a_destination_no_longer_e_mail_is_cancelled(
    mail_services, make_config, make_services, fake_notify, fake_helpdesk, box, clock
):
    """``mail`` became a webhook while the follow-up to a recipient refused for now waited:
    its receivers are addresses of the e-mail destination, which is gone (as a recipient
    removed from ``to`` is dropped). Cancelled, naming who never got it; nothing reaches the
    webhook of that name (the alert went to ``mail`` already, by e-mail)."""
    box.busy[TEAM] = 1
    before = mail_services([LEAD, TEAM])
    raise_now(before, [changed(submitted_at=clock() - timedelta(minutes=2))])
    before.delivery_worker().run_once()
    assert rows(before)[1].context["recipients"] == [TEAM]
    after = mail_a_webhook(make_config, make_services, fake_notify, fake_helpdesk)

    drain(after.delivery_worker(), clock)

    assert fake_notify.requests("webhook") == []
    assert received(box) == {LEAD: 1}
    _, follow_up = rows(after)
    assert delivery_text(follow_up) == "mail (again, 1): cancelled (kind changed)"
    assert follow_up.last_error == (
        "cancelled: kind_changed; queued for an email destination, now webhook; "
        "never got it: team@example.org"
    )


def test_a_follow_up_cancelled_as_its_kind_changed_stays_so_when_the_alert_stands_again(
    mail_services, make_config, make_services, fake_notify, fake_helpdesk, box, clock
):
    """The follow-up cancelled as above (``kind_changed``) was not cancelled by a withdrawal:
    the answer improving and coming back to the 1 queues nothing again, and the follow-up
    keeps its reason, never claimed again."""
    box.busy[TEAM] = 1
    before = mail_services([LEAD, TEAM])
    answer = changed(submitted_at=clock() - timedelta(minutes=2))
    raise_now(before, [answer])
    before.delivery_worker().run_once()
    after = mail_a_webhook(make_config, make_services, fake_notify, fake_helpdesk)
    drain(after.delivery_worker(), clock)
    _, cancelled = rows(after)
    assert delivery_text(cancelled) == "mail (again, 1): cancelled (kind changed)"

    raise_now(after, [replace(answer, rating=5, previous_rating=1)])
    clock.advance(60)
    again = raise_now(after, [replace(answer, previous_rating=5)])
    assert (again.raised, again.queued) == ({}, 0)
    drain(after.delivery_worker(), clock)

    first, follow_up = rows(after)
    assert delivery_text(first) == "mail: sent"
    assert (follow_up.status, follow_up.last_error, follow_up.updated_at) == (
        "cancelled",
        cancelled.last_error,
        cancelled.updated_at,
    )
    assert fake_notify.requests("webhook") == []
    assert received(box) == {LEAD: 1}
