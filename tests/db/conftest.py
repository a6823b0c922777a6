"""The migrations are the subject here: a test's configuration points at its database as the
test left it (the empty ``database_url``, or what the test made of it), never at a copy of the
current schema (``migrated_url`` in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from csat_hook.db.engine import make_engine


@pytest.fixture
def migrated_url(database_url: str) -> str:
    return database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """An engine on the empty ``database_url`` (the migrations tests build on it)."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
