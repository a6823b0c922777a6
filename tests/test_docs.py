"""The README's promises: the commands it shows are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    marker = "# --- the README's test command, verbatim"
    command = ci.split(marker, 1)[1].splitlines()[1].strip()
    assert "python3 -m venv .venv" in command and command.endswith(".venv/bin/pytest -q")
    assert f"```sh\n{command}\n```" in readme


def test_readme_run_command_uses_the_example_config():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = re.search(r"```sh\n(.+?)\n```", readme).group(1)
    assert "pip install" in first and "config.example.yaml serve" in first


def test_docs_name_every_key_of_the_sync_summary():
    """docs/sync.md lists what ``sync --json`` prints; a key added to the summary is named
    there too (a scheduler's script reads them)."""
    from csat_hook.sync.summary import SyncSummary

    text = (ROOT / "docs" / "sync.md").read_text(encoding="utf-8")
    listed = text.split("* `--json` prints the summary:", 1)[1].split("* Exit codes:", 1)[0]
    listed += text.split("* `--json` also carries", 1)[1].split("\n* ", 1)[0]
    missing = [key for key in SyncSummary().as_dict() if f"`{key}`" not in listed]
    assert missing == []
