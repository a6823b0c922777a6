"""What an output would write, as a digest: equal digests mean equal contents.

The sync keeps the digest of the last report each output wrote (``sync_outputs``), so a run
whose report did not change writes nothing (a periodic sync with no new answer spends no
write request and no time encoding 100,000 rows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any


def contents_digest(parts: Iterable[Any]) -> str:
    """A digest of ``parts`` by their ``repr`` (types kept: ``5``, ``5.0`` and ``"5"`` differ;
    datetimes, dates, None and nested lists all have one exact repr)."""
    digest = hashlib.blake2b(digest_size=32)
    for part in parts:
        digest.update(repr(part).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()
