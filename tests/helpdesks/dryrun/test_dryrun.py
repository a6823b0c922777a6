"""The dry run's output file as a helpdesk: a line is written only while the worker's fence is
open, and after an unknown outcome the reply (or note) is found in it by its marker, as a
vendor's look-up finds a message in the dialog."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from csat_hook.config import load_config
from csat_hook.erasure.files import erase_files
from csat_hook.erasure.store import Traces
from csat_hook.errors import DeliveryError
from csat_hook.helpdesks.dryrun import DryRunHelpdesk
from csat_hook.helpdesks.records import Note
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.transport import HttpClient
from tests.conftest import FakeClock

MARKER = "MXxkcnlydW58RFJZLTF8N3x0b3N1bzB8NWFqYQ.444rBw9nphez7kEh"
OTHER_MARKER = "MXxkcnlydW58RFJZLTJ8N3x0b3N1bzB8NWFqYQ.555rBw9nphez7kEh"
REF = "csat-alert-0123456789abcdef01234567"


def dry_run(tmp_path: Path, clock: FakeClock) -> DryRunHelpdesk:
    config = load_config(
        None,
        env={},
        overrides={"helpdesks": {"dry": {"kind": "dryrun", "output": str(tmp_path / "d.jsonl")}}},
    )
    return DryRunHelpdesk("dry", config.helpdesks["dry"], http=HttpClient(), clock=clock)


def reply(dialog_id: str = "D-1", marker: str = MARKER, key: str = "csat-hook-1") -> Reply:
    link = f"https://docs.google.com/forms/d/e/X/viewform?entry.444={marker}"
    return Reply(
        helpdesk="dry",
        dialog_id=dialog_id,
        text=f"How did we do? {link}",
        link=link,
        agent=Person("7", "Anna", None),
        customer=Person("c1", None, None),
        context={},
        idempotency_key=key,
        marker=marker,
    )


def note(dialog_id: str = "D-1") -> Note:
    return Note(
        helpdesk="dry",
        dialog_id=dialog_id,
        text=f"Low rating.\nAlert ref: {REF}",
        marker=REF,
        context={},
        idempotency_key=f"{REF}-desk",
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_written_reply_is_found_by_its_marker(tmp_path, clock):
    desk = dry_run(tmp_path, clock)
    since = clock()
    desk.send_reply(reply("D-2", OTHER_MARKER, "csat-hook-2"))  # another dialog's
    sent = desk.send_reply(reply())

    found = desk.find_reply(reply(), since=since)

    assert desk.supports_lookup
    assert found is not None and found.external_id == sent.external_id == "dryrun-csat-hook-1"


def test_nothing_written_is_not_found(tmp_path, clock):
    desk = dry_run(tmp_path, clock)
    assert desk.find_reply(reply(), since=clock()) is None  # no file yet
    desk.send_reply(reply("D-2", OTHER_MARKER, "csat-hook-2"))
    desk.post_note(note())  # a note carries its own marker, never a reply's

    assert desk.find_reply(reply(), since=clock()) is None


def test_a_reply_is_found_only_in_its_own_dialog_and_after_since(tmp_path, clock):
    desk = dry_run(tmp_path, clock)
    desk.send_reply(reply())
    clock.advance(3600)

    # The same marker in another dialog is not this reply; one written long before the
    # uncertain attempt is not its outcome.
    assert desk.find_reply(reply("D-9"), since=clock() - timedelta(hours=2)) is None
    assert desk.find_reply(reply(), since=clock()) is None
    assert desk.find_reply(reply(), since=clock() - timedelta(hours=2)) is not None


def test_lines_written_before_markers_were_recorded_and_torn_lines_are_read(tmp_path, clock):
    desk = dry_run(tmp_path, clock)
    path = tmp_path / "d.jsonl"
    old = {
        "helpdesk": "dry",
        "dialog_id": "D-1",
        "text": reply().text,
        "idempotency_key": "csat-hook-1",
        "at": clock().isoformat(),
    }
    path.write_text(
        f'{{"helpdesk": "dry", "dialog_id": "D-1", "text": "{MARKER}\n'  # cut short
        "[1, 2]\n" + json.dumps(old) + "\n",
        encoding="utf-8",
    )

    found = desk.find_reply(reply(), since=clock())

    assert found is not None and found.external_id == "dryrun-csat-hook-1"


def test_a_written_note_is_found_by_its_alert_ref(tmp_path, clock):
    desk = dry_run(tmp_path, clock)
    desk.send_reply(reply(marker=MARKER))
    assert desk.find_note(note(), since=clock()) is None

    desk.post_note(note())

    assert desk.supports_note_lookup
    found = desk.find_note(note(), since=clock())
    assert found is not None and found.external_id == f"dryrun-{REF}-desk"


def test_nothing_is_written_once_the_workers_fence_closed(tmp_path, clock):
    http = HttpClient()
    desk = dry_run(tmp_path, clock)
    desk.http = http

    with http.guarded(lambda: False), pytest.raises(DeliveryError) as refused:
        desk.send_reply(reply())
    with http.guarded(lambda: False), pytest.raises(DeliveryError):
        desk.post_note(note())

    assert refused.value.retryable and not refused.value.outcome_unknown
    assert "not sent" in refused.value.message
    assert not (tmp_path / "d.jsonl").exists()
    assert http.writes_started() == 0
    with http.guarded(lambda: True):
        desk.send_reply(reply())
    assert http.writes_started() == 1  # counted as a request that may change something


def test_an_unreadable_output_is_a_retryable_look_up_failure(tmp_path, clock):
    desk = dry_run(tmp_path, clock)
    (tmp_path / "d.jsonl").mkdir()  # a folder where the file should be

    with pytest.raises(DeliveryError) as failed:
        desk.find_reply(reply(), since=clock())

    assert failed.value.retryable and "helpdesks.dry.output" in failed.value.message


def test_a_reply_and_a_note_erased_from_the_file_are_still_found_as_posted(tmp_path, clock):
    # `csat-hook erase` keeps the customer's lines without their text (erasure/files.py): an
    # unknown outcome after it must still find them, never post them a second time.
    desk = dry_run(tmp_path, clock)
    since = clock()
    sent, noted = desk.send_reply(reply()), desk.post_note(note())
    traces = Traces(frozenset({("dry", "D-1")}), frozenset(), frozenset())

    erased = erase_files({"dry": desk.options}, traces, apply=True)

    assert erased.dry_run_lines == 2
    assert "How did we do" not in (tmp_path / "d.jsonl").read_text()
    found = desk.find_reply(reply(), since=since)
    assert found is not None and found.external_id == sent.external_id
    found_note = desk.find_note(note(), since=since)
    assert found_note is not None and found_note.external_id == noted.external_id
