"""``csat-hook sync``: the JSON summary, the exit codes, dry runs, the shipped sample."""

from __future__ import annotations

import json
import shutil
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import yaml
from click.testing import CliRunner

from csat_hook.cli import main
from csat_hook.db.engine import make_engine
from csat_hook.db.migrate import create_schema
from csat_hook.db.schema import answers
from csat_hook.sync import store
from tests.sync.conftest import EN_HEADER

ROOT = Path(__file__).resolve().parents[2]
SUMMARY_KEYS = {
    "status",
    "dry_run",
    "source",
    "rows_read",
    "blank_rows",
    "unchanged",
    "new",
    "updated",
    "edited_in_place",
    "history_only",
    "edited_fields",
    "unverified",
    "unverified_total",
    "skipped",
    "skipped_total",
    "skipped_rows",
    "unverified_rows",
    "agents",
    "totals",
    "requests",
    "outputs",
    "warnings",
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
        "answers.csv",
        "unverified.csv",
    }
    again = json.loads(invoke(config, "--json").stdout)
    assert (again["new"], again["unchanged"], again["totals"]) == (0, 40, summary["totals"])


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


def test_a_missing_results_file_is_a_config_error_naming_the_key(tmp_path, database_url):
    result = invoke(write_config(tmp_path, database_url), "--json")
    assert result.exit_code == 2
    summary = json.loads(result.stdout)
    assert summary["status"] == "config_error"
    assert summary["error"].startswith("results.csv.path: ")


def test_an_invalid_config_exits_2(tmp_path, database_url):
    config = write_config(tmp_path, database_url, results={"source": "gsheets"})
    result = invoke(config)
    assert result.exit_code == 2
    assert "results: gsheets.spreadsheet_id is required" in result.output


def test_a_google_failure_exits_1_with_the_status(kit, tmp_path):
    kit.fake.add_spreadsheet("other-sheet")
    config = kit.tmp_path / "google.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": kit.database_url},
                "google": {
                    "service_account_json": json.dumps(kit.service_account),
                    "sheets_base_url": kit.fake.url,
                    "max_retries": 0,
                },
                "results": {
                    "source": "gsheets",
                    "gsheets": {"spreadsheet_id": "no-such-sheet", "sheet_gid": 0},
                },
                "output": {"local": {"enabled": False}},
            }
        ),
        encoding="utf-8",
    )
    result = invoke(config, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed"
    assert "spreadsheets.get: HTTP 404 NOT_FOUND" in summary["error"]
    assert "share the spreadsheet with csat-sync@fake-project" in summary["error"]
    assert "private_key" not in result.output
    assert summary["requests"]["token"] == 1 and summary["requests"]["sheets_read"] == 1


def test_a_held_lock_exits_3(tmp_path, database_url):
    shutil.copy(ROOT / "examples" / "sample_responses.csv", tmp_path / "responses.csv")
    engine = make_engine(database_url)
    create_schema(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        assert store.acquire_lock(conn, "sync", "someone-else", now, now + timedelta(minutes=5))
    result = invoke(write_config(tmp_path, database_url), "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["status"] == "locked"
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
