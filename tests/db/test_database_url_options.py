"""What a database URL's own options and path mean: a SQLite URL's ``?timeout=`` is how long
a write waits for another process's writer (it was taken by the configuration check and then
overridden by csat-hook's 30 s), an option given twice and a path only a shell would expand are
refused naming the key."""

from __future__ import annotations

import sqlite3
import time

import pytest
import sqlalchemy as sa

from csat_hook.config import load_config
from csat_hook.db import engine as db_engine
from csat_hook.errors import ConfigError


def _blocked_write_takes(url: str, path: str) -> float:
    """Seconds a write through ``url`` waits while another connection (another process, as
    far as SQLite can tell) holds the writer lock, before it fails."""
    engine = db_engine.make_engine(url)
    try:
        with engine.begin() as conn:  # the file made and switched to WAL first
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError), engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            return time.monotonic() - started
        finally:
            other.close()
    finally:
        engine.dispose()


def test_a_sqlite_url_timeout_is_how_long_a_write_waits_for_another_writer(tmp_path):
    path = str(tmp_path / "t.sqlite3")
    took = _blocked_write_takes(f"sqlite:///{path}?timeout=1", path)
    assert 0.8 <= took < 5, took


def test_without_a_timeout_a_write_waits_the_default(tmp_path, monkeypatch):
    monkeypatch.setattr(db_engine, "BUSY_SECONDS", 2)
    path = str(tmp_path / "t.sqlite3")
    took = _blocked_write_takes(f"sqlite:///{path}", path)
    assert 1.8 <= took < 6, took


@pytest.mark.parametrize("timeout", ["-1", "nan", "inf", "1e9", "0", "0.5"])
def test_a_sqlite_timeout_that_is_no_wait_is_refused_naming_the_key(tmp_path, timeout):
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}?timeout={timeout}"
    with pytest.raises(ConfigError, match=r"database\.url: .*timeout"):
        load_config(None, env={"DATABASE_URL": url})


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///{tmp}/c.sqlite3?timeout=1&timeout=2",  # a TypeError traceback
        "postgresql://u:S3CRET@127.0.0.1/x?connect_timeout=1&connect_timeout=2",
    ],
)
def test_a_database_url_option_given_twice_is_refused_naming_it(tmp_path, url):
    # The driver got both values as one tuple: a traceback from every command (SQLite), or a
    # connection refused for "('1', '2')" at the first statement (PostgreSQL).
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={"DATABASE_URL": url.format(tmp=tmp_path)})
    said = raised.value.message
    assert "database.url: the URL option" in said and "given twice" in said, said
    assert "S3CRET" not in said


@pytest.mark.parametrize("path", ["~/csat.sqlite3", "~csat/x.sqlite3", "$HOME/csat.sqlite3"])
def test_a_sqlite_path_a_shell_would_expand_is_refused_naming_the_key(path):
    # Nothing expands ~ or $HOME in a URL: a folder named "~" (or "$HOME") was made in the
    # folder the process started in, and the service kept its data there without a word.
    with pytest.raises(ConfigError, match=r"database\.url: .*not expanded"):
        load_config(None, env={"DATABASE_URL": f"sqlite:///{path}"})
