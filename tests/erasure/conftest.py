"""The sync's fixtures (a database at the current schema, surveys, runs), for erasure tests."""

from __future__ import annotations

from tests.sync.conftest import fake_google
from tests.sync.conftest import kit
from tests.sync.conftest import rsa_key

__all__ = ["fake_google", "kit", "rsa_key"]
