"""``csat-hook erase`` without ``--yes`` changes nothing, the schema included: on a database
whose schema is behind this release it says to run ``csat-hook db upgrade`` (exit 2) rather
than migrating it first."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from csat_hook.cli import main
from csat_hook.db import migrate
from csat_hook.db.engine import make_engine


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "erase.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": url}}), encoding="utf-8")
    return path


def test_a_dry_run_on_a_schema_behind_changes_nothing_and_says_to_upgrade(
    database_url: str, tmp_path: Path
):
    engine = make_engine(database_url)
    try:
        migrate.upgrade(engine, "0020")
        path = _config(tmp_path, database_url)
        for args in (("--email", "maria@example.com"), ("--helpdesk", "dryrun", "--dialog", "D-1")):
            result = CliRunner().invoke(main, ["-c", str(path), "erase", *args])
            assert result.exit_code == 2, result.output
            assert f"csat-hook -c {path} db upgrade" in result.output  # the -c given
            assert "0020" in result.output and migrate.head_revision() in result.output
            assert "maria" not in result.output
            assert migrate.current_revision(engine) == "0020"

        # With --yes the erasure upgrades it first, as every command that writes does.
        applied = CliRunner().invoke(
            main, ["-c", str(path), "erase", "--email", "maria@example.com", "--yes"]
        )
        assert applied.exit_code == 0, applied.output
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_a_dry_run_on_an_empty_database_creates_nothing(database_url: str, tmp_path: Path):
    engine = make_engine(database_url)
    try:
        path = _config(tmp_path, database_url)
        result = CliRunner().invoke(
            main, ["-c", str(path), "erase", "--email", "maria@example.com"]
        )
        assert result.exit_code == 2, result.output
        assert f"csat-hook -c {path} db upgrade" in result.output  # the -c given
        assert migrate.current_revision(engine) is None
    finally:
        engine.dispose()


def test_a_dry_run_on_a_sqlite_file_that_is_not_there_creates_none(tmp_path: Path):
    """A database.url naming no file yet (a new install, a mistyped path): a dry run creates
    neither the file nor its folder, and says there is no database there (exit 2) rather
    than to upgrade a database it would have made."""
    missing = tmp_path / "typo" / "csat.sqlite3"
    path = _config(tmp_path, f"sqlite:///{missing}")
    result = CliRunner().invoke(main, ["-c", str(path), "erase", "--email", "maria@example.com"])
    assert result.exit_code == 2, result.output
    assert "no SQLite database" in result.output and str(missing) in result.output
    assert "maria" not in result.output
    assert not missing.parent.exists()
