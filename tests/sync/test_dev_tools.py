"""``csat-hook dev fake-google`` and ``sync --periodic``, run as real processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def start(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("CSAT_HOOK_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "csat_hook", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_a_manual_try_against_the_fake_google_command(tmp_path: Path):
    sa_file = tmp_path / "sa.json"
    fake = start(
        [
            "dev",
            "fake-google",
            "--port",
            "0",
            "--service-account-out",
            str(sa_file),
            "--responses-csv",
            "examples/sample_responses.csv",
            "--locale",
            "ru_RU",
            "--tab",
            "Ответы на форму (1)",
            "--gid",
            "321",
        ]
    )
    try:
        url = None
        deadline = time.monotonic() + 30
        while url is None and time.monotonic() < deadline:
            line = fake.stderr.readline()
            found = re.search(r"fake Google on (http://\S+):", line)
            url = found.group(1) if found else None
        assert url, "the fake did not start"
        config = tmp_path / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "database": {"url": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
                    "google": {"service_account_file": str(sa_file), "sheets_base_url": url},
                    "results": {
                        "source": "gsheets",
                        "gsheets": {"spreadsheet_id": "fake-responses", "sheet_gid": 321},
                    },
                    "output": {"gsheets": {"enabled": True}, "local": {"enabled": False}},
                }
            ),
            encoding="utf-8",
        )
        run = subprocess.run(
            [sys.executable, "-m", "csat_hook", "-c", str(config), "sync", "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        summary = json.loads(run.stdout)
        assert (summary["new"], summary["unverified_total"]) == (36, 2)
        assert summary["requests"]["sheets_read"] == 2
        assert summary["requests"]["sheets_write"] == 2
    finally:
        fake.terminate()
        fake.wait(timeout=10)
        fake.stdout.close()
        fake.stderr.close()


def test_periodic_mode_runs_until_stopped(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": {"url": f"sqlite:///{tmp_path / 'db.sqlite3'}"},
                "results": {"csv": {"path": str(ROOT / "examples" / "sample_responses.csv")}},
                "output": {"local": {"dir": str(tmp_path / "out")}},
                "sync": {"interval_seconds": 10},
            }
        ),
        encoding="utf-8",
    )
    clock = start(["-c", str(config), "sync", "--periodic", "--interval", "1", "--json"])
    lines = []
    try:
        deadline = time.monotonic() + 60
        while len(lines) < 2 and time.monotonic() < deadline:
            line = clock.stdout.readline()
            if line.startswith("{"):
                lines.append(json.loads(line))
        clock.send_signal(signal.SIGTERM)
        assert clock.wait(timeout=30) == 0
    finally:
        if clock.poll() is None:
            clock.kill()
        clock.stdout.close()
        clock.stderr.close()
    assert [line["new"] for line in lines] == [36, 0]
    assert all(line["status"] == "ok" for line in lines)
