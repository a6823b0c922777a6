"""A command loads what it uses: ``sync`` on SQLite never loads Flask, psycopg or (once the
schema is current) Alembic, nor openpyxl without a workbook to write, nor numpy without a
report to build (the read and the ingest before one run without it); ``serve`` never loads
it. Each is several MB of RSS in a process that may run every minute."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("alembic", "flask", "numpy", "openpyxl", "psycopg")

SCRIPT = """
import json, sys
from click.testing import CliRunner
from csat_hook.cli import main
result = CliRunner().invoke(main, sys.argv[1:], env={})
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(%r)))
print(json.dumps({"exit": result.exit_code, "output": result.output, "loaded": loaded}))
"""


def run(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT % json.dumps(HEAVY), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["exit"] == 0, outcome["output"]
    return outcome


def config(tmp_path: Path, *, xlsx: bool) -> str:
    data = yaml.safe_load((ROOT / "examples" / "sync-demo.yaml").read_text(encoding="utf-8"))
    data["database"]["url"] = f"sqlite:///{tmp_path / 'lazy.sqlite3'}"
    data["results"]["csv"]["path"] = str(ROOT / "examples" / "sample_responses.csv")
    data["output"]["local"] = {"dir": str(tmp_path / "report"), "xlsx": xlsx, "csv": True}
    data["helpdesks"]["dryrun"]["output"] = str(tmp_path / "dry.jsonl")
    path = tmp_path / "lazy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_sync_loads_only_what_it_uses(tmp_path):
    path = config(tmp_path, xlsx=False)
    first = run("-c", path, "sync", "--json")  # creates the schema: Alembic is needed
    assert "alembic" in first["loaded"]
    assert "numpy" in first["loaded"]  # the report's columns: the first run builds one
    assert "flask" not in first["loaded"] and "psycopg" not in first["loaded"]
    again = run("-c", path, "sync", "--json")  # nothing new: the report is not built
    assert again["loaded"] == []
    assert '"report": "unchanged"' in again["output"]
    assert (tmp_path / "report" / "summary.csv").exists()
    assert not (tmp_path / "report" / "csat-report.xlsx").exists()


def test_a_workbook_loads_openpyxl_when_it_is_written(tmp_path):
    path = config(tmp_path, xlsx=True)
    run("-c", path, "sync", "--json")
    outcome = run("-c", path, "sync", "--full", "--json")
    assert "openpyxl" in outcome["loaded"]
    assert (tmp_path / "report" / "csat-report.xlsx").exists()


def test_the_web_side_does_not_load_the_report():
    script = (
        "import json, sys\n"
        "import csat_hook.app, csat_hook.cli.run, csat_hook.outbox.worker\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "flask" in loaded  # the probe sees what it should
    assert not loaded & {"numpy", "openpyxl", "alembic", "gspread"}
