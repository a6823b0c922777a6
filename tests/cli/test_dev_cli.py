"""``csat-hook dev`` fakes that cannot start say why in one line (exit 1), not in a traceback:
a new operator meets these first (README "Try it", docs/sync.md)."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys

import pytest
from click.testing import CliRunner

from csat_hook.cli import main
from csat_hook.devtools import discovery


@pytest.fixture
def busy_port():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [
        ["dev", "fake-helpdesk"],
        ["dev", "fake-notify"],
        ["dev", "fake-google", "--service-account-out", "{tmp}/sa.json"],
    ],
)
def test_a_fake_whose_port_is_taken_says_so_in_one_line(busy_port, tmp_path, command):
    args = [part.replace("{tmp}", str(tmp_path)) for part in command]
    result = CliRunner().invoke(main, [*args, "--port", str(busy_port)], env={})

    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"cannot listen on 127.0.0.1:{busy_port}" in result.output
    assert "--port" in result.output.splitlines()[-1]  # what to do about it


def test_fake_google_without_google_api_python_client_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "googleapiclient", None)  # as if not installed
    discovery.document.cache_clear()
    try:
        result = CliRunner().invoke(
            main,
            ["dev", "fake-google", "--port", "0", "--service-account-out", f"{tmp_path}/sa.json"],
            env={},
        )
    finally:
        discovery.document.cache_clear()

    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Error: " in result.output and "pip install -e '.[test]'" in result.output


@pytest.mark.parametrize(
    "command",
    [
        ["dev", "fake-helpdesk"],
        ["dev", "fake-notify"],
        ["dev", "fake-google", "--service-account-out", "{tmp}/sa.json"],
    ],
)
@pytest.mark.parametrize("port", ["70000", "-5"])
def test_a_port_out_of_range_is_bad_usage_not_a_traceback(tmp_path, command, port):
    args = [part.replace("{tmp}", str(tmp_path)) for part in command]
    result = CliRunner().invoke(main, [*args, "--port", port], env={})

    assert result.exit_code == 2, result.output
    assert "--port" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("where", ["{file}/sa.json", "{file}/deeper/sa.json"])
def test_fake_google_service_account_out_it_cannot_write_says_so(tmp_path, where):
    (tmp_path / "afile").write_text("x")
    out = where.replace("{tmp}", str(tmp_path)).replace("{file}", str(tmp_path / "afile"))
    result = CliRunner().invoke(
        main, ["dev", "fake-google", "--port", "0", "--service-account-out", out], env={}
    )

    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "--service-account-out" in result.output and "Traceback" not in result.output


def test_fake_helpdesk_log_file_it_cannot_append_to_is_said_before_it_starts(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = CliRunner().invoke(
        main,
        ["dev", "fake-helpdesk", "--port", "0", "--log-file", str(tmp_path / "afile" / "x.log")],
        env={},
    )

    assert result.exit_code == 2, result.output
    assert "--log-file" in result.output


@pytest.mark.parametrize("there_before", [False, True])
def test_fake_google_writes_its_service_account_key_owner_only(tmp_path, monkeypatch, there_before):
    """The file holds a private key: 0600 in a 0700 folder it makes, as any secret file,
    whatever the umask; one an earlier run wrote 0644 is replaced by a 0600 one. (It was
    written with the umask's 0644.)"""
    from csat_hook.devtools.fake_google import FakeGoogle

    monkeypatch.setattr(FakeGoogle, "serve_forever", lambda self: self.server.server_close())
    out = tmp_path / "keys" / "sa.json"
    if there_before:
        out.parent.mkdir()
        out.write_text("old")
        out.chmod(0o644)
    old_umask = os.umask(0o022)
    try:
        result = CliRunner().invoke(
            main, ["dev", "fake-google", "--port", "0", "--service-account-out", str(out)], env={}
        )
    finally:
        os.umask(old_umask)

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text())["private_key"].startswith("-----BEGIN")
    if not there_before:
        assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    assert [p.name for p in out.parent.iterdir()] == ["sa.json"]  # no temporary file left
