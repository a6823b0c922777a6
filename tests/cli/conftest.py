"""The commands' database: ``tmp_path / "cli.sqlite3"``, the file the tests' ``invoke`` and
configurations name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import schema_template


@pytest.fixture
def cli_database(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``cli.sqlite3`` already at the current schema, copied from the template this process
    migrated once (``tests/schema_template.py``), for tests whose subject is not a first
    start's migrations: each command otherwise migrated an empty file first. Tests of the
    schema's creation (``init-db``, a file that is no database...) start without it."""
    path = tmp_path / "cli.sqlite3"
    schema_template.sqlite_copy(tmp_path_factory.getbasetemp(), f"sqlite:///{path}")
    return path
