"""The Procfile's web process at boot, against a schema this release cannot use."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import sqlalchemy as sa
from gunicorn.config import Config as GunicornConfig

from csat_hook.db import migrate
from csat_hook.db.engine import make_engine
from csat_hook.webserver import conf
from csat_hook.webserver.redact import RedactingLogger
from csat_hook.webserver.redact import RedactRequestData
from tests.cluster import ROOT
from tests.cluster import LocalCluster
from tests.cluster import free_port
from tests.cluster import procfile_command


def run_web(cwd: Path, **env: str | None) -> tuple[int, str]:
    """The Procfile's ``web:`` line with two workers, run to its end with ``env`` added to
    this process's environment: its exit code and everything it printed."""
    port = str(free_port())
    full = {k: v for k, v in {**os.environ, **env, "PORT": port}.items() if v is not None}
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
    command = procfile_command(
        "web", {"PORT": port, "WEB_CONCURRENCY": "2"}, {"--bind": f"127.0.0.1:{port}"}
    )
    done = subprocess.run(
        command, cwd=cwd, env=full, capture_output=True, text=True, timeout=60, check=False
    )
    return done.returncode, done.stdout + done.stderr


def test_a_database_a_newer_release_upgraded_stops_the_web_process_with_one_line(
    database_url, tmp_path
):
    # The app rolled back after a newer release's `db upgrade`: each gunicorn worker stopped
    # on the SchemaError with a traceback (and with two workers, gunicorn's own stop could
    # end in another). Now the master says it in one line and exits 1, as the commands do.
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    returncode, output = run_web(tmp_path, CSAT_HOOK_CONFIG=None, DATABASE_URL=database_url)

    assert returncode == 1, output
    said = [line for line in output.splitlines() if "0099" in line]
    assert said == [
        f"Error: the database schema is at revision '0099', which this release does not know "
        f"(its newest is {migrate.HEAD_REVISION}): a newer release upgraded it. Run that "
        "release (or one at least as new); nothing was changed"
    ]
    assert "Traceback" not in output and "Booting worker" not in output
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [("0099",)]
    engine.dispose()


def test_another_app_on_the_same_settings_is_not_checked(monkeypatch, tmp_path):
    # The benchmarks serve a bare Flask peer with these gunicorn settings: no csat-hook
    # database is opened (or created) for it.
    db = tmp_path / "csat.sqlite3"
    monkeypatch.delenv("CSAT_HOOK_CONFIG", raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    conf.on_starting(SimpleNamespace(app=SimpleNamespace(app_uri="bare_app:app")))
    assert not db.exists()
    # csat-hook's app (its logger's level is ProcfileLogger's to set, before this hook)
    conf.on_starting(SimpleNamespace(app=SimpleNamespace(app_uri=conf.APP)))
    assert db.exists()


def test_a_configuration_error_stops_the_web_process_with_one_line(tmp_path):
    # Each worker stopped on the ConfigError with a traceback, and gunicorn went on booting
    # new ones until it gave up.
    config = tmp_path / "csat.yaml"
    config.write_text("server:\n  max_body_bytes: lots\n", "utf-8")

    returncode, output = run_web(tmp_path, CSAT_HOOK_CONFIG=str(config))

    assert returncode == 2, output
    assert f"Error: invalid configuration ({config}):\n  server.max_body_bytes: " in output
    assert output.count("max_body_bytes") == 1, output  # said once, by the master
    assert "Traceback" not in output and "Booting worker" not in output


def test_a_database_that_cannot_be_reached_stops_the_web_process_with_one_line(tmp_path):
    # Each worker's boot failed on the connection with a traceback (gunicorn then gave up).
    # Said as the commands say it: host and port, never the password.
    closed = free_port()
    url = f"postgresql://csat:hunter2-secret@127.0.0.1:{closed}/csat?connect_timeout=2"

    returncode, output = run_web(tmp_path, CSAT_HOOK_CONFIG=None, DATABASE_URL=url)

    assert returncode == 1, output
    said = [line for line in output.splitlines() if line.startswith("Error: ")]
    assert len(said) == 1 and said[0].startswith("Error: cannot connect to the database: ")
    assert str(closed) in said[0] and "hunter2" not in output
    assert "Traceback" not in output and "Booting worker" not in output


def test_the_web_process_makes_no_control_socket_in_the_home_folder(tmp_path):
    # gunicorn 25.1+ opened a control socket at $HOME/.gunicorn/gunicorn.ctl by default: a
    # second csat-hook on the host (staging beside production, `serve` beside the Procfile
    # web) unlinked the first one's and took the path, so `gunicornc` reached (and could
    # stop) the wrong service; a read-only home got a warning at every start.
    home = tmp_path / "home"
    home.mkdir()
    config = tmp_path / "csat.yaml"
    config.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'c.sqlite3'}'}}\n", "utf-8")
    cluster = LocalCluster(config, tmp_path)
    cluster.env["HOME"] = str(home)
    cluster.env.pop("XDG_RUNTIME_DIR", None)
    try:
        cluster.start_web()
    finally:
        cluster.stop()
    assert list(home.iterdir()) == []


def test_a_reload_with_a_configuration_that_no_longer_reads_keeps_the_masters_logging(
    monkeypatch, tmp_path
):
    # The Procfile's master reads logging.* again at each reload (SIGHUP); a configuration
    # broken since keeps the values read last (the new workers stop on the error), not
    # gunicorn's default level (INFO) nor its access log off.
    config = tmp_path / "csat.yaml"
    config.write_text("logging: {level: WARNING, access_log: true}\n", "utf-8")
    monkeypatch.setenv("CSAT_HOOK_CONFIG", str(config))
    monkeypatch.setattr(sys, "argv", ["gunicorn", conf.APP])  # no --log-level

    def gunicorn_config() -> GunicornConfig:
        cfg = GunicornConfig()
        cfg.set("default_proc_name", conf.APP)  # as gunicorn sets it from its argv
        return cfg

    log = conf.ProcfileLogger(gunicorn_config())
    assert not log.error_log.isEnabledFor(logging.INFO) and log.access_log_enabled
    config.write_text("logging: {level: LOUD}\n", "utf-8")
    log.setup(gunicorn_config())  # what a reload runs, on the configuration read again

    assert not log.error_log.isEnabledFor(logging.INFO) and log.access_log_enabled
    assert log.error_log.isEnabledFor(logging.WARNING)


def test_the_web_process_logs_each_configuration_warning_once_not_once_per_worker(tmp_path):
    # Only check-config said them: a Procfile deployment never showed them. The master says
    # each once as it starts; its two workers say none of them again.
    import json

    from csat_hook.config import config_warnings
    from csat_hook.config import load_config

    config = tmp_path / "csat.yaml"
    config.write_text(
        f"database: {{url: 'sqlite:///{tmp_path / 'c.sqlite3'}'}}\n"
        "logging: {format: json}\n"
        "survey: {links: {public_base_url: 'http://csat.example.com'}}\n",
        "utf-8",
    )
    cluster = LocalCluster(config, tmp_path, web_workers=2)
    try:
        cluster.start_web()
    finally:
        cluster.stop()
    output = (tmp_path / "web.log").read_text("utf-8")

    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    logged = [r["warning"] for r in records if r["event"] == "config.warning"]
    said = config_warnings(load_config(str(config), env={}))
    assert any(w.startswith("survey.links.public_base_url: plain http://") for w in said)
    assert logged == said, output


def test_a_reload_logs_the_new_configuration_warnings_once_and_the_old_ones_not_again(tmp_path):
    # SIGHUP: the master reads the configuration again before it starts new workers; a
    # warning it said at the start is not said again, a new one is said once, by it.
    import json
    import signal
    import time

    import requests

    db = tmp_path / "c.sqlite3"
    config = tmp_path / "csat.yaml"
    base = f"database: {{url: 'sqlite:///{db}'}}\nlogging: {{format: json}}\n"
    config.write_text(base + "survey: {links: {public_base_url: 'http://old.example.com'}}\n")
    cluster = LocalCluster(config, tmp_path, web_workers=2)
    log = tmp_path / "web.log"
    try:
        url = cluster.start_web(log_level="info")
        config.write_text(
            base + "survey:\n  links: {public_base_url: 'http://old.example.com'}\n"
            "  form: {url: 'http://docs.google.com/forms/d/e/X/viewform'}\n"
        )
        assert cluster.web is not None
        os.kill(cluster.web.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while log.read_text("utf-8").count("Booting worker") < 4:  # two, then two more
            assert time.monotonic() < deadline, log.read_text("utf-8")
            time.sleep(0.1)
        for _ in range(4):  # the new workers have loaded the app: they would have said it
            # "Booting worker" comes before the app is imported: on a busy machine that took
            # longer than a 5 s timeout now and then.
            assert requests.get(url + "/healthz", timeout=30).status_code == 200
    finally:
        cluster.stop()
    output = log.read_text("utf-8")

    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    logged = [r["warning"] for r in records if r.get("event") == "config.warning"]
    plain = [w.split(":")[0] for w in logged if "plain http://" in w]
    assert plain == ["survey.links.public_base_url", "survey.form.url"], output
    assert len(logged) == len(set(logged)), output


def test_both_web_processes_loggers_know_the_configured_helpdesks(monkeypatch, tmp_path):
    # What gunicorn's lines may name of a webhook URL (webserver.redact): the Procfile's
    # logger reads the names from $CSAT_HOOK_CONFIG, serve's is given its configuration's.
    config = tmp_path / "csat.yaml"
    config.write_text("helpdesks: {support: {kind: dryrun}}\n", "utf-8")
    monkeypatch.setenv("CSAT_HOOK_CONFIG", str(config))
    monkeypatch.setattr(sys, "argv", ["gunicorn", conf.APP])
    cfg = GunicornConfig()
    cfg.set("default_proc_name", conf.APP)
    procfile = conf.ProcfileLogger(cfg)
    server = SimpleNamespace(cfg=GunicornConfig(), log=RedactingLogger(GunicornConfig()))
    conf.apply_logging(server, level="INFO", access_log=True, argv=(), helpdesks={"support": 1})

    for log in (procfile, server.log):
        record = logging.LogRecord(
            "gunicorn.error", logging.DEBUG, __file__, 1, "%s %s", ("POST", "/webhooks/x1"), None
        )
        [redacting] = [f for f in log.error_log.filters if isinstance(f, RedactRequestData)]
        assert redacting.filter(record)
        assert record.getMessage() == "POST /webhooks/[path redacted]"
        assert log.service_helpdesks == frozenset({"support"})
