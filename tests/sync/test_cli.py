"""``csat-hook sync``: the JSON summary, the exit codes, dry runs, the shipped sample."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import os
import shutil
import signal
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from csat_hook.cli import main
from csat_hook.cli.sync import _sync_loop
from csat_hook.config import load_config
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.db.schema import answers
from csat_hook.sync import lock as sync_lock
from csat_hook.sync import store
from csat_hook.sync.runner import SyncRunner
from csat_hook.sync.runner import make_sync_engine
from tests.sync.conftest import EN_HEADER

ROOT = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {
    "status",
    "dry_run",
    "source",
    "read",
    "rows_read",
    "blank_rows",
    "unchanged",
    "new",
    "updated",
    "edited_in_place",
    "history_only",
    "edited_fields",
    "before_sent",
    "before_sent_first",
    "reverified",
    "unverified",
    "unverified_total",
    "skipped",
    "skipped_total",
    "skipped_rows",
    "unverified_rows",
    "agents",
    "report",
    "totals",
    "requests",
    "outputs",
    "warnings",
    "problems",
    "waiting_for",
    "alerts",
    "duration_ms",
    "phases_ms",
    "error",
}


def write_config(tmp_path: Path, database_url: str, **sections) -> Path:
    config = {
        "database": {"url": database_url},
        "results": {"source": "csv", "csv": {"path": str(tmp_path / "responses.csv")}},
        "output": {"local": {"dir": str(tmp_path / "out")}},
        "helpdesks": {
            "dryrun": {
                "kind": "dryrun",
                "output": str(tmp_path / "d.jsonl"),
                "agents": {
                    "7": {"name": "Anna Petrova"},
                    "8": {"name": "Boris Ivanov"},
                    "9": {"name": "Chen Wei"},
                    "11": {"name": "Dana Scott"},
                },
            }
        },
    }
    config.update(sections)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def invoke(config: Path, *args: str):
    return CliRunner().invoke(main, ["-c", str(config), "sync", *args], env={})


def test_the_shipped_sample_syncs_with_the_built_in_secret(tmp_path, database_url):
    shutil.copy(ROOT / "examples" / "sample_responses.csv", tmp_path / "responses.csv")
    config = write_config(tmp_path, database_url)
    result = invoke(config, "--json")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) == SUMMARY_KEYS
    assert (summary["status"], summary["source"], summary["rows_read"]) == ("ok", "csv", 41)
    assert (summary["new"], summary["history_only"], summary["edited_fields"]) == (36, 1, 1)
    assert summary["unverified"] == {"forged": 1, "missing": 1}
    assert summary["skipped"] == {"bad_rating": 1}
    assert summary["skipped_rows"] == [
        {
            "row": "row 41",
            "reason": "bad_rating",
            "detail": (
                "text that is neither a number nor a configured label (results.rating_labels)"
            ),
        }
    ]
    assert summary["requests"] == {
        "sheets_read": 0,
        "sheets_write": 0,
        "forms_read": 0,
        "token": 0,
        "retries": 0,
    }
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {
        "csat-report.xlsx",
        "summary.csv",
        "periods.csv",
        "trends.csv",
        "answers.csv",
        "unverified.csv",
    }
    again = json.loads(invoke(config, "--json").stdout)
    # The row with an unreadable rating is read again (once a label is added it counts).
    assert (again["new"], again["unchanged"], again["totals"]) == (0, 39, summary["totals"])
    assert again["skipped"] == {"bad_rating": 1}


def test_human_output_and_dry_run_store_nothing(tmp_path, database_url):
    shutil.copy(ROOT / "examples" / "sample_responses.csv", tmp_path / "responses.csv")
    config = write_config(tmp_path, database_url)
    result = invoke(config, "--dry-run")

    assert result.exit_code == 0, result.output
    assert "sync ok (dry run: nothing stored or written)" in result.stdout
    assert "skipped row 41: bad_rating" in result.stdout
    assert not (tmp_path / "out").exists()
    engine = make_engine(database_url)
    with engine.connect() as conn:
        assert store.count_answers(conn) == 0
    engine.dispose()


def test_a_missing_results_file_is_a_config_error_naming_the_key(tmp_path, migrated_url):
    result = invoke(write_config(tmp_path, migrated_url), "--json")
    assert result.exit_code == 2
    summary = json.loads(result.stdout)
    assert summary["status"] == "config_error"
    assert summary["error"].startswith("results.csv.path: ")


def test_an_output_folder_that_cannot_be_written_names_the_key_and_the_answers_stay(
    tmp_path, migrated_url
):
    """A path under a file (or a read-only mount, no permission) is the configuration's to fix:
    exit 2 naming output.local.dir and the system's reason, not "internal error". The answers
    read are stored all the same; the report is written by the first run after the fix."""
    shutil.copy(ROOT / "examples" / "sample_responses.csv", tmp_path / "responses.csv")
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    blocked = str(tmp_path / "a-file" / "out")
    config = write_config(tmp_path, migrated_url, output={"local": {"dir": blocked}})

    result = invoke(config, "--json")

    assert result.exit_code == 2, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "config_error"
    assert summary["error"] == (
        f"output.local.dir: cannot write the report in {blocked!r}: Not a directory"
    )
    assert summary["new"] == 36
    fixed = invoke(write_config(tmp_path, migrated_url), "--json")
    assert json.loads(fixed.stdout)["status"] == "ok", fixed.output
    assert (tmp_path / "out" / "summary.csv").exists()


def test_an_invalid_config_exits_2(tmp_path, migrated_url):
    config = write_config(tmp_path, migrated_url, results={"source": "gsheets"})
    result = invoke(config)
    assert result.exit_code == 2
    assert "results: gsheets.spreadsheet_id is required" in result.output


def test_a_google_failure_exits_1_with_the_status(kit, tmp_path):
    kit.fake.add_spreadsheet("other-sheet")
    config = sheets_config(kit, "no-such-sheet", 0, max_retries=0)
    result = invoke(config, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed"
    assert "spreadsheets.get: HTTP 404 NOT_FOUND" in summary["error"]
    assert "share the spreadsheet no-such-sheet with csat-sync@fake-project" in summary["error"]
    assert "private_key" not in result.output
    assert summary["requests"]["token"] == 1 and summary["requests"]["sheets_read"] == 1


def test_a_held_lock_exits_3(tmp_path, migrated_url, caplog):
    shutil.copy(ROOT / "examples" / "sample_responses.csv", tmp_path / "responses.csv")
    engine = make_engine(migrated_url)
    create_schema(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        assert sync_lock.acquire_lock(conn, "sync", "someone-else", now, now + timedelta(minutes=5))
    result = invoke(write_config(tmp_path, migrated_url), "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["status"] == "locked"
    # Expected under cron (two runs overlapping): said as a warning that nothing was done,
    # not as an ERROR an alerting rule on the logs pages someone for.
    (done,) = [r for r in caplog.records if r.getMessage() == "sync.done"]
    assert done.levelname == "WARNING" and done.status == "locked"
    assert done.error.startswith("another sync is running") and "nothing was done" in done.error
    with engine.connect() as conn:
        assert conn.execute(answers.select()).first() is None
    engine.dispose()


def test_periodic_mode_is_documented_for_a_clock_process():
    result = CliRunner().invoke(main, ["sync", "--help"])
    assert "--periodic" in result.output and "clock" in result.output
    assert "3 another sync holds the lock" in result.output


def test_the_example_header_titles_match_the_default_columns():
    header = (ROOT / "examples" / "sample_responses.csv").read_text().splitlines()[0]
    assert header.split(",") == EN_HEADER


def _sample_with_zone(tmp_path: Path, zone: str) -> None:
    """The shipped sample with its ``GMT+3`` suffixes replaced by a zone abbreviation."""
    text = (ROOT / "examples" / "sample_responses.csv").read_text(encoding="utf-8")
    (tmp_path / "responses.csv").write_text(text.replace(" GMT+3", f" {zone}"), encoding="utf-8")


def test_skipped_and_unverified_rows_past_the_listed_ones_are_counted_in_the_output(
    tmp_path, migrated_url
):
    # 125 rows skipped: the output listed 50 and said nothing of the other 75.
    sample = (ROOT / "examples" / "sample_responses.csv").read_text(encoding="utf-8")
    header, first = sample.splitlines()[:2]
    stamp, _rating, rest = first.split(",", 2)
    bad = [f"{stamp},awful rating,{rest}".replace("T-1000", f"T-{8000 + i}") for i in range(55)]
    forged = [f"{first[: first.rindex('.')]}.AAAAAAAAAAAAAAAA" for _ in range(53)]
    forged = [line.replace("T-1000", f"T-{9000 + i}") for i, line in enumerate(forged)]
    (tmp_path / "responses.csv").write_text("\n".join([header, *bad, *forged]) + "\n", "utf-8")
    result = invoke(write_config(tmp_path, migrated_url))
    assert result.exit_code in (0, 4), result.output
    assert result.stdout.count("  skipped row ") == 50
    assert "  ... and 5 more skipped rows (the first 50 are listed" in result.stdout
    assert result.stdout.count("  unverified row ") == 50
    assert "  ... and 3 more unverified rows (the first 50 are listed here" in result.stdout


def test_a_large_share_skipped_exits_4_and_the_rows_are_read_once_the_config_is_fixed(
    tmp_path, migrated_url, caplog
):
    _sample_with_zone(tmp_path, "XYZT")
    config = write_config(tmp_path, migrated_url)
    result = invoke(config)

    assert result.exit_code == 4, result.output
    assert "sync data_error: 40 of 40 rows read skipped as unknown_tz_abbreviation" in result.stderr
    assert "column 'Timestamp' (results.columns.timestamp)" in result.stderr
    assert "e.g. '2026/11/02 12:42:00 PM XYZT'" in result.stderr  # for the operator's eyes
    assert "add the abbreviation to results.csv.timezone_abbreviations" in result.stderr
    # The log line says what and where, never a cell value.
    (done,) = [r for r in caplog.records if r.getMessage() == "sync.done"]
    assert done.levelname == "WARNING" and done.status == "data_error"
    assert "2026/11/02" not in done.error and "results.csv.timezone_abbreviations" in done.error
    summary = json.loads(invoke(config, "--json").stdout)
    assert summary["status"] == "data_error" and summary["new"] == 0
    assert summary["skipped"] == {"unknown_tz_abbreviation": 40}  # read again, still skipped
    assert summary["problems"][0]["example"] == "2026/11/02 12:42:00 PM XYZT"

    # The operator names the zone: every skipped row is read and credited, none is lost.
    fixed = write_config(
        tmp_path,
        migrated_url,
        results={
            "source": "csv",
            "csv": {
                "path": str(tmp_path / "responses.csv"),
                "timezone_abbreviations": {"XYZT": "+03:00"},
            },
        },
    )
    after = json.loads(invoke(fixed, "--json").stdout)
    assert after["status"] == "ok", after["error"]
    assert (after["new"], after["history_only"]) == (36, 1)
    assert after["skipped"] == {"bad_rating": 1}
    assert after["totals"]["skipped"] == {"bad_rating": 1}  # the 39 read now left the table
    # The same figures as the original GMT+3 export gives.
    reference = tmp_path / "reference"
    reference.mkdir()
    shutil.copy(ROOT / "examples" / "sample_responses.csv", reference / "responses.csv")
    original = json.loads(
        invoke(write_config(reference, f"sqlite:///{reference / 'db.sqlite3'}"), "--json").stdout
    )
    assert after["totals"]["answers"] == original["totals"]["answers"]
    assert (tmp_path / "out" / "summary.csv").read_bytes() == (
        reference / "out" / "summary.csv"
    ).read_bytes()


def test_one_bad_row_among_few_is_a_warning_not_a_failure(tmp_path, migrated_url):
    shutil.copy(ROOT / "examples" / "sample_responses.csv", tmp_path / "responses.csv")
    lines = (tmp_path / "responses.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "responses.csv").write_text(
        "\n".join([lines[0], lines[1], lines[2].replace("GMT+3", "XYZT")]) + "\n",
        encoding="utf-8",
    )
    result = invoke(write_config(tmp_path, migrated_url), "--json")
    summary = json.loads(result.stdout)
    assert result.exit_code == 0 and summary["status"] == "ok"  # 1 of 2: below min_skipped_rows
    assert summary["skipped"] == {"unknown_tz_abbreviation": 1}


def test_a_missing_column_title_is_a_config_error_exit_2(tmp_path, migrated_url):
    (tmp_path / "responses.csv").write_text(
        "Timestamp,Score,Reference\n2026/11/02 12:42:00 PM GMT+3,5,x\n", encoding="utf-8"
    )
    result = invoke(write_config(tmp_path, migrated_url))
    assert result.exit_code == 2
    assert "sync config_error: results.columns.rating: no column" in result.stderr
    assert "(headers found: 'Timestamp', 'Score', 'Reference')" in result.stderr


def test_an_export_without_its_header_row_is_refused_without_quoting_the_answer(
    tmp_path, migrated_url, caplog
):
    # The first answer is read as the header row: its cells (a comment, a signed reference)
    # were listed as "headers found" in the run's output and its ERROR log line.
    caplog.set_level(logging.INFO)
    sample = (ROOT / "examples" / "sample_responses.csv").read_text(encoding="utf-8")
    first = next(csv.reader(io.StringIO(sample.splitlines()[1])))
    (tmp_path / "responses.csv").write_text(
        "\n".join(sample.splitlines()[1:]) + "\n", encoding="utf-8"
    )
    result = invoke(write_config(tmp_path, migrated_url))
    assert result.exit_code == 2
    assert "results.csv.path (responses.csv)" in result.stderr
    assert "looks like an answer, not column titles" in result.stderr
    logged = " ".join(repr(vars(record)) for record in caplog.records)
    for text in (result.stderr, result.stdout, logged):
        for cell in first[2:]:  # the comment, the agent and ticket fields, the reference
            assert cell not in text


@pytest.mark.parametrize(
    ("stamp", "rating", "with_reference", "formats"),
    [
        ("", "Good", True, []),  # a blank submission time: the reference's shape tells
        ("07 Dec 2026, 11.37", "Good", False, ["%d %b %Y, %H.%M"]),  # the source's own layout
        ("yesterday at noon", "4", False, []),  # a time in no layout: the rating's digits
    ],
    ids=["blank-time", "configured-layout", "unread-time"],
)
def test_a_first_answer_read_as_the_header_row_is_never_quoted(
    tmp_path, migrated_url, caplog, stamp, rating, with_reference, formats
):
    # The first answer was taken for an answer only by a date-time in a built-in layout: a
    # blank submission time, one in results.csv.timestamp_formats, or one no layout reads
    # listed the row (its comment, its reference) as "headers found" in the run's output and
    # its ERROR log line.
    caplog.set_level(logging.INFO)
    reference = "MXxkcnlydW58VC0xMDAwfDh8dG52YWMwfDAwMDA.QvyBy1QbQLeS47lP"
    comment = "Secret comment, call me at home"
    rows = [
        [stamp, rating, comment, "Boris Ivanov", "T-1000", reference if with_reference else ""],
        ["2026/11/02 10:00:00 PM GMT+3", "3", "", "Dana Scott", "T-1001", ""],
    ]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    (tmp_path / "responses.csv").write_text(buffer.getvalue(), encoding="utf-8")
    csv_section = {"path": str(tmp_path / "responses.csv"), "timestamp_formats": formats}
    result = invoke(
        write_config(tmp_path, migrated_url, results={"source": "csv", "csv": csv_section})
    )
    assert result.exit_code == 2, result.output
    assert "looks like an answer, not column titles" in result.stderr, result.stderr
    logged = " ".join(repr(vars(record)) for record in caplog.records)
    for text in (result.stderr, result.stdout, logged):
        assert comment not in text and reference not in text and "Boris" not in text


def test_the_exit_codes_are_documented():
    result = CliRunner().invoke(main, ["sync", "--help"])
    assert "4 data_error" in result.output and "results.max_skipped_share" in result.output


def test_no_export_yet_is_said_once_calmly_while_serve_waits(tmp_path, migrated_url, caplog):
    """``serve`` runs ``sync --periodic --keep-waiting``: before the first download there is
    nothing to read; that is said once at INFO, not every interval, and nothing is printed."""
    caplog.set_level(logging.DEBUG, logger="csat_hook.sync.runner")
    config = load_config(str(write_config(tmp_path, migrated_url)), env={})
    engine = make_sync_engine(config)
    runner = SyncRunner(config, engine, waits_for_export=True)
    runs: list[str] = []

    class Stops:
        def run(self, **kwargs):
            summary = runner.run(**kwargs)
            runs.append(summary.status)
            if len(runs) == 3:
                os.kill(os.getpid(), signal.SIGTERM)  # what serve sends on shutdown
            return summary

    previous = signal.getsignal(signal.SIGTERM)
    try:
        with contextlib.redirect_stderr(io.StringIO()) as printed:
            code = _sync_loop(
                Stops(),
                config,
                dry_run=False,
                full=False,
                as_json=False,
                periodic=True,
                interval=0.01,
                keep_waiting=True,
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
    engine.dispose()

    assert code == 0 and runs == ["config_error"] * 3
    assert printed.getvalue() == ""
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.endswith("runner")]
    assert said == [("INFO", "sync.waiting"), ("DEBUG", "sync.waiting"), ("DEBUG", "sync.waiting")]
    first = next(r for r in caplog.records if r.getMessage() == "sync.waiting")
    assert first.reason.startswith("no results export yet at ")
    assert "copy a Forms 'Download responses (.csv)' there" in first.reason
    # Once the export is there the run goes on; if it goes away again, that is said again.
    shutil.copy(ROOT / "examples" / "sample_responses.csv", tmp_path / "responses.csv")
    engine = make_sync_engine(config)
    runner = SyncRunner(config, engine, waits_for_export=True)
    caplog.clear()
    runner.run()
    (tmp_path / "responses.csv").unlink()
    runner.run()
    runner.run()
    engine.dispose()
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.endswith("runner")]
    assert said == [("INFO", "sync.done"), ("INFO", "sync.waiting"), ("DEBUG", "sync.waiting")]


def test_by_hand_a_missing_export_still_exits_2_with_the_message(tmp_path, migrated_url):
    result = invoke(write_config(tmp_path, migrated_url))
    assert result.exit_code == 2
    assert "results.csv.path: " in result.stderr and "does not exist" in result.stderr


def test_a_run_that_will_not_wait_does_not_say_it_waits(tmp_path, migrated_url, caplog):
    """By hand, and in a Procfile ``clock:`` process (``sync --periodic`` without serve's
    ``--keep-waiting``), a missing export ends the command with exit 2: its log says so as the
    config error it is, never "waiting for it"."""
    caplog.set_level(logging.DEBUG, logger="csat_hook.sync.runner")
    config = write_config(tmp_path, migrated_url)
    for args in ([], ["--periodic", "--interval", "1"]):
        caplog.clear()
        result = invoke(config, *args)
        assert result.exit_code == 2
        said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.endswith("runner")]
        assert said == [("ERROR", "sync.done")]
        assert "does not exist" in caplog.records[-1].error


@pytest.mark.parametrize("as_json", [False, True])
def test_a_periodic_run_never_prints_the_example_cell_into_the_log(tmp_path, migrated_url, as_json):
    # `serve`'s sync and the Procfile's `clock:` print each run's summary into the process's
    # output, which is the platform's log: a data_error's example cell (a rating the
    # customer typed, their e-mail in it) went into the logs at every interval.
    text = (ROOT / "examples" / "sample_responses.csv").read_text(encoding="utf-8")
    rows = text.splitlines()
    typed = [r.replace(",4,", ",call maria@example.com back,", 1) for r in rows[1:] if ",4," in r]
    assert len(typed) >= 3
    (tmp_path / "responses.csv").write_text("\n".join([rows[0], *typed]) + "\n", "utf-8")
    config = load_config(str(write_config(tmp_path, migrated_url)), env={})
    engine = make_sync_engine(config)
    runner = SyncRunner(config, engine)
    statuses: list[str] = []

    class Stops:
        def run(self, **kwargs):
            summary = runner.run(**kwargs)
            statuses.append(summary.status)
            os.kill(os.getpid(), signal.SIGTERM)  # what the platform sends on shutdown
            return summary

    previous = signal.getsignal(signal.SIGTERM)
    try:
        with (
            contextlib.redirect_stderr(io.StringIO()) as err,
            contextlib.redirect_stdout(io.StringIO()) as out,
        ):
            code = _sync_loop(
                Stops(),
                config,
                dry_run=False,
                full=False,
                as_json=as_json,
                periodic=True,
                interval=1,
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
        engine.dispose()

    printed = out.getvalue() + err.getvalue()
    assert code == 0 and statuses == ["data_error"]
    assert "bad_rating" in printed and "maria" not in printed, printed
    if not as_json:
        assert "run `csat-hook sync` by hand to see an example cell" in printed


def test_a_wall_clock_set_back_during_a_periodic_run_does_not_skip_runs(monkeypatch):
    """NTP (or an operator) setting the clock back an hour while a run was in progress made
    the wait before the next run the interval plus that hour: twelve runs skipped at 300 s.
    The time a run took is measured on the monotonic clock."""
    from types import SimpleNamespace

    from csat_hook.cli import sync as sync_cli
    from csat_hook.sync.summary import SyncSummary

    t0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    walls = iter([t0, t0 - timedelta(hours=1)])  # the run's start, then its end

    class JumpingClock(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return next(walls)

    waits: list[float] = []

    class OneWait:
        def is_set(self) -> bool:
            return bool(waits)

        def set(self) -> None:
            waits.append(0.0)

        def wait(self, timeout: float) -> bool:
            waits.append(timeout)
            return True

    class Locked:
        def run(self, **_kwargs):
            summary = SyncSummary(dry_run=False, source="csv")
            summary.status, summary.error = "locked", "another sync is running"
            return summary

    monkeypatch.setattr(sync_cli, "datetime", JumpingClock, raising=False)
    monkeypatch.setattr(sync_cli, "threading", SimpleNamespace(Event=OneWait))
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            code = _sync_loop(
                Locked(),
                None,  # type: ignore[arg-type]
                dry_run=False,
                full=False,
                as_json=False,
                periodic=True,
                interval=300,
            )
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    assert code == 0 and len(waits) == 1
    assert 299 <= waits[0] <= 300, waits


def test_a_periodic_sync_started_while_the_database_is_down_waits_for_it(
    tmp_path, migrated_url, monkeypatch
):
    """A `clock:` process (or serve's sync child, which serve never restarts) started while
    the database was unreachable exited 1 at once: no sync until someone restarted it. It
    tries again every interval, then runs (here: the missing export, exit 2)."""
    import sqlalchemy as sa

    from csat_hook.cli import sync as sync_cli

    attempts: list[int] = []

    def down_once(config):
        attempts.append(1)
        if len(attempts) == 1:
            raise sa.exc.OperationalError(None, None, Exception("connection refused"))
        return make_sync_engine(config)

    monkeypatch.setattr(sync_cli, "make_sync_engine", down_once)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        result = invoke(write_config(tmp_path, migrated_url), "--periodic", "--interval", "1")
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    assert len(attempts) == 2, result.output
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_a_single_sync_with_the_database_down_still_exits_1(tmp_path, migrated_url, monkeypatch):
    import sqlalchemy as sa

    from csat_hook.cli import sync as sync_cli

    def down(_config):
        raise sa.exc.OperationalError(None, None, Exception("connection refused"))

    monkeypatch.setattr(sync_cli, "make_sync_engine", down)
    result = invoke(write_config(tmp_path, migrated_url))
    assert result.exit_code == 1 and "cannot connect to the database" in result.stderr


def test_a_periodic_run_tells_to_rerun_with_the_config_it_was_given(
    tmp_path, migrated_url, monkeypatch
):
    # serve's sync (`csat-hook -c prod.yaml serve`) said "run `csat-hook sync` by hand to see
    # an example cell": run as told, that read the built-in defaults, another database.
    from csat_hook.cli import sync as sync_cli

    config = write_config(tmp_path, migrated_url)
    given = {}

    def loop(runner, config, **kwargs):
        given.update(kwargs)
        return 0

    monkeypatch.setattr(sync_cli, "_sync_loop", loop)
    result = invoke(config, "--periodic", "--interval", "1")
    assert result.exit_code == 0, result.output
    assert given["rerun"] == f"`csat-hook -c {config} sync`"
    problem = {"reason": "bad_rating", "example": None, "new_only": False, "count": 3}
    problem |= {"rows": 4, "column": "Rating", "detail": "d", "fix": "f", "setting": "s"}
    with contextlib.redirect_stderr(io.StringIO()) as err:
        sync_cli._print_problem(problem, examples=False, rerun=given["rerun"])
    assert f"run `csat-hook -c {config} sync` by hand" in err.getvalue(), err.getvalue()


def test_a_missing_tab_is_a_config_error_that_a_periodic_sync_reports_every_run(kit):
    """A sheet_gid or sheet_name the spreadsheet has no tab for exited 1 (a failed run) while
    a missing column title exits 2: both are what the configuration names and the source
    does not hold. By hand it is a configuration error (exit 2); a ``clock:`` process, which
    stops on a configuration error, reports it every run and goes on instead: an editor who
    deleted or renamed the tab may restore it, and the process must not stay down for that."""
    kit.fake.add_spreadsheet("S1")
    kit.fake.add_tab("S1", "Form Responses 1", [EN_HEADER], sheet_id=55)
    config = sheets_config(kit, "S1", 99)
    result = invoke(config, "--json")
    assert result.exit_code == 2, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "config_error"
    assert summary["error"].startswith("results.gsheets.sheet_gid: no such tab in the spreadsheet")

    code, runs, said = periodic_runs(config)
    assert code == 0 and runs == ["config_error"] * 3
    assert len(said) == 3 and all(
        line.startswith("sync config_error: results.gsheets.sheet_gid: no such tab")
        for line in said
    ), said


def periodic_runs(config: Path, runs_wanted: int = 3) -> tuple[int, list[str], list[str]]:
    """``_sync_loop`` as a ``clock:`` process runs it with ``config``, stopped by SIGTERM after
    ``runs_wanted`` runs: its exit code, each run's status and the lines it printed."""
    loaded = load_config(str(config), env={})
    engine = make_sync_engine(loaded)
    runner = SyncRunner(loaded, engine)
    runs: list[str] = []

    class Stops:
        def run(self, **kwargs):
            summary = runner.run(**kwargs)
            runs.append(summary.status)
            if len(runs) == runs_wanted:
                os.kill(os.getpid(), signal.SIGTERM)  # what the platform sends on shutdown
            return summary

    previous = signal.getsignal(signal.SIGTERM)
    try:
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()) as printed,
        ):
            code = _sync_loop(
                Stops(),
                loaded,
                dry_run=False,
                full=False,
                as_json=False,
                periodic=True,
                interval=0.01,
            )
    finally:
        signal.signal(signal.SIGTERM, previous)
        engine.dispose()
    return code, runs, printed.getvalue().splitlines()


@pytest.mark.parametrize(
    "rows",
    [
        # A form's question renamed: Google Forms renames its column in the linked sheet.
        [["Timestamp", "How would you rate us?", "Comment", "Agent", "Ticket", "Reference"]],
        # The title row deleted: the first row is an answer.
        [["2026-11-18 09:00:00", 5, "", "", "", "x"]],
        # An empty row inserted above the titles.
        [["", "", "", "", "", ""], EN_HEADER],
    ],
    ids=["question-renamed", "titles-deleted", "empty-row-above"],
)
def test_a_header_an_editor_changed_is_reported_every_run_by_a_periodic_sync(kit, rows):
    """A required column's title gone from the source's first row exits 2 by hand, as the
    configuration error it is; a ``clock:`` process stopped on it (exit 2) and stayed down,
    although the sheet's editors cause it and undo it without a deploy (a question renamed
    and named back, a row deleted or inserted), like a missing tab: it reports it every run
    and goes on."""
    kit.fake.add_spreadsheet("S1")
    kit.fake.add_tab("S1", "Form Responses 1", rows, sheet_id=55)
    config = sheets_config(kit, "S1", 55)
    by_hand = invoke(config, "--json")
    assert by_hand.exit_code == 2, by_hand.output
    error = json.loads(by_hand.stdout)["error"]
    assert "results.columns.rating" in error or "first row is empty" in error, error

    code, runs, said = periodic_runs(config, runs_wanted=2)

    assert code == 0 and runs == ["config_error"] * 2
    assert len(said) == 2 and all(line.startswith("sync config_error: ") for line in said), said


def sheets_config(kit, spreadsheet_id: str, sheet_gid: int, **google: Any) -> Path:
    """A configuration file reading tab ``sheet_gid`` of ``spreadsheet_id`` on the kit's fake
    Google (``google``: more of its keys), the local output off."""
    config = kit.tmp_path / "google.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": kit.database_url},
                "google": {
                    "service_account_json": json.dumps(kit.service_account),
                    "sheets_base_url": kit.fake.url,
                    **google,
                },
                "results": {
                    "source": "gsheets",
                    "gsheets": {"spreadsheet_id": spreadsheet_id, "sheet_gid": sheet_gid},
                },
                "output": {"local": {"enabled": False}},
            }
        ),
        encoding="utf-8",
    )
    return config
