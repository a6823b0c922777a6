"""Files holding customer data are owner-only whatever the umask: captured payloads (pruned
by age, count and size), the dry-run reply file, the SQLite database and its -wal/-shm."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from csat_hook.db.engine import make_engine
from csat_hook.errors import DeliveryError
from csat_hook.files import append_private_locked
from csat_hook.files import prune
from csat_hook.files import rewrite_private
from csat_hook.helpdesks.dryrun import DryRunHelpdesk
from csat_hook.helpdesks.dryrun import DryRunOptions
from csat_hook.helpdesks.generic import GenericHelpdesk
from csat_hook.helpdesks.generic import GenericOptions
from csat_hook.helpdesks.records import Person
from csat_hook.helpdesks.records import Reply
from csat_hook.helpdesks.records import WebhookRequest
from csat_hook.helpdesks.transport import HttpClient
from tests.conftest import FakeClock
from tests.helpers import body_of
from tests.helpers import generic_close


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """Whatever the umask says (here: everything readable and writable by all)."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def capturing(tmp_path: Path, **options: object) -> GenericHelpdesk:
    config = GenericOptions.model_validate(
        {
            "auth": {"mode": "none"},
            "reply": {"url": "http://127.0.0.1:9/{dialog_id}"},
            "capture_dir": str(tmp_path / "captures" / "generic"),
            **options,
        }
    )
    return GenericHelpdesk("generic", config, http=HttpClient(), clock=FakeClock())


def webhook(n: int, received_at: datetime | None = None) -> WebhookRequest:
    return WebhookRequest(
        body=body_of(generic_close(f"D-{n}")),
        headers={},
        query={},
        received_at=received_at or datetime(2026, 11, 20, 12, 0, n, tzinfo=UTC),
        content_type="application/json",
    )


def test_captured_payloads_are_owner_only(tmp_path):
    desk = capturing(tmp_path)

    desk.parse(webhook(1))

    [capture] = (tmp_path / "captures" / "generic").iterdir()
    assert mode(capture) == 0o600
    assert mode(tmp_path / "captures" / "generic") == 0o700
    assert mode(tmp_path / "captures") == 0o700  # every folder csat-hook created


def test_captures_older_than_the_retention_are_deleted_when_a_new_one_arrives(tmp_path):
    desk = capturing(tmp_path, capture_retention_days=7)
    folder = tmp_path / "captures" / "generic"
    desk.parse(webhook(1))
    desk.parse(webhook(2))
    old, recent = sorted(folder.iterdir())
    eight_days_ago = time.time() - 8 * 86400
    os.utime(old, (eight_days_ago, eight_days_ago))
    (folder / "unrelated.txt").write_text("not ours")

    desk.parse(webhook(3))

    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [recent.name, "unrelated.txt", *(p.name for p in folder.glob("generic-*T120003*"))]
    )
    assert not old.exists()


def test_captures_are_kept_under_a_count_and_a_size(tmp_path):
    desk = capturing(tmp_path, capture_max_files=3)
    for n in range(6):
        desk.parse(webhook(n))
    folder = tmp_path / "captures" / "generic"
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 3 and all("T12000" in n for n in names)
    assert [n.split("T")[1][:6] for n in names] == ["120003", "120004", "120005"]  # newest

    size = len(webhook(0).body)
    assert prune(folder, "generic-", max_age_seconds=1e9, max_files=10, max_bytes=size) == 2
    assert len(list(folder.iterdir())) == 1


def dry_run_desk(output: Path) -> DryRunHelpdesk:
    return DryRunHelpdesk(
        "dryrun",
        DryRunOptions.model_validate({"output": str(output)}),
        http=HttpClient(),
        clock=FakeClock(),
    )


def test_the_dry_run_reply_file_is_owner_only(tmp_path):
    output = tmp_path / "var" / "dry-run-replies.jsonl"
    desk = dry_run_desk(output)
    reply = Reply(
        helpdesk="dryrun",
        dialog_id="D-1",
        text="How did we do?",
        link="https://example.com/f",
        agent=Person(id="7"),
        customer=Person(email="ivan@example.org"),
        context={},
        idempotency_key="k-1",
    )

    desk.send_reply(reply)
    output.chmod(0o644)  # as an older version left it
    desk.send_reply(reply)

    assert len(output.read_text().splitlines()) == 2
    assert mode(output) == 0o600 and mode(output.parent) == 0o700


def test_a_dry_run_reply_file_that_cannot_be_written_is_a_retryable_failure_naming_the_key(
    tmp_path,
):
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    output = tmp_path / "a-file" / "dry-run-replies.jsonl"
    desk = dry_run_desk(output)
    reply = Reply("dryrun", "D-1", "How did we do?", "https://e.com/f", Person(), Person(), {}, "k")

    with pytest.raises(DeliveryError) as failed:
        desk.send_reply(reply)

    assert failed.value.retryable and not failed.value.outcome_unknown
    assert failed.value.message == (
        f"helpdesks.dryrun.output: cannot append to {str(output)!r}: Not a directory"
    )


def test_the_sqlite_database_and_its_wal_and_shm_files_are_owner_only(tmp_path):
    database = tmp_path / "var" / "csat.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x TEXT)"))
            conn.execute(sa.text("INSERT INTO t VALUES ('customer data')"))
        files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert all(path.exists() for path in files)
        assert [mode(path) for path in files] == [0o600, 0o600, 0o600]
        assert mode(database.parent) == 0o700
    finally:
        engine.dispose()


def test_an_existing_database_file_is_brought_back_to_owner_only(tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o755)
    database = folder / "csat.sqlite3"
    database.touch(mode=0o644)

    make_engine(f"sqlite:///{database}").dispose()

    assert mode(database) == 0o600
    assert mode(folder) == 0o755  # a folder csat-hook did not create is left alone


def test_lines_appended_while_the_file_is_rewritten_are_never_lost(tmp_path):
    # The dry-run helpdesk appends a line per reply posted (its worker reads them back to
    # never post twice) while `csat-hook erase` rewrites the file: a line appended to the
    # file the rewrite had read, after its read, was lost with the file it replaced.
    path = tmp_path / "out.jsonl"
    appended = 400

    def append() -> None:
        for number in range(appended):
            with append_private_locked(path) as handle:
                handle.write(f"line {number}\n")
            # Hands the interpreter to the rewriting thread: left to the GIL's schedule, the
            # 400 appends once all ran before its second rewrite (rewrites == 1 in CI).
            time.sleep(0.0001)

    writer = threading.Thread(target=append)
    writer.start()
    rewrites = 0
    while writer.is_alive():
        rewrites += rewrite_private(path, lambda text: text.replace("line", "LINE"))
    writer.join()

    lines = path.read_text().splitlines()
    assert rewrites > 1
    assert sorted(int(line.split()[1]) for line in lines) == list(range(appended))
    assert path.stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p != path]  # no temporary file left


def test_a_rewrite_of_a_file_not_there_or_unchanged_writes_nothing(tmp_path):
    path = tmp_path / "out.jsonl"
    assert rewrite_private(path, lambda text: text + "x") is False
    assert not path.exists()
    path.write_text("same\n")
    before = path.stat().st_ino
    assert rewrite_private(path, lambda text: text) is False
    assert path.stat().st_ino == before
