"""Signed but hostile webhooks: every adapter (its kit signs any body), SQLite and PostgreSQL.

What a sender that passes verification can still send: nesting deeper than any payload needs,
numbers no float holds, ids of the wrong type, NUL characters, lone surrogates and values
longer than their columns. The answer is a 2xx (the close stored, cleaned) or a 4xx naming
what is wrong; never a 5xx, and never a 503 that makes the vendor retry a close forever. Both
databases store the same thing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.parse
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from csat_hook.app import create_app
from csat_hook.db.engine import make_engine
from csat_hook.db.schema import outbox
from csat_hook.db.schema import surveys
from csat_hook.errors import BadPayloadError
from csat_hook.helpdesks.records import DialogClosed
from csat_hook.helpdesks.records import Person
from csat_hook.intake.storable import storable_dialog_id
from tests.documents import at
from tests.documents import leaves
from tests.documents import replaced
from tests.helpdesks.kits import Kit
from tests.helpdesks.kits import load_kits
from tests.helpers import body_of
from tests.helpers import fixture
from tests.helpers import generic_close

KITS = load_kits()


class Sender:
    """Posts bodies signed with a kit's scheme to an app configured for that kit alone."""

    def __init__(self, kit: Kit, client: Any, services: Any, clock: Any) -> None:
        self.kit, self.client, self.services, self.clock = kit, client, services, clock

    def post(self, payload: Any, *, ensure_ascii: bool = False) -> Any:
        body = payload if isinstance(payload, bytes) else _dumps(payload, ensure_ascii)
        signed, headers, query = self.kit.sign(body, self.clock())
        return self.client.post(
            f"/webhooks/{self.kit.kind}", data=signed, headers=headers, query_string=query
        )

    def close(self) -> dict[str, Any]:
        """A fresh copy of the kit's close payload."""
        payload: dict[str, Any] = json.loads(self.kit.closed(self.clock())[0])
        return payload

    def rows(self, table: sa.Table = surveys) -> list[Any]:
        with self.services.engine.connect() as conn:
            return list(conn.execute(sa.select(table).order_by(table.c.id)).all())


def _dumps(payload: Any, ensure_ascii: bool) -> bytes:
    return json.dumps(payload, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


@pytest.fixture
def make_sender(
    make_config, make_services, fake_helpdesk, tmp_path, clock
) -> Callable[..., Sender]:
    def build(kit: Kit, **sections: Any) -> Sender:
        options = {"kind": kit.kind, **kit.options(fake_helpdesk.url, tmp_path)}
        options.update(sections.pop("adapter", {}))
        services = make_services(make_config(helpdesks={kit.kind: options}, **sections))
        return Sender(kit, create_app(services=services).test_client(), services, clock)

    return build


@pytest.fixture
def sender(kit: Kit, make_sender: Callable[..., Sender]) -> Sender:
    return make_sender(kit)


def stored_text(sender: Sender) -> list[str]:
    """Every text value of every stored survey and queued reply (context included)."""
    found = []
    for table in (surveys, outbox):
        for row in sender.rows(table):
            for value in row._mapping.values():
                if isinstance(value, str):
                    found.append(value)
                elif isinstance(value, dict):
                    found.extend(str(v) for v in value.values())
    return found


def assert_refused_or_accepted(response: Any) -> None:
    assert response.status_code in (200, 400), (response.status_code, response.get_data()[:300])
    if response.status_code == 400:
        body = response.get_json()
        assert body["error"] and body["reason"]


# --- depth and surrogates ------------------------------------------------------------------


def nested(levels: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def deep_body(sender: Sender, levels: int) -> bytes:
    """The kit's close with an extra field nested ``levels`` deep, a lone surrogate at the
    bottom (written by hand: json.dumps itself recurses)."""
    close = body_of(sender.close())
    deep = b'{"a":' * levels + b'"\\ud800"' + b"}" * levels
    return close[:-1] + b', "extra": ' + deep + b"}"


@pytest.mark.parametrize("levels", [65, 600, 5000])
def test_bodies_nested_deeper_than_64_levels_are_refused(sender, levels):
    response = sender.post(deep_body(sender, levels))

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json == {
        "error": "too_deep",
        "reason": "the body nests deeper than 64 levels",
    }
    assert sender.rows() == []


def test_a_body_within_the_depth_bound_is_accepted(sender):
    response = sender.post(deep_body(sender, 50))

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] == "queued"


def test_lone_surrogates_are_stored_as_replacement_characters(make_sender):
    sender = make_sender(KITS["generic"])
    close = generic_close("D-5", agent_name="Anna \ud800Petrova")
    close["customer"]["name"] = "\udc00"

    response = sender.post(close, ensure_ascii=True)  # as the escapes \ud800 and \udc00

    assert response.status_code == 200, response.get_data()[:300]
    [survey] = sender.rows()
    assert (survey.agent_name, survey.customer_name) == ("Anna \ufffdPetrova", "\ufffd")


@pytest.mark.parametrize("bad", ["\x00", "\ud800"], ids=["NUL", "lone-surrogate"])
def test_unstorable_characters_in_any_field_never_reach_the_database(sender, bad):
    """Each string of the close, in turn, with a NUL or a lone surrogate inside: PostgreSQL's
    text cannot hold a NUL (it answered 503 forever) while SQLite stored it; no driver can
    encode a lone surrogate. Now neither is stored, on both databases alike."""
    payload = sender.close()
    strings = [(path, value) for path, value in leaves(payload) if isinstance(value, str)]
    assert strings
    for path, value in strings:
        changed = replaced(payload, path, value[:1] + bad + value[1:])
        assert_refused_or_accepted(sender.post(changed, ensure_ascii=True))
    assert sender.rows(), "no close was stored at all"
    texts = stored_text(sender)
    assert not any(
        c == "\x00" or "\ud800" <= c <= "\udfff" or c >= "\U0010f800"
        for text in texts
        for c in text
    )


# --- numbers -------------------------------------------------------------------------------


def test_the_largest_integers_never_crash_the_endpoint(sender):
    """Each scalar of the close, in turn, replaced by a 309-digit integer (the largest a float
    holds, larger ones are out of range: a timestamp no date reaches, an id nobody has)."""
    payload = sender.close()
    for path, _value in leaves(payload):
        if path:
            assert_refused_or_accepted(sender.post(replaced(payload, path, 10**308)))


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59Z"]
)
def test_times_at_the_ends_of_the_calendar_never_crash_the_endpoint(sender, moment):
    """Each scalar of the close, in turn, replaced by a time whose offset takes it past year
    9999 or before year 1 in UTC (readable as text, not as an instant a datetime holds)."""
    payload = sender.close()
    for path, _value in leaves(payload):
        if path:
            assert_refused_or_accepted(sender.post(replaced(payload, path, moment)))


@pytest.mark.parametrize(
    "number",
    [
        b"1e999",
        b"-1e999",
        b"1.5e400",
        b"1" + b"0" * 309,  # 1e309 as an integer
        b"-1" + b"0" * 309,
        b"17976931348623159" + b"0" * 292,  # rounds past the largest float, as 1.79...59e308
        b"9" * 4301,  # past Python's int max-str-digits: was "not valid JSON"
        b"9" * 200_000,
    ],
    ids=lambda number: number[:12].decode() + f"..({len(number)})",
)
def test_numbers_beyond_a_float_are_refused(sender, number):
    body = body_of(sender.close())[:-1] + b', "extra": ' + number + b"}"

    response = sender.post(body)

    assert response.status_code == 400
    assert response.json["error"] == "number_out_of_range"


def test_the_largest_integers_a_float_holds_are_read(sender):
    """An integer is out of range from where a float is (1.7976931348623157e308), not
    earlier: the largest ones a float holds, and integers beyond a float's precision, read."""
    largest = b"17976931348623158" + b"0" * 292  # rounds to the largest float
    for number in (largest, b"-" + largest, b"1" + b"0" * 308, b"9007199254740993"):
        body = body_of(sender.close())[:-1] + b', "extra": ' + number + b"}"

        assert sender.post(body).status_code == 200, number[:20]


def test_a_timestamp_too_large_for_a_date_leaves_the_close_time_unknown(make_sender):
    sender = make_sender(KITS["chatwoot"], policy={"per_dialog": "every_close"})
    payload = sender.close()
    payload["updated_at"] = 10**308  # Chatwoot's close time; no date is this far
    payload["timestamp"] = 10**30

    response = sender.post(payload)

    assert response.status_code == 200, response.get_data()[:300]
    [survey] = sender.rows()
    assert survey.closed_at is None
    assert survey.occurrence.startswith("sha256:")  # 309 digits: a key too long, digested


# --- close times ---------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


# Each vendor whose close names its time: every field its adapter reads the time from, how
# the vendor writes a time there, its latest time a parser reads as it was meant (Unix
# seconds past 1e11 are read as milliseconds), and the event that reopens the dialog.
CLOSE_TIMES: dict[str, tuple[tuple[str, ...], Callable[[datetime], Any], Any, str]] = {
    "chatwoot": (
        ("updated_at", "timestamp"),
        _epoch,
        99_999_999_999,  # year 5138
        "conversation_status_changed_reopened.json",
    ),
    "helpscout": (("closedAt",), _iso, "9999-12-31T23:59:59Z", "convo.status.active.json"),
    "intercom": (
        (
            "data.item.conversation_parts.conversation_parts.0.created_at",
            "data.item.updated_at",
            "created_at",
        ),
        _epoch,
        99_999_999_999,
        "conversation.admin.opened.json",
    ),
    "zendesk": (
        ("time", "detail.updated_at"),
        _iso,
        "9999-12-31T23:59:59.999999999Z",
        "ticket_status_changed_reopened.json",
    ),
}


def _closed_at(sender: Sender, value: Any) -> dict[str, Any]:
    """The kit's close, with ``value`` as its close time wherever the adapter reads one."""
    payload = sender.close()
    for dotted in CLOSE_TIMES[sender.kit.kind][0]:
        payload = replaced(payload, at(payload, dotted), value)
    return payload


@pytest.mark.parametrize("kind", sorted(CLOSE_TIMES))
@pytest.mark.parametrize("ahead", ["calendar-end", "local-time-as-utc"])
def test_a_close_time_in_the_future_does_not_stop_a_later_close_reviving_the_survey(
    make_sender, clock, kind, ahead
):
    """A signed close whose time is the end of the calendar, or a +14:00 wall time written as
    UTC, then a reopen, then a genuine close: the survey the reopen cancelled is re-armed,
    once, as with true times. Stored as sent, the future time was later than every genuine
    close to come, and the dialog was never surveyed again. The future close delivered again
    is a duplicate."""
    sender = make_sender(KITS[kind], policy={"send_delay_seconds": 3600})
    _fields, spelled, calendar_end, reopen = CLOSE_TIMES[kind]
    future = calendar_end if ahead == "calendar-end" else spelled(clock.now + timedelta(hours=14))
    bogus = _closed_at(sender, future)

    first = sender.post(bogus)
    clock.advance(120)
    reopened = sender.post(fixture(kind, reopen))
    clock.advance(120)
    genuine = sender.post(_closed_at(sender, spelled(clock.now - timedelta(seconds=2))))
    clock.advance(60)
    replayed = sender.post(bogus)

    assert first.json["status"] == "queued", first.get_data()[:300]
    assert reopened.json == {"status": "reopened", "cancelled": 1}
    assert genuine.json["status"] == "queued", genuine.json
    assert genuine.json["survey_id"] == first.json["survey_id"]
    assert replayed.json["status"] == "duplicate", replayed.json
    [survey] = sender.rows()
    assert survey.status == "queued"
    assert [item.status for item in sender.rows(outbox)] == ["pending"]  # one reply


@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-12:00",  # past year 9999 in UTC
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
        "0001-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
        "2100-01-01T00:00:00+14:00",
        "2026-11-21T01:59:58+14:00",  # 11:59:58 UTC: the next day there, but the past
        "2026-11-19T23:59:58-12:00",
        "NaN",
        "-Infinity",
        "1e999",
        "-62135596800",  # 0001-01-01 in Unix seconds
        "-62135596801",
        "99999999999",
        0,
        -1,
        -(10**11),
        10**30,
        1e308,
    ],
)
def test_any_close_time_is_stored_as_an_instant_the_database_holds(make_sender, clock, moment):
    """A close time past or before what a datetime, PostgreSQL's timestamp or SQLite's text
    holds, not a number, or not believable, is never a 5xx: the close is stored, its time
    the one written, the receive time (when it cannot be true) or unknown (unreadable)."""
    sender = make_sender(KITS["helpscout"])
    close = _closed_at(sender, moment)

    response = sender.post(close)

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] == "queued"
    [survey] = sender.rows()
    assert survey.closed_at is None or (
        datetime(2000, 1, 1, tzinfo=UTC) <= survey.closed_at <= clock.now + timedelta(minutes=5)
    )
    assert sender.post(close).json["status"] == "duplicate"


# A vendor's close whose time its adapter reads from more than one field: the kind, the
# payload (None: the kit's close), those fields in the adapter's order of preference, and how
# the vendor writes a time there.
FALLBACK_TIMES: dict[str, tuple[str, str | None, tuple[str, ...], Callable[[datetime], Any]]] = {
    "chatwoot": ("chatwoot", None, CLOSE_TIMES["chatwoot"][0], _epoch),
    "intercom-1.x": ("intercom", None, CLOSE_TIMES["intercom"][0], _epoch),
    "intercom-2.x": (
        "intercom",
        "conversation.admin.closed.v2.json",
        (
            "data.item.statistics.last_close_at",
            "data.item.conversation_parts.conversation_parts.0.created_at",
            "data.item.updated_at",
            "created_at",
        ),
        _epoch,
    ),
    "zendesk": ("zendesk", None, CLOSE_TIMES["zendesk"][0], _iso),
}

# Readable times no close can have: a clock far ahead, a 0 (or a default) read as 1970.
NOT_BELIEVED = {
    "far-future": datetime(2100, 1, 1, tzinfo=UTC),
    "before-2000": datetime(1970, 1, 1, tzinfo=UTC),
}


def _close_with_times(sender: Sender, case: str, times: list[datetime]) -> dict[str, Any]:
    """The close of ``case`` with ``times[i]`` written in its i-th close time field."""
    kind, name, fields, spelled = FALLBACK_TIMES[case]
    payload = fixture(kind, name) if name else sender.close()
    assert len(times) == len(fields)
    for dotted, moment in zip(fields, times, strict=True):
        payload = replaced(payload, at(payload, dotted), spelled(moment))
    return payload


def _stored_close_time(
    make_sender: Callable[..., Sender], case: str, times: list[datetime]
) -> datetime | None:
    sender = make_sender(KITS[FALLBACK_TIMES[case][0]])

    response = sender.post(_close_with_times(sender, case, times))

    assert response.json["status"] == "queued", response.get_data()[:300]
    [survey] = sender.rows()
    return survey.closed_at


@pytest.mark.parametrize("case", sorted(FALLBACK_TIMES))
@pytest.mark.parametrize("wrong", sorted(NOT_BELIEVED))
def test_a_close_time_not_believed_gives_way_to_the_next_field_that_is(
    make_sender, clock, case, wrong
):
    """The first field's time is readable but no close's (year 2100, a 0), the second's is
    true: the second is stored, not the receive time. The fields after it are wrong too, so
    it is the second that is taken, not any later one."""
    closed = clock.now - timedelta(seconds=100)
    fields = FALLBACK_TIMES[case][2]
    bad = NOT_BELIEVED[wrong]
    times = [bad, closed] + [bad] * (len(fields) - 2)

    assert _stored_close_time(make_sender, case, times) == closed


@pytest.mark.parametrize("case", sorted(FALLBACK_TIMES))
def test_a_close_whose_every_time_is_not_believed_is_recorded_as_received(make_sender, clock, case):
    fields = FALLBACK_TIMES[case][2]
    times = [NOT_BELIEVED["far-future"]] + [NOT_BELIEVED["before-2000"]] * (len(fields) - 1)

    assert _stored_close_time(make_sender, case, times) == clock.now


@pytest.mark.parametrize("case", sorted(FALLBACK_TIMES))
def test_the_first_close_time_believed_is_the_one_stored(make_sender, clock, case):
    """Every field true but each a little different: the adapter's first choice is kept."""
    fields = FALLBACK_TIMES[case][2]
    times = [clock.now - timedelta(seconds=10 * (i + 1)) for i in range(len(fields))]

    assert _stored_close_time(make_sender, case, times) == times[0]


# --- canonical JSON ------------------------------------------------------------------------


def with_key_twice(payload: Any, path: tuple[Any, ...], second: Any) -> bytes:
    """``payload`` as JSON where the object holding ``path`` has its last key written twice:
    first with its value, then with ``second`` (json.dumps cannot write a duplicate)."""
    value: Any = payload
    for step in path:
        value = value[step]
    sentinel = "@@duplicate@@"
    text = json.dumps(replaced(payload, path, sentinel))
    twice = f"{json.dumps(value)}, {json.dumps(path[-1])}: {json.dumps(second)}"
    assert text.count(json.dumps(sentinel)) == 1
    return text.replace(json.dumps(sentinel), twice).encode()


def test_a_key_written_twice_is_refused(sender, kit):
    """{"id": 1, "id": 2}: Python's parser keeps the last value, others the first; the signed
    bytes do not say one thing, so they are refused, whichever value is the id."""
    payload = sender.close()
    for dotted in kit.id_paths:
        path = at(payload, dotted)
        for second in ("4242", 4242):
            response = sender.post(with_key_twice(payload, path, second))

            assert response.status_code == 400, (dotted, response.get_data()[:300])
            assert response.json == {
                "error": "duplicate_key",
                "reason": "an object in the body has the same key twice",
            }
    assert sender.rows() == []
    assert sender.post(body_of(payload)).json["status"] == "queued"  # the same close, once


def test_the_same_close_spelled_otherwise_is_the_same_close(make_sender):
    """A generic close whose mapping names no occurrence is told apart by a digest of the
    body: of the document, not of its spelling (key order, whitespace, escapes), so the same
    close delivered again re-serialised is a duplicate even past the re-close grace."""
    sender = make_sender(
        KITS["generic"], policy={"per_dialog": "every_close", "reclose_grace_seconds": 0}
    )
    close = generic_close("D-3")
    spellings = [
        json.dumps(close).encode(),
        json.dumps(close, sort_keys=True, indent=2).encode(),
        json.dumps(dict(reversed(close.items())), separators=(",", ":")).encode(),
        json.dumps(close, ensure_ascii=True).replace('"D-3"', '"D\\u002d3"').encode(),
    ]

    answers = [sender.post(body).json["status"] for body in spellings]

    assert answers == ["queued", "duplicate", "duplicate", "duplicate"]
    other = sender.post(generic_close("D-3", closed_at="2026-01-02T03:04:05Z"))
    assert other.json["status"] == "queued"  # another close of the same dialog
    assert len(sender.rows()) == 2


def post_form(sender: Sender, body: bytes) -> Any:
    signed, headers, query = sender.kit.sign(body, sender.clock())
    headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
    return sender.client.post(
        f"/webhooks/{sender.kit.kind}", data=signed, headers=headers, query_string=query
    )


def test_a_form_body_is_read_one_way_only(make_sender):
    """A form carries JSON in its ``payload`` field or is the document itself. A field given
    twice, or percent-escapes that are not UTF-8 (%FF and %FE would both read as U+FFFD: two
    dialogs as one), are refused as their JSON counterparts are."""
    sender = make_sender(KITS["generic"])
    close = urllib.parse.quote(json.dumps(generic_close("D-F")))
    refused = {
        f"payload={close}&payload={close}": "duplicate_key",
        "event=dialog.closed&dialog=1&dialog=2": "duplicate_key",
        f"payload={close.replace('D-F', 'D-%FF')}": "bad_encoding",
        "event=dialog.closed&dialog=D-%FE": "bad_encoding",
    }
    for body, code in refused.items():
        response = post_form(sender, body.encode())

        assert response.status_code == 400, (body[:60], response.get_data()[:300])
        assert response.json["error"] == code, (body[:60], response.json)
    assert sender.rows() == []
    accepted = post_form(sender, f"payload={close}".encode())
    assert accepted.status_code == 200 and accepted.json["status"] == "queued"


# --- ids -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad", [True, False, 5.0, 5.5, {"id": 5}, [5]], ids=["true", "false", "5.0", "5.5", "{}", "[]"]
)
def test_ids_of_the_wrong_type_are_refused_naming_the_field(sender, kit, bad):
    assert kit.id_paths, f"the {kit.kind} kit names no id paths"
    payload = sender.close()
    for dotted in kit.id_paths:
        response = sender.post(replaced(payload, at(payload, dotted), bad))

        assert response.status_code == 400, (dotted, response.get_data()[:300])
        assert response.json["error"] == "bad_id", (dotted, response.json)
        assert dotted in response.json["reason"], (dotted, response.json)
    assert sender.rows() == []


def test_ids_as_strings_or_integers_are_accepted(sender, kit):
    payload = sender.close()
    for dotted in kit.id_paths:
        path = at(payload, dotted)
        value: Any = payload
        for step in path:
            value = value[step]
        flipped = str(value) if isinstance(value, int) else value
        if isinstance(value, str) and value.isdigit():
            flipped = int(value)
        payload = replaced(payload, path, flipped)

    response = sender.post(payload)

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] == "queued"


# --- credential headers ----------------------------------------------------------------------


def test_a_repeated_credential_header_is_refused_naming_it(sender, kit):
    """A signature or token header sent twice reaches the app joined into one value (WSGI:
    gunicorn joins with ",", Werkzeug with ", "): it never matched, and the 401 said only that
    it did not. The 400 names the header, never its value."""
    credential_headers = {
        name.lower() for _, name in sender.services.intake.helpdesks[kit.kind].credentials() if name
    }
    body, headers, query = kit.closed(sender.clock())
    [repeated] = [name for name in headers if name.lower() in credential_headers]
    value = headers[repeated]
    listed = [*headers.items(), (repeated, value)]

    response = sender.client.post(
        f"/webhooks/{kit.kind}", data=body, headers=listed, query_string=query
    )

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "duplicate_header"
    assert repeated in response.json["reason"] and value not in response.json["reason"]
    assert sender.rows() == []
    once = sender.client.post(
        f"/webhooks/{kit.kind}", data=body, headers=headers, query_string=query
    )
    assert once.status_code == 200, once.get_data()[:300]


def test_every_header_the_verification_reads_is_refused_repeated(sender, kit):
    """Not only the signature or token: every header a sender's proof is read from (a signed
    timestamp too) is judged by what happens without it, whatever the adapter says it reads.
    One whose absence is a 401, sent twice (gunicorn joins the two with ","), is a 400
    ``duplicate_header`` naming it: a repeated timestamp header was a bare 401. The adapter
    declares each such header."""
    body, headers, query = kit.closed(sender.clock())
    read = []
    for name in headers:
        without = {k: v for k, v in headers.items() if k != name}
        response = sender.client.post(
            f"/webhooks/{kit.kind}", data=body, headers=without, query_string=query
        )
        if response.status_code == 401:
            read.append(name)
    assert read, "the kit's close carries no header its verification reads"
    declared = {h.lower() for h in sender.services.intake.helpdesks[kit.kind].proof_headers()}
    assert {name.lower() for name in read} <= declared
    stored = sender.rows()  # a close without Content-Type is still read (as JSON)

    for name in read:
        value = headers[name]
        sent = {**headers, name: f"{value},{value}"}

        response = sender.client.post(
            f"/webhooks/{kit.kind}", data=body, headers=sent, query_string=query
        )

        assert response.status_code == 400, (name, response.get_data()[:300])
        assert response.json["error"] == "duplicate_header"
        assert name in response.json["reason"] and value not in response.json["reason"]
    assert sender.rows() == stored


@pytest.mark.parametrize("joined", [", ", ","])
def test_a_repeated_timestamp_header_of_a_generic_sender_is_refused_naming_it(
    make_sender, clock, joined
):
    secret = "kit-generic-ts-secret"
    auth = {
        "mode": "hmac",
        "secret": secret,
        "signature_header": "X-Sig",
        "timestamp_header": "X-Sig-Time",
        "signed_payload": "{timestamp}.{body}",
    }
    sender = make_sender(KITS["generic"], adapter={"auth": auth})
    body = json.dumps(generic_close("D-6")).encode()
    timestamp = str(int(clock().timestamp()))
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    headers = {"Content-Type": "application/json", "X-Sig": digest.hexdigest()}

    response = sender.client.post(
        "/webhooks/generic",
        data=body,
        headers={**headers, "X-Sig-Time": f"{timestamp}{joined}{timestamp}"},
    )

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "duplicate_header"
    assert "X-Sig-Time" in response.json["reason"]
    once = sender.client.post(
        "/webhooks/generic", data=body, headers={**headers, "X-Sig-Time": timestamp}
    )
    assert once.status_code == 200, once.get_data()[:300]


@pytest.mark.parametrize("joined", [", ", ","])
def test_a_repeated_authorization_header_is_refused_naming_it(make_sender, joined):
    secret = "s3cret-token"
    auth = {"mode": "token", "token": secret, "token_header": "Authorization"}
    sender = make_sender(KITS["generic"], adapter={"auth": auth})
    body = json.dumps(generic_close("D-5")).encode()
    credentials = f"Bearer {secret}"

    response = sender.client.post(
        "/webhooks/generic",
        data=body,
        content_type="application/json",
        environ_overrides={"HTTP_AUTHORIZATION": f"{credentials}{joined}{credentials}"},
    )

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "duplicate_header"
    assert "Authorization" in response.json["reason"] and secret not in response.json["reason"]
    alone = sender.client.post(
        "/webhooks/generic",
        data=body,
        content_type="application/json",
        headers={"Authorization": credentials},
    )
    assert alone.status_code == 200, alone.get_data()[:300]


def test_a_wrong_credential_alone_is_still_a_401(sender, kit):
    body, headers, query = kit.tamper(kit.closed(sender.clock()))

    response = sender.client.post(
        f"/webhooks/{kit.kind}", data=body, headers=headers, query_string=query
    )

    assert response.status_code == 401, response.get_data()[:300]


# --- the generic adapter's mapping -----------------------------------------------------------


def _mapped(key: str, expression: str) -> dict[str, Any]:
    if key.startswith("context."):
        return {"context": {key.removeprefix("context."): expression}}
    if key == "event":
        return {"event": expression, "close_events": ["true"]}
    return {key: expression}


@pytest.mark.parametrize(
    ("key", "expression", "field", "bad", "good"),
    [
        (
            "agent_name",
            "join(' ', [agent.first, agent.last])",
            "agent",
            {"id": "7", "first": 5, "last": None},
            {"id": "7", "first": "Anna", "last": "Petrova"},
        ),
        ("dialog_id", "to_string(length(dialog.id))", "dialog", {"id": 5}, {"id": "D-8"}),
        ("context.tags", "join(',', tags)", "tags", [1, {"a": 2}], ["vip", "billing"]),
    ],
)
def test_a_mapping_function_given_a_value_of_another_type_is_a_400(
    make_sender, key, expression, field, bad, good
):
    """Operators may map with JMESPath functions; a sender decides the types they get. A
    function refusing a type a close carries (JMESPathTypeError) is the sender's error, named
    with the function and the types (never the value), never a 500."""
    sender = make_sender(KITS["generic"], adapter={"mapping": _mapped(key, expression)})

    refused = sender.post(generic_close("D-8", **{field: bad}))

    assert refused.status_code == 400, refused.get_data()[:300]
    assert refused.json["error"] == "bad_field"
    assert f"(mapping.{key})" in refused.json["reason"]
    assert "() takes " in refused.json["reason"], refused.json
    assert sender.rows() == []
    accepted = sender.post(generic_close("D-8", **{field: good}))
    assert accepted.status_code == 200, accepted.get_data()[:300]
    assert accepted.json["status"] == "queued"


@pytest.mark.parametrize(
    ("key", "expression", "bad"),
    [
        ("dialog_id", "to_string(floor(to_number(dialog.id)))", "inf"),
        ("dialog_id", "to_string(ceil(to_number(dialog.id)))", "NaN"),
        ("dialog_id", "to_string(floor(to_number(dialog.id)))", "1e400"),
        ("agent_id", "to_string(floor(to_number(agent.id)))", "-Infinity"),
        ("context.seq", "to_string(ceil(to_number(seq)))", "9" * 5000),
    ],
)
def test_a_mapping_function_given_a_number_no_integer_holds_is_a_400(
    make_sender, key, expression, bad
):
    """``to_number`` reads a sender's text such as ``"inf"``, ``"NaN"`` or ``"1e400"`` as a
    float infinity or NaN (a JSON number so written is refused before any mapping), and
    ``floor``/``ceil`` of it raised OverflowError or ValueError out of the mapping: a 500,
    which the vendor retries for ever. A value the function cannot read is the sender's
    error, as a wrong type is: 400 naming the mapping key, never the value."""
    sender = make_sender(KITS["generic"], adapter={"mapping": _mapped(key, expression)})
    close = generic_close("D-10")
    if key == "dialog_id":
        close["dialog"]["id"] = bad
    elif key == "agent_id":
        close["agent"]["id"] = bad
    else:
        close["seq"] = bad

    refused = sender.post(close)

    assert refused.status_code == 400, refused.get_data()[:300]
    assert refused.json["error"] == "bad_field"
    assert f"(mapping.{key})" in refused.json["reason"]
    assert "infinite or not a number" in refused.json["reason"]
    assert len(refused.json["reason"]) < 300  # the expression and the problem, not the value
    assert sender.rows() == []
    close["dialog"]["id"], close["agent"]["id"], close["seq"] = "12", "7", "3"
    accepted = sender.post(close)
    assert accepted.status_code == 200, accepted.get_data()[:300]
    assert accepted.json["status"] == "queued"


@pytest.mark.parametrize(
    ("key", "expression", "field", "bad", "good"),
    [
        (
            "agent_name",
            "join(' ', [agent.first, agent.last])",
            "agent",
            {"first": 5},
            {"first": "Anna", "last": "Petrova"},
        ),
        (
            "customer_email",
            "to_string(length(customer.email))",
            "customer",
            {"email": None},
            {"email": "ivan@example.org"},
        ),
        ("context.tags", "join(',', tags)", "tags", [1, {"a": 2}], ["vip"]),
        ("close_time", "max(times)", "times", ["a", 1], [1700000000]),
    ],
)
def test_a_mapping_function_a_close_alone_reads_never_refuses_another_event(
    make_sender, key, expression, field, bad, good
):
    """What the event and status expressions say decides first: an event that is not a close
    is answered 200 "ignored" and a reopen cancels, whatever a value only a close reads holds.
    A 400 there made the vendor retry (and in the end disable) the webhook over events it was
    never asked to send for a survey."""
    sender = make_sender(KITS["generic"], adapter={"mapping": _mapped(key, expression)})
    queued = sender.post(generic_close("D-9", **{field: good}))
    assert queued.status_code == 200 and queued.json["status"] == "queued", queued.json

    other = sender.post({"event": "dialog.note_added", "dialog": {"id": "D-9"}, field: bad})
    reopened = sender.post({"event": "dialog.reopened", "dialog": {"id": "D-9"}, field: bad})

    assert other.status_code == 200, other.get_data()[:300]
    assert other.json["status"] == "ignored"
    assert reopened.status_code == 200, reopened.get_data()[:300]
    assert reopened.json == {"status": "reopened", "cancelled": 1}
    assert [row.status for row in sender.rows()] == ["cancelled"]


@pytest.mark.parametrize(
    ("key", "expression", "field", "absent", "column"),
    [
        ("agent_name", "join(' ', [agent.first, agent.last])", "agent", {"first": "A"}, None),
        ("customer_email", "to_string(length(customer.email))", "customer", {}, None),
        ("team", "to_string(team)", "team", None, "team"),
        ("channel", "join('/', channel.path)", "channel", {}, "channel"),
        ("close_time", "max(times)", "times", None, None),
    ],
)
def test_a_mapping_function_given_a_missing_value_reads_it_as_missing(
    make_sender, key, expression, field, absent, column
):
    """A function over a field the close does not carry (``join`` of a missing list,
    ``to_string`` of nothing) reads as that field missing, as a plain path to it does: the
    close is queued without it. It was a 400 (the vendor retried a body that can never change,
    then disabled the webhook), or, through ``to_string``, the text "null" stored as a value."""
    sender = make_sender(KITS["generic"], adapter={"mapping": _mapped(key, expression)})
    close = generic_close("D-8")
    if absent is None:
        close.pop(field, None)
    else:
        close[field] = absent

    response = sender.post(close)

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] == "queued"
    [survey] = sender.rows()
    if column is not None:
        assert getattr(survey, column) is None


@pytest.mark.parametrize(
    "expression", ["to_string(conversation.id)", "join('-', [dialog.account, dialog.id])"]
)
def test_a_dialog_id_a_function_reads_from_a_missing_value_is_missing(make_sender, expression):
    """A close whose mapped dialog id is missing is refused as missing_field whether the
    mapping reads it by a plain path or through a function: ``to_string`` made the text
    "null" a dialog id (the survey queued for ``/dialogs/null``)."""
    sender = make_sender(KITS["generic"], adapter={"mapping": {"dialog_id": expression}})

    response = sender.post(generic_close("D-8"))

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "missing_field"
    assert "dialog id is missing" in response.json["reason"]
    assert f"mapping.dialog_id = {expression}" in response.json["reason"]
    assert sender.rows() == []


@pytest.mark.parametrize(
    ("key", "expression", "value"),
    [
        ("event", "starts_with(event, 'dialog.')", 42),
        ("status", "join(',', state)", [1, 2]),
    ],
)
def test_a_body_the_event_or_status_expression_cannot_read_is_ignored_as_misconfigured(
    make_sender, caplog, key, expression, value
):
    """The event and status expressions decide what a body is: one they cannot read (a
    function given another type) is not known to be a close, so it is answered 200 "ignored"
    and logged at WARNING (webhook.ignored-misconfigured), as a Zendesk or Freshdesk body that
    is not what the rule was set up to send is. It was a 400: the vendor retried a body that
    never changes, then disabled the webhook for every close."""
    caplog.set_level(logging.DEBUG)
    mapping = (
        {"event": expression, "close_events": ["true"]}
        if key == "event"
        else {"event": None, "status": expression}
    )
    sender = make_sender(KITS["generic"], adapter={"mapping": mapping})
    close = generic_close("D-8")
    close["event" if key == "event" else "state"] = value

    response = sender.post(close)

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] == "ignored"
    assert f"mapping.{key}" in response.json["reason"]
    assert sender.rows() == []
    [line] = [r for r in caplog.records if r.msg == "webhook.ignored-misconfigured"]
    assert line.levelno == logging.WARNING and f"mapping.{key}" in line.reason


# --- values the database cannot hold -------------------------------------------------------


def test_text_values_are_stored_cleaned_and_clipped_to_their_columns(make_sender):
    sender = make_sender(KITS["generic"])
    close = generic_close(
        "D-77",
        agent_id="7\x00" + "7" * 300,
        agent_name="Anna\x00 Petrova" + " x" * 200,
        team="Support\x00 L1",
        channel="c" * 500,
        language="en-\x00US-" + "x" * 30,
    )
    close["customer"] = {"id": "cust\x00-1", "name": "Iv\x00an", "email": "i\x00@e.org"}

    response = sender.post(close)

    assert response.status_code == 200, response.get_data()[:300]
    [survey] = sender.rows()
    assert survey.agent_id == ("7" * 301)[:191]
    assert survey.agent_name == ("Anna Petrova" + " x" * 200)[:255]
    assert (survey.team, survey.channel, survey.language) == (
        "Support L1",
        "c" * 191,
        "en-US-xxxxxxxxxx",
    )
    assert (survey.customer_id, survey.customer_name, survey.customer_email) == (
        "cust-1",
        "Ivan",
        "i@e.org",
    )


def test_a_dialog_id_longer_than_its_column_is_refused_not_cut(sender, kit):
    longest = "9" * 191
    over = "9" * 192

    refused = sender.post(kit.with_dialog_id(sender.close(), over))
    assert refused.status_code == 400, refused.get_data()[:300]
    assert refused.json == {
        "error": "id_too_long",
        "reason": "the dialog id is longer than 191 characters",
    }
    accepted = sender.post(kit.with_dialog_id(sender.close(), longest))
    assert accepted.status_code == 200, accepted.get_data()[:300]
    assert accepted.json["status"] == "queued"
    assert [row.dialog_id for row in sender.rows()] == [longest]


def test_a_dialog_id_with_a_nul_is_refused(sender, kit):
    response = sender.post(kit.with_dialog_id(sender.close(), "5158\x00"))

    assert response.status_code == 400
    assert response.json["error"] == "bad_id" and "dialog id" in response.json["reason"]


def test_a_dialog_id_with_a_lone_surrogate_is_refused_never_taken_for_another(sender, kit):
    """A lone surrogate (only a \\u escape can send one) in the dialog id: refused as a NUL
    is. Read as U+FFFD, "S\\ud800", "S\\udbff" and "S\\ufffd" were one dialog: the first
    queued, the others duplicates (two surveys lost), and the reply went to ticket "S\\ufffd"."""
    for lone in ("S\ud800", "S\udbff", "\udc00S"):
        response = sender.post(kit.with_dialog_id(sender.close(), lone), ensure_ascii=True)
        assert response.status_code == 400, (lone, response.get_data()[:300])
        assert response.json["error"] == "bad_id" and "surrogate" in response.json["reason"]
    assert sender.rows() == []
    accepted = sender.post(kit.with_dialog_id(sender.close(), "S\ufffd"), ensure_ascii=True)
    assert accepted.status_code == 200, accepted.get_data()[:300]
    assert accepted.json["status"] == "queued"
    assert [row.dialog_id for row in sender.rows()] == ["S\ufffd"]


def test_a_dialog_id_is_trimmed_of_ascii_padding_only_never_taken_for_another(sender, kit):
    """Padding a template may add around an id (spaces, tabs, line breaks) is trimmed; a
    character Python's ``str.strip`` also drops but no template pads with (NEL, a no-break
    space, an ideographic space, the separators U+001C-U+001F) is part of the id. Stripped,
    "S\x85" and "S\xa0" were ticket "S": the first queued and its reply posted to ticket
    "S", the others duplicates, and ticket "S"'s own close a duplicate too."""
    own = ["S\x85", "S\xa0", "\u3000S", "S\x1f", "S\u2028"]
    for dialog_id in own:
        response = sender.post(kit.with_dialog_id(sender.close(), dialog_id), ensure_ascii=True)
        assert response.status_code == 200, (dialog_id, response.get_data()[:300])
        assert response.json["status"] == "queued", (dialog_id, response.json)
    plain = sender.post(kit.with_dialog_id(sender.close(), "S"))
    assert plain.json["status"] == "queued", plain.json
    padded = sender.post(kit.with_dialog_id(sender.close(), " S\r\n\t"))
    assert padded.json["status"] == "duplicate", padded.json
    assert [row.dialog_id for row in sender.rows()] == [*own, "S"]


INVISIBLE_IDS = ["\u200b", "\u200b\u200c\u200d", "\ufeff", "\u2060", "\xa0", "\u3000", "\u200e\x85"]


@pytest.mark.parametrize("invisible", INVISIBLE_IDS, ids=repr)
def test_a_dialog_id_of_invisible_characters_alone_is_refused(sender, kit, invisible):
    """A dialog id that shows nothing (zero-width, format or space characters alone) was
    stored as an id no one could read, type or find again (``erase``, the reports), and the
    reply queued for it. Refused as a bad id, saying why; visible characters beside them
    keep the id an id."""
    response = sender.post(kit.with_dialog_id(sender.close(), invisible), ensure_ascii=True)

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "bad_id", response.json
    assert "invisible" in response.json["reason"], response.json
    assert invisible not in response.json["reason"]
    assert sender.rows() == []
    accepted = sender.post(kit.with_dialog_id(sender.close(), f"S{invisible}"), ensure_ascii=True)
    assert accepted.status_code == 200, accepted.get_data()[:300]


@pytest.mark.parametrize("invisible", INVISIBLE_IDS, ids=repr)
def test_an_agent_or_customer_field_of_invisible_characters_alone_is_none(make_sender, invisible):
    """An agent's or customer's id, name or e-mail that shows nothing is no value: stored,
    the invisible agent id was the agent's key in the reports."""
    sender = make_sender(KITS["generic"])
    close = generic_close("D-1", agent_id=invisible, agent_name=invisible)
    close["customer"] = {"id": invisible, "name": invisible, "email": invisible}

    response = sender.post(close, ensure_ascii=True)

    assert response.status_code == 200, response.get_data()[:300]
    [survey] = sender.rows()
    assert (survey.agent_id, survey.agent_name) == (None, None)
    assert (survey.customer_id, survey.customer_name, survey.customer_email) == (None, None, None)
    assert survey.agent_email == "anna@example.com"


@pytest.mark.parametrize("dots", [".", ".."])
def test_a_dialog_id_that_is_a_dot_segment_is_refused(sender, kit, dots):
    """The reply goes to ``…/dialogs/<id>/messages``: with ``..`` every HTTP client and server
    reads ``…/messages`` (RFC 3986 removes dot segments, escaped or not), another endpoint."""
    response = sender.post(kit.with_dialog_id(sender.close(), dots))

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "bad_id", response.json
    assert repr(dots) in response.json["reason"], response.json
    assert sender.rows() == []
    # Dots inside an id are an id's own characters.
    accepted = sender.post(kit.with_dialog_id(sender.close(), f"5158{dots}"))
    assert accepted.status_code == 200, accepted.get_data()[:300]
    assert [row.dialog_id for row in sender.rows()] == [f"5158{dots}"]


def test_a_long_occurrence_is_kept_as_its_digest_and_still_deduplicates(make_sender):
    sender = make_sender(
        KITS["generic"],
        adapter={"mapping": {"occurrence": "closed_event"}},
        policy={"per_dialog": "every_close", "reclose_grace_seconds": 0},
    )
    first = "close-" + "x" * 300 + "-1"
    second = "close-" + "x" * 300 + "-2"  # the same first 191 characters

    answers = [
        sender.post(generic_close("D-9", closed_event=occurrence)).json["status"]
        for occurrence in (first, second, first, "short\x00")
    ]

    assert answers == ["queued", "queued", "duplicate", "queued"]
    occurrences = [row.occurrence for row in sender.rows()]
    assert len(set(occurrences)) == 3
    assert all(len(o) <= 191 and "\x00" not in o for o in occurrences)


def test_a_survey_reference_longer_than_its_column_is_refused(make_sender):
    sender = make_sender(KITS["generic"])
    close = generic_close("|" * 191, agent_id="|" * 191)  # each | escapes to three bytes

    response = sender.post(close)

    assert response.status_code == 400
    assert response.json["error"] == "id_too_long" and "survey reference" in response.json["reason"]
    assert sender.rows() == []


# --- database errors: refused data is the sender's, only a lost database is 503 -------------


def test_a_value_the_database_refuses_is_a_400_not_a_503(sender, clock):
    recorder = sender.services.intake.recorder

    def close(dialog_id: str) -> DialogClosed:
        return DialogClosed(helpdesk=sender.kit.kind, dialog_id=dialog_id, agent=Person(id="1"))

    recorder.record(close("A"), token="same-token", now=clock(), occurrence="")
    with pytest.raises(BadPayloadError) as refused:  # surveys.token is unique
        recorder.record(close("B"), token="same-token", now=clock(), occurrence="")

    assert refused.value.code == "unstorable"
    assert refused.value.message == "the database refused a value of this webhook (IntegrityError)"


def test_an_unreachable_database_is_503_to_retry_within_a_minute(sender):
    """The 503 says when to come back, in under a minute: Zendesk retries a 503 (or a 429)
    only when its Retry-After is below 60 seconds, so without one a close that arrived while
    the database was away was never sent again. The retry is then taken."""
    payload = sender.close()
    working = sender.services.engine
    sender.services.engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")
    try:
        response = sender.post(payload)
    finally:
        sender.services.engine.dispose()
        sender.services.engine = working

    assert response.status_code == 503
    assert response.json["error"] == "unavailable"
    retry_after = response.headers.get("Retry-After", "")
    assert retry_after.isdigit() and 0 < int(retry_after) < 60, retry_after
    retried = sender.post(payload)
    assert retried.status_code == 200 and retried.json["status"] == "queued", retried.json


@pytest.mark.parametrize("space", ["", " \r\n\t"])
def test_a_json_body_labelled_as_a_form_is_read_as_json(sender, space):
    """Some helpdesk automation tools label a JSON body ``application/x-www-form-urlencoded``.
    Read as a form, ``{"event": ...}`` was one field named after the whole document: the
    close was ignored (200, nothing stored) or refused as not a close. A body that starts
    (after whitespace) with ``{`` or ``[`` is no form: it is read as JSON."""
    body = (space + json.dumps(sender.close(), ensure_ascii=False)).encode()

    response = post_form(sender, body)

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] in ("queued", "scheduled"), response.json
    assert len(sender.rows()) == 1


@pytest.mark.parametrize("label", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_that_starts_with_a_byte_order_mark_is_the_same_close(sender, label):
    """Some senders write UTF-8 with a byte order mark (EF BB BF) first; RFC 8259 (8.1)
    lets a parser ignore it. Labelled JSON it was refused as "not valid JSON", a reason that
    does not name it; labelled a form it was one field named after the whole document, and
    the close was answered 200 "ignored": lost. The signature still covers the raw bytes."""
    close = json.dumps(sender.close(), ensure_ascii=False).encode()
    signed, headers, query = sender.kit.sign(b"\xef\xbb\xbf" + close, sender.clock())
    headers = {**headers, "Content-Type": label}

    response = sender.client.post(
        f"/webhooks/{sender.kit.kind}", data=signed, headers=headers, query_string=query
    )

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] == "queued", response.json
    assert sender.post(close).json["status"] == "duplicate"  # the same close without it
    assert len(sender.rows()) == 1


@pytest.mark.parametrize(
    ("encoding", "named"),
    [
        ("utf-16", "UTF-16"),
        ("utf-16-le", "UTF-16"),
        ("utf-16-be", "UTF-16"),
        ("utf-32", "UTF-32"),
        ("utf-32-le", "UTF-32"),
    ],
)
@pytest.mark.parametrize("label", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_in_utf_16_or_utf_32_is_a_400_naming_its_encoding(sender, encoding, named, label):
    """JSON between systems is UTF-8 (RFC 8259, 8.1). A body in UTF-16 or UTF-32 (with a byte
    order mark or without, as RFC 4627 told them apart) is refused saying so: without a mark
    it was "not valid JSON", which sent the operator looking for a syntax error."""
    close = json.dumps(sender.close(), ensure_ascii=False).encode(encoding)
    signed, headers, query = sender.kit.sign(close, sender.clock())
    headers = {**headers, "Content-Type": label}

    response = sender.client.post(
        f"/webhooks/{sender.kit.kind}", data=signed, headers=headers, query_string=query
    )

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json == {
        "error": "bad_encoding",
        "reason": f"the request body is {named}, not UTF-8: send JSON as UTF-8",
    }
    assert sender.rows() == []


@pytest.mark.parametrize(("dialog_id", "named"), [("5158\x00", "NUL"), ("5158\ud800", "surrogate")])
def test_an_unstorable_dialog_id_is_refused_naming_what_is_wrong(dialog_id, named):
    # A lone surrogate was refused as "contains a NUL character".
    with pytest.raises(BadPayloadError) as refused:
        storable_dialog_id(dialog_id)

    assert refused.value.code == "bad_id" and named in str(refused.value)


# --- values read once their NUL characters are gone ------------------------------------------

DOTS_ONCE_STORED = [".\x00", "\x00..", ".\x00."]


@pytest.mark.parametrize("value", DOTS_ONCE_STORED, ids=repr)
def test_an_id_that_is_a_dot_segment_once_stored_is_refused(make_sender, value):
    """A NUL is removed before a value is stored: Chatwoot's account id ``".\\u0000"`` was taken
    (200) and queued as ``"."``, a reply to ``/accounts/./conversations/…`` never sent."""
    sender = make_sender(KITS["chatwoot"])
    close = sender.close()
    close["account_id"] = value

    response = sender.post(close, ensure_ascii=True)

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "bad_id" and "account_id" in response.json["reason"]
    assert sender.rows() == []


@pytest.mark.parametrize(
    ("value", "error"),
    [*((value, "bad_context") for value in DOTS_ONCE_STORED), ("\x00", "missing_field")],
    ids=repr,
)
def test_a_context_value_that_is_a_dot_or_nothing_once_stored_is_refused(
    make_sender, fake_helpdesk, value, error
):
    """The generic reply's path takes a context value as a whole segment: judged as it is
    stored (NUL characters removed), not as it arrived. ``"\\u0000"`` was queued as ``""``
    (``//`` in the path) and ``".\\u0000"`` as ``"."``: replies that could never be sent."""
    sender = make_sender(
        KITS["generic"],
        adapter={
            "mapping": {"context": {"account": "account"}},
            "reply": {"url": fake_helpdesk.url + "/{account}/d/{dialog_id}"},
        },
    )

    response = sender.post(generic_close("D-9", account=value), ensure_ascii=True)

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == error and "context.account" in response.json["reason"]
    assert sender.rows() == []


def _customer_in_path(make_sender: Callable[..., Sender], fake_helpdesk: Any, field: str) -> Sender:
    """The generic adapter replying to a customer (``/customers/{customer_<field>}/messages``,
    a helpdesk keyed by customer) and, to settle an unknown outcome, listing them likewise."""
    url = fake_helpdesk.url + "/customers/{customer_" + field + "}/messages"
    return make_sender(
        KITS["generic"],
        adapter={
            "reply": {"url": url},
            "lookup": {"url": url},
        },
    )


@pytest.mark.parametrize("field", ["id", "email"])
@pytest.mark.parametrize("value", [None, "", "\x00", "\u200b", " \u2060"], ids=repr)
def test_a_close_naming_no_customer_the_reply_path_needs_is_skipped(
    make_sender, fake_helpdesk, field, value
):
    """Its reply could never be sent (``/customers//messages``): it was queued (200) and failed
    at send. Like a Help Scout close that names no customer, it is recorded skipped,
    ``no_customer``, and answered 200 (the close is not retried: none of it can be sent)."""
    sender = _customer_in_path(make_sender, fake_helpdesk, field)
    close = generic_close("D-9")
    close["customer"][field] = value

    response = sender.post(close, ensure_ascii=True)

    assert response.status_code == 200, response.get_data()[:300]
    assert response.json["status"] == "skipped" and response.json["reason"] == "no_customer"
    assert [row.skip_reason for row in sender.rows()] == ["no_customer"]
    assert sender.rows(outbox) == []


@pytest.mark.parametrize("value", ["..", ".", ".\x00"], ids=repr)
def test_a_customer_email_the_reply_path_takes_as_a_dot_segment_is_a_400(
    make_sender, fake_helpdesk, value
):
    """``/customers/../messages`` is ``/messages``: a request to another endpoint, never sent
    (an id is refused so by ``as_id``; an e-mail is read as text)."""
    sender = _customer_in_path(make_sender, fake_helpdesk, "email")
    close = generic_close("D-9")
    close["customer"]["email"] = value

    response = sender.post(close, ensure_ascii=True)

    assert response.status_code == 400, response.get_data()[:300]
    assert response.json["error"] == "bad_field" and "customer_email" in response.json["reason"]
    assert sender.rows() == []


@pytest.mark.parametrize(
    ("close", "header", "named"),
    [
        (generic_close("D-9\r\nX-Evil: 1"), "{dialog_id}", "dialog_id"),
        (generic_close("D-9", account="7\n8"), "acct {account}", "context.account"),
        (generic_close("D-9", account="7\x00\x1b[2J"), "{account}", "context.account"),
    ],
    ids=["dialog-crlf", "context-lf", "context-esc"],
)
def test_a_value_a_request_header_cannot_carry_is_refused(
    make_sender, fake_helpdesk, close, header, named
):
    """A request header takes the value, and it holds a control character no header may (a
    line break, ESC): the close was taken (200) and its reply failed at send, "not sent",
    never to be delivered. Refused as a path segment no URL can carry is, naming the value
    and the header, never quoting it."""
    sender = make_sender(
        KITS["generic"],
        adapter={
            "mapping": {"context": {"account": "account"}},
            "reply": {
                "url": fake_helpdesk.url + "/d/{dialog_id}",
                "headers": {"X-Ref": header},
            },
        },
    )

    response = sender.post(close, ensure_ascii=True)

    assert response.status_code == 400, response.get_data()[:300]
    reason = response.json["reason"]
    assert named in reason and "reply.headers.X-Ref" in reason, reason
    assert "Evil" not in reason and "2J" not in reason
    assert sender.rows() == []
