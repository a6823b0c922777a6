"""The configuration's warnings (what ``check-config`` prints) are logged once when a
long-running command starts (``serve``, ``worker``, ``sync --periodic``; the Procfile's web
process is in tests/webserver/test_boot.py): an operator who never runs check-config still
sees them. Each is one WARNING line, event ``config.warning``, the warning in its
``warning`` field; no secret is quoted."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from click.testing import Result

from csat_hook.cli import main
from csat_hook.config import config_warnings
from csat_hook.config import load_config

SHORT_TOKEN = "sh0rtS3CRET"  # under 16 characters: warned about, never quoted

CONFIG = f"""\
logging: {{format: json}}
survey:
  links: {{public_base_url: "http://csat.example.com"}}
helpdesks:
  dryrun:
    kind: dryrun
    auth: {{mode: token, token: "{SHORT_TOKEN}"}}
"""


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "csat.yaml"
    path.write_text(CONFIG, "utf-8")
    return path


def expected(path: Path, tmp_path: Path) -> list[str]:
    config = load_config(str(path), env={"DATABASE_URL": database(tmp_path)})
    said = config_warnings(config)
    assert any("plain http://" in w for w in said) and any("11 characters" in w for w in said)
    return said


def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


def invoke(tmp_path: Path, path: Path, *args: str) -> Result:
    env = {"CSAT_HOOK_CONFIG": str(path), "DATABASE_URL": database(tmp_path)}
    return CliRunner().invoke(main, list(args), env=env)


def logged_warnings(text: str) -> list[str]:
    """The ``warning`` field of each config.warning line of ``text`` (JSON log lines)."""
    found = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        record: dict[str, Any] = json.loads(line)
        if record["event"] == "config.warning":
            assert record["level"] == "WARNING", record
            found.append(record["warning"])
    return found


def assert_each_logged_once(result: Result, said: list[str]) -> None:
    assert result.exit_code == 0, result.output
    assert logged_warnings(result.stderr) == said
    assert SHORT_TOKEN not in result.output


def test_serve_logs_each_configuration_warning_once(tmp_path, monkeypatch):
    from csat_hook.cli import run

    path = write_config(tmp_path)
    monkeypatch.setattr(run, "run_server", lambda *a, **k: None)
    result = invoke(tmp_path, path, "serve", "--port", "0")

    assert_each_logged_once(result, expected(path, tmp_path))


def test_serve_says_the_development_secrets_once_not_twice(tmp_path, monkeypatch):
    # It printed its own line of them before; now they are among the warnings logged.
    from csat_hook.cli import run

    monkeypatch.setattr(run, "run_server", lambda *a, **k: None)
    result = CliRunner().invoke(
        main,
        ["serve", "--port", "0"],
        env={"CSAT_HOOK_CONFIG": None, "DATABASE_URL": database(tmp_path)},
    )

    assert result.exit_code == 0, result.output
    assert result.stderr.count("token.secret") == 1, result.stderr
    assert "token.secret still holds the shipped development secret" in result.stderr


def test_worker_once_logs_each_configuration_warning_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path)
    result = invoke(tmp_path, path, "worker", "--once")

    assert_each_logged_once(result, expected(path, tmp_path))
    assert "processed 0 replies" in result.stdout


def test_worker_logs_each_configuration_warning_once(tmp_path, monkeypatch):
    from csat_hook.cli import run

    class Running:
        def stop(self) -> None:
            pass

    def start_delivery(*_args: object, **_kwargs: object) -> Running:
        os.kill(os.getpid(), signal.SIGTERM)  # the worker's own handler stops it
        return Running()

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run, "start_delivery", start_delivery)
    path = write_config(tmp_path)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        result = invoke(tmp_path, path, "worker")
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    assert_each_logged_once(result, expected(path, tmp_path))


@pytest.mark.parametrize(("given", "logged"), [([], True), (["--keep-waiting"], False)])
def test_periodic_sync_logs_each_configuration_warning_once(tmp_path, monkeypatch, given, logged):
    # --keep-waiting: serve's own sync child, whose parent has logged them.
    from csat_hook.cli import sync

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sync, "_sync_loop", lambda *a, **k: 0)
    path = write_config(tmp_path)
    result = invoke(tmp_path, path, "sync", "--periodic", *given)

    assert_each_logged_once(result, expected(path, tmp_path) if logged else [])


def test_check_config_prints_the_warnings_as_before_and_logs_none(tmp_path):
    path = write_config(tmp_path)
    result = invoke(tmp_path, path, "check-config")

    assert result.exit_code == 0, result.output
    said = expected(path, tmp_path)
    assert [line for line in result.stderr.splitlines() if line.startswith("warning: ")] == [
        f"warning: {w}" for w in said
    ]
    assert logged_warnings(result.stderr) == []
