"""A PostgreSQL server that takes the connection and never answers (a firewall that drops
packets, a host mid-failover, a load balancer with nothing behind it): the command ends with
a message after a bounded wait, never hangs."""

from __future__ import annotations

import socket
import time

from click.testing import CliRunner

from csat_hook.cli import main
from csat_hook.db import engine as db_engine


def test_a_database_that_never_answers_ends_the_command_with_a_message(monkeypatch):
    monkeypatch.setattr(db_engine, "CONNECT_TIMEOUT_SECONDS", 2)
    with socket.socket() as listener:  # accepted by the kernel's backlog, never answered
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        url = f"postgresql://csat:pw@127.0.0.1:{port}/csat"
        started = time.monotonic()
        result = CliRunner().invoke(
            main, ["db", "current"], env={"CSAT_HOOK_CONFIG": None, "DATABASE_URL": url}
        )
        took = time.monotonic() - started
    assert took < 15, took
    assert result.exit_code == 1, result.output
    assert "cannot connect to the database" in result.output
    assert "pw" not in result.output.replace("port", "")


def test_the_url_own_connect_timeout_is_kept():
    engine = db_engine.make_engine("postgresql+psycopg://u@127.0.0.1:1/d?connect_timeout=3")
    try:
        _, options = engine.dialect.create_connect_args(engine.url)
        assert str(options["connect_timeout"]) == "3"
    finally:
        engine.dispose()
