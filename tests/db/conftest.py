"""The migrations are the subject here: a test's configuration points at its database as the
test left it (the empty ``database_url``, or what the test made of it), never at a copy of the
current schema (``migrated_url`` in ``tests/conftest.py``)."""

from __future__ import annotations

import pytest


@pytest.fixture
def migrated_url(database_url: str) -> str:
    return database_url
